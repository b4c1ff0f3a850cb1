/* rulesource.h - alert rules read the node's store: a struct lbw_series_source over
 * node/store.
 *
 * select(metric, matchers, from, to) walks the store's series of that metric in key order
 * (lbw_store_foreach_series with the metric as prefix, keeping only keys that are exactly
 * that metric), parses each key, checks the matchers and hands the series' raw samples in
 * [from, to] to the rule's callback. Samples are read into buffers the source owns and reuses
 * for every series, so memory does not grow with the number of series or rules.
 *
 * At most LBW_RULESOURCE_MAX_POINTS samples per series are handed over: a series with more in
 * [from, to] is seen through its newest that many (the store is read page by page and only
 * the newest page kept), so "last", rate and the recent part of every window stay exact. At
 * the default 10 s probe interval that is 22 hours of samples; at 1 s, 2 hours 16 minutes.
 * A series whose newest sample is before from is handed over with no samples, without
 * reading its chunks.
 *
 * A source is used by one thread at a time (its buffers are shared by its selections); the
 * store may be written concurrently (each read is its own LMDB read transaction).
 */
#ifndef LBW_RULESOURCE_H
#define LBW_RULESOURCE_H

#include "alerting/rule.h"
#include "node/store.h"

#define LBW_RULESOURCE_MAX_POINTS 8192

struct lbw_rulesource {
    struct lbw_series_source src;   /* hand &rs->src to lbw_rule_eval */
    struct lbw_store *store;
    struct lbw_point *page;         /* 2 * LBW_RULESOURCE_MAX_POINTS: the kept page and the next */
    struct lbw_rule_point *pts;     /* LBW_RULESOURCE_MAX_POINTS: what the rule's callback gets */
};

/* Sets rs up over store (which must outlive it). Returns 0, or -1 when out of memory. */
int lbw_rulesource_init(struct lbw_rulesource *rs, struct lbw_store *store);
void lbw_rulesource_fini(struct lbw_rulesource *rs);

#endif
