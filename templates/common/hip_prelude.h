// The minimal HIP device prelude for the clang-19 path (no ROCm headers, no device libraries).
//
// hipRTC brings its own HIP runtime header, so this file is empty there. The clang-19 compiler
// (runtime/amdgpu_clang_compiler.cpp) defines NSAJIT_HIP_MIN_PRELUDE and compiles with
// -nogpuinc -nogpulib: every name below maps straight onto a clang builtin, so nothing needs the
// ROCm device library bitcode (ROCm 5.2 has none for gfx942). Written for clang 19; clang 15
// (hipRTC 5.2) rejects some of these builtins, which is why it stays off there.
#pragma once
#if defined(NSAJIT_HIP_MIN_PRELUDE)

#define __global__ __attribute__((global))
#define __device__ __attribute__((device))
#define __host__ __attribute__((host))
#define __shared__ __attribute__((shared))
#define __constant__ __attribute__((constant))
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
// HIP's second argument (min waves per EU) is advisory; only the block size bound is kept.
#define __launch_bounds__(max_threads, ...) __attribute__((amdgpu_flat_work_group_size(1, max_threads)))

// CDNA wavefronts are 64 wide. A constant (not __builtin_amdgcn_wavefrontsize) so loops unroll.
#define warpSize 64

// threadIdx.x etc. read the hardware registers on each access, as HIP's own header does.
struct nsajit_thread_idx {
  __declspec(property(get = get_x)) unsigned x;
  __declspec(property(get = get_y)) unsigned y;
  __declspec(property(get = get_z)) unsigned z;
  __device__ __forceinline__ unsigned get_x() const { return __builtin_amdgcn_workitem_id_x(); }
  __device__ __forceinline__ unsigned get_y() const { return __builtin_amdgcn_workitem_id_y(); }
  __device__ __forceinline__ unsigned get_z() const { return __builtin_amdgcn_workitem_id_z(); }
};
struct nsajit_block_idx {
  __declspec(property(get = get_x)) unsigned x;
  __declspec(property(get = get_y)) unsigned y;
  __declspec(property(get = get_z)) unsigned z;
  __device__ __forceinline__ unsigned get_x() const { return __builtin_amdgcn_workgroup_id_x(); }
  __device__ __forceinline__ unsigned get_y() const { return __builtin_amdgcn_workgroup_id_y(); }
  __device__ __forceinline__ unsigned get_z() const { return __builtin_amdgcn_workgroup_id_z(); }
};
struct nsajit_block_dim {
  __declspec(property(get = get_x)) unsigned x;
  __declspec(property(get = get_y)) unsigned y;
  __declspec(property(get = get_z)) unsigned z;
  __device__ __forceinline__ unsigned get_x() const { return __builtin_amdgcn_workgroup_size_x(); }
  __device__ __forceinline__ unsigned get_y() const { return __builtin_amdgcn_workgroup_size_y(); }
  __device__ __forceinline__ unsigned get_z() const { return __builtin_amdgcn_workgroup_size_z(); }
};
struct nsajit_grid_dim {
  __declspec(property(get = get_x)) unsigned x;
  __declspec(property(get = get_y)) unsigned y;
  __declspec(property(get = get_z)) unsigned z;
  __device__ __forceinline__ unsigned get_x() const {
    return __builtin_amdgcn_grid_size_x() / __builtin_amdgcn_workgroup_size_x();
  }
  __device__ __forceinline__ unsigned get_y() const {
    return __builtin_amdgcn_grid_size_y() / __builtin_amdgcn_workgroup_size_y();
  }
  __device__ __forceinline__ unsigned get_z() const {
    return __builtin_amdgcn_grid_size_z() / __builtin_amdgcn_workgroup_size_z();
  }
};
static constexpr __device__ nsajit_thread_idx threadIdx{};
static constexpr __device__ nsajit_block_idx blockIdx{};
static constexpr __device__ nsajit_block_dim blockDim{};
static constexpr __device__ nsajit_grid_dim gridDim{};

// A workgroup barrier that also orders LDS and global memory, like HIP's __syncthreads.
__device__ __forceinline__ void __syncthreads() {
  __builtin_amdgcn_fence(__ATOMIC_RELEASE, "workgroup");
  __builtin_amdgcn_s_barrier();
  __builtin_amdgcn_fence(__ATOMIC_ACQUIRE, "workgroup");
}

__device__ __forceinline__ unsigned __lane_id() {
  return __builtin_amdgcn_mbcnt_hi(~0u, __builtin_amdgcn_mbcnt_lo(~0u, 0u));
}

// Butterfly shuffles through ds_bpermute (byte addresses, hence << 2). `width` as in HIP.
__device__ __forceinline__ int __shfl_xor(int v, int lane_mask, int width = warpSize) {
  const int lane = static_cast<int>(__lane_id());
  int target = lane ^ lane_mask;
  if (target >= ((lane + width) & ~(width - 1))) target = lane;
  return __builtin_amdgcn_ds_bpermute(target << 2, v);
}
__device__ __forceinline__ unsigned __shfl_xor(unsigned v, int lane_mask, int width = warpSize) {
  return static_cast<unsigned>(__shfl_xor(static_cast<int>(v), lane_mask, width));
}
__device__ __forceinline__ float __shfl_xor(float v, int lane_mask, int width = warpSize) {
  return __builtin_bit_cast(float, __shfl_xor(__builtin_bit_cast(int, v), lane_mask, width));
}
__device__ __forceinline__ int __shfl(int v, int src_lane, int width = warpSize) {
  const int lane = static_cast<int>(__lane_id());
  const int target = (lane & ~(width - 1)) + (src_lane & (width - 1));
  return __builtin_amdgcn_ds_bpermute(target << 2, v);
}
__device__ __forceinline__ unsigned __shfl(unsigned v, int src_lane, int width = warpSize) {
  return static_cast<unsigned>(__shfl(static_cast<int>(v), src_lane, width));
}
__device__ __forceinline__ float __shfl(float v, int src_lane, int width = warpSize) {
  return __builtin_bit_cast(float, __shfl(__builtin_bit_cast(int, v), src_lane, width));
}

// Shifts as in HIP: a lane whose source falls outside its width-aligned segment keeps its value.
__device__ __forceinline__ int __shfl_up(int v, unsigned delta, int width = warpSize) {
  const int lane = static_cast<int>(__lane_id());
  int target = lane - static_cast<int>(delta);
  if (target < (lane & ~(width - 1))) target = lane;
  return __builtin_amdgcn_ds_bpermute(target << 2, v);
}
__device__ __forceinline__ unsigned __shfl_up(unsigned v, unsigned delta, int width = warpSize) {
  return static_cast<unsigned>(__shfl_up(static_cast<int>(v), delta, width));
}
__device__ __forceinline__ float __shfl_up(float v, unsigned delta, int width = warpSize) {
  return __builtin_bit_cast(float, __shfl_up(__builtin_bit_cast(int, v), delta, width));
}
__device__ __forceinline__ int __shfl_down(int v, unsigned delta, int width = warpSize) {
  const int lane = static_cast<int>(__lane_id());
  int target = lane + static_cast<int>(delta);
  if ((lane & (width - 1)) + static_cast<int>(delta) >= width) target = lane;
  return __builtin_amdgcn_ds_bpermute(target << 2, v);
}
__device__ __forceinline__ unsigned __shfl_down(unsigned v, unsigned delta, int width = warpSize) {
  return static_cast<unsigned>(__shfl_down(static_cast<int>(v), delta, width));
}
__device__ __forceinline__ float __shfl_down(float v, unsigned delta, int width = warpSize) {
  return __builtin_bit_cast(float, __shfl_down(__builtin_bit_cast(int, v), delta, width));
}

// Wave-wide votes and bit counts; HIP's __ballot is 64 bits wide (one bit per lane).
__device__ __forceinline__ unsigned long long __ballot(int predicate) {
  return __builtin_amdgcn_ballot_w64(predicate != 0);
}
__device__ __forceinline__ unsigned long long __activemask() {
  return __builtin_amdgcn_read_exec();
}
__device__ __forceinline__ int __popc(unsigned x) {
  return __builtin_popcount(x);
}
__device__ __forceinline__ int __popcll(unsigned long long x) {
  return __builtin_popcountll(x);
}
__device__ __forceinline__ int __clz(int x) {
  return x == 0 ? 32 : __builtin_clz(static_cast<unsigned>(x));
}
__device__ __forceinline__ int __clzll(long long x) {
  return x == 0 ? 64 : __builtin_clzll(static_cast<unsigned long long>(x));
}
__device__ __forceinline__ int __ffs(int x) {
  return __builtin_ffs(x);
}
__device__ __forceinline__ int __ffsll(long long x) {
  return __builtin_ffsll(x);
}

// Bit casts between float and its 32-bit pattern.
__device__ __forceinline__ unsigned __float_as_uint(float x) {
  return __builtin_bit_cast(unsigned, x);
}
__device__ __forceinline__ int __float_as_int(float x) {
  return __builtin_bit_cast(int, x);
}
__device__ __forceinline__ float __uint_as_float(unsigned x) {
  return __builtin_bit_cast(float, x);
}
__device__ __forceinline__ float __int_as_float(int x) {
  return __builtin_bit_cast(float, x);
}

// Memory fences as in HIP: __threadfence orders this work-item's accesses for the whole device
// (agent scope), __threadfence_block for its workgroup.
__device__ __forceinline__ void __threadfence() {
  __builtin_amdgcn_fence(__ATOMIC_SEQ_CST, "agent");
}
__device__ __forceinline__ void __threadfence_block() {
  __builtin_amdgcn_fence(__ATOMIC_SEQ_CST, "workgroup");
}

// Fast math on the hardware instructions (v_exp_f32 is 2^x, v_rsq_f32, v_rcp_f32).
__device__ __forceinline__ float exp2f(float x) {
  return __builtin_amdgcn_exp2f(x);
}
__device__ __forceinline__ float __expf(float x) {
  return __builtin_amdgcn_exp2f(x * 1.4426950408889634f);
}
__device__ __forceinline__ float log2f(float x) {
  return __builtin_amdgcn_logf(x);
}
__device__ __forceinline__ float rsqrtf(float x) {
  return __builtin_amdgcn_rsqf(x);
}
__device__ __forceinline__ float __frcp_rn(float x) {
  return __builtin_amdgcn_rcpf(x);
}
__device__ __forceinline__ float fmaxf(float a, float b) {
  return __builtin_fmaxf(a, b);
}
__device__ __forceinline__ float fminf(float a, float b) {
  return __builtin_fminf(a, b);
}
__device__ __forceinline__ float fabsf(float a) {
  return __builtin_fabsf(a);
}
__device__ __forceinline__ float fmaf(float a, float b, float c) {
  return __builtin_fmaf(a, b, c);
}
#define INFINITY __builtin_inff()

__device__ __forceinline__ float atomicAdd(float* p, float v) {
  return __hip_atomic_fetch_add(p, v, __ATOMIC_RELAXED, __HIP_MEMORY_SCOPE_AGENT);
}
__device__ __forceinline__ int atomicAdd(int* p, int v) {
  return __hip_atomic_fetch_add(p, v, __ATOMIC_RELAXED, __HIP_MEMORY_SCOPE_AGENT);
}
__device__ __forceinline__ unsigned atomicAdd(unsigned* p, unsigned v) {
  return __hip_atomic_fetch_add(p, v, __ATOMIC_RELAXED, __HIP_MEMORY_SCOPE_AGENT);
}
__device__ __forceinline__ int atomicMax(int* p, int v) {
  return __hip_atomic_fetch_max(p, v, __ATOMIC_RELAXED, __HIP_MEMORY_SCOPE_AGENT);
}
__device__ __forceinline__ unsigned atomicMax(unsigned* p, unsigned v) {
  return __hip_atomic_fetch_max(p, v, __ATOMIC_RELAXED, __HIP_MEMORY_SCOPE_AGENT);
}
__device__ __forceinline__ unsigned atomicMin(unsigned* p, unsigned v) {
  return __hip_atomic_fetch_min(p, v, __ATOMIC_RELAXED, __HIP_MEMORY_SCOPE_AGENT);
}
__device__ __forceinline__ unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) {
  return __hip_atomic_fetch_add(p, v, __ATOMIC_RELAXED, __HIP_MEMORY_SCOPE_AGENT);
}

#endif  // NSAJIT_HIP_MIN_PRELUDE
