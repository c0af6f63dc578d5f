// A cache file that is not a valid nsa-jit cache of a known version is refused with a clear
// message naming the path and the cause, and is never modified.
#include <doctest/doctest.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "cache/schema.hpp"
#include "tests/unit/cache_test_support.hpp"

using namespace nsajit;
using namespace nsajit::test;

namespace {

// A populated cache, closed, so the main file holds everything (no -wal left).
std::filesystem::path make_populated_cache(const TempDir& dir) {
  auto path = dir / "cache.sqlite";
  CacheStore store = CacheStore::open(path, OpenMode::read_write);
  for (int i = 0; i < 40; ++i) {
    store.put_winner(sample_winner("gpu", 64 * (i + 1)));
    store.put_binary(sample_binary("key-" + std::to_string(i), "nsa_fwd_v1", 20000));
  }
  return path;
}

void expect_refused_in_both_modes_and_untouched(const std::filesystem::path& path,
                                                std::initializer_list<std::string> fragments) {
  auto before = file_bytes(path);
  require_cache_error([&] { (void)CacheStore::open(path, OpenMode::read_write); }, fragments);
  require_cache_error([&] { (void)CacheStore::open(path, OpenMode::read_only); }, fragments);
  CHECK(file_bytes(path) == before);
}

}  // namespace

TEST_CASE("truncated_cache_is_refused_with_a_clear_error_and_left_unchanged") {
  TempDir dir;
  auto path = make_populated_cache(dir);
  auto bytes = file_bytes(path);
  REQUIRE(bytes.size() > 100000);
  REQUIRE_FALSE(std::filesystem::exists(path.string() + "-wal"));
  bytes.resize(bytes.size() / 2);
  write_bytes(path, bytes);
  expect_refused_in_both_modes_and_untouched(path, {path.string(), "truncated"});
}

TEST_CASE("a_cache_that_another_process_is_still_writing_out_is_opened_once_it_settles") {
  // The header already says 71+ pages while the file holds one (a checkpoint in progress in
  // another process): the open waits for the file to settle instead of refusing it.
  TempDir dir;
  auto path = make_populated_cache(dir);
  const auto bytes = file_bytes(path);
  REQUIRE(bytes.size() > 100000);
  write_bytes(path, std::vector<char>(bytes.begin(), bytes.begin() + 4096));
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(40));
    // In place, as SQLite grows a file: truncating first (write_bytes) left a moment in which
    // the file was empty, and the open then refused it as an empty database (a flaky test).
    std::fstream out(path, std::ios::binary | std::ios::in | std::ios::out);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  });
  std::vector<WinnerRecord> winners;
  CHECK_NOTHROW(winners = CacheStore::open(path, OpenMode::read_only).list_winners());
  writer.join();
  CHECK(winners.size() == 40);
}

TEST_CASE("garbage_file_is_refused_with_a_clear_error_and_left_unchanged") {
  TempDir dir;
  auto path = dir / "cache.sqlite";
  SUBCASE("text") {
    std::string text = "this is a text file, not a cache\n";
    for (int i = 0; i < 8; ++i) text += text;
    write_bytes(path, std::vector<char>(text.begin(), text.end()));
    expect_refused_in_both_modes_and_untouched(path, {path.string(), "not a SQLite database"});
  }
  SUBCASE("shorter than a SQLite header") {
    write_bytes(path, {'S', 'Q', 'L'});
    expect_refused_in_both_modes_and_untouched(path, {path.string(), "too short"});
  }
  SUBCASE("a valid header followed by random pages") {
    auto bytes = file_bytes(make_populated_cache(dir));
    std::uint32_t x = 12345;
    for (std::size_t i = 100; i < bytes.size(); ++i) {
      x = x * 1664525u + 1013904223u;
      bytes[i] = static_cast<char>(x >> 24);
    }
    write_bytes(path, bytes);
    auto before = file_bytes(path);
    require_cache_error([&] { (void)CacheStore::open(path, OpenMode::read_write); }, {path.string()});
    require_cache_error([&] { (void)CacheStore::open(path, OpenMode::read_only); }, {path.string()});
    CHECK(file_bytes(path) == before);
  }
}

TEST_CASE("foreign_sqlite_database_is_refused_and_left_unchanged") {
  TempDir dir;
  auto path = dir / "other.sqlite";
  raw_sql(path, "CREATE TABLE x (a INTEGER); INSERT INTO x VALUES (1), (2);");
  REQUIRE(raw_query(path, "PRAGMA journal_mode") == "delete");
  expect_refused_in_both_modes_and_untouched(path, {path.string(), "not an nsa-jit cache", "tables: x"});
  CHECK(raw_query(path, "PRAGMA journal_mode") == "delete");  // not switched to WAL either
  CHECK(raw_query(path, "SELECT count(*) FROM x") == "2");
}

TEST_CASE("file_with_our_application_id_but_no_meta_table_is_refused") {
  TempDir dir;
  auto path = dir / "c.sqlite";
  raw_sql(path, "PRAGMA application_id = 1314079050; CREATE TABLE winners (a);");
  expect_refused_in_both_modes_and_untouched(path, {path.string(), "no meta table"});
}

TEST_CASE("newer_schema_version_is_refused_and_left_unchanged") {
  TempDir dir;
  auto path = make_populated_cache(dir);
  raw_sql(path, "UPDATE meta SET value = '99' WHERE key = 'schema_version'");
  // raw_sql's connection was the last one: it checkpointed, the main file holds everything.
  expect_refused_in_both_modes_and_untouched(
      path, {path.string(), "schema version 99 is newer than this nsa-jit understands (" +
                                std::to_string(kCacheSchemaVersion) +
                                "); upgrade nsa-jit or use another cache file"});
  CHECK(raw_query(path, "SELECT value FROM meta WHERE key = 'schema_version'") == "99");
}

namespace {

// The schema nsa-jit wrote as version 1 (timings had no run_id, no index).
constexpr const char* kSchemaVersion1 = R"sql(
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE winners (
  device TEXT NOT NULL, family TEXT NOT NULL, geometry TEXT NOT NULL, topk INTEGER NOT NULL,
  rule TEXT NOT NULL, default_variant TEXT NOT NULL, template_hash TEXT NOT NULL,
  generator_version TEXT NOT NULL, compiler TEXT NOT NULL, driver TEXT NOT NULL, arch TEXT NOT NULL,
  tuned_shape TEXT NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (device, family, geometry, topk));
CREATE TABLE binaries (
  key TEXT PRIMARY KEY, variant TEXT NOT NULL, arch TEXT NOT NULL, compiler TEXT NOT NULL,
  created_at TEXT NOT NULL, size INTEGER NOT NULL, checksum TEXT NOT NULL, binary BLOB NOT NULL);
CREATE TABLE timings (
  id INTEGER PRIMARY KEY AUTOINCREMENT, device TEXT NOT NULL, family TEXT NOT NULL,
  geometry TEXT NOT NULL, topk INTEGER NOT NULL, variant TEXT NOT NULL, h_q INTEGER NOT NULL,
  s_q INTEGER NOT NULL, s_kv INTEGER NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('ok', 'wrong', 'compile_failed', 'launch_failed')),
  median_ms REAL, detail TEXT NOT NULL, created_at TEXT NOT NULL);
PRAGMA application_id = 1314079050;
INSERT INTO meta VALUES ('schema_version', '1'), ('created_by', 'nsa-jit 0.0.9');
INSERT INTO winners VALUES ('gpu', 'sparse_mla_fwd', 'd576v512', 2048, '{"h_q":{}}', 'nsa_old', 'h', '0.0.9',
  'nvrtc 12.8', 'cuda 12.8', 'sm_90a', 'h_q=16', '2024-12-01T00:00:00Z');
INSERT INTO timings (device, family, geometry, topk, variant, h_q, s_q, s_kv, status, median_ms, detail, created_at)
  VALUES ('gpu', 'sparse_mla_fwd', 'd576v512', 2048, 'nsa_old', 16, 4096, 32768, 'ok', 2.5, '', '2024-12-01T00:00:00Z');
)sql";

}  // namespace

TEST_CASE("older_schema_is_migrated_forward_keeping_its_rows") {
  TempDir dir;
  auto path = dir / "v1.sqlite";
  raw_sql(path, kSchemaVersion1);
  CacheStore store = CacheStore::open(path, OpenMode::read_write);
  CHECK(store.schema_version() == kCacheSchemaVersion);
  CHECK(raw_query(path, "SELECT value FROM meta WHERE key = 'schema_version'") ==
        std::to_string(kCacheSchemaVersion));
  CHECK(raw_query(path, "SELECT name FROM sqlite_schema WHERE name = 'timings_by_key'") == "timings_by_key");
  auto w = store.find_winner({"gpu", "sparse_mla_fwd", "d576v512", 2048});
  REQUIRE(w.has_value());
  CHECK(w->default_variant == "nsa_old");
  auto old_timings = store.timings_for("gpu", "sparse_mla_fwd", 2048);
  REQUIRE(old_timings.size() == 1);
  CHECK(old_timings[0].run_id.empty());
  CHECK(old_timings[0].median_ms == 2.5);
  TimingRecord t = old_timings[0];
  t.run_id = "run-after-migration";
  store.add_timings(std::span(&t, 1));
  CHECK(store.timings_for("gpu", "sparse_mla_fwd", 2048).back().run_id == "run-after-migration");
  CHECK(store.check() == "ok");
  // Opening again does not migrate twice.
  store = CacheStore::open(path, OpenMode::read_write);
  CHECK(store.timings_for("gpu", "sparse_mla_fwd", 2048).size() == 2);
}

TEST_CASE("older_schema_opened_read_only_is_refused_and_left_unchanged") {
  TempDir dir;
  auto path = dir / "v1.sqlite";
  raw_sql(path, kSchemaVersion1);
  auto before = file_bytes(path);
  require_cache_error([&] { (void)CacheStore::open(path, OpenMode::read_only); },
                      {path.string(), "schema version 1 is older"});
  CHECK(file_bytes(path) == before);
}

TEST_CASE("check_reports_ok_for_a_healthy_cache") {
  TempDir dir;
  CacheStore store = CacheStore::open(make_populated_cache(dir), OpenMode::read_only);
  CHECK(store.check() == "ok");
}
