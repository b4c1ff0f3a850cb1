/* status.c - the node's published status snapshot. See status.h. */
#include "node/status.h"

#include <stdlib.h>
#include <string.h>

void lbw_status_init(struct lbw_status *s)
{
    memset(&s->cur, 0, sizeof(s->cur));
    memset(s->docs, 0, sizeof(s->docs));
    pthread_mutex_init(&s->mu, NULL);
}

void lbw_status_destroy(struct lbw_status *s)
{
    for (int i = 0; i < LBW_DOCS; i++)
        free(s->docs[i]);
    pthread_mutex_destroy(&s->mu);
}

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

void lbw_status_set_doc(struct lbw_status *s, enum lbw_status_doc d, char *text)
{
    if (!text)
        return;
    pthread_mutex_lock(&s->mu);
    char *old = s->docs[d];
    s->docs[d] = text;
    pthread_mutex_unlock(&s->mu);
    free(old);
}

char *lbw_status_doc(struct lbw_status *s, enum lbw_status_doc d)
{
    pthread_mutex_lock(&s->mu);
    char *copy = s->docs[d] ? strdup(s->docs[d]) : NULL;
    pthread_mutex_unlock(&s->mu);
    return copy;
}
