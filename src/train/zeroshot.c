/* Zero-shot classification with a CLIP / SigLIP checkpoint: one prompt per class name through
 * the text tower, every image through the encoder and the image projection, the nearest prompt
 * by cosine similarity (eval layer). */
#include "ckpt_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ssl/eval.h"

static int check_template(const char *tmpl)
{
    const char *at = strstr(tmpl, "{}");
    if (!at || strstr(at + 2, "{}"))
        return ssl_set_error(SSL_ERR_INVALID, "zeroshot: the prompt template '%s' must contain "
                             "'{}' (the class name) exactly once", tmpl);
    return SSL_OK;
}

static const char *loss_type(const cJSON *doc)
{
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(doc, "loss");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(l, "type");
    return cJSON_IsString(t) ? t->valuestring : "?";
}

/* Text embeddings of the class prompts, (C, E) malloc'd. */
static float *class_embeddings(ssl_ckpt_model_t *cm, const char *tmpl, int64_t *unknown,
                               int64_t *dim)
{
    const ssl_dataset_t *ds = cm->ds;
    int C = ds->n_classes;
    char **prompts = calloc((size_t)C, sizeof *prompts);
    float *out = NULL;
    int ok = prompts != NULL;
    for (int c = 0; ok && c < C; c++)
        ok = (prompts[c] = ssl__fill_prompt(tmpl, ds->class_names[c])) != NULL;
    if (!ok) {
        ssl_set_error(SSL_ERR_NOMEM, "zeroshot: out of memory");
    } else {
        ssl_ctx_reset(cm->ctx);
        ssl_tensor_t *t = ssl__method_text_embed(cm->m, cm->ctx, (const char *const *)prompts,
                                                 C, unknown);
        if (t && (out = malloc((size_t)(C * t->shape[1]) * sizeof(float)))) {
            *dim = t->shape[1];
            memcpy(out, t->data, (size_t)(C * t->shape[1]) * sizeof(float));
        } else if (t) {
            ssl_set_error(SSL_ERR_NOMEM, "zeroshot: out of memory");
        }
        ssl_ctx_reset(cm->ctx);
    }
    for (int c = 0; prompts && c < C; c++)
        free(prompts[c]);
    free(prompts);
    return out;
}

int ssl_zeroshot_checkpoint(const ssl_zeroshot_opts_t *o, ssl_zeroshot_result_t *res,
                            int64_t *unknown_words)
{
    if (SSL__IS_NULL(o, __func__) || SSL__IS_NULL(res, __func__))
        return SSL_ERR_INVALID;
    const char *tmpl = o->prompt ? o->prompt : SSL_ZEROSHOT_PROMPT;
    if (check_template(tmpl) != SSL_OK)
        return ssl_last_status();
    ssl_ckpt_model_t cm;
    float *classes = NULL, *images = NULL;
    int64_t dim = 0, unknown = 0;
    int st = ssl__ckpt_model_open(&cm, o->checkpoint, o->split, o->limit, 0, NULL);
    if (st != SSL_OK)
        goto done;
    if (!ssl__method_is_clip(cm.m)) {
        st = ssl_set_error(SSL_ERR_UNSUPPORTED, "%s: zero-shot classification needs a clip, "
                           "siglip or coca checkpoint (a text tower); this one was trained with "
                           "loss '%s'", o->checkpoint, loss_type(cm.doc));
        goto done;
    }
    const ssl_dataset_t *ds = cm.ds;
    if (!ds->labels || !ds->class_names || ds->n_classes < 2) {
        st = ssl_set_error(SSL_ERR_CONFIG, "%s: zero-shot classification needs a labelled "
                           "dataset with class names (data.dataset '%s')", o->checkpoint,
                           cm.rc.dataset);
        goto done;
    }
    classes = class_embeddings(&cm, tmpl, &unknown, &dim);
    int64_t idim = 0;
    images = classes ? ssl__extract(cm.m, cm.ctx, &cm.rc.eval_view, ds, ds->n, 0, 0,
                                    ssl__method_image_embed, &idim)
                     : NULL;
    if (!images) {
        st = ssl_last_status();
        goto done;
    }
    ssl_features_t f = {images, ds->labels, ds->n, dim};
    st = ssl_zeroshot_eval(&f, classes, ds->n_classes, res, NULL);
    if (unknown_words)
        *unknown_words = unknown;
done:
    free(classes);
    free(images);
    ssl__ckpt_model_close(&cm);
    return st;
}
