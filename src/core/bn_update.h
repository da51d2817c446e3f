/* Recomputing BatchNorm statistics (sslc --bn-stats, as torch.optim.swa_utils.update_bn): while
 * a context has it on, a batch norm layer run in eval mode normalises with the statistics of
 * its batch and folds them into its running statistics as a cumulative average over the
 * batches it has seen since its num_batches_tracked was 0, weighted by batch size (momentum
 * b / (n + b) for a batch of b after n samples; num_batches_tracked counts the samples).
 * Internal header: core keeps the flag, src/nn/nn.c acts on it. */
#ifndef SSL_CORE_BN_UPDATE_H
#define SSL_CORE_BN_UPDATE_H

#include "ssl/core.h"

/* Turns it on (1) or off (0); returns the previous setting. */
int ssl__ctx_set_bn_update(ssl_ctx_t *ctx, int on);
int ssl__ctx_bn_update(const ssl_ctx_t *ctx);

#endif
