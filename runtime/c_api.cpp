// The C ABI: every entry point catches everything, maps it to a status code and keeps the
// message for nsajit_last_error() on the calling thread. Nothing escapes as an exception.
#include <new>
#include <string>

#include "nsajit/nsajit.h"
#include "runtime/dispatcher.hpp"
#include "runtime/error.hpp"

#ifndef NSAJIT_VERSION_STRING
#define NSAJIT_VERSION_STRING "0.0.0"
#endif

struct nsajit_context {
  std::unique_ptr<nsajit::Dispatcher> dispatcher;
};

namespace {

thread_local std::string g_last_error;

int status_of(nsajit::ErrorCode code) {
  return static_cast<int>(code);
}

template <class F>
int guarded(F&& f) noexcept {
  try {
    g_last_error.clear();
    f();
    return NSAJIT_OK;
  } catch (const nsajit::Error& e) {
    g_last_error = e.what();
    return status_of(e.code());
  } catch (const std::bad_alloc&) {
    g_last_error = "out of host memory";
    return NSAJIT_ERROR_INTERNAL;
  } catch (const std::exception& e) {
    g_last_error = std::string("internal error: ") + e.what();
    return NSAJIT_ERROR_INTERNAL;
  } catch (...) {
    g_last_error = "internal error: unknown exception";
    return NSAJIT_ERROR_INTERNAL;
  }
}

[[noreturn]] void null_argument(const char* what, const char* name) {
  nsajit::fail(nsajit::ErrorCode::invalid_argument, what, "nsajit C ABI", std::string(name) + " is null");
}

}  // namespace

extern "C" {

void nsajit_default_options(nsajit_options* options) {
  if (options == nullptr) return;
  *options = nsajit_options{};
  options->abi_version = NSAJIT_ABI_VERSION;
  options->verbose = 1;
}

int nsajit_create(const nsajit_options* options, nsajit_context** out) {
  return guarded([&] {
    if (out == nullptr) null_argument("nsajit_create", "out");
    *out = nullptr;
    nsajit_options o;
    nsajit_default_options(&o);
    if (options != nullptr) o = *options;
    if (o.abi_version != NSAJIT_ABI_VERSION)
      nsajit::fail(nsajit::ErrorCode::invalid_argument, "nsajit_create", "nsajit C ABI",
                   "options.abi_version " + std::to_string(o.abi_version) +
                       " != " + std::to_string(NSAJIT_ABI_VERSION) + " (call nsajit_default_options first)");
    nsajit::DispatcherOptions d;
    d.device_ordinal = o.device_ordinal;
    d.backend = o.backend != nullptr ? o.backend : "";
    d.cache_path = o.cache_path != nullptr ? o.cache_path : "";
    d.shipped_cache_path = o.shipped_cache_path != nullptr ? o.shipped_cache_path : "";
    d.verbose = o.verbose != 0;
    auto ctx = std::make_unique<nsajit_context>();
    ctx->dispatcher = std::make_unique<nsajit::Dispatcher>(d);
    *out = ctx.release();
  });
}

void nsajit_destroy(nsajit_context* context) {
  std::unique_ptr<nsajit_context> owned(context);
}

const char* nsajit_last_error(void) {
  return g_last_error.c_str();
}

const char* nsajit_version(void) {
  return NSAJIT_VERSION_STRING;
}

int nsajit_sparse_mla_fwd(nsajit_context* context, const nsajit_sparse_mla_args* args, void* stream) {
  return guarded([&] {
    if (context == nullptr) null_argument("nsajit_sparse_mla_fwd", "context");
    if (args == nullptr) null_argument("nsajit_sparse_mla_fwd", "args");
    context->dispatcher->sparse_mla_fwd(*args, stream);
  });
}

int nsajit_topk_select(nsajit_context* context, const nsajit_topk_args* args, void* stream) {
  return guarded([&] {
    if (context == nullptr) null_argument("nsajit_topk_select", "context");
    if (args == nullptr) null_argument("nsajit_topk_select", "args");
    context->dispatcher->topk_select(*args, stream);
  });
}

int64_t nsajit_compile_count(const nsajit_context* context) {
  return context == nullptr ? -1 : context->dispatcher->compile_count();
}

}  // extern "C"
