// topk_select, cluster variants (knob a = 3, NVIDIA sm_90): the threshold algorithm of
// threshold.cuh with the blocks of a split row launched as one thread-block cluster, so that
// they agree on the row's threshold digit through cluster rank 0's shared memory and cluster
// barriers instead of global atomics, a spin on a row counter and a last-block election.
//
// Start: rank 0 zeroes the row histogram and the counters in its shared memory and every block
//   arrives at the cluster barrier; it waits there only once its slice has streamed in, so the
//   zeroing is ordered before any block adds to them without a wait at the start.
// Phase 1 (every block): the stream filter over the block's slice, as threshold.cuh; the
//   histogram of its buffer's top R bits in its own shared memory, added into rank 0's row
//   histogram (distributed shared memory reductions). Cluster barrier.
// Phase 2 (every block): copies the row histogram from rank 0 and narrows it for k (digit D).
// Phase 3 (every block): reserves its output and candidate ranges with one atomic on rank 0's
//   counters, emits its elements above D and lists those of digit D in global memory. Cluster
//   barrier: every output and candidate is written, every access to rank 0 done.
// Phase 4 (rank 0): selects the top (k - above) of the candidates, as threshold.cuh's last
//   block does, with the same fallbacks (rows short of k, a sampled tau too high, too many
//   candidates). The other blocks have exited.
//
// (Every block reading every other block's histogram instead cost 1.7-2.6 us on the H100 where
// these reductions and one copy cost less: docs/perf-log.md, topk_select v8.)
//
// The planner launches these variants with clusters of p.splits blocks (<= 8, the portable
// cluster size, and few enough that all the batch's clusters fit the GPU at once), so that a
// row's blocks are one cluster and its rank is the block's part of the row; rows of one block
// run without clusters. Of the workspace only the candidate lists are used. (Falling back to
// the threshold kernel's path inside this kernel where clusters do not fit made every shape
// ~1 us slower on the H100, that path included: docs/perf-log.md, topk_select v8.)
// Shared memory: the threshold layout (buffer, histogram, NSA_TOPK_THRESHOLD_STATE_BYTES of
// state), then the row histogram (2^R words) and NSA_TOPK_CLUSTER_COUNTER_BYTES of counters.
#pragma once

#include "topk_select/threshold.cuh"

namespace nsa_topk {

template <int T, int I, int R, int W>
__device__ __forceinline__ void topk_cluster_select(const nsa_topk_params& p) {
  constexpr int kBins = 1 << R;
  NSA_TOPK_DYNAMIC_SHARED(nsa_topk_smem);
  ThresholdBlock<T, I, R, W> tb;
  tb.setup(nsa_topk_smem, p);
  const int row = tb.rs.row, part = tb.rs.part;
  // A launch whose clusters are not the rows' blocks would mix rows: nothing is written.
  if (p.splits > 1 && NSA_CLUSTER_BLOCKS() != (unsigned)p.splits) return;
  u32* const own_row_hist = (u32*)((unsigned char*)(tb.hist + kBins) + NSA_TOPK_THRESHOLD_STATE_BYTES);
  u64* const own_counters = (u64*)(own_row_hist + kBins);  // emitted (low half), candidates
  if (p.splits > 1) {
    if (part == 0) {
      for (int b = (int)threadIdx.x; b < kBins; b += T) own_row_hist[b] = 0u;
      if (threadIdx.x == 0) *own_counters = 0ull;
    }
    NSA_CLUSTER_ARRIVE();  // waited for after the stream
  }
  NSA_TOPK_TRACE(0);
  tb.stream(p);
  NSA_TOPK_TRACE(1);
  if (tb.finished_whole_row(p)) return;

  // Phase 1: the block's histogram, added into rank 0's.
  const int count = tb.ss->count;
  tb.block.buffer_histogram(count);
  u32* const row_hist = NSA_CLUSTER_MAP(own_row_hist, 0u);
  u64* const counters = NSA_CLUSTER_MAP(own_counters, 0u);
  NSA_CLUSTER_WAIT();  // rank 0 has zeroed them
  for (int b = (int)threadIdx.x; b < kBins; b += T)
    if (tb.hist[b] != 0u) atomicAdd(row_hist + b, tb.hist[b]);
  NSA_CLUSTER_SYNC();
  NSA_TOPK_TRACE(2);

  // Phase 2: narrow the row histogram (copied over the block's own) for k.
  for (int b = (int)threadIdx.x; b < kBins; b += T) tb.hist[b] = row_hist[b];
  NSA_TOPK_TRACE(3);
  const RowDigit d = tb.narrow_row(p);  // its first barrier orders the copy
  NSA_TOPK_TRACE(4);

  // Phase 3.
  u64* list = p.slice_workspace + (u64)row * (u64)p.cand_capacity;
  tb.emit_and_list(p, d, count, list, [&](int emits, int cands) {
    return atomicAdd(counters, ((u64)cands << 32) | (u64)emits);
  });
  NSA_CLUSTER_SYNC();  // every output and candidate written, every access to rank 0 done
  NSA_TOPK_TRACE(5);
  if (part != 0) return;

  // Phase 4 (rank 0).
  const bool staged = tb.stage_candidates(d, p, list);
  const int emitted = (int)(u32)*own_counters;
  __syncthreads();  // the candidates are staged
  tb.finish_split_row(p, d, list, staged, emitted);
}

}  // namespace nsa_topk
