/* transport.c - benchmark: bytes per second through a raft stream of raft/transport (mutual
 * TLS between two transports, a socketpair at each end) against a plain TCP connection, both
 * on 127.0.0.1 in one process and one loop.
 *
 * Crafts a CA and two node certificates with lbw_pki_make_cert, plays libraft's part (init,
 * listen, connect, and the streams handed over) and writes TOTAL bytes through each path,
 * WINDOW writes of CHUNK bytes in flight, counting what the far end reads. Prints both rates
 * and their ratio (transport / plain TCP).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "node/pki.h"
#include "raft/transport.h"

#define TOTAL (1024ull << 20)
#define CHUNK (1u << 20)
#define WINDOW 8

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --- certificates and ports ----------------------------------------------------------------- */

struct files {
    char dir[256];
    char ca[300], crt[2][300], key[2][300];
};

static int craft(struct files *f)
{
    char err[256];
    int64_t now = (int64_t)time(NULL);
    X509 *ca = NULL, *leaf = NULL;
    EVP_PKEY *ca_key = NULL, *leaf_key = NULL;
    struct lbw_cert_spec ca_spec = {.cn = "bench CA", .is_ca = 1, .not_before = now - 60,
                                    .not_after = now + 86400};
    int rc = lbw_pki_make_cert(&ca_spec, NULL, NULL, &ca, &ca_key, err, sizeof(err)) ||
             lbw_pki_write_cert(f->ca, ca, err, sizeof(err));
    for (int i = 0; i < 2 && rc == 0; i++) {
        struct lbw_identity id = {.kind = LBW_ID_NODE, .id = (uint64_t)i + 1};
        snprintf(id.name, sizeof(id.name), "node%d", i + 1);
        struct lbw_cert_spec spec = {.cn = id.name, .not_before = now - 60,
                                     .not_after = now + 86400, .identity = &id};
        rc = lbw_pki_make_cert(&spec, ca, ca_key, &leaf, &leaf_key, err, sizeof(err)) ||
             lbw_pki_write_cert(f->crt[i], leaf, err, sizeof(err)) ||
             lbw_pki_write_key(f->key[i], leaf_key, err, sizeof(err));
        X509_free(leaf);
        EVP_PKEY_free(leaf_key);
        leaf = NULL;
        leaf_key = NULL;
    }
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    if (rc)
        fprintf(stderr, "certificates: %s\n", err);
    return rc ? -1 : 0;
}

/* A loopback port that was free a moment ago. */
static int free_port(void)
{
    uv_loop_t loop;
    uv_tcp_t tcp;
    struct sockaddr_in a;
    int len = sizeof(a), port = -1;

    uv_loop_init(&loop);
    uv_tcp_init(&loop, &tcp);
    uv_ip4_addr("127.0.0.1", 0, &a);
    if (uv_tcp_bind(&tcp, (struct sockaddr *)&a, 0) == 0 &&
        uv_tcp_getsockname(&tcp, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    uv_close((uv_handle_t *)&tcp, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return port;
}

/* --- one measured transfer ------------------------------------------------------------------ */

struct transfer {
    uv_stream_t *from, *to;
    char *chunk;
    uv_write_t writes[WINDOW];
    unsigned long long queued, received;
    int failed;
    char buf[65536];
};

static void on_written(uv_write_t *req, int status);

static void write_more(struct transfer *x, uv_write_t *req)
{
    if (x->queued >= TOTAL)
        return;
    uv_buf_t b = uv_buf_init(x->chunk, CHUNK);
    req->data = x;
    if (uv_write(req, x->from, &b, 1, on_written) != 0) {
        x->failed = 1;
        return;
    }
    x->queued += CHUNK;
}

static void on_written(uv_write_t *req, int status)
{
    struct transfer *x = req->data;
    if (status) {
        x->failed = 1;
        return;
    }
    write_more(x, req);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct transfer *x = h->data;
    (void)suggested;
    *buf = uv_buf_init(x->buf, sizeof(x->buf));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct transfer *x = s->data;
    (void)buf;
    if (n < 0) {
        x->failed = 1;
        uv_read_stop(s);
        return;
    }
    x->received += (unsigned long long)n;
    if (x->received >= TOTAL)
        uv_read_stop(s);
}

/* Writes TOTAL bytes from one stream to the other; returns the seconds it took, or -1. */
static double measure(uv_loop_t *loop, uv_stream_t *from, uv_stream_t *to)
{
    static struct transfer x;
    memset(&x, 0, sizeof(x));
    x.from = from;
    x.to = to;
    x.chunk = calloc(1, CHUNK);
    if (x.chunk == NULL)
        return -1;
    to->data = &x;
    double start = now_s();
    uv_read_start(to, on_alloc, on_read);
    for (int i = 0; i < WINDOW; i++)
        write_more(&x, &x.writes[i]);
    while (x.received < TOTAL && !x.failed)
        uv_run(loop, UV_RUN_ONCE);
    double took = now_s() - start;
    free(x.chunk);
    return x.failed ? -1 : took;
}

/* --- the two paths -------------------------------------------------------------------------- */

struct raft_side {
    struct raft_uv_transport rt;
    uv_stream_t *stream;
    int closed;
};

static void on_accept(struct raft_uv_transport *rt, raft_id id, const char *address,
                      uv_stream_t *stream)
{
    struct raft_side *s = rt->data;
    (void)id;
    (void)address;
    s->stream = stream;
}

static void on_connect(struct raft_uv_connect *req, uv_stream_t *stream, int status)
{
    struct raft_side *s = req->data;
    if (status == 0)
        s->stream = stream;
}

static void on_transport_closed(struct raft_uv_transport *rt)
{
    struct raft_side *s = rt->data;
    s->closed = 1;
}

static void free_stream(uv_handle_t *h)
{
    raft_free(h);
}

static int start_side(struct raft_side *s, uv_loop_t *loop, const struct files *f, int i,
                      const char *address)
{
    char err[256];
    struct lbw_transport_config cfg = {.loop = loop, .ca_file = f->ca, .cert_file = f->crt[i],
                                       .key_file = f->key[i]};
    if (lbw_transport_init(&s->rt, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "transport: %s\n", err);
        return -1;
    }
    s->rt.data = s;
    if (s->rt.init(&s->rt, (raft_id)i + 1, address) != 0 || s->rt.listen(&s->rt, on_accept)) {
        fprintf(stderr, "transport: %s\n", s->rt.errmsg);
        return -1;
    }
    return 0;
}

/* Node 2 dials node 1; returns the seconds for TOTAL bytes through the raft stream, or -1. */
static double through_transport(const struct files *f)
{
    uv_loop_t loop;
    static struct raft_side a, b;
    struct raft_uv_connect req = {.data = &b};
    char addr[2][32];
    double took = -1;

    uv_loop_init(&loop);
    for (int i = 0; i < 2; i++)
        snprintf(addr[i], sizeof(addr[i]), "127.0.0.1:%d", free_port());
    if (start_side(&a, &loop, f, 0, addr[0]) != 0 || start_side(&b, &loop, f, 1, addr[1]) != 0)
        return -1;
    if (b.rt.connect(&b.rt, &req, 1, addr[0], on_connect) == 0) {
        double deadline = now_s() + 10;
        while ((!a.stream || !b.stream) && now_s() < deadline)
            uv_run(&loop, UV_RUN_ONCE);
        if (a.stream && b.stream)
            took = measure(&loop, b.stream, a.stream);
    }
    if (a.stream)
        uv_close((uv_handle_t *)a.stream, free_stream);
    if (b.stream)
        uv_close((uv_handle_t *)b.stream, free_stream);
    a.rt.close(&a.rt, on_transport_closed);
    b.rt.close(&b.rt, on_transport_closed);
    while (!a.closed || !b.closed)
        uv_run(&loop, UV_RUN_ONCE);
    lbw_transport_free(&a.rt);
    lbw_transport_free(&b.rt);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return took;
}

struct tcp_pair {
    uv_tcp_t listener, server, client;
    uv_connect_t req;
    int accepted, connected;
};

static void on_tcp_connection(uv_stream_t *l, int status)
{
    struct tcp_pair *p = l->data;
    if (status == 0 && uv_accept(l, (uv_stream_t *)&p->server) == 0)
        p->accepted = 1;
}

static void on_tcp_connect(uv_connect_t *req, int status)
{
    struct tcp_pair *p = req->data;
    p->connected = status == 0;
}

/* The same through one plain loopback TCP connection. */
static double through_tcp(void)
{
    uv_loop_t loop;
    static struct tcp_pair p;
    struct sockaddr_in a;
    int len = sizeof(a);
    double took = -1;

    uv_loop_init(&loop);
    uv_tcp_init(&loop, &p.listener);
    uv_tcp_init(&loop, &p.server);
    uv_tcp_init(&loop, &p.client);
    p.listener.data = p.req.data = &p;
    uv_ip4_addr("127.0.0.1", 0, &a);
    if (uv_tcp_bind(&p.listener, (struct sockaddr *)&a, 0) == 0 &&
        uv_listen((uv_stream_t *)&p.listener, 1, on_tcp_connection) == 0 &&
        uv_tcp_getsockname(&p.listener, (struct sockaddr *)&a, &len) == 0 &&
        uv_tcp_connect(&p.req, &p.client, (struct sockaddr *)&a, on_tcp_connect) == 0) {
        while (!p.accepted || !p.connected)
            uv_run(&loop, UV_RUN_ONCE);
        took = measure(&loop, (uv_stream_t *)&p.client, (uv_stream_t *)&p.server);
    }
    uv_close((uv_handle_t *)&p.listener, NULL);
    uv_close((uv_handle_t *)&p.server, NULL);
    uv_close((uv_handle_t *)&p.client, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return took;
}

static void remove_files(const struct files *f)
{
    unlink(f->ca);
    for (int i = 0; i < 2; i++) {
        unlink(f->crt[i]);
        unlink(f->key[i]);
    }
    rmdir(f->dir);
}

int main(void)
{
    struct files f;
    const char *tmp = getenv("TMPDIR");

    signal(SIGPIPE, SIG_IGN);
    snprintf(f.dir, sizeof(f.dir), "%s/lbw-bench-transport.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(f.dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(f.ca, sizeof(f.ca), "%s/ca.crt", f.dir);
    for (int i = 0; i < 2; i++) {
        snprintf(f.crt[i], sizeof(f.crt[i]), "%s/node%d.crt", f.dir, i + 1);
        snprintf(f.key[i], sizeof(f.key[i]), "%s/node%d.key", f.dir, i + 1);
    }
    double tls = craft(&f) == 0 ? through_transport(&f) : -1;
    double tcp = through_tcp();
    remove_files(&f);
    if (tls < 0 || tcp < 0) {
        fprintf(stderr, "a transfer failed\n");
        return 1;
    }
    double mb = (double)TOTAL / 1e6;
    printf("%llu MiB one way on 127.0.0.1, one process, one loop:\n", TOTAL >> 20);
    printf("  raft stream over lbwatch transport (mTLS): %8.1f MB/s\n", mb / tls);
    printf("  plain TCP connection:                      %8.1f MB/s\n", mb / tcp);
    printf("  ratio transport/TCP: %.2f\n", tcp / tls);
    return 0;
}
