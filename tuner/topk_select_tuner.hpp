// Tunes topk_select for one k through the same machinery as sparse_mla_fwd: compile every
// unpruned variant, check each exactly against the CPU reference (ties, NaN, lengths), time
// the survivors on random scores at a small and a large batch, keep the best overall.
#pragma once

#include <string>
#include <vector>

#include "runtime/loaded_variant.hpp"
#include "tuner/sparse_mla_tuner.hpp"

namespace nsajit {

struct TopkSelectTuneOptions {
  std::vector<int> batches = {16, 128};  // the rule is one variant for every B: the split is planned per call
  int length = 131072;
  int warmup = 3;
  int reps = 20;
  int jobs = 0;
  std::vector<std::string> only;  // non-empty: only these variants (kept or opt-in) are candidates
};

[[nodiscard]] TopkTuneResult tune_topk_select_k(Device& device, const Compiler& compiler,
                                                const TopkSelectTuneOptions& options, int k,
                                                TuneEvents& events);

// Median time of one launch of `loaded` on [batch, length] random scores (workspace included).
struct TopkTiming {
  double median_ms = 0;
  double gbps = 0;  // scores read once: batch * length * 4 bytes / time
};
[[nodiscard]] TopkTiming time_topk_select(Device& device, LoadedVariant& loaded, int batch, int length, int k,
                                          int warmup, int reps, void* stream);

}  // namespace nsajit
