# Sourced by the data-parallel tests (dist_train.sh, dist_fail.sh) with their arguments
# SSLC SOURCE_DIR HAVE_MPI MPIEXEC: sets sslc, src, mpiexec and a temporary $out (removed at
# exit), skips (exit 77) without MPI in the build, without the launcher or without
# Fashion-MNIST, and lets Open MPI run as root and more ranks than cores on one box.
set -euo pipefail
sslc=$1
src=$2
[ "$3" = ON ] || { echo "SKIP: sslc built without MPI (SSL_MPI)"; exit 77; }
mpiexec=${4:-mpirun}
command -v "$mpiexec" > /dev/null || { echo "SKIP: $mpiexec not found"; exit 77; }
[ -d /usr/share/datasets/fashion-mnist ] || { echo "SKIP: Fashion-MNIST not installed"; exit 77; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_WAIT_POLICY=PASSIVE
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
