// sparse_mla_fwd: the variant space (BLOCK_TOPK x BLOCK_H x warps x stages) with pruning,
// and the renderer. NVIDIA variants instantiate templates/sparse_mla_fwd/sm90.cuh; AMD
// variants are delegated to generator/sparse_mla_cdna.*.
#include <fmt/format.h>

#include <iterator>

#include "generator/kernel_family.hpp"
#include "generator/sparse_mla_cdna.hpp"
#include "runtime/error.hpp"
#include "templates/sparse_mla_fwd/layout.h"
#include "templates/sparse_mla_fwd/wgmma_layout.h"

namespace nsajit {
namespace {

constexpr int kBlockTopk[] = {32, 64, 128};
constexpr int kBlockH[] = {16, 32, 64, 128};
constexpr int kWarps[] = {4, 8};
constexpr int kStages[] = {1, 2, 3, 4};
constexpr int kMaxAccumulatorRegisters = 128;  // leaves room for S, fragments and addresses

Variant make_variant(const Target& t, const Geometry& g, int bh, int bt, int w, int st) {
  return Variant{Family::sparse_mla_fwd, t, g, {{"bh", bh}, {"bt", bt}, {"w", w}, {"st", st}}};
}

// Empty when the NVIDIA variant is buildable; otherwise why not.
std::string nvidia_prune_reason(const Target& t, const Geometry& g, int bh, int bt, int w, int st) {
  const NsaSparseMlaLayout l = nsa_sparse_mla_layout(g.d_qk, bh, bt, w, st);
  if (st < 2) return "stages 1: the kernel gathers tile i+1 while computing tile i, so it needs >= 2 stages";
  if (l.acc_registers > kMaxAccumulatorRegisters)
    return fmt::format(
        "registers: the O accumulator needs {} fp32 registers per thread (> {}); more warps needed",
        l.acc_registers, kMaxAccumulatorRegisters);
  if (l.cn < 8)
    return fmt::format("shape: {} tile columns over {} warps leaves {} (< 8) per warp", bt, l.wn, l.cn);
  if (l.smem_bytes > t.max_shared_bytes)
    return fmt::format("shared memory {} B > {} B per block", l.smem_bytes, t.max_shared_bytes);
  return {};
}

// ---- bulk-gather mma.sync variants: knob "g" = 1, appended last so the v2 (gather 0) variants
// keep their names. One cp.async.bulk per kv row on a per-stage mbarrier, no barrier at the
// top of a tile (sm90.cuh). For the gather-bound head counts only, and only with the d-split S
// (the next tile is issued after the partial-S barrier).
constexpr int kBulkBlockH[] = {16, 32};
constexpr int kBulkBlockTopk[] = {32, 64};
constexpr int kBulkStages[] = {2, 3, 4};

Variant make_bulk_variant(const Target& t, const Geometry& g, int bh, int bt, int w, int st) {
  return Variant{Family::sparse_mla_fwd, t, g, {{"bh", bh}, {"bt", bt}, {"w", w}, {"st", st}, {"g", 1}}};
}

int gather_knob(const Variant& v) {
  return v.get_or("g", 0);
}

std::string bulk_prune_reason(const Target& t, const Geometry& g, int bh, int bt, int w, int st) {
  if (std::string why = nvidia_prune_reason(t, g, bh, bt, w, st); !why.empty()) return why;
  const NsaSparseMlaLayout l = nsa_sparse_mla_layout(g.d_qk, bh, bt, w, st, 1);
  if (l.ks < 2)
    return "gather 1: the next tile is issued after the partial-S barrier, so S must be split along d";
  return {};
}

// ---- wgmma variants: knob "mma" = 1, appended last so the mma.sync variants keep their
// names. 64 heads per CTA. w 8: sm90_wgmma.cuh (two math warpgroups, all gather);
// w 12: sm90_wgmma_ws.cuh (two ping-pong math warpgroups + a producer warpgroup). A w12
// variant may carry a last knob "ws" = the ping-pong schedule (absent: 1, the v2 kernel;
// 2: v3 block order, L2 hints, earlier V release, staged output; 3: the block order, the earlier
// release, the staged output and the output rescaled before the odd tile's P is waited for;
// 4: 3 without the earlier release), same layout and launch.
constexpr int kWgmmaBlockTopk[] = {32, 64, 128};
constexpr int kWgmmaStages[] = {2, 3};
constexpr int kWgmmaWarps[] = {8, 12};
constexpr int kWgmmaWsSchedules[] = {1, 2, 3, 4};

int wgmma_schedule(const Variant& v) {
  return v.get_or("ws", 1);
}

// The "mma" knob: absent or 0 = mma.sync, 1 = wgmma with 64 heads as M, 2 = transposed wgmma.
int mma_knob(const Variant& v) {
  return v.get_or("mma", 0);
}

bool is_wgmma_variant(const Variant& v) {
  return mma_knob(v) == 1;
}

Variant make_wgmma_variant(const Target& t, const Geometry& g, int bt, int w, int st, int ws = 1) {
  Variant v{Family::sparse_mla_fwd, t, g, {{"bh", 64}, {"bt", bt}, {"w", w}, {"st", st}, {"mma", 1}}};
  if (ws != 1) v.knobs.push_back({"ws", ws});
  return v;
}

std::string wgmma_prune_reason(const Target& t, const Geometry& g, int bh, int bt, int w, int st,
                               int ws = 1) {
  if (!t.has_wgmma) return "wgmma: the target has no warpgroup tensor-core instructions";
  if (ws != 1 && (w != 12 || ws < 2 || ws > 4))
    return fmt::format("wgmma: schedule ws{} does not exist (w12 has schedules 1-4, w8 only 1)", ws);
  if (bh != 64 || (w != 8 && w != 12))
    return "wgmma: the kernel is built for 64 heads and 8 warps (two math warpgroups) or 12 (plus a "
           "producer)";
  if (bt != 64)
    return fmt::format(
        "wgmma: S is one m64n64 tile and P one 128-byte swizzle panel, so bt must be 64, not {}", bt);
  if (st < 2) return "stages 1: the kernel gathers tile i+1 while computing tile i, so it needs >= 2 stages";
  if (w == 12 && st != 2)
    return "wgmma w12: the ping-pong kernel has exactly two kv buffers (even and odd tile)";
  if (ws == 2)
    return "wgmma w12 ws2: its illegal instruction (an L2-hinted zero-fill cp.async, fixed in "
           "cp_async_16_l2hint) is gone, and so is the cause of its failing sweep case (the staged output "
           "raced the Q copies of a row with no tile; fixed for ws3), but it was slower than ws1 (H100: "
           "3.18 vs 2.63 ms at h_q 64) and its L2 hints did not help ws3 (session 6); kept out "
           "(docs/perf-log.md)";
  const NsaSparseMlaWgmmaLayout l = nsa_sparse_mla_wgmma_layout(g.d_qk, bh, bt, w, st);
  if (l.smem_bytes > t.max_shared_bytes)
    return fmt::format("shared memory {} B > {} B per block", l.smem_bytes, t.max_shared_bytes);
  return {};
}

// ---- transposed wgmma variants (sm90_wgmma_t.cuh): knob "mma" = 2, for h_q <= 32. The kv tile
// is the wgmma M (64 tokens), the head block (16 or 32) its N: S^T = K Q^T, O^T += V^T P^T.
// w 8: one math warpgroup + a producer warpgroup; w 12: two math warpgroups on alternate tiles.
// st 1 (w 8 only): one kv stage, sized for two CTAs per SM that hide each other's gather.
// A last knob "sx" = the softmax schedule (absent: 1, the column max exchanged every tile;
// 2: a lazy max, exchanged only when the warpgroup votes that a score outgrew the reference,
// P double-buffered), same launch, 2-4 KB more shared memory.
// A last knob "pr" = the kv staging (absent: 0, whole stages in two halves; 1: a ring of 8 KB
// panel slots, per-slot ready/free mbarriers, as many extra slots as fit beside the stages, the
// rope panel freed after S^T and the V panels per O^T m-block pair). Enumerated with sx 2 only.
constexpr int kWgmmaTBlockH[] = {16, 32};
constexpr int kWgmmaTSoftmax[] = {1, 2};
constexpr int kWgmmaTWarps[] = {8, 12};
constexpr int kWgmmaTStages[] = {1, 2, 3};
constexpr int kWgmmaTRing[] = {0, 1};
constexpr int kSm90SharedPerSm = kNsaSm90SharedPerSm;  // of which 1 KB per resident CTA is reserved

int softmax_schedule(const Variant& v) {
  return v.get_or("sx", 1);
}

int ring_staging(const Variant& v) {
  return v.get_or("pr", 0);
}

Variant make_wgmma_t_variant(const Target& t, const Geometry& g, int bh, int w, int st, int sx = 1,
                             int pr = 0) {
  Variant v{Family::sparse_mla_fwd, t, g, {{"bh", bh}, {"bt", 64}, {"w", w}, {"st", st}, {"mma", 2}}};
  if (sx != 1) v.knobs.push_back({"sx", sx});
  if (pr != 0) v.knobs.push_back({"pr", pr});
  return v;
}

std::string wgmma_t_prune_reason(const Target& t, const Geometry& g, int bh, int bt, int w, int st,
                                 int sx = 1, int pr = 0) {
  if (!t.has_wgmma) return "wgmma: the target has no warpgroup tensor-core instructions";
  if (bh != 16 && bh != 32)
    return fmt::format("wgmma mma2: the head block is the wgmma N, 16 or 32, not {}", bh);
  if (bt != 64) return fmt::format("wgmma mma2: the kv tile is the wgmma M, so bt must be 64, not {}", bt);
  if (w != 8 && w != 12)
    return "wgmma mma2: 8 warps (one math warpgroup + producer) or 12 (two math warpgroups + producer)";
  if (st < 1 || st > 4) return "wgmma mma2: 1-4 kv stages";
  if (st == 1 && w != 8)
    return "wgmma mma2 st1: two math warpgroups on one kv stage would take turns (st1 is w8 only)";
  if (sx != 1 && sx != 2)
    return fmt::format("wgmma mma2: softmax schedule sx{} does not exist (1 every tile, 2 lazy)", sx);
  if (pr != 0 && pr != 1)
    return fmt::format("wgmma mma2: kv staging pr{} does not exist (0 stages, 1 panel ring)", pr);
  if (pr == 1 && sx != 2)
    return "wgmma mma2 pr1: the panel ring is built on the lazy-max softmax (sx2), faster than sx1 at "
           "every measured shape";
  if (pr == 1 && st > 2) return "wgmma mma2 pr1: st3 already holds three tiles; the ring is for st1 / st2";
  const NsaSparseMlaWgmmaTLayout base = nsa_sparse_mla_wgmma_t_layout(g.d_qk, bh, bt, w, st, sx);
  if (base.smem_bytes > t.max_shared_bytes)
    return fmt::format("shared memory {} B > {} B per block", base.smem_bytes, t.max_shared_bytes);
  if (st == 1 && 2 * (base.smem_bytes + 1024) > kSm90SharedPerSm)
    return fmt::format("wgmma mma2 st1: two CTAs per SM need 2 x ({} + 1024) B > {} B of shared memory",
                       base.smem_bytes, kSm90SharedPerSm);
  if (pr == 1) {
    const NsaSparseMlaWgmmaTLayout l = nsa_sparse_mla_wgmma_t_layout(g.d_qk, bh, bt, w, st, sx, pr);
    if (l.ring_extra < 1)
      return fmt::format("wgmma mma2 pr1: not one extra 8 KB panel slot fits beside {} stage(s) ({} B{})", st,
                         base.smem_bytes, st == 1 ? ", two CTAs per SM" : "");
    if (l.smem_bytes > t.max_shared_bytes)
      return fmt::format("shared memory {} B > {} B per block", l.smem_bytes, t.max_shared_bytes);
  }
  return {};
}

void check_geometry(const Geometry& g) {
  if ((g.d_qk != 576 && g.d_qk != 512) || g.d_v != 512)
    fail(ErrorCode::invalid_argument, "building the sparse_mla_fwd space", "generator/sparse_mla_fwd_family",
         fmt::format("geometry d_qk={} d_v={} is not supported (d_qk 576 or 512, d_v 512)", g.d_qk, g.d_v));
}

class SparseMlaFwdFamily final : public KernelFamily {
 public:
  Family family() const noexcept override { return Family::sparse_mla_fwd; }

  VariantSpace space(const Target& t, const Geometry& g) const override {
    check_geometry(g);
    if (t.vendor == Vendor::amd) return sparse_mla_cdna_space(t, g);
    VariantSpace s;
    for (int bh : kBlockH)
      for (int bt : kBlockTopk)
        for (int w : kWarps)
          for (int st : kStages) {
            Variant v = make_variant(t, g, bh, bt, w, st);
            if (std::string why = nvidia_prune_reason(t, g, bh, bt, w, st); why.empty()) {
              s.kept.push_back(std::move(v));
            } else {
              s.pruned.push_back({std::move(v), std::move(why)});
            }
          }
    for (int bh : kBulkBlockH)
      for (int bt : kBulkBlockTopk)
        for (int w : kWarps)
          for (int st : kBulkStages) {
            Variant v = make_bulk_variant(t, g, bh, bt, w, st);
            if (std::string why = bulk_prune_reason(t, g, bh, bt, w, st); why.empty()) {
              s.kept.push_back(std::move(v));
            } else {
              s.pruned.push_back({std::move(v), std::move(why)});
            }
          }
    // w8: bt x stages. w12 has exactly two kv buffers (st 2), so its second axis is the schedule.
    constexpr int kW8Axis = static_cast<int>(std::size(kWgmmaStages));
    constexpr int kW12Axis = static_cast<int>(std::size(kWgmmaWsSchedules));
    for (int w : kWgmmaWarps)
      for (int bt : kWgmmaBlockTopk)
        for (int i = 0; i < (w == 12 ? kW12Axis : kW8Axis); ++i) {
          const int st = w == 12 ? 2 : kWgmmaStages[i];
          const int ws = w == 12 ? kWgmmaWsSchedules[i] : 1;
          Variant v = make_wgmma_variant(t, g, bt, w, st, ws);
          if (std::string why = wgmma_prune_reason(t, g, 64, bt, w, st, ws); why.empty()) {
            s.kept.push_back(std::move(v));
          } else {
            s.pruned.push_back({std::move(v), std::move(why)});
          }
        }
    for (int pr : kWgmmaTRing)
      for (int sx : kWgmmaTSoftmax)
        for (int bh : kWgmmaTBlockH)
          for (int w : kWgmmaTWarps)
            for (int st : kWgmmaTStages) {
              if (pr != 0 && sx != 2) continue;  // the ring only on the lazy-max schedule
              Variant v = make_wgmma_t_variant(t, g, bh, w, st, sx, pr);
              if (std::string why = wgmma_t_prune_reason(t, g, bh, 64, w, st, sx, pr); why.empty()) {
                s.kept.push_back(std::move(v));
              } else {
                s.pruned.push_back({std::move(v), std::move(why)});
              }
            }
    return s;
  }

  RenderedSource render(const Variant& v) const override {
    if (v.family != Family::sparse_mla_fwd)
      fail(ErrorCode::invalid_argument, "rendering " + v.name(), "generator/sparse_mla_fwd_family",
           "not a sparse_mla_fwd variant");
    check_geometry(v.geometry);
    if (v.target.vendor == Vendor::amd) return sparse_mla_cdna_render(v);
    const int bh = v.get("bh"), bt = v.get("bt"), w = v.get("w"), st = v.get("st");
    if (is_wgmma_variant(v)) return render_wgmma(v, bh, bt, w, st);
    if (mma_knob(v) == 2) return render_wgmma_t(v, bh, bt, w, st);
    if (mma_knob(v) != 0)
      fail(ErrorCode::invalid_argument, "rendering " + v.name(), "generator/sparse_mla_fwd_family",
           fmt::format("mma knob mma{} is not 1 (wgmma) or 2 (transposed wgmma)", mma_knob(v)));
    const int gather = gather_knob(v);
    if (gather != 0 && gather != 1)
      fail(ErrorCode::invalid_argument, "rendering " + v.name(), "generator/sparse_mla_fwd_family",
           fmt::format("gather knob g{} is not 0 (cp.async) or 1 (bulk copy)", gather));
    if (std::string why = gather == 1 ? bulk_prune_reason(v.target, v.geometry, bh, bt, w, st)
                                      : nvidia_prune_reason(v.target, v.geometry, bh, bt, w, st);
        !why.empty())
      fail(ErrorCode::invalid_argument, "rendering " + v.name(), "generator/sparse_mla_fwd_family",
           "pruned: " + why);
    return render_sm90(v, "sm90.cuh",
                       fmt::format("sparse_mla_fwd_sm90<{}, {}, {}, {}, {}{}>", v.geometry.d_qk, bh, bt, w,
                                   st, gather == 1 ? ", 1" : ""),
                       w * 32, 1);
  }

  // The translation unit of every NVIDIA variant: the main kernel (one template instantiation
  // from templates/sparse_mla_fwd/<header>) and the split-combine kernel from sm90.cuh.
  static RenderedSource render_sm90(const Variant& v, std::string_view header,
                                    const std::string& instantiation, int threads, int min_blocks) {
    const std::string name = v.name();
    const std::string include =
        header == "sm90.cuh" ? std::string() : fmt::format("#include \"sparse_mla_fwd/{}\"\n", header);
    RenderedSource r;
    r.kernel_names = {name, name + "_combine"};
    r.source = fmt::format(
        "// {name}: rendered by nsa-jit from templates/sparse_mla_fwd/{header}\n"
        "#include \"sparse_mla_fwd/sm90.cuh\"\n"
        "{include}\n"
        "extern \"C\" __global__ void __launch_bounds__({threads}, {blocks}) {name}(const NsaSparseMlaParams "
        "p) "
        "{{\n"
        "  nsajit::pdl_launch_dependents();  // the combine (splits > 1) may queue behind this grid now\n"
        "  nsajit::{instantiation}(p);\n"
        "}}\n\n"
        "extern \"C\" __global__ void __launch_bounds__(128) {name}_combine(const NsaSparseMlaParams p) {{\n"
        "  nsajit::pdl_wait();  // launched as a dependent of the main kernel: wait for its partials\n"
        "  nsajit::sparse_mla_combine(p);\n"
        "}}\n",
        fmt::arg("name", name), fmt::arg("header", header), fmt::arg("include", include),
        fmt::arg("threads", threads), fmt::arg("blocks", min_blocks),
        fmt::arg("instantiation", instantiation));
    return r;
  }

  static RenderedSource render_wgmma(const Variant& v, int bh, int bt, int w, int st) {
    const int ws = wgmma_schedule(v);
    if (std::string why = wgmma_prune_reason(v.target, v.geometry, bh, bt, w, st, ws); !why.empty())
      fail(ErrorCode::invalid_argument, "rendering " + v.name(), "generator/sparse_mla_fwd_family",
           "pruned: " + why);
    const char* header = w == 12 ? "sm90_wgmma_ws.cuh" : "sm90_wgmma.cuh";
    const char* entry = w == 12 ? "sparse_mla_fwd_sm90_wgmma_ws" : "sparse_mla_fwd_sm90_wgmma";
    return render_sm90(v, header,
                       fmt::format("{}<{}, {}, {}, {}, {}{}>", entry, v.geometry.d_qk, bh, bt, w, st,
                                   ws == 1 ? std::string() : fmt::format(", {}", ws)),
                       w * 32, 1);
  }

  static RenderedSource render_wgmma_t(const Variant& v, int bh, int bt, int w, int st) {
    const int sx = softmax_schedule(v), pr = ring_staging(v);
    const std::size_t want_knobs = 5u + (sx != 1 ? 1u : 0u) + (pr != 0 ? 1u : 0u);
    if (v.knobs.size() != want_knobs || (sx != 1 && v.knobs[5].name != "sx") ||
        (pr != 0 && v.knobs.back().name != "pr"))
      fail(ErrorCode::invalid_argument, "rendering " + v.name(), "generator/sparse_mla_fwd_family",
           "a transposed wgmma variant has exactly the knobs bh, bt, w, st, mma and optionally sx (not 1) "
           "and pr (not 0), in that order");
    if (std::string why = wgmma_t_prune_reason(v.target, v.geometry, bh, bt, w, st, sx, pr); !why.empty())
      fail(ErrorCode::invalid_argument, "rendering " + v.name(), "generator/sparse_mla_fwd_family",
           "pruned: " + why);
    const std::string extra = pr != 0   ? fmt::format(", {}, {}", sx, pr)
                              : sx == 1 ? ""
                                        : fmt::format(", {}", sx);
    return render_sm90(v, "sm90_wgmma_t.cuh",
                       fmt::format("sparse_mla_fwd_sm90_wgmma_t<{}, {}, {}, {}, {}{}>", v.geometry.d_qk, bh,
                                   bt, w, st, extra),
                       w * 32, st == 1 ? 2 : 1);
  }

  Variant default_variant(const Target& t, const Geometry& g) const override {
    check_geometry(g);
    if (t.vendor == Vendor::amd) return sparse_mla_cdna_default(t, g);
    return make_variant(t, g, 16, 64, 4, 2);
  }
};

}  // namespace

const KernelFamily& sparse_mla_fwd_family() {
  static const SparseMlaFwdFamily f;
  return f;
}

}  // namespace nsajit
