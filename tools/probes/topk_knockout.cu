// Where a topk_select launch spends its time, without trace hooks: built with -DPROBE_STOP=n the
// kernel returns at its trace point n (NSA_TOPK_TRACE; 0 at its start, 1 after the stream, 2
// after the block histogram and the first cluster barrier, 3 after summing the cluster's
// histograms, 4 after the narrow (3 and 4 with one more cluster barrier), 5 after the emits and
// the second cluster barrier, 6 after rank 0's select; default 99: the whole kernel). Times the cluster
// variant (a 3: no global state, so a kernel cut short leaves nothing behind for the next launch) and, whole
// only, the threshold variant (a 2) and an empty kernel of the same geometry; then empty kernels at several
// dynamic shared-memory sizes. CUDA-graph timed like tools/bench_topk.py: the median of 9 replays of a graph
// of 20 launches. Plans through the library (links the carried build).
//   nvcc -O3 -std=c++20 -arch=sm_90a -DPROBE_STOP=2 -I templates -I . -o /tmp/knock2 \
//     tools/probes/topk_knockout.cu -L build-dev -lnsajit -Xlinker -rpath=$PWD/build-dev
//   [PROBE_SAMPLE=n] /tmp/knock2 [BxL,...]   (n: the sample size instead of the planner's)
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#ifndef PROBE_STOP
#define PROBE_STOP 99
#endif
// Points 3 and 4 come after the cluster kernel's reads of the other blocks' shared memory and
// before its second cluster barrier: a block may leave there only after a cluster barrier.
#if PROBE_STOP == 3 || PROBE_STOP == 4
#define NSA_TOPK_TRACE(point)  \
  if ((point) == PROBE_STOP) { \
    NSA_CLUSTER_SYNC();        \
    return;                    \
  }
#else
#define NSA_TOPK_TRACE(point) \
  if ((point) == PROBE_STOP) return;
#endif
#define NSA_TOPK_SPAN_BEGIN(span)
#define NSA_TOPK_SPAN_END(span)

#include "runtime/topk_select_launch.hpp"
#include "tools/probes/topk_probe_common.h"
#include "topk_select/cluster.cuh"

__global__ void __launch_bounds__(1024) cluster_kernel(nsa_topk_params p) {
  nsa_topk::topk_cluster_select<1024, 2, 11, 32>(p);
}
__global__ void __launch_bounds__(1024) threshold_kernel(nsa_topk_params p) {
  nsa_topk::topk_threshold_select<1024, 2, 11, 32>(p);
}
__global__ void __launch_bounds__(1024) empty_kernel(nsa_topk_params p) {
  extern __shared__ unsigned long long smem[];
  if (threadIdx.x == 0 && p.k < 0) smem[0] = 1;
}

using Kernel = void (*)(nsa_topk_params);

void launch(Kernel kern, const nsajit::TopkSelectLaunch& l, cudaStream_t stream) {
  cudaLaunchConfig_t cfg = {};
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim.x = l.cluster;
  attr[0].val.clusterDim.y = 1;
  attr[0].val.clusterDim.z = 1;
  cfg.gridDim = dim3(l.grid.x);
  cfg.blockDim = dim3(l.block.x);
  cfg.dynamicSmemBytes = l.dynamic_shared_bytes;
  cfg.stream = stream;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  CHECK(cudaLaunchKernelEx(&cfg, kern, l.params));
}

// Median over 9 replays of a graph of 20 launches, per launch, in microseconds.
float graph_us(Kernel kern, const nsajit::TopkSelectLaunch& l) {
  return graph_us([&](cudaStream_t s) { launch(kern, l, s); });
}

int main(int argc, char** argv) {
  const nsajit::DeviceInfo device = probe_device_info("probe");
  const int sms = device.multiprocessors;
  const int optin = static_cast<int>(device.shared_memory_per_block_optin);
  const int k = 2048;
  const std::string shapes = argc > 1 ? argv[1] : "16x32768,16x131072,64x32768,64x131072,128x131072,1x32768";
  for (Kernel kern : {cluster_kernel, threshold_kernel, empty_kernel})
    CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, optin - 1024));
  const nsajit::Variant a3 = nsajit::variant_from_name("nsa_topk_sm90a_t1024_i2_r11_s8_a3");
  const nsajit::Variant a2 = nsajit::variant_from_name("nsa_topk_sm90a_t1024_i2_r11_s16_a2");
  nsajit::TopkClusterFit fit;
  for (int c = 2; c <= 8; ++c) {
    cudaLaunchConfig_t cfg = {};
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeClusterDimension;
    attr[0].val.clusterDim = {static_cast<unsigned>(c), 1, 1};
    cfg.gridDim = dim3(c);
    cfg.blockDim = dim3(1024);
    cfg.dynamicSmemBytes = nsajit::topk_select_dynamic_shared_bytes(a3, device);
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    CHECK(cudaOccupancyMaxActiveClusters(&fit.clusters[c], cluster_kernel, &cfg));
  }
  std::printf("stop at %d; clusters at once for 2..8 blocks:", PROBE_STOP);
  for (int c = 2; c <= 8; ++c) std::printf(" %d", fit.clusters[c]);
  std::printf("\n");
  for (size_t at = 0; at < shapes.size();) {
    const size_t comma = std::min(shapes.find(',', at), shapes.size());
    const std::string shape = shapes.substr(at, comma - at);
    at = comma + 1;
    const int B = std::atoi(shape.c_str()), L = std::atoi(shape.c_str() + shape.find('x') + 1);
    const std::vector<float> host = random_scores(B, L);
    float* scores;
    int* out;
    unsigned char* ws;
    CHECK(cudaMalloc(&scores, host.size() * 4));
    CHECK(cudaMalloc(&out, (size_t)B * k * 4));
    CHECK(cudaMemcpy(scores, host.data(), host.size() * 4, cudaMemcpyHostToDevice));
    const size_t ws_bytes = std::max(nsajit::topk_select_workspace_bytes(a3, device),
                                     nsajit::topk_select_workspace_bytes(a2, device));
    CHECK(cudaMalloc(&ws, ws_bytes));
    CHECK(cudaMemset(ws, 0, ws_bytes));
    const nsajit::TopkSelectProblem problem = nsajit::contiguous_topk_problem(scores, B, L, out, k);
    auto l3 = nsajit::plan_topk_select(a3, device, problem, ws, ws_bytes, fit);
    auto l2 = nsajit::plan_topk_select(a2, device, problem, ws, ws_bytes);
    if (const char* sample = std::getenv("PROBE_SAMPLE")) {  // the planner's sample size replaced
      l3.params.sample = std::atoi(sample);
      l2.params.sample = std::atoi(sample);
    }
    std::printf("B %3d L %6d sample %4d | a3 s%d c%d", B, L, l3.params.sample, l3.params.splits, l3.cluster);
    bool ok = true;
    if (PROBE_STOP == 99) {
      for (const auto* l : {&l3, &l2}) {
        CHECK(cudaMemset(out, 0xff, (size_t)B * k * 4));
        launch(l == &l3 ? cluster_kernel : threshold_kernel, *l, 0);
        CHECK(cudaDeviceSynchronize());
        std::vector<int> got((size_t)B * k);
        CHECK(cudaMemcpy(got.data(), out, got.size() * 4, cudaMemcpyDeviceToHost));
        ok = ok && topk_rows_match(host, got, B, L, k);
      }
    }
    std::printf(" %7.2f us, empty %5.2f", graph_us(cluster_kernel, l3), graph_us(empty_kernel, l3));
    if (PROBE_STOP == 99)
      std::printf(" | a2 s%d %7.2f us, empty %5.2f | %s", l2.params.splits, graph_us(threshold_kernel, l2),
                  graph_us(empty_kernel, l2), ok ? "exact" : "WRONG");
    std::printf("\n");
    CHECK(cudaFree(scores));
    CHECK(cudaFree(out));
    CHECK(cudaFree(ws));
  }
  if (PROBE_STOP == 99) {  // does the launch floor depend on the dynamic shared memory?
    nsajit::TopkSelectLaunch l;
    l.grid = nsajit::Dim3{128, 1, 1};
    l.block = nsajit::Dim3{1024, 1, 1};
    l.params.k = 1;
    std::printf("empty kernel, 128 blocks of 1024 threads:");
    for (int smem : {0, 48 * 1024, 100 * 1024, optin - 1024}) {
      l.dynamic_shared_bytes = static_cast<unsigned>(smem);
      std::printf("  %d B %.2f us", smem, graph_us(empty_kernel, l));
    }
    l.block.x = 256;
    l.dynamic_shared_bytes = 0;
    std::printf("  | 256 threads 0 B %.2f us\n", graph_us(empty_kernel, l));
  }
  return 0;
}
