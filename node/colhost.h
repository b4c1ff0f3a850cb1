/* colhost.h - the agent's `host` collector kind: node_exporter's host metrics from /proc
 * (probes/hoststat.h: CPU, load, memory, disks, filesystems, file descriptors, netstat,
 * sockstat, listening sockets). On by default.
 *
 *     collectors:
 *       host:
 *         proc_dir: /proc          # default /proc
 *         filesystems: local       # local (default), all or none
 *
 * filesystems says which mounts are measured with statvfs: `local` leaves out network and
 * cluster filesystems (nfs, cifs, ceph, ...: lbw_hoststat_fs_network), whose statvfs waits
 * for a server - on the agent's loop that would stall every collector and the pull server
 * with it; `all` measures them too (node_exporter's choice; only where such a server cannot
 * hang); `none` skips filesystems. The other sources are /proc files and one sock_diag dump
 * of the listening sockets, which the kernel answers at once.
 *
 * The table in node/collector.c names these functions (collector.h describes each).
 */
#ifndef LBW_COLHOST_H
#define LBW_COLHOST_H

#include "node/collector.h"

void *lbw_colhost_configure(struct ydoc *d, yaml_node_t *v, const char *path);
void lbw_colhost_free_config(void *config);
int lbw_colhost_open(const void *config, const struct lbw_collector_env *env,
                     struct lbw_collector *out, char *err, size_t errlen);

#endif
