/* agentpull.c - the leader's assignment proposals and the owner's pulls of agents, on one
 * 250 ms timer. See agentpull.h. */
#include "node/agentpull.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node/agentfetch.h"
#include "node/agentplan.h"
#include "node/log.h"
#include "probes/tlsio.h"

#define TICK_MS 250
#define PLAN_EVERY_MS 1000
#define RESEND_MS 5000          /* forwarded batches not applied by then are pulled again */
#define UP_INTERVALS 3
#define PULL_MAX_BYTES (16u << 20)

struct agent {
    struct lbw_agentpull *p;
    const struct lbw_agent_cfg *cfg;
    struct lbw_identity id;
    struct lbw_agentfetch *fetch;   /* the pull in flight */
    uint64_t next_pull;             /* uv_now() */
    uint64_t after;                 /* of the pull in flight */
    uint64_t judged;                /* highest sequence applied or refused here */
    uint64_t sent, sent_at, sent_leader;    /* the last batch forwarded, when, to whom */
    int forward_blocked;            /* the pull in flight stopped: no leader took a batch */
    int owned;
    struct lbw_agent_status st;
};

struct lbw_agentpull {
    struct lbw_agentpull_config c;
    SSL_CTX *ctx;
    struct agent *agents;
    size_t nagents;
    uv_timer_t timer;
    uint64_t leader;                /* as of the last tick */
    uint64_t ready_since;           /* uv_now() when this node became the ready leader, 0 */
    uint64_t last_plan;
    uint64_t op_seq;                /* origin sequence of our assignment entries */
    unsigned outstanding;           /* assignment proposals not yet called back */
    int closing, timer_closed;
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct agent *find_agent(struct lbw_agentpull *p, const char *name)
{
    for (size_t i = 0; i < p->nagents; i++)
        if (strcmp(p->agents[i].cfg->name, name) == 0)
            return &p->agents[i];
    return NULL;
}

static void maybe_free(struct lbw_agentpull *p)
{
    if (!p->closing || !p->timer_closed || p->outstanding)
        return;
    SSL_CTX_free(p->ctx);
    free(p->agents);
    free(p);
}

/* ---- leading: assignment proposals ------------------------------------------------------- */

static void on_op_applied(void *arg, int status, uint64_t index)
{
    struct lbw_agentpull *p = arg;
    (void)index;
    p->outstanding--;
    if (status != 0 && !p->closing)
        log_debug("agent", "assignment op not committed here: %s", raft_strerror(status));
    maybe_free(p);
}

static void propose_op(struct lbw_agentpull *p, const struct lbw_assign_op *op, const char *why)
{
    uint8_t payload[LBW_ASSIGN_OP_MAX], *entry;
    size_t len;
    char err[128];
    long n = lbw_assign_op_encode(op, payload, sizeof(payload));
    if (n < 0 || lbw_entry_sign(p->c.signer, LBW_ENTRY_ASSIGN, ++p->op_seq, payload, (size_t)n,
                                &entry, &len, err, sizeof(err)) != 0) {
        log_error("agent", "cannot make an assignment op for agent %s", op->agent);
        return;
    }
    int rv = lbw_cluster_propose(p->c.cluster, entry, len, on_op_applied, p);
    free(entry);
    if (rv != 0)
        return; /* no longer leading: the next leader plans afresh */
    p->outstanding++;
    if (op->type == LBW_ASSIGN_SET)
        log_info("agent", "assigning agent %s to node %llu (%s)", op->agent,
                 (unsigned long long)op->node, why);
    else
        log_info("agent", "releasing agent %s (not in this node's agents list)", op->agent);
}

static void plan(struct lbw_agentpull *p, const struct lbw_cluster_status *cs, uint64_t now)
{
    struct lbw_agentplan_member m[LBW_CLUSTER_MAX_MEMBERS];
    const char *names[LBW_AGENTS_MAX];
    struct lbw_assign_op ops[LBW_AGENTS_MAX + LBW_ASSIGN_MAX];
    char why[96];
    for (size_t i = 0; i < cs->nmembers; i++)
        m[i] = (struct lbw_agentplan_member){cs->members[i].id,
                                             cs->members[i].role == RAFT_VOTER,
                                             cs->members[i].reachable};
    for (size_t i = 0; i < p->nagents; i++)
        names[i] = p->agents[i].cfg->name;
    struct lbw_agentplan_input in = {
        .agents = names, .nagents = p->nagents, .table = lbw_fsm_assignments(p->c.fsm),
        .members = m, .nmembers = cs->nmembers, .self_id = p->c.cfg->node.id,
        .judge_reachability =
            now - p->ready_since >= UP_INTERVALS * p->c.cfg->cluster.election_timeout_ms,
    };
    size_t n = lbw_agentplan(&in, ops, sizeof(ops) / sizeof(ops[0]));
    for (size_t i = 0; i < n; i++) {
        const char *reason = lbw_agentplan_reason(&in, ops[i].agent, why, sizeof(why));
        propose_op(p, &ops[i], reason ? reason : "");
    }
}

/* ---- owning: pulls ----------------------------------------------------------------------- */

static uint64_t pull_after(const struct lbw_agentpull *p, const struct agent *a, uint64_t now)
{
    uint64_t after = lbw_fsm_origin_seq(p->c.fsm, &a->id);
    if (a->judged > after)
        after = a->judged;
    if (a->sent > after && now - a->sent_at < RESEND_MS && a->sent_leader == p->leader)
        after = a->sent; /* still on its way: not again yet */
    return after;
}

static int on_batch(void *arg, const uint8_t *entry, size_t len, uint64_t seq)
{
    struct agent *a = arg;
    struct lbw_agentpull *p = a->p;
    a->st.batches_pulled++;
    a->st.bytes_pulled += len;
    if (lbw_cluster_forward(p->c.cluster, entry, len) != 0) {
        a->st.forward_failed++;
        a->forward_blocked = 1;
        return -1; /* no leader or link now: the rest waits for the next pull, in order */
    }
    a->st.batches_forwarded++;
    a->sent = seq;
    a->sent_at = uv_now(p->c.loop);
    a->sent_leader = p->leader;
    return 0;
}

/* Logs a failed pull when its reason changes (a dead agent is not a line every interval). */
static void note_failure(struct agent *a, const struct lbw_agentfetch_result *r)
{
    const char *error = a->forward_blocked ? "no leader took its batches (pulled again later)"
                                           : r->error;
    int changed = a->st.last_pull_ok || strcmp(a->st.last_error, error) != 0;
    if (changed && r->refused)
        log_warn("agent", "refused agent %s at %s: %s (%s)", a->cfg->name, a->cfg->address,
                 r->error, lbw_refusal_name(r->refusal));
    else if (changed)
        log_warn("agent", "pull of agent %s at %s failed: %s", a->cfg->name, a->cfg->address,
                 error);
    snprintf(a->st.last_error, sizeof(a->st.last_error), "%s", error);
    a->st.pulls_failed++;
    a->st.refusals += r->refused != 0;
    a->st.last_pull_ok = 0;
}

static void on_done(void *arg, const struct lbw_agentfetch_result *r)
{
    struct agent *a = arg;
    struct lbw_agentpull *p = a->p;
    uint64_t now = uv_now(p->c.loop);
    a->fetch = NULL;
    a->st.last_pull_ms = wall_ms();
    a->next_pull = now + a->cfg->interval_ms;
    if (!r->ok) {
        note_failure(a, r);
        return;
    }
    if (!a->st.last_pull_ok && a->st.pulls_ok + a->st.pulls_failed > 0)
        log_info("agent", "pulling agent %s at %s works again", a->cfg->name, a->cfg->address);
    a->st.last_pull_ok = 1;
    a->st.last_error[0] = '\0';
    a->st.pulls_ok++;
    if (r->end.evicted > a->after) {
        a->st.gaps++;
        log_warn("agent", "agent %s dropped batches up to %llu before they were pulled (its "
                          "buffer was full; asked after %llu)", a->cfg->name,
                 (unsigned long long)r->end.evicted, (unsigned long long)a->after);
    }
    if (r->end.more)
        a->next_pull = now; /* cut short at max_bytes: go on at once */
    log_debug("agent", "pulled agent %s after %llu: %zu batches, %zu bytes", a->cfg->name,
              (unsigned long long)a->after, r->batches, r->bytes);
}

static void start_pull(struct lbw_agentpull *p, struct agent *a, uint64_t now)
{
    a->after = pull_after(p, a, now);
    a->forward_blocked = 0;
    struct lbw_agentfetch_config fc = {
        .loop = p->c.loop, .ctx = p->ctx, .agent = a->cfg->name, .host = a->cfg->host,
        .port = a->cfg->port, .after = a->after, .max_bytes = PULL_MAX_BYTES,
        .timeout_ms = a->cfg->timeout_ms, .arg = a, .on_batch = on_batch, .on_done = on_done,
    };
    a->fetch = lbw_agentfetch_start(&fc);
    if (!a->fetch)
        a->next_pull = now + a->cfg->interval_ms; /* out of memory: try later */
}

/* Follows the table: starts owning (pull now), stops owning (abandon the pull). */
static void follow_table(struct lbw_agentpull *p, struct agent *a, uint64_t now)
{
    const struct lbw_assignment *row = lbw_assign_find(lbw_fsm_assignments(p->c.fsm),
                                                       a->cfg->name);
    int owned = row && row->node == p->c.cfg->node.id;
    if (owned == a->owned)
        return;
    a->owned = owned;
    if (owned) {
        log_info("agent", "now pulling agent %s at %s (assigned at index %llu)", a->cfg->name,
                 a->cfg->address, (unsigned long long)row->index);
        a->next_pull = now;
        return;
    }
    log_info("agent", "no longer pulling agent %s (%s)", a->cfg->name,
             row ? "another node owns it" : "no owner");
    if (a->fetch) {
        lbw_agentfetch_cancel(a->fetch);
        a->fetch = NULL;
    }
}

static void on_tick(uv_timer_t *t)
{
    struct lbw_agentpull *p = t->data;
    struct lbw_cluster_status cs;
    uint64_t now = uv_now(p->c.loop);
    lbw_cluster_status(p->c.cluster, &cs);
    p->leader = cs.leader_id;
    if (!cs.leader_ready)
        p->ready_since = 0;
    else if (!p->ready_since)
        p->ready_since = now;
    /* the first plan waits an election timeout: the side channel has heard from the members
     * by then, so agents are spread over every node rather than given all to this one */
    if (cs.leader_ready && now - p->ready_since >= p->c.cfg->cluster.election_timeout_ms &&
        !p->outstanding && now - p->last_plan >= PLAN_EVERY_MS) {
        p->last_plan = now;
        plan(p, &cs, now);
    }
    for (size_t i = 0; i < p->nagents; i++) {
        struct agent *a = &p->agents[i];
        follow_table(p, a, now);
        if (a->owned && !a->fetch && now >= a->next_pull)
            start_pull(p, a, now);
    }
}

/* ---- public ------------------------------------------------------------------------------ */

int lbw_agentpull_new(struct lbw_agentpull **out, const struct lbw_agentpull_config *c,
                      char *err, size_t errlen)
{
    const struct lbw_config *cfg = c->cfg;
    struct lbw_agentpull *p = calloc(1, sizeof(*p));
    *out = NULL;
    if (!p || !(p->agents = calloc(cfg->nagents ? cfg->nagents : 1, sizeof(*p->agents)))) {
        free(p);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    p->c = *c;
    p->ctx = lbw_tlsio_client_ctx(cfg->tls.ca, 1, cfg->tls.cert, cfg->tls.key, err, errlen);
    if (!p->ctx) {
        free(p->agents);
        free(p);
        return -1;
    }
    p->nagents = cfg->nagents;
    for (size_t i = 0; i < p->nagents; i++) {
        struct agent *a = &p->agents[i];
        a->p = p;
        a->cfg = &cfg->agents[i];
        a->id.kind = LBW_ID_AGENT;
        snprintf(a->id.name, sizeof(a->id.name), "%s", a->cfg->name);
    }
    p->op_seq = (uint64_t)wall_ms() * 1000u;
    uv_timer_init(c->loop, &p->timer);
    p->timer.data = p;
    uv_timer_start(&p->timer, on_tick, TICK_MS, TICK_MS);
    *out = p;
    return 0;
}

void lbw_agentpull_judged(struct lbw_agentpull *p, const struct lbw_identity *origin,
                          uint64_t seq, int accepted)
{
    if (!p || origin->kind != LBW_ID_AGENT)
        return;
    struct agent *a = find_agent(p, origin->name);
    if (!a)
        return;
    if (seq > a->judged)
        a->judged = seq;
    if (accepted)
        a->st.last_applied_ms = wall_ms();
}

size_t lbw_agentpull_status(const struct lbw_agentpull *p, struct lbw_agent_status *out,
                            size_t max)
{
    const struct lbw_assign *table = lbw_fsm_assignments(p->c.fsm);
    int64_t now = wall_ms();
    size_t n = 0;
    for (; n < p->nagents && n < max; n++) {
        const struct agent *a = &p->agents[n];
        const struct lbw_assignment *row = lbw_assign_find(table, a->cfg->name);
        struct lbw_agent_status *s = &out[n];
        *s = a->st;
        snprintf(s->name, sizeof(s->name), "%s", a->cfg->name);
        snprintf(s->address, sizeof(s->address), "%s", a->cfg->address);
        s->interval_ms = a->cfg->interval_ms;
        s->owner = row ? row->node : 0;
        s->assigned_index = row ? row->index : 0;
        s->owned = a->owned;
        s->last_seq = lbw_fsm_origin_seq(p->c.fsm, &a->id);
        s->up = s->last_applied_ms > 0 &&
                now - s->last_applied_ms <= (int64_t)(UP_INTERVALS * a->cfg->interval_ms);
    }
    return n;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct lbw_agentpull *p = h->data;
    p->timer_closed = 1;
    maybe_free(p);
}

void lbw_agentpull_close(struct lbw_agentpull *p)
{
    if (!p || p->closing)
        return;
    p->closing = 1;
    for (size_t i = 0; i < p->nagents; i++) {
        if (p->agents[i].fetch)
            lbw_agentfetch_cancel(p->agents[i].fetch);
        p->agents[i].fetch = NULL;
    }
    uv_close((uv_handle_t *)&p->timer, on_timer_closed);
}
