// Portable names for the few vendor intrinsics whose CUDA and HIP spellings differ, so one
// device template compiles with NVRTC (CUDA), hipRTC (ROCm 5.2, HIP runtime builtins) and
// clang-19 with the minimal prelude (common/hip_prelude.h).
//
// On NVIDIA every macro expands to exactly the CUDA call the templates were verified with
// (full 32-lane masks). On AMD a wavefront is 64 lanes: lane masks are 64 bits wide and the
// shuffles act on the whole wavefront (HIP's default width = warpSize = 64). HIP 5.2 has no
// *_sync shuffles and no cache-hinted loads, hence the mapping rather than CUDA names.
#pragma once

#include "common/hip_prelude.h"  // empty unless NSAJIT_HIP_MIN_PRELUDE (the clang-19 path)

#if defined(__HIP_DEVICE_COMPILE__) || defined(__HIPCC_RTC__) || defined(NSAJIT_HIP_MIN_PRELUDE)
#define NSA_GPU_HIP 1
#endif

#if defined(NSA_GPU_HIP)

typedef unsigned long long nsa_lane_mask_t;  // one bit per lane of a 64-wide wavefront
#define NSA_FULL_LANE_MASK (~0ull)
// Shuffles over the whole wavefront; every lane of the wave must execute them.
#define NSA_SHFL_UP(v, d) __shfl_up((v), (d))
#define NSA_SHFL_DOWN(v, d) __shfl_down((v), (d))
#define NSA_SHFL_XOR(v, m) __shfl_xor((v), (m))
#define NSA_SHFL(v, src) __shfl((v), (src))
#define NSA_BALLOT(pred) __ballot((pred))
#define NSA_POPC_MASK(m) __popcll((m))
// A load that sees other workgroups' writes published with __threadfence: an agent-scope
// relaxed atomic load bypasses the non-coherent per-CU cache (glc on gfx90a, sc1 on gfx942).
#define NSA_LOAD_COHERENT(ptr) __hip_atomic_load((ptr), __ATOMIC_RELAXED, __HIP_MEMORY_SCOPE_AGENT)

#else  // CUDA (NVRTC)

typedef unsigned int nsa_lane_mask_t;
#define NSA_FULL_LANE_MASK 0xffffffffu
#define NSA_SHFL_UP(v, d) __shfl_up_sync(NSA_FULL_LANE_MASK, (v), (d))
#define NSA_SHFL_DOWN(v, d) __shfl_down_sync(NSA_FULL_LANE_MASK, (v), (d))
#define NSA_SHFL_XOR(v, m) __shfl_xor_sync(NSA_FULL_LANE_MASK, (v), (m))
#define NSA_SHFL(v, src) __shfl_sync(NSA_FULL_LANE_MASK, (v), (src))
#define NSA_BALLOT(pred) __ballot_sync(NSA_FULL_LANE_MASK, (pred))
#define NSA_POPC_MASK(m) __popc((m))
// Sum of an int over the warp in one instruction (sm_80+ REDUX).
#define NSA_WARP_SUM(v) ((int)__reduce_add_sync(NSA_FULL_LANE_MASK, (unsigned)(v)))
#define NSA_LOAD_COHERENT(ptr) __ldcg(ptr)  // cached in L2 only: sees other blocks' writes
// Thread-block clusters (sm_90). The barrier of every thread of the cluster (its arrive
// releases, its wait acquires: shared and global writes before it are visible after it); a
// shared-memory pointer of this block mapped to the same variable in block `rank` of the
// cluster; the cluster's size in blocks (1 when launched without clusters).
#define NSA_CLUSTER_SYNC() (__cluster_barrier_arrive(), __cluster_barrier_wait())
// The two halves of NSA_CLUSTER_SYNC, for work between them (each thread alternates them).
#define NSA_CLUSTER_ARRIVE() __cluster_barrier_arrive()
#define NSA_CLUSTER_WAIT() __cluster_barrier_wait()
#define NSA_CLUSTER_MAP(ptr, rank) ((decltype(ptr))__cluster_map_shared_rank((ptr), (rank)))
#define NSA_CLUSTER_BLOCKS() __clusterSizeInBlocks()

#endif
