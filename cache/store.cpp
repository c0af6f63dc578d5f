#include "cache/store.hpp"

#include <fmt/format.h>
#include <sqlite3.h>

#include <chrono>
#include <ctime>

#include "cache/open_database.hpp"
#include "runtime/hash.hpp"

namespace nsajit {
namespace {

constexpr std::string_view kWinnerColumns =
    "device, family, geometry, topk, rule, default_variant, template_hash, generator_version, compiler, "
    "driver, "
    "arch, tuned_shape, created_at";
constexpr std::string_view kBinaryColumns =
    "b.key, b.variant, b.arch, b.compiler, b.created_at, b.size, b.checksum, b.binary";
constexpr std::string_view kTimingColumns =
    "device, family, geometry, topk, variant, h_q, s_q, s_kv, status, median_ms, detail, run_id, created_at";

std::string checksum_of(std::span<const std::uint8_t> bytes) {
  return Hasher().update(bytes).hex();
}

std::string or_now(const std::string& created_at) {
  return created_at.empty() ? utc_timestamp_now() : created_at;
}

WinnerRecord read_winner(const Statement& s) {
  return WinnerRecord{.key = {.device = s.text(0),
                              .family = s.text(1),
                              .geometry = s.text(2),
                              .topk = static_cast<int>(s.integer(3))},
                      .rule = s.text(4),
                      .default_variant = s.text(5),
                      .template_hash = s.text(6),
                      .generator_version = s.text(7),
                      .compiler = s.text(8),
                      .driver = s.text(9),
                      .arch = s.text(10),
                      .tuned_shape = s.text(11),
                      .created_at = s.text(12)};
}

}  // namespace

std::string_view to_string(TimingStatus status) noexcept {
  switch (status) {
    case TimingStatus::ok:
      return "ok";
    case TimingStatus::wrong:
      return "wrong";
    case TimingStatus::compile_failed:
      return "compile_failed";
    case TimingStatus::launch_failed:
      return "launch_failed";
  }
  return "ok";
}

TimingStatus timing_status_from_string(std::string_view name) {
  for (auto s :
       {TimingStatus::ok, TimingStatus::wrong, TimingStatus::compile_failed, TimingStatus::launch_failed})
    if (to_string(s) == name) return s;
  fail(ErrorCode::cache_error, "read a timing", "cache",
       fmt::format("unknown status \"{}\" (expected ok, wrong, compile_failed or launch_failed)", name));
}

std::string utc_timestamp_now() {
  std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec);
}

CacheStore CacheStore::open(const std::filesystem::path& path, OpenMode mode) {
  OpenedDatabase opened = open_database(path, mode == OpenMode::read_only);
  return CacheStore(std::move(opened.db), path, mode == OpenMode::read_only, opened.schema_version);
}

CacheStore::CacheStore(SqliteDb db, std::filesystem::path path, bool read_only, int schema_version)
    : db_(std::move(db)),
      path_(std::move(path)),
      file_(path_.string()),
      read_only_(read_only),
      schema_version_(schema_version) {}

void CacheStore::require_writable(std::string_view operation) const {
  if (read_only_)
    fail(ErrorCode::cache_error, std::string(operation), fmt::format("cache file {}", file_),
         "the cache is opened read-only (a shipped cache is never written; writes go to the writable cache)");
}

void CacheStore::in_write_transaction(const std::function<void()>& body) {
  write_transaction(db_.get(), file_, body);
}

// ---- winners ------------------------------------------------------------------------------

std::vector<WinnerRecord> CacheStore::query_winners(std::string_view where_clause,
                                                    const std::function<void(Statement&)>& bind) {
  Statement s(db_.get(),
              fmt::format("SELECT {} FROM winners {} ORDER BY device, family, geometry, topk", kWinnerColumns,
                          where_clause),
              file_);
  if (bind) bind(s);
  std::vector<WinnerRecord> rows;
  while (s.step()) rows.push_back(read_winner(s));
  return rows;
}

std::optional<WinnerRecord> CacheStore::find_winner(const WinnerKey& key) {
  auto rows =
      query_winners("WHERE device = ?1 AND family = ?2 AND geometry = ?3 AND topk = ?4", [&](Statement& s) {
        s.bind(1, key.device).bind(2, key.family).bind(3, key.geometry).bind(4, std::int64_t{key.topk});
      });
  if (rows.empty()) return std::nullopt;
  return rows.front();
}

std::vector<WinnerRecord> CacheStore::winners_for(std::string_view family, std::string_view geometry,
                                                  int topk) {
  return query_winners("WHERE family = ?1 AND geometry = ?2 AND topk = ?3", [&](Statement& s) {
    s.bind(1, family).bind(2, geometry).bind(3, std::int64_t{topk});
  });
}

std::vector<WinnerRecord> CacheStore::list_winners() {
  return query_winners("", nullptr);
}

void CacheStore::insert_winner(const WinnerRecord& w) {
  Statement s(
      db_.get(),
      fmt::format("INSERT OR REPLACE INTO winners ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
                  "?12, ?13)",
                  kWinnerColumns),
      file_);
  s.bind(1, w.key.device).bind(2, w.key.family).bind(3, w.key.geometry).bind(4, std::int64_t{w.key.topk});
  s.bind(5, w.rule).bind(6, w.default_variant).bind(7, w.template_hash).bind(8, w.generator_version);
  s.bind(9, w.compiler)
      .bind(10, w.driver)
      .bind(11, w.arch)
      .bind(12, w.tuned_shape)
      .bind(13, or_now(w.created_at));
  s.run();
}

void CacheStore::put_winner(const WinnerRecord& winner) {
  require_writable("store a winner");
  in_write_transaction([&] { insert_winner(winner); });
}

// ---- binaries -----------------------------------------------------------------------------

CacheStore::VerifiedBinaries CacheStore::query_binaries(std::string_view where_clause,
                                                        const std::function<void(Statement&)>& bind) {
  Statement s(db_.get(),
              fmt::format("SELECT {} FROM binaries b {} ORDER BY b.key", kBinaryColumns, where_clause),
              file_);
  if (bind) bind(s);
  VerifiedBinaries result;
  while (s.step()) {
    BinaryRecord b{.key = s.text(0),
                   .variant = s.text(1),
                   .arch = s.text(2),
                   .compiler = s.text(3),
                   .created_at = s.text(4),
                   .binary = s.blob(7)};
    auto stored_size = static_cast<std::uint64_t>(s.integer(5));
    std::string stored_checksum = s.text(6), actual = checksum_of(b.binary);
    if (stored_size != b.binary.size() || stored_checksum != actual) {
      warnings_.push_back(fmt::format(
          "cache file {}: binary {} (variant {}, arch {}) is corrupt ({} bytes, checksum "
          "{}; recorded {} bytes, checksum {}); ignored",
          file_, b.key, b.variant, b.arch, b.binary.size(), actual, stored_size, stored_checksum));
      ++result.corrupt;
      continue;
    }
    result.good.push_back(std::move(b));
  }
  return result;
}

std::optional<BinaryRecord> CacheStore::find_binary(std::string_view key) {
  auto found = query_binaries("WHERE b.key = ?1", [&](Statement& s) { s.bind(1, key); });
  if (found.good.empty()) return std::nullopt;
  return std::move(found.good.front());
}

bool CacheStore::insert_binary(const BinaryRecord& b) {
  Statement existing(db_.get(), "SELECT size, checksum, binary FROM binaries WHERE key = ?1", file_);
  existing.bind(1, b.key);
  if (existing.step()) {
    auto bytes = existing.blob(2);
    bool intact = static_cast<std::uint64_t>(existing.integer(0)) == bytes.size() &&
                  existing.text(1) == checksum_of(bytes);
    if (intact) return false;  // same key, same content: nothing to do
  }
  Statement s(
      db_.get(),
      "INSERT OR REPLACE INTO binaries (key, variant, arch, compiler, created_at, size, checksum, binary) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
      file_);
  s.bind(1, b.key).bind(2, b.variant).bind(3, b.arch).bind(4, b.compiler).bind(5, or_now(b.created_at));
  s.bind(6, static_cast<std::int64_t>(b.binary.size())).bind(7, checksum_of(b.binary));
  s.bind(8, std::span<const std::uint8_t>(b.binary));
  s.run();
  return true;
}

void CacheStore::put_binary(const BinaryRecord& binary) {
  require_writable("store a binary");
  in_write_transaction([&] { (void)insert_binary(binary); });
}

// ---- timings ------------------------------------------------------------------------------

void CacheStore::insert_timing(const TimingRecord& t) {
  Statement s(
      db_.get(),
      fmt::format("INSERT INTO timings ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                  kTimingColumns),
      file_);
  s.bind(1, t.device).bind(2, t.family).bind(3, t.geometry).bind(4, std::int64_t{t.topk}).bind(5, t.variant);
  s.bind(6, std::int64_t{t.h_q})
      .bind(7, t.s_q)
      .bind(8, t.s_kv)
      .bind(9, to_string(t.status))
      .bind(10, t.median_ms);
  s.bind(11, t.detail).bind(12, t.run_id).bind(13, or_now(t.created_at));
  s.run();
}

void CacheStore::add_timings(std::span<const TimingRecord> timings) {
  require_writable("store timings");
  in_write_transaction([&] {
    for (const TimingRecord& t : timings) insert_timing(t);
  });
}

std::vector<TimingRecord> CacheStore::timings_for(std::string_view device, std::string_view family,
                                                  int topk) {
  Statement s(
      db_.get(),
      fmt::format("SELECT {} FROM timings WHERE device = ?1 AND family = ?2 AND topk = ?3 ORDER BY id",
                  kTimingColumns),
      file_);
  s.bind(1, device).bind(2, family).bind(3, std::int64_t{topk});
  std::vector<TimingRecord> rows;
  while (s.step()) {
    rows.push_back(TimingRecord{.device = s.text(0),
                                .family = s.text(1),
                                .geometry = s.text(2),
                                .topk = static_cast<int>(s.integer(3)),
                                .variant = s.text(4),
                                .h_q = static_cast<int>(s.integer(5)),
                                .s_q = s.integer(6),
                                .s_kv = s.integer(7),
                                .status = timing_status_from_string(s.text(8)),
                                .median_ms = s.real(9),
                                .detail = s.text(10),
                                .run_id = s.text(11),
                                .created_at = s.text(12)});
  }
  return rows;
}

void CacheStore::record_tune_result(const WinnerRecord& winner, std::span<const BinaryRecord> binaries,
                                    std::span<const TimingRecord> timings) {
  require_writable("record a tune result");
  in_write_transaction([&] {
    for (const BinaryRecord& b : binaries) (void)insert_binary(b);
    for (const TimingRecord& t : timings) insert_timing(t);
    insert_winner(winner);
  });
}

// ---- maintenance --------------------------------------------------------------------------

ClearReport CacheStore::clear(const std::optional<std::string>& device) {
  require_writable("clear the cache");
  ClearReport report;
  in_write_transaction([&] {
    auto run_counted = [&](const std::string& sql) {
      Statement s(db_.get(), sql, file_);
      if (device) s.bind(1, *device);
      s.run();
      return static_cast<std::size_t>(sqlite3_changes64(db_.get()));
    };
    if (!device) {
      report.binaries = run_counted("DELETE FROM binaries");
      report.winners = run_counted("DELETE FROM winners");
      report.timings = run_counted("DELETE FROM timings");
      return;
    }
    report.binaries = run_counted(fmt::format(
        "DELETE FROM binaries AS b WHERE EXISTS (SELECT 1 FROM winners w WHERE w.device = ?1 AND {0}) "
        "AND NOT EXISTS (SELECT 1 FROM winners w WHERE w.device != ?1 AND {0})",
        kWinnerReferencesBinary));
    report.winners = run_counted("DELETE FROM winners WHERE device = ?1");
    report.timings = run_counted("DELETE FROM timings WHERE device = ?1");
  });
  return report;
}

std::string CacheStore::check() {
  try {
    Statement s(db_.get(), "PRAGMA quick_check", file_);
    std::string findings;
    while (s.step()) findings += (findings.empty() ? "" : "\n") + s.text(0);
    return findings;
  } catch (const Error& e) {
    return e.reason();  // a file too damaged to check says so here rather than throwing
  }
}

}  // namespace nsajit
