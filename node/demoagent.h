/* demoagent.h - the demo's agent: an `lbwatch agent` named lb1 beside the demo's HAProxy, as
 * on a real load-balancer host, pulled by the demo's nodes. It listens for their mutual-TLS
 * pulls on a loopback port and runs every collector kind:
 *   host       the host's CPU, load, memory, file handles, ...
 *   processes  HAProxy, by the pidfile it writes (its master; the workers count with it)
 *   sockets    TCP on the balancer's frontend port
 *   traffic    packets on lo to and from the frontend port (without CAP_NET_RAW it reports
 *              lbwatch_traffic_capture_up 0 and the agent goes on)
 * This module issues its certificate from the demo's cluster PKI and writes its agent.yaml;
 * the demo runs it (node/demochild) and lists it in its nodes' `agents:`.
 */
#ifndef LBW_DEMOAGENT_H
#define LBW_DEMOAGENT_H

#include <stddef.h>
#include <stdint.h>

#define LBW_DEMO_AGENT_NAME "lb1"          /* its certificate's name: the vantage label */
#define LBW_DEMO_AGENT_INTERVAL "2s"        /* its rounds, and how often the nodes pull it */

struct lbw_demo_agent {
    uint16_t port;              /* its pull server, 127.0.0.1 */
    uint16_t watched;           /* the balancer's frontend port: sockets and traffic */
    char pidfile[300];          /* HAProxy's pidfile, watched */
    char cfg[300];              /* DIR/agent.yaml */
};

/* Issues DIR/pki/lb1.crt and .key (an agent certificate from the CA in DIR/pki) and writes
 * DIR/agent.yaml; a's port, watched and pidfile must be set, cfg is filled in. Returns 0, or
 * -1 with a reason in err. */
int lbw_demo_agent_write(struct lbw_demo_agent *a, const char *dir, char *err, size_t errlen);

#endif
