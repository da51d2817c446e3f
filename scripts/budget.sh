#!/usr/bin/env bash
# The benchmark's wall-time budget check: how long each config's full training run takes on
# this machine with BUDGET_THREADS threads (default: all cores), measured on a short real run of
# it (`sslc train` for BUDGET_STEPS steps of one epoch: the loader, augmentations, steps and the
# epoch-end evaluation all included) and extrapolated to its epochs:
#   minutes = start + epochs x (steps per epoch x batch / images/s + per-epoch evaluation)
# where the per-epoch evaluation is taken as half of the short run's time outside its steps
# (that time holds the start, the init and the final kNN and the report, so this errs long)
# and start is the other half. Run it on an otherwise idle machine: the numbers are only as
# good as the machine's quiet (the load average at the start is recorded).
# Each config's estimate goes into docs/benchmarks/budget.json (name -> record, merged with the
# configs measured before), which scripts/benchmark_report.py shows beside the table's rows
# (for the row's epochs, when its precision matches); the table is printed.
#
#   scripts/budget.sh [CONFIG...]    default: every config with a record in docs/benchmarks/
#   BUDGET_STEPS=80  BUDGET_LIMIT=30 (minutes: the issue's budget)  BUDGET_SET="k=v ..."
#   BUDGET_JSON=FILE instead of docs/benchmarks/budget.json
set -euo pipefail
cd "$(dirname "$0")/.."
SSLC=${BUILD_DIR:-build}/sslc
[ -x "$SSLC" ] || BUILD_DIR=${BUILD_DIR:-build} bash scripts/build.sh >/dev/null
THREADS=${BUDGET_THREADS:-$(nproc)}
STEPS=${BUDGET_STEPS:-80}
LIMIT=${BUDGET_LIMIT:-30}
configs=("$@")
if [ ${#configs[@]} -eq 0 ]; then
  for r in docs/benchmarks/*.json; do
    n=$(basename "$r" .json)
    if [ -f "configs/$n.json" ]; then configs+=("configs/$n.json"); fi
  done
fi
overrides=()
for kv in ${BUDGET_SET:-}; do overrides+=(--set "$kv"); done
load=$(cut -d' ' -f1-3 /proc/loadavg)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rows="$tmp/rows.jsonl"
: > "$rows"
for cfg in "${configs[@]}"; do
  name=$(basename "$cfg" .json)
  out="$tmp/$name"
  # the BEiT config needs its tokenizer's checkpoint: a fresh one serves for timing
  extra=()
  if grep -q '"tokenizer"' "$cfg"; then
    "$SSLC" train configs/beit_tokenizer.json --set train.epochs=1 --set train.max_steps=1 \
      --threads "$THREADS" --out "$tmp/tok" > /dev/null 2>&1 || true
    extra=(--set "model.tokenizer.checkpoint=$tmp/tok/beit_tokenizer/checkpoints/last.safetensors")
  fi
  t0=$(date +%s.%N)
  # the overrides first: the short run is one epoch of STEPS steps whatever train.epochs says
  if ! "$SSLC" train "$cfg" "${overrides[@]}" "${extra[@]}" --set train.epochs=1 \
       --set train.max_steps="$STEPS" --threads "$THREADS" --out "$out" > "$tmp/$name.log" 2>&1
  then
    echo "budget: $name failed: $(tail -1 "$tmp/$name.log")" >&2
    continue
  fi
  t1=$(date +%s.%N)
  run=$(dirname "$(find "$out" -name metrics.jsonl | head -1)")
  python3 - "$cfg" "$run" "$t0" "$t1" "$THREADS" "${BUDGET_SET:-}" >> "$rows" <<'EOF'
import json, sys
cfg_path, run, t0, t1, threads, sets = sys.argv[1:7]
wall = float(t1) - float(t0)
name = cfg_path.rsplit("/", 1)[-1][:-5]
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


def fail(why):
    print(f"budget: {name}: {why}", file=sys.stderr)
    sys.exit(0)


if last is None:
    fail("no epoch record in metrics.jsonl")
batch = int(resolved["train"]["batch_size"])
# the loader's batches in a whole epoch (the trainer logs them: train.max_steps cut this one)
if "batches_per_epoch" not in last:
    fail("metrics.jsonl has no batches_per_epoch (an sslc older than this script)")
spe = int(last["batches_per_epoch"])
done = int(last["step"])
ips = float(last["images_per_s"])
outside = max(wall - done * batch / ips, 0.0)
ev = outside / 2
epoch_min = (spe * batch / ips + ev) / 60
start_min = (outside - ev) / 60
print(json.dumps({"name": name, "epochs": epochs, "steps": epochs * spe, "batch": batch,
                  "precision": resolved["train"].get("precision", "fp32"),
                  "threads": int(threads), "steps_run": done, "images_per_s": round(ips, 1),
                  "eval_s": round(ev, 1), "start_min": round(start_min, 3),
                  "epoch_min": round(epoch_min, 3),
                  "est_min": round(start_min + epochs * epoch_min, 1)}))
EOF
done
python3 - "$rows" "${BUDGET_JSON:-docs/benchmarks/budget.json}" "$LIMIT" "$STEPS" \
  "$(git rev-parse --short HEAD)" "$(date -u '+%Y-%m-%d %H:%M UTC')" "$load" "$THREADS" <<'EOF'
import json, os, sys
rows_path, out, limit, steps, commit, date, load, threads = sys.argv[1:9]
rows = [json.loads(l) for l in open(rows_path)]
book = json.load(open(out)) if os.path.exists(out) else {}
print(f"| config | epochs | steps | batch | precision | img/s | eval s/epoch | est. minutes | "
      f"within {limit} |")
print("|---|---|---|---|---|---|---|---|---|")
for r in rows:
    r.update(commit=commit, date=date, load=load)
    book[r["name"]] = {k: v for k, v in r.items() if k != "name"}
    ok = "yes" if r["est_min"] <= float(limit) else "**no**"
    print(f"| {r['name']} | {r['epochs']} | {r['steps']} | {r['batch']} | {r['precision']} | "
          f"{r['images_per_s']} | {r['eval_s']} | {r['est_min']} | {ok} |")
if rows:
    with open(out, "w") as fh:
        json.dump(dict(sorted(book.items())), fh, indent=1)
        fh.write("\n")
print(f"\n{threads} threads, runs of {steps} steps, {date}, commit {commit}; load average at the "
      f"start: {load}" + (f"; written to {out}" if rows else "; nothing measured"))
sys.exit(0 if rows else 1)
EOF
