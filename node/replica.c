/* replica.c - signer, verifier, state machine, cluster, batcher (and the bench load generator)
 * of a clustered node, and the order they start and stop in. See replica.h. */
#include "node/replica.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerting/route.h"
#include "node/agentpull.h"
#include "node/alerter.h"
#include "node/batcher.h"
#include "node/fsm.h"
#include "node/loadgen.h"
#include "node/log.h"

#define FSM_FLUSH_MS 250     /* store commits: each rewrites the head of every series touched
                              * since the last, so fewer commits is less LMDB work; the batcher
                              * holds samples up to 250 ms before that anyway */

struct lbw_replica {
    uv_loop_t *loop;
    const struct lbw_config *cfg;
    struct lbw_signer *signer;
    struct lbw_verifier *verifier;
    struct lbw_fsm *fsm;
    struct lbw_cluster *cluster;
    struct lbw_batcher *batcher;
    struct lbw_loadgen *loadgen;    /* bench: section only */
    struct lbw_alerter *alerter;
    struct lbw_agentpull *agentpull;    /* agents: section only */
    int ledger_changed;             /* since the last lbw_replica_take_ledger_change() */
    void (*leader_cb)(void *arg);
    void *leader_arg;
    uv_timer_t flush_timer;
    void (*close_cb)(void *arg);
    void *close_arg;
};

/* ---- what the parts report --------------------------------------------------------------- */

static void on_reject(void *arg, uint64_t index, enum lbw_fsm_reject why,
                      const struct lbw_identity *origin, uint64_t seq, const char *detail)
{
    struct lbw_replica *r = arg;
    if (origin)
        lbw_agentpull_judged(r->agentpull, origin, seq, 0);
    if (origin)
        log_warn("fsm", "entry %llu from %s %s (%llu) refused: %s (%s)",
                 (unsigned long long)index, origin->kind == LBW_ID_AGENT ? "agent" : "node",
                 origin->name, (unsigned long long)origin->id, lbw_fsm_reject_name(why), detail);
    else
        log_warn("fsm", "entry %llu refused: %s (%s)", (unsigned long long)index,
                 lbw_fsm_reject_name(why), detail);
}

static void on_batch(void *arg, const struct lbw_identity *origin, uint64_t seq)
{
    struct lbw_replica *r = arg;
    if (origin->kind == LBW_ID_NODE && origin->id == r->cfg->node.id && r->cluster)
        lbw_cluster_applied_seq(r->cluster, seq);
    lbw_agentpull_judged(r->agentpull, origin, seq, 1);
}

/* Every node logs who pulls which agent. */
static void on_assign(void *arg, uint64_t index, enum lbw_assign_result result,
                      const struct lbw_assign_op *op)
{
    (void)arg;
    if (result != LBW_ASSIGN_OK)
        log_debug("agent", "entry %llu: assignment op for agent %s %s",
                  (unsigned long long)index, op->agent[0] ? op->agent : "?",
                  lbw_assign_result_name(result));
    else if (op->type == LBW_ASSIGN_SET)
        log_info("agent", "agent %s is pulled by node %llu (entry %llu)", op->agent,
                 (unsigned long long)op->node, (unsigned long long)index);
    else
        log_info("agent", "agent %s is released (entry %llu)", op->agent,
                 (unsigned long long)index);
}

/* Every node logs what its ledger did: an operator reading any node's log sees the alerts. */
static void on_alert(void *arg, uint64_t index, enum lbw_apply_result result,
                     const struct lbw_ledger_change *chg)
{
    struct lbw_replica *r = arg;
    r->ledger_changed = 1;
    if (result != LBW_APPLY_OK) {
        log_debug("alert", "entry %llu: %s %s (%s)", (unsigned long long)index,
                  lbw_op_type_name(chg->type), lbw_apply_result_name(result), chg->detail);
        return;
    }
    if (chg->type == LBW_OP_TRANSITION) {
        const struct lbw_alert *al = lbw_ledger_alert(lbw_fsm_ledger(r->fsm), chg->fingerprint);
        log_info("alert", "%s: %s -> %s", al ? al->labels : "(removed alert)",
                 lbw_alert_state_name(chg->from), lbw_alert_state_name(chg->to));
    } else if (chg->type == LBW_OP_RECEIPT) {
        log_info("alert", "notification %llu %s", (unsigned long long)chg->intent,
                 chg->delivered ? "delivered" : "failed, will be retried");
    } else if (chg->type == LBW_OP_SILENCE || chg->type == LBW_OP_EXPIRE_SILENCE) {
        log_info("alert", "silence %llu %s", (unsigned long long)chg->silence,
                 chg->type == LBW_OP_SILENCE ? "created" : "expired");
    }
}

static void on_event(void *arg, int level, const char *msg)
{
    (void)arg;
    lbw_log(level == 0 ? LBW_LOG_INFO : level == 1 ? LBW_LOG_WARN : LBW_LOG_ERROR, "raft", "%s",
            msg);
}

static void on_leader(void *arg, int ready)
{
    struct lbw_replica *r = arg;
    log_info("raft", "%s", ready ? "this node now leads the cluster"
                                 : "this node stopped leading");
    lbw_loadgen_set_active(r->loadgen, ready);
    lbw_alerter_leading(r->alerter, ready);
    if (r->leader_cb)
        r->leader_cb(r->leader_arg);
}

static void on_flush_timer(uv_timer_t *t)
{
    struct lbw_replica *r = t->data;
    if (lbw_fsm_flush(r->fsm) != 0)
        log_error("store", "commit of applied entries failed (they are re-applied from the "
                           "raft log on restart)");
}

/* ---- start ------------------------------------------------------------------------------- */

static int load_keys(struct lbw_replica *r, char *err, size_t errlen)
{
    const struct lbw_config *cfg = r->cfg;
    r->verifier = lbw_verifier_new(cfg->tls.ca, err, errlen);
    if (!r->verifier)
        return -1;
    r->signer = lbw_signer_load(cfg->tls.cert, cfg->tls.key, err, errlen);
    if (!r->signer)
        return -1;
    const struct lbw_identity *id = lbw_signer_identity(r->signer);
    if (id->kind != LBW_ID_NODE || id->id != cfg->node.id ||
        strcmp(id->name, cfg->node.name) != 0) {
        snprintf(err, errlen, "%s is the certificate of %s (id %llu), not of node %s (id %llu)",
                 cfg->tls.cert, id->name, (unsigned long long)id->id, cfg->node.name,
                 (unsigned long long)cfg->node.id);
        return -1;
    }
    return 0;
}

static int start_fsm(struct lbw_replica *r, struct lbw_store *store, char *err, size_t errlen)
{
    struct lbw_fsm_options o = {.store = store, .verifier = r->verifier, .arg = r,
                                .on_reject = on_reject, .on_batch = on_batch,
                                .on_alert = on_alert, .on_assign = on_assign};
    if (lbw_fsm_new(&r->fsm, &o) != 0) {
        snprintf(err, errlen, "cannot create the state machine");
        return -1;
    }
    return 0;
}

static int start_cluster(struct lbw_replica *r, char *err, size_t errlen)
{
    const struct lbw_config *cfg = r->cfg;
    struct lbw_peer peers[LBW_CLUSTER_MAX_MEMBERS];
    char web[LBW_URL_MAX];
    size_t n = 0;
    for (size_t i = 0; i < cfg->cluster.npeers && n < LBW_CLUSTER_MAX_MEMBERS; i++, n++)
        peers[n] = (struct lbw_peer){cfg->cluster.peers[i].id, cfg->cluster.peers[i].name,
                                     cfg->cluster.peers[i].raft, cfg->cluster.peers[i].web};
    snprintf(web, sizeof(web), "http://%s/", cfg->web.listen);
    for (size_t i = 0; i < n; i++)
        if (peers[i].id == cfg->node.id)
            snprintf(web, sizeof(web), "%s", peers[i].web);
    struct lbw_cluster_config cc = {
        .loop = r->loop, .self_id = cfg->node.id, .raft_address = cfg->cluster.raft,
        .web_url = web, .raft_dir = cfg->cluster.raft_dir, .ca_file = cfg->tls.ca,
        .cert_file = cfg->tls.cert, .key_file = cfg->tls.key, .peers = peers, .npeers = n,
        .join = cfg->cluster.join,
        .election_timeout_ms = (unsigned)cfg->cluster.election_timeout_ms,
        .heartbeat_timeout_ms = (unsigned)cfg->cluster.heartbeat_ms,
        .snapshot_threshold = (unsigned)cfg->cluster.snapshot_threshold,
        .snapshot_trailing = (unsigned)cfg->cluster.snapshot_trailing,
        .fsm = lbw_fsm_raft(r->fsm), .arg = r, .on_event = on_event, .on_leader = on_leader,
        .plain_tcp = cfg->cluster.plain_tcp,
    };
    if (lbw_cluster_new(&r->cluster, &cc, err, errlen) != 0)
        return -1;
    lbw_fsm_bind(r->fsm, lbw_cluster_raft(r->cluster));
    return lbw_cluster_start(r->cluster, err, errlen);
}

static size_t cluster_backlog(void *arg)
{
    struct lbw_replica *r = arg;
    return r->cluster ? lbw_cluster_pending_bytes(r->cluster) : 0;
}

static uint64_t cluster_lag(void *arg)
{
    struct lbw_replica *r = arg;
    return r->cluster ? lbw_cluster_replication_lag(r->cluster) : 0;
}

/* The bench: section's synthetic load, fed to the batcher while this node leads. */
static int start_loadgen(struct lbw_replica *r, char *err, size_t errlen)
{
    const struct lbw_config *cfg = r->cfg;
    if (!cfg->bench.enabled)
        return 0;
    struct lbw_loadgen_config lc = {
        .loop = r->loop, .vantage = cfg->node.name, .series = (size_t)cfg->bench.series,
        .samples_per_second = cfg->bench.samples_per_second, .sink = lbw_batcher_sample,
        .sink_arg = r->batcher, .backlog = cluster_backlog, .lag = cluster_lag,
        .backlog_arg = r,
    };
    if (lbw_loadgen_new(&r->loadgen, &lc, err, errlen) != 0)
        return -1;
    log_warn("bench", "synthetic load generator on: %llu series at %s while this node leads "
                      "(a benchmarking aid: remove the bench section in production)",
             (unsigned long long)cfg->bench.series,
             cfg->bench.samples_per_second ? "a fixed rate" : "the cluster's pace");
    return 0;
}

static void free_replica(struct lbw_replica *r)
{
    if (r->fsm) {
        lbw_fsm_flush(r->fsm);
        lbw_fsm_free(r->fsm);
    }
    lbw_signer_free(r->signer);
    lbw_verifier_free(r->verifier);
    void (*cb)(void *) = r->close_cb;
    void *arg = r->close_arg;
    free(r);
    if (cb)
        cb(arg);
}

static void timer_closed(uv_handle_t *h) { free_replica(h->data); }

static void cluster_closed(void *arg)
{
    struct lbw_replica *r = arg;
    r->cluster = NULL;
    uv_close((uv_handle_t *)&r->flush_timer, timer_closed);
}

static int start_alerter(struct lbw_replica *r, struct lbw_store *store, char *err,
                         size_t errlen)
{
    char web[LBW_URL_MAX];
    snprintf(web, sizeof(web), "http://%s/", r->cfg->web.listen);
    for (size_t i = 0; i < r->cfg->cluster.npeers; i++)
        if (r->cfg->cluster.peers[i].id == r->cfg->node.id)
            snprintf(web, sizeof(web), "%s", r->cfg->cluster.peers[i].web);
    struct lbw_alerter_config ac = {
        .loop = r->loop, .alerting = &r->cfg->alerting, .rules = r->cfg->rules.rules,
        .nrules = r->cfg->rules.nrules, .store = store, .ledger = lbw_fsm_ledger(r->fsm),
        .cluster = r->cluster, .signer = r->signer, .web_url = web,
    };
    return lbw_alerter_new(&r->alerter, &ac, err, errlen);
}

static int start_agentpull(struct lbw_replica *r, char *err, size_t errlen)
{
    if (r->cfg->nagents == 0)
        return 0;
    struct lbw_agentpull_config pc = {.loop = r->loop, .cfg = r->cfg, .cluster = r->cluster,
                                      .fsm = r->fsm, .signer = r->signer};
    return lbw_agentpull_new(&r->agentpull, &pc, err, errlen);
}

int lbw_replica_start(struct lbw_replica **out, uv_loop_t *loop, const struct lbw_config *cfg,
                      struct lbw_store *store, char *err, size_t errlen)
{
    struct lbw_replica *r = calloc(1, sizeof(*r));
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    r->loop = loop;
    r->cfg = cfg;
    uv_timer_init(loop, &r->flush_timer);
    r->flush_timer.data = r;
    int ok = load_keys(r, err, errlen) == 0 && start_fsm(r, store, err, errlen) == 0 &&
             start_cluster(r, err, errlen) == 0;
    if (ok && lbw_batcher_new(&r->batcher, loop, r->signer, r->cluster,
                              lbw_fsm_origin_seq(r->fsm, lbw_signer_identity(r->signer))) != 0) {
        snprintf(err, errlen, "out of memory");
        ok = 0;
    }
    if (ok && start_loadgen(r, err, errlen) != 0)
        ok = 0;
    if (ok && start_alerter(r, store, err, errlen) != 0)
        ok = 0;
    if (ok && start_agentpull(r, err, errlen) != 0)
        ok = 0;
    if (!ok) {
        lbw_replica_close(r, NULL, NULL);
        return -1;
    }
    uv_timer_start(&r->flush_timer, on_flush_timer, FSM_FLUSH_MS, FSM_FLUSH_MS);
    *out = r;
    return 0;
}

void lbw_replica_sample(void *arg, const char *key, int64_t ts_ms, double value)
{
    struct lbw_replica *r = arg;
    lbw_batcher_sample(r->batcher, key, ts_ms, value);
}

struct lbw_cluster *lbw_replica_cluster(struct lbw_replica *r) { return r->cluster; }

void lbw_replica_on_leader(struct lbw_replica *r, void (*cb)(void *arg), void *arg)
{
    r->leader_cb = cb;
    r->leader_arg = arg;
}

struct lbw_alerter *lbw_replica_alerter(struct lbw_replica *r) { return r->alerter; }

const struct lbw_ledger *lbw_replica_ledger(struct lbw_replica *r)
{
    return lbw_fsm_ledger(r->fsm);
}

int lbw_replica_take_ledger_change(struct lbw_replica *r)
{
    int changed = r->ledger_changed;
    r->ledger_changed = 0;
    return changed;
}

/* What /metrics says of the replicated alert state. */
static void count_ledger(const struct lbw_ledger *l, struct lbw_node_status *st)
{
    size_t n;
    const struct lbw_alert *al = lbw_ledger_alerts(l, &n);
    for (size_t i = 0; i < n; i++)
        st->alerts[al[i].state & 3]++;
    const struct lbw_intent *in = lbw_ledger_intents(l, &n);
    for (size_t i = 0; i < n; i++)
        st->intents_undelivered += !in[i].delivered;
    const struct lbw_receiver_health *h = lbw_ledger_receivers(l, &n);
    for (size_t i = 0; i < n; i++)
        st->receivers_failing += h[i].consecutive_failures >= LBW_NOTIFICATIONS_FAILING_AFTER;
}

void lbw_replica_status(const struct lbw_replica *r, struct lbw_node_status *st)
{
    struct lbw_batcher_stats bs;
    st->clustered = 1;
    if (r->cluster)
        lbw_cluster_status(r->cluster, &st->cluster);
    lbw_fsm_stats(r->fsm, &st->fsm);
    if (r->batcher) {
        lbw_batcher_stats(r->batcher, &bs);
        st->samples_in = bs.samples_in;
        st->batches_signed = bs.batches;
    }
    st->samples_stored = st->fsm.samples;
    if (r->alerter)
        lbw_alerter_stats(r->alerter, &st->alerter);
    count_ledger(lbw_fsm_ledger(r->fsm), st);
    if (r->agentpull)
        st->nagents = lbw_agentpull_status(r->agentpull, st->agents, LBW_AGENTS_MAX);
    st->bench = r->loadgen != NULL;
    if (r->loadgen)
        lbw_loadgen_stats(r->loadgen, &st->loadgen);
}

void lbw_replica_close(struct lbw_replica *r, void (*cb)(void *arg), void *arg)
{
    r->close_cb = cb;
    r->close_arg = arg;
    r->leader_cb = NULL;
    lbw_alerter_close(r->alerter);
    r->alerter = NULL;
    lbw_agentpull_close(r->agentpull);
    r->agentpull = NULL;
    lbw_loadgen_close(r->loadgen);
    r->loadgen = NULL;
    lbw_batcher_close(r->batcher);
    r->batcher = NULL;
    uv_timer_stop(&r->flush_timer);
    if (r->cluster)
        lbw_cluster_close(r->cluster, cluster_closed, r);
    else
        cluster_closed(r);
}
