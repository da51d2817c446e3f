/* PCA (ssl_pca): an exact case with known components, variances and projections; invariants on
 * random anisotropic data (orthonormal components, uncorrelated projections whose variances are
 * the covariance's leading eigenvalues); errors. */
#include "../tools/common/blas_env.h" /* first: defines _GNU_SOURCE */

#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ssl/eval.h"
#include "ssl/io.h"

static void test_pca_exact(void **state)
{
    (void)state;
    enum { N = 6, D = 6 };
    const double s = 1.0 / sqrt(2.0);
    const double u[3][D] = {{s, s, 0, 0, 0, 0}, {s, -s, 0, 0, 0, 0}, {0, 0, 1, 0, 0, 0}};
    const double amp[3] = {3.0, 1.0, 0.1};
    float x[N * D];
    for (int i = 0; i < N; i++) /* +-amp_a u_a, offset 5 */
        for (int j = 0; j < D; j++)
            x[i * D + j] = (float)(5.0 + (i % 2 ? -1 : 1) * amp[i / 2] * u[i / 2][j]);
    float proj[N * 2], comp[2 * D];
    double var[2], total;
    assert_int_equal(ssl_pca(x, N, D, 2, proj, comp, var, &total), SSL_OK);
    for (int c = 0; c < 2; c++)
        for (int j = 0; j < D; j++)
            assert_true(fabs(comp[c * D + j] - u[c][j]) < 1e-5);
    assert_true(fabs(var[0] - 18.0 / 5) < 1e-5 && fabs(var[1] - 2.0 / 5) < 1e-5);
    assert_true(fabs(total - 20.02 / 5) < 1e-5);
    const float want[N * 2] = {3, 0, -3, 0, 0, 1, 0, -1, 0, 0, 0, 0};
    for (int i = 0; i < N * 2; i++)
        assert_true(fabs(proj[i] - want[i]) < 1e-5);
}

static void test_pca_random(void **state)
{
    (void)state;
    enum { N = 400, D = 24, K = 3 };
    float *x = malloc(sizeof(float) * N * D);
    ssl_rng_fill_normal(x, N * D, 0.0f, 1.0f, 7, 1, 0);
    for (int i = 0; i < N; i++) /* anisotropic, then mixed by a fixed rotation of pairs */
        for (int j = 0; j < D; j += 2) {
            float a = x[i * D + j] * (float)(D - j), b = x[i * D + j + 1] * 0.5f;
            x[i * D + j] = 0.6f * a + 0.8f * b;
            x[i * D + j + 1] = -0.8f * a + 0.6f * b;
        }
    float proj[N * K], comp[K * D];
    double var[K], total;
    assert_int_equal(ssl_pca(x, N, D, K, proj, comp, var, &total), SSL_OK);
    /* reference eigenvalues of the covariance */
    double *mean = calloc(D, sizeof(double)), *C = calloc(D * D, sizeof(double)), w[D];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < D; j++)
            mean[j] += x[i * D + j] / (double)N;
    for (int i = 0; i < N; i++)
        for (int a = 0; a < D; a++)
            for (int b = 0; b < D; b++)
                C[a * D + b] += (x[i * D + a] - mean[a]) * (x[i * D + b] - mean[b]) / (N - 1);
    double trace = 0;
    for (int a = 0; a < D; a++)
        trace += C[a * D + a];
    assert_int_equal(ssl_eigvalsh(C, D, w), SSL_OK);
    assert_true(fabs(total - trace) < 1e-9 * trace);
    for (int c = 0; c < K; c++) {
        assert_true(fabs(var[c] - w[D - 1 - c]) < 1e-6 * w[D - 1]);
        for (int e = 0; e <= c; e++) { /* orthonormal */
            double dot = 0;
            for (int j = 0; j < D; j++)
                dot += (double)comp[c * D + j] * comp[e * D + j];
            assert_true(fabs(dot - (c == e)) < 1e-5);
        }
        double pv = 0, cov01 = 0; /* projections: variance = eigenvalue, uncorrelated */
        for (int i = 0; i < N; i++) {
            pv += (double)proj[i * K + c] * proj[i * K + c] / (N - 1);
            if (c > 0)
                cov01 += (double)proj[i * K + c] * proj[i * K] / (N - 1);
        }
        assert_true(fabs(pv - var[c]) < 1e-4 * var[0]);
        assert_true(fabs(cov01) < 1e-4 * var[0]);
    }
    free(mean);
    free(C);
    free(x);
}

/* Against NumPy (tests/fixtures/gen_lapack_fixtures.py): numpy.cov's leading eigenpairs from
 * numpy.linalg.eigh, with ssl_pca's sign convention, and the centred projections. */
static void test_pca_numpy(void **state)
{
    (void)state;
    enum { N = 300, D = 20, K = 4 };
    ssl_st_t *f = tu_fixture_open(TU_FIXTURE("eigen_numpy.safetensors"));
    float *x = malloc(sizeof(float) * N * D);
    int i = ssl_st_find(f, "pca.x");
    assert_true(i >= 0);
    assert_int_equal(ssl_st_read_f32(f, i, x, N * D), SSL_OK);
    double *var_np = tu_fixture_f64(f, "pca.var", K), *total_np = tu_fixture_f64(f, "pca.total", 1);
    double *comp_np = tu_fixture_f64(f, "pca.components", K * D);
    double *proj_np = tu_fixture_f64(f, "pca.proj", N * K);
    float proj[N * K], comp[K * D];
    double var[K], total;
    assert_int_equal(ssl_pca(x, N, D, K, proj, comp, var, &total), SSL_OK);
    assert_true(fabs(total - total_np[0]) <= 1e-12 * total_np[0]);
    double pmax = 0;
    for (int j = 0; j < N * K; j++)
        pmax = fmax(pmax, fabs(proj_np[j]));
    for (int c = 0; c < K; c++) {
        if (!(fabs(var[c] - var_np[c]) <= 1e-12 * var_np[0]))
            fail_msg("variance %d: %.17g, numpy %.17g", c, var[c], var_np[c]);
        for (int j = 0; j < D; j++) /* float32 output of unit vectors */
            if (!(fabs(comp[c * D + j] - comp_np[c * D + j]) <= 1e-6))
                fail_msg("component %d[%d]: %.9g, numpy %.9g", c, j, comp[c * D + j],
                         comp_np[c * D + j]);
        for (int r = 0; r < N; r++)
            if (!(fabs(proj[r * K + c] - proj_np[r * K + c]) <= 1e-6 * pmax))
                fail_msg("projection (%d, %d): %.9g, numpy %.9g", r, c, proj[r * K + c],
                         proj_np[r * K + c]);
    }
    free(x), free(var_np), free(total_np), free(comp_np), free(proj_np);
    ssl_st_close(f);
}

static void test_pca_errors(void **state)
{
    (void)state;
    float x[6] = {1, 2, 3, 4, 5, NAN}, p[6];
    assert_int_not_equal(ssl_pca(x, 3, 2, 1, p, NULL, NULL, NULL), SSL_OK);
    assert_non_null(strstr(ssl_last_error(), "pca"));
    x[5] = 6;
    assert_int_equal(ssl_pca(x, 1, 2, 1, p, NULL, NULL, NULL), SSL_ERR_INVALID);
    assert_int_equal(ssl_pca(x, 3, 2, 3, p, NULL, NULL, NULL), SSL_ERR_INVALID);
    float same[6] = {1, 1, 1, 1, 1, 1}; /* zero variance: projections 0, no error */
    assert_int_equal(ssl_pca(same, 3, 2, 2, p, NULL, NULL, NULL), SSL_OK);
    for (int i = 0; i < 6; i++)
        assert_true(p[i] == 0.0f);
}

int main(int argc, char **argv)
{
    ssl_tool_blas_reexec(argv);
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pca_exact),
        cmocka_unit_test(test_pca_random),
        cmocka_unit_test(test_pca_numpy),
        cmocka_unit_test(test_pca_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
