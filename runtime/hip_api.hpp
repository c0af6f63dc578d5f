// The HIP runtime and hipRTC entry points nsa-jit uses, resolved with dlopen/dlsym at run time
// so one build runs on AMD, NVIDIA and GPU-less machines. No ROCm header is included: the
// types below are our own declarations of the C ABI, checked against ROCm 5.2.3
// (/usr/include/hip) and the ROCm 7 development headers (ROCm/rocm-systems). Handles are
// opaque pointers in every ROCm version, and hipError_t / hiprtcResult are C enums (int).
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>

#include "runtime/hip_dlopen.hpp"

namespace nsajit::hip_detail {

using HipError = int;  // hipError_t
inline constexpr HipError kHipSuccess = 0;
inline constexpr HipError kHipErrorNoDevice = 100;

using HiprtcResult = int;  // hiprtcResult
inline constexpr HiprtcResult kHiprtcSuccess = 0;

// hipDeviceAttribute_t values used here. Identical in ROCm 5.2 and ROCm 7 (the CUDA-compatible
// block only ever appended or renamed entries in place; the gcnArch attributes, 10001/10003,
// became "unused" in ROCm 6, which is why the arch name is not read through an attribute).
enum class HipDeviceAttribute : int {
  l2_cache_size = 19,
  compute_capability_major = 23,
  max_threads_per_block = 56,
  compute_capability_minor = 61,
  multiprocessor_count = 63,
  max_shared_memory_per_block = 74,
  shared_mem_per_block_optin = 75,
  warp_size = 87,
  max_shared_memory_per_multiprocessor = 10002,
};

// hipFunction_attribute values (same in ROCm 5.2 and 7; they mirror CUfunction_attribute).
enum class HipFunctionAttribute : int {
  max_threads_per_block = 0,
  shared_size_bytes = 1,
  local_size_bytes = 3,
  num_regs = 4,
};

inline constexpr unsigned kHipStreamNonBlocking = 1;
inline constexpr unsigned kHipEventDefault = 0;

using HipModuleHandle = void*;    // hipModule_t
using HipFunctionHandle = void*;  // hipFunction_t
using HipStreamHandle = void*;    // hipStream_t
using HipEventHandle = void*;     // hipEvent_t
using HiprtcProgram = void*;      // hiprtcProgram

// The HIP runtime half. Required entries are non-null whenever `loaded` is true; the ones
// marked optional may be null on some ROCm versions.
struct HipRuntimeApi {
  bool loaded = false;
  std::string reason;  // why not loaded: every dlopen error, or the missing symbol
  HipSharedLibrary library;

  HipError (*hipInit)(unsigned flags) = nullptr;
  HipError (*hipGetDeviceCount)(int* count) = nullptr;
  const char* (*hipGetErrorName)(HipError error) = nullptr;
  HipError (*hipRuntimeGetVersion)(int* version) = nullptr;
  HipError (*hipDriverGetVersion)(int* version) = nullptr;
  HipError (*hipSetDevice)(int device) = nullptr;
  HipError (*hipDeviceGetAttribute)(int* value, int attribute, int device) = nullptr;
  HipError (*hipDeviceGetName)(char* name, int length, int device) = nullptr;
  HipError (*hipDeviceGetPCIBusId)(char* bus_id, int length, int device) = nullptr;
  HipError (*hipDeviceTotalMem)(std::size_t* bytes, int device) = nullptr;
  HipError (*hipDeviceGetUuid)(void* uuid16, int device) = nullptr;       // optional (5.1+)
  HipError (*hipGetDeviceProperties)(void* props, int device) = nullptr;  // optional, see .cpp
  HipError (*hipDeviceSynchronize)() = nullptr;
  HipError (*hipModuleLoadData)(HipModuleHandle* module, const void* image) = nullptr;
  HipError (*hipModuleUnload)(HipModuleHandle module) = nullptr;
  HipError (*hipModuleGetFunction)(HipFunctionHandle* function, HipModuleHandle module,
                                   const char* name) = nullptr;
  HipError (*hipFuncGetAttribute)(int* value, int attribute,
                                  HipFunctionHandle function) = nullptr;  // optional
  HipError (*hipMalloc)(void** ptr, std::size_t bytes) = nullptr;
  HipError (*hipFree)(void* ptr) = nullptr;
  HipError (*hipMemcpyHtoD)(void* dst, void* src, std::size_t bytes) = nullptr;
  HipError (*hipMemcpyDtoH)(void* dst, void* src, std::size_t bytes) = nullptr;
  HipError (*hipMemsetD8)(void* dst, unsigned char value, std::size_t bytes) = nullptr;
  HipError (*hipStreamCreateWithFlags)(HipStreamHandle* stream, unsigned flags) = nullptr;
  HipError (*hipStreamDestroy)(HipStreamHandle stream) = nullptr;
  HipError (*hipStreamSynchronize)(HipStreamHandle stream) = nullptr;
  HipError (*hipEventCreateWithFlags)(HipEventHandle* event, unsigned flags) = nullptr;
  HipError (*hipEventDestroy)(HipEventHandle event) = nullptr;
  HipError (*hipEventRecord)(HipEventHandle event, HipStreamHandle stream) = nullptr;
  HipError (*hipEventSynchronize)(HipEventHandle event) = nullptr;
  HipError (*hipEventElapsedTime)(float* ms, HipEventHandle start, HipEventHandle stop) = nullptr;
  HipError (*hipModuleLaunchKernel)(HipFunctionHandle function, unsigned grid_x, unsigned grid_y,
                                    unsigned grid_z, unsigned block_x, unsigned block_y, unsigned block_z,
                                    unsigned shared_bytes, HipStreamHandle stream, void** params,
                                    void** extra) = nullptr;

  // "hipErrorNoDevice (100)"; works when the library is loaded, else just the number.
  [[nodiscard]] std::string error_name(HipError error) const;
};

// The hipRTC half: inside libamdhip64 on ROCm 5.x, in libhiprtc.so.N from ROCm 6 on.
struct HiprtcApi {
  bool loaded = false;
  std::string reason;
  std::string library_name;                      // the file the symbols came from
  HipSharedLibrary library;                      // empty when the symbols live in libamdhip64
  std::shared_ptr<const HipRuntimeApi> runtime;  // keeps libamdhip64 open

  HiprtcResult (*hiprtcVersion)(int* major, int* minor) = nullptr;
  const char* (*hiprtcGetErrorString)(HiprtcResult result) = nullptr;
  HiprtcResult (*hiprtcCreateProgram)(HiprtcProgram* program, const char* source, const char* name,
                                      int header_count, const char* const* headers,
                                      const char* const* include_names) = nullptr;
  HiprtcResult (*hiprtcCompileProgram)(HiprtcProgram program, int option_count,
                                       const char* const* options) = nullptr;
  HiprtcResult (*hiprtcGetProgramLogSize)(HiprtcProgram program, std::size_t* bytes) = nullptr;
  HiprtcResult (*hiprtcGetProgramLog)(HiprtcProgram program, char* log) = nullptr;
  HiprtcResult (*hiprtcGetCodeSize)(HiprtcProgram program, std::size_t* bytes) = nullptr;
  HiprtcResult (*hiprtcGetCode)(HiprtcProgram program, char* code) = nullptr;
  HiprtcResult (*hiprtcDestroyProgram)(HiprtcProgram* program) = nullptr;

  [[nodiscard]] std::string error_name(HiprtcResult result) const;
};

// Loads libamdhip64 (.so.5, .so.6, .so.7, then .so). Never throws: a missing library or symbol
// gives loaded == false with the reason.
[[nodiscard]] std::shared_ptr<const HipRuntimeApi> load_hip_runtime_api();

// Resolves hipRTC from the runtime library or from libhiprtc. Never throws.
[[nodiscard]] std::shared_ptr<const HiprtcApi> load_hiprtc_api(std::shared_ptr<const HipRuntimeApi> runtime);

// hipRTC 5.2 is not thread-safe (concurrent hiprtcCompileProgram calls crash or produce
// different code, AMD-TOOLCHAIN.md "Gotchas"): every hipRTC call in the process holds this.
[[nodiscard]] std::mutex& hiprtc_mutex() noexcept;

}  // namespace nsajit::hip_detail
