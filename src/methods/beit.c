/* BEiT (Bao et al. 2022; microsoft/unilm beit/modeling_pretrain.py and engine_for_pretraining.py)
 * with a VQ tokenizer trained here (the vqvae family, configs/beit_tokenizer.json) in place of
 * DALL-E's dVAE. The frozen tokenizer, loaded from model.tokenizer.checkpoint, gives every patch
 * of the uncorrupted image a code; the ViT sees the image with its blockwise-masked patches
 * replaced by a learned mask token (before positions are added), and a linear head (lm_head)
 * on its final-normed tokens at the masked positions predicts their codes with cross-entropy.
 *
 * The tokenizer lives in a store of its own: it is not optimised, not saved in BEiT's
 * checkpoints, and re-loaded from the path when training (a fresh or a resumed run). Opened
 * for features only (sslc knn / linear / embed) the method builds neither the tokenizer nor
 * the head: its features are the encoder's, as the other ViT methods'. */
#include "methods_internal.h"

#include <string.h>

#include "models/encoder_config.h"
#include "ssl/io.h"

typedef struct beit_method {
    ssl_method_t base;
    ssl_tensor_t *mask_token; /* (1, 1, D) */
    ssl_nn_linear_t head;     /* D -> K (BEiT's lm_head) */
    ssl_params_t *tok_params; /* the frozen tokenizer's store (NULL: not loaded) */
    ssl__vq_tok_t tok;
} beit_method_t;

/* The tokenizer of the vqvae checkpoint at path into bm->tok (its own store). */
static int load_tokenizer(beit_method_t *bm, ssl_method_build_t *b, ssl_cfg_t *tc,
                          const char *path)
{
    const char *key = "checkpoint";
    ssl_st_t *f = ssl_st_open(path);
    if (!f)
        return ssl_cfg_fail(tc, key, "cannot open the tokenizer checkpoint: %s",
                            ssl_last_error());
    const char *text = ssl_st_meta(f, "config");
    cJSON *doc = text ? ssl_json_parse(text, strlen(text), path) : NULL;
    int st = SSL_OK;
    cJSON *loss = doc ? cJSON_GetObjectItemCaseSensitive(doc, "loss") : NULL;
    cJSON *type = cJSON_IsObject(loss) ? cJSON_GetObjectItemCaseSensitive(loss, "type") : NULL;
    if (!doc)
        st = ssl_cfg_fail(tc, key, "'%s' is not an sslc training checkpoint (no config in its "
                          "metadata)", path);
    else if (!cJSON_IsString(type) || strcmp(type->valuestring, "vqvae") != 0)
        st = ssl_cfg_fail(tc, key,
                          "'%s' is a checkpoint of a '%s' run, not of a vqvae tokenizer (train "
                          "one with sslc train configs/beit_tokenizer.json)",
                          path, cJSON_IsString(type) ? type->valuestring : "loss list");
    int err = 0;
    ssl_cfg_t root = ssl_cfg_root(doc, path, &err, 0);
    ssl_cfg_t model = ssl_cfg_obj(&root, "model"), ec = ssl_cfg_obj(&model, "encoder");
    ssl_cfg_t h = ssl_cfg_obj(&model, "head");
    ssl_encoder_cfg_t ecfg;
    const char *weights = NULL;
    int64_t K = 0, D = 0;
    if (st == SSL_OK && (ssl__encoder_cfg_read(&ec, &ecfg, &weights) != SSL_OK ||
                         ssl__vq_tok_read(&h, &K, &D) != SSL_OK))
        st = ssl_cfg_fail(tc, key, "the tokenizer's config: %s", ssl_last_error());
    const ssl_vit_cfg_t *v = &ssl_encoder_config(bm->base.enc)->vit;
    if (st == SSL_OK &&
        (ecfg.kind != SSL_ENC_VIT || ecfg.vit.image_size != v->image_size ||
         ecfg.vit.patch_size != v->patch_size || ecfg.vit.in_channels != v->in_channels))
        st = ssl_cfg_fail(tc, key,
                          "the tokenizer codes %d-pixel patches of %d-pixel images with %d "
                          "channels, model.encoder has %d-pixel patches of %d-pixel images with "
                          "%d: the code grid must be the ViT's patch grid",
                          ecfg.kind == SSL_ENC_VIT ? ecfg.vit.patch_size : 0,
                          ecfg.kind == SSL_ENC_VIT ? ecfg.vit.image_size : 0,
                          ecfg.kind == SSL_ENC_VIT ? ecfg.vit.in_channels : 0, v->patch_size,
                          v->image_size, v->in_channels);
    ssl_encoder_t *enc = NULL;
    if (st == SSL_OK) {
        bm->tok_params = ssl_params_create();
        enc = bm->tok_params ? ssl_encoder_create(&ecfg, bm->tok_params, "encoder", b->seed)
                             : NULL;
        if (!enc || ssl__vq_tok_init(&bm->tok, enc, bm->tok_params, K, D, b->seed) != SSL_OK ||
            ssl_st_load_params(f, bm->tok_params, "", SSL_ST_ALLOW_UNEXPECTED, NULL) != SSL_OK)
            st = ssl_cfg_fail(tc, key, "loading the tokenizer: %s", ssl_last_error());
    }
    if (st != SSL_OK && enc) {
        ssl_encoder_free(enc);
        bm->tok.enc = NULL;
    }
    cJSON_Delete(doc);
    ssl_st_close(f);
    return st;
}

static int create(ssl_method_t *m, ssl_method_build_t *b)
{
    static const char *const keys[] = {"checkpoint", NULL};
    beit_method_t *bm = (beit_method_t *)m;
    if (ssl_cfg_require(b->model, "tokenizer"))
        return ssl_cfg_status(b->root);
    ssl_cfg_t tc = ssl__method_section(m, b, "tokenizer");
    ssl_cfg_keys(&tc, keys);
    ssl_cfg_require(&tc, "checkpoint");
    const char *path = ssl_cfg_str(&tc, "checkpoint", NULL);
    if (ssl_cfg_status(b->root))
        return ssl_cfg_status(b->root);
    if (m->env.view_normalize)
        return ssl__method_fail(b, NULL, "views",
                                "the beit tokenizer was trained on pixels in [0, 1]: set "
                                "\"normalize\": false in views[0]");
    int64_t D = ssl_encoder_dim(m->enc);
    if (!(bm->mask_token = ssl__method_mask_token(b, "mask_token", D)))
        return ssl_last_status();
    if (m->env.steps_per_epoch == 0) /* opened for features: no tokenizer, no head */
        return SSL_OK;
    if (load_tokenizer(bm, b, &tc, path) != SSL_OK)
        return ssl_last_status();
    return ssl_nn_linear_init(&bm->head, b->online, "head", D, bm->tok.k, 1,
                              SSL_INIT_TRUNC_NORMAL_02, b->seed);
}

static void destroy(ssl_method_t *m)
{
    beit_method_t *bm = (beit_method_t *)m;
    ssl_encoder_free(bm->tok.enc);
    ssl_params_free(bm->tok_params);
}

static ssl_tensor_t *loss(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_batch_t *b,
                          const ssl_step_pos_t *pos)
{
    (void)pos;
    beit_method_t *bm = (beit_method_t *)m;
    const ssl_masks_t *mk = b->masks;
    if (!bm->tok_params) {
        ssl_set_error(SSL_ERR_STATE, "beit: no tokenizer (the method was built for features)");
        return NULL;
    }
    ssl_tensor_t *x = ssl__method_view(b, 0); // (B, C, H, W)
    const int64_t B = x->shape[0], T = bm->tok.grid * bm->tok.grid, M = mk->n_masked;
    /* the tokenizer's codes of the uncorrupted image, no tape */
    int prev = ssl_ctx_set_grad(ctx, 0);
    ssl_tensor_t *z = ssl__vq_tok_encode(&bm->tok, ctx, x, 0); // (B T, d)
    int32_t *codes = ssl__vq_tok_codes(ctx, z, ssl__vq_tok_codebook(&bm->tok, ctx));
    ssl_ctx_set_grad(ctx, prev);
    int32_t *labels = ssl_arena_alloc(ctx, (size_t)(B * M > 0 ? B * M : 1) * sizeof(int32_t));
    if (!codes || !labels)
        return codes ? (ssl_set_error(SSL_ERR_NOMEM, "beit: out of arena memory"), NULL) : NULL;
    for (int64_t i = 0; i < B; i++)
        for (int64_t j = 0; j < M; j++)
            labels[i * M + j] = codes[i * T + mk->masked[i * M + j]];
    ssl_encoder_out_t o;
    if (ssl_encoder_forward_masked(ctx, m->enc, x, NULL, 0, mk->masked, M, bm->mask_token, 1,
                                   &o) != SSL_OK)
        return NULL;
    ssl_tensor_t *logits = ssl_nn_linear_forward(
        ctx, &bm->head, ssl_gather_rows(ctx, o.tokens, mk->masked, M)); // (B, M, K)
    m->last_z = o.pooled;
    return ssl_cross_entropy(ctx, ssl_reshape(ctx, logits, 2, (int64_t[]){B * M, bm->tok.k}),
                             labels);
}

static const int k_types[] = {SSL_LOSS_BEIT, -1};

const ssl_method_def_t ssl__method_beit = {
    .name = "beit",
    .loss_types = k_types,
    .size = sizeof(beit_method_t),
    .target = SSL_TARGET_NONE,
    .needs_vit = 1,
    .mask_kind = SSL_MASK_BLOCKWISE,
    .create = create,
    .free = destroy,
    .loss = loss,
};
