"""Finding and loading libnsajit.so, and ctypes mirrors of runtime/include/nsajit/nsajit.h.

Nothing here imports torch. The library is loaded on first use, never at import, so the
package imports on a machine without the library or a GPU; a call then raises
NsaJitUnavailableError saying where it looked and how to fix it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from pathlib import Path
from typing import List, Optional, Tuple

# ---- constants mirrored from nsajit.h ---------------------------------------------------

ABI_VERSION = 1
MAX_DIMS = 4

OK = 0
ERROR_INVALID_ARGUMENT = 1
ERROR_UNAVAILABLE = 2
ERROR_COMPILE_FAILED = 3
ERROR_DEVICE = 4
ERROR_CACHE = 5
ERROR_NOT_FOUND = 6
ERROR_INTERNAL = 7

STATUS_NAMES = {
    OK: "NSAJIT_OK",
    ERROR_INVALID_ARGUMENT: "NSAJIT_ERROR_INVALID_ARGUMENT",
    ERROR_UNAVAILABLE: "NSAJIT_ERROR_UNAVAILABLE",
    ERROR_COMPILE_FAILED: "NSAJIT_ERROR_COMPILE_FAILED",
    ERROR_DEVICE: "NSAJIT_ERROR_DEVICE",
    ERROR_CACHE: "NSAJIT_ERROR_CACHE",
    ERROR_NOT_FOUND: "NSAJIT_ERROR_NOT_FOUND",
    ERROR_INTERNAL: "NSAJIT_ERROR_INTERNAL",
}

DTYPE_BF16 = 0
DTYPE_FP32 = 1
DTYPE_INT32 = 2

DTYPE_NAMES = {DTYPE_BF16: "bfloat16", DTYPE_FP32: "float32", DTYPE_INT32: "int32"}
DTYPE_ITEMSIZE = {DTYPE_BF16: 2, DTYPE_FP32: 4, DTYPE_INT32: 4}

LSE_NATURAL_LOG = 1

LIBRARY_ENV = "NSA_JIT_LIBRARY"

# ---- errors -------------------------------------------------------------------------------


class NsaJitError(RuntimeError):
    """A call into libnsajit failed; the message is the library's own (nsajit_last_error)."""

    def __init__(self, message: str, status: int = ERROR_INTERNAL):
        super().__init__(message)
        self.status = status
        self.status_name = STATUS_NAMES.get(status, f"status {status}")


class NsaJitInvalidArgumentError(NsaJitError, ValueError):
    """The library rejected an argument (NSAJIT_ERROR_INVALID_ARGUMENT)."""


class NsaJitUnavailableError(NsaJitError):
    """libnsajit.so could not be found or loaded."""

    def __init__(self, message: str):
        super().__init__(message, ERROR_UNAVAILABLE)


def error_for_status(status: int, message: str) -> NsaJitError:
    if status == ERROR_INVALID_ARGUMENT:
        return NsaJitInvalidArgumentError(message, status)
    return NsaJitError(message, status)


# ---- struct mirrors -----------------------------------------------------------------------


class Tensor(ctypes.Structure):
    """nsajit_tensor: device pointer, dtype, ndim, shape and strides in elements."""

    _fields_ = [
        ("data", ctypes.c_void_p),
        ("dtype", ctypes.c_int32),
        ("ndim", ctypes.c_int32),
        ("shape", ctypes.c_int64 * MAX_DIMS),
        ("strides", ctypes.c_int64 * MAX_DIMS),
    ]


class Options(ctypes.Structure):
    """nsajit_options."""

    _fields_ = [
        ("abi_version", ctypes.c_int32),
        ("device_ordinal", ctypes.c_int32),
        ("backend", ctypes.c_char_p),
        ("cache_path", ctypes.c_char_p),
        ("shipped_cache_path", ctypes.c_char_p),
        ("verbose", ctypes.c_int32),
    ]


class SparseMlaArgs(ctypes.Structure):
    """nsajit_sparse_mla_args."""

    _fields_ = [
        ("q", Tensor),
        ("kv", Tensor),
        ("indices", Tensor),
        ("topk_length", Tensor),
        ("attn_sink", Tensor),
        ("out", Tensor),
        ("max_logits", Tensor),
        ("lse", Tensor),
        ("sm_scale", ctypes.c_float),
        ("d_v", ctypes.c_int32),
        ("flags", ctypes.c_uint32),
    ]


class TopkArgs(ctypes.Structure):
    """nsajit_topk_args."""

    _fields_ = [
        ("scores", Tensor),
        ("lengths", Tensor),
        ("indices", Tensor),
        ("k", ctypes.c_int32),
        ("sorted", ctypes.c_int32),
    ]


ContextHandle = ctypes.c_void_p  # nsajit_context* (opaque)

# ---- finding and loading the library -------------------------------------------------------


def candidate_paths() -> List[Tuple[str, str]]:
    """Where the library is looked for, in order: (what to dlopen, why it is a candidate).

    An explicit NSA_JIT_LIBRARY is the only candidate when set: a wrong explicit path is
    reported, never silently replaced by another copy.
    """
    explicit = os.environ.get(LIBRARY_ENV)
    if explicit:
        return [(explicit, f"${LIBRARY_ENV}")]
    package_dir = Path(__file__).resolve().parent
    candidates = [
        (str(package_dir / "libnsajit.so"), "copy next to the package"),
        (str(package_dir.parent.parent / "build" / "libnsajit.so"), "repository build directory"),
    ]
    found = ctypes.util.find_library("nsajit")
    if found:
        candidates.append((found, "ctypes.util.find_library('nsajit')"))
    candidates.append(("libnsajit.so.0", "dynamic loader search path (LD_LIBRARY_PATH, ldconfig)"))
    candidates.append(("libnsajit.so", "dynamic loader search path (LD_LIBRARY_PATH, ldconfig)"))
    return candidates


def _declare_prototypes(lib: ctypes.CDLL) -> None:
    c_int, c_char_p, c_void_p = ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p
    lib.nsajit_default_options.argtypes = [ctypes.POINTER(Options)]
    lib.nsajit_default_options.restype = None
    lib.nsajit_create.argtypes = [ctypes.POINTER(Options), ctypes.POINTER(ContextHandle)]
    lib.nsajit_create.restype = c_int
    lib.nsajit_destroy.argtypes = [ContextHandle]
    lib.nsajit_destroy.restype = None
    lib.nsajit_last_error.argtypes = []
    lib.nsajit_last_error.restype = c_char_p
    lib.nsajit_version.argtypes = []
    lib.nsajit_version.restype = c_char_p
    lib.nsajit_sparse_mla_fwd.argtypes = [ContextHandle, ctypes.POINTER(SparseMlaArgs), c_void_p]
    lib.nsajit_sparse_mla_fwd.restype = c_int
    lib.nsajit_topk_select.argtypes = [ContextHandle, ctypes.POINTER(TopkArgs), c_void_p]
    lib.nsajit_topk_select.restype = c_int
    lib.nsajit_compile_count.argtypes = [ContextHandle]
    lib.nsajit_compile_count.restype = ctypes.c_int64


_lock = threading.Lock()
_library: Optional[ctypes.CDLL] = None
_library_path: Optional[str] = None


def load_library() -> ctypes.CDLL:
    """The loaded library (cached); raises NsaJitUnavailableError listing every attempt."""
    global _library, _library_path
    with _lock:
        if _library is not None:
            return _library
        attempts = []
        for path, why in candidate_paths():
            looks_like_file = os.sep in path
            if looks_like_file and not os.path.exists(path):
                attempts.append(f"  {path} ({why}): no such file")
                continue
            try:
                lib = ctypes.CDLL(path)
            except OSError as error:
                attempts.append(f"  {path} ({why}): {error}")
                continue
            try:
                _declare_prototypes(lib)
            except AttributeError as error:
                attempts.append(f"  {path} ({why}): not the nsa-jit C ABI ({error})")
                continue
            _library, _library_path = lib, path
            return lib
        raise NsaJitUnavailableError(
            "nsa-jit: libnsajit.so could not be loaded. Looked in:\n"
            + "\n".join(attempts)
            + "\nFix: build it (cmake -S . -B build && make -C build nsajit) in the nsa-jit "
            f"repository, or set {LIBRARY_ENV}=/path/to/libnsajit.so."
        )


def library_path() -> Optional[str]:
    """Path of the loaded library, or None when it has not been loaded."""
    return _library_path


def reset_for_tests() -> None:
    """Forget the loaded library so the next call searches again (tests change the env)."""
    global _library, _library_path
    with _lock:
        _library, _library_path = None, None


def last_error(lib: ctypes.CDLL) -> str:
    message = lib.nsajit_last_error()
    return message.decode("utf-8", "replace") if message else ""


def check_status(lib: ctypes.CDLL, status: int, what: str) -> None:
    """Raise the library's message as a Python exception when `status` is not NSAJIT_OK."""
    if status == OK:
        return
    message = last_error(lib) or "(the library gave no message)"
    name = STATUS_NAMES.get(status, f"status {status}")
    raise error_for_status(status, f"{what} failed ({name}): {message}")
