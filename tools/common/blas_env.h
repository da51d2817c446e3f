/* For the programs (sslc, benchmarks), not the library: when OpenBLAS fell back to generic
 * kernels because it does not know this CPU, run the program again with OPENBLAS_CORETYPE set
 * (OpenBLAS reads it only when it loads). SSLC_NO_REEXEC=1 turns this off. */
#ifndef SSL_TOOLS_BLAS_ENV_H
#define SSL_TOOLS_BLAS_ENV_H

#define _GNU_SOURCE 1
#include <stdlib.h>
#include <unistd.h>

#include "ssl/core.h"

static inline void ssl_tool_blas_reexec(char **argv)
{
    const char *hint = ssl_blas_coretype_hint();
    if (!hint || getenv("SSLC_NO_REEXEC"))
        return;
    setenv("OPENBLAS_CORETYPE", hint, 1);
    setenv("SSLC_NO_REEXEC", "1", 1);
    execv("/proc/self/exe", argv); /* returns only on failure: carry on with slow kernels */
}

#endif
