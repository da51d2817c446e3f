#!/usr/bin/env bash
# First README command: install what is missing, build, and run the main job: SimCLR on
# Fashion-MNIST (configs/simclr.json) for a short budget (under 10 minutes on 2 cores: one epoch
# over a 30,720-image subset, 240 steps of batch 128), printing the online kNN accuracy of the
# trained encoder next to the same encoder at random initialisation.
# A full run: ./build/sslc train configs/simclr.json --set train.epochs=100
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
./build/sslc --version
./build/sslc train configs/simclr.json --out runs \
  --set data.limit=30720 --set train.epochs=1 "$@"
