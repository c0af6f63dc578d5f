#include "runtime/dynamic_library.hpp"

#include <dlfcn.h>
#include <fmt/format.h>
#include <link.h>

#include <utility>

#include "runtime/error.hpp"

namespace nsajit {

std::optional<DynamicLibrary> DynamicLibrary::open_first(std::span<const std::string> candidates,
                                                         Unload unload, std::string* attempts) {
  int flags = RTLD_NOW | RTLD_LOCAL;
  if (unload == Unload::never) flags |= RTLD_NODELETE;
  std::string tried;
  for (const std::string& candidate : candidates) {
    dlerror();  // clear a stale message so the one we read belongs to this call
    if (void* handle = dlopen(candidate.c_str(), flags); handle != nullptr) {
      return DynamicLibrary(handle, candidate);
    }
    const char* message = dlerror();
    const std::string error = message != nullptr ? message : "";
    // dlerror() usually starts with the file name already; don't say it twice.
    tried += error.starts_with(candidate)
                 ? error
                 : fmt::format("{}: {}", candidate, error.empty() ? "not loadable" : error);
    tried += '\n';
  }
  if (attempts != nullptr) *attempts = std::move(tried);
  return std::nullopt;
}

DynamicLibrary::DynamicLibrary(DynamicLibrary&& other) noexcept
    : handle_(std::exchange(other.handle_, nullptr)), name_(std::move(other.name_)) {}

DynamicLibrary& DynamicLibrary::operator=(DynamicLibrary&& other) noexcept {
  if (this != &other) {
    close();
    handle_ = std::exchange(other.handle_, nullptr);
    name_ = std::move(other.name_);
  }
  return *this;
}

DynamicLibrary::~DynamicLibrary() {
  close();
}

void DynamicLibrary::close() noexcept {
  if (handle_ != nullptr) dlclose(handle_);
  handle_ = nullptr;
}

std::string DynamicLibrary::file_path() const {
  link_map* map = nullptr;
  if (handle_ != nullptr && dlinfo(handle_, RTLD_DI_LINKMAP, &map) == 0 && map != nullptr &&
      map->l_name != nullptr && map->l_name[0] != '\0') {
    return map->l_name;
  }
  return name_;
}

void* DynamicLibrary::find(const char* symbol) const noexcept {
  return handle_ != nullptr ? dlsym(handle_, symbol) : nullptr;
}

void* DynamicLibrary::require(const char* symbol) const {
  dlerror();
  void* address = find(symbol);
  if (address == nullptr) {
    // Copy the message now: the next dl* call (dlinfo in file_path) frees it.
    const char* message = dlerror();
    const std::string error = message != nullptr ? message : "symbol is null";
    fail(ErrorCode::unavailable, fmt::format("resolving symbol '{}'", symbol), "runtime/dynamic_library",
         fmt::format("{} ({}) does not export it: {}", name_, file_path(), error));
  }
  return address;
}

}  // namespace nsajit
