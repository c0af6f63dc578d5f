/* nsa-jit C ABI: the stable surface for servers and the Python package (ctypes).
 *
 * Every function returns NSAJIT_OK (0) or an error code; the message of the last error on
 * the calling thread is in nsajit_last_error(). A call that returns an error launched nothing.
 * Tensors are pointer + shape + strides in elements. Calls are asynchronous on `stream`
 * (CUstream / hipStream_t; NULL = default stream), allocate nothing and never synchronise,
 * so they can be captured in a CUDA/HIP graph once the cache is warm.
 */
#ifndef NSAJIT_NSAJIT_H
#define NSAJIT_NSAJIT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NSAJIT_ABI_VERSION 1

enum nsajit_status {
  NSAJIT_OK = 0,
  NSAJIT_ERROR_INVALID_ARGUMENT = 1,
  NSAJIT_ERROR_UNAVAILABLE = 2,
  NSAJIT_ERROR_COMPILE_FAILED = 3,
  NSAJIT_ERROR_DEVICE = 4,
  NSAJIT_ERROR_CACHE = 5,
  NSAJIT_ERROR_NOT_FOUND = 6,
  NSAJIT_ERROR_INTERNAL = 7
};

enum nsajit_dtype { NSAJIT_DTYPE_BF16 = 0, NSAJIT_DTYPE_FP32 = 1, NSAJIT_DTYPE_INT32 = 2 };

#define NSAJIT_MAX_DIMS 4

typedef struct nsajit_tensor {
  void* data;    /* device pointer; NULL only for an absent optional input */
  int32_t dtype; /* enum nsajit_dtype */
  int32_t ndim;
  int64_t shape[NSAJIT_MAX_DIMS];
  int64_t strides[NSAJIT_MAX_DIMS]; /* in elements */
} nsajit_tensor;

typedef struct nsajit_context nsajit_context;

typedef struct nsajit_options {
  int32_t abi_version;            /* NSAJIT_ABI_VERSION */
  int32_t device_ordinal;         /* GPU ordinal of the backend */
  const char* backend;            /* "cuda", "hip" or NULL = first that has a GPU */
  const char* cache_path;         /* NULL = $NSA_JIT_CACHE, else $XDG_CACHE_HOME/nsa-jit/cache.sqlite */
  const char* shipped_cache_path; /* optional read-only cache layered under the writable one */
  int32_t verbose;                /* 1: say once when a default or nearest rule is used (stderr) */
} nsajit_options;

/* Fills *options with the defaults. */
void nsajit_default_options(nsajit_options* options);

int nsajit_create(const nsajit_options* options, nsajit_context** out);
void nsajit_destroy(nsajit_context* context);

/* Message of the last failed call on this thread ("" when none). */
const char* nsajit_last_error(void);
const char* nsajit_version(void);

/* Bit flags for nsajit_sparse_mla_args.flags */
#define NSAJIT_LSE_NATURAL_LOG 1u /* lse/max_logits in natural log; empty rows give lse = +inf */

typedef struct nsajit_sparse_mla_args {
  nsajit_tensor q;           /* [s_q, h_q, d_qk] or [b, s_q, h_q, d_qk], bf16 */
  nsajit_tensor kv;          /* [s_kv, 1, d_qk] (or [s_kv, d_qk]), bf16, row stride honoured */
  nsajit_tensor indices;     /* [s_q, 1, topk] (or [b, s_q, 1, topk] / [s_q, topk]), int32 */
  nsajit_tensor topk_length; /* optional [s_q] int32 (data NULL = absent) */
  nsajit_tensor attn_sink;   /* optional [h_q] fp32 (data NULL = absent) */
  nsajit_tensor out;         /* [.., s_q, h_q, d_v] bf16 */
  nsajit_tensor max_logits;  /* [.., s_q, h_q] fp32 */
  nsajit_tensor lse;         /* [.., s_q, h_q] fp32 */
  float sm_scale;
  int32_t d_v; /* must be 512 */
  uint32_t flags;
} nsajit_sparse_mla_args;

int nsajit_sparse_mla_fwd(nsajit_context* context, const nsajit_sparse_mla_args* args, void* stream);

typedef struct nsajit_topk_args {
  nsajit_tensor scores;  /* [B, L] fp32, row stride honoured */
  nsajit_tensor lengths; /* optional [B] int32 (data NULL = every row has L valid entries) */
  nsajit_tensor indices; /* [B, k] int32 output */
  int32_t k;
  int32_t sorted; /* 1: descending score, ties by lower position */
} nsajit_topk_args;

int nsajit_topk_select(nsajit_context* context, const nsajit_topk_args* args, void* stream);

/* Number of kernels compiled by this context since it was created (0 on a warm cache). */
int64_t nsajit_compile_count(const nsajit_context* context);

#ifdef __cplusplus
}
#endif

#endif /* NSAJIT_NSAJIT_H */
