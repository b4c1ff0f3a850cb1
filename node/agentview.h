/* agentview.h - the agents as this node sees them (node/agentpull.h's status, published by
 * the loop): the /api/v1/agents document and the agents' lines of /metrics.
 *
 * /api/v1/agents:
 *   {"clustered": bool, "node": NAME, "applied_index": N,
 *    "agents": [{"name", "address", "interval_ms",
 *                "owner": {"id", "name"} | null,  the replicated assignment
 *                "assigned_index", "owned" (this node pulls it), "up", "last_seq",
 *                "last_applied" (unix ms on this replica, or null),
 *                "pulls": {"last" (unix ms or null), "ok" (the last one), "error",
 *                          "succeeded", "failed", "refused", "batches", "bytes",
 *                          "forwarded", "forward_failed", "gaps"}}]}
 * (pulls: this node's own, while it owns the agent).
 *
 * /metrics, every series labelled agent="NAME" and this node's vantage:
 *   lbwatch_agent_up                 1 if this replica applied a batch of it within 3 intervals
 *   lbwatch_agent_last_seq           the last origin sequence applied from it
 *   lbwatch_agent_owner              the node id that pulls it (0: none)
 *   lbwatch_agent_owned              1 if this node pulls it
 *   lbwatch_agent_pulls_total{result="ok"|"failed"}, lbwatch_agent_refused_total,
 *   lbwatch_agent_batches_pulled_total, lbwatch_agent_forward_failed_total,
 *   lbwatch_agent_gaps_total         this node's pulls
 * and lbwatch_fsm_assign_ops_total{result} (assignment ops applied, by result).
 */
#ifndef LBW_AGENTVIEW_H
#define LBW_AGENTVIEW_H

#include "node/buf.h"
#include "node/status.h"
#include "node/web.h"

/* /api/v1/agents */
void lbw_agentview_api(const struct lbw_web_ctx *ctx, struct lbw_reply *r);

/* Appends the agents' metric families of st to b. */
void lbw_agentview_metrics(struct lbw_buf *b, const struct lbw_node_status *st);

#endif
