/* tls_probe.c - benchmark: TLS probe handshakes per CPU-second against `openssl s_time`.
 *
 * Starts `openssl s_server` on 127.0.0.1 with an EC P-256 certificate crafted by
 * lbw_pki_make_cert, then
 *   1. runs `openssl s_time -new` against it (full handshakes, verifying against the same CA
 *      file) and takes the child's CPU time (user + sys) from wait4();
 *   2. runs lbwatch TLS probes against it for the same wall time, PROBE_WINDOW in flight,
 *      and takes this process's CPU time from getrusage().
 * Prints both rates, their ratio (lbwatch / s_time; the target is >= 0.8) and lbwatch's probes
 * per wall-second. Every probe must succeed with a verified chain, or the run fails.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "node/pki.h"
#include "probes/tls.h"

#define SECONDS 10          /* each side's measuring window */
#define PROBE_WINDOW 8      /* lbwatch probes in flight */

struct bench {
    char dir[256];
    char ca[300], crt[300], key[300];
    uint16_t port;
    pid_t server;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(const struct rusage *ru)
{
    return (double)ru->ru_utime.tv_sec + (double)ru->ru_utime.tv_usec / 1e6 +
           (double)ru->ru_stime.tv_sec + (double)ru->ru_stime.tv_usec / 1e6;
}

/* --- set-up --------------------------------------------------------------------------------- */

static int craft(struct bench *b)
{
    char err[256];
    int64_t now = (int64_t)time(NULL);
    X509 *ca = NULL, *leaf = NULL;
    EVP_PKEY *ca_key = NULL, *leaf_key = NULL;
    struct lbw_cert_spec ca_spec = {.cn = "bench CA", .is_ca = 1, .not_before = now - 3600,
                                    .not_after = now + 86400, .key_alg = LBW_KEY_EC_P256};
    struct lbw_cert_spec leaf_spec = {.cn = "www.test", .not_before = now - 3600,
                                      .not_after = now + 86400, .dns = {"www.test"},
                                      .key_alg = LBW_KEY_EC_P256};
    int rc = lbw_pki_make_cert(&ca_spec, NULL, NULL, &ca, &ca_key, err, sizeof(err)) ||
             lbw_pki_make_cert(&leaf_spec, ca, ca_key, &leaf, &leaf_key, err, sizeof(err)) ||
             lbw_pki_write_cert(b->ca, ca, err, sizeof(err)) ||
             lbw_pki_write_cert(b->crt, leaf, err, sizeof(err)) ||
             lbw_pki_write_key(b->key, leaf_key, err, sizeof(err));
    if (rc)
        fprintf(stderr, "certificates: %s\n", err);
    X509_free(ca);
    X509_free(leaf);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(leaf_key);
    return rc ? -1 : 0;
}

static uint16_t free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    uint16_t port = 0;
    if (fd < 0)
        return 0;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* Forks argv with stdin from /dev/null and stdout to out_fd (-1: /dev/null). */
static pid_t spawn(char *const argv[], int out_fd)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(out_fd >= 0 ? out_fd : null, 1);
    dup2(null, 2);
    execvp(argv[0], argv);
    _exit(127);
}

static int wait_port(uint16_t port, int timeout_ms)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (int waited = 0; waited < timeout_ms; waited += 20) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        int rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
        close(fd);
        if (rc == 0)
            return 0;
        usleep(20000);
    }
    return -1;
}

static int start_server(struct bench *b)
{
    char accept[32];
    b->port = free_port();
    snprintf(accept, sizeof(accept), "127.0.0.1:%u", b->port);
    char *argv[] = {"openssl", "s_server", "-quiet", "-www", "-accept", accept,
                    "-cert", b->crt, "-key", b->key, NULL};
    b->server = spawn(argv, -1);
    if (b->server < 0 || wait_port(b->port, 10000) != 0) {
        fprintf(stderr, "openssl s_server did not start\n");
        return -1;
    }
    return 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void cleanup(struct bench *b)
{
    if (b->server > 0) {
        kill(b->server, SIGTERM);
        waitpid(b->server, NULL, 0);
    }
    nftw(b->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* --- openssl s_time ------------------------------------------------------------------------- */

struct measured {
    long count;
    double cpu, wall;
};

static int run_s_time(struct bench *b, struct measured *m)
{
    char connect[32], secs[16], out[8192];
    int pfd[2];
    snprintf(connect, sizeof(connect), "127.0.0.1:%u", b->port);
    snprintf(secs, sizeof(secs), "%d", SECONDS);
    char *argv[] = {"openssl", "s_time", "-connect", connect, "-new", "-time", secs,
                    "-CAfile", b->ca, NULL};
    if (pipe(pfd) != 0)
        return -1;
    double t0 = now_s();
    pid_t pid = spawn(argv, pfd[1]);
    close(pfd[1]);
    /* s_time prints a '*' per connection before its summary: keep the tail */
    size_t got = 0;
    ssize_t n;
    while ((n = read(pfd[0], out + got, sizeof(out) - 1 - got)) > 0 ||
           (n < 0 && errno == EINTR)) {
        got += n > 0 ? (size_t)n : 0;
        if (got == sizeof(out) - 1) {
            memmove(out, out + got / 2, got - got / 2);
            got -= got / 2;
        }
    }
    out[got] = '\0';
    close(pfd[0]);

    int status;
    struct rusage ru;
    if (pid < 0 || wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
        fprintf(stderr, "openssl s_time failed:\n%s\n", out);
        return -1;
    }
    m->wall = now_s() - t0;
    m->cpu = cpu_s(&ru);
    const char *line = strstr(out, " connections in ");
    if (!line) {
        fprintf(stderr, "openssl s_time: unexpected output:\n%s\n", out);
        return -1;
    }
    while (line > out && line[-1] >= '0' && line[-1] <= '9')
        line--;
    m->count = strtol(line, NULL, 10);
    return 0;
}

/* --- lbwatch probes ------------------------------------------------------------------------- */

struct probe_run {
    struct lbw_tls_prober *prober;
    struct lbw_tls_target target;
    double deadline;
    long done, failed;
    char first_error[300];
};

static void start_probe(struct probe_run *r);

static void on_probe(void *arg, const struct lbw_tls_result *res)
{
    struct probe_run *r = arg;
    r->done++;
    if (!res->success || !res->chain_verified || !res->hostname_match) {
        if (r->failed++ == 0)
            snprintf(r->first_error, sizeof(r->first_error), "%s%s", res->error,
                     res->success ? res->verify_error : "");
    }
    if (now_s() < r->deadline)
        start_probe(r);
}

static void start_probe(struct probe_run *r)
{
    if (lbw_tls_probe_start(r->prober, &r->target, on_probe, r) != 0)
        r->failed++;
}

static int run_probes(struct bench *b, struct measured *m)
{
    uv_loop_t loop;
    char err[256];
    struct probe_run r = {.target = {"127.0.0.1", b->port, "www.test", b->ca, 10000}};
    struct rusage ru0, ru1;

    uv_loop_init(&loop);
    if (lbw_tls_prober_new(&r.prober, &loop, err, sizeof(err)) != 0) {
        fprintf(stderr, "prober: %s\n", err);
        return -1;
    }
    getrusage(RUSAGE_SELF, &ru0);
    double t0 = now_s();
    r.deadline = t0 + SECONDS;
    for (int i = 0; i < PROBE_WINDOW; i++)
        start_probe(&r);
    uv_run(&loop, UV_RUN_DEFAULT);
    m->wall = now_s() - t0;
    getrusage(RUSAGE_SELF, &ru1);
    m->cpu = cpu_s(&ru1) - cpu_s(&ru0);
    m->count = r.done - r.failed;

    lbw_tls_prober_close(r.prober);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    if (r.failed) {
        fprintf(stderr, "%ld of %ld probes failed, first: %s\n", r.failed, r.done,
                r.first_error);
        return -1;
    }
    return 0;
}

int main(void)
{
    struct bench b = {.server = -1};
    struct measured st, lb;
    const char *tmp = getenv("TMPDIR");

    snprintf(b.dir, sizeof(b.dir), "%s/lbw-bench-tls.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(b.dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(b.ca, sizeof(b.ca), "%s/ca.crt", b.dir);
    snprintf(b.crt, sizeof(b.crt), "%s/leaf.crt", b.dir);
    snprintf(b.key, sizeof(b.key), "%s/leaf.key", b.dir);
    signal(SIGPIPE, SIG_IGN);

    int rc = craft(&b) || start_server(&b) || run_s_time(&b, &st) || run_probes(&b, &lb);
    cleanup(&b);
    if (rc)
        return 1;

    double st_rate = (double)st.count / st.cpu, lb_rate = (double)lb.count / lb.cpu;
    printf("tls handshakes, EC P-256, TLS 1.3, chain verified against the CA file:\n");
    printf("  openssl s_time: %6ld in %5.2f s wall, %5.2f CPU-s  %8.1f handshakes/CPU-s\n",
           st.count, st.wall, st.cpu, st_rate);
    printf("  lbwatch probe:  %6ld in %5.2f s wall, %5.2f CPU-s  %8.1f handshakes/CPU-s"
           "  %8.1f probes/wall-s (%d in flight)\n",
           lb.count, lb.wall, lb.cpu, lb_rate, (double)lb.count / lb.wall, PROBE_WINDOW);
    printf("  ratio lbwatch/s_time (CPU efficiency): %.2f (target >= 0.80)\n",
           lb_rate / st_rate);
    return 0;
}
