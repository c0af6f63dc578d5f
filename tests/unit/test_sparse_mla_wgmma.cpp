// The wgmma sparse_mla_fwd variants (knob mma = 1): in the space with reasons for the pruned
// ones, rendered from sm90_wgmma.cuh, planned with their own block and shared memory, and the
// host-visible pieces of the operand layout (swizzle, descriptor encoding) against the PTX ISA.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <map>
#include <set>
#include <string>

#include "generator/kernel_family.hpp"
#include "runtime/error.hpp"
#include "runtime/sparse_mla_launch.hpp"
#include "templates/sparse_mla_fwd/wgmma_layout.h"

namespace nsajit {
namespace {

// The 64-head wgmma variants (mma1); the transposed ones (mma2) are tested in
// test_sparse_mla_wgmma_t.cpp.
bool has_mma_knob(const Variant& v) {
  return v.get_or("mma", 0) == 1;
}

bool has_any_mma_knob(const Variant& v) {
  return v.get_or("mma", 0) != 0;
}

}  // namespace

TEST_CASE("wgmma_variants_are_in_the_space_and_pruned_ones_say_why") {
  for (int d : {576, 512}) {
    const auto space =
        kernel_family(Family::sparse_mla_fwd).space(target_from_arch("sm_90a"), Geometry{d, 512});
    std::set<std::string> kept;
    for (const auto& v : space.kept)
      if (has_mma_knob(v)) kept.insert(v.name());
    CHECK(kept == std::set<std::string>{fmt::format("nsa_fwd_sm90a_d{}_bh64_bt64_w8_st2_mma1", d),
                                        fmt::format("nsa_fwd_sm90a_d{}_bh64_bt64_w12_st2_mma1", d),
                                        fmt::format("nsa_fwd_sm90a_d{}_bh64_bt64_w12_st2_mma1_ws3", d),
                                        fmt::format("nsa_fwd_sm90a_d{}_bh64_bt64_w12_st2_mma1_ws4", d)});

    int pruned = 0;
    for (const auto& p : space.pruned) {
      if (!has_mma_knob(p.variant)) continue;
      ++pruned;
      const int bt = p.variant.get("bt"), st = p.variant.get("st");
      if (bt != 64) {
        CHECK_MESSAGE(p.reason.find("bt must be 64") != std::string::npos, p.variant.name()
                                                                               << ": " << p.reason);
      } else if (p.variant.get("w") == 12) {
        // ws2 faulted on the H200 and is held out with that reason.
        CHECK_MESSAGE(p.reason.find("illegal instruction") != std::string::npos, p.variant.name()
                                                                                     << ": " << p.reason);
      } else {
        // Only w8 has a stage axis; its 3-stage layout does not fit.
        CHECK(p.variant.get("w") == 8);
        CHECK(st == 3);
        CHECK_MESSAGE(p.reason.find("shared memory") != std::string::npos, p.variant.name()
                                                                               << ": " << p.reason);
      }
    }
    // w8: bt 32 and 128 at both stage counts + bt 64 with 3 stages; w12: bt 32 and 128 per
    // schedule (4 schedules) + w12 bt 64 ws2, held out.
    CHECK(pruned == 5 + 8 + 1);
  }
}

TEST_CASE("w12_schedule_knob_is_last_only_on_w12_and_absent_for_schedule_1") {
  const auto space =
      kernel_family(Family::sparse_mla_fwd).space(target_from_arch("sm_90a"), Geometry{576, 512});
  std::map<int, int> per_schedule;
  std::vector<Variant> all = space.kept;  // ws2 is held out (pruned) but keeps its name
  for (const auto& p : space.pruned) all.push_back(p.variant);
  for (const auto& v : all) {
    for (std::size_t i = 0; i < v.knobs.size(); ++i)
      if (v.knobs[i].name == "ws") {
        ++per_schedule[v.knobs[i].value];
        CHECK(i == v.knobs.size() - 1);
        CHECK(v.get("w") == 12);
        CHECK(v.get("mma") == 1);
      }
  }
  // bt 32, 64, 128 for each of the schedules 2-4 (schedule 1 carries no knob).
  CHECK(per_schedule == std::map<int, int>{{2, 3}, {3, 3}, {4, 3}});
  int kept_w12 = 0;
  for (const auto& v : space.kept) kept_w12 += (v.get_or("mma", 0) == 1 && v.get("w") == 12) ? 1 : 0;
  CHECK(kept_w12 == 3);  // bt 64: ws1, ws3, ws4
}

TEST_CASE("mma_sync_variant_names_do_not_change_and_wgmma_names_round_trip") {
  const auto space =
      kernel_family(Family::sparse_mla_fwd).space(target_from_arch("sm_90a"), Geometry{576, 512});
  for (const auto& v : space.kept) {
    if (has_mma_knob(v)) {
      CHECK(v.get("mma") == 1);
      CHECK((v.name().ends_with("_mma1") || v.name().ends_with("_mma1_ws3") ||
             v.name().ends_with("_mma1_ws4")));
    } else if (has_any_mma_knob(v)) {
      CHECK(v.get("mma") == 2);
      CHECK((v.name().ends_with("_mma2") || v.name().ends_with("_mma2_sx2") ||
             v.name().ends_with("_mma2_sx2_pr1")));
    } else {
      CHECK((v.knobs.size() == 4 || (v.knobs.size() == 5 && v.knobs[4].name == "g")));  // g: bulk-gather knob
      CHECK(v.name().find("mma") == std::string::npos);
    }
    const Variant back = variant_from_name(v.name());
    CHECK(back.name() == v.name());
    CHECK(back.knobs == v.knobs);
  }
}

TEST_CASE("wgmma_variant_renders_the_wgmma_template_with_its_combine_kernel") {
  const auto& family = kernel_family(Family::sparse_mla_fwd);
  const Variant v = variant_from_name("nsa_fwd_sm90a_d576_bh64_bt64_w8_st2_mma1");
  const RenderedSource r = family.render(v);
  REQUIRE(r.kernel_names.size() == 2);
  CHECK(r.kernel_names[0] == v.name());
  CHECK(r.kernel_names[1] == v.name() + "_combine");
  CHECK(r.source.find("#include \"sparse_mla_fwd/sm90_wgmma.cuh\"") != std::string::npos);
  CHECK(r.source.find("sparse_mla_fwd_sm90_wgmma<576, 64, 64, 8, 2>(p)") != std::string::npos);
  CHECK(r.source.find("__launch_bounds__(256, 1) " + v.name() + "(") != std::string::npos);
  CHECK(r.source.find("sparse_mla_combine(p)") != std::string::npos);
  CHECK(r.source.find("sparse_mla_fwd_sm90<") == std::string::npos);

  const Variant d512 = variant_from_name("nsa_fwd_sm90a_d512_bh64_bt64_w8_st2_mma1");
  CHECK(family.render(d512).source.find("sparse_mla_fwd_sm90_wgmma<512, 64, 64, 8, 2>(p)") !=
        std::string::npos);
  // Pruned wgmma shapes are refused, not rendered into something that cannot run.
  CHECK_THROWS_AS((void)family.render(variant_from_name("nsa_fwd_sm90a_d576_bh64_bt32_w8_st2_mma1")), Error);
  CHECK_THROWS_AS((void)family.render(variant_from_name("nsa_fwd_sm90a_d576_bh64_bt64_w8_st3_mma1")), Error);
  CHECK_THROWS_AS((void)family.render(variant_from_name("nsa_fwd_sm90a_d576_bh32_bt64_w8_st2_mma1")), Error);
}

TEST_CASE("warp_specialised_wgmma_variant_renders_the_ping_pong_template") {
  const auto& family = kernel_family(Family::sparse_mla_fwd);
  for (int d : {576, 512}) {
    const Variant v = variant_from_name(fmt::format("nsa_fwd_sm90a_d{}_bh64_bt64_w12_st2_mma1", d));
    const RenderedSource r = family.render(v);
    CHECK(r.source.find("#include \"sparse_mla_fwd/sm90_wgmma_ws.cuh\"") != std::string::npos);
    CHECK(r.source.find(fmt::format("sparse_mla_fwd_sm90_wgmma_ws<{}, 64, 64, 12, 2>(p)", d)) !=
          std::string::npos);
    // The register cap at entry (384 threads, 1 block) is what lets setmaxnreg take effect.
    CHECK(r.source.find("__launch_bounds__(384, 1) " + v.name() + "(") != std::string::npos);
    CHECK(r.source.find("sparse_mla_combine(p)") != std::string::npos);
  }
  CHECK_THROWS_AS((void)family.render(variant_from_name("nsa_fwd_sm90a_d576_bh64_bt64_w12_st3_mma1")), Error);
}

TEST_CASE("w12_schedule_2_renders_the_ping_pong_template_with_its_schedule_argument") {
  const auto& family = kernel_family(Family::sparse_mla_fwd);
  for (int d : {576, 512}) {
    // ws2 faulted on the H200: the renderer refuses it (with the reason) until it is fixed.
    const Variant v = variant_from_name(fmt::format("nsa_fwd_sm90a_d{}_bh64_bt64_w12_st2_mma1_ws2", d));
    CHECK_THROWS_WITH_AS((void)family.render(v), doctest::Contains("illegal instruction"), Error);
    // Schedule 1 keeps its unnamed knob and its five-argument instantiation.
    const RenderedSource r1 =
        family.render(variant_from_name(fmt::format("nsa_fwd_sm90a_d{}_bh64_bt64_w12_st2_mma1", d)));
    CHECK(r1.source.find(fmt::format("sparse_mla_fwd_sm90_wgmma_ws<{}, 64, 64, 12, 2>(p)", d)) !=
          std::string::npos);
    // Schedules 3 and 4 pass their number as the sixth argument.
    for (int ws : {3, 4}) {
      const RenderedSource r = family.render(
          variant_from_name(fmt::format("nsa_fwd_sm90a_d{}_bh64_bt64_w12_st2_mma1_ws{}", d, ws)));
      CHECK(r.source.find(fmt::format("sparse_mla_fwd_sm90_wgmma_ws<{}, 64, 64, 12, 2, {}>(p)", d, ws)) !=
            std::string::npos);
    }
  }
  // Same launch as schedule 1: block, shared memory and grid come from the w12 layout.
  SparseMlaProblem pr;
  pr.d_qk = 576;
  pr.params.batch = 1;
  pr.params.s_q = 3;
  pr.params.h_q = 128;
  pr.params.topk = 2048;
  pr.params.split_len = 2048;
  pr.params.num_splits = 1;
  const SparseMlaLaunch a =
      plan_sparse_mla(pr, variant_from_name("nsa_fwd_sm90a_d576_bh64_bt64_w12_st2_mma1"), 1, nullptr);
  const SparseMlaLaunch b =
      plan_sparse_mla(pr, variant_from_name("nsa_fwd_sm90a_d576_bh64_bt64_w12_st2_mma1_ws2"), 1, nullptr);
  CHECK(b.block.x == a.block.x);
  CHECK(b.shared_bytes == a.shared_bytes);
  CHECK(b.grid.x == a.grid.x);
  CHECK(b.grid.y == a.grid.y);
  // No schedule 2 for the two-warpgroup kernel, no schedule 5 at all.
  CHECK_THROWS_AS((void)family.render(variant_from_name("nsa_fwd_sm90a_d576_bh64_bt64_w8_st2_mma1_ws2")),
                  Error);
  CHECK_THROWS_AS((void)family.render(variant_from_name("nsa_fwd_sm90a_d576_bh64_bt64_w12_st2_mma1_ws5")),
                  Error);
}

TEST_CASE("ws2_output_staging_fits_the_free_q_and_kv_region_at_both_head_dims") {
  // The kernel stages [64 rows x 512] bf16 at a 1040-byte pitch from offset 0 after its last wgmma.
  for (int d : {576, 512}) {
    const NsaSparseMlaWgmmaLayout l = nsa_sparse_mla_wgmma_layout(d, 64, 64, 12, 2);
    CHECK(l.q_off == 0);
    CHECK(l.kv_off == l.q_bytes);
    CHECK(64 * 1040 <= l.q_bytes + 2 * l.kv_stage_bytes);
    CHECK(64 * 1040 <= l.valid_off);  // never reaches the flags, row exchange or mbarriers
  }
  // The pitch puts the 8 rows of one accumulator store (lane / 4) on 8 distinct bank quads.
  std::set<int> banks;
  for (int lane = 0; lane < 32; ++lane) banks.insert(((lane / 4) * 1040 + 4 * (lane % 4)) / 4 % 32);
  CHECK(banks.size() == 32);
}

TEST_CASE("warp_specialised_layout_fits_227_kb_with_the_even_p_in_the_rope_panel") {
  constexpr NsaSparseMlaWgmmaLayout l = nsa_sparse_mla_wgmma_layout(576, 64, 64, 12, 2);
  CHECK(l.threads == 384);
  CHECK(l.warpgroups == 2);  // math warpgroups; the third one gathers
  CHECK(l.kv_off == 73728);
  CHECK(l.p1_off == 73728 + 2 * 73728);
  // The even tile's P overwrites panel 8 (the rope columns 512-575) of kv buffer 0.
  CHECK(l.p0_off == l.kv_off + 8 * 64 * 128);
  CHECK(l.p0_off + l.p_bytes == l.kv_off + l.kv_stage_bytes);
  CHECK(l.valid_off == l.p1_off + 8192);
  CHECK(l.row_off == l.valid_off + 2 * 64 * 4);
  CHECK(l.bar_off == l.row_off + 5 * 64 * 4);  // m, l x 2 and the true maxima x 2 per head
  CHECK(l.bar_off % 8 == 0);
  CHECK(l.smem_bytes == l.bar_off + 64 + 1024);
  CHECK(l.smem_bytes <= 227 * 1024);
  for (int off : {l.q_off, l.kv_off, l.kv_off + l.kv_stage_bytes, l.p0_off, l.p1_off}) CHECK(off % 1024 == 0);

  // d 512 has no rope panel: the even P gets its own buffer after the odd one.
  constexpr NsaSparseMlaWgmmaLayout l512 = nsa_sparse_mla_wgmma_layout(512, 64, 64, 12, 2);
  CHECK(l512.p1_off == 65536 * 3);
  CHECK(l512.p0_off == l512.p1_off + 8192);
  CHECK(l512.valid_off == l512.p0_off + 8192);
  CHECK(l512.smem_bytes <= 227 * 1024);
  // The two-warpgroup layout is unchanged by the warp-specialised one.
  CHECK(nsa_sparse_mla_wgmma_layout(576, 64, 64, 8, 2).p0_off == 0);
}

TEST_CASE("wgmma_layout_fits_the_block_and_keeps_swizzle_atoms_1024_byte_aligned") {
  constexpr NsaSparseMlaWgmmaLayout l = nsa_sparse_mla_wgmma_layout(576, 64, 64, 8, 2);
  CHECK(l.threads == 256);
  CHECK(l.warpgroups == 2);
  CHECK(l.acc_registers == 128);
  CHECK(l.q_off == 0);
  CHECK(l.kv_off == 73728);
  CHECK(l.p_off == 73728 + 2 * 73728);
  CHECK(l.idx_off == 229376);
  CHECK(l.row_off == 229376 + 512);
  CHECK(l.smem_bytes == 229888 + 768 + 1024);
  CHECK(l.smem_bytes <= 227 * 1024);
  for (int off : {l.q_off, l.kv_off, l.kv_off + l.kv_stage_bytes, l.p_off}) CHECK(off % 1024 == 0);
  CHECK(l.kv_stage_bytes % 1024 == 0);
  constexpr NsaSparseMlaWgmmaLayout l512 = nsa_sparse_mla_wgmma_layout(512, 64, 64, 8, 2);
  CHECK(l512.smem_bytes == 65536 * 3 + 8192 + 512 + 768 + 1024);
  CHECK(nsa_sparse_mla_wgmma_layout(576, 64, 64, 8, 3).smem_bytes > 227 * 1024);
}

TEST_CASE("sw128_offset_is_cutlass_swizzle_3_4_3_of_the_row_major_offset") {
  // Swizzle<3,4,3>: address bits [7,10) (row within the 8-row atom) XOR into bits [4,7) (chunk).
  for (int r = 0; r < 64; ++r)
    for (int c = 0; c < 8; ++c) {
      const int linear = r * 128 + c * 16;
      CHECK(nsa_sw128_offset(r, c) == (linear ^ ((linear & 0x380) >> 3)));
    }
  // Each 8-row atom is a permutation of its 64 chunk slots.
  std::set<int> slots;
  for (int r = 0; r < 8; ++r)
    for (int c = 0; c < 8; ++c) slots.insert(nsa_sw128_offset(r, c));
  CHECK(slots.size() == 64);
  CHECK(*slots.begin() == 0);
  CHECK(*slots.rbegin() == 1008);
}

TEST_CASE("a_descriptor_advanced_by_an_offset_equals_the_descriptor_of_the_offset_address") {
  // The kernels build each wgmma descriptor as base descriptor + offset >> 4: exact for every
  // shared address below 256 KB (the 14-bit field never carries), at both leading offsets.
  int checked = 0;
  for (unsigned base = 0; base < 0x40000u; base += 0x2400u)
    for (unsigned lbo : {16u, 64u * 128u})
      for (unsigned off = 0; base + off < 0x40000u; off += 0x1230u) {
        CHECK(nsa_wgmma_desc_advance(nsa_wgmma_desc_sw128(base, lbo, 1024), off) ==
              nsa_wgmma_desc_sw128(base + off, lbo, 1024));
        ++checked;
      }
  CHECK(checked > 1000);
  // Past 256 KB the field wraps while the advance carries into the LBO field: the bound matters.
  CHECK(nsa_wgmma_desc_advance(nsa_wgmma_desc_sw128(0x3FFF0u, 16, 1024), 16) !=
        nsa_wgmma_desc_sw128(0x40000u, 16, 1024));
}

TEST_CASE("wgmma_descriptor_fields_follow_the_ptx_matrix_descriptor_format") {
  // K-major operand at 0x400: start 0x400 >> 4, LBO 1 (unused), SBO 1024 >> 4, mode 1 in bits 62-63.
  CHECK(nsa_wgmma_desc_sw128(0x400, 16, 1024) == 0x4000004000010040ull);
  // N-major V: LBO = 64 rows x 128 B = 8192 B between 64-column panels.
  const unsigned long long v = nsa_wgmma_desc_sw128(73728 + 4 * 8192, 8192, 1024);
  CHECK((v & 0x3FFF) == (73728 + 4 * 8192) >> 4);
  CHECK(((v >> 16) & 0x3FFF) == 512);
  CHECK(((v >> 32) & 0x3FFF) == 64);
  CHECK(((v >> 49) & 0x7) == 0);
  CHECK((v >> 62) == 1);
  // Addresses wrap at the 18-bit shared window, as matrix-descriptor-encode specifies.
  CHECK((nsa_wgmma_desc_sw128(0x40000 + 0x20, 16, 1024) & 0x3FFF) == 2);
}

TEST_CASE("wgmma_plan_uses_its_own_block_and_shared_memory") {
  SparseMlaProblem pr;
  pr.d_qk = 576;
  pr.params.batch = 1;
  pr.params.s_q = 10;
  pr.params.h_q = 128;
  pr.params.topk = 2048;
  pr.params.split_len = 2048;
  pr.params.num_splits = 1;
  const Variant v = variant_from_name("nsa_fwd_sm90a_d576_bh64_bt64_w8_st2_mma1");
  const SparseMlaLaunch one = plan_sparse_mla(pr, v, 1, nullptr);
  CHECK(one.block.x == 256);
  CHECK(one.shared_bytes == static_cast<unsigned>(nsa_sparse_mla_wgmma_layout(576, 64, 64, 8, 2).smem_bytes));
  CHECK(one.grid.x == 10);
  CHECK(one.grid.y == 2);
  CHECK(one.grid.z == 1);
  CHECK(!one.needs_combine);

  float workspace = 0.f;  // only its address is planned with
  const SparseMlaLaunch four = plan_sparse_mla(pr, v, 4, &workspace);
  CHECK(four.grid.z == 4);
  CHECK(four.params.split_len == 512);
  CHECK(four.needs_combine);

  const SparseMlaLaunch ws =
      plan_sparse_mla(pr, variant_from_name("nsa_fwd_sm90a_d576_bh64_bt64_w12_st2_mma1"), 1, nullptr);
  CHECK(ws.block.x == 384);
  CHECK(ws.shared_bytes == static_cast<unsigned>(nsa_sparse_mla_wgmma_layout(576, 64, 64, 12, 2).smem_bytes));
  CHECK(ws.grid.x == 10);
  CHECK(ws.grid.y == 2);

  // The mma.sync variant of the same knobs keeps its own layout.
  const SparseMlaLaunch old =
      plan_sparse_mla(pr, variant_from_name("nsa_fwd_sm90a_d576_bh64_bt64_w8_st2"), 1, nullptr);
  CHECK(old.shared_bytes != one.shared_bytes);
}

}  // namespace nsajit
