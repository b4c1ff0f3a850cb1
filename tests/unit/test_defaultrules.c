/* test_defaultrules.c - the built-in load-balancer rules (node/ruleconf.c) over synthetic
 * samples in a real store read through node/rulesource: each rule, evaluated every 10 s as the
 * leader does, stays quiet while things are healthy, turns pending and then fires no sooner
 * than its `for:` once they go bad, and resolves once they are healthy again; the instance
 * names the object (target, proxy, server, process, the agent's vantage) and its annotations
 * render whole (under the 200 bytes a notification keeps) with those names. HAProxy rules need
 * two vantages to agree; host rules make one alert per agent. */
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
#include "node/ruleconf.h"
#include "node/rulesource.h"
#include "node/store.h"
#include "node/yamldoc.h"
#include "tests/support/testutil.h"

#define T0 1700000000000LL
#define SEC 1000LL
#define MIN (60 * SEC)
#define STEP (10 * SEC)         /* probe and evaluation interval */
#define ANNOTATION_MAX 200      /* what a notification keeps of an annotation */

struct fx {
    char dir[256];
    struct lbw_store *s;
    struct lbw_rulesource rs;
    struct lbw_rules rules;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct lbw_store_options o = {0};
    struct ydoc d;
    struct ymap top;
    char err[256] = "";
    if (!f || tu_tmpdir("lbw-defrules", f->dir, sizeof(f->dir)) < 0)
        return -1;
    o.dir = f->dir;
    o.no_sync = 1;
    if (lbw_store_open(&f->s, &o, err, sizeof(err)) < 0 || ydoc_load_buffer(&d, "t", "{}\n", 3))
        return -1;
    ymap_open(&top, &d, ydoc_root(&d), "");
    int rc = lbw_ruleconf_read(&top, &f->rules);
    ymap_close(&top);
    ydoc_free(&d);
    *state = f;
    return rc == 0 ? lbw_rulesource_init(&f->rs, f->s) : -1;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    lbw_rules_free(&f->rules);
    lbw_rulesource_fini(&f->rs);
    lbw_store_close(f->s);
    tu_rmrf(f->dir);
    free(f);
    return 0;
}

static const struct lbw_rule *rule_named(struct fx *f, const char *name)
{
    for (size_t i = 0; i < f->rules.nrules; i++)
        if (strcmp(f->rules.rules[i].name, name) == 0)
            return &f->rules.rules[i];
    fail_msg("no default rule %s", name);
    return NULL;
}

/* ---- samples --------------------------------------------------------------------------------- */

static void put(struct fx *f, int64_t ts, double v, const char *metric,
                const struct lbw_label *l, size_t n)
{
    char key[LBW_KEY_MAX];
    int len = lbw_key_build(key, sizeof(key), metric, l, n);
    assert_true(len > 0);
    assert_int_equal(lbw_store_append(f->s, key, (size_t)len, ts, v), 0);
}

/* A HAProxy scrape's sample as vantage saw it: metric{probe="haproxy",target="lb",...}. */
static void scraped(struct fx *f, const char *vantage, int64_t ts, double v, const char *metric,
                    const char *n1, const char *v1, const char *n2, const char *v2,
                    const char *n3, const char *v3)
{
    struct lbw_label l[6] = {{"probe", "haproxy"}, {"target", "lb"}, {"vantage", vantage}};
    size_t n = 3;
    const char *names[] = {n1, n2, n3}, *values[] = {v1, v2, v3};
    for (int i = 0; i < 3 && names[i]; i++)
        l[n++] = (struct lbw_label){names[i], values[i]};
    put(f, ts, v, metric, l, n);
}

/* An agent's sample: metric{probe=collector,vantage="lb1"[,process="haproxy"]}. */
static void agent(struct fx *f, int64_t ts, double v, const char *metric, const char *collector,
                  int with_process)
{
    struct lbw_label l[] = {{"probe", collector}, {"vantage", "lb1"}, {"process", "haproxy"}};
    put(f, ts, v, metric, l, with_process ? 3 : 2);
}

/* ---- the leader's view: pending, firing, resolved --------------------------------------------- */

enum state { INACTIVE, PENDING, FIRING, RESOLVED };

/* One alert's life as node/alerter moves it (next_state there): active turns an inactive or
 * resolved alert pending (firing at once without `for`), pending fires once active for `for`,
 * inactive takes pending back to inactive and firing to resolved. */
struct life {
    enum state st;
    int64_t active_since, fired_at, resolved_at;
    unsigned fired;             /* episodes that fired */
    char labels[LBW_KEY_MAX];   /* the watched instance's, when it fired */
    double value;
};

struct watch {
    struct life *life;
    const char *label, *value;  /* the instance to follow: has label=value */
    int64_t for_ms, now;
    unsigned instances;
};

static int has_label(const char *key, const char *name, const char *value)
{
    struct lbw_key_parsed k;
    assert_int_equal(lbw_key_parse(key, strlen(key), &k), 0);
    const char *v = lbw_key_label(&k, name);
    return v && strcmp(v, value) == 0;
}

static void on_instance(void *arg, const struct lbw_instance *inst)
{
    struct watch *w = arg;
    struct life *l = w->life;
    w->instances++;
    if (!has_label(inst->labels, w->label, w->value))
        return;
    if (inst->active && (l->st == INACTIVE || l->st == RESOLVED)) {
        l->st = w->for_ms > 0 ? PENDING : FIRING;
        l->active_since = w->now;
    }
    if (inst->active && l->st == PENDING && w->now - l->active_since >= w->for_ms)
        l->st = FIRING;
    if (inst->active && l->st == FIRING && !l->fired_at) {
        l->fired_at = w->now;
        l->fired++;
        snprintf(l->labels, sizeof(l->labels), "%s", inst->labels);
        l->value = inst->value;
    }
    if (!inst->active && l->st == PENDING)
        l->st = INACTIVE;
    if (!inst->active && l->st == FIRING) {
        l->st = RESOLVED;
        l->resolved_at = w->now;
    }
}

static void evaluate(struct fx *f, const struct lbw_rule *r, int64_t now, struct life *l,
                     const char *label, const char *value)
{
    struct watch w = {l, label, value, r->for_ms, now, 0};
    assert_int_equal(lbw_store_commit(f->s), 0);
    assert_true(lbw_rule_eval(r, &f->rs.src, now, on_instance, &w) >= 0);
}

/* ---- scenarios ------------------------------------------------------------------------------- */

/* Writes the samples of one probe round at ts, healthy or not. */
typedef void (*round_fn)(struct fx *f, int64_t ts, int bad);

struct scenario {
    const char *rule;
    round_fn round;
    const char *label, *value;  /* the instance that must fire */
    int64_t warm_ms;            /* healthy rounds before T0 (a baseline) */
    int64_t bad_ms;             /* from T0 */
    const char *summary_has[3]; /* the rendered summary names these */
};

/* Runs healthy rounds, bad ones from T0, healthy ones again for 15 minutes, evaluating after
 * each; the watched instance must fire once, no sooner than `for` after T0, and resolve. */
static void run(struct fx *f, const struct scenario *sc, struct life *l)
{
    const struct lbw_rule *r = rule_named(f, sc->rule);
    int64_t t = T0 - sc->warm_ms, healthy_again = T0 + sc->bad_ms;
    memset(l, 0, sizeof(*l));
    for (; t <= healthy_again + 15 * MIN; t += STEP) {
        int bad = t >= T0 && t < healthy_again;
        sc->round(f, t, bad);
        evaluate(f, r, t, l, sc->label, sc->value);
        if (t < T0 && l->st != INACTIVE)
            fail_msg("%s: %s while healthy, at T0%+llds", sc->rule, l->st == PENDING ?
                     "pending" : "firing", (long long)((t - T0) / SEC));
    }
    if (l->fired != 1 || l->st != RESOLVED)
        fail_msg("%s: fired %u times, state %d at the end", sc->rule, l->fired, l->st);
    assert_true(l->fired_at >= T0 + r->for_ms);
    assert_true(l->fired_at < healthy_again);
    assert_true(l->resolved_at >= healthy_again);
}

/* The firing instance's annotations render whole and name what they should. */
static void check_annotations(struct fx *f, const struct scenario *sc, const struct life *l)
{
    const struct lbw_rule *r = rule_named(f, sc->rule);
    struct lbw_key_parsed k;
    char text[1024];
    assert_int_equal(lbw_key_parse(l->labels, strlen(l->labels), &k), 0);
    assert_int_equal(r->nannotations, 2);
    for (size_t i = 0; i < r->nannotations; i++) {
        size_t n = lbw_template_render(r->annotations[i].value, &k, l->value, text,
                                       sizeof(text));
        if (n >= ANNOTATION_MAX)
            fail_msg("%s %s is %zu bytes: %s", sc->rule, r->annotations[i].name, n, text);
        if (i > 0)
            continue;
        for (size_t j = 0; j < 3 && sc->summary_has[j]; j++)
            if (!strstr(text, sc->summary_has[j]))
                fail_msg("%s summary \"%s\" does not name %s", sc->rule, text, sc->summary_has[j]);
    }
}

static void fire_and_resolve(void **state, const struct scenario *sc, struct life *l)
{
    struct fx *f = *state;
    run(f, sc, l);
    check_annotations(f, sc, l);
}

/* --- HAProxy, from three vantages --- */

static const char *const vantages[] = {"n1", "n2", "n3"};

static void server_round(struct fx *f, int64_t ts, int bad)
{
    for (int v = 0; v < 3; v++) {
        scraped(f, vantages[v], ts, bad, "haproxy_server_status", "proxy", "web", "server",
                "s2", "state", "DOWN");
        scraped(f, vantages[v], ts, !bad, "haproxy_server_status", "proxy", "web", "server",
                "s2", "state", "UP");
        scraped(f, vantages[v], ts, 0, "haproxy_server_status", "proxy", "web", "server", "s1",
                "state", "DOWN");
        scraped(f, vantages[v], ts, 1, "haproxy_server_status", "proxy", "web", "server", "s1",
                "state", "UP");
    }
}

static void backend_server_down(void **state)
{
    struct scenario sc = {"BackendServerDown", server_round, "server", "s2", 0, 3 * MIN,
                          {"s2", "web", "lb"}};
    struct life l;
    fire_and_resolve(state, &sc, &l);
    assert_true(has_label(l.labels, "state", "DOWN"));
    assert_true(has_label(l.labels, "target", "lb"));
    assert_true(has_label(l.labels, "proxy", "web"));
    assert_int_equal(l.value, 1);
}

/* Only one node sees the server down (its own view is stale or wrong): no alert. */
static void one_vantage(struct fx *f, int64_t ts, int bad)
{
    for (int v = 0; v < 3; v++)
        scraped(f, vantages[v], ts, bad && v == 0, "haproxy_server_status", "proxy", "web",
                "server", "s2", "state", "DOWN");
}

static void backend_server_down_needs_two_vantages(void **state)
{
    struct fx *f = *state;
    const struct lbw_rule *r = rule_named(f, "BackendServerDown");
    struct life l = {0};
    assert_int_equal(r->min_vantages, 2);
    for (int64_t t = T0; t < T0 + 5 * MIN; t += STEP) {
        one_vantage(f, t, 1);
        evaluate(f, r, t, &l, "server", "s2");
    }
    assert_int_equal(l.st, INACTIVE);
}

static void backend_round(struct fx *f, int64_t ts, int bad)
{
    for (int v = 0; v < 3; v++) {
        scraped(f, vantages[v], ts, bad, "haproxy_backend_status", "proxy", "api", "state",
                "DOWN", NULL, NULL);
        scraped(f, vantages[v], ts, !bad, "haproxy_backend_status", "proxy", "api", "state",
                "UP", NULL, NULL);
    }
}

static void backend_down(void **state)
{
    struct scenario sc = {"BackendDown", backend_round, "proxy", "api", 0, 2 * MIN,
                          {"api", "lb", NULL}};
    struct life l;
    fire_and_resolve(state, &sc, &l);
}

static void ratio_round(struct fx *f, int64_t ts, int bad)
{
    for (int v = 0; v < 2; v++) {
        scraped(f, vantages[v], ts, bad ? 0.2 : 0.01, "lbwatch_haproxy_backend_http_5xx_ratio",
                "proxy", "web", NULL, NULL, NULL, NULL);
        scraped(f, vantages[v], ts, 0, "lbwatch_haproxy_backend_http_5xx_ratio", "proxy", "api",
                NULL, NULL, NULL, NULL);
    }
}

static void backend_5xx_ratio_high(void **state)
{
    struct scenario sc = {"Backend5xxRatioHigh", ratio_round, "proxy", "web", 0, 6 * MIN,
                          {"web", "lb", NULL}};
    struct life l;
    fire_and_resolve(state, &sc, &l);
}

/* A quiet hour of 0.1-0.3 denials/s, then 30/s. */
static void denied_round(struct fx *f, int64_t ts, int bad)
{
    double quiet = (ts / STEP) % 2 ? 0.1 : 0.3;
    for (int v = 0; v < 3; v++)
        scraped(f, vantages[v], ts, bad ? 30 : quiet,
                "lbwatch_haproxy_frontend_requests_denied_rate", "proxy", "www", NULL, NULL,
                NULL, NULL);
}

static void requests_denied_spike(void **state)
{
    struct scenario sc = {"RequestsDeniedSpike", denied_round, "proxy", "www", 70 * MIN,
                          6 * MIN, {"www", "lb", NULL}};
    struct life l;
    fire_and_resolve(state, &sc, &l);
}

/* A steady 2 denials/s is above the floor but not a spike: nothing. */
static void steady_denials(struct fx *f, int64_t ts, int bad)
{
    (void)bad;
    for (int v = 0; v < 3; v++)
        scraped(f, vantages[v], ts, (ts / STEP) % 2 ? 1.9 : 2.1,
                "lbwatch_haproxy_frontend_requests_denied_rate", "proxy", "www", NULL, NULL,
                NULL, NULL);
}

static void steady_denials_are_no_spike(void **state)
{
    struct fx *f = *state;
    const struct lbw_rule *r = rule_named(f, "RequestsDeniedSpike");
    struct life l = {0};
    for (int64_t t = T0 - 70 * MIN; t < T0 + 10 * MIN; t += STEP) {
        steady_denials(f, t, 0);
        evaluate(f, r, t, &l, "proxy", "www");
    }
    assert_int_equal(l.st, INACTIVE);
}

static void connections_round(struct fx *f, int64_t ts, int bad)
{
    for (int v = 0; v < 3; v++)
        scraped(f, vantages[v], ts, bad ? 0.95 : 0.4, "lbwatch_haproxy_connections_used_ratio",
                NULL, NULL, NULL, NULL, NULL, NULL);
}

static void connections_near_limit(void **state)
{
    struct scenario sc = {"ConnectionsNearLimit", connections_round, "target", "lb", 0, 5 * MIN,
                          {"lb", "0.95", NULL}};
    struct life l;
    fire_and_resolve(state, &sc, &l);
}

/* --- the agent on host lb1: one vantage, one alert per host --- */

static void process_round(struct fx *f, int64_t ts, int bad)
{
    agent(f, ts, !bad, "lbwatch_process_up", "procwatch", 1);
}

static void process_down(void **state)
{
    struct scenario sc = {"ProcessDown", process_round, "vantage", "lb1", 0, 2 * MIN,
                          {"haproxy", "lb1", NULL}};
    struct life l;
    fire_and_resolve(state, &sc, &l);
}

static void process_fds_round(struct fx *f, int64_t ts, int bad)
{
    agent(f, ts, bad ? 0.9 : 0.3, "lbwatch_process_fds_used_ratio", "procwatch", 1);
}

static void process_fds_high(void **state)
{
    struct scenario sc = {"ProcessFileDescriptorsHigh", process_fds_round, "process", "haproxy",
                          0, 7 * MIN, {"haproxy", "lb1", "0.90"}};
    struct life l;
    fire_and_resolve(state, &sc, &l);
}

static void cpu_round(struct fx *f, int64_t ts, int bad)
{
    agent(f, ts, bad ? 0.97 : 0.35, "lbwatch_host_cpu_busy_ratio", "host", 0);
}

static void host_cpu_busy(void **state)
{
    struct scenario sc = {"HostCPUBusy", cpu_round, "vantage", "lb1", 0, 12 * MIN,
                          {"lb1", "0.97", NULL}};
    struct life l;
    fire_and_resolve(state, &sc, &l);
}

static void memory_round(struct fx *f, int64_t ts, int bad)
{
    agent(f, ts, bad ? 0.04 : 0.6, "lbwatch_host_memory_available_ratio", "host", 0);
}

static void host_memory_low(void **state)
{
    struct scenario sc = {"HostMemoryLow", memory_round, "vantage", "lb1", 0, 12 * MIN,
                          {"lb1", "0.04", NULL}};
    struct life l;
    fire_and_resolve(state, &sc, &l);
}

static void filefd_round(struct fx *f, int64_t ts, int bad)
{
    agent(f, ts, bad ? 0.85 : 0.01, "lbwatch_host_filefd_used_ratio", "host", 0);
}

static void host_fds_high(void **state)
{
    struct scenario sc = {"HostFileDescriptorsHigh", filefd_round, "vantage", "lb1", 0,
                          7 * MIN, {"lb1", "0.85", NULL}};
    struct life l;
    fire_and_resolve(state, &sc, &l);
}

/* Two agents: each host is its own alert, named by its vantage. */
static void host_alerts_per_agent(void **state)
{
    struct fx *f = *state;
    const struct lbw_rule *r = rule_named(f, "HostMemoryLow");
    struct life l1 = {0}, l2 = {0};
    assert_true(r->per_vantage);
    for (int64_t t = T0; t < T0 + 12 * MIN; t += STEP) {
        struct lbw_label a[] = {{"probe", "host"}, {"vantage", "lb1"}};
        struct lbw_label b[] = {{"probe", "host"}, {"vantage", "lb2"}};
        put(f, t, 0.05, "lbwatch_host_memory_available_ratio", a, 2);
        put(f, t, 0.5, "lbwatch_host_memory_available_ratio", b, 2);
        evaluate(f, r, t, &l1, "vantage", "lb1");
        evaluate(f, r, t, &l2, "vantage", "lb2");
    }
    assert_int_equal(l1.st, FIRING);
    assert_int_equal(l2.st, INACTIVE);
    assert_string_equal(l1.labels, "ALERTS{alertname=\"HostMemoryLow\",probe=\"host\","
                                   "severity=\"warning\",vantage=\"lb1\"}");
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(backend_server_down),
        T(backend_server_down_needs_two_vantages),
        T(backend_down),
        T(backend_5xx_ratio_high),
        T(requests_denied_spike),
        T(steady_denials_are_no_spike),
        T(connections_near_limit),
        T(process_down),
        T(process_fds_high),
        T(host_cpu_busy),
        T(host_memory_low),
        T(host_fds_high),
        T(host_alerts_per_agent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
