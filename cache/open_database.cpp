#include "cache/open_database.hpp"

#include <fmt/format.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <chrono>
#include <fstream>
#include <system_error>
#include <thread>
#include <vector>

#include "cache/schema.hpp"

namespace nsajit {
namespace {

namespace fs = std::filesystem;

constexpr int kBusyTimeoutMs = 10'000;
constexpr std::string_view kUnchanged = "; the file was left unchanged";

[[noreturn]] void refuse(std::string_view file, std::string why) {
  fail(ErrorCode::cache_error, "open the cache", fmt::format("cache file {}", file), std::move(why));
}

std::uint32_t big_endian(const std::array<unsigned char, 100>& h, std::size_t at, std::size_t bytes) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < bytes; ++i) v = (v << 8) | h[at + i];
  return v;
}

bool nonempty_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec) && fs::file_size(p, ec) > 0 && !ec;
}

fs::path sidecar(const fs::path& p, std::string_view suffix) {
  return fs::path(p.string() + std::string(suffix));
}

struct HeaderFacts {
  bool wal = false;       // the file's write version says WAL mode
  std::string unsettled;  // why the size disagrees with the header (maybe only for a moment)
};

// Reads the 100-byte SQLite header ourselves, so garbage and truncation are named precisely
// before SQLite is asked. An empty file is a new database (SQLite treats it so too).
HeaderFacts read_header(const fs::path& path, std::string_view file) {
  std::error_code ec;
  auto size = fs::file_size(path, ec);
  if (ec) refuse(file, fmt::format("cannot read the file size: {}", ec.message()));
  if (size == 0) return {};
  if (size < 100)
    return {.unsettled = fmt::format("the file is too short to be a SQLite database ({} bytes)", size)};
  std::array<unsigned char, 100> h{};
  std::ifstream in(path, std::ios::binary);
  if (!in.read(reinterpret_cast<char*>(h.data()), h.size()))
    refuse(file, fmt::format("cannot read the file header{}", kUnchanged));
  static constexpr std::string_view magic{"SQLite format 3\0", 16};
  if (std::string_view(reinterpret_cast<const char*>(h.data()), 16) != magic)
    refuse(file,
           fmt::format("the file is not a SQLite database (it does not start with \"SQLite format 3\"){}",
                       kUnchanged));
  std::uint32_t page_size = big_endian(h, 16, 2);
  if (page_size == 1) page_size = 65536;
  std::uint32_t pages = big_endian(h, 28, 4);
  bool pages_valid = pages != 0 && big_endian(h, 24, 4) == big_endian(h, 92, 4);
  HeaderFacts facts{.wal = h[18] == 2};
  // With a non-empty WAL the main file may legitimately lag behind (pages not checkpointed).
  if (pages_valid && !nonempty_file(sidecar(path, "-wal")) && size < std::uintmax_t{pages} * page_size)
    facts.unsettled =
        fmt::format("the file is truncated: {} bytes, but its header says {} pages of {} bytes ({} bytes)",
                    size, pages, page_size, std::uintmax_t{pages} * page_size);
  return facts;
}

// Another process may be creating the file, or checkpointing its WAL into it (the header and
// the file's size then disagree for a moment, and the WAL may already be reset), while
// read_header looks. A damaged file stays damaged: a size that disagrees with the header is
// refused once it still does after kSettleTries reads kSettleDelay apart. (Eight processes
// writing one cache at once saw a "truncated" file mid-checkpoint.) Garbage is refused at once.
constexpr int kSettleTries = 20;
constexpr std::chrono::milliseconds kSettleDelay{10};

HeaderFacts check_header(const fs::path& path, std::string_view file) {
  for (int attempt = 1;; ++attempt) {
    HeaderFacts facts = read_header(path, file);
    if (facts.unsettled.empty()) return facts;
    if (attempt >= kSettleTries) refuse(file, facts.unsettled + std::string(kUnchanged));
    std::this_thread::sleep_for(kSettleDelay);
  }
}

int classify_unchecked(sqlite3* db, std::string_view file);

// What the file holds, read without writing: nothing yet (0), or our schema version.
// SQLite's own complaints (a malformed page, "not a database") become one clear refusal.
int classify(sqlite3* db, std::string_view file) {
  try {
    return classify_unchecked(db, file);
  } catch (const SqliteBusy&) {
    throw;
  } catch (const Error& e) {
    if (e.operation() == "open the cache") throw;  // already one of our refusals
    refuse(file, fmt::format("SQLite cannot read it as a database (damaged, or not readable here): {}{}",
                             e.reason(), kUnchanged));
  }
}

int classify_unchecked(sqlite3* db, std::string_view file) {
  Statement app(db, "PRAGMA application_id", file);
  app.step();
  auto application_id = static_cast<std::int32_t>(app.integer(0));
  std::vector<std::string> tables;
  Statement list(db, "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name", file);
  while (list.step()) tables.push_back(list.text(0));
  if (tables.empty() && application_id == 0) return 0;
  if (application_id != kCacheApplicationId)
    refuse(file,
           fmt::format("the file is a SQLite database but not an nsa-jit cache (application_id {:#x}, "
                       "expected {:#x}; tables: {}){}",
                       static_cast<std::uint32_t>(application_id), kCacheApplicationId,
                       tables.empty() ? "none" : fmt::format("{}", fmt::join(tables, ", ")), kUnchanged));
  if (std::find(tables.begin(), tables.end(), "meta") == tables.end())
    refuse(file,
           fmt::format("the file has the nsa-jit application id but no meta table (damaged){}", kUnchanged));
  Statement version(db, "SELECT value FROM meta WHERE key = 'schema_version'", file);
  std::string text = version.step() ? version.text(0) : std::string();
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 1)
    refuse(file, fmt::format("the meta table has no valid schema_version (\"{}\"){}", text, kUnchanged));
  return value;
}

[[noreturn]] void refuse_newer(std::string_view file, int version) {
  refuse(file,
         fmt::format("schema version {} is newer than this nsa-jit understands ({}); upgrade nsa-jit or "
                     "use another cache file{}",
                     version, kCacheSchemaVersion, kUnchanged));
}

// "file:" URI for a path, so `immutable=1` can be passed (RFC 3986 percent-encoding).
std::string file_uri(const fs::path& path, std::string_view query) {
  std::string uri = "file:";
  for (unsigned char c : fs::absolute(path).string()) {
    bool plain = std::isalnum(c) != 0 || c == '/' || c == '-' || c == '_' || c == '.' || c == '~';
    uri += plain ? std::string(1, static_cast<char>(c)) : fmt::format("%{:02X}", c);
  }
  return uri + "?" + std::string(query);
}

SqliteDb open_connection(const std::string& name, int flags, std::string_view file) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(name.c_str(), &raw, flags, nullptr);
  SqliteDb db(raw);
  check_sqlite(raw, rc, "open the cache", file);
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, kBusyTimeoutMs);
  return db;
}

void create_schema(sqlite3* db, std::string_view file) {
  exec_sql(db, cache_schema_sql(), "create the cache schema", file);
  exec_sql(db, fmt::format("PRAGMA application_id = {}", kCacheApplicationId), "set the application id",
           file);
  Statement meta(db, "INSERT INTO meta (key, value) VALUES ('schema_version', ?1), ('created_by', ?2)", file);
  meta.bind(1, std::to_string(kCacheSchemaVersion)).bind(2, "nsa-jit " NSAJIT_VERSION_STRING).run();
}

void migrate(sqlite3* db, std::string_view file, int from) {
  for (const CacheMigration& step : cache_migrations()) {
    if (step.from_version < from) continue;
    exec_sql(db, step.sql, fmt::format("migrate the cache schema from version {}", step.from_version), file);
  }
  Statement meta(db, "UPDATE meta SET value = ?1 WHERE key = 'schema_version'", file);
  meta.bind(1, std::to_string(kCacheSchemaVersion)).run();
}

OpenedDatabase open_read_only(const fs::path& path, std::string_view file) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) refuse(file, "the file does not exist or is not a regular file");
  HeaderFacts header = check_header(path, file);
  // A WAL-mode file in a directory we cannot write needs its -shm, which cannot be made
  // there. If nobody here can change the file either, it is safe to read it as immutable.
  fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  bool immutable = header.wal && !fs::exists(sidecar(path, "-shm"), ec) &&
                   !nonempty_file(sidecar(path, "-wal")) && access(dir.c_str(), W_OK) != 0 &&
                   access(path.c_str(), W_OK) != 0;
  SqliteDb db =
      immutable ? open_connection(file_uri(path, "immutable=1"), SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, file)
                : open_connection(path.string(), SQLITE_OPEN_READONLY, file);
  int version = with_busy_retry([&] { return classify(db.get(), file); });
  if (version == 0)
    refuse(file, fmt::format("the file is an empty database, not an nsa-jit cache{}", kUnchanged));
  if (version > kCacheSchemaVersion) refuse_newer(file, version);
  if (version < kCacheSchemaVersion)
    refuse(file,
           fmt::format("schema version {} is older than this nsa-jit's ({}) and a read-only cache is never "
                       "migrated; open it read-write once, or export it again with this nsa-jit{}",
                       version, kCacheSchemaVersion, kUnchanged));
  exec_sql(db.get(), "PRAGMA query_only = ON", "make the connection read-only", file);
  return {std::move(db), version};
}

OpenedDatabase open_read_write(const fs::path& path, std::string_view file) {
  std::error_code ec;
  if (!path.parent_path().empty()) {
    fs::create_directories(path.parent_path(), ec);
    if (ec)
      refuse(file,
             fmt::format("cannot create the directory {}: {}", path.parent_path().string(), ec.message()));
  }
  constexpr std::string_view kChooseAnother =
      "; open it read-only, or choose another cache path (--cache, NSA_JIT_CACHE)";
  if (fs::exists(path, ec)) {
    if (!fs::is_regular_file(path, ec)) refuse(file, "the path exists but is not a regular file");
    check_header(path, file);
    if (access(path.c_str(), W_OK) != 0)
      refuse(file, fmt::format("the file is not writable{}", kChooseAnother));
  }
  fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  if (access(dir.c_str(), W_OK) != 0)
    refuse(file,
           fmt::format("the directory {} is not writable (SQLite keeps its -wal and -shm files beside the "
                       "cache){}",
                       dir.string(), kChooseAnother));
  SqliteDb db = open_connection(path.string(), SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, file);
  sqlite3* raw = db.get();
  int version = with_busy_retry([&] { return classify(raw, file); });
  if (version > kCacheSchemaVersion) refuse_newer(file, version);
  if (sqlite3_db_readonly(raw, "main") == 1)
    refuse(file, fmt::format("the file is not writable{}", kChooseAnother));
  // Only now, with a file known to be ours (or new), change anything.
  with_busy_retry([&] { exec_sql(raw, "PRAGMA journal_mode = WAL", "switch to WAL mode", file); });
  exec_sql(raw, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON", "configure the connection", file);
  if (version < kCacheSchemaVersion) {
    write_transaction(raw, file, [&] {
      int now = classify(raw, file);  // another process may have created or migrated it meanwhile
      if (now > kCacheSchemaVersion) refuse_newer(file, now);
      if (now == 0)
        create_schema(raw, file);
      else if (now < kCacheSchemaVersion)
        migrate(raw, file, now);
    });
  }
  return {std::move(db), kCacheSchemaVersion};
}

}  // namespace

OpenedDatabase open_database(const fs::path& path, bool read_only) {
  std::string file = path.string();
  return read_only ? open_read_only(path, file) : open_read_write(path, file);
}

}  // namespace nsajit
