/* test_scrape.c - fetching texts (probes/fetch) and scrape runs (probes/scrape; the HAProxy,
 * nginx and Prometheus kinds of probes/haproxykind, nginxkind and promkind) against servers on
 * the same loop: a fake HAProxy stats socket on a unix path and on TCP that answers one
 * command per connection from the reference outputs in tests/fixtures/haproxy/, a raw HTTP
 * server that checks basic authentication, one that serves a page the test sets (a
 * stub_status page, an exposition), a server that never answers, and one that answers too
 * much. Every loop run is bounded by a guard timer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include <uv.h>

#include "probes/fetch.h"
#include "probes/haproxykind.h"
#include "probes/nginxkind.h"
#include "probes/promkind.h"
#include "probes/scrape.h"
#include "tests/support/testutil.h"

#define RUN_LIMIT_MS 10000

static struct {
    char dir[256];
    char sock[300];
    char *info, *stat, *cert;
    size_t info_len, stat_len, cert_len;
    const char *page;           /* PAGE: the body served */
    int page_auth;              /* PAGE: 401 without admin:s3cret */
    const char *locked_cmd;     /* this command finds the certificates locked ... */
    int locked_times;           /* ... this many more times */
} G;

/* --- a fake server: one request per connection --------------------------------------------- */

enum mode { HAPROXY, SILENT, BIG, HTTP, PAGE };

struct fake {
    uv_loop_t *loop;
    union {
        uv_handle_t h;
        uv_stream_t s;
        uv_pipe_t pipe;
        uv_tcp_t tcp;
    } listen;
    int is_tcp;
    enum mode mode;
    size_t big;                 /* BIG: bytes answered */
    struct conn *conns;
    int requests;
    char last[512];             /* the last request, cut */
};

struct conn {
    union {
        uv_handle_t h;
        uv_stream_t s;
        uv_pipe_t pipe;
        uv_tcp_t tcp;
    } h;
    struct conn *next;
    struct fake *fk;
    char req[4096];
    size_t len;
    uv_write_t w;
    char *out;
    int answered, closed;
};

static void on_conn_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    free(c->out);
    c->out = NULL;
    c->closed = 2;
}

static void conn_close(struct conn *c)
{
    if (!c->closed) {
        c->closed = 1;
        uv_close(&c->h.h, on_conn_closed);
    }
}

static void on_written(uv_write_t *w, int status)
{
    (void)status;
    conn_close(w->data);
}

static char *cert_detail(const char *file)
{
    char *out = malloc(G.cert_len + 256);
    const char *nl = strchr(G.cert, '\n'); /* replace the Filename line */
    sprintf(out, "Filename: %s%s", file, nl);
    return out;
}

static char *haproxy_answer(const char *req)
{
    if (G.locked_cmd && strcmp(req, G.locked_cmd) == 0 && G.locked_times > 0) {
        G.locked_times--;
        return strdup("Can't show!\nOperations on certificates are currently locked!\n\n");
    }
    if (strcmp(req, "show info\n") == 0)
        return strdup(G.info);
    if (strcmp(req, "show stat\n") == 0)
        return strdup(G.stat);
    if (strcmp(req, "show ssl cert\n") == 0)
        return strdup("# transaction\n*/etc/new.pem\n# filename\n/etc/haproxy/a b.pem\n"
                      "/etc/haproxy/c.pem\n\n");
    if (strcmp(req, "show ssl cert /etc/haproxy/a\\ b.pem\n") == 0)
        return cert_detail("/etc/haproxy/a b.pem");
    if (strcmp(req, "show ssl cert /etc/haproxy/c.pem\n") == 0)
        return cert_detail("/etc/haproxy/c.pem");
    return strdup("Unknown command. Please enter one of the following commands only :\n");
}

static char *http_answer(const char *req)
{
    char *out = malloc(512);
    /* admin:s3cret */
    if (strstr(req, "\r\nAuthorization: Basic YWRtaW46czNjcmV0\r\n"))
        sprintf(out, "HTTP/1.1 200 OK\r\nContent-Length: 30\r\nConnection: close\r\n\r\n"
                     "# pxname,svname,\nfe,FRONTEND,\n");
    else
        sprintf(out, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    return out;
}

static char *page_answer(const char *req)
{
    size_t len = strlen(G.page);
    char *out = malloc(len + 256);
    if (G.page_auth && !strstr(req, "\r\nAuthorization: Basic YWRtaW46czNjcmV0\r\n"))
        sprintf(out, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    else
        sprintf(out, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s", len, G.page);
    return out;
}

static void answer(struct conn *c)
{
    struct fake *fk = c->fk;
    c->answered = 1;
    fk->requests++;
    snprintf(fk->last, sizeof(fk->last), "%.500s", c->req);
    if (fk->mode == SILENT)
        return;
    if (fk->mode == BIG) {
        c->out = malloc(fk->big + 1);
        memset(c->out, 'x', fk->big);
        c->out[fk->big] = '\0';
    } else {
        c->out = fk->mode == HTTP   ? http_answer(c->req)
                 : fk->mode == PAGE ? page_answer(c->req)
                                    : haproxy_answer(c->req);
    }
    uv_buf_t b = uv_buf_init(c->out, (unsigned)strlen(c->out));
    c->w.data = c;
    if (uv_write(&c->w, &c->h.s, &b, 1, on_written) != 0)
        conn_close(c);
}

static void on_conn_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    struct conn *c = h->data;
    (void)size;
    *buf = uv_buf_init(c->req + c->len, (unsigned)(sizeof(c->req) - 1 - c->len));
}

static void on_conn_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    (void)buf;
    if (n < 0) {
        conn_close(c);
        return;
    }
    c->len += (size_t)n;
    c->req[c->len] = '\0';
    const char *end = c->fk->mode == HTTP || c->fk->mode == PAGE ? "\r\n\r\n" : "\n";
    if (!c->answered && strstr(c->req, end))
        answer(c);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct fake *fk = server->data;
    struct conn *c = calloc(1, sizeof(*c));
    assert_int_equal(status, 0);
    c->fk = fk;
    if (fk->is_tcp)
        uv_tcp_init(fk->loop, &c->h.tcp);
    else
        uv_pipe_init(fk->loop, &c->h.pipe, 0);
    c->h.h.data = c;
    c->next = fk->conns;
    fk->conns = c;
    assert_int_equal(uv_accept(server, &c->h.s), 0);
    uv_read_start(&c->h.s, on_conn_alloc, on_conn_read);
}

static void fake_listen_unix(struct fake *fk, uv_loop_t *loop, const char *path, enum mode m)
{
    memset(fk, 0, sizeof(*fk));
    fk->loop = loop;
    fk->mode = m;
    unlink(path);
    assert_int_equal(uv_pipe_init(loop, &fk->listen.pipe, 0), 0);
    assert_int_equal(uv_pipe_bind(&fk->listen.pipe, path), 0);
    fk->listen.h.data = fk;
    assert_int_equal(uv_listen(&fk->listen.s, 16, on_connection), 0);
}

static uint16_t fake_listen_tcp(struct fake *fk, uv_loop_t *loop, enum mode m)
{
    struct sockaddr_in a;
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    memset(fk, 0, sizeof(*fk));
    fk->loop = loop;
    fk->mode = m;
    fk->is_tcp = 1;
    uv_ip4_addr("127.0.0.1", 0, &a);
    assert_int_equal(uv_tcp_init(loop, &fk->listen.tcp), 0);
    assert_int_equal(uv_tcp_bind(&fk->listen.tcp, (struct sockaddr *)&a, 0), 0);
    fk->listen.h.data = fk;
    assert_int_equal(uv_listen(&fk->listen.s, 16, on_connection), 0);
    uv_tcp_getsockname(&fk->listen.tcp, (struct sockaddr *)&bound, &len);
    return ntohs(((struct sockaddr_in *)&bound)->sin_port);
}

static void fake_close(struct fake *fk)
{
    for (struct conn *c = fk->conns; c; c = c->next)
        conn_close(c);
    uv_close(&fk->listen.h, NULL);
    while (fk->conns) {
        struct conn *c = fk->conns;
        while (c->closed != 2)
            uv_run(fk->loop, UV_RUN_NOWAIT);
        fk->conns = c->next;
        free(c);
    }
    uv_run(fk->loop, UV_RUN_NOWAIT);
}

/* --- loop helpers ---------------------------------------------------------------------------- */

struct guard {
    uv_timer_t timer;
    int expired;
};

static void on_guard(uv_timer_t *t)
{
    ((struct guard *)t->data)->expired = 1;
}

static void run_until(uv_loop_t *loop, const int *count, int want)
{
    struct guard g = {.expired = 0};
    assert_int_equal(uv_timer_init(loop, &g.timer), 0);
    g.timer.data = &g;
    assert_int_equal(uv_timer_start(&g.timer, on_guard, RUN_LIMIT_MS, 0), 0);
    while (*count < want && !g.expired && uv_run(loop, UV_RUN_ONCE) != 0)
        ;
    uv_close((uv_handle_t *)&g.timer, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    assert_false(g.expired);
}

/* Runs the close callbacks due (the fake servers keep the loop alive, so not to the end). */
static void settle(uv_loop_t *loop)
{
    for (int i = 0; i < 4; i++)
        uv_run(loop, UV_RUN_NOWAIT);
}

/* --- fetches --------------------------------------------------------------------------------- */

struct got {
    int n;
    int ok;
    long status;
    char error[200];
    char *body;
    size_t len;
};

static void on_fetch(void *arg, const struct lbw_fetch_result *r)
{
    struct got *g = arg;
    g->n++;
    g->ok = r->ok;
    g->status = r->http_status;
    snprintf(g->error, sizeof(g->error), "%s", r->error);
    free(g->body);
    g->body = r->ok ? strndup(r->body, r->len) : NULL;
    g->len = r->len;
    if (r->ok)
        assert_int_equal(r->body[r->len], '\0');
}

static void fetch_once(uv_loop_t *loop, const struct lbw_fetch_req *req, struct got *g)
{
    struct lbw_fetcher *f;
    char err[160];
    assert_int_equal(lbw_fetcher_new(&f, loop, err, sizeof(err)), 0);
    free(g->body);
    memset(g, 0, sizeof(*g));
    assert_int_equal(lbw_fetch_start(f, req, on_fetch, g), 0);
    assert_int_equal(lbw_fetcher_active(f), 1);
    run_until(loop, &g->n, 1);
    assert_int_equal(g->n, 1);
    assert_int_equal(lbw_fetcher_active(f), 0);
    lbw_fetcher_close(f);
    settle(loop);
}

static void fetch_unix_and_tcp(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct fake fk, ft;
    struct got g = {0};
    uv_loop_init(&loop);
    fake_listen_unix(&fk, &loop, G.sock, HAPROXY);
    struct lbw_fetch_req req = {.via = LBW_FETCH_UNIX, .path = G.sock, .send = "show info\n",
                                .timeout_ms = 5000};
    fetch_once(&loop, &req, &g);
    assert_true(g.ok);
    assert_string_equal(g.body, G.info);
    assert_string_equal(fk.last, "show info\n");

    uint16_t port = fake_listen_tcp(&ft, &loop, HAPROXY);
    req = (struct lbw_fetch_req){.via = LBW_FETCH_TCP, .ip = "127.0.0.1", .port = port,
                                 .send = "show stat\n"};
    fetch_once(&loop, &req, &g);
    assert_true(g.ok);
    assert_int_equal(g.len, G.stat_len);
    assert_memory_equal(g.body, G.stat, G.stat_len);
    fake_close(&fk);
    fake_close(&ft);
    free(g.body);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void fetch_failures(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct fake fk;
    struct got g = {0};
    uv_loop_init(&loop);
    char nobody[320];
    snprintf(nobody, sizeof(nobody), "%s/nobody.sock", G.dir);
    struct lbw_fetch_req req = {.via = LBW_FETCH_UNIX, .path = nobody, .send = "show info\n"};
    fetch_once(&loop, &req, &g);
    assert_false(g.ok);
    assert_non_null(strstr(g.error, "connect: no such file or directory"));

    req.via = LBW_FETCH_TCP;
    req.ip = "127.0.0.1";
    req.port = tu_free_port();
    fetch_once(&loop, &req, &g);
    assert_non_null(strstr(g.error, "connect: connection refused"));

    fake_listen_unix(&fk, &loop, G.sock, SILENT);
    req = (struct lbw_fetch_req){.via = LBW_FETCH_UNIX, .path = G.sock, .send = "show info\n",
                                 .timeout_ms = 200};
    fetch_once(&loop, &req, &g);
    assert_false(g.ok);
    assert_string_equal(g.error, "timeout after 200 ms");
    assert_string_equal(fk.last, "show info\n");
    fake_close(&fk);

    /* exactly the cap is fine, one byte more is not */
    fake_listen_unix(&fk, &loop, G.sock, BIG);
    fk.big = 100000;
    req = (struct lbw_fetch_req){.via = LBW_FETCH_UNIX, .path = G.sock, .send = "x\n",
                                 .max_bytes = 100000};
    fetch_once(&loop, &req, &g);
    assert_true(g.ok);
    assert_int_equal(g.len, 100000);
    req.max_bytes = 99999;
    fetch_once(&loop, &req, &g);
    assert_false(g.ok);
    assert_string_equal(g.error, "answer longer than 99999 bytes");
    fake_close(&fk);

    /* requests that cannot start */
    struct lbw_fetcher *f;
    char err[160], longpath[200];
    memset(longpath, 'p', sizeof(longpath) - 1);
    longpath[sizeof(longpath) - 1] = '\0';
    assert_int_equal(lbw_fetcher_new(&f, &loop, err, sizeof(err)), 0);
    struct lbw_fetch_req bad[] = {
        {.via = LBW_FETCH_UNIX, .path = longpath},
        {.via = LBW_FETCH_UNIX},
        {.via = LBW_FETCH_TCP, .ip = "localhost", .port = 80},
        {.via = LBW_FETCH_HTTP, .url = "ftp://x/"},
        {.via = LBW_FETCH_HTTP, .url = "http://x/", .username = "u"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(lbw_fetch_start(f, &bad[i], on_fetch, &g), -1);
    lbw_fetcher_close(f);
    uv_run(&loop, UV_RUN_DEFAULT);
    free(g.body);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void fetch_http_basic_auth(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct fake fk;
    struct got g = {0};
    char url[128];
    uv_loop_init(&loop);
    uint16_t port = fake_listen_tcp(&fk, &loop, HTTP);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/stats;csv", port);
    struct lbw_fetch_req req = {.via = LBW_FETCH_HTTP, .url = url, .username = "admin",
                                .password = "s3cret"};
    fetch_once(&loop, &req, &g);
    assert_true(g.ok);
    assert_int_equal(g.status, 200);
    assert_string_equal(g.body, "# pxname,svname,\nfe,FRONTEND,\n");
    assert_non_null(strstr(fk.last, "GET /stats;csv HTTP/1.1\r\n"));
    req.password = "guess";
    fetch_once(&loop, &req, &g);
    assert_false(g.ok);
    assert_int_equal(g.status, 401);
    assert_string_equal(g.error, "HTTP status 401");
    req.username = req.password = NULL;
    fetch_once(&loop, &req, &g);
    assert_string_equal(g.error, "HTTP status 401");
    assert_null(strstr(fk.last, "Authorization"));
    fake_close(&fk);
    free(g.body);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* A fetcher closed with fetches in flight calls nothing and leaks nothing (ASan checks). */
static void fetcher_close_in_flight(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct fake fk, fh;
    struct got g = {0};
    struct lbw_fetcher *f;
    char err[160], url[128];
    uv_loop_init(&loop);
    fake_listen_unix(&fk, &loop, G.sock, SILENT);
    uint16_t port = fake_listen_tcp(&fh, &loop, SILENT);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/", port);
    assert_int_equal(lbw_fetcher_new(&f, &loop, err, sizeof(err)), 0);
    struct lbw_fetch_req r1 = {.via = LBW_FETCH_UNIX, .path = G.sock, .send = "show info\n"};
    struct lbw_fetch_req r2 = {.via = LBW_FETCH_HTTP, .url = url};
    assert_int_equal(lbw_fetch_start(f, &r1, on_fetch, &g), 0);
    assert_int_equal(lbw_fetch_start(f, &r2, on_fetch, &g), 0);
    int two = 0;
    while (fk.requests + fh.requests < 2 && two++ < 1000)
        uv_run(&loop, UV_RUN_ONCE);
    lbw_fetcher_close(f);
    fake_close(&fk);
    fake_close(&fh);
    assert_int_equal(g.n, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* --- scrapes --------------------------------------------------------------------------------- */

struct sample {
    char key[LBW_KEY_MAX];
    double v;
};

static struct {
    const char *probe;          /* the base probe label: the kind's name */
    int64_t ts;                 /* the emitter's timestamp; 0: 42 */
    int n;
    int success;
    char error[240];
    unsigned requests;
    struct sample s[2000];
    size_t ns;
} R;

static void collect(void *arg, const char *key, int64_t ts, double v)
{
    (void)arg;
    assert_int_equal(ts, R.ts ? R.ts : 42);
    assert_true(R.ns < sizeof(R.s) / sizeof(R.s[0]));
    snprintf(R.s[R.ns].key, LBW_KEY_MAX, "%s", key);
    R.s[R.ns++].v = v;
}

static double value(const char *key)
{
    for (size_t i = 0; i < R.ns; i++)
        if (strcmp(R.s[i].key, key) == 0)
            return R.s[i].v;
    fail_msg("no sample %s", key);
    return NAN;
}

static size_t count(const char *key)
{
    size_t n = 0;
    for (size_t i = 0; i < R.ns; i++)
        n += strcmp(R.s[i].key, key) == 0;
    return n;
}

static int has(const char *prefix)
{
    for (size_t i = 0; i < R.ns; i++)
        if (strncmp(R.s[i].key, prefix, strlen(prefix)) == 0)
            return 1;
    return 0;
}

static void on_scraped(void *arg, const struct lbw_scrape_result *r)
{
    const struct lbw_label base[] = {{"probe", R.probe}, {"target", "lb"}, {"vantage", "n1"}};
    struct lbw_emitter e = {collect, NULL, base, 3, R.ts ? R.ts : 42};
    (void)arg;
    R.n++;
    R.success = r->success;
    R.requests = r->requests;
    snprintf(R.error, sizeof(R.error), "%s", r->error);
    R.ns = 0;
    assert_int_equal(lbw_scrape_result_emit(r, &e), 0);
}

static void scrape_kind_once(uv_loop_t *loop, const struct lbw_scrape_kind *kind,
                             const struct lbw_scrape_source *src, uint64_t timeout)
{
    struct lbw_scraper *s;
    char err[160];
    assert_int_equal(lbw_scraper_new(&s, loop, err, sizeof(err)), 0);
    R.n = 0;
    R.probe = kind->name;
    assert_int_equal(lbw_scrape_start(s, kind, src, timeout, on_scraped, NULL), 0);
    run_until(loop, &R.n, 1);
    assert_int_equal(lbw_scraper_active(s), 0);
    lbw_scraper_close(s);
    settle(loop);
}

static void scrape_once(uv_loop_t *loop, const struct lbw_scrape_source *src, uint64_t timeout)
{
    scrape_kind_once(loop, &lbw_haproxy_kind, src, timeout);
}

#define BASE "probe=\"haproxy\",target=\"lb\",vantage=\"n1\""

static void haproxy_over_the_socket(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct fake fk;
    uv_loop_init(&loop);
    fake_listen_unix(&fk, &loop, G.sock, HAPROXY);
    struct lbw_scrape_source src = {.via = LBW_FETCH_UNIX, .path = G.sock};
    scrape_once(&loop, &src, 5000);
    assert_true(R.success);
    assert_int_equal(R.requests, 5); /* info, stat, the list, two certificates */
    assert_int_equal(fk.requests, 5);
    assert_true(value("probe_success{" BASE "}") == 1);
    assert_true(value("haproxy_process_max_connections{" BASE "}") == 9984);
    assert_true(value("haproxy_server_status{probe=\"haproxy\",proxy=\"be_app\",server=\"web2\","
                      "state=\"DOWN\",target=\"lb\",vantage=\"n1\"}") == 1);
    assert_true(value("lbwatch_haproxy_ssl_certs{" BASE "}") == 2);
    assert_true(value("lbwatch_haproxy_ssl_cert_not_after_seconds{cert=\"/etc/haproxy/a b.pem\","
                      BASE "}") == 1797968841);
    assert_true(value("lbwatch_haproxy_ssl_cert_not_after_seconds{cert=\"/etc/haproxy/c.pem\","
                      BASE "}") == 1797968841);

    /* without certificates: info and stat only */
    struct lbw_haproxy_options no_certs = {.certificates = 0};
    src.options = &no_certs;
    scrape_once(&loop, &src, 5000);
    assert_true(R.success);
    assert_int_equal(R.requests, 2);
    assert_false(has("lbwatch_haproxy_ssl_cert"));
    assert_true(has("haproxy_frontend_current_sessions{"));
    fake_close(&fk);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void haproxy_failures(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct fake fk;
    char nobody[320];
    uv_loop_init(&loop);
    snprintf(nobody, sizeof(nobody), "%s/nobody.sock", G.dir);
    struct lbw_scrape_source src = {.via = LBW_FETCH_UNIX, .path = nobody};
    scrape_once(&loop, &src, 5000);
    assert_false(R.success);
    assert_string_equal(R.error, "show info: connect: no such file or directory");
    assert_int_equal(R.ns, 2); /* probe_success 0, probe_duration_seconds: nothing else */
    assert_true(value("probe_success{" BASE "}") == 0);

    /* the whole run shares one timeout */
    fake_listen_unix(&fk, &loop, G.sock, SILENT);
    src.path = G.sock;
    scrape_once(&loop, &src, 300);
    assert_string_equal(R.error, "show info: timeout after 300 ms");
    fake_close(&fk);

    /* an answer that is not what was asked for */
    src = (struct lbw_scrape_source){.via = LBW_FETCH_TCP, .ip = "127.0.0.1",
                                     .port = fake_listen_tcp(&fk, &loop, BIG)};
    fk.big = 10;
    scrape_once(&loop, &src, 5000);
    assert_false(R.success);
    assert_non_null(strstr(R.error, "show info: line 1: not \"Name: value\""));
    fake_close(&fk);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void haproxy_over_http(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct fake fk;
    char url[128];
    uv_loop_init(&loop);
    uint16_t port = fake_listen_tcp(&fk, &loop, HTTP);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/stats;csv", port);
    struct lbw_scrape_source src = {.via = LBW_FETCH_HTTP, .url = url, .username = "admin",
                                    .password = "s3cret"};
    scrape_once(&loop, &src, 5000);
    assert_true(R.success);
    assert_int_equal(R.requests, 1);
    src.password = "guess";
    scrape_once(&loop, &src, 5000);
    assert_false(R.success);
    assert_string_equal(R.error, "HTTP status 401");
    fake_close(&fk);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* Another CLI session (another node) holds the certificates' lock: the command is sent again,
 * and after three tries the run goes on without that answer instead of failing. */
static void haproxy_certificates_locked(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct fake fk;
    uv_loop_init(&loop);
    fake_listen_unix(&fk, &loop, G.sock, HAPROXY);
    struct lbw_scrape_source src = {.via = LBW_FETCH_UNIX, .path = G.sock};
    G.locked_cmd = "show ssl cert /etc/haproxy/c.pem\n";
    G.locked_times = 2;     /* the third try gets the dates */
    scrape_once(&loop, &src, 5000);
    assert_true(R.success);
    assert_int_equal(R.requests, 7);
    assert_true(value("lbwatch_haproxy_ssl_cert_not_after_seconds{cert=\"/etc/haproxy/c.pem\","
                      BASE "}") == 1797968841);
    G.locked_times = 3;     /* never: that file's dates are left out, the rest is there */
    scrape_once(&loop, &src, 5000);
    assert_true(R.success);
    assert_int_equal(R.requests, 7);
    assert_false(has("lbwatch_haproxy_ssl_cert_not_after_seconds{cert=\"/etc/haproxy/c.pem\""));
    assert_true(has("lbwatch_haproxy_ssl_cert_not_after_seconds{cert=\"/etc/haproxy/a b.pem\""));
    assert_true(value("lbwatch_haproxy_ssl_certs{" BASE "}") == 2);
    G.locked_cmd = "show ssl cert\n";
    G.locked_times = 3;     /* the list: no certificates this time, statistics all the same */
    scrape_once(&loop, &src, 5000);
    assert_true(R.success);
    assert_int_equal(R.requests, 5);
    assert_false(has("lbwatch_haproxy_ssl_cert"));
    assert_true(has("haproxy_server_status{"));
    assert_int_equal(G.locked_times, 0);
    G.locked_cmd = NULL;
    fake_close(&fk);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* The source's memory carries counters from one run to the next: the kind derives ratios and
 * rates from their increase (probes/haproxyderive.h); without memory nothing is derived. */
static void haproxy_memory_across_runs(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct fake fk;
    char *fixture = G.stat;
    char first[] = "# pxname,svname,type,dreq,hrsp_2xx,hrsp_5xx\n"
                   "fe,FRONTEND,0,10,100,0\nbe,BACKEND,1,0,100,0\n";
    char second[] = "# pxname,svname,type,dreq,hrsp_2xx,hrsp_5xx\n"
                    "fe,FRONTEND,0,30,150,50\nbe,BACKEND,1,0,150,50\n";
    struct lbw_haproxy_options no_certs = {.certificates = 0};
    struct lbw_scrape_source src = {.via = LBW_FETCH_UNIX, .path = G.sock, .options = &no_certs};
    uv_loop_init(&loop);
    fake_listen_unix(&fk, &loop, G.sock, HAPROXY);
    scrape_once(&loop, &src, 5000);
    assert_true(R.success);
    assert_false(has("lbwatch_haproxy_connections_used_ratio"));

    assert_true(lbw_haproxy_kind.memory_size > 0);
    src.memory = calloc(1, lbw_haproxy_kind.memory_size);
    G.stat = first;
    R.ts = 1000;
    scrape_once(&loop, &src, 5000);
    assert_true(value("lbwatch_haproxy_connections_used_ratio{" BASE "}") == 0); /* 0 / 9984 */
    assert_false(has("lbwatch_haproxy_backend_http_5xx_ratio"));
    G.stat = second;
    R.ts = 3000;
    scrape_once(&loop, &src, 5000);
    assert_true(value("lbwatch_haproxy_backend_http_5xx_ratio{probe=\"haproxy\",proxy=\"be\","
                      "target=\"lb\",vantage=\"n1\"}") == 0.5);
    assert_true(value("lbwatch_haproxy_frontend_requests_denied_rate{probe=\"haproxy\","
                      "proxy=\"fe\",target=\"lb\",vantage=\"n1\"}") == 10);
    /* a failed run derives nothing and leaves the memory as it was */
    fake_close(&fk);
    uv_run(&loop, UV_RUN_DEFAULT);
    scrape_once(&loop, &src, 5000);
    assert_false(R.success);
    assert_int_equal(R.ns, 2);
    G.stat = fixture;
    R.ts = 0;
    free(src.memory);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* --- nginx ------------------------------------------------------------------------------------ */

#define NB "probe=\"nginx\",target=\"lb\",vantage=\"n1\""

static void nginx_over_http(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct fake fk;
    char url[128];
    uv_loop_init(&loop);
    uint16_t port = fake_listen_tcp(&fk, &loop, PAGE);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/stub_status", port);
    G.page = "Active connections: 3 \nserver accepts handled requests\n 120 118 456 \n"
             "Reading: 0 Writing: 1 Waiting: 2 \n";
    G.page_auth = 1;
    struct lbw_scrape_source src = {.via = LBW_FETCH_HTTP, .url = url, .username = "admin",
                                    .password = "s3cret"};
    scrape_kind_once(&loop, &lbw_nginx_kind, &src, 5000);
    assert_true(R.success);
    assert_int_equal(R.requests, 1);
    assert_non_null(strstr(fk.last, "GET /stub_status HTTP/1.1\r\n"));
    assert_int_equal(R.ns, 2 + 7);
    assert_true(value("probe_success{" NB "}") == 1);
    assert_true(value("nginx_connections_active{" NB "}") == 3);
    assert_true(value("nginx_connections_accepted{" NB "}") == 120);
    assert_true(value("nginx_connections_handled{" NB "}") == 118);
    assert_true(value("nginx_http_requests_total{" NB "}") == 456);
    assert_true(value("nginx_connections_reading{" NB "}") == 0);
    assert_true(value("nginx_connections_writing{" NB "}") == 1);
    assert_true(value("nginx_connections_waiting{" NB "}") == 2);

    src.username = src.password = NULL;
    scrape_kind_once(&loop, &lbw_nginx_kind, &src, 5000);
    assert_false(R.success);
    assert_string_equal(R.error, "HTTP status 401");
    G.page_auth = 0;
    fake_close(&fk);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* A page that is not a stub_status page fails the run with the parser's reason. */
static void nginx_failures(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct fake fk;
    char url[128];
    uv_loop_init(&loop);
    uint16_t port = fake_listen_tcp(&fk, &loop, PAGE);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/stub_status", port);
    struct lbw_scrape_source src = {.via = LBW_FETCH_HTTP, .url = url};
    G.page = "Active connections: 3 \nserver accepts handled requests\n 120 x 456 \n"
             "Reading: 0 Writing: 1 Waiting: 2 \n";
    scrape_kind_once(&loop, &lbw_nginx_kind, &src, 5000);
    assert_false(R.success);
    assert_string_equal(R.error, "line 3, column 6: expected the handled count, found 'x'");
    assert_int_equal(R.ns, 2);
    G.page = "<html>Welcome to nginx!</html>\n";
    scrape_kind_once(&loop, &lbw_nginx_kind, &src, 5000);
    assert_false(R.success);
    assert_non_null(strstr(R.error, "line 1, column 1: "));
    fake_close(&fk);

    snprintf(url, sizeof(url), "http://127.0.0.1:%u/stub_status", tu_free_port());
    scrape_kind_once(&loop, &lbw_nginx_kind, &src, 5000);
    assert_false(R.success);
    assert_non_null(strstr(R.error, "Couldn't connect to server"));
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* --- prometheus ------------------------------------------------------------------------------- */

#define PB "probe=\"prometheus\",target=\"lb\",vantage=\"n1\""
#define SAMPLES(result) \
    "lbwatch_scrape_samples{probe=\"prometheus\",result=\"" result "\",target=\"lb\"," \
    "vantage=\"n1\"}"

static const char exposition[] =
    "# HELP node_load1 1m load average.\n"
    "# TYPE node_load1 gauge\n"
    "node_load1 0.25\n"
    "# TYPE node_memory_MemTotal_bytes gauge\n"
    "node_memory_MemTotal_bytes 8.0e+09\n"
    "node_memory_MemFree_bytes 1e9\n"
    "node_memory_Active_bytes 5\n"
    "# TYPE rpc_seconds histogram\n"
    "rpc_seconds_bucket{le=\"1\"} 3\n"
    "rpc_seconds_bucket{le=\"+Inf\"} 4\n"
    "rpc_seconds_sum 2.5\n"
    "rpc_seconds_count 4\n"
    "probe_success 0\n"                         /* line 13: never lbwatch's own series */
    "lbwatch_node_info{vantage=\"x\"} 1\n"
    "up{target=\"other\",probe=\"x\"} 1\n";

static void prometheus_allow_list(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct fake fk;
    char url[128];
    uv_loop_init(&loop);
    uint16_t port = fake_listen_tcp(&fk, &loop, PAGE);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/metrics", port);
    G.page = exposition;
    /* probe_success and lbwatch_* can only be allowed here, not in a configuration */
    const char *patterns[] = {"node_load1", "node_memory_Mem*", "rpc_seconds", "up",
                              "probe_success", "lbwatch_*"};
    struct lbw_prometheus_options o;
    assert_int_equal(lbw_promtext_allow_init(&o.allow, patterns, 6, NULL, 0), 0);
    struct lbw_scrape_source src = {.via = LBW_FETCH_HTTP, .url = url, .options = &o};
    scrape_kind_once(&loop, &lbw_prometheus_kind, &src, 5000);
    assert_true(R.success);
    assert_non_null(strstr(fk.last, "GET /metrics HTTP/1.1\r\n"));
    assert_true(value("node_load1{" PB "}") == 0.25);
    assert_true(value("node_memory_MemTotal_bytes{" PB "}") == 8e9);
    assert_true(value("node_memory_MemFree_bytes{" PB "}") == 1e9);
    assert_false(has("node_memory_Active_bytes"));
    assert_true(value("rpc_seconds_bucket{le=\"+Inf\"," PB "}") == 4);
    assert_true(value("rpc_seconds_count{" PB "}") == 4);
    assert_true(value("up{exported_probe=\"x\",exported_target=\"other\"," PB "}") == 1);
    /* the scrape's own probe_success alone, and no scraped lbwatch_* */
    assert_int_equal(count("probe_success{" PB "}"), 1);
    assert_true(value("probe_success{" PB "}") == 1);
    assert_false(has("lbwatch_node_info"));
    assert_true(value(SAMPLES("emitted")) == 8);
    assert_true(value(SAMPLES("skipped")) == 1);
    assert_true(value(SAMPLES("rejected")) == 2);
    assert_true(value("lbwatch_probe_error_info{error=\"2 samples rejected, the first on line "
                      "13: probe_success: a name of lbwatch's own (probe_*, lbwatch_*)\","
                      PB "}") == 1);
    assert_int_equal(R.ns, 2 + 8 + 3 + 1);

    /* no allow-list keeps nothing, and nothing was refused */
    src.options = NULL;
    scrape_kind_once(&loop, &lbw_prometheus_kind, &src, 5000);
    assert_true(R.success);
    assert_true(value(SAMPLES("emitted")) == 0);
    assert_true(value(SAMPLES("skipped")) == 11);
    assert_false(has("lbwatch_probe_error_info"));
    assert_int_equal(R.ns, 2 + 3);
    lbw_promtext_allow_free(&o.allow);
    fake_close(&fk);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* A malformed exposition fails the run and keeps nothing of it; credentials are sent. */
static void prometheus_failures(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct fake fk;
    char url[128];
    uv_loop_init(&loop);
    uint16_t port = fake_listen_tcp(&fk, &loop, PAGE);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/metrics", port);
    const char *all[] = {"a", "b"};
    struct lbw_prometheus_options o;
    assert_int_equal(lbw_promtext_allow_init(&o.allow, all, 2, NULL, 0), 0);
    struct lbw_scrape_source src = {.via = LBW_FETCH_HTTP, .url = url, .options = &o,
                                    .username = "admin", .password = "s3cret"};
    G.page = "a 1\nb{x=\"1\" 2\n";
    G.page_auth = 1;
    scrape_kind_once(&loop, &lbw_prometheus_kind, &src, 5000);
    assert_false(R.success);
    assert_string_equal(R.error,
                        "line 2, column 9: expected ',' or '}' after the label value, found '2'");
    assert_int_equal(R.ns, 2);
    assert_false(has("a{"));

    G.page = "a 1\nb 2\n";
    scrape_kind_once(&loop, &lbw_prometheus_kind, &src, 5000);
    assert_true(R.success);
    assert_true(value("b{" PB "}") == 2);
    src.password = "guess";
    scrape_kind_once(&loop, &lbw_prometheus_kind, &src, 5000);
    assert_string_equal(R.error, "HTTP status 401");
    G.page_auth = 0;
    lbw_promtext_allow_free(&o.allow);
    fake_close(&fk);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* --- set-up ---------------------------------------------------------------------------------- */

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(1 << 20);
    *len = fread(buf, 1, (1 << 20) - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

static int setup(void **state)
{
    (void)state;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
        tu_tmpdir("lbw-scrape", G.dir, sizeof(G.dir)) != 0)
        return -1;
    snprintf(G.sock, sizeof(G.sock), "%s/admin.sock", G.dir);
    G.info = slurp("tests/fixtures/haproxy/show_info.txt", &G.info_len);
    G.stat = slurp("tests/fixtures/haproxy/show_stat.csv", &G.stat_len);
    G.cert = slurp("tests/fixtures/haproxy/show_ssl_cert_detail.txt", &G.cert_len);
    return G.info && G.stat && G.cert ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    tu_rmrf(G.dir);
    free(G.info);
    free(G.stat);
    free(G.cert);
    curl_global_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fetch_unix_and_tcp),
        cmocka_unit_test(fetch_failures),
        cmocka_unit_test(fetch_http_basic_auth),
        cmocka_unit_test(fetcher_close_in_flight),
        cmocka_unit_test(haproxy_over_the_socket),
        cmocka_unit_test(haproxy_failures),
        cmocka_unit_test(haproxy_over_http),
        cmocka_unit_test(haproxy_certificates_locked),
        cmocka_unit_test(haproxy_memory_across_runs),
        cmocka_unit_test(nginx_over_http),
        cmocka_unit_test(nginx_failures),
        cmocka_unit_test(prometheus_allow_list),
        cmocka_unit_test(prometheus_failures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
