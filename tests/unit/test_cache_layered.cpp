// A writable cache over a read-only shipped one: writable first, writes never reach the shipped file.
#include <doctest/doctest.h>

#include "cache/layered_cache.hpp"
#include "tests/unit/cache_test_support.hpp"

using namespace nsajit;
using namespace nsajit::test;

namespace {

// A shipped file (made by export, as in a deployment) with winners for topk 512 and 2048.
std::filesystem::path make_shipped(const TempDir& dir) {
  auto tuned = dir / "tuned.sqlite";
  {
    CacheStore store = CacheStore::open(tuned, OpenMode::read_write);
    store.put_winner(sample_winner("gpu", 512, "shipped_512"));
    store.put_winner(sample_winner("gpu", 2048, "shipped_2048"));
    store.put_binary(sample_binary("k512", "shipped_512"));
    store.put_binary(sample_binary("k2048", "shipped_2048"));
    store.export_to(dir / "deploy.sqlite");
  }
  return dir / "deploy.sqlite";
}

WinnerKey key(int topk) {
  return {"gpu", "sparse_mla_fwd", "d576v512", topk};
}

}  // namespace

TEST_CASE("layered_cache_reads_the_writable_cache_first_then_the_shipped_one") {
  TempDir dir;
  auto shipped = make_shipped(dir);
  LayeredCache cache(dir / "home/cache.sqlite", shipped);
  REQUIRE(cache.writable() != nullptr);
  REQUIRE(cache.shipped() != nullptr);
  CHECK(cache.warnings().empty());

  // Only shipped: found there.
  CHECK(cache.find_winner(key(512))->default_variant == "shipped_512");
  CHECK(cache.find_binary("k512") == sample_binary("k512", "shipped_512"));
  // A local tune of the same key shadows the shipped winner.
  cache.put_winner(sample_winner("gpu", 2048, "local_2048"));
  CHECK(cache.find_winner(key(2048))->default_variant == "local_2048");
  // A local binary with a key the shipped file also has: the local bytes.
  BinaryRecord local = sample_binary("k2048", "shipped_2048", 77);
  cache.put_binary(local);
  CHECK(cache.find_binary("k2048") == local);
  // Neither: a miss.
  CHECK_FALSE(cache.find_winner(key(1024)).has_value());
  CHECK_FALSE(cache.find_binary("nope").has_value());

  auto rows = cache.winners_for("sparse_mla_fwd", "d576v512", 2048);
  REQUIRE(rows.size() == 1);  // the shipped row with the same key is shadowed
  CHECK(rows[0].default_variant == "local_2048");
  cache.put_winner(sample_winner("other-gpu", 512, "local_other"));
  rows = cache.winners_for("sparse_mla_fwd", "d576v512", 512);
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].key.device == "other-gpu");  // writable rows first
  CHECK(rows[1].default_variant == "shipped_512");
}

TEST_CASE("layered_cache_writes_go_to_the_writable_cache_only") {
  TempDir dir;
  auto shipped = make_shipped(dir);
  auto before = file_bytes(shipped);
  {
    LayeredCache cache(dir / "home/cache.sqlite", shipped);
    WinnerRecord w = sample_winner("gpu", 4096, "new");
    BinaryRecord b = sample_binary("k-new", "new");
    TimingRecord t{.device = "gpu",
                   .family = "sparse_mla_fwd",
                   .geometry = "d576v512",
                   .topk = 4096,
                   .variant = "new",
                   .h_q = 16,
                   .s_q = 1,
                   .s_kv = 1,
                   .median_ms = 1.0};
    cache.record_tune_result(w, std::span(&b, 1), std::span(&t, 1));
    cache.put_binary(sample_binary("k-more", "new"));
    cache.add_timings(std::span(&t, 1));
    CHECK(cache.writable()->find_winner(w.key) == w);
    CHECK_FALSE(cache.shipped()->find_winner(w.key).has_value());
    CHECK(cache.writable()->timings_for("gpu", "sparse_mla_fwd", 4096).size() == 2);
  }
  CHECK(file_bytes(shipped) == before);
}

TEST_CASE("layered_cache_without_a_usable_writable_cache_serves_the_shipped_one_and_warns") {
  TempDir dir;
  auto shipped = make_shipped(dir);
  write_bytes(dir / "a-file", {'x'});
  auto impossible = dir / "a-file/nsa-jit/cache.sqlite";  // its "parent directory" is a file
  LayeredCache cache(impossible, shipped);
  CHECK(cache.writable() == nullptr);
  REQUIRE(cache.warnings().size() == 1);
  CHECK(cache.warnings()[0].find(impossible.string()) != std::string::npos);
  CHECK(cache.find_winner(key(512))->default_variant == "shipped_512");
  CHECK(cache.find_binary("k512").has_value());
  require_cache_error([&] { cache.put_winner(sample_winner("gpu", 64)); }, {"not used"});
}

TEST_CASE("layered_cache_with_a_damaged_shipped_file_keeps_the_writable_one_and_warns") {
  TempDir dir;
  auto shipped = dir / "deploy.sqlite";
  write_bytes(shipped, std::vector<char>(4096, 'z'));
  LayeredCache cache(dir / "home/cache.sqlite", shipped);
  CHECK(cache.shipped() == nullptr);
  REQUIRE(cache.writable() != nullptr);
  REQUIRE(cache.warnings().size() == 1);
  CHECK(cache.warnings()[0].find("not a SQLite database") != std::string::npos);
  cache.put_winner(sample_winner("gpu", 64));
  CHECK(cache.find_winner(key(64)).has_value());
  CHECK_FALSE(cache.find_winner(key(512)).has_value());
}
