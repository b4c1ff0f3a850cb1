/* statsconf.h - the statistics endpoints of a target's balancer in the configuration: the
 * `haproxy:`, `nginx:` and `prometheus:` keys of a `targets:` item (docs/configuration.md),
 * read into struct lbw_target_stats, one per kind present (a target may have all three).
 *
 * Every kind takes its source as exactly one of
 *   url:      http:// or https:// (with optional username and password_file for basic
 *             authentication, and ca_file for https)
 *   socket:   a unix stream socket's path (relative to the config file's directory)
 *   address:  a TCP stats socket, IP:port
 * as far as the kind allows (nginx and prometheus: url only), plus its own options:
 *   haproxy:     certificates (stats socket only)
 *   prometheus:  allow, required: 1 to LBW_STATSCONF_ALLOW_MAX metric names or prefixes
 *                ending in '*', none of which may match lbwatch's own names (probe_*,
 *                lbwatch_*)
 * Errors are reported through the YAML document as FILE:LINE:COL like the rest of the
 * configuration, an allow pattern's at the pattern.
 */
#ifndef LBW_STATSCONF_H
#define LBW_STATSCONF_H

#include <stddef.h>
#include <stdint.h>

#include "node/yamldoc.h"
#include "probes/haproxykind.h"
#include "probes/promkind.h"

#define LBW_STATSCONF_ALLOW_MAX 256  /* patterns in one prometheus allow-list */

enum lbw_stats_via { LBW_STATS_URL, LBW_STATS_SOCKET, LBW_STATS_ADDRESS };

struct lbw_target_stats {
    const char *kind;           /* the key it was read from: "haproxy", "nginx",
                                   "prometheus"; static */
    enum lbw_stats_via via;
    char *url;                  /* LBW_STATS_URL */
    char *username;             /* basic authentication: both or neither; NULL */
    char *password;             /* from password_file, without its final newline */
    char *ca_file;              /* https: trust this CA bundle alone; NULL = system CAs */
    char *socket;               /* LBW_STATS_SOCKET: resolved path */
    char *address;              /* LBW_STATS_ADDRESS: as written */
    char *ip;                   /* LBW_STATS_ADDRESS: the IP address */
    uint16_t port;
    struct lbw_haproxy_options haproxy;         /* kind "haproxy" */
    struct lbw_prometheus_options prometheus;   /* kind "prometheus": owns its allow-list */
};

/* Reads every statistics kind present in the target mapping m into a newly allocated array
 * (*out, *n; NULL and 0 when there is none). Errors are recorded in m's document. */
void lbw_statsconf_read(struct ymap *m, struct lbw_target_stats **out, size_t *n);

void lbw_statsconf_free(struct lbw_target_stats *s, size_t n);

#endif
