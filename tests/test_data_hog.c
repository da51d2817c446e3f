/* MaskFeat's HOG (ssl_hog) against a PyTorch transcription of SlowFast's HOGLayerC
 * (tests/fixtures/gen_loss_fixtures.py hog_ref, float64), a hand-worked edge, and its errors. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ssl/data.h"
#include "ssl/io.h"

static void test_hog_golden(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_st_t *f = tu_fixture_open(TU_FIXTURE("losses.safetensors"));
    ssl_tensor_t *x = tu_fixture_tensor(ctx, f, "hog.x"); // (2, 2, 8, 12)
    static const char *const names[] = {"hog.cell2", "hog.cell4"};
    for (int k = 0; k < 2; k++) {
        int cell = 2 << k;
        ssl_tensor_t *want = tu_fixture_tensor(ctx, f, names[k]);
        assert_int_equal(want->numel, 2 * 2 * 9 * (8 / cell) * (12 / cell));
        float *got = malloc(sizeof(float) * (size_t)want->numel);
        assert_int_equal(ssl_hog(x->data, 2, 2, 8, 12, 9, cell, got), SSL_OK);
        tu_assert_close(got, want->data, want->numel, 1e-6, 1e-5);
        free(got);
    }
    /* the cells of each 4x4 patch, as MaskFeat's targets */
    ssl_tensor_t *want = tu_fixture_tensor(ctx, f, "hog.patches"); // (2, 6, 2 * 9 * 4)
    assert_int_equal(want->numel, 2 * 6 * 72);
    float *got = malloc(sizeof(float) * (size_t)want->numel);
    assert_int_equal(ssl_hog_patches(x->data, 2, 2, 8, 12, 9, 2, 4, got), SSL_OK);
    tu_assert_close(got, want->data, want->numel, 1e-6, 1e-5);
    free(got);
    ssl_st_close(f);
    ssl_ctx_free(ctx);
}

/* A vertical step edge (0 left, 1 right of column 2) in a 4x4 image, one cell of 4: the Sobel
 * x gradient is -4 on the two columns beside the edge (1 - 0 weighted 1, 2, 1; the kernel is
 * correlated, so its sign is left minus right), gy is 0: atan2(-4, 0) = -pi/2 -> bin
 * floor(-4.5) mod 9 = 4, and the cell's only non-zero bin normalises to 1. */
static void test_hog_edge(void **state)
{
    (void)state;
    float img[16], out[9];
    for (int i = 0; i < 16; i++)
        img[i] = (i % 4) >= 2 ? 1.0f : 0.0f;
    assert_int_equal(ssl_hog(img, 1, 1, 4, 4, 9, 4, out), SSL_OK);
    for (int b = 0; b < 9; b++)
        assert_float_equal(out[b], b == 4 ? 1.0f : 0.0f, 1e-6);
    /* a flat image has no gradient: every bin 0 (F.normalize of zeros) */
    for (int i = 0; i < 16; i++)
        img[i] = 0.5f;
    assert_int_equal(ssl_hog(img, 1, 1, 4, 4, 9, 4, out), SSL_OK);
    for (int b = 0; b < 9; b++)
        assert_float_equal(out[b], 0.0f, 0);
}

static void test_hog_errors(void **state)
{
    (void)state;
    float img[36] = {0}, out[324];
    assert_int_equal(ssl_hog(img, 1, 1, 6, 6, 9, 4, out), SSL_ERR_INVALID);
    tu_assert_error(NULL, SSL_ERR_INVALID, "hog", "(1, 1, 6, 6)", "cell (4)", NULL);
    assert_int_equal(ssl_hog(img, 1, 1, 6, 6, 0, 2, out), SSL_ERR_INVALID);
    tu_assert_error(NULL, SSL_ERR_INVALID, "bins (0)", NULL);
    assert_int_equal(ssl_hog(img, 1, 1, 1, 1, 9, 1, out), SSL_ERR_INVALID);
    assert_int_equal(ssl_hog(NULL, 1, 1, 6, 6, 9, 2, out), SSL_ERR_INVALID);
    tu_assert_error(NULL, SSL_ERR_INVALID, "NULL x", NULL);
    assert_int_equal(ssl_hog_patches(img, 1, 1, 6, 6, 9, 2, 3, out), SSL_ERR_INVALID);
    tu_assert_error(NULL, SSL_ERR_INVALID, "patches of 3 pixels", "cell (2)", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hog_golden),
        cmocka_unit_test(test_hog_edge),
        cmocka_unit_test(test_hog_errors),
    };
    return cmocka_run_group_tests_name("data_hog", tests, NULL, NULL);
}
