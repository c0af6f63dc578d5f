// The rule a tuned winner carries: which variant serves which h_q, and how the topk split is
// derived from s_q and the multiprocessor count. Stored as JSON in the cache's winners.rule.
// The tune is keyed on topk only; this rule is how one winner adapts to every call shape.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace nsajit {

struct RuleEntry {
  int h_q = 0;             // the head count this entry was tuned on (0: any, e.g. topk_select)
  std::string variant;     // variant name
  std::string binary_key;  // content key of its binary in the cache
  double median_ms = 0;    // its tuned time (informational)
};

struct DispatchRule {
  std::vector<RuleEntry> entries;
  std::string split = "fill_sms";  // "fill_sms": split topk when the grid leaves SMs idle; "none"
  // Decode: per h_q, a variant for the calls whose grid leaves SMs idle (few rows: the main
  // entry's kernel would split topk), where it beat the main entry at the tuner's decode shape.
  // Empty: the main entries serve every call.
  std::vector<RuleEntry> decode_entries;

  [[nodiscard]] std::string to_json() const;
  // Throws Error(cache_error) on text that is not a rule.
  [[nodiscard]] static DispatchRule from_json(std::string_view json);

  // The entry for h_q: exact when tuned, else the nearest tuned head count (ties: larger).
  // `exact` tells which. Throws Error(not_found) when the rule is empty.
  [[nodiscard]] const RuleEntry& for_h_q(int h_q, bool& exact) const;
  // The decode entry tuned beside the main entry `main` (same h_q), or null: a head count whose
  // main winner was also the fastest at the decode shape has none, and then `main` serves.
  [[nodiscard]] const RuleEntry* decode_for(const RuleEntry& main) const;
};

}  // namespace nsajit
