// nsa-tune bench --family topk_select: the dispatched top-k kernel over B x L random fp32
// scores, with the memory read ceiling measured in the same run (a contiguous streaming read
// of 1 GiB by the gather-floor kernel). The torch.topk comparison lives in
// tools/bench_topk.py (it needs torch), which calls this library through the Python package.
#include <fmt/format.h>

#include <numeric>

#include "runtime/dispatcher.hpp"
#include "runtime/error.hpp"
#include "tools/nsa-tune/commands.hpp"
#include "tools/nsa-tune/json.hpp"
#include "tools/nsa-tune/target_option.hpp"
#include "tuner/bench_kernels.hpp"
#include "tuner/timing.hpp"
#include "tuner/topk_select_tuner.hpp"

namespace nsajit::cli {
namespace {

// GB/s of a contiguous read of `bytes` (rows of d 576 bf16, read in order).
double measure_read_ceiling(Device& device, BenchKernels& kernels, void* stream) {
  constexpr int kRowsPerQuery = 2048, kD = 576;
  const long long s_kv = (1LL << 30) / (kD * 2) / kRowsPerQuery * kRowsPerQuery;
  DeviceMemory kv = device.allocate(static_cast<std::size_t>(s_kv) * kD * 2);
  device.fill_bytes(kv.get(), 0x3c, static_cast<std::size_t>(s_kv) * kD * 2);
  std::vector<int> idx(static_cast<std::size_t>(s_kv));
  std::iota(idx.begin(), idx.end(), 0);
  DeviceMemory d_idx = device.allocate(idx.size() * 4);
  device.copy_to_device(d_idx.get(), idx.data(), idx.size() * 4);
  const long long queries = s_kv / kRowsPerQuery;
  DeviceMemory out = device.allocate(static_cast<std::size_t>(queries) * 4);
  double best = 0;
  for (const auto& cfg : gather_floor_configs(kD)) {
    const double ms = median_ms(device, stream, 2, 10, [&] {
      kernels.gather(cfg, kv.get(), kD, static_cast<int>(s_kv), d_idx.as<int>(), kRowsPerQuery, queries,
                     kRowsPerQuery, 1, out.as<unsigned>(), stream);
    });
    best = std::max(best, static_cast<double>(s_kv) * kD * 2 / (ms * 1e-3) / 1e9);
  }
  return best;
}

}  // namespace

void run_bench_topk(const std::vector<int>& ks, int ordinal, bool json) {
  DispatcherOptions dopt;
  dopt.device_ordinal = ordinal;
  Dispatcher dispatcher(dopt);
  Device& device = dispatcher.device();
  const Compiler* compiler = &require_compiler(device.info().arch, "building the bench kernels");
  BenchKernels kernels(device, *compiler);
  auto stream = device.create_stream();
  const double ceiling = measure_read_ceiling(device, kernels, stream->native());
  std::string out = json ? fmt::format("{{\"device\":{},\"read_ceiling_gbps\":{:.1f},\"rows\":[",
                                       json_string(device.info().name), ceiling)
                         : fmt::format(
                               "topk_select bench on {}: streaming read ceiling {:.0f} GB/s (same run)\n"
                               "     B       L     k  median_ms     GB/s  of_ceiling  variant\n",
                               device.info().name, ceiling);
  bool first = true;
  for (int k : ks.empty() ? std::vector<int>{2048} : ks) {
    LoadedVariant& lv = dispatcher.topk_select_variant_for(k);
    for (int batch : {1, 16, 64, 128})
      for (int length : {8192, 32768, 131072}) {
        const TopkTiming t = time_topk_select(device, lv, batch, length, k, 5, 30, stream->native());
        if (json) {
          out += fmt::format(
              "{}{{\"B\":{},\"L\":{},\"k\":{},\"median_ms\":{:.5f},\"gbps\":{:.1f},\"of_ceiling\":{:.3f},"
              "\"variant\":{}}}",
              first ? "" : ",", batch, length, k, t.median_ms, t.gbps, t.gbps / ceiling,
              json_string(lv.variant.name()));
          first = false;
        } else {
          out += fmt::format("  {:4} {:7} {:5} {:10.4f} {:8.0f} {:11.3f}  {}\n", batch, length, k,
                             t.median_ms, t.gbps, t.gbps / ceiling, lv.variant.name());
        }
      }
  }
  fmt::print("{}{}", out, json ? "]}\n" : "");
}

}  // namespace nsajit::cli
