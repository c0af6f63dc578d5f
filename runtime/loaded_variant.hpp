// A compiled variant loaded on a device: its module and kernel handles, in the order of
// RenderedSource::kernel_names (the main kernel first).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "generator/variant.hpp"
#include "runtime/backend.hpp"

namespace nsajit {

struct LoadedVariant {
  Variant variant;
  std::unique_ptr<Module> module;
  std::vector<KernelHandle> kernels;
  int configured_shared_bytes = 0;  // dynamic shared memory limit already raised to this
};

// Loads `binary` and looks up every kernel of the variant's rendered source.
[[nodiscard]] std::unique_ptr<LoadedVariant> load_variant(Device& device, const Variant& variant,
                                                          std::span<const std::uint8_t> binary,
                                                          const std::vector<std::string>& kernel_names);

}  // namespace nsajit
