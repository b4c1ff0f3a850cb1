/* alertview.h - the alert ledger as JSON documents for the web (jansson), rendered on the
 * loop thread from the replica's ledger and published through node/status for the web
 * threads:
 *
 *   alerts          [{name, state, severity, labels, annotations, fingerprint (16 hex),
 *                     active_since, firing_since, resolved_at (unix ms or null), value,
 *                     silenced_by (silence id or null), inhibited_by (fingerprint or null),
 *                     acknowledged ({by, at, comment} or null), escalated}]
 *                   firing first, then pending, then resolved; newest first within each
 *   silences        [{id, matchers: [{name, value, negate}], starts_at, ends_at, author,
 *                     comment, created_at, active}]
 *   notifications   {intents: [{id, receiver, group, kind, created_at, idempotency_key,
 *                     alerts: [{fingerprint, status, labels}], delivered, delivered_at,
 *                     attempts, last_error, next_attempt_at}],
 *                    receivers: [{name, consecutive_failures, last_error, last_failure_at,
 *                     last_success_at, failing}]}
 * Each returns malloc'd JSON text, or NULL when out of memory. route (may be NULL) is used to
 * tell inhibited alerts. now decides which silences are active. */
#ifndef LBW_ALERTVIEW_H
#define LBW_ALERTVIEW_H

#include <stdint.h>

#include "alerting/ledger.h"
#include "alerting/route.h"

char *lbw_alertview_alerts(const struct lbw_ledger *l, const struct lbw_route_config *route,
                           int64_t now);
char *lbw_alertview_silences(const struct lbw_ledger *l, int64_t now);
char *lbw_alertview_notifications(const struct lbw_ledger *l);

#endif
