/* data2vec (v1): the student's predictions at the masked tokens regress the average of an EMA
 * teacher's top block outputs, each normalised (facebookresearch/data2vec_vision,
 * engine_for_cyclical.py train_one_epoch). */
#include "losses_internal.h"

#define D2V "data2vec"
#define D2V_EPS 1e-5f /* F.instance_norm's and F.layer_norm's default */

static int check_opts(const ssl_data2vec_opts_t *o)
{
    if (!o) {
        ssl__loss_fail_status(SSL_ERR_INVALID, D2V, "NULL options");
        return 0;
    }
    if (o->kind != SSL_REGRESS_SMOOTH_L1 && o->kind != SSL_REGRESS_MSE) {
        ssl__loss_fail_status(SSL_ERR_INVALID, D2V, "unknown regression kind %d", o->kind);
        return 0;
    }
    if (o->kind == SSL_REGRESS_SMOOTH_L1 && !(o->beta >= 0.0f)) {
        ssl__loss_fail_status(SSL_ERR_INVALID, D2V, "beta %g must be >= 0", (double)o->beta);
        return 0;
    }
    return 1;
}

ssl_tensor_t *ssl_loss_data2vec_targets(ssl_ctx_t *ctx, ssl_tensor_t *const *layers, int k,
                                        const ssl_data2vec_opts_t *opts)
{
    if (!ctx)
        return ssl__loss_fail_status(SSL_ERR_INVALID, D2V, "NULL context");
    if (!layers || k < 1)
        return ssl__loss_fail_status(SSL_ERR_INVALID, D2V, "need at least one block output");
    if (!check_opts(opts))
        return NULL;
    for (int i = 0; i < k; i++)
        if (SSL__NULL_INPUT(layers[i], D2V))
            return NULL;
    char a[64], b[64];
    for (int i = 0; i < k; i++)
        if (layers[i]->ndim != 3 || !ssl_same_shape(layers[i], layers[0]))
            return ssl__loss_fail(D2V, "block output %d %s must be (B, T, D) as block 0's %s", i,
                                  LSHAPE(layers[i], a), LSHAPE(layers[0], b));
    int prev = ssl_ctx_set_grad(ctx, 0); /* the teacher's: no gradient */
    ssl_tensor_t *sum = NULL;
    for (int i = 0; i < k; i++) {
        ssl_tensor_t *y = layers[i]; // (B, T, D)
        if (opts->instance_norm)
            y = ssl_instance_norm_tokens(ctx, y, D2V_EPS);
        if (opts->layer_norm)
            y = ssl_layer_norm(ctx, y, NULL, NULL, D2V_EPS);
        sum = sum ? ssl_add(ctx, sum, y) : y;
    }
    ssl_tensor_t *t = k > 1 ? ssl_scale(ctx, sum, 1.0f / (float)k, 0.0f) : sum;
    if (opts->final_norm)
        t = ssl_layer_norm(ctx, t, NULL, NULL, D2V_EPS);
    ssl_ctx_set_grad(ctx, prev);
    return ssl__loss_sg(ctx, t); /* k = 1 without norms: the block output itself, detached */
}

ssl_tensor_t *ssl_loss_data2vec(ssl_ctx_t *ctx, ssl_tensor_t *pred, ssl_tensor_t *targets,
                                const int32_t *idx, int64_t m, const ssl_data2vec_opts_t *opts)
{
    if (SSL__NULL_INPUT(pred, D2V) || SSL__NULL_INPUT(targets, D2V))
        return NULL;
    if (!ctx)
        return ssl__loss_fail_status(SSL_ERR_INVALID, D2V, "NULL context");
    if (!check_opts(opts))
        return NULL;
    char a[64], b[64];
    if (targets->ndim != 3 || pred->ndim != 3 || pred->shape[0] != targets->shape[0] ||
        pred->shape[1] != m || pred->shape[2] != targets->shape[2] || m < 1 || !idx)
        return ssl__loss_fail(D2V, "pred %s must be (B, m = %lld, D) for targets %s (B, T, D)",
                              LSHAPE(pred, a), (long long)m, LSHAPE(targets, b));
    ssl_tensor_t *t = ssl_gather_rows(ctx, ssl__loss_sg(ctx, targets), idx, m); // (B, m, D)
    return opts->kind == SSL_REGRESS_MSE ? ssl_mse(ctx, pred, t)
                                         : ssl_smooth_l1(ctx, pred, t, opts->beta);
}
