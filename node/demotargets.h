/* demotargets.h - the demo's built-in targets, served by lbwatch itself on loopback:
 * TLS servers (via probes/tlsio) that answer any request with a small HTTP 200, plain HTTP
 * servers that do the same (behind the demo's HAProxy), and a plain HTTP server that
 * redirects every request to an https URL. They exist so `lbwatch demo`
 * needs nothing installed; they are not hardened servers (one request per connection, the
 * request must fit in 8 KiB). */
#ifndef LBW_DEMOTARGETS_H
#define LBW_DEMOTARGETS_H

#include <stdint.h>
#include <openssl/ssl.h>
#include <uv.h>

struct lbw_demo_server;

/* Serves TLS with ctx on 127.0.0.1:port (0 = any free port). The response body is copied. */
int lbw_demo_tls_server(struct lbw_demo_server **out, uv_loop_t *loop, SSL_CTX *ctx,
                        uint16_t port, const char *body);

/* Serves plain HTTP on 127.0.0.1:port (0 = any free port) answering every request with 200
 * and body (copied): the demo balancer's backend servers. */
int lbw_demo_http_server(struct lbw_demo_server **out, uv_loop_t *loop, uint16_t port,
                         const char *body);

/* Serves plain HTTP on 127.0.0.1:port answering 301 to location. */
int lbw_demo_redirect_server(struct lbw_demo_server **out, uv_loop_t *loop, uint16_t port,
                             const char *location);

uint16_t lbw_demo_server_port(const struct lbw_demo_server *s);

/* Stops listening, drops open connections and frees once every handle has closed. */
void lbw_demo_server_close(struct lbw_demo_server *s);

#endif
