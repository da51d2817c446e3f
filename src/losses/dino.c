/* DINO: cross-entropy between the centred, sharpened teacher distribution and the student's,
 * over every (teacher global view, other student view) pair with multi-crop; the teacher
 * temperature schedule; and the center, an EMA of the teacher's batch means.
 *
 * The pairs are not evaluated one by one: the loss of student view v against every teacher
 * view i != v is -sum_k (sum_{i != v} t_i) log p_v, so one soft cross-entropy over all V * B
 * student rows with the summed targets gives the sum over all pairs at once (one log-softmax
 * of the student, no slices). */
#include "losses_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define COLS 256 /* columns per block of the center's column means */

ssl_tensor_t *ssl__loss_teacher_probs(ssl_ctx_t *ctx, ssl_tensor_t *teacher,
                                      const ssl_tensor_t *center, float teacher_temp)
{
    ssl_tensor_t *t = ssl__loss_sg(ctx, teacher);
    if (center) {
        ssl_tensor_t cv = *center; /* a (K) view: broadcasts against (N, K) */
        cv.ndim = 1;
        cv.shape[0] = center->numel;
        cv.requires_grad = 0;
        cv.node = -1;
        t = ssl_sub(ctx, t, &cv);
    }
    return ssl_softmax(ctx, ssl_scale(ctx, t, 1.0f / teacher_temp, 0.0f), -1);
}

/* targets: teacher holds the targets themselves (probabilities); else logits to centre and
 * sharpen */
static ssl_tensor_t *dino(ssl_ctx_t *ctx, ssl_tensor_t *student, ssl_tensor_t *teacher,
                          int n_global, ssl_tensor_t *center, float student_temp,
                          float teacher_temp, int targets)
{
    const char *L = targets ? "dino_targets" : "dino";
    if (SSL__NULL_INPUT(student, L) || SSL__NULL_INPUT(teacher, L))
        return NULL;
    if (!ctx)
        return ssl__loss_fail_status(SSL_ERR_INVALID, L, "NULL context");
    if (!ssl__loss_check_2d(L, "student", student, 1) ||
        !ssl__loss_check_2d(L, "teacher", teacher, 1) ||
        !ssl__loss_check_pos(L, "student_temp", student_temp) ||
        (!targets && !ssl__loss_check_pos(L, "teacher_temp", teacher_temp)))
        return NULL;
    char a[64], b[64];
    int64_t k = student->shape[1];
    if (teacher->shape[1] != k)
        return ssl__loss_fail(L, "student %s and teacher %s must have the same width",
                              LSHAPE(student, a), LSHAPE(teacher, b));
    if (n_global < 1 || teacher->shape[0] % n_global)
        return ssl__loss_fail(L, "teacher %s must stack n_global = %d views of a batch",
                              LSHAPE(teacher, a), n_global);
    int64_t bsz = teacher->shape[0] / n_global;
    if (student->shape[0] % bsz)
        return ssl__loss_fail(L, "student %s must stack views of the batch of %lld of teacher %s",
                              LSHAPE(student, a), (long long)bsz, LSHAPE(teacher, b));
    int64_t nv = student->shape[0] / bsz;
    if (nv < n_global || nv < 2)
        return ssl__loss_fail(L,
                              "student %s has %lld views: needs at least the %d global views "
                              "and at least 2",
                              LSHAPE(student, a), (long long)nv, n_global);
    if (center && center->numel != k)
        return ssl__loss_fail(L, "center %s must have %lld elements", LSHAPE(center, a),
                              (long long)k);
    ssl_tensor_t *pt =
        targets ? ssl__loss_sg(ctx, teacher) : ssl__loss_teacher_probs(ctx, teacher, center, teacher_temp);
    ssl_tensor_t *tgt = ssl_tensor_new(ctx, 2, student->shape); // (V B, K)
    if (!pt || !tgt)
        return NULL;
    const float *P = pt->data;
    int64_t rows = nv * bsz;
#pragma omp parallel for schedule(static) if (rows * k * n_global > 16384)
    for (int64_t r = 0; r < rows; r++) {
        int64_t v = r / bsz, s = r % bsz;
        float *dst = tgt->data + r * k;
        int first = 1;
        for (int i = 0; i < n_global; i++) {
            if (i == v)
                continue;
            const float *src = P + ((int64_t)i * bsz + s) * k;
            if (first)
                memcpy(dst, src, (size_t)k * sizeof(float));
            else
                for (int64_t j = 0; j < k; j++)
                    dst[j] += src[j];
            first = 0;
        }
        if (first) /* n_global == 1 and v == 0: no pair for this row */
            memset(dst, 0, (size_t)k * sizeof(float));
    }
    int64_t pairs = (int64_t)n_global * (nv - 1);
    ssl_tensor_t *ce =
        ssl_cross_entropy_soft(ctx, ssl_scale(ctx, student, 1.0f / student_temp, 0.0f), tgt);
    /* ce = (1 / (V B)) sum over pairs of B * pair loss */
    return ssl_scale(ctx, ce, (float)((double)nv / (double)pairs), 0.0f);
}

ssl_tensor_t *ssl_loss_dino(ssl_ctx_t *ctx, ssl_tensor_t *student, ssl_tensor_t *teacher,
                            int n_global, ssl_tensor_t *center, float student_temp,
                            float teacher_temp)
{
    return dino(ctx, student, teacher, n_global, center, student_temp, teacher_temp, 0);
}

ssl_tensor_t *ssl_loss_dino_targets(ssl_ctx_t *ctx, ssl_tensor_t *student, ssl_tensor_t *targets,
                                    int n_global, float student_temp)
{
    return dino(ctx, student, targets, n_global, NULL, student_temp, 1.0f, 1);
}

float ssl_dino_teacher_temp(float warmup_temp, float temp, double warmup_epochs, double epoch)
{
    /* np.concatenate((np.linspace(warmup_temp, temp, n), np.ones(epochs - n) * temp))[epoch],
     * read at a possibly fractional epoch. */
    if (!(temp > 0.0f && epoch >= 0.0) || (warmup_epochs > 0 && !(warmup_temp > 0.0f))) {
        ssl_set_error(SSL_ERR_INVALID,
                      "%s: temperatures %g and %g must be > 0 and epoch %g >= 0 (NaN returned)",
                      __func__, warmup_temp, temp, epoch);
        return NAN;
    }
    if (!(warmup_epochs > 0) || epoch >= warmup_epochs)
        return temp;
    if (warmup_epochs <= 1) /* linspace(a, b, 1) == [a] */
        return warmup_temp;
    double f = epoch / (warmup_epochs - 1);
    f = f < 0 ? 0 : (f > 1 ? 1 : f);
    return (float)(warmup_temp + (temp - warmup_temp) * f);
}

int ssl_dino_center_init(ssl_tensor_t **center, ssl_params_t *p, const char *name, int64_t dim)
{
    if (!center || !p || !name)
        return ssl_set_error(SSL_ERR_INVALID, "ssl_dino_center_init: NULL argument");
    if (dim < 1)
        return ssl_set_error(SSL_ERR_INVALID, "ssl_dino_center_init '%s': dim %lld < 1", name,
                             (long long)dim);
    char buf[256];
    size_t len = strlen(name);
    if (len)
        snprintf(buf, sizeof buf, "%s.center", name);
    else
        snprintf(buf, sizeof buf, "center");
    *center = ssl_params_add(p, buf, 2, (int64_t[]){1, dim}, SSL_PARAM_BUFFER, 0);
    return *center ? SSL_OK : ssl_last_status();
}

int ssl_dino_center_update_mean(ssl_tensor_t *center, const float *batch_mean, float momentum)
{
    if (!center || !batch_mean)
        return ssl_set_error(SSL_ERR_INVALID, "ssl_dino_center_update: NULL argument");
    if (!(momentum >= 0.0f && momentum <= 1.0f))
        return ssl_set_error(SSL_ERR_INVALID, "ssl_dino_center_update: momentum %g outside [0, 1]",
                             (double)momentum);
    float *c = center->data;
    for (int64_t j = 0; j < center->numel; j++)
        c[j] = c[j] * momentum + batch_mean[j] * (1.0f - momentum);
    return SSL_OK;
}

int ssl_dino_center_update(ssl_tensor_t *center, const ssl_tensor_t *teacher, float momentum)
{
    if (!center || !teacher)
        return ssl_set_error(SSL_ERR_INVALID, "ssl_dino_center_update: NULL argument");
    char a[64], b[64];
    if (teacher->ndim != 2 || teacher->shape[1] != center->numel || teacher->shape[0] < 1)
        return ssl_set_error(SSL_ERR_SHAPE,
                             "ssl_dino_center_update: teacher %s must be (N, %lld) for center %s",
                             LSHAPE(teacher, a), (long long)center->numel, LSHAPE(center, b));
    if (!(momentum >= 0.0f && momentum <= 1.0f))
        return ssl_set_error(SSL_ERR_INVALID, "ssl_dino_center_update: momentum %g outside [0, 1]",
                             (double)momentum);
    int64_t n = teacher->shape[0], k = teacher->shape[1];
    float *c = center->data;
    int64_t nblk = (k + COLS - 1) / COLS;
#pragma omp parallel for schedule(static) if (n * k > 16384)
    for (int64_t blk = 0; blk < nblk; blk++) {
        int64_t j0 = blk * COLS, w = k - j0 < COLS ? k - j0 : COLS;
        double acc[COLS];
        for (int64_t j = 0; j < w; j++)
            acc[j] = 0;
        for (int64_t r = 0; r < n; r++) {
            const float *row = teacher->data + r * k + j0;
            for (int64_t j = 0; j < w; j++)
                acc[j] += row[j];
        }
        for (int64_t j = 0; j < w; j++)
            c[j0 + j] = c[j0 + j] * momentum + (float)(acc[j] / (double)n) * (1.0f - momentum);
    }
    return SSL_OK;
}
