// The AMDGPU code object reader: resources from the metadata note, exact occupancy arithmetic,
// and malformed input that is rejected without crashing.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "generator/template_library.hpp"
#include "runtime/amdgpu_clang_compiler.hpp"
#include "runtime/amdgpu_code_object.hpp"
#include "runtime/backend.hpp"
#include "runtime/error.hpp"

namespace {

using namespace nsajit;

// Two kernels with exact static LDS sizes, and one that must spill: 160 live floats per thread
// under __launch_bounds__(1024), which caps a gfx942 wave at 128 VGPRs.
constexpr const char* kSource = R"(#include "common/hip_prelude.h"
extern "C" __global__ __launch_bounds__(256) void lds_4k(float* out) {
  __shared__ float tile[1024];
  tile[threadIdx.x] = threadIdx.x;
  __syncthreads();
  out[threadIdx.x] = tile[(threadIdx.x * 4 + 1) % 1024];
}
extern "C" __global__ __launch_bounds__(128) void lds_24k(float* out) {
  __shared__ float tile[6144];
  for (int i = threadIdx.x; i < 6144; i += 128) tile[i] = i;
  __syncthreads();
  out[threadIdx.x] = tile[(threadIdx.x * 33) % 6144];
}
extern "C" __global__ __launch_bounds__(1024) void spill_demo(float* out, const float* in) {
  const unsigned t = threadIdx.x;
  float v[160];
#pragma unroll
  for (int i = 0; i < 160; ++i) v[i] = in[i * 1024 + t];
  float s = 0.f;
#pragma unroll
  for (int i = 0; i < 160; ++i) s = s * v[159 - i] + v[i] * v[(i * 7) % 160];
  out[t] = s;
}
)";

// Compiled once for the whole file (clang-19, gfx942); empty when clang-19 is missing.
const std::vector<std::uint8_t>& sample_code_object() {
  static const std::vector<std::uint8_t> binary = [] {
    const AmdgpuClangCompiler clang;
    if (!clang.available()) return std::vector<std::uint8_t>{};
    CompileRequest r;
    r.source = kSource;
    r.source_name = "code_object_test.hip";
    r.headers = template_headers();
    r.arch = "gfx942";
    r.kernel_names = {"lds_4k", "lds_24k", "spill_demo"};
    return clang.compile(r).binary;
  }();
  return binary;
}

const AmdgpuKernelMetadata& kernel(const AmdgpuCodeObject& co, const std::string& name) {
  for (const auto& k : co.kernels)
    if (k.name == name) return k;
  FAIL("kernel " << name << " not in the code object");
  return co.kernels.front();
}

}  // namespace

TEST_CASE("occupancy_follows_the_vgpr_lds_and_workgroup_limits") {
  // VGPRs alone (one-wave workgroups, no LDS): 512 / roundup(v, 8), at most 8.
  CHECK(amdgpu_occupancy_waves_per_simd(0, 0, 64) == 8);
  CHECK(amdgpu_occupancy_waves_per_simd(64, 0, 64) == 8);
  CHECK(amdgpu_occupancy_waves_per_simd(65, 0, 64) == 7);  // 72 allocated -> 7
  CHECK(amdgpu_occupancy_waves_per_simd(128, 0, 64) == 4);
  CHECK(amdgpu_occupancy_waves_per_simd(140, 0, 64) == 3);  // 144 allocated -> 3
  CHECK(amdgpu_occupancy_waves_per_simd(256, 0, 64) == 2);
  CHECK(amdgpu_occupancy_waves_per_simd(512, 0, 64) == 1);
  CHECK(amdgpu_occupancy_waves_per_simd(513, 0, 64) == 0);
  // Whole workgroups: 1024 threads = 16 waves = 4 per SIMD; 5 VGPR-waves fit one group only.
  CHECK(amdgpu_occupancy_waves_per_simd(96, 0, 1024) == 4);  // 512/96 = 5 -> 1 group -> 4
  CHECK(amdgpu_occupancy_waves_per_simd(64, 0, 1024) == 8);  // 2 groups
  // LDS: the GEMM of AMD-TOOLCHAIN.md (140 VGPRs, 20 KB LDS, 256 threads) -> 3 groups -> 3.
  CHECK(amdgpu_occupancy_waves_per_simd(140, 20480, 256) == 3);
  CHECK(amdgpu_occupancy_waves_per_simd(32, 40 * 1024, 256) == 1);  // 1 group of 4 waves
  CHECK(amdgpu_occupancy_waves_per_simd(32, 40 * 1024, 512) == 2);  // 1 group of 8 waves
  CHECK(amdgpu_occupancy_waves_per_simd(32, 65537, 256) == 0);      // does not fit at all
  CHECK(amdgpu_occupancy_waves_per_simd(32, 80 * 1024, 256, amdgpu_lds_bytes_per_cu("gfx950")) == 2);
  CHECK(amdgpu_occupancy_waves_per_simd(32, 96 * 1024, 256, amdgpu_lds_bytes_per_cu("gfx950")) == 1);
  CHECK(amdgpu_lds_bytes_per_cu("gfx950") == 160 * 1024);
  CHECK(amdgpu_lds_bytes_per_cu("gfx942") == 64 * 1024);
}

TEST_CASE("non_elf_and_foreign_elf_bytes_are_not_amdgpu_code_objects") {
  const std::vector<std::uint8_t> empty;
  CHECK_FALSE(is_amdgpu_code_object(empty));
  std::vector<std::uint8_t> text(128, 'x');
  CHECK_FALSE(is_amdgpu_code_object(text));
  // A valid x86-64 ELF header (EM_X86_64 = 62) must not pass either.
  std::vector<std::uint8_t> x86(64, 0);
  x86[0] = 0x7f, x86[1] = 'E', x86[2] = 'L', x86[3] = 'F', x86[4] = 2, x86[5] = 1, x86[0x12] = 62;
  CHECK_FALSE(is_amdgpu_code_object(x86));
  CHECK_THROWS_AS((void)read_amdgpu_code_object(x86), Error);
  x86[0x12] = 224;  // EM_AMDGPU, but no sections, no notes
  CHECK(is_amdgpu_code_object(x86));
  try {
    (void)code_object_resources(x86);
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::invalid_argument);
    CHECK(e.reason().find("NT_AMDGPU_METADATA") != std::string::npos);
  }
}

TEST_CASE("code_object_reports_exact_lds_and_workgroup_sizes_per_kernel") {
  const auto& binary = sample_code_object();
  if (binary.empty()) {
    MESSAGE("clang++-19 not found, skipped");
    return;
  }
  const AmdgpuCodeObject co = read_amdgpu_code_object(binary);
  CHECK(co.processor == "gfx942");
  REQUIRE(co.kernels.size() == 3);
  const auto& a = kernel(co, "lds_4k");
  CHECK(a.symbol == "lds_4k.kd");
  CHECK(a.group_segment_fixed_size == 4096);
  CHECK(a.max_flat_workgroup_size == 256);
  CHECK(a.wavefront_size == 64);
  CHECK(a.private_segment_fixed_size == 0);
  const auto& b = kernel(co, "lds_24k");
  CHECK(b.group_segment_fixed_size == 24576);
  CHECK(b.max_flat_workgroup_size == 128);

  const auto resources = code_object_resources(binary);
  REQUIRE(resources.size() == 3);
  for (const KernelResources& r : resources) {
    if (r.kernel_name != "lds_24k") continue;
    CHECK(r.static_shared_bytes == 24576);
    CHECK(r.max_threads_per_block == 128);
    // 65536 / 24576 = 2 groups of 2 waves -> 4 waves on 4 SIMDs -> 1 per SIMD.
    CHECK(r.occupancy_waves_per_simd == 1);
  }
}

TEST_CASE("a_kernel_that_spills_reports_spills_and_scratch") {
  const auto& binary = sample_code_object();
  if (binary.empty()) {
    MESSAGE("clang++-19 not found, skipped");
    return;
  }
  const AmdgpuCodeObject object = read_amdgpu_code_object(binary);
  const AmdgpuKernelMetadata& k = kernel(object, "spill_demo");
  CHECK(k.vgpr_count <= 128);  // the launch bound's cap
  CHECK(k.vgpr_spill_count > 0);
  CHECK(k.private_segment_fixed_size >= 4 * k.vgpr_spill_count);
  for (const KernelResources& r : code_object_resources(binary)) {
    if (r.kernel_name != "spill_demo") continue;
    CHECK(r.vgpr_spills == k.vgpr_spill_count);
    CHECK(r.sgpr_spills == k.sgpr_spill_count);
    CHECK(r.spill_bytes == k.private_segment_fixed_size);
    CHECK(r.occupancy_waves_per_simd == 4);  // 16 waves of one 1024-thread group over 4 SIMDs
  }
}

TEST_CASE("truncated_or_corrupted_code_objects_throw_instead_of_crashing") {
  const auto& binary = sample_code_object();
  if (binary.empty()) {
    MESSAGE("clang++-19 not found, skipped");
    return;
  }
  int rejected = 0;
  for (std::size_t len = 0; len < binary.size(); len += 37) {
    const std::span<const std::uint8_t> prefix(binary.data(), len);
    try {
      (void)read_amdgpu_code_object(prefix);
    } catch (const Error& e) {
      CHECK(e.code() == ErrorCode::invalid_argument);
      ++rejected;
    }
  }
  CHECK(rejected > 0);
  // Flip every byte of the metadata region in turn: any outcome but a crash or a non-Error
  // exception is acceptable.
  std::vector<std::uint8_t> copy = binary;
  for (std::size_t i = 0x200; i < std::min<std::size_t>(copy.size(), 0x600); ++i) {
    copy[i] ^= 0xff;
    try {
      (void)code_object_resources(copy);
    } catch (const Error&) {
    }
    copy[i] ^= 0xff;
  }
  CHECK(copy == binary);
}

TEST_CASE("missing_kernels_lists_only_absent_names") {
  const auto& binary = sample_code_object();
  if (binary.empty()) {
    MESSAGE("clang++-19 not found, skipped");
    return;
  }
  CHECK(missing_kernels(binary, {"lds_4k", "spill_demo"}).empty());
  CHECK(missing_kernels(binary, {"lds_4k", "nope", "lds_4k.kd"}) ==
        std::vector<std::string>{"nope", "lds_4k.kd"});
}
