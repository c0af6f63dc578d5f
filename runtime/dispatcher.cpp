#include "runtime/dispatcher.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>

#include "cache/cache_path.hpp"
#include "generator/compile_request.hpp"
#include "generator/kernel_family.hpp"
#include "generator/template_library.hpp"
#include "runtime/device_identity.hpp"
#include "runtime/error.hpp"
#include "runtime/sparse_mla_launch.hpp"
#include "runtime/sparse_mla_runner.hpp"
#include "runtime/tensor_view.hpp"
#include "runtime/topk_select_launch.hpp"

namespace nsajit {
namespace {

constexpr std::string_view kWhere = "runtime/dispatcher";

Backend& pick_backend(const std::string& name) {
  if (name == "cuda") return cuda_backend();
  if (name == "hip") return hip_backend();
  if (!name.empty())
    fail(ErrorCode::invalid_argument, "choosing a backend", std::string(kWhere),
         fmt::format("unknown backend '{}' (cuda, hip or empty for the first with a GPU)", name));
  if (cuda_backend().device_count() > 0) return cuda_backend();
  if (hip_backend().device_count() > 0) return hip_backend();
  fail(ErrorCode::unavailable, "finding a GPU", std::string(kWhere),
       fmt::format("no GPU found. cuda: {}; hip: {}", cuda_backend().devices_unavailable_reason(),
                   hip_backend().devices_unavailable_reason()));
}

}  // namespace

Dispatcher::Dispatcher(const DispatcherOptions& options) : options_(options) {
  static std::atomic<std::uint64_t> next_id{1};
  id_ = next_id++;
  backend_ = &pick_backend(options.backend);
  if (options.device_ordinal < 0 || options.device_ordinal >= backend_->device_count())
    fail(ErrorCode::invalid_argument, "opening a device", std::string(kWhere),
         fmt::format(
             "device ordinal {} is out of range: backend {} has {} GPU(s){}", options.device_ordinal,
             backend_->name(), backend_->device_count(),
             backend_->device_count() == 0 ? " (" + backend_->devices_unavailable_reason() + ")" : ""));
  device_ = backend_->open_device(options.device_ordinal);
  device_->make_current();
  target_ = target_from_arch(device_->info().arch);
  device_key_ = device_key(device_->info());
  if (options.use_cache) {
    std::optional<std::filesystem::path> shipped;
    if (!options.shipped_cache_path.empty())
      shipped = options.shipped_cache_path;
    else if (const char* env = std::getenv("NSA_JIT_SHIPPED_CACHE"); env != nullptr && *env != '\0')
      shipped = env;
    std::optional<std::filesystem::path> writable;
    if (!options.cache_path.empty()) writable = options.cache_path;
    cache_ = std::make_unique<LayeredCache>(resolve_cache_path(writable), shipped);
    for (const auto& w : cache_->warnings()) say_once(w);
  }
}

Dispatcher::~Dispatcher() = default;

std::int64_t Dispatcher::compile_count() const {
  std::lock_guard lock(mutex_);
  return compiles_;
}

const DeviceInfo& Dispatcher::device_info() const {
  return device_->info();
}
Device& Dispatcher::device() {
  return *device_;
}

std::vector<std::string> Dispatcher::notices() const {
  std::lock_guard lock(mutex_);
  return notices_;
}

void Dispatcher::ensure_current() {
  // Setting the context costs a driver call; a thread that stays with one dispatcher pays
  // it once. (A thread switching between dispatchers of different GPUs sets it again.)
  thread_local std::uint64_t current_on_this_thread = 0;  // the id of the dispatcher last made current
  if (current_on_this_thread == id_) return;
  device_->make_current();
  current_on_this_thread = id_;
}

void Dispatcher::say_once(const std::string& message) {
  if (!said_.insert(message).second) return;
  notices_.push_back(message);
  if (options_.verbose) std::fprintf(stderr, "nsa-jit: %s\n", message.c_str());
}

LoadedVariant& Dispatcher::load(const Variant& variant, const std::string& key_hint) {
  const std::string name = variant.name();
  if (auto it = variants_.find(name); it != variants_.end()) return *it->second;
  const RenderedSource rendered = kernel_family(variant.family).render(variant);
  std::unique_ptr<LoadedVariant> lv;

  auto try_cached = [&](const std::string& key) {
    if (key.empty() || !cache_ || lv) return;
    const auto rec = cache_->find_binary(key);
    if (!rec) return;
    try {
      lv = load_variant(*device_, variant, rec->binary, rendered.kernel_names);
    } catch (const Error& e) {
      say_once(fmt::format("cached binary {} of {} could not be loaded ({}); compiling it again", key, name,
                           e.what()));
    }
  };
  try_cached(key_hint);
  if (!lv) {
    const Compiler* compiler = backend_->compiler_for(variant.target.arch);
    if (compiler == nullptr)
      fail(ErrorCode::unavailable, "compiling " + name, std::string(kWhere),
           "no binary in the cache and no compiler: " + backend_->compiler_unavailable_reason());
    const CompileRequest request = make_compile_request(variant, rendered);
    const std::string key = binary_key(request, *compiler);
    try_cached(key);
    if (!lv) {
      CompileResult result = compiler->compile(request);
      ++compiles_;
      lv = load_variant(*device_, variant, result.binary, rendered.kernel_names);
      if (cache_) {
        try {
          cache_->put_binary(
              BinaryRecord{key, name, variant.target.arch, compiler->version(), "", result.binary});
        } catch (const Error& e) {
          say_once(fmt::format("could not store the binary of {} in the cache: {}", name, e.what()));
        }
      }
    }
  }
  return *(variants_[name] = std::move(lv));
}

const Dispatcher::Resolved& Dispatcher::resolve(Family family, const Geometry& geometry, int topk) {
  const TableKey key{family, geometry.d_qk, topk};
  if (auto it = table_.find(key); it != table_.end()) return it->second;

  std::optional<DispatchRule> rule;
  if (cache_) {
    try {
      const WinnerKey wk{device_key_, std::string(to_string(family)), geometry.key(), topk};
      if (auto w = cache_->find_winner(wk)) {
        if (w->template_hash != template_hash()) {
          say_once(fmt::format(
              "ignoring the cached winner for {} topk {}: tuned with kernel templates {}, these are {} "
              "(re-tune with nsa-tune tune)",
              to_string(family), topk, w->template_hash, template_hash()));
        } else {
          try {
            rule = DispatchRule::from_json(w->rule);
          } catch (const Error& e) {
            say_once(fmt::format("ignoring the cached winner for {} topk {}: {}", to_string(family), topk,
                                 e.what()));
          }
        }
      } else {
        std::vector<std::string> others;
        for (const auto& o : cache_->winners_for(std::string(to_string(family)), geometry.key(), topk))
          others.push_back(o.key.device);
        if (!others.empty())
          say_once(
              fmt::format("the cache has {} topk {} winners only for other GPUs ({}), not for {}: ignored",
                          to_string(family), topk, fmt::join(others, "; "), device_key_));
      }
    } catch (const Error& e) {
      say_once(fmt::format("cache lookup failed, continuing without it: {}", e.what()));
    }
  }
  Resolved resolved;
  if (rule) {
    try {
      auto load_entries = [&](const std::vector<RuleEntry>& entries, std::vector<LoadedVariant*>& loaded) {
        for (const auto& e : entries) {
          const Variant v = variant_from_name(e.variant);
          if (v.target.arch != target_.arch || v.family != family || !(v.geometry == geometry))
            fail(ErrorCode::cache_error, "checking a cached rule", std::string(kWhere),
                 fmt::format("variant {} does not fit {} on {}", e.variant, geometry.key(), target_.arch));
          loaded.push_back(&load(v, e.binary_key));
        }
      };
      load_entries(rule->entries, resolved.loaded);
      load_entries(rule->decode_entries, resolved.decode_loaded);
      resolved.rule = *rule;
    } catch (const Error& e) {
      say_once(
          fmt::format("ignoring the cached winner for {} topk {}: {}", to_string(family), topk, e.what()));
      resolved = Resolved{};
    }
  }
  if (resolved.loaded.empty()) {
    const Variant v = kernel_family(family).default_variant(target_, geometry);
    say_once(
        fmt::format("no tuned winner for {} topk {} on {}: using the default variant {} "
                    "(run `nsa-tune tune --family {} --topk {}`)",
                    to_string(family), topk, device_key_, v.name(), to_string(family), topk));
    resolved.rule.entries = {RuleEntry{0, v.name(), "", 0.0}};
    resolved.loaded = {&load(v, "")};
  }
  return table_[key] = std::move(resolved);
}

void* Dispatcher::split_workspace(std::size_t bytes) {
  if (split_workspace_.bytes() < bytes) {
    // A split happens only while rows x head blocks < SMs, so splits x rows x h_q stays under
    // 2 x SMs x 128 heads: one allocation of that bound serves every later split.
    const std::size_t bound =
        2ull * static_cast<std::size_t>(device_->info().multiprocessors) * 128 * (512 + 2) * sizeof(float);
    split_workspace_ = device_->allocate(std::max(bytes, bound));
  }
  return split_workspace_.get();
}

LoadedVariant& Dispatcher::pick(const Resolved& r, int topk, int h_q, const RuleEntry** chosen) {
  bool exact = false;
  const RuleEntry& entry = r.rule.for_h_q(h_q, exact);
  if (chosen != nullptr) *chosen = &entry;
  // Formatted only the first time (the per-call path must not allocate).
  if (!exact && nearest_said_.insert({topk, h_q}).second)
    say_once(fmt::format("topk {}: h_q {} was not tuned; using the rule of h_q {} ({})", topk, h_q, entry.h_q,
                         entry.variant));
  return *r.loaded[static_cast<std::size_t>(&entry - r.rule.entries.data())];
}

LoadedVariant& Dispatcher::pick_for_rows(const Resolved& r, int topk, int h_q, long long rows) {
  const RuleEntry* main_entry = nullptr;
  LoadedVariant& main = pick(r, topk, h_q, &main_entry);
  if (rows <= 0 || r.rule.split != "fill_sms" || r.decode_loaded.empty()) return main;
  const RuleEntry* decode = r.rule.decode_for(*main_entry);
  if (decode == nullptr) return main;
  const int bh = main.variant.get("bh");
  const long long ctas = rows * ((h_q + bh - 1) / bh);
  if (!sparse_mla_grid_leaves_sms_idle(ctas, device_->info().multiprocessors, main.blocks_per_sm))
    return main;
  return *r.decode_loaded[static_cast<std::size_t>(decode - r.rule.decode_entries.data())];
}

void Dispatcher::sparse_mla_fwd(const nsajit_sparse_mla_args& args, void* stream) {
  const SparseMlaProblem problem = validate_sparse_mla(args);
  std::lock_guard lock(mutex_);
  ensure_current();
  const Resolved& r = resolve(Family::sparse_mla_fwd, Geometry{problem.d_qk, 512}, problem.params.topk);
  LoadedVariant& lv = pick_for_rows(r, problem.params.topk, problem.params.h_q, problem.rows());
  const int bh = lv.variant.get("bh"), bt = lv.variant.get("bt");
  int splits = 1;
  if (r.rule.split == "fill_sms") {
    const long long ctas = problem.rows() * ((problem.params.h_q + bh - 1) / bh);
    splits =
        choose_topk_splits(ctas, device_->info().multiprocessors, problem.params.topk, bt, lv.blocks_per_sm);
  }
  void* workspace = splits > 1 ? split_workspace(sparse_mla_workspace_bytes(problem, splits)) : nullptr;
  launch_sparse_mla(*device_, lv, plan_sparse_mla(problem, lv.variant, splits, workspace), stream);
}

LoadedVariant& Dispatcher::sparse_mla_variant_for(int d_qk, int topk, int h_q, std::string* splits_rule,
                                                  long long rows) {
  std::lock_guard lock(mutex_);
  ensure_current();
  const Resolved& r = resolve(Family::sparse_mla_fwd, Geometry{d_qk, 512}, topk);
  if (splits_rule != nullptr) *splits_rule = r.rule.split;
  return pick_for_rows(r, topk, h_q, rows);
}

LoadedVariant& Dispatcher::topk_select_variant_for(int k) {
  std::lock_guard lock(mutex_);
  ensure_current();
  const Resolved& r = resolve(Family::topk_select, Geometry{0, 0}, k);
  return *r.loaded.front();
}

static TopkSelectProblem validate_topk_args(const nsajit_topk_args& a) {
  constexpr std::string_view op = "topk_select";
  TensorCheck scores{op, "scores", a.scores};
  scores.required().dtype(NSAJIT_DTYPE_FP32).ndim_in(2, 2).contiguous_last().nonnegative_strides().aligned(4);
  const std::int64_t batch = a.scores.shape[0], length = a.scores.shape[1];
  TensorCheck out{op, "indices", a.indices};
  out.required().dtype(NSAJIT_DTYPE_INT32).ndim_in(2, 2).contiguous_last().nonnegative_strides().aligned(4);
  out.dim(0, batch, "B, as in scores").dim(1, a.k, "k");
  TensorCheck len{op, "lengths", a.lengths};
  if (len.present())
    len.dtype(NSAJIT_DTYPE_INT32).ndim_in(1, 1).dim(0, batch, "B, as in scores").contiguous_last().aligned(4);
  if (batch > std::numeric_limits<int>::max() || length > std::numeric_limits<int>::max())
    scores.fail_with(fmt::format("shape [{}, {}] is too large", batch, length));
  TopkSelectProblem p;
  p.scores = static_cast<const float*>(a.scores.data);
  p.score_row_stride = batch > 1 ? a.scores.strides[0] : length;
  p.batch = static_cast<int>(batch);
  p.length = static_cast<int>(length);
  p.lengths = static_cast<const std::int32_t*>(a.lengths.data);
  p.indices = static_cast<std::int32_t*>(a.indices.data);
  p.out_row_stride = batch > 1 ? a.indices.strides[0] : a.k;
  p.k = a.k;
  p.sorted = a.sorted != 0;
  validate_topk_select_problem(p);
  return p;
}

void Dispatcher::topk_select(const nsajit_topk_args& args, void* stream) {
  const TopkSelectProblem problem = validate_topk_args(args);
  std::lock_guard lock(mutex_);
  ensure_current();
  const Resolved& r = resolve(Family::topk_select, Geometry{0, 0}, problem.k);
  LoadedVariant& lv = pick(r, problem.k, 0);
  const std::size_t ws_bytes = topk_select_workspace_bytes(lv.variant, device_->info());
  void* workspace = nullptr;
  if (ws_bytes > 0) {
    // Zeroed once; every launch leaves it zeroed again (its row counters), so no per-call memset.
    auto& ws = topk_workspaces_[&lv];
    if (ws.bytes() < ws_bytes) {
      ws = device_->allocate(ws_bytes);
      device_->fill_bytes(ws.get(), 0, ws_bytes);
    }
    workspace = ws.get();
  }
  const TopkSelectLaunch launch =
      plan_topk_select(lv.variant, device_->info(), problem, workspace, ws_bytes, lv.topk_cluster_fit);
  launch_topk_select(*device_, lv.kernels[0], launch, stream);
}

}  // namespace nsajit
