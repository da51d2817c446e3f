/* Inline SVG for sslc report: line charts with ticks, labels and a legend, and a class-coloured
 * scatter. Everything goes into a growing text buffer; no scripts, no external resources. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

void rep_printf(rep_buf_t *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if (b->p && b->n + (size_t)n < b->cap) {
            b->n += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap : 4096;
        while (cap <= b->n + (size_t)n)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

void rep_escape(rep_buf_t *b, const char *s)
{
    for (; *s; s++)
        switch (*s) {
        case '&': rep_printf(b, "&amp;"); break;
        case '<': rep_printf(b, "&lt;"); break;
        case '>': rep_printf(b, "&gt;"); break;
        case '"': rep_printf(b, "&quot;"); break;
        case '\'': rep_printf(b, "&#39;"); break;
        default: rep_printf(b, "%c", *s);
        }
}

/* matplotlib's tab10: distinguishable classes */
const char *const rep_palette[REP_PALETTE_N] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                                "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                                                "#bcbd22", "#17becf"};

/* An axis from lo to hi rounded out to ticks of 1, 2 or 5 x 10^k, about 5 of them. */
typedef struct axis {
    double lo, hi, step;
} axis_t;

static axis_t nice_axis(double lo, double hi)
{
    axis_t a;
    if (!(hi > lo)) { /* one value: a band around it */
        double pad = fabs(lo) > 0 ? fabs(lo) * 0.1 : 1.0;
        lo -= pad;
        hi += pad;
    }
    double raw = (hi - lo) / 5, mag = pow(10, floor(log10(raw))), f = raw / mag;
    a.step = (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
    a.lo = floor(lo / a.step) * a.step;
    a.hi = ceil(hi / a.step) * a.step;
    return a;
}

static void range(const double *v, int64_t n, double *lo, double *hi)
{
    for (int64_t i = 0; i < n; i++) {
        *lo = v[i] < *lo ? v[i] : *lo;
        *hi = v[i] > *hi ? v[i] : *hi;
    }
}

/* Plot-area geometry shared by the chart and the scatter. */
typedef struct frame {
    double x, y, w, h; /* plot area in SVG units */
    axis_t ax, ay;
} frame_t;

static double px(const frame_t *f, double x) { return f->x + (x - f->ax.lo) / (f->ax.hi - f->ax.lo) * f->w; }
static double py(const frame_t *f, double y) { return f->y + f->h - (y - f->ay.lo) / (f->ay.hi - f->ay.lo) * f->h; }

static void axes(rep_buf_t *b, const frame_t *f, const char *title, const char *xlabel,
                 const char *ylabel)
{
    rep_printf(b, "<text class=\"title\" x=\"%.1f\" y=\"18\">", f->x);
    rep_escape(b, title);
    rep_printf(b, "</text>\n<rect class=\"plot\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
               "height=\"%.1f\"/>\n", f->x, f->y, f->w, f->h);
    for (double t = f->ax.lo; t <= f->ax.hi + f->ax.step * 1e-6; t += f->ax.step) {
        double x = px(f, t), v = fabs(t) < f->ax.step * 1e-9 ? 0 : t;
        rep_printf(b, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                   "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n",
                   x, f->y, x, f->y + f->h, x, f->y + f->h + 14, v);
    }
    for (double t = f->ay.lo; t <= f->ay.hi + f->ay.step * 1e-6; t += f->ay.step) {
        double y = py(f, t), v = fabs(t) < f->ay.step * 1e-9 ? 0 : t;
        rep_printf(b, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                   "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n",
                   f->x, y, f->x + f->w, y, f->x - 5, y + 4, v);
    }
    rep_printf(b, "<text class=\"label\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">",
               f->x + f->w / 2, f->y + f->h + 34);
    rep_escape(b, xlabel);
    rep_printf(b, "</text>\n<text class=\"label\" transform=\"translate(14 %.1f) rotate(-90)\" "
               "text-anchor=\"middle\">", f->y + f->h / 2);
    rep_escape(b, ylabel);
    rep_printf(b, "</text>\n");
}

void rep_line_chart(rep_buf_t *b, const char *id, const char *title, const char *xlabel,
                    const char *ylabel, const rep_series_t *s, int n_series)
{
    const double W = 480, H = 300;
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (int k = 0; k < n_series; k++) {
        range(s[k].x, s[k].n, &xlo, &xhi);
        range(s[k].y, s[k].n, &ylo, &yhi);
    }
    frame_t f = {64, 30, W - 64 - 16, H - 30 - 50, nice_axis(xlo, xhi), nice_axis(ylo, yhi)};
    rep_printf(b, "<svg class=\"chart\" id=\"%s\" xmlns=\"http://www.w3.org/2000/svg\" "
               "width=\"%g\" height=\"%g\" viewBox=\"0 0 %g %g\" role=\"img\">\n", id, W, H, W, H);
    axes(b, &f, title, xlabel, ylabel);
    for (int k = 0; k < n_series; k++) {
        const char *col = rep_palette[k % REP_PALETTE_N];
        rep_printf(b, "<polyline class=\"series\" stroke=\"%s\" points=\"", col);
        for (int64_t i = 0; i < s[k].n; i++)
            rep_printf(b, "%s%.1f,%.1f", i ? " " : "", px(&f, s[k].x[i]), py(&f, s[k].y[i]));
        rep_printf(b, "\"/>\n");
        if (s[k].n <= 60) /* few points (per-epoch values): mark each */
            for (int64_t i = 0; i < s[k].n; i++)
                rep_printf(b, "<circle class=\"mark\" cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>",
                           px(&f, s[k].x[i]), py(&f, s[k].y[i]), col);
        if (n_series > 1) {
            double ly = f.y + 12 + 14 * k;
            rep_printf(b, "\n<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                       "stroke-width=\"2\"/><text class=\"legend\" x=\"%.1f\" y=\"%.1f\">",
                       f.x + f.w - 110, ly - 4, f.x + f.w - 92, ly - 4, col, f.x + f.w - 88, ly);
            rep_escape(b, s[k].label);
            rep_printf(b, "</text>");
        }
        rep_printf(b, "\n");
    }
    rep_printf(b, "</svg>\n");
}

void rep_scatter(rep_buf_t *b, const char *title, const char *xlabel, const char *ylabel,
                 const float *xy, const int32_t *labels, int64_t n, char *const *class_names,
                 int n_classes)
{
    const double W = 700, H = 520, legend_w = 170;
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        xlo = xy[2 * i] < xlo ? xy[2 * i] : xlo;
        xhi = xy[2 * i] > xhi ? xy[2 * i] : xhi;
        ylo = xy[2 * i + 1] < ylo ? xy[2 * i + 1] : ylo;
        yhi = xy[2 * i + 1] > yhi ? xy[2 * i + 1] : yhi;
    }
    frame_t f = {64, 30, W - 64 - legend_w, H - 30 - 50, nice_axis(xlo, xhi), nice_axis(ylo, yhi)};
    rep_printf(b, "<svg class=\"scatter\" id=\"pca\" xmlns=\"http://www.w3.org/2000/svg\" "
               "width=\"%g\" height=\"%g\" viewBox=\"0 0 %g %g\" role=\"img\">\n", W, H, W, H);
    axes(b, &f, title, xlabel, ylabel);
    for (int64_t i = 0; i < n; i++) {
        int c = labels && labels[i] >= 0 ? labels[i] : 0;
        rep_printf(b, "<circle class=\"pt\" cx=\"%.1f\" cy=\"%.1f\" r=\"2.2\" fill=\"%s\"/>\n",
                   px(&f, xy[2 * i]), py(&f, xy[2 * i + 1]), rep_palette[c % REP_PALETTE_N]);
    }
    for (int c = 0; labels && c < n_classes; c++) {
        int64_t count = 0;
        for (int64_t i = 0; i < n; i++)
            count += labels[i] == c;
        double x = f.x + f.w + 16, y = f.y + 10 + 18 * c;
        rep_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"10\" height=\"10\" fill=\"%s\"/>"
                   "<text class=\"legend\" x=\"%.1f\" y=\"%.1f\">", x, y - 9,
                   rep_palette[c % REP_PALETTE_N], x + 15, y);
        if (class_names && class_names[c])
            rep_escape(b, class_names[c]);
        else
            rep_printf(b, "class %d", c);
        rep_printf(b, " (%lld)</text>\n", (long long)count);
    }
    rep_printf(b, "</svg>\n");
}
