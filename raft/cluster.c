/* cluster.c - libraft, transport and side channel wired together; leadership tracking with
 * the post-election barrier; this node's entries kept until applied. See cluster.h.
 *
 * libraft 0.15 has no state-change callback, so a 50 ms poll timer watches state, leader and
 * configuration, starts the barrier after an election is won, and (re)sends pending entries.
 */
#include "raft/cluster.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <raft/uv.h>

#include "raft/batch.h"

#define POLL_MS 20
#define TUNE_EVERY_POLLS 50         /* snapshot settings checked once a second */
#define LOG_MEMORY_BUDGET (512.0 * 1024 * 1024) /* log entries libraft holds in memory */
#define MIN_SNAPSHOT_ENTRIES 256
#define RESEND_MS 5000
#define MAX_SENDS 20
#define DEFAULT_ELECTION_MS 1000
#define DEFAULT_HEARTBEAT_MS 100
#define DEFAULT_SNAPSHOT_ENTRIES 8192
#define DEFAULT_PENDING_MAX (64u << 20)

struct pending {
    struct pending *next;
    uint64_t seq;
    uint8_t *entry;
    size_t len;
    uint64_t sent_to;           /* 0 = not sent yet */
    uint64_t sent_at;           /* uv_now() */
    unsigned sends;
};

struct known_peer {             /* a configured peer */
    uint64_t id;
    char name[LBW_NAME_MAX];
    char raft[LBW_ADDR_MAX];
    char web[LBW_URL_MAX];
};

struct lbw_cluster {
    struct lbw_cluster_config cfg;
    char raft_address[LBW_ADDR_MAX];
    char web_url[LBW_URL_MAX];
    char raft_dir[1024];
    struct known_peer known[LBW_CLUSTER_MAX_MEMBERS];
    size_t nknown;
    struct raft raft;
    struct raft_io io;
    struct raft_fsm fsm;        /* cfg.fsm with apply_unpadded (see propose) */
    double entry_bytes;         /* moving average of applied entry sizes */
    unsigned threshold_now, trailing_now, polls;
    struct raft_uv_transport transport;
    struct lbw_side *side;
    uv_timer_t poll;
    int transport_ready, io_ready, raft_ready, started, closing;
    void (*close_cb)(void *arg);
    void *close_arg;

    int last_state;
    uint64_t last_leader;
    uint64_t barrier_term;      /* term of the barrier in flight or committed, 0 = none */
    int leader_ready;
    uint64_t members_sig;       /* to notice configuration changes */

    struct pending *head, *tail;
    size_t npending, pending_bytes;
    uint64_t dropped, proposed, forwarded, resent, elections_won, submits_refused;
};

static void event(struct lbw_cluster *c, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void event(struct lbw_cluster *c, int level, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    if (!c->cfg.on_event)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    c->cfg.on_event(c->cfg.arg, level, msg);
}

const char *lbw_cluster_state_name(int state)
{
    switch (state) {
    case RAFT_FOLLOWER: return "follower";
    case RAFT_CANDIDATE: return "candidate";
    case RAFT_LEADER: return "leader";
    default: return "unavailable";
    }
}

const char *lbw_cluster_role_name(int role)
{
    switch (role) {
    case RAFT_VOTER: return "voter";
    case RAFT_STANDBY: return "standby";
    default: return "spare";
    }
}

static uint64_t self_id(const struct lbw_cluster *c) { return c->cfg.self_id; }

static uint64_t current_leader(struct lbw_cluster *c)
{
    raft_id id = 0;
    const char *addr = NULL;
    raft_leader(&c->raft, &id, &addr);
    return id;
}

/* ---- proposing --------------------------------------------------------------------------- */

struct apply_req {
    struct raft_apply req;
    struct lbw_cluster *c;
    lbw_cluster_applied_cb cb;
    void *arg;
};

static void on_applied(struct raft_apply *req, int status, void *result)
{
    struct apply_req *a = req->data;
    (void)result;
    if (a->cb)
        a->cb(a->arg, status, status == 0 ? req->index : 0);
    free(a);
}

/* libraft 0.15 assumes every entry's length is a multiple of 8: its uv backend pads entries
 * when it decodes a batch of them (AppendEntries messages, log segments on disk) but not when
 * it encodes them, so in a batch every entry after one of another length is read shifted
 * (and the last past the end of its buffer). Entries therefore go into the log with 1 to 8
 * bytes of padding, each holding the padding length, and apply_unpadded takes it off before
 * the state machine sees the entry. */
static int apply_unpadded(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    struct lbw_cluster *c =
        (struct lbw_cluster *)((char *)fsm - offsetof(struct lbw_cluster, fsm));
    struct raft_buffer entry = *buf;
    const uint8_t *p = buf->base;
    size_t pad = buf->len ? p[buf->len - 1] : 0;
    int padded = pad >= 1 && pad <= 8 && pad <= buf->len;
    for (size_t i = 1; padded && i <= pad; i++)
        padded = p[buf->len - i] == pad;
    if (padded) /* else not an entry of ours: the state machine refuses it as it is */
        entry.len -= pad;
    c->entry_bytes = c->entry_bytes > 0 ? c->entry_bytes * 0.99 + (double)buf->len * 0.01
                                        : (double)buf->len;
    return c->cfg.fsm->apply(fsm, &entry, result);
}

/* Appends a padded copy of entry to the log (leader only). Returns 0 or a RAFT_* error. */
static int propose_cb(struct lbw_cluster *c, const uint8_t *entry, size_t len,
                      lbw_cluster_applied_cb cb, void *arg)
{
    size_t pad = 8 - len % 8;
    struct raft_buffer buf = {raft_malloc(len + pad), len + pad};
    struct apply_req *a = calloc(1, sizeof(*a));
    int rv;
    if (!buf.base || !a) {
        raft_free(buf.base);
        free(a);
        return RAFT_NOMEM;
    }
    memcpy(buf.base, entry, len);
    memset((uint8_t *)buf.base + len, (int)pad, pad);
    a->req.data = a;
    a->c = c;
    a->cb = cb;
    a->arg = arg;
    if ((rv = raft_apply(&c->raft, &a->req, &buf, 1, on_applied)) != 0) {
        raft_free(buf.base);
        free(a);
        return rv;
    }
    c->proposed++;
    return 0;
}

static int propose(struct lbw_cluster *c, const uint8_t *entry, size_t len)
{
    return propose_cb(c, entry, len, NULL, NULL) == 0 ? 0 : -1;
}

int lbw_cluster_propose(struct lbw_cluster *c, const uint8_t *entry, size_t len,
                        lbw_cluster_applied_cb cb, void *arg)
{
    if (c->closing || !c->started)
        return RAFT_CANCELED;
    if (raft_state(&c->raft) != RAFT_LEADER || !c->leader_ready)
        return RAFT_NOTLEADER;
    return propose_cb(c, entry, len, cb, arg);
}

/* An entry another node sent us to propose. */
static int is_member(const struct lbw_cluster *c, uint64_t id)
{
    for (unsigned i = 0; i < c->raft.configuration.n; i++)
        if (c->raft.configuration.servers[i].id == id)
            return 1;
    return 0;
}

/* An entry another node sent us to propose. Only members may, and only sample batches:
 * a node removed from the cluster keeps a valid certificate, but nothing it sends reaches
 * the log any more, and alert and assignment ops only ever come from the leader itself. A
 * sample batch may be the member's own or an agent's that the member pulled
 * (lbw_cluster_forward): whose it is, and whether it may say what it says, the state
 * machine decides from its signature and certificate on every replica. */
static void on_side_submit(void *arg, uint64_t from_id, const uint8_t *entry, size_t len)
{
    struct lbw_cluster *c = arg;
    if (c->closing || raft_state(&c->raft) != RAFT_LEADER)
        return; /* its sender resends to whoever leads */
    if (len == 0 || entry[0] != LBW_ENTRY_BATCH || !is_member(c, from_id)) {
        uint64_t n = ++c->submits_refused;
        if ((n & (n - 1)) == 0) /* log the 1st, 2nd, 4th, 8th, ... */
            event(c, 1, "refused an entry from node %llu: %s (%llu so far)",
                  (unsigned long long)from_id,
                  is_member(c, from_id) ? "not a sample batch" : "not a member of the cluster",
                  (unsigned long long)n);
        return;
    }
    if (propose(c, entry, len) == 0)
        c->forwarded++;
}

/* ---- this node's pending entries --------------------------------------------------------- */

static void pending_free(struct lbw_cluster *c, struct pending *p)
{
    c->npending--;
    c->pending_bytes -= p->len;
    free(p->entry);
    free(p);
}

static void pending_pop(struct lbw_cluster *c)
{
    struct pending *p = c->head;
    c->head = p->next;
    if (!c->head)
        c->tail = NULL;
    pending_free(c, p);
}

/* Sends one pending entry to whoever leads now. Returns 0, or -1 if it cannot go now. */
static int send_one(struct lbw_cluster *c, struct pending *p, uint64_t leader, uint64_t now)
{
    int rc;
    if (leader == 0)
        return -1;
    if (leader == self_id(c))
        rc = raft_state(&c->raft) == RAFT_LEADER ? propose(c, p->entry, p->len) : -1;
    else
        rc = c->side ? lbw_side_submit(c->side, leader, p->entry, p->len) : -1;
    if (rc != 0)
        return -1;
    if (p->sent_to)
        c->resent++;
    p->sent_to = leader;
    p->sent_at = now;
    p->sends++;
    return 0;
}

/* Sends, in order, every entry not yet sent to the current leader or sent too long ago.
 * Entries sent MAX_SENDS times without being applied are given up (the state machine
 * refused them, e.g. after a certificate change). */
static void send_pending(struct lbw_cluster *c)
{
    uint64_t now = uv_now(c->cfg.loop), leader = current_leader(c);
    while (c->head && c->head->sends >= MAX_SENDS &&
           now - c->head->sent_at >= RESEND_MS) {
        event(c, 2, "giving up on entry seq %llu after %u sends",
              (unsigned long long)c->head->seq, c->head->sends);
        c->dropped++;
        pending_pop(c);
    }
    for (struct pending *p = c->head; p; p = p->next) {
        if (p->sent_to == leader && now - p->sent_at < RESEND_MS)
            continue;
        if (send_one(c, p, leader, now) != 0)
            break; /* keep the order: later entries wait */
    }
}

int lbw_cluster_submit(struct lbw_cluster *c, uint64_t seq, uint8_t *entry, size_t len)
{
    struct pending *p;
    if (c->closing || c->pending_bytes + len > c->cfg.pending_max_bytes ||
        !(p = calloc(1, sizeof(*p)))) {
        free(entry);
        c->dropped++;
        return -1;
    }
    p->seq = seq;
    p->entry = entry;
    p->len = len;
    if (c->tail)
        c->tail->next = p;
    else
        c->head = p;
    c->tail = p;
    c->npending++;
    c->pending_bytes += len;
    send_pending(c);
    return 0;
}

int lbw_cluster_forward(struct lbw_cluster *c, const uint8_t *entry, size_t len)
{
    uint64_t leader;
    if (c->closing || !c->started || (leader = current_leader(c)) == 0)
        return -1;
    if (leader == self_id(c))
        return raft_state(&c->raft) == RAFT_LEADER ? propose(c, entry, len) : -1;
    return c->side ? lbw_side_submit(c->side, leader, entry, len) : -1;
}

size_t lbw_cluster_pending_bytes(const struct lbw_cluster *c)
{
    return c->pending_bytes;
}

uint64_t lbw_cluster_replication_lag(struct lbw_cluster *c)
{
    const struct raft_configuration *conf = &c->raft.configuration;
    uint64_t last, lag = 0;
    if (!c->started || c->closing || raft_state(&c->raft) != RAFT_LEADER)
        return 0;
    last = raft_last_index(&c->raft);
    for (unsigned i = 0; i < conf->n; i++) {
        const struct raft_progress *p = &c->raft.leader_state.progress[i];
        if (conf->servers[i].role == RAFT_VOTER && conf->servers[i].id != self_id(c) &&
            p->recent_recv && last > p->match_index && last - p->match_index > lag)
            lag = last - p->match_index;
    }
    return lag;
}

void lbw_cluster_applied_seq(struct lbw_cluster *c, uint64_t seq)
{
    while (c->head && c->head->seq <= seq)
        pending_pop(c);
}

/* ---- leadership -------------------------------------------------------------------------- */

struct barrier_req {
    struct raft_barrier req;
    struct lbw_cluster *c;
    uint64_t term;
};

static void on_barrier(struct raft_barrier *req, int status)
{
    struct barrier_req *b = req->data;
    struct lbw_cluster *c = b->c;
    if (status == 0 && !c->closing && raft_state(&c->raft) == RAFT_LEADER &&
        c->raft.current_term == b->term && !c->leader_ready) {
        c->leader_ready = 1;
        c->elections_won++;
        event(c, 0, "leading in term %llu: barrier committed at index %llu",
              (unsigned long long)b->term, (unsigned long long)c->raft.commit_index);
        if (c->cfg.on_leader)
            c->cfg.on_leader(c->cfg.arg, 1);
    } else if (status != 0 && c->barrier_term == b->term) {
        c->barrier_term = 0; /* retried by the poll while still leading */
    }
    free(b);
}

static void start_barrier(struct lbw_cluster *c)
{
    struct barrier_req *b = calloc(1, sizeof(*b));
    if (!b)
        return;
    b->req.data = b;
    b->c = c;
    b->term = c->raft.current_term;
    if (raft_barrier(&c->raft, &b->req, on_barrier) != 0) {
        free(b);
        return;
    }
    c->barrier_term = b->term;
}

struct confirm_req {
    struct raft_barrier req;
    struct lbw_cluster *c;
    uint64_t term;
    void (*cb)(void *arg, int ok);
    void *arg;
};

static void on_confirmed(struct raft_barrier *req, int status)
{
    struct confirm_req *r = req->data;
    struct lbw_cluster *c = r->c;
    int ok = status == 0 && !c->closing && raft_state(&c->raft) == RAFT_LEADER &&
             c->raft.current_term == r->term && c->leader_ready;
    r->cb(r->arg, ok);
    free(r);
}

int lbw_cluster_confirm(struct lbw_cluster *c, void (*cb)(void *arg, int ok), void *arg)
{
    struct confirm_req *r;
    int rv;
    if (c->closing || !c->started)
        return RAFT_CANCELED;
    if (raft_state(&c->raft) != RAFT_LEADER || !c->leader_ready)
        return RAFT_NOTLEADER;
    if (!(r = calloc(1, sizeof(*r))))
        return RAFT_NOMEM;
    r->req.data = r;
    r->c = c;
    r->term = c->raft.current_term;
    r->cb = cb;
    r->arg = arg;
    if ((rv = raft_barrier(&c->raft, &r->req, on_confirmed)) != 0)
        free(r);
    return rv;
}

static void track_leadership(struct lbw_cluster *c)
{
    int state = raft_state(&c->raft);
    uint64_t leader = current_leader(c);
    if (state == RAFT_LEADER && !c->leader_ready && c->barrier_term != c->raft.current_term)
        start_barrier(c);
    if (state != RAFT_LEADER && c->leader_ready) {
        c->leader_ready = 0;
        event(c, 1, "no longer leading (now %s, term %llu)", lbw_cluster_state_name(state),
              (unsigned long long)c->raft.current_term);
        if (c->cfg.on_leader)
            c->cfg.on_leader(c->cfg.arg, 0);
    }
    if (leader != c->last_leader) {
        if (leader)
            event(c, 0, "leader is node %llu (term %llu)", (unsigned long long)leader,
                  (unsigned long long)c->raft.current_term);
        else
            event(c, 1, "no leader known (term %llu)", (unsigned long long)c->raft.current_term);
    }
    c->last_state = state;
    c->last_leader = leader;
}

/* Keeps the side channel's links in step with the raft configuration. */
static void sync_members(struct lbw_cluster *c)
{
    const struct raft_configuration *conf = &c->raft.configuration;
    struct lbw_side_member m[LBW_CLUSTER_MAX_MEMBERS];
    uint64_t sig = 1469598103934665603ull;
    size_t n = 0;
    if (!c->side)
        return; /* plain TCP: no side channel */
    for (unsigned i = 0; i < conf->n && n < LBW_CLUSTER_MAX_MEMBERS; i++) {
        m[n].id = conf->servers[i].id;
        m[n].address = conf->servers[i].address;
        sig = (sig ^ m[n].id) * 1099511628211ull;
        for (const char *p = m[n].address; *p; p++)
            sig = (sig ^ (uint8_t)*p) * 1099511628211ull;
        n++;
    }
    if (sig == c->members_sig)
        return;
    c->members_sig = sig;
    lbw_side_set_members(c->side, m, n);
}

static unsigned entries_fitting(double budget, double entry_bytes, unsigned most)
{
    double n = budget / entry_bytes;
    if (n < MIN_SNAPSHOT_ENTRIES)
        return MIN_SNAPSHOT_ENTRIES;
    return n > most ? most : (unsigned)n;
}

/* libraft keeps in memory every entry since its last snapshot plus the trailing ones, and
 * counts both in entries. Entries range from a few hundred bytes (a few probe results) to
 * megabytes (a full batch under heavy load), so the configured counts are lowered while
 * entries are large, to keep the log within LOG_MEMORY_BUDGET. */
static void tune_snapshots(struct lbw_cluster *c)
{
    if (c->entry_bytes <= 0)
        return;
    unsigned th = entries_fitting(LOG_MEMORY_BUDGET / 2, c->entry_bytes,
                                  c->cfg.snapshot_threshold);
    unsigned tr = entries_fitting(LOG_MEMORY_BUDGET / 2, c->entry_bytes,
                                  c->cfg.snapshot_trailing);
    /* move only on a change of more than a quarter, not on every wobble */
    if (th * 4 < c->threshold_now * 3 || th * 3 > c->threshold_now * 4) {
        raft_set_snapshot_threshold(&c->raft, th);
        c->threshold_now = th;
    }
    if (tr * 4 < c->trailing_now * 3 || tr * 3 > c->trailing_now * 4) {
        raft_set_snapshot_trailing(&c->raft, tr);
        c->trailing_now = tr;
    }
}

static void on_poll(uv_timer_t *t)
{
    struct lbw_cluster *c = t->data;
    track_leadership(c);
    sync_members(c);
    send_pending(c);
    if (++c->polls % TUNE_EVERY_POLLS == 0)
        tune_snapshots(c);
}

/* ---- membership -------------------------------------------------------------------------- */

struct change_req {
    struct raft_change req;
    struct lbw_cluster *c;
    uint64_t id;
    int assign_next;            /* after raft_add: promote to voter */
    lbw_cluster_change_cb cb;
    void *arg;
};

static void change_done(struct change_req *r, int status, const char *what)
{
    char msg[256];
    if (status == 0)
        snprintf(msg, sizeof(msg), "node %llu %s", (unsigned long long)r->id, what);
    else
        snprintf(msg, sizeof(msg), "node %llu: %s", (unsigned long long)r->id,
                 raft_strerror(status));
    event(r->c, status ? 2 : 0, "membership: %s", msg);
    if (r->cb)
        r->cb(r->arg, status, msg);
    free(r);
}

static void on_assigned(struct raft_change *req, int status)
{
    change_done(req->data, status, "is a voter");
}

static void on_added(struct raft_change *req, int status)
{
    struct change_req *r = req->data;
    if (status == 0 && !r->c->closing) {
        status = raft_assign(&r->c->raft, &r->req, r->id, RAFT_VOTER, on_assigned);
        if (status == 0)
            return;
    }
    change_done(r, status, "added");
}

static void on_removed(struct raft_change *req, int status)
{
    change_done(req->data, status, "removed");
}

static struct change_req *change_new(struct lbw_cluster *c, uint64_t id,
                                     lbw_cluster_change_cb cb, void *arg)
{
    struct change_req *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->req.data = r;
    r->c = c;
    r->id = id;
    r->cb = cb;
    r->arg = arg;
    return r;
}

int lbw_cluster_add(struct lbw_cluster *c, uint64_t id, const char *raft_address,
                    lbw_cluster_change_cb cb, void *arg)
{
    struct change_req *r = change_new(c, id, cb, arg);
    if (!r)
        return RAFT_NOMEM;
    int rv = raft_add(&c->raft, &r->req, id, raft_address, on_added);
    if (rv != 0)
        free(r);
    return rv;
}

int lbw_cluster_remove(struct lbw_cluster *c, uint64_t id, lbw_cluster_change_cb cb, void *arg)
{
    struct change_req *r = change_new(c, id, cb, arg);
    if (!r)
        return RAFT_NOMEM;
    int rv = raft_remove(&c->raft, &r->req, id, on_removed);
    if (rv != 0)
        free(r);
    return rv;
}

/* ---- status ------------------------------------------------------------------------------ */

static void fill_names(const struct lbw_cluster *c, struct lbw_cluster_member *m)
{
    for (size_t i = 0; i < c->nknown; i++) {
        if (c->known[i].id == m->id) {
            snprintf(m->name, sizeof(m->name), "%s", c->known[i].name);
            snprintf(m->web, sizeof(m->web), "%s", c->known[i].web);
        }
    }
}

static void fill_member(const struct lbw_cluster *c, const struct raft_server *s, uint64_t leader,
                        struct lbw_cluster_member *m)
{
    struct lbw_side_peer p;
    uint64_t now = uv_now(c->cfg.loop);
    uint64_t window = 3ull * c->raft.election_timeout;
    memset(m, 0, sizeof(*m));
    m->id = s->id;
    snprintf(m->raft, sizeof(m->raft), "%s", s->address);
    m->role = s->role;
    m->leader = s->id == leader;
    fill_names(c, m);
    if (s->id == self_id(c)) {
        m->self = 1;
        m->reachable = 1;
        if (!c->cfg.plain_tcp)
            snprintf(m->name, sizeof(m->name), "%s", lbw_transport_self(&c->transport)->name);
        snprintf(m->web, sizeof(m->web), "%s", c->web_url);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        m->last_contact_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        return;
    }
    if (c->side && lbw_side_peer(c->side, s->id, &p)) {
        if (p.name[0])
            snprintf(m->name, sizeof(m->name), "%s", p.name);
        if (p.web[0])
            snprintf(m->web, sizeof(m->web), "%s", p.web);
        m->reachable = p.last_rx && now - p.last_rx <= window;
        m->last_contact_ms = p.last_rx_wall_ms;
    }
}

void lbw_cluster_status(const struct lbw_cluster *c, struct lbw_cluster_status *out)
{
    struct lbw_cluster *mc = (struct lbw_cluster *)c; /* raft_state/raft_leader take non-const */
    const struct raft_configuration *conf = &c->raft.configuration;
    unsigned voters = 0, reached = 0;
    memset(out, 0, sizeof(*out));
    out->state = c->started ? raft_state(&mc->raft) : RAFT_UNAVAILABLE;
    out->term = c->raft.current_term;
    out->leader_id = c->started ? current_leader(mc) : 0;
    out->leader_ready = c->leader_ready;
    out->commit_index = c->raft.commit_index;
    out->last_applied = c->raft.last_applied;
    for (unsigned i = 0; i < conf->n && out->nmembers < LBW_CLUSTER_MAX_MEMBERS; i++) {
        struct lbw_cluster_member *m = &out->members[out->nmembers++];
        fill_member(c, &conf->servers[i], out->leader_id, m);
        if (m->role == RAFT_VOTER) {
            voters++;
            reached += m->reachable != 0;
        }
    }
    out->has_quorum = voters > 0 && reached * 2 > voters;
    out->pending = c->npending;
    out->pending_bytes = c->pending_bytes;
    out->dropped = c->dropped;
    out->proposed = c->proposed;
    out->forwarded = c->forwarded;
    out->resent = c->resent;
    out->elections_won = c->elections_won;
    out->submits_refused = c->submits_refused;
    out->plain_tcp = c->cfg.plain_tcp;
    out->replication_lag = lbw_cluster_replication_lag(mc);
    if (!c->cfg.plain_tcp)
        lbw_transport_stats(&c->transport, &out->transport);
    if (c->side)
        lbw_side_stats(c->side, &out->side);
}

/* ---- life cycle -------------------------------------------------------------------------- */

static void on_refusal(void *arg, const char *peer, enum lbw_refusal kind, const char *reason)
{
    event(arg, 1, "refused %s: %s (%s)", peer, reason, lbw_refusal_name(kind));
}

static void on_side_channel(void *arg, struct lbw_tlsio *io, const struct lbw_identity *peer)
{
    struct lbw_cluster *c = arg;
    if (c->side && !c->closing)
        lbw_side_accept(c->side, io, peer);
    else
        lbw_tlsio_close(io, NULL);
}

static int make_dir(const char *dir, char *err, size_t errlen)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s", dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            goto fail;
        *p = '/';
    }
    if (mkdir(path, 0700) == 0 || errno == EEXIST)
        return 0;
fail:
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return -1;
}

static void copy_config(struct lbw_cluster *c, const struct lbw_cluster_config *cfg)
{
    c->cfg = *cfg;
    snprintf(c->raft_address, sizeof(c->raft_address), "%s", cfg->raft_address);
    snprintf(c->web_url, sizeof(c->web_url), "%s", cfg->web_url ? cfg->web_url : "");
    snprintf(c->raft_dir, sizeof(c->raft_dir), "%s", cfg->raft_dir);
    c->cfg.raft_address = c->raft_address;
    c->cfg.web_url = c->web_url;
    c->cfg.raft_dir = c->raft_dir;
    c->cfg.peers = NULL; /* copied below; the caller's array need not outlive this call */
    if (!c->cfg.election_timeout_ms)
        c->cfg.election_timeout_ms = DEFAULT_ELECTION_MS;
    if (!c->cfg.heartbeat_timeout_ms)
        c->cfg.heartbeat_timeout_ms = DEFAULT_HEARTBEAT_MS;
    if (!c->cfg.snapshot_threshold)
        c->cfg.snapshot_threshold = DEFAULT_SNAPSHOT_ENTRIES;
    if (!c->cfg.snapshot_trailing)
        c->cfg.snapshot_trailing = DEFAULT_SNAPSHOT_ENTRIES;
    if (!c->cfg.pending_max_bytes)
        c->cfg.pending_max_bytes = DEFAULT_PENDING_MAX;
    for (size_t i = 0; i < cfg->npeers && c->nknown < LBW_CLUSTER_MAX_MEMBERS; i++) {
        struct known_peer *k = &c->known[c->nknown++];
        k->id = cfg->peers[i].id;
        snprintf(k->name, sizeof(k->name), "%s", cfg->peers[i].name ? cfg->peers[i].name : "");
        snprintf(k->raft, sizeof(k->raft), "%s", cfg->peers[i].raft ? cfg->peers[i].raft : "");
        snprintf(k->web, sizeof(k->web), "%s", cfg->peers[i].web ? cfg->peers[i].web : "");
    }
}

/* libraft's own TCP transport: the benchmark baseline (no TLS, no side channel). */
static int init_plain_transport(struct lbw_cluster *c, char *err, size_t errlen)
{
    int rv = raft_uv_tcp_init(&c->transport, c->cfg.loop);
    if (rv != 0) {
        snprintf(err, errlen, "raft plain TCP transport: %s", raft_strerror(rv));
        return -1;
    }
    c->transport_ready = 1;
    event(c, 1, "cluster.transport is plain-tcp: raft traffic is NOT authenticated and NOT "
                "encrypted; this mode exists only as a benchmark baseline");
    return 0;
}

static int init_mtls_transport(struct lbw_cluster *c, char *err, size_t errlen)
{
    struct lbw_transport_config tc = {
        .loop = c->cfg.loop, .ca_file = c->cfg.ca_file, .cert_file = c->cfg.cert_file,
        .key_file = c->cfg.key_file, .arg = c, .on_refusal = on_refusal,
        .on_side_channel = on_side_channel,
    };
    if (lbw_transport_init(&c->transport, &tc, err, errlen) != 0)
        return -1;
    c->transport_ready = 1;
    const struct lbw_identity *me = lbw_transport_self(&c->transport);
    if (me->id != c->cfg.self_id) {
        snprintf(err, errlen, "the certificate %s is for node %llu, not node %llu",
                 c->cfg.cert_file, (unsigned long long)me->id,
                 (unsigned long long)c->cfg.self_id);
        return -1;
    }
    return 0;
}

static int init_raft(struct lbw_cluster *c, char *err, size_t errlen)
{
    int plain = c->cfg.plain_tcp;
    if ((plain ? init_plain_transport(c, err, errlen) : init_mtls_transport(c, err, errlen)) != 0)
        return -1;
    if (make_dir(c->raft_dir, err, errlen) != 0)
        return -1;
    int rv = raft_uv_init(&c->io, c->cfg.loop, c->raft_dir, &c->transport);
    if (rv != 0) {
        snprintf(err, errlen, "raft io: %s", raft_strerror(rv));
        return -1;
    }
    c->io_ready = 1;
    raft_uv_set_connect_retry_delay(&c->io, 250);
    c->fsm = *c->cfg.fsm; /* same data and methods, so its methods work on this copy */
    c->fsm.apply = apply_unpadded;
    rv = raft_init(&c->raft, &c->io, &c->fsm, c->cfg.self_id, c->raft_address);
    if (rv != 0) {
        snprintf(err, errlen, "raft: %s", raft_errmsg(&c->raft));
        return -1;
    }
    c->raft_ready = 1;
    c->raft.data = c;
    raft_set_election_timeout(&c->raft, c->cfg.election_timeout_ms);
    raft_set_heartbeat_timeout(&c->raft, c->cfg.heartbeat_timeout_ms);
    raft_set_snapshot_threshold(&c->raft, c->cfg.snapshot_threshold);
    raft_set_snapshot_trailing(&c->raft, c->cfg.snapshot_trailing);
    c->threshold_now = c->cfg.snapshot_threshold;
    c->trailing_now = c->cfg.snapshot_trailing;
    raft_set_pre_vote(&c->raft, true);
    return 0;
}

int lbw_cluster_new(struct lbw_cluster **out, const struct lbw_cluster_config *cfg, char *err,
                    size_t errlen)
{
    struct lbw_cluster *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    copy_config(c, cfg);
    uv_timer_init(cfg->loop, &c->poll);
    c->poll.data = c;
    struct lbw_side_config sc = {.loop = cfg->loop, .transport = &c->transport,
                                 .web_url = c->web_url, .arg = c,
                                 .on_submit = on_side_submit};
    if (init_raft(c, err, errlen) != 0 ||
        (!cfg->plain_tcp && lbw_side_new(&c->side, &sc) != 0)) {
        if (!err[0])
            snprintf(err, errlen, "out of memory");
        lbw_cluster_close(c, NULL, NULL);
        return -1;
    }
    *out = c;
    return 0;
}

struct raft *lbw_cluster_raft(struct lbw_cluster *c) { return &c->raft; }

static int bootstrap(struct lbw_cluster *c, char *err, size_t errlen)
{
    struct raft_configuration conf;
    int rv = 0;
    raft_configuration_init(&conf);
    for (size_t i = 0; i < c->nknown && rv == 0; i++)
        rv = raft_configuration_add(&conf, c->known[i].id, c->known[i].raft, RAFT_VOTER);
    if (rv == 0)
        rv = raft_bootstrap(&c->raft, &conf);
    raft_configuration_close(&conf);
    if (rv == RAFT_CANTBOOTSTRAP)
        return 0; /* not a fresh data directory: restart with what is there */
    if (rv != 0) {
        snprintf(err, errlen, "raft bootstrap: %s", raft_strerror(rv));
        return -1;
    }
    event(c, 0, "bootstrapped a new cluster of %zu voters", c->nknown);
    return 0;
}

int lbw_cluster_start(struct lbw_cluster *c, char *err, size_t errlen)
{
    if (!c->cfg.join && bootstrap(c, err, errlen) != 0)
        return -1;
    int rv = raft_start(&c->raft);
    if (rv != 0) {
        snprintf(err, errlen, "raft start: %s", raft_errmsg(&c->raft));
        return -1;
    }
    c->started = 1;
    event(c, 0, "raft started as node %llu on %s (term %llu, %u members known)",
          (unsigned long long)c->cfg.self_id, c->raft_address,
          (unsigned long long)c->raft.current_term, c->raft.configuration.n);
    uv_timer_start(&c->poll, on_poll, 0, POLL_MS);
    return 0;
}

/* Closing: the side channel first (its dials use the transport), then libraft (which closes
 * its I/O and, with it, the transport), then our own memory. */

static void free_cluster(struct lbw_cluster *c)
{
    while (c->head)
        pending_pop(c);
    void (*cb)(void *) = c->close_cb;
    void *arg = c->close_arg;
    free(c);
    if (cb)
        cb(arg);
}

static void poll_closed(uv_handle_t *h) { free_cluster(h->data); }

static void after_raft(struct lbw_cluster *c)
{
    if (c->io_ready)
        raft_uv_close(&c->io);
    if (c->transport_ready && c->cfg.plain_tcp)
        raft_uv_tcp_close(&c->transport);
    else if (c->transport_ready)
        lbw_transport_free(&c->transport);
    uv_close((uv_handle_t *)&c->poll, poll_closed);
}

static void raft_closed(struct raft *r) { after_raft(r->data); }

static void side_closed(void *arg)
{
    struct lbw_cluster *c = arg;
    c->side = NULL;
    if (c->raft_ready)
        raft_close(&c->raft, raft_closed);
    else
        after_raft(c); /* libraft never started using the transport */
}

/* Runs from a timer, so never inside a libraft callback (raft_close would abort there). */
static void on_close_timer(uv_timer_t *t)
{
    struct lbw_cluster *c = t->data;
    if (c->side)
        lbw_side_close(c->side, side_closed, c);
    else
        side_closed(c);
}

void lbw_cluster_close(struct lbw_cluster *c, void (*cb)(void *arg), void *arg)
{
    if (!c || c->closing)
        return;
    c->closing = 1;
    c->close_cb = cb;
    c->close_arg = arg;
    uv_timer_stop(&c->poll);
    uv_timer_start(&c->poll, on_close_timer, 0, 0);
}
