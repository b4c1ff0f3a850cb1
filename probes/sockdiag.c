/* sockdiag.c - per-port TCP RTT, states and listen queues over NETLINK_SOCK_DIAG. Owns the
 * netlink socket, the port filter bytecode, the receive buffer and the tallies. See
 * sockdiag.h. */
#include "probes/sockdiag.h"

#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>

#define RECV_BUF (64 * 1024)                 /* a dump skb is at most 32 KiB */
#define BC_BLOCK 20                          /* bytes of filter per port: GE, LE, JMP */
#define BC_MAX (LBW_SOCKDIAG_PORTS_MAX * BC_BLOCK)
#define TCP_NEW_SYN_RECV 12                  /* a request socket; reported as SYN_RECV */
#define STATES_ALL ((1u << LBW_SOCKDIAG_STATES) - 2) /* TCP_ESTABLISHED .. TCP_CLOSING; not the
                                                        bound-only sockets of Linux 6.8+ */

struct lbw_sockdiag {
    int fd;
    uint32_t seq;
    size_t nports;
    uint16_t ports[LBW_SOCKDIAG_PORTS_MAX];
    struct lbw_sockdiag_tally work, last;
    unsigned char buf[RECV_BUF];
};

/* --- tally ---------------------------------------------------------------------------------- */

void lbw_sockdiag_tally_init(struct lbw_sockdiag_tally *t, const uint16_t *ports, size_t n,
                             uint32_t seq)
{
    memset(t, 0, sizeof(*t));
    t->seq = seq;
    t->nports = n < LBW_SOCKDIAG_PORTS_MAX ? n : LBW_SOCKDIAG_PORTS_MAX;
    for (size_t i = 0; i < t->nports; i++)
        t->ports[i].port = ports[i];
}

static unsigned rtt_bucket(uint32_t us)
{
    if (us < 4)
        return us;
    unsigned msb = 31u - (unsigned)__builtin_clz(us);
    return msb * 4 + ((us >> (msb - 2)) & 3);
}

/* Bucket b holds [lower, upper) microseconds; below 8 us each bucket is one exact value. */
static void bucket_bounds(unsigned b, double *lower, double *upper)
{
    if (b < 8) {
        *lower = b;
        *upper = b + 1.0;
        return;
    }
    unsigned msb = b / 4, sub = b % 4;
    *lower = ldexp(4.0 + sub, (int)msb - 2);
    *upper = ldexp(5.0 + sub, (int)msb - 2);
}

void lbw_sockdiag_add_rtt(struct lbw_sockdiag_port *p, uint32_t rtt_us)
{
    double s = rtt_us / 1e6;
    if (p->rtt_count == 0 || s < p->rtt_min)
        p->rtt_min = s;
    if (p->rtt_count == 0 || s > p->rtt_max)
        p->rtt_max = s;
    p->rtt_count++;
    p->rtt_sum += s;
    p->rtt_hist[rtt_bucket(rtt_us)]++;
}

double lbw_sockdiag_rtt_quantile(const struct lbw_sockdiag_port *p, double q)
{
    if (p->rtt_count == 0 || !(q > 0) || q > 1)
        return NAN;
    double rank = ceil(q * p->rtt_count);
    if (rank <= 1)
        return p->rtt_min;
    if (rank >= p->rtt_count)
        return p->rtt_max;
    double below = 0;
    for (unsigned b = 0; b < LBW_SOCKDIAG_RTT_BUCKETS; b++) {
        uint32_t c = p->rtt_hist[b];
        if (c == 0 || below + c < rank) {
            below += c;
            continue;
        }
        double lo, hi;
        bucket_bounds(b, &lo, &hi);
        double us = b < 8 ? lo : lo + (hi - lo) * (rank - below - 0.5) / c;
        double v = us / 1e6;
        return v < p->rtt_min ? p->rtt_min : v > p->rtt_max ? p->rtt_max : v;
    }
    return p->rtt_max;
}

/* --- parsing -------------------------------------------------------------------------------- */

static struct lbw_sockdiag_port *port_of(struct lbw_sockdiag_tally *t, uint16_t port)
{
    for (size_t i = 0; i < t->nports; i++)
        if (t->ports[i].port == port)
            return &t->ports[i];
    return NULL;
}

/* The tcp_info attribute's RTT in microseconds, 0 when absent. -1 when attributes are
 * malformed. */
static int64_t attrs_rtt(const unsigned char *a, size_t len)
{
    int64_t rtt = 0;
    while (len >= sizeof(struct rtattr)) {
        struct rtattr rta;
        memcpy(&rta, a, sizeof(rta));
        if (rta.rta_len < sizeof(rta) || rta.rta_len > len)
            return -1;
        size_t dlen = rta.rta_len - RTA_LENGTH(0);
        if (rta.rta_type == INET_DIAG_INFO &&
            dlen >= offsetof(struct tcp_info, tcpi_rtt) + sizeof(uint32_t)) {
            uint32_t us;
            memcpy(&us, a + RTA_LENGTH(0) + offsetof(struct tcp_info, tcpi_rtt), sizeof(us));
            rtt = us;
        }
        size_t step = RTA_ALIGN(rta.rta_len);
        if (step >= len)
            break;
        a += step;
        len -= step;
    }
    return rtt;
}

static int add_socket(struct lbw_sockdiag_tally *t, const unsigned char *p, size_t len)
{
    struct inet_diag_msg m;
    if (len < sizeof(m))
        return -1;
    memcpy(&m, p, sizeof(m));
    size_t off = NLMSG_ALIGN(sizeof(m));
    int64_t rtt = attrs_rtt(p + (off < len ? off : len), off < len ? len - off : 0);
    if (rtt < 0)
        return -1;
    t->sockets++;
    unsigned state = m.idiag_state == TCP_NEW_SYN_RECV ? TCP_SYN_RECV : m.idiag_state;
    struct lbw_sockdiag_port *port = port_of(t, ntohs(m.id.idiag_sport));
    if (!port || (m.idiag_family != AF_INET && m.idiag_family != AF_INET6) || state == 0 ||
        state >= LBW_SOCKDIAG_STATES)
        return 0; /* not ours, or a state this kernel interface does not define */
    port->states[state]++;
    if (state == TCP_LISTEN) {
        port->listeners++;
        port->listen_queue += m.idiag_rqueue;
        port->listen_max += m.idiag_wqueue;
        double fill = m.idiag_wqueue ? (double)m.idiag_rqueue / m.idiag_wqueue
                                     : (m.idiag_rqueue ? 1.0 : 0.0);
        if (fill > port->listen_fullest)
            port->listen_fullest = fill;
    } else if (rtt > 0) {
        lbw_sockdiag_add_rtt(port, (uint32_t)rtt);
    }
    return 0;
}

/* One message addressed to this tally. Returns 1 (done), 0 or -1. */
static int add_message(struct lbw_sockdiag_tally *t, const struct nlmsghdr *h,
                       const unsigned char *payload, size_t plen)
{
    if (h->nlmsg_flags & NLM_F_DUMP_INTR)
        t->interrupted = 1;
    if (h->nlmsg_type == NLMSG_DONE) {
        int status = 0;
        if (plen >= sizeof(status))
            memcpy(&status, payload, sizeof(status));
        if (status < 0) {
            t->error = status == INT32_MIN ? EINVAL : -status;
            return -1;
        }
        t->done = 1;
        return 1;
    }
    if (h->nlmsg_type == NLMSG_ERROR) {
        struct nlmsgerr e;
        if (plen < sizeof(e.error))
            return -1;
        memcpy(&e.error, payload, sizeof(e.error));
        if (e.error == 0)
            return 0; /* an acknowledgement */
        t->error = e.error < 0 && e.error != INT32_MIN ? -e.error : EINVAL;
        return -1;
    }
    if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY)
        return add_socket(t, payload, plen) < 0 ? -1 : 0;
    return 0;
}

int lbw_sockdiag_parse(struct lbw_sockdiag_tally *t, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    while (len >= sizeof(struct nlmsghdr)) {
        struct nlmsghdr h;
        memcpy(&h, p, sizeof(h));
        if (h.nlmsg_len < NLMSG_HDRLEN || h.nlmsg_len > len)
            return -1;
        if (h.nlmsg_seq == t->seq) {
            int r = add_message(t, &h, p + NLMSG_HDRLEN, h.nlmsg_len - NLMSG_HDRLEN);
            if (r != 0)
                return r;
        }
        size_t step = NLMSG_ALIGN(h.nlmsg_len);
        if (step >= len)
            break;
        p += step;
        len -= step;
    }
    return 0;
}

/* --- emitting ------------------------------------------------------------------------------- */

static const char *const state_names[LBW_SOCKDIAG_STATES] = {
    NULL,         "established", "syn_sent", "syn_recv", "fin_wait1",
    "fin_wait2",  "time_wait",   "close",    "close_wait", "last_ack",
    "listen",     "closing",
};

static int emit_port(const struct lbw_sockdiag_port *p, const struct lbw_emitter *e)
{
    char port[8];
    int n = 0;
    snprintf(port, sizeof(port), "%u", (unsigned)p->port);
    for (size_t s = 1; s < LBW_SOCKDIAG_STATES; s++) {
        struct lbw_label l[] = {{"port", port}, {"state", state_names[s]}};
        n += lbw_emitn(e, "lbwatch_tcp_connections", l, 2, p->states[s]) == 0;
    }
    n += lbw_emit1(e, "lbwatch_tcp_rtt_seconds_count", "port", port, p->rtt_count) == 0;
    n += lbw_emit1(e, "lbwatch_tcp_rtt_seconds_sum", "port", port, p->rtt_sum) == 0;
    if (p->rtt_count > 0) {
        static const char *const qs[] = {"0.5", "0.9", "0.99"};
        static const double qv[] = {0.5, 0.9, 0.99};
        for (size_t i = 0; i < 3; i++) {
            struct lbw_label l[] = {{"port", port}, {"quantile", qs[i]}};
            n += lbw_emitn(e, "lbwatch_tcp_rtt_seconds", l, 2,
                           lbw_sockdiag_rtt_quantile(p, qv[i])) == 0;
        }
        n += lbw_emit1(e, "lbwatch_tcp_rtt_seconds_min", "port", port, p->rtt_min) == 0;
        n += lbw_emit1(e, "lbwatch_tcp_rtt_seconds_max", "port", port, p->rtt_max) == 0;
        n += lbw_emit1(e, "lbwatch_tcp_rtt_seconds_avg", "port", port,
                       p->rtt_sum / p->rtt_count) == 0;
    }
    n += lbw_emit1(e, "lbwatch_tcp_listeners", "port", port, p->listeners) == 0;
    if (p->listeners > 0) {
        n += lbw_emit1(e, "lbwatch_tcp_listen_queue_length", "port", port,
                       (double)p->listen_queue) == 0;
        n += lbw_emit1(e, "lbwatch_tcp_listen_queue_max", "port", port,
                       (double)p->listen_max) == 0;
        n += lbw_emit1(e, "lbwatch_tcp_listen_queue_fullest_ratio", "port", port,
                       p->listen_fullest) == 0;
    }
    return n;
}

int lbw_sockdiag_emit(const struct lbw_sockdiag_tally *t, const struct lbw_emitter *e)
{
    int n = 0;
    for (size_t i = 0; i < t->nports; i++)
        n += emit_port(&t->ports[i], e);
    return n;
}

/* --- the collector -------------------------------------------------------------------------- */

static void put_op(unsigned char *bc, size_t off, unsigned char code, unsigned char yes,
                   unsigned short no)
{
    struct inet_diag_bc_op op = {code, yes, no};
    memcpy(bc + off, &op, sizeof(op));
}

/* Kernel-side filter "local port is one of ports[n]", built as `ss` builds an OR of
 * (sport >= p && sport <= p): per port a GE and an LE test, each followed by an op holding the
 * port, whose failure jumps to the next port's block, then a JMP that accepts. Reaching the
 * end exactly accepts; jumping 4 bytes past it rejects. Every jump target lies on the chain of
 * "yes" offsets from the start, which the kernel's bytecode audit requires. Returns the
 * length. */
static size_t build_filter(const uint16_t *ports, size_t n, unsigned char *bc)
{
    size_t total = n * BC_BLOCK - 4;
    for (size_t i = 0; i < n; i++) {
        size_t b = i * BC_BLOCK;
        put_op(bc, b, INET_DIAG_BC_S_GE, 8, BC_BLOCK);
        put_op(bc, b + 4, INET_DIAG_BC_NOP, 0, ports[i]);
        put_op(bc, b + 8, INET_DIAG_BC_S_LE, 8, BC_BLOCK - 8);
        put_op(bc, b + 12, INET_DIAG_BC_NOP, 0, ports[i]);
        if (i + 1 < n)
            put_op(bc, b + 16, INET_DIAG_BC_JMP, 4, (unsigned short)(total - (b + 16)));
    }
    return total;
}

int lbw_sockdiag_socket(unsigned timeout_ms)
{
    int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0)
        return -1;
    unsigned ms = timeout_ms ? timeout_ms : 2000;
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

static int check_ports(const uint16_t *ports, size_t n, char *err, size_t errlen)
{
    if (n == 0 || n > LBW_SOCKDIAG_PORTS_MAX) {
        snprintf(err, errlen, "%zu ports (1 to %d)", n, LBW_SOCKDIAG_PORTS_MAX);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < i; j++)
            if (ports[j] == ports[i]) {
                snprintf(err, errlen, "port %u repeats", (unsigned)ports[i]);
                return -1;
            }
        if (ports[i] == 0) {
            snprintf(err, errlen, "port 0");
            return -1;
        }
    }
    return 0;
}

int lbw_sockdiag_new(struct lbw_sockdiag **out, const uint16_t *ports, size_t n,
                     unsigned timeout_ms, char *err, size_t errlen)
{
    if (check_ports(ports, n, err, errlen) < 0)
        return -1;
    struct lbw_sockdiag *d = calloc(1, sizeof(*d));
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    d->nports = n;
    memcpy(d->ports, ports, n * sizeof(ports[0]));
    lbw_sockdiag_tally_init(&d->last, ports, n, 0);
    d->fd = lbw_sockdiag_socket(timeout_ms);
    if (d->fd < 0) {
        snprintf(err, errlen, "netlink sock_diag socket: %s", strerror(errno));
        free(d);
        return -1;
    }
    *out = d;
    return 0;
}

void lbw_sockdiag_free(struct lbw_sockdiag *d)
{
    if (!d)
        return;
    close(d->fd);
    free(d);
}

/* One dump: which sockets, what to ask for, where replies go. */
struct dump {
    int fd;
    unsigned char *buf;
    size_t size;
    int family;
    uint32_t states;          /* TCPF_* mask */
    uint8_t ext;              /* INET_DIAG_* attributes wanted */
    const uint16_t *ports;    /* kernel-side local port filter; NULL: none */
    size_t nports;
};

static int send_request(const struct dump *q, uint32_t seq)
{
    struct {
        struct nlmsghdr h;
        struct inet_diag_req_v2 r;
        struct rtattr a;
        unsigned char bc[BC_MAX];
    } req;
    memset(&req, 0, sizeof(req));
    size_t bclen = q->ports ? build_filter(q->ports, q->nports, req.bc) : 0;
    req.r.sdiag_family = (unsigned char)q->family;
    req.r.sdiag_protocol = IPPROTO_TCP;
    req.r.idiag_ext = q->ext;
    req.r.idiag_states = q->states;
    req.h.nlmsg_len = (uint32_t)NLMSG_LENGTH(sizeof(req.r));
    if (bclen) {
        req.a.rta_type = INET_DIAG_REQ_BYTECODE;
        req.a.rta_len = (unsigned short)RTA_LENGTH(bclen);
        req.h.nlmsg_len += (uint32_t)RTA_LENGTH(bclen);
    }
    req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.h.nlmsg_seq = seq;
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    ssize_t r;
    do
        r = sendto(q->fd, &req, req.h.nlmsg_len, 0, (struct sockaddr *)&kernel,
                   sizeof(kernel));
    while (r < 0 && errno == EINTR);
    return r == (ssize_t)req.h.nlmsg_len ? 0 : -1;
}

/* One datagram from the kernel (anything else is dropped). Returns its length, or -1. */
static ssize_t receive(const struct dump *q, char *err, size_t errlen)
{
    for (;;) {
        struct sockaddr_nl from;
        struct iovec iov = {q->buf, q->size};
        struct msghdr msg = {.msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov,
                             .msg_iovlen = 1};
        ssize_t n = recvmsg(q->fd, &msg, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "sock_diag receive: %s",
                     errno == EAGAIN ? "timed out" : strerror(errno));
            return -1;
        }
        if (msg.msg_flags & MSG_TRUNC) {
            snprintf(err, errlen, "sock_diag reply larger than %zu bytes", q->size);
            return -1;
        }
        if (msg.msg_namelen == sizeof(from) && from.nl_pid == 0)
            return n;
    }
}

/* Runs one dump into t (its seq is set here). Returns 0, 1 when the kernel has no such family
 * (IPv6 disabled), or -1. */
static int run_dump(const struct dump *q, struct lbw_sockdiag_tally *t, uint32_t seq,
                    char *err, size_t errlen)
{
    t->seq = seq;
    t->done = 0;
    if (send_request(q, seq) < 0) {
        snprintf(err, errlen, "sock_diag request: %s", strerror(errno));
        return -1;
    }
    for (;;) {
        ssize_t n = receive(q, err, errlen);
        if (n < 0)
            return -1;
        int r = lbw_sockdiag_parse(t, q->buf, (size_t)n);
        if (r == 1)
            return 0;
        if (r < 0 && q->family == AF_INET6 && (t->error == ENOENT || t->error == EAFNOSUPPORT)) {
            t->error = 0;
            return 1;
        }
        if (r < 0) {
            snprintf(err, errlen, "sock_diag: %s", t->error ? strerror(t->error)
                                                            : "malformed reply");
            return -1;
        }
    }
}

int lbw_sockdiag_scan(struct lbw_sockdiag *d, char *err, size_t errlen)
{
    static const int families[] = {AF_INET, AF_INET6};
    lbw_sockdiag_tally_init(&d->work, d->ports, d->nports, 0);
    for (size_t i = 0; i < 2; i++) {
        struct dump q = {d->fd, d->buf, sizeof(d->buf), families[i], STATES_ALL,
                         1 << (INET_DIAG_INFO - 1), d->ports, d->nports};
        if (run_dump(&q, &d->work, ++d->seq, err, errlen) < 0)
            return -1;
    }
    d->last = d->work;
    return 0;
}

int lbw_sockdiag_count_listening(int fd, uint32_t *seq, void *buf, size_t size,
                                 uint64_t counts[2], char *err, size_t errlen)
{
    static const int families[] = {AF_INET, AF_INET6};
    struct lbw_sockdiag_tally t;
    for (size_t i = 0; i < 2; i++) {
        struct dump q = {fd, buf, size, families[i], 1u << TCP_LISTEN, 0, NULL, 0};
        lbw_sockdiag_tally_init(&t, NULL, 0, 0);
        int r = run_dump(&q, &t, ++*seq, err, errlen);
        if (r < 0)
            return -1;
        counts[i] = r == 0 ? t.sockets : 0;
    }
    return 0;
}

const struct lbw_sockdiag_tally *lbw_sockdiag_tally(const struct lbw_sockdiag *d)
{
    return &d->last;
}

int lbw_sockdiag_collect(struct lbw_sockdiag *d, const struct lbw_emitter *e, char *err,
                         size_t errlen)
{
    if (lbw_sockdiag_scan(d, err, errlen) < 0)
        return -1;
    return lbw_sockdiag_emit(&d->last, e);
}
