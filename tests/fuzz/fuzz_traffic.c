/* fuzz_traffic.c - libFuzzer target for the traffic accounting engine (probes/traffic and
 * what it uses: pktdecode, tlshello, handshake).
 *
 * Input: one byte choosing the link type (its value modulo 9: EN10MB, LINUX_SLL,
 * LINUX_SLL2, NULL, LOOP, RAW, IPV4, IPV6, or 8 = an unsupported one), then the packet. A
 * fresh engine with a tiny handshake table (16 entries) gets the packet, and when it decodes
 * as TCP also the answer built from it (addresses and ports swapped, SYN+ACK) and the packet
 * again as a bare ACK, so the handshake paths run; then a timeout sweep and every sample.
 * The packet bytes, and the TCP payload whatever its port, also go to the ClientHello parser
 * directly. Checked: the packet counters
 * add up to the packets decoded, the table never holds more than its capacity, and every
 * sample key builds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "probes/traffic.h"

static const int linktypes[] = {DLT_EN10MB, DLT_LINUX_SLL, DLT_LINUX_SLL2, DLT_NULL, DLT_LOOP,
                                DLT_RAW,    DLT_IPV4,      DLT_IPV6,       DLT_IEEE802_11};
#define NLINKTYPES (sizeof(linktypes) / sizeof(linktypes[0]))
#define T0_SEC 1700000000

static void no_sample(void *arg, const char *key, int64_t ts, double value)
{
    (void)ts;
    (void)value;
    if (!key || !*key)
        abort();
    (*(unsigned *)arg)++;
}

static int feed(struct lbw_traffic *t, const uint8_t *b, size_t len, int dlt, int64_t usec)
{
    struct pcap_pkthdr h = {.caplen = (bpf_u_int32)len, .len = (bpf_u_int32)len};
    h.ts.tv_sec = T0_SEC;
    h.ts.tv_usec = usec;
    return lbw_traffic_packet(t, &h, b, dlt) == LBW_PKT_OK;
}

/* Swaps the source and destination addresses of decoded packet p (inside pkt) in copy. */
static void swap_addresses(uint8_t *copy, const uint8_t *pkt, const struct lbw_pkt *p)
{
    size_t alen = p->family == 6 ? 16 : 4;
    memcpy(copy + (p->src - pkt), p->dst, alen);
    memcpy(copy + (p->dst - pkt), p->src, alen);
}

/* Feeds the handshake built from a TCP packet: its reply as SYN+ACK, then itself as ACK. */
static int handshake(struct lbw_traffic *t, const uint8_t *pkt, size_t len, int dlt)
{
    struct lbw_pkt p;
    if (lbw_pkt_decode(pkt, len, len, dlt, &p) != LBW_PKT_OK || p.l4 != LBW_L4_OK ||
        p.proto != 6)
        return 0;
    struct lbw_tls_hello hello;
    if (p.payload)
        lbw_tls_hello_parse(p.payload, p.payload_len, &hello);
    size_t at = (size_t)(p.l4hdr - pkt);
    uint8_t *copy = malloc(len);
    if (!copy)
        abort();
    memcpy(copy, pkt, len);
    swap_addresses(copy, pkt, &p);
    copy[at] = pkt[at + 2];
    copy[at + 1] = pkt[at + 3];
    copy[at + 2] = pkt[at];
    copy[at + 3] = pkt[at + 1];
    copy[at + 13] = LBW_TCP_SYN | LBW_TCP_ACK;
    int ok = feed(t, copy, len, dlt, 300);
    memcpy(copy, pkt, len);
    copy[at + 13] = LBW_TCP_ACK;
    ok += feed(t, copy, len, dlt, 800);
    free(copy);
    return ok;
}

static uint64_t total_packets(const struct lbw_traffic_counters *c)
{
    uint64_t n = 0;
    for (int d = 0; d < LBW_DIRS; d++)
        for (int p = 0; p < LBW_PROTOS; p++)
            n += c->packets[d][p];
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int dlt = linktypes[data[0] % NLINKTYPES];
    const uint8_t *pkt = data + 1;
    size_t len = size - 1;
    struct lbw_tls_hello hello;
    lbw_tls_hello_parse(pkt, len, &hello);

    static const uint16_t ports[] = {443, 80, 53};
    struct lbw_netaddr local[2];
    lbw_netaddr_parse("10.0.0.0/8", &local[0]);
    lbw_netaddr_parse("2001:db8::/32", &local[1]);
    struct lbw_traffic_config c = {.ports = ports, .nports = 3, .local = local, .nlocal = 2,
                                   .handshake = {.capacity = 16, .timeout_ms = 1000, .seed = 1}};
    struct lbw_traffic *t;
    char err[128];
    if (lbw_traffic_new(&t, &c, err, sizeof(err)) < 0)
        abort();
    uint64_t ok = (uint64_t)feed(t, pkt, len, dlt, 0);
    ok += (uint64_t)handshake(t, pkt, len, dlt);
    ok += (uint64_t)feed(t, pkt, len, dlt, 900);        /* again: a retransmission */
    lbw_traffic_expire(t, (int64_t)(T0_SEC + 10) * 1000000);

    const struct lbw_traffic_counters *cnt = lbw_traffic_counters(t);
    struct lbw_hs_stats hs;
    lbw_traffic_handshakes(t, &hs);
    if (total_packets(cnt) != ok || hs.entries > hs.capacity || hs.capacity != 16 ||
        hs.window_unanswered > hs.window_decided)
        abort();
    unsigned samples = 0;
    static const struct lbw_label base[] = {{"vantage", "fuzz"}};
    struct lbw_emitter e = {.fn = no_sample, .arg = &samples, .base = base, .nbase = 1};
    lbw_traffic_emit(t, &e);
    if (samples == 0)
        abort();
    lbw_traffic_free(t);
    return 0;
}
