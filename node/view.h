/* view.h - what the store says right now, grouped for display.
 *
 * Series are grouped by their (target, vantage, probe) labels. Every sample of one probe
 * result carries the probe's start time, so a group's latest timestamp identifies its latest
 * result and a series in the group is *current* when its last sample has that timestamp;
 * older series (a cipher or error label that has since changed, certificate metrics from
 * before the target went down) are kept out. The status page, /api/v1/targets and /metrics
 * all read the store through a view, on whichever thread serves the request.
 */
#ifndef LBW_VIEW_H
#define LBW_VIEW_H

#include <stddef.h>
#include <stdint.h>

#include "node/store.h"

struct lbw_view_series {
    char *key;
    size_t metric_len;          /* key[0..metric_len) is the metric name */
    int64_t ts_ms;
    double value;
};

struct lbw_view_group {
    const char *target;         /* "" when the series has no such label */
    const char *vantage;
    const char *probe;
    int64_t ts_ms;              /* latest result */
    size_t first, n;            /* its current series: cur[first .. first+n) */
};

struct lbw_view {
    struct lbw_view_series *cur;    /* current series, grouped, key order within a group */
    size_t ncur;
    struct lbw_view_group *groups;  /* sorted by target, vantage, probe */
    size_t ngroups;
    char *strings;                  /* storage for the groups' label values */
    size_t nall;                    /* series read from the store */
};

/* Reads every series from the store (or only those whose key starts with prefix). */
int lbw_view_build(struct lbw_view *v, struct lbw_store *s, const char *prefix);
void lbw_view_free(struct lbw_view *v);

/* The current series of metric in group g (the first, if several), or NULL. */
const struct lbw_view_series *lbw_view_find(const struct lbw_view *v,
                                            const struct lbw_view_group *g, const char *metric);

/* Value of metric in g; returns 1 and sets *out if present, else 0. */
int lbw_view_value(const struct lbw_view *v, const struct lbw_view_group *g, const char *metric,
                   double *out);

/* Value of label `label` on metric's current series in g, copied into buf; NULL if absent. */
const char *lbw_view_label(const struct lbw_view *v, const struct lbw_view_group *g,
                           const char *metric, const char *label, char *buf, size_t buflen);

/* Groups of one target: *first index and count (groups are sorted by target). */
size_t lbw_view_target_groups(const struct lbw_view *v, const char *target, size_t *first);

/* Current series sorted by key (for /metrics): fills idx (ncur entries, caller-allocated). */
void lbw_view_sorted(const struct lbw_view *v, size_t *idx);

/* The increase of counter key over its samples since from (at most the newest
 * LBW_VIEW_RATE_POINTS), a drop counting as a reset to 0 as in Prometheus, without
 * extrapolation; *seconds is the time between the first and last of them. Returns 1, or 0
 * when there are fewer than two samples, no time between them, or the store fails. */
#define LBW_VIEW_RATE_POINTS 512
int lbw_view_increase(struct lbw_store *st, const char *key, int64_t from, double *inc,
                      double *seconds);

/* The per-second rate of counter key since from (lbw_view_increase). Returns 1 or 0. */
int lbw_view_rate(struct lbw_store *st, const char *key, int64_t from, double *out);

/* The latest sample of key if it is not older than since, whether or not it is current in its
 * group (a gauge emitted only now and then). Returns 1 with *out, else 0. */
int lbw_view_latest(struct lbw_store *st, const char *key, int64_t since, double *out);

#endif
