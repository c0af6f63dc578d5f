// nsa-jit C++ API: a header-only RAII wrapper over the C ABI (nsajit.h), so a server links
// one shared library with a stable ABI. Errors throw nsajit::api_error with the library's
// message and status.
#pragma once

#include <stdexcept>
#include <string>

#include "nsajit/nsajit.h"

namespace nsajit {

class api_error : public std::runtime_error {
 public:
  api_error(int status, const std::string& message) : std::runtime_error(message), status_(status) {}
  [[nodiscard]] int status() const noexcept { return status_; }

 private:
  int status_;
};

class Runtime {
 public:
  // Opens GPU `device_ordinal` with the cache at `cache_path` ("" = default location) and an
  // optional read-only shipped cache layered under it.
  explicit Runtime(int device_ordinal = 0, const std::string& cache_path = "",
                   const std::string& shipped_cache = "") {
    nsajit_options o;
    nsajit_default_options(&o);
    o.device_ordinal = device_ordinal;
    o.cache_path = cache_path.empty() ? nullptr : cache_path.c_str();
    o.shipped_cache_path = shipped_cache.empty() ? nullptr : shipped_cache.c_str();
    check(nsajit_create(&o, &ctx_));
  }
  ~Runtime() { nsajit_destroy(ctx_); }
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  void sparse_mla_fwd(const nsajit_sparse_mla_args& args, void* stream = nullptr) {
    check(nsajit_sparse_mla_fwd(ctx_, &args, stream));
  }
  void topk_select(const nsajit_topk_args& args, void* stream = nullptr) {
    check(nsajit_topk_select(ctx_, &args, stream));
  }
  [[nodiscard]] long long compile_count() const { return nsajit_compile_count(ctx_); }
  [[nodiscard]] nsajit_context* handle() const noexcept { return ctx_; }

 private:
  static void check(int status) {
    if (status != NSAJIT_OK) throw api_error(status, nsajit_last_error());
  }
  nsajit_context* ctx_ = nullptr;
};

}  // namespace nsajit
