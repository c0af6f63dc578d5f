#!/usr/bin/env python3
"""Calls nsa_jit.topk_select on one random [B, L] fp32 matrix a few times (for ncu):
    NSA_JIT_LIBRARY=build/libnsajit.so python3 tools/probes/topk_one.py B L [k] [calls]"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import torch  # noqa: E402

import nsa_jit  # noqa: E402

batch, length = int(sys.argv[1]), int(sys.argv[2])
k = int(sys.argv[3]) if len(sys.argv) > 3 else 2048
calls = int(sys.argv[4]) if len(sys.argv) > 4 else 4
scores = torch.randn(batch, length, device="cuda", dtype=torch.float32)
out = torch.empty(batch, k, device="cuda", dtype=torch.int32)
for _ in range(calls):
    nsa_jit.topk_select(scores, k, out=out)
torch.cuda.synchronize()
