/* lbpage.h - the status page's Balancer section, for targets whose balancer's statistics
 * lbwatch reads:
 *   HAProxy  one table per target: the process (version, connections against maxconn), its
 *            frontends (status, current sessions against their limit, requests per second,
 *            5xx responses, denied requests per second), its backends (status, active and
 *            backup servers, 5xx ratio, sessions) each followed by its servers (UP, DOWN,
 *            MAINT, DRAIN or NOLB badge, health check result, sessions), and the certificates
 *            HAProxy has loaded (days left, as the page's certificate column colours them);
 *            a failed scrape shows its error instead
 *   nginx    one row per target with stub_status series: connections (active, reading,
 *            writing, waiting) and requests per second
 * Nothing is written when no target has such series.
 *
 * Rendered on a web thread from the view the rest of the page reads (node/view.h), plus a few
 * reads of the store for what is not a current value (the 5xx ratio, emitted only when enough
 * responses came; the nginx request rate). Each target is shown as one vantage saw it: this
 * node when it has data, else the first vantage that has. Proxy, server and certificate names
 * come from the balancer and are escaped like every other value.
 */
#ifndef LBW_LBPAGE_H
#define LBW_LBPAGE_H

#include <stdint.h>

#include "node/buf.h"
#include "node/store.h"
#include "node/view.h"

/* Appends the Balancer section for view v of store st to b; self is this node's vantage name,
 * now the time in ms since the epoch. Returns the number of balancers shown. */
size_t lbw_lbpage_render(struct lbw_buf *b, const struct lbw_view *v, struct lbw_store *st,
                         const char *self, int64_t now);

#endif
