/* loadgen.c - synthetic samples for benchmarks, paced by a 1 ms timer and the cluster's
 * backlog. See loadgen.h.
 *
 * Owns the series keys (built once, NUL-terminated back to back in one buffer, with their
 * offsets), the position in the current round and its timestamp, the pacing state and the
 * timer.
 */
#include "node/loadgen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TICK_MS 1
#define DEFAULT_MAX_BACKLOG ((size_t)32 << 20)
#define DEFAULT_MAX_LAG 32
#define CATCH_UP_MS 100             /* a rate's debt is forgotten beyond this */

struct lbw_loadgen {
    struct lbw_loadgen_config cfg;
    uv_timer_t timer;
    char *text;                     /* the keys */
    size_t *offs;                   /* offs[i]: series i's key in text */
    size_t next;                    /* the series the next sample is for */
    uint64_t round;
    int64_t round_ts;               /* the current round's timestamp, 0 = none yet */
    uint64_t base_ms;               /* rate pacing: uv_now() when it became active */
    uint64_t sent_since_base;
    int active;
    struct lbw_loadgen_stats st;
};

/* Builds the key of every series. */
static int build_keys(struct lbw_loadgen *g, char *err, size_t errlen)
{
    size_t cap = g->cfg.series * 64 + 64, len = 0;
    char key[LBW_KEY_MAX], num[24];
    struct lbw_label labels[] = {{"series", num}, {"target", "bench"},
                                 {"vantage", g->cfg.vantage}};
    g->text = malloc(cap);
    g->offs = malloc(g->cfg.series * sizeof(*g->offs));
    if (!g->text || !g->offs) {
        snprintf(err, errlen, "out of memory for %zu series keys", g->cfg.series);
        return -1;
    }
    for (size_t i = 0; i < g->cfg.series; i++) {
        snprintf(num, sizeof(num), "%zu", i);
        int n = lbw_key_build(key, sizeof(key), "lbwatch_synthetic", labels, 3);
        if (n < 0) {
            snprintf(err, errlen, "cannot build a series key with vantage \"%s\"",
                     g->cfg.vantage);
            return -1;
        }
        if (len + (size_t)n + 1 > cap) {
            char *t = realloc(g->text, cap *= 2);
            if (!t) {
                snprintf(err, errlen, "out of memory for %zu series keys", g->cfg.series);
                return -1;
            }
            g->text = t;
        }
        memcpy(g->text + len, key, (size_t)n + 1);
        g->offs[i] = len;
        len += (size_t)n + 1;
    }
    return 0;
}

/* Emits n samples, series after series, starting a round (and its timestamp) as needed. */
static void emit(struct lbw_loadgen *g, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        if (g->next == 0) {
            int64_t now = lbw_now_ms();
            g->round_ts = now > g->round_ts ? now : g->round_ts + 1;
            g->round++;
        }
        size_t i = g->next;
        double value = (double)((g->round + i) & 63);
        g->cfg.sink(g->cfg.sink_arg, g->text + g->offs[i], g->round_ts, value);
        if (++g->next == g->cfg.series)
            g->next = 0;
    }
    g->st.samples += n;
}

/* How many samples the configured rate owes now (at most CATCH_UP_MS worth). */
static size_t owed(struct lbw_loadgen *g, uint64_t now)
{
    uint64_t rate = g->cfg.samples_per_second;
    uint64_t due = rate * (now - g->base_ms) / 1000;
    uint64_t cap = rate * CATCH_UP_MS / 1000 + 1;
    if (due > g->sent_since_base + cap)
        g->sent_since_base = due - cap;
    uint64_t n = due - g->sent_since_base;
    return n > LBW_LOADGEN_TICK_MAX ? LBW_LOADGEN_TICK_MAX : (size_t)n;
}

static void on_tick(uv_timer_t *t)
{
    struct lbw_loadgen *g = t->data;
    size_t n = LBW_LOADGEN_TICK_MAX;
    if (g->cfg.samples_per_second) {
        n = owed(g, uv_now(g->cfg.loop));
        if (n == 0)
            return;
    }
    if (g->cfg.backlog(g->cfg.backlog_arg) >= g->cfg.max_backlog ||
        g->cfg.lag(g->cfg.backlog_arg) >= g->cfg.max_lag) {
        g->st.backlog_waits++;
        return;
    }
    emit(g, n);
    g->sent_since_base += n;
}

int lbw_loadgen_new(struct lbw_loadgen **out, const struct lbw_loadgen_config *cfg, char *err,
                    size_t errlen)
{
    *out = NULL;
    if (cfg->series < 1 || cfg->series > LBW_LOADGEN_MAX_SERIES || !cfg->sink ||
        !cfg->backlog || !cfg->lag || !cfg->vantage) {
        snprintf(err, errlen, "load generator: bad configuration");
        return -1;
    }
    struct lbw_loadgen *g = calloc(1, sizeof(*g));
    if (!g) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    g->cfg = *cfg;
    if (!g->cfg.max_backlog)
        g->cfg.max_backlog = DEFAULT_MAX_BACKLOG;
    if (!g->cfg.max_lag)
        g->cfg.max_lag = DEFAULT_MAX_LAG;
    if (build_keys(g, err, errlen) != 0) {
        free(g->text);
        free(g->offs);
        free(g);
        return -1;
    }
    uv_timer_init(cfg->loop, &g->timer);
    g->timer.data = g;
    *out = g;
    return 0;
}

void lbw_loadgen_set_active(struct lbw_loadgen *g, int active)
{
    if (!g || g->active == !!active)
        return;
    g->active = !!active;
    g->st.active = g->active;
    if (!g->active) {
        uv_timer_stop(&g->timer);
        return;
    }
    g->base_ms = uv_now(g->cfg.loop);
    g->sent_since_base = 0;
    uv_timer_start(&g->timer, on_tick, TICK_MS, TICK_MS);
}

void lbw_loadgen_stats(const struct lbw_loadgen *g, struct lbw_loadgen_stats *out)
{
    *out = g->st;
}

static void on_closed(uv_handle_t *h)
{
    struct lbw_loadgen *g = h->data;
    free(g->text);
    free(g->offs);
    free(g);
}

void lbw_loadgen_close(struct lbw_loadgen *g)
{
    if (!g)
        return;
    uv_timer_stop(&g->timer);
    uv_close((uv_handle_t *)&g->timer, on_closed);
}
