#include "generator/target.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "runtime/error.hpp"

namespace nsajit {

std::string Target::short_name() const {
  std::string s = arch;
  s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
  return s;
}

const std::vector<std::string>& known_targets() {
  static const std::vector<std::string> targets = {"sm_90a", "gfx90a", "gfx942"};
  return targets;
}

Target target_from_arch(std::string_view arch) {
  Target t;
  t.arch = std::string(arch);
  if (arch == "sm_90a" || arch == "sm_90") {
    t.arch = "sm_90a";
    t.vendor = Vendor::nvidia;
    t.warp_size = 32;
    t.max_shared_bytes = 227 * 1024;
    t.registers_per_sm = 65536;
    t.max_registers_per_thread = 255;
    t.has_wgmma = true;
    t.has_clusters = true;
    return t;
  }
  if (arch == "gfx90a" || arch == "gfx942") {
    t.vendor = Vendor::amd;
    t.warp_size = 64;
    t.max_shared_bytes = 64 * 1024;
    t.registers_per_sm = 4 * 512 * 64;  // 4 SIMDs x 512 unified VGPRs x 64 lanes
    t.max_registers_per_thread = 512;
    t.has_mfma = true;
    return t;
  }
  fail(ErrorCode::invalid_argument, "resolving the compile target", "generator/target",
       fmt::format("unknown target '{}'; known targets: {} (or 'native' with a GPU present)", arch,
                   fmt::join(known_targets(), ", ")));
}

}  // namespace nsajit
