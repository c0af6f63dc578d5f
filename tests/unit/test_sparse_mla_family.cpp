#include <doctest/doctest.h>
#include <fmt/format.h>

#include <set>

#include "generator/kernel_family.hpp"
#include "runtime/backend.hpp"
#include "runtime/error.hpp"
#include "tuner/compile_pool.hpp"

namespace nsajit {

TEST_CASE("sparse_mla_space_covers_the_issue_grid_and_says_why_it_prunes") {
  for (int d : {576, 512}) {
    const auto space =
        kernel_family(Family::sparse_mla_fwd).space(target_from_arch("sm_90a"), Geometry{d, 512});
    // cp.async variants, + bulk-gather (g1) variants: bh 16/32 x bt 32/64 x w 4/8 x st 2-4,
    // + wgmma (mma1) variants: bt 32/64/128 x (w8 st 2/3, w12 schedules ws 1-4), + transposed wgmma (mma2):
    // bh 16/32 x w 8/12 x st 1/2/3 x softmax schedule sx 1/2, + the panel ring (pr1) on sx 2: bh 16/32 x w
    // 8/12 x st 1/2/3
    CHECK(space.kept.size() + space.pruned.size() ==
          3 * 4 * 2 * 4 + 2 * 2 * 2 * 3 + 3 * (2 + 4) + 2 * 2 * 3 * 2 + 2 * 2 * 3);
    CHECK(space.kept.size() >= 10);
    for (const auto& p : space.pruned) CHECK_MESSAGE(!p.reason.empty(), p.variant.name());
    std::set<int> heads;
    for (const auto& v : space.kept) heads.insert(v.get("bh"));
    CHECK(heads.count(16) == 1);
    CHECK(heads.count(64) == 1);
  }
}

TEST_CASE("variant_names_are_stable_and_round_trip") {
  const auto space =
      kernel_family(Family::sparse_mla_fwd).space(target_from_arch("sm_90a"), Geometry{576, 512});
  for (const auto& v : space.kept) {
    const Variant back = variant_from_name(v.name());
    CHECK(back.name() == v.name());
    CHECK(back.knobs == v.knobs);
    CHECK(back.geometry == v.geometry);
  }
  const Variant v =
      kernel_family(Family::sparse_mla_fwd).default_variant(target_from_arch("sm_90a"), Geometry{576, 512});
  CHECK(v.name() == "nsa_fwd_sm90a_d576_bh16_bt64_w4_st2");
  CHECK_THROWS_AS((void)variant_from_name("nsa_fwd_sm90a_d576_bh16_bt"), Error);
  CHECK_THROWS_AS((void)variant_from_name("gemm_sm90a"), Error);
}

TEST_CASE("render_gives_one_self_contained_unit_with_both_kernels") {
  const auto& family = kernel_family(Family::sparse_mla_fwd);
  const Variant v = family.default_variant(target_from_arch("sm_90a"), Geometry{576, 512});
  const RenderedSource r = family.render(v);
  REQUIRE(r.kernel_names.size() == 2);
  CHECK(r.kernel_names[0] == v.name());
  CHECK(r.kernel_names[1] == v.name() + "_combine");
  CHECK(r.source.find("#include \"sparse_mla_fwd/sm90.cuh\"") != std::string::npos);
  CHECK(r.source.find("sparse_mla_fwd_sm90<576, 16, 64, 4, 2>") != std::string::npos);
  const auto space = family.space(target_from_arch("sm_90a"), Geometry{576, 512});
  REQUIRE(!space.pruned.empty());
  CHECK_THROWS_AS((void)family.render(space.pruned.front().variant), Error);
  CHECK_THROWS_AS((void)family.space(target_from_arch("sm_90a"), Geometry{128, 512}), Error);
}

TEST_CASE("bulk_gather_variants_keep_the_v2_names_and_need_the_d_split") {
  const auto& family = kernel_family(Family::sparse_mla_fwd);
  const auto space = family.space(target_from_arch("sm_90a"), Geometry{576, 512});
  std::set<std::string> kept;
  for (const auto& v : space.kept)
    if (v.knobs.size() == 5 && v.knobs[4].name == "g") kept.insert(v.name());
  // The 13 that fit 227 KB with >= 8 S columns per warp and a d-split S (ks >= 2).
  CHECK(kept.size() == 13);
  CHECK(kept.count("nsa_fwd_sm90a_d576_bh16_bt32_w4_st2_g1") == 1);
  CHECK(kept.count("nsa_fwd_sm90a_d576_bh32_bt64_w8_st2_g1") == 1);
  CHECK(kept.count("nsa_fwd_sm90a_d576_bh16_bt64_w4_st3_g1") == 0);  // 246 KB of shared memory
  // the v2 names are still there, unchanged
  bool v2 = false;
  for (const auto& v : space.kept) v2 = v2 || v.name() == "nsa_fwd_sm90a_d576_bh16_bt32_w4_st2";
  CHECK(v2);
  for (const auto& p : space.pruned)
    if (p.variant.knobs.size() == 5 && p.variant.knobs[4].name == "g" && p.variant.get("bh") == 16 &&
        p.variant.get("bt") == 32 && p.variant.get("w") == 8)
      CHECK_MESSAGE(p.reason.find("< 8") != std::string::npos, p.reason);
  const RenderedSource r = family.render(variant_from_name("nsa_fwd_sm90a_d576_bh16_bt32_w4_st2_g1"));
  CHECK(r.source.find("sparse_mla_fwd_sm90<576, 16, 32, 4, 2, 1>") != std::string::npos);
  CHECK_THROWS_AS((void)family.render(variant_from_name("nsa_fwd_sm90a_d576_bh16_bt32_w4_st2_g2")), Error);
  CHECK_THROWS_AS((void)family.render(variant_from_name("nsa_fwd_sm90a_d576_bh16_bt64_w4_st3_g1")), Error);
}

TEST_CASE("every_unpruned_sm90a_variant_compiles_with_nvrtc") {
  const Compiler* nvrtc = cuda_backend().compiler_for("sm_90a");
  if (nvrtc == nullptr) {
    const char* allow = std::getenv("NSAJIT_ALLOW_NO_NVRTC");
    REQUIRE_MESSAGE((allow != nullptr && std::string(allow) == "1"),
                    "NVRTC missing: " << cuda_backend().compiler_unavailable_reason());
    MESSAGE("SKIPPED (NSAJIT_ALLOW_NO_NVRTC=1): " << cuda_backend().compiler_unavailable_reason());
    return;
  }
  std::vector<Variant> variants;
  for (int d : {576, 512}) {
    auto s = kernel_family(Family::sparse_mla_fwd).space(target_from_arch("sm_90a"), Geometry{d, 512});
    variants.insert(variants.end(), s.kept.begin(), s.kept.end());
  }
  const auto results = compile_variants(*nvrtc, variants);
  int compiled = 0;
  for (const auto& r : results) {
    CHECK_MESSAGE(r.ok(), r.variant.name() << ": " << r.error);
    if (!r.ok()) continue;
    ++compiled;
    CHECK(r.result->binary.size() > 1000);
  }
  MESSAGE(
      fmt::format("sparse_mla_fwd: {} of {} unpruned sm_90a variants compiled", compiled, variants.size()));
  CHECK(compiled == static_cast<int>(variants.size()));
}

}  // namespace nsajit
