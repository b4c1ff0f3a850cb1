/* test_pktdecode.c - packet decoding: every link type, VLAN tags, IPv4 options and fragments,
 * IPv6 extension headers, and every truncation of valid packets (read from exact-size heap
 * copies, so ASan sees any read past the captured bytes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pcap/dlt.h>
#include <stdlib.h>
#include <string.h>

#include "probes/pktdecode.h"
#include "tests/support/pktfx.h"

#define ETH_IP4 0x0800
#define ETH_IP6 0x86dd

/* Decodes a heap copy of exactly caplen bytes. */
static enum lbw_pkt_status decode(const uint8_t *b, size_t caplen, size_t wirelen, int dlt,
                                  struct lbw_pkt *p)
{
    uint8_t *copy = malloc(caplen ? caplen : 1);
    assert_non_null(copy);
    memcpy(copy, b, caplen);
    enum lbw_pkt_status st = lbw_pkt_decode(copy, caplen, wirelen, dlt, p);
    /* pointers into the copy are checked by callers before it goes; keep offsets only */
    if (st == LBW_PKT_OK) {
        p->src = b + (p->src - copy);
        p->dst = b + (p->dst - copy);
        if (p->l4hdr)
            p->l4hdr = b + (p->l4hdr - copy);
        if (p->payload)
            p->payload = b + (p->payload - copy);
    }
    free(copy);
    return st;
}

static size_t tcp_syn_v4(uint8_t *out, const char *src, const char *dst)
{
    uint8_t l4[64];
    size_t n = fx_tcp(l4, 40000, 443, LBW_TCP_SYN, NULL, 0);
    return fx_ipv4(out, src, dst, 6, 0, 0, l4, n);
}

static void ethernet_ipv4_tcp(void **state)
{
    (void)state;
    uint8_t l4[64], l3[128], pkt[256];
    static const uint8_t data[] = "GET / HTTP/1.1\r\n";
    size_t n = fx_tcp(l4, 40000, 80, LBW_TCP_PSH | LBW_TCP_ACK, data, sizeof(data) - 1);
    n = fx_ipv4(l3, "192.0.2.7", "10.0.0.1", 6, 0x4000, 0, l4, n);
    n = fx_eth(pkt, 0, ETH_IP4, l3, n);
    struct lbw_pkt p;
    assert_int_equal(decode(pkt, n, n, DLT_EN10MB, &p), LBW_PKT_OK);
    assert_int_equal(p.family, 4);
    assert_int_equal(p.proto, 6);
    assert_int_equal(p.l4, LBW_L4_OK);
    assert_int_equal(p.sport, 40000);
    assert_int_equal(p.dport, 80);
    assert_int_equal(p.tcp_flags, LBW_TCP_PSH | LBW_TCP_ACK);
    assert_int_equal(p.ip_bytes, 20 + 20 + sizeof(data) - 1);
    assert_int_equal(p.payload_len, sizeof(data) - 1);
    assert_memory_equal(p.payload, data, sizeof(data) - 1);
    static const uint8_t src[4] = {192, 0, 2, 7}, dst[4] = {10, 0, 0, 1};
    assert_memory_equal(p.src, src, 4);
    assert_memory_equal(p.dst, dst, 4);
    assert_ptr_equal(p.l4hdr, pkt + 14 + 20);
    assert_int_equal(p.later_fragment, 0);
}

static void vlan_tags(void **state)
{
    (void)state;
    uint8_t l3[128], pkt[256];
    size_t l3n = tcp_syn_v4(l3, "192.0.2.7", "10.0.0.1");
    struct lbw_pkt p;
    for (int tags = 1; tags <= 4; tags++) {
        size_t n = fx_eth(pkt, tags, ETH_IP4, l3, l3n);
        assert_int_equal(decode(pkt, n, n, DLT_EN10MB, &p), LBW_PKT_OK);
        assert_int_equal(p.dport, 443);
        assert_int_equal(p.tcp_flags, LBW_TCP_SYN);
    }
    size_t n = fx_eth(pkt, 5, ETH_IP4, l3, l3n);
    assert_int_equal(decode(pkt, n, n, DLT_EN10MB, &p), LBW_PKT_NOT_IP);
    /* an 802.1ad outer tag then an 802.1Q inner one */
    n = fx_eth(pkt, 2, ETH_IP4, l3, l3n);
    pkt[12] = 0x88;
    pkt[13] = 0xa8;
    assert_int_equal(decode(pkt, n, n, DLT_EN10MB, &p), LBW_PKT_OK);
    assert_int_equal(p.dport, 443);
}

static void link_types(void **state)
{
    (void)state;
    uint8_t l4[64], v4[128], v6[128], pkt[256];
    size_t n4 = tcp_syn_v4(v4, "192.0.2.7", "10.0.0.1");
    size_t l4n = fx_udp(l4, 5353, 53, (const uint8_t *)"q", 1);
    size_t n6 = fx_ipv6(v6, "2001:db8::7", "2001:db8::1", 17, NULL, 0, l4, l4n);
    struct lbw_pkt p;
    struct {
        size_t len;
        int dlt, family;
    } cases[16];
    size_t nc = 0;
    uint8_t bufs[16][256];
#define CASE(expr, d, fam)                                                                       \
    do {                                                                                         \
        cases[nc].len = (expr);                                                                  \
        cases[nc].dlt = (d);                                                                     \
        cases[nc].family = (fam);                                                                \
        nc++;                                                                                    \
    } while (0)
    CASE(fx_sll(bufs[nc], ETH_IP4, v4, n4), DLT_LINUX_SLL, 4);
    CASE(fx_sll(bufs[nc], ETH_IP6, v6, n6), DLT_LINUX_SLL, 6);
    CASE(fx_sll2(bufs[nc], ETH_IP4, v4, n4), DLT_LINUX_SLL2, 4);
    CASE(fx_sll2(bufs[nc], ETH_IP6, v6, n6), DLT_LINUX_SLL2, 6);
    CASE(fx_null(bufs[nc], 2, 0, v4, n4), DLT_NULL, 4);
    CASE(fx_null(bufs[nc], 2, 1, v4, n4), DLT_NULL, 4);
    CASE(fx_null(bufs[nc], 24, 0, v6, n6), DLT_NULL, 6);
    CASE(fx_null(bufs[nc], 28, 1, v6, n6), DLT_NULL, 6);
    CASE(fx_null(bufs[nc], 30, 0, v6, n6), DLT_NULL, 6);
    CASE(fx_null(bufs[nc], 10, 1, v6, n6), DLT_LOOP, 6);
    CASE(fx_null(bufs[nc], 2, 1, v4, n4), DLT_LOOP, 4);
    memcpy(bufs[nc], v4, n4);
    CASE(n4, DLT_RAW, 4);
    memcpy(bufs[nc], v6, n6);
    CASE(n6, DLT_RAW, 6);
    memcpy(bufs[nc], v4, n4);
    CASE(n4, DLT_IPV4, 4);
    memcpy(bufs[nc], v6, n6);
    CASE(n6, DLT_IPV6, 6);
#undef CASE
    for (size_t i = 0; i < nc; i++) {
        assert_int_equal(decode(bufs[i], cases[i].len, cases[i].len, cases[i].dlt, &p),
                         LBW_PKT_OK);
        assert_int_equal(p.family, cases[i].family);
        assert_int_equal(p.l4, LBW_L4_OK);
        assert_int_equal(p.dport, cases[i].family == 4 ? 443 : 53);
    }
    /* what is not IP, or not known */
    size_t n = fx_null(pkt, 7, 0, v4, n4);
    assert_int_equal(decode(pkt, n, n, DLT_NULL, &p), LBW_PKT_NOT_IP);
    n = fx_eth(pkt, 0, 0x0806, v4, 28);
    assert_int_equal(decode(pkt, n, n, DLT_EN10MB, &p), LBW_PKT_NOT_IP);
    n = fx_eth(pkt, 0, 0x0100, v4, n4);      /* 802.3 length field */
    assert_int_equal(decode(pkt, n, n, DLT_EN10MB, &p), LBW_PKT_NOT_IP);
    n = fx_sll(pkt, 0x0806, v4, n4);
    assert_int_equal(decode(pkt, n, n, DLT_LINUX_SLL, &p), LBW_PKT_NOT_IP);
    assert_int_equal(decode(v4, n4, n4, DLT_IEEE802_11, &p), LBW_PKT_LINKTYPE);
    /* the link says IPv4, the header says 6 */
    n = fx_eth(pkt, 0, ETH_IP4, v6, n6);
    assert_int_equal(decode(pkt, n, n, DLT_EN10MB, &p), LBW_PKT_MALFORMED);
    assert_int_equal(decode(v6, n6, n6, DLT_IPV4, &p), LBW_PKT_MALFORMED);
    /* raw with a version nibble that is neither */
    uint8_t raw[40] = {0x50};
    assert_int_equal(decode(raw, sizeof(raw), sizeof(raw), DLT_RAW, &p), LBW_PKT_NOT_IP);
    assert_int_equal(lbw_pkt_decode(NULL, 0, 0, DLT_RAW, &p), LBW_PKT_TRUNCATED);
}

static void ipv4_options_and_fragments(void **state)
{
    (void)state;
    uint8_t l4[64], l3[128];
    struct lbw_pkt p;
    size_t n4 = fx_udp(l4, 1234, 53, (const uint8_t *)"abcd", 4);
    size_t n = fx_ipv4(l3, "10.0.0.2", "10.0.0.1", 17, 0, 12, l4, n4);
    assert_int_equal(decode(l3, n, n, DLT_RAW, &p), LBW_PKT_OK);
    assert_int_equal(p.sport, 1234);
    assert_int_equal(p.dport, 53);
    assert_int_equal(p.payload_len, 4);
    assert_int_equal(p.ip_bytes, 32 + 12);
    /* first fragment (MF, offset 0): has the transport header */
    n = fx_ipv4(l3, "10.0.0.2", "10.0.0.1", 17, 0x2000, 0, l4, n4);
    assert_int_equal(decode(l3, n, n, DLT_RAW, &p), LBW_PKT_OK);
    assert_int_equal(p.l4, LBW_L4_OK);
    assert_int_equal(p.later_fragment, 0);
    assert_int_equal(p.dport, 53);
    /* a later fragment: its first bytes are data, not a header */
    n = fx_ipv4(l3, "10.0.0.2", "10.0.0.1", 17, 185, 0, l4, n4);
    assert_int_equal(decode(l3, n, n, DLT_RAW, &p), LBW_PKT_OK);
    assert_int_equal(p.l4, LBW_L4_NONE);
    assert_int_equal(p.later_fragment, 1);
    assert_int_equal(p.proto, 17);
    assert_int_equal(p.dport, 0);
    assert_null(p.l4hdr);
    assert_null(p.payload);
}

static void ipv4_malformed(void **state)
{
    (void)state;
    uint8_t l4[64], l3[128];
    struct lbw_pkt p;
    size_t n4 = fx_tcp(l4, 1, 2, LBW_TCP_SYN, NULL, 0);
    size_t n = fx_ipv4(l3, "10.0.0.2", "10.0.0.1", 6, 0, 0, l4, n4);
    l3[0] = 0x44;           /* header length 16 */
    assert_int_equal(decode(l3, n, n, DLT_RAW, &p), LBW_PKT_MALFORMED);
    l3[0] = 0x45;
    l3[2] = 0;
    l3[3] = 12;             /* total length below the header length */
    assert_int_equal(decode(l3, n, n, DLT_RAW, &p), LBW_PKT_MALFORMED);
    l3[3] = 0;              /* total length 0 (TSO): the wire length counts */
    assert_int_equal(decode(l3, n, 1500, DLT_RAW, &p), LBW_PKT_OK);
    assert_int_equal(p.ip_bytes, 1500);
    l3[3] = (uint8_t)n;
    l4[12] = 4 << 4;        /* TCP data offset 4: transport header unusable */
    n = fx_ipv4(l3, "10.0.0.2", "10.0.0.1", 6, 0, 0, l4, n4);
    assert_int_equal(decode(l3, n, n, DLT_RAW, &p), LBW_PKT_OK);
    assert_int_equal(p.l4, LBW_L4_TRUNCATED);
    l4[12] = 15 << 4;       /* data offset 60 > the 20 bytes there: flags, no payload */
    n = fx_ipv4(l3, "10.0.0.2", "10.0.0.1", 6, 0, 0, l4, n4);
    assert_int_equal(decode(l3, n, n, DLT_RAW, &p), LBW_PKT_OK);
    assert_int_equal(p.l4, LBW_L4_OK);
    assert_int_equal(p.tcp_flags, LBW_TCP_SYN);
    assert_null(p.payload);
    assert_int_equal(p.payload_len, 0);
}

static void ipv6_extension_headers(void **state)
{
    (void)state;
    uint8_t ext[512], l4[64], l3[1024];
    struct lbw_pkt p;
    size_t n4 = fx_tcp(l4, 50000, 443, LBW_TCP_SYN, NULL, 0);
    /* hop-by-hop -> routing -> destination options -> AH -> TCP */
    size_t e = fx_ip6_ext(ext, 43, 0);
    e += fx_ip6_ext(ext + e, 60, 2);
    e += fx_ip6_ext(ext + e, 51, 1);
    ext[e] = 6;             /* AH: next header TCP, length (2 + 2) * 4 = 16 */
    ext[e + 1] = 2;
    memset(ext + e + 2, 0, 14);
    e += 16;
    size_t n = fx_ipv6(l3, "2001:db8::7", "2001:db8::1", 0, ext, e, l4, n4);
    assert_int_equal(decode(l3, n, n, DLT_RAW, &p), LBW_PKT_OK);
    assert_int_equal(p.proto, 6);
    assert_int_equal(p.l4, LBW_L4_OK);
    assert_int_equal(p.dport, 443);
    assert_int_equal(p.ip_bytes, n);

    /* first fragment: the header follows */
    e = fx_ip6_frag(ext, 17, 0, 1);
    n4 = fx_udp(l4, 1000, 2000, NULL, 0);
    n = fx_ipv6(l3, "2001:db8::7", "2001:db8::1", 44, ext, e, l4, n4);
    assert_int_equal(decode(l3, n, n, DLT_RAW, &p), LBW_PKT_OK);
    assert_int_equal(p.proto, 17);
    assert_int_equal(p.l4, LBW_L4_OK);
    assert_int_equal(p.dport, 2000);
    /* later fragment: protocol known, no header */
    e = fx_ip6_frag(ext, 17, 100, 0);
    n = fx_ipv6(l3, "2001:db8::7", "2001:db8::1", 44, ext, e, l4, n4);
    assert_int_equal(decode(l3, n, n, DLT_RAW, &p), LBW_PKT_OK);
    assert_int_equal(p.proto, 17);
    assert_int_equal(p.l4, LBW_L4_NONE);
    assert_int_equal(p.later_fragment, 1);

    /* 17 headers: more than the walk follows */
    e = 0;
    for (int i = 0; i < 17; i++)
        e += fx_ip6_ext(ext + e, i == 16 ? 6 : 60, 0);
    n = fx_ipv6(l3, "2001:db8::7", "2001:db8::1", 0, ext, e, l4, n4);
    assert_int_equal(decode(l3, n, n, DLT_RAW, &p), LBW_PKT_OK);
    assert_int_equal(p.l4, LBW_L4_TRUNCATED);

    /* an extension header whose length runs past the packet */
    e = fx_ip6_ext(ext, 6, 0);
    ext[1] = 200;
    n = fx_ipv6(l3, "2001:db8::7", "2001:db8::1", 60, ext, e, l4, n4);
    assert_int_equal(decode(l3, n, n, DLT_RAW, &p), LBW_PKT_OK);
    assert_int_equal(p.l4, LBW_L4_TRUNCATED);
    assert_int_equal(p.proto, 60);

    /* no next header (59), ESP (50): no transport header to read */
    n = fx_ipv6(l3, "2001:db8::7", "2001:db8::1", 59, NULL, 0, NULL, 0);
    assert_int_equal(decode(l3, n, n, DLT_RAW, &p), LBW_PKT_OK);
    assert_int_equal(p.l4, LBW_L4_NONE);
    assert_int_equal(p.proto, 59);
    assert_int_equal(p.ip_bytes, 40);

    /* payload length 0 with bytes behind it: a jumbogram/TSO, the wire length counts */
    n = fx_ipv6(l3, "2001:db8::7", "2001:db8::1", 17, NULL, 0, l4, n4);
    l3[4] = l3[5] = 0;
    assert_int_equal(decode(l3, n, 9000, DLT_RAW, &p), LBW_PKT_OK);
    assert_int_equal(p.ip_bytes, 9000);
    l3[0] = 0x40 | 0x0f;    /* version 4 behind DLT_IPV6 */
    assert_int_equal(decode(l3, n, n, DLT_IPV6, &p), LBW_PKT_MALFORMED);
}

/* Cuts a valid packet at every length: below the IP header's end it is TRUNCATED, after it
 * OK with the transport header OK only once complete. */
static void check_all_cuts(const uint8_t *pkt, size_t len, int dlt, size_t ip_end, size_t l4_end)
{
    struct lbw_pkt p;
    for (size_t cut = 0; cut < len; cut++) {
        enum lbw_pkt_status st = decode(pkt, cut, len, dlt, &p);
        if (cut < ip_end) {
            assert_int_equal(st, LBW_PKT_TRUNCATED);
            continue;
        }
        assert_int_equal(st, LBW_PKT_OK);
        assert_int_equal(p.l4, cut < l4_end ? LBW_L4_TRUNCATED : LBW_L4_OK);
        if (p.payload)
            assert_true(p.payload_len <= cut);
    }
}

static void every_truncation(void **state)
{
    (void)state;
    uint8_t l4[256], l3[512], pkt[600], ext[64];
    static const uint8_t data[] = "payload bytes";
    size_t n4 = fx_tcp(l4, 40000, 443, LBW_TCP_ACK, data, sizeof(data));
    size_t n3 = fx_ipv4(l3, "192.0.2.7", "10.0.0.1", 6, 0, 8, l4, n4);
    size_t n = fx_eth(pkt, 2, ETH_IP4, l3, n3);
    check_all_cuts(pkt, n, DLT_EN10MB, 22 + 28, 22 + 28 + 20);
    n = fx_sll2(pkt, ETH_IP4, l3, n3);
    check_all_cuts(pkt, n, DLT_LINUX_SLL2, 20 + 28, 20 + 28 + 20);

    size_t e = fx_ip6_ext(ext, 44, 1);
    e += fx_ip6_frag(ext + e, 6, 0, 1);
    n3 = fx_ipv6(l3, "2001:db8::7", "2001:db8::1", 0, ext, e, l4, n4);
    n = fx_sll(pkt, ETH_IP6, l3, n3);
    check_all_cuts(pkt, n, DLT_LINUX_SLL, 16 + 40, 16 + 40 + e + 20);
    n = fx_null(pkt, 30, 0, l3, n3);
    check_all_cuts(pkt, n, DLT_NULL, 4 + 40, 4 + 40 + e + 20);

    n4 = fx_icmp(l4, 8);
    n3 = fx_ipv4(l3, "192.0.2.7", "10.0.0.1", 1, 0, 0, l4, n4);
    check_all_cuts(l3, n3, DLT_RAW, 20, 24);
    n4 = fx_udp(l4, 1, 2, data, sizeof(data));
    n3 = fx_ipv4(l3, "192.0.2.7", "10.0.0.1", 17, 0, 0, l4, n4);
    check_all_cuts(l3, n3, DLT_IPV4, 20, 28);
}

static void snaplen_and_ip_length(void **state)
{
    (void)state;
    uint8_t l4[1600], l3[1700];
    static uint8_t data[1400];
    struct lbw_pkt p;
    size_t n4 = fx_tcp(l4, 443, 40000, LBW_TCP_ACK, data, sizeof(data));
    size_t n = fx_ipv4(l3, "10.0.0.1", "192.0.2.7", 6, 0, 0, l4, n4);
    /* captured 96 bytes of 1440 */
    assert_int_equal(decode(l3, 96, n, DLT_RAW, &p), LBW_PKT_OK);
    assert_int_equal(p.ip_bytes, n);
    assert_int_equal(p.payload_len, 96 - 40);
    /* Ethernet padding behind a short IP packet is not payload */
    n4 = fx_tcp(l4, 443, 40000, LBW_TCP_ACK, (const uint8_t *)"ab", 2);
    n = fx_ipv4(l3, "10.0.0.1", "192.0.2.7", 6, 0, 0, l4, n4);
    memset(l3 + n, 0, 10);
    assert_int_equal(decode(l3, n + 10, n + 10, DLT_RAW, &p), LBW_PKT_OK);
    assert_int_equal(p.payload_len, 2);
    assert_int_equal(p.ip_bytes, n);
}

static void status_names(void **state)
{
    (void)state;
    assert_string_equal(lbw_pkt_status_name(LBW_PKT_OK), "ok");
    assert_string_equal(lbw_pkt_status_name(LBW_PKT_NOT_IP), "not_ip");
    assert_string_equal(lbw_pkt_status_name(LBW_PKT_TRUNCATED), "truncated");
    assert_string_equal(lbw_pkt_status_name(LBW_PKT_MALFORMED), "malformed");
    assert_string_equal(lbw_pkt_status_name(LBW_PKT_LINKTYPE), "linktype");
    assert_string_equal(lbw_pkt_status_name((enum lbw_pkt_status)99), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ethernet_ipv4_tcp),
        cmocka_unit_test(vlan_tags),
        cmocka_unit_test(link_types),
        cmocka_unit_test(ipv4_options_and_fragments),
        cmocka_unit_test(ipv4_malformed),
        cmocka_unit_test(ipv6_extension_headers),
        cmocka_unit_test(every_truncation),
        cmocka_unit_test(snaplen_and_ip_length),
        cmocka_unit_test(status_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
