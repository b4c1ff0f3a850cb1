/* page.c - the status page: one self-contained HTML document (inline CSS and SVG, no scripts,
 * no external resources), rendered on the server from a view of the store. See page.h. */
#include "node/page.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "node/alertpage.h"
#include "node/fsm.h"
#include "node/hostpage.h"
#include "node/lbpage.h"
#include "node/view.h"
#include "probes/sample.h"

#define SPARK_POINTS 60
#define SPARK_STEP_MS 60000
#define DAYS_CRITICAL 3
#define DAYS_WARNING 14

static const char css[] =
    "*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,'Segoe UI',"
    "Roboto,sans-serif;background:#0f1419;color:#d7dde4}"
    "header{display:flex;align-items:center;gap:18px;padding:14px 24px;background:#161d25;"
    "border-bottom:1px solid #243040}header h1{margin:0;font-size:19px;letter-spacing:.5px}"
    "header h1 span{color:#4fb3ff}.meta{color:#8a97a6;font-size:12.5px}"
    ".chips{margin-left:auto;display:flex;gap:8px}.chip{padding:4px 10px;border-radius:12px;"
    "background:#222c38;font-size:12.5px}.chip b{font-size:14px}"
    "main{padding:18px 24px}table{width:100%;border-collapse:collapse;background:#161d25;"
    "border:1px solid #243040;border-radius:8px;overflow:hidden}"
    "th{text-align:left;font-weight:600;font-size:12px;text-transform:uppercase;"
    "letter-spacing:.6px;color:#8a97a6;padding:9px 12px;background:#1b2430;white-space:nowrap}"
    "td{padding:9px 12px;border-top:1px solid #222c38;vertical-align:middle}"
    "td.t{font-weight:600}td .sub{display:block;font-weight:400;color:#8a97a6;font-size:12px;white-space:nowrap}"
    ".b{display:inline-block;min-width:52px;text-align:center;padding:2px 8px;border-radius:4px;"
    "font-weight:700;font-size:12px}.ok{background:#17402a;color:#5ee08f}"
    ".bad{background:#4a1d1f;color:#ff7b7b}.warn{background:#4a3a12;color:#ffc857}"
    ".na{background:#2a323d;color:#8a97a6}.err{color:#ff9b9b;font-size:12px;display:block}"
    ".num{font-variant-numeric:tabular-nums}svg{vertical-align:middle}"
    "footer{padding:14px 24px;color:#8a97a6;font-size:12.5px}footer a{color:#4fb3ff}"
    ".cl{margin:0 24px;padding:12px 16px 4px;background:#161d25;border:1px solid #243040;"
    "border-top:0;border-radius:0 0 8px 8px;font-size:13px;color:#8a97a6}.cl b{color:#d7dde4}"
    ".cl code{color:#d7dde4}.mem{display:inline-block;margin:8px 8px 8px 0;padding:6px 10px;"
    "border-radius:6px;background:#1b2430;border-left:3px solid #5ee08f;color:#d7dde4}"
    ".mem.down{border-left-color:#ff7b7b}.mem .sub{display:block;color:#8a97a6;"
    "font-size:11.5px}.alarm{margin:12px 24px 0;padding:10px 14px;border-radius:6px;"
    "background:#4a1d1f;color:#ffb3b3;font-weight:600}main .alarm{margin:0 0 12px}"
    "h2{font-size:13px;text-transform:uppercase;letter-spacing:.6px;color:#8a97a6;"
    "margin:18px 0 8px}main h2:first-child{margin-top:0}.quiet{color:#8a97a6;margin:0}"
    "td code{color:#d7dde4;background:#222c38;padding:1px 5px;border-radius:3px;font-size:12px}"
    "table.lb{margin-bottom:14px}th.lbt{text-transform:none;letter-spacing:0;font-size:13px;"
    "font-weight:400;color:#d7dde4}td.ind{padding-left:32px}tr.srv td{padding-top:5px;"
    "padding-bottom:5px;font-size:13px}";

static void badge(struct lbw_buf *b, const char *cls, const char *text)
{
    lbw_buf_printf(b, "<span class=\"b %s\">", cls);
    lbw_buf_html(b, text);
    lbw_buf_puts(b, "</span>");
}

static void iso_time(char *out, size_t len, int64_t unix_s)
{
    time_t t = (time_t)unix_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, len, "%Y-%m-%d %H:%M", &tm);
}

static const struct lbw_view_group *find_group(const struct lbw_view *v, size_t first, size_t n,
                                               const char *vantage, const char *probe)
{
    for (size_t i = first; i < first + n; i++)
        if (strcmp(v->groups[i].vantage, vantage) == 0 && strcmp(v->groups[i].probe, probe) == 0)
            return &v->groups[i];
    return NULL;
}

/* The handshake time over the last hour, one point per minute, as an inline SVG polyline. */
static void sparkline(struct lbw_buf *b, struct lbw_store *st, const char *target,
                      const char *vantage, int64_t now)
{
    struct lbw_step steps[SPARK_POINTS];
    char key[LBW_KEY_MAX];
    struct lbw_label l[] = {{"probe", "tls"}, {"target", target}, {"vantage", vantage}};
    int64_t to = now - now % SPARK_STEP_MS;
    int64_t from = to - (SPARK_POINTS - 1) * SPARK_STEP_MS;
    if (lbw_key_build(key, sizeof(key), "lbwatch_tls_handshake_seconds", l, 3) < 0)
        return;
    long n = lbw_store_steps(st, key, strlen(key), from, to + SPARK_STEP_MS - 1, SPARK_STEP_MS,
                             steps, SPARK_POINTS);
    double max = 0;
    long first = -1, last = -1;
    for (long i = 0; i < n; i++) {
        if (!steps[i].count)
            continue;
        if (first < 0)
            first = i;
        last = i;
        if (steps[i].sum / (double)steps[i].count > max)
            max = steps[i].sum / (double)steps[i].count;
    }
    if (first < 0 || max <= 0)
        return;
    /* the x axis spans the minutes that have data, so a young node draws a line, not a dot */
    double dx = last > first ? 116.0 / (double)(last - first) : 0, x = 2, y = 12;
    lbw_buf_puts(b, "<br><svg width=\"120\" height=\"24\" viewBox=\"0 0 120 24\">"
                    "<polyline fill=\"none\" stroke=\"#4fb3ff\" stroke-width=\"1.5\" points=\"");
    for (long i = first; i <= last; i++) {
        if (!steps[i].count)
            continue;
        x = 2 + (double)(i - first) * dx;
        y = 22.0 - steps[i].sum / (double)steps[i].count / max * 20.0;
        lbw_buf_printf(b, "%.1f,%.1f ", x, y);
    }
    lbw_buf_printf(b, "\"/><circle cx=\"%.1f\" cy=\"%.1f\" r=\"2\" fill=\"#4fb3ff\"/></svg>",
                   x, y);
}

static void cell_status(struct lbw_buf *b, const struct lbw_view *v,
                        const struct lbw_view_group *tls)
{
    double ok;
    char err[LBW_KEY_MAX];
    lbw_buf_puts(b, "<td>");
    if (!tls || !lbw_view_value(v, tls, "probe_success", &ok)) {
        badge(b, "na", "PENDING");
    } else if (ok) {
        badge(b, "ok", "UP");
    } else {
        badge(b, "bad", "DOWN");
        if (lbw_view_label(v, tls, "lbwatch_probe_error_info", "error", err, sizeof(err))) {
            lbw_buf_puts(b, "<span class=\"err\">");
            lbw_buf_html(b, err);
            lbw_buf_puts(b, "</span>");
        }
    }
    lbw_buf_puts(b, "</td>");
}

static void cell_cert(struct lbw_buf *b, const struct lbw_view *v,
                      const struct lbw_view_group *tls, int64_t now)
{
    double expiry, verified, host;
    char text[64], when[40], reason[LBW_KEY_MAX];
    if (!tls || !lbw_view_value(v, tls, "probe_ssl_earliest_cert_expiry", &expiry)) {
        lbw_buf_puts(b, "<td><span class=\"sub\">no certificate</span></td><td></td><td></td>");
        return;
    }
    double days = (expiry - (double)now / 1000) / 86400;
    snprintf(text, sizeof(text), days < 0 ? "EXPIRED" : "%.1f days", days);
    iso_time(when, sizeof(when), (int64_t)expiry);
    lbw_buf_puts(b, "<td class=\"num\">");
    badge(b, days < DAYS_CRITICAL ? "bad" : days < DAYS_WARNING ? "warn" : "ok", text);
    lbw_buf_printf(b, "<span class=\"sub\">until %s UTC</span></td><td>", when);
    if (lbw_view_value(v, tls, "lbwatch_tls_chain_verified", &verified) && verified) {
        badge(b, "ok", "verified");
    } else {
        badge(b, "bad", "untrusted");
        if (lbw_view_label(v, tls, "lbwatch_tls_verify_error_info", "reason", reason,
                           sizeof(reason))) {
            lbw_buf_puts(b, "<span class=\"err\">");
            lbw_buf_html(b, reason);
            lbw_buf_puts(b, "</span>");
        }
    }
    lbw_buf_puts(b, "</td><td>");
    if (lbw_view_value(v, tls, "lbwatch_tls_hostname_match", &host) && host)
        badge(b, "ok", "match");
    else
        badge(b, "bad", "MISMATCH");
    lbw_buf_puts(b, "</td>");
}

static void cell_tls(struct lbw_buf *b, const struct lbw_web_ctx *ctx, const struct lbw_view *v,
                     const struct lbw_view_group *tls, const char *target, const char *vantage,
                     int64_t now)
{
    char version[64], cipher[128];
    double hs;
    lbw_buf_puts(b, "<td>");
    if (tls && lbw_view_label(v, tls, "probe_tls_version_info", "version", version,
                              sizeof(version))) {
        lbw_buf_html(b, version);
        if (lbw_view_label(v, tls, "lbwatch_tls_cipher_info", "cipher", cipher, sizeof(cipher))) {
            lbw_buf_puts(b, "<span class=\"sub\">");
            lbw_buf_html(b, cipher);
            lbw_buf_puts(b, "</span>");
        }
    }
    lbw_buf_puts(b, "</td><td class=\"num\">");
    if (tls && lbw_view_value(v, tls, "lbwatch_tls_handshake_seconds", &hs) && hs > 0)
        lbw_buf_printf(b, "%.1f ms", hs * 1000);
    sparkline(b, ctx->store, target, vantage, now);
    lbw_buf_puts(b, "</td>");
}

static void cell_http(struct lbw_buf *b, const struct lbw_view *v,
                      const struct lbw_view_group *http, const struct lbw_view_group *redirect)
{
    double ok, code;
    char text[32];
    lbw_buf_puts(b, "<td>");
    if (http && lbw_view_value(v, http, "probe_success", &ok)) {
        lbw_view_value(v, http, "probe_http_status_code", &code);
        snprintf(text, sizeof(text), code > 0 ? "%.0f" : "no reply", code);
        badge(b, ok ? "ok" : "bad", text);
    }
    if (redirect && lbw_view_value(v, redirect, "probe_success", &ok)) {
        lbw_buf_puts(b, " ");
        badge(b, ok ? "ok" : "bad", ok ? "80\xe2\x86\x92https" : "no redirect"); /* U+2192 */
    }
    lbw_buf_puts(b, "</td>");
}

/* Lists every vantage that has data for a target; a target with none gets one pending row. */
static size_t vantages_of(const struct lbw_view *v, size_t first, size_t n, const char **out,
                          size_t max)
{
    size_t k = 0;
    for (size_t i = first; i < first + n && k < max; i++)
        if (k == 0 || strcmp(out[k - 1], v->groups[i].vantage) != 0)
            out[k++] = v->groups[i].vantage;
    return k;
}

static void target_rows(struct lbw_buf *b, const struct lbw_web_ctx *ctx,
                        const struct lbw_view *v, const struct lbw_target *t, int64_t now)
{
    const char *vantages[64];
    size_t first, n = lbw_view_target_groups(v, t->name, &first);
    size_t nv = vantages_of(v, first, n, vantages, 64);
    if (nv == 0)
        vantages[nv++] = ctx->cfg->node.name;
    for (size_t i = 0; i < nv; i++) {
        const struct lbw_view_group *tls = find_group(v, first, n, vantages[i], "tls");
        lbw_buf_puts(b, "<tr>");
        if (i == 0) {
            lbw_buf_printf(b, "<td class=\"t\" rowspan=\"%zu\">", nv);
            lbw_buf_html(b, t->name);
            lbw_buf_puts(b, "<span class=\"sub\">");
            lbw_buf_html(b, t->server_name);
            lbw_buf_puts(b, " &middot; ");
            lbw_buf_html(b, t->address);
            lbw_buf_puts(b, "</span></td>");
        }
        lbw_buf_puts(b, "<td>");
        lbw_buf_html(b, vantages[i]);
        lbw_buf_puts(b, "</td>");
        cell_status(b, v, tls);
        cell_cert(b, v, tls, now);
        cell_tls(b, ctx, v, tls, t->name, vantages[i], now);
        cell_http(b, v, find_group(v, first, n, vantages[i], "http"),
                  find_group(v, first, n, vantages[i], "redirect"));
        lbw_buf_puts(b, "</tr>\n");
    }
}

struct summary {
    unsigned up, down, cert_warn;  /* targets */
};

static int cert_problem(const struct lbw_view *v, const struct lbw_view_group *g, int64_t now)
{
    double expiry, verified, host;
    return lbw_view_value(v, g, "probe_ssl_earliest_cert_expiry", &expiry) &&
           ((expiry - (double)now / 1000) / 86400 < DAYS_WARNING ||
            (lbw_view_value(v, g, "lbwatch_tls_chain_verified", &verified) && !verified) ||
            (lbw_view_value(v, g, "lbwatch_tls_hostname_match", &host) && !host));
}

/* A target is down when any vantage's latest TLS probe failed, up when every vantage's
 * succeeded; it has a certificate problem when any vantage sees one. */
static void summarize(const struct lbw_web_ctx *ctx, const struct lbw_view *v, int64_t now,
                      struct summary *s)
{
    memset(s, 0, sizeof(*s));
    for (size_t t = 0; t < ctx->cfg->ntargets; t++) {
        size_t first, n = lbw_view_target_groups(v, ctx->cfg->targets[t].name, &first);
        int seen = 0, failed = 0, cert = 0;
        for (size_t i = first; i < first + n; i++) {
            const struct lbw_view_group *g = &v->groups[i];
            double ok;
            if (strcmp(g->probe, "tls") != 0 || !lbw_view_value(v, g, "probe_success", &ok))
                continue;
            seen = 1;
            failed |= ok == 0;
            cert |= cert_problem(v, g, now);
        }
        s->up += seen && !failed;
        s->down += failed;
        s->cert_warn += cert;
    }
}

static void header(struct lbw_buf *b, const struct lbw_web_ctx *ctx, const struct summary *s,
                   const struct lbw_alertpage_counts *alerts, int64_t now)
{
    char when[40];
    iso_time(when, sizeof(when), now / 1000);
    strncat(when, " UTC", sizeof(when) - strlen(when) - 1);
    lbw_buf_puts(b, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                    "<meta http-equiv=\"refresh\" content=\"10\">"
                    "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
                    "<title>lbwatch &middot; ");
    lbw_buf_html(b, ctx->cfg->node.name);
    lbw_buf_printf(b, "</title><style>%s</style></head><body><header><h1><span>lb</span>watch"
                      "</h1><div class=\"meta\">node <b>", css);
    lbw_buf_html(b, ctx->cfg->node.name);
    lbw_buf_printf(b, "</b> &middot; %s</div><div class=\"chips\">"
                      "<span class=\"chip\"><b>%zu</b> targets</span>"
                      "<span class=\"chip\"><b style=\"color:#5ee08f\">%u</b> up</span>"
                      "<span class=\"chip\"><b style=\"color:#ff7b7b\">%u</b> down</span>"
                      "<span class=\"chip\"><b style=\"color:#ffc857\">%u</b> certificate "
                      "problems</span><span class=\"chip\"><b style=\"color:#ff7b7b\">%u</b> "
                      "alerts firing</span></div></header>\n",
                   when, ctx->cfg->ntargets, s->up, s->down, s->cert_warn, alerts->firing);
}

static void member_chip(struct lbw_buf *b, const struct lbw_cluster_member *m, int64_t now)
{
    char contact[48] = "never";
    if (m->self)
        snprintf(contact, sizeof(contact), "this node");
    else if (m->last_contact_ms)
        snprintf(contact, sizeof(contact), "heard %.1f s ago",
                 (double)(now - m->last_contact_ms) / 1000);
    lbw_buf_printf(b, "<span class=\"mem%s\">", m->reachable ? "" : " down");
    lbw_buf_html(b, m->name[0] ? m->name : "?");
    lbw_buf_printf(b, " %s%s<span class=\"sub\">id %llu &middot; %s &middot; %s</span></span>",
                   m->leader ? "&#9733; leader" : "", m->reachable ? "" : " unreachable",
                   (unsigned long long)m->id, lbw_cluster_role_name(m->role), contact);
}

/* Cluster health: who leads, indexes and state hash, every member's reachability; and a
 * warning when this node cannot reach a majority (it cannot commit anything then). */
static void cluster_panel(struct lbw_buf *b, const struct lbw_node_status *st, int64_t now)
{
    const struct lbw_cluster_status *cs = &st->cluster;
    char hash[65];
    const char *leader = "none";
    if (!st->clustered)
        return;
    for (size_t i = 0; i < cs->nmembers; i++)
        if (cs->members[i].leader)
            leader = cs->members[i].name;
    if (!cs->has_quorum)
        lbw_buf_puts(b, "<div class=\"alarm\">This node cannot reach a majority of the "
                        "cluster: nothing it measures can be committed until it can.</div>");
    lbw_fsm_hash_hex(st->fsm.hash, hash);
    lbw_buf_printf(b, "<div class=\"cl\">Cluster &middot; this node is <b>%s</b> &middot; "
                      "leader <b>", lbw_cluster_state_name(cs->state));
    lbw_buf_html(b, leader);
    lbw_buf_printf(b, "</b> &middot; term %llu &middot; commit %llu &middot; applied %llu "
                      "&middot; state hash <code>%.12s</code><br>",
                   (unsigned long long)cs->term, (unsigned long long)cs->commit_index,
                   (unsigned long long)st->fsm.applied_index, hash);
    for (size_t i = 0; i < cs->nmembers; i++)
        member_chip(b, &cs->members[i], now);
    lbw_buf_puts(b, "</div>\n");
}

void lbw_page_status(const struct lbw_web_ctx *ctx, struct lbw_reply *r)
{
    struct lbw_view v;
    struct summary s;
    struct lbw_node_status st;
    struct lbw_buf alerts;
    struct lbw_alertpage_counts counts;
    int64_t now = lbw_now_ms();

    r->content_type = "text/html; charset=utf-8";
    if (lbw_view_build(&v, ctx->store, NULL) != 0) {
        r->status = 500;
        lbw_buf_puts(&r->body, "could not read the store\n");
        return;
    }
    summarize(ctx, &v, now, &s);
    lbw_status_read(ctx->status, &st);
    lbw_buf_init(&alerts);
    lbw_alertpage_render(&alerts, ctx->status, now, &counts);
    header(&r->body, ctx, &s, &counts, now);
    cluster_panel(&r->body, &st, now);
    lbw_buf_puts(&r->body, "<main>");
    if (alerts.len)
        lbw_buf_add(&r->body, alerts.data, alerts.len);
    lbw_buf_free(&alerts);
    lbw_buf_puts(&r->body, "<h2>Targets</h2><table><tr><th>Target</th><th>Vantage</th><th>Status</th>"
                           "<th>Certificate</th><th>Chain</th><th>Hostname</th><th>TLS</th>"
                           "<th>Handshake (1 h)</th><th>HTTP</th></tr>\n");
    for (size_t i = 0; i < ctx->cfg->ntargets; i++)
        target_rows(&r->body, ctx, &v, &ctx->cfg->targets[i], now);
    lbw_buf_puts(&r->body, "</table>\n");
    lbw_lbpage_render(&r->body, &v, ctx->store, ctx->cfg->node.name, now);
    lbw_hostpage_hosts(&r->body, &v, ctx->store, now);
    lbw_hostpage_traffic(&r->body, &v, ctx->store, now);
    lbw_buf_puts(&r->body, "</main>");
    lbw_view_free(&v);
    lbw_buf_printf(&r->body,
                   "<footer>lbwatch %s &middot; %llu series &middot; %llu probes run, %llu "
                   "failed &middot; <a href=\"/api/v1/targets\">/api/v1/targets</a> &middot; "
                   "<a href=\"/api/v1/alerts\">/api/v1/alerts</a> &middot; "
                   "<a href=\"/metrics\">/metrics</a> &middot; <a href=\"/healthz\">/healthz</a>"
                   "</footer></body></html>\n",
                   LBW_VERSION, (unsigned long long)st.store.series,
                   (unsigned long long)st.probes_run, (unsigned long long)st.probes_failed);
    r->status = 200;
}
