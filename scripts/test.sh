#!/usr/bin/env bash
# Second README command: install what is missing, build with -Werror and run the whole suite.
#   scripts/test.sh          Release build in build-test/
#   scripts/test.sh --asan   Debug build with AddressSanitizer + UBSan in build-asan/
# ctest writes BUILD_DIR/junit.xml; .ci/run fails when it lists a skipped test.
set -euo pipefail
cd "$(dirname "$0")/.."
# python3-numpy: the .npy tests check that numpy reads our files and we read its files (and
# tests/cli.sh recomputes kNN over sslc embed's output); chromium: tests/report.sh renders the
# HTML report in a headless browser; python3: tests/method_parity_coverage.py checks every config
# has its step-parity fixture (the fixtures themselves are committed: no torch is needed);
# libssl-dev: tests/openssl_headers.sh and openssl_link.sh build programs that use OpenSSL too;
# python3-torch, python3-torchvision, python3-pil: tests/weights_torch.sh loads sslc's exported
# weights into Debian's PyTorch (torchvision's ResNet-18, a timm-named ViT) and compares features
bash scripts/setup.sh python3 python3-numpy chromium libssl-dev \
  python3-torch python3-torchvision python3-pil
if [ "${1:-}" = "--asan" ]; then
  BUILD_DIR=build-asan BUILD_TYPE=Debug bash scripts/build.sh -DSSL_WERROR=ON -DSSL_SANITIZE=ON
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1
  ctest --test-dir build-asan --output-on-failure --output-junit junit.xml -j2
else
  BUILD_DIR=build-test bash scripts/build.sh -DSSL_WERROR=ON
  ctest --test-dir build-test --output-on-failure --output-junit junit.xml -j2
fi
