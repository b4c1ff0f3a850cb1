/* scrape.c - runs a kind's conversation with a statistics endpoint. See scrape.h.
 *
 * Owns a fetcher and the runs in flight; a run owns the kind's state. Each step's request
 * goes out with what is left of the run's timeout; errors are prefixed with the request
 * ("show stat: ...") so the operator sees which one failed.
 */
#include "probes/scrape.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_TIMEOUT_MS 10000

struct lbw_scrape_run {
    struct lbw_scrape_run *prev, *next;
    struct lbw_scraper *owner;
    const struct lbw_scrape_kind *kind;
    const struct lbw_scrape_source *src;
    void *state;
    unsigned step;
    uint64_t started_ns;
    uint64_t timeout_ms;
    lbw_scrape_cb cb;
    void *arg;
    struct lbw_scrape_request req;
};

struct lbw_scraper {
    struct lbw_fetcher *fetcher;
    struct lbw_scrape_run *runs;
    size_t nruns;
};

int lbw_scrape_next_once(void *state, const struct lbw_scrape_source *src, unsigned step,
                         struct lbw_scrape_request *req)
{
    (void)state;
    (void)src;
    req->send[0] = '\0';
    return step == 0;
}

/* --- runs ------------------------------------------------------------------------------------ */

static void run_free(struct lbw_scrape_run *run)
{
    if (run->kind->release)
        run->kind->release(run->state);
    free(run->state);
    free(run);
}

static void run_unlink(struct lbw_scrape_run *run)
{
    struct lbw_scraper *s = run->owner;
    if (run->prev)
        run->prev->next = run->next;
    else
        s->runs = run->next;
    if (run->next)
        run->next->prev = run->prev;
    s->nruns--;
}

static double run_seconds(const struct lbw_scrape_run *run)
{
    return (double)(lbw_mono_ns() - run->started_ns) / 1e9;
}

/* The request as a prefix for messages: its first line, or nothing over HTTP. */
static int request_name(const struct lbw_scrape_run *run, char *out, size_t size)
{
    size_t n = strcspn(run->req.send, "\r\n");
    if (run->src->via == LBW_FETCH_HTTP || n == 0)
        return snprintf(out, size, "%s", "");
    return snprintf(out, size, "%.*s: ", (int)(n > 60 ? 60 : n), run->req.send);
}

static void run_finish(struct lbw_scrape_run *run, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Reports the run (a success when fmt is NULL) and frees it. */
static void run_finish(struct lbw_scrape_run *run, const char *fmt, ...)
{
    struct lbw_scrape_result r = {.success = fmt == NULL, .seconds = run_seconds(run),
                                  .requests = run->step, .run = run};
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r.error, sizeof(r.error), fmt, ap);
        va_end(ap);
    }
    run_unlink(run);
    run->cb(run->arg, &r);
    run_free(run);
}

static int run_step(struct lbw_scrape_run *run);

static void on_fetched(void *arg, const struct lbw_fetch_result *fr)
{
    struct lbw_scrape_run *run = arg;
    char name[80], err[200];
    request_name(run, name, sizeof(name));
    if (!fr->ok) {
        run_finish(run, "%s%s", name, fr->error);
        return;
    }
    err[0] = '\0';
    if (run->kind->take(run->state, run->src, run->step, fr->body, fr->len, err,
                        sizeof(err)) != 0) {
        run_finish(run, "%s%s", name, err[0] ? err : "unreadable answer");
        return;
    }
    run->step++;
    if (run_step(run) != 0)
        run_finish(run, "could not start request %u", run->step + 1);
}

/* Sends run->req with timeout_ms to go. */
static int run_request(struct lbw_scrape_run *run, uint64_t timeout_ms)
{
    const struct lbw_scrape_source *src = run->src;
    run->req.send[sizeof(run->req.send) - 1] = '\0';
    struct lbw_fetch_req fr = {
        .via = src->via, .url = src->url, .username = src->username,
        .password = src->password, .ca_file = src->ca_file, .path = src->path,
        .ip = src->ip, .port = src->port,
        .send = src->via == LBW_FETCH_HTTP || !run->req.send[0] ? NULL : run->req.send,
        .max_bytes = run->kind->max_bytes, .timeout_ms = timeout_ms,
    };
    return lbw_fetch_start(run->owner->fetcher, &fr, on_fetched, run);
}

/* Starts the next request, or reports the run complete. Returns -1 if it could not start. */
static int run_step(struct lbw_scrape_run *run)
{
    uint64_t spent_ms = (lbw_mono_ns() - run->started_ns) / 1000000;
    memset(&run->req, 0, sizeof(run->req));
    if (!run->kind->next(run->state, run->src, run->step, &run->req)) {
        run_finish(run, NULL);
        return 0;
    }
    if (spent_ms >= run->timeout_ms) {
        run_finish(run, "timeout after %llu ms", (unsigned long long)run->timeout_ms);
        return 0;
    }
    return run_request(run, run->timeout_ms - spent_ms);
}

/* --- API ------------------------------------------------------------------------------------- */

int lbw_scraper_new(struct lbw_scraper **out, uv_loop_t *loop, char *err, size_t errlen)
{
    struct lbw_scraper *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (lbw_fetcher_new(&s->fetcher, loop, err, errlen) != 0) {
        free(s);
        return -1;
    }
    *out = s;
    return 0;
}

int lbw_scrape_start(struct lbw_scraper *s, const struct lbw_scrape_kind *kind,
                     const struct lbw_scrape_source *src, uint64_t timeout_ms, lbw_scrape_cb cb,
                     void *arg)
{
    struct lbw_scrape_run *run = calloc(1, sizeof(*run));
    if (!run)
        return -1;
    run->state = calloc(1, kind->state_size ? kind->state_size : 1);
    if (!run->state) {
        free(run);
        return -1;
    }
    run->owner = s;
    run->kind = kind;
    run->src = src;
    run->timeout_ms = timeout_ms ? timeout_ms : DEFAULT_TIMEOUT_MS;
    run->started_ns = lbw_mono_ns();
    run->cb = cb;
    run->arg = arg;
    if (!kind->next(run->state, src, 0, &run->req)) {
        run_free(run);
        return -1;
    }
    run->next = s->runs;
    if (s->runs)
        s->runs->prev = run;
    s->runs = run;
    s->nruns++;
    if (run_request(run, run->timeout_ms) != 0) {
        run_unlink(run);
        run_free(run);
        return -1;
    }
    return 0;
}

size_t lbw_scrape_result_emit(const struct lbw_scrape_result *r, const struct lbw_emitter *e)
{
    size_t failed = 0;
    failed += lbw_emit(e, "probe_success", r->success ? 1 : 0) != 0;
    failed += lbw_emit(e, "probe_duration_seconds", r->seconds) != 0;
    if (!r->success || !r->run)
        return failed;
    const struct lbw_scrape_kind *kind = r->run->kind;
    failed += kind->emit(r->run->state, r->run->src, e);
    if (kind->derive && r->run->src->memory)
        failed += kind->derive(r->run->state, r->run->src->memory, e);
    return failed;
}

size_t lbw_scraper_active(const struct lbw_scraper *s)
{
    return s->nruns;
}

void lbw_scraper_close(struct lbw_scraper *s)
{
    if (!s)
        return;
    lbw_fetcher_close(s->fetcher); /* no more fetch callbacks */
    while (s->runs) {
        struct lbw_scrape_run *run = s->runs;
        run_unlink(run);
        run_free(run);
    }
    free(s);
}
