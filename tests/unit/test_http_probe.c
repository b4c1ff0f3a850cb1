/* test_http_probe.c - the HTTP probe and curluv against a real nginx on 127.0.0.1.
 *
 * The group set-up crafts a CA and a "www.test" leaf with lbw_pki_make_cert, writes an nginx
 * configuration with an HTTPS server (200, 503, 404, large bodies, the User-Agent echoed),
 * a TLS 1.1-only server, a plain-HTTP server that redirects in many ways and a plain 200
 * server, and starts nginx; the group teardown stops it whatever happened. Every probe goes
 * to the public-looking URL with connect_to pointing at the local port, as an operator
 * probing a balancer's address would. Proxy variables are set to a dead proxy to prove that
 * the environment is ignored. Every loop run is bounded by a guard timer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "node/pki.h"
#include "probes/curluv.h"
#include "probes/http.h"
#include "tests/support/testutil.h"

#define OK_BODY "lbwatch test page: all good\n"
#define BIG_SIZE (200 * 1024)
#define RUN_LIMIT_MS 20000

static struct {
    char dir[256];
    char ca[300];        /* the CA that signed www.test */
    char other_ca[300];  /* a CA that signed nothing nginx serves */
    char log[300];
    uint16_t https, tls11, redirects, plain;
    int curl_ready;
} G;

/* --- fixtures: certificates, files, nginx ------------------------------------------------- */

static int path_in(char *out, size_t size, const char *name)
{
    return (size_t)snprintf(out, size, "%s/%s", G.dir, name) < size ? 0 : -1;
}

static int make_ca(const char *name, X509 **cert, EVP_PKEY **key)
{
    char err[256], path[300];
    int64_t now = (int64_t)time(NULL);
    struct lbw_cert_spec spec = {.cn = name, .is_ca = 1, .not_before = now - 3600,
                                 .not_after = now + 86400};
    if (lbw_pki_make_cert(&spec, NULL, NULL, cert, key, err, sizeof(err)) != 0) {
        fprintf(stderr, "make_cert %s: %s\n", name, err);
        return -1;
    }
    char file[64];
    snprintf(file, sizeof(file), "%s.crt", name);
    if (path_in(path, sizeof(path), file) != 0 ||
        lbw_pki_write_cert(path, *cert, err, sizeof(err)) != 0) {
        fprintf(stderr, "write %s: %s\n", file, err);
        return -1;
    }
    return 0;
}

static int make_certificates(void)
{
    char err[256], path[300];
    int64_t now = (int64_t)time(NULL);
    X509 *ca = NULL, *other = NULL, *leaf = NULL;
    EVP_PKEY *ca_key = NULL, *other_key = NULL, *leaf_key = NULL;
    struct lbw_cert_spec spec = {.cn = "www.test", .not_before = now - 3600,
                                 .not_after = now + 86400, .dns = {"www.test"},
                                 .ips = {"127.0.0.1"}};
    int rc = -1;
    if (make_ca("ca", &ca, &ca_key) != 0 || make_ca("other-ca", &other, &other_key) != 0)
        goto out;
    if (lbw_pki_make_cert(&spec, ca, ca_key, &leaf, &leaf_key, err, sizeof(err)) != 0) {
        fprintf(stderr, "make_cert www.test: %s\n", err);
        goto out;
    }
    if (path_in(path, sizeof(path), "www.crt") != 0 ||
        lbw_pki_write_cert(path, leaf, err, sizeof(err)) != 0 ||
        path_in(path, sizeof(path), "www.key") != 0 ||
        lbw_pki_write_key(path, leaf_key, err, sizeof(err)) != 0) {
        fprintf(stderr, "write www: %s\n", err);
        goto out;
    }
    if (path_in(G.ca, sizeof(G.ca), "ca.crt") == 0 &&
        path_in(G.other_ca, sizeof(G.other_ca), "other-ca.crt") == 0)
        rc = 0;
out:
    X509_free(ca);
    X509_free(other);
    X509_free(leaf);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(other_key);
    EVP_PKEY_free(leaf_key);
    return rc;
}

/* A BIG_SIZE file of 'a' with text written at offset. */
static int make_big_file(const char *name, size_t offset, const char *text)
{
    char path[300];
    char *data = malloc(BIG_SIZE);
    if (!data || path_in(path, sizeof(path), name) != 0) {
        free(data);
        return -1;
    }
    memset(data, 'a', BIG_SIZE);
    memcpy(data + offset, text, strlen(text));
    int rc = tu_write_file(path, data, BIG_SIZE);
    chmod(path, 0644);
    free(data);
    return rc;
}

static const char nginx_conf_fmt[] =
    "%s"
    "daemon off;\n"
    "master_process off;\n"
    "worker_processes 1;\n"
    "pid %s/nginx.pid;\n"
    "error_log stderr;\n"
    "events { worker_connections 1024; }\n"
    "http {\n"
    "  access_log off;\n"
    "  default_type text/plain;\n"
    "  client_body_temp_path %s/tmp-body;\n"
    "  proxy_temp_path %s/tmp-proxy;\n"
    "  fastcgi_temp_path %s/tmp-fastcgi;\n"
    "  uwsgi_temp_path %s/tmp-uwsgi;\n"
    "  scgi_temp_path %s/tmp-scgi;\n"
    "  ssl_certificate %s/www.crt;\n"
    "  ssl_certificate_key %s/www.key;\n"
    "  server {\n"
    "    listen 127.0.0.1:%u ssl;\n"
    "    server_name www.test;\n"
    "    root %s/www;\n"
    "    location = /ok { return 200 \"" "lbwatch test page: all good\\n" "\"; }\n"
    "    location = /unavailable { return 503; }\n"
    "    location = /missing { return 404; }\n"
    "    location = /ua { return 200 \"$http_user_agent\"; }\n"
    "    location /files/ { }\n"
    "  }\n"
    "  server {\n"
    "    listen 127.0.0.1:%u ssl;\n"
    "    ssl_protocols TLSv1.1;\n"
    "    ssl_ciphers DEFAULT:@SECLEVEL=0;\n"
    "    return 200 \"old\\n\";\n"
    "  }\n"
    "  server {\n"
    "    listen 127.0.0.1:%u;\n"
    "    location / { return 301 https://$host$request_uri; }\n"
    "    location = /evil { return 301 https://evil.test/; }\n"
    "    location = /suffix { return 301 https://www.test.evil.test/; }\n"
    "    location = /userinfo { return 301 https://www.test@evil.test/; }\n"
    "    location = /otherport { return 301 https://www.test:8443/; }\n"
    "    location = /port443 { return 308 https://WWW.Test:443/port443; }\n"
    "    location = /bare { return 302 https://www.test; }\n"
    "    location = /tohttp { return 301 http://www.test/; }\n"
    "  }\n"
    "  server {\n"
    "    listen 127.0.0.1:%u;\n"
    "    return 200 \"plain\\n\";\n"
    "  }\n"
    "}\n";

static int write_nginx_conf(void)
{
    char conf[4096], path[300];
    const char *d = G.dir;
    int n = snprintf(conf, sizeof(conf), nginx_conf_fmt, geteuid() == 0 ? "user root;\n" : "",
                     d, d, d, d, d, d, d, d, G.https, d, G.tls11, G.redirects, G.plain);
    if (n < 0 || (size_t)n >= sizeof(conf) || path_in(path, sizeof(path), "nginx.conf") != 0)
        return -1;
    return tu_write_file(path, conf, (size_t)n);
}

static void print_nginx_log(void)
{
    char *argv[] = {"cat", G.log, NULL};
    char out[4096];
    if (tu_run(argv, out, sizeof(out)) >= 0)
        fprintf(stderr, "nginx log:\n%s\n", out);
}

static int start_nginx(void)
{
    char conf[300];
    if (path_in(conf, sizeof(conf), "nginx.conf") != 0 || path_in(G.log, sizeof(G.log),
                                                                  "nginx.log") != 0)
        return -1;
    char *argv[] = {"/usr/sbin/nginx", "-p", G.dir, "-c", conf, "-e", "stderr", NULL};
    if (tu_spawn(argv, G.log) < 0)
        return -1;
    uint16_t ports[] = {G.https, G.tls11, G.redirects, G.plain};
    for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
        if (tu_wait_port(ports[i], 10000) != 0) {
            print_nginx_log();
            return -1;
        }
    }
    return 0;
}

static int prepare(void)
{
    char www[300];
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -1;
    G.curl_ready = 1;
    if (tu_tmpdir("lbw-http", G.dir, sizeof(G.dir)) != 0)
        return -1;
    chmod(G.dir, 0755);
    setenv("http_proxy", "http://127.0.0.1:9", 1);
    setenv("https_proxy", "http://127.0.0.1:9", 1);
    setenv("HTTPS_PROXY", "http://127.0.0.1:9", 1);
    setenv("ALL_PROXY", "http://127.0.0.1:9", 1);
    G.https = tu_free_port();
    G.tls11 = tu_free_port();
    G.redirects = tu_free_port();
    G.plain = tu_free_port();
    if (path_in(www, sizeof(www), "www") != 0 || mkdir(www, 0755) != 0 ||
        path_in(www, sizeof(www), "www/files") != 0 || mkdir(www, 0755) != 0)
        return -1;
    if (make_certificates() != 0 ||
        make_big_file("www/files/head.txt", 10, "NEEDLE") != 0 ||
        make_big_file("www/files/tail.txt", 100 * 1024, "NEEDLE") != 0 ||
        write_nginx_conf() != 0)
        return -1;
    return start_nginx();
}

/* Safe to run twice: set-up calls it itself when it fails half-way. */
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

/* --- loop helpers ------------------------------------------------------------------------- */

struct guard {
    uv_timer_t timer;
    int expired;
};

static void on_guard(uv_timer_t *t)
{
    ((struct guard *)t->data)->expired = 1;
}

/* Runs loop until *count reaches want, nothing is left to run, or limit_ms passes. */
static void run_until(uv_loop_t *loop, const int *count, int want, uint64_t limit_ms)
{
    struct guard g = {.expired = 0};
    assert_int_equal(uv_timer_init(loop, &g.timer), 0);
    g.timer.data = &g;
    assert_int_equal(uv_timer_start(&g.timer, on_guard, limit_ms, 0), 0);
    uv_unref((uv_handle_t *)&g.timer);
    while (*count < want && !g.expired && uv_run(loop, UV_RUN_ONCE) != 0)
        ;
    uv_close((uv_handle_t *)&g.timer, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

static void loop_finish(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

/* --- probing ------------------------------------------------------------------------------ */

struct outcome {
    int calls;
    int *total;                 /* also counted here when set */
    struct lbw_http_result r;
};

static void on_result(void *arg, const struct lbw_http_result *r)
{
    struct outcome *o = arg;
    o->r = *r;
    o->calls++;
    if (o->total)
        (*o->total)++;
}

struct target_buf {
    char url[256];
    char connect_to[32];
    struct lbw_http_target t;
};

/* scheme://www.test<path>, connected to 127.0.0.1:port. */
static struct lbw_http_target *target(struct target_buf *b, const char *scheme, uint16_t port,
                                      const char *path)
{
    snprintf(b->url, sizeof(b->url), "%s://www.test%s", scheme, path);
    snprintf(b->connect_to, sizeof(b->connect_to), "127.0.0.1:%u", port);
    memset(&b->t, 0, sizeof(b->t));
    b->t.url = b->url;
    b->t.connect_to = b->connect_to;
    b->t.ca_file = G.ca;
    b->t.timeout_ms = 10000;
    return &b->t;
}

static struct lbw_http_result probe_one(const struct lbw_http_target *t)
{
    uv_loop_t loop;
    struct lbw_http_prober *p;
    char err[128];
    struct outcome o = {0};
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(lbw_http_prober_new(&p, &loop, err, sizeof(err)), 0);
    assert_int_equal(lbw_http_probe_start(p, t, on_result, &o), 0);
    assert_int_equal(o.calls, 0);
    run_until(&loop, &o.calls, 1, RUN_LIMIT_MS);
    lbw_http_prober_close(p);
    loop_finish(&loop);
    assert_int_equal(o.calls, 1);
    return o.r;
}

static void assert_contains(const char *s, const char *part)
{
    if (!strstr(s, part))
        fail_msg("\"%s\" does not contain \"%s\"", s, part);
}

/* A listener in this process that accepts connections and never says anything. */
struct silent {
    uv_tcp_t server;
    uv_tcp_t clients[8];
    int nclients;
    uint16_t port;
};

static void silent_on_connection(uv_stream_t *server, int status)
{
    struct silent *s = server->data;
    if (status != 0 || s->nclients == 8)
        return;
    uv_tcp_t *c = &s->clients[s->nclients];
    assert_int_equal(uv_tcp_init(server->loop, c), 0);
    s->nclients++;
    assert_int_equal(uv_accept(server, (uv_stream_t *)c), 0);
    uv_unref((uv_handle_t *)c);
}

static void silent_start(uv_loop_t *loop, struct silent *s)
{
    struct sockaddr_in a;
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    memset(s, 0, sizeof(*s));
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &a), 0);
    assert_int_equal(uv_tcp_init(loop, &s->server), 0);
    s->server.data = s;
    assert_int_equal(uv_tcp_bind(&s->server, (struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&s->server, 16, silent_on_connection), 0);
    assert_int_equal(uv_tcp_getsockname(&s->server, (struct sockaddr *)&bound, &len), 0);
    s->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    uv_unref((uv_handle_t *)&s->server);
}

static void silent_stop(struct silent *s)
{
    for (int i = 0; i < s->nclients; i++)
        uv_close((uv_handle_t *)&s->clients[i], NULL);
    uv_close((uv_handle_t *)&s->server, NULL);
}

/* --- HTTPS -------------------------------------------------------------------------------- */

static void https_ok_measures_phases(void **state)
{
    (void)state;
    struct target_buf b;
    struct lbw_http_target *t = target(&b, "https", G.https, "/ok");
    t->expect_body = "all good";
    struct lbw_http_result r = probe_one(t);
    assert_string_equal(r.error, "");
    assert_int_equal(r.success, 1);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.status_ok, 1);
    assert_int_equal(r.body_ok, 1);
    assert_int_equal(r.body_checked, 1);
    assert_int_equal(r.redirect_checked, 0);
    assert_int_equal(r.is_tls, 1);
    assert_int_equal(r.content_length, (int64_t)strlen(OK_BODY));
    assert_true(r.connect_seconds > 0);
    assert_true(r.tls_seconds > 0);
    assert_true(r.first_byte_seconds > 0);
    assert_true(r.total_seconds > 0);
    assert_true(r.connect_seconds + r.tls_seconds <= r.first_byte_seconds);
    assert_true(r.connect_seconds <= r.first_byte_seconds);
    assert_true(r.first_byte_seconds <= r.total_seconds);
    assert_string_equal(r.location, "");
}

static void https_missing_body_fails(void **state)
{
    (void)state;
    struct target_buf b;
    struct lbw_http_target *t = target(&b, "https", G.https, "/ok");
    t->expect_body = "not on this page";
    struct lbw_http_result r = probe_one(t);
    assert_int_equal(r.success, 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.status_ok, 1);
    assert_int_equal(r.body_ok, 0);
    assert_int_equal(r.body_checked, 1);
    assert_contains(r.error, "expected text not found");
}

static void https_503_fails(void **state)
{
    (void)state;
    struct target_buf b;
    struct lbw_http_result r = probe_one(target(&b, "https", G.https, "/unavailable"));
    assert_int_equal(r.success, 0);
    assert_int_equal(r.status, 503);
    assert_int_equal(r.status_ok, 0);
    assert_string_equal(r.error, "status 503, expected 2xx");
    assert_true(r.content_length > 0);
}

static void https_expected_404_succeeds(void **state)
{
    (void)state;
    struct target_buf b;
    struct lbw_http_target *t = target(&b, "https", G.https, "/missing");
    t->expect_status = 404;
    struct lbw_http_result r = probe_one(t);
    assert_string_equal(r.error, "");
    assert_int_equal(r.success, 1);
    assert_int_equal(r.status, 404);
    assert_int_equal(r.status_ok, 1);

    t = target(&b, "https", G.https, "/ok");
    t->expect_status = 404;
    r = probe_one(t);
    assert_int_equal(r.success, 0);
    assert_string_equal(r.error, "status 200, expected 404");
}

static void https_sends_user_agent(void **state)
{
    (void)state;
    struct target_buf b;
    struct lbw_http_target *t = target(&b, "https", G.https, "/ua");
    t->expect_body = "lbwatch/" LBW_VERSION;
    struct lbw_http_result r = probe_one(t);
    assert_string_equal(r.error, "");
    assert_int_equal(r.success, 1);
}

/* 64 KiB are searched; the rest is counted. */
static void https_large_body_is_bounded(void **state)
{
    (void)state;
    struct target_buf b;
    struct lbw_http_target *t = target(&b, "https", G.https, "/files/head.txt");
    t->expect_body = "NEEDLE";
    struct lbw_http_result r = probe_one(t);
    assert_int_equal(r.success, 1);
    assert_int_equal(r.content_length, BIG_SIZE);

    t = target(&b, "https", G.https, "/files/tail.txt");
    t->expect_body = "NEEDLE";
    r = probe_one(t);
    assert_int_equal(r.success, 0);
    assert_int_equal(r.body_ok, 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.content_length, BIG_SIZE);
    assert_contains(r.error, "64 KiB");
}

static void https_wrong_ca_fails_verification(void **state)
{
    (void)state;
    struct target_buf b;
    struct lbw_http_target *t = target(&b, "https", G.https, "/ok");
    t->ca_file = G.other_ca;
    struct lbw_http_result r = probe_one(t);
    assert_int_equal(r.success, 0);
    assert_int_equal(r.status, 0);
    assert_contains(r.error, "certificate");
}

static void https_wrong_host_fails_verification(void **state)
{
    (void)state;
    struct target_buf b;
    struct lbw_http_target *t = target(&b, "https", G.https, "/ok");
    snprintf(b.url, sizeof(b.url), "https://other.test/ok");
    struct lbw_http_result r = probe_one(t);
    assert_int_equal(r.success, 0);
    assert_int_equal(r.status, 0);
    assert_contains(r.error, "other.test");
}

static void https_to_tls11_only_fails(void **state)
{
    (void)state;
    struct target_buf b;
    struct lbw_http_result r = probe_one(target(&b, "https", G.tls11, "/"));
    assert_int_equal(r.success, 0);
    assert_int_equal(r.status, 0);
    assert_true(r.tls_seconds == 0);
    assert_true(r.error[0] != '\0');
}

static void https_to_plain_port_fails(void **state)
{
    (void)state;
    struct target_buf b;
    struct lbw_http_result r = probe_one(target(&b, "https", G.plain, "/"));
    assert_int_equal(r.success, 0);
    assert_int_equal(r.status, 0);
    assert_true(r.error[0] != '\0');
}

static void connection_refused_fails(void **state)
{
    (void)state;
    struct target_buf b;
    struct lbw_http_result r = probe_one(target(&b, "https", tu_free_port(), "/"));
    assert_int_equal(r.success, 0);
    assert_int_equal(r.status, 0);
    assert_contains(r.error, "connect");
}

/* Both a TLS handshake and an HTTP request to a peer that never answers time out. */
static void silent_peer_times_out(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct lbw_http_prober *p;
    struct silent s;
    char err[128];
    struct target_buf bs, bp;
    int calls = 0;
    struct outcome tls = {.total = &calls}, plain = {.total = &calls};
    assert_int_equal(uv_loop_init(&loop), 0);
    silent_start(&loop, &s);
    assert_int_equal(lbw_http_prober_new(&p, &loop, err, sizeof(err)), 0);
    struct lbw_http_target *ts = target(&bs, "https", s.port, "/");
    struct lbw_http_target *tp = target(&bp, "http", s.port, "/");
    ts->timeout_ms = tp->timeout_ms = 1000;
    assert_int_equal(lbw_http_probe_start(p, ts, on_result, &tls), 0);
    assert_int_equal(lbw_http_probe_start(p, tp, on_result, &plain), 0);
    run_until(&loop, &calls, 2, RUN_LIMIT_MS);
    assert_int_equal(s.nclients, 2);
    lbw_http_prober_close(p);
    silent_stop(&s);
    loop_finish(&loop);
    const struct outcome *both[] = {&tls, &plain};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(both[i]->calls, 1);
        assert_int_equal(both[i]->r.success, 0);
        assert_int_equal(both[i]->r.status, 0);
        assert_contains(both[i]->r.error, "Timeout");
        assert_true(both[i]->r.total_seconds >= 0.9);
        assert_true(both[i]->r.total_seconds < 5.0);
    }
}

/* --- plain HTTP and the https redirect ---------------------------------------------------- */

static void plain_http_ok(void **state)
{
    (void)state;
    struct target_buf b;
    struct lbw_http_result r = probe_one(target(&b, "http", G.plain, "/"));
    assert_int_equal(r.success, 1);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.is_tls, 0);
    assert_true(r.tls_seconds == 0);
    assert_int_equal(r.content_length, 6);
    assert_true(r.connect_seconds > 0);
    assert_true(r.connect_seconds <= r.first_byte_seconds);
    assert_true(r.first_byte_seconds <= r.total_seconds);
}

static void redirect_to_https_same_host_succeeds(void **state)
{
    (void)state;
    struct target_buf b;
    struct lbw_http_target *t = target(&b, "http", G.redirects, "/some/path?x=1");
    t->expect_https_redirect = 1;
    struct lbw_http_result r = probe_one(t);
    assert_string_equal(r.error, "");
    assert_int_equal(r.success, 1);
    assert_int_equal(r.status, 301);
    assert_int_equal(r.status_ok, 1);
    assert_int_equal(r.redirect_ok, 1);
    assert_int_equal(r.redirect_checked, 1);
    assert_string_equal(r.location, "https://www.test/some/path?x=1");
}

static void redirect_variants(void **state)
{
    (void)state;
    static const struct {
        const char *path;
        uint16_t https_port;    /* where the target serves TLS; 0 = 443 */
        int ok;
        const char *location;
    } cases[] = {
        {"/port443", 0, 1, "https://WWW.Test:443/port443"},
        {"/bare", 0, 1, "https://www.test"},
        {"/bare", 8443, 0, "https://www.test"},
        {"/evil", 0, 0, "https://evil.test/"},
        {"/suffix", 0, 0, "https://www.test.evil.test/"},
        {"/userinfo", 0, 0, "https://www.test@evil.test/"},
        {"/otherport", 0, 0, "https://www.test:8443/"},
        {"/otherport", 8443, 1, "https://www.test:8443/"},
        {"/otherport", 844, 0, "https://www.test:8443/"},
        {"/tohttp", 0, 0, "http://www.test/"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct target_buf b;
        struct lbw_http_target *t = target(&b, "http", G.redirects, cases[i].path);
        t->expect_https_redirect = 1;
        t->https_port = cases[i].https_port;
        struct lbw_http_result r = probe_one(t);
        if (r.success != cases[i].ok || r.redirect_ok != cases[i].ok)
            fail_msg("%s (port %u): success %d redirect_ok %d (%s)", cases[i].path,
                     cases[i].https_port, r.success,
                     r.redirect_ok, r.error);
        assert_string_equal(r.location, cases[i].location);
        assert_int_equal(r.status_ok, 1);
        if (!cases[i].ok)
            assert_contains(r.error, cases[i].location);
    }
}

static void redirect_missing_fails(void **state)
{
    (void)state;
    struct target_buf b;
    struct lbw_http_target *t = target(&b, "http", G.plain, "/");
    t->expect_https_redirect = 1;
    struct lbw_http_result r = probe_one(t);
    assert_int_equal(r.success, 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.status_ok, 0);
    assert_int_equal(r.redirect_ok, 0);
    assert_string_equal(r.location, "");
    assert_string_equal(r.error, "status 200, expected a redirect to https");
}

static void start_rejects_bad_urls(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct lbw_http_prober *p;
    char err[128];
    struct outcome o = {0};
    const char *bad[] = {"ftp://www.test/", "www.test/ok", "", "https://"};
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(lbw_http_prober_new(&p, &loop, err, sizeof(err)), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct lbw_http_target t = {.url = bad[i], .timeout_ms = 1000};
        assert_int_equal(lbw_http_probe_start(p, &t, on_result, &o), -1);
    }
    struct lbw_http_target none = {.url = NULL};
    assert_int_equal(lbw_http_probe_start(p, &none, on_result, &o), -1);
    lbw_http_prober_close(p);
    loop_finish(&loop);
    assert_int_equal(o.calls, 0);
}

/* --- concurrency and shutdown ------------------------------------------------------------- */

#define MANY 50

struct many {
    int calls;
    int successes;
};

static void on_many(void *arg, const struct lbw_http_result *r)
{
    struct many *m = arg;
    m->calls++;
    m->successes += r->success && r->content_length == (int64_t)strlen(OK_BODY);
}

static void many_probes_on_one_loop(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct lbw_http_prober *p;
    char err[128];
    struct target_buf b;
    struct many m = {0};
    struct lbw_http_target *t = target(&b, "https", G.https, "/ok");
    t->expect_body = "all good";
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(lbw_http_prober_new(&p, &loop, err, sizeof(err)), 0);
    for (int i = 0; i < MANY; i++)
        assert_int_equal(lbw_http_probe_start(p, t, on_many, &m), 0);
    run_until(&loop, &m.calls, MANY, RUN_LIMIT_MS);
    lbw_http_prober_close(p);
    loop_finish(&loop);
    assert_int_equal(m.calls, MANY);
    assert_int_equal(m.successes, MANY);
}

/* Closing with probes in flight (connected, waiting) calls nothing and leaks nothing. */
static void prober_close_with_probes_in_flight(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct lbw_http_prober *p;
    struct silent s;
    char err[128];
    struct target_buf b;
    struct outcome o = {0};
    assert_int_equal(uv_loop_init(&loop), 0);
    silent_start(&loop, &s);
    assert_int_equal(lbw_http_prober_new(&p, &loop, err, sizeof(err)), 0);
    struct lbw_http_target *t = target(&b, "http", s.port, "/");
    for (int i = 0; i < 3; i++)
        assert_int_equal(lbw_http_probe_start(p, t, on_result, &o), 0);
    run_until(&loop, &s.nclients, 3, RUN_LIMIT_MS);
    assert_int_equal(s.nclients, 3);
    lbw_http_prober_close(p);
    silent_stop(&s);
    loop_finish(&loop);
    assert_int_equal(o.calls, 0);
}

/* --- curluv directly ---------------------------------------------------------------------- */

struct done {
    int calls;
    CURLcode result;
    struct lbw_curluv *close_on_done; /* closes this from the callback when set */
};

static void on_done(void *arg, CURL *easy, CURLcode result)
{
    struct done *d = arg;
    long status = 0;
    d->calls++;
    d->result = result;
    assert_int_equal(curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status), CURLE_OK);
    if (result == CURLE_OK)
        assert_int_equal(status, 200);
    if (d->close_on_done)
        lbw_curluv_close(d->close_on_done);
}

static size_t discard(char *data, size_t size, size_t n, void *arg)
{
    (void)data;
    (void)arg;
    return size * n;
}

static CURL *plain_get(uint16_t port)
{
    char url[64];
    CURL *e = curl_easy_init();
    assert_non_null(e);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/", port);
    assert_int_equal(curl_easy_setopt(e, CURLOPT_URL, url), CURLE_OK);
    assert_int_equal(curl_easy_setopt(e, CURLOPT_NOPROXY, "*"), CURLE_OK);
    assert_int_equal(curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L), CURLE_OK);
    assert_int_equal(curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard), CURLE_OK);
    return e;
}

static void curluv_submit_cancel_and_reuse(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct lbw_curluv *c;
    struct silent s;
    char err[128];
    struct done stuck = {0}, ok = {0}, again = {0};
    assert_int_equal(uv_loop_init(&loop), 0);
    silent_start(&loop, &s);
    assert_int_equal(lbw_curluv_new(&c, &loop, err, sizeof(err)), 0);
    CURL *hang = plain_get(s.port), *e = plain_get(G.plain);
    assert_int_equal(lbw_curluv_submit(c, hang, on_done, &stuck), 0);
    assert_int_equal(lbw_curluv_submit(c, e, on_done, &ok), 0);
    assert_int_equal(lbw_curluv_submit(c, e, on_done, &ok), -1); /* already in flight */
    assert_int_equal(lbw_curluv_active(c), 2);
    run_until(&loop, &ok.calls, 1, RUN_LIMIT_MS);
    assert_int_equal(ok.calls, 1);
    assert_int_equal(ok.result, CURLE_OK);
    assert_int_equal(lbw_curluv_active(c), 1);

    lbw_curluv_cancel(c, hang);
    lbw_curluv_cancel(c, hang); /* no longer in flight: nothing happens */
    assert_int_equal(lbw_curluv_active(c), 0);

    /* The completed handle is the caller's again and can run once more. */
    assert_int_equal(lbw_curluv_submit(c, e, on_done, &again), 0);
    run_until(&loop, &again.calls, 1, RUN_LIMIT_MS);
    assert_int_equal(again.calls, 1);
    assert_int_equal(again.result, CURLE_OK);

    lbw_curluv_close(c);
    silent_stop(&s);
    loop_finish(&loop);
    assert_int_equal(stuck.calls, 0);
    curl_easy_cleanup(hang);
    curl_easy_cleanup(e);
}

/* A done callback may close the multi; transfers still in flight then report nothing. */
static void curluv_close_from_callback(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct lbw_curluv *c;
    struct silent s;
    char err[128];
    assert_int_equal(uv_loop_init(&loop), 0);
    silent_start(&loop, &s);
    assert_int_equal(lbw_curluv_new(&c, &loop, err, sizeof(err)), 0);
    struct done first = {.close_on_done = c}, stuck = {0};
    CURL *e = plain_get(G.plain), *hang[3];
    for (int i = 0; i < 3; i++) {
        hang[i] = plain_get(s.port);
        assert_int_equal(lbw_curluv_submit(c, hang[i], on_done, &stuck), 0);
    }
    assert_int_equal(lbw_curluv_submit(c, e, on_done, &first), 0);
    run_until(&loop, &first.calls, 1, RUN_LIMIT_MS);
    assert_int_equal(first.calls, 1);
    silent_stop(&s);
    loop_finish(&loop);
    assert_int_equal(stuck.calls, 0);
    for (int i = 0; i < 3; i++)
        curl_easy_cleanup(hang[i]);
    curl_easy_cleanup(e);
}

/* --- samples ------------------------------------------------------------------------------ */

struct samples {
    int n;
    char key[24][LBW_KEY_MAX];
    double value[24];
};

static void collect(void *arg, const char *key, int64_t ts, double v)
{
    struct samples *s = arg;
    assert_int_equal(ts, 1700000000000);
    assert_true(s->n < 24);
    snprintf(s->key[s->n], sizeof(s->key[s->n]), "%s", key);
    s->value[s->n++] = v;
}

static double sample_of(const struct samples *s, const char *key)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->key[i], key) == 0)
            return s->value[i];
    fail_msg("no sample %s", key);
    return -1;
}

static int has_sample(const struct samples *s, const char *prefix)
{
    for (int i = 0; i < s->n; i++)
        if (strncmp(s->key[i], prefix, strlen(prefix)) == 0)
            return 1;
    return 0;
}

#define BASE "probe=\"http\",target=\"www\",vantage=\"n1\""
#define NEAR(a, b) assert_true((a) > (b)-1e-9 && (a) < (b) + 1e-9)

static void emit_describes_result(void **state)
{
    (void)state;
    struct lbw_label base[] = {{"probe", "http"}, {"target", "www"}, {"vantage", "n1"}};
    struct samples s = {0};
    struct lbw_emitter e = {collect, &s, base, 3, 1700000000000};
    struct lbw_http_result r = {.success = 1, .status = 200, .is_tls = 1,
                                .connect_seconds = 0.010, .tls_seconds = 0.020,
                                .first_byte_seconds = 0.050, .total_seconds = 0.080,
                                .content_length = 1234, .status_ok = 1, .body_ok = 1,
                                .body_checked = 1};
    lbw_http_result_emit(&r, &e);
    assert_int_equal(s.n, 11);
    NEAR(sample_of(&s, "probe_success{" BASE "}"), 1);
    NEAR(sample_of(&s, "probe_duration_seconds{" BASE "}"), 0.080);
    NEAR(sample_of(&s, "probe_http_status_code{" BASE "}"), 200);
    NEAR(sample_of(&s, "probe_http_duration_seconds{phase=\"connect\"," BASE "}"), 0.010);
    NEAR(sample_of(&s, "probe_http_duration_seconds{phase=\"tls\"," BASE "}"), 0.020);
    NEAR(sample_of(&s, "probe_http_duration_seconds{phase=\"processing\"," BASE "}"), 0.020);
    NEAR(sample_of(&s, "probe_http_duration_seconds{phase=\"transfer\"," BASE "}"), 0.030);
    NEAR(sample_of(&s, "lbwatch_http_first_byte_seconds{" BASE "}"), 0.050);
    NEAR(sample_of(&s, "probe_http_ssl{" BASE "}"), 1);
    NEAR(sample_of(&s, "probe_http_content_length{" BASE "}"), 1234);
    NEAR(sample_of(&s, "lbwatch_http_body_match{" BASE "}"), 1);
    assert_false(has_sample(&s, "lbwatch_http_redirect_https"));

    /* A plain-HTTP redirect check that got no response at all. */
    struct lbw_http_result f = {.status = 0, .connect_seconds = 0.004, .total_seconds = 1.0,
                                .redirect_checked = 1, .body_ok = 1};
    s.n = 0;
    lbw_http_result_emit(&f, &e);
    assert_int_equal(s.n, 11);
    NEAR(sample_of(&s, "probe_success{" BASE "}"), 0);
    NEAR(sample_of(&s, "probe_http_ssl{" BASE "}"), 0);
    NEAR(sample_of(&s, "probe_http_duration_seconds{phase=\"processing\"," BASE "}"), 0);
    NEAR(sample_of(&s, "probe_http_duration_seconds{phase=\"transfer\"," BASE "}"), 0);
    NEAR(sample_of(&s, "lbwatch_http_redirect_https{" BASE "}"), 0);
    assert_false(has_sample(&s, "lbwatch_http_body_match"));
}

/* The phases of a real probe add up to its duration. */
static void emit_phases_of_real_probe_add_up(void **state)
{
    (void)state;
    struct lbw_label base[] = {{"probe", "http"}, {"target", "www"}, {"vantage", "n1"}};
    struct samples s = {0};
    struct lbw_emitter e = {collect, &s, base, 3, 1700000000000};
    struct target_buf b;
    struct lbw_http_result r = probe_one(target(&b, "https", G.https, "/ok"));
    assert_int_equal(r.success, 1);
    lbw_http_result_emit(&r, &e);
    double sum = 0;
    const char *phases[] = {"connect", "tls", "processing", "transfer"};
    for (int i = 0; i < 4; i++) {
        char key[LBW_KEY_MAX];
        snprintf(key, sizeof(key), "probe_http_duration_seconds{phase=\"%s\"," BASE "}",
                 phases[i]);
        double v = sample_of(&s, key);
        assert_true(v >= 0);
        sum += v;
    }
    assert_true(sum > r.total_seconds - 1e-6 && sum < r.total_seconds + 1e-6);
    NEAR(sample_of(&s, "probe_http_status_code{" BASE "}"), 200);
    NEAR(sample_of(&s, "probe_http_content_length{" BASE "}"), (double)strlen(OK_BODY));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(https_ok_measures_phases),
        cmocka_unit_test(https_missing_body_fails),
        cmocka_unit_test(https_503_fails),
        cmocka_unit_test(https_expected_404_succeeds),
        cmocka_unit_test(https_sends_user_agent),
        cmocka_unit_test(https_large_body_is_bounded),
        cmocka_unit_test(https_wrong_ca_fails_verification),
        cmocka_unit_test(https_wrong_host_fails_verification),
        cmocka_unit_test(https_to_tls11_only_fails),
        cmocka_unit_test(https_to_plain_port_fails),
        cmocka_unit_test(connection_refused_fails),
        cmocka_unit_test(silent_peer_times_out),
        cmocka_unit_test(plain_http_ok),
        cmocka_unit_test(redirect_to_https_same_host_succeeds),
        cmocka_unit_test(redirect_variants),
        cmocka_unit_test(redirect_missing_fails),
        cmocka_unit_test(start_rejects_bad_urls),
        cmocka_unit_test(many_probes_on_one_loop),
        cmocka_unit_test(prober_close_with_probes_in_flight),
        cmocka_unit_test(curluv_submit_cancel_and_reuse),
        cmocka_unit_test(curluv_close_from_callback),
        cmocka_unit_test(emit_describes_result),
        cmocka_unit_test(emit_phases_of_real_probe_add_up),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
