// Issue 3's sweep: every unpruned sm90 variant against the CPU reference on fresh random
// data, outputs poisoned before each run.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <random>

#include "generator/kernel_family.hpp"
#include "tests/gpu/gpu_fixture.hpp"
#include "tuner/compile_pool.hpp"
#include "tuner/sparse_mla_check.hpp"

namespace nsajit {
namespace {

std::vector<SparseMlaCase> sweep_cases() {
  std::vector<SparseMlaCase> cases;
  auto add = [&](SparseMlaCase c) { cases.push_back(std::move(c)); };
  add({.label = "h16 topk2048 invalid+empty",
       .s_q = 6,
       .h_q = 16,
       .s_kv = 8192,
       .topk = 2048,
       .invalid_fraction = 0.1,
       .empty_row = true});
  add({.label = "h32 topk100 batch2 pad lengths sink",
       .batch = 2,
       .s_q = 5,
       .h_q = 32,
       .s_kv = 3000,
       .kv_pad = 64,
       .topk = 100,
       .invalid_fraction = 0.05,
       .with_lengths = true,
       .with_sink = true});
  add({.label = "h64 topk2048 sink natural-log",
       .s_q = 3,
       .h_q = 64,
       .s_kv = 8192,
       .topk = 2048,
       .invalid_fraction = 0.02,
       .empty_row = true,
       .with_sink = true,
       .natural_log = true});
  add({.label = "h128 topk1", .s_q = 17, .h_q = 128, .s_kv = 100, .topk = 1, .invalid_fraction = 0.2});
  add({.label = "h128 topk2048 split4",
       .s_q = 2,
       .h_q = 128,
       .s_kv = 8192,
       .topk = 2048,
       .invalid_fraction = 0.05,
       .empty_row = true,
       .with_sink = true,
       .splits = 4});
  add({.label = "h16 topk100 split3 lengths",
       .s_q = 4,
       .h_q = 16,
       .s_kv = 5000,
       .topk = 100,
       .with_lengths = true,
       .splits = 3});
  add({.label = "h8 s_q70000 topk100 shared-q",
       .s_q = 70000,
       .h_q = 8,
       .s_kv = 4096,
       .topk = 100,
       .invalid_fraction = 0.1,
       .shared_q_rows = true,
       .reference_rows = 64});
  add({.label = "h20 topk333 ragged heads",
       .s_q = 3,
       .h_q = 20,
       .s_kv = 2048,
       .topk = 333,
       .invalid_fraction = 0.1});
  // The row max climbs along the list (kv rows scaled up to 8x, indices sorted): every running-max
  // scheme must move its reference mid-row; with a split, each split's max differs too.
  add({.label = "h64 topk2048 rising logits",
       .s_q = 3,
       .h_q = 64,
       .s_kv = 8192,
       .topk = 2048,
       .invalid_fraction = 0.02,
       .with_sink = true,
       .rising_logits = true});
  // More splits than the combine loads at once (8): its running lse maximum must rescale across
  // batches (the rising logits put the largest split last); short lengths leave splits empty.
  add({.label = "h32 topk2048 rising logits split11 lengths",
       .s_q = 3,
       .h_q = 32,
       .s_kv = 8192,
       .topk = 2048,
       .invalid_fraction = 0.02,
       .with_lengths = true,
       .with_sink = true,
       .rising_logits = true,
       .splits = 11});
  add({.label = "h128 topk1024 rising logits split2",
       .s_q = 2,
       .h_q = 128,
       .s_kv = 4096,
       .topk = 1024,
       .rising_logits = true,
       .splits = 2});
  std::vector<SparseMlaCase> all;
  for (int d : {576, 512})
    for (auto c : cases) {
      c.d_qk = d;
      c.label = fmt::format("d{} {}", d, c.label);
      all.push_back(c);
    }
  return all;
}

}  // namespace

TEST_CASE("every_unpruned_sm90_variant_matches_the_cpu_reference") {
  Device& device = test::gpu_device();
  if (device.info().vendor != Vendor::nvidia) {
    MESSAGE("SKIPPED: the sm90 sweep needs an NVIDIA GPU");
    return;
  }
  const Compiler* compiler = test::gpu_backend().compiler_for(device.info().arch);
  REQUIRE_MESSAGE(compiler != nullptr, test::gpu_backend().compiler_unavailable_reason());
  const Target target = target_from_arch(device.info().arch);

  std::vector<Variant> variants;
  for (int d : {576, 512}) {
    auto space = kernel_family(Family::sparse_mla_fwd).space(target, Geometry{d, 512});
    variants.insert(variants.end(), space.kept.begin(), space.kept.end());
  }
  // NSAJIT_SWEEP_ONLY / NSAJIT_SWEEP_SKIP: comma-free substrings of variant names, to bisect
  // a failing variant in a fresh process (a faulting kernel poisons the whole context).
  const char* only = std::getenv("NSAJIT_SWEEP_ONLY");
  const char* skip = std::getenv("NSAJIT_SWEEP_SKIP");
  std::erase_if(variants, [&](const Variant& v) {
    const std::string n = v.name();
    return (only != nullptr && n.find(only) == std::string::npos) ||
           (skip != nullptr && *skip != '\0' && n.find(skip) != std::string::npos);
  });
  const auto t0 = std::chrono::steady_clock::now();
  auto compiled = compile_variants(*compiler, variants);
  MESSAGE(fmt::format("compiled {} variants in {:.1f} s", compiled.size(),
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()));
  std::map<std::string, std::unique_ptr<LoadedVariant>> loaded;
  for (auto& cv : compiled) {
    REQUIRE_MESSAGE(cv.ok(), cv.error);
    loaded[cv.variant.name()] = load_variant(device, cv.variant, cv.result->binary, cv.rendered.kernel_names);
  }

  std::random_device rd;
  int failures = 0, checks = 0;
  for (const auto& c : sweep_cases()) {
    SparseMlaFixture fixture(device, c, (static_cast<std::uint64_t>(rd()) << 32) ^ rd());
    double worst_err = 0, worst_lse = 0;
    int case_failures = 0;
    for (auto& [name, lv] : loaded) {
      if (lv->variant.geometry.d_qk != c.d_qk) continue;
      const SparseMlaCheck r = fixture.run_and_compare(*lv, nullptr);
      ++checks;
      worst_err = std::max(worst_err, r.out_rel_err);
      worst_lse = std::max({worst_lse, r.lse_max_abs, r.max_logits_max_abs});
      if (!r.ok) {
        ++failures;
        ++case_failures;
        MESSAGE(fmt::format("FAIL {} on [{}]: {}", name, c.label, r.detail));
      }
    }
    MESSAGE(fmt::format("sweep [{}]: {} failures, worst rel_err {:.2e}, worst lse/max abs {:.2e}", c.label,
                        case_failures, worst_err, worst_lse));
  }
  MESSAGE(fmt::format("sparse_mla sweep: {} checks over {} variants, {} failures", checks, loaded.size(),
                      failures));
  CHECK(failures == 0);
}

}  // namespace nsajit

namespace nsajit {

// Small enough to run under compute-sanitizer (tools/device-check.sh sanitize).
TEST_CASE("sanitizer_subset_of_variants_matches_the_reference") {
  Device& device = test::gpu_device();
  if (device.info().vendor != Vendor::nvidia) return;
  const Compiler* compiler = test::gpu_backend().compiler_for(device.info().arch);
  REQUIRE(compiler != nullptr);
  const Target target = target_from_arch(device.info().arch);
  std::vector<Variant> variants;
  for (const char* name : {"bh16_bt64_w4_st2", "bh32_bt32_w8_st3", "bh64_bt32_w8_st2"})
    variants.push_back(variant_from_name(fmt::format("nsa_fwd_{}_d576_{}", target.short_name(), name)));
  auto compiled = compile_variants(*compiler, variants);
  std::vector<SparseMlaCase> cases = {
      {.label = "ragged",
       .batch = 2,
       .s_q = 2,
       .h_q = 20,
       .s_kv = 777,
       .kv_pad = 8,
       .topk = 150,
       .invalid_fraction = 0.2,
       .empty_row = true,
       .with_lengths = true,
       .with_sink = true},
      {.label = "split",
       .s_q = 2,
       .h_q = 64,
       .s_kv = 3000,
       .topk = 1000,
       .invalid_fraction = 0.1,
       .splits = 5},
  };
  for (auto& cv : compiled) {
    REQUIRE_MESSAGE(cv.ok(), cv.error);
    auto lv = load_variant(device, cv.variant, cv.result->binary, cv.rendered.kernel_names);
    for (const auto& c : cases) {
      SparseMlaFixture f(device, c, 1234);
      const auto r = f.run_and_compare(*lv, nullptr);
      CHECK_MESSAGE(r.ok, cv.variant.name() << " [" << c.label << "]: " << r.detail);
    }
  }
}

}  // namespace nsajit
