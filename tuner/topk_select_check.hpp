// Correctness checks of topk_select kernels against the CPU reference, for the tuner (verify a
// candidate before timing it) and the GPU tests: problem generators for the adversarial inputs
// of DESIGN.md section 2, one device run through the Device interface, and the comparison.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "generator/variant.hpp"
#include "runtime/backend.hpp"
#include "tests/reference/topk_reference.hpp"

namespace nsajit::tuner {

enum class TopkData {
  random,      // N(0, 1)
  ties,        // values from {-1, -0, +0, 2}: many ties, and -0 == +0
  all_equal,   // every score 1.0
  near_equal,  // 1.0 plus 0..15 ulps: neighbours in the float order
  neg_inf,     // N(0, 1) with about 40 % -inf
  nan,         // N(0, 1) with about 30 % NaN (both signs) and some -inf
};
std::string_view to_string(TopkData data) noexcept;

enum class TopkLengths {
  none,    // no lengths array: every row has L valid entries
  mixed,   // per row: 0, k - 1, L + 5 (clamped), -3 (-> 0), then random in [0, L]
  random,  // random in [0, L] per row
};

struct TopkCase {
  int batch = 1;
  int length = 1;
  int k = 1;
  bool sorted = false;
  TopkData data = TopkData::random;
  TopkLengths lengths = TopkLengths::none;
  int row_padding = 0;  // row stride = length + row_padding
  std::uint64_t seed = 1;
  [[nodiscard]] std::string describe() const;
};

// A case in the positional order the test suites list them: shape, data, then the options.
[[nodiscard]] TopkCase topk_case(int batch, int length, int k, TopkData data, bool sorted,
                                 TopkLengths lengths, int row_padding, std::uint64_t seed);

// Fresh data for the case. Entries past a row's valid prefix (padding, and beyond lengths[r])
// are +inf, so a kernel that reads them picks them and fails the comparison.
reference::TopkProblem make_topk_problem(const TopkCase& c);

// "" when `got` ([batch, got_row_stride]) equals `expected` ([batch, k]) row by row: as sets,
// or as sequences when p.sorted; otherwise the first differing row, described.
std::string compare_topk(const reference::TopkProblem& p, std::span<const std::int32_t> expected,
                         std::span<const std::int32_t> got, std::int64_t got_row_stride);

// Runs `runs` launches of a loaded topk_select kernel for variant v on the default stream, each
// into an output poisoned with 0x7f bytes, reusing one zeroed workspace; returns every run's
// output, each [batch, k] (dense). Throws Error on a device or planning failure.
std::vector<std::vector<std::int32_t>> run_topk_on_device(Device& device, const KernelHandle& kernel,
                                                          const Variant& v, const reference::TopkProblem& p,
                                                          int runs = 2);

// Runs the kernel twice and compares both outputs with the reference: "" when correct, else
// what differs. `reference_threads` parallelises the CPU reference over rows.
std::string check_topk_variant(Device& device, const KernelHandle& kernel, const Variant& v,
                               const reference::TopkProblem& p, int reference_threads = 8);

}  // namespace nsajit::tuner
