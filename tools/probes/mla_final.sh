#!/usr/bin/env bash
# Issue 6's closing call (one device call): the GPU tests, tune + the standard bench table,
# the Python GPU tests, then a same-run A/B of ws3 schedule experiments (VARIANTS, SHAPES).
#   BUILD=build-dev tools/probes/mla_final.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
FINAL=${OUT:-/tmp/mla-final}
mkdir -p "$FINAL"
W=/tmp/mla-final-work
rm -rf "$W" && mkdir -p "$W"
export BUILD=${BUILD:-build-dev}
export LD_LIBRARY_PATH="$PWD/$BUILD"
OUT="$W/dc" tools/device-check.sh info gpu tune bench python >"$W/dc.txt" 2>&1
for f in gpu-tests.log tune.log bench.log python.log example.log; do cp "$W/dc/$f" "$FINAL/" 2>/dev/null; done
ws3=nsa_fwd_sm90a_d576_bh64_bt64_w12_st2_mma1_ws3
if [[ -n ${VARIANTS=$ws3,$ws3#16} ]]; then
  NSA_MLA_TIMING_VARIANTS=$VARIANTS NSA_MLA_TIMING_SHAPES=${SHAPES:-4096:64,4096:128,1024:128} timeout 300 \
    "$BUILD/tests/nsajit_gpu_tests" -tc='sparse_mla_variant_timing_report' >"$FINAL/ab.log" 2>&1
fi
sed -n '/device-check summary/,$p' "$W/dc.txt"
grep -E "test cases|assertions" "$FINAL/gpu-tests.log" | head -2
tail -3 "$FINAL/python.log"
echo "==== bench"
sed -n '/s_q  h_q/,$p' "$FINAL/bench.log" | head -40
echo "==== A/B"
sed -n '/s_q  h_q/,/^$/p' "$FINAL/ab.log" | head -20
