/* pktdecode.h - bounds-checked decoding of one captured packet: link layer, IPv4/IPv6 and the
 * TCP/UDP/ICMP header, into a flat description the traffic accounting works from.
 *
 * Packets come from the network (or a capture file) and are untrusted: every read is checked
 * against the captured length, and every length field against what it claims to cover. Link
 * layers: DLT_EN10MB (with any number up to 4 of 802.1Q/802.1ad VLAN tags), DLT_LINUX_SLL,
 * DLT_LINUX_SLL2, DLT_NULL and DLT_LOOP (address family in host or network byte order, IPv6
 * under its Linux, BSD and macOS values), DLT_RAW, DLT_IPV4 and DLT_IPV6. IPv4 options are
 * skipped by the header length; a fragment other than the first has no transport header.
 * IPv6 extension headers (hop-by-hop, routing, destination options, fragment, AH, mobility,
 * HIP, shim6) are walked, at most 16 of them, each checked to lie inside the packet.
 *
 * This module owns no state; it depends on libc and libpcap's DLT_ constants only.
 */
#ifndef LBW_PKTDECODE_H
#define LBW_PKTDECODE_H

#include <stddef.h>
#include <stdint.h>

/* What became of a packet. Only LBW_PKT_OK packets have an IP layer worth accounting. */
enum lbw_pkt_status {
    LBW_PKT_OK = 0,         /* IPv4/IPv6 header decoded (see l4 for the transport header) */
    LBW_PKT_NOT_IP,         /* a well-formed link layer carrying something other than IP */
    LBW_PKT_TRUNCATED,      /* the link or IP header is cut short by the capture */
    LBW_PKT_MALFORMED,      /* a header contradicts itself (version, header or total length) */
    LBW_PKT_LINKTYPE,       /* a link type this decoder does not know */
    LBW_PKT_STATUS_COUNT
};

/* How far the transport layer was decoded. */
enum lbw_pkt_l4 {
    LBW_L4_OK = 0,          /* TCP (20+ bytes, valid data offset), UDP (8) or ICMP (4) header */
    LBW_L4_NONE,            /* nothing to decode: a later fragment, or a protocol without one */
    LBW_L4_TRUNCATED        /* the header (or the IPv6 extension chain) is cut short by the
                               capture or the IP length, or a TCP data offset is below 5 */
};

#define LBW_TCP_FIN 0x01
#define LBW_TCP_SYN 0x02
#define LBW_TCP_RST 0x04
#define LBW_TCP_PSH 0x08
#define LBW_TCP_ACK 0x10

struct lbw_pkt {
    uint8_t family;         /* 4 or 6 */
    uint8_t proto;          /* upper-layer protocol number (after IPv6 extension headers;
                               the next header that could not be read when l4 is TRUNCATED) */
    uint8_t l4;             /* enum lbw_pkt_l4 */
    uint8_t later_fragment; /* 1 for a fragment other than the first */
    uint8_t tcp_flags;      /* TCP only, l4 OK */
    uint8_t icmp_type;      /* ICMP/ICMPv6 only, l4 OK */
    uint16_t sport, dport;  /* TCP/UDP only, l4 OK; host byte order */
    uint32_t ip_bytes;      /* the IP packet's length on the wire: IPv4 total length, IPv6 40 +
                               payload length; when that field is 0 (TSO, jumbogram) the wire
                               length minus the link header */
    const uint8_t *src;     /* 4 or 16 bytes inside the packet */
    const uint8_t *dst;
    const uint8_t *l4hdr;   /* the transport header inside the packet (NULL unless l4 OK) */
    const uint8_t *payload; /* TCP/UDP payload as captured (NULL when l4 is not OK) */
    size_t payload_len;     /* bytes of it both captured and inside the IP length */
};

/* Decodes bytes[caplen] (wirelen bytes on the wire; values below caplen are taken as caplen)
 * of the given DLT_ link type into out. Never reads outside bytes[0..caplen). Returns the
 * status; out is fully set only for LBW_PKT_OK. */
enum lbw_pkt_status lbw_pkt_decode(const uint8_t *bytes, size_t caplen, size_t wirelen,
                                   int linktype, struct lbw_pkt *out);

/* "ok", "not_ip", "truncated", "malformed", "linktype". */
const char *lbw_pkt_status_name(enum lbw_pkt_status s);

#endif
