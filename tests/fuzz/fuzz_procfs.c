/* fuzz_procfs.c - libFuzzer target for every /proc parser of probes/hoststat and
 * probes/procwatch. The first byte picks the parser, the rest is the file's text. Any input
 * must be parsed without a memory error; every sample emitted must carry a canonical series
 * key and the parser must report exactly the samples it emitted; parsed values must keep the
 * parsers' promises (positive PIDs, NUL-free names, mount points filtered as documented). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "probes/hoststat.h"
#include "probes/procwatch.h"

static int emitted;

static void check_sample(void *arg, const char *key, int64_t ts_ms, double value)
{
    struct lbw_key_parsed k;
    (void)arg;
    (void)ts_ms;
    (void)value;
    if (lbw_key_parse(key, strlen(key), &k) != 0)
        abort();
    emitted++;
}

static int fake_statfs(void *arg, const char *mp, struct lbw_fs_usage *out)
{
    (void)arg;
    if (mp[0] != '/' || lbw_hoststat_fs_excluded(mp, "ext4"))
        abort(); /* the parser measures only absolute, non-excluded mount points */
    memset(out, 0, sizeof(*out));
    return mp[1] == 'x' ? -1 : 0;
}

static void host_parsers(unsigned which, const char *s, size_t n, const struct lbw_emitter *e)
{
    int got;
    switch (which) {
    case 0: got = lbw_hoststat_parse_stat(s, n, 100, e); break;
    case 1: got = lbw_hoststat_parse_loadavg(s, n, e); break;
    case 2: got = lbw_hoststat_parse_meminfo(s, n, e); break;
    case 3: got = lbw_hoststat_parse_diskstats(s, n, e); break;
    case 4: got = lbw_hoststat_parse_mounts(s, n, fake_statfs, NULL, e); break;
    case 5: got = lbw_hoststat_parse_filenr(s, n, e); break;
    case 6: got = lbw_hoststat_parse_netstat(s, n, e); break;
    case 7: got = lbw_hoststat_parse_sockstat(s, n, 4096, e); break;
    default: got = lbw_hoststat_parse_tcp(s, n, "ipv4", e); break;
    }
    if (got != emitted)
        abort();
}

static void proc_parsers(unsigned which, const char *s, size_t n)
{
    struct lbw_proc_stat st;
    char name[LBW_PROCWATCH_NAME_MAX];
    uint64_t soft;
    int pid;
    switch (which) {
    case 9:
        if (lbw_procwatch_parse_stat(s, n, &st) == 0 &&
            (st.pid <= 0 || st.ppid < 0 || memchr(st.comm, '\0', sizeof(st.comm)) == NULL))
            abort();
        break;
    case 10:
        if (lbw_procwatch_parse_argv0(s, n, name, sizeof(name)) == 0 &&
            (name[0] == '\0' || strchr(name, '/')))
            abort();
        break;
    case 11:
        lbw_procwatch_parse_limits(s, n, &soft);
        break;
    default:
        if (lbw_procwatch_parse_pidfile(s, n, &pid) == 0 && pid <= 0)
            abort();
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct lbw_label base[] = {{"vantage", "fuzz"}};
    struct lbw_emitter e = {check_sample, NULL, base, 1, 0};
    if (size < 1)
        return 0;
    unsigned which = data[0] % 13;
    /* the text in a buffer of its own, so reads past the end are caught */
    char *s = malloc(size - 1 ? size - 1 : 1);
    if (!s)
        return 0;
    memcpy(s, data + 1, size - 1);
    emitted = 0;
    if (which < 9)
        host_parsers(which, s, size - 1, &e);
    else
        proc_parsers(which, s, size - 1);
    free(s);
    return 0;
}
