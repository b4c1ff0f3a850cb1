/* status.h - the node's live status, shared between the loop thread (which owns and publishes
 * it) and the web threads (which read a copy). One mutex, copied structs, no pointers into
 * loop-owned memory.
 */
#ifndef LBW_STATUS_H
#define LBW_STATUS_H

#include <pthread.h>
#include <stdint.h>

#include "node/agentpull.h"
#include "node/alerter.h"
#include "node/fsm.h"
#include "node/loadgen.h"
#include "node/store.h"
#include "raft/cluster.h"

struct lbw_node_status {
    char name[64];
    uint64_t id;
    int64_t started_ms;
    uint64_t samples_in;        /* samples produced by this node's probes */
    uint64_t samples_stored;
    uint64_t samples_dropped;   /* not newer than their series' last sample */
    uint64_t store_errors;      /* appends/commits that failed */
    uint64_t probes_run;
    uint64_t probes_failed;
    unsigned probes_in_flight;
    struct lbw_store_stats store;
    int clustered;              /* the fields below are valid */
    struct lbw_cluster_status cluster;
    struct lbw_fsm_stats fsm;
    struct lbw_alerter_stats alerter;
    uint64_t alerts[4];         /* ledger alerts by enum lbw_alert_state */
    uint64_t intents_undelivered;   /* committed notification intents without a receipt */
    uint64_t receivers_failing;     /* receivers with LBW_NOTIFICATIONS_FAILING_AFTER failures */
    uint64_t batches_signed;
    size_t nagents;             /* the agents: section, as this node sees each agent */
    struct lbw_agent_status agents[LBW_AGENTS_MAX];
    int bench;                  /* the load generator runs: loadgen is valid */
    struct lbw_loadgen_stats loadgen;
};

/* Documents the loop renders for the web (JSON text, node/alertview.h). */
enum lbw_status_doc { LBW_DOC_ALERTS, LBW_DOC_SILENCES, LBW_DOC_NOTIFICATIONS, LBW_DOCS };

struct lbw_status {
    pthread_mutex_t mu;
    struct lbw_node_status cur;
    char *docs[LBW_DOCS];
};

void lbw_status_init(struct lbw_status *s);
void lbw_status_destroy(struct lbw_status *s);
void lbw_status_publish(struct lbw_status *s, const struct lbw_node_status *st);
void lbw_status_read(struct lbw_status *s, struct lbw_node_status *out);

/* Replaces a document, taking ownership of text (NULL: keep the old one). */
void lbw_status_set_doc(struct lbw_status *s, enum lbw_status_doc d, char *text);
/* A copy of a document (the caller frees it), or NULL when there is none. */
char *lbw_status_doc(struct lbw_status *s, enum lbw_status_doc d);

#endif
