#include "testutil.h"

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

static double weighted_sum(const ssl_tensor_t *out, const float *r)
{
    double s = 0;
    for (int64_t i = 0; i < out->numel; i++)
        s += (double)out->data[i] * (double)r[i];
    return s;
}

int tu_gradcheck(ssl_ctx_t *ctx, tu_build_fn fn, void *user, ssl_tensor_t **in, int n_in,
                 const tu_gradcheck_opts_t *opts)
{
    tu_gradcheck_opts_t o = {1e-3, 1e-3, 1e-2, 256};
    if (opts) {
        if (opts->eps > 0) o.eps = opts->eps;
        if (opts->atol > 0) o.atol = opts->atol;
        if (opts->rtol > 0) o.rtol = opts->rtol;
        if (opts->max_per_input > 0) o.max_per_input = opts->max_per_input;
    }
    for (int i = 0; i < n_in; i++)
        if (in[i])
            in[i]->grad = NULL;
    ssl_tensor_t *out = fn(ctx, in, user);
    if (!out) {
        print_message("gradcheck: build failed: %s\n", ssl_last_error());
        return -1;
    }
    float *r = malloc((size_t)out->numel * sizeof(float));
    ssl_rng_fill_uniform(r, (size_t)out->numel, -1.0f, 1.0f, 1234, 99, 0);
    if (ssl_backward_with(ctx, out, r) != SSL_OK) {
        print_message("gradcheck: backward failed: %s\n", ssl_last_error());
        free(r);
        return -1;
    }
    ssl_ctx_t *scratch = ssl_ctx_create(1 << 20);
    int prev = ssl_ctx_set_grad(scratch, 0);
    (void)prev;
    int bad = 0;
    for (int i = 0; i < n_in; i++) {
        ssl_tensor_t *x = in[i];
        if (!x || !x->requires_grad)
            continue;
        if (!x->grad) {
            print_message("gradcheck: input %d received no gradient\n", i);
            bad++;
            continue;
        }
        int64_t step = x->numel > o.max_per_input ? x->numel / o.max_per_input : 1;
        double worst = 0;
        for (int64_t j = 0; j < x->numel; j += step) {
            float saved = x->data[j];
            x->data[j] = (float)(saved + o.eps);
            double xp = (double)x->data[j];
            ssl_tensor_t *yp = fn(scratch, in, user);
            double fp = yp ? weighted_sum(yp, r) : NAN;
            ssl_ctx_reset(scratch);
            x->data[j] = (float)(saved - o.eps);
            double xm = (double)x->data[j];
            ssl_tensor_t *ym = fn(scratch, in, user);
            double fm = ym ? weighted_sum(ym, r) : NAN;
            ssl_ctx_reset(scratch);
            x->data[j] = saved;
            double num = (fp - fm) / (xp - xm); /* the step actually taken in float */
            double an = x->grad[j];
            double d = fabs(an - num);
            if (!(d <= o.atol + o.rtol * fabs(num))) {
                if (bad < 8)
                    print_message("  gradcheck input %d [%lld]: analytic %.7g numeric %.7g\n", i,
                                  (long long)j, an, num);
                bad++;
            }
            if (d > worst)
                worst = d;
        }
        (void)worst;
    }
    ssl_ctx_free(scratch);
    free(r);
    return bad;
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
