// The second AMD compile path: clang++-19 as a child process, for targets hipRTC 5.2 cannot
// reach (gfx940-gfx942; it also serves gfx90a). No ROCm headers or device libraries: the
// templates use clang builtins through templates/common/hip_prelude.h, switched on by the
// NSAJIT_HIP_MIN_PRELUDE macro this compiler defines.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "runtime/backend.hpp"

namespace nsajit {

// Path of clang++-19: $PATH, then /usr/bin/clang++-19, then /usr/lib/llvm-19/bin/clang++.
// Empty when none is executable.
[[nodiscard]] std::string find_clang19();

class AmdgpuClangCompiler final : public Compiler {
 public:
  AmdgpuClangCompiler();                            // uses find_clang19()
  explicit AmdgpuClangCompiler(std::string clang);  // a given clang++ (tests); "" = none

  [[nodiscard]] bool available() const noexcept { return !clang_.empty(); }
  [[nodiscard]] const std::string& unavailable_reason() const noexcept { return unavailable_reason_; }
  [[nodiscard]] const std::string& clang_path() const noexcept { return clang_; }

  [[nodiscard]] std::string name() const override { return "clang-19"; }
  // "clang-19 <first line of clang --version>", e.g. "clang-19 Debian clang version 19.1.7 ...".
  [[nodiscard]] std::string version() const override { return version_; }
  // CDNA targets only (gfx90a, gfx940, gfx941, gfx942; the bare name or with :sramecc/:xnack
  // settings). gfx950 is asked of clang itself once; clang 19 rejects it.
  [[nodiscard]] bool supports_arch(std::string_view arch) const override;
  // Why supports_arch(arch) is false ("" when it is true).
  [[nodiscard]] std::string unsupported_reason(std::string_view arch) const;
  // Throws Error(invalid_argument) for an unsupported arch or a header name that leaves the
  // include directory, Error(compile_failed) with clang's full output when it fails.
  [[nodiscard]] CompileResult compile(const CompileRequest& request) const override;

 private:
  std::string clang_;
  std::string version_;
  std::string unavailable_reason_;
  mutable std::mutex probe_mutex_;
  mutable std::map<std::string, std::string, std::less<>> probed_;  // arch -> reason ("" = ok)
};

}  // namespace nsajit
