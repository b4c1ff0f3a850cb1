/* test_chunk.c - the Gorilla sample chunk: bit-exact round trips, compression of regular
 * series, the 120-sample and 2-hour cuts, resuming, and rejection of bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "node/chunk.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static uint64_t bits_of(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof(u));
    return u;
}

static double from_bits(uint64_t u)
{
    double v;
    memcpy(&v, &u, sizeof(v));
    return v;
}

/* Encodes n samples into e (each must be accepted) and checks they decode bit-exactly. */
static void roundtrip(struct lbw_chunk_enc *e, const struct lbw_chunk_sample *in, int n)
{
    struct lbw_chunk_sample out[LBW_CHUNK_MAX_SAMPLES];
    for (int i = 0; i < n; i++)
        assert_int_equal(lbw_chunk_append(e, in[i].ts_ms, in[i].value), 0);
    assert_int_equal(e->count, n);
    size_t len;
    const uint8_t *data = lbw_chunk_data(e, &len);
    assert_true(len > 0 && len <= LBW_CHUNK_MAX_BYTES);
    assert_int_equal(lbw_chunk_decode(data, len, out), n);
    for (int i = 0; i < n; i++) {
        assert_int_equal(out[i].ts_ms, in[i].ts_ms);
        assert_true(bits_of(out[i].value) == bits_of(in[i].value));
    }
}

static void regular_series_compresses(void **state)
{
    (void)state;
    struct lbw_chunk_sample in[LBW_CHUNK_MAX_SAMPLES];
    struct lbw_chunk_enc e;
    lbw_chunk_enc_init(&e);
    for (int i = 0; i < LBW_CHUNK_MAX_SAMPLES; i++)
        in[i] = (struct lbw_chunk_sample){1700000000000 + i * 10000LL, 1.0};
    roundtrip(&e, in, LBW_CHUNK_MAX_SAMPLES);
    size_t len;
    lbw_chunk_data(&e, &len);
    /* header + first value + the first delta (20 bits) + 2 bits per later sample */
    assert_true(len <= 1 + 6 + 8 + (21 + 2 * (LBW_CHUNK_MAX_SAMPLES - 2) + 7) / 8);

    lbw_chunk_enc_reset(&e);
    for (int i = 0; i < LBW_CHUNK_MAX_SAMPLES; i++) /* a counter scraped with jitter */
        in[i] = (struct lbw_chunk_sample){1700000000000 + i * 10000LL + (int64_t)(rng() % 7),
                                          1000.0 + i * 17};
    roundtrip(&e, in, LBW_CHUNK_MAX_SAMPLES);
    lbw_chunk_data(&e, &len);
    assert_true(len < 4 * LBW_CHUNK_MAX_SAMPLES);
    lbw_chunk_enc_free(&e);
}

static void irregular_random_roundtrip(void **state)
{
    (void)state;
    struct lbw_chunk_sample in[LBW_CHUNK_MAX_SAMPLES];
    struct lbw_chunk_enc e;
    lbw_chunk_enc_init(&e);
    for (int round = 0; round < 200; round++) {
        int64_t ts = (int64_t)(rng() % 4000000000000ull);
        int n = 1 + (int)(rng() % LBW_CHUNK_MAX_SAMPLES);
        for (int i = 0; i < n; i++) {
            in[i].ts_ms = ts;
            switch (rng() % 4) {
            case 0: in[i].value = from_bits(rng()); break;             /* any bits, NaNs too */
            case 1: in[i].value = (double)(rng() % 100) / 8; break;    /* few distinct values */
            case 2: in[i].value = i ? in[i - 1].value : 0; break;      /* repeats */
            default: in[i].value = (double)(int64_t)rng() * 1e-3; break;
            }
            ts += 1 + (int64_t)(rng() % (LBW_CHUNK_SPAN_MS / LBW_CHUNK_MAX_SAMPLES));
        }
        lbw_chunk_enc_reset(&e);
        roundtrip(&e, in, n);
    }
    lbw_chunk_enc_free(&e);
}

static void special_values_bit_exact(void **state)
{
    (void)state;
    const double vals[] = {0.0, -0.0, NAN, -NAN, from_bits(0x7ff0000000000001ull),
                           from_bits(0xfff8dead0000beefull), INFINITY, -INFINITY, DBL_MAX,
                           -DBL_MAX, DBL_MIN, 4.9e-324, -4.9e-324, 1.0, 1.0, -0.0, 0.0};
    struct lbw_chunk_sample in[sizeof(vals) / sizeof(vals[0])];
    struct lbw_chunk_enc e;
    lbw_chunk_enc_init(&e);
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
        in[i] = (struct lbw_chunk_sample){5000 + (int64_t)i, vals[i]};
    roundtrip(&e, in, (int)(sizeof(vals) / sizeof(vals[0])));
    lbw_chunk_enc_free(&e);
}

static void large_jumps_and_extreme_timestamps(void **state)
{
    (void)state;
    /* deltas that need every delta-of-delta width, in both directions */
    const int64_t deltas[] = {1, 1, 8192, 1, 65537, 2, 524289, 3, 3000000, 1, 1, 4000000};
    const int64_t firsts[] = {0, -1, INT64_MIN, INT64_MAX - LBW_CHUNK_SPAN_MS, 1700000000000};
    struct lbw_chunk_sample in[16];
    struct lbw_chunk_enc e;
    lbw_chunk_enc_init(&e);
    for (size_t f = 0; f < sizeof(firsts) / sizeof(firsts[0]); f++) {
        int64_t ts = firsts[f];
        int n = 0;
        in[n++] = (struct lbw_chunk_sample){ts, -1e300};
        for (size_t i = 0; i < sizeof(deltas) / sizeof(deltas[0]); i++) {
            if (ts - firsts[f] + deltas[i] >= LBW_CHUNK_SPAN_MS)
                break;
            ts += deltas[i];
            in[n] = (struct lbw_chunk_sample){ts, n % 2 ? 1e300 : -5e-300};
            n++;
        }
        assert_true(n >= 8);
        lbw_chunk_enc_reset(&e);
        roundtrip(&e, in, n);
    }
    /* the largest span allowed, then one past it */
    lbw_chunk_enc_reset(&e);
    assert_int_equal(lbw_chunk_append(&e, 100, 1), 0);
    assert_int_equal(lbw_chunk_append(&e, 100 + LBW_CHUNK_SPAN_MS - 1, 2), 0);
    assert_int_equal(lbw_chunk_fits(&e, 100 + LBW_CHUNK_SPAN_MS), 0);
    lbw_chunk_enc_free(&e);
}

static void older_or_equal_timestamps_rejected(void **state)
{
    (void)state;
    struct lbw_chunk_sample out[LBW_CHUNK_MAX_SAMPLES];
    struct lbw_chunk_enc e;
    lbw_chunk_enc_init(&e);
    assert_int_equal(lbw_chunk_append(&e, 1000, 1), 0);
    assert_int_equal(lbw_chunk_append(&e, 2000, 2), 0);
    assert_int_equal(lbw_chunk_fits(&e, 2000), 0);
    assert_int_equal(lbw_chunk_append(&e, 2000, 3), -1);
    assert_int_equal(lbw_chunk_append(&e, 1500, 3), -1);
    assert_int_equal(lbw_chunk_append(&e, INT64_MIN, 3), -1);
    assert_int_equal(lbw_chunk_append(&e, 2500, 4), 0); /* state untouched by the rejects */
    size_t len;
    const uint8_t *data = lbw_chunk_data(&e, &len);
    assert_int_equal(lbw_chunk_decode(data, len, out), 3);
    assert_int_equal(out[2].ts_ms, 2500);
    assert_true(out[2].value == 4);
    lbw_chunk_enc_free(&e);
}

static void cut_at_120_samples(void **state)
{
    (void)state;
    struct lbw_chunk_enc e;
    lbw_chunk_enc_init(&e);
    for (int i = 0; i < LBW_CHUNK_MAX_SAMPLES; i++) {
        assert_int_equal(lbw_chunk_fits(&e, i * 1000LL), 1);
        assert_int_equal(lbw_chunk_append(&e, i * 1000LL, i), 0);
    }
    assert_int_equal(lbw_chunk_fits(&e, 1000000), 0);
    assert_int_equal(lbw_chunk_append(&e, 1000000, 0), -1);
    assert_int_equal(e.count, LBW_CHUNK_MAX_SAMPLES);
    lbw_chunk_enc_free(&e);
}

static void cut_at_two_hours(void **state)
{
    (void)state;
    struct lbw_chunk_enc e;
    lbw_chunk_enc_init(&e);
    int64_t t0 = 1700000000000;
    int n = 0;
    for (int64_t ts = t0; lbw_chunk_fits(&e, ts); ts += 600000) /* every 10 minutes */
        assert_int_equal(lbw_chunk_append(&e, ts, n++), 0);
    assert_int_equal(n, 12);
    assert_int_equal(e.last_ts, t0 + 11 * 600000);
    lbw_chunk_enc_free(&e);
}

static void reset_reuses_buffer(void **state)
{
    (void)state;
    struct lbw_chunk_enc e;
    lbw_chunk_enc_init(&e);
    for (int i = 0; i < LBW_CHUNK_MAX_SAMPLES; i++)
        assert_int_equal(lbw_chunk_append(&e, i * 1000LL, from_bits(rng())), 0);
    uint8_t *buf = e.buf;
    size_t cap = e.cap;
    for (int round = 0; round < 5; round++) {
        lbw_chunk_enc_reset(&e);
        assert_int_equal(e.count, 0);
        for (int i = 0; i < LBW_CHUNK_MAX_SAMPLES; i++)
            assert_int_equal(lbw_chunk_append(&e, i * 1000LL, from_bits(rng() & ~(1ull << 62))), 0);
        assert_ptr_equal(e.buf, buf);
        assert_int_equal(e.cap, cap);
    }
    lbw_chunk_enc_free(&e);
}

/* A chunk resumed at any point and continued is byte-identical to one encoded in one go. */
static void resume_continues_identically(void **state)
{
    (void)state;
    struct lbw_chunk_sample in[LBW_CHUNK_MAX_SAMPLES];
    struct lbw_chunk_enc whole, part, resumed;
    lbw_chunk_enc_init(&whole);
    lbw_chunk_enc_init(&part);
    lbw_chunk_enc_init(&resumed);
    int64_t ts = 1700000000000;
    for (int i = 0; i < LBW_CHUNK_MAX_SAMPLES; i++) {
        ts += 1 + (int64_t)(rng() % 30000);
        in[i] = (struct lbw_chunk_sample){ts, i % 3 ? (double)(rng() % 1000) : from_bits(rng())};
        assert_int_equal(lbw_chunk_append(&whole, in[i].ts_ms, in[i].value), 0);
    }
    size_t wlen, plen, rlen;
    const uint8_t *wdata = lbw_chunk_data(&whole, &wlen);
    for (int cut = 1; cut < LBW_CHUNK_MAX_SAMPLES; cut++) {
        lbw_chunk_enc_reset(&part);
        for (int i = 0; i < cut; i++)
            assert_int_equal(lbw_chunk_append(&part, in[i].ts_ms, in[i].value), 0);
        const uint8_t *pdata = lbw_chunk_data(&part, &plen);
        assert_int_equal(lbw_chunk_resume(&resumed, pdata, plen), 0);
        assert_int_equal(resumed.count, cut);
        assert_int_equal(resumed.last_ts, in[cut - 1].ts_ms);
        for (int i = cut; i < LBW_CHUNK_MAX_SAMPLES; i++)
            assert_int_equal(lbw_chunk_append(&resumed, in[i].ts_ms, in[i].value), 0);
        const uint8_t *rdata = lbw_chunk_data(&resumed, &rlen);
        assert_int_equal(rlen, wlen);
        assert_memory_equal(rdata, wdata, wlen);
    }
    lbw_chunk_enc_free(&whole);
    lbw_chunk_enc_free(&part);
    lbw_chunk_enc_free(&resumed);
}

static void truncated_and_padded_rejected(void **state)
{
    (void)state;
    struct lbw_chunk_sample out[LBW_CHUNK_MAX_SAMPLES];
    struct lbw_chunk_enc e;
    lbw_chunk_enc_init(&e);
    for (int i = 0; i < 50; i++)
        assert_int_equal(lbw_chunk_append(&e, 1700000000000 + i * 997LL, from_bits(rng())), 0);
    size_t len;
    const uint8_t *data = lbw_chunk_data(&e, &len);
    uint8_t *copy = malloc(len + 1);
    assert_non_null(copy);
    memcpy(copy, data, len);
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *prefix = malloc(cut ? cut : 1); /* exact size: ASan catches any overread */
        assert_non_null(prefix);
        memcpy(prefix, copy, cut);
        assert_int_equal(lbw_chunk_decode(prefix, cut, out), -1);
        assert_int_equal(lbw_chunk_resume(&e, prefix, cut), -1);
        free(prefix);
    }
    copy[len] = 0;
    assert_int_equal(lbw_chunk_decode(copy, len + 1, out), -1); /* trailing byte */
    assert_int_equal(lbw_chunk_decode(copy, len, out), 50);
    free(copy);
    lbw_chunk_enc_free(&e);
}

static void corrupt_headers_rejected(void **state)
{
    (void)state;
    struct lbw_chunk_sample out[LBW_CHUNK_MAX_SAMPLES];
    struct lbw_chunk_enc e;
    lbw_chunk_enc_init(&e);
    for (int i = 0; i < 10; i++)
        assert_int_equal(lbw_chunk_append(&e, 1000 + i * 1000LL, i), 0);
    size_t len;
    uint8_t buf[256];
    memcpy(buf, lbw_chunk_data(&e, &len), len);
    assert_int_equal(lbw_chunk_decode(buf, len, out), 10);

    buf[0] = 0;
    assert_int_equal(lbw_chunk_decode(buf, len, out), -1);
    buf[0] = LBW_CHUNK_MAX_SAMPLES + 1;
    assert_int_equal(lbw_chunk_decode(buf, len, out), -1);
    buf[0] = 40; /* claims more samples than the padding bits could hold */
    assert_int_equal(lbw_chunk_decode(buf, len, out), -1);
    buf[0] = 9; /* one fewer: the tail is not padding */
    assert_int_equal(lbw_chunk_decode(buf, len, out), -1);
    buf[0] = 10;
    buf[len - 1] ^= 1; /* padding or last bit: either way not the same chunk */
    int n = lbw_chunk_decode(buf, len, out);
    assert_true(n == -1 || bits_of(out[9].value) != bits_of(9.0));

    /* an eleven-byte varint, and a ten-byte one that overflows */
    uint8_t longv[32] = {1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    assert_int_equal(lbw_chunk_decode(longv, sizeof(longv), out), -1);
    uint8_t ovf[32] = {1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    assert_int_equal(lbw_chunk_decode(ovf, 11 + 8, out), -1);

    /* second sample: dod '10'+14 bits = 1, then a '10' value before any window was set */
    uint8_t nowin[] = {2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x01, 0x80, 0, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(lbw_chunk_decode(nowin, sizeof(nowin), out), -1);
    /* 0 delta (dod '0' after the first sample means delta 0): not increasing */
    uint8_t same[] = {2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(lbw_chunk_decode(same, sizeof(same), out), -1);
    lbw_chunk_enc_free(&e);
}

/* Random bit flips and garbage never crash the decoder (ASan checks reads). */
static void garbage_never_overreads(void **state)
{
    (void)state;
    struct lbw_chunk_sample out[LBW_CHUNK_MAX_SAMPLES];
    struct lbw_chunk_enc e;
    lbw_chunk_enc_init(&e);
    for (int i = 0; i < LBW_CHUNK_MAX_SAMPLES; i++)
        assert_int_equal(
            lbw_chunk_append(&e, i * 15000LL + (int64_t)(rng() % 100), from_bits(rng())), 0);
    size_t len;
    const uint8_t *data = lbw_chunk_data(&e, &len);
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    int rejected = 0;
    for (int round = 0; round < 20000; round++) {
        memcpy(buf, data, len);
        for (int f = 0; f < 1 + round % 4; f++)
            buf[rng() % len] ^= (uint8_t)(1u << (rng() % 8));
        int n = lbw_chunk_decode(buf, len, out);
        assert_true(n == -1 || (n >= 1 && n <= LBW_CHUNK_MAX_SAMPLES));
        for (int i = 1; i < n; i++)
            assert_true(out[i].ts_ms > out[i - 1].ts_ms);
        rejected += n < 0;
    }
    assert_true(rejected > 0);
    for (int round = 0; round < 20000; round++) {
        size_t n = 1 + rng() % len;
        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t)rng();
        buf[0] = (uint8_t)(1 + rng() % LBW_CHUNK_MAX_SAMPLES);
        lbw_chunk_decode(buf, n, out);
    }
    free(buf);
    lbw_chunk_enc_free(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(regular_series_compresses),
        cmocka_unit_test(irregular_random_roundtrip),
        cmocka_unit_test(special_values_bit_exact),
        cmocka_unit_test(large_jumps_and_extreme_timestamps),
        cmocka_unit_test(older_or_equal_timestamps_rejected),
        cmocka_unit_test(cut_at_120_samples),
        cmocka_unit_test(cut_at_two_hours),
        cmocka_unit_test(reset_reuses_buffer),
        cmocka_unit_test(resume_continues_identically),
        cmocka_unit_test(truncated_and_padded_rejected),
        cmocka_unit_test(corrupt_headers_rejected),
        cmocka_unit_test(garbage_never_overreads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
