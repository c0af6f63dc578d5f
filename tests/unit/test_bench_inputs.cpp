// The bench's input formulas (templates/bench/bench_random.h), evaluated on the host: the
// device fills compute exactly these values (tests/gpu/test_bench_gpu.cpp compares bits).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "templates/bench/bench_random.h"
#include "tests/reference/bf16_host.hpp"

namespace nsajit {
namespace {

// Checks every promise of one row; returns false (with a message) on the first broken one.
bool row_is_distinct_and_in_range(unsigned long long key, long long row, int s_kv, int topk) {
  const NsaBenchIndexRow r = nsa_bench_index_row(key, row, s_kv);
  if (r.stride < 1 || (s_kv > 1 && r.stride >= s_kv) || nsa_bench_gcd(r.stride, s_kv) != 1) {
    MESSAGE("s_kv " << s_kv << " row " << row << ": bad stride " << r.stride);
    return false;
  }
  std::vector<bool> seen(static_cast<std::size_t>(s_kv), false);
  for (int t = 0; t < topk; ++t) {
    const int v = nsa_bench_index(r, t, s_kv);
    if (v < 0 || v >= s_kv || seen[static_cast<std::size_t>(v)]) {
      MESSAGE("s_kv " << s_kv << " row " << row << " t " << t << ": index " << v
                      << " out of range or repeated");
      return false;
    }
    seen[static_cast<std::size_t>(v)] = true;
  }
  return true;
}

}  // namespace

TEST_CASE("bench_indices_are_distinct_and_in_range_for_every_topk_up_to_s_kv") {
  const unsigned long long key = nsa_bench_key(12345, NSA_BENCH_STREAM_INDICES);
  // Primes, powers of two and highly composite sizes (few strides are coprime to 30030).
  for (int s_kv : {1, 2, 3, 4, 6, 12, 97, 1000, 1024, 30030, 32768, 65536}) {
    for (long long row = 0; row < 24; ++row) {
      REQUIRE(row_is_distinct_and_in_range(key, row, s_kv, s_kv));  // topk = s_kv: a full permutation
    }
  }
}

TEST_CASE("bench_indices_look_random") {
  const unsigned long long key = nsa_bench_key(7, NSA_BENCH_STREAM_INDICES);
  const int s_kv = 32768, topk = 2048, rows = 256;
  long long adjacent = 0, pairs = 0;
  double sum = 0;
  int same_as_previous_row = 0;
  NsaBenchIndexRow prev{-1, -1};
  for (int row = 0; row < rows; ++row) {
    const NsaBenchIndexRow r = nsa_bench_index_row(key, row, s_kv);
    if (r.start == prev.start && r.stride == prev.stride) ++same_as_previous_row;
    prev = r;
    for (int t = 0; t < topk; ++t) {
      const int v = nsa_bench_index(r, t, s_kv);
      sum += v;
      if (t > 0) {
        ++pairs;
        adjacent += std::abs(v - nsa_bench_index(r, t - 1, s_kv)) <= 1 ? 1 : 0;
      }
    }
  }
  CHECK(same_as_previous_row == 0);
  CHECK(adjacent < pairs / 100);  // consecutive positions almost never name neighbouring kv rows
  CHECK(std::abs(sum / (static_cast<double>(rows) * topk) - s_kv / 2.0) < s_kv * 0.05);
}

TEST_CASE("bench_values_are_roughly_standard_normal_and_depend_on_seed_and_stream") {
  const unsigned long long key = nsa_bench_key(99, NSA_BENCH_STREAM_KV);
  const long long n = 1 << 20;
  double sum = 0, sum2 = 0, biggest = 0;
  long long differ_seed = 0, differ_stream = 0;
  const unsigned long long other_seed = nsa_bench_key(100, NSA_BENCH_STREAM_KV);
  const unsigned long long other_stream = nsa_bench_key(99, NSA_BENCH_STREAM_Q);
  for (long long i = 0; i < n; ++i) {
    const float x = nsa_bench_value(key, i);
    sum += x;
    sum2 += static_cast<double>(x) * x;
    biggest = std::max(biggest, static_cast<double>(std::abs(x)));
    differ_seed += nsa_bench_value(other_seed, i) != x ? 1 : 0;
    differ_stream += nsa_bench_value(other_stream, i) != x ? 1 : 0;
  }
  const double mean = sum / n, var = sum2 / n - mean * mean;
  CHECK(std::abs(mean) < 0.01);
  CHECK(var > 0.98);
  CHECK(var < 1.02);
  CHECK(biggest <= 3.4642);  // Irwin-Hall of 4: |x| <= sqrt(12)
  CHECK(biggest > 2.5);
  CHECK(differ_seed > n * 99 / 100);
  CHECK(differ_stream > n * 99 / 100);
  CHECK(nsa_bench_value(key, 12345) == nsa_bench_value(key, 12345));
}

TEST_CASE("bench_value_is_one_exact_multiply_of_the_centred_integer_sum") {
  // The device must produce the same bits: no fused or reassociated arithmetic is possible.
  CHECK(nsa_bench_normal(0) == static_cast<float>(-131070) * 2.6428983e-5f);
  CHECK(nsa_bench_normal(~0ull) == static_cast<float>(131070) * 2.6428983e-5f);
  CHECK(nsa_bench_normal(0x7fff'8000'7fff'8000ull) == 0.0f);  // 32767 + 32768 + 32767 + 32768 = 131070
  CHECK(nsa_bench_normal(0x7fff'7fff'7fff'8000ull) == static_cast<float>(-1) * 2.6428983e-5f);
  CHECK(nsa_bench_normal(0x0001'0000'0000'0000ull) == static_cast<float>(1 - 131070) * 2.6428983e-5f);
  // bf16 of the value never overflows or turns NaN.
  for (long long i = 0; i < 4096; ++i) {
    const float back = reference::bf16_to_float(reference::float_to_bf16(nsa_bench_value(1, i)));
    REQUIRE(std::isfinite(back));
  }
}

}  // namespace nsajit
