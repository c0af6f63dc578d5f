// Not a pass/fail speed check: a same-run comparison of sparse_mla_fwd variants for kernel work
// (issue 6). Times the default variant, or each variant named in $NSA_MLA_TIMING_VARIANTS
// (comma-separated; pruned variants are refused by the renderer), on the shapes in $NSA_MLA_TIMING_SHAPES
// ("s_q:h_q[:s_kv]" comma-separated; default 4096:64,4096:128), in alternating rounds, and prints
// each variant's median with its TFLOP/s and fraction of the gather floor of the same inputs.
// "name#n" times the w12 variant built with NSA_MLA_WS_KNOCKOUT=n (work removed, wrong results:
// bit 1 no kv gathers, 2 no wgmma, 4 no index loads, 8 no Q load), to see what the rest of the
// kernel costs.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "generator/compile_request.hpp"
#include "generator/kernel_family.hpp"
#include "generator/target.hpp"
#include "tests/gpu/gpu_fixture.hpp"
#include "tuner/bench_kernels.hpp"
#include "tuner/bench_sparse_mla.hpp"
#include "tuner/timing.hpp"

namespace nsajit {
namespace {

BenchShape parse_shape(const std::string& text) {
  BenchShape s;
  s.topk = 2048;
  s.s_kv = 32768;
  long long sq = 0;
  int hq = 0, skv = 0;
  const int got = std::sscanf(text.c_str(), "%lld:%d:%d", &sq, &hq, &skv);
  REQUIRE_MESSAGE(got >= 2, "NSA_MLA_TIMING_SHAPES entry is s_q:h_q[:s_kv], got ", text);
  s.s_q = sq;
  s.h_q = hq;
  if (got == 3) s.s_kv = skv;
  return s;
}

}  // namespace

TEST_CASE("sparse_mla_variant_timing_report") {
  Device& device = test::gpu_device();
  if (device.info().vendor != Vendor::nvidia) {
    MESSAGE("SKIPPED: the bench kernels need an NVIDIA GPU");
    return;
  }
  const Compiler* compiler = test::gpu_backend().compiler_for(device.info().arch);
  REQUIRE_MESSAGE(compiler != nullptr, test::gpu_backend().compiler_unavailable_reason());
  const Target target = target_from_arch(device.info().arch);

  std::vector<Variant> variants;
  std::vector<std::string> labels;
  std::vector<int> knockouts;
  for (const std::string& entry : test::env_list("NSA_MLA_TIMING_VARIANTS")) {
    const std::size_t hash = entry.find('#');
    variants.push_back(variant_from_name(entry.substr(0, hash)));
    knockouts.push_back(hash == std::string::npos ? 0 : std::stoi(entry.substr(hash + 1)));
    labels.push_back(entry);
  }
  if (variants.empty()) {
    variants.push_back(kernel_family(Family::sparse_mla_fwd).default_variant(target, Geometry{576, 512}));
    knockouts.push_back(0);
    labels.push_back(variants.back().name());
  }
  std::vector<BenchShape> shapes;
  for (const std::string& text : test::env_list("NSA_MLA_TIMING_SHAPES")) shapes.push_back(parse_shape(text));
  if (shapes.empty()) shapes = {parse_shape("4096:64"), parse_shape("4096:128")};

  std::vector<std::unique_ptr<LoadedVariant>> loaded;
  for (std::size_t v = 0; v < variants.size(); ++v) {
    RenderedSource rendered = kernel_family(Family::sparse_mla_fwd).render(variants[v]);
    if (knockouts[v] != 0) rendered.options.push_back(fmt::format("-DNSA_MLA_WS_KNOCKOUT={}", knockouts[v]));
    const CompileResult built = compiler->compile(make_compile_request(variants[v], rendered));
    loaded.push_back(load_variant(device, variants[v], built.binary, rendered.kernel_names));
  }

  // NSA_MLA_TIMING_SPLITS: split counts to time each variant with (0 = the dispatcher's choice,
  // the default); a suffix "nc" leaves the combine launch out (wrong output: what the combine costs).
  struct SplitChoice {
    int splits = 0;
    bool combine = true;
  };
  std::vector<SplitChoice> split_choices;
  for (const std::string& text : test::env_list("NSA_MLA_TIMING_SPLITS")) {
    SplitChoice c;
    std::size_t used = 0;
    c.splits = std::stoi(text, &used);
    c.combine = text.substr(used) != "nc";
    REQUIRE_MESSAGE((c.splits >= 0 && (used == text.size() || !c.combine)),
                    "NSA_MLA_TIMING_SPLITS entry is N or Nnc (N >= 0), got ", text);
    split_choices.push_back(c);
  }
  if (split_choices.empty()) split_choices.push_back(SplitChoice{});

  BenchKernels kernels(device, *compiler);
  auto stream = device.create_stream();
  BenchOptions o;
  o.reps = 20;
  const TimingOptions timing = o.timing(kernels);
  std::string report =
      fmt::format("\n{:>6} {:>4} {:>7} {:>6} {:>9} {:>8} {:>9}  {}\n", "s_q", "h_q", "s_kv", "splits",
                  "median_ms", "TFLOP/s", "of_floor", "variant (median of 3 rounds)");
  const std::size_t configs = loaded.size() * split_choices.size();
  for (const BenchShape& shape : shapes) {
    SparseMlaBenchInputs inputs(kernels, shape, o.index_sets, o.seed, stream->native());
    const double floor_ms = time_gather_floor(kernels, inputs, timing, stream->native()).stats.median_ms;
    auto splits_of = [&](std::size_t c) {
      const SplitChoice& choice = split_choices[c % split_choices.size()];
      return choice.splits > 0 ? choice.splits
                               : dispatcher_splits(loaded[c / split_choices.size()]->variant, shape,
                                                   device.info().multiprocessors);
    };
    const std::vector<double> medians = medians_of_alternating_rounds(configs, 3, [&](std::size_t c) {
      return time_sparse_mla(*loaded[c / split_choices.size()], inputs, splits_of(c), timing,
                             stream->native(), split_choices[c % split_choices.size()].combine)
          .median_ms;
    });
    for (std::size_t c = 0; c < configs; ++c) {
      const double ms = medians[c];
      CHECK(ms > 0);
      const bool combine = split_choices[c % split_choices.size()].combine;
      report += fmt::format("{:>6} {:>4} {:>7} {:>6} {:>9.4f} {:>8.1f} {:>9.3f}  {}{}\n", shape.s_q,
                            shape.h_q, shape.s_kv, splits_of(c), ms, shape.flops() / (ms * 1e-3) / 1e12,
                            floor_ms / ms, labels[c / split_choices.size()], combine ? "" : " (no combine)");
    }
  }
  MESSAGE(report);
}

}  // namespace nsajit
