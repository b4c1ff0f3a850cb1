/* demochild.h - the child processes `lbwatch demo` runs (its lbwatch nodes, HAProxy, and
 * whatever it runs next: one more is one lbw_demo_child_spawn call): spawned on the demo's
 * loop with stdin closed and stdout/stderr shared with the demo, told to stop together, and
 * reported when they exit.
 *
 * A child is *critical* when the demo cannot go on without it (a node): its unexpected exit is
 * a failure. Any child's exit is reported to the callback with whether it was expected (after
 * lbw_demo_children_stop) so the demo can decide. Loop thread only.
 */
#ifndef LBW_DEMOCHILD_H
#define LBW_DEMOCHILD_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define LBW_DEMO_CHILDREN_MAX 16
#define LBW_DEMO_CHILD_NAME_MAX 32

struct lbw_demo_children;

/* Called once per child when it has exited: its name, exit status or signal, whether it was
 * critical and whether the demo had asked it to stop. */
typedef void (*lbw_demo_child_exit_cb)(void *arg, const char *name, int64_t status, int signal,
                                       int critical, int expected);

struct lbw_demo_child {
    struct lbw_demo_children *owner;
    uv_process_t proc;
    char name[LBW_DEMO_CHILD_NAME_MAX];
    int critical;
    int stop_signal;
    int running;
};

struct lbw_demo_children {
    uv_loop_t *loop;
    lbw_demo_child_exit_cb cb;
    void *arg;
    struct lbw_demo_child c[LBW_DEMO_CHILDREN_MAX];
    size_t n;
    size_t running;
    int stopping;
};

void lbw_demo_children_init(struct lbw_demo_children *cs, uv_loop_t *loop,
                            lbw_demo_child_exit_cb cb, void *arg);

/* Starts argv[0] (a path) with argv as its arguments (NULL-terminated), named name in
 * messages; stop_signal is what asks it to stop (0: SIGTERM). Returns 0, or -1 with a reason
 * in err (too many children, the spawn failed). */
int lbw_demo_child_spawn(struct lbw_demo_children *cs, const char *name, char *const argv[],
                         int critical, int stop_signal, char *err, size_t errlen);

/* Sends its stop signal to every running child; their exits are then expected. */
void lbw_demo_children_stop(struct lbw_demo_children *cs);

/* Children that have not exited yet. */
size_t lbw_demo_children_running(const struct lbw_demo_children *cs);

#endif
