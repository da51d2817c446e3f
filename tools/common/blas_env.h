/* For the programs (sslc, benchmarks), not the library: when OpenBLAS fell back to generic
 * kernels because it does not know this CPU, run the program again with OPENBLAS_CORETYPE set
 * (read only when the library loads). SSLC_NO_REEXEC=1 turns this off.
 *
 * OpenMP's wait policy is left to libgomp (worker threads spin 300000 rounds between parallel
 * regions, then sleep). These programs used to cut the spin to 10000 rounds, against a
 * starvation seen with an early trainer; on today's code that made the workers fall asleep
 * between the hundreds of short regions of a step and pay a wake-up each time: the Fashion-MNIST
 * SimCLR step's convolutions took 271-340 ms against 215-237 ms at the default, and training
 * with its data loader (SimCLR, and DINO's multi-crop loader) ran as fast or faster at the
 * default. GOMP_SPINCOUNT / OMP_WAIT_POLICY in the environment still apply. */
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
