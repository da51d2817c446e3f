/* libssl heads: the method-specific modules on top of an encoder.
 *
 *   projector / predictor   an ssl_mlp_t (nn.h) with per-method presets (SimCLR, BYOL, SimSiam,
 *                           MoCo v2/v3, VICReg, Barlow Twins)
 *   DINO head               MLP -> L2-normalised bottleneck -> weight-normalised prototypes
 *   SwAV prototypes         bias-free linear whose rows are renormalised every step
 *   MAE decoder             visible tokens + mask tokens in original order -> pixels per patch
 *   I-JEPA predictor        context tokens + positioned mask tokens -> target predictions
 *   CLIP text tower         tokens -> causal transformer -> EOS/mean pooling -> joint space
 *   CLIP projection         bias-free linear into the joint space (image side)
 *   tokenizer               deterministic word/byte vocabulary for the text tower
 *
 * Every head is a struct of tensor pointers into an ssl_params_t, created by *_init under a name
 * prefix and applied by *_forward (same conventions as nn.h: NULL inputs propagate, errors name
 * the head and the shapes). Parameter names are those of the official PyTorch code, so weights
 * move between libssl and PyTorch by name under the prefix:
 *   DINO    mlp.0.weight ... last_layer.weight_g (K, 1), last_layer.weight_v (K, bottleneck)
 *           (nn.utils.weight_norm; torch's newer parametrize API calls them
 *           last_layer.parametrizations.weight.original0 / original1)
 *   SwAV    prototypes.weight (K, D) -- pass prefix "prototypes"
 *   MAE     decoder_embed.*, mask_token, decoder_pos_embed, decoder_blocks.N.*, decoder_norm.*,
 *           decoder_pred.*
 *   I-JEPA  predictor_embed.*, mask_token, predictor_pos_embed, predictor_blocks.N.*,
 *           predictor_norm.*, predictor_proj.*
 *   CLIP    token_embedding.weight, positional_embedding, transformer.resblocks.N.{ln_1,
 *           attn.in_proj_weight, attn.in_proj_bias, attn.out_proj, ln_2, mlp.c_fc, mlp.c_proj},
 *           ln_final.*, text_projection (width, embed_dim) (open_clip); image side: proj
 *           (width, embed_dim) as open_clip's visual.proj
 * Fixed sin-cos positions are SSL_PARAM_BUFFER entries (saved, never optimised), as PyTorch
 * keeps them in the state dict with requires_grad=False.
 *
 * Configs: ssl_head_preset() gives the reference defaults of a head kind and
 * ssl_head_cfg_from_json() reads a strict JSON section over them (docs/heads.md lists every key
 * and default). Dimensions that come from the encoder (input width, token grid, patch size) are
 * not config keys: set them with ssl_head_cfg_fit_encoder() or by hand before *_init.
 */
#ifndef SSL_HEADS_H
#define SSL_HEADS_H

#include "ssl/core.h"
#include "ssl/models.h"
#include "ssl/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SSL_HEAD_MAX_DEPTH 32 /* transformer blocks in a decoder / predictor / text tower */

/* ---------------------------------------------------------------- DINO head */

typedef struct ssl_dino_head_cfg {
    int64_t in_dim;         /* encoder width (from the encoder) */
    int layers;             /* linear layers of the MLP, >= 1 (3) */
    int64_t hidden_dim;     /* 2048 */
    int64_t bottleneck_dim; /* 256 */
    int64_t out_dim;        /* K prototypes: 65536 upstream, ~4096 for CPU runs */
    int use_bn;             /* BatchNorm after each hidden linear (0) */
    int norm_last_layer;    /* 1: weight_g fixed to 1 (a buffer); 0: weight_g is learned */
    int freeze_last_layer;  /* epochs during which the last layer gets no update (1) */
} ssl_dino_head_cfg_t;

typedef struct ssl_dino_head {
    ssl_dino_head_cfg_t cfg;
    ssl_mlp_t mlp;               /* layers >= 2: "mlp.N" as DINOHead's nn.Sequential */
    ssl_nn_linear_t mlp1;        /* layers == 1: a single linear named "mlp" */
    ssl_tensor_t *weight_g;      /* (K, 1): a buffer of ones when norm_last_layer */
    ssl_tensor_t *weight_v;      /* (K, bottleneck) */
    char last_layer_prefix[200]; /* "<prefix>.last_layer." for ssl_params_set_frozen */
} ssl_dino_head_t;

/* Initialised as DINO does: MLP linears trunc_normal(0.02) with zero bias, the last layer with
 * PyTorch's default Linear init (it is created after DINO's init pass), weight_g = 1. */
SSL_API int ssl_dino_head_init(ssl_dino_head_t *h, ssl_params_t *p, const char *prefix,
                               const ssl_dino_head_cfg_t *cfg, uint64_t seed);
/* x (B, in_dim) -> logits (B, K) = normalize(mlp(x)) @ (g * v / ||v||_row)^T. When bottleneck
 * is not NULL it receives the L2-normalised bottleneck (B, bottleneck_dim). */
SSL_API ssl_tensor_t *ssl_dino_head_forward(ssl_ctx_t *ctx, const ssl_dino_head_t *h,
                                            ssl_tensor_t *x, int training,
                                            ssl_tensor_t **bottleneck);
/* Freeze the last layer while epoch < cfg.freeze_last_layer, unfreeze afterwards (the trainer
 * calls this at the start of every epoch). Returns 1 if frozen now, 0 if not. */
/* The L2-normalised bottleneck normalize(mlp(x)) (B, bottleneck_dim) alone (iBOT's patch
 * tokens go through the same MLP, then a last layer of their own). */
SSL_API ssl_tensor_t *ssl_dino_head_bottleneck(ssl_ctx_t *ctx, const ssl_dino_head_t *h,
                                               ssl_tensor_t *x, int training);
/* A weight-normalised bias-free last layer: z (B, bottleneck) @ (g * v / ||v||_row)^T. */
SSL_API ssl_tensor_t *ssl_dino_last_layer(ssl_ctx_t *ctx, ssl_tensor_t *z, ssl_tensor_t *weight_g,
                                          ssl_tensor_t *weight_v);
/* Add such a layer to p as "<prefix>.weight_g" (K, 1) (ones; a buffer when norm_last_layer)
 * and "<prefix>.weight_v" (K, bottleneck) (PyTorch's default Linear init), as the head's own. */
SSL_API int ssl_dino_last_layer_init(ssl_params_t *p, const char *prefix, int64_t out_dim,
                                     int64_t bottleneck_dim, int norm_last_layer, uint64_t seed,
                                     ssl_tensor_t **weight_g, ssl_tensor_t **weight_v);
SSL_API int ssl_dino_head_set_epoch(const ssl_dino_head_t *h, ssl_params_t *p, int epoch);

/* ---------------------------------------------------------------- SwAV prototypes */

typedef struct ssl_swav_cfg {
    int64_t in_dim;       /* projector output width (from the projector) */
    int64_t n_prototypes; /* 3000 */
    int freeze_iters;     /* iterations during which the prototypes get no update (313) */
} ssl_swav_cfg_t;

typedef struct ssl_swav_prototypes {
    ssl_swav_cfg_t cfg;
    ssl_tensor_t *weight; /* (K, D), "<prefix>.weight" */
    char prefix[200];     /* the weight's full name, for ssl_params_set_frozen */
} ssl_swav_prototypes_t;

/* PyTorch's default Linear init, then rows normalised to unit length. */
SSL_API int ssl_swav_prototypes_init(ssl_swav_prototypes_t *h, ssl_params_t *p, const char *prefix,
                                     const ssl_swav_cfg_t *cfg, uint64_t seed);
/* Renormalise every prototype (row) to unit L2 norm in place, outside the tape. The trainer
 * calls it before each forward (SwAV does it under no_grad at the start of the step). */
SSL_API void ssl_swav_prototypes_normalize(const ssl_swav_prototypes_t *h);
/* z (B, D) -> scores (B, K) = normalize(z) @ W^T. z_norm (may be NULL) receives normalize(z). */
SSL_API ssl_tensor_t *ssl_swav_prototypes_forward(ssl_ctx_t *ctx, const ssl_swav_prototypes_t *h,
                                                  ssl_tensor_t *z, ssl_tensor_t **z_norm);
/* Freeze while iteration < cfg.freeze_iters; returns 1 if frozen now. */
SSL_API int ssl_swav_prototypes_set_iteration(const ssl_swav_prototypes_t *h, ssl_params_t *p,
                                              int64_t iteration);

/* ---------------------------------------------------------------- MAE decoder */

typedef struct ssl_mae_decoder_cfg {
    int64_t in_dim;         /* encoder width (from the encoder) */
    int64_t grid_h, grid_w; /* patch grid (from the encoder) */
    int patch_size;         /* pixels per patch side (from the encoder) */
    int in_chans;           /* image channels (from the encoder) */
    int cls_token;          /* the encoder has a cls token: a cls slot in the sequence */
    int dim, depth, heads;  /* decoder width 512, depth 8, heads 16 */
    double mlp_ratio;       /* 4 */
} ssl_mae_decoder_cfg_t;

typedef struct ssl_mae_decoder {
    ssl_mae_decoder_cfg_t cfg;
    ssl_nn_linear_t embed;    /* decoder_embed (dim, in_dim) */
    ssl_tensor_t *mask_token; /* (1, 1, dim) */
    ssl_tensor_t *pos_embed;  /* decoder_pos_embed (1, [1 +] T, dim), fixed sin-cos buffer */
    ssl_nn_block_t blocks[SSL_HEAD_MAX_DEPTH];
    ssl_nn_layernorm_t norm; /* decoder_norm, eps 1e-6 */
    ssl_nn_linear_t pred;    /* decoder_pred (p * p * C, dim) */
} ssl_mae_decoder_t;

/* MAE's init: xavier_uniform linears with zero bias, mask_token normal(0.02), sin-cos positions
 * with a zero row for the cls slot. */
SSL_API int ssl_mae_decoder_init(ssl_mae_decoder_t *d, ssl_params_t *p, const char *prefix,
                                 const ssl_mae_decoder_cfg_t *cfg, uint64_t seed);
/* tokens (B, K, in_dim): the encoder's visible patch tokens, row k of sample b being patch
 * keep_idx[b * K + k]; cls (B, in_dim) its cls token output (required iff cfg.cls_token, else
 * NULL). Indices must be distinct within a sample. Visible tokens go back to their positions
 * and mask_token fills the others, so the decoder sees the full (B, [1 +] T, dim) sequence in
 * the original patch order. Returns (B, T, p * p * C), the cls slot dropped. */
SSL_API ssl_tensor_t *ssl_mae_decoder_forward(ssl_ctx_t *ctx, const ssl_mae_decoder_t *d,
                                              ssl_tensor_t *cls, ssl_tensor_t *tokens,
                                              const int32_t *keep_idx, int64_t k);

/* ---------------------------------------------------------------- I-JEPA predictor */

typedef struct ssl_jepa_predictor_cfg {
    int64_t in_dim;         /* encoder width (from the encoder) */
    int64_t grid_h, grid_w; /* patch grid (from the encoder) */
    int dim, depth, heads;  /* predictor width 384, depth 12, heads 12 */
    double mlp_ratio;       /* 4 */
} ssl_jepa_predictor_cfg_t;

typedef struct ssl_jepa_predictor {
    ssl_jepa_predictor_cfg_t cfg;
    ssl_nn_linear_t embed;    /* predictor_embed (dim, in_dim) */
    ssl_tensor_t *mask_token; /* (1, 1, dim) */
    ssl_tensor_t *pos_embed;  /* predictor_pos_embed (1, T, dim), fixed sin-cos buffer */
    ssl_nn_block_t blocks[SSL_HEAD_MAX_DEPTH];
    ssl_nn_layernorm_t norm; /* predictor_norm, eps 1e-6 */
    ssl_nn_linear_t proj;    /* predictor_proj (in_dim, dim) */
} ssl_jepa_predictor_t;

/* I-JEPA's init: trunc_normal(0.02) linears and mask_token, zero biases, and attn.proj /
 * mlp.fc2 of block i divided by sqrt(2 (i + 1)). */
SSL_API int ssl_jepa_predictor_init(ssl_jepa_predictor_t *m, ssl_params_t *p, const char *prefix,
                                    const ssl_jepa_predictor_cfg_t *cfg, uint64_t seed);
/* ctx_tokens (B, Kc, in_dim) with their patch indices ctx_idx (B, Kc); n_targets target blocks
 * with indices tgt_idx (n_targets * B, Kt), row m * B + b being block m of sample b (the order
 * of ijepa's apply_masks). Each row sees its sample's context tokens plus their positions, and
 * Kt mask tokens carrying the positions of its targets. Returns predictions at the targets,
 * (n_targets * B, Kt, in_dim). */
SSL_API ssl_tensor_t *ssl_jepa_predictor_forward(ssl_ctx_t *ctx, const ssl_jepa_predictor_t *m,
                                                 ssl_tensor_t *ctx_tokens, const int32_t *ctx_idx,
                                                 const int32_t *tgt_idx, int n_targets, int64_t kt);

/* ---------------------------------------------------------------- CLIP */

typedef enum ssl_text_pool { SSL_TEXT_POOL_EOS = 0, SSL_TEXT_POOL_MEAN = 1 } ssl_text_pool_t;
typedef enum ssl_tokenizer_kind { SSL_TOK_WORDS = 0, SSL_TOK_BYTES = 1 } ssl_tokenizer_kind_t;

typedef struct ssl_text_cfg {
    int64_t vocab_size;       /* from the vocabulary (ssl_vocab_size) */
    int context_length;       /* 77 */
    int width, layers, heads; /* 512, 12, 8 */
    double mlp_ratio;         /* 4 */
    int64_t embed_dim;        /* joint space width 512 */
    int causal;               /* 1: causal attention mask; 0: bidirectional with padding masked */
    int pool;          /* ssl_text_pool_t: the EOS token (1st <eos>), or the mean of non-pad */
    int tokenizer;     /* ssl_tokenizer_kind_t (read by the trainer to build the vocab) */
    int min_count;     /* words seen fewer times become <unk> (1) */
    int64_t max_words; /* keep the most frequent words only; 0 = all */
} ssl_text_cfg_t;

typedef struct ssl_text_tower {
    ssl_text_cfg_t cfg;
    ssl_tensor_t *token_embedding;             /* (V, width) */
    ssl_tensor_t *positional_embedding;        /* (context_length, width) */
    ssl_nn_block_t blocks[SSL_HEAD_MAX_DEPTH]; /* transformer.resblocks.N, LayerNorm eps 1e-5 */
    ssl_nn_layernorm_t ln_final;
    ssl_tensor_t *text_projection; /* (width, embed_dim), no bias */
} ssl_text_tower_t;

/* open_clip's init: token embedding normal(0.02), positions normal(0.01), in_proj normal
 * width^-0.5, out_proj / c_proj normal width^-0.5 (2 layers)^-0.5, c_fc normal (2 width)^-0.5,
 * text_projection normal width^-0.5; attention biases zero. GELU (erf) MLPs. */
SSL_API int ssl_text_tower_init(ssl_text_tower_t *t, ssl_params_t *p, const char *prefix,
                                const ssl_text_cfg_t *cfg, uint64_t seed);
/* ids (B, L) token ids, L <= context_length (ssl_vocab_encode output). Returns (B, embed_dim).
 * EOS pooling takes the first SSL_VOCAB_EOS of each row (an error if a row has none). */
SSL_API ssl_tensor_t *ssl_text_tower_forward(ssl_ctx_t *ctx, const ssl_text_tower_t *t,
                                             const int32_t *ids, int64_t batch, int64_t len);
/* The same, and *tokens (may be NULL) = the last block's output (batch, len, width), before
 * ln_final: CoCa's token embeddings for the multimodal decoder (open_clip's token_embs). */
SSL_API ssl_tensor_t *ssl_text_tower_forward_tokens(ssl_ctx_t *ctx, const ssl_text_tower_t *t,
                                                    const int32_t *ids, int64_t batch,
                                                    int64_t len, ssl_tensor_t **tokens);

/* Image-side projection: weight (in, out), y = x @ weight, no bias (open_clip "visual.proj").
 * name is the full parameter name, e.g. "visual.proj". Init normal(0, in^-0.5). */
typedef struct ssl_clip_proj {
    ssl_tensor_t *weight; /* (in, out) */
} ssl_clip_proj_t;

SSL_API int ssl_clip_proj_init(ssl_clip_proj_t *m, ssl_params_t *p, const char *name, int64_t in,
                               int64_t out, uint64_t seed);
SSL_API ssl_tensor_t *ssl_clip_proj_forward(ssl_ctx_t *ctx, const ssl_clip_proj_t *m,
                                            ssl_tensor_t *x);

/* ---------------------------------------------------------------- CoCa */

/* open_clip's AttentionalPooler: n_queries learned queries (n_queries, dim), LayerNorm'ed (ln_q),
 * cross-attend to the LayerNorm'ed (ln_k) context tokens (B, N, context_dim): (B, n_queries,
 * dim). Parameters "<prefix>.query", "ln_q", "ln_k" (eps 1e-5), "attn.{q,k,v,proj}". */
typedef struct ssl_attn_pooler {
    ssl_tensor_t *query; /* (n_queries, dim) */
    ssl_nn_layernorm_t ln_q, ln_k;
    ssl_nn_cross_attention_t attn;
    int n_queries;
} ssl_attn_pooler_t;

SSL_API int ssl_attn_pooler_init(ssl_attn_pooler_t *m, ssl_params_t *p, const char *prefix,
                                 int64_t dim, int64_t context_dim, int heads, int n_queries,
                                 uint64_t seed);
SSL_API ssl_tensor_t *ssl_attn_pooler_forward(ssl_ctx_t *ctx, const ssl_attn_pooler_t *m,
                                              ssl_tensor_t *x);

/* CoCa's multimodal text decoder (open_clip MultimodalTransformer): per layer a causal
 * self-attention block ("resblocks.N", as the text tower's) then a cross-attention block
 * ("cross_attn.N": x + proj(attn(ln_1(x), ln_1_kv(image)))), x + mlp(ln_2(x))), then ln_final
 * and text_projection (width, vocab_size) to next-token logits. */
typedef struct ssl_coca_cross_block {
    ssl_nn_layernorm_t ln_1, ln_1_kv, ln_2;
    ssl_nn_cross_attention_t attn;
    ssl_nn_linear_t fc1, fc2; /* mlp.c_fc, mlp.c_proj (GELU) */
} ssl_coca_cross_block_t;

typedef struct ssl_coca_decoder_cfg {
    int64_t width;      /* the text tower's width (the decoder reads its tokens) */
    int64_t vocab_size; /* from the vocabulary */
    int layers, heads;  /* 12, 8 */
    double mlp_ratio;   /* 4 */
    int n_queries;      /* image tokens of the attentional pooler: 1 contrastive + the rest */
    int pooler_heads;   /* 8 */
} ssl_coca_decoder_cfg_t;

typedef struct ssl_coca_decoder {
    ssl_coca_decoder_cfg_t cfg;
    ssl_nn_block_t self_blocks[SSL_HEAD_MAX_DEPTH];
    ssl_coca_cross_block_t cross[SSL_HEAD_MAX_DEPTH];
    ssl_nn_layernorm_t ln_final;
    ssl_tensor_t *text_projection; /* (width, vocab_size) */
} ssl_coca_decoder_t;

SSL_API int ssl_coca_decoder_init(ssl_coca_decoder_t *d, ssl_params_t *p, const char *prefix,
                                  const ssl_coca_decoder_cfg_t *cfg, uint64_t seed);
/* image (B, N, width) image tokens, text (B, L, width) token embeddings: logits (B, L, vocab),
 * position i seeing text positions <= i and every image token. */
SSL_API ssl_tensor_t *ssl_coca_decoder_forward(ssl_ctx_t *ctx, const ssl_coca_decoder_t *d,
                                               ssl_tensor_t *image, ssl_tensor_t *text);

/* ---------------------------------------------------------------- tokenizer */

/* Special tokens have fixed ids; the other tokens follow in sorted (byte) order. */
enum {
    SSL_VOCAB_PAD = 0,
    SSL_VOCAB_SOS = 1,
    SSL_VOCAB_EOS = 2,
    SSL_VOCAB_UNK = 3,
    SSL_VOCAB_N_SPECIAL = 4
};

typedef struct ssl_vocab ssl_vocab_t;

/* Words mode: a word is a maximal run of ASCII letters/digits and bytes >= 0x80 (so UTF-8 text
 * stays in whole words), ASCII lower-cased; everything else separates words. The vocabulary is
 * the specials then every word seen at least min_count times (if max_words > 0, only the
 * max_words most frequent, ties broken by byte order), sorted by bytes.
 * Bytes mode: the specials then the 256 byte values (captions are ignored). */
SSL_API ssl_vocab_t *ssl_vocab_build(const char *const *captions, int64_t n, int kind,
                                     int min_count, int64_t max_words);
SSL_API void ssl_vocab_free(ssl_vocab_t *v);
SSL_API int64_t ssl_vocab_size(const ssl_vocab_t *v);
SSL_API int ssl_vocab_kind(const ssl_vocab_t *v);
/* Token string of an id ("<pad>", a word, or "<0x41>" for a byte); NULL if out of range. */
SSL_API const char *ssl_vocab_token(const ssl_vocab_t *v, int32_t id);
/* Id of a word (exactly as stored, i.e. lower-case), or SSL_VOCAB_UNK. */
SSL_API int32_t ssl_vocab_id(const ssl_vocab_t *v, const char *word);
/* The vocabulary as text (malloc'd, free() it), suitable for a checkpoint's metadata:
 *   "ssl-vocab 1 words\n" then one token per line (specials first)  |  "ssl-vocab 1 bytes\n" */
SSL_API char *ssl_vocab_to_string(const ssl_vocab_t *v);
/* Parse ssl_vocab_to_string's text. NULL + SSL_ERR_FORMAT naming the line on bad input. */
SSL_API ssl_vocab_t *ssl_vocab_from_string(const char *s);
/* Encode text into out[context_length]: <sos> tokens <eos> then <pad>s. Longer texts are cut
 * to context_length - 2 tokens and still end with <eos>. Returns the number of non-pad ids, or
 * a negative status (context_length < 2). */
SSL_API int ssl_vocab_encode(const ssl_vocab_t *v, const char *text, int32_t *out,
                             int context_length);

/* ---------------------------------------------------------------- configuration */

typedef enum ssl_head_kind {
    SSL_HEAD_MLP = 0,        /* projector / predictor: cfg.mlp */
    SSL_HEAD_DINO,           /* cfg.dino */
    SSL_HEAD_SWAV,           /* cfg.swav */
    SSL_HEAD_MAE_DECODER,    /* cfg.mae */
    SSL_HEAD_JEPA_PREDICTOR, /* cfg.jepa */
    SSL_HEAD_CLIP_TEXT,      /* cfg.text */
    SSL_HEAD_CLIP_PROJ,      /* cfg.clip_proj */
    SSL_HEAD_COCA_DECODER    /* cfg.coca */
} ssl_head_kind_t;

typedef struct ssl_head_cfg {
    int kind;         /* ssl_head_kind_t */
    char name[32];    /* the preset it started from, e.g. "simsiam_projector" */
    int is_predictor; /* an MLP fed by another head, not by the encoder */
    ssl_mlp_cfg_t mlp;
    ssl_dino_head_cfg_t dino;
    ssl_swav_cfg_t swav;
    ssl_mae_decoder_cfg_t mae;
    ssl_jepa_predictor_cfg_t jepa;
    ssl_text_cfg_t text;
    struct {
        int64_t in_dim;    /* encoder width (from the encoder) */
        int64_t embed_dim; /* joint space width 512 */
    } clip_proj;
    ssl_coca_decoder_cfg_t coca;
} ssl_head_cfg_t;

/* Reference defaults of a head. Kinds: "mlp", "simclr_projector", "mocov2_projector",
 * "mocov3_projector", "mocov3_predictor", "byol_projector", "byol_predictor",
 * "simsiam_projector", "simsiam_predictor", "vicreg_projector", "barlow_projector", "dino",
 * "swav_prototypes", "mae_decoder", "ijepa_predictor", "clip_text", "clip_image_proj",
 * "coca_decoder". Unknown kind: SSL_ERR_CONFIG naming the nearest. Encoder-derived fields are left 0. */
SSL_API int ssl_head_preset(const char *kind, ssl_head_cfg_t *cfg);
/* Preset, then the keys of a strict JSON object over it (an unknown key is an error that
 * suggests the nearest valid key; values are range-checked; messages name `source` and the
 * key). See docs/heads.md for the keys of each kind. */
SSL_API int ssl_head_cfg_from_json(const char *json, size_t len, const char *source,
                                   const char *kind, ssl_head_cfg_t *cfg);
/* Fill the encoder-derived fields: the input width of an MLP (not a predictor's), DINO and
 * CLIP heads; width, patch grid, patch size, channels and cls token of the MAE decoder and the
 * I-JEPA predictor (which need a ViT: SSL_ERR_CONFIG otherwise). SwAV's and predictors' inputs
 * come from the projector: the caller sets them. */
SSL_API int ssl_head_cfg_fit_encoder(ssl_head_cfg_t *cfg, const ssl_encoder_t *e);

#ifdef __cplusplus
}
#endif
#endif /* SSL_HEADS_H */
