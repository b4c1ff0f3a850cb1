/* test_hoststat.c - host statistics: every parser on files captured from a real machine
 * (tests/fixtures/proc/host) and on hand-made edge cases (missing fields, numbers beyond 64
 * bits, truncated files, escaped mount points, netstat columns matched by name), the collector
 * over the fixture tree, and the collector on this machine (values consistent with each other
 * and monotone between two reads). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "probes/hoststat.h"
#include "probes/procfs.h"
#include "probes/sockdiag.h"
#include "tests/support/samplecap.h"
#include "tests/support/testutil.h"

#define HOST "tests/fixtures/proc/host/"
#define EDGE "tests/fixtures/proc/edge/"

static char fbuf[256 * 1024];
static struct samplecap cap;
static struct lbw_emitter em;

static size_t fixture(const char *path)
{
    int trunc = 0;
    ssize_t n = lbw_procfs_read(AT_FDCWD, path, fbuf, sizeof(fbuf), &trunc);
    if (n < 0)
        fail_msg("cannot read fixture %s", path);
    assert_int_equal(trunc, 0);
    return (size_t)n;
}

static int setup(void **state)
{
    (void)state;
    sc_reset(&cap);
    em = sc_emitter(&cap);
    return 0;
}

static void stat_real(void **state)
{
    (void)state;
    size_t n = fixture(HOST "stat");
    int got = lbw_hoststat_parse_stat(fbuf, n, 100, &em);
    assert_int_equal(got, (int)cap.n);
    /* two CPUs, eight modes, two guest modes each; the "cpu" total line is not a CPU */
    assert_int_equal(sc_count_prefix(&cap, "node_cpu_seconds_total{"), 16);
    assert_int_equal(sc_count_prefix(&cap, "node_cpu_guest_seconds_total{"), 4);
    assert_float_equal(sc_val(&cap, "node_cpu_seconds_total{cpu=\"0\",mode=\"user\"}"), 2345.83,
                       1e-9);
    assert_float_equal(sc_val(&cap, "node_cpu_seconds_total{cpu=\"1\",mode=\"steal\"}"), 2.20,
                       1e-9);
    assert_float_equal(sc_val(&cap, "node_boot_time_seconds"), 1795378685, 0);
    assert_float_equal(sc_val(&cap, "node_context_switches_total"), 10374385, 0);
    assert_float_equal(sc_val(&cap, "node_forks_total"), 169994, 0);
    assert_float_equal(sc_val(&cap, "node_intr_total"), 6783482, 0);
    assert_float_equal(sc_val(&cap, "node_procs_running"), 1, 0);
    assert_float_equal(sc_val(&cap, "node_procs_blocked"), 0, 0);
    assert_int_equal(sc_duplicates(&cap), 0);

    /* USER_HZ is honoured */
    sc_reset(&cap);
    lbw_hoststat_parse_stat(fbuf, n, 1000, &em);
    assert_float_equal(sc_val(&cap, "node_cpu_seconds_total{cpu=\"0\",mode=\"user\"}"), 234.583,
                       1e-9);
}

static void stat_edge(void **state)
{
    (void)state;
    size_t n = fixture(EDGE "stat_edge");
    assert_int_equal(lbw_hoststat_parse_stat(fbuf, n, 100, &em), 14);
    /* an old kernel's four fields */
    assert_int_equal(sc_count_prefix(&cap, "node_cpu_seconds_total{cpu=\"0\""), 4);
    assert_float_equal(sc_val(&cap, "node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"}"), 4, 1e-9);
    /* 2^64-1 parses, 2^64 and "x" are skipped, not guessed; fields past guest_nice ignored */
    assert_float_equal(sc_val(&cap, "node_cpu_seconds_total{cpu=\"1\",mode=\"user\"}"),
                       18446744073709551615.0 / 100, 1e3);
    assert_true(isnan(sc_val(&cap, "node_cpu_seconds_total{cpu=\"1\",mode=\"nice\"}")));
    assert_true(isnan(sc_val(&cap, "node_cpu_seconds_total{cpu=\"1\",mode=\"idle\"}")));
    assert_float_equal(sc_val(&cap, "node_cpu_seconds_total{cpu=\"1\",mode=\"steal\"}"), 0.03,
                       1e-9);
    assert_float_equal(sc_val(&cap, "node_cpu_guest_seconds_total{cpu=\"1\",mode=\"nice\"}"),
                       0.05, 1e-9);
    assert_int_equal(sc_count_prefix(&cap, "node_cpu_seconds_total{cpu=\"X\""), 0);
    assert_true(isnan(sc_val(&cap, "node_boot_time_seconds")));   /* no value */
    assert_true(isnan(sc_val(&cap, "node_forks_total")));         /* negative */
    assert_true(isnan(sc_val(&cap, "node_procs_blocked")));       /* no final '\n' */
    assert_float_equal(sc_val(&cap, "node_context_switches_total"), 12, 0);
    assert_float_equal(sc_val(&cap, "node_procs_running"), 3, 0);
}

static void loadavg(void **state)
{
    (void)state;
    size_t n = fixture(HOST "loadavg");
    assert_int_equal(lbw_hoststat_parse_loadavg(fbuf, n, &em), 3);
    assert_float_equal(sc_val(&cap, "node_load1"), 0.56, 1e-12);
    assert_float_equal(sc_val(&cap, "node_load5"), 0.45, 1e-12);
    assert_float_equal(sc_val(&cap, "node_load15"), 0.75, 1e-12);
    n = fixture(EDGE "loadavg_truncated");
    assert_int_equal(lbw_hoststat_parse_loadavg(fbuf, n, &em), 0);
}

static void meminfo_real(void **state)
{
    (void)state;
    size_t n = fixture(HOST "meminfo");
    int got = lbw_hoststat_parse_meminfo(fbuf, n, &em);
    assert_int_equal(got, 55); /* every line of the capture, and the available ratio */
    assert_float_equal(sc_val(&cap, "lbwatch_host_memory_available_ratio"),
                       24093808.0 / 24684084.0, 1e-12);
    assert_float_equal(sc_val(&cap, "node_memory_MemTotal_bytes"), 24684084.0 * 1024, 0);
    assert_float_equal(sc_val(&cap, "node_memory_MemFree_bytes"), 23901820.0 * 1024, 0);
    assert_float_equal(sc_val(&cap, "node_memory_MemAvailable_bytes"), 24093808.0 * 1024, 0);
    assert_float_equal(sc_val(&cap, "node_memory_Buffers_bytes"), 3168.0 * 1024, 0);
    assert_float_equal(sc_val(&cap, "node_memory_Cached_bytes"), 367104.0 * 1024, 0);
    assert_float_equal(sc_val(&cap, "node_memory_Active_anon_bytes"), 1648.0 * 1024, 0);
    assert_float_equal(sc_val(&cap, "node_memory_HugePages_Total"), 0, 0);
    double v;
    assert_true(sc_get(&cap, "node_memory_SwapTotal_bytes", &v));
    assert_true(sc_get(&cap, "node_memory_SwapFree_bytes", &v));
}

static void meminfo_edge(void **state)
{
    (void)state;
    size_t n = fixture(EDGE "meminfo_edge");
    assert_int_equal(lbw_hoststat_parse_meminfo(fbuf, n, &em), 4);
    assert_float_equal(sc_val(&cap, "node_memory_MemTotal_bytes"), 1024000, 0);
    assert_float_equal(sc_val(&cap, "node_memory_HugePages_Total"), 7, 0);
    assert_float_equal(sc_val(&cap, "node_memory_SwapTotal_bytes"),
                       18446744073709551615.0 * 1024, 1e10);
    assert_float_equal(sc_val(&cap, "node_memory_DirectMap_huge_x_bytes"), 1024, 0);
    assert_true(isnan(sc_val(&cap, "node_memory_SwapFree_bytes")));     /* beyond 64 bits */
    assert_true(isnan(sc_val(&cap, "node_memory_MemAvailable_bytes"))); /* cut off */
    assert_true(isnan(sc_val(&cap, "lbwatch_host_memory_available_ratio"))); /* so no ratio */
    assert_true(isnan(sc_val(&cap, "node_memory_Odd_bytes")));          /* unknown unit */
}

static void diskstats(void **state)
{
    (void)state;
    size_t n = fixture(HOST "diskstats");
    assert_int_equal(lbw_hoststat_parse_diskstats(fbuf, n, &em), 11); /* vda only */
    assert_float_equal(sc_val(&cap, "node_disk_reads_completed_total{device=\"vda\"}"), 386815,
                       0);
    assert_float_equal(sc_val(&cap, "node_disk_read_bytes_total{device=\"vda\"}"),
                       20021194.0 * 512, 0);
    assert_float_equal(sc_val(&cap, "node_disk_writes_completed_total{device=\"vda\"}"),
                       1136474, 0);
    assert_float_equal(sc_val(&cap, "node_disk_written_bytes_total{device=\"vda\"}"),
                       306794520.0 * 512, 0);
    assert_float_equal(sc_val(&cap, "node_disk_io_time_seconds_total{device=\"vda\"}"), 209.204,
                       1e-9);
    assert_int_equal(sc_count_prefix(&cap, "node_disk_reads_completed_total{device=\"loop"), 0);

    sc_reset(&cap);
    n = fixture(EDGE "diskstats_edge");
    assert_int_equal(lbw_hoststat_parse_diskstats(fbuf, n, &em), 22); /* sda, nvme0n1 */
    assert_float_equal(sc_val(&cap, "node_disk_read_time_seconds_total{device=\"nvme0n1\"}"), 2,
                       1e-12);
    assert_float_equal(sc_val(&cap, "node_disk_io_time_weighted_seconds_total"
                                    "{device=\"nvme0n1\"}"), 6, 1e-12);
    assert_float_equal(sc_val(&cap, "node_disk_io_now{device=\"nvme0n1\"}"), 1, 0);
    assert_int_equal(sc_count_prefix(&cap, "node_disk_io_now{"), 2);
}

static void disk_exclusions(void **state)
{
    (void)state;
    const char *skip[] = {"ram0", "zram12", "loop7", "fd0", "sda1", "hdb2", "vda15", "xvdf3",
                          "nvme0n1p1", "nvme12n3p45"};
    const char *keep[] = {"sda", "vda", "nvme0n1", "dm-0", "md127", "sr0", "sdaa1", "loop",
                          "nvme0n1p", "mmcblk0", "mmcblk0p1", "xvda"};
    for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
        assert_true(lbw_hoststat_disk_excluded(skip[i]));
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
        assert_false(lbw_hoststat_disk_excluded(keep[i]));
}

static int fake_statfs(void *arg, const char *mp, struct lbw_fs_usage *out)
{
    (void)arg;
    if (strcmp(mp, "/mnt/nfs") == 0)
        return -1;
    out->size_bytes = 1000;
    out->free_bytes = 600;
    out->avail_bytes = 500;
    out->files = 100;
    out->files_free = 90;
    return 0;
}

static void mounts(void **state)
{
    (void)state;
    size_t n = fixture(EDGE "mounts_edge");
    /* "/", "/run", "/srv/my data", "/var/lib/docker" measured; "/mnt/nfs" failed */
    assert_int_equal(lbw_hoststat_parse_mounts(fbuf, n, fake_statfs, NULL, &em), 4 * 7 + 1);
    assert_int_equal(sc_duplicates(&cap), 0);
    assert_float_equal(sc_val(&cap, "node_filesystem_size_bytes{device=\"/dev/vda1\","
                                    "fstype=\"ext4\",mountpoint=\"/\"}"), 1000, 0);
    assert_float_equal(sc_val(&cap, "node_filesystem_avail_bytes{device=\"/dev/vda1\","
                                    "fstype=\"ext4\",mountpoint=\"/\"}"), 500, 0);
    assert_float_equal(sc_val(&cap, "node_filesystem_readonly{device=\"/dev/vda2\","
                                    "fstype=\"ext4\",mountpoint=\"/srv/my data\"}"), 1, 0);
    assert_float_equal(sc_val(&cap, "node_filesystem_readonly{device=\"tmpfs\","
                                    "fstype=\"tmpfs\",mountpoint=\"/run\"}"), 0, 0);
    assert_float_equal(sc_val(&cap, "node_filesystem_free_bytes{device=\"/dev/vda3\","
                                    "fstype=\"ext4\",mountpoint=\"/var/lib/docker\"}"), 600, 0);
    assert_float_equal(sc_val(&cap, "node_filesystem_device_error{device=\"nfs.example:/export"
                                    "\",fstype=\"nfs4\",mountpoint=\"/mnt/nfs\"}"), 1, 0);
    assert_int_equal(sc_count_prefix(&cap, "node_filesystem_size_bytes{"), 4);

    /* the capture from this machine: only "/" survives the filters */
    sc_reset(&cap);
    n = fixture(HOST "self/mounts");
    assert_int_equal(lbw_hoststat_parse_mounts(fbuf, n, fake_statfs, NULL, &em), 7);
    assert_float_equal(sc_val(&cap, "node_filesystem_files{device=\"/dev/vda\","
                                    "fstype=\"ext4\",mountpoint=\"/\"}"), 100, 0);
}

static void fs_exclusions(void **state)
{
    (void)state;
    assert_true(lbw_hoststat_fs_excluded("/dev", "ext4"));
    assert_true(lbw_hoststat_fs_excluded("/dev/shm", "tmpfs"));
    assert_true(lbw_hoststat_fs_excluded("/sys/fs/cgroup", "tmpfs"));
    assert_true(lbw_hoststat_fs_excluded("/proc", "ext4"));
    assert_true(lbw_hoststat_fs_excluded("/run/credentials/x", "tmpfs"));
    assert_true(lbw_hoststat_fs_excluded("/var/lib/docker/overlay2/a", "ext4"));
    assert_true(lbw_hoststat_fs_excluded("/var/lib/containers/storage/x", "xfs"));
    assert_true(lbw_hoststat_fs_excluded("/", "overlay"));
    assert_true(lbw_hoststat_fs_excluded("/snap/core", "squashfs"));
    assert_false(lbw_hoststat_fs_excluded("/", "ext4"));
    assert_false(lbw_hoststat_fs_excluded("/devices", "ext4"));
    assert_false(lbw_hoststat_fs_excluded("/run/credentials", "tmpfs"));
    assert_false(lbw_hoststat_fs_excluded("/var/lib/docker", "ext4"));
    assert_false(lbw_hoststat_fs_excluded("/run", "tmpfs"));
}

/* The filesystem modes on a tree whose only file is self/mounts (mounts_edge): every other
 * source fails, the mounts still count. */
static void filesystem_modes(void **state)
{
    (void)state;
    static const struct {
        enum lbw_hoststat_fs_mode mode;
        size_t measured;    /* node_filesystem_device_error series */
        int nfs;            /* the nfs4 mount among them */
    } cases[] = {
        {LBW_HOSTSTAT_FS_ALL, 5, 1},
        {LBW_HOSTSTAT_FS_LOCAL, 4, 0},
        {LBW_HOSTSTAT_FS_NONE, 0, 0},
    };
    const char *nfs = "node_filesystem_device_error{device=\"nfs.example:/export\","
                      "fstype=\"nfs4\",mountpoint=\"/mnt/nfs\"}";
    char dir[256], path[300], err[256];
    size_t n = fixture(EDGE "mounts_edge");
    assert_int_equal(tu_tmpdir("lbw-hoststat", dir, sizeof(dir)), 0);
    snprintf(path, sizeof(path), "%s/self", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/self/mounts", dir);
    assert_int_equal(tu_write_file(path, fbuf, n), 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct lbw_hoststat *h;
        sc_reset(&cap);
        assert_int_equal(lbw_hoststat_new(&h, dir, err, sizeof(err)), 0);
        lbw_hoststat_set_filesystems(h, cases[i].mode);
        assert_true(lbw_hoststat_collect(h, &em, err, sizeof(err)) > 0); /* the other files */
        assert_int_equal(sc_count_prefix(&cap, "node_filesystem_device_error{"),
                         cases[i].measured);
        double v;
        assert_int_equal(sc_get(&cap, nfs, &v), cases[i].nfs);
        lbw_hoststat_free(h);
    }
    tu_rmrf(dir);

    assert_true(lbw_hoststat_fs_network("nfs"));
    assert_true(lbw_hoststat_fs_network("nfs4"));
    assert_true(lbw_hoststat_fs_network("cifs"));
    assert_true(lbw_hoststat_fs_network("fuse.sshfs"));
    assert_false(lbw_hoststat_fs_network("ext4"));
    assert_false(lbw_hoststat_fs_network("xfs"));
    assert_false(lbw_hoststat_fs_network("tmpfs"));
    assert_false(lbw_hoststat_fs_network("fuse"));
}

static void filenr(void **state)
{
    (void)state;
    size_t n = fixture(HOST "sys/fs/file-nr");
    assert_int_equal(lbw_hoststat_parse_filenr(fbuf, n, &em), 3);
    assert_float_equal(sc_val(&cap, "node_filefd_allocated"), 1351, 0);
    assert_float_equal(sc_val(&cap, "node_filefd_maximum"), 2466170, 0);
    assert_float_equal(sc_val(&cap, "lbwatch_host_filefd_used_ratio"), 1351.0 / 2466170, 1e-15);
    n = fixture(EDGE "filenr_short");
    assert_int_equal(lbw_hoststat_parse_filenr(fbuf, n, &em), 0);
    sc_reset(&cap);
    static const char zero_max[] = "12 0 0\n";
    assert_int_equal(lbw_hoststat_parse_filenr(zero_max, sizeof(zero_max) - 1, &em), 2);
    assert_true(isnan(sc_val(&cap, "lbwatch_host_filefd_used_ratio")));
}

static void netstat_real(void **state)
{
    (void)state;
    size_t n = fixture(HOST "net/snmp");
    lbw_hoststat_parse_netstat(fbuf, n, &em);
    assert_float_equal(sc_val(&cap, "node_netstat_Tcp_CurrEstab"), 31, 0);
    assert_float_equal(sc_val(&cap, "node_netstat_Tcp_ActiveOpens"), 312516, 0);
    assert_float_equal(sc_val(&cap, "node_netstat_Tcp_PassiveOpens"), 298546, 0);
    assert_float_equal(sc_val(&cap, "node_netstat_Tcp_RetransSegs"), 11160, 0);
    assert_float_equal(sc_val(&cap, "node_netstat_Tcp_InErrs"), 0, 0);
    assert_true(isnan(sc_val(&cap, "node_netstat_Tcp_MaxConn"))); /* not in the default set */
    assert_int_equal(sc_duplicates(&cap), 0);

    sc_reset(&cap);
    n = fixture(HOST "net/netstat");
    lbw_hoststat_parse_netstat(fbuf, n, &em);
    const char *want[] = {
        "node_netstat_TcpExt_ListenOverflows",  "node_netstat_TcpExt_ListenDrops",
        "node_netstat_TcpExt_SyncookiesSent",   "node_netstat_TcpExt_SyncookiesRecv",
        "node_netstat_TcpExt_SyncookiesFailed", "node_netstat_TcpExt_TCPTimeouts",
        "node_netstat_IpExt_InOctets",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        double v;
        if (!sc_get(&cap, want[i], &v))
            fail_msg("%s missing", want[i]);
    }
    assert_true(isnan(sc_val(&cap, "node_netstat_TcpExt_TW")));
}

static void netstat_by_name(void **state)
{
    (void)state;
    size_t n = fixture(EDGE "netstat_edge");
    assert_int_equal(lbw_hoststat_parse_netstat(fbuf, n, &em), 8);
    assert_float_equal(sc_val(&cap, "node_netstat_Tcp_CurrEstab"), 7, 0);
    assert_float_equal(sc_val(&cap, "node_netstat_Tcp_ActiveOpens"), 100, 0);
    assert_float_equal(sc_val(&cap, "node_netstat_Tcp_RetransSegs"), -3, 0);
    assert_float_equal(sc_val(&cap, "node_netstat_TcpExt_SyncookiesSent"), 1, 0);
    assert_float_equal(sc_val(&cap, "node_netstat_TcpExt_ListenDrops"), 2, 0);
    assert_float_equal(sc_val(&cap, "node_netstat_TcpExt_ListenOverflows"), 3, 0);
    assert_true(isnan(sc_val(&cap, "node_netstat_TcpExt_TCPTimeouts"))); /* no value column */
    assert_float_equal(sc_val(&cap, "node_netstat_Ip_Forwarding"), 1, 0);
    assert_float_equal(sc_val(&cap, "node_netstat_Tcp_PassiveOpens"), 18446744073709551615.0, 0);
    assert_true(isnan(sc_val(&cap, "node_netstat_Udp_NoPorts")));   /* header without values */
    assert_true(isnan(sc_val(&cap, "node_netstat_Icmp_InMsgs")));   /* cut off */
}

static void sockstat(void **state)
{
    (void)state;
    size_t n = fixture(HOST "net/sockstat");
    lbw_hoststat_parse_sockstat(fbuf, n, 4096, &em);
    assert_float_equal(sc_val(&cap, "node_sockstat_sockets_used"), 112, 0);
    assert_float_equal(sc_val(&cap, "node_sockstat_TCP_inuse"), 52, 0);
    assert_float_equal(sc_val(&cap, "node_sockstat_TCP_tw"), 332, 0);
    assert_float_equal(sc_val(&cap, "node_sockstat_TCP_mem"), 52, 0);
    assert_float_equal(sc_val(&cap, "node_sockstat_TCP_mem_bytes"), 52.0 * 4096, 0);
    assert_float_equal(sc_val(&cap, "node_sockstat_FRAG_memory"), 0, 0);
    sc_reset(&cap);
    n = fixture(HOST "net/sockstat6");
    lbw_hoststat_parse_sockstat(fbuf, n, 4096, &em);
    assert_float_equal(sc_val(&cap, "node_sockstat_TCP6_inuse"), 0, 0);
}

static void listening(void **state)
{
    (void)state;
    size_t n = fixture(HOST "net/tcp");
    assert_int_equal(lbw_hoststat_parse_tcp(fbuf, n, "ipv4", &em), 1);
    assert_float_equal(sc_val(&cap, "lbwatch_listening_sockets{family=\"ipv4\"}"), 5, 0);
    n = fixture(HOST "net/tcp6");
    lbw_hoststat_parse_tcp(fbuf, n, "ipv6", &em);
    assert_float_equal(sc_val(&cap, "lbwatch_listening_sockets{family=\"ipv6\"}"), 0, 0);
    sc_reset(&cap);
    n = fixture(EDGE "tcp_mixed");
    lbw_hoststat_parse_tcp(fbuf, n, "ipv4", &em);
    assert_float_equal(sc_val(&cap, "lbwatch_listening_sockets{family=\"ipv4\"}"), 2, 0);
}

static void collect_fixture_tree(void **state)
{
    (void)state;
    struct lbw_hoststat *h;
    char err[256];
    assert_int_equal(lbw_hoststat_new(&h, HOST, err, sizeof(err)), 0);
    assert_int_equal(lbw_hoststat_collect(h, &em, err, sizeof(err)), 0);
    assert_int_equal(lbw_hoststat_last_samples(h), cap.n);
    assert_int_equal(sc_duplicates(&cap), 0);
    assert_float_equal(sc_val(&cap, "node_load5"), 0.45, 1e-12);
    assert_float_equal(sc_val(&cap, "node_filefd_allocated"), 1351, 0);
    assert_float_equal(sc_val(&cap, "node_netstat_Tcp_CurrEstab"), 31, 0);
    assert_float_equal(sc_val(&cap, "lbwatch_listening_sockets{family=\"ipv4\"}"), 5, 0);
    assert_float_equal(sc_val(&cap, "node_intr_total"), 6783482, 0); /* a 2.6 KB line */
    /* "/" is measured for real: statvfs of this machine's root */
    double size = sc_val(&cap, "node_filesystem_size_bytes{device=\"/dev/vda\","
                               "fstype=\"ext4\",mountpoint=\"/\"}");
    assert_true(size > 0);
    lbw_hoststat_free(h);

    assert_int_equal(lbw_hoststat_new(&h, "/nonexistent", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "/nonexistent"));
}

/* Collects a proc root whose only file is stat, holding line. */
static void collect_stat(struct lbw_hoststat *h, const char *dir, const char *line)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/stat", dir);
    assert_int_equal(tu_write_file(path, line, strlen(line)), 0);
    char err[256];
    sc_reset(&cap);
    assert_true(lbw_hoststat_collect(h, &em, err, sizeof(err)) > 0); /* the others are missing */
}

static void cpu_counters_monotone(void **state)
{
    (void)state;
    char dir[256], err[256];
    struct lbw_hoststat *h;
    const char *idle0 = "node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"}";
    const char *iowait0 = "node_cpu_seconds_total{cpu=\"0\",mode=\"iowait\"}";
    const char *user0 = "node_cpu_seconds_total{cpu=\"0\",mode=\"user\"}";
    assert_int_equal(tu_tmpdir("lbw-hoststat", dir, sizeof(dir)), 0);
    assert_int_equal(lbw_hoststat_new(&h, dir, err, sizeof(err)), 0);

    collect_stat(h, dir, "cpu0 100 0 50 10000 500 0 0 0 0 0\n");
    assert_float_equal(sc_val(&cap, idle0), 10000.0 / sysconf(_SC_CLK_TCK), 1e-9);
    /* idle dips by less than a second and iowait dips: both held at their last values */
    long hz = sysconf(_SC_CLK_TCK);
    char line[256];
    snprintf(line, sizeof(line), "cpu0 200 0 60 %ld 400 0 0 0 0 0\n", 10000 - hz / 2);
    collect_stat(h, dir, line);
    assert_float_equal(sc_val(&cap, idle0), 10000.0 / hz, 1e-9);
    assert_float_equal(sc_val(&cap, iowait0), 500.0 / hz, 1e-9);
    assert_float_equal(sc_val(&cap, user0), 200.0 / hz, 1e-9);
    /* the parse function alone reports the file as it is */
    sc_reset(&cap);
    lbw_hoststat_parse_stat(line, strlen(line), hz, &em);
    assert_float_equal(sc_val(&cap, iowait0), 400.0 / hz, 1e-9);
    /* idle drops by ten seconds: a hot-plugged CPU, counters start again */
    snprintf(line, sizeof(line), "cpu0 5 0 1 %ld 2 0 0 0 0 0\n", 10000 - 10 * hz);
    collect_stat(h, dir, line);
    assert_float_equal(sc_val(&cap, idle0), (10000.0 - 10 * hz) / hz, 1e-9);
    assert_float_equal(sc_val(&cap, user0), 5.0 / hz, 1e-9);

    lbw_hoststat_free(h);
    tu_rmrf(dir);
}

/* The CPU busy ratio: every mode but idle and iowait over all of them, summed over the CPUs
 * seen in both collections; none on the first collection, when no time passed, or when
 * every CPU started again; a CPU that started again (hot-plug) or is new is left out. */
static void cpu_busy_ratio(void **state)
{
    (void)state;
    char dir[256], err[256], line[512];
    struct lbw_hoststat *h;
    const char *busy = "lbwatch_host_cpu_busy_ratio";
    long hz = sysconf(_SC_CLK_TCK);
    assert_int_equal(tu_tmpdir("lbw-hoststat", dir, sizeof(dir)), 0);
    assert_int_equal(lbw_hoststat_new(&h, dir, err, sizeof(err)), 0);

    /* fields: user nice system idle iowait irq softirq steal guest guest_nice */
    collect_stat(h, dir, "cpu  0 0 0 0 0 0 0 0 0 0\n"
                         "cpu0 1000 0 500 10000 100 0 0 0 50 0\n"
                         "cpu1 2000 10 500 20000 100 0 0 0 0 0\n");
    assert_true(isnan(sc_val(&cap, busy)));             /* nothing to compare with yet */
    collect_stat(h, dir, "cpu  0 0 0 0 0 0 0 0 0 0\n"
                         "cpu0 1000 0 500 10000 100 0 0 0 50 0\n"
                         "cpu1 2000 10 500 20000 100 0 0 0 0 0\n");
    assert_true(isnan(sc_val(&cap, busy)));             /* no time passed */
    /* cpu0: user +60 system +20 idle +100 iowait +20 irq +10 softirq +5 steal +5 guest +40
     * (guest is already in user): busy 100 of 220; cpu1: user +30 idle +150: 30 of 180 */
    collect_stat(h, dir, "cpu  0 0 0 0 0 0 0 0 0 0\n"
                         "cpu0 1060 0 520 10100 120 10 5 5 90 0\n"
                         "cpu1 2030 10 500 20150 100 0 0 0 0 0\n");
    assert_float_equal(sc_val(&cap, busy), 130.0 / 400.0, 1e-12);
    /* iowait dips on cpu0 (held, so +0), and cpu2 appears (no previous reading: left out) */
    collect_stat(h, dir, "cpu0 1160 0 520 10200 110 10 5 5 90 0\n"
                         "cpu1 2030 10 500 20150 100 0 0 0 0 0\n"
                         "cpu2 5 0 5 10 0 0 0 0 0 0\n");
    assert_float_equal(sc_val(&cap, busy), 100.0 / 200.0, 1e-12);
    /* cpu0 was unplugged and came back (idle dropped by 10 s): only cpu1 and cpu2 count */
    snprintf(line, sizeof(line), "cpu0 5 0 1 %ld 2 0 0 0 0 0\n"
                                 "cpu1 2030 10 500 20250 100 0 0 0 0 0\n"
                                 "cpu2 55 0 5 60 0 0 0 0 0 0\n", 10200 - 10 * hz);
    collect_stat(h, dir, line);
    assert_float_equal(sc_val(&cap, busy), 50.0 / 200.0, 1e-12);
    /* every CPU starts again: no ratio */
    collect_stat(h, dir, "cpu0 1 0 0 1 0 0 0 0 0 0\n");
    assert_true(isnan(sc_val(&cap, busy)));
    lbw_hoststat_free(h);
    tu_rmrf(dir);
}

static double sum_prefix(const struct samplecap *c, const char *prefix)
{
    double s = 0;
    for (size_t i = 0; i < c->n; i++)
        if (strncmp(c->s[i].key, prefix, strlen(prefix)) == 0)
            s += c->s[i].value;
    return s;
}

static void collect_live(void **state)
{
    (void)state;
    struct lbw_hoststat *h;
    char err[256];
    long ncpu = sysconf(_SC_NPROCESSORS_CONF);

    /* a listening socket of our own, so the count cannot be zero */
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_true(lfd >= 0);
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(lfd, 4), 0);

    assert_int_equal(lbw_hoststat_new(&h, NULL, err, sizeof(err)), 0);
    int failed = lbw_hoststat_collect(h, &em, err, sizeof(err));
    if (failed)
        fail_msg("%d sources failed: %s", failed, err);
    assert_int_equal(cap.dropped, 0);
    assert_int_equal(sc_duplicates(&cap), 0);

    double total = sc_val(&cap, "node_memory_MemTotal_bytes");
    double avail = sc_val(&cap, "node_memory_MemAvailable_bytes");
    double freeb = sc_val(&cap, "node_memory_MemFree_bytes");
    assert_true(total > 0 && avail > 0 && freeb > 0);
    assert_true(avail <= total && freeb <= total);
    assert_true(sc_val(&cap, "node_memory_SwapFree_bytes") <= sc_val(&cap,
                "node_memory_SwapTotal_bytes"));
    assert_true(sc_val(&cap, "node_filefd_allocated") <= sc_val(&cap, "node_filefd_maximum"));
    assert_true(sc_val(&cap, "lbwatch_listening_sockets{family=\"ipv4\"}") >= 1);
    assert_true(sc_val(&cap, "node_load1") >= 0);
    assert_int_equal(sc_count_prefix(&cap, "node_cpu_seconds_total{"), (size_t)ncpu * 8);
    assert_true(sc_count_prefix(&cap, "node_filesystem_size_bytes{") >= 1);
    assert_true(sc_val(&cap, "node_netstat_Tcp_ActiveOpens") >= 0);
    double boot = sc_val(&cap, "node_boot_time_seconds");
    assert_true(boot > 1e9 && boot < (double)time(NULL));

    /* counters never go backwards between two reads */
    struct samplecap first = cap;
    struct samplecap second;
    sc_init(&second);
    struct lbw_emitter e2 = sc_emitter(&second);
    double busy = 0;
    for (int i = 0; i < 2000000; i++)
        busy += sqrt((double)i); /* let some CPU time pass */
    assert_true(busy > 0);
    assert_int_equal(lbw_hoststat_collect(h, &e2, err, sizeof(err)), 0);
    size_t compared = 0;
    for (size_t i = 0; i < first.n; i++) {
        if (strncmp(first.s[i].key, "node_cpu_seconds_total{", 23) != 0)
            continue;
        double later;
        assert_true(sc_get(&second, first.s[i].key, &later));
        if (later < first.s[i].value)
            fail_msg("%s went from %f to %f", first.s[i].key, first.s[i].value, later);
        compared++;
    }
    assert_int_equal(compared, (size_t)ncpu * 8);
    assert_true(sum_prefix(&second, "node_cpu_seconds_total{") >=
                sum_prefix(&first, "node_cpu_seconds_total{"));
    /* the derived gauges are shares; the CPU's needs the second collection (if a tick passed) */
    assert_true(isnan(sc_val(&first, "lbwatch_host_cpu_busy_ratio")));
    double cpu = sc_val(&second, "lbwatch_host_cpu_busy_ratio");
    assert_true(isnan(cpu) || (cpu >= 0 && cpu <= 1));
    double mem = sc_val(&second, "lbwatch_host_memory_available_ratio");
    assert_true(mem > 0 && mem <= 1);
    double fds = sc_val(&second, "lbwatch_host_filefd_used_ratio");
    assert_true(fds > 0 && fds <= 1);
    sc_free(&second);
    lbw_hoststat_free(h);
    close(lfd);
}

/* The number /proc/net/tcp{,6} gives: streams the files through the parse function. */
static int listening_from_files(double out[2])
{
    static char big[16 << 20];
    const char *paths[] = {"/proc/net/tcp", "/proc/net/tcp6"};
    const char *fam[] = {"ipv4", "ipv6"};
    char key[64];
    for (int i = 0; i < 2; i++) {
        int trunc;
        ssize_t n = lbw_procfs_read(AT_FDCWD, paths[i], big, sizeof(big), &trunc);
        if (n < 0 || trunc)
            return -1;
        sc_reset(&cap);
        lbw_hoststat_parse_tcp(big, (size_t)n, fam[i], &em);
        snprintf(key, sizeof(key), "lbwatch_listening_sockets{family=\"%s\"}", fam[i]);
        out[i] = sc_val(&cap, key);
    }
    return 0;
}

static void listening_netlink_matches_files(void **state)
{
    (void)state;
    char err[256], buf[65536];
    uint32_t seq = 0;
    int fd = lbw_sockdiag_socket(0);
    assert_true(fd >= 0);
    /* other processes open and close listeners meanwhile: agree once in a few tries */
    int agreed = 0;
    uint64_t nl[2];
    double files[2];
    for (int attempt = 0; attempt < 10 && !agreed; attempt++) {
        assert_int_equal(lbw_sockdiag_count_listening(fd, &seq, buf, sizeof(buf), nl, err,
                                                      sizeof(err)), 0);
        assert_int_equal(listening_from_files(files), 0);
        agreed = files[0] == (double)nl[0] && files[1] == (double)nl[1];
    }
    if (!agreed)
        fail_msg("netlink %llu/%llu, /proc/net/tcp %g/%g", (unsigned long long)nl[0],
                 (unsigned long long)nl[1], files[0], files[1]);
    assert_true(nl[0] >= 1 || nl[1] >= 1); /* sshd, test servers: something listens */
    close(fd);
}

int main(void)
{
    sc_init(&cap);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(stat_real, setup),
        cmocka_unit_test_setup(stat_edge, setup),
        cmocka_unit_test_setup(loadavg, setup),
        cmocka_unit_test_setup(meminfo_real, setup),
        cmocka_unit_test_setup(meminfo_edge, setup),
        cmocka_unit_test_setup(diskstats, setup),
        cmocka_unit_test(disk_exclusions),
        cmocka_unit_test_setup(mounts, setup),
        cmocka_unit_test_setup(filesystem_modes, setup),
        cmocka_unit_test(fs_exclusions),
        cmocka_unit_test_setup(filenr, setup),
        cmocka_unit_test_setup(netstat_real, setup),
        cmocka_unit_test_setup(netstat_by_name, setup),
        cmocka_unit_test_setup(sockstat, setup),
        cmocka_unit_test_setup(listening, setup),
        cmocka_unit_test_setup(collect_fixture_tree, setup),
        cmocka_unit_test_setup(cpu_counters_monotone, setup),
        cmocka_unit_test_setup(cpu_busy_ratio, setup),
        cmocka_unit_test_setup(collect_live, setup),
        cmocka_unit_test_setup(listening_netlink_matches_files, setup),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    sc_free(&cap);
    return rc;
}
