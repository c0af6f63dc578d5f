// The CPU oracle for topk_select, checked on hand-made rows with exact expected outputs.
#include <doctest/doctest.h>

#include <limits>
#include <vector>

#include "tests/reference/topk_reference.hpp"
#include "tuner/topk_select_check.hpp"

using nsajit::reference::topk_select;
using nsajit::reference::TopkProblem;

namespace {
constexpr float kInf = std::numeric_limits<float>::infinity();
const float kNan = std::numeric_limits<float>::quiet_NaN();

TopkProblem one_row(std::vector<float> scores, int k, bool sorted = true) {
  TopkProblem p;
  p.batch = 1;
  p.length = static_cast<int>(scores.size());
  p.row_stride = p.length;
  p.k = k;
  p.sorted = sorted;
  p.scores = std::move(scores);
  return p;
}
using Ints = std::vector<std::int32_t>;
}  // namespace

TEST_CASE("topk_reference_picks_largest_in_descending_order") {
  CHECK(topk_select(one_row({3, 1, 4, 1, 5, 9, 2, 6}, 3)) == Ints{5, 7, 4});
}

TEST_CASE("topk_reference_ties_go_to_lower_position") {
  CHECK(topk_select(one_row({1, 2, 2, 2, 1}, 2)) == Ints{1, 2});
  CHECK(topk_select(one_row({7, 7, 7, 7}, 3)) == Ints{0, 1, 2});
  CHECK(topk_select(one_row({1, 2, 1, 2, 1}, 4)) == Ints{1, 3, 0, 2});
}

TEST_CASE("topk_reference_negative_zero_equals_positive_zero") {
  CHECK(topk_select(one_row({-1.0f, -0.0f, 0.0f}, 1)) == Ints{1});
  CHECK(topk_select(one_row({0.0f, -0.0f, -1.0f}, 2)) == Ints{0, 1});
}

TEST_CASE("topk_reference_selects_neg_inf_when_too_few_larger") {
  CHECK(topk_select(one_row({-kInf, -kInf, -5.0f}, 2)) == Ints{2, 0});
  CHECK(topk_select(one_row({-kInf, kInf, -kInf}, 3)) == Ints{1, 0, 2});
}

TEST_CASE("topk_reference_nan_ranks_below_neg_inf") {
  CHECK(topk_select(one_row({kNan, -kInf, 1.0f, kNan}, 2)) == Ints{2, 1});
  CHECK(topk_select(one_row({kNan, -kInf, 1.0f, -kNan}, 4)) == Ints{2, 1, 0, 3});
  CHECK(topk_select(one_row({kNan, kNan, kNan}, 2)) == Ints{0, 1});
}

TEST_CASE("topk_reference_k_above_length_fills_minus_one") {
  CHECK(topk_select(one_row({0.5f, 1.5f}, 4)) == Ints{1, 0, -1, -1});
}

TEST_CASE("topk_reference_lengths_are_clamped_prefixes") {
  TopkProblem p;
  p.batch = 4;
  p.length = 4;
  p.row_stride = 5;  // one padding element per row, never read
  p.k = 3;
  p.sorted = true;
  p.scores = {1, 2, 3, 4, 99,  //
              5, 1, 9, 9, 99,  //
              2, 8, 4, 6, 99,  //
              9, 9, 9, 9, 99};
  p.lengths = {0, 2, 9, -1};
  CHECK(topk_select(p) == Ints{-1, -1, -1, /**/ 0, 1, -1, /**/ 1, 3, 2, /**/ -1, -1, -1});
  CHECK(nsajit::reference::topk_valid_length(p, 2) == 4);
  CHECK(nsajit::reference::topk_valid_length(p, 3) == 0);
}

TEST_CASE("topk_reference_threads_do_not_change_the_result") {
  nsajit::tuner::TopkCase c;
  c.batch = 9;
  c.length = 3000;
  c.k = 100;
  c.data = nsajit::tuner::TopkData::ties;
  c.lengths = nsajit::tuner::TopkLengths::mixed;
  const auto p = nsajit::tuner::make_topk_problem(c);
  CHECK(topk_select(p, 1) == topk_select(p, 4));
}

TEST_CASE("topk_compare_accepts_any_order_unless_sorted") {
  TopkProblem p = one_row({1, 2, 3, 4}, 3, false);
  const Ints want = topk_select(p);  // {3, 2, 1}
  CHECK(nsajit::tuner::compare_topk(p, want, Ints{1, 3, 2}, 3).empty());
  CHECK_FALSE(nsajit::tuner::compare_topk(p, want, Ints{1, 3, 0}, 3).empty());
  CHECK_FALSE(nsajit::tuner::compare_topk(p, want, Ints{3, 3, 2}, 3).empty());
  p.sorted = true;
  CHECK(nsajit::tuner::compare_topk(p, want, Ints{3, 2, 1}, 3).empty());
  CHECK_FALSE(nsajit::tuner::compare_topk(p, want, Ints{1, 3, 2}, 3).empty());
}

TEST_CASE("topk_problem_poisons_entries_past_the_valid_prefix") {
  nsajit::tuner::TopkCase c;
  c.batch = 6;
  c.length = 50;
  c.k = 8;
  c.row_padding = 3;
  c.lengths = nsajit::tuner::TopkLengths::mixed;
  const auto p = nsajit::tuner::make_topk_problem(c);
  REQUIRE(p.lengths.size() == 6);
  CHECK(p.lengths[0] == 0);
  CHECK(p.lengths[1] == 7);
  CHECK(p.lengths[2] == 55);
  CHECK(p.lengths[3] == -3);
  for (int r = 0; r < p.batch; ++r)
    for (int j = nsajit::reference::topk_valid_length(p, r); j < p.row_stride; ++j)
      CHECK(p.scores[static_cast<std::size_t>(r * p.row_stride + j)] == kInf);
}
