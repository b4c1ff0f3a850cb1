/* rule.h - alert rules and their evaluation.
 *
 * A rule is a condition over stored samples, a `for` duration, a severity, static labels,
 * annotation templates and min_vantages. Evaluating a rule at time `now` yields *instances*:
 * one per distinct label set of the matching series with the `vantage` label removed. For each
 * instance the condition is evaluated separately for every vantage that has data, and the
 * instance is active when it holds for at least min_vantages of them — so one node's own
 * network trouble does not page (min_vantages: 2 needs two nodes to agree).
 *
 * Every window is half-open, (now - window, now], as in Prometheus; NaN samples are ignored
 * everywhere (a series whose samples in range are all NaN has no data).
 *
 * Conditions:
 *   threshold   AGG(metric{matchers}[window]) OP value; with seconds_until the aggregate is
 *               a unix time and (AGG - now) is compared: "expires in less than 14 days"
 *               AGG: last, avg, min, max over the window, or rate (per-second increase of a
 *               counter over the window, resets and extrapolation to the window's edges as in
 *               Prometheus' rate(); needs two samples).
 *               OP: > < >= <= == !=
 *   change      (last in (now-window, now] - last in (now-2·window, now-window]) OP value, so a
 *               series needs a sample in both; relative: the change divided by |value then|
 *               (1 = 100 %; a change from 0 is ±infinite)
 *   absent      no sample of a series in the last window: every series of metric{matchers}
 *               that had samples within `lookback` but none in the last window is absent (its
 *               value: seconds since its last sample); if no series matches at all, one
 *               instance with the matchers' equality labels is (value 0), and it is active
 *               whatever min_vantages (no vantage has data: vantages_seen is 0), unless the
 *               matchers name a vantage, which then counts as the one vantage that sees it
 *   anomaly     the average of the last window lies outside EWMA mean ± k·σ of the baseline
 *               (the samples of (now-window-baseline, now-window], exponentially weighted by
 *               age with half-life baseline/4), given at least min_samples baseline samples;
 *               its value is the average of the last window
 *   all / any   every / some child condition holds for the same instance and vantage; children
 *               are matched on the instance labels they share (label names both have, values
 *               equal; the instance has the union of their labels). A child without a match
 *               for an instance does not hold there. Value: the first child's (all), the first
 *               holding child's (any).
 *
 * With per_vantage the vantage is part of the instance: each vantage's series make their own
 * instance, which keeps the `vantage` label (min_vantages must then be 1). That is for series
 * only one vantage measures about itself, such as an agent's host statistics, where the
 * vantage names the host.
 *
 * Evaluation only reads samples (through struct lbw_series_source); it keeps no state, so any
 * node that becomes leader evaluates the same rules over its own replica and gets the same
 * instances, reported in the order of their labels. Instance labels: the series labels minus
 * `vantage` unless per_vantage (`probe` is NOT dropped), plus `alertname` = rule name and `severity`; the rule's
 * static labels win over both. Memory is bounded by the number of series, never by the
 * number of samples: each series' samples are folded as the source hands them over.
 */
#ifndef LBW_RULE_H
#define LBW_RULE_H

#include <stddef.h>
#include <stdint.h>

#include "probes/sample.h"

#define LBW_RULE_MAX_MATCHERS 8
#define LBW_RULE_MAX_CHILDREN 8
#define LBW_RULE_MAX_LABELS 8
#define LBW_RULE_MAX_ANNOTATIONS 8
#define LBW_RULE_MAX_DEPTH 4                        /* all/any nested at most this deep */
#define LBW_RULE_MAX_RANGE_MS (400LL * 86400000)    /* longest window, lookback, baseline */
#define LBW_RULE_LOOKBACK_MS 3600000LL              /* absent's lookback when 0 */

enum lbw_severity { LBW_SEV_INFO = 0, LBW_SEV_WARNING, LBW_SEV_CRITICAL };
const char *lbw_severity_name(enum lbw_severity s);         /* "info", "warning", "critical" */
int lbw_severity_parse(const char *s, enum lbw_severity *out);

/* label = value or label != value. Matching a missing label compares against "". */
struct lbw_matcher {
    const char *name;
    const char *value;
    int negate;
};
int lbw_matchers_match(const struct lbw_matcher *m, size_t n, const struct lbw_key_parsed *k);

enum lbw_cond_kind { LBW_COND_THRESHOLD, LBW_COND_CHANGE, LBW_COND_ABSENT, LBW_COND_ANOMALY,
                     LBW_COND_ALL, LBW_COND_ANY };
enum lbw_agg { LBW_AGG_LAST, LBW_AGG_AVG, LBW_AGG_MIN, LBW_AGG_MAX, LBW_AGG_RATE };
enum lbw_cmp { LBW_CMP_GT, LBW_CMP_LT, LBW_CMP_GE, LBW_CMP_LE, LBW_CMP_EQ, LBW_CMP_NE };

struct lbw_condition {
    enum lbw_cond_kind kind;
    /* series selection (all kinds but all/any) */
    const char *metric;
    struct lbw_matcher matchers[LBW_RULE_MAX_MATCHERS];
    size_t nmatchers;
    int64_t window_ms;          /* threshold/change/anomaly/absent window */
    /* threshold and change */
    enum lbw_agg agg;
    enum lbw_cmp cmp;
    double value;
    int relative;               /* change: compare the relative change */
    int seconds_until;          /* threshold: the aggregate is a unix time (seconds); compare
                                   the seconds from now until it (certificate expiry) */
    /* absent */
    int64_t lookback_ms;        /* how far back a series must have existed (0: 1 h); longer
                                   than window */
    /* anomaly */
    int64_t baseline_ms;
    double k;                   /* sigmas */
    unsigned min_samples;
    /* all / any */
    const struct lbw_condition *children[LBW_RULE_MAX_CHILDREN];
    size_t nchildren;
};

struct lbw_rule {
    const char *name;           /* alertname: [A-Za-z_][A-Za-z0-9_]* */
    struct lbw_condition cond;
    int64_t for_ms;
    enum lbw_severity severity;
    unsigned min_vantages;      /* >= 1 */
    int per_vantage;            /* one instance per vantage, labelled with it (above) */
    struct lbw_label labels[LBW_RULE_MAX_LABELS];
    size_t nlabels;
    struct lbw_label annotations[LBW_RULE_MAX_ANNOTATIONS];     /* values are templates */
    size_t nannotations;
};

/* ---- reading samples --------------------------------------------------------------------- */

struct lbw_rule_point {
    int64_t ts_ms;
    double value;
};

/* One series' samples in [from, to], oldest first. key is the canonical series key. Returns 0
 * to go on, nonzero to stop the selection (which then fails). */
typedef int (*lbw_rule_series_cb)(void *cbarg, const char *key, size_t keylen,
                                  const struct lbw_rule_point *pts, size_t n);

struct lbw_series_source {
    void *arg;
    /* Calls cb for every series of metric whose labels satisfy the matchers, with its samples
     * in [from, to] (possibly none), in key order. Returns 0, or -1 on a read error or when cb
     * stopped it. (The evaluator re-checks metric and matchers, so a source may hand over more
     * series than asked for.) */
    int (*select)(void *arg, const char *metric, const struct lbw_matcher *m, size_t nm,
                  int64_t from, int64_t to, lbw_rule_series_cb cb, void *cbarg);
};

/* ---- evaluation -------------------------------------------------------------------------- */

struct lbw_instance {
    char labels[LBW_KEY_MAX];   /* canonical key of the instance labels, metric part
                                   "ALERTS": ALERTS{alertname="...",...} */
    uint64_t fingerprint;       /* FNV-1a 64 of labels */
    int active;
    double value;               /* the condition's value (threshold: the aggregate or the
                                   seconds until it; absent: seconds since the last sample) at
                                   the first vantage (in name order) where it held, else at the
                                   first */
    unsigned vantages_true;
    unsigned vantages_seen;
};

/* Called once per instance; active and inactive instances (series with data in the
 * condition's range that do not meet it) are both reported, so the caller can resolve alerts.
 * A series without data in range makes no instance. */
typedef void (*lbw_instance_cb)(void *arg, const struct lbw_instance *inst);

/* Evaluates r at now. Returns the number of instances, or -1 on a read error, out of memory,
 * or when an instance's labels do not fit a key (more than LBW_LABELS_MAX labels or
 * LBW_KEY_MAX bytes, as Prometheus fails a rule whose labels clash); no instance is reported
 * then: the caller must not resolve anything on a failed evaluation. */
long lbw_rule_eval(const struct lbw_rule *r, const struct lbw_series_source *src, int64_t now,
                   lbw_instance_cb cb, void *arg);

/* Checks a rule for impossible settings (no metric, empty all/any, window <= 0, bad names,
 * templates that do not parse, ...). Returns 0, or -1 with a reason ("all[1]: window must be
 * positive"). */
int lbw_rule_check(const struct lbw_rule *r, char *why, size_t whylen);

uint64_t lbw_fingerprint(const char *s, size_t len);

#endif
