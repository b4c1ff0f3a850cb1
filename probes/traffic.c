/* traffic.c - the traffic accounting engine and its samples. See traffic.h. */
#include "probes/traffic.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NPORT_SLOTS 65536
#define US_PER_S 1000000
#define MAX_TS_SEC ((int64_t)1 << 42)   /* far beyond any real clock; keeps µs in range */

#define PROTO_ICMP 1
#define PROTO_TCP 6
#define PROTO_UDP 17
#define PROTO_ICMP6 58
#define ICMP_ECHO_REPLY 0
#define ICMP6_ECHO_REPLY 129

struct lbw_traffic {
    uint8_t port_slot[NPORT_SLOTS];     /* index + 1 into ports[], 0 = not watched */
    uint16_t ports[LBW_TRAFFIC_PORTS_MAX];
    size_t nports;
    struct lbw_netaddr local[LBW_TRAFFIC_LOCAL_MAX];
    size_t nlocal;
    struct lbw_hs *hs;
    struct lbw_traffic_counters c;
};

/* --- addresses ------------------------------------------------------------------------------- */

int lbw_netaddr_parse(const char *s, struct lbw_netaddr *out)
{
    char buf[64];
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    if (alen == 0 || alen >= sizeof(buf))
        return -1;
    memcpy(buf, s, alen);
    buf[alen] = '\0';
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, buf, out->addr) == 1)
        out->family = 4;
    else if (inet_pton(AF_INET6, buf, out->addr) == 1)
        out->family = 6;
    else
        return -1;
    unsigned max = out->family == 4 ? 32 : 128;
    out->prefix = (uint8_t)max;
    if (slash) {
        char *end;
        unsigned long p = strtoul(slash + 1, &end, 10);
        if (slash[1] < '0' || slash[1] > '9' || *end || p > max)
            return -1;
        out->prefix = (uint8_t)p;
    }
    return 0;
}

int lbw_netaddr_match(const struct lbw_netaddr *net, int family, const uint8_t *addr)
{
    if (net->family != family)
        return 0;
    unsigned full = net->prefix / 8, rest = net->prefix % 8;
    if (memcmp(net->addr, addr, full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (net->addr[full] & mask) == (addr[full] & mask);
}

static int is_local(const struct lbw_traffic *t, int family, const uint8_t *addr)
{
    for (size_t i = 0; i < t->nlocal; i++)
        if (lbw_netaddr_match(&t->local[i], family, addr))
            return 1;
    return 0;
}

/* --- creation -------------------------------------------------------------------------------- */

static int set_ports(struct lbw_traffic *t, const struct lbw_traffic_config *c, char *err,
                     size_t errlen)
{
    if (c->nports > LBW_TRAFFIC_PORTS_MAX) {
        snprintf(err, errlen, "too many watched ports (%zu, at most %d)", c->nports,
                 LBW_TRAFFIC_PORTS_MAX);
        return -1;
    }
    for (size_t i = 0; i < c->nports; i++) {
        uint16_t p = c->ports[i];
        if (p == 0 || t->port_slot[p]) {
            snprintf(err, errlen, "watched port %u is %s", p, p ? "repeated" : "invalid");
            return -1;
        }
        t->ports[i] = p;
        t->port_slot[p] = (uint8_t)(i + 1);
    }
    t->nports = c->nports;
    return 0;
}

static int set_local(struct lbw_traffic *t, const struct lbw_traffic_config *c, char *err,
                     size_t errlen)
{
    if (c->nlocal > LBW_TRAFFIC_LOCAL_MAX) {
        snprintf(err, errlen, "too many local addresses (%zu, at most %d)", c->nlocal,
                 LBW_TRAFFIC_LOCAL_MAX);
        return -1;
    }
    for (size_t i = 0; i < c->nlocal; i++) {
        const struct lbw_netaddr *a = &c->local[i];
        if ((a->family != 4 || a->prefix > 32) && (a->family != 6 || a->prefix > 128)) {
            snprintf(err, errlen, "local address %zu is not an IPv4 or IPv6 prefix", i);
            return -1;
        }
        t->local[i] = *a;
    }
    t->nlocal = c->nlocal;
    return 0;
}

int lbw_traffic_new(struct lbw_traffic **out, const struct lbw_traffic_config *c, char *err,
                    size_t errlen)
{
    struct lbw_traffic *t = calloc(1, sizeof(*t));
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (set_ports(t, c, err, errlen) < 0 || set_local(t, c, err, errlen) < 0) {
        free(t);
        return -1;
    }
    t->hs = lbw_hs_new(&c->handshake);
    if (!t->hs) {
        snprintf(err, errlen, "out of memory for the handshake table");
        free(t);
        return -1;
    }
    *out = t;
    return 0;
}

void lbw_traffic_free(struct lbw_traffic *t)
{
    if (!t)
        return;
    lbw_hs_free(t->hs);
    free(t);
}

/* --- classification -------------------------------------------------------------------------- */

static enum lbw_proto proto_class(uint8_t proto)
{
    switch (proto) {
    case PROTO_TCP:
        return LBW_PROTO_TCP;
    case PROTO_UDP:
        return LBW_PROTO_UDP;
    case PROTO_ICMP:
    case PROTO_ICMP6:
        return LBW_PROTO_ICMP;
    default:
        return LBW_PROTO_OTHER;
    }
}

static int has_ports(const struct lbw_pkt *p)
{
    return p->l4 == LBW_L4_OK && (p->proto == PROTO_TCP || p->proto == PROTO_UDP);
}

/* Which way a packet between two local (or two foreign) ends goes: toward the service. */
static enum lbw_dir service_side(const struct lbw_traffic *t, const struct lbw_pkt *p)
{
    if (has_ports(p)) {
        if (t->port_slot[p->dport])
            return LBW_DIR_IN;
        if (t->port_slot[p->sport])
            return LBW_DIR_OUT;
        return p->dport <= p->sport ? LBW_DIR_IN : LBW_DIR_OUT;
    }
    if (p->l4 == LBW_L4_OK && ((p->proto == PROTO_ICMP && p->icmp_type == ICMP_ECHO_REPLY) ||
                               (p->proto == PROTO_ICMP6 && p->icmp_type == ICMP6_ECHO_REPLY)))
        return LBW_DIR_OUT;
    return LBW_DIR_IN;
}

enum lbw_dir lbw_traffic_direction(const struct lbw_traffic *t, const struct lbw_pkt *p,
                                   int src_local, int dst_local)
{
    if (!src_local != !dst_local)
        return dst_local ? LBW_DIR_IN : LBW_DIR_OUT;
    return service_side(t, p);
}

/* --- accounting ------------------------------------------------------------------------------ */

int64_t lbw_traffic_ts_us(const struct pcap_pkthdr *h)
{
    int64_t sec = h->ts.tv_sec, usec = h->ts.tv_usec;
    if (sec < 0)
        sec = 0;
    if (sec > MAX_TS_SEC)
        sec = MAX_TS_SEC;
    if (usec < 0)
        usec = 0;
    if (usec >= US_PER_S)
        usec = US_PER_S - 1;
    return sec * US_PER_S + usec;
}

static void count_hello(struct lbw_traffic *t, const struct lbw_pkt *p)
{
    struct lbw_tls_hello hello;
    int r = lbw_tls_hello_parse(p->payload, p->payload_len, &hello);
    if (r < 0) {
        t->c.hello_malformed++;
        return;
    }
    if (r == 0)
        return;
    t->c.hello[hello.highest]++;
    for (int v = 0; v < LBW_TLSV_COUNT; v++)
        if (hello.offered & (1u << v))
            t->c.hello_offered[v]++;
}

static void count_tcp(struct lbw_traffic *t, const struct lbw_pkt *p, int src_local,
                      int dst_local, int64_t now)
{
    uint8_t f = p->tcp_flags;
    t->c.syn += (f & (LBW_TCP_SYN | LBW_TCP_ACK)) == LBW_TCP_SYN;
    t->c.fin += (f & LBW_TCP_FIN) != 0;
    t->c.rst += (f & LBW_TCP_RST) != 0;
    struct lbw_hs_segment s = {.src = p->src, .dst = p->dst, .family = p->family, .flags = f,
                               .sport = p->sport, .dport = p->dport,
                               .src_local = (uint8_t)src_local, .dst_local = (uint8_t)dst_local};
    lbw_hs_segment(t->hs, &s, now);
    if (p->payload_len > 0 && t->port_slot[p->dport])
        count_hello(t, p);
}

enum lbw_pkt_status lbw_traffic_packet(struct lbw_traffic *t, const struct pcap_pkthdr *h,
                                       const u_char *bytes, int linktype)
{
    struct lbw_pkt p;
    enum lbw_pkt_status st = lbw_pkt_decode(bytes, h->caplen, h->len, linktype, &p);
    if (st != LBW_PKT_OK) {
        t->c.skipped[st]++;
        return st;
    }
    int src_local = is_local(t, p.family, p.src);
    int dst_local = is_local(t, p.family, p.dst);
    enum lbw_dir dir = lbw_traffic_direction(t, &p, src_local, dst_local);
    enum lbw_proto proto = proto_class(p.proto);
    t->c.bytes[dir][proto] += p.ip_bytes;
    t->c.packets[dir][proto]++;
    if (p.l4 == LBW_L4_TRUNCATED)
        t->c.l4_truncated++;
    if (!has_ports(&p))
        return LBW_PKT_OK;
    uint8_t slot = t->port_slot[dir == LBW_DIR_IN ? p.dport : p.sport];
    if (slot) {
        t->c.port_bytes[dir][slot - 1] += p.ip_bytes;
        t->c.port_packets[dir][slot - 1]++;
    }
    if (p.proto == PROTO_TCP)
        count_tcp(t, &p, src_local, dst_local, lbw_traffic_ts_us(h));
    return LBW_PKT_OK;
}

void lbw_traffic_expire(struct lbw_traffic *t, int64_t now_us)
{
    lbw_hs_expire(t->hs, now_us);
}

const struct lbw_traffic_counters *lbw_traffic_counters(const struct lbw_traffic *t)
{
    return &t->c;
}

void lbw_traffic_handshakes(const struct lbw_traffic *t, struct lbw_hs_stats *out)
{
    lbw_hs_stats(t->hs, out);
}

size_t lbw_traffic_nports(const struct lbw_traffic *t)
{
    return t->nports;
}

uint16_t lbw_traffic_port(const struct lbw_traffic *t, size_t i)
{
    return i < t->nports ? t->ports[i] : 0;
}

const char *lbw_dir_name(enum lbw_dir d)
{
    return d == LBW_DIR_IN ? "in" : d == LBW_DIR_OUT ? "out" : "unknown";
}

const char *lbw_proto_name(enum lbw_proto p)
{
    static const char *const names[LBW_PROTOS] = {"tcp", "udp", "icmp", "other"};
    return (unsigned)p < LBW_PROTOS ? names[p] : "unknown";
}

/* --- samples --------------------------------------------------------------------------------- */

static void emit2(const struct lbw_emitter *e, const char *metric, const char *n1,
                  const char *v1, const char *n2, const char *v2, double value)
{
    struct lbw_label l[2] = {{n1, v1}, {n2, v2}};
    lbw_emitn(e, metric, l, 2, value);
}

static void emit_volumes(const struct lbw_traffic *t, const struct lbw_emitter *e)
{
    for (int d = 0; d < LBW_DIRS; d++) {
        const char *dn = lbw_dir_name((enum lbw_dir)d);
        for (int p = 0; p < LBW_PROTOS; p++) {
            const char *pn = lbw_proto_name((enum lbw_proto)p);
            emit2(e, "lbwatch_traffic_bytes_total", "direction", dn, "proto", pn,
                  (double)t->c.bytes[d][p]);
            emit2(e, "lbwatch_traffic_packets_total", "direction", dn, "proto", pn,
                  (double)t->c.packets[d][p]);
        }
        for (size_t i = 0; i < t->nports; i++) {
            char port[8];
            snprintf(port, sizeof(port), "%u", t->ports[i]);
            emit2(e, "lbwatch_traffic_port_bytes_total", "direction", dn, "port", port,
                  (double)t->c.port_bytes[d][i]);
            emit2(e, "lbwatch_traffic_port_packets_total", "direction", dn, "port", port,
                  (double)t->c.port_packets[d][i]);
        }
    }
}

static void emit_histogram(const struct lbw_rtt_hist *h, const char *side,
                           const struct lbw_emitter *e)
{
    uint64_t cum = 0;
    for (int i = 0; i < LBW_RTT_BUCKETS; i++) {
        cum += h->bucket[i];
        emit2(e, "lbwatch_tcp_handshake_rtt_seconds_bucket", "le", lbw_rtt_bucket_le[i],
              "side", side, (double)cum);
    }
    emit2(e, "lbwatch_tcp_handshake_rtt_seconds_bucket", "le", "+Inf", "side", side,
          (double)h->count);
    lbw_emit1(e, "lbwatch_tcp_handshake_rtt_seconds_sum", "side", side,
              (double)h->sum_us / US_PER_S);
    lbw_emit1(e, "lbwatch_tcp_handshake_rtt_seconds_count", "side", side, (double)h->count);
}

static void emit_tcp(const struct lbw_traffic *t, const struct lbw_emitter *e)
{
    struct lbw_hs_stats hs;
    lbw_hs_stats(t->hs, &hs);
    lbw_emit(e, "lbwatch_tcp_syn_total", (double)t->c.syn);
    lbw_emit(e, "lbwatch_tcp_fin_total", (double)t->c.fin);
    lbw_emit(e, "lbwatch_tcp_rst_total", (double)t->c.rst);
    for (int s = 0; s < LBW_HS_SIDES; s++)
        emit_histogram(&hs.rtt[s], lbw_hs_side_name((enum lbw_hs_side)s), e);
    for (int o = 0; o < LBW_HS_OUTCOMES; o++)
        lbw_emit1(e, "lbwatch_tcp_handshakes_total", "outcome",
                  lbw_hs_outcome_name((enum lbw_hs_outcome)o), (double)hs.outcomes[o]);
    lbw_emit(e, "lbwatch_tcp_syn_unanswered_ratio",
             hs.window_decided ? (double)hs.window_unanswered / (double)hs.window_decided : 0);
    lbw_emit(e, "lbwatch_traffic_flows", (double)hs.entries);
    lbw_emit(e, "lbwatch_traffic_flow_capacity", (double)hs.capacity);
    lbw_emit(e, "lbwatch_traffic_flow_evictions_total", (double)hs.evicted);
}

static void emit_tls(const struct lbw_traffic *t, const struct lbw_emitter *e)
{
    for (int v = 0; v < LBW_TLSV_COUNT; v++) {
        const char *vn = lbw_tls_ver_name((enum lbw_tls_ver)v);
        lbw_emit1(e, "lbwatch_tls_client_hello_total", "version", vn, (double)t->c.hello[v]);
        lbw_emit1(e, "lbwatch_tls_client_hello_offered_total", "version", vn,
                  (double)t->c.hello_offered[v]);
    }
    lbw_emit(e, "lbwatch_tls_client_hello_malformed_total", (double)t->c.hello_malformed);
}

static void emit_skipped(const struct lbw_traffic *t, const struct lbw_emitter *e)
{
    for (int s = LBW_PKT_NOT_IP; s < LBW_PKT_STATUS_COUNT; s++)
        lbw_emit1(e, "lbwatch_traffic_skipped_packets_total", "reason",
                  lbw_pkt_status_name((enum lbw_pkt_status)s), (double)t->c.skipped[s]);
    lbw_emit(e, "lbwatch_traffic_l4_truncated_packets_total", (double)t->c.l4_truncated);
}

void lbw_traffic_emit(const struct lbw_traffic *t, const struct lbw_emitter *e)
{
    emit_volumes(t, e);
    emit_tcp(t, e);
    emit_tls(t, e);
    emit_skipped(t, e);
}
