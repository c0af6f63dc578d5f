#include "tools/nsa-tune/tune_record.hpp"

#include <fmt/format.h>

#include "generator/template_library.hpp"
#include "nsajit/nsajit.h"
#include "runtime/device_identity.hpp"

namespace nsajit::cli {

void record_tune_result(LayeredCache& cache, const Device& device, const Compiler& compiler, Family family,
                        const Geometry& geometry, const TopkTuneResult& r, long long s_q, long long s_kv,
                        int ordinal) {
  const std::string dkey = device_key(device.info());
  const std::string fam(to_string(family));
  const std::string run_id = fmt::format("{}-gpu{}-{}", utc_timestamp_now(), ordinal, r.topk);
  WinnerRecord w;
  w.key = WinnerKey{dkey, fam, geometry.key(), r.topk};
  w.rule = r.rule.to_json();
  w.default_variant = r.rule.entries.front().variant;
  w.template_hash = template_hash();
  w.generator_version = nsajit_version();  // the library's version: one source of truth
  w.compiler = fmt::format("{} {}", compiler.name(), compiler.version());
  w.driver = device.info().driver_version;
  w.arch = device.info().arch;
  w.tuned_shape = r.tuned_shape;
  std::vector<BinaryRecord> bins;
  for (const auto& b : r.binaries) bins.push_back({b.key, b.variant, b.arch, b.compiler, "", b.binary});
  std::vector<TimingRecord> times;
  for (const auto& c : r.candidates) {
    TimingRecord t{dkey,
                   fam,
                   w.key.geometry,
                   r.topk,
                   c.variant,
                   c.h_q,
                   c.s_q > 0 ? c.s_q : s_q,
                   s_kv,
                   timing_status_from_string(c.status),
                   std::nullopt,
                   c.detail,
                   run_id,
                   ""};
    if (c.median_ms >= 0) t.median_ms = c.median_ms;
    times.push_back(std::move(t));
  }
  cache.record_tune_result(w, bins, times);
}

void print_tune_result(const TopkTuneResult& r, Family family, const std::string& device,
                       const std::string& shape_label) {
  fmt::print("\n== {} topk {} on {} ({:.1f} s)\n", to_string(family), r.topk, device, r.seconds);
  fmt::print("   {:<5} {:<46} {:<14} {:>10}  {}\n", shape_label, "variant", "status", "median_ms", "detail");
  for (const auto& c : r.candidates) {
    bool win = false;
    for (const auto& e : c.s_q > 0 ? r.rule.decode_entries : r.rule.entries)
      win |= (e.variant == c.variant && (e.h_q == c.h_q || e.h_q == 0));
    fmt::print(" {} {:<5} {:<46} {:<14} {:>10}  {}\n", win ? "*" : " ", c.h_q ? std::to_string(c.h_q) : "-",
               c.variant, c.status, c.median_ms >= 0 ? fmt::format("{:.4f}", c.median_ms) : "-",
               c.detail.substr(0, 80));
  }
  for (const auto& e : r.rule.entries)
    fmt::print("   winner {}{} {} ({:.4f} ms)\n", e.h_q ? shape_label + " " : "",
               e.h_q ? std::to_string(e.h_q) : "(all)", e.variant, e.median_ms);
}

}  // namespace nsajit::cli
