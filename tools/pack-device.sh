#!/usr/bin/env bash
# Packs what the GPU machine needs from a local build into build-dev/ (stripped, < 64 MiB),
# to be carried by the device tool: tools/device-check.sh runs it with BUILD=build-dev.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=${1:-build}
rm -rf build-dev && mkdir -p build-dev/tests
cp -a "$SRC"/libnsajit.so* build-dev/
cp "$SRC"/nsa-tune build-dev/
cp "$SRC"/tests/nsajit_gpu_tests "$SRC"/tests/nsajit_tests build-dev/tests/
for helper in "$SRC"/tests/cache_writer "$SRC"/tests/dispatch_worker; do [[ -x $helper ]] && cp "$helper" build-dev/tests/; done
strip --strip-debug build-dev/libnsajit.so.*.*.* build-dev/nsa-tune build-dev/tests/* 2>/dev/null || true
du -sh build-dev
