#include <doctest/doctest.h>
#include <stdlib.h>

#include <optional>
#include <string>

#include "cache/cache_path.hpp"

using namespace nsajit;

namespace {

// Sets (or unsets, with nullopt) an environment variable for one scope.
class EnvOverride {
 public:
  EnvOverride(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = getenv(name)) old_ = old;
    if (value)
      setenv(name, value->c_str(), 1);
    else
      unsetenv(name);
  }
  ~EnvOverride() {
    if (old_)
      setenv(name_, old_->c_str(), 1);
    else
      unsetenv(name_);
  }
  EnvOverride(const EnvOverride&) = delete;
  EnvOverride& operator=(const EnvOverride&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

}  // namespace

TEST_CASE("cache_path_order_is_explicit_then_NSA_JIT_CACHE_then_XDG_then_home") {
  EnvOverride home("HOME", "/home/alice");
  SUBCASE("explicit path wins over everything") {
    EnvOverride env("NSA_JIT_CACHE", "/env/cache.sqlite");
    CHECK(resolve_cache_path(std::filesystem::path("/given/c.sqlite")) == "/given/c.sqlite");
  }
  SUBCASE("NSA_JIT_CACHE wins over XDG_CACHE_HOME") {
    EnvOverride env("NSA_JIT_CACHE", "/env/cache.sqlite");
    EnvOverride xdg("XDG_CACHE_HOME", "/xdg");
    CHECK(resolve_cache_path(std::nullopt) == "/env/cache.sqlite");
  }
  SUBCASE("XDG_CACHE_HOME when NSA_JIT_CACHE is unset or empty") {
    EnvOverride env("NSA_JIT_CACHE", "");
    EnvOverride xdg("XDG_CACHE_HOME", "/xdg");
    CHECK(default_cache_path() == "/xdg/nsa-jit/cache.sqlite");
  }
  SUBCASE("a relative XDG_CACHE_HOME is ignored, as the XDG spec says") {
    EnvOverride env("NSA_JIT_CACHE", std::nullopt);
    EnvOverride xdg("XDG_CACHE_HOME", "relative/dir");
    CHECK(default_cache_path() == "/home/alice/.cache/nsa-jit/cache.sqlite");
  }
  SUBCASE("HOME last") {
    EnvOverride env("NSA_JIT_CACHE", std::nullopt);
    EnvOverride xdg("XDG_CACHE_HOME", std::nullopt);
    CHECK(default_cache_path() == "/home/alice/.cache/nsa-jit/cache.sqlite");
  }
}
