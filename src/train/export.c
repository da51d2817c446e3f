/* sslc export: a training checkpoint's encoder alone, under torchvision's / timm's names. */
#include "trainer_internal.h"

#include <stdlib.h>
#include <string.h>

#include "models/encoder_config.h"

/* The checkpoint's model.encoder section without "weights" (the export holds the trained
 * weights, not the file they started from), as one line of JSON (malloc'd). */
static char *encoder_json(const cJSON *doc)
{
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(doc, "model");
    cJSON *enc = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(model, "encoder"), 1);
    cJSON_DeleteItemFromObjectCaseSensitive(enc, "weights");
    char *text = enc ? cJSON_PrintUnformatted(enc) : NULL;
    cJSON_Delete(enc);
    return text;
}

static int export_encoder(ssl_st_t *f, cJSON *doc, const char *checkpoint, const char *source,
                          const char *out_path)
{
    int err = 0, st;
    ssl_cfg_t root = ssl_cfg_root(doc, checkpoint, &err, 0);
    ssl_run_cfg_t rc;
    if ((st = ssl__run_cfg_read(&root, &rc)) != SSL_OK)
        return st;
    ssl_cfg_t model = ssl_cfg_obj(&root, "model");
    if (!ssl_cfg_has(&model, "encoder")) /* a family with a network of its own (ddpm, pixelcnn) */
        return ssl_set_error(SSL_ERR_UNSUPPORTED, "export: %s has no encoder to export (its "
                             "method's network is not an encoder: model.%s)", checkpoint,
                             ssl_cfg_has(&model, "unet")      ? "unet"
                             : ssl_cfg_has(&model, "network") ? "network"
                                                              : "?");
    ssl_cfg_t ec = ssl_cfg_obj(&model, "encoder");
    ssl_encoder_cfg_t cfg;
    const char *weights;
    if ((st = ssl__encoder_cfg_read(&ec, &cfg, &weights)) != SSL_OK)
        return st;
    int target = source ? !strcmp(source, "target") : rc.eval_target;
    if (source && !target && strcmp(source, "online"))
        return ssl_set_error(SSL_ERR_INVALID, "export: encoder source '%s' (online or target)",
                             source);
    const char *prefix = target ? "target.encoder" : "encoder";
    ssl_params_t *p = ssl_params_create();
    ssl_encoder_t *e = p ? ssl_encoder_create(&cfg, p, prefix, 0) : NULL;
    char *json = encoder_json(doc);
    if (!e || !json) {
        st = ssl_last_status() ? ssl_last_status()
                               : ssl_set_error(SSL_ERR_NOMEM, "export: "
                                                              "out of memory");
        goto done;
    }
    if (ssl_st_find(f, ssl_params_info(p, 0)->name) < 0) {
        st = ssl_set_error(SSL_ERR_FORMAT, "%s: no %s encoder (no tensor %s)%s", checkpoint,
                           target ? "target" : "online", ssl_params_info(p, 0)->name,
                           target ? ": only runs with an EMA target (target.type 'ema') have one"
                                  : "");
        goto done;
    }
    /* strict on the encoder: every parameter there with its shape */
    if ((st = ssl_st_load_params(f, p, "", SSL_ST_ALLOW_UNEXPECTED, NULL)) == SSL_OK)
        st = ssl_encoder_save_weights(e, out_path, json);
done:
    free(json);
    ssl_encoder_free(e);
    ssl_params_free(p);
    return st;
}

int ssl_checkpoint_export_encoder(const char *checkpoint, const char *source, const char *out_path)
{
    if (!checkpoint || !out_path)
        return ssl_set_error(SSL_ERR_INVALID, "export: NULL checkpoint or output path");
    ssl_st_t *f = ssl_st_open(checkpoint);
    if (!f)
        return ssl_last_status();
    cJSON *doc = ssl__run_cfg_from_checkpoint(f, checkpoint);
    int st = doc ? export_encoder(f, doc, checkpoint, source, out_path) : ssl_last_status();
    cJSON_Delete(doc);
    ssl_st_close(f);
    return st;
}
