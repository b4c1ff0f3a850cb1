/* cluster.h - this node's place in the lbwatch cluster.
 *
 * Owns the libraft instance (canonical raft 0.15 on its libuv backend) over the mutual-TLS
 * transport (raft/transport.h) and the side channel (raft/side.h), and:
 *   - bootstraps a fresh data directory from the configured peers (all voters), or, when
 *     joining, starts empty and waits to be added; a restart reuses the data
 *     (RAFT_CANTBOOTSTRAP is expected then);
 *   - after every election this node wins, commits a raft_barrier before reporting itself
 *     ready to lead (libraft 0.15 appends no no-op on election, and may count entries of an
 *     earlier term as committed): nothing may act on replicated state before that;
 *   - gets this node's own entries committed whoever leads: proposed directly when leading,
 *     else sent to the leader over the side channel; each is kept and sent again (on a leader
 *     change, or after 5 s) until the state machine reports its sequence number applied, so a
 *     leader dying between receiving and committing loses nothing (the state machine drops
 *     the duplicates by sequence number);
 *   - proposes entries other members send it while it leads (a node that is not a member,
 *     e.g. one removed with a still-valid certificate, is refused and counted);
 *   - pads every entry it proposes to a multiple of 8 bytes and strips the padding before the
 *     state machine (cfg.fsm) applies it: libraft 0.15's uv backend reads a batch of entries
 *     of other lengths shifted, on the wire and from disk; the state machine sees each entry
 *     exactly as submitted;
 *   - changes membership (raft_add + raft_assign to voter, raft_remove).
 * With plain_tcp (a benchmark baseline only) libraft's own raft_uv_tcp transport replaces
 * the mutual-TLS one and there is no side channel.
 * Everything runs on the loop thread; libraft is touched nowhere else.
 */
#ifndef LBW_CLUSTER_H
#define LBW_CLUSTER_H

#include <raft.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "raft/identity.h"
#include "raft/side.h"
#include "raft/transport.h"

#define LBW_CLUSTER_MAX_MEMBERS 16
#define LBW_ADDR_MAX 64

struct lbw_peer {
    uint64_t id;
    const char *name;
    const char *raft;           /* "a.b.c.d:port" */
    const char *web;            /* base URL of its web server */
};

struct lbw_cluster_config {
    uv_loop_t *loop;
    uint64_t self_id;
    const char *raft_address;   /* this node's, "a.b.c.d:port" */
    const char *web_url;        /* this node's */
    const char *raft_dir;       /* libraft's data directory; created if missing */
    const char *ca_file, *cert_file, *key_file;
    const struct lbw_peer *peers;   /* the bootstrap configuration (this node included) */
    size_t npeers;
    int join;                   /* do not bootstrap: wait to be added by the leader */
    unsigned election_timeout_ms;   /* 0 = 1000 */
    unsigned heartbeat_timeout_ms;  /* 0 = 100 */
    unsigned snapshot_threshold;    /* 0 = 8192 entries; lowered while entries are large, */
    unsigned snapshot_trailing;     /* 0 = 8192 entries;  so libraft's in-memory log stays
                                       within 512 MiB (never below 256 entries) */
    size_t pending_max_bytes;       /* own entries kept until applied; 0 = 64 MiB */
    /* libraft's own raft_uv_tcp transport instead of mutual TLS: NO authentication and NO
     * encryption, and no side channel (entries of a node that does not lead wait until it
     * leads). The benchmark baseline only. */
    int plain_tcp;
    struct raft_fsm *fsm;
    void *arg;
    /* Something worth a log line. level: 0 info, 1 warning, 2 error. */
    void (*on_event)(void *arg, int level, const char *msg);
    /* ready = 1: this node leads and its post-election barrier is committed; 0: it no longer
     * leads (or never got ready). */
    void (*on_leader)(void *arg, int ready);
};

struct lbw_cluster;

/* Initialises libraft, the transport and the side channel (nothing runs yet). Returns 0, or
 * -1 with err. */
int lbw_cluster_new(struct lbw_cluster **out, const struct lbw_cluster_config *cfg, char *err,
                    size_t errlen);

/* The raft instance, for the state machine to learn entry indexes (lbw_fsm_bind). */
struct raft *lbw_cluster_raft(struct lbw_cluster *c);

/* Bootstraps if needed and starts libraft (restoring the last snapshot and loading the log
 * happen here). Returns 0, or -1 with err. */
int lbw_cluster_start(struct lbw_cluster *c, char *err, size_t errlen);

/* Gets entry (malloc'd; ownership passes to the cluster) committed as this node's entry with
 * origin sequence number seq (increasing). Returns 0, or -1 if it was dropped because more
 * than pending_max_bytes are already waiting (the oldest are kept; counted). */
int lbw_cluster_submit(struct lbw_cluster *c, uint64_t seq, uint8_t *entry, size_t len);

/* Hands entry (copied) on to be proposed by whoever leads now: proposed here when this node
 * leads, else sent to the leader over the side channel, the same way as this node's own
 * batches. Nothing is kept for resending: the caller sends it again if the state machine
 * does not report it applied (agent batches: node/agentpull.h pulls them again). The leader
 * proposes sample batches (LBW_ENTRY_BATCH) from members only; the state machine decides
 * on the signature whose batch it is. Returns 0 if handed on, -1 if there is no leader or no
 * open link to it (or the link's queue is full). */
int lbw_cluster_forward(struct lbw_cluster *c, const uint8_t *entry, size_t len);

/* Bytes of this node's entries submitted and not yet applied (or given up). */
size_t lbw_cluster_pending_bytes(const struct lbw_cluster *c);

/* Leader only (else 0): how many entries of this node's log the voter furthest behind has
 * not confirmed writing (libraft's replication progress), among the voters heard from within
 * the last election timeout (a dead one does not count). */
uint64_t lbw_cluster_replication_lag(struct lbw_cluster *c);

/* Leader only: appends entry (copied) to the log now, without keeping it for resending (the
 * leader's own alert ops: a new leader decides afresh). cb (may be NULL) runs once: status 0
 * and the entry's index when the state machine has applied it, or a RAFT_* error when it did
 * not commit here (leadership lost, shutting down). Returns 0, or a RAFT_* error (cb is not
 * called). */
typedef void (*lbw_cluster_applied_cb)(void *arg, int status, uint64_t index);
int lbw_cluster_propose(struct lbw_cluster *c, const uint8_t *entry, size_t len,
                        lbw_cluster_applied_cb cb, void *arg);

/* Leader only: confirms this node still leads, by committing a barrier in the current term.
 * cb runs once with 1 if it committed while this node still led in that term, else 0. A
 * leader that was paused or cut off cannot commit it: it learns of the newer term and steps
 * down first. Returns 0, or a RAFT_* error (cb is not called). */
int lbw_cluster_confirm(struct lbw_cluster *c, void (*cb)(void *arg, int ok), void *arg);

/* The state machine applied (or refused for good) this node's entries up to seq. */
void lbw_cluster_applied_seq(struct lbw_cluster *c, uint64_t seq);

/* Membership changes, leader only. cb runs on the loop with status 0 or a RAFT_* error and a
 * message. Return 0 if started, else a RAFT_* error (RAFT_NOTLEADER...) and cb is not called. */
typedef void (*lbw_cluster_change_cb)(void *arg, int status, const char *msg);
int lbw_cluster_add(struct lbw_cluster *c, uint64_t id, const char *raft_address,
                    lbw_cluster_change_cb cb, void *arg);
int lbw_cluster_remove(struct lbw_cluster *c, uint64_t id, lbw_cluster_change_cb cb, void *arg);

struct lbw_cluster_member {
    uint64_t id;
    char name[LBW_NAME_MAX];    /* from its certificate ("" until it was heard from) */
    char raft[LBW_ADDR_MAX];
    char web[LBW_URL_MAX];
    int role;                   /* RAFT_VOTER, RAFT_STANDBY or RAFT_SPARE */
    int self, leader;
    int reachable;              /* heard from within 3 election timeouts (self: always) */
    int64_t last_contact_ms;    /* wall clock, 0 = never */
};

struct lbw_cluster_status {
    int state;                  /* RAFT_UNAVAILABLE, RAFT_FOLLOWER, RAFT_CANDIDATE, RAFT_LEADER */
    uint64_t term;
    uint64_t leader_id;         /* 0 = none known */
    int leader_ready;           /* this node leads and its barrier is committed */
    int has_quorum;             /* this node reaches a majority of voters, itself included */
    uint64_t commit_index, last_applied;
    size_t nmembers;
    struct lbw_cluster_member members[LBW_CLUSTER_MAX_MEMBERS];
    uint64_t pending, pending_bytes, dropped, proposed, forwarded, resent, elections_won;
    uint64_t submits_refused;   /* entries from nodes that are not members, not proposed */
    uint64_t replication_lag;   /* lbw_cluster_replication_lag() */
    int plain_tcp;              /* the transport is libraft's plain TCP (members' reachable
                                 * flags and the transport and side counters are then 0) */
    struct lbw_transport_stats transport;
    struct lbw_side_stats side;
};

void lbw_cluster_status(const struct lbw_cluster *c, struct lbw_cluster_status *out);

/* "leader", "follower", "candidate", "unavailable" */
const char *lbw_cluster_state_name(int state);
/* "voter", "standby", "spare" */
const char *lbw_cluster_role_name(int role);

/* Stops libraft (deferred out of any raft callback), the side channel and the transport; cb
 * runs once everything is closed and freed. */
void lbw_cluster_close(struct lbw_cluster *c, void (*cb)(void *arg), void *arg);

#endif
