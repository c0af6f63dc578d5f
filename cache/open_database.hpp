// Opening a cache file: validate before touching, then create or migrate the schema.
#pragma once

#include <filesystem>

#include "cache/sqlite_handle.hpp"

namespace nsajit {

struct OpenedDatabase {
  SqliteDb db;
  int schema_version = 0;
};

// read_only = false: creates the file and its parent directories when missing, WAL mode,
// migrates an older schema forward in one transaction.
// read_only = true: never writes; the file must exist and have the current schema.
// Either way a file that is not a valid nsa-jit cache of a known version (garbage,
// truncated, another application's database, a newer schema) is left untouched and
// reported as Error(cache_error) naming the path and the cause.
[[nodiscard]] OpenedDatabase open_database(const std::filesystem::path& path, bool read_only);

}  // namespace nsajit
