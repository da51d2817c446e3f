#!/usr/bin/env bash
# Command-line and config validation (issue 17): every numeric option is parsed strictly (the
# whole string, in range) and a bad value is a usage error (exit 2) naming the option and the
# value; a missing config file is a usage error; config strings that do not fit (name,
# data.root, data.split), an empty name and an empty views list are config errors (exit 2)
# naming the key. Nothing here reads a dataset.
# Usage: cli_args.sh SSLC SOURCE_DIR
set -uo pipefail
sslc=$1
src=$2
. "$(dirname "$0")/cli_lib.sh"
cli_tmpdir
cfg="$src/configs/simclr.json"
ck="$tmp/none.safetensors"

# numeric options: not a number, trailing garbage, out of range
expect 2 "--threads 'abc' is not an integer in 0..4096" -- "$sslc" train "$cfg" --threads abc
expect 2 "--threads '-3' is not an integer in 0..4096" -- "$sslc" train "$cfg" --threads -3
expect 2 "--threads '2x'" -- "$sslc" train "$cfg" --threads 2x
expect 2 "--threads ''" -- "$sslc" train "$cfg" --threads ''
expect 2 "--stop-after '-1' is not an integer in 1..1000000" -- "$sslc" train "$cfg" --stop-after -1
expect 2 "--stop-after '99999999999999999999'" -- "$sslc" train "$cfg" --stop-after 99999999999999999999
expect 2 "sslc knn: --train-limit '-1' is not an integer" -- "$sslc" knn "$ck" --train-limit -1
expect 2 "sslc knn: --test-limit 'ten'" -- "$sslc" knn "$ck" --test-limit ten
expect 2 "sslc knn: --threads '1.5'" -- "$sslc" knn "$ck" --threads 1.5
expect 2 "sslc knn: --k '0'" -- "$sslc" knn "$ck" --k 0
expect 2 "sslc knn: --k '5,abc'" -- "$sslc" knn "$ck" --k 5,abc
expect 2 "sslc knn: --k '20,2.5'" -- "$sslc" knn "$ck" --k 20,2.5
expect 2 "sslc knn: --k '1,'" -- "$sslc" knn "$ck" --k 1,
expect 2 "sslc knn: --t '-0.1'" -- "$sslc" knn "$ck" --t -0.1
expect 2 "sslc knn: --t 'nan'" -- "$sslc" knn "$ck" --t nan
expect 2 "sslc linear: --epochs 'abc'" -- "$sslc" linear "$ck" --epochs abc
expect 2 "sslc linear: --lr 'inf'" -- "$sslc" linear "$ck" --lr inf
expect 2 "sslc linear: --wd '-1'" -- "$sslc" linear "$ck" --wd -1
expect 2 "sslc linear: --batch '0'" -- "$sslc" linear "$ck" --batch 0
expect 2 "sslc linear: --train-limit '-5'" -- "$sslc" linear "$ck" --train-limit -5
expect 2 "sslc bench: --steps '-1'" -- "$sslc" bench tiny --steps -1
expect 2 "sslc bench: --batch 'x'" -- "$sslc" bench tiny --batch x
expect 2 "sslc bench: --peak-n '0'" -- "$sslc" bench tiny --peak-n 0
expect 2 "sslc report: --points '-1'" -- "$sslc" report "$tmp" --points -1
expect 2 "sslc report: --threads 'many'" -- "$sslc" report "$tmp" --threads many
expect 2 "sslc zeroshot: --limit '-5'" -- "$sslc" zeroshot "$ck" --limit -5
expect 2 "sslc embed: --limit '1e3'" -- "$sslc" embed "$ck" --limit 1e3
expect 2 "sslc embed: --threads '-1'" -- "$sslc" embed "$ck" --threads -1
expect 2 "sslc info: --metrics-limit '0'" -- "$sslc" info "$ck" --metrics-limit 0
expect 2 "sslc info: --size 'big'" -- "$sslc" info --encoder resnet18 --size big
expect 2 "sslc selfcheck: --threads 'x'" -- "$sslc" selfcheck --threads x

# a missing config file is a usage error
expect 2 "cannot read config file '$tmp/missing.json'" -- "$sslc" train "$tmp/missing.json"

# config strings: never cut, never empty
long() { printf "%${1}s" "" | tr ' ' "$2"; }
expect 2 "key 'name': must not be empty" -- "$sslc" train "$cfg" --out "$tmp/runs" --set 'name=""'
expect 2 "key 'name': 'nnnnnnnnnnnnnnnnnnnnnnnn...' is 100 bytes long, more than the 63 allowed" -- \
  "$sslc" train "$cfg" --out "$tmp/runs" --set "name=$(long 100 n)"
expect 2 "key 'data.root': 'rrrrrrrrrrrrrrrrrrrrrrrr...' is 600 bytes long, more than the 511" -- \
  "$sslc" train "$cfg" --out "$tmp/runs" --set "data.root=$(long 600 r)"
expect 2 "key 'data.split': 'ssssssssssssssssssss...' is 20 bytes long, more than the 15" -- \
  "$sslc" train "$cfg" --out "$tmp/runs" --set "data.split=$(long 20 s)"
expect 2 "key 'data.split': must not be empty" -- "$sslc" train "$cfg" --out "$tmp/runs" \
  --set 'data.split=""'
expect 2 "key 'views': is empty" -- "$sslc" train "$cfg" --out "$tmp/runs" --set 'views=[]'
[ ! -e "$tmp/runs" ] || [ -z "$(ls -A "$tmp/runs")" ] || fail "a rejected config left a run directory: $(ls "$tmp/runs")"
echo "$pass passed, 0 failed"
