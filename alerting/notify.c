/* notify.c - rendering notifications: webhook JSON, e-mail, SMS text, signature. See notify.h.
 *
 * A notification is first taken apart into a struct view (every alert's labels and
 * annotations parsed from their canonical keys, the group labels, the labels and annotations
 * common to all alerts); each renderer reads the view. Text that leaves the process is made
 * valid UTF-8 (an invalid byte becomes U+FFFD), and every byte that could end a header line
 * or an SMS is neutralised here, so the receivers never have to. This module owns no state
 * and does not log.
 */
#include "alerting/notify.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define SMS_MAX 160
#define HEADER_FOLD_AT 78      /* RFC 5322's recommended line length */
#define QP_LINE_MAX 76         /* RFC 2045: encoded line length, soft-break '=' included */
#define ENCODED_WORD_BYTES 39  /* text per RFC 2047 word: 52 base64 chars, 64 with framing */
#define ZERO_TIME "0001-01-01T00:00:00Z" /* Go's zero time: Alertmanager's endsAt of firing */
#define REPLACEMENT "\xEF\xBF\xBD"      /* U+FFFD */

/* --- growing text ------------------------------------------------------------------------- */

struct text {
    char *p;
    size_t len, cap;
    int failed;                 /* out of memory: everything after is dropped */
};

static void text_put(struct text *t, const void *s, size_t n)
{
    if (t->failed)
        return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *np = realloc(t->p, cap);
        if (!np) {
            t->failed = 1;
            return;
        }
        t->p = np;
        t->cap = cap;
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
}

static void text_puts(struct text *t, const char *s)
{
    text_put(t, s, strlen(s));
}

static void text_printf(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void text_printf(struct text *t, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(buf))
        t->failed = 1;
    else
        text_put(t, buf, (size_t)n);
}

/* The text as a malloc'd string (never NULL unless memory ran out); t is spent. */
static char *text_take(struct text *t)
{
    if (!t->failed && !t->p)
        text_put(t, "", 0);
    if (t->failed) {
        free(t->p);
        return NULL;
    }
    return t->p;
}

/* --- UTF-8 -------------------------------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at s (at most left bytes), or 0 if there is none:
 * no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_len(const unsigned char *s, size_t left)
{
    unsigned char c = s[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (left < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return n;
}

/* How the cleaning of a string treats ASCII control characters. */
enum controls { CONTROLS_KEEP, CONTROLS_TO_SPACE };

/* Appends s as valid UTF-8 (invalid bytes become U+FFFD), controls kept or made spaces. */
static void text_put_clean(struct text *t, const char *s, enum controls ctl)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t left = strlen(s);
    while (left > 0) {
        size_t n = utf8_len(u, left);
        if (n == 0) {
            text_puts(t, REPLACEMENT);
            n = 1;
        } else if (n == 1 && ctl == CONTROLS_TO_SPACE && (u[0] < 0x20 || u[0] == 0x7F)) {
            text_put(t, " ", 1);
        } else {
            text_put(t, u, n);
        }
        u += n;
        left -= n;
    }
}

/* The longest prefix of s[0..len) that is at most max bytes and ends between characters. */
static size_t utf8_prefix(const char *s, size_t len, size_t max)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t pos = 0;
    while (pos < len) {
        size_t n = utf8_len(u + pos, len - pos);
        if (n == 0)
            n = 1;
        if (pos + n > max)
            break;
        pos += n;
    }
    return pos;
}

/* --- the notification taken apart --------------------------------------------------------- */

struct view {
    const struct lbw_notification *n;
    struct lbw_key_parsed group;
    struct lbw_key_parsed *labels;       /* one per alert */
    struct lbw_key_parsed *annotations;  /* one per alert; no labels when it had none */
    struct lbw_label common_labels[LBW_LABELS_MAX];
    size_t ncommon_labels;
    struct lbw_label common_annotations[LBW_LABELS_MAX];
    size_t ncommon_annotations;
    size_t nfiring;
};

/* A NULL or empty key parses as "no labels". */
static int parse_optional_key(const char *key, struct lbw_key_parsed *out)
{
    if (!key || !*key) {
        out->metric = NULL;
        out->nlabels = 0;
        return 0;
    }
    return lbw_key_parse(key, strlen(key), out);
}

/* The labels of first that every other key has with the same value. */
static size_t common_of(const struct lbw_key_parsed *keys, size_t nkeys, struct lbw_label *out)
{
    size_t n = 0;
    if (nkeys == 0)
        return 0;
    for (size_t l = 0; l < keys[0].nlabels; l++) {
        const struct lbw_label *cand = &keys[0].labels[l];
        size_t i = 1;
        for (; i < nkeys; i++) {
            const char *v = lbw_key_label(&keys[i], cand->name);
            if (!v || strcmp(v, cand->value) != 0)
                break;
        }
        if (i == nkeys)
            out[n++] = *cand;
    }
    return n;
}

static void view_close(struct view *v)
{
    free(v->labels);
    free(v->annotations);
}

static int view_open(struct view *v, const struct lbw_notification *n)
{
    memset(v, 0, sizeof(*v));
    v->n = n;
    if (!n || (n->nalerts > 0 && !n->alerts) || parse_optional_key(n->group_key, &v->group) != 0)
        return -1;
    size_t count = n->nalerts ? n->nalerts : 1;
    v->labels = calloc(count, sizeof(*v->labels));
    v->annotations = calloc(count, sizeof(*v->annotations));
    if (!v->labels || !v->annotations) {
        view_close(v);
        return -1;
    }
    for (size_t i = 0; i < n->nalerts; i++) {
        const struct lbw_notify_alert *a = &n->alerts[i];
        if (!a->labels || parse_optional_key(a->labels, &v->labels[i]) != 0 ||
            parse_optional_key(a->annotations, &v->annotations[i]) != 0) {
            view_close(v);
            return -1;
        }
        if (a->status == LBW_NOTIFY_FIRING)
            v->nfiring++;
    }
    v->ncommon_labels = common_of(v->labels, n->nalerts, v->common_labels);
    v->ncommon_annotations = common_of(v->annotations, n->nalerts, v->common_annotations);
    return 0;
}

static const char *alert_label(const struct view *v, size_t i, const char *name)
{
    return lbw_key_label(&v->labels[i], name);
}

/* The alert's summary annotation, else its description, else NULL. */
static const char *alert_summary(const struct view *v, size_t i)
{
    const char *s = lbw_key_label(&v->annotations[i], "summary");
    return s ? s : lbw_key_label(&v->annotations[i], "description");
}

static int is_common_label(const struct view *v, const char *name)
{
    for (size_t i = 0; i < v->ncommon_labels; i++)
        if (strcmp(v->common_labels[i].name, name) == 0)
            return 1;
    return 0;
}

static int is_name_or_severity(const char *name)
{
    return strcmp(name, "alertname") == 0 || strcmp(name, "severity") == 0;
}

static const char *status_word(enum lbw_notify_status s)
{
    return s == LBW_NOTIFY_FIRING ? "firing" : "resolved";
}

static const char *status_word_upper(enum lbw_notify_status s)
{
    return s == LBW_NOTIFY_FIRING ? "FIRING" : "RESOLVED";
}

/* --- times -------------------------------------------------------------------------------- */

static int split_ms(int64_t ms, struct tm *tm, int *millis)
{
    int64_t secs = ms / 1000, rem = ms % 1000;
    if (rem < 0) {
        rem += 1000;
        secs--;
    }
    time_t t = (time_t)secs;
    *millis = (int)rem;
    return gmtime_r(&t, tm) ? 0 : -1;
}

/* RFC 3339 UTC with milliseconds; 0 (and anything gmtime cannot show) is Go's zero time. */
static void rfc3339_ms(int64_t ms, char out[32])
{
    struct tm tm;
    int millis;
    if (ms == 0 || split_ms(ms, &tm, &millis) != 0 || tm.tm_year + 1900 > 9999 ||
        tm.tm_year + 1900 < 1) {
        snprintf(out, 32, "%s", ZERO_TIME);
        return;
    }
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", millis);
}

/* RFC 5322 date-time in UTC, with English names whatever the locale. */
static void rfc5322_date(int64_t ms, char out[40])
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    int millis;
    if (split_ms(ms, &tm, &millis) != 0)
        split_ms(0, &tm, &millis);
    snprintf(out, 40, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday % 7],
             tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
             tm.tm_sec);
}

/* --- webhook JSON ------------------------------------------------------------------------- */

/* A JSON string of s made valid UTF-8. */
static json_t *json_text(const char *s)
{
    struct text t = {0};
    text_put_clean(&t, s ? s : "", CONTROLS_KEEP);
    json_t *j = t.failed ? NULL : json_stringn(t.p ? t.p : "", t.len);
    free(t.p);
    return j;
}

static json_t *json_labels(const struct lbw_label *l, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < n; i++) {
        if (json_object_set_new(o, l[i].name, json_text(l[i].value)) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

static json_t *json_alert(const struct view *v, size_t i)
{
    const struct lbw_notify_alert *a = &v->n->alerts[i];
    char starts[32], ends[32], fp[17];
    rfc3339_ms(a->starts_at_ms, starts);
    rfc3339_ms(a->status == LBW_NOTIFY_FIRING ? 0 : a->ends_at_ms, ends);
    snprintf(fp, sizeof(fp), "%016llx", (unsigned long long)a->fingerprint);
    return json_pack("{s:s, s:o, s:o, s:s, s:s, s:o, s:s}",
                     "status", status_word(a->status),
                     "labels", json_labels(v->labels[i].labels, v->labels[i].nlabels),
                     "annotations",
                     json_labels(v->annotations[i].labels, v->annotations[i].nlabels),
                     "startsAt", starts, "endsAt", ends,
                     "generatorURL", json_text(v->n->external_url),
                     "fingerprint", fp);
}

static json_t *json_alerts(const struct view *v)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < v->n->nalerts; i++) {
        if (json_array_append_new(arr, json_alert(v, i)) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

char *lbw_notify_webhook_json(const struct lbw_notification *n)
{
    struct view v;
    if (view_open(&v, n) != 0)
        return NULL;
    json_t *root = json_pack(
        "{s:o, s:s, s:o, s:o, s:o, s:o, s:o, s:s, s:o, s:i}",
        "receiver", json_text(n->receiver),
        "status", status_word(n->status),
        "alerts", json_alerts(&v),
        "groupLabels", json_labels(v.group.labels, v.group.nlabels),
        "commonLabels", json_labels(v.common_labels, v.ncommon_labels),
        "commonAnnotations", json_labels(v.common_annotations, v.ncommon_annotations),
        "externalURL", json_text(n->external_url),
        "version", "4",
        "groupKey", json_text(n->group_key),
        "truncatedAlerts", 0);
    view_close(&v);
    if (!root)
        return NULL;
    char *out = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return out;
}

/* --- e-mail: title, headers --------------------------------------------------------------- */

/* "name=value" */
static void text_pair(struct text *t, const struct lbw_label *l)
{
    text_puts(t, l->name);
    text_puts(t, "=");
    text_puts(t, l->value);
}

static int alertname_seen_before(const struct view *v, size_t i)
{
    const char *name = alert_label(v, i, "alertname");
    for (size_t j = 0; j < i; j++) {
        const char *other = alert_label(v, j, "alertname");
        if (other && strcmp(other, name) == 0)
            return 1;
    }
    return 0;
}

/* "[FIRING:2] CertExpiringSoon (target=www)": the status (with the number firing), the
 * distinct alert names, then the group labels other than alertname. Raw UTF-8. */
static void email_title(struct text *t, const struct view *v)
{
    const struct lbw_notification *n = v->n;
    if (n->status == LBW_NOTIFY_FIRING)
        text_printf(t, "[FIRING:%zu]", v->nfiring);
    else
        text_puts(t, "[RESOLVED]");
    if (n->escalation)
        text_puts(t, " ESCALATED");
    size_t named = 0;
    for (size_t i = 0; i < n->nalerts; i++) {
        const char *name = alert_label(v, i, "alertname");
        if (!name || alertname_seen_before(v, i))
            continue;
        text_puts(t, named++ ? ", " : " ");
        text_puts(t, name);
    }
    size_t shown = 0;
    for (size_t i = 0; i < v->group.nlabels; i++) {
        if (strcmp(v->group.labels[i].name, "alertname") == 0)
            continue;
        text_puts(t, shown++ ? " " : " (");
        text_pair(t, &v->group.labels[i]);
    }
    if (shown)
        text_puts(t, ")");
}

static int header_value_plain(const char *s)
{
    for (const unsigned char *u = (const unsigned char *)s; *u; u++)
        if (*u < 0x20 || *u >= 0x7F)
            return 0;
    return 1;
}

/* "Name: value" folded before a word that would pass HEADER_FOLD_AT. Control characters
 * become spaces first, so value can never end the header or start another. */
static void header_folded(struct text *t, const char *name, const char *value)
{
    struct text clean = {0};
    text_put_clean(&clean, value, CONTROLS_TO_SPACE);
    if (clean.failed) {
        t->failed = 1;
        free(clean.p);
        return;
    }
    text_printf(t, "%s:", name);
    size_t col = strlen(name) + 1, pos = 0;
    const char *s = clean.p ? clean.p : "";
    while (s[pos]) {
        while (s[pos] == ' ')
            pos++;
        size_t w = strcspn(s + pos, " ");
        if (w == 0)
            break;
        if (col + 1 + w > HEADER_FOLD_AT && col > strlen(name) + 1) {
            text_puts(t, "\r\n");
            col = 0;
        }
        text_put(t, " ", 1);
        text_put(t, s + pos, w);
        col += 1 + w;
        pos += w;
    }
    text_puts(t, "\r\n");
    free(clean.p);
}

/* "Name: =?UTF-8?B?...?=" words of at most ENCODED_WORD_BYTES whole characters each, one per
 * line; plain folding when the value is printable ASCII. */
static void header_encoded(struct text *t, const char *name, const char *value)
{
    if (header_value_plain(value)) {
        header_folded(t, name, value);
        return;
    }
    struct text clean = {0};
    text_put_clean(&clean, value, CONTROLS_TO_SPACE);
    text_printf(t, "%s:", name);
    size_t pos = 0;
    while (!clean.failed && pos < clean.len) {
        unsigned char b64[4 * ((ENCODED_WORD_BYTES + 2) / 3) + 1];
        size_t take = utf8_prefix(clean.p + pos, clean.len - pos, ENCODED_WORD_BYTES);
        EVP_EncodeBlock(b64, (const unsigned char *)clean.p + pos, (int)take);
        text_printf(t, "%s=?UTF-8?B?%s?=", pos ? "\r\n " : " ", (const char *)b64);
        pos += take;
    }
    text_puts(t, "\r\n");
    if (clean.failed)
        t->failed = 1;
    free(clean.p);
}

static void email_headers(struct text *t, const struct view *v, const char *from,
                          const char *const *to, size_t nto, int64_t now_ms)
{
    char date[40];
    struct text list = {0}, title = {0};
    rfc5322_date(now_ms, date);
    for (size_t i = 0; i < nto; i++) {
        text_puts(&list, i ? ", " : "");
        text_puts(&list, to[i] ? to[i] : "");
    }
    email_title(&title, v);
    if (list.failed || title.failed)
        t->failed = 1;
    header_folded(t, "Date", date);
    header_folded(t, "From", from);
    header_folded(t, "To", list.p ? list.p : "");
    text_printf(t, "Message-ID: <%s@lbwatch>\r\n", v->n->idempotency_key);
    header_encoded(t, "Subject", title.p ? title.p : "");
    text_puts(t, "MIME-Version: 1.0\r\n"
                 "Content-Type: text/plain; charset=utf-8\r\n"
                 "Content-Transfer-Encoding: quoted-printable\r\n"
                 "Auto-Submitted: auto-generated\r\n"
                 "\r\n");
    free(list.p);
    free(title.p);
}

/* --- e-mail: body ------------------------------------------------------------------------- */

/* "    name: value", continuation lines of a multi-line value indented under it. */
static void body_pair(struct text *t, const struct lbw_label *l)
{
    text_puts(t, "    ");
    text_puts(t, l->name);
    text_puts(t, ": ");
    for (const char *s = l->value; *s;) {
        size_t line = strcspn(s, "\n");
        text_put(t, s, line);
        s += line;
        if (*s == '\n') {
            text_puts(t, "\n      ");
            s++;
        }
    }
    text_puts(t, "\n");
}

static void body_alert(struct text *t, const struct view *v, size_t i)
{
    const struct lbw_notify_alert *a = &v->n->alerts[i];
    char when[32];
    text_printf(t, "Alert %zu of %zu: %s\n", i + 1, v->n->nalerts, status_word_upper(a->status));
    text_puts(t, "  Labels:\n");
    for (size_t l = 0; l < v->labels[i].nlabels; l++)
        body_pair(t, &v->labels[i].labels[l]);
    if (v->annotations[i].nlabels > 0) {
        text_puts(t, "  Annotations:\n");
        for (size_t l = 0; l < v->annotations[i].nlabels; l++)
            body_pair(t, &v->annotations[i].labels[l]);
    }
    rfc3339_ms(a->starts_at_ms, when);
    text_printf(t, "  Started: %s\n", when);
    if (a->status == LBW_NOTIFY_RESOLVED) {
        rfc3339_ms(a->ends_at_ms, when);
        text_printf(t, "  Ended: %s\n", when);
    }
    text_printf(t, "  Fingerprint: %016llx\n\n", (unsigned long long)a->fingerprint);
}

/* The readable body, '\n' line ends, raw UTF-8 (made valid by the caller). */
static void email_body(struct text *t, const struct view *v)
{
    const struct lbw_notification *n = v->n;
    email_title(t, v);
    text_puts(t, "\n\n");
    if (n->escalation)
        text_puts(t, "Escalation: an alert stayed unacknowledged.\n\n");
    text_printf(t, "%zu alert%s: %zu firing, %zu resolved.\n\n", n->nalerts,
                n->nalerts == 1 ? "" : "s", v->nfiring, n->nalerts - v->nfiring);
    for (size_t i = 0; i < n->nalerts; i++)
        body_alert(t, v, i);
    text_puts(t, "Status page: ");
    text_puts(t, n->external_url ? n->external_url : "");
    text_printf(t, "\nIdempotency key: %s\nReceiver: ", n->idempotency_key);
    text_puts(t, n->receiver ? n->receiver : "");
    text_puts(t, "\n");
}

static int qp_literal(unsigned char c, int last_on_line)
{
    if (c == ' ' || c == '\t')
        return !last_on_line;
    return c >= 33 && c <= 126 && c != '=';
}

/* One '\n'-terminated (or final) line as quoted-printable: encoded lines of at most
 * QP_LINE_MAX characters joined by soft breaks, ended by CRLF. */
static void qp_line(struct text *out, const unsigned char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t col = 0;
    for (size_t i = 0; i < len; i++) {
        int last = i + 1 == len;
        char tok[3] = {(char)s[i]};
        size_t toklen = 1;
        if (!qp_literal(s[i], last)) {
            tok[0] = '=';
            tok[1] = hex[s[i] >> 4];
            tok[2] = hex[s[i] & 15];
            toklen = 3;
        }
        if (col + toklen > (last ? QP_LINE_MAX : QP_LINE_MAX - 1)) {
            text_puts(out, "=\r\n");
            col = 0;
        }
        text_put(out, tok, toklen);
        col += toklen;
    }
    text_puts(out, "\r\n");
}

static void qp_encode(struct text *out, const char *s, size_t len)
{
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(s + pos, '\n', len - pos);
        size_t line = nl ? (size_t)(nl - (s + pos)) : len - pos;
        qp_line(out, (const unsigned char *)s + pos, line);
        pos += line + (nl ? 1 : 0);
    }
}

char *lbw_notify_email(const struct lbw_notification *n, const char *from,
                       const char *const *to, size_t nto, int64_t now_ms)
{
    struct view v;
    if (!n || !from || (nto > 0 && !to) || !lbw_idempotency_key_valid(n->idempotency_key) ||
        view_open(&v, n) != 0)
        return NULL;
    struct text msg = {0}, raw = {0}, clean = {0};
    email_headers(&msg, &v, from, to, nto, now_ms);
    email_body(&raw, &v);
    if (raw.failed)
        msg.failed = 1;
    else
        text_put_clean(&clean, raw.p, CONTROLS_KEEP);
    if (clean.failed)
        msg.failed = 1;
    else
        qp_encode(&msg, clean.p, clean.len);
    free(raw.p);
    free(clean.p);
    view_close(&v);
    return text_take(&msg);
}

/* --- SMS ---------------------------------------------------------------------------------- */

/* One alert in SMS form: "CertExpiringSoon target=www probe=tls: certificate expires in 2
 * days". The first alert names the group labels; every alert names its labels that not all
 * alerts share (never alertname or severity, which are said elsewhere). */
static void sms_item(struct text *t, const struct view *v, size_t i)
{
    const char *name = alert_label(v, i, "alertname");
    const char *summary = alert_summary(v, i);
    text_puts(t, name ? name : "alert");
    for (size_t l = 0; i == 0 && l < v->group.nlabels; l++) {
        if (is_name_or_severity(v->group.labels[l].name))
            continue;
        text_puts(t, " ");
        text_pair(t, &v->group.labels[l]);
    }
    for (size_t l = 0; l < v->labels[i].nlabels; l++) {
        const struct lbw_label *a = &v->labels[i].labels[l];
        if (is_name_or_severity(a->name) || is_common_label(v, a->name) ||
            lbw_key_label(&v->group, a->name))
            continue;
        text_puts(t, " ");
        text_pair(t, a);
    }
    if (summary) {
        text_puts(t, ": ");
        text_puts(t, summary);
    }
}

/* " (+N more)", or nothing when none are left out. Returns its length. */
static size_t sms_more(char buf[32], size_t more)
{
    buf[0] = '\0';
    if (more == 0)
        return 0;
    int n = snprintf(buf, 32, " (+%zu more)", more);
    return n > 0 ? (size_t)n : 0;
}

/* Appends as much of s as leaves reserve bytes of SMS_MAX free, cut between characters. */
static void sms_append(char *out, size_t *len, const char *s, size_t slen, size_t reserve)
{
    size_t room = *len + reserve < SMS_MAX ? SMS_MAX - reserve - *len : 0;
    size_t take = utf8_prefix(s, slen, room);
    memcpy(out + *len, s, take);
    *len += take;
    out[*len] = '\0';
}

/* raw as one line of valid UTF-8, controls made spaces; raw is spent. NULL if memory ran
 * out. */
static char *sms_clean(struct text *raw, size_t *len)
{
    struct text clean = {0};
    if (!raw->failed)
        text_put_clean(&clean, raw->p ? raw->p : "", CONTROLS_TO_SPACE);
    else
        clean.failed = 1;
    free(raw->p);
    *len = clean.len;
    return text_take(&clean);
}

static char *sms_head(const struct view *v, size_t *len)
{
    const char *severity = v->n->nalerts ? alert_label(v, 0, "severity") : NULL;
    struct text t = {0};
    if (v->n->escalation)
        text_puts(&t, "ESCALATED ");
    text_puts(&t, status_word_upper(v->n->status));
    if (severity) {
        text_puts(&t, " ");
        text_puts(&t, severity);
    }
    return sms_clean(&t, len);
}

static char *sms_item_text(const struct view *v, size_t i, size_t *len)
{
    struct text t = {0};
    text_puts(&t, i ? "; " : " ");
    sms_item(&t, v, i);
    return sms_clean(&t, len);
}

/* The head, then as many whole alerts as fit, then " (+N more)" for the alerts left out.
 * The first alert is always there: cut short to fit, it ends with "...". */
static void sms_render(const struct view *v, char out[SMS_MAX + 1])
{
    size_t len = 0, slen, nalerts = v->n->nalerts;
    char more[32];
    char *s = sms_head(v, &slen);
    if (!s)
        return;
    sms_append(out, &len, s, slen, 0);
    free(s);
    for (size_t i = 0; i < nalerts; i++) {
        size_t mlen = sms_more(more, nalerts - i - 1);
        if (!(s = sms_item_text(v, i, &slen)))
            return;
        if (len + slen + mlen <= SMS_MAX) {
            sms_append(out, &len, s, slen, 0);
            free(s);
            continue;
        }
        if (i == 0) {
            sms_append(out, &len, s, slen, mlen + 3);
            sms_append(out, &len, "...", 3, mlen);
        } else {
            mlen = sms_more(more, nalerts - i);
        }
        free(s);
        sms_append(out, &len, more, mlen, 0);
        return;
    }
}

void lbw_notify_sms_text(const struct lbw_notification *n, char out[SMS_MAX + 1])
{
    struct view v;
    out[0] = '\0';
    if (view_open(&v, n) != 0) {
        snprintf(out, SMS_MAX + 1, "%s: %zu alerts (details could not be read)",
                 n && n->status == LBW_NOTIFY_RESOLVED ? "RESOLVED" : "FIRING",
                 n ? n->nalerts : 0);
        return;
    }
    sms_render(&v, out);
    view_close(&v);
}

/* --- signature and keys ------------------------------------------------------------------- */

void lbw_notify_signature(const void *body, size_t len, const void *secret, size_t secretlen,
                          char out[7 + 65])
{
    static const unsigned char no_key[1];
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    out[0] = '\0';
    if (secretlen > 0x7fffffff ||
        !HMAC(EVP_sha256(), secret ? secret : no_key, (int)secretlen,
              body ? body : no_key, len, mac, &maclen) || maclen != 32)
        return;
    memcpy(out, "sha256=", 7);
    for (unsigned int i = 0; i < maclen; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", mac[i]);
}

int lbw_idempotency_key_valid(const char *key)
{
    if (!key || !*key)
        return 0;
    size_t n = 0;
    for (; key[n]; n++) {
        char c = key[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-'))
            return 0;
        if (n + 1 >= LBW_IDEM_KEY_MAX)
            return 0;
    }
    return 1;
}
