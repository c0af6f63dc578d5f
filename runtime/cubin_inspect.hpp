// Reads an NVIDIA cubin (a 64-bit ELF with e_machine EM_CUDA = 190) with no CUDA installed:
// its target arch, its kernels and each kernel's resources. This is what `nsa-tune compile
// --report` prints for NVIDIA targets, and how the NVRTC compiler checks that the requested
// kernels made it into the binary.
//
// Where the numbers come from (checked against `ptxas -v` for sm_75..sm_121a, CUDA 13.0):
//   registers      .nv.info EIATTR_REGCOUNT (0x2f) for the kernel's symbol; cubins without it
//                  keep the count in bits 24-31 of sh_info of .text.<kernel>
//   spill_bytes    .nv.info EIATTR_FRAME_SIZE (0x11): per-thread stack frame = local memory
//                  (register spills and local arrays); what the driver calls LOCAL_SIZE_BYTES
//   static_shared  size of .nv.shared.<kernel>, less the 1 KB window that sm_90+ cubins (those
//                  with a .nv.shared.reserved.0 section) place at its start for the system;
//                  equals ptxas' "bytes smem"
//   max_threads    __launch_bounds__ / __maxnreg__: EIATTR_MAX_THREADS (0x05) or REQNTID (0x10)
//                  as x*y*z; 0 when the kernel declares none
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "runtime/backend.hpp"

namespace nsajit {

// True for a well-formed little-endian ELF64 header with e_machine EM_CUDA. Never throws.
[[nodiscard]] bool is_cubin(std::span<const std::uint8_t> binary) noexcept;

// The SASS target, e.g. "sm_90a", "sm_80", "sm_120a". Arch-specific ('a') cubins are told apart
// by the .nv.compat attribute the toolkit sets for them; family ('f') targets compile to the
// plain arch and read back as "sm_100". Throws Error(invalid_argument) for a non-cubin.
[[nodiscard]] std::string cubin_arch(std::span<const std::uint8_t> binary);

// Names of the kernels (entry functions, extern "C" names unmangled) in symbol-table order.
[[nodiscard]] std::vector<std::string> cubin_kernel_names(std::span<const std::uint8_t> binary);

// Resources of every kernel in the cubin, in cubin_kernel_names() order.
[[nodiscard]] std::vector<KernelResources> cubin_resources(std::span<const std::uint8_t> binary);

}  // namespace nsajit
