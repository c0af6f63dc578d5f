// Real processes (tests/helpers/cache_writer), like 8 tensor-parallel ranks sharing a cache.
#include <doctest/doctest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <cstring>
#include <set>
#include <thread>

#include "tests/helpers/cache_writer_records.hpp"
#include "tests/unit/cache_test_support.hpp"

extern char** environ;

using namespace nsajit;
using namespace nsajit::test;

namespace {

pid_t start_writer(std::vector<std::string> args) {
  std::string program = std::string(NSAJIT_TEST_HELPER_DIR) + "/cache_writer";
  args.insert(args.begin(), program);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, program.c_str(), nullptr, nullptr, argv.data(), environ);
  REQUIRE_MESSAGE(rc == 0, "cannot start " << program << ": " << std::strerror(rc));
  return pid;
}

// The exit status of a child, or -signal when a signal ended it.
int wait_for(pid_t pid) {
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

}  // namespace

TEST_CASE("eight_processes_writing_one_cache_at_once_lose_no_row_and_corrupt_nothing") {
  constexpr int kWriters = 8, kGroups = 50;
  TempDir dir;
  auto path = dir / "shared.sqlite";  // does not exist yet: the writers also race to create it
  auto start = dir / "go";
  std::vector<pid_t> pids;
  for (int w = 0; w < kWriters; ++w)
    pids.push_back(
        start_writer({path.string(), "burst", std::to_string(w), std::to_string(kGroups), start.string()}));
  write_bytes(start, {});
  for (int w = 0; w < kWriters; ++w)
    CHECK_MESSAGE(wait_for(pids[static_cast<std::size_t>(w)]) == 0, "writer " << w);

  CacheStore store = CacheStore::open(path, OpenMode::read_only);
  CHECK(store.check() == "ok");
  CHECK(store.list_winners().size() == kWriters * kGroups);
  for (int w = 0; w < kWriters; ++w) {
    for (int j = 0; j < kGroups; ++j) {
      WinnerRecord expected = writer_winner(w, j);
      CHECK(store.find_winner(expected.key) == expected);
      CHECK(store.find_binary(writer_binary(w, j).key) == writer_binary(w, j));
      CHECK(store.timings_for(writer_device(w), "sparse_mla_fwd", expected.key.topk) == writer_timings(w, j));
    }
  }
  CHECK(store.warnings().empty());
}

TEST_CASE("a_writer_killed_midway_leaves_a_consistent_file_with_only_whole_transactions") {
  TempDir dir;
  auto path = dir / "killed.sqlite";
  (void)CacheStore::open(path, OpenMode::read_write);  // exists, so the poll below can open it read-only
  pid_t pid = start_writer({path.string(), "loop", "3"});
  // Let it commit some groups, then kill it wherever it is (likely inside a transaction).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  std::size_t seen = 0;
  while (seen < 30 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    seen = CacheStore::open(path, OpenMode::read_only).list_winners().size();
  }
  REQUIRE(kill(pid, SIGKILL) == 0);
  CHECK(wait_for(pid) == -SIGKILL);
  REQUIRE(seen >= 30);

  CacheStore store = CacheStore::open(path, OpenMode::read_write);
  CHECK(store.check() == "ok");
  auto winners = store.list_winners();
  REQUIRE(winners.size() >= seen);
  // Groups are written in order, one transaction each: exactly groups 0 .. n-1, each whole.
  std::set<int> topks;
  for (const auto& w : winners) topks.insert(w.key.topk);
  for (int j = 0; j < static_cast<int>(winners.size()); ++j) {
    CHECK(topks.count(writer_winner(3, j).key.topk) == 1);
    CHECK(store.find_binary(writer_binary(3, j).key) == writer_binary(3, j));
    CHECK(store.timings_for(writer_device(3), "sparse_mla_fwd", writer_winner(3, j).key.topk) ==
          writer_timings(3, j));
  }
  int n = static_cast<int>(winners.size());
  CHECK_FALSE(store.find_binary(writer_binary(3, n).key).has_value());
  CHECK(store.timings_for(writer_device(3), "sparse_mla_fwd", writer_winner(3, n).key.topk).empty());
  // And it is still a working cache.
  store.put_winner(writer_winner(4, 0));
  CHECK(store.find_winner(writer_winner(4, 0).key).has_value());
}
