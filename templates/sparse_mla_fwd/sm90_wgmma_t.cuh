// sparse_mla_fwd for Hopper (sm_90a) at small head counts (h_q <= 32): the TRANSPOSED product
// on the warpgroup tensor cores, warp-specialised. Same contract and outputs as sm90.cuh; the
// topk split writes the same partials, merged by sparse_mla_combine from sm90.cuh.
//
// wgmma's M is 64. With 16 or 32 heads as M (the other wgmma kernels) 3/4 or 1/2 of the tensor
// work would be padding, so the 64 tokens of a kv tile are M instead:
//   S^T [64 tokens x BH] = K_tile [64 x d] * Q^T           (m64nBHk16, d/16 k-steps)
//   O^T [512 x BH]      += V^T [512 x 64] * P^T [64 x BH]  (8 m-blocks x 4 k-steps of m64nBHk16)
// A is the kv tile in shared memory in both products, in the 128-byte-swizzle K-major layout the
// producer writes (sm90_wgmma_ws.cuh): K-major for S^T, read transposed (imm-trans-a 1, the
// MN-major descriptor sm90_wgmma_ws.cuh uses for V as B) for O^T. B is Q [BH x d] (K-major) for
// S^T and P [BH x 64 tokens] (one swizzle panel, K-major) for O^T.
//
// One CTA = one query row x BH heads (the last head block masked past h_q), WARPS * 32 threads
// (STAGES 1: w8 only, sized so that two CTAs share an SM and hide each other's gather):
// - the last warpgroup is the producer: tile t goes to kv stage t % STAGES, each stage in two
//   halves (L = panels 0-3 = V columns 0-255; R = panels 4.. = V columns 256-511 + rope), each a
//   16-byte cp.async per thread and row chunk signalled on its "ready" mbarrier with
//   cp.async.mbarrier.arrive.noinc; invalid indices (< 0, >= s_kv, past topk_length) are
//   zero-filled rows whose flag masks them to -inf;
// - math warpgroup g (of WARPS / 4 - 1) takes tiles g, g + NC, ...: S^T over the L panels as
//   soon as L lands, then R; the softmax is per head = per COLUMN of S^T: a thread holds 2 token
//   rows x BH / 4 columns; the column max is reduced over the lanes (xor 4, 8, 16) and the 4 warps
//   (shared memory + a named barrier of the warpgroup); P^T goes to shared memory with
//   stmatrix .trans (the transposed 8x8 fragments are exactly the K-major P rows); O^T columns
//   are the same heads as S^T columns, so the per-head rescale needs no data movement; the
//   running sums stay per thread and are reduced once at the end;
// - O^T over m-blocks 0-3 frees the L half, 4-7 the R half of the stage (the producer refills L
//   first);
// - with two math warpgroups each keeps its own O^T, max and sum; they merge once at the end
//   (the second hands its O^T over in the kv region, free by then).
// - PR 1 (panel ring): the kv region is a ring of 8 KB panel slots (L.slots = STAGES x panels +
//   L.ring_extra), each with its own ready and free mbarrier; panel j of tile t lives in slot
//   (t panels + j) % slots. The rope panel is freed right after S^T, V panel mb right after the
//   O^T m-block pair that reads it, so the producer refills as the consumer drains and runs
//   ring_extra panels (plus the freed ones) ahead instead of waiting for a whole half. Same
//   math, same addresses per panel, only the slot / barrier / flag-buffer arithmetic differs.
// The running max starts at -1e30 (not -inf), so exp2 of a fully masked tile is 0, never NaN.
#pragma once

#include "common/nv_ptx.cuh"
#include "common/nv_wgmma.cuh"
#include "sparse_mla_fwd/params.h"
#include "sparse_mla_fwd/row_range.cuh"
#include "sparse_mla_fwd/row_stats.cuh"
#include "sparse_mla_fwd/wgmma_layout.h"

namespace nsajit {

template <int D, int BH, int BT, int WARPS, int STAGES, int SX = 1, int PR = 0>
struct SparseMlaSm90WgmmaT {
  static constexpr NsaSparseMlaWgmmaTLayout L =
      nsa_sparse_mla_wgmma_t_layout(D, BH, BT, WARPS, STAGES, SX, PR);
  static_assert(BH == 16 || BH == 32, "the head block is the wgmma N: 16 or 32");
  static_assert(BT == 64, "the kv tile is the wgmma M: 64 tokens");
  static_assert(WARPS == 8 || WARPS == 12, "one or two math warpgroups and one producer warpgroup");
  static_assert(STAGES >= 1 && STAGES <= 4, "1-4 kv stages (1: two CTAs per SM overlap each other)");
  static_assert(STAGES >= 2 || WARPS == 8, "two math warpgroups on one kv stage would take turns");
  static_assert(D % 64 == 0 && L.dv == 512 && D >= L.dv, "d is 512 or 512 + whole 64-column panels");
  static_assert(SX == 1 || SX == 2, "softmax schedule: 1 exchange every tile, 2 lazy (voted) max");
  static_assert(PR == 0 || PR == 1, "kv staging: 0 stages in halves, 1 ring of panel slots");
  static constexpr int NC = WARPS / 4 - 1;  // math warpgroups
  static constexpr int kPanels = D / 64;
  static constexpr int kHalfPanels = 4;  // L half: panels [0, 4); R half: [4, kPanels)
  static constexpr int kMB = L.dv / 64;  // O^T m-blocks
  static constexpr int kSRegs = BH / 2;  // fp32 per thread of one m64 x BH accumulator
  static constexpr int kNJ = BH / 8;     // 8-column blocks of an accumulator
  static constexpr int kPStride = (L.p_bytes + 1023) / 1024 * 1024;
  static constexpr int kSlots = L.slots;
  static_assert(PR == 0 || (kSlots >= STAGES * kPanels && kSlots < (STAGES + 1) * kPanels),
                "the ring holds STAGES tiles and fewer than one more (a panel wraps at most once a tile)");
  static_assert(PR == 0 || L.flag_bufs * kPanels >= kSlots,
                "a flag buffer per tile the producer can lead by");
  // O^T commit groups: the halves (PR 0: each frees one half of the stage), or m-block pairs
  // (PR 1: each frees its two V panels).
  static constexpr int kOGroups = PR ? kMB / 2 : 2;
  static constexpr int kMBPerGroup = kMB / kOGroups;
  static constexpr float kInitMax = -1e30f;
  // SX 2: P = exp2(s - m_ref) with a stale per-head reference m_ref; the warpgroup re-agrees on
  // m_ref only when some score exceeds it by more than this (log2 units), so P <= 2^8: bf16 keeps
  // its relative precision and the fp32 sums have ample range.
  static constexpr float kLazyMargin = 8.f;
  // Named barriers (0 is __syncthreads): per math warpgroup (128 threads) the column-max exchange
  // and the P^T hand-over; all math threads at the end; the O^T merge of two warpgroups. The ids
  // are compile-time constants, so ptxas reserves only these (not all 16: two CTAs per SM).
  static constexpr int kBarRed = 1, kBarP = 3, kBarEnd = 5, kBarMerge = 6;
  template <int ID>
  static __device__ __forceinline__ void wg_barrier(int wgi) {
    if (NC == 1 || wgi == 0) {
      named_barrier_sync(ID, 128);
    } else {
      named_barrier_sync(ID + 1, 128);
    }
  }
  // The same barrier with an OR over the 128 threads' predicates (bar.red.or.pred): the vote costs
  // nothing over the plain barrier it replaces.
  template <int ID>
  static __device__ __forceinline__ bool barrier_or(bool pred) {
    int any;
    asm volatile(
        "{\n\t.reg .pred pin, pout;\n\tsetp.ne.s32 pin, %1, 0;\n\t"
        "bar.red.or.pred pout, %2, 128, pin;\n\tselp.s32 %0, 1, 0, pout;\n\t}\n"
        : "=r"(any)
        : "r"(pred ? 1 : 0), "n"(ID)
        : "memory");
    return any != 0;
  }
  template <int ID>
  static __device__ __forceinline__ bool wg_barrier_or(int wgi, bool pred) {
    if (NC == 1 || wgi == 0) return barrier_or<ID>(pred);
    return barrier_or<ID + 1>(pred);
  }
  static_assert(L.merge_bytes <= kSlots * L.panel_bytes, "the merged O^T fits in the kv region");

  const NsaSparseMlaParams& p;
  unsigned char* base;  // 1024-byte aligned
  unsigned base_addr;   // its shared-state-space address
  int t_begin, t_end, n_tiles;
  long long row;  // b * s_q + s
  int h0;         // first head of this block

  // Where tile t's panels live. PR 0: stage st = t % STAGES, panel j in slot st panels + j, the
  // barriers of half h = (j >= 4) at unit 2 st + h. PR 1: slot (t panels + j) % slots, the
  // barriers of that slot; a tile wraps the ring at most once (slots >= panels).
  struct TileSlots {
    int first;    // slot of panel 0
    int st;       // PR 0: the stage
    unsigned ph;  // parity of the barriers' phase for panel 0 (PR 1: panels past the wrap flip it)
    __device__ __forceinline__ int slot(int j) const {
      if constexpr (PR) return first + j - (first + j >= kSlots ? kSlots : 0);
      return first + j;
    }
    __device__ __forceinline__ unsigned phase(int j) const {
      if constexpr (PR) return ph ^ (first + j >= kSlots ? 1u : 0u);
      return ph;
    }
    __device__ __forceinline__ int unit(int j) const {  // barrier pair index
      if constexpr (PR) return slot(j);
      return 2 * st + (j >= kHalfPanels ? 1 : 0);
    }
  };
  static __device__ __forceinline__ TileSlots tile_slots(int t) {
    TileSlots ts{};
    if constexpr (PR) {
      const int g = t * kPanels;
      ts.first = g % kSlots;
      ts.ph = static_cast<unsigned>(g / kSlots) & 1u;
    } else {
      ts.st = t % STAGES;
      ts.first = ts.st * kPanels;
      ts.ph = static_cast<unsigned>(t / STAGES) & 1u;
    }
    return ts;
  }
  // mbarriers: ready[u] at u, free[u] at L.barriers / 2 + u, u a unit (PR 0: 2 st + h, h 0 = L,
  // 1 = R; PR 1: a slot).
  __device__ __forceinline__ unsigned ready_bar(int u) const { return base_addr + L.bar_off + 8 * u; }
  __device__ __forceinline__ unsigned free_bar(int u) const {
    return base_addr + L.bar_off + 8 * (L.barriers / 2 + u);
  }
  __device__ __forceinline__ unsigned slot_addr(int slot) const {
    return base_addr + L.kv_off + slot * L.panel_bytes;
  }
  static __device__ __forceinline__ int tile_offset(int rows, int r, int k) {
    return (k >> 3) * rows * 128 + nsa_sw128_offset(r, k & 7);
  }
  // B of S^T: Q [BH x 16] of k-step kk, K-major.
  __device__ __forceinline__ unsigned long long q_desc(int kk) const {
    return nsa_wgmma_desc_sw128(base_addr + L.q_off + (kk >> 2) * BH * 128 + (kk & 3) * 32, 16, 1024);
  }
  // A of S^T: the kv tile [64 tokens x 16] of k-step kk (panel kk / 4), K-major.
  __device__ __forceinline__ unsigned long long k_desc(const TileSlots& ts, int kk) const {
    return nsa_wgmma_desc_sw128(slot_addr(ts.slot(kk >> 2)) + (kk & 3) * 32, 16, 1024);
  }
  // A of O^T: V^T [64 dims of m-block mb (= panel mb) x 16 tokens of k-step kk], MN-major (read
  // transposed).
  __device__ __forceinline__ unsigned long long v_desc(const TileSlots& ts, int mb, int kk) const {
    return nsa_wgmma_desc_sw128(slot_addr(ts.slot(mb)) + kk * 16 * 128, BT * 128, 1024);
  }
  // B of O^T: P [BH heads x 16 tokens of k-step kk], K-major (one swizzle panel).
  __device__ __forceinline__ unsigned long long p_desc(int pbuf, int kk) const {
    return nsa_wgmma_desc_sw128(base_addr + L.p_off + pbuf * kPStride + kk * 32, 16, 1024);
  }

  // ---------------------------------------------------------------- producer warpgroup
  __device__ __forceinline__ void produce(int ptid, int b, int s, const int* idx_g) {
    const int group = ptid >> 3, ch = ptid & 7;  // rows group + 16 k, 16-byte chunk ch of a panel
    int* valid_s = reinterpret_cast<int*>(base + L.valid_off);
    auto index_of = [&](int tile, int r) {
      return nsa_kv_index<BT>(p, idx_g, t_begin, t_end, n_tiles, tile, r);
    };
    // Q, zero rows past h_q; covered by every ready barrier (noinc tracks all earlier copies).
    const unsigned short* q_g = p.q + b * p.q_stride_b + s * p.q_stride_s;
    for (int c = ptid; c < BH * L.chunks; c += 128) {
      const int r = c / L.chunks, k = c - r * L.chunks;
      const bool ok = h0 + r < p.h_q;
      cp_async_16(base + L.q_off + tile_offset(BH, r, k), ok ? q_g + (h0 + r) * p.q_stride_h + k * 8 : p.q,
                  ok ? 16 : 0);
    }
    int idx[4];
#pragma unroll
    for (int k = 0; k < 4; ++k) idx[k] = index_of(0, group + 16 * k);

    // PR 1: the ring position of the next panel, advanced one slot per panel. A slot's free barrier
    // is waited on with the parity before its use's: on a fresh barrier (first use) that passes.
    int ring_slot = 0;
    unsigned ring_ph = 0;
    for (int t = 0; t < n_tiles; ++t) {
      int next[4];  // the next tile's indices, loaded before this tile's waits
#pragma unroll
      for (int k = 0; k < 4; ++k) next[k] = index_of(t + 1, group + 16 * k);
      const int st = t % STAGES, use = t / STAGES;  // PR 0
      // A unit of panels [pb, pe) behind one ready / free barrier pair: the halves of stage st
      // (PR 0) or single panels, each in the next ring slot (PR 1).
      // PR 1 keeps the panel loop rolled: unrolled, its nine slot addresses and the source
      // pointers outgrow the producer's 56 registers (st1).
      constexpr int kUnits = PR ? kPanels : 2;
#pragma unroll(PR ? 1 : 2)
      for (int u = 0; u < kUnits; ++u) {
        const int pb = PR ? u : (u == 0 ? 0 : kHalfPanels),
                  pe = PR ? u + 1 : (u == 0 ? kHalfPanels : kPanels);
        const int bar = PR ? ring_slot : 2 * st + u;
        unsigned char* dst = base + L.kv_off + (PR ? ring_slot - pb : st * kPanels) * L.panel_bytes;
        if constexpr (PR) {
          mbarrier_wait_parity(free_bar(bar), ring_ph ^ 1u);
        } else {
          if (use > 0) mbarrier_wait_parity(free_bar(bar), (use - 1) & 1);
        }
#pragma unroll
        for (int k = 0; k < 4; ++k) {
          const int r = group + 16 * k, kv_row = idx[k];
          const int bytes = kv_row >= 0 ? 16 : 0;
          const unsigned short* src = nsa_kv_gather_src(p, kv_row, ch * 8);
#pragma unroll
          for (int pn = pb; pn < pe; ++pn)
            cp_async_16(dst + pn * L.panel_bytes + nsa_sw128_offset(r, ch), src + pn * 64, bytes);
          // The flags travel with panel 0; the warpgroup reads them (after all panels landed)
          // before it frees any panel of the tile.
          if (u == 0 && ch == 0) valid_s[(t % L.flag_bufs) * BT + r] = kv_row >= 0 ? 1 : 0;
        }
        cp_async_mbarrier_arrive_noinc(ready_bar(bar));
        mbarrier_arrive(ready_bar(bar));  // release: the flags above
        if constexpr (PR) {
          if (++ring_slot == kSlots) {
            ring_slot = 0;
            ring_ph ^= 1u;
          }
        }
      }
#pragma unroll
      for (int k = 0; k < 4; ++k) idx[k] = next[k];
    }
    cp_async_wait<0>();  // no copy may land after this thread exits
  }

  // ---------------------------------------------------------------- math warpgroups
  __device__ __forceinline__ void issue_s(float (&sacc)[kSRegs], const TileSlots& ts, int kk_begin,
                                          int kk_end) const {
    wgmma_fence();
#pragma unroll
    for (int kk = kk_begin; kk < kk_end; ++kk)
      wgmma_m64nNk16_ss<BH, 0>(sacc, k_desc(ts, kk), q_desc(kk), kk == 0 ? 0 : 1);
  }
  __device__ __forceinline__ void issue_pv(float (&o)[kMB][kSRegs], int pbuf, const TileSlots& ts,
                                           int mb_begin, int mb_end) const {
#pragma unroll
    for (int mb = mb_begin; mb < mb_end; ++mb)
#pragma unroll
      for (int kk = 0; kk < 4; ++kk) wgmma_m64nNk16_ss<BH, 1>(o[mb], v_desc(ts, mb, kk), p_desc(pbuf, kk), 1);
  }
  // wgmma.wait_group with a count known after unrolling.
  static __device__ __forceinline__ void wgmma_wait_n(int n) {
    switch (n) {
      case 0:
        wgmma_wait<0>();
        break;
      case 1:
        wgmma_wait<1>();
        break;
      case 2:
        wgmma_wait<2>();
        break;
      default:
        wgmma_wait<3>();
        break;
    }
  }
  // P^T -> shared memory as P [BH heads x 64 tokens]: matrix i of an x4 is column block
  // 2 q + i / 2 (heads) x token half i % 2 (tokens 16 w + 8 (i % 2) ..), stored transposed.
  static __device__ __forceinline__ void store_p(unsigned p_base, int w, int sm_i, int sm_j,
                                                 const float (&pv)[kSRegs]) {
#pragma unroll
    for (int q = 0; q < kNJ / 2; ++q) {
      const int head = 8 * (2 * q + (sm_i >> 1)) + sm_j;
      const int chunk = 2 * w + (sm_i & 1);
      stmatrix_x4_trans(p_base + nsa_sw128_offset(head, chunk), pack_bf16x2(pv[8 * q + 0], pv[8 * q + 1]),
                        pack_bf16x2(pv[8 * q + 2], pv[8 * q + 3]), pack_bf16x2(pv[8 * q + 4], pv[8 * q + 5]),
                        pack_bf16x2(pv[8 * q + 6], pv[8 * q + 7]));
    }
  }

  __device__ __forceinline__ void run() {
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wg = warp >> 2;
    row = blockIdx.x;
    h0 = blockIdx.y * BH;
    const int split = blockIdx.z;
    const NsaRowRange range = nsa_row_range<BT>(p, row, split);
    t_begin = range.t_begin;
    t_end = range.t_end;
    n_tiles = range.n_tiles;
    const int b = range.b, s = range.s;

    if (tid == 0) {
#pragma unroll
      for (int i = 0; i < L.barriers / 2; ++i)
        mbarrier_init(base_addr + L.bar_off + 8 * i, 256);  // ready: 128 noinc + 128
#pragma unroll
      for (int i = L.barriers / 2; i < L.barriers; ++i)
        mbarrier_init(base_addr + L.bar_off + 8 * i, 128);  // free: the math warpgroup of the tile
    }
    __syncthreads();

    // Each role is one branch of a single if/else, so that setmaxnreg takes effect.
    // Register budgets: w12 (384 threads at 168) 72 / 216 as sm90_wgmma_ws.cuh; st1 (two CTAs of
    // 256 threads at 128) 56 / 200; w8 st >= 2 (256 threads, up to 255) needs none.
    if (wg == NC) {
      if constexpr (WARPS == 12) setmaxnreg_dec<72>();
      if constexpr (WARPS == 8 && STAGES == 1) setmaxnreg_dec<56>();
      produce(tid - 128 * NC, b, s, p.indices + b * p.idx_stride_b + s * p.idx_stride_s);
    } else {
      if constexpr (WARPS == 12) setmaxnreg_inc<216>();
      if constexpr (WARPS == 8 && STAGES == 1) setmaxnreg_inc<200>();
      consume(wg, warp & 3, lane, b, s, split);
    }
  }

  __device__ __forceinline__ void consume(int wgi, int w, int lane, int b, int s, int split) {
    const int tr0 = 16 * w + (lane >> 2);  // accumulator rows tr0, tr0 + 8 (tokens of S^T, dims of O^T)
    const int c0 = 2 * (lane & 3);         // columns (heads) 8 jj + c0 + e
    float o[kMB][kSRegs];
#pragma unroll
    for (int mb = 0; mb < kMB; ++mb)
#pragma unroll
      for (int i = 0; i < kSRegs; ++i) o[mb][i] = 0.f;
    // m_run: the per-head reference of P and l_run (the running max with SX 1, a stale one with
    // SX 2); m_true (SX 2): this thread's running max of the scores, for max_logits.
    float m_run[kNJ][2], l_run[kNJ][2], m_true[kNJ][2];
#pragma unroll
    for (int jj = 0; jj < kNJ; ++jj)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        m_run[jj][e] = kInitMax;
        l_run[jj][e] = 0.f;
        m_true[jj][e] = neg_inf();
      }
    float* red = reinterpret_cast<float*>(base + L.red_off);  // [2][NC][4][BH]
    const int* valid_s = reinterpret_cast<const int*>(base + L.valid_off);
    // stmatrix: lane 8 i + j addresses row j (a head) of matrix i = (column block, token half).
    const int sm_i = lane >> 3, sm_j = lane & 7;

    for (int n = 0;; ++n) {
      const int t = wgi + NC * n;
      if (t >= n_tiles) break;
      const TileSlots ts = tile_slots(t);
      float sacc[kSRegs];
      // S^T over panels [0, 4) as soon as they landed, then the rest (PR 0: one barrier per half;
      // PR 1: one per panel).
#pragma unroll
      for (int j = 0; j < kHalfPanels; ++j)
        if (PR || j == 0) mbarrier_wait_parity(ready_bar(ts.unit(j)), ts.phase(j));
      fence_proxy_async_smem();  // the landed copies -> the tensor cores
      issue_s(sacc, ts, 0, 4 * kHalfPanels);
#pragma unroll
      for (int j = kHalfPanels; j < kPanels; ++j)
        if (PR || j == kHalfPanels) mbarrier_wait_parity(ready_bar(ts.unit(j)), ts.phase(j));
      fence_proxy_async_smem();
      issue_s(sacc, ts, 4 * kHalfPanels, 4 * kPanels);
      wgmma_commit();
      wgmma_wait<0>();
      wgmma_fence_operands(sacc);

      // ---- scale, mask
      const int fb = (t % L.flag_bufs) * BT;
      const bool ok0 = valid_s[fb + tr0] != 0, ok1 = valid_s[fb + tr0 + 8] != 0;
      if constexpr (PR) {
        // The rope panels are read by S^T only: free them now (after the flags were read).
#pragma unroll
        for (int j = kMB; j < kPanels; ++j) mbarrier_arrive(free_bar(ts.unit(j)));
      }
#pragma unroll
      for (int jj = 0; jj < kNJ; ++jj)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          float& v0 = sacc[4 * jj + e];
          float& v1 = sacc[4 * jj + 2 + e];
          v0 = ok0 ? v0 * p.scale_log2 : neg_inf();
          v1 = ok1 ? v1 * p.scale_log2 : neg_inf();
        }
      // P of this tile: its own buffer with SX 2 (the previous tile's P may still be read by a
      // slower warp's O^T; SX 1 has the column-max barrier in between).
      const unsigned p_base = base_addr + L.p_off + (SX == 2 ? 2 * wgi + (n & 1) : wgi) * kPStride;
      bool exchange = true;
      if constexpr (SX == 2) {
        // ---- lazy max: P against the reference, stored speculatively; the P barrier votes whether
        // any score exceeds the reference by more than kLazyMargin. Usually none does: no column
        // max exchange, no O^T rescale, one barrier per tile.
        bool grow = false;
        float pv[kSRegs], psum[kNJ][2];
#pragma unroll
        for (int jj = 0; jj < kNJ; ++jj)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const float v0 = sacc[4 * jj + e], v1 = sacc[4 * jj + 2 + e];
            const float m = fmaxf(v0, v1);
            m_true[jj][e] = fmaxf(m_true[jj][e], m);
            grow = grow || m > m_run[jj][e] + kLazyMargin;
            pv[4 * jj + e] = fast_exp2(v0 - m_run[jj][e]);
            pv[4 * jj + 2 + e] = fast_exp2(v1 - m_run[jj][e]);
            psum[jj][e] = pv[4 * jj + e] + pv[4 * jj + 2 + e];
          }
        store_p(p_base, w, sm_i, sm_j, pv);
        fence_proxy_async_smem();  // the P stores -> the tensor cores
        exchange = wg_barrier_or<kBarP>(wgi, grow);
        if (!exchange) {
#pragma unroll
          for (int jj = 0; jj < kNJ; ++jj)
#pragma unroll
            for (int e = 0; e < 2; ++e) l_run[jj][e] += psum[jj][e];
        }
      }
      // ---- the exchange (SX 1: every tile; SX 2: when the vote says so, all warps together)
      if (exchange) {
        float mx[kNJ][2];
#pragma unroll
        for (int jj = 0; jj < kNJ; ++jj)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const float v0 = sacc[4 * jj + e], v1 = sacc[4 * jj + 2 + e];
            float m = fmaxf(v0, v1);
            m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 4));
            m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 8));
            mx[jj][e] = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 16));
          }
        float* rb = red + ((n & 1) * NC + wgi) * 4 * BH;
        if (lane < 4) {
#pragma unroll
          for (int jj = 0; jj < kNJ; ++jj)
            *reinterpret_cast<float2*>(rb + w * BH + 8 * jj + c0) = make_float2(mx[jj][0], mx[jj][1]);
        }
        wg_barrier<kBarRed>(wgi);
        float f[kNJ][2], m_new[kNJ][2];
#pragma unroll
        for (int jj = 0; jj < kNJ; ++jj) {
          float2 a = *reinterpret_cast<const float2*>(rb + 8 * jj + c0);
#pragma unroll
          for (int ww = 1; ww < 4; ++ww) {
            const float2 v = *reinterpret_cast<const float2*>(rb + ww * BH + 8 * jj + c0);
            a.x = fmaxf(a.x, v.x);
            a.y = fmaxf(a.y, v.y);
          }
          m_new[jj][0] = fmaxf(m_run[jj][0], a.x);
          m_new[jj][1] = fmaxf(m_run[jj][1], a.y);
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            f[jj][e] = fast_exp2(m_run[jj][e] - m_new[jj][e]);
            m_run[jj][e] = m_new[jj][e];
          }
        }
        // ---- P = exp2(S - m), running sums (per thread), O^T rescale (same columns)
#pragma unroll
        for (int jj = 0; jj < kNJ; ++jj)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            float& v0 = sacc[4 * jj + e];
            float& v1 = sacc[4 * jj + 2 + e];
            v0 = fast_exp2(v0 - m_new[jj][e]);
            v1 = fast_exp2(v1 - m_new[jj][e]);
            l_run[jj][e] = l_run[jj][e] * f[jj][e] + (v0 + v1);
          }
#pragma unroll
        for (int mb = 0; mb < kMB; ++mb)
#pragma unroll
          for (int jj = 0; jj < kNJ; ++jj)
#pragma unroll
            for (int i = 0; i < 4; ++i) o[mb][4 * jj + i] *= f[jj][i & 1];
        store_p(p_base, w, sm_i, sm_j, sacc);
        fence_proxy_async_smem();  // the P stores -> the tensor cores
        wg_barrier<kBarP>(wgi);
      }

      // ---- O^T += V^T P^T: m-blocks 0-3 read the L half, 4-7 the R half
      wgmma_fence();
      const int pbuf = SX == 2 ? 2 * wgi + (n & 1) : wgi;
#pragma unroll
      for (int gi = 0; gi < kOGroups; ++gi) {
        issue_pv(o, pbuf, ts, gi * kMBPerGroup, (gi + 1) * kMBPerGroup);
        wgmma_commit();
      }
      // Group gi done: PR 0 frees half gi (the R half with the rope panel), PR 1 its V panels.
#pragma unroll
      for (int gi = 0; gi < kOGroups; ++gi) {
        wgmma_wait_n(kOGroups - 1 - gi);
#pragma unroll
        for (int mb = gi * kMBPerGroup; mb < (gi + 1) * kMBPerGroup; ++mb) wgmma_fence_operands(o[mb]);
        if constexpr (PR) {
#pragma unroll
          for (int mb = gi * kMBPerGroup; mb < (gi + 1) * kMBPerGroup; ++mb)
            mbarrier_arrive(free_bar(ts.unit(mb)));
        } else {
          mbarrier_arrive(free_bar(ts.unit(gi * kHalfPanels)));
        }
      }
    }

    // ---- column sums over the lanes, then the warps (and the warpgroups) through shared memory
#pragma unroll
    for (int jj = 0; jj < kNJ; ++jj)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        float v = l_run[jj][e];
        v += __shfl_xor_sync(0xffffffffu, v, 4);
        v += __shfl_xor_sync(0xffffffffu, v, 8);
        l_run[jj][e] = v + __shfl_xor_sync(0xffffffffu, v, 16);
      }
    if constexpr (SX == 2) {
#pragma unroll
      for (int jj = 0; jj < kNJ; ++jj)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          float v = m_true[jj][e];
          v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 4));
          v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 8));
          m_true[jj][e] = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 16));
        }
    }
    float* fin_l = reinterpret_cast<float*>(base + L.fin_off);  // [NC][4][BH]
    float* fin_m = fin_l + NC * 4 * BH;                         // [NC][BH]
    float* fin_t = fin_m + NC * BH;                             // SX 2: [NC][4][BH] true maxima
    if (lane < 4) {
#pragma unroll
      for (int jj = 0; jj < kNJ; ++jj) {
        *reinterpret_cast<float2*>(fin_l + (wgi * 4 + w) * BH + 8 * jj + c0) =
            make_float2(l_run[jj][0], l_run[jj][1]);
        if (w == 0)
          *reinterpret_cast<float2*>(fin_m + wgi * BH + 8 * jj + c0) =
              make_float2(m_run[jj][0], m_run[jj][1]);
        if constexpr (SX == 2)
          *reinterpret_cast<float2*>(fin_t + (wgi * 4 + w) * BH + 8 * jj + c0) =
              make_float2(m_true[jj][0], m_true[jj][1]);
      }
    }
    // Every math warpgroup is past its last wgmma: the kv stages are free (all copies landed,
    // each tile was waited for).
    named_barrier_sync(kBarEnd, 128 * NC);
    float l_tot[kNJ][2];
    const int wtid = 32 * w + lane;
    if constexpr (NC == 2) {
      float* xo = reinterpret_cast<float*>(base + L.kv_off);  // [kMB][kSRegs][128]
      if (wgi == 1) {
#pragma unroll
        for (int mb = 0; mb < kMB; ++mb)
#pragma unroll
          for (int i = 0; i < kSRegs; ++i) xo[(mb * kSRegs + i) * 128 + wtid] = o[mb][i];
      }
      named_barrier_sync(kBarMerge, 256);
      if (wgi == 1) return;
      float a0[kNJ][2], a1[kNJ][2];
#pragma unroll
      for (int jj = 0; jj < kNJ; ++jj)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int col = 8 * jj + c0 + e;
          const float m0 = m_run[jj][e], m1 = fin_m[BH + col];
          const float m = fmaxf(m0, m1);
          a0[jj][e] = fast_exp2(m0 - m);
          a1[jj][e] = fast_exp2(m1 - m);
          float l0 = 0.f, l1 = 0.f;
#pragma unroll
          for (int ww = 0; ww < 4; ++ww) {
            l0 += fin_l[ww * BH + col];
            l1 += fin_l[(4 + ww) * BH + col];
          }
          l_tot[jj][e] = a0[jj][e] * l0 + a1[jj][e] * l1;
          m_run[jj][e] = m;
        }
#pragma unroll
      for (int mb = 0; mb < kMB; ++mb)
#pragma unroll
        for (int jj = 0; jj < kNJ; ++jj)
#pragma unroll
          for (int i = 0; i < 4; ++i)
            o[mb][4 * jj + i] = o[mb][4 * jj + i] * a0[jj][i & 1] +
                                xo[(mb * kSRegs + 4 * jj + i) * 128 + wtid] * a1[jj][i & 1];
    } else {
#pragma unroll
      for (int jj = 0; jj < kNJ; ++jj)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int col = 8 * jj + c0 + e;
          l_tot[jj][e] = fin_l[col] + fin_l[BH + col] + fin_l[2 * BH + col] + fin_l[3 * BH + col];
        }
    }

    // The max logit per head: the reference m_run with SX 1; with SX 2 the true maxima of all warps.
    if constexpr (SX == 2) {
#pragma unroll
      for (int jj = 0; jj < kNJ; ++jj)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int col = 8 * jj + c0 + e;
          float v = fin_t[col];
#pragma unroll
          for (int ww = 1; ww < 4 * NC; ++ww) v = fmaxf(v, fin_t[ww * BH + col]);
          m_true[jj][e] = v;
        }
    } else {
#pragma unroll
      for (int jj = 0; jj < kNJ; ++jj)
#pragma unroll
        for (int e = 0; e < 2; ++e) m_true[jj][e] = m_run[jj][e];
    }

    // ---- epilogue: thread holds O^T[64 mb + tr0 + 8 h][8 jj + c0 + e] = o[mb][4 jj + 2 h + e]
#pragma unroll
    for (int jj = 0; jj < kNJ; ++jj)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int head = h0 + 8 * jj + c0 + e;
        if (head >= p.h_q) continue;
        const float l = l_tot[jj][e];
        const bool empty = !(l > 0.f);
        const float m = m_run[jj][e], m_max = m_true[jj][e];
        const float lse2 = row_lse2(m, l, empty);
        if (p.num_splits > 1) {
          const long long prow = (static_cast<long long>(split) * p.batch * p.s_q + row) * p.h_q + head;
          const float inv = empty ? 0.f : 1.f / l;
          float* dst = p.partial_out + prow * L.dv + tr0;
#pragma unroll
          for (int mb = 0; mb < kMB; ++mb)
#pragma unroll
            for (int h = 0; h < 2; ++h) dst[64 * mb + 8 * h] = o[mb][4 * jj + 2 * h + e] * inv;
          if (w == 0 && lane < 4) {
            store_partial_stats(p, prow, m_max, lse2, empty);
          }
          continue;
        }
        const float inv = output_scale(p, head, l, m, empty);
        unsigned short* dst = p.out + b * p.out_stride_b + s * p.out_stride_s + head * p.out_stride_h + tr0;
#pragma unroll
        for (int mb = 0; mb < kMB; ++mb)
#pragma unroll
          for (int h = 0; h < 2; ++h)
            dst[64 * mb + 8 * h] =
                static_cast<unsigned short>(pack_bf16x2(o[mb][4 * jj + 2 * h + e] * inv, 0.f) & 0xffffu);
        if (w == 0 && lane < 4) {
          store_row_stats(p, b, s, head, m_max, lse2, empty);
        }
      }
  }
};

template <int D, int BH, int BT, int WARPS, int STAGES, int SX = 1, int PR = 0>
__device__ __forceinline__ void sparse_mla_fwd_sm90_wgmma_t(const NsaSparseMlaParams& p) {
  using K = SparseMlaSm90WgmmaT<D, BH, BT, WARPS, STAGES, SX, PR>;
  extern __shared__ __align__(1024) unsigned char smem_wgmma_t[];
  K k{p};
  const unsigned raw = smem_addr(smem_wgmma_t);
  const unsigned pad = (1024u - (raw & 1023u)) & 1023u;
  k.base = smem_wgmma_t + pad;
  k.base_addr = raw + pad;
  k.run();
}

}  // namespace nsajit
