/* chunk.c - Gorilla-style sample chunk: bit writer, encoder, bounds-checked decoder.
 * See chunk.h for the format. */
#include "node/chunk.h"

#include <stdlib.h>
#include <string.h>

#define NO_WINDOW 65u                 /* leading > 64: no '11' value seen yet */
#define SAMPLE_MAX_BITS (4 + 32 + 2 + 5 + 6 + 64)

static const unsigned dod_width[] = {0, 14, 17, 20, 32}; /* indexed by the count of '1's */

static uint64_t double_bits(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof(u));
    return u;
}

static double bits_double(uint64_t u)
{
    double v;
    memcpy(&v, &u, sizeof(v));
    return v;
}

static int64_t as_signed(uint64_t u)
{
    int64_t v;
    memcpy(&v, &u, sizeof(v));
    return v;
}

/* ---- encoder ------------------------------------------------------------------------------ */

void lbw_chunk_enc_init(struct lbw_chunk_enc *e)
{
    memset(e, 0, sizeof(*e));
    e->leading = NO_WINDOW;
}

void lbw_chunk_enc_free(struct lbw_chunk_enc *e)
{
    free(e->buf);
    lbw_chunk_enc_init(e);
}

void lbw_chunk_enc_reset(struct lbw_chunk_enc *e)
{
    e->bits = 0;
    e->count = 0;
    e->leading = NO_WINDOW;
    e->trailing = 0;
}

/* Makes room for need bytes in total. */
static int reserve(struct lbw_chunk_enc *e, size_t need)
{
    if (need <= e->cap)
        return 0;
    size_t cap = e->cap ? e->cap : 64;
    while (cap < need)
        cap *= 2;
    uint8_t *buf = realloc(e->buf, cap);
    if (!buf)
        return -1;
    e->buf = buf;
    e->cap = cap;
    return 0;
}

/* Writes the low n bits of v (1 <= n <= 64), most significant first, into room reserved
 * beforehand. The unwritten low bits of a partial last byte are always zero. */
static void put_bits(struct lbw_chunk_enc *e, uint64_t v, unsigned n)
{
    uint8_t *p = e->buf + (e->bits >> 3);
    unsigned used = (unsigned)(e->bits & 7);
    if (n < 64)
        v &= ((uint64_t)1 << n) - 1;
    e->bits += n;
    if (used) {
        unsigned room = 8 - used;
        if (n <= room) {
            *p |= (uint8_t)(v << (room - n));
            return;
        }
        n -= room;
        *p++ |= (uint8_t)(v >> n);
    }
    while (n >= 8) {
        n -= 8;
        *p++ = (uint8_t)(v >> n);
    }
    if (n)
        *p = (uint8_t)(v << (8 - n));
}

static void put_header(struct lbw_chunk_enc *e, int64_t ts)
{
    uint64_t u = (uint64_t)ts;
    uint64_t z = (u << 1) ^ (0 - (u >> 63));
    size_t pos = 1;
    while (z >= 0x80) {
        e->buf[pos++] = (uint8_t)(z | 0x80);
        z >>= 7;
    }
    e->buf[pos++] = (uint8_t)z;
    e->bits = pos * 8;
}

static void put_dod(struct lbw_chunk_enc *e, int64_t dod)
{
    if (dod == 0) {
        put_bits(e, 0, 1);
        return;
    }
    for (unsigned ones = 1; ones < 4; ones++) {
        int64_t lim = (int64_t)1 << (dod_width[ones] - 1);
        if (dod >= -lim && dod < lim) {
            put_bits(e, ((1u << ones) - 1) << 1, ones + 1); /* ones '1's then a '0' */
            put_bits(e, (uint64_t)dod, dod_width[ones]);
            return;
        }
    }
    put_bits(e, 0xf, 4);
    put_bits(e, (uint64_t)dod, 32);
}

static void put_value(struct lbw_chunk_enc *e, uint64_t vb)
{
    uint64_t x = vb ^ e->last_value;
    if (x == 0) {
        put_bits(e, 0, 1);
        return;
    }
    unsigned lead = (unsigned)__builtin_clzll(x), trail = (unsigned)__builtin_ctzll(x);
    if (lead > 31)
        lead = 31;
    if (e->leading != NO_WINDOW && lead >= e->leading && trail >= e->trailing) {
        put_bits(e, 2, 2);
        put_bits(e, x >> e->trailing, 64 - e->leading - e->trailing);
        return;
    }
    unsigned width = 64 - lead - trail;
    put_bits(e, 3, 2);
    put_bits(e, lead, 5);
    put_bits(e, width & 63, 6);
    put_bits(e, x >> trail, width);
    e->leading = lead;
    e->trailing = trail;
}

int lbw_chunk_fits(const struct lbw_chunk_enc *e, int64_t ts_ms)
{
    if (e->count == 0)
        return 1;
    return e->count < LBW_CHUNK_MAX_SAMPLES && ts_ms > e->last_ts &&
           (uint64_t)ts_ms - (uint64_t)e->first_ts < (uint64_t)LBW_CHUNK_SPAN_MS;
}

int lbw_chunk_append(struct lbw_chunk_enc *e, int64_t ts_ms, double value)
{
    if (!lbw_chunk_fits(e, ts_ms) || reserve(e, e->bits / 8 + 11 + SAMPLE_MAX_BITS / 8 + 2) < 0)
        return -1;
    uint64_t vb = double_bits(value);
    if (e->count == 0) {
        put_header(e, ts_ms);
        put_bits(e, vb, 64);
        e->first_ts = ts_ms;
        e->last_delta = 0;
    } else {
        int64_t delta = ts_ms - e->last_ts;
        put_dod(e, delta - e->last_delta);
        put_value(e, vb);
        e->last_delta = delta;
    }
    e->last_ts = ts_ms;
    e->last_value = vb;
    e->count++;
    e->buf[0] = (uint8_t)e->count;
    return 0;
}

const uint8_t *lbw_chunk_data(const struct lbw_chunk_enc *e, size_t *len)
{
    *len = e->count ? (e->bits + 7) / 8 : 0;
    return e->buf;
}

/* ---- decoder ------------------------------------------------------------------------------ */

struct reader {
    const uint8_t *p;
    size_t nbits;
    size_t pos;
};

/* Reads n bits (1 <= n <= 64), most significant first. */
static int get_bits(struct reader *r, unsigned n, uint64_t *out)
{
    if (n == 0 || n > r->nbits - r->pos)
        return -1;
    const uint8_t *p = r->p + (r->pos >> 3);
    unsigned avail = 8 - (unsigned)(r->pos & 7);
    uint64_t v = *p++ & (0xffu >> (8 - avail));
    r->pos += n;
    if (n <= avail) {
        *out = v >> (avail - n);
        return 0;
    }
    n -= avail;
    while (n >= 8) {
        v = (v << 8) | *p++;
        n -= 8;
    }
    if (n)
        v = (v << n) | (uint64_t)(*p >> (8 - n));
    *out = v;
    return 0;
}

struct dec {
    struct reader r;
    unsigned n, i;          /* samples in the chunk, samples decoded */
    int64_t first, ts, delta;
    uint64_t value;
    unsigned leading, trailing;
};

static int get_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *out)
{
    uint64_t z = 0;
    for (unsigned i = 0; i < 10 && *pos < len; i++) {
        uint8_t b = p[(*pos)++];
        if (i == 9 && b > 1)
            return -1;
        z |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *out = z;
            return 0;
        }
    }
    return -1;
}

/* Reads the header and the first sample. */
static int dec_start(struct dec *d, const uint8_t *p, size_t len)
{
    size_t pos = 1;
    uint64_t z;
    if (len < 1 || p[0] < 1 || p[0] > LBW_CHUNK_MAX_SAMPLES || get_varint(p, len, &pos, &z) < 0)
        return -1;
    d->r = (struct reader){p, len * 8, pos * 8};
    d->n = p[0];
    d->i = 1;
    d->first = d->ts = as_signed((z >> 1) ^ (0 - (z & 1)));
    d->delta = 0;
    d->leading = NO_WINDOW;
    d->trailing = 0;
    return get_bits(&d->r, 64, &d->value);
}

static int dec_timestamp(struct dec *d)
{
    unsigned ones = 0;
    uint64_t bit = 1, u = 0;
    while (ones < 4) {
        if (get_bits(&d->r, 1, &bit) < 0)
            return -1;
        if (!bit)
            break;
        ones++;
    }
    int64_t dod = 0;
    if (ones > 0) {
        unsigned w = dod_width[ones];
        if (get_bits(&d->r, w, &u) < 0)
            return -1;
        dod = (int64_t)u - ((u >> (w - 1)) ? ((int64_t)1 << w) : 0);
    }
    int64_t delta = d->delta + dod;
    if (delta < 1 || (d->ts - d->first) + delta >= LBW_CHUNK_SPAN_MS ||
        (d->ts > 0 && delta > INT64_MAX - d->ts))
        return -1;
    d->delta = delta;
    d->ts += delta;
    return 0;
}

static int dec_value(struct dec *d)
{
    uint64_t bit, u, x;
    if (get_bits(&d->r, 1, &bit) < 0)
        return -1;
    if (!bit)
        return 0;
    if (get_bits(&d->r, 1, &bit) < 0)
        return -1;
    if (!bit) {
        if (d->leading == NO_WINDOW ||
            get_bits(&d->r, 64 - d->leading - d->trailing, &x) < 0)
            return -1;
    } else {
        uint64_t lead, width;
        if (get_bits(&d->r, 5, &lead) < 0 || get_bits(&d->r, 6, &width) < 0)
            return -1;
        if (width == 0)
            width = 64;
        if (lead + width > 64 || get_bits(&d->r, (unsigned)width, &x) < 0)
            return -1;
        d->leading = (unsigned)lead;
        d->trailing = (unsigned)(64 - lead - width);
    }
    u = x << d->trailing;
    d->value ^= u;
    return 0;
}

static int dec_next(struct dec *d)
{
    if (d->i >= d->n || dec_timestamp(d) < 0 || dec_value(d) < 0)
        return -1;
    d->i++;
    return 0;
}

/* After the last sample: only zero padding up to the end of the input. */
static int dec_end(const struct dec *d)
{
    const struct reader *r = &d->r;
    if (d->i != d->n || (r->pos + 7) / 8 != r->nbits / 8)
        return -1;
    unsigned used = (unsigned)(r->pos & 7);
    if (used && (r->p[r->pos >> 3] & ((1u << (8 - used)) - 1)))
        return -1;
    return 0;
}

int lbw_chunk_decode(const void *data, size_t len,
                     struct lbw_chunk_sample out[LBW_CHUNK_MAX_SAMPLES])
{
    struct dec d;
    if (dec_start(&d, data, len) < 0)
        return -1;
    out[0] = (struct lbw_chunk_sample){d.ts, bits_double(d.value)};
    while (d.i < d.n) {
        if (dec_next(&d) < 0)
            return -1;
        out[d.i - 1] = (struct lbw_chunk_sample){d.ts, bits_double(d.value)};
    }
    return dec_end(&d) < 0 ? -1 : (int)d.n;
}

int lbw_chunk_resume(struct lbw_chunk_enc *e, const void *data, size_t len)
{
    struct dec d;
    lbw_chunk_enc_reset(e);
    if (dec_start(&d, data, len) < 0)
        return -1;
    while (d.i < d.n)
        if (dec_next(&d) < 0)
            return -1;
    if (dec_end(&d) < 0 || reserve(e, len + SAMPLE_MAX_BITS / 8 + 2) < 0)
        return -1;
    memcpy(e->buf, data, len);
    e->bits = d.r.pos;
    e->count = d.n;
    e->first_ts = d.first;
    e->last_ts = d.ts;
    e->last_delta = d.delta;
    e->last_value = d.value;
    e->leading = d.leading;
    e->trailing = d.trailing;
    return 0;
}
