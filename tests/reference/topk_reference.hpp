// CPU reference for topk_select (DESIGN.md section 2): the test and tuner oracle. It orders by
// comparing floats (not by the kernel's bit tricks), so it checks the kernel independently:
//   larger score first; -0.0 == +0.0; -inf is the smallest number; NaN ranks below -inf and
//   NaNs tie among themselves; ties go to the lower position; -1 fills a row's tail when it
//   has fewer than k valid entries; lengths are clamped to [0, L].
#pragma once

#include <cstdint>
#include <vector>

namespace nsajit::reference {

struct TopkProblem {
  int batch = 1;
  int length = 1;               // L
  std::int64_t row_stride = 1;  // elements between rows of scores (>= length)
  int k = 1;
  bool sorted = false;
  std::vector<float> scores;          // [batch, row_stride]
  std::vector<std::int32_t> lengths;  // empty (every row has L) or [batch]
};

// True when (score a at position pa) ranks before (score b at position pb).
bool topk_ranks_before(float a, std::int32_t pa, float b, std::int32_t pb);

// The valid prefix of row r: lengths[r] clamped to [0, L], or L without lengths.
int topk_valid_length(const TopkProblem& p, int row);

// [batch, k] indices, each row in descending rank order (also a valid unsorted answer).
// Rows are split over `threads` std::threads.
std::vector<std::int32_t> topk_select(const TopkProblem& p, int threads = 1);

}  // namespace nsajit::reference
