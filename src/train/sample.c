/* Samples of a generative checkpoint as a PNG grid (sslc sample): the method's pictures hook,
 * without the data beyond one image (its channels and size come from the config). */
#include "ckpt_model.h"

#include <string.h>

int ssl_sample_checkpoint(const ssl_sample_opts_t *o)
{
    if (SSL__IS_NULL(o, __func__) || SSL__IS_NULL(o->checkpoint, __func__) ||
        SSL__IS_NULL(o->out_path, __func__))
        return SSL_ERR_INVALID;
    if (o->n < 0 || o->n > 4096 || o->cols < 0 || o->cols > 256 || o->steps < 0)
        return ssl_set_error(SSL_ERR_INVALID, "sample: n %lld (0..4096), cols %d (0..256) and "
                             "steps %d (>= 0) out of range", (long long)o->n, o->cols, o->steps);
    int64_t n = o->n ? o->n : 64;
    ssl_ckpt_model_t cm;
    int st = ssl__ckpt_model_open(&cm, o->checkpoint, NULL, 1, 0, NULL);
    if (st == SSL_OK && !ssl__method_has_pictures(cm.m))
        st = ssl_set_error(SSL_ERR_UNSUPPORTED, "%s: the %s method draws no samples (sample "
                           "takes a checkpoint of vae, betavae, dcgan, bigan or ddpm)",
                           o->checkpoint, ssl__method_name(cm.m));
    if (st == SSL_OK)
        st = ssl__method_set_sample_steps(cm.m, o->steps);
    ssl_tensor_t *recon = NULL, *s = NULL;
    if (st == SSL_OK)
        st = ssl__method_pictures(cm.m, cm.ctx, NULL, n, o->seed, &recon, &s);
    if (st == SSL_OK && !s) /* pictures without samples: the vqvae tokenizer */
        st = ssl_set_error(SSL_ERR_UNSUPPORTED, "%s: the %s method draws no samples (no prior "
                           "over its codes)", o->checkpoint, ssl__method_name(cm.m));
    if (st == SSL_OK)
        st = ssl_image_grid_png(o->out_path, s->data, s->shape[0], s->shape[1], s->shape[2],
                                s->shape[3], o->cols ? o->cols : 8, 2);
    ssl__ckpt_model_close(&cm);
    return st;
}
