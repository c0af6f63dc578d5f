#include "tuner/bench_kernels.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>

#include "generator/template_library.hpp"
#include "runtime/error.hpp"
#include "templates/bench/bench_random.h"

namespace nsajit {
namespace {

constexpr std::string_view kWhere = "tuner/bench_kernels";

int load_mode(const std::string& load) {
  if (load == "nc") return 0;
  if (load == "cg") return 1;
  if (load == "nc256") return 2;
  fail(ErrorCode::invalid_argument, "rendering the gather floor", std::string(kWhere),
       fmt::format("unknown load kind '{}' (nc, cg, nc256)", load));
}

[[noreturn]] void bad(const std::string& what, const std::string& why) {
  fail(ErrorCode::invalid_argument, what, std::string(kWhere), why);
}

unsigned grid_dim(long long n, const std::string& what) {
  if (n < 1 || n > 0x7fffffffLL) bad(what, fmt::format("grid dimension {} is outside [1, 2^31)", n));
  return static_cast<unsigned>(n);
}

}  // namespace

std::string GatherFloorConfig::kernel_name() const {
  return fmt::format("nsa_bench_gather_d{}_u{}_{}", d_qk, unroll, load);
}

std::vector<GatherFloorConfig> gather_floor_configs(int d_qk) {
  std::vector<GatherFloorConfig> configs;
  for (int unroll : {4, 8})
    for (const char* load : {"nc", "cg", "nc256"}) configs.push_back({d_qk, unroll, load});
  return configs;
}

BenchKernelsSource render_bench_kernels() {
  BenchKernelsSource r;
  r.source =
      "// nsa-tune bench kernels: rendered by nsa-jit from templates/bench/bench_kernels.cuh\n"
      "#include \"bench/bench_kernels.cuh\"\n\n"
      "extern \"C\" __global__ void __launch_bounds__(256) nsa_bench_fill_bf16(unsigned short* dst, long "
      "long count,\n"
      "                                                                      unsigned long long key) {\n"
      "  nsajit::bench::fill_bf16(dst, count, key);\n"
      "}\n\n"
      "extern \"C\" __global__ void __launch_bounds__(256) nsa_bench_fill_indices(int* indices, long long "
      "row_stride,\n"
      "                                                                         int topk, int s_kv, unsigned "
      "long long key) {\n"
      "  nsajit::bench::fill_indices(indices, row_stride, topk, s_kv, key);\n"
      "}\n\n";
  r.kernel_names = {"nsa_bench_fill_bf16", "nsa_bench_fill_indices"};
  for (int d : {576, 512})
    for (const auto& c : gather_floor_configs(d)) {
      // (256, 4): lets ptxas keep all `unroll` loads in registers (it otherwise aims at 32
      // registers and interleaves the XORs with the loads).
      r.source += fmt::format(
          "extern \"C\" __global__ void __launch_bounds__({block}, 4) {name}(\n"
          "    const unsigned short* kv, long long kv_row_stride, int s_kv, const int* indices,\n"
          "    long long idx_row_stride, int topk, unsigned* out) {{\n"
          "  nsajit::bench::gather_floor<{chunks}, {block}, {unroll}, {mode}>(kv, kv_row_stride, s_kv, "
          "indices,\n"
          "                                                            idx_row_stride, topk, out);\n"
          "}}\n\n",
          fmt::arg("block", kGatherBlock), fmt::arg("name", c.kernel_name()), fmt::arg("chunks", c.d_qk / 8),
          fmt::arg("unroll", c.unroll), fmt::arg("mode", load_mode(c.load)));
      r.kernel_names.push_back(c.kernel_name());
    }
  r.source += fmt::format(
      "extern \"C\" __global__ void __launch_bounds__({block}) nsa_bench_mma_peak(int iterations, unsigned "
      "seed,\n"
      "                                                                   float* out) {{\n"
      "  nsajit::bench::mma_peak<{chains}>(iterations, seed, out);\n"
      "}}\n\n"
      "extern \"C\" __global__ void nsa_bench_spin(unsigned long long ns) {{ nsajit::bench::spin(ns); }}\n",
      fmt::arg("block", kMmaPeakBlock), fmt::arg("chains", kMmaPeakChains));
  r.kernel_names.push_back("nsa_bench_mma_peak");
  r.kernel_names.push_back("nsa_bench_spin");
  return r;
}

CompileRequest bench_kernels_compile_request(const std::string& arch) {
  const BenchKernelsSource rendered = render_bench_kernels();
  CompileRequest req;
  req.source = rendered.source;
  req.source_name = "nsa_bench_kernels.cu";
  req.headers = template_headers();
  req.arch = arch;
  req.kernel_names = rendered.kernel_names;
  return req;
}

int gather_floor_splits(long long rows, int topk, int d_qk, int multiprocessors) {
  if (rows < 1 || topk < 1) return 1;
  const long long chunks = static_cast<long long>(topk) * (d_qk / 8);
  const long long most = std::max(1LL, chunks / (kGatherBlock * 4));  // >= 4 loads per thread
  const long long want = (4LL * std::max(1, multiprocessors) + rows - 1) / rows;
  return static_cast<int>(std::clamp(want, 1LL, std::min(most, 65535LL)));
}

double mma_peak_flops(long long blocks, int iterations) {
  return static_cast<double>(blocks) * (kMmaPeakBlock / 32) * iterations * kMmaPeakChains * kFlopsPerMma;
}

BenchKernels::BenchKernels(Device& device, const Compiler& compiler) : device_(device) {
  const DeviceInfo& info = device.info();
  if (info.vendor != Vendor::nvidia)
    bad("building the bench kernels",
        fmt::format("device {} ({}) is not NVIDIA: the bench kernels are PTX", info.name, info.arch));
  const CompileRequest req = bench_kernels_compile_request(info.arch);
  const CompileResult built = compiler.compile(req);
  module_ = device.load_module(built.binary);
  for (const auto& name : req.kernel_names) kernels_.push_back(module_->kernel(name));
}

const KernelHandle& BenchKernels::kernel(const std::string& name) const {
  for (const auto& k : kernels_)
    if (k.name == name) return k;
  fail(ErrorCode::not_found, "looking up bench kernel " + name, std::string(kWhere),
       "the module has no such kernel");
}

void BenchKernels::fill_bf16(void* dst, long long count, std::uint64_t seed, int stream_id, void* stream) {
  if (count <= 0) return;
  if (reinterpret_cast<std::uintptr_t>(dst) % 16 != 0) bad("filling bf16", "dst must be 16-byte aligned");
  unsigned long long key = nsa_bench_key(seed, static_cast<unsigned long long>(stream_id));
  unsigned short* d = static_cast<unsigned short*>(dst);
  const long long groups = (count + 7) / 8;
  const long long blocks = std::min<long long>(
      (groups + 255) / 256, 32LL * std::max(1, device_.info().multiprocessors));  // grid-stride beyond that
  void* args[] = {&d, &count, &key};
  device_.launch(kernel("nsa_bench_fill_bf16"), Dim3{grid_dim(blocks, "filling bf16"), 1, 1}, Dim3{256, 1, 1},
                 0, stream, args);
}

void BenchKernels::fill_indices(int* indices, long long rows, long long row_stride, int topk, int s_kv,
                                std::uint64_t seed, void* stream) {
  if (rows <= 0) return;
  if (topk < 1 || s_kv < 1 || topk > s_kv)
    bad("filling indices",
        fmt::format("distinct indices need 1 <= topk <= s_kv, got topk {} s_kv {}", topk, s_kv));
  if (row_stride < topk) bad("filling indices", fmt::format("row stride {} < topk {}", row_stride, topk));
  unsigned long long key = nsa_bench_key(seed, NSA_BENCH_STREAM_INDICES);
  void* args[] = {&indices, &row_stride, &topk, &s_kv, &key};
  device_.launch(kernel("nsa_bench_fill_indices"), Dim3{grid_dim(rows, "filling indices"), 1, 1},
                 Dim3{256, 1, 1}, 0, stream, args);
}

void BenchKernels::gather(const GatherFloorConfig& config, const void* kv, long long kv_row_stride, int s_kv,
                          const int* indices, long long idx_row_stride, long long rows, int topk, int splits,
                          unsigned* out, void* stream) {
  if (rows <= 0) return;
  if (topk < 1 || splits < 1 || splits > 65535)
    bad("launching the gather floor",
        fmt::format("topk {} and splits {} must be >= 1 (splits <= 65535)", topk, splits));
  if (reinterpret_cast<std::uintptr_t>(kv) % 16 != 0 || kv_row_stride % 8 != 0)
    bad("launching the gather floor", "kv and its row stride must be 16-byte aligned");
  if (static_cast<long long>(topk) * (config.d_qk / 8) > 0x7fffffffLL)
    bad("launching the gather floor", "topk * d_qk / 8 overflows int");
  void* args[] = {&kv, &kv_row_stride, &s_kv, &indices, &idx_row_stride, &topk, &out};
  device_.launch(kernel(config.kernel_name()),
                 Dim3{grid_dim(rows, "gather floor"), static_cast<unsigned>(splits), 1},
                 Dim3{kGatherBlock, 1, 1}, 0, stream, args);
}

void BenchKernels::mma_peak(long long blocks, int iterations, unsigned seed, float* out, void* stream) {
  if (iterations < 1) bad("launching the mma peak", fmt::format("iterations {} < 1", iterations));
  void* args[] = {&iterations, &seed, &out};
  device_.launch(kernel("nsa_bench_mma_peak"), Dim3{grid_dim(blocks, "mma peak"), 1, 1},
                 Dim3{kMmaPeakBlock, 1, 1}, 0, stream, args);
}

void BenchKernels::spin(std::uint64_t ns, void* stream) {
  unsigned long long n = ns;
  void* args[] = {&n};
  device_.launch(kernel("nsa_bench_spin"), Dim3{1, 1, 1}, Dim3{32, 1, 1}, 0, stream, args);
}

}  // namespace nsajit
