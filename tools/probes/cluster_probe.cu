// Thread-block clusters on this GPU, for topk_select's split rows: how many clusters of 2..16
// blocks of 1024 threads with the topk kernel's shared memory run at once, and what a cluster
// barrier plus summing every block's 2048-bin histogram over DSMEM costs per launch.
//   nvcc -std=c++17 -gencode=arch=compute_90a,code=sm_90a -o /tmp/cluster_probe tools/probes/cluster_probe.cu
#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <vector>
namespace cg = cooperative_groups;

#define CHECK(x)                                                                     \
  do {                                                                               \
    cudaError_t e_ = (x);                                                            \
    if (e_ != cudaSuccess) {                                                         \
      std::printf("%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
      return 1;                                                                      \
    }                                                                                \
  } while (0)

constexpr int kBins = 2048;

// mode 0: nothing; 1: one cluster barrier; 2: histogram, barrier, sum all ranks, barrier.
__global__ void probe(int mode, unsigned* sink) {
  extern __shared__ unsigned smem[];
  cg::cluster_group cluster = cg::this_cluster();
  if (mode == 0) return;
  for (int b = threadIdx.x; b < kBins; b += blockDim.x) smem[b] = b * 7u + blockIdx.x;
  cluster.sync();
  if (mode == 2) {
    unsigned acc = 0;
    const int n = (int)cluster.num_blocks();
    for (int b = threadIdx.x; b < kBins; b += blockDim.x) {
      unsigned s = 0;
      for (int r = 0; r < n; ++r) s += cluster.map_shared_rank(smem, r)[b];
      acc += s;
    }
    if (acc == 0x12345678u) sink[0] = acc;
    cluster.sync();
  }
}

int main() {
  int dev = 0, sms = 0, optin = 0;
  CHECK(cudaGetDevice(&dev));
  CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  const int smem = optin - 1024;
  CHECK(cudaFuncSetAttribute(probe, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  CHECK(cudaFuncSetAttribute(probe, cudaFuncAttributeNonPortableClusterSizeAllowed, 1));
  unsigned* sink;
  CHECK(cudaMalloc(&sink, 16));
  std::printf("SMs %d, dynamic shared %d B, 1024 threads a block\n", sms, smem);
  cudaEvent_t e0, e1;
  CHECK(cudaEventCreate(&e0));
  CHECK(cudaEventCreate(&e1));
  for (int c : {1, 2, 4, 8, 16}) {
    cudaLaunchConfig_t cfg = {};
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeClusterDimension;
    attr[0].val.clusterDim.x = c;
    attr[0].val.clusterDim.y = 1;
    attr[0].val.clusterDim.z = 1;
    cfg.blockDim = dim3(1024);
    cfg.dynamicSmemBytes = smem;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    cfg.gridDim = dim3(128);
    int active = 0;
    CHECK(cudaOccupancyMaxActiveClusters(&active, probe, &cfg));
    std::printf("cluster %2d: at most %3d clusters at once (%3d blocks)", c, active, active * c);
    for (int mode = 0; mode < 3; ++mode) {
      std::vector<float> t;
      for (int rep = 0; rep < 7; ++rep) {
        CHECK(cudaEventRecord(e0));
        for (int i = 0; i < 100; ++i) CHECK(cudaLaunchKernelEx(&cfg, probe, mode, sink));
        CHECK(cudaEventRecord(e1));
        CHECK(cudaEventSynchronize(e1));
        float ms = 0;
        CHECK(cudaEventElapsedTime(&ms, e0, e1));
        t.push_back(ms * 10.f);  // us per launch
      }
      std::sort(t.begin(), t.end());
      std::printf("  mode%d %.2f us", mode, t[3]);
    }
    std::printf(
        "   (grid 128; mode0 empty, mode1 one cluster barrier, mode2 + DSMEM sum of all ranks' 2048 bins)\n");
  }
  return 0;
}
