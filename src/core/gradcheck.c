/* Central-difference gradient checking, used by the tests and by `sslc selfcheck`. */
#include "core_internal.h"

#include <math.h>
#include <stdlib.h>

static double weighted_sum(const ssl_tensor_t *out, const float *r)
{
    double s = 0;
    for (int64_t i = 0; i < out->numel; i++)
        s += (double)out->data[i] * (double)r[i];
    return s;
}

int ssl_gradcheck(ssl_ctx_t *ctx, ssl_graph_fn fn, void *user, ssl_tensor_t **in, int n_in,
                  const ssl_gradcheck_opts_t *opts, ssl_gradcheck_result_t *res)
{
    if (SSL__IS_NULL(ctx, __func__) || SSL__IS_NULL(fn, __func__) ||
        (n_in != 0 && SSL__IS_NULL(in, __func__)))
        return SSL_ERR_INVALID;
    if (n_in < 0)
        return ssl_set_error(SSL_ERR_INVALID, "ssl_gradcheck: n_in %d < 0", n_in);
    ssl_gradcheck_opts_t o = {1e-3, 1e-3, 1e-2, 256};
    if (opts) {
        if (opts->eps > 0) o.eps = opts->eps;
        if (opts->atol > 0) o.atol = opts->atol;
        if (opts->rtol > 0) o.rtol = opts->rtol;
        if (opts->max_per_input > 0) o.max_per_input = opts->max_per_input;
    }
    ssl_gradcheck_result_t r0 = {0, 0, -1, -1, 0, 0};
    ssl_gradcheck_result_t *R = res ? res : &r0;
    *R = r0;
    for (int i = 0; i < n_in; i++)
        if (in[i] && !in[i]->name)
            in[i]->grad = NULL; /* leaves from the arena start from zero */
    ssl_tensor_t *out = fn(ctx, in, user);
    if (!out)
        return ssl_last_status() ? ssl_last_status() : SSL_ERR_INVALID;
    float *w = malloc((size_t)out->numel * sizeof(float));
    ssl_ctx_t *scratch = ssl_ctx_create(1 << 20);
    if (!w || !scratch) {
        free(w);
        ssl_ctx_free(scratch);
        return ssl_set_error(SSL_ERR_NOMEM, "gradcheck: out of memory");
    }
    ssl_rng_fill_uniform(w, (size_t)out->numel, -1.0f, 1.0f, 1234, 99, 0);
    int st = ssl_backward_with(ctx, out, w);
    ssl_ctx_set_grad(scratch, 0);
    double worst = -1;
    for (int i = 0; st == SSL_OK && i < n_in; i++) {
        ssl_tensor_t *x = in[i];
        if (!x || !x->requires_grad)
            continue;
        if (!x->grad) {
            st = ssl_set_error(SSL_ERR_INVALID, "gradcheck: input %d received no gradient", i);
            break;
        }
        int64_t step = x->numel > o.max_per_input ? x->numel / o.max_per_input : 1;
        for (int64_t j = 0; j < x->numel; j += step) {
            float saved = x->data[j];
            x->data[j] = (float)(saved + o.eps);
            double xp = x->data[j];
            ssl_tensor_t *yp = fn(scratch, in, user);
            double fp = yp ? weighted_sum(yp, w) : NAN;
            ssl_ctx_reset(scratch);
            x->data[j] = (float)(saved - o.eps);
            double xm = x->data[j];
            ssl_tensor_t *ym = fn(scratch, in, user);
            double fm = ym ? weighted_sum(ym, w) : NAN;
            ssl_ctx_reset(scratch);
            x->data[j] = saved;
            double num = (fp - fm) / (xp - xm); /* the step actually taken in float */
            double an = x->grad[j];
            double d = fabs(an - num);
            R->checked++;
            int ok = d <= o.atol + o.rtol * fabs(num);
            if (!ok)
                R->failed++;
            double score = ok ? d / (o.atol + o.rtol * fabs(num)) : 1e300;
            if (!ok || isnan(d))
                score = isnan(d) ? 1e308 : 1e300 + d;
            if (score > worst) {
                worst = score;
                R->worst_input = i;
                R->worst_index = j;
                R->worst_analytic = an;
                R->worst_numeric = num;
            }
        }
    }
    ssl_ctx_free(scratch);
    free(w);
    if (st != SSL_OK)
        return st;
    if (R->failed)
        return ssl_set_error(SSL_ERR_INVALID,
                             "gradcheck: %d of %d elements off; worst input %d [%lld]: analytic "
                             "%.7g, numeric %.7g",
                             R->failed, R->checked, R->worst_input, (long long)R->worst_index,
                             R->worst_analytic, R->worst_numeric);
    return SSL_OK;
}
