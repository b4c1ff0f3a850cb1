/* haproxyderive.c - derived HAProxy gauges from one scrape and the counters remembered from
 * earlier ones. See haproxyderive.h. */
#include "probes/haproxyderive.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const response_columns[] = {"hrsp_1xx", "hrsp_2xx", "hrsp_3xx",
                                               "hrsp_4xx", "hrsp_5xx", "hrsp_other"};

/* The remembered counters of (kind, proxy), or a free entry for them (used == 0), or NULL when
 * the memory is full. */
static struct lbw_haproxy_counters *lookup(struct lbw_haproxy_memory *m,
                                           enum lbw_haproxy_kind kind, const char *proxy)
{
    struct lbw_haproxy_counters *free_entry = NULL;
    for (size_t i = 0; i < LBW_HAPROXY_MEMORY_PROXIES; i++) {
        struct lbw_haproxy_counters *c = &m->p[i];
        if (!c->used) {
            if (!free_entry)
                free_entry = c;
        } else if (c->kind == kind && strcmp(c->proxy, proxy) == 0) {
            return c;
        }
    }
    return free_entry;
}

/* Starts c again from the counters a, b read at ts. */
static void restart(struct lbw_haproxy_counters *c, const struct lbw_haproxy_row *r, int64_t ts,
                    double a, double b)
{
    c->used = 1;
    c->kind = (unsigned char)r->kind;
    snprintf(c->proxy, sizeof(c->proxy), "%s", r->proxy);
    c->ts_ms = ts;
    c->a = a;
    c->b = b;
}

/* 1 when the counters read at ts cannot follow those remembered in c. */
static int went_back(const struct lbw_haproxy_counters *c, int64_t ts, double a, double b)
{
    return !c->used || ts <= c->ts_ms || a < c->a || b < c->b;
}

/* All of a backend's responses, or NaN when it has no response columns (TCP mode). */
static double responses(const struct lbw_haproxy_row *r)
{
    double sum = 0;
    int any = 0;
    for (size_t i = 0; i < sizeof(response_columns) / sizeof(response_columns[0]); i++) {
        double v = lbw_haproxy_value(r, response_columns[i]);
        if (!isnan(v)) {
            sum += v;
            any = 1;
        }
    }
    return any ? sum : NAN;
}

static size_t derive_backend(struct lbw_haproxy_counters *c, const struct lbw_haproxy_row *r,
                             const struct lbw_emitter *e)
{
    double errors = lbw_haproxy_value(r, "hrsp_5xx"), all = responses(r);
    if (isnan(errors) || isnan(all))
        return 0;
    c->seen = 1;
    if (went_back(c, e->ts_ms, errors, all) || e->ts_ms - c->ts_ms > LBW_HAPROXY_RATIO_SPAN_MS) {
        restart(c, r, e->ts_ms, errors, all);
        return 0;
    }
    double answered = all - c->b;
    if (answered < LBW_HAPROXY_RATIO_MIN_RESPONSES)
        return 0;   /* keep accumulating from the same start */
    double ratio = (errors - c->a) / answered;
    restart(c, r, e->ts_ms, errors, all);
    return lbw_emit1(e, "lbwatch_haproxy_backend_http_5xx_ratio", "proxy", r->proxy,
                     ratio > 1 ? 1 : ratio) != 0;
}

static size_t derive_frontend(struct lbw_haproxy_counters *c, const struct lbw_haproxy_row *r,
                              const struct lbw_emitter *e)
{
    double denied = lbw_haproxy_value(r, "dreq");
    if (isnan(denied))
        return 0;
    c->seen = 1;
    int fresh = went_back(c, e->ts_ms, denied, 0);
    double rate = fresh ? 0 : (denied - c->a) / ((double)(e->ts_ms - c->ts_ms) / 1000);
    restart(c, r, e->ts_ms, denied, 0);
    if (fresh)
        return 0;
    return lbw_emit1(e, "lbwatch_haproxy_frontend_requests_denied_rate", "proxy", r->proxy,
                     rate) != 0;
}

static size_t derive_info(const struct lbw_haproxy_info *info, const struct lbw_emitter *e)
{
    double cur = lbw_haproxy_info_value(info, "CurrConns");
    double max = lbw_haproxy_info_value(info, "Maxconn");
    if (isnan(cur) || !(max > 0))
        return 0;
    return lbw_emit(e, "lbwatch_haproxy_connections_used_ratio", cur / max) != 0;
}

size_t lbw_haproxy_derive(struct lbw_haproxy_memory *m, const struct lbw_haproxy_stats *stats,
                          const struct lbw_haproxy_info *info, const struct lbw_emitter *e)
{
    size_t failed = info ? derive_info(info, e) : 0;
    for (size_t i = 0; i < LBW_HAPROXY_MEMORY_PROXIES; i++)
        m->p[i].seen = 0;
    for (size_t i = 0; i < stats->nrows; i++) {
        const struct lbw_haproxy_row *r = &stats->rows[i];
        if (r->kind == LBW_HAPROXY_SERVER)
            continue;
        struct lbw_haproxy_counters *c = lookup(m, r->kind, r->proxy);
        if (!c)
            continue;   /* memory full: no derived gauges for this one */
        failed += r->kind == LBW_HAPROXY_BACKEND ? derive_backend(c, r, e)
                                                 : derive_frontend(c, r, e);
    }
    for (size_t i = 0; i < LBW_HAPROXY_MEMORY_PROXIES; i++)
        if (m->p[i].used && !m->p[i].seen)
            memset(&m->p[i], 0, sizeof(m->p[i]));
    return failed;
}
