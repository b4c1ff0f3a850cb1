/* test_nginx_stub.c - the stub_status parser and its samples: the captured reference page
 * (tests/fixtures/nginx/stub_status.txt), the variations nginx's format allows, every kind
 * of malformed page with the exact line, column and reason, and a real nginx on 127.0.0.1
 * whose counters must move by exactly our own requests between two fetches.
 *
 * Run from the repository root (make unit does): the fixture path is relative.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "probes/nginx.h"
#include "tests/support/testutil.h"

#define FIXTURE "tests/fixtures/nginx/stub_status.txt"

static int parse_str(const char *text, struct lbw_nginx_stub *s, char *err, size_t errlen)
{
    return lbw_nginx_stub_parse(text, strlen(text), s, err, errlen);
}

/* --- the reference capture ----------------------------------------------------------------- */

static void parses_reference_capture(void **state)
{
    (void)state;
    char text[1024], err[200];
    FILE *f = fopen(FIXTURE, "rb");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof(text), f);
    fclose(f);
    assert_true(n > 0 && n < sizeof(text));

    struct lbw_nginx_stub s;
    assert_int_equal(lbw_nginx_stub_parse(text, n, &s, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    assert_int_equal(s.active, 2);
    assert_int_equal(s.accepts, 49);
    assert_int_equal(s.handled, 49);
    assert_int_equal(s.requests, 68);
    assert_int_equal(s.reading, 0);
    assert_int_equal(s.writing, 1);
    assert_int_equal(s.waiting, 1);
}

struct capture {
    int n;
    char keys[16][LBW_KEY_MAX];
    double values[16];
    int64_t ts[16];
};

static void capture_fn(void *arg, const char *key, int64_t ts, double v)
{
    struct capture *c = arg;
    assert_true(c->n < 16);
    snprintf(c->keys[c->n], sizeof(c->keys[0]), "%s", key);
    c->values[c->n] = v;
    c->ts[c->n] = ts;
    c->n++;
}

static double captured(const struct capture *c, const char *key)
{
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->keys[i], key) == 0)
            return c->values[i];
    fail_msg("no sample %s", key);
    return -1;
}

static void emits_exporter_names(void **state)
{
    (void)state;
    struct lbw_nginx_stub s = {.active = 2, .accepts = 49, .handled = 48, .requests = 68,
                               .reading = 3, .writing = 1, .waiting = 7};
    struct lbw_label base[] = {{"target", "lb1"}, {"vantage", "n1"}, {"probe", "nginx"}};
    struct capture c = {0};
    struct lbw_emitter e = {.fn = capture_fn, .arg = &c, .base = base, .nbase = 3,
                            .ts_ms = 1700000000123};
    lbw_nginx_stub_emit(&s, &e);
    assert_int_equal(c.n, 7);
#define K(m) m "{probe=\"nginx\",target=\"lb1\",vantage=\"n1\"}"
    assert_true(captured(&c, K("nginx_connections_active")) == 2);
    assert_true(captured(&c, K("nginx_connections_accepted")) == 49);
    assert_true(captured(&c, K("nginx_connections_handled")) == 48);
    assert_true(captured(&c, K("nginx_http_requests_total")) == 68);
    assert_true(captured(&c, K("nginx_connections_reading")) == 3);
    assert_true(captured(&c, K("nginx_connections_writing")) == 1);
    assert_true(captured(&c, K("nginx_connections_waiting")) == 7);
#undef K
    for (int i = 0; i < c.n; i++)
        assert_int_equal(c.ts[i], 1700000000123);
}

/* --- accepted variations ------------------------------------------------------------------- */

static void accepts_layout_variations(void **state)
{
    (void)state;
    char err[200];
    struct lbw_nginx_stub s;
    /* no trailing blanks, no final newline */
    assert_int_equal(parse_str("Active connections: 1\nserver accepts handled requests\n"
                               "5 4 3\nReading: 0 Writing: 1 Waiting: 0",
                               &s, err, sizeof(err)), 0);
    assert_int_equal(s.accepts, 5);
    assert_int_equal(s.handled, 4);
    assert_int_equal(s.requests, 3);
    /* tabs and runs of blanks, leading zeros */
    assert_int_equal(parse_str("\tActive \t connections:\t007 \t\n  server  accepts\thandled "
                               "requests \n\t1\t2\t3\t\nReading:  4  Writing:  5  Waiting:  6\n",
                               &s, err, sizeof(err)), 0);
    assert_int_equal(s.active, 7);
    assert_int_equal(s.reading, 4);
    assert_int_equal(s.writing, 5);
    assert_int_equal(s.waiting, 6);
    /* the largest 64-bit counter */
    assert_int_equal(parse_str("Active connections: 0 \nserver accepts handled requests\n"
                               " 18446744073709551615 18446744073709551615 1 \n"
                               "Reading: 0 Writing: 0 Waiting: 0 \n", &s, err, sizeof(err)), 0);
    assert_true(s.accepts == UINT64_MAX);
    assert_true(s.handled == UINT64_MAX);
}

/* --- malformed pages ----------------------------------------------------------------------- */

static const char good_tail[] = "server accepts handled requests\n 49 49 68 \n"
                                "Reading: 0 Writing: 1 Waiting: 1 \n";

struct bad_case {
    const char *text;
    size_t len;  /* 0: strlen(text) */
    const char *error;
};

static void rejects_malformed_pages(void **state)
{
    (void)state;
    const struct bad_case cases[] = {
        {"", 0, "line 1, column 1: expected \"Active\", found the end of the text"},
        {"Passive connections: 2 \n", 0, "line 1, column 1: expected \"Active\", found 'P'"},
        {"Active connections:2 \n", 0,
         "line 1, column 20: expected a space or the end of the line after \"connections:\", "
         "found '2'"},
        {"Active connectoins: 2 \n", 0,
         "line 1, column 15: expected \"connections:\", found 'o'"},
        {"Active connections: two \n", 0,
         "line 1, column 21: expected the active connection count, found 't'"},
        {"Active connections: 2x \n", 0,
         "line 1, column 22: expected a space or the end of the line after the active "
         "connection count, found 'x'"},
        {"Active connections: -2 \n", 0,
         "line 1, column 21: expected the active connection count, found '-'"},
        {"Active connections: 2 \r\n", 0,
         "line 1, column 23: expected the end of the line, found a carriage return (lines "
         "must end in \\n alone)"},
        {"Active connections: 2 3\n", 0,
         "line 1, column 23: expected the end of the line, found '3'"},
        {"Active connections: 2 \nserver accepts handled\n", 0,
         "line 2, column 23: expected a space before \"requests\", found the end of the line"},
        {"Active connections: 2 \nserver accepts handled requests request_time\n 1 1 1 0\n", 0,
         "line 2, column 33: expected the end of the line, found 'r'"},
        {"Active connections: 2 \nserver accepts handled requests\n 49 49\n", 0,
         "line 3, column 7: expected a space before the requests count, found the end of the "
         "line"},
        {"Active connections: 2 \nserver accepts handled requests\n"
         " 18446744073709551616 1 1 \n", 0,
         "line 3, column 2: the accepts count does not fit in 64 bits"},
        {"Active connections: 2 \nserver accepts handled requests\n 1 1 1 \n"
         "Reading: 0 Writing: 1\n", 0,
         "line 4, column 22: expected a space before \"Waiting:\", found the end of the line"},
        {"Active connections: 2 \nserver accepts handled requests\n 1 1 1 \n"
         "Reading: 0 Writing: 1 Waiting: 1 \nActive connections: 2 \n", 0,
         "line 5, column 1: expected the end of the text after the Waiting count, found 'A'"},
        {"Active connections: 2 \nserver accepts handled requests\n 1 1 1 \n"
         "Reading: 0 Writing: 1 Waiting: 1 \n\n", 0,
         "line 5, column 1: expected the end of the text after the Waiting count, found the "
         "end of the line"},
        {"Active connections: 2 \nserver accepts handled requests\n 1 1 1 \n"
         "Reading: 0 Writing: 1 Waiting:", 0,
         "line 4, column 31: expected a space before the waiting count, found the end of the "
         "text"},
        {"Active\0connections: 2 \n", 23,
         "line 1, column 7: expected a space or the end of the line after \"Active\", found a "
         "NUL byte"},
        {"Active connections: 2\0\n", 23,
         "line 1, column 22: expected a space or the end of the line after the active "
         "connection count, found a NUL byte"},
        {"Active connections: \xff\n", 0,
         "line 1, column 21: expected the active connection count, found byte 0xff"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[200] = "untouched";
        struct lbw_nginx_stub s = {.active = 12345};
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].text);
        if (lbw_nginx_stub_parse(cases[i].text, len, &s, err, sizeof(err)) != -1)
            fail_msg("case %zu parsed", i);
        if (strcmp(err, cases[i].error) != 0)
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, cases[i].error);
        assert_int_equal(s.active, 12345); /* untouched on failure */
    }
}

static void error_buffer_is_optional_and_truncated(void **state)
{
    (void)state;
    struct lbw_nginx_stub s;
    char small[12];
    assert_int_equal(parse_str("nonsense", &s, NULL, 0), -1);
    assert_int_equal(parse_str("nonsense", &s, small, sizeof(small)), -1);
    assert_string_equal(small, "line 1, col");
    char text[256];
    snprintf(text, sizeof(text), "Active connections: 2 \n%s", good_tail);
    assert_int_equal(parse_str(text, &s, NULL, 0), 0);
    assert_int_equal(lbw_nginx_stub_parse(NULL, 0, &s, small, sizeof(small)), -1);
}

/* --- a real nginx -------------------------------------------------------------------------- */

static struct {
    char dir[256];
    uint16_t port;
} G;

static const char nginx_conf_fmt[] =
    "%s"
    "daemon off;\n"
    "master_process off;\n"
    "worker_processes 1;\n"
    "pid %s/nginx.pid;\n"
    "error_log stderr;\n"
    "events { worker_connections 64; }\n"
    "http {\n"
    "  access_log off;\n"
    "  client_body_temp_path %s/tmp-body;\n"
    "  proxy_temp_path %s/tmp-proxy;\n"
    "  fastcgi_temp_path %s/tmp-fastcgi;\n"
    "  uwsgi_temp_path %s/tmp-uwsgi;\n"
    "  scgi_temp_path %s/tmp-scgi;\n"
    "  server {\n"
    "    listen 127.0.0.1:%u;\n"
    "    location = /nginx_status { stub_status; allow 127.0.0.1; deny all; }\n"
    "  }\n"
    "}\n";

static int start_nginx(void)
{
    char conf[4096], path[300], log[300];
    const char *d = G.dir;
    G.port = tu_free_port();
    int n = snprintf(conf, sizeof(conf), nginx_conf_fmt, geteuid() == 0 ? "user root;\n" : "",
                     d, d, d, d, d, d, G.port);
    if (n < 0 || (size_t)n >= sizeof(conf))
        return -1;
    snprintf(path, sizeof(path), "%s/nginx.conf", d);
    snprintf(log, sizeof(log), "%s/nginx.log", d);
    if (tu_write_file(path, conf, (size_t)n) != 0)
        return -1;
    char *argv[] = {"/usr/sbin/nginx", "-p", G.dir, "-c", path, "-e", "stderr", NULL};
    if (tu_spawn(argv, log) < 0)
        return -1;
    return tu_wait_port(G.port, 10000);
}

static int group_teardown(void **state)
{
    (void)state;
    tu_stop_all();
    if (G.dir[0]) {
        tu_rmrf(G.dir);
        G.dir[0] = '\0';
    }
    return 0;
}

static int group_setup(void **state)
{
    if (tu_tmpdir("lbw-nginx-stub", G.dir, sizeof(G.dir)) == 0) {
        chmod(G.dir, 0755);
        if (start_nginx() == 0)
            return 0;
    }
    group_teardown(state);
    return -1;
}

static void fetch_status(struct lbw_nginx_stub *s)
{
    char url[64], body[1024], err[200];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/nginx_status", G.port);
    char *argv[] = {"curl", "-sS", "--noproxy", "*", "--max-time", "10", url, NULL};
    assert_int_equal(tu_run(argv, body, sizeof(body)), 0);
    if (lbw_nginx_stub_parse(body, strlen(body), s, err, sizeof(err)) != 0)
        fail_msg("live stub_status did not parse: %s\n%s", err, body);
}

/* Only this test talks to this nginx: between two fetches exactly one connection was
 * accepted and handled and one request made (the second fetch itself), and each fetch sees
 * its own connection active and being written to. */
static void parses_live_nginx(void **state)
{
    (void)state;
    struct lbw_nginx_stub a, b;
    fetch_status(&a);
    fetch_status(&b);
    assert_true(a.active >= 1);
    assert_true(a.writing >= 1);
    assert_true(b.writing >= 1);
    assert_true(a.requests >= 1);
    assert_true(b.accepts == a.accepts + 1);
    assert_true(b.handled == a.handled + 1);
    assert_true(b.requests == a.requests + 1);
    assert_true(b.handled == b.accepts);
}

int main(void)
{
    const struct CMUnitTest offline[] = {
        cmocka_unit_test(parses_reference_capture),
        cmocka_unit_test(emits_exporter_names),
        cmocka_unit_test(accepts_layout_variations),
        cmocka_unit_test(rejects_malformed_pages),
        cmocka_unit_test(error_buffer_is_optional_and_truncated),
    };
    const struct CMUnitTest live[] = {
        cmocka_unit_test(parses_live_nginx),
    };
    int failed = cmocka_run_group_tests_name("nginx stub_status", offline, NULL, NULL);
    failed += cmocka_run_group_tests_name("nginx stub_status, live", live, group_setup,
                                          group_teardown);
    return failed;
}
