#include "generator/variant.hpp"

#include <fmt/format.h>

#include <charconv>

#include "runtime/error.hpp"

namespace nsajit {

std::string_view to_string(Family f) noexcept {
  return f == Family::sparse_mla_fwd ? "sparse_mla_fwd" : "topk_select";
}

Family family_from_string(std::string_view name) {
  if (name == "sparse_mla_fwd") return Family::sparse_mla_fwd;
  if (name == "topk_select") return Family::topk_select;
  fail(ErrorCode::invalid_argument, "parsing a kernel family", "generator/variant",
       fmt::format("unknown family '{}'; known: sparse_mla_fwd, topk_select", name));
}

std::string Geometry::key() const {
  return fmt::format("d{}v{}", d_qk, d_v);
}

int Variant::get_or(std::string_view knob, int absent) const noexcept {
  for (const auto& k : knobs)
    if (k.name == knob) return k.value;
  return absent;
}

int Variant::get(std::string_view knob) const {
  for (const auto& k : knobs)
    if (k.name == knob) return k.value;
  fail(ErrorCode::not_found, "reading a variant knob", "generator/variant",
       fmt::format("variant {} has no knob '{}'", name(), knob));
}

namespace {
std::string_view family_prefix(Family f) {
  return f == Family::sparse_mla_fwd ? "nsa_fwd" : "nsa_topk";
}
}  // namespace

std::string Variant::name() const {
  std::string n = fmt::format("{}_{}", family_prefix(family), target.short_name());
  if (family == Family::sparse_mla_fwd) n += fmt::format("_d{}", geometry.d_qk);
  for (const auto& k : knobs) n += fmt::format("_{}{}", k.name, k.value);
  return n;
}

Variant variant_from_name(std::string_view name) {
  auto bad = [&](std::string_view why) -> Variant {
    fail(ErrorCode::invalid_argument, "parsing a variant name", "generator/variant",
         fmt::format("'{}' is not a variant name: {}", name, why));
  };
  Variant v;
  std::string_view rest;
  if (name.starts_with("nsa_fwd_")) {
    v.family = Family::sparse_mla_fwd;
    rest = name.substr(8);
  } else if (name.starts_with("nsa_topk_")) {
    v.family = Family::topk_select;
    v.geometry = Geometry{0, 0};
    rest = name.substr(9);
  } else {
    return bad("it starts with neither nsa_fwd_ nor nsa_topk_");
  }
  std::vector<std::string_view> parts;
  while (!rest.empty()) {
    auto pos = rest.find('_');
    parts.push_back(rest.substr(0, pos));
    rest = pos == std::string_view::npos ? std::string_view{} : rest.substr(pos + 1);
  }
  if (parts.empty()) return bad("no target");
  std::string arch(parts[0]);
  if (arch.starts_with("sm")) arch = "sm_" + arch.substr(2);
  v.target = target_from_arch(arch);
  for (std::size_t i = 1; i < parts.size(); ++i) {
    auto p = parts[i];
    std::size_t digit = 0;
    while (digit < p.size() && (p[digit] < '0' || p[digit] > '9')) ++digit;
    if (digit == 0 || digit == p.size()) return bad(fmt::format("part '{}' is not <knob><value>", p));
    int value = 0;
    auto [ptr, ec] = std::from_chars(p.data() + digit, p.data() + p.size(), value);
    if (ec != std::errc{} || ptr != p.data() + p.size()) return bad(fmt::format("bad number in '{}'", p));
    std::string knob(p.substr(0, digit));
    if (v.family == Family::sparse_mla_fwd && knob == "d") {
      v.geometry.d_qk = value;
    } else {
      v.knobs.push_back({knob, value});
    }
  }
  return v;
}

}  // namespace nsajit
