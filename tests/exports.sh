#!/usr/bin/env bash
# The shared library exports exactly the functions include/ssl/ declares: nothing internal
# (ssl__*, helpers without SSL_API) and nothing declared missing (a declaration without SSL_API).
# Declarations come from GCC's -aux-info over <ssl/ssl.h>, exports from nm -D --defined-only.
# Usage: exports.sh SOURCE_DIR SHARED_LIBRARY. Exit 77 (skipped) without gcc or nm.
set -euo pipefail
src=$1
lib=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
command -v gcc > /dev/null && command -v nm > /dev/null ||
  { echo "SKIP: needs gcc (-aux-info) and nm (binutils)"; exit 77; }

echo '#include <ssl/ssl.h>' > "$tmp/all.c"
gcc -std=c11 -I"$src/include" -aux-info "$tmp/aux" -fsyntax-only "$tmp/all.c"
# "/* .../include/ssl/core.h:42:NC */ extern const char *ssl_err_name (int);": the name is the
# last word before the first parenthesis
grep -E "^/\\* [^ ]*include/ssl/[a-z_]+\\.h:" "$tmp/aux" | sed -E 's|^/\*[^*]*\*/ ||; s/\(.*//' |
  awk '{ sub(/^\*+/, "", $NF); print $NF }' | sort -u > "$tmp/declared"
[ "$(wc -l < "$tmp/declared")" -ge 100 ] || fail "only $(wc -l < "$tmp/declared") declarations found"
# Defined dynamic symbols, less what the toolchain itself adds (_init/_fini; a sanitizer
# build's instrumentation globals).
nm -D --defined-only "$lib" | awk '{ print $NF }' | sed 's/@.*//' |
  grep -vE '^(_init|_fini|__odr_asan_gen_.*|___?asan_.*|__ubsan_.*|__sancov_.*)$' | sort -u > "$tmp/exported"

extra=$(comm -13 "$tmp/declared" "$tmp/exported")
missing=$(comm -23 "$tmp/declared" "$tmp/exported")
[ -z "$extra" ] || fail "$(echo "$extra" | wc -l) exported but not declared in include/ssl/: $(echo $extra | head -c 2000)"
[ -z "$missing" ] || fail "$(echo "$missing" | wc -l) declared but not exported (SSL_API missing, or not defined): $(echo $missing | head -c 2000)"
echo "2 passed, 0 failed ($(wc -l < "$tmp/declared") functions declared and exported)"
