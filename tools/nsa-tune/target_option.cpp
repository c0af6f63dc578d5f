#include "tools/nsa-tune/target_option.hpp"

#include <fmt/format.h>

#include "runtime/backend.hpp"
#include "runtime/error.hpp"

namespace nsajit::cli {

Target resolve_target(const std::string& arch) {
  if (arch != "native") return target_from_arch(arch);
  for (Backend* b : {&cuda_backend(), &hip_backend()}) {
    if (b->device_count() > 0) return target_from_arch(b->open_device(0)->info().arch);
  }
  fail(ErrorCode::unavailable, "resolving --target native", "nsa-tune",
       fmt::format("no GPU found (cuda: {}; hip: {}); name a target instead: sm_90a, gfx90a, gfx942",
                   cuda_backend().devices_unavailable_reason(), hip_backend().devices_unavailable_reason()));
}

const Compiler& require_compiler(const std::string& arch, const std::string& what) {
  Backend& backend = backend_for_arch(arch);
  const Compiler* compiler = backend.compiler_for(arch);
  if (compiler == nullptr)
    fail(ErrorCode::unavailable, what, "nsa-tune", backend.compiler_unavailable_reason());
  return *compiler;
}

Geometry geometry_for(Family family, int d_qk) {
  if (family == Family::topk_select) return Geometry{0, 0};
  return Geometry{d_qk, 512};
}

}  // namespace nsajit::cli
