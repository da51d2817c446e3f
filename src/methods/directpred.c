/* DirectPred (Tian et al. 2021): BYOL whose linear predictor is not trained but set after every
 * step from the eigendecomposition of a moving average of the online projections' correlation
 * F = rho F + (1 - rho) E[z z^T] (both views' rows; the first step's E[z z^T] as is):
 * W = U diag(max(sqrt(max(s, 0) / max s) + eps, 1e-4)) U^T, as luckmatters' byol_trainer.py and
 * solo-learn's DirectPred. The eigendecomposition is LAPACK's dsyevr (the eval layer's). */
#include "methods_internal.h"

#include <math.h>
#include <stdlib.h>

#include "eval/eval_internal.h"

typedef struct directpred_method {
    ssl_proj_method_t pm; /* projector, its EMA copy; the predictor below */
    ssl_tensor_t *weight; /* (D, D) "predictor.weight", set, never trained */
    ssl_tensor_t *corr;   /* (D, D) "predictor.corr" buffer: F */
    ssl_tensor_t *corr_n; /* () "predictor.corr_steps" buffer: steps averaged into F */
    ssl_tensor_t *z[2];   /* the step's projections, for F after the step */
} directpred_method_t;

static int create(ssl_method_t *m, ssl_method_build_t *b)
{
    directpred_method_t *dm = (directpred_method_t *)m;
    int64_t D = 0;
    if (ssl__proj_create(m, b, "byol_projector", NULL, &D) != SSL_OK)
        return ssl_last_status();
    /* PyTorch's default Linear init (no bias), frozen: the optimizer never moves it */
    ssl_nn_linear_t lin;
    if (ssl_nn_linear_init(&lin, b->online, "predictor", D, D, 0, SSL_INIT_TORCH_DEFAULT,
                           b->seed) != SSL_OK ||
        ssl_params_set_frozen(b->online, "predictor.weight", 1) < 0)
        return ssl_last_status();
    dm->weight = lin.weight;
    dm->corr =
        ssl_params_add(b->online, "predictor.corr", 2, (int64_t[]){D, D}, SSL_PARAM_BUFFER, 0);
    dm->corr_n =
        dm->corr ? ssl_params_add(b->online, "predictor.corr_steps", 0, NULL, SSL_PARAM_BUFFER, 0)
                 : NULL;
    return dm->corr_n ? SSL_OK : ssl_last_status();
}

static ssl_tensor_t *loss(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_batch_t *b,
                          const ssl_step_pos_t *pos)
{
    (void)pos;
    directpred_method_t *dm = (directpred_method_t *)m;
    ssl_tensor_t *z[2], *p[2], *t[2];
    for (int v = 0; v < 2; v++) {
        z[v] = ssl_mlp_forward(ctx, &dm->pm.proj,
                               ssl__method_pooled(ctx, m->enc, ssl__method_view(b, v)), 1);
        p[v] = ssl_matmul(ctx, z[v], dm->weight, 0, 1); // (B, D) = z W^T
        t[v] = ssl__proj_target_z(&dm->pm, ctx, ssl__method_view(b, v));
        /* the correlation F averages over the whole batch: every rank's rows (no gradient) */
        dm->z[v] = ssl__all_gather_nograd(ctx, z[v]);
    }
    m->last_z = z[0];
    m->last_z2 = z[1];
    return ssl_loss_byol(ctx, p[0], p[1], t[0], t[1]);
}

/* F from the step's projections, then W from F. */
static int after_step(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_step_pos_t *pos)
{
    (void)ctx, (void)pos;
    directpred_method_t *dm = (directpred_method_t *)m;
    if (!dm->z[0] || !dm->z[1])
        return SSL_OK;
    const int64_t B = dm->z[0]->shape[0], D = dm->z[0]->shape[1];
    const float rho = m->loss[0].directpred.rho, eps = m->loss[0].directpred.eps;
    double *a = malloc(sizeof(double) * (size_t)(D * D));      // (D, D) F, then destroyed
    double *w = malloc(sizeof(double) * (size_t)D);            // (D) eigenvalues, ascending
    double *u = malloc(sizeof(double) * (size_t)(D * D));      // (D, D) eigenvectors as rows
    double *scaled = malloc(sizeof(double) * (size_t)(D * D)); // (D, D) diag(e) U
    int st =
        a && w && u && scaled ? SSL_OK : ssl_set_error(SSL_ERR_NOMEM, "directpred: out of memory");
    float *F = dm->corr->data;
    const int first = dm->corr_n->data[0] == 0.0f;
    for (int64_t i = 0; st == SSL_OK && i < D; i++)
        for (int64_t j = 0; j < D; j++) {
            double c = 0; /* mean over both views' rows of z_i z_j */
            for (int v = 0; v < 2; v++)
                for (int64_t r = 0; r < B; r++)
                    c += (double)dm->z[v]->data[r * D + i] * dm->z[v]->data[r * D + j];
            c /= (double)(2 * B);
            float f = first ? (float)c : rho * F[i * D + j] + (1.0f - rho) * (float)c;
            F[i * D + j] = f;
            a[i * D + j] = f;
        }
    if (st == SSL_OK) {
        dm->corr_n->data[0] += 1.0f;
        st = ssl__eigh_top("directpred", a, D, (int)D, w, u);
    }
    if (st == SSL_OK) {
        double smax = w[D - 1];
        for (int64_t k = 0; k < D; k++) {
            double s = w[k] > 0 ? w[k] : 0.0;
            double e = (smax > 0 ? sqrt(s / smax) : 0.0) + eps;
            e = e < 1e-4 ? 1e-4 : e;
            for (int64_t j = 0; j < D; j++)
                scaled[k * D + j] = e * u[k * D + j];
        }
        float *W = dm->weight->data; /* W = U^T diag(e) U with U's rows the eigenvectors */
        for (int64_t i = 0; i < D; i++)
            for (int64_t j = 0; j < D; j++) {
                double s = 0;
                for (int64_t k = 0; k < D; k++)
                    s += u[k * D + i] * scaled[k * D + j];
                W[i * D + j] = (float)s;
            }
    }
    dm->z[0] = dm->z[1] = NULL;
    free(a);
    free(w);
    free(u);
    free(scaled);
    return st;
}

static const int k_types[] = {SSL_LOSS_DIRECTPRED, -1};
static const char *const k_ema[] = {"encoder.", "projector.", NULL};

const ssl_method_def_t ssl__method_directpred = {
    .name = "directpred",
    .loss_types = k_types,
    .size = sizeof(directpred_method_t),
    .target = SSL_TARGET_EMA,
    .mask_kind = SSL_MASK_NONE,
    .min_global = 2,
    .ema_modules = k_ema,
    .create = create,
    .loss = loss,
    .after_step = after_step,
};
