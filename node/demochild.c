/* demochild.c - the demo's child processes. See demochild.h. */
#include "node/demochild.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

void lbw_demo_children_init(struct lbw_demo_children *cs, uv_loop_t *loop,
                            lbw_demo_child_exit_cb cb, void *arg)
{
    memset(cs, 0, sizeof(*cs));
    cs->loop = loop;
    cs->cb = cb;
    cs->arg = arg;
}

static void on_exit(uv_process_t *p, int64_t status, int signal)
{
    struct lbw_demo_child *c = p->data;
    struct lbw_demo_children *cs = c->owner;
    c->running = 0;
    cs->running--;
    uv_close((uv_handle_t *)p, NULL);
    cs->cb(cs->arg, c->name, status, signal, c->critical, cs->stopping);
}

int lbw_demo_child_spawn(struct lbw_demo_children *cs, const char *name, char *const argv[],
                         int critical, int stop_signal, char *err, size_t errlen)
{
    if (cs->n == LBW_DEMO_CHILDREN_MAX) {
        snprintf(err, errlen, "%s: more than %d children", name, LBW_DEMO_CHILDREN_MAX);
        return -1;
    }
    struct lbw_demo_child *c = &cs->c[cs->n];
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE}, {.flags = UV_INHERIT_FD, .data.fd = 1},
        {.flags = UV_INHERIT_FD, .data.fd = 2},
    };
    uv_process_options_t o = {.exit_cb = on_exit, .file = argv[0], .args = (char **)argv,
                              .stdio = stdio, .stdio_count = 3};
    memset(c, 0, sizeof(*c));
    c->owner = cs;
    c->critical = critical;
    c->stop_signal = stop_signal ? stop_signal : SIGTERM;
    c->proc.data = c;
    snprintf(c->name, sizeof(c->name), "%s", name);
    int rc = uv_spawn(cs->loop, &c->proc, &o);
    cs->n++;    /* the slot holds a handle either way: a failed spawn's is closed below */
    if (rc != 0) {
        snprintf(err, errlen, "cannot start %s: %s", name, uv_strerror(rc));
        uv_close((uv_handle_t *)&c->proc, NULL);
        return -1;
    }
    c->running = 1;
    cs->running++;
    return 0;
}

void lbw_demo_children_stop(struct lbw_demo_children *cs)
{
    cs->stopping = 1;
    for (size_t i = 0; i < cs->n; i++)
        if (cs->c[i].running)
            uv_process_kill(&cs->c[i].proc, cs->c[i].stop_signal);
}

size_t lbw_demo_children_running(const struct lbw_demo_children *cs)
{
    return cs->running;
}
