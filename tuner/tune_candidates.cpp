#include "tuner/tune_candidates.hpp"

#include "generator/compile_request.hpp"
#include "generator/kernel_family.hpp"
#include "tuner/compile_pool.hpp"

namespace nsajit {

std::vector<TuneCandidate> prepare_candidates(const Compiler& compiler, const std::vector<Variant>& variants,
                                              int jobs, const std::string& phase, TuneEvents& events,
                                              std::vector<CandidateOutcome>& failures) {
  std::vector<TuneCandidate> candidates;
  std::vector<Variant> to_compile;
  for (const auto& v : variants) {
    TuneCandidate c{v, kernel_family(v.family).render(v), "", {}, nullptr, 0};
    c.key = binary_key(make_compile_request(v, c.rendered), compiler);
    if (auto cached = events.cached_binary(c.key))
      c.binary = std::move(*cached);
    else
      to_compile.push_back(v);
    candidates.push_back(std::move(c));
  }
  events.begin(phase, to_compile.size());
  auto compiled = compile_variants(
      compiler, to_compile, jobs,
      [&](const CompiledVariant& cv, std::size_t, std::size_t) { events.step(cv.variant.name()); });
  for (auto& cv : compiled)
    for (auto& c : candidates)
      if (c.variant.name() == cv.variant.name()) {
        if (cv.ok())
          c.binary = std::move(cv.result->binary);
        else
          failures.push_back({c.variant.name(), 0, "compile_failed", -1, cv.error.substr(0, 2000)});
      }
  return candidates;
}

}  // namespace nsajit
