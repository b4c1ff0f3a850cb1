/* haproxyderive.h - gauges derived from HAProxy's statistics, so that alert rules and the status
 * page read one series instead of doing arithmetic across several (the rule language has
 * none): ratios of two counters' increases, rates, and the connection limit's use.
 *
 * From one `show info`:
 *   lbwatch_haproxy_connections_used_ratio       CurrConns / Maxconn (Maxconn > 0)
 * From the increase of counters since an earlier scrape of the same source, remembered in a
 * struct lbw_haproxy_memory that the caller keeps per source:
 *   lbwatch_haproxy_backend_http_5xx_ratio{proxy}
 *       the backend's hrsp_5xx increase over the increase of all its responses (hrsp_1xx ..
 *       hrsp_5xx and hrsp_other). A backend with few requests would swing between 0 and 1,
 *       so the ratio is only emitted once at least LBW_HAPROXY_RATIO_MIN_RESPONSES responses
 *       have accumulated since the last ratio; until then the counters go on accumulating
 *       from the same starting point, for at most LBW_HAPROXY_RATIO_SPAN_MS, after which it
 *       starts again from the current counters (a ratio stays about recent traffic).
 *   lbwatch_haproxy_frontend_requests_denied_rate{proxy}
 *       the frontend's dreq (requests denied by http-request/tcp-request rules and ACLs)
 *       increase per second since the previous scrape.
 * A counter lower than remembered (HAProxy restarted or reloaded, `clear counters`), or a
 * scrape time not after the remembered one, starts the proxy again from the current values
 * and emits nothing for it this time. Proxies without the columns (a TCP-mode backend has no
 * hrsp_*) are skipped.
 *
 * Memory is fixed: at most LBW_HAPROXY_MEMORY_PROXIES frontends and backends per source are
 * remembered (further ones get no derived gauges); a proxy missing from a scrape is
 * forgotten. The struct holds no pointers, so a zeroed one is a fresh start and nothing needs
 * freeing. Depends on probes/haproxy and probes/sample only.
 */
#ifndef LBW_HAPROXYDERIVE_H
#define LBW_HAPROXYDERIVE_H

#include <stddef.h>
#include <stdint.h>

#include "probes/haproxy.h"

#define LBW_HAPROXY_MEMORY_PROXIES 512      /* frontends and backends remembered per source */
#define LBW_HAPROXY_RATIO_MIN_RESPONSES 20  /* responses a 5xx ratio needs */
#define LBW_HAPROXY_RATIO_SPAN_MS 600000    /* longest a ratio accumulates (10 min) */

/* The counters of one frontend or backend at a remembered scrape. */
struct lbw_haproxy_counters {
    unsigned char used;
    unsigned char kind;         /* enum lbw_haproxy_kind: frontend or backend */
    unsigned char seen;         /* in the scrape being derived */
    char proxy[LBW_HAPROXY_NAME_MAX + 1];
    int64_t ts_ms;              /* when a, b were read */
    double a, b;                /* backend: hrsp_5xx, all responses; frontend: dreq */
};

struct lbw_haproxy_memory {
    struct lbw_haproxy_counters p[LBW_HAPROXY_MEMORY_PROXIES];
};

/* Emits the derived gauges of one scrape taken at e->ts_ms (stats, and info when the source
 * gave one; NULL over the stats page) and remembers its counters in m. Returns the samples
 * that could not be built. */
size_t lbw_haproxy_derive(struct lbw_haproxy_memory *m, const struct lbw_haproxy_stats *stats,
                          const struct lbw_haproxy_info *info, const struct lbw_emitter *e);

#endif
