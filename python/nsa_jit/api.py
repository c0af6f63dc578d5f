"""The public calls: flash_mla_sparse_fwd, topk_select, Context, and library queries.

Each call checks its arguments in Python first (precise ValueError/TypeError naming the
argument), then loads the library, allocates missing outputs with torch on q's device,
and launches on the current torch stream of that device. A failure inside the library is
raised as NsaJitError with the library's message (nsajit_last_error).
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from typing import Any, Dict, Optional, Tuple

from . import _lib
from . import _tensors as T
from ._lib import NsaJitError, NsaJitUnavailableError  # noqa: F401  (re-exported)

CACHE_ENV = "NSA_JIT_CACHE"
SHIPPED_CACHE_ENV = "NSA_JIT_SHIPPED_CACHE"
BACKEND_ENV = "NSA_JIT_BACKEND"
VERBOSE_ENV = "NSA_JIT_VERBOSE"

SUPPORTED_D_QK = (512, 576)
SUPPORTED_D_V = 512


# ---- contexts ------------------------------------------------------------------------------


class Context:
    """One nsajit_context: a GPU, a backend, a writable cache and an optional shipped one.

    Settings default to the environment: cache_path from $NSA_JIT_CACHE (else the
    library's default, $XDG_CACHE_HOME/nsa-jit/cache.sqlite), shipped_cache from
    $NSA_JIT_SHIPPED_CACHE (read-only, layered under the writable cache), backend from
    $NSA_JIT_BACKEND ("cuda", "hip"; unset = first with a GPU), verbose from $NSA_JIT_VERBOSE.
    """

    def __init__(
        self,
        device: int = 0,
        *,
        cache_path: Optional[str] = None,
        shipped_cache: Optional[str] = None,
        backend: Optional[str] = None,
        verbose: Optional[bool] = None,
    ):
        self.device = T.require_int(device, "device", 0)
        self.cache_path = cache_path if cache_path is not None else os.environ.get(CACHE_ENV) or None
        self.shipped_cache = shipped_cache if shipped_cache is not None else os.environ.get(SHIPPED_CACHE_ENV) or None
        self.backend = backend if backend is not None else os.environ.get(BACKEND_ENV) or None
        if verbose is None:
            verbose = os.environ.get(VERBOSE_ENV, "0") not in ("", "0")
        self.verbose = bool(verbose)
        self._lib = _lib.load_library()
        options = _lib.Options()
        self._lib.nsajit_default_options(ctypes.byref(options))
        options.abi_version = _lib.ABI_VERSION
        options.device_ordinal = self.device
        # The byte strings stay referenced by `options` (and self) for the create call.
        if self.backend is not None:
            options.backend = self.backend.encode()
        if self.cache_path is not None:
            options.cache_path = os.fsencode(self.cache_path)
        if self.shipped_cache is not None:
            options.shipped_cache_path = os.fsencode(self.shipped_cache)
        options.verbose = 1 if self.verbose else 0
        handle = _lib.ContextHandle()
        status = self._lib.nsajit_create(ctypes.byref(options), ctypes.byref(handle))
        _lib.check_status(self._lib, status, f"nsajit_create(device {self.device})")
        self._handle: Optional[int] = handle.value

    @property
    def handle(self) -> int:
        if self._handle is None:
            raise NsaJitError("this nsa_jit.Context was closed", _lib.ERROR_INVALID_ARGUMENT)
        return self._handle

    def compile_count(self) -> int:
        """Kernels compiled by this context since it was created (0 on a warm cache)."""
        return int(self._lib.nsajit_compile_count(self.handle))

    def close(self) -> None:
        """Destroy the C context. Work already queued on a stream must have finished."""
        if self._handle is not None:
            self._lib.nsajit_destroy(self._handle)
            self._handle = None

    def __del__(self) -> None:
        # Shared per-device contexts live until the process ends; at interpreter shutdown the
        # GPU driver may already be gone, so nothing is destroyed then.
        if getattr(self, "_handle", None) is not None and not getattr(self, "_shared", False) and not sys.is_finalizing():
            try:
                self.close()
            except Exception:  # noqa: BLE001  (a destructor must not raise)
                pass

    def __enter__(self) -> "Context":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._handle is None else "open"
        return (
            f"nsa_jit.Context(device={self.device}, cache_path={self.cache_path!r}, "
            f"shipped_cache={self.shipped_cache!r}, backend={self.backend!r}, {state})"
        )


_contexts: Dict[int, Context] = {}
_context_defaults: Dict[str, Any] = {}
_contexts_lock = threading.Lock()


def configure(
    *,
    cache_path: Optional[str] = None,
    shipped_cache: Optional[str] = None,
    backend: Optional[str] = None,
    verbose: Optional[bool] = None,
) -> None:
    """Settings for the per-device contexts the calls create lazily (overriding the env).

    Must run before the first call on any device: a context keeps its settings for life.
    """
    with _contexts_lock:
        if _contexts:
            raise RuntimeError(
                "nsa_jit.configure() must be called before the first kernel call: contexts already exist "
                f"for devices {sorted(_contexts)}"
            )
        _context_defaults.clear()
        given = dict(cache_path=cache_path, shipped_cache=shipped_cache, backend=backend, verbose=verbose)
        _context_defaults.update({key: value for key, value in given.items() if value is not None})


def get_context(device: int) -> Context:
    """The shared context of one GPU ordinal, created on first use and kept for the process."""
    device = T.require_int(device, "device", 0)
    with _contexts_lock:
        context = _contexts.get(device)
        if context is None:
            context = Context(device, **_context_defaults)
            context._shared = True
            _contexts[device] = context
        return context


def _reset_contexts_for_tests() -> None:
    with _contexts_lock:
        _contexts.clear()
        _context_defaults.clear()


def library_version() -> str:
    """nsajit_version() of the loaded library."""
    lib = _lib.load_library()
    version = lib.nsajit_version()
    return version.decode() if version else ""


def compile_count(device: Any = None) -> int:
    """Kernels compiled by the shared context of `device` (an ordinal or a torch.device;
    default: the current GPU)."""
    index = getattr(device, "index", device)
    return get_context(_default_device() if index is None else index).compile_count()


# ---- helpers ---------------------------------------------------------------------------------


def _torch_module():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _default_device() -> int:
    torch = _torch_module()
    if torch is not None and torch.cuda.is_available():
        return int(torch.cuda.current_device())
    return 0


def _stream_handle(stream: Any, device: int, any_torch: bool) -> Optional[int]:
    """The stream to launch on: explicit `stream`, else torch's current stream of `device`."""
    if stream is None:
        if any_torch:
            torch = _torch_module()
            return int(torch.cuda.current_stream(device).cuda_stream) or None
        return None  # NULL: the default stream
    if isinstance(stream, int):
        return stream or None
    for attribute in ("cuda_stream", "ptr", "handle"):
        value = getattr(stream, attribute, None)
        if isinstance(value, int):
            return value or None
    raise TypeError(f"stream must be an int handle or have .cuda_stream / .ptr, got {type(stream).__name__}")


def _allocate(like: T.TensorInfo, shape: Tuple[int, ...], dtype_name: str, what: str):
    torch = _torch_module()
    if torch is None or not like.is_torch:
        raise TypeError(
            f"{what} was not given and cannot be allocated: allocation needs torch and a torch tensor "
            f"{like.name}; pass {what}= explicitly"
        )
    return torch.empty(shape, dtype=getattr(torch, dtype_name), device=like.source.device)


def _resolve_device(infos) -> int:
    index = T.common_device_index(infos)
    return _default_device() if index is None else index


def _optional(obj: Any, name: str) -> Optional[T.TensorInfo]:
    return None if obj is None else T.describe(obj, name)


def _check_input(info: T.TensorInfo, dtype: int) -> None:
    T.require_dtype(info, dtype)
    T.require_cuda(info)
    T.require_layout(info)


def _check_output(info: T.TensorInfo, dtype: int, shape: Tuple[int, ...], layout: str) -> None:
    T.require_dtype(info, dtype)
    T.require_cuda(info)
    T.require_shape(info, shape, layout)
    T.require_writable_layout(info)


# ---- flash_mla_sparse_fwd ---------------------------------------------------------------------


def flash_mla_sparse_fwd(
    q: Any,
    kv: Any,
    indices: Any,
    sm_scale: float,
    d_v: int = 512,
    attn_sink: Any = None,
    topk_length: Any = None,
    *,
    out: Any = None,
    max_logits: Any = None,
    lse: Any = None,
    natural_log: bool = False,
    stream: Any = None,
    context: Optional[Context] = None,
):
    """Sparse MLA forward, FlashMLA's `flash_mla_sparse_fwd` signature (DESIGN.md §1).

    q [s_q, h_q, d_qk] (or [b, s_q, h_q, d_qk]) bf16; kv [s_kv, 1, d_qk] bf16 (row stride
    honoured); indices [s_q, 1, topk] int32 (invalid: < 0 or >= s_kv); attn_sink [h_q] fp32;
    topk_length [s_q] int32. d_qk is 576 or 512, d_v 512.
    Returns (out [s_q, h_q, d_v] bf16, max_logits [s_q, h_q] fp32, lse [s_q, h_q] fp32),
    base-2 by default (empty rows: out 0, max_logits and lse -inf); natural_log=True gives
    natural-log values and lse = +inf for empty rows, like current FlashMLA.
    out=/max_logits=/lse= write into caller buffers. Runs on torch's current stream of q's
    device (or `stream`), allocates nothing when all outputs are given, never synchronises.
    """
    qi = T.describe(q, "q")
    kvi = T.describe(kv, "kv")
    ii = T.describe(indices, "indices")
    sink = _optional(attn_sink, "attn_sink")
    lengths = _optional(topk_length, "topk_length")

    _check_input(qi, _lib.DTYPE_BF16)
    T.require_ndim(qi, (3, 4), "[s_q, h_q, d_qk] or [b, s_q, h_q, d_qk]")
    lead, h_q, d_qk = qi.shape[:-2], qi.shape[-2], qi.shape[-1]
    if d_qk not in SUPPORTED_D_QK:
        raise ValueError(f"q: d_qk (last dimension) must be 576 or 512, got {d_qk}")
    if h_q < 1:
        raise ValueError(f"q: h_q must be at least 1, got shape {list(qi.shape)}")

    d_v = T.require_int(d_v, "d_v", 0)
    if d_v != SUPPORTED_D_V:
        raise ValueError(f"d_v must be 512, got {d_v}")
    sm_scale = T.require_float(sm_scale, "sm_scale")

    _check_input(kvi, _lib.DTYPE_BF16)
    T.require_ndim(kvi, (2, 3), "[s_kv, h_kv, d_qk]")
    if kvi.ndim == 3 and kvi.shape[1] != 1:
        raise ValueError(f"kv: h_kv must be 1 (MQA), got shape {list(kvi.shape)}")
    if kvi.shape[-1] != d_qk:
        raise ValueError(f"kv: d_qk must match q's ({d_qk}), got shape {list(kvi.shape)}")
    if kvi.shape[0] < 1:
        raise ValueError(f"kv must have at least one row, got shape {list(kvi.shape)}")

    _check_input(ii, _lib.DTYPE_INT32)
    with_h_kv = len(lead) + 2
    T.require_ndim(ii, (with_h_kv, with_h_kv - 1), "[s_q, h_kv, topk] with q's leading dimensions")
    if tuple(ii.shape[: len(lead)]) != tuple(lead):
        raise ValueError(f"indices: leading dimensions must match q's {list(lead)}, got shape {list(ii.shape)}")
    if ii.ndim == with_h_kv and ii.shape[-2] != 1:
        raise ValueError(f"indices: h_kv must be 1 (MQA), got shape {list(ii.shape)}")
    topk = ii.shape[-1]
    if topk < 1:
        raise ValueError(f"indices: topk (last dimension) must be at least 1, got shape {list(ii.shape)}")

    if sink is not None:
        _check_input(sink, _lib.DTYPE_FP32)
        T.require_shape(sink, (h_q,), "[h_q]")
    if lengths is not None:
        _check_input(lengths, _lib.DTYPE_INT32)
        T.require_shape(lengths, tuple(lead), "q's leading dimensions, [s_q]")

    out_shape, stat_shape = tuple(lead) + (h_q, d_v), tuple(lead) + (h_q,)
    given = [info for info in (_optional(out, "out"), _optional(max_logits, "max_logits"), _optional(lse, "lse")) if info]
    for info in given:
        if info.name == "out":
            _check_output(info, _lib.DTYPE_BF16, out_shape, "q's leading dimensions + [h_q, d_v]")
        else:
            _check_output(info, _lib.DTYPE_FP32, stat_shape, "q's leading dimensions + [h_q]")
    inputs = [qi, kvi, ii] + [info for info in (sink, lengths) if info is not None]
    device = _resolve_device(inputs + given)

    lib = _lib.load_library()
    if out is None:
        out = _allocate(qi, out_shape, "bfloat16", "out")
    if max_logits is None:
        max_logits = _allocate(qi, stat_shape, "float32", "max_logits")
    if lse is None:
        lse = _allocate(qi, stat_shape, "float32", "lse")
    if qi.numel == 0:
        return out, max_logits, lse  # nothing to compute; no launch

    args = _lib.SparseMlaArgs()
    args.q, args.kv, args.indices = qi.to_c(), kvi.to_c(), ii.to_c()
    args.topk_length = lengths.to_c() if lengths is not None else T.absent_c_tensor()
    args.attn_sink = sink.to_c() if sink is not None else T.absent_c_tensor()
    outputs = {}
    for name, obj in (("out", out), ("max_logits", max_logits), ("lse", lse)):
        info = T.describe(obj, name)
        T.require_writable_layout(info)
        outputs[name] = info.to_c()
    args.out, args.max_logits, args.lse = outputs["out"], outputs["max_logits"], outputs["lse"]
    args.sm_scale = sm_scale
    args.d_v = d_v
    args.flags = _lib.LSE_NATURAL_LOG if natural_log else 0

    context = context if context is not None else get_context(device)
    handle = _stream_handle(stream, device, any(info.is_torch for info in inputs))
    status = lib.nsajit_sparse_mla_fwd(context.handle, ctypes.byref(args), handle)
    _lib.check_status(lib, status, "nsajit_sparse_mla_fwd")
    return out, max_logits, lse


# ---- topk_select ------------------------------------------------------------------------------


def topk_select(
    scores: Any,
    k: int,
    lengths: Any = None,
    *,
    sorted: bool = False,  # noqa: A002  (the contract's name)
    out: Any = None,
    stream: Any = None,
    context: Optional[Context] = None,
):
    """Positions of the k largest scores of each row's valid prefix (DESIGN.md §2).

    scores [B, L] fp32 (row stride honoured), lengths [B] int32 (valid prefix; None = L),
    returns indices [B, k] int32; -1 fills the tail of a row with fewer than k valid
    entries; ties go to the lower position; order inside the k is unspecified unless
    sorted=True (descending score, ties by lower position).
    """
    si = T.describe(scores, "scores")
    _check_input(si, _lib.DTYPE_FP32)
    T.require_ndim(si, (2,), "[B, L]")
    rows, columns = si.shape
    if columns < 1:
        raise ValueError(f"scores must have at least one column, got shape {list(si.shape)}")
    k = T.require_int(k, "k", 1)
    li = _optional(lengths, "lengths")
    if li is not None:
        _check_input(li, _lib.DTYPE_INT32)
        T.require_shape(li, (rows,), "[B]")
    oi = _optional(out, "out")
    if oi is not None:
        _check_output(oi, _lib.DTYPE_INT32, (rows, k), "[B, k]")
    inputs = [si] + ([li] if li is not None else [])
    device = _resolve_device(inputs + ([oi] if oi is not None else []))

    lib = _lib.load_library()
    if out is None:
        out = _allocate(si, (rows, k), "int32", "out")
        oi = T.describe(out, "out")
        T.require_writable_layout(oi)
    if rows == 0:
        return out

    args = _lib.TopkArgs()
    args.scores = si.to_c()
    args.lengths = li.to_c() if li is not None else T.absent_c_tensor()
    args.indices = oi.to_c()
    args.k = k
    args.sorted = 1 if sorted else 0

    context = context if context is not None else get_context(device)
    handle = _stream_handle(stream, device, any(info.is_torch for info in inputs))
    status = lib.nsajit_topk_select(context.handle, ctypes.byref(args), handle)
    _lib.check_status(lib, status, "nsajit_topk_select")
    return out
