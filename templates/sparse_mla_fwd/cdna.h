// sparse_mla_fwd for AMD CDNA (gfx90a, gfx942): wave64, bf16 MFMA 16x16x16, 64 KB of LDS.
//
// One workgroup takes one query row (b, s) and BH of its heads (grid: rows x head blocks x topk
// splits, like the NVIDIA kernel), and walks that row's topk kv rows in tiles of BT. A tile of
// 576 d does not fit LDS for BT >= 64, so each tile streams through LDS in chunks of 128 d:
//   S steps: chunks 0..4 of d (the last is the 64-wide rope part) -> S += Q K^T,
//   softmax: S (fp32) through LDS, masked, online softmax in base 2, P (bf16) back to LDS,
//   V steps: the 4 value chunks again (they were just read: L2 hits) -> O += P V.
// Every chunk is gathered with 16-byte loads into registers one step ahead (so global latency
// overlaps the MFMAs of the current chunk), then written to one of STAGES LDS buffers; with 2
// buffers a step needs one barrier, with 1 it needs two.
//
// Q lives in registers for the whole kernel, as MFMA A fragments in a d order of our choosing:
// lane l holds 8 consecutive d (one 16-byte load) for two k-steps; K fragments use the same
// order (one ds_read_b128), and the dot product does not care about the order of d.
// V fragments need 4 kv rows at one dv per lane: four ds_read_b32 of 2 dv each, repacked into an
// even-dv and an odd-dv operand (v_perm), so one LDS layout serves both products.
// The kv chunk in LDS is XOR-swizzled in 16-byte units (unit ^ row%8): conflict-free for the
// 16-row b128 reads of K, the b32 reads of V, and the b128 writes of the gather.
#pragma once

#include "common/hip_prelude.h"  // the clang-19 path needs it; empty under hipRTC
#include "common/cdna_mfma.h"
#include "sparse_mla_fwd/cdna_layout.h"
#include "sparse_mla_fwd/params.h"

namespace nsajit {

template <int D, int BH, int BT, int WAVES, int STAGES>
struct SparseMlaCdna {
  static constexpr NsaSparseMlaCdnaLayout L = nsa_sparse_mla_cdna_layout(D, BH, BT, WAVES, STAGES);
  static_assert(D == 576 || D == 512, "d_qk 576 or 512");
  static_assert(STAGES == 1 || STAGES == 2, "one or two LDS chunk buffers");
  static_assert(nsa_sparse_mla_cdna_shape_error(L)[0] == '\0',
                "tile shape (see nsa_sparse_mla_cdna_shape_error)");
  static constexpr int T = L.threads, CW = L.cw, NSC = L.s_chunks, NVC = L.v_chunks, NSTEP = L.steps;
  static constexpr int SPP = L.sp_pitch;
  static constexpr int HTS = L.hts, CTS = L.cts, JMAX = L.jmax, SK = L.sk, SN = L.sn;
  static constexpr int HTO = L.hto, NG = L.ng, PN = L.pn, CWW = L.cww;
  static constexpr int TPR = L.tpr, CPT = L.cpt, LOADS = L.loads;

  // Width in d of chunk `step` (S steps first, then V steps) and its first column.
  static constexpr int chunk_width(int step) {
    return step < NSC ? (D - step * CW < CW ? D - step * CW : CW) : CW;
  }
  static constexpr int chunk_d0(int step) { return step < NSC ? step * CW : (step - NSC) * CW; }

  const NsaSparseMlaParams& p;
  unsigned short* kv_s;  // [STAGES][BT][CW] bf16, swizzled
  float* sp_s;           // [SK][BH][SPP] fp32 S partials; P [BH][SPP] bf16 aliases it
  int* idx_s;            // [2][BT] kv row of each tile row (-1: invalid or past the end)
  float* alpha_s;        // [BH] softmax rescale of the current tile
  float* stat_s;         // [BH] final output factor
  const int* idx_g;
  int t_begin, t_end, n_tiles;

  __device__ __forceinline__ int load_index(int tile, int r) const {
    const int pos = t_begin + tile * BT + r;
    if (tile >= n_tiles || pos >= t_end) return -1;
    const int v = cdna::load_global<int>(idx_g + pos);
    return (v >= 0 && v < p.s_kv) ? v : -1;
  }

  // Gathers chunk STEP of tile `tile` into registers (invalid rows read as zeros, so 0 * V
  // can never become NaN). Thread t covers 16-byte unit (t + j*T) of the BT x CW chunk.
  template <int STEP>
  __device__ __forceinline__ void issue(int tile, cdna::u32x4 (&stage)[LOADS]) const {
    constexpr int units = chunk_width(STEP) / 8, d0 = chunk_d0(STEP);
    const int* idx = idx_s + (tile & 1) * BT;
#pragma unroll
    for (int j = 0; j < LOADS; ++j) {
      const int q = static_cast<int>(threadIdx.x) + j * T, r = q >> 4, k = q & 15;
      const int row = idx[r];
      cdna::u32x4 v = {0u, 0u, 0u, 0u};
      if (k < units && row >= 0)
        v = cdna::load_global<cdna::u32x4>(p.kv + static_cast<long long>(row) * p.kv_row_stride + d0 + k * 8);
      stage[j] = v;
    }
  }

  template <int STEP>
  __device__ __forceinline__ void commit(unsigned short* buf, const cdna::u32x4 (&stage)[LOADS]) const {
    constexpr int units = chunk_width(STEP) / 8;
#pragma unroll
    for (int j = 0; j < LOADS; ++j) {
      const int q = static_cast<int>(threadIdx.x) + j * T, r = q >> 4, k = q & 15;
      if (k < units) *reinterpret_cast<cdna::u32x4*>(buf + r * CW + ((k ^ (r & 7)) << 3)) = stage[j];
    }
  }

  __device__ __forceinline__ void run() {
    using namespace cdna;
    const int tid = static_cast<int>(threadIdx.x);
    const int lane = tid & 63, l16 = lane & 15, g4 = lane >> 4;
    const int wave = __builtin_amdgcn_readfirstlane(tid >> 6);
    // S roles: head tiles im, kv tiles in, d split ik.  PV roles: head tiles jm, value columns jn.
    const int ik = wave % SK, in_ = (wave / SK) % SN, im = wave / (SK * SN);
    const int jn = wave % PN, jm = wave / PN;
    const long long row = blockIdx.x;
    const int b = static_cast<int>(row / p.s_q), s = static_cast<int>(row - (row / p.s_q) * p.s_q);
    const int h0 = static_cast<int>(blockIdx.y) * BH;
    const int split = static_cast<int>(blockIdx.z);

    int count = p.topk;
    if (p.topk_length != nullptr) {
      const int len = cdna::load_global<int>(p.topk_length + b * p.len_stride_b + s * p.len_stride_s);
      count = len < 0 ? 0 : (len < p.topk ? len : p.topk);
    }
    t_begin = split * p.split_len;
    t_end = count < t_begin + p.split_len ? count : t_begin + p.split_len;
    n_tiles = t_end > t_begin ? (t_end - t_begin + BT - 1) / BT : 0;
    idx_g = p.indices + b * p.idx_stride_b + s * p.idx_stride_s;

    if (tid < BT) idx_s[tid] = load_index(0, tid);
    int pending = tid < BT ? load_index(1, tid) : -1;

    // Q fragments: q[ht][chunk][j] holds d = chunk*CW + (ik + j*SK)*32 + g4*8 .. +7 of head row l16.
    bf16x4 q[HTS][NSC][JMAX][2];
    {
      const unsigned short* q_g = p.q + b * p.q_stride_b + s * p.q_stride_s;
      static_for<0, HTS>([&](auto ht) {
        const int h = h0 + (im * HTS + decltype(ht)::value) * 16 + l16;
        static_for<0, NSC>([&](auto c) {
          constexpr int pairs = chunk_width(decltype(c)::value) / 32;
          static_for<0, JMAX>([&](auto j) {
            const int lp = ik + decltype(j)::value * SK;
            u32x4 v = {0u, 0u, 0u, 0u};
            if (lp < pairs && h < p.h_q)
              v = load_global<u32x4>(q_g + static_cast<long long>(h) * p.q_stride_h +
                                     decltype(c)::value * CW + lp * 32 + g4 * 8);
            q[ht.value][c.value][j.value][0] = as_bf16x4(v.x, v.y);
            q[ht.value][c.value][j.value][1] = as_bf16x4(v.z, v.w);
          });
        });
      });
    }

    f32x4 o[NVC][HTO][NG][2];
    static_for<0, NVC>([&](auto c) {
      static_for<0, HTO>([&](auto ht) {
        static_for<0, NG>([&](auto gi) {
          o[c.value][ht.value][gi.value][0] = f32x4{0.f, 0.f, 0.f, 0.f};
          o[c.value][ht.value][gi.value][1] = f32x4{0.f, 0.f, 0.f, 0.f};
        });
      });
    });
    // Softmax state of head row tid / TPR (every thread of the row keeps the max; l is partial).
    float m_run = kNegInf, l_run = 0.f;
    const int srow = tid / TPR, sseg = tid - srow * TPR;

    u32x4 stage[LOADS];
    __syncthreads();
    if (n_tiles > 0) issue<0>(0, stage);

    for (int i = 0; i < n_tiles; ++i) {
      const int cur = i & 1;
      f32x4 sacc[HTS][CTS];
      static_for<0, HTS>([&](auto ht) {
        static_for<0, CTS>([&](auto ct) { sacc[ht.value][ct.value] = f32x4{0.f, 0.f, 0.f, 0.f}; });
      });

      static_for<0, NSTEP>([&](auto step) {
        constexpr int S = decltype(step)::value;
        unsigned short* buf = kv_s + (STAGES == 1 ? 0 : ((i * NSTEP + S) & 1)) * (BT * CW);
        if constexpr (STAGES == 1) __syncthreads();  // everyone is done reading the only buffer
        commit<S>(buf, stage);
        if constexpr (S == 0) {
          if (tid < BT) idx_s[(cur ^ 1) * BT + tid] = pending;  // tile i+1, read from step 1 on
        }
        __syncthreads();
        if constexpr (S == 0) {
          if (tid < BT) pending = load_index(i + 2, tid);
        }
        if constexpr (S + 1 < NSTEP) {
          issue<S + 1>(i, stage);
        } else {
          if (i + 1 < n_tiles) issue<0>(i + 1, stage);
        }

        if constexpr (S < NSC) {
          // ---- S += Q K^T over this chunk's 32-column pairs lp = ik, ik + SK, ...
          constexpr int pairs = chunk_width(S) / 32;
          static_for<0, JMAX>([&](auto j) {
            const int lp = ik + decltype(j)::value * SK;
            if (lp < pairs) {
              static_for<0, CTS>([&](auto ct) {
                const int r = (in_ * CTS + decltype(ct)::value) * 16 + l16;
                const u32x4 kf =
                    *reinterpret_cast<const u32x4*>(buf + r * CW + (((lp * 4 + g4) ^ (l16 & 7)) << 3));
                const bf16x4 k0 = as_bf16x4(kf.x, kf.y), k1 = as_bf16x4(kf.z, kf.w);
                static_for<0, HTS>([&](auto ht) {
                  f32x4& acc = sacc[ht.value][ct.value];
                  acc = mfma_16x16x16_bf16(q[ht.value][S][j.value][0], k0, acc);
                  acc = mfma_16x16x16_bf16(q[ht.value][S][j.value][1], k1, acc);
                });
              });
            }
          });
          if constexpr (S == NSC - 1) softmax(cur, ik, in_, im, l16, g4, srow, sseg, sacc, m_run, l_run);
        } else {
          // ---- O += P V over value chunk S - NSC
          constexpr int VC = S - NSC;
          if constexpr (VC == 0) {
            static_for<0, HTO>([&](auto ht) {
              const f32x4 a =
                  *reinterpret_cast<const f32x4*>(alpha_s + (jm * HTO + decltype(ht)::value) * 16 + 4 * g4);
              static_for<0, NVC>([&](auto c) {
                static_for<0, NG>([&](auto gi) {
                  o[c.value][ht.value][gi.value][0] *= a;
                  o[c.value][ht.value][gi.value][1] *= a;
                });
              });
            });
          }
          const unsigned short* p_s = reinterpret_cast<const unsigned short*>(sp_s);
#pragma unroll 2
          for (int ks = 0; ks < BT / 16; ++ks) {
            bf16x4 pf[HTO];
            static_for<0, HTO>([&](auto ht) {
              const u32x2 w = *reinterpret_cast<const u32x2*>(
                  p_s + ((jm * HTO + decltype(ht)::value) * 16 + l16) * SPP + ks * 16 + 4 * g4);
              pf[ht.value] = __builtin_bit_cast(bf16x4, w);
            });
            static_for<0, NG>([&](auto gi) {
              const int dcol = jn * CWW + decltype(gi)::value * 32 + 2 * l16;
              unsigned w[4];
#pragma unroll
              for (int e = 0; e < 4; ++e) {
                const int kr = ks * 16 + 4 * g4 + e;
                w[e] = *reinterpret_cast<const unsigned*>(buf + kr * CW + ((((dcol >> 3) ^ (kr & 7))) << 3) +
                                                          (dcol & 7));
              }
              const bf16x4 ve = as_bf16x4(pack_lo_halves(w[0], w[1]), pack_lo_halves(w[2], w[3]));
              const bf16x4 vo = as_bf16x4(pack_hi_halves(w[0], w[1]), pack_hi_halves(w[2], w[3]));
              static_for<0, HTO>([&](auto ht) {
                f32x4& oe = o[VC][ht.value][gi.value][0];
                f32x4& oo = o[VC][ht.value][gi.value][1];
                oe = mfma_16x16x16_bf16(pf[ht.value], ve, oe);
                oo = mfma_16x16x16_bf16(pf[ht.value], vo, oo);
              });
            });
          }
        }
      });
    }

    // ---- epilogue: row statistics by the softmax threads, then O / l by the PV waves
    constexpr float kLn2 = 0.6931471805599453f, kLog2e = 1.4426950408889634f;
    float l = l_run;
#pragma unroll
    for (int m = 1; m < TPR; m <<= 1) l += shfl_xor(l, m);
    {
      const int h = h0 + srow;
      const float m = m_run;
      const bool empty = !(l > 0.f);
      const float lse2 = empty ? kNegInf : m + fast_log2(l);
      float inv = 0.f;
      if (p.num_splits > 1) {
        inv = empty ? 0.f : fast_rcp(l);
        if (sseg == 0 && h < p.h_q) {
          const long long prow = (static_cast<long long>(split) * p.batch * p.s_q + row) * p.h_q + h;
          store_global(p.partial_stats + prow * 2, empty ? kNegInf : m);
          store_global(p.partial_stats + prow * 2 + 1, lse2);
        }
      } else {
        float denom = l;
        if (p.attn_sink != nullptr && !empty)
          denom += fast_exp2(load_global<float>(p.attn_sink + (h < p.h_q ? h : 0)) * kLog2e - m);
        inv = empty ? 0.f : fast_rcp(denom);
        if (sseg == 0 && h < p.h_q) {
          float ml = empty ? kNegInf : m, ls = lse2;
          if (p.natural_log) {
            ml = empty ? kNegInf : ml * kLn2;
            ls = empty ? kPosInf : ls * kLn2;
          }
          store_global(p.max_logits + b * p.ml_stride_b + s * p.ml_stride_s + h * p.ml_stride_h, ml);
          store_global(p.lse + b * p.lse_stride_b + s * p.lse_stride_s + h * p.lse_stride_h, ls);
        }
      }
      if (sseg == 0) stat_s[srow] = inv;
    }
    __syncthreads();
    static_for<0, HTO>([&](auto ht) {
      const int rbase = (jm * HTO + decltype(ht)::value) * 16 + 4 * g4;
      const f32x4 inv = *reinterpret_cast<const f32x4*>(stat_s + rbase);
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int h = h0 + rbase + e;
        if (h >= p.h_q) continue;
        const long long prow = (static_cast<long long>(split) * p.batch * p.s_q + row) * p.h_q + h;
        unsigned short* dst = p.out + b * p.out_stride_b + s * p.out_stride_s + h * p.out_stride_h;
        static_for<0, NVC>([&](auto c) {
          static_for<0, NG>([&](auto gi) {
            const int dv = decltype(c)::value * CW + jn * CWW + decltype(gi)::value * 32 + 2 * l16;
            const float v0 = o[c.value][ht.value][gi.value][0][e] * inv[e];
            const float v1 = o[c.value][ht.value][gi.value][1][e] * inv[e];
            if (p.num_splits > 1) {
              store_global(p.partial_out + prow * 512 + dv,
                           u32x2{__builtin_bit_cast(unsigned, v0), __builtin_bit_cast(unsigned, v1)});
            } else {
              store_global(dst + dv, pack_bf16x2(v0, v1));
            }
          });
        });
      }
    });
  }

  // S partials -> LDS; each head row's TPR threads sum the d-split planes, scale and mask, and
  // run the online softmax; P (bf16) overwrites the S area once every thread has read it.
  template <class Acc>
  __device__ __forceinline__ void softmax(int cur, int ik, int in_, int im, int l16, int g4, int srow,
                                          int sseg, const Acc& sacc, float& m_run, float& l_run) const {
    using namespace cdna;
    static_for<0, HTS>([&](auto ht) {
      static_for<0, CTS>([&](auto ct) {
        const int r0 = (im * HTS + decltype(ht)::value) * 16 + 4 * g4;
        const int col = (in_ * CTS + decltype(ct)::value) * 16 + l16;
#pragma unroll
        for (int e = 0; e < 4; ++e) sp_s[(ik * BH + r0 + e) * SPP + col] = sacc[ht.value][ct.value][e];
      });
    });
    __syncthreads();
    const int c0 = sseg * CPT;
    const int* tidx = idx_s + cur * BT + c0;
    float v[CPT];
    float mx = kNegInf;
#pragma unroll
    for (int c = 0; c < CPT; ++c) {
      float acc = 0.f;
#pragma unroll
      for (int k = 0; k < SK; ++k) acc += sp_s[(k * BH + srow) * SPP + c0 + c];
      v[c] = tidx[c] >= 0 ? acc * p.scale_log2 : kNegInf;
      mx = __builtin_fmaxf(mx, v[c]);
    }
#pragma unroll
    for (int m = 1; m < TPR; m <<= 1) mx = __builtin_fmaxf(mx, shfl_xor(mx, m));
    const float m_new = __builtin_fmaxf(m_run, mx);
    const float m_use = m_new == kNegInf ? 0.f : m_new;  // all masked so far: no NaN
    const float alpha = fast_exp2(m_run - m_use);
    m_run = m_new;
    float sum = 0.f;
#pragma unroll
    for (int c = 0; c < CPT; ++c) {
      v[c] = fast_exp2(v[c] - m_use);
      sum += v[c];
    }
    l_run = l_run * alpha + sum;
    __syncthreads();  // all S reads are done before P overwrites them
    unsigned short* p_s = reinterpret_cast<unsigned short*>(sp_s);
#pragma unroll
    for (int c = 0; c < CPT; c += 2)
      *reinterpret_cast<unsigned*>(p_s + srow * SPP + c0 + c) = pack_bf16x2(v[c], v[c + 1]);
    if (sseg == 0) alpha_s[srow] = alpha;
  }
};

template <int D, int BH, int BT, int WAVES, int STAGES>
__device__ __forceinline__ void sparse_mla_fwd_cdna(const NsaSparseMlaParams& p) {
  using K = SparseMlaCdna<D, BH, BT, WAVES, STAGES>;
  __shared__ __attribute__((aligned(16))) unsigned char smem[K::L.lds_bytes];
  K k{p};
  k.kv_s = reinterpret_cast<unsigned short*>(smem);
  k.sp_s = reinterpret_cast<float*>(smem + K::L.kv_bytes);
  k.idx_s = reinterpret_cast<int*>(smem + K::L.kv_bytes + K::L.sp_bytes);
  k.alpha_s = reinterpret_cast<float*>(smem + K::L.kv_bytes + K::L.sp_bytes + K::L.idx_bytes);
  k.stat_s = k.alpha_s + BH;
  k.run();
}

// Merges the num_splits partial results of one (row, head): grid (rows, h_q), 128 threads
// (two waves), 4 output dims each. lse = log2 sum 2^lse_i; out = sum 2^(lse_i - lse) * out_i.
__device__ __forceinline__ void sparse_mla_combine_cdna(const NsaSparseMlaParams& p) {
  using namespace cdna;
  constexpr float kLn2 = 0.6931471805599453f, kLog2e = 1.4426950408889634f;
  const long long row = blockIdx.x;
  const int h = static_cast<int>(blockIdx.y);
  const int b = static_cast<int>(row / p.s_q), s = static_cast<int>(row - (row / p.s_q) * p.s_q);
  const long long rows = static_cast<long long>(p.batch) * p.s_q;
  float m = kNegInf, lmax = kNegInf;
  for (int i = 0; i < p.num_splits; ++i) {
    const float* st = p.partial_stats + ((i * rows + row) * p.h_q + h) * 2;
    m = __builtin_fmaxf(m, load_global<float>(st));
    lmax = __builtin_fmaxf(lmax, load_global<float>(st + 1));
  }
  const bool empty = lmax == kNegInf;
  float sum = 0.f;
  if (!empty)
    for (int i = 0; i < p.num_splits; ++i)
      sum += fast_exp2(load_global<float>(p.partial_stats + ((i * rows + row) * p.h_q + h) * 2 + 1) - lmax);
  const float lse2 = empty ? kNegInf : lmax + fast_log2(sum);
  float sink_factor = 1.f;
  if (p.attn_sink != nullptr && !empty)
    sink_factor = fast_rcp(1.f + fast_exp2(load_global<float>(p.attn_sink + h) * kLog2e - lse2));
  f32x4 acc = {0.f, 0.f, 0.f, 0.f};
  const int d0 = static_cast<int>(threadIdx.x) * 4;
  if (!empty) {
    for (int i = 0; i < p.num_splits; ++i) {
      const long long prow = (i * rows + row) * p.h_q + h;
      const float w = fast_exp2(load_global<float>(p.partial_stats + prow * 2 + 1) - lse2) * sink_factor;
      acc += w * load_global<f32x4>(p.partial_out + prow * 512 + d0);
    }
  }
  unsigned short* dst = p.out + b * p.out_stride_b + s * p.out_stride_s + h * p.out_stride_h + d0;
  store_global(dst, u32x2{pack_bf16x2(acc[0], acc[1]), pack_bf16x2(acc[2], acc[3])});
  if (threadIdx.x == 0) {
    float ml = m, ls = lse2;
    if (p.natural_log) {
      ml = empty ? kNegInf : ml * kLn2;
      ls = empty ? kPosInf : ls * kLn2;
    }
    store_global(p.max_logits + b * p.ml_stride_b + s * p.ml_stride_s + h * p.ml_stride_h, ml);
    store_global(p.lse + b * p.lse_stride_b + s * p.lse_stride_s + h * p.lse_stride_h, ls);
  }
}

}  // namespace nsajit
