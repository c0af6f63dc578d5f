// The topk_select device template run on the CPU: one std::thread per GPU thread, std::barrier
// for __syncthreads and for the warp-synchronous shuffles and ballots, std::atomic_ref for the
// atomics, blocks one after the other (as a GPU may schedule them). The launch is planned by
// the real planner for a 64-thread variant with a small shared-memory budget, so the stream
// kernel's buffer must shrink many times and rows split into several blocks; every output is
// compared with the CPU reference. Catches logic errors (wrong sets, a barrier not reached by
// every thread = a hang, a workspace not left zeroed) without a GPU; not timing, not memory
// ordering between blocks. The threshold kernel's blocks wait for each other, so its blocks all
// run at once, each with its own shared memory, barrier and warps (it keeps no __shared__
// variables).
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <bit>
#include <cstring>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "runtime/topk_select_launch.hpp"
#include "tests/reference/topk_reference.hpp"
#include "tuner/topk_select_check.hpp"

namespace nsajit_emulation {

struct Index {
  unsigned x;
};
thread_local Index threadIdx;
thread_local Index blockIdx;
struct alignas(16) float4 {
  float x, y, z, w;
};

constexpr std::size_t kSharedEntries = 16384;
struct Warp {
  std::unique_ptr<std::barrier<>> barrier;
  long long lanes[32];
};
struct Block;
// A thread-block cluster: one barrier for all its threads, and its blocks by rank.
struct Cluster {
  std::unique_ptr<std::barrier<>> barrier;
  std::vector<Block*> blocks;
};
// One block's resources; each emulated thread points at its own block's.
struct Block {
  std::vector<unsigned long long> shared = std::vector<unsigned long long>(kSharedEntries);
  std::unique_ptr<std::barrier<>> barrier;
  std::vector<Warp> warps;
  Cluster* cluster = nullptr;  // null: launched without clusters
};
thread_local Block* t_block = nullptr;
thread_local std::optional<std::barrier<>::arrival_token> t_cluster_arrival;

inline void __cluster_barrier_arrive() {
  t_cluster_arrival.emplace(t_block->cluster->barrier->arrive());
}
inline void __cluster_barrier_wait() {
  t_block->cluster->barrier->wait(std::move(*t_cluster_arrival));
  t_cluster_arrival.reset();
}
inline unsigned __clusterSizeInBlocks() {
  return t_block->cluster == nullptr ? 1u : static_cast<unsigned>(t_block->cluster->blocks.size());
}
// The same offset in block `rank`'s shared memory.
inline void* __cluster_map_shared_rank(const void* ptr, unsigned rank) {
  const auto offset = static_cast<const char*>(ptr) - reinterpret_cast<const char*>(t_block->shared.data());
  return reinterpret_cast<char*>(t_block->cluster->blocks.at(rank)->shared.data()) + offset;
}

inline void __syncthreads() {
  t_block->barrier->arrive_and_wait();
}
inline void __threadfence() {
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

// Every lane publishes v, then reads lane source(lane) (its own value when out of range).
template <class Source>
int warp_exchange(int v, Source source) {
  Warp& w = t_block->warps[threadIdx.x / 32];
  const int lane = static_cast<int>(threadIdx.x % 32);
  w.lanes[lane] = v;
  w.barrier->arrive_and_wait();
  const int from = source(lane);
  const int r = from >= 0 && from < 32 ? static_cast<int>(w.lanes[from]) : v;
  w.barrier->arrive_and_wait();
  return r;
}
inline int __shfl_up_sync(unsigned, int v, int d) {
  return warp_exchange(v, [d](int lane) { return lane >= d ? lane - d : lane; });
}
inline int __shfl_down_sync(unsigned, int v, int d) {
  return warp_exchange(v, [d](int lane) { return lane + d < 32 ? lane + d : lane; });
}
inline int __shfl_xor_sync(unsigned, int v, int m) {
  return warp_exchange(v, [m](int lane) { return lane ^ m; });
}
inline int __shfl_sync(unsigned, int v, int src) {
  return warp_exchange(v, [src](int) { return src; });
}
inline unsigned __ballot_sync(unsigned, int predicate) {
  Warp& w = t_block->warps[threadIdx.x / 32];
  w.lanes[threadIdx.x % 32] = predicate != 0;
  w.barrier->arrive_and_wait();
  unsigned mask = 0;
  for (int lane = 0; lane < 32; ++lane)
    if (w.lanes[lane] != 0) mask |= 1u << lane;
  w.barrier->arrive_and_wait();
  return mask;
}
inline unsigned __reduce_add_sync(unsigned, unsigned v) {
  Warp& w = t_block->warps[threadIdx.x / 32];
  w.lanes[threadIdx.x % 32] = v;
  w.barrier->arrive_and_wait();
  unsigned sum = 0;
  for (int lane = 0; lane < 32; ++lane) sum += static_cast<unsigned>(w.lanes[lane]);
  w.barrier->arrive_and_wait();
  return sum;
}
inline unsigned atomicMin(unsigned* p, unsigned v) {
  std::atomic_ref<unsigned> a(*p);
  unsigned old = a.load();
  while (v < old && !a.compare_exchange_weak(old, v)) {
  }
  return old;
}
inline int atomicMax(int* p, int v) {
  std::atomic_ref<int> a(*p);
  int old = a.load();
  while (v > old && !a.compare_exchange_weak(old, v)) {
  }
  return old;
}
inline unsigned atomicMax(unsigned* p, unsigned v) {
  std::atomic_ref<unsigned> a(*p);
  unsigned old = a.load();
  while (v > old && !a.compare_exchange_weak(old, v)) {
  }
  return old;
}
inline int __clz(int x) {
  return std::countl_zero(static_cast<unsigned>(x));
}
inline int __ffs(int x) {
  return x == 0 ? 0 : std::countr_zero(static_cast<unsigned>(x)) + 1;
}
inline int __popc(unsigned x) {
  return std::popcount(x);
}
template <class T>
T __ldcg(const T* p) {
  return std::atomic_ref<T>(*const_cast<T*>(p)).load();
}
inline unsigned __float_as_uint(float f) {
  return std::bit_cast<unsigned>(f);
}
inline float __uint_as_float(unsigned u) {
  return std::bit_cast<float>(u);
}
inline int atomicAdd(int* p, int v) {
  return std::atomic_ref<int>(*p).fetch_add(v);
}
inline unsigned atomicAdd(unsigned* p, unsigned v) {
  return std::atomic_ref<unsigned>(*p).fetch_add(v);
}
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) {
  return std::atomic_ref<unsigned long long>(*p).fetch_add(v);
}

}  // namespace nsajit_emulation

#define __device__
#define __global__
#define __forceinline__ inline
#define __shared__ static  // one block runs at a time: function statics are its shared memory
#define NSA_TOPK_DYNAMIC_SHARED(name) unsigned long long* name = t_block->shared.data()
#define NSA_TOPK_UNROLL
#define NSA_TOPK_SPIN_PAUSE() std::this_thread::yield()
#define NSA_TOPK_SPIN_LOAD(ptr) __ldcg(ptr)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wpedantic"
namespace nsajit_emulation {
#include "topk_select/cluster.cuh"
#include "topk_select/filter.cuh"
}  // namespace nsajit_emulation
#pragma GCC diagnostic pop
#undef __shared__
#undef __forceinline__
#undef __global__
#undef __device__

using namespace nsajit;

namespace {

constexpr int kThreads = 64;
constexpr int kItems = 2;

// The least shared memory the variant accepts plus 1 KB: for the 64-thread stream variant a
// buffer of 4480 entries (k 4096 + 4t + 128), so a few thousand elements already force a shrink.
DeviceInfo small_device(const Variant& v, int multiprocessors) {
  DeviceInfo d;
  d.name = "emulated";
  d.arch = "sm_90a";
  d.multiprocessors = multiprocessors;
  d.shared_memory_per_block_optin = topk_select_min_shared_bytes(v) + 1024;
  return d;
}

std::unique_ptr<nsajit_emulation::Block> make_block() {
  auto block = std::make_unique<nsajit_emulation::Block>();
  std::memset(block->shared.data(), 0xa5, block->shared.size() * sizeof(unsigned long long));
  block->barrier = std::make_unique<std::barrier<>>(kThreads);
  block->warps = std::vector<nsajit_emulation::Warp>(kThreads / 32);
  for (auto& w : block->warps) w.barrier = std::make_unique<std::barrier<>>(32);
  return block;
}

// Radix and stream kernels: blocks one after the other. Threshold and cluster kernels: all blocks
// at once (cluster kernels in clusters of `cluster` consecutive blocks).
void run_blocks(const nsa_topk_params& p, unsigned blocks, TopkAlgorithm algorithm, unsigned cluster) {
  const bool concurrent = algorithm == TopkAlgorithm::threshold || algorithm == TopkAlgorithm::cluster;
  std::vector<std::unique_ptr<nsajit_emulation::Block>> resident;
  std::vector<std::unique_ptr<nsajit_emulation::Cluster>> clusters;
  for (unsigned b = 0; b < blocks; ++b) resident.push_back(make_block());
  if (cluster > 1)
    for (unsigned b = 0; b < blocks; b += cluster) {
      clusters.push_back(std::make_unique<nsajit_emulation::Cluster>());
      clusters.back()->barrier =
          std::make_unique<std::barrier<>>(static_cast<std::ptrdiff_t>(cluster) * kThreads);
      for (unsigned r = 0; r < cluster; ++r) {
        clusters.back()->blocks.push_back(resident[b + r].get());
        resident[b + r]->cluster = clusters.back().get();
      }
    }
  std::vector<std::jthread> threads;
  for (unsigned b = 0; b < blocks; ++b) {
    if (!concurrent) threads.clear();  // joins the previous block
    nsajit_emulation::Block* block = resident[b].get();
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&p, b, t, algorithm, block] {
        nsajit_emulation::t_block = block;
        nsajit_emulation::threadIdx.x = static_cast<unsigned>(t);
        nsajit_emulation::blockIdx.x = b;
        switch (algorithm) {
          case TopkAlgorithm::stream:
            nsajit_emulation::nsa_topk::topk_stream_select<kThreads, kItems, 11, 32>(p);
            break;
          case TopkAlgorithm::threshold:
            nsajit_emulation::nsa_topk::topk_threshold_select<kThreads, kItems, 11, 32>(p);
            break;
          case TopkAlgorithm::cluster:
            nsajit_emulation::nsa_topk::topk_cluster_select<kThreads, kItems, 11, 32>(p);
            break;
          case TopkAlgorithm::radix:
            nsajit_emulation::nsa_topk::topk_select<kThreads, kItems, 11, 32>(p);
            break;
          case TopkAlgorithm::filter:
            nsajit_emulation::nsa_topk::topk_filter_select<kThreads, kItems, 11, 32>(p);
            break;
        }
      });
  }
}

// Plans like the dispatcher, runs twice on one workspace, compares both outputs; returns the plan.
TopkSelectLaunch check_emulated(const std::string& variant_name, const reference::TopkProblem& problem,
                                int multiprocessors, int expect_splits_at_least) {
  const Variant v = variant_from_name(variant_name);
  const TopkAlgorithm algorithm = topk_select_algorithm(v);
  const DeviceInfo device = small_device(v, multiprocessors);
  const std::size_t ws_bytes = topk_select_workspace_bytes(v, device);
  std::vector<unsigned long long> workspace(ws_bytes / 8 + 1, 0ull);
  std::vector<std::int32_t> out(static_cast<std::size_t>(problem.batch) * problem.k);
  TopkSelectProblem tp;
  tp.scores = problem.scores.data();
  tp.score_row_stride = problem.row_stride;
  tp.batch = problem.batch;
  tp.length = problem.length;
  tp.lengths = problem.lengths.empty() ? nullptr : problem.lengths.data();
  tp.indices = out.data();
  tp.out_row_stride = problem.k;
  tp.k = problem.k;
  tp.sorted = problem.sorted;
  TopkClusterFit fit;  // any number of clusters at once
  fit.clusters.fill(1 << 20);
  const TopkSelectLaunch launch = plan_topk_select(v, device, tp, workspace.data(), ws_bytes, fit);
  REQUIRE(launch.dynamic_shared_bytes <= nsajit_emulation::kSharedEntries * sizeof(unsigned long long));
  CHECK(launch.params.splits >= expect_splits_at_least);
  const std::vector<std::int32_t> expected = reference::topk_select(problem);
  for (int run = 0; run < 2; ++run) {
    std::fill(out.begin(), out.end(), 0x7f7f7f7f);
    run_blocks(launch.params, launch.grid.x, algorithm, launch.cluster);
    const std::string diff = tuner::compare_topk(problem, expected, out, problem.k);
    CHECK_MESSAGE(diff.empty(),
                  variant_name << " run " << run << " splits " << launch.params.splits << ": " << diff);
    // The row counters (and the row histograms of the stream and threshold kernels) are at rest.
    const nsa_topk_params& k = launch.params;
    if (k.splits > 1) {
      const int counters = algorithm == TopkAlgorithm::threshold || algorithm == TopkAlgorithm::cluster ||
                                   algorithm == TopkAlgorithm::filter
                               ? 4
                               : 1;
      for (int r = 0; r < problem.batch * counters; ++r) CHECK(k.row_counters[r] == 0u);
      if (algorithm != TopkAlgorithm::radix)
        CHECK(std::all_of(k.row_histograms, k.row_histograms + problem.batch * (1 << v.get("r")),
                          [](unsigned h) { return h == 0u; }));
    }
  }
  return launch;
}

reference::TopkProblem make(int batch, int length, int k, tuner::TopkData data, bool sorted,
                            tuner::TopkLengths lengths, int padding, std::uint64_t seed) {
  return tuner::make_topk_problem(tuner::topk_case(batch, length, k, data, sorted, lengths, padding, seed));
}

// Ascending rows: every element passes the stream filter, the worst case for its buffer.
reference::TopkProblem ascending(int batch, int length, int k, int padding) {
  reference::TopkProblem p =
      make(batch, length, k, tuner::TopkData::random, true, tuner::TopkLengths::none, padding, 7);
  for (int r = 0; r < batch; ++r)
    for (int j = 0; j < length; ++j)
      p.scores[static_cast<std::size_t>(r) * p.row_stride + j] = static_cast<float>(j % 5000);
  return p;
}

// A random row of `length` whose 2048 sampled elements (256 evenly spaced runs of 8) are its
// largest: fewer than k reach the tau they give, and the kernel must select the row again.
reference::TopkProblem rigged_sample(int length, int k, bool sorted, std::uint64_t seed) {
  reference::TopkProblem p =
      make(1, length, k, tuner::TopkData::random, sorted, tuner::TopkLengths::none, 0, seed);
  for (int i = 0; i < 2048; ++i)
    p.scores[static_cast<std::size_t>(i / 8) * static_cast<std::size_t>(length - 8) / 256 + i % 8] =
        100.f + static_cast<float>(i);
  return p;
}

const char* const kStream = "nsa_topk_sm90a_t64_i2_r11_s16_a1";
const char* const kRadix = "nsa_topk_sm90a_t64_i2_r11_s16";
const char* const kThreshold = "nsa_topk_sm90a_t64_i2_r11_s16_a2";
const char* const kCluster = "nsa_topk_sm90a_t64_i2_r11_s8_a3";
const char* const kFilter = "nsa_topk_sm90a_t64_i2_r11_s16_a4";

// Split rows of every kind of data (the variant's blocks of a row run at once): random, ties,
// near-equal, NaN, -inf with mixed lengths, a long slice whose buffer shrinks before the
// histogram, ascending rows. Seeds from `seed` on; returns the plans.
std::vector<TopkSelectLaunch> check_split_rows(const char* variant, std::uint64_t seed) {
  using tuner::TopkData;
  using tuner::TopkLengths;
  std::vector<TopkSelectLaunch> plans;
  plans.push_back(
      check_emulated(variant, make(2, 8200, 500, TopkData::random, false, TopkLengths::none, 1, seed), 8, 4));
  plans.push_back(check_emulated(
      variant, make(2, 9001, 1000, TopkData::ties, true, TopkLengths::mixed, 3, seed + 1), 8, 2));
  plans.push_back(check_emulated(
      variant, make(2, 8200, 1024, TopkData::near_equal, false, TopkLengths::random, 0, seed + 2), 8, 2));
  plans.push_back(check_emulated(
      variant, make(1, 12000, 1500, TopkData::nan, true, TopkLengths::none, 0, seed + 3), 8, 4));
  plans.push_back(check_emulated(
      variant, make(2, 9000, 300, TopkData::neg_inf, true, TopkLengths::mixed, 2, seed + 4), 8, 2));
  plans.push_back(check_emulated(
      variant, make(1, 24000, 700, TopkData::random, true, TopkLengths::none, 0, seed + 5), 4, 4));
  plans.push_back(check_emulated(variant, ascending(2, 10000, 1200, 1), 8, 2));
  return plans;
}

}  // namespace

TEST_CASE("topk_emulated_stream_kernel_is_exact_on_adversarial_rows_with_many_shrinks") {
  using tuner::TopkData;
  using tuner::TopkLengths;
  // 132 "SMs": rows of these lengths are not split; the 4480-entry buffer shrinks many times.
  check_emulated(kStream, make(2, 9000, 300, TopkData::random, false, TopkLengths::none, 3, 11), 132, 1);
  check_emulated(kStream, make(3, 7001, 1000, TopkData::ties, true, TopkLengths::mixed, 1, 12), 132, 1);
  check_emulated(kStream, make(1, 6000, 4096, TopkData::all_equal, false, TopkLengths::none, 0, 13), 132, 1);
  check_emulated(kStream, make(2, 8000, 777, TopkData::near_equal, true, TopkLengths::none, 2, 14), 132, 1);
  check_emulated(kStream, make(3, 5000, 2048, TopkData::nan, false, TopkLengths::random, 0, 15), 132, 1);
  check_emulated(kStream, make(2, 5000, 128, TopkData::neg_inf, true, TopkLengths::none, 1, 16), 132, 1);
  check_emulated(kStream, ascending(1, 12000, 1500, 3), 132, 1);
}

TEST_CASE("topk_emulated_stream_kernel_merges_split_rows_exactly_and_leaves_the_workspace_zeroed") {
  using tuner::TopkData;
  using tuner::TopkLengths;
  // 8 "SMs" for 2 rows: up to 4 blocks per row; the last block merges from the row histogram.
  check_emulated(kStream, make(2, 8000, 500, TopkData::random, false, TopkLengths::none, 1, 21), 8, 4);
  check_emulated(kStream, make(2, 9001, 1000, TopkData::ties, true, TopkLengths::mixed, 3, 22), 8, 2);
  check_emulated(kStream, make(2, 8192, 1024, TopkData::near_equal, false, TopkLengths::random, 0, 23), 8, 2);
  check_emulated(kStream, make(1, 12000, 1500, TopkData::nan, true, TopkLengths::none, 0, 24), 8, 2);
  check_emulated(kStream, ascending(2, 10000, 1200, 1), 8, 2);
}

TEST_CASE("topk_emulated_radix_kernel_is_exact_on_split_and_whole_rows") {
  using tuner::TopkData;
  using tuner::TopkLengths;
  check_emulated(kRadix, make(2, 9000, 700, TopkData::ties, true, TopkLengths::mixed, 1, 31), 132, 1);
  check_emulated(kRadix, make(2, 8000, 500, TopkData::random, false, TopkLengths::none, 3, 32), 8, 4);
}

TEST_CASE("topk_emulated_threshold_kernel_agrees_on_one_digit_per_split_row_exactly") {
  using tuner::TopkData;
  using tuner::TopkLengths;
  // 8 "SMs", 2 blocks per SM: rows of >= 2 x 2048 elements split; the blocks of a row run at
  // once and wait for each other's histograms.
  (void)check_split_rows(kThreshold, 41);
}

TEST_CASE("topk_emulated_threshold_kernel_starts_from_a_sampled_tau_and_selects_again_when_it_is_too_high") {
  using tuner::TopkData;
  using tuner::TopkLengths;
  // Blocks of >= 16384 elements in rows of >= 2k + 2 x 2048: 2048 evenly spaced elements of the
  // row set the starting tau (one block per row, and rows split in 2).
  const auto sampled = [](const TopkSelectLaunch& l) { return l.params.sample == 2048; };
  CHECK(sampled(check_emulated(
      kThreshold, make(1, 30000, 300, TopkData::random, false, TopkLengths::none, 0, 61), 1, 1)));
  CHECK(sampled(check_emulated(kThreshold,
                               make(2, 26000, 1000, TopkData::ties, true, TopkLengths::mixed, 2, 62), 1, 1)));
  CHECK(sampled(check_emulated(kThreshold,
                               make(1, 60000, 500, TopkData::random, true, TopkLengths::none, 0, 63), 2, 2)));
  CHECK(sampled(check_emulated(kThreshold,
                               make(1, 40000, 400, TopkData::nan, false, TopkLengths::random, 1, 64), 2, 2)));
  CHECK(sampled(check_emulated(
      kThreshold, make(1, 40000, 700, TopkData::neg_inf, true, TopkLengths::none, 0, 65), 2, 2)));
  CHECK(sampled(check_emulated(kThreshold, ascending(1, 56000, 700, 0), 2, 2)));
  // The sampled elements are the row's largest and fewer than k: the sampled tau passes only
  // them, and the row is selected again from tau 0.
  for (const int sms : {1, 2}) {
    const reference::TopkProblem rigged = rigged_sample(40000, 3000, sms == 1, 66 + sms);
    CHECK(sampled(check_emulated(kThreshold, rigged, sms, sms)));
  }
  // Blocks of fewer than 16384 elements do not sample.
  CHECK(
      check_emulated(kThreshold, make(1, 40000, 400, TopkData::random, false, TopkLengths::none, 0, 69), 4, 4)
          .params.sample == 0);
}

TEST_CASE("topk_emulated_threshold_kernel_falls_back_when_the_threshold_digit_overflows_its_list") {
  using tuner::TopkData;
  using tuner::TopkLengths;
  // Every score equal: the threshold digit holds the whole row (> 8192 candidates), so the last
  // block selects the row again; and rows shorter than k (every element out, tail -1).
  check_emulated(kThreshold, make(1, 20000, 3000, TopkData::all_equal, false, TopkLengths::none, 0, 51), 8,
                 4);
  check_emulated(kThreshold, make(1, 20000, 3000, TopkData::all_equal, true, TopkLengths::none, 0, 52), 8, 4);
  check_emulated(kThreshold, make(2, 9000, 4096, TopkData::random, true, TopkLengths::none, 0, 53), 8, 2);
  check_emulated(kThreshold, make(2, 9000, 4096, TopkData::ties, false, TopkLengths::random, 0, 54), 8, 2);
}

TEST_CASE("topk_emulated_cluster_kernel_agrees_on_one_digit_through_rank_0s_shared_memory") {
  using tuner::TopkData;
  using tuner::TopkLengths;
  // The threshold cases with a split row's blocks in one cluster: they add their histograms into
  // rank 0's and reserve their ranges on its counters, and rank 0 finishes the row.
  const auto clustered = [](const TopkSelectLaunch& l) {
    return l.cluster > 1 && l.cluster == unsigned(l.params.splits);
  };
  for (const TopkSelectLaunch& l : check_split_rows(kCluster, 71)) CHECK(clustered(l));
  // At most 8 blocks a row (the portable cluster size), even with SMs to spare.
  const TopkSelectLaunch wide =
      check_emulated(kCluster, make(1, 40000, 400, TopkData::random, false, TopkLengths::none, 0, 77), 64, 8);
  CHECK(clustered(wide));
  CHECK(wide.params.splits == 8);
  // Sampled tau, and selected again when it is too high; rows short of k; a digit of > 8192.
  CHECK(clustered(
      check_emulated(kCluster, make(1, 60000, 500, TopkData::random, true, TopkLengths::none, 0, 78), 2, 2)));
  for (const bool sorted : {false, true}) {
    const reference::TopkProblem rigged = rigged_sample(40000, 3000, sorted, 79);
    CHECK(check_emulated(kCluster, rigged, 2, 2).params.sample == 2048);
  }
  CHECK(clustered(check_emulated(
      kCluster, make(1, 20000, 3000, TopkData::all_equal, true, TopkLengths::none, 0, 80), 8, 4)));
  check_emulated(kCluster, make(2, 9000, 4096, TopkData::random, true, TopkLengths::none, 0, 81), 8, 2);
  check_emulated(kCluster, make(2, 9000, 4096, TopkData::ties, false, TopkLengths::random, 0, 82), 8, 2);
}

TEST_CASE("topk_emulated_filter_kernel_is_exact_from_a_sampled_tau_and_falls_back_to_the_radix_passes") {
  using tuner::TopkData;
  using tuner::TopkLengths;
  // One block per row whatever the SMs (rows shorter than 2 x 32768); rows of >= 8192 elements
  // sample 2048 of them.
  const auto sampled = [](const TopkSelectLaunch& l) {
    return l.params.sample == 2048 && l.params.splits == 1;
  };
  CHECK(sampled(check_emulated(
      kFilter, make(2, 30000, 300, TopkData::random, false, TopkLengths::none, 1, 91), 132, 1)));
  CHECK(sampled(
      check_emulated(kFilter, make(2, 26000, 1000, TopkData::ties, true, TopkLengths::mixed, 3, 92), 1, 1)));
  CHECK(sampled(
      check_emulated(kFilter, make(1, 40000, 400, TopkData::nan, false, TopkLengths::random, 2, 93), 8, 1)));
  CHECK(sampled(
      check_emulated(kFilter, make(1, 40000, 700, TopkData::neg_inf, true, TopkLengths::none, 0, 94), 8, 1)));
  CHECK(sampled(check_emulated(kFilter, ascending(1, 56000, 700, 1), 8, 1)));
  // Shorter rows keep every element (tau 0): the buffer holds the row, one shrink selects.
  const TopkSelectLaunch whole =
      check_emulated(kFilter, make(3, 5000, 2048, TopkData::random, false, TopkLengths::random, 3, 95), 8, 1);
  CHECK(whole.params.sample == 0);
  check_emulated(kFilter, make(2, 5000, 128, TopkData::near_equal, true, TopkLengths::mixed, 1, 96), 8, 1);
  // Rows shorter than k (tail -1), and rows of one element.
  check_emulated(kFilter, make(2, 3000, 4096, TopkData::random, true, TopkLengths::random, 2, 97), 8, 1);
  check_emulated(kFilter, make(3, 1, 1, TopkData::random, false, TopkLengths::mixed, 1, 98), 8, 1);
  // More elements pass than the buffer holds (every score equal, 20000 > ~5200 entries): the
  // block selects the row again with the radix passes over global memory.
  check_emulated(kFilter, make(1, 20000, 3000, TopkData::all_equal, false, TopkLengths::none, 0, 99), 8, 1);
  check_emulated(kFilter, make(1, 20000, 3000, TopkData::all_equal, true, TopkLengths::none, 0, 100), 8, 1);
  // The sampled elements are the row's largest and fewer than k: the sampled tau passes only
  // them, and the block selects the row again with the radix passes.
  for (const bool sorted : {false, true}) {
    const reference::TopkProblem rigged = rigged_sample(40000, 3000, sorted, 101);
    CHECK(sampled(check_emulated(kFilter, rigged, 8, 1)));
  }
}

TEST_CASE("topk_emulated_filter_kernel_finishes_split_rows_in_the_last_block_exactly") {
  using tuner::TopkData;
  using tuner::TopkLengths;
  // Rows of >= 2 x 32768 elements in a batch that leaves SMs idle: 2 or 3 blocks a row, the same
  // sampled tau in each; the last block to finish selects from the row's list (unsorted: from the
  // bins; sorted or many equal scores: the radix select over the list).
  const auto split = [](const TopkSelectLaunch& l) {
    return l.params.splits >= 2 && l.params.sample == 2048;
  };
  CHECK(split(check_emulated(kFilter, make(1, 70000, 500, TopkData::random, false, TopkLengths::none, 1, 111),
                             8, 2)));
  CHECK(split(check_emulated(kFilter, make(2, 66000, 1000, TopkData::random, true, TopkLengths::none, 0, 112),
                             8, 2)));
  CHECK(split(check_emulated(
      kFilter, make(1, 100000, 300, TopkData::near_equal, false, TopkLengths::none, 3, 113), 8, 3)));
  CHECK(split(
      check_emulated(kFilter, make(2, 66000, 700, TopkData::nan, false, TopkLengths::random, 2, 114), 8, 2)));
  // Rows too short to sample (mixed lengths): their blocks keep everything, the last block
  // selects the row from global memory; every equal: the list overflows, the same.
  CHECK(split(
      check_emulated(kFilter, make(2, 66000, 800, TopkData::ties, false, TopkLengths::mixed, 0, 115), 8, 2)));
  CHECK(split(check_emulated(
      kFilter, make(1, 66000, 1000, TopkData::all_equal, false, TopkLengths::none, 0, 116), 8, 2)));
  // The sampled elements are the row's largest and fewer than k: the list holds fewer than k.
  const reference::TopkProblem rigged = rigged_sample(66000, 3000, false, 117);
  CHECK(split(check_emulated(kFilter, rigged, 8, 2)));
}
