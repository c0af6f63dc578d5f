#include "runtime/binary_resources.hpp"

#include "runtime/amdgpu_code_object.hpp"
#include "runtime/cubin_inspect.hpp"

namespace nsajit {

std::vector<KernelResources> binary_resources(Vendor vendor, std::span<const std::uint8_t> binary) {
  return vendor == Vendor::nvidia ? cubin_resources(binary) : code_object_resources(binary);
}

}  // namespace nsajit
