// sparse_mla_fwd for Hopper (sm_90a) on the warpgroup tensor cores (wgmma), for the
// matrix-bound regime (h_q >= 64). Same contract and outputs as sm90.cuh (mma.sync); the topk
// split writes the same partials, merged by sparse_mla_combine from sm90.cuh.
//
// One CTA = one query row (b, s) x 64 heads, two math warpgroups (256 threads):
// - Every thread gathers: tile i + STAGES - 1 of the row's kv rows is copied with 16-byte
//   cp.async (zero-filled for invalid indices) into a STAGES-deep ring while tile i is computed.
//   Q [64 x d] and each kv tile [64 x d] sit in the 128-byte-swizzle K-major layout that wgmma
//   descriptors read (the swizzle is applied in the copy address).
// - Warpgroup 0 computes S = Q K^T for the whole tile (64 m64n64k16 wgmmas over d, A = Q and
//   B = K from shared memory), the online softmax in registers (each thread holds 2 rows x 16
//   columns of the accumulator), and writes P (bf16) and the per-row rescale factor alpha to
//   shared memory. One S per tile (not one per warpgroup): no duplicated Q K^T work, and n64
//   wgmmas read 4 KB of shared memory per 32 tensor-core cycles, within its bandwidth.
// - Both warpgroups then compute O += P V for their half of the 512 output columns
//   (m64n256k16, A = P, B = V = the first 512 columns of the same kv tile, read N-major through
//   the descriptor's transpose bit): 64 x 256 fp32 = 128 accumulator registers per thread.
#pragma once

#include "common/nv_ptx.cuh"
#include "common/nv_wgmma.cuh"
#include "sparse_mla_fwd/params.h"
#include "sparse_mla_fwd/row_range.cuh"
#include "sparse_mla_fwd/row_stats.cuh"
#include "sparse_mla_fwd/wgmma_layout.h"

namespace nsajit {

template <int D, int BH, int BT, int WARPS, int STAGES>
struct SparseMlaSm90Wgmma {
  static constexpr NsaSparseMlaWgmmaLayout L = nsa_sparse_mla_wgmma_layout(D, BH, BT, WARPS, STAGES);
  static_assert(STAGES >= 2, "the pipeline issues tile i+STAGES-1 before computing tile i");
  static_assert(BH == 64, "one wgmma M tile of 64 heads per CTA");
  static_assert(BT == 64, "S is one m64n64 wgmma tile; P is one 128-byte swizzle panel");
  static_assert(WARPS == 8, "two math warpgroups, each owning 256 output columns");
  static_assert(D % 64 == 0 && L.dv == 512, "d is a whole number of 64-column panels");
  static_assert(L.threads >= BT, "one thread per tile row loads the indices");
  static constexpr int kOutCols = L.dv / 2;    // output columns per warpgroup
  static constexpr int kSRegs = BT / 2;        // S accumulator registers per thread (m64n64)
  static constexpr int kORegs = kOutCols / 2;  // O accumulator registers per thread (m64n256)

  const NsaSparseMlaParams& p;
  unsigned char* base;  // 1024-byte aligned
  unsigned base_addr;   // its shared-state-space address
  int* idx_s;
  float* alpha_s;  // [BH] per-tile rescale factor, written by warpgroup 0
  float* m_s;      // [BH] final running max (warpgroup 0 -> 1)
  float* l_s;      // [BH] final row sum (warpgroup 0 -> 1)
  const int* idx_g;
  int t_begin, t_end, n_tiles;

  __device__ __forceinline__ int load_index(int tile, int r) const {
    return nsa_kv_index<BT>(p, idx_g, t_begin, t_end, n_tiles, tile, r);
  }

  // Byte offset of 16-byte chunk k of row r in a swizzled [rows x D] tile.
  static __device__ __forceinline__ int tile_offset(int rows, int r, int k) {
    return (k >> 3) * rows * 128 + nsa_sw128_offset(r, k & 7);
  }

  __device__ __forceinline__ void issue_tile(int tile, int stage) const {
    if (tile >= n_tiles) return;
    unsigned char* dst = base + L.kv_off + stage * L.kv_stage_bytes;
    const int* idx = idx_s + stage * BT;
#pragma unroll 4
    for (int c = threadIdx.x; c < BT * L.chunks; c += L.threads) {
      const int r = c / L.chunks, k = c - r * L.chunks;
      const int row = idx[r];
      const unsigned short* src = row >= 0 ? p.kv + row * p.kv_row_stride + k * 8 : p.kv;
      cp_async_16(dst + tile_offset(BT, r, k), src, row >= 0 ? 16 : 0);
    }
  }

  // Descriptors. K-major operands step 16 columns (32 bytes) inside a panel, then jump panels.
  __device__ __forceinline__ unsigned long long q_desc(int kk) const {
    return nsa_wgmma_desc_sw128(base_addr + L.q_off + (kk >> 2) * BH * 128 + (kk & 3) * 32, 16, 1024);
  }
  __device__ __forceinline__ unsigned long long k_desc(int stage, int kk) const {
    return nsa_wgmma_desc_sw128(
        base_addr + L.kv_off + stage * L.kv_stage_bytes + (kk >> 2) * BT * 128 + (kk & 3) * 32, 16, 1024);
  }
  __device__ __forceinline__ unsigned long long p_desc(int kk) const {
    return nsa_wgmma_desc_sw128(base_addr + L.p_off + kk * 32, 16, 1024);
  }
  // V[16 tokens x 256 dims] N-major: 4 panels of 64 dims, BT * 128 bytes apart (LBO); 8-token
  // groups 1024 bytes apart (SBO); 16 tokens further = 2048 bytes.
  __device__ __forceinline__ unsigned long long v_desc(int stage, int wg, int kk) const {
    return nsa_wgmma_desc_sw128(
        base_addr + L.kv_off + stage * L.kv_stage_bytes + (wg * 4) * BT * 128 + kk * 16 * 128, BT * 128,
        1024);
  }

  __device__ __forceinline__ void run() {
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wg = warp >> 2;                      // warpgroup: 0 computes S; both compute O
    const int r0 = (warp & 3) * 16 + (lane >> 2);  // this thread's accumulator rows: r0, r0 + 8
    const int c0 = 2 * (lane & 3);                 // and columns c0, c0 + 1 of every 8-column block
    const long long row = blockIdx.x;
    const int h0 = blockIdx.y * BH;
    const int split = blockIdx.z;

    const NsaRowRange range = nsa_row_range<BT>(p, row, split);
    t_begin = range.t_begin;
    t_end = range.t_end;
    n_tiles = range.n_tiles;
    const int b = range.b, s = range.s;
    idx_g = p.indices + b * p.idx_stride_b + s * p.idx_stride_s;

    // Q tile, swizzled (heads past h_q are zero and never stored). Joins the first tile's group.
    const unsigned short* q_g = p.q + b * p.q_stride_b + s * p.q_stride_s;
    for (int c = tid; c < BH * L.chunks; c += L.threads) {
      const int r = c / L.chunks, k = c - r * L.chunks;
      const bool ok = h0 + r < p.h_q;
      cp_async_16(base + L.q_off + tile_offset(BH, r, k), ok ? q_g + (h0 + r) * p.q_stride_h + k * 8 : p.q,
                  ok ? 16 : 0);
    }

    if (tid < BT) {
#pragma unroll
      for (int j = 0; j < STAGES - 1; ++j) idx_s[j * BT + tid] = load_index(j, tid);
    }
    __syncthreads();
#pragma unroll
    for (int j = 0; j < STAGES - 1; ++j) {
      issue_tile(j, j);
      cp_async_commit();
    }
    int pending = tid < BT ? load_index(STAGES - 1, tid) : -1;

    float o[kORegs];
#pragma unroll
    for (int i = 0; i < kORegs; ++i) o[i] = 0.f;
    float m_run[2] = {neg_inf(), neg_inf()};  // warpgroup 0 only
    float l_run[2] = {0.f, 0.f};              // this thread's share of the row sums (warpgroup 0)

    for (int i = 0; i < n_tiles; ++i) {
      cp_async_wait<STAGES - 2>();
      const int next = i + STAGES - 1;
      if (tid < BT) idx_s[(next % STAGES) * BT + tid] = pending;
      fence_proxy_async_smem();  // this thread's landed copies -> visible to the tensor cores
      __syncthreads();           // tile i landed for all; stage of tile i-1 and P are free
      issue_tile(next, next % STAGES);
      cp_async_commit();
      if (tid < BT) pending = load_index(next + 1, tid);

      const int st = i % STAGES;
      if (wg == 0) {
        // ---- S = Q K^T over d
        float sacc[kSRegs];
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk)
          wgmma_m64n64k16_ss(sacc, q_desc(kk), k_desc(st, kk), kk > 0 ? 1 : 0);
        wgmma_commit();
        wgmma_wait<0>();
        wgmma_fence_operands(sacc);

        // ---- scale, mask invalid columns, online softmax; P (bf16) to shared memory
        const int* tile_idx = idx_s + st * BT;
        bool col_ok[BT / 8][2];
#pragma unroll
        for (int j = 0; j < BT / 8; ++j) {
          col_ok[j][0] = tile_idx[8 * j + c0] >= 0;
          col_ok[j][1] = tile_idx[8 * j + c0 + 1] >= 0;
        }
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          float mx = neg_inf();
#pragma unroll
          for (int j = 0; j < BT / 8; ++j)
#pragma unroll
            for (int e = 0; e < 2; ++e) {
              float& v = sacc[4 * j + 2 * h + e];
              v = col_ok[j][e] ? v * p.scale_log2 : neg_inf();
              mx = fmaxf(mx, v);
            }
          mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
          mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
          const float m_new = fmaxf(m_run[h], mx);
          const float m_use = m_new == neg_inf() ? 0.f : m_new;  // all masked so far: no NaN
          const float alpha = fast_exp2(m_run[h] - m_use);
          m_run[h] = m_new;
          const int r = r0 + 8 * h;
          float sum = 0.f;
#pragma unroll
          for (int j = 0; j < BT / 8; ++j) {
            const float p0 = fast_exp2(sacc[4 * j + 2 * h] - m_use);
            const float p1 = fast_exp2(sacc[4 * j + 2 * h + 1] - m_use);
            sum += p0 + p1;
            *reinterpret_cast<unsigned*>(base + L.p_off + nsa_sw128_offset(r, j) + c0 * 2) =
                pack_bf16x2(p0, p1);
          }
          l_run[h] = l_run[h] * alpha + sum;
          if ((lane & 3) == 0) alpha_s[r] = alpha;
        }
        fence_proxy_async_smem();  // P -> visible to the tensor cores
      }
      __syncthreads();  // P and alpha of tile i complete

      // ---- O = alpha O + P V over this warpgroup's 256 columns
      const float a0 = alpha_s[r0], a1 = alpha_s[r0 + 8];
#pragma unroll
      for (int j = 0; j < kORegs / 4; ++j) {
        o[4 * j] *= a0;
        o[4 * j + 1] *= a0;
        o[4 * j + 2] *= a1;
        o[4 * j + 3] *= a1;
      }
      wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < BT / 16; ++kk) wgmma_m64n256k16_ss_tb(o, p_desc(kk), v_desc(st, wg, kk), 1);
      wgmma_commit();
      wgmma_wait<0>();
      wgmma_fence_operands(o);
    }
    cp_async_wait<0>();  // no copy may land after the block exits

    // ---- row statistics: warpgroup 0 reduces its quads and shares (m, l) with warpgroup 1
    if (wg == 0) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        float l = l_run[h];
        l += __shfl_xor_sync(0xffffffffu, l, 1);
        l += __shfl_xor_sync(0xffffffffu, l, 2);
        if ((lane & 3) == 0) {
          m_s[r0 + 8 * h] = m_run[h];
          l_s[r0 + 8 * h] = l;
        }
      }
    }
    __syncthreads();

    // ---- epilogue
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int r = r0 + 8 * h;
      const int head = h0 + r;
      if (head >= p.h_q) continue;
      const float m = m_s[r], l = l_s[r];
      const bool empty = !(l > 0.f);
      const float lse2 = row_lse2(m, l, empty);
      const int col0 = wg * kOutCols + c0;
      if (p.num_splits > 1) {
        const long long prow = (static_cast<long long>(split) * p.batch * p.s_q + row) * p.h_q + head;
        const float inv = empty ? 0.f : 1.f / l;
        float* dst = p.partial_out + prow * L.dv + col0;
#pragma unroll
        for (int j = 0; j < kORegs / 4; ++j)
          *reinterpret_cast<float2*>(dst + 8 * j) =
              make_float2(o[4 * j + 2 * h] * inv, o[4 * j + 2 * h + 1] * inv);
        if (wg == 0 && (lane & 3) == 0) {
          store_partial_stats(p, prow, m, lse2, empty);
        }
        continue;
      }
      const float inv = output_scale(p, head, l, m, empty);
      unsigned short* dst = p.out + b * p.out_stride_b + s * p.out_stride_s + head * p.out_stride_h + col0;
#pragma unroll
      for (int j = 0; j < kORegs / 4; ++j)
        *reinterpret_cast<unsigned*>(dst + 8 * j) =
            pack_bf16x2(o[4 * j + 2 * h] * inv, o[4 * j + 2 * h + 1] * inv);
      if (wg == 0 && (lane & 3) == 0) {
        store_row_stats(p, b, s, head, m, lse2, empty);
      }
    }
  }
};

template <int D, int BH, int BT, int WARPS, int STAGES>
__device__ __forceinline__ void sparse_mla_fwd_sm90_wgmma(const NsaSparseMlaParams& p) {
  using K = SparseMlaSm90Wgmma<D, BH, BT, WARPS, STAGES>;
  extern __shared__ __align__(1024) unsigned char smem_wgmma[];
  K k{p};
  // The swizzle atoms must sit on 1024-byte boundaries; the layout reserves the slack.
  const unsigned raw = smem_addr(smem_wgmma);
  const unsigned pad = (1024u - (raw & 1023u)) & 1023u;
  k.base = smem_wgmma + pad;
  k.base_addr = raw + pad;
  k.idx_s = reinterpret_cast<int*>(k.base + K::L.idx_off);
  k.alpha_s = reinterpret_cast<float*>(k.base + K::L.row_off);
  k.m_s = k.alpha_s + BH;
  k.l_s = k.m_s + BH;
  k.run();
}

}  // namespace nsajit
