// Where does a topk_select threshold launch spend its time? Instantiates the real template
// (templates/topk_select/threshold.cuh) with its trace hooks on, launches it the way
// the library's planner (runtime/topk_select_launch.cpp) plans it (or with forced splits), and
// prints per-phase times
// (thread 0 of each block, %globaltimer), time per launch (events, back-to-back launches), an
// empty kernel of the same geometry, and a read-only pass over the same scores.
//   nvcc -O3 -std=c++20 -arch=sm_90a -I templates -I . -o /tmp/topk_probe tools/probes/topk_phase_probe.cu \
//     -L build-dev -lnsajit -Xlinker -rpath=$PWD/build-dev
//   /tmp/topk_probe [k] [all | one B L]  (the issue-5 table with the planner's splits)
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

constexpr int kMaxBlocks = 4096;
constexpr int kPoints = 8;
__device__ unsigned long long g_point[kMaxBlocks][kPoints];
constexpr int kSpans = 6;  // 0 shrink, 1 key_range, 2 histogram, 3 narrow, 4 compact, 5 sample
__device__ unsigned long long g_span_start[kMaxBlocks][kSpans];
__device__ unsigned long long g_span_ns[kMaxBlocks][kSpans];
__device__ unsigned g_span_count[kMaxBlocks][kSpans];

__device__ __forceinline__ unsigned long long probe_now() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}
#ifndef PROBE_NO_TRACE  // the hooks cost thread 0 global round trips: compare launches without them
#define NSA_TOPK_TRACE(point) \
  if (threadIdx.x == 0) g_point[blockIdx.x][point] = probe_now();
#define NSA_TOPK_SPAN_BEGIN(span) \
  if (threadIdx.x == 0) g_span_start[blockIdx.x][span] = probe_now();
#define NSA_TOPK_SPAN_END(span)                                                  \
  if (threadIdx.x == 0) {                                                        \
    g_span_ns[blockIdx.x][span] += probe_now() - g_span_start[blockIdx.x][span]; \
    g_span_count[blockIdx.x][span] += 1;                                         \
  }
#endif

#include "runtime/topk_select_launch.hpp"
#include "tools/probes/topk_probe_common.h"
#include "topk_select/threshold.cuh"

template <int T, int I>
__global__ void __launch_bounds__(T) threshold_kernel(nsa_topk_params p) {
  nsa_topk::topk_threshold_select<T, I, 11, 32>(p);
}
template <int T>
__global__ void __launch_bounds__(T) empty_kernel(nsa_topk_params p) {
  extern __shared__ unsigned long long smem[];
  if (threadIdx.x == 0 && p.k < 0) smem[0] = 1;
}
__global__ void read_kernel(const float4* x, long long n4, float* sink) {
  float acc = 0.f;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n4;
       i += (long long)gridDim.x * blockDim.x) {
    const float4 v = x[i];
    acc += v.x + v.y + v.z + v.w;
  }
  if (acc == 12345.f) *sink = acc;
}

struct Config {
  int batch, length, k, splits;  // splits 0: the planner's rule
  int sample;                    // -1: the planner's choice
};

template <int T, int I>
struct Runner {
  static float time_launches(void (*kern)(nsa_topk_params), nsa_topk_params p, int grid, size_t smem,
                             int reps) {
    cudaEvent_t a, b;
    CHECK(cudaEventCreate(&a));
    CHECK(cudaEventCreate(&b));
    for (int i = 0; i < 3; ++i) kern<<<grid, T, smem>>>(p);
    CHECK(cudaEventRecord(a));
    for (int i = 0; i < reps; ++i) kern<<<grid, T, smem>>>(p);
    CHECK(cudaEventRecord(b));
    CHECK(cudaEventSynchronize(b));
    float ms = 0;
    CHECK(cudaEventElapsedTime(&ms, a, b));
    return ms * 1000.f / reps;
  }

  static void run(const Config& c, const nsajit::DeviceInfo& device) {
    const int sms = device.multiprocessors;
    const int B = c.batch, L = c.length, k = c.k;
    const std::vector<float> host = random_scores(B, L);
    float *scores, *sink;
    int* out;
    unsigned char* ws;
    CHECK(cudaMalloc(&scores, host.size() * 4));
    CHECK(cudaMalloc(&out, (size_t)B * k * 4));
    CHECK(cudaMalloc(&sink, 4));
    CHECK(cudaMemcpy(scores, host.data(), host.size() * 4, cudaMemcpyHostToDevice));
    // The library's own planner (runtime/topk_select_launch.cpp) gives the shared memory, the
    // splits and the workspace layout; a forced split count replaces its choice.
    const nsajit::Variant variant = nsajit::variant_from_name("nsa_topk_sm90a_t" + std::to_string(T) + "_i" +
                                                              std::to_string(I) + "_r11_s16_a2");
    const size_t ws_bytes = nsajit::topk_select_workspace_bytes(variant, device);
    CHECK(cudaMalloc(&ws, ws_bytes));
    CHECK(cudaMemset(ws, 0, ws_bytes));
    const nsajit::TopkSelectProblem problem = nsajit::contiguous_topk_problem(scores, B, L, out, k);
    const nsajit::TopkSelectLaunch launch = nsajit::plan_topk_select(variant, device, problem, ws, ws_bytes);
    nsa_topk_params p = launch.params;
    if (c.splits != 0) {
      p.splits = c.splits;
      p.slice = ((L + c.splits - 1) / c.splits + 3) / 4 * 4;
    }
    if (c.sample >= 0) p.sample = c.sample;
    const int splits = p.splits;
    const size_t smem = launch.dynamic_shared_bytes;
    auto kern = threshold_kernel<T, I>;
    CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    CHECK(cudaFuncSetAttribute(empty_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    const int grid = B * splits;
    CHECK(cudaMemset(out, 0xff, (size_t)B * k * 4));
    kern<<<grid, T, smem>>>(p);
    CHECK(cudaDeviceSynchronize());
    // Check against the CPU: the top k positions of each row as a set (random floats: no ties).
    std::vector<int> got((size_t)B * k);
    CHECK(cudaMemcpy(got.data(), out, got.size() * 4, cudaMemcpyDeviceToHost));
    const bool ok = topk_rows_match(host, got, B, L, k);
    // One traced launch.
    std::vector<unsigned long long> zero(kMaxBlocks * kPoints, 0);
    std::vector<unsigned> zc(kMaxBlocks, 0);
    CHECK(cudaMemcpyToSymbol(g_point, zero.data(), zero.size() * 8));
    std::vector<unsigned long long> zs(kMaxBlocks * kSpans, 0);
    std::vector<unsigned> zsc(kMaxBlocks * kSpans, 0);
    CHECK(cudaMemcpyToSymbol(g_span_ns, zs.data(), zs.size() * 8));
    CHECK(cudaMemcpyToSymbol(g_span_count, zsc.data(), zsc.size() * 4));
    kern<<<grid, T, smem>>>(p);
    CHECK(cudaDeviceSynchronize());
    std::vector<unsigned long long> pt(kMaxBlocks * kPoints), sn(kMaxBlocks * kSpans);
    std::vector<unsigned> sc(kMaxBlocks * kSpans);
    CHECK(cudaMemcpyFromSymbol(pt.data(), g_point, pt.size() * 8));
    CHECK(cudaMemcpyFromSymbol(sn.data(), g_span_ns, sn.size() * 8));
    CHECK(cudaMemcpyFromSymbol(sc.data(), g_span_count, sc.size() * 4));
    unsigned long long t_first = ~0ull, t_last = 0;
    double ph[kPoints] = {0};
    int nph[kPoints] = {0};
    double span_ns[kSpans] = {0}, span_n[kSpans] = {0};
    for (int b = 0; b < grid; ++b) {
      const unsigned long long* q = &pt[(size_t)b * kPoints];
      t_first = std::min(t_first, q[0]);
      for (int i = 1; i < kPoints; ++i) {
        if (q[i] != 0) t_last = std::max(t_last, q[i]);
        // phase i: from the last earlier point that was recorded
        int j = i - 1;
        while (j > 0 && q[j] == 0) --j;
        if (q[i] != 0 && q[j] != 0) {
          ph[i] += (double)(q[i] - q[j]);
          nph[i]++;
        }
      }
      for (int q2 = 0; q2 < kSpans; ++q2) {
        span_ns[q2] += (double)sn[(size_t)b * kSpans + q2];
        span_n[q2] += sc[(size_t)b * kSpans + q2];
      }
    }
    const float launch_us = time_launches(kern, p, grid, smem, 50);
    const float empty_us = time_launches(empty_kernel<T>, p, grid, smem, 50);
    cudaEvent_t a, b2;
    CHECK(cudaEventCreate(&a));
    CHECK(cudaEventCreate(&b2));
    read_kernel<<<sms * 4, 512>>>((const float4*)scores, (long long)B * L / 4, sink);
    CHECK(cudaEventRecord(a));
    for (int i = 0; i < 20; ++i)
      read_kernel<<<sms * 4, 512>>>((const float4*)scores, (long long)B * L / 4, sink);
    CHECK(cudaEventRecord(b2));
    CHECK(cudaEventSynchronize(b2));
    float read_ms;
    CHECK(cudaEventElapsedTime(&read_ms, a, b2));
    std::printf(
        "T%-4d I%d B%-4d L%-7d s%-3d sample %-5d %s launch %7.2f us  empty %5.2f  read %6.2f  span %6.2f | ",
        T, I, B, L, splits, p.sample, ok ? "ok " : "BAD", launch_us, empty_us, read_ms * 1000.f / 20,
        (t_last - t_first) / 1e3);
    const char* names[kPoints] = {"", "stream", "fin/hist", "wait", "narrow", "emit", "select", "write"};
    for (int i = 1; i < kPoints; ++i)
      if (nph[i]) std::printf("%s %.2f(%d) ", names[i], ph[i] / nph[i] / 1e3, nph[i]);
    const char* span_names[kSpans] = {"shrink", "keyrange", "hist", "narrow", "compact", "sample"};
    std::printf("| per block:");
    for (int q2 = 0; q2 < kSpans; ++q2)
      std::printf(" %s %.1fx %.2f", span_names[q2], span_n[q2] / grid, span_ns[q2] / grid / 1e3);
    std::printf("\n");
    cudaFree(scores);
    cudaFree(out);
    cudaFree(ws);
    cudaFree(sink);
  }
};

// A comma-separated list of ints from the environment, or {fallback}.
std::vector<int> env_list(const char* name, int fallback) {
  std::vector<int> values;
  if (const char* list = std::getenv(name))
    for (std::string s = list; !s.empty();) {
      const size_t comma = s.find(',');
      values.push_back(std::atoi(s.substr(0, comma).c_str()));
      s = comma == std::string::npos ? "" : s.substr(comma + 1);
    }
  if (values.empty()) values.push_back(fallback);
  return values;
}

int main(int argc, char** argv) {
  int dev = 0, sms = 0, optin = 0;
  CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  cudaDeviceProp prop;
  CHECK(cudaGetDeviceProperties(&prop, dev));
  std::printf("%s, %d SMs, %d B shared per block\n", prop.name, sms, optin);
  const nsajit::DeviceInfo device = probe_device_info(prop.name);
  const int k = argc > 1 ? std::atoi(argv[1]) : 2048;
  // PROBE_SAMPLE=a,b,...: each configuration once per sample size (-1: the planner's).
  // PROBE_SPLITS=a,b,...: ... and per forced split count (0: the planner's).
  // PROBE_SHAPES=BxL,...: only these shapes (default: every B >= 16 of the issue-5 table).
  const std::vector<int> samples = env_list("PROBE_SAMPLE", -1);
  const std::vector<int> split_counts = env_list("PROBE_SPLITS", 0);
  const char* shapes = std::getenv("PROBE_SHAPES");
  std::vector<Config> table;
  for (int B : {1, 16, 64, 128})
    for (int L : {8192, 32768, 131072})
      for (int splits : split_counts)
        for (int sample : samples) table.push_back({B, L, k, splits, sample});
  if (argc > 4 && std::string(argv[2]) == "one") {  // one config, for ncu: k one B L
    Runner<1024, 2>::run({std::atoi(argv[3]), std::atoi(argv[4]), k, 0, samples[0]}, device);
    return 0;
  }
  const bool all = argc > 2 && std::string(argv[2]) == "all";
  for (const Config& c : table)
    if (shapes == nullptr ? c.batch >= 16
                          : ("," + std::string(shapes) + ",")
                                    .find("," + std::to_string(c.batch) + "x" + std::to_string(c.length) +
                                          ",") != std::string::npos)
      Runner<1024, 2>::run(c, device);
  if (all) {
    std::printf("-- one block per row, t1024 i2\n");
    for (Config c : table) {
      c.splits = 1;
      Runner<1024, 2>::run(c, device);
    }
    std::printf("-- t1024 i4\n");
    for (const Config& c : table) Runner<1024, 4>::run(c, device);
  }
  return 0;
}
