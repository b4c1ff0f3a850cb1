/* procwatch.h - is the balancer's process alive, and how is it doing: process aliveness by name
 * or pidfile, with CPU, memory, file descriptors, start time and restarts, for `lbwatch agent`.
 *
 * A watch names its processes one of two ways:
 *   by name     every process whose comm (/proc/PID/stat) or basename of argv[0]
 *               (/proc/PID/cmdline, up to its first NUL) equals the name: haproxy's or nginx's
 *               master and workers together. The main process is the oldest (earliest start,
 *               then lowest PID): the master.
 *   by pidfile  the PID written in the file (the main process) and its direct children. With a
 *               name as well, the PID's comm or argv[0] must match it, so a stale pidfile whose
 *               PID was reused by something else reads as down.
 *
 * Each collection scans /proc once (one read of /proc/PID/stat per process, cmdline only when
 * comm does not already decide and the process is not a kernel thread) and then emits, per watch, with label process=<label>:
 *   lbwatch_process_up                     1 while a main process exists, else 0
 *   lbwatch_process_count                  matching processes
 *   lbwatch_process_cpu_seconds_total      utime + stime of the matching processes / USER_HZ
 *                                          (a sum over the current ones: a worker that exits
 *                                          takes its share with it, which rate() reads as a
 *                                          counter reset)
 *   lbwatch_process_resident_memory_bytes  their resident set sizes added up
 *   lbwatch_process_open_fds               open descriptors of the fullest process (the most
 *                                          open; /proc/PID/fd, whose size is the count on
 *                                          Linux 6.2+, else counted entry by entry)
 *   lbwatch_process_max_fds                that process's soft RLIMIT_NOFILE (/proc/PID/limits)
 *   lbwatch_process_fds_used_ratio         open_fds / max_fds (when the limit is above 0), so a
 *                                          rule needs no arithmetic across series
 *   lbwatch_process_start_time_seconds     the main process's start, unix time (boot time +
 *                                          starttime ticks / USER_HZ)
 *   lbwatch_process_restarts_total         times the main process changed (another PID, or the
 *                                          same PID with another start time: reuse) since the
 *                                          watcher was made; compared with the last main
 *                                          process seen, so a restart observed only as down
 *                                          then up again counts once
 * Only up, count and restarts are emitted while a watch is down. open_fds needs permission to
 * read the process's fd directory (root or the same user); without it that metric, max_fds
 * and the ratio are left out.
 *
 * Every /proc file read is untrusted text parsed with bounds checks (the parse functions below
 * are fuzzed); a process that vanishes mid-scan is skipped. Memory is fixed: a few small
 * buffers and one state per watch, whatever the number of processes.
 *
 * Depends on probes/sample and probes/procfs only.
 */
#ifndef LBW_PROCWATCH_H
#define LBW_PROCWATCH_H

#include <stddef.h>
#include <stdint.h>

#include "probes/sample.h"

#define LBW_PROCWATCH_MAX 64       /* watches per watcher */
#define LBW_PROCWATCH_NAME_MAX 64  /* longest comm / argv[0] basename compared, with NUL */

struct lbw_procwatch_spec {
    const char *label;    /* the process label's value; NULL: name, or else the pidfile path */
    const char *name;     /* comm or argv[0] basename; may be NULL when pidfile is set */
    const char *pidfile;  /* pidfile path; NULL: match by name alone */
};

/* One watch's state after the last scan. */
struct lbw_procwatch_status {
    int up;
    unsigned count;               /* matching processes */
    int main_pid;                 /* 0 while down */
    double cpu_seconds;
    double resident_bytes;
    int64_t open_fds;             /* fullest process; -1 when unknown */
    int64_t max_fds;              /* its soft limit; -1 when unknown */
    double start_time_seconds;    /* main process, unix time */
    uint64_t restarts;
};

struct lbw_procwatch;

/* A watcher for specs[n] (strings copied) reading proc_root (NULL: "/proc"). Returns 0, or -1
 * with a reason in err: no watches or more than LBW_PROCWATCH_MAX, a watch with neither name
 * nor pidfile, a name longer than LBW_PROCWATCH_NAME_MAX - 1, a label that repeats, proc_root
 * unreadable or without a btime line in its stat, out of memory. */
int lbw_procwatch_new(struct lbw_procwatch **out, const struct lbw_procwatch_spec *specs,
                      size_t n, const char *proc_root, char *err, size_t errlen);
void lbw_procwatch_free(struct lbw_procwatch *w);

/* Scans proc_root once and updates every watch's status. Returns 0, or -1 (errno set) when
 * proc_root cannot be listed; statuses are then unchanged. */
int lbw_procwatch_scan(struct lbw_procwatch *w);

/* Emits every watch's status as the metrics above. Returns the number of samples emitted. */
int lbw_procwatch_emit(const struct lbw_procwatch *w, const struct lbw_emitter *e);

/* lbw_procwatch_scan, then lbw_procwatch_emit. Returns samples emitted, or -1. */
int lbw_procwatch_collect(struct lbw_procwatch *w, const struct lbw_emitter *e);

/* Watch i's status (i < the number of specs given to lbw_procwatch_new). */
const struct lbw_procwatch_status *lbw_procwatch_status(const struct lbw_procwatch *w,
                                                        size_t i);

/* The fields of /proc/PID/stat a watch uses. */
struct lbw_proc_stat {
    int pid;
    char comm[LBW_PROCWATCH_NAME_MAX];
    char state;
    int ppid;
    uint64_t flags;        /* PF_* (PF_KTHREAD 0x00200000: a kernel thread) */
    uint64_t utime;        /* ticks */
    uint64_t stime;        /* ticks */
    uint64_t starttime;    /* ticks after boot */
    uint64_t rss_pages;
};

/* Parses /proc/PID/stat in buf[len]. comm is taken between the first '(' and the last ')',
 * so a comm holding spaces, parentheses or ") (" cannot shift the fields after it. Returns 0,
 * or -1 when the text is not a stat line (missing fields, numbers out of range, a comm longer
 * than LBW_PROCWATCH_NAME_MAX - 1 or holding a NUL). */
int lbw_procwatch_parse_stat(const char *buf, size_t len, struct lbw_proc_stat *out);

/* The basename of argv[0] from /proc/PID/cmdline in buf[len] (argv[0] ends at the first NUL,
 * or at the end of buf) into out[size]. Returns 0, or -1 when argv[0] is empty (kernel
 * threads), ends in '/', or its basename does not fit. */
int lbw_procwatch_parse_argv0(const char *buf, size_t len, char *out, size_t size);

/* The soft "Max open files" limit from /proc/PID/limits in buf[len]. Returns 0, or -1 when the
 * line is missing or the limit is not a number ("unlimited"). */
int lbw_procwatch_parse_limits(const char *buf, size_t len, uint64_t *soft);

/* The PID in a pidfile's text: optional blanks, decimal digits, optional whitespace. Returns 0
 * with 0 < *pid <= INT32_MAX, or -1. */
int lbw_procwatch_parse_pidfile(const char *buf, size_t len, int *pid);

#endif
