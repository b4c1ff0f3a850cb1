/* test_receiver.c - delivering notifications to real sinks on 127.0.0.1.
 *
 * The group set-up makes a CA and a certificate for 127.0.0.1 with lbw_pki_make_cert, then
 * starts tests/support/webhook_sink.py (plain, always 500, 307 to the plain sink, slow, TLS)
 * and tests/support/smtp_sink.py (STARTTLS + AUTH, STARTTLS, plain, implicit TLS) with
 * /usr/bin/python3, each recording what it receives as JSON lines in its own file; the group
 * teardown stops them whatever happened. Each test uses its own idempotency key and finds
 * its records by it. A sink writes its record before it answers, so the record is there when
 * the send's callback runs. Proxy variables point at a dead proxy to prove they are ignored;
 * every loop run is bounded by a guard timer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "alerting/notify.h"
#include "alerting/receiver.h"
#include "node/pki.h"
#include "probes/curluv.h"
#include "tests/support/testutil.h"

#define PYTHON "/usr/bin/python3"
#define WEBHOOK_SINK "tests/support/webhook_sink.py"
#define SMTP_SINK "tests/support/smtp_sink.py"
#define RUN_LIMIT_MS 20000
#define SMTP_USER "lbw"
#define SMTP_PASSWORD "smtp-pa55word"
#define SECRET "webhook-secret\x01\x02"

/* One sink process: its port and the file it records into. */
struct sink {
    uint16_t port;
    char log[300];
    char out[300];
};

static struct {
    char dir[256];
    char ca[300], other_ca[300], cert[300], key[300];
    struct sink web, fail, redirect, slow, tls;
    struct sink smtp_auth, smtp_tls, smtp_plain, smtps;
    int curl_ready;
} G;

/* --- fixtures: certificates and sinks ----------------------------------------------------- */

static int path_in(char *out, size_t size, const char *name)
{
    return (size_t)snprintf(out, size, "%s/%s", G.dir, name) < size ? 0 : -1;
}

static int write_ca(const char *name, char *path, size_t pathlen, X509 **cert, EVP_PKEY **key)
{
    char err[256], file[64];
    int64_t now = (int64_t)time(NULL);
    struct lbw_cert_spec spec = {.cn = name, .is_ca = 1, .not_before = now - 3600,
                                 .not_after = now + 86400};
    snprintf(file, sizeof(file), "%s.crt", name);
    if (lbw_pki_make_cert(&spec, NULL, NULL, cert, key, err, sizeof(err)) != 0 ||
        path_in(path, pathlen, file) != 0 || lbw_pki_write_cert(path, *cert, err, sizeof(err)))
        return -1;
    return 0;
}

static int make_certificates(void)
{
    char err[256];
    int64_t now = (int64_t)time(NULL);
    X509 *ca = NULL, *other = NULL, *leaf = NULL;
    EVP_PKEY *ca_key = NULL, *other_key = NULL, *leaf_key = NULL;
    struct lbw_cert_spec spec = {.cn = "localhost", .not_before = now - 3600,
                                 .not_after = now + 86400, .dns = {"localhost"},
                                 .ips = {"127.0.0.1"}};
    int rc = -1;
    if (write_ca("ca", G.ca, sizeof(G.ca), &ca, &ca_key) == 0 &&
        write_ca("other-ca", G.other_ca, sizeof(G.other_ca), &other, &other_key) == 0 &&
        lbw_pki_make_cert(&spec, ca, ca_key, &leaf, &leaf_key, err, sizeof(err)) == 0 &&
        path_in(G.cert, sizeof(G.cert), "sink.crt") == 0 &&
        path_in(G.key, sizeof(G.key), "sink.key") == 0 &&
        lbw_pki_write_cert(G.cert, leaf, err, sizeof(err)) == 0 &&
        lbw_pki_write_key(G.key, leaf_key, err, sizeof(err)) == 0)
        rc = 0;
    X509_free(ca);
    X509_free(other);
    X509_free(leaf);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(other_key);
    EVP_PKEY_free(leaf_key);
    return rc;
}

static void print_file(const char *path)
{
    char *argv[] = {"cat", (char *)path, NULL};
    char out[4096];
    if (tu_run(argv, out, sizeof(out)) >= 0)
        fprintf(stderr, "%s:\n%s\n", path, out);
}

/* Spawns script with its port, output file and the extra arguments (NULL-terminated). */
static int sink_spawn(struct sink *s, const char *name, const char *script, ...)
{
    char file[64], port[8];
    char *argv[24] = {PYTHON, (char *)script, "--port", port, "--out", s->out};
    size_t argc = 6;
    va_list ap;
    s->port = tu_free_port();
    snprintf(port, sizeof(port), "%u", s->port);
    snprintf(file, sizeof(file), "%s.jsonl", name);
    if (path_in(s->out, sizeof(s->out), file) != 0)
        return -1;
    snprintf(file, sizeof(file), "%s.log", name);
    if (path_in(s->log, sizeof(s->log), file) != 0)
        return -1;
    va_start(ap, script);
    for (char *a; argc < 23 && (a = va_arg(ap, char *)) != NULL;)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    return tu_spawn(argv, s->log) > 0 ? 0 : -1;
}

static int sinks_ready(void)
{
    struct sink *all[] = {&G.web, &G.fail, &G.redirect, &G.slow, &G.tls,
                          &G.smtp_auth, &G.smtp_tls, &G.smtp_plain, &G.smtps};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (tu_wait_port(all[i]->port, 15000) != 0) {
            print_file(all[i]->log);
            return -1;
        }
    }
    return 0;
}

static int start_sinks(void)
{
    char location[64];
    G.web.port = 0;
    if (sink_spawn(&G.web, "web", WEBHOOK_SINK, NULL) != 0)
        return -1;
    snprintf(location, sizeof(location), "http://127.0.0.1:%u/moved", G.web.port);
    if (sink_spawn(&G.fail, "fail", WEBHOOK_SINK, "--status", "500", "--fail-first",
                   "1000000", NULL) != 0 ||
        sink_spawn(&G.redirect, "redirect", WEBHOOK_SINK, "--status", "307", "--fail-first",
                   "1000000", "--location", location, NULL) != 0 ||
        sink_spawn(&G.slow, "slow", WEBHOOK_SINK, "--delay", "8", NULL) != 0 ||
        sink_spawn(&G.tls, "tls", WEBHOOK_SINK, "--cert", G.cert, "--key", G.key, NULL) != 0 ||
        sink_spawn(&G.smtp_auth, "smtp-auth", SMTP_SINK, "--tls", "starttls", "--cert", G.cert,
                   "--key", G.key, "--user", SMTP_USER, "--password", SMTP_PASSWORD,
                   NULL) != 0 ||
        sink_spawn(&G.smtp_tls, "smtp-tls", SMTP_SINK, "--tls", "starttls", "--cert", G.cert,
                   "--key", G.key, NULL) != 0 ||
        sink_spawn(&G.smtp_plain, "smtp-plain", SMTP_SINK, NULL) != 0 ||
        sink_spawn(&G.smtps, "smtps", SMTP_SINK, "--tls", "implicit", "--cert", G.cert,
                   "--key", G.key, NULL) != 0)
        return -1;
    return sinks_ready();
}

static int prepare(void)
{
    if (access(WEBHOOK_SINK, R_OK) != 0 || access(SMTP_SINK, R_OK) != 0 ||
        access(PYTHON, X_OK) != 0) {
        fprintf(stderr, "run from the repository root, with %s installed\n", PYTHON);
        return -1;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -1;
    G.curl_ready = 1;
    if (tu_tmpdir("lbw-receiver", G.dir, sizeof(G.dir)) != 0)
        return -1;
    setenv("http_proxy", "http://127.0.0.1:9", 1);
    setenv("https_proxy", "http://127.0.0.1:9", 1);
    setenv("HTTPS_PROXY", "http://127.0.0.1:9", 1);
    setenv("ALL_PROXY", "http://127.0.0.1:9", 1);
    if (make_certificates() != 0)
        return -1;
    return start_sinks();
}

static int group_teardown(void **state)
{
    (void)state;
    tu_stop_all();
    if (G.dir[0]) {
        tu_rmrf(G.dir);
        G.dir[0] = '\0';
    }
    if (G.curl_ready) {
        curl_global_cleanup();
        G.curl_ready = 0;
    }
    return 0;
}

static int group_setup(void **state)
{
    if (prepare() == 0)
        return 0;
    group_teardown(state);
    return -1;
}

/* --- the loop, the sender and outcomes ---------------------------------------------------- */

struct env {
    uv_loop_t loop;
    struct lbw_curluv *curl;
    struct lbw_sender *sender;
};

static void env_open(struct env *e)
{
    char err[128];
    assert_int_equal(uv_loop_init(&e->loop), 0);
    assert_int_equal(lbw_curluv_new(&e->curl, &e->loop, err, sizeof(err)), 0);
    assert_int_equal(lbw_sender_new(&e->sender, &e->loop, e->curl, err, sizeof(err)), 0);
}

/* Closes what is still open (the sender may have been closed by a test), then drains. */
static void env_close(struct env *e, int sender_open)
{
    if (sender_open)
        lbw_sender_close(e->sender);
    lbw_curluv_close(e->curl);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&e->loop), 0);
}

struct guard {
    uv_timer_t timer;
    int expired;
};

static void on_guard(uv_timer_t *t)
{
    ((struct guard *)t->data)->expired = 1;
}

/* Runs the loop until *count reaches want, nothing is left to run, or limit_ms passes. */
static void run_until(uv_loop_t *loop, const int *count, int want, uint64_t limit_ms)
{
    struct guard g = {.expired = 0};
    assert_int_equal(uv_timer_init(loop, &g.timer), 0);
    g.timer.data = &g;
    assert_int_equal(uv_timer_start(&g.timer, on_guard, limit_ms, 0), 0);
    uv_unref((uv_handle_t *)&g.timer);
    while ((!count || *count < want) && !g.expired && uv_run(loop, UV_RUN_ONCE) != 0)
        ;
    uv_close((uv_handle_t *)&g.timer, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

struct outcome {
    int calls;
    int *total;
    int ok;
    char error[LBW_SEND_ERROR_MAX];
    struct lbw_sender *close_sender;    /* closed from the callback when set */
};

static void on_sent(void *arg, int ok, const char *error)
{
    struct outcome *o = arg;
    o->calls++;
    if (o->total)
        (*o->total)++;
    o->ok = ok;
    snprintf(o->error, sizeof(o->error), "%s", error);
    if (o->close_sender)
        lbw_sender_close(o->close_sender);
}

/* Sends n to r once on a fresh sender and returns what the callback said. */
static struct outcome send_one(const struct lbw_receiver *r, const struct lbw_notification *n)
{
    struct env e;
    struct outcome o = {0};
    env_open(&e);
    assert_int_equal(lbw_sender_send(e.sender, r, n, on_sent, &o), 0);
    assert_int_equal(o.calls, 0); /* never inside the call */
    assert_int_equal(lbw_sender_pending(e.sender), 1);
    run_until(&e.loop, &o.calls, 1, RUN_LIMIT_MS);
    assert_int_equal(o.calls, 1);
    assert_int_equal(lbw_sender_pending(e.sender), 0);
    env_close(&e, 1);
    assert_int_equal(o.calls, 1);
    if (o.ok)
        assert_string_equal(o.error, "");
    else
        assert_true(o.error[0] != '\0');
    return o;
}

static void assert_contains(const char *s, const char *part)
{
    if (!s || !strstr(s, part))
        fail_msg("\"%s\" does not contain \"%s\"", s ? s : "(null)", part);
}

static void assert_not_contains(const char *s, const char *part)
{
    if (s && strstr(s, part))
        fail_msg("\"%s\" contains \"%s\"", s, part);
}

/* --- notifications and sink records ------------------------------------------------------- */

static const struct lbw_notify_alert alerts[] = {
    {LBW_NOTIFY_FIRING,
     "ALERTS{alertname=\"CertExpiringSoon\",probe=\"tls\",severity=\"critical\",target=\"www\"}",
     "A{description=\"renew the certificate of www.example.com\",summary=\"certificate "
     "expires in 2 days\"}",
     1700000000123LL, 0, 0x1234},
    {LBW_NOTIFY_FIRING,
     "ALERTS{alertname=\"CertExpiringSoon\",probe=\"http\",severity=\"critical\","
     "target=\"www\"}",
     "A{description=\"renew the certificate of www.example.com\",summary=\"Zertifikat "
     "l\xc3\xa4uft in 2 Tagen ab, bitte erneuern, sonst f\xc3\xa4llt www aus und alle "
     "Kunden sehen Warnungen im Browser\"}",
     1700000000456LL, 0, 0x5678},
};

static struct lbw_notification notification(const char *key)
{
    return (struct lbw_notification){
        .receiver = "ops",
        .status = LBW_NOTIFY_FIRING,
        .group_key = "G{target=\"www\"}",
        .alerts = alerts,
        .nalerts = 2,
        .idempotency_key = key,
        .external_url = "https://n1.example:8443/",
    };
}

/* Every record of a sink's file, as a JSON array (new reference). */
static json_t *sink_records(const struct sink *s)
{
    json_t *all = json_array();
    FILE *f = fopen(s->out, "r");
    char *line = NULL;
    size_t cap = 0;
    assert_non_null(all);
    if (!f)
        return all;
    while (getline(&line, &cap, f) > 0) {
        json_error_t e;
        json_t *rec = json_loads(line, 0, &e);
        if (!rec)
            fail_msg("%s: not JSON: %s", s->out, line);
        json_array_append_new(all, rec);
    }
    free(line);
    fclose(f);
    return all;
}

static const char *rec_str(json_t *rec, const char *field)
{
    json_t *v = json_object_get(rec, field);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static const char *rec_header(json_t *rec, const char *name)
{
    return rec_str(json_object_get(rec, "headers"), name);
}

/* The webhook-sink records whose Idempotency-Key is key (new reference). */
static json_t *http_records(const struct sink *s, const char *key)
{
    json_t *all = sink_records(s), *mine = json_array();
    size_t i;
    json_t *rec;
    json_array_foreach(all, i, rec) {
        const char *k = rec_header(rec, "idempotency-key");
        if (k && strcmp(k, key) == 0)
            json_array_append(mine, rec);
    }
    json_decref(all);
    return mine;
}

/* The one webhook-sink record with this key (new reference); fails unless there is one. */
static json_t *http_record(const struct sink *s, const char *key)
{
    json_t *mine = http_records(s, key);
    if (json_array_size(mine) != 1)
        fail_msg("%zu records with key %s in %s", json_array_size(mine), key, s->out);
    json_t *rec = json_incref(json_array_get(mine, 0));
    json_decref(mine);
    return rec;
}

/* The SMTP-sink records of the message with Message-ID <key@lbwatch> (new reference). */
static json_t *smtp_records(const struct sink *s, const char *key)
{
    char id[128];
    json_t *all = sink_records(s), *mine = json_array();
    size_t i;
    json_t *rec;
    snprintf(id, sizeof(id), "\r\nMessage-ID: <%s@lbwatch>\r\n", key);
    json_array_foreach(all, i, rec) {
        const char *data = rec_str(rec, "data");
        if (data && strstr(data, id))
            json_array_append(mine, rec);
    }
    json_decref(all);
    return mine;
}

static const char *form_value(json_t *rec, const char *container, const char *name)
{
    json_t *v = json_object_get(json_object_get(rec, container), name);
    if (!json_is_array(v) || json_array_size(v) != 1)
        fail_msg("%s field %s is not there once", container, name);
    return json_string_value(json_array_get(v, 0));
}

/* "sha256=" and the hex HMAC-SHA256 of data, through OpenSSL's EVP_MAC interface. */
static void expected_signature(const char *data, const void *key, size_t keylen, char out[80])
{
    unsigned char mac[32];
    size_t maclen = 0;
    assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, keylen,
                              (const unsigned char *)data, strlen(data), mac, sizeof(mac),
                              &maclen));
    assert_int_equal(maclen, 32);
    strcpy(out, "sha256=");
    for (size_t i = 0; i < maclen; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", mac[i]);
}

static struct lbw_receiver webhook(const struct sink *s, const char *path, char *url,
                                   size_t urllen)
{
    snprintf(url, urllen, "http://127.0.0.1:%u%s", s->port, path);
    return (struct lbw_receiver){.name = "ops", .kind = LBW_RECEIVER_WEBHOOK,
                                 .webhook = {.url = url, .timeout_ms = 10000}};
}

/* --- webhook ------------------------------------------------------------------------------ */

static void webhook_delivers_signed_json(void **state)
{
    (void)state;
    char url[128], want[80];
    struct lbw_receiver r = webhook(&G.web, "/hooks/lbwatch", url, sizeof(url));
    r.webhook.secret = SECRET;
    r.webhook.secret_len = strlen(SECRET);
    struct lbw_notification n = notification("wh-signed-1");
    struct outcome o = send_one(&r, &n);
    assert_int_equal(o.ok, 1);

    json_t *rec = http_record(&G.web, "wh-signed-1");
    assert_string_equal(rec_str(rec, "method"), "POST");
    assert_string_equal(rec_str(rec, "path"), "/hooks/lbwatch");
    assert_string_equal(rec_header(rec, "content-type"), "application/json");
    assert_contains(rec_header(rec, "user-agent"), "lbwatch/");
    const char *body = rec_str(rec, "body");
    char *rendered = lbw_notify_webhook_json(&n);
    assert_string_equal(body, rendered);
    free(rendered);
    expected_signature(body, SECRET, strlen(SECRET), want);
    assert_string_equal(rec_header(rec, "x-lbwatch-signature"), want);

    json_t *j = json_object_get(rec, "json");
    assert_string_equal(json_string_value(json_object_get(j, "version")), "4");
    assert_string_equal(json_string_value(json_object_get(j, "receiver")), "ops");
    assert_string_equal(json_string_value(json_object_get(j, "status")), "firing");
    assert_int_equal(json_array_size(json_object_get(j, "alerts")), 2);
    json_t *common = json_object_get(j, "commonLabels");
    assert_string_equal(json_string_value(json_object_get(common, "target")), "www");
    assert_null(json_object_get(common, "probe"));
    json_decref(rec);
}

static void webhook_without_secret_is_unsigned(void **state)
{
    (void)state;
    char url[128];
    struct lbw_receiver r = webhook(&G.web, "/plain", url, sizeof(url));
    struct lbw_notification n = notification("wh-unsigned-1");
    assert_int_equal(send_one(&r, &n).ok, 1);
    json_t *rec = http_record(&G.web, "wh-unsigned-1");
    assert_null(rec_header(rec, "x-lbwatch-signature"));
    assert_null(rec_header(rec, "expect"));
    json_decref(rec);
}

static void webhook_over_tls_verifies_the_server(void **state)
{
    (void)state;
    char url[128];
    snprintf(url, sizeof(url), "https://127.0.0.1:%u/tls", G.tls.port);
    struct lbw_receiver r = {.kind = LBW_RECEIVER_WEBHOOK,
                             .webhook = {.url = url, .ca_file = G.ca}};
    struct lbw_notification n = notification("wh-tls-1");
    assert_int_equal(send_one(&r, &n).ok, 1);
    json_t *rec = http_record(&G.tls, "wh-tls-1");
    json_decref(rec);

    r.webhook.ca_file = G.other_ca;
    n = notification("wh-tls-2");
    struct outcome o = send_one(&r, &n);
    assert_int_equal(o.ok, 0);
    assert_contains(o.error, "webhook: ");
    assert_contains(o.error, "certificate");
    json_t *none = http_records(&G.tls, "wh-tls-2");
    assert_int_equal(json_array_size(none), 0);
    json_decref(none);
}

static void webhook_500_fails_with_the_status(void **state)
{
    (void)state;
    char url[128];
    struct lbw_receiver r = webhook(&G.fail, "/hook", url, sizeof(url));
    struct lbw_notification n = notification("wh-500-1");
    struct outcome o = send_one(&r, &n);
    assert_int_equal(o.ok, 0);
    assert_string_equal(o.error, "webhook: HTTP status 500, expected 2xx");
    json_t *rec = http_record(&G.fail, "wh-500-1"); /* it did arrive */
    json_decref(rec);
}

static void webhook_redirect_is_not_followed(void **state)
{
    (void)state;
    char url[128];
    struct lbw_receiver r = webhook(&G.redirect, "/hook", url, sizeof(url));
    struct lbw_notification n = notification("wh-307-1");
    struct outcome o = send_one(&r, &n);
    assert_int_equal(o.ok, 0);
    assert_string_equal(o.error, "webhook: HTTP status 307, expected 2xx");
    json_t *moved = http_records(&G.web, "wh-307-1");
    assert_int_equal(json_array_size(moved), 0);
    json_decref(moved);
}

static void webhook_times_out(void **state)
{
    (void)state;
    char url[128];
    struct lbw_receiver r = webhook(&G.slow, "/hook", url, sizeof(url));
    r.webhook.timeout_ms = 400;
    struct lbw_notification n = notification("wh-timeout-1");
    struct outcome o = send_one(&r, &n);
    assert_int_equal(o.ok, 0);
    assert_contains(o.error, "webhook: Timeout was reached");
}

static void webhook_refused_connection_fails(void **state)
{
    (void)state;
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/", tu_free_port());
    struct lbw_receiver r = {.kind = LBW_RECEIVER_WEBHOOK, .webhook = {.url = url}};
    struct lbw_notification n = notification("wh-refused-1");
    struct outcome o = send_one(&r, &n);
    assert_int_equal(o.ok, 0);
    assert_contains(o.error, "webhook: Couldn't connect to server");
}

/* --- e-mail ------------------------------------------------------------------------------- */

static const char *const mail_to[] = {"ops@example.com", "On Call <oncall@example.com>"};

static struct lbw_receiver email(const struct sink *s, const char *scheme, char *url,
                                 size_t urllen)
{
    snprintf(url, urllen, "%s://127.0.0.1:%u", scheme, s->port);
    return (struct lbw_receiver){
        .name = "mail",
        .kind = LBW_RECEIVER_EMAIL,
        .email = {.url = url, .starttls = LBW_STARTTLS_REQUIRED,
                  .from = "lbwatch <alerts@example.com>", .to = mail_to, .nto = 2,
                  .ca_file = G.ca, .timeout_ms = 15000},
    };
}

static json_t *smtp_record(const struct sink *s, const char *key)
{
    json_t *mine = smtp_records(s, key);
    if (json_array_size(mine) != 1)
        fail_msg("%zu messages with key %s in %s", json_array_size(mine), key, s->out);
    json_t *rec = json_incref(json_array_get(mine, 0));
    json_decref(mine);
    return rec;
}

static void assert_no_message(const struct sink *s, const char *key)
{
    json_t *mine = smtp_records(s, key);
    assert_int_equal(json_array_size(mine), 0);
    json_decref(mine);
}

static void email_starttls_and_auth_deliver(void **state)
{
    (void)state;
    char url[64];
    struct lbw_receiver r = email(&G.smtp_auth, "smtp", url, sizeof(url));
    r.email.username = SMTP_USER;
    r.email.password = SMTP_PASSWORD;
    struct lbw_notification n = notification("mail-auth-1");
    assert_int_equal(send_one(&r, &n).ok, 1);

    json_t *rec = smtp_record(&G.smtp_auth, "mail-auth-1");
    assert_string_equal(rec_str(rec, "mail_from"), "alerts@example.com");
    json_t *rcpt = json_object_get(rec, "rcpt_tos");
    assert_int_equal(json_array_size(rcpt), 2);
    assert_string_equal(json_string_value(json_array_get(rcpt, 0)), "ops@example.com");
    assert_string_equal(json_string_value(json_array_get(rcpt, 1)), "oncall@example.com");
    assert_true(json_is_true(json_object_get(rec, "tls")));
    assert_true(json_is_true(json_object_get(rec, "authenticated")));
    assert_string_equal(rec_str(rec, "user"), SMTP_USER);
    const char *data = rec_str(rec, "data");
    assert_true(strncmp(data, "Date: ", 6) == 0);
    assert_contains(data, "\r\nFrom: lbwatch <alerts@example.com>\r\n");
    assert_contains(data, "\r\nTo: ops@example.com, On Call <oncall@example.com>\r\n");
    assert_contains(data, "\r\nMessage-ID: <mail-auth-1@lbwatch>\r\n");
    assert_contains(data, "\r\nSubject: [FIRING:2] CertExpiringSoon (target=www)\r\n");
    assert_contains(data, "\r\nMIME-Version: 1.0\r\n");
    assert_contains(data, "\r\nContent-Type: text/plain; charset=utf-8\r\n");
    assert_contains(data, "\r\nContent-Transfer-Encoding: quoted-printable\r\n");
    assert_contains(data, "\r\nIdempotency key: mail-auth-1\r\n");
    assert_contains(data, "Zertifikat l=C3=A4uft");
    json_decref(rec);
}

static void email_starttls_required_without_server_support_fails(void **state)
{
    (void)state;
    char url[64];
    struct lbw_receiver r = email(&G.smtp_plain, "smtp", url, sizeof(url));
    struct lbw_notification n = notification("mail-nostarttls-1");
    struct outcome o = send_one(&r, &n);
    assert_int_equal(o.ok, 0);
    assert_contains(o.error, "email: ");
    assert_contains(o.error, "STARTTLS");
    assert_no_message(&G.smtp_plain, "mail-nostarttls-1");
}

static void email_opportunistic_falls_back_to_plain(void **state)
{
    (void)state;
    char url[64];
    struct lbw_receiver r = email(&G.smtp_plain, "smtp", url, sizeof(url));
    r.email.starttls = LBW_STARTTLS_OPPORTUNISTIC;
    struct lbw_notification n = notification("mail-opportunistic-1");
    assert_int_equal(send_one(&r, &n).ok, 1);
    json_t *rec = smtp_record(&G.smtp_plain, "mail-opportunistic-1");
    assert_true(json_is_false(json_object_get(rec, "tls")));
    json_decref(rec);

    /* Offered STARTTLS, opportunistic takes it (the sink refuses mail before it). */
    r = email(&G.smtp_tls, "smtp", url, sizeof(url));
    r.email.starttls = LBW_STARTTLS_OPPORTUNISTIC;
    n = notification("mail-opportunistic-2");
    assert_int_equal(send_one(&r, &n).ok, 1);
    rec = smtp_record(&G.smtp_tls, "mail-opportunistic-2");
    assert_true(json_is_true(json_object_get(rec, "tls")));
    assert_true(json_is_false(json_object_get(rec, "authenticated")));
    json_decref(rec);
}

static void email_wrong_password_fails_without_saying_it(void **state)
{
    (void)state;
    char url[64];
    struct lbw_receiver r = email(&G.smtp_auth, "smtp", url, sizeof(url));
    r.email.username = SMTP_USER;
    r.email.password = "not-the-pa55word";
    struct lbw_notification n = notification("mail-wrongpw-1");
    struct outcome o = send_one(&r, &n);
    assert_int_equal(o.ok, 0);
    assert_contains(o.error, "email: Login denied");
    assert_not_contains(o.error, "not-the-pa55word");
    assert_not_contains(o.error, SMTP_USER);
    assert_no_message(&G.smtp_auth, "mail-wrongpw-1");
}

static void email_untrusted_server_certificate_fails(void **state)
{
    (void)state;
    char url[64];
    struct lbw_receiver r = email(&G.smtp_auth, "smtp", url, sizeof(url));
    r.email.username = SMTP_USER;
    r.email.password = SMTP_PASSWORD;
    r.email.ca_file = G.other_ca;
    struct lbw_notification n = notification("mail-untrusted-1");
    struct outcome o = send_one(&r, &n);
    assert_int_equal(o.ok, 0);
    assert_contains(o.error, "certificate");
    assert_no_message(&G.smtp_auth, "mail-untrusted-1");
}

static void email_smtps_delivers(void **state)
{
    (void)state;
    char url[64];
    struct lbw_receiver r = email(&G.smtps, "smtps", url, sizeof(url));
    r.email.starttls = LBW_STARTTLS_OFF; /* irrelevant: smtps is TLS from the start */
    struct lbw_notification n = notification("mail-smtps-1");
    assert_int_equal(send_one(&r, &n).ok, 1);
    json_t *rec = smtp_record(&G.smtps, "mail-smtps-1");
    assert_true(json_is_true(json_object_get(rec, "tls")));
    assert_string_equal(rec_str(rec, "tls_version"), "TLSv1.3");
    json_decref(rec);
}

/* --- SMS ---------------------------------------------------------------------------------- */

static const char *const phones[] = {"+15550001", "+15550002"};
static const struct lbw_sms_param sms_extra[] = {{"channel", "ops"}, {"priority", "high"}};

static struct lbw_receiver sms_gateway(const struct sink *s, const char *path, char *url,
                                       size_t urllen)
{
    snprintf(url, urllen, "http://127.0.0.1:%u%s", s->port, path);
    return (struct lbw_receiver){
        .name = "pager",
        .kind = LBW_RECEIVER_SMS,
        .sms = {.url = url, .to = phones, .nto = 2, .extra = sms_extra, .nextra = 2,
                .timeout_ms = 10000},
    };
}

/* "Basic " and base64 of user:password. */
static void basic_auth(const char *user, const char *password, char out[128])
{
    char plain[64];
    int n = snprintf(plain, sizeof(plain), "%s:%s", user, password);
    strcpy(out, "Basic ");
    EVP_EncodeBlock((unsigned char *)out + 6, (const unsigned char *)plain, n);
}

static void sms_form_with_basic_auth(void **state)
{
    (void)state;
    char url[128], auth[128], text[161];
    struct lbw_receiver r = sms_gateway(&G.web, "/sms/form", url, sizeof(url));
    r.sms.to_param = "To";
    r.sms.from_param = "From";
    r.sms.text_param = "Body";
    r.sms.from = "lbwatch";
    r.sms.auth = LBW_SMS_AUTH_BASIC;
    r.sms.username = "acct";
    r.sms.password = "sms-s3cret";
    struct lbw_notification n = notification("sms-form-1");
    assert_int_equal(send_one(&r, &n).ok, 1);

    lbw_notify_sms_text(&n, text);
    basic_auth("acct", "sms-s3cret", auth);
    for (int i = 0; i < 2; i++) {
        char key[32];
        snprintf(key, sizeof(key), "sms-form-1-%d", i + 1);
        json_t *rec = http_record(&G.web, key);
        assert_string_equal(rec_str(rec, "method"), "POST");
        assert_string_equal(rec_str(rec, "path"), "/sms/form");
        assert_string_equal(rec_header(rec, "content-type"),
                            "application/x-www-form-urlencoded");
        assert_string_equal(rec_header(rec, "authorization"), auth);
        assert_string_equal(form_value(rec, "form", "To"), phones[i]);
        assert_string_equal(form_value(rec, "form", "From"), "lbwatch");
        assert_string_equal(form_value(rec, "form", "channel"), "ops");
        assert_string_equal(form_value(rec, "form", "priority"), "high");
        const char *body = form_value(rec, "form", "Body");
        assert_string_equal(body, text);
        assert_true(strlen(body) <= 160);
        assert_contains(body, "FIRING critical CertExpiringSoon target=www probe=tls: ");
        assert_int_equal(json_object_size(json_object_get(rec, "form")), 5);
        json_decref(rec);
    }
}

static void sms_json_with_bearer_auth(void **state)
{
    (void)state;
    char url[128], text[161];
    struct lbw_receiver r = sms_gateway(&G.web, "/sms/json", url, sizeof(url));
    r.sms.format = LBW_SMS_JSON;
    r.sms.method = "PUT";
    r.sms.text_param = "message";
    r.sms.nto = 1;
    r.sms.auth = LBW_SMS_AUTH_BEARER;
    r.sms.token = "tok-0123456789";
    struct lbw_notification n = notification("sms-json-1");
    assert_int_equal(send_one(&r, &n).ok, 1);

    lbw_notify_sms_text(&n, text);
    json_t *rec = http_record(&G.web, "sms-json-1-1");
    assert_string_equal(rec_str(rec, "method"), "PUT");
    assert_string_equal(rec_header(rec, "content-type"), "application/json");
    assert_string_equal(rec_header(rec, "authorization"), "Bearer tok-0123456789");
    json_t *j = json_object_get(rec, "json");
    assert_int_equal(json_object_size(j), 4);
    assert_string_equal(json_string_value(json_object_get(j, "to")), "+15550001");
    assert_string_equal(json_string_value(json_object_get(j, "message")), text);
    assert_true(strlen(json_string_value(json_object_get(j, "message"))) <= 160);
    assert_string_equal(json_string_value(json_object_get(j, "channel")), "ops");
    assert_null(json_object_get(j, "from"));
    json_decref(rec);
}

static void sms_get_puts_fields_in_the_query(void **state)
{
    (void)state;
    char url[128], text[161];
    struct lbw_receiver r = sms_gateway(&G.web, "/sms/send?api=2", url, sizeof(url));
    r.sms.method = "GET";
    r.sms.nto = 1;
    r.sms.nextra = 0;
    struct lbw_notification n = notification("sms-get-1");
    assert_int_equal(send_one(&r, &n).ok, 1);
    lbw_notify_sms_text(&n, text);
    json_t *rec = http_record(&G.web, "sms-get-1-1");
    assert_string_equal(rec_str(rec, "method"), "GET");
    assert_string_equal(rec_str(rec, "body"), "");
    assert_string_equal(form_value(rec, "query", "api"), "2");
    assert_string_equal(form_value(rec, "query", "to"), "+15550001");
    assert_string_equal(form_value(rec, "query", "text"), text);
    json_decref(rec);
}

static void sms_gateway_error_names_the_recipients(void **state)
{
    (void)state;
    char url[128];
    struct lbw_receiver r = sms_gateway(&G.fail, "/sms", url, sizeof(url));
    struct lbw_notification n = notification("sms-fail-1");
    struct outcome o = send_one(&r, &n);
    assert_int_equal(o.ok, 0);
    assert_contains(o.error, "HTTP status 500, expected 2xx (2 of 2 recipients failed)");
    assert_contains(o.error, "sms to +1555000");
}

/* --- configuration errors and their reporting --------------------------------------------- */

static void bad_receiver_is_reported_by_callback(void **state)
{
    (void)state;
    struct lbw_receiver r = {.kind = LBW_RECEIVER_WEBHOOK, .webhook = {.url = "ftp://x/"}};
    struct lbw_notification n = notification("bad-1");
    struct outcome o = send_one(&r, &n);
    assert_int_equal(o.ok, 0);
    assert_string_equal(o.error, "webhook: url must be an http:// or https:// URL");

    char url[64];
    r = (struct lbw_receiver){.kind = LBW_RECEIVER_WEBHOOK, .webhook = {.url = url}};
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/", G.web.port);
    n = notification("not a key");
    o = send_one(&r, &n);
    assert_int_equal(o.ok, 0);
    assert_string_equal(o.error, "webhook: the idempotency key is not valid");
}

static void receiver_check_finds_mistakes(void **state)
{
    (void)state;
    const char *const bad_to[] = {"ops@example.com", "x@y\r\nRCPT TO:<evil@example.com>"};
    const char *const no_at[] = {"ops"};
    const struct lbw_sms_param clash[] = {{"text", "x"}};
    const struct {
        struct lbw_receiver r;
        const char *error;
    } cases[] = {
        {{.kind = LBW_RECEIVER_WEBHOOK, .webhook = {.url = "http://h/", .secret = "",
                                                     .secret_len = 0}},
         "the secret is empty"},
        {{.kind = LBW_RECEIVER_EMAIL, .email = {.url = "http://h", .from = "a@b",
                                                 .to = mail_to, .nto = 1}},
         "url must be an smtp:// or smtps:// URL"},
        {{.kind = LBW_RECEIVER_EMAIL, .email = {.url = "smtp://h", .from = "a@b",
                                                 .to = bad_to, .nto = 2}},
         "to[1] is not a mail address"},
        {{.kind = LBW_RECEIVER_EMAIL, .email = {.url = "smtp://h", .from = "a@b",
                                                 .to = no_at, .nto = 1}},
         "to[0] is not a mail address"},
        {{.kind = LBW_RECEIVER_EMAIL, .email = {.url = "smtp://h", .from = "Name <a@b",
                                                 .to = mail_to, .nto = 1}},
         "from is not a mail address"},
        {{.kind = LBW_RECEIVER_EMAIL, .email = {.url = "smtp://h", .from = "a@b",
                                                 .to = mail_to, .nto = 0}},
         "no recipients"},
        {{.kind = LBW_RECEIVER_EMAIL,
          .email = {.url = "smtp://h", .starttls = LBW_STARTTLS_OPPORTUNISTIC, .from = "a@b",
                    .to = mail_to, .nto = 1, .username = "u", .password = "p"}},
         "a password is only sent over TLS: use smtps:// or starttls required"},
        {{.kind = LBW_RECEIVER_EMAIL, .email = {.url = "smtp://h", .from = "a@b",
                                                 .to = mail_to, .nto = 1, .username = "u"}},
         "username and password go together"},
        {{.kind = LBW_RECEIVER_SMS, .sms = {.url = "http://h/", .method = "DELETE",
                                             .to = phones, .nto = 1}},
         "method must be POST, PUT or GET"},
        {{.kind = LBW_RECEIVER_SMS, .sms = {.url = "http://h/", .method = "GET",
                                             .format = LBW_SMS_JSON, .to = phones, .nto = 1}},
         "GET sends form fields, not JSON"},
        {{.kind = LBW_RECEIVER_SMS, .sms = {.url = "http://h/", .to = phones, .nto = 1,
                                             .extra = clash, .nextra = 1}},
         "field text is used twice"},
        {{.kind = LBW_RECEIVER_SMS, .sms = {.url = "http://h/", .to = phones, .nto = 1,
                                             .auth = LBW_SMS_AUTH_BEARER}},
         "bearer auth needs a token"},
        {{.kind = LBW_RECEIVER_SMS, .sms = {.url = "http://h/", .to = phones, .nto = 1,
                                             .auth = LBW_SMS_AUTH_BASIC, .username = "u"}},
         "basic auth needs a username and a password"},
        {{.kind = LBW_RECEIVER_SMS, .sms = {.url = "http://h/", .to = phones, .nto = 0}},
         "no recipients"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[LBW_SEND_ERROR_MAX] = "";
        if (lbw_receiver_check(&cases[i].r, err, sizeof(err)) != -1)
            fail_msg("case %zu passed the check", i);
        assert_string_equal(err, cases[i].error);
    }

    char err[LBW_SEND_ERROR_MAX];
    struct lbw_receiver ok = {.kind = LBW_RECEIVER_EMAIL,
                              .email = {.url = "smtps://mail.example.com", .from = "a@b",
                                        .to = mail_to, .nto = 2, .username = "u",
                                        .password = "p",
                                        .starttls = LBW_STARTTLS_OFF}};
    assert_int_equal(lbw_receiver_check(&ok, err, sizeof(err)), 0);
    ok = (struct lbw_receiver){.kind = LBW_RECEIVER_SMS,
                               .sms = {.url = "https://gw.example.com/send", .to = phones,
                                       .nto = 2, .extra = sms_extra, .nextra = 2}};
    assert_int_equal(lbw_receiver_check(&ok, err, sizeof(err)), 0);
}

/* --- closing ------------------------------------------------------------------------------ */

/* Waits (bounded) until the slow sink holds a record for each key: those requests are in
 * flight, the sink holding its answers. */
static void wait_for_records(struct env *e, const char *const *keys, size_t nkeys)
{
    for (int round = 0; round < 200; round++) {
        size_t seen = 0;
        for (size_t i = 0; i < nkeys; i++) {
            json_t *mine = http_records(&G.slow, keys[i]);
            seen += json_array_size(mine) > 0;
            json_decref(mine);
        }
        if (seen == nkeys)
            return;
        run_until(&e->loop, NULL, 0, 50);
    }
    fail_msg("the slow sink did not receive every request");
}

static void close_with_deliveries_in_flight(void **state)
{
    (void)state;
    struct env e;
    char url[128], smsurl[128];
    int total = 0;
    struct outcome o[5] = {{0}};
    for (int i = 0; i < 5; i++)
        o[i].total = &total;
    env_open(&e);
    struct lbw_receiver hook = webhook(&G.slow, "/hook", url, sizeof(url));
    struct lbw_receiver pager = sms_gateway(&G.slow, "/sms", smsurl, sizeof(smsurl));
    struct lbw_receiver bad = {.kind = LBW_RECEIVER_WEBHOOK, .webhook = {.url = "gopher://x"}};
    struct lbw_notification n1 = notification("close-1"), n2 = notification("close-2"),
                            n3 = notification("close-3"), n4 = notification("close-4");
    assert_int_equal(lbw_sender_send(e.sender, &hook, &n1, on_sent, &o[0]), 0);
    assert_int_equal(lbw_sender_send(e.sender, &hook, &n2, on_sent, &o[1]), 0);
    assert_int_equal(lbw_sender_send(e.sender, &hook, &n3, on_sent, &o[2]), 0);
    assert_int_equal(lbw_sender_send(e.sender, &pager, &n4, on_sent, &o[3]), 0);
    const char *const keys[] = {"close-1", "close-2", "close-3", "close-4-1", "close-4-2"};
    wait_for_records(&e, keys, 5);
    assert_int_equal(lbw_curluv_active(e.curl), 5);
    assert_int_equal(lbw_sender_send(e.sender, &bad, &n1, on_sent, &o[4]), 0);
    assert_int_equal(lbw_sender_pending(e.sender), 5);

    lbw_sender_close(e.sender);
    assert_int_equal(lbw_curluv_active(e.curl), 0);
    assert_int_equal(lbw_sender_send(e.sender, &hook, &n1, on_sent, &o[0]), -1);
    env_close(&e, 0);
    assert_int_equal(total, 0);
}

/* A callback may close the sender; the deliveries still in flight then report nothing. */
static void close_from_a_callback(void **state)
{
    (void)state;
    struct env e;
    char fast[128], slow[128];
    int total = 0;
    env_open(&e);
    struct outcome first = {.close_sender = e.sender, .total = &total};
    struct outcome rest[2] = {{.total = &total}, {.total = &total}};
    struct lbw_receiver quick = webhook(&G.web, "/quick", fast, sizeof(fast));
    struct lbw_receiver held = webhook(&G.slow, "/held", slow, sizeof(slow));
    struct lbw_notification n1 = notification("cb-close-1"), n2 = notification("cb-close-2"),
                            n3 = notification("cb-close-3");
    assert_int_equal(lbw_sender_send(e.sender, &held, &n2, on_sent, &rest[0]), 0);
    assert_int_equal(lbw_sender_send(e.sender, &held, &n3, on_sent, &rest[1]), 0);
    assert_int_equal(lbw_sender_send(e.sender, &quick, &n1, on_sent, &first), 0);
    run_until(&e.loop, &first.calls, 1, RUN_LIMIT_MS);
    assert_int_equal(first.calls, 1);
    assert_int_equal(first.ok, 1);
    assert_int_equal(lbw_curluv_active(e.curl), 0);
    env_close(&e, 0);
    assert_int_equal(total, 1);
}

/* Receivers that cannot start are reported in the order sent; closing the sender from the
 * first report silences the others. */
static void close_from_a_failure_callback(void **state)
{
    (void)state;
    struct env e;
    int total = 0;
    env_open(&e);
    struct outcome first = {.close_sender = e.sender, .total = &total};
    struct outcome rest[2] = {{.total = &total}, {.total = &total}};
    struct lbw_receiver bad = {.kind = LBW_RECEIVER_WEBHOOK, .webhook = {.url = "gopher://x"}};
    struct lbw_notification n = notification("fail-close-1");
    assert_int_equal(lbw_sender_send(e.sender, &bad, &n, on_sent, &first), 0);
    assert_int_equal(lbw_sender_send(e.sender, &bad, &n, on_sent, &rest[0]), 0);
    assert_int_equal(lbw_sender_send(e.sender, &bad, &n, on_sent, &rest[1]), 0);
    assert_int_equal(total, 0);
    run_until(&e.loop, &first.calls, 1, RUN_LIMIT_MS);
    assert_int_equal(first.calls, 1);
    assert_int_equal(first.ok, 0);
    env_close(&e, 0);
    assert_int_equal(total, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(webhook_delivers_signed_json),
        cmocka_unit_test(webhook_without_secret_is_unsigned),
        cmocka_unit_test(webhook_over_tls_verifies_the_server),
        cmocka_unit_test(webhook_500_fails_with_the_status),
        cmocka_unit_test(webhook_redirect_is_not_followed),
        cmocka_unit_test(webhook_times_out),
        cmocka_unit_test(webhook_refused_connection_fails),
        cmocka_unit_test(email_starttls_and_auth_deliver),
        cmocka_unit_test(email_starttls_required_without_server_support_fails),
        cmocka_unit_test(email_opportunistic_falls_back_to_plain),
        cmocka_unit_test(email_wrong_password_fails_without_saying_it),
        cmocka_unit_test(email_untrusted_server_certificate_fails),
        cmocka_unit_test(email_smtps_delivers),
        cmocka_unit_test(sms_form_with_basic_auth),
        cmocka_unit_test(sms_json_with_bearer_auth),
        cmocka_unit_test(sms_get_puts_fields_in_the_query),
        cmocka_unit_test(sms_gateway_error_names_the_recipients),
        cmocka_unit_test(bad_receiver_is_reported_by_callback),
        cmocka_unit_test(receiver_check_finds_mistakes),
        cmocka_unit_test(close_with_deliveries_in_flight),
        cmocka_unit_test(close_from_a_callback),
        cmocka_unit_test(close_from_a_failure_callback),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
