/* promkind.h - the Prometheus scrape (probes/scrape.h): one GET of a text exposition
 * endpoint (an exporter's /metrics) whose allowed samples become lbwatch samples through
 * probes/promtext.h.
 *
 * The answer must parse completely as text format 0.0.4, or the run fails with the parser's
 * line, column and reason and nothing of it is kept. A successful run emits
 *   - every sample the allow-list allows, under its own name and labels, with the scrape's
 *     base labels (probe="prometheus", target, vantage) winning over scraped ones
 *     (exported_*), at the run's start time;
 *   - lbwatch_scrape_samples{result="emitted"|"skipped"|"rejected"}: how many samples were
 *     kept, not allowed, and allowed but refused (a name of lbwatch's own, probe_* or
 *     lbwatch_*, which a scrape never emits; too many labels; too long a key);
 *   - when some were rejected, lbwatch_probe_error_info{error="N samples rejected, the first
 *     on line L: NAME: why"}: the probe succeeds, and says what it could not keep.
 * Without options (or with an empty allow-list) nothing is kept: a scrape must say what it
 * keeps.
 */
#ifndef LBW_PROMKIND_H
#define LBW_PROMKIND_H

#include "probes/promtext.h"
#include "probes/scrape.h"

#define LBW_PROMETHEUS_ANSWER_MAX (16u << 20)   /* the longest exposition accepted */

/* The kind's options (lbw_scrape_source.options). */
struct lbw_prometheus_options {
    struct lbw_promtext_allow allow;    /* the metric names and prefixes kept */
};

extern const struct lbw_scrape_kind lbw_prometheus_kind;

#endif
