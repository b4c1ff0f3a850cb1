/* collector.c - the registry of collector kinds, and the built-in loadavg collector's config
 * and adapter over probes/loadavg. See collector.h. */
#include "node/collector.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probes/loadavg.h"

/* ---- loadavg ----------------------------------------------------------------------------- */

struct loadavg_config {
    char *proc_dir;
};

static void loadavg_free_config(void *config)
{
    struct loadavg_config *c = config;
    if (!c)
        return;
    free(c->proc_dir);
    free(c);
}

static void *loadavg_configure(struct ymap *m)
{
    struct loadavg_config *c = calloc(1, sizeof(*c));
    if (!c) {
        ydoc_fail(m->doc, NULL, "", "out of memory");
        return NULL;
    }
    ymap_path(m, "proc_dir", Y_OPTIONAL, &c->proc_dir);
    if (!c->proc_dir)
        c->proc_dir = ydoc_strdup(m->doc, "/proc");
    if (ymap_close(m) < 0) {
        loadavg_free_config(c);
        return NULL;
    }
    return c;
}

static int loadavg_collect(void *state, const struct lbw_emitter *e, char *err, size_t errlen)
{
    const struct loadavg_config *c = state;
    struct lbw_loadavg la;
    if (lbw_loadavg_read(c->proc_dir, &la, err, errlen) < 0)
        return -1;
    if (lbw_loadavg_emit(&la, e) < 0) {
        snprintf(err, errlen, "cannot build the series keys");
        return -1;
    }
    return 0;
}

static int loadavg_open(const void *config, struct lbw_collector *out, char *err,
                        size_t errlen)
{
    const struct loadavg_config *c = config;
    struct loadavg_config *state = calloc(1, sizeof(*state));
    if (!state || !(state->proc_dir = strdup(c->proc_dir))) {
        free(state);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    /* the running collector's state is its own copy of the config */
    *out = (struct lbw_collector){"loadavg", loadavg_collect, loadavg_free_config, state};
    return 0;
}

/* ---- the registry ------------------------------------------------------------------------ */

static const struct lbw_collector_kind kinds[] = {
    {"loadavg", loadavg_configure, loadavg_free_config, loadavg_open},
};

const struct lbw_collector_kind *lbw_collector_kinds(size_t *n)
{
    *n = sizeof(kinds) / sizeof(kinds[0]);
    return kinds;
}

void lbw_collector_close(struct lbw_collector *c)
{
    if (c->close)
        c->close(c->state);
    memset(c, 0, sizeof(*c));
}
