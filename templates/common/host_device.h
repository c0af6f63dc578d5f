// Marks constexpr helpers shared by host code (g++) and NVRTC device code: NVRTC treats an
// unannotated function as host-only. clang's HIP mode makes constexpr functions usable on
// both sides by itself.
#pragma once

#if defined(__CUDACC_RTC__) || defined(__CUDACC__)
#define NSA_HOST_DEVICE __host__ __device__
#else
#define NSA_HOST_DEVICE
#endif
