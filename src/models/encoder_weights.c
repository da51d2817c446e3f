/* An encoder's weights in and out under torchvision's (ResNet) and timm's (ViT) names.
 *
 * The name mapping lives here, once, for import and export: resnet.c and vit.c already name
 * every parameter as torchvision and timm do (conv1.weight, layer1.0.downsample.1.running_var,
 * patch_embed.proj.weight, blocks.0.attn.qkv.weight, ...) under the encoder's prefix
 * ("encoder." in a training run), so a name maps to theirs by dropping that prefix. What the
 * mapping adds is the tensors of their files that are not the encoder's: BatchNorm's
 * num_batches_tracked (a counter: ignored on import, written as torchvision's I64 scalar on
 * export so load_state_dict(strict=True) finds it) and the classifiers (torchvision's fc.*,
 * timm's head.*: skipped on import, and the log says so). */
#include "models_internal.h"

#include "io/io_internal.h"
#include "ssl/io.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum ext_kind { EXT_ENCODER, EXT_COUNTER, EXT_CLASSIFIER } ext_kind_t;

static const char k_counter[] = "num_batches_tracked";
static const char *const k_classifiers[] = {"fc.", "head."};

/* The torchvision / timm name of one of the encoder's parameters. */
static const char *external_name(const ssl_encoder_t *e, const char *name)
{
    size_t n = strlen(e->prefix);
    return strncmp(name, e->prefix, n) ? name : name + n;
}

static ext_kind_t external_kind(const char *ext)
{
    size_t n = strlen(ext), k = sizeof k_counter - 1;
    if (n >= k && !strcmp(ext + n - k, k_counter) && (n == k || ext[n - k - 1] == '.'))
        return EXT_COUNTER;
    for (size_t i = 0; i < sizeof k_classifiers / sizeof k_classifiers[0]; i++)
        if (!strncmp(ext, k_classifiers[i], strlen(k_classifiers[i])))
            return EXT_CLASSIFIER;
    return EXT_ENCODER;
}

/* ---------------------------------------------------------------- import */

#define SHOWN 3 /* entries of each kind named in the error message (all go to the log) */

/* One kind of problem: its count and the first SHOWN entries, "; "-separated. */
typedef struct problems {
    const char *what;
    int n;
    char text[320];
} problems_t;

static void problem(problems_t *p, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void problem(problems_t *p, const char *fmt, ...)
{
    char line[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    ssl_logf(SSL_LOG_DEBUG, "weights: %s %s", p->what, line);
    if (p->n++ < SHOWN) {
        size_t len = strlen(p->text);
        snprintf(p->text + len, sizeof p->text - len, "%s%s", len ? "; " : "", line);
    }
}

static void describe(char *msg, size_t cap, const problems_t *p)
{
    if (!p->n)
        return;
    size_t len = strlen(msg);
    snprintf(msg + len, cap - len, "%s%d %s: %s%s", len ? "; " : "", p->n, p->what, p->text,
             p->n > SHOWN ? "; ..." : "");
}

/* Which tensor of f each of e's parameters takes (-1: none, a counter), with the problems. */
static int match_tensors(const ssl_encoder_t *e, const ssl_st_t *f, int *src, problems_t *shape,
                         problems_t *missing, problems_t *unexpected, problems_t *skipped)
{
    int n_file = ssl_st_count(f);
    unsigned char *used = calloc((size_t)n_file + 1, 1);
    if (!used)
        return ssl_set_error(SSL_ERR_NOMEM, "%s: out of memory", ssl_st_path(f));
    char a[160], b[160];
    for (int i = 0; i < e->n_params; i++) {
        const ssl_param_info_t *in = ssl_params_info(e->params, e->first_param + i);
        const char *ext = external_name(e, in->name);
        int j = ssl_st_find(f, ext);
        src[i] = -1;
        if (j >= 0)
            used[j] = 1;
        if (external_kind(ext) == EXT_COUNTER)
            continue;
        if (j < 0) {
            problem(missing, "%s %s", ext, ssl__shape_text(in->t->ndim, in->t->shape, a, sizeof a));
            continue;
        }
        const ssl_st_tensor_t *t = ssl_st_tensor(f, j);
        int same = t->ndim == in->t->ndim;
        for (int d = 0; same && d < t->ndim; d++)
            same = t->shape[d] == in->t->shape[d];
        if (same)
            src[i] = j;
        else
            problem(shape, "%s: file %s vs encoder %s", ext,
                    ssl__shape_text(t->ndim, t->shape, a, sizeof a),
                    ssl__shape_text(in->t->ndim, in->t->shape, b, sizeof b));
    }
    for (int j = 0; j < n_file; j++) {
        const ssl_st_tensor_t *t = ssl_st_tensor(f, j);
        ext_kind_t k = external_kind(t->name);
        if (!used[j] && k != EXT_COUNTER)
            problem(k == EXT_CLASSIFIER ? skipped : unexpected, "%s %s", t->name,
                    ssl__shape_text(t->ndim, t->shape, a, sizeof a));
    }
    free(used);
    return SSL_OK;
}

int ssl_encoder_load_weights(ssl_encoder_t *e, const char *path)
{
    if (!e || !path)
        return ssl_set_error(SSL_ERR_INVALID, "ssl_encoder_load_weights: NULL encoder or path");
    ssl_st_t *f = ssl_st_open(path);
    if (!f)
        return ssl_last_status();
    int *src = malloc(((size_t)e->n_params + 1) * sizeof *src);
    problems_t shape = {"mis-shaped", 0, ""}, missing = {"missing", 0, ""},
               unexpected = {"unexpected", 0, ""}, skipped = {"skipped", 0, ""};
    int st = src ? match_tensors(e, f, src, &shape, &missing, &unexpected, &skipped)
                 : ssl_set_error(SSL_ERR_NOMEM, "%s: out of memory", path);
    if (st == SSL_OK && (shape.n || missing.n || unexpected.n)) {
        char msg[900] = "";
        describe(msg, sizeof msg, &shape);
        describe(msg, sizeof msg, &missing);
        describe(msg, sizeof msg, &unexpected);
        /* a training checkpoint names the encoder "encoder.conv1.weight" */
        char hint[160];
        snprintf(hint, sizeof hint, "encoder.%s",
                 external_name(e, ssl_params_info(e->params, e->first_param)->name));
        int ckpt = missing.n && ssl_st_find(f, hint) >= 0;
        st = ssl_set_error(SSL_ERR_FORMAT,
                           "%s: the tensors do not fit the %s encoder (names as torchvision's "
                           "ResNet / timm's ViT state_dict): %s%s",
                           path, ssl__encoder_kind_name(e), msg,
                           ckpt ? " (this is a training checkpoint: `sslc export CKPT --out "
                                  "FILE` writes its encoder alone)"
                                : "");
    }
    if (st == SSL_OK && skipped.n)
        ssl_logf(SSL_LOG_INFO, "%s: skipped %d classifier tensor%s, not part of the encoder: %s%s",
                 path, skipped.n, skipped.n == 1 ? "" : "s", skipped.text,
                 skipped.n > SHOWN ? "; ..." : "");
    int loaded = 0;
    for (int i = 0; st == SSL_OK && i < e->n_params; i++) {
        if (src[i] < 0)
            continue;
        ssl_tensor_t *t = ssl_params_info(e->params, e->first_param + i)->t;
        st = ssl_st_read_f32(f, src[i], t->data, (size_t)t->numel);
        loaded++;
    }
    if (st == SSL_OK)
        ssl_logf(SSL_LOG_INFO, "%s: loaded %d encoder tensors", path, loaded);
    free(src);
    ssl_st_close(f);
    return st;
}

/* ---------------------------------------------------------------- export */

int ssl_encoder_save_weights(const ssl_encoder_t *e, const char *path, const char *encoder_json)
{
    if (!e || !path)
        return ssl_set_error(SSL_ERR_INVALID, "ssl_encoder_save_weights: NULL encoder or path");
    ssl_st_writer_t *w = ssl_st_writer_create();
    int64_t *counts = malloc(((size_t)e->n_params + 1) * sizeof *counts);
    int st = w && counts ? SSL_OK : ssl_set_error(SSL_ERR_NOMEM, "%s: out of memory", path);
    for (int i = 0; st == SSL_OK && i < e->n_params; i++) {
        const ssl_param_info_t *in = ssl_params_info(e->params, e->first_param + i);
        const char *ext = external_name(e, in->name);
        if (external_kind(ext) == EXT_COUNTER) {
            counts[i] = (int64_t)in->t->data[0];
            st = ssl_st_writer_add_raw(w, ext, SSL_DTYPE_I64, 0, NULL, &counts[i]);
        } else {
            st = ssl_st_writer_add(w, ext, in->t->ndim, in->t->shape, in->t->data);
        }
    }
    if (st == SSL_OK)
        st = ssl_st_writer_meta(w, "format", "pt");
    if (st == SSL_OK && encoder_json)
        st = ssl_st_writer_meta(w, SSL_WEIGHTS_META_ENCODER, encoder_json);
    if (st == SSL_OK)
        st = ssl_st_writer_save(w, path);
    ssl_st_writer_free(w);
    free(counts);
    return st;
}
