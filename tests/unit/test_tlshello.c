/* test_tlshello.c - ClientHello recognition: versions from legacy_version and
 * supported_versions (GREASE ignored), hellos cut by the capture, bogus lengths, things that
 * are not a ClientHello, and every prefix of a valid hello read from an exact-size copy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "probes/tlshello.h"
#include "tests/support/pktfx.h"

#define BIT(v) (1u << (v))

static int parse(const uint8_t *b, size_t len, struct lbw_tls_hello *h)
{
    uint8_t *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, b, len);
    int r = lbw_tls_hello_parse(copy, len, h);
    free(copy);
    return r;
}

static void legacy_only(void **state)
{
    (void)state;
    uint8_t rec[512];
    struct lbw_tls_hello h;
    size_t n = fx_client_hello(rec, 0x0303, NULL, 0);
    assert_int_equal(parse(rec, n, &h), 1);
    assert_int_equal(h.highest, LBW_TLSV_12);
    assert_int_equal(h.offered, BIT(LBW_TLSV_12));
    assert_int_equal(h.supported_versions, 0);
    n = fx_client_hello(rec, 0x0301, NULL, 0);
    assert_int_equal(parse(rec, n, &h), 1);
    assert_int_equal(h.highest, LBW_TLSV_10);
}

static void supported_versions(void **state)
{
    (void)state;
    uint8_t rec[512];
    struct lbw_tls_hello h;
    static const uint16_t v13_12[] = {0x7a7a, 0x0304, 0x0303};
    size_t n = fx_client_hello(rec, 0x0303, v13_12, 3);
    assert_int_equal(parse(rec, n, &h), 1);
    assert_int_equal(h.highest, LBW_TLSV_13);
    assert_int_equal(h.offered, BIT(LBW_TLSV_13) | BIT(LBW_TLSV_12));
    assert_int_equal(h.supported_versions, 1);

    static const uint16_t only13[] = {0x0304};
    n = fx_client_hello(rec, 0x0303, only13, 1);
    assert_int_equal(parse(rec, n, &h), 1);
    assert_int_equal(h.offered, BIT(LBW_TLSV_13));   /* legacy 1.2 is not an offer then */

    static const uint16_t draft[] = {0x7f1c, 0x0302};
    n = fx_client_hello(rec, 0x0302, draft, 2);
    assert_int_equal(parse(rec, n, &h), 1);
    assert_int_equal(h.highest, LBW_TLSV_11);
    assert_int_equal(h.offered, BIT(LBW_TLSV_OTHER) | BIT(LBW_TLSV_11));

    static const uint16_t grease[] = {0x0a0a};
    n = fx_client_hello(rec, 0x0303, grease, 1);
    assert_int_equal(parse(rec, n, &h), 1);
    assert_int_equal(h.highest, LBW_TLSV_OTHER);
    assert_int_equal(h.offered, 0);
}

/* A hello cut by the snapshot length before supported_versions falls back to legacy_version;
 * every prefix parses as not-a-hello (too short) or a hello, never as malformed. */
static void cut_by_capture(void **state)
{
    (void)state;
    uint8_t rec[512];
    struct lbw_tls_hello h;
    static const uint16_t v13[] = {0x0304, 0x0303};
    size_t n = fx_client_hello(rec, 0x0303, v13, 2);
    for (size_t cut = 0; cut < n; cut++) {
        int r = parse(rec, cut, &h);
        if (cut < 11) {
            assert_int_equal(r, 0);
            continue;
        }
        assert_int_equal(r, 1);
        assert_int_equal(h.highest, LBW_TLSV_12);   /* supported_versions comes last */
    }
    assert_int_equal(parse(rec, n, &h), 1);
    assert_int_equal(h.highest, LBW_TLSV_13);
}

/* A hello whose first record ends before the extensions (the rest in a second record). */
static void split_over_records(void **state)
{
    (void)state;
    uint8_t rec[512];
    struct lbw_tls_hello h;
    static const uint16_t v13[] = {0x0304};
    size_t n = fx_client_hello(rec, 0x0303, v13, 1);
    rec[3] = 0;
    rec[4] = 40;            /* record holds 40 of the handshake's bytes */
    assert_int_equal(parse(rec, n, &h), 1);
    assert_int_equal(h.highest, LBW_TLSV_12);
}

static void put16(uint8_t *p, size_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void bogus_lengths(void **state)
{
    (void)state;
    uint8_t good[512], rec[512];
    struct lbw_tls_hello h;
    static const uint16_t v13[] = {0x0304, 0x0303};
    size_t n = fx_client_hello(good, 0x0303, v13, 2);
    /* offsets inside the fixture: body at 9; sid length at 9+34; suites length at 9+35 */
    const size_t body = 9, sid = body + 34, suites = sid + 1, comp = suites + 6, ext = comp + 2;

    memcpy(rec, good, n);
    put16(rec + 3, 18433);                       /* record longer than TLS allows */
    assert_int_equal(parse(rec, n, &h), -1);
    memcpy(rec, good, n);
    put16(rec + 3, 5);                           /* record too short for a hello header */
    assert_int_equal(parse(rec, n, &h), -1);
    memcpy(rec, good, n);
    rec[6] = 0;
    rec[7] = 0;
    rec[8] = 30;                                 /* handshake shorter than any hello */
    assert_int_equal(parse(rec, n, &h), -1);
    memcpy(rec, good, n);
    rec[sid] = 33;                               /* session id longer than 32 */
    assert_int_equal(parse(rec, n, &h), -1);
    memcpy(rec, good, n);
    put16(rec + suites, 0xfff0);                 /* suites past the handshake's end */
    assert_int_equal(parse(rec, n, &h), -1);
    memcpy(rec, good, n);
    put16(rec + suites, 0);                      /* no cipher suite at all */
    assert_int_equal(parse(rec, n, &h), -1);
    memcpy(rec, good, n);
    rec[comp] = 0;                               /* no compression method */
    assert_int_equal(parse(rec, n, &h), -1);
    memcpy(rec, good, n);
    put16(rec + ext, 0x4000);                    /* extension block past the handshake */
    assert_int_equal(parse(rec, n, &h), -1);
    memcpy(rec, good, n);
    put16(rec + ext + 4, 0x100);                 /* server_name past the extension block */
    assert_int_equal(parse(rec, n, &h), -1);
    memcpy(rec, good, n);
    rec[n - 5] = 5;                              /* supported_versions list length odd */
    assert_int_equal(parse(rec, n, &h), -1);
    memcpy(rec, good, n);
    rec[n - 5] = 2;                              /* list length disagrees with the extension */
    assert_int_equal(parse(rec, n, &h), -1);
    memcpy(rec, good, n);
    rec[8] = (uint8_t)(rec[8] + 1);              /* a stray byte after the last extension */
    rec[n] = 0;
    put16(rec + 3, n - 5 + 1);
    assert_int_equal(parse(rec, n + 1, &h), -1);
    /* the unchanged fixture still parses */
    assert_int_equal(parse(good, n, &h), 1);
}

static void not_a_hello(void **state)
{
    (void)state;
    uint8_t rec[512];
    struct lbw_tls_hello h;
    size_t n = fx_client_hello(rec, 0x0303, NULL, 0);
    rec[0] = 23;                                 /* application data */
    assert_int_equal(parse(rec, n, &h), 0);
    rec[0] = 22;
    rec[5] = 2;                                  /* ServerHello */
    assert_int_equal(parse(rec, n, &h), 0);
    rec[5] = 1;
    rec[1] = 2;                                  /* not version 3.x */
    assert_int_equal(parse(rec, n, &h), 0);
    static const uint8_t http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(parse(http, sizeof(http) - 1, &h), 0);
    assert_int_equal(lbw_tls_hello_parse(NULL, 0, &h), 0);
}

static void names(void **state)
{
    (void)state;
    assert_string_equal(lbw_tls_ver_name(LBW_TLSV_SSL3), "SSL 3.0");
    assert_string_equal(lbw_tls_ver_name(LBW_TLSV_10), "TLS 1.0");
    assert_string_equal(lbw_tls_ver_name(LBW_TLSV_13), "TLS 1.3");
    assert_string_equal(lbw_tls_ver_name(LBW_TLSV_OTHER), "other");
    assert_int_equal(lbw_tls_ver_of(0x0303), LBW_TLSV_12);
    assert_int_equal(lbw_tls_ver_of(0x0305), LBW_TLSV_OTHER);
    assert_int_equal(lbw_tls_ver_of(0x0200), LBW_TLSV_OTHER);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(legacy_only),        cmocka_unit_test(supported_versions),
        cmocka_unit_test(cut_by_capture),     cmocka_unit_test(split_over_records),
        cmocka_unit_test(bogus_lengths),      cmocka_unit_test(not_a_hello),
        cmocka_unit_test(names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
