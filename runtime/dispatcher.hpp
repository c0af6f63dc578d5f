// The runtime dispatcher: serves calls from the cache. Lookup per call:
//   in-memory table -> SQLite winner for this topk -> cached binary -> compile once and store.
// A cache hit compiles nothing; a new s_q or h_q never compiles (the winner's rule maps
// h_q to a variant and derives the topk split from s_q and the multiprocessor count).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "cache/layered_cache.hpp"
#include "generator/variant.hpp"
#include "nsajit/nsajit.h"
#include "runtime/backend.hpp"
#include "runtime/dispatch_rule.hpp"
#include "runtime/loaded_variant.hpp"

namespace nsajit {

struct DispatcherOptions {
  int device_ordinal = 0;
  std::string backend;             // "cuda", "hip", "" = first backend with a GPU
  std::string cache_path;          // "" = default (NSA_JIT_CACHE, XDG_CACHE_HOME ...)
  std::string shipped_cache_path;  // optional read-only cache under the writable one
  bool verbose = true;             // notices (said once each) also go to stderr
  bool use_cache = true;           // false: in-memory only (tests)
};

class Dispatcher {
 public:
  explicit Dispatcher(const DispatcherOptions& options);
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  void sparse_mla_fwd(const nsajit_sparse_mla_args& args, void* stream);
  void topk_select(const nsajit_topk_args& args, void* stream);

  // The loaded variant a sparse_mla_fwd call with this topk and h_q over `rows` query rows
  // (batch x s_q; 0: the main entry, as for many rows) would use (for benches); `splits_rule`
  // receives the winner's split rule ("fill_sms" or "none").
  LoadedVariant& sparse_mla_variant_for(int d_qk, int topk, int h_q, std::string* splits_rule = nullptr,
                                        long long rows = 0);

  // The loaded topk_select variant a call with this k would use (for benches).
  LoadedVariant& topk_select_variant_for(int k);

  [[nodiscard]] std::int64_t compile_count() const;
  [[nodiscard]] const DeviceInfo& device_info() const;
  [[nodiscard]] Device& device();
  // Everything said once so far (default variant used, nearest rule, ignored cache rows ...).
  [[nodiscard]] std::vector<std::string> notices() const;

 private:
  struct Resolved {
    DispatchRule rule;
    std::vector<LoadedVariant*> loaded;         // parallel to rule.entries
    std::vector<LoadedVariant*> decode_loaded;  // parallel to rule.decode_entries
  };
  const Resolved& resolve(Family family, const Geometry& geometry, int topk);
  // The rule entry's loaded variant for h_q (nearest tuned h_q, said once).
  // `chosen` (optional) receives the rule entry it serves.
  LoadedVariant& pick(const Resolved& r, int topk, int h_q, const RuleEntry** chosen = nullptr);
  // pick(), then the rule's decode entry instead when `rows` leave the main entry's grid short
  // of the SMs (the decode regime).
  LoadedVariant& pick_for_rows(const Resolved& r, int topk, int h_q, long long rows);
  LoadedVariant& load(const Variant& variant, const std::string& binary_key);
  void* split_workspace(std::size_t bytes);
  void say_once(const std::string& message);
  void ensure_current();

  DispatcherOptions options_;
  std::uint64_t id_ = 0;  // unique per dispatcher in this process (never reused)
  Backend* backend_ = nullptr;
  std::unique_ptr<Device> device_;
  Target target_;
  std::string device_key_;
  std::unique_ptr<LayeredCache> cache_;
  mutable std::mutex mutex_;
  struct TableKey {
    Family family;
    int d_qk;
    int topk;
    auto operator<=>(const TableKey&) const = default;
  };
  std::map<TableKey, Resolved> table_;
  std::map<std::string, std::unique_ptr<LoadedVariant>> variants_;  // by variant name
  // Workspaces are allocated once, at the first call that needs one, at their largest size,
  // so a later call (also one being captured into a graph) never allocates. They are shared
  // by every stream of this context: calls that need one must not run on two streams at once.
  DeviceMemory split_workspace_;  // sparse_mla_fwd topk splits
  // topk_select, per loaded variant (zeroed once); keyed by the variant's address, which lives as
  // long as the dispatcher, so that a call looks it up without building its name.
  std::map<const LoadedVariant*, DeviceMemory> topk_workspaces_;
  std::int64_t compiles_ = 0;
  std::vector<std::string> notices_;
  std::set<std::string> said_;
  std::set<std::pair<int, int>> nearest_said_;  // (topk, h_q) already reported as untuned
};

}  // namespace nsajit
