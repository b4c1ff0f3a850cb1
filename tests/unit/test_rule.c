/* test_rule.c - alert rule evaluation against a real store (node/store in a temp dir) read
 * through node/rulesource: every threshold operator and aggregation, rate over a counter
 * reset, seconds_until, change (absolute and relative), absent (a series that stopped, no
 * series at all), anomaly (a step fires, noise and a thin baseline do not), all/any joined on
 * shared labels, min_vantages, per_vantage, instance labels and fingerprints, inactive instances, failed
 * evaluations, the source's newest-samples cap, and lbw_rule_check's refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerting/rule.h"
#include "alerting/template.h"
#include "node/rulesource.h"
#include "node/store.h"
#include "tests/support/testutil.h"

#define NOW 1700000000000LL
#define SEC 1000LL
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)

struct fx {
    char dir[256];
    struct lbw_store *s;
    struct lbw_rulesource rs;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct lbw_store_options o = {0};
    char err[256] = "";
    if (!f || tu_tmpdir("lbw-rule", f->dir, sizeof(f->dir)) < 0)
        return -1;
    o.dir = f->dir;
    o.no_sync = 1;
    if (lbw_store_open(&f->s, &o, err, sizeof(err)) < 0) {
        print_error("open: %s\n", err);
        return -1;
    }
    *state = f;
    return lbw_rulesource_init(&f->rs, f->s);
}

static int teardown(void **state)
{
    struct fx *f = *state;
    lbw_rulesource_fini(&f->rs);
    lbw_store_close(f->s);
    tu_rmrf(f->dir);
    free(f);
    return 0;
}

/* ---- filling the store ----------------------------------------------------------------------- */

/* metric{probe="tls",target=...,vantage=...,extra} */
static const char *key_of(char *buf, const char *metric, const char *target, const char *vantage,
                          const char *ename, const char *evalue)
{
    struct lbw_label l[] = {{"probe", "tls"}, {"target", target}, {"vantage", vantage},
                            {ename ? ename : "x", evalue}};
    assert_true(lbw_key_build(buf, LBW_KEY_MAX, metric, l, ename ? 4 : 3) > 0);
    return buf;
}

static void put(struct fx *f, const char *key, int64_t ts, double v)
{
    assert_int_equal(lbw_store_append(f->s, key, strlen(key), ts, v), 0);
}

/* n samples of v, every step ms, the last at last_ts. */
static void fill(struct fx *f, const char *key, int64_t last_ts, int64_t step, size_t n, double v)
{
    for (size_t i = 0; i < n; i++)
        put(f, key, last_ts - (int64_t)(n - 1 - i) * step, v);
}

static void commit(struct fx *f)
{
    assert_int_equal(lbw_store_commit(f->s), 0);
}

/* One sample of v at NOW - 5 s for metric{target, vantage}. */
static void one(struct fx *f, const char *metric, const char *target, const char *vantage, double v)
{
    char k[LBW_KEY_MAX];
    put(f, key_of(k, metric, target, vantage, NULL, NULL), NOW - 5 * SEC, v);
}

/* ---- rules and results ----------------------------------------------------------------------- */

static struct lbw_condition leaf(enum lbw_cond_kind kind, const char *metric, int64_t window)
{
    struct lbw_condition c = {.kind = kind, .metric = metric, .window_ms = window};
    c.matchers[0] = (struct lbw_matcher){"probe", "tls", 0};
    c.nmatchers = 1;
    return c;
}

static struct lbw_condition thr(const char *metric, enum lbw_agg agg, int64_t window,
                                enum lbw_cmp cmp, double value)
{
    struct lbw_condition c = leaf(LBW_COND_THRESHOLD, metric, window);
    c.agg = agg;
    c.cmp = cmp;
    c.value = value;
    return c;
}

static struct lbw_rule rule_of(const struct lbw_condition *c, unsigned min_vantages)
{
    struct lbw_rule r = {.name = "TestAlert", .cond = *c, .severity = LBW_SEV_WARNING,
                         .min_vantages = min_vantages};
    return r;
}

#define MAXI 32
struct got {
    struct lbw_instance v[MAXI];
    size_t n;
};

static void collect(void *arg, const struct lbw_instance *inst)
{
    struct got *g = arg;
    assert_true(g->n < MAXI);
    g->v[g->n++] = *inst;
}

/* Checks r (it must pass) and evaluates it at now; returns what lbw_rule_eval returned. */
static long eval_at(struct fx *f, const struct lbw_rule *r, int64_t now, struct got *g)
{
    char why[256] = "";
    if (lbw_rule_check(r, why, sizeof(why)) != 0)
        fail_msg("rule refused: %s", why);
    g->n = 0;
    long n = lbw_rule_eval(r, &f->rs.src, now, collect, g);
    if (n >= 0)
        assert_int_equal(n, g->n);
    return n;
}

static long eval(struct fx *f, const struct lbw_rule *r, struct got *g)
{
    return eval_at(f, r, NOW, g);
}

/* The instance whose label name is value; fails if there is none. */
static const struct lbw_instance *find(const struct got *g, const char *name, const char *value)
{
    for (size_t i = 0; i < g->n; i++) {
        struct lbw_key_parsed k;
        assert_int_equal(lbw_key_parse(g->v[i].labels, strlen(g->v[i].labels), &k), 0);
        const char *v = lbw_key_label(&k, name);
        if (v && strcmp(v, value) == 0)
            return &g->v[i];
    }
    fail_msg("no instance with %s=\"%s\"", name, value);
    return NULL;
}

static int active(const struct got *g, const char *target)
{
    return find(g, "target", target)->active;
}

/* ---- threshold ------------------------------------------------------------------------------- */

static void threshold_every_operator(void **state)
{
    struct fx *f = *state;
    struct got g;
    one(f, "probe_success", "a", "n1", 0);
    one(f, "probe_success", "b", "n1", 1);
    commit(f);
    static const struct {
        enum lbw_cmp op;
        double value;
        int a, b;
    } cases[] = {
        {LBW_CMP_GT, 0.5, 0, 1}, {LBW_CMP_LT, 0.5, 1, 0}, {LBW_CMP_GE, 1, 0, 1},
        {LBW_CMP_LE, 0, 1, 0},   {LBW_CMP_EQ, 0, 1, 0},   {LBW_CMP_NE, 0, 0, 1},
        {LBW_CMP_GE, 0, 1, 1},   {LBW_CMP_GT, 1, 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct lbw_condition c = thr("probe_success", LBW_AGG_LAST, 5 * MIN, cases[i].op,
                                     cases[i].value);
        struct lbw_rule r = rule_of(&c, 1);
        assert_int_equal(eval(f, &r, &g), 2); /* inactive instances are reported too */
        if (active(&g, "a") != cases[i].a || active(&g, "b") != cases[i].b)
            fail_msg("case %zu: a %d b %d", i, active(&g, "a"), active(&g, "b"));
        assert_int_equal(find(&g, "target", "a")->value, 0);
        assert_int_equal(find(&g, "target", "b")->value, 1);
    }
}

static void threshold_every_aggregation(void **state)
{
    struct fx *f = *state;
    struct got g;
    char k[LBW_KEY_MAX];
    key_of(k, "lbwatch_tls_handshake_seconds", "www", "n1", NULL, NULL);
    put(f, k, NOW - 2 * MIN, 100);      /* before the window */
    put(f, k, NOW - MIN, 50);           /* on its open edge: (now - 1m, now] leaves it out */
    for (int i = 1; i <= 6; i++)
        put(f, k, NOW - MIN + i * 9 * SEC, i);
    put(f, k, NOW - 2 * SEC, NAN);      /* ignored */
    commit(f);

    static const struct {
        enum lbw_agg agg;
        double want;
    } cases[] = {
        {LBW_AGG_LAST, 6}, {LBW_AGG_AVG, 3.5}, {LBW_AGG_MIN, 1}, {LBW_AGG_MAX, 6},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct lbw_condition c = thr("lbwatch_tls_handshake_seconds", cases[i].agg, MIN,
                                     LBW_CMP_GE, cases[i].want);
        struct lbw_rule r = rule_of(&c, 1);
        assert_int_equal(eval(f, &r, &g), 1);
        if (g.v[0].value != cases[i].want || !g.v[0].active)
            fail_msg("agg %d: value %g active %d", cases[i].agg, g.v[0].value, g.v[0].active);
        c.value = cases[i].want + 0.01;
        r = rule_of(&c, 1);
        assert_int_equal(eval(f, &r, &g), 1);
        assert_false(g.v[0].active);
    }

    /* nothing in the window: no instance */
    struct lbw_condition c = thr("lbwatch_tls_handshake_seconds", LBW_AGG_LAST, MIN, LBW_CMP_GE, 0);
    struct lbw_rule r = rule_of(&c, 1);
    assert_int_equal(eval_at(f, &r, NOW + 2 * MIN, &g), 0);
}

static void rate_over_counter_reset(void **state)
{
    struct fx *f = *state;
    struct got g;
    char k[LBW_KEY_MAX];
    static const double v[] = {100, 110, 120, 5, 15, 25}; /* reset after 120 */
    key_of(k, "lbwatch_handshakes_total", "www", "n1", NULL, NULL);
    for (int i = 0; i < 6; i++)
        put(f, k, NOW - 55 * SEC + i * 10 * SEC, v[i]);
    key_of(k, "lbwatch_handshakes_total", "lonely", "n1", NULL, NULL);
    put(f, k, NOW - 5 * SEC, 7);        /* one sample has no rate */
    commit(f);

    /* increase 20 + 120 + 20 = 45 over 50 s of samples, extrapolated by 5 s at both ends to
     * the 60 s window: 54 per 60 s */
    struct lbw_condition c = thr("lbwatch_handshakes_total", LBW_AGG_RATE, MIN, LBW_CMP_GT, 0.8);
    struct lbw_rule r = rule_of(&c, 1);
    assert_int_equal(eval(f, &r, &g), 1);
    assert_true(fabs(g.v[0].value - 0.9) < 1e-12);
    assert_true(g.v[0].active);
    c.value = 0.95;
    r = rule_of(&c, 1);
    assert_int_equal(eval(f, &r, &g), 1);
    assert_false(g.v[0].active);
}

static void rate_extrapolation_stops_at_zero(void **state)
{
    struct fx *f = *state;
    struct got g;
    char k[LBW_KEY_MAX];
    /* a counter that started just after the window opened: 1, 3, 5, 7, 9 over 40 s of a 60 s
     * window; extrapolating 10 s back to the window's start would go below zero, so it stops
     * at the zero crossing, 40 s * 1 / 8 = 5 s before the first sample */
    key_of(k, "c_total", "www", "n1", NULL, NULL);
    for (int i = 0; i < 5; i++)
        put(f, k, NOW - 50 * SEC + i * 10 * SEC, 1 + 2 * i);
    commit(f);
    struct lbw_condition c = thr("c_total", LBW_AGG_RATE, MIN, LBW_CMP_GT, 0);
    struct lbw_rule r = rule_of(&c, 1);
    assert_int_equal(eval(f, &r, &g), 1);
    /* increase 8 over 40 s, extended by 5 s before and 10 s after (less than 1.1 sample
     * intervals: all of it), over 60 s */
    assert_true(fabs(g.v[0].value - 8.0 * 55 / 40 / 60) < 1e-12);
}

static void seconds_until_certificate_expiry(void **state)
{
    struct fx *f = *state;
    struct got g;
    char k[LBW_KEY_MAX];
    key_of(k, "probe_ssl_earliest_cert_expiry", "www", "n1", NULL, NULL);
    fill(f, k, NOW - 5 * SEC, 10 * SEC, 6, (double)(NOW + 5 * DAY) / 1000);
    commit(f);

    struct lbw_condition c = thr("probe_ssl_earliest_cert_expiry", LBW_AGG_LAST, 10 * MIN,
                                 LBW_CMP_LT, 14 * 86400);
    c.seconds_until = 1;
    struct lbw_rule r = rule_of(&c, 1);
    assert_int_equal(eval(f, &r, &g), 1);
    assert_true(g.v[0].active);
    assert_true(fabs(g.v[0].value - 5 * 86400) < 1e-6);

    char text[64];
    struct lbw_key_parsed kp;
    assert_int_equal(lbw_key_parse(g.v[0].labels, strlen(g.v[0].labels), &kp), 0);
    lbw_template_render("{{ $labels.target }} expires in {{ humanizeDuration $value }}", &kp,
                        g.v[0].value, text, sizeof(text));
    assert_string_equal(text, "www expires in 5d");

    c.value = 3 * 86400;
    r = rule_of(&c, 1);
    assert_int_equal(eval(f, &r, &g), 1);
    assert_false(g.v[0].active);
}

/* ---- change --------------------------------------------------------------------------------- */

static void change_absolute_and_relative(void **state)
{
    struct fx *f = *state;
    struct got g;
    char k[LBW_KEY_MAX];
    key_of(k, "lbwatch_tls_chain_length", "www", "n1", NULL, NULL);
    put(f, k, NOW - 100 * SEC, 80);     /* before the earlier window: not "then" */
    put(f, k, NOW - 90 * SEC, 100);     /* then: the last in (now-2m, now-1m] */
    put(f, k, NOW - 40 * SEC, 120);
    put(f, k, NOW - 30 * SEC, 150);     /* now: the last in (now-1m, now] */
    key_of(k, "lbwatch_tls_chain_length", "new", "n1", NULL, NULL);
    put(f, k, NOW - 30 * SEC, 1);       /* nothing to compare with: no instance */
    commit(f);

    static const struct {
        int relative;
        enum lbw_cmp op;
        double value;
        int active;
        double want;
    } cases[] = {
        {0, LBW_CMP_GT, 40, 1, 50},  {0, LBW_CMP_GT, 60, 0, 50},
        {1, LBW_CMP_GE, 0.5, 1, 0.5}, {1, LBW_CMP_GT, 0.6, 0, 0.5},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct lbw_condition c = leaf(LBW_COND_CHANGE, "lbwatch_tls_chain_length", MIN);
        c.cmp = cases[i].op;
        c.value = cases[i].value;
        c.relative = cases[i].relative;
        struct lbw_rule r = rule_of(&c, 1);
        assert_int_equal(eval(f, &r, &g), 1);
        assert_int_equal(g.v[0].active, cases[i].active);
        assert_true(fabs(g.v[0].value - cases[i].want) < 1e-12);
    }
}

/* ---- absent ---------------------------------------------------------------------------------- */

static void absent_series_that_stopped(void **state)
{
    struct fx *f = *state;
    struct got g;
    char k[LBW_KEY_MAX];
    fill(f, key_of(k, "probe_success", "stopped", "n1", NULL, NULL), NOW - 10 * MIN, 10 * SEC, 30, 1);
    fill(f, key_of(k, "probe_success", "alive", "n1", NULL, NULL), NOW - 5 * SEC, 10 * SEC, 30, 1);
    put(f, key_of(k, "probe_success", "long_gone", "n1", NULL, NULL), NOW - 2 * HOUR, 1);
    commit(f);

    struct lbw_condition c = leaf(LBW_COND_ABSENT, "probe_success", 5 * MIN);
    struct lbw_rule r = rule_of(&c, 1);
    assert_int_equal(eval(f, &r, &g), 2); /* long_gone is past the 1 h lookback */
    assert_true(active(&g, "stopped"));
    assert_true(fabs(find(&g, "target", "stopped")->value - 600) < 1e-9);
    assert_false(active(&g, "alive"));
    assert_true(fabs(find(&g, "target", "alive")->value - 5) < 1e-9);

    c.lookback_ms = 3 * HOUR;
    r = rule_of(&c, 1);
    assert_int_equal(eval(f, &r, &g), 3);
    assert_true(active(&g, "long_gone"));
}

static void absent_no_series_at_all(void **state)
{
    struct fx *f = *state;
    struct got g;
    struct lbw_condition c = leaf(LBW_COND_ABSENT, "lbwatch_never_seen", 5 * MIN);
    c.matchers[1] = (struct lbw_matcher){"target", "www", 0};
    c.matchers[2] = (struct lbw_matcher){"region", "eu", 1};   /* not an equality: left out */
    c.matchers[3] = (struct lbw_matcher){"zone", "", 0};       /* "missing": left out */
    c.nmatchers = 4;
    struct lbw_rule r = rule_of(&c, 2);
    assert_int_equal(eval(f, &r, &g), 1);
    assert_string_equal(g.v[0].labels, "ALERTS{alertname=\"TestAlert\",probe=\"tls\","
                                       "severity=\"warning\",target=\"www\"}");
    assert_true(g.v[0].active); /* no vantage has data: min_vantages cannot apply */
    assert_int_equal(g.v[0].vantages_seen, 0);
    assert_int_equal(g.v[0].value, 0);

    /* matchers that name the vantage make it the one vantage that sees the absence */
    c.matchers[2] = (struct lbw_matcher){"vantage", "n1", 0};
    c.nmatchers = 3;
    r = rule_of(&c, 1);
    assert_int_equal(eval(f, &r, &g), 1);
    assert_string_equal(g.v[0].labels, "ALERTS{alertname=\"TestAlert\",probe=\"tls\","
                                       "severity=\"warning\",target=\"www\"}");
    assert_true(g.v[0].active);
    assert_int_equal(g.v[0].vantages_seen, 1);
    assert_int_equal(g.v[0].vantages_true, 1);
    r = rule_of(&c, 2);
    assert_int_equal(eval(f, &r, &g), 1);
    assert_false(g.v[0].active);
}

/* ---- anomaly --------------------------------------------------------------------------------- */

/* A handshake time of 100 ms with +-10 ms of deterministic noise. */
static double noisy(int i)
{
    return 0.1 + ((i * 7) % 11 - 5) * 0.002;
}

/* Samples every 10 s over the hour before the last 5 minutes, then the last 5 minutes at
 * recent (noise when NAN). baseline_n limits the baseline to its newest samples. */
static void anomaly_series(struct fx *f, const char *target, int baseline_n, double recent)
{
    char k[LBW_KEY_MAX];
    key_of(k, "lbwatch_tls_handshake_seconds", target, "n1", NULL, NULL);
    for (int i = 360 - baseline_n; i < 360; i++)
        put(f, k, NOW - 5 * MIN - HOUR + 5 * SEC + i * 10 * SEC, noisy(i));
    for (int i = 0; i < 30; i++)
        put(f, k, NOW - 5 * MIN + 5 * SEC + i * 10 * SEC, isnan(recent) ? noisy(360 + i) : recent);
}

static void anomaly_step_noise_and_thin_baseline(void **state)
{
    struct fx *f = *state;
    struct got g;
    anomaly_series(f, "normal", 360, NAN);
    anomaly_series(f, "step", 360, 0.5);
    anomaly_series(f, "thin", 5, 0.5);
    commit(f);

    struct lbw_condition c = leaf(LBW_COND_ANOMALY, "lbwatch_tls_handshake_seconds", 5 * MIN);
    c.baseline_ms = HOUR;
    c.k = 4;
    c.min_samples = 10;
    struct lbw_rule r = rule_of(&c, 1);
    assert_int_equal(eval(f, &r, &g), 3);
    assert_false(active(&g, "normal"));
    assert_true(fabs(find(&g, "target", "normal")->value - 0.1) < 0.002);
    assert_true(active(&g, "step"));
    assert_true(fabs(find(&g, "target", "step")->value - 0.5) < 1e-12);
    assert_false(active(&g, "thin")); /* 5 baseline samples < min_samples */

    c.min_samples = 5;
    r = rule_of(&c, 1);
    assert_int_equal(eval(f, &r, &g), 3);
    assert_true(active(&g, "thin"));
    assert_false(active(&g, "normal"));
}

static void anomaly_baseline_weights_recent_samples(void **state)
{
    struct fx *f = *state;
    struct got g;
    char k[LBW_KEY_MAX];
    /* the level moved from 1.0 to 0.1 fifteen minutes before the window and stays there:
     * weighted by age (half-life 15 min) the baseline has mostly moved with it (mean ~0.52,
     * sigma ~0.45), where an unweighted one (mean ~0.78, sigma ~0.39) would still call 0.1 an
     * anomaly at k = 1.3 */
    key_of(k, "lbwatch_tls_handshake_seconds", "shifted", "n1", NULL, NULL);
    for (int i = 0; i < 360; i++)
        put(f, k, NOW - 5 * MIN - HOUR + 5 * SEC + i * 10 * SEC, i < 270 ? 1.0 : 0.1);
    for (int i = 0; i < 30; i++)
        put(f, k, NOW - 5 * MIN + 5 * SEC + i * 10 * SEC, 0.1);
    commit(f);
    struct lbw_condition c = leaf(LBW_COND_ANOMALY, "lbwatch_tls_handshake_seconds", 5 * MIN);
    c.baseline_ms = HOUR;
    c.k = 1.3;
    c.min_samples = 10;
    struct lbw_rule r = rule_of(&c, 1);
    assert_int_equal(eval(f, &r, &g), 1);
    assert_false(g.v[0].active);
    c.k = 0.8;
    r = rule_of(&c, 1);
    assert_int_equal(eval(f, &r, &g), 1);
    assert_true(g.v[0].active);
}

/* ---- all / any ------------------------------------------------------------------------------- */

static void all_and_any_join_on_shared_labels(void **state)
{
    struct fx *f = *state;
    struct got g;
    char k[LBW_KEY_MAX];
    /* m1{probe,target,vantage}; m2 also has a type label: they share probe and target */
    static const struct {
        const char *target;
        double m1, m2;
    } t[] = {{"a", 1, 1}, {"b", 1, 0}, {"c", 0, 1}, {"d", 0, 0}};
    for (size_t i = 0; i < 4; i++) {
        one(f, "m1", t[i].target, "n1", t[i].m1);
        put(f, key_of(k, "m2", t[i].target, "n1", "type", "rsa"), NOW - 5 * SEC, t[i].m2);
    }
    one(f, "m1", "e", "n1", 1); /* no m2 at all */
    one(f, "m2", "z", "n2", 1); /* m2 only, from another vantage, without a type label */
    commit(f);

    struct lbw_condition m1 = thr("m1", LBW_AGG_LAST, 5 * MIN, LBW_CMP_GT, 0.5);
    struct lbw_condition m2 = thr("m2", LBW_AGG_LAST, 5 * MIN, LBW_CMP_GT, 0.5);
    struct lbw_condition c = {.kind = LBW_COND_ALL, .children = {&m1, &m2}, .nchildren = 2};
    struct lbw_rule r = rule_of(&c, 1);
    assert_int_equal(eval(f, &r, &g), 6);
    assert_string_equal(find(&g, "target", "a")->labels,
                        "ALERTS{alertname=\"TestAlert\",probe=\"tls\",severity=\"warning\","
                        "target=\"a\",type=\"rsa\"}");
    assert_true(active(&g, "a"));
    assert_false(active(&g, "b"));
    assert_false(active(&g, "c"));
    assert_false(active(&g, "d"));
    assert_false(active(&g, "e"));     /* m2 has no data for it: all cannot hold */
    assert_false(active(&g, "z"));

    c.kind = LBW_COND_ANY;
    r = rule_of(&c, 1);
    assert_int_equal(eval(f, &r, &g), 6);
    assert_true(active(&g, "a"));
    assert_true(active(&g, "b"));
    assert_true(active(&g, "c"));
    assert_false(active(&g, "d"));
    assert_true(active(&g, "e"));
    assert_true(active(&g, "z"));
    assert_true(strstr(find(&g, "target", "e")->labels, "type=") == NULL);
}

static void all_with_absent_child(void **state)
{
    struct fx *f = *state;
    struct got g;
    char k[LBW_KEY_MAX];
    /* TLS handshakes succeed but the chain length metric stopped for www only */
    one(f, "probe_success", "www", "n1", 1);
    one(f, "probe_success", "api", "n1", 1);
    fill(f, key_of(k, "lbwatch_tls_chain_length", "www", "n1", NULL, NULL), NOW - 20 * MIN,
         MIN, 5, 2);
    fill(f, key_of(k, "lbwatch_tls_chain_length", "api", "n1", NULL, NULL), NOW - 5 * SEC,
         MIN, 5, 2);
    commit(f);
    struct lbw_condition up = thr("probe_success", LBW_AGG_LAST, 5 * MIN, LBW_CMP_EQ, 1);
    struct lbw_condition gone = leaf(LBW_COND_ABSENT, "lbwatch_tls_chain_length", 10 * MIN);
    struct lbw_condition c = {.kind = LBW_COND_ALL, .children = {&up, &gone}, .nchildren = 2};
    struct lbw_rule r = rule_of(&c, 1);
    assert_int_equal(eval(f, &r, &g), 2);
    assert_true(active(&g, "www"));
    assert_false(active(&g, "api"));
    assert_int_equal(find(&g, "target", "www")->value, 1); /* all: the first child's value */
}

static void absent_over_no_series_joins_every_vantage(void **state)
{
    struct fx *f = *state;
    struct got g;
    one(f, "probe_success", "www", "n1", 0);
    one(f, "probe_success", "www", "n2", 0);
    one(f, "probe_success", "www", "n3", 1);
    commit(f);
    /* down, and the HTTP probe's metric was never seen for it: the absence (no vantage of its
     * own) stands for every vantage the other child has */
    struct lbw_condition down = thr("probe_success", LBW_AGG_LAST, 5 * MIN, LBW_CMP_EQ, 0);
    struct lbw_condition none = leaf(LBW_COND_ABSENT, "probe_http_status_code", 5 * MIN);
    none.matchers[1] = (struct lbw_matcher){"target", "www", 0};
    none.nmatchers = 2;
    struct lbw_condition c = {.kind = LBW_COND_ALL, .children = {&down, &none}, .nchildren = 2};
    struct lbw_rule r = rule_of(&c, 2);
    assert_int_equal(eval(f, &r, &g), 1);
    assert_true(g.v[0].active);
    assert_int_equal(g.v[0].vantages_seen, 3);
    assert_int_equal(g.v[0].vantages_true, 2);
    r = rule_of(&c, 3);
    assert_int_equal(eval(f, &r, &g), 1);
    assert_false(g.v[0].active);

    struct lbw_condition swapped = {.kind = LBW_COND_ALL, .children = {&none, &down},
                                    .nchildren = 2};
    r = rule_of(&swapped, 2);
    assert_int_equal(eval(f, &r, &g), 1);
    assert_true(g.v[0].active);
    assert_int_equal(g.v[0].vantages_seen, 3);
    assert_int_equal(g.v[0].vantages_true, 2);
}

/* ---- vantages -------------------------------------------------------------------------------- */

static void min_vantages_two_of_three(void **state)
{
    struct fx *f = *state;
    struct got g;
    static const char *const vantages[] = {"n1", "n2", "n3"};
    static const double a[] = {0, 0, 1}, b[] = {1, 0, 1};
    for (int i = 0; i < 3; i++) {
        one(f, "probe_success", "a", vantages[i], a[i]);
        one(f, "probe_success", "b", vantages[i], b[i]);
    }
    commit(f);
    struct lbw_condition c = thr("probe_success", LBW_AGG_LAST, 5 * MIN, LBW_CMP_EQ, 0);
    struct lbw_rule r = rule_of(&c, 2);
    assert_int_equal(eval(f, &r, &g), 2);
    const struct lbw_instance *ia = find(&g, "target", "a"), *ib = find(&g, "target", "b");
    assert_true(ia->active);
    assert_int_equal(ia->vantages_true, 2);
    assert_int_equal(ia->vantages_seen, 3);
    assert_false(ib->active);
    assert_int_equal(ib->vantages_true, 1);
    assert_int_equal(ib->vantages_seen, 3);
    assert_int_equal(ib->value, 0);    /* the value where it held (n2), not n1's 1 */
    assert_null(strstr(ia->labels, "vantage"));

    r = rule_of(&c, 1);
    assert_int_equal(eval(f, &r, &g), 2);
    assert_true(active(&g, "b"));
}

/* per_vantage: what each vantage measures about itself (an agent's host) is its own instance,
 * labelled with the vantage; all/any keep joining on the same vantage. */
static void per_vantage_instances(void **state)
{
    struct fx *f = *state;
    struct got g;
    char k[LBW_KEY_MAX];
    one(f, "probe_success", "a", "lb1", 0);
    one(f, "probe_success", "a", "lb2", 1);
    one(f, "probe_success", "a", "lb3", 0);
    put(f, key_of(k, "lbwatch_tls_chain_length", "a", "lb1", NULL, NULL), NOW - 5 * SEC, 3);
    put(f, key_of(k, "lbwatch_tls_chain_length", "a", "lb2", NULL, NULL), NOW - 5 * SEC, 3);
    commit(f);
    struct lbw_condition c = thr("probe_success", LBW_AGG_LAST, 5 * MIN, LBW_CMP_EQ, 0);
    struct lbw_rule r = rule_of(&c, 1);
    r.per_vantage = 1;
    assert_int_equal(eval(f, &r, &g), 3);
    const struct lbw_instance *i1 = find(&g, "vantage", "lb1"), *i2 = find(&g, "vantage", "lb2");
    assert_true(i1->active);
    assert_false(i2->active);
    assert_true(find(&g, "vantage", "lb3")->active);
    assert_int_equal(i1->vantages_seen, 1);
    assert_int_equal(i1->vantages_true, 1);
    assert_string_equal(i1->labels, "ALERTS{alertname=\"TestAlert\",probe=\"tls\","
                                    "severity=\"warning\",target=\"a\",vantage=\"lb1\"}");
    assert_true(i1->fingerprint != find(&g, "vantage", "lb3")->fingerprint);

    /* all: each vantage's children meet on that vantage only: lb3 has no chain length */
    struct lbw_condition chain = thr("lbwatch_tls_chain_length", LBW_AGG_LAST, 5 * MIN,
                                     LBW_CMP_GT, 2);
    struct lbw_condition both = {.kind = LBW_COND_ALL, .children = {&c, &chain}, .nchildren = 2};
    r = rule_of(&both, 1);
    r.per_vantage = 1;
    assert_int_equal(eval(f, &r, &g), 3);
    assert_true(find(&g, "vantage", "lb1")->active);
    assert_false(find(&g, "vantage", "lb2")->active);
    assert_false(find(&g, "vantage", "lb3")->active);

    /* absent over no series at all stands for every vantage: no vantage label to add */
    struct lbw_condition gone = leaf(LBW_COND_ABSENT, "lbwatch_process_up", 5 * MIN);
    r = rule_of(&gone, 1);
    r.per_vantage = 1;
    assert_int_equal(eval(f, &r, &g), 1);
    assert_true(g.v[0].active);
    assert_null(strstr(g.v[0].labels, "vantage"));
}

/* ---- labels and fingerprints ----------------------------------------------------------------- */

static void instance_labels_and_fingerprint(void **state)
{
    struct fx *f = *state;
    struct got g, again;
    char k[LBW_KEY_MAX];
    put(f, key_of(k, "probe_success", "www", "n1", "team", "db"), NOW - 5 * SEC, 0);
    put(f, key_of(k, "probe_success", "api", "n1", "team", "db"), NOW - 5 * SEC, 0);
    put(f, key_of(k, "probe_success_extra", "www", "n1", NULL, NULL), NOW - 5 * SEC, 0);
    commit(f);
    struct lbw_condition c = thr("probe_success", LBW_AGG_LAST, 5 * MIN, LBW_CMP_EQ, 0);
    struct lbw_rule r = rule_of(&c, 1);
    r.name = "TargetDown";
    r.severity = LBW_SEV_CRITICAL;
    r.labels[0] = (struct lbw_label){"team", "web"};         /* wins over the series' team */
    r.labels[1] = (struct lbw_label){"severity", "page"};    /* wins over severity */
    r.nlabels = 2;
    assert_int_equal(eval(f, &r, &g), 2); /* probe_success_extra is another metric */
    /* reported in label order */
    assert_string_equal(g.v[0].labels, "ALERTS{alertname=\"TargetDown\",probe=\"tls\","
                                       "severity=\"page\",target=\"api\",team=\"web\"}");
    assert_string_equal(g.v[1].labels, "ALERTS{alertname=\"TargetDown\",probe=\"tls\","
                                       "severity=\"page\",target=\"www\",team=\"web\"}");
    for (size_t i = 0; i < 2; i++)
        assert_true(g.v[i].fingerprint == lbw_fingerprint(g.v[i].labels, strlen(g.v[i].labels)));
    assert_true(g.v[0].fingerprint != g.v[1].fingerprint);

    assert_int_equal(eval(f, &r, &again), 2);
    for (size_t i = 0; i < 2; i++) {
        assert_string_equal(g.v[i].labels, again.v[i].labels);
        assert_true(g.v[i].fingerprint == again.v[i].fingerprint);
    }
    assert_true(lbw_fingerprint("", 0) == 0xcbf29ce484222325ull);   /* FNV-1a 64 vectors */
    assert_true(lbw_fingerprint("a", 1) == 0xaf63dc4c8601ec8cull);
    assert_true(lbw_fingerprint("foobar", 6) == 0x85944171f73967e8ull);

    r.nlabels = 0;
    assert_int_equal(eval(f, &r, &g), 2);
    assert_string_equal(g.v[1].labels, "ALERTS{alertname=\"TargetDown\",probe=\"tls\","
                                       "severity=\"critical\",target=\"www\",team=\"db\"}");
}

static void labels_that_do_not_fit_fail_the_evaluation(void **state)
{
    struct fx *f = *state;
    struct got g;
    char k[LBW_KEY_MAX];
    struct lbw_label l[10];
    char names[10][16];
    for (int i = 0; i < 10; i++) {
        snprintf(names[i], sizeof(names[i]), "x%d", i); /* sorts after narrow's target */
        l[i] = (struct lbw_label){names[i], "v"};
    }
    l[0] = (struct lbw_label){"probe", "tls"};
    assert_true(lbw_key_build(k, sizeof(k), "wide", l, 10) > 0);
    put(f, k, NOW - 5 * SEC, 1);
    one(f, "wide", "narrow", "n1", 1);
    commit(f);
    struct lbw_condition c = thr("wide", LBW_AGG_LAST, 5 * MIN, LBW_CMP_EQ, 1);
    struct lbw_rule r = rule_of(&c, 1);
    assert_int_equal(eval(f, &r, &g), 2);
    static const char *const extra[] = {"s1", "s2", "s3", "s4", "s5", "s6", "s7"};
    for (size_t i = 0; i < 7; i++)
        r.labels[i] = (struct lbw_label){extra[i], "x"};
    r.nlabels = 7; /* 7 + alertname + severity + 10 series labels > 16 */
    assert_int_equal(eval(f, &r, &g), -1);
    assert_int_equal(g.n, 0); /* not even narrow's, which fits and comes first */
}

/* ---- sources --------------------------------------------------------------------------------- */

static int failing_select(void *arg, const char *metric, const struct lbw_matcher *m, size_t nm,
                          int64_t from, int64_t to, lbw_rule_series_cb cb, void *cbarg)
{
    (void)arg, (void)metric, (void)m, (void)nm, (void)from, (void)to;
    static const struct lbw_rule_point p = {NOW - SEC, 0};
    static const char key[] = "probe_success{probe=\"tls\",target=\"www\",vantage=\"n1\"}";
    cb(cbarg, key, strlen(key), &p, 1); /* a series, then the read fails */
    return -1;
}

static void read_error_reports_nothing(void **state)
{
    (void)state;
    struct got g = {.n = 0};
    struct lbw_series_source src = {NULL, failing_select};
    struct lbw_condition c = thr("probe_success", LBW_AGG_LAST, 5 * MIN, LBW_CMP_EQ, 0);
    struct lbw_rule r = rule_of(&c, 1);
    assert_int_equal(lbw_rule_eval(&r, &src, NOW, collect, &g), -1);
    assert_int_equal(g.n, 0);
    struct lbw_condition any = {.kind = LBW_COND_ANY, .children = {&c}, .nchildren = 1};
    r = rule_of(&any, 1);
    assert_int_equal(lbw_rule_eval(&r, &src, NOW, collect, &g), -1);
    assert_int_equal(g.n, 0);
}

/* Hands over what a sloppy source might: another metric, a series the matchers exclude, and
 * samples outside the range asked for. */
static int sloppy_select(void *arg, const char *metric, const struct lbw_matcher *m, size_t nm,
                         int64_t from, int64_t to, lbw_rule_series_cb cb, void *cbarg)
{
    (void)arg, (void)metric, (void)m, (void)nm, (void)from, (void)to;
    static const struct lbw_rule_point pts[] = {
        {NOW - MIN, 50}, {NOW - 30 * SEC, 2}, {NOW - 20 * SEC, NAN}, {NOW + SEC, 60}};
    static const char *const keys[] = {
        "probe_success_total{probe=\"tls\",target=\"www\",vantage=\"n1\"}",
        "probe_success{probe=\"http\",target=\"www\",vantage=\"n1\"}",
        "probe_success{probe=\"tls\",target=\"www\",vantage=\"n1\"}",
        "not a key",
    };
    for (size_t i = 0; i < 4; i++)
        if (cb(cbarg, keys[i], strlen(keys[i]), pts, 4) != 0)
            return -1;
    return 0;
}

static void evaluator_rechecks_what_a_source_hands_over(void **state)
{
    (void)state;
    struct got g = {.n = 0};
    struct lbw_series_source src = {NULL, sloppy_select};
    struct lbw_condition c = thr("probe_success", LBW_AGG_MAX, MIN, LBW_CMP_GT, 0);
    struct lbw_rule r = rule_of(&c, 1);
    assert_int_equal(lbw_rule_eval(&r, &src, NOW, collect, &g), 1);
    assert_string_equal(g.v[0].labels, "ALERTS{alertname=\"TestAlert\",probe=\"tls\","
                                       "severity=\"warning\",target=\"www\"}");
    assert_int_equal(g.v[0].value, 2); /* not 50 (window edge), NaN or 60 (after now) */
}

struct handed {
    char keys[8][LBW_KEY_MAX];
    size_t npts[8];
    int64_t first[8];
    size_t n;
};

static int record(void *arg, const char *key, size_t keylen, const struct lbw_rule_point *pts,
                  size_t n)
{
    struct handed *h = arg;
    assert_true(h->n < 8 && keylen < LBW_KEY_MAX);
    memcpy(h->keys[h->n], key, keylen);
    h->keys[h->n][keylen] = '\0';
    h->npts[h->n] = n;
    h->first[h->n++] = n ? pts[0].ts_ms : -1;
    return 0;
}

static void source_selects_metric_and_matchers(void **state)
{
    struct fx *f = *state;
    struct handed h = {.n = 0};
    char k[LBW_KEY_MAX];
    fill(f, key_of(k, "probe_success", "www", "n1", NULL, NULL), NOW, 10 * SEC, 10, 1);
    fill(f, key_of(k, "probe_success", "old", "n1", NULL, NULL), NOW - HOUR, 10 * SEC, 10, 1);
    put(f, key_of(k, "probe_success_total", "www", "n1", NULL, NULL), NOW, 1);
    put(f, key_of(k, "probe_successful", "www", "n1", NULL, NULL), NOW, 1);
    put(f, "probe_success{probe=\"http\",target=\"www\",vantage=\"n1\"}", NOW, 1);
    put(f, "probe_success", NOW, 1); /* no labels at all: probe is "" */
    commit(f);

    struct lbw_matcher tls = {"probe", "tls", 0};
    assert_int_equal(f->rs.src.select(f->rs.src.arg, "probe_success", &tls, 1, NOW - 35 * SEC,
                                      NOW - 5 * SEC, record, &h), 0);
    assert_int_equal(h.n, 2); /* in key order; old has nothing in range */
    assert_string_equal(h.keys[0], "probe_success{probe=\"tls\",target=\"old\",vantage=\"n1\"}");
    assert_int_equal(h.npts[0], 0);
    assert_string_equal(h.keys[1], "probe_success{probe=\"tls\",target=\"www\",vantage=\"n1\"}");
    assert_int_equal(h.npts[1], 3); /* [now-35s, now-5s] holds -30, -20, -10 */
    assert_int_equal(h.first[1], NOW - 30 * SEC);

    struct lbw_matcher not_tls = {"probe", "tls", 1};
    h.n = 0;
    assert_int_equal(f->rs.src.select(f->rs.src.arg, "probe_success", &not_tls, 1, 0, NOW,
                                      record, &h), 0);
    assert_int_equal(h.n, 2);
    assert_string_equal(h.keys[0], "probe_success");
    assert_string_equal(h.keys[1], "probe_success{probe=\"http\",target=\"www\",vantage=\"n1\"}");
}

static void source_keeps_the_newest_samples(void **state)
{
    struct fx *f = *state;
    struct got g;
    char k[LBW_KEY_MAX];
    size_t n = LBW_RULESOURCE_MAX_POINTS + 1000;
    key_of(k, "busy", "www", "n1", NULL, NULL);
    for (size_t i = 0; i < n; i++)
        put(f, k, NOW - (int64_t)(n - i) * 100, (double)i);
    commit(f);
    struct lbw_condition c = thr("busy", LBW_AGG_LAST, HOUR, LBW_CMP_GE, 0);
    struct lbw_rule r = rule_of(&c, 1);
    assert_int_equal(eval(f, &r, &g), 1);
    assert_int_equal(g.v[0].value, n - 1);
    c.agg = LBW_AGG_MIN;
    r = rule_of(&c, 1);
    assert_int_equal(eval(f, &r, &g), 1);
    assert_int_equal(g.v[0].value, n - LBW_RULESOURCE_MAX_POINTS); /* the oldest kept */
}

/* ---- checks ---------------------------------------------------------------------------------- */

static void expect_refused(const struct lbw_rule *r, const char *want)
{
    char why[256] = "";
    if (lbw_rule_check(r, why, sizeof(why)) == 0)
        fail_msg("accepted, want: %s", want);
    if (strcmp(why, want) != 0)
        fail_msg("got:  %s\nwant: %s", why, want);
}

static void check_refusals(void **state)
{
    (void)state;
    struct lbw_condition ok = thr("probe_success", LBW_AGG_LAST, 5 * MIN, LBW_CMP_EQ, 0);
    struct lbw_rule r = rule_of(&ok, 1);
    char why[256];
    assert_int_equal(lbw_rule_check(&r, why, sizeof(why)), 0);

    r.name = "9lives";
    expect_refused(&r, "name: must be letters, digits and '_', not starting with a digit");
    r = rule_of(&ok, 0);
    expect_refused(&r, "min_vantages: must be at least 1");
    r = rule_of(&ok, 2);
    r.per_vantage = 1;
    expect_refused(&r, "min_vantages: must be 1 with per_vantage (each vantage is its own "
                       "instance)");
    r = rule_of(&ok, 1);
    r.for_ms = -1;
    expect_refused(&r, "for: must not be negative");
    r = rule_of(&ok, 1);
    r.labels[0] = (struct lbw_label){"bad-name", "x"};
    r.nlabels = 1;
    expect_refused(&r, "labels: entry 0: needs a valid name and a value");
    r.labels[0] = (struct lbw_label){"team", "x"};
    r.labels[1] = (struct lbw_label){"team", "y"};
    r.nlabels = 2;
    expect_refused(&r, "labels: \"team\" is repeated");
    r = rule_of(&ok, 1);
    r.annotations[0] = (struct lbw_label){"summary", "{{ $value "};
    r.nannotations = 1;
    expect_refused(&r, "annotations: summary: unclosed action: missing }} at byte 0");

    struct lbw_condition c = ok;
    c.metric = NULL;
    r = rule_of(&c, 1);
    expect_refused(&r, "needs a valid metric name");
    c = ok;
    c.window_ms = 0;
    r = rule_of(&c, 1);
    expect_refused(&r, "window must be positive and at most 400 days");
    c = ok;
    c.matchers[1] = (struct lbw_matcher){"probe", "http", 0};
    c.nmatchers = 2;
    r = rule_of(&c, 1);
    expect_refused(&r, "label \"probe\" is matched for equality twice");
    c = ok;
    c.value = NAN;
    r = rule_of(&c, 1);
    expect_refused(&r, "needs a comparison and a value");
    c = ok;
    c.agg = LBW_AGG_RATE;
    c.seconds_until = 1;
    r = rule_of(&c, 1);
    expect_refused(&r, "until compares a time: use last, avg, min or max, not rate");
    c = ok;
    c.relative = 1;
    r = rule_of(&c, 1);
    expect_refused(&r, "relative applies to change only");
    c = leaf(LBW_COND_ABSENT, "probe_success", 2 * HOUR);
    r = rule_of(&c, 1);
    expect_refused(&r, "lookback must be longer than window (and at most 400 days)");
    c = leaf(LBW_COND_ANOMALY, "probe_success", 5 * MIN);
    c.baseline_ms = HOUR;
    c.min_samples = 10;
    r = rule_of(&c, 1);
    expect_refused(&r, "k must be a positive number");
    c.k = 3;
    c.min_samples = 1;
    r = rule_of(&c, 1);
    expect_refused(&r, "min_samples must be at least 2");

    struct lbw_condition empty = {.kind = LBW_COND_ALL};
    r = rule_of(&empty, 1);
    expect_refused(&r, "all needs 1 to 8 conditions");
    struct lbw_condition bad = ok, any = {.kind = LBW_COND_ANY, .children = {&ok, &bad},
                                          .nchildren = 2};
    bad.window_ms = -5;
    r = rule_of(&any, 1);
    expect_refused(&r, "any[1]: window must be positive and at most 400 days");
    struct lbw_condition nest[6]; /* five levels of all around ok */
    nest[5] = ok;
    for (int i = 4; i >= 0; i--)
        nest[i] = (struct lbw_condition){.kind = LBW_COND_ALL, .children = {&nest[i + 1]},
                                         .nchildren = 1};
    r = rule_of(&nest[1], 1);
    assert_int_equal(lbw_rule_check(&r, why, sizeof(why)), 0);
    r = rule_of(&nest[0], 1);
    expect_refused(&r, "all[0].all[0].all[0].all[0]: all/any nested deeper than 4 levels");
}

static void severity_names(void **state)
{
    (void)state;
    enum lbw_severity s;
    assert_string_equal(lbw_severity_name(LBW_SEV_INFO), "info");
    assert_string_equal(lbw_severity_name(LBW_SEV_WARNING), "warning");
    assert_string_equal(lbw_severity_name(LBW_SEV_CRITICAL), "critical");
    assert_int_equal(lbw_severity_parse("critical", &s), 0);
    assert_int_equal(s, LBW_SEV_CRITICAL);
    assert_int_equal(lbw_severity_parse("page", &s), -1);
}

static void matchers(void **state)
{
    (void)state;
    static const char key[] = "m{probe=\"tls\",target=\"www\"}";
    struct lbw_key_parsed k;
    assert_int_equal(lbw_key_parse(key, strlen(key), &k), 0);
    struct lbw_matcher m[] = {{"probe", "tls", 0}, {"target", "api", 1}, {"zone", "", 0}};
    assert_true(lbw_matchers_match(m, 3, &k));
    m[1].value = "www";
    assert_false(lbw_matchers_match(m, 3, &k));
    m[1].negate = 0;
    m[2] = (struct lbw_matcher){"zone", "", 1}; /* zone != "" needs the label */
    assert_false(lbw_matchers_match(m, 3, &k));
    assert_true(lbw_matchers_match(m, 0, &k));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(threshold_every_operator),
        T(threshold_every_aggregation),
        T(rate_over_counter_reset),
        T(rate_extrapolation_stops_at_zero),
        T(seconds_until_certificate_expiry),
        T(change_absolute_and_relative),
        T(absent_series_that_stopped),
        T(absent_no_series_at_all),
        T(anomaly_step_noise_and_thin_baseline),
        T(anomaly_baseline_weights_recent_samples),
        T(all_and_any_join_on_shared_labels),
        T(all_with_absent_child),
        T(absent_over_no_series_joins_every_vantage),
        T(min_vantages_two_of_three),
        T(per_vantage_instances),
        T(instance_labels_and_fingerprint),
        T(labels_that_do_not_fit_fail_the_evaluation),
        T(read_error_reports_nothing),
        T(evaluator_rechecks_what_a_source_hands_over),
        T(source_selects_metric_and_matchers),
        T(source_keeps_the_newest_samples),
        cmocka_unit_test(check_refusals),
        cmocka_unit_test(severity_names),
        cmocka_unit_test(matchers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
