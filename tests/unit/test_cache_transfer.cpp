// export_to writes a self-contained file; import_from merges one with a stated policy.
#include <doctest/doctest.h>

#include "tests/unit/cache_test_support.hpp"

using namespace nsajit;
using namespace nsajit::test;

namespace {

// Two devices; gpu-a's winners use v_a (default) and v_a_big (in the rule), gpu-b's v_b.
// Binaries: those three, one for another arch, one nobody references.
CacheStore make_tuned_cache(const std::filesystem::path& path) {
  CacheStore store = CacheStore::open(path, OpenMode::read_write);
  store.put_winner(sample_winner("gpu-a", 512, "v_a"));
  store.put_winner(sample_winner("gpu-a", 2048, "v_a"));
  store.put_winner(sample_winner("gpu-b", 2048, "v_b"));
  for (const auto& b : {sample_binary("ka", "v_a"), sample_binary("ka-big", "v_a_big", 1000),
                        sample_binary("kb", "v_b", 50), sample_binary("ka-gfx", "v_a", 70, "gfx942"),
                        sample_binary("k-none", "v_unused", 10), sample_binary("k-prefix", "v_a_b", 20)})
    store.put_binary(b);
  TimingRecord t{.device = "gpu-a",
                 .family = "sparse_mla_fwd",
                 .geometry = "d576v512",
                 .topk = 512,
                 .variant = "v_a",
                 .h_q = 16,
                 .s_q = 1,
                 .s_kv = 1,
                 .median_ms = 1.0};
  store.add_timings(std::span(&t, 1));
  return store;
}

std::vector<std::string> binary_keys(const std::filesystem::path& path) {
  CacheStore store = CacheStore::open(path, OpenMode::read_only);
  std::vector<std::string> keys;
  for (const char* k : {"ka", "ka-big", "kb", "ka-gfx", "k-none", "k-prefix"})
    if (store.find_binary(k)) keys.emplace_back(k);
  return keys;
}

}  // namespace

TEST_CASE("export_then_import_into_an_empty_cache_gives_identical_winners_and_binaries") {
  TempDir dir;
  CacheStore source = make_tuned_cache(dir / "tuned.sqlite");
  ExportReport exported = source.export_to(dir / "deploy.sqlite");
  CHECK(exported.winners == 3);
  CHECK(exported.binaries == 3);  // ka, ka-big, kb
  CHECK(exported.path == dir / "deploy.sqlite");

  CacheStore fresh = CacheStore::open(dir / "fresh.sqlite", OpenMode::read_write);
  ImportReport imported = fresh.import_from(dir / "deploy.sqlite");
  CHECK(imported.winners_added == 3);
  CHECK(imported.binaries_added == 3);
  CHECK(imported.winners_replaced + imported.winners_kept + imported.binaries_present +
            imported.binaries_corrupt ==
        0);
  CHECK(fresh.list_winners() == source.list_winners());
  for (const char* k : {"ka", "ka-big", "kb"}) CHECK(fresh.find_binary(k) == source.find_binary(k));
  CHECK(fresh.timings_for("gpu-a", "sparse_mla_fwd", 512).empty());  // exports carry no timings
}

TEST_CASE("export_carries_exactly_the_binaries_its_winners_reference") {
  TempDir dir;
  CacheStore source = make_tuned_cache(dir / "tuned.sqlite");
  SUBCASE("all devices: matching arch, default variant or a quoted name in the rule") {
    source.export_to(dir / "all.sqlite");
    // not ka-gfx (other arch), k-none (unreferenced), k-prefix (v_a_b only shares a prefix)
    CHECK(binary_keys(dir / "all.sqlite") == std::vector<std::string>{"ka", "ka-big", "kb"});
  }
  SUBCASE("one device") {
    ExportReport r = source.export_to(dir / "b.sqlite", std::string("gpu-b"));
    CHECK(r.winners == 1);
    CHECK(r.binaries == 1);
    CHECK(binary_keys(dir / "b.sqlite") == std::vector<std::string>{"kb"});
    CHECK(CacheStore::open(dir / "b.sqlite", OpenMode::read_only).list_winners() ==
          std::vector{*source.find_winner({"gpu-b", "sparse_mla_fwd", "d576v512", 2048})});
  }
}

TEST_CASE("exported_file_is_one_self_contained_file_that_opens_read_only") {
  TempDir dir;
  CacheStore source = make_tuned_cache(dir / "tuned.sqlite");
  auto out = dir / "deploy.sqlite";
  write_bytes(out, {'o', 'l', 'd'});  // an existing target is replaced atomically
  source.export_to(out);
  for (const char* leftover : {"-wal", "-shm", "-journal"})
    CHECK_FALSE(std::filesystem::exists(out.string() + leftover));
  for (const auto& entry : std::filesystem::directory_iterator(dir.path()))
    CHECK_MESSAGE(entry.path().filename().string().find(".tmp-") == std::string::npos, entry.path());
  CHECK(raw_query(out, "PRAGMA journal_mode") == "delete");
  CacheStore shipped = CacheStore::open(out, OpenMode::read_only);
  CHECK(shipped.check() == "ok");
  CHECK(shipped.list_winners().size() == 3);
}

TEST_CASE("export_to_the_cache_itself_is_refused") {
  TempDir dir;
  CacheStore source = make_tuned_cache(dir / "tuned.sqlite");
  require_cache_error([&] { source.export_to(dir / "tuned.sqlite"); }, {"itself"});
  CHECK(source.list_winners().size() == 3);
}

TEST_CASE("import_keeps_the_newer_winner_per_key_and_ignores_known_binaries") {
  TempDir dir;
  auto incoming_path = dir / "incoming.sqlite";
  {
    CacheStore incoming = CacheStore::open(incoming_path, OpenMode::read_write);
    WinnerRecord newer = sample_winner("gpu", 1, "from_import");
    newer.created_at = "2025-06-01T00:00:00Z";
    WinnerRecord older = sample_winner("gpu", 2, "from_import");
    older.created_at = "2025-01-01T00:00:00Z";
    WinnerRecord same_time = sample_winner("gpu", 3, "from_import");
    same_time.created_at = "2025-03-01T00:00:00Z";
    WinnerRecord brand_new = sample_winner("gpu", 4, "from_import");
    for (const auto& w : {newer, older, same_time, brand_new}) incoming.put_winner(w);
    incoming.put_binary(sample_binary("shared-key", "from_import", 10));
    incoming.put_binary(sample_binary("new-key", "from_import", 20));
  }
  CacheStore local = CacheStore::open(dir / "local.sqlite", OpenMode::read_write);
  for (int topk : {1, 2, 3}) {
    WinnerRecord mine = sample_winner("gpu", topk, "local");
    mine.created_at = "2025-03-01T00:00:00Z";
    local.put_winner(mine);
  }
  BinaryRecord local_bytes = sample_binary("shared-key", "local", 99);
  local.put_binary(local_bytes);

  ImportReport r = local.import_from(incoming_path);
  CHECK(r.winners_added == 1);     // topk 4
  CHECK(r.winners_replaced == 1);  // topk 1: imported row is newer
  CHECK(r.winners_kept == 2);      // topk 2 older, topk 3 a tie: the existing row stays
  CHECK(r.binaries_added == 1);
  CHECK(r.binaries_present == 1);
  auto variant_of = [&](int topk) {
    return local.find_winner({"gpu", "sparse_mla_fwd", "d576v512", topk})->default_variant;
  };
  CHECK(variant_of(1) == "from_import");
  CHECK(variant_of(2) == "local");
  CHECK(variant_of(3) == "local");
  CHECK(variant_of(4) == "from_import");
  CHECK(local.find_binary("shared-key") == local_bytes);
  CHECK(local.find_binary("new-key").has_value());
}

TEST_CASE("import_skips_binaries_that_fail_their_checksum") {
  TempDir dir;
  auto incoming_path = dir / "incoming.sqlite";
  {
    CacheStore incoming = CacheStore::open(incoming_path, OpenMode::read_write);
    incoming.put_binary(sample_binary("good", "v", 10));
    incoming.put_binary(sample_binary("bad", "v", 10));
  }
  raw_sql(incoming_path, "UPDATE binaries SET binary = zeroblob(10) WHERE key = 'bad'");
  CacheStore local = CacheStore::open(dir / "local.sqlite", OpenMode::read_write);
  ImportReport r = local.import_from(incoming_path);
  CHECK(r.binaries_added == 1);
  CHECK(r.binaries_corrupt == 1);
  CHECK(local.find_binary("good").has_value());
  CHECK_FALSE(local.find_binary("bad").has_value());
  CHECK(local.warnings().size() == 1);
}

TEST_CASE("import_of_a_bad_file_is_refused_before_anything_is_written") {
  TempDir dir;
  CacheStore local = make_tuned_cache(dir / "local.sqlite");
  auto winners_before = local.list_winners();
  auto bad = dir / "bad.sqlite";
  SUBCASE("garbage") {
    write_bytes(bad, std::vector<char>(5000, 'x'));
    require_cache_error([&] { (void)local.import_from(bad); }, {bad.string(), "not a SQLite database"});
  }
  SUBCASE("foreign database") {
    raw_sql(bad, "CREATE TABLE x (a)");
    require_cache_error([&] { (void)local.import_from(bad); }, {bad.string(), "not an nsa-jit cache"});
  }
  SUBCASE("missing file") {
    require_cache_error([&] { (void)local.import_from(bad); }, {bad.string(), "does not exist"});
  }
  SUBCASE("the cache itself") {
    require_cache_error([&] { (void)local.import_from(dir / "local.sqlite"); }, {"itself"});
  }
  CHECK(local.list_winners() == winners_before);
}
