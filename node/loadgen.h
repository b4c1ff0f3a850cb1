/* loadgen.h - the synthetic load generator: a benchmarking aid (the bench: config section).
 *
 * Emits samples of N synthetic series
 *   lbwatch_synthetic{series="<i>",target="bench",vantage="<this node's name>"}
 * into an lbw_sample_fn, which in a node is its normal sample path (the batcher, which signs
 * batches for the cluster), and only while it is active: the replica activates it while this
 * node is the ready leader, so the load measures replication and apply with no follower to
 * leader forwarding, whatever the transport.
 *
 * Series are visited in turn. One full round over them shares one timestamp: the wall clock
 * in ms, or the previous round's + 1 ms when rounds come faster than that, so each series'
 * timestamps strictly increase (also across pauses). Values are a small integer sawtooth.
 *
 * Pace: a 1 ms timer. A tick emits nothing while the cluster is full: its backlog (bytes
 * submitted and not yet applied here) is at max_backlog, or its slowest live follower lags
 * max_lag entries behind (a follower far behind would apply them all in one go, stalling its
 * loop past an election timeout). Otherwise, with a rate, a tick emits what the rate owes
 * since the generator became active (after a stall, at most 100 ms worth: it is not made up
 * in a burst), and with rate 0 (as fast as the cluster takes them) LBW_LOADGEN_TICK_MAX
 * samples; never more than that in one tick. So queues never grow past those bounds plus a
 * tick. Keys are built once at start: emitting a sample allocates nothing.
 * Loop thread only.
 */
#ifndef LBW_LOADGEN_H
#define LBW_LOADGEN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "probes/sample.h"

#define LBW_LOADGEN_TICK_MAX 8192       /* samples one tick may emit */
#define LBW_LOADGEN_MAX_SERIES 1000000

struct lbw_loadgen;

struct lbw_loadgen_config {
    uv_loop_t *loop;
    const char *vantage;        /* this node's name */
    size_t series;              /* 1..LBW_LOADGEN_MAX_SERIES */
    uint64_t samples_per_second;    /* 0 = as fast as the backlog allows */
    size_t max_backlog;         /* bytes; 0 = 32 MiB */
    uint64_t max_lag;           /* entries; 0 = 32 */
    lbw_sample_fn sink;
    void *sink_arg;
    /* The cluster's backlog: bytes submitted and not yet applied here, and how many entries
     * the slowest live follower lags behind (both called with backlog_arg). */
    size_t (*backlog)(void *arg);
    uint64_t (*lag)(void *arg);
    void *backlog_arg;
};

/* Builds the keys and the timer (inactive). Returns 0, or -1 with err. */
int lbw_loadgen_new(struct lbw_loadgen **out, const struct lbw_loadgen_config *cfg, char *err,
                    size_t errlen);

/* Starts (1) or stops (0) emitting. */
void lbw_loadgen_set_active(struct lbw_loadgen *g, int active);

struct lbw_loadgen_stats {
    int active;
    uint64_t samples;           /* emitted since start */
    uint64_t backlog_waits;     /* ticks that emitted nothing because the cluster was full */
};
void lbw_loadgen_stats(const struct lbw_loadgen *g, struct lbw_loadgen_stats *out);

/* Stops and frees once the timer has closed. Safe on NULL. */
void lbw_loadgen_close(struct lbw_loadgen *g);

#endif
