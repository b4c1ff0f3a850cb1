/* loadavg.h - the host's load averages and boot time from /proc: the agent's built-in
 * collector (node/collector.h), kept minimal.
 *
 *   node_load1, node_load5, node_load15   the first three fields of /proc/loadavg
 *   node_boot_time_seconds                the emitter's time minus the first field of
 *                                         /proc/uptime, in whole seconds since the epoch
 *
 * The names follow the Prometheus node exporter. Files are read with plain blocking reads of
 * at most 256 bytes each (procfs files are generated in memory and never block). Parsing is
 * bounds-checked; the module does not log and depends on nothing but probes/sample.
 */
#ifndef LBW_LOADAVG_H
#define LBW_LOADAVG_H

#include <stddef.h>

#include "probes/sample.h"

#define LBW_LOADAVG_FILE_MAX 256

struct lbw_loadavg {
    double load[3];             /* 1, 5 and 15 minutes */
    double uptime_s;
};

/* Parses the text of /proc/loadavg ("0.52 0.58 0.59 1/234 5678"): the three load averages,
 * finite and >= 0. len bytes, need not be NUL-terminated. Returns 0, or -1. */
int lbw_loadavg_parse(const char *text, size_t len, double load[3]);

/* Parses the text of /proc/uptime ("12345.67 23456.78"): the first field, finite, >= 0.
 * Returns 0, or -1. */
int lbw_uptime_parse(const char *text, size_t len, double *uptime_s);

/* Reads proc_dir/loadavg and proc_dir/uptime (proc_dir is normally "/proc"). Returns 0, or
 * -1 with the reason in err. */
int lbw_loadavg_read(const char *proc_dir, struct lbw_loadavg *out, char *err, size_t errlen);

/* Emits the four samples through e. Returns 0, or -1 if one could not be emitted. */
int lbw_loadavg_emit(const struct lbw_loadavg *la, const struct lbw_emitter *e);

#endif
