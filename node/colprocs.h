/* colprocs.h - the agent's `processes` collector kind: is the balancer's process alive, and
 * how is it doing (probes/procwatch.h: up, count, CPU, memory, descriptors, start time,
 * restarts), one watch per entry:
 *
 *     collectors:
 *       processes:
 *         - name: haproxy                  # every process whose comm or argv[0] is haproxy
 *         - pidfile: /run/nginx.pid        # the PID in the file and its children ...
 *           name: nginx                    # ... if that PID is an nginx (optional check)
 *           label: nginx                   # the process label (default: name, else pidfile)
 *
 * 1 to LBW_PROCWATCH_MAX entries; each needs name or pidfile; labels must differ. Every round
 * is one scan of /proc (plain reads the kernel answers at once).
 *
 * The table in node/collector.c names these functions (collector.h describes each).
 */
#ifndef LBW_COLPROCS_H
#define LBW_COLPROCS_H

#include "node/collector.h"

void *lbw_colprocs_configure(struct ydoc *d, yaml_node_t *v, const char *path);
void lbw_colprocs_free_config(void *config);
int lbw_colprocs_open(const void *config, const struct lbw_collector_env *env,
                      struct lbw_collector *out, char *err, size_t errlen);

#endif
