/* colhost.c - the `host` collector kind: its settings and the adapter over probes/hoststat.
 * See colhost.h. */
#include "node/colhost.h"

#include <stdio.h>
#include <stdlib.h>

#include "probes/hoststat.h"

struct host_config {
    char *proc_dir;
    int filesystems;                /* enum lbw_hoststat_fs_mode */
};

/* In the order of enum lbw_hoststat_fs_mode. */
static const char *const fs_modes[] = {"all", "local", "none", NULL};

void lbw_colhost_free_config(void *config)
{
    struct host_config *c = config;
    if (!c)
        return;
    free(c->proc_dir);
    free(c);
}

void *lbw_colhost_configure(struct ydoc *d, yaml_node_t *v, const char *path)
{
    struct ymap m;
    struct host_config *c = calloc(1, sizeof(*c));
    if (!c) {
        ydoc_fail(d, v, path, "out of memory");
        return NULL;
    }
    c->filesystems = LBW_HOSTSTAT_FS_LOCAL;
    ymap_open(&m, d, lbw_collector_empty(v) ? NULL : v, path);
    ymap_path(&m, "proc_dir", Y_OPTIONAL, &c->proc_dir);
    ymap_enum(&m, "filesystems", Y_OPTIONAL, fs_modes, &c->filesystems);
    if (!c->proc_dir)
        c->proc_dir = ydoc_strdup(d, "/proc");
    if (ymap_close(&m) < 0) {
        lbw_colhost_free_config(c);
        return NULL;
    }
    return c;
}

static int host_collect(void *state, const struct lbw_emitter *e, char *err, size_t errlen)
{
    return lbw_hoststat_collect(state, e, err, errlen) == 0 ? 0 : -1;
}

static void host_close(void *state)
{
    lbw_hoststat_free(state);
}

int lbw_colhost_open(const void *config, const struct lbw_collector_env *env,
                     struct lbw_collector *out, char *err, size_t errlen)
{
    const struct host_config *c = config;
    struct lbw_hoststat *h;
    (void)env;
    if (lbw_hoststat_new(&h, c->proc_dir, err, errlen) < 0)
        return -1;
    lbw_hoststat_set_filesystems(h, (enum lbw_hoststat_fs_mode)c->filesystems);
    *out = (struct lbw_collector){"host", host_collect, host_close, h};
    return 0;
}
