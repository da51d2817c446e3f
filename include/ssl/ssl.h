/* libssl: self-supervised visual representation learning in C. The umbrella header. */
#ifndef SSL_SSL_H
#define SSL_SSL_H

#include "ssl/core.h"
#include "ssl/eval.h"
#include "ssl/io.h"
#include "ssl/models.h"
#include "ssl/nn.h"

#endif
