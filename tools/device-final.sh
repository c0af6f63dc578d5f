#!/usr/bin/env bash
# Session-2 final check, part A: full GPU suite, then topk_select tune + both benchmarks.
set -u
export LD_LIBRARY_PATH=$PWD/build-dev NSA_JIT_CACHE=$OUT/c.sqlite
B=build-dev
timeout 420 $B/tests/nsajit_gpu_tests > $OUT/gpu-tests.log 2>&1; echo "gpu rc=$?"
grep -E "sweep:|test cases|Status|ERROR" $OUT/gpu-tests.log | head -20
timeout 60 $B/nsa-tune tune --family topk_select --topk 2048 > $OUT/tune-topk.log 2>&1; grep winner $OUT/tune-topk.log
NSA_JIT_LIBRARY=$PWD/$B/libnsajit.so timeout 60 python3 tools/bench_topk.py > $OUT/bench-topk-torch.log 2>&1; tail -14 $OUT/bench-topk-torch.log
