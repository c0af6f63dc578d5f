#!/usr/bin/env bash
# Session-2 device check in one call: the full GPU suite (every variant against the CPU
# reference), tune sparse_mla_fwd and topk_select, the standard bench table, topk vs torch,
# and a source-level ncu profile of two topk_select kernels. Logs under $OUT.
set -u
export LD_LIBRARY_PATH=$PWD/build-dev NSA_JIT_CACHE=/tmp/c.sqlite
B=build-dev
timeout 300 $B/tests/nsajit_gpu_tests > $OUT/gpu-tests.log 2>&1; echo "gpu rc=$?"
grep -E "sweep:|test cases|Status|ERROR" $OUT/gpu-tests.log | head -20
timeout 120 $B/nsa-tune tune --topk 2048 > $OUT/tune.log 2>&1; echo "tune rc=$?"
timeout 60 $B/nsa-tune tune --family topk_select --topk 2048 > /dev/null 2>&1
python3 - <<PY
import sqlite3
c=sqlite3.connect("/tmp/c.sqlite")
for h in (16,32):
    rows=c.execute("select variant, median_ms from timings where family='sparse_mla_fwd' and h_q=? order by median_ms limit 8",(h,)).fetchall()
    for v,m in rows: print(h, v.replace('nsa_fwd_sm90a_d576_',''), '%.4f'%m)
PY
timeout 150 $B/nsa-tune bench > $OUT/bench.log 2>&1; tail -25 $OUT/bench.log
NSA_JIT_LIBRARY=$PWD/$B/libnsajit.so timeout 60 python3 tools/bench_topk.py > $OUT/bench-topk-torch.log 2>&1; tail -13 $OUT/bench-topk-torch.log
for spec in "128 nsa_topk_sm90a_t1024_i4_r11_s16_a1" "16 nsa_topk_sm90a_t512_i4_r11_s16_a2"; do set -- $spec
  timeout 100 ncu --clock-control none --kernel-name "regex:^$2\$" --launch-skip 4 --launch-count 1 --section SourceCounters --section WarpStateStats --section SpeedOfLight --page source --print-source sass --csv \
    $B/nsa-tune --cache /tmp/t$1.sqlite tune --family topk_select --topk 2048 --batch $1 > $OUT/sass-$1.csv 2>/dev/null; echo "ncu $1 rc=$?"
done
