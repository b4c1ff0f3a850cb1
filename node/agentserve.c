/* agentserve.c - the agent's mutual-TLS pull server. See agentserve.h.
 *
 * Owns the listening socket and every connection. A connection goes
 *     HANDSHAKE -> REQUEST (reading one PULL) -> ANSWER (BATCH frames as the socket drains)
 *     -> ENDING (END written, close_notify and FIN sent, reading until the node closes)
 * under one timer: request_timeout_ms until the PULL is in, then answer_timeout_ms. It is
 * freed once its timer and TLS session have both closed; the server is freed once the
 * listener and every connection have.
 */
#include "node/agentserve.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probes/tlsio.h"

#define DEFAULT_CONNECTIONS 8
#define DEFAULT_REQUEST_MS 10000
#define DEFAULT_ANSWER_MS 60000
#define WRITE_HIGH_WATER (256u << 10)   /* batch bytes in flight per connection */
#define WRITES_IN_FLIGHT 64             /* BATCH writes in flight per connection at most */
#define DEFAULT_ANSWER_BYTES (16u << 20)
#define REQUEST_FRAME_MAX 64
#define PEER_MAX 64
#define REASON_MAX 256
#define LISTEN_BACKLOG 64

enum phase { PH_HANDSHAKE, PH_REQUEST, PH_ANSWER, PH_ENDING };

struct lbw_agentserve {
    struct lbw_agentserve_config cfg;
    SSL_CTX *ctx;
    uv_tcp_t listener;
    int listening, closing;
    struct conn *conns;
    struct lbw_agentserve_stats st;
    void (*close_cb)(void *arg);
    void *close_arg;
};

struct conn {
    struct lbw_agentserve *s;
    struct conn *prev, *next;
    struct lbw_tlsio *io;
    uv_timer_t timer;
    int handles, closing, reported, identified;
    enum phase phase;
    char peer[PEER_MAX];
    struct lbw_identity node;
    struct lbw_agent_decoder dec;
    uint64_t after, last_sent;
    size_t max_bytes, batches, bytes;
    /* BATCH writes whose callback has not run (their ciphertext is still allocated, even
     * when the kernel took it at once): their lengths, oldest first (callbacks come in order) */
    uint32_t flight[WRITES_IN_FLIGHT];
    unsigned flight_head, flight_n;
    size_t in_flight;
};

/* ---- the server's life ------------------------------------------------------------------- */

static void maybe_freed(struct lbw_agentserve *s)
{
    if (!s->closing || s->listening || s->conns)
        return;
    void (*cb)(void *) = s->close_cb;
    void *arg = s->close_arg;
    SSL_CTX_free(s->ctx);
    free(s);
    if (cb)
        cb(arg);
}

/* ---- reports ----------------------------------------------------------------------------- */

static void refuse(struct conn *c, enum lbw_refusal kind, const char *reason)
{
    c->s->st.refused[kind]++;
    if (c->s->cfg.on_refusal)
        c->s->cfg.on_refusal(c->s->cfg.arg, c->peer, kind, reason);
}

/* The end of an identified node's pull, reported once. */
static void report(struct conn *c, int complete, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void report(struct conn *c, int complete, const char *fmt, ...)
{
    char why[REASON_MAX] = "";
    va_list ap;
    if (c->reported || !c->identified)
        return;
    c->reported = 1;
    if (complete)
        c->s->st.pulls++;
    else
        c->s->st.failed++;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    if (c->s->cfg.on_pull)
        c->s->cfg.on_pull(c->s->cfg.arg, c->peer, &c->node, c->after, c->batches, c->bytes,
                          complete, why);
}

static void format_peer(uv_tcp_t *tcp, char *out, size_t outlen)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    char host[INET6_ADDRSTRLEN];

    snprintf(out, outlen, "unknown");
    if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &len) != 0)
        return;
    if (ss.ss_family == AF_INET && uv_ip4_name((struct sockaddr_in *)&ss, host,
                                               sizeof(host)) == 0)
        snprintf(out, outlen, "%s:%u", host, ntohs(((struct sockaddr_in *)&ss)->sin_port));
    else if (ss.ss_family == AF_INET6 && uv_ip6_name((struct sockaddr_in6 *)&ss, host,
                                                     sizeof(host)) == 0)
        snprintf(out, outlen, "[%s]:%u", host, ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
}

/* ---- a connection's life ----------------------------------------------------------------- */

static void conn_handle_gone(struct conn *c)
{
    if (--c->handles > 0)
        return;
    struct lbw_agentserve *s = c->s;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->st.open--;
    lbw_agent_decoder_free(&c->dec);
    free(c);
    maybe_freed(s);
}

static void on_timer_closed(uv_handle_t *h) { conn_handle_gone(h->data); }
static void on_tls_closed(struct lbw_tlsio *io) { conn_handle_gone(lbw_tlsio_data(io)); }

static void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
    if (c->io)
        lbw_tlsio_close(c->io, on_tls_closed);
}

static void conn_fail(struct conn *c, const char *why)
{
    report(c, 0, "%s", why);
    conn_close(c);
}

static void on_timeout(uv_timer_t *t)
{
    struct conn *c = t->data;
    static const char *const what[] = {"no TLS handshake", "no PULL request",
                                       "answer not taken", "no close from the node"};
    char why[REASON_MAX];
    unsigned long long ms = c->phase <= PH_REQUEST ? c->s->cfg.request_timeout_ms
                                                   : c->s->cfg.answer_timeout_ms;
    snprintf(why, sizeof(why), "%s within %llu ms", what[c->phase], ms);
    if (c->phase == PH_HANDSHAKE)
        refuse(c, LBW_REFUSED_HANDSHAKE, why);
    if (c->phase == PH_ENDING)
        conn_close(c); /* the answer is out: the pull was reported complete */
    else
        conn_fail(c, why);
}

static struct conn *conn_new(struct lbw_agentserve *s)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->s = s;
    uv_timer_init(s->cfg.loop, &c->timer);
    c->timer.data = c;
    c->handles = 1;
    lbw_agent_decoder_init(&c->dec, REQUEST_FRAME_MAX);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->st.open++;
    s->st.connections++;
    return c;
}

/* ---- the answer -------------------------------------------------------------------------- */

static void pump(struct conn *c);

static void flight_push(struct conn *c, size_t len)
{
    c->flight[(c->flight_head + c->flight_n++) % WRITES_IN_FLIGHT] = (uint32_t)len;
    c->in_flight += len;
}

static void flight_pop(struct conn *c)
{
    if (c->flight_n == 0)
        return;
    c->in_flight -= c->flight[c->flight_head];
    c->flight_head = (c->flight_head + 1) % WRITES_IN_FLIGHT;
    c->flight_n--;
}

static void on_written(struct lbw_tlsio *io, int status, void *arg)
{
    struct conn *c = arg;
    (void)io;
    flight_pop(c);
    if (c->closing)
        return;
    if (status) {
        conn_fail(c, "write failed");
        return;
    }
    if (c->phase == PH_ANSWER)
        pump(c);
}

static void on_ending_read(struct lbw_tlsio *io, ssize_t n, const char *data)
{
    (void)data;
    if (n < 0)
        conn_close(lbw_tlsio_data(io)); /* the node closed (or failed): we are done */
}

static void on_shutdown(struct lbw_tlsio *io, int status)
{
    struct conn *c = lbw_tlsio_data(io);
    if (c->closing)
        return;
    if (status) {
        conn_close(c);
        return;
    }
    /* read until the node closes, so our close cannot reset data it has not read yet */
    if (lbw_tlsio_read_start(io, on_ending_read) != 0)
        conn_close(c);
}

/* END, then close_notify and FIN. */
static void finish_answer(struct conn *c, int more)
{
    struct lbw_agentbuf_stats bs;
    uint8_t frame[LBW_AGENT_FRAME_HEAD + LBW_AGENT_END_BYTES];
    lbw_agentbuf_stats(c->s->cfg.buf, &bs);
    struct lbw_agent_end end = {bs.newest, bs.oldest, bs.evicted, more, c->s->cfg.interval_ms};
    uv_buf_t b = uv_buf_init((char *)frame, (unsigned)lbw_agent_end_encode(&end, frame));
    c->phase = PH_ENDING;
    if (lbw_tlsio_write(c->io, &b, 1, NULL, NULL) != 0 ||
        lbw_tlsio_shutdown(c->io, on_shutdown) != 0) {
        conn_fail(c, "cannot write END");
        return;
    }
    c->s->st.batches_sent += c->batches;
    c->s->st.bytes_sent += c->bytes;
    report(c, 1, "%s", more ? "answer cut at max_bytes" : "");
}

/* Writes batches while the node takes them, then END. What bounds the answer's memory is the
 * writes not yet called back, not the socket's queue: a socket that takes everything at once
 * would otherwise let a whole buffer's ciphertext be allocated before the loop runs again. */
static void pump(struct conn *c)
{
    while (c->phase == PH_ANSWER && c->in_flight < WRITE_HIGH_WATER &&
           c->flight_n < WRITES_IN_FLIGHT) {
        size_t len;
        uint64_t seq;
        const uint8_t *batch = lbw_agentbuf_next(c->s->cfg.buf, c->last_sent, &len, &seq);
        if (!batch || (c->batches > 0 && c->bytes + len > c->max_bytes)) {
            finish_answer(c, batch != NULL);
            return;
        }
        uint8_t head[LBW_AGENT_FRAME_HEAD];
        lbw_agent_frame_head(head, LBW_AGENT_BATCH, len);
        uv_buf_t b[2] = {uv_buf_init((char *)head, sizeof(head)),
                         uv_buf_init((char *)batch, (unsigned)len)};
        if (lbw_tlsio_write(c->io, b, 2, on_written, c) != 0) {
            conn_fail(c, "write failed");
            return;
        }
        flight_push(c, len);
        c->last_sent = seq;
        c->batches++;
        c->bytes += len;
    }
}

/* ---- the request ------------------------------------------------------------------------- */

/* Tells the node why, then closes. */
static void answer_error(struct conn *c, const char *why)
{
    uint8_t frame[LBW_AGENT_FRAME_HEAD + 1 + LBW_AGENT_ERROR_MAX];
    uv_buf_t b = uv_buf_init((char *)frame, (unsigned)lbw_agent_error_encode(why, frame));
    report(c, 0, "%s", why);
    c->phase = PH_ENDING;
    if (lbw_tlsio_write(c->io, &b, 1, NULL, NULL) != 0 ||
        lbw_tlsio_shutdown(c->io, on_shutdown) != 0)
        conn_close(c);
}

static void take_pull(struct conn *c, const uint8_t *body, size_t len)
{
    struct lbw_agent_pull req;
    char why[REASON_MAX];
    if (lbw_agent_pull_decode(body, len, &req) < 0) {
        answer_error(c, "malformed PULL");
        return;
    }
    c->after = c->last_sent = req.after;
    if (req.version != LBW_AGENT_PROTO_VERSION) {
        snprintf(why, sizeof(why), "unsupported protocol version %u (this agent speaks %u)",
                 req.version, LBW_AGENT_PROTO_VERSION);
        answer_error(c, why);
        return;
    }
    c->max_bytes = req.max_bytes ? req.max_bytes : DEFAULT_ANSWER_BYTES;
    if (c->max_bytes > LBW_AGENT_ANSWER_MAX)
        c->max_bytes = LBW_AGENT_ANSWER_MAX;
    c->phase = PH_ANSWER;
    uv_timer_start(&c->timer, on_timeout, c->s->cfg.answer_timeout_ms, 0);
    pump(c);
}

static void on_request_read(struct lbw_tlsio *io, ssize_t n, const char *data)
{
    struct conn *c = lbw_tlsio_data(io);
    uint8_t type;
    const uint8_t *body;
    size_t len;
    if (n < 0) {
        conn_fail(c, "closed before its PULL");
        return;
    }
    if (lbw_agent_decoder_feed(&c->dec, data, (size_t)n) < 0) {
        conn_fail(c, "out of memory");
        return;
    }
    int rc = lbw_agent_decoder_next(&c->dec, &type, &body, &len);
    if (rc == 0)
        return;
    lbw_tlsio_read_stop(io); /* one request per connection: nothing more is read */
    if (rc < 0 || type != LBW_AGENT_PULL) {
        answer_error(c, "expected a PULL frame");
        return;
    }
    take_pull(c, body, len);
}

static void on_handshake(struct lbw_tlsio *io, int status)
{
    struct conn *c = lbw_tlsio_data(io);
    char reason[REASON_MAX];
    enum lbw_refusal kind;
    if (status) {
        /* a peer that merely hung up is gone, not refused */
        if (status == LBW_TLSIO_ETLS)
            refuse(c, lbw_peer_handshake_refusal(lbw_tlsio_ssl(io), 1, lbw_tlsio_error(io),
                                                 reason, sizeof(reason)),
                   reason);
        conn_close(c);
        return;
    }
    if (lbw_peer_identity(lbw_tlsio_ssl(io), LBW_ID_NODE, NULL, &c->node, &kind, reason,
                          sizeof(reason)) != 0) {
        refuse(c, kind, reason);
        conn_close(c);
        return;
    }
    c->identified = 1;
    c->phase = PH_REQUEST;
    if (lbw_tlsio_read_start(io, on_request_read) != 0)
        conn_fail(c, "cannot read");
}

static void on_connection(uv_stream_t *server, int status)
{
    struct lbw_agentserve *s = server->data;
    struct conn *c;
    if (status < 0 || s->closing || !(c = conn_new(s)))
        return;
    if (lbw_tlsio_new(&c->io, s->cfg.loop, s->ctx, LBW_TLSIO_SERVER, c) != 0) {
        conn_close(c);
        return;
    }
    c->handles++;
    if (uv_accept(server, lbw_tlsio_stream(c->io)) != 0) {
        conn_close(c);
        return;
    }
    format_peer((uv_tcp_t *)lbw_tlsio_stream(c->io), c->peer, sizeof(c->peer));
    if (s->st.open > s->cfg.max_connections) {
        s->st.busy++;
        if (s->cfg.on_pull)
            s->cfg.on_pull(s->cfg.arg, c->peer, NULL, 0, 0, 0, 0,
                           "too many connections: closed at once");
        conn_close(c);
        return;
    }
    if (lbw_tlsio_handshake(c->io, on_handshake) != 0) {
        conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, on_timeout, s->cfg.request_timeout_ms, 0);
}

/* ---- public ------------------------------------------------------------------------------ */

static int listen_on(struct lbw_agentserve *s, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    int rc = uv_ip4_addr(s->cfg.host, s->cfg.port, (struct sockaddr_in *)&ss);
    if (rc != 0)
        rc = uv_ip6_addr(s->cfg.host, s->cfg.port, (struct sockaddr_in6 *)&ss);
    if (rc != 0) {
        snprintf(err, errlen, "listen address %s is not an IP address", s->cfg.host);
        return -1;
    }
    uv_tcp_init(s->cfg.loop, &s->listener);
    s->listener.data = s;
    s->listening = 1;
    rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, LISTEN_BACKLOG, on_connection);
    if (rc != 0) {
        snprintf(err, errlen, "listen on %s port %u: %s", s->cfg.host, s->cfg.port,
                 uv_strerror(rc));
        return -1;
    }
    return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
    struct lbw_agentserve *s = h->data;
    s->listening = 0;
    maybe_freed(s);
}

int lbw_agentserve_start(struct lbw_agentserve **out, const struct lbw_agentserve_config *cfg,
                         char *err, size_t errlen)
{
    struct lbw_agentserve *s = calloc(1, sizeof(*s));
    *out = NULL;
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->cfg = *cfg;
    if (!s->cfg.max_connections)
        s->cfg.max_connections = DEFAULT_CONNECTIONS;
    if (!s->cfg.request_timeout_ms)
        s->cfg.request_timeout_ms = DEFAULT_REQUEST_MS;
    if (!s->cfg.answer_timeout_ms)
        s->cfg.answer_timeout_ms = DEFAULT_ANSWER_MS;
    s->ctx = lbw_tlsio_server_ctx(cfg->cert_file, cfg->key_file, cfg->ca_file, err, errlen);
    if (!s->ctx || listen_on(s, err, errlen) != 0) {
        lbw_agentserve_close(s, NULL, NULL);
        return -1;
    }
    *out = s;
    return 0;
}

uint16_t lbw_agentserve_port(const struct lbw_agentserve *s)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

void lbw_agentserve_stats(const struct lbw_agentserve *s, struct lbw_agentserve_stats *out)
{
    *out = s->st;
}

void lbw_agentserve_close(struct lbw_agentserve *s, void (*cb)(void *arg), void *arg)
{
    if (!s || s->closing)
        return;
    s->closing = 1;
    s->close_cb = cb;
    s->close_arg = arg;
    if (s->listening)
        uv_close((uv_handle_t *)&s->listener, on_listener_closed);
    for (struct conn *c = s->conns; c; c = c->next)
        conn_close(c);
    maybe_freed(s);
}
