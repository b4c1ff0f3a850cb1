/* collector.c - the registry of collector kinds, and the config readers the kinds share. The
 * kinds themselves live in node/colhost, node/colprocs, node/colsockets and node/coltraffic.
 * See collector.h. */
#include "node/collector.h"

#include <stdio.h>
#include <string.h>

#include "node/colhost.h"
#include "node/colprocs.h"
#include "node/colsockets.h"
#include "node/coltraffic.h"

static const struct lbw_collector_kind kinds[] = {
    {"host", 1, lbw_colhost_configure, lbw_colhost_free_config, lbw_colhost_open},
    {"processes", 0, lbw_colprocs_configure, lbw_colprocs_free_config, lbw_colprocs_open},
    {"sockets", 0, lbw_colsockets_configure, lbw_colsockets_free_config, lbw_colsockets_open},
    {"traffic", 0, lbw_coltraffic_configure, lbw_coltraffic_free_config, lbw_coltraffic_open},
};

const struct lbw_collector_kind *lbw_collector_kinds(size_t *n)
{
    *n = sizeof(kinds) / sizeof(kinds[0]);
    return kinds;
}

const struct lbw_collector_kind *lbw_collector_kind(const char *name)
{
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strcmp(kinds[i].name, name) == 0)
            return &kinds[i];
    return NULL;
}

void lbw_collector_close(struct lbw_collector *c)
{
    if (c->close)
        c->close(c->state);
    memset(c, 0, sizeof(*c));
}

int lbw_collector_empty(const yaml_node_t *v)
{
    return !v || (v->type == YAML_SCALAR_NODE && v->data.scalar.length == 0);
}

size_t lbw_collector_ports(struct ymap *m, const char *key, int flags, uint16_t *ports,
                           size_t max)
{
    struct yseq s;
    if (!ymap_seq(m, key, flags, &s))
        return 0;
    size_t n = yseq_len(&s);
    if (n == 0) {
        ymap_fail(m, key, "needs at least one port");
        return 0;
    }
    if (n > max) {
        ymap_fail(m, key, "at most %zu ports, got %zu", max, n);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (!yseq_port(&s, i, &ports[i]))
            return 0;
        for (size_t j = 0; j < i; j++)
            if (ports[j] == ports[i]) {
                ydoc_fail(m->doc, yseq_node(&s, i), s.path, "port %u is listed twice",
                          (unsigned)ports[i]);
                return 0;
            }
    }
    return n;
}
