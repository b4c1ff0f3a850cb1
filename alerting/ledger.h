/* ledger.h - the replicated alert ledger: alert state, notification intents and receipts,
 * notification groups, silences, acknowledgements and receiver health, and the ops that
 * change them.
 *
 * Every replica applies the same ops in the same order (node/fsm) and so holds the same
 * ledger; only the ready leader proposes ops (docs/alerting.md). An op is a small binary
 * record (encoding below) that the leader encodes with lbw_op_encode and every replica
 * decodes and applies with lbw_ledger_apply. The result of applying one is
 *   OK       the ledger changed as the op says;
 *   STALE    its compare-and-set failed: it was planned on a state that has since changed
 *            (a transition from a deposed leader, a duplicate intent, a receipt for an
 *            intent already delivered). Harmless, and the same on every replica;
 *   INVALID  it does not decode or asks for something impossible (an illegal transition,
 *            a full table). The same on every replica too;
 *   NOMEM    a local failure: the op was not applied and may be applied again (libraft
 *            retries); garbage collection as of its time may have run, as it would again.
 * Every op that decodes first collects garbage as of its time, whatever its result: time
 * passes with each op. An op that does not decode changes nothing.
 *
 * Determinism: the ledger reads no clock; every time comes from an op (the leader's wall
 * clock when it proposed it, ms since the epoch, 1 .. LBW_LEDGER_MAX_TIME; 0 means "never"
 * in every time field below). Ids are raft indexes: an intent's and a silence's id is the
 * index of the op that created it, and an alert's seq is the index of its last transition,
 * so they never repeat even after garbage collection. Entities are kept in arrays sorted by
 * their key (alerts by fingerprint, intents and silences by id, groups by receiver then
 * group key, receivers by name), the order in which every query iterates them and in which
 * they are serialised. Replicas that applied the same ops serialise to the same bytes
 * (lbw_ledger_digest).
 *
 * Alerts (by fingerprint = lbw_fingerprint of the labels): state pending, firing or
 * resolved; seq; active_since (the episode began: pending or firing), firing_since,
 * resolved_at, changed_at (last transition); the value, severity and annotations of the
 * last transition; an acknowledgement and an escalated flag, both for the current episode
 * (a transition out of resolved starts a new episode and clears them). Legal transitions:
 *     (absent) -> pending | firing        pending -> firing | inactive (removed)
 *     firing -> resolved                  resolved -> pending | firing (a new episode)
 * A transition names the seq it expects (0: the alert is absent); a mismatch is STALE.
 *
 * Intents (by id): a decision to notify a receiver about a group, with a copy of each
 * alert as it was when the intent was applied, the idempotency key, and its delivery state
 * (attempts, last error, next attempt). Kinds: notify (a new or changed group), repeat
 * (repeat_interval), escalate (escalate_to). A notify or repeat intent names the group
 * version it expects (the id of the intent that last notified the group, 0 if none) and
 * every alert by (fingerprint, seq, status); a mismatch is STALE, so the second of two
 * intents planned on the same state does nothing. Applying one sets the group's version,
 * last_notified_at and notified set (the intent's firing alerts: resolved alerts are
 * notified once, then drop out of the set). An escalate intent instead expects its alerts
 * firing and not yet escalated, and marks them escalated. The idempotency key is the
 * lower-case hex SHA-256 of (receiver, group key, kind, expected group version, the
 * (fingerprint, seq, status) list), computed when the intent is applied; the version makes a
 * repeat's key differ from the previous notification's, so a receiver that drops repeated
 * keys drops only true duplicates.
 *
 * Receipts: the result of one delivery attempt of an intent, naming the attempt number
 * (attempts + 1; anything else is STALE, as is a receipt for a delivered intent). Success
 * delivers the intent; failure schedules the next attempt at the receipt's time +
 * min(1 s * 2^(attempts - 1), 5 min). Both update the receiver's health (consecutive
 * failures, last error).
 *
 * Silences (by id): 1..8 matchers (equality or inequality; at least one must not match the
 * empty string, so a silence never mutes everything), [starts_at, ends_at), author,
 * comment. Expiring one ends it at the op's time.
 *
 * Bounds (an op never takes the ledger beyond them):
 *   alerts    LBW_LEDGER_MAX_ALERTS; a new alert beyond it replaces the alert resolved
 *             longest ago, or is INVALID when none is resolved
 *   intents   LBW_LEDGER_MAX_INTENTS, LBW_INTENT_MAX_ALERTS alerts each and
 *             LBW_LEDGER_MAX_COPIES alert copies in all; at most LBW_LEDGER_MAX_PENDING
 *             undelivered per receiver. A new intent first evicts, oldest first, the
 *             receiver's undelivered intents beyond its limit, then delivered intents, then
 *             undelivered ones, until it fits (counted in the change)
 *   groups    LBW_LEDGER_MAX_GROUPS (an intent for a new group beyond it is INVALID)
 *   silences  LBW_LEDGER_MAX_SILENCES (INVALID beyond)
 *   receivers LBW_LEDGER_MAX_RECEIVERS with health records (an intent for another is INVALID)
 *   strings   labels, annotations and group keys are canonical keys (< LBW_KEY_MAX bytes);
 *             names < LBW_LEDGER_NAME_MAX, comments and errors < LBW_LEDGER_TEXT_MAX
 * With every field at its largest the serialised ledger stays below LBW_LEDGER_MAX_BYTES
 * (about 18 MiB; a few hundred KiB in practice).
 *
 * Garbage collection, as of each op's time: resolved alerts 1 h after resolution;
 * delivered intents 24 h after delivery; undelivered intents 24 h after they were created
 * (abandoned); silences 24 h after they ended; groups 24 h after their last notification
 * once none of the alerts they notified is still firing in the same episode; receiver
 * health once no intent or group names the receiver.
 *
 * Op encoding, version 1 (integers big-endian; strings are u16 length + bytes, no NUL):
 *   u8 version (1), u8 type, i64 time
 *   TRANSITION      u64 expect_seq, u8 to (0 inactive, 1 pending, 2 firing, 3 resolved),
 *                   u8 severity, u64 value (IEEE 754 bits), str labels, str annotations
 *                   (empty: none)
 *   INTENT          str receiver, str group key, u8 kind (0 notify, 1 repeat, 2 escalate),
 *                   u64 expect_group, u8 n (1..LBW_INTENT_MAX_ALERTS), n x (u64 fingerprint,
 *                   u64 seq, u8 status (0 firing, 1 resolved)) by ascending fingerprint
 *   RECEIPT         u64 intent, u32 attempt, u8 ok, str error (empty when ok)
 *   SILENCE         i64 starts_at, i64 ends_at, str author, str comment, u8 n (1..8),
 *                   n x (str name, str value, u8 negate)
 *   EXPIRE_SILENCE  u64 silence
 *   ACK             u64 fingerprint, u64 expect_seq, str by, str comment
 * nothing after. Every field has exactly one encoding: decoding and re-encoding gives the
 * same bytes.
 *
 * Everything here runs on one thread (the loop); queries return pointers into the ledger,
 * valid until the next apply or restore.
 */
#ifndef LBW_LEDGER_H
#define LBW_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#include "alerting/notify.h"
#include "alerting/rule.h"

#define LBW_LEDGER_MAX_ALERTS 4096
#define LBW_LEDGER_MAX_INTENTS 1024
#define LBW_LEDGER_MAX_COPIES 8192
#define LBW_LEDGER_MAX_PENDING 64
#define LBW_LEDGER_MAX_GROUPS 1024
#define LBW_LEDGER_MAX_SILENCES 256
#define LBW_LEDGER_MAX_RECEIVERS 32
#define LBW_INTENT_MAX_ALERTS 64
#define LBW_SILENCE_MAX_MATCHERS 8
#define LBW_LEDGER_NAME_MAX 64      /* receiver, author, ack by, matcher name: with the NUL */
#define LBW_LEDGER_TEXT_MAX 256     /* comments, errors, matcher values: with the NUL */
#define LBW_LEDGER_MAX_TIME ((int64_t)1 << 53)
#define LBW_LEDGER_MAX_BYTES ((size_t)18 << 20)
#define LBW_OP_MAX_BYTES 4096

#define LBW_LEDGER_RESOLVED_KEEP_MS (3600 * 1000LL)
#define LBW_LEDGER_KEEP_MS (24 * 3600 * 1000LL)
#define LBW_BACKOFF_FIRST_MS 1000LL
#define LBW_BACKOFF_MAX_MS (5 * 60 * 1000LL)

/* ---- entities (owned by the ledger) ------------------------------------------------------ */

enum lbw_alert_state { LBW_ALERT_INACTIVE = 0, LBW_ALERT_PENDING, LBW_ALERT_FIRING,
                       LBW_ALERT_RESOLVED };
const char *lbw_alert_state_name(enum lbw_alert_state s);  /* "inactive", "pending", ... */

struct lbw_ack {
    int acked;
    const char *by;             /* NULL unless acked */
    const char *comment;        /* "" if none */
    int64_t at;
};

struct lbw_alert {
    uint64_t fingerprint;
    const char *labels;         /* canonical key ALERTS{alertname="...",...} */
    const char *annotations;    /* canonical key A{...}, or NULL */
    enum lbw_severity severity;
    enum lbw_alert_state state; /* pending, firing or resolved */
    uint64_t seq;               /* raft index of its last transition */
    int64_t active_since, firing_since, resolved_at, changed_at;
    double value;
    struct lbw_ack ack;         /* for the current episode */
    int escalated;              /* for the current episode */
};

enum lbw_intent_kind { LBW_INTENT_NOTIFY = 0, LBW_INTENT_REPEAT, LBW_INTENT_ESCALATE };
const char *lbw_intent_kind_name(enum lbw_intent_kind k);  /* "notify", "repeat", "escalate" */

struct lbw_intent {
    uint64_t id;                /* raft index of the op that created it */
    const char *receiver;
    const char *group_key;      /* canonical key G{...} */
    enum lbw_intent_kind kind;
    uint64_t expect_group;      /* the group version it was planned on */
    int64_t created_at;
    char idempotency_key[LBW_IDEM_KEY_MAX];
    const struct lbw_notify_alert *alerts;  /* the copies, by ascending fingerprint */
    const uint64_t *seqs;       /* each copy's alert seq */
    size_t nalerts;
    int delivered;
    int64_t delivered_at;
    uint32_t attempts;
    int64_t last_attempt_at;
    const char *last_error;     /* NULL if none */
    int64_t next_attempt_at;    /* created_at until the first failure */
};

struct lbw_group_member {
    uint64_t fingerprint, seq;
};

struct lbw_group {
    const char *receiver;
    const char *key;
    uint64_t version;           /* id of the intent that last notified it */
    int64_t first_at;           /* its first notification */
    int64_t last_notified_at;
    const struct lbw_group_member *members;     /* the firing alerts it last notified, by
                                                   ascending fingerprint */
    size_t nmembers;
};

struct lbw_silence {
    uint64_t id;                /* raft index of the op that created it */
    struct lbw_matcher matchers[LBW_SILENCE_MAX_MATCHERS];
    size_t nmatchers;
    int64_t starts_at, ends_at, created_at;
    const char *author;
    const char *comment;        /* "" if none */
};

/* starts_at <= now < ends_at */
int lbw_silence_active(const struct lbw_silence *s, int64_t now);

/* A receiver name the ledger accepts: [A-Za-z0-9_.-], 1 .. LBW_LEDGER_NAME_MAX - 1 bytes. */
int lbw_receiver_name_valid(const char *name);

struct lbw_receiver_health {
    const char *name;
    uint32_t consecutive_failures;
    const char *last_error;     /* NULL if none */
    int64_t last_failure_at, last_success_at;
};

/* ---- ops --------------------------------------------------------------------------------- */

enum lbw_op_type { LBW_OP_TRANSITION = 1, LBW_OP_INTENT, LBW_OP_RECEIPT, LBW_OP_SILENCE,
                   LBW_OP_EXPIRE_SILENCE, LBW_OP_ACK };
const char *lbw_op_type_name(enum lbw_op_type t);  /* "transition", ..., "unknown" */

/* An alert as an intent names it. */
struct lbw_alert_ref {
    uint64_t fingerprint, seq;
    enum lbw_notify_status status;
};

#define LBW_OP_TEXT_MAX 4096

/* An op. The leader fills one in and encodes it; the decoder fills one in with its strings
 * copied, NUL-terminated, into text[]. */
struct lbw_op {
    enum lbw_op_type type;
    int64_t time_ms;
    union {
        struct {
            uint64_t expect_seq;
            enum lbw_alert_state to;
            enum lbw_severity severity;
            double value;
            const char *labels;
            const char *annotations;    /* NULL or "": none */
        } transition;
        struct {
            const char *receiver;
            const char *group_key;
            enum lbw_intent_kind kind;
            uint64_t expect_group;      /* notify/repeat: the group version; escalate: 0 */
            struct lbw_alert_ref alerts[LBW_INTENT_MAX_ALERTS];
            size_t nalerts;
        } intent;
        struct {
            uint64_t intent;
            uint32_t attempt;
            int ok;
            const char *error;          /* NULL or "" when ok */
        } receipt;
        struct {
            int64_t starts_at, ends_at;
            const char *author;
            const char *comment;        /* NULL or "": none */
            struct lbw_matcher matchers[LBW_SILENCE_MAX_MATCHERS];
            size_t nmatchers;
        } silence;
        struct {
            uint64_t silence;
        } expire;
        struct {
            uint64_t fingerprint, expect_seq;
            const char *by;
            const char *comment;        /* NULL or "": none */
        } ack;
    };
    char text[LBW_OP_TEXT_MAX];
};

/* Encodes op into out[cap]. Returns its length (at most LBW_OP_MAX_BYTES), or -1 if the op
 * is not well formed (the check is the decoder's: what encodes, decodes) or cap is short. */
long lbw_op_encode(const struct lbw_op *op, uint8_t *out, size_t cap);

/* Decodes len untrusted bytes into op. Returns 0, or -1 with the reason in why. */
int lbw_op_decode(const uint8_t *p, size_t len, struct lbw_op *op, char *why, size_t whylen);

/* Copies s into out[size] as text an op accepts (comments, errors): control characters and
 * invalid UTF-8 become '?', and it is cut at a character boundary to fit. */
void lbw_op_text_clean(const char *s, char *out, size_t size);

/* ---- the ledger -------------------------------------------------------------------------- */

struct lbw_ledger;

struct lbw_ledger *lbw_ledger_new(void);
void lbw_ledger_free(struct lbw_ledger *l);

enum lbw_apply_result { LBW_APPLY_OK = 0, LBW_APPLY_STALE, LBW_APPLY_INVALID,
                        LBW_APPLY_NOMEM };
const char *lbw_apply_result_name(enum lbw_apply_result r);  /* "ok", "stale", ... */

/* What applying one op did: for the caller's counters and logs and for publishing. */
struct lbw_ledger_change {
    enum lbw_op_type type;      /* 0 if it did not decode */
    int64_t time_ms;
    char detail[160];           /* why it was STALE or INVALID */
    uint64_t fingerprint;       /* transition, ack */
    enum lbw_alert_state from, to;      /* transition: absent/removed is INACTIVE */
    uint64_t intent;            /* intent: the new id; receipt: the intent */
    int delivered;              /* receipt: the intent is now delivered */
    uint64_t silence;           /* silence: the new id; expire: the silence */
    struct {                    /* collected as of the op's time, or evicted to make room */
        size_t alerts, intents, abandoned, silences, groups, receivers;
        size_t evicted_alerts, evicted_intents;
    } gc;
};

/* Applies the op of raft entry index (greater than every index applied before). chg may be
 * NULL. */
enum lbw_apply_result lbw_ledger_apply(struct lbw_ledger *l, uint64_t index, const uint8_t *op,
                                       size_t len, struct lbw_ledger_change *chg);

/* The index of the last op that decoded (0 for a new ledger). */
uint64_t lbw_ledger_last_index(const struct lbw_ledger *l);

/* Local counters (not replicated, not serialised): ops by result. */
struct lbw_ledger_stats {
    uint64_t ok, stale, invalid, nomem;
};
void lbw_ledger_stats(const struct lbw_ledger *l, struct lbw_ledger_stats *out);

/* ---- queries ----------------------------------------------------------------------------- */

/* Every entity, in the ledger's order (see above). */
const struct lbw_alert *lbw_ledger_alerts(const struct lbw_ledger *l, size_t *n);
const struct lbw_intent *lbw_ledger_intents(const struct lbw_ledger *l, size_t *n);
const struct lbw_group *lbw_ledger_groups(const struct lbw_ledger *l, size_t *n);
const struct lbw_silence *lbw_ledger_silences(const struct lbw_ledger *l, size_t *n);
const struct lbw_receiver_health *lbw_ledger_receivers(const struct lbw_ledger *l, size_t *n);

/* Lookups; NULL if absent. */
const struct lbw_alert *lbw_ledger_alert(const struct lbw_ledger *l, uint64_t fingerprint);
const struct lbw_intent *lbw_ledger_intent(const struct lbw_ledger *l, uint64_t id);
const struct lbw_group *lbw_ledger_group(const struct lbw_ledger *l, const char *receiver,
                                         const char *key);
const struct lbw_silence *lbw_ledger_silence(const struct lbw_ledger *l, uint64_t id);
const struct lbw_receiver_health *lbw_ledger_receiver(const struct lbw_ledger *l,
                                                      const char *name);

/* Calls fn for every undelivered intent whose next attempt is due at now (next_attempt_at
 * <= now), by ascending id. Returns how many. */
typedef void (*lbw_intent_fn)(void *arg, const struct lbw_intent *in);
size_t lbw_ledger_foreach_due(const struct lbw_ledger *l, int64_t now, lbw_intent_fn fn,
                              void *arg);

/* The earliest next_attempt_at of the undelivered intents, or 0 if there are none. */
int64_t lbw_ledger_next_due(const struct lbw_ledger *l);

/* Calls fn for every silence active at now, or for every silence when now < 0, by id. */
typedef void (*lbw_silence_fn)(void *arg, const struct lbw_silence *s);
size_t lbw_ledger_foreach_silence(const struct lbw_ledger *l, int64_t now, lbw_silence_fn fn,
                                  void *arg);

/* The notification an intent becomes. It points into the ledger (valid until the next
 * apply); external_url is left NULL for the caller. */
void lbw_ledger_notification(const struct lbw_intent *in, struct lbw_notification *out);

/* ---- snapshots --------------------------------------------------------------------------- */

/* A growable byte buffer (malloc). A failed append marks it failed; check once at the end. */
struct lbw_bytes {
    uint8_t *data;
    size_t len, cap;
    int failed;
};
void lbw_bytes_free(struct lbw_bytes *b);

/* Appends the canonical serialisation of the ledger to out (format in ledger.c). Returns 0,
 * or -1 when out of memory. */
int lbw_ledger_serialize(const struct lbw_ledger *l, struct lbw_bytes *out);

/* Replaces the ledger with a serialised one (untrusted: checked completely first). Returns
 * 0; -1 if malformed or -2 if out of memory, and then the ledger is unchanged. */
int lbw_ledger_restore(struct lbw_ledger *l, const uint8_t *p, size_t len);

/* SHA-256 of the serialisation. Returns 0, or -1 when out of memory. */
int lbw_ledger_digest(const struct lbw_ledger *l, uint8_t out[32]);

#endif
