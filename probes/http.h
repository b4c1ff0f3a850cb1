/* http.h - the HTTP(S) probe: one GET with libcurl driven by the libuv loop (probes/curluv.h),
 * timed by phase, checked for an expected status and body substring; and the port-80 check
 * that a TLS-terminating balancer redirects plain HTTP to https.
 *
 * TLS is 1.2 or newer and the certificate is verified (against the target's CA file or the
 * system CAs) with the URL's host as the name; a failure there fails the probe. Redirects are
 * never followed: a redirect is itself the result being checked.
 */
#ifndef LBW_PROBE_HTTP_H
#define LBW_PROBE_HTTP_H

#include <stdint.h>
#include <uv.h>

#include "probes/sample.h"

struct lbw_http_prober;

struct lbw_http_target {
    const char *url;              /* http://host[:port]/path or https://... */
    const char *connect_to;       /* "ip:port" to connect to instead of resolving the URL's
                                     host (the URL's host still goes in SNI and Host); NULL */
    const char *ca_file;          /* PEM CA bundle; NULL = system CAs */
    long expect_status;           /* 0 = any 2xx */
    const char *expect_body;      /* substring required in the first 64 KiB; NULL = none */
    int expect_https_redirect;    /* redirect check: success means a 301/302/303/307/308 whose
                                     Location is https:// on the URL's host and TLS port:
                                     exactly that host (any case), then :https_port (or nothing
                                     when https_port is 443), then the end, a path, a query or a
                                     fragment. Another host or port, a host that merely starts
                                     with the URL's, userinfo, and a relative or scheme-relative
                                     Location (still plain http) all fail. */
    uint16_t https_port;          /* the TLS port the redirect must lead to; 0 = 443 */
    uint64_t timeout_ms;          /* whole probe; 0 = 10 s */
};

struct lbw_http_result {
    int success;                  /* all expectations held */
    char error[160];              /* why not, e.g. "status 503, expected 200" */
    long status;                  /* HTTP status, 0 if none was received */
    int is_tls;
    double connect_seconds;       /* from start to TCP connected (includes name resolution;
                                     none with connect_to) */
    double tls_seconds;           /* TLS handshake, after connect (0 for plain HTTP) */
    double first_byte_seconds;    /* from start to the first response byte */
    double total_seconds;         /* from start to the end of the response */
    int64_t content_length;       /* body bytes received */
    int status_ok;
    int body_ok;                  /* 1 if expect_body is NULL or was found */
    int redirect_ok;              /* only for expect_https_redirect */
    int body_checked;             /* expect_body was set: body_ok is a real check */
    int redirect_checked;         /* expect_https_redirect was set */
    char location[256];           /* Location header, if any (truncated to fit) */
};

typedef void (*lbw_http_probe_cb)(void *arg, const struct lbw_http_result *r);

int lbw_http_prober_new(struct lbw_http_prober **out, uv_loop_t *loop, char *err,
                        size_t errlen);

/* Starts a probe; the target's strings are copied. cb runs on a later loop iteration, once.
 * Returns 0, or -1 (cb is not called): the URL is not an absolute http:// or https:// URL,
 * or memory or libcurl set-up failed. */
int lbw_http_probe_start(struct lbw_http_prober *p, const struct lbw_http_target *t,
                         lbw_http_probe_cb cb, void *arg);

/* Cancels probes in flight (no callbacks), frees the prober once its handles have closed;
 * run the loop afterwards. */
void lbw_http_prober_close(struct lbw_http_prober *p);

/* Describes a result as samples (all durations in seconds; the four phases add up to
 * probe_duration_seconds when the response arrived; processing is first byte minus the end of
 * the TLS handshake, or of connect for plain HTTP; transfer is total minus first byte):
 *   probe_success, probe_duration_seconds, probe_http_status_code,
 *   probe_http_duration_seconds{phase="connect"|"tls"|"processing"|"transfer"} (blackbox's
 *   per-phase durations), lbwatch_http_first_byte_seconds, probe_http_ssl,
 *   probe_http_content_length, lbwatch_http_body_match (when expect_body was set),
 *   lbwatch_http_redirect_https (redirect checks). */
void lbw_http_result_emit(const struct lbw_http_result *r, const struct lbw_emitter *e);

#endif
