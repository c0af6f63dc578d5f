#include "tuner/compile_pool.hpp"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

#include "generator/kernel_family.hpp"
#include "runtime/error.hpp"

namespace nsajit {

std::vector<CompiledVariant> compile_variants(
    const Compiler& compiler, const std::vector<Variant>& variants, int threads,
    const std::function<void(const CompiledVariant&, std::size_t, std::size_t)>& on_done) {
  std::vector<CompiledVariant> results(variants.size());
  std::atomic<std::size_t> next{0};
  std::size_t done = 0;
  std::mutex report;
  auto worker = [&] {
    for (std::size_t i = next++; i < variants.size(); i = next++) {
      CompiledVariant& r = results[i];
      r.variant = variants[i];
      try {
        r.rendered = kernel_family(r.variant.family).render(r.variant);
        r.result = compiler.compile(make_compile_request(r.variant, r.rendered));
      } catch (const std::exception& e) {
        r.error = e.what();
      }
      if (on_done) {
        std::lock_guard lock(report);
        on_done(r, ++done, variants.size());
      }
    }
  };
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  threads = std::min<int>(threads, static_cast<int>(std::max<std::size_t>(1, variants.size())));
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  return results;
}

}  // namespace nsajit
