#!/usr/bin/env bash
# Library warnings reach the user (issue 17): sslc installs the log callback, so a folder
# dataset with corrupt image files trains with warnings on stderr that name the first few bad
# files (each at most once), a summary of the count, a reminder per epoch, and the directory
# links the folder reader does not follow.
# Usage: cli_warnings.sh SSLC SOURCE_DIR
set -uo pipefail
sslc=$1
src=$2
. "$(dirname "$0")/cli_lib.sh"
cli_tmpdir
command -v python3 >/dev/null || { echo "skip: python3 (writes the PNG files) not found"; exit 77; }
# root/train/{a,b}: 8 gray 8x8 PNGs each, 7 bad files in a
python3 - "$tmp/d/train" <<'PY' || fail "could not write the test images"
import os, struct, sys, zlib
root = sys.argv[1]
def png(path, v):
    raw = b"".join(b"\0" + bytes([(v + x * y) % 256 for x in range(8)]) for y in range(8))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 0, 0, 0, 0))
                           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
for c, base in (("a", 10), ("b", 200)):
    os.makedirs(os.path.join(root, c))
    for i in range(8):
        png(os.path.join(root, c, "%d.png" % i), base + 3 * i)
for i in range(7):
    open(os.path.join(root, "a", "bad%d.png" % i), "wb").write(b"not a png" * i)
PY
ln -s . "$tmp/d/train/a/loop"
stderr=$("$sslc" train "$src/configs/simclr.json" --out "$tmp/runs" --quiet --no-report \
  --set data.dataset=folder --set data.root="$tmp/d" --set data.channels=1 \
  --set data.image_size=28 --set train.batch_size=4 --set train.epochs=2 \
  --set eval.knn_every=0 --set model.encoder.width=4 2>&1 >/dev/null) \
  || fail "training on the folder failed: $stderr"
grep -q "warning: .*skipped .*/a/bad0.png: empty file" <<< "$stderr" || fail "bad0.png not named: $stderr"
named=$(grep -c "skipped .*/a/bad[0-9].png" <<< "$stderr")
[ "$named" = 5 ] || fail "$named bad files named one by one, expected the first 5: $stderr"
for i in 0 1 2 3 4 5 6; do
  [ "$(grep -c "bad$i.png" <<< "$stderr")" -le 1 ] || fail "bad$i.png named more than once: $stderr"
done
grep -q "skipped 7 of 23 files" <<< "$stderr" || fail "no summary of the skipped files: $stderr"
grep -q "epoch 1: 16 images; 7 unreadable files were left out" <<< "$stderr" || fail "no epoch 1 summary: $stderr"
grep -q "epoch 2: 16 images; 7 unreadable files" <<< "$stderr" || fail "no epoch 2 summary: $stderr"
grep -q "warning: .*train/a/loop links to .*a loop; not followed" <<< "$stderr" || fail "the link loop is not reported: $stderr"
pass=$((pass + 1))
echo "$pass passed, 0 failed"
