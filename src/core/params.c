/* The long-lived parameter store: every trainable parameter in one data buffer with one
 * matching gradient buffer, buffers (running statistics) in a third, each with a stable name. */
#include "core_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct ssl_params {
    ssl_param_info_t *info;
    int n, cap;
    float *data, *grad; /* trainable: n_train floats each */
    size_t n_train, cap_train;
    float *buf; /* buffers */
    size_t n_buf, cap_buf;
};

ssl_params_t *ssl_params_create(void)
{
    ssl_params_t *p = calloc(1, sizeof *p);
    if (!p)
        ssl_set_error(SSL_ERR_NOMEM, "ssl_params_create: out of memory");
    return p;
}

void ssl_params_free(ssl_params_t *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->n; i++) {
        free((char *)p->info[i].name);
        free(p->info[i].t);
    }
    free(p->info);
    free(p->data);
    free(p->grad);
    free(p->buf);
    free(p);
}

/* Grow a float buffer to hold `need` floats, zero-filling the new part. */
static int grow(float **buf, size_t *cap, size_t used, size_t need)
{
    if (need <= *cap)
        return SSL_OK;
    size_t c = *cap ? *cap : 1024;
    while (c < need)
        c *= 2;
    float *b = realloc(*buf, c * sizeof(float));
    if (!b)
        return ssl_set_error(SSL_ERR_NOMEM, "parameter store: cannot grow to %zu floats", c);
    memset(b + used, 0, (c - used) * sizeof(float));
    *buf = b;
    *cap = c;
    return SSL_OK;
}

static void repoint(ssl_params_t *p)
{
    for (int i = 0; i < p->n; i++) {
        ssl_param_info_t *in = &p->info[i];
        if (in->kind == SSL_PARAM_TRAINABLE) {
            in->t->data = p->data + in->offset;
            in->t->grad = p->grad + in->offset;
        } else {
            in->t->data = p->buf + in->offset;
            in->t->grad = NULL;
        }
    }
}

ssl_tensor_t *ssl_params_add(ssl_params_t *p, const char *name, int ndim, const int64_t *shape,
                             int kind, int flags)
{
    if (!p || !name || !*name) {
        ssl_set_error(SSL_ERR_INVALID, "ssl_params_add: NULL store or empty name");
        return NULL;
    }
    if (kind != SSL_PARAM_TRAINABLE && kind != SSL_PARAM_BUFFER) {
        ssl_set_error(SSL_ERR_INVALID,
                      "ssl_params_add '%s': kind %d is neither SSL_PARAM_TRAINABLE nor "
                      "SSL_PARAM_BUFFER",
                      name, kind);
        return NULL;
    }
    if (ssl_params_get(p, name)) {
        ssl_set_error(SSL_ERR_INVALID, "ssl_params_add: duplicate parameter name '%s'", name);
        return NULL;
    }
    if (ndim < 0 || ndim > SSL_MAX_DIMS || (ndim > 0 && !shape)) {
        ssl_set_error(SSL_ERR_INVALID, "ssl_params_add '%s': rank %d outside 0..%d", name, ndim,
                      SSL_MAX_DIMS);
        return NULL;
    }
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] <= 0 || numel > (int64_t)(PTRDIFF_MAX / sizeof(float)) / shape[i]) {
            ssl_set_error(SSL_ERR_INVALID, "ssl_params_add '%s': dimension %d is %lld%s", name, i,
                          (long long)shape[i], shape[i] > 0 ? " (too many elements)" : "");
            return NULL;
        }
        numel *= shape[i];
    }
    if (p->n == p->cap) {
        int c = p->cap ? p->cap * 2 : 64;
        ssl_param_info_t *in = realloc(p->info, (size_t)c * sizeof *in);
        if (!in) {
            ssl_set_error(SSL_ERR_NOMEM, "ssl_params_add '%s': out of memory", name);
            return NULL;
        }
        p->info = in;
        p->cap = c;
    }
    ssl_tensor_t *t = calloc(1, sizeof *t);
    char *nm = malloc(strlen(name) + 1);
    if (!t || !nm) {
        free(t);
        free(nm);
        ssl_set_error(SSL_ERR_NOMEM, "ssl_params_add '%s': out of memory", name);
        return NULL;
    }
    strcpy(nm, name);
    size_t offset;
    if (kind == SSL_PARAM_TRAINABLE) {
        size_t old_cap = p->cap_train;
        if (grow(&p->data, &p->cap_train, p->n_train, p->n_train + (size_t)numel) != SSL_OK ||
            (p->cap_train != old_cap &&
             grow(&p->grad, &old_cap, p->n_train, p->cap_train) != SSL_OK)) {
            free(t);
            free(nm);
            return NULL;
        }
        offset = p->n_train;
        p->n_train += (size_t)numel;
    } else {
        if (grow(&p->buf, &p->cap_buf, p->n_buf, p->n_buf + (size_t)numel) != SSL_OK) {
            free(t);
            free(nm);
            return NULL;
        }
        offset = p->n_buf;
        p->n_buf += (size_t)numel;
    }
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->shape[i] = shape[i];
    t->numel = numel;
    t->node = -1;
    t->name = nm;
    t->requires_grad = kind == SSL_PARAM_TRAINABLE && !(flags & SSL_PARAM_FROZEN);
    p->info[p->n++] = (ssl_param_info_t){nm, t, kind, flags, offset};
    repoint(p);
    return t;
}

ssl_tensor_t *ssl_params_get(const ssl_params_t *p, const char *name)
{
    if (SSL__IS_NULL(p, __func__) || SSL__IS_NULL(name, __func__))
        return NULL;
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->info[i].name, name) == 0)
            return p->info[i].t;
    return NULL;
}

int ssl_params_count(const ssl_params_t *p)
{
    return SSL__IS_NULL(p, __func__) ? 0 : p->n;
}

const ssl_param_info_t *ssl_params_info(const ssl_params_t *p, int i)
{
    if (SSL__IS_NULL(p, __func__))
        return NULL;
    if (i < 0 || i >= p->n) {
        ssl_set_error(SSL_ERR_INVALID, "ssl_params_info: index %d outside 0..%d", i, p->n - 1);
        return NULL;
    }
    return &p->info[i];
}

float *ssl_params_data(ssl_params_t *p, size_t *n_floats)
{
    if (SSL__IS_NULL(p, __func__))
        return NULL;
    if (n_floats)
        *n_floats = p->n_train;
    return p->data;
}

float *ssl_params_grad(ssl_params_t *p, size_t *n_floats)
{
    if (SSL__IS_NULL(p, __func__))
        return NULL;
    if (n_floats)
        *n_floats = p->n_train;
    return p->grad;
}

float *ssl_params_buffers(ssl_params_t *p, size_t *n_floats)
{
    if (SSL__IS_NULL(p, __func__))
        return NULL;
    if (n_floats)
        *n_floats = p->n_buf;
    return p->buf;
}

void ssl_params_zero_grad(ssl_params_t *p)
{
    if (!SSL__IS_NULL(p, __func__) && p->grad)
        memset(p->grad, 0, p->n_train * sizeof(float));
}

int ssl_params_set_frozen(ssl_params_t *p, const char *prefix, int frozen)
{
    if (SSL__IS_NULL(p, __func__) || SSL__IS_NULL(prefix, __func__))
        return SSL_ERR_INVALID;
    size_t len = strlen(prefix);
    int count = 0;
    for (int i = 0; i < p->n; i++) {
        ssl_param_info_t *in = &p->info[i];
        if (in->kind != SSL_PARAM_TRAINABLE || strncmp(in->name, prefix, len) != 0)
            continue;
        in->flags = frozen ? (in->flags | SSL_PARAM_FROZEN) : (in->flags & ~SSL_PARAM_FROZEN);
        in->t->requires_grad = !frozen;
        count++;
    }
    return count;
}
