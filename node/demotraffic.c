/* demotraffic.c - requests through the demo's balancer. See demotraffic.h. */
#include "node/demotraffic.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>

#include "probes/curluv.h"

static const char *const paths[10] = {"/", "/api/items", "/", "/", "/api/items",
                                      "/", "/admin", "/", "/api/items", "/"};

struct lbw_demo_traffic {
    uv_timer_t timer;
    struct lbw_curluv *cu;
    CURL *easy;
    struct curl_slist *resolve;
    char base[300];             /* https://NAME:PORT */
    char url[340];
    int in_flight;
    unsigned next;
    uint64_t answered, failed;
};

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

static void on_done(void *arg, CURL *easy, CURLcode result)
{
    struct lbw_demo_traffic *t = arg;
    (void)easy;
    t->in_flight = 0;
    if (result == CURLE_OK)
        t->answered++;
    else
        t->failed++;
}

static void on_tick(uv_timer_t *timer)
{
    struct lbw_demo_traffic *t = timer->data;
    if (t->in_flight)
        return;
    snprintf(t->url, sizeof(t->url), "%s%s", t->base, paths[t->next++ % 10]);
    curl_easy_setopt(t->easy, CURLOPT_URL, t->url);
    if (lbw_curluv_submit(t->cu, t->easy, on_done, t) == 0)
        t->in_flight = 1;
}

/* The easy handle every request reuses (so its connection is kept): lbwatch's transfer
 * defaults (TLS 1.2+, verified against ca_file, no proxy), the name resolved to loopback. */
static int configure(struct lbw_demo_traffic *t, const char *name, uint16_t port,
                     const char *ca_file)
{
    char entry[300];
    snprintf(t->base, sizeof(t->base), "https://%s:%u", name, port);
    snprintf(t->url, sizeof(t->url), "%s/", t->base);
    snprintf(entry, sizeof(entry), "%s:%u:127.0.0.1", name, port);
    t->resolve = curl_slist_append(NULL, entry);
    t->easy = curl_easy_init();
    if (!t->resolve || !t->easy ||
        lbw_curl_defaults(t->easy, t->url, "https", ca_file, 3000, NULL) != 0)
        return -1;
    return curl_easy_setopt(t->easy, CURLOPT_RESOLVE, t->resolve) == CURLE_OK &&
                   curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, discard) == CURLE_OK
               ? 0 : -1;
}

static void release(struct lbw_demo_traffic *t)
{
    if (t->easy)
        curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->resolve);
    free(t);
}

int lbw_demo_traffic_start(struct lbw_demo_traffic **out, uv_loop_t *loop, const char *name,
                           uint16_t port, const char *ca_file, uint64_t interval_ms, char *err,
                           size_t errlen)
{
    struct lbw_demo_traffic *t = calloc(1, sizeof(*t));
    if (!t || configure(t, name, port, ca_file) != 0) {
        snprintf(err, errlen, "cannot set up libcurl");
        if (t)
            release(t);
        return -1;
    }
    if (lbw_curluv_new(&t->cu, loop, err, errlen) != 0) {
        release(t);
        return -1;
    }
    uv_timer_init(loop, &t->timer);
    t->timer.data = t;
    uv_timer_start(&t->timer, on_tick, interval_ms, interval_ms);
    *out = t;
    return 0;
}

uint64_t lbw_demo_traffic_answered(const struct lbw_demo_traffic *t) { return t->answered; }

uint64_t lbw_demo_traffic_failed(const struct lbw_demo_traffic *t) { return t->failed; }

static void on_timer_closed(uv_handle_t *h) { release(h->data); }

void lbw_demo_traffic_stop(struct lbw_demo_traffic *t)
{
    if (!t)
        return;
    lbw_curluv_close(t->cu);    /* cancels the request in flight: no callback */
    uv_timer_stop(&t->timer);
    uv_close((uv_handle_t *)&t->timer, on_timer_closed);
}
