#!/usr/bin/env bash
# Source-level ncu of the threshold kernel in tools/probes/topk_phase_probe.cu (device):
# warp-stall samples summed per CUDA source line, the top lines printed.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp}
nvcc -O3 -std=c++20 -arch=sm_90a -lineinfo -DPROBE_NO_TRACE -I templates -I . -o /tmp/probe_ncu tools/probes/topk_phase_probe.cu \
  -L "${BUILD:-build-dev}" -lnsajit -Xlinker "-rpath=$PWD/${BUILD:-build-dev}" || exit 1
for shape in "128 131072" "64 131072" "16 32768"; do
  set -- $shape
  rep=$OUT/ncu_b$1_l$2
  ncu --clock-control none --kernel-name regex:threshold --launch-skip 3 --launch-count 1 \
    --section SourceCounters --section WarpStateStats --section SpeedOfLight --import-source yes \
    -o "$rep" -f /tmp/probe_ncu 2048 one "$1" "$2" >/dev/null 2>&1
  ncu -i "$rep.ncu-rep" --page source --csv --print-source cuda > /tmp/src_$1_$2.csv 2>/tmp/src_err.txt
  ncu -i "$rep.ncu-rep" --page source --csv --print-source sass > /tmp/sass_$1_$2.csv 2>>/tmp/src_err.txt
  head -c 600 /tmp/src_err.txt; head -c 300 /tmp/src_$1_$2.csv; echo
  ncu -i "$rep.ncu-rep" --page details --section WarpStateStats --section SpeedOfLight 2>/dev/null | grep -E "Duration|Throughput|Stall|Warp Cycles|Issued" | head -20
  python3 tools/probes/ncu_top_lines.py /tmp/src_$1_$2.csv "B $1 L $2 (cuda)"
  python3 tools/probes/ncu_top_lines.py /tmp/sass_$1_$2.csv "B $1 L $2 (sass)"
done
