/* collector.h - what an agent runs every interval, and the registry of collector kinds that
 * the `collectors:` section of agent.yaml may name (node/agentconf.h).
 *
 * A collector reads something about the host and describes it as samples through the emitter
 * the agent gives it (probes/sample.h), whose base labels are the agent's (vantage=<agent
 * name>, probe=<collector name>) and whose timestamp is the start of the round. A kind knows
 * how to read its own section of the config and how to make a collector from it:
 *
 *     collectors:
 *       loadavg: {}              # a kind's name, then its own settings (or nothing)
 *
 * Adding a kind is one entry in the table in collector.c: a name, a configure function
 * (reads the section through a yamldoc map reader, so errors are FILE:LINE:COL and unknown
 * keys are caught), and an open function that makes the running collector at start.
 *
 * Built in:
 *   loadavg   node_load1/5/15 and node_boot_time_seconds from /proc (probes/loadavg.h).
 *             Settings: proc_dir (default /proc).
 *
 * Collectors run on the agent's loop thread and must not block for long (procfs reads are
 * fine; anything slower belongs on the loop as non-blocking I/O).
 */
#ifndef LBW_COLLECTOR_H
#define LBW_COLLECTOR_H

#include <stddef.h>

#include "node/yamldoc.h"
#include "probes/sample.h"

struct lbw_collector {
    const char *name;           /* its kind's name (static) */
    /* One round: emits this round's samples through e. Returns 0, or -1 with a reason in err
     * (samples emitted before the failure are kept). */
    int (*collect)(void *state, const struct lbw_emitter *e, char *err, size_t errlen);
    void (*close)(void *state);  /* frees state */
    void *state;
};

struct lbw_collector_kind {
    const char *name;
    /* Reads the kind's section through m (a reader with no keys when the section is empty)
     * into a new config. Returns it, or NULL with the error recorded in m's document. */
    void *(*configure)(struct ymap *m);
    void (*free_config)(void *config);
    /* Makes a running collector from a config. Returns 0, or -1 with err. */
    int (*open)(const void *config, struct lbw_collector *out, char *err, size_t errlen);
};

/* The kinds built in; *n gets their number. */
const struct lbw_collector_kind *lbw_collector_kinds(size_t *n);

/* Closes a collector made by a kind's open (nothing if it was never opened). */
void lbw_collector_close(struct lbw_collector *c);

#endif
