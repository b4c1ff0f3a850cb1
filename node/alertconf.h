/* alertconf.h - the `alerting:` section of the node configuration: evaluation interval,
 * external URL, dead man's switch, receivers (with their secrets read from files), the routing
 * tree and inhibit rules (docs/configuration.md, docs/alerting.md).
 *
 *     alerting:
 *       evaluation_interval: 10s
 *       external_url: https://lbwatch.example.com/     # default: this node's web URL
 *       deadman: {url: https://deadman.example/ping/abc, interval: 1m}
 *       receivers:
 *         - name: ops
 *           webhook: {url: https://hooks.example/lbwatch, secret_file: hook.secret}
 *         - name: mail
 *           email: {url: "smtp://mail.example:587", starttls: required, from: lbwatch@example,
 *                   to: [ops@example], username: lbwatch, password_file: smtp.pass}
 *         - name: pager
 *           sms: {url: https://sms.example/send, format: form, to: ["+15550100"],
 *                 fields: {to: to, text: message}, auth: {bearer_file: sms.token}}
 *       route:
 *         receiver: ops
 *         group_by: [alertname, target]
 *         group_wait: 30s
 *         group_interval: 5m
 *         repeat_interval: 4h
 *         routes:
 *           - match: {severity: critical}
 *             receiver: pager
 *             continue: true
 *             escalate: {after: 15m, to: mail}
 *       inhibit:
 *         - source: {alertname: TargetDown}
 *           target: {alertname: CertExpiringSoon}
 *           equal: [target]
 *       default_inhibit: true     # a target that is down inhibits its certificate alerts
 *
 * Errors are the config's "FILE:LINE:COL: PATH: reason". A receiver or route that does not
 * pass alerting/receiver.h's or alerting/route.h's checks is reported at its own position.
 */
#ifndef LBW_ALERTCONF_H
#define LBW_ALERTCONF_H

#include <stddef.h>
#include <stdint.h>

#include "alerting/receiver.h"
#include "alerting/route.h"
#include "node/confarena.h"
#include "node/yamldoc.h"

struct lbw_alerting {
    int enabled;                    /* an alerting: section is present */
    uint64_t evaluation_interval_ms;    /* default 10 s */
    const char *external_url;       /* NULL: the node's own web URL */
    const char *deadman_url;        /* NULL: no dead man's switch */
    uint64_t deadman_interval_ms;   /* default 1 min */
    struct lbw_receiver *receivers;
    size_t nreceivers;
    struct lbw_route_config route;  /* its receivers list names every configured receiver */
    struct lbw_arena *arena;        /* owns everything above */
};

/* Reads the alerting key of top (registering it as known). Returns 0 (out->enabled says
 * whether the section was there), or -1 with the error recorded in top's document. */
int lbw_alertconf_read(struct ymap *top, struct lbw_alerting *out);

/* Frees what out owns and empties it. Safe on a zeroed struct. */
void lbw_alerting_free(struct lbw_alerting *a);

/* The receiver named name, or NULL. */
const struct lbw_receiver *lbw_alerting_receiver(const struct lbw_alerting *a,
                                                 const char *name);

#endif
