/* test_collectors.c - the agent's collector kinds (node/collector.h): each kind's section of
 * agent.yaml and the running collectors on this machine.
 *
 * Config: every kind refuses what its header says with FILE:LINE:COL and the dotted path
 * (missing or empty required settings, bad values, ports listed twice or too many, process
 * labels that clash, names too long, bad addresses, unknown keys); the defaults hold.
 * Running, through the kind's open and collect with the agent's base labels:
 *   host       the fixture /proc tree: load, file descriptors, netstat under node_exporter's
 *              names with probe="host"; filesystems: none leaves filesystems out
 *   processes  this test binary by name is up with a count and its start time; a watch by a
 *              pidfile that does not exist is down
 *   sockets    a loopback listener with K connections not accepted: a listen queue of K
 *   traffic    an interface that does not exist: the collector opens (the agent goes on),
 *              every round emits the counters and lbwatch_traffic_capture_up 0 and fails with
 *              the reason; on lo (when capturing is permitted) TCP traffic made while the
 *              agent's loop runs is counted on the watched port, capture up 1
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "node/agentconf.h"
#include "node/collector.h"
#include "node/pki.h"
#include "tests/support/samplecap.h"
#include "tests/support/testutil.h"

#define TLS "agent: {listen: 127.0.0.1:8450}\ntls: {ca: pki/ca.crt, cert: pki/lb1.crt, " \
            "key: pki/lb1.key}\n"

static char dir[256];
static struct samplecap cap;
static uv_loop_t loop;

static int group_setup(void **state)
{
    struct lbw_identity agent = {LBW_ID_AGENT, 0, "lb1"};
    const char *const ips[] = {"127.0.0.1", NULL};
    char err[256] = "", pki[300];
    (void)state;
    if (tu_tmpdir("lbw-collectors", dir, sizeof(dir)) != 0)
        return -1;
    snprintf(pki, sizeof(pki), "%s/pki", dir);
    if (lbw_pki_init(pki, 30, err, sizeof(err)) != 0 ||
        lbw_pki_issue(pki, &agent, ips, NULL, 30, err, sizeof(err)) != 0) {
        fprintf(stderr, "pki: %s\n", err);
        return -1;
    }
    sc_init(&cap);
    return uv_loop_init(&loop);
}

static int group_teardown(void **state)
{
    (void)state;
    uv_run(&loop, UV_RUN_DEFAULT); /* closed captures' handles */
    uv_loop_close(&loop);
    sc_free(&cap);
    tu_rmrf(dir);
    return 0;
}

/* ---- config ------------------------------------------------------------------------------ */

static struct lbw_agentconf *load(const char *collectors, char *err, size_t errlen)
{
    char text[4096], name[300];
    struct lbw_agentconf *c = NULL;
    snprintf(text, sizeof(text), TLS "collectors:\n%s", collectors);
    snprintf(name, sizeof(name), "%s/agent.yaml", dir);
    if (lbw_agentconf_parse(name, text, strlen(text), &c, err, errlen) != 0)
        assert_null(c);
    return c;
}

static void expect_error(const char *collectors, const char *want)
{
    char err[1024] = "";
    assert_null(load(collectors, err, sizeof(err)));
    if (!strstr(err, want))
        fail_msg("got: %s\nwant: ...%s", err, want);
}

static void host_config(void **state)
{
    (void)state;
    expect_error("  host: {filesystems: some}\n",
                 "agent.yaml:4:23: collectors.host.filesystems: unknown value \"some\" (use all, "
                 "local or none)");
    expect_error("  host: {proc: /proc}\n",
                 "agent.yaml:4:10: unknown key 'proc' in 'collectors.host' (expected proc_dir, "
                 "filesystems)");
    expect_error("  host: [1]\n", "agent.yaml:4:9: collectors.host: expected a mapping");
}

static void processes_config(void **state)
{
    (void)state;
    expect_error("  processes:\n", "agent.yaml:4:13: collectors.processes: needs a list of "
                                   "processes");
    expect_error("  processes: []\n",
                 "agent.yaml:4:14: collectors.processes: needs 1 to 64 processes, got 0");
    expect_error("  processes: {name: haproxy}\n",
                 "agent.yaml:4:14: collectors.processes: expected a sequence");
    expect_error("  processes: [{label: x}]\n",
                 "agent.yaml:4:15: collectors.processes[0].name: needs name");
    expect_error("  processes: [{name: haproxy}, {name: haproxy}]\n",
                 "agent.yaml:4:39: collectors.processes[1].name: process label \"haproxy\" is "
                 "already used by entry 0 (set label:)");
    expect_error("  processes: [{name: a}, {pidfile: /run/a.pid, label: a}]\n",
                 "agent.yaml:4:55: collectors.processes[1].label: process label \"a\"");
    expect_error("  processes: [{name: /usr/sbin/haproxy}]\n",
                 "collectors.processes[0].name: must be a program name of 1 to 63 characters");
    expect_error("  processes: [{name: "
                 "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcd}]\n",
                 "collectors.processes[0].name: must be a program name");
    expect_error("  processes: [{name: a, pid: 1}]\n",
                 "unknown key 'pid' in 'collectors.processes[0]' (expected name, pidfile, "
                 "label)");
    expect_error("  processes: [{name: a, label: ''}]\n",
                 "collectors.processes[0].label: must not be empty");
    char many[4096] = "  processes:\n";
    for (int i = 0; i <= 64; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "    - {name: p%d}\n", i);
    expect_error(many, "collectors.processes: needs 1 to 64 processes, got 65");
}

static void sockets_config(void **state)
{
    (void)state;
    expect_error("  sockets:\n", "agent.yaml:4:11: collectors.sockets: needs the ports");
    expect_error("  sockets: {}\n", "agent.yaml:4:12: missing required key 'ports' in "
                                    "'collectors.sockets'");
    expect_error("  sockets: {ports: []}\n",
                 "agent.yaml:4:20: collectors.sockets.ports: needs at least one port");
    expect_error("  sockets: {ports: [443, 80, 443]}\n",
                 "agent.yaml:4:30: collectors.sockets.ports: port 443 is listed twice");
    expect_error("  sockets: {ports: [0]}\n",
                 "agent.yaml:4:21: collectors.sockets.ports[0]: must be between 1 and 65535");
    expect_error("  sockets: {ports: 443}\n",
                 "agent.yaml:4:20: collectors.sockets.ports: expected a sequence");
    char many[512] = "  sockets: {ports: [1";
    for (int i = 2; i <= 33; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), ", %d", i);
    strcat(many, "]}\n");
    expect_error(many, "collectors.sockets.ports: at most 32 ports, got 33");
}

static void traffic_config(void **state)
{
    (void)state;
    expect_error("  traffic:\n", "agent.yaml:4:11: collectors.traffic: needs an interface");
    expect_error("  traffic: {ports: [443]}\n",
                 "missing required key 'interface' in 'collectors.traffic'");
    expect_error("  traffic: {interface: eth0}\n",
                 "missing required key 'ports' in 'collectors.traffic'");
    expect_error("  traffic: {interface: averyveryverylongname, ports: [443]}\n",
                 "agent.yaml:4:24: collectors.traffic.interface: must be an interface name of "
                 "1 to 15 characters");
    expect_error("  traffic: {interface: eth0, ports: [443], local: [10.0.0.0/33]}\n",
                 "agent.yaml:4:52: collectors.traffic.local: bad address \"10.0.0.0/33\"");
    expect_error("  traffic: {interface: eth0, ports: [443], local: []}\n",
                 "collectors.traffic.local: needs 1 to 64 addresses, got 0");
    expect_error("  traffic: {interface: eth0, ports: [443], flows: 4}\n",
                 "agent.yaml:4:51: collectors.traffic.flows: must be between 8 and 4194304");
    expect_error("  traffic: {interface: eth0, ports: [443], snaplen: 96}\n",
                 "unknown key 'snaplen' in 'collectors.traffic' (expected interface, ports, "
                 "local, flows, buffer)");
    expect_error("  traffic: {interface: eth0, ports: [443], buffer: 4KiB}\n",
                 "agent.yaml:4:52: collectors.traffic.buffer: must be at least 256KiB, got 4KiB");
    char err[1024] = "";
    struct lbw_agentconf *c = load("  traffic:\n    interface: any\n    ports: [443, 80]\n"
                                   "    local: [192.0.2.1, \"2001:db8::/32\"]\n",
                                   err, sizeof(err));
    if (!c)
        fail_msg("%s", err);
    assert_int_equal(c->ncollectors, 1);
    lbw_agentconf_free(c);
}

/* ---- running ----------------------------------------------------------------------------- */

/* Opens the only collector of the config "collectors:\n<collectors>". */
static struct lbw_collector open_one(const char *collectors)
{
    char err[1024] = "";
    struct lbw_collector col;
    struct lbw_collector_env env = {&loop};
    struct lbw_agentconf *c = load(collectors, err, sizeof(err));
    if (!c)
        fail_msg("%s", err);
    assert_int_equal(c->ncollectors, 1);
    if (c->collectors[0].kind->open(c->collectors[0].config, &env, &col, err, sizeof(err)) != 0)
        fail_msg("open: %s", err);
    lbw_agentconf_free(c);
    return col;
}

/* One round of col into cap with the agent's labels. Returns collect's result. */
static int collect(struct lbw_collector *col, char *err, size_t errlen)
{
    struct lbw_label base[] = {{"probe", col->name}, {"vantage", "lb1"}};
    struct lbw_emitter e = sc_emitter(&cap);
    e.base = base;
    e.nbase = 2;
    sc_reset(&cap);
    err[0] = '\0';
    return col->collect(col->state, &e, err, errlen);
}

static void host_collector(void **state)
{
    (void)state;
    char cwd[PATH_MAX], text[PATH_MAX + 128], err[256];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    snprintf(text, sizeof(text), "  host: {proc_dir: %s/tests/fixtures/proc/host, "
                                 "filesystems: none}\n", cwd);
    struct lbw_collector col = open_one(text);
    assert_string_equal(col.name, "host");
    assert_int_equal(collect(&col, err, sizeof(err)), 0);
    assert_int_equal(cap.dropped, 0);
    assert_int_equal(sc_duplicates(&cap), 0);
    assert_float_equal(sc_val(&cap, "node_load5{probe=\"host\",vantage=\"lb1\"}"), 0.45, 1e-12);
    assert_float_equal(sc_val(&cap, "node_filefd_allocated{probe=\"host\",vantage=\"lb1\"}"),
                       1351, 0);
    assert_float_equal(sc_val(&cap, "node_netstat_Tcp_CurrEstab{probe=\"host\",vantage=\"lb1\"}"),
                       31, 0);
    assert_int_equal(sc_count_prefix(&cap, "node_filesystem_"), 0);
    lbw_collector_close(&col);

    col = open_one("  host:\n"); /* this machine, filesystems local */
    assert_int_equal(collect(&col, err, sizeof(err)), 0);
    assert_true(sc_count_prefix(&cap, "node_cpu_seconds_total{") > 0);
    assert_true(sc_val(&cap, "node_memory_MemTotal_bytes{probe=\"host\",vantage=\"lb1\"}") > 0);
    lbw_collector_close(&col);
}

static void processes_collector(void **state)
{
    (void)state;
    char text[512], err[256];
    snprintf(text, sizeof(text), "  processes:\n    - {name: test_collectors}\n"
                                 "    - {pidfile: %s/none.pid, label: gone}\n", dir);
    struct lbw_collector col = open_one(text);
    assert_int_equal(collect(&col, err, sizeof(err)), 0);
    assert_float_equal(sc_val(&cap, "lbwatch_process_up{probe=\"processes\","
                                    "process=\"test_collectors\",vantage=\"lb1\"}"), 1, 0);
    assert_true(sc_val(&cap, "lbwatch_process_count{probe=\"processes\","
                             "process=\"test_collectors\",vantage=\"lb1\"}") >= 1);
    assert_true(sc_val(&cap, "lbwatch_process_start_time_seconds{probe=\"processes\","
                             "process=\"test_collectors\",vantage=\"lb1\"}") > 1e9);
    assert_float_equal(sc_val(&cap, "lbwatch_process_up{probe=\"processes\",process=\"gone\","
                                    "vantage=\"lb1\"}"), 0, 0);
    lbw_collector_close(&col);
}

static void sockets_collector(void **state)
{
    (void)state;
    enum { K = 3 };
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    int l = socket(AF_INET, SOCK_STREAM, 0), c[K];
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(l, 16), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &alen), 0);
    for (int i = 0; i < K; i++) {
        c[i] = socket(AF_INET, SOCK_STREAM, 0);
        assert_int_equal(connect(c[i], (struct sockaddr *)&a, sizeof(a)), 0);
    }
    unsigned port = ntohs(a.sin_port);
    char text[128], key[160], err[256];
    snprintf(text, sizeof(text), "  sockets: {ports: [%u]}\n", port);
    struct lbw_collector col = open_one(text);
    assert_int_equal(collect(&col, err, sizeof(err)), 0);
    snprintf(key, sizeof(key), "lbwatch_tcp_listen_queue_length{port=\"%u\",probe=\"sockets\","
                               "vantage=\"lb1\"}", port);
    assert_float_equal(sc_val(&cap, key), K, 0);
    snprintf(key, sizeof(key), "lbwatch_tcp_listeners{port=\"%u\",probe=\"sockets\","
                               "vantage=\"lb1\"}", port);
    assert_float_equal(sc_val(&cap, key), 1, 0);
    lbw_collector_close(&col);
    for (int i = 0; i < K; i++)
        close(c[i]);
    close(l);
}

#define CAPTURE_UP "lbwatch_traffic_capture_up{probe=\"traffic\",vantage=\"lb1\"}"

static void traffic_without_capture(void **state)
{
    (void)state;
    char err[512];
    struct lbw_collector col = open_one("  traffic: {interface: nosuch0, ports: [443]}\n");
    for (int round = 0; round < 2; round++) {
        assert_int_equal(collect(&col, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "capture: nosuch0: "));
        assert_float_equal(sc_val(&cap, CAPTURE_UP), 0, 0);
        assert_float_equal(sc_val(&cap, "lbwatch_traffic_packets_total{direction=\"in\","
                                        "probe=\"traffic\",proto=\"tcp\",vantage=\"lb1\"}"),
                           0, 0);
        assert_true(sc_count_prefix(&cap, "lbwatch_tcp_handshake_rtt_seconds_bucket{") > 0);
    }
    lbw_collector_close(&col);
    uv_run(&loop, UV_RUN_NOWAIT);
}

/* The loop runs while a thread-free exchange happens on lo: connect, send, accept, read. */
static void traffic_on_lo(void **state)
{
    (void)state;
    char err[512], text[128], key[200];
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(l, 4), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &alen), 0);
    unsigned port = ntohs(a.sin_port);
    snprintf(text, sizeof(text), "  traffic: {interface: lo, ports: [%u]}\n", port);
    struct lbw_collector col = open_one(text);
    if (collect(&col, err, sizeof(err)) != 0) {
        lbw_collector_close(&col);
        close(l);
        if (strstr(err, "CAP_NET_RAW")) {
            fprintf(stderr, "note: capturing on lo is not permitted here: %s\n", err);
            skip();
        }
        fail_msg("traffic on lo: %s", err);
    }
    int c = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(write(c, "hello", 5), 5);
    int s = accept(l, NULL, NULL);
    char buf[8];
    assert_int_equal(read(s, buf, sizeof(buf)), 5);
    snprintf(key, sizeof(key), "lbwatch_traffic_port_packets_total{direction=\"in\",port=\"%u\","
                               "probe=\"traffic\",vantage=\"lb1\"}", port);
    double in = 0;
    for (int i = 0; i < 200 && in < 3; i++) { /* SYN, ACK, data: up to 2 s */
        uv_run(&loop, UV_RUN_NOWAIT);
        assert_int_equal(collect(&col, err, sizeof(err)), 0);
        in = sc_val(&cap, key);
        if (in < 3)
            usleep(10000);
    }
    assert_true(in >= 3);
    assert_float_equal(sc_val(&cap, CAPTURE_UP), 1, 0);
    assert_true(sc_val(&cap, "lbwatch_tcp_syn_total{probe=\"traffic\",vantage=\"lb1\"}") >= 1);
    lbw_collector_close(&col);
    uv_run(&loop, UV_RUN_NOWAIT);
    close(s);
    close(c);
    close(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(host_config),
        cmocka_unit_test(processes_config),
        cmocka_unit_test(sockets_config),
        cmocka_unit_test(traffic_config),
        cmocka_unit_test(host_collector),
        cmocka_unit_test(processes_collector),
        cmocka_unit_test(sockets_collector),
        cmocka_unit_test(traffic_without_capture),
        cmocka_unit_test(traffic_on_lo),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
