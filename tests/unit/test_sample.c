/* test_sample.c - series keys: canonical building, escaping, parsing, rejection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "probes/sample.h"

static void build_sorts_and_escapes(void **state)
{
    (void)state;
    char key[LBW_KEY_MAX];
    struct lbw_label l[] = {{"vantage", "n1"}, {"target", "a\"b\\c\nd"}, {"skip", NULL}};
    int n = lbw_key_build(key, sizeof(key), "probe_success", l, 3);
    assert_int_equal(n, (int)strlen(key));
    assert_string_equal(key, "probe_success{target=\"a\\\"b\\\\c\\nd\",vantage=\"n1\"}");

    struct lbw_key_parsed p;
    assert_int_equal(lbw_key_parse(key, (size_t)n, &p), 0);
    assert_string_equal(p.metric, "probe_success");
    assert_int_equal(p.nlabels, 2);
    assert_string_equal(lbw_key_label(&p, "target"), "a\"b\\c\nd");
    assert_string_equal(lbw_key_label(&p, "vantage"), "n1");
    assert_null(lbw_key_label(&p, "probe"));
}

static void build_without_labels(void **state)
{
    (void)state;
    char key[LBW_KEY_MAX];
    assert_int_equal(lbw_key_build(key, sizeof(key), "up", NULL, 0), 2);
    assert_string_equal(key, "up");
    struct lbw_key_parsed p;
    assert_int_equal(lbw_key_parse("up", 2, &p), 0);
    assert_int_equal(p.nlabels, 0);
}

static void build_rejects(void **state)
{
    (void)state;
    char key[LBW_KEY_MAX];
    struct lbw_label dup[] = {{"a", "1"}, {"a", "2"}};
    struct lbw_label bad[] = {{"a:b", "1"}};
    assert_int_equal(lbw_key_build(key, sizeof(key), "m", dup, 2), -1);
    assert_int_equal(lbw_key_build(key, sizeof(key), "m", bad, 1), -1);
    assert_int_equal(lbw_key_build(key, sizeof(key), "1m", NULL, 0), -1);
    assert_int_equal(lbw_key_build(key, 4, "metric", NULL, 0), -1);
    char big[600];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    struct lbw_label l[] = {{"v", big}};
    assert_int_equal(lbw_key_build(key, sizeof(key), "m", l, 1), -1);
}

static void parse_rejects_noncanonical(void **state)
{
    (void)state;
    struct lbw_key_parsed p;
    const char *bad[] = {
        "",          "m{",        "m{}",           "m{a=\"1\"",       "m{a=\"1\"}x",
        "m{b=\"1\",a=\"2\"}",     "m{a=\"1\",a=\"2\"}", "m{a=\"\\x\"}", "m{a=1}",
        "m{a=\"1\",}", "9m",      "m{a-b=\"1\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(lbw_key_parse(bad[i], strlen(bad[i]), &p), -1);
}

struct capture {
    char key[LBW_KEY_MAX];
    int64_t ts;
    double v;
    int n;
};

static void capture_fn(void *arg, const char *key, int64_t ts, double v)
{
    struct capture *c = arg;
    strcpy(c->key, key);
    c->ts = ts;
    c->v = v;
    c->n++;
}

static void emitter_adds_base_labels(void **state)
{
    (void)state;
    struct capture c = {0};
    struct lbw_label base[] = {{"target", "www"}, {"vantage", "node1"}};
    struct lbw_emitter e = {capture_fn, &c, base, 2, 1234};
    assert_int_equal(lbw_emit1(&e, "probe_tls_version_info", "version", "TLS 1.3", 1), 0);
    assert_string_equal(c.key,
                        "probe_tls_version_info{target=\"www\",vantage=\"node1\",version=\"TLS 1.3\"}");
    assert_int_equal(c.ts, 1234);
    assert_true(c.v == 1.0);
    assert_int_equal(lbw_emit1(&e, "x", "target", "dup", 1), -1);
    assert_int_equal(c.n, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(build_sorts_and_escapes),
        cmocka_unit_test(build_without_labels),
        cmocka_unit_test(build_rejects),
        cmocka_unit_test(parse_rejects_noncanonical),
        cmocka_unit_test(emitter_adds_base_labels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
