/* agentbuf.c - a bounded FIFO of signed batches ordered by sequence, each held deflated: a
 * growable array used as a queue (the live part is items[head..n), compacted when the dead
 * front is larger than the live part), binary search by sequence, one deflate and one
 * inflate stream and one work area reused for every batch, and reference-counted preset
 * dictionaries (a recent batch: most of a batch is the same keys, labels and certificate as
 * the one before). See agentbuf.h. */
#include "node/agentbuf.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define DEFLATE_LEVEL Z_BEST_SPEED  /* ~4.7x on a signed batch; level 6 gains little more */
#define WINDOW_BITS 15              /* zlib format: its Adler-32 checks what comes back */
#define MEM_LEVEL 8
#define DICT_MAX (1u << WINDOW_BITS)  /* deflate looks back no further */

/* A preset dictionary: the tail of one batch, shared by the batches deflated with it. */
struct dict {
    uint8_t *data;
    uint32_t len;
    uint32_t refs;              /* the items that use it, and the buffer while it is current */
};

struct item {
    uint64_t seq;
    uint8_t *data;              /* deflated */
    uint32_t stored, len;       /* deflated and original lengths */
    struct dict *dict;          /* what it was deflated with, NULL: none */
};

struct lbw_agentbuf {
    size_t max_batches, max_bytes;
    struct item *items;
    size_t head, n, cap;        /* live items are items[head .. n) */
    size_t bytes, raw_bytes;
    uint64_t last_pushed, evicted, evictions, corrupt, pushed;
    z_stream def, inf;
    int def_ready, inf_ready;
    uint8_t *work;              /* deflate output on push, the inflated batch on next */
    size_t work_cap;
    struct dict *dict;          /* for the next push, NULL before the first */
    size_t dict_age;            /* pushes deflated with it */
    size_t dict_bytes;
};

/* ---- dictionaries ------------------------------------------------------------------------ */

static void dict_unref(struct lbw_agentbuf *b, struct dict *d)
{
    if (!d || --d->refs > 0)
        return;
    b->dict_bytes -= d->len;
    free(d->data);
    free(d);
}

/* Every max_batches pushes (and at the first) the batch being pushed becomes the dictionary,
 * so the dictionary follows what the collectors report and at most two are held (with the
 * oldest batches that still use the one before). Without memory the old one stays. */
static void maybe_renew_dict(struct lbw_agentbuf *b, const uint8_t *data, uint32_t len)
{
    if ((b->dict && b->dict_age < b->max_batches) || len == 0)
        return;
    uint32_t n = len < DICT_MAX ? len : DICT_MAX;
    struct dict *d = malloc(sizeof(*d));
    uint8_t *copy = malloc(n);
    if (!d || !copy) {
        free(d);
        free(copy);
        return;
    }
    memcpy(copy, data + (len - n), n);
    *d = (struct dict){copy, n, 1};
    dict_unref(b, b->dict);
    b->dict = d;
    b->dict_age = 0;
    b->dict_bytes += n;
}

/* ---- the queue --------------------------------------------------------------------------- */

struct lbw_agentbuf *lbw_agentbuf_new(size_t max_batches, size_t max_bytes)
{
    if (max_batches == 0 || max_bytes == 0)
        return NULL;
    struct lbw_agentbuf *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->max_batches = max_batches;
    b->max_bytes = max_bytes;
    b->def_ready = deflateInit2(&b->def, DEFLATE_LEVEL, Z_DEFLATED, WINDOW_BITS, MEM_LEVEL,
                                Z_DEFAULT_STRATEGY) == Z_OK;
    b->inf_ready = inflateInit2(&b->inf, WINDOW_BITS) == Z_OK;
    if (!b->def_ready || !b->inf_ready) {
        lbw_agentbuf_free(b);
        return NULL;
    }
    return b;
}

void lbw_agentbuf_free(struct lbw_agentbuf *b)
{
    if (!b)
        return;
    for (size_t i = b->head; i < b->n; i++) {
        free(b->items[i].data);
        dict_unref(b, b->items[i].dict);
    }
    dict_unref(b, b->dict);
    free(b->items);
    free(b->work);
    if (b->def_ready)
        deflateEnd(&b->def);
    if (b->inf_ready)
        inflateEnd(&b->inf);
    free(b);
}

static size_t live(const struct lbw_agentbuf *b)
{
    return b->n - b->head;
}

static void note_gone(struct lbw_agentbuf *b, const struct item *it)
{
    b->bytes -= it->stored;
    b->raw_bytes -= it->len;
    if (it->seq > b->evicted)
        b->evicted = it->seq;
    free(it->data);
    dict_unref(b, it->dict);
}

static void evict_oldest(struct lbw_agentbuf *b)
{
    note_gone(b, &b->items[b->head++]);
    b->evictions++;
}

/* Removes items[i], which did not inflate whole. */
static void drop_corrupt(struct lbw_agentbuf *b, size_t i)
{
    note_gone(b, &b->items[i]);
    memmove(b->items + i, b->items + i + 1, (b->n - i - 1) * sizeof(*b->items));
    b->n--;
    b->corrupt++;
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

/* A work area of at least need bytes; it only grows. Returns 0, or -1 without memory. */
static int grow_work(struct lbw_agentbuf *b, size_t need)
{
    if (need <= b->work_cap)
        return 0;
    uint8_t *w = realloc(b->work, need);
    if (!w)
        return -1;
    b->work = w;
    b->work_cap = need;
    return 0;
}

/* Deflates data with the current dictionary into a malloc'd copy of its exact size. Returns
 * it with *stored, or NULL. */
static uint8_t *deflate_batch(struct lbw_agentbuf *b, const uint8_t *data, uint32_t len,
                              uint32_t *stored)
{
    if (deflateReset(&b->def) != Z_OK ||
        (b->dict && deflateSetDictionary(&b->def, b->dict->data, b->dict->len) != Z_OK))
        return NULL;
    uLong bound = deflateBound(&b->def, len); /* counts the dictionary's id once it is set */
    if (bound > UINT32_MAX || grow_work(b, bound > len ? bound : len) != 0)
        return NULL;
    b->def.next_in = (Bytef *)data;
    b->def.avail_in = len;
    b->def.next_out = b->work;
    b->def.avail_out = (uInt)bound;
    if (deflate(&b->def, Z_FINISH) != Z_STREAM_END)
        return NULL;
    *stored = (uint32_t)(bound - b->def.avail_out);
    uint8_t *copy = malloc(*stored ? *stored : 1);
    if (copy)
        memcpy(copy, b->work, *stored);
    return copy;
}

int lbw_agentbuf_push(struct lbw_agentbuf *b, uint64_t seq, uint8_t *data, size_t len)
{
    uint32_t stored;
    uint8_t *packed = NULL;
    if (seq > b->last_pushed && len <= UINT32_MAX && make_room(b) == 0) {
        maybe_renew_dict(b, data, (uint32_t)len);
        packed = deflate_batch(b, data, (uint32_t)len, &stored);
    }
    free(data);
    if (!packed)
        return -1;
    if (b->dict) {
        b->dict->refs++;
        b->dict_age++;
    }
    b->items[b->n++] = (struct item){seq, packed, stored, (uint32_t)len, b->dict};
    b->bytes += stored;
    b->raw_bytes += len;
    b->last_pushed = seq;
    b->pushed++;
    while (live(b) > 1 && (live(b) > b->max_batches || b->bytes > b->max_bytes))
        evict_oldest(b);
    return 0;
}

/* Inflates it into the work area (at least it->len bytes since its push), never writing
 * more than it->len bytes. Returns 0 if it came back whole with exactly its length and good
 * checksums (of the dictionary it names and of its bytes), else -1. */
static int inflate_batch(struct lbw_agentbuf *b, const struct item *it)
{
    if (inflateReset(&b->inf) != Z_OK)
        return -1;
    b->inf.next_in = it->data;
    b->inf.avail_in = it->stored;
    b->inf.next_out = b->work;
    b->inf.avail_out = it->len;
    int rc = inflate(&b->inf, Z_FINISH);
    if (rc == Z_NEED_DICT) {
        if (!it->dict || inflateSetDictionary(&b->inf, it->dict->data, it->dict->len) != Z_OK)
            return -1;
        rc = inflate(&b->inf, Z_FINISH);
    }
    return rc == Z_STREAM_END && b->inf.avail_out == 0 && b->inf.avail_in == 0 ? 0 : -1;
}

/* The index of the first live item with a sequence above after (n if none). */
static size_t first_after(const struct lbw_agentbuf *b, uint64_t after)
{
    size_t lo = b->head, hi = b->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (b->items[mid].seq <= after)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

const uint8_t *lbw_agentbuf_next(struct lbw_agentbuf *b, uint64_t after, size_t *len,
                                 uint64_t *seq)
{
    size_t i = first_after(b, after);
    while (i < b->n && inflate_batch(b, &b->items[i]) != 0)
        drop_corrupt(b, i); /* the next one moves into i */
    if (i == b->n)
        return NULL;
    *len = b->items[i].len;
    *seq = b->items[i].seq;
    return b->work;
}

uint8_t *lbw_agentbuf_stored(struct lbw_agentbuf *b, uint64_t seq, size_t *len)
{
    size_t i = first_after(b, seq - 1);
    if (seq == 0 || i == b->n || b->items[i].seq != seq)
        return NULL;
    *len = b->items[i].stored;
    return b->items[i].data;
}

void lbw_agentbuf_stats(const struct lbw_agentbuf *b, struct lbw_agentbuf_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->batches = live(b);
    out->bytes = b->bytes;
    out->raw_bytes = b->raw_bytes;
    out->dict_bytes = b->dict_bytes;
    if (live(b) > 0) {
        out->oldest = b->items[b->head].seq;
        out->newest = b->items[b->n - 1].seq;
    }
    out->evicted = b->evicted;
    out->evictions = b->evictions;
    out->corrupt = b->corrupt;
    out->pushed = b->pushed;
}
