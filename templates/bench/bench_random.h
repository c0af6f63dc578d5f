// Deterministic pseudo-random inputs for `nsa-tune bench`, as pure functions of (seed, position).
// Compiled by the host (g++: the tests recompute every value exactly), NVRTC and nvcc, so it
// uses builtin types only.
#pragma once

#if defined(__CUDACC__) || defined(__CUDACC_RTC__) || defined(__HIPCC__)
#define NSA_BENCH_HD __host__ __device__ __forceinline__
#else
#define NSA_BENCH_HD inline
#endif

// splitmix64's finaliser: a bijection on 64 bits with good avalanche.
NSA_BENCH_HD unsigned long long nsa_bench_mix64(unsigned long long x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

// One key per (seed, purpose), so q, kv and indices drawn from one seed are unrelated.
enum NsaBenchStream { NSA_BENCH_STREAM_Q = 1, NSA_BENCH_STREAM_KV = 2, NSA_BENCH_STREAM_INDICES = 3 };

NSA_BENCH_HD unsigned long long nsa_bench_key(unsigned long long seed, unsigned long long stream) {
  return nsa_bench_mix64(seed ^ nsa_bench_mix64(stream * 0x9e3779b97f4a7c15ull));
}

NSA_BENCH_HD unsigned long long nsa_bench_hash(unsigned long long key, unsigned long long i) {
  return nsa_bench_mix64(key + (i + 1) * 0x9e3779b97f4a7c15ull);
}

// Roughly normal(0, 1): the sum of four 16-bit uniforms (Irwin-Hall, |x| <= 3.46), centred
// and scaled to unit variance. Integer sum, one float multiply: bit-identical on host and device.
NSA_BENCH_HD float nsa_bench_normal(unsigned long long h) {
  const int s = static_cast<int>(h & 0xffffull) + static_cast<int>((h >> 16) & 0xffffull) +
                static_cast<int>((h >> 32) & 0xffffull) + static_cast<int>(h >> 48);
  return static_cast<float>(s - 131070) * 2.6428983e-5f;  // sqrt(3) / 65536
}

// Element i of a bf16 tensor filled with `key` (before rounding to bf16, nearest even).
NSA_BENCH_HD float nsa_bench_value(unsigned long long key, long long i) {
  return nsa_bench_normal(nsa_bench_hash(key, static_cast<unsigned long long>(i)));
}

NSA_BENCH_HD int nsa_bench_gcd(int a, int b) {
  while (b != 0) {
    const int t = a % b;
    a = b;
    b = t;
  }
  return a;
}

// Indices of row `row`: position t is (start + t * stride) mod s_kv with gcd(stride, s_kv) = 1.
// t -> t * stride is then a bijection of Z/s_kv, so the first s_kv positions are distinct and
// in [0, s_kv): any topk <= s_kv gives distinct indices. start and stride are drawn per row, so
// consecutive positions land far apart (no two neighbouring kv rows unless stride is 1 or
// s_kv - 1), as the top-k of real scores does.
struct NsaBenchIndexRow {
  int start;
  int stride;
};

NSA_BENCH_HD NsaBenchIndexRow nsa_bench_index_row(unsigned long long key, long long row, int s_kv) {
  const unsigned long long h = nsa_bench_hash(key, static_cast<unsigned long long>(row));
  NsaBenchIndexRow r;
  r.start = static_cast<int>((h & 0xffffffffull) % static_cast<unsigned long long>(s_kv));
  if (s_kv <= 2) {
    r.stride = 1;
    return r;
  }
  int stride = 1 + static_cast<int>((h >> 32) % static_cast<unsigned long long>(s_kv - 1));  // [1, s_kv)
  while (nsa_bench_gcd(stride, s_kv) != 1) stride = stride + 1 == s_kv ? 1 : stride + 1;  // 1 always ends it
  r.stride = stride;
  return r;
}

NSA_BENCH_HD int nsa_bench_index(NsaBenchIndexRow r, int t, int s_kv) {
  return static_cast<int>((static_cast<long long>(r.start) + static_cast<long long>(t) * r.stride) % s_kv);
}
