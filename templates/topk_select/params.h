/* Kernel parameters of the topk_select family: one plain C struct, passed by value as the
 * kernel's only argument, included both by the device template and by the host launcher
 * (runtime/topk_select_launch.cpp), so the two layouts cannot drift apart. Only built-in
 * types: NVRTC / hipRTC compile it without any system header.
 *
 * Ordering contract (DESIGN.md section 2), implemented on the device by nsa_topk::order_key
 * and on the host by tests/reference/topk_reference.cpp:
 *   - larger score first; -0.0 and +0.0 are equal; -inf is an ordinary (smallest) number;
 *   - NaN (any sign or payload) ranks below -inf: it is selected only when a row has fewer
 *     than k non-NaN valid entries, after every number; NaNs among themselves tie;
 *   - ties go to the lower position;
 *   - rows with fewer than k valid entries fill the tail with -1.
 */
#ifndef NSAJIT_TOPK_SELECT_PARAMS_H
#define NSAJIT_TOPK_SELECT_PARAMS_H

/* Positions are carried in NSA_TOPK_POS_BITS bits: L <= 2^18 = 262144. */
#define NSA_TOPK_POS_BITS 18
#define NSA_TOPK_MAX_LENGTH (1 << NSA_TOPK_POS_BITS)
#define NSA_TOPK_MAX_K 4096
/* Threshold variants (a = 2, topk_select/threshold.cuh): block state at the end of the dynamic
 * shared memory, after the buffer and the histogram. */
#define NSA_TOPK_THRESHOLD_STATE_BYTES 512
/* Cluster variants (a = 3, topk_select/cluster.cuh): after that state, the row histogram
 * (1 << r words) and this many bytes of counters, which the cluster's blocks add into in rank 0. */
#define NSA_TOPK_CLUSTER_COUNTER_BYTES 16

struct nsa_topk_params {
  const float* scores;                 /* [batch, score_row_stride], device */
  const int* lengths;                  /* [batch] valid prefix per row, or null (= length) */
  int* indices;                        /* [batch, out_row_stride] output positions */
  unsigned long long* slice_workspace; /* [batch * splits * k] per-block candidates (splits > 1);
                                          threshold variants: [batch][cand_capacity] */
  unsigned int* row_counters;          /* [batch] zero at rest; the last block resets its row;
                                          threshold variants: [batch][4] */
  unsigned int* row_histograms;        /* stream and threshold variants, splits > 1: [batch][1 << r]
                                          zero at rest */
  long long score_row_stride;          /* elements */
  long long out_row_stride;            /* elements */
  int batch;
  int length; /* L */
  int k;
  int sorted;          /* 1: descending score, ties by ascending position */
  int splits;          /* blocks per row; 1 = one block selects the whole row */
  int slice;           /* elements of a row each split block covers (splits > 1) */
  int sel_capacity;    /* power of two >= k: the selected-set buffer in shared memory */
  int cand_capacity;   /* entries of the shared candidate buffer (threshold-bucket spill);
                          threshold variants: entries of each row's global candidate list */
  int buffer_capacity; /* stream variants: entries of the shared buffer (histogram after it) */
  int sample;          /* threshold variants: elements of the row (evenly spaced) that set the
                          filter's starting tau before the row streams in; 0: tau starts at 0 */
};

#endif /* NSAJIT_TOPK_SELECT_PARAMS_H */
