// AMD CDNA (gfx90a, gfx942) device helpers: bf16 as raw bits, MFMA, wave64 shuffles, fast
// exp2/log2. Valid under both hipRTC 5.2 (clang 15, no <hip/hip_bf16.h>, no __bf16) and clang-19
// with a minimal prelude: they use compiler builtins only, never ocml/ockl or std headers.
#pragma once

#include "common/hip_prelude.h"

namespace nsajit {
namespace cdna {

typedef short bf16x4 __attribute__((ext_vector_type(4)));  // MFMA bf16_1k operand: 4 bf16 bit patterns
typedef float f32x4 __attribute__((ext_vector_type(4)));
typedef unsigned u32x2 __attribute__((ext_vector_type(2)));
typedef unsigned u32x4 __attribute__((ext_vector_type(4)));

constexpr float kNegInf = -__builtin_huge_valf();
constexpr float kPosInf = __builtin_huge_valf();

// Global memory accesses through an explicit global (addrspace 1) pointer: LLVM 19 does not
// infer it for pointers inside a by-value parameter struct and would emit flat_load/store.
#define NSAJIT_GLOBAL __attribute__((address_space(1)))
template <class T>
__device__ __forceinline__ T load_global(const void* p) {
  return *(const NSAJIT_GLOBAL T*)(p);
}
template <class T>
__device__ __forceinline__ void store_global(void* p, T v) {
  *(NSAJIT_GLOBAL T*)(p) = v;
}

__device__ __forceinline__ float bf16_to_float(unsigned short b) {
  return __builtin_bit_cast(float, static_cast<unsigned>(b) << 16);
}

// Round to nearest even; NaN stays a (quiet) NaN.
__device__ __forceinline__ unsigned float_to_bf16_bits(float f) {
  const unsigned u = __builtin_bit_cast(unsigned, f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0u;
  return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}

__device__ __forceinline__ unsigned pack_bf16x2(float lo, float hi) {
  return float_to_bf16_bits(lo) | (float_to_bf16_bits(hi) << 16);
}

// exp2/log2 of the hardware (v_exp_f32 / v_log_f32): exp2(-inf) = 0. clang 15 (hipRTC 5.2) has
// no __builtin_amdgcn_exp2f, but lowers __builtin_exp2f to the same instruction.
__device__ __forceinline__ float fast_exp2(float x) {
#if __has_builtin(__builtin_amdgcn_exp2f)
  return __builtin_amdgcn_exp2f(x);
#else
  return __builtin_exp2f(x);
#endif
}

__device__ __forceinline__ float fast_log2(float x) {
#if __has_builtin(__builtin_amdgcn_logf)
  return __builtin_amdgcn_logf(x);
#else
  return __builtin_log2f(x);
#endif
}

__device__ __forceinline__ float fast_rcp(float x) {
  return __builtin_amdgcn_rcpf(x);
}

__device__ __forceinline__ int lane_id() {
  return static_cast<int>(__builtin_amdgcn_mbcnt_hi(~0u, __builtin_amdgcn_mbcnt_lo(~0u, 0u)));
}

// Butterfly exchange inside a wave64 (ds_bpermute: no LDS allocation, no barrier).
__device__ __forceinline__ float shfl_xor(float v, int mask) {
  const int src = (lane_id() ^ mask) << 2;
  return __builtin_bit_cast(float, __builtin_amdgcn_ds_bpermute(src, __builtin_bit_cast(int, v)));
}

// D = A (16x16, bf16) * B (16x16, bf16) + C (fp32). Lane l supplies A[l%16][4*(l/16)+e] and
// B[4*(l/16)+e][l%16] (e = 0..3) and holds D[4*(l/16)+i][l%16] (i = 0..3).
__device__ __forceinline__ f32x4 mfma_16x16x16_bf16(bf16x4 a, bf16x4 b, f32x4 c) {
#if defined(__gfx90a__) || defined(__gfx942__)
  return __builtin_amdgcn_mfma_f32_16x16x16bf16_1k(a, b, c, 0, 0, 0);
#elif defined(__HIP_DEVICE_COMPILE__)
#error "nsa-jit CDNA kernels need bf16 MFMA (gfx90a or gfx942)"
#else
  (void)a;
  (void)b;
  return c;  // host pass of a full HIP compile: never executed
#endif
}

// Two bf16 pairs (lo, hi halves of two 32-bit words) -> operand words: the low halves of a and
// b, and the high halves of a and b (v_perm_b32).
__device__ __forceinline__ unsigned pack_lo_halves(unsigned a, unsigned b) {
  return (a & 0xffffu) | (b << 16);
}
__device__ __forceinline__ unsigned pack_hi_halves(unsigned a, unsigned b) {
  return (a >> 16) | (b & 0xffff0000u);
}

__device__ __forceinline__ bf16x4 as_bf16x4(unsigned w0, unsigned w1) {
  const u32x2 v = {w0, w1};
  return __builtin_bit_cast(bf16x4, v);
}

// Compile-time loop: calls f(Int<0>{}) ... f(Int<N-1>{}) so register arrays are indexed by
// constants (a run-time index into a register array would spill it to scratch).
template <int V>
struct Int {
  static constexpr int value = V;
};
template <int I, int N, class F>
__device__ __forceinline__ void static_for(F&& f) {
  if constexpr (I < N) {
    f(Int<I>{});
    static_for<I + 1, N>(f);
  }
}

}  // namespace cdna
}  // namespace nsajit
