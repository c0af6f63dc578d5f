#include "cache/cache_path.hpp"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "runtime/error.hpp"

namespace nsajit {
namespace {

std::optional<std::string> env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string(value);
}

std::optional<std::string> home_directory() {
  if (auto home = env("HOME")) return home;
  if (const passwd* pw = getpwuid(getuid()); pw != nullptr && pw->pw_dir != nullptr && *pw->pw_dir != '\0')
    return std::string(pw->pw_dir);
  return std::nullopt;
}

}  // namespace

std::filesystem::path default_cache_path() {
  if (auto explicit_file = env("NSA_JIT_CACHE")) return *explicit_file;
  if (auto xdg = env("XDG_CACHE_HOME"); xdg && std::filesystem::path(*xdg).is_absolute())
    return std::filesystem::path(*xdg) / "nsa-jit" / "cache.sqlite";
  if (auto home = home_directory())
    return std::filesystem::path(*home) / ".cache" / "nsa-jit" / "cache.sqlite";
  fail(ErrorCode::cache_error, "find the default cache path", "cache_path",
       "neither NSA_JIT_CACHE, XDG_CACHE_HOME nor HOME is set and the user has no home directory; "
       "pass a cache path explicitly");
}

std::filesystem::path resolve_cache_path(const std::optional<std::filesystem::path>& explicit_path) {
  if (explicit_path && !explicit_path->empty()) return *explicit_path;
  return default_cache_path();
}

}  // namespace nsajit
