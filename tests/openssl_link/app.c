/* A program that speaks TLS (OpenSSL's libssl) and uses this library (libsslc) at once: built by
 * tests/openssl_link.sh with pkg-config and with CMake, against shared and static libraries. */
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <ssl/ssl.h>

#include <stdio.h>

int main(void)
{
    /* OpenSSL: a TLS client context and connection, and SHA-256 from libcrypto */
    SSL_CTX *tls = SSL_CTX_new(TLS_client_method());
    SSL *conn = tls ? SSL_new(tls) : NULL;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (!conn || !EVP_Digest("abc", 3, md, &md_len, EVP_sha256(), NULL)) {
        fprintf(stderr, "OpenSSL failed\n");
        return 1;
    }
    printf("sha256(abc) ");
    for (unsigned int i = 0; i < 4; i++)
        printf("%02x", md[i]);
    printf(" tls %s\n", SSL_get_version(conn));
    SSL_free(conn);
    SSL_CTX_free(tls);

    /* libsslc: an op on a tensor, and an error naming both shapes */
    ssl_ctx_t *ctx = ssl_ctx_create(1 << 20);
    const float v[4] = {-1.0f, 2.0f, -3.0f, 4.0f};
    const int64_t shape[2] = {2, 2};
    ssl_tensor_t *x = ctx ? ssl_tensor_from(ctx, 2, shape, v) : NULL;
    ssl_tensor_t *y = ssl_relu(ctx, x);
    if (!y) {
        fprintf(stderr, "libsslc failed: %s\n", ssl_last_error());
        return 1;
    }
    printf("relu %g %g %g %g\n", y->data[0], y->data[1], y->data[2], y->data[3]);
    ssl_tensor_t *bad =
        ssl_matmul(ctx, x, ssl_tensor_zeros(ctx, 2, (const int64_t[2]){3, 1}), 0, 0);
    printf("%s %s\n", bad ? "no error" : ssl_err_name(ssl_last_status()),
           ssl_strerror(SSL_ERR_SHAPE));
    ssl_ctx_free(ctx);
    return 0;
}
