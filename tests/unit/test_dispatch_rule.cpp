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

TEST_CASE("dispatch_rule_decode_entries_round_trip_and_old_rules_have_none") {
  DispatchRule r;
  r.entries = {{16, "nsa_fwd_sm90a_d576_bh16_bt64_w8_st1_mma2_sx2", "00aa", 1.45},
               {128, "nsa_fwd_sm90a_d576_bh64_bt64_w12_st2_mma1_ws3", "00bb", 4.5}};
  r.decode_entries = {{16, "nsa_fwd_sm90a_d576_bh16_bt64_w12_st2_mma2_sx2", "00cc", 0.031}};
  const std::string json = r.to_json();
  CHECK(json.find("decode_by_h_q") != std::string::npos);
  const DispatchRule back = DispatchRule::from_json(json);
  REQUIRE(back.entries.size() == 2);
  REQUIRE(back.decode_entries.size() == 1);
  CHECK(back.decode_entries[0].variant == "nsa_fwd_sm90a_d576_bh16_bt64_w12_st2_mma2_sx2");
  CHECK(back.decode_entries[0].binary_key == "00cc");
  CHECK(back.decode_entries[0].median_ms == doctest::Approx(0.031));
  // A decode entry goes with the main entry of its h_q only: h_q 128 has none.
  bool exact = false;
  REQUIRE(back.decode_for(back.for_h_q(16, exact)) != nullptr);
  CHECK(back.decode_for(back.for_h_q(20, exact))->variant == back.decode_entries[0].variant);
  CHECK(back.decode_for(back.for_h_q(128, exact)) == nullptr);
  // A rule without decode entries (every rule before session 8) has none, and writes none.
  r.decode_entries.clear();
  CHECK(r.to_json().find("decode") == std::string::npos);
  const DispatchRule old = DispatchRule::from_json(
      R"({"split":"fill_sms","by_h_q":[{"h_q":16,"variant":"a","binary":"1","median_ms":1}]})");
  CHECK(old.decode_entries.empty());
  CHECK(old.decode_for(old.entries[0]) == nullptr);
  CHECK_THROWS_AS((void)DispatchRule::from_json(
                      R"({"split":"fill_sms","by_h_q":[{"variant":"a"}],"decode_by_h_q":[{"h_q":16}]})"),
                  Error);  // a decode entry without a variant
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
