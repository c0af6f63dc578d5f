// topk_select on the GPU: every kept variant, compiled by the backend's compiler, returns
// exactly the CPU reference's set (or sequence, when sorted) on fresh random data and on the
// adversarial inputs of DESIGN.md section 2. Each case is generated and its reference computed
// once, then every variant runs it twice (output poisoned with 0x7f bytes before each run; the
// second run reuses the workspace the first left behind).
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <random>
#include <thread>

#include "generator/kernel_family.hpp"
#include "generator/template_library.hpp"
#include "runtime/error.hpp"
#include "runtime/topk_select_launch.hpp"
#include "tests/gpu/gpu_fixture.hpp"
#include "tuner/topk_select_check.hpp"

using namespace nsajit;
using tuner::TopkCase;
using tuner::TopkData;
using tuner::TopkLengths;

namespace {

struct CompiledVariant {
  Variant variant;
  std::unique_ptr<Module> module;
  KernelHandle kernel;
};

int worker_count() {
  return static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 16u));
}

// Compiles every kept variant and every opt-in one (in parallel; hipRTC serialised, see
// DESIGN.md) and loads it.
std::vector<CompiledVariant>& compiled_variants() {
  static std::vector<CompiledVariant> variants;
  static std::once_flag once;
  std::call_once(once, [] {
    Device& device = test::gpu_device();
    const Target target = target_from_arch(device.info().arch);
    const Compiler* compiler = test::gpu_backend().compiler_for(target.arch);
    REQUIRE_MESSAGE(compiler != nullptr, test::gpu_backend().compiler_unavailable_reason());
    const KernelFamily& family = kernel_family(Family::topk_select);
    const VariantSpace space = family.space(target, Geometry{0, 0});
    std::vector<Variant> kept = space.kept;
    for (const auto& p : space.pruned)
      if (p.reason.rfind("opt-in", 0) == 0) kept.push_back(p.variant);
    std::vector<CompileResult> results(kept.size());
    std::vector<std::string> errors(kept.size());
    std::atomic<std::size_t> next{0};
    std::mutex serial;
    const bool serialise = target.vendor == Vendor::amd;
    std::vector<std::jthread> workers;
    for (int w = 0; w < worker_count(); ++w)
      workers.emplace_back([&] {
        for (std::size_t i = next++; i < kept.size(); i = next++) {
          const RenderedSource r = family.render(kept[i]);
          CompileRequest request{r.source,    kept[i].name() + ".cu", template_headers(), r.options,
                                 target.arch, r.kernel_names};
          try {
            std::unique_lock lock(serial, std::defer_lock);
            if (serialise) lock.lock();
            results[i] = compiler->compile(request);
          } catch (const Error& e) {
            errors[i] = e.what();
          }
        }
      });
    workers.clear();
    for (std::size_t i = 0; i < kept.size(); ++i) {
      REQUIRE_MESSAGE(errors[i].empty(), kept[i].name() << ": " << errors[i]);
      CompiledVariant c{kept[i], device.load_module(results[i].binary), {}};
      c.kernel = c.module->kernel(kept[i].name());
      variants.push_back(std::move(c));
    }
    MESSAGE("compiled and loaded " << variants.size() << " topk_select variants for " << target.arch);
  });
  return variants;
}

void check_every_variant(const TopkCase& c) {
  const reference::TopkProblem problem = tuner::make_topk_problem(c);
  const std::vector<std::int32_t> expected = reference::topk_select(problem, worker_count());
  for (const CompiledVariant& v : compiled_variants()) {
    const auto outputs = tuner::run_topk_on_device(test::gpu_device(), v.kernel, v.variant, problem, 2);
    for (std::size_t run = 0; run < outputs.size(); ++run) {
      const std::string diff = tuner::compare_topk(problem, expected, outputs[run], problem.k);
      CHECK_MESSAGE(diff.empty(), v.variant.name()
                                      << " run " << run << " on " << c.describe() << ": " << diff);
    }
  }
}

TopkCase make_case(int batch, int length, int k, TopkData data, bool sorted = false,
                   TopkLengths lengths = TopkLengths::none, int padding = 0) {
  // Fresh data on every run; a failure message carries the seed (TopkCase::describe).
  static std::uint64_t seed = std::random_device{}();
  return tuner::topk_case(batch, length, k, data, sorted, lengths, padding, ++seed);
}

}  // namespace

TEST_CASE("topk_gpu_matches_reference_on_fresh_random_rows") {
  check_every_variant(make_case(64, 4096, 64, TopkData::random));
  check_every_variant(make_case(1, 1, 1, TopkData::random));
  check_every_variant(make_case(3, 20000, 1, TopkData::random, true));
  check_every_variant(make_case(256, 8192, 2048, TopkData::random, false, TopkLengths::random));
}

TEST_CASE("topk_gpu_ties_go_to_lower_positions") {
  check_every_variant(make_case(7, 5000, 300, TopkData::ties, true, TopkLengths::mixed, 3));
  check_every_variant(make_case(4, 3000, 3000, TopkData::all_equal));
  check_every_variant(make_case(3, 20000, 777, TopkData::near_equal, true));
}

TEST_CASE("topk_gpu_neg_inf_is_selectable_and_nan_ranks_last") {
  check_every_variant(make_case(5, 10000, 2048, TopkData::neg_inf, false, TopkLengths::mixed));
  check_every_variant(make_case(5, 10000, 512, TopkData::nan, true));
  check_every_variant(make_case(6, 4000, 4096, TopkData::nan, false, TopkLengths::mixed, 1));
}

TEST_CASE("topk_gpu_short_rows_fill_minus_one") {
  check_every_variant(make_case(6, 1000, 4096, TopkData::random, true, TopkLengths::mixed, 5));
  check_every_variant(make_case(9, 9000, 2048, TopkData::ties, false, TopkLengths::mixed));
}

TEST_CASE("topk_gpu_long_rows_are_exact") {
  check_every_variant(make_case(1, 131072, 2048, TopkData::random));
  check_every_variant(make_case(1, 262144, 4096, TopkData::ties, true));
  check_every_variant(make_case(1, 262144, 2048, TopkData::nan, false, TopkLengths::random));
  check_every_variant(make_case(16, 131072, 2048, TopkData::all_equal, true));
  // The peers' failure case: many rows, 256K, k 2048; and a threshold bucket far larger than
  // any candidate buffer (16 distinct values).
  check_every_variant(make_case(64, 262144, 2048, TopkData::random));
  check_every_variant(make_case(64, 131072, 2048, TopkData::near_equal));
}

// Not a pass/fail check: prints the time of the default variant (or of each variant named in
// $NSA_TOPK_TIMING_VARIANTS, comma-separated, one after the other on each shape: a same-run
// comparison) on the benchmark shapes (random N(0, 1) scores, rows 131072 apart).
TEST_CASE("topk_gpu_default_variant_timing_report") {
  Device& device = test::gpu_device();
  const Target target = target_from_arch(device.info().arch);
  std::vector<std::string> names = test::env_list("NSA_TOPK_TIMING_VARIANTS");
  if (names.empty())
    names.push_back(kernel_family(Family::topk_select).default_variant(target, Geometry{0, 0}).name());
  std::vector<const CompiledVariant*> timed;
  std::vector<TopkClusterFit> fits;  // asked once per variant, after its shared-memory limit
  std::size_t ws_bytes = 16;
  for (const std::string& name : names) {
    const auto c = std::find_if(compiled_variants().begin(), compiled_variants().end(),
                                [&](const CompiledVariant& cv) { return cv.variant.name() == name; });
    REQUIRE_MESSAGE(c != compiled_variants().end(), name);
    timed.push_back(&*c);
    ws_bytes = std::max(ws_bytes, topk_select_workspace_bytes(c->variant, device.info()));
    device.set_max_dynamic_shared(
        c->kernel, static_cast<int>(topk_select_dynamic_shared_bytes(c->variant, device.info())));
    fits.push_back(topk_select_cluster_fit(device, c->kernel, c->variant));
  }
  DeviceMemory ws = device.allocate(ws_bytes);
  device.fill_bytes(ws.get(), 0, ws.bytes());
  const reference::TopkProblem data =
      tuner::make_topk_problem(make_case(128, 131072, 2048, TopkData::random));
  DeviceMemory scores = device.allocate(data.scores.size() * sizeof(float));
  device.copy_to_device(scores.get(), data.scores.data(), scores.bytes());
  DeviceMemory out = device.allocate(std::size_t{128} * 2048 * sizeof(std::int32_t));
  auto stream = device.create_stream();
  auto start = device.create_event();
  auto stop = device.create_event();
  for (int batch : {1, 16, 64, 128})
    for (int length : {8192, 32768, 131072})
      for (std::size_t v = 0; v < timed.size(); ++v) {
        const CompiledVariant* c = timed[v];
        const TopkSelectProblem p =
            contiguous_topk_problem(scores.as<const float>(), batch, length, out.as<std::int32_t>(), 2048);
        TopkSelectProblem strided = p;
        strided.score_row_stride = data.row_stride;
        const TopkSelectLaunch l =
            plan_topk_select(c->variant, device.info(), strided, ws.get(), ws_bytes, fits[v]);
        for (int i = 0; i < 5; ++i) launch_topk_select(device, c->kernel, l, stream->native());
        // Back-to-back launches (no host latency between them), median of 9 rounds of 20.
        constexpr int kRounds = 9, kRuns = 20;
        std::vector<double> each;
        for (int round = 0; round < kRounds; ++round) {
          start->record(stream->native());
          for (int i = 0; i < kRuns; ++i) launch_topk_select(device, c->kernel, l, stream->native());
          stop->record(stream->native());
          stop->synchronize();
          each.push_back(stop->elapsed_ms_since(*start) / kRuns);
        }
        std::sort(each.begin(), each.end());
        const double ms = each[kRounds / 2];
        const double gbps = static_cast<double>(batch) * length * sizeof(float) / (ms * 1e-3) / 1e9;
        MESSAGE(fmt::format("{} B {:3} L {:6} k 2048 splits {:2} cluster {}: {:.4f} ms, {:.0f} GB/s",
                            c->variant.name(), batch, length, l.params.splits, l.cluster, ms, gbps));
      }
}
