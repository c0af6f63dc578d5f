#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <regex>

#include "tests/unit/cache_test_support.hpp"

using namespace nsajit;
using namespace nsajit::test;

TEST_CASE("winner_round_trips_every_field") {
  TempDir dir;
  CacheStore store = CacheStore::open(dir / "c.sqlite", OpenMode::read_write);
  WinnerRecord w = sample_winner("NVIDIA H100 80GB HBM3", 2048);
  store.put_winner(w);
  CHECK(store.find_winner(w.key) == w);
  CHECK_FALSE(store.find_winner({w.key.device, w.key.family, w.key.geometry, 1024}).has_value());
  CHECK_FALSE(store.find_winner({"other gpu", w.key.family, w.key.geometry, 2048}).has_value());
  CHECK_FALSE(store.find_winner({w.key.device, w.key.family, "d512v512", 2048}).has_value());
  CHECK_FALSE(store.find_winner({w.key.device, "topk_select", w.key.geometry, 2048}).has_value());
  // Survives closing and reopening, read-write and read-only.
  store = CacheStore::open(dir / "c.sqlite", OpenMode::read_only);
  CHECK(store.find_winner(w.key) == w);
}

TEST_CASE("put_winner_with_the_same_key_replaces_the_row") {
  TempDir dir;
  CacheStore store = CacheStore::open(dir / "c.sqlite", OpenMode::read_write);
  WinnerRecord first = sample_winner("gpu", 512, "old_variant");
  WinnerRecord second = sample_winner("gpu", 512, "new_variant");
  second.created_at = "2025-04-01T00:00:00Z";
  store.put_winner(first);
  store.put_winner(second);
  CHECK(store.find_winner(first.key) == second);
  CHECK(store.list_winners().size() == 1);
}

TEST_CASE("winners_for_returns_every_device_and_list_winners_is_ordered") {
  TempDir dir;
  CacheStore store = CacheStore::open(dir / "c.sqlite", OpenMode::read_write);
  store.put_winner(sample_winner("gpu-b", 2048));
  store.put_winner(sample_winner("gpu-a", 2048));
  store.put_winner(sample_winner("gpu-a", 512));
  auto for_2048 = store.winners_for("sparse_mla_fwd", "d576v512", 2048);
  REQUIRE(for_2048.size() == 2);
  CHECK(for_2048[0].key.device == "gpu-a");
  CHECK(for_2048[1].key.device == "gpu-b");
  CHECK(store.winners_for("sparse_mla_fwd", "d576v512", 1024).empty());
  auto all = store.list_winners();
  REQUIRE(all.size() == 3);
  CHECK(all[0].key.topk == 512);  // gpu-a 512, gpu-a 2048, gpu-b 2048
  CHECK(all[1].key == WinnerKey{"gpu-a", "sparse_mla_fwd", "d576v512", 2048});
  CHECK(all[2].key.device == "gpu-b");
}

TEST_CASE("empty_created_at_is_filled_with_utc_now") {
  TempDir dir;
  CacheStore store = CacheStore::open(dir / "c.sqlite", OpenMode::read_write);
  WinnerRecord w = sample_winner("gpu", 64);
  w.created_at.clear();
  std::string before = utc_timestamp_now();
  store.put_winner(w);
  std::string stored = store.find_winner(w.key)->created_at;
  CHECK(std::regex_match(stored, std::regex(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z)")));
  CHECK(stored >= before);
  CHECK(stored <= utc_timestamp_now());
}

TEST_CASE("binary_round_trips_bytes_exactly_including_empty_and_all_byte_values") {
  TempDir dir;
  CacheStore store = CacheStore::open(dir / "c.sqlite", OpenMode::read_write);
  BinaryRecord every_byte = sample_binary("k-all", "v", 0);
  for (int i = 0; i < 256; ++i) every_byte.binary.push_back(static_cast<std::uint8_t>(i));
  every_byte.binary.push_back(0);
  BinaryRecord empty = sample_binary("k-empty", "v", 0);
  BinaryRecord large = sample_binary("k-large", "v", 3 << 20);
  for (const auto& b : {every_byte, empty, large}) store.put_binary(b);
  CHECK(store.find_binary("k-all") == every_byte);
  CHECK(store.find_binary("k-empty") == empty);
  CHECK(store.find_binary("k-large") == large);
  CHECK_FALSE(store.find_binary("k-missing").has_value());
  CHECK(store.warnings().empty());
}

TEST_CASE("put_binary_with_an_existing_key_keeps_the_first_bytes") {
  TempDir dir;
  CacheStore store = CacheStore::open(dir / "c.sqlite", OpenMode::read_write);
  BinaryRecord first = sample_binary("key", "v", 100);
  BinaryRecord other = sample_binary("key", "v", 200);
  store.put_binary(first);
  store.put_binary(other);
  CHECK(store.find_binary("key") == first);
}

TEST_CASE("corrupt_binary_is_never_returned_warns_and_is_repaired_by_put") {
  TempDir dir;
  auto path = dir / "c.sqlite";
  BinaryRecord good = sample_binary("key", "nsa_fwd_v1", 500);
  CacheStore::open(path, OpenMode::read_write).put_binary(good);
  SUBCASE("bytes changed, size kept") {
    raw_sql(path, "UPDATE binaries SET binary = zeroblob(500) WHERE key = 'key'");
  }
  SUBCASE("bytes cut short") {
    raw_sql(path, "UPDATE binaries SET binary = substr(binary, 1, 10) WHERE key = 'key'");
  }
  CacheStore store = CacheStore::open(path, OpenMode::read_write);
  CHECK_FALSE(store.find_binary("key").has_value());
  REQUIRE(store.warnings().size() == 1);
  CHECK(store.warnings()[0].find("binary key (variant nsa_fwd_v1, arch sm_90a) is corrupt") !=
        std::string::npos);
  store.put_binary(good);
  CHECK(store.find_binary("key") == good);
}

TEST_CASE("timings_round_trip_in_insert_order_with_every_status") {
  TempDir dir;
  CacheStore store = CacheStore::open(dir / "c.sqlite", OpenMode::read_write);
  auto timing = [](std::string variant, TimingStatus status, std::optional<double> ms, std::string detail) {
    return TimingRecord{.device = "gpu",
                        .family = "sparse_mla_fwd",
                        .geometry = "d576v512",
                        .topk = 2048,
                        .variant = std::move(variant),
                        .h_q = 64,
                        .s_q = 4096,
                        .s_kv = 262144,
                        .status = status,
                        .median_ms = ms,
                        .detail = std::move(detail),
                        .run_id = "run-1",
                        .created_at = "2025-03-01T10:00:00Z"};
  };
  std::vector<TimingRecord> rows = {
      timing("v_ok", TimingStatus::ok, 1.953125, ""),
      timing("v_wrong", TimingStatus::wrong, std::nullopt, "max abs error 0.5 at out[3,1,7]"),
      timing("v_cf", TimingStatus::compile_failed, std::nullopt, "error: too many resources requested"),
      timing("v_lf", TimingStatus::launch_failed, std::nullopt, "CUDA_ERROR_INVALID_VALUE"),
  };
  TimingRecord other_topk = timing("v_ok", TimingStatus::ok, 0.5, "");
  other_topk.topk = 512;
  store.add_timings(rows);
  store.add_timings(std::span(&other_topk, 1));
  CHECK(store.timings_for("gpu", "sparse_mla_fwd", 2048) == rows);
  CHECK(store.timings_for("gpu", "sparse_mla_fwd", 512) == std::vector{other_topk});
  CHECK(store.timings_for("other", "sparse_mla_fwd", 2048).empty());
  CHECK(timing_status_from_string("compile_failed") == TimingStatus::compile_failed);
  CHECK_THROWS_AS((void)timing_status_from_string("fast"), Error);
}

TEST_CASE("record_tune_result_stores_winner_binaries_and_timings_together") {
  TempDir dir;
  CacheStore store = CacheStore::open(dir / "c.sqlite", OpenMode::read_write);
  WinnerRecord w = sample_winner("gpu", 2048);
  std::vector<BinaryRecord> bins = {sample_binary("k1", "nsa_fwd_v1"), sample_binary("k2", "nsa_fwd_v1_big")};
  TimingRecord t{.device = "gpu",
                 .family = "sparse_mla_fwd",
                 .geometry = "d576v512",
                 .topk = 2048,
                 .variant = "nsa_fwd_v1",
                 .h_q = 16,
                 .s_q = 4096,
                 .s_kv = 32768,
                 .median_ms = 1.0,
                 .run_id = "r",
                 .created_at = "2025-03-01T10:00:00Z"};
  store.record_tune_result(w, bins, std::span(&t, 1));
  CHECK(store.find_winner(w.key) == w);
  CHECK(store.find_binary("k1") == bins[0]);
  CHECK(store.find_binary("k2") == bins[1]);
  CHECK(store.timings_for("gpu", "sparse_mla_fwd", 2048) == std::vector{t});
}

TEST_CASE("clear_without_filter_empties_and_with_device_keeps_other_devices_rows") {
  TempDir dir;
  CacheStore store = CacheStore::open(dir / "c.sqlite", OpenMode::read_write);
  TimingRecord ta{.device = "gpu-a",
                  .family = "sparse_mla_fwd",
                  .geometry = "d576v512",
                  .topk = 2048,
                  .variant = "only_a",
                  .h_q = 16,
                  .s_q = 1,
                  .s_kv = 1,
                  .median_ms = 1.0};
  TimingRecord tb = ta;
  tb.device = "gpu-b";
  store.record_tune_result(sample_winner("gpu-a", 2048, "only_a"), std::vector{sample_binary("ka", "only_a")},
                           std::span(&ta, 1));
  store.record_tune_result(sample_winner("gpu-b", 2048, "only_b"), std::vector{sample_binary("kb", "only_b")},
                           std::span(&tb, 1));
  store.put_winner(sample_winner("gpu-a", 512, "shared"));
  store.put_winner(sample_winner("gpu-b", 512, "shared"));
  store.put_binary(sample_binary("ks", "shared"));
  store.put_binary(sample_binary("k-unreferenced", "compiled_for_a_default"));

  SUBCASE("device filter") {
    ClearReport r = store.clear(std::string("gpu-a"));
    CHECK(r.winners == 2);
    CHECK(r.timings == 1);
    CHECK(r.binaries == 1);  // ka; "shared" is still used by gpu-b, the unreferenced one by nobody's winner
    CHECK_FALSE(store.find_binary("ka").has_value());
    CHECK(store.find_binary("kb").has_value());
    CHECK(store.find_binary("ks").has_value());
    CHECK(store.find_binary("k-unreferenced").has_value());
    CHECK(store.list_winners().size() == 2);
    CHECK(store.timings_for("gpu-a", "sparse_mla_fwd", 2048).empty());
    CHECK(store.timings_for("gpu-b", "sparse_mla_fwd", 2048).size() == 1);
  }
  SUBCASE("everything") {
    ClearReport r = store.clear();
    CHECK(r.winners == 4);
    CHECK(r.binaries == 4);
    CHECK(r.timings == 2);
    CHECK(store.list_winners().empty());
    CHECK_FALSE(store.find_binary("k-unreferenced").has_value());
  }
}

TEST_CASE("read_only_mode_reads_a_chmod_0444_file_and_every_write_throws") {
  TempDir dir;
  auto path = dir / "shipped.sqlite";
  WinnerRecord w = sample_winner("gpu", 2048);
  CacheStore::open(path, OpenMode::read_write).put_winner(w);
  std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::group_read |
                                         std::filesystem::perms::others_read);
  auto before = file_bytes(path);
  {
    CacheStore store = CacheStore::open(path, OpenMode::read_only);
    CHECK(store.read_only());
    CHECK(store.find_winner(w.key) == w);
    CHECK(store.check() == "ok");
    require_cache_error([&] { store.put_winner(w); }, {"read-only", path.string()});
    require_cache_error([&] { store.put_binary(sample_binary("k")); }, {"read-only"});
    require_cache_error([&] { store.add_timings({}); }, {"read-only"});
    require_cache_error([&] { store.clear(); }, {"read-only"});
    require_cache_error([&] { (void)store.import_from(dir / "x.sqlite"); }, {"read-only"});
  }
  CHECK(file_bytes(path) == before);
  if (geteuid() != 0) {
    // root may write a 0444 file, so only an ordinary user can see the read-write refusal.
    require_cache_error([&] { (void)CacheStore::open(path, OpenMode::read_write); }, {"not writable"});
  }
}

TEST_CASE("read_only_open_of_a_missing_file_is_a_clear_error_and_creates_nothing") {
  TempDir dir;
  require_cache_error([&] { (void)CacheStore::open(dir / "absent.sqlite", OpenMode::read_only); },
                      {"absent.sqlite", "does not exist"});
  CHECK_FALSE(std::filesystem::exists(dir / "absent.sqlite"));
}

TEST_CASE("read_write_open_creates_missing_parent_directories") {
  TempDir dir;
  auto path = dir / "a/b/c/cache.sqlite";
  CacheStore store = CacheStore::open(path, OpenMode::read_write);
  CHECK(std::filesystem::is_regular_file(path));
  CHECK(store.path() == path);
  CHECK_FALSE(store.read_only());
}

namespace {

// Opens `path` read-only and reads `key`; 0 when found. Runs as an unprivileged user when we
// are root (root ignores permissions, so the read-only directory would not be read-only).
int read_winner_without_write_permission(const std::filesystem::path& path, const WinnerKey& key) {
  auto attempt = [&] {
    try {
      CacheStore store = CacheStore::open(path, OpenMode::read_only);
      return store.find_winner(key).has_value() && store.check() == "ok" ? 0 : 1;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s\n", e.what());
      return 2;
    }
  };
  if (geteuid() != 0) return attempt();
  pid_t pid = fork();
  if (pid == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(3);
    _exit(attempt());
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 4;
}

}  // namespace

TEST_CASE("read_only_mode_reads_a_wal_cache_in_a_read_only_directory") {
  TempDir dir;
  auto shelf = dir / "shelf";
  auto path = shelf / "cache.sqlite";
  WinnerRecord w = sample_winner("gpu", 2048);
  CacheStore::open(path, OpenMode::read_write).put_winner(w);  // a WAL-mode file, closed: no -shm left
  REQUIRE(file_bytes(path).at(18) == 2);                       // header: WAL mode
  REQUIRE_FALSE(std::filesystem::exists(path.string() + "-shm"));
  namespace fs = std::filesystem;
  auto r_x = fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read | fs::perms::group_exec |
             fs::perms::others_read | fs::perms::others_exec;
  fs::permissions(dir.path(), r_x);
  fs::permissions(shelf, r_x);
  fs::permissions(path, fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
  auto before = file_bytes(path);
  CHECK(read_winner_without_write_permission(path, w.key) == 0);
  CHECK(file_bytes(path) == before);
  CHECK_FALSE(fs::exists(path.string() + "-shm"));
  fs::permissions(shelf, fs::perms::owner_all);
}
