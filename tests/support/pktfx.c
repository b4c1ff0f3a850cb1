/* pktfx.c - packet fixtures for the traffic tests. See pktfx.h. */
#include "tests/support/pktfx.h"

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static size_t append(uint8_t *out, size_t at, const uint8_t *src, size_t len)
{
    if (len)
        memcpy(out + at, src, len);
    return at + len;
}

size_t fx_tcp(uint8_t *out, uint16_t sport, uint16_t dport, uint8_t flags, const uint8_t *payload,
              size_t plen)
{
    memset(out, 0, 20);
    put16(out, sport);
    put16(out + 2, dport);
    out[12] = 5 << 4;
    out[13] = flags;
    put16(out + 14, 65535);
    return append(out, 20, payload, plen);
}

size_t fx_udp(uint8_t *out, uint16_t sport, uint16_t dport, const uint8_t *payload, size_t plen)
{
    put16(out, sport);
    put16(out + 2, dport);
    put16(out + 4, (uint16_t)(8 + plen));
    put16(out + 6, 0);
    return append(out, 8, payload, plen);
}

size_t fx_icmp(uint8_t *out, uint8_t type)
{
    memset(out, 0, 8);
    out[0] = type;
    return 8;
}

size_t fx_ipv4(uint8_t *out, const char *src, const char *dst, uint8_t proto, uint16_t frag_field,
               size_t optlen, const uint8_t *l4, size_t l4len)
{
    size_t hl = 20 + optlen;
    memset(out, 0, hl);
    out[0] = (uint8_t)(0x40 | (hl / 4));
    put16(out + 2, (uint16_t)(hl + l4len));
    put16(out + 6, frag_field);
    out[8] = 64;
    out[9] = proto;
    inet_pton(AF_INET, src, out + 12);
    inet_pton(AF_INET, dst, out + 16);
    memset(out + 20, 1, optlen);    /* NOP options */
    return append(out, hl, l4, l4len);
}

size_t fx_ipv6(uint8_t *out, const char *src, const char *dst, uint8_t nh, const uint8_t *ext,
               size_t extlen, const uint8_t *l4, size_t l4len)
{
    memset(out, 0, 40);
    out[0] = 0x60;
    put16(out + 4, (uint16_t)(extlen + l4len));
    out[6] = nh;
    out[7] = 64;
    inet_pton(AF_INET6, src, out + 8);
    inet_pton(AF_INET6, dst, out + 24);
    size_t n = append(out, 40, ext, extlen);
    return append(out, n, l4, l4len);
}

size_t fx_ip6_ext(uint8_t *out, uint8_t nh, uint8_t hlen)
{
    size_t len = 8 * ((size_t)hlen + 1);
    memset(out, 0, len);
    out[0] = nh;
    out[1] = hlen;
    return len;
}

size_t fx_ip6_frag(uint8_t *out, uint8_t nh, uint16_t offset, int more)
{
    memset(out, 0, 8);
    out[0] = nh;
    put16(out + 2, (uint16_t)((offset << 3) | (more ? 1 : 0)));
    out[4] = 0x12;  /* identification */
    return 8;
}

size_t fx_eth(uint8_t *out, int ntags, uint16_t ethertype, const uint8_t *l3, size_t l3len)
{
    static const uint8_t macs[12] = {2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2};
    memcpy(out, macs, 12);
    size_t n = 12;
    for (int i = 0; i < ntags; i++) {
        put16(out + n, 0x8100);
        put16(out + n + 2, (uint16_t)(100 + i));
        n += 4;
    }
    put16(out + n, ethertype);
    return append(out, n + 2, l3, l3len);
}

size_t fx_sll(uint8_t *out, uint16_t proto, const uint8_t *l3, size_t l3len)
{
    memset(out, 0, 16);
    put16(out + 2, 772);    /* ARPHRD_LOOPBACK */
    put16(out + 4, 6);
    put16(out + 14, proto);
    return append(out, 16, l3, l3len);
}

size_t fx_sll2(uint8_t *out, uint16_t proto, const uint8_t *l3, size_t l3len)
{
    memset(out, 0, 20);
    put16(out, proto);
    put16(out + 8, 1);      /* ARPHRD_ETHER */
    out[11] = 6;
    return append(out, 20, l3, l3len);
}

size_t fx_null(uint8_t *out, uint32_t af, int big, const uint8_t *l3, size_t l3len)
{
    for (int i = 0; i < 4; i++)
        out[i] = (uint8_t)(af >> (big ? 24 - 8 * i : 8 * i));
    return append(out, 4, l3, l3len);
}

size_t fx_client_hello(uint8_t *out, uint16_t legacy, const uint16_t *versions, size_t nversions)
{
    uint8_t body[512];
    size_t n = 0;
    put16(body, legacy);
    n = 2;
    memset(body + n, 0xab, 32);                 /* random */
    n += 32;
    body[n++] = 0;                              /* session id */
    put16(body + n, 4);                         /* two cipher suites */
    put16(body + n + 2, 0x1301);
    put16(body + n + 4, 0xc02f);
    n += 6;
    body[n++] = 1;                              /* one compression method: null */
    body[n++] = 0;
    size_t ext_start = n;
    n += 2;
    static const char host[] = "www.test";      /* server_name */
    put16(body + n, 0);
    put16(body + n + 2, (uint16_t)(5 + sizeof(host) - 1));
    put16(body + n + 4, (uint16_t)(3 + sizeof(host) - 1));
    body[n + 6] = 0;
    put16(body + n + 7, sizeof(host) - 1);
    memcpy(body + n + 9, host, sizeof(host) - 1);
    n += 9 + sizeof(host) - 1;
    if (nversions) {
        put16(body + n, 43);
        put16(body + n + 2, (uint16_t)(1 + 2 * nversions));
        body[n + 4] = (uint8_t)(2 * nversions);
        n += 5;
        for (size_t i = 0; i < nversions; i++, n += 2)
            put16(body + n, versions[i]);
    }
    put16(body + ext_start, (uint16_t)(n - ext_start - 2));

    out[0] = 22;
    put16(out + 1, 0x0301);
    put16(out + 3, (uint16_t)(4 + n));
    out[5] = 1;
    out[6] = 0;
    put16(out + 7, (uint16_t)n);
    memcpy(out + 9, body, n);
    return 9 + n;
}
