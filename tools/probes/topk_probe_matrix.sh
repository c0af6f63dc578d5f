#!/usr/bin/env bash
# Builds tools/probes/topk_phase_probe.cu against template variants and runs each on the GPU.
# Launch times are compared without the trace hooks (PROBE_NO_TRACE); "traced" shows the phases.
# "old" is an earlier kernel for a same-run baseline, when present (not committed):
#   mkdir -p tools/probes/old/topk_select && for f in kernel threshold; do
#     git show REV:templates/topk_select/$f.cuh > tools/probes/old/topk_select/$f.cuh; done
set -uo pipefail
cd "$(dirname "$0")/../.."
P=tools/probes/topk_phase_probe.cu
F=(-O3 -std=c++20 -arch=sm_90a)
# The probe plans through the library: link the carried build (BUILD, default build-dev).
L=(-I . -L "${BUILD:-build-dev}" -lnsajit -Xlinker "-rpath=$PWD/${BUILD:-build-dev}")
OUT=${OUT:-/tmp}
[[ -d tools/probes/old ]] && nvcc "${F[@]}" -DPROBE_NO_TRACE -I tools/probes/old -I templates -o /tmp/probe_old $P "${L[@]}" &
nvcc "${F[@]}" -DPROBE_NO_TRACE -I templates -o /tmp/probe_new $P "${L[@]}" &
nvcc "${F[@]}" -I templates -o /tmp/probe_traced $P "${L[@]}" &
wait
for name in ${PROBES:-old new traced}; do
  [[ -x /tmp/probe_$name ]] || continue
  echo "==== $name: $(cuobjdump -sass /tmp/probe_$name | grep -c '^        /\*[0-9a-f]*\*/') SASS instructions in the binary"
  /tmp/probe_$name 2048 "$@" | tee "$OUT/probe_$name.txt" | cut -c1-300
done
