#!/usr/bin/env bash
# The run lifecycle through sslc train, on tiny synthetic trainings (no dataset needed):
# - three runs started together with one name get three directories (mkdir claims), each with
#   its own metrics;
# - a second `--resume` of a live run is refused (the run's lock);
# - SIGINT finishes the step, saves a checkpoint inside the epoch, says how to resume, exits 130;
#   SIGTERM the same with 143; the resumed chain ends byte-identical to an uninterrupted run;
# - kill -9 between checkpoint.every_steps checkpoints: resume repairs metrics.jsonl (lines
#   after the checkpoint, a cut-off line) and again ends byte-identical.
# Usage: train_lifecycle.sh SSLC SOURCE_DIR
set -uo pipefail
sslc=$1
tmp=$(mktemp -d)
bg=
cleanup() { [ -z "$bg" ] || kill "$bg" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
. "$(dirname "$0")/cli_lib.sh"

cat > "$tmp/tiny.json" <<'EOF'
{"name": "tiny",
 "data": {"dataset": "synthetic", "image_size": 8, "channels": 1, "limit": 64, "workers": 1},
 "views": [{"n": 2, "size": 8}],
 "model": {"encoder": {"type": "resnet18", "width": 4, "in_channels": 1},
           "projector": {"hidden_dim": 16, "out_dim": 8}},
 "loss": {"type": "infonce"},
 "train": {"batch_size": 16, "epochs": 1, "log_every": 1},
 "eval": {"knn_every": 0}}
EOF
q=(--quiet --no-report)

# ---- three runs, one name, started together
pids=()
for seed in 1 2 3; do
  "$sslc" train "$tmp/tiny.json" --out "$tmp/race" --set name=c --set train.seed=$seed "${q[@]}" \
    > "$tmp/race.$seed.out" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a concurrent run failed: $(cat "$tmp"/race.*.out)"; done
for d in c c-2 c-3; do
  [ -f "$tmp/race/$d/config.json" ] || fail "no run directory $d: $(ls "$tmp/race")"
  # 4 steps, one epoch: 4 log lines and 1 epoch line, all of this run
  [ "$(wc -l < "$tmp/race/$d/metrics.jsonl")" = 5 ] \
    || fail "$d/metrics.jsonl has lines of two runs: $(cat "$tmp/race/$d/metrics.jsonl")"
done
seeds=$(grep -ho '"seed":[[:space:]]*[0-9]*' "$tmp"/race/c*/config.json | sort -u | wc -l)
[ "$seeds" = 3 ] || fail "the three runs do not each have their own directory (seeds: $seeds)"
pass=$((pass + 1))

# ---- interrupted and resumed equals straight (2 epochs of 16 steps)
long=(--set data.limit=256 --set train.epochs=2 --set checkpoint.every_steps=5)
expect 0 "done" -- "$sslc" train "$tmp/tiny.json" --out "$tmp/straight" "${long[@]}" "${q[@]}"
run="$tmp/int/tiny"
"$sslc" train "$tmp/tiny.json" --out "$tmp/int" "${long[@]}" "${q[@]}" > "$tmp/int.out" 2>&1 &
bg=$!
# poll (up to 2 minutes on a loaded machine) for 3 steps and the every_steps checkpoint of step 5
wait_for() { # LINES: until metrics.jsonl has LINES lines and last.safetensors exists
  for _ in $(seq 2400); do
    [ -f "$run/checkpoints/last.safetensors" ] \
      && [ "$(cat "$run/metrics.jsonl" 2>/dev/null | wc -l)" -ge "$1" ] && return
    kill -0 "$bg" 2>/dev/null || return
    sleep 0.05
  done
}
wait_for 6
kill -0 "$bg" 2>/dev/null || fail "the run ended before it could be interrupted: $(cat "$tmp/int.out")"
# the live run holds its lock: a second trainer on it is refused
expect 1 "in use by another training" -- "$sslc" train --resume "$run" "${q[@]}"
kill -INT "$bg"
wait "$bg"
rc=$?
bg=
[ "$rc" = 130 ] || fail "SIGINT: exit $rc, expected 130: $(cat "$tmp/int.out")"
grep -q "stopped at step" "$tmp/int.out" || fail "SIGINT: no stop message: $(cat "$tmp/int.out")"
grep -q "resume with: sslc train --resume $run" "$tmp/int.out" \
  || fail "SIGINT: no resume hint: $(cat "$tmp/int.out")"
expect 0 "epoch" -- "$sslc" info "$run/checkpoints/last.safetensors" --no-metrics
pass=$((pass + 1))

# SIGTERM on the resumed run: 143, then the rest
"$sslc" train --resume "$run" "${q[@]}" > "$tmp/term.out" 2>&1 &
bg=$!
wait_for $(($(wc -l < "$run/metrics.jsonl") + 2))
kill -0 "$bg" 2>/dev/null || fail "the resumed run ended before SIGTERM: $(cat "$tmp/term.out")"
kill -TERM "$bg"
wait "$bg"
rc=$?
bg=
[ "$rc" = 143 ] || fail "SIGTERM: exit $rc, expected 143: $(cat "$tmp/term.out")"
expect 0 "done" -- "$sslc" train --resume "$run" "${q[@]}"
cmp -s "$tmp/straight/tiny/checkpoints/last.safetensors" "$run/checkpoints/last.safetensors" \
  || fail "the interrupted and resumed run's checkpoint differs from the straight run's"
strip() { sed -E 's/"(images_per_s|epoch_s)": [0-9.e+-]+//g' "$1"; }
diff <(strip "$tmp/straight/tiny/metrics.jsonl") <(strip "$run/metrics.jsonl") > "$tmp/m.diff" \
  || fail "metrics.jsonl differs from the straight run's (timings aside): $(cat "$tmp/m.diff")"
pass=$((pass + 1))

# ---- kill -9 between checkpoint.every_steps checkpoints: the resume drops the metrics lines the
# checkpoint had not seen (and a cut-off one) and the chain still equals the straight run
run="$tmp/kill/tiny"
"$sslc" train "$tmp/tiny.json" --out "$tmp/kill" "${long[@]}" "${q[@]}" > "$tmp/kill.out" 2>&1 &
bg=$!
wait_for 8
kill -0 "$bg" 2>/dev/null || fail "the run ended before it could be killed: $(cat "$tmp/kill.out")"
kill -9 "$bg"
wait "$bg" 2>/dev/null
bg=
printf '{"epoch": 1, "step": 99, "lo' >> "$run/metrics.jsonl" # as if cut off mid-write
expect 0 "done" -- "$sslc" train --resume "$run" "${q[@]}"
cmp -s "$tmp/straight/tiny/checkpoints/last.safetensors" "$run/checkpoints/last.safetensors" \
  || fail "kill -9 and resume: the checkpoint differs from the straight run's"
diff <(strip "$tmp/straight/tiny/metrics.jsonl") <(strip "$run/metrics.jsonl") > "$tmp/m.diff" \
  || fail "kill -9 and resume: metrics.jsonl not repaired: $(cat "$tmp/m.diff")"
pass=$((pass + 1))
echo "$pass passed, 0 failed"
