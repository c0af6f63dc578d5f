// From a rendered variant to what a Compiler takes, and the content key of its binary.
#pragma once

#include <string>

#include "generator/variant.hpp"
#include "runtime/backend.hpp"

namespace nsajit {

// The CompileRequest for one rendered variant (templates as in-memory headers).
[[nodiscard]] CompileRequest make_compile_request(const Variant& variant, const RenderedSource& rendered);

// The content key of a binary: hash of source + templates + options + compiler + arch.
[[nodiscard]] std::string binary_key(const CompileRequest& request, const Compiler& compiler);

}  // namespace nsajit
