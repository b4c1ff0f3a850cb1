/* api.c - JSON API handlers: /api/v1/targets and /api/v1/series. See api.h. */
#include "node/api.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "node/fsm.h"
#include "node/view.h"
#include "raft/cluster.h"
#include "probes/sample.h"

#define MAX_POINTS 11000
#define MAX_SERIES 1000

static void reply_json(struct lbw_reply *r, unsigned status, json_t *doc)
{
    r->status = status;
    r->content_type = "application/json";
    /* 15 significant digits: every measurement's precision, without binary noise */
    char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
    if (text) {
        lbw_buf_puts(&r->body, text);
        lbw_buf_puts(&r->body, "\n");
        free(text);
    } else {
        r->status = 500;
        lbw_buf_puts(&r->body, "{\"error\":\"out of memory\"}\n");
    }
    json_decref(doc);
}

static void reply_error(struct lbw_reply *r, unsigned status, const char *msg)
{
    reply_json(r, status, json_pack("{s:s}", "error", msg));
}

/* ---- /api/v1/targets --------------------------------------------------------------------- */

/* JSON numbers cannot be NaN or infinite: those become null. */
static json_t *number(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static void put_value(json_t *o, const char *field, const struct lbw_view *v,
                      const struct lbw_view_group *g, const char *metric)
{
    double d;
    if (lbw_view_value(v, g, metric, &d))
        json_object_set_new(o, field, number(d));
}

static void put_int(json_t *o, const char *field, const struct lbw_view *v,
                    const struct lbw_view_group *g, const char *metric)
{
    double d;
    if (lbw_view_value(v, g, metric, &d) && isfinite(d))
        json_object_set_new(o, field, json_integer((json_int_t)d));
}

static void put_bool(json_t *o, const char *field, const struct lbw_view *v,
                     const struct lbw_view_group *g, const char *metric)
{
    double d;
    if (lbw_view_value(v, g, metric, &d))
        json_object_set_new(o, field, json_boolean(d != 0));
}

static void put_label(json_t *o, const char *field, const struct lbw_view *v,
                      const struct lbw_view_group *g, const char *metric, const char *label)
{
    char buf[LBW_KEY_MAX];
    const char *s = lbw_view_label(v, g, metric, label, buf, sizeof(buf));
    json_object_set_new(o, field, s ? json_string(s) : json_null());
}

static json_t *common_fields(const struct lbw_view *v, const struct lbw_view_group *g)
{
    json_t *o = json_object();
    json_object_set_new(o, "ts", json_integer(g->ts_ms));
    put_bool(o, "success", v, g, "probe_success");
    put_label(o, "error", v, g, "lbwatch_probe_error_info", "error");
    put_value(o, "duration_seconds", v, g, "probe_duration_seconds");
    return o;
}

static json_t *tls_fields(const struct lbw_view *v, const struct lbw_view_group *g, int64_t now)
{
    json_t *o = common_fields(v, g);
    put_value(o, "connect_seconds", v, g, "lbwatch_tls_connect_seconds");
    put_value(o, "handshake_seconds", v, g, "lbwatch_tls_handshake_seconds");
    if (!lbw_view_find(v, g, "lbwatch_tls_cert_not_after_seconds"))
        return o; /* no certificate seen in the latest result */
    put_label(o, "version", v, g, "probe_tls_version_info", "version");
    put_label(o, "cipher", v, g, "lbwatch_tls_cipher_info", "cipher");
    put_int(o, "not_before", v, g, "lbwatch_tls_cert_not_before_seconds");
    put_int(o, "not_after", v, g, "lbwatch_tls_cert_not_after_seconds");
    put_int(o, "earliest_not_after", v, g, "probe_ssl_earliest_cert_expiry");
    double na;
    if (lbw_view_value(v, g, "probe_ssl_earliest_cert_expiry", &na))
        json_object_set_new(o, "days_left", number((na - (double)now / 1000) / 86400));
    put_bool(o, "chain_verified", v, g, "lbwatch_tls_chain_verified");
    put_label(o, "verify_error", v, g, "lbwatch_tls_verify_error_info", "reason");
    put_bool(o, "hostname_match", v, g, "lbwatch_tls_hostname_match");
    put_label(o, "key_type", v, g, "lbwatch_tls_key_bits", "type");
    put_int(o, "key_bits", v, g, "lbwatch_tls_key_bits");
    put_label(o, "ocsp", v, g, "lbwatch_tls_ocsp_status", "status");
    put_int(o, "chain_length", v, g, "lbwatch_tls_chain_length");
    put_label(o, "subject", v, g, "probe_ssl_last_chain_info", "subject");
    put_label(o, "issuer", v, g, "probe_ssl_last_chain_info", "issuer");
    put_label(o, "fingerprint_sha256", v, g, "probe_ssl_last_chain_info", "fingerprint_sha256");
    return o;
}

static json_t *http_fields(const struct lbw_view *v, const struct lbw_view_group *g)
{
    json_t *o = common_fields(v, g);
    put_int(o, "status_code", v, g, "probe_http_status_code");
    put_value(o, "first_byte_seconds", v, g, "lbwatch_http_first_byte_seconds");
    put_bool(o, "body_match", v, g, "lbwatch_http_body_match");
    put_bool(o, "redirect_https", v, g, "lbwatch_http_redirect_https");
    json_t *phases = json_object();
    const char *names[] = {"connect", "tls", "processing", "transfer"};
    for (size_t i = 0; i < 4; i++) {
        char key[LBW_KEY_MAX];
        struct lbw_label l[] = {{"phase", names[i]}, {"probe", g->probe},
                                {"target", g->target}, {"vantage", g->vantage}};
        if (lbw_key_build(key, sizeof(key), "probe_http_duration_seconds", l, 4) < 0)
            continue;
        for (size_t k = g->first; k < g->first + g->n; k++)
            if (strcmp(v->cur[k].key, key) == 0)
                json_object_set_new(phases, names[i], number(v->cur[k].value));
    }
    json_object_set_new(o, "phases", phases);
    return o;
}

/* {"vantage": ..., "tls": {...}, "http": {...}, "redirect": {...}, "haproxy": {...}} per
 * vantage; a scrape (haproxy, ...) shows its outcome: ts, success, error, duration */
static json_t *vantages_of(const struct lbw_view *v, const char *target, int64_t now, int *up)
{
    json_t *arr = json_array();
    json_t *cur = NULL;
    const char *cur_vantage = NULL;
    size_t first, n = lbw_view_target_groups(v, target, &first);
    for (size_t i = first; i < first + n; i++) {
        const struct lbw_view_group *g = &v->groups[i];
        if (!cur_vantage || strcmp(cur_vantage, g->vantage) != 0) {
            cur = json_pack("{s:s}", "vantage", g->vantage);
            json_array_append_new(arr, cur);
            cur_vantage = g->vantage;
        }
        json_t *probe;
        if (strcmp(g->probe, "tls") == 0)
            probe = tls_fields(v, g, now);
        else if (strcmp(g->probe, "http") == 0 || strcmp(g->probe, "redirect") == 0)
            probe = http_fields(v, g);
        else
            probe = common_fields(v, g); /* scrapes: their samples are on /metrics */
        double ok;
        if (lbw_view_value(v, g, "probe_success", &ok) && ok == 0)
            *up = 0;
        json_object_set_new(cur, g->probe, probe);
    }
    return arr;
}

void lbw_api_targets(const struct lbw_web_ctx *ctx, struct lbw_reply *r)
{
    struct lbw_view v;
    if (lbw_view_build(&v, ctx->store, NULL) != 0) {
        reply_error(r, 500, "could not read the store");
        return;
    }
    int64_t now = lbw_now_ms();
    json_t *targets = json_array();
    for (size_t i = 0; i < ctx->cfg->ntargets; i++) {
        const struct lbw_target *t = &ctx->cfg->targets[i];
        int up = 1;
        json_t *vantages = vantages_of(&v, t->name, now, &up);
        json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:o}", "name", t->name, "address", t->address,
                              "server_name", t->server_name, "up",
                              json_array_size(vantages) ? json_boolean(up) : json_null(),
                              "vantages", vantages);
        json_array_append_new(targets, o);
    }
    lbw_view_free(&v);
    reply_json(r, 200, json_pack("{s:s, s:I, s:o}", "node", ctx->cfg->node.name,
                                 "generated_at", (json_int_t)now, "targets", targets));
}

/* ---- /api/v1/cluster --------------------------------------------------------------------- */

static json_t *member_json(const struct lbw_cluster_member *m)
{
    return json_pack("{s:I, s:s, s:s, s:b, s:b, s:b, s:o, s:s, s:s}", "id", (json_int_t)m->id,
                     "name", m->name, "role", lbw_cluster_role_name(m->role), "leader",
                     m->leader, "self", m->self, "reachable", m->reachable, "last_contact",
                     m->last_contact_ms ? json_integer(m->last_contact_ms) : json_null(),
                     "raft", m->raft, "web", m->web);
}

static json_t *leader_json(const struct lbw_cluster_status *cs)
{
    for (size_t i = 0; i < cs->nmembers; i++)
        if (cs->members[i].id == cs->leader_id && cs->leader_id)
            return json_pack("{s:I, s:s, s:s}", "id", (json_int_t)cs->leader_id, "name",
                             cs->members[i].name, "web", cs->members[i].web);
    if (cs->leader_id)
        return json_pack("{s:I, s:n, s:n}", "id", (json_int_t)cs->leader_id, "name", "web");
    return json_null();
}

static json_t *counts_json(const char *(*name)(int), const uint64_t *n, int kinds)
{
    json_t *o = json_object();
    for (int i = 0; i < kinds; i++)
        json_object_set_new(o, name(i), json_integer((json_int_t)n[i]));
    return o;
}

static const char *reject_name(int i) { return lbw_fsm_reject_name((enum lbw_fsm_reject)i); }
static const char *refusal_name(int i) { return lbw_refusal_name((enum lbw_refusal)i); }

void lbw_api_cluster(const struct lbw_web_ctx *ctx, struct lbw_reply *r)
{
    struct lbw_node_status st;
    char hash[65];
    lbw_status_read(ctx->status, &st);
    if (!st.clustered) {
        reply_json(r, 200, json_pack("{s:b, s:I, s:s, s:s}", "clustered", 0, "id",
                                     (json_int_t)st.id, "name", st.name, "state",
                                     "standalone"));
        return;
    }
    const struct lbw_cluster_status *cs = &st.cluster;
    json_t *members = json_array();
    for (size_t i = 0; i < cs->nmembers; i++)
        json_array_append_new(members, member_json(&cs->members[i]));
    lbw_fsm_hash_hex(st.fsm.hash, hash);
    json_t *doc = json_pack(
        "{s:b, s:I, s:s, s:s, s:I, s:o, s:b, s:b, s:I, s:I, s:I, s:s, s:o, s:I}", "clustered", 1,
        "id", (json_int_t)st.id, "name", st.name, "state", lbw_cluster_state_name(cs->state),
        "term", (json_int_t)cs->term, "leader", leader_json(cs), "leader_ready",
        cs->leader_ready, "has_quorum", cs->has_quorum, "commit_index",
        (json_int_t)cs->commit_index, "applied_index", (json_int_t)st.fsm.applied_index,
        "raft_applied_index", (json_int_t)cs->last_applied, "fsm_hash", hash, "members",
        members, "pending", (json_int_t)cs->pending);
    json_object_set_new(doc, "batches",
                        json_pack("{s:I, s:I, s:o}", "accepted", (json_int_t)st.fsm.batches,
                                  "samples", (json_int_t)st.fsm.samples, "rejected",
                                  counts_json(reject_name, st.fsm.rejected,
                                              LBW_REJECT_KINDS)));
    json_object_set_new(doc, "refused",
                        counts_json(refusal_name, cs->transport.refused, LBW_REFUSAL_KINDS));
    json_object_set_new(doc, "submits_refused", json_integer((json_int_t)cs->submits_refused));
    json_object_set_new(doc, "transport",
                        json_string(cs->plain_tcp ? "plain-tcp" : "mutual-tls"));
    json_object_set_new(doc, "pending_bytes", json_integer((json_int_t)cs->pending_bytes));
    json_object_set_new(doc, "replication_lag", json_integer((json_int_t)cs->replication_lag));
    if (st.bench)
        json_object_set_new(doc, "bench",
                            json_pack("{s:b, s:I, s:I}", "active", st.loadgen.active, "samples",
                                      (json_int_t)st.loadgen.samples, "backlog_waits",
                                      (json_int_t)st.loadgen.backlog_waits));
    reply_json(r, 200, doc);
}

/* ---- the alert ledger's documents ----------------------------------------------------------- */

void lbw_api_doc(const struct lbw_web_ctx *ctx, enum lbw_status_doc which, struct lbw_reply *r)
{
    char *text = lbw_status_doc(ctx->status, which);
    r->status = 200;
    r->content_type = "application/json";
    if (text)
        lbw_buf_puts(&r->body, text);
    else
        lbw_buf_puts(&r->body, which == LBW_DOC_NOTIFICATIONS ? "{\"intents\":[],\"receivers\":[]}"
                                                              : "[]");
    lbw_buf_puts(&r->body, "\n");
    free(text);
}

/* ---- /api/v1/series ---------------------------------------------------------------------- */

/* "now", unix ms, or "-<duration>" before now */
static int parse_time(const char *s, int64_t now, int64_t *out)
{
    if (strcmp(s, "now") == 0) {
        *out = now;
        return 0;
    }
    if (s[0] == '-') {
        uint64_t ms;
        if (lbw_parse_duration(s + 1, &ms) != 0 || ms > (uint64_t)now)
            return -1;
        *out = now - (int64_t)ms;
        return 0;
    }
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0)
        return -1;
    *out = v;
    return 0;
}

static int parse_step(const char *s, int64_t *out)
{
    uint64_t ms;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!errno && end != s && *end == '\0')
        ms = v;
    else if (lbw_parse_duration(s, &ms) != 0)
        return -1;
    if (ms == 0 || ms > (uint64_t)INT64_MAX)
        return -1;
    *out = (int64_t)ms;
    return 0;
}

struct series_match {
    const char *name;
    const char *target;
    char **keys;
    size_t n;
    int too_many;
};

static int match_series(void *arg, const struct lbw_series_info *si)
{
    struct series_match *m = arg;
    struct lbw_key_parsed k;
    if (lbw_key_parse(si->key, si->keylen, &k) != 0 || strcmp(k.metric, m->name) != 0)
        return 0;
    const char *t = lbw_key_label(&k, "target");
    if (m->target && (!t || strcmp(t, m->target) != 0))
        return 0;
    if (m->n == MAX_SERIES) {
        m->too_many = 1;
        return 1;
    }
    m->keys[m->n] = strndup(si->key, si->keylen);
    if (m->keys[m->n])
        m->n++;
    return 0;
}

static json_t *labels_json(const char *key)
{
    struct lbw_key_parsed k;
    json_t *o = json_object();
    if (lbw_key_parse(key, strlen(key), &k) == 0)
        for (size_t i = 0; i < k.nlabels; i++)
            json_object_set_new(o, k.labels[i].name, json_string(k.labels[i].value));
    return o;
}

static json_t *points_json(struct lbw_store *st, const char *key, int64_t from, int64_t to,
                           struct lbw_point *pts, int *truncated)
{
    long n = lbw_store_points(st, key, strlen(key), from, to, pts, MAX_POINTS + 1);
    json_t *arr = json_array();
    if (n > MAX_POINTS) {
        *truncated = 1;
        n = MAX_POINTS;
    }
    for (long i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("[I,o]", (json_int_t)pts[i].ts_ms,
                                             number(pts[i].value)));
    return arr;
}

static json_t *steps_json(struct lbw_store *st, const char *key, int64_t from, int64_t to,
                          int64_t step, struct lbw_step *steps, size_t max)
{
    long n = lbw_store_steps(st, key, strlen(key), from, to, step, steps, max);
    json_t *arr = json_array();
    for (long i = 0; i < n; i++) {
        const struct lbw_step *s = &steps[i];
        if (s->count == 0) {
            json_array_append_new(arr, json_pack("{s:I,s:I}", "ts", (json_int_t)s->ts_ms,
                                                 "count", (json_int_t)0));
            continue;
        }
        json_array_append_new(
            arr, json_pack("{s:I,s:o,s:o,s:o,s:o,s:I}", "ts", (json_int_t)s->ts_ms, "min",
                           number(s->min), "max", number(s->max), "avg",
                           number(s->sum / (double)s->count), "sum", number(s->sum), "count",
                           (json_int_t)s->count));
    }
    return arr;
}

static int check_series_query(const struct lbw_series_query *q, int64_t now, int64_t *from,
                              int64_t *to, int64_t *step, const char **why)
{
    *step = 0;
    if (!q->name || !lbw_metric_name_valid(q->name))
        return *why = "name: a valid metric name is required", -1;
    if (parse_time(q->from ? q->from : "-1h", now, from) != 0)
        return *why = "from: expected unix ms, \"now\" or a duration before now like -1h", -1;
    if (parse_time(q->to ? q->to : "now", now, to) != 0)
        return *why = "to: expected unix ms, \"now\" or a duration before now like -5m", -1;
    if (*from > *to)
        return *why = "from is after to", -1;
    if (q->step && parse_step(q->step, step) != 0)
        return *why = "step: expected a duration like 1m or milliseconds", -1;
    if (*step && (*to - *from) / *step >= MAX_POINTS)
        return *why = "too many steps: use a larger step or a shorter range", -1;
    return 0;
}

void lbw_api_series(const struct lbw_web_ctx *ctx, const struct lbw_series_query *q,
                    struct lbw_reply *r)
{
    int64_t from, to, step;
    const char *why;
    if (check_series_query(q, lbw_now_ms(), &from, &to, &step, &why) != 0) {
        reply_error(r, 400, why);
        return;
    }
    struct series_match m = {q->name, q->target, calloc(MAX_SERIES, sizeof(char *)), 0, 0};
    size_t nsteps = step ? (size_t)((to - from) / step) + 1 : 0;
    struct lbw_point *pts = step ? NULL : malloc((MAX_POINTS + 1) * sizeof(*pts));
    struct lbw_step *steps = step ? malloc(nsteps * sizeof(*steps)) : NULL;
    if (!m.keys || (!pts && !steps) ||
        lbw_store_foreach_series(ctx->store, q->name, match_series, &m) != 0) {
        reply_error(r, 500, "could not read the store");
        goto out;
    }
    json_t *list = json_array();
    int truncated = 0;
    for (size_t i = 0; i < m.n; i++) {
        json_t *o = json_pack("{s:s, s:o}", "key", m.keys[i], "labels", labels_json(m.keys[i]));
        if (step)
            json_object_set_new(o, "steps", steps_json(ctx->store, m.keys[i], from, to, step,
                                                       steps, nsteps));
        else
            json_object_set_new(o, "points",
                                points_json(ctx->store, m.keys[i], from, to, pts, &truncated));
        json_array_append_new(list, o);
    }
    json_t *doc = json_pack("{s:s, s:I, s:I, s:o}", "name", q->name, "from", (json_int_t)from,
                            "to", (json_int_t)to, "series", list);
    if (step)
        json_object_set_new(doc, "step", json_integer(step));
    if (truncated || m.too_many)
        json_object_set_new(doc, "truncated", json_true());
    reply_json(r, 200, doc);
out:
    for (size_t i = 0; i < m.n; i++)
        free(m.keys[i]);
    free(m.keys);
    free(pts);
    free(steps);
}
