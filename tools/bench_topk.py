#!/usr/bin/env python3
"""Batched top-k on the GPU: nsa-jit's topk_select against torch.topk over the same padded
[B, L] fp32 matrix, in the same run (issue 5). Also measures a device-to-device copy of a
large buffer as the memory-bandwidth ceiling, and reports the fraction of it reached
(bytes = the scores read once). Median of CUDA-event-timed runs after warm-up.

    NSA_JIT_LIBRARY=build/libnsajit.so python3 tools/bench_topk.py [--k 2048]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

import torch  # noqa: E402

import nsa_jit  # noqa: E402


def median_ms(fn, warmup=10, reps=50):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    times.sort()
    return times[len(times) // 2]


def graph_ms(fn, calls=20):
    """Median time of one call, from replays of a CUDA graph holding `calls` calls: no host
    overhead (Python argument checks, launch latency) in either library's number."""
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        fn()  # warm up on the capture stream
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=stream):
        for _ in range(calls):
            fn()
    return median_ms(graph.replay, 3, 20) / calls


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--k", type=int, default=2048)
    args = parser.parse_args()
    k = args.k
    big = torch.empty(1 << 30, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(big)
    copy_ms = median_ms(lambda: dst.copy_(big), 3, 20)
    ceiling = 2 * big.numel() / (copy_ms * 1e-3) / 1e9  # read + write
    del big, dst
    print(f"topk_select vs torch.topk on {torch.cuda.get_device_name()}, k={k}; "
          f"copy ceiling {ceiling:.0f} GB/s (read+write, same run)")
    print(f"{'B':>5} {'L':>7} {'torch_ms':>9} {'nsa_ms':>8} {'speedup':>8} {'nsa_GB/s':>9} {'of_ceiling':>10} {'same_sets':>9}")
    for batch in (1, 16, 64, 128):
        for length in (8192, 32768, 131072):
            scores = torch.randn(batch, length, device="cuda", dtype=torch.float32)
            out = torch.empty(batch, k, device="cuda", dtype=torch.int32)
            nsa_jit.topk_select(scores, k, out=out)  # warm: the cache serves it, nothing compiles later
            torch_ms = graph_ms(lambda: torch.topk(scores, k, dim=1))
            nsa_ms = graph_ms(lambda: nsa_jit.topk_select(scores, k, out=out))
            ref = torch.topk(scores, k, dim=1).indices.sort(dim=1).values
            same = bool(torch.equal(out.long().sort(dim=1).values, ref))  # random floats: no ties
            gbps = batch * length * 4 / (nsa_ms * 1e-3) / 1e9
            print(f"{batch:>5} {length:>7} {torch_ms:>9.4f} {nsa_ms:>8.4f} {torch_ms / nsa_ms:>7.1f}x "
                  f"{gbps:>9.0f} {gbps / ceiling:>10.3f} {str(same):>9}")


if __name__ == "__main__":
    main()
