/* Data layer: every reader on files the test writes, good and malformed (truncated, wrong
 * magic, zero bytes, huge claimed dims, not an image, over the limits), the bad-file report,
 * strict mode, directory links in folders, and Fashion-MNIST when it is installed. */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include "ssl/data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#include <stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

static char g_dir[256];

static const char *path_in(const char *name)
{
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n)
        assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

static void write_gz(const char *path, const void *data, size_t n)
{
    gzFile f = gzopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(gzwrite(f, data, (unsigned)n), (int)n);
    gzclose(f);
}

static void mkdirs(const char *rel)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", g_dir, rel);
    for (char *s = p + strlen(g_dir) + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            mkdir(p, 0755);
            *s = '/';
        }
    mkdir(p, 0755);
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/ssl_test_data_XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Log capture. */
static char g_log[8192];
static int g_log_lines;
static void capture(int level, const char *msg, void *user)
{
    (void)user;
    if (level < SSL_LOG_WARN)
        return;
    size_t n = strlen(g_log);
    snprintf(g_log + n, sizeof g_log - n, "%s\n", msg);
    g_log_lines++;
}
static void log_start(void)
{
    g_log[0] = 0;
    g_log_lines = 0;
    ssl_set_log_callback(capture, NULL, SSL_LOG_WARN);
}
static void log_stop(void) { ssl_set_log_callback(NULL, NULL, SSL_LOG_INFO); }

/* ---------------------------------------------------------------- IDX */

/* IDX header + data into buf; returns the size. */
static size_t make_idx(uint8_t *buf, int type, int ndim, const uint32_t *dims, const uint8_t *data,
                       size_t n)
{
    buf[0] = buf[1] = 0;
    buf[2] = (uint8_t)type;
    buf[3] = (uint8_t)ndim;
    for (int d = 0; d < ndim; d++) {
        buf[4 + 4 * d] = (uint8_t)(dims[d] >> 24);
        buf[5 + 4 * d] = (uint8_t)(dims[d] >> 16);
        buf[6 + 4 * d] = (uint8_t)(dims[d] >> 8);
        buf[7 + 4 * d] = (uint8_t)dims[d];
    }
    memcpy(buf + 4 + 4 * ndim, data, n);
    return 4 + 4 * (size_t)ndim + n;
}

static void test_idx(void **state)
{
    (void)state;
    enum { N = 5, H = 4, W = 3 };
    uint8_t px[N * H * W], lab[N] = {3, 0, 9, 1, 3};
    for (int i = 0; i < N * H * W; i++)
        px[i] = (uint8_t)(i * 7);
    uint8_t img[16 + sizeof px], lb[8 + N];
    size_t ni = make_idx(img, 0x08, 3, (uint32_t[]){N, H, W}, px, sizeof px);
    size_t nl = make_idx(lb, 0x08, 1, (uint32_t[]){N}, lab, N);
    write_bytes(path_in("im.idx"), img, ni);
    write_bytes(path_in("lb.idx"), lb, nl);
    write_gz(path_in("im.idx.gz"), img, ni);
    write_gz(path_in("lb.idx.gz"), lb, nl);

    for (int gz = 0; gz < 2; gz++) {
        ssl_dataset_t *ds = ssl_dataset_load_idx(path_in(gz ? "im.idx.gz" : "im.idx"),
                                                 path_in(gz ? "lb.idx.gz" : "lb.idx"), NULL);
        assert_non_null(ds);
        assert_int_equal(ds->n, N);
        assert_int_equal(ds->c, 1);
        assert_int_equal(ds->h, H);
        assert_int_equal(ds->w, W);
        assert_memory_equal(ds->images, px, sizeof px);
        for (int i = 0; i < N; i++)
            assert_int_equal(ds->labels[i], lab[i]);
        assert_int_equal(ds->n_classes, 10);
        ssl_dataset_free(ds);
    }
    ssl_read_opts_t o;
    ssl_read_opts_default(&o);
    o.limit = 2;
    ssl_dataset_t *ds = ssl_dataset_load_idx(path_in("im.idx"), NULL, &o);
    assert_non_null(ds);
    assert_int_equal(ds->n, 2);
    assert_int_equal(ds->labels[1], -1);
    ssl_dataset_free(ds);

    /* Malformed files: each error names the file and an offset. */
    uint8_t bad[sizeof img];
    memcpy(bad, img, ni);
    bad[1] = 0x42; /* wrong magic */
    write_bytes(path_in("magic.idx"), bad, ni);
    tu_assert_error(ssl_dataset_load_idx(path_in("magic.idx"), NULL, NULL), SSL_ERR_FORMAT,
                    "magic.idx", "offset 0", NULL);
    write_bytes(path_in("trunc.idx"), img, ni - 7); /* truncated */
    tu_assert_error(ssl_dataset_load_idx(path_in("trunc.idx"), NULL, NULL), SSL_ERR_FORMAT,
                    "trunc.idx", "5 x 4 x 3", "offset", NULL);
    write_bytes(path_in("zero.idx"), img, 0); /* zero bytes */
    tu_assert_error(ssl_dataset_load_idx(path_in("zero.idx"), NULL, NULL), SSL_ERR_FORMAT,
                    "zero.idx", NULL);
    size_t nh = make_idx(bad, 0x08, 3, (uint32_t[]){0x7fffffff, 0x7fffffff, 0x7fffffff}, px,
                         sizeof px); /* huge claimed dims, no overflow */
    write_bytes(path_in("huge.idx"), bad, nh);
    tu_assert_error(ssl_dataset_load_idx(path_in("huge.idx"), NULL, NULL), SSL_ERR_FORMAT,
                    "huge.idx", "2147483647", NULL);
    nh = make_idx(bad, 0x08, 3, (uint32_t[]){0x80000000u, 1, 1}, px, 8);
    write_bytes(path_in("neg.idx"), bad, nh);
    tu_assert_error(ssl_dataset_load_idx(path_in("neg.idx"), NULL, NULL), SSL_ERR_FORMAT,
                    "neg.idx", "offset 4", NULL);
    uint8_t extra[sizeof img + 3];
    memcpy(extra, img, ni);
    write_bytes(path_in("trail.idx"), extra, ni + 3); /* trailing bytes */
    tu_assert_error(ssl_dataset_load_idx(path_in("trail.idx"), NULL, NULL), SSL_ERR_FORMAT,
                    "trail.idx", "trailing", NULL);
    nh = make_idx(bad, 0x07, 1, (uint32_t[]){1}, px, 1); /* unknown type */
    write_bytes(path_in("type.idx"), bad, nh);
    tu_assert_error(ssl_dataset_load_idx(path_in("type.idx"), NULL, NULL), SSL_ERR_FORMAT,
                    "type.idx", "offset 2", NULL);
    /* Labels for another number of images. */
    nl = make_idx(lb, 0x08, 1, (uint32_t[]){N - 1}, lab, N - 1);
    write_bytes(path_in("lb4.idx"), lb, nl);
    tu_assert_error(ssl_dataset_load_idx(path_in("im.idx"), path_in("lb4.idx"), NULL),
                    SSL_ERR_FORMAT, "lb4.idx", "4 labels", NULL);
    /* Labels file given as images. */
    tu_assert_error(ssl_dataset_load_idx(path_in("lb.idx"), NULL, NULL), SSL_ERR_FORMAT,
                    "lb.idx", NULL);
    /* Truncated and corrupt gzip. */
    uint8_t *gzb = malloc(4096);
    FILE *f = fopen(path_in("im.idx.gz"), "rb");
    size_t gn = fread(gzb, 1, 4096, f);
    fclose(f);
    write_bytes(path_in("tr.idx.gz"), gzb, gn / 2);
    tu_assert_error(ssl_dataset_load_idx(path_in("tr.idx.gz"), NULL, NULL), SSL_ERR_FORMAT,
                    "tr.idx.gz", "offset", NULL);
    for (size_t i = 12; i < gn - 8; i++)
        gzb[i] ^= 0x5a;
    write_bytes(path_in("bad.idx.gz"), gzb, gn);
    tu_assert_error(ssl_dataset_load_idx(path_in("bad.idx.gz"), NULL, NULL), SSL_ERR_FORMAT,
                    "bad.idx.gz", NULL);
    free(gzb);
    /* A gzip bomb is stopped at the limit. */
    uint8_t *zeros = calloc(1 << 20, 1);
    write_gz(path_in("bomb.gz"), zeros, 1 << 20);
    free(zeros);
    o.limit = 0;
    o.max_decoded_bytes = 1 << 16;
    tu_assert_error(ssl_dataset_load_idx(path_in("bomb.gz"), NULL, &o), SSL_ERR_FORMAT,
                    "bomb.gz", "limit", NULL);
    tu_assert_error(ssl_dataset_load_idx(path_in("missing.idx"), NULL, NULL), SSL_ERR_IO,
                    "missing.idx", NULL);
}

static void test_fashion_mnist(void **state)
{
    (void)state;
    char p[512];
    snprintf(p, sizeof p, "%s/t10k-images-idx3-ubyte.gz", SSL_FASHION_MNIST_DIR);
    if (access(p, R_OK) != 0)
        TU_SKIP("Fashion-MNIST not found in %s", SSL_FASHION_MNIST_DIR);
    ssl_dataset_t *ds = ssl_dataset_load_fashion_mnist(NULL, "test", NULL);
    assert_non_null(ds);
    assert_int_equal(ds->n, 10000);
    assert_int_equal(ds->c, 1);
    assert_int_equal(ds->h, 28);
    assert_int_equal(ds->w, 28);
    assert_int_equal(ds->n_classes, 10);
    assert_string_equal(ds->class_names[9], "Ankle boot");
    int count[10] = {0};
    for (int64_t i = 0; i < ds->n; i++) {
        assert_true(ds->labels[i] >= 0 && ds->labels[i] < 10);
        count[ds->labels[i]]++;
    }
    for (int k = 0; k < 10; k++)
        assert_int_equal(count[k], 1000); /* the test split is balanced */
    /* Not blank: the first image has ink. */
    int ink = 0;
    for (int i = 0; i < 784; i++)
        ink += ds->images[i] > 0;
    assert_true(ink > 100);
    ssl_dataset_free(ds);
    tu_assert_error(ssl_dataset_load_fashion_mnist(NULL, "val", NULL), SSL_ERR_INVALID, "val",
                    NULL);
}

/* ---------------------------------------------------------------- CIFAR */

static void test_cifar(void **state)
{
    (void)state;
    enum { N = 3 };
    static uint8_t rec10[N * 3073], rec100[N * 3074];
    for (int i = 0; i < N; i++) {
        rec10[i * 3073] = (uint8_t)(i * 4);
        for (int j = 0; j < 3072; j++)
            rec10[i * 3073 + 1 + j] = (uint8_t)(i + j);
        rec100[i * 3074] = (uint8_t)(i + 10);
        rec100[i * 3074 + 1] = (uint8_t)(i * 40);
        for (int j = 0; j < 3072; j++)
            rec100[i * 3074 + 2 + j] = (uint8_t)(i * j);
    }
    mkdirs("cifar10");
    write_bytes(path_in("cifar10/test_batch.bin"), rec10, sizeof rec10);
    const char *meta = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n";
    write_bytes(path_in("cifar10/batches.meta.txt"), meta, strlen(meta));
    ssl_dataset_t *ds = ssl_dataset_load_cifar_dir(path_in("cifar10"), 10, "test", NULL);
    assert_non_null(ds);
    assert_int_equal(ds->n, N);
    assert_int_equal(ds->c, 3);
    assert_int_equal(ds->h, 32);
    assert_int_equal(ds->labels[2], 8);
    assert_int_equal(ds->images[2 * 3072 + 5], 7);
    assert_string_equal(ds->class_names[9], "truck");
    ssl_dataset_free(ds);
    /* Both files of a two-file list, in order. */
    write_bytes(path_in("c100.bin"), rec100, sizeof rec100);
    const char *two[2] = {path_in("c100.bin"), path_in("c100.bin")};
    ds = ssl_dataset_load_cifar(two, 2, 100, NULL);
    assert_non_null(ds);
    assert_int_equal(ds->n, 2 * N);
    assert_int_equal(ds->labels[4], 40); /* fine label of record 1 */
    assert_int_equal(ds->images[4 * 3072 + 3], 3);
    assert_int_equal(ds->n_classes, 100);
    ssl_dataset_free(ds);

    /* Malformed: truncated record, bad label, zero bytes, CIFAR-100 read as CIFAR-10. */
    write_bytes(path_in("t.bin"), rec10, sizeof rec10 - 100);
    const char *t = path_in("t.bin");
    tu_assert_error(ssl_dataset_load_cifar(&t, 1, 10, NULL), SSL_ERR_FORMAT, "t.bin",
                    "offset 6146", "truncated", NULL);
    rec10[3073] = 10;
    write_bytes(path_in("l.bin"), rec10, sizeof rec10);
    const char *l = path_in("l.bin");
    tu_assert_error(ssl_dataset_load_cifar(&l, 1, 10, NULL), SSL_ERR_FORMAT, "l.bin",
                    "offset 3073", NULL);
    write_bytes(path_in("z.bin"), rec10, 0);
    const char *z = path_in("z.bin");
    tu_assert_error(ssl_dataset_load_cifar(&z, 1, 10, NULL), SSL_ERR_FORMAT, "z.bin", "empty",
                    NULL);
    tu_assert_error(ssl_dataset_cifar_from_memory(rec100, sizeof rec100, 10, "c100"),
                    SSL_ERR_FORMAT, "c100", NULL);
    tu_assert_error(ssl_dataset_load_cifar_dir(path_in("nope"), 10, "train", NULL), SSL_ERR_IO,
                    "data_batch_1.bin", NULL);
}

/* ---------------------------------------------------------------- image files */

/* An RGB w x h image whose red grows with x and green with y; blue = tag. */
static uint8_t *gradient(int w, int h, int tag)
{
    uint8_t *p = malloc((size_t)(w * h * 3));
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            p[(y * w + x) * 3 + 0] = (uint8_t)(x * 255 / (w > 1 ? w - 1 : 1));
            p[(y * w + x) * 3 + 1] = (uint8_t)(y * 255 / (h > 1 ? h - 1 : 1));
            p[(y * w + x) * 3 + 2] = (uint8_t)tag;
        }
    return p;
}

static void write_png(const char *rel, int w, int h, int tag)
{
    uint8_t *p = gradient(w, h, tag);
    assert_true(stbi_write_png(path_in(rel), w, h, 3, p, w * 3));
    free(p);
}

/* A 10 x 12 JPEG of gradient(10, 12, 2) at quality 90, made once with stb_image_write (whose
 * JPEG writer trips UBSan, so it is not run here). */
static const uint8_t jpeg_10x12[] = {
    0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00,
    0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0xff, 0xdb, 0x00, 0x84, 0x00, 0x03, 0x02, 0x02,
    0x03, 0x02, 0x02, 0x03, 0x03, 0x03, 0x03, 0x04, 0x03, 0x03, 0x04, 0x05, 0x08, 0x05,
    0x05, 0x04, 0x04, 0x05, 0x0a, 0x07, 0x07, 0x06, 0x08, 0x0c, 0x0a, 0x0c, 0x0c, 0x0b,
    0x0a, 0x0b, 0x0b, 0x0d, 0x0e, 0x12, 0x10, 0x0d, 0x0e, 0x11, 0x0e, 0x0b, 0x0b, 0x10,
    0x16, 0x10, 0x11, 0x13, 0x14, 0x15, 0x15, 0x15, 0x0c, 0x0f, 0x17, 0x18, 0x16, 0x14,
    0x18, 0x12, 0x14, 0x15, 0x14, 0x01, 0x03, 0x04, 0x04, 0x05, 0x04, 0x05, 0x09, 0x05,
    0x05, 0x09, 0x14, 0x0d, 0x0b, 0x0d, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14,
    0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14,
    0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14,
    0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14,
    0xff, 0xc0, 0x00, 0x11, 0x08, 0x00, 0x0c, 0x00, 0x0a, 0x03, 0x01, 0x22, 0x00, 0x02,
    0x11, 0x01, 0x03, 0x11, 0x01, 0xff, 0xc4, 0x01, 0xa2, 0x00, 0x00, 0x01, 0x05, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
    0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x10, 0x00, 0x02, 0x01,
    0x03, 0x03, 0x02, 0x04, 0x03, 0x05, 0x05, 0x04, 0x04, 0x00, 0x00, 0x01, 0x7d, 0x01,
    0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61,
    0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15,
    0x52, 0xd1, 0xf0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19,
    0x1a, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a,
    0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58,
    0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76,
    0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93,
    0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8,
    0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4,
    0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9,
    0xda, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3,
    0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0x01, 0x00, 0x03, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03,
    0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x11, 0x00, 0x02, 0x01, 0x02, 0x04,
    0x04, 0x03, 0x04, 0x07, 0x05, 0x04, 0x04, 0x00, 0x01, 0x02, 0x77, 0x00, 0x01, 0x02,
    0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71, 0x13,
    0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52,
    0xf0, 0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18,
    0x19, 0x1a, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43,
    0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59,
    0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77,
    0x78, 0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93,
    0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8,
    0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4,
    0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9,
    0xda, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5,
    0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xff, 0xda, 0x00, 0x0c, 0x03, 0x01, 0x00, 0x02, 0x11,
    0x03, 0x11, 0x00, 0x3f, 0x00, 0xf9, 0xe3, 0xe1, 0x97, 0xc0, 0x3f, 0xf5, 0x5f, 0xe8,
    0xde, 0x9d, 0xab, 0xde, 0x61, 0xf8, 0x07, 0xfb, 0x94, 0xff, 0x00, 0x46, 0xfe, 0x11,
    0xda, 0xbd, 0xf3, 0xe1, 0x97, 0x83, 0x74, 0xbf, 0xdd, 0x7e, 0xe3, 0xd2, 0xbd, 0xe6,
    0x1f, 0x06, 0xe9, 0x7e, 0x4a, 0x7e, 0xe3, 0xf8, 0x45, 0x7f, 0x13, 0x67, 0x9c, 0x73,
    0x88, 0xfa, 0xc7, 0x53, 0xed, 0xfc, 0x2c, 0xf1, 0x23, 0x15, 0xfd, 0x90, 0xb7, 0xe8,
    0x7f, 0xff, 0xd9
};

static void write_jpg(const char *rel) { write_bytes(path_in(rel), jpeg_10x12, sizeof jpeg_10x12); }

static void write_bmp(const char *rel, int w, int h, int tag)
{
    uint8_t *p = gradient(w, h, tag);
    assert_true(stbi_write_bmp(path_in(rel), w, h, 3, p));
    free(p);
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)sz + 1);
    *n = fread(b, 1, (size_t)sz, f);
    fclose(f);
    return b;
}

static void test_image_decode(void **state)
{
    (void)state;
    /* 40 x 20 (w x h): shorter side 20 -> 10, width 40 -> 20, centre crop 10 x 10. */
    write_png("g.png", 40, 20, 77);
    size_t n;
    uint8_t *b = slurp(path_in("g.png"), &n);
    uint8_t out[3 * 10 * 10];
    assert_int_equal(ssl_image_decode(b, n, "g.png", 3, 10, 0, out), SSL_OK);
    /* Red grows left to right, green top to bottom (no vertical flip), blue constant; the crop
     * is the middle half of the width, so red spans about 64..191. */
    assert_true(out[0 * 100 + 5 * 10 + 0] < out[0 * 100 + 5 * 10 + 9]);
    assert_true(out[0 * 100 + 0] > 40 && out[0 * 100 + 9] < 215);
    assert_true(out[1 * 100 + 0 * 10 + 5] < 40 && out[1 * 100 + 9 * 10 + 5] > 215);
    for (int i = 0; i < 100; i++)
        assert_int_equal(out[200 + i], 77);
    /* Gray: one channel. */
    uint8_t g[16];
    assert_int_equal(ssl_image_decode(b, n, "g.png", 1, 4, 0, g), SSL_OK);
    int w, h;
    assert_int_equal(ssl_image_info(b, n, &w, &h), SSL_OK);
    assert_int_equal(w, 40);
    assert_int_equal(h, 20);
    /* Budget refused before decoding; truncated; not an image; empty. */
    assert_int_equal(ssl_image_decode(b, n, "g.png", 3, 10, 799, out), SSL_ERR_INVALID);
    assert_non_null(strstr(ssl_last_error(), "pixel budget"));
    assert_int_equal(ssl_image_decode(b, n / 2, "half.png", 3, 10, 0, out), SSL_ERR_FORMAT);
    assert_non_null(strstr(ssl_last_error(), "half.png"));
    assert_int_equal(ssl_image_decode("hello world", 11, "t.png", 3, 10, 0, out),
                     SSL_ERR_UNSUPPORTED);
    assert_int_equal(ssl_image_decode(b, 0, "e.png", 3, 10, 0, out), SSL_ERR_FORMAT);
    assert_non_null(strstr(ssl_last_error(), "empty"));
    /* Huge claimed dims in the PNG header (IHDR width/height at offsets 16 and 20). */
    uint8_t *hb = malloc(n);
    memcpy(hb, b, n);
    hb[16] = 0; hb[17] = 0; hb[18] = 0x75; hb[19] = 0x30; /* 30000 */
    hb[20] = 0; hb[21] = 0; hb[22] = 0x75; hb[23] = 0x30;
    assert_int_equal(ssl_image_decode(hb, n, "huge.png", 3, 10, 40000000, out), SSL_ERR_INVALID);
    hb[16] = 0x7f; /* past STBI_MAX_DIMENSIONS */
    assert_int_equal(ssl_image_decode(hb, n, "huge.png", 3, 10, 0, out), SSL_ERR_FORMAT);
    /* A chunk length past the end of the file (stb would allocate it before reading). */
    free(hb);
    hb = malloc(n);
    memcpy(hb, b, n);
    uint8_t *idat = NULL;
    for (size_t i = 12; i + 4 <= n && !idat; i++)
        if (memcmp(hb + i, "IDAT", 4) == 0)
            idat = hb + i;
    assert_non_null(idat);
    idat[-4] = 0x7f; idat[-3] = 0xff; idat[-2] = 0xff; idat[-1] = 0xf0;
    assert_int_equal(ssl_image_decode(hb, n, "chunk.png", 3, 10, 0, out), SSL_ERR_FORMAT);
    assert_non_null(strstr(ssl_last_error(), "offset"));
    free(hb);
    free(b);
    /* A JPEG Huffman table declaring 320 codes (overflows stb 2.27's tables): refused first. */
    uint8_t jp[2 + 4 + 17 + 320 + 2] = {0xff, 0xd8, 0xff, 0xc4, 0x01, 0x53, 0x00};
    for (int i = 0; i < 16; i++)
        jp[7 + i] = 20;
    jp[sizeof jp - 2] = 0xff;
    jp[sizeof jp - 1] = 0xd9;
    assert_int_equal(ssl_image_decode(jp, sizeof jp, "dht.jpg", 3, 10, 0, out), SSL_ERR_FORMAT);
    assert_non_null(strstr(ssl_last_error(), "Huffman"));
}

static void test_image_folder(void **state)
{
    (void)state;
    mkdirs("folder/cat");
    mkdirs("folder/dog/sub");
    mkdirs("folder/ant");
    write_png("folder/cat/b.png", 12, 10, 1);
    write_jpg("folder/cat/a.JPG");
    write_bmp("folder/dog/sub/c.bmp", 9, 9, 3);
    write_png("folder/dog/d.png", 30, 8, 4);
    write_png("folder/ant/e.png", 8, 8, 5);
    write_bytes(path_in("folder/ant/notes.txt"), "x", 1);       /* ignored: not an image */
    write_bytes(path_in("folder/readme.md"), "x", 1);            /* ignored: not a class */
    write_bytes(path_in("folder/dog/zero.png"), "", 0);          /* bad: zero bytes */
    write_bytes(path_in("folder/dog/text.jpg"), "not a jpeg", 10); /* bad: not an image */
    size_t n;
    uint8_t *b = slurp(path_in("folder/cat/b.png"), &n);
    write_bytes(path_in("folder/cat/trunc.png"), b, n / 2);       /* bad: truncated */
    free(b);

    ssl_read_opts_t o;
    ssl_read_opts_default(&o);
    o.image_size = 8;
    log_start();
    ssl_dataset_t *ds = ssl_dataset_load_image_folder(path_in("folder"), &o);
    log_stop();
    assert_non_null(ds);
    assert_int_equal(ds->n_classes, 3);
    assert_string_equal(ds->class_names[0], "ant");
    assert_string_equal(ds->class_names[1], "cat");
    assert_string_equal(ds->class_names[2], "dog");
    assert_int_equal(ds->n, 5);
    assert_int_equal(ds->n_skipped, 3);
    assert_int_equal(ds->c, 3);
    assert_int_equal(ds->h, 8);
    const int32_t want_labels[5] = {0, 1, 1, 2, 2};
    const int want_tag[5] = {5, 2, 1, 4, 3}; /* sorted: ant/e, cat/a.JPG, cat/b, dog/d, dog/sub/c */
    for (int i = 0; i < 5; i++) {
        assert_int_equal(ds->labels[i], want_labels[i]);
        int blue = ds->images[(size_t)i * 192 + 128 + 27];
        assert_true(abs(blue - want_tag[i]) <= 3); /* JPEG is lossy */
    }
    assert_non_null(strstr(ds->paths[4], "dog/sub/c.bmp"));
    /* The report names each bad file with its reason, then a summary. */
    assert_non_null(strstr(g_log, "zero.png: empty file"));
    assert_non_null(strstr(g_log, "text.jpg: not a PNG"));
    assert_non_null(strstr(g_log, "trunc.png: truncated or corrupt PNG"));
    assert_non_null(strstr(g_log, "skipped 3 of 8 files"));
    ssl_dataset_free(ds);

    /* Only the first report_limit are listed one by one. */
    o.report_limit = 1;
    log_start();
    ds = ssl_dataset_load_image_folder(path_in("folder"), &o);
    log_stop();
    assert_non_null(ds);
    assert_int_equal(g_log_lines, 2);
    ssl_dataset_free(ds);

    /* Strict: the first bad file is an error naming it. */
    o.strict = 1;
    tu_assert_error(ssl_dataset_load_image_folder(path_in("folder"), &o), SSL_ERR_FORMAT,
                    "trunc.png", "strict", NULL);
    o.strict = 0;

    /* Oversized files and pixel budget. */
    o.max_file_bytes = 200;
    o.max_pixels = 100; /* 12 x 10 and 30 x 8 are over it */
    ds = ssl_dataset_load_image_folder(path_in("folder"), &o);
    assert_non_null(ds);
    assert_true(ds->n < 5);
    assert_true(ds->n_skipped > 3);
    ssl_dataset_free(ds);
    ssl_read_opts_default(&o);
    o.image_size = 8;

    /* Unlabeled: every image under the root, recursively, sorted by path. */
    o.channels = 1;
    ds = ssl_dataset_load_unlabeled_folder(path_in("folder"), &o);
    assert_non_null(ds);
    assert_int_equal(ds->n, 5);
    assert_int_equal(ds->c, 1);
    assert_int_equal(ds->n_classes, 0);
    assert_int_equal(ds->labels[0], -1);
    assert_non_null(strstr(ds->paths[0], "ant/e.png"));
    ssl_dataset_free(ds);

    /* torchvision's order: by directory, then name: c/a.png, c/b.png, then c/a/x.png. */
    mkdirs("order/c/a");
    write_png("order/c/b.png", 4, 4, 1);
    write_png("order/c/a.png", 4, 4, 2);
    write_png("order/c/a/x.png", 4, 4, 3);
    ds = ssl_dataset_load_image_folder(path_in("order"), &o);
    assert_non_null(ds);
    assert_int_equal(ds->n, 3);
    assert_non_null(strstr(ds->paths[0], "c/a.png"));
    assert_non_null(strstr(ds->paths[1], "c/b.png"));
    assert_non_null(strstr(ds->paths[2], "c/a/x.png"));
    ssl_dataset_free(ds);

    mkdirs("empty");
    tu_assert_error(ssl_dataset_load_image_folder(path_in("empty"), &o), SSL_ERR_FORMAT, "empty",
                    NULL);
    tu_assert_error(ssl_dataset_load_image_folder(path_in("absent"), &o), SSL_ERR_IO, "absent",
                    NULL);
}

static void test_pairs(void **state)
{
    (void)state;
    mkdirs("pairs/img");
    write_png("pairs/img/1.png", 16, 16, 10);
    write_png("pairs/img/2.png", 16, 16, 20);
    write_bytes(path_in("pairs/img/bad.png"), "garbage", 7);
    const char *tsv = "image\tcaption\n"
                      "img/1.png\ta red and green square\n"
                      "# a comment\n"
                      "\n"
                      "img/bad.png\tbroken\n"
                      "no tab here\n"
                      "img/2.png\tanother one\twith a tab\r\n";
    write_bytes(path_in("pairs/list.tsv"), tsv, strlen(tsv));
    ssl_read_opts_t o;
    ssl_read_opts_default(&o);
    o.image_size = 4;
    ssl_dataset_t *ds = ssl_dataset_load_pairs(path_in("pairs/list.tsv"), &o);
    assert_non_null(ds);
    assert_int_equal(ds->n, 2);
    assert_int_equal(ds->n_skipped, 2);
    assert_string_equal(ds->captions[0], "a red and green square");
    assert_string_equal(ds->captions[1], "another one\twith a tab");
    assert_int_equal(ds->images[48 + 32 + 5], 20); /* image 2 (48 bytes each), blue plane */
    assert_int_equal(ds->labels[1], -1);
    ssl_dataset_free(ds);

    char jl[1024];
    snprintf(jl, sizeof jl,
             "{\"image\": \"img/2.png\", \"caption\": \"two \\\"quoted\\\" \\u00e9\"}\n"
             "{\"image\": \"img/1.png\"}\n"
             "not json\n"
             "{\"file\": \"%s/pairs/img/1.png\", \"text\": \"absolute\"} trailing\n"
             "{\"file\": \"%s/pairs/img/1.png\", \"text\": \"absolute\"}\n",
             g_dir, g_dir);
    write_bytes(path_in("pairs/list.jsonl"), jl, strlen(jl));
    ds = ssl_dataset_load_pairs(path_in("pairs/list.jsonl"), &o);
    assert_non_null(ds);
    assert_int_equal(ds->n, 2);
    assert_int_equal(ds->n_skipped, 3);
    assert_string_equal(ds->captions[0], "two \"quoted\" \xc3\xa9");
    assert_string_equal(ds->captions[1], "absolute");
    ssl_dataset_free(ds);
    o.strict = 1;
    tu_assert_error(ssl_dataset_load_pairs(path_in("pairs/list.jsonl"), &o), SSL_ERR_FORMAT,
                    "list.jsonl:2", NULL);
}

/* ---------------------------------------------------------------- directory links (issue 17) */

/* Folder readers and directory links: a link loop (`ln -s . d/a/s1; ln -s . d/a/s2`) must not
 * hang or grow memory, a link to the parent (`ln -s .. d/a/up`) must not read the dataset again
 * under class a, links out of the root are read only with follow_links, every skipped link is
 * a warning naming it; only empty class directories give an error (not a UBSan abort in qsort).
 * links/d/a/{1,2}.png and links/d/b/3.png are the dataset the links must not change;
 * links/ext/9.png is outside its root. */
static void make_link_tree(void)
{
    mkdirs("links/d/a");
    mkdirs("links/d/b");
    mkdirs("links/ext");
    write_png("links/d/a/1.png", 4, 4, 10);
    write_png("links/d/a/2.png", 4, 4, 20);
    write_png("links/d/b/3.png", 4, 4, 30);
    write_png("links/ext/9.png", 4, 4, 90);
}

static void link_at(const char *target, const char *rel)
{
    assert_int_equal(symlink(target, path_in(rel)), 0);
}

static ssl_dataset_t *load_links(const char *rel, int labelled, int follow_links)
{
    ssl_read_opts_t o;
    ssl_read_opts_default(&o);
    o.image_size = 4;
    o.follow_links = follow_links;
    log_start();
    ssl_dataset_t *ds = labelled ? ssl_dataset_load_image_folder(path_in(rel), &o)
                                 : ssl_dataset_load_unlabeled_folder(path_in(rel), &o);
    log_stop();
    return ds;
}

/* Blue plane (constant: the tag) of image i of a 4 x 4 RGB dataset. */
static int tag_of(const ssl_dataset_t *ds, int64_t i)
{
    return ds->images[i * 48 + 32];
}

/* links/d read as an image folder is exactly a/1, a/2 (class 0) and b/3 (class 1), and the
 * log holds both needles. */
static void assert_plain(int follow_links, const char *needle1, const char *needle2)
{
    ssl_dataset_t *ds = load_links("links/d", 1, follow_links);
    assert_non_null(ds);
    assert_int_equal(ds->n, 3);
    assert_int_equal(ds->n_classes, 2);
    const int32_t labels[3] = {0, 0, 1};
    const int tags[3] = {10, 20, 30};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ds->labels[i], labels[i]);
        assert_int_equal(tag_of(ds, i), tags[i]);
    }
    ssl_dataset_free(ds);
    assert_non_null(strstr(g_log, needle1));
    assert_non_null(strstr(g_log, needle2));
}

static void test_folder_link_loop(void **state)
{
    (void)state;
    make_link_tree();
    link_at(".", "links/d/a/s1");
    link_at(".", "links/d/a/s2");
    assert_plain(0, "d/a/s1 links to", "d/a/s2 links to");
    assert_true(strstr(g_log, "an ancestor: a loop; not followed") != NULL);
    assert_plain(1, "d/a/s1 links to", "a loop"); /* a loop is never followed */
    ssl_dataset_t *ds = load_links("links/d", 0, 1);
    assert_non_null(ds);
    assert_int_equal(ds->n, 3);
    ssl_dataset_free(ds);
    unlink(path_in("links/d/a/s1"));
    unlink(path_in("links/d/a/s2"));
}

static void test_folder_link_parent(void **state)
{
    (void)state;
    make_link_tree();
    link_at("..", "links/d/a/up");
    assert_plain(0, "d/a/up links to", "not followed"); /* b/3.png not read again as class a */
    assert_plain(1, "d/a/up links to", "not followed");
    link_at("../b", "links/d/a/bee"); /* a sibling class: inside the tree */
    assert_plain(1, "d/a/bee links to", "inside the dataset");
    unlink(path_in("links/d/a/up"));
    unlink(path_in("links/d/a/bee"));
}

static void test_folder_link_out_of_root(void **state)
{
    (void)state;
    make_link_tree();
    char target[512];
    snprintf(target, sizeof target, "%s", path_in("links/ext"));
    link_at(target, "links/d/a/x1");
    link_at(target, "links/d/a/x2");
    assert_plain(0, "d/a/x1 links to", "outside the dataset root (data.follow_links");
    /* followed when asked, once: x2 is the same directory */
    ssl_dataset_t *ds = load_links("links/d", 1, 1);
    assert_non_null(ds);
    assert_int_equal(ds->n, 4);
    assert_int_equal(ds->labels[2], 0);
    assert_int_equal(tag_of(ds, 2), 90);
    ssl_dataset_free(ds);
    assert_non_null(strstr(g_log, "d/a/x2 was already read (a duplicate)"));
    unlink(path_in("links/d/a/x1"));
    unlink(path_in("links/d/a/x2"));

    /* a class directory that is a link out of the root: an error unless followed */
    link_at(target, "links/d/c");
    tu_assert_error(load_links("links/d", 1, 0), SSL_ERR_FORMAT, "d/c links to", "class directory",
                    NULL);
    ds = load_links("links/d", 1, 1);
    assert_non_null(ds);
    assert_int_equal(ds->n_classes, 3);
    assert_int_equal(ds->labels[3], 2);
    ssl_dataset_free(ds);
    unlink(path_in("links/d/c"));
    /* a class directory linking to another class: an error (the same images twice) */
    link_at("a", "links/d/c");
    tu_assert_error(load_links("links/d", 1, 1), SSL_ERR_FORMAT, "inside the dataset", NULL);
    unlink(path_in("links/d/c"));
}

static void test_folder_only_empty_classes(void **state)
{
    (void)state;
    mkdirs("links/e/x");
    mkdirs("links/e/y");
    tu_assert_error(load_links("links/e", 1, 0), SSL_ERR_FORMAT, "no readable images", NULL);
    assert_non_null(strstr(g_log, "class \"x\" has no image files"));
    tu_assert_error(load_links("links/e", 0, 0), SSL_ERR_FORMAT, "no readable images", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idx),
        cmocka_unit_test(test_fashion_mnist),
        cmocka_unit_test(test_cifar),
        cmocka_unit_test(test_image_decode),
        cmocka_unit_test(test_image_folder),
        cmocka_unit_test(test_pairs),
        cmocka_unit_test(test_folder_link_loop),
        cmocka_unit_test(test_folder_link_parent),
        cmocka_unit_test(test_folder_link_out_of_root),
        cmocka_unit_test(test_folder_only_empty_classes),
    };
    return tu_status(cmocka_run_group_tests(tests, setup, teardown));
}
