/* http.c - the HTTP(S) probe. See http.h.
 *
 * Each probe is one GET on its own easy handle (fresh connection, no connection or TLS
 * session reuse, so every probe measures a full connect and handshake) run by the prober's
 * lbw_curluv. The probe owns its easy handle, the CONNECT_TO list, the first 64 KiB of the
 * body (kept only when a substring is expected; the rest is counted and dropped) and the
 * Location header. This module does not log: failures are described in the result.
 */
#include "probes/http.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <curl/curl.h>

#include "probes/curluv.h"

#define BODY_KEEP_MAX (64 * 1024)
#define BODY_KEEP_FIRST 4096
#define DEFAULT_TIMEOUT_MS 10000
#define LOCATION_MAX sizeof(((struct lbw_http_result *)0)->location)

struct probe {
    struct probe *prev, *next;
    struct lbw_http_prober *prober;
    CURL *easy;
    struct curl_slist *connect_to;
    lbw_http_probe_cb cb;
    void *arg;

    char *host;                 /* the URL's host, for the redirect check */
    int is_tls;
    long expect_status;
    char *expect_body;
    int expect_redirect;
    unsigned https_port;        /* where the redirect must lead */

    char *body;                 /* first bytes of the body, only when expect_body is set */
    size_t body_len, body_cap;
    int64_t body_total;
    char location[LOCATION_MAX];
    char errbuf[CURL_ERROR_SIZE];
};

struct lbw_http_prober {
    struct lbw_curluv *curl;
    struct probe *probes;       /* in flight */
};

/* --- probe lifetime ----------------------------------------------------------------------- */

static void probe_free(struct probe *pr)
{
    if (pr->easy)
        curl_easy_cleanup(pr->easy);
    curl_slist_free_all(pr->connect_to);
    free(pr->host);
    free(pr->expect_body);
    free(pr->body);
    free(pr);
}

static void probe_link(struct lbw_http_prober *p, struct probe *pr)
{
    pr->prober = p;
    pr->next = p->probes;
    if (p->probes)
        p->probes->prev = pr;
    p->probes = pr;
}

static void probe_unlink(struct probe *pr)
{
    struct lbw_http_prober *p = pr->prober;
    if (pr->prev)
        pr->prev->next = pr->next;
    else
        p->probes = pr->next;
    if (pr->next)
        pr->next->prev = pr->prev;
    pr->prev = pr->next = NULL;
}

/* --- libcurl callbacks -------------------------------------------------------------------- */

static int body_keep(struct probe *pr, const char *data, size_t len)
{
    size_t take = BODY_KEEP_MAX - pr->body_len;
    if (take > len)
        take = len;
    if (take == 0)
        return 0;
    if (pr->body_len + take > pr->body_cap) {
        size_t cap = pr->body_cap ? pr->body_cap * 2 : BODY_KEEP_FIRST;
        while (cap < pr->body_len + take)
            cap *= 2;
        if (cap > BODY_KEEP_MAX)
            cap = BODY_KEEP_MAX;
        char *nb = realloc(pr->body, cap);
        if (!nb)
            return -1;
        pr->body = nb;
        pr->body_cap = cap;
    }
    memcpy(pr->body + pr->body_len, data, take);
    pr->body_len += take;
    return 0;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct probe *pr = arg;
    size_t len = size * n;
    pr->body_total += (int64_t)len;
    if (pr->expect_body && body_keep(pr, data, len) != 0)
        return 0; /* out of memory: libcurl fails the transfer with a write error */
    return len;
}

/* Copies a header's value without surrounding blanks and the line end, truncated to fit. */
static void header_value_copy(char *dst, size_t size, const char *v, size_t len)
{
    while (len > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        len--;
    }
    while (len > 0 && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' ' ||
                       v[len - 1] == '\t'))
        len--;
    if (len >= size)
        len = size - 1;
    memcpy(dst, v, len);
    dst[len] = '\0';
}

static size_t on_header(char *line, size_t size, size_t n, void *arg)
{
    static const char name[] = "location:";
    const size_t namelen = sizeof(name) - 1;
    struct probe *pr = arg;
    size_t len = size * n;
    if (len >= 5 && memcmp(line, "HTTP/", 5) == 0)
        pr->location[0] = '\0'; /* a new response (after a 1xx) starts over */
    else if (len >= namelen && strncasecmp(line, name, namelen) == 0)
        header_value_copy(pr->location, sizeof(pr->location), line + namelen, len - namelen);
    return len;
}

/* --- set-up ------------------------------------------------------------------------------- */

/* Keeps the URL's host and notes whether it is https. Returns -1 unless the URL is an
 * absolute http:// or https:// URL. */
static int probe_parse_url(struct probe *pr, const char *url)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    int rc = -1;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0)) {
        pr->is_tls = strcmp(scheme, "https") == 0;
        pr->host = strdup(host);
        rc = pr->host ? 0 : -1;
    }
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

/* CURLOPT_CONNECT_TO "::ip:port": any host and port of the URL goes to ip:port instead. */
static int probe_set_connect_to(struct probe *pr, const char *connect_to)
{
    char entry[300];
    if ((size_t)snprintf(entry, sizeof(entry), "::%s", connect_to) >= sizeof(entry))
        return -1;
    pr->connect_to = curl_slist_append(NULL, entry);
    if (!pr->connect_to)
        return -1;
    return curl_easy_setopt(pr->easy, CURLOPT_CONNECT_TO, pr->connect_to) == CURLE_OK ? 0 : -1;
}

static long timeout_ms_of(const struct lbw_http_target *t)
{
    if (t->timeout_ms == 0)
        return DEFAULT_TIMEOUT_MS;
    return t->timeout_ms > LONG_MAX ? LONG_MAX : (long)t->timeout_ms;
}

static int probe_configure(struct probe *pr, const struct lbw_http_target *t)
{
    CURL *e = pr->easy;
    if (lbw_curl_defaults(e, t->url, "http,https", t->ca_file, timeout_ms_of(t), pr->errbuf) != 0)
        return -1;
    /* every probe measures a fresh connection and a full handshake */
    if (curl_easy_setopt(e, CURLOPT_SSL_SESSIONID_CACHE, 0L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_WRITEDATA, pr) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_HEADERDATA, pr) != CURLE_OK)
        return -1;
    if (t->connect_to && probe_set_connect_to(pr, t->connect_to) != 0)
        return -1;
    return 0;
}

static struct probe *probe_new(const struct lbw_http_target *t, lbw_http_probe_cb cb,
                               void *arg)
{
    struct probe *pr = calloc(1, sizeof(*pr));
    if (!pr)
        return NULL;
    pr->cb = cb;
    pr->arg = arg;
    pr->expect_status = t->expect_status;
    pr->expect_redirect = t->expect_https_redirect != 0;
    pr->https_port = t->https_port ? t->https_port : 443;
    if (probe_parse_url(pr, t->url) != 0 ||
        (t->expect_body && !(pr->expect_body = strdup(t->expect_body))) ||
        !(pr->easy = curl_easy_init()) || probe_configure(pr, t) != 0) {
        probe_free(pr);
        return NULL;
    }
    return pr;
}

/* --- outcome ------------------------------------------------------------------------------ */

static void result_error(struct lbw_http_result *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The first reason found is the one reported. */
static void result_error(struct lbw_http_result *r, const char *fmt, ...)
{
    if (r->error[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof(r->error), fmt, ap);
    va_end(ap);
}

static double info_seconds(CURL *easy, CURLINFO what)
{
    curl_off_t us = 0;
    if (curl_easy_getinfo(easy, what, &us) != CURLE_OK || us < 0)
        return 0;
    return (double)us / 1e6;
}

static void result_times(struct lbw_http_result *r, CURL *easy)
{
    double appconnect = info_seconds(easy, CURLINFO_APPCONNECT_TIME_T);
    r->connect_seconds = info_seconds(easy, CURLINFO_CONNECT_TIME_T);
    r->tls_seconds = r->is_tls && appconnect > r->connect_seconds
                         ? appconnect - r->connect_seconds
                         : 0;
    r->first_byte_seconds = info_seconds(easy, CURLINFO_STARTTRANSFER_TIME_T);
    r->total_seconds = info_seconds(easy, CURLINFO_TOTAL_TIME_T);
}

static int is_redirect_status(long status)
{
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

/* See expect_https_redirect in http.h for what counts as "https on the same host". */
static int location_is_https_on(const char *loc, const char *host, unsigned port)
{
    static const char scheme[] = "https://";
    const size_t schemelen = sizeof(scheme) - 1, hostlen = strlen(host);
    char want[8];
    if (strncasecmp(loc, scheme, schemelen) != 0)
        return 0;
    loc += schemelen;
    if (strncasecmp(loc, host, hostlen) != 0)
        return 0;
    loc += hostlen;
    int n = snprintf(want, sizeof(want), ":%u", port);
    if (strncmp(loc, want, (size_t)n) == 0)
        loc += n;
    else if (port != 443)
        return 0; /* no port means 443, which is not where the target serves TLS */
    return *loc == '\0' || *loc == '/' || *loc == '?' || *loc == '#';
}

static void check_status(const struct probe *pr, struct lbw_http_result *r)
{
    if (pr->expect_status) {
        r->status_ok = r->status == pr->expect_status;
        if (!r->status_ok)
            result_error(r, "status %ld, expected %ld", r->status, pr->expect_status);
    } else if (pr->expect_redirect) {
        r->status_ok = is_redirect_status(r->status);
        if (!r->status_ok)
            result_error(r, "status %ld, expected a redirect to https", r->status);
    } else {
        r->status_ok = r->status >= 200 && r->status <= 299;
        if (!r->status_ok)
            result_error(r, "status %ld, expected 2xx", r->status);
    }
}

static void check_redirect(const struct probe *pr, struct lbw_http_result *r)
{
    r->redirect_checked = pr->expect_redirect;
    if (!pr->expect_redirect)
        return;
    r->redirect_ok = is_redirect_status(r->status) &&
                     location_is_https_on(r->location, pr->host, pr->https_port);
    if (r->redirect_ok || !is_redirect_status(r->status))
        return;
    if (!r->location[0])
        result_error(r, "redirect without a Location header");
    else
        result_error(r, "redirect to %s is not https on %s", r->location, pr->host);
}

static int body_contains(const struct probe *pr, const char *text)
{
    size_t len = strlen(text);
    return len == 0 || (pr->body_len >= len && memmem(pr->body, pr->body_len, text, len));
}

static void check_body(const struct probe *pr, struct lbw_http_result *r)
{
    r->body_checked = pr->expect_body != NULL;
    r->body_ok = !pr->expect_body || body_contains(pr, pr->expect_body);
    if (!r->body_ok)
        result_error(r, "expected text not found in the first %d KiB of the body",
                     BODY_KEEP_MAX / 1024);
}

static void transfer_error(const struct probe *pr, struct lbw_http_result *r, CURLcode rc)
{
    if (pr->errbuf[0])
        result_error(r, "%s: %s", curl_easy_strerror(rc), pr->errbuf);
    else
        result_error(r, "%s", curl_easy_strerror(rc));
}

static void probe_result(const struct probe *pr, CURLcode rc, struct lbw_http_result *r)
{
    memset(r, 0, sizeof(*r));
    r->is_tls = pr->is_tls;
    result_times(r, pr->easy);
    if (curl_easy_getinfo(pr->easy, CURLINFO_RESPONSE_CODE, &r->status) != CURLE_OK)
        r->status = 0;
    r->content_length = pr->body_total;
    memcpy(r->location, pr->location, sizeof(r->location));
    if (rc != CURLE_OK)
        transfer_error(pr, r, rc);
    check_status(pr, r);
    check_redirect(pr, r);
    check_body(pr, r);
    r->success = rc == CURLE_OK && r->status_ok && r->body_ok &&
                 (!pr->expect_redirect || r->redirect_ok);
}

static void on_transfer_done(void *arg, CURL *easy, CURLcode rc)
{
    struct probe *pr = arg;
    struct lbw_http_result r;
    (void)easy;
    probe_result(pr, rc, &r);
    probe_unlink(pr);
    pr->cb(pr->arg, &r);
    probe_free(pr);
}

/* --- API ---------------------------------------------------------------------------------- */

int lbw_http_prober_new(struct lbw_http_prober **out, uv_loop_t *loop, char *err,
                        size_t errlen)
{
    struct lbw_http_prober *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (lbw_curluv_new(&p->curl, loop, err, errlen) != 0) {
        free(p);
        return -1;
    }
    *out = p;
    return 0;
}

int lbw_http_probe_start(struct lbw_http_prober *p, const struct lbw_http_target *t,
                         lbw_http_probe_cb cb, void *arg)
{
    if (!p || !t || !t->url || !cb)
        return -1;
    struct probe *pr = probe_new(t, cb, arg);
    if (!pr)
        return -1;
    if (lbw_curluv_submit(p->curl, pr->easy, on_transfer_done, pr) != 0) {
        probe_free(pr);
        return -1;
    }
    probe_link(p, pr);
    return 0;
}

void lbw_http_prober_close(struct lbw_http_prober *p)
{
    if (!p)
        return;
    lbw_curluv_close(p->curl);
    while (p->probes) {
        struct probe *pr = p->probes;
        probe_unlink(pr);
        probe_free(pr);
    }
    free(p);
}

/* --- samples ------------------------------------------------------------------------------ */

static double nonnegative(double v)
{
    return v > 0 ? v : 0;
}

void lbw_http_result_emit(const struct lbw_http_result *r, const struct lbw_emitter *e)
{
    double handshake_end = r->connect_seconds + r->tls_seconds;
    int responded = r->first_byte_seconds > 0;
    const struct { const char *name; double seconds; } phases[] = {
        {"connect", r->connect_seconds},
        {"tls", r->tls_seconds},
        {"processing", responded ? nonnegative(r->first_byte_seconds - handshake_end) : 0},
        {"transfer", responded ? nonnegative(r->total_seconds - r->first_byte_seconds) : 0},
    };
    lbw_emit(e, "probe_success", r->success ? 1 : 0);
    lbw_emit(e, "probe_duration_seconds", r->total_seconds);
    lbw_emit(e, "probe_http_status_code", (double)r->status);
    for (size_t i = 0; i < sizeof(phases) / sizeof(phases[0]); i++)
        lbw_emit1(e, "probe_http_duration_seconds", "phase", phases[i].name, phases[i].seconds);
    lbw_emit(e, "lbwatch_http_first_byte_seconds", r->first_byte_seconds);
    lbw_emit(e, "probe_http_ssl", r->is_tls ? 1 : 0);
    lbw_emit(e, "probe_http_content_length", (double)r->content_length);
    if (r->body_checked)
        lbw_emit(e, "lbwatch_http_body_match", r->body_ok ? 1 : 0);
    if (r->redirect_checked)
        lbw_emit(e, "lbwatch_http_redirect_https", r->redirect_ok ? 1 : 0);
}
