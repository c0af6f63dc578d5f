#!/usr/bin/env bash
# Kernel work on sparse_mla_fwd (issue 6), one device call: the sweep of the named variants,
# a same-run timing of them, and ncu of the first one.
#   BUILD=build-dev VARIANTS=a,b SHAPES=4096:64,4096:128 NCU_SHAPE=1024:128 ONLY=_w12 \
#     tools/probes/mla_device.sh
# Logs go to $OUT; a short summary is printed last.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/mla-out}
mkdir -p "$OUT"
B=${BUILD:-build-dev}
export LD_LIBRARY_PATH="$PWD/$B"
VARIANTS=${VARIANTS:?name the variants to time}
SHAPES=${SHAPES:-4096:64,4096:128}
first=${VARIANTS%%,*}

nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv,noheader
if [[ -n ${ONLY:-} ]]; then
  NSAJIT_SWEEP_ONLY=$ONLY timeout 300 "$B/tests/nsajit_gpu_tests" -tc='every_unpruned_sm90*' >"$OUT/sweep.log" 2>&1
  echo "sweep ($ONLY): rc=$? $(grep -E 'FAIL|checks|test cases' "$OUT/sweep.log" | head -8 | tr '\n' ' ')"
fi
NSA_MLA_TIMING_VARIANTS=$VARIANTS NSA_MLA_TIMING_SHAPES=$SHAPES timeout 400 \
  "$B/tests/nsajit_gpu_tests" -tc='sparse_mla_variant_timing_report' >"$OUT/timing.log" 2>&1
echo "timing: rc=$?"
if [[ -n ${NCU_SHAPE:-} ]]; then
  rep=$OUT/ncu_mla
  NSA_MLA_TIMING_VARIANTS=$first NSA_MLA_TIMING_SHAPES=$NCU_SHAPE timeout 400 \
    ncu --clock-control none --kernel-name "regex:^${first}\$" --launch-skip 3 --launch-count 1 \
    --section SpeedOfLight --section WarpStateStats --section SchedulerStats --section ComputeWorkloadAnalysis \
    --section MemoryWorkloadAnalysis --section MemoryWorkloadAnalysis_Tables --section SourceCounters --section LaunchStats --section Occupancy \
    --metrics sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,sm__inst_executed_pipe_uniform.sum,l1tex__data_pipe_lsu_wavefronts_mem_shared.sum,smsp__inst_executed_op_shared_ld.sum,smsp__inst_executed_op_shared_st.sum,l1tex__data_bank_conflicts_pipe_lsu_mem_shared.sum,l1tex__data_pipe_lsu_wavefronts_mem_shared.sum.pct_of_peak_sustained_elapsed,sm__memory_throughput.avg.pct_of_peak_sustained_elapsed,l1tex__throughput.avg.pct_of_peak_sustained_active \
    -o "$rep" -f "$B/tests/nsajit_gpu_tests" -tc='sparse_mla_variant_timing_report' >"$OUT/ncu-run.log" 2>&1
  echo "ncu: rc=$?"
  ncu -i "$rep.ncu-rep" --page details >"$OUT/ncu-details.txt" 2>&1
  grep -E "Duration|SM Frequency|Compute \(SM\) Throughput|Memory Throughput|L1/TEX Cache Throughput|Issued Warp|No Eligible|Warp Cycles Per Issued|Registers Per|Shared Memory Configuration|hmma|wavefronts|bank_conflicts|shared_ld|shared_st|Executed Ipc|Issue Slots|pipe_uniform" \
    "$OUT/ncu-details.txt" | head -30
  ncu -i "$rep.ncu-rep" --page raw --csv 2>/dev/null | python3 -c '
import csv, sys
rows = list(csv.reader(sys.stdin))
if len(rows) >= 3:
    head, vals = rows[0], rows[2]
    for h, v in zip(head, vals):
        if "smsp__pcsamp_warps_issue_stalled" in h and not h.endswith("not_issued") and v not in ("", "0"):
            print("  ", h.replace("smsp__pcsamp_warps_issue_stalled_", "stall "), v)
' | sort -k3 -n -r | head -14
  ncu -i "$rep.ncu-rep" --page source --csv --print-source sass >"$OUT/ncu-sass.csv" 2>/dev/null
  python3 tools/probes/ncu_top_lines.py "$OUT/ncu-sass.csv" "$first $NCU_SHAPE (sass)"
fi
echo "==== timing ($(nvidia-smi --query-gpu=name --format=csv,noheader | head -1))"
sed -n '/s_q  h_q/,/^$/p' "$OUT/timing.log" | grep -v '^$' | head -40
