// sparse_mla_fwd for Hopper (sm_90a), warp-specialised ping-pong on the warpgroup tensor cores.
// Same contract and outputs as sm90_wgmma.cuh (the two-warpgroup kernel it replaces for speed);
// the topk split writes the same partials, merged by sparse_mla_combine from sm90.cuh.
//
// One CTA = one query row (b, s) x 64 heads, 384 threads = three warpgroups:
// - Warpgroup 2 (producer, 56 registers) gathers: tile 2j goes to kv buffer 0, tile 2j+1 to
//   buffer 1, each buffer in two halves, L = panels 0-3 (V columns 0-255) and R = panels 4..
//   (V columns 256-511 and the rope panel). Each half is a 16-byte cp.async per thread and row
//   chunk, signalled on its "ready" mbarrier with cp.async.mbarrier.arrive.noinc; the producer
//   refills a half once its "free" mbarrier says the math warpgroups are done with it. The
//   order 0L, 1R, 0R, 1L follows the order in which the halves are freed.
// - Warpgroup 0 computes S = Q K^T of the even tile, warpgroup 1 of the odd tile (m64n64k16,
//   both operands from shared memory, no duplicated work), so one warpgroup's softmax runs
//   while the other's wgmmas keep the tensor cores busy.
// - The running row max is chained through shared memory: WG0 takes max(old, even tile), WG1
//   max(that, odd tile); WG0 then rescales its P to WG1's max. Each warpgroup owns 256 output
//   columns (WG0 0-255, WG1 256-511) and adds both tiles to them: its own P straight from the
//   S accumulator registers (wgmma RS form), the other warpgroup's P from shared memory.
// - Invalid indices are zero-filled rows whose logits are masked to -inf; the running max
//   starts at -1e30 (not -inf) so that exp2 of a fully masked tile is 0, never NaN.
//
// SCHED 1 is the v2 kernel as measured. SCHED 2 (knob ws2) keeps its arithmetic and changes:
// - block order: the head blocks of one query row get consecutive linear block ids, so at
//   h_q 128 both halves of a row run at the same time and the second gather hits L2;
// - L2 hints: kv rows are gathered evict_last with a 256-byte L2 prefetch (they are re-read by
//   other rows), Q is read evict_first (read once), so streaming Q / O does not evict the kv;
// - warpgroup 0 frees the even tile's V columns 0-255 as soon as its P V is done, before it
//   waits for warpgroup 1's max (the producer refills that half first);
// - the output goes through shared memory (the Q region, free after the last S) and leaves as
//   coalesced 16-byte rows instead of 4-byte scattered stores.
// SCHED 3 (ws3) is SCHED 1 with SCHED 2's block order, earlier V release and staged output, a
// lazy max and warpgroup 0's rescale moved ahead of its wait for the odd tile's P:
// - lazy max: the running max both warpgroups share is a reference that moves only when a
//   tile's row max exceeds it by more than kLazySlack (log2 units), so P <= 2^kLazySlack; a
//   warp rescales its 128 output registers only when one of its rows moved (a vote), which after
//   the first tiles is rare. The true row maxima (max_logits) are kept beside it and merged at
//   the end; lse = reference + log2(l) is exact either way.
// SCHED 4 (ws4) is SCHED 3 with the exact max (every pair rescales): the lazy max's A/B twin.
//
// NSA_MLA_WS_KNOCKOUT (a probe's define, 0 in the library) removes work to time what is left,
// with wrong results: bit 1 no kv gathers, bit 2 no wgmma, bit 4 no index loads (rows hashed from
// the position), 8 no Q load (docs/perf-log.md).
#pragma once

#ifndef NSA_MLA_WS_KNOCKOUT
#define NSA_MLA_WS_KNOCKOUT 0
#endif

#include "common/nv_ptx.cuh"
#include "common/nv_wgmma.cuh"
#include "sparse_mla_fwd/params.h"
#include "sparse_mla_fwd/row_range.cuh"
#include "sparse_mla_fwd/row_stats.cuh"
#include "sparse_mla_fwd/wgmma_layout.h"

namespace nsajit {

template <int D, int BH, int BT, int WARPS, int STAGES, int SCHED = 1>
struct SparseMlaSm90WgmmaWs {
  static constexpr NsaSparseMlaWgmmaLayout L = nsa_sparse_mla_wgmma_layout(D, BH, BT, WARPS, STAGES);
  static_assert(BH == 64 && BT == 64, "one m64n64 S tile per warpgroup; P is one swizzle panel");
  static_assert(WARPS == 12, "two math warpgroups and one producer warpgroup");
  static_assert(STAGES == 2, "two kv buffers: the even and the odd tile of a pair");
  static_assert(D % 64 == 0 && L.dv == 512 && D >= L.dv, "d is 512 or 512 + whole 64-column panels");
  static_assert(SCHED >= 1 && SCHED <= 4, "schedules 1 (v2), 2 (v3), 3 and 4 (v7)");
  // What each schedule changes (see the header comment).
  static constexpr bool kL2Hints = SCHED == 2;
  static constexpr bool kStagedOut = SCHED >= 2;
  static constexpr bool kEarlyFree = SCHED == 2 || SCHED == 3;
  static constexpr bool kRowBlocks = SCHED >= 2;
  static constexpr bool kRescaleBeforeP1 = SCHED >= 3;
  static constexpr bool kLazyMax = SCHED == 3;
  static constexpr float kLazySlack = 8.f;
  static constexpr bool kNoGather = (NSA_MLA_WS_KNOCKOUT & 1) != 0;
  static constexpr bool kNoMath = (NSA_MLA_WS_KNOCKOUT & 2) != 0;
  static constexpr bool kNoIndexLoads = (NSA_MLA_WS_KNOCKOUT & 4) != 0;
  static constexpr bool kNoQLoad = (NSA_MLA_WS_KNOCKOUT & 8) != 0;
  static constexpr int kPanels = D / 64;
  static constexpr int kHalfPanels = 4;  // L half: panels [0, 4); R half: [4, kPanels)
  static constexpr int kORegs = 128;     // 64 x 256 fp32 per warpgroup
  static constexpr float kInitMax = -1e30f;
  // Named barriers (0 is __syncthreads), 256 threads = both math warpgroups.
  static constexpr int kBarMax0 = 1, kBarMax1 = 2, kBarP0 = 3, kBarP1 = 4, kBarSum = 5;
  static constexpr int kBarOut0 = 6;  // + warpgroup: the staged output of one warpgroup (128 threads)
  // SCHED 2 output staging: [BH rows x 512] bf16 from the Q region on (Q and the kv buffers after
  // it are all free once the last wgmma is done), rows 1040 bytes apart so that the 8 rows of one
  // accumulator store land in 8 different bank quads.
  static constexpr int kOutPitch = L.dv * 2 + 16;
  static_assert(L.q_off == 0 && L.kv_off == L.q_bytes && BH * kOutPitch <= L.q_bytes + 2 * L.kv_stage_bytes,
                "the staged output fits in Q and the kv buffers");

  const NsaSparseMlaParams& p;
  unsigned char* base;                          // 1024-byte aligned
  unsigned base_addr;                           // its shared-state-space address
  unsigned long long desc_k_ = 0, desc_v_ = 0;  // wgmma descriptors of base_addr (see q_desc)
  int* valid_s;                                 // [2][BT]
  float* m_s;                                   // [BH] the max handed from one math warpgroup to the other
  float* l_s;                                   // [2][BH] row sums at the end
  float* mx_s;  // [2][BH] each warpgroup's true row maxima at the end (lazy max)
  int t_begin, t_end, n_tiles;
  long long row;  // b * s_q + s
  int h0;         // first head of this block

  // mbarrier addresses: ready[b][h] at 2b + h, free[b][h] at 4 + 2b + h (h 0 = L, 1 = R).
  __device__ __forceinline__ unsigned ready_bar(int b, int h) const {
    return base_addr + L.bar_off + 8 * (2 * b + h);
  }
  __device__ __forceinline__ unsigned free_bar(int b, int h) const {
    return base_addr + L.bar_off + 8 * (4 + 2 * b + h);
  }

  static __device__ __forceinline__ int tile_offset(int rows, int r, int k) {
    return (k >> 3) * rows * 128 + nsa_sw128_offset(r, k & 7);
  }
  // Descriptors as offsets from the aligned base's (nsa_wgmma_desc_advance): K-major operands
  // (Q, K, P: LBO 16) and the N-major V (LBO = one panel of the tile).
  __device__ __forceinline__ unsigned long long q_desc(int kk) const {
    return nsa_wgmma_desc_advance(desc_k_, L.q_off + (kk >> 2) * BH * 128 + (kk & 3) * 32);
  }
  __device__ __forceinline__ unsigned long long k_desc(int b, int kk) const {
    return nsa_wgmma_desc_advance(desc_k_,
                                  L.kv_off + b * L.kv_stage_bytes + (kk >> 2) * BT * 128 + (kk & 3) * 32);
  }
  __device__ __forceinline__ unsigned long long p_desc(int p_off, int kk) const {
    return nsa_wgmma_desc_advance(desc_k_, p_off + kk * 32);
  }
  // V[16 tokens x 256 dims] of buffer b, column half `half`, N-major (see sm90_wgmma.cuh).
  __device__ __forceinline__ unsigned long long v_desc(int b, int half, int kk) const {
    return nsa_wgmma_desc_advance(desc_v_,
                                  L.kv_off + b * L.kv_stage_bytes + (half * 4) * BT * 128 + kk * 16 * 128);
  }

  // S += Q K^T over panels [p_begin, p_end) of buffer b (4 k-steps per panel).
  // Each batch starts with its own wgmma.fence: a batch that follows a branch (an mbarrier wait)
  // without one makes ptxas insert a fence and serialise the wgmmas (C7520).
  __device__ __forceinline__ void issue_s(float (&s)[32], int b, int p_begin, int p_end, bool first) const {
    wgmma_fence();
    if constexpr (kNoMath) return;
#pragma unroll
    for (int kk = 4 * p_begin; kk < 4 * p_end; ++kk)
      wgmma_m64n64k16_ss(s, q_desc(kk), k_desc(b, kk), (first && kk == 4 * p_begin) ? 0 : 1);
  }

  // ---------------------------------------------------------------- producer warpgroup
  __device__ __forceinline__ void produce(int ptid, int b, int s, const int* idx_g, int n_pairs) {
    const int group = ptid >> 3, ch = ptid & 7;  // rows group + 16 k, 16-byte chunk ch of a panel
    auto index_of = [&](int tile, int r) {
      if constexpr (kNoIndexLoads)  // rows spread like random indices, without the load
        return static_cast<int>((static_cast<unsigned>(t_begin + tile * BT + r) * 2654435761u +
                                 static_cast<unsigned>(row) * 40503u) %
                                static_cast<unsigned>(p.s_kv));
      return nsa_kv_index<BT>(p, idx_g, t_begin, t_end, n_tiles, tile, r);
    };
    // Q, zero rows past h_q; covered by every ready barrier (noinc tracks all earlier copies).
    const unsigned short* q_g = p.q + b * p.q_stride_b + s * p.q_stride_s;
    [[maybe_unused]] unsigned long long kv_policy = 0, q_policy = 0;
    if constexpr (kL2Hints) {
      kv_policy = l2_policy_evict_last();
      q_policy = l2_policy_evict_first();
    }
    for (int c = ptid; c < (kNoQLoad ? 0 : BH * L.chunks); c += 128) {
      const int r = c / L.chunks, k = c - r * L.chunks;
      const bool ok = h0 + r < p.h_q;
      const unsigned short* src = ok ? q_g + (h0 + r) * p.q_stride_h + k * 8 : p.q;
      if constexpr (kL2Hints) {
        cp_async_16_l2hint(base + L.q_off + tile_offset(BH, r, k), src, ok ? 16 : 0, q_policy);
      } else {
        cp_async_16(base + L.q_off + tile_offset(BH, r, k), src, ok ? 16 : 0);
      }
    }
    int idx[2][4];
#pragma unroll
    for (int t = 0; t < 2; ++t)
#pragma unroll
      for (int k = 0; k < 4; ++k) idx[t][k] = index_of(t, group + 16 * k);

    for (int j = 0; j < n_pairs; ++j) {
      // (buffer, half) in the order the math warpgroups free them: 0L, 1R, 0R, 1L.
#pragma unroll
      for (int step = 0; step < 4; ++step) {
        const int buf = step & 1;
        const int half = (step == 1 || step == 2) ? 1 : 0;
        if (j > 0) mbarrier_wait_parity(free_bar(buf, half), (j - 1) & 1);
        unsigned char* dst = base + L.kv_off + buf * L.kv_stage_bytes;
        const int pb = half == 0 ? 0 : kHalfPanels, pe = half == 0 ? kHalfPanels : kPanels;
#pragma unroll
        for (int k = 0; k < 4; ++k) {
          const int r = group + 16 * k, row = idx[buf][k];
          const int bytes = row >= 0 ? 16 : 0;
          const unsigned short* src = nsa_kv_gather_src(p, row, ch * 8);
#pragma unroll
          for (int pn = pb; pn < pe; ++pn) {
            if constexpr (kNoGather) {
            } else if constexpr (kL2Hints) {
              cp_async_16_l2hint(dst + pn * BT * 128 + nsa_sw128_offset(r, ch), src + pn * 64, bytes,
                                 kv_policy);
            } else {
              cp_async_16(dst + pn * BT * 128 + nsa_sw128_offset(r, ch), src + pn * 64, bytes);
            }
          }
          // The flags travel with the half each tile is loaded first (0L, 1R); the warpgroup that
          // masks with them frees that half only after masking.
          if (step < 2 && ch == 0) valid_s[buf * BT + r] = row >= 0 ? 1 : 0;
        }
        cp_async_mbarrier_arrive_noinc(ready_bar(buf, half));
        mbarrier_arrive(ready_bar(buf, half));  // release: the flags above
        if (step == 3) {
#pragma unroll
          for (int t = 0; t < 2; ++t)
#pragma unroll
            for (int k = 0; k < 4; ++k) idx[t][k] = index_of(2 * j + 2 + t, group + 16 * k);
        }
      }
    }
    cp_async_wait<0>();  // no copy may land after this thread exits
  }

  // ---------------------------------------------------------------- math warpgroups
  // Scale, mask with the tile's flags; returns this thread's row maxima (after the quad reduce).
  __device__ __forceinline__ void scale_and_mask(float (&sacc)[32], int buf, int c0) const {
    const int* flags = valid_s + buf * BT;
#pragma unroll
    for (int j = 0; j < BT / 8; ++j) {
      const int2 ok = *reinterpret_cast<const int2*>(flags + 8 * j + c0);
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        sacc[4 * j + 2 * h] = ok.x ? sacc[4 * j + 2 * h] * p.scale_log2 : neg_inf();
        sacc[4 * j + 2 * h + 1] = ok.y ? sacc[4 * j + 2 * h + 1] * p.scale_log2 : neg_inf();
      }
    }
  }
  static __device__ __forceinline__ float row_max(const float (&sacc)[32], int h) {
    float mx = neg_inf();
#pragma unroll
    for (int j = 0; j < BT / 8; ++j) mx = fmaxf(mx, fmaxf(sacc[4 * j + 2 * h], sacc[4 * j + 2 * h + 1]));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    return fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
  }
  // sacc <- exp2(sacc - m) per row; returns the row sums of this thread's columns.
  static __device__ __forceinline__ void exponentiate(float (&sacc)[32], const float (&m)[2],
                                                      float (&sum)[2]) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      sum[h] = 0.f;
#pragma unroll
      for (int j = 0; j < BT / 8; ++j)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          float& v = sacc[4 * j + 2 * h + e];
          v = fast_exp2(v - m[h]);
          sum[h] += v;
        }
    }
  }
  // The S accumulator is the RS A fragment: k-step kk takes registers 8 kk .. 8 kk + 7.
  static __device__ __forceinline__ void to_fragments(const float (&sacc)[32], unsigned (&a)[4][4], float f) {
#pragma unroll
    for (int kk = 0; kk < 4; ++kk)
#pragma unroll
      for (int i = 0; i < 4; ++i)
        a[kk][i] = pack_bf16x2(sacc[8 * kk + 2 * i] * f, sacc[8 * kk + 2 * i + 1] * f);
  }
  // P (bf16, times f) to a swizzled [64 x 64] panel, the layout the SS wgmma reads.
  __device__ __forceinline__ void store_p(const float (&sacc)[32], int p_off, int r0, int c0, float f0,
                                          float f1) const {
#pragma unroll
    for (int j = 0; j < BT / 8; ++j)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const float f = h ? f1 : f0;
        *reinterpret_cast<unsigned*>(base + p_off + nsa_sw128_offset(r0 + 8 * h, j) + c0 * 2) =
            pack_bf16x2(sacc[4 * j + 2 * h] * f, sacc[4 * j + 2 * h + 1] * f);
      }
  }
  // The reference max after a tile whose row max is mx: the exact max, or (lazy) mx only when it
  // exceeds the reference by more than the slack.
  static __device__ __forceinline__ float raise_max(float ref, float mx) {
    if constexpr (kLazyMax) return mx > ref + kLazySlack ? mx : ref;
    return fmaxf(ref, mx);
  }
  // Output rescale; lazy: skipped by a warp none of whose rows moved its reference (f == 1).
  static __device__ __forceinline__ void rescale_o(float (&o)[kORegs], float f0, float f1) {
    if constexpr (kLazyMax) {
      if (!__any_sync(0xffffffffu, f0 != 1.f || f1 != 1.f)) return;
    }
    scale_o(o, f0, f1);
  }
  static __device__ __forceinline__ void scale_o(float (&o)[kORegs], float f0, float f1) {
#pragma unroll
    for (int j = 0; j < kORegs / 4; ++j) {
      o[4 * j] *= f0;
      o[4 * j + 1] *= f0;
      o[4 * j + 2] *= f1;
      o[4 * j + 3] *= f1;
    }
  }
  __device__ __forceinline__ void pv_rs(float (&o)[kORegs], unsigned (&a)[4][4], int buf, int half) const {
    wgmma_fence();
    if constexpr (kNoMath) return;
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) wgmma_m64n256k16_rs_tb(o, a[kk], v_desc(buf, half, kk), 1);
  }
  __device__ __forceinline__ void pv_ss(float (&o)[kORegs], int p_off, int buf, int half) const {
    wgmma_fence();
    if constexpr (kNoMath) return;
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) wgmma_m64n256k16_ss_tb(o, p_desc(p_off, kk), v_desc(buf, half, kk), 1);
  }

  // Warpgroup 0: even tiles (buffer 0), output columns 0-255.
  __device__ __forceinline__ void math0(float (&o)[kORegs], float (&m_run)[2], float (&l_run)[2],
                                        float (&m_top)[2], int r0, int c0, int lane, int n_pairs) const {
    float sacc[32];
    unsigned a[4][4];
    if (n_pairs > 0) {
      mbarrier_wait_parity(ready_bar(0, 0), 0);
      fence_proxy_async_smem();  // the landed copies -> the tensor cores
      issue_s(sacc, 0, 0, kHalfPanels, true);
      mbarrier_wait_parity(ready_bar(0, 1), 0);
      fence_proxy_async_smem();  // the landed copies -> the tensor cores
      issue_s(sacc, 0, kHalfPanels, kPanels, false);
      wgmma_commit();
      wgmma_wait<0>();
      wgmma_fence_operands(sacc);
    }
    for (int j = 0; j < n_pairs; ++j) {
      scale_and_mask(sacc, 0, c0);
      float m_new[2], f[2], sum[2];
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const float mx = row_max(sacc, h);
        m_top[h] = fmaxf(m_top[h], mx);
        m_new[h] = raise_max(m_run[h], mx);
        f[h] = fast_exp2(m_run[h] - m_new[h]);
      }
      exponentiate(sacc, m_new, sum);
      if ((lane & 3) == 0) {
        m_s[r0] = m_new[0];
        m_s[r0 + 8] = m_new[1];
      }
      named_barrier_arrive(kBarMax0, 256);
#pragma unroll
      for (int h = 0; h < 2; ++h) l_run[h] = l_run[h] * f[h] + sum[h];
      rescale_o(o, f[0], f[1]);
      to_fragments(sacc, a, 1.f);
      // O += P(even) V(even) columns 0-255, P from registers.
      pv_rs(o, a, 0, 0);
      wgmma_commit();

      if constexpr (kEarlyFree) {
        // Free V(even) columns 0-255 first: the producer refills this half before any other.
        wgmma_wait<0>();
        wgmma_fence_operands(o);
        wgmma_fence_operands(a);
        mbarrier_arrive(free_bar(0, 0));
      }
      // WG1's max covers both tiles: rescale this tile's P to it for WG1's half of the columns.
      named_barrier_sync(kBarMax1, 256);
      float g[2];
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const float m1 = m_s[r0 + 8 * h];
        g[h] = fast_exp2(m_new[h] - m1);
        m_run[h] = m1;
      }
      store_p(sacc, L.p0_off, r0, c0, g[0], g[1]);
      fence_proxy_async_smem();
      named_barrier_arrive(kBarP0, 256);

      if constexpr (!kEarlyFree) {
        wgmma_wait<0>();
        wgmma_fence_operands(o);
        wgmma_fence_operands(a);
        mbarrier_arrive(free_bar(0, 0));  // V(even) columns 0-255 read: panels 0-3 of buffer 0
      }

      // Output and sums to WG1's max; the P(even) V wgmmas are complete (waited above), so
      // schedules >= 3 do it before waiting for P(odd), off the path to the P(odd) V wgmmas.
      auto rescale_to_wg1_max = [&] {
        rescale_o(o, g[0], g[1]);
#pragma unroll
        for (int h = 0; h < 2; ++h) l_run[h] *= g[h];
      };
      if constexpr (kRescaleBeforeP1) rescale_to_wg1_max();
      named_barrier_sync(kBarP1, 256);
      if constexpr (!kRescaleBeforeP1) rescale_to_wg1_max();
      // O += P(odd) V(odd) columns 0-255, P from shared memory (written by WG1).
      pv_ss(o, L.p1_off, 1, 0);
      wgmma_commit();
      if (j + 1 < n_pairs) {
        mbarrier_wait_parity(ready_bar(0, 0), (j + 1) & 1);
        fence_proxy_async_smem();
        issue_s(sacc, 0, 0, kHalfPanels, true);
        wgmma_commit();
        wgmma_wait<1>();  // the P(odd) V wgmmas are done
        wgmma_fence_operands(o);
        mbarrier_arrive(free_bar(1, 0));
        mbarrier_wait_parity(ready_bar(0, 1), (j + 1) & 1);
        fence_proxy_async_smem();
        issue_s(sacc, 0, kHalfPanels, kPanels, false);
        wgmma_commit();
        wgmma_wait<0>();
        wgmma_fence_operands(sacc);
      } else {
        wgmma_wait<0>();
        wgmma_fence_operands(o);
        mbarrier_arrive(free_bar(1, 0));
      }
    }
  }

  // Warpgroup 1: odd tiles (buffer 1), output columns 256-511.
  __device__ __forceinline__ void math1(float (&o)[kORegs], float (&m_run)[2], float (&l_run)[2],
                                        float (&m_top)[2], int r0, int c0, int lane, int n_pairs) const {
    float sacc[32];
    unsigned a[4][4];
    for (int j = 0; j < n_pairs; ++j) {
      mbarrier_wait_parity(ready_bar(1, 1), j & 1);
      fence_proxy_async_smem();  // the landed copies -> the tensor cores
      issue_s(sacc, 1, kHalfPanels, kPanels, true);
      mbarrier_wait_parity(ready_bar(1, 0), j & 1);
      fence_proxy_async_smem();  // the landed copies -> the tensor cores
      issue_s(sacc, 1, 0, kHalfPanels, false);
      wgmma_commit();
      wgmma_wait<0>();
      wgmma_fence_operands(sacc);
      scale_and_mask(sacc, 1, c0);
      float mx[2];
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        mx[h] = row_max(sacc, h);
        m_top[h] = fmaxf(m_top[h], mx[h]);
      }

      named_barrier_sync(kBarMax0, 256);
      float m_new[2], f[2], sum[2];
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        m_new[h] = raise_max(m_s[r0 + 8 * h], mx[h]);  // WG0's max already includes the old one
        f[h] = fast_exp2(m_run[h] - m_new[h]);
        m_run[h] = m_new[h];
      }
      __syncwarp();  // every lane of the quad read m_s before its leader overwrites it
      if ((lane & 3) == 0) {
        m_s[r0] = m_new[0];
        m_s[r0 + 8] = m_new[1];
      }
      named_barrier_arrive(kBarMax1, 256);
      exponentiate(sacc, m_new, sum);
#pragma unroll
      for (int h = 0; h < 2; ++h) l_run[h] = l_run[h] * f[h] + sum[h];
      rescale_o(o, f[0], f[1]);
      to_fragments(sacc, a, 1.f);
      // O += P(odd) V(odd) columns 256-511, P from registers.
      pv_rs(o, a, 1, 1);
      wgmma_commit();
      store_p(sacc, L.p1_off, r0, c0, 1.f, 1.f);
      fence_proxy_async_smem();
      named_barrier_arrive(kBarP1, 256);

      // O += P(even) V(even) columns 256-511, P from shared memory (written by WG0).
      named_barrier_sync(kBarP0, 256);
      pv_ss(o, L.p0_off, 0, 1);
      wgmma_commit();
      wgmma_wait<1>();
      wgmma_fence_operands(a);
      mbarrier_arrive(free_bar(1, 1));  // V(odd) columns 256-511 and the odd rope panel read
      wgmma_wait<0>();
      wgmma_fence_operands(o);
      mbarrier_arrive(free_bar(0, 1));  // V(even) columns 256-511 and P(even) read
    }
  }

  __device__ __forceinline__ void run() {
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wg = warp >> 2;
    if constexpr (kRowBlocks) {
      // Blocks start in linear order x + gridDim.x * y; number (row, head block) so that the
      // head blocks of one row are neighbours in that order. A bijection of the same grid.
      const long long lin = blockIdx.x + static_cast<long long>(gridDim.x) * blockIdx.y;
      row = lin / gridDim.y;
      h0 = static_cast<int>(lin - row * gridDim.y) * BH;
    } else {
      row = blockIdx.x;
      h0 = blockIdx.y * BH;
    }
    const int split = blockIdx.z;

    const NsaRowRange range = nsa_row_range<BT>(p, row, split);
    t_begin = range.t_begin;
    t_end = range.t_end;
    n_tiles = range.n_tiles;
    const int b = range.b, s = range.s;
    const int n_pairs = (n_tiles + 1) / 2;  // an odd count ends with one all-invalid tile

    if (tid == 0) {
#pragma unroll
      for (int i = 0; i < 4; ++i)
        mbarrier_init(base_addr + L.bar_off + 8 * i, 256);  // ready: 128 noinc + 128
#pragma unroll
      for (int i = 4; i < 8; ++i) mbarrier_init(base_addr + L.bar_off + 8 * i, 128);  // free: one warpgroup
    }
    __syncthreads();

    // Each role is one branch of a single if/else, so that setmaxnreg takes effect.
    if (wg == 2) {
      setmaxnreg_dec<72>();
      produce(tid - 256, b, s, p.indices + b * p.idx_stride_b + s * p.idx_stride_s, n_pairs);
    } else {
      setmaxnreg_inc<216>();
      consume(wg, warp, lane, b, s, split, n_pairs);
    }
  }

  __device__ __forceinline__ void consume(int wg, int warp, int lane, int b, int s, int split, int n_pairs) {
    const int r0 = (warp & 3) * 16 + (lane >> 2);  // accumulator rows r0, r0 + 8
    const int c0 = 2 * (lane & 3);                 // columns c0, c0 + 1 of every 8-column block
    float o[kORegs];
#pragma unroll
    for (int i = 0; i < kORegs; ++i) o[i] = 0.f;
    float m_run[2] = {kInitMax, kInitMax};
    float l_run[2] = {0.f, 0.f};
    float m_top[2] = {kInitMax, kInitMax};  // the true row maxima of this warpgroup's tiles
    if (wg == 0) {
      math0(o, m_run, l_run, m_top, r0, c0, lane, n_pairs);
    } else {
      math1(o, m_run, l_run, m_top, r0, c0, lane, n_pairs);
    }

    // ---- row sums: both warpgroups hold the same final max; add their partial sums
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      l_run[h] += __shfl_xor_sync(0xffffffffu, l_run[h], 1);
      l_run[h] += __shfl_xor_sync(0xffffffffu, l_run[h], 2);
    }
    if ((lane & 3) == 0) {
      l_s[wg * BH + r0] = l_run[0];
      l_s[wg * BH + r0 + 8] = l_run[1];
      mx_s[wg * BH + r0] = m_top[0];
      mx_s[wg * BH + r0 + 8] = m_top[1];
    }
    named_barrier_sync(kBarSum, 256);

    // ---- epilogue
    // SCHED >= 2: bf16 rows staged in the Q region (no wgmma reads Q or kv any more: both
    // warpgroups passed kBarSum after their last wgmma wait, and every gathered copy landed
    // before the tile it belongs to was read), then written as 16-byte chunks; needs 16-byte
    // aligned output rows, else the scattered stores below. Not for an empty row (no pair): its
    // consumers never waited for a ready barrier, so the producer's Q copies may still be landing
    // in that region (the cause of ws2's one failing sweep case).
    bool staged = false;
    if constexpr (kStagedOut)
      staged = n_pairs > 0 && p.num_splits == 1 &&
               ((reinterpret_cast<unsigned long long>(p.out) |
                 static_cast<unsigned long long>(p.out_stride_b | p.out_stride_s | p.out_stride_h) * 2) &
                15) == 0;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int r = r0 + 8 * h;
      const int head = h0 + r;
      if (head >= p.h_q) continue;
      const float l = l_s[r] + l_s[BH + r];
      const bool empty = !(l > 0.f);
      const float m = m_run[h];  // the reference the sums are relative to
      const float lse2 = row_lse2(m, l, empty);
      const float m_true = fmaxf(mx_s[r], mx_s[BH + r]);  // max_logits (m when the max is exact)
      const int col0 = wg * 256 + c0;
      if (p.num_splits > 1) {
        const long long prow = (static_cast<long long>(split) * p.batch * p.s_q + row) * p.h_q + head;
        const float inv = empty ? 0.f : 1.f / l;
        float* dst = p.partial_out + prow * L.dv + col0;
#pragma unroll
        for (int j = 0; j < kORegs / 4; ++j)
          *reinterpret_cast<float2*>(dst + 8 * j) =
              make_float2(o[4 * j + 2 * h] * inv, o[4 * j + 2 * h + 1] * inv);
        if (wg == 0 && (lane & 3) == 0) {
          store_partial_stats(p, prow, m_true, lse2, empty);
        }
        continue;
      }
      const float inv = output_scale(p, head, l, m, empty);
      if (staged) {
        unsigned char* st = base + L.q_off + r * kOutPitch + col0 * 2;
#pragma unroll
        for (int j = 0; j < kORegs / 4; ++j)
          *reinterpret_cast<unsigned*>(st + 16 * j) =
              pack_bf16x2(o[4 * j + 2 * h] * inv, o[4 * j + 2 * h + 1] * inv);
      } else {
        unsigned short* dst = p.out + b * p.out_stride_b + s * p.out_stride_s + head * p.out_stride_h + col0;
#pragma unroll
        for (int j = 0; j < kORegs / 4; ++j)
          *reinterpret_cast<unsigned*>(dst + 8 * j) =
              pack_bf16x2(o[4 * j + 2 * h] * inv, o[4 * j + 2 * h + 1] * inv);
      }
      if (wg == 0 && (lane & 3) == 0) {
        store_row_stats(p, b, s, head, m_true, lse2, empty);
      }
    }
    if constexpr (kStagedOut) {
      if (staged) {
        // Each warp copies rows warp%4 + 4i of its warpgroup's 256 columns: 32 lanes x 16 bytes.
        if (wg == 0) {  // constant ids: ptxas then reserves only the barriers in use
          named_barrier_sync(kBarOut0, 128);
        } else {
          named_barrier_sync(kBarOut0 + 1, 128);
        }
        unsigned short* out_row = p.out + b * p.out_stride_b + s * p.out_stride_s + wg * 256 + lane * 8;
#pragma unroll 4
        for (int r = warp & 3; r < BH; r += 4) {
          if (h0 + r >= p.h_q) break;  // rows past h_q come last
          const uint4 v =
              *reinterpret_cast<const uint4*>(base + L.q_off + r * kOutPitch + wg * 512 + lane * 16);
          st_global_cs_16(out_row + (h0 + r) * p.out_stride_h, v);
        }
      }
    }
  }
};

template <int D, int BH, int BT, int WARPS, int STAGES, int SCHED = 1>
__device__ __forceinline__ void sparse_mla_fwd_sm90_wgmma_ws(const NsaSparseMlaParams& p) {
  using K = SparseMlaSm90WgmmaWs<D, BH, BT, WARPS, STAGES, SCHED>;
  extern __shared__ __align__(1024) unsigned char smem_wgmma_ws[];
  K k{p};
  const unsigned raw = smem_addr(smem_wgmma_ws);
  const unsigned pad = (1024u - (raw & 1023u)) & 1023u;
  k.base = smem_wgmma_ws + pad;
  k.base_addr = raw + pad;
  k.desc_k_ = nsa_wgmma_desc_sw128(k.base_addr, 16, 1024);
  k.desc_v_ = nsa_wgmma_desc_sw128(k.base_addr, BT * 128, 1024);
  k.valid_s = reinterpret_cast<int*>(k.base + K::L.valid_off);
  k.m_s = reinterpret_cast<float*>(k.base + K::L.row_off);
  k.l_s = k.m_s + BH;
  k.mx_s = k.l_s + 2 * BH;
  k.run();
}

}  // namespace nsajit
