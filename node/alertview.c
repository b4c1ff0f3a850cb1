/* alertview.c - the alert ledger rendered as JSON for the web. See alertview.h. */
#include "node/alertview.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probes/sample.h"

static json_t *time_or_null(int64_t ms) { return ms ? json_integer(ms) : json_null(); }

static json_t *str_or_null(const char *s) { return s ? json_string(s) : json_null(); }

static json_t *number(double v) { return isfinite(v) ? json_real(v) : json_null(); }

/* A canonical key's labels as an object (its metric part left out). */
static json_t *labels_of(const char *key)
{
    struct lbw_key_parsed k;
    json_t *o = json_object();
    if (key && lbw_key_parse(key, strlen(key), &k) == 0)
        for (size_t i = 0; i < k.nlabels; i++)
            json_object_set_new(o, k.labels[i].name, json_string(k.labels[i].value));
    return o;
}

static void hex16(uint64_t v, char out[17]) { snprintf(out, 17, "%016" PRIx64, v); }

static char *dump(json_t *doc)
{
    char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
    json_decref(doc);
    return text;
}

/* ---- alerts ---------------------------------------------------------------------------------- */

static int state_rank(enum lbw_alert_state s)
{
    return s == LBW_ALERT_FIRING ? 0 : s == LBW_ALERT_PENDING ? 1 : 2;
}

static int cmp_alerts(const void *x, const void *y)
{
    const struct lbw_alert *a = *(const struct lbw_alert *const *)x;
    const struct lbw_alert *b = *(const struct lbw_alert *const *)y;
    int ra = state_rank(a->state), rb = state_rank(b->state);
    if (ra != rb)
        return ra - rb;
    if (a->changed_at != b->changed_at)
        return a->changed_at > b->changed_at ? -1 : 1;
    return a->fingerprint < b->fingerprint ? -1 : a->fingerprint > b->fingerprint;
}

static json_t *alert_json(const struct lbw_ledger *l, const struct lbw_route_config *route,
                          const struct lbw_alert *a, int64_t now)
{
    char fp[17], inh[17];
    struct lbw_key_parsed k;
    const char *name = "";
    if (lbw_key_parse(a->labels, strlen(a->labels), &k) == 0 && lbw_key_label(&k, "alertname"))
        name = lbw_key_label(&k, "alertname");
    hex16(a->fingerprint, fp);
    const struct lbw_silence *sil = lbw_route_silenced(l, a, now);
    const struct lbw_alert *by = route ? lbw_route_inhibited(route, l, a) : NULL;
    if (by)
        hex16(by->fingerprint, inh);
    json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:o, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:b}",
                          "name", name, "state", lbw_alert_state_name(a->state), "severity",
                          lbw_severity_name(a->severity), "labels", labels_of(a->labels),
                          "annotations", labels_of(a->annotations), "fingerprint", fp,
                          "active_since", time_or_null(a->active_since), "firing_since",
                          time_or_null(a->firing_since), "resolved_at",
                          time_or_null(a->resolved_at), "value", number(a->value),
                          "silenced_by", sil ? json_integer((json_int_t)sil->id) : json_null(),
                          "inhibited_by", by ? json_string(inh) : json_null(), "escalated",
                          a->escalated);
    json_object_set_new(o, "acknowledged",
                        a->ack.acked ? json_pack("{s:s, s:I, s:s}", "by", a->ack.by, "at",
                                                 (json_int_t)a->ack.at, "comment",
                                                 a->ack.comment ? a->ack.comment : "")
                                     : json_null());
    return o;
}

char *lbw_alertview_alerts(const struct lbw_ledger *l, const struct lbw_route_config *route,
                           int64_t now)
{
    size_t n;
    const struct lbw_alert *al = lbw_ledger_alerts(l, &n);
    const struct lbw_alert **order = malloc((n ? n : 1) * sizeof(*order));
    json_t *arr = json_array();
    if (!order) {
        json_decref(arr);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        order[i] = &al[i];
    if (n > 1)
        qsort(order, n, sizeof(*order), cmp_alerts);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, alert_json(l, route, order[i], now));
    free(order);
    return dump(arr);
}

/* ---- silences -------------------------------------------------------------------------------- */

struct silences {
    json_t *arr;
    int64_t now;
};

static void add_silence(void *arg, const struct lbw_silence *s)
{
    struct silences *c = arg;
    json_t *m = json_array();
    for (size_t i = 0; i < s->nmatchers; i++)
        json_array_append_new(m, json_pack("{s:s, s:s, s:b}", "name", s->matchers[i].name,
                                           "value", s->matchers[i].value, "negate",
                                           s->matchers[i].negate));
    json_array_append_new(c->arr, json_pack("{s:I, s:o, s:I, s:I, s:s, s:s, s:I, s:b}", "id",
                                         (json_int_t)s->id, "matchers", m, "starts_at",
                                         (json_int_t)s->starts_at, "ends_at",
                                         (json_int_t)s->ends_at, "author", s->author,
                                         "comment", s->comment ? s->comment : "", "created_at",
                                         (json_int_t)s->created_at, "active",
                                         lbw_silence_active(s, c->now)));
}

char *lbw_alertview_silences(const struct lbw_ledger *l, int64_t now)
{
    struct silences c = {json_array(), now};
    lbw_ledger_foreach_silence(l, -1, add_silence, &c);
    return dump(c.arr);
}

/* ---- notifications --------------------------------------------------------------------------- */

static json_t *intent_json(const struct lbw_intent *in)
{
    char fp[17];
    json_t *alerts = json_array();
    for (size_t i = 0; i < in->nalerts; i++) {
        hex16(in->alerts[i].fingerprint, fp);
        json_array_append_new(
            alerts, json_pack("{s:s, s:s, s:o}", "fingerprint", fp, "status",
                              in->alerts[i].status == LBW_NOTIFY_FIRING ? "firing" : "resolved",
                              "labels", labels_of(in->alerts[i].labels)));
    }
    return json_pack("{s:I, s:s, s:o, s:s, s:I, s:s, s:o, s:b, s:o, s:I, s:o, s:o}", "id",
                     (json_int_t)in->id, "receiver", in->receiver, "group",
                     labels_of(in->group_key), "kind", lbw_intent_kind_name(in->kind),
                     "created_at", (json_int_t)in->created_at, "idempotency_key",
                     in->idempotency_key, "alerts", alerts, "delivered", in->delivered,
                     "delivered_at", time_or_null(in->delivered_at), "attempts",
                     (json_int_t)in->attempts, "last_error", str_or_null(in->last_error),
                     "next_attempt_at", in->delivered ? json_null()
                                                      : time_or_null(in->next_attempt_at));
}

char *lbw_alertview_notifications(const struct lbw_ledger *l)
{
    size_t ni, nr;
    const struct lbw_intent *in = lbw_ledger_intents(l, &ni);
    const struct lbw_receiver_health *h = lbw_ledger_receivers(l, &nr);
    json_t *intents = json_array(), *receivers = json_array();
    for (size_t i = ni; i-- > 0;) /* newest first */
        json_array_append_new(intents, intent_json(&in[i]));
    for (size_t i = 0; i < nr; i++)
        json_array_append_new(
            receivers,
            json_pack("{s:s, s:I, s:o, s:o, s:o, s:b}", "name", h[i].name,
                      "consecutive_failures", (json_int_t)h[i].consecutive_failures,
                      "last_error", str_or_null(h[i].last_error), "last_failure_at",
                      time_or_null(h[i].last_failure_at), "last_success_at",
                      time_or_null(h[i].last_success_at), "failing",
                      h[i].consecutive_failures >= LBW_NOTIFICATIONS_FAILING_AFTER));
    return dump(json_pack("{s:o, s:o}", "intents", intents, "receivers", receivers));
}
