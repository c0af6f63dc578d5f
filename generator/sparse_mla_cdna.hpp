// sparse_mla_fwd on AMD CDNA (gfx90a, gfx942): variant space and renderer for the MFMA
// template templates/sparse_mla_fwd/cdna.h. Called by the sparse_mla_fwd family.
#pragma once

#include "generator/variant.hpp"

namespace nsajit {

[[nodiscard]] VariantSpace sparse_mla_cdna_space(const Target& target, const Geometry& geometry);
[[nodiscard]] RenderedSource sparse_mla_cdna_render(const Variant& variant);
[[nodiscard]] Variant sparse_mla_cdna_default(const Target& target, const Geometry& geometry);

}  // namespace nsajit
