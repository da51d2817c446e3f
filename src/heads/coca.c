/* CoCa's heads (open_clip coca_model.py): the attentional pooler that turns image tokens into one
 * contrastive token and the caption decoder's image tokens, and the multimodal text decoder
 * (causal self-attention over the text, cross-attention to the image tokens) that predicts the
 * next caption token. */
#include "heads_internal.h"

#include <math.h>
#include <string.h>

/* nn.MultiheadAttention's init: xavier-uniform q/k/v weights, out_proj U(+-1/sqrt(dim)), zero
 * biases */
static void mha_init(ssl_nn_cross_attention_t *a, uint64_t seed)
{
    ssl_nn_linear_t *qkv[3] = {&a->q, &a->k, &a->v};
    for (int i = 0; i < 3; i++) {
        ssl_tensor_t *w = qkv[i]->weight;
        float b = (float)sqrt(6.0 / (double)(w->shape[0] + w->shape[1]));
        ssl_nn_fill_uniform(w, -b, b, seed);
        ssl_nn_fill_const(qkv[i]->bias, 0.0f);
    }
    float b = (float)(1.0 / sqrt((double)a->dim));
    ssl_nn_fill_uniform(a->proj.weight, -b, b, seed);
    ssl_nn_fill_const(a->proj.bias, 0.0f);
}

int ssl_attn_pooler_init(ssl_attn_pooler_t *m, ssl_params_t *p, const char *prefix, int64_t dim,
                         int64_t context_dim, int heads, int n_queries, uint64_t seed)
{
    if (SSL__IS_NULL(m, __func__) || SSL__IS_NULL(p, __func__))
        return SSL_ERR_INVALID;
    memset(m, 0, sizeof *m);
    const char *pre = prefix ? prefix : "";
    if (n_queries < 1 || dim < 1 || context_dim < 1)
        return ssl_set_error(SSL_ERR_CONFIG, "attentional pooler '%s': n_queries %d, dim %lld "
                             "and context_dim %lld must be positive", pre, n_queries,
                             (long long)dim, (long long)context_dim);
    char nm[256];
    m->n_queries = n_queries;
    m->query = ssl_params_add(p, HEAD_NAME(nm, pre, "query"), 2, (int64_t[]){n_queries, dim},
                              SSL_PARAM_TRAINABLE, 0);
    if (!m->query)
        return ssl_last_status();
    ssl_nn_fill_normal(m->query, 0.0f, 1.0f, seed); /* torch.randn */
    int st;
    if ((st = ssl_nn_layernorm_init(&m->ln_q, p, HEAD_NAME(nm, pre, "ln_q"), dim, 1e-5f)) ||
        (st = ssl_nn_layernorm_init(&m->ln_k, p, HEAD_NAME(nm, pre, "ln_k"), context_dim,
                                    1e-5f)) ||
        (st = ssl_nn_cross_attention_init(&m->attn, p, HEAD_NAME(nm, pre, "attn"), dim,
                                          context_dim, heads, SSL_INIT_TORCH_DEFAULT, seed)))
        return st;
    mha_init(&m->attn, seed);
    return SSL_OK;
}

ssl_tensor_t *ssl_attn_pooler_forward(ssl_ctx_t *ctx, const ssl_attn_pooler_t *m, ssl_tensor_t *x)
{
    if (SSL__IS_NULL(ctx, __func__) || SSL__IS_NULL(m, __func__))
        return NULL;
    if (SSL__NULL_INPUT(x, __func__))
        return NULL;
    if (x->ndim != 3 || x->shape[2] != m->attn.kv_dim) {
        char want[64];
        snprintf(want, sizeof want, "(B, N, %lld)", (long long)m->attn.kv_dim);
        return ssl__head_shape_error("attentional pooler", x, want);
    }
    int64_t B = x->shape[0], D = m->attn.dim;
    ssl_tensor_t *q = ssl_nn_layernorm_forward(ctx, &m->ln_q, m->query); // (Q, D)
    q = ssl_add(ctx, ssl_tensor_zeros(ctx, 3, (int64_t[]){B, m->n_queries, D}), q);
    return ssl_nn_cross_attention_forward(ctx, &m->attn, q,
                                          ssl_nn_layernorm_forward(ctx, &m->ln_k, x), NULL);
}

static int cross_block_init(ssl_coca_cross_block_t *b, ssl_params_t *p, const char *pre,
                            int64_t W, int heads, int64_t hidden, int layers, uint64_t seed)
{
    char nm[256];
    int st;
    if ((st = ssl_nn_layernorm_init(&b->ln_1, p, HEAD_NAME(nm, pre, "ln_1"), W, 1e-5f)) ||
        (st = ssl_nn_layernorm_init(&b->ln_1_kv, p, HEAD_NAME(nm, pre, "ln_1_kv"), W, 1e-5f)) ||
        (st = ssl_nn_layernorm_init(&b->ln_2, p, HEAD_NAME(nm, pre, "ln_2"), W, 1e-5f)) ||
        (st = ssl_nn_cross_attention_init(&b->attn, p, HEAD_NAME(nm, pre, "attn"), W, W, heads,
                                          SSL_INIT_TORCH_DEFAULT, seed)) ||
        (st = ssl_nn_linear_init(&b->fc1, p, HEAD_NAME(nm, pre, "mlp.c_fc"), W, hidden, 1,
                                 SSL_INIT_TORCH_DEFAULT, seed)) ||
        (st = ssl_nn_linear_init(&b->fc2, p, HEAD_NAME(nm, pre, "mlp.c_proj"), hidden, W, 1,
                                 SSL_INIT_TORCH_DEFAULT, seed)))
        return st;
    /* open_clip's MultimodalTransformer init, as the text tower's blocks */
    double attn_std = 1.0 / sqrt((double)W), proj_std = attn_std / sqrt(2.0 * layers),
           fc_std = 1.0 / sqrt(2.0 * (double)W);
    ssl_nn_linear_t *qkv[3] = {&b->attn.q, &b->attn.k, &b->attn.v};
    for (int i = 0; i < 3; i++) {
        ssl_nn_fill_normal(qkv[i]->weight, 0.0f, (float)attn_std, seed);
        ssl_nn_fill_const(qkv[i]->bias, 0.0f);
    }
    ssl_nn_fill_normal(b->attn.proj.weight, 0.0f, (float)proj_std, seed);
    ssl_nn_fill_const(b->attn.proj.bias, 0.0f);
    ssl_nn_fill_normal(b->fc1.weight, 0.0f, (float)fc_std, seed);
    ssl_nn_fill_normal(b->fc2.weight, 0.0f, (float)proj_std, seed);
    return SSL_OK;
}

int ssl_coca_decoder_init(ssl_coca_decoder_t *d, ssl_params_t *p, const char *prefix,
                          const ssl_coca_decoder_cfg_t *cfg, uint64_t seed)
{
    if (SSL__IS_NULL(d, __func__) || SSL__IS_NULL(p, __func__) || SSL__IS_NULL(cfg, __func__))
        return SSL_ERR_INVALID;
    memset(d, 0, sizeof *d);
    const char *pre = prefix ? prefix : "";
    int64_t W = cfg->width, hidden = (int64_t)((double)W * cfg->mlp_ratio);
    if (W < 1 || cfg->vocab_size < 1 || cfg->heads < 1 || W % cfg->heads || hidden < 1 ||
        cfg->layers < 1 || cfg->layers > SSL_HEAD_MAX_DEPTH)
        return ssl_set_error(SSL_ERR_CONFIG, "caption decoder '%s': width %lld (a multiple of "
                             "heads %d), vocab %lld, mlp_ratio %g and layers %d (1..%d) cannot "
                             "make a decoder", pre, (long long)W, cfg->heads,
                             (long long)cfg->vocab_size, cfg->mlp_ratio, cfg->layers,
                             SSL_HEAD_MAX_DEPTH);
    d->cfg = *cfg;
    char nm[256], sub[96];
    int st;
    for (int i = 0; i < cfg->layers; i++) {
        snprintf(sub, sizeof sub, "resblocks.%d", i);
        if ((st = ssl__clip_resblock_init(&d->self_blocks[i], p, HEAD_NAME(nm, pre, sub), W,
                                          cfg->heads, hidden, cfg->layers, seed)))
            return st;
        snprintf(sub, sizeof sub, "cross_attn.%d", i);
        if ((st = cross_block_init(&d->cross[i], p, HEAD_NAME(nm, pre, sub), W, cfg->heads,
                                   hidden, cfg->layers, seed)))
            return st;
    }
    if ((st = ssl_nn_layernorm_init(&d->ln_final, p, HEAD_NAME(nm, pre, "ln_final"), W, 1e-5f)))
        return st;
    d->text_projection = ssl_params_add(p, HEAD_NAME(nm, pre, "text_projection"), 2,
                                        (int64_t[]){W, cfg->vocab_size}, SSL_PARAM_TRAINABLE, 0);
    if (!d->text_projection)
        return ssl_last_status();
    ssl_nn_fill_normal(d->text_projection, 0.0f, (float)(1.0 / sqrt((double)W)), seed);
    return SSL_OK;
}

static ssl_tensor_t *cross_block_forward(ssl_ctx_t *ctx, const ssl_coca_cross_block_t *b,
                                         ssl_tensor_t *x, ssl_tensor_t *image)
{
    ssl_tensor_t *kv = ssl_nn_layernorm_forward(ctx, &b->ln_1_kv, image);
    x = ssl_add(ctx, x, ssl_nn_cross_attention_forward(
                            ctx, &b->attn, ssl_nn_layernorm_forward(ctx, &b->ln_1, x), kv, NULL));
    ssl_tensor_t *h = ssl_nn_layernorm_forward(ctx, &b->ln_2, x);
    h = ssl_nn_linear_forward(ctx, &b->fc1, h);
    h = ssl_nn_activation(ctx, h, SSL_ACT_GELU);
    return ssl_linear_residual(ctx, h, b->fc2.weight, b->fc2.bias, x);
}

ssl_tensor_t *ssl_coca_decoder_forward(ssl_ctx_t *ctx, const ssl_coca_decoder_t *d,
                                       ssl_tensor_t *image, ssl_tensor_t *text)
{
    if (SSL__IS_NULL(ctx, __func__) || SSL__IS_NULL(d, __func__))
        return NULL;
    if (SSL__NULL_INPUT(image, __func__) || SSL__NULL_INPUT(text, __func__))
        return NULL;
    int64_t W = d->cfg.width;
    if (text->ndim != 3 || text->shape[2] != W || image->ndim != 3 || image->shape[2] != W ||
        image->shape[0] != text->shape[0]) {
        char s[96], t[96];
        ssl_set_error(SSL_ERR_SHAPE, "caption decoder: image tokens %s and text tokens %s, "
                      "expected (B, N, %lld) and (B, L, %lld)", ssl_shape_str(image, s, sizeof s),
                      ssl_shape_str(text, t, sizeof t), (long long)W, (long long)W);
        return NULL;
    }
    int64_t L = text->shape[1];
    ssl_tensor_t *causal = ssl__text_attention_bias(ctx, NULL, 1, L, 1), *x = text;
    for (int i = 0; i < d->cfg.layers; i++) {
        x = ssl_nn_block_forward(ctx, &d->self_blocks[i], x, causal);
        x = cross_block_forward(ctx, &d->cross[i], x, image);
    }
    x = ssl_nn_layernorm_forward(ctx, &d->ln_final, x);
    return ssl_matmul(ctx, x, d->text_projection, 0, 0); // (B, L, vocab)
}
