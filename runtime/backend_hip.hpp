// AMD-specific queries of the hip backend that the generic Backend interface has no room for.
#pragma once

#include <string>
#include <string_view>

namespace nsajit {

// Why no AMD compiler serves `arch` on this machine ("" when one does), e.g. for gfx950:
// "clang++-19 ... cannot target gfx950: invalid target ID 'gfx950' ...". Uses hip_backend().
[[nodiscard]] std::string hip_arch_unsupported_reason(std::string_view arch);

}  // namespace nsajit
