#include "runtime/hip_dlopen.hpp"

#include <dlfcn.h>

#include <utility>

namespace nsajit::hip_detail {

HipSharedLibrary::HipSharedLibrary(HipSharedLibrary&& o) noexcept {
  *this = std::move(o);
}

HipSharedLibrary& HipSharedLibrary::operator=(HipSharedLibrary&& o) noexcept {
  if (this != &o) {
    if (handle_ != nullptr) dlclose(handle_);
    handle_ = std::exchange(o.handle_, nullptr);
    file_name_ = std::move(o.file_name_);
    error_ = std::move(o.error_);
  }
  return *this;
}

HipSharedLibrary::~HipSharedLibrary() {
  if (handle_ != nullptr) dlclose(handle_);
}

HipSharedLibrary HipSharedLibrary::open_first(std::span<const char* const> names) {
  HipSharedLibrary lib;
  for (const char* name : names) {
    // RTLD_LOCAL keeps the vendor's LLVM symbols (comgr links libLLVM-15) out of the global
    // namespace, where they could clash with another LLVM in the process. RTLD_NODELETE: the
    // HIP runtime registers exit handlers and DeviceMemory frees through a plain function
    // pointer, so the code must stay mapped after the last handle closes.
    if (void* h = dlopen(name, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE); h != nullptr) {
      lib.handle_ = h;
      lib.file_name_ = name;
      lib.error_.clear();
      return lib;
    }
    const char* why = dlerror();
    if (!lib.error_.empty()) lib.error_ += "; ";
    lib.error_ += why != nullptr ? why : (std::string(name) + ": unknown dlopen error");
  }
  return lib;
}

void* HipSharedLibrary::symbol(const char* name) const noexcept {
  return handle_ != nullptr ? dlsym(handle_, name) : nullptr;
}

}  // namespace nsajit::hip_detail
