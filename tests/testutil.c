#define _DEFAULT_SOURCE /* mkdtemp */
#include "testutil.h"

#include "ssl/io.h"
#include "ssl/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ssl_ctx_t *tu_ctx(void)
{
    ssl_ctx_t *ctx = ssl_ctx_create(1 << 20);
    assert_non_null(ctx);
    return ctx;
}

ssl_tensor_t *tu_rand(ssl_ctx_t *ctx, int ndim, const int64_t *shape, uint64_t seed, float lo,
                      float hi, int requires_grad)
{
    ssl_tensor_t *t = ssl_tensor_new(ctx, ndim, shape);
    assert_non_null(t);
    ssl_rng_fill_uniform(t->data, (size_t)t->numel, lo, hi, seed, 0x7465737475ull, 0);
    t->requires_grad = requires_grad;
    return t;
}

ssl_tensor_t *tu_rand_away0(ssl_ctx_t *ctx, int ndim, const int64_t *shape, uint64_t seed,
                            float lo, float hi, float gap, int requires_grad)
{
    ssl_tensor_t *t = tu_rand(ctx, ndim, shape, seed, lo, hi, requires_grad);
    for (int64_t i = 0; i < t->numel; i++)
        if (fabsf(t->data[i]) < gap)
            t->data[i] = t->data[i] < 0 ? -gap - fabsf(t->data[i]) : gap + t->data[i];
    return t;
}

int tu_count_mismatch(const float *a, const float *b, int64_t n, double atol, double rtol,
                      const char *what)
{
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= atol + rtol * fabs((double)b[i]))) {
            if (bad < 5)
                print_message("  %s: [%lld] %.7g vs %.7g (diff %.3g)\n", what, (long long)i,
                              (double)a[i], (double)b[i], d);
            bad++;
        }
    }
    if (bad)
        print_message("  %s: %d of %lld elements differ\n", what, bad, (long long)n);
    return bad;
}

int tu_gradcheck(ssl_ctx_t *ctx, tu_build_fn fn, void *user, ssl_tensor_t **in, int n_in,
                 const tu_gradcheck_opts_t *opts)
{
    ssl_gradcheck_opts_t o = {0, 0, 0, 0};
    if (opts)
        o = (ssl_gradcheck_opts_t){opts->eps, opts->atol, opts->rtol, opts->max_per_input};
    ssl_gradcheck_result_t r;
    int st = ssl_gradcheck(ctx, fn, user, in, n_in, &o, &r);
    if (st == SSL_OK)
        return 0;
    print_message("  %s\n", ssl_last_error());
    return r.failed > 0 ? r.failed : -1;
}

/* sum(t * r) for a fixed random r (no gradient); r is also copied out when rc is not NULL */
static ssl_tensor_t *weighted_sum(ssl_ctx_t *ctx, ssl_tensor_t *t, uint64_t seed, float **rc)
{
    float *r = malloc((size_t)t->numel * sizeof(float));
    assert_non_null(r);
    ssl_rng_fill_uniform(r, (size_t)t->numel, -1, 1, seed, 0, 0);
    ssl_tensor_t *rt = ssl_tensor_from(ctx, t->ndim, t->shape, r);
    assert_non_null(rt);
    if (rc)
        *rc = r;
    else
        free(r);
    return ssl_sum_all(ctx, ssl_mul(ctx, t, rt));
}

#define TU_MAX_IN 8
void tu_check_grad_adds(ssl_ctx_t *ctx, tu_build_fn fn, void *user, ssl_tensor_t **in, int n_in,
                        uint64_t seed)
{
    assert_true(n_in <= TU_MAX_IN);
    float *alone[TU_MAX_IN] = {0}, *r2[TU_MAX_IN] = {0};
    for (int pass = 0; pass < 2; pass++) {
        ssl_tensor_t *xs[TU_MAX_IN];
        for (int i = 0; i < n_in; i++)
            xs[i] = in[i] && in[i]->requires_grad ? ssl_scale(ctx, in[i], 1.0f, 0.0f) : in[i];
        ssl_tensor_t *loss = weighted_sum(ctx, fn(ctx, xs, user), seed, NULL);
        for (int i = 0; pass == 1 && i < n_in; i++)
            if (xs[i] != in[i]) /* the second consumer */
                loss = ssl_add(ctx, loss,
                               weighted_sum(ctx, ssl_scale(ctx, xs[i], 2.0f, 0.0f),
                                            seed + 1 + (uint64_t)i, &r2[i]));
        assert_non_null(loss);
        assert_int_equal(ssl_backward(ctx, loss), SSL_OK);
        for (int i = 0; i < n_in; i++) {
            if (xs[i] == in[i])
                continue;
            size_t bytes = (size_t)in[i]->numel * sizeof(float);
            if (pass == 0) {
                alone[i] = malloc(bytes);
                assert_non_null(alone[i]);
                memcpy(alone[i], in[i]->grad, bytes);
            } else {
                for (int64_t j = 0; j < in[i]->numel; j++)
                    alone[i][j] += 2.0f * r2[i][j];
                tu_assert_close(in[i]->grad, alone[i], in[i]->numel, 1e-5, 1e-5);
                free(alone[i]);
                free(r2[i]);
            }
            memset(in[i]->grad, 0, bytes);
        }
    }
}

void tu_assert_error(const void *t, int status, ...)
{
    if (t != NULL)
        fail_msg("expected an error (status %s), got a result", ssl_err_name(status));
    const char *msg = ssl_last_error();
    if (ssl_last_status() != status)
        fail_msg("expected status %s, got %s: %s", ssl_err_name(status),
                 ssl_err_name(ssl_last_status()), msg);
    va_list ap;
    va_start(ap, status);
    const char *s;
    while ((s = va_arg(ap, const char *)) != NULL)
        if (!strstr(msg, s))
            fail_msg("error message \"%s\" does not mention \"%s\"", msg, s);
    va_end(ap);
}

static int tu_skipped;

void tu_note_skip(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    print_message("  [ SKIPPED ] %s\n", msg);
    tu_skipped++;
}

int tu_status(int failed)
{
    return failed ? failed : tu_skipped ? 77 : 0;
}

ssl_st_t *tu_fixture_open(const char *path)
{
    ssl_st_t *f = ssl_st_open(path);
    if (!f)
        fail_msg("%s", ssl_last_error());
    return f;
}

ssl_tensor_t *tu_fixture_tensor(ssl_ctx_t *ctx, const ssl_st_t *f, const char *name)
{
    int i = ssl_st_find(f, name);
    if (i < 0)
        fail_msg("fixture %s has no tensor '%s'", ssl_st_path(f), name);
    const ssl_st_tensor_t *t = ssl_st_tensor(f, i);
    ssl_tensor_t *x = ssl_tensor_new(ctx, t->ndim, t->shape);
    assert_non_null(x);
    assert_int_equal(ssl_st_read_f32(f, i, x->data, (size_t)x->numel), SSL_OK);
    return x;
}

double *tu_fixture_f64(const ssl_st_t *f, const char *name, int64_t numel)
{
    int i = ssl_st_find(f, name);
    if (i < 0)
        fail_msg("fixture %s has no tensor '%s'", ssl_st_path(f), name);
    const ssl_st_tensor_t *t = ssl_st_tensor(f, i);
    if (t->dtype != SSL_DTYPE_F64 || t->numel != numel)
        fail_msg("fixture %s: '%s' is %s with %lld elements, expected F64 with %lld",
                 ssl_st_path(f), name, ssl_dtype_name(t->dtype), (long long)t->numel,
                 (long long)numel);
    double *x = malloc((size_t)numel * sizeof(double));
    assert_non_null(x);
    /* safetensors is little-endian, as the hosts this runs on (x86-64, arm64) */
    assert_int_equal(ssl_st_read_raw(f, i, x, (size_t)numel * sizeof(double)), SSL_OK);
    return x;
}

int tu_fixture_param_grads(const ssl_st_t *f, ssl_params_t *p, double atol, double rtol)
{
    int checked = 0;
    for (int i = 0; i < ssl_params_count(p); i++) {
        const ssl_param_info_t *in = ssl_params_info(p, i);
        if (in->kind != SSL_PARAM_TRAINABLE)
            continue;
        char name[256];
        snprintf(name, sizeof name, "grad.%s", in->name);
        int j = ssl_st_find(f, name);
        if (j < 0)
            fail_msg("fixture %s has no %s", ssl_st_path(f), name);
        float *ref = malloc((size_t)in->t->numel * sizeof(float));
        assert_int_equal(ssl_st_read_f32(f, j, ref, (size_t)in->t->numel), SSL_OK);
        int bad = tu_count_mismatch(in->t->grad, ref, in->t->numel, atol, rtol, in->name);
        free(ref);
        if (bad)
            fail_msg("gradient of %s differs from PyTorch", in->name);
        checked++;
    }
    return checked;
}

void tu_expect_trainer_config_error(const char *config, const char *const *needles)
{
    ssl_train_opts_t o = {0};
    o.config_text = config;
    o.no_run_dir = 1;
    ssl_trainer_t *t = ssl_trainer_create(&o);
    if (t) {
        ssl_trainer_free(t);
        fail_msg("config accepted: %s", config);
    }
    for (int i = 0; needles[i]; i++)
        if (!strstr(ssl_last_error(), needles[i]))
            fail_msg("'%s' lacks '%s'", ssl_last_error(), needles[i]);
}

char tu_tmp[256];

int tu_tmpdir_setup(void **state)
{
    (void)state;
    snprintf(tu_tmp, sizeof tu_tmp, "/tmp/ssl_test_XXXXXX");
    return mkdtemp(tu_tmp) ? 0 : -1;
}

void tu_expect_image_size(const char *path, int w, int h)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        fail_msg("no %s", path);
    unsigned char buf[8192];
    size_t len = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    int iw = 0, ih = 0;
    if (ssl_image_info(buf, len, &iw, &ih) != SSL_OK || iw != w || ih != h)
        fail_msg("%s: %d x %d, expected %d x %d (%s)", path, iw, ih, w, h, ssl_last_error());
}

int tu_tmpdir_teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tu_tmp);
    return system(cmd) == 0 ? 0 : -1;
}
