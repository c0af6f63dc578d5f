// Renders and compiles many variants at once. A failed compile is data (kept with its log),
// never an exception that stops the batch.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "generator/compile_request.hpp"
#include "generator/variant.hpp"
#include "runtime/backend.hpp"

namespace nsajit {

struct CompiledVariant {
  Variant variant;
  RenderedSource rendered;
  std::optional<CompileResult> result;  // empty when rendering or compiling failed
  std::string error;                    // the message (with the compiler log) when it failed
  [[nodiscard]] bool ok() const { return result.has_value(); }
};

// Compiles every variant with `compiler` on up to `threads` threads (0 = hardware threads).
// `on_done` (optional) is called after each variant, from the worker threads, serialised.
[[nodiscard]] std::vector<CompiledVariant> compile_variants(
    const Compiler& compiler, const std::vector<Variant>& variants, int threads = 0,
    const std::function<void(const CompiledVariant&, std::size_t done, std::size_t total)>& on_done = {});

}  // namespace nsajit
