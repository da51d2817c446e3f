/* The data of a run config: dataset splits and class-name captions (train layer, below the
 * trainer, checkpoint use and zero-shot, which all call it). */
#ifndef SSL_TRAIN_RUN_DATA_H
#define SSL_TRAIN_RUN_DATA_H

#include "run_config.h"
#include "ssl/data.h"

/* The configured dataset's split (limit 0: all) and captions from class names. */
ssl_dataset_t *ssl__load_split(const ssl_run_cfg_t *rc, const char *split, int64_t limit);
int ssl__add_class_captions(ssl_dataset_t *ds);
/* tmpl with its first "{}" replaced by name (malloc'd), e.g. SSL_ZEROSHOT_PROMPT: the caption
 * template of data.captions "class_names" and of zero-shot prompts. */
char *ssl__fill_prompt(const char *tmpl, const char *name);

#endif
