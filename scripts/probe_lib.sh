# Sourced by scripts/benchmark.sh and scripts/tune.sh: the linear probe's learning-rate grid and
# the parse of `sslc linear`'s result line, kept in one place.
# The grid, one probe each on the same features, chosen on validation (lr 1e-3 alone, the
# protocol before 2026-12-06, left probes short of convergence: MAE 78.7% at 1e-3, 81.6% at 1e-2)
LIN_LRS=${BENCH_LINEAR_LRS:-1e-3,3e-3,1e-2,3e-2,1e-1,3e-1}
# stdin: sslc linear's output; prints the "test" or "val" top-1 (argument 1) of its best epoch
linear_top1() {
  awk -v which="$1" '/^best epoch/ { for (i = 1; i < NF; i++)
                                       if ($i == which && $(i + 1) == "top-1") {
                                         v = $(i + 2); sub("%.*", "", v); print v } }'
}
