/* agentconf.h - the agent's configuration, agent.yaml (docs/configuration.md):
 *
 *     agent:
 *       listen: 0.0.0.0:8450     # required: its mutual-TLS server (IP:port)
 *       interval: 10s            # a round of collectors, and a signed batch, every interval
 *       max_connections: 8       # pulls served at once
 *       log_level: info
 *     buffer:                    # the newest batches kept for the nodes to pull
 *       batches: 360             # at most this many ...
 *       size: 16MiB              # ... and this many bytes
 *     tls:                       # required
 *       ca: ca.crt               # the cluster CA
 *       cert: lb1.crt            # an agent certificate (lbwatch pki issue --agent --name lb1)
 *       key: lb1.key
 *     collectors:                # each kind reads its own section (node/collector.h);
 *       host: {}                 # without this section: host with its defaults
 *       processes: [{name: haproxy}]
 *       sockets: {ports: [443]}
 *       traffic: {interface: eth0, ports: [443]}
 *
 * The agent's name is the one in its certificate (lbwatch://agent/NAME); loading checks that
 * the certificate and key load, match and carry an agent identity, so `--check-config` catches
 * a node certificate given by mistake. Every error is "FILE:LINE:COL: PATH: reason", nothing
 * is half-loaded, unknown keys are errors.
 */
#ifndef LBW_AGENTCONF_H
#define LBW_AGENTCONF_H

#include <stddef.h>
#include <stdint.h>

#include "node/collector.h"
#include "node/log.h"
#include "raft/identity.h"

struct lbw_agentconf_collector {
    const struct lbw_collector_kind *kind;
    void *config;               /* the kind's, freed with kind->free_config */
};

struct lbw_agentconf {
    char *path;
    char name[LBW_NAME_MAX];    /* from the certificate */
    char *listen;               /* "ip:port" as written */
    char *listen_host;
    uint16_t listen_port;
    uint64_t interval_ms;       /* default 10 s, at least 100 ms */
    uint64_t max_connections;   /* default 8 */
    enum lbw_log_level log_level;
    uint64_t buffer_batches;    /* default 360 */
    uint64_t buffer_bytes;      /* default 16 MiB */
    struct {
        char *ca, *cert, *key;
    } tls;
    struct lbw_agentconf_collector *collectors;
    size_t ncollectors;
};

/* Loads and validates path. Returns 0, or -1 with "FILE:LINE:COL: reason" in err. */
int lbw_agentconf_load(const char *path, struct lbw_agentconf **out, char *err, size_t errlen);

/* The same from a buffer; name is FILE in messages and its directory the base of relative
 * paths. */
int lbw_agentconf_parse(const char *name, const char *text, size_t len,
                        struct lbw_agentconf **out, char *err, size_t errlen);

void lbw_agentconf_free(struct lbw_agentconf *c);

#endif
