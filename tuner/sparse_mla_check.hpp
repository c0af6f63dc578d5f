// Checks a loaded sparse_mla_fwd variant against the CPU reference on fresh random data:
// the tuner's gate (a wrong variant never wins) and the GPU test suite's sweep.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nsajit/nsajit.h"
#include "runtime/backend.hpp"
#include "runtime/loaded_variant.hpp"
#include "tests/reference/sparse_mla_reference.hpp"

namespace nsajit {

struct SparseMlaCase {
  std::string label;
  int batch = 1, s_q = 4, h_q = 16, d_qk = 576, s_kv = 4096, kv_pad = 0, topk = 128;
  double invalid_fraction = 0.0;  // indices replaced by -1 or >= s_kv
  bool empty_row = false;         // row 0 gets no valid index at all
  bool with_lengths = false;      // topk_length, random in [0, topk] (one row 0)
  bool with_sink = false;
  bool natural_log = false;
  bool shared_q_rows = false;  // q row stride 0 (every row the same q): huge s_q in little memory
  bool rising_logits = false;  // kv row v scaled by 1 + 7 v / s_kv, indices sorted: the row max
                               // climbs tile after tile (a lazy running max must move mid-row)
  int splits = 1;              // topk split (the decode path)
  int reference_rows = 0;      // >0: compare a sample of this many rows (large s_q)
};

struct SparseMlaCheck {
  bool ok = false;
  double out_rel_err = 0, lse_max_abs = 0, max_logits_max_abs = 0;
  long long unwritten = 0;  // outputs still holding the poison
  std::string detail;
};

// Host data + reference + device buffers for one case; reused across variants.
class SparseMlaFixture {
 public:
  SparseMlaFixture(Device& device, const SparseMlaCase& c, std::uint64_t seed);
  ~SparseMlaFixture();
  SparseMlaFixture(const SparseMlaFixture&) = delete;
  SparseMlaFixture& operator=(const SparseMlaFixture&) = delete;

  [[nodiscard]] const SparseMlaCase& spec() const;
  // Poisons the outputs, runs `loaded` (an NVIDIA variant) on `stream`, compares.
  [[nodiscard]] SparseMlaCheck run_and_compare(LoadedVariant& loaded, void* stream);
  // Poisons the outputs, lets `call` launch with the fixture's C ABI arguments (e.g. through
  // the dispatcher), synchronises and compares.
  [[nodiscard]] SparseMlaCheck run_and_compare(
      const std::function<void(const nsajit_sparse_mla_args&)>& call);
  // The C ABI arguments of the fixture's buffers (outputs included), for negative tests.
  [[nodiscard]] const nsajit_sparse_mla_args& args() const;
  // True when every output still holds the poison (nothing was written).
  [[nodiscard]] bool outputs_untouched();
  void poison_outputs();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace nsajit
