// STUB - replaced by the topk_select family.
#include "generator/kernel_family.hpp"
#include "runtime/error.hpp"

namespace nsajit {
namespace {
class TopkSelectFamily final : public KernelFamily {
 public:
  Family family() const noexcept override { return Family::topk_select; }
  VariantSpace space(const Target&, const Geometry&) const override { return {}; }
  RenderedSource render(const Variant&) const override {
    fail(ErrorCode::internal, "rendering", "generator/topk_select_family", "not implemented");
  }
  Variant default_variant(const Target&, const Geometry&) const override {
    fail(ErrorCode::internal, "default variant", "generator/topk_select_family", "not implemented");
  }
};
}  // namespace
const KernelFamily& topk_select_family() {
  static const TopkSelectFamily f;
  return f;
}
}  // namespace nsajit
