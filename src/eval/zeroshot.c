/* Zero-shot classification: each image embedding goes to the class embedding (e.g. the text
 * embedding of "a photo of a {class}") with the highest cosine similarity. */
#include "eval_internal.h"

#include <math.h>
#include <stdlib.h>

int ssl_zeroshot_eval(const ssl_features_t *images, const float *classes, int n_classes,
                      ssl_zeroshot_result_t *res, int32_t *pred)
{
    const char *fn = "zeroshot";
    if (!images || !res)
        return ssl_set_error(SSL_ERR_INVALID, "%s: images and result must not be NULL", fn);
    if (n_classes < 1)
        return ssl_set_error(SSL_ERR_INVALID, "%s: n_classes is %d; need >= 1", fn, n_classes);
    int st = ssl__eval_check_features(fn, "images", images, n_classes);
    if (st == SSL_OK)
        st = ssl__eval_check_matrix(fn, "classes", classes, n_classes, images->dim);
    if (st != SSL_OK)
        return st;
    const int64_t n = images->n, d = images->dim, C = n_classes;
    double *cnorm = malloc((size_t)C * sizeof(double)); // (C)
    double *sim = malloc((size_t)C * sizeof(double));  // (C)
    if (!cnorm || !sim) {
        free(cnorm), free(sim);
        return ssl_set_error(SSL_ERR_NOMEM, "%s: out of memory", fn);
    }
    for (int64_t c = 0; c < C; c++) { /* in double: equal cosines stay equal (ties) */
        double ss = 0;
        for (int64_t j = 0; j < d; j++)
            ss += (double)classes[c * d + j] * classes[c * d + j];
        cnorm[c] = fmax(sqrt(ss), 1e-12);
    }
    int64_t hit1 = 0, hit5 = 0;
    for (int64_t i = 0; i < n; i++) {
        const float *x = images->x + i * d;
        /* the image's own norm does not change its ranking of the classes */
        int best = 0;
        for (int64_t c = 0; c < C; c++) {
            double dot = 0;
            for (int64_t j = 0; j < d; j++)
                dot += (double)x[j] * classes[c * d + j];
            sim[c] = dot / cnorm[c];
            if (sim[c] > sim[best])
                best = (int)c;
        }
        int y = images->labels[i], above = 0;
        for (int64_t c = 0; c < C; c++) /* ties rank the lower class index first */
            above += sim[c] > sim[y] || (sim[c] == sim[y] && c < y);
        hit1 += best == y;
        hit5 += above < 5;
        if (pred)
            pred[i] = best;
    }
    res->n = n;
    res->top1 = n ? (double)hit1 / (double)n : 0.0;
    res->top5 = C > 5 && n ? (double)hit5 / (double)n : -1.0;
    free(cnorm);
    free(sim);
    return SSL_OK;
}
