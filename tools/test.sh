#!/usr/bin/env bash
# Installs the dependencies, builds with AddressSanitizer + UBSan, and runs every test:
# the C++ CPU suite, the GPU suite (reported as skipped, with the reason, when no GPU is
# present) and the Python package's tests. This is the README's test command; CI runs it.
set -euo pipefail
cd "$(dirname "$0")/.."

./tools/install-deps.sh
BUILD_DIR=${BUILD_DIR:-build-test}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNSAJIT_SANITIZE=ON
cmake --build "$BUILD_DIR" -j"$(nproc)"
# Leak checking is off: NVRTC and hipRTC keep process-lifetime allocations of their own.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
ctest --test-dir "$BUILD_DIR" --output-on-failure
# The Python package loads the library without the sanitizer runtime, so it uses a plain build.
if [[ -d python/tests ]]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build -j"$(nproc)" --target nsajit
  NSA_JIT_LIBRARY="$PWD/build/libnsajit.so" /usr/bin/python3 -m pytest -q python/tests
fi
