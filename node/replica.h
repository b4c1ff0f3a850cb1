/* replica.h - a clustered node's replication machinery, wired together: this node's key and
 * the cluster CA (raft/batch.h signer and verifier), the state machine over the store
 * (node/fsm.h), the raft cluster (raft/cluster.h) and the batcher that turns this node's
 * samples into signed entries (node/batcher.h), and, with a bench: section, the synthetic
 * load generator (node/loadgen.h) that feeds the batcher while this node is the ready leader.
 * It logs what they report. Loop thread only. */
#ifndef LBW_REPLICA_H
#define LBW_REPLICA_H

#include <uv.h>

#include "node/config.h"
#include "node/status.h"
#include "node/store.h"
#include "raft/cluster.h"

struct lbw_replica;

/* Starts everything (libraft restores its snapshot and loads its log here). cfg and store
 * must outlive the replica. Returns 0, or -1 with err. */
int lbw_replica_start(struct lbw_replica **out, uv_loop_t *loop, const struct lbw_config *cfg,
                      struct lbw_store *store, char *err, size_t errlen);

/* An lbw_sample_fn: where this node's probes send their samples. */
void lbw_replica_sample(void *arg, const char *key, int64_t ts_ms, double value);

struct lbw_cluster *lbw_replica_cluster(struct lbw_replica *r);

/* The leader's alerting loop (node/alerter.h) and the replicated ledger it works on. */
struct lbw_alerter *lbw_replica_alerter(struct lbw_replica *r);
const struct lbw_ledger *lbw_replica_ledger(struct lbw_replica *r);

/* Whether the ledger changed since the last call (for publishing it). */
int lbw_replica_take_ledger_change(struct lbw_replica *r);

/* cb runs on the loop whenever this node becomes the ready leader or stops leading. */
void lbw_replica_on_leader(struct lbw_replica *r, void (*cb)(void *arg), void *arg);

/* Fills the cluster, state machine and sample counters of a status snapshot. */
void lbw_replica_status(const struct lbw_replica *r, struct lbw_node_status *st);

/* Submits the last batch, stops libraft, commits the store; cb runs when all is closed. The
 * replica is freed after cb returns. */
void lbw_replica_close(struct lbw_replica *r, void (*cb)(void *arg), void *arg);

#endif
