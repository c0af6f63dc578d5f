#!/usr/bin/env bash
# Issue 6 in one device call, by sections:
# - check: the GPU tests and memcheck;
# - decode: decode timings over split counts, with and without the combine launch;
# - ncu: ncu of the h_q 32 and h_q 64 kernels at s_q 4096;
# - final: the GPU tests, tune, the standard `nsa-tune bench` table and the Python GPU tests;
# - rate: tools/probes/wgmma_rate_probe.cu, built here with nvcc (the shared-memory port).
#   BUILD=build-dev SECTIONS="final rate" tools/probes/mla_issue6.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
FINAL=${OUT:-/tmp/mla-s8}
mkdir -p "$FINAL"
W=/tmp/mla-s8-work
rm -rf "$W" && mkdir -p "$W"
export BUILD=${BUILD:-build-dev}
h16=nsa_fwd_sm90a_d576_bh16_bt64_w8_st1_mma2_sx2
h16b=nsa_fwd_sm90a_d576_bh16_bt64_w12_st2_mma2_sx2
h32=nsa_fwd_sm90a_d576_bh32_bt64_w12_st2_mma2
ws3=nsa_fwd_sm90a_d576_bh64_bt64_w12_st2_mma1_ws3
run() {  # name, then env assignments for mla_device.sh
  local name=$1
  shift
  env OUT="$W/$name" "$@" tools/probes/mla_device.sh >"$W/$name.summary" 2>&1
  cat "$W/$name.summary" >>"$FINAL/summary.txt"
  cp "$W/$name/timing.log" "$FINAL/timing_$name.log" 2>/dev/null
  [[ -f $W/$name/ncu-details.txt ]] && cp "$W/$name/ncu-details.txt" "$FINAL/ncu_$name.txt"
}
SECTIONS=${SECTIONS:-decode ncu}
want() { [[ " $SECTIONS " == *" $1 "* ]]; }
if want check; then
  OUT="$W/check" tools/device-check.sh gpu sanitize >"$W/check.txt" 2>&1
  tail -4 "$W/check.txt" | tee -a "$FINAL/summary.txt"
  cp "$W/check/gpu-tests.log" "$FINAL/gpu-tests.log"
  cp "$W/check/sanitizer.log" "$FINAL/sanitizer.log"
fi
if want decode; then
run dec16 VARIANTS=$h16,$h16b SHAPES=1:16:65536,8:16:65536,32:16:65536,128:16:65536 \
  NSA_MLA_TIMING_SPLITS=${DEC16_SPLITS:-0,2,4,8,16,8nc}
run dec128 VARIANTS=$ws3 SHAPES=1:128:65536,8:128:65536,32:128:65536,128:128:65536 NSA_MLA_TIMING_SPLITS=${DEC128_SPLITS:-0,1,2,4,8,16,0nc}
fi
if want ncu; then
run h32 VARIANTS=$h32 SHAPES=4096:32 NCU_SHAPE=4096:32
run h64 VARIANTS=$ws3 SHAPES=4096:64 NCU_SHAPE=4096:64
for f in "$W"/h32/ncu-details.txt "$W"/h64/ncu-details.txt; do
  echo "== $f"
  grep -iE "shared|L1/TEX Cache Throughput|Compute \(SM\) Throughput|Duration|SM Frequency|hmma|Issue Slots|Executed Ipc" "$f" | head -24
done | tee -a "$FINAL/summary.txt"
fi
if want final; then
  OUT="$W/final" tools/device-check.sh info gpu tune bench python >"$W/final.txt" 2>&1
  for f in gpu-tests.log tune.log bench.log python.log; do cp "$W/final/$f" "$FINAL/final_$f" 2>/dev/null; done
  sed -n '/device-check summary/,$p' "$W/final.txt" | tee -a "$FINAL/summary.txt"
  grep -E "test cases|assertions" "$FINAL/final_gpu-tests.log" | head -2
  tail -1 "$FINAL/final_python.log"
  sed -n '/s_q  h_q/,$p' "$FINAL/final_bench.log" | head -30
fi
if want rate; then
  nvcc -O3 -std=c++20 -gencode arch=compute_90a,code=sm_90a -I templates -o "$W/wgmma_rate" \
    tools/probes/wgmma_rate_probe.cu && "$W/wgmma_rate" 2 | tee "$FINAL/wgmma_rate.txt"
fi
echo "==== summary"
grep -vE '^\s*$' "$FINAL/summary.txt" | grep -E "s_q|^ +[0-9]" | head -120
