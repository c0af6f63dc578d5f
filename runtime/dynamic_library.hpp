// A shared library opened at run time (dlopen), closed when the object dies. Vendor backends use
// it so one build runs with or without CUDA/ROCm installed: a missing library is a reason to
// report, never a link error.
#pragma once

#include <optional>
#include <span>
#include <string>

namespace nsajit {

class DynamicLibrary {
 public:
  // never: the library stays mapped after this object dies (RTLD_NODELETE). Vendor runtimes
  // (libcuda, NVRTC, HIP) start helper threads and register exit handlers, so unloading them
  // while the process runs on is unsafe.
  enum class Unload { on_destroy, never };

  // Tries each candidate in order: a bare name ("libcuda.so.1") goes through the dynamic
  // loader's search path, a name with a '/' is opened as that file. Returns the first that
  // opens; otherwise nullopt, and `attempts` (when given) lists every candidate with the
  // loader's error, one per line.
  static std::optional<DynamicLibrary> open_first(std::span<const std::string> candidates, Unload unload,
                                                  std::string* attempts = nullptr);

  DynamicLibrary(DynamicLibrary&& other) noexcept;
  DynamicLibrary& operator=(DynamicLibrary&& other) noexcept;
  DynamicLibrary(const DynamicLibrary&) = delete;
  DynamicLibrary& operator=(const DynamicLibrary&) = delete;
  ~DynamicLibrary();

  // The candidate that opened, as it was given.
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  // The file the loader mapped (resolves sonames and symlinks' directories); name() if unknown.
  [[nodiscard]] std::string file_path() const;

  // The symbol's address, or nullptr when the library does not export it.
  [[nodiscard]] void* find(const char* symbol) const noexcept;
  // The symbol's address; throws Error(unavailable) naming the library and the symbol.
  [[nodiscard]] void* require(const char* symbol) const;

  // Typed helpers for function-pointer tables: `lib.bind(table.fn, "symbol")`.
  template <class Fn>
  void bind(Fn*& slot, const char* symbol) const {
    slot = reinterpret_cast<Fn*>(require(symbol));
  }
  template <class Fn>
  bool bind_optional(Fn*& slot, const char* symbol) const noexcept {
    slot = reinterpret_cast<Fn*>(find(symbol));
    return slot != nullptr;
  }

 private:
  DynamicLibrary(void* handle, std::string name) noexcept : handle_(handle), name_(std::move(name)) {}
  void close() noexcept;

  void* handle_ = nullptr;
  std::string name_;
};

}  // namespace nsajit
