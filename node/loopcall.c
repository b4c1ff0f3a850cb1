/* loopcall.c - a FIFO of calls handed to the loop thread. See loopcall.h. */
#include "node/loopcall.h"

#include <pthread.h>
#include <stdlib.h>

struct call {
    struct call *next;
    void (*fn)(void *arg);
    void *arg;
};

struct lbw_loopcall {
    uv_async_t async;
    pthread_mutex_t mu;
    struct call *head, *tail;
    int closed;
};

/* Takes the whole queue under the lock, runs it outside. */
static void run_queued(struct lbw_loopcall *lc)
{
    pthread_mutex_lock(&lc->mu);
    struct call *c = lc->head;
    lc->head = lc->tail = NULL;
    pthread_mutex_unlock(&lc->mu);
    while (c) {
        struct call *next = c->next;
        c->fn(c->arg);
        free(c);
        c = next;
    }
}

static void on_async(uv_async_t *a) { run_queued(a->data); }

int lbw_loopcall_new(struct lbw_loopcall **out, uv_loop_t *loop)
{
    struct lbw_loopcall *lc = calloc(1, sizeof(*lc));
    if (!lc)
        return -1;
    pthread_mutex_init(&lc->mu, NULL);
    if (uv_async_init(loop, &lc->async, on_async) != 0) {
        pthread_mutex_destroy(&lc->mu);
        free(lc);
        return -1;
    }
    lc->async.data = lc;
    *out = lc;
    return 0;
}

int lbw_loopcall_post(struct lbw_loopcall *lc, void (*fn)(void *arg), void *arg)
{
    struct call *c = malloc(sizeof(*c));
    if (!c)
        return -1;
    c->next = NULL;
    c->fn = fn;
    c->arg = arg;
    pthread_mutex_lock(&lc->mu);
    if (lc->closed) {
        pthread_mutex_unlock(&lc->mu);
        free(c);
        return -1;
    }
    if (lc->tail)
        lc->tail->next = c;
    else
        lc->head = c;
    lc->tail = c;
    pthread_mutex_unlock(&lc->mu);
    uv_async_send(&lc->async);
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    struct lbw_loopcall *lc = h->data;
    pthread_mutex_destroy(&lc->mu);
    free(lc);
}

void lbw_loopcall_close(struct lbw_loopcall *lc)
{
    if (!lc)
        return;
    pthread_mutex_lock(&lc->mu);
    lc->closed = 1;
    pthread_mutex_unlock(&lc->mu);
    run_queued(lc);
    uv_close((uv_handle_t *)&lc->async, on_closed);
}
