#!/usr/bin/env bash
# Exact resume: 2 epochs straight and 1 epoch + resume + 1 epoch give byte-identical final
# checkpoints (parameters, EMA target, optimizer state, queue / center, metadata), for methods
# covering LARS + EMA (byol), the MoCo queue, AdamW + DINO center + multi-crop, and a ViT with
# masks (mae), and a memory bank clustered at every epoch's start (deepclusterv2: the resumed
# run's k-means at epoch 2 runs on the bank and RNG stream the checkpoint restored), and iBOT
# (two centers, per-view masks of varying counts, a mask embedding outside the EMA), and
# data2vec (the EMA momentum linear over the run, a mask token and head outside the EMA), and the
# VAE (its reparameterisation noise from the step's counter; the epoch-2 pictures and test
# -ELBO line of the resumed run equal the straight run's).
# Usage: train_resume.sh SSLC SOURCE_DIR
set -euo pipefail
sslc=$1
src=$2
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
[ -d /usr/share/datasets/fashion-mnist ] || { echo "SKIP: Fashion-MNIST not installed"; exit 77; }
pass=0
for name in byol mocov2 dino mae deepclusterv2 ibot data2vec vae; do
  if [ "$name" = mae ] || [ "$name" = ibot ] || [ "$name" = data2vec ]; then
    # one block: the probes read one too (mae.json reads the last 4)
    narrow=(--set model.encoder.dim=16 --set model.encoder.depth=1 --set model.encoder.heads=2
            --set eval.blocks=1)
  else
    narrow=(--set model.encoder.width=4)
  fi
  [ "$name" = deepclusterv2 ] && narrow+=(--set 'loss.n_prototypes=[10, 10, 10]')
  [ "$name" = data2vec ] && narrow+=(--set loss.top_k=1)
  [ "$name" = vae ] && narrow+=(--set data.eval_limit=64)
  common=(--quiet --no-report --set data.limit=192 --set train.batch_size=32 --set train.epochs=2
          --set train.max_steps=3 --set eval.knn_every=0 "${narrow[@]}")
  "$sslc" train "$src/configs/$name.json" --out "$out/straight" "${common[@]}" > /dev/null
  "$sslc" train "$src/configs/$name.json" --out "$out/resumed" --stop-after 1 "${common[@]}" > /dev/null
  [ ! -e "$out/resumed/$name/checkpoints/epoch-2.safetensors" ] || { echo "FAIL: --stop-after ran on"; exit 1; }
  "$sslc" train --resume "$out/resumed/$name" --quiet --no-report > /dev/null
  if cmp -s "$out/straight/$name/checkpoints/last.safetensors" "$out/resumed/$name/checkpoints/last.safetensors"; then
    echo "ok: $name resumed byte-identically"
    if [ "$name" = vae ]; then
      for k in recon samples; do
        cmp "$out/straight/vae/pictures/epoch-002-$k.png" \
          "$out/resumed/vae/pictures/epoch-002-$k.png" \
          || { echo "FAIL: vae: resumed epoch-2 $k picture differs"; exit 1; }
      done
      nll() { grep -o '"test_nll": [0-9.e+-]*' "$1/vae/metrics.jsonl" | tail -1; }
      [ -n "$(nll "$out/straight")" ] && [ "$(nll "$out/straight")" = "$(nll "$out/resumed")" ] \
        || { echo "FAIL: vae: test_nll $(nll "$out/straight") vs $(nll "$out/resumed")"; exit 1; }
      echo "ok: vae pictures and test_nll of epoch 2 equal after resume"
    fi
    pass=$((pass + 1))
  else
    echo "FAIL: $name: resumed checkpoint differs"
    exit 1
  fi
done
# A corrupt checkpoint is reported by name, not a crash.
head -c 100 "$out/straight/byol/checkpoints/last.safetensors" > "$out/straight/byol/checkpoints/last.tmp"
mv "$out/straight/byol/checkpoints/last.tmp" "$out/straight/byol/checkpoints/last.safetensors"
if msg=$("$sslc" train --resume "$out/straight/byol" 2>&1); then echo "FAIL: resumed from a truncated file"; exit 1; fi
grep -q "last.safetensors" <<< "$msg" || { echo "FAIL: error does not name the file: $msg"; exit 1; }
echo "ok: truncated checkpoint reported: $msg"
echo "$((pass + 1)) passed, 0 failed"
