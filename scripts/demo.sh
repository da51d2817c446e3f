#!/usr/bin/env bash
# First README command: install what is missing, build, run the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
./build/sslc --version
./build/sslc selfcheck
