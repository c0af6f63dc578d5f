#!/usr/bin/env bash
# Installs everything nsa-jit needs to build and test, from Debian packages only.
# Idempotent: a second run changes nothing. The CUDA toolkit is not a Debian package
# here: it is checked for in /usr/local/cuda (NVRTC headers) and reported if missing.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  libsqlite3-dev sqlite3          # cache store
  libfmt-dev libcli11-dev doctest-dev
  libamdhip64-dev                 # HIP runtime + hipRTC + comgr (ROCm 5.2), AMD gfx90a path
  clang-19 lld-19 llvm-19         # gfx942 code objects and llvm-readelf for resource reports
  python3 python3-pip python3-pytest
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  echo "install-deps: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all Debian packages already installed"
fi

CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
if [[ ! -f "$CUDA_HOME/include/nvrtc.h" || ! -f "$CUDA_HOME/include/cuda.h" ]]; then
  echo "install-deps: WARNING: CUDA toolkit not found in $CUDA_HOME (need include/cuda.h and include/nvrtc.h)." >&2
  echo "install-deps: NVIDIA offline compilation and its tests will be skipped; install the CUDA 13 toolkit there to enable them." >&2
else
  echo "install-deps: CUDA toolkit found in $CUDA_HOME"
fi
