"""nsa-jit: JIT-compiled, autotuned DeepSeek sparse attention, as a drop-in for FlashMLA.

    from nsa_jit import flash_mla_sparse_fwd      # instead of: from flash_mla import ...
    out, max_logits, lse = flash_mla_sparse_fwd(q, kv, indices, sm_scale, d_v=512)

Pure Python over the C ABI (libnsajit.so, loaded with ctypes on first use). Importing needs
neither torch nor the library nor a GPU; a call without the library raises
NsaJitUnavailableError saying where it looked. See python/README.md.
"""

__version__ = "0.1.0"

from ._lib import (
    NsaJitError,
    NsaJitInvalidArgumentError,
    NsaJitUnavailableError,
    library_path,
)
from ._tensors import DeviceTensor
from .api import (
    Context,
    compile_count,
    configure,
    flash_mla_sparse_fwd,
    get_context,
    library_version,
    topk_select,
)

__all__ = [
    "__version__",
    "Context",
    "DeviceTensor",
    "NsaJitError",
    "NsaJitInvalidArgumentError",
    "NsaJitUnavailableError",
    "compile_count",
    "configure",
    "flash_mla_sparse_fwd",
    "get_context",
    "library_path",
    "library_version",
    "topk_select",
]
