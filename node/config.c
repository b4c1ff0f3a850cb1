/* config.c - the node's configuration: the schema of lbwatch.yaml with its defaults and
 * cross-checks (docs/configuration.md). The YAML mechanics (marks, types, unknown and
 * duplicate keys) are yamldoc.c's, the value grammars (durations, sizes, host:port)
 * grammar.c's; this file says which keys exist and what their values may be. */
#include "node/config.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/yamldoc.h"

#define MS_SECOND 1000ull
#define MS_MINUTE (60 * MS_SECOND)
#define MS_HOUR (60 * MS_MINUTE)
#define MS_DAY (24 * MS_HOUR)
#define KIB 1024ull
#define MIB (1024 * KIB)
#define GIB (1024 * MIB)

#define NAME_MAX_LEN 63
#define MIN_INTERVAL_MS 100
#define MIN_STORE_SIZE (16 * MIB)
#define WEB_PORT_BASE 8440
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static int set_err(char *err, size_t errlen, const char *why)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", why);
    return -1;
}

/* --- the schema ------------------------------------------------------------------------------ */

static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};

static int is_name(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= NAME_MAX_LEN && strspn(s, "abcdefghijklmnopqrstuvwxyz"
                                                    "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                    "0123456789._-") == n;
}

/* A path to put in an HTTP request line: '/' then printable ASCII without spaces. */
static int is_http_path(const char *s)
{
    if (s[0] != '/')
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
            return 0;
    return 1;
}

/* Calls ymap_fail(m, key, "WHY, got VALUE") with the value as written. */
static void fail_value(struct ymap *m, const char *key, const char *why)
{
    char got[256];
    ymap_fail(m, key, "%s, got %s", why, ydoc_what(ymap_value(m, key, Y_OPTIONAL), got,
                                                   sizeof(got)));
}

static void read_name(struct ymap *m, const char *key, char **out)
{
    if (ymap_str(m, key, Y_REQUIRED, out) && !is_name(*out))
        fail_value(m, key, "must be 1-63 letters, digits, '.', '_' or '-'");
}

/* A probe timeout must end before the next probe starts. from says where a defaulted
 * timeout came from. */
static void check_timeout(struct ymap *m, uint64_t interval, uint64_t timeout, int timeout_set,
                          const char *from)
{
    char iv[32], to[32];

    if (timeout < interval)
        return;
    lbw_format_duration(interval, iv, sizeof(iv));
    lbw_format_duration(timeout, to, sizeof(to));
    if (timeout_set)
        ymap_fail(m, "timeout", "must be less than interval (%s), got %s", iv, to);
    else
        ymap_fail(m, "interval", "must be greater than timeout (%s %s), got %s", to, from, iv);
}

static void read_node(struct ymap *top, struct ymap *m, struct lbw_config *c)
{
    int64_t id = 1;
    int level = LBW_LOG_INFO;

    ymap_map(top, "node", Y_REQUIRED, m);
    read_name(m, "name", &c->node.name);
    ymap_int(m, "id", Y_OPTIONAL, 1, INT64_MAX, &id);
    ymap_path(m, "data_dir", Y_REQUIRED, &c->node.data_dir);
    ymap_enum(m, "log_level", Y_OPTIONAL, log_levels, &level);
    ymap_close(m);
    c->node.id = (uint64_t)id;
    c->node.log_level = (enum lbw_log_level)level;
}

/* web.listen defaults to 127.0.0.1:8440+id, so that nodes on one host do not collide. */
static void default_listen(struct ymap *node, struct lbw_config *c)
{
    struct ydoc *d = node->doc;

    if (c->node.id > 65535 - WEB_PORT_BASE) {
        ymap_fail(node, "id", "%" PRIu64 " puts the default web port (8440+id) above 65535; "
                              "set web.listen", c->node.id);
        return;
    }
    c->web.listen_port = (uint16_t)(WEB_PORT_BASE + c->node.id);
    c->web.listen_host = ydoc_strdup(d, "127.0.0.1");
    if (asprintf(&c->web.listen, "127.0.0.1:%u", c->web.listen_port) < 0) {
        c->web.listen = NULL;
        ydoc_fail(d, NULL, "", "out of memory");
    }
}

static int hex_digit(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* web.write_token_sha256: 64 hex digits (e.g. from `printf %s TOKEN | sha256sum`). */
static void read_token_hash(struct ymap *m, struct lbw_config *c)
{
    char *hex = NULL;
    if (!ymap_str(m, "write_token_sha256", Y_OPTIONAL, &hex))
        return;
    int ok = strlen(hex) == 64;
    for (size_t i = 0; ok && i < 32; i++) {
        int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
        ok = hi >= 0 && lo >= 0;
        c->web.write_token_sha256[i] = (uint8_t)(hi << 4 | lo);
    }
    free(hex);
    if (!ok)
        fail_value(m, "write_token_sha256", "must be 64 hex digits (SHA-256 of the token)");
    else
        c->web.has_write_token = 1;
}

static void read_web(struct ymap *top, struct ymap *node, struct lbw_config *c)
{
    struct ymap m;

    ymap_map(top, "web", Y_OPTIONAL, &m);
    read_token_hash(&m, c);
    if (ymap_hostport(&m, "listen", Y_OPTIONAL, &c->web.listen_host, &c->web.listen_port) &&
        !lbw_host_is_ipv4(c->web.listen_host) && !lbw_host_is_ipv6(c->web.listen_host))
        fail_value(&m, "listen", "host must be an IP address (e.g. 127.0.0.1, 0.0.0.0, [::])");
    ymap_str(&m, "listen", Y_OPTIONAL, &c->web.listen);
    if (ymap_close(&m) == 0 && !c->web.listen)
        default_listen(node, c);
}

static void read_tls(struct ymap *top, struct lbw_config *c)
{
    struct ymap m;

    ymap_map(top, "tls", Y_OPTIONAL, &m);
    ymap_path(&m, "ca", Y_REQUIRED, &c->tls.ca);
    ymap_path(&m, "cert", Y_REQUIRED, &c->tls.cert);
    ymap_path(&m, "key", Y_REQUIRED, &c->tls.key);
    ymap_close(&m);
}

static void read_probes(struct ymap *top, struct lbw_config *c)
{
    struct ymap m;
    int timeout_set;

    c->probes.interval_ms = 10 * MS_SECOND;
    c->probes.timeout_ms = 5 * MS_SECOND;
    ymap_map(top, "probes", Y_OPTIONAL, &m);
    ymap_duration(&m, "interval", Y_OPTIONAL, MIN_INTERVAL_MS, YD_NO_MAX, &c->probes.interval_ms);
    timeout_set = ymap_duration(&m, "timeout", Y_OPTIONAL, 1, YD_NO_MAX, &c->probes.timeout_ms);
    if (ymap_close(&m) == 0)
        check_timeout(&m, c->probes.interval_ms, c->probes.timeout_ms, timeout_set, "by default");
}

static void read_store(struct ymap *top, struct lbw_config *c)
{
    struct ymap m, r;
    uint64_t max_size = GIB, raw = 2 * MS_DAY, m1 = 30 * MS_DAY, h1 = 400 * MS_DAY;

    ymap_map(top, "store", Y_OPTIONAL, &m);
    ymap_size(&m, "max_size", Y_OPTIONAL, MIN_STORE_SIZE, SIZE_MAX, &max_size);
    ymap_map(&m, "retention", Y_OPTIONAL, &r);
    ymap_duration(&r, "raw", Y_OPTIONAL, MS_MINUTE, INT64_MAX, &raw);
    ymap_duration(&r, "1m", Y_OPTIONAL, MS_MINUTE, INT64_MAX, &m1);
    ymap_duration(&r, "1h", Y_OPTIONAL, MS_MINUTE, INT64_MAX, &h1);
    ymap_close(&r);
    ymap_close(&m);
    c->store.max_size = (size_t)max_size;
    c->store.retention_raw_ms = (int64_t)raw;
    c->store.retention_1m_ms = (int64_t)m1;
    c->store.retention_1h_ms = (int64_t)h1;
}

/* http: true (GET / expecting 2xx) or a mapping of path, expect_status, expect_body. */
static void read_http(struct ymap *m, struct lbw_target *t)
{
    yaml_node_t *v = ymap_value(m, "http", Y_OPTIONAL);
    struct ymap h;
    int64_t status = 0;

    if (v && v->type == YAML_SCALAR_NODE) {
        ymap_bool(m, "http", Y_OPTIONAL, &t->http.enabled);
    } else if (v && v->type != YAML_MAPPING_NODE) {
        fail_value(m, "http", "expected true or a mapping");
    } else if (v) {
        t->http.enabled = ymap_map(m, "http", Y_OPTIONAL, &h);
        if (ymap_str(&h, "path", Y_OPTIONAL, &t->http.path) && !is_http_path(t->http.path))
            fail_value(&h, "path", "must start with '/' and have no spaces or control characters");
        ymap_int(&h, "expect_status", Y_OPTIONAL, 100, 599, &status);
        ymap_str(&h, "expect_body", Y_OPTIONAL, &t->http.expect_body);
        ymap_close(&h);
        t->http.expect_status = (long)status;
    }
    if (t->http.enabled && !t->http.path)
        t->http.path = ydoc_strdup(m->doc, "/");
}

static void check_unique_name(struct yseq *s, size_t i, struct ymap *m,
                              const struct lbw_config *c)
{
    for (size_t j = 0; j < i; j++) {
        if (strcmp(c->targets[j].name, c->targets[i].name) == 0) {
            yaml_node_t *first = ydoc_lookup(s->doc, yseq_node(s, j), "name");
            ymap_fail(m, "name", "duplicate target name \"%s\" (first at line %zu)",
                      c->targets[i].name, first->start_mark.line + 1);
            return;
        }
    }
}

static void read_target(struct yseq *s, size_t i, struct lbw_config *c)
{
    struct lbw_target *t = &c->targets[i];
    struct ymap m;
    int timeout_set;

    t->interval_ms = c->probes.interval_ms;
    t->timeout_ms = c->probes.timeout_ms;
    t->tls = 1;
    yseq_map(s, i, &m);
    read_name(&m, "name", &t->name);
    if (ymap_hostport(&m, "address", Y_REQUIRED, &t->host, &t->port))
        ymap_str(&m, "address", Y_REQUIRED, &t->address);
    if (ymap_str(&m, "server_name", Y_OPTIONAL, &t->server_name) &&
        !lbw_host_is_dns_name(t->server_name) && !lbw_host_is_ipv4(t->server_name) && !lbw_host_is_ipv6(t->server_name))
        fail_value(&m, "server_name", "must be a host name or IP address");
    ymap_path(&m, "ca_file", Y_OPTIONAL, &t->ca_file);
    ymap_duration(&m, "interval", Y_OPTIONAL, MIN_INTERVAL_MS, YD_NO_MAX, &t->interval_ms);
    timeout_set = ymap_duration(&m, "timeout", Y_OPTIONAL, 1, YD_NO_MAX, &t->timeout_ms);
    ymap_bool(&m, "tls", Y_OPTIONAL, &t->tls);
    read_http(&m, t);
    ymap_port(&m, "redirect_port", Y_OPTIONAL, &t->redirect_port);
    lbw_statsconf_read(&m, &t->stats, &t->nstats);
    if (ymap_close(&m) < 0)
        return;
    check_unique_name(s, i, &m, c);
    check_timeout(&m, t->interval_ms, t->timeout_ms, timeout_set, "from probes.timeout");
    if (!t->server_name)
        t->server_name = ydoc_strdup(s->doc, t->host);
}

static void read_targets(struct ymap *top, struct lbw_config *c)
{
    struct yseq s;
    size_t n;

    ymap_seq(top, "targets", Y_OPTIONAL, &s);
    n = yseq_len(&s);
    if (n == 0)
        return;
    c->targets = calloc(n, sizeof(*c->targets));
    if (!c->targets) {
        ydoc_fail(s.doc, NULL, "", "out of memory");
        return;
    }
    c->ntargets = n;
    for (size_t i = 0; i < n && !ydoc_failed(s.doc); i++)
        read_target(&s, i, c);
}

/* --- cluster ---------------------------------------------------------------------------------- */

/* libraft 0.15 addresses are IPv4 a.b.c.d:port; no names, no IPv6. */
static void read_raft_address(struct ymap *m, const char *key, int flags, char **out)
{
    char *host = NULL;
    uint16_t port;
    if (ymap_hostport(m, key, flags, &host, &port)) {
        if (!lbw_host_is_ipv4(host))
            fail_value(m, key, "must be an IPv4 address and port (libraft takes no names)");
        else
            ymap_str(m, key, flags, out);
    }
    free(host);
}

static void check_unique_peer(struct ymap *m, const struct lbw_config *c, size_t i)
{
    const struct lbw_cluster_peer_cfg *p = &c->cluster.peers[i];
    for (size_t j = 0; j < i; j++) {
        const struct lbw_cluster_peer_cfg *q = &c->cluster.peers[j];
        if (q->id == p->id)
            ymap_fail(m, "id", "duplicate peer id %" PRIu64, p->id);
        else if (strcmp(q->name, p->name) == 0)
            ymap_fail(m, "name", "duplicate peer name \"%s\"", p->name);
        else if (strcmp(q->raft, p->raft) == 0)
            ymap_fail(m, "raft", "duplicate raft address %s", p->raft);
    }
}

static void read_peer(struct yseq *s, size_t i, struct lbw_config *c)
{
    struct lbw_cluster_peer_cfg *p = &c->cluster.peers[i];
    struct ymap m;
    int64_t id = 0;

    yseq_map(s, i, &m);
    ymap_int(&m, "id", Y_REQUIRED, 1, INT64_MAX, &id);
    read_name(&m, "name", &p->name);
    read_raft_address(&m, "raft", Y_REQUIRED, &p->raft);
    if (ymap_str(&m, "web", Y_REQUIRED, &p->web) && strncmp(p->web, "http://", 7) != 0 &&
        strncmp(p->web, "https://", 8) != 0)
        fail_value(&m, "web", "must be an http:// or https:// URL");
    if (ymap_close(&m) < 0)
        return;
    p->id = (uint64_t)id;
    check_unique_peer(&m, c, i);
}

static void read_peers(struct ymap *m, struct lbw_config *c)
{
    struct yseq s;
    size_t n;

    ymap_seq(m, "peers", Y_REQUIRED, &s);
    n = yseq_len(&s);
    if (n == 0 || n > 16) {
        if (!ydoc_failed(s.doc))
            ymap_fail(m, "peers", "must list 1 to 16 nodes");
        return;
    }
    c->cluster.peers = calloc(n, sizeof(*c->cluster.peers));
    if (!c->cluster.peers) {
        ydoc_fail(s.doc, NULL, "", "out of memory");
        return;
    }
    c->cluster.npeers = n;
    for (size_t i = 0; i < n && !ydoc_failed(s.doc); i++)
        read_peer(&s, i, c);
}

/* This node's raft address: cluster.raft, or its own entry in peers. */
static void find_self(struct ymap *m, struct lbw_config *c)
{
    const struct lbw_cluster_peer_cfg *self = NULL;
    for (size_t i = 0; i < c->cluster.npeers; i++)
        if (c->cluster.peers[i].id == c->node.id)
            self = &c->cluster.peers[i];
    if (self && strcmp(self->name, c->node.name) != 0) {
        ymap_fail(m, "peers", "the entry for id %" PRIu64 " is named \"%s\", but node.name is "
                              "\"%s\"", c->node.id, self->name, c->node.name);
        return;
    }
    if (self && c->cluster.raft && strcmp(self->raft, c->cluster.raft) != 0) {
        ymap_fail(m, "raft", "%s differs from this node's peers entry (%s)", c->cluster.raft,
                  self->raft);
        return;
    }
    if (!self && !c->cluster.join) {
        ymap_fail(m, "peers", "no entry for this node (id %" PRIu64 "); list it, or set "
                              "join: true to be added to a running cluster", c->node.id);
        return;
    }
    if (!self && !c->cluster.raft) {
        ymap_fail(m, "join", "a joining node needs cluster.raft, its own raft address");
        return;
    }
    if (!c->cluster.raft)
        c->cluster.raft = ydoc_strdup(m->doc, self->raft);
}

static const char *const transports[] = {"mutual-tls", "plain-tcp", NULL};

static void read_cluster(struct ymap *top, struct lbw_config *c)
{
    struct ymap m;
    int transport = 0;

    c->cluster.election_timeout_ms = MS_SECOND;
    c->cluster.heartbeat_ms = 100;
    c->cluster.snapshot_threshold = 8192;
    c->cluster.snapshot_trailing = 8192;
    if (!ymap_map(top, "cluster", Y_OPTIONAL, &m)) {
        ymap_close(&m);
        return;
    }
    c->cluster.enabled = 1;
    read_raft_address(&m, "raft", Y_OPTIONAL, &c->cluster.raft);
    ymap_path(&m, "raft_dir", Y_OPTIONAL, &c->cluster.raft_dir);
    ymap_bool(&m, "join", Y_OPTIONAL, &c->cluster.join);
    ymap_duration(&m, "election_timeout", Y_OPTIONAL, 100, 60 * MS_SECOND,
                  &c->cluster.election_timeout_ms);
    ymap_duration(&m, "heartbeat", Y_OPTIONAL, 10, 10 * MS_SECOND, &c->cluster.heartbeat_ms);
    ymap_int(&m, "snapshot_threshold", Y_OPTIONAL, 16, 1 << 24,
             (int64_t *)&c->cluster.snapshot_threshold);
    ymap_int(&m, "snapshot_trailing", Y_OPTIONAL, 16, 1 << 24,
             (int64_t *)&c->cluster.snapshot_trailing);
    ymap_enum(&m, "transport", Y_OPTIONAL, transports, &transport);
    c->cluster.plain_tcp = transport == 1;
    read_peers(&m, c);
    if (ymap_close(&m) < 0)
        return;
    if (c->cluster.heartbeat_ms >= c->cluster.election_timeout_ms)
        ymap_fail(&m, "heartbeat", "must be less than election_timeout");
    else if (!c->tls.ca)
        ymap_fail(top, "cluster", "needs the tls section (ca, cert, key): nodes authenticate "
                                  "each other with their certificates");
    else
        find_self(&m, c);
    if (!ydoc_failed(m.doc) && !c->cluster.raft_dir &&
        asprintf(&c->cluster.raft_dir, "%s/raft", c->node.data_dir) < 0) {
        c->cluster.raft_dir = NULL;
        ydoc_fail(m.doc, NULL, "", "out of memory");
    }
}

/* --- agents ----------------------------------------------------------------------------------- */

static void check_unique_agent(struct yseq *s, size_t i, struct ymap *m,
                               const struct lbw_config *c)
{
    for (size_t j = 0; j < i; j++) {
        if (strcmp(c->agents[j].name, c->agents[i].name) == 0) {
            yaml_node_t *first = ydoc_lookup(s->doc, yseq_node(s, j), "name");
            ymap_fail(m, "name", "duplicate agent name \"%s\" (first at line %zu)",
                      c->agents[i].name, first->start_mark.line + 1);
            return;
        }
    }
}

static void read_agent(struct yseq *s, size_t i, struct lbw_config *c)
{
    struct lbw_agent_cfg *a = &c->agents[i];
    struct ymap m;

    a->interval_ms = 10 * MS_SECOND;
    a->timeout_ms = 10 * MS_SECOND;
    yseq_map(s, i, &m);
    read_name(&m, "name", &a->name);
    if (ymap_hostport(&m, "address", Y_REQUIRED, &a->host, &a->port))
        ymap_str(&m, "address", Y_REQUIRED, &a->address);
    ymap_duration(&m, "interval", Y_OPTIONAL, MIN_INTERVAL_MS, MS_DAY, &a->interval_ms);
    ymap_duration(&m, "timeout", Y_OPTIONAL, MIN_INTERVAL_MS, 10 * MS_MINUTE, &a->timeout_ms);
    if (ymap_close(&m) < 0)
        return;
    check_unique_agent(s, i, &m, c);
}

/* agents: the agents the cluster pulls, one owner each; they need the cluster's mutual TLS. */
static void read_agents(struct ymap *top, struct lbw_config *c)
{
    struct yseq s;
    size_t n;

    if (!ymap_seq(top, "agents", Y_OPTIONAL, &s) || (n = yseq_len(&s)) == 0)
        return;
    if (n > LBW_AGENTS_MAX) {
        ymap_fail(top, "agents", "lists %zu agents; at most %d", n, LBW_AGENTS_MAX);
        return;
    }
    if (!c->cluster.enabled || c->cluster.plain_tcp) {
        ymap_fail(top, "agents", "needs the cluster section with its mutual-tls transport: "
                                 "nodes pull agents with their cluster certificates and pass "
                                 "the batches through raft");
        return;
    }
    c->agents = calloc(n, sizeof(*c->agents));
    if (!c->agents) {
        ydoc_fail(s.doc, NULL, "", "out of memory");
        return;
    }
    c->nagents = n;
    for (size_t i = 0; i < n && !ydoc_failed(s.doc); i++)
        read_agent(&s, i, c);
}

/* bench: the synthetic load generator (a benchmarking aid); it loads the cluster. */
static void read_bench(struct ymap *top, struct lbw_config *c)
{
    struct ymap m;
    int64_t series = 5000, rate = 0;

    if (!ymap_map(top, "bench", Y_OPTIONAL, &m)) {
        ymap_close(&m);
        return;
    }
    ymap_int(&m, "series", Y_OPTIONAL, 1, 1000000, &series);
    ymap_int(&m, "samples_per_second", Y_OPTIONAL, 0, 100000000, &rate);
    if (ymap_close(&m) < 0)
        return;
    if (!c->cluster.enabled) {
        ymap_fail(top, "bench", "needs the cluster section: the load generator feeds the "
                                "cluster while this node leads it");
        return;
    }
    c->bench.enabled = 1;
    c->bench.series = (uint64_t)series;
    c->bench.samples_per_second = (uint64_t)rate;
}

static void read_config(struct ydoc *d, struct lbw_config *c)
{
    struct ymap top, node;

    ymap_open(&top, d, ydoc_root(d), "");
    read_node(&top, &node, c);
    read_web(&top, &node, c);
    read_tls(&top, c);
    read_probes(&top, c);
    read_store(&top, c);
    read_targets(&top, c);
    read_cluster(&top, c);
    read_agents(&top, c);
    read_bench(&top, c);
    lbw_ruleconf_read(&top, &c->rules);
    lbw_alertconf_read(&top, &c->alerting);
    ymap_close(&top);
}

/* --- loading --------------------------------------------------------------------------------- */

/* Builds the config from a loaded (or failed) document, then frees the document. */
static int finish(struct ydoc *d, struct lbw_config **out, char *err, size_t errlen)
{
    struct lbw_config *c = NULL;

    *out = NULL;
    if (!ydoc_failed(d)) {
        c = calloc(1, sizeof(*c));
        if (!c) {
            ydoc_fail(d, NULL, "", "out of memory");
        } else {
            c->path = ydoc_strdup(d, d->name);
            read_config(d, c);
        }
    }
    if (ydoc_failed(d)) {
        set_err(err, errlen, ydoc_error(d));
        lbw_config_free(c);
        ydoc_free(d);
        return -1;
    }
    ydoc_free(d);
    *out = c;
    return 0;
}

int lbw_config_load(const char *path, struct lbw_config **out, char *err, size_t errlen)
{
    struct ydoc d;

    ydoc_load_file(&d, path);
    return finish(&d, out, err, errlen);
}

int lbw_config_parse(const char *name, const char *text, size_t len, struct lbw_config **out,
                     char *err, size_t errlen)
{
    struct ydoc d;

    ydoc_load_buffer(&d, name, text, len);
    return finish(&d, out, err, errlen);
}

void lbw_config_free(struct lbw_config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->ntargets; i++) {
        struct lbw_target *t = &c->targets[i];
        free(t->name);
        free(t->address);
        free(t->host);
        free(t->server_name);
        free(t->ca_file);
        free(t->http.path);
        free(t->http.expect_body);
        lbw_statsconf_free(t->stats, t->nstats);
    }
    free(c->targets);
    for (size_t i = 0; i < c->nagents; i++) {
        free(c->agents[i].name);
        free(c->agents[i].address);
        free(c->agents[i].host);
    }
    free(c->agents);
    lbw_rules_free(&c->rules);
    lbw_alerting_free(&c->alerting);
    for (size_t i = 0; i < c->cluster.npeers; i++) {
        free(c->cluster.peers[i].name);
        free(c->cluster.peers[i].raft);
        free(c->cluster.peers[i].web);
    }
    free(c->cluster.peers);
    free(c->cluster.raft);
    free(c->cluster.raft_dir);
    free(c->tls.ca);
    free(c->tls.cert);
    free(c->tls.key);
    free(c->web.listen);
    free(c->web.listen_host);
    free(c->node.name);
    free(c->node.data_dir);
    free(c->path);
    free(c);
}
