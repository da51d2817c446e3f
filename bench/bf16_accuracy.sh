#!/usr/bin/env bash
# Does bf16 learn what fp32 learns? (#23's accuracy goal: SimCLR on Fashion-MNIST, 5 epochs, bf16
# kNN within 0.5 points of fp32, same seed.) Trains CONFIG twice from one seed, once with
# train.precision fp32 and once bf16, then probes both checkpoints with the benchmark's kNN
# protocol (all 60,000 training images as the bank, all 10,000 test images, k=200 T=0.1, and
# k=20 T=0.07) and prints both and their difference.
#
#   bench/bf16_accuracy.sh [CONFIG] [EPOCHS] [KEY=VALUE...]   default configs/simclr.json 5
#     KEY=VALUE: more --set overrides for both runs (a quick look: data.limit=2048)
#   THREADS=1 (per run)  PARALLEL=1 (the two runs side by side, one per core; 0: one after the
#   other)  OUT=runs/bf16-check  BUILD_DIR=build
# Exit 77 where bf16 cannot run (no oneDNN in the build, or a CPU without AVX512-BF16/AMX).
set -euo pipefail
cd "$(dirname "$0")/.."
cfg=${1:-configs/simclr.json}
epochs=${2:-5}
shift $(($# < 2 ? $# : 2))
sets=()
for kv in "$@"; do sets+=(--set "$kv"); done
SSLC=${BUILD_DIR:-build}/sslc
THREADS=${THREADS:-1}
OUT=${OUT:-runs/bf16-check}
[ -x "$SSLC" ] || BUILD_DIR=${BUILD_DIR:-build} bash scripts/build.sh >/dev/null
name=$(basename "$cfg" .json)
if ! "$SSLC" bench "$cfg" --precision bf16 --steps 1 --batch 8 --no-peak --threads 1 >/dev/null 2>/tmp/bf16_probe.$$; then
  echo "bf16_accuracy.sh: bf16 cannot run here: $(tail -1 /tmp/bf16_probe.$$)" >&2
  rm -f /tmp/bf16_probe.$$
  exit 77
fi
rm -f /tmp/bf16_probe.$$
mkdir -p "$OUT"
train() {
  "$SSLC" train "$cfg" --out "$OUT" --threads "$THREADS" --quiet --no-report \
    --set "name=$name-${epochs}ep-$1" --set "train.epochs=$epochs" --set "train.precision=$1" \
    "${sets[@]}" >"$OUT/$name-${epochs}ep-$1.log" 2>&1
}
start=$(date +%s)
if [ "${PARALLEL:-1}" = 1 ]; then
  train fp32 & p1=$!
  train bf16 & p2=$!
  wait $p1 && wait $p2
else
  train fp32
  train bf16
fi
echo "trained both in $(( ($(date +%s) - start) / 60 )) min ($THREADS thread(s) each)" >&2
declare -A acc
for p in fp32 bf16; do
  ck=$OUT/$name-${epochs}ep-$p/checkpoints/last.safetensors
  line=$("$SSLC" knn "$ck" --k 20,200 --t 0.07,0.1 --train-limit 0 --test-limit 0 \
         --threads "$(nproc)")
  printf '%s\n' "$p:" "$line"
  acc[$p]=$(printf '%s\n' "$line" | awk '$1 == "k=200" && $2 == "T=0.1" {sub("%", "", $4); print $4}')
done
echo "kNN k200 T0.1: fp32 ${acc[fp32]}%, bf16 ${acc[bf16]}%, bf16 - fp32 = $(
  awk -v a="${acc[bf16]}" -v b="${acc[fp32]}" 'BEGIN {printf "%+.2f", a - b}') points"
