#!/usr/bin/env bash
# sslc bench: help, errors (unknown workload, bad key), and the one-line report of a tiny
# built-in workload and of a run config on synthetic data (no dataset files needed); and
# sslc selfcheck (the kernels these benchmarks time, against plain loops and differences).
# Usage: bench_cli.sh SSLC SOURCE_DIR
set -uo pipefail
sslc=$1
src=$2
. "$(dirname "$0")/cli_lib.sh"
field() { echo "$out" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
positive() { awk -v v="$1" 'BEGIN { exit !(v + 0 > 0) }' || fail "$2 is '$1', not positive: $out"; }

expect 0 "simclr-r18" -- "$sslc" bench --help
expect 0 "bench WORKLOAD" -- "$sslc" --help
expect 2 "neither a workload (simclr-r18, mae-vitt)" -- "$sslc" bench resnet-9000
expect 2 "" -- "$sslc" bench
expect 2 "model.encoder.widht" -- "$sslc" bench simclr-r18 --set model.encoder.widht=4
expect 1 "nowhere.json" -- "$sslc" bench "$src/configs/nowhere.json"

expect 0 "simclr-r18 batch=4 threads=1 steps=2" -- "$sslc" bench simclr-r18 --batch 4 --steps 2 \
  --threads 1 --peak-n 128 --set model.encoder.width=4 --set model.projector.hidden_dim=32
for k in step_s img_per_s model_gflop_per_step gemm_gflop_per_step sgemm_peak peak_rss_mb \
  cpu_s; do
  positive "$(field $k)" "$k"
done
# achieved GFLOP/s and share of the peak: present (may round to 0.0 for this tiny net in a
# sanitizer build, where the direct convolutions leave little GEMM work)
for k in model_gflops gemm_gflops pct_peak; do [ -n "$(field $k)" ] || fail "no $k= in: $out"; done
expect 0 "mae-vitt batch=4" -- "$sslc" bench mae-vitt --batch 4 --steps 1 --no-peak \
  --set model.encoder.depth=1 --set model.head.depth=1
grep -q "sgemm_peak" <<< "$out" && fail "--no-peak still measured the peak: $out"
# a run config: its model and batch on synthetic data of the config's shape
expect 0 "simclr batch=8" -- "$sslc" bench "$src/configs/simclr.json" --batch 8 --steps 1 \
  --no-peak --set data.dataset=synthetic --set data.channels=1 --set data.image_size=28 \
  --set data.limit=16 --set model.encoder.width=4
positive "$(field img_per_s)" img_per_s
# every op's gradient against central differences, as users run it on their build
expect 0 " 0 failed" -- "$sslc" selfcheck
echo "$pass passed, 0 failed"
