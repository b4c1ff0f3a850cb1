/* scheduler.h - runs every configured probe of every target on its own cadence on the loop.
 *
 * Per target there is a TLS job, and optionally an HTTP job, a port-80 redirect job and a
 * scrape job per statistics endpoint of its balancer (`haproxy:`; probes/scrape.h, the kinds
 * are a table in scheduler.c keyed by the configuration's key). Each
 * job has a repeating uv timer (start times spread over the interval so targets don't probe
 * in lock-step); a slow or silent target only occupies its own job. Results are described as
 * samples through the target's emitter (base labels target, vantage, probe; the timestamp is
 * the probe's start) and handed to the sample function given at creation. Up/down transitions
 * are logged.
 */
#ifndef LBW_SCHEDULER_H
#define LBW_SCHEDULER_H

#include <stdint.h>
#include <uv.h>

#include "node/config.h"
#include "probes/sample.h"

struct lbw_scheduler;

struct lbw_scheduler_stats {
    uint64_t probes_run;
    uint64_t probes_failed;
    unsigned in_flight;
};

/* cfg must outlive the scheduler. Returns 0, or -1 with err. */
int lbw_scheduler_new(struct lbw_scheduler **out, uv_loop_t *loop, const struct lbw_config *cfg,
                      lbw_sample_fn fn, void *arg, char *err, size_t errlen);

void lbw_scheduler_stats(const struct lbw_scheduler *s, struct lbw_scheduler_stats *out);

/* Stops all timers, cancels probes in flight and frees once handles have closed. */
void lbw_scheduler_close(struct lbw_scheduler *s);

#endif
