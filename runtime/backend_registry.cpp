#include <fmt/format.h>

#include "runtime/backend.hpp"
#include "runtime/error.hpp"

namespace nsajit {

std::string_view to_string(Vendor v) noexcept {
  return v == Vendor::nvidia ? "nvidia" : "amd";
}

Backend& cuda_backend() {
  static const std::unique_ptr<Backend> backend = make_cuda_backend();
  return *backend;
}

Backend& hip_backend() {
  static const std::unique_ptr<Backend> backend = make_hip_backend();
  return *backend;
}

Backend& backend_for_arch(std::string_view arch) {
  if (arch.starts_with("sm_")) return cuda_backend();
  if (arch.starts_with("gfx")) return hip_backend();
  fail(ErrorCode::invalid_argument, "choosing a backend", "runtime/backend_registry",
       fmt::format("arch '{}' is neither an NVIDIA (sm_*) nor an AMD (gfx*) target", arch));
}

}  // namespace nsajit
