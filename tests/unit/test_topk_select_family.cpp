// The topk_select variant space, its pruning and its renderer.
#include <doctest/doctest.h>

#include <set>
#include <vector>

#include "generator/kernel_family.hpp"
#include "generator/template_library.hpp"
#include "runtime/backend.hpp"
#include "runtime/error.hpp"
#include "runtime/topk_select_launch.hpp"
#include "tests/unit/topk_planned_device.hpp"

using namespace nsajit;

namespace {
const KernelFamily& family() {
  return kernel_family(Family::topk_select);
}
}  // namespace

TEST_CASE("topk_space_covers_every_knob_value_and_prunes_with_reasons") {
  for (const auto& arch : known_targets()) {
    const Target target = target_from_arch(arch);
    const VariantSpace space = family().space(target, Geometry{0, 0});
    // radix: t x i x r x s; stream (a 1): t x i x s; threshold (a 2): t x i; cluster (a 3,
    // targets with clusters): t x i; filter (a 4): 2 t x 3 i.
    CHECK(space.kept.size() + space.pruned.size() ==
          3 * 3 * 2 * 2 + 3 * 3 * 2 + 3 * 3 + (target.has_clusters ? 3 * 3 : 0) + 2 * 3);
    REQUIRE_FALSE(space.kept.empty());
    for (const auto& p : space.pruned) CHECK_MESSAGE(!p.reason.empty(), p.variant.name());
  }
}

TEST_CASE("topk_space_prunes_register_hungry_blocks_on_sm90a") {
  const VariantSpace space = family().space(target_from_arch("sm_90a"), Geometry{0, 0});
  std::set<std::string> pruned;
  for (const auto& p : space.pruned) pruned.insert(p.variant.name());
  CHECK(pruned.count("nsa_topk_sm90a_t1024_i16_r8_s1") == 1);
  CHECK(pruned.count("nsa_topk_sm90a_t1024_i16_r11_s16") == 1);
  CHECK(pruned.count("nsa_topk_sm90a_t1024_i8_r11_s16_a1") == 1);
  CHECK(pruned.count("nsa_topk_sm90a_t1024_i8_r11_s16_a2") == 1);
  CHECK(pruned.count("nsa_topk_sm90a_t1024_i8_r11_s8_a3") == 1);
  // Two rounds of 4 or 8 float4 a thread (the filter's double buffer) do not fit 64 registers.
  CHECK(pruned.count("nsa_topk_sm90a_t1024_i4_r11_s16_a4") == 1);
  CHECK(pruned.count("nsa_topk_sm90a_t1024_i8_r11_s16_a4") == 1);
  CHECK(space.kept.size() == 32 + 16 + 8 + 4);
  // Cluster variants are opt-in: generated, never tuned.
  int opt_in = 0;
  for (const auto& p : space.pruned) opt_in += p.reason.rfind("opt-in", 0) == 0 ? 1 : 0;
  CHECK(opt_in == 8);
}

TEST_CASE("topk_every_kept_variant_renders_one_named_kernel_and_its_name_parses_back") {
  for (const auto& arch : known_targets()) {
    const VariantSpace space = family().space(target_from_arch(arch), Geometry{0, 0});
    std::set<std::string> names;
    for (const auto& v : space.kept) {
      const std::string name = v.name();
      CHECK(names.insert(name).second);
      const RenderedSource r = family().render(v);
      CHECK(r.kernel_names == std::vector<std::string>{name});
      const TopkAlgorithm algorithm = topk_select_algorithm(v);
      const bool threshold = algorithm == TopkAlgorithm::threshold;
      const bool cluster = algorithm == TopkAlgorithm::cluster;
      const bool filter = algorithm == TopkAlgorithm::filter;
      CHECK(r.source.find(threshold ? "#include \"topk_select/threshold.cuh\""
                          : cluster ? "#include \"topk_select/cluster.cuh\""
                          : filter  ? "#include \"topk_select/filter.cuh\""
                                    : "#include \"topk_select/kernel.cuh\"") != std::string::npos);
      CHECK(r.source.find("extern \"C\" __global__") != std::string::npos);
      CHECK(r.source.find(" " + name + "(nsa_topk_params p)") != std::string::npos);
      const std::string entry = threshold                            ? "topk_threshold_select<"
                                : cluster                            ? "topk_cluster_select<"
                                : filter                             ? "topk_filter_select<"
                                : algorithm == TopkAlgorithm::stream ? "topk_stream_select<"
                                                                     : "topk_select<";
      const std::string instantiation = entry + std::to_string(v.get("t")) + ", " +
                                        std::to_string(v.get("i")) + ", " + std::to_string(v.get("r")) +
                                        ", " + std::to_string(v.target.warp_size) + ">";
      CHECK_MESSAGE(r.source.find(instantiation) != std::string::npos, r.source);
      const Variant back = variant_from_name(name);
      CHECK(back.family == Family::topk_select);
      CHECK(back.target.arch == v.target.arch);
      CHECK(back.knobs == v.knobs);
      CHECK(back.name() == name);
    }
  }
}

TEST_CASE("topk_name_reads_like_the_knobs") {
  const Variant v = family().default_variant(target_from_arch("sm_90a"), Geometry{0, 0});
  CHECK(v.name() == "nsa_topk_sm90a_t1024_i2_r11_s16_a4");
  CHECK(family().default_variant(target_from_arch("gfx942"), Geometry{0, 0}).name() ==
        "nsa_topk_gfx942_t512_i8_r11_s16");
}

TEST_CASE("topk_default_variant_is_a_kept_variant") {
  for (const auto& arch : known_targets()) {
    const Target target = target_from_arch(arch);
    const Variant d = family().default_variant(target, Geometry{0, 0});
    bool kept = false;
    for (const auto& v : family().space(target, Geometry{0, 0}).kept) kept = kept || v.name() == d.name();
    CHECK_MESSAGE(kept, d.name());
  }
}

TEST_CASE("topk_render_rejects_a_variant_of_another_family") {
  Variant v = family().default_variant(target_from_arch("sm_90a"), Geometry{0, 0});
  v.family = Family::sparse_mla_fwd;
  CHECK_THROWS_AS((void)family().render(v), Error);
  Variant missing = family().default_variant(target_from_arch("sm_90a"), Geometry{0, 0});
  missing.knobs.erase(missing.knobs.begin());  // no t
  CHECK_THROWS_AS((void)family().render(missing), Error);
}

TEST_CASE("topk_stream_variants_carry_knob_a1_and_keep_the_radix_names") {
  const VariantSpace space = family().space(target_from_arch("sm_90a"), Geometry{0, 0});
  std::set<std::string> kept;
  for (const auto& v : space.kept) kept.insert(v.name());
  CHECK(kept.count("nsa_topk_sm90a_t1024_i4_r11_s16") == 1);     // the radix winner stays
  CHECK(kept.count("nsa_topk_sm90a_t1024_i4_r11_s16_a1") == 1);  // its stream sibling
  CHECK(kept.count("nsa_topk_sm90a_t512_i8_r11_s16_a1") == 1);
  const Variant stream = variant_from_name("nsa_topk_sm90a_t512_i8_r11_s16_a1");
  CHECK(topk_select_algorithm(stream) == TopkAlgorithm::stream);
  CHECK(topk_select_algorithm(variant_from_name("nsa_topk_sm90a_t512_i8_r11_s16")) == TopkAlgorithm::radix);
  CHECK(family().render(stream).source.find("nsa_topk::topk_stream_select<512, 8, 11, 32>(p)") !=
        std::string::npos);
  Variant bad = stream;
  bad.knobs.back().value = 5;
  CHECK_THROWS_AS((void)family().render(bad), Error);
}

TEST_CASE("topk_filter_variants_carry_knob_a4_and_split_only_long_rows_of_small_batches") {
  const Variant v = variant_from_name("nsa_topk_sm90a_t512_i8_r11_s16_a4");
  CHECK(topk_select_algorithm(v) == TopkAlgorithm::filter);
  CHECK(family().render(v).source.find("nsa_topk::topk_filter_select<512, 8, 11, 32>(p)") !=
        std::string::npos);
  DeviceInfo device;
  device.name = "H100";
  device.arch = "sm_90a";
  device.multiprocessors = 132;
  device.shared_memory_per_block_optin = 232448;
  const std::size_t ws_bytes = topk_select_workspace_bytes(v, device);
  CHECK(ws_bytes > 0u);
  std::vector<unsigned long long> workspace(ws_bytes / 8 + 1);
  std::vector<float> scores(1);
  std::vector<std::int32_t> out(1);
  struct Case {
    int batch, length, splits;
  };
  // Slices of at least 32768 elements, at most 132 / B blocks a row, at most 16.
  for (const Case c :
       {Case{1, 4096, 1}, Case{1, 8192, 1}, Case{1, 65536, 2}, Case{1, 262144, 8}, Case{16, 16384, 1},
        Case{16, 131072, 4}, Case{16, 262144, 8}, Case{64, 131072, 2}, Case{128, 262144, 1}}) {
    CAPTURE(c.batch);
    CAPTURE(c.length);
    const TopkSelectProblem p = contiguous_topk_problem(scores.data(), c.batch, c.length, out.data(), 2048);
    const TopkSelectLaunch launch =
        plan_topk_select(v, device, p, workspace.data(), ws_bytes, TopkClusterFit{});
    CHECK(launch.params.splits == c.splits);
    CHECK(launch.grid.x == unsigned(c.batch * c.splits));
    CHECK(launch.params.sample == (c.length >= 8192 ? 2048 : 0));
    // The whole SM's shared memory (even at 512 threads): the buffer, then the 11-bit histogram
    // and the bins.
    CHECK(launch.params.buffer_capacity == int((232448 - 1024 - 2 * 8192) / 8));
  }
}

TEST_CASE("topk_threshold_variants_carry_knob_a2_and_split_rows") {
  const Variant v = variant_from_name("nsa_topk_sm90a_t512_i4_r11_s16_a2");
  CHECK(topk_select_algorithm(v) == TopkAlgorithm::threshold);
  CHECK(family().render(v).source.find("nsa_topk::topk_threshold_select<512, 4, 11, 32>(p)") !=
        std::string::npos);
  const DeviceInfo device = test::planned_h100();
  const std::size_t ws_bytes = topk_select_workspace_bytes(v, device);
  std::vector<unsigned char> workspace(ws_bytes);
  std::vector<float> scores(16 * 131072);
  std::vector<int> out(16 * 2048);
  TopkSelectProblem p = contiguous_topk_problem(scores.data(), 16, 131072, out.data(), 2048);
  // 16 rows on 132 SMs at two blocks per SM: 16 blocks per row (the s knob), 8192 elements each.
  TopkSelectLaunch launch = plan_topk_select(v, device, p, workspace.data(), ws_bytes);
  CHECK(launch.params.splits == 16);
  CHECK(launch.grid.x == 16u * 16u);
  CHECK(launch.params.slice == 8192);
  CHECK(launch.params.cand_capacity == 8192);
  CHECK(launch.workspace_bytes <= ws_bytes);
  // 128 rows: two blocks per row; 132 rows or more: one block per row, no wait at all.
  p.batch = 128;
  launch = plan_topk_select(v, device, p, workspace.data(), ws_bytes);
  CHECK(launch.params.splits == 2);
  p.batch = 132;
  p.scores = scores.data();
  p.length = 16384;
  p.score_row_stride = 16384;
  launch = plan_topk_select(v, device, p, workspace.data(), ws_bytes);
  CHECK(launch.params.splits == 2);
  p.batch = 133;
  launch = plan_topk_select(v, device, p, workspace.data(), ws_bytes);
  CHECK(launch.params.splits == 1);
  // Rows of up to 8192 elements are never split: one block reads them in one round.
  p.batch = 16;
  p.length = 8192;
  p.score_row_stride = 8192;
  launch = plan_topk_select(v, device, p, workspace.data(), ws_bytes);
  CHECK(launch.params.splits == 1);
  p.length = 8196;
  p.score_row_stride = 8196;
  launch = plan_topk_select(v, device, p, workspace.data(), ws_bytes);
  CHECK(launch.params.splits == 4);
  // Short rows are not split below 2048 elements per block.
  p.batch = 1;
  p.length = 3000;
  launch = plan_topk_select(v, device, p, workspace.data(), ws_bytes);
  CHECK(launch.params.splits == 1);
}

TEST_CASE("topk_cluster_variants_split_a_row_only_over_clusters_that_all_fit_at_once") {
  const Variant v = variant_from_name("nsa_topk_sm90a_t1024_i2_r11_s8_a3");
  CHECK(topk_select_algorithm(v) == TopkAlgorithm::cluster);
  CHECK(family().render(v).source.find("nsa_topk::topk_cluster_select<1024, 2, 11, 32>(p)") !=
        std::string::npos);
  for (const auto& arch : {"gfx90a", "gfx942"})  // no clusters on CDNA
    for (const auto& kept : family().space(target_from_arch(arch), Geometry{0, 0}).kept)
      CHECK(topk_select_algorithm(kept) != TopkAlgorithm::cluster);
  Variant amd = v;
  amd.target = target_from_arch("gfx942");
  amd.target.warp_size = 32;
  CHECK_THROWS_AS(check_topk_select_variant(amd), Error);

  const DeviceInfo device = test::planned_h100();
  const std::size_t ws_bytes = topk_select_workspace_bytes(v, device);
  std::vector<unsigned char> workspace(ws_bytes);
  std::vector<float> scores(64 * 131072);
  std::vector<int> out(64 * 2048);
  // Clusters of c one-SM blocks at most at once: 66, 30 and 15 for c = 2, 4, 8 as measured on the
  // H100 (tools/probes/cluster_probe.cu); the others made up.
  TopkClusterFit h100;
  h100.clusters = {0, 0, 66, 40, 30, 22, 20, 15, 15};
  struct Case {
    int batch, length;
    bool fit;  // the device's answer passed to the planner
    int splits;
    const char* why;
  };
  const Case cases[] = {
      {16, 131072, true, 6, "8 blocks a row would need 16 clusters of 8 (15 fit): 6, 20 clusters fit"},
      {1, 131072, true, 8, "one row: at most 8 blocks (the portable cluster size)"},
      {64, 32768, true, 2, "two blocks a row (one SM each): 66 clusters of 2 fit"},
      {64, 32768, false, 1, "without the device's answer (or where no cluster fits) rows are not split"},
      {64, 8192, true, 1, "short rows: one block a row, no clusters"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.why);
    const TopkSelectProblem p = contiguous_topk_problem(scores.data(), c.batch, c.length, out.data(), 2048);
    const TopkSelectLaunch launch =
        plan_topk_select(v, device, p, workspace.data(), ws_bytes, c.fit ? h100 : TopkClusterFit{});
    CHECK(launch.params.splits == c.splits);
    CHECK(launch.cluster == unsigned(c.splits));  // a split row is one cluster; 1: none
    CHECK(launch.grid.x == unsigned(c.batch * c.splits));
  }
}

TEST_CASE("topk_templates_are_embedded") {
  const auto& headers = template_headers();
  CHECK(headers.count("topk_select/kernel.cuh") == 1);
  CHECK(headers.count("topk_select/threshold.cuh") == 1);
  CHECK(headers.count("topk_select/filter.cuh") == 1);
  CHECK(headers.count("topk_select/params.h") == 1);
}

// Runs wherever NVRTC is available (no GPU needed); says so and passes vacuously elsewhere.
TEST_CASE("topk_every_kept_variant_compiles_with_nvrtc_for_sm90a") {
  const Compiler* compiler = cuda_backend().compiler_for("sm_90a");
  if (compiler == nullptr) {
    MESSAGE("skipped: no NVRTC: " << cuda_backend().compiler_unavailable_reason());
    return;
  }
  for (const auto& v : family().space(target_from_arch("sm_90a"), Geometry{0, 0}).kept) {
    const RenderedSource r = family().render(v);
    CompileRequest request;
    request.source = r.source;
    request.source_name = v.name() + ".cu";
    request.headers = template_headers();
    request.options = r.options;
    request.arch = "sm_90a";
    request.kernel_names = r.kernel_names;
    CompileResult result;
    CHECK_NOTHROW(result = compiler->compile(request));
    CHECK_MESSAGE(!result.binary.empty(), v.name());
  }
}
