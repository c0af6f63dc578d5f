#!/usr/bin/env bash
# Same-call A/B of two carried builds on the sparse_mla timing report (alternating processes):
#   VARIANTS=a,b SHAPES=4096:16,4096:64 tools/probes/mla_build_ab.sh build-dev-base build-dev
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/mla-ab}
mkdir -p "$OUT"
for round in 1 2; do
  for b in "$@"; do
    LD_LIBRARY_PATH="$PWD/$b" NSA_MLA_TIMING_VARIANTS=$VARIANTS NSA_MLA_TIMING_SHAPES=$SHAPES timeout 300 \
      "$b/tests/nsajit_gpu_tests" -tc='sparse_mla_variant_timing_report' >"$OUT/ab-$b-$round.log" 2>&1
    echo "== $b round $round (rc=$?)"
    sed -n '/s_q  h_q/,/^$/p' "$OUT/ab-$b-$round.log" | grep -v '^$' | tail -n +2
  done
done
