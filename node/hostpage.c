/* hostpage.c - the status page's Hosts and Traffic sections. See hostpage.h. */
#include "node/hostpage.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/pagefmt.h"
#include "probes/sample.h"

#define WINDOW_MS 300000        /* rates and the median cover the last 5 minutes */
#define MAX_VANTAGES 256        /* hosts listed */
#define MAX_BUCKETS 64          /* histogram buckets per side */
#define MAX_SIDES 4

static int starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The metric name of a current series, into out. */
static const char *metric_of(const struct lbw_view_series *s, char *out, size_t len)
{
    size_t n = s->metric_len < len - 1 ? s->metric_len : len - 1;
    memcpy(out, s->key, n);
    out[n] = '\0';
    return out;
}

/* 1 if a group has a series whose metric starts with one of prefixes (NULL-terminated). */
static int has_prefix(const struct lbw_view *v, const struct lbw_view_group *g,
                      const char *const *prefixes)
{
    char m[LBW_KEY_MAX];
    for (size_t i = g->first; i < g->first + g->n; i++) {
        metric_of(&v->cur[i], m, sizeof(m));
        for (size_t p = 0; prefixes[p]; p++)
            if (starts(m, prefixes[p]))
                return 1;
    }
    return 0;
}

/* The distinct vantages of groups that pass, in group order. Returns how many. */
static size_t vantages_with(const struct lbw_view *v, const char *const *prefixes,
                            const char **out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < v->ngroups && n < max; i++) {
        const struct lbw_view_group *g = &v->groups[i];
        size_t j;
        for (j = 0; j < n && strcmp(out[j], g->vantage) != 0; j++)
            ;
        if (j == n && has_prefix(v, g, prefixes))
            out[n++] = g->vantage;
    }
    return n;
}

/* The first current series of metric among vantage's groups, or NULL. */
static const struct lbw_view_series *find_in(const struct lbw_view *v, const char *vantage,
                                             const char *metric)
{
    for (size_t i = 0; i < v->ngroups; i++) {
        const struct lbw_view_series *s;
        if (strcmp(v->groups[i].vantage, vantage) == 0 &&
            (s = lbw_view_find(v, &v->groups[i], metric)))
            return s;
    }
    return NULL;
}

static double value_in(const struct lbw_view *v, const char *vantage, const char *metric)
{
    const struct lbw_view_series *s = find_in(v, vantage, metric);
    return s ? s->value : NAN;
}

static double rate_in(const struct lbw_view *v, struct lbw_store *st, const char *vantage,
                      const char *metric, int64_t now)
{
    const struct lbw_view_series *s = find_in(v, vantage, metric);
    double r = NAN;
    if (s)
        lbw_view_rate(st, s->key, now - WINDOW_MS, &r);
    return r;
}

static void cell(struct lbw_buf *b, const char *text)
{
    lbw_buf_puts(b, "<td class=\"num\">");
    lbw_buf_html(b, text);
    lbw_buf_puts(b, "</td>");
}

/* A share with a badge: bad beyond bad_at, warn beyond warn_at (below them with low); sub, if
 * any, in small print under it. */
static void cell_share(struct lbw_buf *b, double ratio, double warn_at, double bad_at, int low,
                       const char *sub)
{
    char text[32];
    lbw_buf_puts(b, "<td class=\"num\">");
    if (isnan(ratio)) {
        lbw_buf_puts(b, "-");
    } else {
        int bad = low ? ratio < bad_at : ratio > bad_at;
        int warn = low ? ratio < warn_at : ratio > warn_at;
        lbw_pagefmt_badge(b, bad ? "bad" : warn ? "warn" : "ok",
                          lbw_pagefmt_percent(ratio, text, sizeof(text)));
    }
    if (sub) {
        lbw_buf_puts(b, "<span class=\"sub\">");
        lbw_buf_html(b, sub);
        lbw_buf_puts(b, "</span>");
    }
    lbw_buf_puts(b, "</td>");
}

/* --- Hosts -------------------------------------------------------------------------------- */

/* The value of the current series with exactly key in g, or NaN. */
static double value_of_key(const struct lbw_view *v, const struct lbw_view_group *g,
                           const char *key)
{
    for (size_t i = g->first; i < g->first + g->n; i++)
        if (strcmp(v->cur[i].key, key) == 0)
            return v->cur[i].value;
    return NAN;
}

/* One watched process (its lbwatch_process_up series, parsed): a badge with its name, UP or
 * DOWN, and the restarts counted by the series of the same labels. */
static void process_badge(struct lbw_buf *b, const struct lbw_view *v,
                          const struct lbw_view_group *g, const struct lbw_key_parsed *up,
                          double value)
{
    char key[LBW_KEY_MAX];
    double restarts = NAN;
    lbw_pagefmt_badge(b, value ? "ok" : "bad", lbw_key_label(up, "process"));
    lbw_buf_printf(b, " %s ", value ? "UP" : "DOWN");
    if (lbw_key_build(key, sizeof(key), "lbwatch_process_restarts_total", up->labels,
                      up->nlabels) > 0)
        restarts = value_of_key(v, g, key);
    if (!isnan(restarts))
        lbw_buf_printf(b, "<span class=\"sub\">%.0f restarts</span>", restarts);
}

static void cell_processes(struct lbw_buf *b, const struct lbw_view *v, const char *vantage)
{
    struct lbw_key_parsed k;
    char m[LBW_KEY_MAX];
    size_t shown = 0;
    lbw_buf_puts(b, "<td>");
    for (size_t i = 0; i < v->ngroups; i++) {
        const struct lbw_view_group *g = &v->groups[i];
        for (size_t j = g->first; strcmp(g->vantage, vantage) == 0 && j < g->first + g->n; j++) {
            const struct lbw_view_series *s = &v->cur[j];
            if (strcmp(metric_of(s, m, sizeof(m)), "lbwatch_process_up") != 0 ||
                lbw_key_parse(s->key, strlen(s->key), &k) != 0 || !lbw_key_label(&k, "process"))
                continue;
            if (shown++)
                lbw_buf_puts(b, "<br>");
            process_badge(b, v, g, &k, s->value);
        }
    }
    lbw_buf_puts(b, "</td>");
}

static void host_row(struct lbw_buf *b, const struct lbw_view *v, struct lbw_store *st,
                     const char *vantage, int64_t now)
{
    char text[48], bytes[48];
    double avail = value_in(v, vantage, "node_memory_MemAvailable_bytes");
    lbw_buf_puts(b, "<tr><td class=\"t\">");
    lbw_buf_html(b, vantage);
    lbw_buf_puts(b, "</td>");
    cell_share(b, value_in(v, vantage, "lbwatch_host_cpu_busy_ratio"), 0.7, 0.9, 0, NULL);
    cell(b, lbw_pagefmt_si(value_in(v, vantage, "node_load1"), "", text, sizeof(text)));
    cell_share(b, value_in(v, vantage, "lbwatch_host_memory_available_ratio"), 0.2, 0.1, 1,
               isnan(avail) ? NULL : lbw_pagefmt_si(avail, "B", bytes, sizeof(bytes)));
    cell_share(b, value_in(v, vantage, "lbwatch_host_filefd_used_ratio"), 0.6, 0.8, 0, NULL);
    cell(b, lbw_pagefmt_si(value_in(v, vantage, "node_netstat_Tcp_CurrEstab"), "", text,
                           sizeof(text)));
    cell(b, lbw_pagefmt_si(rate_in(v, st, vantage, "node_netstat_TcpExt_ListenDrops", now), "/s",
                           text, sizeof(text)));
    cell_processes(b, v, vantage);
    lbw_buf_puts(b, "</tr>\n");
}

size_t lbw_hostpage_hosts(struct lbw_buf *b, const struct lbw_view *v, struct lbw_store *st,
                          int64_t now)
{
    static const char *const prefixes[] = {"node_", "lbwatch_host_", "lbwatch_process_", NULL};
    const char *hosts[MAX_VANTAGES];
    size_t n = vantages_with(v, prefixes, hosts, MAX_VANTAGES);
    if (n == 0)
        return 0;
    lbw_buf_puts(b, "<h2>Hosts</h2><table class=\"lb\"><tr><th>Host</th><th>CPU busy</th>"
                    "<th>Load 1m</th><th>Memory available</th><th>File handles</th>"
                    "<th>TCP established</th><th>Listen drops</th><th>Processes</th></tr>\n");
    for (size_t i = 0; i < n; i++)
        host_row(b, v, st, hosts[i], now);
    lbw_buf_puts(b, "</table>\n");
    return n;
}

/* --- Traffic ------------------------------------------------------------------------------ */

double lbw_hostpage_quantile(double q, const double *le, const double *count, size_t n)
{
    if (n == 0 || !(count[n - 1] > 0))
        return NAN;
    double rank = q * count[n - 1];
    for (size_t i = 0; i < n; i++) {
        if (count[i] < rank)
            continue;
        double lo = i ? le[i - 1] : 0, below = i ? count[i - 1] : 0;
        if (isinf(le[i]))
            return lo;
        if (count[i] == below)
            return le[i];
        return lo + (le[i] - lo) * (rank - below) / (count[i] - below);
    }
    return NAN;
}

struct side {
    char name[32];
    double le[MAX_BUCKETS], count[MAX_BUCKETS];
    size_t n;
};

/* One bucket's increase over the window into its side, kept sorted by le. */
static void add_bucket(struct side *sides, size_t *nsides, const char *side, double le,
                       double inc)
{
    size_t s;
    for (s = 0; s < *nsides && strcmp(sides[s].name, side) != 0; s++)
        ;
    if (s == *nsides) {
        if (*nsides == MAX_SIDES)
            return;
        memset(&sides[s], 0, sizeof(sides[s]));
        snprintf(sides[s].name, sizeof(sides[s].name), "%s", side);
        (*nsides)++;
    }
    struct side *sd = &sides[s];
    if (sd->n == MAX_BUCKETS)
        return;
    size_t at = sd->n;
    while (at > 0 && sd->le[at - 1] > le) {
        sd->le[at] = sd->le[at - 1];
        sd->count[at] = sd->count[at - 1];
        at--;
    }
    sd->le[at] = le;
    sd->count[at] = inc;
    sd->n++;
}

/* The median handshake RTT of the window per side ("410 µs server"), from vantage's
 * histogram series. */
static void handshake_median(struct lbw_buf *b, const struct lbw_view *v, struct lbw_store *st,
                             const char *vantage, int64_t now)
{
    struct side sides[MAX_SIDES];
    size_t nsides = 0;
    struct lbw_key_parsed k;
    char m[LBW_KEY_MAX], text[48];
    for (size_t i = 0; i < v->ngroups; i++) {
        const struct lbw_view_group *g = &v->groups[i];
        for (size_t j = g->first; strcmp(g->vantage, vantage) == 0 && j < g->first + g->n; j++) {
            const struct lbw_view_series *s = &v->cur[j];
            double inc, secs;
            if (strcmp(metric_of(s, m, sizeof(m)), "lbwatch_tcp_handshake_rtt_seconds_bucket") ||
                lbw_key_parse(s->key, strlen(s->key), &k) != 0 || !lbw_key_label(&k, "le") ||
                !lbw_view_increase(st, s->key, now - WINDOW_MS, &inc, &secs))
                continue;
            const char *side = lbw_key_label(&k, "side");
            add_bucket(sides, &nsides, side ? side : "", strtod(lbw_key_label(&k, "le"), NULL),
                       inc);
        }
    }
    int shown = 0;
    for (size_t s = 0; s < nsides; s++) {
        double p50 = lbw_hostpage_quantile(0.5, sides[s].le, sides[s].count, sides[s].n);
        if (isnan(p50))
            continue;
        lbw_buf_puts(b, shown++ ? ", " : "");
        lbw_buf_html(b, lbw_pagefmt_si(p50, "s", text, sizeof(text)));
        if (sides[s].name[0]) {
            lbw_buf_puts(b, " ");
            lbw_buf_html(b, sides[s].name);
        }
    }
    if (!shown)
        lbw_buf_puts(b, "-");
}

/* Bytes per second by protocol in one direction ("tcp 1.2 MB/s, udp 3 kB/s"), as a cell. */
static void cell_bytes(struct lbw_buf *b, const struct lbw_view *v, struct lbw_store *st,
                       const char *vantage, const char *direction, int64_t now)
{
    struct lbw_key_parsed k;
    char m[LBW_KEY_MAX], text[48];
    int shown = 0;
    lbw_buf_puts(b, "<td class=\"num\">");
    for (size_t i = 0; i < v->ngroups; i++) {
        const struct lbw_view_group *g = &v->groups[i];
        for (size_t j = g->first; strcmp(g->vantage, vantage) == 0 && j < g->first + g->n; j++) {
            const struct lbw_view_series *s = &v->cur[j];
            const char *dir, *proto;
            double rate;
            if (strcmp(metric_of(s, m, sizeof(m)), "lbwatch_traffic_bytes_total") != 0 ||
                lbw_key_parse(s->key, strlen(s->key), &k) != 0 ||
                !(dir = lbw_key_label(&k, "direction")) || strcmp(dir, direction) != 0 ||
                !(proto = lbw_key_label(&k, "proto")) ||
                !lbw_view_rate(st, s->key, now - WINDOW_MS, &rate))
                continue;
            lbw_buf_puts(b, shown++ ? ", " : "");
            lbw_buf_html(b, proto);
            lbw_buf_printf(b, " %s", lbw_pagefmt_si(rate, "B/s", text, sizeof(text)));
        }
    }
    lbw_buf_puts(b, shown ? "</td>" : "-</td>");
}

static void traffic_row(struct lbw_buf *b, const struct lbw_view *v, struct lbw_store *st,
                        const char *vantage, int64_t now)
{
    static const char *const segments[] = {"lbwatch_tcp_syn_total", "lbwatch_tcp_fin_total",
                                           "lbwatch_tcp_rst_total"};
    char text[48];
    lbw_buf_puts(b, "<tr><td class=\"t\">");
    lbw_buf_html(b, vantage);
    lbw_buf_puts(b, "</td>");
    if (value_in(v, vantage, "lbwatch_traffic_capture_up") == 0) {
        /* no counters to show: say why instead of a row of zeros */
        lbw_buf_puts(b, "<td colspan=\"6\"><span class=\"b bad\">capture down</span>"
                        "<span class=\"sub\">the agent cannot capture on its interface "
                        "(it needs CAP_NET_RAW); its log says why</span></td></tr>\n");
        return;
    }
    cell_bytes(b, v, st, vantage, "in", now);
    cell_bytes(b, v, st, vantage, "out", now);
    for (size_t i = 0; i < sizeof(segments) / sizeof(segments[0]); i++)
        cell(b, lbw_pagefmt_si(rate_in(v, st, vantage, segments[i], now), "/s", text,
                               sizeof(text)));
    lbw_buf_puts(b, "<td class=\"num\">");
    handshake_median(b, v, st, vantage, now);
    lbw_buf_puts(b, "</td></tr>\n");
}

size_t lbw_hostpage_traffic(struct lbw_buf *b, const struct lbw_view *v, struct lbw_store *st,
                            int64_t now)
{
    static const char *const prefixes[] = {"lbwatch_traffic_bytes_total",
                                           "lbwatch_traffic_capture_up", NULL};
    const char *vantages[MAX_VANTAGES];
    size_t n = vantages_with(v, prefixes, vantages, MAX_VANTAGES);
    if (n == 0)
        return 0;
    lbw_buf_puts(b, "<h2>Traffic (last 5 minutes)</h2><table class=\"lb\"><tr><th>Host</th>"
                    "<th>In</th><th>Out</th><th>SYN</th><th>FIN</th><th>RST</th>"
                    "<th>Handshake RTT p50</th></tr>\n");
    for (size_t i = 0; i < n; i++)
        traffic_row(b, v, st, vantages[i], now);
    lbw_buf_puts(b, "</table>\n");
    return n;
}
