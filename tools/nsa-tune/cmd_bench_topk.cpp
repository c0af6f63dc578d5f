#include "runtime/error.hpp"
#include "tools/nsa-tune/commands.hpp"

namespace nsajit::cli {
void run_bench_topk(const std::vector<int>&, int, bool) {
  fail(ErrorCode::unavailable, "bench", "nsa-tune bench --family topk_select", "not built yet");
}
}  // namespace nsajit::cli
