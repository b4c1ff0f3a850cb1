/* test_sockdiag.c - sock_diag: the RTT histogram and its quantiles, the netlink parser on
 * hand-built replies (states, listen queues, other ports and sequence numbers skipped, every
 * malformed length refused, any alignment), and the live kernel: a loopback listener with K
 * connections not yet accepted shows an accept queue of K, and a connection that exchanged
 * data shows an RTT between 0 and 1 s. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>

#include "probes/sockdiag.h"
#include "tests/support/samplecap.h"

/* --- RTT summary ---------------------------------------------------------------------------- */

static void rtt_quantiles(void **state)
{
    (void)state;
    struct lbw_sockdiag_port p;
    memset(&p, 0, sizeof(p));
    assert_true(isnan(lbw_sockdiag_rtt_quantile(&p, 0.5)));
    lbw_sockdiag_add_rtt(&p, 1234);
    for (int i = 0; i < 3; i++) /* one sample: every quantile is that sample */
        assert_float_equal(lbw_sockdiag_rtt_quantile(&p, (double[]){0.01, 0.5, 1}[i]),
                           0.001234, 1e-12);

    memset(&p, 0, sizeof(p));
    for (uint32_t us = 1; us <= 100000; us++)
        lbw_sockdiag_add_rtt(&p, us);
    assert_int_equal(p.rtt_count, 100000);
    assert_float_equal(p.rtt_min, 1e-6, 1e-15);
    assert_float_equal(p.rtt_max, 0.1, 1e-15);
    assert_float_equal(p.rtt_sum, 100000.0 * 100001 / 2 / 1e6, 1e-6);
    const double q[] = {0.5, 0.9, 0.99, 0.001};
    for (size_t i = 0; i < 4; i++) {
        double exact = q[i] * 0.1;
        double got = lbw_sockdiag_rtt_quantile(&p, q[i]);
        if (fabs(got - exact) > 0.25 * exact)
            fail_msg("q%.3f: %g, exact %g", q[i], got, exact);
    }
    assert_float_equal(lbw_sockdiag_rtt_quantile(&p, 1), 0.1, 1e-12);
    assert_true(isnan(lbw_sockdiag_rtt_quantile(&p, 0)));
    assert_true(isnan(lbw_sockdiag_rtt_quantile(&p, 1.5)));

    memset(&p, 0, sizeof(p));
    lbw_sockdiag_add_rtt(&p, UINT32_MAX); /* the last bucket */
    lbw_sockdiag_add_rtt(&p, 2);
    assert_float_equal(lbw_sockdiag_rtt_quantile(&p, 1), UINT32_MAX / 1e6, 1e-6);
    assert_float_equal(lbw_sockdiag_rtt_quantile(&p, 0.5), 2e-6, 1e-12);
}

/* --- hand-built replies --------------------------------------------------------------------- */

struct reply {
    unsigned char b[8192];
    size_t len;
};

static void add_msg(struct reply *r, uint16_t type, uint16_t flags, uint32_t seq,
                    const void *payload, size_t plen)
{
    struct nlmsghdr h = {.nlmsg_len = (uint32_t)NLMSG_LENGTH(plen), .nlmsg_type = type,
                         .nlmsg_flags = flags, .nlmsg_seq = seq};
    assert_true(r->len + NLMSG_ALIGN(h.nlmsg_len) <= sizeof(r->b));
    memset(r->b + r->len, 0, NLMSG_ALIGN(h.nlmsg_len));
    memcpy(r->b + r->len, &h, sizeof(h));
    memcpy(r->b + r->len + NLMSG_HDRLEN, payload, plen);
    r->len += NLMSG_ALIGN(h.nlmsg_len);
}

/* A socket message: inet_diag_msg, then tcp_info (info_len bytes of it, 0 = none). */
static void add_sock(struct reply *r, uint32_t seq, int family, uint8_t st, uint16_t sport,
                     uint32_t rq, uint32_t wq, uint32_t rtt_us, size_t info_len)
{
    unsigned char p[512];
    struct inet_diag_msg m;
    memset(&m, 0, sizeof(m));
    m.idiag_family = (uint8_t)family;
    m.idiag_state = st;
    m.id.idiag_sport = htons(sport);
    m.idiag_rqueue = rq;
    m.idiag_wqueue = wq;
    memcpy(p, &m, sizeof(m));
    size_t len = NLMSG_ALIGN(sizeof(m));
    if (info_len) {
        struct tcp_info ti;
        memset(&ti, 0, sizeof(ti));
        ti.tcpi_rtt = rtt_us;
        struct rtattr a = {.rta_len = (unsigned short)RTA_LENGTH(info_len),
                           .rta_type = INET_DIAG_INFO};
        memcpy(p + len, &a, sizeof(a));
        memcpy(p + len + RTA_LENGTH(0), &ti, info_len);
        len += RTA_ALIGN(a.rta_len);
    }
    add_msg(r, SOCK_DIAG_BY_FAMILY, NLM_F_MULTI, seq, p, len);
}

static void add_done(struct reply *r, uint32_t seq, int status)
{
    add_msg(r, NLMSG_DONE, NLM_F_MULTI, seq, &status, sizeof(status));
}

static const uint16_t ports[] = {443, 8443};

static void parse_reply(void **state)
{
    (void)state;
    static struct reply r;
    static struct lbw_sockdiag_tally t;
    r.len = 0;
    size_t full = sizeof(struct tcp_info);
    add_sock(&r, 7, AF_INET, TCP_LISTEN, 443, 3, 128, 0, full);
    add_sock(&r, 7, AF_INET6, TCP_LISTEN, 443, 30, 40, 0, 0);
    add_sock(&r, 7, AF_INET, TCP_ESTABLISHED, 443, 0, 0, 1000, full);
    add_sock(&r, 7, AF_INET6, TCP_ESTABLISHED, 443, 0, 0, 3000, 104); /* Linux 2.6's tcp_info */
    add_sock(&r, 7, AF_INET, TCP_ESTABLISHED, 443, 0, 0, 0, full);    /* no RTT yet */
    add_sock(&r, 7, AF_INET, TCP_FIN_WAIT1, 443, 0, 0, 777, 64);      /* too short for tcpi_rtt */
    add_sock(&r, 7, AF_INET, TCP_TIME_WAIT, 443, 0, 0, 0, 0);
    add_sock(&r, 7, AF_INET, TCP_CLOSE_WAIT, 8443, 0, 0, 500, full);
    add_sock(&r, 7, AF_INET, TCP_ESTABLISHED, 80, 0, 0, 999, full);   /* not ours */
    add_sock(&r, 6, AF_INET, TCP_ESTABLISHED, 443, 0, 0, 999, full);  /* a stale reply */
    add_sock(&r, 7, AF_UNIX, TCP_ESTABLISHED, 443, 0, 0, 999, full);  /* not TCP/IP */
    add_sock(&r, 7, AF_INET, 99, 443, 0, 0, 999, full);               /* no such state */
    add_sock(&r, 7, AF_INET, 12, 443, 0, 0, 0, 0);                    /* a request socket */
    add_done(&r, 7, 0);

    for (size_t shift = 0; shift < 4; shift++) { /* any alignment */
        static unsigned char moved[sizeof(r.b) + 4];
        memcpy(moved + shift, r.b, r.len);
        lbw_sockdiag_tally_init(&t, ports, 2, 7);
        assert_int_equal(lbw_sockdiag_parse(&t, moved + shift, r.len), 1);
        assert_int_equal(t.done, 1);
        assert_int_equal(t.sockets, 12); /* all but the stale one */
        assert_int_equal(t.ports[0].states[TCP_SYN_RECV], 1);
        const struct lbw_sockdiag_port *p = &t.ports[0];
        assert_int_equal(p->listeners, 2);
        assert_int_equal(p->listen_queue, 33);
        assert_int_equal(p->listen_max, 168);
        assert_float_equal(p->listen_fullest, 0.75, 1e-12);
        assert_int_equal(p->states[TCP_ESTABLISHED], 3);
        assert_int_equal(p->states[TCP_TIME_WAIT], 1);
        assert_int_equal(p->states[TCP_FIN_WAIT1], 1);
        assert_int_equal(p->states[TCP_LISTEN], 2);
        assert_int_equal(p->rtt_count, 2);
        assert_float_equal(p->rtt_min, 0.001, 1e-12);
        assert_float_equal(p->rtt_max, 0.003, 1e-12);
        assert_int_equal(t.ports[1].states[TCP_CLOSE_WAIT], 1);
        assert_int_equal(t.ports[1].rtt_count, 1);
    }

    struct samplecap cap;
    sc_init(&cap);
    struct lbw_emitter e = sc_emitter(&cap);
    /* 443: 11 states, count, sum, 3 quantiles, min, max, avg, listeners, 3 listen metrics;
     * 8443: the same without the listen metrics */
    assert_int_equal(lbw_sockdiag_emit(&t, &e), 11 + 8 + 4 + 11 + 8 + 1);
    assert_int_equal(sc_duplicates(&cap), 0);
    assert_float_equal(sc_val(&cap, "lbwatch_tcp_connections{port=\"443\",state=\"established\"}"),
                       3, 0);
    assert_float_equal(sc_val(&cap, "lbwatch_tcp_connections{port=\"443\",state=\"syn_recv\"}"),
                       1, 0);
    assert_float_equal(sc_val(&cap, "lbwatch_tcp_connections{port=\"443\",state=\"closing\"}"),
                       0, 0);
    assert_float_equal(sc_val(&cap, "lbwatch_tcp_listen_queue_length{port=\"443\"}"), 33, 0);
    assert_float_equal(sc_val(&cap, "lbwatch_tcp_listen_queue_max{port=\"443\"}"), 168, 0);
    assert_float_equal(sc_val(&cap, "lbwatch_tcp_rtt_seconds_count{port=\"443\"}"), 2, 0);
    assert_float_equal(sc_val(&cap, "lbwatch_tcp_rtt_seconds_sum{port=\"443\"}"), 0.004, 1e-12);
    assert_float_equal(sc_val(&cap, "lbwatch_tcp_rtt_seconds_avg{port=\"443\"}"), 0.002, 1e-12);
    assert_float_equal(sc_val(&cap, "lbwatch_tcp_rtt_seconds{port=\"443\",quantile=\"0.99\"}"),
                       0.003, 1e-12);
    assert_float_equal(sc_val(&cap, "lbwatch_tcp_listeners{port=\"8443\"}"), 0, 0);
    assert_true(isnan(sc_val(&cap, "lbwatch_tcp_listen_queue_length{port=\"8443\"}")));
    sc_free(&cap);
}

static void parse_rejects(void **state)
{
    (void)state;
    static struct reply r;
    static struct lbw_sockdiag_tally t;
    size_t full = sizeof(struct tcp_info);

    /* a message longer than the buffer */
    r.len = 0;
    add_sock(&r, 1, AF_INET, TCP_ESTABLISHED, 443, 0, 0, 10, full);
    lbw_sockdiag_tally_init(&t, ports, 2, 1);
    assert_int_equal(lbw_sockdiag_parse(&t, r.b, r.len - 8), -1);
    /* a length shorter than a header */
    uint32_t tiny = 8;
    memcpy(r.b, &tiny, sizeof(tiny));
    assert_int_equal(lbw_sockdiag_parse(&t, r.b, r.len), -1);

    /* an attribute running past its message */
    r.len = 0;
    add_sock(&r, 1, AF_INET, TCP_ESTABLISHED, 443, 0, 0, 10, full);
    unsigned short bad = 2000;
    memcpy(r.b + NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct inet_diag_msg)), &bad, sizeof(bad));
    lbw_sockdiag_tally_init(&t, ports, 2, 1);
    assert_int_equal(lbw_sockdiag_parse(&t, r.b, r.len), -1);

    /* a socket message too short for inet_diag_msg */
    r.len = 0;
    unsigned char shortmsg[16] = {AF_INET, TCP_ESTABLISHED};
    add_msg(&r, SOCK_DIAG_BY_FAMILY, NLM_F_MULTI, 1, shortmsg, sizeof(shortmsg));
    lbw_sockdiag_tally_init(&t, ports, 2, 1);
    assert_int_equal(lbw_sockdiag_parse(&t, r.b, r.len), -1);

    /* the kernel's refusal, and a failed dump */
    r.len = 0;
    struct nlmsgerr err = {.error = -EPERM};
    add_msg(&r, NLMSG_ERROR, 0, 1, &err, sizeof(err));
    lbw_sockdiag_tally_init(&t, ports, 2, 1);
    assert_int_equal(lbw_sockdiag_parse(&t, r.b, r.len), -1);
    assert_int_equal(t.error, EPERM);
    r.len = 0;
    add_done(&r, 1, -EINTR);
    lbw_sockdiag_tally_init(&t, ports, 2, 1);
    assert_int_equal(lbw_sockdiag_parse(&t, r.b, r.len), -1);
    assert_int_equal(t.error, EINTR);

    /* a partial reply: more to come; a truncated trailing header is ignored */
    r.len = 0;
    add_sock(&r, 1, AF_INET, TCP_ESTABLISHED, 443, 0, 0, 10, full);
    lbw_sockdiag_tally_init(&t, ports, 2, 1);
    assert_int_equal(lbw_sockdiag_parse(&t, r.b, r.len + 0), 0);
    assert_int_equal(lbw_sockdiag_parse(&t, r.b, 10), 0);
    assert_int_equal(t.done, 0);
    assert_int_equal(t.ports[0].rtt_count, 1);
}

static void bad_configs(void **state)
{
    (void)state;
    struct lbw_sockdiag *d;
    char err[128];
    uint16_t twice[] = {443, 443}, zero[] = {0};
    assert_int_equal(lbw_sockdiag_new(&d, twice, 2, 0, err, sizeof(err)), -1);
    assert_int_equal(lbw_sockdiag_new(&d, zero, 1, 0, err, sizeof(err)), -1);
    assert_int_equal(lbw_sockdiag_new(&d, twice, 0, 0, err, sizeof(err)), -1);
}

/* --- the live kernel ------------------------------------------------------------------------ */

static int listen_on(int family, uint16_t port, int backlog, uint16_t *bound)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof(ss));
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof(*a);
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        a->sin6_addr = in6addr_loopback;
        len = sizeof(*a);
    }
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, backlog) < 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
        close(fd);
        return -1;
    }
    *bound = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                     : ((struct sockaddr_in6 *)&ss)->sin6_port);
    return fd;
}

static int connect_to(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

/* Scans until the port's accept queue holds want (the last handshake ACK may still be in
 * flight on loopback), for at most 2 s. */
static const struct lbw_sockdiag_port *scan_until_queue(struct lbw_sockdiag *d, uint64_t want)
{
    char err[256];
    const struct lbw_sockdiag_port *p = &lbw_sockdiag_tally(d)->ports[0];
    for (int i = 0; i < 200; i++) {
        if (lbw_sockdiag_scan(d, err, sizeof(err)) < 0)
            fail_msg("scan: %s", err);
        if (p->listen_queue == want)
            break;
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    return p;
}

static void live_queue_and_rtt(void **state)
{
    (void)state;
    enum { K = 3, BACKLOG = 8 };
    uint16_t port;
    int lfd = listen_on(AF_INET, 0, BACKLOG, &port);
    assert_true(lfd >= 0);
    uint16_t port6;
    int lfd6 = listen_on(AF_INET6, port, BACKLOG, &port6); /* -1 without IPv6 */

    struct lbw_sockdiag *d;
    char err[256];
    uint16_t other;
    int lfd2 = listen_on(AF_INET, 0, 4, &other); /* the filter's second port */
    assert_true(lfd2 >= 0);
    uint16_t watch[] = {port, other};
    assert_int_equal(lbw_sockdiag_new(&d, watch, 2, 0, err, sizeof(err)), 0);

    int clients[K];
    for (int i = 0; i < K; i++)
        clients[i] = connect_to(port);
    const struct lbw_sockdiag_port *p = scan_until_queue(d, K);
    const struct lbw_sockdiag_tally *t = lbw_sockdiag_tally(d);
    assert_int_equal(p->port, port);
    assert_int_equal(p->listen_queue, K);
    assert_int_equal(p->listeners, lfd6 >= 0 ? 2 : 1);
    assert_int_equal(p->listen_max, lfd6 >= 0 ? 2 * BACKLOG : BACKLOG);
    assert_float_equal(p->listen_fullest, (double)K / BACKLOG, 1e-12);
    assert_int_equal(p->states[TCP_ESTABLISHED], K); /* the queued server ends */
    /* the kernel filter let through only the two ports' sockets: listeners and queued ends,
     * not the clients (whose remote port is ours) nor anything else on the host */
    assert_int_equal(t->sockets, (lfd6 >= 0 ? 2 : 1) + K + 1);
    assert_int_equal(t->ports[1].listeners, 1);
    assert_int_equal(t->ports[1].listen_max, 4);

    /* accept one and exchange data: that connection has an RTT */
    int s = accept(lfd, NULL, NULL);
    assert_true(s >= 0);
    char buf[64];
    for (int round = 0; round < 5; round++) {
        assert_int_equal(write(clients[0], "ping", 4), 4);
        assert_int_equal(read(s, buf, sizeof(buf)), 4);
        assert_int_equal(write(s, "pong", 4), 4);
        assert_int_equal(read(clients[0], buf, sizeof(buf)), 4);
    }
    p = scan_until_queue(d, K - 1);
    assert_int_equal(p->listen_queue, K - 1);
    assert_true(p->rtt_count >= 1);
    assert_true(p->rtt_min > 0);
    assert_true(p->rtt_max < 1.0);
    assert_int_equal(t->ports[1].states[TCP_ESTABLISHED], 0); /* nothing on the other port */
    assert_int_equal(t->ports[1].rtt_count, 0);

    struct samplecap cap;
    sc_init(&cap);
    struct lbw_emitter e = sc_emitter(&cap);
    assert_true(lbw_sockdiag_collect(d, &e, err, sizeof(err)) > 0);
    char key[128];
    snprintf(key, sizeof(key), "lbwatch_tcp_listen_queue_length{port=\"%u\"}", port);
    assert_float_equal(sc_val(&cap, key), K - 1, 0);
    snprintf(key, sizeof(key), "lbwatch_tcp_rtt_seconds{port=\"%u\",quantile=\"0.5\"}", port);
    double median = sc_val(&cap, key);
    assert_true(median > 0 && median < 1.0);
    sc_free(&cap);

    close(s);
    for (int i = 0; i < K; i++)
        close(clients[i]);
    if (lfd6 >= 0)
        close(lfd6);
    close(lfd2);
    close(lfd);
    lbw_sockdiag_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rtt_quantiles),
        cmocka_unit_test(parse_reply),
        cmocka_unit_test(parse_rejects),
        cmocka_unit_test(bad_configs),
        cmocka_unit_test(live_queue_and_rtt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
