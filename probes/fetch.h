/* fetch.h - fetching a text without blocking the loop: an HTTP(S) GET through libcurl on
 * libuv (probes/curluv.h), or a command over a stream socket (a unix socket path or a TCP
 * address) answered until the peer closes, as HAProxy's stats socket does.
 *
 * Every fetch is bounded: a timeout for the whole fetch and a cap on the answer's size (a
 * longer answer fails rather than being cut, so a parser never sees a truncated text). HTTP
 * follows no redirects, uses no proxy from the environment, verifies TLS 1.2+ certificates
 * against the URL's host (with ca_file alone when set) and counts only a 2xx status as
 * success. This module knows nothing about what the texts mean and does not log.
 *
 * Everything runs on the loop's thread. A callback runs on a later loop iteration than the
 * lbw_fetch_start that started it, once, unless the fetcher is closed first. A callback may
 * start other fetches and may close the fetcher.
 */
#ifndef LBW_FETCH_H
#define LBW_FETCH_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct lbw_fetcher;

enum lbw_fetch_via { LBW_FETCH_HTTP, LBW_FETCH_UNIX, LBW_FETCH_TCP };

struct lbw_fetch_req {
    enum lbw_fetch_via via;
    const char *url;            /* HTTP: an absolute http:// or https:// URL */
    const char *username;       /* HTTP basic authentication: both or neither; NULL */
    const char *password;
    const char *ca_file;        /* https: PEM CA bundle instead of the system CAs; NULL */
    const char *path;           /* UNIX: the socket's path */
    const char *ip;             /* TCP: an IPv4 or IPv6 address (no names) */
    uint16_t port;              /* TCP */
    const char *send;           /* UNIX, TCP: written once connected; NULL sends nothing */
    size_t max_bytes;           /* the longest answer accepted; 0 = 1 MiB */
    uint64_t timeout_ms;        /* the whole fetch; 0 = 10 s */
};

struct lbw_fetch_result {
    int ok;                     /* the whole answer arrived (and, for HTTP, with a 2xx) */
    char error[200];            /* why not: "connect: connection refused", "timeout after
                                   5000 ms", "answer longer than 1048576 bytes",
                                   "HTTP status 401", ... */
    long http_status;           /* HTTP: the status, 0 if none; else 0 */
    const char *body;           /* the answer: len bytes and a NUL after them; valid only
                                   during the callback; NULL unless ok */
    size_t len;
};

typedef void (*lbw_fetch_cb)(void *arg, const struct lbw_fetch_result *r);

/* A fetcher for loop. Returns 0, or -1 with a reason in err. libcurl's global state must be
 * initialised (see probes/curluv.h). */
int lbw_fetcher_new(struct lbw_fetcher **out, uv_loop_t *loop, char *err, size_t errlen);

/* Starts a fetch; the request's strings are copied. Returns 0, or -1 (cb is not called) when
 * the request is incomplete (no URL, path or address for its kind; a unix path too long for
 * a socket address; a bad IP) or memory or libcurl set-up failed. */
int lbw_fetch_start(struct lbw_fetcher *f, const struct lbw_fetch_req *req, lbw_fetch_cb cb,
                    void *arg);

/* Fetches in flight. */
size_t lbw_fetcher_active(const struct lbw_fetcher *f);

/* Cancels every fetch in flight without calling its callback and frees what is left once
 * the handles have closed: run the loop afterwards. */
void lbw_fetcher_close(struct lbw_fetcher *f);

#endif
