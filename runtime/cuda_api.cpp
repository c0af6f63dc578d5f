#include "runtime/cuda_api.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "runtime/error.hpp"

namespace nsajit::cuda {
namespace {

// "a: why\nb: why\n" -> "a: why; b: why"
std::string one_line(std::string attempts) {
  while (!attempts.empty() && attempts.back() == '\n') attempts.pop_back();
  std::string out;
  for (char c : attempts) out += c == '\n' ? std::string("; ") : std::string(1, c);
  return out;
}

DriverLoad load_driver_once() {
  DriverLoad load;
  std::string attempts;
  auto library = DynamicLibrary::open_first(driver_candidates(), DynamicLibrary::Unload::never, &attempts);
  if (!library) {
    load.missing_reason =
        fmt::format("libcuda.so.1 not found (no NVIDIA driver); tried {}", one_line(std::move(attempts)));
    return load;
  }
  auto api = std::make_unique<DriverApi>();
  try {
    const DynamicLibrary& lib = *library;
    lib.bind(api->cuGetErrorName, "cuGetErrorName");
    lib.bind(api->cuGetErrorString, "cuGetErrorString");
    lib.bind(api->cuInit, "cuInit");
    lib.bind(api->cuDriverGetVersion, "cuDriverGetVersion");
    lib.bind(api->cuDeviceGetCount, "cuDeviceGetCount");
    lib.bind(api->cuDeviceGet, "cuDeviceGet");
    lib.bind(api->cuDeviceGetName, "cuDeviceGetName");
    if (!lib.bind_optional(api->cuDeviceGetUuid, "cuDeviceGetUuid_v2")) {
      lib.bind(api->cuDeviceGetUuid, "cuDeviceGetUuid");
    }
    lib.bind(api->cuDeviceGetAttribute, "cuDeviceGetAttribute");
    lib.bind(api->cuDeviceTotalMem, "cuDeviceTotalMem_v2");
    lib.bind(api->cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
    lib.bind(api->cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2");
    lib.bind(api->cuCtxSetCurrent, "cuCtxSetCurrent");
    lib.bind(api->cuCtxPushCurrent, "cuCtxPushCurrent_v2");
    lib.bind(api->cuCtxPopCurrent, "cuCtxPopCurrent_v2");
    lib.bind(api->cuCtxSynchronize, "cuCtxSynchronize");
    lib.bind(api->cuModuleLoadData, "cuModuleLoadData");
    lib.bind(api->cuModuleUnload, "cuModuleUnload");
    lib.bind(api->cuModuleGetFunction, "cuModuleGetFunction");
    lib.bind(api->cuMemAlloc, "cuMemAlloc_v2");
    lib.bind(api->cuMemFree, "cuMemFree_v2");
    lib.bind(api->cuMemcpyHtoD, "cuMemcpyHtoD_v2");
    lib.bind(api->cuMemcpyDtoH, "cuMemcpyDtoH_v2");
    lib.bind(api->cuMemsetD8, "cuMemsetD8_v2");
    lib.bind(api->cuPointerGetAttribute, "cuPointerGetAttribute");
    lib.bind(api->cuStreamCreate, "cuStreamCreate");
    lib.bind(api->cuStreamDestroy, "cuStreamDestroy_v2");
    lib.bind(api->cuStreamSynchronize, "cuStreamSynchronize");
    lib.bind(api->cuEventCreate, "cuEventCreate");
    lib.bind(api->cuEventDestroy, "cuEventDestroy_v2");
    lib.bind(api->cuEventRecord, "cuEventRecord");
    lib.bind(api->cuEventSynchronize, "cuEventSynchronize");
    // CUDA 13 headers map cuEventElapsedTime to _v2; older drivers only have the original.
    if (!lib.bind_optional(api->cuEventElapsedTime, "cuEventElapsedTime_v2")) {
      lib.bind(api->cuEventElapsedTime, "cuEventElapsedTime");
    }
    lib.bind(api->cuFuncGetAttribute, "cuFuncGetAttribute");
    lib.bind(api->cuFuncSetAttribute, "cuFuncSetAttribute");
    lib.bind(api->cuLaunchKernel, "cuLaunchKernel");
    (void)lib.bind_optional(api->cuLaunchKernelEx, "cuLaunchKernelEx");
    (void)lib.bind_optional(api->cuOccupancyMaxActiveClusters, "cuOccupancyMaxActiveClusters");
  } catch (const Error& e) {
    load.missing_reason = fmt::format("{} is unusable: {}", library->file_path(), e.reason());
    return load;
  }
  api->library = std::move(library);
  load.init_result = api->cuInit(0);
  load.api = std::move(api);
  return load;
}

NvrtcLoad load_nvrtc_once() {
  NvrtcLoad load;
  std::string attempts;
  auto library = DynamicLibrary::open_first(nvrtc_candidates(), DynamicLibrary::Unload::never, &attempts);
  if (!library) {
    load.missing_reason =
        fmt::format("libnvrtc.so.13 not found (no CUDA 13 toolkit); tried {}", one_line(std::move(attempts)));
    return load;
  }
  auto api = std::make_unique<NvrtcApi>();
  try {
    const DynamicLibrary& lib = *library;
    lib.bind(api->nvrtcGetErrorString, "nvrtcGetErrorString");
    lib.bind(api->nvrtcVersion, "nvrtcVersion");
    lib.bind(api->nvrtcGetNumSupportedArchs, "nvrtcGetNumSupportedArchs");
    lib.bind(api->nvrtcGetSupportedArchs, "nvrtcGetSupportedArchs");
    lib.bind(api->nvrtcCreateProgram, "nvrtcCreateProgram");
    lib.bind(api->nvrtcDestroyProgram, "nvrtcDestroyProgram");
    lib.bind(api->nvrtcCompileProgram, "nvrtcCompileProgram");
    lib.bind(api->nvrtcGetProgramLogSize, "nvrtcGetProgramLogSize");
    lib.bind(api->nvrtcGetProgramLog, "nvrtcGetProgramLog");
    lib.bind(api->nvrtcGetCUBINSize, "nvrtcGetCUBINSize");
    lib.bind(api->nvrtcGetCUBIN, "nvrtcGetCUBIN");
  } catch (const Error& e) {
    load.missing_reason = fmt::format("{} is unusable: {}", library->file_path(), e.reason());
    return load;
  }
  if (nvrtcResult r = api->nvrtcVersion(&api->major, &api->minor); r != NVRTC_SUCCESS) {
    load.missing_reason = fmt::format("{}: nvrtcVersion failed: {}", library->file_path(), api->describe(r));
    return load;
  }
  int count = 0;
  if (api->nvrtcGetNumSupportedArchs(&count) == NVRTC_SUCCESS && count > 0) {
    api->supported_archs.resize(static_cast<std::size_t>(count));
    if (api->nvrtcGetSupportedArchs(api->supported_archs.data()) != NVRTC_SUCCESS)
      api->supported_archs.clear();
  }
  // NVRTC dlopens libnvrtc-builtins by soname at compile time. When NVRTC itself came from a
  // directory outside the loader path, that lookup fails (every compile returns
  // NVRTC_ERROR_BUILTIN_OPERATION_FAILURE, seen with CUDA_HOME-only installs); loading the builtins
  // from NVRTC's own directory first makes the later lookup find the already-loaded copy.
  const std::filesystem::path dir = std::filesystem::path(library->file_path()).parent_path();
  if (!dir.empty()) {
    const std::vector<std::string> builtins = {
        (dir / fmt::format("libnvrtc-builtins.so.{}.{}", api->major, api->minor)).string(),
        (dir / "libnvrtc-builtins.so").string()};
    api->builtins = DynamicLibrary::open_first(builtins, DynamicLibrary::Unload::never);
  }
  api->library = std::move(library);
  load.api = std::move(api);
  return load;
}

}  // namespace

std::string DriverApi::describe(CUresult result) const {
  const char* name = nullptr;
  const char* text = nullptr;
  if (cuGetErrorName == nullptr || cuGetErrorName(result, &name) != CUDA_SUCCESS || name == nullptr) {
    return fmt::format("CUresult {}", result);
  }
  if (cuGetErrorString == nullptr || cuGetErrorString(result, &text) != CUDA_SUCCESS || text == nullptr) {
    return name;
  }
  return fmt::format("{} ({})", name, text);
}

std::string NvrtcApi::describe(nvrtcResult result) const {
  const char* text = nvrtcGetErrorString != nullptr ? nvrtcGetErrorString(result) : nullptr;
  return text != nullptr ? std::string(text) : fmt::format("nvrtcResult {}", result);
}

// Both loaders run once and their results are intentionally immortal: DeviceMemory frees through
// the driver table from a plain function, possibly during static destruction at exit.
const DriverLoad& load_driver() {
  static const DriverLoad* const load = new DriverLoad(load_driver_once());
  return *load;
}

const NvrtcLoad& load_nvrtc() {
  static const NvrtcLoad* const load = new NvrtcLoad(load_nvrtc_once());
  return *load;
}

std::vector<std::string> driver_candidates() {
  return {"libcuda.so.1", "libcuda.so"};
}

std::vector<std::string> nvrtc_candidates() {
  std::vector<std::string> candidates = {"libnvrtc.so.13"};
  if (const char* home = std::getenv("CUDA_HOME"); home != nullptr && home[0] != '\0') {
    candidates.push_back(std::string(home) + "/lib64/libnvrtc.so.13");
  }
  for (const char* path :
       {"/usr/local/cuda/lib64/libnvrtc.so.13", "/usr/local/cuda/targets/x86_64-linux/lib/libnvrtc.so.13"}) {
    if (std::find(candidates.begin(), candidates.end(), path) == candidates.end())
      candidates.emplace_back(path);
  }
  return candidates;
}

}  // namespace nsajit::cuda
