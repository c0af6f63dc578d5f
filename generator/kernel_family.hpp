// A kernel family: its variant space with pruning, and its renderer. Every family is served
// by the same generator, tuner, cache and dispatcher.
#pragma once

#include "generator/variant.hpp"

namespace nsajit {

class KernelFamily {
 public:
  virtual ~KernelFamily() = default;
  [[nodiscard]] virtual Family family() const noexcept = 0;
  // The whole space for (target, geometry), each pruned variant with its reason.
  [[nodiscard]] virtual VariantSpace space(const Target& target, const Geometry& geometry) const = 0;
  // One self-contained translation unit for the variant (includes a templates/ header).
  [[nodiscard]] virtual RenderedSource render(const Variant& variant) const = 0;
  // The variant the dispatcher uses when the cache has no winner (documented in README).
  [[nodiscard]] virtual Variant default_variant(const Target& target, const Geometry& geometry) const = 0;
};

[[nodiscard]] const KernelFamily& kernel_family(Family family);

}  // namespace nsajit
