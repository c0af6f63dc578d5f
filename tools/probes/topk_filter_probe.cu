// Where a filter-variant (a 4) topk_select launch spends its time: the kernel leaves at trace
// point `stop` (0 after its setup, 1 after the sample, 2 after the stream, 3 after the shrink
// (one-block rows that do not finish from their bins); 99 the whole kernel, checked against the
// CPU; stops 0-2 come before a split row touches the workspace), CUDA-graph timed like tools/bench_topk.py
// (the median of 9 replays of a graph of 20 launches, per launch). Plans through the library.
//   nvcc -O3 -std=c++20 -arch=sm_90a -I templates -I . -o /tmp/filter_probe \
//     tools/probes/topk_filter_probe.cu -L build-dev -lnsajit -Xlinker -rpath=$PWD/build-dev
//   [PROBE_SAMPLE=n] [PROBE_ONCE=1] /tmp/filter_probe [BxL,...]
// (n: the sample size instead of the planner's; PROBE_ONCE: one whole launch a shape, for ncu)
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

__device__ int probe_stop = 99;
// Every thread of the block reaches the same point: no barrier waits for an exited thread.
#define NSA_TOPK_TRACE(point) \
  if ((point) == probe_stop) asm volatile("exit;");
#define NSA_TOPK_SPAN_BEGIN(span)
#define NSA_TOPK_SPAN_END(span)

#include "runtime/topk_select_launch.hpp"
#include "tools/probes/topk_probe_common.h"
#include "topk_select/filter.cuh"

__global__ void __launch_bounds__(1024) filter_t1024_i4(nsa_topk_params p) {
  nsa_topk::topk_filter_select<1024, 4, 11, 32>(p);
}
__global__ void __launch_bounds__(1024) filter_t1024_i2(nsa_topk_params p) {
  nsa_topk::topk_filter_select<1024, 2, 11, 32>(p);
}
__global__ void __launch_bounds__(512) filter_t512_i4(nsa_topk_params p) {
  nsa_topk::topk_filter_select<512, 4, 11, 32>(p);
}
__global__ void __launch_bounds__(512) filter_t512_i8(nsa_topk_params p) {
  nsa_topk::topk_filter_select<512, 8, 11, 32>(p);
}

using Kernel = void (*)(nsa_topk_params);

void launch(Kernel kern, const nsajit::TopkSelectLaunch& l, cudaStream_t stream) {
  kern<<<l.grid.x, l.block.x, l.dynamic_shared_bytes, stream>>>(l.params);
  CHECK(cudaGetLastError());
}

float graph_us(Kernel kern, const nsajit::TopkSelectLaunch& l) {
  return graph_us([&](cudaStream_t s) { launch(kern, l, s); });
}

int main(int argc, char** argv) {
  const nsajit::DeviceInfo device = probe_device_info("probe");
  const int optin = static_cast<int>(device.shared_memory_per_block_optin);
  const int k = 2048;
  const std::string shapes =
      argc > 1 ? argv[1] : "16x8192,16x32768,16x131072,64x32768,64x131072,128x131072,1x131072";
  struct Probe {
    const char* name;
    Kernel kern;
  };
  const Probe probes[] = {{"nsa_topk_sm90a_t1024_i2_r11_s16_a4", filter_t1024_i2},
                          {"nsa_topk_sm90a_t1024_i4_r11_s16_a4", filter_t1024_i4},
                          {"nsa_topk_sm90a_t512_i4_r11_s16_a4", filter_t512_i4},
                          {"nsa_topk_sm90a_t512_i8_r11_s16_a4", filter_t512_i8}};
  for (const Probe& pr : probes)
    CHECK(cudaFuncSetAttribute(pr.kern, cudaFuncAttributeMaxDynamicSharedMemorySize, optin - 1024));
  const int stops[] = {0, 1, 2, 3, 99};
  const bool once = std::getenv("PROBE_ONCE") != nullptr;  // one whole launch a shape (for ncu)
  std::printf("us per launch, leaving at: setup | sample | stream | shrink | whole\n");
  for (size_t at = 0; at < shapes.size();) {
    const size_t comma = std::min(shapes.find(',', at), shapes.size());
    const std::string shape = shapes.substr(at, comma - at);
    at = comma + 1;
    const int B = std::atoi(shape.c_str()), L = std::atoi(shape.c_str() + shape.find('x') + 1);
    const std::vector<float> host = random_scores(B, L);
    float* scores;
    int* out;
    CHECK(cudaMalloc(&scores, host.size() * 4));
    CHECK(cudaMalloc(&out, (size_t)B * k * 4));
    CHECK(cudaMemcpy(scores, host.data(), host.size() * 4, cudaMemcpyHostToDevice));
    const nsajit::TopkSelectProblem problem = nsajit::contiguous_topk_problem(scores, B, L, out, k);
    for (const Probe& pr : probes) {
      const nsajit::Variant v = nsajit::variant_from_name(pr.name);
      const size_t ws_bytes = nsajit::topk_select_workspace_bytes(v, device);
      void* ws = nullptr;
      CHECK(cudaMalloc(&ws, ws_bytes));
      CHECK(cudaMemset(ws, 0, ws_bytes));
      auto l = nsajit::plan_topk_select(v, device, problem, ws, ws_bytes);
      if (const char* sample = std::getenv("PROBE_SAMPLE")) l.params.sample = std::atoi(sample);
      std::printf("B %3d L %6d %-34s s%-2d sample %4d |", B, L, pr.name, l.params.splits, l.params.sample);
      bool ok = true;
      if (once) {
        launch(pr.kern, l, 0);
        CHECK(cudaDeviceSynchronize());
        std::printf(" once\n");
        CHECK(cudaFree(ws));
        continue;
      }
      for (int stop : stops) {
        CHECK(cudaMemcpyToSymbol(probe_stop, &stop, sizeof stop));
        if (stop == 99) {
          CHECK(cudaMemset(out, 0xff, (size_t)B * k * 4));
          launch(pr.kern, l, 0);
          CHECK(cudaDeviceSynchronize());
          std::vector<int> got((size_t)B * k);
          CHECK(cudaMemcpy(got.data(), out, got.size() * 4, cudaMemcpyDeviceToHost));
          ok = topk_rows_match(host, got, B, L, k);
        }
        std::printf(" %6.2f", graph_us(pr.kern, l));
      }
      std::printf(" | %s\n", ok ? "exact" : "WRONG");
      CHECK(cudaFree(ws));
    }
    CHECK(cudaFree(scores));
    CHECK(cudaFree(out));
  }
  return 0;
}
