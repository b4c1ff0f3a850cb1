/* ledger.c - the replicated alert ledger. See ledger.h for the contract and the op encoding.
 *
 * Owns the ledger's entities (sorted arrays, binary search, insertion by memmove: every
 * order that anything observes is the order of a key, never of an address or a hash), the
 * op codec, apply, garbage collection, queries and the snapshot codec.
 *
 * An op is applied in phases so that a failed allocation leaves no half-applied state:
 * decode; collect garbage as of its time; check (STALE, INVALID); allocate everything the
 * change needs; change (nothing after this point can fail).
 *
 * Serialisation, version 1 (integers big-endian; str = u16 length + bytes, empty = none):
 *   8    magic "LBWLEDG\0"
 *   u32  version (1)
 *   u64  last index
 *   u32  nalerts, then per alert by ascending fingerprint (the FNV-1a of its labels):
 *          str labels, str annotations, u8 severity, u8 state, u64 seq,
 *          i64 active_since, i64 firing_since, i64 resolved_at, i64 changed_at,
 *          u64 value bits, u8 acked [str by, str comment, i64 at], u8 escalated
 *   u32  nintents, then per intent by ascending id:
 *          u64 id, str receiver, str group key, u8 kind, u64 expect_group, i64 created_at,
 *          u8 delivered, i64 delivered_at, u32 attempts, i64 last_attempt_at,
 *          str last_error, i64 next_attempt_at,
 *          u8 n, n x (str labels, str annotations, u64 seq, u8 status, i64 starts_at,
 *                     i64 ends_at) by ascending fingerprint
 *   u32  ngroups, then per group by ascending (receiver, key):
 *          str receiver, str key, u64 version, i64 first_at, i64 last_notified_at,
 *          u8 n, n x (u64 fingerprint, u64 seq) by ascending fingerprint
 *   u32  nsilences, then per silence by ascending id:
 *          u64 id, i64 starts_at, i64 ends_at, i64 created_at, str author, str comment,
 *          u8 n, n x (str name, str value, u8 negate)
 *   u32  nreceivers, then per receiver by ascending name:
 *          str name, u32 consecutive_failures, str last_error, i64 last_failure_at,
 *          i64 last_success_at
 *   nothing after.
 * Fingerprints and idempotency keys are not stored: restore derives them, as apply did.
 */
#include "alerting/ledger.h"
#include "probes/bytes.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

#define SNAP_MAGIC "LBWLEDG"        /* with its NUL: 8 bytes */
#define SNAP_VERSION 1u
#define OP_VERSION 1u
#define IDEM_TAG "lbwatch-idem-1"

/* The largest serialised entities (see the format above), and so the largest ledger. */
#define STR_MAX(n) (2 + (n) - 1)
#define ALERT_MAX_BYTES (2 * STR_MAX(LBW_KEY_MAX) + 1 + 1 + 8 + 4 * 8 + 8 + 1 + \
                         STR_MAX(LBW_LEDGER_NAME_MAX) + STR_MAX(LBW_LEDGER_TEXT_MAX) + 8 + 1)
#define INTENT_MAX_BYTES (8 + STR_MAX(LBW_LEDGER_NAME_MAX) + STR_MAX(LBW_KEY_MAX) + 1 + 8 + \
                          8 + 1 + 8 + 4 + 8 + STR_MAX(LBW_LEDGER_TEXT_MAX) + 8 + 1)
#define COPY_MAX_BYTES (2 * STR_MAX(LBW_KEY_MAX) + 8 + 1 + 8 + 8)
#define GROUP_MAX_BYTES (STR_MAX(LBW_LEDGER_NAME_MAX) + STR_MAX(LBW_KEY_MAX) + 8 + 8 + 8 + \
                         1 + LBW_INTENT_MAX_ALERTS * 16)
#define SILENCE_MAX_BYTES (8 + 3 * 8 + STR_MAX(LBW_LEDGER_NAME_MAX) + \
                           STR_MAX(LBW_LEDGER_TEXT_MAX) + 1 + LBW_SILENCE_MAX_MATCHERS * \
                           (STR_MAX(LBW_LEDGER_NAME_MAX) + STR_MAX(LBW_LEDGER_TEXT_MAX) + 1))
#define RECEIVER_MAX_BYTES (STR_MAX(LBW_LEDGER_NAME_MAX) + 4 + STR_MAX(LBW_LEDGER_TEXT_MAX) + 16)
_Static_assert(8 + 4 + 8 + 5 * 4 + (size_t)LBW_LEDGER_MAX_ALERTS * ALERT_MAX_BYTES +
                       (size_t)LBW_LEDGER_MAX_INTENTS * INTENT_MAX_BYTES +
                       (size_t)LBW_LEDGER_MAX_COPIES * COPY_MAX_BYTES +
                       (size_t)LBW_LEDGER_MAX_GROUPS * GROUP_MAX_BYTES +
                       (size_t)LBW_LEDGER_MAX_SILENCES * SILENCE_MAX_BYTES +
                       (size_t)LBW_LEDGER_MAX_RECEIVERS * RECEIVER_MAX_BYTES <=
                   LBW_LEDGER_MAX_BYTES,
               "the limits must keep a serialised ledger within LBW_LEDGER_MAX_BYTES");

struct lbw_ledger {
    uint64_t last_index;
    struct lbw_alert *alerts;
    size_t nalerts, alerts_cap;
    struct lbw_intent *intents;
    size_t nintents, intents_cap;
    size_t copies;              /* alert copies in all intents */
    struct lbw_group *groups;
    size_t ngroups, groups_cap;
    struct lbw_silence *silences;
    size_t nsilences, silences_cap;
    struct lbw_receiver_health *receivers;
    size_t nreceivers, receivers_cap;
    struct lbw_ledger_stats st; /* local */
};

enum { MALFORMED = -1, NOMEM = -2 };

/* Frees a string or block the ledger owns (entities expose them as const). */
static void release(const void *p)
{
    free((void *)p);
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* NULL for NULL or "". */
static char *dup_opt(const char *s, int *oom)
{
    if (!s || !*s)
        return NULL;
    char *d = dup_str(s);
    if (!d)
        *oom = 1;
    return d;
}

static int fail(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *why, size_t whylen, const char *fmt, ...)
{
    if (why && whylen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, whylen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Grows an array of n elements to hold one more. */
static int reserve(void **v, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 16;
    void *p = realloc(*v, c * size);
    if (!p)
        return -1;
    *v = p;
    *cap = c;
    return 0;
}

#define RESERVE(arr, n, cap) reserve((void **)&(arr), &(cap), (n), sizeof(*(arr)))

/* Opens a gap at pos in an array of n elements (room reserved). */
static void open_gap(void *v, size_t pos, size_t n, size_t size)
{
    memmove((char *)v + (pos + 1) * size, (char *)v + pos * size, (n - pos) * size);
}

static void close_gap(void *v, size_t pos, size_t n, size_t size)
{
    memmove((char *)v + pos * size, (char *)v + (pos + 1) * size, (n - pos - 1) * size);
}

/* ---- bytes ------------------------------------------------------------------------------- */

void lbw_bytes_free(struct lbw_bytes *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

static uint8_t *room(struct lbw_bytes *b, size_t n)
{
    if (b->failed)
        return NULL;
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap - b->len < n)
            cap *= 2;
        uint8_t *p = realloc(b->data, cap);
        if (!p) {
            b->failed = 1;
            return NULL;
        }
        b->data = p;
        b->cap = cap;
    }
    uint8_t *at = b->data + b->len;
    b->len += n;
    return at;
}

static void put_uint(struct lbw_bytes *b, uint64_t v, size_t n)
{
    uint8_t *p = room(b, n);
    if (p)
        lbw_put_be(p, v, n);
}

static void put_i64(struct lbw_bytes *b, int64_t v)
{
    put_uint(b, (uint64_t)v, 8);
}

static void put_double(struct lbw_bytes *b, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    put_uint(b, bits, 8);
}

/* u16 length + bytes; NULL is empty. Longer strings are refused later by the decoder; here
 * they only must not wrap the length. */
static void put_str(struct lbw_bytes *b, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n > UINT16_MAX) {
        b->failed = 1;
        return;
    }
    put_uint(b, n, 2);
    uint8_t *p = room(b, n);
    if (p && n)
        memcpy(p, s, n);
}

static int64_t get_i64(struct lbw_reader *r)
{
    return (int64_t)lbw_get_be(r, 8);
}

static double get_double(struct lbw_reader *r)
{
    uint64_t bits = lbw_get_be(r, 8);
    double v;
    memcpy(&v, &bits, sizeof(v));
    return v;
}

/* A string's bytes (not NUL-terminated) and length. */
struct view {
    const char *s;
    size_t len;
};

static struct view get_str(struct lbw_reader *r)
{
    size_t n = (size_t)lbw_get_be(r, 2);
    const uint8_t *p = lbw_take(r, n);
    return (struct view){p ? (const char *)p : "", p ? n : 0};
}

static size_t left(const struct lbw_reader *r)
{
    return (size_t)(r->end - r->p);
}

/* ---- what the ledger accepts ------------------------------------------------------------- */

static int time_ok(int64_t t)
{
    return t >= 1 && t <= LBW_LEDGER_MAX_TIME;
}

/* A time field that may be 0 (never). */
static int time_or_zero(int64_t t)
{
    return t == 0 || time_ok(t);
}

/* Length of the UTF-8 sequence at s[0..n), or 0 if it is invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, min = 0x10000;
    else
        return 0;
    if (n < len)
        return 0;
    unsigned cp = c & (0x3f >> (len - 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    return cp >= min && cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff) ? len : 0;
}

static int control(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* Text for people: valid UTF-8 without control characters, shorter than max. */
static int text_ok(struct view v, size_t max)
{
    const unsigned char *s = (const unsigned char *)v.s;
    if (v.len >= max)
        return 0;
    for (size_t i = 0; i < v.len;) {
        size_t n = control(s[i]) ? 0 : utf8_len(s + i, v.len - i);
        if (n == 0)
            return 0;
        i += n;
    }
    return 1;
}

/* A receiver name: [A-Za-z0-9_.-], 1 .. LBW_LEDGER_NAME_MAX - 1 bytes. */
static int receiver_ok(struct view v)
{
    if (v.len == 0 || v.len >= LBW_LEDGER_NAME_MAX)
        return 0;
    for (size_t i = 0; i < v.len; i++) {
        char c = v.s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

/* Who did something (a silence's author, an acknowledgement's by): non-empty text. */
static int who_ok(struct view v)
{
    return v.len > 0 && text_ok(v, LBW_LEDGER_NAME_MAX);
}

/* A canonical key with the given metric. */
static int key_ok(struct view v, const char *metric, const char *required_label)
{
    struct lbw_key_parsed k;
    return lbw_key_parse(v.s, v.len, &k) == 0 && strcmp(k.metric, metric) == 0 &&
           (!required_label || lbw_key_label(&k, required_label));
}

static int alert_labels_ok(struct view v)
{
    return key_ok(v, "ALERTS", "alertname");
}

static int annotations_ok(struct view v)
{
    return v.len == 0 || key_ok(v, "A", NULL);
}

static int group_key_ok(struct view v)
{
    return key_ok(v, "G", NULL);
}

static struct view view_of(const char *s)
{
    return (struct view){s ? s : "", s ? strlen(s) : 0};
}

/* A matcher matches the empty string (a missing label) when it is name="" or name!="x". */
static int matches_empty(const struct lbw_matcher *m)
{
    return m->negate ? m->value[0] != '\0' : m->value[0] == '\0';
}

static int matcher_ok(struct view name, struct view value, uint64_t negate)
{
    char buf[LBW_LEDGER_NAME_MAX];
    if (name.len == 0 || name.len >= sizeof(buf) || memchr(name.s, '\0', name.len) ||
        negate > 1 || !text_ok(value, LBW_LEDGER_TEXT_MAX))
        return 0;
    memcpy(buf, name.s, name.len);
    buf[name.len] = '\0';
    return lbw_label_name_valid(buf);
}

static int silence_selective(const struct lbw_matcher *m, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!matches_empty(&m[i]))
            return 1;
    return 0;
}

/* ---- names ------------------------------------------------------------------------------- */

const char *lbw_alert_state_name(enum lbw_alert_state s)
{
    static const char *const names[] = {"inactive", "pending", "firing", "resolved"};
    return (unsigned)s < 4 ? names[s] : "unknown";
}

const char *lbw_intent_kind_name(enum lbw_intent_kind k)
{
    static const char *const names[] = {"notify", "repeat", "escalate"};
    return (unsigned)k < 3 ? names[k] : "unknown";
}

const char *lbw_op_type_name(enum lbw_op_type t)
{
    static const char *const names[] = {"transition", "intent", "receipt", "silence",
                                        "expire_silence", "ack"};
    return t >= LBW_OP_TRANSITION && t <= LBW_OP_ACK ? names[t - 1] : "unknown";
}

const char *lbw_apply_result_name(enum lbw_apply_result r)
{
    static const char *const names[] = {"ok", "stale", "invalid", "nomem"};
    return (unsigned)r < 4 ? names[r] : "unknown";
}

int lbw_silence_active(const struct lbw_silence *s, int64_t now)
{
    return s->starts_at <= now && now < s->ends_at;
}

int lbw_receiver_name_valid(const char *name)
{
    return name && receiver_ok(view_of(name));
}

/* ---- op codec ---------------------------------------------------------------------------- */

/* Strings of a decoded op go into its text[]; the largest op (a silence) needs this much. */
_Static_assert(LBW_OP_TEXT_MAX >= LBW_LEDGER_NAME_MAX + LBW_LEDGER_TEXT_MAX +
                                      LBW_SILENCE_MAX_MATCHERS *
                                          (LBW_LEDGER_NAME_MAX + LBW_LEDGER_TEXT_MAX) &&
                   LBW_OP_TEXT_MAX >= 2 * LBW_KEY_MAX,
               "text[] holds every string of an op");

struct textbuf {
    char *p;
    size_t used;
};

static const char *copy_text(struct textbuf *t, struct view v)
{
    char *d = t->p + t->used;
    if (v.len + 1 > LBW_OP_TEXT_MAX - t->used)
        return NULL;
    memcpy(d, v.s, v.len);
    d[v.len] = '\0';
    t->used += v.len + 1;
    return d;
}

static int decode_transition(struct lbw_reader *r, struct lbw_op *op, struct textbuf *t,
                             char *why, size_t whylen)
{
    op->transition.expect_seq = lbw_get_be(r, 8);
    uint64_t to = lbw_get_be(r, 1), sev = lbw_get_be(r, 1);
    op->transition.value = get_double(r);
    struct view labels = get_str(r), ann = get_str(r);
    if (r->bad)
        return fail(why, whylen, "truncated transition");
    if (to > LBW_ALERT_RESOLVED || sev > LBW_SEV_CRITICAL)
        return fail(why, whylen, "bad state or severity");
    if (!alert_labels_ok(labels))
        return fail(why, whylen, "labels are not a canonical ALERTS{alertname=...} key");
    if (!annotations_ok(ann))
        return fail(why, whylen, "annotations are not a canonical A{...} key");
    op->transition.to = (enum lbw_alert_state)to;
    op->transition.severity = (enum lbw_severity)sev;
    op->transition.labels = copy_text(t, labels);
    op->transition.annotations = copy_text(t, ann);
    return 0;
}

static int decode_refs(struct lbw_reader *r, struct lbw_op *op, char *why, size_t whylen)
{
    size_t n = (size_t)lbw_get_be(r, 1);
    if (r->bad || n == 0 || n > LBW_INTENT_MAX_ALERTS)
        return fail(why, whylen, "intent names %zu alerts", n);
    for (size_t i = 0; i < n; i++) {
        struct lbw_alert_ref *a = &op->intent.alerts[i];
        a->fingerprint = lbw_get_be(r, 8);
        a->seq = lbw_get_be(r, 8);
        uint64_t status = lbw_get_be(r, 1);
        if (r->bad)
            return fail(why, whylen, "truncated intent");
        if (status > LBW_NOTIFY_RESOLVED || a->seq == 0)
            return fail(why, whylen, "bad alert status or seq");
        if (i > 0 && a[-1].fingerprint >= a->fingerprint)
            return fail(why, whylen, "intent alerts not in ascending fingerprint order");
        if (op->intent.kind == LBW_INTENT_ESCALATE && status != LBW_NOTIFY_FIRING)
            return fail(why, whylen, "an escalation names a resolved alert");
        a->status = (enum lbw_notify_status)status;
    }
    op->intent.nalerts = n;
    return 0;
}

static int decode_intent(struct lbw_reader *r, struct lbw_op *op, struct textbuf *t, char *why,
                         size_t whylen)
{
    struct view recv = get_str(r), key = get_str(r);
    uint64_t kind = lbw_get_be(r, 1);
    op->intent.expect_group = lbw_get_be(r, 8);
    if (r->bad)
        return fail(why, whylen, "truncated intent");
    if (!receiver_ok(recv))
        return fail(why, whylen, "bad receiver name");
    if (!group_key_ok(key))
        return fail(why, whylen, "group key is not a canonical G{...} key");
    if (kind > LBW_INTENT_ESCALATE)
        return fail(why, whylen, "bad intent kind %llu", (unsigned long long)kind);
    op->intent.kind = (enum lbw_intent_kind)kind;
    if (kind == LBW_INTENT_ESCALATE && op->intent.expect_group != 0)
        return fail(why, whylen, "an escalation expects no group version");
    op->intent.receiver = copy_text(t, recv);
    op->intent.group_key = copy_text(t, key);
    return decode_refs(r, op, why, whylen);
}

static int decode_receipt(struct lbw_reader *r, struct lbw_op *op, struct textbuf *t, char *why,
                          size_t whylen)
{
    op->receipt.intent = lbw_get_be(r, 8);
    op->receipt.attempt = (uint32_t)lbw_get_be(r, 4);
    uint64_t ok = lbw_get_be(r, 1);
    struct view err = get_str(r);
    if (r->bad)
        return fail(why, whylen, "truncated receipt");
    if (ok > 1 || (ok && err.len) || !text_ok(err, LBW_LEDGER_TEXT_MAX))
        return fail(why, whylen, "bad receipt result or error text");
    if (op->receipt.intent == 0 || op->receipt.attempt == 0)
        return fail(why, whylen, "receipt names intent 0 or attempt 0");
    op->receipt.ok = (int)ok;
    op->receipt.error = copy_text(t, err);
    return 0;
}

static int decode_matchers(struct lbw_reader *r, struct lbw_op *op, struct textbuf *t, char *why,
                           size_t whylen)
{
    size_t n = (size_t)lbw_get_be(r, 1);
    if (r->bad || n == 0 || n > LBW_SILENCE_MAX_MATCHERS)
        return fail(why, whylen, "silence has %zu matchers", n);
    for (size_t i = 0; i < n; i++) {
        struct view name = get_str(r), value = get_str(r);
        uint64_t negate = lbw_get_be(r, 1);
        if (r->bad)
            return fail(why, whylen, "truncated silence");
        if (!matcher_ok(name, value, negate))
            return fail(why, whylen, "bad matcher %zu", i + 1);
        op->silence.matchers[i] = (struct lbw_matcher){copy_text(t, name),
                                                       copy_text(t, value), (int)negate};
    }
    op->silence.nmatchers = n;
    if (!silence_selective(op->silence.matchers, n))
        return fail(why, whylen, "every matcher matches the empty string");
    return 0;
}

static int decode_silence(struct lbw_reader *r, struct lbw_op *op, struct textbuf *t, char *why,
                          size_t whylen)
{
    op->silence.starts_at = get_i64(r);
    op->silence.ends_at = get_i64(r);
    struct view author = get_str(r), comment = get_str(r);
    if (r->bad)
        return fail(why, whylen, "truncated silence");
    if (!time_ok(op->silence.starts_at) || !time_ok(op->silence.ends_at) ||
        op->silence.ends_at <= op->silence.starts_at)
        return fail(why, whylen, "bad silence window");
    if (!who_ok(author) || !text_ok(comment, LBW_LEDGER_TEXT_MAX))
        return fail(why, whylen, "bad author or comment");
    op->silence.author = copy_text(t, author);
    op->silence.comment = copy_text(t, comment);
    return decode_matchers(r, op, t, why, whylen);
}

static int decode_ack(struct lbw_reader *r, struct lbw_op *op, struct textbuf *t, char *why,
                      size_t whylen)
{
    op->ack.fingerprint = lbw_get_be(r, 8);
    op->ack.expect_seq = lbw_get_be(r, 8);
    struct view by = get_str(r), comment = get_str(r);
    if (r->bad)
        return fail(why, whylen, "truncated ack");
    if (op->ack.expect_seq == 0)
        return fail(why, whylen, "ack expects seq 0");
    if (!who_ok(by) || !text_ok(comment, LBW_LEDGER_TEXT_MAX))
        return fail(why, whylen, "bad ack author or comment");
    op->ack.by = copy_text(t, by);
    op->ack.comment = copy_text(t, comment);
    return 0;
}

static int decode_body(struct lbw_reader *r, struct lbw_op *op, struct textbuf *t, char *why,
                       size_t whylen)
{
    switch (op->type) {
    case LBW_OP_TRANSITION:
        return decode_transition(r, op, t, why, whylen);
    case LBW_OP_INTENT:
        return decode_intent(r, op, t, why, whylen);
    case LBW_OP_RECEIPT:
        return decode_receipt(r, op, t, why, whylen);
    case LBW_OP_SILENCE:
        return decode_silence(r, op, t, why, whylen);
    case LBW_OP_EXPIRE_SILENCE:
        op->expire.silence = lbw_get_be(r, 8);
        return r->bad || op->expire.silence == 0 ? fail(why, whylen, "bad expire") : 0;
    case LBW_OP_ACK:
        return decode_ack(r, op, t, why, whylen);
    }
    return fail(why, whylen, "unknown op type %d", (int)op->type);
}

int lbw_op_decode(const uint8_t *p, size_t len, struct lbw_op *op, char *why, size_t whylen)
{
    struct lbw_reader r = {p, p ? p + len : p, 0};
    struct textbuf t = {op->text, 0};
    memset(op, 0, offsetof(struct lbw_op, text));
    uint64_t version = lbw_get_be(&r, 1);
    op->type = (enum lbw_op_type)lbw_get_be(&r, 1);
    op->time_ms = get_i64(&r);
    if (r.bad)
        return fail(why, whylen, "truncated op");
    if (version != OP_VERSION)
        return fail(why, whylen, "op version %llu", (unsigned long long)version);
    if (!time_ok(op->time_ms))
        return fail(why, whylen, "op time %lld out of range", (long long)op->time_ms);
    if (decode_body(&r, op, &t, why, whylen) < 0)
        return -1;
    if (left(&r) != 0)
        return fail(why, whylen, "%zu bytes after the op", left(&r));
    return 0;
}

static void encode_body(const struct lbw_op *op, struct lbw_bytes *b)
{
    switch (op->type) {
    case LBW_OP_TRANSITION:
        put_uint(b, op->transition.expect_seq, 8);
        put_uint(b, (uint64_t)op->transition.to, 1);
        put_uint(b, (uint64_t)op->transition.severity, 1);
        put_double(b, op->transition.value);
        put_str(b, op->transition.labels);
        put_str(b, op->transition.annotations);
        return;
    case LBW_OP_INTENT:
        put_str(b, op->intent.receiver);
        put_str(b, op->intent.group_key);
        put_uint(b, (uint64_t)op->intent.kind, 1);
        put_uint(b, op->intent.expect_group, 8);
        put_uint(b, op->intent.nalerts, 1);
        for (size_t i = 0; i < op->intent.nalerts && i < LBW_INTENT_MAX_ALERTS; i++) {
            put_uint(b, op->intent.alerts[i].fingerprint, 8);
            put_uint(b, op->intent.alerts[i].seq, 8);
            put_uint(b, (uint64_t)op->intent.alerts[i].status, 1);
        }
        return;
    case LBW_OP_RECEIPT:
        put_uint(b, op->receipt.intent, 8);
        put_uint(b, op->receipt.attempt, 4);
        put_uint(b, (uint64_t)(op->receipt.ok != 0), 1);
        put_str(b, op->receipt.error);
        return;
    case LBW_OP_SILENCE:
        put_i64(b, op->silence.starts_at);
        put_i64(b, op->silence.ends_at);
        put_str(b, op->silence.author);
        put_str(b, op->silence.comment);
        put_uint(b, op->silence.nmatchers, 1);
        for (size_t i = 0; i < op->silence.nmatchers && i < LBW_SILENCE_MAX_MATCHERS; i++) {
            put_str(b, op->silence.matchers[i].name);
            put_str(b, op->silence.matchers[i].value);
            put_uint(b, (uint64_t)(op->silence.matchers[i].negate != 0), 1);
        }
        return;
    case LBW_OP_EXPIRE_SILENCE:
        put_uint(b, op->expire.silence, 8);
        return;
    case LBW_OP_ACK:
        put_uint(b, op->ack.fingerprint, 8);
        put_uint(b, op->ack.expect_seq, 8);
        put_str(b, op->ack.by);
        put_str(b, op->ack.comment);
        return;
    }
}

long lbw_op_encode(const struct lbw_op *op, uint8_t *out, size_t cap)
{
    struct lbw_bytes b = {0};
    struct lbw_op *check = malloc(sizeof(*check));
    long n = -1;
    put_uint(&b, OP_VERSION, 1);
    put_uint(&b, (uint64_t)op->type, 1);
    put_i64(&b, op->time_ms);
    encode_body(op, &b);
    if (check && !b.failed && b.len <= cap && b.len <= LBW_OP_MAX_BYTES &&
        lbw_op_decode(b.data, b.len, check, NULL, 0) == 0) {
        memcpy(out, b.data, b.len);
        n = (long)b.len;
    }
    free(check);
    lbw_bytes_free(&b);
    return n;
}

void lbw_op_text_clean(const char *s, char *out, size_t size)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s), o = 0;
    if (size == 0)
        return;
    for (size_t i = 0; i < n;) {
        size_t len = control(u[i]) ? 0 : utf8_len(u + i, n - i);
        if (o + (len ? len : 1) >= size)
            break;
        if (len == 0) {
            out[o++] = '?';
            i++;
        } else {
            memcpy(out + o, s + i, len);
            o += len;
            i += len;
        }
    }
    out[o] = '\0';
}

/* ---- entities ---------------------------------------------------------------------------- */

static void clear_ack(struct lbw_alert *a)
{
    release(a->ack.by);
    release(a->ack.comment);
    memset(&a->ack, 0, sizeof(a->ack));
}

static void alert_free(struct lbw_alert *a)
{
    release(a->labels);
    release(a->annotations);
    clear_ack(a);
}

/* An intent's copies, their seqs and its strings are one block, starting at alerts. */
static void intent_free(struct lbw_intent *in)
{
    release(in->alerts);
    release(in->last_error);
}

static void group_free(struct lbw_group *g)
{
    release(g->receiver);
    release(g->key);
    release(g->members);
}

/* A silence's strings are one block, starting at author. */
static void silence_free(struct lbw_silence *s)
{
    release(s->author);
}

static void receiver_free(struct lbw_receiver_health *h)
{
    release(h->name);
    release(h->last_error);
}

static void ledger_clear(struct lbw_ledger *l)
{
    for (size_t i = 0; i < l->nalerts; i++)
        alert_free(&l->alerts[i]);
    for (size_t i = 0; i < l->nintents; i++)
        intent_free(&l->intents[i]);
    for (size_t i = 0; i < l->ngroups; i++)
        group_free(&l->groups[i]);
    for (size_t i = 0; i < l->nsilences; i++)
        silence_free(&l->silences[i]);
    for (size_t i = 0; i < l->nreceivers; i++)
        receiver_free(&l->receivers[i]);
    free(l->alerts);
    free(l->intents);
    free(l->groups);
    free(l->silences);
    free(l->receivers);
}

struct lbw_ledger *lbw_ledger_new(void)
{
    return calloc(1, sizeof(struct lbw_ledger));
}

void lbw_ledger_free(struct lbw_ledger *l)
{
    if (!l)
        return;
    ledger_clear(l);
    free(l);
}

/* ---- lookups (binary search over the sorted arrays) -------------------------------------- */

/* The index of the element whose u64 at offset off is key, in n elements of size bytes sorted
 * by it; or -1 with *pos (if not NULL) where it would go. */
static long find_u64(const void *base, size_t n, size_t size, size_t off, uint64_t key,
                     size_t *pos)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t v;
        memcpy(&v, (const char *)base + mid * size + off, sizeof(v));
        if (v == key)
            return (long)mid;
        if (v < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (pos)
        *pos = lo;
    return -1;
}

static long find_alert(const struct lbw_ledger *l, uint64_t fp, size_t *pos)
{
    return find_u64(l->alerts, l->nalerts, sizeof(*l->alerts),
                    offsetof(struct lbw_alert, fingerprint), fp, pos);
}

static long find_intent(const struct lbw_ledger *l, uint64_t id)
{
    return find_u64(l->intents, l->nintents, sizeof(*l->intents),
                    offsetof(struct lbw_intent, id), id, NULL);
}

static long find_silence(const struct lbw_ledger *l, uint64_t id)
{
    return find_u64(l->silences, l->nsilences, sizeof(*l->silences),
                    offsetof(struct lbw_silence, id), id, NULL);
}

static int group_cmp(const char *ra, const char *ka, const char *rb, const char *kb)
{
    int c = strcmp(ra, rb);
    return c ? c : strcmp(ka, kb);
}

static long find_group(const struct lbw_ledger *l, const char *receiver, const char *key,
                       size_t *pos)
{
    size_t lo = 0, hi = l->ngroups;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = group_cmp(l->groups[mid].receiver, l->groups[mid].key, receiver, key);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *pos = lo;
    return -1;
}

static long find_receiver(const struct lbw_ledger *l, const char *name, size_t *pos)
{
    size_t lo = 0, hi = l->nreceivers;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(l->receivers[mid].name, name);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *pos = lo;
    return -1;
}

/* ---- garbage collection ------------------------------------------------------------------ */

static int alert_expired(const struct lbw_alert *a, int64_t now)
{
    return a->state == LBW_ALERT_RESOLVED && a->resolved_at + LBW_LEDGER_RESOLVED_KEEP_MS <= now;
}

static size_t collect_alerts(struct lbw_ledger *l, int64_t now)
{
    size_t kept = 0, n = l->nalerts;
    for (size_t i = 0; i < n; i++) {
        if (alert_expired(&l->alerts[i], now))
            alert_free(&l->alerts[i]);
        else
            l->alerts[kept++] = l->alerts[i];
    }
    l->nalerts = kept;
    return n - kept;
}

static void remove_intent(struct lbw_ledger *l, size_t i)
{
    l->copies -= l->intents[i].nalerts;
    intent_free(&l->intents[i]);
    close_gap(l->intents, i, l->nintents, sizeof(*l->intents));
    l->nintents--;
}

static void collect_intents(struct lbw_ledger *l, int64_t now, struct lbw_ledger_change *chg)
{
    size_t kept = 0;
    for (size_t i = 0; i < l->nintents; i++) {
        struct lbw_intent *in = &l->intents[i];
        int done = in->delivered && in->delivered_at + LBW_LEDGER_KEEP_MS <= now;
        int abandoned = !in->delivered && in->created_at + LBW_LEDGER_KEEP_MS <= now;
        if (done || abandoned) {
            chg->gc.intents += done;
            chg->gc.abandoned += abandoned;
            l->copies -= in->nalerts;
            intent_free(in);
        } else {
            l->intents[kept++] = *in;
        }
    }
    l->nintents = kept;
}

static size_t collect_silences(struct lbw_ledger *l, int64_t now)
{
    size_t kept = 0, n = l->nsilences;
    for (size_t i = 0; i < n; i++) {
        if (l->silences[i].ends_at + LBW_LEDGER_KEEP_MS <= now)
            silence_free(&l->silences[i]);
        else
            l->silences[kept++] = l->silences[i];
    }
    l->nsilences = kept;
    return n - kept;
}

/* Whether an alert a group notified is still firing in the same episode. */
static int group_live(const struct lbw_ledger *l, const struct lbw_group *g)
{
    size_t pos;
    for (size_t i = 0; i < g->nmembers; i++) {
        long a = find_alert(l, g->members[i].fingerprint, &pos);
        if (a >= 0 && l->alerts[a].state == LBW_ALERT_FIRING &&
            l->alerts[a].seq == g->members[i].seq)
            return 1;
    }
    return 0;
}

static size_t collect_groups(struct lbw_ledger *l, int64_t now)
{
    size_t kept = 0, n = l->ngroups;
    for (size_t i = 0; i < n; i++) {
        struct lbw_group *g = &l->groups[i];
        if (g->last_notified_at + LBW_LEDGER_KEEP_MS <= now && !group_live(l, g))
            group_free(g);
        else
            l->groups[kept++] = *g;
    }
    l->ngroups = kept;
    return n - kept;
}

/* Receiver health is kept while an intent or a group names the receiver. */
static size_t collect_receivers(struct lbw_ledger *l)
{
    unsigned char used[LBW_LEDGER_MAX_RECEIVERS] = {0};
    size_t pos, kept = 0, n = l->nreceivers;
    long r;
    for (size_t i = 0; i < l->nintents; i++)
        if ((r = find_receiver(l, l->intents[i].receiver, &pos)) >= 0)
            used[r] = 1;
    for (size_t i = 0; i < l->ngroups; i++)
        if ((r = find_receiver(l, l->groups[i].receiver, &pos)) >= 0)
            used[r] = 1;
    for (size_t i = 0; i < n; i++) {
        if (used[i])
            l->receivers[kept++] = l->receivers[i];
        else
            receiver_free(&l->receivers[i]);
    }
    l->nreceivers = kept;
    return n - kept;
}

static void collect(struct lbw_ledger *l, int64_t now, struct lbw_ledger_change *chg)
{
    chg->gc.alerts = collect_alerts(l, now);
    collect_intents(l, now, chg);
    chg->gc.silences = collect_silences(l, now);
    chg->gc.groups = collect_groups(l, now);
    chg->gc.receivers = collect_receivers(l);
}

/* ---- apply: transitions ------------------------------------------------------------------ */

static int legal(enum lbw_alert_state from, enum lbw_alert_state to)
{
    switch (from) {
    case LBW_ALERT_INACTIVE:
    case LBW_ALERT_RESOLVED:
        return to == LBW_ALERT_PENDING || to == LBW_ALERT_FIRING;
    case LBW_ALERT_PENDING:
        return to == LBW_ALERT_FIRING || to == LBW_ALERT_INACTIVE;
    case LBW_ALERT_FIRING:
        return to == LBW_ALERT_RESOLVED;
    }
    return 0;
}

/* The resolved alert to make room for a new one: resolved longest ago (then by fingerprint),
 * or -1. */
static long oldest_resolved(const struct lbw_ledger *l)
{
    long best = -1;
    for (size_t i = 0; i < l->nalerts; i++)
        if (l->alerts[i].state == LBW_ALERT_RESOLVED &&
            (best < 0 || l->alerts[i].resolved_at < l->alerts[best].resolved_at))
            best = (long)i;
    return best;
}

static void remove_alert(struct lbw_ledger *l, size_t i)
{
    alert_free(&l->alerts[i]);
    close_gap(l->alerts, i, l->nalerts, sizeof(*l->alerts));
    l->nalerts--;
}

/* Sets what a transition to `to` at op time sets. */
static void transition_alert(struct lbw_alert *a, uint64_t index, const struct lbw_op *op,
                             char *annotations)
{
    int64_t t = op->time_ms;
    enum lbw_alert_state from = a->state, to = op->transition.to;
    if (from == LBW_ALERT_INACTIVE || from == LBW_ALERT_RESOLVED) {
        a->active_since = t;
        a->firing_since = 0;
        a->resolved_at = 0;
        a->escalated = 0;
        clear_ack(a);
    }
    if (to == LBW_ALERT_FIRING)
        a->firing_since = t;
    if (to == LBW_ALERT_RESOLVED)
        a->resolved_at = t;
    a->state = to;
    a->seq = index;
    a->changed_at = t;
    a->value = op->transition.value;
    a->severity = op->transition.severity;
    release(a->annotations);
    a->annotations = annotations;
}

static enum lbw_apply_result apply_transition(struct lbw_ledger *l, uint64_t index,
                                              const struct lbw_op *op,
                                              struct lbw_ledger_change *chg)
{
    const char *labels = op->transition.labels;
    uint64_t fp = lbw_fingerprint(labels, strlen(labels));
    size_t pos = 0;
    long i = find_alert(l, fp, &pos), victim = -1;
    struct lbw_alert *a = i >= 0 ? &l->alerts[i] : NULL;
    enum lbw_alert_state to = op->transition.to;

    chg->fingerprint = fp;
    chg->from = a ? a->state : LBW_ALERT_INACTIVE;
    chg->to = to;
    if (a && strcmp(a->labels, labels) != 0) {
        fail(chg->detail, sizeof(chg->detail), "fingerprint %016llx names other labels",
             (unsigned long long)fp);
        return LBW_APPLY_INVALID;
    }
    if ((a ? a->seq : 0) != op->transition.expect_seq) {
        fail(chg->detail, sizeof(chg->detail), "alert seq is %llu, op expects %llu",
             (unsigned long long)(a ? a->seq : 0),
             (unsigned long long)op->transition.expect_seq);
        return LBW_APPLY_STALE;
    }
    if (!legal(chg->from, to)) {
        fail(chg->detail, sizeof(chg->detail), "illegal transition %s -> %s",
             lbw_alert_state_name(chg->from), lbw_alert_state_name(to));
        return LBW_APPLY_INVALID;
    }
    if (!a && l->nalerts == LBW_LEDGER_MAX_ALERTS && (victim = oldest_resolved(l)) < 0) {
        fail(chg->detail, sizeof(chg->detail), "alert table full");
        return LBW_APPLY_INVALID;
    }
    if (to == LBW_ALERT_INACTIVE) {
        remove_alert(l, (size_t)i);
        return LBW_APPLY_OK;
    }

    int oom = 0;
    char *ann = dup_opt(op->transition.annotations, &oom);
    char *lab = a ? NULL : dup_str(labels);
    if (oom || (!a && (!lab || RESERVE(l->alerts, l->nalerts, l->alerts_cap) < 0))) {
        free(ann);
        free(lab);
        return LBW_APPLY_NOMEM;
    }
    if (!a) {
        if (victim >= 0) {
            remove_alert(l, (size_t)victim);
            chg->gc.evicted_alerts++;
            find_alert(l, fp, &pos);
        }
        open_gap(l->alerts, pos, l->nalerts, sizeof(*l->alerts));
        l->nalerts++;
        a = &l->alerts[pos];
        memset(a, 0, sizeof(*a));
        a->fingerprint = fp;
        a->labels = lab;
    }
    transition_alert(a, index, op, ann);
    return LBW_APPLY_OK;
}

/* ---- apply: intents ---------------------------------------------------------------------- */

/* SHA-256 hex of the intent's identity (ledger.h). */
static int idem_key(const char *receiver, const char *key, enum lbw_intent_kind kind,
                    uint64_t expect_group, const struct lbw_notify_alert *alerts,
                    const uint64_t *seqs, size_t n, char out[LBW_IDEM_KEY_MAX])
{
    static const char hex[] = "0123456789abcdef";
    struct lbw_bytes b = {0};
    unsigned char md[32];
    unsigned mdlen = 0;
    put_str(&b, IDEM_TAG);
    put_str(&b, receiver);
    put_str(&b, key);
    put_uint(&b, (uint64_t)kind, 1);
    put_uint(&b, expect_group, 8);
    put_uint(&b, n, 1);
    for (size_t i = 0; i < n; i++) {
        put_uint(&b, alerts[i].fingerprint, 8);
        put_uint(&b, seqs[i], 8);
        put_uint(&b, (uint64_t)alerts[i].status, 1);
    }
    int ok = !b.failed && EVP_Digest(b.data, b.len, md, &mdlen, EVP_sha256(), NULL) == 1;
    lbw_bytes_free(&b);
    if (!ok)
        return -1;
    for (unsigned i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
    return 0;
}
_Static_assert(LBW_IDEM_KEY_MAX > 64, "an idempotency key is 64 hex digits");

/* The copy of one alert an intent keeps (its strings need not be NUL-terminated). */
struct copy_src {
    struct view labels, annotations;    /* annotations.len == 0: none */
    uint64_t fingerprint, seq;
    enum lbw_notify_status status;
    int64_t starts_at, ends_at;
};

static char *put_text(char **t, struct view v)
{
    char *s = *t;
    memcpy(s, v.s, v.len);
    s[v.len] = '\0';
    *t += v.len + 1;
    return s;
}

/* Builds an intent's block (copies, seqs, receiver, key) into in. Returns 0 or NOMEM. */
static int intent_block(struct lbw_intent *in, struct view receiver, struct view key,
                        const struct copy_src *src, size_t n)
{
    size_t text = receiver.len + 1 + key.len + 1;
    for (size_t i = 0; i < n; i++)
        text += src[i].labels.len + 1 + src[i].annotations.len + 1;
    size_t head = n * (sizeof(struct lbw_notify_alert) + sizeof(uint64_t));
    char *block = malloc(head + text);
    if (!block)
        return NOMEM;
    struct lbw_notify_alert *al = (struct lbw_notify_alert *)block;
    uint64_t *seqs = (uint64_t *)(block + n * sizeof(*al));
    char *t = block + head;
    for (size_t i = 0; i < n; i++) {
        const struct copy_src *c = &src[i];
        al[i] = (struct lbw_notify_alert){c->status, NULL, NULL, c->starts_at, c->ends_at,
                                          c->fingerprint};
        seqs[i] = c->seq;
        al[i].labels = put_text(&t, c->labels);
        al[i].annotations = put_text(&t, c->annotations);
        if (c->annotations.len == 0)
            al[i].annotations = NULL;
    }
    in->receiver = put_text(&t, receiver);
    in->group_key = put_text(&t, key);
    in->alerts = al;
    in->seqs = seqs;
    in->nalerts = n;
    return 0;
}

/* Checks an intent's alerts against the ledger and takes their copies into src. */
static enum lbw_apply_result intent_alerts(const struct lbw_ledger *l, const struct lbw_op *op,
                                           struct copy_src *src, struct lbw_ledger_change *chg)
{
    size_t pos;
    for (size_t i = 0; i < op->intent.nalerts; i++) {
        const struct lbw_alert_ref *ref = &op->intent.alerts[i];
        long ai = find_alert(l, ref->fingerprint, &pos);
        const struct lbw_alert *a = ai >= 0 ? &l->alerts[ai] : NULL;
        enum lbw_alert_state want =
            ref->status == LBW_NOTIFY_FIRING ? LBW_ALERT_FIRING : LBW_ALERT_RESOLVED;
        if (!a || a->seq != ref->seq || a->state != want) {
            fail(chg->detail, sizeof(chg->detail), "alert %016llx is not %s at seq %llu",
                 (unsigned long long)ref->fingerprint, lbw_alert_state_name(want),
                 (unsigned long long)ref->seq);
            return LBW_APPLY_STALE;
        }
        if (op->intent.kind == LBW_INTENT_ESCALATE && a->escalated) {
            fail(chg->detail, sizeof(chg->detail), "alert %016llx already escalated",
                 (unsigned long long)ref->fingerprint);
            return LBW_APPLY_STALE;
        }
        src[i] = (struct copy_src){view_of(a->labels), view_of(a->annotations),
                                   a->fingerprint, a->seq, ref->status, a->firing_since,
                                   a->resolved_at};
    }
    return LBW_APPLY_OK;
}

static size_t undelivered_of(const struct lbw_ledger *l, const char *receiver, long *oldest)
{
    size_t n = 0;
    *oldest = -1;
    for (size_t i = 0; i < l->nintents; i++)
        if (!l->intents[i].delivered && strcmp(l->intents[i].receiver, receiver) == 0 &&
            n++ == 0)
            *oldest = (long)i;
    return n;
}

/* Evicts intents until one more with n copies fits (ledger.h: bounds). */
static void make_room(struct lbw_ledger *l, const char *receiver, size_t n,
                      struct lbw_ledger_change *chg)
{
    long oldest;
    if (undelivered_of(l, receiver, &oldest) >= LBW_LEDGER_MAX_PENDING) {
        remove_intent(l, (size_t)oldest);
        chg->gc.evicted_intents++;
    }
    while (l->nintents >= LBW_LEDGER_MAX_INTENTS || l->copies + n > LBW_LEDGER_MAX_COPIES) {
        size_t victim = 0;
        for (size_t i = 0; i < l->nintents; i++)
            if (l->intents[i].delivered) {
                victim = i;
                break;
            }
        remove_intent(l, victim);
        chg->gc.evicted_intents++;
    }
}

/* What an intent op needs allocated before anything changes. */
struct intent_prep {
    struct lbw_intent in;
    long group;                 /* existing group, or -1 */
    size_t group_pos;
    struct lbw_group_member *members;
    size_t nmembers;
    char *group_receiver, *group_key;
    long receiver;              /* existing receiver health, or -1 */
    size_t receiver_pos;
    char *receiver_name;
};

static void prep_free(struct intent_prep *p)
{
    release(p->in.alerts);
    free(p->members);
    free(p->group_receiver);
    free(p->group_key);
    free(p->receiver_name);
}

static int prep_alloc(struct lbw_ledger *l, const struct lbw_op *op, const struct copy_src *src,
                      struct intent_prep *p)
{
    size_t n = op->intent.nalerts;
    int grouped = op->intent.kind != LBW_INTENT_ESCALATE;
    if (intent_block(&p->in, view_of(op->intent.receiver), view_of(op->intent.group_key), src,
                     n) < 0 ||
        RESERVE(l->intents, l->nintents, l->intents_cap) < 0)
        return NOMEM;
    if (idem_key(op->intent.receiver, op->intent.group_key, op->intent.kind,
                 op->intent.expect_group, p->in.alerts, p->in.seqs, n,
                 p->in.idempotency_key) < 0)
        return NOMEM;
    if (grouped && !(p->members = malloc(n * sizeof(*p->members))))
        return NOMEM;
    for (size_t i = 0; grouped && i < n; i++)
        if (src[i].status == LBW_NOTIFY_FIRING)
            p->members[p->nmembers++] = (struct lbw_group_member){src[i].fingerprint, src[i].seq};
    if (grouped && p->group < 0 &&
        (!(p->group_receiver = dup_str(op->intent.receiver)) ||
         !(p->group_key = dup_str(op->intent.group_key)) ||
         RESERVE(l->groups, l->ngroups, l->groups_cap) < 0))
        return NOMEM;
    if (p->receiver < 0 && (!(p->receiver_name = dup_str(op->intent.receiver)) ||
                            RESERVE(l->receivers, l->nreceivers, l->receivers_cap) < 0))
        return NOMEM;
    return 0;
}

/* Records the notification in its group (created if new). */
static void notify_group(struct lbw_ledger *l, uint64_t index, int64_t t, struct intent_prep *p)
{
    struct lbw_group *g;
    if (p->group < 0) {
        open_gap(l->groups, p->group_pos, l->ngroups, sizeof(*l->groups));
        l->ngroups++;
        g = &l->groups[p->group_pos];
        *g = (struct lbw_group){.receiver = p->group_receiver, .key = p->group_key,
                                .first_at = t};
        p->group_receiver = p->group_key = NULL;
    } else {
        g = &l->groups[p->group];
        release(g->members);
    }
    g->version = index;
    g->last_notified_at = t;
    g->members = p->members;
    g->nmembers = p->nmembers;
    p->members = NULL;
}

static void add_receiver(struct lbw_ledger *l, struct intent_prep *p)
{
    if (p->receiver >= 0)
        return;
    open_gap(l->receivers, p->receiver_pos, l->nreceivers, sizeof(*l->receivers));
    l->nreceivers++;
    l->receivers[p->receiver_pos] = (struct lbw_receiver_health){.name = p->receiver_name};
    p->receiver_name = NULL;
}

static void mark_escalated(struct lbw_ledger *l, const struct lbw_op *op)
{
    size_t pos;
    for (size_t i = 0; i < op->intent.nalerts; i++)
        l->alerts[find_alert(l, op->intent.alerts[i].fingerprint, &pos)].escalated = 1;
}

/* The checks of an intent op that do not depend on its alerts. */
static enum lbw_apply_result intent_checks(const struct lbw_ledger *l, const struct lbw_op *op,
                                           struct intent_prep *p,
                                           struct lbw_ledger_change *chg)
{
    uint64_t version = 0;
    p->group = find_group(l, op->intent.receiver, op->intent.group_key, &p->group_pos);
    p->receiver = find_receiver(l, op->intent.receiver, &p->receiver_pos);
    if (op->intent.kind != LBW_INTENT_ESCALATE) {
        version = p->group >= 0 ? l->groups[p->group].version : 0;
        if (version != op->intent.expect_group) {
            fail(chg->detail, sizeof(chg->detail), "group version is %llu, op expects %llu",
                 (unsigned long long)version, (unsigned long long)op->intent.expect_group);
            return LBW_APPLY_STALE;
        }
        if (p->group < 0 && l->ngroups == LBW_LEDGER_MAX_GROUPS) {
            fail(chg->detail, sizeof(chg->detail), "group table full");
            return LBW_APPLY_INVALID;
        }
    }
    if (p->receiver < 0 && l->nreceivers == LBW_LEDGER_MAX_RECEIVERS) {
        fail(chg->detail, sizeof(chg->detail), "receiver table full");
        return LBW_APPLY_INVALID;
    }
    return LBW_APPLY_OK;
}

static enum lbw_apply_result apply_intent(struct lbw_ledger *l, uint64_t index,
                                          const struct lbw_op *op,
                                          struct lbw_ledger_change *chg)
{
    struct copy_src src[LBW_INTENT_MAX_ALERTS];
    struct intent_prep p = {0};
    enum lbw_apply_result rc = intent_checks(l, op, &p, chg);
    if (rc == LBW_APPLY_OK)
        rc = intent_alerts(l, op, src, chg);
    if (rc != LBW_APPLY_OK)
        return rc;
    if (prep_alloc(l, op, src, &p) < 0) {
        prep_free(&p);
        return LBW_APPLY_NOMEM;
    }

    make_room(l, op->intent.receiver, op->intent.nalerts, chg);
    struct lbw_intent *in = &l->intents[l->nintents++];
    *in = p.in;
    in->id = index;
    in->kind = op->intent.kind;
    in->expect_group = op->intent.expect_group;
    in->created_at = in->next_attempt_at = op->time_ms;
    l->copies += in->nalerts;
    p.in.alerts = NULL;
    if (op->intent.kind == LBW_INTENT_ESCALATE)
        mark_escalated(l, op);
    else
        notify_group(l, index, op->time_ms, &p);
    add_receiver(l, &p);
    chg->intent = index;
    prep_free(&p);
    return LBW_APPLY_OK;
}

/* ---- apply: receipts, silences, acknowledgements ----------------------------------------- */

/* min(1 s * 2^(attempts - 1), 5 min), attempts >= 1 */
static int64_t backoff_ms(uint32_t attempts)
{
    if (attempts - 1 >= 9)
        return LBW_BACKOFF_MAX_MS;
    int64_t d = LBW_BACKOFF_FIRST_MS << (attempts - 1);
    return d < LBW_BACKOFF_MAX_MS ? d : LBW_BACKOFF_MAX_MS;
}

static enum lbw_apply_result apply_receipt(struct lbw_ledger *l, const struct lbw_op *op,
                                           struct lbw_ledger_change *chg)
{
    long i = find_intent(l, op->receipt.intent);
    struct lbw_intent *in = i >= 0 ? &l->intents[i] : NULL;
    int64_t t = op->time_ms;
    size_t pos;
    chg->intent = op->receipt.intent;
    if (!in || in->delivered || (uint64_t)op->receipt.attempt != (uint64_t)in->attempts + 1) {
        fail(chg->detail, sizeof(chg->detail), "%s",
             !in              ? "no such intent (collected or evicted)"
             : in->delivered ? "intent already delivered"
                             : "not the next attempt");
        return LBW_APPLY_STALE;
    }
    /* every intent's receiver has a health record (collect_receivers keeps it) */
    struct lbw_receiver_health *h = &l->receivers[find_receiver(l, in->receiver, &pos)];
    int oom = 0;
    char *e1 = dup_opt(op->receipt.error, &oom), *e2 = dup_opt(op->receipt.error, &oom);
    if (oom) {
        free(e1);
        free(e2);
        return LBW_APPLY_NOMEM;
    }
    in->attempts++;
    in->last_attempt_at = t;
    if (op->receipt.ok) {
        in->delivered = chg->delivered = 1;
        in->delivered_at = t;
        h->consecutive_failures = 0;
        h->last_success_at = t;
        return LBW_APPLY_OK;
    }
    release(in->last_error);
    in->last_error = e1;
    in->next_attempt_at = t + backoff_ms(in->attempts);
    if (h->consecutive_failures < UINT32_MAX)
        h->consecutive_failures++;
    release(h->last_error);
    h->last_error = e2;
    h->last_failure_at = t;
    return LBW_APPLY_OK;
}

/* A silence's strings in one block starting at its author. Returns 0 or NOMEM. */
static int silence_block(struct lbw_silence *s, const char *author, const char *comment,
                         const struct lbw_matcher *m, size_t n)
{
    size_t size = strlen(author) + 1 + strlen(comment) + 1;
    for (size_t i = 0; i < n; i++)
        size += strlen(m[i].name) + 1 + strlen(m[i].value) + 1;
    char *t = malloc(size);
    if (!t)
        return NOMEM;
    s->author = strcpy(t, author);
    t += strlen(t) + 1;
    s->comment = strcpy(t, comment);
    t += strlen(t) + 1;
    for (size_t i = 0; i < n; i++) {
        s->matchers[i].name = strcpy(t, m[i].name);
        t += strlen(t) + 1;
        s->matchers[i].value = strcpy(t, m[i].value);
        t += strlen(t) + 1;
        s->matchers[i].negate = m[i].negate;
    }
    s->nmatchers = n;
    return 0;
}

static enum lbw_apply_result apply_silence(struct lbw_ledger *l, uint64_t index,
                                           const struct lbw_op *op,
                                           struct lbw_ledger_change *chg)
{
    struct lbw_silence s = {.id = index, .starts_at = op->silence.starts_at,
                            .ends_at = op->silence.ends_at, .created_at = op->time_ms};
    if (op->silence.ends_at <= op->time_ms) {
        fail(chg->detail, sizeof(chg->detail), "silence ends before it is created");
        return LBW_APPLY_INVALID;
    }
    if (l->nsilences == LBW_LEDGER_MAX_SILENCES) {
        fail(chg->detail, sizeof(chg->detail), "silence table full");
        return LBW_APPLY_INVALID;
    }
    if (RESERVE(l->silences, l->nsilences, l->silences_cap) < 0 ||
        silence_block(&s, op->silence.author, op->silence.comment, op->silence.matchers,
                      op->silence.nmatchers) < 0)
        return LBW_APPLY_NOMEM;
    l->silences[l->nsilences++] = s;
    chg->silence = index;
    return LBW_APPLY_OK;
}

static enum lbw_apply_result apply_expire(struct lbw_ledger *l, const struct lbw_op *op,
                                          struct lbw_ledger_change *chg)
{
    long i = find_silence(l, op->expire.silence);
    int64_t t = op->time_ms;
    chg->silence = op->expire.silence;
    if (i < 0 || l->silences[i].ends_at <= t) {
        fail(chg->detail, sizeof(chg->detail), "%s",
             i < 0 ? "no such silence" : "silence already ended");
        return LBW_APPLY_STALE;
    }
    l->silences[i].ends_at = t;
    if (l->silences[i].starts_at > t)
        l->silences[i].starts_at = t;
    return LBW_APPLY_OK;
}

static enum lbw_apply_result apply_ack(struct lbw_ledger *l, const struct lbw_op *op,
                                       struct lbw_ledger_change *chg)
{
    size_t pos;
    long i = find_alert(l, op->ack.fingerprint, &pos);
    struct lbw_alert *a = i >= 0 ? &l->alerts[i] : NULL;
    chg->fingerprint = op->ack.fingerprint;
    if (!a || a->seq != op->ack.expect_seq) {
        fail(chg->detail, sizeof(chg->detail), "alert %s", a ? "changed" : "gone");
        return LBW_APPLY_STALE;
    }
    chg->from = chg->to = a->state;
    if (a->state == LBW_ALERT_RESOLVED) {
        fail(chg->detail, sizeof(chg->detail), "a resolved alert cannot be acknowledged");
        return LBW_APPLY_INVALID;
    }
    char *by = dup_str(op->ack.by), *comment = dup_str(op->ack.comment);
    if (!by || !comment) {
        free(by);
        free(comment);
        return LBW_APPLY_NOMEM;
    }
    clear_ack(a);
    a->ack = (struct lbw_ack){1, by, comment, op->time_ms};
    return LBW_APPLY_OK;
}

static enum lbw_apply_result apply_op(struct lbw_ledger *l, uint64_t index,
                                      const struct lbw_op *op, struct lbw_ledger_change *chg)
{
    switch (op->type) {
    case LBW_OP_TRANSITION:
        return apply_transition(l, index, op, chg);
    case LBW_OP_INTENT:
        return apply_intent(l, index, op, chg);
    case LBW_OP_RECEIPT:
        return apply_receipt(l, op, chg);
    case LBW_OP_SILENCE:
        return apply_silence(l, index, op, chg);
    case LBW_OP_EXPIRE_SILENCE:
        return apply_expire(l, op, chg);
    case LBW_OP_ACK:
        return apply_ack(l, op, chg);
    }
    return LBW_APPLY_INVALID; /* the decoder accepts no other type */
}

static enum lbw_apply_result count(struct lbw_ledger *l, enum lbw_apply_result rc)
{
    l->st.ok += rc == LBW_APPLY_OK;
    l->st.stale += rc == LBW_APPLY_STALE;
    l->st.invalid += rc == LBW_APPLY_INVALID;
    l->st.nomem += rc == LBW_APPLY_NOMEM;
    return rc;
}

enum lbw_apply_result lbw_ledger_apply(struct lbw_ledger *l, uint64_t index, const uint8_t *bytes,
                                       size_t len, struct lbw_ledger_change *chg)
{
    struct lbw_ledger_change local;
    struct lbw_op *op;
    if (!chg)
        chg = &local;
    memset(chg, 0, sizeof(*chg));
    if (index <= l->last_index) {
        fail(chg->detail, sizeof(chg->detail), "index %llu is not after %llu",
             (unsigned long long)index, (unsigned long long)l->last_index);
        return count(l, LBW_APPLY_INVALID);
    }
    if (!(op = malloc(sizeof(*op))))
        return count(l, LBW_APPLY_NOMEM);
    if (lbw_op_decode(bytes, len, op, chg->detail, sizeof(chg->detail)) < 0) {
        free(op);
        return count(l, LBW_APPLY_INVALID);
    }
    chg->type = op->type;
    chg->time_ms = op->time_ms;
    collect(l, op->time_ms, chg);
    enum lbw_apply_result rc = apply_op(l, index, op, chg);
    if (rc != LBW_APPLY_NOMEM)
        l->last_index = index;
    free(op);
    return count(l, rc);
}

uint64_t lbw_ledger_last_index(const struct lbw_ledger *l)
{
    return l->last_index;
}

void lbw_ledger_stats(const struct lbw_ledger *l, struct lbw_ledger_stats *out)
{
    *out = l->st;
}

/* ---- queries ----------------------------------------------------------------------------- */

const struct lbw_alert *lbw_ledger_alerts(const struct lbw_ledger *l, size_t *n)
{
    *n = l->nalerts;
    return l->alerts;
}

const struct lbw_intent *lbw_ledger_intents(const struct lbw_ledger *l, size_t *n)
{
    *n = l->nintents;
    return l->intents;
}

const struct lbw_group *lbw_ledger_groups(const struct lbw_ledger *l, size_t *n)
{
    *n = l->ngroups;
    return l->groups;
}

const struct lbw_silence *lbw_ledger_silences(const struct lbw_ledger *l, size_t *n)
{
    *n = l->nsilences;
    return l->silences;
}

const struct lbw_receiver_health *lbw_ledger_receivers(const struct lbw_ledger *l, size_t *n)
{
    *n = l->nreceivers;
    return l->receivers;
}

const struct lbw_alert *lbw_ledger_alert(const struct lbw_ledger *l, uint64_t fingerprint)
{
    size_t pos;
    long i = find_alert(l, fingerprint, &pos);
    return i >= 0 ? &l->alerts[i] : NULL;
}

const struct lbw_intent *lbw_ledger_intent(const struct lbw_ledger *l, uint64_t id)
{
    long i = find_intent(l, id);
    return i >= 0 ? &l->intents[i] : NULL;
}

const struct lbw_group *lbw_ledger_group(const struct lbw_ledger *l, const char *receiver,
                                         const char *key)
{
    size_t pos;
    long i = find_group(l, receiver, key, &pos);
    return i >= 0 ? &l->groups[i] : NULL;
}

const struct lbw_silence *lbw_ledger_silence(const struct lbw_ledger *l, uint64_t id)
{
    long i = find_silence(l, id);
    return i >= 0 ? &l->silences[i] : NULL;
}

const struct lbw_receiver_health *lbw_ledger_receiver(const struct lbw_ledger *l,
                                                      const char *name)
{
    size_t pos;
    long i = find_receiver(l, name, &pos);
    return i >= 0 ? &l->receivers[i] : NULL;
}

size_t lbw_ledger_foreach_due(const struct lbw_ledger *l, int64_t now, lbw_intent_fn fn,
                              void *arg)
{
    size_t n = 0;
    for (size_t i = 0; i < l->nintents; i++) {
        const struct lbw_intent *in = &l->intents[i];
        if (!in->delivered && in->next_attempt_at <= now) {
            fn(arg, in);
            n++;
        }
    }
    return n;
}

int64_t lbw_ledger_next_due(const struct lbw_ledger *l)
{
    int64_t next = 0;
    for (size_t i = 0; i < l->nintents; i++) {
        const struct lbw_intent *in = &l->intents[i];
        if (!in->delivered && (next == 0 || in->next_attempt_at < next))
            next = in->next_attempt_at;
    }
    return next;
}

size_t lbw_ledger_foreach_silence(const struct lbw_ledger *l, int64_t now, lbw_silence_fn fn,
                                  void *arg)
{
    size_t n = 0;
    for (size_t i = 0; i < l->nsilences; i++) {
        if (now >= 0 && !lbw_silence_active(&l->silences[i], now))
            continue;
        fn(arg, &l->silences[i]);
        n++;
    }
    return n;
}

void lbw_ledger_notification(const struct lbw_intent *in, struct lbw_notification *out)
{
    memset(out, 0, sizeof(*out));
    out->receiver = in->receiver;
    out->status = LBW_NOTIFY_RESOLVED;
    for (size_t i = 0; i < in->nalerts; i++)
        if (in->alerts[i].status == LBW_NOTIFY_FIRING)
            out->status = LBW_NOTIFY_FIRING;
    out->group_key = in->group_key;
    out->alerts = in->alerts;
    out->nalerts = in->nalerts;
    out->idempotency_key = in->idempotency_key;
    out->escalation = in->kind == LBW_INTENT_ESCALATE;
}

/* ---- serialisation ----------------------------------------------------------------------- */

static void write_alert(struct lbw_bytes *b, const struct lbw_alert *a)
{
    put_str(b, a->labels);
    put_str(b, a->annotations);
    put_uint(b, (uint64_t)a->severity, 1);
    put_uint(b, (uint64_t)a->state, 1);
    put_uint(b, a->seq, 8);
    put_i64(b, a->active_since);
    put_i64(b, a->firing_since);
    put_i64(b, a->resolved_at);
    put_i64(b, a->changed_at);
    put_double(b, a->value);
    put_uint(b, (uint64_t)a->ack.acked, 1);
    if (a->ack.acked) {
        put_str(b, a->ack.by);
        put_str(b, a->ack.comment);
        put_i64(b, a->ack.at);
    }
    put_uint(b, (uint64_t)a->escalated, 1);
}

static void write_intent(struct lbw_bytes *b, const struct lbw_intent *in)
{
    put_uint(b, in->id, 8);
    put_str(b, in->receiver);
    put_str(b, in->group_key);
    put_uint(b, (uint64_t)in->kind, 1);
    put_uint(b, in->expect_group, 8);
    put_i64(b, in->created_at);
    put_uint(b, (uint64_t)in->delivered, 1);
    put_i64(b, in->delivered_at);
    put_uint(b, in->attempts, 4);
    put_i64(b, in->last_attempt_at);
    put_str(b, in->last_error);
    put_i64(b, in->next_attempt_at);
    put_uint(b, in->nalerts, 1);
    for (size_t i = 0; i < in->nalerts; i++) {
        const struct lbw_notify_alert *a = &in->alerts[i];
        put_str(b, a->labels);
        put_str(b, a->annotations);
        put_uint(b, in->seqs[i], 8);
        put_uint(b, (uint64_t)a->status, 1);
        put_i64(b, a->starts_at_ms);
        put_i64(b, a->ends_at_ms);
    }
}

static void write_group(struct lbw_bytes *b, const struct lbw_group *g)
{
    put_str(b, g->receiver);
    put_str(b, g->key);
    put_uint(b, g->version, 8);
    put_i64(b, g->first_at);
    put_i64(b, g->last_notified_at);
    put_uint(b, g->nmembers, 1);
    for (size_t i = 0; i < g->nmembers; i++) {
        put_uint(b, g->members[i].fingerprint, 8);
        put_uint(b, g->members[i].seq, 8);
    }
}

static void write_silence(struct lbw_bytes *b, const struct lbw_silence *s)
{
    put_uint(b, s->id, 8);
    put_i64(b, s->starts_at);
    put_i64(b, s->ends_at);
    put_i64(b, s->created_at);
    put_str(b, s->author);
    put_str(b, s->comment);
    put_uint(b, s->nmatchers, 1);
    for (size_t i = 0; i < s->nmatchers; i++) {
        put_str(b, s->matchers[i].name);
        put_str(b, s->matchers[i].value);
        put_uint(b, (uint64_t)s->matchers[i].negate, 1);
    }
}

static void write_receiver(struct lbw_bytes *b, const struct lbw_receiver_health *h)
{
    put_str(b, h->name);
    put_uint(b, h->consecutive_failures, 4);
    put_str(b, h->last_error);
    put_i64(b, h->last_failure_at);
    put_i64(b, h->last_success_at);
}

int lbw_ledger_serialize(const struct lbw_ledger *l, struct lbw_bytes *out)
{
    uint8_t *magic = room(out, sizeof(SNAP_MAGIC));
    if (magic)
        memcpy(magic, SNAP_MAGIC, sizeof(SNAP_MAGIC));
    put_uint(out, SNAP_VERSION, 4);
    put_uint(out, l->last_index, 8);
    put_uint(out, l->nalerts, 4);
    for (size_t i = 0; i < l->nalerts; i++)
        write_alert(out, &l->alerts[i]);
    put_uint(out, l->nintents, 4);
    for (size_t i = 0; i < l->nintents; i++)
        write_intent(out, &l->intents[i]);
    put_uint(out, l->ngroups, 4);
    for (size_t i = 0; i < l->ngroups; i++)
        write_group(out, &l->groups[i]);
    put_uint(out, l->nsilences, 4);
    for (size_t i = 0; i < l->nsilences; i++)
        write_silence(out, &l->silences[i]);
    put_uint(out, l->nreceivers, 4);
    for (size_t i = 0; i < l->nreceivers; i++)
        write_receiver(out, &l->receivers[i]);
    return out->failed ? -1 : 0;
}

int lbw_ledger_digest(const struct lbw_ledger *l, uint8_t out[32])
{
    struct lbw_bytes b = {0};
    unsigned len = 0;
    int rc = lbw_ledger_serialize(l, &b) == 0 &&
                     EVP_Digest(b.data, b.len, out, &len, EVP_sha256(), NULL) == 1
                 ? 0
                 : -1;
    lbw_bytes_free(&b);
    return rc;
}

/* ---- restore ----------------------------------------------------------------------------- */

/* A copy of a checked string, NUL-terminated; NULL for an empty one when optional. */
static int take_str(struct view v, int optional, const char **out)
{
    char *d;
    *out = NULL;
    if (optional && v.len == 0)
        return 0;
    if (!(d = malloc(v.len + 1)))
        return NOMEM;
    memcpy(d, v.s, v.len);
    d[v.len] = '\0';
    *out = d;
    return 0;
}

/* Reads a count of at most max entities of at least min bytes each. */
static int read_count(struct lbw_reader *r, size_t max, size_t min, size_t *n)
{
    uint64_t v = lbw_get_be(r, 4);
    if (r->bad || v > max || v > left(r) / min)
        return MALFORMED;
    *n = (size_t)v;
    return 0;
}

static int alert_consistent(const struct lbw_alert *a, uint64_t last)
{
    int pending = a->state == LBW_ALERT_PENDING, resolved = a->state == LBW_ALERT_RESOLVED;
    return a->seq >= 1 && a->seq <= last && time_ok(a->active_since) &&
           time_ok(a->changed_at) && (pending ? a->firing_since == 0 : time_ok(a->firing_since)) &&
           (resolved ? time_ok(a->resolved_at) : a->resolved_at == 0) &&
           (!a->escalated || !pending);
}

static int read_ack(struct lbw_reader *r, struct lbw_alert *a)
{
    uint64_t acked = lbw_get_be(r, 1);
    if (r->bad || acked > 1)
        return MALFORMED;
    if (!acked)
        return 0;
    struct view by = get_str(r), comment = get_str(r);
    a->ack.at = get_i64(r);
    if (r->bad || !who_ok(by) || !text_ok(comment, LBW_LEDGER_TEXT_MAX) || !time_ok(a->ack.at))
        return MALFORMED;
    a->ack.acked = 1;
    if (take_str(by, 0, &a->ack.by) < 0 || take_str(comment, 0, &a->ack.comment) < 0)
        return NOMEM;
    return 0;
}

static int read_alert(struct lbw_reader *r, struct lbw_ledger *l, struct lbw_alert *a)
{
    struct view labels = get_str(r), ann = get_str(r);
    uint64_t sev = lbw_get_be(r, 1), state = lbw_get_be(r, 1);
    a->seq = lbw_get_be(r, 8);
    a->active_since = get_i64(r);
    a->firing_since = get_i64(r);
    a->resolved_at = get_i64(r);
    a->changed_at = get_i64(r);
    a->value = get_double(r);
    if (r->bad || !alert_labels_ok(labels) || !annotations_ok(ann) || sev > LBW_SEV_CRITICAL ||
        state < LBW_ALERT_PENDING || state > LBW_ALERT_RESOLVED)
        return MALFORMED;
    a->severity = (enum lbw_severity)sev;
    a->state = (enum lbw_alert_state)state;
    a->fingerprint = lbw_fingerprint(labels.s, labels.len);
    if (take_str(labels, 0, &a->labels) < 0 || take_str(ann, 1, &a->annotations) < 0)
        return NOMEM;
    int rc = read_ack(r, a);
    if (rc < 0)
        return rc;
    uint64_t escalated = lbw_get_be(r, 1);
    if (r->bad || escalated > 1)
        return MALFORMED;
    a->escalated = (int)escalated;
    if (!alert_consistent(a, l->last_index) ||
        (l->nalerts > 0 && l->alerts[l->nalerts - 1].fingerprint >= a->fingerprint))
        return MALFORMED;
    return 0;
}

static int read_alerts(struct lbw_reader *r, struct lbw_ledger *l)
{
    size_t n;
    if (read_count(r, LBW_LEDGER_MAX_ALERTS, 8 + 4 * 8 + 8 + 4, &n) < 0)
        return MALFORMED;
    if (n && !(l->alerts = calloc(n, sizeof(*l->alerts))))
        return NOMEM;
    l->alerts_cap = n;
    for (size_t i = 0; i < n; i++) {
        int rc = read_alert(r, l, &l->alerts[i]);
        if (rc < 0) {
            alert_free(&l->alerts[i]);
            return rc;
        }
        l->nalerts++;
    }
    return 0;
}

/* One intent's copies: read, checked, and built into its block. */
static int read_copies(struct lbw_reader *r, struct lbw_intent *in, struct view receiver,
                       struct view key)
{
    struct copy_src src[LBW_INTENT_MAX_ALERTS];
    size_t n = (size_t)lbw_get_be(r, 1);
    if (r->bad || n == 0 || n > LBW_INTENT_MAX_ALERTS)
        return MALFORMED;
    for (size_t i = 0; i < n; i++) {
        struct copy_src *c = &src[i];
        c->labels = get_str(r);
        c->annotations = get_str(r);
        c->seq = lbw_get_be(r, 8);
        uint64_t status = lbw_get_be(r, 1);
        c->starts_at = get_i64(r);
        c->ends_at = get_i64(r);
        if (r->bad || !alert_labels_ok(c->labels) || !annotations_ok(c->annotations) ||
            status > LBW_NOTIFY_RESOLVED || c->seq == 0 || !time_ok(c->starts_at) ||
            (status == LBW_NOTIFY_FIRING ? c->ends_at != 0 : !time_ok(c->ends_at)) ||
            (in->kind == LBW_INTENT_ESCALATE && status != LBW_NOTIFY_FIRING))
            return MALFORMED;
        c->status = (enum lbw_notify_status)status;
        c->fingerprint = lbw_fingerprint(c->labels.s, c->labels.len);
        if (i > 0 && src[i - 1].fingerprint >= c->fingerprint)
            return MALFORMED;
    }
    return intent_block(in, receiver, key, src, n);
}

static int intent_consistent(const struct lbw_intent *in, uint64_t last)
{
    return in->id >= 1 && in->id <= last && time_ok(in->created_at) &&
           time_ok(in->next_attempt_at) && in->expect_group < in->id &&
           (in->delivered ? time_ok(in->delivered_at) && in->attempts >= 1
                          : in->delivered_at == 0) &&
           (in->attempts ? time_ok(in->last_attempt_at)
                         : in->last_attempt_at == 0 && !in->last_error) &&
           (in->kind != LBW_INTENT_ESCALATE || in->expect_group == 0);
}

static int read_intent(struct lbw_reader *r, struct lbw_ledger *l, struct lbw_intent *in)
{
    in->id = lbw_get_be(r, 8);
    struct view recv = get_str(r), gkey = get_str(r);
    uint64_t kind = lbw_get_be(r, 1);
    in->expect_group = lbw_get_be(r, 8);
    in->created_at = get_i64(r);
    uint64_t delivered = lbw_get_be(r, 1);
    in->delivered_at = get_i64(r);
    in->attempts = (uint32_t)lbw_get_be(r, 4);
    in->last_attempt_at = get_i64(r);
    struct view err = get_str(r);
    in->next_attempt_at = get_i64(r);
    if (r->bad || !receiver_ok(recv) || !group_key_ok(gkey) || kind > LBW_INTENT_ESCALATE ||
        delivered > 1 || !text_ok(err, LBW_LEDGER_TEXT_MAX) ||
        (l->nintents > 0 && l->intents[l->nintents - 1].id >= in->id))
        return MALFORMED;
    in->kind = (enum lbw_intent_kind)kind;
    in->delivered = (int)delivered;
    if (take_str(err, 1, &in->last_error) < 0)
        return NOMEM;
    if (!intent_consistent(in, l->last_index))
        return MALFORMED;
    int rc = read_copies(r, in, recv, gkey);
    if (rc < 0)
        return rc;
    return idem_key(in->receiver, in->group_key, in->kind, in->expect_group, in->alerts,
                    in->seqs, in->nalerts, in->idempotency_key) < 0
               ? NOMEM
               : 0;
}

static int read_intents(struct lbw_reader *r, struct lbw_ledger *l)
{
    size_t n;
    if (read_count(r, LBW_LEDGER_MAX_INTENTS, 8 + 5 * 8 + 4, &n) < 0)
        return MALFORMED;
    if (n && !(l->intents = calloc(n, sizeof(*l->intents))))
        return NOMEM;
    l->intents_cap = n;
    for (size_t i = 0; i < n; i++) {
        int rc = read_intent(r, l, &l->intents[i]);
        if (rc < 0) {
            intent_free(&l->intents[i]);
            return rc;
        }
        l->copies += l->intents[i].nalerts;
        l->nintents++;
    }
    return l->copies <= LBW_LEDGER_MAX_COPIES ? 0 : MALFORMED;
}

static int read_members(struct lbw_reader *r, struct lbw_group *g)
{
    size_t n = (size_t)lbw_get_be(r, 1);
    struct lbw_group_member *m;
    if (r->bad || n > LBW_INTENT_MAX_ALERTS || n > left(r) / 16)
        return MALFORMED;
    if (n == 0)
        return 0;
    if (!(m = malloc(n * sizeof(*m))))
        return NOMEM;
    g->members = m;
    for (size_t i = 0; i < n; i++) {
        m[i].fingerprint = lbw_get_be(r, 8);
        m[i].seq = lbw_get_be(r, 8);
        if (m[i].seq == 0 || (i > 0 && m[i - 1].fingerprint >= m[i].fingerprint))
            return MALFORMED;
    }
    g->nmembers = n;
    return 0;
}

static int read_group(struct lbw_reader *r, struct lbw_ledger *l, struct lbw_group *g)
{
    struct view recv = get_str(r), key = get_str(r);
    g->version = lbw_get_be(r, 8);
    g->first_at = get_i64(r);
    g->last_notified_at = get_i64(r);
    if (r->bad || !receiver_ok(recv) || !group_key_ok(key) || g->version == 0 ||
        g->version > l->last_index || !time_ok(g->first_at) || !time_ok(g->last_notified_at))
        return MALFORMED;
    if (take_str(recv, 0, &g->receiver) < 0 || take_str(key, 0, &g->key) < 0)
        return NOMEM;
    if (l->ngroups > 0) {
        const struct lbw_group *p = &l->groups[l->ngroups - 1];
        if (group_cmp(p->receiver, p->key, g->receiver, g->key) >= 0)
            return MALFORMED;
    }
    return read_members(r, g);
}

static int read_groups(struct lbw_reader *r, struct lbw_ledger *l)
{
    size_t n;
    if (read_count(r, LBW_LEDGER_MAX_GROUPS, 2 + 2 + 8 * 3 + 1, &n) < 0)
        return MALFORMED;
    if (n && !(l->groups = calloc(n, sizeof(*l->groups))))
        return NOMEM;
    l->groups_cap = n;
    for (size_t i = 0; i < n; i++) {
        int rc = read_group(r, l, &l->groups[i]);
        if (rc < 0) {
            group_free(&l->groups[i]);
            return rc;
        }
        l->ngroups++;
    }
    return 0;
}

static int read_silence(struct lbw_reader *r, struct lbw_ledger *l, struct lbw_silence *s)
{
    struct lbw_matcher m[LBW_SILENCE_MAX_MATCHERS];
    char text[LBW_SILENCE_MAX_MATCHERS][2][LBW_LEDGER_TEXT_MAX];
    char author[LBW_LEDGER_NAME_MAX], comment[LBW_LEDGER_TEXT_MAX];
    s->id = lbw_get_be(r, 8);
    s->starts_at = get_i64(r);
    s->ends_at = get_i64(r);
    s->created_at = get_i64(r);
    struct view a = get_str(r), c = get_str(r);
    size_t n = (size_t)lbw_get_be(r, 1);
    if (r->bad || s->id == 0 || s->id > l->last_index || !time_ok(s->starts_at) ||
        !time_ok(s->ends_at) || s->ends_at < s->starts_at || !time_ok(s->created_at) ||
        !who_ok(a) || !text_ok(c, LBW_LEDGER_TEXT_MAX) || n == 0 ||
        n > LBW_SILENCE_MAX_MATCHERS ||
        (l->nsilences > 0 && l->silences[l->nsilences - 1].id >= s->id))
        return MALFORMED;
    for (size_t i = 0; i < n; i++) {
        struct view name = get_str(r), value = get_str(r);
        uint64_t negate = lbw_get_be(r, 1);
        if (r->bad || !matcher_ok(name, value, negate))
            return MALFORMED;
        memcpy(text[i][0], name.s, name.len);
        text[i][0][name.len] = '\0';
        memcpy(text[i][1], value.s, value.len);
        text[i][1][value.len] = '\0';
        m[i] = (struct lbw_matcher){text[i][0], text[i][1], (int)negate};
    }
    if (!silence_selective(m, n))
        return MALFORMED;
    memcpy(author, a.s, a.len);
    author[a.len] = '\0';
    memcpy(comment, c.s, c.len);
    comment[c.len] = '\0';
    return silence_block(s, author, comment, m, n);
}

static int read_silences(struct lbw_reader *r, struct lbw_ledger *l)
{
    size_t n;
    if (read_count(r, LBW_LEDGER_MAX_SILENCES, 8 * 4 + 2 + 2 + 1, &n) < 0)
        return MALFORMED;
    if (n && !(l->silences = calloc(n, sizeof(*l->silences))))
        return NOMEM;
    l->silences_cap = n;
    for (size_t i = 0; i < n; i++) {
        int rc = read_silence(r, l, &l->silences[i]);
        if (rc < 0) {
            silence_free(&l->silences[i]);
            return rc;
        }
        l->nsilences++;
    }
    return 0;
}

static int read_receiver(struct lbw_reader *r, struct lbw_ledger *l, struct lbw_receiver_health *h)
{
    struct view name = get_str(r);
    h->consecutive_failures = (uint32_t)lbw_get_be(r, 4);
    struct view err = get_str(r);
    h->last_failure_at = get_i64(r);
    h->last_success_at = get_i64(r);
    if (r->bad || !receiver_ok(name) || !text_ok(err, LBW_LEDGER_TEXT_MAX) ||
        !time_or_zero(h->last_failure_at) || !time_or_zero(h->last_success_at))
        return MALFORMED;
    if (take_str(name, 0, &h->name) < 0 || take_str(err, 1, &h->last_error) < 0)
        return NOMEM;
    if (l->nreceivers > 0 && strcmp(l->receivers[l->nreceivers - 1].name, h->name) >= 0)
        return MALFORMED;
    return 0;
}

static int read_receivers(struct lbw_reader *r, struct lbw_ledger *l)
{
    size_t n;
    if (read_count(r, LBW_LEDGER_MAX_RECEIVERS, 2 + 4 + 2 + 16, &n) < 0)
        return MALFORMED;
    if (n && !(l->receivers = calloc(n, sizeof(*l->receivers))))
        return NOMEM;
    l->receivers_cap = n;
    for (size_t i = 0; i < n; i++) {
        int rc = read_receiver(r, l, &l->receivers[i]);
        if (rc < 0) {
            receiver_free(&l->receivers[i]);
            return rc;
        }
        l->nreceivers++;
    }
    return 0;
}

/* What only the whole ledger can show: every receiver named has health, at most
 * LBW_LEDGER_MAX_PENDING undelivered intents per receiver. */
static int cross_check(const struct lbw_ledger *l)
{
    size_t pending[LBW_LEDGER_MAX_RECEIVERS] = {0}, pos;
    for (size_t i = 0; i < l->nintents; i++) {
        long h = find_receiver(l, l->intents[i].receiver, &pos);
        if (h < 0 || (!l->intents[i].delivered && ++pending[h] > LBW_LEDGER_MAX_PENDING))
            return MALFORMED;
    }
    for (size_t i = 0; i < l->ngroups; i++)
        if (find_receiver(l, l->groups[i].receiver, &pos) < 0)
            return MALFORMED;
    return 0;
}

static int read_ledger(struct lbw_reader *r, struct lbw_ledger *l)
{
    const uint8_t *magic = lbw_take(r, sizeof(SNAP_MAGIC));
    if (!magic || memcmp(magic, SNAP_MAGIC, sizeof(SNAP_MAGIC)) != 0 ||
        lbw_get_be(r, 4) != SNAP_VERSION)
        return MALFORMED;
    l->last_index = lbw_get_be(r, 8);
    if (r->bad)
        return MALFORMED;
    int rc;
    if ((rc = read_alerts(r, l)) < 0 || (rc = read_intents(r, l)) < 0 ||
        (rc = read_groups(r, l)) < 0 || (rc = read_silences(r, l)) < 0 ||
        (rc = read_receivers(r, l)) < 0)
        return rc;
    return left(r) == 0 ? cross_check(l) : MALFORMED;
}

int lbw_ledger_restore(struct lbw_ledger *l, const uint8_t *p, size_t len)
{
    struct lbw_reader r = {p, p ? p + len : p, 0};
    struct lbw_ledger *n;
    if (len > LBW_LEDGER_MAX_BYTES)
        return MALFORMED;
    if (!(n = lbw_ledger_new()))
        return NOMEM;
    int rc = read_ledger(&r, n);
    if (rc < 0) {
        lbw_ledger_free(n);
        return rc;
    }
    n->st = l->st;
    ledger_clear(l);
    *l = *n;
    free(n);
    return 0;
}
