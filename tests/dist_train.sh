#!/usr/bin/env bash
# Data-parallel training equals one process at the same global batch (issue #20): for SimCLR,
# BYOL, DINO, SwAV, VICReg, MoCo v1 (its key batch shuffled across the ranks for split
# BatchNorm, its queue takes every rank's keys), DeepCluster-v2 (memory bank and k-means of
# every rank's rows), CLIP and SigLIP (each rank's rows of the logits against every rank's
# gathered pairs; ResNets with batch norm, so SyncBN in each) and DINOv2-style (a ViT:
# Sinkhorn-Knopp summed over the ranks), CoCa (CLIP's rows + the caption loss over every rank's
# targets), data2vec and MaskFeat (ViTs, per-sample masks), 2 and 4 ranks for 3 steps against 1 process at a
# global batch of 16: the logged losses within 1e-4 (relative)
# and every tensor of the checkpoint (parameters, EMA target, BN statistics, optimizer state,
# center / queues) changed by training like the single process's within 2e-2 of the change
# (tests/dist_compare.py --init: 1 vs 2 threads of one process differ by up to 5e-3 here, a
# missing average or missing rows by order 1). Two runs with 2 ranks are bit-identical. A run
# stopped on 2 ranks and resumed on 4 equals one process too. DIST_TRAIN_METHODS (the ASan build:
# fewer) overrides the list of methods.
# train.sync_bn=false must miss the single process (the test can fail).
# Usage: dist_train.sh SSLC SOURCE_DIR HAVE_MPI MPIEXEC
source "$(dirname "$0")/dist_lib.sh"
cmp_py="$src/tests/dist_compare.py"
mpi() { local n=$1; shift; "$mpiexec" --oversubscribe -np "$n" "$@"; }

# the logged losses of run a and b agree within 1e-4 relative
same_losses() {
  python3 - "$1" "$2" <<'PY'
import json, sys
def losses(p):
    return [json.loads(l)["loss"] for l in open(p) if '"loss"' in l]
a, b = losses(sys.argv[1]), losses(sys.argv[2])
if len(a) != len(b) or not a:
    sys.exit("FAIL: %d vs %d logged losses" % (len(a), len(b)))
worst = max(abs(x - y) / abs(y) for x, y in zip(a, b))
print("losses %s vs %s: worst relative difference %.2g" % (a, b, worst))
sys.exit(0 if worst <= 1e-4 else 1)
PY
}

pass=0
methods="simclr byol dino swav vicreg mocov1 deepclusterv2 dinov2 clip siglip coca data2vec maskfeat
         dcgan ddpm"
for name in ${DIST_TRAIN_METHODS:-$methods}; do
  common=(--quiet --no-report --threads 1 --set data.limit=64 --set train.batch_size=16
          --set train.epochs=1 --set train.max_steps=3 --set train.log_every=1
          --set eval.knn_every=0 --set data.workers=0
          --set checkpoint.save_init=true --set train.check_sync=true)
  # AdamW methods: eps 1e-6 (not 1e-8) so that Adam does not blow a parameter without a
  # gradient (attention's key bias: its gradient is rounding, ~1e-9) up to steps of order lr,
  # which differ between any two summation orders (CLIP's text key bias: 0.18 of its change
  # with 1e-8 on 2 ranks, 0.085 between 1 and 2 threads of one process; 0.003 with 1e-6)
  case $name in
    # DINOv2-style (ViT, iBOT masks, Sinkhorn-Knopp over every rank's class outputs and masked
    # tokens, KoLeo of the gathered class tokens), small; masks.prob 0.2 so that on 4 ranks
    # some rank's crops draw no masked token while others do (it joins the Sinkhorn sums empty)
    dinov2) common+=(--set model.encoder.dim=32 --set model.encoder.depth=2
                     --set model.encoder.heads=2 --set model.head.hidden_dim=64
                     --set model.head.bottleneck_dim=32 --set model.head.out_dim=256
                     --set masks.prob=0.2 --set optim.eps=1e-6) ;;
    # CLIP and SigLIP: this rank's rows against every rank's gathered pairs
    clip|siglip) common+=(--set model.encoder.width=4 --set model.text.width=32
                          --set model.text.heads=2 --set model.image_proj.embed_dim=32
                          --set optim.eps=1e-6) ;;
    # CoCa: CLIP's rows plus the caption loss, a mean over every rank's targets (captions of
    # different lengths: the ranks' own means would not average to one process's); eps 1e-4:
    # the pooler's key bias too has a rounding-only gradient (0.048 of its change at 1e-6)
    coca) common+=(--set model.encoder.width=4 --set model.text.width=32
                   --set model.text.heads=2 --set model.image_proj.embed_dim=32
                   --set model.decoder.layers=1 --set model.decoder.heads=2
                   --set model.decoder.pooler_heads=2 --set model.decoder.n_queries=5
                   --set optim.eps=1e-4) ;;
    # data2vec (EMA teacher's block targets at masked tokens) and MaskFeat (HOG of masked
    # patches): small ViTs, per-sample masks as one process draws them
    data2vec) common+=(--set model.encoder.dim=32 --set model.encoder.depth=2
                       --set model.encoder.heads=2 --set loss.top_k=2 --set optim.eps=1e-6) ;;
    maskfeat) common+=(--set model.encoder.dim=32 --set model.encoder.depth=2
                       --set model.encoder.heads=2 --set optim.eps=1e-6) ;;
    # MoCo v1: split BatchNorm in 2 groups (4 ranks keep 4 images, 2 per group), a small queue
    mocov1) common+=(--set model.encoder.width=4 --set model.encoder.bn_groups=2
                     --set loss.queue_size=64) ;;
    # DeepCluster-v2: fewer clusters than the 48 samples its memory bank holds
    deepclusterv2) common+=(--set model.encoder.width=4 --set "loss.n_prototypes=[8,6]") ;;
    # DCGAN: two optimizer phases per step, each rank's z rows as one process draws them
    dcgan) common+=(--set model.encoder.width=4 --set model.generator.width=4
                    --set model.generator.latent_dim=8 --set data.eval_limit=16) ;;
    # DDPM: its own U-Net; each rank's levels and noise rows as one process draws them
    ddpm) common+=(--set model.unet.channels=8 --set model.unet.groups=4
                   --set model.unet.sample_steps=2 --set data.eval_limit=16) ;;
    *) common+=(--set model.encoder.width=4) ;;
  esac
  "$sslc" train "$src/configs/$name.json" --out "$out/n1" "${common[@]}" > /dev/null
  ref=$out/n1/$name
  for n in 2 4; do
    mpi $n "$sslc" train "$src/configs/$name.json" --out "$out/n$n" "${common[@]}" > /dev/null
    run=$out/n$n/$name
    same_losses "$run/metrics.jsonl" "$ref/metrics.jsonl"
    python3 "$cmp_py" "$run/checkpoints/last.safetensors" "$ref/checkpoints/last.safetensors" \
      --init "$ref/checkpoints/init.safetensors" --tol 2e-2
    echo "ok: $name on $n ranks equals 1 process"
    pass=$((pass + 1))
  done
  mpi 2 "$sslc" train "$src/configs/$name.json" --out "$out/again" "${common[@]}" > /dev/null
  python3 "$cmp_py" "$out/again/$name/checkpoints/last.safetensors" \
    "$out/n2/$name/checkpoints/last.safetensors" --exact
  echo "ok: $name on 2 ranks twice: bit-identical"
  pass=$((pass + 1))
done

# resume with another number of ranks: 1 step on 2 ranks, stopped, 2 more on 4 ranks, against
# 3 steps of one process (one step per epoch: the stop falls on an epoch's end)
one=(--quiet --no-report --threads 1 --set data.limit=64 --set train.batch_size=16
     --set train.epochs=3 --set train.max_steps=1 --set eval.knn_every=0
     --set model.encoder.width=4 --set data.workers=0 --set checkpoint.save_init=true)
"$sslc" train "$src/configs/byol.json" --out "$out/r1" "${one[@]}" > /dev/null
mpi 2 "$sslc" train "$src/configs/byol.json" --out "$out/r2" "${one[@]}" --stop-after 1 > /dev/null
mpi 4 "$sslc" train --resume "$out/r2/byol" --quiet --no-report --threads 1 > /dev/null
same_losses "$out/r2/byol/metrics.jsonl" "$out/r1/byol/metrics.jsonl"
python3 "$cmp_py" "$out/r2/byol/checkpoints/last.safetensors" \
  "$out/r1/byol/checkpoints/last.safetensors" --init "$out/r1/byol/checkpoints/init.safetensors" \
  --tol 2e-2
echo "ok: 2 ranks, then resumed on 4, equals 1 process"
pass=$((pass + 1))

# without SyncBN each rank normalises its own 8 images: not the single process's step
"$sslc" train "$src/configs/byol.json" --out "$out/sync1" "${one[@]}" > /dev/null
mpi 2 "$sslc" train "$src/configs/byol.json" --out "$out/nosync" "${one[@]}" \
  --set train.sync_bn=false > /dev/null
set +e
python3 "$cmp_py" "$out/nosync/byol/checkpoints/last.safetensors" \
  "$out/sync1/byol/checkpoints/last.safetensors" \
  --init "$out/sync1/byol/checkpoints/init.safetensors" --tol 2e-2 > "$out/nosync.txt" 2>&1
rc=$?
set -e
if [ $rc -ne 1 ] || ! grep -q "^FAIL: .*worst relative difference" "$out/nosync.txt"; then
  echo "FAIL: train.sync_bn=false should differ from the single process (exit $rc):"
  cat "$out/nosync.txt"
  exit 1
fi
echo "ok: train.sync_bn=false differs from the single process: $(cat "$out/nosync.txt")"
pass=$((pass + 1))
echo "$pass passed, 0 failed"
