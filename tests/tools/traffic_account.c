/* traffic_account.c - test tool: runs the traffic accounting engine (probes/traffic) over a
 * capture file or a live interface and prints what it counted.
 *
 *   traffic_account [options] --file PCAP
 *   traffic_account [options] --live IFACE [--filter EXPR] [--write PCAP] [--seconds N]
 *
 * Options: --port N (a watched port, repeatable), --local ADDR[/PREFIX] (a local address,
 * repeatable; live captures default to the interface's own addresses, files to none),
 * --timeout-ms N (handshake timeout), --capacity N (handshake table entries).
 *
 * --live captures with probes/capture's live driver on a libuv loop until SIGINT/SIGTERM
 * or --seconds; it prints "capturing" on stderr once the capture is active, and with --write
 * records every packet it accounted into a pcap file (a recorder whose file holds exactly what
 * the live engine saw). At the end it drains what is queued and stops.
 *
 * Output on stdout: one "SERIES-KEY VALUE" line per sample of lbw_traffic_emit (and, live,
 * lbw_capture_emit), with base label vantage="test", then "packets N".
 * Exit status: 0, 1 on failure, 2 on bad usage, 77 when capturing is not permitted.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "probes/capture.h"
#include "probes/traffic.h"

#define EXIT_NOPERM 77

struct opts {
    const char *file, *live, *filter, *write;
    uint16_t ports[LBW_TRAFFIC_PORTS_MAX];
    size_t nports;
    struct lbw_netaddr local[LBW_TRAFFIC_LOCAL_MAX];
    size_t nlocal;
    unsigned seconds;
    struct lbw_hs_config hs;
};

struct live {
    uv_loop_t loop;
    uv_signal_t sigint, sigterm;
    uv_timer_t stop_timer;
    struct lbw_traffic *t;
    struct lbw_capture *cap;
    pcap_dumper_t *dump;
    int failed, stopped;
};

static void usage(FILE *out)
{
    fprintf(out, "usage: traffic_account [--port N]... [--local ADDR[/PREFIX]]...\n"
                 "                       [--timeout-ms N] [--capacity N]\n"
                 "                       (--file PCAP | --live IFACE [--filter EXPR]\n"
                 "                        [--write PCAP] [--seconds N])\n");
}

static void print_sample(void *arg, const char *key, int64_t ts_ms, double value)
{
    (void)arg;
    (void)ts_ms;
    printf("%s %.17g\n", key, value);
}

static void print_all(const struct lbw_traffic *t, const struct lbw_capture *c, uint64_t n)
{
    static const struct lbw_label base[] = {{"vantage", "test"}};
    struct lbw_emitter e = {.fn = print_sample, .base = base, .nbase = 1, .ts_ms = 0};
    lbw_traffic_emit(t, &e);
    if (c)
        lbw_capture_emit(c, &e);
    printf("packets %" PRIu64 "\n", n);
}

/* --- live ------------------------------------------------------------------------------------ */

/* Packets are only read while the loop runs, after the dumper was opened: none is missed. */
static void on_tap(void *arg, const struct pcap_pkthdr *h, const u_char *bytes)
{
    struct live *l = arg;
    if (l->dump)
        pcap_dump((u_char *)l->dump, h, bytes);
}

static void on_error(void *arg, const char *msg)
{
    struct live *l = arg;
    fprintf(stderr, "traffic_account: %s\n", msg);
    l->failed = 1;
}

/* Drains what is queued, prints the counts and closes everything: the loop then ends. */
static void stop(struct live *l)
{
    if (l->stopped)
        return;
    l->stopped = 1;
    if (lbw_capture_drain(l->cap) < 0)
        l->failed = 1;
    struct lbw_capture_stats st;
    lbw_capture_stats(l->cap, &st);
    print_all(l->t, l->cap, st.packets);
    if (l->dump)
        pcap_dump_close(l->dump);
    l->dump = NULL;
    lbw_capture_close(l->cap);
    l->cap = NULL;
    uv_close((uv_handle_t *)&l->sigint, NULL);
    uv_close((uv_handle_t *)&l->sigterm, NULL);
    uv_close((uv_handle_t *)&l->stop_timer, NULL);
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    stop(s->data);
}

static void on_stop_timer(uv_timer_t *t)
{
    stop(t->data);
}

static int start_live(struct live *l, const struct opts *o, struct lbw_traffic *t)
{
    char err[512];
    struct lbw_capture_opts co = {.iface = o->live, .filter = o->filter, .tap = on_tap,
                                  .tap_arg = l, .on_error = on_error, .error_arg = l};
    int r = lbw_capture_open(&l->cap, &l->loop, t, &co, err, sizeof(err));
    if (r != 0) {
        fprintf(stderr, "traffic_account: %s\n", err);
        return r == LBW_CAPTURE_EPERM ? EXIT_NOPERM : 1;
    }
    if (o->write) {
        l->dump = pcap_dump_open(lbw_capture_pcap(l->cap), o->write);
        if (!l->dump) {
            fprintf(stderr, "traffic_account: %s: %s\n", o->write,
                    pcap_geterr(lbw_capture_pcap(l->cap)));
            return 1;
        }
    }
    return 0;
}

static int run_live(const struct opts *o, struct lbw_traffic *t)
{
    struct live l;
    memset(&l, 0, sizeof(l));
    l.t = t;
    uv_loop_init(&l.loop);
    int rc = start_live(&l, o, t);
    if (rc == 0) {
        uv_signal_init(&l.loop, &l.sigint);
        uv_signal_init(&l.loop, &l.sigterm);
        uv_timer_init(&l.loop, &l.stop_timer);
        l.sigint.data = l.sigterm.data = l.stop_timer.data = &l;
        uv_signal_start(&l.sigint, on_signal, SIGINT);
        uv_signal_start(&l.sigterm, on_signal, SIGTERM);
        if (o->seconds)
            uv_timer_start(&l.stop_timer, on_stop_timer, (uint64_t)o->seconds * 1000, 0);
        fprintf(stderr, "capturing\n");
        uv_run(&l.loop, UV_RUN_DEFAULT);
        rc = l.failed ? 1 : 0;
    }
    if (l.dump)
        pcap_dump_close(l.dump);
    if (l.cap)
        lbw_capture_close(l.cap);
    uv_run(&l.loop, UV_RUN_DEFAULT);
    uv_loop_close(&l.loop);
    return rc;
}

/* --- options --------------------------------------------------------------------------------- */

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    if (!s || *s < '0' || *s > '9')
        return -1;
    *out = strtoul(s, &end, 10);
    return *end || *out > max ? -1 : 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"file", required_argument, NULL, 'f'},     {"live", required_argument, NULL, 'l'},
        {"filter", required_argument, NULL, 'F'},   {"write", required_argument, NULL, 'w'},
        {"seconds", required_argument, NULL, 's'},  {"port", required_argument, NULL, 'p'},
        {"local", required_argument, NULL, 'L'},    {"timeout-ms", required_argument, NULL, 't'},
        {"capacity", required_argument, NULL, 'c'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    unsigned long v;
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'f': o->file = optarg; break;
        case 'l': o->live = optarg; break;
        case 'F': o->filter = optarg; break;
        case 'w': o->write = optarg; break;
        case 's':
            if (parse_uint(optarg, 86400, &v) < 0)
                return -1;
            o->seconds = (unsigned)v;
            break;
        case 'p':
            if (o->nports == LBW_TRAFFIC_PORTS_MAX || parse_uint(optarg, 65535, &v) < 0)
                return -1;
            o->ports[o->nports++] = (uint16_t)v;
            break;
        case 'L':
            if (o->nlocal == LBW_TRAFFIC_LOCAL_MAX ||
                lbw_netaddr_parse(optarg, &o->local[o->nlocal]) < 0)
                return -1;
            o->nlocal++;
            break;
        case 't':
            if (parse_uint(optarg, 3600000, &v) < 0)
                return -1;
            o->hs.timeout_ms = (uint32_t)v;
            break;
        case 'c':
            if (parse_uint(optarg, 1u << 22, &v) < 0)
                return -1;
            o->hs.capacity = (uint32_t)v;
            break;
        case 'h': usage(stdout); exit(0);
        default: return -1;
        }
    }
    return optind == argc && (!o->file != !o->live) ? 0 : -1;
}

int main(int argc, char **argv)
{
    static struct opts o;
    if (parse_opts(argc, argv, &o) < 0) {
        usage(stderr);
        return 2;
    }
    char err[512];
    if (o.live && o.nlocal == 0) {
        int n = lbw_capture_local_addrs(o.live, o.local, LBW_TRAFFIC_LOCAL_MAX, err, sizeof(err));
        if (n < 0) {
            fprintf(stderr, "traffic_account: %s\n", err);
            return 1;
        }
        o.nlocal = (size_t)n;
    }
    o.hs.seed = 0x6c627761746368ull;
    struct lbw_traffic_config cfg = {.ports = o.ports, .nports = o.nports, .local = o.local,
                                     .nlocal = o.nlocal, .handshake = o.hs};
    struct lbw_traffic *t;
    if (lbw_traffic_new(&t, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "traffic_account: %s\n", err);
        return 1;
    }
    int rc = 0;
    if (o.live) {
        rc = run_live(&o, t);
    } else {
        uint64_t n = 0;
        if (lbw_capture_file(t, o.file, &n, err, sizeof(err)) < 0) {
            fprintf(stderr, "traffic_account: %s\n", err);
            rc = 1;
        }
        print_all(t, NULL, n);
    }
    lbw_traffic_free(t);
    return rc;
}
