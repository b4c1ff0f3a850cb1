/* receiver.c - checking receiver configurations and delivering notifications. See receiver.h.
 *
 * Each send is a struct delivery: one struct request (an easy handle with its header or
 * recipient list and its body) per transfer, one for a webhook or an e-mail, one per
 * recipient for an SMS. The sender owns the deliveries in flight (list active) and those
 * that failed before any transfer started (list failed), which a zero-delay uv timer reports
 * so that no callback ever runs inside lbw_sender_send. A delivery is freed before its
 * callback runs, so the callback may close the sender. This module does not log.
 */
#include "alerting/receiver.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#define ADDRESS_MAX 256
#define WHO_MAX 48

struct delivery;

struct request {
    struct delivery *d;
    CURL *easy;
    struct curl_slist *list;    /* HTTP headers, or the SMTP recipients */
    char *body;                 /* the request body, or the e-mail being uploaded */
    size_t len, sent;
    char who[WHO_MAX];          /* "sms to +15551234" in error texts */
    char errbuf[CURL_ERROR_SIZE];
};

struct delivery {
    struct delivery *prev, *next;
    struct lbw_sender *sender;
    enum lbw_receiver_kind kind;
    lbw_send_cb cb;
    void *arg;
    struct request *reqs;
    size_t nreqs, pending, failures;
    int started;                /* its transfers were submitted */
    char error[LBW_SEND_ERROR_MAX];     /* the first failure */
};

struct lbw_sender {
    struct lbw_curluv *curl;
    uv_timer_t timer;           /* reports the failed list on the next loop iteration */
    struct delivery *active;
    struct delivery *failed;
    size_t npending;
    int closing;
};

/* --- small helpers ------------------------------------------------------------------------ */

static int check_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int check_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static const char *kind_name(enum lbw_receiver_kind k)
{
    switch (k) {
    case LBW_RECEIVER_WEBHOOK:
        return "webhook";
    case LBW_RECEIVER_EMAIL:
        return "email";
    case LBW_RECEIVER_SMS:
        return "sms";
    }
    return "receiver";
}

static int has_controls(const char *s)
{
    for (const unsigned char *u = (const unsigned char *)s; *u; u++)
        if (*u < 0x20 || *u == 0x7F)
            return 1;
    return 0;
}

static int nonempty(const char *s)
{
    return s && *s;
}

/* The URL's scheme, lower case, into out; -1 if libcurl cannot parse the URL. */
static int url_scheme(const char *url, char *out, size_t outlen)
{
    CURLU *u = curl_url();
    char *scheme = NULL;
    int rc = -1;
    if (u && url && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        (size_t)snprintf(out, outlen, "%s", scheme) < outlen)
        rc = 0;
    curl_free(scheme);
    curl_url_cleanup(u);
    return rc;
}

static int url_is_http(const char *url)
{
    char scheme[16];
    return url_scheme(url, scheme, sizeof(scheme)) == 0 &&
           (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0);
}

/* The addr-spec of "a@b" or "Name <a@b>" into out: printable ASCII without spaces or
 * brackets, an '@' inside. Returns 0, or -1 if s is not such a mailbox. */
static int mailbox_address(const char *s, char *out, size_t outlen)
{
    const char *start = s, *end;
    if (!s || has_controls(s))
        return -1;
    const char *lt = strchr(s, '<');
    if (lt) {
        start = lt + 1;
        end = strchr(start, '>');
        if (!end || end[1 + strspn(end + 1, " ")] != '\0')
            return -1;
    } else {
        start += strspn(start, " ");
        end = start + strcspn(start, " ");
        if (end[strspn(end, " ")] != '\0')
            return -1;
    }
    size_t len = (size_t)(end - start);
    const char *at = memchr(start, '@', len);
    if (len == 0 || len >= outlen || !at || at == start || at == end - 1)
        return -1;
    for (size_t i = 0; i < len; i++)
        if (start[i] <= ' ' || start[i] >= 0x7F || start[i] == '<' || start[i] == '>')
            return -1;
    memcpy(out, start, len);
    out[len] = '\0';
    return 0;
}

/* --- configuration checks ----------------------------------------------------------------- */

static int check_webhook(const struct lbw_webhook_config *c, char *err, size_t errlen)
{
    if (!url_is_http(c->url))
        return check_fail(err, errlen, "url must be an http:// or https:// URL");
    if (c->secret && c->secret_len == 0)
        return check_fail(err, errlen, "the secret is empty");
    return 0;
}

static int email_is_smtps(const struct lbw_email_config *c)
{
    char scheme[16];
    return url_scheme(c->url, scheme, sizeof(scheme)) == 0 && strcmp(scheme, "smtps") == 0;
}

static int check_email_auth(const struct lbw_email_config *c, char *err, size_t errlen)
{
    if (!c->username && !c->password)
        return 0;
    if (!nonempty(c->username) || !c->password)
        return check_fail(err, errlen, "username and password go together");
    if (!email_is_smtps(c) && c->starttls != LBW_STARTTLS_REQUIRED)
        return check_fail(err, errlen,
                          "a password is only sent over TLS: use smtps:// or starttls required");
    return 0;
}

static int check_email(const struct lbw_email_config *c, char *err, size_t errlen)
{
    char scheme[16], addr[ADDRESS_MAX];
    if (url_scheme(c->url, scheme, sizeof(scheme)) != 0 ||
        (strcmp(scheme, "smtp") != 0 && strcmp(scheme, "smtps") != 0))
        return check_fail(err, errlen, "url must be an smtp:// or smtps:// URL");
    if (c->starttls != LBW_STARTTLS_REQUIRED && c->starttls != LBW_STARTTLS_OPPORTUNISTIC &&
        c->starttls != LBW_STARTTLS_OFF)
        return check_fail(err, errlen, "unknown starttls mode");
    if (mailbox_address(c->from, addr, sizeof(addr)) != 0)
        return check_fail(err, errlen, "from is not a mail address");
    if (c->nto == 0 || !c->to)
        return check_fail(err, errlen, "no recipients");
    for (size_t i = 0; i < c->nto; i++)
        if (mailbox_address(c->to[i], addr, sizeof(addr)) != 0)
            return check_fail(err, errlen, "to[%zu] is not a mail address", i);
    return check_email_auth(c, err, errlen);
}

static const char *sms_method(const struct lbw_sms_config *c)
{
    return c->method ? c->method : "POST";
}

static const char *or_default(const char *s, const char *def)
{
    return s ? s : def;
}

/* The names of the fields the gateway gets, extra fields included, are set and distinct. */
static int check_sms_fields(const struct lbw_sms_config *c, char *err, size_t errlen)
{
    const char *std[3] = {or_default(c->to_param, "to"), or_default(c->text_param, "text"),
                          c->from ? or_default(c->from_param, "from") : NULL};
    for (size_t i = 0; i < 3; i++)
        if (std[i] && !*std[i])
            return check_fail(err, errlen, "a field name is empty");
    if (std[2] && (strcmp(std[2], std[0]) == 0 || strcmp(std[2], std[1]) == 0))
        return check_fail(err, errlen, "field %s is used twice", std[2]);
    if (strcmp(std[0], std[1]) == 0)
        return check_fail(err, errlen, "field %s is used twice", std[0]);
    if (c->nextra > 0 && !c->extra)
        return check_fail(err, errlen, "extra fields missing");
    for (size_t i = 0; i < c->nextra; i++) {
        const char *name = c->extra[i].name;
        if (!nonempty(name) || !c->extra[i].value)
            return check_fail(err, errlen, "extra field %zu needs a name and a value", i);
        for (size_t j = 0; j < 3; j++)
            if (std[j] && strcmp(std[j], name) == 0)
                return check_fail(err, errlen, "field %s is used twice", name);
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->extra[j].name, name) == 0)
                return check_fail(err, errlen, "field %s is used twice", name);
    }
    return 0;
}

static int check_sms_auth(const struct lbw_sms_config *c, char *err, size_t errlen)
{
    switch (c->auth) {
    case LBW_SMS_AUTH_NONE:
        return 0;
    case LBW_SMS_AUTH_BASIC:
        if (!nonempty(c->username) || !c->password)
            return check_fail(err, errlen, "basic auth needs a username and a password");
        return 0;
    case LBW_SMS_AUTH_BEARER:
        if (!nonempty(c->token))
            return check_fail(err, errlen, "bearer auth needs a token");
        return 0;
    }
    return check_fail(err, errlen, "unknown auth");
}

static int check_sms(const struct lbw_sms_config *c, char *err, size_t errlen)
{
    const char *m = sms_method(c);
    if (!url_is_http(c->url))
        return check_fail(err, errlen, "url must be an http:// or https:// URL");
    if (strcmp(m, "POST") != 0 && strcmp(m, "PUT") != 0 && strcmp(m, "GET") != 0)
        return check_fail(err, errlen, "method must be POST, PUT or GET");
    if (c->format != LBW_SMS_FORM && c->format != LBW_SMS_JSON)
        return check_fail(err, errlen, "unknown body format");
    if (c->format == LBW_SMS_JSON && strcmp(m, "GET") == 0)
        return check_fail(err, errlen, "GET sends form fields, not JSON");
    if (c->nto == 0 || !c->to)
        return check_fail(err, errlen, "no recipients");
    for (size_t i = 0; i < c->nto; i++)
        if (!nonempty(c->to[i]) || has_controls(c->to[i]))
            return check_fail(err, errlen, "to[%zu] is empty or has control characters", i);
    if (c->from && has_controls(c->from))
        return check_fail(err, errlen, "from has control characters");
    if (check_sms_fields(c, err, errlen) != 0)
        return -1;
    return check_sms_auth(c, err, errlen);
}

int lbw_receiver_check(const struct lbw_receiver *r, char *err, size_t errlen)
{
    if (!r)
        return check_fail(err, errlen, "no receiver");
    switch (r->kind) {
    case LBW_RECEIVER_WEBHOOK:
        return check_webhook(&r->webhook, err, errlen);
    case LBW_RECEIVER_EMAIL:
        return check_email(&r->email, err, errlen);
    case LBW_RECEIVER_SMS:
        return check_sms(&r->sms, err, errlen);
    }
    return check_fail(err, errlen, "unknown receiver kind");
}

/* --- deliveries --------------------------------------------------------------------------- */

static void list_push(struct delivery **head, struct delivery *d)
{
    d->prev = NULL;
    d->next = *head;
    if (*head)
        (*head)->prev = d;
    *head = d;
}

static void list_remove(struct delivery **head, struct delivery *d)
{
    if (d->prev)
        d->prev->next = d->next;
    else
        *head = d->next;
    if (d->next)
        d->next->prev = d->prev;
    d->prev = d->next = NULL;
}

static void delivery_fail(struct delivery *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Counts a failure; the first one is the delivery's error text. */
static void delivery_fail(struct delivery *d, const char *fmt, ...)
{
    d->failures++;
    if (d->error[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->error, sizeof(d->error), fmt, ap);
    va_end(ap);
}

/* Frees every request, stopping any transfer still in flight without its callback. */
static void delivery_free(struct delivery *d)
{
    for (size_t i = 0; i < d->nreqs; i++) {
        struct request *q = &d->reqs[i];
        if (q->easy) {
            lbw_curluv_cancel(d->sender->curl, q->easy);
            curl_easy_cleanup(q->easy);
        }
        curl_slist_free_all(q->list);
        free(q->body);
    }
    free(d->reqs);
    free(d);
}

static int delivery_alloc_requests(struct delivery *d, size_t n)
{
    d->reqs = calloc(n, sizeof(*d->reqs));
    if (!d->reqs)
        return -1;
    d->nreqs = n;
    for (size_t i = 0; i < n; i++)
        d->reqs[i].d = d;
    return 0;
}

/* Frees d, then tells its owner; the owner may close the sender from the callback. */
static void delivery_report(struct delivery *d)
{
    char error[LBW_SEND_ERROR_MAX];
    lbw_send_cb cb = d->cb;
    void *arg = d->arg;
    int ok = d->failures == 0;
    if (ok)
        error[0] = '\0';
    else if (d->started && d->nreqs > 1)
        snprintf(error, sizeof(error), "%.180s (%zu of %zu recipients failed)", d->error,
                 d->failures, d->nreqs);
    else
        snprintf(error, sizeof(error), "%s", d->error);
    d->sender->npending--;
    delivery_free(d);
    cb(arg, ok, error);
}

/* Reports the deliveries that could not start, oldest first. A callback that closes the
 * sender ends the reporting: the rest are freed silently. */
static void on_failed_timer(uv_timer_t *t)
{
    struct lbw_sender *s = t->data;
    struct delivery *d = s->failed;
    s->failed = NULL;
    while (d && d->next)
        d = d->next;
    while (d) {
        struct delivery *older = d->prev;
        if (s->closing)
            delivery_free(d);
        else
            delivery_report(d);
        d = older;
    }
}

/* d could not start: its callback runs from the timer, after lbw_sender_send returned. */
static void delivery_defer(struct delivery *d)
{
    struct lbw_sender *s = d->sender;
    list_push(&s->failed, d);
    uv_timer_start(&s->timer, on_failed_timer, 0, 0);
}

/* --- one transfer ------------------------------------------------------------------------- */

static size_t discard_body(char *data, size_t size, size_t n, void *arg)
{
    (void)data;
    (void)arg;
    return size * n;
}

static size_t upload_body(char *buf, size_t size, size_t n, void *arg)
{
    struct request *q = arg;
    size_t room = size * n, left = q->len - q->sent;
    size_t take = left < room ? left : room;
    memcpy(buf, q->body + q->sent, take);
    q->sent += take;
    return take;
}

static long timeout_or(uint32_t ms, long def)
{
    return ms ? (long)ms : def;
}

/* What every transfer has: TLS 1.2+ verified, no proxy, no redirects, a deadline. */
static int request_setup(struct request *q, const char *url, const char *protocols,
                         const char *ca_file, long timeout_ms)
{
    CURL *e = q->easy = curl_easy_init();
    if (!e)
        return -1;
    if (lbw_curl_defaults(e, url, protocols, ca_file, timeout_ms, q->errbuf) != 0 ||
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard_body) != CURLE_OK)
        return -1;
    return 0;
}

static int header_add(struct request *q, const char *name, const char *value)
{
    char line[256];
    if ((size_t)snprintf(line, sizeof(line), "%s: %s", name, value) >= sizeof(line))
        return -1;
    struct curl_slist *l = curl_slist_append(q->list, line);
    if (!l)
        return -1;
    q->list = l;
    return 0;
}

/* The body (taken over) as a POST, or as a PUT when method says so. */
static int request_body(struct request *q, char *body, const char *method,
                        const char *content_type)
{
    q->body = body;
    q->len = strlen(body);
    if (header_add(q, "Content-Type", content_type) != 0)
        return -1;
    CURL *e = q->easy;
    if (curl_easy_setopt(e, CURLOPT_POSTFIELDS, q->body) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->len) != CURLE_OK)
        return -1;
    if (strcmp(method, "POST") != 0 &&
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method) != CURLE_OK)
        return -1;
    return 0;
}

/* Headers are complete: "Expect:" keeps libcurl from waiting for a 100 Continue. */
static int request_headers_done(struct request *q)
{
    struct curl_slist *l = curl_slist_append(q->list, "Expect:");
    if (!l)
        return -1;
    q->list = l;
    return curl_easy_setopt(q->easy, CURLOPT_HTTPHEADER, q->list) == CURLE_OK ? 0 : -1;
}

/* Why a finished transfer failed, if it did. */
static void request_judge(struct request *q, CURLcode rc)
{
    struct delivery *d = q->d;
    const char *who = q->who[0] ? q->who : kind_name(d->kind);
    if (rc != CURLE_OK) {
        if (q->errbuf[0])
            delivery_fail(d, "%s: %s: %s", who, curl_easy_strerror(rc), q->errbuf);
        else
            delivery_fail(d, "%s: %s", who, curl_easy_strerror(rc));
        return;
    }
    if (d->kind == LBW_RECEIVER_EMAIL)
        return;
    long status = 0;
    curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status > 299)
        delivery_fail(d, "%s: HTTP status %ld, expected 2xx", who, status);
}

static void on_request_done(void *arg, CURL *easy, CURLcode rc)
{
    struct request *q = arg;
    struct delivery *d = q->d;
    (void)easy;
    request_judge(q, rc);
    if (--d->pending > 0)
        return;
    list_remove(&d->sender->active, d);
    delivery_report(d);
}

/* --- webhook ------------------------------------------------------------------------------ */

static int webhook_prepare(struct delivery *d, const struct lbw_webhook_config *c,
                           const struct lbw_notification *n)
{
    char *json = lbw_notify_webhook_json(n);
    if (!json) {
        delivery_fail(d, "webhook: cannot render the notification");
        return -1;
    }
    struct request *q;
    if (delivery_alloc_requests(d, 1) != 0) {
        free(json);
        return -1;
    }
    q = &d->reqs[0];
    if (request_setup(q, c->url, "http,https", c->ca_file,
                      timeout_or(c->timeout_ms, LBW_RECEIVER_HTTP_TIMEOUT_MS)) != 0 ||
        request_body(q, json, "POST", "application/json") != 0 ||
        header_add(q, "Idempotency-Key", n->idempotency_key) != 0)
        return -1;
    if (c->secret) {
        char sig[7 + 65];
        lbw_notify_signature(q->body, q->len, c->secret, c->secret_len, sig);
        if (!sig[0] || header_add(q, "X-Lbwatch-Signature", sig) != 0)
            return -1;
    }
    return request_headers_done(q);
}

/* --- e-mail ------------------------------------------------------------------------------- */

static long email_use_ssl(const struct lbw_email_config *c)
{
    if (email_is_smtps(c) || c->starttls == LBW_STARTTLS_REQUIRED)
        return (long)CURLUSESSL_ALL;
    return c->starttls == LBW_STARTTLS_OPPORTUNISTIC ? (long)CURLUSESSL_TRY
                                                     : (long)CURLUSESSL_NONE;
}

/* "<a@b>" for MAIL FROM / RCPT TO. The configuration was checked, so s is a mailbox. */
static int envelope_address(const char *s, char *out, size_t outlen)
{
    char addr[ADDRESS_MAX];
    if (mailbox_address(s, addr, sizeof(addr)) != 0)
        return -1;
    return (size_t)snprintf(out, outlen, "<%s>", addr) < outlen ? 0 : -1;
}

static int email_envelope(struct request *q, const struct lbw_email_config *c)
{
    char addr[ADDRESS_MAX + 2];
    for (size_t i = 0; i < c->nto; i++) {
        struct curl_slist *l;
        if (envelope_address(c->to[i], addr, sizeof(addr)) != 0 ||
            !(l = curl_slist_append(q->list, addr)))
            return -1;
        q->list = l;
    }
    if (envelope_address(c->from, addr, sizeof(addr)) != 0 ||
        curl_easy_setopt(q->easy, CURLOPT_MAIL_FROM, addr) != CURLE_OK ||
        curl_easy_setopt(q->easy, CURLOPT_MAIL_RCPT, q->list) != CURLE_OK)
        return -1;
    return 0;
}

static int email_upload(struct request *q)
{
    CURL *e = q->easy;
    return curl_easy_setopt(e, CURLOPT_UPLOAD, 1L) != CURLE_OK ||
                   curl_easy_setopt(e, CURLOPT_READFUNCTION, upload_body) != CURLE_OK ||
                   curl_easy_setopt(e, CURLOPT_READDATA, q) != CURLE_OK ||
                   curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)q->len) != CURLE_OK
               ? -1
               : 0;
}

static int email_prepare(struct delivery *d, const struct lbw_email_config *c,
                         const struct lbw_notification *n)
{
    char *msg = lbw_notify_email(n, c->from, c->to, c->nto, lbw_now_ms());
    if (!msg) {
        delivery_fail(d, "email: cannot render the notification");
        return -1;
    }
    if (delivery_alloc_requests(d, 1) != 0) {
        free(msg);
        return -1;
    }
    struct request *q = &d->reqs[0];
    q->body = msg;
    q->len = strlen(msg);
    if (request_setup(q, c->url, "smtp,smtps", c->ca_file,
                      timeout_or(c->timeout_ms, LBW_RECEIVER_SMTP_TIMEOUT_MS)) != 0 ||
        curl_easy_setopt(q->easy, CURLOPT_USE_SSL, email_use_ssl(c)) != CURLE_OK ||
        email_envelope(q, c) != 0 || email_upload(q) != 0)
        return -1;
    if (c->username && (curl_easy_setopt(q->easy, CURLOPT_USERNAME, c->username) != CURLE_OK ||
                        curl_easy_setopt(q->easy, CURLOPT_PASSWORD, c->password) != CURLE_OK))
        return -1;
    return 0;
}

/* --- SMS ---------------------------------------------------------------------------------- */

/* The fields one recipient's request carries, in order: to, from, text, extra. */
struct sms_fields {
    struct lbw_sms_param *f;
    size_t n;
};

static int sms_fields_build(struct sms_fields *out, const struct lbw_sms_config *c,
                            const char *to, const char *text)
{
    out->n = 0;
    out->f = calloc(3 + c->nextra, sizeof(*out->f));
    if (!out->f)
        return -1;
    out->f[out->n++] = (struct lbw_sms_param){or_default(c->to_param, "to"), to};
    if (c->from)
        out->f[out->n++] = (struct lbw_sms_param){or_default(c->from_param, "from"), c->from};
    out->f[out->n++] = (struct lbw_sms_param){or_default(c->text_param, "text"), text};
    for (size_t i = 0; i < c->nextra; i++)
        out->f[out->n++] = c->extra[i];
    return 0;
}

/* name=value&... percent-encoded. Returns malloc'd text or NULL. */
static char *sms_form(CURL *e, const struct sms_fields *fs)
{
    char *out = strdup("");
    size_t len = 0;
    for (size_t i = 0; out && i < fs->n; i++) {
        char *name = curl_easy_escape(e, fs->f[i].name, 0);
        char *value = curl_easy_escape(e, fs->f[i].value, 0);
        size_t add = name && value ? strlen(name) + strlen(value) + 2 : 0;
        char *grown = add ? realloc(out, len + add + 1) : NULL;
        if (grown)
            len += (size_t)snprintf(grown + len, add + 1, "%s%s=%s", i ? "&" : "", name, value);
        else
            free(out);
        out = grown;
        curl_free(name);
        curl_free(value);
    }
    return out;
}

/* {"name": "value", ...}. Returns malloc'd text or NULL (also for text that is not UTF-8). */
static char *sms_json(const struct sms_fields *fs)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < fs->n; i++) {
        if (json_object_set_new(o, fs->f[i].name, json_string(fs->f[i].value)) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    char *out = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return out;
}

/* url with the form appended to its query. */
static int sms_get_url(struct request *q, const char *url, const char *form)
{
    CURLU *u = curl_url();
    char *full = NULL;
    int rc = -1;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        (!*form || curl_url_set(u, CURLUPART_QUERY, form, CURLU_APPENDQUERY) == CURLUE_OK) &&
        curl_url_get(u, CURLUPART_URL, &full, 0) == CURLUE_OK &&
        curl_easy_setopt(q->easy, CURLOPT_URL, full) == CURLE_OK &&
        curl_easy_setopt(q->easy, CURLOPT_HTTPGET, 1L) == CURLE_OK)
        rc = 0;
    curl_free(full);
    curl_url_cleanup(u);
    return rc;
}

static int sms_payload(struct request *q, const struct lbw_sms_config *c,
                       const struct sms_fields *fs)
{
    const char *method = sms_method(c);
    if (c->format == LBW_SMS_JSON) {
        char *json = sms_json(fs);
        return json ? request_body(q, json, method, "application/json") : -1;
    }
    char *form = sms_form(q->easy, fs);
    if (!form)
        return -1;
    if (strcmp(method, "GET") == 0) {
        int rc = sms_get_url(q, c->url, form);
        free(form);
        return rc;
    }
    return request_body(q, form, method, "application/x-www-form-urlencoded");
}

static int sms_auth(struct request *q, const struct lbw_sms_config *c)
{
    CURL *e = q->easy;
    switch (c->auth) {
    case LBW_SMS_AUTH_NONE:
        return 0;
    case LBW_SMS_AUTH_BASIC:
        return curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC) == CURLE_OK &&
                       curl_easy_setopt(e, CURLOPT_USERNAME, c->username) == CURLE_OK &&
                       curl_easy_setopt(e, CURLOPT_PASSWORD, c->password) == CURLE_OK
                   ? 0
                   : -1;
    case LBW_SMS_AUTH_BEARER:
        return curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER) == CURLE_OK &&
                       curl_easy_setopt(e, CURLOPT_XOAUTH2_BEARER, c->token) == CURLE_OK
                   ? 0
                   : -1;
    }
    return -1;
}

static int sms_request(struct request *q, const struct lbw_sms_config *c,
                       const struct lbw_notification *n, size_t i, const char *text)
{
    struct sms_fields fs;
    char key[LBW_IDEM_KEY_MAX + 24];
    snprintf(q->who, sizeof(q->who), "sms to %.36s", c->to[i]);
    snprintf(key, sizeof(key), "%s-%zu", n->idempotency_key, i + 1);
    if (request_setup(q, c->url, "http,https", c->ca_file,
                      timeout_or(c->timeout_ms, LBW_RECEIVER_HTTP_TIMEOUT_MS)) != 0 ||
        sms_fields_build(&fs, c, c->to[i], text) != 0)
        return -1;
    int rc = sms_payload(q, c, &fs);
    free(fs.f);
    if (rc != 0 || header_add(q, "Idempotency-Key", key) != 0 || sms_auth(q, c) != 0)
        return -1;
    return request_headers_done(q);
}

static int sms_prepare(struct delivery *d, const struct lbw_sms_config *c,
                       const struct lbw_notification *n)
{
    char text[161];
    lbw_notify_sms_text(n, text);
    if (delivery_alloc_requests(d, c->nto) != 0)
        return -1;
    for (size_t i = 0; i < c->nto; i++)
        if (sms_request(&d->reqs[i], c, n, i, text) != 0)
            return -1;
    return 0;
}

/* --- sender ------------------------------------------------------------------------------- */

static int delivery_prepare(struct delivery *d, const struct lbw_receiver *r,
                            const struct lbw_notification *n)
{
    char why[LBW_SEND_ERROR_MAX - 16];
    if (lbw_receiver_check(r, why, sizeof(why)) != 0) {
        delivery_fail(d, "%s: %s", kind_name(r->kind), why);
        return -1;
    }
    if (!lbw_idempotency_key_valid(n->idempotency_key)) {
        delivery_fail(d, "%s: the idempotency key is not valid", kind_name(r->kind));
        return -1;
    }
    int rc = r->kind == LBW_RECEIVER_WEBHOOK ? webhook_prepare(d, &r->webhook, n)
             : r->kind == LBW_RECEIVER_EMAIL ? email_prepare(d, &r->email, n)
                                             : sms_prepare(d, &r->sms, n);
    if (rc != 0 && d->failures == 0)
        delivery_fail(d, "%s: cannot set up the request", kind_name(r->kind));
    return rc;
}

/* Submits every request, or none: a refused submit cancels those already submitted. */
static int delivery_submit(struct delivery *d)
{
    struct lbw_curluv *curl = d->sender->curl;
    for (size_t i = 0; i < d->nreqs; i++) {
        if (lbw_curluv_submit(curl, d->reqs[i].easy, on_request_done, &d->reqs[i]) == 0) {
            d->pending++;
            continue;
        }
        for (size_t j = 0; j < i; j++)
            lbw_curluv_cancel(curl, d->reqs[j].easy);
        d->pending = 0;
        delivery_fail(d, "%s: cannot start the transfer", kind_name(d->kind));
        return -1;
    }
    d->started = 1;
    return 0;
}

int lbw_sender_new(struct lbw_sender **out, uv_loop_t *loop, struct lbw_curluv *curl,
                   char *err, size_t errlen)
{
    if (!out || !loop || !curl)
        return check_fail(err, errlen, "sender needs a loop and a curluv");
    struct lbw_sender *s = calloc(1, sizeof(*s));
    if (!s)
        return check_fail(err, errlen, "out of memory");
    int rc = uv_timer_init(loop, &s->timer);
    if (rc != 0) {
        free(s);
        return check_fail(err, errlen, "uv_timer_init: %s", uv_strerror(rc));
    }
    s->timer.data = s;
    s->curl = curl;
    *out = s;
    return 0;
}

int lbw_sender_send(struct lbw_sender *s, const struct lbw_receiver *r,
                    const struct lbw_notification *n, lbw_send_cb cb, void *arg)
{
    if (!s || s->closing || !r || !n || !cb)
        return -1;
    struct delivery *d = calloc(1, sizeof(*d));
    if (!d)
        return -1;
    d->sender = s;
    d->kind = r->kind;
    d->cb = cb;
    d->arg = arg;
    s->npending++;
    if (delivery_prepare(d, r, n) != 0 || delivery_submit(d) != 0)
        delivery_defer(d);
    else
        list_push(&s->active, d);
    return 0;
}

size_t lbw_sender_pending(const struct lbw_sender *s)
{
    return s ? s->npending : 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

void lbw_sender_close(struct lbw_sender *s)
{
    if (!s || s->closing)
        return;
    s->closing = 1;
    while (s->active) {
        struct delivery *d = s->active;
        list_remove(&s->active, d);
        delivery_free(d);
    }
    while (s->failed) {
        struct delivery *d = s->failed;
        list_remove(&s->failed, d);
        delivery_free(d);
    }
    s->npending = 0;
    uv_close((uv_handle_t *)&s->timer, on_timer_closed);
}
