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
 *   sms       one line of at most 160 characters
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

/* Alertmanager webhook v4 JSON (jansson). Returns malloc'd text or NULL. */
char *lbw_notify_webhook_json(const struct lbw_notification *n);

/* The whole e-mail (headers and body, CRLF line ends) as libcurl's SMTP upload wants it.
 * now_ms dates it. Returns malloc'd text or NULL. */
char *lbw_notify_email(const struct lbw_notification *n, const char *from,
                       const char *const *to, size_t nto, int64_t now_ms);

/* A one-line summary cut to at most 160 characters (UTF-8 safe), e.g.
 * "FIRING critical CertExpiringSoon target=www: certificate expires in 2 days (+1 more)". */
void lbw_notify_sms_text(const struct lbw_notification *n, char out[161]);

/* HMAC-SHA256 of body with secret, as "sha256=<hex>" (the X-Lbwatch-Signature value). */
void lbw_notify_signature(const void *body, size_t len, const void *secret, size_t secretlen,
                          char out[7 + 65]);

#endif
