/* test_agent.c - the agent's own parts: sequence numbers (node/agent.h), the buffer
 * (node/agentbuf.h) and agent.yaml (node/agentconf.h; the collectors' own sections are in
 * test_collectors.c).
 *
 * Sequence numbers follow the clock and never go back within a run; the buffer keeps the
 * newest batches within its count and byte limits, remembers the highest evicted sequence,
 * finds the batch after any sequence, refuses a sequence that does not increase and keeps
 * one oversized batch alone; it holds batches deflated and hands them back byte for byte,
 * its byte limit counts the deflated bytes, and damaged stored bytes are never handed out; agent.yaml is read with its defaults (the host collector when
 * there is no collectors section), takes the agent's name from its certificate, and refuses
 * a node certificate, unknown collectors and bad values with FILE:LINE:COL; the shipped
 * images/agent.example.yaml loads (beside a PKI like the one it names) with every collector.
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
#include <zlib.h>

#include "node/agent.h"
#include "node/agentbuf.h"
#include "node/agentconf.h"
#include "node/collector.h"
#include "node/pki.h"
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

/* A batch-like blob: key=value lines that repeat from one seq to the next (what the
 * dictionary catches), the first with seq's own value, then `noise` bytes that do not
 * compress. */
static uint8_t *batch_like(uint64_t seq, size_t lines, size_t noise, size_t *len)
{
    size_t cap = lines * 64 + noise + 1, n = 0;
    uint8_t *p = malloc(cap);
    uint32_t x = (uint32_t)seq * 2654435761u + 1;
    assert_non_null(p);
    for (size_t i = 0; i < lines; i++)
        n += (size_t)snprintf((char *)p + n, cap - n, "host_metric_%zu{probe=\"host\"} %llu\n",
                              i, (unsigned long long)(i ? i : seq));
    for (size_t i = 0; i < noise; i++) {
        x = x * 1103515245u + 12345u;
        p[n++] = (uint8_t)(x >> 16);
    }
    *len = n;
    return p;
}

/* Pushes batch_like(seq, ...) and keeps a copy of what was pushed in want. */
static void push_like(struct lbw_agentbuf *b, uint64_t seq, size_t lines, size_t noise,
                      uint8_t **want, size_t *want_len)
{
    uint8_t *p = batch_like(seq, lines, noise, want_len);
    *want = malloc(*want_len);
    memcpy(*want, p, *want_len);
    assert_int_equal(lbw_agentbuf_push(b, seq, p, *want_len), 0);
}

/* The sum of the stored (deflated) lengths of seqs first..last held. */
static size_t stored_sum(struct lbw_agentbuf *b, uint64_t first, uint64_t last)
{
    size_t sum = 0, len;
    for (uint64_t s = first; s <= last; s++)
        if (lbw_agentbuf_stored(b, s, &len))
            sum += len;
    return sum;
}

static void buffer_keeps_the_newest(void **state)
{
    struct lbw_agentbuf *b = lbw_agentbuf_new(3, 1000);
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
    assert_int_equal(st.raw_bytes, 30);
    assert_int_equal(st.bytes, stored_sum(b, 20, 40));
    const uint8_t *p = lbw_agentbuf_next(b, 0, &len, &seq);
    assert_int_equal(seq, 20);
    assert_int_equal(len, 10);
    assert_int_equal(p[0], 20);
    assert_int_equal(p[9], 20);
    lbw_agentbuf_next(b, 25, &len, &seq);
    assert_int_equal(seq, 30);
    lbw_agentbuf_next(b, 30, &len, &seq);
    assert_int_equal(seq, 40);
    assert_null(lbw_agentbuf_next(b, 40, &len, &seq));

    assert_int_equal(lbw_agentbuf_push(b, 50, blob(1, 0), 1), 0);
    assert_int_equal(lbw_agentbuf_push(b, 50, blob(1, 0), 1), -1); /* not above 50 */
    assert_int_equal(lbw_agentbuf_push(b, 49, blob(1, 0), 1), -1);
    size_t noisy_len;
    uint8_t *noisy = batch_like(60, 0, 3000, &noisy_len);     /* 3000 bytes deflated too */
    assert_int_equal(lbw_agentbuf_push(b, 60, noisy, noisy_len), 0); /* kept alone */
    lbw_agentbuf_stats(b, &st);
    assert_int_equal(st.batches, 1);
    assert_int_equal(st.oldest, 60);
    assert_int_equal(st.evicted, 50);
    assert_int_equal(st.evictions, 5);
    assert_int_equal(st.pushed, 6);
    assert_true(st.bytes > 1000);

    /* many pushes through a small buffer: the queue compacts, order holds */
    for (uint64_t s = 61; s < 1061; s++)
        assert_int_equal(lbw_agentbuf_push(b, s, blob(1, (uint8_t)s), 1), 0);
    lbw_agentbuf_stats(b, &st);
    assert_int_equal(st.batches, 3);
    assert_int_equal(st.oldest, 1058);
    p = lbw_agentbuf_next(b, 1058, &len, &seq);
    assert_int_equal(seq, 1059);
    assert_int_equal(len, 1);
    assert_int_equal(p[0], (uint8_t)1059);
    assert_true(st.dict_bytes <= 2);    /* two one-byte dictionaries at most */
    lbw_agentbuf_free(b);
    assert_null(lbw_agentbuf_new(0, 10));
    assert_null(lbw_agentbuf_new(10, 0));
}

/* What comes out is byte for byte what went in, across dictionary renewals (every 4 pushes
 * here), for batches of every size from empty to larger than a dictionary, and held in far
 * fewer bytes than pushed. */
static void buffer_round_trips(void **state)
{
    enum { KEEP = 4, PUSHES = 23 };
    struct lbw_agentbuf *b = lbw_agentbuf_new(KEEP, 1u << 20);
    struct lbw_agentbuf_stats st;
    uint8_t *want[PUSHES + 1] = {0};
    size_t want_len[PUSHES + 1], len;
    uint64_t seq;
    (void)state;
    for (uint64_t s = 1; s <= PUSHES; s++) {
        size_t lines = s == 5 ? 0 : s == 9 ? 1200 : 300;   /* empty, > 32 KiB, ~11 KiB */
        push_like(b, s, lines, s % 3 ? 40 : 0, &want[s], &want_len[s]);
        for (uint64_t after = s >= KEEP ? s - KEEP : 0; after < s; after++) {
            const uint8_t *got = lbw_agentbuf_next(b, after, &len, &seq);
            assert_non_null(got);
            assert_int_equal(seq, after + 1);
            assert_int_equal(len, want_len[seq]);
            if (len)
                assert_memory_equal(got, want[seq], len);
        }
        lbw_agentbuf_stats(b, &st);
        assert_int_equal(st.corrupt, 0);
        assert_true(st.dict_bytes <= 2 * 32768u);
    }
    lbw_agentbuf_stats(b, &st);
    assert_int_equal(st.batches, KEEP);
    assert_int_equal(st.bytes, stored_sum(b, 1, PUSHES));
    assert_true(st.bytes * 5 < st.raw_bytes);
    lbw_agentbuf_free(b);
    for (size_t s = 1; s <= PUSHES; s++)
        free(want[s]);
}

/* The byte limit holds the deflated bytes: batches that compress well are kept far beyond
 * what their raw size would allow, ones that do not evict them. */
static void buffer_evicts_by_compressed_bytes(void **state)
{
    enum { LIMIT = 16000 };
    struct lbw_agentbuf *b = lbw_agentbuf_new(100, LIMIT);
    struct lbw_agentbuf_stats st;
    size_t len;
    (void)state;
    for (uint64_t s = 1; s <= 20; s++) {
        uint8_t *p = batch_like(s, 200, 0, &len);
        assert_int_equal(lbw_agentbuf_push(b, s, p, len), 0);
    }
    lbw_agentbuf_stats(b, &st);
    assert_int_equal(st.batches, 20);               /* 20 x ~6.5 KiB raw */
    assert_int_equal(st.evictions, 0);
    assert_true(st.raw_bytes > 8 * LIMIT);
    assert_true(st.bytes <= LIMIT);
    assert_int_equal(st.bytes, stored_sum(b, 1, 20));

    for (uint64_t s = 21; s <= 22; s++) {
        uint8_t *p = batch_like(s, 0, 6000, &len);
        assert_int_equal(lbw_agentbuf_push(b, s, p, len), 0);
    }
    lbw_agentbuf_stats(b, &st);
    assert_true(st.evictions > 0);
    assert_int_equal(st.evicted, st.oldest - 1);
    assert_int_equal(st.newest, 22);
    assert_int_equal(st.bytes, stored_sum(b, st.oldest, 22));
    assert_true(st.bytes <= LIMIT);
    assert_true(st.bytes > LIMIT - 1000);           /* evicted no more than needed */
    lbw_agentbuf_free(b);
}

/* Stored bytes that no longer inflate to exactly the batch pushed are never handed out: a
 * flipped bit (zlib's checksum), a valid stream that inflates to more than the stored length
 * (bounded: nothing is written past it), a valid stream with another dictionary. Each is
 * dropped as corrupt, raising evicted, and the search goes on to the next good one. */
static void buffer_never_serves_damaged_batches(void **state)
{
    struct lbw_agentbuf *b = lbw_agentbuf_new(10, 1u << 20);
    struct lbw_agentbuf_stats st;
    uint8_t *want[6] = {0}, *stored;
    size_t want_len[6], len, stored_len;
    uint64_t seq;
    (void)state;
    for (uint64_t s = 1; s <= 5; s++)
        push_like(b, s, 100, 200, &want[s], &want_len[s]);

    stored = lbw_agentbuf_stored(b, 2, &stored_len);            /* a flipped bit */
    assert_non_null(stored);
    stored[stored_len / 2] ^= 0x10;

    uint8_t longer[4096];                                       /* too long a batch */
    uLongf longer_len = sizeof(longer);
    uint8_t *zeros = calloc(1, want_len[3] + 100);
    assert_int_equal(compress2(longer, &longer_len, zeros, want_len[3] + 100, 1), Z_OK);
    free(zeros);
    stored = lbw_agentbuf_stored(b, 3, &stored_len);
    assert_true(longer_len <= stored_len);
    memcpy(stored, longer, longer_len);

    stored = lbw_agentbuf_stored(b, 4, &stored_len);            /* another dictionary's id */
    stored[2] ^= 0x01;
    assert_null(lbw_agentbuf_stored(b, 6, &stored_len));

    const uint8_t *got = lbw_agentbuf_next(b, 0, &len, &seq);
    assert_int_equal(seq, 1);
    assert_memory_equal(got, want[1], want_len[1]);
    got = lbw_agentbuf_next(b, 1, &len, &seq);
    assert_int_equal(seq, 5);
    assert_int_equal(len, want_len[5]);
    assert_memory_equal(got, want[5], want_len[5]);
    lbw_agentbuf_stats(b, &st);
    assert_int_equal(st.corrupt, 3);
    assert_int_equal(st.batches, 2);
    assert_int_equal(st.oldest, 1);
    assert_int_equal(st.evicted, 4);    /* a node after 1 learns that batches are gone */
    assert_int_equal(st.evictions, 0);
    assert_int_equal(st.bytes, stored_sum(b, 1, 5));
    assert_null(lbw_agentbuf_next(b, 5, &len, &seq));
    lbw_agentbuf_free(b);
    for (size_t s = 1; s <= 5; s++)
        free(want[s]);
}

/* ---- agent.yaml -------------------------------------------------------------------------- */

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
    assert_int_equal(c->ncollectors, 1); /* the kinds on by default: host */
    assert_string_equal(c->collectors[0].kind->name, "host");
    lbw_agentconf_free(c);

    c = load_ok("agent:\n  listen: '[::1]:9000'\n  interval: 2s\n  max_connections: 2\n"
                "  log_level: debug\nbuffer: {batches: 10, size: 1MiB}\n" TLS
                "collectors:\n  sockets: {ports: [443]}\n  host:\n");
    assert_string_equal(c->listen_host, "::1");
    assert_int_equal(c->interval_ms, 2000);
    assert_int_equal(c->max_connections, 2);
    assert_int_equal(c->buffer_batches, 10);
    assert_int_equal(c->buffer_bytes, 1u << 20);
    assert_int_equal(c->ncollectors, 2); /* in the registry's order */
    assert_string_equal(c->collectors[0].kind->name, "host");
    assert_string_equal(c->collectors[1].kind->name, "sockets");
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
    expect_error("agent: {listen: 127.0.0.1:8450}\n" TLS "collectors: {host: {}, x: {}}\n",
                 "agent.yaml:3:24: unknown key 'x' in 'collectors' (expected host, processes, "
                 "sockets, traffic)");
    expect_error("agent: {listen: 127.0.0.1:8450}\n" TLS "collectors: {}\n",
                 "agent.yaml:3:13: collectors: names no collector (built in: host, processes, "
                 "sockets, traffic)");
}

static void example_is_valid(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = fopen("images/agent.example.yaml", "r");
    assert_non_null(f);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        text = realloc(text, len + n + 1);
        memcpy(text + len, chunk, n);
        len += n;
    }
    fclose(f);
    assert_non_null(text);
    text[len] = '\0';
    struct lbw_agentconf *c = load_ok(text); /* its pki/ paths are beside agent.yaml */
    free(text);
    assert_string_equal(c->name, "lb1");
    assert_int_equal(c->ncollectors, 4);
    const char *kinds[] = {"host", "processes", "sockets", "traffic"};
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(c->collectors[i].kind->name, kinds[i]);
    lbw_agentconf_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(seq_follows_the_clock_and_never_goes_back),
        cmocka_unit_test(buffer_keeps_the_newest),
        cmocka_unit_test(buffer_round_trips),
        cmocka_unit_test(buffer_evicts_by_compressed_bytes),
        cmocka_unit_test(buffer_never_serves_damaged_batches),
        cmocka_unit_test(agent_yaml),
        cmocka_unit_test(agent_yaml_errors),
        cmocka_unit_test(example_is_valid),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
