#include "tuner/topk_select_tuner.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>

#include "generator/compile_request.hpp"
#include "generator/kernel_family.hpp"
#include "runtime/error.hpp"
#include "runtime/topk_select_launch.hpp"
#include "tuner/compile_pool.hpp"
#include "tuner/timing.hpp"
#include "tuner/topk_select_check.hpp"
#include "tuner/tune_candidates.hpp"

namespace nsajit {

TopkTiming time_topk_select(Device& device, LoadedVariant& loaded, int batch, int length, int k, int warmup,
                            int reps, void* stream) {
  std::vector<float> host(static_cast<std::size_t>(batch) * length);
  std::mt19937 rng(static_cast<unsigned>(batch * 7919 + length));
  std::normal_distribution<float> normal;
  for (auto& x : host) x = normal(rng);
  DeviceMemory scores = device.allocate(host.size() * 4);
  device.copy_to_device(scores.get(), host.data(), host.size() * 4);
  DeviceMemory out = device.allocate(static_cast<std::size_t>(batch) * k * 4);
  const std::size_t ws_bytes = topk_select_workspace_bytes(loaded.variant, device.info());
  DeviceMemory ws;
  if (ws_bytes > 0) {
    ws = device.allocate(ws_bytes);
    device.fill_bytes(ws.get(), 0, ws_bytes);
  }
  const TopkSelectProblem p =
      contiguous_topk_problem(scores.as<const float>(), batch, length, out.as<std::int32_t>(), k);
  const TopkSelectLaunch launch =
      plan_topk_select(loaded.variant, device.info(), p, ws.get(), ws_bytes, loaded.topk_cluster_fit);
  const double ms = median_ms(device, stream, warmup, reps,
                              [&] { launch_topk_select(device, loaded.kernels[0], launch, stream); });
  return {ms, static_cast<double>(host.size()) * 4.0 / (ms * 1e-3) / 1e9};
}

namespace {

// The variants of `names` from the space: kept ones, or pruned ones whose reason is "opt-in".
std::vector<Variant> named_variants(const VariantSpace& space, const std::vector<std::string>& names) {
  std::vector<Variant> out;
  for (const std::string& name : names) {
    const auto kept = std::find_if(space.kept.begin(), space.kept.end(),
                                   [&](const Variant& v) { return v.name() == name; });
    if (kept != space.kept.end()) {
      out.push_back(*kept);
      continue;
    }
    const auto pruned = std::find_if(space.pruned.begin(), space.pruned.end(),
                                     [&](const PrunedVariant& p) { return p.variant.name() == name; });
    if (pruned == space.pruned.end())
      fail(ErrorCode::invalid_argument, "choosing topk_select candidates", "tuner",
           fmt::format("{} is not a variant of this target (see nsa-tune variants --family topk_select)",
                       name));
    if (pruned->reason.rfind("opt-in", 0) != 0)
      fail(ErrorCode::invalid_argument, "choosing topk_select candidates", "tuner",
           fmt::format("{} is pruned: {}", name, pruned->reason));
    out.push_back(pruned->variant);
  }
  return out;
}

}  // namespace

TopkTuneResult tune_topk_select_k(Device& device, const Compiler& compiler, const TopkSelectTuneOptions& o,
                                  int k, TuneEvents& events) {
  const auto t0 = std::chrono::steady_clock::now();
  TopkTuneResult result;
  result.topk = k;
  result.tuned_shape = fmt::format("B={} L={}", fmt::join(o.batches, ","), o.length);
  const Target target = target_from_arch(device.info().arch);
  const auto& family = kernel_family(Family::topk_select);
  const auto space = family.space(target, Geometry{0, 0});

  std::vector<TuneCandidate> candidates =
      prepare_candidates(compiler, o.only.empty() ? space.kept : named_variants(space, o.only), o.jobs,
                         fmt::format("k {}: compile", k), events, result.candidates);

  // Exact check: ties and mixed lengths at this k, on a row long enough to need several passes.
  std::random_device rd;
  tuner::TopkCase check;
  check.batch = 5;
  check.length = std::max(3 * k, 20000);
  check.k = k;
  check.data = tuner::TopkData::ties;
  check.lengths = tuner::TopkLengths::mixed;
  check.seed = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  const auto problem = tuner::make_topk_problem(check);
  events.begin(fmt::format("k {}: verify", k), candidates.size());
  for (auto& c : candidates) {
    if (!c.binary.empty()) {
      try {
        c.loaded = load_variant(device, c.variant, c.binary, c.rendered.kernel_names);
        const std::string why = tuner::check_topk_variant(device, c.loaded->kernels[0], c.variant, problem);
        if (!why.empty()) {
          result.candidates.push_back({c.variant.name(), 0, "wrong", -1, why.substr(0, 500)});
          events.note(fmt::format("  {} is WRONG against the reference: excluded", c.variant.name()));
          c.loaded.reset();
        }
      } catch (const Error& e) {
        result.candidates.push_back({c.variant.name(), 0, "launch_failed", -1, e.what()});
        c.loaded.reset();
      }
    }
    events.step(c.variant.name());
  }

  auto stream = device.create_stream();
  for (int batch : o.batches) {
    events.begin(fmt::format("k {}: time B {} L {}", k, batch, o.length), candidates.size());
    for (auto& c : candidates) {
      if (c.loaded) {
        try {
          const TopkTiming t =
              time_topk_select(device, *c.loaded, batch, o.length, k, o.warmup, o.reps, stream->native());
          result.candidates.push_back(
              {c.variant.name(), batch, "ok", t.median_ms, fmt::format("B={} {:.0f} GB/s", batch, t.gbps)});
          c.score += std::log(t.median_ms);
        } catch (const Error& e) {
          result.candidates.push_back({c.variant.name(), batch, "launch_failed", -1, e.what()});
          c.loaded.reset();
        }
      }
      events.step(c.variant.name());
    }
  }
  const TuneCandidate* best = nullptr;
  for (const auto& c : candidates)
    if (c.loaded && (best == nullptr || c.score < best->score)) best = &c;
  if (best == nullptr)
    fail(ErrorCode::internal, fmt::format("tuning topk_select k {}", k), "tuner",
         "no candidate compiled, verified and ran");
  result.rule.entries.push_back(
      {0, best->variant.name(), best->key, std::exp(best->score / static_cast<double>(o.batches.size()))});
  result.rule.split = "none";
  result.binaries.push_back({best->key, best->variant.name(), target.arch, compiler.version(), best->binary});
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return result;
}

}  // namespace nsajit
