// Where the writable cache lives when the caller does not say.
#pragma once

#include <filesystem>
#include <optional>

namespace nsajit {

// $NSA_JIT_CACHE, else $XDG_CACHE_HOME/nsa-jit/cache.sqlite (XDG_CACHE_HOME must be absolute,
// as the XDG spec says), else $HOME/.cache/nsa-jit/cache.sqlite (HOME from the password
// database when unset). Empty variables count as unset. Creates nothing; CacheStore::open
// creates the parent directories. Throws Error(cache_error) when no home can be found.
[[nodiscard]] std::filesystem::path default_cache_path();

// The explicit path (--cache PATH) when given, else default_cache_path().
[[nodiscard]] std::filesystem::path resolve_cache_path(
    const std::optional<std::filesystem::path>& explicit_path);

}  // namespace nsajit
