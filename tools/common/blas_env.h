/* For the programs (sslc, benchmarks), not the library: when OpenBLAS fell back to generic
 * kernels because it does not know this CPU, or OpenMP would spin for long between regions,
 * run the program again with OPENBLAS_CORETYPE / GOMP_SPINCOUNT set (both are read only when
 * the libraries load). SSLC_NO_REEXEC=1 turns this off. */
#ifndef SSL_TOOLS_BLAS_ENV_H
#define SSL_TOOLS_BLAS_ENV_H

#define _GNU_SOURCE 1
#include <stdlib.h>
#include <unistd.h>

#include "ssl/core.h"

static inline void ssl_tool_blas_reexec(char **argv)
{
    const char *hint = ssl_blas_coretype_hint();
    /* GNU OpenMP threads spin up to 300000 rounds between parallel regions; on a busy or
     * virtualised 2-core machine that spinning starves the thread doing the work (a training
     * step measured 6x slower). A short spin keeps the hand-off fast without the starvation. */
    int spin = !getenv("GOMP_SPINCOUNT") && !getenv("OMP_WAIT_POLICY");
    if ((!hint && !spin) || getenv("SSLC_NO_REEXEC"))
        return;
    if (hint)
        setenv("OPENBLAS_CORETYPE", hint, 1);
    if (spin)
        setenv("GOMP_SPINCOUNT", "10000", 1);
    setenv("SSLC_NO_REEXEC", "1", 1);
    execv("/proc/self/exe", argv); /* returns only on failure: carry on with slow kernels */
}

#endif
