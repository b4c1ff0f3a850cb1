/* colsockets.c - the `sockets` collector kind: its ports and the adapter over
 * probes/sockdiag. See colsockets.h. */
#include "node/colsockets.h"

#include <stdlib.h>

#include "probes/sockdiag.h"

#define RECV_TIMEOUT_MS 1000

struct sockets_config {
    uint16_t ports[LBW_SOCKDIAG_PORTS_MAX];
    size_t nports;
};

void lbw_colsockets_free_config(void *config)
{
    free(config);
}

void *lbw_colsockets_configure(struct ydoc *d, yaml_node_t *v, const char *path)
{
    struct ymap m;
    struct sockets_config *c = calloc(1, sizeof(*c));
    if (!c) {
        ydoc_fail(d, v, path, "out of memory");
        return NULL;
    }
    ymap_open(&m, d, lbw_collector_empty(v) ? NULL : v, path);
    if (!m.node && !ydoc_failed(d))
        ydoc_fail(d, v, path, "needs the ports to watch (e.g. {ports: [443, 80]})");
    c->nports = lbw_collector_ports(&m, "ports", Y_REQUIRED, c->ports, LBW_SOCKDIAG_PORTS_MAX);
    if (ymap_close(&m) < 0) {
        free(c);
        return NULL;
    }
    return c;
}

static int sockets_collect(void *state, const struct lbw_emitter *e, char *err, size_t errlen)
{
    return lbw_sockdiag_collect(state, e, err, errlen) < 0 ? -1 : 0;
}

static void sockets_close(void *state)
{
    lbw_sockdiag_free(state);
}

int lbw_colsockets_open(const void *config, const struct lbw_collector_env *env,
                        struct lbw_collector *out, char *err, size_t errlen)
{
    const struct sockets_config *c = config;
    struct lbw_sockdiag *d;
    (void)env;
    if (lbw_sockdiag_new(&d, c->ports, c->nports, RECV_TIMEOUT_MS, err, errlen) < 0)
        return -1;
    *out = (struct lbw_collector){"sockets", sockets_collect, sockets_close, d};
    return 0;
}
