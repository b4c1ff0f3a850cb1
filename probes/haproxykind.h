/* haproxykind.h - the HAProxy scrape (probes/scrape.h): what lbwatch asks HAProxy and how the
 * answers become samples (probes/haproxy.h has the parsers and the metric mapping).
 *
 * Over the stats socket (a unix socket or TCP address, `stats socket ... level admin` or
 * `level operator`), one command per connection, each answered until HAProxy closes:
 *   show info           the process (haproxy_process_*)
 *   show stat           frontends, backends, servers
 *   show ssl cert       the certificate files, when options->certificates (the default)
 *   show ssl cert FILE  each file's dates (lbwatch_haproxy_ssl_cert_*), at most
 *                       LBW_HAPROXY_CERTS_MAX files per run
 * Over HTTP, one GET of the stats page's CSV export (`stats uri /stats` gives /stats;csv):
 * the same frontends, backends and servers, without the process or certificates.
 * Every answer must parse, or the run fails with the command and the parser's reason; but a
 * certificate command that finds the certificates locked by another CLI session ("Can't
 * show!", as when several nodes read one socket at once) is sent again, at most three times
 * in all, and then left out of this run: the list (no certificates this time) or one file's
 * dates.
 * The kind remembers each source's counters from run to run (struct lbw_haproxy_memory) and
 * derives the gauges of probes/haproxyderive.h from them.
 */
#ifndef LBW_HAPROXYKIND_H
#define LBW_HAPROXYKIND_H

#include "probes/scrape.h"

#define LBW_HAPROXY_ANSWER_MAX (16u << 20)  /* the longest answer to one command */

/* The kind's options (lbw_scrape_source.options); NULL means the defaults. */
struct lbw_haproxy_options {
    int certificates;           /* stats socket: list certificates and read their dates */
};

extern const struct lbw_scrape_kind lbw_haproxy_kind;

#endif
