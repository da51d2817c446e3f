#!/usr/bin/env bash
# bf16 precision end to end (docs/precision.md): 200 SimCLR steps on Fashion-MNIST (ResNet-18
# at width 8, batch 32, one thread) in fp32 and in bf16 from the same seed, and the bf16 loss
# curve tracks the fp32 one: every 20-step window's mean within 10% of fp32's (the two runs
# drift apart as any two trajectories do: measured within 1.5%, 5.8% before the stride-2
# convolutions ran in bf16), the last 100 steps' mean within 3% (measured 0.3%), and both fell
# by more than 1 from the first window. Also: where bf16
# cannot run, train.precision=bf16 is refused naming the key (forced here through oneDNN's
# ONEDNN_MAX_CPU_ISA) while "auto" runs fp32 there and says so, a bf16 BYOL run resumes
# byte-identically, and "auto" runs bf16 where it can (the same checkpoint as bf16). Skipped (77) without Fashion-MNIST or where bf16 cannot run. The
# sanitizer build (20x slower) sets BF16_TRAIN_STEPS=20: the same runs, its one window checked.
# Usage: bf16_train.sh SSLC SOURCE_DIR
set -uo pipefail
sslc=$1
src=$2
. "$(dirname "$0")/cli_lib.sh"
cli_tmpdir
steps=${BF16_TRAIN_STEPS:-200}
[ -d /usr/share/datasets/fashion-mnist ] || { echo "SKIP: Fashion-MNIST not installed"; exit 77; }

# refused where oneDNN sees no bf16 instructions (a libssl without oneDNN refuses it anyway)
expect 2 "train.precision" -- env ONEDNN_MAX_CPU_ISA=AVX512_CORE "$sslc" bench simclr-r18 \
  --batch 2 --steps 1 --no-peak --precision bf16
grep -q "use \"fp32\"" <<< "$out" || fail "the refusal does not say what to use: $out"
expect 2 "fp32, bf16 or auto" -- "$sslc" bench simclr-r18 --precision fp16
expect 2 "train.precision" -- "$sslc" bench simclr-r18 --set train.precision=fp16

# "auto" runs bf16 where it can and fp32 where it cannot: said in the log, kept in config.json
expect 0 "precision=fp32" -- env ONEDNN_MAX_CPU_ISA=AVX512_CORE "$sslc" bench simclr-r18 \
  --batch 2 --steps 1 --no-peak --precision auto
expect 0 'train.precision "auto": fp32 (' -- env ONEDNN_MAX_CPU_ISA=AVX512_CORE "$sslc" train \
  "$src/configs/simclr.json" --out "$tmp/auto-fp32" --no-report --threads 1 \
  --set train.precision=auto --set data.limit=64 --set train.batch_size=32 --set train.epochs=1 \
  --set train.max_steps=1 --set eval.knn_every=0 --set data.workers=1 --set model.encoder.width=4
grep -q '"precision":[[:space:]]*"fp32"' "$tmp/auto-fp32/simclr/config.json" ||
  fail "auto without bf16: config.json does not say fp32"

for p in fp32 bf16; do
  "$sslc" train "$src/configs/simclr.json" --out "$tmp" --quiet --no-report --threads 1 \
    --set name=$p --set train.precision=$p --set data.limit=6400 --set train.batch_size=32 \
    --set train.epochs=1 --set train.max_steps=$steps --set train.log_every=1 \
    --set eval.knn_every=0 --set checkpoint.every=0 --set data.workers=1 \
    --set model.encoder.width=8 > "$tmp/$p.log" 2>&1
  rc=$?
  if [ $rc -ne 0 ] && [ $p = bf16 ] && grep -q "cannot run here" "$tmp/$p.log"; then
    echo "SKIP: $(grep -m1 'cannot run here' "$tmp/$p.log")"
    exit 77
  fi
  [ $rc -eq 0 ] || fail "$p run exited $rc: $(cat "$tmp/$p.log")"
  pass=$((pass + 1))
done
# a bf16 run resumes exactly (the resolved config in the checkpoint keeps train.precision):
# 2 epochs straight and 1 + resume + 1 give byte-identical checkpoints, and they differ from fp32
common=(--quiet --no-report --threads 1 --set data.limit=192 --set train.batch_size=32
        --set train.epochs=2 --set train.max_steps=3 --set eval.knn_every=0 --set data.workers=1
        --set model.encoder.width=4)
for run in straight resumed fp32 auto; do
  p=bf16
  [ $run = fp32 ] && p=fp32
  [ $run = auto ] && p=auto
  extra=()
  [ $run = resumed ] && extra=(--stop-after 1)
  "$sslc" train "$src/configs/byol.json" --out "$tmp/$run" "${common[@]}" \
    --set train.precision=$p "${extra[@]}" > "$tmp/$run.log" 2>&1 || fail "byol $run: $(cat "$tmp/$run.log")"
done
"$sslc" train --resume "$tmp/resumed/byol" --quiet --no-report --threads 1 > "$tmp/resume.log" 2>&1 ||
  fail "byol resume: $(cat "$tmp/resume.log")"
grep -q '"precision":[[:space:]]*"bf16"' "$tmp/resumed/byol/config.json" || fail "resolved config lacks precision bf16"
cmp -s "$tmp/straight/byol/checkpoints/last.safetensors" "$tmp/resumed/byol/checkpoints/last.safetensors" ||
  fail "bf16 byol: the resumed checkpoint differs from the straight run's"
cmp -s "$tmp/straight/byol/checkpoints/last.safetensors" "$tmp/fp32/byol/checkpoints/last.safetensors" &&
  fail "bf16 byol: the checkpoint equals fp32's (bf16 did not run)"
# here bf16 can run, so "auto" is bf16: the same checkpoint, and config.json says bf16
grep -q '"precision":[[:space:]]*"bf16"' "$tmp/auto/byol/config.json" ||
  fail "auto: config.json lacks bf16"
grep -q 'train.precision "auto": bf16' "$tmp/auto.log" ||
  fail "auto: the log does not say bf16: $(cat "$tmp/auto.log")"
cmp -s "$tmp/straight/byol/checkpoints/last.safetensors" \
  "$tmp/auto/byol/checkpoints/last.safetensors" || fail "byol with precision auto differs from bf16"
pass=$((pass + 1))

python3 - "$tmp/fp32/metrics.jsonl" "$tmp/bf16/metrics.jsonl" "$steps" <<'PY' || fail "bf16 loss curve"
import json, sys
def losses(p):
    return [json.loads(l)["loss"] for l in open(p) if '"loss":' in l]
a, b, n = losses(sys.argv[1]), losses(sys.argv[2]), int(sys.argv[3])
assert len(a) == len(b) == n, (len(a), len(b), n)
mean = lambda v: sum(v) / len(v)
bad = 0
for i in range(0, n - 19, 20):
    ma, mb = mean(a[i:i + 20]), mean(b[i:i + 20])
    print(f"steps {i + 1}-{i + 20}: fp32 {ma:.4f} bf16 {mb:.4f} ({100 * (mb - ma) / ma:+.2f}%)")
    bad += abs(mb - ma) > 0.10 * ma
if n >= 200:
    la, lb = mean(a[100:]), mean(b[100:])
    print(f"last 100 steps: fp32 {la:.4f} bf16 {lb:.4f} ({100 * (lb - la) / la:+.2f}%)")
    bad += abs(lb - la) > 0.03 * la
    for v in (a, b):
        bad += not mean(v[-20:]) < mean(v[:20]) - 1.0
sys.exit(1 if bad else 0)
PY
pass=$((pass + 1))
echo "$pass passed, 0 failed"
