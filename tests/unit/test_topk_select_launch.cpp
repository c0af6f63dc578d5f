// topk_select launch planning: argument validation, grid, shared memory and workspace.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "generator/kernel_family.hpp"
#include "runtime/error.hpp"
#include "runtime/topk_select_launch.hpp"
#include "tests/unit/topk_planned_device.hpp"

using namespace nsajit;

namespace {

DeviceInfo h100() {
  return test::planned_h100();
}

Variant variant(int s) {
  return variant_from_name("nsa_topk_sm90a_t512_i8_r11_s" + std::to_string(s));
}

// Fake, aligned device addresses: planning never dereferences them.
alignas(16) float g_scores[4];
alignas(16) std::int32_t g_out[4];
alignas(16) std::int32_t g_lengths[4];
alignas(16) unsigned char g_workspace[16];

TopkSelectProblem problem(int batch, int length, int k) {
  return contiguous_topk_problem(g_scores, batch, length, g_out, k);
}

std::string rejection(const TopkSelectProblem& p) {
  try {
    validate_topk_select_problem(p);
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::invalid_argument);
    return e.reason();
  }
  return "accepted";
}

}  // namespace

TEST_CASE("topk_rejects_bad_arguments_naming_the_argument") {
  CHECK(rejection(problem(4, 1000, 16)) == "accepted");
  CHECK(rejection(problem(4, 1000, 0)).find("k = 0") != std::string::npos);
  CHECK(rejection(problem(4, 1000, 4097)).find("k = 4097") != std::string::npos);
  CHECK(rejection(problem(4, 1000, 4096)) == "accepted");
  CHECK(rejection(problem(0, 1000, 16)).find("batch") != std::string::npos);
  CHECK(rejection(problem(4, 0, 16)).find("row length L = 0") != std::string::npos);
  CHECK(rejection(problem(4, 262145, 16)).find("262144") != std::string::npos);
  CHECK(rejection(problem(4, 262144, 16)) == "accepted");

  TopkSelectProblem p = problem(4, 1000, 16);
  p.scores = nullptr;
  CHECK(rejection(p).find("scores is a null pointer") != std::string::npos);
  p = problem(4, 1000, 16);
  p.indices = nullptr;
  CHECK(rejection(p).find("indices") != std::string::npos);
  p = problem(4, 1000, 16);
  p.score_row_stride = 999;
  CHECK(rejection(p).find("scores row stride 999") != std::string::npos);
  p = problem(4, 1000, 16);
  p.out_row_stride = 15;
  CHECK(rejection(p).find("indices row stride 15") != std::string::npos);
  p = problem(4, 1000, 16);
  p.scores = reinterpret_cast<const float*>(reinterpret_cast<const char*>(g_scores) + 2);
  CHECK(rejection(p).find("scores is not 4-byte aligned") != std::string::npos);
  p = problem(4, 1000, 16);
  p.lengths = reinterpret_cast<const std::int32_t*>(reinterpret_cast<const char*>(g_lengths) + 1);
  CHECK(rejection(p).find("lengths is not 4-byte aligned") != std::string::npos);
  p = problem(4, 1000, 16);
  p.indices = reinterpret_cast<std::int32_t*>(reinterpret_cast<char*>(g_out) + 2);
  CHECK(rejection(p).find("indices is not 4-byte aligned") != std::string::npos);
}

TEST_CASE("topk_plan_is_one_launch_for_the_whole_batch") {
  const TopkSelectLaunch l = plan_topk_select(variant(1), h100(), problem(64, 131072, 2048), nullptr, 0);
  CHECK(l.kernel_name == "nsa_topk_sm90a_t512_i8_r11_s1");
  CHECK(l.grid.x == 64);
  CHECK(l.block.x == 512);
  CHECK(l.params.splits == 1);
  CHECK(l.workspace_bytes == 0);
  CHECK(l.params.k == 2048);
  CHECK(l.params.sel_capacity == 2048);
  CHECK(l.dynamic_shared_bytes == topk_select_dynamic_shared_bytes(variant(1), h100()));
  // The candidate buffer takes what the histogram and the selected set leave.
  CHECK(l.dynamic_shared_bytes == 8u * (2048u + static_cast<unsigned>(l.params.cand_capacity)) + 4u * 2048u);
  CHECK(l.params.cand_capacity >= 1024);
}

TEST_CASE("topk_plan_splits_long_rows_when_the_batch_leaves_sms_idle") {
  const DeviceInfo dev = h100();
  const std::size_t ws_bytes = topk_select_workspace_bytes(variant(16), dev);
  REQUIRE(ws_bytes > 0);
  std::vector<unsigned long long> ws(ws_bytes / 8 + 1);
  auto plan = [&](int batch, int length, int k) {
    return plan_topk_select(variant(16), dev, problem(batch, length, k), ws.data(), ws_bytes);
  };
  CHECK(plan(1, 262144, 2048).params.splits == 16);  // capped by s
  CHECK(plan(16, 131072, 2048).params.splits == 8);  // 132 SMs / 16 rows
  CHECK(plan(64, 131072, 2048).params.splits == 2);
  CHECK(plan(128, 131072, 2048).params.splits == 1);  // the batch fills the SMs
  CHECK(plan(1, 8192, 2048).params.splits == 1);      // slices would hold < 4k
  CHECK(plan(1, 32768, 2048).params.splits == 4);
  const TopkSelectLaunch l = plan(16, 131072, 2048);
  CHECK(l.grid.x == 16 * 8);
  CHECK(l.params.slice == 131072 / 8);
  CHECK(l.workspace_bytes <= ws_bytes);
  CHECK(reinterpret_cast<void*>(l.params.row_counters) == ws.data());
  CHECK(l.params.slice_workspace != nullptr);
}

TEST_CASE("topk_workspace_bound_covers_every_valid_problem") {
  const DeviceInfo dev = h100();
  const std::size_t bound = topk_select_workspace_bytes(variant(16), dev);
  std::vector<unsigned long long> ws(bound / 8 + 1);
  for (int batch : {1, 2, 3, 7, 16, 33, 66, 131, 132, 256})
    for (int length : {1, 4096, 16384, 100000, 262144})
      for (int k : {1, 64, 2048, 4096}) {
        const TopkSelectLaunch l =
            plan_topk_select(variant(16), dev, problem(batch, length, k), ws.data(), bound);
        CHECK(l.workspace_bytes <= bound);
        CHECK(static_cast<long long>(l.params.slice) * l.params.splits >= length);
        CHECK(l.params.splits * batch <= std::max(batch, dev.multiprocessors));
      }
  CHECK(topk_select_workspace_bytes(variant(1), dev) == 0);
}

TEST_CASE("topk_plan_refuses_a_missing_or_small_workspace") {
  const DeviceInfo dev = h100();
  CHECK_THROWS_AS((void)plan_topk_select(variant(16), dev, problem(1, 262144, 2048), nullptr, 0), Error);
  CHECK_THROWS_AS((void)plan_topk_select(variant(16), dev, problem(1, 262144, 2048), g_workspace, 16), Error);
  // Large enough but not 16-byte aligned: refused, with the reason.
  const std::size_t bound = topk_select_workspace_bytes(variant(16), dev);
  std::vector<unsigned char> big(bound + 16);
  unsigned char* odd = big.data() + (reinterpret_cast<std::uintptr_t>(big.data()) % 16 == 0 ? 8 : 0);
  CHECK_THROWS_WITH_AS((void)plan_topk_select(variant(16), dev, problem(1, 262144, 2048), odd, bound),
                       doctest::Contains("16-byte aligned"), Error);
}

TEST_CASE("topk_plan_rejects_a_variant_of_another_family") {
  const Variant fwd = variant_from_name("nsa_fwd_sm90a_d576_bh16_bt64_w4_st2");
  CHECK_THROWS_AS((void)plan_topk_select(fwd, h100(), problem(1, 1000, 16), nullptr, 0), Error);
}

namespace {
Variant stream_variant(int t, int s) {
  return variant_from_name("nsa_topk_sm90a_t" + std::to_string(t) + "_i4_r11_s" + std::to_string(s) + "_a1");
}
}  // namespace

TEST_CASE("topk_stream_plan_gives_the_buffer_all_shared_memory_but_the_histogram") {
  const Variant v = stream_variant(1024, 1);
  const TopkSelectLaunch l = plan_topk_select(v, h100(), problem(128, 131072, 2048), nullptr, 0);
  CHECK(l.kernel_name == "nsa_topk_sm90a_t1024_i4_r11_s1_a1");
  CHECK(l.grid.x == 128);
  CHECK(l.params.splits == 1);
  CHECK(l.dynamic_shared_bytes == 8u * static_cast<unsigned>(l.params.buffer_capacity) + 4u * 2048u);
  // One round of loads (two float4 per thread at an even i on NVIDIA) on top of k = 4096 must
  // always fit.
  CHECK(l.params.buffer_capacity >= 4096 + 8 * 1024);
  CHECK(topk_select_min_shared_bytes(v) == 8u * (4096u + 8u * 1024u) + 4u * 2048u);
}

TEST_CASE("topk_stream_split_workspace_holds_counters_row_histograms_and_slices") {
  const DeviceInfo dev = h100();
  const Variant v = stream_variant(512, 16);
  const std::size_t bound = topk_select_workspace_bytes(v, dev);
  // The radix sibling needs no row histograms: the stream bound is larger by 132 rows x 2048 bins.
  const std::size_t radix_bound = topk_select_workspace_bytes(variant(16), dev);
  CHECK(bound == radix_bound + 132u * 2048u * 4u);
  std::vector<unsigned long long> ws(bound / 8 + 1);
  const TopkSelectLaunch l = plan_topk_select(v, dev, problem(16, 131072, 2048), ws.data(), bound);
  CHECK(l.params.splits == 8);
  CHECK(l.params.slice % 4 == 0);
  auto* base = reinterpret_cast<unsigned char*>(ws.data());
  CHECK(reinterpret_cast<unsigned char*>(l.params.row_counters) == base);
  CHECK(reinterpret_cast<unsigned char*>(l.params.row_histograms) ==
        base + 768);  // 132 counters, 256-aligned
  CHECK(reinterpret_cast<unsigned char*>(l.params.slice_workspace) == base + 768 + 132 * 2048 * 4);
  CHECK(l.workspace_bytes == 768u + 132u * 2048u * 4u + 8u * 16u * 8u * 2048u);
  for (int batch : {1, 3, 16, 66, 132, 256})
    for (int length : {1, 4097, 100001, 262144})
      for (int k : {1, 2048, 4096}) {
        const TopkSelectLaunch m = plan_topk_select(v, dev, problem(batch, length, k), ws.data(), bound);
        CHECK(m.workspace_bytes <= bound);
        CHECK(static_cast<long long>(m.params.slice) * m.params.splits >= length);
      }
}

TEST_CASE("topk_stream_variant_fits_cdna_lds_only_below_1024_threads") {
  // 64 KB of LDS: k 4096 + 4t buffer entries + 8 KB histogram fits for t 512, not t 1024.
  CHECK(topk_select_min_shared_bytes(variant_from_name("nsa_topk_gfx942_t512_i4_r11_s16_a1")) <=
        64u * 1024u - 256u);
  CHECK(topk_select_min_shared_bytes(variant_from_name("nsa_topk_gfx942_t1024_i4_r11_s16_a1")) > 64u * 1024u);
}
