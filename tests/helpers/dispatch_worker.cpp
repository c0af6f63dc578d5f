// One "tensor-parallel rank" for the multi-process GPU test: opens the cache (writable, or
// read-only as a shipped file), dispatches sparse_mla_fwd on GPU `ordinal` and checks the
// result against the CPU reference. Exit 0: correct; 1: wrong; 2: error.
// Usage: dispatch_worker <cache> <writable|shipped> <ordinal> <topk> <seed> [<expect_compiles>]
#include <fmt/format.h>

#include <cstdlib>
#include <string>

#include "runtime/backend.hpp"
#include "runtime/dispatcher.hpp"
#include "runtime/error.hpp"
#include "tuner/sparse_mla_check.hpp"

int main(int argc, char** argv) {
  using namespace nsajit;
  if (argc < 6) {
    fmt::print(
        stderr,
        "usage: dispatch_worker <cache> <writable|shipped> <ordinal> <topk> <seed> [expect_compiles]\n");
    return 2;
  }
  try {
    const std::string cache = argv[1], mode = argv[2];
    const int ordinal = std::atoi(argv[3]), topk = std::atoi(argv[4]);
    const auto seed = std::strtoull(argv[5], nullptr, 10);
    DispatcherOptions o;
    o.device_ordinal = ordinal;
    o.verbose = false;
    if (mode == "shipped") {
      o.shipped_cache_path = cache;
      o.cache_path = cache + fmt::format(".rank{}.sqlite", seed);  // each rank's own writable layer
    } else {
      o.cache_path = cache;
    }
    Dispatcher dispatcher(o);
    auto device = cuda_backend().open_device(ordinal);
    device->make_current();
    SparseMlaFixture f(
        *device, {.label = "rank", .s_q = 6, .h_q = 16, .s_kv = 3000, .topk = topk, .invalid_fraction = 0.05},
        seed);
    const auto r =
        f.run_and_compare([&](const nsajit_sparse_mla_args& a) { dispatcher.sparse_mla_fwd(a, nullptr); });
    fmt::print("rank seed {} gpu {} {}: {} compiles {}\n", seed, ordinal, mode, r.detail,
               dispatcher.compile_count());
    if (argc > 6 && dispatcher.compile_count() != std::atoll(argv[6])) {
      fmt::print(stderr, "expected {} compiles, got {}\n", argv[6], dispatcher.compile_count());
      return 1;
    }
    return r.ok ? 0 : 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "dispatch_worker: {}\n", e.what());
    return 2;
  }
}
