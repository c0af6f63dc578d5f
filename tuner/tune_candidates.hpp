// The candidates of one tune: every unpruned variant rendered, its binary taken from the
// cache or compiled (in parallel), ready to be verified and timed. Shared by both tuners.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "generator/variant.hpp"
#include "runtime/loaded_variant.hpp"
#include "tuner/sparse_mla_tuner.hpp"

namespace nsajit {

struct TuneCandidate {
  Variant variant;
  RenderedSource rendered;
  std::string key;                        // content key of the binary
  std::vector<std::uint8_t> binary;       // empty when the compile failed
  std::unique_ptr<LoadedVariant> loaded;  // set once verified; reset when it proves wrong
  double score = 0;                       // tuner-specific ranking value
};

// Renders `variants`, reuses cached binaries (events.cached_binary), compiles the rest with
// progress reported as `phase`; compile failures are appended to `failures`.
[[nodiscard]] std::vector<TuneCandidate> prepare_candidates(const Compiler& compiler,
                                                            const std::vector<Variant>& variants, int jobs,
                                                            const std::string& phase, TuneEvents& events,
                                                            std::vector<CandidateOutcome>& failures);

}  // namespace nsajit
