/* test_traffic.c - the accounting engine fed crafted packets: addresses and prefixes, the
 * direction rule (one local end, loopback, watched ports, ICMP), a server's conversation
 * over several link types counted exactly (protocols, ports, SYN/FIN/RST, handshakes,
 * ClientHellos, skipped packets), and the samples it emits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pcap/dlt.h>
#include <stdio.h>
#include <string.h>

#include "probes/traffic.h"
#include "tests/support/pktfx.h"

#define ETH_IP4 0x0800
#define ETH_IP6 0x86dd
#define T0 1700000000LL

static struct lbw_traffic *engine(const uint16_t *ports, size_t nports, const char *const *local,
                                  size_t nlocal)
{
    struct lbw_netaddr addrs[8];
    for (size_t i = 0; i < nlocal; i++)
        assert_int_equal(lbw_netaddr_parse(local[i], &addrs[i]), 0);
    struct lbw_traffic_config c = {.ports = ports, .nports = nports, .local = addrs,
                                   .nlocal = nlocal, .handshake = {.capacity = 256, .seed = 7}};
    struct lbw_traffic *t;
    char err[128];
    assert_int_equal(lbw_traffic_new(&t, &c, err, sizeof(err)), 0);
    return t;
}

static enum lbw_pkt_status feed(struct lbw_traffic *t, const uint8_t *b, size_t len, int dlt,
                                int64_t us)
{
    struct pcap_pkthdr h = {.caplen = (bpf_u_int32)len, .len = (bpf_u_int32)len};
    h.ts.tv_sec = T0 + us / 1000000;
    h.ts.tv_usec = us % 1000000;
    return lbw_traffic_packet(t, &h, b, dlt);
}

/* An Ethernet frame with an IPv4 TCP segment. Returns its length; *iplen gets the IP length. */
static size_t eth_tcp4(uint8_t *out, const char *src, const char *dst, uint16_t sport,
                       uint16_t dport, uint8_t flags, const uint8_t *data, size_t dlen,
                       size_t *iplen)
{
    uint8_t l4[FX_MAX], l3[FX_MAX];
    size_t n = fx_tcp(l4, sport, dport, flags, data, dlen);
    n = fx_ipv4(l3, src, dst, 6, 0, 0, l4, n);
    if (iplen)
        *iplen = n;
    return fx_eth(out, 0, ETH_IP4, l3, n);
}

static void netaddr(void **state)
{
    (void)state;
    struct lbw_netaddr a;
    static const uint8_t lo1[4] = {127, 0, 0, 1}, lo2[4] = {127, 9, 8, 7}, ten[4] = {10, 0, 0, 1};
    assert_int_equal(lbw_netaddr_parse("127.0.0.0/8", &a), 0);
    assert_int_equal(a.family, 4);
    assert_int_equal(a.prefix, 8);
    assert_true(lbw_netaddr_match(&a, 4, lo1));
    assert_true(lbw_netaddr_match(&a, 4, lo2));
    assert_false(lbw_netaddr_match(&a, 4, ten));
    assert_int_equal(lbw_netaddr_parse("10.0.0.1", &a), 0);
    assert_int_equal(a.prefix, 32);
    assert_true(lbw_netaddr_match(&a, 4, ten));
    assert_false(lbw_netaddr_match(&a, 6, ten));
    assert_int_equal(lbw_netaddr_parse("10.0.0.0/10", &a), 0);
    static const uint8_t in10[4] = {10, 63, 0, 1}, out10[4] = {10, 64, 0, 1};
    assert_true(lbw_netaddr_match(&a, 4, in10));
    assert_false(lbw_netaddr_match(&a, 4, out10));
    assert_int_equal(lbw_netaddr_parse("2001:db8::/64", &a), 0);
    uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8};
    assert_true(lbw_netaddr_match(&a, 6, v6));
    v6[7] = 1;
    assert_false(lbw_netaddr_match(&a, 6, v6));
    assert_int_equal(lbw_netaddr_parse("::/0", &a), 0);
    assert_true(lbw_netaddr_match(&a, 6, v6));
    const char *bad[] = {"", "10.0.0.1/33", "10.0.0.1/", "10.0.0.1/x", "::1/129", "host",
                         "10.0.0.1/-1", "/8", "10.0.0.1/8/8"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(lbw_netaddr_parse(bad[i], &a), -1);
}

static void config_errors(void **state)
{
    (void)state;
    struct lbw_traffic *t;
    char err[128];
    uint16_t dup[] = {443, 80, 443}, zero[] = {0}, many[LBW_TRAFFIC_PORTS_MAX + 1];
    for (int i = 0; i <= LBW_TRAFFIC_PORTS_MAX; i++)
        many[i] = (uint16_t)(1000 + i);
    struct lbw_traffic_config c = {.ports = dup, .nports = 3};
    assert_int_equal(lbw_traffic_new(&t, &c, err, sizeof(err)), -1);
    assert_string_equal(err, "watched port 443 is repeated");
    c.ports = zero;
    c.nports = 1;
    assert_int_equal(lbw_traffic_new(&t, &c, err, sizeof(err)), -1);
    c.ports = many;
    c.nports = LBW_TRAFFIC_PORTS_MAX + 1;
    assert_int_equal(lbw_traffic_new(&t, &c, err, sizeof(err)), -1);
    struct lbw_netaddr bad = {.family = 4, .prefix = 40};
    struct lbw_traffic_config c2 = {.local = &bad, .nlocal = 1};
    assert_int_equal(lbw_traffic_new(&t, &c2, err, sizeof(err)), -1);
    c.nports = LBW_TRAFFIC_PORTS_MAX;
    assert_int_equal(lbw_traffic_new(&t, &c, err, sizeof(err)), 0);
    assert_int_equal(lbw_traffic_nports(t), LBW_TRAFFIC_PORTS_MAX);
    assert_int_equal(lbw_traffic_port(t, 3), 1003);
    assert_int_equal(lbw_traffic_port(t, LBW_TRAFFIC_PORTS_MAX), 0);
    lbw_traffic_free(t);
}

static struct lbw_pkt ports_pkt(uint8_t proto, uint16_t sport, uint16_t dport)
{
    struct lbw_pkt p = {.family = 4, .proto = proto, .l4 = LBW_L4_OK, .sport = sport,
                        .dport = dport};
    return p;
}

static void direction_rules(void **state)
{
    (void)state;
    static const uint16_t ports[] = {443, 22};
    struct lbw_traffic *t = engine(ports, 2, NULL, 0);
    struct lbw_pkt p = ports_pkt(6, 40000, 8080);
    /* one local end decides */
    assert_int_equal(lbw_traffic_direction(t, &p, 0, 1), LBW_DIR_IN);
    assert_int_equal(lbw_traffic_direction(t, &p, 1, 0), LBW_DIR_OUT);
    /* both (or neither) local: the service side */
    for (int local = 0; local <= 1; local++) {
        p = ports_pkt(6, 40000, 443);
        assert_int_equal(lbw_traffic_direction(t, &p, local, local), LBW_DIR_IN);
        p = ports_pkt(6, 443, 40000);
        assert_int_equal(lbw_traffic_direction(t, &p, local, local), LBW_DIR_OUT);
        p = ports_pkt(17, 22, 443);      /* both watched: the destination wins */
        assert_int_equal(lbw_traffic_direction(t, &p, local, local), LBW_DIR_IN);
        p = ports_pkt(17, 40000, 5353);  /* none watched: the lower port is the service */
        assert_int_equal(lbw_traffic_direction(t, &p, local, local), LBW_DIR_IN);
        p = ports_pkt(17, 5353, 40000);
        assert_int_equal(lbw_traffic_direction(t, &p, local, local), LBW_DIR_OUT);
        p = ports_pkt(17, 5353, 5353);
        assert_int_equal(lbw_traffic_direction(t, &p, local, local), LBW_DIR_IN);
        struct lbw_pkt icmp = {.family = 4, .proto = 1, .l4 = LBW_L4_OK, .icmp_type = 0};
        assert_int_equal(lbw_traffic_direction(t, &icmp, local, local), LBW_DIR_OUT);
        icmp.icmp_type = 8;
        assert_int_equal(lbw_traffic_direction(t, &icmp, local, local), LBW_DIR_IN);
        struct lbw_pkt icmp6 = {.family = 6, .proto = 58, .l4 = LBW_L4_OK, .icmp_type = 129};
        assert_int_equal(lbw_traffic_direction(t, &icmp6, local, local), LBW_DIR_OUT);
        icmp6.icmp_type = 128;
        assert_int_equal(lbw_traffic_direction(t, &icmp6, local, local), LBW_DIR_IN);
        struct lbw_pkt frag = {.family = 4, .proto = 6, .l4 = LBW_L4_NONE, .later_fragment = 1};
        assert_int_equal(lbw_traffic_direction(t, &frag, local, local), LBW_DIR_IN);
        struct lbw_pkt gre = {.family = 4, .proto = 47, .l4 = LBW_L4_NONE};
        assert_int_equal(lbw_traffic_direction(t, &gre, local, local), LBW_DIR_IN);
    }
    assert_string_equal(lbw_dir_name(LBW_DIR_OUT), "out");
    assert_string_equal(lbw_proto_name(LBW_PROTO_ICMP), "icmp");
    lbw_traffic_free(t);
}

/* A server's day in a few packets, over Ethernet, VLAN, SLL2 and raw IP, counted exactly. */
static void server_conversation(void **state)
{
    (void)state;
    static const uint16_t ports[] = {443, 53};
    static const char *const local[] = {"10.0.0.1", "2001:db8::1"};
    struct lbw_traffic *t = engine(ports, 2, local, 2);
    uint8_t pkt[FX_MAX], l3[FX_MAX], l4[FX_MAX], hello[512], data[1000] = {0};
    static const uint16_t v13[] = {0x0304, 0x0303};
    size_t hello_len = fx_client_hello(hello, 0x0303, v13, 2);
    const char *C = "192.0.2.7", *S = "10.0.0.1";
    size_t n, ip, in443 = 0, out443 = 0, tcp_in = 0, tcp_out = 0;
    int64_t us = 0;

#define TCP(src, dst, sp, dp, fl, d, dl, in)                                                     \
    do {                                                                                         \
        n = eth_tcp4(pkt, src, dst, sp, dp, fl, d, dl, &ip);                                     \
        assert_int_equal(feed(t, pkt, n, DLT_EN10MB, us += 100), LBW_PKT_OK);                    \
        *((in) ? &tcp_in : &tcp_out) += ip;                                                      \
    } while (0)
    TCP(C, S, 50000, 443, LBW_TCP_SYN, NULL, 0, 1);
    TCP(S, C, 443, 50000, LBW_TCP_SYN | LBW_TCP_ACK, NULL, 0, 0);
    TCP(C, S, 50000, 443, LBW_TCP_ACK, NULL, 0, 1);
    TCP(C, S, 50000, 443, LBW_TCP_ACK | LBW_TCP_PSH, hello, hello_len, 1);
    TCP(S, C, 443, 50000, LBW_TCP_ACK, data, sizeof(data), 0);
    TCP(C, S, 50000, 443, LBW_TCP_FIN | LBW_TCP_ACK, NULL, 0, 1);
    TCP(S, C, 443, 50000, LBW_TCP_FIN | LBW_TCP_ACK, NULL, 0, 0);
    TCP(C, S, 50000, 443, LBW_TCP_ACK, NULL, 0, 1);
    in443 = tcp_in;
    out443 = tcp_out;
    TCP(C, S, 50001, 8080, LBW_TCP_SYN, NULL, 0, 1);              /* closed port */
    TCP(S, C, 8080, 50001, LBW_TCP_RST | LBW_TCP_ACK, NULL, 0, 0);
#undef TCP
    /* the same client's ACK behind a VLAN tag */
    size_t l4n = fx_tcp(l4, 50000, 443, LBW_TCP_ACK, NULL, 0);
    size_t l3n = fx_ipv4(l3, C, S, 6, 0, 0, l4, l4n);
    n = fx_eth(pkt, 1, ETH_IP4, l3, l3n);
    assert_int_equal(feed(t, pkt, n, DLT_EN10MB, us += 100), LBW_PKT_OK);
    tcp_in += l3n;
    in443 += l3n;
    /* DNS over UDP, raw IP */
    l4n = fx_udp(l4, 5353, 53, data, 30);
    size_t dns_q = fx_ipv4(l3, C, S, 17, 0, 0, l4, l4n);
    assert_int_equal(feed(t, l3, dns_q, DLT_RAW, us += 100), LBW_PKT_OK);
    l4n = fx_udp(l4, 53, 5353, data, 90);
    size_t dns_a = fx_ipv4(l3, S, C, 17, 0, 0, l4, l4n);
    assert_int_equal(feed(t, l3, dns_a, DLT_RAW, us += 100), LBW_PKT_OK);
    /* a later UDP fragment to the DNS server: udp, no port */
    size_t frag = fx_ipv4(l3, C, S, 17, 100, 0, data, 200);
    assert_int_equal(feed(t, l3, frag, DLT_RAW, us += 100), LBW_PKT_OK);
    /* ping and its answer */
    l4n = fx_icmp(l4, 8);
    size_t ping = fx_ipv4(l3, C, S, 1, 0, 0, l4, l4n);
    assert_int_equal(feed(t, l3, ping, DLT_RAW, us += 100), LBW_PKT_OK);
    l4n = fx_icmp(l4, 0);
    ping = fx_ipv4(l3, S, C, 1, 0, 0, l4, l4n);
    assert_int_equal(feed(t, l3, ping, DLT_RAW, us += 100), LBW_PKT_OK);
    /* GRE in: other */
    size_t gre = fx_ipv4(l3, C, S, 47, 0, 0, data, 24);
    assert_int_equal(feed(t, l3, gre, DLT_RAW, us += 100), LBW_PKT_OK);
    /* an IPv6 SYN to 443 on a cooked capture */
    l4n = fx_tcp(l4, 50002, 443, LBW_TCP_SYN, NULL, 0);
    size_t syn6 = fx_ipv6(l3, "2001:db8::7", "2001:db8::1", 6, NULL, 0, l4, l4n);
    n = fx_sll2(pkt, ETH_IP6, l3, syn6);
    assert_int_equal(feed(t, pkt, n, DLT_LINUX_SLL2, us += 100), LBW_PKT_OK);
    /* what is not accounted */
    assert_int_equal(feed(t, pkt, 10, DLT_LINUX_SLL2, us += 100), LBW_PKT_TRUNCATED);
    n = fx_eth(pkt, 0, 0x0806, data, 28);
    assert_int_equal(feed(t, pkt, n, DLT_EN10MB, us += 100), LBW_PKT_NOT_IP);
    assert_int_equal(feed(t, pkt, n, 9999, us += 100), LBW_PKT_LINKTYPE);

    const struct lbw_traffic_counters *c = lbw_traffic_counters(t);
    assert_int_equal(c->bytes[LBW_DIR_IN][LBW_PROTO_TCP], tcp_in + syn6);
    assert_int_equal(c->packets[LBW_DIR_IN][LBW_PROTO_TCP], 8);
    assert_int_equal(c->bytes[LBW_DIR_OUT][LBW_PROTO_TCP], tcp_out);
    assert_int_equal(c->packets[LBW_DIR_OUT][LBW_PROTO_TCP], 4);
    assert_int_equal(c->bytes[LBW_DIR_IN][LBW_PROTO_UDP], dns_q + frag);
    assert_int_equal(c->packets[LBW_DIR_IN][LBW_PROTO_UDP], 2);
    assert_int_equal(c->bytes[LBW_DIR_OUT][LBW_PROTO_UDP], dns_a);
    assert_int_equal(c->packets[LBW_DIR_IN][LBW_PROTO_ICMP], 1);
    assert_int_equal(c->packets[LBW_DIR_OUT][LBW_PROTO_ICMP], 1);
    assert_int_equal(c->bytes[LBW_DIR_IN][LBW_PROTO_OTHER], gre);
    assert_int_equal(c->packets[LBW_DIR_OUT][LBW_PROTO_OTHER], 0);
    /* ports: 443 is index 0, 53 index 1 */
    assert_int_equal(c->port_bytes[LBW_DIR_IN][0], in443 + syn6);
    assert_int_equal(c->port_packets[LBW_DIR_IN][0], 7);
    assert_int_equal(c->port_bytes[LBW_DIR_OUT][0], out443);
    assert_int_equal(c->port_packets[LBW_DIR_OUT][0], 3);
    assert_int_equal(c->port_bytes[LBW_DIR_IN][1], dns_q);
    assert_int_equal(c->port_bytes[LBW_DIR_OUT][1], dns_a);
    /* TCP */
    assert_int_equal(c->syn, 3);
    assert_int_equal(c->fin, 2);
    assert_int_equal(c->rst, 1);
    assert_int_equal(c->hello[LBW_TLSV_13], 1);
    assert_int_equal(c->hello_offered[LBW_TLSV_13], 1);
    assert_int_equal(c->hello_offered[LBW_TLSV_12], 1);
    assert_int_equal(c->hello[LBW_TLSV_12], 0);
    assert_int_equal(c->skipped[LBW_PKT_TRUNCATED], 1);
    assert_int_equal(c->skipped[LBW_PKT_NOT_IP], 1);
    assert_int_equal(c->skipped[LBW_PKT_LINKTYPE], 1);
    assert_int_equal(c->skipped[LBW_PKT_OK], 0);
    struct lbw_hs_stats hs;
    lbw_traffic_handshakes(t, &hs);
    assert_int_equal(hs.outcomes[LBW_HS_COMPLETED], 1);
    assert_int_equal(hs.outcomes[LBW_HS_RESET], 1);
    assert_int_equal(hs.rtt[LBW_HS_SERVER].count, 1);
    assert_int_equal(hs.rtt[LBW_HS_SERVER].sum_us, 100);
    assert_int_equal(hs.rtt[LBW_HS_CLIENT].count, 0);
    assert_int_equal(hs.entries, 1);          /* the IPv6 SYN */
    lbw_traffic_expire(t, (T0 + 10) * 1000000);
    lbw_traffic_handshakes(t, &hs);
    assert_int_equal(hs.outcomes[LBW_HS_TIMEOUT], 1);
    assert_int_equal(hs.window_decided, 3);
    assert_int_equal(hs.window_unanswered, 2);
    lbw_traffic_free(t);
}

/* ClientHellos count only on segments to a watched port; bogus ones apart. */
static void client_hellos(void **state)
{
    (void)state;
    static const uint16_t ports[] = {8443};
    static const char *const local[] = {"127.0.0.0/8"};
    struct lbw_traffic *t = engine(ports, 1, local, 1);
    uint8_t pkt[FX_MAX], hello[512];
    static const uint8_t http[] = "GET / HTTP/1.1\r\n\r\n";
    size_t hl = fx_client_hello(hello, 0x0303, NULL, 0);
    size_t n = eth_tcp4(pkt, "127.0.0.1", "127.0.0.1", 40000, 8443, LBW_TCP_ACK, hello, hl, NULL);
    feed(t, pkt, n, DLT_EN10MB, 1);
    n = eth_tcp4(pkt, "127.0.0.1", "127.0.0.1", 40000, 9443, LBW_TCP_ACK, hello, hl, NULL);
    feed(t, pkt, n, DLT_EN10MB, 2);               /* not watched */
    n = eth_tcp4(pkt, "127.0.0.1", "127.0.0.1", 8443, 40000, LBW_TCP_ACK, hello, hl, NULL);
    feed(t, pkt, n, DLT_EN10MB, 3);               /* from the watched port, not to it */
    hello[3] = 0x7f;                              /* record length beyond any record */
    n = eth_tcp4(pkt, "127.0.0.1", "127.0.0.1", 40001, 8443, LBW_TCP_ACK, hello, hl, NULL);
    feed(t, pkt, n, DLT_EN10MB, 4);
    n = eth_tcp4(pkt, "127.0.0.1", "127.0.0.1", 40001, 8443, LBW_TCP_ACK, http, 18, NULL);
    feed(t, pkt, n, DLT_EN10MB, 5);
    const struct lbw_traffic_counters *c = lbw_traffic_counters(t);
    assert_int_equal(c->hello[LBW_TLSV_12], 1);
    assert_int_equal(c->hello_offered[LBW_TLSV_12], 1);
    assert_int_equal(c->hello_malformed, 1);
    for (int v = 0; v < LBW_TLSV_COUNT; v++)
        if (v != LBW_TLSV_12)
            assert_int_equal(c->hello[v], 0);
    /* loopback: to the watched port is in, from it out */
    assert_int_equal(c->port_packets[LBW_DIR_IN][0], 3);
    assert_int_equal(c->port_packets[LBW_DIR_OUT][0], 1);
    assert_int_equal(c->packets[LBW_DIR_IN][LBW_PROTO_TCP], 4);    /* 40000 -> 9443 too */
    assert_int_equal(c->packets[LBW_DIR_OUT][LBW_PROTO_TCP], 1);
    lbw_traffic_free(t);
}

struct samples {
    char key[128][LBW_KEY_MAX];
    double value[128];
    int n;
};

static void collect(void *arg, const char *key, int64_t ts, double v)
{
    struct samples *s = arg;
    (void)ts;
    assert_true(s->n < 128);
    snprintf(s->key[s->n], LBW_KEY_MAX, "%s", key);
    s->value[s->n++] = v;
}

static double value_of(const struct samples *s, const char *key)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->key[i], key) == 0)
            return s->value[i];
    fail_msg("no sample %s", key);
    return -1;
}

static void emitted_samples(void **state)
{
    (void)state;
    static const uint16_t ports[] = {443, 53};
    static const char *const local[] = {"10.0.0.1"};
    struct lbw_traffic *t = engine(ports, 2, local, 1);
    uint8_t pkt[FX_MAX];
    size_t ip;
    size_t n = eth_tcp4(pkt, "192.0.2.7", "10.0.0.1", 50000, 443, LBW_TCP_SYN, NULL, 0, &ip);
    feed(t, pkt, n, DLT_EN10MB, 0);
    n = eth_tcp4(pkt, "10.0.0.1", "192.0.2.7", 443, 50000, LBW_TCP_SYN | LBW_TCP_ACK, NULL, 0,
                 NULL);
    feed(t, pkt, n, DLT_EN10MB, 1000);
    n = eth_tcp4(pkt, "192.0.2.7", "10.0.0.1", 50000, 443, LBW_TCP_ACK, NULL, 0, NULL);
    feed(t, pkt, n, DLT_EN10MB, 3000);            /* server RTT 2 ms */

    static struct samples s;
    memset(&s, 0, sizeof(s));
    static const struct lbw_label base[] = {{"vantage", "n1"}};
    struct lbw_emitter e = {.fn = collect, .arg = &s, .base = base, .nbase = 1, .ts_ms = 5};
    lbw_traffic_emit(t, &e);
    assert_int_equal(s.n, 84);
    assert_true(value_of(&s, "lbwatch_traffic_bytes_total{direction=\"in\",proto=\"tcp\","
                             "vantage=\"n1\"}") == 2.0 * ip);
    assert_true(value_of(&s, "lbwatch_traffic_port_packets_total{direction=\"out\",port=\"443\","
                             "vantage=\"n1\"}") == 1);
    assert_true(value_of(&s, "lbwatch_traffic_port_bytes_total{direction=\"in\",port=\"53\","
                             "vantage=\"n1\"}") == 0);
    assert_true(value_of(&s, "lbwatch_tcp_syn_total{vantage=\"n1\"}") == 1);
    const char *b = "lbwatch_tcp_handshake_rtt_seconds_bucket{le=\"%s\",side=\"server\","
                    "vantage=\"n1\"}";
    char key[LBW_KEY_MAX];
    snprintf(key, sizeof(key), b, "0.001");
    assert_true(value_of(&s, key) == 0);
    snprintf(key, sizeof(key), b, "0.0025");
    assert_true(value_of(&s, key) == 1);
    snprintf(key, sizeof(key), b, "1");
    assert_true(value_of(&s, key) == 1);
    snprintf(key, sizeof(key), b, "+Inf");
    assert_true(value_of(&s, key) == 1);
    assert_true(value_of(&s, "lbwatch_tcp_handshake_rtt_seconds_sum{side=\"server\","
                             "vantage=\"n1\"}") == 0.002);
    assert_true(value_of(&s, "lbwatch_tcp_handshake_rtt_seconds_count{side=\"client\","
                             "vantage=\"n1\"}") == 0);
    assert_true(value_of(&s, "lbwatch_tcp_handshakes_total{outcome=\"completed\","
                             "vantage=\"n1\"}") == 1);
    assert_true(value_of(&s, "lbwatch_tcp_syn_unanswered_ratio{vantage=\"n1\"}") == 0);
    assert_true(value_of(&s, "lbwatch_tls_client_hello_total{vantage=\"n1\","
                             "version=\"TLS 1.3\"}") == 0);
    assert_true(value_of(&s, "lbwatch_traffic_skipped_packets_total{reason=\"not_ip\","
                             "vantage=\"n1\"}") == 0);
    assert_true(value_of(&s, "lbwatch_traffic_flow_capacity{vantage=\"n1\"}") == 256);
    /* buckets are cumulative */
    double prev = 0;
    for (int i = 0; i < LBW_RTT_BUCKETS; i++) {
        snprintf(key, sizeof(key), b, lbw_rtt_bucket_le[i]);
        double v = value_of(&s, key);
        assert_true(v >= prev);
        prev = v;
    }
    /* a refused SYN moves the ratio */
    n = eth_tcp4(pkt, "192.0.2.7", "10.0.0.1", 50001, 443, LBW_TCP_SYN, NULL, 0, NULL);
    feed(t, pkt, n, DLT_EN10MB, 4000);
    n = eth_tcp4(pkt, "10.0.0.1", "192.0.2.7", 443, 50001, LBW_TCP_RST | LBW_TCP_ACK, NULL, 0,
                 NULL);
    feed(t, pkt, n, DLT_EN10MB, 5000);
    memset(&s, 0, sizeof(s));
    lbw_traffic_emit(t, &e);
    assert_true(value_of(&s, "lbwatch_tcp_syn_unanswered_ratio{vantage=\"n1\"}") == 0.5);
    assert_true(value_of(&s, "lbwatch_tcp_rst_total{vantage=\"n1\"}") == 1);
    lbw_traffic_free(t);
}

/* Timestamps from a file or a fuzzer may be anything. */
static void timestamps_clamped(void **state)
{
    (void)state;
    struct pcap_pkthdr h = {.caplen = 0};
    h.ts.tv_sec = -5;
    h.ts.tv_usec = -1;
    assert_int_equal(lbw_traffic_ts_us(&h), 0);
    h.ts.tv_sec = 1;
    h.ts.tv_usec = 5000000;
    assert_int_equal(lbw_traffic_ts_us(&h), 1999999);
    h.ts.tv_sec = INT64_MAX;
    h.ts.tv_usec = 0;
    assert_int_equal(lbw_traffic_ts_us(&h), ((int64_t)1 << 42) * 1000000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(netaddr),
        cmocka_unit_test(config_errors),
        cmocka_unit_test(direction_rules),
        cmocka_unit_test(server_conversation),
        cmocka_unit_test(client_hellos),
        cmocka_unit_test(emitted_samples),
        cmocka_unit_test(timestamps_clamped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
