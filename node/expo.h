/* expo.h - /metrics in the Prometheus text exposition format (version 0.0.4).
 *
 * The current sample of every series in the store (all vantages, see view.h), grouped into
 * metric families with # HELP and # TYPE lines, followed by this node's own counters
 * (lbwatch_node_*, lbwatch_store_*, lbwatch_probes_*) labelled with its vantage; on a cluster
 * node also raft and FSM figures and the alerting ones (lbwatch_alerts{state},
 * lbwatch_notifications_undelivered, lbwatch_receivers_failing, deliveries, dead man's switch).
 */
#ifndef LBW_EXPO_H
#define LBW_EXPO_H

#include "node/web.h"

void lbw_expo_metrics(const struct lbw_web_ctx *ctx, struct lbw_reply *r);

/* Formats a sample value as the exposition format wants it (NaN, +Inf, -Inf, integers
 * without a fraction). */
void lbw_expo_value(char *out, size_t len, double v);

#endif
