/* iBOT's masked-patch loss (bytedance/ibot main_ibot.py iBOTLoss, the patch term): the
 * student's patch logits at the masked tokens of a view predict the teacher's centred,
 * sharpened distribution at the same tokens of the unmasked view; per (view, sample) the mean
 * over its masked tokens (0 for a view without any), then the mean over views and samples.
 *
 * Only the masked rows are passed: with the weights w_r = 1 / (G max(count, 1)) of their
 * group folded into the targets, one soft cross-entropy over the M rows gives the loss. */
#include "losses_internal.h"

/* targets: teacher holds the targets themselves (probabilities) */
static ssl_tensor_t *ibot(ssl_ctx_t *ctx, ssl_tensor_t *student, ssl_tensor_t *teacher,
                          const int32_t *counts, int64_t n_groups, ssl_tensor_t *center,
                          float student_temp, float teacher_temp, int targets)
{
    const char *L = targets ? "ibot_patch_targets" : "ibot_patch";
    if (SSL__NULL_INPUT(student, L) || SSL__NULL_INPUT(teacher, L))
        return NULL;
    if (!ctx || !counts)
        return ssl__loss_fail_status(SSL_ERR_INVALID, L, "NULL %s", ctx ? "counts" : "context");
    if (!ssl__loss_check_pair(L, "student", student, "teacher", teacher, 1) ||
        !ssl__loss_check_pos(L, "student_temp", student_temp) ||
        (!targets && !ssl__loss_check_pos(L, "teacher_temp", teacher_temp)))
        return NULL;
    char a[64];
    const int64_t M = student->shape[0], K = student->shape[1];
    if (center && center->numel != K)
        return ssl__loss_fail(L, "center %s must have %lld elements", LSHAPE(center, a),
                              (long long)K);
    if (n_groups < 1)
        return ssl__loss_fail_status(SSL_ERR_INVALID, L, "n_groups %lld < 1", (long long)n_groups);
    int64_t total = 0;
    for (int64_t g = 0; g < n_groups; g++) {
        if (counts[g] < 0)
            return ssl__loss_fail_status(SSL_ERR_INVALID, L, "counts[%lld] = %d < 0", (long long)g,
                                         (int)counts[g]);
        total += counts[g];
    }
    if (total != M)
        return ssl__loss_fail(L, "the counts sum to %lld, student %s has %lld rows",
                              (long long)total, LSHAPE(student, a), (long long)M);
    ssl_tensor_t *pt = targets ? ssl__loss_sg(ctx, teacher)
                               : ssl__loss_teacher_probs(ctx, teacher, center, teacher_temp);
    ssl_tensor_t *tgt = ssl_tensor_new(ctx, 2, student->shape); // (M, K)
    if (!pt || !tgt)
        return NULL;
    /* cross_entropy_soft divides by M: row r's target gets M w_r */
    for (int64_t g = 0, r = 0; g < n_groups; g++) {
        float w = (float)((double)M / ((double)n_groups * (double)counts[g]));
        for (int32_t i = 0; i < counts[g]; i++, r++)
            for (int64_t j = 0; j < K; j++)
                tgt->data[r * K + j] = pt->data[r * K + j] * w;
    }
    return ssl_cross_entropy_soft(ctx, ssl_scale(ctx, student, 1.0f / student_temp, 0.0f), tgt);
}

ssl_tensor_t *ssl_loss_ibot_patch(ssl_ctx_t *ctx, ssl_tensor_t *student, ssl_tensor_t *teacher,
                                  const int32_t *counts, int64_t n_groups, ssl_tensor_t *center,
                                  float student_temp, float teacher_temp)
{
    return ibot(ctx, student, teacher, counts, n_groups, center, student_temp, teacher_temp, 0);
}

ssl_tensor_t *ssl_loss_ibot_patch_targets(ssl_ctx_t *ctx, ssl_tensor_t *student,
                                          ssl_tensor_t *targets, const int32_t *counts,
                                          int64_t n_groups, float student_temp)
{
    return ibot(ctx, student, targets, counts, n_groups, NULL, student_temp, 1.0f, 1);
}
