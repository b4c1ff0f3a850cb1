/* daemon.c - `lbwatch node`: wires config, store, ingest, scheduler and web on one libuv loop
 * and shuts them down in order on SIGINT/SIGTERM. See daemon.h. */
#include "node/daemon.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <uv.h>

#include "node/alertview.h"
#include "node/config.h"
#include "node/ingest.h"
#include "node/log.h"
#include "node/loopcall.h"
#include "node/replica.h"
#include "node/scheduler.h"
#include "node/status.h"
#include "node/store.h"
#include "node/web.h"

#define STATUS_INTERVAL_MS 250
#define DOCS_REFRESH_MS 10000       /* silences and inhibitions change with time alone */
#define PRUNE_INTERVAL_MS 60000
#define PRUNE_BATCH 10000

struct node {
    uv_loop_t loop;
    struct lbw_config *cfg;
    struct lbw_store *store;
    struct lbw_ingest *ingest;      /* standalone: samples straight into the store */
    struct lbw_replica *replica;    /* clustered: samples through raft */
    struct lbw_scheduler *sched;
    struct lbw_loopcall *loopcall;
    struct lbw_web *web;
    struct lbw_status status;
    int64_t started_ms;
    int64_t docs_at;                /* when the alert documents were last rendered */
    int stopping;
    uv_signal_t sigint, sigterm;
    uv_timer_t status_timer, prune_timer;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: lbwatch node -c FILE [--check-config] [--log-level LEVEL]\n\n"
            "Runs an lbwatch node: probes the configured targets, stores the samples and\n"
            "serves the status page, JSON API and /metrics.\n\n"
            "  -c, --config FILE      configuration file (YAML; see docs/configuration.md)\n"
            "      --check-config     validate the configuration and exit (0 valid, 2 not)\n"
            "      --log-level LEVEL  debug, info, warn or error (overrides node.log_level)\n"
            "  -h, --help             this help\n");
}

/* The alert ledger as the web shows it: rendered when it changed, or every 10 s. */
static void publish_docs(struct node *n)
{
    int64_t now = lbw_now_ms();
    if (!n->replica ||
        (!lbw_replica_take_ledger_change(n->replica) && now - n->docs_at < DOCS_REFRESH_MS))
        return;
    const struct lbw_ledger *l = lbw_replica_ledger(n->replica);
    const struct lbw_route_config *route =
        n->cfg->alerting.enabled ? &n->cfg->alerting.route : NULL;
    lbw_status_set_doc(&n->status, LBW_DOC_ALERTS, lbw_alertview_alerts(l, route, now));
    lbw_status_set_doc(&n->status, LBW_DOC_SILENCES, lbw_alertview_silences(l, now));
    lbw_status_set_doc(&n->status, LBW_DOC_NOTIFICATIONS, lbw_alertview_notifications(l));
    n->docs_at = now;
}

static void publish_status(struct node *n)
{
    struct lbw_node_status st = {0};
    struct lbw_ingest_stats is;
    struct lbw_scheduler_stats ss;

    snprintf(st.name, sizeof(st.name), "%s", n->cfg->node.name);
    st.id = n->cfg->node.id;
    st.started_ms = n->started_ms;
    if (n->ingest) {
        lbw_ingest_stats(n->ingest, &is);
        st.samples_in = is.samples_in;
        st.samples_stored = is.stored;
        st.samples_dropped = is.dropped;
        st.store_errors = is.errors;
    }
    if (n->replica)
        lbw_replica_status(n->replica, &st);
    if (n->sched)
        lbw_scheduler_stats(n->sched, &ss);
    else
        memset(&ss, 0, sizeof(ss));
    st.probes_run = ss.probes_run;
    st.probes_failed = ss.probes_failed;
    st.probes_in_flight = ss.in_flight;
    lbw_store_stats(n->store, &st.store);
    lbw_status_publish(&n->status, &st);
    publish_docs(n);
}

static void on_status_timer(uv_timer_t *t) { publish_status(t->data); }

/* Leadership is shown at once (a failover is timed by it), not at the next status tick. */
static void on_leader_change(void *arg) { publish_status(arg); }

static void on_prune_timer(uv_timer_t *t)
{
    struct node *n = t->data;
    long deleted = lbw_store_prune(n->store, lbw_now_ms(), PRUNE_BATCH);
    if (deleted < 0)
        log_error("store", "retention pruning failed");
    else if (deleted > 0)
        log_info("store", "retention: deleted %ld old records", deleted);
}

/* The web server goes last: a write it suspended is answered when the cluster closes. */
static void replica_closed(void *arg)
{
    struct node *n = arg;
    n->replica = NULL;
    lbw_web_stop(n->web);
    n->web = NULL;
}

static void stop_node(struct node *n)
{
    if (n->stopping)
        return; /* a second signal while stopping */
    n->stopping = 1;
    log_info("node", "stopping");
    uv_signal_stop(&n->sigint);
    uv_signal_stop(&n->sigterm);
    uv_timer_stop(&n->status_timer);
    uv_timer_stop(&n->prune_timer);
    lbw_scheduler_close(n->sched);
    n->sched = NULL;
    lbw_ingest_close(n->ingest);
    n->ingest = NULL;
    lbw_loopcall_close(n->loopcall);
    n->loopcall = NULL;
    if (n->replica)
        lbw_replica_close(n->replica, replica_closed, n);
    uv_close((uv_handle_t *)&n->sigint, NULL);
    uv_close((uv_handle_t *)&n->sigterm, NULL);
    uv_close((uv_handle_t *)&n->status_timer, NULL);
    uv_close((uv_handle_t *)&n->prune_timer, NULL);
}

static void on_signal(uv_signal_t *s, int signum)
{
    log_info("node", "received %s", signum == SIGINT ? "SIGINT" : "SIGTERM");
    stop_node(s->data);
}

/* Probing many targets at once needs a socket per probe in flight. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int open_store(struct node *n)
{
    char dir[4096], err[256];
    snprintf(dir, sizeof(dir), "%s/store", n->cfg->node.data_dir);
    struct lbw_store_options o = {
        .dir = dir,
        .map_size = n->cfg->store.max_size,
        .retention_raw_ms = n->cfg->store.retention_raw_ms,
        .retention_1m_ms = n->cfg->store.retention_1m_ms,
        .retention_1h_ms = n->cfg->store.retention_1h_ms,
        .no_sync = n->cfg->cluster.enabled, /* the raft log is the write-ahead log */
    };
    if (mkdir(n->cfg->node.data_dir, 0700) != 0 && errno != EEXIST) {
        log_error("node", "data_dir %s: %s", n->cfg->node.data_dir, strerror(errno));
        return -1;
    }
    if (lbw_store_open(&n->store, &o, err, sizeof(err)) != 0) {
        log_error("store", "%s: %s", dir, err);
        return -1;
    }
    return 0;
}

static int start_node(struct node *n)
{
    char err[256];
    if (open_store(n) != 0)
        return -1;
    lbw_status_init(&n->status);
    n->started_ms = lbw_now_ms();
    lbw_sample_fn sink;
    void *sink_arg;
    if (n->cfg->cluster.enabled) {
        if (lbw_replica_start(&n->replica, &n->loop, n->cfg, n->store, err, sizeof(err)) != 0) {
            log_error("node", "cluster: %s", err);
            return -1;
        }
        lbw_replica_on_leader(n->replica, on_leader_change, n);
        sink = lbw_replica_sample;
        sink_arg = n->replica;
    } else {
        if (n->cfg->alerting.enabled)
            log_warn("alert", "alerting: is configured but there is no cluster: section; a "
                              "standalone node evaluates no rules and sends nothing");
        if (lbw_ingest_new(&n->ingest, &n->loop, n->store) != 0) {
            log_error("node", "out of memory");
            return -1;
        }
        sink = lbw_ingest_sample;
        sink_arg = n->ingest;
    }
    if (lbw_scheduler_new(&n->sched, &n->loop, n->cfg, sink, sink_arg, err, sizeof(err)) != 0) {
        log_error("node", "probes: %s", err);
        return -1;
    }
    if (lbw_loopcall_new(&n->loopcall, &n->loop) != 0) {
        log_error("node", "out of memory");
        return -1;
    }
    publish_status(n);
    struct lbw_web_ctx ctx = {n->store, n->cfg, &n->status,
                              n->replica ? lbw_replica_cluster(n->replica) : NULL, n->loopcall,
                              n->replica ? lbw_replica_alerter(n->replica) : NULL};
    if (lbw_web_start(&n->web, &ctx, err, sizeof(err)) != 0) {
        log_error("node", "%s", err);
        return -1;
    }
    uv_signal_init(&n->loop, &n->sigint);
    uv_signal_init(&n->loop, &n->sigterm);
    n->sigint.data = n->sigterm.data = n;
    uv_signal_start(&n->sigint, on_signal, SIGINT);
    uv_signal_start(&n->sigterm, on_signal, SIGTERM);
    uv_timer_init(&n->loop, &n->status_timer);
    uv_timer_init(&n->loop, &n->prune_timer);
    n->status_timer.data = n->prune_timer.data = n;
    uv_timer_start(&n->status_timer, on_status_timer, STATUS_INTERVAL_MS, STATUS_INTERVAL_MS);
    uv_timer_start(&n->prune_timer, on_prune_timer, PRUNE_INTERVAL_MS, PRUNE_INTERVAL_MS);
    log_info("node", "%s (id %llu): %zu targets, web on http://%s/, data in %s",
             n->cfg->node.name, (unsigned long long)n->cfg->node.id, n->cfg->ntargets,
             n->cfg->web.listen, n->cfg->node.data_dir);
    return 0;
}

/* Tears down whatever start_node got to; the loop must not be running. */
static void cleanup_node(struct node *n)
{
    if (n->sched || n->ingest || n->replica || n->loopcall) {
        lbw_scheduler_close(n->sched);
        lbw_ingest_close(n->ingest);
        lbw_loopcall_close(n->loopcall);
        if (n->replica)
            lbw_replica_close(n->replica, replica_closed, n);
        uv_run(&n->loop, UV_RUN_DEFAULT);
    }
    lbw_web_stop(n->web);
    lbw_store_close(n->store);
    if (n->started_ms)
        lbw_status_destroy(&n->status);
}

static int run(struct lbw_config *cfg)
{
    struct node n = {0};
    int rc = 1;
    n.cfg = cfg;
    uv_loop_init(&n.loop);
    if (start_node(&n) == 0) {
        uv_run(&n.loop, UV_RUN_DEFAULT);
        rc = 0;
    }
    cleanup_node(&n);
    uv_run(&n.loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&n.loop) != 0)
        log_warn("node", "loop closed with handles still open");
    if (rc == 0)
        log_info("node", "stopped");
    return rc;
}

int lbw_node_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, 'k'},
        {"log-level", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL, *level = NULL;
    int check = 0, c;
    char err[1024];
    struct lbw_config *cfg;
    enum lbw_log_level lvl;

    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': path = optarg; break;
        case 'k': check = 1; break;
        case 'l': level = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!path || optind != argc) {
        fprintf(stderr, "lbwatch node: %s\n\n", path ? "unexpected argument" : "-c FILE is required");
        usage(stderr);
        return 2;
    }
    if (level && lbw_log_parse_level(level, &lvl) != 0) {
        fprintf(stderr, "lbwatch node: --log-level: expected debug, info, warn or error\n");
        return 2;
    }
    if (lbw_config_load(path, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    if (check) {
        printf("%s: ok (%zu targets)\n", path, cfg->ntargets);
        lbw_config_free(cfg);
        return 0;
    }
    lbw_log_set_level(level ? lvl : cfg->node.log_level);
    raise_fd_limit();
    int rc = run(cfg);
    lbw_config_free(cfg);
    return rc;
}
