"""nsa-jit inside an SGLang-style NSA (DeepSeek sparse attention) backend.

The swap is one import line. The rest of the backend stays the same, except that the head
padding FlashMLA needs (h_q must be 64 or 128) goes away: nsa-jit runs h_q = 8..128 natively,
so at tensor-parallel 8 (16 heads per GPU) no work is wasted on 48 zero heads.

The deployment cache is found through the environment, with no code change:
    NSA_JIT_SHIPPED_CACHE=/models/deepseek-v3.2/nsa-jit-h100.sqlite   # read-only, from `nsa-tune export`
    NSA_JIT_CACHE=/var/cache/nsa-jit/cache.sqlite                     # writable, per machine
(or nsa_jit.configure(shipped_cache=..., cache_path=...) before the first call). With a
shipped cache that matches the GPU, the first call compiles nothing: check
nsa_jit.compile_count() == 0 after warm-up.

Run as a script for a tiny self-check (needs a GPU, torch and libnsajit.so; set
NSA_JIT_LIBRARY if the library is not in ../build):
    python examples/sglang_nsa_backend.py
"""

import math
import os
import sys
import time
from pathlib import Path

import torch

try:
    import nsa_jit
except ImportError:  # running from a checkout without `pip install ./python`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))
    import nsa_jit

# before: from sgl_kernel.flash_mla import flash_mla_sparse_fwd   (or: from flash_mla import ...)
from nsa_jit import flash_mla_sparse_fwd


class NativeSparseAttnBackendSketch:
    """The part of SGLang's NSA backend that calls the sparse kernel (prefill and decode)."""

    def __init__(self, num_heads: int, kv_lora_rank: int = 512, qk_rope_head_dim: int = 64):
        self.num_heads = num_heads  # heads on this GPU: 128 / tensor-parallel degree
        self.kv_lora_rank = kv_lora_rank  # d_v
        self.head_dim = kv_lora_rank + qk_rope_head_dim  # d_qk = 576
        self.sm_scale = 1.0 / math.sqrt(192)  # DeepSeek: 1/sqrt(qk_nope 128 + qk_rope 64), before mscale

    def forward_sparse(self, q_all: torch.Tensor, kv_cache: torch.Tensor, page_table_1: torch.Tensor,
                       topk_lengths: torch.Tensor = None) -> torch.Tensor:
        """q_all [tokens, h_q, 576] bf16; kv_cache [slots, 1, 576] bf16 (page size 1);
        page_table_1 [tokens, topk] int32 slot ids from the indexer's top-k, -1 = none.
        Returns the attention output [tokens, h_q, 512] bf16."""
        # With FlashMLA this function padded q to 64 heads and sliced the output back;
        # nsa-jit takes h_q as it is.
        out, _max_logits, _lse = flash_mla_sparse_fwd(
            q=q_all,
            kv=kv_cache,
            indices=page_table_1.unsqueeze(1),  # [tokens, h_kv = 1, topk]
            sm_scale=self.sm_scale,
            d_v=self.kv_lora_rank,
            topk_length=topk_lengths,
        )
        return out


def _reference(q, kv, indices, sm_scale):
    """float64 softmax(q . kv[idx]) . v over the valid indices (natural log is enough here)."""
    valid = (indices >= 0) & (indices < kv.shape[0])
    rows = kv[:, 0, :].double()[torch.where(valid, indices, torch.zeros_like(indices)).long()]
    logits = torch.einsum("thd,tkd->thk", q.double(), rows) * sm_scale
    logits = logits.masked_fill(~valid[:, None, :], float("-inf"))
    return torch.einsum("thk,tkd->thd", torch.softmax(logits, dim=-1), rows[..., :512])


def self_check() -> int:
    if not torch.cuda.is_available():
        print("self-check skipped: no CUDA device")
        return 0
    try:
        print(f"nsa-jit {nsa_jit.__version__}, library {nsa_jit.library_version()} at {nsa_jit.library_path()}")
    except nsa_jit.NsaJitUnavailableError as error:
        print(f"self-check skipped: {error}")
        return 0
    print(f"shipped cache: {os.environ.get('NSA_JIT_SHIPPED_CACHE', '(none)')}, "
          f"cache: {os.environ.get('NSA_JIT_CACHE', '(library default)')}")
    device = torch.device("cuda")
    torch.manual_seed(0)
    tokens, slots, topk = 64, 8192, 2048
    backend = NativeSparseAttnBackendSketch(num_heads=16)  # DeepSeek-V3.2 at tensor-parallel 8
    q = torch.randn(tokens, backend.num_heads, backend.head_dim, device=device).bfloat16()
    kv_cache = torch.randn(slots, 1, backend.head_dim, device=device).bfloat16()
    page_table = torch.rand(tokens, slots, device=device).argsort(dim=1)[:, :topk].int()
    page_table[:, -100:] = -1  # unused top-k slots

    started = time.perf_counter()
    out = backend.forward_sparse(q, kv_cache, page_table)
    torch.cuda.synchronize()
    first = time.perf_counter() - started
    compiled = nsa_jit.compile_count()
    started = time.perf_counter()
    for _ in range(10):
        backend.forward_sparse(q, kv_cache, page_table)
    torch.cuda.synchronize()
    steady = (time.perf_counter() - started) / 10

    ref = _reference(q, kv_cache, page_table, backend.sm_scale)
    error = ((out.double() - ref).norm() / ref.norm()).item()
    print(f"out {tuple(out.shape)}: relative error {error:.2e}; first call {first * 1e3:.1f} ms "
          f"({compiled} kernels compiled), then {steady * 1e3:.3f} ms per call")
    if error > 1e-2:
        print("FAILED: relative error above 1e-2")
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(self_check())
