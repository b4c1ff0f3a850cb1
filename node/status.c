/* status.c - the node's published status snapshot. See status.h. */
#include "node/status.h"

#include <string.h>

void lbw_status_init(struct lbw_status *s)
{
    memset(&s->cur, 0, sizeof(s->cur));
    pthread_mutex_init(&s->mu, NULL);
}

void lbw_status_destroy(struct lbw_status *s) { pthread_mutex_destroy(&s->mu); }

void lbw_status_publish(struct lbw_status *s, const struct lbw_node_status *st)
{
    pthread_mutex_lock(&s->mu);
    s->cur = *st;
    pthread_mutex_unlock(&s->mu);
}

void lbw_status_read(struct lbw_status *s, struct lbw_node_status *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->cur;
    pthread_mutex_unlock(&s->mu);
}
