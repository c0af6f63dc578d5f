#include "tests/gpu/gpu_fixture.hpp"

#include <fmt/format.h>

#include <mutex>

namespace nsajit::test {

bool gpu_available(std::string& reason) {
  if (cuda_backend().device_count() > 0) return true;
  if (hip_backend().device_count() > 0) return true;
  reason = fmt::format("cuda: {}; hip: {}", cuda_backend().devices_unavailable_reason(),
                       hip_backend().devices_unavailable_reason());
  return false;
}

Backend& gpu_backend() {
  return cuda_backend().device_count() > 0 ? cuda_backend() : hip_backend();
}

Device& gpu_device() {
  static std::unique_ptr<Device> device;
  static std::once_flag once;
  std::call_once(once, [] { device = gpu_backend().open_device(0); });
  device->make_current();
  return *device;
}

}  // namespace nsajit::test
