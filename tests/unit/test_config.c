/* test_config.c - the node configuration: a full config read back field by field, defaults,
 * relative paths, the shipped example, exact "FILE:LINE:COL: reason" messages for bad
 * configs, the duration/size/host:port grammars, and the yamldoc reader on its own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "node/config.h"
#include "node/yamldoc.h"
#include "tests/support/testutil.h"

#define FILE_NAME "/etc/lbwatch/lbwatch.yaml"
#define MS_DAY (24ull * 3600 * 1000)

static struct lbw_config *parse_ok(const char *text)
{
    struct lbw_config *c = NULL;
    char err[1024] = "";

    if (lbw_config_parse(FILE_NAME, text, strlen(text), &c, err, sizeof(err)) != 0)
        fail_msg("unexpected error: %s", err);
    assert_non_null(c);
    return c;
}

/* Parses text as "lbwatch.yaml" and asserts the exact error. */
static void expect_error_len(const char *text, size_t len, const char *want)
{
    struct lbw_config *c = (struct lbw_config *)1;
    char err[1024] = "";

    if (lbw_config_parse("lbwatch.yaml", text, len, &c, err, sizeof(err)) == 0)
        fail_msg("accepted, expected: %s\n--- config:\n%s", want, text);
    assert_null(c);
    if (strcmp(err, want) != 0)
        fail_msg("config:\n%s\n--- got:  %s\n--- want: %s", text, err, want);
}

static void expect_error(const char *text, const char *want)
{
    expect_error_len(text, strlen(text), want);
}

#define NODE "node: {name: n1, data_dir: /d}\n"

/* --- good configs ---------------------------------------------------------------------------- */

static const char full_config[] =
    "node:\n"
    "  name: lb-mon.1\n"
    "  id: 3\n"
    "  data_dir: data\n"
    "  log_level: debug\n"
    "web:\n"
    "  listen: \"[::1]:9000\"\n"
    "tls:\n"
    "  ca: pki/ca.crt\n"
    "  cert: /abs/n.crt\n"
    "  key: ./pki/n.key\n"
    "probes:\n"
    "  interval: 1m\n"
    "  timeout: 1500ms\n"
    "store:\n"
    "  max_size: 512MiB\n"
    "  retention:\n"
    "    raw: 1d12h\n"
    "    1m: 2w\n"
    "    1h: 365d\n"
    "targets:\n"
    "  - name: tls-only\n"
    "    address: 192.0.2.1:443\n"
    "    tls: true\n"
    "  - name: www\n"
    "    address: www.example.com:8443\n"
    "    server_name: site.example.com\n"
    "    ca_file: ca/www.pem\n"
    "    interval: 30s\n"
    "    timeout: 10s\n"
    "    tls: false\n"
    "    http:\n"
    "      path: /healthz?full=1\n"
    "      expect_status: 204\n"
    "      expect_body: \"all good\"\n"
    "    redirect_port: 80\n"
    "  - name: v6\n"
    "    address: \"[2001:db8::1]:443\"\n"
    "    http: true\n";

static void full_config_every_field(void **state)
{
    (void)state;
    struct lbw_config *c = parse_ok(full_config);

    assert_string_equal(c->path, FILE_NAME);
    assert_string_equal(c->node.name, "lb-mon.1");
    assert_int_equal(c->node.id, 3);
    assert_string_equal(c->node.data_dir, "/etc/lbwatch/data");
    assert_int_equal(c->node.log_level, LBW_LOG_DEBUG);
    assert_string_equal(c->web.listen, "[::1]:9000");
    assert_string_equal(c->web.listen_host, "::1");
    assert_int_equal(c->web.listen_port, 9000);
    assert_string_equal(c->tls.ca, "/etc/lbwatch/pki/ca.crt");
    assert_string_equal(c->tls.cert, "/abs/n.crt");
    assert_string_equal(c->tls.key, "/etc/lbwatch/pki/n.key");
    assert_int_equal(c->probes.interval_ms, 60000);
    assert_int_equal(c->probes.timeout_ms, 1500);
    assert_int_equal(c->store.max_size, 512ull << 20);
    assert_int_equal(c->store.retention_raw_ms, 36ll * 3600 * 1000);
    assert_int_equal(c->store.retention_1m_ms, 14 * MS_DAY);
    assert_int_equal(c->store.retention_1h_ms, 365 * MS_DAY);
    assert_int_equal(c->ntargets, 3);

    const struct lbw_target *t = &c->targets[0];
    assert_string_equal(t->name, "tls-only");
    assert_string_equal(t->address, "192.0.2.1:443");
    assert_string_equal(t->host, "192.0.2.1");
    assert_int_equal(t->port, 443);
    assert_string_equal(t->server_name, "192.0.2.1");
    assert_null(t->ca_file);
    assert_int_equal(t->interval_ms, 60000);
    assert_int_equal(t->timeout_ms, 1500);
    assert_int_equal(t->tls, 1);
    assert_int_equal(t->http.enabled, 0);
    assert_null(t->http.path);
    assert_int_equal(t->redirect_port, 0);

    t = &c->targets[1];
    assert_string_equal(t->name, "www");
    assert_string_equal(t->address, "www.example.com:8443");
    assert_string_equal(t->host, "www.example.com");
    assert_int_equal(t->port, 8443);
    assert_string_equal(t->server_name, "site.example.com");
    assert_string_equal(t->ca_file, "/etc/lbwatch/ca/www.pem");
    assert_int_equal(t->interval_ms, 30000);
    assert_int_equal(t->timeout_ms, 10000);
    assert_int_equal(t->tls, 0);
    assert_int_equal(t->http.enabled, 1);
    assert_string_equal(t->http.path, "/healthz?full=1");
    assert_int_equal(t->http.expect_status, 204);
    assert_string_equal(t->http.expect_body, "all good");
    assert_int_equal(t->redirect_port, 80);

    t = &c->targets[2];
    assert_string_equal(t->address, "[2001:db8::1]:443");
    assert_string_equal(t->host, "2001:db8::1");
    assert_string_equal(t->server_name, "2001:db8::1");
    assert_int_equal(t->http.enabled, 1);
    assert_string_equal(t->http.path, "/");
    assert_int_equal(t->http.expect_status, 0);
    assert_null(t->http.expect_body);
    lbw_config_free(c);
}

static void defaults_filled_in(void **state)
{
    (void)state;
    struct lbw_config *c = parse_ok("node:\n  name: n\n  data_dir: /var/lib/lbwatch\n"
                                    "targets:\n  - {name: a, address: \"a.example:443\"}\n");

    assert_int_equal(c->node.id, 1);
    assert_int_equal(c->node.log_level, LBW_LOG_INFO);
    assert_string_equal(c->web.listen, "127.0.0.1:8441");
    assert_string_equal(c->web.listen_host, "127.0.0.1");
    assert_int_equal(c->web.listen_port, 8441);
    assert_null(c->tls.ca);
    assert_null(c->tls.cert);
    assert_null(c->tls.key);
    assert_int_equal(c->probes.interval_ms, 10000);
    assert_int_equal(c->probes.timeout_ms, 5000);
    assert_int_equal(c->store.max_size, 1ull << 30);
    assert_int_equal(c->store.retention_raw_ms, 2 * MS_DAY);
    assert_int_equal(c->store.retention_1m_ms, 30 * MS_DAY);
    assert_int_equal(c->store.retention_1h_ms, 400 * MS_DAY);
    assert_int_equal(c->ntargets, 1);
    assert_string_equal(c->targets[0].server_name, "a.example");
    assert_int_equal(c->targets[0].interval_ms, 10000);
    assert_int_equal(c->targets[0].timeout_ms, 5000);
    assert_int_equal(c->targets[0].tls, 1);
    assert_int_equal(c->targets[0].http.enabled, 0);
    lbw_config_free(c);

    c = parse_ok("node: {name: n, id: 7, data_dir: /d}\nprobes: {interval: 3s, timeout: 1s}\n"
                 "targets:\n  - {name: a, address: \"a:1\", interval: 2s}\n  - {name: b, "
                 "address: \"b:1\", http: false}\n");
    assert_string_equal(c->web.listen, "127.0.0.1:8447");
    assert_int_equal(c->targets[0].interval_ms, 2000);
    assert_int_equal(c->targets[0].timeout_ms, 1000);
    assert_int_equal(c->targets[1].interval_ms, 3000);
    assert_int_equal(c->targets[1].http.enabled, 0);
    lbw_config_free(c);

    c = parse_ok(NODE "targets: []\n");
    assert_int_equal(c->ntargets, 0);
    assert_null(c->targets);
    lbw_config_free(c);
}

static void relative_paths_without_directory_stay_as_written(void **state)
{
    (void)state;
    struct lbw_config *c = NULL;
    char err[512];
    const char *text = "node: {name: n, data_dir: ./data}\n";

    assert_int_equal(lbw_config_parse("lbwatch.yaml", text, strlen(text), &c, err, sizeof(err)), 0);
    assert_string_equal(c->node.data_dir, "./data");
    lbw_config_free(c);
}

static void load_resolves_against_real_directory(void **state)
{
    (void)state;
    char dir[256], path[512], want[PATH_MAX + 128], real[PATH_MAX], err[1024];
    struct lbw_config *c = NULL;
    const char *text = "node:\n  name: n\n  data_dir: state\n";

    assert_int_equal(tu_tmpdir("lbw-cfg", dir, sizeof(dir)), 0);
    snprintf(path, sizeof(path), "%s/lbwatch.yaml", dir);
    assert_int_equal(tu_write_file(path, text, strlen(text)), 0);
    assert_non_null(realpath(dir, real));
    snprintf(want, sizeof(want), "%s/state", real);
    if (lbw_config_load(path, &c, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    assert_string_equal(c->node.data_dir, want);
    assert_string_equal(c->path, path);
    lbw_config_free(c);

    text = "node:\n  name: n\n  data_dir: state\n  colour: blue\n";
    assert_int_equal(tu_write_file(path, text, strlen(text)), 0);
    assert_int_equal(lbw_config_load(path, &c, err, sizeof(err)), -1);
    assert_null(c);
    snprintf(want, sizeof(want),
             "%s:4:3: unknown key 'colour' in 'node' (expected name, id, data_dir, log_level)", path);
    assert_string_equal(err, want);

    snprintf(path, sizeof(path), "%s/missing.yaml", dir);
    assert_int_equal(lbw_config_load(path, &c, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s: No such file or directory", path);
    assert_string_equal(err, want);
    assert_int_equal(lbw_config_load(dir, &c, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s: not a regular file", dir);
    assert_string_equal(err, want);
    tu_rmrf(dir);
}

static void example_config_is_valid(void **state)
{
    (void)state;
    struct lbw_config *c = NULL;
    char err[1024];

    if (lbw_config_load("images/lbwatch.example.yaml", &c, err, sizeof(err)) != 0)
        fail_msg("images/lbwatch.example.yaml: %s", err);
    assert_int_equal(c->ntargets, 3);
    assert_non_null(c->tls.key);
    assert_int_equal(c->targets[0].http.enabled, 0);
    assert_int_equal(c->targets[1].http.enabled, 1);
    assert_int_equal(c->targets[1].redirect_port, 80);
    assert_int_equal(c->targets[1].nstats, 1);
    assert_string_equal(c->targets[1].stats[0].socket, "/run/haproxy/admin.sock");
    assert_non_null(c->targets[2].ca_file);
    assert_string_equal(c->targets[2].host, "2001:db8::20");
    assert_int_equal(c->targets[2].nstats, 2);
    assert_string_equal(c->targets[2].stats[0].kind, "nginx");
    assert_string_equal(c->targets[2].stats[1].kind, "prometheus");
    assert_int_equal(c->targets[2].stats[1].prometheus.allow.n, 2);
    lbw_config_free(c);
}

/* --- bad configs ----------------------------------------------------------------------------- */

struct bad {
    const char *text;
    const char *err;
};

static void run_bad(const struct bad *cases, size_t n)
{
    for (size_t i = 0; i < n; i++)
        expect_error(cases[i].text, cases[i].err);
}

static void unknown_keys(void **state)
{
    (void)state;
    static const struct bad cases[] = {
        {NODE "clusters:\n  peers: []\n",
         "lbwatch.yaml:2:1: unknown key 'clusters' at top level (expected node, web, tls, "
         "probes, store, targets, cluster, agents, bench, rules, default_rules, alerting)"},
        {NODE "probes:\n  interval: 10s\n  timout: 2s\n",
         "lbwatch.yaml:4:3: unknown key 'timout' in 'probes' (expected interval, timeout)"},
        {NODE "store:\n  retention:\n    5m: 1d\n",
         "lbwatch.yaml:4:5: unknown key '5m' in 'store.retention' (expected raw, 1m, 1h)"},
        {NODE "targets:\n  - name: a\n    address: a:1\n    http: {path: /, status: 200}\n",
         "lbwatch.yaml:5:21: unknown key 'status' in 'targets[0].http' (expected path, "
         "expect_status, expect_body)"},
        {NODE "targets:\n  - name: a\n    adress: a:1\n",
         "lbwatch.yaml:4:5: unknown key 'adress' in 'targets[0]' (expected name, address, "
         "server_name, ca_file, interval, timeout, tls, http, redirect_port, haproxy, nginx, "
         "prometheus)"},
    };
    run_bad(cases, sizeof(cases) / sizeof(cases[0]));
}

static void wrong_types(void **state)
{
    (void)state;
    static const struct bad cases[] = {
        {"node: lb1\n", "lbwatch.yaml:1:7: node: expected a mapping, got \"lb1\""},
        {"node:\n", "lbwatch.yaml:1:6: node: expected a mapping, got an empty value"},
        {"- node\n", "lbwatch.yaml:1:1: expected a mapping, got a sequence"},
        {"node:\n  name: {first: a}\n  data_dir: /d\n",
         "lbwatch.yaml:2:9: node.name: expected a string, got a mapping"},
        {"node:\n  name: n\n  data_dir: [a, b]\n",
         "lbwatch.yaml:3:13: node.data_dir: expected a path, got a sequence"},
        {"node:\n  name: n\n  data_dir: /d\n  id: abc\n",
         "lbwatch.yaml:4:7: node.id: expected an integer, got \"abc\""},
        {"node:\n  name: n\n  data_dir: /d\n  id: 1.5\n",
         "lbwatch.yaml:4:7: node.id: expected an integer, got \"1.5\""},
        {"node:\n  name: n\n  data_dir: /d\n  log_level: verbose\n",
         "lbwatch.yaml:4:14: node.log_level: unknown value \"verbose\" (use debug, info, warn or "
         "error)"},
        {NODE "targets: {name: a}\n",
         "lbwatch.yaml:2:10: targets: expected a sequence, got a mapping"},
        {NODE "targets:\n  - www\n", "lbwatch.yaml:3:5: targets[0]: expected a mapping, got \"www\""},
        {NODE "targets:\n  - name: a\n    address: a:1\n    tls: yes\n",
         "lbwatch.yaml:5:10: targets[0].tls: expected true or false, got \"yes\""},
        {NODE "targets:\n  - name: a\n    address: a:1\n    tls: \"true\"\n",
         "lbwatch.yaml:5:10: targets[0].tls: expected true or false, got \"true\""},
        {NODE "targets:\n  - name: a\n    address: a:1\n    http: [/]\n",
         "lbwatch.yaml:5:11: targets[0].http: expected true or a mapping, got a sequence"},
        {NODE "targets:\n  - name: a\n    address: a:1\n    http: {expect_status: ok}\n",
         "lbwatch.yaml:5:27: targets[0].http.expect_status: expected an integer, got \"ok\""},
        {NODE "{a: 1}: x\n",
         "lbwatch.yaml:2:1: keys must be strings at top level, got a mapping"},
        {"node:\n  name: \"a\\0b\"\n  data_dir: /d\n",
         "lbwatch.yaml:2:9: node.name: contains a NUL character"},
    };
    run_bad(cases, sizeof(cases) / sizeof(cases[0]));
}

static void missing_required(void **state)
{
    (void)state;
    static const struct bad cases[] = {
        {"web: {listen: \"127.0.0.1:80\"}\n",
         "lbwatch.yaml:1:1: missing required key 'node' at top level"},
        {"node:\n  data_dir: /d\n", "lbwatch.yaml:2:3: missing required key 'name' in 'node'"},
        {"node: {name: n}\n", "lbwatch.yaml:1:7: missing required key 'data_dir' in 'node'"},
        {NODE "targets:\n  - name: a\n", "lbwatch.yaml:3:5: missing required key 'address' in "
                                         "'targets[0]'"},
        {NODE "targets:\n  - address: a:1\n", "lbwatch.yaml:3:5: missing required key 'name' in "
                                              "'targets[0]'"},
        {NODE "tls:\n  ca: ca.crt\n  cert: n.crt\n",
         "lbwatch.yaml:3:3: missing required key 'key' in 'tls'"},
        {NODE "tls: {}\n", "lbwatch.yaml:2:6: missing required key 'ca' in 'tls'"},
        /* a typo is reported as the unknown key, not as the key it meant */
        {"node:\n  nmae: n\n  data_dir: /d\n",
         "lbwatch.yaml:2:3: unknown key 'nmae' in 'node' (expected name, id, data_dir, log_level)"},
    };
    run_bad(cases, sizeof(cases) / sizeof(cases[0]));
}

static void bad_values(void **state)
{
    (void)state;
    static const struct bad cases[] = {
        {NODE "probes:\n  timeout: 5x\n",
         "lbwatch.yaml:3:12: probes.timeout: bad duration \"5x\" (use e.g. 500ms, 10s, 5m, 1h)"},
        {NODE "probes:\n  interval: 10\n",
         "lbwatch.yaml:3:13: probes.interval: bad duration \"10\" (use e.g. 500ms, 10s, 5m, 1h)"},
        {NODE "probes:\n  interval: -1s\n",
         "lbwatch.yaml:3:13: probes.interval: bad duration \"-1s\" (use e.g. 500ms, 10s, 5m, 1h)"},
        {NODE "probes:\n  interval: 50ms\n",
         "lbwatch.yaml:3:13: probes.interval: must be at least 100ms, got 50ms"},
        {NODE "probes:\n  timeout: 0s\n",
         "lbwatch.yaml:3:12: probes.timeout: must be at least 1ms, got 0s"},
        {NODE "store:\n  retention: {raw: 30s}\n",
         "lbwatch.yaml:3:20: store.retention.raw: must be at least 1m, got 30s"},
        {NODE "store:\n  max_size: 1GB\n",
         "lbwatch.yaml:3:13: store.max_size: bad size \"1GB\" (use e.g. 512MiB, 1GiB)"},
        {NODE "store:\n  max_size: 8MiB\n",
         "lbwatch.yaml:3:13: store.max_size: must be at least 16MiB, got 8MiB"},
        {NODE "store:\n  max_size: 99999999999999999999\n",
         "lbwatch.yaml:3:13: store.max_size: bad size \"99999999999999999999\" (use e.g. 512MiB, "
         "1GiB)"},
        {"node: {name: n, data_dir: /d, id: 0}\n",
         "lbwatch.yaml:1:35: node.id: must be at least 1, got 0"},
        {"node: {name: n, data_dir: /d, id: 99999999999999999999}\n",
         "lbwatch.yaml:1:35: node.id: must be at most 9223372036854775807, got "
         "99999999999999999999"},
        {"node: {name: n, data_dir: /d, id: 60000}\n",
         "lbwatch.yaml:1:35: node.id: 60000 puts the default web port (8440+id) above 65535; set "
         "web.listen"},
        {"node: {name: \"lb 1\", data_dir: /d}\n",
         "lbwatch.yaml:1:14: node.name: must be 1-63 letters, digits, '.', '_' or '-', got \"lb "
         "1\""},
        {"node: {name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa, "
         "data_dir: /d}\n",
         "lbwatch.yaml:1:14: node.name: must be 1-63 letters, digits, '.', '_' or '-', got "
         "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\""},
        {"node: {name: n, data_dir: \"\"}\n",
         "lbwatch.yaml:1:27: node.data_dir: must not be empty"},
        {NODE "web:\n  listen: localhost:8441\n",
         "lbwatch.yaml:3:11: web.listen: host must be an IP address (e.g. 127.0.0.1, 0.0.0.0, "
         "[::]), got \"localhost:8441\""},
        {NODE "web:\n  listen: 127.0.0.1\n",
         "lbwatch.yaml:3:11: web.listen: bad address \"127.0.0.1\": missing port (use host:port)"},
        {NODE "targets:\n  - name: a\n    address: a.example:0\n",
         "lbwatch.yaml:4:14: targets[0].address: bad address \"a.example:0\": port must be "
         "1-65535"},
        {NODE "targets:\n  - name: a\n    address: a.example:65536\n",
         "lbwatch.yaml:4:14: targets[0].address: bad address \"a.example:65536\": port must be "
         "1-65535"},
        {NODE "targets:\n  - name: a\n    address: \"::1:443\"\n",
         "lbwatch.yaml:4:14: targets[0].address: bad address \"::1:443\": IPv6 addresses need "
         "brackets, e.g. [::1]:443"},
        {NODE "targets:\n  - name: a\n    address: 300.1.2.3:443\n",
         "lbwatch.yaml:4:14: targets[0].address: bad address \"300.1.2.3:443\": bad IPv4 address"},
        {NODE "targets:\n  - name: a\n    address: a_b.example:https\n",
         "lbwatch.yaml:4:14: targets[0].address: bad address \"a_b.example:https\": bad port (use "
         "1-65535)"},
        {NODE "targets:\n  - name: a\n    address: a:1\n    redirect_port: 0\n",
         "lbwatch.yaml:5:20: targets[0].redirect_port: must be between 1 and 65535, got 0"},
        {NODE "targets:\n  - name: a\n    address: a:1\n    redirect_port: 70000\n",
         "lbwatch.yaml:5:20: targets[0].redirect_port: must be between 1 and 65535, got 70000"},
        {NODE "targets:\n  - name: a\n    address: a:1\n    server_name: \"bad name\"\n",
         "lbwatch.yaml:5:18: targets[0].server_name: must be a host name or IP address, got \"bad "
         "name\""},
        {NODE "targets:\n  - name: a\n    address: a:1\n    http: {path: health}\n",
         "lbwatch.yaml:5:18: targets[0].http.path: must start with '/' and have no spaces or "
         "control characters, got \"health\""},
        {NODE "targets:\n  - name: a\n    address: a:1\n    http: {path: \"/a\\r\\nX: y\"}\n",
         "lbwatch.yaml:5:18: targets[0].http.path: must start with '/' and have no spaces or "
         "control characters, got \"/a\\x0d\\x0aX: y\""},
        {NODE "targets:\n  - name: a\n    address: a:1\n    http: {expect_status: 99}\n",
         "lbwatch.yaml:5:27: targets[0].http.expect_status: must be between 100 and 599, got 99"},
    };
    run_bad(cases, sizeof(cases) / sizeof(cases[0]));
}

static void cross_field_checks(void **state)
{
    (void)state;
    static const struct bad cases[] = {
        {NODE "probes:\n  interval: 5s\n  timeout: 5s\n",
         "lbwatch.yaml:4:12: probes.timeout: must be less than interval (5s), got 5s"},
        {NODE "probes:\n  interval: 2s\n",
         "lbwatch.yaml:3:13: probes.interval: must be greater than timeout (5s by default), got 2s"},
        {NODE "targets:\n  - name: a\n    address: a:1\n    timeout: 1m\n",
         "lbwatch.yaml:5:14: targets[0].timeout: must be less than interval (10s), got 1m"},
        {NODE "targets:\n  - name: a\n    address: a:1\n    interval: 1s\n",
         "lbwatch.yaml:5:15: targets[0].interval: must be greater than timeout (5s from "
         "probes.timeout), got 1s"},
        {NODE "targets:\n  - {name: www, address: \"a:1\"}\n  - {name: api, address: \"b:1\"}\n"
              "  - {name: www, address: \"c:1\"}\n",
         "lbwatch.yaml:5:12: targets[2].name: duplicate target name \"www\" (first at line 3)"},
    };
    run_bad(cases, sizeof(cases) / sizeof(cases[0]));
}

static void yaml_level_errors(void **state)
{
    (void)state;
    static const struct bad cases[] = {
        {"", "lbwatch.yaml:1:1: empty document"},
        {"# nothing but a comment\n\n", "lbwatch.yaml:1:1: empty document"},
        {"node: [a, b\n",
         "lbwatch.yaml:2:1: did not find expected ',' or ']' (while parsing a flow sequence at "
         "line 1)"},
        {"node:\n  name: a: b\n", "lbwatch.yaml:2:10: mapping values are not allowed in this context"},
        {"node:\n  name: n\n data_dir: /d\n",
         "lbwatch.yaml:3:2: did not find expected key (while parsing a block mapping at line 1)"},
        {"node:\n\tname: n\n",
         "lbwatch.yaml:2:1: found character that cannot start any token (while scanning for the "
         "next token at line 2)"},
        {"node:\n  name: n\n  name: m\n  data_dir: /d\n",
         "lbwatch.yaml:3:3: duplicate key 'name' in 'node' (first at line 2)"},
        {NODE "probes: {interval: 1s}\nprobes: {interval: 2s}\n",
         "lbwatch.yaml:3:1: duplicate key 'probes' at top level (first at line 2)"},
        {"node: &n {name: n, data_dir: /d}\nweb: *n\n",
         "lbwatch.yaml:2:6: aliases (*n) are not supported; write the value out"},
        {NODE "---\n" NODE, "lbwatch.yaml:2:1: more than one YAML document"},
        {"node:\n  name: \xff\n", "lbwatch.yaml:2:9: invalid leading UTF-8 octet"},
    };
    run_bad(cases, sizeof(cases) / sizeof(cases[0]));

    expect_error_len("node:\n  na\0me: n\n", 16, "lbwatch.yaml:2:5: control characters are not allowed");
}

static void deep_nesting_is_bounded(void **state)
{
    (void)state;
    char text[200];
    size_t n = 0;

    n += (size_t)snprintf(text, sizeof(text), "node: ");
    for (int i = 0; i < 70; i++)
        text[n++] = '[';
    text[n] = '\0';
    expect_error(text, "lbwatch.yaml:1:70: nested deeper than 64 levels");
}

static void errors_never_half_load(void **state)
{
    (void)state;
    /* fails in the last key: everything read before it must be freed (LSan checks) */
    char text[sizeof(full_config) + 64];
    snprintf(text, sizeof(text), "%s  - name: last\n    address: nowhere\n", full_config);
    expect_error(text, "lbwatch.yaml:41:14: targets[3].address: bad address \"nowhere\": missing "
                       "port (use host:port)");
}

/* --- grammars -------------------------------------------------------------------------------- */

static void durations(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        uint64_t ms;
    } good[] = {
        {"500ms", 500},          {"10s", 10000},         {"5m", 300000},
        {"1h", 3600000},         {"1h30m", 5400000},     {"2d", 2 * MS_DAY},
        {"1w", 7 * MS_DAY},      {"0s", 0},              {"1w2d3h4m5s6ms", 788645006},
        {"010s", 10000},         {"18446744073709551615ms", UINT64_MAX},
    };
    static const char *const bad[] = {
        "", "10", "s", "5x", "-1s", "+1s", "1.5s", "1 s", " 1s", "1s ", "1S", "1sec", "30m1h",
        "1m1m", "1ms1s", "1h-30m", "18446744073709551616ms", "18446744073709551615s",
        "30600000000w", "1y",
    };
    uint64_t ms;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        ms = 1;
        if (lbw_parse_duration(good[i].s, &ms) != 0)
            fail_msg("rejected %s", good[i].s);
        assert_int_equal(ms, good[i].ms);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (lbw_parse_duration(bad[i], &ms) == 0)
            fail_msg("accepted \"%s\"", bad[i]);
}

static void sizes(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        uint64_t bytes;
    } good[] = {
        {"0", 0},           {"4096", 4096},      {"100B", 100},      {"1K", 1024},
        {"2KiB", 2048},     {"512MiB", 512ull << 20}, {"3M", 3ull << 20}, {"1GiB", 1ull << 30},
        {"2G", 2ull << 30}, {"1TiB", 1ull << 40}, {"16T", 16ull << 40},
        {"18446744073709551615", UINT64_MAX},
    };
    static const char *const bad[] = {
        "", "GiB", "1GB", "1gib", "1 GiB", "1.5GiB", "-1", "+1", "1Gi", "1PiB",
        "16777216TiB", "18446744073709551616", "1GiBx",
    };
    uint64_t b;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (lbw_parse_size(good[i].s, &b) != 0)
            fail_msg("rejected %s", good[i].s);
        assert_int_equal(b, good[i].bytes);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (lbw_parse_size(bad[i], &b) == 0)
            fail_msg("accepted \"%s\"", bad[i]);
}

static void formats_round_trip(void **state)
{
    (void)state;
    char buf[64];
    uint64_t v;

    assert_string_equal(lbw_format_duration(0, buf, sizeof(buf)), "0s");
    assert_string_equal(lbw_format_duration(100, buf, sizeof(buf)), "100ms");
    assert_string_equal(lbw_format_duration(5400000, buf, sizeof(buf)), "1h30m");
    assert_string_equal(lbw_format_duration(400 * MS_DAY, buf, sizeof(buf)), "400d");
    assert_string_equal(lbw_format_duration(90061001, buf, sizeof(buf)), "1d1h1m1s1ms");
    assert_string_equal(lbw_format_size(0, buf, sizeof(buf)), "0B");
    assert_string_equal(lbw_format_size(1000, buf, sizeof(buf)), "1000B");
    assert_string_equal(lbw_format_size(16ull << 20, buf, sizeof(buf)), "16MiB");
    assert_string_equal(lbw_format_size(1536ull << 20, buf, sizeof(buf)), "1536MiB");
    assert_string_equal(lbw_format_size(1ull << 40, buf, sizeof(buf)), "1TiB");
    for (uint64_t ms = 1; ms < UINT64_MAX / 3; ms = ms * 3 + 7) {
        assert_int_equal(lbw_parse_duration(lbw_format_duration(ms, buf, sizeof(buf)), &v), 0);
        assert_int_equal(v, ms);
    }
}

static void hostports(void **state)
{
    (void)state;
    static const struct {
        const char *s, *host;
        uint16_t port;
    } good[] = {
        {"example.com:443", "example.com", 443},
        {"a:1", "a", 1},
        {"10.0.0.1:65535", "10.0.0.1", 65535},
        {"[::1]:8441", "::1", 8441},
        {"[2001:db8::7]:443", "2001:db8::7", 443},
        {"lb-1.internal_zone.example:8443", "lb-1.internal_zone.example", 8443},
    };
    static const struct {
        const char *s, *why;
    } bad[] = {
        {"example.com", "missing port (use host:port)"},
        {"example.com:", "missing port"},
        {":443", "missing host"},
        {"example.com:0", "port must be 1-65535"},
        {"example.com:65536", "port must be 1-65535"},
        {"example.com:0000080", "port must be 1-65535"},
        {"example.com:-1", "bad port (use 1-65535)"},
        {"example.com:80x", "bad port (use 1-65535)"},
        {"example.com: 80", "bad port (use 1-65535)"},
        {"::1:443", "IPv6 addresses need brackets, e.g. [::1]:443"},
        {"[::1]", "missing port (use [address]:port)"},
        {"[::1:443", "missing ']' after IPv6 address"},
        {"[]:443", "missing host"},
        {"[example.com]:443", "bad IPv6 address"},
        {"[fe80::1%eth0]:443", "bad IPv6 address"},
        {"1.2.3:443", "bad IPv4 address"},
        {"256.0.0.1:443", "bad IPv4 address"},
        {"-a.example:443", "bad host name"},
        {"a-.example:443", "bad host name"},
        {"a..example:443", "bad host name"},
        {"a.example.:443", "bad host name"},
        {"a b:443", "bad host name"},
        {"http://a:443", "no URL scheme here: use host:port"},
    };
    char *host, why[128];
    uint16_t port;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        host = NULL;
        if (lbw_parse_hostport(good[i].s, &host, &port, why, sizeof(why)) != 0)
            fail_msg("rejected %s: %s", good[i].s, why);
        assert_string_equal(host, good[i].host);
        assert_int_equal(port, good[i].port);
        free(host);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        host = NULL;
        why[0] = '\0';
        if (lbw_parse_hostport(bad[i].s, &host, &port, why, sizeof(why)) == 0)
            fail_msg("accepted \"%s\"", bad[i].s);
        assert_null(host);
        if (strcmp(why, bad[i].why) != 0)
            fail_msg("\"%s\": got \"%s\", want \"%s\"", bad[i].s, why, bad[i].why);
    }
    char label[80];
    memset(label, 'a', 64);
    strcpy(label + 64, ".example:1");
    assert_int_equal(lbw_parse_hostport(label, &host, &port, why, sizeof(why)), -1);
    assert_string_equal(why, "bad host name");
}

/* --- the yamldoc reader on its own: a schema the config does not have ------------------------ */

static void yamldoc_sequence_of_strings(void **state)
{
    (void)state;
    static const char text[] = "peers:\n  - 10.0.0.1:7001\n  - [x]\nmode: b\n";
    static const char *const modes[] = {"a", "b", NULL};
    struct ydoc d;
    struct ymap top;
    struct yseq peers;
    char *first = NULL, *second = NULL;
    int mode = -1;

    assert_int_equal(ydoc_load_buffer(&d, "x.yaml", text, strlen(text)), 0);
    ymap_open(&top, &d, ydoc_root(&d), "");
    assert_int_equal(ymap_seq(&top, "peers", Y_REQUIRED, &peers), 1);
    assert_int_equal(yseq_len(&peers), 2);
    assert_int_equal(yseq_str(&peers, 0, &first), 1);
    assert_string_equal(first, "10.0.0.1:7001");
    assert_int_equal(ymap_enum(&top, "mode", Y_OPTIONAL, modes, &mode), 1);
    assert_int_equal(mode, 1);
    assert_int_equal(yseq_str(&peers, 1, &second), 0);
    assert_null(second);
    assert_int_equal(ydoc_failed(&d), 1);
    assert_string_equal(ydoc_error(&d), "x.yaml:3:5: peers[1]: expected a string, got a sequence");
    /* sticky: later calls change nothing */
    assert_int_equal(ymap_close(&top), -1);
    assert_string_equal(ydoc_error(&d), "x.yaml:3:5: peers[1]: expected a string, got a sequence");
    free(first);
    ydoc_free(&d);
}

static void yamldoc_absent_map_reports_nothing(void **state)
{
    (void)state;
    static const char text[] = "a: {x: 1}\n";
    struct ydoc d;
    struct ymap top, b;
    int64_t x = 5;
    char *s = NULL;

    assert_int_equal(ydoc_load_buffer(&d, "x.yaml", text, strlen(text)), 0);
    ymap_open(&top, &d, ydoc_root(&d), "");
    assert_int_equal(ymap_map(&top, "b", Y_OPTIONAL, &b), 0);
    assert_int_equal(ymap_int(&b, "x", Y_REQUIRED, 0, 10, &x), 0);
    assert_int_equal(ymap_str(&b, "y", Y_REQUIRED, &s), 0);
    assert_int_equal(ymap_close(&b), 0);
    assert_int_equal(x, 5);
    assert_null(ydoc_lookup(&d, ydoc_root(&d), "b"));
    assert_non_null(ydoc_lookup(&d, ydoc_root(&d), "a"));
    assert_int_equal(ymap_close(&top), -1);
    assert_string_equal(ydoc_error(&d), "x.yaml:1:1: unknown key 'a' at top level (expected b)");
    ydoc_free(&d);
}

/* --- cluster ------------------------------------------------------------------------------- */

#define TLS "tls: {ca: ca.crt, cert: n1.crt, key: n1.key}\n"
#define PEER(id, name, port) \
    "    - {id: " #id ", name: " name ", raft: 127.0.0.1:" #port ", web: http://127.0.0.1:844" #id "}\n"

static void cluster_section(void **state)
{
    (void)state;
    struct lbw_config *c = parse_ok(
        "node: {name: n2, id: 2, data_dir: /var/lib/lbwatch}\n" TLS
        "web: {write_token_sha256: 9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08}\n"
        "cluster:\n  election_timeout: 800ms\n  heartbeat: 80ms\n  snapshot_threshold: 64\n"
        "  peers:\n" PEER(1, "n1", 7001) PEER(2, "n2", 7002) PEER(3, "n3", 7003));
    assert_true(c->cluster.enabled);
    assert_int_equal(c->cluster.npeers, 3);
    assert_string_equal(c->cluster.raft, "127.0.0.1:7002");
    assert_string_equal(c->cluster.raft_dir, "/var/lib/lbwatch/raft");
    assert_int_equal(c->cluster.election_timeout_ms, 800);
    assert_int_equal(c->cluster.heartbeat_ms, 80);
    assert_int_equal(c->cluster.snapshot_threshold, 64);
    assert_int_equal(c->cluster.snapshot_trailing, 8192);
    assert_false(c->cluster.join);
    assert_int_equal(c->cluster.peers[2].id, 3);
    assert_string_equal(c->cluster.peers[2].name, "n3");
    assert_string_equal(c->cluster.peers[2].web, "http://127.0.0.1:8443");
    assert_true(c->web.has_write_token);
    assert_int_equal(c->web.write_token_sha256[0], 0x9f);
    assert_int_equal(c->web.write_token_sha256[31], 0x08);
    lbw_config_free(c);

    /* a node joining a running cluster names its own raft address */
    c = parse_ok("node: {name: n4, id: 4, data_dir: /d}\n" TLS
                 "cluster:\n  join: true\n  raft: 127.0.0.1:7004\n  peers:\n" PEER(1, "n1", 7001));
    assert_true(c->cluster.join);
    assert_string_equal(c->cluster.raft, "127.0.0.1:7004");
    lbw_config_free(c);

    c = parse_ok(NODE);
    assert_false(c->cluster.enabled);
    assert_false(c->web.has_write_token);
    lbw_config_free(c);
}

static void cluster_errors(void **state)
{
    (void)state;
    static const struct bad cases[] = {
        {NODE "cluster:\n  peers:\n" PEER(1, "n1", 7001),
         "lbwatch.yaml:3:3: cluster: needs the tls section (ca, cert, key): nodes authenticate "
         "each other with their certificates"},
        {NODE TLS "cluster:\n  peers:\n" PEER(2, "n2", 7002),
         "lbwatch.yaml:5:5: cluster.peers: no entry for this node (id 1); list it, or set join: "
         "true to be added to a running cluster"},
        {NODE TLS "cluster:\n  peers:\n" PEER(1, "n9", 7001),
         "lbwatch.yaml:5:5: cluster.peers: the entry for id 1 is named \"n9\", but node.name "
         "is \"n1\""},
        {NODE TLS "cluster:\n  peers:\n" PEER(1, "n1", 7001) PEER(1, "n2", 7002),
         "lbwatch.yaml:6:12: cluster.peers[1].id: duplicate peer id 1"},
        {NODE TLS "cluster:\n  peers:\n    - {id: 1, name: n1, raft: localhost:7001, web: "
                  "http://x}\n",
         "lbwatch.yaml:5:31: cluster.peers[0].raft: must be an IPv4 address and port (libraft "
         "takes no names), got \"localhost:7001\""},
        {NODE TLS "cluster:\n  peers:\n    - {id: 1, name: n1, raft: 127.0.0.1:7001, web: "
                  "ftp://x}\n",
         "lbwatch.yaml:5:52: cluster.peers[0].web: must be an http:// or https:// URL, got "
         "\"ftp://x\""},
        {NODE TLS "cluster:\n  heartbeat: 2s\n  peers:\n" PEER(1, "n1", 7001),
         "lbwatch.yaml:4:14: cluster.heartbeat: must be less than election_timeout"},
        {NODE TLS "cluster:\n  join: true\n  peers:\n" PEER(2, "n2", 7002),
         "lbwatch.yaml:4:9: cluster.join: a joining node needs cluster.raft, its own raft "
         "address"},
        {NODE TLS "cluster:\n  peers: []\n",
         "lbwatch.yaml:4:10: cluster.peers: must list 1 to 16 nodes"},
        {NODE "web: {write_token_sha256: abc}\n",
         "lbwatch.yaml:2:27: web.write_token_sha256: must be 64 hex digits (SHA-256 of the "
         "token), got \"abc\""},
    };
    run_bad(cases, sizeof(cases) / sizeof(cases[0]));
}

/* --- transport and bench ------------------------------------------------------------------ */

#define CLUSTER1 "cluster:\n  peers:\n" PEER(1, "n1", 7001)

static void transport_and_bench(void **state)
{
    (void)state;
    struct lbw_config *c = parse_ok(NODE TLS CLUSTER1);
    assert_false(c->cluster.plain_tcp);
    assert_false(c->bench.enabled);
    lbw_config_free(c);

    c = parse_ok(NODE TLS "cluster:\n  transport: mutual-tls\n  peers:\n" PEER(1, "n1", 7001)
                 "bench: {}\n");
    assert_false(c->cluster.plain_tcp);
    assert_true(c->bench.enabled);
    assert_int_equal(c->bench.series, 5000);
    assert_int_equal(c->bench.samples_per_second, 0);
    lbw_config_free(c);

    c = parse_ok(NODE TLS "cluster:\n  transport: plain-tcp\n  peers:\n" PEER(1, "n1", 7001)
                 "bench:\n  series: 12\n  samples_per_second: 3000\n");
    assert_true(c->cluster.plain_tcp);
    assert_true(c->bench.enabled);
    assert_int_equal(c->bench.series, 12);
    assert_int_equal(c->bench.samples_per_second, 3000);
    lbw_config_free(c);
}

static void transport_and_bench_errors(void **state)
{
    (void)state;
    static const struct bad cases[] = {
        {NODE TLS "cluster:\n  transport: tcp\n  peers:\n" PEER(1, "n1", 7001),
         "lbwatch.yaml:4:14: cluster.transport: unknown value \"tcp\" (use mutual-tls or "
         "plain-tcp)"},
        {NODE "bench: {series: 10}\n",
         "lbwatch.yaml:2:8: bench: needs the cluster section: the load generator feeds the "
         "cluster while this node leads it"},
        {NODE TLS CLUSTER1 "bench: {series: 0}\n",
         "lbwatch.yaml:6:17: bench.series: must be between 1 and 1000000, got 0"},
        {NODE TLS CLUSTER1 "bench: {series: 1000001}\n",
         "lbwatch.yaml:6:17: bench.series: must be between 1 and 1000000, got 1000001"},
        {NODE TLS CLUSTER1 "bench: {samples_per_second: -1}\n",
         "lbwatch.yaml:6:29: bench.samples_per_second: must be between 0 and 100000000, got -1"},
        {NODE TLS CLUSTER1 "bench: {rate: 5}\n",
         "lbwatch.yaml:6:9: unknown key 'rate' in 'bench' (expected series, "
         "samples_per_second)"},
        {NODE TLS CLUSTER1 "bench: 5000\n",
         "lbwatch.yaml:6:8: bench: expected a mapping, got \"5000\""},
    };
    run_bad(cases, sizeof(cases) / sizeof(cases[0]));
}


/* --- statistics endpoints (haproxy:) --------------------------------------------------------- */

#define TARGET "targets:\n  - name: lb\n    address: 10.0.0.1:443\n"

static void haproxy_sources(void **state)
{
    (void)state;
    char dir[256], pass[300], text[2048];
    assert_int_equal(tu_tmpdir("lbw-conf", dir, sizeof(dir)), 0);
    snprintf(pass, sizeof(pass), "%s/stats.pass", dir);
    assert_int_equal(tu_write_file(pass, "s3cret\n", 7), 0);
    snprintf(text, sizeof(text),
             NODE "targets:\n"
             "  - name: a\n    address: 10.0.0.1:443\n    haproxy: {socket: run/admin.sock}\n"
             "  - name: b\n    address: 10.0.0.1:443\n    tls: false\n"
             "    haproxy: {address: \"[::1]:9999\", certificates: false}\n"
             "  - name: c\n    address: 10.0.0.1:443\n"
             "    haproxy:\n      url: https://lb.example:8404/stats;csv\n"
             "      username: admin\n      password_file: %s\n      ca_file: /etc/ca.pem\n",
             pass);
    struct lbw_config *c = parse_ok(text);
    const struct lbw_target_stats *a = c->targets[0].stats, *b = c->targets[1].stats,
                                  *u = c->targets[2].stats;
    assert_int_equal(c->targets[0].nstats, 1);
    assert_string_equal(a->kind, "haproxy");
    assert_int_equal(a->via, LBW_STATS_SOCKET);
    assert_string_equal(a->socket, "/etc/lbwatch/run/admin.sock");
    assert_int_equal(a->haproxy.certificates, 1);
    assert_int_equal(b->via, LBW_STATS_ADDRESS);
    assert_string_equal(b->ip, "::1");
    assert_int_equal(b->port, 9999);
    assert_string_equal(b->address, "[::1]:9999");
    assert_int_equal(b->haproxy.certificates, 0);
    assert_int_equal(c->targets[1].tls, 0);
    assert_int_equal(u->via, LBW_STATS_URL);
    assert_string_equal(u->url, "https://lb.example:8404/stats;csv");
    assert_string_equal(u->username, "admin");
    assert_string_equal(u->password, "s3cret");
    assert_string_equal(u->ca_file, "/etc/ca.pem");
    assert_int_equal(u->haproxy.certificates, 0);
    assert_int_equal(c->targets[0].nstats + c->targets[1].nstats + c->targets[2].nstats, 3);
    lbw_config_free(c);
    tu_rmrf(dir);
}

static void haproxy_errors(void **state)
{
    (void)state;
    static const struct bad cases[] = {
        {NODE TARGET "    haproxy: {}\n",
         "lbwatch.yaml:5:14: targets[0].haproxy: needs one of url, socket or address"},
        {NODE TARGET "    haproxy: true\n",
         "lbwatch.yaml:5:14: targets[0].haproxy: expected a mapping, got \"true\""},
        {NODE TARGET "    haproxy: {socket: /run/a.sock, url: \"http://x/stats;csv\"}\n",
         "lbwatch.yaml:5:41: targets[0].haproxy.url: give only one of url, socket and address"},
        {NODE TARGET "    haproxy: {url: \"http://x/stats\"}\n",
         "lbwatch.yaml:5:20: targets[0].haproxy.url: must be the stats page's CSV export, e.g. "
         "http://127.0.0.1:8404/stats;csv, got \"http://x/stats\""},
        {NODE TARGET "    haproxy: {url: \"ftp://x/stats;csv\"}\n",
         "lbwatch.yaml:5:20: targets[0].haproxy.url: must be an http:// or https:// URL, got "
         "\"ftp://x/stats;csv\""},
        {NODE TARGET "    haproxy: {url: \"ftp://x y/stats;csv\"}\n", /* two faults: one error */
         "lbwatch.yaml:5:20: targets[0].haproxy.url: must be an http:// or https:// URL, got "
         "\"ftp://x y/stats;csv\""},
        {NODE TARGET "    haproxy: {url: \"http://x y/stats\"}\n",
         "lbwatch.yaml:5:20: targets[0].haproxy.url: must not hold spaces or control characters, "
         "got \"http://x y/stats\""},
        {NODE TARGET "    haproxy: {url: \"http://x/stats;csv\", certificates: true}\n",
         "lbwatch.yaml:5:56: targets[0].haproxy.certificates: only on the stats socket (socket "
         "or address): the stats page does not list certificates"},
        {NODE TARGET "    haproxy: {url: \"http://x/stats;csv\", username: admin}\n",
         "lbwatch.yaml:5:52: targets[0].haproxy.username: basic authentication needs both "
         "username and password_file"},
        {NODE TARGET "    haproxy: {socket: /run/a.sock, username: admin}\n",
         "lbwatch.yaml:5:46: targets[0].haproxy.username: only with url"},
        {NODE TARGET "    haproxy: {url: \"http://x/stats;csv\", password_file: /nonexistent/p}\n",
         "lbwatch.yaml:5:57: targets[0].haproxy.password_file: cannot read /nonexistent/p: No "
         "such file or directory"},
        {NODE TARGET "    haproxy: {address: \"stats.example:9999\"}\n",
         "lbwatch.yaml:5:24: targets[0].haproxy.address: must be an IP address and port (a "
         "stats socket's bind), got \"stats.example:9999\""},
        {NODE TARGET "    haproxy: {address: \"10.0.0.1\"}\n",
         "lbwatch.yaml:5:24: targets[0].haproxy.address: bad address \"10.0.0.1\": missing "
         "port (use host:port)"},
        {NODE TARGET "    haproxy: {socket: /run/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock}\n",
         "lbwatch.yaml:5:23: targets[0].haproxy.socket: /run/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock is "
         "longer than a unix socket path may be (107 bytes)"},
        {NODE TARGET "    haproxy: {socket: /run/a.sock, sock: x}\n",
         "lbwatch.yaml:5:36: unknown key 'sock' in 'targets[0].haproxy' (expected url, socket, "
         "address, username, password_file, ca_file, certificates)"},
        {NODE TARGET "    haproxy: {socket: /run/a.sock, certificates: maybe}\n",
         "lbwatch.yaml:5:50: targets[0].haproxy.certificates: expected true or false, got "
         "\"maybe\""},
    };
    run_bad(cases, sizeof(cases) / sizeof(cases[0]));
}

/* --- agents ------------------------------------------------------------------------------ */

static void agents_section(void **state)
{
    (void)state;
    struct lbw_config *c = parse_ok(
        NODE TLS CLUSTER1 "agents:\n  - {name: lb1, address: '10.0.0.5:8450'}\n"
        "  - name: lb2.edge\n    address: lb2.example:9000\n    interval: 30s\n"
        "    timeout: 2s\n");
    assert_int_equal(c->nagents, 2);
    assert_string_equal(c->agents[0].name, "lb1");
    assert_string_equal(c->agents[0].address, "10.0.0.5:8450");
    assert_string_equal(c->agents[0].host, "10.0.0.5");
    assert_int_equal(c->agents[0].port, 8450);
    assert_int_equal(c->agents[0].interval_ms, 10000);
    assert_int_equal(c->agents[0].timeout_ms, 10000);
    assert_string_equal(c->agents[1].host, "lb2.example");
    assert_int_equal(c->agents[1].interval_ms, 30000);
    assert_int_equal(c->agents[1].timeout_ms, 2000);
    lbw_config_free(c);
    c = parse_ok(NODE TLS CLUSTER1 "agents: []\n");
    assert_int_equal(c->nagents, 0);
    lbw_config_free(c);
}

static void agents_errors(void **state)
{
    (void)state;
    static const struct bad cases[] = {
        {NODE "agents:\n  - {name: lb1, address: '10.0.0.5:8450'}\n",
         "lbwatch.yaml:3:3: agents: needs the cluster section with its mutual-tls transport: "
         "nodes pull agents with their cluster certificates and pass the batches through raft"},
        {NODE TLS "cluster:\n  transport: plain-tcp\n  peers:\n" PEER(1, "n1", 7001)
         "agents:\n  - {name: lb1, address: '10.0.0.5:8450'}\n",
         "lbwatch.yaml:8:3: agents: needs the cluster section with its mutual-tls transport: "
         "nodes pull agents with their cluster certificates and pass the batches through raft"},
        {NODE TLS CLUSTER1 "agents:\n  - {name: lb1, address: '10.0.0.5:8450'}\n"
         "  - {name: lb1, address: '10.0.0.6:8450'}\n",
         "lbwatch.yaml:8:12: agents[1].name: duplicate agent name \"lb1\" (first at line 7)"},
        {NODE TLS CLUSTER1 "agents:\n  - {name: lb1}\n",
         "lbwatch.yaml:7:5: missing required key 'address' in 'agents[0]'"},
        {NODE TLS CLUSTER1 "agents:\n  - {name: 'lb 1', address: '10.0.0.5:8450'}\n",
         "lbwatch.yaml:7:12: agents[0].name: must be 1-63 letters, digits, '.', '_' or '-', "
         "got \"lb 1\""},
        {NODE TLS CLUSTER1 "agents:\n  - {name: lb1, address: '10.0.0.5', interval: 1s}\n",
         "lbwatch.yaml:7:26: agents[0].address: bad address \"10.0.0.5\": missing port (use "
         "host:port)"},
        {NODE TLS CLUSTER1 "agents:\n  - {name: lb1, address: 'a:1', interval: 10ms}\n",
         "lbwatch.yaml:7:43: agents[0].interval: must be at least 100ms, got 10ms"},
        {NODE TLS CLUSTER1 "agents:\n  - {name: lb1, address: 'a:1', pull: 1s}\n",
         "lbwatch.yaml:7:33: unknown key 'pull' in 'agents[0]' (expected name, address, "
         "interval, timeout)"},
    };
    run_bad(cases, sizeof(cases) / sizeof(cases[0]));
}

/* --- nginx: and prometheus: ----------------------------------------------------------------- */

/* All three kinds on one target, nginx and prometheus with credentials; a lone nginx. */
static void nginx_and_prometheus_sources(void **state)
{
    (void)state;
    char dir[256], pass[300], text[2048];
    assert_int_equal(tu_tmpdir("lbw-conf", dir, sizeof(dir)), 0);
    snprintf(pass, sizeof(pass), "%s/scrape.pass", dir);
    assert_int_equal(tu_write_file(pass, "pw\n", 3), 0);
    snprintf(text, sizeof(text),
             NODE "targets:\n"
             "  - name: a\n    address: 10.0.0.1:443\n"
             "    haproxy: {socket: /run/haproxy.sock}\n"
             "    nginx:\n      url: https://10.0.0.1:8080/stub_status\n"
             "      username: mon\n      password_file: %s\n      ca_file: ca.pem\n"
             "    prometheus:\n      url: http://10.0.0.1:9100/metrics\n"
             "      allow: [node_load1, \"node_memory_Mem*\", rpc_seconds]\n"
             "      username: mon\n      password_file: %s\n"
             "  - name: b\n    address: 10.0.0.2:443\n"
             "    nginx: {url: \"http://10.0.0.2/stub_status\"}\n",
             pass, pass);
    struct lbw_config *c = parse_ok(text);
    assert_int_equal(c->targets[0].nstats, 3);
    const struct lbw_target_stats *h = &c->targets[0].stats[0], *n = &c->targets[0].stats[1],
                                  *p = &c->targets[0].stats[2];
    assert_string_equal(h->kind, "haproxy");
    assert_string_equal(n->kind, "nginx");
    assert_int_equal(n->via, LBW_STATS_URL);
    assert_string_equal(n->url, "https://10.0.0.1:8080/stub_status");
    assert_string_equal(n->username, "mon");
    assert_string_equal(n->password, "pw");
    assert_string_equal(n->ca_file, "/etc/lbwatch/ca.pem");
    assert_string_equal(p->kind, "prometheus");
    assert_string_equal(p->url, "http://10.0.0.1:9100/metrics");
    assert_string_equal(p->password, "pw");
    assert_null(p->ca_file);
    const struct lbw_promtext_allow *a = &p->prometheus.allow;
    assert_int_equal(a->n, 3);
    assert_true(lbw_promtext_allow_name(a, "node_load1"));
    assert_false(lbw_promtext_allow_name(a, "node_load5"));
    assert_true(lbw_promtext_allow_name(a, "node_memory_MemTotal_bytes"));
    assert_false(lbw_promtext_allow_name(a, "node_memory_Active_bytes"));
    assert_true(lbw_promtext_allow_name(a, "rpc_seconds"));
    assert_int_equal(c->targets[1].nstats, 1);
    assert_string_equal(c->targets[1].stats[0].kind, "nginx");
    assert_null(c->targets[1].stats[0].username);
    lbw_config_free(c);
    tu_rmrf(dir);
}

#define PROM "    prometheus:\n      url: http://x/metrics\n"

static void nginx_and_prometheus_errors(void **state)
{
    (void)state;
    static const struct bad cases[] = {
        {NODE TARGET "    nginx: {}\n",
         "lbwatch.yaml:5:12: targets[0].nginx: needs url"},
        {NODE TARGET "    nginx: {socket: /run/nginx.sock}\n",
         "lbwatch.yaml:5:21: targets[0].nginx.socket: nginx statistics are not read from a "
         "socket"},
        {NODE TARGET "    nginx: {address: \"127.0.0.1:8080\"}\n",
         "lbwatch.yaml:5:22: targets[0].nginx.address: nginx statistics are not read from a "
         "address"},
        {NODE TARGET "    nginx: {url: \"gopher://x/\"}\n",
         "lbwatch.yaml:5:18: targets[0].nginx.url: must be an http:// or https:// URL, got "
         "\"gopher://x/\""},
        {NODE TARGET "    nginx: {url: \"http://x/stub_status\", certificates: false}\n",
         "lbwatch.yaml:5:42: unknown key 'certificates' in 'targets[0].nginx' (expected url, "
         "socket, address, username, password_file, ca_file)"},
        {NODE TARGET "    nginx: {url: \"http://x/stub_status\", password_file: /nonexistent/p}\n",
         "lbwatch.yaml:5:57: targets[0].nginx.password_file: cannot read /nonexistent/p: No "
         "such file or directory"},
        {NODE TARGET "    prometheus: {url: \"http://x/metrics\"}\n",
         "lbwatch.yaml:5:17: missing required key 'allow' in 'targets[0].prometheus'"},
        {NODE TARGET "    prometheus: {allow: [up]}\n",
         "lbwatch.yaml:5:17: targets[0].prometheus: needs url"},
        {NODE TARGET PROM "      allow: []\n",
         "lbwatch.yaml:7:14: targets[0].prometheus.allow: must list at least one metric name or "
         "prefix: a scrape must say what it keeps"},
        {NODE TARGET PROM "      allow: node_load1\n",
         "lbwatch.yaml:7:14: targets[0].prometheus.allow: expected a sequence, got "
         "\"node_load1\""},
        {NODE TARGET PROM "      allow: [node_load1, \"lbw*\"]\n",
         "lbwatch.yaml:7:27: targets[0].prometheus.allow[1]: would keep lbwatch's own series "
         "(probe_*, lbwatch_*), got \"lbw*\""},
        {NODE TARGET PROM "      allow:\n        - node_load1\n        - probe_success\n",
         "lbwatch.yaml:9:11: targets[0].prometheus.allow[1]: would keep lbwatch's own series "
         "(probe_*, lbwatch_*), got \"probe_success\""},
        {NODE TARGET PROM "      allow: [\"*\"]\n",
         "lbwatch.yaml:7:15: targets[0].prometheus.allow[0]: would keep lbwatch's own series "
         "(probe_*, lbwatch_*), got \"*\""},
        {NODE TARGET PROM "      allow: [\"lbwatch_scrape_samples\"]\n",
         "lbwatch.yaml:7:15: targets[0].prometheus.allow[0]: would keep lbwatch's own series "
         "(probe_*, lbwatch_*), got \"lbwatch_scrape_samples\""},
        {NODE TARGET PROM "      allow: [\"node_*_bytes\"]\n",
         "lbwatch.yaml:7:15: targets[0].prometheus.allow[0]: must be a metric name or a prefix "
         "ending in '*' ('*' is allowed only at the end), got \"node_*_bytes\""},
        {NODE TARGET PROM "      allow: [up, \"9lives\"]\n",
         "lbwatch.yaml:7:19: targets[0].prometheus.allow[1]: must be a metric name or a prefix "
         "ending in '*' (not a metric name), got \"9lives\""},
        {NODE TARGET PROM "      allow: [\"node-*\"]\n",
         "lbwatch.yaml:7:15: targets[0].prometheus.allow[0]: must be a metric name or a prefix "
         "ending in '*' (not the start of a metric name), got \"node-*\""},
        {NODE TARGET PROM "      allow: [{node: 1}]\n",
         "lbwatch.yaml:7:15: targets[0].prometheus.allow[0]: expected a string, got a mapping"},
        {NODE TARGET PROM "      allow: [up]\n      allows: [down]\n",
         "lbwatch.yaml:8:7: unknown key 'allows' in 'targets[0].prometheus' (expected url, "
         "socket, address, username, password_file, ca_file, allow)"},
    };
    run_bad(cases, sizeof(cases) / sizeof(cases[0]));
}

/* More than LBW_STATSCONF_ALLOW_MAX patterns. */
static void prometheus_allow_bounded(void **state)
{
    (void)state;
    static char text[16384];
    size_t n = (size_t)snprintf(text, sizeof(text), NODE TARGET PROM "      allow: [");
    for (int i = 0; i <= LBW_STATSCONF_ALLOW_MAX; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "%sm%d", i ? ", " : "", i);
    snprintf(text + n, sizeof(text) - n, "]\n");
    expect_error(text, "lbwatch.yaml:7:14: targets[0].prometheus.allow: must list at most 256 "
                       "metric names or prefixes, got 257");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(full_config_every_field),
        cmocka_unit_test(defaults_filled_in),
        cmocka_unit_test(relative_paths_without_directory_stay_as_written),
        cmocka_unit_test(load_resolves_against_real_directory),
        cmocka_unit_test(example_config_is_valid),
        cmocka_unit_test(unknown_keys),
        cmocka_unit_test(wrong_types),
        cmocka_unit_test(missing_required),
        cmocka_unit_test(bad_values),
        cmocka_unit_test(cross_field_checks),
        cmocka_unit_test(yaml_level_errors),
        cmocka_unit_test(deep_nesting_is_bounded),
        cmocka_unit_test(errors_never_half_load),
        cmocka_unit_test(durations),
        cmocka_unit_test(sizes),
        cmocka_unit_test(formats_round_trip),
        cmocka_unit_test(hostports),
        cmocka_unit_test(yamldoc_sequence_of_strings),
        cmocka_unit_test(yamldoc_absent_map_reports_nothing),
        cmocka_unit_test(cluster_section),
        cmocka_unit_test(cluster_errors),
        cmocka_unit_test(transport_and_bench),
        cmocka_unit_test(transport_and_bench_errors),
        cmocka_unit_test(haproxy_sources),
        cmocka_unit_test(haproxy_errors),
        cmocka_unit_test(agents_section),
        cmocka_unit_test(agents_errors),
        cmocka_unit_test(nginx_and_prometheus_sources),
        cmocka_unit_test(nginx_and_prometheus_errors),
        cmocka_unit_test(prometheus_allow_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
