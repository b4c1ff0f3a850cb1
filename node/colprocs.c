/* colprocs.c - the `processes` collector kind: its list of watches and the adapter over
 * probes/procwatch. See colprocs.h. */
#include "node/colprocs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probes/procwatch.h"

struct procs_config {
    struct lbw_procwatch_spec specs[LBW_PROCWATCH_MAX];  /* strings malloc'd */
    size_t n;
};

void lbw_colprocs_free_config(void *config)
{
    struct procs_config *c = config;
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++) {
        free((char *)c->specs[i].label);
        free((char *)c->specs[i].name);
        free((char *)c->specs[i].pidfile);
    }
    free(c);
}

/* The label a watch reports under: label, else name, else the pidfile's path. */
static const char *label_of(const struct lbw_procwatch_spec *s)
{
    return s->label ? s->label : s->name ? s->name : s->pidfile;
}

/* Reads item i of s into c->specs[c->n]. Returns 0, or -1 with the error recorded. */
static int read_watch(struct yseq *s, size_t i, struct procs_config *c)
{
    struct ymap m;
    char *label = NULL, *name = NULL, *pidfile = NULL;
    struct lbw_procwatch_spec *w = &c->specs[c->n];

    yseq_map(s, i, &m);
    ymap_str(&m, "name", Y_OPTIONAL, &name);
    ymap_path(&m, "pidfile", Y_OPTIONAL, &pidfile);
    ymap_str(&m, "label", Y_OPTIONAL, &label);
    *w = (struct lbw_procwatch_spec){label, name, pidfile};
    c->n++; /* owned by c from here, freed with it */
    if (ymap_close(&m) < 0)
        return -1;
    if (!name && !pidfile)
        ymap_fail(&m, "name", "needs name (the process's comm or argv[0]) or pidfile");
    else if (name && (!name[0] || strlen(name) >= LBW_PROCWATCH_NAME_MAX || strchr(name, '/')))
        ymap_fail(&m, "name", "must be a program name of 1 to %d characters without '/'",
                  LBW_PROCWATCH_NAME_MAX - 1);
    else if (label && !label[0])
        ymap_fail(&m, "label", "must not be empty");
    for (size_t j = 0; j + 1 < c->n && !ydoc_failed(s->doc); j++)
        if (strcmp(label_of(&c->specs[j]), label_of(w)) == 0)
            ymap_fail(&m, label ? "label" : name ? "name" : "pidfile",
                      "process label \"%s\" is already used by entry %zu (set label:)",
                      label_of(w), j);
    return ydoc_failed(s->doc) ? -1 : 0;
}

void *lbw_colprocs_configure(struct ydoc *d, yaml_node_t *v, const char *path)
{
    struct yseq s;
    struct procs_config *c;

    if (lbw_collector_empty(v)) {
        ydoc_fail(d, v, path, "needs a list of processes (e.g. [{name: haproxy}])");
        return NULL;
    }
    yseq_open(&s, d, v, path);
    size_t n = yseq_len(&s);
    if (ydoc_failed(d))
        return NULL;
    if (n == 0 || n > LBW_PROCWATCH_MAX) {
        ydoc_fail(d, v, path, "needs 1 to %d processes, got %zu", LBW_PROCWATCH_MAX, n);
        return NULL;
    }
    if (!(c = calloc(1, sizeof(*c)))) {
        ydoc_fail(d, v, path, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        if (read_watch(&s, i, c) < 0) {
            lbw_colprocs_free_config(c);
            return NULL;
        }
    return c;
}

static int procs_collect(void *state, const struct lbw_emitter *e, char *err, size_t errlen)
{
    if (lbw_procwatch_collect(state, e) >= 0)
        return 0;
    snprintf(err, errlen, "cannot list /proc: %s", strerror(errno));
    return -1;
}

static void procs_close(void *state)
{
    lbw_procwatch_free(state);
}

int lbw_colprocs_open(const void *config, const struct lbw_collector_env *env,
                      struct lbw_collector *out, char *err, size_t errlen)
{
    const struct procs_config *c = config;
    struct lbw_procwatch *w;
    (void)env;
    if (lbw_procwatch_new(&w, c->specs, c->n, NULL, err, errlen) < 0)
        return -1;
    *out = (struct lbw_collector){"processes", procs_collect, procs_close, w};
    return 0;
}
