#!/usr/bin/env bash
# Weights in and out (issue 18): sslc export writes a checkpoint's encoder with torchvision's /
# timm's names; Debian's PyTorch loads it with load_state_dict(strict=True) (torchvision's
# ResNet-18 with the CIFAR stem at base width 64 and 16, a timm-named ViT) and its features of
# the test images equal sslc embed --weights on the same images; model.encoder.weights starts a
# run from the file (online and EMA target = the file, then it trains) with features identical
# to the file's; a 7x7-stem config or another width is refused naming tensor and shapes.
# Synthetic PNGs written by the test: no dataset needed. Usage: weights_torch.sh SSLC SOURCE_DIR
set -uo pipefail
sslc=$1
src=$2
. "$(dirname "$0")/cli_lib.sh"
cli_tmpdir
py=/usr/bin/python3
"$py" -c 'import torch, torchvision, PIL, numpy' 2>/dev/null ||
  { echo "skip: $py with torch, torchvision, PIL and numpy not found"; exit 77; }
export WEIGHTS_DATA="$tmp/data"
tw="$src/tests/weights_torch.py"
nice -n 19 "$py" "$tw" data "$WEIGHTS_DATA" || fail "could not write the PNGs"
cat > "$tmp/data.json" <<JSON
{"data": {"dataset": "folder", "root": "$WEIGHTS_DATA", "channels": 1, "image_size": 16,
          "split": "train", "eval_split": "test", "workers": 0},
 "views": [{"n": 2, "size": 16, "mean": [0.5], "std": [0.25]}]}
JSON
common=(--out "$tmp/runs" --quiet --no-report --set data.dataset=folder --set "data.root=$WEIGHTS_DATA"
  --set data.channels=1 --set data.image_size=16 --set data.workers=0 --set data.eval_split=test
  --set 'views=[{"n": 2, "size": 16, "mean": [0.5], "std": [0.25]}]'
  --set train.batch_size=4 --set train.epochs=1 --set eval.knn_every=0 --set checkpoint.save_init=true)
narrow_heads=(--set model.projector.hidden_dim=32 --set model.projector.out_dim=16
  --set model.predictor.hidden_dim=32 --set model.predictor.out_dim=16)
train() { # NAME CONFIG ARGS...: one epoch of 2 steps
  local name=$1 cfg=$2
  shift 2
  expect 0 "" -- "$sslc" train "$src/configs/$cfg.json" "${common[@]}" --set "name=$name" "$@"
}
# BYOL, width 16, probing the EMA teacher (eval.encoder target)
train byol16 byol --set model.encoder.width=16 --set eval.encoder=target "${narrow_heads[@]}"
ck="$tmp/runs/byol16/checkpoints/last.safetensors"
expect 0 "encoder of" -- "$sslc" export "$ck" --out "$tmp/byol16_target.safetensors"
expect 0 "encoder of" -- "$sslc" export "$ck" --out "$tmp/byol16_online.safetensors" --encoder-source online
"$py" "$tw" same "$ck" "$tmp/byol16_target.safetensors" target.encoder. "" || fail "target export"
"$py" "$tw" same "$ck" "$tmp/byol16_online.safetensors" encoder. "" || fail "online export"
# PyTorch: strict load, same features (sslc embed --weights, the file's own encoder description)
expect 0 "" -- "$sslc" embed --weights "$tmp/byol16_target.safetensors" "$tmp/data.json" --out "$tmp/f16.npy"
nice -n 19 "$py" "$tw" resnet "$tmp/byol16_target.safetensors" "$tmp/f16.npy" 16 || fail "torch width 16"
# the checkpoint's own embedding (eval.encoder target) equals the exported file's
expect 0 "" -- "$sslc" embed "$ck" --out "$tmp/c16.npy"
cmp -s "$tmp/c16.npy" "$tmp/f16.npy" || fail "sslc embed CKPT and --weights EXPORT differ"
# torchvision.models.resnet18 itself: base width 64
train simclr64 simclr --set model.encoder.width=64 --set train.max_steps=1
ck64="$tmp/runs/simclr64/checkpoints/last.safetensors"
expect 0 "encoder of" -- "$sslc" export "$ck64" --out "$tmp/r64.safetensors"
enc='{"type": "resnet18", "stem": "cifar", "in_channels": 1, "width": 64}'
expect 0 "" -- "$sslc" embed --encoder "$enc" --weights "$tmp/r64.safetensors" "$tmp/data.json" --out "$tmp/f64.npy"
nice -n 19 "$py" "$tw" resnet "$tmp/r64.safetensors" "$tmp/f64.npy" 64 || fail "torch resnet18"
# a timm-named ViT
vit='{"type": "vit", "image_size": 16, "patch_size": 4, "in_channels": 1, "dim": 32, "depth": 2, "heads": 2}'
train vit simclr --set "model.encoder=$vit" --set train.max_steps=1
expect 0 "encoder of" -- "$sslc" export "$tmp/runs/vit/checkpoints/last.safetensors" --out "$tmp/vit.safetensors"
expect 0 "" -- "$sslc" embed --weights "$tmp/vit.safetensors" "$tmp/data.json" --out "$tmp/fv.npy"
nice -n 19 "$py" "$tw" vit "$tmp/vit.safetensors" "$tmp/fv.npy" || fail "torch vit"
# strict: the wrong width, the 7x7 stem, each named with both shapes
expect 1 "r64.safetensors: the tensors do not fit the ResNet encoder" -- "$sslc" knn --encoder \
  '{"type": "resnet18", "stem": "cifar", "in_channels": 1, "width": 16}' --weights "$tmp/r64.safetensors" "$tmp/data.json"
# a config that does not fit its weights file is a config error: exit 2, as sslc train has it
expect 2 "conv1.weight: file (16, 1, 3, 3) vs encoder (16, 1, 7, 7)" -- "$sslc" train "$src/configs/byol.json" \
  "${common[@]}" --set name=stem --set model.encoder.width=16 --set model.encoder.stem=imagenet \
  --set "model.encoder.weights=$tmp/byol16_target.safetensors" "${narrow_heads[@]}"
# continued pretraining: the run starts from the file (online and EMA target), then trains
train cont byol --set model.encoder.width=16 "${narrow_heads[@]}" \
  --set "model.encoder.weights=$tmp/byol16_target.safetensors"
init="$tmp/runs/cont/checkpoints/init.safetensors"
"$py" "$tw" same "$init" "$tmp/byol16_target.safetensors" encoder. "" || fail "online not from the file"
"$py" "$tw" same "$init" "$tmp/byol16_target.safetensors" target.encoder. "" || fail "target not from the file"
"$py" "$tw" same "$tmp/runs/cont/checkpoints/last.safetensors" "$init" encoder. encoder. >/dev/null &&
  fail "the encoder did not train"
expect 0 "" -- "$sslc" embed "$init" --out "$tmp/ci.npy"
cmp -s "$tmp/ci.npy" "$tmp/f16.npy" || fail "features of the run's init differ from the file's"
expect 0 "top-1" -- "$sslc" knn --weights "$tmp/byol16_target.safetensors" "$tmp/data.json" --k 3
# --bn-stats: a random-init checkpoint's BatchNorm statistics recomputed from the 8 train images
# in sslc's evaluation batches (batch_size 3 x 2 views: 6, then 2) equal PyTorch's size-weighted
# update_bn pass; the features differ from the checkpoint's own statistics (mean 0, var 1)
train bn simclr --set model.encoder.width=16 --set train.batch_size=3 --set train.max_steps=1 \
  --set model.projector.hidden_dim=32 --set model.projector.out_dim=16
bi="$tmp/runs/bn/checkpoints/init.safetensors"
expect 0 "encoder of" -- "$sslc" export "$bi" --out "$tmp/bn_init.safetensors"
expect 0 "" -- "$sslc" embed "$bi" --bn-stats 8 --out "$tmp/bn8.npy"
nice -n 19 "$py" "$tw" resnet_bn "$tmp/bn_init.safetensors" "$tmp/bn8.npy" 16 6 ||
  fail "--bn-stats differs from torch's recomputed statistics"
expect 0 "" -- "$sslc" embed "$bi" --out "$tmp/bn0.npy"
cmp -s "$tmp/bn0.npy" "$tmp/bn8.npy" && fail "--bn-stats changed nothing"
nice -n 19 "$py" "$tw" resnet "$tmp/bn_init.safetensors" "$tmp/bn0.npy" 16 || fail "init stats"
# the file keeps its statistics: embedding again without the flag gives the same features
expect 0 "" -- "$sslc" embed "$bi" --out "$tmp/bn0b.npy"
cmp -s "$tmp/bn0.npy" "$tmp/bn0b.npy" || fail "the checkpoint changed"
expect 1 "bn_stats 9 needs 9 images of the 'train' split, it has 8" -- \
  "$sslc" embed "$bi" --bn-stats 9 --out "$tmp/bn9.npy"
expect 1 "runs no BatchNorm layer" -- "$sslc" knn "$tmp/runs/vit/checkpoints/last.safetensors" \
  --bn-stats 4 --k 3
expect 1 "--bn-stats read a training checkpoint" -- "$sslc" knn --identity "$bi" --bn-stats 4
expect 2 "" -- "$sslc" embed "$bi" --bn-stats 0 --out "$tmp/bnz.npy"
echo "ok: weights in and out"
