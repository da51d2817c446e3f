/* libssl: self-supervised visual representation learning in C. The umbrella header. */
#ifndef SSL_SSL_H
#define SSL_SSL_H

#include "ssl/core.h"
#include "ssl/data.h"
#include "ssl/eval.h"
#include "ssl/heads.h"
#include "ssl/io.h"
#include "ssl/losses.h"
#include "ssl/models.h"
#include "ssl/nn.h"
#include "ssl/optim.h"
#include "ssl/train.h"

#endif
