// The hip backend on a machine with no AMD GPU: hipRTC for gfx90a, clang-19 for gfx942, the
// arch routing between them, and device enumeration that reports why there is no GPU.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "generator/template_library.hpp"
#include "runtime/amdgpu_clang_compiler.hpp"
#include "runtime/amdgpu_code_object.hpp"
#include "runtime/backend.hpp"
#include "runtime/backend_hip.hpp"
#include "runtime/error.hpp"

namespace {

using namespace nsajit;

// One MFMA tile: compiles through hipRTC (its own HIP header) and through clang-19 (our prelude).
constexpr const char* kMfmaSource = R"(#include "common/hip_prelude.h"
#include "nsajit_test/params.h"
typedef short bf16x4 __attribute__((ext_vector_type(4)));
typedef float f32x16 __attribute__((ext_vector_type(16)));
extern "C" __global__ __launch_bounds__(64) void mfma_32x32x8_bf16(const unsigned short* a,
                                                                    const unsigned short* b, float* c) {
  const unsigned lane = threadIdx.x;
  bf16x4 av, bv;
  for (int i = 0; i < 4; ++i) {
    av[i] = static_cast<short>(a[lane * 4 + i]);
    bv[i] = static_cast<short>(b[lane * 4 + i]);
  }
  f32x16 acc = {};
#if defined(__gfx90a__) || defined(__gfx942__)
  acc = __builtin_amdgcn_mfma_f32_32x32x8bf16_1k(av, bv, acc, 0, 0, 0);
#else
#error "this test kernel is for gfx90a and gfx942"
#endif
  for (int i = 0; i < 16; ++i) c[lane * 16 + i] = acc[i] * TEST_SCALE;
}
)";

CompileRequest mfma_request(const std::string& arch) {
  CompileRequest r;
  r.source = kMfmaSource;
  r.source_name = "mfma_test.hip";
  r.headers = template_headers();
  r.headers["nsajit_test/params.h"] = "#define TEST_SCALE 0.5f\n";
  r.arch = arch;
  r.kernel_names = {"mfma_32x32x8_bf16"};
  return r;
}

// hipRTC when this machine has it (ROCm installed), else nullptr and the test says why.
const Compiler* hiprtc_or_skip() {
  const Compiler* c = hip_backend().compiler_for("gfx90a");
  if (c == nullptr || c->name() != "hiprtc") {
    MESSAGE("hipRTC not available, skipped: " << hip_backend().compiler_unavailable_reason());
    return nullptr;
  }
  return c;
}

const Compiler* clang_or_skip() {
  const Compiler* c = hip_backend().compiler_for("gfx942");
  if (c == nullptr)
    MESSAGE("clang-19 not available, skipped: " << hip_backend().compiler_unavailable_reason());
  return c;
}

template <class F>
Error capture_error(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e;
  }
  FAIL("expected an nsajit::Error");
  return Error(ErrorCode::ok, "", "", "");
}

}  // namespace

TEST_CASE("hip_backend_without_gpu_reports_zero_devices_and_why") {
  Backend& b = hip_backend();
  CHECK(b.name() == "hip");
  CHECK(b.vendor() == Vendor::amd);
  if (b.device_count() > 0) {
    MESSAGE("an AMD GPU is present; the no-GPU promise is checked on GPU-less machines");
    return;
  }
  const std::string reason = b.devices_unavailable_reason();
  // With ROCm installed the runtime answers hipErrorNoDevice; without it, the library is named.
  const bool runtime_answered = reason.find("hipErrorNoDevice") != std::string::npos;
  const bool library_missing = reason.find("libamdhip64") != std::string::npos;
  CHECK_MESSAGE((runtime_answered || library_missing), reason);
  const Error e = capture_error([&] { (void)b.open_device(0); });
  CHECK(e.code() == ErrorCode::unavailable);
  CHECK(e.reason() == reason);
}

TEST_CASE("hip_backends_construct_repeatedly_without_crashing") {
  for (int i = 0; i < 3; ++i) {
    auto b = make_hip_backend();
    CHECK(b->device_count() >= 0);
    CHECK_FALSE(b->compiler_unavailable_reason().empty());
  }
}

TEST_CASE("hiprtc_version_names_the_hip_runtime") {
  const Compiler* c = hiprtc_or_skip();
  if (c == nullptr) return;
  const std::string v = c->version();
  REQUIRE(v.starts_with("hiprtc "));
  CHECK(v.size() > 7);
  CHECK(v.find_first_not_of("0123456789.", 7) == std::string::npos);
}

TEST_CASE("compiler_routing_sends_gfx90a_to_hiprtc_and_gfx942_to_clang") {
  Backend& b = hip_backend();
  if (const Compiler* c = hiprtc_or_skip()) {
    CHECK(c->supports_arch("gfx90a"));
    CHECK(c->supports_arch("gfx90a:sramecc+:xnack-"));
    CHECK_FALSE(c->supports_arch("gfx942"));  // hipRTC 5.2 would abort the process
    CHECK_FALSE(c->supports_arch("gfx908"));
  }
  if (const Compiler* c = clang_or_skip()) {
    CHECK(c->name() == "clang-19");
    CHECK(c->version().starts_with("clang-19 "));
    CHECK(c->supports_arch("gfx942"));
    CHECK(c->supports_arch("gfx942:sramecc+:xnack-"));
    CHECK(c->supports_arch("gfx90a"));
    CHECK_FALSE(c->supports_arch("gfx942:bogus+"));
    CHECK_FALSE(c->supports_arch("gfx1100"));
    CHECK_FALSE(c->supports_arch("gfx950"));
    CHECK(b.compiler_for("gfx942") == c);
  }
  CHECK(b.compiler_for("gfx1100") == nullptr);
  CHECK(b.compiler_for("sm_90a") == nullptr);
}

TEST_CASE("gfx950_is_unsupported_with_the_reason_clang_gives") {
  if (clang_or_skip() == nullptr) return;
  CHECK(hip_backend().compiler_for("gfx950") == nullptr);
  const std::string why = hip_arch_unsupported_reason("gfx950");
  CHECK_MESSAGE(why.find("invalid target ID 'gfx950'") != std::string::npos, why);
  CHECK(hip_backend().compiler_unavailable_reason().find("gfx950") != std::string::npos);
  CHECK(hip_arch_unsupported_reason("gfx942").empty());
  CHECK(hip_arch_unsupported_reason("gfx1100").find("not a CDNA target") != std::string::npos);
}

TEST_CASE("hiprtc_compiles_mfma_kernel_for_gfx90a_to_a_code_object_without_spills") {
  const Compiler* c = hiprtc_or_skip();
  if (c == nullptr) return;
  const CompileResult r = c->compile(mfma_request("gfx90a"));
  REQUIRE(is_amdgpu_code_object(r.binary));
  CHECK(r.seconds > 0.0);
  const AmdgpuCodeObject co = read_amdgpu_code_object(r.binary);
  CHECK(co.target.starts_with("amdgcn-amd-amdhsa--gfx90a"));
  CHECK(co.processor == "gfx90a");
  CHECK(co.version_major == 1);
  REQUIRE(co.kernels.size() == 1);
  const AmdgpuKernelMetadata& k = co.kernels[0];
  CHECK(k.name == "mfma_32x32x8_bf16");
  CHECK(k.symbol == "mfma_32x32x8_bf16.kd");
  CHECK(k.vgpr_count > 0);
  CHECK(k.vgpr_count >= k.agpr_count);
  CHECK(k.vgpr_spill_count == 0);
  CHECK(k.sgpr_spill_count == 0);
  CHECK(k.private_segment_fixed_size == 0);
  CHECK(k.group_segment_fixed_size == 0);
  CHECK(k.max_flat_workgroup_size == 64);
  CHECK(k.wavefront_size == 64);
  const auto res = code_object_resources(r.binary);
  REQUIRE(res.size() == 1);
  CHECK(res[0].registers == k.vgpr_count);
  CHECK(res[0].occupancy_waves_per_simd == amdgpu_occupancy_waves_per_simd(k.vgpr_count, 0, 64));
}

TEST_CASE("clang19_compiles_the_same_mfma_kernel_for_gfx942") {
  const Compiler* c = clang_or_skip();
  if (c == nullptr) return;
  const CompileResult r = c->compile(mfma_request("gfx942"));
  REQUIRE(is_amdgpu_code_object(r.binary));
  const AmdgpuCodeObject co = read_amdgpu_code_object(r.binary);
  CHECK(co.target.starts_with("amdgcn-amd-amdhsa--gfx942"));
  CHECK(code_object_target(r.binary) == co.target);
  CHECK(co.processor == "gfx942");
  CHECK(co.version_major == 1);
  CHECK(co.version_minor == 2);  // clang 19 writes code object v5
  REQUIRE(co.kernels.size() == 1);
  CHECK(co.kernels[0].name == "mfma_32x32x8_bf16");
  CHECK(co.kernels[0].vgpr_count > 0);
  CHECK(co.kernels[0].vgpr_spill_count == 0);
  CHECK(co.kernels[0].private_segment_fixed_size == 0);
  CHECK(co.kernels[0].max_flat_workgroup_size == 64);
}

TEST_CASE("clang19_request_options_override_its_defaults_and_reach_the_source") {
  const Compiler* c = clang_or_skip();
  if (c == nullptr) return;
  CompileRequest r;
  r.source = R"(#include "common/hip_prelude.h"
#if !defined(FROM_OPTIONS) || __cplusplus < 202002L
#error "request options did not arrive"
#endif
extern "C" __global__ void k(int* p) { p[threadIdx.x] = FROM_OPTIONS; })";
  r.headers = template_headers();
  r.options = {"-DFROM_OPTIONS=7", "-std=c++20"};
  r.arch = "gfx942";
  r.kernel_names = {"k"};
  CHECK(code_object_resources(c->compile(r).binary).at(0).kernel_name == "k");
}

TEST_CASE("compile_errors_raise_compile_failed_with_the_full_log") {
  CompileRequest bad;
  bad.source = "extern \"C\" __global__ void broken(float* p) { p[0] = undeclared_name_xyz; }\n";
  bad.source_name = "broken.hip";
  bad.headers = template_headers();
  auto check_error = [](const Compiler& c, CompileRequest r) {
    const Error e = capture_error([&] { (void)c.compile(r); });
    CHECK(e.code() == ErrorCode::compile_failed);
    CHECK_MESSAGE(e.reason().find("undeclared_name_xyz") != std::string::npos, e.reason());
    CHECK(e.operation().find("broken.hip") != std::string::npos);  // hipRTC logs call it CompileSource
  };
  if (const Compiler* c = hiprtc_or_skip()) {
    bad.arch = "gfx90a";
    check_error(*c, bad);
  }
  if (const Compiler* c = clang_or_skip()) {
    bad.arch = "gfx942";
    bad.source = "#include \"common/hip_prelude.h\"\n" + bad.source;
    check_error(*c, bad);
  }
}

TEST_CASE("a_kernel_name_missing_from_the_binary_is_a_compile_failure") {
  const Compiler* c = clang_or_skip();
  if (c == nullptr) return;
  CompileRequest r = mfma_request("gfx942");
  r.kernel_names = {"mfma_32x32x8_bf16", "not_there"};
  const Error e = capture_error([&] { (void)c->compile(r); });
  CHECK(e.code() == ErrorCode::compile_failed);
  CHECK(e.reason().find("not_there") != std::string::npos);
}

TEST_CASE("hiprtc_refuses_unverified_arches_instead_of_aborting") {
  const Compiler* c = hiprtc_or_skip();
  if (c == nullptr) return;
  for (const char* arch : {"gfx942", "gfx950", "gfx1100", "gfx908"}) {
    const Error e = capture_error([&] { (void)c->compile(mfma_request(arch)); });
    CHECK(e.code() == ErrorCode::invalid_argument);
  }
}

TEST_CASE("four_threads_compiling_through_hiprtc_get_identical_binaries") {
  const Compiler* c = hiprtc_or_skip();
  if (c == nullptr) return;
  CompileRequest r = mfma_request("gfx90a");
  r.options = {"-O1"};  // the same code, compiled faster
  std::vector<std::vector<std::uint8_t>> binaries(4);
  std::vector<std::string> errors(4);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < binaries.size(); ++i)
    threads.emplace_back([&, i] {
      try {
        binaries[i] = c->compile(r).binary;
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  for (std::size_t i = 0; i < binaries.size(); ++i) {
    CHECK_MESSAGE(errors[i].empty(), errors[i]);
    CHECK(is_amdgpu_code_object(binaries[i]));
    CHECK(binaries[i] == binaries[0]);
  }
}

TEST_CASE("clang19_leaves_no_temporary_files_behind") {
  const Compiler* c = clang_or_skip();
  if (c == nullptr) return;
  namespace fs = std::filesystem;
  const fs::path tmp = fs::temp_directory_path() / fmt::format("nsajit-test-tmp-{}", ::getpid());
  fs::create_directories(tmp);
  const char* old = std::getenv("TMPDIR");
  const std::string saved = old != nullptr ? old : "";
  ::setenv("TMPDIR", tmp.c_str(), 1);
  CompileRequest r = mfma_request("gfx942");
  r.headers["deep/nested/dir/unused.h"] = "#pragma once\n";
  (void)c->compile(r);
  CompileRequest bad = r;
  bad.source += "\nsyntax error here\n";
  CHECK_THROWS_AS((void)c->compile(bad), Error);
  if (old != nullptr)
    ::setenv("TMPDIR", saved.c_str(), 1);
  else
    ::unsetenv("TMPDIR");
  CHECK(fs::is_empty(tmp));
  fs::remove_all(tmp);
}

TEST_CASE("clang19_rejects_header_names_that_escape_the_include_directory") {
  const Compiler* c = clang_or_skip();
  if (c == nullptr) return;
  for (const char* name : {"../evil.h", "/etc/evil.h", "a/../../evil.h"}) {
    CompileRequest r = mfma_request("gfx942");
    r.headers[name] = "#pragma once\n";
    const Error e = capture_error([&] { (void)c->compile(r); });
    CHECK(e.code() == ErrorCode::invalid_argument);
    CHECK(e.reason().find(name) != std::string::npos);
  }
}

TEST_CASE("clang_compiler_without_clang_is_unavailable_with_a_reason") {
  const AmdgpuClangCompiler none("");
  CHECK_FALSE(none.available());
  CHECK_FALSE(none.supports_arch("gfx942"));
  CHECK(none.unsupported_reason("gfx942").find("clang++-19") != std::string::npos);
  const Error e = capture_error([&] { (void)none.compile(mfma_request("gfx942")); });
  CHECK(e.code() == ErrorCode::invalid_argument);

  const AmdgpuClangCompiler broken("/nonexistent/bin/clang++-19");
  CHECK_FALSE(broken.available());
  CHECK(broken.unavailable_reason().find("/nonexistent/bin/clang++-19") != std::string::npos);
}
