#include "tests/reference/sparse_mla_reference.hpp"

#include <cmath>
#include <limits>
#include <thread>

#include "tests/reference/bf16_host.hpp"

namespace nsajit::reference {

namespace {
void one_row(const SparseMlaProblem& p, int b, int s, int h0, int h1, SparseMlaResult& r) {
  const double log2e = 1.4426950408889634;
  const long row = static_cast<long>(b) * p.s_q + s;
  int count = p.topk;
  if (!p.topk_length.empty()) count = std::max(0, std::min(p.topk, p.topk_length[row]));
  std::vector<int> valid;
  for (int t = 0; t < count; ++t) {
    int idx = p.indices[row * p.topk + t];
    if (idx >= 0 && idx < p.s_kv) valid.push_back(idx);
  }
  std::vector<double> qf(p.d_qk), logits(valid.size());
  for (int h = h0; h < h1; ++h) {
    const long qrow = row * p.h_q + h;
    const long q_row_stride = p.q_row_stride < 0 ? static_cast<long>(p.h_q) * p.d_qk : p.q_row_stride;
    const std::uint16_t* qp = &p.q[row * q_row_stride + static_cast<long>(h) * p.d_qk];
    for (int d = 0; d < p.d_qk; ++d) qf[d] = bf16_to_float(qp[d]);
    double mx = -std::numeric_limits<double>::infinity();
    for (std::size_t j = 0; j < valid.size(); ++j) {
      const std::uint16_t* k = &p.kv[static_cast<long>(valid[j]) * p.kv_row_stride];
      double dot = 0;
      for (int d = 0; d < p.d_qk; ++d) dot += qf[d] * bf16_to_float(k[d]);
      logits[j] = dot * p.sm_scale * log2e;
      mx = std::max(mx, logits[j]);
    }
    float* out = &r.out[qrow * p.d_v];
    if (valid.empty()) {
      for (int d = 0; d < p.d_v; ++d) out[d] = 0.0f;
      r.max_logits[qrow] = -std::numeric_limits<float>::infinity();
      r.lse[qrow] =
          p.natural_log ? std::numeric_limits<float>::infinity() : -std::numeric_limits<float>::infinity();
      continue;
    }
    double sum = 0;
    std::vector<double> acc(p.d_v, 0.0);
    for (std::size_t j = 0; j < valid.size(); ++j) {
      double w = std::exp2(logits[j] - mx);
      sum += w;
      const std::uint16_t* v = &p.kv[static_cast<long>(valid[j]) * p.kv_row_stride];
      for (int d = 0; d < p.d_v; ++d) acc[d] += w * bf16_to_float(v[d]);
    }
    const double lse2 = mx + std::log2(sum);
    // The sink joins the denominator only: out uses lse' = log2(2^lse + 2^(sink*log2e)).
    double denom = sum;
    if (!p.attn_sink.empty()) denom += std::exp2(p.attn_sink[h] * log2e - mx);
    for (int d = 0; d < p.d_v; ++d) out[d] = static_cast<float>(acc[d] / denom);
    const double to_out = p.natural_log ? 1.0 / log2e : 1.0;
    r.max_logits[qrow] = static_cast<float>(mx * to_out);
    r.lse[qrow] = static_cast<float>(lse2 * to_out);
  }
}
}  // namespace

SparseMlaResult sparse_mla_fwd(const SparseMlaProblem& p, int threads, const std::vector<long>& row_subset) {
  SparseMlaResult r;
  const long all_rows = static_cast<long>(p.batch) * p.s_q;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  r.out.assign(all_rows * p.h_q * p.d_v, nan);
  r.max_logits.assign(all_rows * p.h_q, nan);
  r.lse.assign(all_rows * p.h_q, nan);
  std::vector<long> row_list = row_subset;
  if (row_list.empty()) {
    row_list.resize(all_rows);
    for (long i = 0; i < all_rows; ++i) row_list[i] = i;
  }
  const long rows = static_cast<long>(row_list.size());
  auto work = [&](long begin, long end) {
    for (long j = begin; j < end; ++j) {
      const long i = row_list[j];
      one_row(p, static_cast<int>(i / p.s_q), static_cast<int>(i % p.s_q), 0, p.h_q, r);
    }
  };
  if (threads <= 1 || rows < 2) {
    work(0, rows);
  } else {
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) pool.emplace_back(work, rows * t / threads, rows * (t + 1) / threads);
    for (auto& th : pool) th.join();
  }
  return r;
}

}  // namespace nsajit::reference
