#include <doctest/doctest.h>

#include "runtime/dispatch_rule.hpp"
#include "runtime/error.hpp"

namespace nsajit {

TEST_CASE("dispatch_rule_round_trips_through_json") {
  DispatchRule r;
  r.entries = {{16, "nsa_fwd_sm90a_d576_bh16_bt64_w4_st2", "00aa", 1.5},
               {64, "nsa_fwd_sm90a_d576_bh64_bt32_w8_st2", "00bb", 7.25}};
  const DispatchRule back = DispatchRule::from_json(r.to_json());
  REQUIRE(back.entries.size() == 2);
  CHECK(back.entries[1].variant == r.entries[1].variant);
  CHECK(back.entries[1].binary_key == "00bb");
  CHECK(back.entries[1].median_ms == doctest::Approx(7.25));
  CHECK(back.split == "fill_sms");
}

TEST_CASE("untuned_h_q_uses_the_nearest_tuned_rule") {
  DispatchRule r;
  r.entries = {{16, "a", "1"}, {32, "b", "2"}, {128, "c", "3"}};
  bool exact = false;
  CHECK(r.for_h_q(32, exact).variant == "b");
  CHECK(exact);
  CHECK(r.for_h_q(8, exact).variant == "a");
  CHECK_FALSE(exact);
  CHECK(r.for_h_q(64, exact).variant == "c");  // 64 is as far from 32 as from 128: the larger wins
  CHECK(r.for_h_q(100, exact).variant == "c");
  CHECK(r.for_h_q(20, exact).variant == "a");
}

TEST_CASE("garbage_rule_text_is_a_cache_error") {
  for (const char* bad : {"", "{", "not json", "{\"split\":\"fill_sms\",\"by_h_q\":[]}",
                          "{\"split\":\"x\",\"by_h_q\":[{\"variant\":\"a\"}]}",
                          "{\"by_h_q\":[{\"variant\":\"a\"}]} trailing"}) {
    CHECK_THROWS_AS((void)DispatchRule::from_json(bad), Error);
  }
}

}  // namespace nsajit
