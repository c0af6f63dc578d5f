#include "runtime/sparse_mla_launch.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "runtime/error.hpp"
#include "runtime/tensor_view.hpp"
#include "templates/sparse_mla_fwd/layout.h"
#include "templates/sparse_mla_fwd/wgmma_layout.h"

namespace nsajit {
namespace {

constexpr std::string_view kOp = "sparse_mla_fwd";

[[noreturn]] void bad(const std::string& what, const std::string& why) {
  fail(ErrorCode::invalid_argument, what, std::string(kOp), why);
}

}  // namespace

SparseMlaProblem validate_sparse_mla(const nsajit_sparse_mla_args& a) {
  SparseMlaProblem pr;
  NsaSparseMlaParams& p = pr.params;

  // q: [s_q, h_q, d_qk] or [b, s_q, h_q, d_qk]
  TensorCheck q{kOp, "q", a.q};
  q.required()
      .dtype(NSAJIT_DTYPE_BF16)
      .ndim_in(3, 4)
      .contiguous_last()
      .nonnegative_strides()
      .aligned(16)
      .strides_multiple_of(8);
  const bool batched = a.q.ndim == 4;
  const int o = batched ? 1 : 0;  // offset of the s_q axis
  const std::int64_t batch = batched ? a.q.shape[0] : 1, s_q = a.q.shape[o], h_q = a.q.shape[o + 1],
                     d_qk = a.q.shape[o + 2];
  if (d_qk != 576 && d_qk != 512)
    q.fail_with(fmt::format("d_qk (last dimension) must be 576 or 512, got {}", d_qk));
  if (h_q < 1 || h_q > 1024) q.fail_with(fmt::format("h_q must be in [1, 1024], got {}", h_q));
  if (batch < 1 || s_q < 1)
    q.fail_with(fmt::format("batch and s_q must be >= 1, got batch {} s_q {}", batch, s_q));
  if (batch * s_q > std::numeric_limits<int>::max())
    q.fail_with(fmt::format("batch * s_q = {} exceeds {}", batch * s_q, std::numeric_limits<int>::max()));
  if (a.d_v != 512) bad("checking argument 'd_v'", fmt::format("d_v must be 512, got {}", a.d_v));
  if (!std::isfinite(a.sm_scale))
    bad("checking argument 'sm_scale'", fmt::format("sm_scale must be finite, got {}", a.sm_scale));
  if ((a.flags & ~static_cast<std::uint32_t>(NSAJIT_LSE_NATURAL_LOG)) != 0)
    bad("checking argument 'flags'", fmt::format("unknown flag bits 0x{:x}", a.flags));

  // kv: [s_kv, 1, d_qk] or [s_kv, d_qk]; the row stride may be padded
  TensorCheck kv{kOp, "kv", a.kv};
  kv.required()
      .dtype(NSAJIT_DTYPE_BF16)
      .ndim_in(2, 3)
      .contiguous_last()
      .nonnegative_strides()
      .aligned(16)
      .strides_multiple_of(8);
  if (a.kv.ndim == 3) kv.dim(1, 1, "h_kv (MQA: one kv head)");
  kv.dim(-1, d_qk, "d_qk, as in q");
  const std::int64_t s_kv = a.kv.shape[0];
  if (s_kv < 1 || s_kv > std::numeric_limits<int>::max())
    kv.fail_with(fmt::format("s_kv must be in [1, 2^31), got {}", s_kv));
  if (a.kv.strides[0] < d_qk && s_kv > 1)
    kv.fail_with(fmt::format("row stride {} is smaller than d_qk {}", a.kv.strides[0], d_qk));

  // indices: [s_q, 1, topk], [s_q, topk] or [b, s_q, 1, topk]
  TensorCheck idx{kOp, "indices", a.indices};
  idx.required()
      .dtype(NSAJIT_DTYPE_INT32)
      .ndim_in(batched ? 4 : 2, batched ? 4 : 3)
      .contiguous_last()
      .nonnegative_strides()
      .aligned(4);
  if (batched) idx.dim(0, batch, "batch, as in q");
  idx.dim(batched ? 1 : 0, s_q, "s_q, as in q");
  if (a.indices.ndim == (batched ? 4 : 3)) idx.dim(-2, 1, "h_kv (one kv head)");
  const std::int64_t topk = a.indices.shape[a.indices.ndim - 1];
  if (topk < 1 || topk > kMaxTopk)
    idx.fail_with(fmt::format("topk (last dimension) must be in [1, {}], got {}", kMaxTopk, topk));

  // optional topk_length: [s_q] or [b, s_q]
  TensorCheck len{kOp, "topk_length", a.topk_length};
  if (len.present()) {
    len.dtype(NSAJIT_DTYPE_INT32).ndim_in(batched ? 2 : 1, batched ? 2 : 1).nonnegative_strides().aligned(4);
    if (batched) len.dim(0, batch, "batch, as in q");
    len.dim(-1, s_q, "s_q, as in q");
  }
  // optional attn_sink: [h_q]
  TensorCheck sink{kOp, "attn_sink", a.attn_sink};
  if (sink.present())
    sink.dtype(NSAJIT_DTYPE_FP32).ndim_in(1, 1).dim(0, h_q, "h_q, as in q").contiguous_last().aligned(4);

  // outputs
  TensorCheck out{kOp, "out", a.out};
  out.required()
      .dtype(NSAJIT_DTYPE_BF16)
      .ndim_in(a.q.ndim, a.q.ndim)
      .contiguous_last()
      .nonnegative_strides()
      .aligned(16)
      .strides_multiple_of(8);
  if (batched) out.dim(0, batch, "batch, as in q");
  out.dim(o, s_q, "s_q, as in q").dim(o + 1, h_q, "h_q, as in q").dim(o + 2, 512, "d_v");
  TensorCheck ml{kOp, "max_logits", a.max_logits}, lse{kOp, "lse", a.lse};
  for (const TensorCheck* c : {&ml, &lse}) {
    c->required()
        .dtype(NSAJIT_DTYPE_FP32)
        .ndim_in(a.q.ndim - 1, a.q.ndim - 1)
        .nonnegative_strides()
        .aligned(4);
    if (batched) c->dim(0, batch, "batch, as in q");
    c->dim(o, s_q, "s_q, as in q").dim(o + 1, h_q, "h_q, as in q");
  }

  p.q = static_cast<const unsigned short*>(a.q.data);
  p.kv = static_cast<const unsigned short*>(a.kv.data);
  p.indices = static_cast<const int*>(a.indices.data);
  p.topk_length = static_cast<const int*>(a.topk_length.data);
  p.attn_sink = static_cast<const float*>(a.attn_sink.data);
  p.out = static_cast<unsigned short*>(a.out.data);
  p.max_logits = static_cast<float*>(a.max_logits.data);
  p.lse = static_cast<float*>(a.lse.data);
  p.q_stride_b = batched ? a.q.strides[0] : 0;
  p.q_stride_s = a.q.strides[o];
  p.q_stride_h = a.q.strides[o + 1];
  p.kv_row_stride = a.kv.strides[0];
  p.idx_stride_b = batched ? a.indices.strides[0] : 0;
  p.idx_stride_s = a.indices.strides[batched ? 1 : 0];
  p.len_stride_b = len.present() && batched ? a.topk_length.strides[0] : 0;
  p.len_stride_s = len.present() ? a.topk_length.strides[a.topk_length.ndim - 1] : 0;
  p.out_stride_b = batched ? a.out.strides[0] : 0;
  p.out_stride_s = a.out.strides[o];
  p.out_stride_h = a.out.strides[o + 1];
  p.ml_stride_b = batched ? a.max_logits.strides[0] : 0;
  p.ml_stride_s = a.max_logits.strides[o];
  p.ml_stride_h = a.max_logits.strides[o + 1];
  p.lse_stride_b = batched ? a.lse.strides[0] : 0;
  p.lse_stride_s = a.lse.strides[o];
  p.lse_stride_h = a.lse.strides[o + 1];
  p.batch = static_cast<int>(batch);
  p.s_q = static_cast<int>(s_q);
  p.h_q = static_cast<int>(h_q);
  p.s_kv = static_cast<int>(s_kv);
  p.topk = static_cast<int>(topk);
  p.num_splits = 1;
  p.split_len = static_cast<int>(topk);
  p.scale_log2 = a.sm_scale * 1.4426950408889634f;
  p.natural_log = (a.flags & NSAJIT_LSE_NATURAL_LOG) != 0 ? 1 : 0;
  pr.d_qk = static_cast<int>(d_qk);
  return pr;
}

bool sparse_mla_grid_leaves_sms_idle(long long ctas, int multiprocessors, int blocks_per_sm) {
  const long long slots = static_cast<long long>(multiprocessors) * std::max(blocks_per_sm, 1);
  return ctas > 0 && multiprocessors > 0 && ctas < slots;
}

int choose_topk_splits(long long ctas, int multiprocessors, int topk, int block_topk, int blocks_per_sm) {
  const long long slots = static_cast<long long>(multiprocessors) * std::max(blocks_per_sm, 1);
  if (!sparse_mla_grid_leaves_sms_idle(ctas, multiprocessors, blocks_per_sm)) return 1;
  const int tiles = (topk + block_topk - 1) / block_topk;
  // As many splits as keep every CTA in one wave of the slots. (Rounding up at one CTA per SM, the
  // session-2 rule, lost once the combine got cheap: H100, s_q 32, h_q 128: 3 splits 0.076 ms,
  // 2 splits 0.060; h_q 16 w12: 5 splits 0.038, 4 splits 0.031. docs/perf-log.md, session 8.)
  const long long want = slots / ctas;
  const long long most = std::max(1, tiles / 2) * 1LL;  // each split keeps >= 2 tiles to pipeline
  return static_cast<int>(std::max<long long>(1, std::min({want, most, 64LL})));
}

std::size_t sparse_mla_workspace_bytes(const SparseMlaProblem& pr, int splits) {
  if (splits <= 1) return 0;
  const auto per_split = static_cast<std::size_t>(pr.rows()) * static_cast<std::size_t>(pr.params.h_q);
  return static_cast<std::size_t>(splits) * per_split * (512 + 2) * sizeof(float);
}

int sparse_mla_blocks_per_sm(const Variant& v) {
  constexpr int kThreadsPerSm = 2048;
  constexpr long long kSharedPerSm = 233472;  // 228 KB
  constexpr long long kReservedPerBlock = 1024;
  const SparseMlaBlock b = sparse_mla_block(v);
  const long long by_threads = kThreadsPerSm / std::max(b.threads, 1);
  const long long by_shared = kSharedPerSm / (static_cast<long long>(b.shared_bytes) + kReservedPerBlock);
  return static_cast<int>(std::clamp<long long>(std::min(by_threads, by_shared), 1, 2));
}

SparseMlaBlock sparse_mla_block(const Variant& v) {
  const int d = v.geometry.d_qk, bh = v.get("bh"), bt = v.get("bt"), w = v.get("w"), st = v.get("st");
  // wgmma variants (knob mma = 1, transposed: 2) have their own block size and shared memory.
  const int mma = v.get_or("mma", 0), sx = v.get_or("sx", 1), pr = v.get_or("pr", 0);
  if (mma == 1) {
    const NsaSparseMlaWgmmaLayout l = nsa_sparse_mla_wgmma_layout(d, bh, bt, w, st);
    return {l.threads, l.smem_bytes};
  }
  if (mma == 2) {  // transposed wgmma (sm90_wgmma_t.cuh)
    const NsaSparseMlaWgmmaTLayout l = nsa_sparse_mla_wgmma_t_layout(d, bh, bt, w, st, sx, pr);
    return {l.threads, l.smem_bytes};
  }
  const NsaSparseMlaLayout l = nsa_sparse_mla_layout(d, bh, bt, w, st);
  return {l.threads, l.smem_bytes};
}

SparseMlaLaunch plan_sparse_mla(const SparseMlaProblem& pr, const Variant& v, int splits, void* workspace) {
  if (v.family != Family::sparse_mla_fwd || v.target.vendor != Vendor::nvidia)
    fail(ErrorCode::invalid_argument, "planning " + v.name(), std::string(kOp),
         "not an NVIDIA sparse_mla_fwd variant");
  if (v.geometry.d_qk != pr.d_qk)
    fail(ErrorCode::invalid_argument, "planning " + v.name(), std::string(kOp),
         fmt::format("variant is built for d_qk {} but q has d_qk {}", v.geometry.d_qk, pr.d_qk));
  const int bh = v.get("bh"), bt = v.get("bt");
  const SparseMlaBlock block = sparse_mla_block(v);
  const int block_threads = block.threads;
  const int block_smem = block.shared_bytes;
  SparseMlaLaunch launch;
  launch.params = pr.params;
  NsaSparseMlaParams& p = launch.params;
  splits = std::max(1, splits);
  // Each split covers a whole number of tiles.
  const int tiles = (p.topk + bt - 1) / bt;
  const int tiles_per_split = (tiles + splits - 1) / splits;
  splits = (tiles + tiles_per_split - 1) / tiles_per_split;
  p.num_splits = splits;
  p.split_len = splits > 1 ? tiles_per_split * bt : p.topk;
  if (splits > 1) {
    if (workspace == nullptr)
      fail(ErrorCode::internal, "planning " + v.name(), std::string(kOp), "a topk split needs a workspace");
    const auto per_split = static_cast<std::size_t>(pr.rows()) * static_cast<std::size_t>(p.h_q);
    p.partial_out = static_cast<float*>(workspace);
    p.partial_stats = p.partial_out + static_cast<std::size_t>(splits) * per_split * 512;
  }
  launch.grid = Dim3{static_cast<unsigned>(pr.rows()), static_cast<unsigned>((p.h_q + bh - 1) / bh),
                     static_cast<unsigned>(splits)};
  launch.block = Dim3{static_cast<unsigned>(block_threads), 1, 1};
  launch.shared_bytes = static_cast<unsigned>(block_smem);
  launch.needs_combine = splits > 1;
  launch.combine_grid = Dim3{static_cast<unsigned>(pr.rows()), static_cast<unsigned>(p.h_q), 1};
  launch.combine_block = Dim3{128, 1, 1};
  return launch;
}

}  // namespace nsajit
