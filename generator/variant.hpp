// The variant model: a kernel family, a target, a geometry and named integer knobs.
// A variant's name is its identity: the same string in logs, the cache and nsa-tune filters.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "generator/target.hpp"

namespace nsajit {

enum class Family { sparse_mla_fwd, topk_select };
[[nodiscard]] std::string_view to_string(Family f) noexcept;
// Throws Error(invalid_argument) for an unknown name.
[[nodiscard]] Family family_from_string(std::string_view name);

// Compile-time problem shape. sparse_mla_fwd: d_qk in {576, 512}, d_v = 512.
// topk_select has no geometry (both fields 0).
struct Geometry {
  int d_qk = 576;
  int d_v = 512;
  friend bool operator==(const Geometry&, const Geometry&) = default;
  [[nodiscard]] std::string key() const;  // "d576v512" - used in cache keys
};

struct Knob {
  std::string name;  // short, lower case: "bh", "bt", "w", "st", "t", "i", "r" ...
  int value = 0;
  friend bool operator==(const Knob&, const Knob&) = default;
};

struct Variant {
  Family family = Family::sparse_mla_fwd;
  Target target;
  Geometry geometry;
  std::vector<Knob> knobs;  // in naming order

  // Value of a knob; throws Error(not_found) when absent.
  [[nodiscard]] int get(std::string_view knob) const;
  // Value of an optional knob (appended to a family's later variants), or `absent`.
  [[nodiscard]] int get_or(std::string_view knob, int absent) const noexcept;
  // e.g. "nsa_fwd_sm90a_d576_bh16_bt64_w4_st2", "nsa_topk_sm90a_t512_i8_r8".
  // Also the extern "C" kernel symbol (plus a suffix for secondary kernels).
  [[nodiscard]] std::string name() const;
};

// Parses a name produced by Variant::name(); throws Error(invalid_argument) otherwise.
[[nodiscard]] Variant variant_from_name(std::string_view name);

struct PrunedVariant {
  Variant variant;
  std::string reason;  // "shared memory 245760 B > 232448 B", "bh 128 needs 8 warps" ...
};

struct VariantSpace {
  std::vector<Variant> kept;
  std::vector<PrunedVariant> pruned;
};

// One rendered translation unit, ready for a Compiler.
struct RenderedSource {
  std::string source;                     // the TU: includes a template, instantiates it
  std::vector<std::string> kernel_names;  // extern "C" symbols it defines
  std::vector<std::string> options;       // compiler options (without the arch)
};

}  // namespace nsajit
