// A child process for the multi-process cache tests (tests/unit/test_cache_processes.cpp).
//   cache_writer PATH burst WRITER COUNT START_FILE
//       waits until START_FILE exists (so all writers start together), then writes COUNT
//       winner+binary+timings groups: even ones in one transaction (record_tune_result),
//       odd ones through put_winner, put_binary and add_timings separately.
//   cache_writer PATH loop WRITER
//       writes groups 0, 1, 2 ... in one transaction each until it is killed.
// Exit 0 on success, 1 with the error on stderr, 2 on bad arguments.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>

#include "cache/store.hpp"
#include "tests/helpers/cache_writer_records.hpp"

using namespace nsajit;

namespace {

void write_group(CacheStore& store, int writer, int j, bool one_transaction) {
  WinnerRecord winner = test::writer_winner(writer, j);
  BinaryRecord binary = test::writer_binary(writer, j);
  std::vector<TimingRecord> timings = test::writer_timings(writer, j);
  if (one_transaction) {
    store.record_tune_result(winner, std::span(&binary, 1), timings);
    return;
  }
  store.put_binary(binary);
  store.add_timings(timings);
  store.put_winner(winner);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    if (args.size() == 5 && args[1] == "burst") {
      int writer = std::stoi(args[2]), count = std::stoi(args[3]);
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
      while (!std::filesystem::exists(args[4])) {
        if (std::chrono::steady_clock::now() > deadline) {
          std::fprintf(stderr, "cache_writer %d: start file %s never appeared\n", writer, args[4].c_str());
          return 1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      CacheStore store = CacheStore::open(args[0], OpenMode::read_write);
      for (int j = 0; j < count; ++j) write_group(store, writer, j, j % 2 == 0);
      return 0;
    }
    if (args.size() == 3 && args[1] == "loop") {
      int writer = std::stoi(args[2]);
      CacheStore store = CacheStore::open(args[0], OpenMode::read_write);
      for (int j = 0;; ++j) write_group(store, writer, j, true);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cache_writer: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr,
               "usage: cache_writer PATH burst WRITER COUNT START_FILE | cache_writer PATH loop WRITER\n");
  return 2;
}
