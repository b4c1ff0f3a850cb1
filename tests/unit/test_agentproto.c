/* test_agentproto.c - node/agentproto: the node <-> agent frame codec.
 *
 * PULL, END and ERROR frames encode to the documented bytes and decode back; bodies of any
 * other length, an END whose oldest is above its newest or whose flag is not 0/1, and an
 * ERROR with a wrong length or unprintable text are refused. The stream decoder hands out the
 * same frames however the bytes are cut (every split point, one byte at a time), waits on
 * truncated frames, refuses a length of 0 or above its limit (and everything after it), and
 * will not buffer more than one frame the caller does not take.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "node/agentproto.h"

static void pull_frame_layout(void **state)
{
    uint8_t f[LBW_AGENT_FRAME_HEAD + LBW_AGENT_PULL_BYTES];
    struct lbw_agent_pull p = {1, 0x0102030405060708ull, 0x0a0b0c0d}, q;
    static const uint8_t want[] = {0, 0, 0, 14, LBW_AGENT_PULL, 1, 1, 2, 3, 4, 5, 6, 7, 8,
                                   0x0a, 0x0b, 0x0c, 0x0d};
    (void)state;
    assert_int_equal(lbw_agent_pull_encode(&p, f), sizeof(want));
    assert_memory_equal(f, want, sizeof(want));
    assert_int_equal(lbw_agent_pull_decode(f + 5, 13, &q), 0);
    assert_int_equal(q.version, 1);
    assert_int_equal(q.after, p.after);
    assert_int_equal(q.max_bytes, p.max_bytes);
    assert_int_equal(lbw_agent_pull_decode(f + 5, 12, &q), -1);
    assert_int_equal(lbw_agent_pull_decode(f + 4, 14, &q), -1);
}

static void end_frame_layout_and_checks(void **state)
{
    uint8_t f[LBW_AGENT_FRAME_HEAD + LBW_AGENT_END_BYTES];
    struct lbw_agent_end e = {30, 10, 9, 1, 1000}, g;
    (void)state;
    assert_int_equal(lbw_agent_end_encode(&e, f), 5 + 29);
    assert_int_equal(f[3], 30);
    assert_int_equal(f[4], LBW_AGENT_END);
    assert_int_equal(lbw_agent_end_decode(f + 5, 29, &g), 0);
    assert_int_equal(g.newest, 30);
    assert_int_equal(g.oldest, 10);
    assert_int_equal(g.evicted, 9);
    assert_int_equal(g.more, 1);
    assert_int_equal(g.interval_ms, 1000);
    assert_int_equal(lbw_agent_end_decode(f + 5, 28, &g), -1);
    f[5 + 24] = 2; /* more is 0 or 1 */
    assert_int_equal(lbw_agent_end_decode(f + 5, 29, &g), -1);
    struct lbw_agent_end inverted = {10, 30, 0, 0, 1};
    lbw_agent_end_encode(&inverted, f);
    assert_int_equal(lbw_agent_end_decode(f + 5, 29, &g), -1);
    struct lbw_agent_end no_oldest = {10, 0, 0, 0, 1};
    lbw_agent_end_encode(&no_oldest, f);
    assert_int_equal(lbw_agent_end_decode(f + 5, 29, &g), -1);
    struct lbw_agent_end empty = {0, 0, 5, 0, 1};
    lbw_agent_end_encode(&empty, f);
    assert_int_equal(lbw_agent_end_decode(f + 5, 29, &g), 0);
}

static void error_frames(void **state)
{
    uint8_t f[LBW_AGENT_FRAME_HEAD + 1 + LBW_AGENT_ERROR_MAX];
    char text[LBW_AGENT_ERROR_MAX + 1], big[400];
    (void)state;
    size_t n = lbw_agent_error_encode("bad\nversion", f);
    assert_int_equal(n, 5 + 1 + 11);
    assert_int_equal(lbw_agent_error_decode(f + 5, n - 5, text), 0);
    assert_string_equal(text, "bad?version"); /* control characters never leave the agent */
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    n = lbw_agent_error_encode(big, f);
    assert_int_equal(n, 5 + 1 + LBW_AGENT_ERROR_MAX);
    assert_int_equal(lbw_agent_error_decode(f + 5, n - 5, text), 0);
    assert_int_equal(strlen(text), LBW_AGENT_ERROR_MAX);
    uint8_t wrong_len[] = {5, 'a', 'b'};
    assert_int_equal(lbw_agent_error_decode(wrong_len, sizeof(wrong_len), text), -1);
    uint8_t ctl[] = {2, 'a', 0x07};
    assert_int_equal(lbw_agent_error_decode(ctl, sizeof(ctl), text), -1);
    assert_int_equal(lbw_agent_error_decode(ctl, 0, text), -1);
}

/* A stream of three frames: PULL, a BATCH of 300 bytes, END. */
static size_t stream(uint8_t *out)
{
    struct lbw_agent_pull p = {1, 7, 0};
    struct lbw_agent_end e = {9, 9, 0, 0, 1000};
    size_t n = lbw_agent_pull_encode(&p, out);
    lbw_agent_frame_head(out + n, LBW_AGENT_BATCH, 300);
    for (size_t i = 0; i < 300; i++)
        out[n + 5 + i] = (uint8_t)i;
    n += 305;
    return n + lbw_agent_end_encode(&e, out + n);
}

/* Feeds s in pieces of the given sizes (cycled) and checks the three frames come out. */
static void decode_in_pieces(const uint8_t *s, size_t len, size_t first, size_t rest)
{
    struct lbw_agent_decoder d;
    uint8_t types[4], type;
    size_t lens[4], nframes = 0, at = 0, body_len;
    const uint8_t *body;
    lbw_agent_decoder_init(&d, 1000);
    while (at < len) {
        size_t piece = at == 0 ? first : rest;
        if (piece > len - at)
            piece = len - at;
        assert_int_equal(lbw_agent_decoder_feed(&d, s + at, piece), 0);
        at += piece;
        int rc;
        while ((rc = lbw_agent_decoder_next(&d, &type, &body, &body_len)) == 1) {
            assert_true(nframes < 3);
            types[nframes] = type;
            lens[nframes++] = body_len;
            if (type == LBW_AGENT_BATCH)
                for (size_t i = 0; i < body_len; i++)
                    assert_int_equal(body[i], (uint8_t)i);
        }
        assert_int_equal(rc, 0);
    }
    assert_int_equal(nframes, 3);
    assert_int_equal(types[0], LBW_AGENT_PULL);
    assert_int_equal(lens[0], 13);
    assert_int_equal(types[1], LBW_AGENT_BATCH);
    assert_int_equal(lens[1], 300);
    assert_int_equal(types[2], LBW_AGENT_END);
    assert_int_equal(lens[2], 29);
    assert_int_equal(lbw_agent_decoder_pending(&d), 0);
    lbw_agent_decoder_free(&d);
}

static void decoder_any_split(void **state)
{
    uint8_t s[512];
    (void)state;
    size_t len = stream(s);
    for (size_t first = 1; first <= len; first++)
        decode_in_pieces(s, len, first, len);
    decode_in_pieces(s, len, 1, 1);
    decode_in_pieces(s, len, 3, 7);
}

static void decoder_truncated_waits(void **state)
{
    uint8_t s[512], type;
    const uint8_t *body;
    size_t blen;
    struct lbw_agent_decoder d;
    (void)state;
    size_t len = stream(s);
    for (size_t cut = 0; cut < 18; cut++) { /* inside the first frame */
        lbw_agent_decoder_init(&d, 1000);
        assert_int_equal(lbw_agent_decoder_feed(&d, s, cut), 0);
        assert_int_equal(lbw_agent_decoder_next(&d, &type, &body, &blen), 0);
        assert_int_equal(lbw_agent_decoder_pending(&d), cut);
        lbw_agent_decoder_free(&d);
    }
    lbw_agent_decoder_init(&d, 1000);
    assert_int_equal(lbw_agent_decoder_feed(&d, s, len - 1), 0);
    assert_int_equal(lbw_agent_decoder_next(&d, &type, &body, &blen), 1);
    assert_int_equal(lbw_agent_decoder_next(&d, &type, &body, &blen), 1);
    assert_int_equal(lbw_agent_decoder_next(&d, &type, &body, &blen), 0); /* END lacks a byte */
    assert_int_equal(lbw_agent_decoder_pending(&d), 33);
    lbw_agent_decoder_free(&d);
}

static void decoder_refuses_bad_lengths(void **state)
{
    struct lbw_agent_decoder d;
    uint8_t type;
    const uint8_t *body;
    size_t blen;
    uint8_t zero[] = {0, 0, 0, 0, 1, 2, 3};
    uint8_t big[] = {0, 0, 0x03, 0xe9, LBW_AGENT_BATCH}; /* 1001 > 1000 */
    uint8_t edge[5 + 999];
    (void)state;
    lbw_agent_decoder_init(&d, 1000);
    assert_int_equal(lbw_agent_decoder_feed(&d, zero, sizeof(zero)), 0);
    assert_int_equal(lbw_agent_decoder_next(&d, &type, &body, &blen), -1);
    lbw_agent_decoder_free(&d);

    lbw_agent_decoder_init(&d, 1000);
    assert_int_equal(lbw_agent_decoder_feed(&d, big, 4), 0); /* the length alone is enough */
    assert_int_equal(lbw_agent_decoder_next(&d, &type, &body, &blen), -1);
    lbw_agent_decoder_free(&d);

    lbw_agent_decoder_init(&d, 1000); /* exactly the limit is fine */
    lbw_agent_frame_head(edge, LBW_AGENT_BATCH, 999);
    memset(edge + 5, 0x5a, 999);
    assert_int_equal(lbw_agent_decoder_feed(&d, edge, sizeof(edge)), 0);
    assert_int_equal(lbw_agent_decoder_next(&d, &type, &body, &blen), 1);
    assert_int_equal(blen, 999);
    lbw_agent_decoder_free(&d);

    /* the limit cannot be raised above the protocol's */
    lbw_agent_decoder_init(&d, (size_t)-1);
    assert_int_equal(d.max_frame, LBW_AGENT_FRAME_MAX);
    lbw_agent_decoder_free(&d);
}

static void decoder_will_not_hoard(void **state)
{
    struct lbw_agent_decoder d;
    uint8_t chunk[600];
    (void)state;
    lbw_agent_decoder_init(&d, 1000);
    lbw_agent_frame_head(chunk, LBW_AGENT_BATCH, 999); /* one frame, never taken */
    memset(chunk + 5, 1, sizeof(chunk) - 5);
    assert_int_equal(lbw_agent_decoder_feed(&d, chunk, sizeof(chunk)), 0);
    assert_int_equal(lbw_agent_decoder_feed(&d, chunk, sizeof(chunk)), 0);
    /* 1200 bytes wait, more than a whole frame: the caller is not taking frames */
    assert_int_equal(lbw_agent_decoder_feed(&d, chunk, sizeof(chunk)), -1);
    lbw_agent_decoder_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pull_frame_layout),
        cmocka_unit_test(end_frame_layout_and_checks),
        cmocka_unit_test(error_frames),
        cmocka_unit_test(decoder_any_split),
        cmocka_unit_test(decoder_truncated_waits),
        cmocka_unit_test(decoder_refuses_bad_lengths),
        cmocka_unit_test(decoder_will_not_hoard),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
