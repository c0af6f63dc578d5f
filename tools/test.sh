#!/usr/bin/env bash
# Installs the dependencies, builds, and runs every test. This is the README's test command;
# CI runs it (.ci/run).
#  1. An AddressSanitizer + UBSan build runs the C++ CPU suite and the GPU suite (which CTest
#     reports as "Skipped", with the reason, on a machine without a GPU).
#  2. A plain build runs the AMD compile sweep (every variant through hipRTC and clang-19;
#     hipRTC's LLVM is not ASan-clean at thread exit, and the sweep is 4x slower under ASan)
#     and the Python package's tests (the library is loaded into a Python without ASan).
set -euo pipefail
cd "$(dirname "$0")/.."

./tools/install-deps.sh
JOBS=$(nproc)
SAN_DIR=${BUILD_DIR:-build-test}
cmake -S . -B "$SAN_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNSAJIT_SANITIZE=ON
cmake --build "$SAN_DIR" -j"$JOBS"
# Leak checking is off: NVRTC and hipRTC keep process-lifetime allocations of their own.
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0} ctest --test-dir "$SAN_DIR" --output-on-failure -E amd_compile

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$JOBS"
ctest --test-dir build --output-on-failure -R amd_compile
NSA_JIT_LIBRARY="$PWD/build/libnsajit.so" /usr/bin/python3 -m pytest -q python/tests
