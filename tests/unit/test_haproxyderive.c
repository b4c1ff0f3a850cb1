/* test_haproxyderive.c - the gauges derived from HAProxy's statistics: the connection limit's
 * use from `show info`; a backend's 5xx ratio from the increase of its counters between
 * scrapes (exact values, responses accumulating until there are enough, a counter reset, a
 * span that grew too old, a TCP backend without response columns); a frontend's denied
 * request rate; proxies forgotten when they leave; the memory's bound. Statistics are parsed
 * from `show stat` CSV written here, through the real parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probes/haproxyderive.h"
#include "tests/support/samplecap.h"

#define HEAD "# pxname,svname,type,dreq,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other\n"
#define RATIO "lbwatch_haproxy_backend_http_5xx_ratio{proxy=\"be\"}"
#define DENIED "lbwatch_haproxy_frontend_requests_denied_rate{proxy=\"fe\"}"

static struct samplecap cap;
static struct lbw_haproxy_memory *mem;

static int setup(void **state)
{
    (void)state;
    sc_init(&cap);
    mem = calloc(1, sizeof(*mem));
    return mem ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    sc_free(&cap);
    free(mem);
    return 0;
}

/* Derives from csv (after HEAD) scraped at ts; returns the samples emitted. */
static size_t scrape(int64_t ts, const char *csv)
{
    char text[65536], err[256];
    struct lbw_haproxy_stats st;
    snprintf(text, sizeof(text), "%s%s", HEAD, csv);
    if (lbw_haproxy_stat_parse(text, strlen(text), &st, err, sizeof(err)) != 0)
        fail_msg("csv: %s", err);
    sc_reset(&cap);
    struct lbw_emitter e = sc_emitter(&cap);
    e.ts_ms = ts;
    assert_int_equal(lbw_haproxy_derive(mem, &st, NULL, &e), 0);
    lbw_haproxy_stats_free(&st);
    return cap.n;
}

/* A backend "be" with 2xx and 5xx responses, a frontend "fe" with dreq denied, a server. */
static size_t scrape_be_fe(int64_t ts, int ok, int errors, int denied)
{
    char csv[512];
    snprintf(csv, sizeof(csv),
             "fe,FRONTEND,0,%d,0,%d,0,0,%d,0\n"
             "be,s1,2,,0,%d,0,0,%d,0\n"
             "be,BACKEND,1,0,0,%d,0,0,%d,0\n",
             denied, ok, errors, ok, errors, ok, errors);
    return scrape(ts, csv);
}

static void connections_used_ratio(void **state)
{
    (void)state;
    struct lbw_haproxy_info in;
    struct lbw_haproxy_stats none = {0};
    char err[128];
    struct lbw_emitter e = sc_emitter(&cap);
    static const char info[] = "Name: HAProxy\nMaxconn: 1000\nCurrConns: 250\n";
    assert_int_equal(lbw_haproxy_info_parse(info, strlen(info), &in, err, sizeof(err)), 0);
    assert_int_equal(lbw_haproxy_derive(mem, &none, &in, &e), 0);
    assert_float_equal(sc_val(&cap, "lbwatch_haproxy_connections_used_ratio"), 0.25, 1e-15);

    static const char unlimited[] = "Name: HAProxy\nMaxconn: 0\nCurrConns: 250\n";
    assert_int_equal(lbw_haproxy_info_parse(unlimited, strlen(unlimited), &in, err,
                                            sizeof(err)), 0);
    sc_reset(&cap);
    lbw_haproxy_derive(mem, &none, &in, &e);
    assert_int_equal(cap.n, 0);
    lbw_haproxy_derive(mem, &none, NULL, &e);  /* the stats page: no show info */
    assert_int_equal(cap.n, 0);
}

static void backend_5xx_ratio(void **state)
{
    (void)state;
    int64_t t = 1700000000000;
    assert_int_equal(scrape_be_fe(t, 100, 0, 0), 0);        /* nothing to compare with yet */
    scrape_be_fe(t += 5000, 190, 10, 0);                    /* +100 responses, 10 of them 5xx */
    assert_float_equal(sc_val(&cap, RATIO), 0.1, 1e-15);
    /* +10 responses are too few: none, and they keep accumulating from the same start */
    scrape_be_fe(t += 5000, 200, 10, 0);
    assert_true(isnan(sc_val(&cap, RATIO)));
    scrape_be_fe(t += 5000, 205, 25, 0);                    /* +30 since the last ratio, 15 5xx */
    assert_float_equal(sc_val(&cap, RATIO), 0.5, 1e-15);
    scrape_be_fe(t += 5000, 225, 25, 0);                    /* +20 exactly, no errors */
    assert_float_equal(sc_val(&cap, RATIO), 0, 0);
    /* HAProxy restarted: counters below the remembered ones start it again */
    scrape_be_fe(t += 5000, 50, 0, 0);
    assert_true(isnan(sc_val(&cap, RATIO)));
    scrape_be_fe(t += 5000, 90, 10, 0);
    assert_float_equal(sc_val(&cap, RATIO), 0.2, 1e-15);
    /* only 5xx went back (clear counters on a busy proxy): a reset too */
    scrape_be_fe(t += 5000, 190, 5, 0);
    assert_true(isnan(sc_val(&cap, RATIO)));
    /* a trickle: 5 responses, then 25 more eleven minutes later; the span is too old by then,
     * so it starts again, and the next ratio covers only what came after */
    scrape_be_fe(t += 5000, 195, 5, 0);
    scrape_be_fe(t += 11 * 60000, 215, 10, 0);
    assert_true(isnan(sc_val(&cap, RATIO)));
    scrape_be_fe(t += 5000, 235, 10, 0);
    assert_float_equal(sc_val(&cap, RATIO), 0, 0);
    /* a scrape whose time is not after the remembered one starts it again */
    scrape_be_fe(t, 335, 10, 0);
    assert_true(isnan(sc_val(&cap, RATIO)));
}

static void frontend_denied_rate(void **state)
{
    (void)state;
    int64_t t = 1700000000000;
    scrape_be_fe(t, 0, 0, 100);
    assert_true(isnan(sc_val(&cap, DENIED)));
    scrape_be_fe(t += 5000, 0, 0, 150);
    assert_float_equal(sc_val(&cap, DENIED), 10, 1e-12);
    scrape_be_fe(t += 2000, 0, 0, 150);
    assert_float_equal(sc_val(&cap, DENIED), 0, 0);
    scrape_be_fe(t += 2000, 0, 0, 3);                         /* reset */
    assert_true(isnan(sc_val(&cap, DENIED)));
    scrape_be_fe(t += 500, 0, 0, 4);
    assert_float_equal(sc_val(&cap, DENIED), 2, 1e-12);
    /* servers have no derived gauges; a frontend and a backend may share a name */
    scrape(t += 1000, "x,FRONTEND,0,4,0,0,0,0,0,0\nx,BACKEND,1,0,0,0,0,0,0,0\n"
                      "x,s1,2,,0,0,0,0,0,0\n");
    assert_int_equal(cap.n, 0);
    scrape(t += 1000, "x,FRONTEND,0,6,0,0,0,0,0,0\nx,BACKEND,1,0,0,40,0,0,10,0\n"
                      "x,s1,2,,0,40,0,0,10,0\n");
    assert_int_equal(cap.n, 2);
    assert_float_equal(sc_val(&cap, "lbwatch_haproxy_frontend_requests_denied_rate{proxy=\"x\"}"),
                       2, 1e-12);
    assert_float_equal(sc_val(&cap, "lbwatch_haproxy_backend_http_5xx_ratio{proxy=\"x\"}"), 0.2,
                       1e-15);
}

static void proxies_come_and_go(void **state)
{
    (void)state;
    int64_t t = 1700000000000;
    scrape_be_fe(t, 100, 0, 0);
    scrape_be_fe(t += 5000, 200, 0, 0);
    assert_float_equal(sc_val(&cap, RATIO), 0, 0);
    /* be is gone from one scrape (a reload without it): forgotten, so it starts again */
    scrape(t += 5000, "other,BACKEND,1,0,0,1,0,0,0,0\n");
    assert_int_equal(cap.n, 0);
    scrape_be_fe(t += 5000, 300, 0, 0);
    assert_true(isnan(sc_val(&cap, RATIO)));
    size_t used = 0;
    for (size_t i = 0; i < LBW_HAPROXY_MEMORY_PROXIES; i++)
        used += mem->p[i].used;
    assert_int_equal(used, 2);                                /* fe and be; "other" forgotten */
    /* a TCP-mode backend has empty response columns: skipped, nothing remembered */
    scrape(t += 5000, "tcp,BACKEND,1,0,,,,,,\n");
    scrape(t += 5000, "tcp,BACKEND,1,0,,,,,,\n");
    assert_int_equal(cap.n, 0);
    for (size_t i = 0; i < LBW_HAPROXY_MEMORY_PROXIES; i++)
        assert_false(mem->p[i].used);
}

/* More backends than the memory holds: the first LBW_HAPROXY_MEMORY_PROXIES get ratios. */
static void memory_is_bounded(void **state)
{
    (void)state;
    static char csv[LBW_HAPROXY_MEMORY_PROXIES * 2 * 48];
    for (int round = 0; round < 2; round++) {
        size_t used = 0;
        for (int i = 0; i < LBW_HAPROXY_MEMORY_PROXIES + 88; i++)
            used += (size_t)snprintf(csv + used, sizeof(csv) - used,
                                     "b%d,BACKEND,1,0,0,%d,0,0,%d,0\n", i, 100 + 30 * round,
                                     round * 10);
        assert_true(used < sizeof(csv));
        scrape(1700000000000 + round * 5000, csv);
    }
    assert_int_equal(cap.n, LBW_HAPROXY_MEMORY_PROXIES);
    assert_float_equal(sc_val(&cap, "lbwatch_haproxy_backend_http_5xx_ratio{proxy=\"b0\"}"),
                       0.25, 1e-15);
    char last[128];
    snprintf(last, sizeof(last), "lbwatch_haproxy_backend_http_5xx_ratio{proxy=\"b%d\"}",
             LBW_HAPROXY_MEMORY_PROXIES);
    assert_true(isnan(sc_val(&cap, last)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(connections_used_ratio, setup, teardown),
        cmocka_unit_test_setup_teardown(backend_5xx_ratio, setup, teardown),
        cmocka_unit_test_setup_teardown(frontend_denied_rate, setup, teardown),
        cmocka_unit_test_setup_teardown(proxies_come_and_go, setup, teardown),
        cmocka_unit_test_setup_teardown(memory_is_bounded, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
