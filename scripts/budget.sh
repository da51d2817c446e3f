#!/usr/bin/env bash
# The benchmark's wall-time budget check: how long each config's full training run would take
# on this machine with BUDGET_THREADS threads (default: all cores), measured on a short real run
# of it (`sslc train` for BUDGET_STEPS steps of one epoch: the loader, augmentations, step and
# the epoch-end evaluation all included) and extrapolated to the config's epochs:
#   minutes = (wall of the short run) + (remaining steps) x batch / (its images/s)
#             + (epochs - 1) x (per-epoch evaluation, taken as half of the short run's time
#               outside its steps: that time holds the start, the init and final kNN and the
#               report, so this errs long)
# Run it on an otherwise idle machine: the number is only as good as the machine's quiet.
#
#   scripts/budget.sh [CONFIG...]    default: every config with a record in docs/benchmarks/
#   BUDGET_STEPS=60  BUDGET_LIMIT=30 (minutes: the issue's budget)  BUDGET_SET="k=v ..."
#   BUDGET_OUT=FILE also writes the table there (markdown)
set -euo pipefail
cd "$(dirname "$0")/.."
SSLC=${BUILD_DIR:-build}/sslc
[ -x "$SSLC" ] || BUILD_DIR=${BUILD_DIR:-build} bash scripts/build.sh >/dev/null
THREADS=${BUDGET_THREADS:-$(nproc)}
STEPS=${BUDGET_STEPS:-60}
LIMIT=${BUDGET_LIMIT:-30}
configs=("$@")
if [ ${#configs[@]} -eq 0 ]; then
  for r in docs/benchmarks/*.json; do
    n=$(basename "$r" .json)
    [ -f "configs/$n.json" ] && configs+=("configs/$n.json")
  done
fi
overrides=()
for kv in ${BUDGET_SET:-}; do overrides+=(--set "$kv"); done
load=$(cut -d' ' -f1-3 /proc/loadavg)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rows="$tmp/rows.tsv"
: > "$rows"
for cfg in "${configs[@]}"; do
  name=$(basename "$cfg" .json)
  out="$tmp/$name"
  t0=$(date +%s.%N)
  # the BEiT config needs its tokenizer's checkpoint: a fresh one serves for timing
  extra=()
  if grep -q '"tokenizer"' "$cfg"; then
    "$SSLC" train configs/beit_tokenizer.json --set train.epochs=1 --set train.max_steps=1 \
      --threads "$THREADS" --out "$tmp/tok" > /dev/null 2>&1 || true
    extra=(--set "model.tokenizer.checkpoint=$tmp/tok/beit_tokenizer/checkpoints/last.safetensors")
  fi
  t0=$(date +%s.%N)
  if ! "$SSLC" train "$cfg" --set train.epochs=1 --set train.max_steps="$STEPS" \
       "${overrides[@]}" "${extra[@]}" --threads "$THREADS" --out "$out" > "$tmp/$name.log" 2>&1
  then
    printf '%s\tfailed: %s\n' "$name" "$(tail -1 "$tmp/$name.log")" >> "$rows"
    continue
  fi
  t1=$(date +%s.%N)
  run=$(dirname "$(find "$out" -name metrics.jsonl | head -1)")
  /usr/bin/env python3 - "$cfg" "$run" "$t0" "$t1" "$STEPS" "${BUDGET_SET:-}" >> "$rows" <<'EOF'
import json, sys
cfg_path, run, t0, t1, steps, sets = sys.argv[1:7]
wall = float(t1) - float(t0)
cfg = json.load(open(cfg_path))
resolved = json.load(open(run + "/config.json"))
epochs = int(cfg.get("train", {}).get("epochs", 1))
for kv in sets.split():
    if kv.startswith("train.epochs="):
        epochs = int(kv.split("=", 1)[1])
last = None
for line in open(run + "/metrics.jsonl"):
    r = json.loads(line)
    if "epoch_s" in r:
        last = r
if last is None:
    print(f"{cfg_path}\tfailed: no epoch record in metrics.jsonl")
    sys.exit(0)
batch = int(resolved["train"]["batch_size"])
data = resolved["data"]
# the loader's batches per epoch: all training images but the held-out validation ones
n = 60000 if data.get("dataset") == "fashion_mnist" else None
if data.get("limit"):
    n = int(data["limit"]) if n is None else min(n, int(data["limit"]))
if n is None:
    print(f"{cfg_path}\tfailed: training set size unknown for {data.get('dataset')}")
    sys.exit(0)
n -= int(data.get("val_size") or 0)
spe = n // batch
done = int(last["step"])
ips = float(last["images_per_s"])
outside = max(wall - float(last["epoch_s"]), 0.0)
est = wall + (epochs * spe - done) * batch / ips + (epochs - 1) * outside / 2
name = cfg_path.rsplit("/", 1)[-1][:-5]
prec = resolved["train"].get("precision", "fp32")
print(f"{name}\t{epochs}\t{epochs * spe}\t{batch}\t{prec}\t{ips:.1f}\t{outside / 2:.1f}\t{est / 60:.1f}")
EOF
done
{
  echo "| config | epochs | steps | batch | precision | img/s | eval s/epoch | est. minutes | within ${LIMIT} |"
  echo "|---|---|---|---|---|---|---|---|---|"
  awk -F'\t' -v lim="$LIMIT" '
    NF == 2 { printf "| %s | %s |||||||\n", $1, $2; next }
    { printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8,
             ($8 + 0 <= lim ? "yes" : "**no**") }' "$rows"
  echo
  echo "$THREADS threads, $STEPS-step runs on $(date -u '+%Y-%m-%d %H:%M UTC'), commit" \
       "$(git rev-parse --short HEAD); load average at the start: $load"
} | tee "${BUDGET_OUT:-/dev/null}"
