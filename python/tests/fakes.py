"""Fake tensors: objects with exactly the torch attributes nsa_jit reads, no torch needed."""


class FakeDevice:
    def __init__(self, spec):
        kind, _, index = spec.partition(":")
        self.type = kind
        self.index = int(index) if index else None

    def __repr__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"


def contiguous_strides(shape):
    strides, running = [], 1
    for size in reversed(shape):
        strides.append(running)
        running *= max(size, 1)
    return tuple(reversed(strides))


class FakeTensor:
    """shape, dtype ('torch.bfloat16' style), device, stride(), data_ptr(), is_cuda."""

    _next_address = 0x7F0000000000

    def __init__(self, shape, dtype="bfloat16", device="cuda:0", strides=None, data_ptr=None):
        self.shape = tuple(shape)
        self.dtype = "torch." + dtype
        self.device = FakeDevice(device)
        self._strides = tuple(strides) if strides is not None else contiguous_strides(self.shape)
        if data_ptr is None:
            FakeTensor._next_address += 0x100000
            data_ptr = FakeTensor._next_address
        self._data_ptr = data_ptr

    @property
    def is_cuda(self):
        return self.device.type == "cuda"

    def stride(self):
        return self._strides

    def data_ptr(self):
        return self._data_ptr

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]


def sparse_problem(s_q=4, h_q=16, d_qk=576, s_kv=64, topk=8, batch=None, device="cuda:0"):
    """A consistent set of fake inputs and outputs for flash_mla_sparse_fwd."""
    lead = (s_q,) if batch is None else (batch, s_q)
    return dict(
        q=FakeTensor(lead + (h_q, d_qk), "bfloat16", device),
        kv=FakeTensor((s_kv, 1, d_qk), "bfloat16", device),
        indices=FakeTensor(lead + (1, topk), "int32", device),
        out=FakeTensor(lead + (h_q, 512), "bfloat16", device),
        max_logits=FakeTensor(lead + (h_q,), "float32", device),
        lse=FakeTensor(lead + (h_q,), "float32", device),
    )


class FakeCudaArray:
    """An object exposing only __cuda_array_interface__ (like CuPy or Numba arrays)."""

    def __init__(self, shape, typestr, data_ptr, strides=None):
        self.__cuda_array_interface__ = {
            "shape": tuple(shape),
            "typestr": typestr,
            "data": (data_ptr, False),
            "strides": strides,
            "version": 3,
        }
