// The SQLite cache of tuned winners, compiled binaries and every candidate's timing.
// Value types in, value types out; the dispatcher and the tuner build on this.
// A CacheStore is one connection: not thread-safe, one per thread or behind a mutex.
// Many processes may open the same file at once (WAL, busy timeout, retried transactions).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cache/sqlite_handle.hpp"

namespace nsajit {

enum class OpenMode {
  read_write,  // created (with parent directories) when missing; migrated forward when older
  read_only,   // never written: a shipped cache; must exist with the current schema
};

struct WinnerKey {
  std::string device;    // the GPU the winner was measured on
  std::string family;    // "sparse_mla_fwd", "topk_select"
  std::string geometry;  // Geometry::key(), e.g. "d576v512"
  int topk = 0;
  friend bool operator==(const WinnerKey&, const WinnerKey&) = default;
};

struct WinnerRecord {
  WinnerKey key;
  std::string rule;             // JSON for the dispatcher (per-h_q variants, split rule); opaque here
  std::string default_variant;  // a variant name
  std::string template_hash;
  std::string generator_version;
  std::string compiler;
  std::string driver;
  std::string arch;
  std::string tuned_shape;  // e.g. "h_q=16,32,64,128 s_q=4096 s_kv=32768"
  std::string created_at;   // UTC "YYYY-MM-DDTHH:MM:SSZ"; filled with now when empty on write
  friend bool operator==(const WinnerRecord&, const WinnerRecord&) = default;
};

struct BinaryRecord {
  std::string key;  // the caller's content key: hash of source + options + compiler + arch
  std::string variant;
  std::string arch;
  std::string compiler;
  std::string created_at;  // filled with now when empty on write
  std::vector<std::uint8_t> binary;
  friend bool operator==(const BinaryRecord&, const BinaryRecord&) = default;
};

enum class TimingStatus { ok, wrong, compile_failed, launch_failed };
[[nodiscard]] std::string_view to_string(TimingStatus status) noexcept;
// Throws Error(cache_error) for a name that is not one of the four.
[[nodiscard]] TimingStatus timing_status_from_string(std::string_view name);

struct TimingRecord {
  std::string device;
  std::string family;
  std::string geometry;
  int topk = 0;
  std::string variant;
  int h_q = 0;
  std::int64_t s_q = 0;
  std::int64_t s_kv = 0;
  TimingStatus status = TimingStatus::ok;
  std::optional<double> median_ms;  // set when status == ok
  std::string detail;               // error message or log excerpt
  std::string run_id;               // groups the candidates of one tune run
  std::string created_at;           // filled with now when empty on write
  friend bool operator==(const TimingRecord&, const TimingRecord&) = default;
};

struct ClearReport {
  std::size_t winners = 0;
  std::size_t binaries = 0;
  std::size_t timings = 0;
};

struct ExportReport {
  std::filesystem::path path;
  std::size_t winners = 0;
  std::size_t binaries = 0;
};

// Conflict policy of import_from: for the same winner key the row with the later created_at
// wins (a tie keeps the existing row); binaries are insert-or-ignore (same key, same bytes);
// timings are not imported (exports carry none).
struct ImportReport {
  std::size_t winners_added = 0;
  std::size_t winners_replaced = 0;  // the imported row was newer
  std::size_t winners_kept = 0;      // the existing row was as new or newer
  std::size_t binaries_added = 0;
  std::size_t binaries_present = 0;  // key already here
  std::size_t binaries_corrupt = 0;  // failed their checksum in the imported file; skipped
};

// UTC now as "YYYY-MM-DDTHH:MM:SSZ" (the created_at format; compares as text).
[[nodiscard]] std::string utc_timestamp_now();

class CacheStore {
 public:
  // Throws Error(cache_error) naming the path and the cause when the file is garbage,
  // truncated, another application's database, from a newer schema (or, read_only, from an
  // older one), or cannot be created. Such a file is never modified.
  [[nodiscard]] static CacheStore open(const std::filesystem::path& path, OpenMode mode);

  CacheStore(CacheStore&&) noexcept = default;
  CacheStore& operator=(CacheStore&&) noexcept = default;
  CacheStore(const CacheStore&) = delete;
  CacheStore& operator=(const CacheStore&) = delete;
  ~CacheStore() = default;

  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
  [[nodiscard]] bool read_only() const noexcept { return read_only_; }
  [[nodiscard]] int schema_version() const noexcept { return schema_version_; }

  // ---- winners ----
  [[nodiscard]] std::optional<WinnerRecord> find_winner(const WinnerKey& key);
  // Every device's winner for this family, geometry and topk (to say "tuned, but for another GPU").
  [[nodiscard]] std::vector<WinnerRecord> winners_for(std::string_view family, std::string_view geometry,
                                                      int topk);
  [[nodiscard]] std::vector<WinnerRecord> list_winners();  // ordered by device, family, geometry, topk
  void put_winner(const WinnerRecord& winner);             // insert or replace (same key)

  // ---- binaries ----
  // nullopt when absent, or when the stored bytes fail their checksum (a warning is recorded).
  [[nodiscard]] std::optional<BinaryRecord> find_binary(std::string_view key);
  // Insert or ignore: the same key means the same bytes. A stored row that fails its
  // checksum is replaced.
  void put_binary(const BinaryRecord& binary);

  // ---- timings ----
  void add_timings(std::span<const TimingRecord> timings);
  [[nodiscard]] std::vector<TimingRecord> timings_for(std::string_view device, std::string_view family,
                                                      int topk);

  // What one tune of one topk produced, in one transaction: a tune killed midway leaves
  // either all of it or none of it.
  void record_tune_result(const WinnerRecord& winner, std::span<const BinaryRecord> binaries,
                          std::span<const TimingRecord> timings);

  // No filter: everything. With a device: its winners and timings, and the binaries its
  // winners reference that no other device's winner references.
  ClearReport clear(const std::optional<std::string>& device = std::nullopt);

  // Writes a new self-contained cache (rollback journal, no -wal/-shm needed, so it can be
  // shipped read-only) with the winners (of `device` only, when given) and the binaries
  // those winners reference: a binary whose arch equals the winner's arch and whose variant
  // is the winner's default_variant or appears as a JSON string ("name") in its rule.
  // Built in a temporary file beside `out`, then renamed over it atomically.
  ExportReport export_to(const std::filesystem::path& out,
                         const std::optional<std::string>& device = std::nullopt);

  // Merges another cache file into this one (policy: see ImportReport). The file is
  // validated first (schema, quick_check); a bad file is refused before anything is written.
  ImportReport import_from(const std::filesystem::path& in);

  // PRAGMA quick_check: "ok", or SQLite's findings, one per line.
  [[nodiscard]] std::string check();

  // Problems met while reading (corrupt binaries), in order; the caller decides where to say them.
  [[nodiscard]] const std::vector<std::string>& warnings() const noexcept { return warnings_; }

 private:
  CacheStore(SqliteDb db, std::filesystem::path path, bool read_only, int schema_version);
  void require_writable(std::string_view operation) const;
  void in_write_transaction(const std::function<void()>& body);
  void insert_winner(const WinnerRecord& winner);
  bool insert_binary(const BinaryRecord& binary);  // false: an intact row with this key exists
  void insert_timing(const TimingRecord& timing);
  [[nodiscard]] std::vector<WinnerRecord> query_winners(std::string_view where_clause,
                                                        const std::function<void(Statement&)>& bind);
  struct VerifiedBinaries {
    std::vector<BinaryRecord> good;
    std::size_t corrupt = 0;  // rows that failed their checksum (each also recorded in warnings_)
  };
  // `where_clause` may use the alias b for binaries.
  [[nodiscard]] VerifiedBinaries query_binaries(std::string_view where_clause,
                                                const std::function<void(Statement&)>& bind);

  // SQL: winner `w` references binary `b` (the rule is JSON, so a variant appears as "name").
  static constexpr std::string_view kWinnerReferencesBinary =
      "(w.arch = b.arch AND (w.default_variant = b.variant OR instr(w.rule, '\"' || b.variant || '\"') > 0))";

  SqliteDb db_;
  std::filesystem::path path_;
  std::string file_;  // path_ as text, for messages
  bool read_only_ = false;
  int schema_version_ = 0;
  std::vector<std::string> warnings_;
};

}  // namespace nsajit
