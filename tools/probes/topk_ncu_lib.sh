#!/usr/bin/env bash
# ncu of the library's topk_select kernel (the tuned winner, NVRTC-compiled), per SASS line.
#   BUILD=build-dev tools/probes/topk_ncu_lib.sh "128 131072" "64 131072"
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp}
B=${BUILD:-build-dev}
export LD_LIBRARY_PATH="$PWD/$B" NSA_JIT_LIBRARY="$PWD/$B/libnsajit.so" NSA_JIT_CACHE=/tmp/ncu-cache.sqlite
"$B/nsa-tune" tune --family topk_select --topk 2048 > /tmp/ncu-tune.log 2>&1 || tail -5 /tmp/ncu-tune.log
for shape in "$@"; do
  set -- $shape
  rep=$OUT/ncu_lib_b$1_l$2
  ncu --clock-control none --kernel-name regex:nsa_topk --launch-skip 2 --launch-count 1 \
    --section SourceCounters --section WarpStateStats --section SpeedOfLight --section SchedulerStats \
    -o "$rep" -f python3 tools/probes/topk_one.py "$1" "$2" >/tmp/ncu-run.log 2>&1 || tail -5 /tmp/ncu-run.log
  ncu -i "$rep.ncu-rep" --page details 2>/dev/null | grep -E "Duration|DRAM Throughput|Compute \(SM\)|Issued Warp|No Eligible|Warp Cycles Per Issued|Active Warps" | head -12
  ncu -i "$rep.ncu-rep" --page source --csv --print-source sass > /tmp/sass.csv 2>/dev/null
  python3 tools/probes/ncu_top_lines.py /tmp/sass.csv "library B $1 L $2 (sass)"
done
