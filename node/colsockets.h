/* colsockets.h - the agent's `sockets` collector kind: TCP on the balancer's own ports as the
 * kernel sees it (probes/sockdiag.h: connections by state, RTT summary, listen queues),
 * through NETLINK_SOCK_DIAG dumps filtered by port in the kernel:
 *
 *     collectors:
 *       sockets:
 *         ports: [443, 80]         # 1 to LBW_SOCKDIAG_PORTS_MAX distinct local ports
 *
 * Each round is one dump per address family; the kernel answers it at once (the receive
 * times out after 1 s should it not).
 *
 * The table in node/collector.c names these functions (collector.h describes each).
 */
#ifndef LBW_COLSOCKETS_H
#define LBW_COLSOCKETS_H

#include "node/collector.h"

void *lbw_colsockets_configure(struct ydoc *d, yaml_node_t *v, const char *path);
void lbw_colsockets_free_config(void *config);
int lbw_colsockets_open(const void *config, const struct lbw_collector_env *env,
                        struct lbw_collector *out, char *err, size_t errlen);

#endif
