// nsa-tune compile: render and compile variants offline (no GPU needed); --report prints
// registers, spills and shared memory / LDS per kernel, read from the binaries.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "generator/kernel_family.hpp"
#include "runtime/binary_resources.hpp"
#include "runtime/error.hpp"
#include "tools/nsa-tune/commands.hpp"
#include "tools/nsa-tune/json.hpp"
#include "tools/nsa-tune/target_option.hpp"
#include "tuner/compile_pool.hpp"

namespace nsajit::cli {
namespace {

struct CompileOptions {
  std::string family = "sparse_mla_fwd";
  std::string target = "sm_90a";
  int d_qk = 576;
  std::string variant;
  bool all = false;
  bool report = false;
  int jobs = 0;
  std::string save_dir;
};

int run_compile(const CompileOptions& o, const GlobalOptions& g) {
  const Family f = family_from_string(o.family);
  const Target target = resolve_target(o.target);
  const auto& family = kernel_family(f);
  std::vector<Variant> variants;
  if (o.all) {
    variants = family.space(target, geometry_for(f, o.d_qk)).kept;
  } else {
    variants = {o.variant.empty() ? family.default_variant(target, geometry_for(f, o.d_qk))
                                  : variant_from_name(o.variant)};
  }
  const Compiler* compiler = &require_compiler(target.arch, "compiling for " + target.arch);
  if (!g.json)
    fmt::print(stderr, "compiling {} variant(s) of {} for {} with {} {}\n", variants.size(), o.family,
               target.arch, compiler->name(), compiler->version());
  const bool tty = isatty(STDERR_FILENO) != 0;
  const auto t0 = std::chrono::steady_clock::now();
  auto results = compile_variants(
      *compiler, variants, o.jobs, [&](const CompiledVariant& cv, std::size_t done, std::size_t total) {
        if (g.json) return;
        if (tty)
          fmt::print(stderr, "\r  [{}/{}] {:<50}", done, total, cv.variant.name());
        else
          fmt::print(stderr, "  [{}/{}] {} {}\n", done, total, cv.variant.name(), cv.ok() ? "ok" : "FAILED");
      });
  if (tty && !g.json) fmt::print(stderr, "\n");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  int failed = 0;
  std::string json = "[";
  if (!g.json && o.report)
    fmt::print("{:<46} {:>9} {:>7} {:>5} {:>5} {:>6} {:>8} {:>10} {:>7} {:>6}\n", "kernel", "bytes",
               "seconds", "regs", "agpr", "sgpr", "spill_B", "sgpr_spill", "smem_B", "waves");
  for (const auto& r : results) {
    if (!r.ok()) {
      ++failed;
      fmt::print(stderr, "FAILED {}: {}\n", r.variant.name(), r.error);
      if (g.json)
        json += fmt::format("{}{{\"variant\":{},\"ok\":false,\"error\":{}}}", json.size() > 1 ? "," : "",
                            json_string(r.variant.name()), json_string(r.error));
      continue;
    }
    if (!o.save_dir.empty()) {
      std::filesystem::create_directories(o.save_dir);
      const auto file = std::filesystem::path(o.save_dir) /
                        (r.variant.name() + (target.vendor == Vendor::nvidia ? ".cubin" : ".co"));
      std::ofstream(file, std::ios::binary)
          .write(reinterpret_cast<const char*>(r.result->binary.data()),
                 static_cast<std::streamsize>(r.result->binary.size()));
    }
    std::vector<KernelResources> res;
    if (o.report) res = binary_resources(target.vendor, r.result->binary);
    if (g.json) {
      json += fmt::format("{}{{\"variant\":{},\"ok\":true,\"bytes\":{},\"seconds\":{:.3f},\"kernels\":[",
                          json.size() > 1 ? "," : "", json_string(r.variant.name()), r.result->binary.size(),
                          r.result->seconds);
      for (std::size_t i = 0; i < res.size(); ++i)
        json += fmt::format(
            "{}{{\"name\":{},\"registers\":{},\"agprs\":{},\"sgprs\":{},\"spill_bytes\":{},\"vgpr_spills\":{}"
            ",\"sgpr_spills\":{},"
            "\"shared_bytes\":{},\"waves_per_simd\":{}}}",
            i ? "," : "", json_string(res[i].kernel_name), res[i].registers, res[i].agprs, res[i].sgprs,
            res[i].spill_bytes, res[i].vgpr_spills, res[i].sgpr_spills, res[i].static_shared_bytes,
            res[i].occupancy_waves_per_simd);
      json += "]}";
      continue;
    }
    if (!o.report) {
      fmt::print("{:<46} {:>9} bytes {:6.2f} s\n", r.variant.name(), r.result->binary.size(),
                 r.result->seconds);
      continue;
    }
    for (const auto& k : res)
      fmt::print("{:<46} {:>9} {:>7.2f} {:>5} {:>5} {:>6} {:>8} {:>10} {:>7} {:>6}\n", k.kernel_name,
                 r.result->binary.size(), r.result->seconds, k.registers, k.agprs, k.sgprs,
                 k.spill_bytes + k.vgpr_spills * 4, k.sgpr_spills, k.static_shared_bytes,
                 k.occupancy_waves_per_simd);
  }
  if (g.json) fmt::print("{}]\n", json);
  std::fflush(stdout);  // the table first, then the summary on stderr (both may go to one file)
  if (!g.json)
    fmt::print(
        stderr, "{} of {} compiled in {:.1f} s{}\n", results.size() - failed, results.size(), seconds,
        target.vendor == Vendor::nvidia ? " (shared memory of sm90 kernels is dynamic: see `variants`)" : "");
  return failed;
}

}  // namespace

void register_compile(CLI::App& app, GlobalOptions& g) {
  static CompileOptions o;
  auto* cmd = app.add_subcommand("compile", "compile variants offline (no GPU needed)");
  cmd->add_option("--family", o.family, "sparse_mla_fwd or topk_select")->capture_default_str();
  cmd->add_option("--target", o.target, "sm_90a, gfx90a, gfx942 or native")->capture_default_str();
  cmd->add_option("--d-qk", o.d_qk, "sparse_mla_fwd geometry: 576 or 512")->capture_default_str();
  auto* variant =
      cmd->add_option("--variant", o.variant, "one variant by name (default: the family's default)");
  cmd->add_flag("--all", o.all, "every unpruned variant")->excludes(variant);
  cmd->add_flag("--report", o.report, "registers, spills, shared memory / LDS per kernel");
  cmd->add_option("--jobs", o.jobs, "parallel compiles (0 = all cores)");
  cmd->add_option("--save-dir", o.save_dir, "also write each binary (.cubin / .co) into this folder");
  cmd->add_flag("--json", g.json, "machine-readable output");
  cmd->callback([&g] {
    if (const int failed = run_compile(o, g); failed > 0)
      fail(ErrorCode::compile_failed, "compiling", "nsa-tune compile",
           fmt::format("{} variant(s) failed", failed));
  });
}

}  // namespace nsajit::cli
