// The identity a cache row is keyed on: which GPU model/arch a winner was tuned for.
#pragma once

#include <string>

#include "runtime/backend.hpp"

namespace nsajit {

// e.g. "NVIDIA H100 80GB HBM3|sm_90a|132sm". Same model + arch + SM count = same winners.
[[nodiscard]] std::string device_key(const DeviceInfo& info);

}  // namespace nsajit
