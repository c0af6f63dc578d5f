// nsa-tune: renders, compiles, tunes and benchmarks nsa-jit kernels, and manages the cache.
#include <fmt/format.h>

#include <cstdio>

#include "runtime/error.hpp"
#include "tools/nsa-tune/commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"nsa-tune: JIT kernel generator, autotuner and cache for DeepSeek sparse attention"};
  app.require_subcommand(1);
  nsajit::cli::GlobalOptions g;
  app.add_option("--cache", g.cache_path,
                 "cache file (default: $NSA_JIT_CACHE, else $XDG_CACHE_HOME/nsa-jit/cache.sqlite)");
  nsajit::cli::register_devices(app, g);
  nsajit::cli::register_variants(app, g);
  nsajit::cli::register_emit(app, g);
  nsajit::cli::register_compile(app, g);
  nsajit::cli::register_tune(app, g);
  nsajit::cli::register_bench(app, g);
  nsajit::cli::register_cache_commands(app, g);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const nsajit::Error& e) {
    std::fprintf(stderr, "nsa-tune: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nsa-tune: internal error: %s\n", e.what());
    return 1;
  }
  return 0;
}
