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
#define NSA_TOPK_LOAD_COHERENT(ptr) NSA_LOAD_COHERENT(ptr)

// The block-wide steps. AMDGPU gives an out-of-line call a stack frame in scratch memory (the
// object and its by-reference arguments live there), so on CDNA they are always inlined.
#if defined(NSA_GPU_HIP)
#define NSA_TOPK_BLOCK_FN __device__ __forceinline__
#else
#define NSA_TOPK_BLOCK_FN __device__
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
#pragma unroll
    for (int i = 0; i < I; ++i) {
      const int j = base + i * T + (int)threadIdx.x;
      v[i] = j < n ? src.load(j) : 0ull;
    }
#pragma unroll
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
  int* warp_sums;  // [T / W]
  int cand_capacity;

  NSA_TOPK_BLOCK_FN int inclusive_scan(int v) {
    const int lane = (int)threadIdx.x % W, warp = (int)threadIdx.x / W;
    constexpr int kWarps = T / W;
#pragma unroll
    for (int o = 1; o < W; o <<= 1) {
      const int y = NSA_TOPK_SHFL_UP(v, o);
      if (lane >= o) v += y;
    }
    if (lane == W - 1) warp_sums[warp] = v;
    __syncthreads();
    if (warp == 0) {
      int s = lane < kWarps ? warp_sums[lane] : 0;
#pragma unroll
      for (int o = 1; o < W; o <<= 1) {
        const int y = NSA_TOPK_SHFL_UP(s, o);
        if (lane >= o) s += y;
      }
      if (lane < kWarps) warp_sums[lane] = s;
    }
    __syncthreads();
    if (warp > 0) v += warp_sums[warp - 1];
    __syncthreads();
    return v;
  }

  __device__ __forceinline__ void emit(u64 c) {
    sel[atomicAdd(&st->selected, 1)] = c;
  }

  template <class Src>
  NSA_TOPK_BLOCK_FN void histogram(const Src& src, int shift, int bits) {
    for (int i = (int)threadIdx.x; i < (1 << bits); i += T) hist[i] = 0u;
    __syncthreads();
    const u64 mask = st->mask, prefix = st->prefix;
    const u32 digit_mask = (1u << bits) - 1u;
    for_each<T, I>(src, [&](u64 c) {
      if ((c & mask) == prefix) atomicAdd(&hist[(u32)(c >> shift) & digit_mask], 1u);
    });
    __syncthreads();
  }

  // Finds the digit whose bucket holds the need-th largest matching element (scanning the
  // buckets from the top) and fixes it in prefix.
  NSA_TOPK_BLOCK_FN void narrow(int shift, int bits) {
    const int buckets = 1 << bits;
    const int need = st->need;
    const int per = (buckets + T - 1) / T;
    const int first = (int)threadIdx.x * per;
    int sum = 0;
    for (int r = 0; r < per; ++r)
      if (first + r < buckets) sum += (int)hist[buckets - 1 - (first + r)];
    const int incl = inclusive_scan(sum);
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
  }

  // Emits everything above the threshold bucket, copies the bucket into cand.
  template <class Src>
  NSA_TOPK_BLOCK_FN void compact(const Src& src) {
    const u64 mask = st->mask, prefix = st->prefix;
    for_each<T, I>(src, [&](u64 c) {
      const u64 m = c & mask;
      if (m > prefix)
        emit(c);
      else if (m == prefix)
        cand[atomicAdd(&st->cand, 1)] = c;
    });
    __syncthreads();
  }

  template <class Src>
  NSA_TOPK_BLOCK_FN void emit_selected(const Src& src) {
    const u64 mask = st->mask, prefix = st->prefix;
    for_each<T, I>(src, [&](u64 c) {
      if ((c & mask) >= prefix) emit(c);
    });
  }

  // Writes the top min(k, valid) composites of src into sel[0, st->selected).
  // `valid` = number of non-empty entries in src, or any value > k when it is known to be > k.
  template <class Src>
  NSA_TOPK_BLOCK_FN void select(const Src& src, int valid, int k) {
    if (threadIdx.x == 0) {
      st->prefix = 0ull;
      st->mask = 0ull;
      st->need = k;
      st->bucket = valid;
      st->selected = 0;
      st->cand = 0;
    }
    __syncthreads();
    if (valid > k) {
      bool on_list = false;
      for (int hi = 64; hi > 0;) {
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
      for_each<T, I>(src, [&](u64 c) { emit(c); });
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

  NSA_TOPK_BLOCK_FN void write_row(const nsa_topk_params& p, int row) {
    const int count = st->selected;
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
  extern __shared__ unsigned long long nsa_topk_smem[];
  __shared__ SelectState state;
  __shared__ int warp_sums[T / W];

  BlockSelect<T, I, R, W> block;
  block.sel = nsa_topk_smem;
  block.cand = nsa_topk_smem + p.sel_capacity;
  block.hist = (u32*)(nsa_topk_smem + p.sel_capacity + p.cand_capacity);
  block.st = &state;
  block.warp_sums = warp_sums;
  block.cand_capacity = p.cand_capacity;

  const int row = (int)blockIdx.x / p.splits;
  const int part = (int)blockIdx.x % p.splits;
  int len = p.length;
  if (p.lengths != 0) {
    len = p.lengths[row];
    len = len < 0 ? 0 : (len > p.length ? p.length : len);
  }
  const float* scores = p.scores + (long long)row * p.score_row_stride;

  if (p.splits == 1) {
    block.select(RowSource{scores, 0, len}, len, p.k);
    block.write_row(p, row);
    return;
  }

  // Stage 1: the top-k of this block's slice, padded with empty slots, into the workspace.
  const int begin = part * p.slice;
  const int end = begin + p.slice < len ? begin + p.slice : len;
  const int n = end > begin ? end - begin : 0;
  block.select(RowSource{scores, begin, n}, n, p.k);
  u64* row_slices = p.slice_workspace + (u64)row * (u64)p.splits * (u64)p.k;
  u64* mine = row_slices + (u64)part * (u64)p.k;
  const int count = state.selected;
  for (int i = (int)threadIdx.x; i < p.k; i += T) mine[i] = i < count ? block.sel[i] : 0ull;
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) state.last = atomicAdd(&p.row_counters[row], 1u) == (u32)(p.splits - 1);
  __syncthreads();
  if (!state.last) return;

  // Stage 2 (last block of the row): the row's top-k among the splits' candidates.
  __threadfence();
  if (threadIdx.x == 0) p.row_counters[row] = 0u;  // at rest again for the next launch
  block.select(GlobalListSource{row_slices, p.splits * p.k}, len, p.k);
  block.write_row(p, row);
}

}  // namespace nsa_topk
