// CPU reference for sparse_mla_fwd (DESIGN.md §1), accumulating in double: the test oracle.
#pragma once

#include <cstdint>
#include <vector>

namespace nsajit::reference {

// Host-side problem; bf16 values are given as raw bits (what the GPU reads).
struct SparseMlaProblem {
  int batch = 1;  // leading batch dimension (1 = none)
  int s_q = 1, h_q = 16, d_qk = 576, d_v = 512;
  int s_kv = 1, kv_row_stride = 576;  // elements between kv rows (>= d_qk: padded rows)
  int topk = 1;
  float sm_scale = 0.0f;
  bool natural_log = false;
  std::vector<std::uint16_t> q;           // [batch, s_q, h_q, d_qk]; rows q_row_stride apart
  long q_row_stride = -1;                 // elements between (b, s) rows; -1 = h_q * d_qk (dense)
  std::vector<std::uint16_t> kv;          // [s_kv, kv_row_stride]
  std::vector<std::int32_t> indices;      // [batch, s_q, topk], dense
  std::vector<std::int32_t> topk_length;  // empty or [batch * s_q]
  std::vector<float> attn_sink;           // empty or [h_q]
};

struct SparseMlaResult {
  std::vector<float> out;         // [batch, s_q, h_q, d_v]
  std::vector<float> max_logits;  // [batch, s_q, h_q]
  std::vector<float> lse;         // [batch, s_q, h_q]
};

// Rows are (b * s_q + s). With `rows` non-empty only those rows are computed (the others
// stay NaN): long sweeps check a sample. Work is spread over `threads` threads.
SparseMlaResult sparse_mla_fwd(const SparseMlaProblem& p, int threads = 1,
                               const std::vector<long>& rows = {});

}  // namespace nsajit::reference
