/* Collapse metrics: the eigenvalue solver on matrices of known spectrum, singular values and
 * RankMe, the std of normalised embeddings, alignment and uniformity against PyTorch golden
 * values (tests/fixtures/gen_eval_fixtures.py) and against plain references. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ssl/eval.h"
#include "ssl/io.h"

#define FIXTURE(name) SSL_SOURCE_DIR "/tests/fixtures/" name

/* ---------------------------------------------------------------- helpers */

/* Random orthogonal n x n (double, row-major) as a product of n Householder reflections. */
static void random_orthogonal(int64_t n, uint64_t seed, double *q)
{
    memset(q, 0, (size_t)(n * n) * sizeof(double));
    for (int64_t i = 0; i < n; i++)
        q[i * n + i] = 1.0;
    double *v = malloc((size_t)n * sizeof(double)), *t = malloc((size_t)n * sizeof(double));
    for (int64_t r = 0; r < n; r++) {
        double vv = 0;
        for (int64_t i = 0; i < n; i++) {
            v[i] = ssl_rng_normal(seed, (uint64_t)r, (uint64_t)i);
            vv += v[i] * v[i];
        }
        /* q <- q (I - 2 v v^T / vv) */
        for (int64_t i = 0; i < n; i++) {
            double s = 0;
            for (int64_t j = 0; j < n; j++)
                s += q[i * n + j] * v[j];
            t[i] = 2.0 * s / vv;
        }
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++)
                q[i * n + j] -= t[i] * v[j];
    }
    free(v);
    free(t);
}

/* a = q diag(lam) q^T; the upper triangle is filled with NaN (the solver reads the lower). */
static double *with_spectrum(int64_t n, const double *lam, uint64_t seed)
{
    double *q = malloc((size_t)(n * n) * sizeof(double));
    double *a = malloc((size_t)(n * n) * sizeof(double));
    random_orthogonal(n, seed, q);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t k = 0; k < n; k++)
                s += q[i * n + k] * lam[k] * q[j * n + k];
            a[i * n + j] = j > i ? NAN : s;
        }
    free(q);
    return a;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void check_spectrum(int64_t n, double *lam, uint64_t seed, double rtol)
{
    double *a = with_spectrum(n, lam, seed), *w = malloc((size_t)n * sizeof(double));
    assert_int_equal(ssl_eigvalsh(a, n, w), SSL_OK);
    qsort(lam, (size_t)n, sizeof(double), cmp_d);
    double mx = 0;
    for (int64_t i = 0; i < n; i++)
        mx = fmax(mx, fabs(lam[i]));
    for (int64_t i = 0; i < n; i++)
        if (fabs(w[i] - lam[i]) > rtol * (mx > 0 ? mx : 1))
            fail_msg("n %lld: eigenvalue %lld = %.17g, expected %.17g", (long long)n, (long long)i,
                     w[i], lam[i]);
    free(a);
    free(w);
}

static float *fixture(const ssl_st_t *f, const char *name, int64_t *n0, int64_t *n1)
{
    int i = ssl_st_find(f, name);
    if (i < 0)
        fail_msg("fixture has no tensor '%s'", name);
    const ssl_st_tensor_t *t = ssl_st_tensor(f, i);
    float *x = malloc((size_t)t->numel * sizeof(float));
    assert_int_equal(ssl_st_read_f32(f, i, x, (size_t)t->numel), SSL_OK);
    if (n0)
        *n0 = t->ndim > 0 ? t->shape[0] : 1;
    if (n1)
        *n1 = t->ndim > 1 ? t->shape[1] : 1;
    return x;
}

static double scalar(const ssl_st_t *f, const char *name)
{
    float *x = fixture(f, name, NULL, NULL);
    double v = x[0];
    free(x);
    return v;
}

static void assert_rel(double got, double want, double rtol, const char *what)
{
    if (!(fabs(got - want) <= rtol * fabs(want) + 1e-12))
        fail_msg("%s: %.9g vs PyTorch %.9g (rel %.2g)", what, got, want,
                 fabs(got - want) / fabs(want));
}

/* ---------------------------------------------------------------- eigenvalues */

static void test_eigvalsh_known_spectra(void **state)
{
    (void)state;
    double one[1] = {-3.5};
    check_spectrum(1, one, 1, 1e-15);
    double two[2] = {2.0, -1.0};
    check_spectrum(2, two, 2, 1e-14);
    double lam[60];
    for (int i = 0; i < 60; i++) /* distinct, both signs */
        lam[i] = (i - 20) * 0.37 + 0.01 * i * i;
    check_spectrum(60, lam, 3, 1e-12);
    for (int i = 0; i < 40; i++) /* heavy multiplicities and zeros */
        lam[i] = i < 15 ? 0.0 : i < 30 ? 2.0 : -1.0;
    check_spectrum(40, lam, 4, 1e-12);
    for (int i = 0; i < 50; i++) /* graded over 12 orders of magnitude (a Gram spectrum) */
        lam[i] = pow(10.0, -12.0 * i / 49.0);
    check_spectrum(50, lam, 5, 1e-13);
    /* a larger matrix of mixed-size entries */
    double *big = malloc(320 * sizeof(double));
    for (int i = 0; i < 320; i++)
        big[i] = sin(0.1 * i) * (1 + i % 7);
    check_spectrum(320, big, 6, 1e-12);
    free(big);
    /* diagonal and zero matrices come out exact */
    double d[9] = {3, NAN, NAN, 0, 1, NAN, 0, 0, 2}, w[3];
    assert_int_equal(ssl_eigvalsh(d, 3, w), SSL_OK);
    assert_true(w[0] == 1 && w[1] == 2 && w[2] == 3);
    double z[4] = {0, 0, 0, 0};
    assert_int_equal(ssl_eigvalsh(z, 2, w), SSL_OK);
    assert_true(w[0] == 0 && w[1] == 0);
    double bad[4] = {1, 0, INFINITY, 1};
    assert_int_equal(ssl_eigvalsh(bad, 2, w), SSL_ERR_NONFINITE);
    assert_int_equal(ssl_eigvalsh(bad, 0, w), SSL_ERR_INVALID);
}

/* A random symmetric matrix large enough for LAPACK's blocked reduction: trace and Frobenius
 * norm are invariants. */
static void test_eigvalsh_invariants(void **state)
{
    (void)state;
    const int64_t n = 600;
    double *a = malloc((size_t)(n * n) * sizeof(double)), *w = malloc((size_t)n * sizeof(double));
    double tr = 0, fro = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j <= i; j++) {
            double v = ssl_rng_normal(9, 1, (uint64_t)(i * n + j));
            a[i * n + j] = v;
            tr += i == j ? v : 0;
            fro += (i == j ? 1 : 2) * v * v;
        }
    assert_int_equal(ssl_eigvalsh(a, n, w), SSL_OK);
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++) {
        s += w[i];
        s2 += w[i] * w[i];
        if (i)
            assert_true(w[i] >= w[i - 1]);
    }
    assert_true(fabs(s - tr) < 1e-9 * sqrt(fro));
    assert_true(fabs(s2 - fro) < 1e-10 * fro);
    /* semicircle: the spectrum spans about +-2 sqrt(n) */
    assert_true(w[0] < -1.8 * sqrt((double)n) && w[n - 1] > 1.8 * sqrt((double)n));
    free(a);
    free(w);
}

/* Against numpy.linalg.eigvalsh (tests/fixtures/gen_lapack_fixtures.py): a spectrum from -1e3
 * to 1e3 with two eigenvalues 1e-9 apart, a rank-deficient Gram matrix, a 1 x 1. */
static void test_eigvalsh_numpy(void **state)
{
    (void)state;
    ssl_st_t *f = tu_fixture_open(FIXTURE("eigen_numpy.safetensors"));
    const struct {
        const char *name;
        int64_t n;
    } cases[] = {{"wide", 40}, {"psd", 30}, {"tiny", 1}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char an[64], wn[64];
        snprintf(an, sizeof an, "eig.%s.a", cases[c].name);
        snprintf(wn, sizeof wn, "eig.%s.w", cases[c].name);
        int64_t n = cases[c].n;
        double *a = tu_fixture_f64(f, an, n * n), *want = tu_fixture_f64(f, wn, n);
        double *w = malloc((size_t)n * sizeof(double)), top = 0;
        assert_int_equal(ssl_eigvalsh(a, n, w), SSL_OK);
        for (int64_t i = 0; i < n; i++)
            top = fmax(top, fabs(want[i]));
        for (int64_t i = 0; i < n; i++)
            if (!(fabs(w[i] - want[i]) <= 1e-13 * top))
                fail_msg("%s: eigenvalue %lld = %.17g, numpy %.17g", cases[c].name, (long long)i,
                         w[i], want[i]);
        free(a), free(want), free(w);
    }
    ssl_st_close(f);
}

/* ---------------------------------------------------------------- RankMe */

/* z = U diag(s) V^T with orthonormal U (n x r) and V (d x r). */
static float *low_rank(int64_t n, int64_t d, int64_t r, const double *s, uint64_t seed)
{
    double *qu = malloc((size_t)(n * n) * sizeof(double));
    double *qv = malloc((size_t)(d * d) * sizeof(double));
    random_orthogonal(n, seed, qu);
    random_orthogonal(d, seed + 1, qv);
    float *z = malloc((size_t)(n * d) * sizeof(float));
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++) {
            double v = 0;
            for (int64_t k = 0; k < r; k++)
                v += qu[i * n + k] * s[k] * qv[j * d + k];
            z[i * d + j] = (float)v;
        }
    free(qu);
    free(qv);
    return z;
}

static void test_rankme_low_rank_and_isotropic(void **state)
{
    (void)state;
    double s[8] = {3, 3, 3, 3, 3, 3, 3, 3}, rank;
    /* equal singular values: RankMe = r (the 1e-7 of the paper moves it by < 1e-3) */
    for (int r = 1; r <= 8; r += 7) {
        float *z = low_rank(100, 40, r, s, 10 + r);
        assert_int_equal(ssl_rankme(z, 100, 40, &rank), SSL_OK);
        assert_true(fabs(rank - r) < 1e-3 * r + 2e-4);
        double sv[40];
        assert_int_equal(ssl_singular_values(z, 100, 40, sv), SSL_OK);
        assert_true(fabs(sv[0] - 3) < 1e-5 && sv[r] < 1e-5);
        free(z);
    }
    /* the same through the wide path (n < d) */
    float *w = low_rank(30, 90, 8, s, 77);
    assert_int_equal(ssl_rankme(w, 30, 90, &rank), SSL_OK);
    assert_true(fabs(rank - 8) < 1e-2);
    free(w);
    /* isotropic Gaussian, n >> d: close to d */
    const int64_t n = 4000, d = 64;
    float *g = malloc((size_t)(n * d) * sizeof(float));
    ssl_rng_fill_normal(g, (size_t)(n * d), 0.0f, 1.0f, 5, 6, 0);
    assert_int_equal(ssl_rankme(g, n, d, &rank), SSL_OK);
    assert_true(rank > 0.97 * d && rank <= d);
    double cs;
    assert_int_equal(ssl_collapse_std(g, n, d, &cs), SSL_OK);
    assert_true(fabs(cs - 1.0 / sqrt((double)d)) < 0.02 / sqrt((double)d));
    /* collapsed: one point (plus nothing) -> RankMe 1, std 0 */
    for (int64_t i = 0; i < n; i++)
        memcpy(g + i * d, g, (size_t)d * sizeof(float));
    assert_int_equal(ssl_rankme(g, n, d, &rank), SSL_OK);
    assert_true(fabs(rank - 1) < 1e-3);
    assert_int_equal(ssl_collapse_std(g, n, d, &cs), SSL_OK);
    assert_true(cs < 1e-6);
    memset(g, 0, (size_t)(n * d) * sizeof(float));
    assert_int_equal(ssl_rankme(g, n, d, &rank), SSL_ERR_INVALID);
    g[3] = NAN;
    assert_int_equal(ssl_rankme(g, n, d, &rank), SSL_ERR_NONFINITE);
    free(g);
}

static void test_metrics_golden(void **state)
{
    (void)state;
    ssl_st_t *f = ssl_st_open(FIXTURE("eval_metrics.safetensors"));
    if (!f)
        fail_msg("%s", ssl_last_error());
    int64_t n, d, tn, td, wn, wd;
    float *z1 = fixture(f, "z1", &n, &d), *z2 = fixture(f, "z2", NULL, NULL);
    float *tall = fixture(f, "tall", &tn, &td), *wide = fixture(f, "wide", &wn, &wd);
    double v;
    /* singular values of both shapes */
    float *ts = fixture(f, "tall.svd", NULL, NULL), *ws = fixture(f, "wide.svd", NULL, NULL);
    double sv[30];
    assert_int_equal(ssl_singular_values(tall, tn, td, sv), SSL_OK);
    for (int i = 0; i < td; i++)
        assert_true(fabs(sv[i] - ts[i]) <= 1e-5 * ts[0]);
    assert_int_equal(ssl_singular_values(wide, wn, wd, sv), SSL_OK);
    for (int i = 0; i < wn; i++)
        assert_true(fabs(sv[i] - ws[i]) <= 1e-5 * ws[0]);
    assert_int_equal(ssl_rankme(tall, tn, td, &v), SSL_OK);
    assert_rel(v, scalar(f, "rankme.tall"), 1e-5, "rankme tall");
    assert_int_equal(ssl_rankme(wide, wn, wd, &v), SSL_OK);
    assert_rel(v, scalar(f, "rankme.wide"), 1e-5, "rankme wide");
    assert_int_equal(ssl_rankme(z1, n, d, &v), SSL_OK);
    assert_rel(v, scalar(f, "rankme.z1"), 1e-5, "rankme z1");
    assert_int_equal(ssl_collapse_std(z1, n, d, &v), SSL_OK);
    assert_rel(v, scalar(f, "std.z1"), 1e-5, "std z1");
    assert_int_equal(ssl_collapse_std(wide, wn, wd, &v), SSL_OK);
    assert_rel(v, scalar(f, "std.wide"), 1e-5, "std wide");
    assert_int_equal(ssl_alignment(z1, z2, n, d, 2.0, 1, &v), SSL_OK);
    assert_rel(v, scalar(f, "align.norm.a2"), 1e-5, "alignment alpha 2");
    assert_int_equal(ssl_alignment(z1, z2, n, d, 1.0, 1, &v), SSL_OK);
    assert_rel(v, scalar(f, "align.norm.a1"), 1e-5, "alignment alpha 1");
    assert_int_equal(ssl_alignment(z1, z2, n, d, 2.0, 0, &v), SSL_OK);
    assert_rel(v, scalar(f, "align.raw.a2"), 1e-5, "alignment raw");
    assert_int_equal(ssl_uniformity(z1, n, d, 2.0, 1, &v), SSL_OK);
    assert_rel(v, scalar(f, "uniform.norm.t2"), 1e-5, "uniformity t 2");
    assert_int_equal(ssl_uniformity(z1, n, d, 0.5, 1, &v), SSL_OK);
    assert_rel(v, scalar(f, "uniform.norm.t05"), 1e-5, "uniformity t 0.5");
    for (int64_t i = 0; i < n * d; i++)
        z1[i] *= 0.3f;
    assert_int_equal(ssl_uniformity(z1, n, d, 2.0, 0, &v), SSL_OK);
    assert_rel(v, scalar(f, "uniform.raw.t2"), 1e-5, "uniformity raw");
    free(z1), free(z2), free(tall), free(wide), free(ts), free(ws);
    ssl_st_close(f);
}

/* Uniformity over several pair blocks, and with distances so large that exp underflows in a
 * naive mean: against a plain double reference. */
static void test_uniformity_blocks_and_range(void **state)
{
    (void)state;
    const int64_t n = 3100, d = 6;
    float *z = malloc((size_t)(n * d) * sizeof(float));
    ssl_rng_fill_normal(z, (size_t)(n * d), 0.0f, 1.0f, 8, 1, 0);
    double v, ref = 0;
    for (int64_t i = 0; i < n; i++) {
        double ni = 0;
        for (int64_t k = 0; k < d; k++)
            ni += (double)z[i * d + k] * z[i * d + k];
        for (int64_t j = i + 1; j < n; j++) {
            double nj = 0, dot = 0;
            for (int64_t k = 0; k < d; k++) {
                nj += (double)z[j * d + k] * z[j * d + k];
                dot += (double)z[i * d + k] * z[j * d + k];
            }
            ref += exp(-2.0 * (2.0 - 2.0 * dot / sqrt(ni * nj)));
        }
    }
    ref = log(ref / (n * (n - 1) / 2.0));
    assert_int_equal(ssl_uniformity(z, n, d, 2.0, 1, &v), SSL_OK);
    assert_rel(v, ref, 1e-5, "uniformity, 3100 rows");
    /* 3 points far apart: exp(-2 * 1e6) underflows, the log-sum-exp does not */
    float far[6] = {0, 0, 1000, 0, 0, 1000};
    assert_int_equal(ssl_uniformity(far, 3, 2, 2.0, 0, &v), SSL_OK);
    double want = -2.0 * 1e6 + log((2 * exp(0.0) + exp(-2.0 * 1e6)) / 3.0);
    assert_rel(v, want, 1e-9, "uniformity, far points");
    assert_int_equal(ssl_uniformity(far, 1, 2, 2.0, 0, &v), SSL_ERR_INVALID);
    assert_int_equal(ssl_alignment(far, far, 3, 2, 2.0, 0, &v), SSL_OK);
    assert_true(v == 0.0);
    free(z);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eigvalsh_known_spectra),
        cmocka_unit_test(test_eigvalsh_invariants),
        cmocka_unit_test(test_eigvalsh_numpy),
        cmocka_unit_test(test_rankme_low_rank_and_isotropic),
        cmocka_unit_test(test_metrics_golden),
        cmocka_unit_test(test_uniformity_blocks_and_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
