// `nsa-tune bench` for sparse_mla_fwd (DESIGN.md §5): inputs generated on the device, the
// kernel timed with events, and the two ceilings measured in the same run on the same device
// - the gather-only floor on the same indices and kv, and the mma.sync peak - then one table
// row per shape (text and JSON). The bench does not check correctness (tuner/sparse_mla_check).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/backend.hpp"
#include "runtime/loaded_variant.hpp"
#include "runtime/sparse_mla_launch.hpp"
#include "tuner/bench_kernels.hpp"
#include "tuner/timing.hpp"

namespace nsajit {

struct BenchShape {
  long long s_q = 4096;
  int h_q = 16;
  int topk = 2048;
  int s_kv = 32768;
  int d_qk = 576;
  [[nodiscard]] std::string label() const;      // "s_q=4096 h_q=16 topk=2048 s_kv=32768 d=576"
  [[nodiscard]] double flops() const;           // 2 * s_q * h_q * topk * (d_qk + 512)
  [[nodiscard]] double gathered_bytes() const;  // s_q * topk * d_qk * 2
  friend bool operator==(const BenchShape&, const BenchShape&) = default;
};

// DESIGN.md §5 / issue 6: prefill (topk 2048, s_kv 32768, s_q {1024, 4096, 16384} x h_q
// {16, 32, 64, 128}), decode (s_q {1, 8, 32, 128} x h_q {16, 128}, s_kv 65536) and the HBM
// case (s_kv 262144, s_q 4096, h_q {16, 128}). 22 shapes, d_qk 576.
[[nodiscard]] std::vector<BenchShape> standard_bench_shapes();

struct BenchOptions {
  int warmup = 5;
  int reps = 30;  // >= 20 (DESIGN.md §5)
  // Index sets rotated between runs (kernel and floor alike). The s_kv 32768 kv (38 MB)
  // stays in the 50 MB L2 whatever we do - so does a serving engine's, within one layer;
  // rotating indices keeps the decode shapes (s_kv 65536, 75 MB of kv) from re-reading the
  // same 2.4 MB of rows out of L2 on every run.
  int index_sets = 4;
  std::uint64_t seed = 0x6e73612d62656e63ull;
  bool hold = true;  // queue each timed batch behind a spin kernel (no launch gaps)
  [[nodiscard]] TimingOptions timing(BenchKernels& kernels) const;
};

// Device inputs of one shape, allocated and filled once, then shared by any number of
// variants and the gather floor: q [s_q, h_q, d_qk] and kv [s_kv, d_qk] ~ normal(0, 1) bf16,
// `index_sets` x indices [s_q, topk] distinct per row, outputs, and a split workspace.
class SparseMlaBenchInputs {
 public:
  // Synchronises `stream` after the fills. Requires topk <= s_kv (distinct indices).
  SparseMlaBenchInputs(BenchKernels& kernels, const BenchShape& shape, int index_sets, std::uint64_t seed,
                       void* stream);

  [[nodiscard]] Device& device() const { return device_; }
  [[nodiscard]] const BenchShape& shape() const { return shape_; }
  [[nodiscard]] int index_sets() const { return sets_; }
  // The validated call reading index set `set` (as the runtime would build it).
  [[nodiscard]] const SparseMlaProblem& problem(int set) const {
    return problems_.at(static_cast<std::size_t>(set));
  }
  [[nodiscard]] const void* kv() const { return kv_.get(); }
  [[nodiscard]] const int* indices(int set) const;
  // A workspace of at least `bytes` (allocated on first need, grown, never per run).
  [[nodiscard]] void* workspace(std::size_t bytes);

 private:
  Device& device_;
  BenchShape shape_;
  int sets_ = 1;
  DeviceMemory q_, kv_, idx_, out_, max_logits_, lse_, workspace_;
  std::vector<SparseMlaProblem> problems_;
};

// The split count the dispatcher uses for `variant` at `shape` (choose_topk_splits).
[[nodiscard]] int dispatcher_splits(const Variant& variant, const BenchShape& shape, int multiprocessors);

// Times `loaded` (main + combine kernels) on `inputs` with `splits`, rotating index sets.
// `with_combine` false leaves the combine launch out (wrong output; kernel work only: the
// timing report uses it to measure what the combine costs).
[[nodiscard]] TimingStats time_sparse_mla(LoadedVariant& loaded, SparseMlaBenchInputs& inputs, int splits,
                                          const TimingOptions& timing, void* stream,
                                          bool with_combine = true);

// Short form: compiles the bench kernels, allocates and fills one index set, times, frees.
// Prefer SparseMlaBenchInputs when timing many variants on one shape.
[[nodiscard]] double time_sparse_mla(Device& device, LoadedVariant& loaded, const BenchShape& shape,
                                     int splits, int warmup, int reps);

struct GatherFloorResult {
  TimingStats stats;  // of the fastest config
  GatherFloorConfig config;
  int splits = 1;
};

// The gather-only floor of `inputs`: every gather config, the fastest median wins.
[[nodiscard]] GatherFloorResult time_gather_floor(BenchKernels& kernels, SparseMlaBenchInputs& inputs,
                                                  const TimingOptions& timing, void* stream);

struct MmaPeakResult {
  double ms = 0, flops = 0, tflops = 0;
  long long blocks = 0;
  int iterations = 0;
};

// The mma.sync m16n8k16 bf16 ceiling (4 blocks of 256 threads per multiprocessor).
[[nodiscard]] MmaPeakResult measure_mma_peak(BenchKernels& kernels, const TimingOptions& timing,
                                             void* stream);

struct BenchRow {
  BenchShape shape;
  std::string variant;
  int splits = 1;
  TimingStats kernel;
  double tflops = 0;
  double gathered_gbps = 0;  // gathered bytes / median time, GB/s (1e9)
  double floor_ms = 0;
  std::string floor_kernel;
  double floor_fraction = 0;  // floor_ms / median ms (1 = as fast as the gather alone)
  double peak_tflops = 0;
  double peak_fraction = 0;  // tflops / peak_tflops
};

// The derived columns of a row from its measurements.
[[nodiscard]] BenchRow make_bench_row(const BenchShape& shape, const std::string& variant, int splits,
                                      const TimingStats& kernel, double floor_ms,
                                      const std::string& floor_kernel, double peak_tflops);

// One shape end to end: inputs, kernel (dispatcher split rule), gather floor, row; frees the
// inputs before it returns (the largest standard shape holds ~5 GB).
[[nodiscard]] BenchRow bench_sparse_mla_shape(BenchKernels& kernels, LoadedVariant& loaded,
                                              const BenchShape& shape, const MmaPeakResult& peak,
                                              const BenchOptions& options, void* stream);

struct BenchContext {
  std::string device;  // DeviceInfo::name
  MmaPeakResult mma_peak;
};

// Fixed-width text table, one line per row, with a header naming the device and the peak.
[[nodiscard]] std::string format_bench_table(const std::vector<BenchRow>& rows, const BenchContext& context);
// {"device": .., "mma_sync_peak_tflops": .., "rows": [{..}, ..]}
[[nodiscard]] std::string bench_rows_json(const std::vector<BenchRow>& rows, const BenchContext& context);

}  // namespace nsajit
