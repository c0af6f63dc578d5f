"""Turning caller tensors into nsajit_tensor descriptions, and the argument checks.

A tensor source is one of:
- a torch tensor, or any object that looks like one (shape, dtype, device, stride(),
  data_ptr()) - this is also how the tests' fake tensors come in;
- `DeviceTensor`, an explicit description (pointer, dtype name, shape, strides, device);
- an object with `__cuda_array_interface__` (CuPy, Numba, ...). CAI has no bfloat16
  typestr: a 2-byte void typestr ('<V2' / '|V2') is read as bfloat16; for anything else
  wrap the pointer in DeviceTensor.

Nothing here imports torch.
"""

from __future__ import annotations

import numbers
import sys
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Sequence, Tuple

from . import _lib

_DTYPES_BY_NAME = {
    "bfloat16": _lib.DTYPE_BF16,
    "float32": _lib.DTYPE_FP32,
    "float": _lib.DTYPE_FP32,
    "int32": _lib.DTYPE_INT32,
    "int": _lib.DTYPE_INT32,
}

_DTYPES_BY_TYPESTR = {
    "<f4": _lib.DTYPE_FP32,
    "<i4": _lib.DTYPE_INT32,
    "<V2": _lib.DTYPE_BF16,
    "|V2": _lib.DTYPE_BF16,
}
_TYPESTR_ITEMSIZE = {"<f4": 4, "<i4": 4, "<V2": 2, "|V2": 2}


class _Device:
    def __init__(self, device_type: str, index: Optional[int]):
        self.type, self.index = device_type, index

    def __repr__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"


class DeviceTensor:
    """An explicit tensor description for callers without torch.

    `data_ptr` is a device address, `dtype` one of 'bfloat16', 'float32', 'int32',
    `strides` are in elements (None = C-contiguous), `device` the GPU ordinal.
    """

    def __init__(
        self,
        data_ptr: int,
        dtype: str,
        shape: Sequence[int],
        strides: Optional[Sequence[int]] = None,
        device: int = 0,
    ):
        self._data_ptr = int(data_ptr)
        self.dtype = dtype
        self.shape = tuple(int(s) for s in shape)
        self._strides = tuple(int(s) for s in strides) if strides is not None else _contiguous_strides(self.shape)
        if len(self._strides) != len(self.shape):
            raise ValueError(f"DeviceTensor: {len(self._strides)} strides for {len(self.shape)} dimensions")
        self.device = _Device("cuda", int(device))

    def data_ptr(self) -> int:
        return self._data_ptr

    def stride(self) -> Tuple[int, ...]:
        return self._strides

    def __repr__(self) -> str:
        return f"DeviceTensor(0x{self._data_ptr:x}, {self.dtype}, shape={self.shape}, strides={self._strides}, device={self.device})"

    @classmethod
    def from_cuda_array_interface(cls, obj: Any, dtype: Optional[str] = None, device: int = 0) -> "DeviceTensor":
        """Describe `obj` from its `__cuda_array_interface__`; `dtype` overrides the typestr."""
        cai = obj.__cuda_array_interface__
        typestr = cai["typestr"]
        if dtype is None:
            code = _DTYPES_BY_TYPESTR.get(typestr)
            if code is None:
                raise TypeError(
                    f"__cuda_array_interface__ typestr {typestr!r} is not one nsa-jit reads "
                    "('<f4' float32, '<i4' int32, '<V2' bfloat16); pass dtype= to say what it is"
                )
            dtype = _lib.DTYPE_NAMES[code]
        itemsize = _lib.DTYPE_ITEMSIZE[_DTYPES_BY_NAME[dtype]]
        if cai.get("mask") is not None:
            raise ValueError("__cuda_array_interface__ with a mask is not supported")
        shape = tuple(int(s) for s in cai["shape"])
        byte_strides = cai.get("strides")
        if byte_strides is None:
            strides = _contiguous_strides(shape)
        else:
            if any(int(s) % itemsize for s in byte_strides):
                raise ValueError(f"__cuda_array_interface__ strides {tuple(byte_strides)} are not multiples of the item size {itemsize}")
            strides = tuple(int(s) // itemsize for s in byte_strides)
        return cls(cai["data"][0], dtype, shape, strides, device)


def _contiguous_strides(shape: Sequence[int]) -> Tuple[int, ...]:
    strides, running = [], 1
    for size in reversed(shape):
        strides.append(running)
        running *= max(int(size), 1)
    return tuple(reversed(strides))


@dataclass
class TensorInfo:
    """What the checks and the C call need to know about one argument."""

    name: str
    data: int
    dtype: Optional[int]  # nsajit dtype code, None when not one nsa-jit supports
    dtype_name: str
    shape: Tuple[int, ...]
    strides: Tuple[int, ...]
    device: Any  # has .type and .index
    is_torch: bool
    source: Any

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def numel(self) -> int:
        count = 1
        for size in self.shape:
            count *= size
        return count

    def to_c(self) -> _lib.Tensor:
        tensor = _lib.Tensor()
        tensor.data = self.data or None
        tensor.dtype = self.dtype
        tensor.ndim = self.ndim
        for dim, (size, stride) in enumerate(zip(self.shape, self.strides)):
            tensor.shape[dim] = size
            tensor.strides[dim] = stride
        return tensor


def absent_c_tensor() -> _lib.Tensor:
    """An absent optional input: data NULL."""
    return _lib.Tensor()


def is_torch_tensor(obj: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.Tensor)


def _dtype_name(dtype: Any) -> str:
    name = str(dtype)
    return name[len("torch.") :] if name.startswith("torch.") else name


def describe(obj: Any, name: str) -> TensorInfo:
    """Read pointer, dtype, shape, strides and device of one argument (no checks yet)."""
    if obj is None:
        raise TypeError(f"{name} must be a tensor, got None")
    if not _looks_like_tensor(obj) and hasattr(obj, "__cuda_array_interface__"):
        obj_description = DeviceTensor.from_cuda_array_interface(obj)
        info = describe(obj_description, name)
        info.source = obj
        info.device = _Device("cuda", None)  # CAI does not say which GPU
        return info
    if not _looks_like_tensor(obj):
        raise TypeError(
            f"{name} must be a torch tensor, a nsa_jit.DeviceTensor or an object with "
            f"__cuda_array_interface__, got {type(obj).__name__}"
        )
    dtype_name = _dtype_name(obj.dtype)
    shape = tuple(int(s) for s in obj.shape)
    strides = tuple(int(s) for s in obj.stride())
    device = obj.device
    if isinstance(device, str):
        device_type, _, index = device.partition(":")
        device = _Device(device_type, int(index) if index else None)
    return TensorInfo(
        name=name,
        data=int(obj.data_ptr()),
        dtype=_DTYPES_BY_NAME.get(dtype_name),
        dtype_name=dtype_name,
        shape=shape,
        strides=strides,
        device=device,
        is_torch=is_torch_tensor(obj),
        source=obj,
    )


def _looks_like_tensor(obj: Any) -> bool:
    return all(hasattr(obj, attr) for attr in ("shape", "dtype", "device")) and callable(
        getattr(obj, "stride", None)
    ) and callable(getattr(obj, "data_ptr", None))


# ---- checks: each raises with the argument's name, what was expected and what came ----


def require_cuda(info: TensorInfo) -> None:
    if getattr(info.device, "type", None) != "cuda":
        raise ValueError(f"{info.name} must be on a CUDA device, got a tensor on {info.device}")


def require_dtype(info: TensorInfo, dtype: int) -> None:
    if info.dtype != dtype:
        raise TypeError(f"{info.name} must be {_lib.DTYPE_NAMES[dtype]}, got {info.dtype_name}")


def require_ndim(info: TensorInfo, allowed: Iterable[int], layout: str) -> None:
    allowed = tuple(allowed)
    if info.ndim not in allowed:
        raise ValueError(f"{info.name} must be {layout} ({' or '.join(map(str, allowed))} dimensions), got shape {list(info.shape)}")


def require_shape(info: TensorInfo, expected: Sequence[int], layout: str) -> None:
    if tuple(info.shape) != tuple(expected):
        raise ValueError(f"{info.name} must have shape {list(expected)} ({layout}), got {list(info.shape)}")


def require_layout(info: TensorInfo) -> None:
    """Last dimension contiguous, strides non-negative, at most NSAJIT_MAX_DIMS dimensions."""
    if info.ndim > _lib.MAX_DIMS:
        raise ValueError(f"{info.name} has {info.ndim} dimensions; nsa-jit takes at most {_lib.MAX_DIMS}")
    if any(stride < 0 for stride in info.strides):
        raise ValueError(f"{info.name} has a negative stride {list(info.strides)}")
    if info.ndim and info.shape[-1] > 1 and info.strides[-1] != 1:
        raise ValueError(
            f"{info.name} must be contiguous in its last dimension (stride 1), got strides {list(info.strides)}; "
            "call .contiguous() on it"
        )
    if info.ndim and info.shape[-1] <= 1:
        info.strides = info.strides[:-1] + (1,)  # a stride of a size-1 dimension means nothing
    if info.numel > 0 and not info.data:
        raise ValueError(f"{info.name} has a null data pointer")


def require_writable_layout(info: TensorInfo) -> None:
    """An output must not write one element twice: no zero stride on a dimension larger than 1."""
    require_layout(info)
    for size, stride in zip(info.shape, info.strides):
        if size > 1 and stride == 0:
            raise ValueError(f"{info.name} is an output but has a zero stride (expanded tensor): strides {list(info.strides)}")


def common_device_index(infos: Sequence[TensorInfo]) -> Optional[int]:
    """The one GPU ordinal every argument is on; None when no argument says (CAI only)."""
    indices = {info.device.index for info in infos if getattr(info.device, "index", None) is not None}
    if len(indices) > 1:
        where = ", ".join(f"{info.name} on {info.device}" for info in infos)
        raise ValueError(f"all tensors must be on the same CUDA device, got {where}")
    return indices.pop() if indices else None


def require_int(value: Any, name: str, minimum: int, maximum: int = 2**31 - 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    value = int(value)
    if not minimum <= value <= maximum:
        raise ValueError(f"{name} must be in [{minimum}, {maximum}], got {value}")
    return value


def require_float(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a float, got {type(value).__name__}")
    return float(value)
