/* test_notify.c - rendering notifications: Alertmanager v4 JSON, e-mail, SMS text, HMAC.
 *
 * Payloads are checked field by field (and byte for byte where the format is fixed), the
 * e-mail is taken apart into its header section and a quoted-printable body that the test
 * decodes itself, and the signature is checked against RFC 4231's HMAC-SHA256 vectors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "alerting/notify.h"

#define T0 1700000000123LL /* 2023-11-14T22:13:20.123Z, a Tuesday */
#define URL "https://n1.example:8443/"
#define CERT_LABELS(probe, sev) \
    "ALERTS{alertname=\"CertExpiringSoon\",probe=\"" probe "\",severity=\"" sev "\"," \
    "target=\"www\"}"

static struct lbw_notification notification(const struct lbw_notify_alert *alerts, size_t n)
{
    struct lbw_notification nt = {
        .receiver = "ops",
        .status = LBW_NOTIFY_FIRING,
        .group_key = "G{target=\"www\"}",
        .alerts = alerts,
        .nalerts = n,
        .idempotency_key = "k-1",
        .external_url = URL,
    };
    for (size_t i = 0; i < n; i++)
        if (alerts[i].status == LBW_NOTIFY_FIRING)
            return nt;
    nt.status = LBW_NOTIFY_RESOLVED;
    return nt;
}

static const struct lbw_notify_alert one_alert[] = {
    {LBW_NOTIFY_FIRING,
     "ALERTS{alertname=\"CertExpiringSoon\",severity=\"critical\",target=\"www\"}",
     "A{summary=\"certificate expires in 2 days\"}", T0, 0, 0xab},
};

static void assert_contains(const char *s, const char *part)
{
    if (!s || !strstr(s, part))
        fail_msg("\"%s\" does not contain \"%s\"", s ? s : "(null)", part);
}

static void assert_not_contains(const char *s, const char *part)
{
    if (strstr(s, part))
        fail_msg("\"%s\" contains \"%s\"", s, part);
}

/* Well-formed UTF-8, by the same rules as RFC 3629. */
static int utf8_ok(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t n = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
                 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        if (n == 0 || i + n > len)
            return 0;
        for (size_t k = 1; k < n; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
        i += n;
    }
    return 1;
}

/* --- webhook JSON ------------------------------------------------------------------------- */

static void webhook_json_exact(void **state)
{
    (void)state;
    struct lbw_notification n = notification(one_alert, 1);
    char *json = lbw_notify_webhook_json(&n);
    assert_string_equal(
        json,
        "{\"receiver\":\"ops\",\"status\":\"firing\",\"alerts\":[{\"status\":\"firing\","
        "\"labels\":{\"alertname\":\"CertExpiringSoon\",\"severity\":\"critical\","
        "\"target\":\"www\"},\"annotations\":{\"summary\":\"certificate expires in 2 days\"},"
        "\"startsAt\":\"2023-11-14T22:13:20.123Z\",\"endsAt\":\"0001-01-01T00:00:00Z\","
        "\"generatorURL\":\"" URL "\",\"fingerprint\":\"00000000000000ab\"}],"
        "\"groupLabels\":{\"target\":\"www\"},\"commonLabels\":{\"alertname\":"
        "\"CertExpiringSoon\",\"severity\":\"critical\",\"target\":\"www\"},"
        "\"commonAnnotations\":{\"summary\":\"certificate expires in 2 days\"},"
        "\"externalURL\":\"" URL "\",\"version\":\"4\",\"groupKey\":\"G{target=\\\"www\\\"}\","
        "\"truncatedAlerts\":0}");
    free(json);
}

static json_t *render_parsed(const struct lbw_notification *n)
{
    char *text = lbw_notify_webhook_json(n);
    assert_non_null(text);
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    free(text);
    assert_non_null(j);
    return j;
}

static const char *jstr(json_t *obj, const char *path)
{
    json_t *cur = obj;
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *save = NULL, *part = strtok_r(buf, ".", &save); part;
         part = strtok_r(NULL, ".", &save)) {
        char *end;
        long idx = strtol(part, &end, 10);
        cur = *end == '\0' ? json_array_get(cur, (size_t)idx) : json_object_get(cur, part);
    }
    if (!json_is_string(cur))
        fail_msg("%s is not a string", path);
    return json_string_value(cur);
}

static void webhook_common_labels_and_times(void **state)
{
    (void)state;
    const struct lbw_notify_alert alerts[] = {
        {LBW_NOTIFY_FIRING, CERT_LABELS("http", "critical"),
         "A{description=\"renew it\",summary=\"expires in 2 days\"}", T0, 0, 1},
        {LBW_NOTIFY_RESOLVED, CERT_LABELS("tls", "warning"),
         "A{description=\"renew it\",summary=\"expires in 9 days\"}", -1, T0 + 60000, 2},
        {LBW_NOTIFY_FIRING, CERT_LABELS("tls", "critical"), "A{description=\"renew it\"}", 0,
         0, 0xfedcba9876543210ULL},
    };
    struct lbw_notification n = notification(alerts, 3);
    json_t *j = render_parsed(&n);
    assert_string_equal(jstr(j, "status"), "firing");
    assert_int_equal(json_array_size(json_object_get(j, "alerts")), 3);
    assert_string_equal(jstr(j, "alerts.0.startsAt"), "2023-11-14T22:13:20.123Z");
    assert_string_equal(jstr(j, "alerts.0.endsAt"), "0001-01-01T00:00:00Z");
    assert_string_equal(jstr(j, "alerts.1.status"), "resolved");
    assert_string_equal(jstr(j, "alerts.1.startsAt"), "1969-12-31T23:59:59.999Z");
    assert_string_equal(jstr(j, "alerts.1.endsAt"), "2023-11-14T22:14:20.123Z");
    assert_string_equal(jstr(j, "alerts.2.startsAt"), "0001-01-01T00:00:00Z");
    assert_string_equal(jstr(j, "alerts.2.fingerprint"), "fedcba9876543210");
    assert_string_equal(jstr(j, "alerts.1.fingerprint"), "0000000000000002");
    assert_string_equal(jstr(j, "alerts.1.labels.probe"), "tls");
    assert_string_equal(jstr(j, "alerts.0.annotations.summary"), "expires in 2 days");
    assert_string_equal(jstr(j, "alerts.0.generatorURL"), URL);

    json_t *common = json_object_get(j, "commonLabels");
    assert_int_equal(json_object_size(common), 2);
    assert_string_equal(jstr(j, "commonLabels.alertname"), "CertExpiringSoon");
    assert_string_equal(jstr(j, "commonLabels.target"), "www");
    json_t *ca = json_object_get(j, "commonAnnotations");
    assert_int_equal(json_object_size(ca), 1);
    assert_string_equal(jstr(j, "commonAnnotations.description"), "renew it");
    assert_int_equal(json_object_size(json_object_get(j, "groupLabels")), 1);
    assert_string_equal(jstr(j, "groupLabels.target"), "www");
    assert_string_equal(jstr(j, "groupKey"), "G{target=\"www\"}");
    assert_string_equal(jstr(j, "version"), "4");
    assert_int_equal(json_integer_value(json_object_get(j, "truncatedAlerts")), 0);
    json_decref(j);
}

static void webhook_resolved_without_group_or_annotations(void **state)
{
    (void)state;
    const struct lbw_notify_alert alerts[] = {
        {LBW_NOTIFY_RESOLVED, "ALERTS{alertname=\"TargetDown\",target=\"a\"}", NULL, T0,
         T0 + 1, 7},
        {LBW_NOTIFY_RESOLVED, "ALERTS{alertname=\"TargetDown\",target=\"b\"}",
         "A{summary=\"down\"}", T0, T0 + 2, 8},
    };
    struct lbw_notification n = notification(alerts, 2);
    n.group_key = NULL;
    json_t *j = render_parsed(&n);
    assert_string_equal(jstr(j, "status"), "resolved");
    assert_int_equal(json_object_size(json_object_get(j, "groupLabels")), 0);
    assert_int_equal(json_object_size(json_object_get(j, "commonAnnotations")), 0);
    assert_int_equal(json_object_size(json_object_get(j, "commonLabels")), 1);
    assert_int_equal(json_object_size(json_object_get(
                         json_array_get(json_object_get(j, "alerts"), 0), "annotations")),
                     0);
    assert_string_equal(jstr(j, "alerts.1.endsAt"), "2023-11-14T22:13:20.125Z");
    assert_string_equal(jstr(j, "groupKey"), "");
    json_decref(j);
}

static void webhook_invalid_utf8_is_replaced(void **state)
{
    (void)state;
    const struct lbw_notify_alert alerts[] = {
        {LBW_NOTIFY_FIRING, "ALERTS{alertname=\"X\",target=\"bad\xff\xc3(\"}",
         "A{summary=\"caf\xc3\xa9 \\\"quoted\\\"\\nnext\"}", T0, 0, 1},
    };
    struct lbw_notification n = notification(alerts, 1);
    json_t *j = render_parsed(&n);
    assert_string_equal(jstr(j, "alerts.0.labels.target"), "bad\xEF\xBF\xBD\xEF\xBF\xBD(");
    assert_string_equal(jstr(j, "alerts.0.annotations.summary"),
                        "caf\xc3\xa9 \"quoted\"\nnext");
    json_decref(j);
}

static void webhook_rejects_bad_keys(void **state)
{
    (void)state;
    struct lbw_notify_alert bad = one_alert[0];
    bad.labels = "ALERTS{target=\"www\",alertname=\"X\"}"; /* not sorted */
    struct lbw_notification n = notification(&bad, 1);
    assert_null(lbw_notify_webhook_json(&n));
    n = notification(one_alert, 1);
    n.group_key = "G{target=www}";
    assert_null(lbw_notify_webhook_json(&n));
    assert_null(lbw_notify_webhook_json(NULL));
}

/* Same notification, same bytes: any node that delivers an intent sends the same body. */
static void webhook_is_deterministic(void **state)
{
    (void)state;
    struct lbw_notification n = notification(one_alert, 1);
    char *a = lbw_notify_webhook_json(&n), *b = lbw_notify_webhook_json(&n);
    assert_string_equal(a, b);
    free(a);
    free(b);
}

/* --- e-mail ------------------------------------------------------------------------------- */

static const char *const two_to[] = {"ops@example.com", "oncall@example.com"};

/* The header section (through the blank line) and the body of a message. */
struct mail {
    char *headers;
    char *body;
};

static struct mail split_mail(char *msg)
{
    char *sep = strstr(msg, "\r\n\r\n");
    assert_non_null(sep);
    struct mail m = {msg, sep + 4};
    sep[2] = '\0';
    return m;
}

/* Every line break is CRLF; no CR or LF stands alone. */
static void assert_crlf_only(const char *s)
{
    for (size_t i = 0; s[i]; i++) {
        if (s[i] == '\r' && s[i + 1] != '\n')
            fail_msg("bare CR at %zu", i);
        if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
            fail_msg("bare LF at %zu", i);
    }
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Decodes a quoted-printable body (CRLF line ends) into malloc'd text with '\n' line ends,
 * checking the encoding rules on the way. */
static char *qp_decode(const char *body)
{
    char *out = malloc(strlen(body) + 1);
    size_t o = 0;
    assert_non_null(out);
    while (*body) {
        const char *eol = strstr(body, "\r\n");
        assert_non_null(eol);
        size_t len = (size_t)(eol - body);
        if (len > 76)
            fail_msg("encoded line of %zu characters: %.*s", len, (int)len, body);
        if (len > 0 && (body[len - 1] == ' ' || body[len - 1] == '\t'))
            fail_msg("trailing white space: %.*s", (int)len, body);
        int soft = len > 0 && body[len - 1] == '=';
        for (size_t i = 0; i < len - (soft ? 1 : 0); i++) {
            unsigned char c = (unsigned char)body[i];
            if (c == '=') {
                int hi = hexval(body[i + 1]), lo = hexval(body[i + 2]);
                if (hi < 0 || lo < 0)
                    fail_msg("bad escape in %.*s", (int)len, body);
                out[o++] = (char)(hi * 16 + lo);
                i += 2;
            } else {
                if (c > 126 || (c < 33 && c != ' ' && c != '\t'))
                    fail_msg("unencoded byte 0x%02x", c);
                out[o++] = (char)c;
            }
        }
        if (!soft)
            out[o++] = '\n';
        body = eol + 2;
    }
    out[o] = '\0';
    return out;
}

static char *render_mail(const struct lbw_notification *n, const char *from,
                         const char *const *to, size_t nto)
{
    char *msg = lbw_notify_email(n, from, to, nto, T0 + 876);
    assert_non_null(msg);
    assert_crlf_only(msg);
    return msg;
}

static void email_headers_exact(void **state)
{
    (void)state;
    struct lbw_notification n = notification(one_alert, 1);
    char *msg = render_mail(&n, "lbwatch <alerts@example.com>", two_to, 2);
    struct mail m = split_mail(msg);
    assert_string_equal(m.headers,
                        "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
                        "From: lbwatch <alerts@example.com>\r\n"
                        "To: ops@example.com, oncall@example.com\r\n"
                        "Message-ID: <k-1@lbwatch>\r\n"
                        "Subject: [FIRING:1] CertExpiringSoon (target=www)\r\n"
                        "MIME-Version: 1.0\r\n"
                        "Content-Type: text/plain; charset=utf-8\r\n"
                        "Content-Transfer-Encoding: quoted-printable\r\n"
                        "Auto-Submitted: auto-generated\r\n");
    char *body = qp_decode(m.body);
    assert_contains(body, "[FIRING:1] CertExpiringSoon (target=www)\n\n");
    assert_contains(body, "1 alert: 1 firing, 0 resolved.\n");
    assert_contains(body, "Alert 1 of 1: FIRING\n  Labels:\n    alertname: CertExpiringSoon\n"
                          "    severity: critical\n    target: www\n");
    assert_contains(body, "  Annotations:\n    summary: certificate expires in 2 days\n");
    assert_contains(body, "  Started: 2023-11-14T22:13:20.123Z\n");
    assert_not_contains(body, "Ended:");
    assert_contains(body, "  Fingerprint: 00000000000000ab\n");
    assert_contains(body, "Status page: " URL "\n");
    assert_contains(body, "Idempotency key: k-1\n");
    free(body);
    free(msg);
}

static void email_subject_counts_firing_and_lists_names(void **state)
{
    (void)state;
    const struct lbw_notify_alert alerts[] = {
        {LBW_NOTIFY_FIRING, CERT_LABELS("http", "critical"), NULL, T0, 0, 1},
        {LBW_NOTIFY_FIRING, CERT_LABELS("tls", "critical"), NULL, T0, 0, 2},
        {LBW_NOTIFY_RESOLVED, "ALERTS{alertname=\"TargetDown\",target=\"www\"}", NULL, T0,
         T0 + 5, 3},
    };
    struct lbw_notification n = notification(alerts, 3);
    char *msg = render_mail(&n, "alerts@example.com", two_to, 1);
    assert_contains(msg, "\r\nSubject: [FIRING:2] CertExpiringSoon, TargetDown (target=www)\r\n");
    char *body = qp_decode(split_mail(msg).body);
    assert_contains(body, "3 alerts: 2 firing, 1 resolved.\n");
    assert_contains(body, "Alert 3 of 3: RESOLVED\n");
    assert_contains(body, "  Ended: 2023-11-14T22:13:20.128Z\n");
    free(body);
    free(msg);

    n = notification(alerts + 2, 1);
    n.escalation = 1;
    msg = render_mail(&n, "alerts@example.com", two_to, 1);
    assert_contains(msg, "\r\nSubject: [RESOLVED] ESCALATED TargetDown (target=www)\r\n");
    free(msg);
}

static void email_quoted_printable(void **state)
{
    (void)state;
    char description[260];
    for (int i = 0; i < 200; i++)
        description[i] = (char)('a' + i % 26);
    description[200] = '\0';
    char annotations[400];
    snprintf(annotations, sizeof(annotations),
             "A{description=\"%s\",note=\"a=b and trailing \",summary=\"Zertifikat "
             "l\xc3\xa4uft ab\\nzweite Zeile\"}",
             description);
    const struct lbw_notify_alert alerts[] = {
        {LBW_NOTIFY_FIRING, CERT_LABELS("tls", "warning"), annotations, T0, 0, 1},
    };
    struct lbw_notification n = notification(alerts, 1);
    char *msg = render_mail(&n, "alerts@example.com", two_to, 2);
    struct mail m = split_mail(msg);
    assert_contains(m.body, "    summary: Zertifikat l=C3=A4uft ab\r\n");
    assert_contains(m.body, "    note: a=3Db and trailing=20\r\n");
    assert_contains(m.body, "=\r\n"); /* the long description has soft breaks */
    char *body = qp_decode(m.body);
    char want[300];
    snprintf(want, sizeof(want), "    description: %s\n", description);
    assert_contains(body, want);
    assert_contains(body, "    note: a=b and trailing \n");
    assert_contains(body, "    summary: Zertifikat l\xc3\xa4uft ab\n      zweite Zeile\n");
    free(body);
    free(msg);
}

/* No value can end a header line: every line of the header section is one of ours or a
 * folded continuation, and the injected names appear nowhere at a line start. */
static void email_header_injection_is_impossible(void **state)
{
    (void)state;
    const struct lbw_notify_alert alerts[] = {
        {LBW_NOTIFY_FIRING, "ALERTS{alertname=\"Cert\r\\nBcc: evil@example.com\",target=\"w\"}",
         NULL, T0, 0, 1},
    };
    struct lbw_notification n = notification(alerts, 1);
    n.group_key = "G{target=\"w\\nX-Evil: 1\"}";
    const char *to[] = {"ops@example.com\nBcc: evil@example.com", "b@example.com\r"};
    char *msg = render_mail(&n, "alerts@example.com\r\nX-Evil: 2", to, 2);
    struct mail m = split_mail(msg);
    static const char *const ours[] = {"Date: ", "From: ", "To: ", "Message-ID: ",
                                       "Subject: ", "MIME-Version: ", "Content-Type: ",
                                       "Content-Transfer-Encoding: ", "Auto-Submitted: "};
    size_t nheaders = 0;
    for (char *line = m.headers; *line;) {
        char *eol = strstr(line, "\r\n");
        assert_non_null(eol);
        int known = line[0] == ' ';
        for (size_t i = 0; !known && i < sizeof(ours) / sizeof(ours[0]); i++)
            if (strncmp(line, ours[i], strlen(ours[i])) == 0) {
                known = 1;
                nheaders++;
            }
        if (!known)
            fail_msg("unexpected header line: %.*s", (int)(eol - line), line);
        line = eol + 2;
    }
    assert_int_equal(nheaders, 9);
    assert_not_contains(m.headers, "\r\nBcc");
    assert_not_contains(m.headers, "\r\nX-Evil");
    assert_contains(m.headers, "From: alerts@example.com X-Evil: 2\r\n");
    free(msg);

    n = notification(one_alert, 1);
    n.idempotency_key = "k-1@x>\r\nBcc: e";
    assert_null(lbw_notify_email(&n, "a@example.com", two_to, 1, T0));
}

/* Decodes the RFC 2047 words of a Subject header into text. */
static void decode_subject(const char *headers, char *out, size_t outlen)
{
    const char *p = strstr(headers, "Subject:");
    size_t o = 0;
    assert_non_null(p);
    p += strlen("Subject:");
    for (;;) {
        const char *eol = strstr(p, "\r\n");
        assert_non_null(eol);
        if ((size_t)(eol - p) + strlen("Subject:") > 78)
            fail_msg("subject line too long: %.*s", (int)(eol - p), p);
        assert_true(strncmp(p, " =?UTF-8?B?", 11) == 0);
        const char *start = p + 11, *end = strstr(start, "?=");
        assert_true(end && end + 2 == eol);
        unsigned char word[80];
        int b64len = (int)(end - start);
        int n = EVP_DecodeBlock(word, (const unsigned char *)start, b64len);
        assert_true(n > 0);
        n -= (start[b64len - 1] == '=') + (start[b64len - 2] == '=');
        assert_true(utf8_ok(word, (size_t)n)); /* no character split between words */
        assert_true(o + (size_t)n < outlen);
        memcpy(out + o, word, (size_t)n);
        o += (size_t)n;
        p = eol + 2;
        if (*p != ' ')
            break;
    }
    out[o] = '\0';
}

static void email_non_ascii_subject_is_encoded(void **state)
{
    (void)state;
    char labels[300] = "ALERTS{alertname=\"Zertifikat\",target=\"";
    for (int i = 0; i < 40; i++)
        strcat(labels, "\xe2\x82\xac"); /* U+20AC, three bytes */
    strcat(labels, "\"}");
    char group[200] = "G{target=\"";
    strcat(group, strchr(labels, '\xe2'));
    const struct lbw_notify_alert alerts[] = {
        {LBW_NOTIFY_FIRING, labels, NULL, T0, 0, 1},
    };
    struct lbw_notification n = notification(alerts, 1);
    n.group_key = group;
    char *msg = render_mail(&n, "alerts@example.com", two_to, 1);
    char subject[400], want[400] = "[FIRING:1] Zertifikat (target=";
    decode_subject(split_mail(msg).headers, subject, sizeof(subject));
    for (int i = 0; i < 40; i++)
        strcat(want, "\xe2\x82\xac");
    strcat(want, ")");
    assert_string_equal(subject, want);
    free(msg);
}

static void email_long_to_list_is_folded(void **state)
{
    (void)state;
    const char *to[12];
    char addrs[12][40];
    for (int i = 0; i < 12; i++) {
        snprintf(addrs[i], sizeof(addrs[i]), "person%02d@example.com", i);
        to[i] = addrs[i];
    }
    struct lbw_notification n = notification(one_alert, 1);
    char *msg = render_mail(&n, "alerts@example.com", to, 12);
    struct mail m = split_mail(msg);
    const char *p = strstr(m.headers, "To: ");
    assert_non_null(p);
    int lines = 0;
    do {
        const char *eol = strstr(p, "\r\n");
        assert_true(eol - p <= 78);
        lines++;
        p = eol + 2;
    } while (*p == ' ');
    assert_true(lines > 1);
    assert_contains(m.headers, "person11@example.com\r\n");
    free(msg);
}

/* --- SMS ---------------------------------------------------------------------------------- */

static void sms(const struct lbw_notification *n, char out[161])
{
    memset(out, 'Z', 161);
    lbw_notify_sms_text(n, out);
    assert_true(strlen(out) <= 160);
    assert_true(utf8_ok((const unsigned char *)out, strlen(out)));
    for (const char *p = out; *p; p++)
        assert_true((unsigned char)*p >= 0x20 && *p != 0x7f);
}

static void sms_single_alert(void **state)
{
    (void)state;
    char out[161];
    struct lbw_notification n = notification(one_alert, 1);
    sms(&n, out);
    assert_string_equal(out, "FIRING critical CertExpiringSoon target=www: certificate expires "
                             "in 2 days");
    n.escalation = 1;
    sms(&n, out);
    assert_string_equal(out, "ESCALATED FIRING critical CertExpiringSoon target=www: "
                             "certificate expires in 2 days");
}

static void sms_several_alerts_name_their_differences(void **state)
{
    (void)state;
    const struct lbw_notify_alert alerts[] = {
        {LBW_NOTIFY_FIRING, CERT_LABELS("http", "critical"), "A{summary=\"2 days\"}", T0, 0, 1},
        {LBW_NOTIFY_RESOLVED, CERT_LABELS("tls", "critical"), "A{description=\"ok\"}", T0, 1,
         2},
    };
    struct lbw_notification n = notification(alerts, 2);
    char out[161];
    sms(&n, out);
    assert_string_equal(out, "FIRING critical CertExpiringSoon target=www probe=http: 2 days; "
                             "CertExpiringSoon probe=tls: ok");
}

static void sms_counts_alerts_left_out(void **state)
{
    (void)state;
    struct lbw_notify_alert alerts[5];
    char labels[5][120];
    for (int i = 0; i < 5; i++) {
        snprintf(labels[i], sizeof(labels[i]),
                 "ALERTS{alertname=\"Down\",severity=\"critical\",target=\"t%d\"}", i);
        alerts[i] = (struct lbw_notify_alert){LBW_NOTIFY_FIRING, labels[i],
                                              "A{summary=\"handshake failed from 2 vantages\"}",
                                              T0, 0, (uint64_t)i};
    }
    struct lbw_notification n = notification(alerts, 5);
    n.group_key = "G{alertname=\"Down\"}";
    char out[161];
    sms(&n, out);
    /* 15 + 49 + 50 = 114; a third alert (+50) would leave no room for " (+2 more)". */
    assert_string_equal(out, "FIRING critical Down target=t0: handshake failed from 2 vantages; "
                             "Down target=t1: handshake failed from 2 vantages (+3 more)");
}

static void sms_first_alert_is_cut_between_characters(void **state)
{
    (void)state;
    char annotations[400] = "A{summary=\"";
    for (int i = 0; i < 80; i++)
        strcat(annotations, "\xe2\x82\xac");
    strcat(annotations, "\"}");
    struct lbw_notify_alert alerts[3];
    for (int i = 0; i < 3; i++)
        alerts[i] = (struct lbw_notify_alert){LBW_NOTIFY_FIRING, one_alert[0].labels,
                                              annotations, T0, 0, (uint64_t)i};
    const char *head = "FIRING critical CertExpiringSoon target=www: ";
    char out[161];
    for (size_t nalerts = 1; nalerts <= 3; nalerts += 2) {
        struct lbw_notification n = notification(alerts, nalerts);
        sms(&n, out);
        const char *tail = nalerts == 1 ? "..." : "... (+2 more)";
        size_t len = strlen(out), tlen = strlen(tail);
        assert_true(len > 150);
        assert_string_equal(out + len - tlen, tail);
        assert_memory_equal(out, head, strlen(head));
        size_t euros = len - tlen - strlen(head);
        assert_int_equal(euros % 3, 0);
        assert_true(len + 3 > 160); /* one more euro sign would not have fitted */
    }
}

static void sms_exactly_160_is_not_cut(void **state)
{
    (void)state;
    const char *head = "FIRING critical CertExpiringSoon target=www: ";
    char annotations[300] = "A{summary=\"";
    size_t fill = 160 - strlen(head);
    for (size_t i = 0; i < fill; i++)
        strcat(annotations, "x");
    strcat(annotations, "\"}");
    const struct lbw_notify_alert alerts[] = {
        {LBW_NOTIFY_FIRING, one_alert[0].labels, annotations, T0, 0, 1},
    };
    struct lbw_notification n = notification(alerts, 1);
    char out[161];
    sms(&n, out);
    assert_int_equal(strlen(out), 160);
    assert_not_contains(out, "...");
    strcpy(annotations + strlen(annotations) - 2, "y\"}");
    sms(&n, out);
    assert_int_equal(strlen(out), 160);
    assert_string_equal(out + 157, "...");
}

static void sms_is_one_line(void **state)
{
    (void)state;
    const struct lbw_notify_alert alerts[] = {
        {LBW_NOTIFY_RESOLVED, "ALERTS{alertname=\"X\",target=\"a\\nb\"}",
         "A{summary=\"one\\ntwo\r\tthree\"}", T0, 1, 1},
    };
    struct lbw_notification n = notification(alerts, 1);
    n.group_key = "G{target=\"a\\nb\"}";
    char out[161];
    sms(&n, out);
    assert_string_equal(out, "RESOLVED X target=a b: one two  three");
}

/* --- signature and keys ------------------------------------------------------------------- */

static void signature_matches_rfc4231(void **state)
{
    (void)state;
    char sig[7 + 65];
    const char *data = "what do ya want for nothing?";
    lbw_notify_signature(data, strlen(data), "Jefe", 4, sig);
    assert_string_equal(sig, "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b9"
                             "64ec3843");
    unsigned char key[20];
    memset(key, 0x0b, sizeof(key));
    lbw_notify_signature("Hi There", 8, key, sizeof(key), sig);
    assert_string_equal(sig, "sha256=b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c"
                             "2e32cff7");
}

static void idempotency_keys(void **state)
{
    (void)state;
    char longest[LBW_IDEM_KEY_MAX + 1];
    memset(longest, 'a', sizeof(longest));
    longest[LBW_IDEM_KEY_MAX - 1] = '\0';
    assert_true(lbw_idempotency_key_valid(longest));
    longest[LBW_IDEM_KEY_MAX - 1] = 'a';
    longest[LBW_IDEM_KEY_MAX] = '\0';
    assert_false(lbw_idempotency_key_valid(longest));
    assert_true(lbw_idempotency_key_valid("i-0123-ABCdef"));
    assert_false(lbw_idempotency_key_valid(""));
    assert_false(lbw_idempotency_key_valid(NULL));
    assert_false(lbw_idempotency_key_valid("a b"));
    assert_false(lbw_idempotency_key_valid("a\r\nb"));
    assert_false(lbw_idempotency_key_valid("a@b"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(webhook_json_exact),
        cmocka_unit_test(webhook_common_labels_and_times),
        cmocka_unit_test(webhook_resolved_without_group_or_annotations),
        cmocka_unit_test(webhook_invalid_utf8_is_replaced),
        cmocka_unit_test(webhook_rejects_bad_keys),
        cmocka_unit_test(webhook_is_deterministic),
        cmocka_unit_test(email_headers_exact),
        cmocka_unit_test(email_subject_counts_firing_and_lists_names),
        cmocka_unit_test(email_quoted_printable),
        cmocka_unit_test(email_header_injection_is_impossible),
        cmocka_unit_test(email_non_ascii_subject_is_encoded),
        cmocka_unit_test(email_long_to_list_is_folded),
        cmocka_unit_test(sms_single_alert),
        cmocka_unit_test(sms_several_alerts_name_their_differences),
        cmocka_unit_test(sms_counts_alerts_left_out),
        cmocka_unit_test(sms_first_alert_is_cut_between_characters),
        cmocka_unit_test(sms_exactly_160_is_not_cut),
        cmocka_unit_test(sms_is_one_line),
        cmocka_unit_test(signature_matches_rfc4231),
        cmocka_unit_test(idempotency_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
