/* CLIP text tower (open_clip TextTransformer) and the image-side projection: token + learned
 * positional embeddings, pre-norm residual attention blocks with a causal mask, final
 * LayerNorm, pooling at the EOS token (or the mean of the non-pad tokens) and a bias-free
 * projection into the joint space. Blocks are the nn transformer block under open_clip's names
 * (ln_1, attn.in_proj_weight, attn.out_proj, ln_2, mlp.c_fc, mlp.c_proj). */
#include "heads_internal.h"

#include <math.h>
#include <string.h>

static ssl_tensor_t *add_param(ssl_params_t *p, const char *pre, const char *name, int ndim,
                               const int64_t *shape, int flags)
{
    char nm[256];
    return ssl_params_add(p, HEAD_NAME(nm, pre, name), ndim, shape, SSL_PARAM_TRAINABLE, flags);
}

/* nn.Linear's default bias: U(±1/sqrt(fan_in)). */
static void default_bias(ssl_tensor_t *b, int64_t fan_in, uint64_t seed)
{
    float bd = (float)(1.0 / sqrt((double)fan_in));
    ssl_nn_fill_uniform(b, -bd, bd, seed);
}

int ssl__clip_resblock_init(ssl_nn_block_t *m, ssl_params_t *p, const char *pre, int64_t W,
                            int heads, int64_t hidden, int layers, uint64_t seed)
{
    char nm[256];
    memset(m, 0, sizeof *m);
    m->act = SSL_ACT_GELU;
    int st;
    if ((st = ssl_nn_layernorm_init(&m->norm1, p, HEAD_NAME(nm, pre, "ln_1"), W, 1e-5f)) ||
        (st = ssl_nn_layernorm_init(&m->norm2, p, HEAD_NAME(nm, pre, "ln_2"), W, 1e-5f)))
        return st;
    m->attn.heads = heads;
    m->attn.dim = W;
    m->attn.qkv.weight = add_param(p, pre, "attn.in_proj_weight", 2, (int64_t[]){3 * W, W}, 0);
    m->attn.qkv.bias =
        add_param(p, pre, "attn.in_proj_bias", 1, (int64_t[]){3 * W}, SSL_PARAM_NO_DECAY);
    m->attn.proj.weight = add_param(p, pre, "attn.out_proj.weight", 2, (int64_t[]){W, W}, 0);
    m->attn.proj.bias =
        add_param(p, pre, "attn.out_proj.bias", 1, (int64_t[]){W}, SSL_PARAM_NO_DECAY);
    m->fc1.weight = add_param(p, pre, "mlp.c_fc.weight", 2, (int64_t[]){hidden, W}, 0);
    m->fc1.bias = add_param(p, pre, "mlp.c_fc.bias", 1, (int64_t[]){hidden}, SSL_PARAM_NO_DECAY);
    m->fc2.weight = add_param(p, pre, "mlp.c_proj.weight", 2, (int64_t[]){W, hidden}, 0);
    m->fc2.bias = add_param(p, pre, "mlp.c_proj.bias", 1, (int64_t[]){W}, SSL_PARAM_NO_DECAY);
    if (!m->attn.qkv.weight || !m->attn.qkv.bias || !m->attn.proj.weight || !m->attn.proj.bias ||
        !m->fc1.weight || !m->fc1.bias || !m->fc2.weight || !m->fc2.bias)
        return ssl_last_status();
    /* open_clip init_parameters; nn.MultiheadAttention zeroes its biases */
    double attn_std = 1.0 / sqrt((double)W), proj_std = attn_std / sqrt(2.0 * layers),
           fc_std = 1.0 / sqrt(2.0 * (double)W);
    ssl_nn_fill_normal(m->attn.qkv.weight, 0.0f, (float)attn_std, seed);
    ssl_nn_fill_normal(m->attn.proj.weight, 0.0f, (float)proj_std, seed);
    ssl_nn_fill_normal(m->fc1.weight, 0.0f, (float)fc_std, seed);
    ssl_nn_fill_normal(m->fc2.weight, 0.0f, (float)proj_std, seed);
    default_bias(m->fc1.bias, W, seed);
    default_bias(m->fc2.bias, hidden, seed);
    return SSL_OK;
}

int ssl_text_tower_init(ssl_text_tower_t *t, ssl_params_t *p, const char *prefix,
                        const ssl_text_cfg_t *cfg, uint64_t seed)
{
    if (SSL__IS_NULL(t, __func__) || SSL__IS_NULL(p, __func__) || SSL__IS_NULL(cfg, __func__))
        return SSL_ERR_INVALID;
    memset(t, 0, sizeof *t);
    const char *pre = prefix ? prefix : "";
    if (cfg->vocab_size <= 0 || cfg->context_length < 1 || cfg->embed_dim <= 0)
        return ssl_set_error(SSL_ERR_CONFIG,
                             "text tower '%s': vocab_size %lld, context_length %d and embed_dim "
                             "%lld must be positive",
                             pre, (long long)cfg->vocab_size, cfg->context_length,
                             (long long)cfg->embed_dim);
    if (cfg->width <= 0 || cfg->heads <= 0 || cfg->width % cfg->heads)
        return ssl_set_error(SSL_ERR_CONFIG,
                             "text tower '%s': width %d must be a positive multiple of heads %d",
                             pre, cfg->width, cfg->heads);
    if (cfg->layers < 0 || cfg->layers > SSL_HEAD_MAX_DEPTH)
        return ssl_set_error(SSL_ERR_CONFIG, "text tower '%s': layers must be in 0..%d, got %d",
                             pre, SSL_HEAD_MAX_DEPTH, cfg->layers);
    int64_t W = cfg->width, hidden = (int64_t)(W * cfg->mlp_ratio);
    if (hidden <= 0)
        return ssl_set_error(SSL_ERR_CONFIG, "text tower '%s': mlp_ratio %g gives no hidden units",
                             pre, cfg->mlp_ratio);
    t->cfg = *cfg;
    char nm[256], sub[96];
    int st;
    t->token_embedding =
        add_param(p, pre, "token_embedding.weight", 2, (int64_t[]){cfg->vocab_size, W}, 0);
    t->positional_embedding =
        add_param(p, pre, "positional_embedding", 2, (int64_t[]){cfg->context_length, W}, 0);
    if (!t->token_embedding || !t->positional_embedding)
        return ssl_last_status();
    ssl_nn_fill_normal(t->token_embedding, 0.0f, 0.02f, seed);
    ssl_nn_fill_normal(t->positional_embedding, 0.0f, 0.01f, seed);
    for (int i = 0; i < cfg->layers; i++) {
        snprintf(sub, sizeof sub, "transformer.resblocks.%d", i);
        if ((st = ssl__clip_resblock_init(&t->blocks[i], p, HEAD_NAME(nm, pre, sub), W,
                                          cfg->heads, hidden, cfg->layers, seed)))
            return st;
    }
    if ((st = ssl_nn_layernorm_init(&t->ln_final, p, HEAD_NAME(nm, pre, "ln_final"), W, 1e-5f)))
        return st;
    t->text_projection = add_param(p, pre, "text_projection", 2, (int64_t[]){W, cfg->embed_dim}, 0);
    if (!t->text_projection)
        return ssl_last_status();
    ssl_nn_fill_normal(t->text_projection, 0.0f, (float)(1.0 / sqrt((double)W)), seed);
    return SSL_OK;
}

ssl_tensor_t *ssl__text_attention_bias(ssl_ctx_t *ctx, const int32_t *ids, int64_t B, int64_t L,
                                    int causal)
{
    ssl_tensor_t *m = causal ? ssl_tensor_zeros(ctx, 2, (int64_t[]){L, L})
                             : ssl_tensor_zeros(ctx, 4, (int64_t[]){B, 1, 1, L});
    if (!m)
        return NULL;
    if (causal) {
        for (int64_t i = 0; i < L; i++)
            for (int64_t j = i + 1; j < L; j++)
                m->data[i * L + j] = -INFINITY;
    } else {
        for (int64_t i = 0; i < B * L; i++)
            if (ids[i] == SSL_VOCAB_PAD)
                m->data[i] = -INFINITY;
    }
    return m;
}

ssl_tensor_t *ssl_text_tower_forward(ssl_ctx_t *ctx, const ssl_text_tower_t *t, const int32_t *ids,
                                     int64_t B, int64_t L)
{
    return ssl_text_tower_forward_tokens(ctx, t, ids, B, L, NULL);
}

ssl_tensor_t *ssl_text_tower_forward_tokens(ssl_ctx_t *ctx, const ssl_text_tower_t *t,
                                            const int32_t *ids, int64_t B, int64_t L,
                                            ssl_tensor_t **tokens)
{
    if (tokens)
        *tokens = NULL;
    if (SSL__IS_NULL(ctx, __func__) || SSL__IS_NULL(t, __func__))
        return NULL;
    const ssl_text_cfg_t *c = &t->cfg;
    if (B < 1 || L < 1 || L > c->context_length || !ids) {
        ssl_set_error(SSL_ERR_SHAPE,
                      "text tower: ids (%lld, %lld), expected (B, L) with 1 <= L "
                      "<= context_length %d",
                      (long long)B, (long long)L, c->context_length);
        return NULL;
    }
    /* each row needs a token to pool / to attend to */
    int32_t *eos = ssl_arena_alloc(ctx, (size_t)B * sizeof *eos);
    float *count = ssl_arena_alloc(ctx, (size_t)B * sizeof *count);
    if (!eos || !count)
        return NULL;
    for (int64_t b = 0; b < B; b++) {
        eos[b] = -1;
        count[b] = 0;
        for (int64_t i = 0; i < L; i++) {
            int32_t v = ids[b * L + i];
            if (v == SSL_VOCAB_EOS && eos[b] < 0)
                eos[b] = (int32_t)i;
            count[b] += v != SSL_VOCAB_PAD;
        }
        if (c->pool == SSL_TEXT_POOL_EOS && eos[b] < 0) {
            ssl_set_error(SSL_ERR_INVALID, "text tower: row %lld has no <eos> token to pool at",
                          (long long)b);
            return NULL;
        }
        if (count[b] == 0) {
            ssl_set_error(SSL_ERR_INVALID, "text tower: row %lld is all padding", (long long)b);
            return NULL;
        }
    }
    ssl_tensor_t *x = ssl_embedding(ctx, t->token_embedding, ids, 2, (int64_t[]){B, L});
    x = ssl_add(ctx, x, ssl_slice(ctx, t->positional_embedding, 0, 0, L)); // (B, L, W)
    ssl_tensor_t *bias = c->layers > 0 ? ssl__text_attention_bias(ctx, ids, B, L, c->causal) : NULL;
    for (int i = 0; i < c->layers; i++)
        x = ssl_nn_block_forward(ctx, &t->blocks[i], x, bias);
    if (!x)
        return NULL;
    if (tokens)
        *tokens = x;
    int64_t W = c->width;
    if (c->pool == SSL_TEXT_POOL_EOS) { /* ln_final is per token: pool first */
        x = ssl_gather_rows(ctx, x, eos, 1);
        x = ssl_reshape(ctx, x, 2, (int64_t[]){B, W});
        x = ssl_nn_layernorm_forward(ctx, &t->ln_final, x);
    } else {
        x = ssl_nn_layernorm_forward(ctx, &t->ln_final, x);
        ssl_tensor_t *w = ssl_tensor_zeros(ctx, 3, (int64_t[]){B, L, 1});
        if (!w)
            return NULL;
        for (int64_t i = 0; i < B * L; i++)
            if (ids[i] != SSL_VOCAB_PAD)
                w->data[i] = 1.0f / count[i / L];
        x = ssl_sum(ctx, ssl_mul(ctx, x, w), 1, 0); // (B, W)
    }
    return ssl_matmul(ctx, x, t->text_projection, 0, 0); // (B, embed_dim)
}

int ssl_clip_proj_init(ssl_clip_proj_t *m, ssl_params_t *p, const char *name, int64_t in,
                       int64_t out, uint64_t seed)
{
    if (SSL__IS_NULL(m, __func__) || SSL__IS_NULL(p, __func__) || SSL__IS_NULL(name, __func__))
        return SSL_ERR_INVALID;
    memset(m, 0, sizeof *m);
    if (in <= 0 || out <= 0)
        return ssl_set_error(SSL_ERR_CONFIG,
                             "clip projection '%s': in (%lld) and out (%lld) "
                             "must be positive",
                             name, (long long)in, (long long)out);
    m->weight = ssl_params_add(p, name, 2, (int64_t[]){in, out}, SSL_PARAM_TRAINABLE, 0);
    if (!m->weight)
        return ssl_last_status();
    ssl_nn_fill_normal(m->weight, 0.0f, (float)(1.0 / sqrt((double)in)), seed);
    return SSL_OK;
}

ssl_tensor_t *ssl_clip_proj_forward(ssl_ctx_t *ctx, const ssl_clip_proj_t *m, ssl_tensor_t *x)
{
    if (SSL__IS_NULL(ctx, __func__) || SSL__IS_NULL(m, __func__))
        return NULL;
    if (SSL__NULL_INPUT(x, __func__))
        return NULL;
    if (x->ndim != 2 || x->shape[1] != m->weight->shape[0]) {
        char want[64];
        snprintf(want, sizeof want, "(B, %lld)", (long long)m->weight->shape[0]);
        return ssl__head_shape_error("clip projection", x, want);
    }
    return ssl_matmul(ctx, x, m->weight, 0, 0);
}
