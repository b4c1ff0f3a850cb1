/* web.h - the node's HTTP server (libmicrohttpd, on its own threads).
 *
 *   GET /                 status page (self-contained HTML, no external resources)
 *   GET /api/v1/targets   targets with each vantage's latest probe results (JSON)
 *   GET /api/v1/series    ?name=METRIC[&target=T][&from=][&to=][&step=] points or steps (JSON)
 *   GET /metrics          Prometheus text format: current samples of every series
 *   GET /healthz          "ok" while the node runs
 *   GET /api/v1/cluster   this node's view of the cluster (JSON)
 *   GET /api/v1/agents    the agents the cluster pulls, as this node sees them (agentview.h)
 *   GET /api/v1/alerts, /api/v1/silences, /api/v1/notifications
 *                         the replicated alert ledger (node/alertview.h)
 *   POST /api/v1/silences               create a silence; DELETE /api/v1/silences/ID ends one
 *   POST /api/v1/alerts/FINGERPRINT/ack acknowledge an alert
 *   POST /api/v1/cluster/members        {"id": N, "raft": "a.b.c.d:port"}: add a voter
 *   DELETE /api/v1/cluster/members/ID   remove a member
 *                         (writes: leader only, with "Authorization: Bearer TOKEN" whose
 *                         SHA-256 is web.write_token_sha256; run on the loop thread)
 *
 * Every handler reads the store through its own LMDB read transaction and the node status
 * through lbw_status_read(); nothing here touches loop-thread state.
 */
#ifndef LBW_WEB_H
#define LBW_WEB_H

#include <stdint.h>

#include "node/buf.h"
#include "node/config.h"
#include "node/status.h"
#include "node/store.h"

struct lbw_alerter;
struct lbw_cluster;
struct lbw_loopcall;

struct lbw_web_ctx {
    struct lbw_store *store;
    const struct lbw_config *cfg;   /* read-only after load */
    struct lbw_status *status;
    struct lbw_cluster *cluster;    /* NULL when not clustered; touched on the loop thread only */
    struct lbw_loopcall *loopcall;  /* runs writes on the loop thread */
    struct lbw_alerter *alerter;    /* NULL when not clustered; loop thread only */
};

/* A response being built by a handler. */
struct lbw_reply {
    unsigned status;
    const char *content_type;
    struct lbw_buf body;
};

struct lbw_web;

/* Listens on cfg->web.listen. Returns 0, or -1 with err. ctx is copied. */
int lbw_web_start(struct lbw_web **out, const struct lbw_web_ctx *ctx, char *err, size_t errlen);
void lbw_web_stop(struct lbw_web *w);
uint16_t lbw_web_port(const struct lbw_web *w);

#endif
