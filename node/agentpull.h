/* agentpull.h - this node's part in pulling the cluster's agents into raft.
 *
 * Every node has the same `agents:` list (node/config.h). Exactly one node pulls each agent:
 * the owner named by the replicated assignment table (node/assign.h, in the state machine),
 * so every replica agrees on it at every applied index.
 *
 * Leading: while this node is the ready leader (from one election timeout after it became
 * ready, so that it has heard from the members), once a second it applies the assignment rules
 * (node/agentplan.h) to the table, the configured agents and the members as it sees them
 * (lbw_cluster_status: voters, reachable = heard from within 3 election timeouts; an owner is
 * judged unreachable only once this node has led for that long), signs each op with this
 * node's key as an LBW_ENTRY_ASSIGN entry and proposes it (lbw_cluster_propose), one round of
 * proposals at a time.
 *
 * Owning: every `interval` (per agent) the owner pulls the agent (node/agentfetch.h) for the
 * batches after the last one this replica's state machine applied or refused from it
 * (lbw_fsm_origin_seq and what the state machine reported), or after the last it forwarded
 * if that was less than 5 s ago to the same leader, and hands each batch to raft exactly
 * like its own (lbw_cluster_forward: proposed when leading, else sent to the leader over the
 * side channel). Nothing is kept here: the agent's buffer is the store of batches not yet
 * applied, so when the owner dies the next owner asks for the same ones again and nothing the
 * agent still buffers is lost; a batch that reaches the log twice is refused by the state
 * machine as a replay (counted in lbwatch_fsm_rejected_total{reason="replay"}) and stored
 * once. An answer cut at max_bytes is continued at once. A node that stops owning an agent
 * abandons its pull in flight.
 *
 * Loop thread only.
 */
#ifndef LBW_AGENTPULL_H
#define LBW_AGENTPULL_H

#include <stdint.h>
#include <uv.h>

#include "node/assign.h"
#include "node/config.h"
#include "node/fsm.h"
#include "raft/batch.h"
#include "raft/cluster.h"

#define LBW_AGENT_ERROR_TEXT 256

/* An agent as this node sees it (for /api/v1/agents and /metrics). */
struct lbw_agent_status {
    char name[LBW_NAME_MAX];
    char address[LBW_ADDR_MAX];
    uint64_t interval_ms;       /* how often its owner pulls it */
    uint64_t owner;             /* node id in the replicated table, 0: none */
    uint64_t assigned_index;    /* raft index of that assignment */
    int owned;                  /* this node pulls it */
    int up;                     /* this replica applied a batch of it within 3 intervals */
    uint64_t last_seq;          /* the state machine's last applied sequence from it */
    int64_t last_applied_ms;    /* wall clock of the last apply here, 0: none since start */
    /* this node's pulls (while it owns the agent) */
    int64_t last_pull_ms;       /* end of the last pull, 0: none */
    int last_pull_ok;
    char last_error[LBW_AGENT_ERROR_TEXT];  /* of the last failed pull, "" if none */
    uint64_t pulls_ok, pulls_failed, refusals;
    uint64_t batches_pulled, bytes_pulled, batches_forwarded, forward_failed;
    uint64_t gaps;              /* pulls that found batches evicted before they were pulled */
};

struct lbw_agentpull_config {
    uv_loop_t *loop;
    const struct lbw_config *cfg;       /* agents, tls, node id, election timeout */
    struct lbw_cluster *cluster;
    struct lbw_fsm *fsm;
    const struct lbw_signer *signer;    /* this node's: signs assignment ops */
};

struct lbw_agentpull;

/* Starts the timer (nothing is pulled before the table names this node). Returns 0, or -1
 * with err. */
int lbw_agentpull_new(struct lbw_agentpull **out, const struct lbw_agentpull_config *c,
                      char *err, size_t errlen);

/* The state machine accepted (accepted = 1) or refused a batch stating agent origin and seq:
 * either way that sequence need not be pulled again. Call it from the FSM's callbacks. */
void lbw_agentpull_judged(struct lbw_agentpull *p, const struct lbw_identity *origin,
                          uint64_t seq, int accepted);

/* Up to max agents' status into out, in config order; returns how many. */
size_t lbw_agentpull_status(const struct lbw_agentpull *p, struct lbw_agent_status *out,
                            size_t max);

/* Abandons pulls in flight and frees once its handles have closed (run the loop). */
void lbw_agentpull_close(struct lbw_agentpull *p);

#endif
