// A compiled variant loaded on a device: its module and kernel handles, in the order of
// RenderedSource::kernel_names (the main kernel first).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "generator/variant.hpp"
#include "runtime/backend.hpp"
#include "runtime/topk_select_launch.hpp"

namespace nsajit {

struct LoadedVariant {
  Variant variant;
  std::unique_ptr<Module> module;
  std::vector<KernelHandle> kernels;
  int blocks_per_sm = 1;            // NVIDIA sparse_mla_fwd: CTAs resident per SM (sparse_mla_blocks_per_sm)
  TopkClusterFit topk_cluster_fit;  // topk_select cluster variants: clusters that fit at once
};

// The dynamic shared memory the variant's main kernel launches with (0: none / static only).
[[nodiscard]] int variant_dynamic_shared_bytes(const Variant& variant, const DeviceInfo& device);

// Loads `binary`, looks up every kernel of the variant's rendered source, and raises the main
// kernel's dynamic shared memory limit to what the variant launches with (once, here: never
// on the launch path, which may be captured into a graph).
[[nodiscard]] std::unique_ptr<LoadedVariant> load_variant(Device& device, const Variant& variant,
                                                          std::span<const std::uint8_t> binary,
                                                          const std::vector<std::string>& kernel_names);

}  // namespace nsajit
