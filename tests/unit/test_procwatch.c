/* test_procwatch.c - process watches: the /proc parsers on captured and hand-made files (a comm
 * holding ") (" or a newline, truncated lines, numbers beyond 64 bits), restarts and pidfile
 * groups over a fake /proc tree, and the live system: this test process found by name with
 * CPU, RSS, descriptors and limits that agree with getrusage/getrlimit, and a pidfile watch
 * over real children that die and are replaced. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "probes/procfs.h"
#include "probes/procwatch.h"
#include "tests/support/samplecap.h"
#include "tests/support/testutil.h"

#define PID "tests/fixtures/proc/pid/"

static char fbuf[16384];

static size_t fixture(const char *path)
{
    ssize_t n = lbw_procfs_read(AT_FDCWD, path, fbuf, sizeof(fbuf), NULL);
    if (n < 0)
        fail_msg("cannot read fixture %s", path);
    return (size_t)n;
}

/* --- parsers -------------------------------------------------------------------------------- */

static void stat_lines(void **state)
{
    (void)state;
    struct lbw_proc_stat s;
    size_t n = fixture(PID "stat_bash");
    assert_int_equal(lbw_procwatch_parse_stat(fbuf, n, &s), 0);
    assert_int_equal(s.pid, 28432);
    assert_string_equal(s.comm, "bash");
    assert_int_equal(s.state, 'S');
    assert_int_equal(s.ppid, 28427);
    assert_int_equal(s.flags, 4194560);
    assert_int_equal(s.utime, 3);
    assert_int_equal(s.stime, 7);
    assert_int_equal(s.starttime, 1139944);
    assert_int_equal(s.rss_pages, 1050);

    n = fixture(PID "stat_paren");
    assert_int_equal(lbw_procwatch_parse_stat(fbuf, n, &s), 0);
    assert_string_equal(s.comm, "a) (b) c");
    assert_int_equal(s.ppid, 1);
    assert_int_equal(s.utime, 250);
    assert_int_equal(s.stime, 130);
    assert_int_equal(s.starttime, 98765);
    assert_int_equal(s.rss_pages, 2048);

    n = fixture(PID "stat_newline_comm");
    assert_int_equal(lbw_procwatch_parse_stat(fbuf, n, &s), 0);
    assert_string_equal(s.comm, "we\nird");
    assert_true(s.utime == UINT64_MAX);
    assert_int_equal(s.starttime, 5);
    assert_int_equal(s.rss_pages, 0); /* negative rss reads as none */

    n = fixture(PID "stat_truncated");
    assert_int_equal(lbw_procwatch_parse_stat(fbuf, n, &s), -1);
    n = fixture(PID "stat_overflow");
    assert_int_equal(lbw_procwatch_parse_stat(fbuf, n, &s), -1);

    const char *bad[] = {"", "abc", "(x) S 1", "12 (x", "0 (x) S 1 1 1 0 -1 0 0 0 0 0 1 1 0 0 "
                         "20 0 1 0 5 1 1\n", "12(x) S", "12 (x) SS 1 1 1 0 -1 0 0 0 0 0 1 1 0 0 "
                         "20 0 1 0 5 1 1\n", "12 (x) S -1 1 1 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 "
                         "5 1 1\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (lbw_procwatch_parse_stat(bad[i], strlen(bad[i]), &s) != -1)
            fail_msg("accepted %s", bad[i]);
    char longcomm[200];
    snprintf(longcomm, sizeof(longcomm), "5 (%070d) S 1 1 1 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 5 1 "
             "1\n", 0);
    assert_int_equal(lbw_procwatch_parse_stat(longcomm, strlen(longcomm), &s), -1);
}

static void argv0(void **state)
{
    (void)state;
    char out[LBW_PROCWATCH_NAME_MAX];
    size_t n = fixture(PID "cmdline_haproxy");
    assert_int_equal(lbw_procwatch_parse_argv0(fbuf, n, out, sizeof(out)), 0);
    assert_string_equal(out, "haproxy");
    n = fixture(PID "cmdline_bash");
    assert_int_equal(lbw_procwatch_parse_argv0(fbuf, n, out, sizeof(out)), 0);
    assert_string_equal(out, "bash");
    /* a rewritten title: argv[0] is the whole title, its basename what follows the last '/' */
    n = fixture(PID "cmdline_nginx_title");
    assert_int_equal(lbw_procwatch_parse_argv0(fbuf, n, out, sizeof(out)), 0);
    assert_string_equal(out, "nginx -g daemon on; master_process on;");
    assert_int_equal(lbw_procwatch_parse_argv0("", 0, out, sizeof(out)), -1);
    assert_int_equal(lbw_procwatch_parse_argv0("\0x", 2, out, sizeof(out)), -1);
    assert_int_equal(lbw_procwatch_parse_argv0("/usr/bin/\0", 10, out, sizeof(out)), -1);
    assert_int_equal(lbw_procwatch_parse_argv0("noterm", 6, out, sizeof(out)), 0);
    assert_string_equal(out, "noterm");
    assert_int_equal(lbw_procwatch_parse_argv0("/x/abcdef", 9, out, 4), -1);
}

static void limits_and_pidfiles(void **state)
{
    (void)state;
    uint64_t soft;
    size_t n = fixture(PID "limits_real");
    assert_int_equal(lbw_procwatch_parse_limits(fbuf, n, &soft), 0);
    assert_int_equal(soft, 20000);
    n = fixture(PID "limits_unlimited");
    assert_int_equal(lbw_procwatch_parse_limits(fbuf, n, &soft), -1);
    const char odd[] = "Max open filesystems     5   5  x\nMax open files 7 9 files";
    assert_int_equal(lbw_procwatch_parse_limits(odd, sizeof(odd) - 1, &soft), -1);

    int pid;
    assert_int_equal(lbw_procwatch_parse_pidfile("123\n", 4, &pid), 0);
    assert_int_equal(pid, 123);
    assert_int_equal(lbw_procwatch_parse_pidfile("  42 \r\n", 7, &pid), 0);
    assert_int_equal(pid, 42);
    const char *bad[] = {"", "\n", "12a", "0", "-5", "12 13", "99999999999", "2147483648"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(lbw_procwatch_parse_pidfile(bad[i], strlen(bad[i]), &pid), -1);
    assert_int_equal(lbw_procwatch_parse_pidfile("2147483647", 10, &pid), 0);
}

static void bad_specs(void **state)
{
    (void)state;
    struct lbw_procwatch *w;
    char err[256];
    struct lbw_procwatch_spec none[] = {{"x", NULL, NULL}};
    assert_int_equal(lbw_procwatch_new(&w, none, 1, NULL, err, sizeof(err)), -1);
    assert_int_equal(lbw_procwatch_new(&w, none, 0, NULL, err, sizeof(err)), -1);
    struct lbw_procwatch_spec twice[] = {{NULL, "nginx", NULL}, {"nginx", "haproxy", NULL}};
    assert_int_equal(lbw_procwatch_new(&w, twice, 2, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "repeats"));
    struct lbw_procwatch_spec ok[] = {{NULL, "nginx", NULL}};
    assert_int_equal(lbw_procwatch_new(&w, ok, 1, "/nonexistent", err, sizeof(err)), -1);
}

/* --- a fake /proc --------------------------------------------------------------------------- */

struct fake {
    char dir[256];
};

static void fake_file(const struct fake *f, const char *rel, const void *data, size_t len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", f->dir, rel);
    assert_int_equal(tu_write_file(path, data, len), 0);
}

static void fake_text(const struct fake *f, const char *rel, const char *text)
{
    fake_file(f, rel, text, strlen(text));
}

/* /proc/PID with stat, cmdline and nfds entries under fd/. */
static void fake_proc(const struct fake *f, int pid, const char *comm, int ppid,
                      unsigned long start, unsigned long ut, unsigned long st, long rss,
                      const char *argv, size_t argvlen, int nfds)
{
    char rel[64], text[512], path[400];
    snprintf(path, sizeof(path), "%s/%d", f->dir, pid);
    tu_rmrf(path);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/%d/fd", f->dir, pid);
    assert_int_equal(mkdir(path, 0700), 0);
    for (int i = 0; i < nfds; i++) {
        snprintf(rel, sizeof(rel), "%d/fd/%d", pid, i);
        fake_file(f, rel, "", 0);
    }
    snprintf(text, sizeof(text), "%d (%s) S %d %d %d 0 -1 4194560 0 0 0 0 %lu %lu 0 0 20 0 1 0 "
             "%lu 1000 %ld 0 0\n", pid, comm, ppid, pid, pid, ut, st, start, rss);
    snprintf(rel, sizeof(rel), "%d/stat", pid);
    fake_file(f, rel, text, strlen(text));
    snprintf(rel, sizeof(rel), "%d/cmdline", pid);
    fake_file(f, rel, argv, argvlen);
    const char lim[] = "Limit  Soft Limit  Hard Limit  Units\nMax open files  1024  4096  files\n";
    snprintf(rel, sizeof(rel), "%d/limits", pid);
    fake_file(f, rel, lim, sizeof(lim) - 1);
}

static void fake_gone(const struct fake *f, int pid)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/%d", f->dir, pid);
    tu_rmrf(path);
}

static void fake_restarts(void **state)
{
    (void)state;
    struct fake f;
    char err[256];
    long hz = sysconf(_SC_CLK_TCK);
    assert_int_equal(tu_tmpdir("lbw-procwatch", f.dir, sizeof(f.dir)), 0);
    fake_text(&f, "stat", "cpu 1 2 3\nbtime 1700000000\n");
    fake_proc(&f, 100, "fakesrv", 1, 500, 30, 20, 10, "/usr/sbin/fakesrv\0-d\0", 21, 3);
    fake_proc(&f, 101, "fakesrv", 100, 600, 5, 5, 20, "/usr/sbin/fakesrv\0", 18, 9);
    fake_proc(&f, 102, "python3", 1, 700, 1, 1, 1, "/opt/bin/long-name-daemon-x\0a\0", 30, 1);
    fake_proc(&f, 103, "other", 1, 400, 1, 1, 1, "other\0", 6, 0);

    struct lbw_procwatch *w;
    struct lbw_procwatch_spec specs[] = {
        {NULL, "fakesrv", NULL},
        {"daemon", "long-name-daemon-x", NULL},
        {NULL, "absent", NULL},
    };
    assert_int_equal(lbw_procwatch_new(&w, specs, 3, f.dir, err, sizeof(err)), 0);
    assert_int_equal(lbw_procwatch_scan(w), 0);
    const struct lbw_procwatch_status *s = lbw_procwatch_status(w, 0);
    assert_int_equal(s->up, 1);
    assert_int_equal(s->count, 2);
    assert_int_equal(s->main_pid, 100); /* the oldest */
    assert_float_equal(s->cpu_seconds, 60.0 / hz, 1e-9);
    assert_float_equal(s->resident_bytes, 30.0 * sysconf(_SC_PAGESIZE), 0);
    assert_int_equal(s->open_fds, 9);   /* the fullest, counted entry by entry */
    assert_int_equal(s->max_fds, 1024);
    assert_float_equal(s->start_time_seconds, 1700000000.0 + 500.0 / hz, 1e-6);
    assert_int_equal(s->restarts, 0);
    assert_int_equal(lbw_procwatch_status(w, 1)->up, 1); /* by argv[0]: comm is python3 */
    assert_int_equal(lbw_procwatch_status(w, 1)->main_pid, 102);
    assert_int_equal(lbw_procwatch_status(w, 2)->up, 0);
    assert_null(lbw_procwatch_status(w, 3));

    struct samplecap cap;
    sc_init(&cap);
    struct lbw_emitter e = sc_emitter(&cap);
    assert_int_equal(lbw_procwatch_emit(w, &e), 9 + 9 + 3);
    assert_float_equal(sc_val(&cap, "lbwatch_process_up{process=\"fakesrv\"}"), 1, 0);
    assert_float_equal(sc_val(&cap, "lbwatch_process_count{process=\"fakesrv\"}"), 2, 0);
    assert_float_equal(sc_val(&cap, "lbwatch_process_open_fds{process=\"fakesrv\"}"), 9, 0);
    assert_float_equal(sc_val(&cap, "lbwatch_process_max_fds{process=\"fakesrv\"}"), 1024, 0);
    assert_float_equal(sc_val(&cap, "lbwatch_process_fds_used_ratio{process=\"fakesrv\"}"),
                       9.0 / 1024, 1e-15);
    assert_float_equal(sc_val(&cap, "lbwatch_process_up{process=\"daemon\"}"), 1, 0);
    assert_float_equal(sc_val(&cap, "lbwatch_process_up{process=\"absent\"}"), 0, 0);
    assert_float_equal(sc_val(&cap, "lbwatch_process_restarts_total{process=\"absent\"}"), 0, 0);
    assert_true(isnan(sc_val(&cap, "lbwatch_process_cpu_seconds_total{process=\"absent\"}")));

    /* a worker replaced: not a restart */
    fake_gone(&f, 101);
    fake_proc(&f, 105, "fakesrv", 100, 900, 0, 0, 20, "fakesrv\0", 8, 1);
    assert_int_equal(lbw_procwatch_scan(w), 0);
    assert_int_equal(s->restarts, 0);
    assert_int_equal(s->main_pid, 100);
    /* the master replaced by another PID: a restart */
    fake_gone(&f, 100);
    fake_gone(&f, 105);
    fake_proc(&f, 200, "fakesrv", 1, 5000, 1, 1, 10, "fakesrv\0", 8, 2);
    assert_int_equal(lbw_procwatch_scan(w), 0);
    assert_int_equal(s->restarts, 1);
    assert_int_equal(s->main_pid, 200);
    assert_int_equal(lbw_procwatch_scan(w), 0);
    assert_int_equal(s->restarts, 1); /* the same process again */
    /* the same PID, started again (PID reuse): a restart */
    fake_proc(&f, 200, "fakesrv", 1, 6000, 1, 1, 10, "fakesrv\0", 8, 2);
    assert_int_equal(lbw_procwatch_scan(w), 0);
    assert_int_equal(s->restarts, 2);
    /* down, then up again: one more */
    fake_gone(&f, 200);
    assert_int_equal(lbw_procwatch_scan(w), 0);
    assert_int_equal(s->up, 0);
    assert_int_equal(s->count, 0);
    assert_int_equal(s->restarts, 2);
    fake_proc(&f, 300, "fakesrv", 1, 7000, 1, 1, 10, "fakesrv\0", 8, 2);
    assert_int_equal(lbw_procwatch_scan(w), 0);
    assert_int_equal(s->restarts, 3);
    assert_int_equal(s->up, 1);

    sc_free(&cap);
    lbw_procwatch_free(w);
    tu_rmrf(f.dir);
}

static void fake_pidfiles(void **state)
{
    (void)state;
    struct fake f;
    char err[256], pidfile[300], stale[300], junk[300];
    assert_int_equal(tu_tmpdir("lbw-procwatch", f.dir, sizeof(f.dir)), 0);
    fake_text(&f, "stat", "btime 1700000000\n");
    fake_proc(&f, 300, "nginx", 1, 100, 10, 0, 100, "nginx: master\0", 14, 4);
    fake_proc(&f, 301, "nginx", 300, 101, 20, 0, 50, "nginx: worker\0", 14, 40);
    fake_proc(&f, 302, "nginx", 300, 102, 30, 0, 50, "nginx: worker\0", 14, 7);
    fake_proc(&f, 400, "nginx", 1, 50, 1, 0, 1, "nginx\0", 6, 0); /* another instance */
    fake_proc(&f, 500, "bash", 1, 10, 1, 0, 1, "bash\0", 5, 0);
    fake_text(&f, "nginx.pid", "300\n");
    fake_text(&f, "stale.pid", "500\n");
    fake_text(&f, "junk.pid", "300x\n");
    snprintf(pidfile, sizeof(pidfile), "%s/nginx.pid", f.dir);
    snprintf(stale, sizeof(stale), "%s/stale.pid", f.dir);
    snprintf(junk, sizeof(junk), "%s/junk.pid", f.dir);

    struct lbw_procwatch *w;
    struct lbw_procwatch_spec specs[] = {
        {"web", NULL, pidfile},
        {"web-checked", "nginx", pidfile},
        {"stale", "nginx", stale},
        {"junk", NULL, junk},
        {"missing", NULL, "/nonexistent/x.pid"},
    };
    assert_int_equal(lbw_procwatch_new(&w, specs, 5, f.dir, err, sizeof(err)), 0);
    assert_int_equal(lbw_procwatch_scan(w), 0);
    for (size_t i = 0; i < 2; i++) {
        const struct lbw_procwatch_status *s = lbw_procwatch_status(w, i);
        assert_int_equal(s->up, 1);
        assert_int_equal(s->main_pid, 300);
        assert_int_equal(s->count, 3); /* 400 is not a child of the pidfile's PID */
        assert_int_equal(s->open_fds, 40);
        assert_float_equal(s->start_time_seconds,
                           1700000000.0 + 100.0 / sysconf(_SC_CLK_TCK), 1e-6);
    }
    for (size_t i = 2; i < 5; i++) {
        assert_int_equal(lbw_procwatch_status(w, i)->up, 0);
        assert_int_equal(lbw_procwatch_status(w, i)->count, 0);
    }
    /* nginx reloaded into a new master */
    fake_text(&f, "nginx.pid", "400\n");
    assert_int_equal(lbw_procwatch_scan(w), 0);
    assert_int_equal(lbw_procwatch_status(w, 0)->restarts, 1);
    assert_int_equal(lbw_procwatch_status(w, 0)->count, 1);
    lbw_procwatch_free(w);
    tu_rmrf(f.dir);
}

/* --- the live system ------------------------------------------------------------------------ */

static double rusage_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void live_self_by_name(void **state)
{
    (void)state;
    char name[16], err[256];
    snprintf(name, sizeof(name), "lbwpw%d", (int)getpid() % 1000000);
    assert_int_equal(prctl(PR_SET_NAME, name, 0, 0, 0), 0);

    struct lbw_procwatch *w;
    struct lbw_procwatch_spec spec = {"self", name, NULL};
    assert_int_equal(lbw_procwatch_new(&w, &spec, 1, NULL, err, sizeof(err)), 0);

    volatile double burn = 0;
    for (int i = 0; i < 20000000; i++)
        burn += i * 0.5;
    assert_int_equal(lbw_procwatch_scan(w), 0);
    double ru_after = rusage_cpu();
    const struct lbw_procwatch_status *s = lbw_procwatch_status(w, 0);
    assert_int_equal(s->up, 1);
    assert_int_equal(s->count, 1);
    assert_int_equal(s->main_pid, getpid());
    assert_true(s->cpu_seconds > 0);
    if (s->cpu_seconds > ru_after + 0.02)
        fail_msg("cpu %.3f s > getrusage %.3f s", s->cpu_seconds, ru_after);

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    assert_true(s->resident_bytes > 0);
    if (s->resident_bytes > (double)ru.ru_maxrss * 1024)
        fail_msg("rss %.0f > peak %ld KiB", s->resident_bytes, ru.ru_maxrss);

    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    assert_int_equal(s->max_fds, (int64_t)rl.rlim_cur);

    time_t now = time(NULL);
    assert_true(s->start_time_seconds <= (double)now + 1);
    assert_true(s->start_time_seconds > (double)now - 600);

    /* N more descriptors are N more in the count */
    int64_t before = s->open_fds;
    assert_true(before >= 3);
    int fds[7];
    for (int i = 0; i < 7; i++)
        assert_true((fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0);
    assert_int_equal(lbw_procwatch_scan(w), 0);
    assert_int_equal(s->open_fds, before + 7);
    for (int i = 0; i < 7; i++)
        close(fds[i]);
    assert_int_equal(lbw_procwatch_scan(w), 0);
    assert_int_equal(s->open_fds, before);
    assert_int_equal(s->restarts, 0);
    lbw_procwatch_free(w);
}

/* Forks a process that forks one child of its own, both waiting to be killed; the caller gets
 * the first one's PID once both exist. They share a fresh process group. */
static pid_t spawn_pair(void)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_NAME, "lbwpw-child", 0, 0, 0);
        if (fork() == 0)
            for (;;)
                pause();
        (void)!write(p[1], "x", 1);
        for (;;)
            pause();
    }
    char c;
    close(p[1]);
    assert_int_equal(read(p[0], &c, 1), 1);
    close(p[0]);
    return pid;
}

static void kill_pair(pid_t pid)
{
    kill(-pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static void write_pidfile(const char *path, pid_t pid)
{
    char text[32];
    snprintf(text, sizeof(text), "%d\n", (int)pid);
    assert_int_equal(tu_write_file(path, text, strlen(text)), 0);
}

static void live_pidfile_restart(void **state)
{
    (void)state;
    char dir[256], pidfile[300], err[256];
    assert_int_equal(tu_tmpdir("lbw-procwatch", dir, sizeof(dir)), 0);
    snprintf(pidfile, sizeof(pidfile), "%s/srv.pid", dir);
    pid_t a = spawn_pair();
    write_pidfile(pidfile, a);

    struct lbw_procwatch *w;
    struct lbw_procwatch_spec specs[] = {{"srv", "lbwpw-child", pidfile},
                                         {"wrong", "haproxy", pidfile}};
    assert_int_equal(lbw_procwatch_new(&w, specs, 2, NULL, err, sizeof(err)), 0);
    assert_int_equal(lbw_procwatch_scan(w), 0);
    const struct lbw_procwatch_status *s = lbw_procwatch_status(w, 0);
    assert_int_equal(s->up, 1);
    assert_int_equal(s->main_pid, a);
    assert_int_equal(s->count, 2);
    assert_int_equal(s->restarts, 0);
    assert_int_equal(lbw_procwatch_status(w, 1)->up, 0); /* the PID is not haproxy */

    kill_pair(a);
    assert_int_equal(lbw_procwatch_scan(w), 0);
    assert_int_equal(s->up, 0);
    assert_int_equal(s->restarts, 0);

    pid_t b = spawn_pair();
    write_pidfile(pidfile, b);
    assert_int_equal(lbw_procwatch_scan(w), 0);
    assert_int_equal(s->up, 1);
    assert_int_equal(s->main_pid, b);
    assert_int_equal(s->restarts, 1);

    kill_pair(b);
    lbw_procwatch_free(w);
    tu_rmrf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stat_lines),
        cmocka_unit_test(argv0),
        cmocka_unit_test(limits_and_pidfiles),
        cmocka_unit_test(bad_specs),
        cmocka_unit_test(fake_restarts),
        cmocka_unit_test(fake_pidfiles),
        cmocka_unit_test(live_self_by_name),
        cmocka_unit_test(live_pidfile_restart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
