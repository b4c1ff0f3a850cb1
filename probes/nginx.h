/* nginx.h - nginx's stub_status page: a strict parser for its text and the samples it becomes.
 *
 * ngx_http_stub_status_module writes exactly four lines (every line but the second ends in a
 * space before its \n):
 *
 *     Active connections: 2 \n
 *     server accepts handled requests\n
 *      49 49 68 \n
 *     Reading: 0 Writing: 1 Waiting: 1 \n
 *
 * The body comes from the network and is untrusted. The parser accepts those words and
 * numbers in that order and nothing else: words and numbers are separated by runs of spaces
 * or tabs (at least one where nginx writes one), blanks may start and end a line, lines end
 * in \n alone (the final \n may be missing), numbers are decimal digits that must fit in 64
 * bits. A carriage return, a NUL byte, a missing or extra word or number, or anything after
 * the fourth line is an error that names the line, the column and what was expected.
 *
 * The samples carry nginx-prometheus-exporter's metric names so dashboards and alert rules
 * written for it apply unchanged. Depends only on probes/sample.
 */
#ifndef LBW_PROBE_NGINX_H
#define LBW_PROBE_NGINX_H

#include <stddef.h>
#include <stdint.h>

#include "probes/sample.h"

struct lbw_nginx_stub {
    uint64_t active;    /* open client connections, including waiting ones (gauge) */
    uint64_t accepts;   /* accepted client connections since start (counter) */
    uint64_t handled;   /* handled connections: accepts minus those refused at a limit */
    uint64_t requests;  /* client requests since start (counter) */
    uint64_t reading;   /* connections reading a request header (gauge) */
    uint64_t writing;   /* connections nginx is writing a response to (gauge) */
    uint64_t waiting;   /* idle keep-alive connections (gauge) */
};

/* Parses a stub_status body of len bytes (need not be NUL-terminated) into *out. Returns 0,
 * or -1 with a message such as "line 3, column 5: expected the handled count, found 'x'" in
 * err[errlen] (truncated to fit; err may be NULL). *out is written only on success. */
int lbw_nginx_stub_parse(const char *text, size_t len, struct lbw_nginx_stub *out, char *err,
                         size_t errlen);

/* Emits the status as nginx-prometheus-exporter names it, with the emitter's base labels:
 *   nginx_connections_active, nginx_connections_reading, nginx_connections_writing,
 *   nginx_connections_waiting (gauges), nginx_connections_accepted,
 *   nginx_connections_handled, nginx_http_requests_total (counters).
 * Returns the samples that could not be built (a key over LBW_KEY_MAX - 1 bytes). */
size_t lbw_nginx_stub_emit(const struct lbw_nginx_stub *s, const struct lbw_emitter *e);

#endif
