#!/usr/bin/env bash
# The benchmark's bookkeeping (docs/benchmarks.md is written by it, never by hand): a fabricated
# run directory (resolved config + metrics.jsonl) and probe results go through
# scripts/benchmark_record.py into a record, and scripts/benchmark_report.py renders records
# into a table in another docs folder (BENCH_DOCS). Checked: what the record takes from the run
# (training minutes, median img/s, the per-epoch kNN curve, the precision of the resolved
# config), the goals column (above init, above pixels, the 85% kNN / 87% linear bar of SimCLR,
# BYOL, VICReg and DINO, masked-image linear above pixels, the 30-minute budget from
# docs/benchmarks/budget.json), the thread/precision note beside
# img/s, the old-probe mark, and the chart. Usage: benchmark_scripts.sh SSLC SOURCE_DIR
set -uo pipefail
src=$2
. "$(dirname "$0")/cli_lib.sh"
cli_tmpdir
python3 -c 'import json' 2>/dev/null || { echo "SKIP: no python3"; exit 77; }
mkdir -p "$tmp/docs/benchmarks" "$tmp/runs/simclr" "$tmp/runs/mae"
printf '%s\n' '{"name": "simclr", "model": {"encoder": {"type": "resnet18", "width": 16}},' \
  '"loss": {"type": "simclr"}, "train": {"epochs": 3, "batch_size": 256, "precision": "bf16"},' \
  '"eval": {}}' > "$tmp/runs/simclr/config.json"
printf '%s\n' '{"epoch": 0, "knn_top1": 0.68}' \
  '{"epoch": 1, "epoch_s": 60, "images_per_s": 400, "knn_top1": 0.75}' \
  '{"epoch": 2, "epoch_s": 90, "images_per_s": 300, "knn_top1": 0.79}' \
  '{"epoch": 3, "epoch_s": 30, "images_per_s": 500, "knn_top1": 0.80}' \
  > "$tmp/runs/simclr/metrics.jsonl"
printf '%s\n' '{"name": "mae", "model": {"encoder": {"type": "vit", "dim": 128, "depth": 6,' \
  '"patch_size": 4}}, "loss": {"type": "mae"}, "train": {"epochs": 1}, "eval": {"blocks": 4}}' \
  > "$tmp/runs/mae/config.json"
printf '%s\n' '{"epoch": 0, "knn_top1": 0.50}' \
  '{"epoch": 1, "epoch_s": 120, "images_per_s": 200, "knn_top1": 0.55}' \
  > "$tmp/runs/mae/metrics.jsonl"
px=(--pixels 84.59 k20_t0.07 78.85 84.54)
python3 "$src/scripts/benchmark_record.py" "$tmp/runs/simclr" "$tmp/docs/benchmarks/simclr.json" \
  --wall 200 --commit abc1234 --threads 1 --knn 86.4 k20_t0.07 85.10 \
  --init-knn 77.2 k20_t0.07 73.09 --linear 86.90 --init-linear 76.04 --linear-lrs 1e-3,1e-1 \
  "${px[@]}" || fail "benchmark_record.py simclr"
python3 "$src/scripts/benchmark_record.py" "$tmp/runs/mae" "$tmp/docs/benchmarks/mae.json" \
  --wall 130 --commit abc1234 --threads 2 --knn 60.0 k20_t0.07 54.00 \
  --init-knn 61 k20_t0.07 55.25 --linear 84.54 --init-linear 70.07 --linear-lrs 1e-3 \
  "${px[@]}" || fail "benchmark_record.py mae"
pass=$((pass + 1))

python3 - "$tmp/docs/benchmarks/simclr.json" <<'PY' || fail "the simclr record"
import json, sys
r = json.load(open(sys.argv[1]))
want = {"name": "simclr", "encoder": "resnet18 w16", "epochs": 3, "threads": 1,
        "precision": "bf16", "train_s": 180.0, "images_per_s": 400, "knn_k200_t01": 85.1,
        "linear": 86.9, "knn_curve": [[0.0, 68.0], [1.0, 75.0], [2.5, 79.0], [3.0, 80.0]]}
bad = {k: (r.get(k), v) for k, v in want.items()
       if (r.get(k) != v if k != "knn_curve" else
           any(abs(a - c) > 1e-9 or abs(b - d) > 1e-9 for (a, b), (c, d) in zip(r[k], v))
           or len(r[k]) != len(v))}
sys.exit(print("record differs (got, want):", bad) or 1 if bad else 0)
PY
pass=$((pass + 1))

# budget.sh's estimates: SimCLR's in its row's precision (1 + 3 epochs x 12 = 37 minutes), MAE's
# in another precision (no estimate for its fp32 row)
printf '%s\n' '{"simclr": {"threads": 2, "precision": "bf16", "start_min": 1.0,' \
  ' "epoch_min": 12.0},' \
  ' "mae": {"threads": 2, "precision": "bf16", "start_min": 0.5, "epoch_min": 1.0}}' \
  > "$tmp/docs/benchmarks/budget.json"
# a longer run of SimCLR kept beside its default recipe's row: its own row and curve
python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); r["epochs"] = 30
json.dump(r, open(sys.argv[2], "w"))' "$tmp/docs/benchmarks/simclr.json" \
  "$tmp/docs/benchmarks/simclr-30ep.json" || fail "copying the simclr record"
out=$(BENCH_DOCS="$tmp/docs" python3 "$src/scripts/benchmark_report.py") ||
  fail "benchmark_report.py: $out"
md="$tmp/docs/benchmarks.md"
svg=$tmp/docs/benchmarks/knn_vs_minutes.svg
[ -s "$md" ] && [ -s "$svg" ] || fail "no table or chart in $tmp/docs"
row() { grep "^| $1 |" "$md" || fail "no row for $1 in: $(cat "$md")"; }
simclr=$(row simclr)
mae=$(row mae)
long=$(row simclr-30ep)
grep -qF "| 361.0 |" <<< "$long" && grep -qF ">30 min est." <<< "$long" ||
  fail "the 30-epoch row's estimate (1 + 30 x 12 minutes): $long"
for want in "400 (1 thread, bf16)" "| 85.10 |" "| 37.0 |" \
  "kNN>init, lin>init, kNN>pixels, kNN≥85, lin<87, >30 min est."; do
  grep -qF -- "$want" <<< "$simclr" || fail "simclr row lacks '$want': $simclr"
done
for want in "| 200 |" "kNN≤init, lin>init, lin≤pixels |" "84.54*" "| – | 200 |" \
  "vit d128 L6 p4, last 4 blocks"; do
  grep -qF -- "$want" <<< "$mae" || fail "mae row lacks '$want': $mae"
done
grep -qF "thread" <<< "$(cut -d'|' -f7 <<< "$mae")" && fail "a 2-thread fp32 row says so: $mae"
# the table lists SimCLR (the issue's order) before MAE, and the chart draws both curves
line() { grep -n "^| $1 |" "$md" | cut -d: -f1; }
[ "$(line simclr)" -lt "$(line simclr-30ep)" ] && [ "$(line simclr-30ep)" -lt "$(line mae)" ] ||
  fail "rows out of order"
[ "$(grep -c '<polyline' "$svg")" -eq 3 ] && grep -q '>simclr-30ep</text>' "$svg" ||
  fail "chart curves"
pass=$((pass + 1))

# budget.sh itself: a short real run (2 steps of 1 epoch, synthetic images) extrapolated with the
# trainer's batches_per_epoch: 320 training images (data.limit, after the 64 held out) / 32 = 10
# batches, x 5 epochs (train.epochs from BUDGET_SET, which must not lengthen the short run)
bj=$tmp/budget.json
out=$(BUILD_DIR=$(dirname "$1") BUDGET_STEPS=2 BUDGET_THREADS=1 BUDGET_JSON=$bj \
  BUDGET_SET="data.dataset=synthetic data.channels=1 data.limit=320 data.val_size=64
  train.batch_size=32 train.epochs=5 eval.knn_every=0 model.encoder.width=4" \
  bash "$src/scripts/budget.sh" "$src/configs/simclr.json" 2>&1) || fail "budget.sh: $out"
python3 - "$bj" <<'PY' || fail "budget.sh's record: $(cat "$bj")"
import json, sys
r = json.load(open(sys.argv[1]))["simclr"]
want = {"epochs": 5, "steps": 50, "batch": 32, "steps_run": 2, "threads": 1, "precision": "fp32"}
bad = {k: (r.get(k), v) for k, v in want.items() if r.get(k) != v}
bad.update({k: r.get(k) for k in ("images_per_s", "epoch_min") if not r.get(k, 0) > 0})
sys.exit(print("got, want:", bad) or 1 if bad else 0)
PY
pass=$((pass + 1))

# tune.sh: one variant of 1 epoch on synthetic images, 64 held out, with the linear probe
# (TUNE_LINEAR=1): the record's row has the validation kNN and linear top-1 of those 64 images
tune() {
  BUILD_DIR=$(dirname "$1") TUNE_THREADS=1 VAL_SIZE=64 TUNE_OUT=$tmp/tune TUNE_RECORDS=$tmp/rec \
    bash "$src/scripts/tune.sh" "$src/configs/simclr.json" 1 "data.dataset=synthetic
    data.channels=1 data.limit=320 train.batch_size=32 model.encoder.width=4" 2>&1
}
out=$(TUNE_LINEAR=1 tune "$1") || fail "tune.sh with TUNE_LINEAR=1: $out"
python3 - "$tmp/rec/simclr.jsonl" <<'PY' || fail "tune.sh's record: $(cat "$tmp/rec/simclr.jsonl")"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
r = rows[-1]
# each top-1 is a count of the 64 held-out images
ok = (len(rows) == 1 and r["epochs"] == 1 and r["val_size"] == 64
      and all(0 <= r[k] <= 100 and abs(round(r[k] * 0.64) / 0.64 - r[k]) < 0.006
              for k in ("val_knn_k200_t0.1", "val_linear")))
sys.exit(0 if ok else 1)
PY
grep -q "linear" <<< "$out" || fail "tune.sh's table has no linear column: $out"
# a probe that fails (a ResNet has no ViT blocks) says so and appends no row; bad settings stop
out=$(TUNE_LINEAR=1 TUNE_LINEAR_ARGS="--blocks 4" tune "$1")
grep -q "the linear probe failed" <<< "$out" && [ "$(wc -l < "$tmp/rec/simclr.jsonl")" -eq 1 ] ||
  fail "tune.sh with a failing probe: $out"
out=$(TUNE_LINEAR=yes tune "$1") && fail "TUNE_LINEAR=yes accepted: $out"
grep -q "TUNE_LINEAR must be 0 or 1" <<< "$out" || fail "TUNE_LINEAR=yes: $out"
out=$(TUNE_LINEAR_ARGS="--blocks 4" tune "$1") && fail "TUNE_LINEAR_ARGS alone accepted: $out"
grep -q "needs TUNE_LINEAR=1" <<< "$out" || fail "TUNE_LINEAR_ARGS alone: $out"
pass=$((pass + 1))
echo "$pass passed, 0 failed"
