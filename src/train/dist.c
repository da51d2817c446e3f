/* The MPI side of data-parallel training (dist.h), and its one-process stand-in. The only file
 * that includes mpi.h. Sums are MPI_SUM of doubles or floats: Open MPI's algorithms give every
 * rank the same bits and the same bits on every run with the same ranks (the tests check both;
 * train.check_sync checks it at run time). */
#define _POSIX_C_SOURCE 200809L
#include "dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "ssl/core.h"

static int launched_by_mpi(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", NULL};
    for (int i = 0; vars[i]; i++)
        if (getenv(vars[i]))
            return 1;
    return 0;
}

int ssl__dist_default_threads(void)
{
    int local = ssl__dist_local_size();
    if (local <= 1)
        return 0;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int n = cores > 0 ? (int)(cores / local) : 1;
#ifdef _OPENMP
    if (n > omp_get_num_procs()) /* the cores this rank is bound to */
        n = omp_get_num_procs();
#endif
    return n < 1 ? 1 : n;
}

#ifdef SSL_HAVE_MPI
#include <mpi.h>

static struct {
    int inited, ours, rank, size, local_size;
    MPI_Comm world, grads; /* grads: the gradient buckets' own communicator */
    MPI_Request *req;
    int64_t *req_n; /* floats of each request */
    int n_req, cap_req;
} g = {0, 0, 0, 1, 1, MPI_COMM_NULL, MPI_COMM_NULL, NULL, NULL, 0, 0};

static int mpi_error(int rc, const char *what)
{
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return ssl_set_error(SSL_ERR_IO, "rank %d of %d: %s: %s", g.rank, g.size, what, msg);
}

static void finalize(void)
{
    int done = 0;
    MPI_Finalized(&done);
    if (done)
        return;
    if (g.grads != MPI_COMM_NULL)
        MPI_Comm_free(&g.grads);
    if (g.world != MPI_COMM_NULL)
        MPI_Comm_free(&g.world);
    free(g.req);
    free(g.req_n);
    g.req = NULL;
    g.req_n = NULL;
    if (g.ours)
        MPI_Finalize();
}

int ssl__dist_init(void)
{
    if (g.inited)
        return SSL_OK;
    int already = 0;
    MPI_Initialized(&already);
    if (!already && !launched_by_mpi()) {
        g.inited = 1;
        return SSL_OK;
    }
    if (!already) {
        int provided = 0;
        /* every MPI call comes from the thread that runs the step (the loader's threads and
         * OpenMP's never call MPI) */
        int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS)
            return mpi_error(rc, "MPI_Init_thread");
        g.ours = 1;
    }
    MPI_Comm_dup(MPI_COMM_WORLD, &g.world);
    MPI_Comm_dup(MPI_COMM_WORLD, &g.grads);
    MPI_Comm_rank(g.world, &g.rank);
    MPI_Comm_size(g.world, &g.size);
    MPI_Comm node;
    if (MPI_Comm_split_type(g.world, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) ==
        MPI_SUCCESS) {
        MPI_Comm_size(node, &g.local_size);
        MPI_Comm_free(&node);
    }
    g.inited = 1;
    atexit(finalize);
    return SSL_OK;
}

int ssl__dist_rank(void) { return g.rank; }
int ssl__dist_size(void) { return g.size; }
int ssl__dist_local_size(void) { return g.local_size; }

void ssl__dist_abort(int code)
{
    fflush(stdout);
    fflush(stderr);
    if (g.size > 1)
        MPI_Abort(MPI_COMM_WORLD, code);
}

int ssl__dist_bcast(void *buf, size_t bytes, int root)
{
    if (g.size < 2)
        return SSL_OK;
    for (size_t off = 0; off < bytes;) { /* counts are int */
        size_t n = bytes - off < ((size_t)1 << 30) ? bytes - off : (size_t)1 << 30;
        int rc = MPI_Bcast((char *)buf + off, (int)n, MPI_BYTE, root, g.world);
        if (rc != MPI_SUCCESS)
            return mpi_error(rc, "MPI_Bcast");
        off += n;
    }
    return SSL_OK;
}

static int allreduce(void *buf, int64_t n, MPI_Datatype type, const char *what)
{
    if (g.size < 2 || n <= 0)
        return SSL_OK;
    if (n > (int64_t)1 << 30)
        return ssl_set_error(SSL_ERR_INVALID, "%s: %lld values in one sum (at most 2^30)", what,
                             (long long)n);
    int rc = MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, type, MPI_SUM, g.world);
    return rc == MPI_SUCCESS ? SSL_OK : mpi_error(rc, what);
}

int ssl__dist_allreduce_f64(double *buf, int64_t n)
{
    return allreduce(buf, n, MPI_DOUBLE, "MPI_Allreduce (double)");
}

int ssl__dist_allgather_u64(uint64_t v, uint64_t *all)
{
    if (g.size < 2) {
        all[0] = v;
        return SSL_OK;
    }
    int rc = MPI_Allgather(&v, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, g.world);
    return rc == MPI_SUCCESS ? SSL_OK : mpi_error(rc, "MPI_Allgather");
}

int ssl__dist_barrier(void)
{
    if (g.size < 2)
        return SSL_OK;
    int rc = MPI_Barrier(g.world);
    return rc == MPI_SUCCESS ? SSL_OK : mpi_error(rc, "MPI_Barrier");
}

/* ---- core's comm table */

static int c_allreduce_f64(void *user, double *buf, int64_t n)
{
    (void)user;
    return allreduce(buf, n, MPI_DOUBLE, "MPI_Allreduce (double)");
}

static int c_allreduce_f32(void *user, float *buf, int64_t n)
{
    (void)user;
    return allreduce(buf, n, MPI_FLOAT, "MPI_Allreduce (float)");
}

static int c_allgather_f32(void *user, const float *send, int64_t n, float *recv)
{
    (void)user;
    if (n > (int64_t)1 << 30)
        return ssl_set_error(SSL_ERR_INVALID, "all_gather: %lld values per rank (at most 2^30)",
                             (long long)n);
    int rc = MPI_Allgather(send, (int)n, MPI_FLOAT, recv, (int)n, MPI_FLOAT, g.world);
    return rc == MPI_SUCCESS ? SSL_OK : mpi_error(rc, "MPI_Allgather");
}

const ssl_comm_t *ssl__dist_comm(int sync_bn)
{
    static ssl_comm_t c[2];
    c[sync_bn != 0] = (ssl_comm_t){g.rank,          g.size,          sync_bn != 0,   NULL,
                                   c_allreduce_f64, c_allreduce_f32, c_allgather_f32};
    return &c[sync_bn != 0];
}

/* ---- non-blocking gradient sums */

int ssl__dist_isum_f32(float *buf, int64_t n)
{
    if (g.size < 2 || n <= 0)
        return SSL_OK;
    if (n > (int64_t)1 << 30)
        return ssl_set_error(SSL_ERR_INVALID, "gradient bucket of %lld floats (at most 2^30)",
                             (long long)n);
    if (g.n_req == g.cap_req) {
        int cap = g.cap_req ? 2 * g.cap_req : 64;
        MPI_Request *r = realloc(g.req, sizeof *r * (size_t)cap);
        if (r)
            g.req = r;
        int64_t *rn = r ? realloc(g.req_n, sizeof *rn * (size_t)cap) : NULL;
        if (!rn)
            return ssl_set_error(SSL_ERR_NOMEM, "out of memory for MPI requests");
        g.req_n = rn;
        g.cap_req = cap;
    }
    g.req_n[g.n_req] = n;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, g.grads,
                            &g.req[g.n_req]);
    if (rc != MPI_SUCCESS)
        return mpi_error(rc, "MPI_Iallreduce");
    g.n_req++;
    return SSL_OK;
}

void ssl__dist_progress(void)
{
    if (g.n_req > 0) {
        int done = 0;
        MPI_Testall(g.n_req, g.req, &done, MPI_STATUSES_IGNORE);
    }
}

int64_t ssl__dist_done_floats(void)
{
    int64_t done = 0;
    for (int i = 0; i < g.n_req; i++) {
        int flag = 0; /* a completed request is MPI_REQUEST_NULL: tested again, flag 1 */
        MPI_Test(&g.req[i], &flag, MPI_STATUS_IGNORE);
        done += flag ? g.req_n[i] : 0;
    }
    return done;
}

int ssl__dist_wait_all(void)
{
    if (g.n_req == 0)
        return SSL_OK;
    int rc = MPI_Waitall(g.n_req, g.req, MPI_STATUSES_IGNORE);
    g.n_req = 0;
    return rc == MPI_SUCCESS ? SSL_OK : mpi_error(rc, "MPI_Waitall");
}

#else /* one process: a build without MPI */

int ssl__dist_init(void)
{
    if (launched_by_mpi())
        ssl_logf(SSL_LOG_WARN, "started by an MPI launcher, but this sslc was built without MPI "
                               "(SSL_MPI): every process trains alone");
    return SSL_OK;
}
int ssl__dist_rank(void) { return 0; }
int ssl__dist_size(void) { return 1; }
int ssl__dist_local_size(void) { return 1; }
const ssl_comm_t *ssl__dist_comm(int sync_bn)
{
    (void)sync_bn;
    return NULL;
}
void ssl__dist_abort(int code) { (void)code; }
int ssl__dist_bcast(void *buf, size_t bytes, int root)
{
    (void)buf, (void)bytes, (void)root;
    return SSL_OK;
}
int ssl__dist_allreduce_f64(double *buf, int64_t n)
{
    (void)buf, (void)n;
    return SSL_OK;
}
int ssl__dist_allgather_u64(uint64_t v, uint64_t *all)
{
    all[0] = v;
    return SSL_OK;
}
int ssl__dist_barrier(void) { return SSL_OK; }
int ssl__dist_isum_f32(float *buf, int64_t n)
{
    (void)buf, (void)n;
    return SSL_OK;
}
void ssl__dist_progress(void) {}
int64_t ssl__dist_done_floats(void) { return 0; }
int ssl__dist_wait_all(void) { return SSL_OK; }

#endif
