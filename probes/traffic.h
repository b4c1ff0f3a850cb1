/* traffic.h - traffic accounting from captured packets: bytes and packets by direction and
 * protocol and by watched port, TCP SYN/FIN/RST counts, handshake round-trip times and
 * outcomes, TLS ClientHello versions. The engine is a pure function of the packets it is fed
 * (lbw_traffic_packet), so it is tested and fuzzed without a network; probes/capture feeds it
 * from a live interface or a capture file.
 *
 * Direction. A packet is "in" when it goes to a local address and "out" when it comes from
 * one. Local addresses are the configured list (address or prefix; capture.h collects an
 * interface's own). When both ends are local (loopback, a host talking to itself) or neither
 * is (forwarded or multicast traffic), the packet goes to the *service side*:
 *   TCP/UDP: the destination port is watched -> in; else the source port is watched -> out;
 *            else the lower port is the service: destination port <= source port -> in.
 *   ICMP:    an echo reply (ICMP 0, ICMPv6 129) -> out; anything else -> in.
 *   other protocols, later fragments, cut transport headers -> in.
 * So on loopback a request to a watched port is "in" and its answer "out", as on a server.
 *
 * Accounting.
 *   bytes         the IP packet's length from its header (pktdecode.h), whatever the link
 *                 layer or snapshot length
 *   proto         tcp (6), udp (17), icmp (1 and 58), other; for IPv6 the protocol after the
 *                 extension headers; a later fragment counts under its protocol
 *   port          TCP/UDP packets whose local-side port is watched: the destination port for
 *                 "in", the source port for "out"
 *   SYN/FIN/RST   TCP segments with SYN and not ACK, with FIN, with RST (every segment,
 *                 retransmissions included)
 *   handshakes    see handshake.h (RTT histograms per side, outcomes, the SYN ratio)
 *   ClientHello   the payload of every TCP segment to a watched destination port is checked
 *                 for a ClientHello (tlshello.h): counted by highest offered version and by
 *                 each version offered; a hello with contradictory lengths is counted apart
 * Packets that are not IP or whose IP header cannot be decoded are counted by reason only.
 *
 * Memory is fixed at creation: the port index (64 KiB) and the handshake table. Depends on
 * probes/ (pktdecode, tlshello, handshake, sample) and libpcap's packet header type.
 */
#ifndef LBW_TRAFFIC_H
#define LBW_TRAFFIC_H

#include <pcap/pcap.h>
#include <stddef.h>
#include <stdint.h>

#include "probes/handshake.h"
#include "probes/pktdecode.h"
#include "probes/sample.h"
#include "probes/tlshello.h"

#define LBW_TRAFFIC_PORTS_MAX 64
#define LBW_TRAFFIC_LOCAL_MAX 64

/* An address or prefix: family 4 or 6, prefix length in bits. */
struct lbw_netaddr {
    uint8_t family;
    uint8_t prefix;
    uint8_t addr[16];
};

/* Parses "192.0.2.1", "10.0.0.0/8", "2001:db8::1", "fe80::/10" (no prefix = a single
 * address). Returns 0, or -1 if s is not one. */
int lbw_netaddr_parse(const char *s, struct lbw_netaddr *out);

/* 1 if addr (4 or 16 bytes as family says) lies within net. */
int lbw_netaddr_match(const struct lbw_netaddr *net, int family, const uint8_t *addr);

struct lbw_traffic_config {
    const uint16_t *ports;          /* watched ports (1..65535, distinct), at most
                                       LBW_TRAFFIC_PORTS_MAX */
    size_t nports;
    const struct lbw_netaddr *local;/* this host's addresses, at most LBW_TRAFFIC_LOCAL_MAX */
    size_t nlocal;
    struct lbw_hs_config handshake; /* table size, timeout, hash seed */
};

enum lbw_dir { LBW_DIR_IN = 0, LBW_DIR_OUT, LBW_DIRS };
enum lbw_proto { LBW_PROTO_TCP = 0, LBW_PROTO_UDP, LBW_PROTO_ICMP, LBW_PROTO_OTHER, LBW_PROTOS };

/* Everything counted since creation. Port arrays are indexed like the configured ports. */
struct lbw_traffic_counters {
    uint64_t bytes[LBW_DIRS][LBW_PROTOS];
    uint64_t packets[LBW_DIRS][LBW_PROTOS];
    uint64_t port_bytes[LBW_DIRS][LBW_TRAFFIC_PORTS_MAX];
    uint64_t port_packets[LBW_DIRS][LBW_TRAFFIC_PORTS_MAX];
    uint64_t syn, fin, rst;
    uint64_t skipped[LBW_PKT_STATUS_COUNT];   /* by status; [LBW_PKT_OK] stays 0 */
    uint64_t l4_truncated;                    /* accounted, transport header cut short */
    uint64_t hello[LBW_TLSV_COUNT];           /* by highest offered version */
    uint64_t hello_offered[LBW_TLSV_COUNT];   /* by each version offered */
    uint64_t hello_malformed;
};

struct lbw_traffic;

/* Creates an engine. Returns 0, or -1 with a reason in err (bad or too many ports or
 * addresses, out of memory). The configuration's arrays are copied. */
int lbw_traffic_new(struct lbw_traffic **out, const struct lbw_traffic_config *c, char *err,
                    size_t errlen);
void lbw_traffic_free(struct lbw_traffic *t);

/* Accounts one packet: h->caplen bytes at bytes (h->len on the wire, h->ts its time) of DLT_
 * link type linktype. Returns how it was decoded; only LBW_PKT_OK packets are accounted
 * (the others are counted under their status). */
enum lbw_pkt_status lbw_traffic_packet(struct lbw_traffic *t, const struct pcap_pkthdr *h,
                                       const u_char *bytes, int linktype);

/* A packet header's time in µs since the epoch, clamped to [0, 2^42 s) (headers from files
 * and fuzzers may hold anything). */
int64_t lbw_traffic_ts_us(const struct pcap_pkthdr *h);

/* Times out handshakes older than the timeout at now_us (µs since the epoch, the packets'
 * clock); see lbw_hs_expire. */
void lbw_traffic_expire(struct lbw_traffic *t, int64_t now_us);

const struct lbw_traffic_counters *lbw_traffic_counters(const struct lbw_traffic *t);
void lbw_traffic_handshakes(const struct lbw_traffic *t, struct lbw_hs_stats *out);

/* The i-th watched port, and how many there are. */
size_t lbw_traffic_nports(const struct lbw_traffic *t);
uint16_t lbw_traffic_port(const struct lbw_traffic *t, size_t i);

/* The direction rule above, exposed for tests: the direction of a decoded packet given
 * whether its source and destination are local. */
enum lbw_dir lbw_traffic_direction(const struct lbw_traffic *t, const struct lbw_pkt *p,
                                   int src_local, int dst_local);

const char *lbw_dir_name(enum lbw_dir d);       /* "in", "out" */
const char *lbw_proto_name(enum lbw_proto p);   /* "tcp", "udp", "icmp", "other" */

/* Describes the counters as samples (all counters are totals since creation):
 *   lbwatch_traffic_bytes_total{direction,proto}, lbwatch_traffic_packets_total{direction,proto}
 *   lbwatch_traffic_port_bytes_total{direction,port}, lbwatch_traffic_port_packets_total{...}
 *   lbwatch_tcp_syn_total, lbwatch_tcp_fin_total, lbwatch_tcp_rst_total
 *   lbwatch_tcp_handshake_rtt_seconds_bucket{le,side} (cumulative, le="+Inf" last),
 *     lbwatch_tcp_handshake_rtt_seconds_sum{side}, lbwatch_tcp_handshake_rtt_seconds_count{side}
 *   lbwatch_tcp_handshakes_total{outcome="completed|reset|timeout"}
 *   lbwatch_tcp_syn_unanswered_ratio   (gauge: handshake.h's 60 s window; 0 when empty)
 *   lbwatch_tls_client_hello_total{version}, lbwatch_tls_client_hello_offered_total{version},
 *     lbwatch_tls_client_hello_malformed_total
 *   lbwatch_traffic_skipped_packets_total{reason="not_ip|truncated|malformed|linktype"},
 *     lbwatch_traffic_l4_truncated_packets_total
 *   lbwatch_traffic_flows, lbwatch_traffic_flow_capacity, lbwatch_traffic_flow_evictions_total
 * Every combination is emitted, zeros included, so series exist from the start. */
void lbw_traffic_emit(const struct lbw_traffic *t, const struct lbw_emitter *e);

#endif
