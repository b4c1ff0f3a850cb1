/* hoststat.c - host statistics from /proc and statvfs under node_exporter's names. Owns the
 * per-file line parsers and the collector's read buffer. See hoststat.h. */
#include "probes/hoststat.h"

#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "probes/procfs.h"
#include "probes/sockdiag.h"

#define NAME_MAX_LEN 128     /* longest metric name, device or cpu label we build */
#define PATH_LABEL_MAX 1024  /* longest device or mount point we report */

#define CPU_FIELDS 10       /* user nice system idle iowait irq softirq steal guest guest_nice */

/* A CPU's counters at the last collection. */
struct cpu_prev {
    int valid;
    int have[CPU_FIELDS];
    double v[CPU_FIELDS];
};

/* The state one file's parse needs; one type serves every parser. */
struct parse_ctx {
    struct cpu_prev *cpus; /* the collector's, LBW_HOSTSTAT_CPUS_MAX; NULL: no clamping */
    const struct lbw_emitter *e;
    int emitted;
    double user_hz;
    double page_size;
    const char *family;
    uint64_t listening;
    lbw_hoststat_statfs_fn statfs;
    void *statfs_arg;
    int local_only;        /* skip network filesystems (LBW_HOSTSTAT_FS_LOCAL) */
    size_t nseen;
    uint64_t seen[LBW_HOSTSTAT_FS_MAX];
    size_t header_len;
    char header[LBW_HOSTSTAT_HEADER_MAX];
    /* the derived gauges' inputs */
    double cpu_busy, cpu_all;   /* seconds since the last collection, summed over CPUs */
    double mem_total, mem_available;    /* bytes; NaN until seen */
};

struct lbw_hoststat {
    int proc_fd;
    int diag_fd;               /* sock_diag for the listening count; -1: read /proc/net/tcp */
    uint32_t diag_seq;
    long user_hz;
    long page_size;
    enum lbw_hoststat_fs_mode fs_mode;
    size_t last_samples;
    size_t skipped;
    struct parse_ctx ctx;
    struct cpu_prev cpus[LBW_HOSTSTAT_CPUS_MAX];
    char buf[LBW_HOSTSTAT_BUF];
};

static void ctx_init(struct parse_ctx *c, const struct lbw_emitter *e)
{
    c->cpus = NULL;
    c->e = e;
    c->emitted = 0;
    c->user_hz = 100;
    c->page_size = 4096;
    c->family = "ipv4";
    c->listening = 0;
    c->statfs = NULL;
    c->statfs_arg = NULL;
    c->local_only = 0;
    c->nseen = 0;
    c->header_len = 0;
    c->cpu_busy = c->cpu_all = 0;
    c->mem_total = c->mem_available = NAN;
}

static void put(struct parse_ctx *c, const char *metric, const struct lbw_label *l, size_t nl,
                double v)
{
    if (lbw_emitn(c->e, metric, l, nl, v) == 0)
        c->emitted++;
}

/* The line's first token, and the position after it. Returns 0 for a blank line. */
static int first_token(const char *line, size_t len, size_t *pos, struct lbw_span *tok)
{
    *pos = 0;
    return lbw_procfs_token(line, len, pos, tok);
}

/* --- /proc/stat ----------------------------------------------------------------------------- */

static const char *const cpu_modes[] = {"user", "nice", "system", "idle",
                                        "iowait", "irq", "softirq", "steal"};
static const char *const guest_modes[] = {"user", "nice"};

#define CPU_IDLE 3
#define CPU_IOWAIT 4
#define CPU_MODES 8         /* the fields that add up to the CPU's time (guest is in user) */

/* Adds one CPU's time since its last collection to the busy and total sums: every mode but
 * idle and iowait is busy. Needs the counters of both collections. */
static void cpu_account(struct parse_ctx *c, const struct cpu_prev *before, const double *v,
                        const int *have)
{
    double busy = 0, all = 0;
    for (size_t i = 0; i < CPU_MODES; i++) {
        if (!have[i] || !before->have[i])
            continue;
        double d = v[i] - before->v[i];
        all += d;
        if (i != CPU_IDLE && i != CPU_IOWAIT)
            busy += d;
    }
    c->cpu_busy += busy;
    c->cpu_all += all;
}

/* Keeps one CPU's counters from going backwards, as node_exporter does: the kernel's idle and
 * iowait can dip (NO_HZ accounting), which rate() would read as a counter reset. An idle
 * drop of a second or more means the CPU was unplugged and came back: start again from the new
 * values. Returns 1 when it started again (or had nothing before). */
static int cpu_monotone(struct cpu_prev *prev, double *v, const int *have)
{
    int reset = !prev->valid || (have[3] && prev->v[3] - v[3] >= 1.0);
    for (size_t i = 0; i < CPU_FIELDS; i++) {
        if (!have[i])
            continue;
        if (!reset && prev->have[i] && v[i] < prev->v[i])
            v[i] = prev->v[i];
        prev->v[i] = v[i];
        prev->have[i] = 1;
    }
    prev->valid = 1;
    return reset;
}

static void stat_cpu(struct parse_ctx *c, struct lbw_span name, const char *line, size_t len,
                     size_t pos)
{
    char cpu[16];
    struct lbw_span id = {name.p + 3, name.n - 3};
    uint64_t idnum, ticks;
    double v[CPU_FIELDS];
    int have[CPU_FIELDS] = {0};
    if (lbw_procfs_u64(id, &idnum) < 0 || lbw_procfs_copy(id, cpu, sizeof(cpu)) < 0)
        return; /* the "cpu" total line, or garbage */
    struct lbw_span tok;
    for (size_t i = 0; i < CPU_FIELDS && lbw_procfs_token(line, len, &pos, &tok); i++) {
        if (lbw_procfs_u64(tok, &ticks) == 0) {
            v[i] = (double)ticks / c->user_hz;
            have[i] = 1;
        }
    }
    if (c->cpus && idnum < LBW_HOSTSTAT_CPUS_MAX) {
        struct cpu_prev before = c->cpus[idnum];
        if (!cpu_monotone(&c->cpus[idnum], v, have))
            cpu_account(c, &before, v, have);
    }
    for (size_t i = 0; i < CPU_FIELDS; i++) {
        if (!have[i])
            continue;
        int guest = i >= 8;
        struct lbw_label l[] = {{"cpu", cpu}, {"mode", guest ? guest_modes[i - 8] : cpu_modes[i]}};
        put(c, guest ? "node_cpu_guest_seconds_total" : "node_cpu_seconds_total", l, 2, v[i]);
    }
}

static const struct {
    const char *field;
    const char *metric;
} stat_scalars[] = {
    {"btime", "node_boot_time_seconds"},   {"ctxt", "node_context_switches_total"},
    {"processes", "node_forks_total"},     {"intr", "node_intr_total"},
    {"procs_running", "node_procs_running"}, {"procs_blocked", "node_procs_blocked"},
};

static int line_stat(void *arg, const char *line, size_t len)
{
    struct parse_ctx *c = arg;
    struct lbw_span name, tok;
    size_t pos;
    uint64_t v;
    if (!first_token(line, len, &pos, &name))
        return 0;
    if (name.n > 3 && memcmp(name.p, "cpu", 3) == 0) {
        stat_cpu(c, name, line, len, pos);
        return 0;
    }
    for (size_t i = 0; i < sizeof(stat_scalars) / sizeof(stat_scalars[0]); i++) {
        if (!lbw_procfs_eq(name, stat_scalars[i].field))
            continue;
        if (lbw_procfs_token(line, len, &pos, &tok) && lbw_procfs_u64(tok, &v) == 0)
            put(c, stat_scalars[i].metric, NULL, 0, (double)v);
        break;
    }
    return 0;
}

/* The busy share of all CPUs' time since the last collection, when time has passed. */
static void finish_stat(struct parse_ctx *c)
{
    if (c->cpu_all > 0)
        put(c, "lbwatch_host_cpu_busy_ratio", NULL, 0, c->cpu_busy / c->cpu_all);
}

/* --- /proc/loadavg -------------------------------------------------------------------------- */

static int line_loadavg(void *arg, const char *line, size_t len)
{
    static const char *const names[] = {"node_load1", "node_load5", "node_load15"};
    struct parse_ctx *c = arg;
    struct lbw_span tok;
    size_t pos = 0;
    double v;
    for (size_t i = 0; i < 3 && lbw_procfs_token(line, len, &pos, &tok); i++)
        if (lbw_procfs_decimal(tok, &v) == 0)
            put(c, names[i], NULL, 0, v);
    return 1; /* one line */
}

/* --- /proc/meminfo -------------------------------------------------------------------------- */

/* node_exporter's name for a meminfo key: "Active(anon)" -> "Active_anon". Returns 0 or -1. */
static int meminfo_key(struct lbw_span key, char *out, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; i < key.n; i++) {
        char ch = key.p[i];
        if (ch == ')')
            continue;
        if (o + 1 >= size)
            return -1;
        out[o++] = ch == '(' ? '_' : ch;
    }
    out[o] = '\0';
    return o ? 0 : -1;
}

static int line_meminfo(void *arg, const char *line, size_t len)
{
    struct parse_ctx *c = arg;
    struct lbw_span key, val, unit;
    size_t pos;
    uint64_t v;
    char name[NAME_MAX_LEN], metric[NAME_MAX_LEN + 32];
    if (!first_token(line, len, &pos, &key) || key.n < 2 || key.p[key.n - 1] != ':' ||
        !((key.p[0] >= 'A' && key.p[0] <= 'Z') || (key.p[0] >= 'a' && key.p[0] <= 'z')))
        return 0;
    key.n--;
    if (!lbw_procfs_token(line, len, &pos, &val) || lbw_procfs_u64(val, &v) < 0 ||
        meminfo_key(key, name, sizeof(name)) < 0)
        return 0;
    int kb = lbw_procfs_token(line, len, &pos, &unit);
    if (kb && !lbw_procfs_eq(unit, "kB"))
        return 0; /* a unit we do not know */
    snprintf(metric, sizeof(metric), "node_memory_%s%s", name, kb ? "_bytes" : "");
    double value = kb ? (double)v * 1024 : (double)v;
    put(c, metric, NULL, 0, value);
    if (kb && strcmp(name, "MemTotal") == 0)
        c->mem_total = value;
    else if (kb && strcmp(name, "MemAvailable") == 0)
        c->mem_available = value;
    return 0;
}

/* MemAvailable / MemTotal, when the file had both (MemAvailable exists since Linux 3.14). */
static void finish_meminfo(struct parse_ctx *c)
{
    if (c->mem_total > 0 && !isnan(c->mem_available))
        put(c, "lbwatch_host_memory_available_ratio", NULL, 0, c->mem_available / c->mem_total);
}

/* --- /proc/diskstats ------------------------------------------------------------------------ */

static const struct {
    const char *metric;
    double scale;
} disk_fields[] = {
    {"node_disk_reads_completed_total", 1},
    {"node_disk_reads_merged_total", 1},
    {"node_disk_read_bytes_total", 512},
    {"node_disk_read_time_seconds_total", 0.001},
    {"node_disk_writes_completed_total", 1},
    {"node_disk_writes_merged_total", 1},
    {"node_disk_written_bytes_total", 512},
    {"node_disk_write_time_seconds_total", 0.001},
    {"node_disk_io_now", 1},
    {"node_disk_io_time_seconds_total", 0.001},
    {"node_disk_io_time_weighted_seconds_total", 0.001},
};
#define DISK_FIELDS (sizeof(disk_fields) / sizeof(disk_fields[0]))

static int all_digits(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

static int prefix_is(const char *s, size_t n, const char *prefix)
{
    size_t p = strlen(prefix);
    return n == p && memcmp(s, prefix, p) == 0;
}

/* (h|s|v|xv)d[a-z] */
static int is_hd_sd_vd(const char *s, size_t n)
{
    size_t lead = n >= 4 && s[0] == 'x' && s[1] == 'v' ? 2 : 1;
    if (n != lead + 2)
        return 0;
    if (lead == 1 && s[0] != 'h' && s[0] != 's' && s[0] != 'v')
        return 0;
    return s[lead] == 'd' && s[lead + 1] >= 'a' && s[lead + 1] <= 'z';
}

/* nvme\d+n\d+p */
static int is_nvme_part(const char *s, size_t n)
{
    if (n < 8 || memcmp(s, "nvme", 4) != 0 || s[n - 1] != 'p')
        return 0;
    const char *nsep = memchr(s + 4, 'n', n - 5);
    if (!nsep)
        return 0;
    size_t a = (size_t)(nsep - s);
    return all_digits(s + 4, a - 4) && all_digits(nsep + 1, n - 1 - (a + 1));
}

int lbw_hoststat_disk_excluded(const char *name)
{
    size_t n = strlen(name), k = n;
    while (k > 0 && name[k - 1] >= '0' && name[k - 1] <= '9')
        k--;
    if (k == n) /* \d+$ needs a digit */
        return 0;
    return prefix_is(name, k, "ram") || prefix_is(name, k, "zram") ||
           prefix_is(name, k, "loop") || prefix_is(name, k, "fd") || is_hd_sd_vd(name, k) ||
           is_nvme_part(name, k);
}

static int line_diskstats(void *arg, const char *line, size_t len)
{
    struct parse_ctx *c = arg;
    struct lbw_span tok;
    size_t pos = 0;
    char device[NAME_MAX_LEN];
    uint64_t v[DISK_FIELDS];
    for (int i = 0; i < 3; i++)
        if (!lbw_procfs_token(line, len, &pos, &tok))
            return 0;
    if (lbw_procfs_copy(tok, device, sizeof(device)) < 0 || lbw_hoststat_disk_excluded(device))
        return 0;
    for (size_t i = 0; i < DISK_FIELDS; i++)
        if (!lbw_procfs_token(line, len, &pos, &tok) || lbw_procfs_u64(tok, &v[i]) < 0)
            return 0; /* a short or malformed line: nothing from it */
    struct lbw_label l[] = {{"device", device}};
    for (size_t i = 0; i < DISK_FIELDS; i++)
        put(c, disk_fields[i].metric, l, 1, (double)v[i] * disk_fields[i].scale);
    return 0;
}

/* --- /proc/self/mounts ---------------------------------------------------------------------- */

static const char *const pseudo_fstypes[] = {
    "autofs",  "binfmt_misc", "bpf",        "cgroup",  "cgroup2",     "configfs", "debugfs",
    "devpts",  "devtmpfs",    "fusectl",    "hugetlbfs", "iso9660",   "mqueue",   "nsfs",
    "overlay", "proc",        "procfs",     "pstore",  "rpc_pipefs",  "securityfs",
    "selinuxfs", "squashfs",  "erofs",      "sysfs",   "tracefs",
};

/* ^/(dev|proc|sys)($|/) or ^/(run/credentials|var/lib/docker|var/lib/containers/storage)/.+ */
static int mountpoint_excluded(const char *mp)
{
    static const char *const trees[] = {"/dev", "/proc", "/sys"};
    static const char *const below[] = {"/run/credentials/", "/var/lib/docker/",
                                        "/var/lib/containers/storage/"};
    for (size_t i = 0; i < sizeof(trees) / sizeof(trees[0]); i++) {
        size_t n = strlen(trees[i]);
        if (strncmp(mp, trees[i], n) == 0 && (mp[n] == '\0' || mp[n] == '/'))
            return 1;
    }
    for (size_t i = 0; i < sizeof(below) / sizeof(below[0]); i++) {
        size_t n = strlen(below[i]);
        if (strncmp(mp, below[i], n) == 0 && mp[n] != '\0')
            return 1;
    }
    return 0;
}

/* Filesystems whose statvfs asks a server (or a cluster lock manager) and can hang with it. */
static const char *const network_fstypes[] = {
    "9p",     "afs",     "beegfs",         "ceph",        "cifs",        "coda",
    "davfs",  "fuse.glusterfs", "fuse.rclone", "fuse.s3fs", "fuse.sshfs", "gfs2",
    "glusterfs", "gpfs", "lustre",         "ncpfs",       "nfs",         "nfs4",
    "ocfs2",  "smb3",    "smbfs",
};

int lbw_hoststat_fs_network(const char *fstype)
{
    for (size_t i = 0; i < sizeof(network_fstypes) / sizeof(network_fstypes[0]); i++)
        if (strcmp(fstype, network_fstypes[i]) == 0)
            return 1;
    return 0;
}

int lbw_hoststat_fs_excluded(const char *mountpoint, const char *fstype)
{
    for (size_t i = 0; i < sizeof(pseudo_fstypes) / sizeof(pseudo_fstypes[0]); i++)
        if (strcmp(fstype, pseudo_fstypes[i]) == 0)
            return 1;
    return mountpoint_excluded(mountpoint);
}

/* Copies a mounts field, decoding the kernel's \ooo escapes (space, tab, newline, backslash).
 * Returns 0, or -1 when it does not fit or decodes to a NUL. */
static int unescape_field(struct lbw_span f, char *out, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; i < f.n; i++) {
        unsigned ch = (unsigned char)f.p[i];
        if (ch == '\\' && i + 3 < f.n && f.p[i + 1] >= '0' && f.p[i + 1] <= '3' &&
            f.p[i + 2] >= '0' && f.p[i + 2] <= '7' && f.p[i + 3] >= '0' && f.p[i + 3] <= '7') {
            ch = (unsigned)((f.p[i + 1] - '0') * 64 + (f.p[i + 2] - '0') * 8 +
                            (f.p[i + 3] - '0'));
            i += 3;
        }
        if (ch == 0 || o + 1 >= size)
            return -1;
        out[o++] = (char)ch;
    }
    out[o] = '\0';
    return 0;
}

static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (size_t i = 0; s[i]; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return (h ^ 0xff) * 1099511628211ull; /* separator so ("ab","c") != ("a","bc") */
}

/* 1 when this filesystem was already reported (or the table is full), else records it. */
static int fs_seen(struct parse_ctx *c, const char *dev, const char *mp, const char *type)
{
    uint64_t h = fnv1a(fnv1a(fnv1a(14695981039346656037ull, dev), mp), type);
    for (size_t i = 0; i < c->nseen; i++)
        if (c->seen[i] == h)
            return 1;
    if (c->nseen == LBW_HOSTSTAT_FS_MAX)
        return 1;
    c->seen[c->nseen++] = h;
    return 0;
}

/* 1 when the comma-separated mount options include "ro". */
static int options_readonly(struct lbw_span opts)
{
    size_t start = 0;
    for (size_t i = 0; i <= opts.n; i++) {
        if (i == opts.n || opts.p[i] == ',') {
            if (i - start == 2 && memcmp(opts.p + start, "ro", 2) == 0)
                return 1;
            start = i + 1;
        }
    }
    return 0;
}

static void emit_fs(struct parse_ctx *c, const char *dev, const char *mp, const char *type,
                    int readonly)
{
    struct lbw_label l[] = {{"device", dev}, {"fstype", type}, {"mountpoint", mp}};
    struct lbw_fs_usage u;
    if (c->statfs(c->statfs_arg, mp, &u) < 0) {
        put(c, "node_filesystem_device_error", l, 3, 1);
        return;
    }
    put(c, "node_filesystem_device_error", l, 3, 0);
    put(c, "node_filesystem_size_bytes", l, 3, u.size_bytes);
    put(c, "node_filesystem_free_bytes", l, 3, u.free_bytes);
    put(c, "node_filesystem_avail_bytes", l, 3, u.avail_bytes);
    put(c, "node_filesystem_files", l, 3, u.files);
    put(c, "node_filesystem_files_free", l, 3, u.files_free);
    put(c, "node_filesystem_readonly", l, 3, readonly);
}

static int line_mounts(void *arg, const char *line, size_t len)
{
    struct parse_ctx *c = arg;
    struct lbw_span f[4];
    size_t pos = 0;
    char dev[PATH_LABEL_MAX], mp[PATH_LABEL_MAX], type[NAME_MAX_LEN];
    for (int i = 0; i < 4; i++)
        if (!lbw_procfs_token(line, len, &pos, &f[i]))
            return 0;
    if (unescape_field(f[0], dev, sizeof(dev)) < 0 || unescape_field(f[1], mp, sizeof(mp)) < 0 ||
        lbw_procfs_copy(f[2], type, sizeof(type)) < 0 || mp[0] != '/')
        return 0;
    if (lbw_hoststat_fs_excluded(mp, type) || (c->local_only && lbw_hoststat_fs_network(type)) ||
        fs_seen(c, dev, mp, type))
        return 0;
    emit_fs(c, dev, mp, type, options_readonly(f[3]));
    return 0;
}

int lbw_hoststat_statvfs(void *arg, const char *mountpoint, struct lbw_fs_usage *out)
{
    (void)arg;
    struct statvfs st;
    if (statvfs(mountpoint, &st) < 0)
        return -1;
    double unit = st.f_frsize ? (double)st.f_frsize : (double)st.f_bsize;
    out->size_bytes = (double)st.f_blocks * unit;
    out->free_bytes = (double)st.f_bfree * unit;
    out->avail_bytes = (double)st.f_bavail * unit;
    out->files = (double)st.f_files;
    out->files_free = (double)st.f_ffree;
    return 0;
}

/* --- /proc/sys/fs/file-nr ------------------------------------------------------------------- */

static int line_filenr(void *arg, const char *line, size_t len)
{
    struct parse_ctx *c = arg;
    struct lbw_span t[3];
    size_t pos = 0;
    uint64_t alloc, max;
    for (int i = 0; i < 3; i++)
        if (!lbw_procfs_token(line, len, &pos, &t[i]))
            return 1;
    int have_alloc = lbw_procfs_u64(t[0], &alloc) == 0;
    int have_max = lbw_procfs_u64(t[2], &max) == 0;
    if (have_alloc)
        put(c, "node_filefd_allocated", NULL, 0, (double)alloc);
    if (have_max)
        put(c, "node_filefd_maximum", NULL, 0, (double)max);
    if (have_alloc && have_max && max > 0)
        put(c, "lbwatch_host_filefd_used_ratio", NULL, 0, (double)alloc / (double)max);
    return 1;
}

/* --- /proc/net/snmp, /proc/net/netstat ------------------------------------------------------ */

static int field_in(struct lbw_span f, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lbw_procfs_eq(f, names[i]))
            return 1;
    return 0;
}

static int field_prefix(struct lbw_span f, const char *prefix)
{
    size_t n = strlen(prefix);
    return f.n >= n && memcmp(f.p, prefix, n) == 0;
}

#define IN(f, ...) field_in((f), (const char *const[]){__VA_ARGS__}, \
                            sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

/* node_exporter's default --collector.netstat.fields. */
static int netstat_wanted(struct lbw_span proto, struct lbw_span f)
{
    if (IN(f, "InErrors", "InErrs"))
        return 1;
    if (lbw_procfs_eq(proto, "Ip"))
        return lbw_procfs_eq(f, "Forwarding");
    if (IN(proto, "Ip6", "IpExt"))
        return IN(f, "InOctets", "OutOctets");
    if (IN(proto, "Icmp", "Icmp6"))
        return IN(f, "InMsgs", "OutMsgs");
    if (lbw_procfs_eq(proto, "TcpExt"))
        return field_prefix(f, "Listen") || field_prefix(f, "Syncookies") ||
               IN(f, "TCPSynRetrans", "TCPTimeouts", "TCPOFOQueue", "TCPRcvQDrop");
    if (lbw_procfs_eq(proto, "Tcp"))
        return IN(f, "ActiveOpens", "InSegs", "OutSegs", "OutRsts", "PassiveOpens",
                  "RetransSegs", "CurrEstab");
    if (IN(proto, "Udp", "Udp6"))
        return IN(f, "InDatagrams", "OutDatagrams", "NoPorts", "RcvbufErrors", "SndbufErrors");
    return 0;
}

static int parse_counter(struct lbw_span tok, double *out)
{
    uint64_t u;
    int64_t s;
    if (lbw_procfs_u64(tok, &u) == 0) {
        *out = (double)u;
        return 0;
    }
    if (lbw_procfs_i64(tok, &s) == 0) {
        *out = (double)s;
        return 0;
    }
    return -1;
}

/* Walks the stored header line and this value line together: each value is emitted under the
 * name in the same column of its header. */
static void netstat_pair(struct parse_ctx *c, struct lbw_span proto, const char *line,
                         size_t len, size_t vpos)
{
    size_t hpos = 0;
    struct lbw_span name, val, skip;
    char metric[NAME_MAX_LEN * 2];
    double v;
    lbw_procfs_token(c->header, c->header_len, &hpos, &skip);
    while (lbw_procfs_token(c->header, c->header_len, &hpos, &name) &&
           lbw_procfs_token(line, len, &vpos, &val)) {
        if (!netstat_wanted(proto, name) || parse_counter(val, &v) < 0 ||
            proto.n + name.n + 16 > sizeof(metric))
            continue;
        snprintf(metric, sizeof(metric), "node_netstat_%.*s_%.*s", (int)proto.n, proto.p,
                 (int)name.n, name.p);
        put(c, metric, NULL, 0, v);
    }
}

static int line_netstat(void *arg, const char *line, size_t len)
{
    struct parse_ctx *c = arg;
    struct lbw_span tag, htag;
    size_t pos, hpos;
    if (!first_token(line, len, &pos, &tag) || tag.n < 2 || tag.p[tag.n - 1] != ':') {
        c->header_len = 0;
        return 0;
    }
    if (c->header_len && first_token(c->header, c->header_len, &hpos, &htag) &&
        htag.n == tag.n && memcmp(htag.p, tag.p, tag.n) == 0) {
        struct lbw_span proto = {tag.p, tag.n - 1};
        netstat_pair(c, proto, line, len, pos);
        c->header_len = 0;
        return 0;
    }
    if (len > sizeof(c->header)) {
        c->header_len = 0;
        return 0;
    }
    memcpy(c->header, line, len);
    c->header_len = len;
    return 0;
}

/* --- /proc/net/sockstat{,6} ----------------------------------------------------------------- */

static int line_sockstat(void *arg, const char *line, size_t len)
{
    struct parse_ctx *c = arg;
    struct lbw_span tag, key, val;
    size_t pos;
    uint64_t v;
    char metric[NAME_MAX_LEN * 2];
    if (!first_token(line, len, &pos, &tag) || tag.n < 2 || tag.p[tag.n - 1] != ':' ||
        tag.n > NAME_MAX_LEN)
        return 0;
    tag.n--;
    while (lbw_procfs_token(line, len, &pos, &key) && lbw_procfs_token(line, len, &pos, &val)) {
        if (lbw_procfs_u64(val, &v) < 0 || key.n > NAME_MAX_LEN)
            continue;
        snprintf(metric, sizeof(metric), "node_sockstat_%.*s_%.*s", (int)tag.n, tag.p,
                 (int)key.n, key.p);
        put(c, metric, NULL, 0, (double)v);
        if (lbw_procfs_eq(key, "mem")) {
            snprintf(metric, sizeof(metric), "node_sockstat_%.*s_mem_bytes", (int)tag.n, tag.p);
            put(c, metric, NULL, 0, (double)v * c->page_size);
        }
    }
    return 0;
}

/* --- /proc/net/tcp{,6} ---------------------------------------------------------------------- */

static int line_tcp(void *arg, const char *line, size_t len)
{
    struct parse_ctx *c = arg;
    struct lbw_span tok;
    size_t pos = 0;
    for (int i = 0; i < 4; i++)
        if (!lbw_procfs_token(line, len, &pos, &tok))
            return 0;
    if (lbw_procfs_eq(tok, "0A"))
        c->listening++;
    return 0;
}

static void finish_tcp(struct parse_ctx *c)
{
    struct lbw_label l[] = {{"family", c->family}};
    put(c, "lbwatch_listening_sockets", l, 1, (double)c->listening);
}

/* --- parse functions over buffers ----------------------------------------------------------- */

static int parse_buf(struct parse_ctx *c, const char *buf, size_t len, lbw_procfs_line_fn fn)
{
    lbw_procfs_lines(buf, len, fn, c);
    return c->emitted;
}

int lbw_hoststat_parse_stat(const char *buf, size_t len, long user_hz,
                            const struct lbw_emitter *e)
{
    struct parse_ctx c;
    ctx_init(&c, e);
    c.user_hz = user_hz > 0 ? (double)user_hz : 100;
    return parse_buf(&c, buf, len, line_stat);
}

int lbw_hoststat_parse_loadavg(const char *buf, size_t len, const struct lbw_emitter *e)
{
    struct parse_ctx c;
    ctx_init(&c, e);
    return parse_buf(&c, buf, len, line_loadavg);
}

int lbw_hoststat_parse_meminfo(const char *buf, size_t len, const struct lbw_emitter *e)
{
    struct parse_ctx c;
    ctx_init(&c, e);
    parse_buf(&c, buf, len, line_meminfo);
    finish_meminfo(&c);
    return c.emitted;
}

int lbw_hoststat_parse_diskstats(const char *buf, size_t len, const struct lbw_emitter *e)
{
    struct parse_ctx c;
    ctx_init(&c, e);
    return parse_buf(&c, buf, len, line_diskstats);
}

int lbw_hoststat_parse_mounts(const char *buf, size_t len, lbw_hoststat_statfs_fn statfs,
                              void *arg, const struct lbw_emitter *e)
{
    struct parse_ctx c;
    ctx_init(&c, e);
    c.statfs = statfs;
    c.statfs_arg = arg;
    return parse_buf(&c, buf, len, line_mounts);
}

int lbw_hoststat_parse_filenr(const char *buf, size_t len, const struct lbw_emitter *e)
{
    struct parse_ctx c;
    ctx_init(&c, e);
    return parse_buf(&c, buf, len, line_filenr);
}

int lbw_hoststat_parse_netstat(const char *buf, size_t len, const struct lbw_emitter *e)
{
    struct parse_ctx c;
    ctx_init(&c, e);
    return parse_buf(&c, buf, len, line_netstat);
}

int lbw_hoststat_parse_sockstat(const char *buf, size_t len, long page_size,
                                const struct lbw_emitter *e)
{
    struct parse_ctx c;
    ctx_init(&c, e);
    c.page_size = page_size > 0 ? (double)page_size : 4096;
    return parse_buf(&c, buf, len, line_sockstat);
}

int lbw_hoststat_parse_tcp(const char *buf, size_t len, const char *family,
                           const struct lbw_emitter *e)
{
    struct parse_ctx c;
    ctx_init(&c, e);
    c.family = family;
    parse_buf(&c, buf, len, line_tcp);
    finish_tcp(&c);
    return c.emitted;
}

/* --- the collector -------------------------------------------------------------------------- */

enum { SRC_PLAIN, SRC_MOUNTS, SRC_TCP4, SRC_TCP6 };

static const struct source {
    const char *path;
    lbw_procfs_line_fn fn;
    int kind;
    int optional; /* absent when IPv6 is disabled */
    void (*finish)(struct parse_ctx *c);    /* emits what needs the whole file; NULL */
} sources[] = {
    {"stat", line_stat, SRC_PLAIN, 0, finish_stat},
    {"loadavg", line_loadavg, SRC_PLAIN, 0, NULL},
    {"meminfo", line_meminfo, SRC_PLAIN, 0, finish_meminfo},
    {"diskstats", line_diskstats, SRC_PLAIN, 0, NULL},
    {"self/mounts", line_mounts, SRC_MOUNTS, 0, NULL},
    {"sys/fs/file-nr", line_filenr, SRC_PLAIN, 0, NULL},
    {"net/snmp", line_netstat, SRC_PLAIN, 0, NULL},
    {"net/netstat", line_netstat, SRC_PLAIN, 0, NULL},
    {"net/sockstat", line_sockstat, SRC_PLAIN, 0, NULL},
    {"net/sockstat6", line_sockstat, SRC_PLAIN, 1, NULL},
    {"net/tcp", line_tcp, SRC_TCP4, 0, finish_tcp},
    {"net/tcp6", line_tcp, SRC_TCP6, 1, finish_tcp},
};

int lbw_hoststat_new(struct lbw_hoststat **out, const char *proc_root, char *err,
                     size_t errlen)
{
    const char *root = proc_root ? proc_root : "/proc";
    struct lbw_hoststat *h = calloc(1, sizeof(*h));
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    h->proc_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (h->proc_fd < 0) {
        snprintf(err, errlen, "%s: %s", root, strerror(errno));
        free(h);
        return -1;
    }
    struct statfs sfs;
    h->diag_fd = -1;
    if (fstatfs(h->proc_fd, &sfs) == 0 && sfs.f_type == PROC_SUPER_MAGIC)
        h->diag_fd = lbw_sockdiag_socket(1000); /* -1: the files it is */
    h->user_hz = sysconf(_SC_CLK_TCK);
    h->page_size = sysconf(_SC_PAGESIZE);
    *out = h;
    return 0;
}

void lbw_hoststat_set_filesystems(struct lbw_hoststat *h, enum lbw_hoststat_fs_mode mode)
{
    h->fs_mode = mode;
}

void lbw_hoststat_free(struct lbw_hoststat *h)
{
    if (!h)
        return;
    close(h->proc_fd);
    if (h->diag_fd >= 0)
        close(h->diag_fd);
    free(h);
}

/* Streams one source into its parser. Returns 0, or -1 with errno set. */
static int collect_source(struct lbw_hoststat *h, const struct source *s,
                          const struct lbw_emitter *e)
{
    struct parse_ctx *c = &h->ctx;
    ctx_init(c, e);
    c->user_hz = h->user_hz > 0 ? (double)h->user_hz : 100;
    c->page_size = h->page_size > 0 ? (double)h->page_size : 4096;
    c->statfs = lbw_hoststat_statvfs;
    c->local_only = h->fs_mode == LBW_HOSTSTAT_FS_LOCAL;
    c->cpus = h->cpus;
    c->family = s->kind == SRC_TCP6 ? "ipv6" : "ipv4";
    if (lbw_procfs_stream(h->proc_fd, s->path, h->buf, sizeof(h->buf), s->fn, c, &h->skipped) < 0)
        return -1;
    if (s->finish)
        s->finish(c);
    h->last_samples += (size_t)c->emitted;
    return 0;
}

/* The listening sockets through sock_diag. Returns 0, or -1 (then the files are read). */
static int collect_listening(struct lbw_hoststat *h, const struct lbw_emitter *e)
{
    uint64_t counts[2];
    char err[128];
    if (lbw_sockdiag_count_listening(h->diag_fd, &h->diag_seq, h->buf, sizeof(h->buf), counts,
                                     err, sizeof(err)) < 0)
        return -1;
    struct parse_ctx *c = &h->ctx;
    for (int i = 0; i < 2; i++) {
        ctx_init(c, e);
        c->family = i == 0 ? "ipv4" : "ipv6";
        c->listening = counts[i];
        finish_tcp(c);
        h->last_samples += (size_t)c->emitted;
    }
    return 0;
}

int lbw_hoststat_collect(struct lbw_hoststat *h, const struct lbw_emitter *e, char *err,
                         size_t errlen)
{
    int failed = 0;
    h->last_samples = 0;
    int listening = h->diag_fd >= 0 && collect_listening(h, e) == 0;
    for (size_t i = 0; i < sizeof(sources) / sizeof(sources[0]); i++) {
        int is_tcp = sources[i].kind == SRC_TCP4 || sources[i].kind == SRC_TCP6;
        int no_fs = sources[i].kind == SRC_MOUNTS && h->fs_mode == LBW_HOSTSTAT_FS_NONE;
        if ((is_tcp && listening) || no_fs || collect_source(h, &sources[i], e) == 0)
            continue;
        if (sources[i].optional && errno == ENOENT)
            continue;
        if (failed++ == 0)
            snprintf(err, errlen, "%s: %s", sources[i].path, strerror(errno));
    }
    return failed;
}

size_t lbw_hoststat_last_samples(const struct lbw_hoststat *h)
{
    return h->last_samples;
}

size_t lbw_hoststat_skipped_lines(const struct lbw_hoststat *h)
{
    return h->skipped;
}
