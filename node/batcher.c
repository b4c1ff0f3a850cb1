/* batcher.c - samples into signed batches, submitted on a timer or when full. See batcher.h. */
#include "node/batcher.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node/log.h"

#define FLUSH_INTERVAL_MS 250
#define FLUSH_SAMPLES 32768
#define FLUSH_BYTES (2u << 20)

struct lbw_batcher {
    uv_timer_t timer;
    const struct lbw_signer *signer;
    struct lbw_cluster *cluster;
    struct lbw_batch_builder *builder;
    uint64_t next_seq;
    struct lbw_batcher_stats stats;
};

static uint64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void lbw_batcher_flush(struct lbw_batcher *b)
{
    uint8_t *entry;
    size_t len;
    char err[256];

    if (lbw_batch_samples(b->builder) == 0)
        return;
    uint64_t seq = b->next_seq++;
    if (lbw_batch_finish(b->builder, b->signer, seq, &entry, &len, err, sizeof(err)) != 0) {
        log_error("batch", "cannot sign a batch of %zu samples: %s",
                  lbw_batch_samples(b->builder), err);
        lbw_batch_reset(b->builder);
        return;
    }
    lbw_batch_reset(b->builder);
    b->stats.batches++;
    b->stats.last_seq = seq;
    if (lbw_cluster_submit(b->cluster, seq, entry, len) != 0) {
        b->stats.dropped_batches++;
        log_warn("batch", "batch %llu dropped: too many batches waiting for the cluster",
                 (unsigned long long)seq);
    }
}

static void on_timer(uv_timer_t *t) { lbw_batcher_flush(t->data); }

int lbw_batcher_new(struct lbw_batcher **out, uv_loop_t *loop, const struct lbw_signer *signer,
                    struct lbw_cluster *cluster, uint64_t min_seq)
{
    struct lbw_batcher *b = calloc(1, sizeof(*b));
    if (!b || !(b->builder = lbw_batch_builder_new())) {
        free(b);
        return -1;
    }
    b->signer = signer;
    b->cluster = cluster;
    b->next_seq = wall_us();
    if (b->next_seq <= min_seq)
        b->next_seq = min_seq + 1;
    uv_timer_init(loop, &b->timer);
    b->timer.data = b;
    uv_timer_start(&b->timer, on_timer, FLUSH_INTERVAL_MS, FLUSH_INTERVAL_MS);
    *out = b;
    return 0;
}

void lbw_batcher_sample(void *arg, const char *key, int64_t ts_ms, double value)
{
    struct lbw_batcher *b = arg;
    b->stats.samples_in++;
    if (lbw_batch_add(b->builder, key, strlen(key), ts_ms, value) != 0) {
        b->stats.rejected++;
        log_warn("batch", "sample of %s refused by the batch builder", key);
        return;
    }
    if (lbw_batch_samples(b->builder) >= FLUSH_SAMPLES ||
        lbw_batch_payload_bytes(b->builder) >= FLUSH_BYTES)
        lbw_batcher_flush(b);
}

void lbw_batcher_stats(const struct lbw_batcher *b, struct lbw_batcher_stats *out)
{
    *out = b->stats;
}

static void on_closed(uv_handle_t *h)
{
    struct lbw_batcher *b = h->data;
    lbw_batch_builder_free(b->builder);
    free(b);
}

void lbw_batcher_close(struct lbw_batcher *b)
{
    if (!b)
        return;
    lbw_batcher_flush(b);
    uv_timer_stop(&b->timer);
    uv_close((uv_handle_t *)&b->timer, on_closed);
}
