// nsa-tune list | show | clear | export | import: the cache file.
#include <fmt/format.h>

#include <optional>

#include "cache/cache_path.hpp"
#include "cache/store.hpp"
#include "runtime/dispatch_rule.hpp"
#include "runtime/error.hpp"
#include "tools/nsa-tune/commands.hpp"
#include "tools/nsa-tune/json.hpp"

namespace nsajit::cli {
namespace {

std::filesystem::path cache_file(const GlobalOptions& g) {
  std::optional<std::filesystem::path> p;
  if (!g.cache_path.empty()) p = g.cache_path;
  return resolve_cache_path(p);
}

CacheStore open_existing(const GlobalOptions& g, OpenMode mode) {
  const auto path = cache_file(g);
  if (!std::filesystem::exists(path))
    fail(ErrorCode::not_found, "opening the cache", "nsa-tune",
         fmt::format("{} does not exist (tune first, or pass --cache)", path.string()));
  return CacheStore::open(path, mode);
}

std::string winner_json(const WinnerRecord& w) {
  return fmt::format(
      "{{\"device\":{},\"family\":{},\"geometry\":{},\"topk\":{},\"rule\":{},\"default_variant\":{},"
      "\"template_hash\":{},"
      "\"generator_version\":{},\"compiler\":{},\"driver\":{},\"arch\":{},\"tuned_shape\":{},\"created_at\":{"
      "}}}",
      json_string(w.key.device), json_string(w.key.family), json_string(w.key.geometry), w.key.topk,
      w.rule.empty() ? "null" : w.rule, json_string(w.default_variant), json_string(w.template_hash),
      json_string(w.generator_version), json_string(w.compiler), json_string(w.driver), json_string(w.arch),
      json_string(w.tuned_shape), json_string(w.created_at));
}

std::string rule_summary(const std::string& rule_json) {
  try {
    const DispatchRule r = DispatchRule::from_json(rule_json);
    std::string s;
    for (const auto& e : r.entries) s += fmt::format("{}h{}={}", s.empty() ? "" : " ", e.h_q, e.variant);
    for (const auto& e : r.decode_entries) s += fmt::format(" decode:h{}={}", e.h_q, e.variant);
    return s + " split=" + r.split;
  } catch (const Error&) {
    return "(unreadable rule)";
  }
}

void run_list(const GlobalOptions& g) {
  auto store = open_existing(g, OpenMode::read_only);
  const auto winners = store.list_winners();
  if (g.json) {
    std::string j = "[";
    for (std::size_t i = 0; i < winners.size(); ++i) j += (i ? "," : "") + winner_json(winners[i]);
    fmt::print("{}]\n", j);
    return;
  }
  fmt::print("{} ({} winner(s))\n", store.path().string(), winners.size());
  for (const auto& w : winners)
    fmt::print("  {:<15} {:<9} topk {:<6} {:<40} {}\n    {}\n", w.key.family, w.key.geometry, w.key.topk,
               w.key.device, w.created_at, rule_summary(w.rule));
}

struct ShowOptions {
  std::string family = "sparse_mla_fwd";
  int topk = 2048;
  std::string device;
};

void run_show(const ShowOptions& o, const GlobalOptions& g) {
  auto store = open_existing(g, OpenMode::read_only);
  std::vector<WinnerRecord> shown;
  for (const auto& w : store.list_winners())
    if (w.key.family == o.family && w.key.topk == o.topk && (o.device.empty() || w.key.device == o.device))
      shown.push_back(w);
  if (g.json) {
    std::string j = "[";
    for (std::size_t i = 0; i < shown.size(); ++i) j += (i ? "," : "") + winner_json(shown[i]);
    fmt::print("{}]\n", j);
    return;
  }
  if (shown.empty()) fmt::print("no winner for {} topk {}\n", o.family, o.topk);
  for (const auto& w : shown) {
    fmt::print("{} {} topk {} on {}\n  rule: {}\n  tuned on: {}\n  templates {} | {} | driver {} | {}\n",
               w.key.family, w.key.geometry, w.key.topk, w.key.device, rule_summary(w.rule), w.tuned_shape,
               w.template_hash, w.compiler, w.driver, w.created_at);
    const auto timings = store.timings_for(w.key.device, w.key.family, w.key.topk);
    fmt::print("  {} candidate timing(s):\n", timings.size());
    for (const auto& t : timings)
      fmt::print("    h_q {:<4} s_q {:<6} {:<46} {:<14} {}\n", t.h_q, t.s_q, t.variant, to_string(t.status),
                 t.median_ms ? fmt::format("{:.4f} ms", *t.median_ms) : t.detail.substr(0, 60));
  }
}

}  // namespace

void register_cache_commands(CLI::App& app, GlobalOptions& g) {
  auto* list = app.add_subcommand("list", "the winners in the cache");
  list->add_flag("--json", g.json, "machine-readable output");
  list->callback([&g] { run_list(g); });

  static ShowOptions show_opts;
  auto* show = app.add_subcommand("show", "one topk's winners, provenance and every candidate's timing");
  show->add_option("--family", show_opts.family, "sparse_mla_fwd or topk_select")->capture_default_str();
  show->add_option("--topk", show_opts.topk, "the topk")->capture_default_str();
  show->add_option("--device", show_opts.device, "only this device key");
  show->add_flag("--json", g.json, "machine-readable output");
  show->callback([&g] { run_show(show_opts, g); });

  static std::string clear_device;
  auto* clear = app.add_subcommand("clear", "delete winners, binaries and timings (all, or one device's)");
  clear->add_option("--device", clear_device, "only this device key");
  clear->callback([&g] {
    auto store = open_existing(g, OpenMode::read_write);
    std::optional<std::string> dev;
    if (!clear_device.empty()) dev = clear_device;
    const auto r = store.clear(dev);
    fmt::print("cleared {} winner(s), {} binary(ies), {} timing(s) from {}\n", r.winners, r.binaries,
               r.timings, store.path().string());
  });

  static std::string export_out, export_device;
  auto* exp =
      app.add_subcommand("export", "write a self-contained deployment cache (winners + their binaries)");
  exp->add_option("--out", export_out, "the file to write (replaced atomically)")->required();
  exp->add_option("--device", export_device, "only this device key's winners");
  exp->callback([&g] {
    auto store = open_existing(g, OpenMode::read_only);
    std::optional<std::string> dev;
    if (!export_device.empty()) dev = export_device;
    const auto r = store.export_to(export_out, dev);
    fmt::print("exported {} winner(s) and {} binary(ies) to {}\n", r.winners, r.binaries, r.path.string());
  });

  static std::string import_in;
  auto* imp = app.add_subcommand(
      "import",
      "merge a cache file into this one (same key: the newer winner wins; binaries: insert or ignore)");
  imp->add_option("file", import_in, "the cache file to merge")->required();
  imp->callback([&g] {
    auto store = CacheStore::open(cache_file(g), OpenMode::read_write);
    const auto r = store.import_from(import_in);
    fmt::print(
        "imported into {}: winners {} added, {} replaced (newer), {} kept (existing as new); binaries {} "
        "added, {} "
        "already present, {} corrupt skipped\n",
        store.path().string(), r.winners_added, r.winners_replaced, r.winners_kept, r.binaries_added,
        r.binaries_present, r.binaries_corrupt);
  });
}

}  // namespace nsajit::cli
