/* hostpage.h - the status page's sections about the balancers' hosts, from what agents send
 * (their samples carry vantage=<agent>):
 *   Hosts    one row per agent with host or process series: CPU busy, load (1 min), memory
 *            available, file handles used, TCP connections established, listen drops per
 *            second (over 5 minutes), and each watched process's UP/DOWN badge and restarts
 *   Traffic  one row per agent that captures traffic: bytes per second in and out by
 *            protocol, SYN, FIN and RST segments per second (all over 5 minutes), and the
 *            median TCP handshake round trip of those 5 minutes by side, from the histogram's
 *            increase (interpolated within its bucket, as Prometheus' histogram_quantile)
 * Nothing is written for a section without such series.
 *
 * Rendered on a web thread from the page's view (node/view.h); rates and the median read the
 * counters' recent samples from the store. Every value shown is escaped.
 */
#ifndef LBW_HOSTPAGE_H
#define LBW_HOSTPAGE_H

#include <stddef.h>
#include <stdint.h>

#include "node/buf.h"
#include "node/store.h"
#include "node/view.h"

/* Appends the Hosts section. Returns the number of hosts shown. */
size_t lbw_hostpage_hosts(struct lbw_buf *b, const struct lbw_view *v, struct lbw_store *st,
                          int64_t now);

/* Appends the Traffic section. Returns the number of vantages shown. */
size_t lbw_hostpage_traffic(struct lbw_buf *b, const struct lbw_view *v, struct lbw_store *st,
                            int64_t now);

/* The q-quantile (0..1) of a cumulative histogram: le[i] the buckets' upper bounds in
 * increasing order (the last may be +Inf), count[i] the observations at or below each. Linear
 * within the bucket; the last finite bound when the quantile falls in +Inf. Returns NaN when
 * there are no observations. */
double lbw_hostpage_quantile(double q, const double *le, const double *count, size_t n);

#endif
