#include "tests/gpu/gpu_fixture.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
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

std::vector<std::string> env_list(const char* name) {
  std::vector<std::string> items;
  const char* value = std::getenv(name);
  if (value == nullptr) return items;
  const std::string rest = value;
  for (std::size_t at = 0; at <= rest.size();) {
    const std::size_t comma = std::min(rest.find(',', at), rest.size());
    if (comma > at) items.push_back(rest.substr(at, comma - at));
    at = comma + 1;
  }
  return items;
}

}  // namespace nsajit::test
