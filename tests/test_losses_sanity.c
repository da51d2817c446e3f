/* Losses: properties that must hold (InfoNCE of identical embeddings, VICReg variance on
 * constant embeddings, Barlow on whitened views, Sinkhorn marginals, DINO center EMA, CLIP on
 * aligned pairs), central-difference gradient checks of every loss, and error messages. */
#include "testutil.h"

#include <math.h>
#include <string.h>

#include "ssl/losses.h"

/* ---------------------------------------------------------------- sanity */

static void test_ntxent_identical(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    const int64_t n = 5, d = 3;
    /* every embedding the same: all similarities 1, softmax uniform over the 2N - 1 others */
    ssl_tensor_t *z1 = ssl_tensor_fill(ctx, 2, (int64_t[]){n, d}, 0.7f);
    ssl_tensor_t *z2 = ssl_tensor_fill(ctx, 2, (int64_t[]){n, d}, 0.7f);
    ssl_tensor_t *l = ssl_loss_ntxent(ctx, z1, z2, 1.0f);
    assert_non_null(l);
    assert_float_equal(l->data[0], logf(2.0f * n - 1.0f), 1e-5);
    /* MoCo v3 on identical keys and queries: CE over N equal logits, times 2 tau, twice */
    l = ssl_loss_moco_v3(ctx, z1, z2, z1, z2, 1.0f);
    assert_float_equal(l->data[0], 2.0f * 2.0f * logf((float)n), 1e-5);
    ssl_ctx_free(ctx);
}

static void test_vicreg_constant(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *z = ssl_tensor_fill(ctx, 2, (int64_t[]){6, 4}, 0.3f);
    ssl_loss_parts_t parts;
    ssl_tensor_t *l = ssl_loss_vicreg(ctx, z, z, NULL, &parts);
    assert_non_null(l);
    assert_string_equal(parts.name[1], "variance");
    /* std = sqrt(0 + 1e-4) = 0.01 in every dimension of both branches: hinge 1 - 0.01 */
    assert_true(parts.value[1] > 0.0f);
    assert_float_equal(parts.value[1], 0.99f, 1e-5);
    assert_float_equal(parts.value[0], 0.0f, 0.0f);   /* invariance */
    assert_float_equal(parts.value[2], 0.0f, 1e-12f); /* covariance */
    assert_float_equal(l->data[0], 25.0f * 0.99f, 1e-4);
    ssl_ctx_free(ctx);
}

/* Sylvester Hadamard matrix entry: (-1)^popcount(i & j). */
static float hadamard(int i, int j)
{
    return __builtin_popcount((unsigned)(i & j)) & 1 ? -1.0f : 1.0f;
}

static void test_barlow_whitened(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    /* columns 1..D of an 8x8 Hadamard matrix: zero mean, unit (biased) variance, orthogonal,
     * so the standardised cross-correlation of identical views is the identity */
    const int n = 8, d = 5;
    ssl_tensor_t *z = ssl_tensor_new(ctx, 2, (int64_t[]){n, d});
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++)
            z->data[i * d + j] = 2.5f * hadamard(i, j + 1) + 1.0f; /* any affine map */
    ssl_loss_parts_t parts;
    ssl_tensor_t *l = ssl_loss_barlow(ctx, z, z, 0.0051f, 1.0f, &parts);
    assert_non_null(l);
    /* BN's eps leaves c_ii = var / (var + 1e-5): (1 - c_ii)^2 ~ 1.6e-12 per dimension */
    assert_true(fabsf(l->data[0]) < 1e-8f);
    assert_true(fabsf(parts.value[1]) < 1e-6f);
    /* and a perturbed view is not 0 */
    ssl_tensor_t *z2 = tu_rand(ctx, 2, (int64_t[]){n, d}, 3, -1, 1, 0);
    l = ssl_loss_barlow(ctx, z, z2, 0.0051f, 1.0f, NULL);
    assert_true(l->data[0] > 0.1f);
    ssl_ctx_free(ctx);
}

static void test_sinkhorn_marginals(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    const int64_t b = 12, k = 4;
    ssl_tensor_t *s = tu_rand(ctx, 2, (int64_t[]){b, k}, 5, -1, 1, 0);
    /* SwAV's setting (epsilon 0.05, 3 iterations), then a softer one run to convergence */
    for (int iters = 3; iters <= 300; iters += 297) {
        ssl_tensor_t *q = ssl_sinkhorn(ctx, s, iters == 3 ? 0.05f : 0.5f, iters);
        assert_non_null(q);
        /* the last step normalises samples: every row sums to 1 exactly */
        for (int64_t i = 0; i < b; i++) {
            double r = 0;
            for (int64_t j = 0; j < k; j++) {
                assert_true(q->data[i * k + j] >= 0.0f);
                r += q->data[i * k + j];
            }
            assert_float_equal(r, 1.0, 1e-6);
        }
        /* every prototype gets B / K samples: exact in the limit */
        double tol = iters == 3 ? 0.6 : 1e-4;
        for (int64_t j = 0; j < k; j++) {
            double c = 0;
            for (int64_t i = 0; i < b; i++)
                c += q->data[i * k + j];
            if (fabs(c - (double)b / k) > tol * (double)b / k)
                fail_msg("iters %d: prototype %lld sums to %g, want %g", iters, (long long)j, c,
                         (double)b / k);
        }
    }
    /* a large scale / epsilon does not overflow (global max subtracted) */
    ssl_tensor_t *big = ssl_scale(ctx, s, 100.0f, 0.0f);
    ssl_tensor_t *q = ssl_sinkhorn(ctx, big, 0.05f, 3);
    assert_non_null(q);
    for (int64_t i = 0; i < q->numel; i++)
        assert_true(isfinite(q->data[i]));
    ssl_ctx_free(ctx);
}

static void test_dino_center(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_params_t *p = ssl_params_create();
    ssl_tensor_t *c = NULL;
    assert_int_equal(ssl_dino_center_init(&c, p, "loss", 3), SSL_OK);
    assert_non_null(ssl_params_get(p, "loss.center"));
    assert_int_equal(c->ndim, 2);
    c->data[0] = 1.0f, c->data[1] = -2.0f, c->data[2] = 0.5f;
    float before[3];
    memcpy(before, c->data, sizeof before);
    /* teacher rows with mean (2, 0, -1) */
    float t[] = {1, 1, -1, 3, -1, -1, 2, 0, -1};
    ssl_tensor_t *teacher = ssl_tensor_from(ctx, 2, (int64_t[]){3, 3}, t);
    const float mean[3] = {2, 0, -1}, m = 0.9f;
    assert_int_equal(ssl_dino_center_update(c, teacher, m), SSL_OK);
    for (int j = 0; j < 3; j++) /* moved toward the mean by (1 - m) of the gap */
        assert_float_equal(c->data[j] - before[j], (1 - m) * (mean[j] - before[j]), 1e-6);
    /* the precomputed-mean form does the same */
    float c2[3];
    memcpy(c2, c->data, sizeof c2);
    assert_int_equal(ssl_dino_center_update_mean(c, mean, m), SSL_OK);
    for (int j = 0; j < 3; j++)
        assert_float_equal(c->data[j], m * c2[j] + (1 - m) * mean[j], 1e-6);
    /* momentum 0 jumps to the mean, 1 stays */
    assert_int_equal(ssl_dino_center_update(c, teacher, 0.0f), SSL_OK);
    for (int j = 0; j < 3; j++)
        assert_float_equal(c->data[j], mean[j], 1e-6);
    assert_int_equal(ssl_dino_center_update(c, teacher, 1.5f), SSL_ERR_INVALID);
    ssl_params_free(p);
    ssl_ctx_free(ctx);
}

static void test_dino_teacher_temp(void **state)
{
    (void)state;
    assert_float_equal(ssl_dino_teacher_temp(0.04f, 0.07f, 30, 0), 0.04f, 1e-7);
    assert_float_equal(ssl_dino_teacher_temp(0.04f, 0.07f, 30, 29), 0.07f, 1e-7);
    assert_float_equal(ssl_dino_teacher_temp(0.04f, 0.07f, 30, 100), 0.07f, 1e-7);
    assert_float_equal(ssl_dino_teacher_temp(0.04f, 0.07f, 30, 14.5), 0.04f + 0.03f * 0.5f, 1e-7);
    assert_float_equal(ssl_dino_teacher_temp(0.04f, 0.07f, 0, 0), 0.07f, 0);
    assert_float_equal(ssl_dino_teacher_temp(0.04f, 0.07f, 1, 0.5), 0.04f, 0);
}

static void test_dino_uniform_teacher(void **state)
{
    (void)state;
    /* A constant teacher gives uniform targets: the loss is the student's mean CE to uniform,
     * log K for a constant student. */
    ssl_ctx_t *ctx = tu_ctx();
    const int64_t b = 2, k = 6;
    ssl_tensor_t *s = ssl_tensor_fill(ctx, 2, (int64_t[]){4 * b, k}, 0.3f);
    ssl_tensor_t *t = ssl_tensor_fill(ctx, 2, (int64_t[]){2 * b, k}, -1.0f);
    ssl_tensor_t *l = ssl_loss_dino(ctx, s, t, 2, NULL, 0.1f, 0.04f);
    assert_non_null(l);
    assert_float_equal(l->data[0], logf((float)k), 1e-5);
    ssl_ctx_free(ctx);
}

static void test_clip_aligned(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    const int64_t n = 4, d = 6;
    ssl_tensor_t *x = ssl_tensor_zeros(ctx, 2, (int64_t[]){n, d});
    for (int64_t i = 0; i < n; i++)
        x->data[i * d + i] = 1.0f + (float)i; /* orthogonal directions, any norm */
    ssl_tensor_t *ls = ssl_tensor_fill(ctx, 0, NULL, logf(100.0f));
    ssl_tensor_t *l = ssl_loss_clip(ctx, x, x, ls, logf(100.0f));
    assert_non_null(l);
    assert_true(l->data[0] >= 0.0f && l->data[0] < 1e-6f);
    /* a parameter above the clamp is clamped to log 100 */
    ls->data[0] = 9.0f;
    assert_true(ssl_loss_clip(ctx, x, x, ls, logf(100.0f))->data[0] < 1e-6f);
    /* and at scale 1 the loss is clearly positive */
    ls->data[0] = 0.0f;
    assert_true(ssl_loss_clip(ctx, x, x, ls, logf(100.0f))->data[0] > 0.5f);
    /* SigLIP on aligned pairs, scale 100 and bias -50: every pair's margin is 50 */
    ssl_tensor_t *t = ssl_tensor_fill(ctx, 0, NULL, logf(100.0f));
    ssl_tensor_t *bias = ssl_tensor_fill(ctx, 0, NULL, -50.0f);
    l = ssl_loss_siglip(ctx, x, x, t, bias);
    assert_non_null(l);
    assert_true(l->data[0] < 1e-6f * (float)(n * n));
    ssl_ctx_free(ctx);
}

/* The logit scale at a bound of its clamp still gets its gradient (torch.clamp's, inclusive),
 * so a parameter the trainer holds at log 100 can come down; strictly outside it gets none. */
static void test_clip_scale_at_bounds(void **state)
{
    (void)state;
    const int64_t n = 3, d = 2;
    const float max = logf(100.0f), at[4] = {0.0f, max, max + 0.5f, -0.5f};
    for (int k = 0; k < 4; k++) {
        ssl_tensor_t *x, *y, *ls, *l;
        ssl_ctx_t *ctx = tu_ctx();
        x = ssl_tensor_zeros(ctx, 2, (int64_t[]){n, d});
        y = ssl_tensor_zeros(ctx, 2, (int64_t[]){n, d});
        for (int64_t i = 0; i < n * d; i++) { /* not aligned: the loss depends on the scale */
            x->data[i] = (float)((i * 7) % 5) - 2.0f;
            y->data[i] = (float)((i * 3) % 4) - 1.5f;
        }
        ls = ssl_tensor_fill(ctx, 0, NULL, at[k]);
        ls->requires_grad = 1;
        l = ssl_loss_clip(ctx, x, y, ls, max);
        assert_non_null(l);
        assert_int_equal(ssl_backward(ctx, l), SSL_OK);
        if (k < 2)
            assert_true(ls->grad && fabsf(ls->grad[0]) > 1e-3f);
        else
            assert_true(!ls->grad || ls->grad[0] == 0.0f);
        ssl_ctx_free(ctx);
    }
}

static void test_siglip_extreme(void **state)
{
    (void)state;
    /* log_sigmoid keeps the loss finite where log(sigmoid) would give -inf: the positives at
     * logit -400 cost 400 each. */
    ssl_ctx_t *ctx = tu_ctx();
    const int64_t n = 3;
    ssl_tensor_t *x = ssl_tensor_zeros(ctx, 2, (int64_t[]){n, 2});
    for (int64_t i = 0; i < n; i++)
        x->data[i * 2] = 1.0f;
    ssl_tensor_t *t = ssl_tensor_fill(ctx, 0, NULL, 0.0f);
    ssl_tensor_t *b = ssl_tensor_fill(ctx, 0, NULL, -401.0f);
    t->requires_grad = b->requires_grad = 1;
    ssl_tensor_t *l = ssl_loss_siglip(ctx, x, x, t, b); /* all logits 1 - 401 = -400 */
    assert_non_null(l);
    assert_float_equal(l->data[0], 400.0f * n / n, 1e-2);
    assert_int_equal(ssl_backward(ctx, l), SSL_OK);
    assert_true(isfinite(b->grad[0]) && b->grad[0] < 0.0f);
    ssl_ctx_free(ctx);
}

static void test_queue(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_params_t *p = ssl_params_create();
    ssl_queue_t q;
    assert_int_equal(ssl_queue_init(&q, p, "moco", 5, 3, 1, 7), SSL_OK);
    assert_non_null(ssl_params_get(p, "moco.queue_keys"));
    assert_non_null(ssl_params_get(p, "moco.queue_ptr"));
    assert_int_equal(ssl_queue_count(&q), 5); /* random init counts as full */
    for (int r = 0; r < 5; r++) {             /* unit rows */
        double s = 0;
        for (int j = 0; j < 3; j++)
            s += (double)q.keys->data[r * 3 + j] * q.keys->data[r * 3 + j];
        assert_float_equal(s, 1.0, 1e-6);
    }
    /* push 3 keys: rows 0..2, normalised; then 4 more wrap around to rows 3, 4, 0, 1 */
    float k[7 * 3];
    for (int i = 0; i < 7 * 3; i++)
        k[i] = (float)(i + 1);
    ssl_tensor_t *a = ssl_tensor_from(ctx, 2, (int64_t[]){3, 3}, k);
    assert_int_equal(ssl_queue_push(&q, a), SSL_OK);
    assert_float_equal(q.ptr->data[0], 3.0f, 0);
    float n0 = sqrtf(1 + 4 + 9);
    assert_float_equal(q.keys->data[0], 1.0f / n0, 1e-7);
    ssl_tensor_t *b = ssl_tensor_from(ctx, 2, (int64_t[]){4, 3}, k + 9);
    assert_int_equal(ssl_queue_push(&q, b), SSL_OK);
    assert_float_equal(q.ptr->data[0], 2.0f, 0);
    float n5 = sqrtf(16 * 16 + 17 * 17 + 18 * 18); /* key 5 (values 16..18) went to row 0 */
    assert_float_equal(q.keys->data[0], 16.0f / n5, 1e-7);
    /* more keys than rows: only the last 5 survive, in ring order from the pointer */
    ssl_tensor_t *c = ssl_tensor_from(ctx, 2, (int64_t[]){7, 3}, k);
    assert_int_equal(ssl_queue_push(&q, c), SSL_OK);
    assert_float_equal(q.ptr->data[0], (float)((2 + 7) % 5), 0);
    /* key 6 (19..21) is the newest: it sits just before the pointer (row 3) */
    float n6 = sqrtf(19 * 19 + 20 * 20 + 21 * 21);
    assert_float_equal(q.keys->data[3 * 3], 19.0f / n6, 1e-7);
    /* an empty (SwAV) queue counts up to its size */
    ssl_queue_t e;
    assert_int_equal(ssl_queue_init(&e, p, "swav.queue0", 4, 3, 0, 7), SSL_OK);
    assert_int_equal(ssl_queue_count(&e), 0);
    assert_int_equal(ssl_queue_push(&e, a), SSL_OK);
    assert_int_equal(ssl_queue_count(&e), 3);
    assert_int_equal(ssl_queue_push(&e, a), SSL_OK);
    assert_int_equal(ssl_queue_count(&e), 4);
    /* wrong width */
    ssl_tensor_t *w = ssl_tensor_zeros(ctx, 2, (int64_t[]){2, 4});
    assert_int_equal(ssl_queue_push(&e, w), SSL_ERR_SHAPE);
    assert_non_null(strstr(ssl_last_error(), "(2, 4)"));
    ssl_params_free(p);
    ssl_ctx_free(ctx);
}

/* ---------------------------------------------------------------- gradient checks */

enum {
    G_NTXENT,
    G_MOCO,
    G_MOCO_V3,
    G_BYOL,
    G_SIMSIAM,
    G_DINO,
    G_SWAV,
    G_BARLOW,
    G_VICREG,
    G_MAE,
    G_MAE_IDX,
    G_SIMMIM,
    G_IJEPA,
    G_CLIP,
    G_SIGLIP,
    G_PATCHIFY,
    G_IBOT,
    G_KOLEO,
    G_DATA2VEC,
    G_VAE
};

typedef struct gcase {
    int kind;
    ssl_tensor_t *c[4]; /* constants: targets, keys, queue, center, codes, mask */
    const int32_t *idx[2];
    int64_t k[2];
    int flag;
} gcase_t;

static ssl_tensor_t *gbuild(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    gcase_t *g = user;
    switch (g->kind) {
    case G_NTXENT:
        return ssl_loss_ntxent(ctx, in[0], in[1], 0.5f);
    case G_MOCO:
        return ssl_loss_moco(ctx, in[0], g->c[0], g->c[1], 0.2f);
    case G_MOCO_V3:
        return ssl_loss_moco_v3(ctx, in[0], in[1], g->c[0], g->c[1], 0.3f);
    case G_BYOL:
        return ssl_loss_byol(ctx, in[0], in[1], g->c[0], g->c[1]);
    case G_SIMSIAM:
        return ssl_loss_simsiam(ctx, in[0], in[1], g->c[0], g->c[1]);
    case G_DINO:
        return ssl_loss_dino(ctx, in[0], g->c[0], 2, g->c[1], 0.1f, 0.05f);
    case G_SWAV: {
        static const int views[2] = {0, 2};
        return ssl_loss_swav_codes(ctx, in[0], 3, views, 2, g->c, 0.1f);
    }
    case G_BARLOW:
        return ssl_loss_barlow(ctx, in[0], in[1], 0.0051f, 0.5f, NULL);
    case G_VICREG:
        return ssl_loss_vicreg(ctx, in[0], in[1], NULL, NULL);
    case G_MAE:
        return ssl_loss_mae(ctx, in[0], g->c[0], g->c[1], g->flag);
    case G_MAE_IDX:
        return ssl_loss_mae_idx(ctx, in[0], g->c[0], g->idx[0], g->k[0], g->flag);
    case G_SIMMIM:
        return ssl_loss_simmim(ctx, in[0], g->c[0], g->c[1]);
    case G_IJEPA:
        return ssl_loss_ijepa(ctx, in, g->c[0], g->idx, g->k, 2, g->flag, 1.0f);
    case G_CLIP:
        return ssl_loss_clip(ctx, in[0], in[1], in[2], logf(100.0f));
    case G_SIGLIP:
        return ssl_loss_siglip(ctx, in[0], in[1], in[2], in[3]);
    case G_KOLEO:
        return ssl_loss_koleo(ctx, in[0]);
    case G_DATA2VEC: {
        ssl_data2vec_opts_t o = {1, 0, 1, 1, g->flag, 0.5f};
        return ssl_loss_data2vec(ctx, in[0], g->c[0], g->idx[0], g->k[0], &o);
    }
    case G_VAE: /* logits, mu, logvar; the images in c[0] */
        return ssl_loss_vae(ctx, in[0], g->c[0], in[1], in[2], 2.5f, NULL);
    case G_IBOT: /* counts in idx[0], groups in k[0] */
        return ssl_loss_ibot_patch(ctx, in[0], g->c[0], g->idx[0], g->k[0], g->c[1], 0.1f, 0.05f);
    default:
        return ssl_patchify(ctx, in[0], 2);
    }
}

/* eps 1e-3, except for VICReg: its loss (~25) rounds in float32 to ~2e-6, i.e. ~1e-3 of
 * noise on a central difference over 2e-3; its terms are smooth away from the hinge, so a
 * larger step costs nothing. */
static void gcheck(ssl_ctx_t *ctx, gcase_t *g, ssl_tensor_t **in, int n, double rtol)
{
    tu_gradcheck_opts_t o = {g->kind == G_VICREG ? 1e-2 : 1e-3, 1e-4, rtol, 0};
    int bad = tu_gradcheck(ctx, gbuild, g, in, n, &o);
    if (bad)
        fail_msg("gradient check of case %d failed (%d elements)", g->kind, bad);
}

#define R2(r, c, seed, g) tu_rand(ctx, 2, (int64_t[]){(r), (c)}, (seed), -1, 1, (g))

static void test_gradcheck_contrastive(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    gcase_t g = {G_NTXENT, {0}, {0}, {0}, 0};
    ssl_tensor_t *in[4] = {R2(4, 5, 1, 1), R2(4, 5, 2, 1)};
    gcheck(ctx, &g, in, 2, 1e-2);
    g = (gcase_t){
        G_MOCO, {R2(4, 5, 3, 0), ssl_l2_normalize(ctx, R2(6, 5, 4, 0), -1, 1e-12f)}, {0}, {0}, 0};
    in[0] = R2(4, 5, 5, 1);
    gcheck(ctx, &g, in, 1, 1e-2);
    g = (gcase_t){G_MOCO_V3, {R2(4, 5, 6, 0), R2(4, 5, 7, 0)}, {0}, {0}, 0};
    in[0] = R2(4, 5, 8, 1), in[1] = R2(4, 5, 9, 1);
    gcheck(ctx, &g, in, 2, 1e-2);
    for (int kind = G_BYOL; kind <= G_SIMSIAM; kind++) {
        g = (gcase_t){kind, {R2(4, 5, 10, 0), R2(4, 5, 11, 0)}, {0}, {0}, 0};
        in[0] = R2(4, 5, 12, 1), in[1] = R2(4, 5, 13, 1);
        gcheck(ctx, &g, in, 2, 1e-2);
    }
    ssl_ctx_free(ctx);
}

static void test_gradcheck_distill(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    /* DINO: 2 global + 2 local views of a batch of 3, K = 5 */
    gcase_t g = {
        G_DINO, {tu_rand(ctx, 2, (int64_t[]){6, 5}, 20, -2, 2, 0), R2(1, 5, 21, 0)}, {0}, {0}, 0};
    ssl_tensor_t *in[4] = {tu_rand(ctx, 2, (int64_t[]){12, 5}, 22, -0.5f, 0.5f, 1)};
    gcheck(ctx, &g, in, 1, 1e-2);
    /* SwAV swapped prediction with fixed codes: 3 views of 4, K = 5, views 0 and 2 assigned */
    ssl_tensor_t *s = R2(12, 5, 23, 1);
    ssl_tensor_t *c0 = ssl_sinkhorn(ctx, ssl_slice(ctx, s, 0, 0, 4), 0.05f, 3);
    ssl_tensor_t *c2 = ssl_sinkhorn(ctx, ssl_slice(ctx, s, 0, 8, 4), 0.05f, 3);
    g = (gcase_t){G_SWAV, {c0, c2}, {0}, {0}, 0};
    in[0] = s;
    gcheck(ctx, &g, in, 1, 1e-2);
    /* iBOT's patch term: 7 masked tokens in 4 groups (2 views of 2), one group empty */
    static const int32_t counts[4] = {3, 0, 1, 3};
    g = (gcase_t){G_IBOT,
                  {tu_rand(ctx, 2, (int64_t[]){7, 5}, 24, -2, 2, 0), R2(1, 5, 25, 0)},
                  {counts},
                  {4},
                  0};
    in[0] = tu_rand(ctx, 2, (int64_t[]){7, 5}, 26, -0.5f, 0.5f, 1);
    gcheck(ctx, &g, in, 1, 1e-2);
    /* KoLeo: 6 rows of 4 (the neighbours, not differentiated, stay put under the 1e-3 steps) */
    g = (gcase_t){G_KOLEO, {0}, {0}, {0}, 0};
    in[0] = R2(6, 4, 27, 1);
    gcheck(ctx, &g, in, 1, 1e-2);
    ssl_ctx_free(ctx);
}

static void test_gradcheck_redundancy(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    gcase_t g = {G_BARLOW, {0}, {0}, {0}, 0};
    ssl_tensor_t *in[4] = {R2(6, 4, 30, 1), R2(6, 4, 31, 1)};
    gcheck(ctx, &g, in, 2, 2e-2);
    in[0] = R2(3, 7, 34, 1), in[1] = R2(3, 7, 35, 1); /* N < D: the Gram form */
    gcheck(ctx, &g, in, 2, 2e-2);
    /* VICReg: scale two columns so their std is above gamma = 1 and others below, away from
     * the hinge's kink */
    g.kind = G_VICREG;
    in[0] = R2(6, 4, 32, 1), in[1] = R2(6, 4, 33, 1);
    for (int i = 0; i < 6; i++) {
        in[0]->data[i * 4] *= 4.0f;
        in[1]->data[i * 4 + 1] *= 4.0f;
    }
    gcheck(ctx, &g, in, 2, 2e-2);
    in[0] = R2(4, 7, 36, 1), in[1] = R2(4, 7, 37, 1); /* N < D */
    for (int i = 0; i < 4; i++) {
        in[0]->data[i * 7 + 2] *= 4.0f;
        in[1]->data[i * 7 + 5] *= 4.0f;
    }
    gcheck(ctx, &g, in, 2, 2e-2);
    ssl_ctx_free(ctx);
}

static void test_gradcheck_masked(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *tgt = tu_rand(ctx, 3, (int64_t[]){2, 4, 6}, 40, -1, 1, 0);
    ssl_tensor_t *mask = ssl_tensor_zeros(ctx, 2, (int64_t[]){2, 4});
    mask->data[1] = mask->data[2] = mask->data[4] = 1;
    static const int32_t idx[4] = {1, 3, 0, 2};
    for (int norm = 0; norm < 2; norm++) {
        gcase_t g = {G_MAE, {tgt, mask}, {0}, {0}, norm};
        ssl_tensor_t *in[1] = {tu_rand(ctx, 3, (int64_t[]){2, 4, 6}, 41, -1, 1, 1)};
        gcheck(ctx, &g, in, 1, 1e-2);
        g = (gcase_t){G_MAE_IDX, {tgt}, {idx}, {2}, norm};
        gcheck(ctx, &g, in, 1, 1e-2);
    }
    /* SimMIM: |pred - image| kept away from 0 */
    ssl_tensor_t *img = tu_rand(ctx, 4, (int64_t[]){2, 2, 4, 4}, 42, -1, 1, 0);
    ssl_tensor_t *pred = tu_rand_away0(ctx, 4, (int64_t[]){2, 2, 4, 4}, 43, -1, 1, 0.05f, 1);
    for (int64_t i = 0; i < pred->numel; i++)
        pred->data[i] += img->data[i];
    ssl_tensor_t *m = ssl_tensor_zeros(ctx, 3, (int64_t[]){2, 2, 2});
    m->data[0] = m->data[3] = m->data[5] = 1;
    gcase_t g = {G_SIMMIM, {img, m}, {0}, {0}, 0};
    gcheck(ctx, &g, &pred, 1, 1e-2);
    /* patchify's gradient is the inverse permutation */
    g.kind = G_PATCHIFY;
    ssl_tensor_t *x = tu_rand(ctx, 4, (int64_t[]){2, 3, 4, 6}, 44, -1, 1, 1);
    gcheck(ctx, &g, &x, 1, 1e-2);
    /* I-JEPA, both criteria */
    static const int32_t i0[6] = {0, 2, 4, 1, 3, 4}, i1[4] = {5, 1, 0, 2};
    ssl_tensor_t *t = tu_rand(ctx, 3, (int64_t[]){2, 6, 4}, 45, -2, 2, 0);
    for (int kind = 0; kind < 2; kind++) {
        gcase_t gi = {G_IJEPA, {t}, {i0, i1}, {3, 2}, kind};
        ssl_tensor_t *in[2] = {tu_rand(ctx, 3, (int64_t[]){2, 3, 4}, 46, -2, 2, 1),
                               tu_rand(ctx, 3, (int64_t[]){2, 2, 4}, 47, -2, 2, 1)};
        gcheck(ctx, &gi, in, 2, 1e-2);
    }
    /* data2vec, both criteria: 3 of 6 tokens of the targets built from 2 blocks */
    ssl_tensor_t *blocks[2] = {tu_rand(ctx, 3, (int64_t[]){2, 6, 4}, 48, -2, 2, 0),
                               tu_rand(ctx, 3, (int64_t[]){2, 6, 4}, 49, -2, 2, 0)};
    ssl_data2vec_opts_t o = {2, 1, 1, 1, SSL_REGRESS_SMOOTH_L1, 0.5f};
    ssl_tensor_t *tg = ssl_loss_data2vec_targets(ctx, blocks, 2, &o);
    for (int kind = 0; kind < 2; kind++) {
        gcase_t gd = {G_DATA2VEC, {tg}, {i0}, {3}, kind};
        ssl_tensor_t *in = tu_rand(ctx, 3, (int64_t[]){2, 3, 4}, 50, -2, 2, 1);
        gcheck(ctx, &gd, &in, 1, 1e-2);
    }
    ssl_ctx_free(ctx);
}

/* The VAE's negative ELBO (beta 2.5): logits, mu and logvar against central differences. */
static void test_gradcheck_vae(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *x = tu_rand(ctx, 4, (int64_t[]){3, 1, 4, 5}, 60, 0, 1, 0);
    x->data[0] = 0.0f;
    x->data[1] = 1.0f;
    gcase_t g = {G_VAE, {x}, {0}, {0}, 0};
    ssl_tensor_t *in[3] = {tu_rand(ctx, 4, (int64_t[]){3, 1, 4, 5}, 61, -4, 4, 1),
                           R2(3, 6, 62, 1), tu_rand(ctx, 2, (int64_t[]){3, 6}, 63, -2, 1, 1)};
    gcheck(ctx, &g, in, 3, 1e-2);
    ssl_ctx_free(ctx);
}

static void test_gradcheck_image_text(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    gcase_t g = {G_CLIP, {0}, {0}, {0}, 0};
    ssl_tensor_t *in[4] = {R2(4, 5, 50, 1), R2(4, 5, 51, 1), ssl_tensor_fill(ctx, 0, NULL, 1.5f),
                           ssl_tensor_fill(ctx, 0, NULL, -2.0f)};
    in[2]->requires_grad = in[3]->requires_grad = 1;
    gcheck(ctx, &g, in, 3, 1e-2);
    g.kind = G_SIGLIP;
    gcheck(ctx, &g, in, 4, 1e-2);
    ssl_ctx_free(ctx);
}

/* ---------------------------------------------------------------- errors */

static void test_errors(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *a = R2(4, 5, 1, 1), *b = R2(4, 6, 2, 1), *c = R2(3, 5, 3, 0);
    tu_assert_error(ssl_loss_ntxent(ctx, a, b, 0.2f), SSL_ERR_SHAPE, "ntxent", "(4, 5)", "(4, 6)",
                    NULL);
    tu_assert_error(ssl_loss_ntxent(ctx, a, a, 0.0f), SSL_ERR_INVALID, "temperature", NULL);
    tu_assert_error(ssl_loss_moco(ctx, a, a, b, 0.2f), SSL_ERR_SHAPE, "queue", "(4, 6)", NULL);
    tu_assert_error(ssl_loss_byol(ctx, a, a, a, c), SSL_ERR_SHAPE, "byol", "(3, 5)", NULL);
    tu_assert_error(ssl_loss_vicreg(ctx, R2(1, 5, 4, 0), R2(1, 5, 5, 0), NULL, NULL), SSL_ERR_SHAPE,
                    "vicreg", "N >= 2", NULL);
    /* DINO: the student must stack views of the teacher's batch */
    ssl_tensor_t *st = R2(7, 5, 6, 1), *te = R2(4, 5, 7, 0);
    tu_assert_error(ssl_loss_dino(ctx, st, te, 2, NULL, 0.1f, 0.04f), SSL_ERR_SHAPE, "dino",
                    "(7, 5)", "(4, 5)", NULL);
    tu_assert_error(ssl_loss_dino(ctx, R2(8, 5, 6, 1), te, 2, R2(1, 4, 8, 0), 0.1f, 0.04f),
                    SSL_ERR_SHAPE, "center", "(1, 4)", NULL);
    /* SwAV */
    static const int views[2] = {0, 3};
    tu_assert_error(ssl_loss_swav(ctx, R2(9, 4, 9, 1), 3, views, 2, NULL, 0.1f, 0.05f, 3),
                    SSL_ERR_INVALID, "assigned view 3", NULL);
    tu_assert_error(ssl_loss_swav(ctx, R2(10, 4, 9, 1), 3, views, 1, NULL, 0.1f, 0.05f, 3),
                    SSL_ERR_SHAPE, "(10, 4)", "n_views = 3", NULL);
    /* MAE mask values and counts */
    ssl_tensor_t *p = tu_rand(ctx, 3, (int64_t[]){2, 4, 6}, 10, -1, 1, 1);
    ssl_tensor_t *m = ssl_tensor_zeros(ctx, 2, (int64_t[]){2, 4});
    tu_assert_error(ssl_loss_mae(ctx, p, p, m, 0), SSL_ERR_INVALID, "no masked patch", NULL);
    m->data[3] = 0.5f;
    tu_assert_error(ssl_loss_mae(ctx, p, p, m, 0), SSL_ERR_INVALID, "not 0 or 1", NULL);
    tu_assert_error(ssl_loss_mae(ctx, p, p, R2(2, 3, 11, 0), 0), SSL_ERR_SHAPE, "mask", "(2, 3)",
                    NULL);
    /* SimMIM mask grid must divide the image */
    ssl_tensor_t *im = tu_rand(ctx, 4, (int64_t[]){1, 3, 6, 6}, 12, -1, 1, 1);
    ssl_tensor_t *mm = ssl_tensor_zeros(ctx, 3, (int64_t[]){1, 4, 4});
    tu_assert_error(ssl_loss_simmim(ctx, im, im, mm), SSL_ERR_SHAPE, "simmim", "(1, 4, 4)", NULL);
    tu_assert_error(ssl_patchify(ctx, im, 4), SSL_ERR_SHAPE, "patchify", "(1, 3, 6, 6)", NULL);
    /* CLIP scale must be a scalar */
    tu_assert_error(ssl_loss_clip(ctx, a, a, a, 4.6f), SSL_ERR_SHAPE, "logit_scale", NULL);
    /* VAE: images outside [0, 1] (a normalised view), shapes, beta */
    ssl_tensor_t *lg = tu_rand(ctx, 4, (int64_t[]){2, 1, 3, 3}, 13, -1, 1, 1);
    ssl_tensor_t *px = tu_rand(ctx, 4, (int64_t[]){2, 1, 3, 3}, 14, 0, 1, 0);
    ssl_tensor_t *mu = R2(2, 4, 15, 1), *lv = R2(2, 4, 16, 1);
    assert_non_null(ssl_loss_vae(ctx, lg, px, mu, lv, 1.0f, NULL));
    px->data[5] = -0.2f;
    tu_assert_error(ssl_loss_vae(ctx, lg, px, mu, lv, 1.0f, NULL), SSL_ERR_INVALID, "vae",
                    "[0, 1]", "element 5", NULL);
    px->data[5] = 0.5f;
    tu_assert_error(ssl_loss_vae(ctx, lg, R2(2, 9, 17, 0), mu, lv, 1.0f, NULL), SSL_ERR_SHAPE,
                    "vae", "(2, 1, 3, 3)", "(2, 9)", NULL);
    tu_assert_error(ssl_loss_vae(ctx, lg, px, mu, R2(2, 3, 18, 1), 1.0f, NULL), SSL_ERR_SHAPE,
                    "(2, 4)", "(2, 3)", NULL);
    tu_assert_error(ssl_loss_vae(ctx, lg, px, R2(3, 4, 19, 1), R2(3, 4, 20, 1), 1.0f, NULL),
                    SSL_ERR_SHAPE, "batch", NULL);
    tu_assert_error(ssl_loss_vae(ctx, lg, px, mu, lv, -1.0f, NULL), SSL_ERR_INVALID, "beta",
                    NULL);
    /* a NULL input keeps the earlier error */
    ssl_set_error(SSL_ERR_SHAPE, "earlier failure");
    assert_null(ssl_loss_vicreg(ctx, NULL, a, NULL, NULL));
    assert_string_equal(ssl_last_error(), "earlier failure");
    ssl_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ntxent_identical),
        cmocka_unit_test(test_vicreg_constant),
        cmocka_unit_test(test_barlow_whitened),
        cmocka_unit_test(test_sinkhorn_marginals),
        cmocka_unit_test(test_dino_center),
        cmocka_unit_test(test_dino_teacher_temp),
        cmocka_unit_test(test_dino_uniform_teacher),
        cmocka_unit_test(test_clip_aligned),
        cmocka_unit_test(test_siglip_extreme),
        cmocka_unit_test(test_queue),
        cmocka_unit_test(test_clip_scale_at_bounds),
        cmocka_unit_test(test_gradcheck_contrastive),
        cmocka_unit_test(test_gradcheck_distill),
        cmocka_unit_test(test_gradcheck_redundancy),
        cmocka_unit_test(test_gradcheck_masked),
        cmocka_unit_test(test_gradcheck_image_text),
        cmocka_unit_test(test_gradcheck_vae),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests_name("losses_sanity", tests, NULL, NULL);
}
