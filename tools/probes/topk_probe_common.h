// Shared by the topk probes (nvcc): a CUDA call checked (the process exits on an error), the
// device as the library's planner sees it, CUDA-graph timing, and whether each row's output is
// the row's top k as a set (random N(0, 1) scores: no ties), checked on the CPU.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "runtime/backend.hpp"

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

// Device 0 as the library's planner sees it (an sm_90a target).
inline nsajit::DeviceInfo probe_device_info(const char* name) {
  int sms = 0, optin = 0;
  CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0));
  nsajit::DeviceInfo device;
  device.name = name;
  device.arch = "sm_90a";
  device.multiprocessors = sms;
  device.shared_memory_per_block_optin = static_cast<size_t>(optin);
  return device;
}

// Microseconds per call of enqueue(stream), timed like tools/bench_topk.py: the median of 9
// replays of a CUDA graph of 20 calls (no host launch overhead in the number).
template <class Enqueue>
float graph_us(Enqueue&& enqueue) {
  cudaStream_t s;
  CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  cudaGraph_t g;
  cudaGraphExec_t ge;
  CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  for (int i = 0; i < 20; ++i) enqueue(s);
  CHECK(cudaStreamEndCapture(s, &g));
  CHECK(cudaGraphInstantiate(&ge, g, 0));
  CHECK(cudaGraphLaunch(ge, s));
  CHECK(cudaStreamSynchronize(s));
  cudaEvent_t a, b;
  CHECK(cudaEventCreate(&a));
  CHECK(cudaEventCreate(&b));
  std::vector<float> t;
  for (int r = 0; r < 9; ++r) {
    CHECK(cudaEventRecord(a, s));
    CHECK(cudaGraphLaunch(ge, s));
    CHECK(cudaEventRecord(b, s));
    CHECK(cudaEventSynchronize(b));
    float ms = 0;
    CHECK(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms * 1000.f / 20);
  }
  std::sort(t.begin(), t.end());
  CHECK(cudaEventDestroy(a));
  CHECK(cudaEventDestroy(b));
  CHECK(cudaGraphExecDestroy(ge));
  CHECK(cudaGraphDestroy(g));
  CHECK(cudaStreamDestroy(s));
  return t[4];
}

// A [B, L] matrix of N(0, 1) scores, the same for the same shape in every probe.
inline std::vector<float> random_scores(int batch, int length) {
  std::vector<float> host(static_cast<std::size_t>(batch) * length);
  std::mt19937 rng(1234 + batch + length);
  std::normal_distribution<float> nd;
  for (auto& v : host) v = nd(rng);
  return host;
}
