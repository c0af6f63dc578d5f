// Tunes sparse_mla_fwd for one topk: compile every unpruned variant in parallel, check each
// against the CPU reference (a wrong variant never wins), time the survivors on the tuning
// shape for every requested h_q, and return the rule (h_q -> variant) with every timing.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "runtime/backend.hpp"
#include "runtime/dispatch_rule.hpp"

namespace nsajit {

struct SparseMlaTuneOptions {
  std::vector<int> h_qs = {16, 32, 64, 128};
  long long s_q = 4096;
  int s_kv = 32768;
  int d_qk = 576;
  int warmup = 3;
  int reps = 20;
  int jobs = 0;  // parallel compiles (0 = all cores)
};

struct CandidateOutcome {
  std::string variant;
  int h_q = 0;            // 0 for compile/verify outcomes
  std::string status;     // ok, wrong, compile_failed, launch_failed
  double median_ms = -1;  // < 0 when not timed
  std::string detail;
  long long s_q = 0;  // the timed shape's s_q when it is not the tune's (the decode timings)
};

struct CompiledBinary {
  std::string key, variant, arch, compiler;
  std::vector<std::uint8_t> binary;
};

struct TopkTuneResult {
  int topk = 0;
  DispatchRule rule;
  std::vector<CandidateOutcome> candidates;
  std::vector<CompiledBinary> binaries;  // of the variants the rule names
  std::string tuned_shape;               // "h_q=16,32,64,128 s_q=4096 s_kv=32768"
  double seconds = 0;
};

struct TuneEvents {
  std::function<void(const std::string& phase, std::size_t total)> begin = [](const std::string&,
                                                                              std::size_t) {};
  std::function<void(const std::string& label)> step = [](const std::string&) {};
  std::function<void(const std::string& line)> note = [](const std::string&) {};
  // Returns a cached binary for a content key, if any (skips the compile).
  std::function<std::optional<std::vector<std::uint8_t>>(const std::string& key)> cached_binary =
      [](const std::string&) { return std::nullopt; };
};

[[nodiscard]] TopkTuneResult tune_sparse_mla_topk(Device& device, const Compiler& compiler,
                                                  const SparseMlaTuneOptions& options, int topk,
                                                  TuneEvents& events);

}  // namespace nsajit
