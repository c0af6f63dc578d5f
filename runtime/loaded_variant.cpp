#include "runtime/loaded_variant.hpp"

namespace nsajit {

std::unique_ptr<LoadedVariant> load_variant(Device& device, const Variant& variant,
                                            std::span<const std::uint8_t> binary,
                                            const std::vector<std::string>& kernel_names) {
  auto lv = std::make_unique<LoadedVariant>();
  lv->variant = variant;
  lv->module = device.load_module(binary);
  for (const auto& name : kernel_names) lv->kernels.push_back(lv->module->kernel(name));
  return lv;
}

}  // namespace nsajit
