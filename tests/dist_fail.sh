#!/usr/bin/env bash
# Failures of a data-parallel run end every rank, with the failing rank's message and a
# non-zero exit, never a hang (each case under a timeout):
#   1. one rank's config error (mpirun's MPMD form gives rank 1 other arguments) while rank 0
#      waits for it in a collective: MPI_Abort after the message naming rank 1 and the key;
#      split BatchNorm groups that do not divide each rank's part of the batch; train.precision
#      "auto" resolving to bf16 on rank 0 and fp32 on rank 1 (where bf16 can run here);
#   2. ranks that drift apart (rank 1 with another learning rate) under train.check_sync:
#      stopped at the step they differ, naming it and the rank; without it, at the epoch's end;
#   3. a rank killed with SIGKILL mid-run: mpirun ends the job, and the checkpoint written
#      before (checkpoint.every_steps) is intact.
# Usage: dist_fail.sh SSLC SOURCE_DIR HAVE_MPI MPIEXEC
source "$(dirname "$0")/dist_lib.sh"
cfg=$src/configs/byol.json
common=(--no-report --threads 1 --set data.limit=64 --set train.batch_size=16
        --set eval.knn_every=0 --set model.encoder.width=4 --set data.workers=0)
pass=0

# 1. rank 1 refuses its config; rank 0 is waiting for the run directory's name
set +e
msg=$(timeout 120 "$mpiexec" --oversubscribe -np 1 "$sslc" train "$cfg" --out "$out/a" "${common[@]}" \
  : -np 1 "$sslc" train "$cfg" --out "$out/a" "${common[@]}" --set train.epochs=0 2>&1)
rc=$?
set -e
[ $rc -ne 0 ] && [ $rc -ne 124 ] || { echo "FAIL: config error on rank 1: exit $rc"; echo "$msg"; exit 1; }
grep -q "rank 1 of 2: .*train.epochs" <<< "$msg" || { echo "FAIL: no message naming rank 1 and the key:"; echo "$msg"; exit 1; }
# what happens is said: rank 1 ends the job; rank 0 (killed by mpirun's SIGTERM) does not
# promise a checkpoint it cannot save
grep -q "rank 1 of 2: ending every rank now (MPI_Abort, exit 2)" <<< "$msg" ||
  { echo "FAIL: rank 1 does not say it ends the job:"; echo "$msg"; exit 1; }
if grep -q "stopping after this step to save a checkpoint" <<< "$msg"; then
  echo "FAIL: a rank promised a checkpoint while the job was aborted:"; echo "$msg"; exit 1
fi
echo "ok: rank 1's config error ended the job (exit $rc): $(grep -m1 'rank 1 of 2' <<< "$msg")"
pass=$((pass + 1))

# 1b. a split BatchNorm whose groups do not divide each rank's part of the batch (8 groups, 4
# images per rank): a config error naming the key on every rank
set +e
msg=$(timeout 120 "$mpiexec" --oversubscribe -np 4 "$sslc" train "$src/configs/mocov1.json" \
  --out "$out/a2" "${common[@]}" --set model.encoder.bn_groups=8 --set loss.queue_size=64 2>&1)
rc=$?
set -e
[ $rc -eq 2 ] || { echo "FAIL: bn_groups per rank: exit $rc"; echo "$msg"; exit 1; }
grep -q "model.encoder.bn_groups': 8 does not divide the 4 images of each of the 4 ranks" \
  <<< "$msg" || { echo "FAIL: no message naming the key:"; echo "$msg"; exit 1; }
echo "ok: bn_groups checked against each rank's part of the batch"
pass=$((pass + 1))

# 1c. train.precision "auto" resolving differently on two ranks (rank 1 told by oneDNN that the
# CPU has no bf16): an error naming the rank and both precisions, not two precisions in one run
if "$sslc" bench simclr-r18 --batch 2 --steps 1 --no-peak --precision bf16 > /dev/null 2>&1; then
  set +e
  msg=$(timeout 120 "$mpiexec" --oversubscribe -np 1 "$sslc" train "$cfg" --out "$out/a3" \
    "${common[@]}" --set train.precision=auto \
    : -np 1 env ONEDNN_MAX_CPU_ISA=AVX512_CORE "$sslc" train "$cfg" --out "$out/a3" \
    "${common[@]}" --set train.precision=auto 2>&1)
  rc=$?
  set -e
  [ $rc -ne 0 ] && [ $rc -ne 124 ] || { echo "FAIL: auto precision per rank: exit $rc"; echo "$msg"; exit 1; }
  grep -q "rank 1 runs fp32 but rank 0 runs bf16" <<< "$msg" ||
    { echo "FAIL: no message naming the ranks' precisions:"; echo "$msg"; exit 1; }
  echo "ok: ranks whose \"auto\" precision differs are refused"
  pass=$((pass + 1))
else
  echo "note: bf16 cannot run here, so \"auto\" is fp32 on every rank: case 1c not run"
fi

# 2. rank 1 trains with another learning rate: step 1 is a warm-up step at lr 0 (the same on
# both), step 2 differs
set +e
msg=$(timeout 120 "$mpiexec" --oversubscribe -np 1 "$sslc" train "$cfg" --out "$out/b" "${common[@]}" \
  --set train.check_sync=true --quiet : -np 1 "$sslc" train "$cfg" --out "$out/b" "${common[@]}" \
  --set train.check_sync=true --quiet --set optim.base_lr=0.5 2>&1)
rc=$?
set -e
[ $rc -ne 0 ] && [ $rc -ne 124 ] || { echo "FAIL: diverged ranks: exit $rc"; echo "$msg"; exit 1; }
grep -q "step 2 (epoch 1): the parameters of rank 1 differ from rank 0's.*train.check_sync" <<< "$msg" ||
  { echo "FAIL: no message naming the step and the rank:"; echo "$msg"; exit 1; }
echo "ok: diverged ranks stopped: $(grep -m1 'differ from' <<< "$msg" | cut -c1-160)"
pass=$((pass + 1))

# 2b. the same without train.check_sync: caught at the end of the epoch (step 4 of 4)
set +e
msg=$(timeout 120 "$mpiexec" --oversubscribe -np 1 "$sslc" train "$cfg" --out "$out/b2" "${common[@]}" \
  --quiet : -np 1 "$sslc" train "$cfg" --out "$out/b2" "${common[@]}" --quiet \
  --set optim.base_lr=0.5 2>&1)
rc=$?
set -e
[ $rc -ne 0 ] && [ $rc -ne 124 ] || { echo "FAIL: diverged ranks unchecked: exit $rc"; echo "$msg"; exit 1; }
grep -q "step 4 (epoch 1): the parameters of rank 1 differ from rank 0's" <<< "$msg" ||
  { echo "FAIL: divergence not caught at the epoch's end:"; echo "$msg"; exit 1; }
echo "ok: diverged ranks stopped at the epoch's end without train.check_sync"
pass=$((pass + 1))

# 3. SIGKILL one rank of a long run once a checkpoint exists
"$mpiexec" --oversubscribe -np 2 "$sslc" train "$cfg" --out "$out/c" "${common[@]}" --quiet \
  --set train.epochs=1000 --set checkpoint.every_steps=2 > "$out/c.log" 2>&1 &
launcher=$!
ckpt=$out/c/byol/checkpoints/last.safetensors
for _ in $(seq 600); do [ -s "$ckpt" ] && break; sleep 0.1; done
[ -s "$ckpt" ] || { echo "FAIL: no checkpoint after 60 s"; kill "$launcher"; exit 1; }
victim=$(pgrep -P "$launcher" -f "sslc train" | tail -1)
[ -n "$victim" ] || { echo "FAIL: no rank process under mpirun $launcher"; kill "$launcher"; exit 1; }
kill -KILL "$victim"
ended=0
for _ in $(seq 600); do kill -0 "$launcher" 2> /dev/null || { ended=1; break; }; sleep 0.1; done
if [ $ended = 0 ]; then
  echo "FAIL: the job still runs 60 s after a rank was killed"
  kill -- "$launcher"
  exit 1
fi
set +e
wait "$launcher"
rc=$?
set -e
[ $rc -ne 0 ] || { echo "FAIL: mpirun exited 0 after a rank was killed"; exit 1; }
"$sslc" info "$ckpt" --no-metrics > /dev/null || { echo "FAIL: the last checkpoint is not readable"; exit 1; }
echo "ok: SIGKILL of rank process $victim ended the job (exit $rc); $ckpt is intact"
pass=$((pass + 1))
echo "$pass passed, 0 failed"
