/* expo.c - /metrics rendering. See expo.h. */
#include "node/expo.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerting/ledger.h"
#include "node/agentview.h"
#include "node/fsm.h"
#include "node/view.h"
#include "raft/cluster.h"


struct help {
    const char *metric;
    const char *text;
};

static const struct help helps[] = {
    {"probe_success", "Whether the probe succeeded (1) or not (0)."},
    {"probe_duration_seconds", "How long the whole probe took."},
    {"probe_ssl_earliest_cert_expiry", "Earliest notAfter over the presented chain (unix s)."},
    {"probe_ssl_last_chain_info", "The leaf certificate presented (fingerprint, subject, issuer)."},
    {"probe_tls_version_info", "The negotiated TLS version."},
    {"probe_http_status_code", "HTTP response status code (0 if none)."},
    {"probe_http_duration_seconds", "Duration of each HTTP request phase."},
    {"probe_http_ssl", "Whether the final HTTP request used TLS."},
    {"probe_http_content_length", "Response body bytes received."},
    {"lbwatch_probe_error_info",
     "Why the latest probe failed, or what a successful scrape could not keep."},
    {"lbwatch_tls_connect_seconds", "TCP connect time of the TLS probe."},
    {"lbwatch_tls_handshake_seconds", "TLS handshake time after connect."},
    {"lbwatch_tls_cipher_info", "The negotiated cipher suite."},
    {"lbwatch_tls_cert_not_after_seconds", "Leaf certificate notAfter (unix s)."},
    {"lbwatch_tls_cert_not_before_seconds", "Leaf certificate notBefore (unix s)."},
    {"lbwatch_tls_chain_verified", "Whether the chain verified to a trusted CA."},
    {"lbwatch_tls_verify_error_info", "Why the chain did not verify."},
    {"lbwatch_tls_hostname_match", "Whether the leaf certificate matches the server name."},
    {"lbwatch_tls_key_bits", "Leaf public key size, by key type."},
    {"lbwatch_tls_ocsp_status", "Stapled OCSP status."},
    {"lbwatch_tls_chain_length", "Certificates presented by the server."},
    {"lbwatch_http_first_byte_seconds", "Time from start to the first response byte."},
    {"lbwatch_http_body_match", "Whether the expected body substring was found."},
    {"lbwatch_http_redirect_https", "Whether plain HTTP redirects to https on the same host."},
    {"node_load1", "1-minute load average of the agent's host."},
    {"node_load5", "5-minute load average of the agent's host."},
    {"node_load15", "15-minute load average of the agent's host."},
    {"node_boot_time_seconds", "Boot time of the agent's host (unix s)."},
    {"lbwatch_collector_success", "Whether the agent's collector succeeded (1) or not (0)."},
    {"nginx_connections_active", "Active client connections (nginx stub_status)."},
    {"nginx_connections_accepted", "Accepted client connections since nginx started."},
    {"nginx_connections_handled", "Handled client connections since nginx started."},
    {"nginx_connections_reading", "Connections where nginx is reading the request header."},
    {"nginx_connections_writing", "Connections where nginx is writing the response."},
    {"nginx_connections_waiting", "Idle keep-alive client connections."},
    {"nginx_http_requests_total", "Client requests since nginx started."},
    {"lbwatch_scrape_samples",
     "Samples of the latest Prometheus scrape: emitted, skipped (not allowed), rejected."},
};

static const char *help_for(const char *metric, size_t len)
{
    for (size_t i = 0; i < sizeof(helps) / sizeof(helps[0]); i++)
        if (strlen(helps[i].metric) == len && memcmp(helps[i].metric, metric, len) == 0)
            return helps[i].text;
    return NULL;
}

void lbw_expo_value(char *out, size_t len, double v)
{
    if (isnan(v))
        snprintf(out, len, "NaN");
    else if (isinf(v))
        snprintf(out, len, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 1e15)
        snprintf(out, len, "%.0f", v);
    else /* the shortest form that reads back as the same double */
        for (int prec = 15; prec <= 17; prec++)
            if (snprintf(out, len, "%.*g", prec, v) > 0 && strtod(out, NULL) == v)
                break;
}

static void family_header(struct lbw_buf *b, const char *metric, size_t len, const char *type)
{
    const char *help = help_for(metric, len);
    if (help)
        lbw_buf_printf(b, "# HELP %.*s %s\n", (int)len, metric, help);
    lbw_buf_printf(b, "# TYPE %.*s %s\n", (int)len, metric, type);
}

static void store_series(struct lbw_buf *b, const struct lbw_view *v)
{
    size_t *idx = malloc((v->ncur ? v->ncur : 1) * sizeof(*idx));
    if (!idx) {
        b->failed = 1;
        return;
    }
    lbw_view_sorted(v, idx);
    const struct lbw_view_series *prev = NULL;
    for (size_t i = 0; i < v->ncur; i++) {
        const struct lbw_view_series *s = &v->cur[idx[i]];
        if (!prev || prev->metric_len != s->metric_len ||
            memcmp(prev->key, s->key, s->metric_len) != 0)
            family_header(b, s->key, s->metric_len, "gauge");
        char val[64];
        lbw_expo_value(val, sizeof(val), s->value);
        lbw_buf_printf(b, "%s %s\n", s->key, val);
        prev = s;
    }
    free(idx);
}

static void own_metric(struct lbw_buf *b, const char *name, const char *type, const char *help,
                       const char *vantage, double value)
{
    char val[64];
    lbw_expo_value(val, sizeof(val), value);
    lbw_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s{vantage=\"", name, help, name, type, name);
    lbw_buf_puts(b, vantage); /* node names are [A-Za-z0-9._-]: nothing to escape */
    lbw_buf_printf(b, "\"} %s\n", val);
}

static void node_metrics(struct lbw_buf *b, const struct lbw_node_status *st)
{
    const char *n = st->name;
    lbw_buf_printf(b, "# HELP lbwatch_node_info This node.\n# TYPE lbwatch_node_info gauge\n"
                      "lbwatch_node_info{id=\"%llu\",vantage=\"%s\",version=\"%s\"} 1\n",
                   (unsigned long long)st->id, n, LBW_VERSION);
    own_metric(b, "lbwatch_node_start_time_seconds", "gauge", "When this node started.", n,
               (double)st->started_ms / 1000);
    own_metric(b, "lbwatch_samples_ingested_total", "counter",
               "Samples produced by this node's probes.", n, (double)st->samples_in);
    own_metric(b, "lbwatch_samples_dropped_total", "counter",
               "Samples dropped as not newer than their series.", n,
               (double)st->samples_dropped);
    own_metric(b, "lbwatch_store_errors_total", "counter", "Store appends or commits that failed.",
               n, (double)st->store_errors);
    own_metric(b, "lbwatch_store_series", "gauge", "Series in the store.", n,
               (double)st->store.series);
    own_metric(b, "lbwatch_store_corrupt_records_total", "counter",
               "Store records skipped because they did not decode.", n,
               (double)st->store.corrupt);
    own_metric(b, "lbwatch_probes_total", "counter", "Probes completed by this node.", n,
               (double)st->probes_run);
    own_metric(b, "lbwatch_probes_failed_total", "counter", "Probes that failed.", n,
               (double)st->probes_failed);
    own_metric(b, "lbwatch_probes_in_flight", "gauge", "Probes running now.", n,
               (double)st->probes_in_flight);
}

static void labelled(struct lbw_buf *b, const char *name, const char *label, const char *value,
                     const char *vantage, double v)
{
    char val[64];
    lbw_expo_value(val, sizeof(val), v);
    lbw_buf_printf(b, "%s{%s=\"", name, label);
    lbw_buf_puts(b, value); /* names, reasons and states: [a-z0-9._-] only */
    lbw_buf_printf(b, "\",vantage=\"%s\"} %s\n", vantage, val);
}

static void family(struct lbw_buf *b, const char *name, const char *type, const char *help)
{
    lbw_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void cluster_metrics(struct lbw_buf *b, const struct lbw_node_status *st)
{
    const struct lbw_cluster_status *cs = &st->cluster;
    const char *n = st->name;
    char hash[65];
    family(b, "lbwatch_raft_state", "gauge", "This node's raft state (1 for the current one).");
    labelled(b, "lbwatch_raft_state", "state", lbw_cluster_state_name(cs->state), n, 1);
    own_metric(b, "lbwatch_raft_term", "gauge", "Current raft term.", n, (double)cs->term);
    own_metric(b, "lbwatch_raft_commit_index", "gauge", "Highest committed log index.", n,
               (double)cs->commit_index);
    own_metric(b, "lbwatch_fsm_applied_index", "gauge", "Index of the last applied entry.", n,
               (double)st->fsm.applied_index);
    own_metric(b, "lbwatch_raft_leader_ready", "gauge",
               "1 if this node leads and its post-election barrier is committed.", n,
               cs->leader_ready);
    own_metric(b, "lbwatch_cluster_has_quorum", "gauge",
               "1 if this node reaches a majority of voters.", n, cs->has_quorum);
    own_metric(b, "lbwatch_cluster_pending_batches", "gauge",
               "This node's batches not yet applied.", n, (double)cs->pending);
    own_metric(b, "lbwatch_cluster_dropped_batches_total", "counter",
               "This node's batches given up.", n, (double)cs->dropped);
    own_metric(b, "lbwatch_fsm_batches_total", "counter", "Batches applied.", n,
               (double)st->fsm.batches);
    own_metric(b, "lbwatch_cluster_submits_refused_total", "counter",
               "Entries sent to this node by nodes that are not members (not proposed).", n,
               (double)cs->submits_refused);
    lbw_fsm_hash_hex(st->fsm.hash, hash);
    family(b, "lbwatch_fsm_hash_info", "gauge", "State hash at the applied index.");
    labelled(b, "lbwatch_fsm_hash_info", "hash", hash, n, 1);
    family(b, "lbwatch_fsm_rejected_total", "counter", "Entries refused on apply, by reason.");
    for (int i = 0; i < LBW_REJECT_KINDS; i++)
        labelled(b, "lbwatch_fsm_rejected_total", "reason",
                 lbw_fsm_reject_name((enum lbw_fsm_reject)i), n, (double)st->fsm.rejected[i]);
    family(b, "lbwatch_transport_refused_total", "counter",
           "Cluster connections refused, by reason.");
    for (int i = 0; i < LBW_REFUSAL_KINDS; i++)
        labelled(b, "lbwatch_transport_refused_total", "reason",
                 lbw_refusal_name((enum lbw_refusal)i), n, (double)cs->transport.refused[i]);
    family(b, "lbwatch_cluster_member_reachable", "gauge",
           "1 if this node heard from the member recently.");
    for (size_t i = 0; i < cs->nmembers; i++)
        labelled(b, "lbwatch_cluster_member_reachable", "member",
                 cs->members[i].name[0] ? cs->members[i].name : "unknown", n,
                 cs->members[i].reachable);
}

/* The replicated alert state as this replica has it, and this node's alerter (it acts only
 * while it leads). */
static void alerting_metrics(struct lbw_buf *b, const struct lbw_node_status *st)
{
    const char *n = st->name;
    const struct lbw_alerter_stats *a = &st->alerter;
    family(b, "lbwatch_alerts", "gauge", "Alerts in the replicated ledger, by state.");
    for (int s = LBW_ALERT_PENDING; s <= LBW_ALERT_RESOLVED; s++)
        labelled(b, "lbwatch_alerts", "state", lbw_alert_state_name((enum lbw_alert_state)s), n,
                 (double)st->alerts[s]);
    own_metric(b, "lbwatch_notifications_undelivered", "gauge",
               "Committed notification intents without a successful receipt.", n,
               (double)st->intents_undelivered);
    own_metric(b, "lbwatch_receivers_failing", "gauge",
               "Receivers whose last deliveries all failed (NotificationsFailing).", n,
               (double)st->receivers_failing);
    own_metric(b, "lbwatch_alerter_leading", "gauge", "1 if this node's alerter acts (it leads).",
               n, a->leading);
    own_metric(b, "lbwatch_alerter_evaluations_total", "counter", "Rule evaluation rounds.", n,
               (double)a->evaluations);
    family(b, "lbwatch_notification_deliveries_total", "counter",
           "Delivery attempts by this node, by result.");
    labelled(b, "lbwatch_notification_deliveries_total", "result", "ok", n,
             (double)a->deliveries_ok);
    labelled(b, "lbwatch_notification_deliveries_total", "result", "failed", n,
             (double)a->deliveries_failed);
    own_metric(b, "lbwatch_alerter_confirms_failed_total", "counter",
               "Sends not made because leadership could not be confirmed.", n,
               (double)a->confirms_failed);
    family(b, "lbwatch_deadman_pings_total", "counter", "Dead man's switch calls, by result.");
    labelled(b, "lbwatch_deadman_pings_total", "result", "ok", n, (double)a->deadman_ok);
    labelled(b, "lbwatch_deadman_pings_total", "result", "failed", n, (double)a->deadman_failed);
}

void lbw_expo_metrics(const struct lbw_web_ctx *ctx, struct lbw_reply *r)
{
    struct lbw_view v;
    struct lbw_node_status st;

    r->content_type = "text/plain; version=0.0.4; charset=utf-8";
    if (lbw_view_build(&v, ctx->store, NULL) != 0) {
        r->status = 500;
        lbw_buf_puts(&r->body, "could not read the store\n");
        return;
    }
    r->status = 200;
    store_series(&r->body, &v);
    lbw_view_free(&v);
    lbw_status_read(ctx->status, &st);
    node_metrics(&r->body, &st);
    if (st.clustered) {
        cluster_metrics(&r->body, &st);
        alerting_metrics(&r->body, &st);
        lbw_agentview_metrics(&r->body, &st);
    }
}
