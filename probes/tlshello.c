/* tlshello.c - TLS ClientHello recognition and offered versions. See tlshello.h. */
#include "probes/tlshello.h"

#include <string.h>

#define REC_HANDSHAKE 22
#define REC_HDR 5
#define REC_MAX (16384 + 2048)      /* TLSCiphertext limit; plaintext records are smaller */
#define HS_CLIENT_HELLO 1
#define HS_HDR 4
#define HELLO_MIN (2 + 32 + 1 + 2 + 2 + 1 + 1)  /* version random sid suites(1) comp(1) */
#define EXT_SUPPORTED_VERSIONS 43

/* A cursor over the ClientHello body: reads may not pass decl (the handshake length: past it
 * is malformed); reaching avail (end of capture or of the first record) stops the walk. */
struct cur {
    const uint8_t *p;
    size_t pos, avail, decl;
};

enum take { TAKE_OK, TAKE_CUT, TAKE_BAD };

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

/* Claims n bytes at the cursor; on TAKE_OK *at points to them and the cursor moves on. */
static enum take take(struct cur *c, size_t n, const uint8_t **at)
{
    if (n > c->decl - c->pos)
        return TAKE_BAD;
    if (n > c->avail - c->pos)
        return TAKE_CUT;
    *at = c->p + c->pos;
    c->pos += n;
    return TAKE_OK;
}

/* Skips a vector with an n-byte length prefix (1 or 2); the length must be within [min,max]. */
static enum take skip_vec(struct cur *c, size_t n, size_t min, size_t max)
{
    const uint8_t *at;
    enum take r = take(c, n, &at);
    if (r != TAKE_OK)
        return r;
    size_t len = n == 1 ? at[0] : be16(at);
    if (len < min || len > max)
        return TAKE_BAD;
    return take(c, len, &at);
}

static int is_grease(uint16_t v)
{
    return (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff);
}

enum lbw_tls_ver lbw_tls_ver_of(uint16_t wire)
{
    if (wire >= 0x0300 && wire <= 0x0304)
        return (enum lbw_tls_ver)(wire - 0x0300);
    return LBW_TLSV_OTHER;
}

static void offer(struct lbw_tls_hello *h, uint16_t wire)
{
    if (!is_grease(wire))
        h->offered |= 1u << lbw_tls_ver_of(wire);
}

/* Reads the supported_versions extension body at[len]. Returns 0, or -1 if malformed. */
static int supported_versions(const uint8_t *at, size_t len, struct lbw_tls_hello *h)
{
    if (len < 1 || at[0] != len - 1 || at[0] < 2 || at[0] % 2)
        return -1;
    h->offered = 0;
    h->supported_versions = 1;
    for (size_t i = 1; i + 1 < len; i += 2)
        offer(h, be16(at + i));
    return 0;
}

/* Walks the extension block, if any. Returns 0, or -1 if malformed. */
static int extensions(struct cur *c, struct lbw_tls_hello *h)
{
    const uint8_t *at;
    enum take r = take(c, 2, &at);
    if (r != TAKE_OK)
        return r == TAKE_BAD && c->pos != c->decl ? -1 : 0;   /* no block at all is fine */
    size_t block_end = c->pos + be16(at);
    if (block_end != c->decl)
        return -1;      /* the extensions end the hello */
    c->decl = block_end;
    while (c->pos < c->decl) {
        if ((r = take(c, 4, &at)) != TAKE_OK)
            return r == TAKE_BAD ? -1 : 0;
        uint16_t type = be16(at);
        size_t len = be16(at + 2);
        if ((r = take(c, len, &at)) != TAKE_OK)
            return r == TAKE_BAD ? -1 : 0;
        if (type == EXT_SUPPORTED_VERSIONS)
            return supported_versions(at, len, h);
    }
    return 0;
}

/* Walks the ClientHello body after legacy_version. Returns 0, or -1 if malformed. */
static int hello_body(struct cur *c, struct lbw_tls_hello *h)
{
    const uint8_t *at;
    enum take r = take(c, 32, &at);               /* random */
    if (r == TAKE_OK)
        r = skip_vec(c, 1, 0, 32);                /* legacy_session_id */
    if (r == TAKE_OK)
        r = skip_vec(c, 2, 2, 0xfffe);            /* cipher_suites */
    if (r == TAKE_OK)
        r = skip_vec(c, 1, 1, 0xff);              /* legacy_compression_methods */
    if (r == TAKE_BAD)
        return -1;
    if (r == TAKE_CUT)
        return 0;
    return extensions(c, h);
}

static enum lbw_tls_ver highest(unsigned offered)
{
    for (int v = LBW_TLSV_13; v >= LBW_TLSV_SSL3; v--)
        if (offered & (1u << v))
            return (enum lbw_tls_ver)v;
    return LBW_TLSV_OTHER;
}

int lbw_tls_hello_parse(const uint8_t *p, size_t len, struct lbw_tls_hello *out)
{
    if (!p || len < REC_HDR + HS_HDR + 2 || p[0] != REC_HANDSHAKE || p[1] != 3 ||
        p[REC_HDR] != HS_CLIENT_HELLO)
        return 0;
    size_t rec_len = be16(p + 3);
    size_t hs_len = ((size_t)p[6] << 16) | ((size_t)p[7] << 8) | p[8];
    if (rec_len > REC_MAX || rec_len < HS_HDR + 2 || hs_len < HELLO_MIN)
        return -1;

    struct lbw_tls_hello h;
    memset(&h, 0, sizeof(h));
    size_t rec_end = REC_HDR + rec_len;
    struct cur c = {.p = p + REC_HDR + HS_HDR, .pos = 0,
                    .avail = (len < rec_end ? len : rec_end) - REC_HDR - HS_HDR,
                    .decl = hs_len};
    const uint8_t *at;
    if (take(&c, 2, &at) != TAKE_OK)
        return -1;      /* cannot happen: 2 bytes are within both limits, checked above */
    offer(&h, be16(at));
    if (hello_body(&c, &h) < 0)
        return -1;
    h.highest = highest(h.offered);
    *out = h;
    return 1;
}

const char *lbw_tls_ver_name(enum lbw_tls_ver v)
{
    static const char *const names[LBW_TLSV_COUNT] = {"SSL 3.0", "TLS 1.0", "TLS 1.1",
                                                      "TLS 1.2", "TLS 1.3", "other"};
    return (unsigned)v < LBW_TLSV_COUNT ? names[v] : "other";
}
