// nsa-tune: one file per command; each registers its CLI11 subcommand here.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace nsajit::cli {

// Options every command may use.
struct GlobalOptions {
  std::string cache_path;  // --cache; else NSA_JIT_CACHE; else XDG default
  bool json = false;       // --json on read commands
};

void register_devices(CLI::App& app, GlobalOptions& g);
void register_variants(CLI::App& app, GlobalOptions& g);
void register_emit(CLI::App& app, GlobalOptions& g);
void register_compile(CLI::App& app, GlobalOptions& g);
void register_tune(CLI::App& app, GlobalOptions& g);
void register_bench(CLI::App& app, GlobalOptions& g);
void register_cache_commands(CLI::App& app, GlobalOptions& g);

}  // namespace nsajit::cli

namespace nsajit::cli {
// nsa-tune bench --family topk_select (tools/nsa-tune/cmd_bench_topk.cpp).
void run_bench_topk(const std::vector<int>& ks, int device, bool json);
}  // namespace nsajit::cli
