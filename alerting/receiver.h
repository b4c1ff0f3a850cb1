/* receiver.h - receiver configuration and the delivery of one notification to a receiver.
 *
 * A struct lbw_receiver says where and how notifications go: a webhook (Alertmanager v4 JSON
 * over HTTP(S), signed), an e-mail (SMTP through libcurl) or an SMS gateway (HTTP). A struct
 * lbw_sender delivers notifications to receivers through the caller's lbw_curluv, on the
 * loop's thread. One send is one attempt: retries and their backoff belong to the alert
 * ledger, which calls send again with the same notification (so the same idempotency key).
 *
 * Configuration strings are read only during lbw_receiver_check and lbw_sender_send: they
 * may be freed as soon as those return. Secrets (webhook secret, SMTP password, SMS password
 * or token) are the bytes the caller read from their files at configuration time; this
 * module never logs and never puts a secret, a URL or a response body into an error text.
 *
 *   webhook  POST url, Content-Type: application/json, Idempotency-Key: KEY,
 *            X-Lbwatch-Signature: sha256=HEX (HMAC-SHA256 of the body) when a secret is set.
 *            Success is a 2xx status; redirects are not followed (a 3xx fails).
 *   email    smtp://host[:port] with STARTTLS required, opportunistic or off, or
 *            smtps://host[:port] (TLS from the first byte). MAIL FROM the address in from,
 *            RCPT TO every address in to (all must be accepted), AUTH with username and
 *            password when set. The message is lbw_notify_email's. Success is libcurl's OK.
 *   sms      one request per recipient, sent at once: the gateway gets the recipient, the
 *            sender and the lbw_notify_sms_text line in fields named as configured, plus
 *            static extra fields, as a form or JSON body (GET: form fields in the query),
 *            with no, basic or bearer auth. Each request carries Idempotency-Key: KEY-i
 *            (i = the recipient's position in to, from 1). Success is a 2xx status for every
 *            recipient; a retry goes to all of them again.
 *
 * Every HTTPS and SMTP TLS connection is TLS 1.2 or later with the peer's certificate and
 * host name verified, against ca_file alone when it is set, else the system CAs. Proxy
 * variables in the environment are ignored.
 */
#ifndef LBW_RECEIVER_H
#define LBW_RECEIVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "alerting/notify.h"
#include "probes/curluv.h"

#define LBW_RECEIVER_HTTP_TIMEOUT_MS 10000   /* webhook and SMS, when timeout_ms is 0 */
#define LBW_RECEIVER_SMTP_TIMEOUT_MS 30000   /* e-mail, when timeout_ms is 0 */
#define LBW_SEND_ERROR_MAX 256               /* longest error text, NUL included */

enum lbw_receiver_kind { LBW_RECEIVER_WEBHOOK, LBW_RECEIVER_EMAIL, LBW_RECEIVER_SMS };

struct lbw_webhook_config {
    const char *url;            /* http:// or https:// */
    const void *secret;         /* HMAC key, secret_len bytes (not empty); NULL: unsigned */
    size_t secret_len;
    const char *ca_file;        /* PEM CAs that replace the system's; NULL: system CAs */
    uint32_t timeout_ms;        /* whole request; 0: LBW_RECEIVER_HTTP_TIMEOUT_MS */
};

enum lbw_starttls {
    LBW_STARTTLS_REQUIRED = 0,  /* smtp://: fail unless STARTTLS succeeds (CURLUSESSL_ALL) */
    LBW_STARTTLS_OPPORTUNISTIC, /* smtp://: STARTTLS when offered, else plain (CURLUSESSL_TRY);
                                   a server offering it must still pass verification */
    LBW_STARTTLS_OFF,           /* smtp://: never (CURLUSESSL_NONE) */
};

struct lbw_email_config {
    const char *url;            /* smtp://host[:port][/ehlo-name] or smtps://host[:port] */
    enum lbw_starttls starttls; /* for smtp:// only; smtps:// is always TLS */
    const char *from;           /* "alerts@example.com" or "lbwatch <alerts@example.com>" */
    const char *const *to;      /* nto addresses, each in either form */
    size_t nto;
    const char *username;       /* AUTH when set (with password); NULL: no AUTH */
    const char *password;       /* only sent over TLS: needs smtps:// or STARTTLS required */
    const char *ca_file;
    uint32_t timeout_ms;        /* whole conversation; 0: LBW_RECEIVER_SMTP_TIMEOUT_MS */
};

enum lbw_sms_format { LBW_SMS_FORM = 0, LBW_SMS_JSON };
enum lbw_sms_auth { LBW_SMS_AUTH_NONE = 0, LBW_SMS_AUTH_BASIC, LBW_SMS_AUTH_BEARER };

struct lbw_sms_param {
    const char *name;
    const char *value;
};

struct lbw_sms_config {
    const char *url;            /* http:// or https:// */
    const char *method;         /* "POST" (NULL), "PUT", or "GET" (form fields in the query) */
    enum lbw_sms_format format; /* form: application/x-www-form-urlencoded; json: an object
                                   of strings */
    const char *to_param;       /* field names; NULL: "to", "from", "text" */
    const char *from_param;
    const char *text_param;
    const char *from;           /* sender id; NULL: no sender field */
    const char *const *to;      /* nto recipients, one request each */
    size_t nto;
    const struct lbw_sms_param *extra;  /* nextra static fields, after the others */
    size_t nextra;
    enum lbw_sms_auth auth;
    const char *username;       /* basic */
    const char *password;       /* basic */
    const char *token;          /* bearer */
    const char *ca_file;
    uint32_t timeout_ms;        /* each request; 0: LBW_RECEIVER_HTTP_TIMEOUT_MS */
};

struct lbw_receiver {
    const char *name;
    enum lbw_receiver_kind kind;    /* which of the three below is used */
    struct lbw_webhook_config webhook;
    struct lbw_email_config email;
    struct lbw_sms_config sms;
};

/* Checks r the way send will use it (URL scheme, addresses, fields, auth). For the
 * configuration loader. Returns 0, or -1 with the reason in err (never a secret). */
int lbw_receiver_check(const struct lbw_receiver *r, char *err, size_t errlen);

struct lbw_sender;

/* The outcome of one send: ok 1, or ok 0 and a reason of at most LBW_SEND_ERROR_MAX - 1
 * bytes ("" when ok), valid only during the call. */
typedef void (*lbw_send_cb)(void *arg, int ok, const char *error);

/* A sender on loop delivering through curl, which the caller owns and closes after the
 * sender. Returns 0, or -1 with a reason in err. */
int lbw_sender_new(struct lbw_sender **out, uv_loop_t *loop, struct lbw_curluv *curl,
                   char *err, size_t errlen);

/* Delivers n to r once. Returns 0, and then cb runs exactly once, on a later loop
 * iteration, never inside this call: a receiver that fails lbw_receiver_check or a payload
 * that cannot be rendered is reported there too. Returns -1 without calling cb only for a
 * NULL argument, a closed sender or no memory. cb may call any lbw_sender function. */
int lbw_sender_send(struct lbw_sender *s, const struct lbw_receiver *r,
                    const struct lbw_notification *n, lbw_send_cb cb, void *arg);

/* Sends whose callback has not run yet. */
size_t lbw_sender_pending(const struct lbw_sender *s);

/* Stops every send without calling its callback and frees it; the sender's memory goes
 * once the loop has run again. Close the sender before its lbw_curluv. */
void lbw_sender_close(struct lbw_sender *s);

#endif
