#include "runtime/dispatch_rule.hpp"

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <map>

#include "runtime/error.hpp"

namespace nsajit {
namespace {

std::string quote(std::string_view s) {
  std::string r = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') r += '\\';
    r += c;
  }
  return r + "\"";
}

// A reader for the small JSON subset the rule uses: objects, arrays, strings, numbers.
class Reader {
 public:
  explicit Reader(std::string_view s) : s_(s) {}
  [[noreturn]] void bad(std::string_view why) const {
    fail(ErrorCode::cache_error, "parsing a dispatch rule", "runtime/dispatch_rule",
         fmt::format("{} at offset {} of '{}'", why, i_, s_.substr(0, 200)));
  }
  void ws() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  bool eat(char c) {
    ws();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!eat(c)) bad(fmt::format("expected '{}'", c));
  }
  std::string string() {
    expect('"');
    std::string r;
    while (i_ < s_.size() && s_[i_] != '"') {
      if (s_[i_] == '\\' && i_ + 1 < s_.size()) ++i_;
      r += s_[i_++];
    }
    if (i_ >= s_.size()) bad("unterminated string");
    ++i_;
    return r;
  }
  double number() {
    ws();
    const char* begin = s_.data() + i_;
    char* end = nullptr;
    const std::string tmp(begin, std::min<std::size_t>(64, s_.size() - i_));
    const double v = std::strtod(tmp.c_str(), &end);
    if (end == tmp.c_str()) bad("expected a number");
    i_ += static_cast<std::size_t>(end - tmp.c_str());
    return v;
  }
  bool at_end() {
    ws();
    return i_ == s_.size();
  }
  char peek() {
    ws();
    return i_ < s_.size() ? s_[i_] : '\0';
  }

 private:
  std::string_view s_;
  std::size_t i_ = 0;
};

std::string entries_json(const std::vector<RuleEntry>& entries) {
  std::string r = "[";
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    r += fmt::format("{}{{\"h_q\":{},\"variant\":{},\"binary\":{},\"median_ms\":{:.6g}}}", i ? "," : "",
                     e.h_q, quote(e.variant), quote(e.binary_key), e.median_ms);
  }
  return r + "]";
}

std::vector<RuleEntry> parse_entries(Reader& rd) {
  std::vector<RuleEntry> entries;
  rd.expect('[');
  bool first_entry = true;
  while (!rd.eat(']')) {
    if (!first_entry) rd.expect(',');
    first_entry = false;
    RuleEntry e;
    rd.expect('{');
    bool first_field = true;
    while (!rd.eat('}')) {
      if (!first_field) rd.expect(',');
      first_field = false;
      const std::string f = rd.string();
      rd.expect(':');
      if (f == "h_q")
        e.h_q = static_cast<int>(rd.number());
      else if (f == "variant")
        e.variant = rd.string();
      else if (f == "binary")
        e.binary_key = rd.string();
      else if (f == "median_ms")
        e.median_ms = rd.number();
      else
        rd.bad(fmt::format("unknown field '{}'", f));
    }
    if (e.variant.empty()) rd.bad("an entry has no variant");
    entries.push_back(std::move(e));
  }
  return entries;
}

// The entry tuned on h_q, else the nearest tuned head count (log scale; ties: the larger).
const RuleEntry* nearest(const std::vector<RuleEntry>& entries, int h_q, bool& exact) {
  const RuleEntry* best = nullptr;
  double best_distance = 1e300;
  for (const auto& e : entries) {
    if (e.h_q == 0 || e.h_q == h_q) {
      exact = true;
      return &e;
    }
    const double d = std::fabs(std::log2(static_cast<double>(e.h_q) / h_q));
    if (best == nullptr || d < best_distance - 1e-9 ||
        (std::fabs(d - best_distance) <= 1e-9 && e.h_q > best->h_q)) {
      best = &e;
      best_distance = d;
    }
  }
  exact = false;
  return best;
}

}  // namespace

std::string DispatchRule::to_json() const {
  std::string r = fmt::format("{{\"split\":{},\"by_h_q\":{}", quote(split), entries_json(entries));
  if (!decode_entries.empty()) r += fmt::format(",\"decode_by_h_q\":{}", entries_json(decode_entries));
  return r + "}";
}

DispatchRule DispatchRule::from_json(std::string_view json) {
  Reader rd(json);
  DispatchRule rule;
  rule.split.clear();
  rd.expect('{');
  bool first = true;
  while (!rd.eat('}')) {
    if (!first) rd.expect(',');
    first = false;
    const std::string key = rd.string();
    rd.expect(':');
    if (key == "split") {
      rule.split = rd.string();
    } else if (key == "by_h_q") {
      rule.entries = parse_entries(rd);
    } else if (key == "decode_by_h_q") {
      rule.decode_entries = parse_entries(rd);
    } else {
      rd.bad(fmt::format("unknown key '{}'", key));
    }
  }
  if (!rd.at_end()) rd.bad("trailing text");
  if (rule.split != "fill_sms" && rule.split != "none")
    rd.bad(fmt::format("unknown split rule '{}'", rule.split));
  if (rule.entries.empty()) rd.bad("the rule has no entries");
  return rule;
}

const RuleEntry& DispatchRule::for_h_q(int h_q, bool& exact) const {
  if (entries.empty())
    fail(ErrorCode::not_found, "choosing a variant", "runtime/dispatch_rule", "the rule has no entries");
  return *nearest(entries, h_q, exact);
}

const RuleEntry* DispatchRule::decode_for(const RuleEntry& main) const {
  for (const auto& e : decode_entries)
    if (e.h_q == main.h_q) return &e;
  return nullptr;
}

}  // namespace nsajit
