// The per-row outputs of sparse_mla_fwd (DESIGN.md section 2), shared by the NVIDIA kernels'
// epilogues: the output scale with the attention sink, max_logits and lse in base 2 or natural
// log (an empty row: max -inf, lse -inf in base 2 and +inf in natural log), and the partial
// statistics a topk split leaves for sparse_mla_combine.
#pragma once

#include "common/nv_ptx.cuh"
#include "sparse_mla_fwd/params.h"

namespace nsajit {

// Inside the kernels logits are in base 2 (scale_log2 folds log2(e) in).
constexpr float kSparseMlaLn2 = 0.6931471805599453f;
constexpr float kSparseMlaLog2e = 1.4426950408889634f;

// log2 of the row's softmax denominator given its running max m and sum l (relative to m).
__device__ __forceinline__ float row_lse2(float m, float l, bool empty) {
  return empty ? neg_inf() : m + __log2f(l);
}

// 1 / (l + exp2(sink - m)): what the accumulated P V of one head is multiplied by; 0 for an
// empty row (every index invalid), whose output is then zero.
__device__ __forceinline__ float output_scale(const NsaSparseMlaParams& p, int head, float l, float m,
                                              bool empty) {
  float denom = l;
  if (p.attn_sink != nullptr && !empty) denom += fast_exp2(p.attn_sink[head] * kSparseMlaLog2e - m);
  return empty ? 0.f : 1.f / denom;
}

__device__ __forceinline__ void store_row_stats(const NsaSparseMlaParams& p, long long b, long long s,
                                                int head, float m, float lse2, bool empty) {
  float ml = empty ? neg_inf() : m, ls = lse2;
  if (p.natural_log) {
    ml = empty ? neg_inf() : ml * kSparseMlaLn2;
    ls = empty ? pos_inf() : ls * kSparseMlaLn2;
  }
  p.max_logits[b * p.ml_stride_b + s * p.ml_stride_s + head * p.ml_stride_h] = ml;
  p.lse[b * p.lse_stride_b + s * p.lse_stride_s + head * p.lse_stride_h] = ls;
}

// A topk split's (max, lse) of one head row, prow = (split, row, head) flattened.
__device__ __forceinline__ void store_partial_stats(const NsaSparseMlaParams& p, long long prow, float m,
                                                    float lse2, bool empty) {
  p.partial_stats[prow * 2] = empty ? neg_inf() : m;
  p.partial_stats[prow * 2 + 1] = lse2;
}

}  // namespace nsajit
