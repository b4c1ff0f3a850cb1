/* alertpage.c - the alerts, failing receivers and silences panels of the status page, from the
 * documents of node/alertview. See alertpage.h. */
#include "node/alertpage.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The document d parsed, or NULL when there is none yet (or it does not parse). */
static json_t *load_doc(struct lbw_status *status, enum lbw_status_doc d)
{
    char *text = lbw_status_doc(status, d);
    if (!text)
        return NULL;
    json_t *doc = json_loads(text, 0, NULL);
    free(text);
    return doc;
}

static const char *str_of(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static void html_badge(struct lbw_buf *b, const char *cls, const char *text)
{
    lbw_buf_printf(b, "<span class=\"b %s\">", cls);
    lbw_buf_html(b, text);
    lbw_buf_puts(b, "</span>");
}

/* "3 m ago", "2 h ago", "4 d ago" for a past time in ms. */
static void ago(struct lbw_buf *b, json_t *ms, int64_t now)
{
    if (!json_is_integer(ms)) {
        lbw_buf_puts(b, "&ndash;");
        return;
    }
    int64_t s = (now - json_integer_value(ms)) / 1000;
    if (s < 0)
        s = 0;
    if (s < 120)
        lbw_buf_printf(b, "%lld s ago", (long long)s);
    else if (s < 7200)
        lbw_buf_printf(b, "%lld min ago", (long long)(s / 60));
    else if (s < 172800)
        lbw_buf_printf(b, "%lld h ago", (long long)(s / 3600));
    else
        lbw_buf_printf(b, "%lld d ago", (long long)(s / 86400));
}

static void utc(struct lbw_buf *b, json_t *ms)
{
    char when[32] = "";
    time_t t = (time_t)(json_integer_value(ms) / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm))
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M UTC", &tm);
    lbw_buf_puts(b, when);
}

/* The alert's labels other than alertname and severity, as name=value chips. */
static void alert_labels(struct lbw_buf *b, json_t *labels)
{
    const char *name;
    json_t *v;
    json_object_foreach(labels, name, v) {
        if (strcmp(name, "alertname") == 0 || strcmp(name, "severity") == 0)
            continue;
        lbw_buf_puts(b, "<code>");
        lbw_buf_html(b, name);
        lbw_buf_puts(b, "=");
        lbw_buf_html(b, json_string_value(v) ? json_string_value(v) : "");
        lbw_buf_puts(b, "</code> ");
    }
}

/* Silenced, inhibited, acknowledged, escalated. */
static void alert_notes(struct lbw_buf *b, json_t *a)
{
    json_t *sil = json_object_get(a, "silenced_by"), *ack = json_object_get(a, "acknowledged");
    if (json_is_integer(sil))
        lbw_buf_printf(b, "silenced by #%lld ", (long long)json_integer_value(sil));
    if (json_is_string(json_object_get(a, "inhibited_by")))
        lbw_buf_puts(b, "inhibited ");
    if (json_is_object(ack)) {
        lbw_buf_puts(b, "acknowledged by ");
        lbw_buf_html(b, str_of(ack, "by"));
        lbw_buf_puts(b, " ");
    }
    if (json_is_true(json_object_get(a, "escalated")))
        lbw_buf_puts(b, "escalated");
}

static void alert_row(struct lbw_buf *b, json_t *a, int64_t now)
{
    const char *state = str_of(a, "state"), *sev = str_of(a, "severity");
    const char *summary = str_of(json_object_get(a, "annotations"), "summary");
    lbw_buf_puts(b, "<tr><td>");
    html_badge(b, strcmp(state, "firing") == 0 ? "bad" : "warn", state);
    lbw_buf_puts(b, "</td><td>");
    html_badge(b, strcmp(sev, "critical") == 0 ? "bad" : strcmp(sev, "warning") == 0 ? "warn" : "na",
               sev);
    lbw_buf_puts(b, "</td><td class=\"t\">");
    lbw_buf_html(b, str_of(a, "name"));
    if (*summary) {
        lbw_buf_puts(b, "<span class=\"sub\">");
        lbw_buf_html(b, summary);
        lbw_buf_puts(b, "</span>");
    }
    lbw_buf_puts(b, "</td><td>");
    alert_labels(b, json_object_get(a, "labels"));
    lbw_buf_puts(b, "</td><td class=\"num\">");
    ago(b, json_object_get(a, "active_since"), now);
    lbw_buf_printf(b, "<span class=\"sub\">%s</span></td><td>", str_of(a, "fingerprint"));
    alert_notes(b, a);
    lbw_buf_puts(b, "</td></tr>\n");
}

static int is_active(json_t *a)
{
    const char *state = str_of(a, "state");
    return strcmp(state, "firing") == 0 || strcmp(state, "pending") == 0;
}

static void alerts_panel(struct lbw_buf *b, json_t *alerts, int64_t now,
                         struct lbw_alertpage_counts *c)
{
    size_t i;
    json_t *a;
    json_array_foreach(alerts, i, a) {
        if (strcmp(str_of(a, "state"), "firing") == 0)
            c->firing++;
        else if (strcmp(str_of(a, "state"), "pending") == 0)
            c->pending++;
    }
    lbw_buf_puts(b, "<h2>Alerts</h2>");
    if (c->firing + c->pending == 0) {
        lbw_buf_puts(b, "<p class=\"quiet\">No active alerts.</p>\n");
        return;
    }
    lbw_buf_puts(b, "<table><tr><th>State</th><th>Severity</th><th>Alert</th><th>Labels</th>"
                    "<th>Active since</th><th>Notes</th></tr>\n");
    json_array_foreach(alerts, i, a) {
        if (is_active(a))
            alert_row(b, a, now);
    }
    lbw_buf_puts(b, "</table>\n");
}

/* A receiver that keeps failing is an alarm on every node. */
static void failing_receivers(struct lbw_buf *b, json_t *notifications)
{
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(notifications, "receivers"), i, r) {
        if (!json_is_true(json_object_get(r, "failing")))
            continue;
        lbw_buf_puts(b, "<div class=\"alarm\">Notifications to receiver <b>");
        lbw_buf_html(b, str_of(r, "name"));
        lbw_buf_printf(b, "</b> are failing (%lld attempts in a row",
                       (long long)json_integer_value(json_object_get(r, "consecutive_failures")));
        if (*str_of(r, "last_error")) {
            lbw_buf_puts(b, ": ");
            lbw_buf_html(b, str_of(r, "last_error"));
        }
        lbw_buf_puts(b, ").</div>\n");
    }
}

static void silence_matchers(struct lbw_buf *b, json_t *matchers)
{
    size_t i;
    json_t *m;
    json_array_foreach(matchers, i, m) {
        lbw_buf_puts(b, "<code>");
        lbw_buf_html(b, str_of(m, "name"));
        lbw_buf_puts(b, json_is_true(json_object_get(m, "negate")) ? "!=" : "=");
        lbw_buf_html(b, str_of(m, "value"));
        lbw_buf_puts(b, "</code> ");
    }
}

static void silences_panel(struct lbw_buf *b, json_t *silences, struct lbw_alertpage_counts *c)
{
    size_t i;
    json_t *s;
    json_array_foreach(silences, i, s) {
        if (!json_is_true(json_object_get(s, "active")))
            continue;
        if (c->silences++ == 0)
            lbw_buf_puts(b, "<h2>Silences</h2><table><tr><th>ID</th><th>Matchers</th>"
                            "<th>Author</th><th>Comment</th><th>Ends</th></tr>\n");
        lbw_buf_printf(b, "<tr><td class=\"num\">#%lld</td><td>",
                       (long long)json_integer_value(json_object_get(s, "id")));
        silence_matchers(b, json_object_get(s, "matchers"));
        lbw_buf_puts(b, "</td><td>");
        lbw_buf_html(b, str_of(s, "author"));
        lbw_buf_puts(b, "</td><td>");
        lbw_buf_html(b, str_of(s, "comment"));
        lbw_buf_puts(b, "</td><td class=\"num\">");
        utc(b, json_object_get(s, "ends_at"));
        lbw_buf_puts(b, "</td></tr>\n");
    }
    if (c->silences)
        lbw_buf_puts(b, "</table>\n");
}

void lbw_alertpage_render(struct lbw_buf *b, struct lbw_status *status, int64_t now,
                          struct lbw_alertpage_counts *counts)
{
    memset(counts, 0, sizeof(*counts));
    json_t *alerts = load_doc(status, LBW_DOC_ALERTS);
    json_t *silences = load_doc(status, LBW_DOC_SILENCES);
    json_t *notifications = load_doc(status, LBW_DOC_NOTIFICATIONS);
    if (notifications)
        failing_receivers(b, notifications);
    if (json_is_array(alerts))
        alerts_panel(b, alerts, now, counts);
    if (json_is_array(silences))
        silences_panel(b, silences, counts);
    json_decref(alerts);
    json_decref(silences);
    json_decref(notifications);
}
