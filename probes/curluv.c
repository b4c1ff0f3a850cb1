/* curluv.c - libcurl's multi_socket interface on a libuv loop. See curluv.h.
 *
 * Owns the CURLM handle, the uv_timer_t that stands for libcurl's single timeout, one
 * uv_poll_t (struct sock) per socket libcurl watches, and one struct xfer per submitted easy
 * handle (found again through CURLOPT_PRIVATE). The struct itself is freed when the last of
 * its uv handles has closed after lbw_curluv_close.
 */
#include "probes/curluv.h"

#include <stdio.h>
#include <stdlib.h>

struct xfer {
    struct xfer *prev, *next;
    struct lbw_curluv *owner;
    CURL *easy;
    lbw_curluv_done_cb cb;
    void *arg;
};

struct sock {
    uv_poll_t poll;
    struct sock *prev, *next;
    struct lbw_curluv *owner;
    curl_socket_t fd;
};

struct lbw_curluv {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    struct xfer *xfers;
    size_t nxfers;
    struct sock *socks;      /* sockets being watched (retired ones are unlinked) */
    unsigned open_handles;   /* timer + polls not yet through their close callback */
    int closing;
};

/* --- handle lifetime ---------------------------------------------------------------------- */

static void handle_closed(struct lbw_curluv *c)
{
    c->open_handles--;
    if (c->closing && c->open_handles == 0)
        free(c);
}

static void on_timer_closed(uv_handle_t *h)
{
    handle_closed(h->data);
}

static void on_sock_closed(uv_handle_t *h)
{
    struct sock *s = h->data;
    struct lbw_curluv *c = s->owner;
    free(s);
    handle_closed(c);
}

/* --- completions -------------------------------------------------------------------------- */

static struct xfer *xfer_of(CURL *easy)
{
    char *priv = NULL;
    if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv) != CURLE_OK)
        return NULL;
    return (struct xfer *)priv;
}

/* Takes the transfer out of the multi and forgets it; the easy handle is the caller's. */
static void xfer_detach(struct lbw_curluv *c, struct xfer *x)
{
    curl_multi_remove_handle(c->multi, x->easy);
    curl_easy_setopt(x->easy, CURLOPT_PRIVATE, NULL);
    if (x->prev)
        x->prev->next = x->next;
    else
        c->xfers = x->next;
    if (x->next)
        x->next->prev = x->prev;
    c->nxfers--;
    free(x);
}

/* Hands every finished transfer to its callback. A callback may close c: stop reading then. */
static void dispatch_done(struct lbw_curluv *c)
{
    CURLMsg *m;
    int left;
    while (!c->closing && (m = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURL *easy = m->easy_handle;
        CURLcode result = m->data.result;
        struct xfer *x = xfer_of(easy);
        if (!x)
            continue;
        lbw_curluv_done_cb cb = x->cb;
        void *arg = x->arg;
        xfer_detach(c, x);
        cb(arg, easy, result);
    }
}

/* Transfer failures come back through curl_multi_info_read, not as socket_action's result,
 * which only reports misuse of the multi handle. */
static void drive(struct lbw_curluv *c, curl_socket_t fd, int flags)
{
    int running;
    curl_multi_socket_action(c->multi, fd, flags, &running);
    dispatch_done(c);
}

/* --- sockets ------------------------------------------------------------------------------ */

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct sock *s = h->data;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    drive(s->owner, s->fd, flags);
}

static void sock_retire(struct sock *s)
{
    struct lbw_curluv *c = s->owner;
    if (s->prev)
        s->prev->next = s->next;
    else
        c->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

/* libcurl told us nothing about fd since it last handed us a fresh one, so a watcher still
 * holding that descriptor number belongs to a socket it closed without CURL_POLL_REMOVE;
 * libuv refuses a second poll handle on one fd, so retire the stale one first. */
static void retire_stale(struct lbw_curluv *c, curl_socket_t fd)
{
    for (struct sock *s = c->socks; s; s = s->next) {
        if (s->fd == fd) {
            sock_retire(s);
            return;
        }
    }
}

static struct sock *sock_open(struct lbw_curluv *c, curl_socket_t fd)
{
    retire_stale(c, fd);
    struct sock *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    if (uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
        free(s);
        return NULL;
    }
    s->poll.data = s;
    s->owner = c;
    s->fd = fd;
    s->next = c->socks;
    if (c->socks)
        c->socks->prev = s;
    c->socks = s;
    c->open_handles++;
    return s;
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct lbw_curluv *c = userp;
    struct sock *s = socketp;
    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            curl_multi_assign(c->multi, fd, NULL);
            sock_retire(s);
        }
        return 0;
    }
    if (!s) {
        s = sock_open(c, fd);
        if (!s)
            return -1;
        curl_multi_assign(c->multi, fd, s);
    }
    int events = 0;
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    return uv_poll_start(&s->poll, events, on_poll) == 0 ? 0 : -1;
}

/* --- libcurl's timeout -------------------------------------------------------------------- */

static void on_timeout(uv_timer_t *t)
{
    drive(t->data, CURL_SOCKET_TIMEOUT, 0);
}

/* libcurl must not be re-entered from here: a 0 ms timeout fires on the next loop turn. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct lbw_curluv *c = userp;
    (void)multi;
    if (timeout_ms < 0)
        return uv_timer_stop(&c->timer) == 0 ? 0 : -1;
    return uv_timer_start(&c->timer, on_timeout, (uint64_t)timeout_ms, 0) == 0 ? 0 : -1;
}

/* --- API ---------------------------------------------------------------------------------- */

static int multi_configure(struct lbw_curluv *c)
{
    return curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket) != CURLM_OK ||
           curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c) != CURLM_OK ||
           curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK ||
           curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c) != CURLM_OK
               ? -1
               : 0;
}

int lbw_curluv_new(struct lbw_curluv **out, uv_loop_t *loop, char *err, size_t errlen)
{
    struct lbw_curluv *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    c->loop = loop;
    c->multi = curl_multi_init();
    if (!c->multi || multi_configure(c) != 0) {
        snprintf(err, errlen, "cannot set up a libcurl multi handle");
        curl_multi_cleanup(c->multi);
        free(c);
        return -1;
    }
    int rc = uv_timer_init(loop, &c->timer);
    if (rc != 0) {
        snprintf(err, errlen, "uv_timer_init: %s", uv_strerror(rc));
        curl_multi_cleanup(c->multi);
        free(c);
        return -1;
    }
    c->timer.data = c;
    c->open_handles = 1;
    *out = c;
    return 0;
}

int lbw_curluv_submit(struct lbw_curluv *c, CURL *easy, lbw_curluv_done_cb cb, void *arg)
{
    if (!c || c->closing || !easy || !cb || xfer_of(easy))
        return -1;
    struct xfer *x = calloc(1, sizeof(*x));
    if (!x)
        return -1;
    x->owner = c;
    x->easy = easy;
    x->cb = cb;
    x->arg = arg;
    if (curl_easy_setopt(easy, CURLOPT_PRIVATE, x) != CURLE_OK) {
        free(x);
        return -1;
    }
    if (curl_multi_add_handle(c->multi, easy) != CURLM_OK) {
        curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
        free(x);
        return -1;
    }
    x->next = c->xfers;
    if (c->xfers)
        c->xfers->prev = x;
    c->xfers = x;
    c->nxfers++;
    return 0;
}

void lbw_curluv_cancel(struct lbw_curluv *c, CURL *easy)
{
    if (!c || c->closing || !easy)
        return;
    struct xfer *x = xfer_of(easy);
    if (x && x->owner == c)
        xfer_detach(c, x);
}

size_t lbw_curluv_active(const struct lbw_curluv *c)
{
    return c->nxfers;
}

void lbw_curluv_close(struct lbw_curluv *c)
{
    if (!c || c->closing)
        return;
    c->closing = 1;
    while (c->xfers)
        xfer_detach(c, c->xfers);
    curl_multi_cleanup(c->multi);
    c->multi = NULL;
    while (c->socks)
        sock_retire(c->socks);
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

int lbw_curl_defaults(CURL *e, const char *url, const char *protocols, const char *ca_file,
                      long timeout_ms, char *errbuf)
{
    const struct { CURLoption opt; long val; } longs[] = {
        {CURLOPT_NOSIGNAL, 1},
        {CURLOPT_FOLLOWLOCATION, 0},
        {CURLOPT_SSLVERSION, CURL_SSLVERSION_TLSv1_2},
        {CURLOPT_SSL_VERIFYPEER, 1},
        {CURLOPT_SSL_VERIFYHOST, 2},
        {CURLOPT_TIMEOUT_MS, timeout_ms},
    };
    const struct { CURLoption opt; const char *val; } strings[] = {
        {CURLOPT_URL, url},
        {CURLOPT_PROTOCOLS_STR, protocols},
        {CURLOPT_NOPROXY, "*"},
        {CURLOPT_USERAGENT, "lbwatch/" LBW_VERSION}, /* LBW_VERSION comes from the Makefile */
    };
    for (size_t i = 0; i < sizeof(longs) / sizeof(longs[0]); i++)
        if (curl_easy_setopt(e, longs[i].opt, longs[i].val) != CURLE_OK)
            return -1;
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
        if (curl_easy_setopt(e, strings[i].opt, strings[i].val) != CURLE_OK)
            return -1;
    if (errbuf && curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK)
        return -1;
    if (ca_file && (curl_easy_setopt(e, CURLOPT_CAINFO, ca_file) != CURLE_OK ||
                    curl_easy_setopt(e, CURLOPT_CAPATH, NULL) != CURLE_OK))
        return -1;
    return 0;
}
