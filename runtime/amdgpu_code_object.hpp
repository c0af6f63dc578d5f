// Reads an AMDGPU code object (the ELF that hipRTC and clang produce) without LLVM: the kernel
// resource usage comes from the NT_AMDGPU_METADATA note, a MessagePack map, the same data
// `llvm-readelf --notes` prints as YAML.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "runtime/backend.hpp"

namespace nsajit {

// Everything the metadata note says about one kernel that matters for tuning.
struct AmdgpuKernelMetadata {
  std::string name;    // .name: the source-level name ("mfma_tile")
  std::string symbol;  // .symbol: the kernel descriptor ("mfma_tile.kd")
  int vgpr_count = 0;  // .vgpr_count: on gfx90a/gfx942 the unified total (arch VGPRs + AGPRs)
  int agpr_count = 0;
  int sgpr_count = 0;
  int vgpr_spill_count = 0;
  int sgpr_spill_count = 0;
  int private_segment_fixed_size = 0;  // scratch bytes per work-item (spills, private arrays)
  int group_segment_fixed_size = 0;    // static LDS bytes per workgroup
  int max_flat_workgroup_size = 0;
  int wavefront_size = 0;
  bool uses_dynamic_stack = false;
};

struct AmdgpuCodeObject {
  std::string target;     // amdhsa.target, e.g. "amdgcn-amd-amdhsa--gfx942:sramecc+:xnack-"
  std::string processor;  // "gfx942" (from the target, or from the ELF header flags)
  int version_major = 0;  // amdhsa.version: [1, 1] = code object v4, [1, 2] = v5
  int version_minor = 0;
  std::vector<AmdgpuKernelMetadata> kernels;
};

// True when the bytes are a 64-bit little-endian ELF for EM_AMDGPU. Never throws.
[[nodiscard]] bool is_amdgpu_code_object(std::span<const std::uint8_t> binary) noexcept;

// Throws Error(invalid_argument) when the binary is not an AMDGPU code object, or its metadata
// note is missing or malformed (every read is bounds-checked; a bad file never crashes).
[[nodiscard]] AmdgpuCodeObject read_amdgpu_code_object(std::span<const std::uint8_t> binary);

// amdhsa.target verbatim ("amdgcn-amd-amdhsa--gfx90a"); built from the ELF flags when a code
// object has no amdhsa.target entry.
[[nodiscard]] std::string code_object_target(std::span<const std::uint8_t> binary);

// The names in `wanted` that are not kernels (.name) of the code object, in order.
[[nodiscard]] std::vector<std::string> missing_kernels(std::span<const std::uint8_t> binary,
                                                       const std::vector<std::string>& wanted);

// Per-kernel resources in the project's common type, occupancy included.
[[nodiscard]] std::vector<KernelResources> code_object_resources(std::span<const std::uint8_t> binary);

// Waves per SIMD that can be resident for a kernel on a CDNA2/CDNA3 CU (gfx90a, gfx940-942,
// and gfx950 with its larger LDS), from the limits that apply per kernel:
//   - VGPRs: each SIMD has 512 unified VGPRs (arch + AGPR) per lane, allocated in granules of 8,
//     so vgpr_waves = min(8, floor(512 / roundup(vgpr_count, 8))); 8 is the hardware maximum.
//   - Workgroups are all-or-nothing on one CU (4 SIMDs): a workgroup of W work-items has
//     ceil(W / 64) waves, and at most floor(4 * vgpr_waves / waves_per_group) of them fit.
//   - LDS: at most floor(lds_per_cu / group_segment_fixed_size) workgroups (64 KB per CU on
//     gfx90a/gfx942, 160 KB on gfx950).
// occupancy = min(vgpr_waves, ceil(groups * waves_per_group / 4)) with groups the smaller of the
// two group limits. SGPRs never limit below 8 waves on these targets (800 per SIMD, at most 102
// per wave). W is the kernel's max_flat_workgroup_size, i.e. the __launch_bounds__ the
// templates declare equal to their launch size. Returns 0 when one workgroup cannot fit.
[[nodiscard]] int amdgpu_occupancy_waves_per_simd(int vgpr_count, int lds_bytes_per_group, int workgroup_size,
                                                  int lds_bytes_per_cu = 65536);

// LDS per CU for a processor name: 160 KB on gfx950, otherwise 64 KB.
[[nodiscard]] int amdgpu_lds_bytes_per_cu(std::string_view processor) noexcept;

}  // namespace nsajit
