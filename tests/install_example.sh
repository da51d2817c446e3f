#!/usr/bin/env bash
# libssl from another program: install into a temporary prefix, build examples/embed_images.c
# against it with pkg-config and with CMake's find_package, and run both on a checkpoint that a
# short training run writes. Usage: install_example.sh SSLC SOURCE_DIR BINARY_DIR
set -euo pipefail
sslc=$1
src=$2
bin=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$bin" --prefix "$tmp/prefix" > "$tmp/install.log"
pc=$(dirname "$(find "$tmp/prefix" -name sslc.pc | head -1)")
[ -n "$pc" ] || { echo "FAIL: no sslc.pc installed"; exit 1; }
ls "$tmp"/prefix/lib*/libsslc.a "$tmp"/prefix/lib*/libsslc.so > /dev/null
flags=$(PKG_CONFIG_PATH="$pc" pkg-config --cflags --libs sslc)
extra=${SSL_EXAMPLE_CFLAGS:-}
cc -std=c11 -Wall -Wextra -Werror $extra "$src/examples/embed_images.c" $flags -o "$tmp/ex_pkgconfig"
cmake -S "$src/examples" -B "$tmp/build-example" -DCMAKE_PREFIX_PATH="$tmp/prefix" \
  -DCMAKE_C_FLAGS="$extra" > "$tmp/cmake.log"
cmake --build "$tmp/build-example" > "$tmp/build.log"
"$sslc" train "$src/configs/simclr.json" --out "$tmp/runs" --quiet --set data.limit=128 \
  --set train.batch_size=32 --set train.max_steps=2 --set eval.knn_every=0 \
  --set model.encoder.width=4 > /dev/null
ckpt="$tmp/runs/simclr/checkpoints/last.safetensors"
"$tmp/ex_pkgconfig" "$ckpt" 6 | tee "$tmp/out1"
"$tmp/build-example/embed_images" "$ckpt" 6 > "$tmp/out2"
grep -q "features (6, 32)" "$tmp/out1" || { echo "FAIL: unexpected output"; exit 1; }
cmp "$tmp/out1" "$tmp/out2" || { echo "FAIL: pkg-config and CMake builds differ"; exit 1; }
echo "2 passed, 0 failed"
