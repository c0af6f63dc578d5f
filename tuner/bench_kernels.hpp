// The device kernels of `nsa-tune bench` (templates/bench/bench_kernels.cuh), rendered into
// one translation unit, compiled through the backend's Compiler and loaded on a Device:
// input fills, the gather-only floor, the mma.sync peak and the stream-holding spin.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/backend.hpp"

namespace nsajit {

// One build of the gather floor kernel; bench time takes the fastest of them per shape.
struct GatherFloorConfig {
  int d_qk = 576;
  int unroll = 8;  // independent 16-byte loads per thread before any is consumed
  std::string load =
      "nc";  // "nc" (read-only, no L1 allocate), "cg" (L2 only), "nc256" (nc + L2::256B prefetch)
  [[nodiscard]] std::string kernel_name() const;  // e.g. "nsa_bench_gather_d576_u8_nc"
};

inline constexpr int kGatherBlock = 256;
inline constexpr int kMmaPeakBlock = 256;
inline constexpr int kMmaPeakChains = 8;
inline constexpr double kFlopsPerMma = 2.0 * 16 * 8 * 16;  // m16n8k16

// Every gather build for `d_qk` (576 or 512).
[[nodiscard]] std::vector<GatherFloorConfig> gather_floor_configs(int d_qk);

struct BenchKernelsSource {
  std::string source;
  std::vector<std::string> kernel_names;
};

// The translation unit: one extern "C" kernel per fill / gather config / peak / spin.
[[nodiscard]] BenchKernelsSource render_bench_kernels();

// The CompileRequest (templates as in-memory headers) for `arch`, e.g. "sm_90a".
[[nodiscard]] CompileRequest bench_kernels_compile_request(const std::string& arch);

// How many blocks share one query row in the gather floor: enough blocks to cover the
// multiprocessors a few times over, each keeping >= 4 loads per thread.
[[nodiscard]] int gather_floor_splits(long long rows, int topk, int d_qk, int multiprocessors);

// FLOPs of one mma_peak launch.
[[nodiscard]] double mma_peak_flops(long long blocks, int iterations);

// The bench kernels loaded on one device (NVIDIA only: the gather and peak kernels are PTX).
// Every launch is asynchronous on `stream` and checks its arguments.
class BenchKernels {
 public:
  // Compiles with `compiler` for the device's arch and loads the module. Throws
  // Error(compile_failed) with the log, or Error(invalid_argument) for a non-NVIDIA device.
  BenchKernels(Device& device, const Compiler& compiler);

  [[nodiscard]] Device& device() const { return device_; }

  // dst[i] = bf16(nsa_bench_value(nsa_bench_key(seed, stream_id), i)), i < count; dst 16-byte aligned.
  void fill_bf16(void* dst, long long count, std::uint64_t seed, int stream_id, void* stream);

  // indices[r * row_stride + t] = nsa_bench_index(nsa_bench_index_row(key, r, s_kv), t, s_kv),
  // r < rows, t < topk; distinct per row. Requires 1 <= topk <= s_kv.
  void fill_indices(int* indices, long long rows, long long row_stride, int topk, int s_kv,
                    std::uint64_t seed, void* stream);

  // Gather floor: out[r * splits + s] = XOR of every 32-bit word of the valid kv rows that
  // row r's indices name (block s's share of them). out holds rows * splits words.
  void gather(const GatherFloorConfig& config, const void* kv, long long kv_row_stride, int s_kv,
              const int* indices, long long idx_row_stride, long long rows, int topk, int splits,
              unsigned* out, void* stream);

  // mma.sync peak: `blocks` x kMmaPeakBlock threads, `iterations` x kMmaPeakChains mma each;
  // out holds blocks * kMmaPeakBlock floats.
  void mma_peak(long long blocks, int iterations, unsigned seed, float* out, void* stream);

  // Holds `stream` busy for `ns` nanoseconds (one thread, sleeps while it waits).
  void spin(std::uint64_t ns, void* stream);

 private:
  [[nodiscard]] const KernelHandle& kernel(const std::string& name) const;

  Device& device_;
  std::unique_ptr<Module> module_;
  std::vector<KernelHandle> kernels_;
};

}  // namespace nsajit
