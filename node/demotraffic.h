/* demotraffic.h - a little HTTPS traffic through the demo's balancer, so its rates and
 * counters move: every interval one GET, one at a time, of https://NAME:PORT/PATH resolved
 * to 127.0.0.1 and verified against the demo targets' CA, the path cycling over
 *     / (six in ten), /api/items (three in ten), /admin (one in ten: the balancer denies it)
 * on the demo's loop through libcurl (probes/curluv). Failures are counted and otherwise
 * ignored: the balancer may not be up yet, or may be gone (lbwatch will say so).
 */
#ifndef LBW_DEMOTRAFFIC_H
#define LBW_DEMOTRAFFIC_H

#include <stdint.h>
#include <uv.h>

struct lbw_demo_traffic;

/* Starts sending. The strings are copied. Returns 0, or -1 with a reason in err. */
int lbw_demo_traffic_start(struct lbw_demo_traffic **out, uv_loop_t *loop, const char *name,
                           uint16_t port, const char *ca_file, uint64_t interval_ms, char *err,
                           size_t errlen);

/* Requests answered (any HTTP status) and failed (no answer) so far. */
uint64_t lbw_demo_traffic_answered(const struct lbw_demo_traffic *t);
uint64_t lbw_demo_traffic_failed(const struct lbw_demo_traffic *t);

/* Stops sending, cancels a request in flight and frees once its handles have closed (run the
 * loop afterwards). NULL is ignored. */
void lbw_demo_traffic_stop(struct lbw_demo_traffic *t);

#endif
