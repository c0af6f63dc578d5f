#include "runtime/topk_select_launch.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "runtime/error.hpp"

namespace nsajit {
namespace {

constexpr const char* kWhere = "runtime/topk_select_launch";
// Keeps two blocks of the largest candidate buffer resident per SM on Hopper (228 KB per SM).
constexpr std::size_t kSharedBudget = std::size_t{110} * 1024;
// A block of 1024 threads holds a whole SM's registers (>= 64 each), so one block per SM: the
// stream buffer may then take all the shared memory a block can have (fewer shrinks).
constexpr int kWholeSmThreads = 1024;
constexpr std::size_t kStaticSharedReserve = 1024;
constexpr int kMinCandidates = 1024;
constexpr std::size_t kCounterAlign = 256;

[[noreturn]] void bad_argument(const std::string& why) {
  fail(ErrorCode::invalid_argument, "checking topk_select arguments", kWhere, why);
}

int next_pow2(int x) {
  int p = 1;
  while (p < x) p <<= 1;
  return p;
}

std::size_t histogram_bytes(const Variant& v) {
  return sizeof(unsigned) << v.get("r");
}

bool is_stream(const Variant& v) {
  return topk_select_algorithm(v) == TopkAlgorithm::stream;
}

// Threshold and cluster variants share the threshold algorithm's buffer, sample and workspace.
bool is_threshold(const Variant& v) {
  const TopkAlgorithm a = topk_select_algorithm(v);
  return a == TopkAlgorithm::threshold || a == TopkAlgorithm::cluster;
}

bool is_filter(const Variant& v) {
  return topk_select_algorithm(v) == TopkAlgorithm::filter;
}

// Split rows keep 4 counters, a histogram and one candidate list per row in the workspace.
bool has_row_lists(const Variant& v) {
  return is_threshold(v) || is_filter(v);
}

bool is_cluster(const Variant& v) {
  return topk_select_algorithm(v) == TopkAlgorithm::cluster;
}

// They filter the row into a shared buffer (kernel.cuh's stream, or filter.cuh's), the radix
// histogram after it.
bool has_stream_buffer(const Variant& v) {
  return is_stream(v) || is_threshold(v) || is_filter(v);
}

// Block state the threshold kernel keeps after its buffer and histogram; cluster variants add
// the row histogram and two counters that the cluster's blocks add into (in rank 0).
std::size_t state_bytes(const Variant& v) {
  if (is_filter(v)) return histogram_bytes(v);  // the filter's bins of kept elements
  if (is_cluster(v))
    return NSA_TOPK_THRESHOLD_STATE_BYTES + histogram_bytes(v) + NSA_TOPK_CLUSTER_COUNTER_BYTES;
  return is_threshold(v) ? NSA_TOPK_THRESHOLD_STATE_BYTES : 0;
}

// The stream kernel keeps one round of loads of room above the k it must hold: 8 floats per
// thread where it reads two float4 a slot (NVIDIA, even i), else 4 (or 2 candidates).
// Filter variants fall back to the radix select in their buffer: the selected set (k 4096) and
// a candidate buffer.
std::size_t stream_min_buffer_entries(const Variant& v) {
  if (is_filter(v)) return static_cast<std::size_t>(kTopkMaxK) + static_cast<std::size_t>(kMinCandidates);
  const std::size_t per_thread = v.target.vendor == Vendor::nvidia && v.get("i") % 2 == 0 ? 8 : 4;
  return static_cast<std::size_t>(kTopkMaxK) + per_thread * static_cast<std::size_t>(v.get("t"));
}

std::size_t shared_budget(const Variant& v, const DeviceInfo& device) {
  std::size_t limit = device.shared_memory_per_block_optin;
  if (limit == 0) limit = static_cast<std::size_t>(v.target.max_shared_bytes);
  // Filter variants run one block per row: the whole SM's shared memory too.
  const bool whole_sm = has_stream_buffer(v) && (v.get("t") >= kWholeSmThreads || is_filter(v));
  // The opt-in limit covers the kernel's static shared memory (block state, <= 1 KB) too.
  std::size_t budget = whole_sm ? limit - kStaticSharedReserve : std::min(limit, kSharedBudget);
  // On AMD the kernel's static LDS (<= 104 B) shares the 64 KB with the dynamic part.
  if (v.target.vendor == Vendor::amd) budget -= 256;
  if (budget < topk_select_min_shared_bytes(v))
    fail(ErrorCode::invalid_argument, "planning a topk_select launch", kWhere,
         fmt::format("device {} offers {} B of shared memory per block; {} needs {} B", device.name, limit,
                     v.name(), topk_select_min_shared_bytes(v)));
  return budget;
}

// Blocks per row are capped at kSplitFill x SMs / B (stream variants). Tried 4 (more blocks in flight at
// B = 128): measured slower on the H200 (B 64, L 131072: 0.057 -> 0.097 ms; the last block's
// merge over splits x k candidates grows), so one block per SM it is (docs/perf-log.md).
constexpr int kSplitFill = 1;

// Threshold variants: a split row costs its blocks one histogram and a wait, not a merge over
// splits x k candidates, so they fill two blocks per SM, with slices of at least 2048 elements.
// Their candidate lists hold the threshold digit's elements of a row: 8192 entries, a few
// hundred to a few thousand on real score rows; more (many equal scores) falls back to a
// one-block select of the row.
constexpr int kThresholdFill = 2;
constexpr int kThresholdMinSlice = 2048;
// Rows up to this length are not split: one block reads them in a single load round and one
// select finishes them, while a split row pays its fixed chain (row histogram, wait, digit,
// emit, the last block's select): on the H100, B 16 L 8192 k 2048 took 14.3 us per launch as
// one block per row against 15.6 us in 4 splits (tools/probes/topk_phase_probe.cu).
constexpr int kThresholdMinSplitLength = 8192;
constexpr int kThresholdCandidates = 8192;
// A filter variant's split row lists every element >= the sampled tau: about 1.5 k + 16 L / 2048
// on random rows, more when tau's 11-bit digit floor lies well below the sample's rank (up to
// ~10.5K at L 262144); 8192 overflowed on some random rows of the H100 benchmark (each such row
// falls back to the radix passes over global memory, ~0.1 ms).
constexpr int kFilterCandidates = 16384;

int row_list_entries(const Variant& v) {
  return is_filter(v) ? kFilterCandidates : kThresholdCandidates;
}
constexpr std::size_t kThresholdRowCounters = 4;

// Threshold variants read this many evenly spaced elements of a row first, in blocks that read at
// least kThresholdSampleMinSlice elements; their histogram sets the filter's starting tau, so
// that a long slice passes about 1.5 k x slice / row elements into the buffer instead of filling
// it (a shrink of a full buffer cost ~10 us on the H100). Shorter slices lost more to the sample
// than they gained (H100: B 16 L 32768 in 8 slices of 4096, 15.7 -> 17.2 us per launch).
constexpr int kThresholdSample = 2048;
constexpr int kThresholdSampleMinSlice = 16384;
// Filter variants sample rows of at least this many elements; a shorter row passes whole into
// the buffer (tau 0). H100, B 16 L 8192 k 2048: 13.1 us kept whole, 10.4 us sampled
// (docs/perf-log.md, topk_select v9).
constexpr int kFilterSampleMinLength = 8192;
// Filter variants split a row only when every block keeps a slice of at least this many
// elements (and the batch leaves SMs idle): a split row pays the sample in every block and the
// last block's finish from the row's list.
constexpr int kFilterMinSlice = 32768;

int split_fill(const Variant& v) {
  return is_threshold(v) && v.get("t") < kWholeSmThreads ? kThresholdFill : kSplitFill;
}

std::size_t align_up(std::size_t bytes) {
  return (bytes + kCounterAlign - 1) / kCounterAlign * kCounterAlign;
}

// Rows that can be split at once: batch * splits <= fill * SMs with splits >= 2.
std::size_t max_split_rows(const Variant& v, const DeviceInfo& device) {
  const std::size_t sms = static_cast<std::size_t>(std::max(device.multiprocessors, 1));
  return is_threshold(v) ? static_cast<std::size_t>(kThresholdFill) * sms / 2
                         : static_cast<std::size_t>(kSplitFill) * sms;
}

std::size_t counter_bytes(const Variant& v, const DeviceInfo& device) {
  const std::size_t per_row = has_row_lists(v) ? kThresholdRowCounters : 1;
  return align_up(sizeof(unsigned) * per_row * max_split_rows(v, device));
}

// Stream and threshold variants: one histogram of 2^r bins per split row, between the counters
// and the candidates.
std::size_t row_histogram_bytes(const Variant& v, const DeviceInfo& device) {
  return has_stream_buffer(v) ? align_up(histogram_bytes(v) * max_split_rows(v, device)) : 0;
}

// Candidate entries per split row: each block's slice top k, or the threshold digit's list.
std::size_t candidates_per_row(const Variant& v, int splits, int k) {
  return has_row_lists(v) ? static_cast<std::size_t>(row_list_entries(v))
                          : static_cast<std::size_t>(splits) * static_cast<std::size_t>(k);
}

// Blocks per row: enough to fill the SMs when the batch is small, but each slice keeps at
// least 4k elements so that stage 1 actually filters.
// Threshold variants: a split row waits for all its blocks, so splits also stay <= the SMs.
// Cluster variants: a row's blocks are one cluster, and every cluster of the batch fits the GPU
// at once (else the last ones would wait for whole clusters to finish).
int plan_splits(const Variant& v, const DeviceInfo& device, const TopkSelectProblem& p,
                const TopkClusterFit& fit) {
  const int most = v.get("s");
  if (most <= 1) return 1;
  const int sms = std::max(device.multiprocessors, 1);
  const int by_sms = split_fill(v) * sms / p.batch;
  if (is_filter(v)) return std::max(1, std::min({most, by_sms, p.length / kFilterMinSlice}));
  if (is_threshold(v)) {
    if (p.length <= kThresholdMinSplitLength) return 1;
    int splits = std::max(1, std::min({most, by_sms, sms, p.length / kThresholdMinSlice}));
    if (is_cluster(v)) {
      splits = std::min(splits, TopkClusterFit::kMaxBlocks);
      while (splits > 1 && fit.clusters[static_cast<std::size_t>(splits)] < p.batch) --splits;
    }
    return splits;
  }
  const int by_length = p.length / (4 * p.k);
  return std::max(1, std::min({most, by_sms, by_length}));
}

bool aligned4(const void* ptr) {
  return reinterpret_cast<std::uintptr_t>(ptr) % 4 == 0;
}

}  // namespace

TopkAlgorithm topk_select_algorithm(const Variant& v) {
  switch (v.get_or("a", 0)) {
    case 1:
      return TopkAlgorithm::stream;
    case 2:
      return TopkAlgorithm::threshold;
    case 3:
      return TopkAlgorithm::cluster;
    case 4:
      return TopkAlgorithm::filter;
    default:
      return TopkAlgorithm::radix;
  }
}

void check_topk_select_variant(const Variant& v) {
  auto bad = [&](const std::string& why) {
    fail(ErrorCode::invalid_argument, "checking a topk_select variant", kWhere,
         fmt::format("{}: {}", v.name(), why));
  };
  if (v.family != Family::topk_select) bad("not a topk_select variant");
  const int t = v.get("t"), i = v.get("i"), r = v.get("r"), s = v.get("s");
  if (t < v.target.warp_size || t % v.target.warp_size != 0 || t / v.target.warp_size > 32)
    bad(fmt::format("t {} must be 1..32 warps of {}", t, v.target.warp_size));
  if (i < 1 || i > 32) bad(fmt::format("i {} must be in [1, 32]", i));
  if (r < 4 || r > 12) bad(fmt::format("r {} must be in [4, 12]", r));
  if (s < 1) bad(fmt::format("s {} must be >= 1", s));
  for (const auto& knob : v.knobs)
    if (knob.name == "a" && (knob.value < 0 || knob.value > 4))
      bad(fmt::format("a {} must be 0 (radix passes), 1 (stream), 2 (threshold), 3 (cluster) or 4 (filter)",
                      knob.value));
  if (is_cluster(v) && v.target.vendor != Vendor::nvidia)
    bad("cluster variants (a 3) need NVIDIA thread-block clusters");
}

void validate_topk_select_problem(const TopkSelectProblem& p) {
  if (p.k < 1 || p.k > kTopkMaxK) bad_argument(fmt::format("k = {} must be in [1, {}]", p.k, kTopkMaxK));
  if (p.batch < 1) bad_argument(fmt::format("batch B = {} must be >= 1", p.batch));
  if (p.length < 1 || p.length > kTopkMaxLength)
    bad_argument(fmt::format("row length L = {} must be in [1, {}]", p.length, kTopkMaxLength));
  if (p.scores == nullptr) bad_argument("scores is a null pointer");
  if (p.indices == nullptr) bad_argument("indices (the output) is a null pointer");
  if (p.score_row_stride < p.length)
    bad_argument(fmt::format("scores row stride {} < row length L = {}", p.score_row_stride, p.length));
  if (p.out_row_stride < p.k)
    bad_argument(fmt::format("indices row stride {} < k = {}", p.out_row_stride, p.k));
  if (!aligned4(p.scores)) bad_argument("scores is not 4-byte aligned (fp32 expected)");
  if (!aligned4(p.indices)) bad_argument("indices is not 4-byte aligned (int32 expected)");
  if (!aligned4(p.lengths)) bad_argument("lengths is not 4-byte aligned (int32 expected)");
}

std::size_t topk_select_min_shared_bytes(const Variant& v) {
  if (has_stream_buffer(v))
    return sizeof(unsigned long long) * stream_min_buffer_entries(v) + histogram_bytes(v) + state_bytes(v);
  return sizeof(unsigned long long) * (kTopkMaxK + kMinCandidates) + histogram_bytes(v);
}

std::size_t topk_select_dynamic_shared_bytes(const Variant& v, const DeviceInfo& device) {
  check_topk_select_variant(v);
  return shared_budget(v, device);
}

std::size_t topk_select_workspace_bytes(const Variant& v, const DeviceInfo& device) {
  check_topk_select_variant(v);
  if (v.get("s") <= 1) return 0;
  // splits > 1 only when batch * splits <= fill * multiprocessors.
  const std::size_t candidates =
      has_row_lists(v) ? max_split_rows(v, device) * static_cast<std::size_t>(row_list_entries(v))
                       : static_cast<std::size_t>(kTopkMaxK) * max_split_rows(v, device);
  return counter_bytes(v, device) + row_histogram_bytes(v, device) + sizeof(unsigned long long) * candidates;
}

TopkClusterFit topk_select_cluster_fit(Device& device, const KernelHandle& kernel, const Variant& v) {
  TopkClusterFit fit;
  if (!is_cluster(v)) return fit;
  const std::size_t smem = topk_select_dynamic_shared_bytes(v, device.info());
  const Dim3 block{static_cast<unsigned>(v.get("t")), 1, 1};
  for (int c = 2; c <= TopkClusterFit::kMaxBlocks; ++c)
    fit.clusters[static_cast<std::size_t>(c)] =
        device.max_active_clusters(kernel, block, static_cast<unsigned>(c), static_cast<unsigned>(smem));
  return fit;
}

void launch_topk_select(Device& device, const KernelHandle& kernel, const TopkSelectLaunch& launch,
                        void* stream) {
  nsa_topk_params params = launch.params;
  void* args[] = {&params};
  device.launch_clustered(kernel, launch.grid, launch.block, launch.cluster, launch.dynamic_shared_bytes,
                          stream, args);
}

TopkSelectLaunch plan_topk_select(const Variant& v, const DeviceInfo& device, const TopkSelectProblem& p,
                                  void* workspace, std::size_t workspace_bytes, const TopkClusterFit& fit) {
  check_topk_select_variant(v);
  validate_topk_select_problem(p);
  const std::size_t smem = shared_budget(v, device);
  const int sel_capacity = next_pow2(p.k);
  const std::size_t cand_bytes = smem - histogram_bytes(v) - sizeof(unsigned long long) * sel_capacity;

  TopkSelectLaunch launch;
  launch.kernel_name = v.name();
  const int splits = plan_splits(v, device, p, fit);
  launch.grid = Dim3{static_cast<unsigned>(p.batch) * static_cast<unsigned>(splits), 1, 1};
  launch.block = Dim3{static_cast<unsigned>(v.get("t")), 1, 1};
  launch.cluster = is_cluster(v) && splits > 1 ? static_cast<unsigned>(splits) : 1u;
  launch.dynamic_shared_bytes = static_cast<unsigned>(smem);

  nsa_topk_params& k = launch.params;
  k.scores = p.scores;
  k.lengths = p.lengths;
  k.indices = p.indices;
  k.score_row_stride = p.score_row_stride;
  k.out_row_stride = p.out_row_stride;
  k.batch = p.batch;
  k.length = p.length;
  k.k = p.k;
  k.sorted = p.sorted ? 1 : 0;
  k.splits = splits;
  k.slice = (p.length + splits - 1) / splits;
  // Stream slices start on 16-byte boundaries of an aligned row: fewer scalar head loads.
  if (has_stream_buffer(v)) k.slice = (k.slice + 3) / 4 * 4;
  k.sel_capacity = sel_capacity;
  k.cand_capacity =
      has_row_lists(v) ? row_list_entries(v) : static_cast<int>(cand_bytes / sizeof(unsigned long long));
  // Threshold blocks scan two buffer counts packed in one int: at most 2^16 - 1 entries.
  const std::size_t buffer_entries =
      (smem - histogram_bytes(v) - state_bytes(v)) / sizeof(unsigned long long);
  k.buffer_capacity =
      static_cast<int>(is_threshold(v) ? std::min<std::size_t>(buffer_entries, 65535) : buffer_entries);
  const int block_elements = splits == 1 ? p.length : k.slice;
  k.sample = (is_threshold(v) && block_elements >= kThresholdSampleMinSlice) ||
                     (is_filter(v) && p.length >= kFilterSampleMinLength)
                 ? kThresholdSample
                 : 0;
  if (splits > 1) {
    launch.workspace_bytes =
        counter_bytes(v, device) + row_histogram_bytes(v, device) +
        sizeof(unsigned long long) * static_cast<std::size_t>(p.batch) * candidates_per_row(v, splits, p.k);
    if (workspace == nullptr || workspace_bytes < launch.workspace_bytes)
      bad_argument(fmt::format(
          "{} splits rows over {} blocks and needs a zeroed workspace of {} B; got {} B at {}", v.name(),
          splits, launch.workspace_bytes, workspace == nullptr ? 0 : workspace_bytes, workspace));
    // Threshold rows keep two counters in one 64-bit word; candidates are 64-bit too.
    if (reinterpret_cast<std::uintptr_t>(workspace) % 16 != 0)
      bad_argument(fmt::format("the topk_select workspace at {} is not 16-byte aligned", workspace));
    auto* base = static_cast<unsigned char*>(workspace);
    k.row_counters = reinterpret_cast<unsigned*>(base);
    k.row_histograms =
        has_stream_buffer(v) ? reinterpret_cast<unsigned*>(base + counter_bytes(v, device)) : nullptr;
    k.slice_workspace = reinterpret_cast<unsigned long long*>(base + counter_bytes(v, device) +
                                                              row_histogram_bytes(v, device));
  }
  return launch;
}

}  // namespace nsajit
