/* pagefmt.h - small HTML pieces the status page's sections share: a verdict badge, numbers
 * with SI prefixes, shares as percentages, ages. Every text that reaches the page through
 * these is HTML-escaped. */
#ifndef LBW_PAGEFMT_H
#define LBW_PAGEFMT_H

#include <stddef.h>
#include <stdint.h>

#include "node/buf.h"

/* <span class="b CLS">TEXT</span>; cls is one of the page's badge classes: ok, bad, warn, na. */
void lbw_pagefmt_badge(struct lbw_buf *b, const char *cls, const char *text);

/* v with an SI prefix and unit into out ("1.2 M", "340 kB/s"; below 1 only seconds get a
 * prefix, "410 µs", others stay "0.25 /s"), three significant digits, or "-" for NaN.
 * Returns out. */
const char *lbw_pagefmt_si(double v, const char *unit, char *out, size_t len);

/* A share 0..1 as a percentage ("12.3 %", "0.05 %"), or "-" for NaN. Returns out. */
const char *lbw_pagefmt_percent(double ratio, char *out, size_t len);

/* How long ago ts_ms was at now ("4 s ago", "3 min ago", "2 h ago"). Returns out. */
const char *lbw_pagefmt_ago(int64_t ts_ms, int64_t now, char *out, size_t len);

#endif
