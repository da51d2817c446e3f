#!/usr/bin/env bash
# The learning benchmark (docs/benchmarks.md): train each config for its budget, then probe the
# trained encoder, the same encoder at random initialisation and raw pixels with one protocol:
#   cosine kNN on all 60,000 training / 10,000 test images, k 200 and 20, T 0.1 and 0.07
#   (the best of the four and k=200 T=0.1), and the linear probe (sslc linear: learning rate
#   (BENCH_LINEAR_LRS) and epoch chosen on 10% of the training split); CLIP/SigLIP/CoCa also
#   zero-shot top-1. The probes read the features the config's eval.blocks names (a ViT's last
#   N blocks; the record says so); a diffusion model's readout (U-Net block and noise level) and
#   a PixelCNN's (layer, mean or max-pooled grid), from BENCH_READOUTS or the defaults below, and
#   a ViT's (its last N blocks, N from BENCH_VIT_BLOCKS, default "1 4") are chosen by the linear
#   probe's validation top-1 on 10,000 training images.
# Each config's record goes to docs/benchmarks/NAME.json (with its per-epoch kNN curve), then
# scripts/benchmark_report.py renders docs/benchmarks.md and the chart from all records.
#
#   scripts/benchmark.sh [CONFIG...]          default: every config in configs/
#   BENCH_SET="train.epochs=2" scripts/benchmark.sh configs/simclr.json   extra --set overrides
#   BENCH_THREADS=2 (default: all cores)  BENCH_OUT=runs/bench (run directories)
#   BENCH_PIXELS=recompute: measure raw pixels again (else docs/benchmarks/pixels.json keeps them
#   per data section and linear learning rates)
#   BENCH_PROBE_ONLY=1: no training; probe the run directories already in BENCH_OUT again (after
#   a change of the probe protocol or of feature extraction): the record keeps its training
#   commit, threads, wall time and overrides from the previous record, and gains probe_commit
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
BUILD_DIR=${BUILD_DIR:-build} bash scripts/build.sh >/dev/null
SSLC=${BUILD_DIR:-build}/sslc
OUT=${BENCH_OUT:-runs/bench}
THREADS=${BENCH_THREADS:-$(nproc)}
# LIN_LRS (the linear probe's learning rates) and linear_top1
. scripts/probe_lib.sh
mkdir -p "$OUT" docs/benchmarks
configs=("$@")
[ ${#configs[@]} -eq 0 ] && configs=(configs/*.json)
commit=$(git rev-parse --short HEAD)
# a modified tracked file makes the record "+dirty"; the benchmark's own outputs do not count
dirty=$(git status --porcelain --untracked-files=no -- . ':!docs/benchmarks.md' ':!docs/benchmarks' | head -1)
[ -n "$dirty" ] && commit="$commit+dirty"

overrides=()
for kv in ${BENCH_SET:-}; do overrides+=(--set "$kv"); done

# kNN sweep of a checkpoint (or --identity CONFIG): prints "best_top1 best_setting k200_t0.1"
knn() {
  "$SSLC" knn "$@" --k 20,200 --t 0.07,0.1 --train-limit 0 --test-limit 0 --threads "$THREADS" |
    awk '/^k=/ { k = $1; t = $2; sub("k=", "", k); sub("T=", "", t); v = $4; sub("%", "", v);
                 if (v + 0 > best) { best = v + 0; bs = "k" k "_t" t }
                 if (k == 200 && t == "0.1") ref = v }
         END { printf "%s %s %s\n", best, bs, ref }'
}
# linear probe test top-1 at the epoch chosen on the validation part
linear() {
  "$SSLC" linear "$@" --lr "$LIN_LRS" --threads "$THREADS" | linear_top1 test
}

declare -A pixels_done
for cfg in "${configs[@]}"; do
  name=$(basename "$cfg" .json)
  run="$OUT/$name"
  ckpt="$run/checkpoints/last.safetensors"
  init="$run/checkpoints/init.safetensors"
  train_commit=$commit train_threads=$THREADS train_set=${BENCH_SET:-}
  if [ -n "${BENCH_PROBE_ONLY:-}" ]; then
    if [ ! -f "$ckpt" ] || [ ! -f "$init" ]; then
      echo "benchmark: BENCH_PROBE_ONLY: $run lacks checkpoints/last.safetensors or" \
           "checkpoints/init.safetensors (train it first)" >&2
      continue
    fi
    echo "== $name: probing $run again (BENCH_PROBE_ONLY)" >&2
    # the training's facts from the previous record (else the run's epochs and this commit)
    prev() {
      python3 - "docs/benchmarks/$name.json" "$run/metrics.jsonl" "$1" "$2" <<'PY'
import json, os, sys
rec, log, key, default = sys.argv[1:]
r = json.load(open(rec)) if os.path.exists(rec) else {}
if key == "wall_s" and key not in r:  # the epochs' own seconds
    rows = [json.loads(l) for l in open(log) if l.strip()]
    r[key] = round(sum(x.get("epoch_s") or 0 for x in rows))
v = r.get(key, default)
print(int(v) if key in ("wall_s", "threads") else v)
PY
    }
    wall=$(prev wall_s 0)
    train_commit=$(prev commit "$commit")
    train_threads=$(prev threads "$THREADS")
    train_set=$(prev overrides "${BENCH_SET:-}")
  else
    rm -rf "$run"
    echo "== $name: training ($cfg ${overrides[*]:-})" >&2
    start=$(date +%s)
    "$SSLC" train "$cfg" --out "$OUT" --set name="$name" --set checkpoint.save_init=true \
      --threads "$THREADS" "${overrides[@]}" >"$OUT/$name.train.log" 2>&1 || {
        echo "benchmark: training $name failed (see $OUT/$name.train.log)" >&2; continue; }
    wall=$(( $(date +%s) - start ))
  fi
  echo "== $name: probing" >&2
  # a diffusion model's readout (U-Net block and noise level) or a PixelCNN's (layer; mean or
  # max-pooled to a 4x4 grid): the candidate whose linear probe on the first 10,000 training
  # images scores best on their validation part (test unread)
  readout=() readout_log="" candidates=""
  if grep -q '"unet"' "$run/config.json"; then
    candidates="d1@10 d1@50 d2@10 d2@50 mid@10 mid@50 mid@200 u2@50 u1@50"
  elif grep -q '"type":[[:space:]]*"pixelcnn"' "$run/config.json"; then
    # every other layer up to the network's depth (8: 2 4 6 8), mean-pooled and max-pooled 4x4
    candidates=$(python3 -c 'import json, sys
n = json.load(open(sys.argv[1]))["model"].get("network", {}).get("layers", 8)
ls = [str(l) for l in range(2, n + 1, 2)] or ["1"]
print(" ".join(ls + [l + "/max4" for l in ls]))' "$run/config.json")
  fi
  # a ViT's: its last N blocks for N in BENCH_VIT_BLOCKS (1: the pooled output; 4: DINO's
  # linear evaluation of ViTs), whatever the config's eval.blocks
  flag=--readout blocks=0
  if [ -n "$candidates" ]; then
    candidates=${BENCH_READOUTS:-$candidates}
  elif grep -q '"type":[[:space:]]*"vit' "$run/config.json"; then
    candidates=${BENCH_VIT_BLOCKS:-1 4} flag=--blocks
  fi
  if [ -n "$candidates" ]; then
    best_r="" best_v=-1
    for r in $candidates; do
      v=$("$SSLC" linear "$ckpt" "$flag" "$r" --lr "$LIN_LRS" --train-limit 10000 \
            --test-limit 1 --threads "$THREADS" | linear_top1 val)
      readout_log="$readout_log $r=$v"
      if awk -v a="$v" -v b="$best_v" 'BEGIN { exit !(a + 0 > b + 0) }'; then
        best_r=$r best_v=$v
      fi
    done
    echo "== $name: $flag $best_r (validation top-1:$readout_log)" >&2
    readout=("$flag" "$best_r")
    if [ "$flag" = --blocks ]; then
      blocks=$best_r
      readout_log="blocks=$best_r (val:$readout_log)"
    else
      readout_log="$best_r (val:$readout_log)"
    fi
  fi
  # each encoder embeds the two splits once (sslc embed); kNN and the linear probe read the files
  feats="$run/probe_features"
  mkdir -p "$feats"
  for which in trained init; do
    src=$ckpt
    [ "$which" = init ] && src=$init
    "$SSLC" embed "$src" "${readout[@]}" --split train --out "$feats/$which.train.npy" \
      --threads "$THREADS" >/dev/null
    "$SSLC" embed "$src" "${readout[@]}" --out "$feats/$which.test.npy" --threads "$THREADS" \
      >/dev/null
  done
  trained=(--train-features "$feats/trained.train.npy" --test-features "$feats/trained.test.npy")
  untrained=(--train-features "$feats/init.train.npy" --test-features "$feats/init.test.npy")
  read -r knn_best knn_best_at knn_ref < <(knn "${trained[@]}")
  read -r init_best init_best_at init_ref < <(knn "${untrained[@]}")
  lin=$(linear "${trained[@]}")
  init_lin=$(linear "${untrained[@]}")
  rm -rf "$feats"
  zs=null
  if grep -q '"type":[[:space:]]*"\(clip\|siglip\|coca\)"' "$run/config.json"; then
    zs=$("$SSLC" zeroshot "$ckpt" --threads "$THREADS" | awk '/top-1/ { for (i = 1; i <= NF; i++) if ($i ~ /%$/) { v = $i; sub("%", "", v); print v; exit } }')
    zs=${zs:-null}
  fi
  # raw pixels depend on the data section and the probes' settings only: measured once and kept
  # in docs/benchmarks/pixels.json under that key (BENCH_PIXELS=recompute measures them again)
  dataset=$(python3 -c 'import json,sys; d = json.load(open(sys.argv[1]))["data"]; d.pop("workers", None); print(json.dumps(d, sort_keys=True).replace(" ", ""))' "$run/config.json")
  px_key="$dataset lrs=$LIN_LRS"
  if [ -z "${pixels_done[$dataset]:-}" ] && [ "${BENCH_PIXELS:-}" != recompute ]; then
    pixels_done[$dataset]=$(python3 - "$px_key" <<'PY'
import json, os, sys
p = "docs/benchmarks/pixels.json"
c = json.load(open(p)) if os.path.exists(p) else {}
if sys.argv[1] in c:
    print(c[sys.argv[1]]["values"])
PY
)
    [ -n "${pixels_done[$dataset]}" ] && echo "== raw pixels: from docs/benchmarks/pixels.json" >&2
  fi
  if [ -z "${pixels_done[$dataset]:-}" ]; then
    read -r px_best px_best_at px_ref < <(knn --identity "$cfg")
    px_lin=$(linear --identity "$cfg")
    pixels_done[$dataset]="$px_best $px_best_at $px_ref $px_lin"
    python3 - "$px_key" "${pixels_done[$dataset]}" "$commit" <<'PY'
import datetime, json, os, sys
p = "docs/benchmarks/pixels.json"
c = json.load(open(p)) if os.path.exists(p) else {}
c[sys.argv[1]] = {"values": sys.argv[2], "commit": sys.argv[3],
                  "date": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"),
                  "fields": "kNN best, its setting, kNN k200 T0.1, linear test top-1"}
json.dump(c, open(p, "w"), indent=1, sort_keys=True)
open(p, "a").write("\n")
PY
  fi
  read -r px_best px_best_at px_ref px_lin <<<"${pixels_done[$dataset]}"
  python3 scripts/benchmark_record.py "$run" "docs/benchmarks/$name.json" \
    --wall "$wall" --commit "$train_commit" --probe-commit "$commit" --threads "$train_threads" \
    --overrides "$train_set" \
    --knn "$knn_best" "$knn_best_at" "$knn_ref" --init-knn "$init_best" "$init_best_at" "$init_ref" \
    --linear "$lin" --init-linear "$init_lin" --zeroshot "$zs" --linear-lrs "$LIN_LRS" \
    --pixels "$px_best" "$px_best_at" "$px_ref" "$px_lin" --readout "$readout_log" \
    --blocks "$blocks"
  python3 scripts/benchmark_report.py
done
