/* agent_collect.c - benchmark: what one collection cycle of the agent's host-side collectors
 * costs (probes/hoststat + probes/procwatch + probes/sockdiag).
 *
 * Runs CYCLES cycles on this machine in two settings: as it is, and with CONNS loopback TCP
 * connections established on the watched port (the cost of /proc/net/tcp in hoststat and of
 * the sock_diag dump grows with the sockets). For each it prints samples per cycle, CPU per
 * cycle (getrusage over the whole run, and per collector from the thread CPU clock), wall
 * time per cycle, the CPU of counting listening sockets through sock_diag (hoststat's way)
 * against reading /proc/net/tcp{,6} (its fallback), and at the end the peak RSS. Figures
 * only; the whole agent against node_exporter is bench/agent.py.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "probes/hoststat.h"
#include "probes/procfs.h"
#include "probes/procwatch.h"
#include "probes/sample.h"
#include "probes/sockdiag.h"

#define CYCLES 200
#define CONNS 4000

struct sink {
    uint64_t samples;
};

static void count_sample(void *arg, const char *key, int64_t ts_ms, double value)
{
    struct sink *s = arg;
    (void)key;
    (void)ts_ms;
    (void)value;
    s->samples++;
}

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double mono_s(void)
{
    return (double)lbw_mono_ns() / 1e9;
}

static double rusage_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

struct collectors {
    struct lbw_hoststat *host;
    struct lbw_procwatch *procs;
    struct lbw_sockdiag *diag;
};

/* --- loopback load -------------------------------------------------------------------------- */

struct load {
    int listener;
    uint16_t port;
    int *fds;     /* client and server end of each connection */
    size_t nfds;
};

static int listen_loopback(struct load *l)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    l->listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (l->listener < 0 || bind(l->listener, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        listen(l->listener, 4096) < 0 ||
        getsockname(l->listener, (struct sockaddr *)&a, &len) < 0)
        return -1;
    l->port = ntohs(a.sin_port);
    return 0;
}

/* Opens n connections to the listener, accepts each and exchanges a byte both ways so every
 * server end has an RTT measurement. */
static int connect_many(struct load *l, size_t n)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(l->port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    char c = 'x';
    l->fds = calloc(2 * n, sizeof(int));
    if (!l->fds)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (cfd < 0)
            return -1;
        l->fds[l->nfds++] = cfd;
        if (connect(cfd, (struct sockaddr *)&a, sizeof(a)) < 0)
            return -1;
        int sfd = accept(l->listener, NULL, NULL);
        if (sfd < 0)
            return -1;
        l->fds[l->nfds++] = sfd;
        if (write(cfd, &c, 1) != 1 || read(sfd, &c, 1) != 1 || write(sfd, &c, 1) != 1 ||
            read(cfd, &c, 1) != 1)
            return -1;
    }
    return 0;
}

static void close_load(struct load *l)
{
    for (size_t i = 0; i < l->nfds; i++)
        close(l->fds[i]);
    free(l->fds);
    l->fds = NULL;
    l->nfds = 0;
}

/* --- the measurement ------------------------------------------------------------------------ */

static int run(struct collectors *c, const char *setting, uint16_t port)
{
    static const struct lbw_label base[] = {{"vantage", "bench"}};
    struct sink sink = {0};
    struct lbw_emitter e = {count_sample, &sink, base, 1, 0};
    double cpu[3] = {0, 0, 0};
    char err[256];
    double ru0 = rusage_cpu_s(), wall0 = mono_s();
    for (int i = 0; i < CYCLES; i++) {
        e.ts_ms = lbw_now_ms();
        double t0 = thread_cpu_s();
        if (lbw_hoststat_collect(c->host, &e, err, sizeof(err)) != 0)
            fprintf(stderr, "hoststat: %s\n", err);
        double t1 = thread_cpu_s();
        if (lbw_procwatch_collect(c->procs, &e) < 0)
            fprintf(stderr, "procwatch: %s\n", strerror(errno));
        double t2 = thread_cpu_s();
        if (lbw_sockdiag_collect(c->diag, &e, err, sizeof(err)) < 0) {
            fprintf(stderr, "sockdiag: %s\n", err);
            return -1;
        }
        double t3 = thread_cpu_s();
        cpu[0] += t1 - t0;
        cpu[1] += t2 - t1;
        cpu[2] += t3 - t2;
    }
    double wall = mono_s() - wall0, ru = rusage_cpu_s() - ru0;
    const struct lbw_sockdiag_port *p = &lbw_sockdiag_tally(c->diag)->ports[0];
    printf("%-26s %6.0f samples/cycle  cpu %7.1f us/cycle (hoststat %7.1f, procwatch %7.1f, "
           "sockdiag %7.1f)  wall %7.1f us/cycle\n",
           setting, (double)sink.samples / CYCLES, ru / CYCLES * 1e6, cpu[0] / CYCLES * 1e6,
           cpu[1] / CYCLES * 1e6, cpu[2] / CYCLES * 1e6, wall / CYCLES * 1e6);
    printf("%-26s port %u: %u established, rtt p50 %.1f us p99 %.1f us max %.1f us\n", "",
           port, p->states[1], p->rtt_count ? lbw_sockdiag_rtt_quantile(p, 0.5) * 1e6 : 0,
           p->rtt_count ? lbw_sockdiag_rtt_quantile(p, 0.99) * 1e6 : 0, p->rtt_max * 1e6);
    return 0;
}

/* The two ways of counting listening sockets: a LISTEN-only sock_diag dump (what hoststat
 * does) against reading /proc/net/tcp{,6} (its fallback). Prints CPU per count of each. */
static int compare_listening(void)
{
    enum { ROUNDS = 20 };
    static const struct lbw_label base[] = {{"vantage", "bench"}};
    static char buf[65536];
    const size_t big_size = 64u << 20;
    char *big = malloc(big_size);
    struct sink sink = {0};
    struct lbw_emitter e = {count_sample, &sink, base, 1, 0};
    char err[256];
    uint64_t counts[2];
    uint32_t seq = 0;
    int fd = lbw_sockdiag_socket(0);
    if (!big || fd < 0) {
        free(big);
        return -1;
    }
    double t0 = thread_cpu_s();
    for (int i = 0; i < ROUNDS; i++)
        if (lbw_sockdiag_count_listening(fd, &seq, buf, sizeof(buf), counts, err,
                                         sizeof(err)) < 0) {
            fprintf(stderr, "count_listening: %s\n", err);
            break;
        }
    double t1 = thread_cpu_s();
    for (int i = 0; i < ROUNDS; i++) {
        const char *paths[] = {"/proc/net/tcp", "/proc/net/tcp6"};
        for (int f = 0; f < 2; f++) {
            ssize_t n = lbw_procfs_read(AT_FDCWD, paths[f], big, big_size, NULL);
            if (n > 0)
                lbw_hoststat_parse_tcp(big, (size_t)n, f ? "ipv6" : "ipv4", &e);
        }
    }
    double t2 = thread_cpu_s();
    printf("%-26s listening sockets %llu+%llu: sock_diag %7.1f us, /proc/net/tcp{,6} %8.1f us "
           "per count\n", "", (unsigned long long)counts[0], (unsigned long long)counts[1],
           (t1 - t0) / ROUNDS * 1e6, (t2 - t1) / ROUNDS * 1e6);
    close(fd);
    free(big);
    return 0;
}

static int make_collectors(struct collectors *c, uint16_t port)
{
    char err[256];
    struct lbw_procwatch_spec specs[] = {
        {"self", "agent_collect", NULL},
        {NULL, "haproxy", NULL},
        {NULL, "nginx", NULL},
    };
    uint16_t ports[] = {port, 443};
    if (lbw_hoststat_new(&c->host, NULL, err, sizeof(err)) < 0 ||
        lbw_procwatch_new(&c->procs, specs, 3, NULL, err, sizeof(err)) < 0 ||
        lbw_sockdiag_new(&c->diag, ports, 2, 0, err, sizeof(err)) < 0) {
        fprintf(stderr, "agent_collect: %s\n", err);
        return -1;
    }
    return 0;
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(void)
{
    struct collectors c = {0};
    struct load l = {.listener = -1};
    int rc = 1;
    raise_fd_limit();
    if (listen_loopback(&l) < 0 || make_collectors(&c, l.port) < 0) {
        fprintf(stderr, "agent_collect: set-up failed: %s\n", strerror(errno));
        goto out;
    }
    printf("agent_collect: %d cycles each of hoststat + procwatch (3 watches) + sockdiag "
           "(2 ports)\n", CYCLES);
    if (run(&c, "idle host", l.port) < 0 || compare_listening() < 0)
        goto out;
    if (connect_many(&l, CONNS) < 0) {
        fprintf(stderr, "agent_collect: %zu connections made, then: %s\n", l.nfds / 2,
                strerror(errno));
        goto out;
    }
    char setting[64];
    snprintf(setting, sizeof(setting), "%d loopback connections", CONNS);
    if (run(&c, setting, l.port) < 0 || compare_listening() < 0)
        goto out;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("peak RSS %ld KiB\n", ru.ru_maxrss);
    rc = 0;
out:
    close_load(&l);
    if (l.listener >= 0)
        close(l.listener);
    lbw_sockdiag_free(c.diag);
    lbw_procwatch_free(c.procs);
    lbw_hoststat_free(c.host);
    return rc;
}
