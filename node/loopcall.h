/* loopcall.h - run a function on the loop thread, from any thread.
 *
 * The web server's threads must not touch libraft, the store writer or anything else the
 * loop thread owns; a write request (a membership change, later a silence or an ack) is
 * posted here and runs on the loop, which answers through the request's own callback. One
 * mutex-protected FIFO and one uv_async_t. */
#ifndef LBW_LOOPCALL_H
#define LBW_LOOPCALL_H

#include <uv.h>

struct lbw_loopcall;

int lbw_loopcall_new(struct lbw_loopcall **out, uv_loop_t *loop);

/* From any thread: fn(arg) will run on the loop thread, in posting order. Returns 0, or -1
 * if out of memory or closed (fn will not run). */
int lbw_loopcall_post(struct lbw_loopcall *lc, void (*fn)(void *arg), void *arg);

/* On the loop thread: runs what is queued, refuses further posts, frees once closed. */
void lbw_loopcall_close(struct lbw_loopcall *lc);

#endif
