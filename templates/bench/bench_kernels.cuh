// Device code of `nsa-tune bench`: input fills (hash-based, one launch each), the gather-only
// memory floor, the mma.sync peak and a spin kernel that holds the stream while the host
// queues a timed batch. tuner/bench_kernels.cpp instantiates these as extern "C" kernels.
// Builtin types only (NVRTC has no standard headers).
#pragma once

#include "bench/bench_random.h"
#include "common/nv_ptx.cuh"

namespace nsajit::bench {

__device__ __forceinline__ void store_16(void* p, unsigned a, unsigned b, unsigned c, unsigned d) {
  asm volatile("st.global.v4.u32 [%0], {%1,%2,%3,%4};\n" ::"l"(p), "r"(a), "r"(b), "r"(c), "r"(d) : "memory");
}

// dst[i] = bf16(nsa_bench_value(key, i)) for i < count; dst 16-byte aligned. Each thread makes
// eight values and writes them with one 16-byte store.
__device__ __forceinline__ void fill_bf16(unsigned short* dst, long long count, unsigned long long key) {
  const long long groups = (count + 7) / 8;
  const long long step = static_cast<long long>(gridDim.x) * blockDim.x;
  for (long long g = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; g < groups; g += step) {
    const long long i0 = g * 8;
    unsigned w[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) w[j] = pack_bf16x2(nsa_bench_value(key, i0 + 2 * j), nsa_bench_value(key, i0 + 2 * j + 1));
    if (i0 + 8 <= count) {
      store_16(dst + i0, w[0], w[1], w[2], w[3]);
    } else {
      for (int j = 0; i0 + j < count; ++j) dst[i0 + j] = static_cast<unsigned short>(w[j / 2] >> (16 * (j & 1)));
    }
  }
}

// One block per row: indices[row * row_stride + t] = nsa_bench_index(row's start/stride, t).
__device__ __forceinline__ void fill_indices(int* indices, long long row_stride, int topk, int s_kv,
                                             unsigned long long key) {
  const long long row = blockIdx.x;
  const NsaBenchIndexRow r = nsa_bench_index_row(key, row, s_kv);
  for (int t = threadIdx.x; t < topk; t += blockDim.x) indices[row * row_stride + t] = nsa_bench_index(r, t, s_kv);
}

// 16-byte gather loads. NC: read-only path, no L1 allocation (the rows are read once per
// query row); CG: cached in L2 only, as the attention kernel's cp.async.cg.
enum GatherLoad { kLoadNc = 0, kLoadCg = 1, kLoadNc256 = 2 };

template <int MODE>
__device__ __forceinline__ void load_16(unsigned (&v)[4], const void* p) {
  if constexpr (MODE == kLoadNc) {
    asm("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(v[0]), "=r"(v[1]), "=r"(v[2]), "=r"(v[3])
                 : "l"(p));
  } else if constexpr (MODE == kLoadCg) {
    asm("ld.global.cg.v4.u32 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(v[0]), "=r"(v[1]), "=r"(v[2]), "=r"(v[3])
                 : "l"(p));
  } else {
    asm("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(v[0]), "=r"(v[1]), "=r"(v[2]), "=r"(v[3])
                 : "l"(p));
  }
}

// The gather-only floor: for query row blockIdx.x, reads exactly the kv rows the attention
// kernel reads (indices[row][t] for t < topk, invalid ones skipped), CHUNKS 16-byte chunks
// each, and XORs every loaded word into out[row * gridDim.y + blockIdx.y]. The row's
// (t, chunk) pairs are flattened so consecutive threads read consecutive chunks of one kv
// row; blockIdx.y takes a contiguous share of them (decode: few rows, many blocks). Each
// thread issues UNROLL independent loads before it consumes any.
template <int CHUNKS, int BLOCK, int UNROLL, int MODE>
__device__ __forceinline__ void gather_floor(const unsigned short* kv, long long kv_row_stride, int s_kv,
                                             const int* indices, long long idx_row_stride, int topk,
                                             unsigned* out) {
  __shared__ unsigned warp_acc[BLOCK / 32];
  const long long row = blockIdx.x;
  const int* idx = indices + row * idx_row_stride;
  const int total = topk * CHUNKS;
  const int per_split = (total + static_cast<int>(gridDim.y) - 1) / static_cast<int>(gridDim.y);
  const int begin = static_cast<int>(blockIdx.y) * per_split;
  const int end = begin + per_split < total ? begin + per_split : total;
  unsigned acc = 0;
  for (int base = begin + static_cast<int>(threadIdx.x); base < end; base += BLOCK * UNROLL) {
    int kv_row[UNROLL], chunk[UNROLL];
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      const int c = base + u * BLOCK;
      const int t = c / CHUNKS;
      chunk[u] = c - t * CHUNKS;
      const int r = c < end ? __ldg(idx + t) : -1;
      kv_row[u] = (r >= 0 && r < s_kv) ? r : -1;
    }
    unsigned v[UNROLL][4];
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      if (kv_row[u] >= 0) {
        load_16<MODE>(v[u], kv + kv_row[u] * kv_row_stride + chunk[u] * 8);
      } else {
        v[u][0] = v[u][1] = v[u][2] = v[u][3] = 0u;
      }
    }
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) acc ^= v[u][0] ^ v[u][1] ^ v[u][2] ^ v[u][3];
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) acc ^= __shfl_xor_sync(0xffffffffu, acc, o);
  if ((threadIdx.x & 31) == 0) warp_acc[threadIdx.x >> 5] = acc;
  __syncthreads();
  if (threadIdx.x == 0) {
    unsigned all = 0;
#pragma unroll
    for (int w = 0; w < BLOCK / 32; ++w) all ^= warp_acc[w];
    out[row * gridDim.y + blockIdx.y] = all;
  }
}

// The mma.sync ceiling: every warp runs `iterations` x CHAINS bf16 m16n8k16 mma (4096 FLOPs
// each) on register operands into CHAINS independent accumulators: no memory traffic in the
// loop. Operands are bf16 in [1, 2) drawn from `seed` (never zeros: zeros run faster).
template <int CHAINS>
__device__ __forceinline__ void mma_peak(int iterations, unsigned seed, float* out) {
  const unsigned long long h = nsa_bench_hash(seed, static_cast<unsigned long long>(blockIdx.x) * blockDim.x + threadIdx.x);
  auto bf16x2 = [&](int k) {
    const unsigned bits = static_cast<unsigned>(h >> (8 * k));
    return (0x3f80u | (bits & 0x7fu)) | ((0x3f80u | ((bits >> 8) & 0x7fu)) << 16);
  };
  const unsigned a[4] = {bf16x2(0), bf16x2(1), bf16x2(2), bf16x2(3)};
  const unsigned b0 = bf16x2(4), b1 = bf16x2(5);
  float acc[CHAINS][4];
#pragma unroll
  for (int c = 0; c < CHAINS; ++c) acc[c][0] = acc[c][1] = acc[c][2] = acc[c][3] = 0.f;
#pragma unroll 2
  for (int i = 0; i < iterations; ++i) {
#pragma unroll
    for (int c = 0; c < CHAINS; ++c) mma_bf16_16816(acc[c], a, b0, b1);
  }
  float s = 0.f;
#pragma unroll
  for (int c = 0; c < CHAINS; ++c) s += acc[c][0] + acc[c][1] + acc[c][2] + acc[c][3];
  out[static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x] = s;
}

__device__ __forceinline__ unsigned long long global_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %globaltimer;\n" : "=l"(t));
  return t;
}

// Keeps the stream busy for `ns` nanoseconds, so the host can queue a whole timed batch
// behind it and the batch then runs back to back (no host launch gaps inside the timing).
__device__ __forceinline__ void spin(unsigned long long ns) {
  if (threadIdx.x != 0) return;
  const unsigned long long t0 = global_ns();
  while (global_ns() - t0 < ns) __nanosleep(1000);
}

}  // namespace nsajit::bench
