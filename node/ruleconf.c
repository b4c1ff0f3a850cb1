/* ruleconf.c - the rules: and default_rules: sections of the node configuration, and the
 * built-in default rules. See ruleconf.h.
 *
 * Owns the YAML schema of rules (which keys exist, their defaults and limits); the rules read
 * go into an arena (node/confarena.h): every string and nested condition is copied into it,
 * so the rules outlive the YAML document and go with one lbw_rules_free(). What a rule means, and the
 * last word on whether it is sound, is alerting/rule's (lbw_rule_check); templates are
 * checked by alerting/template. */
#include "node/ruleconf.h"

#include <math.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerting/template.h"
#include "node/confarena.h"
#include "node/config.h"
#include "node/yamldoc.h"

#define MS_MINUTE 60000ull
#define MS_HOUR (60 * MS_MINUTE)
#define MAX_VANTAGES 16

/* --- the built-in rules ---------------------------------------------------------------------- */

const char lbw_default_rules_yaml[] =
    "rules:\n"
    "  - name: CertExpiringSoon\n"
    "    severity: warning\n"
    "    annotations:\n"
    "      summary: \"Certificate of {{ $labels.target }} expires in {{ humanizeDuration $value }}\"\n"
    "      description: \"The certificate served by {{ $labels.target }} expires in less than 14 "
    "days ({{ humanizeDuration $value }} left, seen from {{ $labels.probe }} probes). Renew it "
    "and reload the load balancer.\"\n"
    "    threshold: {metric: probe_ssl_earliest_cert_expiry, match: {probe: tls}, agg: last,\n"
    "                window: 10m, until: true, op: \"<\", value: 14d}\n"
    "  - name: CertExpiryCritical\n"
    "    severity: critical\n"
    "    annotations:\n"
    "      summary: \"Certificate of {{ $labels.target }} expires in {{ humanizeDuration $value }}\"\n"
    "      description: \"The certificate served by {{ $labels.target }} expires in less than 3 "
    "days ({{ humanizeDuration $value }} left). Clients will refuse it once it expires: renew "
    "it now.\"\n"
    "    threshold: {metric: probe_ssl_earliest_cert_expiry, match: {probe: tls}, agg: last,\n"
    "                window: 10m, until: true, op: \"<\", value: 3d}\n"
    "  - name: CertHostnameMismatch\n"
    "    severity: warning\n"
    "    annotations:\n"
    "      summary: \"Certificate of {{ $labels.target }} does not match its host name\"\n"
    "      description: \"The certificate served by {{ $labels.target }} does not name the host "
    "the probe asked for (SNI). Clients that check host names will refuse it; check which "
    "certificate the load balancer serves for that name.\"\n"
    "    threshold: {metric: lbwatch_tls_hostname_match, match: {probe: tls}, agg: last,\n"
    "                window: 10m, op: \"==\", value: 0}\n"
    "  - name: CertChainUntrusted\n"
    "    severity: critical\n"
    "    annotations:\n"
    "      summary: \"Certificate chain of {{ $labels.target }} does not verify\"\n"
    "      description: \"The chain served by {{ $labels.target }} does not verify against the "
    "trusted CAs (expired, self-signed, or an intermediate missing). Clients will refuse it; "
    "see lbwatch_tls_verify_error_info for the reason.\"\n"
    "    threshold: {metric: lbwatch_tls_chain_verified, match: {probe: tls}, agg: last,\n"
    "                window: 10m, op: \"==\", value: 0}\n"
    "  - name: TargetDown\n"
    "    severity: critical\n"
    "    for: 30s\n"
    "    min_vantages: 2\n"
    "    annotations:\n"
    "      summary: \"{{ $labels.target }} is down\"\n"
    "      description: \"The TLS probe of {{ $labels.target }} fails (no connection or no "
    "handshake) from at least two vantages, so it is not one node's network. See "
    "lbwatch_probe_error_info for the error.\"\n"
    "    threshold: {metric: probe_success, match: {probe: tls}, agg: last, window: 5m,\n"
    "                op: \"==\", value: 0}\n"
    "  - name: HandshakeSlow\n"
    "    severity: warning\n"
    "    for: 5m\n"
    "    annotations:\n"
    "      summary: \"TLS handshakes with {{ $labels.target }} take {{ printf \\\"%.2f\\\" $value }} s\"\n"
    "      description: \"The TLS handshake with {{ $labels.target }} took {{ printf \\\"%.2f\\\" "
    "$value }} s on average over 5 minutes (more than 1 s). The load balancer or its backends "
    "may be overloaded.\"\n"
    "    threshold: {metric: lbwatch_tls_handshake_seconds, match: {probe: tls}, agg: avg,\n"
    "                window: 5m, op: \">\", value: 1}\n"
    /* The balancer, from its statistics: every node scrapes it, so two must agree ... */
    "  - name: BackendServerDown\n"
    "    severity: warning\n"
    "    for: 30s\n"
    "    min_vantages: 2\n"
    "    annotations:\n"
    "      summary: \"Server {{ $labels.server }} of backend {{ $labels.proxy }} on "
    "{{ $labels.target }} is DOWN\"\n"
    "      description: \"HAProxy's health checks on {{ $labels.target }} mark server "
    "{{ $labels.server }} of {{ $labels.proxy }} DOWN: it gets no traffic. See "
    "haproxy_server_check_status.\"\n"
    "    threshold: {metric: haproxy_server_status, match: {probe: haproxy, state: DOWN},\n"
    "                agg: last, window: 2m, op: \"==\", value: 1}\n"
    "  - name: BackendDown\n"
    "    severity: critical\n"
    "    for: 30s\n"
    "    min_vantages: 2\n"
    "    annotations:\n"
    "      summary: \"Backend {{ $labels.proxy }} on {{ $labels.target }} has no server "
    "UP\"\n"
    "      description: \"Every server of backend {{ $labels.proxy }} on "
    "{{ $labels.target }} is down or in maintenance: HAProxy answers its requests with "
    "503.\"\n"
    "    threshold: {metric: haproxy_backend_status, match: {probe: haproxy, state: DOWN},\n"
    "                agg: last, window: 2m, op: \"==\", value: 1}\n"
    "  - name: Backend5xxRatioHigh\n"
    "    severity: critical\n"
    "    for: 2m\n"
    "    min_vantages: 2\n"
    "    annotations:\n"
    "      summary: \"Backend {{ $labels.proxy }} on {{ $labels.target }} answers "
    "{{ printf \\\"%.2f\\\" $value }} of requests with 5xx\"\n"
    "      description: \"{{ printf \\\"%.3f\\\" $value }} of the responses of "
    "{{ $labels.proxy }} on {{ $labels.target }} over 5 minutes were 5xx (limit 0.05): its "
    "servers fail or cannot be reached.\"\n"
    "    threshold: {metric: lbwatch_haproxy_backend_http_5xx_ratio,\n"
    "                match: {probe: haproxy}, agg: avg, window: 5m, op: \">\", value: 0.05}\n"
    "  - name: RequestsDeniedSpike\n"
    "    severity: warning\n"
    "    for: 2m\n"
    "    min_vantages: 2\n"
    "    annotations:\n"
    "      summary: \"Frontend {{ $labels.proxy }} on {{ $labels.target }} denies "
    "{{ printf \\\"%.1f\\\" $value }} requests/s\"\n"
    "      description: \"{{ $labels.proxy }} on {{ $labels.target }} denies "
    "{{ printf \\\"%.1f\\\" $value }} requests/s, far above the last hour's rate: an attack, "
    "a scanner, or a rule now matching real traffic.\"\n"
    "    all:\n"
    "      - anomaly: {metric: lbwatch_haproxy_frontend_requests_denied_rate,\n"
    "                  match: {probe: haproxy}, window: 5m, baseline: 1h, k: 4,\n"
    "                  min_samples: 30}\n"
    "      - threshold: {metric: lbwatch_haproxy_frontend_requests_denied_rate,\n"
    "                    match: {probe: haproxy}, agg: avg, window: 5m, op: \">\",\n"
    "                    value: 1}\n"
    "  - name: ConnectionsNearLimit\n"
    "    severity: warning\n"
    "    for: 2m\n"
    "    min_vantages: 2\n"
    "    annotations:\n"
    "      summary: \"HAProxy on {{ $labels.target }} is at {{ printf \\\"%.2f\\\" $value }} "
    "of its connection limit\"\n"
    "      description: \"HAProxy on {{ $labels.target }} holds "
    "{{ printf \\\"%.2f\\\" $value }} of maxconn (over 0.9 for 2 minutes); at the limit new "
    "connections wait. Raise maxconn or add capacity.\"\n"
    "    threshold: {metric: lbwatch_haproxy_connections_used_ratio,\n"
    "                match: {probe: haproxy}, agg: avg, window: 2m, op: \">\", value: 0.9}\n"
    /* ... and its host, from the agent there: one vantage, the host itself */
    "  - name: ProcessDown\n"
    "    severity: critical\n"
    "    for: 30s\n"
    "    per_vantage: true\n"
    "    annotations:\n"
    "      summary: \"{{ $labels.process }} is not running on {{ $labels.vantage }}\"\n"
    "      description: \"The agent on {{ $labels.vantage }} finds no {{ $labels.process }} "
    "process. Start it, and read its logs for why it stopped.\"\n"
    "    threshold: {metric: lbwatch_process_up, agg: last, window: 2m, op: \"==\",\n"
    "                value: 0}\n"
    "  - name: ProcessFileDescriptorsHigh\n"
    "    severity: warning\n"
    "    for: 5m\n"
    "    per_vantage: true\n"
    "    annotations:\n"
    "      summary: \"{{ $labels.process }} on {{ $labels.vantage }} uses "
    "{{ printf \\\"%.2f\\\" $value }} of its descriptor limit\"\n"
    "      description: \"{{ $labels.process }} on {{ $labels.vantage }} has "
    "{{ printf \\\"%.2f\\\" $value }} of its RLIMIT_NOFILE open; at the limit it cannot "
    "accept connections. Raise LimitNOFILE.\"\n"
    "    threshold: {metric: lbwatch_process_fds_used_ratio, agg: last, window: 5m,\n"
    "                op: \">\", value: 0.8}\n"
    "  - name: HostCPUBusy\n"
    "    severity: warning\n"
    "    for: 5m\n"
    "    per_vantage: true\n"
    "    annotations:\n"
    "      summary: \"The CPUs of {{ $labels.vantage }} are {{ printf \\\"%.2f\\\" $value }} "
    "busy\"\n"
    "      description: \"The CPUs of {{ $labels.vantage }} were busy (not idle or in "
    "iowait) {{ printf \\\"%.2f\\\" $value }} of the time over 5 minutes: handshakes and "
    "requests slow down.\"\n"
    "    threshold: {metric: lbwatch_host_cpu_busy_ratio, agg: avg, window: 5m, op: \">\",\n"
    "                value: 0.9}\n"
    "  - name: HostMemoryLow\n"
    "    severity: warning\n"
    "    for: 5m\n"
    "    per_vantage: true\n"
    "    annotations:\n"
    "      summary: \"{{ $labels.vantage }} has {{ printf \\\"%.2f\\\" $value }} of its "
    "memory available\"\n"
    "      description: \"Only {{ printf \\\"%.2f\\\" $value }} of the memory of "
    "{{ $labels.vantage }} is available (MemAvailable / MemTotal over 5 minutes): the OOM "
    "killer may strike.\"\n"
    "    threshold: {metric: lbwatch_host_memory_available_ratio, agg: avg, window: 5m,\n"
    "                op: \"<\", value: 0.1}\n"
    "  - name: HostFileDescriptorsHigh\n"
    "    severity: warning\n"
    "    for: 5m\n"
    "    per_vantage: true\n"
    "    annotations:\n"
    "      summary: \"{{ $labels.vantage }} uses {{ printf \\\"%.2f\\\" $value }} of its "
    "file handles\"\n"
    "      description: \"{{ $labels.vantage }} has {{ printf \\\"%.2f\\\" $value }} of its "
    "file handles (fs.file-max) allocated: at the limit no process can open a socket.\"\n"
    "    threshold: {metric: lbwatch_host_filefd_used_ratio, agg: last, window: 5m,\n"
    "                op: \">\", value: 0.8}\n";

/* --- values ------------------------------------------------------------------------------------ */

static const char *scalar(const yaml_node_t *n) { return (const char *)n->data.scalar.value; }

/* A number under key; with durations also a duration, in seconds ("14d"). Returns 1 if
 * stored. */
static int read_number(struct ymap *m, const char *key, int flags, int durations, double *out)
{
    yaml_node_t *v = ymap_value(m, key, flags);
    const char *want = durations ? "expected a number or a duration (e.g. 14d)"
                                 : "expected a number (durations need until: true)";
    uint64_t ms;
    char *end;
    if (!v || ydoc_failed(m->doc))
        return 0;
    if (v->type != YAML_SCALAR_NODE || v->data.scalar.length == 0 ||
        strlen(scalar(v)) != v->data.scalar.length) {
        lbw_conf_fail_value(m, key, want);
        return 0;
    }
    double x = strtod(scalar(v), &end);
    if (*end == '\0' && end != scalar(v) && isfinite(x)) {
        *out = x;
        return 1;
    }
    if (durations && lbw_parse_duration(scalar(v), &ms) == 0) {
        *out = (double)ms / 1000;
        return 1;
    }
    lbw_conf_fail_value(m, key, want);
    return 0;
}

static const char *const cond_keys[] = {"threshold", "change", "absent", "anomaly", "all", "any",
                                        NULL};
static const char *const agg_names[] = {"last", "avg", "min", "max", "rate", NULL};
static const char *const op_names[] = {">", "<", ">=", "<=", "==", "!=", NULL};
static const char *const severity_names[] = {"info", "warning", "critical", NULL};

static void read_condition(struct lbw_confread *rc, struct ymap *m, struct lbw_condition *c,
                           unsigned depth);

/* metric and match */
static void read_selection(struct lbw_confread *rc, struct ymap *cm, struct lbw_condition *c)
{
    struct lbw_conf_pairs match = {NULL, c->matchers, LBW_RULE_MAX_MATCHERS, 0};
    c->metric = lbw_conf_str(rc, cm, "metric", Y_REQUIRED);
    if (c->metric && !lbw_metric_name_valid(c->metric))
        lbw_conf_fail_value(cm, "metric", "must be a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)");
    c->nmatchers = lbw_conf_pairs(rc, cm, "match", &match);
}

static void read_window(struct ymap *cm, int flags, uint64_t dflt, struct lbw_condition *c)
{
    uint64_t w = dflt;
    ymap_duration(cm, "window", flags, 1, LBW_RULE_MAX_RANGE_MS, &w);
    c->window_ms = (int64_t)w;
}

static void read_op_value(struct ymap *cm, int durations, struct lbw_condition *c)
{
    int op = 0;
    ymap_enum(cm, "op", Y_REQUIRED, op_names, &op);
    read_number(cm, "value", Y_REQUIRED, durations, &c->value);
    c->cmp = (enum lbw_cmp)op;
}

static void read_threshold(struct ymap *cm, struct lbw_condition *c)
{
    int agg = LBW_AGG_LAST;
    read_window(cm, Y_OPTIONAL, 5 * MS_MINUTE, c);
    ymap_enum(cm, "agg", Y_OPTIONAL, agg_names, &agg);
    ymap_bool(cm, "until", Y_OPTIONAL, &c->seconds_until);
    read_op_value(cm, c->seconds_until, c);
    c->agg = (enum lbw_agg)agg;
    if (c->seconds_until && c->agg == LBW_AGG_RATE)
        ymap_fail(cm, "until", "compares a time: use agg last, avg, min or max, not rate");
}

static void read_change(struct ymap *cm, struct lbw_condition *c)
{
    read_window(cm, Y_REQUIRED, 0, c);
    read_op_value(cm, 0, c);
    ymap_bool(cm, "relative", Y_OPTIONAL, &c->relative);
}

static void read_absent(struct ymap *cm, struct lbw_condition *c)
{
    uint64_t lookback = LBW_RULE_LOOKBACK_MS;
    char w[32], lb[32];
    read_window(cm, Y_OPTIONAL, 5 * MS_MINUTE, c);
    int given = ymap_duration(cm, "lookback", Y_OPTIONAL, 1, LBW_RULE_MAX_RANGE_MS, &lookback);
    c->lookback_ms = (int64_t)lookback;
    if (ydoc_failed(cm->doc) || c->lookback_ms > c->window_ms)
        return;
    lbw_format_duration((uint64_t)c->window_ms, w, sizeof(w));
    lbw_format_duration(lookback, lb, sizeof(lb));
    if (given)
        ymap_fail(cm, "lookback", "must be longer than window (%s), got %s", w, lb);
    else
        ymap_fail(cm, "window", "must be shorter than lookback (%s by default), got %s", lb, w);
}

static void read_anomaly(struct ymap *cm, struct lbw_condition *c)
{
    uint64_t baseline = MS_HOUR;
    int64_t min_samples = 10;
    c->k = 3;
    read_window(cm, Y_OPTIONAL, 5 * MS_MINUTE, c);
    ymap_duration(cm, "baseline", Y_OPTIONAL, 1000, LBW_RULE_MAX_RANGE_MS, &baseline);
    if (read_number(cm, "k", Y_OPTIONAL, 0, &c->k) && !(c->k > 0))
        lbw_conf_fail_value(cm, "k", "must be a positive number of standard deviations");
    ymap_int(cm, "min_samples", Y_OPTIONAL, 2, 1000000, &min_samples);
    c->baseline_ms = (int64_t)baseline;
    c->min_samples = (unsigned)min_samples;
}

static void read_leaf(struct lbw_confread *rc, struct ymap *m, const char *key, struct lbw_condition *c)
{
    struct ymap cm;
    ymap_map(m, key, Y_REQUIRED, &cm);
    read_selection(rc, &cm, c);
    switch (c->kind) {
    case LBW_COND_THRESHOLD: read_threshold(&cm, c); break;
    case LBW_COND_CHANGE: read_change(&cm, c); break;
    case LBW_COND_ABSENT: read_absent(&cm, c); break;
    default: read_anomaly(&cm, c); break;
    }
    ymap_close(&cm);
}

/* all: / any: a list of mappings with one condition each. */
static void read_composite(struct lbw_confread *rc, struct ymap *m, const char *key,
                           struct lbw_condition *c, unsigned depth)
{
    struct yseq s;
    ymap_seq(m, key, Y_REQUIRED, &s);
    size_t n = yseq_len(&s);
    if (ydoc_failed(rc->d))
        return;
    if (n == 0 || n > LBW_RULE_MAX_CHILDREN) {
        ymap_fail(m, key, "must list 1 to %d conditions", LBW_RULE_MAX_CHILDREN);
        return;
    }
    if (depth >= LBW_RULE_MAX_DEPTH) {
        ymap_fail(m, key, "all and any nest at most %d levels deep", LBW_RULE_MAX_DEPTH);
        return;
    }
    for (size_t i = 0; i < n && !ydoc_failed(rc->d); i++) {
        struct ymap item;
        struct lbw_condition *child = lbw_conf_alloc(rc, sizeof(*child));
        yseq_map(&s, i, &item);
        if (child)
            read_condition(rc, &item, child, depth + 1);
        ymap_close(&item);
        c->children[c->nchildren++] = child;
    }
}

/* The one condition key of m. */
static void read_condition(struct lbw_confread *rc, struct ymap *m, struct lbw_condition *c,
                           unsigned depth)
{
    const char *found = NULL;
    for (int k = 0; cond_keys[k]; k++) {
        if (!ymap_value(m, cond_keys[k], Y_OPTIONAL))
            continue;
        if (found) {
            ymap_fail(m, cond_keys[k], "one condition only: combine %s and %s under all: or any:",
                      found, cond_keys[k]);
            return;
        }
        found = cond_keys[k];
        c->kind = (enum lbw_cond_kind)k;
    }
    if (!found) {
        if (m->node)
            ydoc_fail(rc->d, m->node, m->path, "needs a condition: threshold, change, absent, "
                                               "anomaly, all or any");
        return;
    }
    if (c->kind == LBW_COND_ALL || c->kind == LBW_COND_ANY)
        read_composite(rc, m, found, c, depth);
    else
        read_leaf(rc, m, found, c);
}

/* --- rules ------------------------------------------------------------------------------------- */

static int rule_name_ok(const char *s)
{
    size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789");
    return n > 0 && s[n] == '\0' && !(s[0] >= '0' && s[0] <= '9');
}

static void read_rule(struct lbw_confread *rc, struct yseq *s, size_t i, struct lbw_rule *r)
{
    struct lbw_conf_pairs labels = {r->labels, NULL, LBW_RULE_MAX_LABELS, 0};
    struct lbw_conf_pairs annotations = {r->annotations, NULL, LBW_RULE_MAX_ANNOTATIONS, 1};
    struct ymap m;
    int severity = LBW_SEV_WARNING;
    int64_t min_vantages = 1;
    uint64_t for_ms = 0;
    char why[256];

    yseq_map(s, i, &m);
    r->name = lbw_conf_str(rc, &m, "name", Y_REQUIRED);
    if (r->name && !rule_name_ok(r->name))
        lbw_conf_fail_value(&m, "name", "must be letters, digits and '_', not starting with a digit");
    ymap_enum(&m, "severity", Y_OPTIONAL, severity_names, &severity);
    ymap_duration(&m, "for", Y_OPTIONAL, 0, LBW_RULE_MAX_RANGE_MS, &for_ms);
    ymap_int(&m, "min_vantages", Y_OPTIONAL, 1, MAX_VANTAGES, &min_vantages);
    ymap_bool(&m, "per_vantage", Y_OPTIONAL, &r->per_vantage);
    r->nlabels = lbw_conf_pairs(rc, &m, "labels", &labels);
    r->nannotations = lbw_conf_pairs(rc, &m, "annotations", &annotations);
    read_condition(rc, &m, &r->cond, 0);
    if (ymap_close(&m) < 0)
        return;
    r->severity = (enum lbw_severity)severity;
    r->for_ms = (int64_t)for_ms;
    r->min_vantages = (unsigned)min_vantages;
    if (lbw_rule_check(r, why, sizeof(why)) < 0)
        ydoc_fail(rc->d, m.node, m.path, "%s", why);
}

/* The line of rule i's name, for "first at line N". */
static size_t name_line(struct lbw_confread *rc, struct yseq *s, size_t i)
{
    yaml_node_t *n = ydoc_lookup(rc->d, yseq_node(s, i), "name");
    return n ? n->start_mark.line + 1 : 0;
}

/* Reads top's rules: list into an arena array. Returns the number of rules. */
static size_t read_rule_list(struct lbw_confread *rc, struct ymap *top, struct yseq *s,
                             struct lbw_rule **out)
{
    ymap_seq(top, "rules", Y_OPTIONAL, s);
    size_t n = yseq_len(s);
    *out = NULL;
    if (n == 0 || !(*out = lbw_conf_alloc(rc, n * sizeof(**out))))
        return 0;
    for (size_t i = 0; i < n && !ydoc_failed(rc->d); i++) {
        read_rule(rc, s, i, &(*out)[i]);
        for (size_t j = 0; j < i && !ydoc_failed(rc->d); j++) {
            if (strcmp((*out)[j].name, (*out)[i].name) == 0) {
                struct ymap m;
                yseq_map(s, i, &m);
                ymap_fail(&m, "name", "duplicate rule name \"%s\" (first at line %zu)",
                          (*out)[i].name, name_line(rc, s, j));
            }
        }
    }
    return ydoc_failed(rc->d) ? 0 : n;
}

/* The built-in rules, read into the arena. Returns their number; a failure (a bug in
 * lbw_default_rules_yaml) is recorded in d. */
static size_t read_defaults(struct lbw_arena **arena, struct ydoc *d, struct lbw_rule **out)
{
    struct ydoc dd;
    struct ymap top;
    struct yseq s;
    struct lbw_confread rc = {&dd, arena};
    size_t n = 0;

    if (ydoc_load_buffer(&dd, "(default rules)", lbw_default_rules_yaml,
                         strlen(lbw_default_rules_yaml)) == 0) {
        ymap_open(&top, &dd, ydoc_root(&dd), "");
        n = read_rule_list(&rc, &top, &s, out);
        ymap_close(&top);
    }
    if (ydoc_failed(&dd))
        ydoc_fail(d, NULL, "", "the built-in default rules: %s", ydoc_error(&dd));
    ydoc_free(&dd);
    return n;
}

/* default_rules.disable: names of default rules, marked off[i]. */
static void read_disabled(struct ymap *top, const struct lbw_rule *defs, size_t ndefs,
                          unsigned char *off)
{
    struct ymap dm;
    struct yseq ds;
    char list[1024];
    size_t used = 0;

    list[0] = '\0';
    for (size_t i = 0; i < ndefs; i++)
        used += (size_t)snprintf(list + used, used < sizeof(list) ? sizeof(list) - used : 0,
                                 "%s%s", i ? ", " : "", defs[i].name);
    ymap_map(top, "default_rules", Y_OPTIONAL, &dm);
    ymap_seq(&dm, "disable", Y_OPTIONAL, &ds);
    for (size_t i = 0; i < yseq_len(&ds); i++) {
        char *name = NULL, path[YD_PATH_MAX];
        size_t j;
        if (!yseq_str(&ds, i, &name))
            break;
        for (j = 0; j < ndefs && strcmp(defs[j].name, name) != 0; j++)
            ;
        lbw_conf_path(path, "%s[%zu]", ds.path, NULL, i);
        if (j == ndefs)
            ydoc_fail(top->doc, yseq_node(&ds, i), path, "unknown default rule \"%s\" (the "
                      "default rules are %s)", name, list);
        else
            off[j] = 1;
        free(name);
    }
    ymap_close(&dm);
}

/* A configured rule may not take the name of a default rule that is on. */
static void check_against_defaults(struct lbw_confread *rc, struct yseq *s, const struct lbw_rule *rules,
                                   size_t n, const struct lbw_rule *defs, size_t ndefs,
                                   const unsigned char *off)
{
    for (size_t i = 0; i < n && !ydoc_failed(rc->d); i++) {
        for (size_t j = 0; j < ndefs; j++) {
            if (!off[j] && strcmp(rules[i].name, defs[j].name) == 0) {
                struct ymap m;
                yseq_map(s, i, &m);
                ymap_fail(&m, "name", "\"%s\" is a default rule: list it in "
                          "default_rules.disable to replace it", rules[i].name);
            }
        }
    }
}

int lbw_ruleconf_read(struct ymap *top, struct lbw_rules *out)
{
    struct lbw_arena *arena = NULL;
    struct lbw_confread rc = {top->doc, &arena};
    struct lbw_rule *defs = NULL, *rules = NULL;
    struct yseq s;

    memset(out, 0, sizeof(*out));
    size_t ndefs = read_defaults(&arena, top->doc, &defs);
    size_t n = read_rule_list(&rc, top, &s, &rules);
    unsigned char *off = lbw_conf_alloc(&rc, ndefs + 1);  /* off[i]: default rule i is disabled */
    if (off) {
        read_disabled(top, defs, ndefs, off);
        check_against_defaults(&rc, &s, rules, n, defs, ndefs, off);
    }
    size_t on = 0;
    for (size_t i = 0; off && i < ndefs; i++)
        on += !off[i];
    struct lbw_rule *all = lbw_conf_alloc(&rc, (on + n + 1) * sizeof(*all));
    if (ydoc_failed(top->doc)) {
        lbw_arena_free(arena);
        return -1;
    }
    for (size_t i = 0; i < ndefs; i++)
        if (!off[i])
            all[out->nrules++] = defs[i];
    for (size_t i = 0; i < n; i++)
        all[out->nrules++] = rules[i];
    out->rules = all;
    out->arena = arena;
    return 0;
}

void lbw_rules_free(struct lbw_rules *r)
{
    lbw_arena_free(r->arena);
    memset(r, 0, sizeof(*r));
}
