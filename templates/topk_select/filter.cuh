// topk_select, filter variants (knob a = 4): one lean read of the row, then a finish from bins.
//
// A block takes its tau from params.sample evenly spaced elements of the whole row (the threshold
// variants' sample_tau; no sample for short rows: tau 0 keeps everything), then reads its part
// of the row once with I float4 loads in flight per thread, the next round's loads issued before
// the current round is filtered. An element is kept when its score is >= tau's number: one float
// compare, one predicated store of the kept ones, and no barrier while the row streams (a warp
// reserves its slots in the shared buffer with one shared atomic). Every element >= tau is then
// in the buffer; settle() turns the entries into composites and counts them in 2^R bins above
// tau. When at least k are kept, the row's top k are among them: one narrow of the bins gives
// the bin of the k-th largest, the entries above it are out, and the few in it are ranked
// against each other (finish_from_bins); sorted output, or a bin too crowded (many near-equal
// scores), takes the stream kernel's shrink (an exact radix select over shared memory) instead.
// Otherwise - the sampled tau was above the row's k-th largest, or more elements passed than the
// buffer holds (rows of many equal scores) - the block selects the row again with the radix
// kernel's passes over global memory: slower, never wrong.
//
// One block per row, except long rows of small batches (the planner's splits): there every block
// lists its kept entries in the workspace and adds its bins to the row's, and the last block to
// count in finishes the row from the list in the same way; no block waits for another.
//
// The stream and threshold kernels append with one barrier per slot (8 elements a thread) and
// their filter builds a 64-bit composite for every element; at one block per row their stream
// took ~45 us for B 128 x L 131072 on the H100, issue-limited (docs/perf-log.md, topk_select v6;
// this kernel: 33 us, v9).
//
// Shared memory: the buffer (params.buffer_capacity entries), the radix histogram, then the bins.
// The fallbacks reuse the buffer as the radix kernel's selected set (sel_capacity entries) and
// its candidate buffer (the rest).
#pragma once

#include "topk_select/kernel.cuh"

namespace nsa_topk {

// A split row's counters in the workspace (params.row_counters, zero at rest).
enum { kFilterArrived = 0, kFilterListed = 1, kFilterUnusable = 2, kFilterRowCounters = 4 };

template <int T, int I, int R, int W>
struct FilterBlock {
  static constexpr int kBins = 1 << R;
  StreamSelect<T, I, R, W> block;
  // A kept element's bin: its key's distance above bin_base in units of 2^bin_shift, the last bin
  // taking everything further up. With a sampled tau the bins are 2^kBinShift wide and span eight
  // top-R-bit digits above tau's (two octaves of positive scores), which hold the row's k-th
  // largest on score rows (tau is the sample's rank 1.5 k' + 16); with every element kept they
  // are the key's top R bits. (Bins up to the sample's highest digit, found by a block-wide
  // reduction after the sample, cost B 16 L 32768 1.3 us on the H100.)
  static constexpr int kBinShift = 35 - 2 * R;
  u32* bins;  // [kBins] kept elements per bin (after the radix histogram)
  u32 bin_base;
  int bin_shift;
  bool binning;  // unsorted output: settle() bins the kept elements for finish_from_bins

  __device__ __forceinline__ int bin_of(u32 key) const {
    const u32 b = (key - bin_base) >> bin_shift;
    return b < (u32)(kBins - 1) ? (int)b : kBins - 1;
  }

  // Reserves `mine` consecutive slots of the buffer for this lane, with one shared atomic per
  // warp; returns the first, or -1 when no lane of the warp appends. Every lane calls it.
  __device__ __forceinline__ int reserve(int mine) {
    const int lane = (int)threadIdx.x % W;
    const int incl = block.radix.warp_inclusive_scan(mine);
    const int total = NSA_TOPK_SHFL_IDX(incl, W - 1);
    if (total == 0) return -1;  // the same in every lane
    int base = 0;
    if (lane == W - 1) base = atomicAdd(&block.ss->count, total);
    return NSA_TOPK_SHFL_IDX(base, W - 1) + incl - mine;
  }

  // A kept element as the stream stores it: the score's bits in the high word (its order key
  // replaces them after the stream, see settle), ~position in the low word, as in a composite.
  static __device__ __forceinline__ u64 raw_entry(float x, int pos) {
    return composite(__float_as_uint(x), pos);
  }

  // Stores the kept elements of a round (bit 4i + c of keep: component c of v[i], at position
  // first + 4 i T + c) at slots from `at` on: one predicated store per element, no branch (a
  // lane keeps few of its 4I elements, but a loop over them ran as long as the warp's busiest
  // lane, with the other lanes idle: 24 instructions per element on the H100). Slots past the
  // buffer's capacity are counted, not written (the caller sees count > capacity).
  __device__ __forceinline__ void append_round(const nsa_topk_f4 (&v)[I], u32 keep, int first) {
    int at = reserve((int)NSA_POPC_MASK(keep));
    if (at < 0) return;
    u64* const buf = block.buf;
    const int capacity = block.capacity;
    NSA_TOPK_UNROLL
    for (int i = 0; i < I; ++i) {
      const float f[4] = {v[i].x, v[i].y, v[i].z, v[i].w};
      NSA_TOPK_UNROLL
      for (int c = 0; c < 4; ++c) {
        const bool kept = ((keep >> (4 * i + c)) & 1u) != 0u;
        if (kept && at < capacity) buf[at] = raw_entry(f[c], first + 4 * i * T + c);
        at += kept ? 1 : 0;
      }
    }
  }

  // After the stream (count entries, count <= capacity): turns every entry into its composite
  // and, when binning, counts it in its bin. Ends with a barrier.
  NSA_TOPK_BLOCK_FN void settle(int count) {
    u64* const buf = block.buf;
    for (int j = (int)threadIdx.x; j < count; j += T) {
      const u64 e = buf[j];
      const u32 key = order_key(__uint_as_float((u32)(e >> 32)));
      buf[j] = composite(key, position_of(e));
      if (binning) atomicAdd(&bins[bin_of(key)], 1u);
    }
    __syncthreads();
  }

  // Appends every element of scores[begin, begin + n) whose score is >= tau's number (every element when tau
  // is 0) to the buffer: the 16-byte aligned body as float4 units, I loads a thread in flight
  // while the previous I are filtered; prologue() runs (block-wide) once the first round's loads
  // are issued and returns tau. Leaves the count in ss->count, followed by a barrier.
  template <class Prologue>
  NSA_TOPK_BLOCK_FN void filter_row(const float* scores, int begin, int n, Prologue&& prologue) {
    const float* const row = scores + begin;  // positions below are relative to begin
    const AlignedSplit split = aligned_split(row, n);
    const int head = split.head, units = split.units, tail = split.tail;
    const nsa_topk_f4* body = (const nsa_topk_f4*)(row + head);
    const int tid = (int)threadIdx.x;

    nsa_topk_f4 next[I];
    NSA_TOPK_UNROLL
    for (int i = 0; i < I; ++i) {
      const int u = i * T + tid;
      next[i] = u < units ? body[u] : nsa_topk_f4{0.f, 0.f, 0.f, 0.f};
    }
    const u64 tau = prologue();
    NSA_TOPK_TRACE(1);
    // tau 0 (no sample), or a digit below -inf's key: every element passes.
    const TauBound tb = tau_bound(tau);
    const bool keep_all = !tb.numeric;
    const float bound = tb.bound;
    bin_base = keep_all ? 0u : (u32)(tau >> 32);
    bin_shift = keep_all ? 32 - R : kBinShift;

    for (int base = 0; base < units; base += T * I) {  // the same trip count in every thread
      nsa_topk_f4 v[I];
      u32 valid = 0;
      NSA_TOPK_UNROLL
      for (int i = 0; i < I; ++i) {
        v[i] = next[i];
        const int u = base + T * I + i * T + tid;
        next[i] = u < units ? body[u] : nsa_topk_f4{0.f, 0.f, 0.f, 0.f};
        if (base + i * T + tid < units) valid |= 0xfu << (4 * i);
      }
      u32 keep = valid;
      if (!keep_all) {
        keep = 0;
        NSA_TOPK_UNROLL
        for (int i = 0; i < I; ++i) {  // NaN fails the compare
          keep |= (v[i].x >= bound ? 1u : 0u) << (4 * i);
          keep |= (v[i].y >= bound ? 2u : 0u) << (4 * i);
          keep |= (v[i].z >= bound ? 4u : 0u) << (4 * i);
          keep |= (v[i].w >= bound ? 8u : 0u) << (4 * i);
        }
        keep &= valid;
      }
      append_round(v, keep, begin + head + 4 * (base + tid));
    }
    // The unaligned head and tail (< 8 elements), one a thread.
    float x = 0.f;
    int pos = -1;
    if (tid < head + tail) {
      pos = tid < head ? tid : head + 4 * units + (tid - head);
      x = row[pos];
    }
    const bool pass = pos >= 0 && (keep_all || x >= bound);
    const int at = reserve(pass ? 1 : 0);
    if (pass && at < block.capacity) block.buf[at] = raw_entry(x, begin + pos);
    __syncthreads();
    NSA_TOPK_TRACE(2);
  }

  // The row's top k from the bins (more than k entries in src, every one in a bin, unsorted
  // output): one narrow of the bins finds the bin holding the k-th largest; every entry of a
  // higher bin is out, and the `need` largest of that bin's few entries (copied to bin_list, each
  // ranked against the others) complete the row. Returns false, having written nothing, when the
  // k-th largest lies past the binned range (the last bin) or its bin holds more than T entries
  // (or more than bin_room; many near-equal scores): the caller selects another way.
  template <class Src>
  NSA_TOPK_BLOCK_FN bool finish_from_bins(const nsa_topk_params& p, int row, const Src& src, u64* bin_list,
                                          int bin_room) {
    SelectState* st = block.radix.st;
    const int tid = (int)threadIdx.x;
    if (tid == 0) {
      st->prefix = 0ull;
      st->mask = 0ull;
      st->need = p.k;
      st->bucket = 0;
      st->selected = 0;
      st->cand = 0;
    }
    __syncthreads();
    u32* const hist = block.radix.hist;
    block.radix.hist = bins;
    block.radix.narrow(0, R);  // more than k binned: a bin is always found; ends with a barrier
    block.radix.hist = hist;
    const int digit = (int)st->prefix, need = st->need, in_bin = st->bucket;
    if (digit == kBins - 1 || in_bin > T || in_bin > bin_room) return false;
    int* const out = p.indices + (long long)row * p.out_row_stride;
    const int lane = tid % W;
    const nsa_lane_mask_t below = (((nsa_lane_mask_t)1) << lane) - (nsa_lane_mask_t)1;
    for (int base = 0; base < src.n; base += T) {  // the same trip count in every thread
      const int j = base + tid;
      const u64 c = j < src.n ? src.load(j) : 0ull;
      const int b = c != 0ull ? bin_of((u32)(c >> 32)) : -1;
      const bool emit = b > digit;
      const nsa_lane_mask_t mask = NSA_BALLOT(emit);
      if (mask != 0) {
        int at = 0;
        if (lane == 0) at = atomicAdd(&st->selected, (int)NSA_POPC_MASK(mask));
        at = NSA_TOPK_SHFL_IDX(at, 0);
        if (emit) out[at + (int)NSA_POPC_MASK(mask & below)] = position_of(c);
      }
      if (b == digit) bin_list[atomicAdd(&st->cand, 1)] = c;
    }
    __syncthreads();
    if (tid < in_bin) {
      const u64 c = bin_list[tid];
      int rank = 0;
      for (int j = 0; j < in_bin; ++j) rank += bin_list[j] > c ? 1 : 0;
      if (rank < need) out[atomicAdd(&st->selected, 1)] = position_of(c);
    }
    return true;
  }

  // The radix kernel's exact select of src's top k (valid: its entries, or any value > k when
  // more), in this block's shared memory (the buffer becomes the selected set and the
  // candidates), and the row's output (sorted when asked).
  template <class Src>
  NSA_TOPK_BLOCK_FN void select_and_write(const nsa_topk_params& p, int row, const Src& src, int valid) {
    BlockSelect<T, I, R, W>& radix = block.radix;
    radix.sel = block.buf;
    radix.cand = block.buf + p.sel_capacity;
    radix.cand_capacity = p.buffer_capacity - p.sel_capacity;
    radix.select(src, valid, p.k);
    radix.write_row(p, row, radix.st->selected);
  }

  // A split row (p.splits blocks, the same sampled tau in each): every block adds its kept
  // entries to the row's list in the workspace and its bins to the row's bins, and the last block
  // to count in finishes the row from them - no block waits for another. The list holds every
  // element of the row >= tau, so its top k are the row's whenever it has at least k entries;
  // otherwise (the sampled tau too high, no sample, a buffer or the list overflowed) the last
  // block selects the whole row with the radix passes over global memory. The last block leaves
  // the row's counters and bins zeroed for the next launch.
  NSA_TOPK_BLOCK_FN void finish_split(const nsa_topk_params& p, const RowSlice& rs, int count, bool usable) {
    SelectState* st = block.radix.st;
    const int tid = (int)threadIdx.x;
    unsigned* const counters = p.row_counters + (long long)rs.row * kFilterRowCounters;
    unsigned* const row_bins = p.row_histograms + (long long)rs.row * kBins;
    u64* const list = p.slice_workspace + (long long)rs.row * p.cand_capacity;
    if (usable) settle(count);
    if (tid == 0) {
      st->cand = usable ? (int)atomicAdd(&counters[kFilterListed], (unsigned)count) : 0;
      if (!usable) atomicAdd(&counters[kFilterUnusable], 1u);  // the row cannot be finished from its list
    }
    __syncthreads();
    if (usable) {
      const int first = st->cand;
      for (int j = tid; j < count && first + j < p.cand_capacity; j += T) list[first + j] = block.buf[j];
      for (int b = tid; b < kBins; b += T)
        if (bins[b] != 0u) atomicAdd(&row_bins[b], bins[b]);
    }
    __syncthreads();
    if (tid == 0) st->last = block_release_last(&counters[kFilterArrived], p.splits);
    __syncthreads();
    if (!st->last) return;

    // The last block: the row's counters and bins, then zero them for the next launch.
    if (tid == 0) {
      st->cand = (int)NSA_TOPK_LOAD_COHERENT(&counters[kFilterListed]);
      st->bucket = (int)NSA_TOPK_LOAD_COHERENT(&counters[kFilterUnusable]);
      for (int c = 0; c < kFilterRowCounters; ++c) counters[c] = 0u;
    }
    for (int b = tid; b < kBins; b += T) {
      bins[b] = NSA_TOPK_LOAD_COHERENT(&row_bins[b]);
      row_bins[b] = 0u;
    }
    __syncthreads();
    const int total = st->cand;
    const bool whole_row = st->bucket != 0 || total > p.cand_capacity || total < p.k;
    __syncthreads();  // every thread has read st before finish_from_bins rewrites it
    if (whole_row) {
      select_and_write(p, rs.row, RowSource{rs.scores, 0, rs.len}, rs.len);
      return;
    }
    const GlobalListSource src{list, total};
    if (binning && total > p.k && finish_from_bins(p, rs.row, src, block.buf, block.capacity)) return;
    select_and_write(p, rs.row, src, total);
  }
};

template <int T, int I, int R, int W>
__device__ __forceinline__ void topk_filter_select(const nsa_topk_params& p) {
  static_assert(R >= 8 && R <= 12, "radix bits out of range");
  static_assert(4 * I <= 32, "a thread's kept elements of one round fit one 32-bit mask");
  NSA_TOPK_DYNAMIC_SHARED(nsa_topk_smem);
  __shared__ StreamBlockState<T, W> shared;
  StreamState& stream_state = shared.stream;

  FilterBlock<T, I, R, W> f;
  StreamSelect<T, I, R, W>& block = f.block;
  f.bins = (u32*)(nsa_topk_smem + p.buffer_capacity) + (1 << R);
  for (int b = (int)threadIdx.x; b < (1 << R); b += T) f.bins[b] = 0u;
  block.init(nsa_topk_smem, p.buffer_capacity, &shared.select, &stream_state, shared.warp_sums);  // a barrier
  const RowSlice rs = row_slice(p);
  NSA_TOPK_TRACE(0);
  u64 tau = 0ull;
  f.binning = !p.sorted;
  f.filter_row(rs.scores, rs.begin, rs.n, [&] {  // the sample is of the whole row
    tau = block.sample_tau(rs.scores, rs.len, p.k, p.sample);
    return tau;
  });
  const int count = stream_state.count;
  const bool overflow = count > p.buffer_capacity;
  if (p.splits > 1) {
    // With tau 0 the blocks' lists would hold the whole row: select it from global memory.
    f.finish_split(p, rs, count, !overflow && tau_bound(tau).numeric);
    return;
  }
  const bool short_of_k = tau != 0ull && count < p.k;  // with tau 0 every valid element is in
  if (!overflow && !short_of_k) {
    f.settle(count);
    if (f.binning && count > p.k &&
        f.finish_from_bins(p, rs.row, SharedListSource{block.buf, count}, block.buf + count,
                           p.buffer_capacity - count))
      return;
    const int selected = block.finish(p.k);
    NSA_TOPK_TRACE(3);
    block.write_row(p, rs.row, selected);
    return;
  }
  // The radix kernel's select over the row in global memory, in the same shared memory.
  f.select_and_write(p, rs.row, RowSource{rs.scores, 0, rs.len}, rs.len);
}

}  // namespace nsa_topk
