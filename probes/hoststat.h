/* hoststat.h - host statistics from /proc and statvfs, under node_exporter's metric names, for
 * `lbwatch agent` on a load balancer.
 *
 * Each source file has a parse function over a buffer (fixtures, fuzzing) that emits what it
 * finds through an emitter; lbw_hoststat_collect streams the live files through one fixed
 * buffer into the same parsers. Only '\n'-terminated lines count, so a truncated file loses
 * its last line rather than yielding a half-written number; a number that does not parse, or
 * overflows 64 bits, is skipped, not guessed. Every parse function returns the number of
 * samples it emitted.
 *
 * Metrics (all carry the emitter's base labels):
 *   /proc/stat         node_cpu_seconds_total{cpu,mode}  (per CPU; user nice system idle iowait
 *                      irq softirq steal; ticks / USER_HZ), node_cpu_guest_seconds_total{cpu,
 *                      mode="user"|"nice"}; the collector (not the parse function) holds each
 *                      CPU's counters from going backwards as node_exporter does (idle and
 *                      iowait can dip), restarting from the new values when idle drops by a
 *                      second or more (CPU hot-plug); node_boot_time_seconds,
 *                      node_context_switches_total, node_forks_total, node_intr_total,
 *                      node_procs_running, node_procs_blocked
 *   /proc/loadavg      node_load1, node_load5, node_load15
 *   /proc/meminfo      node_memory_<Field>_bytes for every "kB" field (x1024), node_memory_<Field>
 *                      for the others; "Active(anon)" becomes Active_anon (node_exporter's rule)
 *   /proc/diskstats    node_disk_{reads,writes}_completed_total, node_disk_{reads,writes}_merged_
 *                      total, node_disk_read_bytes_total, node_disk_written_bytes_total (sectors
 *                      x 512), node_disk_{read,write}_time_seconds_total, node_disk_io_now,
 *                      node_disk_io_time_seconds_total, node_disk_io_time_weighted_seconds_total,
 *                      all {device}; ram, zram, loop, fd and partitions are skipped
 *                      (lbw_hoststat_disk_excluded)
 *   /proc/self/mounts  node_filesystem_{size,free,avail}_bytes, node_filesystem_files,
 *                      node_filesystem_files_free, node_filesystem_readonly,
 *                      node_filesystem_device_error, all {device,fstype,mountpoint}; pseudo
 *                      filesystems and system mount points skipped (lbw_hoststat_fs_excluded),
 *                      repeated (device, mountpoint, fstype) once, at most LBW_HOSTSTAT_FS_MAX;
 *                      network filesystems too, or the whole source, as the collector's
 *                      filesystem mode says (lbw_hoststat_set_filesystems)
 *   /proc/sys/fs/file-nr  node_filefd_allocated, node_filefd_maximum
 *   /proc/net/snmp, /proc/net/netstat  node_netstat_<Proto>_<Field> for node_exporter's default
 *                      field set, among them Tcp_CurrEstab, Tcp_ActiveOpens, Tcp_PassiveOpens,
 *                      Tcp_RetransSegs, TcpExt_ListenOverflows, TcpExt_ListenDrops,
 *                      TcpExt_SyncookiesSent/Recv/Failed (header and value lines are paired and
 *                      matched by field name, never by position)
 *   /proc/net/sockstat{,6}  node_sockstat_sockets_used, node_sockstat_<PROTO>_<field>, and
 *                      node_sockstat_<PROTO>_mem_bytes (pages x page size)
 *   listening sockets  lbwatch_listening_sockets{family="ipv4"|"ipv6"}: on the live /proc the
 *                      collector asks NETLINK_SOCK_DIAG for LISTEN sockets only
 *                      (lbw_sockdiag_count_listening), which walks the kernel's listening hash
 *                      alone; reading /proc/net/tcp{,6} walks every socket of the host, TIME_WAIT
 *                      included, twice (measured here: 25 ms with 5,500 TIME_WAIT sockets,
 *                      against tens of microseconds). /proc/net/tcp{,6} (state 0A, the parse
 *                      function) is read only when netlink is unavailable or the collector
 *                      reads another proc_root.
 *
 * Derived gauges, so that rules and the status page need no arithmetic across series:
 *   lbwatch_host_cpu_busy_ratio          the share of all CPUs' time since the collector's
 *                      previous collection that was not idle or iowait (0..1), from the
 *                      per-mode counters as kept monotone above; only from the collector (the
 *                      parse function has no previous collection), only for CPUs seen in both
 *                      collections without a restart, and only when time has passed
 *   lbwatch_host_memory_available_ratio  MemAvailable / MemTotal (when the file has both)
 *   lbwatch_host_filefd_used_ratio       allocated / maximum file handles (maximum > 0)
 *
 * Depends on probes/sample, probes/procfs and probes/sockdiag.
 */
#ifndef LBW_HOSTSTAT_H
#define LBW_HOSTSTAT_H

#include <stddef.h>
#include <stdint.h>

#include "probes/sample.h"

#define LBW_HOSTSTAT_BUF (64 * 1024)   /* the one read buffer; longer lines are skipped */
#define LBW_HOSTSTAT_FS_MAX 512        /* most filesystems reported per collection */
#define LBW_HOSTSTAT_HEADER_MAX 8192   /* longest snmp/netstat header line kept for pairing */
#define LBW_HOSTSTAT_CPUS_MAX 1024     /* CPUs whose counters the collector keeps monotone */

/* What statvfs says about one mounted filesystem, in bytes and inodes. */
struct lbw_fs_usage {
    double size_bytes;
    double free_bytes;
    double avail_bytes;
    double files;
    double files_free;
};

/* Measures the filesystem mounted at mountpoint. Returns 0, or -1 when it cannot. */
typedef int (*lbw_hoststat_statfs_fn)(void *arg, const char *mountpoint,
                                      struct lbw_fs_usage *out);

/* statvfs(3) as an lbw_hoststat_statfs_fn (arg unused). It can block on an unresponsive
 * network filesystem, like node_exporter's: on an event loop, collect with
 * LBW_HOSTSTAT_FS_LOCAL (the agent's default), which never asks one. */
int lbw_hoststat_statvfs(void *arg, const char *mountpoint, struct lbw_fs_usage *out);

struct lbw_hoststat;

/* Which mounted filesystems the collector measures with statvfs. statvfs of a local
 * filesystem answers from the kernel's superblock; of a network one it asks the server, and
 * blocks while the server does not answer (an NFS hard mount whose server is gone blocks it
 * for good). */
enum lbw_hoststat_fs_mode {
    LBW_HOSTSTAT_FS_ALL = 0,    /* every mount the exclusions leave (node_exporter's default;
                                   the collector's until set otherwise) */
    LBW_HOSTSTAT_FS_LOCAL,      /* ... except network filesystems (lbw_hoststat_fs_network) */
    LBW_HOSTSTAT_FS_NONE,       /* none: /proc/self/mounts is not read */
};

/* A collector reading the files under proc_root (NULL: "/proc"), with the system's USER_HZ
 * and page size. Returns 0, or -1 with a reason in err when memory or proc_root fails. */
int lbw_hoststat_new(struct lbw_hoststat **out, const char *proc_root, char *err,
                     size_t errlen);
void lbw_hoststat_free(struct lbw_hoststat *h);

/* Sets which filesystems later collections measure. */
void lbw_hoststat_set_filesystems(struct lbw_hoststat *h, enum lbw_hoststat_fs_mode mode);

/* Reads every source once and emits its samples. Missing tcp6/sockstat6 (IPv6 disabled) is
 * not a failure. Returns the number of sources that could not be read (0 when all were), the
 * first one's path and errno text in err. */
int lbw_hoststat_collect(struct lbw_hoststat *h, const struct lbw_emitter *e, char *err,
                         size_t errlen);

/* Total samples the last collection emitted, and lines skipped for being longer than the
 * buffer since the collector was made. */
size_t lbw_hoststat_last_samples(const struct lbw_hoststat *h);
size_t lbw_hoststat_skipped_lines(const struct lbw_hoststat *h);

/* Parsers: buf[len] is the file's content (no NUL needed). Each returns samples emitted. */
int lbw_hoststat_parse_stat(const char *buf, size_t len, long user_hz,
                            const struct lbw_emitter *e);
int lbw_hoststat_parse_loadavg(const char *buf, size_t len, const struct lbw_emitter *e);
int lbw_hoststat_parse_meminfo(const char *buf, size_t len, const struct lbw_emitter *e);
int lbw_hoststat_parse_diskstats(const char *buf, size_t len, const struct lbw_emitter *e);
/* Measures each mount that passes the filters with statfs(arg, ...). */
int lbw_hoststat_parse_mounts(const char *buf, size_t len, lbw_hoststat_statfs_fn statfs,
                              void *arg, const struct lbw_emitter *e);
int lbw_hoststat_parse_filenr(const char *buf, size_t len, const struct lbw_emitter *e);
/* /proc/net/snmp or /proc/net/netstat (the same "Proto: names" / "Proto: values" pairs). */
int lbw_hoststat_parse_netstat(const char *buf, size_t len, const struct lbw_emitter *e);
int lbw_hoststat_parse_sockstat(const char *buf, size_t len, long page_size,
                                const struct lbw_emitter *e);
/* /proc/net/tcp or tcp6; family is the label value ("ipv4", "ipv6"). */
int lbw_hoststat_parse_tcp(const char *buf, size_t len, const char *family,
                           const struct lbw_emitter *e);

/* node_exporter's default device exclusion, ^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$:
 * 1 when a disk named name is skipped. */
int lbw_hoststat_disk_excluded(const char *name);

/* node_exporter's default filesystem exclusions: mount points under /dev, /proc, /sys,
 * /run/credentials/, /var/lib/docker/, /var/lib/containers/storage/, and pseudo filesystem
 * types (autofs, bpf, cgroup, proc, sysfs, overlay, squashfs, ...). 1 when skipped. */
int lbw_hoststat_fs_excluded(const char *mountpoint, const char *fstype);

/* 1 when fstype is a network or cluster filesystem whose statvfs asks a server or a lock
 * manager (nfs, nfs4, cifs, smb3, ceph, glusterfs, 9p, fuse.sshfs, lustre, gpfs, ocfs2,
 * gfs2, ...): the ones LBW_HOSTSTAT_FS_LOCAL skips. */
int lbw_hoststat_fs_network(const char *fstype);

#endif
