// STUB - replaced by the sparse_mla_fwd family.
#include "generator/kernel_family.hpp"
#include "runtime/error.hpp"

namespace nsajit {
namespace {
class SparseMlaFwdFamily final : public KernelFamily {
 public:
  Family family() const noexcept override { return Family::sparse_mla_fwd; }
  VariantSpace space(const Target&, const Geometry&) const override { return {}; }
  RenderedSource render(const Variant&) const override {
    fail(ErrorCode::internal, "rendering", "generator/sparse_mla_fwd_family", "not implemented");
  }
  Variant default_variant(const Target&, const Geometry&) const override {
    fail(ErrorCode::internal, "default variant", "generator/sparse_mla_fwd_family", "not implemented");
  }
};
}  // namespace
const KernelFamily& sparse_mla_fwd_family() {
  static const SparseMlaFwdFamily f;
  return f;
}
}  // namespace nsajit
