// Host side of the topk_select family: argument validation and launch planning.
// Given a variant, the device and a problem, it yields the kernel name, grid, block, dynamic
// shared memory and the parameter struct (templates/topk_select/params.h) to launch with.
//
// Workspace: variants with s > 1 split long rows over several blocks and need a device
// workspace of topk_select_workspace_bytes(variant, device) bytes, allocated once per
// (variant, device) and zeroed once after allocation; every launch leaves it zeroed again,
// so it is reused without any per-call memset. One workspace must not serve two launches
// that can run at the same time (two streams): give each stream its own.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "generator/variant.hpp"
#include "runtime/backend.hpp"
#include "templates/topk_select/params.h"

namespace nsajit {

inline constexpr int kTopkMaxK = NSA_TOPK_MAX_K;
inline constexpr int kTopkMaxLength = NSA_TOPK_MAX_LENGTH;

// One call: scores [batch, length] fp32 with a row stride, optional lengths [batch] int32,
// output indices [batch, k] int32 with a row stride. Strides are in elements.
struct TopkSelectProblem {
  const float* scores = nullptr;
  std::int64_t score_row_stride = 0;
  int batch = 0;
  int length = 0;
  const std::int32_t* lengths = nullptr;  // null: every row has `length` valid entries
  std::int32_t* indices = nullptr;
  std::int64_t out_row_stride = 0;
  int k = 0;
  bool sorted = false;
};

// A problem over one contiguous [batch, length] score matrix with a contiguous [batch, k] output,
// every row fully valid, unsorted.
[[nodiscard]] inline TopkSelectProblem contiguous_topk_problem(const float* scores, int batch, int length,
                                                               std::int32_t* indices, int k) {
  TopkSelectProblem p;
  p.scores = scores;
  p.score_row_stride = length;
  p.batch = batch;
  p.length = length;
  p.indices = indices;
  p.out_row_stride = k;
  p.k = k;
  return p;
}

struct TopkSelectLaunch {
  std::string kernel_name;
  Dim3 grid;
  Dim3 block;
  unsigned cluster = 1;  // blocks per thread-block cluster (cluster variants' split rows), else 1
  unsigned dynamic_shared_bytes = 0;  // == topk_select_dynamic_shared_bytes(variant, device)
  nsa_topk_params params{};           // the kernel's only argument: args = {&params}
  std::size_t workspace_bytes = 0;    // what this call uses (<= topk_select_workspace_bytes)
};

// Which device template a variant instantiates. radix: a histogram pass over the row, then
// a compaction pass (the original variants, no "a" knob). stream: knob a = 1, one read of the
// row through a threshold filter into a shared buffer (templates/topk_select/kernel.cuh).
// threshold: knob a = 2, the stream filter per block, then the blocks of a split row agree on
// one global threshold digit (templates/topk_select/threshold.cuh). cluster: knob a = 3
// (NVIDIA sm_90), the threshold algorithm with a split row's blocks in one thread-block cluster
// (templates/topk_select/cluster.cuh). filter: knob a = 4, one block per row, a sampled tau and
// one read of the row with a float-compare filter and no barrier per round
// (templates/topk_select/filter.cuh).
enum class TopkAlgorithm { radix, stream, threshold, cluster, filter };
[[nodiscard]] TopkAlgorithm topk_select_algorithm(const Variant& v);

// Throws Error(invalid_argument) unless v is a topk_select variant with valid t, i, r, s knobs
// (and a in {0, 1, 2, 3, 4} when present).
void check_topk_select_variant(const Variant& v);

// Throws Error(invalid_argument) naming the first bad argument: k outside [1, 4096], length
// outside [1, 262144], batch < 1, null scores/indices, score stride < length, output stride < k,
// or a pointer not aligned to 4 bytes.
void validate_topk_select_problem(const TopkSelectProblem& problem);

// Shared memory the variant needs at the least (k = 4096, smallest candidate buffer): pruning.
[[nodiscard]] std::size_t topk_select_min_shared_bytes(const Variant& v);

// Dynamic shared memory of every launch of v on this device (constant, so the dispatcher calls
// Device::set_max_dynamic_shared(kernel, this) once after loading the kernel).
[[nodiscard]] std::size_t topk_select_dynamic_shared_bytes(const Variant& v, const DeviceInfo& device);

// Workspace for any valid problem (0 when the variant never splits a row).
[[nodiscard]] std::size_t topk_select_workspace_bytes(const Variant& v, const DeviceInfo& device);

// Cluster variants: how many clusters of c blocks (clusters[c], c = 2..8) of the loaded kernel
// run at once on the device. The planner splits a row over c blocks (one cluster) only when the
// batch's clusters all fit at once (on the H100, clusters of 4 or 8 blocks of one SM each use
// 120 of its 132 SMs). All zero (the default): cluster variants split no row.
struct TopkClusterFit {
  static constexpr int kMaxBlocks = 8;  // the portable cluster size
  std::array<int, kMaxBlocks + 1> clusters{};
};
// Asks the device (zero for other variants or devices without clusters).
[[nodiscard]] TopkClusterFit topk_select_cluster_fit(Device& device, const KernelHandle& kernel,
                                                     const Variant& v);

// Validates the problem and plans one launch for the whole batch. `workspace` must hold
// topk_select_workspace_bytes(v, device) zeroed bytes when that is > 0 (else may be null).
[[nodiscard]] TopkSelectLaunch plan_topk_select(const Variant& v, const DeviceInfo& device,
                                                const TopkSelectProblem& problem, void* workspace,
                                                std::size_t workspace_bytes, const TopkClusterFit& fit = {});

// Launches a plan (in clusters when it has them) on `stream`.
void launch_topk_select(Device& device, const KernelHandle& kernel, const TopkSelectLaunch& launch,
                        void* stream);

}  // namespace nsajit
