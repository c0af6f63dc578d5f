// The one exception type of nsa-jit: every failure says what failed, where, and why.
#pragma once

#include <stdexcept>
#include <string>

namespace nsajit {

enum class ErrorCode : int {
  ok = 0,
  invalid_argument = 1,  // bad shape, dtype, stride, pointer, topk ...
  unavailable = 2,       // a vendor library, driver or GPU is missing
  compile_failed = 3,    // NVRTC / hipRTC / clang rejected the source (log attached)
  device_error = 4,      // a driver call failed at run time
  cache_error = 5,       // the SQLite cache could not be read or written
  not_found = 6,         // no such variant, device, cache row ...
  internal = 7,
};

const char* to_string(ErrorCode code) noexcept;

class Error : public std::runtime_error {
 public:
  // what: the operation that failed; where: the component/call; why: the cause, with detail.
  Error(ErrorCode code, std::string what, std::string where, std::string why);

  [[nodiscard]] ErrorCode code() const noexcept { return code_; }
  [[nodiscard]] const std::string& operation() const noexcept { return what_; }
  [[nodiscard]] const std::string& location() const noexcept { return where_; }
  [[nodiscard]] const std::string& reason() const noexcept { return why_; }

 private:
  ErrorCode code_;
  std::string what_;
  std::string where_;
  std::string why_;
};

[[noreturn]] void fail(ErrorCode code, std::string what, std::string where, std::string why);

}  // namespace nsajit
