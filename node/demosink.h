/* demosink.h - the demo's webhook receiver: an HTTP server on 127.0.0.1 that accepts
 * Alertmanager-style webhook POSTs from the cluster and prints one line per notification
 * (status, alert names and targets, idempotency key, whether the key was seen before), so
 * `lbwatch demo` shows paging without any outside service. libmicrohttpd, its own thread. */
#ifndef LBW_DEMOSINK_H
#define LBW_DEMOSINK_H

#include <stdint.h>
#include <stdio.h>

struct lbw_demo_sink;

/* Listens on 127.0.0.1:port (0 = any free port); lines go to out. Returns NULL on failure. */
struct lbw_demo_sink *lbw_demo_sink_start(uint16_t port, FILE *out);
uint16_t lbw_demo_sink_port(const struct lbw_demo_sink *s);
/* Notifications received, and how many repeated an idempotency key already seen. */
void lbw_demo_sink_counts(struct lbw_demo_sink *s, unsigned *received, unsigned *repeats);
void lbw_demo_sink_stop(struct lbw_demo_sink *s);

#endif
