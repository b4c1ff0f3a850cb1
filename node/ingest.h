/* ingest.h - where this node's samples go: appended to the store as they arrive and committed
 * on a short timer (250 ms) or every 4096 samples, so one LMDB commit carries many probes'
 * results and a crash loses at most the last commit interval.
 */
#ifndef LBW_INGEST_H
#define LBW_INGEST_H

#include <stdint.h>
#include <uv.h>

#include "node/store.h"

struct lbw_ingest_stats {
    uint64_t samples_in;
    uint64_t stored;
    uint64_t dropped;
    uint64_t errors;
};

struct lbw_ingest;

int lbw_ingest_new(struct lbw_ingest **out, uv_loop_t *loop, struct lbw_store *store);

/* An lbw_sample_fn (probes/sample.h): arg is the struct lbw_ingest. */
void lbw_ingest_sample(void *arg, const char *key, int64_t ts_ms, double value);

/* Commits whatever is pending now. */
void lbw_ingest_flush(struct lbw_ingest *in);

void lbw_ingest_stats(const struct lbw_ingest *in, struct lbw_ingest_stats *out);

/* Flushes, stops the timer and frees once it has closed (run the loop afterwards). */
void lbw_ingest_close(struct lbw_ingest *in);

#endif
