#include "tuner/sparse_mla_check.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <thread>

#include "runtime/error.hpp"
#include "runtime/sparse_mla_launch.hpp"
#include "runtime/sparse_mla_runner.hpp"
#include "runtime/tensor_view.hpp"
#include "tests/reference/bf16_host.hpp"

namespace nsajit {

using reference::bf16_to_float;
using reference::float_to_bf16;

struct SparseMlaFixture::Impl {
  Device& device;
  SparseMlaCase c;
  reference::SparseMlaProblem problem;
  reference::SparseMlaResult expected;
  std::vector<long> compared_rows;
  DeviceMemory q, kv, idx, len, sink, out, ml, lse, workspace;
  nsajit_sparse_mla_args args{};
};

namespace {

template <class T>
DeviceMemory upload(Device& d, const std::vector<T>& host) {
  DeviceMemory m = d.allocate(std::max<std::size_t>(16, host.size() * sizeof(T)));
  if (!host.empty()) d.copy_to_device(m.get(), host.data(), host.size() * sizeof(T));
  return m;
}

}  // namespace

SparseMlaFixture::SparseMlaFixture(Device& device, const SparseMlaCase& c, std::uint64_t seed)
    : impl_(std::make_unique<Impl>(Impl{device, c, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}})) {
  auto& P = impl_->problem;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  P.batch = c.batch;
  P.s_q = c.s_q;
  P.h_q = c.h_q;
  P.d_qk = c.d_qk;
  P.s_kv = c.s_kv;
  P.kv_row_stride = c.d_qk + c.kv_pad;
  P.topk = c.topk;
  P.sm_scale = 1.0f / std::sqrt(static_cast<float>(c.d_qk));
  P.natural_log = c.natural_log;
  const long rows = static_cast<long>(c.batch) * c.s_q;
  const long q_rows = c.shared_q_rows ? 1 : rows;
  P.q_row_stride = c.shared_q_rows ? 0 : static_cast<long>(c.h_q) * c.d_qk;
  P.q.resize(q_rows * c.h_q * c.d_qk);
  for (auto& x : P.q) x = float_to_bf16(normal(rng));
  P.kv.resize(static_cast<std::size_t>(c.s_kv) * P.kv_row_stride);
  for (auto& x : P.kv) x = float_to_bf16(normal(rng));
  if (c.rising_logits)
    for (int v = 0; v < c.s_kv; ++v) {
      const float f = 1.f + 7.f * static_cast<float>(v) / static_cast<float>(c.s_kv);
      for (int d = 0; d < c.d_qk; ++d) {
        auto& x = P.kv[static_cast<std::size_t>(v) * P.kv_row_stride + d];
        x = float_to_bf16(bf16_to_float(x) * f);
      }
    }
  P.indices.resize(rows * c.topk);
  std::uniform_int_distribution<int> pos(0, c.s_kv - 1);
  std::uniform_real_distribution<double> coin(0.0, 1.0);
  for (long r = 0; r < rows; ++r) {
    // Distinct positions per row when s_kv allows (as engines produce), else with repeats.
    int* row = &P.indices[r * c.topk];
    if (c.topk <= c.s_kv / 2) {
      std::vector<int> seen;
      for (int t = 0; t < c.topk; ++t) {
        int v = pos(rng);
        while (std::find(seen.begin(), seen.end(), v) != seen.end() && seen.size() < 64) v = pos(rng);
        if (seen.size() < 64) seen.push_back(v);
        row[t] = v;
      }
    } else {
      for (int t = 0; t < c.topk; ++t) row[t] = pos(rng);
    }
    for (int t = 0; t < c.topk; ++t)
      if (coin(rng) < c.invalid_fraction)
        row[t] = coin(rng) < 0.5 ? -1 : c.s_kv + static_cast<int>(coin(rng) * 1000);
  }
  if (c.rising_logits)
    for (long r = 0; r < rows; ++r) std::sort(&P.indices[r * c.topk], &P.indices[r * c.topk] + c.topk);
  if (c.empty_row)
    for (int t = 0; t < c.topk; ++t) P.indices[t] = (t % 2) ? -1 : c.s_kv;
  if (c.with_lengths) {
    std::uniform_int_distribution<int> len(0, c.topk);
    P.topk_length.resize(rows);
    for (auto& l : P.topk_length) l = len(rng);
    P.topk_length[0] = 0;
    if (rows > 1) P.topk_length[rows - 1] = c.topk;
  }
  if (c.with_sink) {
    P.attn_sink.resize(c.h_q);
    for (auto& s : P.attn_sink) s = normal(rng);
  }
  auto& cmp = impl_->compared_rows;
  if (c.reference_rows > 0 && c.reference_rows < rows) {
    std::uniform_int_distribution<long> any(0, rows - 1);
    cmp = {0, rows - 1};
    while (static_cast<int>(cmp.size()) < c.reference_rows) cmp.push_back(any(rng));
  }
  const int threads = static_cast<int>(std::max(1u, std::min(16u, std::thread::hardware_concurrency())));
  impl_->expected = reference::sparse_mla_fwd(P, threads, cmp);

  // Device buffers and the C ABI description of the call.
  Impl& m = *impl_;
  m.q = upload(device, P.q);
  m.kv = upload(device, P.kv);
  m.idx = upload(device, P.indices);
  m.len = upload(device, P.topk_length);
  m.sink = upload(device, P.attn_sink);
  m.out = device.allocate(rows * c.h_q * 512 * 2);
  m.ml = device.allocate(rows * c.h_q * 4);
  m.lse = device.allocate(rows * c.h_q * 4);
  const std::int64_t B = c.batch, S = c.s_q, H = c.h_q, D = c.d_qk, K = c.topk;
  const std::int64_t qs = c.shared_q_rows ? 0 : H * D;
  auto& a = m.args;
  if (c.batch > 1) {
    a.q = make_tensor(m.q.get(), NSAJIT_DTYPE_BF16, {B, S, H, D}, {S * qs, qs, D, 1});
    a.indices = make_tensor(m.idx.get(), NSAJIT_DTYPE_INT32, {B, S, 1, K}, {S * K, K, K, 1});
    a.out = make_tensor(m.out.get(), NSAJIT_DTYPE_BF16, {B, S, H, 512}, {S * H * 512, H * 512, 512, 1});
    a.max_logits = make_tensor(m.ml.get(), NSAJIT_DTYPE_FP32, {B, S, H}, {S * H, H, 1});
    a.lse = make_tensor(m.lse.get(), NSAJIT_DTYPE_FP32, {B, S, H}, {S * H, H, 1});
    if (c.with_lengths) a.topk_length = make_tensor(m.len.get(), NSAJIT_DTYPE_INT32, {B, S}, {S, 1});
  } else {
    a.q = make_tensor(m.q.get(), NSAJIT_DTYPE_BF16, {S, H, D}, {qs, D, 1});
    a.indices = make_tensor(m.idx.get(), NSAJIT_DTYPE_INT32, {S, 1, K}, {K, K, 1});
    a.out = make_tensor(m.out.get(), NSAJIT_DTYPE_BF16, {S, H, 512}, {H * 512, 512, 1});
    a.max_logits = make_tensor(m.ml.get(), NSAJIT_DTYPE_FP32, {S, H}, {H, 1});
    a.lse = make_tensor(m.lse.get(), NSAJIT_DTYPE_FP32, {S, H}, {H, 1});
    if (c.with_lengths) a.topk_length = make_tensor(m.len.get(), NSAJIT_DTYPE_INT32, {S}, {1});
  }
  a.kv = make_tensor(m.kv.get(), NSAJIT_DTYPE_BF16, {c.s_kv, 1, D}, {D + c.kv_pad, D + c.kv_pad, 1});
  if (c.with_sink) a.attn_sink = make_tensor(m.sink.get(), NSAJIT_DTYPE_FP32, {H}, {1});
  a.sm_scale = P.sm_scale;
  a.d_v = 512;
  a.flags = c.natural_log ? NSAJIT_LSE_NATURAL_LOG : 0u;
  if (c.splits > 1) {
    const SparseMlaProblem pr = validate_sparse_mla(a);
    m.workspace = device.allocate(sparse_mla_workspace_bytes(pr, c.splits));
  }
}

SparseMlaFixture::~SparseMlaFixture() = default;

const SparseMlaCase& SparseMlaFixture::spec() const {
  return impl_->c;
}

const nsajit_sparse_mla_args& SparseMlaFixture::args() const {
  return impl_->args;
}

void SparseMlaFixture::poison_outputs() {
  Impl& m = *impl_;
  const std::size_t n_row = static_cast<std::size_t>(m.c.batch) * m.c.s_q * m.c.h_q;
  m.device.fill_bytes(m.out.get(), 0xff, n_row * 512 * 2);  // bf16 0xffff = NaN
  m.device.fill_bytes(m.ml.get(), 0xff, n_row * 4);
  m.device.fill_bytes(m.lse.get(), 0xff, n_row * 4);
}

bool SparseMlaFixture::outputs_untouched() {
  Impl& m = *impl_;
  m.device.synchronize();
  const std::size_t n_row = static_cast<std::size_t>(m.c.batch) * m.c.s_q * m.c.h_q;
  std::vector<std::uint8_t> bytes(n_row * 512 * 2);
  m.device.copy_to_host(bytes.data(), m.out.get(), bytes.size());
  bool all = std::all_of(bytes.begin(), bytes.end(), [](std::uint8_t b) { return b == 0xff; });
  bytes.resize(n_row * 4);
  for (const DeviceMemory* d : {&m.ml, &m.lse}) {
    m.device.copy_to_host(bytes.data(), d->get(), bytes.size());
    all = all && std::all_of(bytes.begin(), bytes.end(), [](std::uint8_t b) { return b == 0xff; });
  }
  return all;
}

SparseMlaCheck SparseMlaFixture::run_and_compare(LoadedVariant& loaded, void* stream) {
  Impl& m = *impl_;
  return run_and_compare([&](const nsajit_sparse_mla_args& a) {
    const SparseMlaProblem pr = validate_sparse_mla(a);
    const SparseMlaLaunch plan = plan_sparse_mla(pr, loaded.variant, m.c.splits, m.workspace.get());
    launch_sparse_mla(m.device, loaded, plan, stream);
  });
}

SparseMlaCheck SparseMlaFixture::run_and_compare(
    const std::function<void(const nsajit_sparse_mla_args&)>& call) {
  Impl& m = *impl_;
  const auto& c = m.c;
  const long rows = static_cast<long>(c.batch) * c.s_q;
  const std::size_t n_out = static_cast<std::size_t>(rows) * c.h_q * 512,
                    n_row = static_cast<std::size_t>(rows) * c.h_q;
  poison_outputs();
  call(m.args);
  m.device.synchronize();

  std::vector<std::uint16_t> out(n_out);
  std::vector<float> ml(n_row), lse(n_row);
  m.device.copy_to_host(out.data(), m.out.get(), n_out * 2);
  m.device.copy_to_host(ml.data(), m.ml.get(), n_row * 4);
  m.device.copy_to_host(lse.data(), m.lse.get(), n_row * 4);

  SparseMlaCheck r;
  for (auto x : out) r.unwritten += (x == 0xffff);
  for (std::size_t i = 0; i < n_row; ++i) r.unwritten += std::isnan(ml[i]) + std::isnan(lse[i]);

  const auto& E = m.expected;
  double num = 0, den = 0;
  long long bad_inf = 0;
  auto compare_row = [&](long row) {
    for (int h = 0; h < c.h_q; ++h) {
      const std::size_t rh = static_cast<std::size_t>(row) * c.h_q + h;
      for (int d = 0; d < 512; ++d) {
        const double e = E.out[rh * 512 + d], g = bf16_to_float(out[rh * 512 + d]);
        num += (g - e) * (g - e);
        den += e * e;
      }
      for (auto [got, exp, worst] : {std::tuple{ml[rh], E.max_logits[rh], &r.max_logits_max_abs},
                                     std::tuple{lse[rh], E.lse[rh], &r.lse_max_abs}}) {
        if (std::isinf(exp) || std::isinf(got)) {
          bad_inf += !(got == exp);
        } else {
          *worst = std::max(*worst, static_cast<double>(std::fabs(got - exp)));
        }
      }
    }
  };
  if (m.compared_rows.empty()) {
    for (long row = 0; row < rows; ++row) compare_row(row);
  } else {
    for (long row : m.compared_rows) compare_row(row);
  }
  r.out_rel_err = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  r.ok = r.unwritten == 0 && bad_inf == 0 && r.out_rel_err <= 1e-2 && r.lse_max_abs <= 1e-3 &&
         r.max_logits_max_abs <= 1e-3 && std::isfinite(r.out_rel_err);
  r.detail = fmt::format("rel_err {:.2e} lse {:.2e} max {:.2e} unwritten {} inf_mismatch {}", r.out_rel_err,
                         r.lse_max_abs, r.max_logits_max_abs, r.unwritten, bad_inf);
  return r;
}

}  // namespace nsajit
