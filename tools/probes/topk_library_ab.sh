#!/usr/bin/env bash
# A/B of topk_select between library builds on the GPU: each build tunes topk 2048 into its own
# cache, then tools/bench_topk.py (torch.topk in the same run) times its winner.
#   tools/probes/topk_library_ab.sh build-dev-base build-dev
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp}
for b in "$@"; do
  name=$(basename "$b")
  export NSA_JIT_CACHE="$OUT/cache-$name.sqlite" LD_LIBRARY_PATH="$PWD/$b"
  "$b/nsa-tune" tune --family topk_select --topk 2048 > "/tmp/tune-$name.log" 2>&1 || { echo "tune failed: $b"; tail -5 "/tmp/tune-$name.log"; }
  grep "winner" "/tmp/tune-$name.log"
  echo "== $name"
  NSA_JIT_LIBRARY="$PWD/$b/libnsajit.so" python3 tools/bench_topk.py 2>&1 | tail -13
done
