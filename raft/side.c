/* side.c - the side channel between cluster nodes: links, frames, HELLO/PING/PONG contact
 * tracking and SUBMIT. See side.h.
 *
 * Owns one struct peer per known node (configured members and anyone who opened a link to
 * us), the outgoing link to each member (redialled one second after it drops), and every
 * accepted link. A link owns its tlsio session and a reassembly buffer for frames.
 */
#include "raft/side.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "raft/transport.h"

#define TICK_MS 500
#define PING_EVERY_MS 1000
#define REDIAL_MS 1000
#define WRITE_QUEUE_MAX (32u << 20)

enum { MSG_HELLO = 1, MSG_PING = 2, MSG_PONG = 3, MSG_SUBMIT = 4 };

struct peer;

struct link {
    struct lbw_side *side;
    struct link *next;
    struct lbw_tlsio *io;
    struct peer *peer;
    int outgoing;
    uint8_t *buf;               /* frame being reassembled */
    size_t len, cap;
};

struct peer {
    struct peer *next;
    struct lbw_side *side;
    uint64_t id;
    char address[64];           /* raft address, "" if not a configured member */
    int member;
    char name[LBW_NAME_MAX];
    char web[LBW_URL_MAX];
    struct link *out;
    struct lbw_side_dial *dial;
    uint64_t next_dial;
    uint64_t last_ping;
    uint64_t last_rx;
    int64_t last_rx_wall_ms;
};

struct lbw_side {
    struct lbw_side_config cfg;
    char web_url[LBW_URL_MAX];
    uint64_t self_id;
    uv_timer_t tick;
    struct peer *peers;
    struct link *links;
    unsigned open;              /* links, dials in progress and the timer still to end */
    int closing;
    void (*close_cb)(void *arg);
    void *close_arg;
    struct lbw_side_stats stats;
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- peers ------------------------------------------------------------------------------ */

static struct peer *find_peer(const struct lbw_side *s, uint64_t id)
{
    for (struct peer *p = s->peers; p; p = p->next)
        if (p->id == id)
            return p;
    return NULL;
}

static struct peer *get_peer(struct lbw_side *s, uint64_t id)
{
    struct peer *p = find_peer(s, id);
    if (p)
        return p;
    p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->side = s;
    p->id = id;
    p->next = s->peers;
    s->peers = p;
    return p;
}

/* ---- sending ------------------------------------------------------------------------------ */

static int send_frame(struct link *l, uint8_t type, const void *body, size_t len)
{
    uint8_t head[5];
    uv_buf_t bufs[2];
    if (len + 1 > LBW_SIDE_FRAME_MAX)
        return -1;
    put_u32(head, (uint32_t)(len + 1));
    head[4] = type;
    bufs[0] = uv_buf_init((char *)head, sizeof(head));
    bufs[1] = uv_buf_init((char *)body, (unsigned)len);
    if (lbw_tlsio_write(l->io, bufs, len ? 2 : 1, NULL, NULL) != 0)
        return -1;
    l->side->stats.frames_out++;
    return 0;
}

static void send_hello(struct link *l)
{
    uint8_t body[2 + LBW_NAME_MAX + LBW_URL_MAX];
    const struct lbw_identity *self = lbw_transport_self(l->side->cfg.transport);
    size_t nlen = strlen(self->name), wlen = strlen(l->side->web_url), n = 0;
    body[n++] = (uint8_t)nlen;
    memcpy(body + n, self->name, nlen);
    n += nlen;
    body[n++] = (uint8_t)wlen;
    memcpy(body + n, l->side->web_url, wlen);
    n += wlen;
    send_frame(l, MSG_HELLO, body, n);
}

static void send_ping(struct link *l, uint64_t now)
{
    uint8_t body[8];
    for (int i = 0; i < 8; i++)
        body[i] = (uint8_t)(now >> (56 - 8 * i));
    send_frame(l, MSG_PING, body, sizeof(body));
}

/* ---- links ------------------------------------------------------------------------------ */

static void maybe_finish_close(struct lbw_side *s)
{
    if (!s->closing || s->open > 0)
        return;
    for (struct peer *p = s->peers, *next; p; p = next) {
        next = p->next;
        free(p);
    }
    void (*cb)(void *) = s->close_cb;
    void *arg = s->close_arg;
    free(s);
    if (cb)
        cb(arg);
}

static void link_closed(struct lbw_tlsio *io)
{
    struct link *l = lbw_tlsio_data(io);
    struct lbw_side *s = l->side;
    free(l->buf);
    free(l);
    s->open--;
    maybe_finish_close(s);
}

static void link_close(struct link *l)
{
    struct lbw_side *s = l->side;
    struct link **pp = &s->links;
    while (*pp && *pp != l)
        pp = &(*pp)->next;
    if (!*pp)
        return; /* already closing */
    *pp = l->next;
    if (l->peer && l->peer->out == l) {
        l->peer->out = NULL;
        l->peer->next_dial = uv_now(s->cfg.loop) + REDIAL_MS;
    }
    s->stats.links_closed++;
    lbw_tlsio_close(l->io, link_closed);
}

/* The HELLO's name is the peer's word; the certificate's is used. Returns -1 if malformed. */
static int read_hello(struct link *l, const uint8_t *b, size_t len)
{
    size_t nlen, wlen;
    if (len < 1 || (nlen = b[0]) + 2 > len || (wlen = b[1 + nlen]) + nlen + 2 != len ||
        wlen >= LBW_URL_MAX)
        return -1;
    memcpy(l->peer->web, b + 2 + nlen, wlen);
    l->peer->web[wlen] = '\0';
    return 0;
}

/* Handles one complete frame; returns -1 if the link was closed. */
static int handle_frame(struct link *l, uint8_t type, const uint8_t *body, size_t len)
{
    struct lbw_side *s = l->side;
    s->stats.frames_in++;
    l->peer->last_rx = uv_now(s->cfg.loop);
    l->peer->last_rx_wall_ms = wall_ms();
    switch (type) {
    case MSG_HELLO:
        if (read_hello(l, body, len) != 0)
            break;
        return 0;
    case MSG_PING:
        if (len != 8)
            break;
        send_frame(l, MSG_PONG, body, len);
        return 0;
    case MSG_PONG:
        return 0;
    case MSG_SUBMIT:
        s->stats.submits_in++;
        if (s->cfg.on_submit && len > 0)
            s->cfg.on_submit(s->cfg.arg, l->peer->id, body, len);
        return 0;
    }
    s->stats.bad_frames++;
    link_close(l);
    return -1;
}

static int reserve(struct link *l, size_t need)
{
    if (need <= l->cap)
        return 0;
    size_t cap = l->cap ? l->cap : 4096;
    while (cap < need)
        cap *= 2;
    uint8_t *p = realloc(l->buf, cap);
    if (!p)
        return -1;
    l->buf = p;
    l->cap = cap;
    return 0;
}

/* Consumes complete frames from the reassembly buffer. */
static void drain_frames(struct link *l)
{
    size_t off = 0;
    while (l->len - off >= 4) {
        uint32_t flen = get_u32(l->buf + off);
        if (flen == 0 || flen > LBW_SIDE_FRAME_MAX) {
            l->side->stats.bad_frames++;
            link_close(l);
            return;
        }
        if (l->len - off - 4 < flen)
            break;
        const uint8_t *f = l->buf + off + 4;
        if (handle_frame(l, f[0], f + 1, flen - 1) != 0)
            return;
        off += 4 + flen;
    }
    memmove(l->buf, l->buf + off, l->len - off);
    l->len -= off;
}

static void on_link_read(struct lbw_tlsio *io, ssize_t n, const char *data)
{
    struct link *l = lbw_tlsio_data(io);
    if (n < 0) {
        link_close(l);
        return;
    }
    if (reserve(l, l->len + (size_t)n) != 0) {
        link_close(l);
        return;
    }
    memcpy(l->buf + l->len, data, (size_t)n);
    l->len += (size_t)n;
    drain_frames(l);
}

static struct link *link_new(struct lbw_side *s, struct lbw_tlsio *io, struct peer *p,
                             int outgoing)
{
    struct link *l = calloc(1, sizeof(*l));
    if (!l) {
        lbw_tlsio_close(io, NULL);
        return NULL;
    }
    l->side = s;
    l->io = io;
    l->peer = p;
    l->outgoing = outgoing;
    l->next = s->links;
    s->links = l;
    s->open++;
    s->stats.links_opened++;
    lbw_tlsio_set_data(io, l);
    if (lbw_tlsio_read_start(io, on_link_read) != 0) {
        link_close(l);
        return NULL;
    }
    send_hello(l);
    return l;
}

void lbw_side_accept(struct lbw_side *s, struct lbw_tlsio *io, const struct lbw_identity *peer)
{
    struct peer *p = s->closing ? NULL : get_peer(s, peer->id);
    if (!p) {
        lbw_tlsio_close(io, NULL);
        return;
    }
    snprintf(p->name, sizeof(p->name), "%s", peer->name);
    link_new(s, io, p, 0);
}

static void on_dialled(void *arg, struct lbw_tlsio *io, int status)
{
    struct peer *p = arg;
    struct lbw_side *s = p->side;
    p->dial = NULL;
    s->open--;
    if (status == 0 && io) {
        struct lbw_identity id;
        if (s->closing || !p->member ||
            lbw_identity_from_cert(SSL_get0_peer_certificate(lbw_tlsio_ssl(io)), &id) != 0) {
            lbw_tlsio_close(io, NULL);
        } else {
            snprintf(p->name, sizeof(p->name), "%s", id.name);
            p->out = link_new(s, io, p, 1);
        }
    } /* on failure the tick redials at next_dial */
    maybe_finish_close(s);
}

static void dial(struct lbw_side *s, struct peer *p, uint64_t now)
{
    p->next_dial = now + REDIAL_MS;
    p->dial = lbw_transport_dial_side(s->cfg.transport, p->id, p->address, on_dialled, p);
    if (p->dial)
        s->open++;
}

static void on_tick(uv_timer_t *t)
{
    struct lbw_side *s = t->data;
    uint64_t now = uv_now(s->cfg.loop);
    for (struct peer *p = s->peers; p; p = p->next) {
        if (!p->member)
            continue;
        if (!p->out && !p->dial && now >= p->next_dial)
            dial(s, p, now);
        if (p->out && now - p->last_ping >= PING_EVERY_MS) {
            send_ping(p->out, now);
            p->last_ping = now;
        }
    }
}

/* ---- the module ------------------------------------------------------------------------- */

int lbw_side_new(struct lbw_side **out, const struct lbw_side_config *cfg)
{
    struct lbw_side *s = calloc(1, sizeof(*s));
    if (!s)
        return -1;
    s->cfg = *cfg;
    snprintf(s->web_url, sizeof(s->web_url), "%s", cfg->web_url ? cfg->web_url : "");
    s->self_id = lbw_transport_self(cfg->transport)->id;
    uv_timer_init(cfg->loop, &s->tick);
    s->tick.data = s;
    uv_timer_start(&s->tick, on_tick, 0, TICK_MS);
    s->open = 1;
    *out = s;
    return 0;
}

static void forget_member(struct peer *p)
{
    p->member = 0;
    p->address[0] = '\0';
    if (p->dial)
        lbw_transport_cancel_dial(p->dial);
    if (p->out)
        link_close(p->out);
}

void lbw_side_set_members(struct lbw_side *s, const struct lbw_side_member *m, size_t n)
{
    for (struct peer *p = s->peers; p; p = p->next) {
        size_t i = 0;
        while (i < n && m[i].id != p->id)
            i++;
        if (p->member && i == n)
            forget_member(p);
    }
    for (size_t i = 0; i < n; i++) {
        if (m[i].id == s->self_id)
            continue;
        struct peer *p = get_peer(s, m[i].id);
        if (!p)
            continue;
        if (p->member && strcmp(p->address, m[i].address) == 0)
            continue;
        if (p->member) /* moved: drop the old link */
            forget_member(p);
        p->member = 1;
        snprintf(p->address, sizeof(p->address), "%s", m[i].address);
        p->next_dial = 0;
    }
}

int lbw_side_submit(struct lbw_side *s, uint64_t id, const uint8_t *entry, size_t len)
{
    struct peer *p = find_peer(s, id);
    if (!p || !p->out || lbw_tlsio_write_queue_size(p->out->io) > WRITE_QUEUE_MAX)
        return -1;
    if (send_frame(p->out, MSG_SUBMIT, entry, len) != 0)
        return -1;
    s->stats.submits_out++;
    return 0;
}

int lbw_side_peer(const struct lbw_side *s, uint64_t id, struct lbw_side_peer *out)
{
    const struct peer *p = find_peer(s, id);
    if (!p)
        return 0;
    memset(out, 0, sizeof(*out));
    out->id = p->id;
    snprintf(out->name, sizeof(out->name), "%s", p->name);
    snprintf(out->web, sizeof(out->web), "%s", p->web);
    out->link_up = p->out != NULL;
    out->last_rx = p->last_rx;
    out->last_rx_wall_ms = p->last_rx_wall_ms;
    return 1;
}

void lbw_side_stats(const struct lbw_side *s, struct lbw_side_stats *out) { *out = s->stats; }

static void tick_closed(uv_handle_t *h)
{
    struct lbw_side *s = h->data;
    s->open--;
    maybe_finish_close(s);
}

void lbw_side_close(struct lbw_side *s, void (*cb)(void *arg), void *arg)
{
    if (!s || s->closing)
        return;
    s->closing = 1;
    s->close_cb = cb;
    s->close_arg = arg;
    for (struct peer *p = s->peers; p; p = p->next)
        if (p->dial)
            lbw_transport_cancel_dial(p->dial);
    while (s->links)
        link_close(s->links);
    uv_close((uv_handle_t *)&s->tick, tick_closed);
}
