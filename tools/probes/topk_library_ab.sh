#!/usr/bin/env bash
# A/B of topk_select between library builds on the GPU: each build tunes topk 2048 into its own
# cache, then tools/bench_topk.py (torch.topk in the same run) times its winner. A build given as
# build:name1,name2 tunes only those variants (nsa-tune tune --only), e.g. to time one kernel.
#   tools/probes/topk_library_ab.sh build-dev-base build-dev build-dev:nsa_topk_sm90a_t1024_i4_r11_s16_a4
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp}
n=0
for spec in "$@"; do
  b=${spec%%:*}
  only=()
  [[ $spec == *:* ]] && only=(--only "${spec#*:}")
  n=$((n + 1))
  name="$n-$(basename "$b")"
  export NSA_JIT_CACHE="$OUT/cache-$name.sqlite" LD_LIBRARY_PATH="$PWD/$b"
  "$b/nsa-tune" tune --family topk_select --topk 2048 "${only[@]}" > "$OUT/tune-$name.log" 2>&1 || { echo "tune failed: $spec"; tail -5 "$OUT/tune-$name.log"; }
  grep "winner" "$OUT/tune-$name.log"
  echo "== $spec"
  NSA_JIT_LIBRARY="$PWD/$b/libnsajit.so" python3 tools/bench_topk.py 2>&1 | tail -13
done
