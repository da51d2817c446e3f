#!/usr/bin/env bash
# Hyperparameter search on the validation split (docs/benchmarks.md, "Tuning"): train CONFIG once
# per variant with the last VAL_SIZE training images held out (data.val_size) and evaluated on
# (data.eval_split=val), never the test set; then kNN of the held-out images against the rest of
# the training split (k=200, T=0.1, full bank). One JSON line per variant is appended to
# docs/benchmarks/tuning/NAME.jsonl and the sorted table is printed.
#
#   scripts/tune.sh CONFIG EPOCHS "VARIANT" ["VARIANT" ...]
#     VARIANT: space-separated key=value overrides, as for --set; "" is the config as it is
#   e.g. scripts/tune.sh configs/simclr.json 4 "" "loss.temperature=0.1" "loss.temperature=0.5"
#   VAL_SIZE=10000  TUNE_THREADS=(all cores)  TUNE_OUT=runs/tune (run directories)
#   TUNE_RECORDS=docs/benchmarks/tuning (where NAME.jsonl is appended)
#   TUNE_LINEAR=1: also a linear probe (sslc linear, learning rates 1e-3 .. 3e-1, the lr and
#     epoch chosen on 10% of the 50,000 held out) trained on the training part and tested on
#     the validation images; the table is then sorted by it (the goal of masked-image methods)
#   TUNE_LINEAR_ARGS: extra sslc linear options, e.g. "--blocks 4" (a ViT's last 4 blocks)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 3 ]; then
  sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
cfg=$1
epochs=$2
shift 2
case $epochs in '' | *[!0-9]* | 0)
  echo "tune.sh: EPOCHS must be a positive integer, got '$epochs'" >&2
  exit 2 ;;
esac
[ -f "$cfg" ] || { echo "tune.sh: no config file $cfg" >&2; exit 2; }
SSLC=${BUILD_DIR:-build}/sslc
[ -x "$SSLC" ] || BUILD_DIR=${BUILD_DIR:-build} bash scripts/build.sh >/dev/null
OUT=${TUNE_OUT:-runs/tune}
THREADS=${TUNE_THREADS:-$(nproc)}
VAL=${VAL_SIZE:-10000}
. scripts/probe_lib.sh  # LIN_LRS (the linear probe's learning rates), linear_top1
LINEAR=${TUNE_LINEAR:-}
case $LINEAR in '' | 0 | 1) ;; *) echo "tune.sh: TUNE_LINEAR must be 0 or 1, got '$LINEAR'" >&2
  exit 2 ;; esac
[ "$LINEAR" = 0 ] && LINEAR=
read -r -a LIN_ARGS <<<"${TUNE_LINEAR_ARGS:-}"
[ -z "$LINEAR" ] && [ ${#LIN_ARGS[@]} -gt 0 ] &&
  { echo "tune.sh: TUNE_LINEAR_ARGS needs TUNE_LINEAR=1" >&2; exit 2; }
name=$(basename "$cfg" .json)
record=${TUNE_RECORDS:-docs/benchmarks/tuning}/$name.jsonl
mkdir -p "$OUT" "$(dirname "$record")"
commit=$(git rev-parse --short HEAD)
[ -n "$(git status --porcelain --untracked-files=no -- src include configs)" ] && commit="$commit+dirty"

i=0
for variant in "$@"; do
  i=$((i + 1))
  run="$name-tune-$(date +%s)-$i"
  sets=(--set "name=$run" --set "data.val_size=$VAL" --set data.eval_split=val
        --set "train.epochs=$epochs" --set "eval.knn_every=$epochs" --set eval.knn_k=200
        --set eval.knn_t=0.1 --set eval.knn_train_limit=0 --set eval.knn_test_limit=0
        --set checkpoint.every=0)
  for kv in $variant; do sets+=(--set "$kv"); done
  echo "== $name [$variant] for $epochs epochs" >&2
  start=$(date +%s)
  if ! "$SSLC" train "$cfg" --out "$OUT" --threads "$THREADS" --quiet --no-report "${sets[@]}" \
      >"$OUT/$run.log" 2>&1; then
    echo "tune.sh: variant [$variant] failed (see $OUT/$run.log)" >&2
    continue
  fi
  wall=$(($(date +%s) - start))
  # the checkpoint's config holds data.val_size and eval_split=val: sslc linear trains on the
  # 50,000 (10% of them held out to choose lr and epoch) and its "test" is the validation split
  lin=""
  if [ -n "$LINEAR" ]; then
    lin=$("$SSLC" linear "$OUT/$run/checkpoints/last.safetensors" "${LIN_ARGS[@]}" \
            --lr "$LIN_LRS" --threads "$THREADS" 2>"$OUT/$run.linear.err" | linear_top1 test) ||
      lin=""
    if [ -z "$lin" ]; then
      echo "tune.sh: variant [$variant]: the linear probe failed (see $OUT/$run.linear.err)" >&2
      continue
    fi
  fi
  python3 - "$OUT/$run/metrics.jsonl" "$record" "$cfg" "$variant" "$epochs" "$VAL" "$wall" \
      "$commit" "$lin" "${TUNE_LINEAR_ARGS:-}" <<'EOF'
import json, sys, time
metrics, record, cfg, variant, epochs, val, wall, commit, lin, lin_args = sys.argv[1:]
last = {}
for line in open(metrics):
    d = json.loads(line)
    if "knn_top1" in d and d.get("epoch", 0) > 0:
        last = d
if not last:
    sys.exit(f"tune.sh: {metrics} has no final kNN line")
row = {"config": cfg, "variant": variant, "epochs": int(epochs), "val_size": int(val),
       "val_knn_k200_t0.1": round(100 * last["knn_top1"], 2), "rankme": last.get("rankme"),
       "loss_mean": last.get("loss_mean"), "minutes": round(int(wall) / 60, 1), "commit": commit,
       "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
if lin:
    row["val_linear"] = float(lin)
    if lin_args:
        row["linear_args"] = lin_args
with open(record, "a") as f:
    f.write(json.dumps(row) + "\n")
EOF
done

python3 - "$record" "$epochs" "$LINEAR" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
rows = [r for r in rows if r["epochs"] == int(sys.argv[2])]
if sys.argv[3]:  # sorted by the linear probe; rows without one last
    rows.sort(key=lambda r: (-r.get("val_linear", -1), -r["val_knn_k200_t0.1"]))
else:
    rows.sort(key=lambda r: -r["val_knn_k200_t0.1"])
print(f"{'val kNN':>8} {'linear':>7} {'RankMe':>7} {'min':>5}  variant ({sys.argv[2]} epochs, "
      f"{sys.argv[1]})")
for r in rows:
    rk = f"{r['rankme']:.1f}" if isinstance(r.get("rankme"), (int, float)) else "-"
    li = f"{r['val_linear']:.2f}" if "val_linear" in r else "-"
    la = f" ({r['linear_args']})" if r.get("linear_args") else ""
    print(f"{r['val_knn_k200_t0.1']:8.2f} {li:>7} {rk:>7} {r['minutes']:5.1f}  "
          f"{r['variant'] or '(config as is)'}{la}  [{r['commit']}]")
EOF
