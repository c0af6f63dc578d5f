#include "runtime/hip_api.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <string_view>
#include <vector>

namespace nsajit::hip_detail {
namespace {

// Resolves one symbol into `fn`; records its name in `missing` when it is required and absent.
template <class Fn>
void resolve(const HipSharedLibrary& lib, const char* name, Fn& fn, std::vector<std::string>* missing) {
  fn = reinterpret_cast<Fn>(lib.symbol(name));
  if (fn == nullptr && missing != nullptr) missing->emplace_back(name);
}

// "libamdhip64.so.6" -> "6"; "" when unversioned.
std::string_view soname_major(std::string_view file) {
  const auto pos = file.rfind(".so.");
  if (pos == std::string_view::npos) return {};
  auto rest = file.substr(pos + 4);
  return rest.substr(0, rest.find('.'));
}

}  // namespace

std::string HipRuntimeApi::error_name(HipError error) const {
  const char* name = (loaded && hipGetErrorName != nullptr) ? hipGetErrorName(error) : nullptr;
  return name != nullptr ? fmt::format("{} ({})", name, error) : fmt::format("hipError {}", error);
}

std::string HiprtcApi::error_name(HiprtcResult result) const {
  const char* name = (loaded && hiprtcGetErrorString != nullptr) ? hiprtcGetErrorString(result) : nullptr;
  return name != nullptr ? fmt::format("{} ({})", name, result) : fmt::format("hiprtcResult {}", result);
}

std::shared_ptr<const HipRuntimeApi> load_hip_runtime_api() {
  auto api = std::make_shared<HipRuntimeApi>();
  static constexpr std::array names = {"libamdhip64.so.5", "libamdhip64.so.6", "libamdhip64.so.7",
                                       "libamdhip64.so"};
  api->library = HipSharedLibrary::open_first(names);
  if (!api->library.loaded()) {
    api->reason = fmt::format("the HIP runtime (libamdhip64) is not installed or cannot be loaded: {}",
                              api->library.error());
    return api;
  }
  const auto& lib = api->library;
  std::vector<std::string> missing;
  resolve(lib, "hipInit", api->hipInit, &missing);
  resolve(lib, "hipGetDeviceCount", api->hipGetDeviceCount, &missing);
  resolve(lib, "hipGetErrorName", api->hipGetErrorName, &missing);
  resolve(lib, "hipRuntimeGetVersion", api->hipRuntimeGetVersion, &missing);
  resolve(lib, "hipDriverGetVersion", api->hipDriverGetVersion, &missing);
  resolve(lib, "hipSetDevice", api->hipSetDevice, &missing);
  resolve(lib, "hipDeviceGetAttribute", api->hipDeviceGetAttribute, &missing);
  resolve(lib, "hipDeviceGetName", api->hipDeviceGetName, &missing);
  resolve(lib, "hipDeviceGetPCIBusId", api->hipDeviceGetPCIBusId, &missing);
  resolve(lib, "hipDeviceTotalMem", api->hipDeviceTotalMem, &missing);
  resolve(lib, "hipDeviceGetUuid", api->hipDeviceGetUuid, nullptr);
  // ROCm 6 changed hipDeviceProp_t and exports the new layout as ...R0600. The backend only
  // searches the returned bytes for the gcnArchName string, so either layout serves.
  resolve(lib, "hipGetDevicePropertiesR0600", api->hipGetDeviceProperties, nullptr);
  if (api->hipGetDeviceProperties == nullptr)
    resolve(lib, "hipGetDeviceProperties", api->hipGetDeviceProperties, nullptr);
  resolve(lib, "hipDeviceSynchronize", api->hipDeviceSynchronize, &missing);
  resolve(lib, "hipModuleLoadData", api->hipModuleLoadData, &missing);
  resolve(lib, "hipModuleUnload", api->hipModuleUnload, &missing);
  resolve(lib, "hipModuleGetFunction", api->hipModuleGetFunction, &missing);
  resolve(lib, "hipFuncGetAttribute", api->hipFuncGetAttribute, nullptr);
  resolve(lib, "hipMalloc", api->hipMalloc, &missing);
  resolve(lib, "hipFree", api->hipFree, &missing);
  resolve(lib, "hipMemcpyHtoD", api->hipMemcpyHtoD, &missing);
  resolve(lib, "hipMemcpyDtoH", api->hipMemcpyDtoH, &missing);
  resolve(lib, "hipMemsetD8", api->hipMemsetD8, &missing);
  resolve(lib, "hipStreamCreateWithFlags", api->hipStreamCreateWithFlags, &missing);
  resolve(lib, "hipStreamDestroy", api->hipStreamDestroy, &missing);
  resolve(lib, "hipStreamSynchronize", api->hipStreamSynchronize, &missing);
  resolve(lib, "hipEventCreateWithFlags", api->hipEventCreateWithFlags, &missing);
  resolve(lib, "hipEventDestroy", api->hipEventDestroy, &missing);
  resolve(lib, "hipEventRecord", api->hipEventRecord, &missing);
  resolve(lib, "hipEventSynchronize", api->hipEventSynchronize, &missing);
  resolve(lib, "hipEventElapsedTime", api->hipEventElapsedTime, &missing);
  resolve(lib, "hipModuleLaunchKernel", api->hipModuleLaunchKernel, &missing);
  if (!missing.empty()) {
    api->reason = fmt::format("{} lacks required symbols: {}", lib.file_name(), fmt::join(missing, ", "));
    return api;
  }
  api->loaded = true;
  return api;
}

std::shared_ptr<const HiprtcApi> load_hiprtc_api(std::shared_ptr<const HipRuntimeApi> runtime) {
  auto api = std::make_shared<HiprtcApi>();
  api->runtime = runtime;

  auto resolve_all = [&api](const HipSharedLibrary& lib) {
    std::vector<std::string> missing;
    resolve(lib, "hiprtcVersion", api->hiprtcVersion, &missing);
    resolve(lib, "hiprtcGetErrorString", api->hiprtcGetErrorString, &missing);
    resolve(lib, "hiprtcCreateProgram", api->hiprtcCreateProgram, &missing);
    resolve(lib, "hiprtcCompileProgram", api->hiprtcCompileProgram, &missing);
    resolve(lib, "hiprtcGetProgramLogSize", api->hiprtcGetProgramLogSize, &missing);
    resolve(lib, "hiprtcGetProgramLog", api->hiprtcGetProgramLog, &missing);
    resolve(lib, "hiprtcGetCodeSize", api->hiprtcGetCodeSize, &missing);
    resolve(lib, "hiprtcGetCode", api->hiprtcGetCode, &missing);
    resolve(lib, "hiprtcDestroyProgram", api->hiprtcDestroyProgram, &missing);
    return missing;
  };

  // ROCm 5.x: hipRTC is part of libamdhip64.
  if (runtime != nullptr && runtime->library.loaded() &&
      runtime->library.symbol("hiprtcCompileProgram") != nullptr) {
    if (auto missing = resolve_all(runtime->library); !missing.empty()) {
      api->reason =
          fmt::format("{} lacks hipRTC symbols: {}", runtime->library.file_name(), fmt::join(missing, ", "));
      return api;
    }
    api->library_name = runtime->library.file_name();
    api->loaded = true;
    return api;
  }

  // ROCm 6+: libhiprtc.so.N, preferring the major version of the runtime that was loaded.
  std::vector<std::string> candidates;
  if (runtime != nullptr) {
    if (auto major = soname_major(runtime->library.file_name()); !major.empty())
      candidates.push_back(fmt::format("libhiprtc.so.{}", major));
  }
  for (const char* n : {"libhiprtc.so.6", "libhiprtc.so.7", "libhiprtc.so.5", "libhiprtc.so"})
    if (std::find(candidates.begin(), candidates.end(), n) == candidates.end()) candidates.emplace_back(n);
  std::vector<const char*> names;
  for (const auto& c : candidates) names.push_back(c.c_str());
  api->library = HipSharedLibrary::open_first(names);
  if (!api->library.loaded()) {
    api->reason =
        fmt::format("hipRTC is not available: {}; libhiprtc: {}",
                    runtime != nullptr && runtime->library.loaded()
                        ? fmt::format("{} has no hiprtcCompileProgram", runtime->library.file_name())
                        : (runtime != nullptr ? runtime->reason : std::string("no HIP runtime")),
                    api->library.error());
    return api;
  }
  if (auto missing = resolve_all(api->library); !missing.empty()) {
    api->reason =
        fmt::format("{} lacks hipRTC symbols: {}", api->library.file_name(), fmt::join(missing, ", "));
    return api;
  }
  api->library_name = api->library.file_name();
  api->loaded = true;
  return api;
}

std::mutex& hiprtc_mutex() noexcept {
  static std::mutex m;
  return m;
}

}  // namespace nsajit::hip_detail
