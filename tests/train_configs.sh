#!/usr/bin/env bash
# Every shipped config builds and trains a few steps on a small Fashion-MNIST subset, with the
# encoder narrowed so the whole set runs in seconds (the real sizes are exercised by hand; see
# docs/train.md). Usage: train_configs.sh SSLC SOURCE_DIR
set -euo pipefail
sslc=$1
src=$2
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
[ -d /usr/share/datasets/fashion-mnist ] || { echo "SKIP: Fashion-MNIST not installed"; exit 77; }
n=0
for cfg in "$src"/configs/*.json; do
  name=$(basename "$cfg" .json)
  if grep -q '"pixelcnn"' "$cfg"; then
    # its own network (no encoder), 784 forward passes per sample picture: 2 samples of a small net
    narrow=(--set model.network.channels=4 --set model.network.layers=2 --set model.network.hidden=8
            --set model.network.feature_layer=1 --set data.eval_limit=16 --set eval.samples=2)
  elif grep -q '"vit' "$cfg"; then
    narrow=(--set model.encoder.dim=16 --set model.encoder.depth=1 --set model.encoder.heads=2)
  elif grep -q '"unet"' "$cfg"; then # the diffusion model: its own network, 2-level samples
    narrow=(--set model.unet.channels=8 --set model.unet.groups=4 --set model.unet.sample_steps=2)
  else
    narrow=(--set model.encoder.width=4)
  fi
  # k-means makes at most as many clusters as the memory bank holds samples (2 steps of 16)
  grep -q '"deepclusterv2"' "$cfg" && narrow+=(--set 'loss.n_prototypes=[10, 10, 10]')
  # data2vec averages the teacher's last top_k blocks: no more than the narrowed encoder's one
  grep -q '"data2vec"' "$cfg" && narrow+=(--set loss.top_k=1)
  # nor can its probes read more blocks than it has (mae.json reads the last 4)
  grep -q '"blocks"' "$cfg" && narrow+=(--set eval.blocks=1)
  # the VAE's -ELBO and pictures run over the eval split at every epoch's end: a few images
  grep -q '"vae"\|"vqvae"' "$cfg" && narrow+=(--set data.eval_limit=64)
  # BEiT predicts the codes of a tokenizer trained first (configs/beit_tokenizer.json, as tiny)
  if grep -q '"tokenizer"' "$cfg"; then
    tok="$out/tokenizer-for-$name"
    "$sslc" train "$src/configs/beit_tokenizer.json" --out "$tok" --quiet --no-report \
      --set data.limit=128 --set train.batch_size=16 --set train.epochs=1 --set train.max_steps=2 \
      --set eval.knn_every=0 --set data.eval_limit=16 --set data.workers=1 "${narrow[@]}" \
      > "$out/$name-tokenizer.log" 2>&1 ||
      { echo "FAIL: $name's tokenizer"; cat "$out/$name-tokenizer.log"; exit 1; }
    narrow+=(--set "model.tokenizer.checkpoint=$tok/beit_tokenizer/checkpoints/last.safetensors")
  fi
  "$sslc" train "$cfg" --out "$out" --quiet --no-report --set data.limit=128 --set train.batch_size=16 \
    --set train.epochs=1 --set train.max_steps=2 --set eval.knn_every=0 --set data.workers=1 "${narrow[@]}" \
    > "$out/$name.log" 2>&1 || { echo "FAIL: $name"; cat "$out/$name.log"; exit 1; }
  [ -s "$out/$name/checkpoints/last.safetensors" ] || { echo "FAIL: $name wrote no checkpoint"; exit 1; }
  grep -q '"loss_mean"' "$out/$name/metrics.jsonl" || { echo "FAIL: $name has no metrics"; exit 1; }
  echo "ok: $name"
  n=$((n + 1))
done
[ "$n" -ge 14 ] || { echo "FAIL: only $n configs"; exit 1; }
# scripts/metrics_table.py summarises the runs: one row per config with its losses
table=$(python3 "$src/scripts/metrics_table.py" "$out"/*/metrics.jsonl) || { echo "FAIL: metrics_table.py"; exit 1; }
rows=$(echo "$table" | grep -c '^| [a-z0-9_]* | 2 | ')
[ "$rows" -eq "$n" ] || { echo "FAIL: metrics_table.py gave $rows rows of 2 steps for $n runs:"; echo "$table"; exit 1; }
echo "$n passed, 0 failed"
