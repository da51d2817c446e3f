/* .npy files: the exact header bytes, round trips, files written by numpy itself
 * (tests/fixtures/npy, from gen_eval_fixtures.py: versions 1.0/2.0, both byte orders, several
 * dtypes, scalars, empty arrays), malformed files, atomic replacement, and our files read back
 * by numpy when /usr/bin/python3 has it. */
#define _POSIX_C_SOURCE 200809L

#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/io_internal.h"
#include "ssl/eval.h"
#include "ssl/io.h"

#define NPY_FIXTURE(name) SSL_SOURCE_DIR "/tests/fixtures/npy/" name

static char g_dir[64];

static const char *tmp_path(const char *name)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "%s/%s", g_dir, name);
    return buf;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void spit(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

/* ---------------------------------------------------------------- writer */

static void test_npy_header_bytes(void **state)
{
    (void)state;
    float x[12];
    for (int i = 0; i < 12; i++)
        x[i] = (float)i - 0.5f;
    const char *p = tmp_path("h.npy");
    assert_int_equal(ssl_npy_save_f32_2d(p, 3, 4, x), SSL_OK);
    size_t n;
    unsigned char *b = slurp(p, &n);
    assert_memory_equal(b, "\x93NUMPY\x01\x00", 8);
    size_t hl = b[8] | (size_t)b[9] << 8;
    assert_int_equal((10 + hl) % 64, 0);
    assert_int_equal(n, 10 + hl + sizeof x);
    const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }";
    assert_memory_equal(b + 10, dict, strlen(dict));
    for (size_t i = 10 + strlen(dict); i < 10 + hl - 1; i++)
        assert_int_equal(b[i], ' ');
    assert_int_equal(b[10 + hl - 1], '\n');
    assert_memory_equal(b + 10 + hl, x, sizeof x); /* little-endian host */
    free(b);
    /* 1-D labels: "(n,)" */
    int64_t y[3] = {1, -2, 3};
    assert_int_equal(ssl_npy_save_labels_i64(p, 3, y), SSL_OK);
    b = slurp(p, &n);
    assert_non_null(
        strstr((char *)b + 10, "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }"));
    free(b);
    int64_t shp[1] = {2};
    uint8_t u[2] = {7, 200};
    assert_int_equal(ssl_npy_save(p, SSL_DTYPE_U8, 1, shp, u), SSL_OK);
    b = slurp(p, &n);
    assert_non_null(strstr((char *)b + 10, "'descr': '|u1'"));
    free(b);
    assert_int_equal(ssl_npy_save(p, SSL_DTYPE_F16, 1, shp, u), SSL_ERR_UNSUPPORTED);
    assert_int_equal(ssl_npy_save(p, SSL_DTYPE_F32, 9, shp, u), SSL_ERR_SHAPE);
}

static void test_npy_round_trip(void **state)
{
    (void)state;
    const int64_t n = 1000, d = 37;
    float *x = malloc((size_t)(n * d) * sizeof(float));
    ssl_rng_fill_normal(x, (size_t)(n * d), 0.0f, 3.0f, 1, 2, 0);
    int32_t *y = malloc((size_t)n * sizeof(int32_t));
    int64_t *y64 = malloc((size_t)n * sizeof(int64_t));
    for (int64_t i = 0; i < n; i++) {
        y[i] = (int32_t)(i * 7919 % 1000) - 500;
        y64[i] = y[i];
    }
    ssl_npy_t a;
    assert_int_equal(ssl_npy_save_f32_2d(tmp_path("x.npy"), n, d, x), SSL_OK);
    assert_int_equal(ssl_npy_load_f32(tmp_path("x.npy"), &a), SSL_OK);
    assert_int_equal(a.dtype, SSL_DTYPE_F32);
    assert_int_equal(a.ndim, 2);
    assert_true(a.shape[0] == n && a.shape[1] == d && a.numel == n * d);
    assert_memory_equal(a.data, x, (size_t)(n * d) * sizeof(float));
    ssl_npy_free(&a);
    assert_null(a.data);
    assert_int_equal(ssl_npy_save_labels_i32(tmp_path("y.npy"), n, y), SSL_OK);
    assert_int_equal(ssl_npy_load_i32(tmp_path("y.npy"), &a), SSL_OK);
    assert_int_equal(a.dtype, SSL_DTYPE_I32);
    assert_memory_equal(a.data, y, (size_t)n * sizeof(int32_t));
    ssl_npy_free(&a);
    assert_int_equal(ssl_npy_save_labels_i64(tmp_path("y64.npy"), n, y64), SSL_OK);
    assert_int_equal(ssl_npy_load_i32(tmp_path("y64.npy"), &a), SSL_OK);
    assert_int_equal(a.dtype, SSL_DTYPE_I64);
    assert_memory_equal(a.data, y, (size_t)n * sizeof(int32_t));
    ssl_npy_free(&a);
    /* labels read as floats, floats refused as labels */
    assert_int_equal(ssl_npy_load_f32(tmp_path("y.npy"), &a), SSL_OK);
    assert_true(((float *)a.data)[1] == (float)y[1]);
    ssl_npy_free(&a);
    assert_int_equal(ssl_npy_load_i32(tmp_path("x.npy"), &a), SSL_ERR_UNSUPPORTED);
    /* an empty matrix */
    assert_int_equal(ssl_npy_save_f32_2d(tmp_path("e.npy"), 0, 5, NULL), SSL_OK);
    assert_int_equal(ssl_npy_load_f32(tmp_path("e.npy"), &a), SSL_OK);
    assert_true(a.ndim == 2 && a.shape[0] == 0 && a.shape[1] == 5 && a.numel == 0);
    ssl_npy_free(&a);
    free(x), free(y), free(y64);
}

/* A failed write leaves the previous file untouched. */
static void test_npy_atomic(void **state)
{
    (void)state;
    int32_t y[2] = {4, 5}, z[2] = {6, 7};
    const char *p = tmp_path("atomic.npy");
    assert_int_equal(ssl_npy_save_labels_i32(p, 2, y), SSL_OK);
    ssl__io_fail_next(SSL__FAIL_RENAME);
    assert_int_not_equal(ssl_npy_save_labels_i32(p, 2, z), SSL_OK);
    ssl_npy_t a;
    assert_int_equal(ssl_npy_load_i32(p, &a), SSL_OK);
    assert_memory_equal(a.data, y, sizeof y);
    ssl_npy_free(&a);
    assert_int_equal(ssl_npy_save_labels_i32("/nonexistent-dir/x.npy", 2, z), SSL_ERR_IO);
}

/* ---------------------------------------------------------------- files written by numpy */

static void test_npy_numpy_fixtures(void **state)
{
    (void)state;
    ssl_npy_t a;
    float want[12];
    for (int i = 0; i < 12; i++)
        want[i] = ((float)i - 5.5f) / 4;
    const char *f32s[] = {NPY_FIXTURE("f4_v1.npy"), NPY_FIXTURE("f4_v2.npy"),
                          NPY_FIXTURE("f8be_v1.npy")};
    for (int k = 0; k < 3; k++) {
        assert_int_equal(ssl_npy_load_f32(f32s[k], &a), SSL_OK);
        assert_true(a.ndim == 2 && a.shape[0] == 3 && a.shape[1] == 4);
        assert_memory_equal(a.data, want, sizeof want);
        ssl_npy_free(&a);
    }
    assert_int_equal(ssl_npy_load_f32(NPY_FIXTURE("f8be_v1.npy"), &a), SSL_OK);
    assert_int_equal(a.dtype, SSL_DTYPE_F64);
    ssl_npy_free(&a);
    assert_int_equal(ssl_npy_load_i32(NPY_FIXTURE("i8_v1.npy"), &a), SSL_OK);
    int32_t i8[4] = {3, -1, 7, 2147483647};
    assert_true(a.ndim == 1 && a.shape[0] == 4);
    assert_memory_equal(a.data, i8, sizeof i8);
    ssl_npy_free(&a);
    assert_int_equal(ssl_npy_load_i32(NPY_FIXTURE("u1_v1.npy"), &a), SSL_OK);
    int32_t u1[3] = {0, 9, 255};
    assert_memory_equal(a.data, u1, sizeof u1);
    ssl_npy_free(&a);
    assert_int_equal(ssl_npy_load_i32(NPY_FIXTURE("i2be_v1.npy"), &a), SSL_OK);
    int32_t i2[4] = {-300, 2, 5, 32767};
    assert_true(a.ndim == 2 && a.shape[0] == 2 && a.shape[1] == 2);
    assert_memory_equal(a.data, i2, sizeof i2);
    ssl_npy_free(&a);
    assert_int_equal(ssl_npy_load_i32(NPY_FIXTURE("bool_v1.npy"), &a), SSL_OK);
    int32_t bl[3] = {1, 0, 1};
    assert_memory_equal(a.data, bl, sizeof bl);
    ssl_npy_free(&a);
    assert_int_equal(ssl_npy_load_f32(NPY_FIXTURE("scalar_v1.npy"), &a), SSL_OK);
    assert_true(a.ndim == 0 && a.numel == 1 && ((float *)a.data)[0] == 2.5f);
    ssl_npy_free(&a);
    assert_int_equal(ssl_npy_load_f32(NPY_FIXTURE("empty_v1.npy"), &a), SSL_OK);
    assert_true(a.ndim == 2 && a.shape[0] == 0 && a.shape[1] == 5);
    ssl_npy_free(&a);
    /* refused: Fortran order, complex, an int64 beyond int32 as labels */
    assert_int_equal(ssl_npy_load_f32(NPY_FIXTURE("fortran_v1.npy"), &a), SSL_ERR_UNSUPPORTED);
    assert_non_null(strstr(ssl_last_error(), "Fortran"));
    assert_int_equal(ssl_npy_load_f32(NPY_FIXTURE("c8_v1.npy"), &a), SSL_ERR_UNSUPPORTED);
    assert_non_null(strstr(ssl_last_error(), "<c8"));
    assert_int_equal(ssl_npy_load_i32(NPY_FIXTURE("big_i8_v1.npy"), &a), SSL_ERR_FORMAT);
    assert_non_null(strstr(ssl_last_error(), "element 1"));
    assert_null(a.data);
    assert_int_equal(ssl_npy_load_f32(NPY_FIXTURE("big_i8_v1.npy"), &a), SSL_OK);
    assert_true(((float *)a.data)[1] == 1099511627776.0f);
    ssl_npy_free(&a);
}

/* ---------------------------------------------------------------- malformed files */

static void expect_bad(const unsigned char *b, size_t n, int status, const char *needle)
{
    const char *p = tmp_path("bad.npy");
    spit(p, b, n);
    ssl_npy_t a;
    int st = ssl_npy_load_f32(p, &a);
    if (st != status || !strstr(ssl_last_error(), needle))
        fail_msg("expected %s mentioning '%s', got %s: %s", ssl_err_name(status), needle,
                 ssl_err_name(st), ssl_last_error());
    assert_null(a.data);
    assert_non_null(strstr(ssl_last_error(), "bad.npy"));
}

/* A version 1.0 file image with the given dict and `data` bytes of payload. */
static size_t image(unsigned char *out, const char *dict, size_t data)
{
    size_t dl = strlen(dict), hl = (10 + dl + 1 + 63) / 64 * 64 - 10;
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    out[8] = (unsigned char)(hl & 0xff);
    out[9] = (unsigned char)(hl >> 8);
    memcpy(out + 10, dict, dl);
    memset(out + 10 + dl, ' ', hl - dl - 1);
    out[10 + hl - 1] = '\n';
    memset(out + 10 + hl, 0, data);
    return 10 + hl + data;
}

static void test_npy_malformed(void **state)
{
    (void)state;
    unsigned char b[512];
    size_t n = image(b, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 24);
    ssl_npy_t a;
    spit(tmp_path("ok.npy"), b, n);
    assert_int_equal(ssl_npy_load_f32(tmp_path("ok.npy"), &a), SSL_OK);
    ssl_npy_free(&a);
    expect_bad(b, n - 1, SSL_ERR_FORMAT, "needs"); /* truncated data */
    b[n] = 0;
    expect_bad(b, n + 1, SSL_ERR_FORMAT, "needs"); /* trailing bytes */
    expect_bad(b, 9, SSL_ERR_FORMAT, "magic");     /* truncated preamble */
    expect_bad(b, 40, SSL_ERR_FORMAT, "truncated npy header");
    unsigned char c[512];
    memcpy(c, b, n);
    c[1] = 'X';
    expect_bad(c, n, SSL_ERR_FORMAT, "magic");
    memcpy(c, b, n);
    c[6] = 4;
    expect_bad(c, n, SSL_ERR_UNSUPPORTED, "version 4.0");
    n = image(b, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'extra': 1}", 24);
    expect_bad(b, n, SSL_ERR_FORMAT, "'extra'");
    n = image(b, "{'descr': '<f4', 'shape': (2, 3)}", 24);
    expect_bad(b, n, SSL_ERR_FORMAT, "'fortran_order'");
    n = image(b, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", 24);
    expect_bad(b, n, SSL_ERR_FORMAT, "dimension");
    n = image(b, "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2, 3), }", 24);
    expect_bad(b, n, SSL_ERR_FORMAT, "True or False");
    n = image(b, "{'descr': '<U4', 'fortran_order': False, 'shape': (2, 3), }", 24);
    expect_bad(b, n, SSL_ERR_UNSUPPORTED, "'<U4'");
    n = image(b,
              "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999, "
              "99999999999), }",
              24);
    expect_bad(b, n, SSL_ERR_FORMAT, "overflows");
    n = image(b, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } junk", 24);
    expect_bad(b, n, SSL_ERR_FORMAT, "trailing");
    /* double quotes and no trailing comma are fine (other writers) */
    n = image(b, "{\"descr\": \"<f4\", \"shape\": (2,3), \"fortran_order\": False}", 24);
    spit(tmp_path("ok.npy"), b, n);
    assert_int_equal(ssl_npy_load_f32(tmp_path("ok.npy"), &a), SSL_OK);
    assert_true(a.shape[0] == 2 && a.shape[1] == 3);
    ssl_npy_free(&a);
    assert_int_equal(ssl_npy_load_f32(tmp_path("missing.npy"), &a), SSL_ERR_IO);
}

/* ---------------------------------------------------------------- numpy reads ours */

static void test_npy_numpy_reads_ours(void **state)
{
    (void)state;
    if (access("/usr/bin/python3", X_OK) != 0 ||
        system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
        TU_SKIP("/usr/bin/python3 with numpy not available (apt-get install python3-numpy)");
    }
    float x[6] = {1.5f, -2, 3, 4, 5, 6.25f};
    int32_t y[3] = {0, 9, -4};
    int64_t y64[2] = {1, 1LL << 40};
    assert_int_equal(ssl_npy_save_f32_2d(tmp_path("nx.npy"), 2, 3, x), SSL_OK);
    assert_int_equal(ssl_npy_save_labels_i32(tmp_path("ny.npy"), 3, y), SSL_OK);
    assert_int_equal(ssl_npy_save_labels_i64(tmp_path("ny64.npy"), 2, y64), SSL_OK);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"import numpy as np; d='%s';"
             "x=np.load(d+'/nx.npy'); y=np.load(d+'/ny.npy'); z=np.load(d+'/ny64.npy');"
             "assert x.dtype==np.float32 and x.shape==(2,3) and x[0,0]==1.5 and x[1,2]==6.25;"
             "assert y.dtype==np.int32 and y.tolist()==[0,9,-4];"
             "assert z.dtype==np.int64 and z.tolist()==[1,2**40]\"",
             g_dir);
    assert_int_equal(system(cmd), 0);
}

static int setup(void **state)
{
    (void)state;
    strcpy(g_dir, "/tmp/ssl_test_npy_XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_npy_header_bytes), cmocka_unit_test(test_npy_round_trip),
        cmocka_unit_test(test_npy_atomic),       cmocka_unit_test(test_npy_numpy_fixtures),
        cmocka_unit_test(test_npy_malformed),    cmocka_unit_test(test_npy_numpy_reads_ours),
    };
    return tu_status(cmocka_run_group_tests(tests, setup, teardown));
}
