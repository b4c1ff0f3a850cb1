/* rulesource.c - struct lbw_series_source over node/store. See rulesource.h. */
#include "node/rulesource.h"

#include <stdlib.h>
#include <string.h>

#define MAXP LBW_RULESOURCE_MAX_POINTS

struct selection {
    struct lbw_rulesource *rs;
    const char *metric;
    size_t metriclen;
    const struct lbw_matcher *m;
    size_t nm;
    int64_t from, to;
    lbw_rule_series_cb cb;
    void *cbarg;
    int failed;
};

/* The newest MAXP samples of key in [from, to] into rs->page[0..]: reads a page, and while a
 * page comes back full reads the next one behind it and keeps the newest MAXP of both.
 * Returns the number, or -1. */
static long read_newest(struct lbw_rulesource *rs, const char *key, size_t keylen, int64_t from,
                        int64_t to)
{
    long n = lbw_store_points(rs->store, key, keylen, from, to, rs->page, MAXP);
    while (n == MAXP && rs->page[MAXP - 1].ts_ms < to) {
        long more = lbw_store_points(rs->store, key, keylen, rs->page[MAXP - 1].ts_ms + 1, to,
                                     rs->page + MAXP, MAXP);
        if (more < 0)
            return -1;
        if (more == 0)
            break;
        memmove(rs->page, rs->page + more, MAXP * sizeof(*rs->page));
        if (more < MAXP)
            break;
    }
    return n;
}

/* Is key a series of exactly the selection's metric (not one whose name merely starts so)? */
static int of_metric(const struct selection *sel, const struct lbw_series_info *si)
{
    return si->keylen == sel->metriclen ||
           (si->keylen > sel->metriclen && si->key[sel->metriclen] == '{');
}

static int on_series(void *arg, const struct lbw_series_info *si)
{
    struct selection *sel = arg;
    struct lbw_rulesource *rs = sel->rs;
    struct lbw_key_parsed k;
    long n = 0;

    if (!of_metric(sel, si) || lbw_key_parse(si->key, si->keylen, &k) < 0 ||
        !lbw_matchers_match(sel->m, sel->nm, &k))
        return 0;
    if (si->last_ts >= sel->from && (n = read_newest(rs, si->key, si->keylen, sel->from, sel->to)) < 0) {
        sel->failed = 1;
        return 1;
    }
    for (long i = 0; i < n; i++)
        rs->pts[i] = (struct lbw_rule_point){rs->page[i].ts_ms, rs->page[i].value};
    if (sel->cb(sel->cbarg, si->key, si->keylen, rs->pts, (size_t)n) != 0) {
        sel->failed = 1;
        return 1;
    }
    return 0;
}

static int select_series(void *arg, const char *metric, const struct lbw_matcher *m, size_t nm,
                         int64_t from, int64_t to, lbw_rule_series_cb cb, void *cbarg)
{
    struct lbw_rulesource *rs = arg;
    struct selection sel = {rs, metric, strlen(metric), m, nm, from < 0 ? 0 : from, to, cb,
                            cbarg, 0};

    if (!lbw_metric_name_valid(metric))
        return -1;
    if (sel.from > to)
        return 0;
    if (lbw_store_foreach_series(rs->store, metric, on_series, &sel) < 0 || sel.failed)
        return -1;
    return 0;
}

int lbw_rulesource_init(struct lbw_rulesource *rs, struct lbw_store *store)
{
    memset(rs, 0, sizeof(*rs));
    rs->store = store;
    rs->page = malloc(2 * MAXP * sizeof(*rs->page));
    rs->pts = malloc(MAXP * sizeof(*rs->pts));
    if (!rs->page || !rs->pts) {
        lbw_rulesource_fini(rs);
        return -1;
    }
    rs->src = (struct lbw_series_source){rs, select_series};
    return 0;
}

void lbw_rulesource_fini(struct lbw_rulesource *rs)
{
    free(rs->page);
    free(rs->pts);
    rs->page = NULL;
    rs->pts = NULL;
}
