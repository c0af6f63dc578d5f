// nsa-tune bench: the DESIGN.md §5 table - median time, TFLOP/s, gathered bytes/s, and the
// fraction of the gather-only floor and of the mma.sync peak, both measured in the same run.
// The variant of each shape is the one the dispatcher would serve (cache winner or default).
#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "runtime/dispatcher.hpp"
#include "runtime/error.hpp"
#include "runtime/sparse_mla_runner.hpp"
#include "tools/nsa-tune/commands.hpp"
#include "tools/nsa-tune/target_option.hpp"
#include "tuner/bench_sparse_mla.hpp"
#include "tuner/sparse_mla_check.hpp"

namespace nsajit::cli {
namespace {

struct BenchCliOptions {
  std::string family = "sparse_mla_fwd";
  std::vector<int> topks, h_qs;
  std::vector<long long> s_qs;
  std::vector<int> s_kvs;
  int d_qk = 576;
  int reps = 30;
  int device = 0;
  bool overhead = false;
};

// Issue 4's dispatcher numbers: cold start on a populated cache (open, load, first launch)
// and the host cost of one dispatched call on a cache hit. Run first thing in a process.
void run_overhead(const BenchCliOptions& o, const GlobalOptions& g) {
  using clock = std::chrono::steady_clock;
  const int topk = o.topks.empty() ? 2048 : o.topks.front();
  const int h_q = o.h_qs.empty() ? 16 : o.h_qs.front();
  // The driver and context start-up (which a serving process has paid already, e.g. in torch)
  // is measured apart from nsa-jit's own cold start.
  const auto tdrv = clock::now();
  // Kept open: the primary context lives while one Device holds it.
  const auto first_device = backend_for_arch("sm_90a").open_device(o.device);
  const auto t0 = clock::now();
  DispatcherOptions dopt;
  dopt.device_ordinal = o.device;
  dopt.cache_path = g.cache_path;
  Dispatcher dispatcher(dopt);
  const auto t1 = clock::now();
  // s_q 256 fills the SMs, so the call is one kernel launch (no topk split + combine).
  SparseMlaFixture f(
      dispatcher.device(),
      {.label = "overhead", .s_q = 256, .h_q = h_q, .s_kv = 8192, .topk = topk, .reference_rows = 2}, 11);
  auto stream = dispatcher.device().create_stream();
  const auto t2 = clock::now();
  dispatcher.sparse_mla_fwd(f.args(), stream->native());
  stream->synchronize();
  const auto t3 = clock::now();
  const std::int64_t cold_compiles = dispatcher.compile_count();
  constexpr int kCalls = 1000;
  std::vector<double> per_call;
  for (int round = 0; round < 5; ++round) {
    const auto a = clock::now();
    for (int i = 0; i < kCalls; ++i) dispatcher.sparse_mla_fwd(f.args(), stream->native());
    const auto b = clock::now();
    stream->synchronize();
    per_call.push_back(std::chrono::duration<double, std::micro>(b - a).count() / kCalls);
  }
  std::sort(per_call.begin(), per_call.end());
  // The same launches without the dispatcher (plan once, then launch): the driver's share.
  const SparseMlaProblem problem = validate_sparse_mla(f.args());
  LoadedVariant& lv = dispatcher.sparse_mla_variant_for(576, topk, h_q, nullptr, problem.rows());
  const SparseMlaLaunch plan = plan_sparse_mla(problem, lv.variant, 1, nullptr);
  if (plan.needs_combine)
    fail(ErrorCode::internal, "overhead bench", "nsa-tune bench", "expected one launch per call");
  std::vector<double> raw;
  for (int round = 0; round < 5; ++round) {
    const auto a = clock::now();
    for (int i = 0; i < kCalls; ++i) launch_sparse_mla(dispatcher.device(), lv, plan, stream->native());
    const auto b = clock::now();
    stream->synchronize();
    raw.push_back(std::chrono::duration<double, std::micro>(b - a).count() / kCalls);
  }
  std::sort(raw.begin(), raw.end());
  const auto ms = [](auto d) { return std::chrono::duration<double, std::milli>(d).count(); };
  fmt::print(
      "dispatcher on {} (topk {}, h_q {}, s_q 256: one kernel launch per call):\n"
      "  CUDA driver + context start-up (before nsa-jit, paid by any CUDA process): {:.1f} ms\n"
      "  cold start, populated cache: open {:.1f} ms + first call (SQLite winner, cached binary, load, "
      "launch, sync) "
      "{:.1f} ms = {:.1f} ms, {} compile(s)\n"
      "  host time per dispatched call on a cache hit: median {:.2f} us (5 rounds of {} calls, min {:.2f} "
      "us)\n"
      "  of which the bare launch (planned once, driver launch only): median {:.2f} us\n",
      dispatcher.device_info().name, topk, h_q, ms(t0 - tdrv), ms(t1 - t0), ms(t3 - t2),
      ms(t1 - t0) + ms(t3 - t2), cold_compiles, per_call[2], kCalls, per_call[0], raw[2]);
}

void run_bench_sparse_mla(const BenchCliOptions& o, const GlobalOptions& g) {
  DispatcherOptions dopt;
  dopt.device_ordinal = o.device;
  dopt.cache_path = g.cache_path;
  Dispatcher dispatcher(dopt);
  Device& device = dispatcher.device();
  const Compiler* compiler = &require_compiler(device.info().arch, "building the bench kernels");
  std::vector<BenchShape> shapes;
  if (o.topks.empty() && o.h_qs.empty() && o.s_qs.empty() && o.s_kvs.empty()) {
    shapes = standard_bench_shapes();
  } else {
    for (int topk : o.topks.empty() ? std::vector<int>{2048} : o.topks)
      for (long long s_q : o.s_qs.empty() ? std::vector<long long>{4096} : o.s_qs)
        for (int h_q : o.h_qs.empty() ? std::vector<int>{16, 32, 64, 128} : o.h_qs)
          for (int s_kv : o.s_kvs.empty() ? std::vector<int>{32768} : o.s_kvs)
            shapes.push_back({s_q, h_q, topk, s_kv, o.d_qk});
  }
  for (auto& s : shapes) s.d_qk = o.d_qk;
  BenchKernels kernels(device, *compiler);
  auto stream = device.create_stream();
  BenchOptions bopt;
  bopt.reps = std::max(20, o.reps);
  const MmaPeakResult peak = measure_mma_peak(kernels, bopt.timing(kernels), stream->native());
  std::vector<BenchRow> rows;
  for (const auto& shape : shapes) {
    LoadedVariant& lv =
        dispatcher.sparse_mla_variant_for(shape.d_qk, shape.topk, shape.h_q, nullptr, shape.s_q);
    rows.push_back(bench_sparse_mla_shape(kernels, lv, shape, peak, bopt, stream->native()));
    if (!g.json)
      fmt::print(stderr, "  {} -> {:.4f} ms ({})\n", shape.label(), rows.back().kernel.median_ms,
                 lv.variant.name());
  }
  const BenchContext ctx{device.info().name, peak};
  fmt::print("{}", g.json ? bench_rows_json(rows, ctx) + "\n" : format_bench_table(rows, ctx));
}

}  // namespace

void register_bench(CLI::App& app, GlobalOptions& g) {
  static BenchCliOptions o;
  auto* cmd =
      app.add_subcommand("bench", "benchmark the dispatched kernels against floors measured in the same run");
  cmd->add_option("--family", o.family, "sparse_mla_fwd or topk_select")->capture_default_str();
  cmd->add_option("--topk", o.topks, "topk values (default: the standard table)")->delimiter(',');
  cmd->add_option("--h-q", o.h_qs, "head counts")->delimiter(',');
  cmd->add_option("--s-q", o.s_qs, "query rows")->delimiter(',');
  cmd->add_option("--s-kv", o.s_kvs, "kv rows")->delimiter(',');
  cmd->add_option("--d-qk", o.d_qk, "576 or 512")->capture_default_str();
  cmd->add_option("--reps", o.reps, "timed runs per shape (>= 20)")->capture_default_str();
  cmd->add_option("--device", o.device, "GPU ordinal")->capture_default_str();
  cmd->add_flag("--overhead", o.overhead,
                "dispatcher cold start and per-call host overhead (run on a tuned cache)");
  cmd->add_flag("--json", g.json, "machine-readable output");
  cmd->callback([&g] {
    if (o.overhead)
      run_overhead(o, g);
    else if (o.family == "sparse_mla_fwd")
      run_bench_sparse_mla(o, g);
    else
      run_bench_topk(o.topks, o.device, g.json);
  });
}

}  // namespace nsajit::cli
