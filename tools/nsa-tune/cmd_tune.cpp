// nsa-tune tune: tune every requested topk and record winners, binaries and every
// candidate's timing in the cache, one transaction per topk (a tune killed midway leaves
// the topks already finished, and nothing half-written). --devices spreads the topk list
// over the host's GPUs: one worker thread per GPU, each with its own context and its own
// cache connection.
#include <fmt/format.h>

#include <atomic>
#include <mutex>
#include <sstream>
#include <thread>

#include "cache/cache_path.hpp"
#include "cache/layered_cache.hpp"
#include "generator/template_library.hpp"
#include "generator/variant.hpp"
#include "runtime/device_identity.hpp"
#include "runtime/error.hpp"
#include "tools/nsa-tune/commands.hpp"
#include "tools/nsa-tune/progress.hpp"
#include "tools/nsa-tune/tune_record.hpp"
#include "tuner/sparse_mla_tuner.hpp"
#include "tuner/topk_select_tuner.hpp"

namespace nsajit::cli {
namespace {

struct TuneCliOptions {
  std::string family = "sparse_mla_fwd";
  std::vector<int> topks;
  std::vector<int> h_qs = {16, 32, 64, 128};
  long long s_q = 4096;
  int s_kv = 32768;
  int d_qk = 576;
  int reps = 20;
  std::string devices = "0";
  std::vector<int> batches;       // topk_select: batch sizes timed (default 16,128)
  int length = 131072;            // topk_select: row length timed
  std::vector<std::string> only;  // topk_select: tune only these variants
};

std::vector<int> parse_devices(const std::string& spec, Backend& backend) {
  const int n = backend.device_count();
  if (n == 0)
    fail(
        ErrorCode::unavailable, "tuning", "nsa-tune tune",
        fmt::format(
            "tuning needs a GPU, and none was found ({}). Offline work without a GPU: nsa-tune compile --all",
            backend.devices_unavailable_reason()));
  std::vector<int> ids;
  if (spec == "all") {
    for (int i = 0; i < n; ++i) ids.push_back(i);
    return ids;
  }
  std::stringstream ss(spec);
  for (std::string part; std::getline(ss, part, ',');) {
    int id = -1;
    try {
      id = std::stoi(part);
    } catch (const std::exception&) {
    }
    if (id < 0 || id >= n)
      fail(ErrorCode::invalid_argument, "parsing --devices", "nsa-tune tune",
           fmt::format("'{}' is not a GPU ordinal in [0, {}) (or use 'all')", part, n));
    ids.push_back(id);
  }
  return ids;
}

Backend& gpu_backend() {
  if (cuda_backend().device_count() > 0) return cuda_backend();
  if (hip_backend().device_count() > 0) return hip_backend();
  return cuda_backend();
}

void run_tune(const TuneCliOptions& o, const GlobalOptions& g) {
  const Family family = family_from_string(o.family);
  const bool topk_family = family == Family::topk_select;
  const Geometry geometry = topk_family ? Geometry{0, 0} : Geometry{o.d_qk, 512};
  if (o.topks.empty())
    fail(ErrorCode::invalid_argument, "tuning", "nsa-tune tune", "--topk is required, e.g. --topk 512,2048");
  for (int t : o.topks)
    if (t < 1 || t > (topk_family ? 4096 : 16384))
      fail(ErrorCode::invalid_argument, "tuning", "nsa-tune tune",
           fmt::format("topk {} is outside [1, {}]", t, topk_family ? 4096 : 16384));
  Backend& backend = gpu_backend();
  const std::vector<int> devices = parse_devices(o.devices, backend);
  std::optional<std::filesystem::path> explicit_path;
  if (!g.cache_path.empty()) explicit_path = g.cache_path;
  const auto cache_path = resolve_cache_path(explicit_path);
  fmt::print(stderr, "tuning {} topk {} on {} GPU(s) into {}\n", o.family, fmt::join(o.topks, ","),
             devices.size(), cache_path.string());

  std::atomic<std::size_t> next{0};
  std::mutex print_mutex;
  std::vector<std::string> errors;
  auto worker = [&](int ordinal, bool own_progress) {
    try {
      auto device = backend.open_device(ordinal);
      device->make_current();
      const Compiler* compiler = backend.compiler_for(device->info().arch);
      if (compiler == nullptr)
        fail(ErrorCode::unavailable, "tuning", "nsa-tune tune", backend.compiler_unavailable_reason());
      LayeredCache cache(cache_path);
      for (const auto& w : cache.warnings()) fmt::print(stderr, "nsa-tune: {}\n", w);
      const std::string dkey = device_key(device->info());
      const std::string tag = devices.size() > 1 ? fmt::format("[gpu{}] ", ordinal) : "";
      Progress progress(stderr);
      TuneEvents ev;
      if (own_progress) {
        ev.begin = [&](const std::string& phase, std::size_t total) { progress.begin(tag + phase, total); };
        ev.step = [&](const std::string& label) { progress.step(label); };
        ev.note = [&](const std::string& line) { progress.note(tag + line); };
      } else {  // several GPUs: plain per-GPU lines
        ev.begin = [&, tag](const std::string& phase, std::size_t total) {
          std::lock_guard l(print_mutex);
          fmt::print(stderr, "{}{}: {} step(s)\n", tag, phase, total);
        };
        ev.note = [&, tag](const std::string& line) {
          std::lock_guard l(print_mutex);
          fmt::print(stderr, "{}{}\n", tag, line);
        };
      }
      ev.cached_binary = [&](const std::string& key) -> std::optional<std::vector<std::uint8_t>> {
        if (auto b = cache.find_binary(key)) return std::move(b->binary);
        return std::nullopt;
      };
      SparseMlaTuneOptions to;
      to.h_qs = o.h_qs;
      to.s_q = o.s_q;
      to.s_kv = o.s_kv;
      to.d_qk = o.d_qk;
      to.reps = std::max(20, o.reps);
      TopkSelectTuneOptions tk;
      tk.reps = to.reps;
      if (!o.batches.empty()) tk.batches = o.batches;
      tk.length = o.length;
      tk.only = o.only;
      for (std::size_t i = next++; i < o.topks.size(); i = next++) {
        const int topk = o.topks[i];
        TopkTuneResult r = topk_family ? tune_topk_select_k(*device, *compiler, tk, topk, ev)
                                       : tune_sparse_mla_topk(*device, *compiler, to, topk, ev);
        progress.end();
        record_tune_result(cache, *device, *compiler, family, geometry, r, topk_family ? 0 : o.s_q,
                           topk_family ? o.length : o.s_kv, ordinal);
        std::lock_guard l(print_mutex);
        print_tune_result(r, family, fmt::format("{} (GPU {})", dkey, ordinal), topk_family ? "B" : "h_q");
      }
    } catch (const std::exception& e) {
      std::lock_guard l(print_mutex);
      errors.push_back(fmt::format("GPU {}: {}", ordinal, e.what()));
    }
  };
  const auto t0 = std::chrono::steady_clock::now();
  if (devices.size() == 1) {
    worker(devices[0], true);
  } else {
    std::vector<std::thread> pool;
    for (int d : devices) pool.emplace_back(worker, d, false);
    for (auto& t : pool) t.join();
  }
  fmt::print("\ntuned {} topk value(s) on {} GPU(s) in {:.1f} s\n", o.topks.size(), devices.size(),
             std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  if (!errors.empty())
    fail(ErrorCode::internal, "tuning", "nsa-tune tune", fmt::format("{}", fmt::join(errors, "\n")));
}

}  // namespace

void register_tune(CLI::App& app, GlobalOptions& g) {
  static TuneCliOptions o;
  auto* cmd = app.add_subcommand("tune", "tune topk values on the GPU(s) and store the winners in the cache");
  cmd->add_option("--family", o.family, "sparse_mla_fwd or topk_select")->capture_default_str();
  cmd->add_option("--topk", o.topks, "topk values to tune, e.g. 512,2048")->delimiter(',')->required();
  cmd->add_option("--h-q", o.h_qs, "head counts the rule covers")->delimiter(',')->capture_default_str();
  cmd->add_option("--s-q", o.s_q, "query rows of the tuning shape")->capture_default_str();
  cmd->add_option("--s-kv", o.s_kv, "kv rows of the tuning shape")->capture_default_str();
  cmd->add_option("--d-qk", o.d_qk, "576 or 512")->capture_default_str();
  cmd->add_option("--reps", o.reps, "timed runs per candidate (>= 20)")->capture_default_str();
  cmd->add_option("--batch", o.batches, "topk_select: batch sizes to time (default 16,128)")->delimiter(',');
  cmd->add_option("--length", o.length, "topk_select: row length to time")->capture_default_str();
  cmd->add_option(
         "--only", o.only,
         "topk_select: tune only these variants (names from `nsa-tune variants --family topk_select`, "
         "opt-in ones included), e.g. to pin or A/B one kernel")
      ->delimiter(',');
  cmd->add_option("--devices", o.devices, "GPUs to tune on: all, or ordinals like 0,1")
      ->capture_default_str();
  cmd->callback([&g] { run_tune(o, g); });
}

}  // namespace nsajit::cli
