/* traffic.c - benchmark: packets per second of the traffic accounting (probes/traffic) reading
 * a capture file with the offline driver, against libpcap reading the same file alone.
 *
 * 1. Records a template on lo (root only): a thread makes 200 TCP connections to a local
 *    listener (a TLS ClientHello, a 4 KiB answer, FIN both ways), a UDP datagram every 4th
 *    and a refused connection (SYN -> RST) every 10th, while libpcap captures them (snapshot
 *    length 512). Without permission to capture, the same conversation is built by hand.
 * 2. Replicates the template into a temporary pcap file of at least 2 M packets with
 *    pcap_dump: copy k rewrites both addresses to 127.k/16.1 (distinct flows for the handshake
 *    table) and shifts the timestamps past the previous copy.
 * 3. Measures, best of 3 runs each: libpcap alone (pcap_next_ex over the file) and the
 *    offline driver (lbw_capture_file: pcap_next_ex + lbw_traffic_packet), and prints both
 *    rates, the accounting's own cost per packet and what was counted. The target is >= 1 M
 *    packets/s for the offline driver. Asserts nothing about timing.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pcap/pcap.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "probes/capture.h"
#include "probes/traffic.h"

#define CONNS 200
#define ANSWER 4096
#define SNAPLEN 512
#define TARGET_PACKETS 2000000
#define TEMPLATE_MAX 8192
#define RUNS 3

struct pkt {
    struct pcap_pkthdr h;
    uint8_t *data;
};

struct template {
    struct pkt p[TEMPLATE_MAX];
    size_t n;
    uint16_t ports[2];          /* the TCP listener and the UDP receiver */
};

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* A TLS record with a ClientHello offering TLS 1.3 and 1.2 (supported_versions). */
static size_t client_hello(uint8_t *out)
{
    static const uint8_t tail[] = {0x00, 0x02, 0x13, 0x01, 0x01, 0x00,     /* suites, comp */
                                   0x00, 0x09, 0x00, 0x2b, 0x00, 0x05, 0x04, 0x03, 0x04,
                                   0x03, 0x03};                           /* extensions */
    size_t body = 2 + 32 + 1 + sizeof(tail);
    out[0] = 22;
    put16(out + 1, 0x0301);
    put16(out + 3, (unsigned)(4 + body));
    out[5] = 1;
    out[6] = 0;
    put16(out + 7, (unsigned)body);
    put16(out + 9, 0x0303);
    memset(out + 11, 0x5a, 32);
    out[43] = 0;
    memcpy(out + 44, tail, sizeof(tail));
    return 9 + body;
}

static void keep(struct template *t, const struct pcap_pkthdr *h, const uint8_t *bytes)
{
    if (t->n == TEMPLATE_MAX || !(t->p[t->n].data = malloc(h->caplen)))
        return;
    memcpy(t->p[t->n].data, bytes, h->caplen);
    t->p[t->n].h = *h;
    t->n++;
}

/* --- the template from a capture on lo ------------------------------------------------------- */

struct gen {
    int listener, udp, unlistened;
    struct sockaddr_in tcp_addr, udp_addr, closed_addr;
    volatile int done, failed;
};

static int bound_socket(int type, struct sockaddr_in *addr)
{
    int fd = socket(AF_INET, type, 0);
    socklen_t len = sizeof(*addr);
    memset(addr, 0, sizeof(*addr));
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)addr, sizeof(*addr)) != 0 ||
        getsockname(fd, (struct sockaddr *)addr, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static int read_all(int fd, size_t n)
{
    char buf[ANSWER];
    while (n > 0) {
        ssize_t r = recv(fd, buf, n < sizeof(buf) ? n : sizeof(buf), 0);
        if (r <= 0)
            return -1;
        n -= (size_t)r;
    }
    return 0;
}

/* One connection: ClientHello, answer, client closes first. */
static int one_connection(struct gen *g)
{
    uint8_t hello[128], answer[ANSWER] = {0};
    size_t hl = client_hello(hello);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (c < 0 || connect(c, (struct sockaddr *)&g->tcp_addr, sizeof(g->tcp_addr)) != 0)
        return -1;
    int s = accept(g->listener, NULL, NULL);
    int rc = s < 0 || send(c, hello, hl, 0) != (ssize_t)hl || read_all(s, hl) < 0 ||
                     send(s, answer, sizeof(answer), 0) != (ssize_t)sizeof(answer) ||
                     read_all(c, sizeof(answer)) < 0
                 ? -1
                 : 0;
    close(c);
    if (s >= 0) {
        char b;
        if (recv(s, &b, 1, 0) != 0)     /* the client's FIN */
            rc = -1;
        close(s);
    }
    return rc;
}

static void *generate(void *arg)
{
    struct gen *g = arg;
    for (int i = 0; i < CONNS && !g->failed; i++) {
        if (one_connection(g) < 0)
            g->failed = 1;
        if (i % 4 == 0)
            sendto(g->udp, "datagram", 8, 0, (struct sockaddr *)&g->udp_addr,
                   sizeof(g->udp_addr));
        if (i % 10 == 0) {
            int c = socket(AF_INET, SOCK_STREAM, 0);
            if (c >= 0 && connect(c, (struct sockaddr *)&g->closed_addr,
                                  sizeof(g->closed_addr)) == 0)
                g->failed = 1;          /* it should have been refused */
            if (c >= 0)
                close(c);
        }
    }
    usleep(100000);
    g->done = 1;
    return NULL;
}

static void on_captured(u_char *user, const struct pcap_pkthdr *h, const u_char *bytes)
{
    keep((struct template *)user, h, bytes);
}

static pcap_t *open_lo(const struct gen *g, char *err)
{
    pcap_t *p = pcap_create("lo", err);
    if (!p)
        return NULL;
    char filter[96];
    snprintf(filter, sizeof(filter), "tcp port %u or tcp port %u or udp port %u",
             ntohs(g->tcp_addr.sin_port), ntohs(g->closed_addr.sin_port),
             ntohs(g->udp_addr.sin_port));
    struct bpf_program prog;
    if (pcap_set_snaplen(p, SNAPLEN) != 0 || pcap_set_immediate_mode(p, 1) != 0 ||
        pcap_set_buffer_size(p, 32 << 20) != 0 || pcap_activate(p) < 0 ||
        pcap_setnonblock(p, 1, err) != 0 ||
        pcap_compile(p, &prog, filter, 1, PCAP_NETMASK_UNKNOWN) != 0) {
        snprintf(err, PCAP_ERRBUF_SIZE, "%s", pcap_geterr(p));
        pcap_close(p);
        return NULL;
    }
    int r = pcap_setfilter(p, &prog);
    pcap_freecode(&prog);
    if (r != 0 || pcap_datalink(p) != DLT_EN10MB) {
        snprintf(err, PCAP_ERRBUF_SIZE, "cannot filter lo");
        pcap_close(p);
        return NULL;
    }
    return p;
}

static int record(struct template *t)
{
    struct gen g = {0};
    char err[PCAP_ERRBUF_SIZE] = "";
    g.listener = bound_socket(SOCK_STREAM, &g.tcp_addr);
    g.udp = bound_socket(SOCK_DGRAM, &g.udp_addr);
    g.unlistened = bound_socket(SOCK_STREAM, &g.closed_addr);
    pcap_t *p = NULL;
    int rc = -1;
    if (g.listener >= 0 && g.udp >= 0 && g.unlistened >= 0 && listen(g.listener, 16) == 0)
        p = open_lo(&g, err);
    if (p) {
        pthread_t th;
        pthread_create(&th, NULL, generate, &g);
        int idle = 0;
        while (!g.done || idle < 50) {
            int n = pcap_dispatch(p, -1, on_captured, (u_char *)t);
            idle = n > 0 ? 0 : idle + 1;
            if (n <= 0)
                usleep(1000);
        }
        pthread_join(th, NULL);
        pcap_close(p);
        t->ports[0] = ntohs(g.tcp_addr.sin_port);
        t->ports[1] = ntohs(g.udp_addr.sin_port);
        rc = g.failed ? -1 : 0;
    } else {
        printf("capture on lo not available (%s): building the conversation by hand\n", err);
    }
    close(g.listener);
    close(g.udp);
    close(g.unlistened);
    return rc;
}

/* --- the template by hand -------------------------------------------------------------------- */

/* Appends an Ethernet/IPv4/TCP (proto 6) or UDP (17) packet from 127.0.0.1 ports a -> b. */
static void handmade(struct template *t, int proto, uint16_t a, uint16_t b, uint8_t flags,
                     const uint8_t *data, size_t dlen, int64_t us)
{
    uint8_t pkt[14 + 20 + 20 + ANSWER];
    size_t l4 = proto == 6 ? 20 : 8, ipl = 20 + l4 + dlen;
    memset(pkt, 0, 14 + 20 + l4);
    put16(pkt + 12, 0x0800);
    uint8_t *ip = pkt + 14, *th = ip + 20;
    ip[0] = 0x45;
    put16(ip + 2, (unsigned)ipl);
    ip[8] = 64;
    ip[9] = (uint8_t)proto;
    ip[12] = ip[16] = 127;
    ip[15] = ip[19] = 1;
    put16(th, a);
    put16(th + 2, b);
    if (proto == 6) {
        th[12] = 5 << 4;
        th[13] = flags;
    } else {
        put16(th + 4, (unsigned)(8 + dlen));
    }
    memcpy(th + l4, data, dlen);
    struct pcap_pkthdr h = {.len = (bpf_u_int32)(14 + ipl)};
    h.caplen = h.len < SNAPLEN ? h.len : SNAPLEN;
    h.ts.tv_sec = (time_t)(1700000000 + us / 1000000);
    h.ts.tv_usec = (suseconds_t)(us % 1000000);
    keep(t, &h, pkt);
}

static void build_by_hand(struct template *t)
{
    uint8_t hello[128], answer[ANSWER] = {0};
    size_t hl = client_hello(hello);
    const uint16_t srv = 8443, udp = 8053, closed = 8081;
    t->ports[0] = srv;
    t->ports[1] = udp;
    int64_t us = 0;
    for (int i = 0; i < CONNS; i++) {
        uint16_t cli = (uint16_t)(40000 + i);
        handmade(t, 6, cli, srv, 0x02, NULL, 0, us += 20);
        handmade(t, 6, srv, cli, 0x12, NULL, 0, us += 20);
        handmade(t, 6, cli, srv, 0x10, NULL, 0, us += 20);
        handmade(t, 6, cli, srv, 0x18, hello, hl, us += 20);
        handmade(t, 6, srv, cli, 0x10, NULL, 0, us += 20);
        handmade(t, 6, srv, cli, 0x18, answer, sizeof(answer), us += 20);
        handmade(t, 6, cli, srv, 0x10, NULL, 0, us += 20);
        handmade(t, 6, cli, srv, 0x11, NULL, 0, us += 20);
        handmade(t, 6, srv, cli, 0x11, NULL, 0, us += 20);
        handmade(t, 6, cli, srv, 0x10, NULL, 0, us += 20);
        if (i % 4 == 0)
            handmade(t, 17, cli, udp, 0, (const uint8_t *)"datagram", 8, us += 20);
        if (i % 10 == 0) {
            handmade(t, 6, (uint16_t)(cli + 1000), closed, 0x02, NULL, 0, us += 20);
            handmade(t, 6, closed, (uint16_t)(cli + 1000), 0x14, NULL, 0, us += 20);
        }
    }
}

/* --- the big file ---------------------------------------------------------------------------- */

static int64_t ts_of(const struct pcap_pkthdr *h)
{
    return (int64_t)h->ts.tv_sec * 1000000 + h->ts.tv_usec;
}

/* Writes copies of the template until TARGET_PACKETS. Returns the packet count, or -1. */
static long replicate(const struct template *t, const char *path)
{
    pcap_t *dead = pcap_open_dead(DLT_EN10MB, SNAPLEN);
    pcap_dumper_t *d = dead ? pcap_dump_open(dead, path) : NULL;
    if (!d) {
        fprintf(stderr, "traffic: cannot write %s\n", path);
        if (dead)
            pcap_close(dead);
        return -1;
    }
    int64_t base = ts_of(&t->p[0].h), span = ts_of(&t->p[t->n - 1].h) - base + 1000;
    uint8_t buf[SNAPLEN];
    long n = 0;
    for (long k = 0; n < TARGET_PACKETS; k++) {
        for (size_t i = 0; i < t->n; i++, n++) {
            const struct pkt *p = &t->p[i];
            struct pcap_pkthdr h = p->h;
            int64_t us = ts_of(&h) + k * span;
            h.ts.tv_sec = (time_t)(us / 1000000);
            h.ts.tv_usec = (suseconds_t)(us % 1000000);
            memcpy(buf, p->data, h.caplen);
            if (h.caplen >= 14 + 20) {      /* 127.x.y.1 both ways: copy k's own flows */
                buf[14 + 13] = buf[14 + 17] = (uint8_t)(k >> 8);
                buf[14 + 14] = buf[14 + 18] = (uint8_t)k;
            }
            pcap_dump((u_char *)d, &h, buf);
        }
    }
    pcap_dump_close(d);
    pcap_close(dead);
    return n;
}

/* --- measuring ------------------------------------------------------------------------------- */

static double read_only(const char *path, long *n)
{
    char err[PCAP_ERRBUF_SIZE];
    pcap_t *p = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_MICRO, err);
    if (!p)
        return -1;
    struct pcap_pkthdr *h;
    const u_char *b;
    volatile unsigned sum = 0;      /* touch each packet, as the engine would */
    double t0 = now_s();
    *n = 0;
    while (pcap_next_ex(p, &h, &b) == 1) {
        sum += b[h->caplen / 2];
        (*n)++;
    }
    double dt = now_s() - t0;
    pcap_close(p);
    return dt;
}

static struct lbw_traffic *engine(const struct template *t)
{
    struct lbw_netaddr lo;
    lbw_netaddr_parse("127.0.0.0/8", &lo);
    struct lbw_traffic_config c = {.ports = t->ports, .nports = 2, .local = &lo, .nlocal = 1,
                                   .handshake = {.seed = 0x1234}};
    struct lbw_traffic *e;
    char err[128];
    if (lbw_traffic_new(&e, &c, err, sizeof(err)) < 0) {
        fprintf(stderr, "traffic: %s\n", err);
        exit(1);
    }
    return e;
}

static double accounted(const struct template *t, const char *path, int report)
{
    struct lbw_traffic *e = engine(t);
    char err[256];
    uint64_t n;
    double t0 = now_s();
    if (lbw_capture_file(e, path, &n, err, sizeof(err)) < 0) {
        fprintf(stderr, "traffic: %s\n", err);
        exit(1);
    }
    double dt = now_s() - t0;
    if (report) {
        const struct lbw_traffic_counters *c = lbw_traffic_counters(e);
        struct lbw_hs_stats hs;
        lbw_traffic_handshakes(e, &hs);
        printf("counted: %.0f tcp + %.0f udp packets, %.0f SYN, %.0f RST, %.0f TLS 1.3 hellos, "
               "%.0f handshakes completed, %.0f reset; flow table %.0f/%.0f, %.0f evictions\n",
               (double)(c->packets[0][LBW_PROTO_TCP] + c->packets[1][LBW_PROTO_TCP]),
               (double)(c->packets[0][LBW_PROTO_UDP] + c->packets[1][LBW_PROTO_UDP]),
               (double)c->syn, (double)c->rst, (double)c->hello[LBW_TLSV_13],
               (double)hs.outcomes[LBW_HS_COMPLETED], (double)hs.outcomes[LBW_HS_RESET],
               (double)hs.entries, (double)hs.capacity, (double)hs.evicted);
    }
    lbw_traffic_free(e);
    return dt;
}

int main(void)
{
    static struct template t;
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char dir[256], path[300];
    snprintf(dir, sizeof(dir), "%s/lbw-bench-traffic.XXXXXX", base);
    if (!mkdtemp(dir)) {
        fprintf(stderr, "traffic: mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    snprintf(path, sizeof(path), "%s/big.pcap", dir);
    if (record(&t) < 0 || t.n < 100) {
        for (size_t i = 0; i < t.n; i++)
            free(t.p[i].data);
        t.n = 0;
        build_by_hand(&t);
    } else {
        printf("template: %zu packets recorded on lo\n", t.n);
    }
    long total = replicate(&t, path);
    int rc = 1;
    if (total > 0) {
        long n = 0;
        double best_read = 1e9, best_acct = 1e9;
        for (int r = 0; r < RUNS; r++) {
            double a = read_only(path, &n), b = accounted(&t, path, r == 0);
            best_read = a < best_read ? a : best_read;
            best_acct = b < best_acct ? b : best_acct;
        }
        double ns_read = best_read * 1e9 / (double)n, ns_acct = best_acct * 1e9 / (double)n;
        printf("file: %ld packets (%zu-packet template x %ld)\n", n, t.n, (n + (long)t.n - 1) /
               (long)t.n);
        printf("libpcap read only:        %.2f M packets/s (%.0f ns/packet)\n",
               (double)n / best_read / 1e6, ns_read);
        printf("offline driver (account): %.2f M packets/s (%.0f ns/packet; target >= 1 M/s)\n",
               (double)n / best_acct / 1e6, ns_acct);
        printf("accounting alone:         %.0f ns/packet = %.2f M packets/s\n",
               ns_acct - ns_read, ns_acct > ns_read ? 1e3 / (ns_acct - ns_read) : 0);
        rc = 0;
    }
    for (size_t i = 0; i < t.n; i++)
        free(t.p[i].data);
    unlink(path);
    rmdir(dir);
    return rc;
}
