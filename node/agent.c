/* agent.c - `lbwatch agent`: config, collectors, a round every interval signed into a batch,
 * the buffer and the pull server on one libuv loop, and an orderly stop. See agent.h. */
#include "node/agent.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "node/agentbuf.h"
#include "node/agentconf.h"
#include "node/agentserve.h"
#include "node/collector.h"
#include "node/log.h"
#include "raft/batch.h"

#define SEQ_PER_MS 1024u
#define ERR_MAX 256

/* A running collector and how its last round went (failures are logged when they change). */
struct running {
    struct lbw_collector c;
    char err[ERR_MAX];          /* the last failure; "" after a success */
};

struct agent {
    uv_loop_t loop;
    const struct lbw_agentconf *cfg;
    struct lbw_signer *signer;
    struct lbw_batch_builder *builder;
    struct lbw_agentbuf *buf;
    struct lbw_agentserve *server;
    struct running *collectors;
    size_t ncollectors;
    uint64_t seq;                   /* the last one used */
    uint64_t rounds, samples_refused;   /* samples the batch builder did not take */
    uint64_t last_puller;           /* node id of the last pull, to log changes */
    uint64_t corrupt_seen;          /* buffered batches found corrupt, already logged */
    uv_timer_t round_timer;
    uv_signal_t sigint, sigterm;
    int stopping;
};

uint64_t lbw_agent_next_seq(uint64_t last, int64_t now_ms)
{
    uint64_t clock = now_ms > 0 ? (uint64_t)now_ms * SEQ_PER_MS : 0;
    return clock > last ? clock : last + 1;
}

static void usage(FILE *out, const char *prog)
{
    fprintf(out,
            "usage: %s -c FILE [--check-config] [--log-level LEVEL]\n\n"
            "Runs an lbwatch agent on a load-balancer host: collects host metrics every\n"
            "interval, signs them with the agent's certificate and serves them over mutual\n"
            "TLS for the cluster's nodes to pull.\n\n"
            "  -c, --config FILE      agent configuration (YAML; see docs/configuration.md)\n"
            "      --check-config     validate the configuration and certificate, and exit\n"
            "                         (0 valid, 2 not)\n"
            "      --log-level LEVEL  debug, info, warn or error (overrides agent.log_level)\n"
            "  -h, --help             this help\n", prog);
}

/* "lbwatch agent" for the subcommand, else the program's own name (lbwatch-agent). */
static const char *program(const char *argv0)
{
    if (strcmp(argv0, "agent") == 0)
        return "lbwatch agent";
    const char *slash = strrchr(argv0, '/');
    return slash ? slash + 1 : argv0;
}

/* ---- a round ----------------------------------------------------------------------------- */

static void add_sample(void *arg, const char *key, int64_t ts_ms, double value)
{
    struct agent *a = arg;
    if (lbw_batch_add(a->builder, key, strlen(key), ts_ms, value) != 0)
        a->samples_refused++;
}

/* Logs how a collector's round went: a failure as a warning when its reason changed (else at
 * debug level, so a collector failing every round does not flood the log), the first success
 * after failures once. */
static void note_outcome(struct running *r, int rc, const char *err)
{
    if (rc == 0) {
        if (r->err[0])
            log_info("agent", "collector %s: working again", r->c.name);
        r->err[0] = '\0';
        return;
    }
    if (!err[0])
        err = "failed";
    if (strcmp(r->err, err) != 0)
        log_warn("agent", "collector %s: %s", r->c.name, err);
    else
        log_debug("agent", "collector %s: %s", r->c.name, err);
    snprintf(r->err, sizeof(r->err), "%s", err);
}

/* Runs one collector through an emitter with the agent's base labels. */
static void run_collector(struct agent *a, struct running *r, int64_t ts_ms)
{
    struct lbw_label base[] = {{"probe", r->c.name}, {"vantage", a->cfg->name}};
    struct lbw_emitter e = {add_sample, a, base, 2, ts_ms};
    char err[ERR_MAX] = "";
    int rc = r->c.collect(r->c.state, &e, err, sizeof(err));
    note_outcome(r, rc, err);
    lbw_emit(&e, "lbwatch_collector_success", rc == 0 ? 1 : 0);
}

/* Signs what the round collected and keeps it for the nodes. */
static void seal_round(struct agent *a, int64_t ts_ms)
{
    uint8_t *batch;
    size_t len;
    char err[256];
    size_t n = lbw_batch_samples(a->builder);
    uint64_t seq = lbw_agent_next_seq(a->seq, ts_ms);
    if (lbw_batch_finish(a->builder, a->signer, seq, &batch, &len, err, sizeof(err)) != 0) {
        log_error("agent", "cannot sign the round's batch: %s", err);
        return;
    }
    a->seq = seq;
    if (lbw_agentbuf_push(a->buf, seq, batch, len) != 0) {
        log_error("agent", "cannot keep batch %llu: out of memory", (unsigned long long)seq);
        return;
    }
    struct lbw_agentbuf_stats bs;
    lbw_agentbuf_stats(a->buf, &bs);
    log_debug("agent", "round %llu at %lld: %zu samples in batch %llu (%zu bytes); buffer %zu "
                       "batches, %zu bytes deflated from %zu",
              (unsigned long long)a->rounds, (long long)ts_ms, n, (unsigned long long)seq, len,
              bs.batches, bs.bytes, bs.raw_bytes);
}

static void on_round(uv_timer_t *t)
{
    struct agent *a = t->data;
    int64_t ts_ms = lbw_now_ms();
    uint64_t refused = a->samples_refused;
    lbw_batch_reset(a->builder);
    a->rounds++;
    for (size_t i = 0; i < a->ncollectors; i++)
        run_collector(a, &a->collectors[i], ts_ms);
    if (a->samples_refused > refused)
        log_warn("agent", "round %llu: %llu samples left out (a key that is not canonical, or "
                          "the batch is full)", (unsigned long long)a->rounds,
                 (unsigned long long)(a->samples_refused - refused));
    seal_round(a, ts_ms);
}

/* ---- what the server reports ------------------------------------------------------------- */

static void on_refusal(void *arg, const char *peer, enum lbw_refusal kind, const char *reason)
{
    (void)arg;
    log_warn("agent", "refused %s: %s (%s)", peer, reason, lbw_refusal_name(kind));
}

/* A buffered batch that did not inflate whole was dropped instead of served: memory was
 * damaged or the buffer has a bug. Logged once per batch. */
static void note_corrupt(struct agent *a)
{
    struct lbw_agentbuf_stats bs;
    lbw_agentbuf_stats(a->buf, &bs);
    if (bs.corrupt == a->corrupt_seen)
        return;
    log_error("agent", "internal error: %llu buffered batches did not inflate to their stored "
                       "length and were dropped, not served (nodes see them as evicted)",
              (unsigned long long)(bs.corrupt - a->corrupt_seen));
    a->corrupt_seen = bs.corrupt;
}

static void on_pull(void *arg, const char *peer, const struct lbw_identity *node,
                    uint64_t after, size_t batches, size_t bytes, int complete, const char *why)
{
    struct agent *a = arg;
    note_corrupt(a);
    if (!node) {
        log_warn("agent", "%s: %s", peer, why);
        return;
    }
    if (!complete) {
        log_warn("agent", "pull by %s (node %llu, %s) failed: %s", node->name,
                 (unsigned long long)node->id, peer, why);
        return;
    }
    if (node->id != a->last_puller)
        log_info("agent", "now pulled by %s (node %llu, %s)", node->name,
                 (unsigned long long)node->id, peer);
    a->last_puller = node->id;
    log_debug("agent", "pulled by %s (node %llu, %s): after %llu, %zu batches, %zu bytes%s%s",
              node->name, (unsigned long long)node->id, peer, (unsigned long long)after,
              batches, bytes, why[0] ? ": " : "", why);
}

/* ---- start and stop ---------------------------------------------------------------------- */

static int open_collectors(struct agent *a)
{
    char err[ERR_MAX];
    struct lbw_collector_env env = {&a->loop};
    a->collectors = calloc(a->cfg->ncollectors, sizeof(*a->collectors));
    if (!a->collectors) {
        log_error("agent", "out of memory");
        return -1;
    }
    for (size_t i = 0; i < a->cfg->ncollectors; i++, a->ncollectors++) {
        const struct lbw_agentconf_collector *cc = &a->cfg->collectors[i];
        if (cc->kind->open(cc->config, &env, &a->collectors[i].c, err, sizeof(err)) != 0) {
            log_error("agent", "collector %s: %s", cc->kind->name, err);
            return -1;
        }
    }
    return 0;
}

/* Before the loop's last run: collectors with handles on it are freed by that run. */
static void close_collectors(struct agent *a)
{
    for (size_t i = 0; i < a->ncollectors; i++)
        lbw_collector_close(&a->collectors[i].c);
    a->ncollectors = 0;
}

static int start_server(struct agent *a)
{
    char err[256];
    const struct lbw_agentconf *c = a->cfg;
    struct lbw_agentserve_config sc = {
        .loop = &a->loop, .host = c->listen_host, .port = c->listen_port, .ca_file = c->tls.ca,
        .cert_file = c->tls.cert, .key_file = c->tls.key, .buf = a->buf,
        .interval_ms = (uint32_t)c->interval_ms, .max_connections = (unsigned)c->max_connections,
        .arg = a, .on_refusal = on_refusal, .on_pull = on_pull,
    };
    if (lbw_agentserve_start(&a->server, &sc, err, sizeof(err)) != 0) {
        log_error("agent", "%s", err);
        return -1;
    }
    return 0;
}

static void stop_agent(struct agent *a)
{
    if (a->stopping)
        return;
    a->stopping = 1;
    log_info("agent", "stopping");
    uv_timer_stop(&a->round_timer);
    uv_signal_stop(&a->sigint);
    uv_signal_stop(&a->sigterm);
    lbw_agentserve_close(a->server, NULL, NULL);
    a->server = NULL;
    close_collectors(a);
}

static void on_signal(uv_signal_t *s, int signum)
{
    log_info("agent", "received %s", signum == SIGINT ? "SIGINT" : "SIGTERM");
    stop_agent(s->data);
}

static int start_agent(struct agent *a)
{
    char err[256];
    const struct lbw_agentconf *c = a->cfg;
    a->signer = lbw_signer_load(c->tls.cert, c->tls.key, err, sizeof(err));
    if (!a->signer) {
        log_error("agent", "%s", err);
        return -1;
    }
    a->builder = lbw_batch_builder_new();
    a->buf = lbw_agentbuf_new((size_t)c->buffer_batches, (size_t)c->buffer_bytes);
    if (!a->builder || !a->buf) {
        log_error("agent", "out of memory");
        return -1;
    }
    if (open_collectors(a) != 0 || start_server(a) != 0)
        return -1;
    uv_timer_start(&a->round_timer, on_round, 0, c->interval_ms);
    uv_signal_start(&a->sigint, on_signal, SIGINT);
    uv_signal_start(&a->sigterm, on_signal, SIGTERM);
    log_info("agent", "agent %s: %zu collectors every %llu ms, serving nodes on %s, buffer of "
                      "%llu batches / %llu bytes",
             c->name, a->ncollectors, (unsigned long long)c->interval_ms, c->listen,
             (unsigned long long)c->buffer_batches, (unsigned long long)c->buffer_bytes);
    return 0;
}

static void free_agent(struct agent *a)
{
    free(a->collectors);
    lbw_agentbuf_free(a->buf);
    lbw_batch_builder_free(a->builder);
    lbw_signer_free(a->signer);
}

static int run(const struct lbw_agentconf *cfg)
{
    struct agent a = {0};
    int rc = 1;
    a.cfg = cfg;
    uv_loop_init(&a.loop);
    uv_timer_init(&a.loop, &a.round_timer);
    uv_signal_init(&a.loop, &a.sigint);
    uv_signal_init(&a.loop, &a.sigterm);
    a.round_timer.data = a.sigint.data = a.sigterm.data = &a;
    if (start_agent(&a) == 0) {
        uv_run(&a.loop, UV_RUN_DEFAULT);
        rc = 0;
    }
    stop_agent(&a);
    uv_close((uv_handle_t *)&a.round_timer, NULL);
    uv_close((uv_handle_t *)&a.sigint, NULL);
    uv_close((uv_handle_t *)&a.sigterm, NULL);
    uv_run(&a.loop, UV_RUN_DEFAULT);
    free_agent(&a);
    if (uv_loop_close(&a.loop) != 0)
        log_warn("agent", "loop closed with handles still open");
    if (rc == 0)
        log_info("agent", "stopped");
    return rc;
}

int lbw_agent_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"check-config", no_argument, NULL, 'k'},
        {"log-level", required_argument, NULL, 'l'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL, *level = NULL, *prog = program(argc > 0 ? argv[0] : "agent");
    int check = 0, ch;
    char err[1024];
    struct lbw_agentconf *cfg;
    enum lbw_log_level lvl;

    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': path = optarg; break;
        case 'k': check = 1; break;
        case 'l': level = optarg; break;
        case 'h': usage(stdout, prog); return 0;
        default: usage(stderr, prog); return 2;
        }
    }
    if (!path || optind != argc) {
        fprintf(stderr, "%s: %s\n\n", prog,
                path ? "unexpected argument" : "-c FILE is required");
        usage(stderr, prog);
        return 2;
    }
    if (level && lbw_log_parse_level(level, &lvl) != 0) {
        fprintf(stderr, "%s: --log-level: expected debug, info, warn or error\n", prog);
        return 2;
    }
    if (lbw_agentconf_load(path, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    if (check) {
        printf("%s: ok (agent %s, %zu collectors)\n", path, cfg->name, cfg->ncollectors);
        lbw_agentconf_free(cfg);
        return 0;
    }
    lbw_log_set_level(level ? lvl : cfg->log_level);
    int rc = run(cfg);
    lbw_agentconf_free(cfg);
    return rc;
}
