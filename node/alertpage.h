/* alertpage.h - the alerting part of the status page: active alerts (state, severity, labels,
 * summary, since when, silenced/inhibited/acknowledged), receivers whose notifications keep
 * failing, and active silences.
 *
 * Rendered on a web thread from the JSON documents the loop publishes (node/status.h,
 * node/alertview.h), so every node shows the replicated ledger as its own replica has it.
 */
#ifndef LBW_ALERTPAGE_H
#define LBW_ALERTPAGE_H

#include <stdint.h>

#include "node/buf.h"
#include "node/status.h"

/* Counts for the page header. */
struct lbw_alertpage_counts {
    unsigned firing, pending, silences;
};

/* Appends the alerts and silences panels to b (nothing when the node has not published its
 * documents yet) and fills counts. now is in ms since the epoch. */
void lbw_alertpage_render(struct lbw_buf *b, struct lbw_status *status, int64_t now,
                          struct lbw_alertpage_counts *counts);

#endif
