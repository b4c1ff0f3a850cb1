/* demo.c - `lbwatch demo`: everything needed to see lbwatch work, with no set-up.
 *
 * In a fresh temp dir it makes a cluster PKI and node certificates, a CA for the demo targets
 * and four targets served by this process on loopback:
 *   healthy    valid certificate for healthy.demo.test, HTTP 200, port-80-style redirect
 *   expiring   valid certificate that expires in 5 days
 *   wronghost  valid certificate that names another host
 *   down       a closed port
 * and a webhook sink (node/demosink) that prints each notification the cluster sends. When
 * HAProxy is installed it also runs one as a fifth target, balancer (node/demobalancer: a TLS
 * frontend on 127.0.0.1:8448, backends web with one server up and one down and api, its stats
 * socket read by the nodes), with a few requests a second through it (node/demotraffic), and
 * an agent beside it as on a load-balancer host (node/demoagent: `lbwatch agent` named lb1
 * on 127.0.0.1:8449, with host, HAProxy process, socket and traffic collectors). It writes a
 * node config per node (a cluster of N voters, raft over mutual TLS on loopback ports, a
 * random write token for `lbwatch ctl`, alerting with the default rules to the sink, the
 * agent to pull) and runs `lbwatch node` children (node i serves its page on
 * http://127.0.0.1:(8440+i)/), HAProxy and the agent (node/demochild: one more child is one
 * more spawn). Ctrl-C (or SIGTERM) stops the children and removes the dir. */
#include "node/demo.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "node/demoagent.h"
#include "node/demobalancer.h"
#include "node/demochild.h"
#include "node/demosink.h"
#include "node/demotargets.h"
#include "node/demotraffic.h"
#include "node/log.h"
#include "node/pki.h"
#include "probes/tlsio.h"

#define DEMO_MAX_NODES 5
#define WEB_PORT_BASE 8440
#define BALANCER_PORT 8448      /* the demo HAProxy's TLS frontend, when the port is free */
#define AGENT_PORT 8449         /* the demo agent's pull server, when the port is free */
#define TRAFFIC_INTERVAL_MS 250
#define DAY (24 * 3600)

struct demo_target {
    const char *name;
    const char *server_name;    /* what lbwatch checks */
    const char *cert_name;      /* what the certificate says */
    int64_t not_before, not_after;
    struct lbw_demo_server *srv;
    uint16_t port;
};

struct demo {
    uv_loop_t loop;
    char dir[256];
    int nodes;
    struct demo_target targets[3];
    struct lbw_demo_server *redirect;
    uint16_t down_port;
    struct lbw_demo_sink *sink;
    uint16_t raft_ports[DEMO_MAX_NODES];
    char token_sha256[65];
    int has_balancer;           /* HAProxy is installed and its files are written */
    struct lbw_demo_balancer balancer;
    struct lbw_demo_server *web1, *api1;
    struct lbw_demo_traffic *traffic;
    int has_agent;              /* its certificate and agent.yaml are written */
    struct lbw_demo_agent agent;
    struct lbw_demo_children children;
    int stopping;
    int failed;
    uv_signal_t sigint, sigterm;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: lbwatch demo [--nodes N]\n\n"
            "Runs lbwatch on loopback with no set-up: a throwaway PKI, config and data in a\n"
            "temp dir, four demo TLS targets served by this process (healthy, expiring in\n"
            "5 days, wrong host name, down), a real HAProxy when " LBW_DEMO_HAPROXY " exists\n"
            "(target balancer: one backend server down) with an lbwatch agent beside it\n"
            "(lb1: host, HAProxy process, socket and traffic metrics), a webhook sink that\n"
            "prints every notification, and a cluster of N lbwatch nodes (default 3)\n"
            "monitoring them and pulling the agent.\n"
            "Node i serves its status page on http://127.0.0.1:(8440+i)/. Ctrl-C stops\n"
            "everything and removes the temp dir.\n\n"
            "  --nodes N   how many nodes to run (1-%d)\n"
            "  -h, --help  this help\n",
            DEMO_MAX_NODES);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_tree(const char *dir) { nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

/* A port on 127.0.0.1 that nobody listens on: bound, then released. */
static uint16_t closed_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    close(fd);
    return ntohs(a.sin_port);
}

/* 1 when nobody listens on 127.0.0.1:port (it can be bound now). */
static int port_free(uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
             bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static int make_cluster_pki(struct demo *d)
{
    char dir[300], err[256], name[16];
    snprintf(dir, sizeof(dir), "%s/pki", d->dir);
    if (lbw_pki_init(dir, 30, err, sizeof(err)) != 0) {
        log_error("demo", "pki: %s", err);
        return -1;
    }
    for (int i = 1; i <= d->nodes; i++) {
        const char *ips[] = {"127.0.0.1", NULL};
        struct lbw_identity id = {.kind = LBW_ID_NODE, .id = (uint64_t)i};
        snprintf(name, sizeof(name), "node%d", i);
        snprintf(id.name, sizeof(id.name), "%s", name);
        if (lbw_pki_issue(dir, &id, ips, NULL, 30, err, sizeof(err)) != 0) {
            log_error("demo", "pki: %s", err);
            return -1;
        }
    }
    return 0;
}

/* Writes cert+key for one target, signed by the demo targets' CA, and starts its server. */
static int start_target(struct demo *d, struct demo_target *t, X509 *ca, EVP_PKEY *ca_key)
{
    char cert_path[300], key_path[300], err[256], body[128];
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    struct lbw_cert_spec spec = {
        .cn = t->cert_name, .not_before = t->not_before, .not_after = t->not_after,
        .dns = {t->cert_name, NULL},
    };
    snprintf(cert_path, sizeof(cert_path), "%s/targets/%s.crt", d->dir, t->name);
    snprintf(key_path, sizeof(key_path), "%s/targets/%s.key", d->dir, t->name);
    int ok = lbw_pki_make_cert(&spec, ca, ca_key, &cert, &key, err, sizeof(err)) == 0 &&
             lbw_pki_write_cert(cert_path, cert, err, sizeof(err)) == 0 &&
             lbw_pki_write_key(key_path, key, err, sizeof(err)) == 0;
    X509_free(cert);
    EVP_PKEY_free(key);
    if (!ok) {
        log_error("demo", "target %s: %s", t->name, err);
        return -1;
    }
    SSL_CTX *ctx = lbw_tlsio_server_ctx(cert_path, key_path, NULL, err, sizeof(err));
    if (!ctx) {
        log_error("demo", "target %s: %s", t->name, err);
        return -1;
    }
    snprintf(body, sizeof(body), "lbwatch demo target %s\n", t->name);
    int rc = lbw_demo_tls_server(&t->srv, &d->loop, ctx, 0, body);
    SSL_CTX_free(ctx);
    if (rc != 0) {
        log_error("demo", "target %s: %s", t->name, uv_strerror(rc));
        return -1;
    }
    t->port = lbw_demo_server_port(t->srv);
    return 0;
}

/* The balancer's backend servers, ports and files (HAProxy starts with the nodes). Returns 0
 * when it is ready, -1 (after saying why) when the demo goes on without it. */
static int setup_balancer(struct demo *d, X509 *ca, EVP_PKEY *ca_key)
{
    struct lbw_demo_balancer *b = &d->balancer;
    int64_t now = (int64_t)time(NULL);
    struct lbw_cert_spec spec = {.cn = LBW_DEMO_BALANCER_NAME, .not_before = now - DAY,
                                 .not_after = now + 90 * DAY, .dns = {LBW_DEMO_BALANCER_NAME}};
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    char err[256] = "cannot start its backend servers";
    int rc = lbw_demo_http_server(&d->web1, &d->loop, 0, "lbwatch demo web1\n") == 0 &&
                     lbw_demo_http_server(&d->api1, &d->loop, 0, "lbwatch demo api1\n") == 0 &&
                     (b->web2 = closed_port()) != 0
                 ? 0 : -1;
    if (rc == 0) {
        b->web1 = lbw_demo_server_port(d->web1);
        b->api1 = lbw_demo_server_port(d->api1);
        b->port = port_free(BALANCER_PORT) ? BALANCER_PORT : closed_port();
        if (b->port != BALANCER_PORT)
            log_warn("demo", "balancer: port %d is taken, using %u", BALANCER_PORT, b->port);
        rc = lbw_pki_make_cert(&spec, ca, ca_key, &cert, &key, err, sizeof(err)) == 0 &&
                     lbw_demo_balancer_write(b, d->dir, cert, key, err, sizeof(err)) == 0
                 ? 0 : -1;
    }
    X509_free(cert);
    EVP_PKEY_free(key);
    if (rc != 0)
        log_error("demo", "balancer: %s; going on without it", err);
    return rc;
}

static int start_targets(struct demo *d)
{
    char dir[300], err[256];
    int64_t now = (int64_t)time(NULL);
    X509 *ca = NULL;
    EVP_PKEY *ca_key = NULL;
    struct lbw_cert_spec ca_spec = {.cn = "lbwatch demo targets CA", .is_ca = 1,
                                    .not_before = now - DAY, .not_after = now + 365 * DAY};
    struct demo_target defs[3] = {
        {"healthy", "healthy.demo.test", "healthy.demo.test", now - DAY, now + 90 * DAY, 0, 0},
        {"expiring", "expiring.demo.test", "expiring.demo.test", now - 85 * DAY, now + 5 * DAY,
         0, 0},
        {"wronghost", "wronghost.demo.test", "other.example.net", now - DAY, now + 90 * DAY, 0,
         0},
    };
    memcpy(d->targets, defs, sizeof(defs));
    snprintf(dir, sizeof(dir), "%s/targets", d->dir);
    if (mkdir(dir, 0700) != 0) {
        log_error("demo", "%s: %s", dir, strerror(errno));
        return -1;
    }
    snprintf(dir, sizeof(dir), "%s/targets/ca.crt", d->dir);
    if (lbw_pki_make_cert(&ca_spec, NULL, NULL, &ca, &ca_key, err, sizeof(err)) != 0 ||
        lbw_pki_write_cert(dir, ca, err, sizeof(err)) != 0) {
        log_error("demo", "targets CA: %s", err);
        X509_free(ca);
        EVP_PKEY_free(ca_key);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < 3 && rc == 0; i++)
        rc = start_target(d, &d->targets[i], ca, ca_key);
    if (rc == 0 && !lbw_demo_haproxy_available())
        log_info("demo", "%s not found: no balancer target (install haproxy to see one)",
                 LBW_DEMO_HAPROXY);
    else if (rc == 0)
        d->has_balancer = setup_balancer(d, ca, ca_key) == 0;
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    if (rc != 0)
        return -1;
    char location[128];
    snprintf(location, sizeof(location), "https://%s:%u/", d->targets[0].server_name,
             d->targets[0].port);
    if (lbw_demo_redirect_server(&d->redirect, &d->loop, 0, location) != 0)
        return -1;
    d->down_port = closed_port();
    return d->down_port ? 0 : -1;
}

/* The agent beside the balancer: its port, certificate and agent.yaml (it starts after
 * HAProxy). Without them the demo goes on with no agent. */
static void setup_agent(struct demo *d)
{
    struct lbw_demo_agent *a = &d->agent;
    char err[256];
    a->port = port_free(AGENT_PORT) ? AGENT_PORT : closed_port();
    if (a->port != AGENT_PORT)
        log_warn("demo", "agent: port %d is taken, using %u", AGENT_PORT, a->port);
    a->watched = d->balancer.port;
    snprintf(a->pidfile, sizeof(a->pidfile), "%s", d->balancer.pidfile);
    d->has_agent = a->port != 0 && lbw_demo_agent_write(a, d->dir, err, sizeof(err)) == 0;
    if (!d->has_agent)
        log_error("demo", "agent: %s; going on without it", a->port ? err : "no free port");
}

/* A random write token in DIR/token (for `lbwatch ctl -t`); the nodes get its SHA-256. */
static int make_token(struct demo *d)
{
    unsigned char raw[24], digest[32];
    char token[49], path[300];
    unsigned int dlen = 0;
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return -1;
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(token + 2 * i, 3, "%02x", raw[i]);
    if (!EVP_Digest(token, strlen(token), digest, &dlen, EVP_sha256(), NULL))
        return -1;
    for (size_t i = 0; i < 32; i++)
        snprintf(d->token_sha256 + 2 * i, 3, "%02x", digest[i]);
    snprintf(path, sizeof(path), "%s/token", d->dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, token, strlen(token));
    close(fd);
    return n == (ssize_t)strlen(token) ? 0 : -1;
}

static void write_cluster(FILE *f, const struct demo *d)
{
    fprintf(f, "cluster:\n  election_timeout: 1s\n  heartbeat: 100ms\n  peers:\n");
    for (int i = 1; i <= d->nodes; i++)
        fprintf(f, "    - id: %d\n      name: node%d\n      raft: 127.0.0.1:%u\n"
                   "      web: http://127.0.0.1:%d\n",
                i, i, d->raft_ports[i - 1], WEB_PORT_BASE + i);
}

static int write_node_config(struct demo *d, int i, char *path, size_t len)
{
    snprintf(path, len, "%s/node%d.yaml", d->dir, i);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f,
            "# generated by lbwatch demo\n"
            "node:\n  name: node%d\n  id: %d\n  data_dir: %s/node%d\n"
            "web:\n  listen: 127.0.0.1:%d\n  write_token_sha256: %s\n"
            "tls:\n  ca: %s/pki/ca.crt\n  cert: %s/pki/node%d.crt\n  key: %s/pki/node%d.key\n"
            "probes:\n  interval: 5s\n  timeout: 3s\n"
            "targets:\n"
            "  - name: healthy\n    address: 127.0.0.1:%u\n    server_name: %s\n"
            "    ca_file: %s/targets/ca.crt\n    http:\n      expect_body: \"demo target\"\n"
            "    redirect_port: %u\n",
            i, i, d->dir, i, WEB_PORT_BASE + i, d->token_sha256, d->dir, d->dir, i, d->dir, i,
            d->targets[0].port, d->targets[0].server_name, d->dir,
            lbw_demo_server_port(d->redirect));
    for (int t = 1; t < 3; t++)
        fprintf(f, "  - name: %s\n    address: 127.0.0.1:%u\n    server_name: %s\n"
                   "    ca_file: %s/targets/ca.crt\n",
                d->targets[t].name, d->targets[t].port, d->targets[t].server_name, d->dir);
    fprintf(f, "  - name: down\n    address: 127.0.0.1:%u\n    server_name: down.demo.test\n"
               "    ca_file: %s/targets/ca.crt\n",
            d->down_port, d->dir);
    if (d->has_balancer)
        fprintf(f, "  - name: balancer\n    address: 127.0.0.1:%u\n    server_name: %s\n"
                   "    ca_file: %s/targets/ca.crt\n    http:\n      expect_body: \"demo web1\"\n"
                   "    haproxy:\n      socket: %s\n",
                d->balancer.port, LBW_DEMO_BALANCER_NAME, d->dir, d->balancer.socket);
    write_cluster(f, d);
    if (d->has_agent)
        fprintf(f, "agents:\n  - name: %s\n    address: 127.0.0.1:%u\n    interval: %s\n"
                   "    timeout: 5s\n",
                LBW_DEMO_AGENT_NAME, d->agent.port, LBW_DEMO_AGENT_INTERVAL);
    /* One notification per (alert, target); short timers so the demo pages within seconds. */
    fprintf(f, "alerting:\n  evaluation_interval: 2s\n  receivers:\n"
               "    - name: demo-sink\n      webhook: {url: \"http://127.0.0.1:%u/\"}\n"
               "  route:\n    receiver: demo-sink\n    group_by: [alertname, target]\n"
               "    group_wait: 2s\n    group_interval: 1m\n    repeat_interval: 4h\n",
            lbw_demo_sink_port(d->sink));
    return fclose(f) == 0 ? 0 : -1;
}

static void stop_demo(struct demo *d);

/* A node that exits on its own fails the demo; HAProxy or the agent dying is left for lbwatch
 * to report. */
static void on_child_exit(void *arg, const char *name, int64_t status, int signal, int critical,
                          int expected)
{
    struct demo *d = arg;
    if (!expected && critical) {
        log_error("demo", "%s exited unexpectedly (status %lld, signal %d)", name,
                  (long long)status, signal);
        d->failed = 1;
    } else if (!expected) {
        log_error("demo", "%s exited (status %lld, signal %d): watch lbwatch notice", name,
                  (long long)status, signal);
    }
    if (critical || d->stopping)
        stop_demo(d);
}

static int spawn_node(struct demo *d, int i)
{
    char exe[4096], cfg[300], name[16], err[256];
    size_t exelen = sizeof(exe);
    if (uv_exepath(exe, &exelen) != 0 || write_node_config(d, i, cfg, sizeof(cfg)) != 0)
        return -1;
    char *args[] = {exe, "node", "-c", cfg, NULL};
    snprintf(name, sizeof(name), "node%d", i);
    if (lbw_demo_child_spawn(&d->children, name, args, 1, 0, err, sizeof(err)) != 0) {
        log_error("demo", "%s", err);
        return -1;
    }
    return 0;
}

/* HAProxy in the foreground, and traffic through it. Failing here leaves the target down.
 * Master-worker (-W), as its systemd unit runs it: the master writes the pidfile the agent
 * watches (HAProxy writes none without -W or -D) and its workers exit when it does. SIGUSR1
 * is its soft stop: connections finish and it exits 0, without the alert SIGTERM prints. */
static void start_balancer(struct demo *d)
{
    char err[256], ca[300];
    char *args[] = {LBW_DEMO_HAPROXY, "-f", d->balancer.cfg, "-W", "-db", "-p",
                    d->balancer.pidfile, NULL};
    if (lbw_demo_child_spawn(&d->children, "haproxy", args, 0, SIGUSR1, err, sizeof(err)) != 0) {
        log_error("demo", "%s", err);
        return;
    }
    snprintf(ca, sizeof(ca), "%s/targets/ca.crt", d->dir);
    if (lbw_demo_traffic_start(&d->traffic, &d->loop, LBW_DEMO_BALANCER_NAME, d->balancer.port,
                               ca, TRAFFIC_INTERVAL_MS, err, sizeof(err)) != 0)
        log_error("demo", "balancer traffic: %s", err);
}

/* The agent, as `lbwatch agent` of this very program: the nodes are run the same way, and
 * the agent is then the same version as they are, present wherever the demo is (an
 * lbwatch-agent next to it may be missing or from another build). Failing here leaves lb1
 * unreachable on the page. */
static void start_agent(struct demo *d)
{
    char exe[4096], err[256];
    size_t exelen = sizeof(exe);
    if (uv_exepath(exe, &exelen) != 0) {
        log_error("demo", "agent: cannot find this program's path");
        return;
    }
    char *args[] = {exe, "agent", "-c", d->agent.cfg, NULL};
    if (lbw_demo_child_spawn(&d->children, LBW_DEMO_AGENT_NAME, args, 0, 0, err, sizeof(err)) != 0)
        log_error("demo", "%s", err);
}

/* Stops the children and the traffic; once every child has exited, closes the rest so the
 * loop ends. */
static void stop_demo(struct demo *d)
{
    if (!d->stopping) {
        d->stopping = 1;
        lbw_demo_children_stop(&d->children);
        lbw_demo_traffic_stop(d->traffic);
        d->traffic = NULL;
    }
    if (lbw_demo_children_running(&d->children) > 0)
        return;
    for (int i = 0; i < 3; i++)
        lbw_demo_server_close(d->targets[i].srv);
    lbw_demo_server_close(d->redirect);
    lbw_demo_server_close(d->web1);
    lbw_demo_server_close(d->api1);
    d->web1 = d->api1 = NULL;
    if (d->sink) {
        lbw_demo_sink_stop(d->sink);
        d->sink = NULL;
    }
    if (!uv_is_closing((uv_handle_t *)&d->sigint)) {
        uv_close((uv_handle_t *)&d->sigint, NULL);
        uv_close((uv_handle_t *)&d->sigterm, NULL);
    }
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct demo *d = s->data;
    (void)signum;
    if (!d->stopping)
        log_info("demo", "stopping");
    stop_demo(d);
}

static void print_banner(const struct demo *d)
{
    printf("\nlbwatch demo is running (data in %s)\n\n", d->dir);
    for (int i = 1; i <= d->nodes; i++)
        printf("  node%d status page   http://127.0.0.1:%d/\n", i, WEB_PORT_BASE + i);
    printf("        metrics       http://127.0.0.1:%d/metrics\n", WEB_PORT_BASE + 1);
    printf("        targets API   http://127.0.0.1:%d/api/v1/targets\n", WEB_PORT_BASE + 1);
    printf("        cluster API   http://127.0.0.1:%d/api/v1/cluster\n", WEB_PORT_BASE + 1);
    printf("        ctl           lbwatch ctl -u http://127.0.0.1:%d -t %s/token status\n\n",
           WEB_PORT_BASE + 1, d->dir);
    printf("  webhook sink  http://127.0.0.1:%u/  (each notification is printed below as\n"
           "                \"demo webhook: ...\"; the cluster pages once per alert and target)\n\n",
           lbw_demo_sink_port(d->sink));
    printf("  targets: healthy (127.0.0.1:%u), expiring (127.0.0.1:%u, 5 days left),\n"
           "           wronghost (127.0.0.1:%u, certificate names other.example.net),\n"
           "           down (127.0.0.1:%u, closed),\n",
           d->targets[0].port, d->targets[1].port, d->targets[2].port, d->down_port);
    if (!d->has_balancer) {
        printf("           no balancer (it needs HAProxy at %s)\n", LBW_DEMO_HAPROXY);
    } else {
        printf("           balancer: HAProxy, TLS on https://%s:%u/ (127.0.0.1:%u)\n"
               "             backend web: web1 127.0.0.1:%u up, web2 127.0.0.1:%u down "
               "(closed)\n"
               "             backend api: api1 127.0.0.1:%u; /admin is denied; %d requests "
               "a second through it\n"
               "             %s, stats socket %s\n",
               LBW_DEMO_BALANCER_NAME, d->balancer.port, d->balancer.port, d->balancer.web1,
               d->balancer.web2, d->balancer.api1, 1000 / TRAFFIC_INTERVAL_MS, d->balancer.cfg,
               d->balancer.socket);
    }
    if (d->has_agent)
        printf("\n  agent %s     beside the balancer, pulled by the nodes from 127.0.0.1:%u\n"
               "                host, the haproxy process (%s), TCP on port %u,\n"
               "                traffic on lo (needs CAP_NET_RAW); %s\n",
               LBW_DEMO_AGENT_NAME, d->agent.port, d->agent.pidfile, d->agent.watched,
               d->agent.cfg);
    printf("\nPress Ctrl-C to stop.\n\n");
    fflush(stdout);
}

static int parse_args(int argc, char **argv, struct demo *d)
{
    static const struct option opts[] = {
        {"nodes", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    d->nodes = 3;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            usage(stdout);
            return 1;
        }
        if (c != 'n' || (d->nodes = atoi(optarg)) < 1 || d->nodes > DEMO_MAX_NODES) {
            usage(stderr);
            return -1;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return -1;
    }
    return 0;
}

int lbw_demo_main(int argc, char **argv)
{
    struct demo d;
    memset(&d, 0, sizeof(d));
    int rc = parse_args(argc, argv, &d);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    const char *tmp = getenv("TMPDIR");
    snprintf(d.dir, sizeof(d.dir), "%s/lbwatch-demo.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(d.dir)) {
        log_error("demo", "cannot make a temp dir: %s", strerror(errno));
        return 1;
    }
    uv_loop_init(&d.loop);
    lbw_demo_children_init(&d.children, &d.loop, on_child_exit, &d);
    uv_signal_init(&d.loop, &d.sigint);
    uv_signal_init(&d.loop, &d.sigterm);
    d.sigint.data = d.sigterm.data = &d;
    uv_signal_start(&d.sigint, on_signal, SIGINT);
    uv_signal_start(&d.sigterm, on_signal, SIGTERM);

    int ok = make_cluster_pki(&d) == 0 && start_targets(&d) == 0 && make_token(&d) == 0 &&
             (d.sink = lbw_demo_sink_start(0, stdout)) != NULL;
    if (ok && d.has_balancer)
        setup_agent(&d);
    for (int i = 0; ok && i < d.nodes; i++)
        ok = (d.raft_ports[i] = closed_port()) != 0;
    for (int i = 1; ok && i <= d.nodes; i++)
        ok = spawn_node(&d, i) == 0;
    if (ok && d.has_balancer)
        start_balancer(&d);
    if (ok && d.has_agent)
        start_agent(&d);
    if (ok)
        print_banner(&d);
    else
        d.failed = 1;
    if (!ok)
        stop_demo(&d);
    uv_run(&d.loop, UV_RUN_DEFAULT);
    uv_loop_close(&d.loop);
    remove_tree(d.dir);
    return d.failed ? 1 : 0;
}
