/* config.h - the node's configuration, read from YAML (docs/configuration.md).
 *
 * lbw_config_load() parses and validates the whole file; any problem is reported as
 * "FILE:LINE:COL: reason" (1-based line and column of the offending node) and nothing is
 * half-loaded. Unknown keys, wrong types, missing required keys, bad durations, sizes and
 * addresses are all errors. Defaults are filled in for everything optional.
 */
#ifndef LBW_CONFIG_H
#define LBW_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "node/alertconf.h"
#include "node/grammar.h"
#include "node/log.h"
#include "node/ruleconf.h"
#include "node/statsconf.h"

struct lbw_target_http {
    int enabled;
    char *path;                 /* default "/" */
    long expect_status;         /* default 0 = any 2xx */
    char *expect_body;          /* NULL = no body check */
};

struct lbw_target {
    char *name;                 /* the target label; unique */
    char *address;              /* "host:port" as written in the config */
    char *host;                 /* from address: IPv4/IPv6 literal or DNS name */
    uint16_t port;              /* from address */
    char *server_name;          /* SNI / hostname check; default host */
    char *ca_file;              /* NULL = system CAs */
    uint64_t interval_ms;       /* default probes.interval */
    uint64_t timeout_ms;        /* default probes.timeout */
    int tls;                    /* TLS probe on (default 1) */
    struct lbw_target_http http;
    uint16_t redirect_port;     /* 0 = no port-80 redirect check */
    struct lbw_target_stats *stats; /* the balancer's statistics endpoints (statsconf.h) */
    size_t nstats;
};

struct lbw_cluster_peer_cfg {
    uint64_t id;                /* raft id, >= 1, unique */
    char *name;                 /* unique; the CN of its certificate */
    char *raft;                 /* "a.b.c.d:port" (libraft 0.15 takes IPv4 only) */
    char *web;                  /* base URL of its web server, e.g. http://10.0.0.11:8441 */
};

#define LBW_AGENTS_MAX 64       /* agents: entries at most */

struct lbw_agent_cfg {          /* an agent the cluster pulls (node/agentpull.h) */
    char *name;                 /* its certificate's lbwatch://agent/NAME; unique */
    char *address;              /* "host:port" of its mutual-TLS server, as written */
    char *host;                 /* from address: IPv4/IPv6 literal or DNS name */
    uint16_t port;
    uint64_t interval_ms;       /* how often its owner pulls it; default 10s */
    uint64_t timeout_ms;        /* one pull at most; default 10s */
};

struct lbw_config {
    char *path;                 /* the file it was loaded from */

    struct {
        char *name;             /* vantage label of this node's samples; required */
        uint64_t id;            /* raft id; default 1 */
        char *data_dir;         /* required */
        enum lbw_log_level log_level;   /* default info */
    } node;

    struct {
        char *listen;           /* "ip:port"; default 127.0.0.1:8440+id */
        char *listen_host;
        uint16_t listen_port;
        int has_write_token;    /* write_token_sha256 was given */
        uint8_t write_token_sha256[32]; /* SHA-256 of the bearer token writes need */
    } web;

    struct {                    /* this node's identity; required with cluster */
        char *ca;
        char *cert;
        char *key;
    } tls;

    struct {
        int enabled;            /* a cluster: section is present */
        char *raft;             /* this node's raft address (its peers entry, or cluster.raft) */
        char *raft_dir;         /* default data_dir/raft */
        int join;               /* start empty and wait to be added (default false) */
        uint64_t election_timeout_ms;   /* default 1s */
        uint64_t heartbeat_ms;          /* default 100ms; < election_timeout */
        uint64_t snapshot_threshold;    /* entries between snapshots; default 8192 */
        uint64_t snapshot_trailing;     /* entries kept after a snapshot; default 8192 */
        int plain_tcp;          /* transport: plain-tcp (no authentication, no encryption: the
                                 * benchmark baseline only); default mutual-tls */
        struct lbw_cluster_peer_cfg *peers;     /* the bootstrap configuration */
        size_t npeers;
    } cluster;

    struct {
        uint64_t interval_ms;   /* default 10s */
        uint64_t timeout_ms;    /* default 5s; must be < interval */
    } probes;

    struct {
        size_t max_size;        /* LMDB map size; default 1 GiB */
        int64_t retention_raw_ms;   /* default 2d */
        int64_t retention_1m_ms;    /* default 30d */
        int64_t retention_1h_ms;    /* default 400d */
    } store;

    struct {                    /* a benchmarking aid (node/loadgen.h); needs cluster */
        int enabled;            /* a bench: section is present */
        uint64_t series;        /* synthetic series; default 5000 */
        uint64_t samples_per_second;    /* 0 (default) = as fast as the cluster takes them */
    } bench;

    struct lbw_target *targets;
    size_t ntargets;

    struct lbw_agent_cfg *agents;   /* the same list on every node; needs cluster */
    size_t nagents;

    struct lbw_rules rules;     /* alert rules: the defaults left on, then rules: (ruleconf.h) */
    struct lbw_alerting alerting;   /* receivers, routes, inhibition (alertconf.h) */
};

/* Loads and validates path. On error returns -1 with "FILE:LINE:COL: reason" in err. */
int lbw_config_load(const char *path, struct lbw_config **out, char *err, size_t errlen);

/* Same, from a buffer; name is used as FILE in messages. */
int lbw_config_parse(const char *name, const char *text, size_t len, struct lbw_config **out,
                     char *err, size_t errlen);

void lbw_config_free(struct lbw_config *c);

#endif
