#include "runtime/loaded_variant.hpp"

#include "runtime/sparse_mla_launch.hpp"
#include "runtime/topk_select_launch.hpp"

namespace nsajit {

int variant_dynamic_shared_bytes(const Variant& variant, const DeviceInfo& device) {
  if (variant.family == Family::topk_select)
    return static_cast<int>(topk_select_dynamic_shared_bytes(variant, device));
  if (variant.target.vendor == Vendor::nvidia) return sparse_mla_block(variant).shared_bytes;
  return 0;  // the CDNA sparse_mla_fwd kernel uses static LDS only
}

std::unique_ptr<LoadedVariant> load_variant(Device& device, const Variant& variant,
                                            std::span<const std::uint8_t> binary,
                                            const std::vector<std::string>& kernel_names) {
  auto lv = std::make_unique<LoadedVariant>();
  lv->variant = variant;
  if (variant.family == Family::sparse_mla_fwd && variant.target.vendor == Vendor::nvidia)
    lv->blocks_per_sm = sparse_mla_blocks_per_sm(variant);  // once here, not per dispatched call
  lv->module = device.load_module(binary);
  for (const auto& name : kernel_names) lv->kernels.push_back(lv->module->kernel(name));
  if (const int bytes = variant_dynamic_shared_bytes(variant, device.info());
      bytes > 0 && !lv->kernels.empty())
    device.set_max_dynamic_shared(lv->kernels.front(), bytes);
  // After the shared-memory limit: the occupancy query launches with it.
  if (variant.family == Family::topk_select && !lv->kernels.empty())
    lv->topk_cluster_fit = topk_select_cluster_fit(device, lv->kernels.front(), variant);
  return lv;
}

}  // namespace nsajit
