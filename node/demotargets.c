/* demotargets.c - the demo's TLS and redirect servers on loopback. See demotargets.h. */
#include "node/demotargets.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probes/tlsio.h"

#define REQUEST_MAX 8192

struct conn {
    struct lbw_demo_server *srv;
    struct conn *next, **prevp;
    struct lbw_tlsio *tls;      /* TLS servers */
    uv_tcp_t tcp;               /* redirect server */
    uv_write_t wr;
    uv_shutdown_t sd;
    size_t len;
    int answered;
    char req[REQUEST_MAX];
};

struct lbw_demo_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    SSL_CTX *ctx;               /* NULL for the redirect server */
    char *response;             /* the whole HTTP response */
    size_t response_len;
    struct conn *conns;
    unsigned open_handles;      /* listener + connections */
    int closing;
    uint16_t port;
};

static void server_release(struct lbw_demo_server *s)
{
    if (--s->open_handles > 0)
        return;
    if (s->ctx)
        SSL_CTX_free(s->ctx);
    free(s->response);
    free(s);
}

static struct conn *conn_new(struct lbw_demo_server *s)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->srv = s;
    c->next = s->conns;
    if (s->conns)
        s->conns->prevp = &c->next;
    c->prevp = &s->conns;
    s->conns = c;
    s->open_handles++;
    return c;
}

static void conn_free(struct conn *c)
{
    struct lbw_demo_server *s = c->srv;
    *c->prevp = c->next;
    if (c->next)
        c->next->prevp = c->prevp;
    free(c);
    server_release(s);
}

/* Appends received bytes; returns 1 once the request head is complete. */
static int request_complete(struct conn *c, const char *data, size_t n)
{
    if (n > sizeof(c->req) - 1 - c->len)
        n = sizeof(c->req) - 1 - c->len;
    memcpy(c->req + c->len, data, n);
    c->len += n;
    c->req[c->len] = '\0';
    return strstr(c->req, "\r\n\r\n") != NULL || c->len == sizeof(c->req) - 1;
}

/* ---- TLS connections ------------------------------------------------------------------- */

static void tls_closed(struct lbw_tlsio *t) { conn_free(lbw_tlsio_data(t)); }

static void tls_close(struct conn *c)
{
    if (c->tls)
        lbw_tlsio_close(c->tls, tls_closed);
    c->tls = NULL;
}

static void tls_after_shutdown(struct lbw_tlsio *t, int status)
{
    (void)status;
    tls_close(lbw_tlsio_data(t));
}

static void tls_written(struct lbw_tlsio *t, int status, void *arg)
{
    (void)arg;
    if (status != 0 || lbw_tlsio_shutdown(t, tls_after_shutdown) != 0)
        tls_close(lbw_tlsio_data(t));
}

static void tls_on_read(struct lbw_tlsio *t, ssize_t nread, const char *data)
{
    struct conn *c = lbw_tlsio_data(t);
    if (nread < 0) {
        tls_close(c);
        return;
    }
    if (c->answered || !request_complete(c, data, (size_t)nread))
        return;
    c->answered = 1;
    uv_buf_t b = uv_buf_init(c->srv->response, (unsigned)c->srv->response_len);
    if (lbw_tlsio_write(t, &b, 1, tls_written, NULL) != 0)
        tls_close(c);
}

static void tls_on_handshake(struct lbw_tlsio *t, int status)
{
    struct conn *c = lbw_tlsio_data(t);
    if (status != 0 || lbw_tlsio_read_start(t, tls_on_read) != 0)
        tls_close(c);
}

static void tls_on_connection(uv_stream_t *listener, int status)
{
    struct lbw_demo_server *s = listener->data;
    struct conn *c;
    if (status != 0 || s->closing || !(c = conn_new(s)))
        return;
    if (lbw_tlsio_new(&c->tls, s->loop, s->ctx, LBW_TLSIO_SERVER, c) != 0) {
        conn_free(c);
        return;
    }
    if (uv_accept(listener, lbw_tlsio_stream(c->tls)) != 0 ||
        lbw_tlsio_handshake(c->tls, tls_on_handshake) != 0)
        tls_close(c);
}

/* ---- plain HTTP connections (backends, redirect) ------------------------------------- */

static void tcp_closed(uv_handle_t *h) { conn_free(h->data); }

static void tcp_close(struct conn *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, tcp_closed);
}

static void tcp_after_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    tcp_close(req->data);
}

static void tcp_written(uv_write_t *req, int status)
{
    struct conn *c = req->data;
    c->sd.data = c;
    if (status != 0 || uv_shutdown(&c->sd, (uv_stream_t *)&c->tcp, tcp_after_shutdown) != 0)
        tcp_close(c);
}

static void tcp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char scratch[4096];
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(scratch, sizeof(scratch));
}

static void tcp_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = stream->data;
    if (nread < 0) {
        tcp_close(c);
        return;
    }
    if (c->answered || !request_complete(c, buf->base, (size_t)nread))
        return;
    c->answered = 1;
    uv_read_stop(stream);
    uv_buf_t b = uv_buf_init(c->srv->response, (unsigned)c->srv->response_len);
    c->wr.data = c;
    if (uv_write(&c->wr, stream, &b, 1, tcp_written) != 0)
        tcp_close(c);
}

static void tcp_on_connection(uv_stream_t *listener, int status)
{
    struct lbw_demo_server *s = listener->data;
    struct conn *c;
    if (status != 0 || s->closing || !(c = conn_new(s)))
        return;
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, tcp_alloc, tcp_on_read) != 0)
        tcp_close(c);
}

/* ---- servers ----------------------------------------------------------------------------- */

static void listener_closed(uv_handle_t *h) { server_release(h->data); }

static int listen_on(struct lbw_demo_server *s, uint16_t port, uv_connection_cb cb)
{
    struct sockaddr_in a;
    int alen = sizeof(a);
    uv_ip4_addr("127.0.0.1", port, &a);
    uv_tcp_init(s->loop, &s->listener);
    s->listener.data = s;
    s->open_handles = 1;
    int rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&a, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, 128, cb);
    if (rc == 0)
        rc = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&a, &alen);
    if (rc != 0) {
        uv_close((uv_handle_t *)&s->listener, listener_closed);
        return rc;
    }
    s->port = ntohs(a.sin_port);
    return 0;
}

static struct lbw_demo_server *server_new(uv_loop_t *loop, const char *head, const char *body)
{
    struct lbw_demo_server *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->loop = loop;
    size_t cap = strlen(head) + strlen(body) + 128;
    s->response = malloc(cap);
    if (!s->response) {
        free(s);
        return NULL;
    }
    s->response_len = (size_t)snprintf(s->response, cap,
                                       "%sContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                                       "Connection: close\r\n\r\n%s",
                                       head, strlen(body), body);
    return s;
}

int lbw_demo_tls_server(struct lbw_demo_server **out, uv_loop_t *loop, SSL_CTX *ctx,
                        uint16_t port, const char *body)
{
    struct lbw_demo_server *s = server_new(loop, "HTTP/1.1 200 OK\r\n", body);
    if (!s)
        return UV_ENOMEM;
    SSL_CTX_up_ref(ctx);
    s->ctx = ctx;
    int rc = listen_on(s, port, tls_on_connection);
    if (rc == 0)
        *out = s;
    return rc;
}

int lbw_demo_http_server(struct lbw_demo_server **out, uv_loop_t *loop, uint16_t port,
                         const char *body)
{
    struct lbw_demo_server *s = server_new(loop, "HTTP/1.1 200 OK\r\n", body);
    if (!s)
        return UV_ENOMEM;
    int rc = listen_on(s, port, tcp_on_connection);
    if (rc == 0)
        *out = s;
    return rc;
}

int lbw_demo_redirect_server(struct lbw_demo_server **out, uv_loop_t *loop, uint16_t port,
                             const char *location)
{
    char head[1024];
    if ((size_t)snprintf(head, sizeof(head), "HTTP/1.1 301 Moved Permanently\r\nLocation: %s\r\n",
                         location) >= sizeof(head))
        return UV_EINVAL;
    struct lbw_demo_server *s = server_new(loop, head, "moved\n");
    if (!s)
        return UV_ENOMEM;
    int rc = listen_on(s, port, tcp_on_connection);
    if (rc == 0)
        *out = s;
    return rc;
}

uint16_t lbw_demo_server_port(const struct lbw_demo_server *s) { return s->port; }

void lbw_demo_server_close(struct lbw_demo_server *s)
{
    if (!s || s->closing)
        return;
    s->closing = 1;
    for (struct conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (s->ctx)
            tls_close(c);
        else
            tcp_close(c);
    }
    uv_close((uv_handle_t *)&s->listener, listener_closed);
}
