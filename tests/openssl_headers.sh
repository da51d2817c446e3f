#!/usr/bin/env bash
# Our public headers beside OpenSSL's: one file includes <openssl/ssl.h> and <ssl/ssl.h> in
# either order and compiles with -Wall -Wextra -Werror; an OpenSSL SSL * does not convert to any
# of our types; and no ssl_/SSL_ name our headers use (tag, typedef, function, enum constant,
# macro) is a name any includable OpenSSL header defines or uses.
# Usage: openssl_headers.sh SOURCE_DIR [CC]. Exit 77 (skipped) without OpenSSL's headers.
set -euo pipefail
src=$1
cc=${2:-cc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
flags=(-std=c11 -Wall -Wextra -Werror -I"$src/include")

echo '#include <openssl/ssl.h>' > "$tmp/probe.c"
"$cc" "${flags[@]}" -fsyntax-only "$tmp/probe.c" 2> /dev/null ||
  { echo "SKIP: OpenSSL headers not installed (apt-get install libssl-dev)"; exit 77; }

pass=0
for order in "openssl/ssl.h ssl/ssl.h" "ssl/ssl.h openssl/ssl.h"; do
  {
    for h in $order; do echo "#include <$h>"; done
    cat << 'EOF'
#include <stdio.h>
int main(void) {
    SSL_CTX *tls = SSL_CTX_new(TLS_client_method());
    ssl_tensor_t *none = NULL;
    printf("%s %s %d\n", OpenSSL_version(OPENSSL_VERSION), ssl_err_name(SSL_ERR_SHAPE), none == NULL);
    SSL_CTX_free(tls);
    return 0;
}
EOF
  } > "$tmp/both.c"
  "$cc" "${flags[@]}" -c "$tmp/both.c" -o "$tmp/both.o" || fail "<${order// />, <}> do not compile together"
  pass=$((pass + 1))
done

# The tag OpenSSL's SSL has (struct ssl_st) once named our safetensors reader: an SSL * must not
# convert silently to any pointer type of ours.
cat > "$tmp/convert.c" << 'EOF'
#include <openssl/ssl.h>
#include <ssl/ssl.h>
ssl_st_t *as_reader(SSL *s) { return s; }
EOF
if "$cc" "${flags[@]}" -c "$tmp/convert.c" -o "$tmp/convert.o" 2> /dev/null; then
  fail "an SSL * converts to ssl_st_t * without a diagnostic"
fi
pass=$((pass + 1))

# Every name OpenSSL defines or uses: macros and every identifier of the preprocessed headers,
# over all its headers, or (when they do not preprocess together) those that do on their own.
for h in /usr/include/openssl/*.h /usr/include/*/openssl/*.h; do
  [ -e "$h" ] && echo "#include <openssl/$(basename "$h")>"
done | sort -u > "$tmp/openssl_all.c"
if ! "$cc" -std=c11 -E "$tmp/openssl_all.c" -o /dev/null 2> /dev/null; then
  while read -r line; do
    echo "$line" > "$tmp/one.c"
    if "$cc" -std=c11 -E "$tmp/one.c" -o /dev/null 2> /dev/null; then echo "$line"; fi
  done < "$tmp/openssl_all.c" > "$tmp/openssl_some.c"
  mv "$tmp/openssl_some.c" "$tmp/openssl_all.c"
fi
[ "$(wc -l < "$tmp/openssl_all.c")" -ge 20 ] || fail "only $(wc -l < "$tmp/openssl_all.c") OpenSSL headers compile"
ident='[A-Za-z_][A-Za-z0-9_]*'
{
  "$cc" -std=c11 -E -dM "$tmp/openssl_all.c" | awk '{ print $2 }' | sed 's/(.*//'
  "$cc" -std=c11 -E -P "$tmp/openssl_all.c" | grep -oE "\\b$ident\\b"
} | sort -u > "$tmp/openssl_names"
# Ours: every ssl_/SSL_ identifier in the code of include/ssl/ (comments and strings aside).
for h in "$src"/include/ssl/*.h; do
  "$cc" -std=c11 -fpreprocessed -dD -E -P "$h" 2> /dev/null | grep -v '^#include' |
    sed 's/"[^"]*"//g' | grep -oE "\\b$ident\\b" | grep -E '^(ssl|SSL)_' || true
done | sort -u > "$tmp/our_names"
[ "$(wc -l < "$tmp/our_names")" -ge 100 ] || fail "only $(wc -l < "$tmp/our_names") names found in include/ssl"
shared=$(comm -12 "$tmp/openssl_names" "$tmp/our_names")
[ -z "$shared" ] || fail "names in both OpenSSL's headers and include/ssl/: $(echo $shared)"
pass=$((pass + 1))
echo "$pass passed, 0 failed ($(wc -l < "$tmp/our_names") of our names against $(wc -l < "$tmp/openssl_names") of OpenSSL's)"
