#include "cache/sqlite_handle.hpp"

#include <fmt/format.h>
#include <sqlite3.h>

namespace nsajit {

void SqliteCloser::operator()(sqlite3* db) const noexcept {
  sqlite3_close_v2(db);
}

void Statement::Finalizer::operator()(sqlite3_stmt* stmt) const noexcept {
  sqlite3_finalize(stmt);
}

void check_sqlite(sqlite3* db, int rc, std::string_view what, std::string_view file) {
  if (rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE) return;
  std::string why = fmt::format("{} (SQLite error {}: {})", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc), rc,
                                sqlite3_errstr(rc));
  std::string where = fmt::format("cache file {}", file);
  int primary = rc & 0xff;
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED)
    throw SqliteBusy(ErrorCode::cache_error, std::string(what), std::move(where), std::move(why));
  fail(ErrorCode::cache_error, std::string(what), std::move(where), std::move(why));
}

void exec_sql(sqlite3* db, std::string_view sql, std::string_view what, std::string_view file) {
  std::string text(sql);
  check_sqlite(db, sqlite3_exec(db, text.c_str(), nullptr, nullptr, nullptr), what, file);
}

Statement::Statement(sqlite3* db, std::string_view sql, std::string_view file)
    : db_(db), sql_(sql), file_(file) {
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v2(db, sql_.data(), static_cast<int>(sql_.size()), &raw, nullptr);
  stmt_.reset(raw);
  check_sqlite(db, rc, fmt::format("prepare \"{}\"", sql_), file_);
}

Statement& Statement::bind(int index, std::string_view text) {
  check_sqlite(
      db_, sqlite3_bind_text64(stmt_.get(), index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8),
      "bind a text parameter", file_);
  return *this;
}

Statement& Statement::bind(int index, std::int64_t value) {
  check_sqlite(db_, sqlite3_bind_int64(stmt_.get(), index, value), "bind an integer parameter", file_);
  return *this;
}

Statement& Statement::bind(int index, std::optional<double> value) {
  if (!value) return bind_null(index);
  check_sqlite(db_, sqlite3_bind_double(stmt_.get(), index, *value), "bind a real parameter", file_);
  return *this;
}

Statement& Statement::bind(int index, std::span<const std::uint8_t> blob) {
  // An empty span may have a null data(); SQLite would store NULL, so bind a zero-length blob.
  int rc = blob.empty() ? sqlite3_bind_zeroblob(stmt_.get(), index, 0)
                        : sqlite3_bind_blob64(stmt_.get(), index, blob.data(), blob.size(), SQLITE_TRANSIENT);
  check_sqlite(db_, rc, "bind a blob parameter", file_);
  return *this;
}

Statement& Statement::bind_null(int index) {
  check_sqlite(db_, sqlite3_bind_null(stmt_.get(), index), "bind NULL", file_);
  return *this;
}

bool Statement::step() {
  int rc = sqlite3_step(stmt_.get());
  check_sqlite(db_, rc, fmt::format("run \"{}\"", sql_), file_);
  return rc == SQLITE_ROW;
}

std::string Statement::text(int column) const {
  const unsigned char* p = sqlite3_column_text(stmt_.get(), column);
  if (p == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(p),
                     static_cast<std::size_t>(sqlite3_column_bytes(stmt_.get(), column)));
}

std::int64_t Statement::integer(int column) const {
  return sqlite3_column_int64(stmt_.get(), column);
}

std::optional<double> Statement::real(int column) const {
  if (sqlite3_column_type(stmt_.get(), column) == SQLITE_NULL) return std::nullopt;
  return sqlite3_column_double(stmt_.get(), column);
}

std::vector<std::uint8_t> Statement::blob(int column) const {
  const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_.get(), column));
  auto n = static_cast<std::size_t>(sqlite3_column_bytes(stmt_.get(), column));
  if (p == nullptr) return {};
  return std::vector<std::uint8_t>(p, p + n);
}

}  // namespace nsajit

namespace nsajit {

void write_transaction(sqlite3* db, std::string_view file, const std::function<void()>& body) {
  with_busy_retry([&] {
    exec_sql(db, "BEGIN IMMEDIATE", "begin a write transaction", file);
    try {
      body();
      exec_sql(db, "COMMIT", "commit a write transaction", file);
    } catch (...) {
      // Nothing of a failed transaction may remain; ROLLBACK's own error is secondary.
      if (sqlite3_get_autocommit(db) == 0) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  });
}

}  // namespace nsajit
