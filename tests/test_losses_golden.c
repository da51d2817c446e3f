/* Every loss against golden values and gradients from the PyTorch reference implementations
 * in tests/fixtures/gen_loss_fixtures.py (float64 there, float32 here). */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ssl/io.h"
#include "ssl/losses.h"

#define FIXTURE SSL_SOURCE_DIR "/tests/fixtures/losses.safetensors"

/* value tolerances: float32 forward against float64 truth */
#define V_ATOL 1e-6
#define V_RTOL 1e-5
/* gradient tolerances */
#define G_ATOL 1e-7
#define G_RTOL 2e-5

static ssl_st_t *g_fix;

static int setup(void **state)
{
    (void)state;
    g_fix = ssl_st_open(FIXTURE);
    if (!g_fix) {
        print_message("%s\n", ssl_last_error());
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ssl_st_close(g_fix);
    return 0;
}

static ssl_tensor_t *load(ssl_ctx_t *ctx, const char *name, int requires_grad)
{
    int i = ssl_st_find(g_fix, name);
    if (i < 0)
        fail_msg("fixture has no tensor '%s'", name);
    const ssl_st_tensor_t *t = ssl_st_tensor(g_fix, i);
    ssl_tensor_t *x = ssl_tensor_new(ctx, t->ndim, t->shape);
    assert_non_null(x);
    assert_int_equal(ssl_st_read_f32(g_fix, i, x->data, (size_t)x->numel), SSL_OK);
    x->requires_grad = requires_grad;
    return x;
}

static float scalar(ssl_ctx_t *ctx, const char *name)
{
    return load(ctx, name, 0)->data[0];
}

/* Index tensor stored as floats -> int32 in the arena. */
static int32_t *load_idx(ssl_ctx_t *ctx, const char *name, int64_t *rows, int64_t *cols)
{
    ssl_tensor_t *t = load(ctx, name, 0);
    int32_t *idx = ssl_arena_alloc(ctx, (size_t)t->numel * sizeof(int32_t));
    for (int64_t i = 0; i < t->numel; i++)
        idx[i] = (int32_t)t->data[i];
    if (rows)
        *rows = t->shape[0];
    if (cols)
        *cols = t->shape[t->ndim - 1];
    return idx;
}

static void check_value(ssl_ctx_t *ctx, const ssl_tensor_t *loss, const char *name)
{
    if (!loss)
        fail_msg("%s: %s", name, ssl_last_error());
    float ref = scalar(ctx, name);
    if (tu_count_mismatch(loss->data, &ref, 1, V_ATOL, V_RTOL, name))
        fail_msg("%s differs from PyTorch", name);
}

/* Gradient tolerance multiplier: logits scaled by 100 (CLIP at its clamp) amplify float32
 * rounding of the normalised features 100-fold. */
static double g_tol_mul = 1.0;

static void check_grad(ssl_ctx_t *ctx, const ssl_tensor_t *x, const char *name)
{
    ssl_tensor_t *ref = load(ctx, name, 0);
    assert_int_equal(x->numel, ref->numel);
    if (!x->grad)
        fail_msg("%s: no gradient reached the input", name);
    if (tu_count_mismatch(x->grad, ref->data, ref->numel, G_ATOL * g_tol_mul, G_RTOL * g_tol_mul,
                          name))
        fail_msg("%s differs from PyTorch", name);
}

/* The loss value, then backward and every listed gradient. */
static void check_loss(ssl_ctx_t *ctx, ssl_tensor_t *loss, const char *prefix, int n,
                       ssl_tensor_t **xs, const char **names)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s.loss", prefix);
    check_value(ctx, loss, buf);
    assert_int_equal(ssl_backward(ctx, loss), SSL_OK);
    for (int i = 0; i < n; i++) {
        snprintf(buf, sizeof buf, "%s.grad.%s", prefix, names[i]);
        check_grad(ctx, xs[i], buf);
    }
}

/* ---------------------------------------------------------------- InfoNCE */

static void test_ntxent(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *z1 = load(ctx, "ntxent.z1", 1), *z2 = load(ctx, "ntxent.z2", 1);
    ssl_tensor_t *loss = ssl_loss_ntxent(ctx, z1, z2, scalar(ctx, "ntxent.tau"));
    check_loss(ctx, loss, "ntxent", 2, (ssl_tensor_t *[]){z1, z2}, (const char *[]){"z1", "z2"});
    ssl_ctx_free(ctx);
}

static void test_moco(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *q = load(ctx, "moco.q", 1), *k = load(ctx, "moco.k", 1);
    ssl_tensor_t *queue = load(ctx, "moco.queue", 0);
    ssl_tensor_t *loss = ssl_loss_moco(ctx, q, k, queue, scalar(ctx, "moco.tau"));
    check_loss(ctx, loss, "moco", 1, (ssl_tensor_t *[]){q}, (const char *[]){"q"});
    assert_null(k->grad); /* keys behind a stop-gradient */
    ssl_ctx_free(ctx);
}

static void test_moco_v3(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *q1 = load(ctx, "mocov3.q1", 1), *q2 = load(ctx, "mocov3.q2", 1);
    ssl_tensor_t *k1 = load(ctx, "mocov3.k1", 1), *k2 = load(ctx, "mocov3.k2", 1);
    ssl_tensor_t *loss = ssl_loss_moco_v3(ctx, q1, q2, k1, k2, scalar(ctx, "mocov3.tau"));
    check_loss(ctx, loss, "mocov3", 2, (ssl_tensor_t *[]){q1, q2}, (const char *[]){"q1", "q2"});
    assert_null(k1->grad);
    assert_null(k2->grad);
    ssl_ctx_free(ctx);
}

/* ---------------------------------------------------------------- BYOL, SimSiam */

static void regression_case(const char *prefix, int byol)
{
    ssl_ctx_t *ctx = tu_ctx();
    char b[4][64];
    const char *nm[4] = {"p1", "p2", "z1", "z2"};
    ssl_tensor_t *x[4];
    for (int i = 0; i < 4; i++) {
        snprintf(b[i], sizeof b[i], "%s.%s", prefix, nm[i]);
        x[i] = load(ctx, b[i], 1);
    }
    ssl_tensor_t *loss = byol ? ssl_loss_byol(ctx, x[0], x[1], x[2], x[3])
                              : ssl_loss_simsiam(ctx, x[0], x[1], x[2], x[3]);
    check_loss(ctx, loss, prefix, 2, x, nm);
    assert_null(x[2]->grad);
    assert_null(x[3]->grad);
    ssl_ctx_free(ctx);
}

static void test_byol(void **state)
{
    (void)state;
    regression_case("byol", 1);
}

static void test_simsiam(void **state)
{
    (void)state;
    regression_case("simsiam", 0);
}

/* ---------------------------------------------------------------- DINO */

static void test_dino(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *s = load(ctx, "dino.student", 1), *t = load(ctx, "dino.teacher", 1);
    ssl_tensor_t *c = load(ctx, "dino.center", 0);
    float tt = ssl_dino_teacher_temp(0.04f, 0.07f, 30, scalar(ctx, "dino.epoch"));
    assert_float_equal(tt, scalar(ctx, "dino.teacher_temp"), 1e-7);
    ssl_tensor_t *loss = ssl_loss_dino(ctx, s, t, 2, c, scalar(ctx, "dino.student_temp"), tt);
    check_loss(ctx, loss, "dino", 1, (ssl_tensor_t *[]){s}, (const char *[]){"student"});
    assert_null(t->grad);
    /* the center after the official update */
    assert_int_equal(ssl_dino_center_update(c, t, scalar(ctx, "dino.center_momentum")), SSL_OK);
    ssl_tensor_t *after = load(ctx, "dino.center_after", 0);
    tu_assert_close(c->data, after->data, after->numel, 1e-7, 1e-6);
    /* the teacher temperature schedule (np.linspace warm-up) */
    ssl_tensor_t *ep = load(ctx, "dino.sched_epochs", 0), *tp = load(ctx, "dino.sched_temps", 0);
    for (int64_t i = 0; i < ep->numel; i++) {
        float v = ssl_dino_teacher_temp(0.04f, 0.07f, 30, ep->data[i]);
        if (fabsf(v - tp->data[i]) > 1e-7f)
            fail_msg("teacher temp at epoch %g: %.8g vs %.8g", (double)ep->data[i], (double)v,
                     (double)tp->data[i]);
    }
    ssl_ctx_free(ctx);
}

static void test_dino_one_global(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *s = load(ctx, "dino1.student", 1), *t = load(ctx, "dino1.teacher", 0);
    ssl_tensor_t *loss = ssl_loss_dino(ctx, s, t, 1, NULL, scalar(ctx, "dino1.student_temp"),
                                       scalar(ctx, "dino1.teacher_temp"));
    check_loss(ctx, loss, "dino1", 1, (ssl_tensor_t *[]){s}, (const char *[]){"student"});
    ssl_ctx_free(ctx);
}

/* ---------------------------------------------------------------- SwAV */

static void test_sinkhorn(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *s = load(ctx, "sinkhorn.scores", 0), *ref = load(ctx, "sinkhorn.codes", 0);
    ssl_tensor_t *q =
        ssl_sinkhorn(ctx, s, scalar(ctx, "sinkhorn.epsilon"), (int)scalar(ctx, "sinkhorn.iters"));
    assert_non_null(q);
    tu_assert_close(q->data, ref->data, ref->numel, 1e-7, 1e-5);
    ssl_ctx_free(ctx);
}

static void test_swav(void **state)
{
    (void)state;
    static const int views[2] = {0, 1};
    for (int use_queue = 0; use_queue < 2; use_queue++) {
        ssl_ctx_t *ctx = tu_ctx();
        ssl_tensor_t *s = load(ctx, use_queue ? "swavq.scores" : "swav.scores", 1);
        ssl_tensor_t *qs[2] = {NULL, NULL};
        if (use_queue) {
            qs[0] = load(ctx, "swavq.queue0", 0);
            qs[1] = load(ctx, "swavq.queue1", 0);
        }
        ssl_tensor_t *loss =
            ssl_loss_swav(ctx, s, (int)scalar(ctx, "swav.n_views"), views, 2, use_queue ? qs : NULL,
                          scalar(ctx, "swav.temperature"), scalar(ctx, "swav.epsilon"),
                          (int)scalar(ctx, "swav.iters"));
        check_loss(ctx, loss, use_queue ? "swavq" : "swav", 1, (ssl_tensor_t *[]){s},
                   (const char *[]){"scores"});
        ssl_ctx_free(ctx);
    }
}

/* DeepCluster-v2: scores of the normalised projections against two frozen prototype sets,
 * targets with unassigned samples (-100 in PyTorch, left out); the gradient reaches z. */
static void test_deepclusterv2(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *z = load(ctx, "dcv2.z", 1);
    ssl_tensor_t *scores[2] = {ssl_matmul(ctx, z, load(ctx, "dcv2.proto0", 0), 0, 1),
                               ssl_matmul(ctx, z, load(ctx, "dcv2.proto1", 0), 0, 1)};
    const int32_t *targets[2] = {load_idx(ctx, "dcv2.targets0", NULL, NULL),
                                 load_idx(ctx, "dcv2.targets1", NULL, NULL)};
    int n_views = (int)scalar(ctx, "dcv2.n_views");
    ssl_tensor_t *loss =
        ssl_loss_deepclusterv2(ctx, scores, 2, targets, n_views, scalar(ctx, "dcv2.temperature"));
    check_loss(ctx, loss, "dcv2", 1, (ssl_tensor_t *[]){z}, (const char *[]){"z"});
    /* a target beyond the set's prototypes, and a bad count of views: errors naming them */
    int32_t bad[4] = {0, 6, 0, 0};
    const int32_t *bt[2] = {bad, targets[1]};
    tu_assert_error(ssl_loss_deepclusterv2(ctx, scores, 2, bt, n_views, 0.1f), SSL_ERR_INVALID,
                    "deepclusterv2", "target 6", "6 prototypes", NULL);
    tu_assert_error(ssl_loss_deepclusterv2(ctx, scores, 2, targets, 5, 0.1f), SSL_ERR_SHAPE,
                    "deepclusterv2", "(12, 6)", "5 views", NULL);
    /* no sample assigned in any set: a zero loss (PyTorch's mean over no row is NaN) */
    int32_t none[4] = {-1, -1, -1, -1};
    const int32_t *nt[2] = {none, none};
    ssl_tensor_t *zero = ssl_loss_deepclusterv2(ctx, scores, 2, nt, n_views, 0.1f);
    assert_non_null(zero);
    assert_float_equal(zero->data[0], 0.0f, 0);
    ssl_ctx_free(ctx);
}

/* iBOT's patch term: the masked rows of the full (G B, T, K) tensors gathered and grouped by
 * crop; the gradient flows back to the full student tensor (zero at the unmasked tokens). */
static void test_ibot_patch(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *student = load(ctx, "ibot.student", 1), *teacher = load(ctx, "ibot.teacher", 0);
    ssl_tensor_t *mask = load(ctx, "ibot.mask", 0), *center = load(ctx, "ibot.center", 0);
    const int64_t GB = student->shape[0], T = student->shape[1], K = student->shape[2];
    assert_int_equal((int64_t)scalar(ctx, "ibot.n_groups"), GB);
    int32_t rows[64], counts[16];
    int64_t M = 0;
    for (int64_t g = 0; g < GB; g++) {
        counts[g] = 0;
        for (int64_t t = 0; t < T; t++)
            if (mask->data[g * T + t] > 0.5f) {
                rows[M++] = (int32_t)(g * T + t);
                counts[g]++;
            }
    }
    assert_int_equal(counts[1], 0); /* the fixture's crop without masked tokens */
    int64_t flat[2] = {GB * T, K};
    ssl_tensor_t *s = ssl_gather_rows(ctx, ssl_reshape(ctx, student, 2, flat), rows, M);
    ssl_tensor_t *t = ssl_gather_rows(ctx, ssl_reshape(ctx, teacher, 2, flat), rows, M);
    ssl_tensor_t *loss = ssl_loss_ibot_patch(ctx, s, t, counts, GB, center,
                                             scalar(ctx, "ibot.student_temp"),
                                             scalar(ctx, "ibot.teacher_temp"));
    check_loss(ctx, loss, "ibot", 1, (ssl_tensor_t *[]){student}, (const char *[]){"student"});
    /* counts that do not add up to the rows, and a negative count: errors naming them */
    counts[0]++;
    tu_assert_error(ssl_loss_ibot_patch(ctx, s, t, counts, GB, center, 0.1f, 0.06f),
                    SSL_ERR_SHAPE, "ibot_patch", "sum to", NULL);
    counts[0] = -1;
    tu_assert_error(ssl_loss_ibot_patch(ctx, s, t, counts, GB, center, 0.1f, 0.06f),
                    SSL_ERR_INVALID, "ibot_patch", "counts[0] = -1", NULL);
    ssl_ctx_free(ctx);
}

/* DINOv2: KoLeo, and the class and patch losses with Sinkhorn-Knopp teacher targets
 * (ssl_sinkhorn with epsilon = the teacher temperature is dinov2's sinkhorn_knopp_teacher). */
static void test_dinov2(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *x = load(ctx, "koleo.x", 1);
    check_loss(ctx, ssl_loss_koleo(ctx, x), "koleo", 1, (ssl_tensor_t *[]){x},
               (const char *[]){"x"});
    tu_assert_error(ssl_loss_koleo(ctx, ssl_slice(ctx, x, 0, 0, 1)), SSL_ERR_SHAPE, "koleo",
                    "(1, 4)", NULL);
    ssl_tensor_t *s = load(ctx, "dinosk.student", 1), *t = load(ctx, "dinosk.teacher", 0);
    float tt = scalar(ctx, "dinosk.teacher_temp");
    ssl_tensor_t *q = ssl_sinkhorn(ctx, t, tt, SSL_SK_TEACHER_ITERS);
    check_loss(ctx,
               ssl_loss_dino_targets(ctx, s, q, (int)scalar(ctx, "dinosk.n_global"),
                                     scalar(ctx, "dinosk.student_temp")),
               "dinosk", 1, (ssl_tensor_t *[]){s}, (const char *[]){"student"});
    ssl_tensor_t *sp = load(ctx, "ibotsk.student", 1), *tp = load(ctx, "ibotsk.teacher", 0);
    int64_t n_groups = 0;
    const int32_t *counts = load_idx(ctx, "ibotsk.counts", &n_groups, NULL);
    ssl_tensor_t *qp = ssl_sinkhorn(ctx, tp, scalar(ctx, "ibotsk.teacher_temp"),
                                    SSL_SK_TEACHER_ITERS);
    check_loss(ctx,
               ssl_loss_ibot_patch_targets(ctx, sp, qp, counts, n_groups,
                                           scalar(ctx, "ibotsk.student_temp")),
               "ibotsk", 1, (ssl_tensor_t *[]){sp}, (const char *[]){"student"});
    ssl_ctx_free(ctx);
}

/* ---------------------------------------------------------------- Barlow, VICReg */

/* prefix "barlow": N > D, the (D, D) product; "barlow_wide": N < D, the Gram form */
static void barlow_case(const char *pre)
{
    ssl_ctx_t *ctx = tu_ctx();
    char n1[64], n2[64], on[64], off[64];
    snprintf(n1, sizeof n1, "%s.z1", pre);
    snprintf(n2, sizeof n2, "%s.z2", pre);
    snprintf(on, sizeof on, "%s.on_diag", pre);
    snprintf(off, sizeof off, "%s.off_diag", pre);
    ssl_tensor_t *z1 = load(ctx, n1, 1), *z2 = load(ctx, n2, 1);
    ssl_loss_parts_t parts;
    ssl_tensor_t *loss = ssl_loss_barlow(ctx, z1, z2, scalar(ctx, "barlow.lambda"),
                                         scalar(ctx, "barlow.scale"), &parts);
    assert_non_null(loss);
    assert_int_equal(parts.n, 2);
    assert_string_equal(parts.name[0], "on_diag");
    assert_float_equal(parts.value[0], scalar(ctx, on), 1e-5);
    assert_float_equal(parts.value[1], scalar(ctx, off), 1e-5);
    check_loss(ctx, loss, pre, 2, (ssl_tensor_t *[]){z1, z2}, (const char *[]){"z1", "z2"});
    ssl_ctx_free(ctx);
}

static void test_barlow(void **state)
{
    (void)state;
    barlow_case("barlow");
    barlow_case("barlow_wide");
}

static void vicreg_case(const char *pre)
{
    ssl_ctx_t *ctx = tu_ctx();
    char n1[64], n2[64];
    snprintf(n1, sizeof n1, "%s.z1", pre);
    snprintf(n2, sizeof n2, "%s.z2", pre);
    ssl_tensor_t *z1 = load(ctx, n1, 1), *z2 = load(ctx, n2, 1);
    ssl_loss_parts_t parts;
    ssl_tensor_t *loss = ssl_loss_vicreg(ctx, z1, z2, NULL, &parts);
    assert_non_null(loss);
    assert_int_equal(parts.n, 3);
    const char *names[3] = {"invariance", "variance", "covariance"};
    for (int i = 0; i < 3; i++) {
        char nm[64];
        snprintf(nm, sizeof nm, "%s.%s", pre, names[i]);
        float ref = scalar(ctx, nm);
        if (tu_count_mismatch(&parts.value[i], &ref, 1, V_ATOL, V_RTOL, nm))
            fail_msg("%s differs", nm);
    }
    check_loss(ctx, loss, pre, 2, (ssl_tensor_t *[]){z1, z2}, (const char *[]){"z1", "z2"});
    ssl_ctx_free(ctx);
}

static void test_vicreg(void **state)
{
    (void)state;
    vicreg_case("vicreg");
    vicreg_case("vicreg_wide");
}

/* ---------------------------------------------------------------- MAE, SimMIM */

static void test_patchify(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *img = load(ctx, "mae.images", 0), *ref = load(ctx, "mae.patches", 0);
    int p = (int)scalar(ctx, "mae.p");
    ssl_tensor_t *x = ssl_patchify(ctx, img, p);
    assert_non_null(x);
    assert_true(ssl_same_shape(x, ref));
    tu_assert_close(x->data, ref->data, ref->numel, 0, 0); /* a pure permutation */
    ssl_tensor_t *back = ssl_unpatchify(ctx, x, p, img->shape[2], img->shape[3]);
    assert_non_null(back);
    assert_true(ssl_same_shape(back, img));
    tu_assert_close(back->data, img->data, img->numel, 0, 0);
    ssl_ctx_free(ctx);
}

static void test_mae(void **state)
{
    (void)state;
    for (int norm = 0; norm < 2; norm++) {
        ssl_ctx_t *ctx = tu_ctx();
        char pre[32], nb[64];
        snprintf(pre, sizeof pre, "mae_norm%d", norm);
        snprintf(nb, sizeof nb, "%s.pred", pre);
        ssl_tensor_t *pred = load(ctx, nb, 1);
        snprintf(nb, sizeof nb, "%s.mask", pre);
        ssl_tensor_t *mask = load(ctx, nb, 0);
        ssl_tensor_t *tgt = ssl_patchify(ctx, load(ctx, "mae.images", 0), 4);
        ssl_tensor_t *loss = ssl_loss_mae(ctx, pred, tgt, mask, norm);
        check_loss(ctx, loss, pre, 1, (ssl_tensor_t *[]){pred}, (const char *[]){"pred"});
        ssl_ctx_free(ctx);
    }
}

static void test_mae_idx(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    /* mask with two masked patches per sample: the (B, T) mask and the index form agree */
    ssl_tensor_t *pred = load(ctx, "mae_norm1.pred", 1);
    ssl_tensor_t *tgt = ssl_patchify(ctx, load(ctx, "mae.images", 0), 4);
    const int32_t idx[4] = {3, 1, 0, 2};
    ssl_tensor_t *mask = ssl_tensor_zeros(ctx, 2, (int64_t[]){2, 4});
    mask->data[0 * 4 + 3] = mask->data[0 * 4 + 1] = 1;
    mask->data[1 * 4 + 0] = mask->data[1 * 4 + 2] = 1;
    for (int norm = 0; norm < 2; norm++) {
        ssl_tensor_t *a = ssl_loss_mae(ctx, pred, tgt, mask, norm);
        assert_int_equal(ssl_backward(ctx, a), SSL_OK);
        float *ga = malloc((size_t)pred->numel * sizeof(float));
        memcpy(ga, pred->grad, (size_t)pred->numel * sizeof(float));
        memset(pred->grad, 0, (size_t)pred->numel * sizeof(float));
        ssl_tensor_t *b = ssl_loss_mae_idx(ctx, pred, tgt, idx, 2, norm);
        assert_non_null(b);
        assert_float_equal(a->data[0], b->data[0], 1e-5 * fabs(a->data[0]));
        assert_int_equal(ssl_backward(ctx, b), SSL_OK);
        tu_assert_close(pred->grad, ga, pred->numel, 1e-7, 1e-5);
        memset(pred->grad, 0, (size_t)pred->numel * sizeof(float));
        /* pred holding only the masked patches (B, M, P) */
        ssl_tensor_t *pm = ssl_gather_rows(ctx, pred, idx, 2);
        ssl_tensor_t *c = ssl_loss_mae_idx(ctx, pm, tgt, idx, 2, norm);
        assert_non_null(c);
        assert_float_equal(a->data[0], c->data[0], 1e-5 * fabs(a->data[0]));
        free(ga);
    }
    ssl_ctx_free(ctx);
}

static void test_simmim(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *pred = load(ctx, "simmim.pred", 1), *img = load(ctx, "simmim.images", 1);
    ssl_tensor_t *mask = load(ctx, "simmim.mask", 0);
    ssl_tensor_t *loss = ssl_loss_simmim(ctx, pred, img, mask);
    check_loss(ctx, loss, "simmim", 1, (ssl_tensor_t *[]){pred}, (const char *[]){"pred"});
    assert_null(img->grad);
    ssl_ctx_free(ctx);
}

/* ---------------------------------------------------------------- I-JEPA */

static void test_ijepa(void **state)
{
    (void)state;
    for (int kind = 0; kind < 2; kind++) {
        ssl_ctx_t *ctx = tu_ctx();
        ssl_tensor_t *tgt = load(ctx, "ijepa.target", 1);
        ssl_tensor_t *p[2] = {load(ctx, "ijepa.pred0", 1), load(ctx, "ijepa.pred1", 1)};
        int64_t k[2];
        const int32_t *idx[2] = {load_idx(ctx, "ijepa.idx0", NULL, &k[0]),
                                 load_idx(ctx, "ijepa.idx1", NULL, &k[1])};
        ssl_tensor_t *loss = ssl_loss_ijepa(ctx, p, tgt, idx, k, 2,
                                            kind ? SSL_REGRESS_MSE : SSL_REGRESS_SMOOTH_L1, 1.0f);
        check_loss(ctx, loss, kind ? "ijepa_mse" : "ijepa", 2, p,
                   (const char *[]){"pred0", "pred1"});
        assert_null(tgt->grad);
        ssl_ctx_free(ctx);
    }
}

/* ---------------------------------------------------------------- data2vec */

/* data2vec_vision's target normalisations (per block: instance norm over tokens, layer norm;
 * of their average: layer norm) and regression (smooth L1 or MSE) at the masked tokens. */
static void test_data2vec(void **state)
{
    (void)state;
    static const char *const cases[] = {"data2vec", "data2vec_in", "data2vec_inonly"};
    for (int c = 0; c < 3; c++) {
        ssl_ctx_t *ctx = tu_ctx();
        char buf[64];
#define D2V_KEY(k) (snprintf(buf, sizeof buf, "%s.%s", cases[c], (k)), buf)
        ssl_data2vec_opts_t o = {3, (int)scalar(ctx, D2V_KEY("instance_norm")),
                                 (int)scalar(ctx, D2V_KEY("layer_norm")),
                                 (int)scalar(ctx, D2V_KEY("final_norm")),
                                 scalar(ctx, D2V_KEY("mse")) > 0 ? SSL_REGRESS_MSE
                                                                  : SSL_REGRESS_SMOOTH_L1,
                                 scalar(ctx, D2V_KEY("beta"))};
        ssl_tensor_t *layers[3];
        for (int i = 0; i < 3; i++) {
            char lk[16];
            snprintf(lk, sizeof lk, "layer%d", i);
            layers[i] = load(ctx, D2V_KEY(lk), 0);
        }
        ssl_tensor_t *pred = load(ctx, D2V_KEY("pred"), 1);
        int64_t m;
        const int32_t *idx = load_idx(ctx, D2V_KEY("idx"), NULL, &m);
        ssl_tensor_t *tg = ssl_loss_data2vec_targets(ctx, layers, 3, &o);
        ssl_tensor_t *want = load(ctx, D2V_KEY("targets"), 0);
        if (!tg || tu_count_mismatch(tg->data, want->data, want->numel, V_ATOL, V_RTOL, buf))
            fail_msg("%s differs from PyTorch (%s)", buf, tg ? "values" : ssl_last_error());
        ssl_tensor_t *loss = ssl_loss_data2vec(ctx, pred, tg, idx, m, &o);
        check_loss(ctx, loss, cases[c], 1, &pred, (const char *[]){"pred"});
#undef D2V_KEY
        /* errors name the loss and the shapes */
        tu_assert_error(ssl_loss_data2vec(ctx, pred, tg, idx, m + 1, &o), SSL_ERR_SHAPE,
                        "data2vec", "(2, 4, 5)", "(2, 6, 5)", NULL);
        ssl_tensor_t *bad[2] = {layers[0], pred};
        tu_assert_error(ssl_loss_data2vec_targets(ctx, bad, 2, &o), SSL_ERR_SHAPE, "data2vec",
                        "(2, 4, 5)", "(2, 6, 5)", NULL);
        ssl_data2vec_opts_t nb = o;
        nb.kind = SSL_REGRESS_SMOOTH_L1;
        nb.beta = -1.0f;
        tu_assert_error(ssl_loss_data2vec(ctx, pred, tg, idx, m, &nb), SSL_ERR_INVALID, "beta",
                        NULL);
        ssl_ctx_free(ctx);
    }
}

/* ---------------------------------------------------------------- MaskFeat */

/* MaskFeat's loss, MAE's per-patch mean over HOG rows of one length (ssl_loss_mae_idx without
 * norm_pix), against F.mse_loss on the masked patches' HOG (test_data_hog checks the HOG). */
static void test_maskfeat(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *hog = load(ctx, "hog.patches", 0), *pred = load(ctx, "maskfeat.pred", 1);
    int64_t m;
    const int32_t *idx = load_idx(ctx, "maskfeat.idx", NULL, &m);
    ssl_tensor_t *loss = ssl_loss_mae_idx(ctx, pred, hog, idx, m, 0);
    check_loss(ctx, loss, "maskfeat", 1, &pred, (const char *[]){"pred"});
    assert_null(hog->grad);
    ssl_ctx_free(ctx);
}

/* ---------------------------------------------------------------- VAE */

/* The negative ELBO (beta 1 and 4) against the PyTorch VAE example's loss with logits: value,
 * parts (rec, kl per image) and the gradients of logits, mu and logvar; saturated logits (+-30
 * on targets 0 and 1) included. */
static void test_vae(void **state)
{
    (void)state;
    const char *const names[] = {"vae", "betavae"};
    for (int c = 0; c < 2; c++) {
        ssl_ctx_t *ctx = tu_ctx();
        char k[64];
#define LOADK(field, g) (snprintf(k, sizeof k, "%s." field, names[c]), load(ctx, k, g))
        ssl_tensor_t *lg = LOADK("logits", 1), *x = LOADK("images", 0);
        ssl_tensor_t *mu = LOADK("mu", 1), *lv = LOADK("logvar", 1);
        float beta = LOADK("beta", 0)->data[0], rec = LOADK("rec", 0)->data[0];
        float kl = LOADK("kl", 0)->data[0];
#undef LOADK
        ssl_loss_parts_t parts = {0};
        ssl_tensor_t *loss = ssl_loss_vae(ctx, lg, x, mu, lv, beta, &parts);
        assert_non_null(loss);
        assert_int_equal(parts.n, 2);
        assert_string_equal(parts.name[0], "rec");
        assert_string_equal(parts.name[1], "kl");
        assert_int_equal(tu_count_mismatch(&parts.value[0], &rec, 1, V_ATOL, V_RTOL, "rec"), 0);
        assert_int_equal(tu_count_mismatch(&parts.value[1], &kl, 1, V_ATOL, V_RTOL, "kl"), 0);
        check_loss(ctx, loss, names[c], 3, (ssl_tensor_t *[]){lg, mu, lv},
                   (const char *[]){"logits", "mu", "logvar"});
        assert_null(x->grad);
        ssl_ctx_free(ctx);
    }
}

static void test_vqvae(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *r = load(ctx, "vqvae.recon", 1), *x = load(ctx, "vqvae.images", 0);
    ssl_tensor_t *z = load(ctx, "vqvae.z", 1), *zq = load(ctx, "vqvae.zq", 1);
    ssl_loss_parts_t parts = {0};
    ssl_tensor_t *loss =
        ssl_loss_vqvae(ctx, r, x, z, zq, load(ctx, "vqvae.beta", 0)->data[0], &parts);
    assert_non_null(loss);
    assert_int_equal(parts.n, 3);
    const char *const names[] = {"rec", "codebook", "commit"};
    for (int i = 0; i < 3; i++) {
        char k[64];
        snprintf(k, sizeof k, "vqvae.%s", names[i]);
        assert_string_equal(parts.name[i], names[i]);
        assert_int_equal(
            tu_count_mismatch(&parts.value[i], load(ctx, k, 0)->data, 1, V_ATOL, V_RTOL, k), 0);
    }
    check_loss(ctx, loss, "vqvae", 3, (ssl_tensor_t *[]){r, z, zq},
               (const char *[]){"recon", "z", "zq"});
    assert_null(x->grad);
    ssl_ctx_free(ctx);
}

/* ---------------------------------------------------------------- CLIP, SigLIP */

static void test_clip(void **state)
{
    (void)state;
    for (int clamped = 0; clamped < 2; clamped++) {
        ssl_ctx_t *ctx = tu_ctx();
        ssl_tensor_t *img = load(ctx, "clip.image", 1), *txt = load(ctx, "clip.text", 1);
        ssl_tensor_t *ls = load(ctx, clamped ? "clipc.logit_scale" : "clip.logit_scale", 1);
        ssl_tensor_t *loss = ssl_loss_clip(ctx, img, txt, ls, scalar(ctx, "clip.max_logit_scale"));
        g_tol_mul = clamped ? 10.0 : 1.0;
        check_loss(ctx, loss, clamped ? "clipc" : "clip", 3, (ssl_tensor_t *[]){img, txt, ls},
                   (const char *[]){"image", "text", "logit_scale"});
        g_tol_mul = 1.0;
        if (clamped)
            assert_float_equal(ls->grad[0], 0.0f, 0.0f);
        ssl_ctx_free(ctx);
    }
}

static void test_siglip(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *img = load(ctx, "siglip.image", 1), *txt = load(ctx, "siglip.text", 1);
    ssl_tensor_t *t = load(ctx, "siglip.logit_scale", 1), *b = load(ctx, "siglip.logit_bias", 1);
    ssl_tensor_t *loss = ssl_loss_siglip(ctx, img, txt, t, b);
    check_loss(ctx, loss, "siglip", 4, (ssl_tensor_t *[]){img, txt, t, b},
               (const char *[]){"image", "text", "logit_scale", "logit_bias"});
    ssl_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ntxent),
        cmocka_unit_test(test_moco),
        cmocka_unit_test(test_moco_v3),
        cmocka_unit_test(test_byol),
        cmocka_unit_test(test_simsiam),
        cmocka_unit_test(test_dino),
        cmocka_unit_test(test_dino_one_global),
        cmocka_unit_test(test_sinkhorn),
        cmocka_unit_test(test_swav),
        cmocka_unit_test(test_deepclusterv2),
        cmocka_unit_test(test_ibot_patch),
        cmocka_unit_test(test_dinov2),
        cmocka_unit_test(test_barlow),
        cmocka_unit_test(test_vicreg),
        cmocka_unit_test(test_patchify),
        cmocka_unit_test(test_mae),
        cmocka_unit_test(test_mae_idx),
        cmocka_unit_test(test_simmim),
        cmocka_unit_test(test_ijepa),
        cmocka_unit_test(test_data2vec),
        cmocka_unit_test(test_maskfeat),
        cmocka_unit_test(test_vae),
        cmocka_unit_test(test_vqvae),
        cmocka_unit_test(test_clip),
        cmocka_unit_test(test_siglip),
    };
    return cmocka_run_group_tests_name("losses_golden", tests, setup, teardown);
}
