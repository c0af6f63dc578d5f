// How fast does one SM run each wgmma shape the sparse_mla_fwd kernels use, with nothing else
// going on? Both operands from shared memory (SS) unless the name says RS. Prints TFLOP/s,
// FLOP per SM clock (dense bf16 peak: 4096) and the shared-memory operand bytes per clock that
// rate implies (the SM's shared-memory port: 128 B/clk). Issue 6's question: is the h_q 32
// kernel (m64n32k16 SS, 3 KB of operands per 64 KFLOP) bound by the port, not the tensor cores?
//   nvcc -O3 -std=c++20 -gencode arch=compute_90a,code=sm_90a -I templates -o /tmp/wgmma_rate
//   tools/probes/wgmma_rate_probe.cu /tmp/wgmma_rate [warpgroups per CTA: 1 or 2, default 2]
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>

#include "common/nv_wgmma.cuh"
#include "sparse_mla_fwd/wgmma_layout.h"

using namespace nsajit;

constexpr int kSteps = 8;     // wgmmas per committed batch (different k offsets)
constexpr int kIters = 4096;  // batches per warpgroup
constexpr int kSmem = 128 * 1024;

// MODE: 0 m64n32k16 SS (A K-major: S^T of the transposed kernel), 1 m64n32k16 SS with A MN-major
// (its O^T), 2 m64n16k16 SS, 3 m64n64k16 SS (S of the ws kernels), 4 m64n256k16 SS B N-major
// (P V with P from shared memory), 5 m64n256k16 RS (P V with P from registers).
template <int MODE>
__global__ void __launch_bounds__(256, 1) rate(float* out, long long* cycles) {
  extern __shared__ __align__(1024) unsigned char smem[];
  const unsigned raw = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  const unsigned base = (raw + 1023u) & ~1023u;
  for (int i = threadIdx.x; i < (kSmem - 1024) / 4; i += blockDim.x)
    reinterpret_cast<unsigned*>(smem + (base - raw))[i] = 0x3c003c00u ^ (i * 2654435761u & 0x00ff00ffu);
  fence_proxy_async_smem();
  __syncthreads();
  const unsigned long long da_k = nsa_wgmma_desc_sw128(base, 16, 1024);
  const unsigned long long da_mn = nsa_wgmma_desc_sw128(base, 64 * 128, 1024);
  const unsigned long long db_k = nsa_wgmma_desc_sw128(base + 65536, 16, 1024);
  const unsigned long long db_n = nsa_wgmma_desc_sw128(base + 65536, 64 * 128, 1024);
  constexpr int kRegs = MODE <= 1 ? 16 : MODE == 2 ? 8 : MODE == 3 ? 32 : 128;
  float d[kRegs];
#pragma unroll
  for (int i = 0; i < kRegs; ++i) d[i] = 0.f;
  unsigned a[1][4];  // the RS A fragment, opaque to the compiler
#pragma unroll
  for (int i = 0; i < 4; ++i) a[0][i] = 0x3c003c00u ^ (threadIdx.x << (i + 1));
  wgmma_fence_operands(a);
  const long long t0 = clock64();
  for (int it = 0; it < kIters; ++it) {
    wgmma_fence();
#pragma unroll
    for (int s = 0; s < kSteps; ++s) {
      const unsigned k_off = (s & 3) * 32 + (s >> 2) * 8192;  // K-major: 16 columns = 32 B in a panel
      const unsigned n_off = s * 16 * 128;                    // MN-major: 16 rows of 128 B
      if constexpr (MODE == 0) {
        float(&dd)[16] = *reinterpret_cast<float(*)[16]>(d);
        wgmma_m64n32k16_ss<0>(dd, nsa_wgmma_desc_advance(da_k, k_off), nsa_wgmma_desc_advance(db_k, k_off),
                              1);
      } else if constexpr (MODE == 1) {
        float(&dd)[16] = *reinterpret_cast<float(*)[16]>(d);
        wgmma_m64n32k16_ss<1>(dd, nsa_wgmma_desc_advance(da_mn, n_off), nsa_wgmma_desc_advance(db_k, k_off),
                              1);
      } else if constexpr (MODE == 2) {
        float(&dd)[8] = *reinterpret_cast<float(*)[8]>(d);
        wgmma_m64n16k16_ss<0>(dd, nsa_wgmma_desc_advance(da_k, k_off), nsa_wgmma_desc_advance(db_k, k_off),
                              1);
      } else if constexpr (MODE == 3) {
        float(&dd)[32] = *reinterpret_cast<float(*)[32]>(d);
        wgmma_m64n64k16_ss(dd, nsa_wgmma_desc_advance(da_k, k_off), nsa_wgmma_desc_advance(db_k, k_off), 1);
      } else if constexpr (MODE == 4) {
        float(&dd)[128] = *reinterpret_cast<float(*)[128]>(d);
        wgmma_m64n256k16_ss_tb(dd, nsa_wgmma_desc_advance(da_k, k_off), nsa_wgmma_desc_advance(db_n, n_off),
                               1);
      } else {
        float(&dd)[128] = *reinterpret_cast<float(*)[128]>(d);
        wgmma_m64n256k16_rs_tb(dd, a[0], nsa_wgmma_desc_advance(db_n, n_off), 1);
      }
    }
    wgmma_commit();
    wgmma_wait<1>();
  }
  wgmma_wait<0>();
  wgmma_fence_operands(d);
  const long long t1 = clock64();
  float sum = 0.f;
#pragma unroll
  for (int i = 0; i < kRegs; ++i) sum += d[i];
  out[blockIdx.x * blockDim.x + threadIdx.x] = sum;
  if (threadIdx.x == 0) cycles[blockIdx.x] = t1 - t0;
}

struct Shape {
  const char* name;
  int n;
  double a_bytes, b_bytes;  // operand bytes read from shared memory per instruction
};

template <int MODE>
void run(const Shape& sh, int wgs, int sms, float* out, long long* cycles) {
  cudaFuncSetAttribute(rate<MODE>, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem);
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  rate<MODE><<<sms, 128 * wgs, kSmem>>>(out, cycles);  // warm-up
  cudaEventRecord(e0);
  rate<MODE><<<sms, 128 * wgs, kSmem>>>(out, cycles);
  cudaEventRecord(e1);
  if (cudaEventSynchronize(e1) != cudaSuccess) {
    std::printf("%s: %s\n", sh.name, cudaGetErrorString(cudaGetLastError()));
    std::exit(1);
  }
  float ms = 0.f;
  cudaEventElapsedTime(&ms, e0, e1);
  long long cyc = 0;
  cudaMemcpy(&cyc, cycles, sizeof(cyc), cudaMemcpyDeviceToHost);
  const double instr = static_cast<double>(wgs) * kIters * kSteps;  // per CTA = per SM
  const double flop_per_instr = 2.0 * 64 * sh.n * 16;
  const double tflops = instr * sms * flop_per_instr / (ms * 1e-3) / 1e12;
  const double flop_clk = instr * flop_per_instr / static_cast<double>(cyc);
  const double bytes_clk = instr * (sh.a_bytes + sh.b_bytes) / static_cast<double>(cyc);
  std::printf("%-34s %8.1f %10.0f %9.1f %7.3f\n", sh.name, tflops, flop_clk, bytes_clk, ms);
}

int main(int argc, char** argv) {
  const int wgs = argc > 1 ? std::atoi(argv[1]) : 2;
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  const int sms = prop.multiProcessorCount;
  float* out = nullptr;
  long long* cycles = nullptr;
  cudaMalloc(&out, sizeof(float) * sms * 256);
  cudaMalloc(&cycles, sizeof(long long) * sms);
  std::printf("%s, %d SMs, %d warpgroups per SM, %d x %d wgmmas each\n", prop.name, sms, wgs, kIters, kSteps);
  std::printf("%-34s %8s %10s %9s %7s\n", "shape", "TFLOP/s", "FLOP/clk", "smem B/clk", "ms");
  run<0>({"m64n32k16 SS (S^T, h_q 32)", 32, 2048, 1024}, wgs, sms, out, cycles);
  run<1>({"m64n32k16 SS A MN-major (O^T)", 32, 2048, 1024}, wgs, sms, out, cycles);
  run<2>({"m64n16k16 SS (h_q 16)", 16, 2048, 512}, wgs, sms, out, cycles);
  run<3>({"m64n64k16 SS (S, h_q >= 64)", 64, 2048, 2048}, wgs, sms, out, cycles);
  run<4>({"m64n256k16 SS (P V, P in smem)", 256, 2048, 8192}, wgs, sms, out, cycles);
  run<5>({"m64n256k16 RS (P V, P in regs)", 256, 0, 8192}, wgs, sms, out, cycles);
  return 0;
}
