/* fetch.c - a text over HTTP (libcurl on libuv) or a stream socket, bounded in time and size.
 * See fetch.h.
 *
 * Owns one lbw_curluv for the HTTP fetches and a list of fetches in flight. An HTTP fetch owns
 * its easy handle; a stream fetch owns a uv_pipe_t or uv_tcp_t and a uv_timer_t and is freed
 * when both have closed (libuv runs the cancelled connect and write callbacks before the
 * close callbacks, so they still find it). Both own the answer buffer.
 */
#include "probes/fetch.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <curl/curl.h>

#include "probes/curluv.h"

#define DEFAULT_MAX_BYTES (1u << 20)
#define DEFAULT_TIMEOUT_MS 10000
#define READ_CHUNK 65536

struct fetch {
    struct fetch *prev, *next;
    struct lbw_fetcher *owner;  /* NULL once unlinked */
    enum lbw_fetch_via via;
    lbw_fetch_cb cb;
    void *arg;
    uint64_t timeout_ms;
    size_t max_bytes;
    char *body;                 /* the answer so far; always room for a NUL */
    size_t len, cap;
    int too_long;

    CURL *easy;                 /* HTTP */
    char errbuf[CURL_ERROR_SIZE];

    union {                     /* stream */
        uv_handle_t handle;
        uv_stream_t stream;
        uv_pipe_t pipe;
        uv_tcp_t tcp;
    } s;
    uv_timer_t timer;
    uv_connect_t connect_req;
    uv_write_t write_req;
    char *send;
    size_t send_len;
    int open_handles;
    int done;
};

struct lbw_fetcher {
    uv_loop_t *loop;
    struct lbw_curluv *curl;
    struct fetch *fetches;
    size_t nfetches;
};

/* --- lifetime -------------------------------------------------------------------------------- */

static void fetch_free(struct fetch *x)
{
    if (x->easy)
        curl_easy_cleanup(x->easy);
    free(x->body);
    free(x->send);
    free(x);
}

static void fetch_link(struct lbw_fetcher *f, struct fetch *x)
{
    x->owner = f;
    x->next = f->fetches;
    if (f->fetches)
        f->fetches->prev = x;
    f->fetches = x;
    f->nfetches++;
}

static void fetch_unlink(struct fetch *x)
{
    struct lbw_fetcher *f = x->owner;
    if (!f)
        return;
    if (x->prev)
        x->prev->next = x->next;
    else
        f->fetches = x->next;
    if (x->next)
        x->next->prev = x->prev;
    x->prev = x->next = NULL;
    x->owner = NULL;
    f->nfetches--;
}

/* Makes room for at least want more bytes (and the NUL) without passing max_bytes + 1. */
static int body_reserve(struct fetch *x, size_t want)
{
    size_t limit = x->max_bytes + 2; /* one byte over the cap is how we notice it */
    size_t need = x->len + want + 1;
    if (need > limit)
        need = limit;
    if (need <= x->cap)
        return 0;
    size_t cap = x->cap ? x->cap : 4096;
    while (cap < need)
        cap *= 2;
    if (cap > limit)
        cap = limit;
    char *nb = realloc(x->body, cap);
    if (!nb)
        return -1;
    x->body = nb;
    x->cap = cap;
    return 0;
}

static void result_error(struct lbw_fetch_result *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void result_error(struct lbw_fetch_result *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof(r->error), fmt, ap);
    va_end(ap);
    r->ok = 0;
    r->body = NULL;
    r->len = 0;
}

/* Hands the answer to the callback: r->ok decides whether body goes with it. */
static void deliver(struct fetch *x, struct lbw_fetch_result *r)
{
    if (r->ok && body_reserve(x, 0) != 0)
        result_error(r, "out of memory");
    if (r->ok) {
        x->body[x->len] = '\0';
        r->body = x->body;
        r->len = x->len;
    }
    x->cb(x->arg, r);
}

/* --- HTTP ------------------------------------------------------------------------------------ */

static size_t on_http_body(char *data, size_t size, size_t n, void *arg)
{
    struct fetch *x = arg;
    size_t len = size * n;
    if (x->len + len > x->max_bytes) {
        x->too_long = 1;
        return 0; /* libcurl fails the transfer with a write error */
    }
    if (body_reserve(x, len) != 0)
        return 0;
    memcpy(x->body + x->len, data, len);
    x->len += len;
    return len;
}

static void on_http_done(void *arg, CURL *easy, CURLcode rc)
{
    struct fetch *x = arg;
    struct lbw_fetch_result r = {.ok = 1};
    if (curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &r.http_status) != CURLE_OK)
        r.http_status = 0;
    if (x->too_long)
        result_error(&r, "answer longer than %zu bytes", x->max_bytes);
    else if (rc != CURLE_OK && x->errbuf[0])
        result_error(&r, "%s: %s", curl_easy_strerror(rc), x->errbuf);
    else if (rc != CURLE_OK)
        result_error(&r, "%s", curl_easy_strerror(rc));
    else if (r.http_status < 200 || r.http_status > 299)
        result_error(&r, "HTTP status %ld", r.http_status);
    fetch_unlink(x);
    deliver(x, &r);
    fetch_free(x);
}

static int http_configure(struct fetch *x, const struct lbw_fetch_req *req)
{
    CURL *e = x->easy;
    long timeout = x->timeout_ms > LONG_MAX ? LONG_MAX : (long)x->timeout_ms;
    if (lbw_curl_defaults(e, req->url, "http,https", req->ca_file, timeout, x->errbuf) != 0 ||
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_http_body) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_WRITEDATA, x) != CURLE_OK)
        return -1;
    if (req->username && (curl_easy_setopt(e, CURLOPT_HTTPAUTH, CURLAUTH_BASIC) != CURLE_OK ||
                          curl_easy_setopt(e, CURLOPT_USERNAME, req->username) != CURLE_OK ||
                          curl_easy_setopt(e, CURLOPT_PASSWORD, req->password) != CURLE_OK))
        return -1;
    return 0;
}

static int http_start(struct lbw_fetcher *f, struct fetch *x, const struct lbw_fetch_req *req)
{
    if (!req->url || (strncmp(req->url, "http://", 7) != 0 &&
                      strncmp(req->url, "https://", 8) != 0) ||
        (!req->username != !req->password))
        return -1;
    x->easy = curl_easy_init();
    if (!x->easy || http_configure(x, req) != 0 ||
        lbw_curluv_submit(f->curl, x->easy, on_http_done, x) != 0)
        return -1;
    return 0;
}

/* --- stream sockets -------------------------------------------------------------------------- */

static void on_stream_closed(uv_handle_t *h)
{
    struct fetch *x = h->data;
    if (--x->open_handles == 0)
        fetch_free(x);
}

/* Stops reading and timing, closes both handles; the fetch is freed after them. */
static void stream_close(struct fetch *x)
{
    x->done = 1;
    if (!uv_is_closing(&x->s.handle))
        uv_close(&x->s.handle, on_stream_closed);
    if (!uv_is_closing((uv_handle_t *)&x->timer))
        uv_close((uv_handle_t *)&x->timer, on_stream_closed);
}

static void stream_finish(struct fetch *x, struct lbw_fetch_result *r)
{
    if (x->done)
        return;
    x->done = 1;
    uv_read_stop(&x->s.stream);
    uv_timer_stop(&x->timer);
    fetch_unlink(x);
    deliver(x, r);
    stream_close(x);
}

static void stream_fail(struct fetch *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void stream_fail(struct fetch *x, const char *fmt, ...)
{
    struct lbw_fetch_result r = {.ok = 0};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r.error, sizeof(r.error), fmt, ap);
    va_end(ap);
    stream_finish(x, &r);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct fetch *x = h->data;
    (void)suggested;
    if (body_reserve(x, READ_CHUNK) != 0 || x->cap <= x->len + 1) {
        *buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
        return;
    }
    *buf = uv_buf_init(x->body + x->len, (unsigned)(x->cap - x->len - 1));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct fetch *x = s->data;
    struct lbw_fetch_result ok = {.ok = 1};
    (void)buf;
    if (x->done)
        return;
    if (nread == UV_EOF) {
        stream_finish(x, &ok);
    } else if (nread < 0) {
        stream_fail(x, "read: %s", uv_strerror((int)nread));
    } else {
        x->len += (size_t)nread;
        if (x->len > x->max_bytes)
            stream_fail(x, "answer longer than %zu bytes", x->max_bytes);
    }
}

static void on_write(uv_write_t *req, int status)
{
    struct fetch *x = req->data;
    if (x->done || status == UV_ECANCELED)
        return;
    if (status < 0)
        stream_fail(x, "write: %s", uv_strerror(status));
}

static void on_connect(uv_connect_t *req, int status)
{
    struct fetch *x = req->data;
    if (x->done || status == UV_ECANCELED)
        return;
    if (status < 0) {
        stream_fail(x, "connect: %s", uv_strerror(status));
        return;
    }
    int rc = uv_read_start(&x->s.stream, on_alloc, on_read);
    if (rc == 0 && x->send_len) {
        uv_buf_t b = uv_buf_init(x->send, (unsigned)x->send_len);
        x->write_req.data = x;
        rc = uv_write(&x->write_req, &x->s.stream, &b, 1, on_write);
    }
    if (rc != 0)
        stream_fail(x, "%s", uv_strerror(rc));
}

static void on_timeout(uv_timer_t *t)
{
    struct fetch *x = t->data;
    stream_fail(x, "timeout after %llu ms", (unsigned long long)x->timeout_ms);
}

static int tcp_address(const struct lbw_fetch_req *req, struct sockaddr_storage *ss)
{
    if (!req->ip || req->port == 0)
        return -1;
    if (uv_ip4_addr(req->ip, req->port, (struct sockaddr_in *)ss) == 0)
        return 0;
    return uv_ip6_addr(req->ip, req->port, (struct sockaddr_in6 *)ss) == 0 ? 0 : -1;
}

static int stream_start(struct lbw_fetcher *f, struct fetch *x, const struct lbw_fetch_req *req)
{
    struct sockaddr_storage ss;
    struct sockaddr_un sun;
    if (req->via == LBW_FETCH_UNIX &&
        (!req->path || !req->path[0] || strlen(req->path) >= sizeof(sun.sun_path)))
        return -1;
    if (req->via == LBW_FETCH_TCP && tcp_address(req, &ss) != 0)
        return -1;
    if (req->send && !(x->send = strdup(req->send)))
        return -1;
    x->send_len = req->send ? strlen(req->send) : 0;
    if (req->via == LBW_FETCH_UNIX ? uv_pipe_init(f->loop, &x->s.pipe, 0) != 0
                                   : uv_tcp_init(f->loop, &x->s.tcp) != 0)
        return -1;
    x->s.handle.data = x;
    uv_timer_init(f->loop, &x->timer);
    x->timer.data = x;
    x->open_handles = 2;
    x->connect_req.data = x;
    int rc = 0;
    if (req->via == LBW_FETCH_UNIX)
        uv_pipe_connect(&x->connect_req, &x->s.pipe, req->path, on_connect);
    else
        rc = uv_tcp_connect(&x->connect_req, &x->s.tcp, (struct sockaddr *)&ss, on_connect);
    if (rc == 0)
        rc = uv_timer_start(&x->timer, on_timeout, x->timeout_ms, 0);
    if (rc != 0) {
        stream_close(x); /* frees x once closed */
        return 1;
    }
    return 0;
}

/* --- API ------------------------------------------------------------------------------------- */

int lbw_fetcher_new(struct lbw_fetcher **out, uv_loop_t *loop, char *err, size_t errlen)
{
    struct lbw_fetcher *f = calloc(1, sizeof(*f));
    if (!f) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    f->loop = loop;
    if (lbw_curluv_new(&f->curl, loop, err, errlen) != 0) {
        free(f);
        return -1;
    }
    *out = f;
    return 0;
}

int lbw_fetch_start(struct lbw_fetcher *f, const struct lbw_fetch_req *req, lbw_fetch_cb cb,
                    void *arg)
{
    if (!f || !req || !cb)
        return -1;
    struct fetch *x = calloc(1, sizeof(*x));
    if (!x)
        return -1;
    x->via = req->via;
    x->cb = cb;
    x->arg = arg;
    x->max_bytes = req->max_bytes ? req->max_bytes : DEFAULT_MAX_BYTES;
    x->timeout_ms = req->timeout_ms ? req->timeout_ms : DEFAULT_TIMEOUT_MS;
    int rc = req->via == LBW_FETCH_HTTP ? http_start(f, x, req) : stream_start(f, x, req);
    if (rc < 0) {
        fetch_free(x);
        return -1;
    }
    if (rc > 0)
        return -1; /* started, failed, and closing: freed by its close callbacks */
    fetch_link(f, x);
    return 0;
}

size_t lbw_fetcher_active(const struct lbw_fetcher *f)
{
    return f->nfetches;
}

void lbw_fetcher_close(struct lbw_fetcher *f)
{
    if (!f)
        return;
    lbw_curluv_close(f->curl); /* cancels the HTTP fetches: their easy handles are ours */
    while (f->fetches) {
        struct fetch *x = f->fetches;
        fetch_unlink(x);
        if (x->via == LBW_FETCH_HTTP)
            fetch_free(x);
        else
            stream_close(x);
    }
    free(f);
}
