// The topk_select family: variant space over (t threads, i items per load batch, r radix bits,
// s most blocks per row) with pruning, and a renderer that instantiates
// templates/topk_select/kernel.cuh. Launch geometry lives in runtime/topk_select_launch.cpp.
#include <fmt/format.h>

#include <algorithm>

#include "generator/kernel_family.hpp"
#include "runtime/error.hpp"
#include "runtime/topk_select_launch.hpp"

namespace nsajit {
namespace {

constexpr int kThreads[] = {256, 512, 1024};
constexpr int kItems[] = {4, 8, 16};
constexpr int kRadixBits[] = {8, 11};
constexpr int kMaxSplits[] = {1, 16};
// Stream variants (knob a = 1): i is the float4 loads each thread keeps in flight; one radix
// width (11 bits: sign, exponent and 2 mantissa bits) since the passes run over shared memory.
constexpr int kStreamThreads[] = {256, 512, 1024};
constexpr int kStreamItems[] = {2, 4, 8};
constexpr int kStreamRadixBits = 11;
// Threshold variants (knob a = 2): the stream filter per block, then one global threshold digit
// per split row (templates/topk_select/threshold.cuh). A row of one block runs exactly the
// stream kernel, so only split variants (s 16) exist.
constexpr int kThresholdSplits = 16;
// Cluster variants (knob a = 3, targets with thread-block clusters): a split row's blocks are one
// cluster of at most 8 (the portable size), so s is 8 (templates/topk_select/cluster.cuh).
// Opt-in, not tuned: on the H100 they beat the threshold variants only where two blocks split a
// row (B 64, 0.6 us) and lose 2-3 us where the batch's clusters of 8 do not fit at once (B 16:
// 6 blocks a row, B 1: 8 instead of 16), and the tuner's per-launch timing ranked them first
// while CUDA-graph timing (the benchmark's) did not (docs/perf-log.md, topk_select v8).
constexpr int kClusterSplits = 8;
// Filter variants (knob a = 4): s 16 (the planner splits only long rows of small batches); i
// float4 loads a thread in flight while the previous i are filtered
// (templates/topk_select/filter.cuh).
constexpr int kFilterThreads[] = {512, 1024};
constexpr int kFilterItems[] = {2, 4, 8};
constexpr const char* kClusterOptIn =
    "opt-in: cluster variants are not tuned (slower than a 2 on split rows of 8+ blocks; docs/perf-log.md, "
    "topk_select v8)";

Variant make_variant(const Target& target, int t, int i, int r, int s) {
  return Variant{Family::topk_select, target, Geometry{0, 0}, {{"t", t}, {"i", i}, {"r", r}, {"s", s}}};
}

Variant make_stream_variant(const Target& target, int t, int i, int s, int a = 1) {
  return Variant{Family::topk_select,
                 target,
                 Geometry{0, 0},
                 {{"t", t}, {"i", i}, {"r", kStreamRadixBits}, {"s", s}, {"a", a}}};
}

bool is_stream(const Variant& v) {
  return topk_select_algorithm(v) != TopkAlgorithm::radix;
}

// The device template a variant instantiates: its entry point and the header that defines it.
struct TemplateEntry {
  const char* function;
  const char* header;
};

TemplateEntry template_entry(const Variant& v) {
  switch (topk_select_algorithm(v)) {
    case TopkAlgorithm::stream:
      return {"topk_stream_select", "kernel.cuh"};
    case TopkAlgorithm::threshold:
      return {"topk_threshold_select", "threshold.cuh"};
    case TopkAlgorithm::cluster:
      return {"topk_cluster_select", "cluster.cuh"};
    case TopkAlgorithm::filter:
      return {"topk_filter_select", "filter.cuh"};
    case TopkAlgorithm::radix:
      break;
  }
  return {"topk_select", "kernel.cuh"};
}

// Registers that stay live across a load round: radix keeps i 64-bit composites; stream keeps
// i float4 loads plus the 4 composites being filtered; filter keeps two rounds of i float4.
int registers_needed(const Variant& v) {
  const int i = v.get("i");
  // NVRTC spilled 56 B at t 1024 i 4 (64 registers); nvcc used 78 at t 512 i 4, 128 at i 8.
  if (topk_select_algorithm(v) == TopkAlgorithm::filter) return 12 * i + 24;
  return is_stream(v) ? 4 * i + 8 + 40 : 2 * i + 40;
}

// CDNA limits the generic rules below do not see (empty when none applies). Measured with
// hipRTC 5.2 (gfx90a) and clang-19 (gfx942), every kept variant compiles without spills or
// scratch: at most 110 VGPRs (gfx942 t256 i16; t1024 i16 fits 62 in its 128-VGPR budget),
// 104 B of static LDS (t1024). These rules keep it so if the knob lists grow.
std::string amd_prune_reason(const Variant& v) {
  const Target& target = v.target;
  const int t = v.get("t"), i = v.get("i");
  // A wave has at most 256 arch VGPRs, and a workgroup of t/64 waves spread over the CU's 4
  // SIMDs shares each SIMD's 512 VGPRs per lane; past either bound the compiler spills.
  const int waves_per_simd = (t / target.warp_size + 3) / 4;
  const int vgprs_available = std::min(256, 512 / std::max(waves_per_simd, 1));
  const int vgprs_needed = registers_needed(v);
  if (vgprs_needed > vgprs_available)
    return fmt::format(
        "i {} needs about {} VGPRs, t {} ({} waves per SIMD) leaves {}: it would spill to scratch", i,
        vgprs_needed, t, waves_per_simd, vgprs_available);
  // Static LDS (SelectState, one int per wave, alignment) comes on top of the dynamic buffer,
  // and the two together must fit the workgroup's 64 KB.
  const std::size_t static_lds = 64 + 4 * static_cast<std::size_t>(t / target.warp_size);
  const std::size_t lds = topk_select_min_shared_bytes(v) + static_lds;
  if (lds > static_cast<std::size_t>(target.max_shared_bytes))
    return fmt::format("LDS {} B (k 4096 + histogram + minimal candidate buffer + {} B static) > {} B", lds,
                       static_lds, target.max_shared_bytes);
  return {};
}

// Empty when the variant is kept, else why not.
std::string prune_reason(const Variant& v) {
  const Target& target = v.target;
  const int t = v.get("t"), i = v.get("i");
  if (t > target.max_threads_per_block)
    return fmt::format("t {} > {} threads per block on {}", t, target.max_threads_per_block, target.arch);
  if (t % target.warp_size != 0 || t / target.warp_size > 32)
    return fmt::format("t {} is not 1..32 warps of {}", t, target.warp_size);
  // i loads of 64-bit composites stay live, plus about 40 registers of addressing and state.
  const int registers = registers_needed(v);
  const int registers_available = std::min(target.max_registers_per_thread, target.registers_per_sm / t);
  if (registers > registers_available)
    return fmt::format("i {} needs about {} registers per thread, t {} leaves {}", i, registers, t,
                       registers_available);
  if (target.vendor == Vendor::amd)
    if (std::string why = amd_prune_reason(v); !why.empty()) return why;
  const std::size_t smem = topk_select_min_shared_bytes(v);
  if (smem > static_cast<std::size_t>(target.max_shared_bytes))
    return fmt::format("shared memory {} B (k 4096 + histogram + minimal candidate buffer) > {} B", smem,
                       target.max_shared_bytes);
  return {};
}

class TopkSelectFamily final : public KernelFamily {
 public:
  Family family() const noexcept override { return Family::topk_select; }

  VariantSpace space(const Target& target, const Geometry&) const override {
    VariantSpace out;
    for (int t : kThreads)
      for (int i : kItems)
        for (int r : kRadixBits)
          for (int s : kMaxSplits) {
            Variant v = make_variant(target, t, i, r, s);
            if (std::string why = prune_reason(v); why.empty())
              out.kept.push_back(std::move(v));
            else
              out.pruned.push_back({std::move(v), std::move(why)});
          }
    for (int t : kStreamThreads)
      for (int i : kStreamItems)
        for (int s : kMaxSplits) {
          Variant v = make_stream_variant(target, t, i, s);
          if (std::string why = prune_reason(v); why.empty())
            out.kept.push_back(std::move(v));
          else
            out.pruned.push_back({std::move(v), std::move(why)});
        }
    for (int t : kStreamThreads)
      for (int i : kStreamItems) {
        for (int a : {2, 3}) {
          if (a == 3 && !target.has_clusters) continue;
          Variant v = make_stream_variant(target, t, i, a == 3 ? kClusterSplits : kThresholdSplits, a);
          std::string why = prune_reason(v);
          if (why.empty() && a == 3) why = kClusterOptIn;
          if (why.empty())
            out.kept.push_back(std::move(v));
          else
            out.pruned.push_back({std::move(v), std::move(why)});
        }
      }
    for (int t : kFilterThreads)
      for (int i : kFilterItems) {
        Variant v = make_stream_variant(target, t, i, kThresholdSplits, 4);
        if (std::string why = prune_reason(v); why.empty())
          out.kept.push_back(std::move(v));
        else
          out.pruned.push_back({std::move(v), std::move(why)});
      }
    return out;
  }

  RenderedSource render(const Variant& v) const override {
    check_topk_select_variant(v);
    const std::string name = v.name();
    const TemplateEntry entry = template_entry(v);
    std::string source = fmt::format(
        "// {name}: generated by nsa-jit (generator/topk_select_family.cpp)\n"
        "#include \"topk_select/{header}\"\n\n"
        "extern \"C\" __global__ void __launch_bounds__({t}) {name}(nsa_topk_params p) {{\n"
        "  nsa_topk::{entry}<{t}, {i}, {r}, {w}>(p);\n"
        "}}\n",
        fmt::arg("name", name), fmt::arg("entry", entry.function), fmt::arg("header", entry.header),
        fmt::arg("t", v.get("t")), fmt::arg("i", v.get("i")), fmt::arg("r", v.get("r")),
        fmt::arg("w", v.target.warp_size));
    return RenderedSource{std::move(source), {name}, {"-std=c++17"}};
  }

  // NVIDIA: the filter variant the H100 tunes to (t 1024, 2 float4 a thread in flight, rows
  // split only at small batches; docs/perf-log.md, topk_select v9). CDNA, where no filter kernel
  // has run: the radix passes, 512 threads x 8 items keeping 4096 loads in flight per block at
  // 62 registers; 11-bit digits need 3 passes over the key instead of 4; up to 16 blocks a row.
  Variant default_variant(const Target& target, const Geometry&) const override {
    if (target.vendor == Vendor::nvidia) return make_stream_variant(target, 1024, 2, kThresholdSplits, 4);
    return make_variant(target, 512, 8, 11, 16);
  }
};

}  // namespace

const KernelFamily& topk_select_family() {
  static const TopkSelectFamily f;
  return f;
}

}  // namespace nsajit
