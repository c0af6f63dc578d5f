// The cache file format: its schema text, version, application id and migrations.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace nsajit {

// Bump when the schema changes, and append a Migration from the previous version.
inline constexpr int kCacheSchemaVersion = 2;
// PRAGMA application_id of every nsa-jit cache file: 'NSAJ'.
inline constexpr std::int32_t kCacheApplicationId = 0x4E53414A;

// The text of cache/schema.sql (kept equal by a unit test): the current schema, no meta rows.
[[nodiscard]] std::string_view cache_schema_sql();

// One step from `from_version` to from_version + 1, run inside the opening transaction.
struct CacheMigration {
  int from_version;
  std::string_view sql;
};
// Ordered by from_version, 1 .. kCacheSchemaVersion - 1.
[[nodiscard]] std::span<const CacheMigration> cache_migrations();

}  // namespace nsajit
