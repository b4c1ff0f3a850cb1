/* test_haproxy.c - HAProxy's `show stat`, `show info` and `show ssl cert` parsers and their
 * samples, on copies of real HAProxy 2.6 output (tests/fixtures/haproxy/) and on edge cases:
 * reordered and missing columns, listeners and bad names skipped, status variants, bad
 * numbers, CLI error messages, certificate listings and times, and the longest keys the
 * mapping can produce. The samples' names and labels are checked against the output of
 * HAProxy's own Prometheus exporter (metrics.txt) taken from the same process. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probes/haproxy.h"

/* --- a collecting emitter ------------------------------------------------------------------ */

struct sample {
    char key[LBW_KEY_MAX];
    double value;
};

static struct {
    struct sample *s;
    size_t n, cap;
} Got;

static void collect(void *arg, const char *key, int64_t ts, double v)
{
    (void)arg;
    (void)ts;
    if (Got.n == Got.cap) {
        Got.cap = Got.cap ? Got.cap * 2 : 256;
        Got.s = realloc(Got.s, Got.cap * sizeof(*Got.s));
        assert_non_null(Got.s);
    }
    snprintf(Got.s[Got.n].key, LBW_KEY_MAX, "%s", key);
    Got.s[Got.n++].value = v;
}

static const struct lbw_label base[] = {{"probe", "haproxy"}, {"target", "lb"},
                                        {"vantage", "n1"}};
static const struct lbw_emitter E = {collect, NULL, base, 3, 1000};
static const struct lbw_emitter Bare = {collect, NULL, base, 0, 1000}; /* exporter's keys */

static void reset(void)
{
    Got.n = 0;
}

static const struct sample *find(const char *key)
{
    for (size_t i = 0; i < Got.n; i++)
        if (strcmp(Got.s[i].key, key) == 0)
            return &Got.s[i];
    return NULL;
}

static double got(const char *key)
{
    const struct sample *s = find(key);
    if (!s)
        fail_msg("no sample %s", key);
    return s->value;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = malloc(1 << 20);
    assert_non_null(f);
    assert_non_null(buf);
    *len = fread(buf, 1, (1 << 20) - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

static int teardown(void **state)
{
    (void)state;
    free(Got.s);
    return 0;
}

/* --- show stat ----------------------------------------------------------------------------- */

static void parse_fixture(const char *path, struct lbw_haproxy_stats *st)
{
    char err[160];
    size_t len;
    char *text = slurp(path, &len);
    if (lbw_haproxy_stat_parse(text, len, st, err, sizeof(err)) != 0)
        fail_msg("%s: %s", path, err);
    free(text);
}

static void reference_show_stat(void **state)
{
    (void)state;
    struct lbw_haproxy_stats st;
    parse_fixture("tests/fixtures/haproxy/show_stat.csv", &st);
    assert_int_equal(st.nrows, 5);
    assert_int_equal(st.skipped, 0);
    const struct lbw_haproxy_row *fe = lbw_haproxy_find(&st, LBW_HAPROXY_FRONTEND, "fe_https", NULL);
    const struct lbw_haproxy_row *be = lbw_haproxy_find(&st, LBW_HAPROXY_BACKEND, "be_app", NULL);
    const struct lbw_haproxy_row *w1 = lbw_haproxy_find(&st, LBW_HAPROXY_SERVER, "be_app", "web1");
    const struct lbw_haproxy_row *w2 = lbw_haproxy_find(&st, LBW_HAPROXY_SERVER, "be_app", "web2");
    assert_non_null(fe);
    assert_non_null(be);
    assert_non_null(w1);
    assert_non_null(w2);
    assert_string_equal(fe->status, "OPEN");
    assert_true(lbw_haproxy_value(fe, "scur") == 0);
    assert_true(lbw_haproxy_value(fe, "smax") == 2);
    assert_true(lbw_haproxy_value(fe, "slim") == 9984);
    assert_true(lbw_haproxy_value(fe, "stot") == 40);
    assert_true(lbw_haproxy_value(fe, "hrsp_2xx") == 40);
    assert_true(lbw_haproxy_value(fe, "req_tot") == 40);
    assert_true(lbw_haproxy_value(fe, "bin") == 3740);
    assert_true(lbw_haproxy_value(fe, "ssl_sess") == 20);
    assert_true(lbw_haproxy_value(fe, "ssl_failed_handshake") == 0);
    assert_true(isnan(lbw_haproxy_value(fe, "qcur")));     /* empty for a frontend */
    assert_true(isnan(lbw_haproxy_value(fe, "no_such_column")));
    assert_string_equal(w1->status, "UP");
    assert_string_equal(w1->check_status, "L7OK");
    assert_true(lbw_haproxy_value(w1, "check_code") == 200);
    assert_true(lbw_haproxy_value(w1, "rtime") == 1);
    assert_string_equal(w2->status, "DOWN");
    assert_string_equal(w2->check_status, "L4CON");
    assert_true(lbw_haproxy_value(w2, "lastsess") == -1);
    assert_true(lbw_haproxy_value(w2, "ssl_failed_handshake") == 0);
    assert_true(isnan(lbw_haproxy_value(w2, "slim")));      /* empty: no maxconn */
    assert_string_equal(be->status, "UP");
    assert_true(lbw_haproxy_value(be, "act") == 1);
    assert_true(lbw_haproxy_value(be, "ttime") == 2);
    assert_true(lbw_haproxy_value(be, "ttime_max") == 4);
    lbw_haproxy_stats_free(&st);
}

/* The stats page's ;csv is the same format: the same objects come out. */
static void reference_stats_page_csv(void **state)
{
    (void)state;
    struct lbw_haproxy_stats st;
    parse_fixture("tests/fixtures/haproxy/stats_http.csv", &st);
    assert_int_equal(st.nrows, 5);
    const struct lbw_haproxy_row *w2 = lbw_haproxy_find(&st, LBW_HAPROXY_SERVER, "be_app", "web2");
    assert_non_null(w2);
    assert_string_equal(w2->status, "DOWN");
    assert_non_null(lbw_haproxy_find(&st, LBW_HAPROXY_FRONTEND, "stats", NULL));
    lbw_haproxy_stats_free(&st);
}

/* Keys carry the base labels, sorted among the row's own. */
static void emit_names_and_values(void **state)
{
    (void)state;
    struct lbw_haproxy_stats st;
    parse_fixture("tests/fixtures/haproxy/show_stat.csv", &st);
    reset();
    assert_int_equal(lbw_haproxy_stats_emit(&st, &E), 0);
    assert_true(got("haproxy_frontend_current_sessions{probe=\"haproxy\",proxy=\"fe_https\","
                    "target=\"lb\",vantage=\"n1\"}") == 0);
    assert_true(got("haproxy_server_status{probe=\"haproxy\",proxy=\"be_app\",server=\"web2\","
                    "state=\"DOWN\",target=\"lb\",vantage=\"n1\"}") == 1);
    assert_true(got("haproxy_backend_total_time_average_seconds{probe=\"haproxy\","
                    "proxy=\"be_app\",target=\"lb\",vantage=\"n1\"}") == 0.002);
    /* a server has no frontend-only metric, a frontend no queue */
    assert_null(find("haproxy_server_request_errors_total{probe=\"haproxy\",proxy=\"be_app\","
                     "server=\"web1\",target=\"lb\",vantage=\"n1\"}"));
    assert_null(find("haproxy_frontend_current_queue{probe=\"haproxy\",proxy=\"fe_https\","
                     "target=\"lb\",vantage=\"n1\"}"));
    lbw_haproxy_stats_free(&st);
}

/* Keys are canonical (labels sorted): build the expectation the same way. */
static double got_labels(const char *metric, const struct lbw_label *extra, size_t n)
{
    struct lbw_label l[8];
    char key[LBW_KEY_MAX];
    memcpy(l, base, sizeof(base));
    memcpy(l + 3, extra, n * sizeof(*extra));
    assert_true(lbw_key_build(key, sizeof(key), metric, l, 3 + n) > 0);
    return got(key);
}

static void emit_exporter_names(void **state)
{
    (void)state;
    struct lbw_haproxy_stats st;
    parse_fixture("tests/fixtures/haproxy/show_stat.csv", &st);
    reset();
    assert_int_equal(lbw_haproxy_stats_emit(&st, &E), 0);
    struct lbw_label fe[] = {{"proxy", "fe_https"}};
    struct lbw_label be5[] = {{"proxy", "be_app"}, {"code", "5xx"}};
    struct lbw_label be2[] = {{"proxy", "be_app"}, {"code", "2xx"}};
    struct lbw_label w1up[] = {{"proxy", "be_app"}, {"server", "web1"}, {"state", "UP"}};
    struct lbw_label w1down[] = {{"proxy", "be_app"}, {"server", "web1"}, {"state", "DOWN"}};
    struct lbw_label w2down[] = {{"proxy", "be_app"}, {"server", "web2"}, {"state", "DOWN"}};
    struct lbw_label w2l4[] = {{"proxy", "be_app"}, {"server", "web2"}, {"state", "L4CON"}};
    struct lbw_label w2l7[] = {{"proxy", "be_app"}, {"server", "web2"}, {"state", "L7OK"}};
    struct lbw_label w1[] = {{"proxy", "be_app"}, {"server", "web1"}};
    assert_true(got_labels("haproxy_frontend_current_sessions", fe, 1) == 0);
    assert_true(got_labels("haproxy_frontend_max_sessions", fe, 1) == 2);
    assert_true(got_labels("haproxy_frontend_sessions_total", fe, 1) == 40);
    assert_true(got_labels("haproxy_frontend_http_requests_total", fe, 1) == 40);
    assert_true(got_labels("lbwatch_haproxy_frontend_ssl_failed_handshakes_total", fe, 1) == 0);
    assert_true(got_labels("lbwatch_haproxy_frontend_ssl_sessions_total", fe, 1) == 20);
    assert_true(got_labels("lbwatch_haproxy_frontend_http_requests_rate", fe, 1) == 0);
    assert_true(got_labels("haproxy_backend_http_responses_total", be5, 2) == 0);
    assert_true(got_labels("haproxy_backend_http_responses_total", be2, 2) == 40);
    assert_true(got_labels("haproxy_server_status", w1up, 3) == 1);
    assert_true(got_labels("haproxy_server_status", w1down, 3) == 0);
    assert_true(got_labels("haproxy_server_status", w2down, 3) == 1);
    assert_true(got_labels("haproxy_server_check_status", w2l4, 3) == 1);
    assert_true(got_labels("haproxy_server_check_status", w2l7, 3) == 0);
    assert_true(got_labels("haproxy_server_response_time_average_seconds", w1, 2) == 0.001);
    assert_true(got_labels("haproxy_server_check_code", w1, 2) == 200);
    lbw_haproxy_stats_free(&st);
}

/* metrics.txt line "name{a="x",b="y"} value" as a canonical key (labels sorted). */
static int exporter_key(const char *line, char *key, size_t size, double *value)
{
    char copy[640], *brace, *end;
    struct lbw_label l[8];
    size_t n = 0;
    snprintf(copy, sizeof(copy), "%s", line);
    end = strrchr(copy, ' ');
    if (!end)
        return -1;
    *end = '\0';
    *value = strtod(end + 1, NULL);
    brace = strchr(copy, '{');
    if (brace) {
        *brace = '\0';
        for (char *p = brace + 1; *p && *p != '}' && n < 8;) {
            char *eq = strchr(p, '='), *q;
            if (!eq || eq[1] != '"' || !(q = strchr(eq + 2, '"')))
                return -1;
            *eq = *q = '\0';
            l[n++] = (struct lbw_label){p, eq + 2};
            p = q + 1 + (q[1] == ',');
        }
    }
    return lbw_key_build(key, size, copy, l, n) > 0 ? 0 : -1;
}

/* Every haproxy_* sample from show_stat.csv is a series HAProxy's exporter also produced
 * (same name, same labels); frontend fe_https and backend be_app had the same values in both
 * (the stats frontend served the scrape itself, so its counters moved, and the sliding time
 * averages had moved on between the two captures). */
static void matches_haproxy_exporter(void **state)
{
    (void)state;
    struct lbw_haproxy_stats st;
    size_t len, matched = 0;
    parse_fixture("tests/fixtures/haproxy/show_stat.csv", &st);
    reset();
    assert_int_equal(lbw_haproxy_stats_emit(&st, &Bare), 0);
    char *text = slurp("tests/fixtures/haproxy/metrics.txt", &len);
    for (size_t i = 0; i < Got.n; i++) {
        const struct sample *s = &Got.s[i];
        if (strncmp(s->key, "haproxy_", 8) != 0)
            continue;
        int found = 0;
        for (char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
            char key[LBW_KEY_MAX], one[600];
            double v;
            size_t n = strcspn(line, "\n");
            if (line[0] == '#' || n >= sizeof(one))
                continue;
            memcpy(one, line, n);
            one[n] = '\0';
            if (exporter_key(one, key, sizeof(key), &v) == 0 && strcmp(key, s->key) == 0) {
                found = 1;
                if (!strstr(s->key, "proxy=\"stats\"") &&
                    !strstr(s->key, "_time_average_seconds") && fabs(v - s->value) > 1e-9)
                    fail_msg("%s: exporter %g, ours %g", s->key, v, s->value);
                break;
            }
        }
        if (!found)
            fail_msg("HAProxy's exporter has no series %s", s->key);
        matched++;
    }
    assert_true(matched > 150);
    free(text);
    lbw_haproxy_stats_free(&st);
}

static void parse_text(const char *text, struct lbw_haproxy_stats *st)
{
    char err[160];
    if (lbw_haproxy_stat_parse(text, strlen(text), st, err, sizeof(err)) != 0)
        fail_msg("%s", err);
}

static void reordered_and_missing_columns(void **state)
{
    (void)state;
    struct lbw_haproxy_stats st;
    /* no type column: FRONTEND/BACKEND by svname; columns in another order; no status */
    parse_text("# scur,svname,hrsp_5xx,pxname,\n3,FRONTEND,7,fe,\n4,BACKEND,,be,\n"
               "5,s1,1,be,\n",
               &st);
    assert_int_equal(st.nrows, 3);
    assert_int_equal(st.rows[0].kind, LBW_HAPROXY_FRONTEND);
    assert_int_equal(st.rows[1].kind, LBW_HAPROXY_BACKEND);
    assert_int_equal(st.rows[2].kind, LBW_HAPROXY_SERVER);
    assert_string_equal(st.rows[2].server, "s1");
    assert_true(lbw_haproxy_value(&st.rows[0], "scur") == 3);
    assert_true(lbw_haproxy_value(&st.rows[0], "hrsp_5xx") == 7);
    assert_true(isnan(lbw_haproxy_value(&st.rows[1], "hrsp_5xx")));
    assert_true(isnan(lbw_haproxy_value(&st.rows[0], "stot")));
    assert_string_equal(st.rows[0].status, "");
    reset();
    assert_int_equal(lbw_haproxy_stats_emit(&st, &Bare), 0);
    assert_true(got("haproxy_frontend_current_sessions{proxy=\"fe\"}") == 3);
    assert_true(got("haproxy_frontend_http_responses_total{code=\"5xx\",proxy=\"fe\"}") == 7);
    assert_null(find("haproxy_backend_http_responses_total{code=\"5xx\",proxy=\"be\"}"));
    assert_null(find("haproxy_frontend_status{proxy=\"fe\",state=\"UP\"}"));
    assert_int_equal(Got.n, 5);
    lbw_haproxy_stats_free(&st);
}

static void rows_skipped_and_statuses(void **state)
{
    (void)state;
    struct lbw_haproxy_stats st;
    parse_text("# pxname,svname,status,type,check_status,\n"
               "fe,FRONTEND,STOP,0,,\n"
               "fe,sock-1,OPEN,3,,\n"                 /* a listener */
               "b e,x,UP,2,,\n"                       /* not a HAProxy name */
               "be,s1,UP 1/3,2,* L7OK,\n"
               "be,s2,DOWN 1/2,2,L7STS,\n"
               "be,s3,MAINT (via be/s1),2,,\n"
               "be,s4,no check,2,,\n"
               "be,s5,DRAIN (agent),2,INI,\n"
               "be,s6,WEIRD,2,L4OK,\n"
               "be,BACKEND,DOWN,1,,\n",
               &st);
    assert_int_equal(st.nrows, 8);
    assert_int_equal(st.skipped, 2);
    reset();
    assert_int_equal(lbw_haproxy_stats_emit(&st, &Bare), 0);
    assert_true(got("haproxy_frontend_status{proxy=\"fe\",state=\"DOWN\"}") == 1);
    assert_true(got("haproxy_frontend_status{proxy=\"fe\",state=\"UP\"}") == 0);
    assert_true(got("haproxy_backend_status{proxy=\"be\",state=\"DOWN\"}") == 1);
    assert_true(got("haproxy_server_status{proxy=\"be\",server=\"s1\",state=\"UP\"}") == 1);
    assert_true(got("haproxy_server_check_status{proxy=\"be\",server=\"s1\",state=\"L7OK\"}") == 1);
    assert_true(got("haproxy_server_status{proxy=\"be\",server=\"s2\",state=\"DOWN\"}") == 1);
    assert_true(got("haproxy_server_check_status{proxy=\"be\",server=\"s2\",state=\"L7STS\"}") == 1);
    assert_true(got("haproxy_server_status{proxy=\"be\",server=\"s3\",state=\"MAINT\"}") == 1);
    assert_true(got("haproxy_server_status{proxy=\"be\",server=\"s4\",state=\"UP\"}") == 1);
    assert_true(got("haproxy_server_status{proxy=\"be\",server=\"s5\",state=\"DRAIN\"}") == 1);
    assert_true(got("haproxy_server_status{proxy=\"be\",server=\"s5\",state=\"UP\"}") == 0);
    /* INI is not one of the exported check results: no check series for s5 */
    assert_null(find("haproxy_server_check_status{proxy=\"be\",server=\"s5\",state=\"L7OK\"}"));
    /* an unknown status: no status series, the check result still */
    assert_null(find("haproxy_server_status{proxy=\"be\",server=\"s6\",state=\"UP\"}"));
    assert_true(got("haproxy_server_check_status{proxy=\"be\",server=\"s6\",state=\"L4OK\"}") == 1);
    lbw_haproxy_stats_free(&st);
}

static void expect_stat_error(const char *text, const char *why)
{
    struct lbw_haproxy_stats st;
    char err[160];
    assert_int_equal(lbw_haproxy_stat_parse(text, strlen(text), &st, err, sizeof(err)), -1);
    if (!strstr(err, why))
        fail_msg("error \"%s\" does not say \"%s\"", err, why);
    assert_null(st.rows);
}

static void bad_stat_inputs(void **state)
{
    (void)state;
    expect_stat_error("Unknown command. Please enter one of the following commands only :\n",
                      "no CSV header");
    expect_stat_error("# scur,stot,\n1,2,\n", "no pxname or svname column");
    expect_stat_error("# pxname,svname,scur,\nfe,FRONTEND,12x,\n", "line 2: column scur: "
                                                                   "not a number: \"12x\"");
    expect_stat_error("# pxname,svname,scur,\nfe,FRONTEND,1,\nbe,BACKEND,-,\n",
                      "line 3: column scur");
    expect_stat_error("# pxname,svname,scur,\nfe,FRONTEND,1.,\n", "not a number");
    expect_stat_error("# pxname,svname,scur,\nfe,FRONTEND,1,\nbe,BACK", "line 3: truncated");
}

static void too_many_rows(void **state)
{
    (void)state;
    size_t n = 20001, len = 0;
    char *text = malloc(n * 16 + 64);
    struct lbw_haproxy_stats st;
    char err[160];
    len += (size_t)sprintf(text, "# pxname,svname,\n");
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(text + len, "b,s%zu,\n", i);
    assert_int_equal(lbw_haproxy_stat_parse(text, len, &st, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "more than 20000 rows"));
    len = (size_t)(strrchr(text, 'b') - text); /* without the last row */
    assert_int_equal(lbw_haproxy_stat_parse(text, len, &st, err, sizeof(err)), 0);
    assert_int_equal(st.nrows, 20000);
    lbw_haproxy_stats_free(&st);
    free(text);
}

/* --- show info ----------------------------------------------------------------------------- */

static void reference_show_info(void **state)
{
    (void)state;
    struct lbw_haproxy_info in;
    char err[160];
    size_t len;
    char *text = slurp("tests/fixtures/haproxy/show_info.txt", &len);
    assert_int_equal(lbw_haproxy_info_parse(text, len, &in, err, sizeof(err)), 0);
    assert_string_equal(in.version, "2.6.12-1+deb12u4");
    assert_true(lbw_haproxy_info_value(&in, "CurrConns") == 0);
    assert_true(lbw_haproxy_info_value(&in, "Maxconn") == 9984);
    assert_true(lbw_haproxy_info_value(&in, "Uptime_sec") == 12);
    assert_true(lbw_haproxy_info_value(&in, "Idle_pct") == 100);
    assert_true(lbw_haproxy_info_value(&in, "SslRate") == 0);
    assert_true(lbw_haproxy_info_value(&in, "CumSslConns") == 20);
    assert_true(lbw_haproxy_info_value(&in, "Process_num") == 1);
    assert_true(lbw_haproxy_info_value(&in, "Unstoppable Jobs") == 0);
    assert_true(lbw_haproxy_info_value(&in, "Start_time_sec") == 1795376854);
    assert_true(isnan(lbw_haproxy_info_value(&in, "Uptime")));
    reset();
    assert_int_equal(lbw_haproxy_info_emit(&in, &E), 0);
    assert_true(got("haproxy_process_current_connections{probe=\"haproxy\",target=\"lb\","
                    "vantage=\"n1\"}") == 0);
    assert_true(got("haproxy_process_max_connections{probe=\"haproxy\",target=\"lb\","
                    "vantage=\"n1\"}") == 9984);
    assert_true(got("haproxy_process_build_info{probe=\"haproxy\",target=\"lb\","
                    "vantage=\"n1\",version=\"2.6.12-1+deb12u4\"}") == 1);
    assert_true(got("lbwatch_haproxy_process_pid{probe=\"haproxy\",target=\"lb\","
                    "vantage=\"n1\"}") == 4153);
    assert_int_equal(Got.n, LBW_HAPROXY_INFO_FIELDS + 1);

    /* every haproxy_process_* name is one HAProxy's exporter has */
    reset();
    lbw_haproxy_info_emit(&in, &Bare);
    char *metrics = slurp("tests/fixtures/haproxy/metrics.txt", &len);
    for (size_t i = 0; i < Got.n; i++) {
        char name[LBW_KEY_MAX], want[LBW_KEY_MAX + 16];
        snprintf(name, sizeof(name), "%.*s", (int)strcspn(Got.s[i].key, "{"), Got.s[i].key);
        snprintf(want, sizeof(want), "# TYPE %s ", name);
        if (strncmp(name, "haproxy_", 8) == 0 && !strstr(metrics, want))
            fail_msg("HAProxy's exporter has no metric %s", name);
    }
    free(metrics);
    free(text);
}

static void bad_info_inputs(void **state)
{
    (void)state;
    struct lbw_haproxy_info in;
    char err[160];
    const char *cli = "Unknown command. Please enter one of the following commands only :\n";
    assert_int_equal(lbw_haproxy_info_parse(cli, strlen(cli), &in, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not `show info` output"));
    const char *noname = "CurrConns: 3\n";
    assert_int_equal(lbw_haproxy_info_parse(noname, strlen(noname), &in, err, sizeof(err)), -1);
    const char *bad = "Name: HAProxy\nCurrConns: lots\n";
    assert_int_equal(lbw_haproxy_info_parse(bad, strlen(bad), &in, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "line 2: CurrConns: not a number"));
    const char *noline = "Name: HAProxy\nno colon here\n";
    assert_int_equal(lbw_haproxy_info_parse(noline, strlen(noline), &in, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "line 2: not \"Name: value\""));
    /* a version with control characters is dropped, empty values are absent */
    const char *odd = "Name: HAProxy\r\nVersion: 2.6\x01\r\nMaxconn: \r\nCurrConns:7";
    assert_int_equal(lbw_haproxy_info_parse(odd, strlen(odd), &in, err, sizeof(err)), 0);
    assert_string_equal(in.version, "");
    assert_true(isnan(lbw_haproxy_info_value(&in, "Maxconn")));
    assert_true(lbw_haproxy_info_value(&in, "CurrConns") == 7);
    char *longline = malloc(5000);
    memset(longline, 'x', 5000);
    memcpy(longline, "Name: ", 6);
    assert_int_equal(lbw_haproxy_info_parse(longline, 5000, &in, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "longer than"));
    free(longline);
}

/* --- show ssl cert ------------------------------------------------------------------------- */

static void reference_cert_detail(void **state)
{
    (void)state;
    struct lbw_haproxy_cert c;
    char err[160];
    size_t len;
    char *text = slurp("tests/fixtures/haproxy/show_ssl_cert_detail.txt", &len);
    assert_int_equal(lbw_haproxy_cert_parse(text, len, &c, err, sizeof(err)), 0);
    assert_string_equal(c.file, "@RUNDIR@/combined.pem");
    assert_int_equal(c.not_after, 1797968841);  /* Dec 22 19:47:21 2026 GMT */
    assert_int_equal(c.not_before, 1795376841); /* Nov 22 19:47:21 2026 GMT */
    reset();
    assert_int_equal(lbw_haproxy_cert_emit(&c, &E), 0);
    assert_true(got("lbwatch_haproxy_ssl_cert_not_after_seconds{cert=\"@RUNDIR@/combined.pem\","
                    "probe=\"haproxy\",target=\"lb\",vantage=\"n1\"}") == 1797968841);
    free(text);
}

static void cert_detail_errors(void **state)
{
    (void)state;
    struct lbw_haproxy_cert c;
    char err[160];
    const char *missing = "Can't display the certificate: Not found or the certificate is a "
                          "bundle!\n";
    assert_int_equal(lbw_haproxy_cert_parse(missing, strlen(missing), &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not `show ssl cert FILE` output"));
    const char *perm = "Permission denied\n";
    assert_int_equal(lbw_haproxy_cert_parse(perm, strlen(perm), &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "Permission denied"));
    const char *badtime = "Filename: /a.pem\nnotBefore: Nov 22 19:47:21 2026 GMT\n"
                          "notAfter: Foo 22 19:47:21 2026 GMT\n";
    assert_int_equal(lbw_haproxy_cert_parse(badtime, strlen(badtime), &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "line 3: notAfter: bad time"));
    const char *tx = "Filename: */etc/x.pem\nnotBefore: Jan  2 03:04:05 2020 GMT\n"
                     "notAfter: Feb  2 03:04:05 2030 GMT\nChain Subject: /CN=ca\n";
    assert_int_equal(lbw_haproxy_cert_parse(tx, strlen(tx), &c, err, sizeof(err)), 0);
    assert_string_equal(c.file, "/etc/x.pem");
    assert_int_equal(c.not_after, 1896231845);
}

static void times(void **state)
{
    (void)state;
    int64_t t;
#define T(s) lbw_haproxy_parse_time(s, strlen(s), &t)
    assert_int_equal(T("Feb  2 03:04:05 2030 GMT"), 0);
    assert_int_equal(t, 1896231845);
    assert_int_equal(T("Feb 2 03:04:05.123 2030 GMT"), 0);
    assert_int_equal(t, 1896231845);
    assert_int_equal(T("Dec 31 23:59:59 9999 GMT"), 0);
    assert_int_equal(T("Feb 31 03:04:05 2030 GMT"), -1);
    assert_int_equal(T("Feb  2 24:04:05 2030 GMT"), -1);
    assert_int_equal(T("Feb  2 03:04:05 2030 UTC"), -1);
    assert_int_equal(T("Feb  2 03:04:05 2030 GMT "), -1);
    assert_int_equal(T("Feb  2 03:04 2030 GMT"), -1);
    assert_int_equal(T("Fe"), -1);
    assert_int_equal(T(""), -1);
#undef T
}

static void cert_listing(void **state)
{
    (void)state;
    struct lbw_haproxy_cert_list l;
    char err[160];
    const char *text = "# transaction\n*/etc/haproxy/new.pem\n# filename\n/etc/haproxy/a.pem\n"
                       "/etc/haproxy/with space.pem\n/etc/haproxy/b\x01.pem\n\n";
    assert_int_equal(lbw_haproxy_cert_list_parse(text, strlen(text), &l, err, sizeof(err)), 0);
    assert_int_equal(l.total, 3);
    assert_int_equal(l.nfiles, 2);
    assert_string_equal(l.files[0], "/etc/haproxy/a.pem");
    assert_string_equal(l.files[1], "/etc/haproxy/with space.pem");
    reset();
    assert_int_equal(lbw_haproxy_cert_list_emit(&l, &Bare), 0);
    assert_true(got("lbwatch_haproxy_ssl_certs") == 3);
    lbw_haproxy_cert_list_free(&l);

    const char *none = "# filename\n";
    assert_int_equal(lbw_haproxy_cert_list_parse(none, strlen(none), &l, err, sizeof(err)), 0);
    assert_int_equal(l.total, 0);
    lbw_haproxy_cert_list_free(&l);
    const char *perm = "Permission denied\n";
    assert_int_equal(lbw_haproxy_cert_list_parse(perm, strlen(perm), &l, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "Permission denied"));

    char cmd[64];
    int n = lbw_haproxy_cert_command("/a b;c\\d.pem", cmd, sizeof(cmd));
    assert_string_equal(cmd, "show ssl cert /a\\ b\\;c\\\\d.pem\n");
    assert_int_equal(n, (int)strlen(cmd));
    assert_int_equal(lbw_haproxy_cert_command("/a.pem", cmd, 20), -1);
    assert_int_equal(lbw_haproxy_cert_command("/a.pem", cmd, 22), 21);
}

static void too_many_certs(void **state)
{
    (void)state;
    struct lbw_haproxy_cert_list l;
    char err[160];
    char *text = malloc(300 * 32 + 64);
    size_t len = (size_t)sprintf(text, "# filename\n");
    for (int i = 0; i < 300; i++)
        len += (size_t)sprintf(text + len, "/c/%d.pem\n", i);
    assert_int_equal(lbw_haproxy_cert_list_parse(text, len, &l, err, sizeof(err)), 0);
    assert_int_equal(l.total, 300);
    assert_int_equal(l.nfiles, LBW_HAPROXY_CERTS_MAX);
    assert_string_equal(l.files[LBW_HAPROXY_CERTS_MAX - 1], "/c/255.pem");
    lbw_haproxy_cert_list_free(&l);
    free(text);
}

/* --- key sizes ------------------------------------------------------------------------------ */

/* With 63-byte target and vantage names, the longest names HAProxy data can carry and every
 * column and state filled, every sample still fits a key. */
static void longest_keys_fit(void **state)
{
    (void)state;
    char target[64], vantage[64], px[LBW_HAPROXY_NAME_MAX + 1], sv[LBW_HAPROXY_NAME_MAX + 1];
    memset(target, 't', 63);
    memset(vantage, 'v', 63);
    memset(px, 'p', LBW_HAPROXY_NAME_MAX);
    memset(sv, 's', LBW_HAPROXY_NAME_MAX);
    target[63] = vantage[63] = px[LBW_HAPROXY_NAME_MAX] = sv[LBW_HAPROXY_NAME_MAX] = '\0';
    struct lbw_label lb[] = {{"probe", "haproxy"}, {"target", target}, {"vantage", vantage}};
    struct lbw_emitter e = {collect, NULL, lb, 3, 1};

    size_t len;
    char *ref = slurp("tests/fixtures/haproxy/show_stat.csv", &len);
    char *header_end = strchr(ref, '\n');
    char *text = malloc(len + 8192);
    size_t n = (size_t)(header_end + 1 - ref);
    memcpy(text, ref, n);
    /* a frontend, backend and server with every kept column set and the longest state */
    const char *types[] = {"0", "1", "2"};
    const char *svs[] = {"FRONTEND", "BACKEND", sv};
    for (int k = 0; k < 3; k++) {
        char *hdr = strndup(ref + 2, (size_t)(header_end - ref - 2));
        int col = 0;
        for (char *tok = strtok(hdr, ","); tok; tok = strtok(NULL, ","), col++) {
            const char *v = "1";
            if (strcmp(tok, "pxname") == 0)
                v = px;
            else if (strcmp(tok, "svname") == 0)
                v = svs[k];
            else if (strcmp(tok, "type") == 0)
                v = types[k];
            else if (strcmp(tok, "status") == 0)
                v = k == 0 ? "OPEN" : k == 1 ? "UP" : "MAINT";
            else if (strcmp(tok, "check_status") == 0)
                v = "PROCTOUT";
            n += (size_t)sprintf(text + n, "%s,", v);
        }
        text[n++] = '\n';
        free(hdr);
    }
    struct lbw_haproxy_stats st;
    char err[160];
    assert_int_equal(lbw_haproxy_stat_parse(text, n, &st, err, sizeof(err)), 0);
    assert_int_equal(st.nrows, 3);
    reset();
    assert_int_equal(lbw_haproxy_stats_emit(&st, &e), 0);
    for (size_t i = 0; i < Got.n; i++)
        assert_true(strcspn(Got.s[i].key, "{") <= LBW_HAPROXY_METRIC_MAX);
    assert_true(Got.n > 3 * 30);
    lbw_haproxy_stats_free(&st);

    struct lbw_haproxy_cert c = {.not_after = 1, .not_before = 1};
    memset(c.file, '"', LBW_HAPROXY_CERT_MAX); /* every byte escaped */
    assert_int_equal(lbw_haproxy_cert_emit(&c, &e), 0);
    struct lbw_haproxy_info in;
    memset(&in, 0, sizeof(in));
    memset(in.version, '\\', LBW_HAPROXY_VERSION_MAX);
    assert_int_equal(lbw_haproxy_info_emit(&in, &e), 0);
    free(text);
    free(ref);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reference_show_stat),
        cmocka_unit_test(reference_stats_page_csv),
        cmocka_unit_test(emit_names_and_values),
        cmocka_unit_test(emit_exporter_names),
        cmocka_unit_test(matches_haproxy_exporter),
        cmocka_unit_test(reordered_and_missing_columns),
        cmocka_unit_test(rows_skipped_and_statuses),
        cmocka_unit_test(bad_stat_inputs),
        cmocka_unit_test(too_many_rows),
        cmocka_unit_test(reference_show_info),
        cmocka_unit_test(bad_info_inputs),
        cmocka_unit_test(reference_cert_detail),
        cmocka_unit_test(cert_detail_errors),
        cmocka_unit_test(times),
        cmocka_unit_test(cert_listing),
        cmocka_unit_test(too_many_certs),
        cmocka_unit_test(longest_keys_fit),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
