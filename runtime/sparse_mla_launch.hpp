// sparse_mla_fwd on the host side: argument validation (nothing out of bounds is ever
// launched) and the launch plan of one variant: grid, block, shared memory, topk splits.
#pragma once

#include <cstddef>

#include "generator/variant.hpp"
#include "nsajit/nsajit.h"
#include "runtime/backend.hpp"
#include "templates/sparse_mla_fwd/params.h"

namespace nsajit {

inline constexpr int kMaxTopk = 16384;

// A validated call: the kernel parameters minus the split fields, plus the shape facts.
struct SparseMlaProblem {
  NsaSparseMlaParams params{};
  int d_qk = 0;
  [[nodiscard]] long long rows() const { return static_cast<long long>(params.batch) * params.s_q; }
};

// Throws Error(invalid_argument) naming the argument, expected and actual value.
[[nodiscard]] SparseMlaProblem validate_sparse_mla(const nsajit_sparse_mla_args& args);

struct SparseMlaLaunch {
  NsaSparseMlaParams params{};
  Dim3 grid, block;
  unsigned shared_bytes = 0;
  bool needs_combine = false;  // num_splits > 1
  Dim3 combine_grid, combine_block;
};

// How many blocks share one row's topk: enough to fill `multiprocessors` when the grid
// alone would leave them idle, each split keeping >= 2 tiles. 1 = no split. A variant that
// keeps blocks_per_sm (>= 2) CTAs resident per SM fills that many slots per SM, in one wave.
[[nodiscard]] int choose_topk_splits(long long ctas, int multiprocessors, int topk, int block_topk,
                                     int blocks_per_sm = 1);

// CTAs of v one SM holds at once by threads and shared memory (Hopper: 2048 threads, 228 KB),
// at most 2 (registers are not known before the binary; the 2-CTA variants are built for it).
[[nodiscard]] int sparse_mla_blocks_per_sm(const Variant& v);
// Whether `ctas` CTAs leave some of the multiprocessors' slots idle (blocks_per_sm per SM): the
// regime where the topk split applies, and where a rule's decode entry serves the call.
[[nodiscard]] bool sparse_mla_grid_leaves_sms_idle(long long ctas, int multiprocessors, int blocks_per_sm);

// Workspace bytes a plan with `splits` needs (0 when splits == 1).
[[nodiscard]] std::size_t sparse_mla_workspace_bytes(const SparseMlaProblem& problem, int splits);

// Block size and dynamic shared memory of an NVIDIA variant (mma.sync or wgmma layout).
struct SparseMlaBlock {
  int threads = 0;
  int shared_bytes = 0;
};
[[nodiscard]] SparseMlaBlock sparse_mla_block(const Variant& variant);

// The launch of `variant` (an NVIDIA sm90 variant) for `problem`. `workspace` must hold
// sparse_mla_workspace_bytes(problem, splits) bytes when splits > 1.
[[nodiscard]] SparseMlaLaunch plan_sparse_mla(const SparseMlaProblem& problem, const Variant& variant,
                                              int splits, void* workspace);

}  // namespace nsajit
