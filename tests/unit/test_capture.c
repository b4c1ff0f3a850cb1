/* test_capture.c - the capture drivers: a pcap file (micro- and nanosecond) is accounted
 * exactly as the same packets fed directly; unreadable, corrupt and cut files fail with a
 * reason; the loopback interface's addresses; a live capture on lo sees the datagrams sent
 * to a port (skipped when capturing is not permitted), with its tap and samples. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "probes/capture.h"
#include "tests/support/pktfx.h"
#include "tests/support/testutil.h"

#define T0 1700000000LL
#define NPKT 8

static char dir[256];

static int setup(void **state)
{
    (void)state;
    return tu_tmpdir("lbw-capture", dir, sizeof(dir));
}

static int teardown(void **state)
{
    (void)state;
    tu_rmrf(dir);
    return 0;
}

static struct lbw_traffic *engine(uint16_t port, const char *local)
{
    struct lbw_netaddr a;
    assert_int_equal(lbw_netaddr_parse(local, &a), 0);
    struct lbw_traffic_config c = {.ports = &port, .nports = 1, .local = &a, .nlocal = 1,
                                   .handshake = {.capacity = 64, .seed = 1}};
    struct lbw_traffic *t;
    char err[128];
    assert_int_equal(lbw_traffic_new(&t, &c, err, sizeof(err)), 0);
    return t;
}

struct pkts {
    uint8_t b[NPKT][256];
    size_t len[NPKT];
    int64_t us[NPKT];
};

/* A handshake, a ClientHello, a reset and a UDP datagram on Ethernet, 150 µs apart. */
static void make_pkts(struct pkts *p)
{
    uint8_t l4[512], l3[600], hello[512];
    static const uint16_t v13[] = {0x0304};
    size_t hl = fx_client_hello(hello, 0x0303, v13, 1);
    struct {
        const char *src, *dst;
        uint16_t sp, dp;
        uint8_t flags;
        int hello;
    } seq[NPKT - 1] = {
        {"192.0.2.7", "10.0.0.1", 50000, 443, LBW_TCP_SYN, 0},
        {"10.0.0.1", "192.0.2.7", 443, 50000, LBW_TCP_SYN | LBW_TCP_ACK, 0},
        {"192.0.2.7", "10.0.0.1", 50000, 443, LBW_TCP_ACK, 0},
        {"192.0.2.7", "10.0.0.1", 50000, 443, LBW_TCP_ACK | LBW_TCP_PSH, 1},
        {"192.0.2.7", "10.0.0.1", 50000, 443, LBW_TCP_FIN | LBW_TCP_ACK, 0},
        {"192.0.2.7", "10.0.0.1", 50001, 443, LBW_TCP_SYN, 0},
        {"10.0.0.1", "192.0.2.7", 443, 50001, LBW_TCP_RST | LBW_TCP_ACK, 0},
    };
    for (int i = 0; i < NPKT - 1; i++) {
        size_t n = fx_tcp(l4, seq[i].sp, seq[i].dp, seq[i].flags, seq[i].hello ? hello : NULL,
                          seq[i].hello ? hl : 0);
        n = fx_ipv4(l3, seq[i].src, seq[i].dst, 6, 0, 0, l4, n);
        p->len[i] = fx_eth(p->b[i], 0, 0x0800, l3, n);
        p->us[i] = 150 * i;
    }
    size_t n = fx_udp(l4, 5000, 443, (const uint8_t *)"quic?", 5);
    n = fx_ipv4(l3, "192.0.2.7", "10.0.0.1", 17, 0, 0, l4, n);
    p->len[NPKT - 1] = fx_eth(p->b[NPKT - 1], 0, 0x0800, l3, n);
    p->us[NPKT - 1] = 150 * (NPKT - 1);
}

/* Writes the packets to path with the given timestamp precision. */
static void write_pcap(const char *path, const struct pkts *p, int precision)
{
    pcap_t *dead = pcap_open_dead_with_tstamp_precision(DLT_EN10MB, 65535, (u_int)precision);
    assert_non_null(dead);
    pcap_dumper_t *d = pcap_dump_open(dead, path);
    assert_non_null(d);
    for (int i = 0; i < NPKT; i++) {
        struct pcap_pkthdr h = {.caplen = (bpf_u_int32)p->len[i], .len = (bpf_u_int32)p->len[i]};
        h.ts.tv_sec = T0;
        h.ts.tv_usec = precision == PCAP_TSTAMP_PRECISION_NANO ? p->us[i] * 1000 : p->us[i];
        pcap_dump((u_char *)d, &h, p->b[i]);
    }
    pcap_dump_close(d);
    pcap_close(dead);
}

static void assert_same(const struct lbw_traffic *a, const struct lbw_traffic *b)
{
    assert_memory_equal(lbw_traffic_counters(a), lbw_traffic_counters(b),
                        sizeof(struct lbw_traffic_counters));
    struct lbw_hs_stats ha, hb;
    lbw_traffic_handshakes(a, &ha);
    lbw_traffic_handshakes(b, &hb);
    assert_memory_equal(&ha, &hb, sizeof(ha));
}

static void file_equals_direct_feed(void **state)
{
    (void)state;
    static struct pkts p;
    make_pkts(&p);
    struct lbw_traffic *direct = engine(443, "10.0.0.1");
    for (int i = 0; i < NPKT; i++) {
        struct pcap_pkthdr h = {.caplen = (bpf_u_int32)p.len[i], .len = (bpf_u_int32)p.len[i]};
        h.ts.tv_sec = T0;
        h.ts.tv_usec = p.us[i];
        assert_int_equal(lbw_traffic_packet(direct, &h, p.b[i], DLT_EN10MB), LBW_PKT_OK);
    }
    lbw_traffic_expire(direct, T0 * 1000000 + p.us[NPKT - 1]);
    const int precisions[] = {PCAP_TSTAMP_PRECISION_MICRO, PCAP_TSTAMP_PRECISION_NANO};
    for (int k = 0; k < 2; k++) {
        char path[300], err[256];
        snprintf(path, sizeof(path), "%s/conv%d.pcap", dir, k);
        write_pcap(path, &p, precisions[k]);
        struct lbw_traffic *t = engine(443, "10.0.0.1");
        uint64_t n = 0;
        assert_int_equal(lbw_capture_file(t, path, &n, err, sizeof(err)), 0);
        assert_int_equal(n, NPKT);
        assert_same(t, direct);
        struct lbw_hs_stats hs;
        lbw_traffic_handshakes(t, &hs);
        assert_int_equal(hs.rtt[LBW_HS_SERVER].sum_us, 150);
        assert_int_equal(hs.outcomes[LBW_HS_COMPLETED], 1);
        assert_int_equal(hs.outcomes[LBW_HS_RESET], 1);
        assert_int_equal(lbw_traffic_counters(t)->hello[LBW_TLSV_13], 1);
        lbw_traffic_free(t);
    }
    lbw_traffic_free(direct);
}

static void file_errors(void **state)
{
    (void)state;
    static struct pkts p;
    make_pkts(&p);
    char path[300], err[256];
    struct lbw_traffic *t = engine(443, "10.0.0.1");
    uint64_t n = 99;
    snprintf(path, sizeof(path), "%s/missing.pcap", dir);
    assert_int_equal(lbw_capture_file(t, path, &n, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "missing.pcap"));

    snprintf(path, sizeof(path), "%s/garbage.pcap", dir);
    assert_int_equal(tu_write_file(path, "this is not a capture file at all", 33), 0);
    assert_int_equal(lbw_capture_file(t, path, &n, err, sizeof(err)), -1);

    /* a file cut inside its last record: the packets before it are accounted */
    snprintf(path, sizeof(path), "%s/cut.pcap", dir);
    write_pcap(path, &p, PCAP_TSTAMP_PRECISION_MICRO);
    assert_int_equal(truncate(path, 24 + 16 * (NPKT - 1) + 40), 0);
    struct lbw_traffic *cut = engine(443, "10.0.0.1");
    assert_int_equal(lbw_capture_file(cut, path, &n, err, sizeof(err)), -1);
    assert_true(n < NPKT);
    assert_int_equal(lbw_traffic_counters(cut)->syn, 1);
    lbw_traffic_free(cut);
    lbw_traffic_free(t);
}

static void loopback_addresses(void **state)
{
    (void)state;
    struct lbw_netaddr a[LBW_TRAFFIC_LOCAL_MAX];
    char err[128];
    int n = lbw_capture_local_addrs("lo", a, LBW_TRAFFIC_LOCAL_MAX, err, sizeof(err));
    assert_true(n >= 1);
    static const uint8_t lo[4] = {127, 42, 0, 1};
    int found = 0;
    for (int i = 0; i < n; i++)
        found |= a[i].family == 4 && a[i].prefix == 8 && lbw_netaddr_match(&a[i], 4, lo);
    assert_true(found);
    assert_int_equal(lbw_capture_local_addrs("nosuchif0", a, LBW_TRAFFIC_LOCAL_MAX, err,
                                             sizeof(err)), 0);
    int all = lbw_capture_local_addrs("any", a, LBW_TRAFFIC_LOCAL_MAX, err, sizeof(err));
    assert_true(all >= n);
    assert_int_equal(lbw_capture_local_addrs("any", a, 1, err, sizeof(err)), 1);
}

struct live {
    struct lbw_traffic *t;
    uv_timer_t poll_timer;
    int taps, ticks;
};

static void on_tap(void *arg, const struct pcap_pkthdr *h, const u_char *bytes)
{
    struct live *l = arg;
    (void)h;
    (void)bytes;
    l->taps++;
}

/* Stops the loop once three datagrams were accounted, or after 5 s. */
static void on_poll_timer(uv_timer_t *tm)
{
    struct live *l = tm->data;
    if (lbw_traffic_counters(l->t)->port_packets[LBW_DIR_IN][0] >= 3 || ++l->ticks > 100)
        uv_stop(tm->loop);
}

static void send_datagrams(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    static const char payload[100] = "lbwatch";
    for (size_t len = 10; len <= 30; len += 10)
        assert_int_equal(sendto(fd, payload, len, 0, (struct sockaddr *)&to, sizeof(to)),
                         (ssize_t)len);
    close(fd);
}

static void live_loopback(void **state)
{
    (void)state;
    uint16_t port = tu_free_port();
    static struct live l;
    memset(&l, 0, sizeof(l));
    l.t = engine(port, "127.0.0.0/8");
    uv_loop_t loop;
    uv_loop_init(&loop);
    char filter[64], err[512];
    snprintf(filter, sizeof(filter), "udp dst port %u", port);
    struct lbw_capture_opts o = {.iface = "lo", .filter = filter, .tap = on_tap, .tap_arg = &l,
                                 .expire_interval_ms = 20};
    struct lbw_capture *c;
    int r = lbw_capture_open(&c, &loop, l.t, &o, err, sizeof(err));
    if (r == LBW_CAPTURE_EPERM) {
        lbw_traffic_free(l.t);
        uv_loop_close(&loop);
        skip();
    }
    assert_int_equal(r, 0);
    assert_int_equal(pcap_datalink(lbw_capture_pcap(c)), DLT_EN10MB);
    send_datagrams(port);
    uv_timer_init(&loop, &l.poll_timer);
    l.poll_timer.data = &l;
    uv_timer_start(&l.poll_timer, on_poll_timer, 50, 50);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_true(lbw_capture_drain(c) >= 0);

    const struct lbw_traffic_counters *tc = lbw_traffic_counters(l.t);
    assert_int_equal(tc->port_packets[LBW_DIR_IN][0], 3);
    assert_int_equal(tc->port_bytes[LBW_DIR_IN][0], 3 * 28 + 10 + 20 + 30);
    assert_int_equal(tc->packets[LBW_DIR_IN][LBW_PROTO_UDP], 3);
    assert_int_equal(tc->packets[LBW_DIR_OUT][LBW_PROTO_UDP], 0);
    assert_int_equal(l.taps, 3);
    struct lbw_capture_stats st;
    lbw_capture_stats(c, &st);
    assert_int_equal(st.packets, 3);
    assert_int_equal(st.running, 1);

    lbw_capture_close(c);
    uv_close((uv_handle_t *)&l.poll_timer, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    lbw_traffic_free(l.t);
}

static void live_errors(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct lbw_traffic *t = engine(443, "127.0.0.0/8");
    struct lbw_capture *c;
    char err[512];
    struct lbw_capture_opts o = {.iface = "nosuchif0"};
    int r = lbw_capture_open(&c, &loop, t, &o, err, sizeof(err));
    assert_true(r == -1 || r == LBW_CAPTURE_EPERM);
    assert_non_null(strstr(err, "nosuchif0"));
    o.iface = NULL;
    assert_int_equal(lbw_capture_open(&c, &loop, t, &o, err, sizeof(err)), -1);
    o.iface = "lo";
    o.filter = "this is not bpf";
    r = lbw_capture_open(&c, &loop, t, &o, err, sizeof(err));
    if (r != LBW_CAPTURE_EPERM) {
        assert_int_equal(r, -1);
        assert_non_null(strstr(err, "filter"));
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    lbw_traffic_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(file_equals_direct_feed),
        cmocka_unit_test(file_errors),
        cmocka_unit_test(loopback_addresses),
        cmocka_unit_test(live_loopback),
        cmocka_unit_test(live_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
