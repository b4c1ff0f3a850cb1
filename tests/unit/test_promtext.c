/* test_promtext.c - the Prometheus text format parser, the allow-list and the emission of
 * scraped samples:
 *   - the captured HAProxy exporter page (tests/fixtures/prometheus/haproxy_metrics.txt)
 *     parsed in full, with totals counted independently and specific values checked;
 *   - every construct of the format (metadata, comments, escapes, empty and trailing-comma
 *     label sets, timestamps, special and exponent values, histograms, summaries, blank lines,
 *     carriage returns);
 *   - malformed input, each with its exact line, column and reason;
 *   - the allow-list and the emitter step (base labels, exported_ renaming, counts);
 *   - a real prometheus-node-exporter on 127.0.0.1, serving a textfile with escapes and a
 *     histogram through its own encoder, parsed in full.
 *
 * Run from the repository root (make unit does): the fixture path is relative.
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

#include "probes/promtext.h"
#include "tests/support/testutil.h"

#define HAPROXY_FIXTURE "tests/fixtures/prometheus/haproxy_metrics.txt"

/* --- collecting samples -------------------------------------------------------------------- */

struct rec {
    char name[128];
    char family[128];
    char help[256];
    int has_help;
    enum lbw_promtext_type type;
    size_t nlabels;
    char lname[LBW_PROMTEXT_LABELS_MAX][32];
    char lvalue[LBW_PROMTEXT_LABELS_MAX][128];
    double value;
    int has_ts;
    int64_t ts;
    unsigned line;
};

struct recs {
    struct rec *v;
    size_t n;
    size_t cap;
    size_t stop_after;  /* return 1 from the callback after this many; 0 = never */
};

static int collect(void *arg, const struct lbw_promtext_sample *s)
{
    struct recs *r = arg;
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 64;
        r->v = realloc(r->v, r->cap * sizeof(r->v[0]));
        assert_non_null(r->v);
    }
    struct rec *x = &r->v[r->n++];
    memset(x, 0, sizeof(*x));
    snprintf(x->name, sizeof(x->name), "%s", s->name);
    snprintf(x->family, sizeof(x->family), "%s", s->family);
    x->has_help = s->help != NULL;
    snprintf(x->help, sizeof(x->help), "%s", s->help ? s->help : "");
    x->type = s->type;
    x->nlabels = s->nlabels;
    for (size_t i = 0; i < s->nlabels; i++) {
        snprintf(x->lname[i], sizeof(x->lname[i]), "%s", s->labels[i].name);
        snprintf(x->lvalue[i], sizeof(x->lvalue[i]), "%s", s->labels[i].value);
    }
    x->value = s->value;
    x->has_ts = s->has_timestamp;
    x->ts = s->timestamp_ms;
    x->line = s->line;
    return r->stop_after && r->n == r->stop_after ? 1 : 0;
}

static void recs_free(struct recs *r)
{
    free(r->v);
    memset(r, 0, sizeof(*r));
}

static int parse(const char *text, struct recs *r, struct lbw_promtext_error *err)
{
    return lbw_promtext_parse(text, strlen(text), collect, r, err);
}

/* Parses text that must be valid; fails the test with the parser's reason otherwise. */
static void parse_ok(const char *text, struct recs *r)
{
    struct lbw_promtext_error err;
    int rc = parse(text, r, &err);
    if (rc != 0)
        fail_msg("parse failed at %u:%u: %s", err.line, err.column, err.reason);
}

static const char *label(const struct rec *x, const char *name)
{
    for (size_t i = 0; i < x->nlabels; i++)
        if (strcmp(x->lname[i], name) == 0)
            return x->lvalue[i];
    return NULL;
}

/* The sample called name whose labels include the given pairs ("k1", "v1", ..., NULL). */
static const struct rec *find(const struct recs *r, const char *name, ...)
{
    for (size_t i = 0; i < r->n; i++) {
        const struct rec *x = &r->v[i];
        if (strcmp(x->name, name) != 0)
            continue;
        int match = 1;
        va_list ap;
        va_start(ap, name);
        for (const char *k = va_arg(ap, const char *); k; k = va_arg(ap, const char *)) {
            const char *want = va_arg(ap, const char *), *have = label(x, k);
            if (!have || strcmp(have, want) != 0)
                match = 0;
        }
        va_end(ap);
        if (match)
            return x;
    }
    fail_msg("no sample %s with those labels", name);
    return NULL;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    assert_true(size > 0);
    rewind(f);
    char *buf = malloc((size_t)size + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    buf[size] = '\0';
    *len = (size_t)size;
    return buf;
}

/* --- the HAProxy capture ------------------------------------------------------------------- */

static size_t distinct_families(const struct recs *r, enum lbw_promtext_type type)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++) {
        if (r->v[i].type != type)
            continue;
        size_t j = 0;
        while (j < i && strcmp(r->v[j].family, r->v[i].family) != 0)
            j++;
        n += j == i;
    }
    return n;
}

static void haproxy_capture_parses_fully(void **state)
{
    (void)state;
    size_t len;
    char *text = read_file(HAPROXY_FIXTURE, &len);
    struct recs r = {0};
    struct lbw_promtext_error err;
    assert_int_equal(lbw_promtext_parse(text, len, collect, &r, &err), 0);

    /* Totals, counted once with grep over the fixture:
     *   grep -v '^#' haproxy_metrics.txt | grep -c .      -> 353 sample lines
     *   grep '^# TYPE' haproxy_metrics.txt | awk '{print $4}' | sort | uniq -c
     *                                                     -> 80 counter, 107 gauge families
     * and every TYPE'd family has samples (comm -3 of the TYPE names and the sample names
     * is empty), so the families seen through samples are all 187 of them. */
    assert_int_equal(r.n, 353);
    assert_int_equal(distinct_families(&r, LBW_PROMTEXT_COUNTER), 80);
    assert_int_equal(distinct_families(&r, LBW_PROMTEXT_GAUGE), 107);
    assert_int_equal(distinct_families(&r, LBW_PROMTEXT_UNTYPED), 0);
    for (size_t i = 0; i < r.n; i++) {
        assert_false(r.v[i].has_ts);
        assert_true(r.v[i].has_help);
        assert_string_equal(r.v[i].family, r.v[i].name);
    }

    const struct rec *x = find(&r, "haproxy_process_requests_total", NULL);
    assert_true(x->value == 57);
    assert_int_equal(x->type, LBW_PROMTEXT_COUNTER);
    assert_int_equal(x->nlabels, 0);
    assert_int_equal(x->line, 36);
    assert_string_equal(x->help, "Total number of requests on this worker process since started");

    x = find(&r, "haproxy_process_uptime_seconds", NULL);
    assert_true(x->value == 12);
    assert_int_equal(x->type, LBW_PROMTEXT_GAUGE);
    assert_int_equal(x->line, 12);

    x = find(&r, "haproxy_frontend_http_requests_total", "proxy", "fe_https", NULL);
    assert_true(x->value == 40);
    assert_int_equal(x->type, LBW_PROMTEXT_COUNTER);
    assert_true(find(&r, "haproxy_frontend_bytes_out_total", "proxy", "stats", NULL)->value ==
                5385);
    assert_true(find(&r, "haproxy_backend_http_responses_total", "proxy", "be_app", "code", "2xx",
                     NULL)->value == 40);
    assert_true(find(&r, "haproxy_backend_max_total_time_seconds", "proxy", "be_app",
                     NULL)->value == 0.004);

    x = find(&r, "haproxy_server_status", "server", "web2", "state", "DOWN", NULL);
    assert_true(x->value == 1);
    assert_int_equal(x->type, LBW_PROMTEXT_GAUGE);
    assert_int_equal(x->nlabels, 3);
    assert_string_equal(x->lname[0], "proxy"); /* labels in the order written */
    assert_string_equal(x->lname[1], "server");
    assert_string_equal(x->lname[2], "state");
    assert_true(find(&r, "haproxy_server_status", "server", "web1", "state", "UP", NULL)->value ==
                1);
    assert_true(find(&r, "haproxy_server_check_status", "server", "web2", "state", "L4CON",
                     NULL)->value == 1);

    x = find(&r, "haproxy_process_build_info", NULL);
    assert_string_equal(label(x, "version"), "2.6.12-1+deb12u4");
    x = find(&r, "haproxy_server_uweight", "server", "web1", NULL);
    assert_string_equal(x->help,
                        "Server's user weight, or sum of active servers' user weights for a "
                        "backend");
    /* The capture has no escapes (grep -c '\\' finds none): they are covered below and by
     * the node exporter test. */
    recs_free(&r);
    free(text);
}

struct key_capture {
    size_t n;
    char key[8][LBW_KEY_MAX];
    double value[8];
    int64_t ts[8];
};

static void capture_key(void *arg, const char *key, int64_t ts, double v)
{
    struct key_capture *c = arg;
    if (c->n < 8) {
        snprintf(c->key[c->n], sizeof(c->key[0]), "%s", key);
        c->value[c->n] = v;
        c->ts[c->n] = ts;
    }
    c->n++;
}

static const struct lbw_label base3[] = {{"target", "lb1"}, {"vantage", "n1"},
                                         {"probe", "haproxy"}};

static void haproxy_capture_emits_allowed(void **state)
{
    (void)state;
    size_t len;
    char *text = read_file(HAPROXY_FIXTURE, &len);
    const char *patterns[] = {"haproxy_process_requests_total", "haproxy_frontend_status",
                              "haproxy_server_*"};
    struct lbw_promtext_allow allow;
    char err[160];
    assert_int_equal(lbw_promtext_allow_init(&allow, patterns, 3, err, sizeof(err)), 0);
    struct key_capture c = {0};
    struct lbw_emitter e = {.fn = capture_key, .arg = &c, .base = base3, .nbase = 3,
                            .ts_ms = 1700000000000};
    struct lbw_promtext_stats st;
    assert_int_equal(lbw_promtext_emit_allowed(text, len, &allow, &e, &st), 0);
    /* grep -c '^haproxy_server_' -> 146, grep -c '^haproxy_frontend_status' -> 4, plus the
     * one haproxy_process_requests_total */
    assert_int_equal(st.emitted, 151);
    assert_int_equal(c.n, 151);
    assert_int_equal(st.skipped, 353 - 151);
    assert_int_equal(st.rejected, 0);
    assert_string_equal(c.key[0], "haproxy_process_requests_total{probe=\"haproxy\","
                                  "target=\"lb1\",vantage=\"n1\"}");
    assert_true(c.value[0] == 57);
    assert_int_equal(c.ts[0], 1700000000000);
    assert_string_equal(c.key[1], "haproxy_frontend_status{probe=\"haproxy\",proxy=\"fe_https\","
                                  "state=\"DOWN\",target=\"lb1\",vantage=\"n1\"}");
    lbw_promtext_allow_free(&allow);
    free(text);
}

/* --- the format, construct by construct ---------------------------------------------------- */

static void metadata_and_comments(void **state)
{
    (void)state;
    struct recs r = {0};
    parse_ok("# a plain comment\n"
             "#\n"
             "#HELP not_metadata this is a comment, as Prometheus reads it\n"
             "# HELPER is a comment too\n"
             "# HELP c_total Requests.\n"
             "# TYPE c_total counter\n"
             "c_total 1\n"
             "# TYPE g gauge\n"
             "# HELP g\n"
             "g 2\n"
             "# TYPE u untyped\n"
             "u 3\n"
             "\t# TYPE\tt\tgauge \t\n"
             "t 4\n"
             "not_metadata 5\n",
             &r);
    assert_int_equal(r.n, 5);
    assert_string_equal(r.v[0].name, "c_total");
    assert_int_equal(r.v[0].type, LBW_PROMTEXT_COUNTER);
    assert_string_equal(r.v[0].help, "Requests.");
    assert_int_equal(r.v[0].line, 7);
    assert_int_equal(r.v[1].type, LBW_PROMTEXT_GAUGE);
    assert_true(r.v[1].has_help);
    assert_string_equal(r.v[1].help, "");
    assert_int_equal(r.v[2].type, LBW_PROMTEXT_UNTYPED);
    assert_false(r.v[2].has_help);
    assert_int_equal(r.v[3].type, LBW_PROMTEXT_GAUGE);
    assert_int_equal(r.v[4].type, LBW_PROMTEXT_UNTYPED); /* "#HELP" was only a comment */
    assert_false(r.v[4].has_help);
    assert_string_equal(lbw_promtext_type_name(LBW_PROMTEXT_HISTOGRAM), "histogram");
    assert_string_equal(lbw_promtext_type_name(LBW_PROMTEXT_SUMMARY), "summary");
    assert_string_equal(lbw_promtext_type_name(LBW_PROMTEXT_UNTYPED), "untyped");
    recs_free(&r);
}

static void family_membership(void **state)
{
    (void)state;
    struct recs r = {0};
    parse_ok("# HELP a First.\n"
             "# TYPE a gauge\n"
             "a 1\n"
             "b 2\n"               /* no metadata: untyped, its own family */
             "a 3\n"               /* still a's family: metadata belongs to the last name */
             "a_bucket 4\n"        /* a gauge has no _bucket series */
             "# TYPE a counter\n"  /* repeated TYPE: the last one wins */
             "a 5\n"
             "# HELP z Zed.\n"     /* a new family forgets a's type and help */
             "a 6\n",
             &r);
    assert_int_equal(r.n, 6);
    assert_int_equal(r.v[0].type, LBW_PROMTEXT_GAUGE);
    assert_string_equal(r.v[0].help, "First.");
    assert_int_equal(r.v[1].type, LBW_PROMTEXT_UNTYPED);
    assert_string_equal(r.v[1].family, "b");
    assert_false(r.v[1].has_help);
    assert_int_equal(r.v[2].type, LBW_PROMTEXT_GAUGE);
    assert_int_equal(r.v[3].type, LBW_PROMTEXT_UNTYPED);
    assert_string_equal(r.v[3].family, "a_bucket");
    assert_int_equal(r.v[4].type, LBW_PROMTEXT_COUNTER);
    assert_string_equal(r.v[4].help, "First.");
    assert_int_equal(r.v[5].type, LBW_PROMTEXT_UNTYPED);
    assert_false(r.v[5].has_help);
    recs_free(&r);
}

static void escapes_in_labels_and_help(void **state)
{
    (void)state;
    struct recs r = {0};
    parse_ok("# HELP m Back\\\\slash, new\\nline and \\\"quote\\\".\n"
             "m{path=\"C:\\\\dir\",say=\"\\\"hi\\\"\",two=\"a\\nb\",utf8=\"gr\xc3\xbc\xc3\x9f "
             "\xe2\x82\xac \xf0\x9f\x98\x80\",raw=\"tab\there\"} 1\n",
             &r);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.v[0].help, "Back\\slash, new\nline and \"quote\".");
    assert_string_equal(label(&r.v[0], "path"), "C:\\dir");
    assert_string_equal(label(&r.v[0], "say"), "\"hi\"");
    assert_string_equal(label(&r.v[0], "two"), "a\nb");
    assert_string_equal(label(&r.v[0], "utf8"), "gr\xc3\xbc\xc3\x9f \xe2\x82\xac \xf0\x9f\x98\x80");
    assert_string_equal(label(&r.v[0], "raw"), "tab\there");
    recs_free(&r);
}

static void label_set_forms(void **state)
{
    (void)state;
    struct recs r = {0};
    parse_ok("empty{} 1\n"
             "trailing{a=\"1\",} 2\n"
             "spaced { a = \"1\" , b=\"2\" , } 3\n"
             "tight{a=\"\"}4\n"
             "colon:name:x{_under=\"x\",A9=\"y\"} 5\n",
             &r);
    assert_int_equal(r.n, 5);
    assert_int_equal(r.v[0].nlabels, 0);
    assert_int_equal(r.v[1].nlabels, 1);
    assert_string_equal(label(&r.v[1], "a"), "1");
    assert_int_equal(r.v[2].nlabels, 2);
    assert_string_equal(label(&r.v[2], "b"), "2");
    assert_true(r.v[2].value == 3);
    assert_string_equal(label(&r.v[3], "a"), "");
    assert_true(r.v[3].value == 4);
    assert_string_equal(r.v[4].name, "colon:name:x");
    assert_string_equal(label(&r.v[4], "A9"), "y");
    recs_free(&r);
}

static void values_and_timestamps(void **state)
{
    (void)state;
    struct recs r = {0};
    parse_ok("a NaN\nb nan\nc +Inf\nd -Inf\ne Inf\nf inf\ng -infinity\nh 1e3\ni 1.5E-3\n"
             "j -2.5e+2\nk .5\nl 5.\nm +1\nn -0\no 1e-400\np 123456789012345678901234567890\n"
             "q 1 1700000000000\nr 2 -5\ns 3 9223372036854775807\nt 4 -9223372036854775808\n"
             "u 5\t \t 6 \t\n",
             &r);
    assert_int_equal(r.n, 21);
    assert_true(isnan(r.v[0].value));
    assert_true(isnan(r.v[1].value));
    assert_true(isinf(r.v[2].value) && r.v[2].value > 0);
    assert_true(isinf(r.v[3].value) && r.v[3].value < 0);
    assert_true(isinf(r.v[4].value) && r.v[4].value > 0);
    assert_true(isinf(r.v[5].value) && r.v[5].value > 0);
    assert_true(isinf(r.v[6].value) && r.v[6].value < 0);
    assert_true(r.v[7].value == 1000);
    assert_true(r.v[8].value == 0.0015);
    assert_true(r.v[9].value == -250);
    assert_true(r.v[10].value == 0.5);
    assert_true(r.v[11].value == 5);
    assert_true(r.v[12].value == 1);
    assert_true(r.v[13].value == 0 && signbit(r.v[13].value));
    assert_true(r.v[14].value == 0); /* underflow rounds to zero, as in Go */
    assert_true(r.v[15].value == 123456789012345678901234567890.0);
    for (size_t i = 0; i < 16; i++)
        assert_false(r.v[i].has_ts);
    assert_true(r.v[16].has_ts);
    assert_int_equal(r.v[16].ts, 1700000000000);
    assert_int_equal(r.v[17].ts, -5);
    assert_int_equal(r.v[18].ts, INT64_MAX);
    assert_int_equal(r.v[19].ts, INT64_MIN);
    assert_true(r.v[20].value == 5);
    assert_int_equal(r.v[20].ts, 6);
    recs_free(&r);
}

static void histogram_and_summary(void **state)
{
    (void)state;
    struct recs r = {0};
    parse_ok("# HELP rpc_seconds RPC latency.\n"
             "# TYPE rpc_seconds histogram\n"
             "rpc_seconds_bucket{code=\"200\",le=\"0.05\"} 1\n"
             "rpc_seconds_bucket{code=\"200\",le=\"1e-1\"} 2\n"
             "rpc_seconds_bucket{code=\"200\",le=\"+Inf\"} 3\n"
             "rpc_seconds_sum{code=\"200\"} 0.25\n"
             "rpc_seconds_count{code=\"200\"} 3\n"
             "# TYPE gc_seconds summary\n"
             "gc_seconds{quantile=\"0\"} 0.001\n"
             "gc_seconds{quantile=\"0.5\"} 0.002\n"
             "gc_seconds{quantile=\"1\"} NaN\n"
             "gc_seconds_sum 0.01\n"
             "gc_seconds_count 5\n"
             "gc_seconds_bucket 1\n", /* a summary has no buckets: its own untyped family */
             &r);
    assert_int_equal(r.n, 11);
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(r.v[i].family, "rpc_seconds");
        assert_int_equal(r.v[i].type, LBW_PROMTEXT_HISTOGRAM);
        assert_string_equal(r.v[i].help, "RPC latency.");
    }
    assert_string_equal(r.v[0].name, "rpc_seconds_bucket");
    assert_string_equal(label(&r.v[2], "le"), "+Inf");
    assert_string_equal(r.v[3].name, "rpc_seconds_sum");
    assert_string_equal(r.v[4].name, "rpc_seconds_count");
    for (size_t i = 5; i < 10; i++) {
        assert_string_equal(r.v[i].family, "gc_seconds");
        assert_int_equal(r.v[i].type, LBW_PROMTEXT_SUMMARY);
        assert_false(r.v[i].has_help);
    }
    assert_string_equal(label(&r.v[6], "quantile"), "0.5");
    assert_true(isnan(r.v[7].value));
    assert_string_equal(r.v[10].family, "gc_seconds_bucket");
    assert_int_equal(r.v[10].type, LBW_PROMTEXT_UNTYPED);
    recs_free(&r);
}

static void blank_lines_and_line_ends(void **state)
{
    (void)state;
    struct recs r = {0};
    parse_ok("\n\n   \n\t\n  a 1\n\n# comment with a carriage return\r\n"
             "# HELP b Help keeps a carriage return\r\n"
             "b{v=\"cr\rinside\"} 2\n"
             "c 3", /* no final newline */
             &r);
    assert_int_equal(r.n, 3);
    assert_string_equal(r.v[0].name, "a");
    assert_int_equal(r.v[0].line, 5);
    assert_string_equal(r.v[1].help, "Help keeps a carriage return\r");
    assert_string_equal(label(&r.v[1], "v"), "cr\rinside");
    assert_string_equal(r.v[2].name, "c");
    assert_int_equal(r.v[2].line, 10);
    recs_free(&r);

    struct recs none = {0};
    assert_int_equal(lbw_promtext_parse("", 0, collect, &none, NULL), 0);
    assert_int_equal(lbw_promtext_parse(NULL, 0, collect, &none, NULL), 0);
    parse_ok("\n# only metadata\n# TYPE x counter\n", &none);
    assert_int_equal(none.n, 0);
    recs_free(&none);
}

/* A line of exactly LBW_PROMTEXT_LINE_MAX bytes parses; one more byte is an error. */
static char *long_line(size_t length)
{
    const char *head = "m{a=\"", *tail = "\"} 1";
    size_t fill = length - strlen(head) - strlen(tail);
    char *s = malloc(length + 16);
    assert_non_null(s);
    strcpy(s, "ok 1\n");
    strcat(s, head);
    memset(s + strlen(s), 'x', fill);
    s[5 + strlen(head) + fill] = '\0';
    strcat(s, tail);
    strcat(s, "\n");
    return s;
}

static void line_length_limit(void **state)
{
    (void)state;
    struct recs r = {0};
    struct lbw_promtext_error err;
    char *fits = long_line(LBW_PROMTEXT_LINE_MAX);
    assert_int_equal(parse(fits, &r, &err), 0);
    assert_int_equal(r.n, 2);
    assert_int_equal(strlen(label(&r.v[1], "a")) > 0, 1);
    recs_free(&r);
    char *over = long_line(LBW_PROMTEXT_LINE_MAX + 1);
    assert_int_equal(parse(over, &r, &err), -1);
    assert_int_equal(err.line, 2);
    assert_int_equal(err.column, LBW_PROMTEXT_LINE_MAX + 1);
    assert_string_equal(err.reason, "line longer than 16384 bytes");
    assert_int_equal(r.n, 1); /* the line before it was delivered */
    recs_free(&r);
    /* the same without a final newline */
    over[strlen(over) - 1] = '\0';
    assert_int_equal(parse(over, &r, &err), -1);
    assert_int_equal(err.column, LBW_PROMTEXT_LINE_MAX + 1);
    recs_free(&r);
    free(fits);
    free(over);
}

static void label_count_limit(void **state)
{
    (void)state;
    char text[1024];
    size_t n = 0;
    n += (size_t)snprintf(text + n, sizeof(text) - n, "m{");
    for (int i = 0; i < LBW_PROMTEXT_LABELS_MAX; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "l%02d=\"v\",", i);
    size_t col17 = n + 1;
    snprintf(text + n, sizeof(text) - n, "} 1\n");
    struct recs r = {0};
    parse_ok(text, &r);
    assert_int_equal(r.v[0].nlabels, LBW_PROMTEXT_LABELS_MAX);
    recs_free(&r);
    snprintf(text + n, sizeof(text) - n, "l16=\"v\"} 1\n");
    struct lbw_promtext_error err;
    assert_int_equal(parse(text, &r, &err), -1);
    assert_int_equal(err.line, 1);
    assert_int_equal(err.column, col17);
    assert_string_equal(err.reason, "more than 16 labels on one sample (lbwatch's limit)");
    recs_free(&r);
}

/* --- malformed input ------------------------------------------------------------------------ */

struct bad {
    const char *text;
    size_t len;        /* 0: strlen */
    unsigned line, column;
    const char *reason;
};

static const struct bad bad_inputs[] = {
    /* escapes */
    {"m{a=\"x\\q\"} 1\n", 0, 1, 7, "invalid escape in label value (only \\\\, \\\" and \\n)"},
    {"# HELP m a \\t b\n", 0, 1, 12, "invalid escape in HELP text (only \\\\ and \\n)"},
    {"# HELP m ends in \\\n", 0, 1, 18, "backslash at the end of the HELP text"},
    /* label values */
    {"ok 1\nm{a=\"xyz} 1\n", 0, 2, 5, "unterminated label value"},
    {"m{a=\"xyz\\\"} 1\n", 0, 1, 5, "unterminated label value"},
    {"m{a=\"x\\\n\"} 1\n", 0, 1, 5, "unterminated label value"},
    {"m{a=1} 1\n", 0, 1, 5, "expected '\"' to open the label value, found '1'"},
    {"m{a=\"\xc3\x28\"} 1\n", 0, 1, 6, "label value is not valid UTF-8"},
    {"m{a=\"ok\xed\xa0\x80\"} 1\n", 0, 1, 8, "label value is not valid UTF-8"},
    {"m{a=\"\xc0\xaf\"} 1\n", 0, 1, 6, "label value is not valid UTF-8"},
    {"# HELP m bad \xff byte\n", 0, 1, 14, "HELP text is not valid UTF-8"},
    /* label names and sets */
    {"m{a=\"1\",a=\"2\"} 1\n", 0, 1, 9, "duplicate label name \"a\""},
    {"m{b=\"1\", c=\"2\",b=\"3\"} 1\n", 0, 1, 16, "duplicate label name \"b\""},
    {"m{__name__=\"x\"} 1\n", 0, 1, 3, "label name __name__ is reserved"},
    {"m{1a=\"x\"} 1\n", 0, 1, 3, "expected a label name or '}', found '1'"},
    {"m{a:b=\"x\"} 1\n", 0, 1, 4, "expected '=' after the label name, found ':'"},
    {"m{a} 1\n", 0, 1, 4, "expected '=' after the label name, found '}'"},
    {"m{a=\"1\" b=\"2\"} 1\n", 0, 1, 9, "expected ',' or '}' after the label value, found 'b'"},
    {"m{a=\"1\",,} 1\n", 0, 1, 9, "expected a label name or '}', found ','"},
    {"m{,} 1\n", 0, 1, 3, "expected a label name or '}', found ','"},
    {"m{a=\"1\"\n", 0, 1, 8, "expected ',' or '}' after the label value, found the end of the line"},
    {"m{\n", 0, 1, 3, "expected a label name or '}', found the end of the line"},
    /* metric names */
    {"9m 1\n", 0, 1, 1, "expected a metric name, found '9'"},
    {"m-x 1\n", 0, 1, 2, "expected a blank or '{' after the metric name, found '-'"},
    {"{a=\"1\"} 1\n", 0, 1, 1, "expected a metric name, found '{'"},
    {"  \xc3\xa9t\xc3\xa9 1\n", 0, 1, 3, "expected a metric name, found byte 0xc3"},
    {"# TYPE 1m counter\n", 0, 1, 8, "expected a metric name after TYPE, found '1'"},
    {"# HELP \n", 0, 1, 8, "expected a metric name after HELP, found the end of the line"},
    {"# HELP m-x text\n", 0, 1, 9,
     "expected a blank or the end of the line after the metric name, found '-'"},
    /* types */
    {"# TYPE m countr\n", 0, 1, 10, "unknown metric type \"countr\""},
    {"# TYPE m Counter\n", 0, 1, 10, "unknown metric type \"Counter\""},
    {"# TYPE m\n", 0, 1, 9, "missing metric type after the metric name"},
    {"# TYPE m counter extra\n", 0, 1, 18,
     "expected the end of the line after the metric type, found 'e'"},
    /* values and timestamps */
    {"m\n", 0, 1, 2, "expected a value, found the end of the line"},
    {"m{} \n", 0, 1, 5, "expected a value, found the end of the line"},
    {"m 12abc\n", 0, 1, 3, "invalid value \"12abc\""},
    {"m 0x1p3\n", 0, 1, 3, "invalid value \"0x1p3\""},
    {"m 0x10\n", 0, 1, 3, "invalid value \"0x10\""},
    {"m 1_000\n", 0, 1, 3, "invalid value \"1_000\""},
    {"m +NaN\n", 0, 1, 3, "invalid value \"+NaN\""},
    {"m 1e\n", 0, 1, 3, "invalid value \"1e\""},
    {"m .\n", 0, 1, 3, "invalid value \".\""},
    {"m infinit\n", 0, 1, 3, "invalid value \"infinit\""},
    {"m 1,5\n", 0, 1, 3, "invalid value \"1,5\""},
    {"m 1e400\n", 0, 1, 3, "value \"1e400\" is out of range"},
    {"m -1e309\n", 0, 1, 3, "value \"-1e309\" is out of range"},
    {"m 1 12.5\n", 0, 1, 5, "invalid timestamp \"12.5\" (expected integer milliseconds)"},
    {"m 1 +5\n", 0, 1, 5, "invalid timestamp \"+5\" (expected integer milliseconds)"},
    {"m 1 -\n", 0, 1, 5, "invalid timestamp \"-\" (expected integer milliseconds)"},
    {"m 1 9223372036854775808\n", 0, 1, 5,
     "timestamp \"9223372036854775808\" is out of the int64 range"},
    {"m 1 -9223372036854775809\n", 0, 1, 5,
     "timestamp \"-9223372036854775809\" is out of the int64 range"},
    {"m 1 2 3\n", 0, 1, 7, "expected the end of the line after the timestamp, found '3'"},
    {"m 1 2 # {trace=\"x\"} 1\n", 0, 1, 7,
     "expected the end of the line after the timestamp, found '#'"},
    /* histograms and summaries */
    {"# TYPE h histogram\nh_bucket{le=\"abc\"} 1\n", 0, 2, 13,
     "le label value \"abc\" is not a number"},
    {"# TYPE h histogram\nh_bucket{x=\"1\"} 1\n", 0, 2, 1,
     "bucket sample of histogram \"h\" without a \"le\" label"},
    {"# TYPE s summary\ns{quantile=\"half\"} 1\n", 0, 2, 12,
     "quantile label value \"half\" is not a number"},
    {"# TYPE s summary\ns 1\n", 0, 2, 1,
     "quantile sample of summary \"s\" without a \"quantile\" label"},
    /* carriage returns */
    {"m 1\r\n", 0, 1, 4, "carriage return: lines must end in \\n alone"},
    {"m 1 1000\r\n", 0, 1, 9, "carriage return: lines must end in \\n alone"},
    {"m 1 \r\n", 0, 1, 5, "carriage return: lines must end in \\n alone"},
    {"# TYPE m counter\r\nm 1\r\n", 0, 1, 17, "carriage return: lines must end in \\n alone"},
    {"m\r 1\n", 0, 1, 2,
     "expected a blank or '{' after the metric name, found a carriage return (lines must end "
     "in \\n alone)"},
    /* NUL bytes */
    {"m 1\nm{a=\"x\0y\"} 1\n", 17, 2, 7, "NUL byte"},
    {"# comment \0\n", 12, 1, 11, "NUL byte"},
    {"m 1\n\0", 5, 2, 1, "NUL byte"},
};

static void rejects_malformed_input(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_inputs) / sizeof(bad_inputs[0]); i++) {
        const struct bad *b = &bad_inputs[i];
        struct recs r = {0};
        struct lbw_promtext_error err;
        size_t len = b->len ? b->len : strlen(b->text);
        int rc = lbw_promtext_parse(b->text, len, collect, &r, &err);
        if (rc != -1)
            fail_msg("case %zu (%s) returned %d", i, b->text, rc);
        if (err.line != b->line || err.column != b->column || strcmp(err.reason, b->reason))
            fail_msg("case %zu (%s): got %u:%u \"%s\", want %u:%u \"%s\"", i, b->text, err.line,
                     err.column, err.reason, b->line, b->column, b->reason);
        recs_free(&r);
    }
}

static void samples_before_an_error_are_delivered(void **state)
{
    (void)state;
    struct recs r = {0};
    struct lbw_promtext_error err;
    assert_int_equal(parse("a 1\nb 2\nc oops\nd 4\n", &r, &err), -1);
    assert_int_equal(r.n, 2);
    assert_int_equal(err.line, 3);
    assert_int_equal(lbw_promtext_parse("a 1\nc oops\n", 11, collect, &r, NULL), -1);
    recs_free(&r);
}

static void callback_stops_the_parse(void **state)
{
    (void)state;
    struct recs r = {.stop_after = 2};
    struct lbw_promtext_error err;
    assert_int_equal(parse("a 1\nb 2\nc 3\nd garbage\n", &r, &err), 1);
    assert_int_equal(r.n, 2);
    recs_free(&r);
}

/* --- allow-list and emission ---------------------------------------------------------------- */

static void allow_list_patterns(void **state)
{
    (void)state;
    struct lbw_promtext_allow a;
    char err[160];
    const char *bad[][1] = {{""}, {"a*b"}, {"9x"}, {"*x"}, {"foo**"}, {"a-b*"}, {"a b"}};
    const char *why[] = {
        "allow pattern 1 \"\": empty",
        "allow pattern 1 \"a*b\": '*' is allowed only at the end",
        "allow pattern 1 \"9x\": not a metric name",
        "allow pattern 1 \"*x\": '*' is allowed only at the end",
        "allow pattern 1 \"foo**\": '*' is allowed only at the end",
        "allow pattern 1 \"a-b*\": not the start of a metric name",
        "allow pattern 1 \"a b\": not a metric name",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(lbw_promtext_allow_init(&a, bad[i], 1, err, sizeof(err)), -1);
        assert_string_equal(err, why[i]);
        assert_int_equal(a.n, 0);
    }
    const char *second_bad[] = {"ok", "bad-"};
    assert_int_equal(lbw_promtext_allow_init(&a, second_bad, 2, err, sizeof(err)), -1);
    assert_string_equal(err, "allow pattern 2 \"bad-\": not a metric name");

    const char *some[] = {"up", "haproxy_backend_*", "node_cpu:*"};
    assert_int_equal(lbw_promtext_allow_init(&a, some, 3, err, sizeof(err)), 0);
    assert_true(lbw_promtext_allow_name(&a, "up"));
    assert_false(lbw_promtext_allow_name(&a, "upx"));
    assert_false(lbw_promtext_allow_name(&a, "u"));
    assert_true(lbw_promtext_allow_name(&a, "haproxy_backend_status"));
    assert_true(lbw_promtext_allow_name(&a, "haproxy_backend_"));
    assert_false(lbw_promtext_allow_name(&a, "haproxy_backendx"));
    assert_false(lbw_promtext_allow_name(&a, "haproxy_frontend_status"));
    assert_true(lbw_promtext_allow_name(&a, "node_cpu:rate"));
    lbw_promtext_allow_free(&a);

    const char *all[] = {"*"};
    assert_int_equal(lbw_promtext_allow_init(&a, all, 1, err, sizeof(err)), 0);
    assert_true(lbw_promtext_allow_name(&a, "anything_at_all"));
    lbw_promtext_allow_free(&a);
    assert_int_equal(lbw_promtext_allow_init(&a, NULL, 0, err, sizeof(err)), 0);
    assert_false(lbw_promtext_allow_name(&a, "up"));
    lbw_promtext_allow_free(&a);
}

static const char family_text[] = "# TYPE rpc_seconds histogram\n"
                                  "rpc_seconds_bucket{le=\"1\"} 1\n"
                                  "rpc_seconds_bucket{le=\"+Inf\"} 2\n"
                                  "rpc_seconds_sum 0.5\n"
                                  "rpc_seconds_count 2\n"
                                  "# TYPE gc summary\n"
                                  "gc{quantile=\"0.5\"} 0.1\n"
                                  "gc_sum 1\n"
                                  "gc_count 3\n"
                                  "plain_bucket 1\n"
                                  "plain_sum 1\n"
                                  "other 1\n";

static struct lbw_promtext_stats emit_with(const char *const *patterns, size_t n,
                                           struct key_capture *c)
{
    struct lbw_promtext_allow a;
    char err[160];
    assert_int_equal(lbw_promtext_allow_init(&a, patterns, n, err, sizeof(err)), 0);
    struct lbw_emitter e = {.fn = capture_key, .arg = c, .base = base3, .nbase = 3, .ts_ms = 7};
    struct lbw_promtext_stats st;
    assert_int_equal(lbw_promtext_emit_allowed(family_text, strlen(family_text), &a, &e, &st), 0);
    lbw_promtext_allow_free(&a);
    return st;
}

static void allow_list_matches_families(void **state)
{
    (void)state;
    struct key_capture c = {0};
    const char *hist[] = {"rpc_seconds", "gc", "plain"};
    struct lbw_promtext_stats st = emit_with(hist, 3, &c);
    /* all four histogram series, all three summary series; plain_* are untyped and not "plain" */
    assert_int_equal(st.emitted, 7);
    assert_int_equal(st.skipped, 3);
    assert_int_equal(st.rejected, 0);
    assert_string_equal(c.key[0], "rpc_seconds_bucket{le=\"1\",probe=\"haproxy\",target=\"lb1\","
                                  "vantage=\"n1\"}");
    assert_string_equal(c.key[2], "rpc_seconds_sum{probe=\"haproxy\",target=\"lb1\","
                                  "vantage=\"n1\"}");
    assert_string_equal(c.key[4], "gc{probe=\"haproxy\",quantile=\"0.5\",target=\"lb1\","
                                  "vantage=\"n1\"}");

    struct key_capture c2 = {0};
    const char *prefixes[] = {"plain_*", "rpc_seconds_c*", "gc_*"};
    st = emit_with(prefixes, 3, &c2);
    /* plain_bucket, plain_sum, rpc_seconds_count, gc_sum, gc_count: prefixes match names,
     * and the families "rpc_seconds" and "gc" do not start with the prefixes */
    assert_int_equal(st.emitted, 5);
    assert_int_equal(st.skipped, 5);

    struct key_capture c3 = {0};
    st = emit_with(NULL, 0, &c3);
    assert_int_equal(st.emitted, 0);
    assert_int_equal(st.skipped, 10);
    assert_int_equal(c3.n, 0);
}

static void emission_merges_and_renames_labels(void **state)
{
    (void)state;
    const char *text = "m{target=\"scraped\",vantage=\"\",code=\"200\"} 1 123\n"
                       "n{target=\"a\",exported_target=\"b\"} NaN\n"
                       "o{probe=\"p\",empty=\"\"} 3\n";
    const char *all[] = {"*"};
    struct lbw_promtext_allow a;
    assert_int_equal(lbw_promtext_allow_init(&a, all, 1, NULL, 0), 0);
    struct key_capture c = {0};
    struct lbw_emitter e = {.fn = capture_key, .arg = &c, .base = base3, .nbase = 3, .ts_ms = 99};
    struct lbw_promtext_stats st;
    assert_int_equal(lbw_promtext_emit_allowed(text, strlen(text), &a, &e, &st), 0);
    assert_int_equal(st.emitted, 3);
    /* target renamed; the empty vantage dropped (empty means absent); the scraped timestamp
     * replaced by the emitter's */
    assert_string_equal(c.key[0], "m{code=\"200\",exported_target=\"scraped\",probe=\"haproxy\","
                                  "target=\"lb1\",vantage=\"n1\"}");
    assert_int_equal(c.ts[0], 99);
    /* exported_target is taken by a scraped label: one more prefix */
    assert_string_equal(c.key[1], "n{exported_exported_target=\"a\",exported_target=\"b\","
                                  "probe=\"haproxy\",target=\"lb1\",vantage=\"n1\"}");
    assert_true(isnan(c.value[1]));
    assert_string_equal(c.key[2], "o{exported_probe=\"p\",probe=\"haproxy\",target=\"lb1\","
                                  "vantage=\"n1\"}");
    lbw_promtext_allow_free(&a);
}

static void emission_rejects_what_cannot_be_a_series(void **state)
{
    (void)state;
    /* 13 scraped labels + 3 base = 16 fit; 14 + 3 do not */
    char text[4096];
    size_t n = 0;
    n += (size_t)snprintf(text + n, sizeof(text) - n, "ok 1\nfits{");
    for (int i = 0; i < 13; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "l%02d=\"v\",", i);
    n += (size_t)snprintf(text + n, sizeof(text) - n, "} 1\ntoo_many{");
    for (int i = 0; i < 14; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "l%02d=\"v\",", i);
    n += (size_t)snprintf(text + n, sizeof(text) - n, "} 2\nlong{v=\"");
    for (int i = 0; i < 500; i++)
        text[n++] = 'x';
    n += (size_t)snprintf(text + n, sizeof(text) - n, "\"} 3\nskipped 4\nlast 5\n");

    const char *patterns[] = {"ok", "fits", "too_many", "long", "last"};
    struct lbw_promtext_allow a;
    assert_int_equal(lbw_promtext_allow_init(&a, patterns, 5, NULL, 0), 0);
    struct key_capture c = {0};
    struct lbw_emitter e = {.fn = capture_key, .arg = &c, .base = base3, .nbase = 3, .ts_ms = 1};
    struct lbw_promtext_stats st;
    assert_int_equal(lbw_promtext_emit_allowed(text, n, &a, &e, &st), 0);
    assert_int_equal(st.emitted, 3);
    assert_int_equal(st.rejected, 2);
    assert_int_equal(st.skipped, 1);
    assert_int_equal(st.first_rejected_line, 3);
    assert_string_equal(st.first_rejected, "too_many: more than 16 labels with the base labels");
    assert_int_equal(c.n, 3);
    assert_string_equal(c.key[2], "last{probe=\"haproxy\",target=\"lb1\",vantage=\"n1\"}");
    lbw_promtext_allow_free(&a);

    /* the key-size rejection alone */
    const char *only_long[] = {"long"};
    assert_int_equal(lbw_promtext_allow_init(&a, only_long, 1, NULL, 0), 0);
    struct key_capture c2 = {0};
    e.arg = &c2;
    assert_int_equal(lbw_promtext_emit_allowed(text, n, &a, &e, &st), 0);
    assert_int_equal(st.rejected, 1);
    assert_int_equal(st.first_rejected_line, 4);
    assert_string_equal(st.first_rejected, "long: series key longer than 511 bytes");
    assert_int_equal(c2.n, 0);
    lbw_promtext_allow_free(&a);
}

static void emission_of_malformed_text_emits_nothing(void **state)
{
    (void)state;
    const char *text = "a 1\nb 2\nc{x=\"1\" 3\n";
    const char *all[] = {"*"};
    struct lbw_promtext_allow a;
    assert_int_equal(lbw_promtext_allow_init(&a, all, 1, NULL, 0), 0);
    struct key_capture c = {0};
    struct lbw_emitter e = {.fn = capture_key, .arg = &c, .base = base3, .nbase = 3, .ts_ms = 1};
    struct lbw_promtext_stats st;
    assert_int_equal(lbw_promtext_emit_allowed(text, strlen(text), &a, &e, &st), -1);
    assert_int_equal(c.n, 0);
    assert_int_equal(st.emitted, 0);
    assert_int_equal(st.error.line, 3);
    assert_int_equal(st.error.column, 9);
    assert_string_equal(st.error.reason,
                        "expected ',' or '}' after the label value, found '3'");
    lbw_promtext_allow_free(&a);
}

/* The check alone gives the bare reason, for callers that say where the pattern is. */
static void pattern_check_reasons(void **state)
{
    (void)state;
    char why[96];
    assert_int_equal(lbw_promtext_pattern_check("node_load1", why, sizeof(why)), 0);
    assert_int_equal(lbw_promtext_pattern_check("node_*", why, sizeof(why)), 0);
    assert_int_equal(lbw_promtext_pattern_check("*", why, sizeof(why)), 0);
    assert_int_equal(lbw_promtext_pattern_check("", why, sizeof(why)), -1);
    assert_string_equal(why, "empty");
    assert_int_equal(lbw_promtext_pattern_check("a*b", why, sizeof(why)), -1);
    assert_string_equal(why, "'*' is allowed only at the end");
    assert_int_equal(lbw_promtext_pattern_check("9x", why, sizeof(why)), -1);
    assert_string_equal(why, "not a metric name");
    assert_int_equal(lbw_promtext_pattern_check("a-*", NULL, 0), -1);
}

static void reserved_names_and_patterns(void **state)
{
    (void)state;
    assert_true(lbw_promtext_name_reserved("probe_success"));
    assert_true(lbw_promtext_name_reserved("lbwatch_probe_error_info"));
    assert_true(lbw_promtext_name_reserved("probe_"));
    assert_false(lbw_promtext_name_reserved("probe"));
    assert_false(lbw_promtext_name_reserved("probes_total"));
    assert_false(lbw_promtext_name_reserved("lbwatchx"));
    assert_false(lbw_promtext_name_reserved("node_probe_success"));

    static const char *const reserved[] = {
        "*", "p*", "pr*", "probe*", "probe_*", "probe_success", "probe_ssl_*", "l*",
        "lbw*", "lbwatch*", "lbwatch_*", "lbwatch_scrape_samples", "lbwatch_tls_*",
    };
    static const char *const free_to_use[] = {
        "node_*", "up", "probe", "probes_total", "probex*", "lbwatch", "lbwatchd_*",
        "lb_*", "pa*", "process_*", "q*",
    };
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (!lbw_promtext_pattern_reserved(reserved[i]))
            fail_msg("%s should be reserved", reserved[i]);
    for (size_t i = 0; i < sizeof(free_to_use) / sizeof(free_to_use[0]); i++)
        if (lbw_promtext_pattern_reserved(free_to_use[i]))
            fail_msg("%s should not be reserved", free_to_use[i]);
}

/* An allow-list that lets probe_* or lbwatch_* through still never shadows lbwatch's own
 * series: such samples are rejected, counted and explained. */
static void emission_rejects_reserved_names(void **state)
{
    (void)state;
    const char *text = "up 1\n"
                       "probe_success 0\n"
                       "# TYPE lbwatch_x histogram\n"
                       "lbwatch_x_bucket{le=\"+Inf\"} 1\n"
                       "lbwatch_x_count 1\n"
                       "probe 2\n";
    const char *all[] = {"*"};
    struct lbw_promtext_allow a;
    assert_int_equal(lbw_promtext_allow_init(&a, all, 1, NULL, 0), 0);
    struct key_capture c = {0};
    struct lbw_emitter e = {.fn = capture_key, .arg = &c, .base = base3, .nbase = 3, .ts_ms = 1};
    struct lbw_promtext_stats st;
    assert_int_equal(lbw_promtext_emit_allowed(text, strlen(text), &a, &e, &st), 0);
    assert_int_equal(st.emitted, 2);
    assert_int_equal(st.rejected, 3);
    assert_int_equal(st.skipped, 0);
    assert_int_equal(st.first_rejected_line, 2);
    assert_string_equal(st.first_rejected,
                        "probe_success: a name of lbwatch's own (probe_*, lbwatch_*)");
    assert_int_equal(c.n, 2);
    assert_string_equal(c.key[0], "up{probe=\"haproxy\",target=\"lb1\",vantage=\"n1\"}");
    assert_string_equal(c.key[1], "probe{probe=\"haproxy\",target=\"lb1\",vantage=\"n1\"}");
    lbw_promtext_allow_free(&a);
}

/* --- a real prometheus-node-exporter ------------------------------------------------------- */

static const char textfile[] =
    "# HELP lbw_test_escapes Help with a backslash \\\\ and a newline \\n in it.\n"
    "# TYPE lbw_test_escapes gauge\n"
    "lbw_test_escapes{path=\"C:\\\\dir\",quote=\"say \\\"hi\\\"\",nl=\"a\\nb\"} 42\n"
    "# HELP lbw_test_latency_seconds Latency.\n"
    "# TYPE lbw_test_latency_seconds histogram\n"
    "lbw_test_latency_seconds_bucket{le=\"0.1\"} 1\n"
    "lbw_test_latency_seconds_bucket{le=\"1\"} 3\n"
    "lbw_test_latency_seconds_bucket{le=\"+Inf\"} 4\n"
    "lbw_test_latency_seconds_sum 2.5\n"
    "lbw_test_latency_seconds_count 4\n";

static struct {
    char dir[256];
    uint16_t port;
} G;

static int exporter_teardown(void **state)
{
    (void)state;
    tu_stop_all();
    if (G.dir[0]) {
        tu_rmrf(G.dir);
        G.dir[0] = '\0';
    }
    return 0;
}

static int exporter_setup(void **state)
{
    char path[300], listen[64], textdir[300], log[300];
    if (tu_tmpdir("lbw-promtext", G.dir, sizeof(G.dir)) != 0)
        return -1;
    chmod(G.dir, 0755);
    snprintf(path, sizeof(path), "%s/lbw.prom", G.dir);
    snprintf(textdir, sizeof(textdir), "--collector.textfile.directory=%s", G.dir);
    snprintf(log, sizeof(log), "%s/exporter.log", G.dir);
    G.port = tu_free_port();
    snprintf(listen, sizeof(listen), "--web.listen-address=127.0.0.1:%u", G.port);
    char *argv[] = {"/usr/bin/prometheus-node-exporter", listen, "--collector.disable-defaults",
                    "--collector.loadavg", "--collector.meminfo", "--collector.textfile",
                    textdir, NULL};
    if (tu_write_file(path, textfile, strlen(textfile)) == 0 && tu_spawn(argv, log) > 0 &&
        tu_wait_port(G.port, 10000) == 0)
        return 0;
    exporter_teardown(state);
    return -1;
}

/* Sample lines counted the simplest way: lines that are neither blank nor comments. */
static size_t count_sample_lines(const char *text)
{
    size_t n = 0;
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > 0 && line[0] != '#')
            n++;
        line += len + (end ? 1 : 0);
    }
    return n;
}

static void parses_live_node_exporter(void **state)
{
    (void)state;
    enum { BODY_MAX = 4 << 20 };
    char url[64];
    char *body = malloc(BODY_MAX);
    assert_non_null(body);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/metrics", G.port);
    char *argv[] = {"curl", "-sS", "--noproxy", "*", "--max-time", "20", url, NULL};
    assert_int_equal(tu_run(argv, body, BODY_MAX), 0);
    size_t len = strlen(body);
    assert_true(len > 0 && len < BODY_MAX - 1);

    struct recs r = {0};
    struct lbw_promtext_error err;
    if (lbw_promtext_parse(body, len, collect, &r, &err) != 0)
        fail_msg("node exporter output failed at %u:%u: %s", err.line, err.column, err.reason);
    size_t expected = count_sample_lines(body);
    assert_true(expected > 20);
    assert_int_equal(r.n, expected);

    /* the textfile came back through the exporter's own encoder (labels now sorted) */
    const struct rec *x = find(&r, "lbw_test_escapes", NULL);
    assert_true(x->value == 42);
    assert_string_equal(label(x, "path"), "C:\\dir");
    assert_string_equal(label(x, "quote"), "say \"hi\"");
    assert_string_equal(label(x, "nl"), "a\nb");
    assert_string_equal(x->help, "Help with a backslash \\ and a newline \n in it.");
    x = find(&r, "lbw_test_latency_seconds_bucket", "le", "+Inf", NULL);
    assert_true(x->value == 4);
    assert_int_equal(x->type, LBW_PROMTEXT_HISTOGRAM);
    assert_string_equal(x->family, "lbw_test_latency_seconds");
    x = find(&r, "lbw_test_latency_seconds_sum", NULL);
    assert_true(x->value == 2.5);
    assert_string_equal(x->family, "lbw_test_latency_seconds");
    /* the exporter's own families: a summary, a gauge in exponent notation, loadavg */
    x = find(&r, "go_gc_duration_seconds", "quantile", "0.5", NULL);
    assert_int_equal(x->type, LBW_PROMTEXT_SUMMARY);
    x = find(&r, "go_gc_duration_seconds_count", NULL);
    assert_string_equal(x->family, "go_gc_duration_seconds");
    x = find(&r, "node_textfile_mtime_seconds", NULL);
    assert_true(x->value > 1e9);
    x = find(&r, "node_load1", NULL);
    assert_int_equal(x->type, LBW_PROMTEXT_GAUGE);
    assert_true(x->value >= 0);
    x = find(&r, "node_memory_MemTotal_bytes", NULL);
    assert_true(x->value > 0);
    recs_free(&r);
    free(body);
}

int main(void)
{
    const struct CMUnitTest offline[] = {
        cmocka_unit_test(haproxy_capture_parses_fully),
        cmocka_unit_test(haproxy_capture_emits_allowed),
        cmocka_unit_test(metadata_and_comments),
        cmocka_unit_test(family_membership),
        cmocka_unit_test(escapes_in_labels_and_help),
        cmocka_unit_test(label_set_forms),
        cmocka_unit_test(values_and_timestamps),
        cmocka_unit_test(histogram_and_summary),
        cmocka_unit_test(blank_lines_and_line_ends),
        cmocka_unit_test(line_length_limit),
        cmocka_unit_test(label_count_limit),
        cmocka_unit_test(rejects_malformed_input),
        cmocka_unit_test(samples_before_an_error_are_delivered),
        cmocka_unit_test(callback_stops_the_parse),
        cmocka_unit_test(allow_list_patterns),
        cmocka_unit_test(allow_list_matches_families),
        cmocka_unit_test(emission_merges_and_renames_labels),
        cmocka_unit_test(emission_rejects_what_cannot_be_a_series),
        cmocka_unit_test(emission_of_malformed_text_emits_nothing),
        cmocka_unit_test(pattern_check_reasons),
        cmocka_unit_test(reserved_names_and_patterns),
        cmocka_unit_test(emission_rejects_reserved_names),
    };
    const struct CMUnitTest live[] = {
        cmocka_unit_test(parses_live_node_exporter),
    };
    int failed = cmocka_run_group_tests_name("promtext", offline, NULL, NULL);
    failed += cmocka_run_group_tests_name("promtext, live node exporter", live, exporter_setup,
                                          exporter_teardown);
    return failed;
}
