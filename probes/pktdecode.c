/* pktdecode.c - link, IP and transport header decoding with bounds checks. See pktdecode.h. */
#include "probes/pktdecode.h"

#include <pcap/dlt.h>
#include <string.h>

#define ETH_HDR 14
#define VLAN_TAG 4
#define VLAN_MAX_TAGS 4
#define SLL_HDR 16
#define SLL2_HDR 20
#define NULL_HDR 4
#define IP4_MIN_HDR 20
#define IP6_HDR 40
#define IP6_MAX_EXT 16
#define TCP_MIN_HDR 20
#define UDP_HDR 8
#define ICMP_MIN_HDR 4

#define ETHERTYPE_IP4 0x0800
#define ETHERTYPE_IP6 0x86dd
#define ETHERTYPE_MIN 0x0600    /* below: an 802.3 length field, not a type */

/* Address family values found in DLT_NULL/DLT_LOOP headers (not this host's AF_ constants:
 * captures come from other systems too). */
#define BSD_AF_INET 2
#define LINUX_AF_INET6 10
#define NETBSD_AF_INET6 24
#define FREEBSD_AF_INET6 28
#define DARWIN_AF_INET6 30

#define IPPROTO_NUM_ICMP 1
#define IPPROTO_NUM_TCP 6
#define IPPROTO_NUM_UDP 17
#define IPPROTO_NUM_ICMP6 58

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static uint32_t le32(const uint8_t *p)
{
    return ((uint32_t)p[3] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | p[0];
}

/* The IP version an ethertype announces: 4, 6, or 0 for something else. */
static int ethertype_version(uint16_t type)
{
    if (type == ETHERTYPE_IP4)
        return 4;
    if (type == ETHERTYPE_IP6)
        return 6;
    return 0;
}

static int is_vlan_tpid(uint16_t type)
{
    return type == 0x8100 || type == 0x88a8 || type == 0x9100;
}

static enum lbw_pkt_status ethernet(const uint8_t *b, size_t caplen, size_t *off, int *version)
{
    if (caplen < ETH_HDR)
        return LBW_PKT_TRUNCATED;
    uint16_t type = be16(b + 12);
    size_t pos = ETH_HDR;
    for (int tags = 0; is_vlan_tpid(type); tags++) {
        if (tags == VLAN_MAX_TAGS)
            return LBW_PKT_NOT_IP;
        if (caplen < pos + VLAN_TAG)
            return LBW_PKT_TRUNCATED;
        type = be16(b + pos + 2);
        pos += VLAN_TAG;
    }
    if (type < ETHERTYPE_MIN || !(*version = ethertype_version(type)))
        return LBW_PKT_NOT_IP;
    *off = pos;
    return LBW_PKT_OK;
}

static enum lbw_pkt_status cooked(const uint8_t *b, size_t caplen, size_t hdr, size_t type_at,
                                  size_t *off, int *version)
{
    if (caplen < hdr)
        return LBW_PKT_TRUNCATED;
    if (!(*version = ethertype_version(be16(b + type_at))))
        return LBW_PKT_NOT_IP;
    *off = hdr;
    return LBW_PKT_OK;
}

/* DLT_NULL carries the family in the writer's byte order, DLT_LOOP in network order; a
 * family fits in a byte, so whichever reading is small is the right one. */
static enum lbw_pkt_status bsd_loopback(const uint8_t *b, size_t caplen, size_t *off,
                                        int *version)
{
    if (caplen < NULL_HDR)
        return LBW_PKT_TRUNCATED;
    uint32_t af = le32(b);
    if (af > 0xff)
        af = be32(b);
    if (af == BSD_AF_INET)
        *version = 4;
    else if (af == LINUX_AF_INET6 || af == NETBSD_AF_INET6 || af == FREEBSD_AF_INET6 ||
             af == DARWIN_AF_INET6)
        *version = 6;
    else
        return LBW_PKT_NOT_IP;
    *off = NULL_HDR;
    return LBW_PKT_OK;
}

/* Finds where the IP header starts and which version the link layer says it is (0: read it
 * from the header, for raw IP). */
static enum lbw_pkt_status link_layer(const uint8_t *b, size_t caplen, int linktype, size_t *off,
                                      int *version)
{
    *version = 0;
    *off = 0;
    switch (linktype) {
    case DLT_EN10MB:
        return ethernet(b, caplen, off, version);
    case DLT_LINUX_SLL:
        return cooked(b, caplen, SLL_HDR, 14, off, version);
    case DLT_LINUX_SLL2:
        return cooked(b, caplen, SLL2_HDR, 0, off, version);
    case DLT_NULL:
    case DLT_LOOP:
        return bsd_loopback(b, caplen, off, version);
    case DLT_RAW:
        return LBW_PKT_OK;
    case DLT_IPV4:
        *version = 4;
        return LBW_PKT_OK;
    case DLT_IPV6:
        *version = 6;
        return LBW_PKT_OK;
    default:
        return LBW_PKT_LINKTYPE;
    }
}

/* Decodes the transport header at p[avail] for out->proto. */
static void transport(const uint8_t *p, size_t avail, struct lbw_pkt *out)
{
    switch (out->proto) {
    case IPPROTO_NUM_TCP: {
        if (avail < TCP_MIN_HDR || (size_t)(p[12] >> 4) * 4 < TCP_MIN_HDR) {
            out->l4 = LBW_L4_TRUNCATED;
            return;
        }
        size_t doff = (size_t)(p[12] >> 4) * 4;
        out->sport = be16(p);
        out->dport = be16(p + 2);
        out->tcp_flags = p[13];
        out->l4hdr = p;
        if (doff <= avail) {
            out->payload = p + doff;
            out->payload_len = avail - doff;
        }
        out->l4 = LBW_L4_OK;
        return;
    }
    case IPPROTO_NUM_UDP:
        if (avail < UDP_HDR) {
            out->l4 = LBW_L4_TRUNCATED;
            return;
        }
        out->sport = be16(p);
        out->dport = be16(p + 2);
        out->l4hdr = p;
        out->payload = p + UDP_HDR;
        out->payload_len = avail - UDP_HDR;
        out->l4 = LBW_L4_OK;
        return;
    case IPPROTO_NUM_ICMP:
    case IPPROTO_NUM_ICMP6:
        if (avail < ICMP_MIN_HDR) {
            out->l4 = LBW_L4_TRUNCATED;
            return;
        }
        out->icmp_type = p[0];
        out->l4hdr = p;
        out->l4 = LBW_L4_OK;
        return;
    default:
        out->l4 = LBW_L4_NONE;
        return;
    }
}

static enum lbw_pkt_status ipv4(const uint8_t *ip, size_t avail, size_t wire, struct lbw_pkt *out)
{
    if (avail < IP4_MIN_HDR)
        return LBW_PKT_TRUNCATED;
    size_t ihl = (size_t)(ip[0] & 0x0f) * 4;
    if (ip[0] >> 4 != 4 || ihl < IP4_MIN_HDR)
        return LBW_PKT_MALFORMED;
    if (ihl > avail)
        return LBW_PKT_TRUNCATED;
    size_t total = be16(ip + 2);
    if (total == 0)
        total = wire;           /* TSO: the length field is left to the NIC */
    else if (total < ihl)
        return LBW_PKT_MALFORMED;
    out->family = 4;
    out->ip_bytes = (uint32_t)total;
    out->proto = ip[9];
    out->src = ip + 12;
    out->dst = ip + 16;
    out->later_fragment = (be16(ip + 6) & 0x1fff) != 0;
    if (out->later_fragment) {
        out->l4 = LBW_L4_NONE;
        return LBW_PKT_OK;
    }
    size_t inside = avail < total ? avail : total;
    transport(ip + ihl, inside - ihl, out);
    return LBW_PKT_OK;
}

static int ip6_ext_generic(uint8_t nh)
{
    return nh == 0 || nh == 43 || nh == 60 || nh == 135 || nh == 139 || nh == 140;
}

#define IP6_NH_FRAGMENT 44
#define IP6_NH_AH 51
#define IP6_FRAG_HDR 8

/* Walks the extension headers from ip+IP6_HDR up to end; sets out->proto and decodes the
 * transport header. */
static void ip6_walk(const uint8_t *ip, size_t end, struct lbw_pkt *out)
{
    uint8_t nh = ip[6];
    size_t pos = IP6_HDR;
    for (int n = 0; n < IP6_MAX_EXT; n++) {
        size_t len;
        out->proto = nh;
        if (ip6_ext_generic(nh) || nh == IP6_NH_AH) {
            if (end - pos < 2)
                break;
            len = nh == IP6_NH_AH ? ((size_t)ip[pos + 1] + 2) * 4 : ((size_t)ip[pos + 1] + 1) * 8;
        } else if (nh == IP6_NH_FRAGMENT) {
            if (end - pos < IP6_FRAG_HDR)
                break;
            len = IP6_FRAG_HDR;
            if (be16(ip + pos + 2) >> 3) {
                out->proto = ip[pos];
                out->later_fragment = 1;
                out->l4 = LBW_L4_NONE;
                return;
            }
        } else {
            transport(ip + pos, end - pos, out);
            return;
        }
        if (end - pos < len)
            break;
        nh = ip[pos];
        pos += len;
    }
    out->l4 = LBW_L4_TRUNCATED;   /* cut short, or more extension headers than we walk */
}

static enum lbw_pkt_status ipv6(const uint8_t *ip, size_t avail, size_t wire, struct lbw_pkt *out)
{
    if (avail < IP6_HDR)
        return LBW_PKT_TRUNCATED;
    if (ip[0] >> 4 != 6)
        return LBW_PKT_MALFORMED;
    size_t plen = be16(ip + 4);
    size_t total = plen ? IP6_HDR + plen : wire;   /* 0: jumbogram or TSO */
    if (total < IP6_HDR)
        return LBW_PKT_MALFORMED;
    out->family = 6;
    out->ip_bytes = (uint32_t)total;
    out->src = ip + 8;
    out->dst = ip + 24;
    ip6_walk(ip, avail < total ? avail : total, out);
    return LBW_PKT_OK;
}

enum lbw_pkt_status lbw_pkt_decode(const uint8_t *bytes, size_t caplen, size_t wirelen,
                                   int linktype, struct lbw_pkt *out)
{
    size_t off;
    int version;
    memset(out, 0, sizeof(*out));
    if (!bytes)
        return LBW_PKT_TRUNCATED;
    enum lbw_pkt_status st = link_layer(bytes, caplen, linktype, &off, &version);
    if (st != LBW_PKT_OK)
        return st;
    if (caplen <= off)
        return LBW_PKT_TRUNCATED;
    const uint8_t *ip = bytes + off;
    size_t avail = caplen - off;
    size_t wire = (wirelen > caplen ? wirelen : caplen) - off;
    if (version == 0)
        version = ip[0] >> 4;
    if (version == 4)
        return ipv4(ip, avail, wire, out);
    if (version == 6)
        return ipv6(ip, avail, wire, out);
    return linktype == DLT_RAW ? LBW_PKT_NOT_IP : LBW_PKT_MALFORMED;
}

const char *lbw_pkt_status_name(enum lbw_pkt_status s)
{
    static const char *const names[LBW_PKT_STATUS_COUNT] = {"ok", "not_ip", "truncated",
                                                            "malformed", "linktype"};
    return (unsigned)s < LBW_PKT_STATUS_COUNT ? names[s] : "unknown";
}
