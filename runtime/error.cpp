#include "runtime/error.hpp"

#include <fmt/format.h>

namespace nsajit {

const char* to_string(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::ok:
      return "ok";
    case ErrorCode::invalid_argument:
      return "invalid argument";
    case ErrorCode::unavailable:
      return "unavailable";
    case ErrorCode::compile_failed:
      return "compile failed";
    case ErrorCode::device_error:
      return "device error";
    case ErrorCode::cache_error:
      return "cache error";
    case ErrorCode::not_found:
      return "not found";
    case ErrorCode::internal:
      return "internal error";
  }
  return "unknown error";
}

Error::Error(ErrorCode code, std::string what, std::string where, std::string why)
    : std::runtime_error(fmt::format("{}: {} failed in {}: {}", to_string(code), what, where, why)),
      code_(code),
      what_(std::move(what)),
      where_(std::move(where)),
      why_(std::move(why)) {}

void fail(ErrorCode code, std::string what, std::string where, std::string why) {
  throw Error(code, std::move(what), std::move(where), std::move(why));
}

}  // namespace nsajit
