#!/usr/bin/env bash
# Configure and build into build/ (Release, host CPU). Extra arguments go to cmake, e.g.
#   scripts/build.sh -DSSL_NATIVE=OFF        portable build
#   BUILD_DIR=build-asan scripts/build.sh -DCMAKE_BUILD_TYPE=Debug -DSSL_SANITIZE=ON
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}" "$@" >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"
