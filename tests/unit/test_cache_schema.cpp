#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cache/schema.hpp"
#include "tests/unit/cache_test_support.hpp"

using namespace nsajit;
using namespace nsajit::test;

TEST_CASE("embedded_schema_equals_cache_schema_sql") {
  auto file =
      std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / "cache" / "schema.sql";
  std::ifstream in(file, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot read " << file);
  std::stringstream text;
  text << in.rdbuf();
  CHECK(cache_schema_sql() == text.str());
}

TEST_CASE("new_cache_carries_application_id_and_current_schema_version") {
  TempDir dir;
  auto path = dir / "cache.sqlite";
  CacheStore store = CacheStore::open(path, OpenMode::read_write);
  CHECK(store.schema_version() == kCacheSchemaVersion);
  CHECK(raw_query(path, "PRAGMA application_id") == std::to_string(0x4E53414A));
  CHECK(raw_query(path, "SELECT value FROM meta WHERE key = 'schema_version'") ==
        std::to_string(kCacheSchemaVersion));
  CHECK(raw_query(path, "PRAGMA journal_mode") == "wal");
  CHECK(store.check() == "ok");
}

TEST_CASE("migrations_cover_every_version_below_the_current_one") {
  int expected = 1;
  for (const CacheMigration& m : cache_migrations()) CHECK(m.from_version == expected++);
  CHECK(expected == kCacheSchemaVersion);
}
