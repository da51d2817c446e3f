#!/usr/bin/env bash
# Runs tests/dist_mpi.c on 3 ranks (collectives, all_gather's gradient against central
# differences across ranks, SyncBN against the whole batch, the gradient buckets).
# Usage: dist_mpi.sh DIST_MPI HAVE_MPI MPIEXEC
set -euo pipefail
[ "$2" = ON ] || { echo "SKIP: built without MPI (SSL_MPI)"; exit 77; }
command -v "$3" > /dev/null || { echo "SKIP: $3 not found"; exit 77; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_WAIT_POLICY=PASSIVE
timeout 300 "$3" --oversubscribe -np 3 "$1"
