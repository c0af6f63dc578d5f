// Compile targets: what the renderer and the pruning rules need to know about an arch.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "runtime/backend.hpp"

namespace nsajit {

struct Target {
  std::string arch;  // "sm_90a", "gfx90a", "gfx942"
  Vendor vendor = Vendor::nvidia;
  int warp_size = 32;        // 64 on CDNA
  int max_shared_bytes = 0;  // per block (opt-in maximum on NVIDIA, LDS on AMD)
  int registers_per_sm = 0;  // 32-bit registers per SM / CU
  int max_registers_per_thread = 255;
  int max_threads_per_block = 1024;
  bool has_wgmma = false;
  bool has_clusters = false;  // thread-block clusters with distributed shared memory (sm_90)
  bool has_mfma = false;

  // The short form used inside variant names: "sm90a", "gfx942".
  [[nodiscard]] std::string short_name() const;
};

// Throws Error(invalid_argument) naming the known targets when `arch` is not one of them.
// "native" must be resolved by the caller (it needs a device).
[[nodiscard]] Target target_from_arch(std::string_view arch);
[[nodiscard]] const std::vector<std::string>& known_targets();

}  // namespace nsajit
