/* agentplan.h - the leader's rules for who pulls each agent.
 *
 * The ready leader (node/agentpull.h) looks at the replicated assignment table
 * (node/assign.h), the agents configured on it and the cluster's members as it sees them,
 * and proposes the ops this returns. For every configured agent:
 *   - no owner                                    -> ASSIGN it
 *   - its owner is no longer a voter (removed,    -> ASSIGN it to another node
 *     or demoted)
 *   - its owner is not reachable (the leader has  -> ASSIGN it to another node, once the
 *     not heard from it within 3 election           leader has led long enough to have heard
 *     timeouts, raft/cluster.h)                     from everyone (judge_reachability)
 * and every row of an agent not configured here is RELEASEd. The new owner is a reachable
 * voter (the leader always counts as reachable) owning the fewest configured agents, counting
 * the assignments planned in the same round; ties go to the highest rendezvous hash of
 * (agent name, node id), so agents spread over the nodes and the choice does not depend on
 * the order of the members. A working owner is never moved (no rebalancing: moving an agent
 * costs a gap-free but duplicate-prone hand-over for nothing). Each op is a compare-and-set
 * on the row it saw, so an op planned on a stale view is ignored on apply.
 *
 * Pure: no I/O, no clock, no state.
 */
#ifndef LBW_AGENTPLAN_H
#define LBW_AGENTPLAN_H

#include <stddef.h>
#include <stdint.h>

#include "node/assign.h"

struct lbw_agentplan_member {
    uint64_t id;
    int voter;
    int reachable;
};

struct lbw_agentplan_input {
    const char *const *agents;  /* configured agent names */
    size_t nagents;
    const struct lbw_assign *table;
    const struct lbw_agentplan_member *members;
    size_t nmembers;
    uint64_t self_id;           /* the leader: always a reachable candidate if a voter */
    int judge_reachability;     /* 0: do not move agents off unreachable owners yet */
};

/* Writes up to max ops into ops; returns how many. */
size_t lbw_agentplan(const struct lbw_agentplan_input *in, struct lbw_assign_op *ops,
                     size_t max);

/* Why an agent's owner would be replaced ("no owner", "owner 3 is not a voter", ...), or NULL
 * if it would not be: for the leader's log. Writes into buf. */
const char *lbw_agentplan_reason(const struct lbw_agentplan_input *in, const char *agent,
                                 char *buf, size_t len);

#endif
