// The cuda backend on a machine with the CUDA toolkit but no GPU: NVRTC really compiles, the
// cubins it returns are read back correctly with no CUDA tool, and a missing driver is a reason,
// never a crash. NVRTC missing is a FAILURE unless NSAJIT_ALLOW_NO_NVRTC=1 (CI has the toolkit).
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "runtime/backend.hpp"
#include "runtime/cubin_inspect.hpp"
#include "runtime/dynamic_library.hpp"
#include "runtime/error.hpp"

namespace nsajit {
namespace {

const Compiler* nvrtc(std::string_view arch = "sm_90a") {
  const Compiler* compiler = cuda_backend().compiler_for(arch);
  if (compiler == nullptr) {
    const std::string reason = cuda_backend().compiler_unavailable_reason();
    const char* allow = std::getenv("NSAJIT_ALLOW_NO_NVRTC");
    if (allow != nullptr && std::string(allow) == "1") {
      MESSAGE("NVRTC unavailable, allowed by NSAJIT_ALLOW_NO_NVRTC=1: " << reason);
      return nullptr;
    }
    FAIL("NVRTC is required for " << arch
                                  << " (set NSAJIT_ALLOW_NO_NVRTC=1 to allow its absence): " << reason);
  }
  return compiler;
}

constexpr const char* kSmokeSource = R"(
extern "C" __global__ void axpy_index(float a, const float* x, float* y, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * x[i] + (float)i;
}
)";

CompileRequest smoke_request(std::string arch) {
  CompileRequest request;
  request.source = kSmokeSource;
  request.source_name = "smoke.cu";
  request.arch = std::move(arch);
  request.kernel_names = {"axpy_index"};
  return request;
}

ErrorCode code_of_compile(const Compiler& compiler, const CompileRequest& request, std::string& message) {
  try {
    (void)compiler.compile(request);
  } catch (const Error& e) {
    message = e.what();
    return e.code();
  }
  return ErrorCode::ok;
}

// What ptxas -v says per kernel, the reference for cubin_resources.
struct PtxasReport {
  int registers = -1;
  int smem = 0;
  int stack_frame = -1;
};

std::map<std::string, PtxasReport> parse_ptxas_log(const std::string& log) {
  std::map<std::string, PtxasReport> out;
  const std::regex entry(R"(Compiling entry function '([^']+)')");
  const std::regex frame(R"((\d+) bytes stack frame)");
  const std::regex used(R"(Used (\d+) registers)");
  const std::regex smem(R"((\d+) bytes smem)");
  std::istringstream lines(log);
  std::string line, current;
  std::smatch m;
  while (std::getline(lines, line)) {
    if (std::regex_search(line, m, entry)) current = m[1];
    if (current.empty()) continue;
    if (std::regex_search(line, m, frame)) out[current].stack_frame = std::stoi(m[1]);
    if (std::regex_search(line, m, used)) {
      out[current].registers = std::stoi(m[1]);
      if (std::regex_search(line, m, smem)) out[current].smem = std::stoi(m[1]);
    }
  }
  return out;
}

constexpr const char* kResourceSource = R"(
extern "C" __global__ void __launch_bounds__(256) tiled(float a, const float* x, float* y, int n) {
  __shared__ float tile[300];
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  tile[threadIdx.x] = x[i];
  __syncthreads();
  if (i < n) y[i] = a * tile[(threadIdx.x + 1) % 256] + i;
}
extern "C" __global__ void local_array(const float* x, float* y, int k) {
  volatile float loc[256];
  for (int j = 0; j < 256; ++j) loc[j] = x[j * k + threadIdx.x];
  float s = 0;
  for (int j = 0; j < 256; ++j) s += loc[(j * k) & 255];
  y[threadIdx.x] = s;
}
extern "C" __global__ void register_heavy(const float* x, float* y) {
  float r[64];
#pragma unroll
  for (int j = 0; j < 64; ++j) r[j] = x[j * 1024 + threadIdx.x];
  float s = 0;
#pragma unroll
  for (int j = 0; j < 64; ++j) s += r[j] * r[63 - j] * r[(j * 7) % 64];
  y[threadIdx.x] = s;
}
extern "C" __global__ void no_shared(int* p) { p[threadIdx.x] = threadIdx.x; }
extern "C" __global__ void two_shared(double* y) {
  __shared__ float t[4096];
  __shared__ double u[3];
  t[threadIdx.x] = y[threadIdx.x]; u[threadIdx.x % 3] = 1.0;
  __syncthreads();
  y[threadIdx.x] = t[(threadIdx.x + 7) % 4096] + u[threadIdx.x % 3];
}
)";

const KernelResources& find_kernel(const std::vector<KernelResources>& all, const std::string& name) {
  auto it =
      std::find_if(all.begin(), all.end(), [&](const KernelResources& r) { return r.kernel_name == name; });
  REQUIRE_MESSAGE(it != all.end(), "no resources for " << name);
  return *it;
}

}  // namespace

TEST_SUITE("backend_cuda") {
  TEST_CASE("nvrtc_compiles_smoke_kernel_into_sm90a_cubin") {
    const Compiler* compiler = nvrtc();
    if (compiler == nullptr) return;
    CHECK(compiler->name() == "nvrtc");
    CHECK(compiler->version().starts_with("nvrtc 13."));
    const CompileResult result = compiler->compile(smoke_request("sm_90a"));

    REQUIRE(result.binary.size() > 64);
    CHECK(std::memcmp(result.binary.data(),
                      "\x7f"
                      "ELF",
                      4) == 0);
    CHECK((result.binary[18] | (result.binary[19] << 8)) == 190);  // EM_CUDA
    CHECK(is_cubin(result.binary));
    CHECK(cubin_arch(result.binary) == "sm_90a");
    CHECK(cubin_kernel_names(result.binary) == std::vector<std::string>{"axpy_index"});
    const auto resources = cubin_resources(result.binary);
    REQUIRE(resources.size() == 1);
    CHECK(resources[0].kernel_name == "axpy_index");
    CHECK(resources[0].registers > 0);
    CHECK(resources[0].registers <= 255);
    CHECK(resources[0].static_shared_bytes == 0);
    CHECK(resources[0].spill_bytes == 0);
    CHECK(result.seconds > 0.0);
  }

  TEST_CASE("nvrtc_supports_listed_arches_and_rejects_others") {
    const Compiler* compiler = nvrtc();
    if (compiler == nullptr) return;
    for (const char* arch : {"sm_80", "sm_89", "sm_90", "sm_90a", "sm_100a", "sm_120"}) {
      CHECK_MESSAGE(compiler->supports_arch(arch), arch);
    }
    for (const char* arch : {"sm_13", "sm_87a", "gfx90a", "compute_90", "", "sm_90x"}) {
      CHECK_MESSAGE(!compiler->supports_arch(arch), arch);
    }
    CHECK(cuda_backend().compiler_for("gfx942") == nullptr);
    std::string message;
    CHECK(code_of_compile(*compiler, smoke_request("sm_13"), message) == ErrorCode::invalid_argument);
    CHECK(message.find("sm_13") != std::string::npos);
  }

  TEST_CASE("cubin_arch_tells_plain_from_arch_specific_targets") {
    const Compiler* compiler = nvrtc();
    if (compiler == nullptr) return;
    for (const char* arch : {"sm_75", "sm_80", "sm_89", "sm_90", "sm_90a", "sm_100", "sm_100a", "sm_120a"}) {
      CAPTURE(arch);
      const CompileResult result = compiler->compile(smoke_request(arch));
      CHECK(cubin_arch(result.binary) == arch);
    }
  }

  TEST_CASE("cubin_resources_match_ptxas_report") {
    const Compiler* compiler = nvrtc();
    if (compiler == nullptr) return;
    for (const char* arch : {"sm_80", "sm_90a", "sm_100a"}) {
      CAPTURE(arch);
      CompileRequest request;
      request.source = kResourceSource;
      request.source_name = "resources.cu";
      request.arch = arch;
      // -maxrregcount=32 forces register_heavy to spill; -v makes ptxas print its own numbers.
      request.options = {"--ptxas-options=-v", "-maxrregcount=32"};
      request.kernel_names = {"tiled", "local_array", "register_heavy", "no_shared", "two_shared"};
      const CompileResult result = compiler->compile(request);
      const auto ptxas = parse_ptxas_log(result.log);
      const auto resources = cubin_resources(result.binary);
      REQUIRE(resources.size() == 5);
      for (const KernelResources& r : resources) {
        CAPTURE(r.kernel_name);
        REQUIRE(ptxas.contains(r.kernel_name));
        const PtxasReport& p = ptxas.at(r.kernel_name);
        CHECK(r.registers == p.registers);
        CHECK(r.static_shared_bytes == p.smem);
        CHECK(r.spill_bytes == p.stack_frame);
      }
      // Exact values we know from the source, independent of ptxas' wording.
      CHECK(find_kernel(resources, "tiled").static_shared_bytes == 300 * 4);
      CHECK(find_kernel(resources, "tiled").max_threads_per_block == 256);
      CHECK(find_kernel(resources, "two_shared").static_shared_bytes == 4096 * 4 + 3 * 8);
      CHECK(find_kernel(resources, "no_shared").static_shared_bytes == 0);
      CHECK(find_kernel(resources, "no_shared").max_threads_per_block == 0);
      CHECK(find_kernel(resources, "local_array").spill_bytes == 256 * 4);
      CHECK(find_kernel(resources, "register_heavy").spill_bytes > 0);
      CHECK(find_kernel(resources, "register_heavy").registers <= 32);
    }
  }

  TEST_CASE("in_memory_header_is_compiled_in") {
    const Compiler* compiler = nvrtc();
    if (compiler == nullptr) return;
    CompileRequest request;
    request.source = R"(
#include "nsa/scale.cuh"
extern "C" __global__ void NSA_KERNEL_NAME(float* y) { y[threadIdx.x] = nsa::scaled(threadIdx.x); }
)";
    request.source_name = "with_header.cu";
    request.headers["nsa/scale.cuh"] = R"(
#pragma once
#define NSA_KERNEL_NAME kernel_named_by_header
namespace nsa { __device__ inline float scaled(unsigned i) { return 7.0f * i; } }
)";
    request.arch = "sm_90a";
    request.kernel_names = {"kernel_named_by_header"};
    const CompileResult result = compiler->compile(request);
    CHECK(cubin_kernel_names(result.binary) == std::vector<std::string>{"kernel_named_by_header"});

    // Without the header the same source cannot compile: the header really was used.
    request.headers.clear();
    std::string message;
    CHECK(code_of_compile(*compiler, request, message) == ErrorCode::compile_failed);
    CHECK(message.find("nsa/scale.cuh") != std::string::npos);
  }

  TEST_CASE("syntax_error_is_compile_failed_carrying_the_log") {
    const Compiler* compiler = nvrtc();
    if (compiler == nullptr) return;
    CompileRequest request = smoke_request("sm_90a");
    request.source = "extern \"C\" __global__ void broken(int* p) { int x = ; p[0] = x; }\n";
    request.source_name = "broken_source.cu";
    request.kernel_names = {"broken"};
    try {
      (void)compiler->compile(request);
      FAIL("a syntax error compiled");
    } catch (const Error& e) {
      CHECK(e.code() == ErrorCode::compile_failed);
      CHECK(e.reason().find("NVRTC_ERROR_COMPILATION") != std::string::npos);
      CHECK(e.reason().find("broken_source.cu") != std::string::npos);  // the log names the file
      CHECK(e.reason().find("expected an expression") != std::string::npos);
      CHECK(e.reason().find("--gpu-architecture=sm_90a") != std::string::npos);
    }
  }

  TEST_CASE("warnings_are_returned_in_the_log_on_success") {
    const Compiler* compiler = nvrtc();
    if (compiler == nullptr) return;
    CompileRequest request = smoke_request("sm_90a");
    request.source = "extern \"C\" __global__ void warns(int* p) { int unused_variable_here; p[0] = 1; }\n";
    request.kernel_names = {"warns"};
    const CompileResult result = compiler->compile(request);
    CHECK(result.log.find("unused_variable_here") != std::string::npos);
  }

  TEST_CASE("missing_kernel_name_is_reported") {
    const Compiler* compiler = nvrtc();
    if (compiler == nullptr) return;
    CompileRequest request = smoke_request("sm_90a");
    request.kernel_names = {"axpy_index", "kernel_that_is_not_there"};
    std::string message;
    CHECK(code_of_compile(*compiler, request, message) == ErrorCode::compile_failed);
    CHECK(message.find("kernel_that_is_not_there") != std::string::npos);
    CHECK(message.find("axpy_index") != std::string::npos);  // what the cubin does have
  }

  TEST_CASE("arch_in_options_is_rejected") {
    const Compiler* compiler = nvrtc();
    if (compiler == nullptr) return;
    CompileRequest request = smoke_request("sm_90a");
    request.options = {"-arch=sm_80"};
    std::string message;
    CHECK(code_of_compile(*compiler, request, message) == ErrorCode::invalid_argument);
  }

  TEST_CASE("concurrent_compiles_succeed_and_agree") {
    const Compiler* compiler = nvrtc();
    if (compiler == nullptr) return;
    const std::vector<std::uint8_t> expected = compiler->compile(smoke_request("sm_90a")).binary;
    constexpr int kThreads = 4;
    std::vector<std::vector<std::uint8_t>> binaries(kThreads);
    std::vector<std::string> errors(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        try {
          binaries[t] = compiler->compile(smoke_request("sm_90a")).binary;
        } catch (const std::exception& e) {
          errors[t] = e.what();
        }
      });
    }
    for (std::thread& t : threads) t.join();
    for (int t = 0; t < kThreads; ++t) {
      CAPTURE(t);
      CHECK(errors[t].empty());
      CHECK(binaries[t] == expected);
    }
  }

  TEST_CASE("no_gpu_means_zero_devices_with_a_reason") {
    Backend& backend = cuda_backend();
    CHECK(backend.vendor() == Vendor::nvidia);
    CHECK(backend.name() == "cuda");
    const int count = backend.device_count();
    if (count > 0) {
      MESSAGE("a CUDA GPU is present; skipping the no-GPU assertions");
      return;
    }
    CHECK(count == 0);
    const std::string reason = backend.devices_unavailable_reason();
    CHECK(!reason.empty());
    CHECK((reason.find("libcuda.so.1 not found") != std::string::npos ||
           reason.find("cuInit") != std::string::npos || reason.find("no devices") != std::string::npos));
    try {
      (void)backend.open_device(0);
      FAIL("opened a device that does not exist");
    } catch (const Error& e) {
      CHECK(e.code() == ErrorCode::unavailable);
      CHECK(e.reason() == reason);
    }
  }

  TEST_CASE("cubin_inspect_rejects_what_is_not_a_cubin") {
    const std::vector<std::uint8_t> empty;
    CHECK(!is_cubin(empty));
    std::vector<std::uint8_t> host_elf;
    {
      std::ifstream self("/proc/self/exe", std::ios::binary);
      host_elf.assign(std::istreambuf_iterator<char>(self), {});
    }
    REQUIRE(host_elf.size() > 64);
    CHECK(!is_cubin(host_elf));  // a real ELF, but x86-64
    CHECK_THROWS_AS((void)cubin_arch(host_elf), Error);

    const Compiler* compiler = nvrtc();
    if (compiler == nullptr) return;
    std::vector<std::uint8_t> cubin = compiler->compile(smoke_request("sm_90a")).binary;
    // Truncated after the header: the section table is out of range -> invalid_argument, no crash.
    cubin.resize(200);
    CHECK(is_cubin(cubin));
    try {
      (void)cubin_resources(cubin);
      FAIL("parsed a truncated cubin");
    } catch (const Error& e) {
      CHECK(e.code() == ErrorCode::invalid_argument);
    }
  }

  TEST_CASE("cubin_inspect_survives_corrupted_cubins") {
    const Compiler* compiler = nvrtc();
    if (compiler == nullptr) return;
    CompileRequest request;
    request.source = kResourceSource;
    request.arch = "sm_90a";
    const std::vector<std::uint8_t> good = compiler->compile(request).binary;
    std::mt19937 rng(12345);
    int parsed = 0, rejected = 0;
    for (int round = 0; round < 3000; ++round) {
      std::vector<std::uint8_t> bad = good;
      // Corrupt a few bytes, biased towards the ELF header and the section table at the end.
      for (int k = 0; k < 4; ++k) {
        const std::size_t at = (round % 2 == 0) ? rng() % 64 : bad.size() - 1 - rng() % 1024;
        bad[at] = static_cast<std::uint8_t>(rng());
      }
      try {
        (void)cubin_arch(bad);
        (void)cubin_kernel_names(bad);
        (void)cubin_resources(bad);
        ++parsed;
      } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::invalid_argument);
        ++rejected;
      }
    }
    CHECK(parsed + rejected == 3000);
    CHECK(rejected > 0);
  }

  TEST_CASE("dynamic_library_reports_every_attempt_and_missing_symbols") {
    const std::vector<std::string> missing = {"libnsajit_no_such_library.so.7", "/nonexistent/dir/libx.so"};
    std::string attempts;
    CHECK(!DynamicLibrary::open_first(missing, DynamicLibrary::Unload::on_destroy, &attempts).has_value());
    CHECK(attempts.find("libnsajit_no_such_library.so.7") != std::string::npos);
    CHECK(attempts.find("/nonexistent/dir/libx.so") != std::string::npos);

    const std::vector<std::string> candidates = {"libnsajit_no_such_library.so.7", "libm.so.6"};
    auto libm = DynamicLibrary::open_first(candidates, DynamicLibrary::Unload::on_destroy);
    REQUIRE(libm.has_value());
    CHECK(libm->name() == "libm.so.6");
    CHECK(libm->file_path().find("libm.so.6") != std::string::npos);
    double (*cosine)(double) = nullptr;
    libm->bind(cosine, "cos");
    CHECK(cosine(0.0) == 1.0);
    CHECK(libm->find("nsajit_no_such_symbol") == nullptr);
    try {
      (void)libm->require("nsajit_no_such_symbol");
      FAIL("resolved a symbol that does not exist");
    } catch (const Error& e) {
      CHECK(e.code() == ErrorCode::unavailable);
      CHECK(e.operation().find("nsajit_no_such_symbol") != std::string::npos);
      CHECK(e.reason().find("libm.so.6") != std::string::npos);
    }
  }
}

}  // namespace nsajit
