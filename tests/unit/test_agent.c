/* test_agent.c - the agent's own parts: sequence numbers (node/agent.h), the buffer
 * (node/agentbuf.h), agent.yaml (node/agentconf.h) and the built-in collector
 * (node/collector.h over probes/loadavg.h).
 *
 * Sequence numbers follow the clock and never go back within a run; the buffer keeps the
 * newest batches within its count and byte limits, remembers the highest evicted sequence,
 * finds the batch after any sequence, refuses a sequence that does not increase and keeps
 * one oversized batch alone; /proc/loadavg and /proc/uptime texts parse, and everything else
 * (negative, inf, nan, signs, missing fields, too long, NUL bytes) is refused; the loadavg
 * collector reads a fixture directory into exactly the four documented samples with the
 * emitter's labels, and reports a missing file; agent.yaml is read with its defaults, takes
 * the agent's name from its certificate, and refuses a node certificate, unknown collectors
 * and bad values with FILE:LINE:COL.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "node/agent.h"
#include "node/agentbuf.h"
#include "node/agentconf.h"
#include "node/collector.h"
#include "node/pki.h"
#include "probes/loadavg.h"
#include "tests/support/testutil.h"

static char dir[256];

static int group_setup(void **state)
{
    struct lbw_identity agent = {LBW_ID_AGENT, 0, "lb1"}, node = {LBW_ID_NODE, 2, "node2"};
    const char *const ips[] = {"127.0.0.1", NULL};
    char err[256] = "", pki[300];
    (void)state;
    if (tu_tmpdir("lbw-agent", dir, sizeof(dir)) != 0)
        return -1;
    snprintf(pki, sizeof(pki), "%s/pki", dir);
    if (lbw_pki_init(pki, 30, err, sizeof(err)) != 0 ||
        lbw_pki_issue(pki, &agent, ips, NULL, 30, err, sizeof(err)) != 0 ||
        lbw_pki_issue(pki, &node, ips, NULL, 30, err, sizeof(err)) != 0) {
        fprintf(stderr, "pki: %s\n", err);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    tu_rmrf(dir);
    return 0;
}

/* ---- sequence numbers -------------------------------------------------------------------- */

static void seq_follows_the_clock_and_never_goes_back(void **state)
{
    (void)state;
    assert_int_equal(lbw_agent_next_seq(0, 1000), 1024000);
    assert_int_equal(lbw_agent_next_seq(1024000, 1000), 1024001);      /* same ms */
    assert_int_equal(lbw_agent_next_seq(1024001, 1001), 1025024);      /* next ms */
    assert_int_equal(lbw_agent_next_seq(5000000, 1000), 5000001);      /* clock went back */
    assert_int_equal(lbw_agent_next_seq(7, -5), 8);
    /* a restart a second later starts above everything the last run made at up to 1024
     * batches per ms */
    assert_true(lbw_agent_next_seq(0, 1001000) > lbw_agent_next_seq(1000999 * 1024ull, 999));
}

/* ---- the buffer -------------------------------------------------------------------------- */

static uint8_t *blob(size_t len, uint8_t fill)
{
    uint8_t *p = malloc(len);
    memset(p, fill, len);
    return p;
}

static void buffer_keeps_the_newest(void **state)
{
    struct lbw_agentbuf *b = lbw_agentbuf_new(3, 100);
    struct lbw_agentbuf_stats st;
    size_t len;
    uint64_t seq;
    (void)state;
    assert_null(lbw_agentbuf_next(b, 0, &len, &seq));
    for (uint64_t s = 10; s <= 40; s += 10)
        assert_int_equal(lbw_agentbuf_push(b, s, blob(10, (uint8_t)s), 10), 0);
    lbw_agentbuf_stats(b, &st);
    assert_int_equal(st.batches, 3); /* 10 evicted by count */
    assert_int_equal(st.oldest, 20);
    assert_int_equal(st.newest, 40);
    assert_int_equal(st.evicted, 10);
    assert_int_equal(st.bytes, 30);
    const uint8_t *p = lbw_agentbuf_next(b, 0, &len, &seq);
    assert_int_equal(seq, 20);
    assert_int_equal(p[0], 20);
    lbw_agentbuf_next(b, 25, &len, &seq);
    assert_int_equal(seq, 30);
    lbw_agentbuf_next(b, 30, &len, &seq);
    assert_int_equal(seq, 40);
    assert_null(lbw_agentbuf_next(b, 40, &len, &seq));

    assert_int_equal(lbw_agentbuf_push(b, 50, blob(90, 5), 90), 0); /* evicts 20, 30 by bytes */
    lbw_agentbuf_stats(b, &st);
    assert_int_equal(st.batches, 2);
    assert_int_equal(st.oldest, 40);
    assert_int_equal(st.bytes, 100);
    assert_int_equal(st.evicted, 30);
    assert_int_equal(st.evictions, 3);

    assert_int_equal(lbw_agentbuf_push(b, 50, blob(1, 0), 1), -1); /* not above 50 */
    assert_int_equal(lbw_agentbuf_push(b, 49, blob(1, 0), 1), -1);
    assert_int_equal(lbw_agentbuf_push(b, 60, blob(500, 6), 500), 0); /* kept alone */
    lbw_agentbuf_stats(b, &st);
    assert_int_equal(st.batches, 1);
    assert_int_equal(st.oldest, 60);
    assert_int_equal(st.evicted, 50);
    assert_int_equal(st.pushed, 6);

    /* many pushes through a small buffer: the queue compacts, order holds */
    for (uint64_t s = 61; s < 1061; s++)
        assert_int_equal(lbw_agentbuf_push(b, s, blob(1, (uint8_t)s), 1), 0);
    lbw_agentbuf_stats(b, &st);
    assert_int_equal(st.batches, 3);
    assert_int_equal(st.oldest, 1058);
    lbw_agentbuf_next(b, 1058, &len, &seq);
    assert_int_equal(seq, 1059);
    lbw_agentbuf_free(b);
    assert_null(lbw_agentbuf_new(0, 10));
    assert_null(lbw_agentbuf_new(10, 0));
}

/* ---- /proc parsing ----------------------------------------------------------------------- */

static void proc_texts(void **state)
{
    double l[3], up;
    (void)state;
    const char *good = "0.52 1.58 10.59 1/234 5678\n";
    assert_int_equal(lbw_loadavg_parse(good, strlen(good), l), 0);
    assert_true(l[0] == 0.52 && l[1] == 1.58 && l[2] == 10.59);
    assert_int_equal(lbw_uptime_parse("12345.67 23456.78\n", 18, &up), 0);
    assert_true(up == 12345.67);
    assert_int_equal(lbw_loadavg_parse("0.5 0.5 0.5", 11, l), 0); /* no newline */
    static const char *const bad[] = {
        "", "0.5 0.5", "0.5 0.5\n0.5", "-0.5 0.5 0.5", "inf 0.5 0.5", "nan 0.5 0.5",
        "+1 0.5 0.5", " 0.5 0.5 0.5", "0.5  0.5 0.5", "0.5x 0.5 0.5", "1e999 0.5 0.5",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (lbw_loadavg_parse(bad[i], strlen(bad[i]), l) == 0)
            fail_msg("accepted \"%s\"", bad[i]);
    assert_int_equal(lbw_loadavg_parse("0.5 0\0.5 0.5", 12, l), -1);
    char big[LBW_LOADAVG_FILE_MAX + 2];
    memset(big, '1', sizeof(big));
    assert_int_equal(lbw_uptime_parse(big, sizeof(big), &up), -1);
    assert_int_equal(lbw_uptime_parse("abc", 3, &up), -1);
}

/* ---- the loadavg collector --------------------------------------------------------------- */

struct seen {
    char keys[8][LBW_KEY_MAX];
    double values[8];
    int64_t ts[8];
    size_t n;
};

static void take(void *arg, const char *key, int64_t ts_ms, double value)
{
    struct seen *s = arg;
    assert_true(s->n < 8);
    snprintf(s->keys[s->n], LBW_KEY_MAX, "%s", key);
    s->values[s->n] = value;
    s->ts[s->n++] = ts_ms;
}

static const struct lbw_collector_kind *kind(const char *name)
{
    size_t n;
    const struct lbw_collector_kind *k = lbw_collector_kinds(&n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(k[i].name, name) == 0)
            return &k[i];
    return NULL;
}

static struct lbw_agentconf *load_ok(const char *text)
{
    struct lbw_agentconf *c = NULL;
    char err[1024] = "", name[300];
    snprintf(name, sizeof(name), "%s/agent.yaml", dir);
    if (lbw_agentconf_parse(name, text, strlen(text), &c, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    return c;
}

static void expect_error(const char *text, const char *want)
{
    struct lbw_agentconf *c = NULL;
    char err[1024] = "", name[300];
    snprintf(name, sizeof(name), "%s/agent.yaml", dir);
    assert_int_equal(lbw_agentconf_parse(name, text, strlen(text), &c, err, sizeof(err)), -1);
    assert_null(c);
    if (!strstr(err, want))
        fail_msg("got: %s\nwant: ...%s", err, want);
}

static void loadavg_collector(void **state)
{
    char proc[300], path[320], text[512], err[256] = "";
    (void)state;
    snprintf(proc, sizeof(proc), "%s/proc", dir);
    tu_rmrf(proc);
    assert_int_equal(mkdir(proc, 0700), 0);
    snprintf(path, sizeof(path), "%s/loadavg", proc);
    assert_int_equal(tu_write_file(path, "0.25 0.50 2.00 3/100 42\n", 24), 0);
    snprintf(path, sizeof(path), "%s/uptime", proc);
    assert_int_equal(tu_write_file(path, "1000.40 1.00\n", 13), 0);
    snprintf(text, sizeof(text),
             "agent: {listen: 127.0.0.1:8450}\ntls: {ca: pki/ca.crt, cert: pki/lb1.crt, "
             "key: pki/lb1.key}\ncollectors:\n  loadavg: {proc_dir: proc}\n");
    struct lbw_agentconf *c = load_ok(text);
    assert_int_equal(c->ncollectors, 1);
    struct lbw_collector col;
    assert_int_equal(c->collectors[0].kind->open(c->collectors[0].config, &col, err,
                                                 sizeof(err)), 0);
    struct seen s = {0};
    struct lbw_label base[] = {{"probe", col.name}, {"vantage", c->name}};
    struct lbw_emitter e = {take, &s, base, 2, 5000000};
    assert_int_equal(col.collect(col.state, &e, err, sizeof(err)), 0);
    assert_int_equal(s.n, 4);
    assert_string_equal(s.keys[0], "node_load1{probe=\"loadavg\",vantage=\"lb1\"}");
    assert_true(s.values[0] == 0.25);
    assert_string_equal(s.keys[1], "node_load5{probe=\"loadavg\",vantage=\"lb1\"}");
    assert_true(s.values[2] == 2.0);
    assert_string_equal(s.keys[3], "node_boot_time_seconds{probe=\"loadavg\",vantage=\"lb1\"}");
    assert_true(s.values[3] == 4000.0); /* round(5000 - 1000.4) */
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(s.ts[i], 5000000);
    tu_rmrf(proc); /* gone: the next round reports it */
    s.n = 0;
    assert_int_equal(col.collect(col.state, &e, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "proc/loadavg"));
    assert_int_equal(s.n, 0);
    lbw_collector_close(&col);
    lbw_agentconf_free(c);
    assert_non_null(kind("loadavg"));
}

/* ---- agent.yaml -------------------------------------------------------------------------- */

#define TLS "tls: {ca: pki/ca.crt, cert: pki/lb1.crt, key: pki/lb1.key}\n"

static void agent_yaml(void **state)
{
    (void)state;
    struct lbw_agentconf *c = load_ok("agent: {listen: 127.0.0.1:8450}\n" TLS);
    assert_string_equal(c->name, "lb1");
    assert_string_equal(c->listen_host, "127.0.0.1");
    assert_int_equal(c->listen_port, 8450);
    assert_int_equal(c->interval_ms, 10000);
    assert_int_equal(c->max_connections, 8);
    assert_int_equal(c->buffer_batches, 360);
    assert_int_equal(c->buffer_bytes, 16u << 20);
    assert_int_equal(c->log_level, LBW_LOG_INFO);
    assert_int_equal(c->ncollectors, 1); /* every built-in kind by default */
    assert_string_equal(c->collectors[0].kind->name, "loadavg");
    lbw_agentconf_free(c);

    c = load_ok("agent:\n  listen: '[::1]:9000'\n  interval: 2s\n  max_connections: 2\n"
                "  log_level: debug\nbuffer: {batches: 10, size: 1MiB}\n" TLS
                "collectors:\n  loadavg:\n");
    assert_string_equal(c->listen_host, "::1");
    assert_int_equal(c->interval_ms, 2000);
    assert_int_equal(c->max_connections, 2);
    assert_int_equal(c->buffer_batches, 10);
    assert_int_equal(c->buffer_bytes, 1u << 20);
    assert_int_equal(c->ncollectors, 1);
    lbw_agentconf_free(c);
}

static void agent_yaml_errors(void **state)
{
    (void)state;
    expect_error(TLS, "agent.yaml:1:1: missing required key 'agent'");
    expect_error("agent: {listen: 127.0.0.1:8450}\n"
                 "tls: {ca: pki/ca.crt, cert: pki/node2.crt, key: pki/node2.key}\n",
                 "agent.yaml:2:29: tls.cert: ");
    expect_error("agent: {listen: 127.0.0.1:8450}\n"
                 "tls: {ca: pki/ca.crt, cert: pki/node2.crt, key: pki/node2.key}\n",
                 "is the certificate of node node2 (id 2), not of an agent");
    expect_error("agent: {listen: 127.0.0.1:8450}\n"
                 "tls: {ca: pki/ca.crt, cert: pki/lb1.crt, key: pki/node2.key}\n",
                 "agent.yaml:2:29: tls.cert: ");
    expect_error("agent: {listen: lb1.example:8450}\n" TLS,
                 "agent.yaml:1:17: agent.listen: host must be an IP address");
    expect_error("agent: {listen: 127.0.0.1:8450, interval: 50ms}\n" TLS,
                 "agent.yaml:1:43: agent.interval: must be at least 100ms");
    expect_error("agent: {listen: 127.0.0.1:8450}\nbuffer: {batches: 0}\n" TLS,
                 "agent.yaml:2:19: buffer.batches: must be between 1 and 1000000");
    expect_error("agent: {listen: 127.0.0.1:8450}\n" TLS "collectors: {loadavg: {}, x: {}}\n",
                 "agent.yaml:3:27: unknown key 'x' in 'collectors' (expected loadavg)");
    expect_error("agent: {listen: 127.0.0.1:8450}\n" TLS "collectors: {loadavg: {dir: /}}\n",
                 "unknown key 'dir' in 'collectors.loadavg' (expected proc_dir)");
    expect_error("agent: {listen: 127.0.0.1:8450}\n" TLS "collectors: {}\n",
                 "agent.yaml:3:13: collectors: names no collector (built in: loadavg)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(seq_follows_the_clock_and_never_goes_back),
        cmocka_unit_test(buffer_keeps_the_newest),
        cmocka_unit_test(proc_texts),
        cmocka_unit_test(loadavg_collector),
        cmocka_unit_test(agent_yaml),
        cmocka_unit_test(agent_yaml_errors),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
