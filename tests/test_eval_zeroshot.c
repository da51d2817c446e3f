/* Zero-shot classification (ssl_zeroshot_eval): a hand-made case with known predictions that a
 * raw dot product (class embeddings not normalised) would get wrong, tie-breaking, top-5, and
 * argument errors. */
#include "../tools/common/blas_env.h" /* first: defines _GNU_SOURCE */

#include "testutil.h"

#include <math.h>
#include <string.h>

#include "ssl/eval.h"

enum { C = 7, D = 7, N = 5 };

/* class c embedding = (c + 1) * e_c: cosine ignores the scale, a plain dot product would not */
static void make_classes(float *cls)
{
    memset(cls, 0, sizeof(float) * C * D);
    for (int c = 0; c < C; c++)
        cls[c * D + c] = (float)(c + 1);
}

static void test_zeroshot_known_answer(void **state)
{
    (void)state;
    float cls[C * D], x[N * D];
    make_classes(cls);
    memset(x, 0, sizeof x);
    int32_t y[N] = {3, 1, 4, 6, 6};
    x[0 * D + 3] = 2.0f, x[0 * D + 5] = 0.5f;           /* -> 3, right */
    x[1 * D + 0] = 1.0f, x[1 * D + 1] = 0.9f;           /* -> 0 (a raw dot says 1), wrong */
    x[2 * D + 2] = 1.0f, x[2 * D + 4] = 1.0f;           /* tie 2 / 4 -> 2, wrong; top-5 */
    for (int j = 0; j < 6; j++)                         /* 6 classes above the label: */
        x[3 * D + j] = 1.0f;                            /* -> 0, wrong, not in top-5 */
    x[3 * D + 6] = -1.0f;
    x[4 * D + 6] = 0.1f;                                /* -> 6, right */
    ssl_features_t f = {x, y, N, D};
    ssl_zeroshot_result_t r;
    int32_t pred[N];
    assert_int_equal(ssl_zeroshot_eval(&f, cls, C, &r, pred), SSL_OK);
    const int32_t want[N] = {3, 0, 2, 0, 6};
    for (int i = 0; i < N; i++)
        assert_int_equal(pred[i], want[i]);
    assert_int_equal(r.n, N);
    assert_true(fabs(r.top1 - 0.4) < 1e-12);
    assert_true(fabs(r.top5 - 0.8) < 1e-12);
    /* 5 classes or fewer: no top-5 */
    ssl_features_t g = {x, (int32_t[]){0, 1, 2, 0, 1}, N, D};
    assert_int_equal(ssl_zeroshot_eval(&g, cls, 3, &r, NULL), SSL_OK);
    assert_true(r.top5 == -1.0);
}

static void test_zeroshot_errors(void **state)
{
    (void)state;
    float cls[C * D], x[D] = {1};
    make_classes(cls);
    ssl_zeroshot_result_t r;
    ssl_features_t f = {x, (int32_t[]){7}, 1, D};
    assert_int_equal(ssl_zeroshot_eval(&f, cls, C, &r, NULL), SSL_ERR_INVALID);
    assert_non_null(strstr(ssl_last_error(), "zeroshot"));
    f.labels = (int32_t[]){2};
    cls[3] = NAN;
    assert_int_not_equal(ssl_zeroshot_eval(&f, cls, C, &r, NULL), SSL_OK);
    assert_non_null(strstr(ssl_last_error(), "classes"));
    make_classes(cls);
    assert_int_equal(ssl_zeroshot_eval(&f, cls, 0, &r, NULL), SSL_ERR_INVALID);
    assert_int_equal(ssl_zeroshot_eval(&f, NULL, C, &r, NULL) != SSL_OK, 1);
}

int main(int argc, char **argv)
{
    ssl_tool_blas_reexec(argv);
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zeroshot_known_answer),
        cmocka_unit_test(test_zeroshot_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
