/* Internal to the methods layer: the method record (one per method family, in the table of
 * method.c), the state every method has, and the forward pieces the families share.
 *
 * A family file defines one `const ssl_method_def_t` and a struct of its own state that starts
 * with `ssl_method_t base`; method.c allocates def->size bytes, does everything that is the same
 * for all (model keys, encoder, loss sections, target and view checks, sections the family
 * did not read) and calls the record for the rest. docs/methods.md has the steps to add one. */
#ifndef SSL_METHODS_INTERNAL_H
#define SSL_METHODS_INTERNAL_H

#include "core/comm.h"
#include "heads/head_config.h"
#include "losses/loss_config.h"
#include "losses/ranks.h"
#include "method.h"
#include "ssl/heads.h"
#include "ssl/losses.h"

#define SSL_METHOD_MAX_LOSSES 4

typedef struct ssl_method_def ssl_method_def_t;

/* One term of a weighted list of losses (see ssl_method_def_t.term). */
typedef ssl_tensor_t *(*ssl_method_term_fn)(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_batch_t *b,
                                            const ssl_loss_cfg_t *l, ssl_tensor_t *const z[2],
                                            ssl_tensor_t *const p[2]);

struct ssl_method {
    const ssl_method_def_t *def;
    ssl_method_env_t env;
    ssl_loss_cfg_t
        loss[SSL_METHOD_MAX_LOSSES]; /* loss[0] picks the family; more: a weighted list */
    ssl_method_term_fn term[SSL_METHOD_MAX_LOSSES]; /* each loss's family's term (lists only) */
    int n_loss;
    int target;      /* ssl_target_kind_t */
    int eval_target; /* features (kNN, embed, probes) from the target encoder */
    int eval_blocks; /* features: ssl_encoder_readout of the last eval_blocks blocks */
    int n_views, n_global;
    ssl_encoder_t *enc, *tenc; /* tenc: the EMA target's encoder (target "ema" only) */
    const char *enc_weights;   /* model.encoder.weights (in the config document) or NULL */
    unsigned read_sections;    /* bit i: model section k_sections[i] was read (method.c) */
    /* set by the step for the trainer's metrics: the embeddings of two views of the same images
     * (row i of each a positive pair; CLIP: image and text), arena tensors of that step */
    ssl_tensor_t *last_z, *last_z2;
    int64_t epoch_begun; /* the last epoch whose start ran before_epoch (-1: none yet) */
    /* named terms of the last step's loss for the metrics log (the VAE's rec and kl), set by
     * the family's loss; n = 0: none */
    ssl_loss_parts_t parts;
    int readout_read; /* the family took env.readout (method.c: an error if it did not) */
};

/* What create gets besides the method: the config and where its parameters go. */
typedef struct ssl_method_build {
    ssl_cfg_t *root, *model;
    ssl_params_t *online, *target; /* target: the EMA copy's store (filled only with "ema") */
    const ssl_dataset_t *ds;
    uint64_t seed;
    const char *vocab; /* a checkpoint's text vocabulary, or NULL */
    int ema;           /* target.type "ema": build the target's copies too */
} ssl_method_build_t;

struct ssl_method_def {
    const char *name;      /* the family, for docs and messages */
    const int *loss_types; /* the loss types it trains, ended by -1 */
    /* a family that composes weighted lists itself (terms sharing its forward, e.g. DINO + iBOT
     * + KoLeo): the types its lists may hold, ended by -1; it takes every list holding one of
     * its loss_types. NULL: lists are composed from the projector families' `term`. */
    const int *list_types;
    size_t size;           /* of the family's struct, which starts with ssl_method_t */
    /* the target network the loss needs (SSL_TARGET_*), or target_for(loss) when that depends
     * on the loss's settings; ema_optional: the config may add an EMA target though the loss
     * needs none (its keys then come from the EMA branch) */
    int target;
    int (*target_for)(const ssl_loss_cfg_t *l);
    int ema_optional;
    /* a family with a network of its own and no encoder (the diffusion model's U-Net): the
     * model section holding it ("unet"); model.encoder is then an error, m->enc NULL, and the
     * family must have `features`. NULL: the family builds on model.encoder. */
    const char *network;
    int needs_vit;  /* a ViT encoder (token masks, patch targets) */
    int mask_kind;  /* the masks the loader must draw (ssl_mask_kind_t), SSL_MASK_NONE */
    int min_global; /* views of the first group a step compares (0: one view is enough) */
    const char *const *ema_modules; /* online modules the EMA target copies, NULL-ended */
    /* Read the family's model sections (ssl__method_read_head) and build its heads and state
     * after the encoders exist; errors go through the config reader (naming the key). */
    int (*create)(ssl_method_t *m, ssl_method_build_t *b);
    void (*free)(ssl_method_t *m); /* may be NULL */
    /* at the first step of each epoch (global step a multiple of the steps per epoch), once,
     * before before_step: DeepCluster-v2's k-means over its memory bank (may be NULL). A run
     * resumed inside an epoch does not run it again (its results are checkpointed state). */
    int (*before_epoch)(ssl_method_t *m, const ssl_step_pos_t *pos);
    /* one batch of a forward-only pass over an epoch before the first step, no tape (may be
     * NULL: no pass); see ssl__method_observe */
    int (*observe)(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_batch_t *b);
    /* before the forward of a step: prototype normalisation, freezing schedules (may be NULL) */
    int (*before_step)(ssl_method_t *m, ssl_params_t *online, const ssl_step_pos_t *pos);
    /* Several optimizers stepping in turn in each step (a GAN's discriminator, then its
     * generator): n_phases > 1 phases; `loss` is called once per phase (pos->phase) on one tape
     * (what an earlier phase computed stays valid), and after the phase's backward the optimizer
     * steps only the parameters whose names start with one of phase_params(m, phase) (NULL-ended;
     * method.c checks that every trainable parameter is in exactly one phase). 0 or 1: one. */
    int n_phases;
    const char *const *(*phase_params)(const ssl_method_t *m, int phase);
    /* the step's loss graph (sets last_z / last_z2) */
    ssl_tensor_t *(*loss)(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_batch_t *b,
                          const ssl_step_pos_t *pos);
    /* one term of a weighted list: the loss of cfg l from the shared projections z and
     * predictions p of the two views (families that share the projector pipeline; NULL: the
     * family cannot be in a list) */
    ssl_method_term_fn term;
    /* after the optimizer step and the EMA: queues, centers, clamps (may be NULL) */
    int (*after_step)(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_step_pos_t *pos);
    /* CLIP-like methods (zero-shot): NULL for the others */
    ssl_tensor_t *(*image_embed)(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x);
    ssl_tensor_t *(*text_embed)(ssl_method_t *m, ssl_ctx_t *ctx, const char *const *texts,
                                int64_t n, int64_t *n_unknown);
    const char *(*vocab)(const ssl_method_t *m);
    /* captioning methods (CoCa): greedy next-token decoding of images x, eval mode, no tape:
     * (B, context_length) token ids as floats, from <sos> to <eos> then padding; NULL for the
     * others, and for a family member that has no decoder (SSL_ERR_UNSUPPORTED) */
    ssl_tensor_t *(*caption_ids)(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x);
    /* Generative families (NULL for the others). features: what kNN, probes and embed read
     * (eval mode, no tape; NULL: the encoder's pooled features). nll: the sum over images x
     * of a bound on -log p(x) in nats and of its parts (eval mode, no tape; random draws
     * from (seed, index0 + row)). pictures: reconstructions of x (or NULL) and n samples of
     * the model with seed, (n, C, H, W) in [0, 1] (NULL when n is 0: eval.samples). */
    ssl_tensor_t *(*features)(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x);
    int (*nll)(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x, int64_t index0, uint64_t seed,
               double *sum, ssl_loss_parts_t *part_sums);
    int (*pictures)(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x, int64_t n, uint64_t seed,
                    ssl_tensor_t **recon, ssl_tensor_t **samples);
    int stepped_sampler; /* pictures' samples take m->env.sample_steps levels (0: its own) */
    /* Test metrics of the eval split at every epoch's end (NULL: none; the VQ tokenizer's
     * reconstruction error and code perplexity). test_batch: one batch of images x (eval mode,
     * no tape) into the family's running sums, reset first when first is 1; test_result: the
     * named metrics over the images seen since. */
    int (*test_batch)(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x, int first);
    int (*test_result)(ssl_method_t *m, ssl_loss_parts_t *out);
};

/* The families (one file each). */
extern const ssl_method_def_t ssl__method_contrastive, ssl__method_regression,
    ssl__method_redundancy, ssl__method_dino, ssl__method_swav, ssl__method_mae, ssl__method_simmim,
    ssl__method_ijepa, ssl__method_clip, ssl__method_directpred, ssl__method_mocov1,
    ssl__method_deepclusterv2, ssl__method_ibot, ssl__method_data2vec, ssl__method_maskfeat,
    ssl__method_vae, ssl__method_gan, ssl__method_ddpm, ssl__method_vqvae, ssl__method_beit,
    ssl__method_pixelcnn;

/* ---------------------------------------------------------------- the VQ tokenizer (vqvae.c) */

/* The part of the vqvae family that BEiT runs frozen: a ViT's patch tokens -> head.proj (a
 * linear to the code width d), L2-normalised -> nearest rows of head.codebook (k, d),
 * L2-normalised; grid x grid codes per image, row-major over the patches. */
typedef struct ssl__vq_tok {
    ssl_encoder_t *enc;
    ssl_nn_linear_t proj;
    ssl_tensor_t *codebook; /* (k, d) */
    int64_t k, d, grid;
} ssl__vq_tok_t;

/* model.head's codebook_size (512) and code_dim (32) */
int ssl__vq_tok_read(ssl_cfg_t *h, int64_t *codebook_size, int64_t *code_dim);
/* head.proj and head.codebook in p, after the ViT enc */
int ssl__vq_tok_init(ssl__vq_tok_t *t, ssl_encoder_t *enc, ssl_params_t *p, int64_t K,
                     int64_t D, uint64_t seed);
/* the pre-quantisation outputs (B grid^2, d) of images x, L2-normalised */
ssl_tensor_t *ssl__vq_tok_encode(const ssl__vq_tok_t *t, ssl_ctx_t *ctx, ssl_tensor_t *x,
                                 int training);
/* the codebook with its rows L2-normalised (k, d), on the tape when recording */
ssl_tensor_t *ssl__vq_tok_codebook(const ssl__vq_tok_t *t, ssl_ctx_t *ctx);
/* the codes (B grid^2) of z among the rows of that codebook, in the arena; NULL + error */
int32_t *ssl__vq_tok_codes(ssl_ctx_t *ctx, const ssl_tensor_t *z, const ssl_tensor_t *codebook);

/* The pixelcnn family's logits (B, H, W, 256) of images x (B, 1, H, W) in [0, 1], for tests
 * (causality through the whole network); an error for another method. */
ssl_tensor_t *ssl__pixelcnn_logits(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x);
/* How many rows up to and including its own a pixel's logits read; pixelcnn methods only. */
int ssl__pixelcnn_rows(const ssl_method_t *m);
/* The logits (B, 1, W, 256) of row i of x as the sampler makes them: the vertical stacks over
 * the rows above that reach row i, the horizontal ones over row i alone; pixelcnn only. */
ssl_tensor_t *ssl__pixelcnn_row_logits(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x,
                                       int64_t i);

/* ---------------------------------------------------------------- shared pieces (common.c) */

/* A head section ("projector": {"type": "byol_projector", ...}): "type" picks the preset
 * (default def_kind), the other keys override it. Marks the section as read. */
int ssl__method_read_head(ssl_method_t *m, ssl_method_build_t *b, const char *key,
                          const char *def_kind, ssl_head_cfg_t *h);
/* The generative families' view: one view of un-normalised pixels in [0, 1] ("the WHO WHY
 * pixels in [0, 1]" otherwise); size_multiple 4: its size a multiple of 4 (two halvings or
 * doublings), 0: any size. */
int ssl__method_pixel_view(ssl_method_t *m, ssl_method_build_t *b, const char *who,
                           const char *why, int size_multiple);
/* A named term of the step's loss for the metrics log (loss_<name>): v's first value. */
void ssl__method_add_part(ssl_method_t *m, const char *name, const ssl_tensor_t *v);
/* The model sections beside "encoder" (NULL-ended): one a family did not read is an error. */
extern const char *const ssl__method_sections[];
/* A model section the family reads itself (not a head preset): marks it as read. */
ssl_cfg_t ssl__method_section(ssl_method_t *m, ssl_method_build_t *b, const char *key);
/* Fail at the config's key (root section `section`, NULL: the root itself). */
int ssl__method_fail(ssl_method_build_t *b, const char *section, const char *key, const char *fmt,
                     ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* Data-parallel steps (core/comm.h): x (V B, ...) stacks V blocks (views, crops) of this rank's
 * B rows; the result (V N B, ...) stacks each block's rows of all N ranks in rank order, as one
 * process would stack the whole batch's. With the gradient (backward: sum over the ranks, this
 * rank's rows); x itself for one process. A loss over the whole batch then equals one
 * process's. */
ssl_tensor_t *ssl__method_gather_views(ssl_ctx_t *ctx, ssl_tensor_t *x, int n_views);
/* The row of the whole batch where this rank's B rows start (rank x B; 0 for one process):
 * the offset of its own rows among every rank's gathered ones (losses/ranks.h). */
int64_t ssl__method_row0(ssl_ctx_t *ctx, int64_t B);

/* The teacher temperature of a dino or ibot term at the step's fractional epoch. */
float ssl__method_teacher_temp(const ssl_loss_cfg_t *L, const ssl_step_pos_t *pos);
/* DINO's loss of term L between the student's S (V B, K) and the teacher's T (n_global B, K):
 * targets from the center (ssl_loss_dino) or, with "centering": "sinkhorn_knopp", DINOv2's
 * Sinkhorn-Knopp teacher over T (3 iterations, epsilon = the teacher temperature), over the
 * rows of every rank with several (dinov2's all-reduced sums). */
ssl_tensor_t *ssl__method_dino_loss(ssl_ctx_t *ctx, const ssl_loss_cfg_t *L, ssl_tensor_t *S,
                                    ssl_tensor_t *T, int n_global, ssl_tensor_t *center,
                                    const ssl_step_pos_t *pos);
/* DINO's center update after the step: center = m center + (1 - m) mean over the rows of
 * T (N, K), the rows of every rank with several. */
int ssl__method_center_update(ssl_ctx_t *ctx, ssl_tensor_t *center, const ssl_tensor_t *T,
                              float momentum);

/* A learned mask token (1, 1, D) named `name` in the online store, trainable and decayed, drawn
 * from N(0, 0.02) truncated at +-0.02 (SimMIM's and data2vec's); NULL + error on failure. */
ssl_tensor_t *ssl__method_mask_token(ssl_method_build_t *b, const char *name, int64_t dim);

/* View v of the batch (loader-owned, no gradient). */
ssl_tensor_t *ssl__method_view(const ssl_batch_t *b, int v);
/* The encoder's pooled features of x in training mode. */
ssl_tensor_t *ssl__method_pooled(ssl_ctx_t *ctx, const ssl_encoder_t *e, ssl_tensor_t *x);
/* The encoder's pooled features of the first n views as DINO's MultiCropWrapper and SwAV's
 * ResNet.forward make them: each run of consecutive views of one size goes through the encoder
 * as ONE batch. (n B, D), views in order. */
ssl_tensor_t *ssl__method_multicrop_pooled(ssl_ctx_t *ctx, const ssl_encoder_t *e,
                                           const ssl_batch_t *b, int n);

/* The projector pipeline the two-view families share (contrastive, regression, redundancy):
 * z = projector(encoder(view)), p = predictor(z), the target's projections without a tape. */
typedef struct ssl_proj_method {
    ssl_method_t base;
    ssl_mlp_t proj, tproj, pred;
    int has_pred;
    ssl_queue_t queue; /* MoCo v2's negatives */
    int has_queue;
    ssl_tensor_t *pending_keys; /* keys to enqueue after the step */
} ssl_proj_method_t;

/* Read "projector" (preset proj_kind) and, with pred_kind, "predictor"; build them (and the
 * target's projector with an EMA target). *out_dim gets the projection width. */
int ssl__proj_create(ssl_method_t *m, ssl_method_build_t *b, const char *proj_kind,
                     const char *pred_kind, int64_t *out_dim);
/* The weighted sum of the method's loss terms (every term's family has `term`). */
ssl_tensor_t *ssl__proj_loss(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_batch_t *b,
                             const ssl_step_pos_t *pos);
/* after_step of the families with a key queue: the step's pending_keys into the queue. */
int ssl__proj_push_keys(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_step_pos_t *pos);
/* The target's projection of x, no tape. */
ssl_tensor_t *ssl__proj_target_z(ssl_proj_method_t *pm, ssl_ctx_t *ctx, ssl_tensor_t *x);

#endif
