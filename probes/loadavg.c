/* loadavg.c - /proc/loadavg and /proc/uptime into node_load* and node_boot_time_seconds.
 * See loadavg.h. */
#include "probes/loadavg.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Reads up to n space-separated non-negative finite numbers from the front of the len bytes
 * at text into v. Returns 0 if all n were there, else -1. */
static int parse_fields(const char *text, size_t len, double *v, size_t n)
{
    char buf[LBW_LOADAVG_FILE_MAX + 1];
    char *p = buf, *end;
    if (len > LBW_LOADAVG_FILE_MAX || memchr(text, '\0', len))
        return -1;
    memcpy(buf, text, len);
    buf[len] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (*p < '0' || *p > '9')
            return -1; /* strtod would skip spaces, take signs, "inf" and "nan" */
        errno = 0;
        v[i] = strtod(p, &end);
        if (end == p || errno != 0 || !isfinite(v[i]) || v[i] < 0)
            return -1;
        if (*end != ' ' && *end != '\n' && *end != '\0')
            return -1;
        p = *end == ' ' ? end + 1 : end;
    }
    return 0;
}

int lbw_loadavg_parse(const char *text, size_t len, double load[3])
{
    return parse_fields(text, len, load, 3);
}

int lbw_uptime_parse(const char *text, size_t len, double *uptime_s)
{
    return parse_fields(text, len, uptime_s, 1);
}

/* Reads at most LBW_LOADAVG_FILE_MAX bytes of dir/name into buf. Returns the length, or -1
 * with err. */
static long read_small(const char *dir, const char *name, char *buf, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    ssize_t n = read(fd, buf, LBW_LOADAVG_FILE_MAX);
    int saved = errno;
    close(fd);
    if (n < 0)
        snprintf(err, errlen, "%s: %s", path, strerror(saved));
    return (long)n;
}

int lbw_loadavg_read(const char *proc_dir, struct lbw_loadavg *out, char *err, size_t errlen)
{
    char buf[LBW_LOADAVG_FILE_MAX];
    long n = read_small(proc_dir, "loadavg", buf, err, errlen);
    if (n < 0)
        return -1;
    if (lbw_loadavg_parse(buf, (size_t)n, out->load) < 0) {
        snprintf(err, errlen, "%s/loadavg: not three load averages", proc_dir);
        return -1;
    }
    n = read_small(proc_dir, "uptime", buf, err, errlen);
    if (n < 0)
        return -1;
    if (lbw_uptime_parse(buf, (size_t)n, &out->uptime_s) < 0) {
        snprintf(err, errlen, "%s/uptime: not an uptime in seconds", proc_dir);
        return -1;
    }
    return 0;
}

int lbw_loadavg_emit(const struct lbw_loadavg *la, const struct lbw_emitter *e)
{
    double boot = round((double)e->ts_ms / 1000.0 - la->uptime_s);
    int rc = lbw_emit(e, "node_load1", la->load[0]);
    rc |= lbw_emit(e, "node_load5", la->load[1]);
    rc |= lbw_emit(e, "node_load15", la->load[2]);
    rc |= lbw_emit(e, "node_boot_time_seconds", boot);
    return rc ? -1 : 0;
}
