/* test_lbpage.c - the status page's Balancer, Hosts and Traffic sections (node/lbpage,
 * node/hostpage) rendered by the page handler from a real LMDB store filled with known
 * samples: HAProxy statistics emitted by the real parsers from the fixtures (frontend,
 * backend, an UP and a DOWN server with their checks, the certificate), the 5xx ratio that is
 * not current but recent, two vantages (this node's shown), a failed scrape with its error, an
 * nginx stub_status with its request rate, an agent's host and process series over two groups,
 * captured traffic with rates and the handshake median; names that hold markup are escaped.
 * Also the quantile and number formats on their own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/buf.h"
#include "node/config.h"
#include "node/hostpage.h"
#include "node/page.h"
#include "node/pagefmt.h"
#include "node/status.h"
#include "node/store.h"
#include "node/web.h"
#include "probes/haproxy.h"
#include "probes/sample.h"
#include "tests/support/testutil.h"

static struct {
    char dir[256];
    struct lbw_store *store;
    struct lbw_status status;
    struct lbw_config cfg;
    int64_t now;
    char *page;
} G;

static void to_store(void *arg, const char *key, int64_t ts, double v)
{
    (void)arg;
    assert_int_equal(lbw_store_append(G.store, key, strlen(key), ts, v), 0);
}

static void put(const char *metric, const struct lbw_label *l, size_t n, int64_t ts, double v)
{
    char key[LBW_KEY_MAX];
    int len = lbw_key_build(key, sizeof(key), metric, l, n);
    assert_true(len > 0);
    assert_int_equal(lbw_store_append(G.store, key, (size_t)len, ts, v), 0);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    static char buf[1 << 16];
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* One HAProxy scrape of target lb as vantage saw it at ts, through the real parsers. */
static void haproxy_scrape(const char *vantage, int64_t ts)
{
    struct lbw_label base[] = {{"probe", "haproxy"}, {"target", "lb"}, {"vantage", vantage}};
    struct lbw_emitter e = {to_store, NULL, base, 3, ts};
    struct lbw_haproxy_stats st;
    struct lbw_haproxy_info in;
    struct lbw_haproxy_cert cert;
    char err[256];
    char *text = slurp("tests/fixtures/haproxy/show_stat.csv");
    /* the frontend's sessions differ by vantage, so the page shows whose view it is */
    char *scur = strstr(text, "fe_https,FRONTEND,,,0,");
    assert_non_null(scur);
    memcpy(scur + strlen("fe_https,FRONTEND,,,"), strcmp(vantage, "node1") == 0 ? "1" : "2", 1);
    assert_int_equal(lbw_haproxy_stat_parse(text, strlen(text), &st, err, sizeof(err)), 0);
    assert_int_equal(lbw_haproxy_stats_emit(&st, &e), 0);
    lbw_haproxy_stats_free(&st);
    text = slurp("tests/fixtures/haproxy/show_info.txt");
    assert_int_equal(lbw_haproxy_info_parse(text, strlen(text), &in, err, sizeof(err)), 0);
    assert_int_equal(lbw_haproxy_info_emit(&in, &e), 0);
    text = slurp("tests/fixtures/haproxy/show_ssl_cert_detail.txt");
    assert_int_equal(lbw_haproxy_cert_parse(text, strlen(text), &cert, err, sizeof(err)), 0);
    snprintf(cert.file, sizeof(cert.file), "/etc/haproxy/a&b.pem");
    assert_int_equal(lbw_haproxy_cert_emit(&cert, &e), 0);
    lbw_emit(&e, "probe_success", 1);
    lbw_emit1(&e, "lbwatch_haproxy_frontend_requests_denied_rate", "proxy", "fe_https", 0.25);
    /* a name with markup (HAProxy would not allow it; the page escapes it anyway) */
    struct lbw_label odd[] = {{"proxy", "<i>x</i>"}, {"state", "UP"}};
    lbw_emitn(&e, "haproxy_frontend_status", odd, 2, 1);
}

static void fill_haproxy(void)
{
    haproxy_scrape("node1", G.now - 4000);
    haproxy_scrape("node2", G.now - 3000);
    /* the 5xx ratio, emitted a few scrapes ago (not current), and one too old to show */
    struct lbw_label ratio[] = {{"probe", "haproxy"}, {"proxy", "be_app"}, {"target", "lb"},
                                {"vantage", "node2"}};
    put("lbwatch_haproxy_backend_http_5xx_ratio", ratio, 4, G.now - 30000, 0.125);
    ratio[3].value = "node1";
    put("lbwatch_haproxy_backend_http_5xx_ratio", ratio, 4, G.now - 20 * 60000, 0.5);
    /* a balancer whose statistics cannot be read */
    struct lbw_label gone[] = {{"probe", "haproxy"}, {"target", "lb-gone"}, {"vantage", "node2"}};
    put("probe_success", gone, 3, G.now - 2000, 0);
    struct lbw_label err[] = {{"error", "show info: connect: <refused>"}, {"probe", "haproxy"},
                              {"target", "lb-gone"}, {"vantage", "node2"}};
    put("lbwatch_probe_error_info", err, 4, G.now - 2000, 1);
}

static void fill_nginx(void)
{
    struct lbw_label l[] = {{"probe", "nginx"}, {"target", "ngx"}, {"vantage", "node2"}};
    static const char *const gauges[] = {"nginx_connections_active", "nginx_connections_reading",
                                         "nginx_connections_writing",
                                         "nginx_connections_waiting"};
    put("nginx_http_requests_total", l, 3, G.now - 61000, 1000);
    for (size_t i = 0; i < 4; i++)
        put(gauges[i], l, 3, G.now - 1000, 7 + (double)i);
    put("nginx_http_requests_total", l, 3, G.now - 1000, 1600);   /* 10 per second */
}

/* An agent lb1: host statistics in one group, process watches in another, traffic in a third. */
static void fill_agent(void)
{
    struct lbw_label host[] = {{"probe", "host"}, {"vantage", "lb1"}};
    int64_t t = G.now - 1000;
    put("node_netstat_TcpExt_ListenDrops", host, 2, t - 100000, 100);
    put("lbwatch_host_cpu_busy_ratio", host, 2, t, 0.42);
    put("node_load1", host, 2, t, 0.7);
    put("lbwatch_host_memory_available_ratio", host, 2, t, 0.05);
    put("node_memory_MemAvailable_bytes", host, 2, t, 1.5e9);
    put("lbwatch_host_filefd_used_ratio", host, 2, t, 0.012);
    put("node_netstat_Tcp_CurrEstab", host, 2, t, 321);
    put("node_netstat_TcpExt_ListenDrops", host, 2, t, 150);      /* 0.5 per second */

    struct lbw_label up[] = {{"probe", "procwatch"}, {"process", "haproxy"}, {"vantage", "lb1"}};
    put("lbwatch_process_up", up, 3, t, 1);
    put("lbwatch_process_restarts_total", up, 3, t, 2);
    up[1].value = "<nginx>";
    put("lbwatch_process_up", up, 3, t, 0);

    struct lbw_label tr[4] = {{"probe", "traffic"}, {"vantage", "lb1"}};
    struct {
        const char *metric, *n1, *v1, *n2, *v2;
        double total;
    } counters[] = {
        {"lbwatch_traffic_bytes_total", "direction", "in", "proto", "tcp", 100000},
        {"lbwatch_traffic_bytes_total", "direction", "out", "proto", "tcp", 500000},
        {"lbwatch_tcp_syn_total", NULL, NULL, NULL, NULL, 200},
        {"lbwatch_tcp_fin_total", NULL, NULL, NULL, NULL, 190},
        {"lbwatch_tcp_rst_total", NULL, NULL, NULL, NULL, 10},
        {"lbwatch_tcp_handshake_rtt_seconds_bucket", "le", "0.0001", "side", "server", 0},
        {"lbwatch_tcp_handshake_rtt_seconds_bucket", "le", "0.0005", "side", "server", 10},
        {"lbwatch_tcp_handshake_rtt_seconds_bucket", "le", "0.001", "side", "server", 30},
        {"lbwatch_tcp_handshake_rtt_seconds_bucket", "le", "+Inf", "side", "server", 40},
    };
    put("lbwatch_traffic_capture_up", tr, 2, t, 1);
    /* lb2 cannot capture: it reports that alone */
    struct lbw_label down[] = {{"probe", "traffic"}, {"vantage", "lb2"}};
    put("lbwatch_traffic_capture_up", down, 2, t, 0);
    for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
        size_t n = 2;
        if (counters[i].n1) {
            tr[n++] = (struct lbw_label){counters[i].n1, counters[i].v1};
            tr[n++] = (struct lbw_label){counters[i].n2, counters[i].v2};
        }
        put(counters[i].metric, tr, n, t - 100000, 0);
        put(counters[i].metric, tr, n, t, counters[i].total);
    }
}

static int setup(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(tu_tmpdir("lbw-lbpage", G.dir, sizeof(G.dir)), 0);
    struct lbw_store_options o = {.dir = G.dir, .no_sync = 1};
    assert_int_equal(lbw_store_open(&G.store, &o, err, sizeof(err)), 0);
    G.now = lbw_now_ms();
    fill_haproxy();
    fill_nginx();
    fill_agent();
    assert_int_equal(lbw_store_commit(G.store), 0);
    lbw_status_init(&G.status);
    struct lbw_node_status st = {.name = "node2", .id = 2};
    lbw_status_publish(&G.status, &st);
    G.cfg.node.name = "node2";
    G.cfg.node.id = 2;

    struct lbw_web_ctx ctx = {.store = G.store, .cfg = &G.cfg, .status = &G.status};
    struct lbw_reply r = {0};
    lbw_buf_init(&r.body);
    lbw_page_status(&ctx, &r);
    assert_int_equal(r.status, 200);
    G.page = lbw_buf_steal(&r.body, NULL);
    assert_non_null(G.page);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(G.page);
    lbw_store_close(G.store);
    lbw_status_destroy(&G.status);
    tu_rmrf(G.dir);
    return 0;
}

static void has(const char *what)
{
    if (!strstr(G.page, what))
        fail_msg("the page lacks: %s", what);
}

static void balancer_haproxy(void **state)
{
    (void)state;
    has("<h2>Balancer</h2>");
    /* this node's (node2's) view, with the version and the connection limit */
    has("<b>lb</b> &middot; HAProxy 2.6.12-1+deb12u4 &middot; seen from node2, ");
    has(" ago &middot; connections 0 / 9.98 k (0.0 %)</th>");
    /* frontend: status, sessions / limit, requests/s, 5xx responses, denied/s */
    has("<tr><td class=\"t\">fe_https</td><td><span class=\"b ok\">UP</span></td>"
        "<td class=\"num\">2 / 9.98 k</td><td class=\"num\">0 /s</td>"
        "<td class=\"num\">0</td><td class=\"num\">0.25 /s</td></tr>");
    assert_null(strstr(G.page, ">1 / 9.98 k<"));    /* node1's view is not the one shown */
    /* backend: status, servers, the recent (not current) 5xx ratio, sessions */
    has("<tr><td class=\"t\">be_app</td><td><span class=\"b ok\">UP</span></td>"
        "<td class=\"num\">1 active, 0 backup</td><td class=\"num\"><span class=\"b bad\">"
        "12.5 %</span></td><td class=\"num\">0 / 999</td><td></td></tr>");
    /* its servers, under it: UP with L7OK, DOWN with L4CON */
    has("<tr class=\"srv\"><td class=\"ind\">web1</td><td><span class=\"b ok\">UP</span></td>"
        "<td>L7OK</td><td></td><td class=\"num\">0</td><td></td></tr>");
    has("<tr class=\"srv\"><td class=\"ind\">web2</td><td><span class=\"b bad\">DOWN</span>"
        "</td><td>L4CON</td>");
    assert_true(strstr(G.page, ">web1<") > strstr(G.page, ">be_app<"));
    /* the certificate HAProxy loaded: its file (escaped) and days left */
    has("<code>/etc/haproxy/a&amp;b.pem</code> <span class=\"b ");
    /* markup in a name is text */
    has("<td class=\"t\">&lt;i&gt;x&lt;/i&gt;</td>");
    assert_null(strstr(G.page, "<i>x</i>"));
    /* a scrape that failed says why, escaped */
    has("<b>lb-gone</b> &middot; HAProxy &middot; seen from node2, ");
    has(" ago &middot; <span class=\"b bad\">NO STATISTICS</span>");
    has("<span class=\"err\">show info: connect: &lt;refused&gt;</span>");
}

/* Seen from another node, which has no data of its own: the first vantage's view. */
static void balancer_other_vantage(void **state)
{
    (void)state;
    struct lbw_config cfg = G.cfg;
    cfg.node.name = "node9";
    struct lbw_web_ctx ctx = {.store = G.store, .cfg = &cfg, .status = &G.status};
    struct lbw_reply r = {0};
    lbw_buf_init(&r.body);
    lbw_page_status(&ctx, &r);
    assert_non_null(strstr(r.body.data, "seen from node1, "));
    assert_non_null(strstr(r.body.data, "<td class=\"num\">1 / 9.98 k</td>"));
    /* node1's 5xx ratio is twenty minutes old: not shown */
    assert_non_null(strstr(r.body.data, "<span class=\"sub\">too few requests</span>"));
    lbw_buf_free(&r.body);
}

static void balancer_nginx(void **state)
{
    (void)state;
    has("<tr><td class=\"t\">ngx</td><td>node2<span class=\"sub\">");
    has(" ago</span></td><td class=\"num\">7</td><td class=\"num\">8</td>"
        "<td class=\"num\">9</td><td class=\"num\">10</td><td class=\"num\">10 /s</td></tr>");
}

static void hosts(void **state)
{
    (void)state;
    has("<h2>Hosts</h2>");
    has("<tr><td class=\"t\">lb1</td>"
        "<td class=\"num\"><span class=\"b ok\">42.0 %</span></td>"
        "<td class=\"num\">0.7</td>"
        "<td class=\"num\"><span class=\"b bad\">5.0 %</span><span class=\"sub\">1.5 GB</span></td>"
        "<td class=\"num\"><span class=\"b ok\">1.2 %</span></td>"
        "<td class=\"num\">321</td>"
        "<td class=\"num\">0.5 /s</td>");
    has("<span class=\"b ok\">haproxy</span> UP <span class=\"sub\">2 restarts</span>");
    has("<span class=\"b bad\">&lt;nginx&gt;</span> DOWN ");
    assert_null(strstr(G.page, "<nginx>"));
    /* a balancer's node is not a host: only agents with host series are */
    assert_null(strstr(G.page, "<td class=\"t\">node2</td><td class=\"num\">"));
}

static void traffic(void **state)
{
    (void)state;
    has("<h2>Traffic (last 5 minutes)</h2>");
    has("<tr><td class=\"t\">lb1</td><td class=\"num\">tcp 1 kB/s</td>"
        "<td class=\"num\">tcp 5 kB/s</td><td class=\"num\">2 /s</td><td class=\"num\">1.9 /s"
        "</td><td class=\"num\">0.1 /s</td><td class=\"num\">750 \xc2\xb5s server</td></tr>");
    has("<tr><td class=\"t\">lb2</td><td colspan=\"6\"><span class=\"b bad\">capture down"
        "</span>");
}

/* A page without balancer, agent or traffic series has none of the sections. */
static void sections_only_with_data(void **state)
{
    (void)state;
    char dir[256], err[256];
    struct lbw_store *empty;
    assert_int_equal(tu_tmpdir("lbw-lbpage-empty", dir, sizeof(dir)), 0);
    struct lbw_store_options o = {.dir = dir};
    assert_int_equal(lbw_store_open(&empty, &o, err, sizeof(err)), 0);
    struct lbw_web_ctx ctx = {.store = empty, .cfg = &G.cfg, .status = &G.status};
    struct lbw_reply r = {0};
    lbw_buf_init(&r.body);
    lbw_page_status(&ctx, &r);
    assert_null(strstr(r.body.data, "<h2>Balancer"));
    assert_null(strstr(r.body.data, "<h2>Hosts"));
    assert_null(strstr(r.body.data, "<h2>Traffic"));
    lbw_buf_free(&r.body);
    lbw_store_close(empty);
    tu_rmrf(dir);
}

static void quantile(void **state)
{
    (void)state;
    const double le[] = {0.001, 0.01, 0.1, INFINITY};
    const double c1[] = {0, 50, 100, 100};
    assert_float_equal(lbw_hostpage_quantile(0.5, le, c1, 4), 0.01, 1e-12);
    assert_float_equal(lbw_hostpage_quantile(0.75, le, c1, 4), 0.055, 1e-12);
    assert_float_equal(lbw_hostpage_quantile(0.25, le, c1, 4), 0.0055, 1e-12);
    const double c2[] = {10, 10, 10, 40};       /* most above the last finite bound */
    assert_float_equal(lbw_hostpage_quantile(0.5, le, c2, 4), 0.1, 0);
    const double c3[] = {40, 40, 40, 40};       /* all in the first bucket: from 0 */
    assert_float_equal(lbw_hostpage_quantile(0.5, le, c3, 4), 0.0005, 1e-12);
    const double none[] = {0, 0, 0, 0};
    assert_true(isnan(lbw_hostpage_quantile(0.5, le, none, 4)));
    assert_true(isnan(lbw_hostpage_quantile(0.5, le, none, 0)));
}

static void formats(void **state)
{
    (void)state;
    char t[48];
    assert_string_equal(lbw_pagefmt_si(9984, "", t, sizeof(t)), "9.98 k");
    assert_string_equal(lbw_pagefmt_si(1.5e9, "B", t, sizeof(t)), "1.5 GB");
    assert_string_equal(lbw_pagefmt_si(0.25, "/s", t, sizeof(t)), "0.25 /s");
    assert_string_equal(lbw_pagefmt_si(0.00075, "s", t, sizeof(t)), "750 \xc2\xb5s");
    assert_string_equal(lbw_pagefmt_si(0.0123, "s", t, sizeof(t)), "12.3 ms");
    assert_string_equal(lbw_pagefmt_si(0, "s", t, sizeof(t)), "0 s");
    assert_string_equal(lbw_pagefmt_si(321, "", t, sizeof(t)), "321");
    assert_string_equal(lbw_pagefmt_si(NAN, "s", t, sizeof(t)), "-");
    assert_string_equal(lbw_pagefmt_percent(0.125, t, sizeof(t)), "12.5 %");
    assert_string_equal(lbw_pagefmt_percent(0.0005, t, sizeof(t)), "0.05 %");
    assert_string_equal(lbw_pagefmt_percent(0, t, sizeof(t)), "0.0 %");
    assert_string_equal(lbw_pagefmt_ago(1000, 5500, t, sizeof(t)), "4 s ago");
    assert_string_equal(lbw_pagefmt_ago(0, 600000, t, sizeof(t)), "10 min ago");
    assert_string_equal(lbw_pagefmt_ago(0, 3 * 3600000, t, sizeof(t)), "3 h ago");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(balancer_haproxy),
        cmocka_unit_test(balancer_other_vantage),
        cmocka_unit_test(balancer_nginx),
        cmocka_unit_test(hosts),
        cmocka_unit_test(traffic),
        cmocka_unit_test(sections_only_with_data),
        cmocka_unit_test(quantile),
        cmocka_unit_test(formats),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
