/* api.h - the JSON API handlers (jansson), independent of the HTTP server so they can be
 * called and tested directly. Errors are JSON too: {"error": "..."} with a 4xx/5xx status.
 */
#ifndef LBW_API_H
#define LBW_API_H

#include "node/web.h"

/* /api/v1/targets */
void lbw_api_targets(const struct lbw_web_ctx *ctx, struct lbw_reply *r);

/* /api/v1/cluster: this node's view of the cluster, from the published status:
 *   {"clustered", "id", "name", "state", "term", "leader": {"id","name","web"} | null,
 *    "leader_ready", "has_quorum", "commit_index", "applied_index" (the state machine's, the
 *    index fsm_hash is at), "raft_applied_index", "fsm_hash", "members": [{"id", "name",
 *    "role", "leader", "self", "reachable", "last_contact" (unix ms or null), "raft", "web"}],
 *    "batches": {"accepted", "samples", "rejected": {reason: n}}, "refused": {reason: n},
 *    "pending"}
 * A node without a cluster section answers {"clustered": false, "id", "name",
 * "state": "standalone"}. */
void lbw_api_cluster(const struct lbw_web_ctx *ctx, struct lbw_reply *r);

/* /api/v1/alerts, /api/v1/silences, /api/v1/notifications: the documents the loop published
 * (node/alertview.h); an empty list (or object) on a node without a cluster. */
void lbw_api_doc(const struct lbw_web_ctx *ctx, enum lbw_status_doc which, struct lbw_reply *r);

/* /api/v1/series. Parameters as received (NULL when absent):
 *   name   metric name (required)
 *   target only series with this target label
 *   from   start: unix ms, or a duration before now like "-1h" (default -1h)
 *   to     end: unix ms, or "-5m", or "now" (default now)
 *   step   a duration ("1m") or ms: aggregate into steps (min, max, avg, sum, count)
 * Raw points are capped at 11,000 per series: ask for a step beyond that. */
struct lbw_series_query {
    const char *name, *target, *from, *to, *step;
};
void lbw_api_series(const struct lbw_web_ctx *ctx, const struct lbw_series_query *q,
                    struct lbw_reply *r);

#endif
