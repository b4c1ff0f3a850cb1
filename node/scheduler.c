/* scheduler.c - probe timers per target and job. See scheduler.h. */
#include "node/scheduler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/log.h"
#include "probes/haproxykind.h"
#include "probes/http.h"
#include "probes/nginxkind.h"
#include "probes/promkind.h"
#include "probes/scrape.h"
#include "probes/tls.h"

enum job_kind { JOB_TLS, JOB_HTTP, JOB_REDIRECT, JOB_SCRAPE };
static const char *const job_names[] = {"tls", "http", "redirect", NULL /* the kind's */};

/* The scrape kinds a target's statistics endpoints (node/statsconf.h) can name: the config
 * key, the kind (probes/scrape.h) and where its options are in the configuration (NULL when
 * it has none). */
static const void *haproxy_options(const struct lbw_target_stats *st) { return &st->haproxy; }
static const void *prometheus_options(const struct lbw_target_stats *st)
{
    return &st->prometheus;
}

static const struct scrape_kind {
    const char *key;
    const struct lbw_scrape_kind *kind;
    const void *(*options)(const struct lbw_target_stats *st);
} scrape_kinds[] = {
    {"haproxy", &lbw_haproxy_kind, haproxy_options},
    {"nginx", &lbw_nginx_kind, NULL},
    {"prometheus", &lbw_prometheus_kind, prometheus_options},
};

struct job {
    uv_timer_t timer;
    struct lbw_scheduler *sched;
    const struct lbw_target *target;
    enum job_kind kind;
    const char *probe;          /* the probe label: job_names[kind] or the scrape kind's */
    int in_flight;
    int last_success;           /* -1 before the first result */
    int64_t started_ms;
    char url[600];              /* HTTP jobs */
    char connect_to[300];
    const struct lbw_scrape_kind *scrape;   /* scrape jobs */
    struct lbw_scrape_source source;    /* its memory is the job's, freed with it */
};

struct lbw_scheduler {
    uv_loop_t *loop;
    const struct lbw_config *cfg;
    lbw_sample_fn fn;
    void *arg;
    struct lbw_tls_prober *tls;
    struct lbw_http_prober *http;
    struct lbw_scraper *scraper;
    struct job *jobs;
    size_t njobs;
    size_t closing;
    struct lbw_scheduler_stats stats;
};

/* host as it must appear in a URL or host:port: IPv6 literals in brackets */
static void format_host(char *out, size_t len, const char *host)
{
    snprintf(out, len, strchr(host, ':') ? "[%s]" : "%s", host);
}

static void emit_result(struct job *j, int success, const char *error,
                        void (*emit)(const void *r, const struct lbw_emitter *e), const void *r)
{
    struct lbw_scheduler *s = j->sched;
    struct lbw_label base[] = {
        {"probe", j->probe},
        {"target", j->target->name},
        {"vantage", s->cfg->node.name},
    };
    struct lbw_emitter e = {s->fn, s->arg, base, 3, j->started_ms};

    emit(r, &e);
    if (!success)
        lbw_emit1(&e, "lbwatch_probe_error_info", "error", error, 1);
    s->stats.probes_run++;
    if (!success)
        s->stats.probes_failed++;
    if (success != j->last_success) {
        if (success)
            log_info("sched", "target %s %s: up", j->target->name, j->probe);
        else
            log_warn("sched", "target %s %s: down (%s)", j->target->name, j->probe, error);
        j->last_success = success;
    }
    j->in_flight = 0;
    s->stats.in_flight--;
}

static void emit_tls(const void *r, const struct lbw_emitter *e) { lbw_tls_result_emit(r, e); }
static void emit_http(const void *r, const struct lbw_emitter *e) { lbw_http_result_emit(r, e); }

static void on_tls_done(void *arg, const struct lbw_tls_result *r)
{
    emit_result(arg, r->success, r->error, emit_tls, r);
}

static void on_http_done(void *arg, const struct lbw_http_result *r)
{
    emit_result(arg, r->success, r->error, emit_http, r);
}

static void emit_scrape(const void *r, const struct lbw_emitter *e)
{
    size_t lost = lbw_scrape_result_emit(r, e);
    if (lost)
        log_warn("sched", "%zu samples not stored: key longer than %d bytes", lost,
                 LBW_KEY_MAX - 1);
}

static void on_scrape_done(void *arg, const struct lbw_scrape_result *r)
{
    emit_result(arg, r->success, r->error, emit_scrape, r);
}

static int start_tls(struct job *j)
{
    const struct lbw_target *t = j->target;
    struct lbw_tls_target tt = {
        .host = t->host, .port = t->port, .server_name = t->server_name,
        .ca_file = t->ca_file, .timeout_ms = t->timeout_ms,
    };
    return lbw_tls_probe_start(j->sched->tls, &tt, on_tls_done, j);
}

static int start_http(struct job *j)
{
    const struct lbw_target *t = j->target;
    struct lbw_http_target ht = {
        .url = j->url, .connect_to = j->connect_to, .ca_file = t->ca_file,
        .expect_status = j->kind == JOB_HTTP ? t->http.expect_status : 0,
        .expect_body = j->kind == JOB_HTTP ? t->http.expect_body : NULL,
        .expect_https_redirect = j->kind == JOB_REDIRECT,
        .https_port = t->port,
        .timeout_ms = t->timeout_ms,
    };
    return lbw_http_probe_start(j->sched->http, &ht, on_http_done, j);
}

static int start_scrape(struct job *j)
{
    return lbw_scrape_start(j->sched->scraper, j->scrape, &j->source, j->target->timeout_ms,
                            on_scrape_done, j);
}

static void on_tick(uv_timer_t *timer)
{
    struct job *j = timer->data;
    if (j->in_flight) {
        log_debug("sched", "target %s %s: previous probe still running, skipping",
                  j->target->name, j->probe);
        return;
    }
    j->started_ms = lbw_now_ms();
    int rc = j->kind == JOB_TLS      ? start_tls(j)
             : j->kind == JOB_SCRAPE ? start_scrape(j)
                                     : start_http(j);
    if (rc != 0) {
        log_error("sched", "target %s %s: could not start probe", j->target->name, j->probe);
        return;
    }
    j->in_flight = 1;
    j->sched->stats.in_flight++;
}

static int init_job(struct lbw_scheduler *s, struct job *j, const struct lbw_target *t,
                    enum job_kind kind)
{
    char host[300], name[300];
    int n1 = 0, n2 = 0;
    memset(j, 0, sizeof(*j));
    j->sched = s;
    j->target = t;
    j->kind = kind;
    j->probe = job_names[kind];
    j->last_success = -1;
    format_host(host, sizeof(host), t->host);
    format_host(name, sizeof(name), t->server_name);
    if (kind == JOB_HTTP) {
        n1 = snprintf(j->url, sizeof(j->url), "https://%s:%u%s", name, t->port, t->http.path);
        n2 = snprintf(j->connect_to, sizeof(j->connect_to), "%s:%u", host, t->port);
    } else if (kind == JOB_REDIRECT) {
        n1 = snprintf(j->url, sizeof(j->url), "http://%s:%u/", name, t->redirect_port);
        n2 = snprintf(j->connect_to, sizeof(j->connect_to), "%s:%u", host, t->redirect_port);
    }
    if (n1 < 0 || (size_t)n1 >= sizeof(j->url) || n2 < 0 || (size_t)n2 >= sizeof(j->connect_to))
        return -1;
    uv_timer_init(s->loop, &j->timer);
    j->timer.data = j;
    return 0;
}

static const struct scrape_kind *scrape_kind_of(const char *key)
{
    for (size_t i = 0; i < sizeof(scrape_kinds) / sizeof(scrape_kinds[0]); i++)
        if (strcmp(scrape_kinds[i].key, key) == 0)
            return &scrape_kinds[i];
    return NULL;
}

/* A scrape job for one of the target's statistics endpoints. */
static int init_scrape_job(struct lbw_scheduler *s, struct job *j, const struct lbw_target *t,
                           const struct lbw_target_stats *st)
{
    static const enum lbw_fetch_via via[] = {
        [LBW_STATS_URL] = LBW_FETCH_HTTP, [LBW_STATS_SOCKET] = LBW_FETCH_UNIX,
        [LBW_STATS_ADDRESS] = LBW_FETCH_TCP,
    };
    const struct scrape_kind *k = scrape_kind_of(st->kind);
    void *memory = k && k->kind->memory_size ? calloc(1, k->kind->memory_size) : NULL;
    if (!k || (k->kind->memory_size && !memory) || init_job(s, j, t, JOB_SCRAPE) != 0) {
        free(memory);
        return -1;
    }
    j->scrape = k->kind;
    j->probe = k->kind->name;
    j->source = (struct lbw_scrape_source){
        .via = via[st->via], .url = st->url, .username = st->username,
        .password = st->password, .ca_file = st->ca_file, .path = st->socket, .ip = st->ip,
        .port = st->port, .options = k->options ? k->options(st) : NULL, .memory = memory,
    };
    return 0;
}

static size_t count_jobs(const struct lbw_config *cfg)
{
    size_t n = 0;
    for (size_t i = 0; i < cfg->ntargets; i++)
        n += (cfg->targets[i].tls != 0) + (cfg->targets[i].http.enabled != 0) +
             (cfg->targets[i].redirect_port != 0) + cfg->targets[i].nstats;
    return n;
}

/* The jobs of target t from s->jobs[*n] on. */
static int init_target_jobs(struct lbw_scheduler *s, const struct lbw_target *t, size_t *n,
                            char *err, size_t errlen)
{
    enum job_kind kinds[3];
    size_t nk = 0;
    if (t->tls)
        kinds[nk++] = JOB_TLS;
    if (t->http.enabled)
        kinds[nk++] = JOB_HTTP;
    if (t->redirect_port)
        kinds[nk++] = JOB_REDIRECT;
    for (size_t k = 0; k < nk; k++, (*n)++) {
        if (init_job(s, &s->jobs[*n], t, kinds[k]) != 0) {
            snprintf(err, errlen, "target %s: URL too long", t->name);
            return -1;
        }
    }
    for (size_t k = 0; k < t->nstats; k++, (*n)++) {
        if (init_scrape_job(s, &s->jobs[*n], t, &t->stats[k]) != 0) {
            snprintf(err, errlen, "target %s: no probe for %s statistics", t->name,
                     t->stats[k].kind);
            return -1;
        }
    }
    return 0;
}

static void start_timers(struct lbw_scheduler *s)
{
    for (size_t i = 0; i < s->njobs; i++) {
        struct job *j = &s->jobs[i];
        uint64_t interval = j->target->interval_ms;
        /* spread first runs over the first interval, the first one at once */
        uint64_t first = s->njobs > 1 ? (interval * i) / s->njobs : 0;
        uv_timer_start(&j->timer, on_tick, first, interval);
    }
}

/* The probers every job kind uses. Returns 0, or -1 with err (none left open). */
static int open_probers(struct lbw_scheduler *s, char *err, size_t errlen)
{
    if (lbw_tls_prober_new(&s->tls, s->loop, err, errlen) != 0)
        return -1;
    if (lbw_http_prober_new(&s->http, s->loop, err, errlen) != 0) {
        lbw_tls_prober_close(s->tls);
        return -1;
    }
    if (lbw_scraper_new(&s->scraper, s->loop, err, errlen) != 0) {
        lbw_tls_prober_close(s->tls);
        lbw_http_prober_close(s->http);
        return -1;
    }
    return 0;
}

int lbw_scheduler_new(struct lbw_scheduler **out, uv_loop_t *loop, const struct lbw_config *cfg,
                      lbw_sample_fn fn, void *arg, char *err, size_t errlen)
{
    struct lbw_scheduler *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->loop = loop;
    s->cfg = cfg;
    s->fn = fn;
    s->arg = arg;
    s->njobs = count_jobs(cfg);
    s->jobs = calloc(s->njobs ? s->njobs : 1, sizeof(*s->jobs));
    if (!s->jobs || open_probers(s, err, errlen) != 0) {
        free(s->jobs);
        free(s);
        return -1;
    }
    size_t n = 0;
    for (size_t i = 0; i < cfg->ntargets; i++) {
        if (init_target_jobs(s, &cfg->targets[i], &n, err, errlen) != 0) {
            s->njobs = n; /* the jobs whose timers were initialised */
            lbw_scheduler_close(s);
            return -1;
        }
    }
    start_timers(s);
    *out = s;
    return 0;
}

void lbw_scheduler_stats(const struct lbw_scheduler *s, struct lbw_scheduler_stats *out)
{
    *out = s->stats;
}

static void free_jobs(struct lbw_scheduler *s)
{
    for (size_t i = 0; i < s->njobs; i++)
        free(s->jobs[i].source.memory);
    free(s->jobs);
    free(s);
}

static void on_job_closed(uv_handle_t *h)
{
    struct job *j = h->data;
    struct lbw_scheduler *s = j->sched;
    if (++s->closing == s->njobs)
        free_jobs(s);
}

void lbw_scheduler_close(struct lbw_scheduler *s)
{
    if (!s)
        return;
    lbw_tls_prober_close(s->tls);
    lbw_http_prober_close(s->http);
    lbw_scraper_close(s->scraper);
    if (s->njobs == 0) {
        free_jobs(s);
        return;
    }
    for (size_t i = 0; i < s->njobs; i++)
        uv_close((uv_handle_t *)&s->jobs[i].timer, on_job_closed);
}
