/* template.h - annotation templates: a small, safe subset of Go/Prometheus templating.
 *
 * A template is literal text with actions between {{ and }}:
 *
 *     {{ $labels.NAME }}            the alert's label NAME ("" when it has none)
 *     {{ $alertname }}              the alert's name (its alertname label)
 *     {{ $value }}                  the rule's value, formatted like Go's %v ("0.25", "1.7e+09")
 *     {{ humanize $value }}         with an SI prefix: "1.5k", "2.3M", "250m"
 *     {{ humanizeDuration $value }} seconds as a duration: "2d 3h", "5m 10s", "42s", "500ms"
 *     {{ printf "FMT" ARG }}        FMT holds text and exactly one verb: %.Nf or %d (ARG must
 *                                   be $value) or %s (any ARG above); %% is a literal %
 *
 * Spaces, tabs and newlines may surround the parts of an action. Nothing else is accepted:
 * other functions and variables, pipelines, trim markers, comments, an action without its }}
 * and a }} outside an action are errors found by lbw_template_check() when the configuration
 * is read, with the byte offset of the problem. Rendering never fails: it is bounded by the
 * output buffer and, should it meet an invalid template anyway, copies the rest as text.
 *
 * This module owns the template grammar and the value formats (lbw_humanize,
 * lbw_humanize_duration, lbw_format_value); it depends on probes/sample.h for labels only.
 */
#ifndef LBW_TEMPLATE_H
#define LBW_TEMPLATE_H

#include <stddef.h>

#include "probes/sample.h"

#define LBW_TEMPLATE_MAX 2048       /* longest template in bytes */
#define LBW_TEMPLATE_WHY_MAX 128    /* a reason from lbw_template_check fits this */

/* Checks tmpl. Returns 0, or -1 with a reason in why and the byte offset (into tmpl) of the
 * problem in *offset. */
int lbw_template_check(const char *tmpl, char *why, size_t whylen, size_t *offset);

/* Renders tmpl for an alert with labels (NULL: none) and value into out[outlen], cut at a
 * UTF-8 character boundary when it does not fit. Returns the length written (out is always
 * NUL-terminated when outlen > 0). */
size_t lbw_template_render(const char *tmpl, const struct lbw_key_parsed *labels, double value,
                           char *out, size_t outlen);

/* The value formats of the template functions, into buf[len]; each returns buf. */
char *lbw_format_value(double v, char *buf, size_t len);        /* {{ $value }} */
char *lbw_humanize(double v, char *buf, size_t len);            /* {{ humanize $value }} */
char *lbw_humanize_duration(double seconds, char *buf, size_t len);

#endif
