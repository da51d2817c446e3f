#!/usr/bin/env bash
# First README command: install what is missing, build, and run the main job: SimCLR on
# Fashion-MNIST (configs/simclr.json) for a short budget (one epoch over the 60,000 training
# images, 468 steps of batch 128: about 3 minutes on 2 cores with the build), then one line with the
# online kNN top-1 of the trained encoder, of the same encoder at random initialisation and of
# raw pixels, all on the same protocol (the config's eval section: a 10,000-image bank, 2,000
# test images, k 200, T 0.1).
# The full recipe: ./build/sslc train configs/simclr.json (17 epochs, docs/benchmarks.md)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
./build/sslc --version
./build/sslc train configs/simclr.json --out runs --quiet \
  --set train.epochs=1 "$@" | tee /tmp/sslc-demo.$$
run=$(sed -n 's/^done: \(.*\)\/checkpoints\/last.safetensors$/\1/p' /tmp/sslc-demo.$$ | tail -1)
rm -f /tmp/sslc-demo.$$
# kNN at initialisation (epoch 0) and after the last epoch, from the run's metrics
knn() { grep '"knn_top1"' "$run/metrics.jsonl" | sed -n "$1" | sed 's/.*"knn_top1": \([0-9.]*\).*/\1/'; }
init=$(knn 1p)
trained=$(knn '$p')
k=$(sed -n 's/.*"knn_k":[[:space:]]*\([0-9]*\).*/\1/p' "$run/config.json" | head -1)
t=$(sed -n 's/.*"knn_t":[[:space:]]*\([0-9.e-]*\).*/\1/p' "$run/config.json" | head -1)
ntr=$(sed -n 's/.*"knn_train_limit":[[:space:]]*\([0-9]*\).*/\1/p' "$run/config.json" | head -1)
nte=$(sed -n 's/.*"knn_test_limit":[[:space:]]*\([0-9]*\).*/\1/p' "$run/config.json" | head -1)
pixels=$(./build/sslc knn --identity "$run/config.json" --k "$k" --t "$t" \
  --train-limit "$ntr" --test-limit "$nte" | sed -n 's/.*top-1 \([0-9.]*\)%.*/\1/p')
awk -v a="$trained" -v b="$init" -v c="$pixels" -v k="$k" -v t="$t" -v n1="$ntr" -v n2="$nte" \
  'BEGIN { printf "demo: kNN top-1 (k=%s, T=%s, %s-image bank, %s test images): trained %.2f%%, random init %.2f%%, raw pixels %.2f%%\n", k, t, n1, n2, 100 * a, 100 * b, c }'
