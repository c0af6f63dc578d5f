// Export to a self-contained file and import (merge) from one.
#include <fmt/format.h>
#include <unistd.h>

#include "cache/store.hpp"

namespace nsajit {
namespace {

namespace fs = std::filesystem;

bool same_file(const fs::path& a, const fs::path& b) {
  std::error_code ec;
  return fs::exists(b, ec) && fs::equivalent(a, b, ec);
}

void remove_with_sidecars(const fs::path& p) {
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) fs::remove(fs::path(p.string() + suffix), ec);
}

}  // namespace

ExportReport CacheStore::export_to(const fs::path& out, const std::optional<std::string>& device) {
  std::string where = fmt::format("export the cache to {}", out.string());
  if (same_file(path_, out))
    fail(ErrorCode::cache_error, where, fmt::format("cache file {}", file_),
         "the target is this cache file itself");

  std::vector<WinnerRecord> winners =
      device ? query_winners("WHERE device = ?1", [&](Statement& s) { s.bind(1, *device); }) : list_winners();
  VerifiedBinaries binaries = query_binaries(
      fmt::format("WHERE EXISTS (SELECT 1 FROM winners w WHERE (?1 IS NULL OR w.device = ?1) AND {})",
                  kWinnerReferencesBinary),
      [&](Statement& s) { device ? (void)s.bind(1, *device) : (void)s.bind_null(1); });

  // Built beside the target, then renamed: a reader never sees a half-written export.
  fs::path temporary = out.string() + fmt::format(".tmp-{}", getpid());
  remove_with_sidecars(temporary);
  try {
    {
      CacheStore target = open(temporary, OpenMode::read_write);
      target.in_write_transaction([&] {
        for (const WinnerRecord& w : winners) target.insert_winner(w);
        for (const BinaryRecord& b : binaries.good) (void)target.insert_binary(b);
      });
      // A rollback journal: the shipped file is one file, readable from a read-only directory.
      exec_sql(target.db_.get(), "PRAGMA journal_mode = DELETE", "leave WAL mode", target.file_);
    }
    fs::rename(temporary, out);
  } catch (const fs::filesystem_error& e) {
    remove_with_sidecars(temporary);
    fail(ErrorCode::cache_error, where, fmt::format("cache file {}", file_), e.what());
  } catch (...) {
    remove_with_sidecars(temporary);
    throw;
  }
  return ExportReport{.path = out, .winners = winners.size(), .binaries = binaries.good.size()};
}

ImportReport CacheStore::import_from(const fs::path& in) {
  std::string what = fmt::format("import {}", in.string());
  std::string where = fmt::format("cache file {}", file_);
  require_writable(what);
  if (same_file(path_, in)) fail(ErrorCode::cache_error, what, where, "the file is this cache itself");

  // Validate the whole source before writing anything here.
  std::optional<CacheStore> source;
  try {
    source.emplace(open(in, OpenMode::read_only));
  } catch (const Error& e) {
    fail(ErrorCode::cache_error, what, where, fmt::format("the file to import was refused: {}", e.reason()));
  }
  if (std::string integrity = source->check(); integrity != "ok")
    fail(ErrorCode::cache_error, what, where,
         fmt::format("the file to import fails SQLite's quick_check; nothing was imported:\n{}", integrity));
  std::vector<WinnerRecord> winners = source->list_winners();
  VerifiedBinaries binaries = source->query_binaries("", nullptr);
  for (const std::string& w : source->warnings()) warnings_.push_back(w);

  ImportReport report;
  in_write_transaction([&] {
    report = ImportReport{.binaries_corrupt = binaries.corrupt};
    for (const WinnerRecord& w : winners) {
      std::optional<WinnerRecord> existing = find_winner(w.key);
      if (existing && existing->created_at >= w.created_at) {
        ++report.winners_kept;
        continue;
      }
      insert_winner(w);
      ++(existing ? report.winners_replaced : report.winners_added);
    }
    for (const BinaryRecord& b : binaries.good)
      ++(insert_binary(b) ? report.binaries_added : report.binaries_present);
  });
  return report;
}

}  // namespace nsajit
