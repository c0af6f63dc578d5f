#include "runtime/device_identity.hpp"

#include <fmt/format.h>

namespace nsajit {

std::string device_key(const DeviceInfo& info) {
  return fmt::format("{}|{}|{}sm", info.name, info.arch, info.multiprocessors);
}

}  // namespace nsajit
