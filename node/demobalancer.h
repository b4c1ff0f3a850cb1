/* demobalancer.h - the demo's balancer: a real HAProxy, when installed, terminating TLS on a
 * loopback port with a certificate from the demo targets' CA and balancing over the demo's
 * own HTTP servers:
 *   frontend www      bind 127.0.0.1:PORT ssl; /admin... denied (http-request deny), /api...
 *                     to backend api, the rest to web
 *   backend web       web1 (a demo HTTP server: UP) and web2 (a closed port: DOWN), HTTP
 *                     health checks every second
 *   backend api       api1 (a demo HTTP server: UP)
 * with a stats socket at level admin in the demo's temp dir, which the demo's nodes read
 * (`haproxy: {socket: ...}`). This module writes the files; the demo runs HAProxy
 * (node/demochild; master-worker, writing the pidfile the demo's agent watches) and drives
 * traffic through it (node/demotraffic).
 */
#ifndef LBW_DEMOBALANCER_H
#define LBW_DEMOBALANCER_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#define LBW_DEMO_HAPROXY "/usr/sbin/haproxy"
#define LBW_DEMO_BALANCER_NAME "balancer.demo.test"     /* what its certificate names */

struct lbw_demo_balancer {
    uint16_t port;              /* the TLS frontend, 127.0.0.1 */
    uint16_t web1, web2, api1;  /* the servers' ports (web2: nobody listens) */
    char cfg[300];              /* DIR/balancer/haproxy.cfg */
    char pem[300];              /* DIR/balancer/balancer.pem: certificate and key */
    char socket[300];           /* DIR/balancer/haproxy.sock */
    char pidfile[300];          /* DIR/balancer/haproxy.pid: the master's PID, once running */
};

/* 1 when HAProxy is installed where the demo runs it from. */
int lbw_demo_haproxy_available(void);

/* Makes DIR/balancer and writes the configuration and the frontend's certificate and key
 * (one PEM file, mode 0600) into it; b's ports must be set, the paths are filled in. Returns
 * 0, or -1 with a reason in err (a path too long for a unix socket among them). */
int lbw_demo_balancer_write(struct lbw_demo_balancer *b, const char *dir, X509 *cert,
                            EVP_PKEY *key, char *err, size_t errlen);

#endif
