/* agentbuf.c - a bounded FIFO of signed batches ordered by sequence: a growable array used
 * as a queue (the live part is items[head..n), compacted when the dead front is larger than
 * the live part), binary search by sequence. See agentbuf.h. */
#include "node/agentbuf.h"

#include <stdlib.h>
#include <string.h>

struct item {
    uint64_t seq;
    uint8_t *data;
    size_t len;
};

struct lbw_agentbuf {
    size_t max_batches, max_bytes;
    struct item *items;
    size_t head, n, cap;        /* live items are items[head .. n) */
    size_t bytes;
    uint64_t last_pushed, evicted, evictions, pushed;
};

struct lbw_agentbuf *lbw_agentbuf_new(size_t max_batches, size_t max_bytes)
{
    if (max_batches == 0 || max_bytes == 0)
        return NULL;
    struct lbw_agentbuf *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->max_batches = max_batches;
    b->max_bytes = max_bytes;
    return b;
}

void lbw_agentbuf_free(struct lbw_agentbuf *b)
{
    if (!b)
        return;
    for (size_t i = b->head; i < b->n; i++)
        free(b->items[i].data);
    free(b->items);
    free(b);
}

static size_t live(const struct lbw_agentbuf *b)
{
    return b->n - b->head;
}

static void evict_oldest(struct lbw_agentbuf *b)
{
    struct item *it = &b->items[b->head++];
    b->bytes -= it->len;
    b->evicted = it->seq;
    b->evictions++;
    free(it->data);
}

/* Room for one more item at the end. Returns 0, or -1 without memory. */
static int make_room(struct lbw_agentbuf *b)
{
    if (b->head > 0 && b->head >= live(b)) {
        memmove(b->items, b->items + b->head, live(b) * sizeof(*b->items));
        b->n -= b->head;
        b->head = 0;
    }
    if (b->n < b->cap)
        return 0;
    size_t cap = b->cap ? b->cap * 2 : 64;
    struct item *items = realloc(b->items, cap * sizeof(*items));
    if (!items)
        return -1;
    b->items = items;
    b->cap = cap;
    return 0;
}

int lbw_agentbuf_push(struct lbw_agentbuf *b, uint64_t seq, uint8_t *data, size_t len)
{
    if (seq <= b->last_pushed || make_room(b) < 0) {
        free(data);
        return -1;
    }
    b->items[b->n++] = (struct item){seq, data, len};
    b->bytes += len;
    b->last_pushed = seq;
    b->pushed++;
    while (live(b) > 1 && (live(b) > b->max_batches || b->bytes > b->max_bytes))
        evict_oldest(b);
    return 0;
}

const uint8_t *lbw_agentbuf_next(const struct lbw_agentbuf *b, uint64_t after, size_t *len,
                                 uint64_t *seq)
{
    size_t lo = b->head, hi = b->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (b->items[mid].seq <= after)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == b->n)
        return NULL;
    *len = b->items[lo].len;
    *seq = b->items[lo].seq;
    return b->items[lo].data;
}

void lbw_agentbuf_stats(const struct lbw_agentbuf *b, struct lbw_agentbuf_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->batches = live(b);
    out->bytes = b->bytes;
    if (live(b) > 0) {
        out->oldest = b->items[b->head].seq;
        out->newest = b->items[b->n - 1].seq;
    }
    out->evicted = b->evicted;
    out->evictions = b->evictions;
    out->pushed = b->pushed;
}
