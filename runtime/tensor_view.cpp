#include "runtime/tensor_view.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "runtime/error.hpp"

namespace nsajit {

std::string_view dtype_name(int dtype) noexcept {
  switch (dtype) {
    case NSAJIT_DTYPE_BF16:
      return "bfloat16";
    case NSAJIT_DTYPE_FP32:
      return "float32";
    case NSAJIT_DTYPE_INT32:
      return "int32";
    default:
      return "unknown dtype";
  }
}

nsajit_tensor make_tensor(void* data, nsajit_dtype dtype, std::initializer_list<std::int64_t> shape,
                          std::initializer_list<std::int64_t> strides) {
  nsajit_tensor t{};
  t.data = data;
  t.dtype = dtype;
  t.ndim = static_cast<int>(shape.size());
  std::copy(shape.begin(), shape.end(), t.shape);
  std::copy(strides.begin(), strides.end(), t.strides);
  return t;
}

void TensorCheck::fail_with(const std::string& why) const {
  fail(ErrorCode::invalid_argument, fmt::format("checking argument '{}'", name), fmt::format("{}", op), why);
}

const TensorCheck& TensorCheck::required() const {
  if (t.data == nullptr) fail_with("it is required but its data pointer is null");
  return *this;
}

const TensorCheck& TensorCheck::dtype(nsajit_dtype expected) const {
  if (t.dtype != expected)
    fail_with(fmt::format("dtype must be {}, got {}", dtype_name(expected), dtype_name(t.dtype)));
  return *this;
}

const TensorCheck& TensorCheck::ndim_in(int lo, int hi) const {
  if (t.ndim < lo || t.ndim > hi || t.ndim > NSAJIT_MAX_DIMS) {
    if (lo == hi) fail_with(fmt::format("must have {} dimensions, got {}", lo, t.ndim));
    fail_with(fmt::format("must have {} to {} dimensions, got {}", lo, hi, t.ndim));
  }
  for (int i = 0; i < t.ndim; ++i)
    if (t.shape[i] < 0) fail_with(fmt::format("dimension {} is negative ({})", i, t.shape[i]));
  return *this;
}

const TensorCheck& TensorCheck::dim(int axis, std::int64_t expected, std::string_view what) const {
  const int a = axis < 0 ? t.ndim + axis : axis;
  if (t.shape[a] != expected)
    fail_with(fmt::format("dimension {} ({}) must be {}, got {}", a, what, expected, t.shape[a]));
  return *this;
}

const TensorCheck& TensorCheck::contiguous_last() const {
  if (t.ndim > 0 && t.shape[t.ndim - 1] > 1 && t.strides[t.ndim - 1] != 1)
    fail_with(fmt::format("its last dimension must be contiguous (stride 1), got stride {}",
                          t.strides[t.ndim - 1]));
  return *this;
}

const TensorCheck& TensorCheck::aligned(std::size_t bytes) const {
  if (reinterpret_cast<std::uintptr_t>(t.data) % bytes != 0)
    fail_with(fmt::format("its data pointer {} is not {}-byte aligned", t.data, bytes));
  return *this;
}

const TensorCheck& TensorCheck::strides_multiple_of(std::int64_t elements) const {
  for (int i = 0; i + 1 < t.ndim; ++i)
    if (t.shape[i] > 1 && t.strides[i] % elements != 0)
      fail_with(fmt::format("stride {} of dimension {} must be a multiple of {} elements (16-byte rows)",
                            t.strides[i], i, elements));
  return *this;
}

const TensorCheck& TensorCheck::nonnegative_strides() const {
  for (int i = 0; i < t.ndim; ++i)
    if (t.strides[i] < 0) fail_with(fmt::format("stride {} of dimension {} is negative", t.strides[i], i));
  return *this;
}

}  // namespace nsajit
