// Resolving --target (sm_90a, gfx90a, gfx942 or native) and --family.
#pragma once

#include <string>

#include "generator/target.hpp"
#include "generator/variant.hpp"

namespace nsajit::cli {

// "native" becomes the arch of GPU 0 of the first backend with a GPU (or a clear error).
[[nodiscard]] Target resolve_target(const std::string& arch);
[[nodiscard]] Geometry geometry_for(Family family, int d_qk);

// The compiler for `arch`, or Error(unavailable) naming `what` and the backend's reason.
[[nodiscard]] const Compiler& require_compiler(const std::string& arch, const std::string& what);

}  // namespace nsajit::cli
