/* The processes of a data-parallel run: MPI when sslc was launched by mpirun (or srun), this
 * process alone otherwise. Only src/train/dist.c knows MPI; everything else calls these, which
 * are the identity for one process (and in a build without MPI). docs/train.md, "Multi-process
 * (MPI)". */
#ifndef SSL_TRAIN_DIST_H
#define SSL_TRAIN_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "core/comm.h"

/* Join the MPI job when the environment says mpirun/srun started this process (Open MPI's
 * OMPI_COMM_WORLD_SIZE, PMI_SIZE, PMIX_RANK); else, or without MPI in the build, one process.
 * Idempotent; MPI is finalised at exit. SSL_OK, or an error when MPI cannot start. */
int ssl__dist_init(void);
int ssl__dist_rank(void);
int ssl__dist_size(void);
/* Ranks on this machine (sharing its memory), 1 for one process. */
int ssl__dist_local_size(void);
/* The default thread count of a rank (train.threads 0): this machine's cores shared by its
 * ranks, and no more than the cores the rank may run on (mpirun may bind it to one core or a
 * socket); 0 (all cores) for one rank on the machine. */
int ssl__dist_default_threads(void);
/* The comm table core's collective ops call (comm.h), with sync_bn as given. */
const ssl_comm_t *ssl__dist_comm(int sync_bn);
/* End every rank of the job with exit status `code` (MPI_Abort: does not return) when there is
 * more than one; returns at once for one process. Only for the top-level error path of a
 * program (sslc train, after printing its error): library code returns errors. */
void ssl__dist_abort(int code);

/* Collectives on the world (blocking; every rank must call them in the same order). */
int ssl__dist_bcast(void *buf, size_t bytes, int root);
int ssl__dist_allreduce_f64(double *buf, int64_t n); /* sum */
int ssl__dist_allgather_u64(uint64_t v, uint64_t *all); /* all: (size) */
int ssl__dist_barrier(void);

/* Non-blocking sums of float ranges (the gradient buckets), on a communicator of their own:
 * start one, drive them (MPI progresses non-blocking collectives only inside MPI calls), wait
 * for all. */
int ssl__dist_isum_f32(float *buf, int64_t n);
void ssl__dist_progress(void);
/* The floats of the sums started since the last wait that are complete (drives them too). */
int64_t ssl__dist_done_floats(void);
int ssl__dist_wait_all(void);

#endif
