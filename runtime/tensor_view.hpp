// The C ABI's tensor description, checked: the validation helpers every family shares.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "nsajit/nsajit.h"

namespace nsajit {

// Checks shared by every argument validator. Each throws Error(invalid_argument) whose
// message names the tensor, the expected and the actual value.
struct TensorCheck {
  std::string_view op;  // "sparse_mla_fwd", "topk_select"
  std::string_view name;
  const nsajit_tensor& t;

  [[nodiscard]] bool present() const noexcept { return t.data != nullptr; }
  const TensorCheck& required() const;
  const TensorCheck& dtype(nsajit_dtype expected) const;
  const TensorCheck& ndim_in(int lo, int hi) const;
  const TensorCheck& dim(int axis, std::int64_t expected, std::string_view what) const;
  const TensorCheck& contiguous_last() const;                           // stride of the last axis is 1
  const TensorCheck& aligned(std::size_t bytes) const;                  // data pointer alignment
  const TensorCheck& strides_multiple_of(std::int64_t elements) const;  // every non-last stride
  const TensorCheck& nonnegative_strides() const;
  [[noreturn]] void fail_with(const std::string& why) const;
};

[[nodiscard]] std::string_view dtype_name(int dtype) noexcept;

// A tensor description from a pointer, dtype, shape and strides (elements).
[[nodiscard]] nsajit_tensor make_tensor(void* data, nsajit_dtype dtype,
                                        std::initializer_list<std::int64_t> shape,
                                        std::initializer_list<std::int64_t> strides);

}  // namespace nsajit
