// The CDNA (gfx90a, gfx942) side of the sparse_mla_fwd family: its variant space, its pruning
// reasons, and its renderer. Compilation of every kept variant is checked by the HIP backend's
// suite; these tests need no compiler.
#include <doctest/doctest.h>

#include <set>
#include <string>

#include "generator/kernel_family.hpp"
#include "generator/sparse_mla_cdna.hpp"
#include "runtime/error.hpp"
#include "templates/sparse_mla_fwd/cdna_layout.h"

using namespace nsajit;

namespace {

const KernelFamily& family() {
  return kernel_family(Family::sparse_mla_fwd);
}

const Variant* find_variant(const VariantSpace& s, const std::string& name, std::string* reason = nullptr) {
  for (const auto& v : s.kept)
    if (v.name() == name) return &v;
  for (const auto& p : s.pruned)
    if (p.variant.name() == name) {
      if (reason != nullptr) *reason = p.reason;
      return &p.variant;
    }
  return nullptr;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("cdna_space_covers_every_knob_combination_with_kept_and_pruned_variants") {
  for (const std::string arch : {"gfx90a", "gfx942"}) {
    for (const Geometry g : {Geometry{576, 512}, Geometry{512, 512}}) {
      CAPTURE(arch);
      CAPTURE(g.d_qk);
      const VariantSpace s = family().space(target_from_arch(arch), g);
      CHECK(s.kept.size() + s.pruned.size() == 4 * 3 * 2 * 2);  // bh x bt x w x st
      // 48 = 15 kept for d 576 (17 for d 512: two bh64 x 8-wave variants need fewer Q registers).
      CHECK(s.kept.size() == (g.d_qk == 576 ? 15u : 17u));
      CHECK(!s.pruned.empty());
      std::set<std::string> names;
      for (const auto& v : s.kept) names.insert(v.name());
      for (const auto& p : s.pruned) {
        names.insert(p.variant.name());
        CHECK_MESSAGE(!p.reason.empty(), p.variant.name());
      }
      CHECK(names.size() == 48);
    }
  }
}

TEST_CASE("cdna_names_follow_the_fixed_knob_order") {
  const VariantSpace s = family().space(target_from_arch("gfx942"), Geometry{576, 512});
  const Variant* v = find_variant(s, "nsa_fwd_gfx942_d576_bh16_bt64_w4_st1");
  REQUIRE(v != nullptr);
  CHECK(v->get("bh") == 16);
  CHECK(v->get("bt") == 64);
  CHECK(v->get("w") == 4);
  CHECK(v->get("st") == 1);
}

TEST_CASE("cdna_kept_variants_fit_64k_lds_and_the_register_rule") {
  for (const char* arch : {"gfx90a", "gfx942"}) {
    const Target t = target_from_arch(arch);
    for (const int d : {576, 512}) {
      const VariantSpace s = family().space(t, Geometry{d, 512});
      for (const auto& v : s.kept) {
        CAPTURE(v.name());
        const auto l = nsa_sparse_mla_cdna_layout(d, v.get("bh"), v.get("bt"), v.get("w"), v.get("st"));
        CHECK(l.lds_bytes <= 64 * 1024);
        CHECK(std::string(nsa_sparse_mla_cdna_shape_error(l)).empty());
        // Calibrated no-spill limits (see generator/sparse_mla_cdna.cpp): 200 with 4 waves, 136 with 8.
        CHECK(l.q_regs + l.o_regs + l.s_regs + l.stage_regs <= (v.get("w") == 4 ? 200 : 136));
      }
    }
  }
}

TEST_CASE("cdna_pruned_variants_state_the_rule_they_break") {
  const VariantSpace s = family().space(target_from_arch("gfx90a"), Geometry{576, 512});
  std::string why;
  // 16 heads cannot be split over 8 waves in 16-row MFMA tiles and 32-column value groups.
  REQUIRE(find_variant(s, "nsa_fwd_gfx90a_d576_bh16_bt64_w8_st1", &why) != nullptr);
  CHECK(contains(why, "shape"));
  // 128 heads x 128 rows of fp32 S (67584 B) alone exceed 64 KB of LDS.
  why.clear();
  REQUIRE(find_variant(s, "nsa_fwd_gfx90a_d576_bh128_bt128_w8_st1", &why) != nullptr);
  CHECK(contains(why, "LDS"));
  CHECK(contains(why, "> 65536 B"));
  // Two 64 x 128 kv chunk buffers (32 KB) plus 128 x 68 fp32 S do not fit either.
  why.clear();
  REQUIRE(find_variant(s, "nsa_fwd_gfx90a_d576_bh128_bt64_w8_st2", &why) != nullptr);
  CHECK(contains(why, "LDS 69120 B"));
  // 128 heads on 4 waves: Q (144) + O (256) registers per lane.
  why.clear();
  REQUIRE(find_variant(s, "nsa_fwd_gfx90a_d576_bh128_bt32_w4_st1", &why) != nullptr);
  CHECK(contains(why, "registers"));
  // 64 heads on 4 waves: Q 72 + O 128 + S 16 + staged 16 = 232 live registers spilled when compiled.
  why.clear();
  REQUIRE(find_variant(s, "nsa_fwd_gfx90a_d576_bh64_bt64_w4_st2", &why) != nullptr);
  CHECK(contains(why, "registers: 232 live per lane"));
}

TEST_CASE("cdna_every_kept_variant_renders_both_kernels") {
  for (const char* arch : {"gfx90a", "gfx942"}) {
    for (const int d : {576, 512}) {
      const VariantSpace s = family().space(target_from_arch(arch), Geometry{d, 512});
      for (const auto& v : s.kept) {
        CAPTURE(v.name());
        const RenderedSource r = family().render(v);
        const std::string name = v.name();
        REQUIRE(r.kernel_names.size() == 2);
        CHECK(r.kernel_names[0] == name);
        CHECK(r.kernel_names[1] == name + "_combine");
        CHECK(contains(r.source, "#include \"sparse_mla_fwd/cdna.h\""));
        CHECK(contains(r.source, "extern \"C\" __global__ void __launch_bounds__(" +
                                     std::to_string(64 * v.get("w")) + ") " + name +
                                     "(const NsaSparseMlaParams p)"));
        CHECK(contains(r.source, "extern \"C\" __global__ void __launch_bounds__(128) " + name +
                                     "_combine(const NsaSparseMlaParams p)"));
        CHECK(contains(r.source, "nsajit::sparse_mla_fwd_cdna<" + std::to_string(d) + ", " +
                                     std::to_string(v.get("bh")) + ", " + std::to_string(v.get("bt")) + ", " +
                                     std::to_string(v.get("w")) + ", " + std::to_string(v.get("st")) +
                                     ">(p);"));
        CHECK(!contains(r.source, "sm90"));
      }
    }
  }
}

TEST_CASE("cdna_variant_names_round_trip") {
  for (const char* arch : {"gfx90a", "gfx942"}) {
    const VariantSpace s = family().space(target_from_arch(arch), Geometry{512, 512});
    for (const auto& v : s.kept) {
      const Variant back = variant_from_name(v.name());
      CHECK(back.name() == v.name());
      CHECK(back.family == v.family);
      CHECK(back.target.arch == v.target.arch);
      CHECK(back.target.vendor == Vendor::amd);
      CHECK(back.geometry == v.geometry);
      CHECK(back.knobs == v.knobs);
      CHECK(family().render(back).source == family().render(v).source);
    }
  }
}

TEST_CASE("cdna_rendering_a_pruned_or_foreign_variant_fails_with_the_reason") {
  const VariantSpace s = family().space(target_from_arch("gfx942"), Geometry{576, 512});
  REQUIRE(!s.pruned.empty());
  const auto& p = s.pruned.front();
  try {
    (void)family().render(p.variant);
    FAIL("rendering a pruned variant must throw");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::invalid_argument);
    CHECK(contains(e.reason(), p.reason));
  }
  Variant extra_knob = s.kept.front();
  extra_knob.knobs.push_back({"x", 1});
  CHECK_THROWS_AS((void)sparse_mla_cdna_render(extra_knob), Error);
  Variant odd_tile = s.kept.front();
  odd_tile.knobs[1].value = 48;
  CHECK_THROWS_AS((void)sparse_mla_cdna_render(odd_tile), Error);
}

TEST_CASE("cdna_default_variant_is_kept") {
  for (const char* arch : {"gfx90a", "gfx942"}) {
    for (const int d : {576, 512}) {
      const Target t = target_from_arch(arch);
      const Variant v = family().default_variant(t, Geometry{d, 512});
      const VariantSpace s = family().space(t, Geometry{d, 512});
      bool kept = false;
      for (const auto& k : s.kept) kept = kept || k.name() == v.name();
      CHECK_MESSAGE(kept, v.name());
    }
  }
}
