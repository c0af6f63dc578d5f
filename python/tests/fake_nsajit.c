/* A stand-in libnsajit.so for the CPU tests: it implements the C ABI of nsajit.h without a
 * GPU, records what the Python package passed, and fails on demand, so the ctypes path
 * (struct layout, pointers, strides, flags, stream, error messages) is tested end to end.
 * Built by conftest.py with the real header, so a header change that the Python mirrors
 * miss shows up as wrong recorded values. */
#include <stdlib.h>
#include <string.h>

#include "nsajit/nsajit.h"

struct nsajit_context {
  int device;
  int64_t compiles;
};

static char g_error[512];
static int g_next_status;          /* returned (once) by the next create / launch */
static char g_next_message[512];
static nsajit_sparse_mla_args g_sparse;
static nsajit_topk_args g_topk;
static void* g_stream;
static int g_sparse_calls, g_topk_calls, g_creates, g_destroys;
static nsajit_options g_options;
static char g_backend[256], g_cache[1024], g_shipped[1024];

static void copy_string(char* to, size_t size, const char* from, int* present) {
  *present = from != NULL;
  to[0] = '\0';
  if (from) {
    strncpy(to, from, size - 1);
    to[size - 1] = '\0';
  }
}

static int take_failure(void) {
  int status = g_next_status;
  if (status != NSAJIT_OK) {
    strncpy(g_error, g_next_message, sizeof g_error - 1);
    g_next_status = NSAJIT_OK;
  }
  return status;
}

void nsajit_default_options(nsajit_options* options) {
  memset(options, 0, sizeof *options);
  options->abi_version = NSAJIT_ABI_VERSION;
}

int nsajit_create(const nsajit_options* options, nsajit_context** out) {
  int status = take_failure();
  if (status != NSAJIT_OK) return status;
  if (options->abi_version != NSAJIT_ABI_VERSION) {
    strcpy(g_error, "fake: wrong abi_version");
    return NSAJIT_ERROR_INVALID_ARGUMENT;
  }
  g_options = *options;
  int present;
  copy_string(g_backend, sizeof g_backend, options->backend, &present);
  copy_string(g_cache, sizeof g_cache, options->cache_path, &present);
  copy_string(g_shipped, sizeof g_shipped, options->shipped_cache_path, &present);
  *out = calloc(1, sizeof(nsajit_context));
  (*out)->device = options->device_ordinal;
  ++g_creates;
  return NSAJIT_OK;
}

void nsajit_destroy(nsajit_context* context) {
  ++g_destroys;
  free(context);
}

const char* nsajit_last_error(void) { return g_error; }
const char* nsajit_version(void) { return "0.1.0-fake"; }

int nsajit_sparse_mla_fwd(nsajit_context* context, const nsajit_sparse_mla_args* args, void* stream) {
  int status = take_failure();
  if (status != NSAJIT_OK) return status;
  g_sparse = *args;
  g_stream = stream;
  ++g_sparse_calls;
  if (context->compiles == 0) context->compiles = 1; /* the first call "compiles" */
  return NSAJIT_OK;
}

int nsajit_topk_select(nsajit_context* context, const nsajit_topk_args* args, void* stream) {
  int status = take_failure();
  if (status != NSAJIT_OK) return status;
  g_topk = *args;
  g_stream = stream;
  ++g_topk_calls;
  context->compiles += 2;
  return NSAJIT_OK;
}

int64_t nsajit_compile_count(const nsajit_context* context) { return context->compiles; }

/* ---- test hooks (not part of the ABI) ---- */
void fake_fail_next(int status, const char* message) {
  g_next_status = status;
  strncpy(g_next_message, message, sizeof g_next_message - 1);
}
void fake_last_sparse(nsajit_sparse_mla_args* out) { *out = g_sparse; }
void fake_last_topk(nsajit_topk_args* out) { *out = g_topk; }
void* fake_last_stream(void) { return g_stream; }
int fake_sparse_calls(void) { return g_sparse_calls; }
int fake_topk_calls(void) { return g_topk_calls; }
int fake_creates(void) { return g_creates; }
int fake_destroys(void) { return g_destroys; }
int fake_last_device(void) { return g_options.device_ordinal; }
int fake_last_verbose(void) { return g_options.verbose; }
const char* fake_last_backend(void) { return g_options.backend ? g_backend : NULL; }
const char* fake_last_cache(void) { return g_options.cache_path ? g_cache : NULL; }
const char* fake_last_shipped(void) { return g_options.shipped_cache_path ? g_shipped : NULL; }
