// nsa-tune variants / emit: the variant space with pruning reasons, and one rendered unit.
#include <fmt/format.h>

#include "generator/kernel_family.hpp"
#include "runtime/error.hpp"
#include "tools/nsa-tune/commands.hpp"
#include "tools/nsa-tune/json.hpp"
#include "tools/nsa-tune/target_option.hpp"

namespace nsajit::cli {
namespace {

struct SpaceOptions {
  std::string family = "sparse_mla_fwd";
  std::string target = "sm_90a";
  int d_qk = 576;
  std::string variant;
};

void add_space_options(CLI::App* cmd, SpaceOptions& o) {
  cmd->add_option("--family", o.family, "sparse_mla_fwd or topk_select")->capture_default_str();
  cmd->add_option("--target", o.target, "sm_90a, gfx90a, gfx942 or native")->capture_default_str();
  cmd->add_option("--d-qk", o.d_qk, "sparse_mla_fwd geometry: 576 or 512")->capture_default_str();
}

void run_variants(const SpaceOptions& o, const GlobalOptions& g) {
  const Family f = family_from_string(o.family);
  const auto space = kernel_family(f).space(resolve_target(o.target), geometry_for(f, o.d_qk));
  if (g.json) {
    std::string j = "{\"kept\":[";
    for (std::size_t i = 0; i < space.kept.size(); ++i)
      j += (i ? "," : "") + json_string(space.kept[i].name());
    j += "],\"pruned\":[";
    for (std::size_t i = 0; i < space.pruned.size(); ++i)
      j += fmt::format("{}{{\"variant\":{},\"reason\":{}}}", i ? "," : "",
                       json_string(space.pruned[i].variant.name()), json_string(space.pruned[i].reason));
    fmt::print("{}]}}\n", j);
    return;
  }
  fmt::print("{} variants of {} for {}: {} kept, {} pruned\n", space.kept.size() + space.pruned.size(),
             o.family, o.target, space.kept.size(), space.pruned.size());
  for (const auto& v : space.kept) fmt::print("  kept    {}\n", v.name());
  for (const auto& p : space.pruned) fmt::print("  pruned  {:<44} {}\n", p.variant.name(), p.reason);
}

void run_emit(const SpaceOptions& o) {
  const Family f = family_from_string(o.family);
  const auto& family = kernel_family(f);
  const Variant v = o.variant.empty()
                        ? family.default_variant(resolve_target(o.target), geometry_for(f, o.d_qk))
                        : variant_from_name(o.variant);
  fmt::print("{}", family.render(v).source);
}

}  // namespace

void register_variants(CLI::App& app, GlobalOptions& g) {
  static SpaceOptions o;
  auto* cmd = app.add_subcommand("variants", "the variant space, with each pruned variant and why");
  add_space_options(cmd, o);
  cmd->add_flag("--json", g.json, "machine-readable output");
  cmd->callback([&g] { run_variants(o, g); });
}

void register_emit(CLI::App& app, GlobalOptions&) {
  static SpaceOptions o;
  auto* cmd = app.add_subcommand("emit", "print the rendered translation unit of one variant");
  add_space_options(cmd, o);
  cmd->add_option("--variant", o.variant, "variant name (default: the family's default variant)");
  cmd->callback([] { run_emit(o); });
}

}  // namespace nsajit::cli
