// The cuda backend on a real NVIDIA GPU: NVRTC output for the device's own arch loads, runs and
// computes exactly what the CPU computes; streams, events, dynamic shared memory opt-in, kernel
// resources and memory release behave as promised. Skips (passes with a message) on AMD.
// Run alone: nsajit_gpu_tests -ts=backend_cuda_gpu
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "runtime/backend.hpp"
#include "runtime/cubin_inspect.hpp"
#include "runtime/error.hpp"
#include "tests/gpu/gpu_fixture.hpp"

namespace nsajit {
namespace {

// Rounded multiply then rounded add, so the GPU cannot fuse into an FMA the CPU would not do.
constexpr const char* kSource = R"(
extern "C" __global__ void axpy_index(float a, const float* x, float* y, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = __fadd_rn(__fmul_rn(a, x[i]), (float)i);
}
// Reverses each 256-element block through static shared memory.
extern "C" __global__ void __launch_bounds__(256) reverse_blocks(const float* x, float* y) {
  __shared__ float tile[256];
  const int base = blockIdx.x * 256;
  tile[threadIdx.x] = x[base + threadIdx.x];
  __syncthreads();
  y[base + threadIdx.x] = tile[255 - threadIdx.x];
}
// Rotates each block's slice by one through `count` floats of dynamic shared memory.
extern "C" __global__ void rotate_dynamic(const float* x, float* y, int count) {
  extern __shared__ float buffer[];
  const float* in = x + blockIdx.x * count;
  float* out = y + blockIdx.x * count;
  for (int i = threadIdx.x; i < count; i += blockDim.x) buffer[i] = in[i];
  __syncthreads();
  for (int i = threadIdx.x; i < count; i += blockDim.x) out[i] = buffer[(i + 1) % count];
}
)";

constexpr std::uint32_t kPoisonBits = 0xffffffffu;  // a NaN no kernel writes by accident

bool is_nvidia() {
  if (test::gpu_backend().vendor() == Vendor::nvidia) return true;
  MESSAGE("not an NVIDIA GPU; the cuda backend GPU suite does not apply");
  return false;
}

struct Compiled {
  CompileResult result;
  std::unique_ptr<Module> module;
};

Compiled compile_and_load(Device& device) {
  const Compiler* compiler = cuda_backend().compiler_for(device.info().arch);
  REQUIRE_MESSAGE(compiler != nullptr, "no NVRTC for " << device.info().arch << ": "
                                                       << cuda_backend().compiler_unavailable_reason());
  CompileRequest request;
  request.source = kSource;
  request.source_name = "backend_cuda_gpu.cu";
  request.arch = device.info().arch;
  request.kernel_names = {"axpy_index", "reverse_blocks", "rotate_dynamic"};
  Compiled c;
  c.result = compiler->compile(request);
  c.module = device.load_module(c.result.binary);
  return c;
}

std::vector<float> random_floats(std::size_t n) {
  std::mt19937 rng(std::random_device{}());
  std::uniform_real_distribution<float> dist(-1000.0f, 1000.0f);
  std::vector<float> v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

std::uint32_t bits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Counts elements whose bit patterns differ, printing the first few.
int mismatches(const std::vector<float>& got, const std::vector<float>& want, std::size_t count) {
  int bad = 0;
  for (std::size_t i = 0; i < count; ++i) {
    if (bits(got[i]) != bits(want[i])) {
      if (bad < 5) MESSAGE(fmt::format("element {}: got {} want {}", i, got[i], want[i]));
      ++bad;
    }
  }
  return bad;
}

}  // namespace

TEST_SUITE("backend_cuda_gpu") {
  TEST_CASE("device_info_describes_the_gpu") {
    if (!is_nvidia()) return;
    const DeviceInfo& info = test::gpu_device().info();
    MESSAGE(fmt::format("{} {} uuid {} SMs {} optin smem {} L2 {} mem {} driver {}", info.name, info.arch,
                        info.uuid, info.multiprocessors, info.shared_memory_per_block_optin, info.l2_bytes,
                        info.global_memory_bytes, info.driver_version));
    CHECK(info.vendor == Vendor::nvidia);
    CHECK(!info.name.empty());
    CHECK(info.arch.starts_with("sm_"));
    if (info.name.find("H100") != std::string::npos) {
      CHECK(info.arch == "sm_90a");
      CHECK(info.multiprocessors >= 114);
      CHECK(info.shared_memory_per_block_optin == 227u * 1024u);
    }
    CHECK(info.uuid.starts_with("GPU-"));
    CHECK(info.uuid.size() == 40);
    CHECK(info.multiprocessors > 0);
    CHECK(info.shared_memory_per_block_optin >= 48u * 1024u);
    CHECK(info.l2_bytes > 0);
    CHECK(info.global_memory_bytes > (1ull << 30));
    CHECK(std::stoi(info.driver_version) >= 12000);
  }

  TEST_CASE("nvrtc_kernel_computes_exactly_what_the_cpu_computes") {
    if (!is_nvidia()) return;
    Device& device = test::gpu_device();
    Compiled c = compile_and_load(device);
    CHECK(cubin_arch(c.result.binary) == device.info().arch);
    const KernelHandle kernel = c.module->kernel("axpy_index");

    const int n = 1'000'003;    // not a multiple of the block
    constexpr int kGuard = 64;  // trailing elements the kernel must not touch
    const std::vector<float> x = random_floats(n);
    const float a = random_floats(1)[0];
    DeviceMemory dx = device.allocate(n * sizeof(float));
    DeviceMemory dy = device.allocate((n + kGuard) * sizeof(float));
    device.copy_to_device(dx.get(), x.data(), n * sizeof(float));
    device.fill_bytes(dy.get(), 0xff, (n + kGuard) * sizeof(float));

    void* px = dx.get();
    void* py = dy.get();
    int count = n;
    float scale = a;
    void* args[] = {&scale, &px, &py, &count};
    device.launch(kernel, Dim3{(n + 255) / 256, 1, 1}, Dim3{256, 1, 1}, 0, nullptr, args);
    device.synchronize();

    std::vector<float> y(n + kGuard);
    device.copy_to_host(y.data(), dy.get(), y.size() * sizeof(float));
    std::vector<float> want(n);
    for (int i = 0; i < n; ++i) {
      const float product = a * x[i];
      want[i] = product + static_cast<float>(i);
    }
    CHECK(mismatches(y, want, n) == 0);
    for (int i = n; i < n + kGuard; ++i) CHECK(bits(y[i]) == kPoisonBits);
  }

  TEST_CASE("launch_on_created_stream_is_timed_by_events") {
    if (!is_nvidia()) return;
    Device& device = test::gpu_device();
    Compiled c = compile_and_load(device);
    const KernelHandle kernel = c.module->kernel("reverse_blocks");

    constexpr int kBlocks = 4096;
    const std::size_t n = kBlocks * 256;
    const std::vector<float> x = random_floats(n);
    DeviceMemory dx = device.allocate(n * sizeof(float));
    DeviceMemory dy = device.allocate(n * sizeof(float));
    device.copy_to_device(dx.get(), x.data(), n * sizeof(float));
    device.fill_bytes(dy.get(), 0xff, n * sizeof(float));

    auto stream = device.create_stream();
    REQUIRE(stream->native() != nullptr);
    auto start = device.create_event();
    auto stop = device.create_event();
    void* px = dx.get();
    void* py = dy.get();
    void* args[] = {&px, &py};
    start->record(stream->native());
    for (int i = 0; i < 20; ++i)
      device.launch(kernel, Dim3{kBlocks, 1, 1}, Dim3{256, 1, 1}, 0, stream->native(), args);
    stop->record(stream->native());
    stop->synchronize();
    const float ms = stop->elapsed_ms_since(*start);
    MESSAGE("20 launches of reverse_blocks: " << ms << " ms");
    CHECK(ms > 0.0f);
    CHECK(ms < 10'000.0f);
    stream->synchronize();

    std::vector<float> y(n);
    device.copy_to_host(y.data(), dy.get(), n * sizeof(float));
    std::vector<float> want(n);
    for (std::size_t b = 0; b < kBlocks; ++b) {
      for (std::size_t t = 0; t < 256; ++t) want[b * 256 + t] = x[b * 256 + 255 - t];
    }
    CHECK(mismatches(y, want, n) == 0);
  }

  TEST_CASE("dynamic_shared_memory_above_48k_needs_and_gets_the_opt_in") {
    if (!is_nvidia()) return;
    Device& device = test::gpu_device();
    Compiled c = compile_and_load(device);
    const KernelHandle kernel = c.module->kernel("rotate_dynamic");

    const int count = 25'000;  // 100,000 bytes of dynamic shared memory per block
    const unsigned smem = count * sizeof(float);
    REQUIRE(device.info().shared_memory_per_block_optin >= smem);
    constexpr int kBlocks = 64;
    const std::vector<float> x = random_floats(std::size_t{kBlocks} * count);
    DeviceMemory dx = device.allocate(x.size() * sizeof(float));
    DeviceMemory dy = device.allocate(x.size() * sizeof(float));
    device.copy_to_device(dx.get(), x.data(), x.size() * sizeof(float));
    device.fill_bytes(dy.get(), 0xff, x.size() * sizeof(float));
    void* px = dx.get();
    void* py = dy.get();
    int n = count;
    void* args[] = {&px, &py, &n};

    // Without the opt-in the driver refuses the launch (and says why).
    try {
      device.launch(kernel, Dim3{kBlocks, 1, 1}, Dim3{256, 1, 1}, smem, nullptr, args);
      device.synchronize();
      FAIL("a launch with 100 KB of dynamic shared memory worked without the opt-in");
    } catch (const Error& e) {
      CHECK(e.code() == ErrorCode::device_error);
      CHECK(e.reason().find("CUDA_ERROR_") != std::string::npos);
      CHECK(e.location().find("cuLaunchKernel") != std::string::npos);
    }

    device.set_max_dynamic_shared(kernel, static_cast<int>(smem));
    device.launch(kernel, Dim3{kBlocks, 1, 1}, Dim3{256, 1, 1}, smem, nullptr, args);
    device.synchronize();
    std::vector<float> y(x.size());
    device.copy_to_host(y.data(), dy.get(), y.size() * sizeof(float));
    std::vector<float> want(x.size());
    for (int b = 0; b < kBlocks; ++b) {
      for (int i = 0; i < count; ++i) want[b * count + i] = x[b * count + (i + 1) % count];
    }
    CHECK(mismatches(y, want, want.size()) == 0);
  }

  TEST_CASE("kernel_resources_from_driver_agree_with_the_cubin") {
    if (!is_nvidia()) return;
    Device& device = test::gpu_device();
    Compiled c = compile_and_load(device);
    const std::vector<KernelResources> from_cubin = cubin_resources(c.result.binary);
    REQUIRE(from_cubin.size() == 3);
    for (const KernelResources& expected : from_cubin) {
      CAPTURE(expected.kernel_name);
      const KernelResources got = device.kernel_resources(c.module->kernel(expected.kernel_name));
      MESSAGE(fmt::format(
          "{}: driver regs {} local {} shared {} max threads {}; cubin regs {} local {} shared {}",
          got.kernel_name, got.registers, got.spill_bytes, got.static_shared_bytes, got.max_threads_per_block,
          expected.registers, expected.spill_bytes, expected.static_shared_bytes));
      CHECK(got.kernel_name == expected.kernel_name);
      CHECK(got.registers == expected.registers);
      CHECK(got.spill_bytes == expected.spill_bytes);
      // The cubin excludes the 1 KB system window of sm_90+; accept the driver counting it or not.
      CHECK((got.static_shared_bytes == expected.static_shared_bytes ||
             got.static_shared_bytes == expected.static_shared_bytes + 1024));
      if (expected.max_threads_per_block > 0) {
        CHECK(got.max_threads_per_block == expected.max_threads_per_block);
      } else {
        CHECK(got.max_threads_per_block > 0);
        CHECK(got.max_threads_per_block <= 1024);
      }
    }
  }

  TEST_CASE("missing_kernel_is_not_found_naming_it") {
    if (!is_nvidia()) return;
    Device& device = test::gpu_device();
    Compiled c = compile_and_load(device);
    try {
      (void)c.module->kernel("kernel_that_does_not_exist");
      FAIL("found a kernel that does not exist");
    } catch (const Error& e) {
      CHECK(e.code() == ErrorCode::not_found);
      CHECK(e.operation().find("kernel_that_does_not_exist") != std::string::npos);
    }
  }

  TEST_CASE("device_memory_is_released_even_from_threads_without_a_context") {
    if (!is_nvidia()) return;
    Device& device = test::gpu_device();
    // Far more in total than the GPU has: only works if every release really frees.
    const std::size_t chunk = device.info().global_memory_bytes / 4;
    for (int i = 0; i < 12; ++i) {
      CAPTURE(i);
      DeviceMemory memory = device.allocate(chunk);
      REQUIRE(memory.get() != nullptr);
      CHECK(memory.bytes() == chunk);
      std::thread([m = std::move(memory)]() mutable { DeviceMemory dies_here = std::move(m); }).join();
    }
    device.make_current();
  }
}

}  // namespace nsajit
