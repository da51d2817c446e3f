/* sslc report: an HTML page with inline SVG charts (report_svg.c) assembled by cmd_report.c. */
#ifndef SSLC_REPORT_H
#define SSLC_REPORT_H

#include <stddef.h>
#include <stdint.h>

typedef struct rep_buf {
    char *p;
    size_t n, cap;
    int oom; /* set when an allocation failed; later appends do nothing */
} rep_buf_t;

void rep_printf(rep_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s with & < > " ' escaped for HTML text and attributes. */
void rep_escape(rep_buf_t *b, const char *s);

#define REP_PALETTE_N 10
extern const char *const rep_palette[REP_PALETTE_N];

typedef struct rep_series {
    const char *label;
    const double *x, *y;
    int64_t n; /* >= 1 */
} rep_series_t;

/* One <svg class="chart" id=ID>: axes with ticks, the series as polylines (and dots when a
 * series has few points), a legend when there are several. */
void rep_line_chart(rep_buf_t *b, const char *id, const char *title, const char *xlabel,
                    const char *ylabel, const rep_series_t *s, int n_series);
/* One <svg class="scatter" id="pca">: points xy (n, 2) as <circle class="pt"> coloured by label
 * (labels may be NULL) and a legend of class names with counts. */
void rep_scatter(rep_buf_t *b, const char *title, const char *xlabel, const char *ylabel,
                 const float *xy, const int32_t *labels, int64_t n, char *const *class_names,
                 int n_classes);

#endif
