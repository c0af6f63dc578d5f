"""With a CPU-only torch (e.g. Debian's python3-torch): real tensors are read correctly and
refused with a clear error because they are not on a CUDA device. Skipped without torch."""

import pytest

torch = pytest.importorskip("torch")

import nsa_jit  # noqa: E402
from nsa_jit import _lib, _tensors  # noqa: E402


def test_torch_dtypes_shapes_and_strides_are_read(no_library):
    wide = torch.zeros(8, 1, 640, dtype=torch.bfloat16)
    info = _tensors.describe(wide[..., :576], "kv")
    assert info.dtype == _lib.DTYPE_BF16 and info.shape == (8, 1, 576) and info.strides == (640, 640, 1)
    assert info.is_torch and info.data == wide.data_ptr()
    assert _tensors.describe(torch.zeros(3, dtype=torch.int32), "x").dtype == _lib.DTYPE_INT32
    assert _tensors.describe(torch.zeros(3, dtype=torch.float32), "x").dtype == _lib.DTYPE_FP32
    assert _tensors.describe(torch.zeros(3, dtype=torch.float64), "x").dtype is None


def test_cpu_tensors_must_be_on_a_cuda_device(no_library):
    q = torch.zeros(4, 16, 576, dtype=torch.bfloat16)
    kv = torch.zeros(64, 1, 576, dtype=torch.bfloat16)
    indices = torch.zeros(4, 1, 8, dtype=torch.int32)
    with pytest.raises(ValueError, match="q must be on a CUDA device, got a tensor on cpu"):
        nsa_jit.flash_mla_sparse_fwd(q, kv, indices, 0.04)
    with pytest.raises(ValueError, match="scores must be on a CUDA device, got a tensor on cpu"):
        nsa_jit.topk_select(torch.zeros(2, 100), 10)


def test_wrong_torch_dtype_is_named(no_library):
    q = torch.zeros(4, 16, 576, dtype=torch.float16)
    with pytest.raises(TypeError, match="q must be bfloat16, got float16"):
        nsa_jit.flash_mla_sparse_fwd(q, q, q, 0.04)
