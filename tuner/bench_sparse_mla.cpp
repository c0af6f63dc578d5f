#include "tuner/bench_sparse_mla.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "runtime/error.hpp"
#include "runtime/sparse_mla_runner.hpp"
#include "runtime/tensor_view.hpp"
#include "templates/bench/bench_random.h"

namespace nsajit {
namespace {

constexpr std::string_view kWhere = "tuner/bench_sparse_mla";
constexpr int kDv = 512;

std::size_t bytes_of(long long elements, std::size_t size) {
  return std::max<std::size_t>(16, static_cast<std::size_t>(elements) * size);
}

// Time between the hold kernel's start and the first timed run: enough to queue every run.
std::uint64_t hold_ns(int reps) {
  return 2'000'000ull + 30'000ull * static_cast<std::uint64_t>(std::max(0, reps));
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned>(static_cast<unsigned char>(c)));
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// JSON has no inf/NaN: those become null.
std::string json_number(double v) {
  return std::isfinite(v) ? fmt::format("{:.6g}", v) : "null";
}

}  // namespace

// ---------------------------------------------------------------- shapes
std::string BenchShape::label() const {
  return fmt::format("s_q={} h_q={} topk={} s_kv={} d={}", s_q, h_q, topk, s_kv, d_qk);
}

double BenchShape::flops() const {
  return 2.0 * static_cast<double>(s_q) * h_q * topk * (d_qk + kDv);
}

double BenchShape::gathered_bytes() const {
  return static_cast<double>(s_q) * topk * d_qk * 2.0;
}

std::vector<BenchShape> standard_bench_shapes() {
  std::vector<BenchShape> shapes;
  for (long long s_q : {1024LL, 4096LL, 16384LL})
    for (int h_q : {16, 32, 64, 128}) shapes.push_back({s_q, h_q, 2048, 32768, 576});
  for (long long s_q : {1LL, 8LL, 32LL, 128LL})
    for (int h_q : {16, 128}) shapes.push_back({s_q, h_q, 2048, 65536, 576});
  for (int h_q : {16, 128}) shapes.push_back({4096, h_q, 2048, 262144, 576});
  return shapes;
}

TimingOptions BenchOptions::timing(BenchKernels& kernels) const {
  TimingOptions t;
  t.warmup = warmup;
  t.reps = reps;
  if (hold) {
    const std::uint64_t ns = hold_ns(reps);
    t.hold = [&kernels, ns](void* stream) { kernels.spin(ns, stream); };
  }
  return t;
}

// ---------------------------------------------------------------- inputs
SparseMlaBenchInputs::SparseMlaBenchInputs(BenchKernels& kernels, const BenchShape& shape, int index_sets,
                                           std::uint64_t seed, void* stream)
    : device_(kernels.device()), shape_(shape), sets_(index_sets) {
  const BenchShape& s = shape;
  if (index_sets < 1 || s.s_q < 1 || s.h_q < 1 || s.topk < 1 || s.topk > s.s_kv ||
      s.s_q > std::numeric_limits<int>::max())
    fail(ErrorCode::invalid_argument, "allocating bench inputs for " + s.label(), std::string(kWhere),
         fmt::format(
             "need index_sets >= 1, s_q in [1, 2^31), h_q >= 1 and 1 <= topk <= s_kv (distinct indices); "
             "got index_sets {}",
             index_sets));
  const long long S = s.s_q, H = s.h_q, D = s.d_qk, K = s.topk, KV = s.s_kv;
  q_ = device_.allocate(bytes_of(S * H * D, 2));
  kv_ = device_.allocate(bytes_of(KV * D, 2));
  idx_ = device_.allocate(bytes_of(index_sets * S * K, 4));
  out_ = device_.allocate(bytes_of(S * H * kDv, 2));
  max_logits_ = device_.allocate(bytes_of(S * H, 4));
  lse_ = device_.allocate(bytes_of(S * H, 4));

  kernels.fill_bf16(q_.get(), S * H * D, seed, NSA_BENCH_STREAM_Q, stream);
  kernels.fill_bf16(kv_.get(), KV * D, seed, NSA_BENCH_STREAM_KV, stream);
  for (int set = 0; set < index_sets; ++set)
    kernels.fill_indices(idx_.as<int>() + set * S * K, S, K, s.topk, s.s_kv,
                         seed + static_cast<std::uint64_t>(set), stream);
  device_.synchronize();

  for (int set = 0; set < index_sets; ++set) {
    nsajit_sparse_mla_args a{};
    a.q = make_tensor(q_.get(), NSAJIT_DTYPE_BF16, {S, H, D}, {H * D, D, 1});
    a.kv = make_tensor(kv_.get(), NSAJIT_DTYPE_BF16, {KV, 1, D}, {D, D, 1});
    a.indices = make_tensor(const_cast<int*>(indices(set)), NSAJIT_DTYPE_INT32, {S, 1, K}, {K, K, 1});
    a.out = make_tensor(out_.get(), NSAJIT_DTYPE_BF16, {S, H, kDv}, {H * kDv, kDv, 1});
    a.max_logits = make_tensor(max_logits_.get(), NSAJIT_DTYPE_FP32, {S, H}, {H, 1});
    a.lse = make_tensor(lse_.get(), NSAJIT_DTYPE_FP32, {S, H}, {H, 1});
    a.sm_scale = 1.0f / std::sqrt(static_cast<float>(D));
    a.d_v = kDv;
    problems_.push_back(validate_sparse_mla(a));
  }
}

const int* SparseMlaBenchInputs::indices(int set) const {
  if (set < 0 || set >= sets_)
    fail(ErrorCode::invalid_argument, "reading bench indices", std::string(kWhere),
         fmt::format("no index set {}", set));
  return idx_.as<int>() + static_cast<long long>(set) * shape_.s_q * shape_.topk;
}

void* SparseMlaBenchInputs::workspace(std::size_t bytes) {
  if (bytes == 0) return nullptr;
  if (workspace_.bytes() < bytes) workspace_ = device_.allocate(bytes);
  return workspace_.get();
}

// ---------------------------------------------------------------- timing
int dispatcher_splits(const Variant& variant, const BenchShape& shape, int multiprocessors) {
  const int bh = variant.get("bh"), bt = variant.get("bt");
  const long long ctas = shape.s_q * ((shape.h_q + bh - 1) / bh);
  return choose_topk_splits(ctas, multiprocessors, shape.topk, bt, sparse_mla_blocks_per_sm(variant));
}

TimingStats time_sparse_mla(LoadedVariant& loaded, SparseMlaBenchInputs& inputs, int splits,
                            const TimingOptions& timing, void* stream, bool with_combine) {
  std::vector<SparseMlaLaunch> plans;
  for (int set = 0; set < inputs.index_sets(); ++set) {
    const SparseMlaProblem& problem = inputs.problem(set);
    void* ws = inputs.workspace(sparse_mla_workspace_bytes(problem, splits));
    plans.push_back(plan_sparse_mla(problem, loaded.variant, splits, ws));
    plans.back().needs_combine = plans.back().needs_combine && with_combine;
  }
  Device& device = inputs.device();
  return time_launches(device, stream, timing, [&](int rep) {
    launch_sparse_mla(device, loaded, plans[static_cast<std::size_t>(rep) % plans.size()], stream);
  });
}

double time_sparse_mla(Device& device, LoadedVariant& loaded, const BenchShape& shape, int splits, int warmup,
                       int reps) {
  const std::string& arch = device.info().arch;
  const Compiler* compiler = backend_for_arch(arch).compiler_for(arch);
  if (compiler == nullptr)
    fail(ErrorCode::unavailable, "compiling the bench kernels", std::string(kWhere),
         "no compiler for " + arch + ": " + backend_for_arch(arch).compiler_unavailable_reason());
  BenchKernels kernels(device, *compiler);
  auto stream = device.create_stream();
  SparseMlaBenchInputs inputs(kernels, shape, 1, BenchOptions{}.seed, stream->native());
  BenchOptions o;
  o.warmup = warmup;
  o.reps = reps;
  return time_sparse_mla(loaded, inputs, splits, o.timing(kernels), stream->native()).median_ms;
}

GatherFloorResult time_gather_floor(BenchKernels& kernels, SparseMlaBenchInputs& inputs,
                                    const TimingOptions& timing, void* stream) {
  Device& device = inputs.device();
  const BenchShape& s = inputs.shape();
  const int splits = gather_floor_splits(s.s_q, s.topk, s.d_qk, device.info().multiprocessors);
  DeviceMemory out = device.allocate(static_cast<std::size_t>(s.s_q) * static_cast<std::size_t>(splits) * 4);
  GatherFloorResult best;
  bool have = false;
  for (const GatherFloorConfig& config : gather_floor_configs(s.d_qk)) {
    const TimingStats t = time_launches(device, stream, timing, [&](int rep) {
      const int set = rep % inputs.index_sets();
      kernels.gather(config, inputs.kv(), s.d_qk, s.s_kv, inputs.indices(set), s.topk, s.s_q, s.topk, splits,
                     out.as<unsigned>(), stream);
    });
    if (!have || t.median_ms < best.stats.median_ms) {
      best = GatherFloorResult{t, config, splits};
      have = true;
    }
  }
  return best;
}

MmaPeakResult measure_mma_peak(BenchKernels& kernels, const TimingOptions& timing, void* stream) {
  Device& device = kernels.device();
  MmaPeakResult r;
  r.blocks = 4LL * std::max(1, device.info().multiprocessors);  // 1024 threads per SM, one wave
  r.iterations = 8192;
  DeviceMemory out = device.allocate(static_cast<std::size_t>(r.blocks) * kMmaPeakBlock * sizeof(float));
  const TimingStats t = time_launches(device, stream, timing, [&](int rep) {
    kernels.mma_peak(r.blocks, r.iterations, 0x9e3779b9u + static_cast<unsigned>(rep), out.as<float>(),
                     stream);
  });
  r.ms = t.median_ms;
  r.flops = mma_peak_flops(r.blocks, r.iterations);
  r.tflops = r.ms > 0 ? r.flops / (r.ms * 1e-3) / 1e12 : 0.0;
  return r;
}

// ---------------------------------------------------------------- rows
BenchRow make_bench_row(const BenchShape& shape, const std::string& variant, int splits,
                        const TimingStats& kernel, double floor_ms, const std::string& floor_kernel,
                        double peak_tflops) {
  BenchRow r;
  r.shape = shape;
  r.variant = variant;
  r.splits = splits;
  r.kernel = kernel;
  const double sec = kernel.median_ms * 1e-3;
  r.tflops = sec > 0 ? shape.flops() / sec / 1e12 : 0.0;
  r.gathered_gbps = sec > 0 ? shape.gathered_bytes() / sec / 1e9 : 0.0;
  r.floor_ms = floor_ms;
  r.floor_kernel = floor_kernel;
  r.floor_fraction = kernel.median_ms > 0 ? floor_ms / kernel.median_ms : 0.0;
  r.peak_tflops = peak_tflops;
  r.peak_fraction = peak_tflops > 0 ? r.tflops / peak_tflops : 0.0;
  return r;
}

BenchRow bench_sparse_mla_shape(BenchKernels& kernels, LoadedVariant& loaded, const BenchShape& shape,
                                const MmaPeakResult& peak, const BenchOptions& options, void* stream) {
  Device& device = kernels.device();
  SparseMlaBenchInputs inputs(kernels, shape, options.index_sets, options.seed, stream);
  const int splits = dispatcher_splits(loaded.variant, shape, device.info().multiprocessors);
  const TimingOptions timing = options.timing(kernels);
  const TimingStats kernel = time_sparse_mla(loaded, inputs, splits, timing, stream);
  const int planned_splits =
      plan_sparse_mla(inputs.problem(0), loaded.variant, splits,
                      inputs.workspace(sparse_mla_workspace_bytes(inputs.problem(0), splits)))
          .params.num_splits;
  const GatherFloorResult floor = time_gather_floor(kernels, inputs, timing, stream);
  return make_bench_row(shape, loaded.variant.name(), planned_splits, kernel, floor.stats.median_ms,
                        fmt::format("{} x{}", floor.config.kernel_name(), floor.splits), peak.tflops);
}

// ---------------------------------------------------------------- output
std::string format_bench_table(const std::vector<BenchRow>& rows, const BenchContext& c) {
  std::string t = fmt::format("sparse_mla_fwd bench on {}: mma.sync peak {:.1f} TFLOP/s ({:.3f} ms)\n",
                              c.device, c.mma_peak.tflops, c.mma_peak.ms);
  t += fmt::format("{:>6} {:>4} {:>5} {:>7} {:>4} {:>6} {:>9} {:>8} {:>8} {:>9} {:>8} {:>8}  {}\n", "s_q",
                   "h_q", "topk", "s_kv", "d", "splits", "median_ms", "TFLOP/s", "GB/s", "floor_ms",
                   "of_floor", "of_peak", "variant");
  for (const BenchRow& r : rows)
    t += fmt::format(
        "{:>6} {:>4} {:>5} {:>7} {:>4} {:>6} {:>9.4f} {:>8.1f} {:>8.0f} {:>9.4f} {:>8.3f} {:>8.3f}  {}\n",
        r.shape.s_q, r.shape.h_q, r.shape.topk, r.shape.s_kv, r.shape.d_qk, r.splits, r.kernel.median_ms,
        r.tflops, r.gathered_gbps, r.floor_ms, r.floor_fraction, r.peak_fraction, r.variant);
  t += "of_floor = gather-only floor time / kernel time; of_peak = kernel TFLOP/s / mma.sync peak; "
       "median of each timed batch, same run, same device\n";
  return t;
}

std::string bench_rows_json(const std::vector<BenchRow>& rows, const BenchContext& c) {
  std::string j =
      fmt::format("{{\"device\": {}, \"mma_sync_peak_tflops\": {}, \"mma_sync_peak_ms\": {}, \"rows\": [",
                  json_string(c.device), json_number(c.mma_peak.tflops), json_number(c.mma_peak.ms));
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const BenchRow& r = rows[i];
    j += fmt::format(
        "{}{{\"s_q\": {}, \"h_q\": {}, \"topk\": {}, \"s_kv\": {}, \"d_qk\": {}, \"variant\": {}, "
        "\"splits\": {}, "
        "\"median_ms\": {}, \"min_ms\": {}, \"max_ms\": {}, \"reps\": {}, \"tflops\": {}, \"gathered_gbps\": "
        "{}, "
        "\"gather_floor_ms\": {}, \"gather_floor_kernel\": {}, \"fraction_of_gather_floor\": {}, "
        "\"fraction_of_mma_peak\": {}}}",
        i == 0 ? "" : ", ", r.shape.s_q, r.shape.h_q, r.shape.topk, r.shape.s_kv, r.shape.d_qk,
        json_string(r.variant), r.splits, json_number(r.kernel.median_ms), json_number(r.kernel.min_ms),
        json_number(r.kernel.max_ms), r.kernel.reps, json_number(r.tflops), json_number(r.gathered_gbps),
        json_number(r.floor_ms), json_string(r.floor_kernel), json_number(r.floor_fraction),
        json_number(r.peak_fraction));
  }
  return j + "]}\n";
}

}  // namespace nsajit
