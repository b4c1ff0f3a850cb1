/* promkind.c - the Prometheus scrape: the exposition of one run, checked when it arrives and
 * kept until its allowed samples are emitted. See promkind.h. */
#include "probes/promkind.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct state {
    char *text;                 /* the answer, kept from take to emit */
    size_t len;
};

static int accept_sample(void *arg, const struct lbw_promtext_sample *s)
{
    (void)arg;
    (void)s;
    return 0;
}

static int prometheus_take(void *state, const struct lbw_scrape_source *src, unsigned step,
                           const char *text, size_t len, char *err, size_t errlen)
{
    struct state *st = state;
    struct lbw_promtext_error perr;
    (void)src;
    (void)step;
    if (lbw_promtext_parse(text, len, accept_sample, NULL, &perr) != 0) {
        snprintf(err, errlen, "line %u, column %u: %s", perr.line, perr.column, perr.reason);
        return -1;
    }
    st->text = malloc(len ? len : 1);
    if (!st->text) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(st->text, text, len);
    st->len = len;
    return 0;
}

/* lbwatch_scrape_samples{result=...} for each outcome. Returns the samples not built. */
static size_t emit_counts(const struct lbw_promtext_stats *ps, const struct lbw_emitter *e)
{
    size_t failed = 0;
    failed += lbw_emit1(e, "lbwatch_scrape_samples", "result", "emitted",
                        (double)ps->emitted) != 0;
    failed += lbw_emit1(e, "lbwatch_scrape_samples", "result", "skipped",
                        (double)ps->skipped) != 0;
    failed += lbw_emit1(e, "lbwatch_scrape_samples", "result", "rejected",
                        (double)ps->rejected) != 0;
    return failed;
}

/* lbwatch_probe_error_info with why the scrape kept less than it was allowed to. */
static size_t emit_problem(const char *why, const struct lbw_emitter *e)
{
    return lbw_emit1(e, "lbwatch_probe_error_info", "error", why, 1) != 0;
}

static size_t prometheus_emit(void *state, const struct lbw_scrape_source *src,
                              const struct lbw_emitter *e)
{
    static const struct lbw_promtext_allow nothing = {NULL, 0};
    const struct lbw_prometheus_options *o = src->options;
    struct state *st = state;
    struct lbw_promtext_stats ps;
    char why[240];
    size_t failed = 0;

    if (lbw_promtext_emit_allowed(st->text, st->len, o ? &o->allow : &nothing, e, &ps) != 0) {
        /* take parsed the same text: only a failed allocation gets here */
        snprintf(why, sizeof(why), "line %u, column %u: %s", ps.error.line, ps.error.column,
                 ps.error.reason);
        return emit_problem(why, e);
    }
    failed += emit_counts(&ps, e);
    if (ps.rejected) {
        snprintf(why, sizeof(why), "%llu sample%s rejected, the first on line %u: %s",
                 (unsigned long long)ps.rejected, ps.rejected == 1 ? "" : "s",
                 ps.first_rejected_line, ps.first_rejected);
        failed += emit_problem(why, e);
    }
    return failed;
}

static void prometheus_release(void *state)
{
    struct state *st = state;
    free(st->text);
}

const struct lbw_scrape_kind lbw_prometheus_kind = {
    .name = "prometheus",
    .state_size = sizeof(struct state),
    .max_bytes = LBW_PROMETHEUS_ANSWER_MAX,
    .next = lbw_scrape_next_once,
    .take = prometheus_take,
    .emit = prometheus_emit,
    .release = prometheus_release,
};
