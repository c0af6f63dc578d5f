// RAII for SQLite connections and statements, and errors that name the cache file.
// Does not include sqlite3.h: the store holds an SqliteDb, but no SQLite type is in its API.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "runtime/error.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace nsajit {

struct SqliteCloser {
  void operator()(sqlite3* db) const noexcept;
};
using SqliteDb = std::unique_ptr<sqlite3, SqliteCloser>;

// SQLITE_BUSY / SQLITE_LOCKED after the busy timeout: the store retries the whole transaction.
class SqliteBusy : public Error {
 public:
  using Error::Error;
};

// Throws Error(cache_error) - SqliteBusy for busy/locked - when rc is not OK/ROW/DONE.
// `what` is the operation, `file` the cache path; the reason carries SQLite's message and code.
void check_sqlite(sqlite3* db, int rc, std::string_view what, std::string_view file);

// Runs one or more SQL statements that return no rows.
void exec_sql(sqlite3* db, std::string_view sql, std::string_view what, std::string_view file);

class Statement {
 public:
  Statement(sqlite3* db, std::string_view sql, std::string_view file);

  // Parameters are 1-based, as in SQL ("?1").
  Statement& bind(int index, std::string_view text);
  Statement& bind(int index, std::int64_t value);
  Statement& bind(int index, std::optional<double> value);  // nullopt binds NULL
  Statement& bind(int index, std::span<const std::uint8_t> blob);
  Statement& bind_null(int index);

  // Advances; true while a row is available.
  bool step();
  // Runs a statement that returns no rows.
  void run() { (void)step(); }

  [[nodiscard]] std::string text(int column) const;
  [[nodiscard]] std::int64_t integer(int column) const;
  [[nodiscard]] std::optional<double> real(int column) const;  // nullopt for NULL
  [[nodiscard]] std::vector<std::uint8_t> blob(int column) const;

 private:
  struct Finalizer {
    void operator()(sqlite3_stmt* stmt) const noexcept;
  };
  sqlite3* db_;
  std::unique_ptr<sqlite3_stmt, Finalizer> stmt_;
  std::string sql_;
  std::string file_;
};

// Runs `body`, retrying while it throws SqliteBusy, for at most `patience` in total. The
// busy timeout already waits inside SQLite; this covers the cases it does not (busy on
// BEGIN IMMEDIATE after a WAL restart, on PRAGMA journal_mode, on recovery).
template <class Body>
auto with_busy_retry(Body&& body, std::chrono::milliseconds patience = std::chrono::seconds(60)) {
  auto deadline = std::chrono::steady_clock::now() + patience;
  for (;;) {
    try {
      return body();
    } catch (const SqliteBusy&) {
      if (std::chrono::steady_clock::now() > deadline) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
}

// BEGIN IMMEDIATE; body(); COMMIT - rolled back when body throws, retried when busy.
// `body` may therefore run more than once: it must start from scratch each time.
void write_transaction(sqlite3* db, std::string_view file, const std::function<void()>& body);

}  // namespace nsajit
