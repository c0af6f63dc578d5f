// Kernel parameters of sparse_mla_fwd, passed by value. Plain C layout: the same header is
// compiled by the host (g++), NVRTC and hipRTC, so it uses builtin types only.
// Strides are in elements; every innermost dimension is contiguous (stride 1).
#pragma once

struct NsaSparseMlaParams {
  const unsigned short* q;       // bf16 [batch, s_q, h_q, d_qk]
  const unsigned short* kv;      // bf16 [s_kv, kv_row_stride]
  const int* indices;            // int32 [batch, s_q, topk]
  const int* topk_length;        // int32 [batch, s_q] or null
  const float* attn_sink;        // fp32 [h_q] or null
  unsigned short* out;           // bf16 [batch, s_q, h_q, d_v]
  float* max_logits;             // fp32 [batch, s_q, h_q]
  float* lse;                    // fp32 [batch, s_q, h_q]
  float* partial_out;            // fp32 [num_splits, rows, h_q, d_v] workspace (num_splits > 1)
  float* partial_stats;          // fp32 [num_splits, rows, h_q, 2] workspace: (max, lse)

  long long q_stride_b, q_stride_s, q_stride_h;
  long long kv_row_stride;
  long long idx_stride_b, idx_stride_s;
  long long len_stride_b, len_stride_s;
  long long out_stride_b, out_stride_s, out_stride_h;
  long long ml_stride_b, ml_stride_s, ml_stride_h;
  long long lse_stride_b, lse_stride_s, lse_stride_h;

  int batch, s_q, h_q, s_kv, topk;
  int num_splits;       // topk range split across blockIdx.z (1 = no split, no workspace)
  int split_len;        // topk entries per split, a multiple of the tile
  float scale_log2;     // sm_scale * log2(e): logits in base 2
  int natural_log;      // 1: lse/max_logits in natural log, empty rows lse = +inf
};
