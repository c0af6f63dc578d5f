// The hip backend on a real AMD GPU: device info, module load, memory, streams, events and
// launches, through both compile paths (hipRTC, and clang-19 with templates/common/hip_prelude.h).
// Never run yet (no AMD GPU has been available); on an NVIDIA machine every case returns early.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "generator/template_library.hpp"
#include "runtime/amdgpu_clang_compiler.hpp"
#include "runtime/amdgpu_code_object.hpp"
#include "runtime/backend.hpp"
#include "runtime/error.hpp"
#include "tests/gpu/gpu_fixture.hpp"

namespace {

using namespace nsajit;

bool on_hip() {
  if (test::gpu_backend().name() == "hip") return true;
  MESSAGE("the GPU under test is not an AMD GPU; hip backend cases skipped");
  return false;
}

constexpr const char* kAxpySource = R"(#include "common/hip_prelude.h"
extern "C" __global__ __launch_bounds__(256) void axpy(const float* x, float* y, float a, int n) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) y[i] = a * x[i] + y[i];
}
)";

// Exercises the prelude's mappings: LDS + __syncthreads, __shfl_xor, blockDim/gridDim/warpSize,
// float atomicAdd. Every expected value is an exact integer.
constexpr const char* kPreludeProbeSource = R"(#include "common/hip_prelude.h"
extern "C" __global__ __launch_bounds__(256) void prelude_probe(int* out, int* dims, float* counter) {
  __shared__ int lds[256];
  const unsigned t = threadIdx.x, b = blockIdx.x;
  lds[t] = static_cast<int>(t + 1000 * b);
  __syncthreads();
  int s = lds[255 - t];
  for (int m = 1; m < 64; m <<= 1) s += __shfl_xor(s, m);
  out[b * 256 + t] = s;
  if (t == 0 && b == 0) {
    dims[0] = static_cast<int>(blockDim.x);
    dims[1] = static_cast<int>(gridDim.x);
    dims[2] = warpSize;
  }
  atomicAdd(counter, 1.0f);
}
)";

// The compilers that can build for the device: the backend's choice, plus clang-19 when it
// also serves this arch (gfx90a), so both paths run on the hardware.
std::vector<const Compiler*> compilers_for(const std::string& arch, const AmdgpuClangCompiler& clang) {
  std::vector<const Compiler*> out;
  if (const Compiler* c = test::gpu_backend().compiler_for(arch)) out.push_back(c);
  if (clang.supports_arch(arch) && (out.empty() || out[0]->name() != clang.name())) out.push_back(&clang);
  return out;
}

CompileRequest request(const char* source, const std::string& arch, const char* kernel) {
  CompileRequest r;
  r.source = source;
  r.source_name = fmt::format("{}.hip", kernel);
  r.headers = template_headers();
  r.arch = arch;
  r.kernel_names = {kernel};
  return r;
}

}  // namespace

TEST_CASE("hip_device_info_describes_a_cdna_or_rdna_gpu") {
  if (!on_hip()) return;
  const DeviceInfo& info = test::gpu_device().info();
  MESSAGE(fmt::format("{} {} uuid {} CUs {} LDS/block {} L2 {} mem {} driver {}", info.name, info.arch,
                      info.uuid, info.multiprocessors, info.shared_memory_per_block_optin, info.l2_bytes,
                      info.global_memory_bytes, info.driver_version));
  CHECK(info.vendor == Vendor::amd);
  CHECK(info.arch.starts_with("gfx"));
  CHECK(info.arch.find(':') == std::string::npos);
  CHECK_FALSE(info.name.empty());
  CHECK_FALSE(info.uuid.empty());
  CHECK(info.multiprocessors > 0);
  CHECK(info.shared_memory_per_block_optin >= 64 * 1024);
  CHECK(info.global_memory_bytes > (std::size_t{1} << 30));
  CHECK(info.l2_bytes > 0);
}

TEST_CASE("hip_axpy_runs_correctly_through_every_compile_path") {
  if (!on_hip()) return;
  Device& dev = test::gpu_device();
  const std::string arch = dev.info().arch;
  const AmdgpuClangCompiler clang;
  const auto compilers = compilers_for(arch, clang);
  if (compilers.empty()) {
    MESSAGE("no compiler for " << arch << ": " << test::gpu_backend().compiler_unavailable_reason());
    return;
  }
  constexpr int n = 1000;    // not a multiple of the block size
  constexpr int guard = 64;  // poisoned tail that must stay untouched
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> small(-1000, 1000);
  for (const Compiler* c : compilers) {
    CAPTURE(c->name());
    const CompileResult built = c->compile(request(kAxpySource, arch, "axpy"));
    auto module = dev.load_module(built.binary);
    const KernelHandle k = module->kernel("axpy");

    std::vector<float> x(n), y(n);
    for (int i = 0; i < n; ++i) x[i] = static_cast<float>(small(rng)), y[i] = static_cast<float>(small(rng));
    DeviceMemory dx = dev.allocate(n * sizeof(float));
    DeviceMemory dy = dev.allocate((n + guard) * sizeof(float));
    dev.fill_bytes(dy.get(), 0xff, dy.bytes());
    dev.copy_to_device(dx.get(), x.data(), n * sizeof(float));
    dev.copy_to_device(dy.get(), y.data(), n * sizeof(float));

    auto stream = dev.create_stream();
    auto start = dev.create_event();
    auto stop = dev.create_event();
    float a = 0.5f;  // products and sums stay exact in fp32, fused or not
    int count = n;
    void* px = dx.get();
    void* py = dy.get();
    void* args[] = {&px, &py, &a, &count};
    start->record(stream->native());
    dev.launch(k, Dim3{(n + 255) / 256, 1, 1}, Dim3{256, 1, 1}, 0, stream->native(), args);
    stop->record(stream->native());
    stop->synchronize();
    stream->synchronize();
    CHECK(stop->elapsed_ms_since(*start) >= 0.0f);

    std::vector<float> out(n + guard);
    dev.copy_to_host(out.data(), dy.get(), out.size() * sizeof(float));
    int wrong = 0;
    for (int i = 0; i < n; ++i) wrong += out[i] != a * x[i] + y[i];
    CHECK(wrong == 0);
    std::uint32_t tail_bits = 0;
    int tail_touched = 0;
    for (int i = n; i < n + guard; ++i) {
      std::memcpy(&tail_bits, &out[i], 4);
      tail_touched += tail_bits != 0xffffffffu;
    }
    CHECK(tail_touched == 0);

    const KernelResources r = dev.kernel_resources(k);
    CHECK(r.kernel_name == "axpy");
    CHECK(r.registers > 0);
    CHECK(r.max_threads_per_block == 256);
    CHECK(r.spill_bytes == 0);
  }
}

TEST_CASE("hip_prelude_builtins_match_hip_semantics_on_hardware") {
  if (!on_hip()) return;
  Device& dev = test::gpu_device();
  const std::string arch = dev.info().arch;
  const AmdgpuClangCompiler clang;
  const auto compilers = compilers_for(arch, clang);
  if (compilers.empty()) return;
  constexpr int blocks = 3;
  for (const Compiler* c : compilers) {
    CAPTURE(c->name());
    auto module = dev.load_module(c->compile(request(kPreludeProbeSource, arch, "prelude_probe")).binary);
    const KernelHandle k = module->kernel("prelude_probe");
    DeviceMemory out = dev.allocate(blocks * 256 * sizeof(int));
    DeviceMemory dims = dev.allocate(3 * sizeof(int));
    DeviceMemory counter = dev.allocate(sizeof(float));
    dev.fill_bytes(out.get(), 0xff, out.bytes());
    dev.fill_bytes(dims.get(), 0xff, dims.bytes());
    dev.fill_bytes(counter.get(), 0, counter.bytes());
    void* po = out.get();
    void* pd = dims.get();
    void* pc = counter.get();
    void* args[] = {&po, &pd, &pc};
    dev.launch(k, Dim3{blocks, 1, 1}, Dim3{256, 1, 1}, 0, nullptr, args);
    dev.synchronize();

    std::vector<int> host(blocks * 256), host_dims(3);
    float host_counter = -1.0f;
    dev.copy_to_host(host.data(), out.get(), out.bytes());
    dev.copy_to_host(host_dims.data(), dims.get(), dims.bytes());
    dev.copy_to_host(&host_counter, counter.get(), sizeof(float));
    int wrong = 0;
    for (int b = 0; b < blocks; ++b)
      for (int t = 0; t < 256; ++t) {
        const int wave = t / 64;
        int expected = 0;  // sum over the wave's lanes of lds[255 - lane]
        for (int lane = wave * 64; lane < wave * 64 + 64; ++lane) expected += (255 - lane) + 1000 * b;
        wrong += host[b * 256 + t] != expected;
      }
    CHECK(wrong == 0);
    CHECK(host_dims == std::vector<int>{256, blocks, 64});
    CHECK(host_counter == static_cast<float>(blocks * 256));
  }
}

TEST_CASE("hip_module_errors_are_specific") {
  if (!on_hip()) return;
  Device& dev = test::gpu_device();
  const std::string arch = dev.info().arch;
  const Compiler* c = test::gpu_backend().compiler_for(arch);
  if (c == nullptr) return;
  auto module = dev.load_module(c->compile(request(kAxpySource, arch, "axpy")).binary);
  try {
    (void)module->kernel("no_such_kernel");
    FAIL("expected not_found");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::not_found);
    CHECK(e.reason().find("axpy") != std::string::npos);  // lists what the module has
  }
  // A code object for another processor is refused before hipModuleLoadData sees it.
  const AmdgpuClangCompiler clang;
  const std::string other = arch == "gfx942" ? "gfx90a" : "gfx942";
  if (clang.supports_arch(other)) {
    const CompileResult foreign = clang.compile(request(kAxpySource, other, "axpy"));
    CHECK_THROWS_AS((void)dev.load_module(foreign.binary), Error);
  }
  const std::vector<std::uint8_t> garbage(256, 0x42);
  CHECK_THROWS_AS((void)dev.load_module(garbage), Error);
  CHECK_THROWS_AS(dev.set_max_dynamic_shared(module->kernel("axpy"), 1 << 20), Error);
}
