#include "runtime/error.hpp"
#include "tools/nsa-tune/commands.hpp"

namespace nsajit::cli {
void run_tune_topk_select(const std::vector<int>&, const std::string&, const std::string&) {
  fail(ErrorCode::unavailable, "tune", "nsa-tune tune --family topk_select", "not built yet");
}
}  // namespace nsajit::cli
