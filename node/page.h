/* page.h - the status page at "/": targets, each vantage's up/down state with the reason,
 * certificate days left, chain and hostname problems, TLS version and cipher, handshake
 * latency with a one-hour sparkline, HTTP status and the port-80 redirect check; cluster
 * health; (node/alertpage.h) active alerts, failing receivers and silences; and, when their
 * series exist, the balancers' own statistics (node/lbpage.h) and their hosts and traffic from
 * agents (node/hostpage.h). */
#ifndef LBW_PAGE_H
#define LBW_PAGE_H

#include "node/web.h"

void lbw_page_status(const struct lbw_web_ctx *ctx, struct lbw_reply *r);

#endif
