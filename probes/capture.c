/* capture.c - live (libpcap + libuv) and offline capture drivers for the traffic engine, and
 * local addresses from getifaddrs. See capture.h. */
#include "probes/capture.h"

#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define DEFAULT_SNAPLEN 2048
#define DEFAULT_BUFFER (8 << 20)
#define DEFAULT_EXPIRE_MS 1000
#define DISPATCH_BATCH 256
#define WAKE_BUDGET 4096
#define FILTER_IP "ip or ip6"
#define FILTER_IP_VLAN "ip or ip6 or (vlan and (ip or ip6))"

struct lbw_capture {
    pcap_t *p;
    int linktype;
    struct lbw_traffic *t;
    uv_poll_t poll;
    uv_timer_t timer;
    int closing, open_handles;
    lbw_capture_tap_fn tap;
    void *tap_arg;
    lbw_capture_error_fn on_error;
    void *error_arg;
    struct lbw_capture_stats st;
    u_int last_drop, last_ifdrop;   /* pcap_stats' 32-bit counters at the last tick */
};

/* --- live: reading --------------------------------------------------------------------------- */

static void on_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *bytes)
{
    struct lbw_capture *c = (struct lbw_capture *)user;
    c->st.packets++;
    lbw_traffic_packet(c->t, h, bytes, c->linktype);
    if (c->tap)
        c->tap(c->tap_arg, h, bytes);
}

static void fail(struct lbw_capture *c, const char *why)
{
    if (!c->st.running)
        return;
    c->st.running = 0;
    uv_poll_stop(&c->poll);
    if (c->on_error) {
        char msg[PCAP_ERRBUF_SIZE + 64];
        snprintf(msg, sizeof(msg), "capture: %s", why);
        c->on_error(c->error_arg, msg);
    }
}

/* Reads up to budget queued packets. Returns how many, or -1 after a failure. */
static int read_queued(struct lbw_capture *c, int budget)
{
    int total = 0;
    while (c->st.running && total < budget) {
        int n = pcap_dispatch(c->p, DISPATCH_BATCH, on_packet, (u_char *)c);
        if (n < 0) {
            fail(c, n == PCAP_ERROR ? pcap_geterr(c->p) : "reading stopped");
            return -1;
        }
        if (n == 0)
            break;
        total += n;
    }
    return total;
}

static void on_readable(uv_poll_t *h, int status, int events)
{
    struct lbw_capture *c = h->data;
    (void)events;
    if (status < 0) {
        fail(c, uv_strerror(status));
        return;
    }
    read_queued(c, WAKE_BUDGET);
}

int lbw_capture_drain(struct lbw_capture *c)
{
    if (!c->st.running)
        return -1;
    return read_queued(c, INT32_MAX);
}

/* Adds the growth of pcap_stats' wrapping 32-bit counters to the 64-bit totals. */
static void refresh_drops(struct lbw_capture *c)
{
    struct pcap_stat ps;
    if (!c->st.running || pcap_stats(c->p, &ps) != 0)
        return;
    c->st.kernel_dropped += (u_int)(ps.ps_drop - c->last_drop);
    c->st.if_dropped += (u_int)(ps.ps_ifdrop - c->last_ifdrop);
    c->last_drop = ps.ps_drop;
    c->last_ifdrop = ps.ps_ifdrop;
}

static void on_tick(uv_timer_t *h)
{
    struct lbw_capture *c = h->data;
    uv_timeval64_t now;
    if (uv_gettimeofday(&now) == 0)
        lbw_traffic_expire(c->t, (int64_t)now.tv_sec * 1000000 + now.tv_usec);
    refresh_drops(c);
}

/* --- live: opening --------------------------------------------------------------------------- */

static int activate(pcap_t *p, const struct lbw_capture_opts *o, char *err, size_t errlen)
{
    if (pcap_set_snaplen(p, o->snaplen > 0 ? o->snaplen : DEFAULT_SNAPLEN) != 0 ||
        pcap_set_promisc(p, 0) != 0 || pcap_set_immediate_mode(p, 1) != 0 ||
        pcap_set_buffer_size(p, o->buffer_bytes > 0 ? o->buffer_bytes : DEFAULT_BUFFER) != 0) {
        snprintf(err, errlen, "%s: cannot set capture options", o->iface);
        return -1;
    }
    int r = pcap_activate(p);
    if (r < 0) {
        const char *why = r == PCAP_ERROR ? pcap_geterr(p) : pcap_statustostr(r);
        snprintf(err, errlen, "%s: %s", o->iface, why);
        return r == PCAP_ERROR_PERM_DENIED ? LBW_CAPTURE_EPERM : -1;
    }
    return 0;
}

static int set_filter(pcap_t *p, const struct lbw_capture_opts *o, char *err, size_t errlen)
{
    const char *expr = o->filter;
    if (!expr)
        expr = pcap_datalink(p) == DLT_EN10MB ? FILTER_IP_VLAN : FILTER_IP;
    struct bpf_program prog;
    if (pcap_compile(p, &prog, expr, 1, PCAP_NETMASK_UNKNOWN) != 0) {
        snprintf(err, errlen, "%s: filter \"%s\": %s", o->iface, expr, pcap_geterr(p));
        return -1;
    }
    int r = pcap_setfilter(p, &prog);
    pcap_freecode(&prog);
    if (r != 0) {
        snprintf(err, errlen, "%s: cannot set filter: %s", o->iface, pcap_geterr(p));
        return -1;
    }
    return 0;
}

/* Creates, activates and filters the pcap handle. Returns 0, -1 or LBW_CAPTURE_EPERM. */
static int open_pcap(struct lbw_capture *c, const struct lbw_capture_opts *o, char *err,
                     size_t errlen)
{
    char errbuf[PCAP_ERRBUF_SIZE] = "";
    c->p = pcap_create(o->iface, errbuf);
    if (!c->p) {
        snprintf(err, errlen, "%s: %s", o->iface, errbuf);
        return -1;
    }
    int r = activate(c->p, o, err, errlen);
    if (r == 0)
        r = set_filter(c->p, o, err, errlen);
    if (r == 0 && pcap_setnonblock(c->p, 1, errbuf) != 0) {
        snprintf(err, errlen, "%s: %s", o->iface, errbuf);
        r = -1;
    }
    if (r != 0) {
        pcap_close(c->p);
        c->p = NULL;
    }
    return r;
}

/* Starts the poll handle and the timer on the loop. */
static int start_handles(struct lbw_capture *c, uv_loop_t *loop, uint32_t interval_ms,
                         char *err, size_t errlen)
{
    int fd = pcap_get_selectable_fd(c->p);
    int r = fd < 0 ? UV_EINVAL : uv_poll_init(loop, &c->poll, fd);
    if (r != 0) {
        snprintf(err, errlen, "capture: no pollable descriptor: %s", uv_strerror(r));
        return -1;
    }
    c->open_handles++;
    uv_timer_init(loop, &c->timer);
    c->open_handles++;
    c->poll.data = c->timer.data = c;
    if ((r = uv_poll_start(&c->poll, UV_READABLE, on_readable)) != 0 ||
        (r = uv_timer_start(&c->timer, on_tick, interval_ms, interval_ms)) != 0) {
        snprintf(err, errlen, "capture: %s", uv_strerror(r));
        return -1;
    }
    return 0;
}

int lbw_capture_open(struct lbw_capture **out, uv_loop_t *loop, struct lbw_traffic *t,
                     const struct lbw_capture_opts *o, char *err, size_t errlen)
{
    if (!o->iface || !*o->iface) {
        snprintf(err, errlen, "capture: no interface");
        return -1;
    }
    struct lbw_capture *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "capture: out of memory");
        return -1;
    }
    c->t = t;
    c->tap = o->tap;
    c->tap_arg = o->tap_arg;
    c->on_error = o->on_error;
    c->error_arg = o->error_arg;
    int r = open_pcap(c, o, err, errlen);
    if (r != 0) {
        free(c);
        return r;
    }
    c->linktype = pcap_datalink(c->p);
    c->st.running = 1;
    if (start_handles(c, loop, o->expire_interval_ms ? o->expire_interval_ms : DEFAULT_EXPIRE_MS,
                      err, errlen) < 0) {
        lbw_capture_close(c);
        return -1;
    }
    *out = c;
    return 0;
}

pcap_t *lbw_capture_pcap(struct lbw_capture *c)
{
    return c->p;
}

void lbw_capture_stats(const struct lbw_capture *c, struct lbw_capture_stats *out)
{
    *out = c->st;
}

void lbw_capture_emit(const struct lbw_capture *c, const struct lbw_emitter *e)
{
    lbw_emit(e, "lbwatch_traffic_capture_packets_total", (double)c->st.packets);
    lbw_emit1(e, "lbwatch_traffic_capture_dropped_total", "where", "kernel",
              (double)c->st.kernel_dropped);
    lbw_emit1(e, "lbwatch_traffic_capture_dropped_total", "where", "interface",
              (double)c->st.if_dropped);
    lbw_emit(e, "lbwatch_traffic_capture_up", c->st.running ? 1 : 0);
}

/* --- live: closing --------------------------------------------------------------------------- */

static void on_closed(uv_handle_t *h)
{
    struct lbw_capture *c = h->data;
    if (--c->open_handles > 0)
        return;
    pcap_close(c->p);
    free(c);
}

void lbw_capture_close(struct lbw_capture *c)
{
    if (!c || c->closing)
        return;
    c->closing = 1;
    c->st.running = 0;
    c->on_error = NULL;
    c->tap = NULL;
    if (c->open_handles == 0) {
        pcap_close(c->p);
        free(c);
        return;
    }
    int handles = c->open_handles;
    uv_close((uv_handle_t *)&c->poll, on_closed);
    if (handles > 1)
        uv_close((uv_handle_t *)&c->timer, on_closed);
}

/* --- offline --------------------------------------------------------------------------------- */

int lbw_capture_file(struct lbw_traffic *t, const char *path, uint64_t *packets, char *err,
                     size_t errlen)
{
    char errbuf[PCAP_ERRBUF_SIZE] = "";
    pcap_t *p = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_MICRO,
                                                        errbuf);
    if (!p) {
        snprintf(err, errlen, "%s: %s", path, errbuf);
        return -1;
    }
    int linktype = pcap_datalink(p), r;
    struct pcap_pkthdr *h;
    const u_char *bytes;
    uint64_t n = 0;
    int64_t last = 0;
    while ((r = pcap_next_ex(p, &h, &bytes)) == 1) {
        lbw_traffic_packet(t, h, bytes, linktype);
        int64_t ts = lbw_traffic_ts_us(h);
        if (ts > last)
            last = ts;
        n++;
    }
    if (r == PCAP_ERROR)
        snprintf(err, errlen, "%s: %s", path, pcap_geterr(p));
    if (n > 0)
        lbw_traffic_expire(t, last);
    pcap_close(p);
    if (packets)
        *packets = n;
    return r == PCAP_ERROR ? -1 : 0;
}

/* --- local addresses ------------------------------------------------------------------------- */

static int prefix_len(const uint8_t *mask, size_t len)
{
    int bits = 0;
    for (size_t i = 0; i < len; i++)
        for (int b = 7; b >= 0 && (mask[i] >> b) & 1; b--)
            bits++;
    return bits;
}

/* Fills a from an interface address; returns 0, or -1 if it is not IPv4/IPv6. */
static int from_ifaddr(const struct ifaddrs *ifa, struct lbw_netaddr *a)
{
    const struct sockaddr *sa = ifa->ifa_addr;
    const struct sockaddr *nm = ifa->ifa_netmask;
    int loopback = (ifa->ifa_flags & IFF_LOOPBACK) != 0;
    memset(a, 0, sizeof(*a));
    if (sa->sa_family == AF_INET) {
        a->family = 4;
        memcpy(a->addr, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        a->prefix = 32;
        if (loopback && nm && nm->sa_family == AF_INET)
            a->prefix = (uint8_t)prefix_len(
                (const uint8_t *)&((const struct sockaddr_in *)(const void *)nm)->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        a->family = 6;
        memcpy(a->addr, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
        a->prefix = 128;
        if (loopback && nm && nm->sa_family == AF_INET6)
            a->prefix = (uint8_t)prefix_len(
                (const uint8_t *)&((const struct sockaddr_in6 *)(const void *)nm)->sin6_addr, 16);
    } else {
        return -1;
    }
    return 0;
}

static int contains(const struct lbw_netaddr *list, size_t n, const struct lbw_netaddr *a)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(&list[i], a, sizeof(*a)) == 0)
            return 1;
    return 0;
}

int lbw_capture_local_addrs(const char *iface, struct lbw_netaddr *out, size_t max, char *err,
                            size_t errlen)
{
    struct ifaddrs *all;
    if (getifaddrs(&all) != 0) {
        snprintf(err, errlen, "getifaddrs failed");
        return -1;
    }
    int any = !iface || strcmp(iface, "any") == 0;
    size_t n = 0;
    for (const struct ifaddrs *ifa = all; ifa && n < max; ifa = ifa->ifa_next) {
        struct lbw_netaddr a;
        if (!ifa->ifa_addr || (!any && strcmp(ifa->ifa_name, iface) != 0) ||
            from_ifaddr(ifa, &a) < 0 || contains(out, n, &a))
            continue;
        out[n++] = a;
    }
    freeifaddrs(all);
    return (int)n;
}
