// Shared fixtures of the cache tests: a temporary directory, file bytes, raw SQL.
#pragma once

#include <doctest/doctest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "cache/store.hpp"

namespace nsajit::test {

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "nsajit-cache-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::permissions(path_, std::filesystem::perms::owner_all, ec);
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] std::filesystem::path operator/(const std::string& name) const { return path_ / name; }
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline std::vector<char> file_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_bytes(const std::filesystem::path& p, const std::vector<char>& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Runs SQL on a file with plain SQLite, bypassing the store (to build fixtures).
inline void raw_sql(const std::filesystem::path& p, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(p.string().c_str(), &db) == SQLITE_OK);
  char* message = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message);
  std::string text = message ? message : "";
  sqlite3_free(message);
  sqlite3_close(db);
  REQUIRE_MESSAGE(rc == SQLITE_OK, text);
}

// First column of the first row of a query, as text, with plain SQLite.
inline std::string raw_query(const std::filesystem::path& p, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(p.string().c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  std::string value;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
      sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0) != nullptr)
    value = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return value;
}

inline WinnerRecord sample_winner(const std::string& device, int topk,
                                  const std::string& variant = "nsa_fwd_v1") {
  return WinnerRecord{
      .key = {.device = device, .family = "sparse_mla_fwd", .geometry = "d576v512", .topk = topk},
      .rule = "{\"h_q\":{\"16\":\"" + variant + "\",\"64\":\"" + variant + "_big\"},\"split\":2}",
      .default_variant = variant,
      .template_hash = "0123456789abcdef",
      .generator_version = "0.1.0",
      .compiler = "nvrtc 13.0",
      .driver = "cuda 13.0 (580.65)",
      .arch = "sm_90a",
      .tuned_shape = "h_q=16,32,64,128 s_q=4096 s_kv=32768",
      .created_at = "2025-03-01T10:00:00Z"};
}

inline BinaryRecord sample_binary(const std::string& key, const std::string& variant = "nsa_fwd_v1",
                                  std::size_t size = 300, const std::string& arch = "sm_90a") {
  std::vector<std::uint8_t> bytes(size);
  for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<std::uint8_t>((i * 131 + key.size()) & 0xff);
  return BinaryRecord{.key = key,
                      .variant = variant,
                      .arch = arch,
                      .compiler = "nvrtc 13.0",
                      .created_at = "2025-03-01T10:00:00Z",
                      .binary = std::move(bytes)};
}

// Fails the test unless `body` throws Error(cache_error) whose message contains every fragment.
template <class Body>
void require_cache_error(Body&& body, std::initializer_list<std::string> fragments) {
  try {
    body();
    FAIL("expected Error(cache_error), nothing was thrown");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::cache_error);
    for (const std::string& f : fragments)
      CHECK_MESSAGE(std::string(e.what()).find(f) != std::string::npos, e.what());
  }
}

}  // namespace nsajit::test
