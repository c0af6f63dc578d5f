// The slice of one query row's topk list a CTA works on: the valid count (topk_length,
// clamped to [0, topk]) cut to this split's [t_begin, t_end), in tiles of BT. Shared by the
// NVIDIA kernels (mma.sync and both wgmma schedules).
#pragma once

#include "sparse_mla_fwd/params.h"

namespace nsajit {

struct NsaRowRange {
  int b, s;            // batch and query position of the row
  int t_begin, t_end;  // topk positions [t_begin, t_end) of this split
  int n_tiles;         // ceil((t_end - t_begin) / BT), 0 when empty
};

template <int BT>
__device__ __forceinline__ NsaRowRange nsa_row_range(const NsaSparseMlaParams& p, long long row, int split) {
  NsaRowRange r;
  r.b = static_cast<int>(row / p.s_q);
  r.s = static_cast<int>(row - static_cast<long long>(r.b) * p.s_q);
  int count = p.topk;
  if (p.topk_length != nullptr) {
    const int len = p.topk_length[r.b * p.len_stride_b + r.s * p.len_stride_s];
    count = len < 0 ? 0 : (len < p.topk ? len : p.topk);
  }
  r.t_begin = split * p.split_len;
  r.t_end = count < r.t_begin + p.split_len ? count : r.t_begin + p.split_len;
  r.n_tiles = r.t_end > r.t_begin ? (r.t_end - r.t_begin + BT - 1) / BT : 0;
  return r;
}

// The kv row at position r of tile `tile` of [t_begin, t_end) (idx_g: the query row's index
// list), or -1 past the range or for an index outside [0, s_kv): such rows are zero-filled and
// their logits masked.
template <int BT>
__device__ __forceinline__ int nsa_kv_index(const NsaSparseMlaParams& p, const int* idx_g, int t_begin,
                                            int t_end, int n_tiles, int tile, int r) {
  const int pos = t_begin + tile * BT + r;
  if (tile >= n_tiles || pos >= t_end) return -1;
  const int v = __ldg(idx_g + pos);
  return (v >= 0 && v < p.s_kv) ? v : -1;
}

// Where a gathered kv row's copies read from, column `col` on: row -1 (invalid) reads row 0's
// address with 0 source bytes (a zero fill that reads nothing), so each 16-byte copy of the row
// needs no select of its own.
__device__ __forceinline__ const unsigned short* nsa_kv_gather_src(const NsaSparseMlaParams& p, int row,
                                                                   int col) {
  return p.kv + static_cast<long long>(row >= 0 ? row : 0) * p.kv_row_stride + col;
}

}  // namespace nsajit
