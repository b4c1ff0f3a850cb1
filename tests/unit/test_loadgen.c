/* test_loadgen.c - the bench load generator (node/loadgen.h) on a real libuv loop with a
 * recording sink: keys, per-series increasing timestamps, activation, pacing by rate, and
 * pausing while the cluster's backlog or replication lag is at its limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "node/loadgen.h"

#define SERIES 50

struct sink {
    uint64_t n;
    int64_t last_ts[SERIES];
    size_t backlog;
    uint64_t lag;
    int bad;
};

/* Checks every sample: a key of one of our series, its timestamp after the series' last. */
static void record(void *arg, const char *key, int64_t ts, double value)
{
    struct sink *s = arg;
    unsigned i;
    char rest[64];
    if (sscanf(key, "lbwatch_synthetic{series=\"%u\",%63s", &i, rest) != 2 || i >= SERIES ||
        strcmp(rest, "target=\"bench\",vantage=\"n1\"}") != 0 || ts <= s->last_ts[i] ||
        value < 0 || value > 63)
        s->bad++;
    else
        s->last_ts[i] = ts;
    s->n++;
}

static size_t backlog(void *arg) { return ((struct sink *)arg)->backlog; }
static uint64_t lag(void *arg) { return ((struct sink *)arg)->lag; }

static void stop_loop(uv_timer_t *t) { uv_stop(t->loop); }

/* Runs the loop for ms milliseconds. */
static void run_for(uv_loop_t *loop, uint64_t ms)
{
    uv_timer_t t;
    uv_timer_init(loop, &t);
    uv_timer_start(&t, stop_loop, ms, 0);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

static struct lbw_loadgen *make(uv_loop_t *loop, struct sink *s, uint64_t rate)
{
    struct lbw_loadgen *g = NULL;
    char err[128] = "";
    struct lbw_loadgen_config c = {.loop = loop, .vantage = "n1", .series = SERIES,
                                   .samples_per_second = rate, .max_backlog = 1000,
                                   .max_lag = 4, .sink = record, .sink_arg = s,
                                   .backlog = backlog, .lag = lag, .backlog_arg = s};
    if (lbw_loadgen_new(&g, &c, err, sizeof(err)) != 0)
        fail_msg("loadgen: %s", err);
    return g;
}

static void close_gen(uv_loop_t *loop, struct lbw_loadgen *g)
{
    lbw_loadgen_close(g);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

static void emits_only_while_active(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct sink s = {0};
    struct lbw_loadgen_stats st;
    uv_loop_init(&loop);
    struct lbw_loadgen *g = make(&loop, &s, 0);
    run_for(&loop, 20);
    assert_int_equal(s.n, 0);

    lbw_loadgen_set_active(g, 1);
    run_for(&loop, 30);
    assert_true(s.n >= LBW_LOADGEN_TICK_MAX); /* as fast as allowed: whole ticks */
    assert_int_equal(s.bad, 0);
    lbw_loadgen_stats(g, &st);
    assert_true(st.active);
    assert_int_equal(st.samples, s.n);

    lbw_loadgen_set_active(g, 0);
    uint64_t n = s.n;
    run_for(&loop, 20);
    assert_int_equal(s.n, n);
    lbw_loadgen_stats(g, &st);
    assert_false(st.active);

    lbw_loadgen_set_active(g, 1); /* timestamps keep increasing across pauses */
    run_for(&loop, 10);
    assert_true(s.n > n);
    assert_int_equal(s.bad, 0);
    close_gen(&loop, g);
}

static void waits_for_the_cluster(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct sink s = {.backlog = 1000};
    struct lbw_loadgen_stats st;
    uv_loop_init(&loop);
    struct lbw_loadgen *g = make(&loop, &s, 0);
    lbw_loadgen_set_active(g, 1);
    run_for(&loop, 20);
    assert_int_equal(s.n, 0); /* backlog at its limit */
    s.backlog = 999;
    s.lag = 4;
    run_for(&loop, 20);
    assert_int_equal(s.n, 0); /* a follower too far behind */
    lbw_loadgen_stats(g, &st);
    assert_true(st.backlog_waits >= 10);
    s.lag = 3;
    run_for(&loop, 20);
    assert_true(s.n > 0);
    assert_int_equal(s.bad, 0);
    close_gen(&loop, g);
}

static void keeps_a_rate(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct sink s = {0};
    uv_loop_init(&loop);
    struct lbw_loadgen *g = make(&loop, &s, 10000);
    lbw_loadgen_set_active(g, 1);
    run_for(&loop, 300);
    /* 3,000 due; the loop's timers are coarse under sanitizers: a wide margin */
    assert_true(s.n >= 1500 && s.n <= 3100);
    assert_int_equal(s.bad, 0);
    close_gen(&loop, g);
}

static void refuses_bad_config(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct sink s = {0};
    struct lbw_loadgen *g = (struct lbw_loadgen *)1;
    char err[128] = "";
    uv_loop_init(&loop);
    struct lbw_loadgen_config c = {.loop = &loop, .vantage = "n1", .series = 0, .sink = record,
                                   .sink_arg = &s, .backlog = backlog, .lag = lag,
                                   .backlog_arg = &s};
    assert_int_equal(lbw_loadgen_new(&g, &c, err, sizeof(err)), -1);
    assert_null(g);
    assert_true(err[0] != '\0');
    c.series = 3;
    c.vantage = "bad\"name";
    assert_int_equal(lbw_loadgen_new(&g, &c, err, sizeof(err)), 0); /* escaped in the key */
    lbw_loadgen_close(g);
    lbw_loadgen_close(NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(emits_only_while_active),
        cmocka_unit_test(waits_for_the_cluster),
        cmocka_unit_test(keeps_a_rate),
        cmocka_unit_test(refuses_bad_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
