/* safetensors: round trips (bit-exact, metadata, 0-d to 4-d and empty shapes), dtype
 * conversion, every malformed case (from a file and from memory), atomic writes, and the
 * parameter store save/load with its missing/unexpected/mis-shaped report. */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include "io/io_internal.h"
#include "ssl/io.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_dir[64];

static int setup_dir(void **state)
{
    (void)state;
    strcpy(g_dir, "/tmp/ssl_test_st_XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *tmp_path(const char *name)
{
    static char buf[4][192];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

static unsigned char *read_all(const char *path, size_t *len)
{
    char *buf;
    assert_int_equal(ssl__read_file(path, 1u << 30, &buf, len), SSL_OK);
    return (unsigned char *)buf;
}

static void write_all(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (len)
        assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* A file image: 8-byte length of hdr (or hlen_override if non-zero), hdr, data. */
static unsigned char *image(const char *hdr, uint64_t hlen_override, const void *data, size_t dlen,
                            size_t *len)
{
    size_t hl = strlen(hdr);
    uint64_t n = hlen_override ? hlen_override : hl;
    unsigned char *b = malloc(8 + hl + dlen + 1);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(n >> (8 * i));
    memcpy(b + 8, hdr, hl);
    if (dlen)
        memcpy(b + 8 + hl, data, dlen);
    *len = 8 + hl + dlen;
    return b;
}

/* The image must fail the same way from a file (message names the path) and from memory. */
static void expect_bad_image(const unsigned char *img, size_t len, int status, const char *what)
{
    const char *path = tmp_path("bad.safetensors");
    write_all(path, img, len);
    ssl_st_t *f = ssl_st_open(path);
    if (f)
        ssl_st_close(f);
    tu_assert_error(f, status, path, what, NULL);
    f = ssl_st_open_memory(img, len, "mem.st");
    if (f)
        ssl_st_close(f);
    tu_assert_error(f, status, "mem.st: ", what, NULL);
}

static void expect_bad(const char *hdr, const void *data, size_t dlen, int status, const char *what)
{
    size_t len;
    unsigned char *img = image(hdr, 0, data, dlen, &len);
    expect_bad_image(img, len, status, what);
    free(img);
}

/* ---------------------------------------------------------------- round trip */

static void test_roundtrip(void **state)
{
    (void)state;
    float scalar = 3.5f;
    float vec[5];
    float t4[2 * 3 * 4 * 5];
    for (int i = 0; i < 120; i++)
        t4[i] = (float)i * 0.37f - 20.0f;
    /* Special values must survive bit for bit. */
    uint32_t specials[5] = {0x7FC00001u, 0x80000000u, 0x7F800000u, 0x00000001u, 0xFF7FFFFFu};
    memcpy(vec, specials, sizeof specials);
    int64_t s1[1] = {5}, s4[4] = {2, 3, 4, 5}, s0[2] = {0, 3};
    const char *meta_cfg = "{\"model\": {\"name\": \"r\\u00e9s\\\"net\"},\n\t\"x\": 1}";
    ssl_st_writer_t *w = ssl_st_writer_create();
    assert_int_equal(ssl_st_writer_add(w, "z.scalar", 0, NULL, &scalar), SSL_OK);
    assert_int_equal(ssl_st_writer_add(w, "b.vec", 1, s1, vec), SSL_OK);
    assert_int_equal(ssl_st_writer_add(w, "a.t4", 4, s4, t4), SSL_OK);
    assert_int_equal(ssl_st_writer_add(w, "empty", 2, s0, NULL), SSL_OK);
    int32_t steps[2] = {-7, 1 << 30};
    int64_t s2[1] = {2};
    assert_int_equal(ssl_st_writer_add_raw(w, "step", SSL_DTYPE_I32, 1, s2, steps), SSL_OK);
    assert_int_equal(ssl_st_writer_meta(w, "format", "sslc-1"), SSL_OK);
    assert_int_equal(ssl_st_writer_meta(w, "config", "old"), SSL_OK);
    assert_int_equal(ssl_st_writer_meta(w, "config", meta_cfg), SSL_OK); /* replaces */
    assert_int_equal(ssl_st_writer_meta(w, "caf\xc3\xa9", ""), SSL_OK);
    /* Writer argument errors. */
    assert_int_equal(ssl_st_writer_add(w, "a.t4", 1, s1, vec), SSL_ERR_INVALID);
    assert_non_null(strstr(ssl_last_error(), "duplicate tensor name 'a.t4'"));
    assert_int_equal(ssl_st_writer_add(w, "__metadata__", 1, s1, vec), SSL_ERR_INVALID);
    assert_int_equal(ssl_st_writer_add(w, "bad\xff", 1, s1, vec), SSL_ERR_INVALID);
    int64_t neg[1] = {-1};
    assert_int_equal(ssl_st_writer_add(w, "neg", 1, neg, vec), SSL_ERR_INVALID);
    assert_int_equal(ssl_st_writer_add(w, "nodata", 1, s1, NULL), SSL_ERR_INVALID);
    assert_int_equal(ssl_st_writer_meta(w, "k", "\xc0\xaf"), SSL_ERR_INVALID);
    const char *path = tmp_path("rt.safetensors");
    assert_int_equal(ssl_st_writer_save(w, path), SSL_OK);
    ssl_st_writer_free(w);

    size_t len;
    unsigned char *img = read_all(path, &len);
    uint64_t n = 0;
    for (int i = 0; i < 8; i++)
        n |= (uint64_t)img[i] << (8 * i);
    assert_int_equal(n % 8, 0); /* data aligned */
    assert_int_equal(img[8], '{');
    assert_int_equal(img[8 + n - 1] == ' ' || img[8 + n - 1] == '}', 1);
    assert_int_equal(len, 8 + n + 4 + 20 + 480 + 0 + 8);

    for (int pass = 0; pass < 2; pass++) {
        ssl_st_t *f = pass ? ssl_st_open_memory(img, len, "mem") : ssl_st_open(path);
        assert_non_null(f);
        assert_string_equal(ssl_st_path(f), pass ? "mem" : path);
        assert_int_equal(ssl_st_count(f), 5);
        /* Insertion order. */
        assert_string_equal(ssl_st_tensor(f, 0)->name, "z.scalar");
        assert_string_equal(ssl_st_tensor(f, 1)->name, "b.vec");
        assert_string_equal(ssl_st_tensor(f, 2)->name, "a.t4");
        assert_string_equal(ssl_st_tensor(f, 3)->name, "empty");
        assert_null(ssl_st_tensor(f, 5));
        int i = ssl_st_find(f, "z.scalar");
        const ssl_st_tensor_t *t = ssl_st_tensor(f, i);
        assert_int_equal(t->ndim, 0);
        assert_int_equal(t->numel, 1);
        float x = 0;
        assert_int_equal(ssl_st_read_f32(f, i, &x, 1), SSL_OK);
        assert_true(x == 3.5f);
        i = ssl_st_find(f, "a.t4");
        t = ssl_st_tensor(f, i);
        assert_int_equal(t->ndim, 4);
        assert_int_equal(t->shape[3], 5);
        assert_int_equal(t->dtype, SSL_DTYPE_F32);
        assert_int_equal(t->offset % 4, 0);
        float back[120];
        assert_int_equal(ssl_st_read_f32(f, i, back, 120), SSL_OK);
        assert_memory_equal(back, t4, sizeof t4);
        assert_int_equal(ssl_st_read_f32(f, i, back, 119), SSL_ERR_INVALID);
        assert_non_null(strstr(ssl_last_error(), "'a.t4' has 120 elements"));
        float v[5];
        assert_int_equal(ssl_st_read_f32(f, ssl_st_find(f, "b.vec"), v, 5), SSL_OK);
        assert_memory_equal(v, specials, sizeof specials);
        i = ssl_st_find(f, "empty");
        assert_int_equal(ssl_st_tensor(f, i)->numel, 0);
        assert_int_equal(ssl_st_read_f32(f, i, NULL, 0), SSL_OK);
        int32_t st[2];
        i = ssl_st_find(f, "step");
        assert_int_equal(ssl_st_tensor(f, i)->dtype, SSL_DTYPE_I32);
        assert_int_equal(ssl_st_read_raw(f, i, st, sizeof st), SSL_OK);
        assert_memory_equal(st, steps, sizeof st);
        assert_int_equal(ssl_st_read_f32(f, i, v, 2), SSL_OK);
        assert_true(v[0] == -7.0f && v[1] == 1073741824.0f);
        assert_int_equal(ssl_st_find(f, "nope"), -1);
        assert_int_equal(ssl_st_read_f32(f, 99, v, 1), SSL_ERR_INVALID);
        assert_int_equal(ssl_st_meta_count(f), 3);
        assert_string_equal(ssl_st_meta(f, "format"), "sslc-1");
        assert_string_equal(ssl_st_meta(f, "config"), meta_cfg);
        assert_string_equal(ssl_st_meta(f, "caf\xc3\xa9"), "");
        assert_null(ssl_st_meta(f, "none"));
        const char *k, *val;
        assert_int_equal(ssl_st_meta_at(f, 0, &k, &val), SSL_OK);
        assert_string_equal(k, "format");
        ssl_st_close(f);
    }
    free(img);

    /* One-call form; an empty file ({} and no data) is valid. */
    ssl_st_entry_t e = {"w", 1, s1, vec};
    ssl_st_kv_t kv = {"k", "v"};
    assert_int_equal(ssl_st_save(tmp_path("one.safetensors"), &e, 1, &kv, 1), SSL_OK);
    ssl_st_t *f = ssl_st_open(tmp_path("one.safetensors"));
    assert_non_null(f);
    assert_string_equal(ssl_st_meta(f, "k"), "v");
    ssl_st_close(f);
    assert_int_equal(ssl_st_save(tmp_path("none.safetensors"), NULL, 0, NULL, 0), SSL_OK);
    f = ssl_st_open(tmp_path("none.safetensors"));
    assert_non_null(f);
    assert_int_equal(ssl_st_count(f), 0);
    ssl_st_close(f);
}

/* ---------------------------------------------------------------- conversions */

static void test_dtype_conversion(void **state)
{
    (void)state;
    assert_string_equal(ssl_dtype_name(SSL_DTYPE_BF16), "BF16");
    assert_int_equal(ssl_dtype_size(SSL_DTYPE_F64), 8);
    assert_int_equal(ssl_dtype_from_name("U8"), SSL_DTYPE_U8);
    assert_int_equal(ssl_dtype_from_name("f32"), -1);
    /* F16: 1, -2, 65504 (max), 2^-24 (smallest subnormal), inf, NaN, -0, 0.333251953125. */
    uint16_t h[8] = {0x3C00, 0xC000, 0x7BFF, 0x0001, 0x7C00, 0x7E00, 0x8000, 0x3555};
    float hw[8] = {1, -2, 65504, 5.9604644775390625e-8f, INFINITY, NAN, -0.0f, 0.333251953125f};
    uint16_t bf[3] = {0x3F80, 0xC049, 0xFF80}; /* 1, -3.140625, -inf */
    float bw[3] = {1, -3.140625f, -INFINITY};
    double f64[2] = {0.1, -1e300};
    int64_t i64[2] = {-(1LL << 40), 7};
    uint8_t u8[3] = {0, 200, 255};
    uint8_t bl[2] = {0, 1};
    int8_t i8[2] = {-128, 127};
    uint8_t e4[5] = {0x38, 0x7E, 0x7F, 0x01, 0xB8}; /* 1, 448, NaN, 2^-9, -1 */
    uint8_t e5[2] = {0x3C, 0x7C};                   /* 1, inf */
    unsigned char data[256];
    size_t d = 0;
#define PUT(x)                                                                                     \
    memcpy(data + d, x, sizeof x);                                                                 \
    d += sizeof x
    PUT(h);
    PUT(bf);
    PUT(f64); /* offset 22: unaligned on purpose */
    PUT(i64);
    PUT(u8);
    PUT(bl);
    PUT(i8);
    PUT(e4);
    PUT(e5);
#undef PUT
    const char *hdr = "{\"h\":{\"dtype\":\"F16\",\"shape\":[2,4],\"data_offsets\":[0,16]},"
                      "\"bf\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[16,22]},"
                      "\"d\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[22,38]},"
                      "\"l\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[38,54]},"
                      "\"u\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[54,57]},"
                      "\"b\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[57,59]},"
                      "\"c\":{\"dtype\":\"I8\",\"shape\":[2],\"data_offsets\":[59,61]},"
                      "\"e4\":{\"dtype\":\"F8_E4M3\",\"shape\":[5],\"data_offsets\":[61,66]},"
                      "\"e5\":{\"dtype\":\"F8_E5M2\",\"shape\":[2],\"data_offsets\":[66,68]}}";
    assert_int_equal(d, 68);
    size_t len;
    unsigned char *img = image(hdr, 0, data, d, &len);
    ssl_st_t *f = ssl_st_open_memory(img, len, "conv");
    if (!f)
        fail_msg("%s", ssl_last_error());
    float out[8];
    assert_int_equal(ssl_st_read_f32(f, ssl_st_find(f, "h"), out, 8), SSL_OK);
    for (int i = 0; i < 8; i++) {
        if (isnan(hw[i]))
            assert_true(isnan(out[i]));
        else
            assert_memory_equal(&out[i], &hw[i], 4);
    }
    assert_int_equal(ssl_st_read_f32(f, ssl_st_find(f, "bf"), out, 3), SSL_OK);
    assert_memory_equal(out, bw, sizeof bw);
    assert_int_equal(ssl_st_read_f32(f, ssl_st_find(f, "d"), out, 2), SSL_OK);
    assert_true(out[0] == 0.1f && out[1] == -INFINITY);
    assert_int_equal(ssl_st_read_f32(f, ssl_st_find(f, "l"), out, 2), SSL_OK);
    assert_true(out[0] == -1099511627776.0f && out[1] == 7.0f);
    assert_int_equal(ssl_st_read_f32(f, ssl_st_find(f, "u"), out, 3), SSL_OK);
    assert_true(out[0] == 0 && out[1] == 200 && out[2] == 255);
    assert_int_equal(ssl_st_read_f32(f, ssl_st_find(f, "b"), out, 2), SSL_OK);
    assert_true(out[0] == 0 && out[1] == 1);
    assert_int_equal(ssl_st_read_f32(f, ssl_st_find(f, "c"), out, 2), SSL_OK);
    assert_true(out[0] == -128 && out[1] == 127);
    assert_int_equal(ssl_st_read_f32(f, ssl_st_find(f, "e4"), out, 5), SSL_OK);
    assert_true(out[0] == 1 && out[1] == 448 && isnan(out[2]) && out[3] == 0x1p-9f && out[4] == -1);
    assert_int_equal(ssl_st_read_f32(f, ssl_st_find(f, "e5"), out, 2), SSL_OK);
    assert_true(out[0] == 1 && out[1] == INFINITY);
    ssl_st_close(f);
    free(img);

    /* A large F16 tensor (several conversion chunks) from a file. */
    int64_t n = 100000;
    uint16_t *big = malloc((size_t)n * 2);
    for (int64_t i = 0; i < n; i++)
        big[i] = (uint16_t)(i % 0x7C00); /* every finite non-negative half */
    char h2[128];
    snprintf(h2, sizeof h2,
             "{\"x\":{\"dtype\":\"F16\",\"shape\":[%lld],\"data_offsets\":[0,%lld]}}", (long long)n,
             (long long)(2 * n));
    img = image(h2, 0, big, (size_t)n * 2, &len);
    write_all(tmp_path("f16.safetensors"), img, len);
    f = ssl_st_open(tmp_path("f16.safetensors"));
    assert_non_null(f);
    float *fo = malloc((size_t)n * sizeof *fo);
    assert_int_equal(ssl_st_read_f32(f, 0, fo, (size_t)n), SSL_OK);
    for (int64_t i = 0; i < n; i += 997) {
        uint16_t v = big[i];
        int e = (v >> 10) & 31, m = v & 1023;
        float want = e ? ldexpf(1.0f + (float)m / 1024.0f, e - 15) : ldexpf((float)m, -24);
        assert_true(fo[i] == want);
    }
    ssl_st_close(f);
    free(fo);
    free(img);
    free(big);
}

/* ---------------------------------------------------------------- malformed files */

#define T1 "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}"

static void test_malformed(void **state)
{
    (void)state;
    unsigned char zeros[64] = {0};
    size_t len;
    /* Sizes and header length. */
    expect_bad_image(zeros, 0, SSL_ERR_FORMAT, "the file is empty (0 bytes)");
    expect_bad_image(zeros, 5, SSL_ERR_FORMAT, "5 bytes, too short");
    unsigned char *img = image(T1, 1000, zeros, 8, &len);
    expect_bad_image(img, len, SSL_ERR_FORMAT, "header length 1000 runs past the end");
    free(img);
    img = image(T1, 100000001, zeros, 8, &len);
    expect_bad_image(img, len, SSL_ERR_FORMAT, "header length 100000001 exceeds");
    free(img);
    img = image(T1, 0xFFFFFFFFFFFFFFF0ull, zeros, 8, &len);
    expect_bad_image(img, len, SSL_ERR_FORMAT, "exceeds the 100000000-byte limit");
    free(img);
    img = image("", 0, NULL, 0, &len);
    expect_bad_image(img, len, SSL_ERR_FORMAT, "header is empty");
    free(img);
    /* Header text. */
    expect_bad(" {}", NULL, 0, SSL_ERR_FORMAT, "does not start with '{' (byte 8 is 0x20)");
    expect_bad("{\"a\xff\":1}", NULL, 0, SSL_ERR_FORMAT, "not valid UTF-8 (file byte 11)");
    expect_bad("{\"a\":", NULL, 0, SSL_ERR_FORMAT, "header:1:6 (byte 13)");
    expect_bad("{} {}", NULL, 0, SSL_ERR_FORMAT, "after the JSON value");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
               zeros, 8, SSL_ERR_FORMAT, "duplicate key 'a'");
    /* Entries. */
    expect_bad("{\"a\":3}", NULL, 0, SSL_ERR_FORMAT, "tensor 'a': expected an object, got 3");
    expect_bad("{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", zeros, 8,
               SSL_ERR_FORMAT, "tensor 'a': unknown dtype 'F33'");
    expect_bad("{\"a\":{\"dtype\":\"F4\",\"shape\":[2],\"data_offsets\":[0,1]}}", zeros, 1,
               SSL_ERR_UNSUPPORTED, "dtype F4 is not supported");
    expect_bad("{\"a\":{\"dtype\":1,\"shape\":[2],\"data_offsets\":[0,8]}}", zeros, 8,
               SSL_ERR_FORMAT, "\"dtype\" must be a string");
    expect_bad("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", zeros, 8, SSL_ERR_FORMAT,
               "tensor 'a': missing \"dtype\"");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", zeros, 8, SSL_ERR_FORMAT,
               "missing \"shape\"");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", zeros, 8, SSL_ERR_FORMAT,
               "missing \"data_offsets\"");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", zeros, 8,
               SSL_ERR_FORMAT, "\"shape\" must be an array");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,8]}}", zeros, 8,
               SSL_ERR_FORMAT, "shape[1] must be a non-negative integer, got -1");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,8]}}", zeros, 8,
               SSL_ERR_FORMAT, "shape[0] must be a non-negative integer, got 1.5");
    expect_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296,4294967296],"
               "\"data_offsets\":[0,8]}}",
               zeros, 8, SSL_ERR_FORMAT, "overflows");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", zeros, 8,
               SSL_ERR_FORMAT, "\"data_offsets\" must be [begin, end]");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,9]}}", zeros, 8,
               SSL_ERR_FORMAT, "\"data_offsets\" must be [begin, end]");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,-8]}}", zeros, 8,
               SSL_ERR_FORMAT, "\"data_offsets\" must be [begin, end]");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", zeros, 8,
               SSL_ERR_FORMAT, "data_offsets [8, 0] end before they begin");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", zeros, 20,
               SSL_ERR_FORMAT,
               "tensor 'a': F32 (2, 3) needs 24 bytes but data_offsets [0, 20] "
               "span 20");
    /* Offsets against the data buffer. */
    expect_bad(T1, zeros, 4, SSL_ERR_FORMAT,
               "tensor 'a': data_offsets [0, 8] end past the "
               "4-byte data buffer");
    expect_bad(T1, zeros, 12, SSL_ERR_FORMAT,
               "cover 8 data bytes but the file has 12 after the "
               "header: 4 trailing bytes");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
               zeros, 16, SSL_ERR_FORMAT, "[0, 16) overlaps tensor");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
               zeros, 16, SSL_ERR_FORMAT, "overlaps");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}",
               zeros, 20, SSL_ERR_FORMAT,
               "tensor 'b' starts at data byte 12 but tensor 'a' "
               "ends at 8: a 4-byte hole");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", zeros, 12,
               SSL_ERR_FORMAT, "starts at data byte 4, not 0");
    /* Metadata. */
    expect_bad("{\"__metadata__\":{\"k\":1}}", NULL, 0, SSL_ERR_FORMAT,
               "__metadata__ value for key 'k' must be a string, got 1");
    expect_bad("{\"__metadata__\":{\"k\":{\"x\":\"y\"}}}", NULL, 0, SSL_ERR_FORMAT,
               "must be a string, got an object");
    expect_bad("{\"__metadata__\":[\"k\"]}", NULL, 0, SSL_ERR_FORMAT,
               "\"__metadata__\" must be an object of strings, got an array");
    /* Valid edge cases: {} with padding, zero-size tensors sharing an offset, extra fields. */
    const char *ok[] = {
        "{}      ",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        "\"c\":{\"dtype\":\"F32\",\"shape\":[3,0],\"data_offsets\":[8,8]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"extra\":1}}",
    };
    size_t dl[] = {0, 8, 8};
    for (int i = 0; i < 3; i++) {
        img = image(ok[i], 0, zeros, dl[i], &len);
        ssl_st_t *f = ssl_st_open_memory(img, len, "ok");
        if (!f)
            fail_msg("valid case %d rejected: %s", i, ssl_last_error());
        ssl_st_close(f);
        free(img);
    }
    /* Not a file. */
    ssl_st_t *f = ssl_st_open(g_dir);
    tu_assert_error(f, SSL_ERR_IO, g_dir, "not a regular file", NULL);
    f = ssl_st_open(tmp_path("missing.safetensors"));
    tu_assert_error(f, SSL_ERR_IO, "missing.safetensors: cannot open", NULL);
}

/* Every truncation and many single-byte corruptions of a valid file fail cleanly or open. */
static void test_truncations_never_crash(void **state)
{
    (void)state;
    float v[6] = {1, 2, 3, 4, 5, 6};
    int64_t s[2] = {2, 3};
    ssl_st_entry_t e[2] = {{"w", 2, s, v}, {"b", 1, s, v}};
    ssl_st_kv_t kv = {"k", "v"};
    const char *path = tmp_path("good.safetensors");
    assert_int_equal(ssl_st_save(path, e, 2, &kv, 1), SSL_OK);
    size_t len;
    unsigned char *img = read_all(path, &len);
    for (size_t cut = 0; cut < len; cut++) {
        ssl_st_t *f = ssl_st_open_memory(img, cut, "cut");
        assert_null(f);
        assert_true(ssl_last_status() == SSL_ERR_FORMAT);
    }
    unsigned char *copy = malloc(len);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            memcpy(copy, img, len);
            copy[i] ^= (unsigned char)(1u << bit);
            ssl_st_t *f = ssl_st_open_memory(copy, len, "flip");
            if (f) {
                float out[6];
                for (int j = 0; j < ssl_st_count(f); j++) {
                    const ssl_st_tensor_t *t = ssl_st_tensor(f, j);
                    if (t->numel <= 6)
                        assert_int_equal(ssl_st_read_f32(f, j, out, (size_t)t->numel), SSL_OK);
                }
                ssl_st_close(f);
            } else {
                int st = ssl_last_status();
                assert_true(st == SSL_ERR_FORMAT || st == SSL_ERR_UNSUPPORTED);
                assert_non_null(strstr(ssl_last_error(), "flip"));
            }
        }
    }
    free(copy);
    free(img);
}

/* ---------------------------------------------------------------- atomic writes */

static int count_temp_files(void)
{
    DIR *d = opendir(g_dir);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += strstr(de->d_name, ".tmp-") != NULL;
    closedir(d);
    return n;
}

static void test_atomic_write(void **state)
{
    (void)state;
    float v1[3] = {1, 2, 3}, v2[3] = {9, 9, 9};
    int64_t s[1] = {3};
    ssl_st_entry_t e1 = {"x", 1, s, v1}, e2 = {"x", 1, s, v2};
    const char *path = tmp_path("ckpt.safetensors");
    assert_int_equal(ssl_st_save(path, &e1, 1, NULL, 0), SSL_OK);
    size_t len0;
    unsigned char *before = read_all(path, &len0);
    const int stages[3] = {SSL__FAIL_WRITE, SSL__FAIL_FSYNC, SSL__FAIL_RENAME};
    for (int i = 0; i < 3; i++) {
        ssl__io_fail_next(stages[i]);
        assert_int_equal(ssl_st_save(path, &e2, 1, NULL, 0), SSL_ERR_IO);
        assert_non_null(strstr(ssl_last_error(), path));
        size_t len;
        unsigned char *after = read_all(path, &len);
        assert_int_equal(len, len0);
        assert_memory_equal(after, before, len);
        free(after);
        assert_int_equal(count_temp_files(), 0);
    }
    /* Real failures: a missing directory, and a rename over a non-empty directory. */
    const char *nodir = tmp_path("no/such/dir/x.safetensors");
    assert_int_equal(ssl_st_save(nodir, &e2, 1, NULL, 0), SSL_ERR_IO);
    assert_non_null(strstr(ssl_last_error(), nodir));
    const char *dir = tmp_path("adir");
    assert_int_equal(mkdir(dir, 0755), 0);
    write_all(tmp_path("adir/keep"), "k", 1);
    assert_int_equal(ssl_st_save(dir, &e2, 1, NULL, 0), SSL_ERR_IO);
    assert_non_null(strstr(ssl_last_error(), "renaming"));
    assert_int_equal(count_temp_files(), 0);
    /* Then a successful write replaces the file. */
    assert_int_equal(ssl_st_save(path, &e2, 1, NULL, 0), SSL_OK);
    ssl_st_t *f = ssl_st_open(path);
    float out[3];
    assert_int_equal(ssl_st_read_f32(f, 0, out, 3), SSL_OK);
    assert_memory_equal(out, v2, sizeof v2);
    ssl_st_close(f);
    free(before);
    /* Mode follows the umask like any new file (not mkstemp's 0600). */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    mode_t um = umask(0);
    umask(um);
    assert_int_equal(st.st_mode & 0777, 0666 & ~um);
}

/* ---------------------------------------------------------------- parameter store */

static ssl_params_t *make_store(int wcols, int with_extra)
{
    ssl_params_t *p = ssl_params_create();
    int64_t sw[2] = {4, wcols}, sb[1] = {4};
    assert_non_null(ssl_params_add(p, "fc.weight", 2, sw, SSL_PARAM_TRAINABLE, 0));
    assert_non_null(ssl_params_add(p, "fc.bias", 1, sb, SSL_PARAM_TRAINABLE, SSL_PARAM_NO_DECAY));
    assert_non_null(ssl_params_add(p, "bn.running_mean", 1, sb, SSL_PARAM_BUFFER, 0));
    if (with_extra)
        assert_non_null(ssl_params_add(p, "extra", 1, sb, SSL_PARAM_TRAINABLE, 0));
    return p;
}

static void fill_store(ssl_params_t *p, uint64_t seed)
{
    for (int i = 0; i < ssl_params_count(p); i++) {
        ssl_tensor_t *t = ssl_params_info(p, i)->t;
        ssl_rng_fill_normal(t->data, (size_t)t->numel, 0, 1, seed, (uint64_t)i, 0);
    }
}

static void assert_same_store(ssl_params_t *a, ssl_params_t *b)
{
    assert_int_equal(ssl_params_count(a), ssl_params_count(b));
    for (int i = 0; i < ssl_params_count(a); i++) {
        const ssl_tensor_t *x = ssl_params_info(a, i)->t;
        const ssl_tensor_t *y = ssl_params_get(b, ssl_params_info(a, i)->name);
        assert_non_null(y);
        assert_memory_equal(x->data, y->data, (size_t)x->numel * sizeof(float));
    }
}

static void test_params_roundtrip(void **state)
{
    (void)state;
    ssl_params_t *enc = make_store(3, 0), *proj = make_store(2, 0);
    fill_store(enc, 1);
    fill_store(proj, 2);
    const char *path = tmp_path("params.safetensors");
    ssl_st_writer_t *w = ssl_st_writer_create();
    assert_int_equal(ssl_st_writer_add_params(w, enc, "encoder."), SSL_OK);
    assert_int_equal(ssl_st_writer_add_params(w, proj, "projector."), SSL_OK);
    assert_int_equal(ssl_st_writer_meta(w, "epoch", "3"), SSL_OK);
    assert_int_equal(ssl_st_writer_save(w, path), SSL_OK);
    ssl_st_writer_free(w);

    ssl_st_t *f = ssl_st_open(path);
    assert_non_null(f);
    assert_int_equal(ssl_st_count(f), 6);
    assert_true(ssl_st_find(f, "encoder.fc.weight") >= 0);
    assert_true(ssl_st_find(f, "projector.bn.running_mean") >= 0);
    ssl_params_t *enc2 = make_store(3, 0), *proj2 = make_store(2, 0);
    ssl_st_report_t rep;
    assert_int_equal(ssl_st_load_params(f, enc2, "encoder.", SSL_ST_STRICT, &rep), SSL_OK);
    assert_int_equal(rep.n_loaded, 3);
    assert_int_equal(rep.n_missing + rep.n_unexpected + rep.n_mismatched, 0);
    ssl_st_report_free(&rep);
    assert_int_equal(ssl_st_load_params(f, proj2, "projector.", SSL_ST_STRICT, NULL), SSL_OK);
    assert_same_store(enc, enc2);
    assert_same_store(proj, proj2);
    ssl_st_close(f);

    /* The one-call save, and load from a path. */
    assert_int_equal(
        ssl_st_save_params(tmp_path("enc.safetensors"), enc, "", &(ssl_st_kv_t){"v", "1"}, 1),
        SSL_OK);
    ssl_params_t *enc3 = make_store(3, 0);
    assert_int_equal(
        ssl_st_load_params_file(tmp_path("enc.safetensors"), enc3, NULL, SSL_ST_STRICT, NULL),
        SSL_OK);
    assert_same_store(enc, enc3);
    assert_int_equal(ssl_st_load_params_file(tmp_path("nothere"), enc3, NULL, 0, NULL), SSL_ERR_IO);

    /* An F16 checkpoint loads converted. */
    uint16_t h[4] = {0x3C00, 0x4000, 0x4200, 0x4400}; /* 1 2 3 4 */
    size_t len;
    unsigned char *img = image(
        "{\"fc.bias\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]}}", 0, h, 8, &len);
    f = ssl_st_open_memory(img, len, "half");
    assert_int_equal(ssl_st_load_params(f, enc3, "", SSL_ST_ALLOW_MISSING, NULL), SSL_OK);
    const float want[4] = {1, 2, 3, 4};
    assert_memory_equal(ssl_params_get(enc3, "fc.bias")->data, want, sizeof want);
    ssl_st_close(f);
    free(img);

    ssl_params_free(enc);
    ssl_params_free(proj);
    ssl_params_free(enc2);
    ssl_params_free(proj2);
    ssl_params_free(enc3);
}

static void test_params_report(void **state)
{
    (void)state;
    /* File: encoder.{fc.weight (4,3), fc.bias, bn.running_mean, old}, projector.x. */
    ssl_params_t *src = make_store(3, 0);
    fill_store(src, 5);
    float old[2] = {1, 2};
    int64_t s2[1] = {2};
    ssl_st_writer_t *w = ssl_st_writer_create();
    assert_int_equal(ssl_st_writer_add_params(w, src, "encoder."), SSL_OK);
    assert_int_equal(ssl_st_writer_add(w, "encoder.old", 1, s2, old), SSL_OK);
    assert_int_equal(ssl_st_writer_add(w, "projector.x", 1, s2, old), SSL_OK);
    const char *path = tmp_path("rep.safetensors");
    assert_int_equal(ssl_st_writer_save(w, path), SSL_OK);
    ssl_st_writer_free(w);

    /* Store: fc.weight (4,4) mis-shaped, fc.bias and bn ok, extra missing. */
    ssl_params_t *dst = make_store(4, 1);
    ssl_st_t *f = ssl_st_open(path);
    ssl_st_report_t rep;
    assert_int_equal(ssl_st_load_params(f, dst, "encoder.", SSL_ST_STRICT, &rep), SSL_ERR_FORMAT);
    const char *msg = ssl_last_error();
    assert_non_null(strstr(msg, path));
    assert_non_null(strstr(msg, "1 missing (encoder.extra)"));
    assert_non_null(strstr(msg, "1 unexpected (encoder.old)"));
    assert_non_null(strstr(msg, "1 mis-shaped (encoder.fc.weight: file F32 (4, 3) vs store "
                                "(4, 4))"));
    assert_null(strstr(msg, "projector")); /* other prefixes are not ours */
    assert_int_equal(rep.n_loaded, 0);
    assert_int_equal(rep.n_missing, 1);
    assert_string_equal(rep.missing[0], "encoder.extra");
    assert_int_equal(rep.n_unexpected, 1);
    assert_string_equal(rep.unexpected[0], "encoder.old");
    assert_int_equal(rep.n_mismatched, 1);
    ssl_st_report_free(&rep);
    /* Strict failure loads nothing. */
    for (int i = 0; i < ssl_params_count(dst); i++) {
        const ssl_tensor_t *t = ssl_params_info(dst, i)->t;
        for (int64_t j = 0; j < t->numel; j++)
            assert_true(t->data[j] == 0.0f);
    }
    /* Allowing only some kinds: the message names only the rest. */
    assert_int_equal(ssl_st_load_params(f, dst, "encoder.",
                                        SSL_ST_ALLOW_MISSING | SSL_ST_ALLOW_UNEXPECTED, NULL),
                     SSL_ERR_FORMAT);
    assert_null(strstr(ssl_last_error(), "missing"));
    assert_non_null(strstr(ssl_last_error(), "mis-shaped"));
    /* Non-strict: loads what matches, reports the rest. */
    assert_int_equal(ssl_st_load_params(f, dst, "encoder.", SSL_ST_NONSTRICT, &rep), SSL_OK);
    assert_int_equal(rep.n_loaded, 2);
    assert_int_equal(rep.n_missing, 1);
    assert_int_equal(rep.n_unexpected, 1);
    assert_int_equal(rep.n_mismatched, 1);
    assert_non_null(strstr(rep.mismatched[0], "encoder.fc.weight"));
    ssl_st_report_free(&rep);
    const ssl_tensor_t *b = ssl_params_get(dst, "fc.bias");
    assert_memory_equal(b->data, ssl_params_get(src, "fc.bias")->data, 4 * sizeof(float));
    assert_memory_equal(ssl_params_get(dst, "bn.running_mean")->data,
                        ssl_params_get(src, "bn.running_mean")->data, 4 * sizeof(float));
    assert_true(ssl_params_get(dst, "fc.weight")->data[0] == 0.0f); /* mis-shaped: untouched */
    /* Wrong prefix: everything missing. */
    assert_int_equal(ssl_st_load_params(f, dst, "target.", SSL_ST_STRICT, NULL), SSL_ERR_FORMAT);
    assert_non_null(strstr(ssl_last_error(), "4 missing (target.fc.weight, target.fc.bias, "
                                             "target.bn.running_mean, ...)"));
    ssl_st_close(f);
    ssl_params_free(src);
    ssl_params_free(dst);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),     cmocka_unit_test(test_dtype_conversion),
        cmocka_unit_test(test_malformed),     cmocka_unit_test(test_truncations_never_crash),
        cmocka_unit_test(test_atomic_write),  cmocka_unit_test(test_params_roundtrip),
        cmocka_unit_test(test_params_report),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
