// The bench machinery on the GPU: the fills produce exactly the host formulas (and nothing
// past their range), the gather floor's checksum equals a CPU computation over the same rows,
// the mma.sync peak runs real mma and reports a plausible rate, event timing measures a known
// delay, and one small shape goes through the whole bench row.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>

#include "generator/kernel_family.hpp"
#include "generator/target.hpp"
#include "runtime/error.hpp"
#include "templates/bench/bench_random.h"
#include "tests/gpu/gpu_fixture.hpp"
#include "tests/reference/bf16_host.hpp"
#include "tuner/bench_kernels.hpp"
#include "tuner/bench_sparse_mla.hpp"
#include "tuner/compile_pool.hpp"

namespace nsajit {
namespace {

// The bench kernels on the test device, built once; nullptr (with a message) when not NVIDIA.
BenchKernels* bench_kernels() {
  Device& device = test::gpu_device();
  if (device.info().vendor != Vendor::nvidia) {
    MESSAGE("SKIPPED: the bench kernels need an NVIDIA GPU");
    return nullptr;
  }
  static std::unique_ptr<BenchKernels> kernels;
  if (!kernels) {
    const Compiler* compiler = test::gpu_backend().compiler_for(device.info().arch);
    REQUIRE_MESSAGE(compiler != nullptr, test::gpu_backend().compiler_unavailable_reason());
    kernels = std::make_unique<BenchKernels>(device, *compiler);
  }
  return kernels.get();
}

std::uint64_t fresh_seed() {
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}

template <class T>
std::vector<T> download(Device& d, const DeviceMemory& m, std::size_t count) {
  std::vector<T> host(count);
  d.copy_to_host(host.data(), m.get(), count * sizeof(T));
  return host;
}

}  // namespace

TEST_CASE("fill_bf16_writes_the_host_formula_exactly_and_nothing_past_count") {
  BenchKernels* k = bench_kernels();
  if (k == nullptr) return;
  Device& device = k->device();
  auto stream = device.create_stream();
  const std::uint64_t seed = fresh_seed();
  for (long long n : {1LL, 7LL, 8LL, 100003LL, 3LL << 20}) {
    const long long cap = n + 13;
    DeviceMemory m = device.allocate(static_cast<std::size_t>(cap) * 2);
    device.fill_bytes(m.get(), 0xff, static_cast<std::size_t>(cap) * 2);  // 0xffff: a NaN bf16
    device.synchronize();
    k->fill_bf16(m.get(), n, seed, NSA_BENCH_STREAM_KV, stream->native());
    stream->synchronize();
    const auto host = download<std::uint16_t>(device, m, static_cast<std::size_t>(cap));
    const unsigned long long key = nsa_bench_key(seed, NSA_BENCH_STREAM_KV);
    long long wrong = 0, first_wrong = -1;
    for (long long i = 0; i < n; ++i)
      if (host[static_cast<std::size_t>(i)] != reference::float_to_bf16(nsa_bench_value(key, i))) {
        if (wrong++ == 0) first_wrong = i;
      }
    long long past = 0;
    for (long long i = n; i < cap; ++i) past += host[static_cast<std::size_t>(i)] != 0xffff ? 1 : 0;
    CHECK_MESSAGE(wrong == 0, fmt::format("n {}: {} values differ from the host formula, first at {}", n,
                                          wrong, first_wrong));
    CHECK_MESSAGE(past == 0, fmt::format("n {}: {} elements written past count", n, past));
  }
}

TEST_CASE("fill_indices_gives_distinct_in_range_positions_per_row_equal_to_the_host_formula") {
  BenchKernels* k = bench_kernels();
  if (k == nullptr) return;
  Device& device = k->device();
  auto stream = device.create_stream();
  struct Case {
    long long rows, stride;
    int topk, s_kv;
  };
  const std::uint64_t seed = fresh_seed();
  for (const Case c : {Case{37, 1003, 1000, 1000}, Case{64, 300, 300, 30030}, Case{3, 1, 1, 1},
                       Case{5, 2050, 2048, 65536}, Case{2, 4096, 4096, 4096}}) {
    const std::size_t count = static_cast<std::size_t>(c.rows * c.stride);
    DeviceMemory m = device.allocate(count * 4);
    device.fill_bytes(m.get(), 0xff, count * 4);  // -1
    device.synchronize();
    k->fill_indices(m.as<int>(), c.rows, c.stride, c.topk, c.s_kv, seed, stream->native());
    stream->synchronize();
    const auto host = download<int>(device, m, count);
    const unsigned long long key = nsa_bench_key(seed, NSA_BENCH_STREAM_INDICES);
    int bad_rows = 0;
    for (long long r = 0; r < c.rows; ++r) {
      std::vector<bool> seen(static_cast<std::size_t>(c.s_kv), false);
      const NsaBenchIndexRow row = nsa_bench_index_row(key, r, c.s_kv);
      bool ok = true;
      for (int t = 0; t < c.topk; ++t) {
        const int v = host[static_cast<std::size_t>(r * c.stride + t)];
        ok = ok && v >= 0 && v < c.s_kv && !seen[static_cast<std::size_t>(v)] &&
             v == nsa_bench_index(row, t, c.s_kv);
        if (v >= 0 && v < c.s_kv) seen[static_cast<std::size_t>(v)] = true;
      }
      for (long long t = c.topk; t < c.stride; ++t)
        ok = ok && host[static_cast<std::size_t>(r * c.stride + t)] == -1;
      bad_rows += ok ? 0 : 1;
    }
    CHECK_MESSAGE(bad_rows == 0,
                  fmt::format("rows {} topk {} s_kv {}: {} bad rows", c.rows, c.topk, c.s_kv, bad_rows));
  }
  CHECK_THROWS_AS(k->fill_indices(nullptr, 1, 10, 10, 5, 1, stream->native()), Error);  // topk > s_kv
}

TEST_CASE("gather_floor_checksum_equals_the_cpu_xor_of_the_same_rows") {
  BenchKernels* k = bench_kernels();
  if (k == nullptr) return;
  Device& device = k->device();
  auto stream = device.create_stream();
  const std::uint64_t seed = fresh_seed();
  std::mt19937_64 rng(seed);
  const int s_kv = 3000, kv_stride = 640, topk = 333, rows = 7, idx_stride = topk + 3;

  DeviceMemory kv = device.allocate(static_cast<std::size_t>(s_kv) * kv_stride * 2);
  k->fill_bf16(kv.get(), static_cast<long long>(s_kv) * kv_stride, seed, NSA_BENCH_STREAM_KV,
               stream->native());
  stream->synchronize();
  const auto kv_host = download<std::uint16_t>(device, kv, static_cast<std::size_t>(s_kv) * kv_stride);

  // Distinct random rows, ~10 % invalid (-1 or >= s_kv, skipped), the last query row all invalid.
  std::vector<int> idx(static_cast<std::size_t>(rows) * idx_stride, 0x7fffffff);
  std::vector<int> perm(s_kv);
  std::iota(perm.begin(), perm.end(), 0);
  for (int r = 0; r < rows; ++r) {
    std::shuffle(perm.begin(), perm.end(), rng);
    for (int t = 0; t < topk; ++t) {
      int v = perm[static_cast<std::size_t>(t)];
      if (rng() % 10 == 0 || r == rows - 1) v = rng() % 2 ? -1 : s_kv + static_cast<int>(rng() % 100);
      idx[static_cast<std::size_t>(r) * idx_stride + t] = v;
    }
  }
  DeviceMemory idx_dev = device.allocate(idx.size() * 4);
  device.copy_to_device(idx_dev.get(), idx.data(), idx.size() * 4);

  auto chunk_xor = [&](int kv_row, int chunk) {
    unsigned x = 0;
    for (int j = 0; j < 4; ++j) {
      const std::size_t e =
          static_cast<std::size_t>(kv_row) * kv_stride + static_cast<std::size_t>(chunk) * 8 + 2 * j;
      x ^= static_cast<unsigned>(kv_host[e]) | (static_cast<unsigned>(kv_host[e + 1]) << 16);
    }
    return x;
  };
  int checked = 0;
  for (int d : {576, 512}) {
    const int chunks = d / 8, total = topk * chunks;
    for (const GatherFloorConfig& config : gather_floor_configs(d)) {
      for (int splits : {1, 3, gather_floor_splits(rows, topk, d, device.info().multiprocessors), 1000}) {
        DeviceMemory out = device.allocate(static_cast<std::size_t>(rows) * splits * 4);
        device.fill_bytes(out.get(), 0xab, static_cast<std::size_t>(rows) * splits * 4);
        device.synchronize();
        k->gather(config, kv.get(), kv_stride, s_kv, idx_dev.as<int>(), idx_stride, rows, topk, splits,
                  out.as<unsigned>(), stream->native());
        stream->synchronize();
        const auto got = download<unsigned>(device, out, static_cast<std::size_t>(rows) * splits);
        int wrong = 0;
        const int per = (total + splits - 1) / splits;
        for (int r = 0; r < rows; ++r)
          for (int s = 0; s < splits; ++s) {
            unsigned want = 0;
            for (int c = s * per; c < std::min(total, (s + 1) * per); ++c) {
              const int v = idx[static_cast<std::size_t>(r) * idx_stride + c / chunks];
              if (v >= 0 && v < s_kv) want ^= chunk_xor(v, c % chunks);
            }
            wrong += got[static_cast<std::size_t>(r) * splits + s] != want ? 1 : 0;
          }
        CHECK_MESSAGE(wrong == 0, fmt::format("{} splits {}: {} of {} partial checksums wrong",
                                              config.kernel_name(), splits, wrong, rows * splits));
        ++checked;
      }
    }
  }
  CHECK(checked == 2 * static_cast<int>(gather_floor_configs(576).size()) * 4);
}

TEST_CASE("mma_peak_runs_real_mma_and_reports_a_plausible_rate") {
  BenchKernels* k = bench_kernels();
  if (k == nullptr) return;
  Device& device = k->device();
  auto stream = device.create_stream();
  // Operands are bf16 in [1, 2): each accumulator ends in [16 it, 64 it), a thread's sum of its
  // kMmaPeakChains * 4 accumulators in [64 chains it, 256 chains it).
  const int blocks = 3, iterations = 16;
  const std::size_t n = static_cast<std::size_t>(blocks) * kMmaPeakBlock;
  DeviceMemory out = device.allocate(n * 4);
  device.fill_bytes(out.get(), 0xff, n * 4);  // NaN
  device.synchronize();
  k->mma_peak(blocks, iterations, 12345u, out.as<float>(), stream->native());
  stream->synchronize();
  const auto got = download<float>(device, out, n);
  const float lo = 64.0f * kMmaPeakChains * iterations, hi = 256.0f * kMmaPeakChains * iterations;
  int outside = 0;
  for (float v : got) outside += (v >= lo && v < hi) ? 0 : 1;
  CHECK_MESSAGE(outside == 0,
                fmt::format("{} of {} thread sums outside [{}, {}) (first {})", outside, n, lo, hi, got[0]));

  TimingOptions t;
  t.warmup = 2;
  t.reps = 10;
  const MmaPeakResult peak = measure_mma_peak(*k, t, stream->native());
  MESSAGE(fmt::format("mma.sync peak on {}: {:.1f} TFLOP/s ({:.3f} ms, {} blocks x {} iterations)",
                      device.info().name, peak.tflops, peak.ms, peak.blocks, peak.iterations));
  CHECK(peak.flops == mma_peak_flops(peak.blocks, peak.iterations));
  CHECK(peak.tflops > 50.0);
  CHECK(peak.tflops < 5000.0);
}

TEST_CASE("event_timing_measures_a_known_delay") {
  BenchKernels* k = bench_kernels();
  if (k == nullptr) return;
  Device& device = k->device();
  auto stream = device.create_stream();
  TimingOptions t;
  t.warmup = 1;
  t.reps = 7;
  t.hold = [&](void* s) { k->spin(2'000'000, s); };
  const TimingStats s =
      time_launches(device, stream->native(), t, [&](int) { k->spin(300'000, stream->native()); });
  MESSAGE(
      fmt::format("spin 0.3 ms: median {:.4f} min {:.4f} max {:.4f} ms", s.median_ms, s.min_ms, s.max_ms));
  CHECK(s.samples_ms.size() == 7);
  CHECK(s.min_ms >= 0.299);
  CHECK(s.median_ms < 1.0);
}

TEST_CASE("bench_of_small_shapes_gives_positive_times_and_consistent_rows") {
  BenchKernels* k = bench_kernels();
  if (k == nullptr) return;
  Device& device = k->device();
  auto stream = device.create_stream();
  const Compiler* compiler = test::gpu_backend().compiler_for(device.info().arch);
  REQUIRE(compiler != nullptr);
  const Variant v = kernel_family(Family::sparse_mla_fwd)
                        .default_variant(target_from_arch(device.info().arch), Geometry{576, 512});
  auto compiled = compile_variants(*compiler, {v});
  REQUIRE_MESSAGE(compiled[0].ok(), compiled[0].error);
  auto loaded = load_variant(device, v, compiled[0].result->binary, compiled[0].rendered.kernel_names);

  TimingOptions t;
  t.warmup = 1;
  t.reps = 5;
  const MmaPeakResult peak = measure_mma_peak(*k, t, stream->native());
  BenchOptions o;
  o.warmup = 2;
  o.reps = 5;
  o.index_sets = 2;
  o.seed = fresh_seed();

  // Index set 1 of the inputs is the host formula with seed + 1 (rotation really rotates).
  const BenchShape small{64, 16, 256, 4096, 576};
  {
    SparseMlaBenchInputs in(*k, small, 2, o.seed, stream->native());
    std::vector<int> got(static_cast<std::size_t>(small.s_q * small.topk));
    device.copy_to_host(got.data(), in.indices(1), got.size() * 4);
    const unsigned long long key = nsa_bench_key(o.seed + 1, NSA_BENCH_STREAM_INDICES);
    int wrong = 0;
    for (long long r = 0; r < small.s_q; ++r) {
      const NsaBenchIndexRow row = nsa_bench_index_row(key, r, small.s_kv);
      for (int i = 0; i < small.topk; ++i)
        wrong +=
            got[static_cast<std::size_t>(r * small.topk + i)] != nsa_bench_index(row, i, small.s_kv) ? 1 : 0;
    }
    CHECK(wrong == 0);
    CHECK(in.problem(1).params.indices == in.indices(1));
    CHECK(in.problem(0).params.topk == 256);
  }

  std::vector<BenchRow> rows;
  for (const BenchShape& shape :
       {small, BenchShape{1, 16, 2048, 8192, 576}, BenchShape{2, 128, 2048, 8192, 576}}) {
    const BenchRow r = bench_sparse_mla_shape(*k, *loaded, shape, peak, o, stream->native());
    CHECK(r.kernel.median_ms > 0);
    CHECK(r.kernel.reps == 5);
    CHECK(r.floor_ms > 0);
    CHECK(r.floor_fraction > 0);
    CHECK(r.tflops == doctest::Approx(shape.flops() / (r.kernel.median_ms * 1e-3) / 1e12));
    CHECK(r.peak_fraction == doctest::Approx(r.tflops / peak.tflops));
    CHECK(r.variant == v.name());
    rows.push_back(r);
  }
  for (const BenchRow& r : rows) {  // the dispatcher's rule: split only when the grid leaves SMs idle
    const int asked = dispatcher_splits(v, r.shape, device.info().multiprocessors);
    CHECK(r.splits <= asked);  // the plan rounds to whole tiles per split, which can drop one
    CHECK((r.splits > 1) == (asked > 1));
  }
  CHECK(rows[1].splits >
        1);  // one CTA alone would leave the multiprocessors idle: the dispatcher splits topk
  MESSAGE("\n" << format_bench_table(rows, BenchContext{device.info().name, peak}));

  const double ms = time_sparse_mla(device, *loaded, small, 1, 2, 5);
  CHECK(ms > 0);
}

}  // namespace nsajit
