/* transport.c - libraft's raft_uv_transport over mutual TLS, and side channels on the same
 * port. See transport.h.
 *
 * Owns the listening socket and every connection from its first byte until it is closed or,
 * for a side channel, its TLS session is handed to the channel's owner. A connection is one
 * struct conn that goes through phases:
 *
 *     dial:    CONNECTING -> HANDSHAKE -> PREAMBLE (tag sent, waiting for the answer) -> PUMP
 *     accept:                HANDSHAKE -> PREAMBLE (reading tag and preamble)         -> PUMP
 *     PUMP -> DRAINING (one direction ended, the other is flushed) -> closed
 *
 * One timer per connection bounds everything before PUMP (handshake_timeout_ms from the
 * first byte to the answer) and the flush in DRAINING. For a raft stream the connection
 * also owns one end of a socketpair (`pipe`); libraft gets the other end as a raft_malloc'd
 * uv_pipe_t and closes and frees it itself. The pump copies TLS plaintext into the pipe and
 * pipe bytes into the TLS session, and stops reading either side while the other side's
 * write queue is above PUMP_HIGH_WATER.
 *
 * A connection is freed once all its handles (timer, TLS session unless handed over, pipe)
 * have closed; only then does a failed or cancelled dial call its callback, and only once
 * every connection and the listener are gone does close() call libraft back. No callback
 * into libraft or the caller runs inside a call they made into this module.
 */
#include "raft/transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/ssl.h>

#define DEFAULT_TIMEOUT_MS 5000
#define PUMP_HIGH_WATER (1u << 20)      /* stop reading the other side above this backlog */
#define PUMP_LOW_WATER (256u << 10)     /* and start again once it is down to this */
#define PIPE_READ_SIZE 65536
#define ADDRESS_MAX 255                 /* the preamble carries it after a u8 length */
#define LISTEN_BACKLOG 64
#define REASON_MAX 256

enum conn_kind { CONN_ACCEPT, CONN_DIAL_RAFT, CONN_DIAL_SIDE };

enum conn_phase { PH_CONNECTING, PH_HANDSHAKE, PH_PREAMBLE, PH_PUMP, PH_DRAINING };

enum listener_state { LS_NONE, LS_READY, LS_CLOSING, LS_CLOSED };

struct peer_rx {
    uint64_t id;
    uint64_t last_rx;
};

struct transport {
    struct raft_uv_transport *raft;
    uv_loop_t *loop;
    SSL_CTX *server_ctx;
    SSL_CTX *client_ctx;
    struct lbw_identity self;
    uint64_t timeout_ms;
    void *arg;
    void (*on_refusal)(void *arg, const char *peer, enum lbw_refusal kind, const char *reason);
    void (*on_side_channel)(void *arg, struct lbw_tlsio *io, const struct lbw_identity *peer);
    char address[32];                   /* ours, a.b.c.d:port from libraft's init */
    uv_tcp_t listener;
    enum listener_state listener_state;
    raft_uv_accept_cb accept_cb;
    raft_uv_transport_close_cb close_cb;
    int closing;
    int close_fired;
    struct conn *conns;                 /* every connection not yet freed */
    struct lbw_transport_stats stats;
    struct peer_rx *peers;
    size_t n_peers, cap_peers;
    char scratch[PIPE_READ_SIZE];       /* pipe reads: consumed before the next one starts */
};

struct conn {
    struct transport *t;
    struct conn *prev, *next;
    enum conn_kind kind;
    enum conn_phase phase;
    struct lbw_tlsio *io;
    uv_timer_t timer;
    uv_pipe_t pipe;                     /* our end of the socketpair, once pumping */
    uv_shutdown_t pipe_shutdown;
    int pipe_open;
    int handles;                        /* handles still to report their close */
    int closing;
    int pipe_paused;                    /* pipe reading stopped: TLS backlog too long */
    int tls_paused;                     /* TLS reading stopped: pipe backlog too long */
    char peer[32];                      /* "a.b.c.d:port" */
    uint64_t peer_id;                   /* dialled id, or the verified one when accepting */
    struct lbw_identity identity;
    unsigned char tag;                  /* dial: the channel asked for */
    unsigned char pre[2 + ADDRESS_MAX]; /* accept: the preamble read so far */
    size_t pre_len;
    /* a dial's pending completion; status is what a failure reports */
    struct raft_uv_connect *req;
    raft_uv_connect_cb connect_cb;
    lbw_side_dial_cb side_cb;
    void *side_arg;
    int status;
};

/* Plaintext on its way into the pipe. */
struct pipe_write {
    uv_write_t req;
    struct conn *c;
    char data[];
};

/* --- addresses, peers ----------------------------------------------------------------------- */

/* Parses "a.b.c.d:port" with a port of 1-65535. Returns 0, or -1. */
static int parse_address(const char *s, struct sockaddr_in *out)
{
    char host[16];
    const char *colon = strrchr(s, ':');
    unsigned long port = 0;

    if (colon == NULL || colon == s || (size_t)(colon - s) >= sizeof(host))
        return -1;
    const char *digits = colon + 1;
    size_t ndigits = strlen(digits);
    if (ndigits == 0 || ndigits > 5)
        return -1;
    for (size_t i = 0; i < ndigits; i++) {
        if (digits[i] < '0' || digits[i] > '9')
            return -1;
        port = port * 10 + (unsigned long)(digits[i] - '0');
    }
    if (port == 0 || port > 65535)
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    return uv_ip4_addr(host, (int)port, out) == 0 ? 0 : -1;
}

static void format_peer(uv_tcp_t *tcp, char *out, size_t outlen)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    char host[INET_ADDRSTRLEN];

    snprintf(out, outlen, "unknown");
    if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &len) != 0 || ss.ss_family != AF_INET)
        return;
    const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
    if (uv_ip4_name(a, host, sizeof(host)) == 0)
        snprintf(out, outlen, "%s:%u", host, ntohs(a->sin_port));
}

/* Records that data arrived from node id just now. Ids come from verified certificates, so
 * the table is as small as the cluster; without memory the time is not recorded. */
static void note_rx(struct transport *t, uint64_t id)
{
    for (size_t i = 0; i < t->n_peers; i++) {
        if (t->peers[i].id == id) {
            t->peers[i].last_rx = uv_now(t->loop);
            return;
        }
    }
    if (t->n_peers == t->cap_peers) {
        size_t cap = t->cap_peers ? t->cap_peers * 2 : 8;
        struct peer_rx *p = realloc(t->peers, cap * sizeof(*p));
        if (p == NULL)
            return;
        t->peers = p;
        t->cap_peers = cap;
    }
    t->peers[t->n_peers].id = id;
    t->peers[t->n_peers].last_rx = uv_now(t->loop);
    t->n_peers++;
}

/* --- refusals ------------------------------------------------------------------------------- */

static void refuse(struct conn *c, enum lbw_refusal kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void refuse(struct conn *c, enum lbw_refusal kind, const char *fmt, ...)
{
    char reason[REASON_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    c->t->stats.refused[kind]++;
    if (c->t->on_refusal)
        c->t->on_refusal(c->t->arg, c->peer, kind, reason);
}

/* Refuses a peer whose TLS handshake failed, by what was wrong with its certificate. */
static void refuse_failed_handshake(struct conn *c)
{
    char reason[REASON_MAX];
    enum lbw_refusal kind = lbw_peer_handshake_refusal(
        lbw_tlsio_ssl(c->io), c->kind == CONN_ACCEPT, lbw_tlsio_error(c->io), reason,
        sizeof(reason));
    refuse(c, kind, "%s", reason);
}

/* Takes the peer's identity from its verified certificate and refuses it unless it is a
 * node, and the node dialled when dialling. Returns 0, or -1 after refusing. */
static int check_peer_identity(struct conn *c)
{
    struct lbw_identity id, expect = {.kind = LBW_ID_NODE, .id = c->peer_id};
    enum lbw_refusal kind;
    char reason[REASON_MAX];

    if (lbw_peer_identity(lbw_tlsio_ssl(c->io), LBW_ID_NODE,
                          c->kind != CONN_ACCEPT ? &expect : NULL, &id, &kind, reason,
                          sizeof(reason)) != 0) {
        refuse(c, kind, "%s", reason);
        return -1;
    }
    c->identity = id;
    c->peer_id = id.id;
    return 0;
}

/* --- connection life ------------------------------------------------------------------------ */

static void transport_maybe_closed(struct transport *t)
{
    if (!t->closing || t->close_fired || t->listener_state == LS_CLOSING || t->conns != NULL)
        return;
    t->close_fired = 1;
    if (t->close_cb)
        t->close_cb(t->raft);
}

static struct conn *conn_new(struct transport *t, enum conn_kind kind)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->t = t;
    c->kind = kind;
    uv_timer_init(t->loop, &c->timer);
    c->timer.data = c;
    c->handles = 1;
    c->next = t->conns;
    if (t->conns)
        t->conns->prev = c;
    t->conns = c;
    return c;
}

/* Every handle has closed: unlink and free the connection, then complete a dial that did not
 * succeed. */
static void conn_finish(struct conn *c)
{
    struct transport *t = c->t;
    struct raft_uv_connect *req = c->req;
    raft_uv_connect_cb connect_cb = c->connect_cb;
    lbw_side_dial_cb side_cb = c->side_cb;
    void *side_arg = c->side_arg;
    int status = c->status;

    if (c->prev)
        c->prev->next = c->next;
    else
        t->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c);
    if (connect_cb)
        connect_cb(req, NULL, status);
    else if (side_cb)
        side_cb(side_arg, NULL, status);
    transport_maybe_closed(t);
}

static void conn_handle_gone(struct conn *c)
{
    if (--c->handles == 0)
        conn_finish(c);
}

static void on_handle_closed(uv_handle_t *h)
{
    conn_handle_gone(h->data);
}

static void on_tls_closed(struct lbw_tlsio *io)
{
    conn_handle_gone(lbw_tlsio_data(io));
}

/* Closes whatever the connection still holds; it is freed once all of it has closed. */
static void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    if (c->io)
        lbw_tlsio_close(c->io, on_tls_closed);
    if (c->pipe_open)
        uv_close((uv_handle_t *)&c->pipe, on_handle_closed);
}

/* Gives up a connection; a raft dial will report RAFT_NOCONNECTION, a side dial
 * side_status. */
static void dial_fail(struct conn *c, int side_status)
{
    c->status = c->kind == CONN_DIAL_RAFT ? RAFT_NOCONNECTION : side_status;
    conn_close(c);
}

/* Detaches the TLS session for its new owner and closes the rest of the connection. */
static struct lbw_tlsio *hand_over(struct conn *c)
{
    struct lbw_tlsio *io = c->io;
    lbw_tlsio_set_data(io, NULL);
    c->io = NULL;
    c->handles--;
    conn_close(c);
    return io;
}

static void on_timeout(uv_timer_t *timer)
{
    struct conn *c = timer->data;
    unsigned long long ms = (unsigned long long)c->t->timeout_ms;

    switch (c->phase) {
    case PH_CONNECTING:
        break;
    case PH_HANDSHAKE:
        refuse(c, LBW_REFUSED_HANDSHAKE, "no TLS handshake within %llu ms", ms);
        break;
    case PH_PREAMBLE:
        refuse(c, LBW_REFUSED_PREAMBLE, c->kind == CONN_ACCEPT
                                            ? "no channel preamble within %llu ms"
                                            : "channel not accepted within %llu ms", ms);
        break;
    case PH_PUMP:
    case PH_DRAINING:
        conn_close(c);
        return;
    }
    dial_fail(c, UV_ETIMEDOUT);
}

static void start_timer(struct conn *c)
{
    uv_timer_start(&c->timer, on_timeout, c->t->timeout_ms, 0);
}

/* --- the pump ------------------------------------------------------------------------------- */

static void on_pipe_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);
static void on_tls_read(struct lbw_tlsio *io, ssize_t n, const char *data);

static void on_pipe_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = h->data;
    (void)suggested;
    *buf = uv_buf_init(c->t->scratch, sizeof(c->t->scratch));
}

static void on_pipe_written(uv_write_t *req, int status)
{
    struct pipe_write *w = (struct pipe_write *)req;
    struct conn *c = w->c;

    free(w);
    if (c->closing)
        return;
    if (status) {
        conn_close(c);
        return;
    }
    if (c->tls_paused && c->phase == PH_PUMP && c->pipe.write_queue_size <= PUMP_LOW_WATER) {
        c->tls_paused = 0;
        if (lbw_tlsio_read_start(c->io, on_tls_read) != 0)
            conn_close(c);
    }
}

/* Writes plaintext into the pipe: what the socket takes at once, the rest queued as a copy. */
static int pipe_write(struct conn *c, const char *data, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    int n = uv_try_write((uv_stream_t *)&c->pipe, &b, 1);

    if (n >= 0 && (size_t)n == len)
        return 0;
    if (n < 0 && n != UV_EAGAIN)
        return n;
    size_t done = n > 0 ? (size_t)n : 0;
    struct pipe_write *w = malloc(sizeof(*w) + len - done);
    if (w == NULL)
        return UV_ENOMEM;
    w->c = c;
    memcpy(w->data, data + done, len - done);
    b = uv_buf_init(w->data, (unsigned)(len - done));
    int rc = uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, on_pipe_written);
    if (rc)
        free(w);
    return rc;
}

static void on_pipe_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    conn_close(req->data);
}

/* The peer ended its TLS stream: libraft gets what is queued for it, then EOF. */
static void pump_peer_ended(struct conn *c)
{
    c->phase = PH_DRAINING;
    uv_read_stop((uv_stream_t *)&c->pipe);
    c->pipe_shutdown.data = c;
    if (uv_shutdown(&c->pipe_shutdown, (uv_stream_t *)&c->pipe, on_pipe_shutdown) != 0) {
        conn_close(c);
        return;
    }
    start_timer(c);
}

static void on_tls_shutdown(struct lbw_tlsio *io, int status)
{
    (void)status;
    conn_close(lbw_tlsio_data(io));
}

/* libraft closed its end: the peer gets what is queued for it, then close_notify. */
static void pump_raft_ended(struct conn *c)
{
    c->phase = PH_DRAINING;
    lbw_tlsio_read_stop(c->io);
    if (lbw_tlsio_shutdown(c->io, on_tls_shutdown) != 0) {
        conn_close(c);
        return;
    }
    start_timer(c);
}

static void on_tls_read(struct lbw_tlsio *io, ssize_t n, const char *data)
{
    struct conn *c = lbw_tlsio_data(io);

    if (n == UV_EOF) {
        pump_peer_ended(c);
        return;
    }
    if (n < 0 || pipe_write(c, data, (size_t)n) != 0) {
        conn_close(c);
        return;
    }
    c->t->stats.bytes_in += (uint64_t)n;
    note_rx(c->t, c->peer_id);
    if (c->pipe.write_queue_size >= PUMP_HIGH_WATER) {
        lbw_tlsio_read_stop(io);
        c->tls_paused = 1;
    }
}

static void on_tls_written(struct lbw_tlsio *io, int status, void *arg)
{
    struct conn *c = arg;

    if (c->closing)
        return;
    if (status) {
        conn_close(c);
        return;
    }
    if (c->pipe_paused && c->phase == PH_PUMP &&
        lbw_tlsio_write_queue_size(io) <= PUMP_LOW_WATER) {
        c->pipe_paused = 0;
        if (uv_read_start((uv_stream_t *)&c->pipe, on_pipe_alloc, on_pipe_read) != 0)
            conn_close(c);
    }
}

static void on_pipe_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct conn *c = s->data;

    if (n == 0)
        return;
    if (n == UV_EOF) {
        pump_raft_ended(c);
        return;
    }
    if (n < 0) {
        conn_close(c);
        return;
    }
    uv_buf_t b = uv_buf_init(buf->base, (unsigned)n);
    if (lbw_tlsio_write(c->io, &b, 1, on_tls_written, c) != 0) {
        conn_close(c);
        return;
    }
    c->t->stats.bytes_out += (uint64_t)n;
    if (lbw_tlsio_write_queue_size(c->io) >= PUMP_HIGH_WATER) {
        uv_read_stop(s);
        c->pipe_paused = 1;
    }
}

static void free_raft_handle(uv_handle_t *h)
{
    raft_free(h);
}

/* Makes the socketpair, keeps one end and starts pumping; *out is libraft's end. Returns 0,
 * or a negative status (the connection is then left to be closed). */
static int pump_start(struct conn *c, uv_pipe_t **out)
{
    int fds[2];

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
        return -errno;
    uv_pipe_t *theirs = raft_malloc(sizeof(*theirs));
    if (theirs == NULL) {
        close(fds[0]);
        close(fds[1]);
        return UV_ENOMEM;
    }
    uv_pipe_init(c->t->loop, &c->pipe, 0);
    c->pipe.data = c;
    c->pipe_open = 1;
    c->handles++;
    int rc = uv_pipe_open(&c->pipe, fds[0]);
    if (rc) {
        close(fds[0]);
        close(fds[1]);
        raft_free(theirs);
        return rc;
    }
    uv_pipe_init(c->t->loop, theirs, 0);
    rc = uv_pipe_open(theirs, fds[1]);
    if (rc) {
        close(fds[1]);
        uv_close((uv_handle_t *)theirs, free_raft_handle);
        return rc;
    }
    rc = uv_read_start((uv_stream_t *)&c->pipe, on_pipe_alloc, on_pipe_read);
    if (rc == 0)
        rc = lbw_tlsio_read_start(c->io, on_tls_read);
    if (rc) {
        uv_close((uv_handle_t *)theirs, free_raft_handle);
        return rc;
    }
    uv_timer_stop(&c->timer);
    c->phase = PH_PUMP;
    *out = theirs;
    return 0;
}

/* --- accepting ------------------------------------------------------------------------------ */

/* The accepting side's answer: the tag again, in a TLS record of its own. */
static int send_answer(struct conn *c)
{
    uv_buf_t b = uv_buf_init((char *)c->pre, 1);
    return lbw_tlsio_write(c->io, &b, 1, NULL, NULL);
}

static size_t preamble_size(const struct conn *c)
{
    if (c->pre_len == 0 || c->pre[0] == LBW_CHANNEL_SIDE)
        return 1;
    if (c->pre_len < 2)
        return 2;
    return 2 + (size_t)c->pre[1];
}

/* Takes n more preamble bytes. Returns 1 once it is complete, 0 while more is needed, or -1
 * after refusing a bad one. */
static int preamble_take(struct conn *c, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (c->pre_len > 0 && c->pre_len == preamble_size(c)) {
            refuse(c, LBW_REFUSED_PREAMBLE, "%zu unexpected bytes after the preamble", n - i);
            return -1;
        }
        c->pre[c->pre_len++] = p[i];
        if (c->pre_len == 1 && p[i] != LBW_CHANNEL_RAFT && p[i] != LBW_CHANNEL_SIDE) {
            refuse(c, LBW_REFUSED_PREAMBLE, "unknown channel tag 0x%02x", p[i]);
            return -1;
        }
        if (c->pre_len == 2 && c->pre[0] == LBW_CHANNEL_RAFT && p[i] == 0) {
            refuse(c, LBW_REFUSED_PREAMBLE, "empty raft address in the preamble");
            return -1;
        }
    }
    return c->pre_len == preamble_size(c);
}

/* A raft stream: answer, start pumping, give libraft its end. */
static void accept_raft(struct conn *c)
{
    struct transport *t = c->t;
    char address[ADDRESS_MAX + 1];
    struct sockaddr_in sa;
    size_t len = c->pre[1];
    uv_pipe_t *theirs;

    memcpy(address, c->pre + 2, len);
    address[len] = '\0';
    if (strlen(address) != len || parse_address(address, &sa) != 0) {
        refuse(c, LBW_REFUSED_PREAMBLE, "bad raft address in the preamble");
        conn_close(c);
        return;
    }
    if (send_answer(c) != 0 || pump_start(c, &theirs) != 0) {
        conn_close(c);
        return;
    }
    t->stats.accepted++;
    t->accept_cb(t->raft, c->peer_id, address, (uv_stream_t *)theirs);
}

/* A side channel: answer and hand the session to its owner. */
static void accept_side(struct conn *c)
{
    struct transport *t = c->t;
    struct lbw_identity peer = c->identity;

    if (t->on_side_channel == NULL) {
        refuse(c, LBW_REFUSED_PREAMBLE, "side channels are not served here");
        conn_close(c);
        return;
    }
    if (send_answer(c) != 0) {
        conn_close(c);
        return;
    }
    t->stats.accepted++;
    struct lbw_tlsio *io = hand_over(c);
    t->on_side_channel(t->arg, io, &peer);
}

static void on_preamble_read(struct lbw_tlsio *io, ssize_t n, const char *data)
{
    struct conn *c = lbw_tlsio_data(io);

    if (n < 0) {
        /* a peer that leaves without a word (e.g. a dialler that refused us) is no refusal */
        if (c->pre_len > 0)
            refuse(c, LBW_REFUSED_PREAMBLE, "connection ended inside the preamble");
        conn_close(c);
        return;
    }
    note_rx(c->t, c->peer_id);
    int rc = preamble_take(c, (const unsigned char *)data, (size_t)n);
    if (rc < 0) {
        conn_close(c);
        return;
    }
    if (rc == 0)
        return;
    lbw_tlsio_read_stop(io);
    if (c->pre[0] == LBW_CHANNEL_RAFT)
        accept_raft(c);
    else
        accept_side(c);
}

static void on_accept_handshake(struct lbw_tlsio *io, int status)
{
    struct conn *c = lbw_tlsio_data(io);

    if (status) {
        /* a peer that hung up (or a dial cancelled) is gone, not refused */
        if (status == LBW_TLSIO_ETLS)
            refuse_failed_handshake(c);
        conn_close(c);
        return;
    }
    if (check_peer_identity(c) != 0) {
        conn_close(c);
        return;
    }
    c->phase = PH_PREAMBLE;
    if (lbw_tlsio_read_start(io, on_preamble_read) != 0)
        conn_close(c);
}

/* A new connection: a session for it, and its handshake under the timer. Without memory for
 * a session the connection is left in the backlog and libuv stops accepting: a node out of
 * memory takes no more connections. */
static void on_connection(uv_stream_t *server, int status)
{
    struct transport *t = server->data;

    if (status < 0)
        return;
    struct conn *c = conn_new(t, CONN_ACCEPT);
    if (c == NULL)
        return;
    if (lbw_tlsio_new(&c->io, t->loop, t->server_ctx, LBW_TLSIO_SERVER, c) != 0) {
        conn_close(c);
        return;
    }
    c->handles++;
    if (uv_accept(server, lbw_tlsio_stream(c->io)) != 0) {
        conn_close(c);
        return;
    }
    format_peer((uv_tcp_t *)lbw_tlsio_stream(c->io), c->peer, sizeof(c->peer));
    c->phase = PH_HANDSHAKE;
    if (lbw_tlsio_handshake(c->io, on_accept_handshake) != 0) {
        conn_close(c);
        return;
    }
    start_timer(c);
}

/* --- dialling ------------------------------------------------------------------------------- */

/* The channel is up: a side channel goes to the dialler, a raft stream to libraft. */
static void dial_established(struct conn *c)
{
    struct transport *t = c->t;

    if (c->kind == CONN_DIAL_SIDE) {
        lbw_side_dial_cb cb = c->side_cb;
        void *arg = c->side_arg;
        c->side_cb = NULL;
        t->stats.dialled++;
        struct lbw_tlsio *io = hand_over(c);
        cb(arg, io, 0);
        return;
    }
    uv_pipe_t *theirs;
    int rc = pump_start(c, &theirs);
    if (rc) {
        dial_fail(c, rc);
        return;
    }
    struct raft_uv_connect *req = c->req;
    raft_uv_connect_cb cb = c->connect_cb;
    c->connect_cb = NULL;
    t->stats.dialled++;
    cb(req, (uv_stream_t *)theirs, 0);
}

static void on_dial_answer(struct lbw_tlsio *io, ssize_t n, const char *data)
{
    struct conn *c = lbw_tlsio_data(io);

    if (n == LBW_TLSIO_ETLS) {
        /* TLS 1.3: the server judged our certificate after our handshake completed */
        refuse(c, LBW_REFUSED_HANDSHAKE, "TLS handshake failed: %s", lbw_tlsio_error(io));
        dial_fail(c, UV_EACCES);
        return;
    }
    if (n < 0) {
        refuse(c, LBW_REFUSED_PREAMBLE, "closed by the peer before it accepted the channel");
        dial_fail(c, UV_EACCES);
        return;
    }
    lbw_tlsio_read_stop(io);
    if (n != 1 || (unsigned char)data[0] != c->tag) {
        refuse(c, LBW_REFUSED_PREAMBLE, "unexpected answer to the channel preamble");
        dial_fail(c, UV_EACCES);
        return;
    }
    note_rx(c->t, c->peer_id);
    dial_established(c);
}

/* The tag and, for raft, u8 length + our raft address. */
static int send_preamble(struct conn *c)
{
    unsigned char head[2] = {c->tag, 0};
    uv_buf_t bufs[2];
    unsigned n = 1;

    bufs[0] = uv_buf_init((char *)head, 1);
    if (c->tag == LBW_CHANNEL_RAFT) {
        size_t len = strlen(c->t->address);
        head[1] = (unsigned char)len;
        bufs[0].len = 2;
        bufs[1] = uv_buf_init(c->t->address, (unsigned)len);
        n = 2;
    }
    return lbw_tlsio_write(c->io, bufs, n, NULL, NULL);
}

static void on_dial_handshake(struct lbw_tlsio *io, int status)
{
    struct conn *c = lbw_tlsio_data(io);

    if (status != 0 && status != LBW_TLSIO_ETLS) {
        dial_fail(c, status);
        return;
    }
    if (status) {
        refuse_failed_handshake(c);
        dial_fail(c, UV_EACCES);
        return;
    }
    if (check_peer_identity(c) != 0) {
        dial_fail(c, UV_EACCES);
        return;
    }
    c->phase = PH_PREAMBLE;
    int rc = send_preamble(c);
    if (rc == 0)
        rc = lbw_tlsio_read_start(io, on_dial_answer);
    if (rc)
        dial_fail(c, rc);
}

static void on_dial_connected(struct lbw_tlsio *io, int status)
{
    struct conn *c = lbw_tlsio_data(io);

    if (status == 0) {
        c->phase = PH_HANDSHAKE;
        status = lbw_tlsio_handshake(io, on_dial_handshake);
    }
    if (status)
        dial_fail(c, status);
}

/* Starts a dial of node id at address; *out is the connection. Returns 0, or a negative
 * status (nothing will be called back). */
static int dial_start(struct transport *t, enum conn_kind kind, uint64_t id, const char *address,
                      struct conn **out)
{
    struct sockaddr_in sa;

    if (parse_address(address, &sa) != 0)
        return UV_EINVAL;
    struct conn *c = conn_new(t, kind);
    if (c == NULL)
        return UV_ENOMEM;
    snprintf(c->peer, sizeof(c->peer), "%s", address);
    c->peer_id = id;
    c->tag = kind == CONN_DIAL_RAFT ? LBW_CHANNEL_RAFT : LBW_CHANNEL_SIDE;
    int rc = lbw_tlsio_new(&c->io, t->loop, t->client_ctx, LBW_TLSIO_CLIENT, c);
    if (rc) {
        conn_close(c);
        return rc;
    }
    c->handles++;
    rc = lbw_tlsio_connect(c->io, (const struct sockaddr *)&sa, on_dial_connected);
    if (rc) {
        conn_close(c);
        return rc;
    }
    start_timer(c);
    *out = c;
    return 0;
}

/* --- struct raft_uv_transport methods ------------------------------------------------------- */

static int transport_init(struct raft_uv_transport *rt, raft_id id, const char *address)
{
    struct transport *t = rt->impl;
    struct sockaddr_in sa;

    if (id != t->self.id) {
        snprintf(rt->errmsg, sizeof(rt->errmsg), "raft id %llu, but the certificate is node %llu",
                 (unsigned long long)id, (unsigned long long)t->self.id);
        return RAFT_INVALID;
    }
    if (strlen(address) >= sizeof(t->address) || parse_address(address, &sa) != 0) {
        snprintf(rt->errmsg, sizeof(rt->errmsg), "raft address '%.64s' is not a.b.c.d:port",
                 address);
        return RAFT_INVALID;
    }
    snprintf(t->address, sizeof(t->address), "%s", address);
    uv_tcp_init(t->loop, &t->listener);
    t->listener.data = t;
    t->listener_state = LS_READY;
    return 0;
}

static int transport_listen(struct raft_uv_transport *rt, raft_uv_accept_cb cb)
{
    struct transport *t = rt->impl;
    struct sockaddr_in sa;

    parse_address(t->address, &sa); /* checked by init */
    int rc = uv_tcp_bind(&t->listener, (const struct sockaddr *)&sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&t->listener, LISTEN_BACKLOG, on_connection);
    if (rc) {
        snprintf(rt->errmsg, sizeof(rt->errmsg), "listen on %s: %s", t->address,
                 uv_strerror(rc));
        return RAFT_IOERR;
    }
    t->accept_cb = cb;
    return 0;
}

static int transport_connect(struct raft_uv_transport *rt, struct raft_uv_connect *req,
                             raft_id id, const char *address, raft_uv_connect_cb cb)
{
    struct transport *t = rt->impl;
    struct conn *c;

    if (t->closing)
        return RAFT_CANCELED;
    int rc = dial_start(t, CONN_DIAL_RAFT, id, address, &c);
    if (rc == UV_EINVAL) {
        snprintf(rt->errmsg, sizeof(rt->errmsg), "address '%.64s' is not a.b.c.d:port", address);
        return RAFT_INVALID;
    }
    if (rc) {
        snprintf(rt->errmsg, sizeof(rt->errmsg), "connect to %.64s: %s", address,
                 uv_strerror(rc));
        return rc == UV_ENOMEM ? RAFT_NOMEM : RAFT_NOCONNECTION;
    }
    req->cb = cb;
    c->req = req;
    c->connect_cb = cb;
    return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
    struct transport *t = h->data;
    t->listener_state = LS_CLOSED;
    transport_maybe_closed(t);
}

/* Cancels a dial that has not completed, or ends any other connection. */
static void conn_abort(struct conn *c)
{
    if (c->connect_cb)
        c->status = RAFT_CANCELED;
    else if (c->side_cb)
        c->status = UV_ECANCELED;
    conn_close(c);
}

static void transport_close(struct raft_uv_transport *rt, raft_uv_transport_close_cb cb)
{
    struct transport *t = rt->impl;

    t->closing = 1;
    t->close_cb = cb;
    if (t->listener_state == LS_READY) {
        t->listener_state = LS_CLOSING;
        uv_close((uv_handle_t *)&t->listener, on_listener_closed);
    }
    for (struct conn *c = t->conns; c != NULL; c = c->next)
        conn_abort(c);
    transport_maybe_closed(t);
}

/* --- public --------------------------------------------------------------------------------- */

int lbw_transport_init(struct raft_uv_transport *rt, const struct lbw_transport_config *cfg,
                       char *err, size_t errlen)
{
    struct transport *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    t->server_ctx = lbw_tlsio_server_ctx(cfg->cert_file, cfg->key_file, cfg->ca_file, err,
                                         errlen);
    if (t->server_ctx)
        t->client_ctx = lbw_tlsio_client_ctx(cfg->ca_file, 1, cfg->cert_file, cfg->key_file,
                                             err, errlen);
    if (t->client_ctx == NULL)
        goto fail;
    if (lbw_identity_from_cert(SSL_CTX_get0_certificate(t->server_ctx), &t->self) != 0 ||
        t->self.kind != LBW_ID_NODE) {
        snprintf(err, errlen, "%s: not a node certificate (no lbwatch://node/<id> identity)",
                 cfg->cert_file);
        goto fail;
    }
    t->raft = rt;
    t->loop = cfg->loop;
    t->timeout_ms = cfg->handshake_timeout_ms ? cfg->handshake_timeout_ms : DEFAULT_TIMEOUT_MS;
    t->arg = cfg->arg;
    t->on_refusal = cfg->on_refusal;
    t->on_side_channel = cfg->on_side_channel;
    rt->impl = t;
    rt->init = transport_init;
    rt->listen = transport_listen;
    rt->connect = transport_connect;
    rt->close = transport_close;
    return 0;

fail:
    SSL_CTX_free(t->server_ctx);
    SSL_CTX_free(t->client_ctx);
    free(t);
    return -1;
}

void lbw_transport_free(struct raft_uv_transport *rt)
{
    struct transport *t = rt->impl;
    if (t == NULL)
        return;
    SSL_CTX_free(t->server_ctx);
    SSL_CTX_free(t->client_ctx);
    free(t->peers);
    free(t);
    rt->impl = NULL;
}

const struct lbw_identity *lbw_transport_self(const struct raft_uv_transport *rt)
{
    const struct transport *t = rt->impl;
    return &t->self;
}

struct lbw_side_dial *lbw_transport_dial_side(struct raft_uv_transport *rt, uint64_t id,
                                              const char *address, lbw_side_dial_cb cb,
                                              void *arg)
{
    struct transport *t = rt->impl;
    struct conn *c;

    if (t->closing || dial_start(t, CONN_DIAL_SIDE, id, address, &c) != 0)
        return NULL;
    c->side_cb = cb;
    c->side_arg = arg;
    /* the handle is the connection itself, converted back by lbw_transport_cancel_dial */
    return (struct lbw_side_dial *)c;
}

void lbw_transport_cancel_dial(struct lbw_side_dial *d)
{
    struct conn *c = (struct conn *)d;
    if (c->side_cb == NULL)
        return;
    c->status = UV_ECANCELED;
    conn_close(c);
}

void lbw_transport_stats(const struct raft_uv_transport *rt, struct lbw_transport_stats *out)
{
    const struct transport *t = rt->impl;
    *out = t->stats;
}

uint64_t lbw_transport_last_rx(const struct raft_uv_transport *rt, uint64_t id)
{
    const struct transport *t = rt->impl;
    for (size_t i = 0; i < t->n_peers; i++)
        if (t->peers[i].id == id)
            return t->peers[i].last_rx;
    return 0;
}
