/* alerter.h - the leader's alerting loop (docs/alerting.md).
 *
 * While this node leads and its post-election barrier is committed, every second (and at once
 * when it starts leading or one of its intents is applied, so a notification waits for no tick)
 * it:
 *   - evaluates every rule when evaluation_interval has passed (over its own replica of the
 *     store), plus the built-in NotificationsFailing, and proposes the transitions the
 *     ledger needs (compare-and-set on each alert's seq);
 *   - plans notifications (alerting/route.h) and proposes the intents that are due;
 *   - delivers the committed intents that are due: first it confirms it still leads by
 *     committing a barrier in its term, then sends each through its receiver, then proposes
 *     a receipt (success, or failure with the error: the ledger schedules the retry);
 *   - calls the dead man's switch when its interval has passed (after the same confirmation).
 * Ops are signed with this node's key (LBW_ENTRY_ALERT) and proposed directly; none is kept
 * for resending: a new leader plans afresh from the ledger. One proposal is kept in flight per
 * alert and per (receiver, group, kind); one delivery per intent. When leadership is lost
 * every send in flight is cancelled.
 *
 * Everything runs on the loop thread; on followers the alerter only waits.
 */
#ifndef LBW_ALERTER_H
#define LBW_ALERTER_H

#include <stdint.h>
#include <uv.h>

#include "alerting/ledger.h"
#include "alerting/rule.h"
#include "node/alertconf.h"
#include "node/store.h"
#include "raft/batch.h"
#include "raft/cluster.h"

struct lbw_alerter;

struct lbw_alerter_config {
    uv_loop_t *loop;
    const struct lbw_alerting *alerting;    /* receivers, routes; enabled 0: no notifications */
    const struct lbw_rule *rules;           /* default and configured rules */
    size_t nrules;
    struct lbw_store *store;
    struct lbw_ledger *ledger;              /* the replica's (node/fsm.h) */
    struct lbw_cluster *cluster;
    const struct lbw_signer *signer;
    const char *web_url;                    /* this node's status page */
};

int lbw_alerter_new(struct lbw_alerter **out, const struct lbw_alerter_config *c, char *err,
                    size_t errlen);

/* The cluster says this node now leads with its barrier committed (1), or no longer (0). */
void lbw_alerter_leading(struct lbw_alerter *a, int ready);

/* A web write (silence, expiry, acknowledgement): signs and proposes op as the leader; cb gets
 * the applied entry's index (a silence's id) or an error. Returns 0 or a RAFT_* error
 * (RAFT_NOTLEADER on followers). */
int lbw_alerter_propose(struct lbw_alerter *a, const struct lbw_op *op,
                        lbw_cluster_applied_cb cb, void *arg);

/* The ledger it works on (for web writes that must look before they propose). */
const struct lbw_ledger *lbw_alerter_ledger(const struct lbw_alerter *a);

struct lbw_alerter_stats {
    int leading;
    uint64_t evaluations, eval_errors;
    uint64_t transitions, intents, receipts;    /* proposed */
    uint64_t deliveries_ok, deliveries_failed, confirms_failed;
    uint64_t deadman_ok, deadman_failed;
    int64_t last_evaluation_ms;
};
void lbw_alerter_stats(const struct lbw_alerter *a, struct lbw_alerter_stats *out);

/* Cancels sends in flight and frees once its handles have closed (run the loop). */
void lbw_alerter_close(struct lbw_alerter *a);

#endif
