/* coltraffic.h - the agent's `traffic` collector kind: live packet accounting on one interface
 * (probes/capture.h feeding probes/traffic.h: bytes and packets by direction and protocol and
 * by watched port, SYN/FIN/RST, handshake RTTs and outcomes, TLS ClientHello versions):
 *
 *     collectors:
 *       traffic:
 *         interface: eth0            # required; "any" for every interface
 *         ports: [443, 80]           # required: the watched (service) ports, 1 to 64
 *         local: [192.0.2.10, 2001:db8::/64]   # this host's addresses (default: the
 *                                    # interface's own at start); an address or a prefix
 *         flows: 65536               # handshakes tracked at once, 8 to 4194304 (about 64
 *                                    # bytes each; default 65536)
 *
 * The capture runs on the agent's loop all the time (libpcap's descriptor on a uv_poll_t);
 * each round emits the totals counted so far (lbw_traffic_emit, lbw_capture_emit). Capturing
 * needs CAP_NET_RAW: without it, or while the interface is missing or reading from it fails,
 * the collector still emits the totals and lbwatch_traffic_capture_up 0, reports the reason
 * as a failed collection, and tries to open the capture again at the next round - the agent
 * keeps running. The capture's packet and drop counters restart from 0 with each new
 * capture; the traffic counters never do.
 *
 * The table in node/collector.c names these functions (collector.h describes each).
 */
#ifndef LBW_COLTRAFFIC_H
#define LBW_COLTRAFFIC_H

#include "node/collector.h"

void *lbw_coltraffic_configure(struct ydoc *d, yaml_node_t *v, const char *path);
void lbw_coltraffic_free_config(void *config);
int lbw_coltraffic_open(const void *config, const struct lbw_collector_env *env,
                        struct lbw_collector *out, char *err, size_t errlen);

#endif
