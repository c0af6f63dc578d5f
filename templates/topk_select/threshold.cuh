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

// What the blocks of a split row know once the row histogram is narrowed for k (block-uniform).
struct RowDigit {
  u32 digit;      // D: holds the row's k-th largest
  int need;       // of the digit-D candidates
  int above;      // k - need elements have a larger digit: all in the top k
  int cands;      // elements of digit D in the row (D is 0 when no digit is fixed)
  bool again;     // the sampled tau was above the row's k-th largest: select the row again
  bool all_emit;  // fewer than k in the whole row: every buffered element is out
  bool fits;      // the digit-D candidates fit the row's list
};

// One block of a threshold row: its shared-memory state, its slice, and the steps that the
// global-counter kernel (below) and the cluster kernel (topk_select/cluster.cuh) share.
template <int T, int I, int R, int W>
struct ThresholdBlock {
  static constexpr int kBins = 1 << R;
  StreamSelect<T, I, R, W> block;
  u32* hist;  // the block's own histogram (after the buffer)
  SelectState* st;
  StreamState* ss;
  RowSlice rs;
  u64 sampled_tau;

  // Points the block at its dynamic shared memory: the buffer, the histogram, then
  // NSA_TOPK_THRESHOLD_STATE_BYTES of SelectState, StreamState and warp sums.
  NSA_TOPK_BLOCK_FN void setup(u64* smem, const nsa_topk_params& p) {
    static_assert(T % W == 0 && T / W <= 32, "block must hold at most 32 warps");
    static_assert(R >= 4 && R <= 12, "radix bits out of range");
    static_assert(I >= 1 && I <= 32, "compaction keeps one bit per item");
    static_assert(sizeof(SelectState) <= 64 && sizeof(StreamState) <= 64 &&
                      128 + 12 * (T / W) <= NSA_TOPK_THRESHOLD_STATE_BYTES,
                  "the block state fits NSA_TOPK_THRESHOLD_STATE_BYTES");
#if defined(NSA_GPU_HIP) && defined(__AMDGCN_WAVEFRONT_SIZE)
    static_assert(W == __AMDGCN_WAVEFRONT_SIZE, "W must equal the wavefront size");
#endif
    hist = (u32*)(smem + p.buffer_capacity);
    unsigned char* tail = (unsigned char*)(hist + kBins);
    st = (SelectState*)tail;
    ss = (StreamState*)(tail + 64);
    block.init(smem, p.buffer_capacity, st, ss, (int*)(tail + 128));
    rs = row_slice(p);
    sampled_tau = 0ull;
  }

  // Phase 1's filter: the slice into the buffer, from the sampled tau when p.sample says so.
  // NVIDIA: the sample's loads wait on DRAM while the stream's first loads are in flight.
  // CDNA: the sample first (run_row appends the head and tail there before the body).
  NSA_TOPK_BLOCK_FN void stream(const nsa_topk_params& p) {
    const float* scores = rs.scores;
    const int len = rs.len;
#if defined(NSA_GPU_HIP)
    sampled_tau = block.sample_tau(scores, len, p.k, p.sample);
    block.run_row(scores, rs.begin, rs.n, p.k);
#else
    block.run_row(scores, rs.begin, rs.n, p.k,
                  [&] { sampled_tau = block.sample_tau(scores, len, p.k, p.sample); });
#endif
  }

  // A row of one block (p.splits == 1, else false): its buffer holds the row's top k (or the
  // row again from tau 0 when the sampled tau was too high); writes it out and returns true.
  NSA_TOPK_BLOCK_FN bool finished_whole_row(const nsa_topk_params& p) {
    if (p.splits != 1) return false;
    if (sampled_tau != 0ull && ss->count < p.k) {  // the sample's tau was too high: again from 0
      __syncthreads();                             // every thread has read ss->count
      if (threadIdx.x == 0) {
        ss->tau = 0ull;
        ss->count = 0;
      }
      __syncthreads();
      block.run_row(rs.scores, 0, rs.len, p.k);
    }
    block.write_row(p, rs.row, block.finish(p.k));
    return true;
  }

  // The lowest composite of digit D (D in the top R bits).
  static __device__ __forceinline__ u64 digit_floor(const RowDigit& d) {
    return (u64)d.digit << (64 - R);
  }

  // The finishing block's staged candidates: the top d.cands entries of the buffer, above the
  // selected set.
  __device__ __forceinline__ u64* stage(const RowDigit& d, const nsa_topk_params& p) const {
    return block.buf + (p.buffer_capacity - d.cands);
  }

  // Phase 2's start: narrows the row histogram, which the caller put in hist, for k.
  NSA_TOPK_BLOCK_FN RowDigit narrow_row(const nsa_topk_params& p) {
    if (threadIdx.x == 0) {
      st->prefix = 0ull;
      st->mask = 0ull;
      st->need = p.k;
      st->bucket = 0;
    }
    __syncthreads();
    block.radix.narrow(64 - R, R);
    // Fewer than k buffered in the whole row: no digit is fixed. With tau 0 the buffers hold the
    // whole row, which has fewer than k elements: every one is emitted. With a sampled tau, the
    // row has fewer than k elements above it: nothing is emitted, the row's finishing block
    // selects it again from tau 0.
    RowDigit d;
    const bool short_of_k = st->mask == 0ull;
    d.again = short_of_k && sampled_tau != 0ull;
    d.all_emit = short_of_k && !d.again;
    d.digit = (u32)(st->prefix >> (64 - R));
    d.need = st->need;
    d.above = p.k - d.need;
    d.cands = st->bucket;
    d.fits = !d.again && d.cands <= p.cand_capacity;
    return d;
  }

  // Phase 3: writes the positions of the buffered elements above digit D (all of them when
  // all_emit) to out and copies those of digit D to the row's candidate list. Each thread counts
  // its own first, one block scan gives its offsets, and thread T - 1 (which holds the block's
  // totals) gets the block's two ranges from reserve(emits, candidates), packed as
  // candidates << 32 | emits. Ends with a barrier.
  template <class Reserve>
  NSA_TOPK_BLOCK_FN void emit_and_list(const nsa_topk_params& p, const RowDigit& d, int count, u64* list,
                                       Reserve&& reserve) {
    int* out = p.indices + (long long)rs.row * p.out_row_stride;
    int my_emit = 0, my_cand = 0;
    for (int j = d.again ? count : (int)threadIdx.x; j < count; j += T) {
      const u32 digit = (u32)(block.buf[j] >> (64 - R));
      my_emit += d.all_emit || digit > d.digit ? 1 : 0;
      my_cand += !d.all_emit && digit == d.digit && d.fits ? 1 : 0;
    }
    // One scan for both counts: a block buffers fewer than 2^16 entries.
    const int both_end = block.radix.inclusive_scan((my_emit << 16) | my_cand);
    const int emit_end = both_end >> 16, cand_end = both_end & 0xffff;
    if (threadIdx.x == T - 1) {
      const u64 both = reserve(emit_end, cand_end);
      st->selected = (int)(u32)both;
      st->cand = (int)(u32)(both >> 32);
    }
    __syncthreads();
    int at_emit = st->selected + emit_end - my_emit;
    int at_cand = st->cand + cand_end - my_cand;
    for (int j = d.again ? count : (int)threadIdx.x; j < count; j += T) {
      const u64 c = block.buf[j];
      const u32 digit = (u32)(c >> (64 - R));
      if (d.all_emit || digit > d.digit) {
        if (at_emit < p.k) out[at_emit] = position_of(c);
        ++at_emit;
      } else if (digit == d.digit && d.fits) {
        if (at_cand < p.cand_capacity) list[at_cand] = c;
        ++at_cand;
      }
    }
    __syncthreads();
  }

  // Whether the finishing block stages the candidates in shared memory, above the selected set.
  NSA_TOPK_BLOCK_FN bool stage_candidates(const RowDigit& d, const nsa_topk_params& p, const u64* list) {
    const bool staged = d.fits && !d.all_emit && d.cands <= p.buffer_capacity - NSA_TOPK_MAX_K;
    if (staged) {
      u64* const to = stage(d, p);
      for (int i = (int)threadIdx.x; i < d.cands; i += T) to[i] = NSA_TOPK_LOAD_COHERENT(list + i);
    }
    return staged;
  }

  // Phase 4 (the block that finishes the row, after every other block's outputs and candidates
  // are visible and a barrier): the top d.need of the candidates complete the row. `emitted`:
  // how many the row's blocks emitted (read only when all_emit).
  NSA_TOPK_BLOCK_FN void finish_split_row(const nsa_topk_params& p, const RowDigit& d, const u64* list,
                                          bool staged, int emitted) {
    int* out = p.indices + (long long)rs.row * p.out_row_stride;
    if (d.all_emit) {
      // The row has fewer than k elements: all are out; fill the tail, sort if asked.
      int total = emitted < p.k ? emitted : p.k;
      if (p.sorted) {
        for (int i = (int)threadIdx.x; i < total; i += T) {
          const int pos = NSA_TOPK_LOAD_COHERENT(out + i);
          block.buf[i] = composite(order_key(rs.scores[pos]), pos);
        }
        __syncthreads();
        block.write_row(p, rs.row, total);
      } else {
        for (int i = total + (int)threadIdx.x; i < p.k; i += T) out[i] = -1;
      }
      return;
    }
    if (!d.fits) {
      // Too many candidates for the list, or a sampled tau above the row's k-th largest (then
      // D is 0): one block selects the whole row again, from the lowest composite of digit D.
      if (threadIdx.x == 0) {
        ss->tau = digit_floor(d);
        ss->count = 0;
        ss->fill = 0;
      }
      __syncthreads();
      block.run_row(rs.scores, 0, rs.len, p.k);
      block.write_row(p, rs.row, block.finish(p.k));
      return;
    }
    // The candidates all have digit D. Staged in the top of the buffer when they fit above the
    // selected set (<= NSA_TOPK_MAX_K entries), so the select's passes stay in shared memory.
    if (staged)
      block.radix.select(SharedListSource{stage(d, p), d.cands}, d.cands, d.need, digit_floor(d), R);
    else
      block.radix.select(GlobalListSource{list, d.cands}, d.cands, d.need, digit_floor(d), R);
    const int got = st->selected;  // == need
    NSA_TOPK_TRACE(6);
    if (!p.sorted) {
      for (int i = (int)threadIdx.x; i < got; i += T) out[d.above + i] = position_of(block.buf[i]);
      NSA_TOPK_TRACE(7);
      return;
    }
    // Sorted: the whole row's k composites, rebuilt from the emitted positions, then sorted.
    for (int i = (int)threadIdx.x; i < d.above; i += T) {
      const int pos = NSA_TOPK_LOAD_COHERENT(out + i);
      block.buf[got + i] = composite(order_key(rs.scores[pos]), pos);
    }
    __syncthreads();
    block.write_row(p, rs.row, got + d.above);
  }
};

template <int T, int I, int R, int W>
__device__ __forceinline__ void topk_threshold_select(const nsa_topk_params& p) {
  NSA_TOPK_DYNAMIC_SHARED(nsa_topk_smem);
  constexpr int kBins = 1 << R;
  ThresholdBlock<T, I, R, W> tb;
  tb.setup(nsa_topk_smem, p);
  SelectState* const st = tb.st;
  const int row = tb.rs.row;
  NSA_TOPK_TRACE(0);
  tb.stream(p);
  NSA_TOPK_TRACE(1);
  if (tb.finished_whole_row(p)) return;

  // Phase 1 (above): filter the slice; histogram the buffer into the row histogram.
  const int count = tb.ss->count;
  unsigned* counters = p.row_counters + (u64)row * kRowCounters;
  unsigned* row_hist = p.row_histograms + (u64)row * (u64)kBins;
  tb.block.add_to_row_histogram(count, row_hist);
  NSA_TOPK_TRACE(2);

  // Phase 2: every block of the row has added its histogram; narrow it for k.
  if (threadIdx.x == 0) {  // after add_to_row_histogram's barrier
    block_release(&counters[kArrived]);
    while (NSA_TOPK_SPIN_LOAD(&counters[kArrived]) < (unsigned)p.splits) NSA_TOPK_SPIN_PAUSE();
    __threadfence();
  }
  __syncthreads();
  for (int b = (int)threadIdx.x; b < kBins; b += T) tb.hist[b] = NSA_TOPK_LOAD_COHERENT(row_hist + b);
  NSA_TOPK_TRACE(3);
  const RowDigit d = tb.narrow_row(p);
  NSA_TOPK_TRACE(4);

  // Phase 3: one global atomic per block reserves its ranges on the row's counters (a
  // warp-level atomic per 32 entries waited ~1 us each on the row's contended counters).
  u64* list = p.slice_workspace + (u64)row * (u64)p.cand_capacity;
  tb.emit_and_list(p, d, count, list, [&](int emits, int cands) {
    return atomicAdd((u64*)(counters + kEmitted), ((u64)cands << 32) | (u64)emits);
  });
  NSA_TOPK_TRACE(5);
  if (threadIdx.x == 0) st->last = block_release_last(&counters[kFinished], p.splits);
  __syncthreads();
  if (!st->last) return;

  // Phase 4 (last block of the row): every other block has finished writing. The candidates'
  // count is known since phase 2: they are read at once, together with the counters.
  const bool staged = tb.stage_candidates(d, p, list);
  const int emitted = d.all_emit ? (int)NSA_TOPK_LOAD_COHERENT(&counters[kEmitted]) : 0;
  __syncthreads();  // every thread has read the counters and staged its candidates
  if (threadIdx.x == 0) {
    counters[kArrived] = 0u;
    counters[kEmitted] = 0u;
    counters[kCandidates] = 0u;
    counters[kFinished] = 0u;
  }
  for (int b = (int)threadIdx.x; b < kBins; b += T) row_hist[b] = 0u;
  tb.finish_split_row(p, d, list, staged, emitted);
}

}  // namespace nsa_topk
