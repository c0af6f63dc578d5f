#!/usr/bin/env bash
# The issue tables on whatever card this runs on (session 2 ran it on nvidia-h100-x1): tune both
# families at topk 2048, the standard sparse_mla_fwd bench, topk_select vs torch.topk.
set -u
export LD_LIBRARY_PATH=$PWD/build-dev NSA_JIT_CACHE=/tmp/c.sqlite
B=build-dev
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader
timeout 60 $B/tests/nsajit_gpu_tests -tc='every_unpruned*' > $OUT/sweep.log 2>&1; grep -E "sweep:|Status" $OUT/sweep.log
timeout 120 $B/nsa-tune tune --topk 2048 > $OUT/tune.log 2>&1; grep winner $OUT/tune.log
timeout 60 $B/nsa-tune tune --family topk_select --topk 2048 > /dev/null 2>&1
timeout 150 $B/nsa-tune bench > $OUT/bench.log 2>&1; tail -25 $OUT/bench.log
NSA_JIT_LIBRARY=$PWD/$B/libnsajit.so timeout 60 python3 tools/bench_topk.py > $OUT/bench-topk-torch.log 2>&1; tail -14 $OUT/bench-topk-torch.log
