#!/usr/bin/env bash
# Runs on the lent GPU machine, over a build made elsewhere (carried as ./build):
# GPU tests, correctness sweep, sanitizer, tuning, benchmarks, Python GPU tests.
# Usage: tools/device-check.sh [section ...]   sections: info gpu sanitize tune sq multi ncu bench topk python all
# Full logs go to $OUT (or ./device-out); a short table is printed last.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/device-out}
mkdir -p "$OUT"
B=${BUILD:-./build}
export LD_LIBRARY_PATH="$PWD/${B#./}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
SECTIONS=${*:-all}
declare -a SUMMARY=()
want() { [[ " $SECTIONS " == *" all "* || " $SECTIONS " == *" $1 "* ]]; }
step() {  # step NAME LOGFILE COMMAND...
  local name=$1 log=$2; shift 2
  local t0=$SECONDS
  "$@" >"$OUT/$log" 2>&1
  local rc=$?
  SUMMARY+=("$(printf '%-28s rc=%-3s %4ss  %s' "$name" "$rc" "$((SECONDS - t0))" "$log")")
  tail -n 25 "$OUT/$log"
  return $rc
}
export NSA_JIT_CACHE="$OUT/cache.sqlite"

if want info; then
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv | tee "$OUT/nvidia-smi.txt"
  step "nsa-tune devices" devices.log $B/nsa-tune devices
fi
if want gpu; then
  step "gpu tests" gpu-tests.log timeout 400 $B/tests/nsajit_gpu_tests ${GPU_TEST_ARGS:-}
fi
if want sanitize; then
  step "compute-sanitizer memcheck" sanitizer.log compute-sanitizer --tool memcheck --error-exitcode 9 \
    $B/tests/nsajit_gpu_tests -tc='*sanitizer_subset*'
fi
if want tune; then
  step "tune sparse_mla_fwd 2048" tune.log $B/nsa-tune tune --topk ${TUNE_TOPK:-2048}
  step "tune topk_select 2048" tune-topk.log $B/nsa-tune tune --family topk_select --topk 2048
  step "dispatcher overhead" overhead.log $B/nsa-tune bench --overhead --topk 2048 --h-q 16
fi
if want sq; then  # is a winner tuned at one s_q within 10 % of the best at the others? (issue 6)
  for sq in 1024 16384; do
    step "tune at s_q $sq" tune-sq$sq.log $B/nsa-tune --cache "$OUT/sq$sq.sqlite" tune --topk 2048 --s-q $sq
  done
fi
if want multi; then  # issue 9: tune a topk list on 1 GPU and on all, then 8 rank processes
  step "tune 4 topk on GPU 0" tune-1gpu.log $B/nsa-tune --cache "$OUT/one.sqlite" tune --topk 512,1024,2048,4096 --devices 0
  step "tune 4 topk on all GPUs" tune-allgpu.log $B/nsa-tune --cache "$OUT/all.sqlite" tune --topk 512,1024,2048,4096 --devices all
  step "8 rank processes" ranks.log $B/tests/nsajit_gpu_tests -tc='eight_rank*'
fi
if want ncu; then  # the dispatched kernel (not the combine) at s_q 4096, per h_q
  for hq in ${NCU_HQ:-16 128}; do
    step "ncu h_q $hq" ncu-h$hq.log timeout 240 ncu --clock-control none --kernel-name 'regex:^nsa_fwd_.*_st[0-9](_g1|_mma[12](_ws2|_sx2)?)?$' \
      --launch-skip 2 --launch-count 1 --section SpeedOfLight --section WarpStateStats --section MemoryWorkloadAnalysis \
      --section Occupancy --section SchedulerStats $B/nsa-tune bench --topk 2048 --s-q 4096 --h-q $hq --reps 20
  done
fi
if want bench; then
  step "bench sparse_mla_fwd" bench.log timeout 300 $B/nsa-tune bench ${BENCH_ARGS:-}
  step "bench topk_select" bench-topk.log $B/nsa-tune bench --family topk_select
  step "topk_select vs torch.topk" bench-topk-torch.log env NSA_JIT_LIBRARY=$PWD/${B#./}/libnsajit.so python3 tools/bench_topk.py
fi
if [[ " $SECTIONS " == *" topk "* ]]; then  # not in "all": issue 5 alone: exactness of every topk_select variant, tune, both benchmarks
  step "gpu tests topk_select" gpu-topk.log timeout 300 $B/tests/nsajit_gpu_tests -tc='topk*'
  step "tune topk_select 2048" tune-topk.log $B/nsa-tune tune --family topk_select --topk 2048
  step "bench topk_select" bench-topk.log $B/nsa-tune bench --family topk_select
  step "topk_select vs torch.topk" bench-topk-torch.log env NSA_JIT_LIBRARY=$PWD/${B#./}/libnsajit.so python3 tools/bench_topk.py
fi
if want python; then
  step "python gpu tests" python.log env NSA_JIT_LIBRARY=$PWD/${B#./}/libnsajit.so NSA_JIT_REQUIRE_GPU=1 PYTHONUNBUFFERED=1 python3 -m pytest -q python/tests/test_gpu.py
  step "python example" example.log env NSA_JIT_LIBRARY=$PWD/${B#./}/libnsajit.so python3 examples/sglang_nsa_backend.py
fi
echo
echo "==== device-check summary ($(nvidia-smi --query-gpu=name --format=csv,noheader | head -1))"
printf '%s\n' "${SUMMARY[@]}"
