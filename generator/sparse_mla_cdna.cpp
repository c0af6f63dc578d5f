// sparse_mla_fwd on AMD CDNA: the variant space of templates/sparse_mla_fwd/cdna.h with pruning
// rules that state their reason, and the renderer. The LDS and register arithmetic comes from
// templates/sparse_mla_fwd/cdna_layout.h, the same constexpr code the template asserts on.
#include "generator/sparse_mla_cdna.hpp"

#include <fmt/format.h>

#include <string>

#include "runtime/error.hpp"
#include "templates/sparse_mla_fwd/cdna_layout.h"

namespace nsajit {
namespace {

constexpr int kBlockH[] = {16, 32, 64, 128};
constexpr int kBlockTopk[] = {32, 64, 128};
constexpr int kWaves[] = {4, 8};
constexpr int kStages[] = {1, 2};

// Register rule, calibrated on the compiled code objects of every LDS-fitting variant (hipRTC 5.2
// gfx90a, clang-19 gfx90a and gfx942). The estimate counts what stays live across the tile loop
// (Q fragments, O accumulator, S accumulator, the staged chunk); the compilers add 100-200
// registers of hoisted LDS addresses and temporaries on top. A lane may use 512 / (waves / 4)
// unified registers (4 waves: one wave per SIMD, 256 arch VGPRs + 256 AGPRs; 8 waves: 256 in
// all). Measured: with 4 waves, estimates <= 184 never spilled and >= 208 always spilled (to
// AGPRs, then scratch); with 8 waves, <= 136 never spilled and 144-152 spilled under hipRTC.
int max_live_registers(int waves) {
  return waves <= 4 ? 200 : 136;
}

Variant make_variant(const Target& t, const Geometry& g, int bh, int bt, int w, int st) {
  return Variant{Family::sparse_mla_fwd, t, g, {{"bh", bh}, {"bt", bt}, {"w", w}, {"st", st}}};
}

// Registers that stay live across the tile loop, per lane.
int live_registers(const NsaSparseMlaCdnaLayout& l) {
  return l.q_regs + l.s_regs + l.o_regs + l.stage_regs;
}

// Empty when the variant is buildable on this target; otherwise why not.
std::string prune_reason(const Target& t, const Geometry& g, int bh, int bt, int w, int st) {
  const NsaSparseMlaCdnaLayout l = nsa_sparse_mla_cdna_layout(g.d_qk, bh, bt, w, st);
  if (const char* shape = nsa_sparse_mla_cdna_shape_error(l); shape[0] != '\0')
    return fmt::format("shape: {}", shape);
  if (l.lds_bytes > t.max_shared_bytes)
    return fmt::format("LDS {} B > {} B per workgroup (kv chunks {} x {} B, S/P {} B, rest {} B)",
                       l.lds_bytes, t.max_shared_bytes, st, l.kv_bytes / st, l.sp_bytes,
                       l.idx_bytes + l.stat_bytes);
  if (const int live = live_registers(l); live > max_live_registers(w))
    return fmt::format(
        "registers: {} live per lane (Q {}, O accumulator {}, S {}, staged chunk {}) > {}: spills to "
        "scratch; "
        "more waves or a smaller bh needed",
        live, l.q_regs, l.o_regs, l.s_regs, l.stage_regs, max_live_registers(w), w);
  return {};
}

void check_variant(const Variant& v) {
  const auto bad = [&](const std::string& why) {
    fail(ErrorCode::invalid_argument, "rendering " + v.name(), "generator/sparse_mla_cdna", why);
  };
  if (v.target.vendor != Vendor::amd || !v.target.has_mfma)
    bad(fmt::format("target {} has no MFMA", v.target.arch));
  if (v.knobs.size() != 4 || v.knobs[0].name != "bh" || v.knobs[1].name != "bt" || v.knobs[2].name != "w" ||
      v.knobs[3].name != "st")
    bad("a CDNA sparse_mla_fwd variant has exactly the knobs bh, bt, w, st in that order");
  const int bh = v.get("bh"), bt = v.get("bt"), w = v.get("w"), st = v.get("st");
  const auto in = [](int x, const auto& set) {
    for (int s : set)
      if (s == x) return true;
    return false;
  };
  if (!in(bh, kBlockH) || !in(bt, kBlockTopk) || !in(w, kWaves) || !in(st, kStages))
    bad("knob value outside the space (bh 16..128, bt 32..128, w 4|8, st 1|2)");
  if (std::string why = prune_reason(v.target, v.geometry, bh, bt, w, st); !why.empty())
    bad("pruned: " + why);
}

}  // namespace

VariantSpace sparse_mla_cdna_space(const Target& target, const Geometry& geometry) {
  VariantSpace s;
  for (int bh : kBlockH)
    for (int bt : kBlockTopk)
      for (int w : kWaves)
        for (int st : kStages) {
          Variant v = make_variant(target, geometry, bh, bt, w, st);
          if (std::string why = prune_reason(target, geometry, bh, bt, w, st); why.empty()) {
            s.kept.push_back(std::move(v));
          } else {
            s.pruned.push_back({std::move(v), std::move(why)});
          }
        }
  return s;
}

RenderedSource sparse_mla_cdna_render(const Variant& v) {
  check_variant(v);
  const std::string name = v.name();
  const int w = v.get("w");
  RenderedSource r;
  r.kernel_names = {name, name + "_combine"};
  r.options = {"-O3", "-std=c++17"};
  r.source = fmt::format(
      "// {name}: rendered by nsa-jit from templates/sparse_mla_fwd/cdna.h\n"
      "// launch: block {threads} threads, no dynamic LDS; grid (batch * s_q, ceil(h_q / {bh}), num_splits)\n"
      "#include \"sparse_mla_fwd/cdna.h\"\n\n"
      "extern \"C\" __global__ void __launch_bounds__({threads}) {name}(const NsaSparseMlaParams p) {{\n"
      "  nsajit::sparse_mla_fwd_cdna<{d}, {bh}, {bt}, {w}, {st}>(p);\n"
      "}}\n\n"
      "// launch: block 128 threads; grid (batch * s_q, h_q)\n"
      "extern \"C\" __global__ void __launch_bounds__(128) {name}_combine(const NsaSparseMlaParams p) {{\n"
      "  nsajit::sparse_mla_combine_cdna(p);\n"
      "}}\n",
      fmt::arg("name", name), fmt::arg("threads", w * 64), fmt::arg("d", v.geometry.d_qk),
      fmt::arg("bh", v.get("bh")), fmt::arg("bt", v.get("bt")), fmt::arg("w", w),
      fmt::arg("st", v.get("st")));
  return r;
}

Variant sparse_mla_cdna_default(const Target& target, const Geometry& geometry) {
  // 16 heads (no padding at h_q 16, the TP-8 case), 64-row tiles, one wave per SIMD, and two
  // LDS chunk buffers so a step needs a single barrier.
  Variant v = make_variant(target, geometry, 16, 64, 4, 2);
  check_variant(v);
  return v;
}

}  // namespace nsajit
