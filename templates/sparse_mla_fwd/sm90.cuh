// sparse_mla_fwd for NVIDIA sm_90a: each CTA takes one query row (b, s) and BH of its heads,
// gathers that row's topk kv rows tile by tile (BT rows per tile) into shared memory through
// a STAGES-deep cp.async pipeline, and runs an online softmax in fp32 over bf16 tensor-core
// mma (m16n8k16): S = Q K^T, P = exp2(S*scale - m), O += P V. The topk range may be split
// across blockIdx.z (decode), each split writing a partial (O/l, max, lse) that the combine
// kernel merges through the lse.
#pragma once

#include "common/nv_ptx.cuh"
#include "common/nv_wgmma.cuh"
#include "sparse_mla_fwd/layout.h"
#include "sparse_mla_fwd/params.h"
#include "sparse_mla_fwd/row_range.cuh"
#include "sparse_mla_fwd/row_stats.cuh"

namespace nsajit {

// ---- bulk-copy gather (gather 1): one cp.async.bulk per kv row, completing on an mbarrier
__device__ __forceinline__ void mbarrier_arrive_expect_tx(unsigned bar, unsigned bytes) {
  asm volatile("{\n.reg .b64 st;\nmbarrier.arrive.expect_tx.shared::cta.b64 st, [%0], %1;\n}\n" ::"r"(bar),
               "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void cp_async_bulk_g2s(unsigned dst, const void* src, unsigned bytes,
                                                  unsigned bar) {
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(dst),
      "l"(src), "r"(bytes), "r"(bar)
      : "memory");
}
__device__ __forceinline__ void fence_mbarrier_init() {
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}
__device__ __forceinline__ void mbarrier_inval(unsigned bar) {
  asm volatile("mbarrier.inval.shared::cta.b64 [%0];\n" ::"r"(bar) : "memory");
}

template <int D, int BH, int BT, int WARPS, int STAGES, int G = 0>
struct SparseMlaSm90 {
  static constexpr NsaSparseMlaLayout L = nsa_sparse_mla_layout(D, BH, BT, WARPS, STAGES, G);
  static_assert(STAGES >= 2, "the pipeline issues tile i+STAGES-1 before computing tile i");
  static_assert(G == 0 || (G == 1 && L.ks > 1 && L.wn > 1),
                "gather 1 issues the next tile after the partial-S barrier, so it needs the d-split S");
  static_assert(BH % 16 == 0 && BT % 16 == 0 && L.cn % 8 == 0 && L.on % 16 == 0, "tile shape");
  static_assert(L.threads >= BT, "one thread per tile row loads the indices");
  static_assert(L.kq * L.ks * 16 == D && L.sc % 8 == 0,
                "S split: whole k-steps per d slice, whole n-tiles per column group");

  const NsaSparseMlaParams& p;
  unsigned short* q_s;
  unsigned short* kv_s;
  unsigned short* p_s;
  int* idx_s;
  float* red_max;
  float* red_sum;
  float* rs_s;     // partial S, [ks][BH][rs_stride] fp32
  unsigned bar_s;  // gather 1: shared address of the per-stage mbarriers
  const int* idx_g;
  int t_begin, t_end, n_tiles;

  // Index of tile row `r` of tile `tile`, or -1 when it is past the valid range or invalid.
  __device__ __forceinline__ int load_index(int tile, int r) const {
    return nsa_kv_index<BT>(p, idx_g, t_begin, t_end, n_tiles, tile, r);
  }

  // Starts the asynchronous gather of tile `tile` into stage `stage` (zero-fill invalid rows).
  // kTpr threads share a kv row, each copying every kTpr-th 16-byte chunk, so one warp
  // instruction moves 4 rows x 128 contiguous bytes; the row index is read once per row and
  // the chunk offsets are compile-time immediates (no per-chunk division or 64-bit math).
  static constexpr int kTpr = 8, kRowsPerPass = L.threads / kTpr, kPasses = BT / kRowsPerPass;
  static constexpr int kChunksPerThread = L.chunks / kTpr;
  static_assert(L.chunks % kTpr == 0 && BT % kRowsPerPass == 0, "gather mapping");
  __device__ __forceinline__ void issue_tile(int tile, int stage) const {
    if (tile >= n_tiles) return;
    const int r0 = threadIdx.x / kTpr, k0 = (threadIdx.x % kTpr) * 8;
    unsigned short* dst = kv_s + stage * BT * L.qk_stride + r0 * L.qk_stride + k0;
    const int* idx = idx_s + stage * BT + r0;
#pragma unroll
    for (int pass = 0; pass < kPasses; ++pass) {
      const int row = idx[pass * kRowsPerPass];
      const unsigned short* src = p.kv + (row >= 0 ? row * p.kv_row_stride : 0) + k0;
      const int bytes = row >= 0 ? 16 : 0;
      unsigned short* d = dst + pass * kRowsPerPass * L.qk_stride;
#pragma unroll
      for (int c = 0; c < kChunksPerThread; ++c) cp_async_16(d + c * kTpr * 8, src + c * kTpr * 8, bytes);
    }
  }

  // gather 1: thread `r` (< BT) copies kv row `row` into row r of stage `stage` with one bulk
  // copy; an invalid row is zero-filled with ordinary stores (rare: tails, -1 indices). Either
  // way the thread arrives once on the stage's mbarrier (BT arrivals per phase); the expected
  // bytes are added before the copy is issued, so the phase cannot complete early.
  __device__ __forceinline__ void issue_row_bulk(int tile, int stage, int r, int row) const {
    if (tile >= n_tiles) return;
    unsigned short* dst = kv_s + stage * BT * L.qk_stride + r * L.qk_stride;
    const unsigned bar = bar_s + stage * 8;
    if (row >= 0) {
      mbarrier_arrive_expect_tx(bar, D * 2);
      cp_async_bulk_g2s(smem_addr(dst), p.kv + row * p.kv_row_stride, D * 2, bar);
    } else {
#pragma unroll
      for (int c = 0; c < L.chunks; ++c) *reinterpret_cast<uint4*>(dst + c * 8) = make_uint4(0u, 0u, 0u, 0u);
      fence_proxy_async_smem();  // ordered before a later bulk copy into the same row
      mbarrier_arrive(bar);      // release: the zeros are visible to every thread that waits
    }
  }

  __device__ __forceinline__ void run() {
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wm = warp / L.wn, wn = warp - (warp / L.wn) * L.wn;
    const long long row = blockIdx.x;
    const int h0 = blockIdx.y * BH;
    const int split = blockIdx.z;

    const NsaRowRange range = nsa_row_range<BT>(p, row, split);
    t_begin = range.t_begin;
    t_end = range.t_end;
    n_tiles = range.n_tiles;
    const int b = range.b, s = range.s;
    idx_g = p.indices + b * p.idx_stride_b + s * p.idx_stride_s;

    // Q tile (heads past h_q are zero; they are never stored), in its own cp.async group so it
    // can be moved to registers before the first kv tile lands.
    const unsigned short* q_g = p.q + b * p.q_stride_b + s * p.q_stride_s;
    for (int c = tid; c < BH * L.chunks; c += L.threads) {
      const int r = c / L.chunks, k = c - r * L.chunks;
      const bool ok = h0 + r < p.h_q;
      cp_async_16(q_s + r * L.q_stride + k * 8, ok ? q_g + (h0 + r) * p.q_stride_h + k * 8 : p.q,
                  ok ? 16 : 0);
    }
    cp_async_commit();

    // Prologue: indices of tiles 0..STAGES-2 straight to shared memory, then their gathers.
    if constexpr (G == 1) {
      if (tid == 0) {
#pragma unroll
        for (int j = 0; j < STAGES; ++j) mbarrier_init(bar_s + j * 8, BT);
        fence_mbarrier_init();
      }
    }
    if (tid < BT) {
#pragma unroll
      for (int j = 0; j < STAGES - 1; ++j) idx_s[j * BT + tid] = load_index(j, tid);
    }
    __syncthreads();
    if constexpr (G == 1) {
      if (tid < BT) {
#pragma unroll
        for (int j = 0; j < STAGES - 1; ++j) issue_row_bulk(j, j, tid, idx_s[j * BT + tid]);
      }
    } else {
#pragma unroll
      for (int j = 0; j < STAGES - 1; ++j) {
        issue_tile(j, j);
        cp_async_commit();
      }
    }
    int pending = tid < BT ? load_index(STAGES - 1, tid) : -1;  // one tile ahead, hides latency

    // This warp's S role: d slice ks_i (kq k-steps from d0), column group cs_i.
    const int ks_i = wn % L.ks, cs_i = wn / L.ks;
    const int d0 = ks_i * L.kq * 16;
    const int q_row = wm * L.rm + (lane & 15);
    unsigned qf[L.q_regs ? L.kq : 1][L.mt][4];
    if constexpr (L.q_regs) {
      // Groups committed: Q, then STAGES-1 tiles (gather 0; gather 1: Q only); waiting down to
      // STAGES-1 pending = Q landed.
      cp_async_wait<G == 1 ? 0 : STAGES - 1>();
      __syncthreads();
#pragma unroll
      for (int kk = 0; kk < L.kq; ++kk)
#pragma unroll
        for (int mt = 0; mt < L.mt; ++mt)
          ldmatrix_x4(qf[kk][mt], q_s + (q_row + mt * 16) * L.q_stride + d0 + kk * 16 + (lane >> 4) * 8);
      // The loop's first barrier orders these reads before any partial-S write reusing q_s
      // (gather 1 has no barrier at the top of a tile: this one).
      if constexpr (G == 1) __syncthreads();
    } else if constexpr (G == 1) {
      cp_async_wait<0>();
      __syncthreads();
    }

    float o[L.mt][L.nt_o][4];
    float m_run[L.mt][2], l_run[L.mt][2];
#pragma unroll
    for (int mt = 0; mt < L.mt; ++mt) {
#pragma unroll
      for (int nt = 0; nt < L.nt_o; ++nt) o[mt][nt][0] = o[mt][nt][1] = o[mt][nt][2] = o[mt][nt][3] = 0.f;
      m_run[mt][0] = m_run[mt][1] = neg_inf();
      l_run[mt][0] = l_run[mt][1] = 0.f;
    }

    for (int i = 0; i < n_tiles; ++i) {
      const int next = i + STAGES - 1;
      const int st = i % STAGES;
      if constexpr (G == 1) {
        // Tile i landed (bulk copies and zero rows) for this thread; no barrier: stage (i-1)
        // is refilled after this tile's partial-S barrier instead.
        mbarrier_wait_parity(bar_s + st * 8, (i / STAGES) & 1);
      } else {
        cp_async_wait<STAGES - 2>();
        if (tid < BT) idx_s[(next % STAGES) * BT + tid] = pending;
        __syncthreads();  // tile i landed for everyone; stage (i-1) is free; next tile's indices visible
        issue_tile(next, next % STAGES);
        cp_async_commit();
        if (tid < BT) pending = load_index(next + 1, tid);
      }

      const unsigned short* k_s = kv_s + st * BT * L.qk_stride;
      const int* tile_idx = idx_s + st * BT;

      // ---- S = Q K^T: partial over this warp's d slice, columns cs_i*sc.., mt*nt_p chains
      float sp[L.mt][L.nt_p][4];
#pragma unroll
      for (int mt = 0; mt < L.mt; ++mt)
#pragma unroll
        for (int nt = 0; nt < L.nt_p; ++nt)
          sp[mt][nt][0] = sp[mt][nt][1] = sp[mt][nt][2] = sp[mt][nt][3] = 0.f;
      const unsigned short* k_warp = k_s + (cs_i * L.sc) * L.qk_stride + d0;
#pragma unroll
      for (int kk = 0; kk < L.kq; ++kk) {
        unsigned a[L.mt][4];
#pragma unroll
        for (int mt = 0; mt < L.mt; ++mt) {
          if constexpr (L.q_regs) {
#pragma unroll
            for (int j = 0; j < 4; ++j) a[mt][j] = qf[L.q_regs ? kk : 0][mt][j];
          } else {
            ldmatrix_x4(a[mt], q_s + (q_row + mt * 16) * L.q_stride + d0 + kk * 16 + (lane >> 4) * 8);
          }
        }
#pragma unroll
        for (int np = 0; np < L.nt_p / 2; ++np) {
          unsigned bb[4];
          ldmatrix_x4(bb, k_warp + (np * 16 + (lane & 7) + ((lane >> 4) << 3)) * L.qk_stride + kk * 16 +
                              ((lane >> 3) & 1) * 8);
#pragma unroll
          for (int mt = 0; mt < L.mt; ++mt) {
            mma_bf16_16816(sp[mt][2 * np], a[mt], bb[0], bb[1]);
            mma_bf16_16816(sp[mt][2 * np + 1], a[mt], bb[2], bb[3]);
          }
        }
        if constexpr (L.nt_p % 2 == 1) {
          unsigned bb[2];
          ldmatrix_x2(
              bb, k_warp + ((L.nt_p - 1) * 8 + (lane & 7)) * L.qk_stride + kk * 16 + ((lane >> 3) & 1) * 8);
#pragma unroll
          for (int mt = 0; mt < L.mt; ++mt) mma_bf16_16816(sp[mt][L.nt_p - 1], a[mt], bb[0], bb[1]);
        }
      }

      // ---- sum the ks partials: this warp ends with S for rows wm*rm.., columns wn*cn..
      float sacc[L.mt][L.nt_s][4];
      if constexpr (L.ks == 1) {
        static_assert(L.ks > 1 || L.nt_p == L.nt_s, "one d slice means one column group");
#pragma unroll
        for (int mt = 0; mt < L.mt; ++mt)
#pragma unroll
          for (int nt = 0; nt < L.nt_s; ++nt)
#pragma unroll
            for (int j = 0; j < 4; ++j) sacc[mt][nt][j] = sp[mt][nt % L.nt_p][j];
      } else {
        // Written after this tile's first barrier, read before the row-max barrier: the next
        // tile's writes cannot overtake a slower warp's reads.
#pragma unroll
        for (int mt = 0; mt < L.mt; ++mt) {
          const int r = wm * L.rm + mt * 16 + (lane >> 2);
#pragma unroll
          for (int nt = 0; nt < L.nt_p; ++nt) {
            float* dst = rs_s + (ks_i * BH + r) * L.rs_stride + cs_i * L.sc + nt * 8 + 2 * (lane & 3);
            *reinterpret_cast<float2*>(dst) = make_float2(sp[mt][nt][0], sp[mt][nt][1]);
            *reinterpret_cast<float2*>(dst + 8 * L.rs_stride) = make_float2(sp[mt][nt][2], sp[mt][nt][3]);
          }
        }
        __syncthreads();
        if constexpr (G == 1) {
          // Every thread has finished tile i-1 (its P V read stage (i-1) % STAGES and its mask
          // read that stage's indices): refill it with tile next.
          if (tid < BT) {
            idx_s[(next % STAGES) * BT + tid] = pending;
            issue_row_bulk(next, next % STAGES, tid, pending);
            pending = load_index(next + 1, tid);
          }
        }
#pragma unroll
        for (int mt = 0; mt < L.mt; ++mt) {
          const int r = wm * L.rm + mt * 16 + (lane >> 2);
#pragma unroll
          for (int nt = 0; nt < L.nt_s; ++nt) {
            float s0 = 0.f, s1 = 0.f, s2 = 0.f, s3 = 0.f;
#pragma unroll
            for (int q = 0; q < L.ks; ++q) {
              const float* src = rs_s + (q * BH + r) * L.rs_stride + wn * L.cn + nt * 8 + 2 * (lane & 3);
              const float2 lo = *reinterpret_cast<const float2*>(src);
              const float2 hi = *reinterpret_cast<const float2*>(src + 8 * L.rs_stride);
              s0 += lo.x;
              s1 += lo.y;
              s2 += hi.x;
              s3 += hi.y;
            }
            sacc[mt][nt][0] = s0;
            sacc[mt][nt][1] = s1;
            sacc[mt][nt][2] = s2;
            sacc[mt][nt][3] = s3;
          }
        }
      }

      // ---- scale, mask invalid columns, row max (quad, then across the wn warps of a row)
      bool col_ok[L.nt_s][2];
#pragma unroll
      for (int nt = 0; nt < L.nt_s; ++nt) {
        const int2 ix = *reinterpret_cast<const int2*>(tile_idx + wn * L.cn + nt * 8 + 2 * (lane & 3));
        col_ok[nt][0] = ix.x >= 0;
        col_ok[nt][1] = ix.y >= 0;
      }
      float tile_max[L.mt][2];
#pragma unroll
      for (int mt = 0; mt < L.mt; ++mt) {
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          float mx = neg_inf();
#pragma unroll
          for (int nt = 0; nt < L.nt_s; ++nt) {
#pragma unroll
            for (int j = 0; j < 2; ++j) {
              const float v = col_ok[nt][j] ? sacc[mt][nt][half * 2 + j] * p.scale_log2 : neg_inf();
              sacc[mt][nt][half * 2 + j] = v;
              mx = fmaxf(mx, v);
            }
          }
          mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
          mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
          tile_max[mt][half] = mx;
          if constexpr (L.wn > 1) {
            if ((lane & 3) == 0) red_max[wn * BH + wm * L.rm + mt * 16 + half * 8 + (lane >> 2)] = mx;
          }
        }
      }
      if constexpr (L.wn > 1) {
        __syncthreads();
#pragma unroll
        for (int mt = 0; mt < L.mt; ++mt)
#pragma unroll
          for (int half = 0; half < 2; ++half) {
            float mx = neg_inf();
#pragma unroll
            for (int w = 0; w < L.wn; ++w)
              mx = fmaxf(mx, red_max[w * BH + wm * L.rm + mt * 16 + half * 8 + (lane >> 2)]);
            tile_max[mt][half] = mx;
          }
      }

      // ---- online softmax update; P (bf16) to shared memory for the P V product
#pragma unroll
      for (int mt = 0; mt < L.mt; ++mt) {
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          const float m_new = fmaxf(m_run[mt][half], tile_max[mt][half]);
          const float m_use = m_new == neg_inf() ? 0.f : m_new;  // all masked so far: no NaN
          const float alpha = fast_exp2(m_run[mt][half] - m_use);
          m_run[mt][half] = m_new;
          float sum = 0.f;
          const int prow = wm * L.rm + mt * 16 + half * 8 + (lane >> 2);
#pragma unroll
          for (int nt = 0; nt < L.nt_s; ++nt) {
            const float p0 = fast_exp2(sacc[mt][nt][half * 2] - m_use);
            const float p1 = fast_exp2(sacc[mt][nt][half * 2 + 1] - m_use);
            sum += p0 + p1;
            *reinterpret_cast<unsigned*>(p_s + prow * L.p_stride + wn * L.cn + nt * 8 + 2 * (lane & 3)) =
                pack_bf16x2(p0, p1);
          }
          l_run[mt][half] = l_run[mt][half] * alpha + sum;
#pragma unroll
          for (int nt = 0; nt < L.nt_o; ++nt) {
            o[mt][nt][half * 2] *= alpha;
            o[mt][nt][half * 2 + 1] *= alpha;
          }
        }
      }
      __syncthreads();  // P complete

      // ---- O += P V (this warp: rows wm*rm.., dims wn*on..)
#pragma unroll 2
      for (int kk = 0; kk < BT / 16; ++kk) {
        unsigned a[L.mt][4];
#pragma unroll
        for (int mt = 0; mt < L.mt; ++mt)
          ldmatrix_x4(a[mt],
                      p_s + (wm * L.rm + mt * 16 + (lane & 15)) * L.p_stride + kk * 16 + (lane >> 4) * 8);
#pragma unroll
        for (int np = 0; np < L.nt_o / 2; ++np) {
          unsigned bb[4];
          ldmatrix_x4_trans(bb, k_s + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * L.qk_stride +
                                    wn * L.on + np * 16 + (lane >> 4) * 8);
#pragma unroll
          for (int mt = 0; mt < L.mt; ++mt) {
            mma_bf16_16816(o[mt][2 * np], a[mt], bb[0], bb[1]);
            mma_bf16_16816(o[mt][2 * np + 1], a[mt], bb[2], bb[3]);
          }
        }
      }
    }
    cp_async_wait<0>();  // no copy may land after the block exits
    if constexpr (G == 1) {
      // Every bulk copy issued was waited on in the loop. The mbarriers share memory with
      // red_sum: all waits done, then invalidate, then the row sums may reuse it.
      __syncthreads();
      if (tid < STAGES) mbarrier_inval(bar_s + tid * 8);
      __syncthreads();
    }

    // ---- row sums: quad, then across the wn warps
    float l_tot[L.mt][2];
#pragma unroll
    for (int mt = 0; mt < L.mt; ++mt)
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        float l = l_run[mt][half];
        l += __shfl_xor_sync(0xffffffffu, l, 1);
        l += __shfl_xor_sync(0xffffffffu, l, 2);
        l_tot[mt][half] = l;
        if constexpr (L.wn > 1) {
          if ((lane & 3) == 0) red_sum[wn * BH + wm * L.rm + mt * 16 + half * 8 + (lane >> 2)] = l;
        }
      }
    if constexpr (L.wn > 1) {
      __syncthreads();
#pragma unroll
      for (int mt = 0; mt < L.mt; ++mt)
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          float l = 0.f;
#pragma unroll
          for (int w = 0; w < L.wn; ++w) l += red_sum[w * BH + wm * L.rm + mt * 16 + half * 8 + (lane >> 2)];
          l_tot[mt][half] = l;
        }
    }

    // ---- epilogue
#pragma unroll
    for (int mt = 0; mt < L.mt; ++mt) {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int r = wm * L.rm + mt * 16 + half * 8 + (lane >> 2);
        const int h = h0 + r;
        if (h >= p.h_q) continue;
        const float m = m_run[mt][half], l = l_tot[mt][half];
        const bool empty = !(l > 0.f);
        const float lse2 = row_lse2(m, l, empty);
        if (p.num_splits > 1) {
          const long long prow = (static_cast<long long>(split) * p.batch * p.s_q + row) * p.h_q + h;
          const float inv = empty ? 0.f : 1.f / l;
          float* dst = p.partial_out + prow * L.dv + wn * L.on + 2 * (lane & 3);
#pragma unroll
          for (int nt = 0; nt < L.nt_o; ++nt)
            *reinterpret_cast<float2*>(dst + nt * 8) =
                make_float2(o[mt][nt][half * 2] * inv, o[mt][nt][half * 2 + 1] * inv);
          if (wn == 0 && (lane & 3) == 0) {
            store_partial_stats(p, prow, m, lse2, empty);
          }
          continue;
        }
        const float inv = output_scale(p, h, l, m, empty);
        unsigned short* dst =
            p.out + b * p.out_stride_b + s * p.out_stride_s + h * p.out_stride_h + wn * L.on + 2 * (lane & 3);
#pragma unroll
        for (int nt = 0; nt < L.nt_o; ++nt)
          *reinterpret_cast<unsigned*>(dst + nt * 8) =
              pack_bf16x2(o[mt][nt][half * 2] * inv, o[mt][nt][half * 2 + 1] * inv);
        if (wn == 0 && (lane & 3) == 0) {
          store_row_stats(p, b, s, h, m, lse2, empty);
        }
      }
    }
  }
};

template <int D, int BH, int BT, int WARPS, int STAGES, int G = 0>
__device__ __forceinline__ void sparse_mla_fwd_sm90(const NsaSparseMlaParams& p) {
  using K = SparseMlaSm90<D, BH, BT, WARPS, STAGES, G>;
  extern __shared__ __align__(128) unsigned char smem[];
  K k{p};
  k.q_s = reinterpret_cast<unsigned short*>(smem + K::L.q_off);
  k.kv_s = reinterpret_cast<unsigned short*>(smem + K::L.kv_off);
  k.p_s = reinterpret_cast<unsigned short*>(smem + K::L.p_off);
  k.idx_s = reinterpret_cast<int*>(smem + K::L.idx_off);
  k.red_max = reinterpret_cast<float*>(smem + K::L.red_off);
  k.red_sum = k.red_max + K::L.wn * BH;
  k.rs_s = reinterpret_cast<float*>(smem + K::L.rs_off);
  k.bar_s = smem_addr(smem + K::L.bar_off);
  k.run();
}

// Merges the num_splits partial results of one (row, head): grid (rows, h_q), 128 threads,
// 4 output dims each. lse = log2 sum 2^lse_i; out = sum 2^(lse_i - lse) * out_i.
__device__ __forceinline__ void sparse_mla_combine(const NsaSparseMlaParams& p) {
  const long long row = blockIdx.x;
  const int h = blockIdx.y;
  const int b = static_cast<int>(row / p.s_q), s = static_cast<int>(row - (row / p.s_q) * p.s_q);
  const long long split_stride = static_cast<long long>(p.batch) * p.s_q * p.h_q;  // (row, head)s a split
  const long long prow0 = row * p.h_q + h;
  const int d0 = threadIdx.x * 4;
  // One pass over the splits with kBatch of them loaded at once: each load is an L2 round trip,
  // and three dependent passes (max, sum, weighted sum) cost about 5 us at 8 splits (H100). The
  // running lse maximum rescales what was added before it (an online softmax over the splits).
  constexpr int kBatch = 8;
  float m = neg_inf(), lmax = neg_inf(), sum = 0.f;
  float acc[4] = {0.f, 0.f, 0.f, 0.f};
  for (int i0 = 0; i0 < p.num_splits; i0 += kBatch) {
    float2 st[kBatch];
    float4 v[kBatch];
#pragma unroll
    for (int k = 0; k < kBatch; ++k) {
      const long long prow = prow0 + (i0 + k < p.num_splits ? i0 + k : i0) * split_stride;
      st[k] = *reinterpret_cast<const float2*>(p.partial_stats + prow * 2);
      v[k] = *reinterpret_cast<const float4*>(p.partial_out + prow * 512 + d0);
    }
#pragma unroll
    for (int k = 0; k < kBatch; ++k) {
      if (i0 + k >= p.num_splits) break;
      m = fmaxf(m, st[k].x);
      const float l = st[k].y;  // the split's lse (base 2); -inf when it saw no valid index
      if (!(l > neg_inf())) continue;
      if (l > lmax) {
        const float f = fast_exp2(lmax - l);  // 0 for the first non-empty split
        sum *= f;
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[e] *= f;
        lmax = l;
      }
      const float w = fast_exp2(l - lmax);
      sum += w;
      acc[0] += w * v[k].x;
      acc[1] += w * v[k].y;
      acc[2] += w * v[k].z;
      acc[3] += w * v[k].w;
    }
  }
  const bool empty = lmax == neg_inf();
  const float lse2 = row_lse2(lmax, sum, empty);
  float sink_factor = 1.f;
  if (p.attn_sink != nullptr && !empty)
    sink_factor = 1.f / (1.f + fast_exp2(p.attn_sink[h] * kSparseMlaLog2e - lse2));
  const float scale = empty ? 0.f : sink_factor / sum;
  unsigned short* dst = p.out + b * p.out_stride_b + s * p.out_stride_s + h * p.out_stride_h + d0;
  *reinterpret_cast<uint2*>(dst) =
      make_uint2(pack_bf16x2(acc[0] * scale, acc[1] * scale), pack_bf16x2(acc[2] * scale, acc[3] * scale));
  if (threadIdx.x == 0) store_row_stats(p, b, s, h, m, lse2, empty);  // m is -inf when empty
}

}  // namespace nsajit
