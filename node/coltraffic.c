/* coltraffic.c - the `traffic` collector kind: its settings, the accounting engine it owns and
 * the live capture that feeds it on the agent's loop, reopened after a failure. See
 * coltraffic.h. */
#include "node/coltraffic.h"

#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "node/log.h"
#include "probes/capture.h"
#include "probes/traffic.h"

#define DEFAULT_FLOWS 65536
#define MIN_FLOWS 8
#define MAX_FLOWS (4u << 20)
/* The kernel's ring of captured packets is resident memory of the agent: 2 MiB holds about a
 * thousand full-size frames between two reads of the loop; drops are counted. */
#define DEFAULT_RING (2u << 20)
#define MIN_RING (256u << 10)
#define MAX_RING (256u << 20)

struct traffic_config {
    char *iface;
    uint16_t ports[LBW_TRAFFIC_PORTS_MAX];
    size_t nports;
    struct lbw_netaddr local[LBW_TRAFFIC_LOCAL_MAX];
    size_t nlocal;                  /* 0: the interface's own addresses */
    uint32_t flows;
    uint64_t buffer;                /* the kernel's capture ring, bytes */
};

/* The running collector. */
struct traffic {
    uv_loop_t *loop;
    int buffer;
    char iface[IF_NAMESIZE];
    struct lbw_traffic *t;
    struct lbw_capture *cap;        /* NULL while no capture could be opened */
    char failure[512];              /* why the capture is not running; "" while it is */
};

/* ---- configuration ----------------------------------------------------------------------- */

void lbw_coltraffic_free_config(void *config)
{
    struct traffic_config *c = config;
    if (!c)
        return;
    free(c->iface);
    free(c);
}

static void read_local(struct ymap *m, struct traffic_config *c)
{
    struct yseq s;
    if (!ymap_seq(m, "local", Y_OPTIONAL, &s))
        return;
    size_t n = yseq_len(&s);
    if (n == 0 || n > LBW_TRAFFIC_LOCAL_MAX) {
        ymap_fail(m, "local", "needs 1 to %d addresses, got %zu (leave it out for the "
                              "interface's own)", LBW_TRAFFIC_LOCAL_MAX, n);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char *a = NULL;
        if (!yseq_str(&s, i, &a))
            return;
        if (lbw_netaddr_parse(a, &c->local[i]) < 0)
            ydoc_fail(m->doc, yseq_node(&s, i), s.path,
                      "bad address \"%s\" (an IPv4 or IPv6 address, or a prefix like "
                      "10.0.0.0/8)", a);
        free(a);
        if (ydoc_failed(m->doc))
            return;
    }
    c->nlocal = n;
}

static void check_iface(struct ymap *m, const char *iface)
{
    if (!iface)
        return;
    if (!iface[0] || strlen(iface) >= IF_NAMESIZE || strchr(iface, '/'))
        ymap_fail(m, "interface", "must be an interface name of 1 to %d characters "
                                  "(e.g. eth0, bond0, any)", IF_NAMESIZE - 1);
}

void *lbw_coltraffic_configure(struct ydoc *d, yaml_node_t *v, const char *path)
{
    struct ymap m;
    int64_t flows = DEFAULT_FLOWS;
    struct traffic_config *c = calloc(1, sizeof(*c));
    if (!c) {
        ydoc_fail(d, v, path, "out of memory");
        return NULL;
    }
    ymap_open(&m, d, lbw_collector_empty(v) ? NULL : v, path);
    if (!m.node && !ydoc_failed(d))
        ydoc_fail(d, v, path, "needs an interface and the ports to watch "
                              "(e.g. {interface: eth0, ports: [443]})");
    ymap_str(&m, "interface", Y_REQUIRED, &c->iface);
    check_iface(&m, c->iface);
    c->nports = lbw_collector_ports(&m, "ports", Y_REQUIRED, c->ports, LBW_TRAFFIC_PORTS_MAX);
    read_local(&m, c);
    ymap_int(&m, "flows", Y_OPTIONAL, MIN_FLOWS, MAX_FLOWS, &flows);
    c->flows = (uint32_t)flows;
    c->buffer = DEFAULT_RING;
    ymap_size(&m, "buffer", Y_OPTIONAL, MIN_RING, MAX_RING, &c->buffer);
    if (ymap_close(&m) < 0) {
        lbw_coltraffic_free_config(c);
        return NULL;
    }
    return c;
}

/* ---- the capture ------------------------------------------------------------------------- */

static void on_capture_error(void *arg, const char *msg)
{
    struct traffic *tr = arg;
    snprintf(tr->failure, sizeof(tr->failure), "%s", msg);
    log_warn("agent", "traffic: %s on %s; reopening it at the next round", msg, tr->iface);
}

/* Opens a capture when none is running (closing a failed one first). Returns 0 when one runs,
 * else -1 with the reason in tr->failure. */
static int ensure_capture(struct traffic *tr)
{
    struct lbw_capture_stats st;
    if (tr->cap) {
        lbw_capture_stats(tr->cap, &st);
        if (st.running)
            return 0;
        lbw_capture_close(tr->cap);
        tr->cap = NULL;
    }
    struct lbw_capture_opts o = {.iface = tr->iface, .buffer_bytes = tr->buffer,
                                 .on_error = on_capture_error, .error_arg = tr};
    char err[320];
    int r = lbw_capture_open(&tr->cap, tr->loop, tr->t, &o, err, sizeof(err));
    if (r != 0) {
        tr->cap = NULL;
        snprintf(tr->failure, sizeof(tr->failure), "capture: %s%s", err,
                 r == LBW_CAPTURE_EPERM ? " (capturing needs CAP_NET_RAW)" : "");
        return -1;
    }
    if (tr->failure[0])
        log_info("agent", "traffic: capture on %s running", tr->iface);
    tr->failure[0] = '\0';
    return 0;
}

static int traffic_collect(void *state, const struct lbw_emitter *e, char *err, size_t errlen)
{
    struct traffic *tr = state;
    int rc = ensure_capture(tr);
    lbw_traffic_emit(tr->t, e);
    if (tr->cap)
        lbw_capture_emit(tr->cap, e);
    else
        lbw_emit(e, "lbwatch_traffic_capture_up", 0);
    if (rc == 0)
        return 0;
    snprintf(err, errlen, "%s", tr->failure);
    return -1;
}

static void traffic_close(void *state)
{
    struct traffic *tr = state;
    lbw_capture_close(tr->cap); /* no callback runs after this; the engine may go now */
    lbw_traffic_free(tr->t);
    free(tr);
}

/* ---- opening ----------------------------------------------------------------------------- */

static uint64_t random_seed(void)
{
    uint64_t seed;
    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == (ssize_t)sizeof(seed))
        return seed;
    return (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
}

/* The engine, with the configured local addresses or else the interface's. */
static int make_engine(const struct traffic_config *c, struct lbw_traffic **out, char *err,
                       size_t errlen)
{
    struct lbw_netaddr local[LBW_TRAFFIC_LOCAL_MAX];
    size_t nlocal = c->nlocal;
    if (nlocal > 0) {
        memcpy(local, c->local, nlocal * sizeof(local[0]));
    } else {
        int n = lbw_capture_local_addrs(c->iface, local, LBW_TRAFFIC_LOCAL_MAX, err, errlen);
        if (n < 0)
            return -1;
        nlocal = (size_t)n;
    }
    struct lbw_traffic_config tc = {
        .ports = c->ports, .nports = c->nports, .local = local, .nlocal = nlocal,
        .handshake = {.capacity = c->flows, .seed = random_seed()},
    };
    return lbw_traffic_new(out, &tc, err, errlen);
}

int lbw_coltraffic_open(const void *config, const struct lbw_collector_env *env,
                        struct lbw_collector *out, char *err, size_t errlen)
{
    const struct traffic_config *c = config;
    struct traffic *tr = calloc(1, sizeof(*tr));
    if (!tr) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    tr->loop = env->loop;
    snprintf(tr->iface, sizeof(tr->iface), "%s", c->iface);
    tr->buffer = (int)c->buffer;
    if (make_engine(c, &tr->t, err, errlen) < 0) {
        free(tr);
        return -1;
    }
    ensure_capture(tr); /* a failure is reported by the first round, at once */
    *out = (struct lbw_collector){"traffic", traffic_collect, traffic_close, tr};
    return 0;
}
