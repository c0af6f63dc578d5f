// topk_select, cluster variants (knob a = 3, NVIDIA sm_90): the threshold algorithm of
// threshold.cuh with the blocks of a split row launched as one thread-block cluster, so that
// they agree on the row's threshold digit through each other's shared memory and two cluster
// barriers instead of global atomics, a spin on a row counter and a last-block election (on the
// H100 those round trips were most of a split row's ~9 us after its stream).
//
// Phase 1 (every block): the stream filter over the block's slice, as threshold.cuh; then the
//   histogram of its buffer's top R bits in its own shared memory. Cluster barrier 1.
// Phase 2 (every block): sums the histograms of all blocks of the row (distributed shared
//   memory) into the row histogram, and those of the blocks before it into `lower`; narrows
//   the row histogram for k (digit D). The block's output range and its range in the row's
//   candidate list follow from `lower`: no atomics.
// Phase 3 (every block): emits its elements above D, lists those of digit D in global memory.
//   Cluster barrier 2: every output and candidate is written, every histogram read.
// Phase 4 (cluster rank 0): selects the top (k - above) of the candidates, as threshold.cuh's
//   last block does, with the same fallbacks (rows short of k, a sampled tau too high, too many
//   candidates). The other blocks have exited.
//
// The planner launches these variants with clusters of p.splits blocks (<= 8, the portable
// cluster size), so a row's blocks are one cluster and its rank is the block's part of the row;
// rows of one block run without a cluster. No workspace counters or row histograms are used:
// only the candidate lists.
//
// Scratch: the row histogram and `lower` (2 x 2^R words) live in the top 2^R entries of the
// buffer, which the stream leaves free (it holds at most capacity - 4 T entries, and 2^R <= 4 T).
#pragma once

#include "topk_select/threshold.cuh"

namespace nsa_topk {

template <int T, int I, int R, int W>
__device__ __forceinline__ void topk_cluster_select(const nsa_topk_params& p) {
  constexpr int kBins = 1 << R;
  static_assert(kBins <= 4 * T, "the row histogram and lower fit the buffer's free top");
  NSA_TOPK_DYNAMIC_SHARED(nsa_topk_smem);
  ThresholdBlock<T, I, R, W> tb;
  tb.setup(nsa_topk_smem, p);
  SelectState* const st = tb.st;
  const int row = tb.rs.row, part = tb.rs.part;
  // A launch whose clusters are not the rows' blocks would mix rows: nothing is written.
  if (p.splits > 1 && NSA_CLUSTER_BLOCKS() != (unsigned)p.splits) return;
  NSA_TOPK_TRACE(0);
  tb.stream(p);
  NSA_TOPK_TRACE(1);
  if (p.splits == 1) {
    tb.finish_whole_row(p);
    NSA_TOPK_TRACE(7);
    return;
  }

  // Phase 1: the block's histogram, visible to the cluster after barrier 1.
  const int count = tb.ss->count;
  tb.block.buffer_histogram(count);
  NSA_CLUSTER_SYNC();
  NSA_TOPK_TRACE(2);

  // Phase 2: the row histogram and the histogram of the blocks before this one.
  u32* const row_hist = (u32*)(tb.block.buf + (p.buffer_capacity - kBins));
  u32* const lower = row_hist + kBins;
  for (int b = (int)threadIdx.x; b < kBins; b += T) {
    u32 h[8];
    NSA_TOPK_UNROLL
    for (int r = 0; r < 8; ++r) h[r] = r < p.splits ? NSA_CLUSTER_MAP(tb.hist, (unsigned)r)[b] : 0u;
    u32 total = 0u, before = 0u;
    NSA_TOPK_UNROLL
    for (int r = 0; r < 8; ++r) {
      total += h[r];
      before += r < part ? h[r] : 0u;
    }
    row_hist[b] = total;
    lower[b] = before;
  }
  NSA_TOPK_TRACE(3);
  const RowDigit d = tb.narrow_row(p, row_hist);  // its first barrier orders the sums
  NSA_TOPK_TRACE(4);

  // The block's ranges: its output starts after the elements the blocks before it emit (their
  // digits above D, or all of them when the row is short of k), its candidates after theirs of
  // digit D. Rows short of k also need the row's total, which is then < k: both sums fit 16 bits.
  const int emit_floor = d.all_emit ? 0 : (int)d.digit + 1;
  int sums = 0;
  for (int b = (int)threadIdx.x; b < kBins; b += T)
    sums += (b >= emit_floor && !d.again ? (int)lower[b] << 16 : 0) + (d.all_emit ? (int)row_hist[b] : 0);
  sums = tb.block.radix.inclusive_scan(sums);  // thread T - 1 holds the block-wide sums
  const int cand_base = d.fits && !d.all_emit ? (int)lower[d.digit] : 0;
  if (threadIdx.x == T - 1) st->row_emitted = sums & 0xffff;

  // Phase 3.
  u64* list = p.slice_workspace + (u64)row * (u64)p.cand_capacity;
  tb.emit_and_list(p, d, count, list,
                   [&](int, int) { return ((u64)(u32)cand_base << 32) | (u64)(u32)(sums >> 16); });
  NSA_TOPK_TRACE(5);
  NSA_CLUSTER_SYNC();  // every output and candidate written, every histogram read
  if (part != 0) return;

  // Phase 4 (cluster rank 0).
  const bool staged = tb.stage_candidates(d, p, list);
  const int emitted = st->row_emitted;
  __syncthreads();  // the candidates are staged
  tb.finish_split_row(p, d, list, staged, emitted);
}

}  // namespace nsa_topk
