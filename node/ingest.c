/* ingest.c - appends samples to the store and commits them on a timer. See ingest.h. */
#include "node/ingest.h"

#include <stdlib.h>
#include <string.h>

#include "node/log.h"

#define COMMIT_INTERVAL_MS 250
#define COMMIT_MAX_PENDING 4096

struct lbw_ingest {
    uv_timer_t timer;
    struct lbw_store *store;
    unsigned pending;
    struct lbw_ingest_stats stats;
};

void lbw_ingest_flush(struct lbw_ingest *in)
{
    if (in->pending == 0)
        return;
    if (lbw_store_commit(in->store) != 0) {
        in->stats.errors++;
        log_error("ingest", "store commit failed: %u samples lost", in->pending);
        in->stats.stored -= in->pending;
    }
    in->pending = 0;
}

static void on_timer(uv_timer_t *t)
{
    lbw_ingest_flush(t->data);
}

int lbw_ingest_new(struct lbw_ingest **out, uv_loop_t *loop, struct lbw_store *store)
{
    struct lbw_ingest *in = calloc(1, sizeof(*in));
    if (!in)
        return -1;
    in->store = store;
    uv_timer_init(loop, &in->timer);
    in->timer.data = in;
    uv_timer_start(&in->timer, on_timer, COMMIT_INTERVAL_MS, COMMIT_INTERVAL_MS);
    *out = in;
    return 0;
}

void lbw_ingest_sample(void *arg, const char *key, int64_t ts_ms, double value)
{
    struct lbw_ingest *in = arg;
    in->stats.samples_in++;
    int rc = lbw_store_append(in->store, key, strlen(key), ts_ms, value);
    if (rc == 0) {
        in->stats.stored++;
        if (++in->pending >= COMMIT_MAX_PENDING)
            lbw_ingest_flush(in);
    } else if (rc == 1) {
        in->stats.dropped++;
    } else {
        in->stats.errors++;
        log_warn("ingest", "could not store a sample of %s", key);
    }
}

void lbw_ingest_stats(const struct lbw_ingest *in, struct lbw_ingest_stats *out)
{
    *out = in->stats;
}

static void on_closed(uv_handle_t *h) { free(h->data); }

void lbw_ingest_close(struct lbw_ingest *in)
{
    if (!in)
        return;
    lbw_ingest_flush(in);
    uv_timer_stop(&in->timer);
    uv_close((uv_handle_t *)&in->timer, on_closed);
}
