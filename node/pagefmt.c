/* pagefmt.c - the status page sections' shared formatting. See pagefmt.h. */
#include "node/pagefmt.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void lbw_pagefmt_badge(struct lbw_buf *b, const char *cls, const char *text)
{
    lbw_buf_printf(b, "<span class=\"b %s\">", cls);
    lbw_buf_html(b, text);
    lbw_buf_puts(b, "</span>");
}

const char *lbw_pagefmt_si(double v, const char *unit, char *out, size_t len)
{
    static const char *const big[] = {"", "k", "M", "G", "T", "P"};
    static const char *const small[] = {"m", "\xc2\xb5", "n"};   /* milli, micro (U+00B5), nano */
    double a = fabs(v);
    size_t i = 0;
    if (isnan(v)) {
        snprintf(out, len, "-");
        return out;
    }
    if (a != 0 && a < 1 && strcmp(unit, "s") == 0) {
        for (i = 0; i < 3 && a < 1; i++)
            a *= 1000, v *= 1000;
        snprintf(out, len, "%.3g %s%s", v, small[i - 1], unit);
        return out;
    }
    while (a >= 1000 && i + 1 < sizeof(big) / sizeof(big[0]))
        a /= 1000, v /= 1000, i++;
    snprintf(out, len, "%.3g%s%s%s", v, *big[i] || *unit ? " " : "", big[i], unit);
    return out;
}

const char *lbw_pagefmt_percent(double ratio, char *out, size_t len)
{
    double p = ratio * 100;
    if (isnan(ratio))
        snprintf(out, len, "-");
    else
        snprintf(out, len, p != 0 && fabs(p) < 0.1 ? "%.2f %%" : "%.1f %%", p);
    return out;
}

const char *lbw_pagefmt_ago(int64_t ts_ms, int64_t now, char *out, size_t len)
{
    int64_t s = (now - ts_ms) / 1000;
    if (s < 0)
        s = 0;
    if (s < 120)
        snprintf(out, len, "%lld s ago", (long long)s);
    else if (s < 7200)
        snprintf(out, len, "%lld min ago", (long long)(s / 60));
    else
        snprintf(out, len, "%lld h ago", (long long)(s / 3600));
    return out;
}
