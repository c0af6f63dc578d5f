// The transposed-product wgmma variants (knob mma = 2, sm90_wgmma_t.cuh, h_q <= 32): in the
// space with reasons for the pruned ones, rendered from their template, planned with their own
// block and shared memory, and the host-visible pieces of the layout (alignment, the stmatrix
// .trans addressing of P^T).
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <set>
#include <string>

#include "generator/kernel_family.hpp"
#include "runtime/error.hpp"
#include "runtime/sparse_mla_launch.hpp"
#include "templates/sparse_mla_fwd/wgmma_layout.h"

namespace nsajit {
namespace {

bool is_mma2(const Variant& v) {
  return v.get_or("mma", 0) == 2;
}

int sx_of(const Variant& v) {
  return v.get_or("sx", 1);
}

int pr_of(const Variant& v) {
  return v.get_or("pr", 0);
}

}  // namespace

TEST_CASE("transposed_wgmma_variants_are_in_the_space_and_pruned_ones_say_why") {
  for (int d : {576, 512}) {
    const auto space =
        kernel_family(Family::sparse_mla_fwd).space(target_from_arch("sm_90a"), Geometry{d, 512});
    std::set<std::string> kept, kept_sx2, kept_pr;
    for (const auto& v : space.kept)
      if (is_mma2(v)) (pr_of(v) == 1 ? kept_pr : sx_of(v) == 2 ? kept_sx2 : kept).insert(v.name());
    std::set<std::string> want;
    for (int bh : {16, 32})
      for (int w : {8, 12}) want.insert(fmt::format("nsa_fwd_sm90a_d{}_bh{}_bt64_w{}_st2_mma2", d, bh, w));
    want.insert(fmt::format("nsa_fwd_sm90a_d{}_bh16_bt64_w8_st1_mma2", d));  // two CTAs per SM
    if (d == 512) {
      // Without the rope panel: 3 stages of 64 KB next to a 16-head Q, and two 32-head CTAs per SM.
      for (int w : {8, 12}) want.insert(fmt::format("nsa_fwd_sm90a_d512_bh16_bt64_w{}_st3_mma2", w));
      want.insert("nsa_fwd_sm90a_d512_bh32_bt64_w8_st1_mma2");
    }
    CHECK(kept == want);
    // The lazy-max schedule (2-4 KB more shared memory) keeps exactly the same shapes.
    std::set<std::string> want_sx2;
    for (const auto& name : want) want_sx2.insert(name + "_sx2");
    CHECK(kept_sx2 == want_sx2);
    // The panel ring (pr1, on sx2): st1 and st2 wherever at least one extra 8 KB panel slot fits;
    // not bh32 w8 st1 at d512 (two CTAs leave < 8 KB), not st3.
    std::set<std::string> want_pr;
    for (const auto& name : want)
      if (name.find("_st3_") == std::string::npos && name.find("_bh32_bt64_w8_st1_") == std::string::npos)
        want_pr.insert(name + "_sx2_pr1");
    CHECK(kept_pr == want_pr);
    CHECK(kept_pr.size() == 5);
    for (const auto& p : space.pruned) {
      if (!is_mma2(p.variant) || pr_of(p.variant) != 1) continue;
      const int st = p.variant.get("st"), w = p.variant.get("w");
      CAPTURE(p.variant.name());
      CAPTURE(p.reason);
      if (st == 3) {
        CHECK(p.reason.find("st3") != std::string::npos);
      } else if (st == 1 && w == 12) {
        CHECK(p.reason.find("w8 only") != std::string::npos);
      } else {
        CHECK(st == 1);
        CHECK((p.reason.find("panel slot") != std::string::npos ||
               p.reason.find("two CTAs per SM") != std::string::npos));
      }
    }
    for (const auto& name : kept_pr) {
      const Variant back = variant_from_name(name);
      CHECK(back.name() == name);
      CHECK(back.knobs.size() == 7);
      CHECK(back.knobs[5].name == "sx");
      CHECK(back.knobs[6].name == "pr");
    }
    int pruned = 0;
    for (const auto& p : space.pruned) {
      if (!is_mma2(p.variant) || sx_of(p.variant) != 1) continue;
      ++pruned;
      const int st = p.variant.get("st"), w = p.variant.get("w");
      if (st == 1 && w == 12) {
        CHECK_MESSAGE(p.reason.find("w8 only") != std::string::npos, p.variant.name() << ": " << p.reason);
      } else if (st == 1) {
        CHECK_MESSAGE(p.reason.find("two CTAs per SM") != std::string::npos, p.variant.name()
                                                                                 << ": " << p.reason);
      } else {
        CHECK(st == 3);
        CHECK_MESSAGE(p.reason.find("shared memory") != std::string::npos, p.variant.name()
                                                                               << ": " << p.reason);
      }
    }
    CHECK(pruned + static_cast<int>(kept.size()) == 12);
    for (const auto& name : kept) {
      const Variant back = variant_from_name(name);
      CHECK(back.name() == name);
      CHECK(back.get("mma") == 2);
      CHECK(back.knobs.size() == 5);
    }
    for (const auto& name : kept_sx2) {
      const Variant back = variant_from_name(name);
      CHECK(back.name() == name);
      CHECK(back.knobs.size() == 6);
      CHECK(back.get("sx") == 2);
    }
  }
}

TEST_CASE("transposed_wgmma_variant_renders_its_template_with_the_combine_kernel") {
  const auto& family = kernel_family(Family::sparse_mla_fwd);
  for (int w : {8, 12}) {
    const Variant v = variant_from_name(fmt::format("nsa_fwd_sm90a_d576_bh16_bt64_w{}_st2_mma2", w));
    const RenderedSource r = family.render(v);
    REQUIRE(r.kernel_names.size() == 2);
    CHECK(r.kernel_names[0] == v.name());
    CHECK(r.kernel_names[1] == v.name() + "_combine");
    CHECK(r.source.find("#include \"sparse_mla_fwd/sm90_wgmma_t.cuh\"") != std::string::npos);
    CHECK(r.source.find(fmt::format("sparse_mla_fwd_sm90_wgmma_t<576, 16, 64, {}, 2>(p)", w)) !=
          std::string::npos);
    CHECK(r.source.find(fmt::format("__launch_bounds__({}, 1) {}(", w * 32, v.name())) != std::string::npos);
    CHECK(r.source.find("sparse_mla_combine(p)") != std::string::npos);
  }
  // One kv stage: two CTAs per SM, so the launch bounds ask for 2 blocks (128 registers).
  CHECK(family.render(variant_from_name("nsa_fwd_sm90a_d576_bh16_bt64_w8_st1_mma2"))
            .source.find("__launch_bounds__(256, 2) nsa_fwd_sm90a_d576_bh16_bt64_w8_st1_mma2(") !=
        std::string::npos);
  CHECK(family.render(variant_from_name("nsa_fwd_sm90a_d512_bh32_bt64_w12_st2_mma2"))
            .source.find("sparse_mla_fwd_sm90_wgmma_t<512, 32, 64, 12, 2>(p)") != std::string::npos);
  // The lazy-max schedule: the template's last argument, same launch bounds.
  const RenderedSource sx2 = family.render(variant_from_name("nsa_fwd_sm90a_d576_bh16_bt64_w8_st1_mma2_sx2"));
  CHECK(sx2.source.find("sparse_mla_fwd_sm90_wgmma_t<576, 16, 64, 8, 1, 2>(p)") != std::string::npos);
  CHECK(sx2.source.find("__launch_bounds__(256, 2) nsa_fwd_sm90a_d576_bh16_bt64_w8_st1_mma2_sx2(") !=
        std::string::npos);
  // Shapes the template does not have are refused, not rendered.
  for (const char* name :
       {"nsa_fwd_sm90a_d576_bh64_bt64_w8_st2_mma2", "nsa_fwd_sm90a_d576_bh16_bt32_w8_st2_mma2",
        "nsa_fwd_sm90a_d576_bh16_bt64_w4_st2_mma2", "nsa_fwd_sm90a_d576_bh16_bt64_w8_st3_mma2",
        "nsa_fwd_sm90a_d576_bh16_bt64_w8_st2_mma3", "nsa_fwd_sm90a_d576_bh16_bt64_w8_st2_mma2_ws2",
        "nsa_fwd_sm90a_d576_bh16_bt64_w12_st1_mma2", "nsa_fwd_sm90a_d576_bh32_bt64_w8_st1_mma2",
        "nsa_fwd_sm90a_d576_bh16_bt64_w8_st2_mma2_sx3", "nsa_fwd_sm90a_d576_bh16_bt64_w8_st2_mma2_sx1",
        "nsa_fwd_sm90a_d576_bh16_bt64_w8_st2_mma2_sx2_ws2", "nsa_fwd_sm90a_d576_bh32_bt64_w8_st1_mma2_sx2"})
    CHECK_THROWS_AS((void)family.render(variant_from_name(name)), Error);
}

TEST_CASE("transposed_wgmma_plan_uses_its_own_block_and_shared_memory") {
  SparseMlaProblem pr;
  pr.d_qk = 576;
  pr.params.batch = 1;
  pr.params.s_q = 7;
  pr.params.h_q = 20;  // the second head block is partly masked
  pr.params.topk = 2048;
  pr.params.split_len = 2048;
  pr.params.num_splits = 1;
  for (int bh : {16, 32})
    for (int w : {8, 12}) {
      const Variant v = variant_from_name(fmt::format("nsa_fwd_sm90a_d576_bh{}_bt64_w{}_st2_mma2", bh, w));
      const SparseMlaLaunch one = plan_sparse_mla(pr, v, 1, nullptr);
      CHECK(one.block.x == static_cast<unsigned>(w * 32));
      CHECK(one.shared_bytes ==
            static_cast<unsigned>(nsa_sparse_mla_wgmma_t_layout(576, bh, 64, w, 2).smem_bytes));
      CHECK(one.grid.x == 7);
      CHECK(one.grid.y == (bh == 16 ? 2u : 1u));
      CHECK(one.grid.z == 1);
      CHECK(!one.needs_combine);
      float workspace = 0.f;  // only its address is planned with
      const SparseMlaLaunch four = plan_sparse_mla(pr, v, 4, &workspace);
      CHECK(four.grid.z == 4);
      CHECK(four.params.split_len == 512);
      CHECK(four.needs_combine);
    }
  // sx 2 plans with its own (larger) shared memory, same block.
  const Variant sx2 = variant_from_name("nsa_fwd_sm90a_d576_bh16_bt64_w8_st1_mma2_sx2");
  const SparseMlaLaunch lazy = plan_sparse_mla(pr, sx2, 1, nullptr);
  CHECK(lazy.block.x == 256u);
  CHECK(lazy.shared_bytes ==
        static_cast<unsigned>(nsa_sparse_mla_wgmma_t_layout(576, 16, 64, 8, 1, 2).smem_bytes));
  CHECK(lazy.shared_bytes >
        static_cast<unsigned>(nsa_sparse_mla_wgmma_t_layout(576, 16, 64, 8, 1).smem_bytes));
  // pr 1 plans with the ring's shared memory (two extra panel slots at bh16 st1 d576), same block.
  const Variant ring = variant_from_name("nsa_fwd_sm90a_d576_bh16_bt64_w8_st1_mma2_sx2_pr1");
  const SparseMlaLaunch rl = plan_sparse_mla(pr, ring, 1, nullptr);
  CHECK(rl.block.x == 256u);
  CHECK(rl.shared_bytes ==
        static_cast<unsigned>(nsa_sparse_mla_wgmma_t_layout(576, 16, 64, 8, 1, 2, 1).smem_bytes));
  CHECK(rl.shared_bytes == lazy.shared_bytes + 2 * 8192 + 64 * 4 + 2 * 11 * 8 - 4 * 8);
}

TEST_CASE("transposed_wgmma_panel_ring_layout") {
  // Without the ring the slots are the stages' panels at the same addresses as before.
  for (int d : {576, 512})
    for (int st : {1, 2, 3}) {
      const NsaSparseMlaWgmmaTLayout l = nsa_sparse_mla_wgmma_t_layout(d, 16, 64, 8, st, 2);
      CHECK(l.pr == 0);
      CHECK(l.slots == st * d / 64);
      CHECK(l.slots * l.panel_bytes == st * l.kv_stage_bytes);
      CHECK(l.flag_bufs == st);
      CHECK(l.barriers == 4 * st);
    }
  struct Want {
    int d, bh, w, st, slots;
  };
  // The extra slots: d576 bh16 st1 two (2 x (115440 + 1024) <= 233472), d512 bh16 st1 three; the
  // one-CTA st2 shapes up to 227 KB per block.
  for (const Want& c :
       {Want{576, 16, 8, 1, 11}, Want{512, 16, 8, 1, 11}, Want{576, 16, 8, 2, 25}, Want{576, 16, 12, 2, 24},
        Want{576, 32, 8, 2, 22}, Want{576, 32, 12, 2, 21}, Want{512, 16, 8, 2, 23}, Want{512, 16, 12, 2, 23},
        Want{512, 32, 8, 2, 22}, Want{512, 32, 12, 2, 21}, Want{512, 32, 8, 1, 8}}) {
    const NsaSparseMlaWgmmaTLayout l = nsa_sparse_mla_wgmma_t_layout(c.d, c.bh, 64, c.w, c.st, 2, 1);
    CAPTURE(c.d);
    CAPTURE(c.bh);
    CAPTURE(c.w);
    CAPTURE(c.st);
    CHECK(l.pr == 1);
    CHECK(l.slots == c.slots);
    CHECK(l.ring_extra == c.slots - c.st * l.panels);
    CHECK(l.ring_extra < l.panels);  // a tile wraps the ring at most once
    CHECK(l.panel_bytes == 8192);
    CHECK(l.kv_off % 1024 == 0);
    CHECK(l.p_off == l.kv_off + l.slots * 8192);
    CHECK(l.p_off % 1024 == 0);
    CHECK(l.barriers == 2 * l.slots);
    CHECK(l.bar_off % 8 == 0);
    // One flag buffer per tile the producer can be ahead of the oldest unread flags.
    CHECK(l.flag_bufs == (l.slots + l.panels - 1) / l.panels);
    CHECK(l.flag_bufs * l.panels >= l.slots);
    CHECK(l.merge_bytes <= l.slots * l.panel_bytes);
    CHECK(nsa_sparse_mla_wgmma_t_fits(l));
    // ... and one more slot would not fit (or would be a whole extra tile).
    if (l.ring_extra + 1 < l.panels)
      CHECK(!nsa_sparse_mla_wgmma_t_fits(
          nsa_sparse_mla_wgmma_t_layout_slots(c.d, c.bh, 64, c.w, c.st, 2, l.ring_extra + 1)));
    if (c.st == 1) CHECK(2 * (l.smem_bytes + 1024) <= 228 * 1024);
  }
  // The ring's slot of panel j of tile t, and the parity of its barriers, as the kernel computes
  // them (TileSlots: first = (t P) % R, one wrap at most per tile), against the plain formula; the
  // producer's running slot / parity walk gives the same sequence.
  for (int panels : {9, 8})
    for (int slots : {panels + 2, panels + 3, 2 * panels + 3}) {
      int ring_slot = 0, ring_ph = 0;
      for (int t = 0; t < 50; ++t) {
        const int first = t * panels % slots;
        const int ph0 = (t * panels / slots) & 1;
        for (int j = 0; j < panels; ++j) {
          const int g = t * panels + j;
          const int slot = first + j - (first + j >= slots ? slots : 0);
          const int ph = ph0 ^ (first + j >= slots ? 1 : 0);
          CHECK(slot == g % slots);
          CHECK(ph == ((g / slots) & 1));
          CHECK(ring_slot == slot);
          CHECK(ring_ph == ph);
          if (++ring_slot == slots) {
            ring_slot = 0;
            ring_ph ^= 1;
          }
        }
      }
    }
}

TEST_CASE("transposed_wgmma_layout_keeps_operands_1024_byte_aligned_and_fits") {
  for (int d : {576, 512})
    for (int bh : {16, 32})
      for (int w : {8, 12})
        for (int st : {1, 2, 3}) {
          const NsaSparseMlaWgmmaTLayout l = nsa_sparse_mla_wgmma_t_layout(d, bh, 64, w, st);
          CAPTURE(d);
          CAPTURE(bh);
          CAPTURE(w);
          CAPTURE(st);
          CHECK(l.threads == w * 32);
          CHECK(l.math_wgs == w / 4 - 1);
          CHECK(l.acc_registers == (bh == 16 ? 64 : 128));
          CHECK(l.q_off == 0);
          CHECK(l.kv_off >= l.q_bytes);
          for (int i = 0; i < st; ++i) CHECK((l.kv_off + i * l.kv_stage_bytes) % 1024 == 0);
          CHECK(l.p_off % 1024 == 0);
          CHECK(l.p_off >= l.kv_off + st * l.kv_stage_bytes);
          CHECK(l.valid_off >= l.p_off + l.math_wgs * l.p_bytes);
          CHECK(l.bar_off % 8 == 0);
          CHECK(l.smem_bytes == l.bar_off + st * 4 * 8 + 1024);
          // The second warpgroup's O^T is handed over in the kv stages.
          CHECK(l.merge_bytes <= st * l.kv_stage_bytes);
          // A Q panel (bh rows of 128 bytes) starts on a swizzle atom.
          CHECK((bh * 128) % 1024 == 0);
        }
  CHECK(nsa_sparse_mla_wgmma_t_layout(576, 16, 64, 8, 2).smem_bytes <= 227 * 1024);
  CHECK(nsa_sparse_mla_wgmma_t_layout(576, 32, 64, 12, 2).smem_bytes <= 227 * 1024);
  CHECK(nsa_sparse_mla_wgmma_t_layout(576, 16, 64, 8, 3).smem_bytes > 227 * 1024);
  // st1: two CTAs (and their 1 KB reservations) share the 228 KB of an SM.
  CHECK(2 * (nsa_sparse_mla_wgmma_t_layout(576, 16, 64, 8, 1).smem_bytes + 1024) <= 228 * 1024);
  CHECK(2 * (nsa_sparse_mla_wgmma_t_layout(512, 32, 64, 8, 1).smem_bytes + 1024) <= 228 * 1024);
  // sx 2: a second P buffer per math warpgroup and the per-warp true maxima; two CTAs still fit.
  for (int d : {576, 512})
    for (int bh : {16, 32})
      for (int w : {8, 12})
        for (int st = 1; st <= 3; ++st) {
          const auto a = nsa_sparse_mla_wgmma_t_layout(d, bh, 64, w, st);
          const auto b = nsa_sparse_mla_wgmma_t_layout(d, bh, 64, w, st, 2);
          CHECK(a.p_bufs == 1);
          CHECK(b.p_bufs == 2);
          CHECK(b.p_off == a.p_off);
          CHECK(b.valid_off == b.p_off + 2 * b.math_wgs * ((b.p_bytes + 1023) / 1024 * 1024));
          CHECK(b.bar_off == b.fin_off + b.math_wgs * 9 * bh * 4);
          CHECK(b.smem_bytes - a.smem_bytes ==
                b.math_wgs * (((bh * 64 * 2 + 1023) / 1024 * 1024) + 4 * bh * 4));
        }
  CHECK(2 * (nsa_sparse_mla_wgmma_t_layout(576, 16, 64, 8, 1, 2).smem_bytes + 1024) <= 228 * 1024);
  CHECK(2 * (nsa_sparse_mla_wgmma_t_layout(512, 32, 64, 8, 1, 2).smem_bytes + 1024) <= 228 * 1024);
}

TEST_CASE("stmatrix_trans_addressing_puts_every_p_element_at_its_k_major_place_once") {
  // S^T accumulator (m64 x bh): warp w, lane t holds rows (tokens) 16 w + t / 4 + 8 h and
  // columns (heads) 8 jj + 2 (t % 4) + e in register 4 jj + 2 h + e. The kernel stores it with
  // stmatrix.x4.trans: x4 number q, matrix i = (column block 2 q + i / 2, token half i % 2);
  // lane 8 i + j gives the address of memory row j = head 8 (2 q + i / 2) + j, chunk 2 w + i % 2.
  // .trans: element (row r, column c) of matrix i (held by lane 4 r + c / 2, half c % 2 of its
  // register i) lands at memory row c's address + 2 r bytes.
  for (int bh : {16, 32}) {
    std::set<int> written;
    for (int w = 0; w < 4; ++w)
      for (int q = 0; q < bh / 16; ++q)
        for (int i = 0; i < 4; ++i)
          for (int r = 0; r < 8; ++r)
            for (int c = 0; c < 8; ++c) {
              const int holder = 4 * r + c / 2, e = c % 2;
              // What the holder's register i carries, per the accumulator layout.
              const int jj = 2 * q + i / 2, h = i % 2;
              const int token = 16 * w + holder / 4 + 8 * h;
              const int head = 8 * jj + 2 * (holder % 4) + e;
              // Where the addressing lane (8 i + c) points.
              const int addr_head = 8 * (2 * q + i / 2) + c;
              const int addr_chunk = 2 * w + i % 2;
              const int addr = nsa_sw128_offset(addr_head, addr_chunk) + 2 * r;
              // The K-major P panel: head row, token column.
              CHECK(addr == nsa_sw128_offset(head, token / 8) + 2 * (token % 8));
              written.insert(addr);
            }
    CHECK(static_cast<int>(written.size()) == bh * 64);
  }
}

}  // namespace nsajit

namespace nsajit {
TEST_CASE("topk_splits_fill_every_resident_slot_in_one_wave") {
  // 132 SMs, topk 2048, 64-row tiles (32 tiles: at most 16 splits of >= 2 tiles).
  // One CTA per SM: as many splits as fit one wave (s_q 32 at h_q 16: 4 splits, 128 CTAs).
  CHECK(choose_topk_splits(32, 132, 2048, 64) == 4);
  CHECK(choose_topk_splits(64, 132, 2048, 64) == 2);
  CHECK(choose_topk_splits(66, 132, 2048, 64) == 2);
  CHECK(choose_topk_splits(67, 132, 2048, 64) == 1);
  CHECK(choose_topk_splits(128, 132, 2048, 64) == 1);
  CHECK(choose_topk_splits(132, 132, 2048, 64) == 1);
  CHECK(choose_topk_splits(1, 132, 2048, 64) == 16);
  // Two CTAs per SM: as many splits as fit 264 slots in one wave.
  CHECK(choose_topk_splits(32, 132, 2048, 64, 2) == 8);
  CHECK(choose_topk_splits(128, 132, 2048, 64, 2) == 2);
  CHECK(choose_topk_splits(200, 132, 2048, 64, 2) == 1);
  CHECK(choose_topk_splits(264, 132, 2048, 64, 2) == 1);
  CHECK(choose_topk_splits(8, 132, 2048, 64, 2) == 16);  // capped at 2 tiles per split
  // The decode regime (a rule's decode entry serves the call): fewer CTAs than slots.
  CHECK(sparse_mla_grid_leaves_sms_idle(32, 132, 1));
  CHECK(sparse_mla_grid_leaves_sms_idle(131, 132, 1));
  CHECK_FALSE(sparse_mla_grid_leaves_sms_idle(132, 132, 1));
  CHECK(sparse_mla_grid_leaves_sms_idle(263, 132, 2));
  CHECK_FALSE(sparse_mla_grid_leaves_sms_idle(264, 132, 2));
  CHECK_FALSE(sparse_mla_grid_leaves_sms_idle(0, 132, 1));
  // Which variants are resident twice: the st1 transposed kernel (96 KB, 256 threads) is; the
  // 64-head warp-specialised kernel (~200 KB) is not.
  CHECK(sparse_mla_blocks_per_sm(variant_from_name("nsa_fwd_sm90a_d576_bh16_bt64_w8_st1_mma2_sx2")) == 2);
  CHECK(sparse_mla_blocks_per_sm(variant_from_name("nsa_fwd_sm90a_d576_bh64_bt64_w12_st2_mma1")) == 1);
  CHECK(sparse_mla_blocks_per_sm(variant_from_name("nsa_fwd_sm90a_d576_bh32_bt64_w12_st2_mma2_sx2")) == 1);
}

}  // namespace nsajit
