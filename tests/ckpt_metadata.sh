#!/usr/bin/env bash
# A checkpoint whose metadata epoch is 99999999999999999999 (issue 17): resume reports the file,
# the key and that the value is out of range (it overflowed the step arithmetic before: a UBSan
# abort, or a wrong message in Release). Synthetic data: no dataset files needed.
# Usage: ckpt_metadata.sh SSLC SOURCE_DIR
set -uo pipefail
sslc=$1
src=$2
. "$(dirname "$0")/cli_lib.sh"
cli_tmpdir
command -v python3 >/dev/null || { echo "skip: python3 (rewrites the checkpoint header) not found"; exit 77; }
expect 0 "done" -- "$sslc" train "$src/configs/simclr.json" --out "$tmp/runs" --quiet --no-report \
  --set data.dataset=synthetic --set data.limit=16 --set data.channels=1 --set data.image_size=28 \
  --set train.batch_size=8 --set train.epochs=2 --stop-after 1 --set eval.knn_every=0 \
  --set model.encoder.width=4
ckpt="$tmp/runs/simclr/checkpoints/last.safetensors"
# set_meta KEY=VALUE...: rewrite those metadata entries of $ckpt
set_meta() {
  python3 - "$ckpt" "$@" <<'PY' || fail "could not rewrite $ckpt"
import json, struct, sys
path = sys.argv[1]
data = open(path, "rb").read()
n = struct.unpack("<Q", data[:8])[0]
header = json.loads(data[8:8 + n])
for kv in sys.argv[2:]:
    key, value = kv.split("=", 1)
    header["__metadata__"][key] = value
text = json.dumps(header).encode()
text += b" " * (-len(text) % 8)
open(path, "wb").write(struct.pack("<Q", len(text)) + text + data[8 + n:])
PY
}
set_meta epoch=99999999999999999999
expect 1 "last.safetensors: metadata 'epoch' is 99999999999999999999, out of range" -- \
  "$sslc" train --resume "$tmp/runs/simclr" --quiet --no-report
# a config in the metadata that is not JSON: the file and the metadata key, not a position in it
set_meta epoch=1 'config={"name": "simclr", garbage'
expect 1 "last.safetensors: metadata key 'config' is not a JSON config" -- \
  "$sslc" train --resume "$tmp/runs/simclr" --quiet --no-report
grep -q "byte\|:1:" <<< "$out" && fail "the message points inside the metadata string: $out"
expect 1 "last.safetensors: metadata key 'config' is not a JSON config" -- \
  "$sslc" embed "$ckpt" --out "$tmp/f.npy"
echo "$pass passed, 0 failed"
