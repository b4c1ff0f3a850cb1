/* scrape.h - scrapes: probes that fetch one or more texts from a balancer's statistics
 * endpoint (probes/fetch.h: HTTP, a unix socket or a TCP socket), parse them and describe
 * them as samples. What to ask for and how to read the answers is a kind's business
 * (struct lbw_scrape_kind: HAProxy in probes/haproxykind.h, nginx in probes/nginxkind.h, a
 * Prometheus exporter in probes/promkind.h); this module runs the conversation on the loop,
 * one request after another, within one timeout for the whole run.
 *
 * A kind with a single request (a status page, a Prometheus text endpoint) needs only a take
 * and an emit function and lbw_scrape_next_once, as probes/nginxkind.c shows:
 *
 *     static int nginx_take(void *st, const struct lbw_scrape_source *src, unsigned step,
 *                           const char *text, size_t len, char *err, size_t errlen)
 *     {
 *         return lbw_nginx_stub_parse(text, len, st, err, errlen);
 *     }
 *     static size_t nginx_emit(void *st, const struct lbw_scrape_source *src,
 *                              const struct lbw_emitter *e)
 *     {
 *         return lbw_nginx_stub_emit(st, e);
 *     }
 *     const struct lbw_scrape_kind lbw_nginx_kind = {
 *         "nginx", sizeof(struct lbw_nginx_stub), 1 << 16, lbw_scrape_next_once, nginx_take,
 *         nginx_emit, NULL,
 *     };
 *
 * Everything runs on the loop's thread; this module does not log.
 */
#ifndef LBW_SCRAPE_H
#define LBW_SCRAPE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "probes/fetch.h"
#include "probes/sample.h"

#define LBW_SCRAPE_SEND_MAX 512     /* a request line on a stream socket */

/* Where a kind's texts come from. The strings (and options) are not copied: they must stay
 * valid while a run from this source is in flight (the node's configuration does). */
struct lbw_scrape_source {
    enum lbw_fetch_via via;
    const char *url;            /* HTTP: GET this */
    const char *username;       /* HTTP basic authentication, both or neither; NULL */
    const char *password;
    const char *ca_file;        /* https: PEM CA bundle instead of the system CAs; NULL */
    const char *path;           /* UNIX: socket path */
    const char *ip;             /* TCP: IP address */
    uint16_t port;
    const void *options;        /* the kind's own options (e.g. an allow-list); NULL */
    void *memory;               /* the kind's memory of this source (memory_size below, zeroed
                                   before the first run, kept by the caller from run to run,
                                   one block per source); NULL when the kind has none */
};

/* One request of a run. Over HTTP it is a GET of the source's URL and send is ignored; over a
 * stream socket, send is written once connected and the answer read until the peer closes. */
struct lbw_scrape_request {
    char send[LBW_SCRAPE_SEND_MAX];
};

struct lbw_scrape_kind {
    const char *name;           /* the probe label of its samples, e.g. "haproxy" */
    size_t state_size;          /* per-run state, zeroed before the first step */
    size_t max_bytes;           /* the longest answer accepted to one request */
    /* Describes request number step (0, 1, ...) in req and returns 1, or returns 0 when the
     * run is complete; the answers to the steps before have been taken. */
    int (*next)(void *state, const struct lbw_scrape_source *src, unsigned step,
                struct lbw_scrape_request *req);
    /* Takes the answer to request step. Returns 0, or -1 with a reason in err, which fails
     * the run. */
    int (*take)(void *state, const struct lbw_scrape_source *src, unsigned step,
                const char *text, size_t len, char *err, size_t errlen);
    /* Describes a successful run as samples. Returns the samples that could not be built. */
    size_t (*emit)(void *state, const struct lbw_scrape_source *src,
                   const struct lbw_emitter *e);
    /* Frees what take kept in state; NULL when it keeps nothing that needs freeing. Called
     * once per run, whether it succeeded or not. */
    void (*release)(void *state);
    /* What the kind remembers of a source from one successful run to the next, to derive
     * rates and ratios of counters: memory_size bytes (src->memory) holding no pointers, so
     * nothing needs freeing; 0 when it remembers nothing. */
    size_t memory_size;
    /* Describes what is derived from a successful run and the source's memory, and updates
     * the memory; called after emit, with the same emitter. Returns the samples that could
     * not be built. NULL when the kind derives nothing; not called when src->memory is
     * NULL. */
    size_t (*derive)(void *state, void *memory, const struct lbw_emitter *e);
};

/* A next function for kinds with one request: a GET over HTTP, nothing sent on a socket. */
int lbw_scrape_next_once(void *state, const struct lbw_scrape_source *src, unsigned step,
                         struct lbw_scrape_request *req);

struct lbw_scraper;
struct lbw_scrape_run;

struct lbw_scrape_result {
    int success;
    char error[240];            /* why not: "show stat: connect: connection refused",
                                   "show info: line 3: ...", "timeout after 5000 ms" */
    double seconds;             /* the whole run */
    unsigned requests;          /* requests answered */
    struct lbw_scrape_run *run; /* for lbw_scrape_result_emit, during the callback only */
};

typedef void (*lbw_scrape_cb)(void *arg, const struct lbw_scrape_result *r);

/* A scraper for loop (it owns a fetcher). Returns 0, or -1 with a reason in err. */
int lbw_scraper_new(struct lbw_scraper **out, uv_loop_t *loop, char *err, size_t errlen);

/* Starts a run of kind against src, all of it within timeout_ms (0 = 10 s). kind and src
 * must outlive the run. cb runs once, on a later loop iteration. Returns 0, or -1 (cb is not
 * called) when memory ran out or the kind asked for nothing. */
int lbw_scrape_start(struct lbw_scraper *s, const struct lbw_scrape_kind *kind,
                     const struct lbw_scrape_source *src, uint64_t timeout_ms, lbw_scrape_cb cb,
                     void *arg);

/* Describes a result as samples: probe_success, probe_duration_seconds and, after a success,
 * the kind's samples and what it derives (updating the source's memory). Call it from the
 * callback, once. Returns the samples not built. */
size_t lbw_scrape_result_emit(const struct lbw_scrape_result *r, const struct lbw_emitter *e);

/* Runs in flight. */
size_t lbw_scraper_active(const struct lbw_scraper *s);

/* Cancels every run (no callbacks) and frees the scraper once its handles have closed: run
 * the loop afterwards. */
void lbw_scraper_close(struct lbw_scraper *s);

#endif
