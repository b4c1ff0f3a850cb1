/* curluv.h - libcurl's multi interface driven by a libuv loop.
 *
 * One lbw_curluv owns one CURLM handle, one uv_timer_t for libcurl's timeouts and one
 * uv_poll_t per socket libcurl asks to watch (CURLMOPT_SOCKETFUNCTION/TIMERFUNCTION and
 * curl_multi_socket_action, as in curl's docs/examples/multi-uv.c). Any number of transfers
 * run at once on the loop thread without blocking it. It knows nothing about HTTP probes:
 * the HTTP probe, alert deliveries (webhooks, SMS gateways, SMTP) and scrapes all submit
 * their own configured easy handles here and read the outcome with curl_easy_getinfo.
 *
 * Ownership: the caller creates, configures and frees its easy handles. Submitting lends a
 * handle to the multi until the transfer completes (the done callback runs after it has
 * been removed from the multi, so the callback may curl_easy_cleanup it or submit it
 * again), until lbw_curluv_cancel, or until lbw_curluv_close. curluv uses CURLOPT_PRIVATE
 * of a submitted handle: callers must not set or read it.
 *
 * Global state: libcurl's curl_global_init(CURL_GLOBAL_DEFAULT) must be called once by the
 * process before any thread starts and before the first lbw_curluv_new (node/main.c does it
 * at start-up, tests in their group set-up), and curl_global_cleanup once at exit. This
 * module never calls either.
 *
 * Everything here runs on the loop's thread. None of these functions may be called from
 * inside a libcurl callback (write, header, progress); from a done callback they all may.
 */
#ifndef LBW_CURLUV_H
#define LBW_CURLUV_H

#include <stddef.h>
#include <curl/curl.h>
#include <uv.h>

struct lbw_curluv;

/* The settings every lbwatch transfer starts from: the URL; only the given protocols
 * ("http,https", "smtp,smtps"); TLS 1.2 or newer with the peer's certificate and host name
 * verified, against ca_file alone when it is not NULL (no CA directory beside it), else the
 * system CAs; no proxy from the environment; no redirects; no signals; the deadline
 * (timeout_ms); lbwatch's User-Agent; and errbuf (CURL_ERROR_SIZE bytes, or NULL) for
 * libcurl's message. Returns 0, or -1 if libcurl refused a setting. */
int lbw_curl_defaults(CURL *e, const char *url, const char *protocols, const char *ca_file,
                      long timeout_ms, char *errbuf);

/* Called once per completed transfer with libcurl's result. easy is no longer attached to
 * the multi; it is the caller's again. */
typedef void (*lbw_curluv_done_cb)(void *arg, CURL *easy, CURLcode result);

/* Makes a multi handle driven by loop. Returns 0, or -1 with a reason in err. */
int lbw_curluv_new(struct lbw_curluv **out, uv_loop_t *loop, char *err, size_t errlen);

/* Starts a transfer on easy. It begins on a later loop iteration, so cb never runs before
 * this returns. Returns 0, or -1 (nothing started, cb will not be called). */
int lbw_curluv_submit(struct lbw_curluv *c, CURL *easy, lbw_curluv_done_cb cb, void *arg);

/* Stops a submitted transfer without calling its callback; easy is the caller's again.
 * Does nothing if easy is not in flight here. */
void lbw_curluv_cancel(struct lbw_curluv *c, CURL *easy);

/* Transfers in flight. */
size_t lbw_curluv_active(const struct lbw_curluv *c);

/* Cancels every transfer (no callbacks; the easy handles are the callers' to free), cleans
 * up the multi handle and closes the uv handles; the memory is freed from their close
 * callbacks, so run the loop afterwards. c must not be used after this call. */
void lbw_curluv_close(struct lbw_curluv *c);

#endif
