// Which cp.async form faults with CUDA_ERROR_ILLEGAL_INSTRUCTION on sm_90a? (The ws2 schedule
// and an L2-hinted transposed-kernel gather both did.) One form per process: an illegal
// instruction poisons the context.  nvcc -arch=sm_90a -o /tmp/probe l2hint_probe.cu && /tmp/probe N
#include <cstdio>
#include <cstdlib>

__device__ __forceinline__ unsigned long long policy_evict_last() {
  unsigned long long p;
  asm volatile("createpolicy.fractional.L2::evict_last.b64 %0, 1.0;\n" : "=l"(p));
  return p;
}

template <int FORM>
__global__ void probe(const float4* src, float4* dst) {
  __shared__ __align__(16) float4 buf[256];
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(&buf[threadIdx.x]));
  const float4* g = src + blockIdx.x * 256 + threadIdx.x;
  if constexpr (FORM == 0) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, 16;\n" ::"r"(s), "l"(g) : "memory");
  } else if constexpr (FORM == 1) {
    asm volatile("cp.async.cg.shared.global.L2::256B [%0], [%1], 16, 16;\n" ::"r"(s), "l"(g) : "memory");
  } else if constexpr (FORM == 2) {
    const unsigned long long p = policy_evict_last();
    asm volatile("cp.async.cg.shared.global.L2::cache_hint [%0], [%1], 16, 16, %2;\n" ::"r"(s), "l"(g), "l"(p)
                 : "memory");
  } else if constexpr (FORM == 3) {
    const unsigned long long p = policy_evict_last();
    asm volatile("cp.async.cg.shared.global.L2::cache_hint.L2::256B [%0], [%1], 16, 16, %2;\n" ::"r"(s),
                 "l"(g), "l"(p)
                 : "memory");
  } else if constexpr (FORM == 4) {  // policy made by one thread, used by all (as a uniform value)
    unsigned long long p;
    asm volatile("createpolicy.fractional.L2::evict_last.L2::evict_unchanged.b64 %0, 1.0;\n" : "=l"(p));
    asm volatile("cp.async.cg.shared.global.L2::cache_hint [%0], [%1], 16, 16, %2;\n" ::"r"(s), "l"(g), "l"(p)
                 : "memory");
  } else if constexpr (FORM == 6 || FORM == 7) {  // zero-fill (src-size 0), as for an invalid kv row
    const unsigned long long p = policy_evict_last();
    const int n = (threadIdx.x & 1) ? 0 : 16;
    if constexpr (FORM == 6)
      asm volatile("cp.async.cg.shared.global.L2::cache_hint [%0], [%1], 16, %2, %3;\n" ::"r"(s), "l"(g),
                   "r"(n), "l"(p)
                   : "memory");
    else
      asm volatile("cp.async.cg.shared.global.L2::cache_hint.L2::256B [%0], [%1], 16, %2, %3;\n" ::"r"(s),
                   "l"(g), "r"(n), "l"(p)
                   : "memory");
  } else if constexpr (FORM == 8) {  // zero-fill without a hint
    const int n = (threadIdx.x & 1) ? 0 : 16;
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(g), "r"(n) : "memory");
  } else {  // FORM 5: ld.global with the same policy (not cp.async)
    const unsigned long long p = policy_evict_last();
    float4 v;
    asm volatile("ld.global.L2::cache_hint.v4.f32 {%0,%1,%2,%3}, [%4], %5;\n"
                 : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w)
                 : "l"(g), "l"(p));
    buf[threadIdx.x] = v;
  }
  asm volatile("cp.async.wait_all;\n" ::: "memory");
  __syncthreads();
  dst[blockIdx.x * 256 + threadIdx.x] = buf[threadIdx.x];
}

int main(int argc, char** argv) {
  const int form = argc > 1 ? std::atoi(argv[1]) : 0;
  float4 *src, *dst;
  cudaMalloc(&src, 64 * 256 * sizeof(float4));
  cudaMalloc(&dst, 64 * 256 * sizeof(float4));
  cudaMemset(src, 0, 64 * 256 * sizeof(float4));
  switch (form) {
    case 0:
      probe<0><<<64, 256>>>(src, dst);
      break;
    case 1:
      probe<1><<<64, 256>>>(src, dst);
      break;
    case 2:
      probe<2><<<64, 256>>>(src, dst);
      break;
    case 3:
      probe<3><<<64, 256>>>(src, dst);
      break;
    case 4:
      probe<4><<<64, 256>>>(src, dst);
      break;
    case 6:
      probe<6><<<64, 256>>>(src, dst);
      break;
    case 7:
      probe<7><<<64, 256>>>(src, dst);
      break;
    case 8:
      probe<8><<<64, 256>>>(src, dst);
      break;
    default:
      probe<5><<<64, 256>>>(src, dst);
      break;
  }
  const cudaError_t e = cudaDeviceSynchronize();
  std::printf("form %d: %s\n", form, cudaGetErrorString(e));
  return e == cudaSuccess ? 0 : 1;
}
