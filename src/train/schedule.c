/* Per-step schedules: learning rate (warm-up + cosine), weight decay and EMA momentum (cosine),
 * DINO's teacher temperature (warm-up then constant). */
#include "core/check.h"
#include "ssl/optim.h"

#include <math.h>

static const double k_pi = 3.14159265358979323846;

/* Linear warm-up: start at step 0, peak at step warmup_steps. */
static double warm(const ssl_sched_t *s, int64_t step)
{
    return s->start + (s->peak - s->start) * ((double)step / (double)s->warmup_steps);
}

/* Half-cosine from a (at i = 0) to b (at i = n). */
static double half_cosine(double a, double b, int64_t i, int64_t n)
{
    return b + (a - b) * 0.5 * (1.0 + cos(k_pi * (double)i / (double)n));
}

double ssl_sched_value(const ssl_sched_t *s, int64_t step, int64_t total_steps)
{
    if (SSL__IS_NULL(s, __func__))
        return NAN;
    if (step < 0)
        step = 0;
    if (total_steps < 1)
        total_steps = 1;
    int64_t w = s->warmup_steps > 0 ? s->warmup_steps : 0;
    switch (s->kind) {
    case SSL_SCHED_CONSTANT:
        return s->peak;
    case SSL_SCHED_WARMUP_CONSTANT:
        return step < w ? warm(s, step) : s->peak;
    case SSL_SCHED_WARMUP_COSINE:
        if (step >= total_steps)
            return s->end;
        if (step < w)
            return warm(s, step);
        return half_cosine(s->peak, s->end, step - w, total_steps - w); /* step < T: T > w */
    case SSL_SCHED_COSINE:
        if (step >= total_steps)
            return s->end;
        return half_cosine(s->start, s->end, step, total_steps);
    case SSL_SCHED_LINEAR:
        if (step >= total_steps)
            return s->end;
        return s->start + (s->end - s->start) * ((double)step / (double)total_steps);
    default:
        return s->peak;
    }
}

ssl_sched_t ssl_sched_constant(double value)
{
    return (ssl_sched_t){SSL_SCHED_CONSTANT, value, value, value, 0};
}

ssl_sched_t ssl_sched_warmup_cosine(double start, double peak, double end, int64_t warmup_steps)
{
    if (SSL__BAD_RANGE(warmup_steps, 0, INT64_MAX, __func__))
        warmup_steps = 0; /* the error is set */
    return (ssl_sched_t){SSL_SCHED_WARMUP_COSINE, start, peak, end, warmup_steps};
}

ssl_sched_t ssl_sched_cosine(double start, double end)
{
    return (ssl_sched_t){SSL_SCHED_COSINE, start, start, end, 0};
}
