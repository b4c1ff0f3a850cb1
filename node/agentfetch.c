/* agentfetch.c - one pull of an agent: resolve, connect, mutual TLS, PULL, BATCH... END. See
 * agentfetch.h.
 *
 * A fetch owns a timer (the whole pull), a getaddrinfo request while resolving and a TLS
 * session once connecting; it is freed when all of them have finished. It reports once, when
 * it ends (finish), unless cancelled first.
 */
#include "node/agentfetch.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probes/tlsio.h"
#include "raft/batch.h"

struct lbw_agentfetch {
    struct lbw_agentfetch_config cfg;
    uv_timer_t timer;
    uv_getaddrinfo_t resolve;
    struct lbw_tlsio *io;
    struct lbw_agent_decoder dec;
    int handles;                /* timer, resolve request, TLS session still to finish */
    int done;                   /* reported, or cancelled: nothing more is reported */
    uint64_t last_seq;
    struct lbw_agentfetch_result r;
};

static void release(struct lbw_agentfetch *f)
{
    if (--f->handles > 0)
        return;
    lbw_agent_decoder_free(&f->dec);
    free(f);
}

static void on_timer_closed(uv_handle_t *h) { release(h->data); }
static void on_tls_closed(struct lbw_tlsio *io) { release(lbw_tlsio_data(io)); }

/* Stops everything still running; the fetch is freed once it has. */
static void shut(struct lbw_agentfetch *f)
{
    if (!uv_is_closing((uv_handle_t *)&f->timer))
        uv_close((uv_handle_t *)&f->timer, on_timer_closed);
    if (f->io) {
        lbw_tlsio_close(f->io, on_tls_closed);
        f->io = NULL;
    }
    uv_cancel((uv_req_t *)&f->resolve); /* fails harmlessly when not resolving */
}

/* Ends the pull: reports the result (ok, or the error) and shuts down. */
static void finish(struct lbw_agentfetch *f, int ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void finish(struct lbw_agentfetch *f, int ok, const char *fmt, ...)
{
    va_list ap;
    if (f->done)
        return;
    f->done = 1;
    f->r.ok = ok;
    va_start(ap, fmt);
    vsnprintf(f->r.error, sizeof(f->r.error), fmt, ap);
    va_end(ap);
    f->cfg.on_done(f->cfg.arg, &f->r);
    shut(f);
}

static void refuse(struct lbw_agentfetch *f, enum lbw_refusal kind, const char *reason)
{
    f->r.refused = 1;
    f->r.refusal = kind;
    finish(f, 0, "%s", reason);
}

static void on_timeout(uv_timer_t *t)
{
    struct lbw_agentfetch *f = t->data;
    finish(f, 0, "no complete answer within %llu ms", (unsigned long long)f->cfg.timeout_ms);
}

/* ---- the answer -------------------------------------------------------------------------- */

/* A BATCH frame: a signed entry of this agent, next in sequence. */
static int take_batch(struct lbw_agentfetch *f, const uint8_t *body, size_t len)
{
    struct lbw_identity origin;
    uint8_t type;
    uint64_t seq;
    if (lbw_entry_peek(body, len, &type, &origin, &seq) < 0 || type != LBW_ENTRY_BATCH) {
        finish(f, 0, "protocol error: a BATCH frame that holds no signed batch");
        return -1;
    }
    if (origin.kind != LBW_ID_AGENT || strcmp(origin.name, f->cfg.agent) != 0) {
        finish(f, 0, "protocol error: a batch of %s %s, not of agent %s",
               origin.kind == LBW_ID_AGENT ? "agent" : "node", origin.name, f->cfg.agent);
        return -1;
    }
    if (seq <= f->last_seq) {
        finish(f, 0, "protocol error: batch %llu after %llu", (unsigned long long)seq,
               (unsigned long long)f->last_seq);
        return -1;
    }
    if (f->r.batches > 0 && f->r.bytes + len > (size_t)f->cfg.max_bytes + LBW_AGENT_FRAME_MAX) {
        finish(f, 0, "protocol error: more than the %u bytes asked for", f->cfg.max_bytes);
        return -1;
    }
    f->last_seq = seq;
    f->r.batches++;
    f->r.bytes += len;
    if (f->cfg.on_batch(f->cfg.arg, body, len, seq) != 0) {
        finish(f, 0, "stopped by the receiver");
        return -1;
    }
    return 0;
}

/* One frame. Returns 0 to read on, -1 when the pull has ended. */
static int take_frame(struct lbw_agentfetch *f, uint8_t type, const uint8_t *body, size_t len)
{
    char reason[LBW_AGENT_ERROR_MAX + 1];
    switch (type) {
    case LBW_AGENT_BATCH:
        return take_batch(f, body, len);
    case LBW_AGENT_END:
        if (lbw_agent_end_decode(body, len, &f->r.end) < 0) {
            finish(f, 0, "protocol error: malformed END");
            return -1;
        }
        finish(f, 1, "%s", "");
        return -1;
    case LBW_AGENT_ERROR:
        if (lbw_agent_error_decode(body, len, reason) < 0)
            snprintf(reason, sizeof(reason), "(unreadable)");
        finish(f, 0, "the agent answered: %s", reason);
        return -1;
    default:
        finish(f, 0, "protocol error: unknown frame type %u", type);
        return -1;
    }
}

static void on_read(struct lbw_tlsio *io, ssize_t n, const char *data)
{
    struct lbw_agentfetch *f = lbw_tlsio_data(io);
    uint8_t type;
    const uint8_t *body;
    size_t len;
    int rc;
    if (n < 0) {
        finish(f, 0, "connection ended before END: %s",
               n == UV_EOF ? "closed by the agent" : lbw_tlsio_error(io));
        return;
    }
    if (lbw_agent_decoder_feed(&f->dec, data, (size_t)n) < 0) {
        finish(f, 0, "out of memory");
        return;
    }
    while ((rc = lbw_agent_decoder_next(&f->dec, &type, &body, &len)) > 0)
        if (take_frame(f, type, body, len) < 0)
            return;
    if (rc < 0)
        finish(f, 0, "protocol error: a frame length of 0 or over %u bytes",
               LBW_AGENT_FRAME_MAX);
}

/* ---- getting there ----------------------------------------------------------------------- */

static void on_handshake(struct lbw_tlsio *io, int status)
{
    struct lbw_agentfetch *f = lbw_tlsio_data(io);
    struct lbw_identity expect = {.kind = LBW_ID_AGENT}, id;
    enum lbw_refusal kind;
    char reason[256];
    if (status == LBW_TLSIO_ETLS) {
        kind = lbw_peer_handshake_refusal(lbw_tlsio_ssl(io), 0, lbw_tlsio_error(io), reason,
                                          sizeof(reason));
        refuse(f, kind, reason);
        return;
    }
    if (status) {
        finish(f, 0, "TLS handshake: %s", lbw_tlsio_error(io));
        return;
    }
    snprintf(expect.name, sizeof(expect.name), "%s", f->cfg.agent);
    if (lbw_peer_identity(lbw_tlsio_ssl(io), LBW_ID_AGENT, &expect, &id, &kind, reason,
                          sizeof(reason)) != 0) {
        refuse(f, kind, reason);
        return;
    }
    uint8_t frame[LBW_AGENT_FRAME_HEAD + LBW_AGENT_PULL_BYTES];
    struct lbw_agent_pull req = {LBW_AGENT_PROTO_VERSION, f->cfg.after, f->cfg.max_bytes};
    uv_buf_t b = uv_buf_init((char *)frame, (unsigned)lbw_agent_pull_encode(&req, frame));
    if (lbw_tlsio_write(io, &b, 1, NULL, NULL) != 0 || lbw_tlsio_read_start(io, on_read) != 0)
        finish(f, 0, "cannot send PULL: %s", lbw_tlsio_error(io));
}

static void on_connected(struct lbw_tlsio *io, int status)
{
    struct lbw_agentfetch *f = lbw_tlsio_data(io);
    if (status == 0)
        status = lbw_tlsio_handshake(io, on_handshake);
    if (status)
        finish(f, 0, "connect to %s:%u: %s", f->cfg.host, f->cfg.port, lbw_tlsio_error(io));
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct lbw_agentfetch *f = req->data;
    int rc = status;
    if (!f->done && status == 0) {
        rc = lbw_tlsio_new(&f->io, f->cfg.loop, f->cfg.ctx, LBW_TLSIO_CLIENT, f);
        if (rc == 0) {
            f->handles++;
            rc = lbw_tlsio_connect(f->io, res->ai_addr, on_connected);
        }
    }
    uv_freeaddrinfo(res);
    if (!f->done && rc != 0)
        finish(f, 0, "%s %s: %s", status ? "resolve" : "connect to", f->cfg.host,
               uv_strerror(rc));
    release(f); /* the request is over */
}

struct lbw_agentfetch *lbw_agentfetch_start(const struct lbw_agentfetch_config *cfg)
{
    struct lbw_agentfetch *f = calloc(1, sizeof(*f));
    char port[8];
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    if (!f)
        return NULL;
    f->cfg = *cfg;
    f->last_seq = cfg->after;
    lbw_agent_decoder_init(&f->dec, LBW_AGENT_FRAME_MAX);
    snprintf(port, sizeof(port), "%u", cfg->port);
    f->resolve.data = f;
    if (uv_getaddrinfo(cfg->loop, &f->resolve, on_resolved, cfg->host, port, &hints) != 0) {
        lbw_agent_decoder_free(&f->dec);
        free(f);
        return NULL;
    }
    f->handles = 2;
    uv_timer_init(cfg->loop, &f->timer);
    f->timer.data = f;
    uv_timer_start(&f->timer, on_timeout, cfg->timeout_ms, 0);
    return f;
}

void lbw_agentfetch_cancel(struct lbw_agentfetch *f)
{
    if (f->done)
        return;
    f->done = 1;
    shut(f);
}
