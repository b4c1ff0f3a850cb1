/* test_transport.c - raft/transport for real, in one process on 127.0.0.1, with certificates
 * crafted by lbw_pki_make_cert: raft streams both ways (4 MiB each way at once, EOF from either
 * end), back-pressure towards a reader that does not read, EOF that never overtakes bytes
 * still queued inside a pump, close() with streams open and with dials in flight (cancelled,
 * called back before close completes), side channels handed over and cancelled, every refusal
 * kind on the side that refuses (no client certificate, another CA, expired either way, an
 * agent certificate, the wrong node behind an address, a silent peer, bad preambles), the
 * configuration checks, and a three-node libraft cluster replicating a few hundred entries
 * over the transport.
 *
 * The raw tests play libraft's part: they call the transport's methods and own the streams
 * it hands over, as libraft does (raft_malloc'd, uv_close'd and raft_free'd). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "node/pki.h"
#include "probes/tlsio.h"
#include "raft/transport.h"
#include "tests/support/testutil.h"

#define DAY 86400
#define WAIT_MS 15000               /* bound of any single wait */
#define SHORT_TIMEOUT_MS 400        /* handshake timeout where a test waits for it */
#define BULK (4u << 20)             /* bytes each way through a raft stream */
#define ENTRIES 300                 /* entries the cluster replicates */

/* A certificate made for the suite, with its PEM files. */
struct crafted {
    X509 *cert;
    EVP_PKEY *key;
    char crt[512];
    char keyf[512];
};

static struct {
    char dir[256];
    struct crafted ca, other_ca;
    struct crafted node[4];         /* 1..3: cluster nodes */
    struct crafted stranger;        /* node 4, issued by another CA */
    struct crafted expired;         /* node 5, expired */
    struct crafted agent;           /* an agent certificate of the cluster CA */
} fx;

/* --- fixture -------------------------------------------------------------------------------- */

static int craft(struct crafted *c, const char *file, const char *cn, int is_ca, int64_t nb,
                 int64_t na, const struct lbw_identity *id, const struct crafted *issuer)
{
    char err[256];
    struct lbw_cert_spec spec = {
        .cn = cn, .is_ca = is_ca, .not_before = nb, .not_after = na, .identity = id,
        .key_alg = LBW_KEY_EC_P256,
    };
    if (!is_ca)
        spec.ips[0] = "127.0.0.1";
    if (lbw_pki_make_cert(&spec, issuer ? issuer->cert : NULL, issuer ? issuer->key : NULL,
                          &c->cert, &c->key, err, sizeof(err)) != 0) {
        fprintf(stderr, "craft %s: %s\n", file, err);
        return -1;
    }
    snprintf(c->crt, sizeof(c->crt), "%s/%s.crt", fx.dir, file);
    snprintf(c->keyf, sizeof(c->keyf), "%s/%s.key", fx.dir, file);
    if (lbw_pki_write_cert(c->crt, c->cert, err, sizeof(err)) != 0 ||
        lbw_pki_write_key(c->keyf, c->key, err, sizeof(err)) != 0) {
        fprintf(stderr, "write %s: %s\n", file, err);
        return -1;
    }
    return 0;
}

static int craft_node(struct crafted *c, uint64_t id, int64_t nb, int64_t na,
                      const struct crafted *issuer)
{
    struct lbw_identity ident = {.kind = LBW_ID_NODE, .id = id};
    snprintf(ident.name, sizeof(ident.name), "node%llu", (unsigned long long)id);
    return craft(c, ident.name, ident.name, 0, nb, na, &ident, issuer);
}

static int suite_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    if (tu_tmpdir("lbw-transport", fx.dir, sizeof(fx.dir)) != 0)
        return -1;
    int64_t now = (int64_t)time(NULL);
    struct lbw_identity agent = {.kind = LBW_ID_AGENT, .name = "lb1"};
    if (craft(&fx.ca, "ca", "lbwatch test CA", 1, now - DAY, now + 365 * DAY, NULL, NULL) ||
        craft(&fx.other_ca, "other-ca", "another CA", 1, now - DAY, now + 365 * DAY, NULL,
              NULL))
        return -1;
    for (uint64_t id = 1; id <= 3; id++)
        if (craft_node(&fx.node[id], id, now - 3600, now + 30 * DAY, &fx.ca))
            return -1;
    return craft_node(&fx.stranger, 4, now - 3600, now + 30 * DAY, &fx.other_ca) ||
           craft_node(&fx.expired, 5, now - 30 * DAY, now - DAY, &fx.ca) ||
           craft(&fx.agent, "agent", "lb1", 0, now - 3600, now + 30 * DAY, &agent, &fx.ca);
}

static int suite_teardown(void **state)
{
    (void)state;
    struct crafted *all[] = {&fx.ca, &fx.other_ca, &fx.node[1], &fx.node[2], &fx.node[3],
                             &fx.stranger, &fx.expired, &fx.agent};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        X509_free(all[i]->cert);
        EVP_PKEY_free(all[i]->key);
    }
    tu_rmrf(fx.dir);
    return 0;
}

/* --- running the loop ----------------------------------------------------------------------- */

static void on_bound(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

/* Runs the loop until cond(arg) holds or ms pass. Returns cond(arg). */
static int run_until(uv_loop_t *loop, int (*cond)(void *), void *arg, uint64_t ms)
{
    uv_timer_t bound;
    int expired = 0;

    uv_timer_init(loop, &bound);
    bound.data = &expired;
    uv_timer_start(&bound, on_bound, ms, 0);
    while (!cond(arg) && !expired)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&bound, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return cond(arg);
}

static int is_set(void *p)
{
    return *(int *)p != 0;
}

static int never(void *p)
{
    (void)p;
    return 0;
}

/* Runs the loop for ms whatever happens. */
static void run_for(uv_loop_t *loop, uint64_t ms)
{
    run_until(loop, never, NULL, ms);
}

/* Runs the loop until every handle has closed, then closes it. */
static void loop_finish(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

/* --- a transport under test ----------------------------------------------------------------- */

#define MAX_ACCEPTED 4

struct tnode {
    struct raft_uv_transport rt;
    uv_loop_t *loop;
    uint64_t id;
    char address[32];
    int refused[LBW_REFUSAL_KINDS];
    int refusals;
    enum lbw_refusal last_kind;
    char last_reason[256];
    char last_peer[64];
    uv_stream_t *accepted[MAX_ACCEPTED];    /* raft streams handed over by accept */
    raft_id accepted_id[MAX_ACCEPTED];
    char accepted_address[MAX_ACCEPTED][64];
    int n_accepted;
    struct lbw_tlsio *side;                 /* the last side channel accepted */
    struct lbw_identity side_peer;
    int closed;
};

static void record_refusal(void *arg, const char *peer, enum lbw_refusal kind,
                           const char *reason)
{
    struct tnode *n = arg;
    assert_true((unsigned)kind < LBW_REFUSAL_KINDS);
    n->refused[kind]++;
    n->refusals++;
    n->last_kind = kind;
    snprintf(n->last_reason, sizeof(n->last_reason), "%s", reason);
    snprintf(n->last_peer, sizeof(n->last_peer), "%s", peer);
}

static void record_side_channel(void *arg, struct lbw_tlsio *io, const struct lbw_identity *peer)
{
    struct tnode *n = arg;
    assert_null(n->side);
    n->side = io;
    n->side_peer = *peer;
}

/* The libraft side of accepting: keep the stream. */
static void record_accept(struct raft_uv_transport *rt, raft_id id, const char *address,
                          uv_stream_t *stream)
{
    struct tnode *n = rt->data;
    assert_true(n->n_accepted < MAX_ACCEPTED);
    n->accepted[n->n_accepted] = stream;
    n->accepted_id[n->n_accepted] = id;
    snprintf(n->accepted_address[n->n_accepted], sizeof(n->accepted_address[0]), "%s", address);
    n->n_accepted++;
}

/* lbw_transport_init with cert, and the address of a free port. */
static void tnode_make(struct tnode *n, uv_loop_t *loop, const struct crafted *cert,
                       uint64_t id, uint64_t timeout_ms)
{
    char err[256];
    struct lbw_transport_config cfg = {
        .loop = loop, .ca_file = fx.ca.crt, .cert_file = cert->crt, .key_file = cert->keyf,
        .handshake_timeout_ms = timeout_ms, .arg = n, .on_refusal = record_refusal,
        .on_side_channel = record_side_channel,
    };
    memset(n, 0, sizeof(*n));
    n->loop = loop;
    n->id = id;
    if (lbw_transport_init(&n->rt, &cfg, err, sizeof(err)) != 0)
        fail_msg("transport init: %s", err);
    assert_int_equal(lbw_transport_self(&n->rt)->id, id);
    snprintf(n->address, sizeof(n->address), "127.0.0.1:%u", tu_free_port());
}

/* As libraft would: make, init with its id and address, and listen. */
static void tnode_start(struct tnode *n, uv_loop_t *loop, const struct crafted *cert,
                        uint64_t id, uint64_t timeout_ms)
{
    tnode_make(n, loop, cert, id, timeout_ms);
    n->rt.data = n;
    assert_int_equal(n->rt.init(&n->rt, id, n->address), 0);
    assert_int_equal(n->rt.listen(&n->rt, record_accept), 0);
}

static void on_transport_closed(struct raft_uv_transport *rt)
{
    struct tnode *n = rt->data;
    n->closed = 1;
}

/* As libraft would: close, wait for the callback, free. */
static void tnode_stop(struct tnode *n)
{
    n->rt.close(&n->rt, on_transport_closed);
    assert_int_equal(n->closed, 0);
    assert_true(run_until(n->loop, is_set, &n->closed, WAIT_MS));
    lbw_transport_free(&n->rt);
}

/* --- raft connects, as libraft makes them ----------------------------------------------------- */

struct dial {
    struct raft_uv_connect req;
    int done;
    int status;
    uv_stream_t *stream;
};

static void on_dialled(struct raft_uv_connect *req, uv_stream_t *stream, int status)
{
    struct dial *d = req->data;
    assert_int_equal(d->done, 0);
    d->done = 1;
    d->status = status;
    d->stream = stream;
}

static void dial(struct tnode *from, struct dial *d, uint64_t id, const char *address)
{
    memset(d, 0, sizeof(*d));
    d->req.data = d;
    assert_int_equal(from->rt.connect(&from->rt, &d->req, id, address, on_dialled), 0);
    assert_int_equal(d->done, 0); /* never inside the call */
}

static int dial_done(void *p)
{
    return ((struct dial *)p)->done;
}

static void free_raft_handle(uv_handle_t *h)
{
    raft_free(h);
}

/* --- one end of a raft stream, as libraft holds it -------------------------------------------- */

struct end {
    uv_stream_t *s;
    unsigned char send_seed, recv_seed;
    char *out;                  /* what this end writes */
    uv_write_t wreq;
    int write_done, write_status;
    size_t got;
    size_t bad;
    int read_end;               /* 0 while reading, else how reading ended */
    char buf[65536];
};

static unsigned char pattern(unsigned char seed, size_t i)
{
    return (unsigned char)((i * 131 + seed) ^ (i >> 12));
}

static void end_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct end *e = h->data;
    (void)suggested;
    *buf = uv_buf_init(e->buf, sizeof(e->buf));
}

static void end_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct end *e = s->data;
    if (n == 0)
        return;
    if (n < 0) {
        e->read_end = (int)n;
        uv_read_stop(s);
        return;
    }
    for (ssize_t i = 0; i < n; i++)
        e->bad += (unsigned char)buf->base[i] != pattern(e->recv_seed, e->got + (size_t)i);
    e->got += (size_t)n;
}

static void end_written(uv_write_t *req, int status)
{
    struct end *e = req->data;
    e->write_done = 1;
    e->write_status = status;
    free(e->out);
    e->out = NULL;
}

/* Starts reading, and writing len bytes of its pattern. */
static void end_start(struct end *e, uv_stream_t *s, unsigned char send_seed,
                      unsigned char recv_seed, size_t len)
{
    memset(e, 0, offsetof(struct end, buf));
    e->s = s;
    s->data = e;
    e->send_seed = send_seed;
    e->recv_seed = recv_seed;
    assert_int_equal(uv_read_start(s, end_alloc, end_read), 0);
    if (len == 0)
        return;
    e->out = malloc(len);
    assert_non_null(e->out);
    for (size_t i = 0; i < len; i++)
        e->out[i] = (char)pattern(send_seed, i);
    uv_buf_t b = uv_buf_init(e->out, (unsigned)len);
    e->wreq.data = e;
    assert_int_equal(uv_write(&e->wreq, s, &b, 1, end_written), 0);
}

/* As libraft closes its streams. */
static void end_close(struct end *e)
{
    uv_close((uv_handle_t *)e->s, free_raft_handle);
}

struct pair_wait {
    struct end *a, *b;
    size_t want;
};

static int both_received(void *p)
{
    struct pair_wait *w = p;
    return w->a->got >= w->want && w->b->got >= w->want && w->a->write_done &&
           w->b->write_done;
}

static int read_ended(void *p)
{
    return ((struct end *)p)->read_end != 0;
}

/* --- raw transport: raft streams ------------------------------------------------------------ */

/* Connects from b to a and returns both ends (dialler's, acceptor's). */
static void connect_pair(struct tnode *a, struct tnode *b, struct dial *d, uv_stream_t **dialled,
                         uv_stream_t **accepted)
{
    int before = a->n_accepted;
    dial(b, d, a->id, a->address);
    assert_true(run_until(a->loop, dial_done, d, WAIT_MS));
    assert_int_equal(d->status, 0);
    assert_non_null(d->stream);
    assert_int_equal(d->stream->type, UV_NAMED_PIPE);
    assert_int_equal(a->n_accepted, before + 1); /* handed over before the answer was sent */
    assert_int_equal(a->accepted_id[before], b->id);    /* from the certificate */
    assert_string_equal(a->accepted_address[before], b->address);
    assert_int_equal(a->accepted[before]->type, UV_NAMED_PIPE);
    *dialled = d->stream;
    *accepted = a->accepted[before];
}

static void raft_stream_carries_bytes_both_ways(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct tnode a, b;
    struct dial d;
    uv_stream_t *ds, *as;
    static struct end de, ae;
    struct lbw_transport_stats sa, sb;

    assert_int_equal(uv_loop_init(&loop), 0);
    tnode_start(&a, &loop, &fx.node[1], 1, 0);
    tnode_start(&b, &loop, &fx.node[2], 2, 0);

    /* 4 MiB each way at once; the dialler closes first and the acceptor sees EOF */
    connect_pair(&a, &b, &d, &ds, &as);
    end_start(&de, ds, 11, 22, BULK);
    end_start(&ae, as, 22, 11, BULK);
    struct pair_wait w = {&de, &ae, BULK};
    assert_true(run_until(&loop, both_received, &w, WAIT_MS));
    assert_int_equal(de.write_status, 0);
    assert_int_equal(ae.write_status, 0);
    assert_int_equal(de.got, BULK);
    assert_int_equal(ae.got, BULK);
    assert_int_equal(de.bad, 0);
    assert_int_equal(ae.bad, 0);
    end_close(&de);
    assert_true(run_until(&loop, read_ended, &ae, WAIT_MS));
    assert_int_equal(ae.read_end, UV_EOF);
    assert_int_equal(ae.got, BULK);
    end_close(&ae);

    /* a second stream: the acceptor writes and closes; the dialler gets it all, then EOF */
    connect_pair(&a, &b, &d, &ds, &as);
    end_start(&de, ds, 33, 44, 0);
    end_start(&ae, as, 44, 33, 100000);
    assert_true(run_until(&loop, is_set, &ae.write_done, WAIT_MS));
    end_close(&ae);
    assert_true(run_until(&loop, read_ended, &de, WAIT_MS));
    assert_int_equal(de.read_end, UV_EOF);
    assert_int_equal(de.got, 100000);
    assert_int_equal(de.bad, 0);
    end_close(&de);

    lbw_transport_stats(&a.rt, &sa);
    lbw_transport_stats(&b.rt, &sb);
    assert_int_equal(sa.accepted, 2);
    assert_int_equal(sa.dialled, 0);
    assert_int_equal(sb.dialled, 2);
    assert_int_equal(sb.accepted, 0);
    assert_int_equal(sa.bytes_in, BULK);
    assert_int_equal(sa.bytes_out, BULK + 100000);
    assert_int_equal(sb.bytes_out, BULK);
    assert_int_equal(sb.bytes_in, BULK + 100000);
    assert_true(lbw_transport_last_rx(&a.rt, 2) > 0);
    assert_true(lbw_transport_last_rx(&b.rt, 1) > 0);
    assert_int_equal(lbw_transport_last_rx(&a.rt, 3), 0);
    assert_int_equal(a.refusals + b.refusals, 0);

    tnode_stop(&a);
    tnode_stop(&b);
    loop_finish(&loop);
}

/* back-pressure: while libraft does not read an accepted stream, the pumps stop taking
 * bytes from the dialler's end instead of buffering them; reading again gets every byte */

#define FLOOD (64u << 20)

static int got_flood(void *p)
{
    return ((struct end *)p)->got >= FLOOD;
}

static void raft_stream_back_pressure(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct tnode a, b;
    struct dial d;
    uv_stream_t *ds, *as;
    static struct end de, ae;
    struct lbw_transport_stats sb;
    uint64_t before = UINT64_MAX;

    assert_int_equal(uv_loop_init(&loop), 0);
    tnode_start(&a, &loop, &fx.node[1], 1, 0);
    tnode_start(&b, &loop, &fx.node[2], 2, 0);
    connect_pair(&a, &b, &d, &ds, &as);
    end_start(&de, ds, 5, 6, FLOOD);
    end_start(&ae, as, 6, 5, 0);
    uv_read_stop(as);

    /* wait until the dialler's pump stops taking bytes */
    for (int i = 0; i < 50; i++) {
        run_for(&loop, 200);
        lbw_transport_stats(&b.rt, &sb);
        if (sb.bytes_out == before)
            break;
        before = sb.bytes_out;
    }
    assert_int_equal(sb.bytes_out, before);
    assert_true(sb.bytes_out < FLOOD / 2);
    assert_int_equal(de.write_done, 0);

    assert_int_equal(uv_read_start(as, end_alloc, end_read), 0);
    assert_true(run_until(&loop, got_flood, &ae, 4 * WAIT_MS));
    assert_int_equal(ae.got, FLOOD);
    assert_int_equal(ae.bad, 0);
    assert_true(run_until(&loop, is_set, &de.write_done, WAIT_MS));
    assert_int_equal(de.write_status, 0);
    end_close(&de);
    end_close(&ae);
    tnode_stop(&a);
    tnode_stop(&b);
    loop_finish(&loop);
}

/* EOF never overtakes bytes still queued inside the transport */

#define QUEUED (800u << 10)     /* more than a socketpair buffers, less than a pump queues */
#define TRICKLE (16u << 20)
#define SINK_RCVBUF 65536

static void shut_then_close(uv_shutdown_t *req, int status)
{
    assert_int_equal(status, 0);
    uv_close((uv_handle_t *)req->handle, free_raft_handle);
}

/* The dialler's pump reads the TLS EOF while bytes for libraft still wait in its queue: the
 * acceptor's end writes more than a socketpair holds and closes before the dialler's end
 * reads anything. */
static void eof_after_bytes_queued_for_raft(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct tnode a, b;
    struct dial d;
    uv_stream_t *ds, *as;
    static struct end de, ae;
    uv_shutdown_t shut;

    assert_int_equal(uv_loop_init(&loop), 0);
    tnode_start(&a, &loop, &fx.node[1], 1, 0);
    tnode_start(&b, &loop, &fx.node[2], 2, 0);
    connect_pair(&a, &b, &d, &ds, &as);
    end_start(&de, ds, 7, 8, 0);
    uv_read_stop(ds);
    end_start(&ae, as, 8, 7, QUEUED);
    assert_int_equal(uv_shutdown(&shut, as, shut_then_close), 0);
    run_for(&loop, 300);
    assert_int_equal(uv_read_start(ds, end_alloc, end_read), 0);
    assert_true(run_until(&loop, read_ended, &de, WAIT_MS));
    assert_int_equal(de.read_end, UV_EOF);
    assert_int_equal(de.got, QUEUED);
    assert_int_equal(de.bad, 0);
    end_close(&de);
    tnode_stop(&a);
    tnode_stop(&b);
    loop_finish(&loop);
}

/* A dialler spoken by hand, with a small receive buffer: after the raft preamble and the
 * answer it holds off for a while, then reads the plaintext in fits. */
struct sink {
    struct lbw_tlsio *io;
    SSL_CTX *ctx;
    char preamble[64];
    size_t preamble_len;
    int answered;
    size_t got, bad, since_pause;
    int read_end;
    uv_timer_t pause;
    int closed;
};

static void sink_read(struct lbw_tlsio *io, ssize_t n, const char *data);

static void sink_resume(uv_timer_t *t)
{
    struct sink *k = t->data;
    assert_int_equal(lbw_tlsio_read_start(k->io, sink_read), 0);
}

static void sink_read(struct lbw_tlsio *io, ssize_t n, const char *data)
{
    struct sink *k = lbw_tlsio_data(io);
    uint64_t pause_ms = 2;

    if (n < 0) {
        k->read_end = (int)n;
        return;
    }
    if (!k->answered) {
        assert_int_equal(n, 1);
        assert_int_equal(data[0], LBW_CHANNEL_RAFT);
        k->answered = 1;
        pause_ms = 300;
    } else {
        for (ssize_t i = 0; i < n; i++)
            k->bad += (unsigned char)data[i] != pattern(12, k->got + (size_t)i);
        k->got += (size_t)n;
        k->since_pause += (size_t)n;
        if (k->since_pause < (64u << 10))
            return;
    }
    k->since_pause = 0;
    lbw_tlsio_read_stop(io);
    uv_timer_start(&k->pause, sink_resume, pause_ms, 0);
}

static void sink_handshake(struct lbw_tlsio *io, int status)
{
    struct sink *k = lbw_tlsio_data(io);
    uv_buf_t b = uv_buf_init(k->preamble, (unsigned)k->preamble_len);
    assert_int_equal(status, 0);
    assert_int_equal(lbw_tlsio_write(io, &b, 1, NULL, NULL), 0);
    assert_int_equal(lbw_tlsio_read_start(io, sink_read), 0);
}

static void sink_connected(struct lbw_tlsio *io, int status)
{
    int size = SINK_RCVBUF;
    assert_int_equal(status, 0);
    assert_int_equal(uv_recv_buffer_size((uv_handle_t *)lbw_tlsio_stream(io), &size), 0);
    assert_int_equal(lbw_tlsio_handshake(io, sink_handshake), 0);
}

static void sink_closed(struct lbw_tlsio *io)
{
    struct sink *k = lbw_tlsio_data(io);
    k->closed = 1;
}

static int sink_ended(void *p)
{
    return ((struct sink *)p)->read_end != 0;
}

/* The acceptor's pump reads libraft's EOF while ciphertext still waits in its queue: every
 * buffer on the way to the slow reader is full when the acceptor's end closes. */
static void eof_after_bytes_queued_for_peer(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct tnode a;
    static struct sink k;
    static struct end ae;
    struct sockaddr_in sa;
    char err[256];
    uv_shutdown_t shut;

    assert_int_equal(uv_loop_init(&loop), 0);
    tnode_start(&a, &loop, &fx.node[1], 1, 0);
    memset(&k, 0, sizeof(k));
    k.preamble_len = (size_t)snprintf(k.preamble, sizeof(k.preamble), "R%c127.0.0.1:9",
                                      (char)strlen("127.0.0.1:9"));
    k.ctx = lbw_tlsio_client_ctx(fx.ca.crt, 1, fx.node[2].crt, fx.node[2].keyf, err,
                                 sizeof(err));
    assert_non_null(k.ctx);
    uv_timer_init(&loop, &k.pause);
    k.pause.data = &k;
    assert_int_equal(uv_ip4_addr("127.0.0.1", atoi(strchr(a.address, ':') + 1), &sa), 0);
    assert_int_equal(lbw_tlsio_new(&k.io, &loop, k.ctx, LBW_TLSIO_CLIENT, &k), 0);
    assert_int_equal(lbw_tlsio_connect(k.io, (struct sockaddr *)&sa, sink_connected), 0);
    assert_true(run_until(&loop, is_set, &a.n_accepted, WAIT_MS));
    assert_int_equal(a.accepted_id[0], 2);
    assert_string_equal(a.accepted_address[0], "127.0.0.1:9");

    end_start(&ae, a.accepted[0], 12, 0, TRICKLE);
    assert_int_equal(uv_shutdown(&shut, a.accepted[0], shut_then_close), 0);
    assert_true(run_until(&loop, sink_ended, &k, 4 * WAIT_MS));
    assert_int_equal(k.read_end, UV_EOF);
    assert_int_equal(k.got, TRICKLE);
    assert_int_equal(k.bad, 0);

    lbw_tlsio_close(k.io, sink_closed);
    uv_close((uv_handle_t *)&k.pause, NULL);
    assert_true(run_until(&loop, is_set, &k.closed, WAIT_MS));
    SSL_CTX_free(k.ctx);
    tnode_stop(&a);
    loop_finish(&loop);
}

/* close() with raft streams still open: libraft closes its ends itself (here: afterwards) */
static void close_with_open_streams(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct tnode a, b;
    struct dial d;
    uv_stream_t *ds, *as;
    static struct end de, ae;

    assert_int_equal(uv_loop_init(&loop), 0);
    tnode_start(&a, &loop, &fx.node[1], 1, 0);
    tnode_start(&b, &loop, &fx.node[2], 2, 0);
    connect_pair(&a, &b, &d, &ds, &as);
    end_start(&de, ds, 1, 2, 0);
    end_start(&ae, as, 2, 1, 0);
    tnode_stop(&a);
    /* a's pump is gone: its raft end sees EOF, and so, through TLS, does b's */
    assert_true(run_until(&loop, read_ended, &ae, WAIT_MS));
    assert_true(run_until(&loop, read_ended, &de, WAIT_MS));
    end_close(&ae);
    end_close(&de);
    tnode_stop(&b);
    loop_finish(&loop);
}

/* --- raw transport: side channels ----------------------------------------------------------- */

struct side_dial {
    int done;
    int status;
    struct lbw_tlsio *io;
    char got[16];
    size_t got_len;
    int closed;
};

static void on_side_dialled(void *arg, struct lbw_tlsio *io, int status)
{
    struct side_dial *s = arg;
    assert_int_equal(s->done, 0);
    s->done = 1;
    s->status = status;
    s->io = io;
}

static void side_read(struct lbw_tlsio *io, ssize_t n, const char *data)
{
    struct side_dial *s = lbw_tlsio_data(io);
    if (n <= 0)
        return;
    assert_true(s->got_len + (size_t)n <= sizeof(s->got));
    memcpy(s->got + s->got_len, data, (size_t)n);
    s->got_len += (size_t)n;
}

static int dial_done_side(void *p)
{
    return ((struct side_dial *)p)->done;
}

static int side_accepted(void *p)
{
    return ((struct tnode *)p)->side != NULL;
}

static int side_got4(void *p)
{
    return ((struct side_dial *)p)->got_len >= 4;
}

static void side_closed(struct lbw_tlsio *io)
{
    struct side_dial *s = lbw_tlsio_data(io);
    s->closed = 1;
}

static void side_write(struct lbw_tlsio *io, const char *text)
{
    uv_buf_t b = uv_buf_init((char *)text, (unsigned)strlen(text));
    assert_int_equal(lbw_tlsio_write(io, &b, 1, NULL, NULL), 0);
}

static void side_channel_handed_over(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct tnode a, b;
    struct side_dial dialler = {0}, acceptor = {0}, cancelled = {0};
    struct lbw_transport_stats sa, sb;

    assert_int_equal(uv_loop_init(&loop), 0);
    tnode_start(&a, &loop, &fx.node[1], 1, 0);
    tnode_start(&b, &loop, &fx.node[2], 2, 0);

    assert_non_null(lbw_transport_dial_side(&b.rt, 1, a.address, on_side_dialled, &dialler));
    assert_int_equal(dialler.done, 0);
    assert_true(run_until(&loop, dial_done_side, &dialler, WAIT_MS));
    assert_int_equal(dialler.status, 0);
    assert_non_null(dialler.io);
    assert_true(run_until(&loop, side_accepted, &a, WAIT_MS));
    assert_int_equal(a.side_peer.kind, LBW_ID_NODE);
    assert_int_equal(a.side_peer.id, 2);
    assert_string_equal(a.side_peer.name, "node2");

    /* both sessions are live and now belong to their owners */
    acceptor.io = a.side;
    lbw_tlsio_set_data(acceptor.io, &acceptor);
    lbw_tlsio_set_data(dialler.io, &dialler);
    assert_int_equal(lbw_tlsio_read_start(acceptor.io, side_read), 0);
    assert_int_equal(lbw_tlsio_read_start(dialler.io, side_read), 0);
    side_write(dialler.io, "ping");
    assert_true(run_until(&loop, side_got4, &acceptor, WAIT_MS));
    side_write(acceptor.io, "pong");
    assert_true(run_until(&loop, side_got4, &dialler, WAIT_MS));
    assert_memory_equal(acceptor.got, "ping", 4);
    assert_memory_equal(dialler.got, "pong", 4);
    lbw_tlsio_close(acceptor.io, side_closed);
    lbw_tlsio_close(dialler.io, side_closed);
    assert_true(run_until(&loop, is_set, &acceptor.closed, WAIT_MS));
    assert_true(run_until(&loop, is_set, &dialler.closed, WAIT_MS));

    /* cancelled at once: the callback comes later, with UV_ECANCELED */
    struct lbw_side_dial *req = lbw_transport_dial_side(&b.rt, 1, a.address, on_side_dialled,
                                                        &cancelled);
    assert_non_null(req);
    lbw_transport_cancel_dial(req);
    assert_int_equal(cancelled.done, 0);
    assert_true(run_until(&loop, dial_done_side, &cancelled, WAIT_MS));
    assert_int_equal(cancelled.status, UV_ECANCELED);
    assert_null(cancelled.io);

    /* a dial that cannot start */
    assert_null(lbw_transport_dial_side(&b.rt, 1, "localhost:1", on_side_dialled, &cancelled));

    lbw_transport_stats(&a.rt, &sa);
    lbw_transport_stats(&b.rt, &sb);
    assert_int_equal(sa.accepted, 1);
    assert_int_equal(sb.dialled, 1);
    assert_int_equal(a.refusals + b.refusals, 0); /* a cancelled dial is not a refusal */
    assert_true(lbw_transport_last_rx(&a.rt, 2) > 0);
    tnode_stop(&a);
    tnode_stop(&b);
    loop_finish(&loop);
}

/* --- raw transport: close ------------------------------------------------------------------- */

/* A TCP server that accepts and then says nothing. */
#define MAX_SILENT 4

struct silent {
    uv_tcp_t listener;
    uv_tcp_t conns[MAX_SILENT];
    int n;
    uint16_t port;
    char address[32];
};

static void silent_connection(uv_stream_t *l, int status)
{
    struct silent *s = l->data;
    assert_int_equal(status, 0);
    assert_true(s->n < MAX_SILENT);
    uv_tcp_init(l->loop, &s->conns[s->n]);
    assert_int_equal(uv_accept(l, (uv_stream_t *)&s->conns[s->n]), 0);
    s->n++;
}

static void silent_start(struct silent *s, uv_loop_t *loop)
{
    struct sockaddr_in sa;
    memset(s, 0, sizeof(*s));
    s->port = tu_free_port();
    snprintf(s->address, sizeof(s->address), "127.0.0.1:%u", s->port);
    assert_int_equal(uv_ip4_addr("127.0.0.1", s->port, &sa), 0);
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    assert_int_equal(uv_tcp_bind(&s->listener, (struct sockaddr *)&sa, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&s->listener, 8, silent_connection), 0);
}

static void silent_stop(struct silent *s)
{
    for (int i = 0; i < s->n; i++)
        uv_close((uv_handle_t *)&s->conns[i], NULL);
    uv_close((uv_handle_t *)&s->listener, NULL);
}

static int silent_has2(void *p)
{
    return ((struct silent *)p)->n >= 2;
}

static struct {
    struct dial *d;
    struct side_dial *sd;
    int dials_done_at_close;
} order;

static void on_closed_check_order(struct raft_uv_transport *rt)
{
    struct tnode *n = rt->data;
    order.dials_done_at_close = order.d->done && order.sd->done;
    n->closed = 1;
}

static void close_cancels_dials(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct tnode b;
    struct silent s;
    struct dial d;
    struct side_dial sd = {0};

    assert_int_equal(uv_loop_init(&loop), 0);
    tnode_start(&b, &loop, &fx.node[2], 2, 0);
    silent_start(&s, &loop);
    dial(&b, &d, 1, s.address);
    assert_non_null(lbw_transport_dial_side(&b.rt, 1, s.address, on_side_dialled, &sd));
    assert_true(run_until(&loop, silent_has2, &s, WAIT_MS)); /* both wait for a handshake */

    order.d = &d;
    order.sd = &sd;
    b.rt.close(&b.rt, on_closed_check_order);
    assert_int_equal(d.done + sd.done + b.closed, 0); /* nothing inside the call */
    assert_true(run_until(&loop, is_set, &b.closed, WAIT_MS));
    assert_true(order.dials_done_at_close);
    assert_int_equal(d.status, RAFT_CANCELED);
    assert_null(d.stream);
    assert_int_equal(sd.status, UV_ECANCELED);
    assert_null(sd.io);
    assert_int_equal(b.refusals, 0);
    assert_null(lbw_transport_dial_side(&b.rt, 1, s.address, on_side_dialled, &sd));
    lbw_transport_free(&b.rt);
    silent_stop(&s);
    loop_finish(&loop);
}

/* nobody listening: the dial fails later, and is no refusal; a bad address fails at once */
static void dial_failures(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct tnode b;
    struct dial d;
    struct side_dial sd = {0};
    char nobody[32];

    assert_int_equal(uv_loop_init(&loop), 0);
    tnode_start(&b, &loop, &fx.node[2], 2, 0);
    snprintf(nobody, sizeof(nobody), "127.0.0.1:%u", tu_free_port());
    dial(&b, &d, 1, nobody);
    assert_non_null(lbw_transport_dial_side(&b.rt, 1, nobody, on_side_dialled, &sd));
    assert_true(run_until(&loop, dial_done, &d, WAIT_MS));
    assert_true(run_until(&loop, dial_done_side, &sd, WAIT_MS));
    assert_int_equal(d.status, RAFT_NOCONNECTION);
    assert_null(d.stream);
    assert_int_equal(sd.status, UV_ECONNREFUSED);
    assert_int_equal(b.refusals, 0);

    memset(&d, 0, sizeof(d));
    assert_int_equal(b.rt.connect(&b.rt, &d.req, 1, "node1:9000", on_dialled), RAFT_INVALID);
    assert_string_equal(b.rt.errmsg, "address 'node1:9000' is not a.b.c.d:port");
    run_for(&loop, 50);
    assert_int_equal(d.done, 0);
    tnode_stop(&b);
    loop_finish(&loop);
}

/* --- refusals ------------------------------------------------------------------------------- */

/* A bare TLS client: a certificate or none, optionally some bytes after the handshake. */
struct raw {
    struct lbw_tlsio *io;
    SSL_CTX *ctx;
    const char *send;
    size_t send_len;
    int hs_done, hs_status;
    int read_end;
    int closed;
};

static void raw_read(struct lbw_tlsio *io, ssize_t n, const char *data)
{
    struct raw *r = lbw_tlsio_data(io);
    (void)data;
    if (n < 0)
        r->read_end = (int)n;
}

static void raw_handshake(struct lbw_tlsio *io, int status)
{
    struct raw *r = lbw_tlsio_data(io);
    r->hs_done = 1;
    r->hs_status = status;
    if (status)
        return;
    if (r->send) {
        uv_buf_t b = uv_buf_init((char *)r->send, (unsigned)r->send_len);
        assert_int_equal(lbw_tlsio_write(io, &b, 1, NULL, NULL), 0);
    }
    assert_int_equal(lbw_tlsio_read_start(io, raw_read), 0);
}

static void raw_connected(struct lbw_tlsio *io, int status)
{
    assert_int_equal(status, 0);
    assert_int_equal(lbw_tlsio_handshake(io, raw_handshake), 0);
}

static void raw_start(struct raw *r, uv_loop_t *loop, const struct crafted *cert,
                      const struct tnode *to, const char *send, size_t send_len)
{
    char err[256];
    struct sockaddr_in sa;
    memset(r, 0, sizeof(*r));
    r->send = send;
    r->send_len = send_len;
    r->ctx = lbw_tlsio_client_ctx(fx.ca.crt, 1, cert ? cert->crt : NULL,
                                  cert ? cert->keyf : NULL, err, sizeof(err));
    if (r->ctx == NULL)
        fail_msg("client ctx: %s", err);
    assert_int_equal(uv_ip4_addr("127.0.0.1", atoi(strchr(to->address, ':') + 1), &sa), 0);
    assert_int_equal(lbw_tlsio_new(&r->io, loop, r->ctx, LBW_TLSIO_CLIENT, r), 0);
    assert_int_equal(lbw_tlsio_connect(r->io, (struct sockaddr *)&sa, raw_connected), 0);
}

static int raw_learned(void *p)
{
    struct raw *r = p;
    return (r->hs_done && r->hs_status) || r->read_end;
}

static void raw_closed(struct lbw_tlsio *io)
{
    struct raw *r = lbw_tlsio_data(io);
    r->closed = 1;
}

static void raw_stop(struct raw *r, uv_loop_t *loop)
{
    lbw_tlsio_close(r->io, raw_closed);
    assert_true(run_until(loop, is_set, &r->closed, WAIT_MS));
    SSL_CTX_free(r->ctx);
}

static int refused_once(void *p)
{
    return ((struct tnode *)p)->refusals > 0;
}

/* Asserts that n refused exactly one peer, from 127.0.0.1, of this kind, for this reason. */
static void assert_refused(const struct tnode *n, enum lbw_refusal kind, const char *reason)
{
    struct lbw_transport_stats st;
    lbw_transport_stats(&n->rt, &st);
    assert_int_equal(n->refusals, 1);
    assert_int_equal(n->refused[kind], 1);
    assert_int_equal(st.refused[kind], 1);
    assert_string_equal(lbw_refusal_name(n->last_kind), lbw_refusal_name(kind));
    assert_string_equal(n->last_reason, reason);
    assert_memory_equal(n->last_peer, "127.0.0.1:", 10);
}

/* A raw client sends bytes after its handshake; the listener refuses it for reason. */
static void expect_raw_refusal(const struct crafted *cert, const char *send, size_t send_len,
                               enum lbw_refusal kind, const char *reason)
{
    uv_loop_t loop;
    struct tnode a;
    struct raw r;

    assert_int_equal(uv_loop_init(&loop), 0);
    tnode_start(&a, &loop, &fx.node[1], 1, SHORT_TIMEOUT_MS);
    raw_start(&r, &loop, cert, &a, send, send_len);
    assert_true(run_until(&loop, refused_once, &a, WAIT_MS));
    assert_refused(&a, kind, reason);
    assert_true(run_until(&loop, raw_learned, &r, WAIT_MS)); /* and the client was dropped */
    raw_stop(&r, &loop);
    assert_int_equal(a.n_accepted, 0);
    assert_null(a.side);
    tnode_stop(&a);
    loop_finish(&loop);
}

static void refuses_no_client_certificate(void **state)
{
    (void)state;
    expect_raw_refusal(NULL, NULL, 0, LBW_REFUSED_NO_CERT, "no client certificate");
}

static void refuses_agent_certificate(void **state)
{
    (void)state;
    expect_raw_refusal(&fx.agent, "R", 1, LBW_REFUSED_NOT_NODE,
                       "not a node certificate (agent lb1)");
}

static void refuses_bad_preambles(void **state)
{
    (void)state;
    expect_raw_refusal(&fx.node[2], "X", 1, LBW_REFUSED_PREAMBLE, "unknown channel tag 0x58");
    expect_raw_refusal(&fx.node[2], "R\x07garbage", 9, LBW_REFUSED_PREAMBLE,
                       "bad raft address in the preamble");
    expect_raw_refusal(&fx.node[2], "R\x0b" "127.0.0.1:0", 13, LBW_REFUSED_PREAMBLE,
                       "bad raft address in the preamble");
    expect_raw_refusal(&fx.node[2], "R\x00", 2, LBW_REFUSED_PREAMBLE,
                       "empty raft address in the preamble");
    expect_raw_refusal(&fx.node[2], "Fxyz", 4, LBW_REFUSED_PREAMBLE,
                       "3 unexpected bytes after the preamble");
    expect_raw_refusal(&fx.node[2], "R\x10" "127.0", 7, LBW_REFUSED_PREAMBLE,
                       "no channel preamble within 400 ms");
    expect_raw_refusal(&fx.node[2], NULL, 0, LBW_REFUSED_PREAMBLE,
                       "no channel preamble within 400 ms");
}

/* A dialler with cert dials node 1, which refuses it for reason; the dial fails. */
static void expect_dialler_refused(const struct crafted *cert, uint64_t id,
                                   enum lbw_refusal kind, const char *reason)
{
    uv_loop_t loop;
    struct tnode a, b;
    struct dial d;

    assert_int_equal(uv_loop_init(&loop), 0);
    tnode_start(&a, &loop, &fx.node[1], 1, SHORT_TIMEOUT_MS);
    tnode_start(&b, &loop, cert, id, SHORT_TIMEOUT_MS);
    dial(&b, &d, 1, a.address);
    assert_true(run_until(&loop, dial_done, &d, WAIT_MS));
    assert_int_equal(d.status, RAFT_NOCONNECTION);
    assert_null(d.stream);
    assert_true(run_until(&loop, refused_once, &a, WAIT_MS));
    assert_refused(&a, kind, reason);
    /* the dialler learns it from the server's alert */
    assert_int_equal(b.refusals, 1);
    assert_int_equal(b.refused[LBW_REFUSED_HANDSHAKE], 1);
    assert_memory_equal(b.last_reason, "TLS handshake failed: ", 22);
    assert_string_equal(b.last_peer, a.address);
    assert_int_equal(a.n_accepted, 0);
    tnode_stop(&a);
    tnode_stop(&b);
    loop_finish(&loop);
}

static void refuses_other_ca(void **state)
{
    (void)state;
    expect_dialler_refused(&fx.stranger, 4, LBW_REFUSED_UNTRUSTED,
                           "certificate not issued by the cluster CA "
                           "(unable to get local issuer certificate)");
}

static void refuses_expired_certificate(void **state)
{
    (void)state;
    expect_dialler_refused(&fx.expired, 5, LBW_REFUSED_EXPIRED, "certificate expired");
}

/* The dialler checks the server too: expired, or another node than the one dialled. The
 * server learns of it only when the TLS alert tells it (expired); a dialler that hangs up after
 * the handshake (the wrong node) is no refusal for the server. */
static void dialler_refuses_server(const struct crafted *server_cert, uint64_t server_id,
                                   uint64_t dialled_id, enum lbw_refusal kind,
                                   const char *reason, int server_refusals)
{
    uv_loop_t loop;
    struct tnode a, b;
    struct dial d;

    assert_int_equal(uv_loop_init(&loop), 0);
    tnode_start(&a, &loop, server_cert, server_id, SHORT_TIMEOUT_MS);
    tnode_start(&b, &loop, &fx.node[1], 1, SHORT_TIMEOUT_MS);
    dial(&b, &d, dialled_id, a.address);
    assert_true(run_until(&loop, dial_done, &d, WAIT_MS));
    assert_int_equal(d.status, RAFT_NOCONNECTION);
    assert_refused(&b, kind, reason);
    assert_string_equal(b.last_peer, a.address);
    if (server_refusals)
        assert_true(run_until(&loop, refused_once, &a, WAIT_MS));
    else
        run_for(&loop, 2 * SHORT_TIMEOUT_MS); /* past the server's own timeout */
    assert_int_equal(a.refusals, server_refusals);
    if (server_refusals)
        assert_int_equal(a.last_kind, LBW_REFUSED_HANDSHAKE);
    assert_int_equal(a.n_accepted, 0);
    tnode_stop(&a);
    tnode_stop(&b);
    loop_finish(&loop);
}

static void refuses_wrong_node(void **state)
{
    (void)state;
    dialler_refuses_server(&fx.node[3], 3, 2, LBW_REFUSED_ID_MISMATCH,
                           "dialled node 2 but its certificate says node 3", 0);
}

static void refuses_expired_server(void **state)
{
    (void)state;
    dialler_refuses_server(&fx.expired, 5, 5, LBW_REFUSED_EXPIRED, "certificate expired", 1);
}

/* A peer that connects and never starts TLS. */

struct mute {
    uv_tcp_t tcp;
    uv_connect_t req;
    int read_end;
    char buf[256];
};

static void mute_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct mute *m = h->data;
    (void)suggested;
    *buf = uv_buf_init(m->buf, sizeof(m->buf));
}

static void mute_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct mute *m = s->data;
    (void)buf;
    if (n < 0)
        m->read_end = (int)n;
}

static void mute_connected(uv_connect_t *req, int status)
{
    struct mute *m = req->data;
    assert_int_equal(status, 0);
    assert_int_equal(uv_read_start((uv_stream_t *)&m->tcp, mute_alloc, mute_read), 0);
}

static int mute_ended(void *p)
{
    return ((struct mute *)p)->read_end != 0;
}

static void refuses_silent_peer(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct tnode a;
    struct mute m;
    struct sockaddr_in sa;

    assert_int_equal(uv_loop_init(&loop), 0);
    tnode_start(&a, &loop, &fx.node[1], 1, SHORT_TIMEOUT_MS);
    memset(&m, 0, sizeof(m));
    uv_tcp_init(&loop, &m.tcp);
    m.tcp.data = m.req.data = &m;
    assert_int_equal(uv_ip4_addr("127.0.0.1", atoi(strchr(a.address, ':') + 1), &sa), 0);
    assert_int_equal(uv_tcp_connect(&m.req, &m.tcp, (struct sockaddr *)&sa, mute_connected), 0);
    assert_true(run_until(&loop, refused_once, &a, WAIT_MS));
    assert_refused(&a, LBW_REFUSED_HANDSHAKE, "no TLS handshake within 400 ms");
    assert_true(run_until(&loop, mute_ended, &m, WAIT_MS)); /* the listener hung up */
    uv_close((uv_handle_t *)&m.tcp, NULL);
    tnode_stop(&a);
    loop_finish(&loop);
}

/* --- configuration checks ------------------------------------------------------------------- */

static void init_checks(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct raft_uv_transport rt;
    struct tnode a, b;
    char err[256];
    struct lbw_transport_config cfg = {
        .loop = &loop, .ca_file = fx.ca.crt, .cert_file = fx.agent.crt,
        .key_file = fx.agent.keyf,
    };

    assert_int_equal(uv_loop_init(&loop), 0);
    memset(&rt, 0, sizeof(rt));
    assert_int_equal(lbw_transport_init(&rt, &cfg, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a node certificate"));
    cfg.cert_file = fx.node[1].crt;
    assert_int_equal(lbw_transport_init(&rt, &cfg, err, sizeof(err)), -1);
    assert_non_null(strstr(err, fx.agent.keyf)); /* the key is not this certificate's */

    /* libraft's init: the certificate decides the id; addresses are a.b.c.d:port */
    tnode_make(&a, &loop, &fx.node[1], 1, 0);
    assert_int_equal(a.rt.init(&a.rt, 2, a.address), RAFT_INVALID);
    assert_string_equal(a.rt.errmsg, "raft id 2, but the certificate is node 1");
    assert_int_equal(a.rt.init(&a.rt, 1, "node1:9000"), RAFT_INVALID);
    assert_int_equal(a.rt.init(&a.rt, 1, "127.0.0.1:99999"), RAFT_INVALID);
    lbw_transport_free(&a.rt); /* libraft never initialised it */

    /* a port in use */
    tnode_start(&a, &loop, &fx.node[1], 1, 0);
    tnode_make(&b, &loop, &fx.node[2], 2, 0);
    b.rt.data = &b;
    assert_int_equal(b.rt.init(&b.rt, 2, a.address), 0);
    assert_int_equal(b.rt.listen(&b.rt, record_accept), RAFT_IOERR);
    assert_non_null(strstr(b.rt.errmsg, "address already in use"));
    tnode_stop(&b);
    tnode_stop(&a);
    loop_finish(&loop);

    assert_string_equal(lbw_refusal_name(LBW_REFUSED_NO_CERT), "no_certificate");
    assert_string_equal(lbw_refusal_name(LBW_REFUSED_UNTRUSTED), "untrusted");
    assert_string_equal(lbw_refusal_name(LBW_REFUSED_EXPIRED), "expired");
    assert_string_equal(lbw_refusal_name(LBW_REFUSED_NOT_NODE), "not_a_node");
    assert_string_equal(lbw_refusal_name(LBW_REFUSED_ID_MISMATCH), "id_mismatch");
    assert_string_equal(lbw_refusal_name(LBW_REFUSED_HANDSHAKE), "handshake");
    assert_string_equal(lbw_refusal_name(LBW_REFUSED_PREAMBLE), "preamble");
}

/* --- a three-node libraft cluster over the transport ---------------------------------------- */

struct fsm_state {
    uint64_t applied;                       /* entries applied, repeats included */
    uint64_t hash;                          /* over the values in the order applied */
    uint64_t unique;
    unsigned char seen[ENTRIES + 1];
};

struct cnode {
    struct tnode t;
    struct raft_io io;
    struct raft raft;
    struct raft_fsm fsm;
    char dir[300];
    struct fsm_state st;
    int snapshots;
    int raft_closed;
};

enum { REQ_TO_SUBMIT, REQ_IN_FLIGHT, REQ_APPLIED };

static struct cluster {
    uv_loop_t loop;
    struct cnode n[3];
    struct raft_apply req[ENTRIES];
    int req_state[ENTRIES];
    uv_timer_t driver;
} cl;

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    struct cnode *n = fsm->data;
    uint64_t v;

    assert_int_equal(buf->len, sizeof(v));
    memcpy(&v, buf->base, sizeof(v));
    assert_true(v >= 1 && v <= ENTRIES);
    n->st.applied++;
    n->st.hash = (n->st.hash ^ v) * 1099511628211ull;
    if (!n->st.seen[v]) {
        n->st.seen[v] = 1;
        n->st.unique++;
    }
    *result = NULL;
    return 0;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct cnode *n = fsm->data;
    n->snapshots++;
    *bufs = raft_malloc(sizeof(**bufs));
    if (*bufs == NULL)
        return RAFT_NOMEM;
    (*bufs)[0].base = raft_malloc(sizeof(n->st));
    if ((*bufs)[0].base == NULL) {
        raft_free(*bufs);
        return RAFT_NOMEM;
    }
    memcpy((*bufs)[0].base, &n->st, sizeof(n->st));
    (*bufs)[0].len = sizeof(n->st);
    *n_bufs = 1;
    return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    struct cnode *n = fsm->data;
    if (buf->len != sizeof(n->st))
        return RAFT_MALFORMED;
    memcpy(&n->st, buf->base, sizeof(n->st));
    raft_free(buf->base);
    return 0;
}

static void cnode_start(struct cnode *n, uint64_t id, const struct raft_configuration *conf)
{
    memset(&n->st, 0, sizeof(n->st));
    snprintf(n->dir, sizeof(n->dir), "%s/raft%llu", fx.dir, (unsigned long long)id);
    assert_int_equal(mkdir(n->dir, 0700), 0);
    assert_int_equal(raft_uv_init(&n->io, &cl.loop, n->dir, &n->t.rt), 0);
    raft_uv_set_connect_retry_delay(&n->io, 50);
    n->fsm = (struct raft_fsm){.version = 1, .data = n, .apply = fsm_apply,
                               .snapshot = fsm_snapshot, .restore = fsm_restore};
    assert_int_equal(raft_init(&n->raft, &n->io, &n->fsm, id, n->t.address), 0);
    n->raft.data = n;
    raft_set_election_timeout(&n->raft, 300);
    raft_set_heartbeat_timeout(&n->raft, 50);
    raft_set_snapshot_threshold(&n->raft, 128);
    raft_set_snapshot_trailing(&n->raft, 64);
    assert_int_equal(raft_bootstrap(&n->raft, conf), 0);
    assert_int_equal(raft_start(&n->raft), 0);
}

static struct cnode *leader(void)
{
    for (int i = 0; i < 3; i++)
        if (raft_state(&cl.n[i].raft) == RAFT_LEADER)
            return &cl.n[i];
    return NULL;
}

static int has_leader(void *p)
{
    (void)p;
    return leader() != NULL;
}

static void on_applied(struct raft_apply *req, int status, void *result)
{
    (void)result;
    size_t i = (size_t)(req - cl.req);
    /* a request lost with a leader is proposed again; the FSM counts repeats */
    cl.req_state[i] = status == 0 ? REQ_APPLIED : REQ_TO_SUBMIT;
}

/* Proposes every value not applied or in flight to whoever leads now. */
static void drive(uv_timer_t *timer)
{
    (void)timer;
    struct cnode *l = leader();
    if (l == NULL)
        return;
    for (size_t i = 0; i < ENTRIES; i++) {
        if (cl.req_state[i] != REQ_TO_SUBMIT)
            continue;
        uint64_t v = i + 1;
        struct raft_buffer buf = {.base = raft_malloc(sizeof(v)), .len = sizeof(v)};
        assert_non_null(buf.base);
        memcpy(buf.base, &v, sizeof(v));
        if (raft_apply(&l->raft, &cl.req[i], &buf, 1, on_applied) != 0) {
            raft_free(buf.base);
            return;
        }
        cl.req_state[i] = REQ_IN_FLIGHT;
    }
}

/* Every value applied on the leader's say-so, and every replica at the same index with all
 * of them. */
static int all_applied(void *p)
{
    (void)p;
    for (size_t i = 0; i < ENTRIES; i++)
        if (cl.req_state[i] != REQ_APPLIED)
            return 0;
    for (int i = 0; i < 3; i++)
        if (cl.n[i].st.unique != ENTRIES ||
            raft_last_applied(&cl.n[i].raft) != raft_last_applied(&cl.n[0].raft))
            return 0;
    return 1;
}

static void on_raft_closed(struct raft *r)
{
    struct cnode *n = r->data;
    n->raft_closed = 1;
}

static int all_closed(void *p)
{
    (void)p;
    return cl.n[0].raft_closed && cl.n[1].raft_closed && cl.n[2].raft_closed;
}

static void raft_cluster_replicates(void **state)
{
    (void)state;
    struct raft_configuration conf;

    memset(&cl, 0, sizeof(cl));
    assert_int_equal(uv_loop_init(&cl.loop), 0);
    for (uint64_t id = 1; id <= 3; id++)
        tnode_make(&cl.n[id - 1].t, &cl.loop, &fx.node[id], id, 0);
    raft_configuration_init(&conf);
    for (uint64_t id = 1; id <= 3; id++)
        assert_int_equal(raft_configuration_add(&conf, id, cl.n[id - 1].t.address, RAFT_VOTER),
                         0);
    for (uint64_t id = 1; id <= 3; id++)
        cnode_start(&cl.n[id - 1], id, &conf);
    raft_configuration_close(&conf);

    assert_true(run_until(&cl.loop, has_leader, NULL, WAIT_MS));
    uv_timer_init(&cl.loop, &cl.driver);
    uv_timer_start(&cl.driver, drive, 0, 10);
    assert_true(run_until(&cl.loop, all_applied, NULL, 4 * WAIT_MS));
    uv_close((uv_handle_t *)&cl.driver, NULL);

    for (int i = 0; i < 3; i++) {
        struct lbw_transport_stats st;
        assert_int_equal(cl.n[i].st.applied, cl.n[0].st.applied);
        assert_int_equal(cl.n[i].st.hash, cl.n[0].st.hash);
        assert_int_equal(cl.n[i].t.refusals, 0);
        assert_true(cl.n[i].snapshots > 0); /* every 128 entries */
        lbw_transport_stats(&cl.n[i].t.rt, &st);
        assert_true(st.bytes_in > 0 && st.bytes_out > 0);
        assert_true(st.dialled >= 1 && st.accepted >= 1);
    }
    struct cnode *l = leader();
    assert_non_null(l);
    for (uint64_t id = 1; id <= 3; id++)
        if (id != l->t.id)
            assert_true(lbw_transport_last_rx(&l->t.rt, id) > 0);

    /* here, between loop runs, no raft callback is on the stack: raft_close is safe */
    for (int i = 0; i < 3; i++)
        raft_close(&cl.n[i].raft, on_raft_closed);
    assert_true(run_until(&cl.loop, all_closed, NULL, WAIT_MS));
    for (int i = 0; i < 3; i++) {
        raft_uv_close(&cl.n[i].io);
        lbw_transport_free(&cl.n[i].t.rt);
    }
    loop_finish(&cl.loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(raft_stream_carries_bytes_both_ways),
        cmocka_unit_test(raft_stream_back_pressure),
        cmocka_unit_test(eof_after_bytes_queued_for_raft),
        cmocka_unit_test(eof_after_bytes_queued_for_peer),
        cmocka_unit_test(close_with_open_streams),
        cmocka_unit_test(side_channel_handed_over),
        cmocka_unit_test(close_cancels_dials),
        cmocka_unit_test(dial_failures),
        cmocka_unit_test(refuses_no_client_certificate),
        cmocka_unit_test(refuses_other_ca),
        cmocka_unit_test(refuses_expired_certificate),
        cmocka_unit_test(refuses_agent_certificate),
        cmocka_unit_test(refuses_wrong_node),
        cmocka_unit_test(refuses_expired_server),
        cmocka_unit_test(refuses_silent_peer),
        cmocka_unit_test(refuses_bad_preambles),
        cmocka_unit_test(init_checks),
        cmocka_unit_test(raft_cluster_replicates),
    };
    return cmocka_run_group_tests(tests, suite_setup, suite_teardown);
}
