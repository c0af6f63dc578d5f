// STUB - replaced by the CDNA MFMA path.
#include "generator/sparse_mla_cdna.hpp"

#include "runtime/error.hpp"

namespace nsajit {
VariantSpace sparse_mla_cdna_space(const Target&, const Geometry&) { return {}; }
RenderedSource sparse_mla_cdna_render(const Variant& v) {
  fail(ErrorCode::internal, "rendering " + v.name(), "generator/sparse_mla_cdna", "not implemented");
}
Variant sparse_mla_cdna_default(const Target& t, const Geometry&) {
  fail(ErrorCode::internal, "default variant for " + t.arch, "generator/sparse_mla_cdna", "not implemented");
}
}  // namespace nsajit
