// Per-kernel resources read straight from a compiled binary (no GPU needed): cubin ELF
// attributes on NVIDIA, the AMDGPU metadata note on AMD.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "runtime/backend.hpp"

namespace nsajit {

[[nodiscard]] std::vector<KernelResources> binary_resources(Vendor vendor,
                                                            std::span<const std::uint8_t> binary);

}  // namespace nsajit
