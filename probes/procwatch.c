/* procwatch.c - process aliveness, resources and restarts from /proc. Owns the watches, their
 * last-seen main process and the scan's fixed buffers. See procwatch.h. */
#include "probes/procwatch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "probes/procfs.h"

#define PIDFILE_MAX 64       /* a pidfile holds a number and a newline */
#define PROC_FILE_MAX 4096   /* stat, cmdline (argv[0] is at its start) and limits */
#define PF_KTHREAD 0x00200000u /* stat's flags: a kernel thread */

struct watch {
    char *label;
    char *name;                /* NULL: none */
    char *pidfile;             /* NULL: by name */
    struct lbw_procwatch_status st;
    int known;                 /* a main process has been seen */
    int known_pid;
    uint64_t known_start;
};

/* One watch's tally during a scan. Children only count for a pidfile watch, once its main
 * process turned out to be valid. */
struct tally {
    int pidfile_pid;           /* 0: none (or unreadable) */
    int have_main;
    int main_pid;
    uint64_t main_start;
    unsigned count, child_count;
    double ticks, child_ticks;
    double rss_pages, child_rss_pages;
    int64_t fds, child_fds;    /* the fullest process's count, -1 none */
    int fds_pid, child_fds_pid;
};

struct lbw_procwatch {
    int proc_fd;
    int is_procfs;             /* /proc/PID/fd sizes are fd counts (Linux 6.2+) */
    double hz;
    double page_size;
    double btime;
    size_t n;
    struct watch *w;
    struct tally *t;
    char stat_buf[PROC_FILE_MAX];
    char cmd_buf[PROC_FILE_MAX];
    char lim_buf[PROC_FILE_MAX];
};

/* --- parsers -------------------------------------------------------------------------------- */

static int parse_pid(struct lbw_span tok, int *pid)
{
    uint64_t v;
    if (lbw_procfs_u64(tok, &v) < 0 || v == 0 || v > INT32_MAX)
        return -1;
    *pid = (int)v;
    return 0;
}

/* Fields 3 (state) and on, after the comm's closing ')'. */
static int parse_stat_tail(const char *s, size_t len, struct lbw_proc_stat *out)
{
    struct lbw_span tok;
    size_t pos = 0;
    int64_t ppid, rss;
    int seen = 0;
    for (int field = 3; field <= 24 && lbw_procfs_token(s, len, &pos, &tok); field++) {
        seen = field;
        switch (field) {
        case 3:
            if (tok.n != 1)
                return -1;
            out->state = tok.p[0];
            break;
        case 4:
            if (lbw_procfs_i64(tok, &ppid) < 0 || ppid < 0 || ppid > INT32_MAX)
                return -1;
            out->ppid = (int)ppid;
            break;
        case 9:
            if (lbw_procfs_u64(tok, &out->flags) < 0)
                return -1;
            break;
        case 14:
        case 15:
        case 22:
            if (lbw_procfs_u64(tok, field == 14   ? &out->utime
                                    : field == 15 ? &out->stime
                                                  : &out->starttime) < 0)
                return -1;
            break;
        case 24:
            if (lbw_procfs_i64(tok, &rss) < 0)
                return -1;
            out->rss_pages = rss > 0 ? (uint64_t)rss : 0;
            break;
        default:
            break;
        }
    }
    return seen == 24 ? 0 : -1;
}

int lbw_procwatch_parse_stat(const char *buf, size_t len, struct lbw_proc_stat *out)
{
    while (len > 0 && buf[len - 1] == '\n')
        len--;
    const char *open = memchr(buf, '(', len);
    if (!open || open == buf || open[-1] != ' ')
        return -1;
    struct lbw_span pid = {buf, (size_t)(open - buf) - 1};
    if (parse_pid(pid, &out->pid) < 0)
        return -1;
    size_t after_open = (size_t)(open + 1 - buf);
    const char *close = memrchr(open + 1, ')', len - after_open);
    if (!close)
        return -1;
    struct lbw_span comm = {open + 1, (size_t)(close - open) - 1};
    if (lbw_procfs_copy(comm, out->comm, sizeof(out->comm)) < 0)
        return -1;
    size_t tail = (size_t)(close + 1 - buf);
    return parse_stat_tail(close + 1, len - tail, out);
}

int lbw_procwatch_parse_argv0(const char *buf, size_t len, char *out, size_t size)
{
    const char *nul = memchr(buf, '\0', len);
    size_t n = nul ? (size_t)(nul - buf) : len;
    if (n == 0)
        return -1;
    const char *slash = memrchr(buf, '/', n);
    struct lbw_span base = {slash ? slash + 1 : buf, slash ? n - (size_t)(slash + 1 - buf) : n};
    if (base.n == 0)
        return -1;
    return lbw_procfs_copy(base, out, size);
}

struct limits_ctx {
    uint64_t soft;
    int found;
};

static int line_limits(void *arg, const char *line, size_t len)
{
    static const char key[] = "Max open files";
    struct limits_ctx *c = arg;
    struct lbw_span tok;
    size_t pos = sizeof(key) - 1;
    if (len < pos || memcmp(line, key, pos) != 0 || (len > pos && line[pos] != ' '))
        return 0;
    if (lbw_procfs_token(line, len, &pos, &tok) && lbw_procfs_u64(tok, &c->soft) == 0)
        c->found = 1;
    return 1;
}

int lbw_procwatch_parse_limits(const char *buf, size_t len, uint64_t *soft)
{
    struct limits_ctx c = {0, 0};
    lbw_procfs_lines(buf, len, line_limits, &c);
    if (!c.found)
        return -1;
    *soft = c.soft;
    return 0;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int lbw_procwatch_parse_pidfile(const char *buf, size_t len, int *pid)
{
    size_t i = 0;
    while (i < len && (buf[i] == ' ' || buf[i] == '\t'))
        i++;
    size_t start = i;
    while (i < len && buf[i] >= '0' && buf[i] <= '9')
        i++;
    struct lbw_span digits = {buf + start, i - start};
    for (; i < len; i++)
        if (!is_space(buf[i]))
            return -1;
    return parse_pid(digits, pid);
}

/* --- set-up --------------------------------------------------------------------------------- */

static int line_btime(void *arg, const char *line, size_t len)
{
    double *btime = arg;
    struct lbw_span tok;
    size_t pos = 0;
    uint64_t v;
    if (!lbw_procfs_token(line, len, &pos, &tok) || !lbw_procfs_eq(tok, "btime"))
        return 0;
    if (lbw_procfs_token(line, len, &pos, &tok) && lbw_procfs_u64(tok, &v) == 0)
        *btime = (double)v;
    return 1;
}

static int check_specs(const struct lbw_procwatch_spec *specs, size_t n, char *err,
                       size_t errlen)
{
    if (n == 0 || n > LBW_PROCWATCH_MAX) {
        snprintf(err, errlen, "%zu watches (1 to %d)", n, LBW_PROCWATCH_MAX);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const struct lbw_procwatch_spec *s = &specs[i];
        if (!s->name && !s->pidfile) {
            snprintf(err, errlen, "watch %zu: neither name nor pidfile", i);
            return -1;
        }
        if (s->name && (s->name[0] == '\0' || strlen(s->name) >= LBW_PROCWATCH_NAME_MAX)) {
            snprintf(err, errlen, "watch %zu: name empty or longer than %d", i,
                     LBW_PROCWATCH_NAME_MAX - 1);
            return -1;
        }
    }
    return 0;
}

static const char *spec_label(const struct lbw_procwatch_spec *s)
{
    return s->label ? s->label : s->name ? s->name : s->pidfile;
}

static int copy_watches(struct lbw_procwatch *w, const struct lbw_procwatch_spec *specs,
                        char *err, size_t errlen)
{
    for (size_t i = 0; i < w->n; i++) {
        struct watch *x = &w->w[i];
        const char *label = spec_label(&specs[i]);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(w->w[j].label, label) == 0) {
                snprintf(err, errlen, "watch label \"%s\" repeats", label);
                return -1;
            }
        }
        x->label = strdup(label);
        x->name = specs[i].name ? strdup(specs[i].name) : NULL;
        x->pidfile = specs[i].pidfile ? strdup(specs[i].pidfile) : NULL;
        if (!x->label || (specs[i].name && !x->name) || (specs[i].pidfile && !x->pidfile)) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        x->st.open_fds = -1;
        x->st.max_fds = -1;
    }
    return 0;
}

static int open_root(struct lbw_procwatch *w, const char *root, char *err, size_t errlen)
{
    struct statfs sfs;
    w->proc_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (w->proc_fd < 0) {
        snprintf(err, errlen, "%s: %s", root, strerror(errno));
        return -1;
    }
    w->is_procfs = fstatfs(w->proc_fd, &sfs) == 0 && sfs.f_type == PROC_SUPER_MAGIC;
    w->btime = -1;
    if (lbw_procfs_stream(w->proc_fd, "stat", w->stat_buf, sizeof(w->stat_buf), line_btime,
                          &w->btime, NULL) < 0 || w->btime < 0) {
        snprintf(err, errlen, "%s/stat: no boot time", root);
        return -1;
    }
    return 0;
}

int lbw_procwatch_new(struct lbw_procwatch **out, const struct lbw_procwatch_spec *specs,
                      size_t n, const char *proc_root, char *err, size_t errlen)
{
    if (check_specs(specs, n, err, errlen) < 0)
        return -1;
    struct lbw_procwatch *w = calloc(1, sizeof(*w));
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    w->proc_fd = -1;
    w->n = n;
    w->w = calloc(n, sizeof(*w->w));
    w->t = calloc(n, sizeof(*w->t));
    long hz = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    w->hz = hz > 0 ? (double)hz : 100;
    w->page_size = page > 0 ? (double)page : 4096;
    if (!w->w || !w->t) {
        snprintf(err, errlen, "out of memory");
        lbw_procwatch_free(w);
        return -1;
    }
    if (copy_watches(w, specs, err, errlen) < 0 ||
        open_root(w, proc_root ? proc_root : "/proc", err, errlen) < 0) {
        lbw_procwatch_free(w);
        return -1;
    }
    *out = w;
    return 0;
}

void lbw_procwatch_free(struct lbw_procwatch *w)
{
    if (!w)
        return;
    for (size_t i = 0; w->w && i < w->n; i++) {
        free(w->w[i].label);
        free(w->w[i].name);
        free(w->w[i].pidfile);
    }
    free(w->w);
    free(w->t);
    if (w->proc_fd >= 0)
        close(w->proc_fd);
    free(w);
}

/* --- scan ----------------------------------------------------------------------------------- */

/* Open descriptors of pid, or -1 when its fd directory cannot be read. */
static int64_t count_fds(const struct lbw_procwatch *w, int pid)
{
    char path[32];
    struct stat st;
    snprintf(path, sizeof(path), "%d/fd", pid);
    if (w->is_procfs && fstatat(w->proc_fd, path, &st, 0) == 0 && st.st_size > 0)
        return (int64_t)st.st_size;
    int fd = openat(w->proc_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -1;
    }
    int64_t n = 0;
    for (struct dirent *de; (de = readdir(d));)
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* What a scan knows about one process, filled lazily. */
struct proc_view {
    struct lbw_proc_stat st;
    int argv0_state;           /* 0 unread, 1 read, -1 none */
    char argv0[LBW_PROCWATCH_NAME_MAX];
    int fds_state;             /* 0 uncounted, 1 counted */
    int64_t fds;
};

static int name_matches(struct lbw_procwatch *w, const char *name, struct proc_view *p)
{
    if (strcmp(p->st.comm, name) == 0)
        return 1;
    if (p->argv0_state == 0 && (p->st.flags & PF_KTHREAD))
        p->argv0_state = -1; /* a kernel thread has no command line: spare the read */
    if (p->argv0_state == 0) {
        char path[32];
        snprintf(path, sizeof(path), "%d/cmdline", p->st.pid);
        ssize_t n = lbw_procfs_read(w->proc_fd, path, w->cmd_buf, sizeof(w->cmd_buf), NULL);
        p->argv0_state = n > 0 && lbw_procwatch_parse_argv0(w->cmd_buf, (size_t)n, p->argv0,
                                                            sizeof(p->argv0)) == 0 ? 1 : -1;
    }
    return p->argv0_state == 1 && strcmp(p->argv0, name) == 0;
}

static int64_t view_fds(const struct lbw_procwatch *w, struct proc_view *p)
{
    if (!p->fds_state) {
        p->fds = count_fds(w, p->st.pid);
        p->fds_state = 1;
    }
    return p->fds;
}

/* Adds a process to a tally: the main part, or the children's part of a pidfile watch. */
static void add_process(const struct lbw_procwatch *w, struct tally *t, struct proc_view *p,
                        int child)
{
    const struct lbw_proc_stat *s = &p->st;
    int64_t fds = view_fds(w, p);
    unsigned *count = child ? &t->child_count : &t->count;
    double *ticks = child ? &t->child_ticks : &t->ticks;
    double *rss = child ? &t->child_rss_pages : &t->rss_pages;
    int64_t *max_fds = child ? &t->child_fds : &t->fds;
    int *max_pid = child ? &t->child_fds_pid : &t->fds_pid;
    (*count)++;
    *ticks += (double)s->utime + (double)s->stime;
    *rss += (double)s->rss_pages;
    if (fds > *max_fds) {
        *max_fds = fds;
        *max_pid = s->pid;
    }
}

/* By name: the oldest matching process is the main one. */
static void consider_main(struct tally *t, const struct lbw_proc_stat *s)
{
    if (!t->have_main || s->starttime < t->main_start ||
        (s->starttime == t->main_start && s->pid < t->main_pid)) {
        t->have_main = 1;
        t->main_pid = s->pid;
        t->main_start = s->starttime;
    }
}

static void scan_watch(struct lbw_procwatch *w, size_t i, struct proc_view *p)
{
    const struct watch *x = &w->w[i];
    struct tally *t = &w->t[i];
    if (!x->pidfile) {
        if (name_matches(w, x->name, p)) {
            add_process(w, t, p, 0);
            consider_main(t, &p->st);
        }
        return;
    }
    if (t->pidfile_pid == 0)
        return;
    if (p->st.pid == t->pidfile_pid) {
        if (x->name && !name_matches(w, x->name, p))
            return; /* the PID now belongs to something else */
        add_process(w, t, p, 0);
        consider_main(t, &p->st);
    } else if (p->st.ppid == t->pidfile_pid) {
        add_process(w, t, p, 1);
    }
}

static void scan_process(struct lbw_procwatch *w, int pid)
{
    char path[32];
    struct proc_view p;
    snprintf(path, sizeof(path), "%d/stat", pid);
    ssize_t n = lbw_procfs_read(w->proc_fd, path, w->stat_buf, sizeof(w->stat_buf), NULL);
    if (n <= 0 || lbw_procwatch_parse_stat(w->stat_buf, (size_t)n, &p.st) < 0 ||
        p.st.pid != pid)
        return; /* gone since readdir, or unreadable */
    p.argv0_state = 0;
    p.fds_state = 0;
    for (size_t i = 0; i < w->n; i++)
        scan_watch(w, i, &p);
}

static void start_tallies(struct lbw_procwatch *w)
{
    for (size_t i = 0; i < w->n; i++) {
        struct tally *t = &w->t[i];
        memset(t, 0, sizeof(*t));
        t->fds = t->child_fds = -1;
        if (!w->w[i].pidfile)
            continue;
        char buf[PIDFILE_MAX];
        int truncated;
        ssize_t len = lbw_procfs_read(AT_FDCWD, w->w[i].pidfile, buf, sizeof(buf), &truncated);
        if (len <= 0 || truncated || lbw_procwatch_parse_pidfile(buf, (size_t)len,
                                                                 &t->pidfile_pid) < 0)
            t->pidfile_pid = 0;
    }
}

static int64_t soft_nofile(struct lbw_procwatch *w, int pid)
{
    char path[32];
    uint64_t soft;
    snprintf(path, sizeof(path), "%d/limits", pid);
    ssize_t n = lbw_procfs_read(w->proc_fd, path, w->lim_buf, sizeof(w->lim_buf), NULL);
    if (n <= 0 || lbw_procwatch_parse_limits(w->lim_buf, (size_t)n, &soft) < 0 ||
        soft > INT64_MAX)
        return -1;
    return (int64_t)soft;
}

static void finish_watch(struct lbw_procwatch *w, size_t i)
{
    struct watch *x = &w->w[i];
    struct tally *t = &w->t[i];
    struct lbw_procwatch_status *st = &x->st;
    if (t->have_main && x->pidfile) {
        t->count += t->child_count;
        t->ticks += t->child_ticks;
        t->rss_pages += t->child_rss_pages;
        if (t->child_fds > t->fds) {
            t->fds = t->child_fds;
            t->fds_pid = t->child_fds_pid;
        }
    }
    st->up = t->have_main;
    st->count = t->have_main ? t->count : 0;
    st->main_pid = t->have_main ? t->main_pid : 0;
    st->open_fds = st->max_fds = -1;
    if (!t->have_main) {
        st->cpu_seconds = st->resident_bytes = st->start_time_seconds = 0;
        return;
    }
    if (x->known && (x->known_pid != t->main_pid || x->known_start != t->main_start))
        st->restarts++;
    x->known = 1;
    x->known_pid = t->main_pid;
    x->known_start = t->main_start;
    st->cpu_seconds = t->ticks / w->hz;
    st->resident_bytes = t->rss_pages * w->page_size;
    st->start_time_seconds = w->btime + (double)t->main_start / w->hz;
    if (t->fds >= 0) {
        st->open_fds = t->fds;
        st->max_fds = soft_nofile(w, t->fds_pid);
    }
}

static int pid_of(const char *name, int *pid)
{
    struct lbw_span s = {name, strlen(name)};
    return s.n <= 10 && parse_pid(s, pid) == 0 ? 0 : -1;
}

int lbw_procwatch_scan(struct lbw_procwatch *w)
{
    int dfd = openat(w->proc_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -1;
    DIR *d = fdopendir(dfd);
    if (!d) {
        int saved = errno;
        close(dfd);
        errno = saved;
        return -1;
    }
    start_tallies(w);
    int pid;
    for (struct dirent *de; (de = readdir(d));)
        if (pid_of(de->d_name, &pid) == 0)
            scan_process(w, pid);
    closedir(d);
    for (size_t i = 0; i < w->n; i++)
        finish_watch(w, i);
    return 0;
}

/* --- emit ----------------------------------------------------------------------------------- */

int lbw_procwatch_emit(const struct lbw_procwatch *w, const struct lbw_emitter *e)
{
    int n = 0;
    for (size_t i = 0; i < w->n; i++) {
        const struct lbw_procwatch_status *st = &w->w[i].st;
        const char *label = w->w[i].label;
        n += lbw_emit1(e, "lbwatch_process_up", "process", label, st->up) == 0;
        n += lbw_emit1(e, "lbwatch_process_count", "process", label, st->count) == 0;
        n += lbw_emit1(e, "lbwatch_process_restarts_total", "process", label,
                       (double)st->restarts) == 0;
        if (!st->up)
            continue;
        n += lbw_emit1(e, "lbwatch_process_cpu_seconds_total", "process", label,
                       st->cpu_seconds) == 0;
        n += lbw_emit1(e, "lbwatch_process_resident_memory_bytes", "process", label,
                       st->resident_bytes) == 0;
        n += lbw_emit1(e, "lbwatch_process_start_time_seconds", "process", label,
                       st->start_time_seconds) == 0;
        if (st->open_fds >= 0)
            n += lbw_emit1(e, "lbwatch_process_open_fds", "process", label,
                           (double)st->open_fds) == 0;
        if (st->open_fds >= 0 && st->max_fds >= 0)
            n += lbw_emit1(e, "lbwatch_process_max_fds", "process", label,
                           (double)st->max_fds) == 0;
        if (st->open_fds >= 0 && st->max_fds > 0)
            n += lbw_emit1(e, "lbwatch_process_fds_used_ratio", "process", label,
                           (double)st->open_fds / (double)st->max_fds) == 0;
    }
    return n;
}

int lbw_procwatch_collect(struct lbw_procwatch *w, const struct lbw_emitter *e)
{
    if (lbw_procwatch_scan(w) < 0)
        return -1;
    return lbw_procwatch_emit(w, e);
}

const struct lbw_procwatch_status *lbw_procwatch_status(const struct lbw_procwatch *w,
                                                        size_t i)
{
    return i < w->n ? &w->w[i].st : NULL;
}
