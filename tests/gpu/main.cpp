// GPU suite entry: runs the doctest cases only when a GPU is present; otherwise prints why
// and exits 77, which CTest reports as "Skipped" (never as passed).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <exception>

#include "tests/gpu/gpu_fixture.hpp"

int main(int argc, char** argv) {
  std::string reason;
  if (!nsajit::test::gpu_available(reason)) {
    std::printf("SKIPPED: GPU tests need a GPU: %s\n", reason.c_str());
    return 77;
  }
  doctest::Context context(argc, argv);
  return context.run();
}
