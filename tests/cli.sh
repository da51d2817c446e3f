#!/usr/bin/env bash
# The sslc command line: help on every subcommand, exit codes (0 ok, 1 runtime error, 2 usage or
# config error), config errors naming the key path, and train -> info / embed / knn on a tiny run.
# Usage: cli.sh SSLC SOURCE_DIR
set -uo pipefail
sslc=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/cli_lib.sh"
for cmd in train embed knn linear zeroshot info selfcheck; do expect 0 "usage" -- "$sslc" $cmd --help; done
expect 0 "train CONFIG" -- "$sslc" --help
expect 2 "unknown command" -- "$sslc" fly
expect 2 "" -- "$sslc" train
expect 2 "did you mean 'limit'" -- "$sslc" train "$src/configs/simclr.json" --set data.limt=5
expect 2 "train.batch_size" -- "$sslc" train "$src/configs/simclr.json" --set train.batch_size=-3
expect 1 "" -- "$sslc" train --resume "$tmp/nowhere"
# without the dataset the checks above ran, the training-run checks below cannot: exit 77 (skip)
[ -d /usr/share/datasets/fashion-mnist ] ||
  { echo "SKIP: Fashion-MNIST not installed ($pass checks passed; the training-run checks did not run)"; exit 77; }
expect 0 "done" -- "$sslc" train "$src/configs/simclr.json" --out "$tmp/runs" --quiet \
  --set data.limit=128 --set train.batch_size=32 --set train.max_steps=2 --set train.epochs=1 \
  --set eval.knn_every=0 --set model.encoder.width=4
ckpt="$tmp/runs/simclr/checkpoints/last.safetensors"
metrics="$tmp/runs/simclr/metrics.jsonl"
# the run ends with its report (charts and the PCA scatter), unless --no-report
grep -q 'class="pt"' "$tmp/runs/simclr/report.html" || fail "sslc train wrote no report.html with a scatter"
epoch_line=$(grep '"loss_mean"' "$metrics" | grep '"rankme"' | grep '"alignment"' | grep '"uniformity"')
[ -n "$epoch_line" ] \
  || fail "epoch line without collapse metrics: $(cat "$metrics")"
if /usr/bin/python3 -c 'import json' 2>/dev/null; then
  /usr/bin/python3 -c 'import json, sys; [json.loads(l) for l in open(sys.argv[1])]' "$metrics" \
    || fail "metrics.jsonl is not JSON lines"
fi
expect 0 "epoch       1" -- "$sslc" info "$ckpt"
expect 0 "encoder.conv1.weight" -- "$sslc" info "$ckpt" --tensors --no-metrics
grep -q "^collapse" <<< "$out" && fail "info --no-metrics printed collapse metrics"
expect 0 "collapse    pooled encoder features of 200 eval-split images" -- "$sslc" info "$ckpt" --metrics-limit 200
for key in rankme embedding_std alignment uniformity; do
  [ "$(echo "$out" | grep -c "^  $key ")" = 2 ] || fail "info lacks logged + measured $key: $out"
done
grep -q "^logged      $tmp/runs/simclr/metrics.jsonl, epoch 1" <<< "$out" || fail "info: no logged metrics: $out"
expect 0 "64 x 32 float32" -- "$sslc" embed "$ckpt" --out "$tmp/f.npy" --limit 64
head -c 6 "$tmp/f.npy" | grep -q "NUMPY" || fail "f.npy is not a .npy file"
[ -s "$tmp/f.labels.npy" ] || fail "no labels file"
expect 0 "k=20 " -- "$sslc" knn "$ckpt" --k 20 --t 0.07 --train-limit 256 --test-limit 64
# --blocks: the readout of several ViT blocks (D per block); a ResNet has none to read
expect 1 "'eval.blocks'" -- "$sslc" embed "$ckpt" --blocks 2 --out "$tmp/b.npy" --limit 8
expect 1 "--readout and --bn-stats read a training checkpoint" -- "$sslc" knn --identity "$ckpt" --blocks 2
expect 1 "--readout and --bn-stats read a training checkpoint" -- "$sslc" knn --identity "$ckpt" --readout mid@5
expect 1 "no readout choice" -- "$sslc" knn "$ckpt" --readout mid@5 --train-limit 16 --test-limit 16
expect 0 "done" -- "$sslc" train "$src/configs/mae.json" --out "$tmp/runs" --quiet \
  --set data.limit=64 --set train.batch_size=32 --set train.max_steps=1 --set eval.knn_every=0 \
  --set model.encoder.dim=16 --set model.encoder.depth=4 --set model.encoder.heads=2
vit="$tmp/runs/mae/checkpoints/last.safetensors"
expect 0 "16 x 64 float32" -- "$sslc" embed "$vit" --out "$tmp/v4.npy" --limit 16  # eval.blocks 4
expect 0 "16 x 16 float32" -- "$sslc" embed "$vit" --blocks 1 --out "$tmp/v1.npy" --limit 16
expect 0 "16 x 48 float32" -- "$sslc" embed "$vit" --blocks 3 --out "$tmp/v3.npy" --limit 16
expect 1 "more blocks than the ViT has" -- "$sslc" embed "$vit" --blocks 5 --out "$tmp/v.npy"
expect 0 "majority" -- "$sslc" knn "$ckpt" --k 5 --majority --train-limit 256 --test-limit 64
expect 2 "" -- "$sslc" knn "$ckpt" --k 0
expect 0 "" -- "$sslc" embed "$ckpt" --split train --limit 256 --out "$tmp/tr.npy"
expect 0 "" -- "$sslc" embed "$ckpt" --split test --limit 64 --out "$tmp/te.npy"
# knn and linear on embed's files give what they give embedding the checkpoint themselves
expect 0 "k=20 " -- "$sslc" knn "$ckpt" --k 20,200 --t 0.07 --train-limit 256 --test-limit 64
direct=$(grep '^k=' <<< "$out")
expect 0 "bank 256 x 32, test 64" -- "$sslc" knn --train-features "$tmp/tr.npy" \
  --test-features "$tmp/te.npy" --k 20,200 --t 0.07
[ "$(grep '^k=' <<< "$out")" = "$direct" ] || fail "knn on .npy features: $out vs $direct"
expect 0 "bank 200 x 32, test 50" -- "$sslc" knn --train-features "$tmp/tr.npy" \
  --test-features "$tmp/te.npy" --train-limit 200 --test-limit 50
expect 0 "best epoch" -- "$sslc" linear "$ckpt" --epochs 2 --lr 1e-3,3e-2 --train-limit 256 \
  --test-limit 64
direct=$(grep 'best epoch' <<< "$out")
expect 0 "best epoch" -- "$sslc" linear --train-features "$tmp/tr.npy" \
  --test-features "$tmp/te.npy" --epochs 2 --lr 1e-3,3e-2
[ "$(grep 'best epoch' <<< "$out")" = "$direct" ] || fail "linear on .npy features: $out vs $direct"
expect 1 "go together" -- "$sslc" knn --train-features "$tmp/tr.npy"
expect 1 "go together" -- "$sslc" linear "$ckpt" --train-features "$tmp/tr.npy" \
  --test-features "$tmp/te.npy"
expect 1 "32-dimensional" -- "$sslc" knn --train-features "$tmp/tr.npy" --test-features "$tmp/v1.npy"
cp "$tmp/tr.npy" "$tmp/lone.npy"
expect 1 "lone.labels.npy" -- "$sslc" knn --train-features "$tmp/lone.npy" --test-features "$tmp/te.npy"
cp "$tmp/te.labels.npy" "$tmp/lone.labels.npy"
expect 1 "one label per row" -- "$sslc" knn --train-features "$tmp/lone.npy" \
  --test-features "$tmp/te.npy"
# sslc knn agrees with an independent kNN (numpy, float64) over sslc embed's features
if /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
  expect 0 "k=20 " -- "$sslc" knn "$ckpt" --k 20 --t 0.07 --train-limit 256 --test-limit 64
  ours=$(echo "$out" | sed -n 's/.*top-1 \([0-9.]*\)%.*/\1/p')
  ref=$(/usr/bin/python3 - "$tmp" <<'PY'
import sys, numpy as np
d = sys.argv[1]
tr, te = np.load(d + "/tr.npy").astype(np.float64), np.load(d + "/te.npy").astype(np.float64)
ytr, yte = np.load(d + "/tr.labels.npy"), np.load(d + "/te.labels.npy")
tr /= np.maximum(np.linalg.norm(tr, axis=1, keepdims=True), 1e-12)
te /= np.maximum(np.linalg.norm(te, axis=1, keepdims=True), 1e-12)
sim = te @ tr.T
hit = 0
for i in range(len(te)):
    nn = np.argsort(-sim[i], kind="stable")[:20]
    score = np.zeros(10)
    np.add.at(score, ytr[nn], np.exp((sim[i, nn] - sim[i, nn[0]]) / 0.07))
    hit += int(np.argmax(score) == yte[i])
print("%.2f" % (100.0 * hit / len(te)))
PY
)
  [ -n "$ours" ] && [ "$ours" = "$ref" ] || fail "sslc knn top-1 $ours% vs numpy over embed's .npy $ref%"
  pass=$((pass + 1))
else
  echo "skip: /usr/bin/python3 with numpy not available (numpy kNN cross-check)"
fi
expect 0 "best epoch" -- "$sslc" linear "$ckpt" --epochs 2 --train-limit 256 --test-limit 64
# a sweep of lr x wd: one result per pair, the reported one the best on validation (first on ties)
expect 0 "best epoch" -- "$sslc" linear "$ckpt" --epochs 2 --lr 1e-3,3e-2 --wd 0,1e-2 \
  --train-limit 256 --test-limit 64
[ "$(grep -c '^lr .* best epoch' <<< "$out")" = 4 ] || fail "linear sweep: not 4 results: $out"
want=$(grep '^lr .* best epoch' <<< "$out" | awk '{ v = $10; sub("%,", "", v); if (NR == 1 || v + 0 > b) { b = v + 0; s = "lr " $2 ", wd " $4 } } END { print s }')
grep -q "^best epoch .*, $want)" <<< "$out" || fail "linear sweep: best is not '$want': $out"
# identity encoder: raw pixels of the config's (or the checkpoint's) dataset; full-data figures
# (79.1% / 85.5% / ~84%) are checked by test_eval_knn and test_eval_probe
expect 0 "top-1 70.20%" -- "$sslc" knn --identity "$src/configs/simclr.json" --train-limit 2000 --test-limit 500
grep -q "bank 2000 x 784 raw pixels" <<< "$out" || fail "knn --identity header: $out"
expect 0 "top-1 79.20%" -- "$sslc" knn --identity "$ckpt" --euclidean --majority --k 5 --train-limit 2000 --test-limit 500
expect 0 "raw pixels" -- "$sslc" linear --identity "$ckpt" --epochs 2 --train-limit 1000 --test-limit 200
expect 1 "nowhere.json" -- "$sslc" knn --identity "$tmp/nowhere.json"
# zero-shot: a CLIP run of 2 steps; accuracy printed as a percentage in [0, 100]
expect 2 "clip, siglip or coca" -- "$sslc" zeroshot "$ckpt" --limit 16
expect 0 "done" -- "$sslc" train "$src/configs/clip.json" --out "$tmp/runs" --quiet \
  --set data.limit=128 --set train.batch_size=32 --set train.max_steps=2 \
  --set eval.knn_every=0 --set model.encoder.width=4 --set model.text.width=16 \
  --set model.text.layers=1 --set model.text.heads=2 --set data.workers=1 --no-report
clip="$tmp/runs/clip/checkpoints/last.safetensors"
[ ! -e "$tmp/runs/clip/report.html" ] || fail "--no-report wrote report.html"
expect 0 "top-5" -- "$sslc" zeroshot "$clip" --limit 64
grep -q '^zero-shot, 64 images, template "a photo of a {}"$' <<< "$out" || fail "zeroshot header: $out"
top1=$(echo "$out" | sed -n 's/^top-1 \([0-9.]*\)%.*/\1/p')
awk -v a="$top1" 'BEGIN { exit !(a != "" && a >= 0 && a <= 100) }' || fail "zeroshot top-1 '$top1'"
expect 0 "not in the checkpoint's vocabulary" -- "$sslc" zeroshot "$clip" --limit 8 --template "an image of {}"
expect 2 "exactly once" -- "$sslc" zeroshot "$clip" --template "no placeholder"
# captions: a CoCa run of 2 steps; one line per image, the reference caption and a generated one
# made of the vocabulary's words; a CLIP checkpoint has no decoder
expect 2 "no caption decoder" -- "$sslc" caption "$clip" --n 2
expect 0 "done" -- "$sslc" train "$src/configs/coca.json" --out "$tmp/runs" --quiet \
  --set data.limit=128 --set train.batch_size=32 --set train.max_steps=2 \
  --set eval.knn_every=0 --set model.encoder.width=4 --set model.text.width=16 \
  --set model.text.layers=1 --set model.text.heads=2 --set model.decoder.heads=2 \
  --set model.decoder.pooler_heads=2 --set data.workers=1 --no-report
coca="$tmp/runs/coca/checkpoints/last.safetensors"
# its log has both terms: loss = 1 x loss_clip + 2 x loss_caption (open_clip's weights)
python3 - "$tmp/runs/coca/metrics.jsonl" <<'PY' || fail "coca: loss parts"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"loss_caption"' in l]
assert rows, "no loss_caption in the log"
for r in rows:
    assert abs(r["loss"] - (r["loss_clip"] + 2 * r["loss_caption"])) <= 1e-4 * r["loss"], r
PY
expect 0 '"a photo of a ' -- "$sslc" caption "$coca" --n 3
[ "$(grep -c '  ->  "' <<< "$out")" = 3 ] || fail "caption: not 3 captions: $out"
words='a\|photo\|of\|t\|shirt\|top\|trouser\|pullover\|dress\|coat\|sandal\|sneaker\|bag\|ankle\|boot'
grep -v "  ->  \"\(\($words\) \?\)*\"\$" <<< "$out" && fail "caption: words outside the vocabulary: $out"
expect 0 "top-1" -- "$sslc" zeroshot "$coca" --limit 32
expect 2 "decoder" -- "$sslc" train "$src/configs/coca.json" --set model.text.causal=false
# samples: a DDPM run of 2 steps; the grid is a PNG of 16 pictures in 4 rows (4 x 28 + 3 x 2 +
# 2 x 2 pixels a side), the same seed gives the same file; --steps only for the diffusion model
expect 2 "draws no samples" -- "$sslc" sample "$clip" --out "$tmp/s.png"
expect 0 "done" -- "$sslc" train "$src/configs/ddpm.json" --out "$tmp/runs" --quiet \
  --set data.limit=64 --set train.batch_size=16 --set train.max_steps=2 --set eval.knn_every=0 \
  --set model.unet.channels=8 --set model.unet.groups=4 --set model.unet.sample_steps=2 \
  --set data.workers=1 --set data.eval_limit=16 --no-report
ddpm="$tmp/runs/ddpm/checkpoints/last.safetensors"
expect 0 "16 samples" -- "$sslc" sample "$ddpm" --out "$tmp/s1.png" --n 16 --cols 4 --steps 3
expect 0 "16 samples" -- "$sslc" sample "$ddpm" --out "$tmp/s2.png" --n 16 --cols 4 --steps 3
cmp -s "$tmp/s1.png" "$tmp/s2.png" || fail "sample: the same seed gave other samples"
size=$(python3 -c 'import struct,sys; d=open(sys.argv[1],"rb").read(24); print(*struct.unpack(">II", d[16:24]))' "$tmp/s1.png")
[ "$size" = "122 122" ] || fail "sample: grid of $size pixels, not 122 122"
expect 0 "16 samples" -- "$sslc" sample "$ddpm" --out "$tmp/s3.png" --n 16 --cols 4 --steps 3 --seed 1
cmp -s "$tmp/s1.png" "$tmp/s3.png" && fail "sample: another seed gave the same samples"
expect 1 "sampling levels" -- "$sslc" sample "$ddpm" --out "$tmp/s.png" --steps 1001
expect 2 "no encoder to export" -- "$sslc" export "$ddpm" --out "$tmp/enc.safetensors"
expect 2 "sslc sample: --n '0'" -- "$sslc" sample "$ddpm" --out "$tmp/s.png" --n 0
echo "garbage" > "$tmp/bad.safetensors"
expect 1 "bad.safetensors" -- "$sslc" info "$tmp/bad.safetensors"
echo "$pass passed, 0 failed"
