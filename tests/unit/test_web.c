/* test_web.c - the web endpoints over real HTTP: a real LMDB store filled with known samples,
 * the libmicrohttpd server on a loopback port, requests with libcurl, JSON checked with
 * jansson. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/alertview.h"
#include "node/api.h"
#include "node/buf.h"
#include "node/expo.h"
#include "node/page.h"
#include "node/config.h"
#include "node/status.h"
#include "node/store.h"
#include "node/web.h"
#include "probes/sample.h"
#include "probes/tls.h"
#include "tests/support/ledgerfx.h"
#include "tests/support/testutil.h"

#define MINUTE 60000

static struct {
    char dir[256];
    struct lbw_store *store;
    struct lbw_status status;
    struct lbw_config cfg;
    struct lbw_target targets[2];
    struct lbw_web *web;
    uint16_t port;
    int64_t now;        /* latest probe time written */
} G;

struct response {
    long status;
    char type[128];
    struct lbw_buf body;
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    lbw_buf_add(&((struct response *)arg)->body, p, size * n);
    return size * n;
}

/* GET (or another method) http://127.0.0.1:port/path */
static void fetch(const char *method, const char *path, struct response *r)
{
    char url[512];
    char *ct = NULL;
    CURL *c = curl_easy_init();
    memset(r, 0, sizeof(*r));
    lbw_buf_init(&r->body);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", G.port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
    snprintf(r->type, sizeof(r->type), "%s", ct ? ct : "");
    curl_easy_cleanup(c);
    lbw_buf_add(&r->body, "", 0);
}

static json_t *fetch_json(const char *path, long want_status)
{
    struct response r;
    json_error_t jerr;
    fetch("GET", path, &r);
    assert_int_equal(r.status, want_status);
    assert_string_equal(r.type, "application/json");
    json_t *doc = json_loads(r.body.data, 0, &jerr);
    if (!doc)
        fail_msg("not JSON (%s): %s", jerr.text, r.body.data);
    lbw_buf_free(&r.body);
    return doc;
}

static void put(const char *metric, const struct lbw_label *l, size_t n, int64_t ts, double v)
{
    char key[LBW_KEY_MAX];
    int len = lbw_key_build(key, sizeof(key), metric, l, n);
    assert_true(len > 0);
    assert_int_equal(lbw_store_append(G.store, key, (size_t)len, ts, v), 0);
}

static void to_store(void *arg, const char *key, int64_t ts, double v)
{
    (void)arg;
    assert_int_equal(lbw_store_append(G.store, key, strlen(key), ts, v), 0);
}

/* A TLS result for target "www" as two vantages saw it, plus an older result whose cipher
 * label differs (it must not show), and a down target "db" with an HTML-ish error. */
static void fill_store(void)
{
    struct lbw_tls_result r = {
        .success = 1, .connect_seconds = 0.001, .handshake_seconds = 0.004,
        .duration_seconds = 0.005, .version = "TLSv1.3", .cipher = "OLD_CIPHER",
        .have_cert = 1, .chain_len = 2, .chain_verified = 0, .verify_code = 10,
        .verify_error = "certificate has expired", .hostname_match = 0, .key_type = "EC",
        .key_bits = 256, .ocsp = LBW_OCSP_GOOD, .subject = "CN=www.test", .issuer = "CN=ca",
        .fingerprint_sha256 = "ab",
    };
    G.now = lbw_now_ms() - 1000;
    r.not_before = G.now / 1000 - 86400;
    r.not_after = G.now / 1000 + 5 * 86400;
    r.earliest_not_after = r.not_after - 3600;
    const char *vantages[] = {"node1", "node2"};
    for (int v = 0; v < 2; v++) {
        struct lbw_label base[] = {{"probe", "tls"}, {"target", "www"}, {"vantage", vantages[v]}};
        struct lbw_emitter e = {to_store, NULL, base, 3, G.now - 2 * MINUTE};
        lbw_tls_result_emit(&r, &e); /* the older result */
        snprintf(r.cipher, sizeof(r.cipher), "TLS_AES_128_GCM_SHA256");
        e.ts_ms = G.now;
        lbw_tls_result_emit(&r, &e);
        snprintf(r.cipher, sizeof(r.cipher), "OLD_CIPHER");
    }
    struct lbw_label db[] = {{"probe", "tls"}, {"target", "db"}, {"vantage", "node1"}};
    put("probe_success", db, 3, G.now, 0);
    struct lbw_label dberr[] = {{"error", "connect: <b>refused</b>"}, {"probe", "tls"},
                                {"target", "db"}, {"vantage", "node1"}};
    put("lbwatch_probe_error_info", dberr, 4, G.now, 1);
    /* a series with one sample a minute over the last hour, values 0..59 */
    struct lbw_label hs[] = {{"probe", "tls"}, {"target", "db"}, {"vantage", "node1"}};
    int64_t start = (G.now - 60 * MINUTE) / MINUTE * MINUTE;
    for (int i = 0; i < 60; i++)
        put("lbwatch_tls_handshake_seconds", hs, 3, start + i * MINUTE + 10, i);
    assert_int_equal(lbw_store_commit(G.store), 0);
}

static int setup(void **state)
{
    (void)state;
    char err[256], sdir[300];
    curl_global_init(CURL_GLOBAL_DEFAULT);
    assert_int_equal(tu_tmpdir("lbw-web", G.dir, sizeof(G.dir)), 0);
    snprintf(sdir, sizeof(sdir), "%s/store", G.dir);
    struct lbw_store_options o = {.dir = sdir};
    assert_int_equal(lbw_store_open(&G.store, &o, err, sizeof(err)), 0);
    fill_store();
    lbw_status_init(&G.status);
    struct lbw_node_status st = {.name = "node1", .id = 1, .probes_run = 42};
    lbw_status_publish(&G.status, &st);

    G.targets[0] = (struct lbw_target){.name = "www", .address = "127.0.0.1:443",
                                       .host = "127.0.0.1", .port = 443,
                                       .server_name = "www.test"};
    G.targets[1] = (struct lbw_target){.name = "db", .address = "127.0.0.1:8443",
                                       .host = "127.0.0.1", .port = 8443,
                                       .server_name = "db.test"};
    G.cfg.node.name = "node1";
    G.cfg.node.id = 1;
    G.cfg.web.listen = "127.0.0.1:0";
    G.cfg.web.listen_host = "127.0.0.1";
    G.cfg.web.listen_port = 0;
    G.cfg.targets = G.targets;
    G.cfg.ntargets = 2;
    struct lbw_web_ctx ctx = {.store = G.store, .cfg = &G.cfg, .status = &G.status};
    assert_int_equal(lbw_web_start(&G.web, &ctx, err, sizeof(err)), 0);
    G.port = lbw_web_port(G.web);
    assert_true(G.port > 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    lbw_web_stop(G.web);
    lbw_store_close(G.store);
    lbw_status_destroy(&G.status);
    tu_rmrf(G.dir);
    curl_global_cleanup();
    return 0;
}

static json_t *vantage(json_t *target, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(target, "vantages"), i, v)
        if (strcmp(json_string_value(json_object_get(v, "vantage")), name) == 0)
            return v;
    fail_msg("no vantage %s", name);
    return NULL;
}

static void targets_api(void **state)
{
    (void)state;
    json_t *doc = fetch_json("/api/v1/targets", 200);
    assert_string_equal(json_string_value(json_object_get(doc, "node")), "node1");
    json_t *targets = json_object_get(doc, "targets");
    assert_int_equal(json_array_size(targets), 2);
    json_t *www = json_array_get(targets, 0);
    assert_string_equal(json_string_value(json_object_get(www, "name")), "www");
    assert_string_equal(json_string_value(json_object_get(www, "server_name")), "www.test");
    assert_true(json_is_true(json_object_get(www, "up")));
    assert_int_equal(json_array_size(json_object_get(www, "vantages")), 2);
    json_t *tls = json_object_get(vantage(www, "node2"), "tls");
    assert_int_equal(json_integer_value(json_object_get(tls, "ts")), G.now);
    assert_true(json_is_true(json_object_get(tls, "success")));
    assert_string_equal(json_string_value(json_object_get(tls, "version")), "TLS 1.3");
    /* the current cipher, not the older result's */
    assert_string_equal(json_string_value(json_object_get(tls, "cipher")),
                        "TLS_AES_128_GCM_SHA256");
    assert_true(json_is_false(json_object_get(tls, "chain_verified")));
    assert_string_equal(json_string_value(json_object_get(tls, "verify_error")),
                        "certificate has expired");
    assert_true(json_is_false(json_object_get(tls, "hostname_match")));
    assert_int_equal(json_integer_value(json_object_get(tls, "not_after")),
                     G.now / 1000 + 5 * 86400);
    double days = json_real_value(json_object_get(tls, "days_left"));
    assert_true(days > 4.9 && days < 5.0); /* earliest expiry: 5 days less an hour */
    assert_string_equal(json_string_value(json_object_get(tls, "ocsp")), "good");
    assert_string_equal(json_string_value(json_object_get(tls, "key_type")), "EC");
    assert_int_equal(json_integer_value(json_object_get(tls, "key_bits")), 256);
    assert_int_equal(json_integer_value(json_object_get(tls, "chain_length")), 2);

    json_t *db = json_array_get(targets, 1);
    assert_true(json_is_false(json_object_get(db, "up")));
    json_t *dbtls = json_object_get(vantage(db, "node1"), "tls");
    assert_true(json_is_false(json_object_get(dbtls, "success")));
    assert_string_equal(json_string_value(json_object_get(dbtls, "error")),
                        "connect: <b>refused</b>");
    assert_null(json_object_get(dbtls, "not_after")); /* no certificate in this result */
    json_decref(doc);
}

static void series_points_and_steps(void **state)
{
    (void)state;
    char path[256];
    int64_t start = (G.now - 60 * MINUTE) / MINUTE * MINUTE;
    snprintf(path, sizeof(path),
             "/api/v1/series?name=lbwatch_tls_handshake_seconds&target=db&from=%lld&to=%lld",
             (long long)start, (long long)(start + 60 * MINUTE));
    json_t *doc = fetch_json(path, 200);
    json_t *series = json_object_get(doc, "series");
    assert_int_equal(json_array_size(series), 1);
    json_t *s0 = json_array_get(series, 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(s0, "labels"), "target")),
                        "db");
    json_t *pts = json_object_get(s0, "points");
    assert_int_equal(json_array_size(pts), 60);
    assert_int_equal(json_integer_value(json_array_get(json_array_get(pts, 7), 0)),
                     start + 7 * MINUTE + 10);
    assert_true(json_number_value(json_array_get(json_array_get(pts, 7), 1)) == 7);
    json_decref(doc);

    /* 10-minute steps: each holds 10 samples, i*10 .. i*10+9 */
    snprintf(path, sizeof(path),
             "/api/v1/series?name=lbwatch_tls_handshake_seconds&from=%lld&to=%lld&step=10m",
             (long long)start, (long long)(start + 60 * MINUTE - 1));
    doc = fetch_json(path, 200);
    json_t *steps = json_object_get(json_array_get(json_object_get(doc, "series"), 0), "steps");
    assert_int_equal(json_array_size(steps), 6);
    json_t *st = json_array_get(steps, 2);
    assert_int_equal(json_integer_value(json_object_get(st, "count")), 10);
    assert_true(json_number_value(json_object_get(st, "min")) == 20);
    assert_true(json_number_value(json_object_get(st, "max")) == 29);
    assert_true(json_number_value(json_object_get(st, "sum")) == 245);
    assert_true(fabs(json_number_value(json_object_get(st, "avg")) - 24.5) < 1e-9);
    json_decref(doc);

    /* another target has no such series */
    doc = fetch_json("/api/v1/series?name=lbwatch_tls_handshake_seconds&target=nope", 200);
    assert_int_equal(json_array_size(json_object_get(doc, "series")), 0);
    json_decref(doc);
}

static void series_rejects_bad_queries(void **state)
{
    (void)state;
    const char *bad[] = {
        "/api/v1/series",
        "/api/v1/series?name=9bad",
        "/api/v1/series?name=up&from=yesterday",
        "/api/v1/series?name=up&from=2000&to=1000",
        "/api/v1/series?name=up&step=0",
        "/api/v1/series?name=up&from=0&to=now&step=1ms",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *doc = fetch_json(bad[i], 400);
        assert_true(json_is_string(json_object_get(doc, "error")));
        json_decref(doc);
    }
}

static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)); p++)
        if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
            return 1;
    return 0;
}

static void metrics_exposition(void **state)
{
    (void)state;
    struct response r;
    char line[512];
    fetch("GET", "/metrics", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.type, "text/plain; version=0.0.4; charset=utf-8");
    const char *t = r.body.data;
    assert_true(has_line(t, "# TYPE probe_success gauge"));
    assert_true(has_line(t, "probe_success{probe=\"tls\",target=\"www\",vantage=\"node1\"} 1"));
    assert_true(has_line(t, "probe_success{probe=\"tls\",target=\"www\",vantage=\"node2\"} 1"));
    assert_true(has_line(t, "probe_success{probe=\"tls\",target=\"db\",vantage=\"node1\"} 0"));
    snprintf(line, sizeof(line),
             "probe_ssl_earliest_cert_expiry{probe=\"tls\",target=\"www\",vantage=\"node1\"} %lld",
             (long long)(G.now / 1000 + 5 * 86400 - 3600));
    assert_true(has_line(t, line));
    assert_true(has_line(t, "lbwatch_tls_hostname_match{probe=\"tls\",target=\"www\","
                            "vantage=\"node1\"} 0"));
    assert_true(has_line(t, "lbwatch_tls_chain_verified{probe=\"tls\",target=\"www\","
                            "vantage=\"node1\"} 0"));
    assert_true(has_line(t, "lbwatch_tls_handshake_seconds{probe=\"tls\",target=\"www\","
                            "vantage=\"node1\"} 0.004"));
    assert_true(has_line(t, "probe_tls_version_info{probe=\"tls\",target=\"www\","
                            "vantage=\"node1\",version=\"TLS 1.3\"} 1"));
    assert_true(has_line(t, "lbwatch_probes_total{vantage=\"node1\"} 42"));
    assert_null(strstr(t, "OLD_CIPHER")); /* superseded series stay out */
    /* one TYPE line per family: families are contiguous */
    const char *first = strstr(t, "# TYPE probe_success gauge");
    assert_non_null(first);
    assert_null(strstr(first + 1, "# TYPE probe_success gauge"));
    lbw_buf_free(&r.body);
}

static void status_page(void **state)
{
    (void)state;
    struct response r;
    fetch("GET", "/", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.type, "text/html; charset=utf-8");
    const char *t = r.body.data;
    assert_non_null(strstr(t, "<!doctype html>"));
    assert_non_null(strstr(t, ">www<"));
    assert_non_null(strstr(t, "MISMATCH"));
    assert_non_null(strstr(t, "certificate has expired"));
    assert_non_null(strstr(t, "<span class=\"b warn\">5.0 days</span>")); /* < 14 days: amber */
    assert_non_null(strstr(t, "<polyline")); /* db's handshake sparkline */
    /* counters count targets, not target x vantage results: www up (two vantages) with a
     * certificate problem, db down */
    assert_non_null(strstr(t, "<b>2</b> targets"));
    assert_non_null(strstr(t, "<b style=\"color:#5ee08f\">1</b> up"));
    assert_non_null(strstr(t, "<b style=\"color:#ff7b7b\">1</b> down"));
    assert_non_null(strstr(t, "<b style=\"color:#ffc857\">1</b> certificate problems"));
    /* label values are escaped, never markup */
    assert_null(strstr(t, "<b>refused</b>"));
    assert_non_null(strstr(t, "connect: &lt;b&gt;refused&lt;/b&gt;"));
    /* self-contained: no external resources */
    assert_null(strstr(t, "http://"));
    assert_null(strstr(t, "https://"));
    lbw_buf_free(&r.body);
}

/* The alerts, failing receivers and silences panels, from a real ledger's documents. */
static void alert_panels(void **state)
{
    (void)state;
    static const char *const down = "ALERTS{alertname=\"TargetDown\",severity=\"critical\","
                                    "target=\"<i>db</i>\"}";
    static const char *const cert = "ALERTS{alertname=\"CertExpiringSoon\",severity=\"warning\","
                                    "target=\"www\"}";
    static const char *const gone = "ALERTS{alertname=\"HandshakeSlow\",severity=\"warning\","
                                    "target=\"www\"}";
    int64_t t = lbw_now_ms() - 5 * LFX_MIN;
    struct lfx f;
    struct response r;
    assert_int_equal(lfx_init(&f), 0);
    const char *ann = "A{summary=\"db is <b>down</b>\"}";
    assert_int_equal(lfx_transition_expect(&f, t, down, LBW_ALERT_PENDING, 0, ann, 0),
                     LBW_APPLY_OK);
    assert_int_equal(lfx_transition_expect(&f, t + LFX_SEC, down, LBW_ALERT_FIRING,
                                           lfx_seq(&f, down), ann, 0), LBW_APPLY_OK);
    assert_int_equal(lfx_transition(&f, t, cert, LBW_ALERT_PENDING), LBW_APPLY_OK);
    assert_int_equal(lfx_transition(&f, t, gone, LBW_ALERT_FIRING), LBW_APPLY_OK);
    assert_int_equal(lfx_transition(&f, t + LFX_SEC, gone, LBW_ALERT_RESOLVED), LBW_APPLY_OK);
    assert_int_equal(lfx_ack(&f, t + 2 * LFX_SEC, down, lfx_seq(&f, down), "alice"), LBW_APPLY_OK);
    const struct lbw_matcher m = {"target", "www", 0};
    assert_int_equal(lfx_silence(&f, t, t, t + LFX_HOUR, &m, 1), LBW_APPLY_OK);
    const char *fired[] = {down};
    assert_int_equal(lfx_notify(&f, t, "pager", "G{alertname=\"TargetDown\"}", fired, 1),
                     LBW_APPLY_OK);
    uint64_t intent = f.index;
    for (uint32_t i = 1; i <= 3; i++)
        assert_int_equal(lfx_receipt(&f, t + i * LFX_SEC, intent, i, 0, "HTTP 503"),
                         LBW_APPLY_OK);
    int64_t now = lbw_now_ms();
    lbw_status_set_doc(&G.status, LBW_DOC_ALERTS, lbw_alertview_alerts(f.l, NULL, now));
    lbw_status_set_doc(&G.status, LBW_DOC_SILENCES, lbw_alertview_silences(f.l, now));
    lbw_status_set_doc(&G.status, LBW_DOC_NOTIFICATIONS, lbw_alertview_notifications(f.l));

    fetch("GET", "/", &r);
    assert_int_equal(r.status, 200);
    const char *p = r.body.data;
    assert_non_null(strstr(p, "<b style=\"color:#ff7b7b\">1</b> alerts firing"));
    /* active alerts only, firing first; labels and annotations escaped */
    const char *a = strstr(p, "<h2>Alerts</h2>");
    assert_non_null(a);
    const char *td = strstr(a, ">TargetDown<"), *ce = strstr(a, ">CertExpiringSoon<");
    assert_non_null(td);
    assert_non_null(ce);
    assert_true(td < ce);
    assert_null(strstr(p, "HandshakeSlow"));
    assert_non_null(strstr(a, "<code>target=&lt;i&gt;db&lt;/i&gt;</code>"));
    assert_non_null(strstr(a, "db is &lt;b&gt;down&lt;/b&gt;"));
    assert_non_null(strstr(a, "acknowledged by alice"));
    assert_non_null(strstr(a, "silenced by #")); /* the cert alert of www */
    assert_non_null(strstr(a, "<span class=\"b bad\">firing</span>"));
    assert_non_null(strstr(a, "<span class=\"b warn\">pending</span>"));
    /* the receiver that failed three times in a row */
    assert_non_null(strstr(p, "Notifications to receiver <b>pager</b> are failing "
                              "(3 attempts in a row: HTTP 503)"));
    /* the silence */
    const char *s = strstr(p, "<h2>Silences</h2>");
    assert_non_null(s);
    assert_non_null(strstr(s, "<code>target=www</code>"));
    assert_true(s < strstr(p, "<h2>Targets</h2>"));
    lbw_buf_free(&r.body);

    /* nothing active: the panel says so */
    lfx_free(&f);
    assert_int_equal(lfx_init(&f), 0);
    lbw_status_set_doc(&G.status, LBW_DOC_ALERTS, lbw_alertview_alerts(f.l, NULL, now));
    lbw_status_set_doc(&G.status, LBW_DOC_SILENCES, lbw_alertview_silences(f.l, now));
    lbw_status_set_doc(&G.status, LBW_DOC_NOTIFICATIONS, lbw_alertview_notifications(f.l));
    fetch("GET", "/", &r);
    assert_non_null(strstr(r.body.data, "No active alerts."));
    assert_null(strstr(r.body.data, "<h2>Silences</h2>"));
    assert_null(strstr(r.body.data, "are failing"));
    lbw_buf_free(&r.body);
    lfx_free(&f);
}

/* A cluster node's /metrics carries the replicated alert state and its alerter's figures. */
static void alerting_metrics(void **state)
{
    (void)state;
    struct response r;
    struct lbw_node_status st = {.name = "node1", .id = 1, .clustered = 1,
                                 .alerts = {[LBW_ALERT_PENDING] = 1, [LBW_ALERT_FIRING] = 2},
                                 .intents_undelivered = 4, .receivers_failing = 1,
                                 .alerter = {.leading = 1, .deliveries_ok = 7,
                                             .deliveries_failed = 3, .deadman_ok = 5}};
    lbw_status_publish(&G.status, &st);
    fetch("GET", "/metrics", &r);
    assert_int_equal(r.status, 200);
    const char *m = r.body.data;
    assert_non_null(strstr(m, "# TYPE lbwatch_alerts gauge\n"));
    assert_non_null(strstr(m, "\nlbwatch_alerts{state=\"firing\",vantage=\"node1\"} 2\n"));
    assert_non_null(strstr(m, "\nlbwatch_alerts{state=\"pending\",vantage=\"node1\"} 1\n"));
    assert_non_null(strstr(m, "\nlbwatch_alerts{state=\"resolved\",vantage=\"node1\"} 0\n"));
    assert_non_null(strstr(m, "\nlbwatch_notifications_undelivered{vantage=\"node1\"} 4\n"));
    assert_non_null(strstr(m, "\nlbwatch_receivers_failing{vantage=\"node1\"} 1\n"));
    assert_non_null(strstr(m, "\nlbwatch_notification_deliveries_total{result=\"failed\","
                              "vantage=\"node1\"} 3\n"));
    assert_non_null(strstr(m, "\nlbwatch_deadman_pings_total{result=\"ok\",vantage=\"node1\"} 5\n"));
    lbw_buf_free(&r.body);
    struct lbw_node_status plain = {.name = "node1", .id = 1, .probes_run = 42};
    lbw_status_publish(&G.status, &plain);
}

static void healthz_404_405(void **state)
{
    (void)state;
    struct response r;
    fetch("GET", "/healthz", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.data, "ok\n");
    lbw_buf_free(&r.body);
    fetch("GET", "/nope", &r);
    assert_int_equal(r.status, 404);
    lbw_buf_free(&r.body);
    fetch("POST", "/api/v1/targets", &r);
    assert_int_equal(r.status, 405);
    lbw_buf_free(&r.body);
}

/* A node that has not measured anything yet still answers every page. */
static void empty_store_renders(void **state)
{
    (void)state;
    char dir[256], err[256];
    struct lbw_store *empty;
    assert_int_equal(tu_tmpdir("lbw-web-empty", dir, sizeof(dir)), 0);
    struct lbw_store_options o = {.dir = dir};
    assert_int_equal(lbw_store_open(&empty, &o, err, sizeof(err)), 0);
    struct lbw_web_ctx ctx = {.store = empty, .cfg = &G.cfg, .status = &G.status};
    void (*handlers[])(const struct lbw_web_ctx *, struct lbw_reply *) = {
        lbw_api_targets, lbw_expo_metrics, lbw_page_status};
    for (size_t i = 0; i < 3; i++) {
        struct lbw_reply r = {0};
        lbw_buf_init(&r.body);
        handlers[i](&ctx, &r);
        assert_int_equal(r.status, 200);
        assert_true(r.body.len > 0);
        lbw_buf_free(&r.body);
    }
    struct lbw_reply r = {0};
    lbw_buf_init(&r.body);
    lbw_api_targets(&ctx, &r);
    json_t *doc = json_loads(r.body.data, 0, NULL);
    json_t *www = json_array_get(json_object_get(doc, "targets"), 0);
    assert_true(json_is_null(json_object_get(www, "up"))); /* unknown, not down */
    assert_int_equal(json_array_size(json_object_get(www, "vantages")), 0);
    json_decref(doc);
    lbw_buf_free(&r.body);
    lbw_store_close(empty);
    tu_rmrf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(targets_api),
        cmocka_unit_test(series_points_and_steps),
        cmocka_unit_test(series_rejects_bad_queries),
        cmocka_unit_test(metrics_exposition),
        cmocka_unit_test(status_page),
        cmocka_unit_test(alert_panels),
        cmocka_unit_test(alerting_metrics),
        cmocka_unit_test(healthz_404_405),
        cmocka_unit_test(empty_store_renders),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
