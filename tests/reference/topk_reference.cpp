#include "tests/reference/topk_reference.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <thread>

namespace nsajit::reference {

bool topk_ranks_before(float a, std::int32_t pa, float b, std::int32_t pb) {
  const bool a_nan = std::isnan(a), b_nan = std::isnan(b);
  if (a_nan != b_nan) return b_nan;  // a number ranks before NaN
  if (!a_nan && a != b) return a > b;
  return pa < pb;  // equal (including -0 == +0, NaN with NaN): lower position first
}

int topk_valid_length(const TopkProblem& p, int row) {
  if (p.lengths.empty()) return p.length;
  return std::clamp(p.lengths[static_cast<std::size_t>(row)], 0, p.length);
}

namespace {

void select_row(const TopkProblem& p, int row, std::vector<std::int32_t>& out) {
  const int n = topk_valid_length(p, row);
  const float* s = p.scores.data() + static_cast<std::size_t>(row) * static_cast<std::size_t>(p.row_stride);
  std::vector<std::int32_t> pos(static_cast<std::size_t>(n));
  std::iota(pos.begin(), pos.end(), 0);
  auto before = [s](std::int32_t a, std::int32_t b) { return topk_ranks_before(s[a], a, s[b], b); };
  const int take = std::min(n, p.k);
  std::partial_sort(pos.begin(), pos.begin() + take, pos.end(), before);
  std::int32_t* dst = out.data() + static_cast<std::size_t>(row) * static_cast<std::size_t>(p.k);
  std::fill(dst, dst + p.k, -1);
  std::copy(pos.begin(), pos.begin() + take, dst);
}

}  // namespace

std::vector<std::int32_t> topk_select(const TopkProblem& p, int threads) {
  std::vector<std::int32_t> out(static_cast<std::size_t>(p.batch) * static_cast<std::size_t>(p.k), -1);
  threads = std::clamp(threads, 1, std::max(p.batch, 1));
  std::vector<std::jthread> workers;
  for (int w = 0; w < threads; ++w)
    workers.emplace_back([&, w] {
      for (int row = w; row < p.batch; row += threads) select_row(p, row, out);
    });
  return out;
}

}  // namespace nsajit::reference
