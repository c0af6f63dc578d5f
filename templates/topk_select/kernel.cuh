// topk_select: exact batched top-k over fp32 rows (DESIGN.md section 2).
//
// Each element becomes one 64-bit composite key: high word = order key of the score (float
// bits flipped so that unsigned order = numeric order, NaN = 0 below -inf, -0 folded into +0),
// low word = ~position (so that, among equal scores, the lower position is larger). All
// composites of a row are distinct, so "the k largest composites" is exactly the contract's
// set, ties included. A block finds the k-th largest composite with an MSB-first radix select
// (R bits per pass over the 32 key bits, then over the 18 position bits only while the
// threshold bucket still holds more ties than are needed) and stops as soon as the threshold
// bucket is taken whole. After the first pass over the row, the threshold bucket is copied
// into a shared candidate buffer when it fits (its exact size is known from the histogram),
// so later passes never re-read global memory; when it does not fit, the passes keep reading
// the row: slower, never wrong.
//
// Splitting (params.splits > 1): the blocks of a row each select the top-k of their slice
// into a workspace; the last block to finish (atomic counter per row) selects the row's top-k
// from those splits*k candidates, which must contain it (the composite order is total).
//
// Knobs: T threads per block, I items each thread loads per batch (loads in flight), R radix
// bits per pass, W warp size (32 NVIDIA, 64 CDNA). No inline PTX; the two vendor intrinsics are
// behind macros (common/gpu_compat.h).
#pragma once

#include "common/gpu_compat.h"
#include "topk_select/params.h"

// W lanes shuffle together: the whole warp (32, NVIDIA) or wavefront (64, CDNA).
#define NSA_TOPK_SHFL_UP(v, d) NSA_SHFL_UP(v, d)
#define NSA_TOPK_SHFL_IDX(v, lane) NSA_SHFL(v, lane)
#define NSA_TOPK_LOAD_COHERENT(ptr) NSA_LOAD_COHERENT(ptr)

// The block-wide steps. AMDGPU gives an out-of-line call a stack frame in scratch memory (the
// object and its by-reference arguments live there), so on CDNA they are always inlined.
#if defined(NSA_GPU_HIP)
#define NSA_TOPK_BLOCK_FN __device__ __forceinline__
#else
#define NSA_TOPK_BLOCK_FN __device__
#endif

// The dynamic shared buffer. A host-side emulation of the template (tests/unit) declares it
// differently, since "extern __shared__" has no host meaning.
// Loop unrolling as in CUTLASS (a macro, so that the host emulation can drop it).
#ifndef NSA_TOPK_UNROLL
#define NSA_TOPK_UNROLL _Pragma("unroll")
#endif
// Phase timing hooks for tools/probes/topk_phase_probe.cu: empty in every generated kernel.
#ifndef NSA_TOPK_TRACE
#define NSA_TOPK_TRACE(point)
#define NSA_TOPK_SPAN_BEGIN(span)
#define NSA_TOPK_SPAN_END(span)
#endif
#ifndef NSA_TOPK_DYNAMIC_SHARED
#define NSA_TOPK_DYNAMIC_SHARED(name) extern __shared__ unsigned long long name[]
#endif

namespace nsa_topk {

typedef unsigned int u32;
typedef unsigned long long u64;

// Unsigned order key: larger key = larger score. NaN -> 0 (below -inf = 0x007fffff).
__device__ __forceinline__ u32 order_key(float f) {
  u32 b = __float_as_uint(f);
  if ((b & 0x7fffffffu) > 0x7f800000u) return 0u;
  if (b == 0x80000000u) b = 0u;
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

// Never 0 for a real element (~pos has its top 14 bits set), so 0 marks an empty slot.
__device__ __forceinline__ u64 composite(u32 key, int pos) {
  return ((u64)key << 32) | (u64)(~(u32)pos);
}
__device__ __forceinline__ int position_of(u64 c) {
  return (int)(~(u32)c);
}

// Counts the block in on a global counter after a barrier, and returns the old count: thread 0
// fences once (cumulative: it orders every thread's writes and reductions that the barrier
// ordered before it), then adds 1, the pattern of CUDA's cooperative-groups grid sync. Callers
// run it in thread 0 after a __syncthreads.
__device__ __forceinline__ unsigned block_release(unsigned* counter) {
  __threadfence();
  return atomicAdd(counter, 1u);
}

// block_release on a counter of `blocks` blocks: true in the last block to count in, which
// fences again (acquire) before the barrier that lets its other threads read what the other
// blocks wrote, as the grid sync does after its wait.
__device__ __forceinline__ bool block_release_last(unsigned* counter, int blocks) {
  const bool last = block_release(counter) == (unsigned)(blocks - 1);
  if (last) __threadfence();
  return last;
}

// The low-word bits above the position bits are 1 in every composite.
#define NSA_TOPK_FIXED_LOW_BITS (0xffffffffull & ~((1ull << NSA_TOPK_POS_BITS) - 1ull))

struct RowSource {  // positions [begin, begin + n) of one score row
  const float* row;
  int begin;
  int n;
  __device__ __forceinline__ u64 load(int j) const {
    const int pos = begin + j;
    return composite(order_key(row[pos]), pos);
  }
};

// A row slice [row, row + n) split for 16-byte loads: `head` (< 4) single elements up to the
// first 16-byte boundary, `units` float4s, `tail` (< 4) single elements after them.
struct AlignedSplit {
  int head, units, tail;
};
__device__ __forceinline__ AlignedSplit aligned_split(const float* row, int n) {
  const unsigned long long addr = (unsigned long long)(const void*)row;
  AlignedSplit a;
  a.head = (int)(((16ull - (addr & 15ull)) & 15ull) >> 2);
  a.head = a.head < n ? a.head : n;
  a.units = (n - a.head) >> 2;
  a.tail = n - a.head - 4 * a.units;
  return a;
}

// A filter threshold as a float: elements whose score is >= bound have an order key >= tau's
// (tau's low word is 0). Not numeric when tau's key is below -inf's (tau 0, NaN's key): then
// every element passes.
struct TauBound {
  bool numeric;
  float bound;
};
__device__ __forceinline__ TauBound tau_bound(u64 tau) {
  const u32 tau_key = (u32)(tau >> 32);
  TauBound t;
  t.numeric = tau_key >= 0x007fffffu;  // the key of -inf or above: a number
  t.bound = __uint_as_float(tau_key >= 0x80000000u ? (tau_key & 0x7fffffffu) : ~tau_key);
  return t;
}

// The part of a row this block reads: the whole valid row (splits 1) or its slice of it.
struct RowSlice {
  int row;    // batch row
  int part;   // this block's index among the row's splits
  int len;    // valid entries of the row (lengths clamped to [0, L])
  int begin;  // first position of this block's slice
  int n;      // entries in the slice
  const float* scores;
};

__device__ __forceinline__ RowSlice row_slice(const nsa_topk_params& p) {
  RowSlice r;
  r.row = (int)blockIdx.x / p.splits;
  r.part = (int)blockIdx.x % p.splits;
  r.len = p.length;
  if (p.lengths != 0) {
    const int l = p.lengths[r.row];
    r.len = l < 0 ? 0 : (l > p.length ? p.length : l);
  }
  r.scores = p.scores + (long long)r.row * p.score_row_stride;
  r.begin = p.splits == 1 ? 0 : r.part * p.slice;
  const int end = p.splits == 1 || r.begin + p.slice > r.len ? r.len : r.begin + p.slice;
  r.n = end > r.begin ? end - r.begin : 0;
  return r;
}

struct GlobalListSource {  // candidates other blocks wrote (0 = empty slot)
  const u64* list;
  int n;
  __device__ __forceinline__ u64 load(int j) const { return NSA_TOPK_LOAD_COHERENT(list + j); }
};

struct SharedListSource {
  const u64* list;
  int n;
  __device__ __forceinline__ u64 load(int j) const { return list[j]; }
};

// Calls f(c) for every non-empty composite; each thread keeps I loads in flight.
template <int T, int I, class Src, class F>
__device__ __forceinline__ void for_each(const Src& src, F&& f) {
  const int n = src.n;
  for (int base = 0; base < n; base += T * I) {
    u64 v[I];
    NSA_TOPK_UNROLL
    for (int i = 0; i < I; ++i) {
      const int j = base + i * T + (int)threadIdx.x;
      v[i] = j < n ? src.load(j) : 0ull;
    }
    NSA_TOPK_UNROLL
    for (int i = 0; i < I; ++i)
      if (v[i] != 0ull) f(v[i]);
  }
}

struct SelectState {
  u64 prefix;    // fixed high bits of the k-th largest composite
  u64 mask;      // which bits of prefix are fixed
  int need;      // how many of the elements matching prefix belong to the top k
  int bucket;    // how many elements match prefix
  int selected;  // entries written to sel
  int cand;      // entries written to cand
  int last;      // split mode: this block finishes the row
};

template <int T, int I, int R, int W>
struct BlockSelect {
  u64* sel;   // [sel_capacity] the selected composites
  u64* cand;  // [cand_capacity] threshold-bucket candidates
  u32* hist;  // [1 << R]
  SelectState* st;
  int* warp_sums;  // [T / W]; the stream kernels' block appends use [3 T / W]
  int cand_capacity;

  __device__ __forceinline__ int warp_inclusive_scan(int v) const {
    const int lane = (int)threadIdx.x % W;
    NSA_TOPK_UNROLL
    for (int o = 1; o < W; o <<= 1) {
      const int y = NSA_TOPK_SHFL_UP(v, o);
      if (lane >= o) v += y;
    }
    return v;
  }

  // Block-wide inclusive scan with one barrier: every warp scans all warp totals itself (a warp
  // that waited for warp 0 to scan them cost another barrier). warp_sums may be written again
  // only after the caller's next barrier.
  NSA_TOPK_BLOCK_FN int inclusive_scan_open(int v) {
    const int lane = (int)threadIdx.x % W, warp = (int)threadIdx.x / W;
    v = warp_inclusive_scan(v);
    if (lane == W - 1) warp_sums[warp] = v;
    __syncthreads();
    int block_total;
    return v + warps_before(warp_sums, block_total);
  }

  // inclusive_scan_open, and a barrier after it: the next scan may reuse warp_sums.
  NSA_TOPK_BLOCK_FN int inclusive_scan(int v) {
    v = inclusive_scan_open(v);
    __syncthreads();
    return v;
  }

  // The sum of sums[0, this warp) (the warp totals, written before a barrier), and of all of
  // them into block_total: every lane of every warp gets both.
  __device__ __forceinline__ int warps_before(const int* sums, int& block_total) const {
    constexpr int kWarps = T / W;
    const int lane = (int)threadIdx.x % W, warp = (int)threadIdx.x / W;
    const int total = lane < kWarps ? sums[lane] : 0;
    const int incl = warp_inclusive_scan(total);
    block_total = NSA_TOPK_SHFL_IDX(incl, kWarps - 1);
    return NSA_TOPK_SHFL_IDX(incl - total, warp);
  }

  // Sum of v over the warp.
  __device__ __forceinline__ int warp_sum(int v) const {
#if defined(NSA_GPU_HIP)
    NSA_TOPK_UNROLL
    for (int o = W / 2; o > 0; o >>= 1) v += NSA_SHFL_XOR(v, o);
    return v;
#else
    return NSA_WARP_SUM(v);  // one REDUX
#endif
  }

  // Writes c(e) for every set bit e of keep, of all lanes of the warp, to dst[at, at + the warp's
  // total). Every lane of the warp calls it with the same at.
#if defined(NSA_GPU_HIP)
  // CDNA: a shuffle scan gives each lane its offset (64-bit lane masks live in scalar register
  // pairs; hipRTC 5.2 spilled them with the ballot form below).
  template <int V, class Entry>
  __device__ __forceinline__ void warp_store(u64* dst, int at, const Entry& c, u32 keep) {
    int m = 0;
    NSA_TOPK_UNROLL
    for (int e = 0; e < V; ++e) m += (int)((keep >> e) & 1u);
    const int lane = (int)threadIdx.x % W;
    int incl = m;
    NSA_TOPK_UNROLL
    for (int o = 1; o < W; o <<= 1) {
      const int y = NSA_TOPK_SHFL_UP(incl, o);
      if (lane >= o) incl += y;
    }
    at += incl - m;
    NSA_TOPK_UNROLL
    for (int e = 0; e < V; ++e)
      if ((keep >> e) & 1u) dst[at++] = c(e);
  }
#else
  // One ballot per element index gives each lane its offset (population count of the lanes
  // below it); element e of all lanes lands in consecutive slots (no bank conflicts).
  template <int V, class Entry>
  __device__ __forceinline__ void warp_store(u64* dst, int at, const Entry& c, u32 keep) {
    const int lane = (int)threadIdx.x % W;
    const nsa_lane_mask_t below = (((nsa_lane_mask_t)1) << lane) - (nsa_lane_mask_t)1;
    NSA_TOPK_UNROLL
    for (int e = 0; e < V; ++e) {
      const nsa_lane_mask_t mask = NSA_BALLOT((keep >> e) & 1u);
      if (mask == 0) continue;  // the same in every lane
      if ((keep >> e) & 1u) dst[at + (int)NSA_POPC_MASK(mask & below)] = c(e);
      at += (int)NSA_POPC_MASK(mask);
    }
  }
#endif

  // Appends c(e) for every set bit e of keep at slots of dst reserved with one shared atomic per
  // warp. Every lane of the warp calls it. Returns the warp's end slot, or -1 if it appended none.
  template <int V, class Entry>
  __device__ __forceinline__ int warp_append(u64* dst, int* counter, const Entry& c, u32 keep) {
    const int total = warp_sum((int)NSA_POPC_MASK(keep));
    if (total == 0) return -1;
    int base = 0;
    if ((int)threadIdx.x % W == 0) base = atomicAdd(counter, total);
    base = NSA_SHFL(base, 0);
    warp_store<V>(dst, base, c, keep);
    return base + total;
  }

  // Appends every non-empty entry c of src with keep(c) to sel: one ballot per item and one
  // shared atomic per warp (a shared atomic per entry on one counter queued up to k of them).
  // CDNA keeps one LDS atomic per entry: with the warp appends hipRTC spills SGPRs at i >= 8.
  template <class Src, class Keep>
  NSA_TOPK_BLOCK_FN void emit_where(const Src& src, Keep&& keep) {
#if defined(NSA_GPU_HIP)
    for_each<T, I>(src, [&](u64 c) {
      if (keep(c)) sel[atomicAdd(&st->selected, 1)] = c;
    });
#else
    const int n = src.n;
    for (int base = 0; base < n; base += T * I) {  // the same trip count in every thread
      u64 v[I];
      u32 bits = 0;
      NSA_TOPK_UNROLL
      for (int i = 0; i < I; ++i) {
        const int j = base + i * T + (int)threadIdx.x;
        v[i] = j < n ? src.load(j) : 0ull;
        if (v[i] != 0ull && keep(v[i])) bits |= 1u << i;
      }
      warp_append<I>(
          sel, &st->selected, [&](int e) { return v[e]; }, bits);
    }
#endif
  }

  template <class Src>
  NSA_TOPK_BLOCK_FN void histogram(const Src& src, int shift, int bits) {
    NSA_TOPK_SPAN_BEGIN(2);
    for (int i = (int)threadIdx.x; i < (1 << bits); i += T) hist[i] = 0u;
    __syncthreads();
    const u64 mask = st->mask, prefix = st->prefix;
    const u32 digit_mask = (1u << bits) - 1u;
    for_each<T, I>(src, [&](u64 c) {
      if ((c & mask) == prefix) atomicAdd(&hist[(u32)(c >> shift) & digit_mask], 1u);
    });
    __syncthreads();
    NSA_TOPK_SPAN_END(2);
  }

  // Finds the digit whose bucket holds the need-th largest matching element (scanning the
  // buckets from the top) and fixes it in prefix.
  NSA_TOPK_BLOCK_FN void narrow(int shift, int bits) {
    NSA_TOPK_SPAN_BEGIN(3);
    const int buckets = 1 << bits;
    const int need = st->need;
    const int per = (buckets + T - 1) / T;
    const int first = (int)threadIdx.x * per;
    int sum = 0;
    for (int r = 0; r < per; ++r)
      if (first + r < buckets) sum += (int)hist[buckets - 1 - (first + r)];
    const int incl = inclusive_scan_open(sum);  // the barrier below lets warp_sums be reused
    int acc = incl - sum;
    if (acc < need && need <= incl) {  // exactly one thread
      for (int r = 0; r < per && first + r < buckets; ++r) {
        const int digit = buckets - 1 - (first + r);
        const int h = (int)hist[digit];
        if (acc + h >= need) {
          st->prefix |= (u64)digit << shift;
          st->mask |= (u64)(buckets - 1) << shift;
          st->need = need - acc;
          st->bucket = h;
          break;
        }
        acc += h;
      }
    }
    __syncthreads();
    NSA_TOPK_SPAN_END(3);
  }

  // Emits everything above the threshold bucket, copies the bucket into cand.
  template <class Src>
  NSA_TOPK_BLOCK_FN void compact(const Src& src) {
    const u64 mask = st->mask, prefix = st->prefix;
#if defined(NSA_GPU_HIP)  // one LDS atomic per entry, as in emit_where
    for_each<T, I>(src, [&](u64 c) {
      const u64 m = c & mask;
      if (m > prefix)
        sel[atomicAdd(&st->selected, 1)] = c;
      else if (m == prefix)
        cand[atomicAdd(&st->cand, 1)] = c;
    });
#else
    const int n = src.n;
    for (int base = 0; base < n; base += T * I) {  // the same trip count in every thread
      u64 v[I];
      u32 above = 0, equal = 0;
      NSA_TOPK_UNROLL
      for (int i = 0; i < I; ++i) {
        const int j = base + i * T + (int)threadIdx.x;
        v[i] = j < n ? src.load(j) : 0ull;
        const u64 m = v[i] & mask;
        if (v[i] != 0ull && m > prefix) above |= 1u << i;
        if (v[i] != 0ull && m == prefix) equal |= 1u << i;
      }
      const auto entry = [&](int e) { return v[e]; };
      warp_append<I>(sel, &st->selected, entry, above);
      warp_append<I>(cand, &st->cand, entry, equal);
    }
#endif
    __syncthreads();
  }

  template <class Src>
  NSA_TOPK_BLOCK_FN void emit_selected(const Src& src) {
    const u64 mask = st->mask, prefix = st->prefix;
    emit_where(src, [&](u64 c) { return (c & mask) >= prefix; });
  }

  // Writes the top min(k, valid) composites of src into sel[0, st->selected).
  // `valid` = number of non-empty entries in src, or any value > k when it is known to be > k.
  // When every entry is known to share its top `shared_bits` (< 32) bits with shared_prefix,
  // the passes start below them.
  template <class Src>
  NSA_TOPK_BLOCK_FN void select(const Src& src, int valid, int k, u64 shared_prefix = 0ull,
                                int shared_bits = 0) {
    const u64 shared_mask = shared_bits > 0 ? ~0ull << (64 - shared_bits) : 0ull;
    if (threadIdx.x == 0) {
      st->prefix = shared_prefix & shared_mask;
      st->mask = shared_mask;
      st->need = k;
      st->bucket = valid;
      st->selected = 0;
      st->cand = 0;
    }
    __syncthreads();
    if (valid > k) {
      bool on_list = false;
      for (int hi = 64 - shared_bits; hi > 0;) {
        if (hi == 32) {  // key fixed, ties remain: continue over the position bits
          hi = NSA_TOPK_POS_BITS;
          if (threadIdx.x == 0) {
            st->prefix |= NSA_TOPK_FIXED_LOW_BITS;
            st->mask |= NSA_TOPK_FIXED_LOW_BITS;
          }
        }
        const int floor_bit = hi > 32 ? 32 : 0;
        const int shift = hi - R > floor_bit ? hi - R : floor_bit;
        if (on_list)
          histogram(SharedListSource{cand, st->cand}, shift, hi - shift);
        else
          histogram(src, shift, hi - shift);
        narrow(shift, hi - shift);
        hi = shift;
        if (st->bucket == st->need) break;
        if (!on_list && st->bucket <= cand_capacity) {
          compact(src);
          on_list = true;
        }
      }
      if (on_list)
        emit_selected(SharedListSource{cand, st->cand});
      else
        emit_selected(src);
    } else {
      emit_where(src, [](u64) { return true; });
    }
    __syncthreads();
  }

  // Descending bitonic sort of sel[0, count), padded with empty (0) entries to a power of 2.
  NSA_TOPK_BLOCK_FN void sort_selected(int count) {
    int size = 1;
    while (size < count) size <<= 1;
    for (int i = count + (int)threadIdx.x; i < size; i += T) sel[i] = 0ull;
    __syncthreads();
    for (int block = 2; block <= size; block <<= 1) {
      for (int stride = block >> 1; stride > 0; stride >>= 1) {
        for (int i = (int)threadIdx.x; i < size / 2; i += T) {
          const int lo = 2 * i - (i & (stride - 1));
          const int hi = lo + stride;
          const bool descending = (lo & block) == 0;
          const u64 a = sel[lo], b = sel[hi];
          if ((a < b) == descending) {
            sel[lo] = b;
            sel[hi] = a;
          }
        }
        __syncthreads();
      }
    }
  }

  // Writes the positions of sel[0, count) as the row's output, -1 after them (sorted first if asked).
  NSA_TOPK_BLOCK_FN void write_row(const nsa_topk_params& p, int row, int count) {
    if (p.sorted) sort_selected(count);
    int* out = p.indices + (long long)row * p.out_row_stride;
    for (int i = (int)threadIdx.x; i < p.k; i += T) out[i] = i < count ? position_of(sel[i]) : -1;
  }
};

template <int T, int I, int R, int W>
__device__ __forceinline__ void topk_select(const nsa_topk_params& p) {
  static_assert(T % W == 0 && T / W <= 32, "block must hold at most 32 warps");
  static_assert(R >= 4 && R <= 12, "radix bits out of range");
#if defined(NSA_GPU_HIP) && defined(__AMDGCN_WAVEFRONT_SIZE)
  // The scans shuffle across all W lanes: W must be the hardware wavefront.
  static_assert(W == __AMDGCN_WAVEFRONT_SIZE, "W must equal the wavefront size");
#endif
  NSA_TOPK_DYNAMIC_SHARED(nsa_topk_smem);
  __shared__ SelectState state;
  __shared__ int warp_sums[T / W];

  BlockSelect<T, I, R, W> block;
  block.sel = nsa_topk_smem;
  block.cand = nsa_topk_smem + p.sel_capacity;
  block.hist = (u32*)(nsa_topk_smem + p.sel_capacity + p.cand_capacity);
  block.st = &state;
  block.warp_sums = warp_sums;
  block.cand_capacity = p.cand_capacity;

  const RowSlice rs = row_slice(p);
  const int row = rs.row, part = rs.part, len = rs.len;
  block.select(RowSource{rs.scores, rs.begin, rs.n}, rs.n, p.k);
  if (p.splits == 1) {
    block.write_row(p, row, state.selected);
    return;
  }

  // Stage 1 (above): the top-k of this block's slice, padded with empty slots, into the workspace.
  u64* row_slices = p.slice_workspace + (u64)row * (u64)p.splits * (u64)p.k;
  u64* mine = row_slices + (u64)part * (u64)p.k;
  const int count = state.selected;
  for (int i = (int)threadIdx.x; i < p.k; i += T) mine[i] = i < count ? block.sel[i] : 0ull;
  __syncthreads();
  if (threadIdx.x == 0) state.last = block_release_last(&p.row_counters[row], p.splits);
  __syncthreads();
  if (!state.last) return;

  // Stage 2 (last block of the row): the row's top-k among the splits' candidates.
  if (threadIdx.x == 0) p.row_counters[row] = 0u;  // at rest again for the next launch
  block.select(GlobalListSource{row_slices, p.splits * p.k}, len, p.k);
  block.write_row(p, row, state.selected);
}

}  // namespace nsa_topk

// ---------------------------------------------------------------------------------------------
// Stream select (knob a = 1): one read of the row.
//
// The block keeps every element seen so far whose composite is >= tau in a shared buffer of
// params.buffer_capacity entries; elements below tau are dropped as they stream in. tau only ever
// rises to a value that at least k buffered elements reach, so nothing below it can be in the
// row's top k: the buffer always holds the top k of what was seen, and at the end an exact radix
// select over the buffer alone gives the row's top k. When the buffer cannot take one more load
// round, it is shrunk: radix digits are fixed (the same histogram / narrow steps as above, over
// shared memory) until at most `target` entries reach the digit prefix, which becomes tau.
// Random rows pass the filter less and less often (about k ln(L / capacity) entries after the
// first fill), so the row is read once, 16 bytes a load with I loads in flight per thread, and
// the shared-memory work is a few passes over the buffer. Adversarial orders (ascending rows)
// only cost more shrinks, never a wrong answer.
//
// Splitting: each block writes the exact top k of its slice to the workspace and adds the
// histogram of their top R bits to its row's histogram (global atomics); the last block of the
// row narrows that histogram for k, which gives a tau before it reads a single candidate, and
// streams the splits x k candidates through the same filter.

#if defined(NSA_GPU_HIP)
typedef float nsa_topk_f4 __attribute__((ext_vector_type(4)));
#else
typedef float4 nsa_topk_f4;
#endif

namespace nsa_topk {

struct StreamState {
  u64 tau;     // every element below tau is out of the top k; the buffer holds all seen >= tau
  int count;   // entries in the buffer
  int fill;    // entries written by the running compaction
  int any[3];  // block_any's rotating flags
  u32 key_lo;  // shrink: the smallest and largest order key in the buffer
  u32 key_hi;
};

// A row slice read as aligned float4 units; unit u holds positions first + 4u .. first + 4u + 3.
// Slot s covers units [s P T, (s + 1) P T): this thread reads units s P T + p T + thread, p < P,
// P coalesced 16-byte loads, V = 4P elements, so the per-slot work (tau, the warp's append and
// the loop) is shared by 4P elements.
template <int T, int P>
struct FloatStream {
  static constexpr int V = 4 * P;
  static constexpr int kLoads = P;
  struct Payload {
    nsa_topk_f4 v[P];
  };
  const nsa_topk_f4* body;
  int first;
  int units;
  __device__ __forceinline__ int slots() const { return (units + P * T - 1) / (P * T); }
  __device__ __forceinline__ int unit(int slot, int p) const { return (slot * P + p) * T + (int)threadIdx.x; }
  __device__ __forceinline__ Payload load(int slot) const {
    Payload x;
    NSA_TOPK_UNROLL
    for (int p = 0; p < P; ++p) {
      const int u = unit(slot, p);
      x.v[p] = nsa_topk_f4{0.f, 0.f, 0.f, 0.f};
      if (u < units) x.v[p] = body[u];
    }
    return x;
  }
  // Composites of the slot's elements into c, and which of them are >= tau (bit e = c[e]
  // passes). Once tau's key is a number (not NaN's 0 or a prefix below -inf), a float compare
  // against that number rejects every element of a smaller key first: only the few that pass it
  // pay for the order key and the 64-bit compare (they decide ties of the equal key by position).
  // (A warp-wide early exit when no lane passes made NVRTC spill 32 B at 1024 threads.)
  __device__ __forceinline__ u32 filter(const Payload& x, int slot, u64 tau, u64 (&c)[V]) const {
    const TauBound tb = tau_bound(tau);
    const bool numeric = tb.numeric;
    const float bound = tb.bound;
    u32 keep = 0;
    NSA_TOPK_UNROLL
    for (int p = 0; p < P; ++p) {
      const int u = unit(slot, p);
      const int pos = first + 4 * u;
      const bool ok = u < units;
      const float f[4] = {x.v[p].x, x.v[p].y, x.v[p].z, x.v[p].w};
      NSA_TOPK_UNROLL
      for (int e = 0; e < 4; ++e) {
        const bool maybe = ok && (!numeric || f[e] >= bound);  // NaN fails the compare
        const int i = 4 * p + e;
        c[i] = maybe ? composite(order_key(f[e]), pos + e) : 0ull;
        if (c[i] != 0ull && c[i] >= tau) keep |= 1u << i;
      }
    }
    return keep;
  }
};

// Candidates other blocks wrote (0 = empty): slot s covers entries [2sT, 2sT + 2T), two
// coalesced loads per thread.
template <int T>
struct ListStream {
  static constexpr int V = 2;
  static constexpr int kLoads = 1;  // one slot = one "load" of the in-flight budget
  struct Payload {
    u64 a, b;
  };
  const u64* list;
  int n;
  __device__ __forceinline__ int slots() const { return (n + 2 * T - 1) / (2 * T); }
  __device__ __forceinline__ Payload load(int slot) const {
    const int j = slot * 2 * T + (int)threadIdx.x;
    Payload x;
    x.a = j < n ? NSA_TOPK_LOAD_COHERENT(list + j) : 0ull;
    x.b = j + T < n ? NSA_TOPK_LOAD_COHERENT(list + j + T) : 0ull;
    return x;
  }
  __device__ __forceinline__ u32 filter(const Payload& x, int, u64 tau, u64 (&c)[V]) const {
    c[0] = x.a;
    c[1] = x.b;
    return (x.a != 0ull && x.a >= tau ? 1u : 0u) | (x.b != 0ull && x.b >= tau ? 2u : 0u);
  }
};

template <int T, int I, int R, int W>
struct StreamSelect {
  // A stream shrink keeps at most k + (room - k) / kShrinkSlack entries (H100: 16 and 4 within
  // 1 %, 64 slower; docs/perf-log.md, topk_select v6).
  static constexpr int kShrinkSlack = 16;
  BlockSelect<T, I, R, W> radix;  // histogram / narrow / sort over the buffer (radix.sel == buf)
  u64* buf;
  int capacity;
  StreamState* ss;
  int any_round;  // block_any's flag index, the same in every thread

  // Points the block at its shared memory: the buffer (capacity entries), the radix histogram
  // right after it, and the block state; resets the stream state.
  NSA_TOPK_BLOCK_FN void init(u64* smem, int buffer_capacity, SelectState* st, StreamState* stream_state,
                              int* warp_sums) {
    buf = smem;
    capacity = buffer_capacity;
    ss = stream_state;
    any_round = 0;
    radix.sel = smem;
    radix.cand = 0;
    radix.hist = (u32*)(smem + buffer_capacity);
    radix.st = st;
    radix.warp_sums = warp_sums;
    radix.cand_capacity = 0;
    if (threadIdx.x == 0) {
      ss->tau = 0ull;
      ss->count = 0;
      ss->fill = 0;
      ss->any[0] = ss->any[1] = ss->any[2] = 0;
    }
    __syncthreads();
  }

  // The histogram of the top R bits of buf[0, count) into radix.hist, then a barrier.
  NSA_TOPK_BLOCK_FN void buffer_histogram(int count) {
    constexpr int kBins = 1 << R;
    u32* hist = radix.hist;
    for (int b = (int)threadIdx.x; b < kBins; b += T) hist[b] = 0u;
    __syncthreads();
    for (int i = (int)threadIdx.x; i < count; i += T) atomicAdd(&hist[(u32)(buf[i] >> (64 - R))], 1u);
    __syncthreads();
  }

  // Adds the histogram of the top R bits of buf[0, count) to a row histogram in global memory
  // (one atomic per non-empty bin), then a barrier. The caller's thread 0 fences once after it
  // before counting the block in (see block_release).
  NSA_TOPK_BLOCK_FN void add_to_row_histogram(int count, unsigned* row_hist) {
    constexpr int kBins = 1 << R;
    u32* hist = radix.hist;
    buffer_histogram(count);
    for (int b = (int)threadIdx.x; b < kBins; b += T)
      if (hist[b] != 0u) atomicAdd(&row_hist[b], hist[b]);
    __syncthreads();
  }

  // Block-wide OR of pred with one barrier. Flag r is set before barrier r and read after it;
  // thread 0 clears flag r - 1 (mod 3) after barrier r, when every thread has read it and before
  // anyone can set it again (after barrier r + 1).
  __device__ __forceinline__ bool block_any(bool pred) {
    const int r = any_round;
    if (pred) ss->any[r] = 1;
    __syncthreads();
    const bool any = ss->any[r] != 0;
    if (threadIdx.x == 0) ss->any[r == 0 ? 2 : r - 1] = 0;
    any_round = r == 2 ? 0 : r + 1;
    return any;
  }

  // Appends the kept entries of the whole block at buf[count, count + the block's total), warp
  // after warp, and advances count (the same in every thread) by that total: one barrier and a
  // shuffle scan of the warp totals, no atomics (32 warps on one shared counter queued behind
  // each other every slot). Warp totals alternate between two arrays (parity): a warp writes
  // parity p again only after the next barrier, which every warp reaches after reading it.
  template <int V, class Entry>
  NSA_TOPK_BLOCK_FN void block_append(int& count, const Entry& c, u32 keep, int parity) {
    constexpr int kWarps = T / W;
    const int lane = (int)threadIdx.x % W, warp = (int)threadIdx.x / W;
    int* sums = radix.warp_sums + kWarps + parity * kWarps;
    const int total = radix.warp_sum((int)NSA_POPC_MASK(keep));
    if (lane == 0) sums[warp] = total;
    __syncthreads();
    int block_total;
    const int before = radix.warps_before(sums, block_total);
    if (total != 0) radix.template warp_store<V>(buf, count + before, c, keep);
    count += block_total;
  }

  // Moves the entries >= tau of buf[0, count) to its front (order not kept) and makes them the
  // buffer. In place: chunk c is read whole before a barrier, and the kept entries of chunks
  // 0..c land below the first slot of chunk c + 1.
  NSA_TOPK_BLOCK_FN void compact(int count, u64 tau) {
    NSA_TOPK_SPAN_BEGIN(4);
    for (int base = 0; base < count; base += T * I) {
      u64 v[I];
      u32 keep = 0;
      NSA_TOPK_UNROLL
      for (int i = 0; i < I; ++i) {
        const int j = base + i * T + (int)threadIdx.x;
        v[i] = j < count ? buf[j] : 0ull;
        if (v[i] != 0ull && v[i] >= tau) keep |= 1u << i;
      }
      __syncthreads();
      radix.template warp_append<I>(
          buf, &ss->fill, [&](int e) { return v[e]; }, keep);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      ss->count = ss->fill;
      if (tau > ss->tau) ss->tau = tau;
    }
    __syncthreads();
    NSA_TOPK_SPAN_END(4);
  }

  // The smallest and largest order key of buf[0, count) into ss->key_lo / key_hi.
  NSA_TOPK_BLOCK_FN void key_range(int count) {
    NSA_TOPK_SPAN_BEGIN(1);
    u32 lo = 0xffffffffu, hi = 0u;
    for (int j = (int)threadIdx.x; j < count; j += T) {
      const u32 key = (u32)(buf[j] >> 32);
      lo = key < lo ? key : lo;
      hi = key > hi ? key : hi;
    }
    NSA_TOPK_UNROLL
    for (int o = W / 2; o > 0; o >>= 1) {
      const u32 l = (u32)NSA_SHFL_XOR((int)lo, o), h = (u32)NSA_SHFL_XOR((int)hi, o);
      lo = l < lo ? l : lo;
      hi = h > hi ? h : hi;
    }
    if ((int)threadIdx.x % W == 0) {
      atomicMin(&ss->key_lo, lo);
      atomicMax(&ss->key_hi, hi);
    }
    __syncthreads();
    NSA_TOPK_SPAN_END(1);
  }

  // Fixes radix digits of the k-th largest of buf[0, count) (count > k) until at most target
  // (>= k) entries reach the prefix, then keeps exactly those. target == k keeps the top k.
  // The key bits every entry shares (the common prefix of the smallest and largest key) are
  // fixed up front, so the first histogram already spreads over the buffer's actual range
  // instead of a few sign / exponent buckets: usually one pass reaches the target.
  NSA_TOPK_BLOCK_FN void shrink(int count, int k, int target) {
    NSA_TOPK_SPAN_BEGIN(0);
    SelectState* st = radix.st;
    if (threadIdx.x == 0) {
      st->prefix = 0ull;
      st->mask = 0ull;
      st->need = k;
      st->bucket = count;
      ss->fill = 0;
      ss->key_lo = 0xffffffffu;
      ss->key_hi = 0u;
    }
    __syncthreads();
    key_range(count);
    const u32 key_lo = ss->key_lo, key_hi = ss->key_hi;
    const int common = key_lo == key_hi ? 32 : __clz((int)(key_lo ^ key_hi));
    if (common > 0 && threadIdx.x == 0) {  // read by the histogram after its first barrier
      const u64 fixed = ~0ull << (64 - common);
      st->prefix = ((u64)key_hi << 32) & fixed;
      st->mask = fixed;
    }
    const SharedListSource src{buf, count};
    for (int hi = 64 - common; hi > 0;) {
      if (hi == 32) {  // key fixed, ties remain: continue over the position bits
        hi = NSA_TOPK_POS_BITS;
        if (threadIdx.x == 0) {
          st->prefix |= NSA_TOPK_FIXED_LOW_BITS;
          st->mask |= NSA_TOPK_FIXED_LOW_BITS;
        }
      }
      const int floor_bit = hi > 32 ? 32 : 0;
      const int shift = hi - R > floor_bit ? hi - R : floor_bit;
      radix.histogram(src, shift, hi - shift);
      radix.narrow(shift, hi - shift);
      hi = shift;
      if (k - st->need + st->bucket <= target) break;
    }
    compact(count, st->prefix);
    NSA_TOPK_SPAN_END(0);
  }

  // Sets ss->tau (and returns it) from `sample` elements of the valid row [0, len) (evenly spaced
  // runs of 8):
  // the floor of the top-R-bit bucket that holds the sample's rank-th largest, where rank =
  // 1.5 x k's expected place in the sample + 16 (>= 4 standard deviations above it), so that
  // far fewer than the row's elements pass the filter and the buffer seldom fills. Fewer than k
  // elements of the row reach that tau only by chance (random rows: rarely) or by design
  // (adversarial rows); the caller detects it (fewer than k buffered) and selects again from
  // tau 0. Every block of a row gets the same tau: the same elements, the same steps.
  NSA_TOPK_BLOCK_FN u64 sample_tau(const float* row, int len, int k, int sample) {
    // Runs of kSampleRun consecutive elements (a 32-byte sector), evenly spaced: a warp's load
    // touches 4 sectors instead of 32. Up to kSampleLoads loads in flight per thread before
    // any atomic.
    constexpr int kSampleRun = 8, kSampleLoads = 4;
    const int runs = sample / kSampleRun, n = runs * kSampleRun;
    // Too short a row for the sample to reject much: tau stays 0 (uniform across the block).
    if (runs < 1 || (long long)len < 2ll * k + 2ll * n) return 0ull;
    const long long expect = ((long long)k * n + len - 1) / len;
    const int rank = (int)(expect + expect / 2 + 16);
    constexpr int kBins = 1 << R;
    u32* hist = radix.hist;
    SelectState* st = radix.st;
    for (int b = (int)threadIdx.x; b < kBins; b += T) hist[b] = 0u;
    if (threadIdx.x == 0) {
      st->prefix = 0ull;
      st->mask = 0ull;
      st->need = rank;
      st->bucket = n;
    }
    __syncthreads();
    NSA_TOPK_SPAN_BEGIN(5);
    for (int base = 0; base < n; base += T * kSampleLoads) {
      u32 key[kSampleLoads];
      NSA_TOPK_UNROLL
      for (int u = 0; u < kSampleLoads; ++u) {
        const int i = base + u * T + (int)threadIdx.x;
        const int pos = (int)((long long)(i / kSampleRun) * (len - kSampleRun) / runs) + i % kSampleRun;
        key[u] = i < n ? order_key(row[pos]) : 0u;
      }
      NSA_TOPK_UNROLL
      for (int u = 0; u < kSampleLoads; ++u)
        if (base + u * T + (int)threadIdx.x < n) atomicAdd(&hist[key[u] >> (32 - R)], 1u);
    }
    __syncthreads();
    radix.narrow(64 - R, R);  // the sample holds >= rank entries: a digit is always fixed
    const u64 tau = st->prefix;
    if (threadIdx.x == 0) ss->tau = tau;
    __syncthreads();
    NSA_TOPK_SPAN_END(5);
    return tau;
  }

  // Streams s through the filter; the caller has set ss->count, and ss->tau before the stream or
  // in prologue(), which runs (block-wide) once the first loads are in flight. Every slot appends
  // with one barrier (block_append), and the block shrinks the buffer once it cannot take one
  // more slot.
  template <class Stream, class Prologue>
  NSA_TOPK_BLOCK_FN void run(const Stream& s, int k, Prologue&& prologue) {
    constexpr int V = Stream::V;
    // I 16-byte loads in flight per thread: I / kLoads slots.
    constexpr int J = I / Stream::kLoads > 0 ? I / Stream::kLoads : 1;
    const int room = capacity - T * V;  // the buffer takes one more slot while count <= room
    const int target = k + (room - k) / kShrinkSlack;
    const int slots = s.slots();
    typename Stream::Payload v[J];
    NSA_TOPK_UNROLL
    for (int i = 0; i < J; ++i) v[i] = s.load(i);
    prologue();
    int count = ss->count;  // the same in every thread
    int parity = 0;
    for (int base = 0; base < slots; base += J) {
      NSA_TOPK_UNROLL
      for (int i = 0; i < J; ++i) {
        const int slot = base + i;
        if (slot < slots) {
          const typename Stream::Payload x = v[i];
          v[i] = s.load(slot + J);  // keeps J slots of loads in flight
          u64 c[V];
          const u32 keep = s.filter(x, slot, ss->tau, c);
          block_append<V>(
              count, [&](int e) { return c[e]; }, keep, parity);
          parity ^= 1;
          if (count > room) {
            shrink(count, k, target);  // its first barrier orders the appends before it
            count = ss->count;
          }
        }
      }
    }
    __syncthreads();  // every thread has read ss->count (and the warp totals)
    if (threadIdx.x == 0) ss->count = count;
    __syncthreads();
  }

  // The row slice [begin, begin + n): the unaligned head and tail one element per thread, the
  // 16-byte aligned body as float4 units.
  // The unaligned head and tail of a row slice (< 8 elements), one per thread, through the
  // filter at the current tau.
  NSA_TOPK_BLOCK_FN void append_head_tail(const float* row, int begin, int head, int units, int tail, int k) {
    u64 c[1] = {0ull};
    u32 keep = 0;
    const int t = (int)threadIdx.x;
    if (t < head + tail) {
      const int pos = t < head ? begin + t : begin + head + 4 * units + (t - head);
      c[0] = composite(order_key(row[pos]), pos);
      keep = c[0] >= ss->tau ? 1u : 0u;
    }
    const int end = radix.template warp_append<1>(
        buf, &ss->count, [&](int) { return c[0]; }, keep);
    if (block_any(end > capacity - T * 4)) shrink(ss->count, k, k + (capacity - T * 4 - k) / 4);
  }

  // The row slice [begin, begin + n): the 16-byte aligned body as float4 units, the head and
  // tail one element per thread. prologue() as in run(); on NVIDIA it may set ss->tau (the head
  // and tail come after the body, so they see it). CDNA appends the head and tail first (the
  // other order made hipRTC 5.2 spill SGPRs): there the prologue must leave tau alone.
  template <class Prologue>
  NSA_TOPK_BLOCK_FN void run_row(const float* row, int begin, int n, int k, Prologue&& prologue) {
    const AlignedSplit a = aligned_split(row + begin, n);
    const int head = a.head, units = a.units, tail = a.tail;
#if defined(NSA_GPU_HIP)
    FloatStream<T, 1> s;  // CDNA: 64 KB of LDS leaves room for one float4 a thread per round
    append_head_tail(row, begin, head, units, tail, k);
#else
    FloatStream<T, I % 2 == 0 ? 2 : 1> s;  // 8 elements a slot when the loads pair up
#endif
    s.body = (const nsa_topk_f4*)(row + begin + head);
    s.first = begin + head;
    s.units = units;
    run(s, k, prologue);  // leaves count <= room: the head and tail (< T entries) fit
#if !defined(NSA_GPU_HIP)
    append_head_tail(row, begin, head, units, tail, k);
#endif
  }
  NSA_TOPK_BLOCK_FN void run_row(const float* row, int begin, int n, int k) {
    run_row(row, begin, n, k, [] {});
  }

  // Leaves the top min(k, count) composites in buf[0, return value).
  NSA_TOPK_BLOCK_FN int finish(int k) {
    const int count = ss->count;
    if (count > k) shrink(count, k, k);
    return ss->count;
  }

  NSA_TOPK_BLOCK_FN void write_row(const nsa_topk_params& p, int row, int count) {
    radix.write_row(p, row, count);  // radix.sel is buf
  }
};

// The static shared state of a kernel built on StreamSelect (the stream and filter kernels).
template <int T, int W>
struct StreamBlockState {
  static_assert(T % W == 0 && T / W <= 32, "block must hold at most 32 warps");
#if defined(NSA_GPU_HIP) && defined(__AMDGCN_WAVEFRONT_SIZE)
  static_assert(W == __AMDGCN_WAVEFRONT_SIZE, "W must equal the wavefront size");
#endif
  SelectState select;
  StreamState stream;
  int warp_sums[3 * (T / W)];  // scans, then the block appends' two parities
};

template <int T, int I, int R, int W>
__device__ __forceinline__ void topk_stream_select(const nsa_topk_params& p) {
  static_assert(R >= 4 && R <= 12, "radix bits out of range");
  static_assert(I >= 1 && I <= 32, "compaction keeps one bit per item");
  NSA_TOPK_DYNAMIC_SHARED(nsa_topk_smem);
  __shared__ StreamBlockState<T, W> shared;
  SelectState& state = shared.select;
  StreamState& stream_state = shared.stream;

  StreamSelect<T, I, R, W> block;
  block.init(nsa_topk_smem, p.buffer_capacity, &state, &stream_state, shared.warp_sums);
  const RowSlice rs = row_slice(p);
  const int row = rs.row, part = rs.part;
  block.run_row(rs.scores, rs.begin, rs.n, p.k);
  const int count = block.finish(p.k);
  if (p.splits == 1) {
    block.write_row(p, row, count);
    return;
  }

  // Stage 1 (above): the exact top-k of this block's slice into the workspace, their top R
  // bits into the row's histogram.
  u64* row_slices = p.slice_workspace + (u64)row * (u64)p.splits * (u64)p.k;
  u64* mine = row_slices + (u64)part * (u64)p.k;
  for (int i = (int)threadIdx.x; i < p.k; i += T) mine[i] = i < count ? block.buf[i] : 0ull;
  constexpr int kBins = 1 << R;
  u32* hist = block.radix.hist;
  unsigned int* row_hist = p.row_histograms + (u64)row * (u64)kBins;
  block.add_to_row_histogram(count, row_hist);
  if (threadIdx.x == 0) state.last = block_release_last(&p.row_counters[row], p.splits);
  __syncthreads();
  if (!state.last) return;

  // Stage 2 (last block of the row): the row histogram of the candidates gives tau at once
  // (at least k candidates reach its threshold digit), then the candidates stream through.
  for (int b = (int)threadIdx.x; b < kBins; b += T) {
    hist[b] = NSA_TOPK_LOAD_COHERENT(row_hist + b);
    row_hist[b] = 0u;  // at rest again for the next launch
  }
  if (threadIdx.x == 0) {
    p.row_counters[row] = 0u;
    state.prefix = 0ull;
    state.mask = 0ull;
    state.need = p.k;
    stream_state.count = 0;
    stream_state.fill = 0;
  }
  __syncthreads();
  block.radix.narrow(64 - R, R);  // fewer than k candidates: prefix stays 0 and all pass
  if (threadIdx.x == 0) stream_state.tau = state.prefix;
  __syncthreads();
  ListStream<T> list;
  list.list = row_slices;
  list.n = p.splits * p.k;
  block.run(list, p.k, [] {});
  block.write_row(p, row, block.finish(p.k));
}

}  // namespace nsa_topk
