/* batcher.h - this node's samples into signed batches for the cluster.
 *
 * Samples from the probes accumulate in a batch builder (raft/batch.h); every 250 ms, or at
 * 32,768 samples or 2 MiB of payload, the batch is signed with this node's key under the
 * next origin sequence number and handed to the cluster (raft/cluster.h), which keeps it until
 * the state machine has applied it. Sequence numbers start at the wall clock in microseconds
 * (above anything an earlier run of this node used, without persisting a counter) and never
 * fall below what the state machine last applied from this node.
 */
#ifndef LBW_BATCHER_H
#define LBW_BATCHER_H

#include <stdint.h>
#include <uv.h>

#include "raft/batch.h"
#include "raft/cluster.h"

struct lbw_batcher;

struct lbw_batcher_stats {
    uint64_t samples_in;
    uint64_t batches;           /* signed and submitted */
    uint64_t rejected;          /* samples the builder refused (bad key, too big) */
    uint64_t dropped_batches;   /* the cluster had too much pending */
    uint64_t last_seq;
};

/* signer and cluster must outlive the batcher. min_seq: the state machine's last applied
 * sequence number from this node. */
int lbw_batcher_new(struct lbw_batcher **out, uv_loop_t *loop, const struct lbw_signer *signer,
                    struct lbw_cluster *cluster, uint64_t min_seq);

/* An lbw_sample_fn (probes/sample.h): arg is the struct lbw_batcher. */
void lbw_batcher_sample(void *arg, const char *key, int64_t ts_ms, double value);

/* Signs and submits what has accumulated. */
void lbw_batcher_flush(struct lbw_batcher *b);

void lbw_batcher_stats(const struct lbw_batcher *b, struct lbw_batcher_stats *out);

/* Flushes, stops the timer and frees once it has closed. */
void lbw_batcher_close(struct lbw_batcher *b);

#endif
