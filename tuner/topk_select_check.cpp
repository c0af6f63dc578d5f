#include "tuner/topk_select_check.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "runtime/topk_select_launch.hpp"

namespace nsajit::tuner {

std::string_view to_string(TopkData data) noexcept {
  switch (data) {
    case TopkData::random:
      return "random";
    case TopkData::ties:
      return "ties";
    case TopkData::all_equal:
      return "all_equal";
    case TopkData::near_equal:
      return "near_equal";
    case TopkData::neg_inf:
      return "neg_inf";
    case TopkData::nan:
      return "nan";
  }
  return "?";
}

TopkCase topk_case(int batch, int length, int k, TopkData data, bool sorted, TopkLengths lengths,
                   int row_padding, std::uint64_t seed) {
  return TopkCase{.batch = batch,
                  .length = length,
                  .k = k,
                  .sorted = sorted,
                  .data = data,
                  .lengths = lengths,
                  .row_padding = row_padding,
                  .seed = seed};
}

std::string TopkCase::describe() const {
  static constexpr const char* kLengths[] = {"none", "mixed", "random"};
  return fmt::format("B {} L {} k {} sorted {} data {} lengths {} pad {} seed {}", batch, length, k, sorted,
                     to_string(data), kLengths[static_cast<int>(lengths)], row_padding, seed);
}

reference::TopkProblem make_topk_problem(const TopkCase& c) {
  reference::TopkProblem p;
  p.batch = c.batch;
  p.length = c.length;
  p.row_stride = c.length + c.row_padding;
  p.k = c.k;
  p.sorted = c.sorted;
  std::mt19937_64 rng(c.seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  constexpr float kInf = std::numeric_limits<float>::infinity();
  const float kQuietNan = std::numeric_limits<float>::quiet_NaN();
  static constexpr float kTieValues[] = {-1.0f, -0.0f, 0.0f, 2.0f};

  p.scores.assign(static_cast<std::size_t>(p.batch) * static_cast<std::size_t>(p.row_stride), kInf);
  for (int r = 0; r < p.batch; ++r) {
    float* row = p.scores.data() + static_cast<std::size_t>(r) * static_cast<std::size_t>(p.row_stride);
    for (int j = 0; j < p.length; ++j) {
      float v = normal(rng);
      switch (c.data) {
        case TopkData::random:
          break;
        case TopkData::ties:
          v = kTieValues[rng() % 4];
          break;
        case TopkData::all_equal:
          v = 1.0f;
          break;
        case TopkData::near_equal: {
          v = 1.0f;
          for (int steps = static_cast<int>(rng() % 16); steps > 0; --steps) v = std::nextafter(v, 2.0f);
          break;
        }
        case TopkData::neg_inf:
          if (unit(rng) < 0.4f) v = -kInf;
          break;
        case TopkData::nan: {
          const float u = unit(rng);
          if (u < 0.15f)
            v = kQuietNan;
          else if (u < 0.3f)
            v = -kQuietNan;
          else if (u < 0.35f)
            v = -kInf;
          break;
        }
      }
      row[j] = v;
    }
  }
  if (c.lengths != TopkLengths::none) {
    std::uniform_int_distribution<int> any(0, p.length);
    p.lengths.resize(static_cast<std::size_t>(p.batch));
    for (int r = 0; r < p.batch; ++r) p.lengths[static_cast<std::size_t>(r)] = any(rng);
    if (c.lengths == TopkLengths::mixed) {
      static const auto special = [](const TopkCase& tc, int r) {
        switch (r) {
          case 0:
            return 0;
          case 1:
            return tc.k - 1;
          case 2:
            return tc.length + 5;
          default:
            return -3;
        }
      };
      for (int r = 0; r < std::min(p.batch, 4); ++r) p.lengths[static_cast<std::size_t>(r)] = special(c, r);
    }
    for (int r = 0; r < p.batch; ++r) {  // poison what lies past the valid prefix
      float* row = p.scores.data() + static_cast<std::size_t>(r) * static_cast<std::size_t>(p.row_stride);
      std::fill(row + reference::topk_valid_length(p, r), row + p.length, kInf);
    }
  }
  return p;
}

std::string compare_topk(const reference::TopkProblem& p, std::span<const std::int32_t> expected,
                         std::span<const std::int32_t> got, std::int64_t got_row_stride) {
  const auto k = static_cast<std::size_t>(p.k);
  for (int r = 0; r < p.batch; ++r) {
    std::vector<std::int32_t> want(expected.begin() + static_cast<std::ptrdiff_t>(r * k),
                                   expected.begin() + static_cast<std::ptrdiff_t>((r + 1) * k));
    const auto at = static_cast<std::ptrdiff_t>(r * got_row_stride);
    std::vector<std::int32_t> have(got.begin() + at, got.begin() + at + static_cast<std::ptrdiff_t>(k));
    if (!p.sorted) {
      std::sort(want.begin(), want.end());
      std::sort(have.begin(), have.end());
    }
    if (want == have) continue;
    std::size_t first = 0;
    while (want[first] == have[first]) ++first;
    const std::size_t show = std::min<std::size_t>(8, k - first);
    const std::ptrdiff_t off = static_cast<std::ptrdiff_t>(first);
    return fmt::format(
        "row {} (valid {}) differs from the reference{} at entry {}: got [{}] want [{}]", r,
        reference::topk_valid_length(p, r), p.sorted ? "" : " (as sorted sets)", first,
        fmt::join(have.begin() + off, have.begin() + off + static_cast<std::ptrdiff_t>(show), ", "),
        fmt::join(want.begin() + off, want.begin() + off + static_cast<std::ptrdiff_t>(show), ", "));
  }
  return {};
}

std::vector<std::vector<std::int32_t>> run_topk_on_device(Device& device, const KernelHandle& kernel,
                                                          const Variant& v, const reference::TopkProblem& p,
                                                          int runs) {
  const DeviceInfo& info = device.info();
  const std::size_t score_bytes = p.scores.size() * sizeof(float);
  const std::size_t out_elems = static_cast<std::size_t>(p.batch) * static_cast<std::size_t>(p.k);
  DeviceMemory scores = device.allocate(score_bytes);
  device.copy_to_device(scores.get(), p.scores.data(), score_bytes);
  DeviceMemory lengths;
  if (!p.lengths.empty()) {
    lengths = device.allocate(p.lengths.size() * sizeof(std::int32_t));
    device.copy_to_device(lengths.get(), p.lengths.data(), p.lengths.size() * sizeof(std::int32_t));
  }
  DeviceMemory out = device.allocate(out_elems * sizeof(std::int32_t));
  const std::size_t workspace_bytes = topk_select_workspace_bytes(v, info);
  DeviceMemory workspace;
  if (workspace_bytes > 0) {
    workspace = device.allocate(workspace_bytes);
    device.fill_bytes(workspace.get(), 0, workspace_bytes);
  }

  TopkSelectProblem problem;
  problem.scores = scores.as<const float>();
  problem.score_row_stride = p.row_stride;
  problem.batch = p.batch;
  problem.length = p.length;
  problem.lengths = p.lengths.empty() ? nullptr : lengths.as<const std::int32_t>();
  problem.indices = out.as<std::int32_t>();
  problem.out_row_stride = p.k;
  problem.k = p.k;
  problem.sorted = p.sorted;
  device.set_max_dynamic_shared(kernel, static_cast<int>(topk_select_dynamic_shared_bytes(v, info)));
  const TopkSelectLaunch launch = plan_topk_select(v, info, problem, workspace.get(), workspace_bytes,
                                                   topk_select_cluster_fit(device, kernel, v));

  std::vector<std::vector<std::int32_t>> results;
  for (int run = 0; run < runs; ++run) {
    device.fill_bytes(out.get(), 0x7f, out_elems * sizeof(std::int32_t));
    launch_topk_select(device, kernel, launch, nullptr);
    device.synchronize();
    std::vector<std::int32_t> host(out_elems);
    device.copy_to_host(host.data(), out.get(), out_elems * sizeof(std::int32_t));
    results.push_back(std::move(host));
  }
  return results;
}

std::string check_topk_variant(Device& device, const KernelHandle& kernel, const Variant& v,
                               const reference::TopkProblem& p, int reference_threads) {
  const auto outputs = run_topk_on_device(device, kernel, v, p, 2);
  const auto expected = reference::topk_select(p, reference_threads);
  for (std::size_t run = 0; run < outputs.size(); ++run) {
    std::string diff = compare_topk(p, expected, outputs[run], p.k);
    if (!diff.empty()) return fmt::format("{} run {}: {}", v.name(), run, diff);
  }
  return {};
}

}  // namespace nsajit::tuner
