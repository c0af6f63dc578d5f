#!/usr/bin/env bash
# Installs the dependencies, builds, and runs nsa-tune's main job:
#  - with a GPU: list it, tune topk 2048 into the cache, and benchmark the standard shapes;
#  - without one: list what is there, then render and compile every variant offline for
#    sm_90a, gfx90a and gfx942 with resource reports (tuning and benchmarks need a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."

./tools/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
NSA_TUNE=./build/nsa-tune

$NSA_TUNE devices
if $NSA_TUNE devices --json | grep -q '"ordinal"'; then
  $NSA_TUNE tune --topk 2048
  $NSA_TUNE bench
else
  echo
  echo "No GPU here: tuning and benchmarks need a GPU. Rendering and compiling every variant offline instead."
  for target in sm_90a gfx90a gfx942; do
    for family in sparse_mla_fwd topk_select; do
      echo "== $family for $target"
      $NSA_TUNE compile --family "$family" --target "$target" --all --report
    done
  done
fi
