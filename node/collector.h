/* collector.h - what an agent runs every interval, and the registry of collector kinds that
 * the `collectors:` section of agent.yaml may name (node/agentconf.h).
 *
 * A collector reads something about the host and describes it as samples through the emitter
 * the agent gives it (probes/sample.h), whose base labels are the agent's (vantage=<agent
 * name>, probe=<collector name>) and whose timestamp is the start of the round. A kind knows
 * how to read its own section of the config and how to make a collector from it:
 *
 *     collectors:
 *       host: {}                          # a kind's name, then its own settings
 *       processes: [{name: haproxy}]
 *
 * Adding a kind is one entry in the table in collector.c: a name, whether it runs when
 * agent.yaml has no `collectors:` section, a configure function (reads the section through
 * yamldoc's readers, so errors are FILE:LINE:COL and unknown keys are caught), and an open
 * function that makes the running collector at start.
 *
 * Built in (each in its own file; settings in docs/configuration.md):
 *   host       node_exporter's host metrics (probes/hoststat.h over node/colhost.h); the only
 *              kind on by default
 *   processes  process watches by name or pidfile (probes/procwatch.h over node/colprocs.h)
 *   sockets    TCP on the balancer's ports through sock_diag (probes/sockdiag.h over
 *              node/colsockets.h)
 *   traffic    live packet accounting on an interface (probes/capture.h over
 *              node/coltraffic.h)
 *
 * Collectors run on the agent's loop thread, one after another at the start of a round, and
 * must not block: /proc reads and sock_diag dumps are answered by the kernel at once; statvfs
 * of a network filesystem could block, so the host kind leaves those out by default
 * (node/colhost.h); anything that waits for the outside world belongs on the loop as
 * non-blocking I/O, as the traffic kind's capture does.
 */
#ifndef LBW_COLLECTOR_H
#define LBW_COLLECTOR_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "node/yamldoc.h"
#include "probes/sample.h"

struct lbw_collector {
    const char *name;           /* its kind's name (static) */
    /* One round: emits this round's samples through e. Returns 0, or -1 with a reason in err
     * (samples emitted before the failure are kept). */
    int (*collect)(void *state, const struct lbw_emitter *e, char *err, size_t errlen);
    /* Frees state. Handles the collector has on the loop are closed, and freed once the loop
     * has run again. */
    void (*close)(void *state);
    void *state;
};

/* What the agent lends its collectors. */
struct lbw_collector_env {
    uv_loop_t *loop;            /* the agent's loop: a collector may keep handles on it */
};

struct lbw_collector_kind {
    const char *name;
    int by_default;             /* collected when agent.yaml has no `collectors:` section */
    /* Reads the kind's section, node v at path ("collectors.<name>"), into a new config: v
     * as written, or NULL when agent.yaml has no `collectors:` section (kinds on by default);
     * an empty value ("host:") asks for the defaults (lbw_collector_empty). Returns the
     * config, or NULL with the error recorded in d. */
    void *(*configure)(struct ydoc *d, yaml_node_t *v, const char *path);
    void (*free_config)(void *config);
    /* Makes a running collector from a config. Returns 0, or -1 with err (only for what
     * cannot get better by itself: a collector whose source is missing for now reports that
     * from collect, round after round, and the agent keeps running). */
    int (*open)(const void *config, const struct lbw_collector_env *env,
                struct lbw_collector *out, char *err, size_t errlen);
};

/* The kinds built in; *n gets their number. */
const struct lbw_collector_kind *lbw_collector_kinds(size_t *n);

/* The kind called name, or NULL. */
const struct lbw_collector_kind *lbw_collector_kind(const char *name);

/* Closes a collector made by a kind's open (nothing if it was never opened). Close before the
 * agent's loop runs for the last time, so that collectors with handles on it are freed. */
void lbw_collector_close(struct lbw_collector *c);

/* For kinds: 1 when a section's node is absent (NULL) or an empty value, else 0. */
int lbw_collector_empty(const yaml_node_t *v);

/* For kinds: reads the sequence of distinct ports under key of m (1 to max of them) into
 * ports. Returns how many, or 0 when it is absent or after an error (recorded in m's
 * document: not a port, listed twice, none, too many). */
size_t lbw_collector_ports(struct ymap *m, const char *key, int flags, uint16_t *ports,
                           size_t max);

#endif
