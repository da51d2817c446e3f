/* Linear probe: full-batch training against a plain double-precision reference (standardisation,
 * softmax cross-entropy gradient, SGD with momentum / AdamW, weight decay on weights only, cosine
 * schedule with warmup), separable blobs, determinism, the returned classifier reproducing the
 * reported accuracy, the validation split, argument errors, and raw Fashion-MNIST pixels. */
#include "../tools/common/blas_env.h" /* first: defines _GNU_SOURCE */

#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eval_fmnist.h"
#include "ssl/eval.h"

static void blobs(int64_t n, int64_t d, int c, float spread, float noise, uint64_t seed, float *x,
                  int32_t *y)
{
    float *centres = malloc((size_t)c * (size_t)d * sizeof(float));
    ssl_rng_fill_normal(centres, (size_t)(c * d), 0.0f, spread, 4321, 1, 0);
    ssl_rng_fill_normal(x, (size_t)(n * d), 0.0f, noise, seed, 2, 0);
    for (int64_t i = 0; i < n; i++) {
        y[i] = (int32_t)(ssl_rng_u32(seed, 3, (uint64_t)i) % (uint32_t)c);
        for (int64_t j = 0; j < d; j++)
            x[i * d + j] += centres[y[i] * d + j] + 0.5f * (float)j; /* offsets: standardise */
    }
    free(centres);
}

/* Top-1 of (weight, bias) on standardised rows, mean/inv_std from the training rows. */
static double accuracy_of(const float *w, const float *b, const ssl_features_t *f, int C,
                          const double *mean, const double *inv_std)
{
    int64_t ok = 0, D = f->dim;
    for (int64_t i = 0; i < f->n; i++) {
        int best = 0;
        double bl = -INFINITY;
        for (int c = 0; c < C; c++) {
            double l = b[c];
            for (int64_t j = 0; j < D; j++)
                l += (double)w[c * D + j] * ((f->x[i * D + j] - mean[j]) * inv_std[j]);
            if (l > bl) {
                bl = l;
                best = c;
            }
        }
        ok += best == f->labels[i];
    }
    return (double)ok / (double)f->n;
}

static void stats(const ssl_features_t *f, double *mean, double *inv_std)
{
    int64_t D = f->dim;
    for (int64_t j = 0; j < D; j++) {
        double s = 0, q = 0;
        for (int64_t i = 0; i < f->n; i++) {
            s += f->x[i * D + j];
            q += (double)f->x[i * D + j] * f->x[i * D + j];
        }
        double mu = s / f->n, var = q / f->n - mu * mu;
        mean[j] = mu;
        inv_std[j] = 1.0 / sqrt(var + 1e-6);
    }
}

/* ---------------------------------------------------------------- reference */

/* Full-batch training as the probe documents it, in double. W0 is the probe's initialisation:
 * N(0, 0.01^2) from the counter RNG at the probe's init stream (white-box: 0x5e13). */
static void ref_train(const ssl_features_t *f, int C, const ssl_probe_opts_t *o, double *W,
                      double *bvec)
{
    const int64_t N = f->n, D = f->dim;
    double *mean = malloc(D * sizeof(double)), *inv = malloc(D * sizeof(double));
    stats(f, mean, inv);
    float *w0 = malloc((size_t)(C * D) * sizeof(float));
    ssl_rng_fill_normal(w0, (size_t)(C * D), 0.0f, 0.01f, o->seed, 0x5e13, 0);
    int64_t P = C * D + C;
    double *p = calloc(P, sizeof(double)), *g = calloc(P, sizeof(double));
    double *m = calloc(P, sizeof(double)), *v = calloc(P, sizeof(double));
    for (int64_t i = 0; i < C * D; i++)
        p[i] = w0[i];
    double *xs = malloc(D * sizeof(double)), *lg = malloc(C * sizeof(double));
    for (int t = 0; t < o->epochs; t++) {
        memset(g, 0, P * sizeof(double));
        for (int64_t i = 0; i < N; i++) {
            for (int64_t j = 0; j < D; j++)
                xs[j] = (f->x[i * D + j] - mean[j]) * inv[j];
            double mx = -INFINITY, z = 0;
            for (int c = 0; c < C; c++) {
                lg[c] = p[C * D + c];
                for (int64_t j = 0; j < D; j++)
                    lg[c] += p[c * D + j] * xs[j];
                mx = fmax(mx, lg[c]);
            }
            for (int c = 0; c < C; c++)
                z += exp(lg[c] - mx);
            for (int c = 0; c < C; c++) {
                double d = (exp(lg[c] - mx) / z - (c == f->labels[i])) / (double)N;
                for (int64_t j = 0; j < D; j++)
                    g[c * D + j] += d * xs[j];
                g[C * D + c] += d;
            }
        }
        double lr;
        if (t < o->warmup_epochs)
            lr = o->lr * (t + 1.0) / o->warmup_epochs;
        else
            lr = o->min_lr + (o->lr - o->min_lr) * 0.5 *
                                 (1 + cos(M_PI * (t - o->warmup_epochs) /
                                          (double)(o->epochs - o->warmup_epochs)));
        for (int64_t k = 0; k < P; k++) {
            double wd = k < C * D ? o->weight_decay : 0.0;
            if (o->optimizer == SSL_PROBE_SGD) {
                double gk = g[k] + wd * p[k];
                m[k] = o->momentum * m[k] + gk;
                p[k] -= lr * m[k];
            } else {
                int s = t + 1;
                p[k] *= 1 - lr * wd;
                m[k] = o->beta1 * m[k] + (1 - o->beta1) * g[k];
                v[k] = o->beta2 * v[k] + (1 - o->beta2) * g[k] * g[k];
                double mh = m[k] / (1 - pow(o->beta1, s)), vh = v[k] / (1 - pow(o->beta2, s));
                p[k] -= lr * mh / (sqrt(vh) + o->eps);
            }
        }
    }
    for (int64_t i = 0; i < C * D; i++)
        W[i] = p[i];
    for (int c = 0; c < C; c++)
        bvec[c] = p[C * D + c];
    free(mean), free(inv), free(w0), free(p), free(g), free(m), free(v), free(xs), free(lg);
}

static void test_probe_matches_reference(void **state)
{
    (void)state;
    const int64_t n = 120, d = 9;
    const int C = 4;
    float *x = malloc(n * d * sizeof(float));
    int32_t *y = malloc(n * sizeof(int32_t));
    blobs(n, d, C, 0.7f, 1.0f, 7, x, y); /* overlapping: gradients stay large */
    ssl_features_t f = {x, y, n, d};
    for (int opt = 0; opt < 2; opt++) {
        ssl_probe_opts_t o = ssl_probe_opts_default();
        o.optimizer = opt;
        o.epochs = 6;
        o.warmup_epochs = 2;
        o.batch_size = 1000; /* full batch: one step per epoch */
        o.val_fraction = 0.0f;
        o.lr = opt == SSL_PROBE_SGD ? 0.5f : 0.05f;
        o.min_lr = 0.001f;
        o.weight_decay = 0.05f;
        o.seed = 3;
        float w[4 * 9], b[4];
        double rw[4 * 9], rb[4];
        ssl_probe_result_t r;
        assert_int_equal(ssl_linear_probe(&f, NULL, C, &o, &r, w, b), SSL_OK);
        assert_int_equal(r.best_epoch, 6);
        assert_true(r.test_top1 == -1.0 && r.val_top1 == -1.0);
        ref_train(&f, C, &o, rw, rb);
        float rwf[4 * 9], rbf[4];
        for (int i = 0; i < C * d; i++)
            rwf[i] = (float)rw[i];
        for (int i = 0; i < C; i++)
            rbf[i] = (float)rb[i];
        tu_assert_close(w, rwf, C * d, 2e-5, 1e-3);
        tu_assert_close(b, rbf, C, 2e-5, 1e-3);
    }
    free(x);
    free(y);
}

/* ---------------------------------------------------------------- behaviour */

static void test_probe_blobs_and_determinism(void **state)
{
    (void)state;
    const int64_t n = 3000, m = 600, d = 24;
    const int C = 8;
    float *x = malloc(n * d * sizeof(float)), *xt = malloc(m * d * sizeof(float));
    int32_t *y = malloc(n * sizeof(int32_t)), *yt = malloc(m * sizeof(int32_t));
    blobs(n, d, C, 2.0f, 0.5f, 1, x, y);
    blobs(m, d, C, 2.0f, 0.5f, 2, xt, yt);
    ssl_features_t tr = {x, y, n, d}, te = {xt, yt, m, d};
    for (int opt = 0; opt < 2; opt++) {
        ssl_probe_opts_t o = ssl_probe_opts_default();
        o.optimizer = opt;
        o.lr = opt == SSL_PROBE_SGD ? 0.05f : 1e-3f;
        o.epochs = 5;
        ssl_probe_result_t r, r2;
        float *w = malloc(C * d * sizeof(float)), *w2 = malloc(C * d * sizeof(float));
        float b[8], b2[8];
        assert_int_equal(ssl_linear_probe(&tr, &te, C, &o, &r, w, b), SSL_OK);
        assert_true(r.test_top1 >= 0.99 && r.val_top1 >= 0.99 && r.test_top5 == 1.0);
        assert_int_equal(r.n_val, 300);
        assert_int_equal(r.n_train, 2700);
        assert_true(r.best_epoch >= 1 && r.best_epoch <= 5);
        /* same seed: same bits; the classifier reproduces the reported accuracy */
        assert_int_equal(ssl_linear_probe(&tr, &te, C, &o, &r2, w2, b2), SSL_OK);
        assert_memory_equal(w, w2, C * d * sizeof(float));
        assert_memory_equal(b, b2, sizeof b);
        assert_true(r.test_top1 == r2.test_top1 && r.train_loss == r2.train_loss);
        free(w), free(w2);
    }
    free(x), free(xt), free(y), free(yt);
}

/* weight_out/bias_out are the best epoch's classifier; with val_fraction 0 the last one. */
static void test_probe_returned_classifier(void **state)
{
    (void)state;
    const int64_t n = 800, d = 10;
    const int C = 3;
    float *x = malloc(n * d * sizeof(float));
    int32_t *y = malloc(n * sizeof(int32_t));
    blobs(n, d, C, 0.6f, 1.0f, 9, x, y);
    ssl_features_t tr = {x, y, n, d};
    ssl_probe_opts_t o = ssl_probe_opts_default();
    o.val_fraction = 0.0f;
    o.epochs = 4;
    float w[3 * 10], b[3];
    ssl_probe_result_t r;
    assert_int_equal(ssl_linear_probe(&tr, &tr, C, &o, &r, w, b), SSL_OK);
    assert_int_equal(r.best_epoch, 4);
    assert_true(r.test_top5 == -1.0);
    double mean[10], inv[10];
    stats(&tr, mean, inv);
    double acc = accuracy_of(w, b, &tr, C, mean, inv);
    assert_true(fabs(acc - r.test_top1) <= 1.5 / n); /* float vs double logits at a boundary */
    assert_true(r.test_top1 > 0.5 && r.test_top1 < 1.0);
    free(x), free(y);
}

static void on_epoch(int epoch, double loss, double val, double test, void *user)
{
    int *count = user;
    assert_int_equal(epoch, *count + 1);
    assert_true(loss > 0 && val >= 0 && val <= 1 && test == -1.0);
    (*count)++;
}

static void test_probe_callback_and_errors(void **state)
{
    (void)state;
    const int64_t n = 50, d = 4;
    float *x = malloc(n * d * sizeof(float));
    int32_t *y = malloc(n * sizeof(int32_t));
    blobs(n, d, 2, 1.0f, 1.0f, 3, x, y);
    ssl_features_t tr = {x, y, n, d};
    ssl_probe_opts_t o = ssl_probe_opts_default();
    int count = 0;
    o.epochs = 3;
    o.on_epoch = on_epoch;
    o.user = &count;
    ssl_probe_result_t r;
    assert_int_equal(ssl_linear_probe(&tr, NULL, 2, &o, &r, NULL, NULL), SSL_OK);
    assert_int_equal(count, 3);
    assert_int_equal(r.n_val, 5);
    o.on_epoch = NULL;

    ssl_probe_opts_t e = o;
    e.val_fraction = 1.0f;
    assert_int_equal(ssl_linear_probe(&tr, NULL, 2, &e, &r, NULL, NULL), SSL_ERR_INVALID);
    assert_non_null(strstr(ssl_last_error(), "val_fraction"));
    e = o;
    e.epochs = 0;
    assert_int_equal(ssl_linear_probe(&tr, NULL, 2, &e, &r, NULL, NULL), SSL_ERR_INVALID);
    assert_non_null(strstr(ssl_last_error(), "epochs"));
    e = o;
    e.lr = NAN;
    assert_int_equal(ssl_linear_probe(&tr, NULL, 2, &e, &r, NULL, NULL), SSL_ERR_INVALID);
    assert_non_null(strstr(ssl_last_error(), "lr"));
    e = o;
    e.optimizer = 5;
    assert_int_equal(ssl_linear_probe(&tr, NULL, 2, &e, &r, NULL, NULL), SSL_ERR_INVALID);
    y[7] = 2;
    assert_int_equal(ssl_linear_probe(&tr, NULL, 2, &o, &r, NULL, NULL), SSL_ERR_INVALID);
    assert_non_null(strstr(ssl_last_error(), "train label[7] = 2"));
    y[7] = 1;
    ssl_features_t te = {x, y, 10, 3};
    assert_int_equal(ssl_linear_probe(&tr, &te, 2, &o, &r, NULL, NULL), SSL_ERR_SHAPE);
    assert_non_null(strstr(ssl_last_error(), "(50, 4)"));
    assert_non_null(strstr(ssl_last_error(), "(10, 3)"));
    /* a learning rate that diverges is reported, not returned as an accuracy */
    e = o;
    e.optimizer = SSL_PROBE_SGD;
    e.lr = 1e30f;
    e.standardize = 0;
    for (int64_t i = 0; i < n * d; i++)
        x[i] *= 1e6f;
    assert_int_equal(ssl_linear_probe(&tr, NULL, 2, &e, &r, NULL, NULL), SSL_ERR_NONFINITE);
    free(x), free(y);
}

/* ---------------------------------------------------------------- Fashion-MNIST */

/* Raw pixels: multinomial logistic regression lands near 84% (a PyTorch L-BFGS fit of the
 * same model to convergence on the standardised pixels: 84.30%). */
static void test_probe_fashion_mnist(void **state)
{
    (void)state;
    fmnist_t a = {0}, b = {0}; /* freed whole when a split is missing */
    if (fmnist_load("train", &a) || fmnist_load("t10k", &b)) {
        fmnist_free(&a);
        fmnist_free(&b);
        TU_SKIP("Fashion-MNIST not found under " FMNIST_DIR);
    }
    ssl_features_t tr = {a.x, a.y, a.n, 784}, te = {b.x, b.y, b.n, 784};
    ssl_probe_opts_t o = ssl_probe_opts_default(); /* AdamW 1e-3, 10 epochs, BN, 10% val */
    ssl_probe_result_t r;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(ssl_linear_probe(&tr, &te, 10, &o, &r, NULL, NULL), SSL_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    print_message("  raw pixels: best epoch %d, val %.2f%%, test %.2f%% (top-5 %.2f%%), last "
                  "%.2f%%, %.2f s\n",
                  r.best_epoch, 100 * r.val_top1, 100 * r.test_top1, 100 * r.test_top5,
                  100 * r.last_test_top1,
                  (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    assert_int_equal(r.n_val, 6000);
    assert_true(r.test_top1 > 0.83 && r.test_top1 < 0.86);
    assert_true(r.val_top1 > 0.83 && r.val_top1 < 0.87);
    fmnist_free(&a);
    fmnist_free(&b);
}

int main(int argc, char **argv)
{
    ssl_tool_blas_reexec(argv);
    if (argc > 1) /* run only the tests matching a pattern, e.g. "*fashion*" */
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_probe_matches_reference),
        cmocka_unit_test(test_probe_blobs_and_determinism),
        cmocka_unit_test(test_probe_returned_classifier),
        cmocka_unit_test(test_probe_callback_and_errors),
        cmocka_unit_test(test_probe_fashion_mnist),
    };
    return tu_status(cmocka_run_group_tests(tests, NULL, NULL));
}
