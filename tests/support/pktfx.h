/* pktfx.h - packet fixtures for the traffic tests: builders for link, IP, transport headers
 * and TLS ClientHello records, written into caller buffers. Addresses are given as text
 * ("10.0.0.1", "2001:db8::1"). Each builder returns the number of bytes it wrote. No checks
 * beyond what a test needs: buffers must be large enough (2048 bytes always are). */
#ifndef LBW_PKTFX_H
#define LBW_PKTFX_H

#include <stddef.h>
#include <stdint.h>

#define FX_MAX 4096

/* TCP header (20 bytes, data offset 5) + payload. */
size_t fx_tcp(uint8_t *out, uint16_t sport, uint16_t dport, uint8_t flags, const uint8_t *payload,
              size_t plen);
/* UDP header + payload. */
size_t fx_udp(uint8_t *out, uint16_t sport, uint16_t dport, const uint8_t *payload, size_t plen);
/* ICMP/ICMPv6 header (type, code 0, checksum 0, 4 bytes of rest). */
size_t fx_icmp(uint8_t *out, uint8_t type);

/* IPv4 header with optlen bytes of options (a multiple of 4, at most 40; NOP-filled) and
 * the given flags/fragment-offset field, then l4[l4len]. */
size_t fx_ipv4(uint8_t *out, const char *src, const char *dst, uint8_t proto, uint16_t frag_field,
               size_t optlen, const uint8_t *l4, size_t l4len);

/* IPv6 header, next header nh, then ext[extlen] (pre-built extension headers), then
 * l4[l4len]. */
size_t fx_ipv6(uint8_t *out, const char *src, const char *dst, uint8_t nh, const uint8_t *ext,
               size_t extlen, const uint8_t *l4, size_t l4len);

/* A generic IPv6 extension header (hop-by-hop, routing, destination options: 8 * (hlen + 1)
 * bytes, zero-filled) with next header nh. */
size_t fx_ip6_ext(uint8_t *out, uint8_t nh, uint8_t hlen);
/* An IPv6 fragment header: next header nh, fragment offset (in 8-byte units), more flag. */
size_t fx_ip6_frag(uint8_t *out, uint8_t nh, uint16_t offset, int more);

/* Ethernet header with ntags 802.1Q tags, then ethertype and l3[l3len]. */
size_t fx_eth(uint8_t *out, int ntags, uint16_t ethertype, const uint8_t *l3, size_t l3len);
/* Linux cooked headers v1 (16 bytes) and v2 (20 bytes). */
size_t fx_sll(uint8_t *out, uint16_t proto, const uint8_t *l3, size_t l3len);
size_t fx_sll2(uint8_t *out, uint16_t proto, const uint8_t *l3, size_t l3len);
/* DLT_NULL/DLT_LOOP header: 4-byte family, little (big = 0) or big (big = 1) endian. */
size_t fx_null(uint8_t *out, uint32_t af, int big, const uint8_t *l3, size_t l3len);

/* A TLS handshake record holding a ClientHello with the given legacy_version and, when
 * nversions > 0, a supported_versions extension listing versions[] (after a server_name
 * extension, so the walk has something to skip). */
size_t fx_client_hello(uint8_t *out, uint16_t legacy, const uint16_t *versions, size_t nversions);

#endif
