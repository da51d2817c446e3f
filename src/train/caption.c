/* Captions with a CoCa checkpoint: the method's greedy decoder over the first images of a split,
 * token ids turned into words with the checkpoint's vocabulary (sslc caption). */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include "ckpt_model.h"

#include <stdlib.h>
#include <string.h>

#include "features.h"
#include "ssl/heads.h"

/* The words of one row of token ids (after <sos>, up to <eos>), space-separated, malloc'd. */
static char *decode_row(const ssl_vocab_t *v, const float *ids, int64_t L)
{
    size_t cap = 64, len = 0;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    s[0] = '\0';
    for (int64_t i = 1; i < L; i++) {
        int32_t id = (int32_t)ids[i];
        if (id == SSL_VOCAB_EOS || id == SSL_VOCAB_PAD)
            break;
        const char *w = ssl_vocab_token(v, id);
        size_t wl = strlen(w ? w : "?");
        if (len + wl + 2 > cap) {
            cap = 2 * (len + wl + 2);
            char *t = realloc(s, cap);
            if (!t) {
                free(s);
                return NULL;
            }
            s = t;
        }
        if (len)
            s[len++] = ' ';
        memcpy(s + len, w ? w : "?", wl + 1);
        len += wl;
    }
    return s;
}

int ssl_caption_checkpoint(const ssl_caption_opts_t *o, ssl_captions_t *out)
{
    if (SSL__IS_NULL(out, __func__))
        return SSL_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (SSL__IS_NULL(o, __func__) || SSL__IS_NULL(o->checkpoint, __func__))
        return SSL_ERR_INVALID;
    if (o->n < 0)
        return ssl_set_error(SSL_ERR_INVALID, "caption: n %lld must be >= 0", (long long)o->n);
    int64_t n = o->n ? o->n : 8;
    ssl_ckpt_model_t cm;
    ssl_vocab_t *v = NULL;
    float *ids = NULL;
    int st = ssl__ckpt_model_open(&cm, o->checkpoint, o->split, n, 0, NULL);
    if (st != SSL_OK)
        goto done;
    const char *vs = ssl__method_vocab(cm.m);
    int64_t L = 0;
    n = cm.ds->n;
    ids = ssl__extract(cm.m, cm.ctx, &cm.rc.eval_view, cm.ds, n, 0, 0, ssl__method_caption_ids,
                       &L);
    if (!ids || !vs || !(v = ssl_vocab_from_string(vs))) {
        st = ssl_last_status() ? ssl_last_status() : SSL_ERR_STATE;
        goto done;
    }
    out->text = calloc((size_t)n, sizeof(char *));
    out->reference = calloc((size_t)n, sizeof(char *));
    out->labels = cm.ds->labels ? malloc((size_t)n * sizeof(int32_t)) : NULL;
    if (!out->text || !out->reference || (cm.ds->labels && !out->labels)) {
        st = ssl_set_error(SSL_ERR_NOMEM, "caption: out of memory");
        goto done;
    }
    out->n = n;
    for (int64_t i = 0; i < n; i++) {
        const char *ref = cm.ds->captions ? cm.ds->captions[i] : NULL;
        if (!(out->text[i] = decode_row(v, ids + i * L, L)) ||
            (ref && !(out->reference[i] = strdup(ref)))) {
            st = ssl_set_error(SSL_ERR_NOMEM, "caption: out of memory");
            goto done;
        }
        if (out->labels)
            out->labels[i] = cm.ds->labels[i];
    }
done:
    if (st != SSL_OK)
        ssl_captions_free(out);
    free(ids);
    ssl_vocab_free(v);
    ssl__ckpt_model_close(&cm);
    return st;
}

void ssl_captions_free(ssl_captions_t *c)
{
    if (!c)
        return;
    for (int64_t i = 0; i < c->n; i++) {
        free(c->text ? c->text[i] : NULL);
        free(c->reference ? c->reference[i] : NULL);
    }
    free(c->text);
    free(c->reference);
    free(c->labels);
    memset(c, 0, sizeof *c);
}
