/* lbpage.c - the status page's Balancer section. See lbpage.h.
 *
 * A HAProxy target's current series (one vantage's latest scrape) are read twice: once to
 * list its frontends, backends and servers, sorted and without repeats, then once to fill
 * their values by binary search, so thousands of proxies cost n log n, not n². */
#include "node/lbpage.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/pagefmt.h"
#include "probes/sample.h"

#define NAME_LEN 128            /* proxy and server names kept (HAProxy's are at most 100) */
#define CERT_LEN 256
#define RATIO_MAX_AGE_MS 600000 /* a 5xx ratio is shown while at most this old (its span) */
#define RATE_WINDOW_MS 300000
#define DAYS_CRITICAL 3
#define DAYS_WARNING 14

enum kind { FE, BE, SV };

/* A frontend, backend or server and what its series say. */
struct ent {
    enum kind kind;
    char proxy[NAME_LEN];
    char server[NAME_LEN];      /* servers only */
    char status[16];            /* the state whose status series is 1; "" if none */
    char check[16];             /* servers: the check result whose series is 1 */
    double scur, slim, rate, denied, e5xx, act, bck;
};

struct cert {
    char file[CERT_LEN];
    double not_after;
};

struct lb {
    struct ent *e;
    size_t n, cap;
    struct cert *c;
    size_t nc, ccap;
    int failed;
};

/* --- reading the series ------------------------------------------------------------------- */

/* The kind a metric describes, from its prefix; -1 for the others. */
static int kind_of(const char *metric)
{
    static const struct {
        const char *prefix;
        enum kind kind;
    } prefixes[] = {
        {"haproxy_frontend_", FE}, {"lbwatch_haproxy_frontend_", FE},
        {"haproxy_backend_", BE},  {"lbwatch_haproxy_backend_", BE},
        {"haproxy_server_", SV},   {"lbwatch_haproxy_server_", SV},
    };
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
        if (strncmp(metric, prefixes[i].prefix, strlen(prefixes[i].prefix)) == 0)
            return (int)prefixes[i].kind;
    return -1;
}

static int ent_cmp(const void *x, const void *y)
{
    const struct ent *a = x, *b = y;
    if (a->kind != b->kind)
        return (int)a->kind - (int)b->kind;
    int c = strcmp(a->proxy, b->proxy);
    return c ? c : strcmp(a->server, b->server);
}

static void *grow(void *p, size_t *cap, size_t n, size_t size, int *failed)
{
    if (n < *cap)
        return p;
    size_t ncap = *cap ? *cap * 2 : 64;
    void *q = realloc(p, ncap * size);
    if (!q) {
        *failed = 1;
        return p;
    }
    *cap = ncap;
    return q;
}

/* The entity a parsed key names (kind from its metric), as a search key. 0 if it names none. */
static int ent_key(const struct lbw_key_parsed *k, struct ent *out)
{
    int kind = kind_of(k->metric);
    const char *proxy = lbw_key_label(k, "proxy"), *server = lbw_key_label(k, "server");
    if (kind < 0 || !proxy || (kind == SV) != (server != NULL))
        return 0;
    memset(out, 0, sizeof(*out));
    out->kind = (enum kind)kind;
    snprintf(out->proxy, sizeof(out->proxy), "%s", proxy);
    snprintf(out->server, sizeof(out->server), "%s", server ? server : "");
    out->scur = out->slim = out->rate = out->denied = out->e5xx = out->act = out->bck = NAN;
    return 1;
}

static void add_cert(struct lb *lb, const struct lbw_key_parsed *k, double v)
{
    const char *file = lbw_key_label(k, "cert");
    if (!file)
        return;
    lb->c = grow(lb->c, &lb->ccap, lb->nc, sizeof(*lb->c), &lb->failed);
    if (lb->failed)
        return;
    snprintf(lb->c[lb->nc].file, CERT_LEN, "%s", file);
    lb->c[lb->nc++].not_after = v;
}

/* Pass 1: every frontend, backend and server once, sorted; and the certificates. */
static void list_entities(struct lb *lb, const struct lbw_view *v, const struct lbw_view_group *g)
{
    struct lbw_key_parsed k;
    for (size_t i = g->first; i < g->first + g->n && !lb->failed; i++) {
        const struct lbw_view_series *s = &v->cur[i];
        if (lbw_key_parse(s->key, strlen(s->key), &k) != 0)
            continue;
        if (strcmp(k.metric, "lbwatch_haproxy_ssl_cert_not_after_seconds") == 0) {
            add_cert(lb, &k, s->value);
            continue;
        }
        lb->e = grow(lb->e, &lb->cap, lb->n, sizeof(*lb->e), &lb->failed);
        if (!lb->failed && ent_key(&k, &lb->e[lb->n]))
            lb->n++;
    }
    if (lb->n > 1)
        qsort(lb->e, lb->n, sizeof(*lb->e), ent_cmp);
    size_t out = 0;
    for (size_t i = 0; i < lb->n; i++)
        if (out == 0 || ent_cmp(&lb->e[out - 1], &lb->e[i]) != 0)
            lb->e[out++] = lb->e[i];
    lb->n = out;
}

/* One series' value into its entity. */
static void fill_one(struct ent *e, const struct lbw_key_parsed *k, double value)
{
    const char *m = k->metric, *state = lbw_key_label(k, "state"), *code = lbw_key_label(k, "code");
    static const struct {
        const char *suffix;
        size_t offset;
    } fields[] = {
        {"current_sessions", offsetof(struct ent, scur)},
        {"limit_sessions", offsetof(struct ent, slim)},
        {"http_requests_rate", offsetof(struct ent, rate)},
        {"requests_denied_rate", offsetof(struct ent, denied)},
        {"active_servers", offsetof(struct ent, act)},
        {"backup_servers", offsetof(struct ent, bck)},
    };
    if (strncmp(m, "lbwatch_", 8) == 0)
        m += 8;
    const char *suffix = strchr(m + strlen("haproxy_"), '_');   /* after "haproxy_frontend" */
    if (!suffix)
        return;
    suffix++;
    if (strcmp(suffix, "status") == 0 && state && value == 1)
        snprintf(e->status, sizeof(e->status), "%s", state);
    else if (strcmp(suffix, "check_status") == 0 && state && value == 1)
        snprintf(e->check, sizeof(e->check), "%s", state);
    else if (strcmp(suffix, "http_responses_total") == 0 && code && strcmp(code, "5xx") == 0)
        e->e5xx = value;
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (strcmp(suffix, fields[i].suffix) == 0)
            *(double *)((char *)e + fields[i].offset) = value;
}

/* Pass 2: the values. */
static void fill_entities(struct lb *lb, const struct lbw_view *v, const struct lbw_view_group *g)
{
    struct lbw_key_parsed k;
    struct ent key;
    for (size_t i = g->first; i < g->first + g->n; i++) {
        const struct lbw_view_series *s = &v->cur[i];
        if (lbw_key_parse(s->key, strlen(s->key), &k) != 0 || !ent_key(&k, &key))
            continue;
        struct ent *e = bsearch(&key, lb->e, lb->n, sizeof(*lb->e), ent_cmp);
        if (e)
            fill_one(e, &k, s->value);
    }
}

static void lb_free(struct lb *lb)
{
    free(lb->e);
    free(lb->c);
}

/* --- rendering ---------------------------------------------------------------------------- */

static void cell_text(struct lbw_buf *b, const char *cls, const char *text)
{
    lbw_buf_printf(b, "<td%s%s%s>", cls ? " class=\"" : "", cls ? cls : "", cls ? "\"" : "");
    lbw_buf_html(b, text);
    lbw_buf_puts(b, "</td>");
}

static void cell_number(struct lbw_buf *b, double v, const char *unit)
{
    char text[48];
    cell_text(b, "num", lbw_pagefmt_si(v, unit, text, sizeof(text)));
}

/* The status badge: UP green, DOWN red, anything else (MAINT, DRAIN, NOLB) amber. */
static void cell_status(struct lbw_buf *b, const char *status)
{
    lbw_buf_puts(b, "<td>");
    if (!*status)
        lbw_pagefmt_badge(b, "na", "?");
    else
        lbw_pagefmt_badge(b, strcmp(status, "UP") == 0     ? "ok"
                             : strcmp(status, "DOWN") == 0 ? "bad"
                                                           : "warn",
                          status);
    lbw_buf_puts(b, "</td>");
}

static void cell_sessions(struct lbw_buf *b, const struct ent *e)
{
    char cur[32], lim[32];
    lbw_buf_puts(b, "<td class=\"num\">");
    lbw_buf_html(b, lbw_pagefmt_si(e->scur, "", cur, sizeof(cur)));
    if (!isnan(e->slim) && e->slim > 0) {
        lbw_buf_puts(b, " / ");
        lbw_buf_html(b, lbw_pagefmt_si(e->slim, "", lim, sizeof(lim)));
    }
    lbw_buf_puts(b, "</td>");
}

static void frontends(struct lbw_buf *b, const struct lb *lb)
{
    size_t shown = 0;
    for (size_t i = 0; i < lb->n; i++) {
        const struct ent *e = &lb->e[i];
        if (e->kind != FE)
            continue;
        if (shown++ == 0)
            lbw_buf_puts(b, "<tr><th>Frontend</th><th>Status</th><th>Sessions / limit</th>"
                            "<th>Requests</th><th>5xx responses</th><th>Denied</th></tr>\n");
        lbw_buf_puts(b, "<tr>");
        cell_text(b, "t", e->proxy);
        cell_status(b, e->status);
        cell_sessions(b, e);
        cell_number(b, e->rate, "/s");
        cell_number(b, e->e5xx, "");
        cell_number(b, e->denied, "/s");
        lbw_buf_puts(b, "</tr>\n");
    }
}

/* The backend's 5xx ratio: emitted only once enough responses came, so read from the store. */
static void cell_ratio(struct lbw_buf *b, struct lbw_store *st, const struct lbw_view_group *g,
                       const char *proxy, int64_t now)
{
    struct lbw_label l[] = {{"probe", g->probe}, {"proxy", proxy}, {"target", g->target},
                            {"vantage", g->vantage}};
    char key[LBW_KEY_MAX], text[32];
    double ratio = NAN;
    if (lbw_key_build(key, sizeof(key), "lbwatch_haproxy_backend_http_5xx_ratio", l, 4) > 0)
        lbw_view_latest(st, key, now - RATIO_MAX_AGE_MS, &ratio);
    lbw_buf_puts(b, "<td class=\"num\">");
    if (isnan(ratio))
        lbw_buf_puts(b, "<span class=\"sub\">too few requests</span>");
    else
        lbw_pagefmt_badge(b, ratio > 0.05 ? "bad" : ratio > 0.01 ? "warn" : "ok",
                          lbw_pagefmt_percent(ratio, text, sizeof(text)));
    lbw_buf_puts(b, "</td>");
}

static void server_rows(struct lbw_buf *b, const struct lb *lb, const char *proxy)
{
    struct ent key = {.kind = SV};
    snprintf(key.proxy, sizeof(key.proxy), "%s", proxy);
    size_t lo = 0, hi = lb->n;
    while (lo < hi) {   /* the first server of proxy */
        size_t mid = lo + (hi - lo) / 2;
        if (ent_cmp(&lb->e[mid], &key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < lb->n && lb->e[lo].kind == SV && strcmp(lb->e[lo].proxy, proxy) == 0; lo++) {
        const struct ent *s = &lb->e[lo];
        lbw_buf_puts(b, "<tr class=\"srv\">");
        cell_text(b, "ind", s->server);
        cell_status(b, s->status);
        cell_text(b, NULL, s->check[0] ? s->check : "no check");
        lbw_buf_puts(b, "<td></td>");
        cell_sessions(b, s);
        lbw_buf_puts(b, "<td></td></tr>\n");
    }
}

static void backends(struct lbw_buf *b, const struct lb *lb, struct lbw_store *st,
                     const struct lbw_view_group *g, int64_t now)
{
    size_t shown = 0;
    for (size_t i = 0; i < lb->n; i++) {
        const struct ent *e = &lb->e[i];
        char act[32], bck[32], servers[80];
        if (e->kind != BE)
            continue;
        if (shown++ == 0)
            lbw_buf_puts(b, "<tr><th>Backend / server</th><th>Status</th><th>Servers up / "
                            "check</th><th>5xx ratio</th><th>Sessions</th><th></th></tr>\n");
        lbw_buf_puts(b, "<tr>");
        cell_text(b, "t", e->proxy);
        cell_status(b, e->status);
        snprintf(servers, sizeof(servers), "%s active, %s backup",
                 lbw_pagefmt_si(e->act, "", act, sizeof(act)),
                 lbw_pagefmt_si(e->bck, "", bck, sizeof(bck)));
        cell_text(b, "num", servers);
        cell_ratio(b, st, g, e->proxy, now);
        cell_sessions(b, e);
        lbw_buf_puts(b, "<td></td></tr>\n");
        server_rows(b, lb, e->proxy);
    }
}

static void certificates(struct lbw_buf *b, const struct lb *lb, int64_t now)
{
    char text[48];
    if (lb->nc == 0)
        return;
    lbw_buf_puts(b, "<tr><th colspan=\"6\">Certificates HAProxy has loaded</th></tr>\n"
                    "<tr><td colspan=\"6\">");
    for (size_t i = 0; i < lb->nc; i++) {
        double days = (lb->c[i].not_after - (double)now / 1000) / 86400;
        snprintf(text, sizeof(text), days < 0 ? "EXPIRED" : "%.1f days", days);
        lbw_buf_puts(b, i ? " &middot; <code>" : "<code>");
        lbw_buf_html(b, lb->c[i].file);
        lbw_buf_puts(b, "</code> ");
        lbw_pagefmt_badge(b, days < DAYS_CRITICAL ? "bad" : days < DAYS_WARNING ? "warn" : "ok",
                          text);
    }
    lbw_buf_puts(b, "</td></tr>\n");
}

/* The table's title row: target, version, vantage and age, connections against the limit. */
static void haproxy_title(struct lbw_buf *b, const struct lbw_view *v,
                          const struct lbw_view_group *g, int64_t now)
{
    char version[64], ago[32], cur[32], max[32], pct[32];
    double conns, maxconn, ok;
    lbw_buf_puts(b, "<tr><th colspan=\"6\" class=\"lbt\"><b>");
    lbw_buf_html(b, g->target);
    lbw_buf_puts(b, "</b> &middot; HAProxy");
    if (lbw_view_label(v, g, "haproxy_process_build_info", "version", version, sizeof(version))) {
        lbw_buf_puts(b, " ");
        lbw_buf_html(b, version);
    }
    lbw_buf_puts(b, " &middot; seen from ");
    lbw_buf_html(b, g->vantage);
    lbw_buf_printf(b, ", %s", lbw_pagefmt_ago(g->ts_ms, now, ago, sizeof(ago)));
    if (lbw_view_value(v, g, "haproxy_process_current_connections", &conns) &&
        lbw_view_value(v, g, "haproxy_process_max_connections", &maxconn) && maxconn > 0)
        lbw_buf_printf(b, " &middot; connections %s / %s (%s)",
                       lbw_pagefmt_si(conns, "", cur, sizeof(cur)),
                       lbw_pagefmt_si(maxconn, "", max, sizeof(max)),
                       lbw_pagefmt_percent(conns / maxconn, pct, sizeof(pct)));
    if (lbw_view_value(v, g, "probe_success", &ok) && !ok)
        lbw_buf_puts(b, " &middot; <span class=\"b bad\">NO STATISTICS</span>");
    lbw_buf_puts(b, "</th></tr>\n");
}

static void haproxy_table(struct lbw_buf *b, const struct lbw_view *v, struct lbw_store *st,
                          const struct lbw_view_group *g, int64_t now)
{
    struct lb lb = {0};
    char err[LBW_KEY_MAX];
    lbw_buf_puts(b, "<table class=\"lb\">");
    haproxy_title(b, v, g, now);
    if (lbw_view_label(v, g, "lbwatch_probe_error_info", "error", err, sizeof(err))) {
        lbw_buf_puts(b, "<tr><td colspan=\"6\"><span class=\"err\">");
        lbw_buf_html(b, err);
        lbw_buf_puts(b, "</span></td></tr>\n");
    }
    list_entities(&lb, v, g);
    if (!lb.failed) {
        fill_entities(&lb, v, g);
        frontends(b, &lb);
        backends(b, &lb, st, g, now);
        certificates(b, &lb, now);
    }
    lbw_buf_puts(b, "</table>\n");
    lb_free(&lb);
}

/* --- nginx -------------------------------------------------------------------------------- */

static void nginx_row(struct lbw_buf *b, const struct lbw_view *v, struct lbw_store *st,
                      const struct lbw_view_group *g, int64_t now)
{
    static const char *const gauges[] = {"nginx_connections_active", "nginx_connections_reading",
                                         "nginx_connections_writing",
                                         "nginx_connections_waiting"};
    const struct lbw_view_series *req = lbw_view_find(v, g, "nginx_http_requests_total");
    double x, rate = NAN;
    char ago[32];
    lbw_buf_puts(b, "<tr>");
    cell_text(b, "t", g->target);
    lbw_buf_puts(b, "<td>");
    lbw_buf_html(b, g->vantage);
    lbw_buf_printf(b, "<span class=\"sub\">%s</span></td>",
                   lbw_pagefmt_ago(g->ts_ms, now, ago, sizeof(ago)));
    for (size_t i = 0; i < sizeof(gauges) / sizeof(gauges[0]); i++)
        cell_number(b, lbw_view_value(v, g, gauges[i], &x) ? x : NAN, "");
    if (req)
        lbw_view_rate(st, req->key, now - RATE_WINDOW_MS, &rate);
    cell_number(b, rate, "/s");
    lbw_buf_puts(b, "</tr>\n");
}

/* --- choosing what to show ---------------------------------------------------------------- */

static int is_haproxy(const struct lbw_view_group *g) { return strcmp(g->probe, "haproxy") == 0; }

static int is_nginx(const struct lbw_view *v, const struct lbw_view_group *g)
{
    return lbw_view_find(v, g, "nginx_connections_active") != NULL;
}

/* The group to show for the target of groups[i] among those pred accepts: this node's, else
 * the first. Returns it, and in *next the first group of the next target. */
static const struct lbw_view_group *pick(const struct lbw_view *v, size_t i, const char *self,
                                         int (*pred)(const struct lbw_view *,
                                                     const struct lbw_view_group *),
                                         size_t *next)
{
    const struct lbw_view_group *chosen = NULL;
    size_t j = i;
    for (; j < v->ngroups && strcmp(v->groups[j].target, v->groups[i].target) == 0; j++) {
        const struct lbw_view_group *g = &v->groups[j];
        if (!pred(v, g))
            continue;
        if (!chosen || (strcmp(g->vantage, self) == 0 && strcmp(chosen->vantage, self) != 0))
            chosen = g;
    }
    *next = j;
    return chosen;
}

static int haproxy_pred(const struct lbw_view *v, const struct lbw_view_group *g)
{
    (void)v;
    return is_haproxy(g) && *g->target;
}

static int nginx_pred(const struct lbw_view *v, const struct lbw_view_group *g)
{
    return is_nginx(v, g) && *g->target;
}

size_t lbw_lbpage_render(struct lbw_buf *b, const struct lbw_view *v, struct lbw_store *st,
                         const char *self, int64_t now)
{
    size_t shown = 0, next;
    for (size_t i = 0; i < v->ngroups; i = next) {
        const struct lbw_view_group *g = pick(v, i, self, haproxy_pred, &next);
        if (!g)
            continue;
        if (shown++ == 0)
            lbw_buf_puts(b, "<h2>Balancer</h2>\n");
        haproxy_table(b, v, st, g, now);
    }
    size_t nginx = 0;
    for (size_t i = 0; i < v->ngroups; i = next) {
        const struct lbw_view_group *g = pick(v, i, self, nginx_pred, &next);
        if (!g)
            continue;
        if (shown++ == 0)
            lbw_buf_puts(b, "<h2>Balancer</h2>\n");
        if (nginx++ == 0)
            lbw_buf_puts(b, "<table class=\"lb\"><tr><th>nginx</th><th>Seen from</th>"
                            "<th>Active</th><th>Reading</th><th>Writing</th><th>Waiting</th>"
                            "<th>Requests</th></tr>\n");
        nginx_row(b, v, st, g, now);
    }
    if (nginx)
        lbw_buf_puts(b, "</table>\n");
    return shown;
}
