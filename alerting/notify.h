/* notify.h - what a notification says, rendered for each kind of receiver.
 *
 * A struct lbw_notification is everything one delivery carries: the receiver, the group, the
 * alerts as they were when the notification was decided, and the idempotency key. The leader
 * builds it from a committed intent of the alert ledger, so whichever node delivers an intent
 * renders byte-identical payloads (apart from the e-mail Date header) with the same key.
 *
 *   webhook   Prometheus Alertmanager's webhook JSON, version "4", so existing receivers work
 *   email     an RFC 5322 / MIME text message: Date, Message-ID (<KEY@lbwatch>), From, To,
 *             Subject, MIME-Version, Content-Type text/plain; charset=utf-8, quoted-printable
 *   sms       one line of at most 160 bytes
 *
 * Every renderer makes its text valid UTF-8 (an invalid byte becomes U+FFFD). Header values
 * and the SMS line have control characters (CR and LF included) turned into spaces, so no
 * label, annotation, address or name can add a header or a line.
 */
#ifndef LBW_NOTIFY_H
#define LBW_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

#include "probes/sample.h"

#define LBW_IDEM_KEY_MAX 80

enum lbw_notify_status { LBW_NOTIFY_FIRING, LBW_NOTIFY_RESOLVED };

struct lbw_notify_alert {
    enum lbw_notify_status status;
    const char *labels;         /* canonical key ALERTS{alertname="...",...} */
    const char *annotations;    /* canonical key A{description="...",summary="..."} or NULL */
    int64_t starts_at_ms;       /* when it started firing */
    int64_t ends_at_ms;         /* when it resolved, 0 if firing */
    uint64_t fingerprint;
};

struct lbw_notification {
    const char *receiver;
    enum lbw_notify_status status;  /* firing if any alert fires */
    const char *group_key;      /* canonical key of the group labels, e.g. G{target="www"} */
    const struct lbw_notify_alert *alerts;
    size_t nalerts;
    const char *idempotency_key;    /* [A-Za-z0-9-], at most LBW_IDEM_KEY_MAX - 1 */
    const char *external_url;   /* the status page of the node that delivers it */
    int escalation;             /* sent because an alert stayed unacknowledged */
};

/* Alertmanager webhook v4 JSON (jansson), compact, keys in Alertmanager's order: receiver,
 * status, alerts [status, labels, annotations, startsAt, endsAt, generatorURL (external_url),
 * fingerprint (16 hex digits)], groupLabels (from group_key), commonLabels and
 * commonAnnotations (equal in every alert), externalURL, version "4", groupKey (group_key
 * as given), truncatedAlerts 0. Times are RFC 3339 UTC with milliseconds; a firing alert's
 * endsAt is Go's zero time "0001-01-01T00:00:00Z". escalation is not in the JSON (an
 * escalation goes to its own receiver). Returns malloc'd text, or NULL if a key does not
 * parse or memory ran out. */
char *lbw_notify_webhook_json(const struct lbw_notification *n);

/* The whole e-mail (headers and body, CRLF line ends) as libcurl's SMTP upload wants it.
 * now_ms dates it. from and to[] are written into From and To as given ("a@b" or
 * "Name <a@b>"). Subject: "[FIRING:<number firing>] <alert names> (<group labels>)", or
 * "[RESOLVED] ...", with " ESCALATED" after the bracket for an escalation; RFC 2047 encoded
 * when not ASCII. The quoted-printable body lists every alert's labels, annotations, times and
 * fingerprint, the status page (external_url), the idempotency key and the receiver.
 * Returns malloc'd text, or NULL if the idempotency key is not valid, a key does not parse
 * or memory ran out. */
char *lbw_notify_email(const struct lbw_notification *n, const char *from,
                       const char *const *to, size_t nto, int64_t now_ms);

/* A one-line summary of at most 160 bytes, e.g.
 * "FIRING critical CertExpiringSoon target=www: certificate expires in 2 days (+1 more)":
 * ["ESCALATED "] status, the first alert's severity, then the alerts separated by "; ", each
 * its alertname, the group labels (first alert only), its labels not common to all alerts,
 * and ": " its summary (else description) annotation. As many whole alerts as fit are
 * shown and " (+N more)" counts the rest; the first alert is always shown, cut between two
 * UTF-8 characters and ended with "..." when it does not fit. ASCII apart from label and
 * annotation text, so a gateway can send it as GSM-7. */
void lbw_notify_sms_text(const struct lbw_notification *n, char out[161]);

/* HMAC-SHA256 of body with secret, as "sha256=<hex>" (the X-Lbwatch-Signature value). */
void lbw_notify_signature(const void *body, size_t len, const void *secret, size_t secretlen,
                          char out[7 + 65]);

/* An idempotency key as notifications carry it: 1 to LBW_IDEM_KEY_MAX - 1 characters of
 * [A-Za-z0-9-], safe in a header and a Message-ID. */
int lbw_idempotency_key_valid(const char *key);

#endif
