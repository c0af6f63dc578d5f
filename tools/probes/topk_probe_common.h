// Shared by the topk probes (nvcc): a CUDA call checked (the process exits on an error), and
// whether each row's output is the row's top k as a set (random N(0, 1) scores: no ties),
// checked on the CPU.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <vector>

#define CHECK(x)                                                                              \
  do {                                                                                        \
    cudaError_t e_ = (x);                                                                     \
    if (e_ != cudaSuccess) {                                                                  \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
      std::exit(1);                                                                           \
    }                                                                                         \
  } while (0)

inline bool topk_rows_match(const std::vector<float>& scores, const std::vector<int>& got, int batch,
                            int length, int k) {
  for (int r = 0; r < batch; ++r) {
    std::vector<int> idx(length);
    for (int i = 0; i < length; ++i) idx[i] = i;
    const float* row = scores.data() + static_cast<std::size_t>(r) * length;
    std::nth_element(idx.begin(), idx.begin() + (k - 1), idx.end(),
                     [&](int a, int b) { return row[a] > row[b]; });
    std::vector<int> want(idx.begin(), idx.begin() + k);
    std::vector<int> have(got.begin() + static_cast<std::ptrdiff_t>(r) * k,
                          got.begin() + static_cast<std::ptrdiff_t>(r + 1) * k);
    std::sort(want.begin(), want.end());
    std::sort(have.begin(), have.end());
    if (want != have) return false;
  }
  return true;
}
