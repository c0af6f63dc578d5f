// A dlopen'ed shared library, closed when the object dies. Private to the HIP backend until
// the project-wide runtime/dynamic_library.hpp replaces it.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace nsajit::hip_detail {

class HipSharedLibrary {
 public:
  HipSharedLibrary() = default;
  HipSharedLibrary(HipSharedLibrary&& o) noexcept;
  HipSharedLibrary& operator=(HipSharedLibrary&& o) noexcept;
  HipSharedLibrary(const HipSharedLibrary&) = delete;
  HipSharedLibrary& operator=(const HipSharedLibrary&) = delete;
  ~HipSharedLibrary();

  // Tries each name in order; on failure the object is empty and error() lists every
  // dlerror() text, so "which file was missing, and why" is never lost.
  static HipSharedLibrary open_first(std::span<const char* const> names);

  [[nodiscard]] bool loaded() const noexcept { return handle_ != nullptr; }
  [[nodiscard]] const std::string& file_name() const noexcept { return file_name_; }
  [[nodiscard]] const std::string& error() const noexcept { return error_; }
  // nullptr when absent.
  [[nodiscard]] void* symbol(const char* name) const noexcept;

 private:
  void* handle_ = nullptr;
  std::string file_name_;
  std::string error_;
};

}  // namespace nsajit::hip_detail
