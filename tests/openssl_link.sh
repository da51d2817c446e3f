#!/usr/bin/env bash
# A program using OpenSSL and libsslc (tests/openssl_link/app.c), built against a temporary
# install: with `pkg-config --libs sslc openssl` and `openssl sslc`, with pkg-config --static
# (both libraries' .a), and with CMake (find_package(sslc) + OpenSSL::SSL), shared and static.
# Each build must run and print what both libraries computed; shared builds must need both
# sonames and resolve libssl.so.3 to OpenSSL's file, static builds neither; the two shared
# libraries must not export a common symbol. Usage: openssl_link.sh SSLC SOURCE_DIR BINARY_DIR.
# Exit 77 (skipped) without OpenSSL's development files (apt-get install libssl-dev).
set -euo pipefail
src=$2
bin=$3
source "$src/tests/cli_lib.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
extra=${SSL_EXAMPLE_CFLAGS:-}
pkg-config --exists openssl 2> /dev/null || { echo "SKIP: no openssl.pc (apt-get install libssl-dev)"; exit 77; }
ossl_libdir=$(pkg-config --variable=libdir openssl)
[ -e "$ossl_libdir/libssl.a" ] || { echo "SKIP: no static libssl.a (apt-get install libssl-dev)"; exit 77; }

prefix="$tmp/prefix"
cmake --install "$bin" --prefix "$prefix" > "$tmp/install.log"
pcdir=$(dirname "$(find "$prefix" -name sslc.pc | head -1)")
[ -n "$pcdir" ] && [ "$pcdir" != . ] || fail "no sslc.pc installed"
libdir=$(PKG_CONFIG_PATH="$pcdir" pkg-config --variable=libdir sslc)
# nothing of ours is called libssl: no -lssl can find it
found=$(find "$prefix" -name 'libssl.*')
[ -z "$found" ] || fail "installed files named as OpenSSL's library: $found"
ls "$libdir"/libsslc.a "$libdir"/libsslc.so > /dev/null || fail "libsslc.a / libsslc.so not in $libdir"
soname=$(readelf -d "$libdir/libsslc.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[[ "$soname" =~ ^libsslc\.so\.[0-9]+$ ]] || fail "soname '$soname', expected libsslc.so.N"
# the loader never binds one library's symbol to the other: no symbol is exported by both
exports() { nm -D --defined-only "$1" | awk '{ print $NF }' | sed 's/@.*//' | sort -u; }
common=$(comm -12 <(exports "$libdir/libsslc.so") <(cat <(exports "$ossl_libdir/libssl.so") \
  <(exports "$ossl_libdir/libcrypto.so") | sort -u) | grep -vE '^(_init|_fini)$' || true)
[ -z "$common" ] || fail "symbols exported by libsslc and OpenSSL: $common"
pass=$((pass + 1))

resolved() { readlink -f "$(ldd "$1" | awk -v l="$2" '$1 == l { print $3 }')"; } # EXE SONAME
needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
check_run() { # NAME EXE shared|static
  local name=$1 exe=$2 kind=$3
  expect 0 "" -- "$exe"
  grep -q "sha256(abc) ba7816bf tls TLSv1.3" <<< "$out" || fail "$name: OpenSSL's output missing: $out"
  grep -q "relu 0 2 0 4" <<< "$out" || fail "$name: libsslc's output missing: $out"
  grep -q "SSL_ERR_SHAPE" <<< "$out" || fail "$name: no shape error: $out"
  local deps
  deps=$(needed "$exe")
  if [ "$kind" = shared ]; then
    grep -qx "$soname" <<< "$deps" || fail "$name does not need $soname: $deps"
    grep -qx "libssl.so.3" <<< "$deps" || fail "$name does not need OpenSSL's libssl.so.3: $deps"
    [ "$(resolved "$exe" libssl.so.3)" = "$(readlink -f "$ossl_libdir/libssl.so.3")" ] ||
      fail "$name: libssl.so.3 is not OpenSSL's: $(ldd "$exe")"
    [ "$(resolved "$exe" "$soname")" = "$(readlink -f "$libdir/$soname")" ] ||
      fail "$name: $soname is not the installed one: $(ldd "$exe")"
  else
    ! grep -qE "^lib(ssl|sslc)\.so" <<< "$deps" || fail "$name is not static in libsslc and libssl: $deps"
  fi
}

export PKG_CONFIG_PATH="$pcdir"
for order in "sslc openssl" "openssl sslc"; do
  exe="$tmp/app_pc_${order// /_}"
  # shellcheck disable=SC2086  # pkg-config's output is a list of flags
  cc -std=c11 -Wall -Wextra -Werror $extra "$src/tests/openssl_link/app.c" \
    $(pkg-config --cflags --libs $order) -o "$exe" || fail "pkg-config --libs $order: link failed"
  check_run "pkg-config --libs $order" "$exe" shared
done
# static: the same flags with both libraries' archives in place of -lsslc -lssl -lcrypto
# shellcheck disable=SC2086
flags=$(pkg-config --cflags --static --libs sslc openssl |
  sed -E 's/(^| )-l(sslc|ssl|crypto)( |$)/\1-l:lib\2.a\3/g; s/(^| )-l(sslc|ssl|crypto)( |$)/\1-l:lib\2.a\3/g')
# shellcheck disable=SC2086
cc -std=c11 -Wall -Wextra -Werror $extra "$src/tests/openssl_link/app.c" $flags -o "$tmp/app_pc_static" ||
  fail "pkg-config --static: link failed ($flags)"
check_run "pkg-config --static" "$tmp/app_pc_static" static

for kind in shared static; do
  static=OFF
  [ "$kind" = static ] && static=ON
  cmake -S "$src/tests/openssl_link" -B "$tmp/cmake-$kind" -DCMAKE_PREFIX_PATH="$prefix" \
    -DAPP_STATIC=$static -DCMAKE_C_FLAGS="$extra" > "$tmp/cmake-$kind.log" 2>&1 ||
    fail "CMake ($kind) configure: $(cat "$tmp/cmake-$kind.log")"
  cmake --build "$tmp/cmake-$kind" > "$tmp/build-$kind.log" 2>&1 ||
    fail "CMake ($kind) build: $(cat "$tmp/build-$kind.log")"
  check_run "CMake $kind" "$tmp/cmake-$kind/app" $kind
done
echo "$pass passed, 0 failed"
