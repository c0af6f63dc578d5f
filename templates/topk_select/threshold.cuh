// topk_select, threshold variants (knob a = 2): the blocks of a split row agree on one global
// threshold digit instead of each selecting its slice's exact top k.
//
// Phase 1 (every block): the stream filter of kernel.cuh over the block's slice leaves in the
//   shared buffer every slice element >= the block's tau. tau starts at 0, or at the tau that
//   params.sample elements of the row give (the same in every block of the row); shrinks raise
//   it to at most the slice's k-th largest, which never exceeds the row's. So the buffers
//   together hold the row's top k whenever k elements reach the sampled tau; when fewer do,
//   phase 2 finds fewer than k buffered and phase 4 selects the row again from tau 0.
//   Each block adds the histogram of its buffer's top R bits to the row histogram.
// Phase 2 (every block): waits until all blocks of its row have added theirs, then narrows the
//   row histogram for k: digit D holds the row's k-th largest; `above` buffered elements have
//   a larger digit, and every one of them is in the top k.
// Phase 3 (every block): writes the positions of its buffered elements with a digit > D
//   straight to the output (its range reserved on a per-row counter) and copies those with
//   digit D to the row's candidate list in global memory.
// Phase 4 (the last block of the row): the top (k - above) of the candidates complete the row.
//   If the candidates did not fit the list (rows of many equal scores), it selects the whole
//   row again, one block, starting from tau = the lowest composite of digit D, and overwrites
//   the output: slower, never wrong.
//
// The wait in phase 2 needs every block of a row to run eventually while its siblings spin.
// Blocks are dispatched in increasing index and a row's blocks have consecutive indices, so at
// most one row is partly resident at a time; the planner keeps splits <= the multiprocessors,
// so that row always fits once the rows before it finish. A row of one block never waits.
//
// Workspace (params fields, all zero at rest; the last block of a row zeroes its own again):
//   row_counters    [batch][4]: blocks arrived, blocks finished, emitted, candidates written
//                   (16-byte aligned rows: the last two form one 64-bit word)
//   row_histograms  [batch][1 << R]
//   slice_workspace [batch][cand_capacity]: the digit-D candidates of each row
// All block state lives in dynamic shared memory (no __shared__ variables): the buffer, the
// histogram, then NSA_TOPK_THRESHOLD_STATE_BYTES of SelectState, StreamState and warp sums
// (3 T / W ints: the scans' and the stream appends' two parities).
#pragma once

#include "topk_select/kernel.cuh"

#ifndef NSA_TOPK_SPIN_PAUSE
#if defined(NSA_GPU_HIP)
#define NSA_TOPK_SPIN_PAUSE() __builtin_amdgcn_s_sleep(2)
#else
#define NSA_TOPK_SPIN_PAUSE() __nanosleep(64)
#endif
#endif

// Reads a counter other blocks update, never cached or hoisted out of the polling loop. (A
// build that polled with __ldcg, a non-volatile load, and no pause returned wrong rows on the
// H100: the wait did not hold.)
#ifndef NSA_TOPK_SPIN_LOAD
#if defined(NSA_GPU_HIP)
#define NSA_TOPK_SPIN_LOAD(ptr) NSA_LOAD_COHERENT(ptr)  // an agent-scope atomic load
#else
#define NSA_TOPK_SPIN_LOAD(ptr) (*(const volatile unsigned*)(ptr))  // ld.volatile: L2, every time
#endif
#endif

namespace nsa_topk {

// The emitted and candidate counters share one 64-bit word (emitted in its low half), so one
// atomic reserves a block's two ranges.
enum { kArrived = 0, kFinished = 1, kEmitted = 2, kCandidates = 3, kRowCounters = 4 };

template <int T, int I, int R, int W>
__device__ __forceinline__ void topk_threshold_select(const nsa_topk_params& p) {
  static_assert(T % W == 0 && T / W <= 32, "block must hold at most 32 warps");
  static_assert(R >= 4 && R <= 12, "radix bits out of range");
  static_assert(I >= 1 && I <= 32, "compaction keeps one bit per item");
  static_assert(sizeof(SelectState) <= 64 && sizeof(StreamState) <= 64 &&
                    128 + 12 * (T / W) <= NSA_TOPK_THRESHOLD_STATE_BYTES,
                "the block state fits NSA_TOPK_THRESHOLD_STATE_BYTES");
#if defined(NSA_GPU_HIP) && defined(__AMDGCN_WAVEFRONT_SIZE)
  static_assert(W == __AMDGCN_WAVEFRONT_SIZE, "W must equal the wavefront size");
#endif
  NSA_TOPK_DYNAMIC_SHARED(nsa_topk_smem);
  constexpr int kBins = 1 << R;
  u32* hist = (u32*)(nsa_topk_smem + p.buffer_capacity);
  unsigned char* tail = (unsigned char*)(hist + kBins);
  SelectState* st = (SelectState*)tail;
  StreamState* ss = (StreamState*)(tail + 64);
  int* warp_sums = (int*)(tail + 128);

  StreamSelect<T, I, R, W> block;
  block.init(nsa_topk_smem, p.buffer_capacity, st, ss, warp_sums);
  const RowSlice rs = row_slice(p);
  const int row = rs.row, len = rs.len;
  const float* scores = rs.scores;
  NSA_TOPK_TRACE(0);
  // NVIDIA: the sample's loads wait on DRAM while the stream's first loads are in flight.
  // CDNA: the sample first (run_row appends the head and tail there before the body).
  u64 sampled_tau = 0ull;
#if defined(NSA_GPU_HIP)
  sampled_tau = block.sample_tau(scores, len, p.k, p.sample);
  block.run_row(scores, rs.begin, rs.n, p.k);
#else
  block.run_row(scores, rs.begin, rs.n, p.k,
                [&] { sampled_tau = block.sample_tau(scores, len, p.k, p.sample); });
#endif
  NSA_TOPK_TRACE(1);
  if (p.splits == 1) {
    if (sampled_tau != 0ull && ss->count < p.k) {  // the sample's tau was too high: again from 0
      __syncthreads();                             // every thread has read ss->count
      if (threadIdx.x == 0) {
        ss->tau = 0ull;
        ss->count = 0;
      }
      __syncthreads();
      block.run_row(scores, 0, len, p.k);
    }
    block.write_row(p, row, block.finish(p.k));
    NSA_TOPK_TRACE(7);
    return;
  }

  // Phase 1 (above): filter the slice; histogram the buffer into the row histogram.
  const int count = ss->count;
  unsigned* counters = p.row_counters + (u64)row * kRowCounters;
  unsigned* row_hist = p.row_histograms + (u64)row * (u64)kBins;
  block.add_to_row_histogram(count, row_hist);
  NSA_TOPK_TRACE(2);

  // Phase 2: every block of the row has added its histogram; narrow it for k.
  if (threadIdx.x == 0) {  // after add_to_row_histogram's barrier
    block_release(&counters[kArrived]);
    while (NSA_TOPK_SPIN_LOAD(&counters[kArrived]) < (unsigned)p.splits) NSA_TOPK_SPIN_PAUSE();
    __threadfence();
  }
  __syncthreads();
  for (int b = (int)threadIdx.x; b < kBins; b += T) hist[b] = NSA_TOPK_LOAD_COHERENT(row_hist + b);
  if (threadIdx.x == 0) {
    st->prefix = 0ull;
    st->mask = 0ull;
    st->need = p.k;
    st->bucket = 0;
  }
  __syncthreads();
  NSA_TOPK_TRACE(3);
  block.radix.narrow(64 - R, R);
  NSA_TOPK_TRACE(4);
  // Fewer than k buffered in the whole row: no digit is fixed. With tau 0 the buffers hold the
  // whole row, which has fewer than k elements: every one is emitted. With a sampled tau, the
  // row has fewer than k elements above it: nothing is emitted, the last block selects the row
  // again from tau 0 (the same block-uniform decision in every block of the row).
  const bool short_of_k = st->mask == 0ull;
  const bool again = short_of_k && sampled_tau != 0ull;
  const bool all_emit = short_of_k && !again;
  const u32 digit = (u32)(st->prefix >> (64 - R));
  const int need = st->need;  // of the digit-D candidates
  const int above = p.k - need;
  const int cands = st->bucket;
  const bool fits = !again && cands <= p.cand_capacity;

  // Phase 3: emit the elements above digit D, list the digit-D candidates. Each thread counts
  // its own first, a block scan gives its offsets, and one global atomic per counter and block
  // reserves the block's range (a warp-level atomic per 32 entries waited ~1 us each on the
  // row's contended counters).
  int* out = p.indices + (long long)row * p.out_row_stride;
  u64* list = p.slice_workspace + (u64)row * (u64)p.cand_capacity;
  int my_emit = 0, my_cand = 0;
  for (int j = again ? count : (int)threadIdx.x; j < count; j += T) {
    const u32 d = (u32)(block.buf[j] >> (64 - R));
    my_emit += all_emit || d > digit ? 1 : 0;
    my_cand += !all_emit && d == digit && fits ? 1 : 0;
  }
  // One scan for both counts: a block buffers fewer than 2^16 entries.
  const int both_end = block.radix.inclusive_scan((my_emit << 16) | my_cand);
  const int emit_end = both_end >> 16, cand_end = both_end & 0xffff;
  if (threadIdx.x == T - 1) {  // holds the block totals
    const u64 both = atomicAdd((u64*)(counters + kEmitted), ((u64)cand_end << 32) | (u64)emit_end);
    st->selected = (int)(u32)both;
    st->cand = (int)(u32)(both >> 32);
  }
  __syncthreads();
  int at_emit = st->selected + emit_end - my_emit;
  int at_cand = st->cand + cand_end - my_cand;
  for (int j = again ? count : (int)threadIdx.x; j < count; j += T) {
    const u64 c = block.buf[j];
    const u32 d = (u32)(c >> (64 - R));
    if (all_emit || d > digit) {
      if (at_emit < p.k) out[at_emit] = position_of(c);
      ++at_emit;
    } else if (d == digit && fits) {
      if (at_cand < p.cand_capacity) list[at_cand] = c;
      ++at_cand;
    }
  }
  __syncthreads();  // every thread's outputs and candidates, then thread 0 counts the block in
  NSA_TOPK_TRACE(5);
  if (threadIdx.x == 0) st->last = block_release_last(&counters[kFinished], p.splits);
  __syncthreads();
  if (!st->last) return;

  // Phase 4 (last block of the row): every other block has finished writing. The candidates'
  // count is known since phase 2: they are read at once, together with the counters.
  const bool staged = fits && !all_emit && cands <= p.buffer_capacity - NSA_TOPK_MAX_K;
  u64* const stage = block.buf + (p.buffer_capacity - cands);  // above the selected set
  if (staged)
    for (int i = (int)threadIdx.x; i < cands; i += T) stage[i] = NSA_TOPK_LOAD_COHERENT(list + i);
  const int emitted = all_emit ? (int)NSA_TOPK_LOAD_COHERENT(&counters[kEmitted]) : 0;
  __syncthreads();  // every thread has read the counters and staged its candidates
  if (threadIdx.x == 0) {
    counters[kArrived] = 0u;
    counters[kEmitted] = 0u;
    counters[kCandidates] = 0u;
    counters[kFinished] = 0u;
  }
  for (int b = (int)threadIdx.x; b < kBins; b += T) row_hist[b] = 0u;
  if (all_emit) {
    // The row has fewer than k elements: all are out; fill the tail, sort if asked.
    int total = emitted < p.k ? emitted : p.k;
    if (p.sorted) {
      for (int i = (int)threadIdx.x; i < total; i += T) {
        const int pos = NSA_TOPK_LOAD_COHERENT(out + i);
        block.buf[i] = composite(order_key(scores[pos]), pos);
      }
      __syncthreads();
      block.write_row(p, row, total);
    } else {
      for (int i = total + (int)threadIdx.x; i < p.k; i += T) out[i] = -1;
    }
    return;
  }
  if (!fits) {
    // Too many candidates for the list, or a sampled tau above the row's k-th largest (then
    // prefix is 0): one block selects the whole row again, from the lowest composite of digit D.
    if (threadIdx.x == 0) {
      ss->tau = st->prefix;
      ss->count = 0;
      ss->fill = 0;
    }
    __syncthreads();
    block.run_row(scores, 0, len, p.k);
    block.write_row(p, row, block.finish(p.k));
    return;
  }
  // The candidates all have digit D. Staged above in the top of the buffer when they fit above
  // the selected set (<= NSA_TOPK_MAX_K entries), so the select's passes stay in shared memory.
  if (staged) {
    block.radix.select(SharedListSource{stage, cands}, cands, need, (u64)digit << (64 - R), R);
  } else {
    block.radix.select(GlobalListSource{list, cands}, cands, need, (u64)digit << (64 - R), R);
  }
  const int got = st->selected;  // == need
  NSA_TOPK_TRACE(6);
  if (!p.sorted) {
    for (int i = (int)threadIdx.x; i < got; i += T) out[above + i] = position_of(block.buf[i]);
    NSA_TOPK_TRACE(7);
    return;
  }
  // Sorted: the whole row's k composites, rebuilt from the emitted positions, then sorted.
  for (int i = (int)threadIdx.x; i < above; i += T) {
    const int pos = NSA_TOPK_LOAD_COHERENT(out + i);
    block.buf[got + i] = composite(order_key(scores[pos]), pos);
  }
  __syncthreads();
  block.write_row(p, row, got + above);
}

}  // namespace nsa_topk
