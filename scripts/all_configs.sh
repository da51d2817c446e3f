#!/usr/bin/env bash
# Train every shipped config (or the ones named) for its configured budget (one epoch of
# Fashion-MNIST by default) one after the other, then print a table of each run's loss at the
# first and last log points, epoch-mean loss, online kNN at init and at the end, and speed.
# Usage: bash scripts/all_configs.sh [--out DIR] [--set k=v]... [CONFIG_NAME...]
#   e.g. bash scripts/all_configs.sh simclr mocov2 dino
#        bash scripts/all_configs.sh --set data.limit=6400        (a quick pass over everything)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=runs-all
sets=()
names=()
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    --set) sets+=(--set "$2"); shift 2 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) names+=("$1"); shift ;;
  esac
done
[ ${#names[@]} -gt 0 ] || for f in "$here"/configs/*.json; do names+=("$(basename "$f" .json)"); done
sslc=${SSLC:-$here/build/sslc}
[ -x "$sslc" ] || bash "$here/scripts/build.sh"
for n in "${names[@]}"; do
  echo "== $n"
  start=$(date +%s)
  if "$sslc" train "$here/configs/$n.json" --out "$out" --quiet ${sets[@]+"${sets[@]}"}; then
    echo "$n: done in $(( $(date +%s) - start )) s"
  else
    echo "$n: FAILED (exit $?)"
  fi
done
python3 "$here/scripts/metrics_table.py" "$out"/*/metrics.jsonl
