/* test_ledger.c - alerting/ledger: the replicated alert ledger.
 *
 * Every op encodes and decodes to itself, and every malformed variant is refused; apply's
 * results for each op, including the compare-and-set failures (STALE: an old leader's
 * transition after a newer one, a duplicate intent, a receipt for a delivered intent or for
 * the wrong attempt) and impossible ops (INVALID); idempotency keys that two ledgers derive
 * alike; receipts with the backoff schedule and receiver health; garbage collection by op
 * time at its exact boundaries; the capacity bounds; snapshots that round-trip to the same
 * digest and refused snapshots (truncated, corrupted) that change nothing; and replicas fed
 * the same random op sequence (one of them restored from a snapshot half way) that end with
 * the same digest. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerting/ledger.h"
#include "tests/support/ledgerfx.h"

#define T0 LFX_T0
#define SEC LFX_SEC
#define MIN LFX_MIN
#define HOUR LFX_HOUR
#define DAY LFX_DAY

#define WWW "ALERTS{alertname=\"TargetDown\",severity=\"critical\",target=\"www\"}"
#define DB "ALERTS{alertname=\"TargetDown\",severity=\"critical\",target=\"db\"}"
#define CERT "ALERTS{alertname=\"CertExpiringSoon\",severity=\"warning\",target=\"www\"}"
#define ANN "A{summary=\"www is down\"}"
#define GKEY "G{alertname=\"TargetDown\"}"

enum { OK = LBW_APPLY_OK, STALE = LBW_APPLY_STALE, INVALID = LBW_APPLY_INVALID };

static struct lfx fx(void)
{
    struct lfx f;
    assert_int_equal(lfx_init(&f), 0);
    return f;
}

static uint64_t fp(const char *labels)
{
    return lbw_fingerprint(labels, strlen(labels));
}

static const struct lbw_alert *alert(const struct lfx *f, const char *labels)
{
    return lbw_ledger_alert(f->l, fp(labels));
}

static void digest(const struct lbw_ledger *l, uint8_t out[32])
{
    assert_int_equal(lbw_ledger_digest(l, out), 0);
}

static struct lbw_bytes serialize(const struct lbw_ledger *l)
{
    struct lbw_bytes b = {0};
    assert_int_equal(lbw_ledger_serialize(l, &b), 0);
    return b;
}

/* A firing alert, notified to "ops" in group GKEY. Returns the intent id. */
static uint64_t firing_and_notified(struct lfx *f, int64_t t, const char *labels)
{
    assert_int_equal(lfx_transition(f, t, labels, LBW_ALERT_FIRING), OK);
    assert_int_equal(lfx_notify(f, t, "ops", GKEY, &labels, 1), OK);
    return f->index;
}

/* ---- codec ------------------------------------------------------------------------------- */

/* Encodes op, decodes it, re-encodes the decoded op: the same bytes. Returns the length. */
static long round_trip(const struct lbw_op *op, uint8_t *buf, struct lbw_op *back)
{
    uint8_t again[LBW_OP_MAX_BYTES];
    char why[128];
    long n = lbw_op_encode(op, buf, LBW_OP_MAX_BYTES);
    assert_true(n > 0);
    assert_int_equal(lbw_op_decode(buf, (size_t)n, back, why, sizeof(why)), 0);
    assert_int_equal(back->type, op->type);
    assert_int_equal(back->time_ms, op->time_ms);
    assert_int_equal(lbw_op_encode(back, again, sizeof(again)), n);
    assert_memory_equal(again, buf, (size_t)n);
    /* every proper prefix and one byte more are refused */
    for (long i = 0; i < n; i++)
        assert_int_equal(lbw_op_decode(buf, (size_t)i, back, why, sizeof(why)), -1);
    buf[n] = 0;
    assert_int_equal(lbw_op_decode(buf, (size_t)n + 1, back, why, sizeof(why)), -1);
    assert_int_equal(lbw_op_decode(buf, (size_t)n, back, why, sizeof(why)), 0);
    return n;
}

static void op_codec_round_trips(void **state)
{
    (void)state;
    static struct lbw_op op, back;
    uint8_t buf[LBW_OP_MAX_BYTES + 1];

    memset(&op, 0, sizeof(op));
    op.type = LBW_OP_TRANSITION;
    op.time_ms = T0;
    op.transition.expect_seq = 7;
    op.transition.to = LBW_ALERT_FIRING;
    op.transition.severity = LBW_SEV_WARNING;
    op.transition.value = -2.5;
    op.transition.labels = WWW;
    op.transition.annotations = ANN;
    assert_int_equal(round_trip(&op, buf, &back), 2 + 8 + 8 + 2 + 8 + 2 + strlen(WWW) + 2 +
                                                      strlen(ANN));
    assert_int_equal(back.transition.expect_seq, 7);
    assert_int_equal(back.transition.to, LBW_ALERT_FIRING);
    assert_int_equal(back.transition.severity, LBW_SEV_WARNING);
    assert_true(back.transition.value == -2.5);
    assert_string_equal(back.transition.labels, WWW);
    assert_string_equal(back.transition.annotations, ANN);
    assert_int_equal(buf[0], 1);                    /* version */
    assert_int_equal(buf[1], LBW_OP_TRANSITION);

    memset(&op, 0, sizeof(op));
    op.type = LBW_OP_INTENT;
    op.time_ms = T0 + 1;
    op.intent.receiver = "ops-team.1";
    op.intent.group_key = GKEY;
    op.intent.kind = LBW_INTENT_REPEAT;
    op.intent.expect_group = 41;
    op.intent.alerts[0] = (struct lbw_alert_ref){5, 9, LBW_NOTIFY_FIRING};
    op.intent.alerts[1] = (struct lbw_alert_ref){6, 10, LBW_NOTIFY_RESOLVED};
    op.intent.nalerts = 2;
    round_trip(&op, buf, &back);
    assert_string_equal(back.intent.receiver, "ops-team.1");
    assert_string_equal(back.intent.group_key, GKEY);
    assert_int_equal(back.intent.kind, LBW_INTENT_REPEAT);
    assert_int_equal(back.intent.expect_group, 41);
    assert_int_equal(back.intent.nalerts, 2);
    assert_int_equal(back.intent.alerts[1].fingerprint, 6);
    assert_int_equal(back.intent.alerts[1].seq, 10);
    assert_int_equal(back.intent.alerts[1].status, LBW_NOTIFY_RESOLVED);

    memset(&op, 0, sizeof(op));
    op.type = LBW_OP_RECEIPT;
    op.time_ms = T0 + 2;
    op.receipt.intent = 12;
    op.receipt.attempt = 3;
    op.receipt.error = "connect: refused";
    round_trip(&op, buf, &back);
    assert_int_equal(back.receipt.intent, 12);
    assert_int_equal(back.receipt.attempt, 3);
    assert_int_equal(back.receipt.ok, 0);
    assert_string_equal(back.receipt.error, "connect: refused");

    memset(&op, 0, sizeof(op));
    op.type = LBW_OP_SILENCE;
    op.time_ms = T0 + 3;
    op.silence.starts_at = T0;
    op.silence.ends_at = T0 + HOUR;
    op.silence.author = "Zoë";
    op.silence.comment = "";
    op.silence.matchers[0] = (struct lbw_matcher){"target", "www", 0};
    op.silence.matchers[1] = (struct lbw_matcher){"severity", "info", 1};
    op.silence.nmatchers = 2;
    round_trip(&op, buf, &back);
    assert_string_equal(back.silence.author, "Zoë");
    assert_string_equal(back.silence.comment, "");
    assert_int_equal(back.silence.nmatchers, 2);
    assert_string_equal(back.silence.matchers[1].name, "severity");
    assert_string_equal(back.silence.matchers[1].value, "info");
    assert_int_equal(back.silence.matchers[1].negate, 1);
    assert_int_equal(back.silence.ends_at, T0 + HOUR);

    memset(&op, 0, sizeof(op));
    op.type = LBW_OP_EXPIRE_SILENCE;
    op.time_ms = T0 + 4;
    op.expire.silence = 99;
    assert_int_equal(round_trip(&op, buf, &back), 2 + 8 + 8);
    assert_int_equal(back.expire.silence, 99);

    memset(&op, 0, sizeof(op));
    op.type = LBW_OP_ACK;
    op.time_ms = T0 + 5;
    op.ack.fingerprint = 0xfeedface;
    op.ack.expect_seq = 3;
    op.ack.by = "bob";
    op.ack.comment = "on it";
    round_trip(&op, buf, &back);
    assert_int_equal(back.ack.fingerprint, 0xfeedface);
    assert_string_equal(back.ack.by, "bob");
    assert_string_equal(back.ack.comment, "on it");
}

/* Encodes op and expects the encoder (that is, the decoder) to refuse it. */
static void refused(const struct lbw_op *op, const char *what)
{
    uint8_t buf[LBW_OP_MAX_BYTES];
    if (lbw_op_encode(op, buf, sizeof(buf)) >= 0)
        fail_msg("encoded an op with %s", what);
}

static void op_codec_refuses_malformed(void **state)
{
    (void)state;
    static struct lbw_op op, base;
    uint8_t buf[LBW_OP_MAX_BYTES + 1];
    char why[128];

    memset(&base, 0, sizeof(base));
    base.type = LBW_OP_TRANSITION;
    base.time_ms = T0;
    base.transition.to = LBW_ALERT_PENDING;
    base.transition.labels = WWW;
    long n = lbw_op_encode(&base, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal(lbw_op_encode(&base, buf, (size_t)n - 1), -1);   /* no room */

    op = base;
    op.time_ms = 0;
    refused(&op, "time 0");
    op.time_ms = LBW_LEDGER_MAX_TIME + 1;
    refused(&op, "time beyond the range");
    op = base;
    op.transition.labels = "up{target=\"www\"}";
    refused(&op, "labels of another metric");
    op.transition.labels = "ALERTS{target=\"www\"}";
    refused(&op, "no alertname");
    op.transition.labels = "ALERTS{target=\"www\",alertname=\"X\"}";
    refused(&op, "unsorted labels");
    op = base;
    op.transition.annotations = "B{summary=\"x\"}";
    refused(&op, "annotations of another metric");
    op = base;
    op.transition.to = (enum lbw_alert_state)4;
    refused(&op, "state 4");
    op = base;
    op.type = (enum lbw_op_type)9;
    refused(&op, "type 9");

    memset(&op, 0, sizeof(op));
    op.type = LBW_OP_INTENT;
    op.time_ms = T0;
    op.intent.receiver = "ops";
    op.intent.group_key = GKEY;
    op.intent.alerts[0] = (struct lbw_alert_ref){5, 1, LBW_NOTIFY_FIRING};
    op.intent.alerts[1] = (struct lbw_alert_ref){5, 2, LBW_NOTIFY_FIRING};
    op.intent.nalerts = 2;
    refused(&op, "an alert twice");
    op.intent.alerts[1].fingerprint = 4;
    refused(&op, "alerts out of order");
    op.intent.nalerts = 0;
    refused(&op, "no alerts");
    op.intent.nalerts = 1;
    op.intent.receiver = "ops team";
    refused(&op, "a space in the receiver");
    op.intent.receiver = "ops";
    op.intent.group_key = "ALERTS{a=\"b\"}";
    refused(&op, "a group key of another metric");
    op.intent.group_key = GKEY;
    op.intent.kind = LBW_INTENT_ESCALATE;
    op.intent.expect_group = 3;
    refused(&op, "an escalation expecting a group version");
    op.intent.expect_group = 0;
    op.intent.alerts[0].status = LBW_NOTIFY_RESOLVED;
    refused(&op, "an escalation of a resolved alert");
    op.intent.alerts[0].status = LBW_NOTIFY_FIRING;
    op.intent.alerts[0].seq = 0;
    refused(&op, "seq 0");

    memset(&op, 0, sizeof(op));
    op.type = LBW_OP_RECEIPT;
    op.time_ms = T0;
    op.receipt.intent = 3;
    op.receipt.attempt = 1;
    op.receipt.ok = 1;
    op.receipt.error = "x";
    refused(&op, "an error on success");
    op.receipt.ok = 0;
    op.receipt.error = "line\nbreak";
    refused(&op, "a control character");
    op.receipt.error = "\xc3\x28";
    refused(&op, "invalid UTF-8");
    op.receipt.error = NULL;
    op.receipt.attempt = 0;
    refused(&op, "attempt 0");

    memset(&op, 0, sizeof(op));
    op.type = LBW_OP_SILENCE;
    op.time_ms = T0;
    op.silence.starts_at = T0;
    op.silence.ends_at = T0 + MIN;
    op.silence.author = "alice";
    op.silence.matchers[0] = (struct lbw_matcher){"target", "", 0};
    op.silence.matchers[1] = (struct lbw_matcher){"job", "x", 1};
    op.silence.nmatchers = 2;
    refused(&op, "matchers that all match the empty string");
    op.silence.matchers[0].value = "www";
    n = lbw_op_encode(&op, buf, sizeof(buf));
    assert_true(n > 0);
    /* a NUL inside a matcher name ("targe\0"): the name would not be the bytes it came as */
    uint8_t *name = memmem(buf, (size_t)n, "target", 6);
    assert_non_null(name);
    name[5] = '\0';
    assert_int_equal(lbw_op_decode(buf, (size_t)n, &base, why, sizeof(why)), -1);
    assert_string_equal(why, "bad matcher 1");
    op.silence.ends_at = T0;
    refused(&op, "an empty window");
    op.silence.ends_at = T0 + MIN;
    op.silence.author = "";
    refused(&op, "no author");
    op.silence.author = "alice";
    op.silence.matchers[0].name = "1target";
    refused(&op, "a bad label name");
    op.silence.nmatchers = 0;
    refused(&op, "no matchers");

    memset(&op, 0, sizeof(op));
    op.type = LBW_OP_ACK;
    op.time_ms = T0;
    op.ack.fingerprint = 1;
    op.ack.by = "bob";
    refused(&op, "expected seq 0");

    /* Raw bytes: version, a boolean that is neither 0 nor 1, a string running past the end. */
    memset(&op, 0, sizeof(op));
    op.type = LBW_OP_RECEIPT;
    op.time_ms = T0;
    op.receipt.intent = 3;
    op.receipt.attempt = 1;
    op.receipt.ok = 1;
    n = lbw_op_encode(&op, buf, sizeof(buf));
    assert_true(n > 0);
    buf[0] = 2;
    assert_int_equal(lbw_op_decode(buf, (size_t)n, &op, why, sizeof(why)), -1);
    assert_string_equal(why, "op version 2");
    buf[0] = 1;
    buf[n - 3] = 2;     /* ok */
    assert_int_equal(lbw_op_decode(buf, (size_t)n, &op, why, sizeof(why)), -1);
    buf[n - 3] = 1;
    buf[n - 1] = 1;     /* error length 1, no byte */
    assert_int_equal(lbw_op_decode(buf, (size_t)n, &op, why, sizeof(why)), -1);
}

static void text_clean(void **state)
{
    (void)state;
    char out[8];
    lbw_op_text_clean("a\nb\xff" "c", out, sizeof(out));
    assert_string_equal(out, "a?b?c");
    lbw_op_text_clean("abcdéfgh", out, sizeof(out));  /* é is 2 bytes */
    assert_string_equal(out, "abcdéf");
    lbw_op_text_clean("abcdefé", out, sizeof(out));   /* no room for é: cut before it */
    assert_string_equal(out, "abcdef");
}

/* ---- transitions ------------------------------------------------------------------------- */

static void transitions_lifecycle(void **state)
{
    (void)state;
    struct lfx f = fx();
    assert_int_equal(lfx_transition_expect(&f, T0, WWW, LBW_ALERT_PENDING, 0, ANN, 3.5), OK);
    assert_int_equal(f.chg.type, LBW_OP_TRANSITION);
    assert_int_equal(f.chg.from, LBW_ALERT_INACTIVE);
    assert_int_equal(f.chg.to, LBW_ALERT_PENDING);
    assert_int_equal(f.chg.fingerprint, fp(WWW));
    const struct lbw_alert *a = alert(&f, WWW);
    assert_non_null(a);
    assert_string_equal(a->labels, WWW);
    assert_string_equal(a->annotations, ANN);
    assert_int_equal(a->state, LBW_ALERT_PENDING);
    assert_int_equal(a->seq, 1);
    assert_int_equal(a->active_since, T0);
    assert_int_equal(a->firing_since, 0);
    assert_true(a->value == 3.5);

    assert_int_equal(lfx_transition(&f, T0 + MIN, WWW, LBW_ALERT_FIRING), OK);
    a = alert(&f, WWW);
    assert_int_equal(a->state, LBW_ALERT_FIRING);
    assert_int_equal(a->seq, 2);
    assert_int_equal(a->active_since, T0);
    assert_int_equal(a->firing_since, T0 + MIN);
    assert_null(a->annotations);    /* annotations are the last transition's */
    assert_int_equal(lfx_ack(&f, T0 + 2 * MIN, WWW, 2, "bob"), OK);
    assert_true(alert(&f, WWW)->ack.acked);

    assert_int_equal(lfx_transition(&f, T0 + 3 * MIN, WWW, LBW_ALERT_RESOLVED), OK);
    a = alert(&f, WWW);
    assert_int_equal(a->resolved_at, T0 + 3 * MIN);
    assert_int_equal(a->changed_at, T0 + 3 * MIN);
    assert_true(a->ack.acked);      /* until the next episode */

    /* resolved -> firing: a new episode */
    assert_int_equal(lfx_transition(&f, T0 + 4 * MIN, WWW, LBW_ALERT_FIRING), OK);
    a = alert(&f, WWW);
    assert_int_equal(a->seq, 5);
    assert_int_equal(a->active_since, T0 + 4 * MIN);
    assert_int_equal(a->firing_since, T0 + 4 * MIN);
    assert_int_equal(a->resolved_at, 0);
    assert_false(a->ack.acked);
    assert_null(a->ack.by);

    /* pending -> inactive removes the alert */
    assert_int_equal(lfx_transition(&f, T0, DB, LBW_ALERT_PENDING), OK);
    assert_int_equal(lfx_transition(&f, T0 + SEC, DB, LBW_ALERT_INACTIVE), OK);
    assert_int_equal(f.chg.from, LBW_ALERT_PENDING);
    assert_int_equal(f.chg.to, LBW_ALERT_INACTIVE);
    assert_null(alert(&f, DB));
    size_t n;
    lbw_ledger_alerts(f.l, &n);
    assert_int_equal(n, 1);
    lfx_free(&f);
}

static void transitions_stale_and_invalid(void **state)
{
    (void)state;
    struct lfx f = fx();
    assert_int_equal(lfx_transition(&f, T0, WWW, LBW_ALERT_FIRING), OK);
    uint64_t seq = lfx_seq(&f, WWW);

    /* Two leaders both saw the alert firing at seq 1 and resolved it: the second is STALE. */
    assert_int_equal(lfx_transition_expect(&f, T0 + MIN, WWW, LBW_ALERT_RESOLVED, seq, NULL, 0),
                     OK);
    assert_int_equal(lfx_transition_expect(&f, T0 + MIN, WWW, LBW_ALERT_RESOLVED, seq, NULL, 0),
                     STALE);
    assert_string_equal(f.chg.detail, "alert seq is 2, op expects 1");
    /* An old leader's transition after a newer one: re-fire planned at seq 1. */
    assert_int_equal(lfx_transition_expect(&f, T0 + MIN, WWW, LBW_ALERT_FIRING, seq, NULL, 0),
                     STALE);
    /* Creating what exists. */
    assert_int_equal(lfx_transition_expect(&f, T0 + MIN, WWW, LBW_ALERT_FIRING, 0, NULL, 0),
                     STALE);
    /* A transition of an alert that is gone. */
    assert_int_equal(lfx_transition_expect(&f, T0 + MIN, DB, LBW_ALERT_RESOLVED, 7, NULL, 0),
                     STALE);
    assert_int_equal(alert(&f, WWW)->seq, 2);
    assert_int_equal(alert(&f, WWW)->state, LBW_ALERT_RESOLVED);
    assert_int_equal(alert(&f, WWW)->resolved_at, T0 + MIN);
    assert_null(alert(&f, DB));

    /* Illegal transitions. */
    assert_int_equal(lfx_transition(&f, T0 + MIN, WWW, LBW_ALERT_RESOLVED), INVALID);
    assert_string_equal(f.chg.detail, "illegal transition resolved -> resolved");
    assert_int_equal(lfx_transition(&f, T0 + MIN, WWW, LBW_ALERT_INACTIVE), INVALID);
    assert_int_equal(lfx_transition(&f, T0 + MIN, DB, LBW_ALERT_RESOLVED), INVALID);
    assert_int_equal(lfx_transition(&f, T0 + MIN, DB, LBW_ALERT_INACTIVE), INVALID);
    assert_int_equal(lfx_transition(&f, T0 + MIN, DB, LBW_ALERT_FIRING), OK);
    assert_int_equal(lfx_transition(&f, T0 + MIN, DB, LBW_ALERT_PENDING), INVALID);
    assert_int_equal(lfx_transition(&f, T0 + MIN, DB, LBW_ALERT_INACTIVE), INVALID);

    struct lbw_ledger_stats st;
    lbw_ledger_stats(f.l, &st);
    assert_int_equal(st.ok, 3);
    assert_int_equal(st.stale, 4);
    assert_int_equal(st.invalid, 6);
    lfx_free(&f);
}

static void apply_refuses_garbage_and_old_indexes(void **state)
{
    (void)state;
    struct lfx f = fx();
    struct lbw_ledger_change chg;
    uint8_t before[32], after[32], junk[3] = {1, 1, 0};
    assert_int_equal(lfx_transition(&f, T0, WWW, LBW_ALERT_FIRING), OK);
    digest(f.l, before);
    assert_int_equal(lbw_ledger_apply(f.l, 2, junk, sizeof(junk), &chg), INVALID);
    assert_int_equal(chg.type, 0);
    assert_string_equal(chg.detail, "truncated op");
    assert_int_equal(lbw_ledger_apply(f.l, 3, NULL, 0, NULL), INVALID);
    f.index = 0;    /* the next op would reuse index 1 */
    assert_int_equal(lfx_transition(&f, T0, DB, LBW_ALERT_FIRING), INVALID);
    assert_string_equal(f.chg.detail, "index 1 is not after 1");
    digest(f.l, after);
    assert_memory_equal(before, after, 32);
    assert_int_equal(lbw_ledger_last_index(f.l), 1);
    lfx_free(&f);
}

/* ---- intents ----------------------------------------------------------------------------- */

static void is_hex_key(const char *k)
{
    assert_int_equal(strlen(k), 64);
    assert_true(strlen(k) < LBW_IDEM_KEY_MAX);
    assert_int_equal(strspn(k, "0123456789abcdef"), 64);
}

static void intents_copy_group_and_key(void **state)
{
    (void)state;
    struct lfx f = fx();
    const char *both[] = {WWW, DB};
    assert_int_equal(lfx_transition_expect(&f, T0, WWW, LBW_ALERT_FIRING, 0, ANN, 1), OK);
    assert_int_equal(lfx_transition(&f, T0, DB, LBW_ALERT_FIRING), OK);
    assert_int_equal(lfx_notify(&f, T0 + 30 * SEC, "ops", GKEY, both, 2), OK);
    uint64_t id = f.index;
    assert_int_equal(f.chg.intent, id);

    const struct lbw_intent *in = lbw_ledger_intent(f.l, id);
    assert_non_null(in);
    assert_string_equal(in->receiver, "ops");
    assert_string_equal(in->group_key, GKEY);
    assert_int_equal(in->kind, LBW_INTENT_NOTIFY);
    assert_int_equal(in->created_at, T0 + 30 * SEC);
    assert_int_equal(in->next_attempt_at, T0 + 30 * SEC);
    assert_int_equal(in->nalerts, 2);
    assert_false(in->delivered);
    is_hex_key(in->idempotency_key);
    /* copies by fingerprint, with annotations and start */
    int www_first = fp(WWW) < fp(DB);
    const struct lbw_notify_alert *cw = &in->alerts[www_first ? 0 : 1];
    assert_string_equal(cw->labels, WWW);
    assert_string_equal(cw->annotations, ANN);
    assert_int_equal(cw->starts_at_ms, T0);
    assert_int_equal(cw->ends_at_ms, 0);
    assert_int_equal(cw->status, LBW_NOTIFY_FIRING);
    assert_int_equal(in->seqs[www_first ? 0 : 1], 1);
    assert_null(in->alerts[www_first ? 1 : 0].annotations);

    const struct lbw_group *g = lbw_ledger_group(f.l, "ops", GKEY);
    assert_non_null(g);
    assert_int_equal(g->version, id);
    assert_int_equal(g->first_at, T0 + 30 * SEC);
    assert_int_equal(g->last_notified_at, T0 + 30 * SEC);
    assert_int_equal(g->nmembers, 2);
    assert_true(g->members[0].fingerprint < g->members[1].fingerprint);
    const struct lbw_receiver_health *h = lbw_ledger_receiver(f.l, "ops");
    assert_non_null(h);
    assert_int_equal(h->consecutive_failures, 0);

    struct lbw_notification nt;
    lbw_ledger_notification(in, &nt);
    assert_string_equal(nt.receiver, "ops");
    assert_string_equal(nt.group_key, GKEY);
    assert_ptr_equal(nt.alerts, in->alerts);
    assert_int_equal(nt.nalerts, 2);
    assert_ptr_equal(nt.idempotency_key, in->idempotency_key);
    assert_int_equal(nt.status, LBW_NOTIFY_FIRING);
    assert_false(nt.escalation);
    assert_null(nt.external_url);

    /* A resolved alert is notified once, then leaves the group's set. */
    assert_int_equal(lfx_transition(&f, T0 + HOUR, DB, LBW_ALERT_RESOLVED), OK);
    assert_int_equal(lfx_notify(&f, T0 + HOUR, "ops", GKEY, both, 2), OK);
    in = lbw_ledger_intent(f.l, f.index);
    assert_int_equal(in->alerts[www_first ? 1 : 0].status, LBW_NOTIFY_RESOLVED);
    assert_int_equal(in->alerts[www_first ? 1 : 0].ends_at_ms, T0 + HOUR);
    g = lbw_ledger_group(f.l, "ops", GKEY);
    assert_int_equal(g->version, f.index);
    assert_int_equal(g->first_at, T0 + 30 * SEC);
    assert_int_equal(g->nmembers, 1);
    assert_int_equal(g->members[0].fingerprint, fp(WWW));
    lfx_free(&f);
}

static void intents_stale(void **state)
{
    (void)state;
    struct lfx f = fx();
    assert_int_equal(lfx_transition(&f, T0, WWW, LBW_ALERT_FIRING), OK);
    struct lbw_alert_ref r = lfx_ref(&f, WWW);

    /* Two leaders plan the same notification: the second is STALE. */
    assert_int_equal(lfx_intent(&f, T0, "ops", GKEY, LBW_INTENT_NOTIFY, 0, &r, 1), OK);
    uint64_t first = f.index;
    assert_int_equal(lfx_intent(&f, T0, "ops", GKEY, LBW_INTENT_NOTIFY, 0, &r, 1), STALE);
    assert_int_equal(lfx_intent(&f, T0, "ops", GKEY, LBW_INTENT_REPEAT, 0, &r, 1), STALE);
    assert_string_equal(f.chg.detail, "group version is 2, op expects 0");
    size_t n;
    lbw_ledger_intents(f.l, &n);
    assert_int_equal(n, 1);
    /* A repeat on the current version is fine. */
    assert_int_equal(lfx_intent(&f, T0 + HOUR, "ops", GKEY, LBW_INTENT_REPEAT, first, &r, 1), OK);
    assert_int_equal(lbw_ledger_group(f.l, "ops", GKEY)->version, f.index);

    /* The alert moved on: its old seq, or the wrong status. */
    assert_int_equal(lfx_transition(&f, T0 + 2 * HOUR, WWW, LBW_ALERT_RESOLVED), OK);
    assert_int_equal(lfx_intent(&f, T0, "ops", "G", LBW_INTENT_NOTIFY, 0, &r, 1), STALE);
    r = lfx_ref(&f, WWW);
    r.status = LBW_NOTIFY_FIRING;
    assert_int_equal(lfx_intent(&f, T0, "ops", "G", LBW_INTENT_NOTIFY, 0, &r, 1), STALE);
    /* An alert that does not exist. */
    r.fingerprint++;
    assert_int_equal(lfx_intent(&f, T0, "ops", "G", LBW_INTENT_NOTIFY, 0, &r, 1), STALE);
    assert_null(lbw_ledger_group(f.l, "ops", "G"));
    /* A pending alert is not notified. */
    assert_int_equal(lfx_transition(&f, T0, DB, LBW_ALERT_PENDING), OK);
    assert_int_equal(lfx_notify(&f, T0, "ops", "G", (const char *[]){DB}, 1), STALE);
    lfx_free(&f);
}

static void escalation_once_per_episode(void **state)
{
    (void)state;
    struct lfx f = fx();
    assert_int_equal(lfx_transition(&f, T0, WWW, LBW_ALERT_FIRING), OK);
    struct lbw_alert_ref r = lfx_ref(&f, WWW);
    assert_int_equal(lfx_intent(&f, T0 + HOUR, "oncall", GKEY, LBW_INTENT_ESCALATE, 0, &r, 1),
                     OK);
    const struct lbw_intent *in = lbw_ledger_intent(f.l, f.index);
    struct lbw_notification nt;
    lbw_ledger_notification(in, &nt);
    assert_true(nt.escalation);
    assert_true(alert(&f, WWW)->escalated);
    assert_null(lbw_ledger_group(f.l, "oncall", GKEY)); /* escalations keep no group */
    assert_non_null(lbw_ledger_receiver(f.l, "oncall"));

    assert_int_equal(lfx_intent(&f, T0 + HOUR, "oncall", GKEY, LBW_INTENT_ESCALATE, 0, &r, 1),
                     STALE);
    assert_string_equal(f.chg.detail + strlen(f.chg.detail) - 17, "already escalated");

    /* A new episode may escalate again. */
    assert_int_equal(lfx_transition(&f, T0 + 2 * HOUR, WWW, LBW_ALERT_RESOLVED), OK);
    assert_true(alert(&f, WWW)->escalated);
    assert_int_equal(lfx_transition(&f, T0 + 2 * HOUR + MIN, WWW, LBW_ALERT_FIRING), OK);
    assert_false(alert(&f, WWW)->escalated);
    r = lfx_ref(&f, WWW);
    assert_int_equal(lfx_intent(&f, T0 + 4 * HOUR, "oncall", GKEY, LBW_INTENT_ESCALATE, 0, &r, 1),
                     OK);
    lfx_free(&f);
}

static void idempotency_keys_agree_across_replicas(void **state)
{
    (void)state;
    struct lfx a = fx(), b = fx();
    const char *one[] = {WWW};
    for (struct lfx *f = &a; f; f = f == &a ? &b : NULL) {
        firing_and_notified(f, T0, WWW);
        assert_int_equal(lfx_intent(f, T0 + 4 * HOUR, "ops", GKEY, LBW_INTENT_REPEAT, f->index,
                                    (struct lbw_alert_ref[]){lfx_ref(f, WWW)}, 1),
                         OK);
        assert_int_equal(lfx_notify(f, T0, "sms", GKEY, one, 1), OK);
    }
    /* a second repeat of the same alerts is a notification of its own too */
    for (struct lfx *f = &a; f; f = f == &a ? &b : NULL)
        assert_int_equal(lfx_intent(f, T0 + 8 * HOUR, "ops", GKEY, LBW_INTENT_REPEAT,
                                    lbw_ledger_group(f->l, "ops", GKEY)->version,
                                    (struct lbw_alert_ref[]){lfx_ref(f, WWW)}, 1),
                         OK);
    size_t na, nb;
    const struct lbw_intent *ia = lbw_ledger_intents(a.l, &na), *ib = lbw_ledger_intents(b.l, &nb);
    assert_int_equal(na, 4);
    assert_int_equal(nb, 4);
    for (size_t i = 0; i < na; i++) {
        is_hex_key(ia[i].idempotency_key);
        assert_string_equal(ia[i].idempotency_key, ib[i].idempotency_key);
    }
    /* a repeat and another receiver have keys of their own */
    assert_string_not_equal(ia[0].idempotency_key, ia[1].idempotency_key);
    assert_string_not_equal(ia[0].idempotency_key, ia[2].idempotency_key);
    assert_string_not_equal(ia[1].idempotency_key, ia[2].idempotency_key);
    assert_string_not_equal(ia[1].idempotency_key, ia[3].idempotency_key);

    /* The same content at another raft index and time: the same key. */
    struct lfx c = fx();
    c.index = 100;
    assert_int_equal(lfx_transition(&c, T0 + DAY, WWW, LBW_ALERT_FIRING), OK);
    assert_int_equal(lfx_notify(&c, T0 + DAY, "ops", GKEY, one, 1), OK);
    const struct lbw_intent *ic = lbw_ledger_intent(c.l, c.index);
    assert_string_not_equal(ic->idempotency_key, ia[0].idempotency_key); /* other alert seq */
    lfx_free(&c);
    c = fx();
    assert_int_equal(lfx_transition(&c, T0 + DAY, WWW, LBW_ALERT_FIRING), OK);
    assert_int_equal(lfx_notify(&c, T0 + 2 * DAY, "ops", GKEY, one, 1), OK);
    assert_string_equal(lbw_ledger_intent(c.l, c.index)->idempotency_key,
                        ia[0].idempotency_key);
    lfx_free(&a);
    lfx_free(&b);
    lfx_free(&c);
}

/* ---- receipts ---------------------------------------------------------------------------- */

struct due {
    uint64_t ids[8];
    size_t n;
};

static void collect_due(void *arg, const struct lbw_intent *in)
{
    struct due *d = arg;
    d->ids[d->n++] = in->id;
}

static size_t due_at(const struct lfx *f, int64_t now, struct due *d)
{
    memset(d, 0, sizeof(*d));
    return lbw_ledger_foreach_due(f->l, now, collect_due, d);
}

static void receipts_backoff_and_health(void **state)
{
    (void)state;
    static const int64_t delays[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300};
    struct lfx f = fx();
    struct due d;
    uint64_t id = firing_and_notified(&f, T0, WWW);
    assert_int_equal(lbw_ledger_next_due(f.l), T0);
    assert_int_equal(due_at(&f, T0 - 1, &d), 0);
    assert_int_equal(due_at(&f, T0, &d), 1);
    assert_int_equal(d.ids[0], id);

    int64_t t = T0;
    for (uint32_t a = 1; a <= 12; a++) {
        t += 7 * SEC;
        assert_int_equal(lfx_receipt(&f, t, id, a, 0, "HTTP 503"), OK);
        assert_false(f.chg.delivered);
        const struct lbw_intent *in = lbw_ledger_intent(f.l, id);
        assert_int_equal(in->attempts, a);
        assert_int_equal(in->last_attempt_at, t);
        assert_string_equal(in->last_error, "HTTP 503");
        assert_int_equal(in->next_attempt_at, t + delays[a - 1] * SEC);
        assert_int_equal(lbw_ledger_next_due(f.l), t + delays[a - 1] * SEC);
        assert_int_equal(due_at(&f, t + delays[a - 1] * SEC - 1, &d), 0);
        assert_int_equal(due_at(&f, t + delays[a - 1] * SEC, &d), 1);
        const struct lbw_receiver_health *h = lbw_ledger_receiver(f.l, "ops");
        assert_int_equal(h->consecutive_failures, a);
        assert_int_equal(h->last_failure_at, t);
        assert_string_equal(h->last_error, "HTTP 503");
    }
    /* Wrong attempt numbers: a receipt recorded twice, or from the future. */
    assert_int_equal(lfx_receipt(&f, t, id, 12, 1, NULL), STALE);
    assert_string_equal(f.chg.detail, "not the next attempt");
    assert_int_equal(lfx_receipt(&f, t, id, 14, 1, NULL), STALE);
    assert_int_equal(lfx_receipt(&f, t, id + 1, 1, 1, NULL), STALE);
    assert_string_equal(f.chg.detail, "no such intent (collected or evicted)");

    assert_int_equal(lfx_receipt(&f, t + MIN, id, 13, 1, NULL), OK);
    assert_true(f.chg.delivered);
    const struct lbw_intent *in = lbw_ledger_intent(f.l, id);
    assert_true(in->delivered);
    assert_int_equal(in->delivered_at, t + MIN);
    assert_int_equal(in->attempts, 13);
    assert_string_equal(in->last_error, "HTTP 503");    /* the last failure's, kept */
    const struct lbw_receiver_health *h = lbw_ledger_receiver(f.l, "ops");
    assert_int_equal(h->consecutive_failures, 0);
    assert_int_equal(h->last_success_at, t + MIN);
    assert_int_equal(due_at(&f, t + DAY, &d), 0);
    assert_int_equal(lbw_ledger_next_due(f.l), 0);

    /* A receipt for a delivered intent (a second delivery's, from an old leader). */
    assert_int_equal(lfx_receipt(&f, t + MIN, id, 14, 1, NULL), STALE);
    assert_string_equal(f.chg.detail, "intent already delivered");
    assert_int_equal(lfx_receipt(&f, t + MIN, id, 14, 0, "late"), STALE);
    assert_int_equal(lbw_ledger_receiver(f.l, "ops")->consecutive_failures, 0);
    lfx_free(&f);
}

/* ---- silences and acknowledgements ------------------------------------------------------- */

struct ids {
    uint64_t v[8];
    size_t n;
};

static void collect_silence(void *arg, const struct lbw_silence *s)
{
    struct ids *ids = arg;
    ids->v[ids->n++] = s->id;
}

static void silences_window_and_expiry(void **state)
{
    (void)state;
    struct lfx f = fx();
    struct ids ids = {0};
    struct lbw_matcher m[] = {{"target", "www", 0}};
    assert_int_equal(lfx_silence(&f, T0, T0 + HOUR, T0 + 2 * HOUR, m, 1), OK);
    uint64_t later = f.index;
    assert_int_equal(f.chg.silence, later);
    assert_int_equal(lfx_silence(&f, T0, T0, T0 + HOUR, m, 1), OK);
    uint64_t now = f.index;
    const struct lbw_silence *s = lbw_ledger_silence(f.l, now);
    assert_non_null(s);
    assert_string_equal(s->author, "alice");
    assert_string_equal(s->comment, "maintenance");
    assert_int_equal(s->created_at, T0);
    assert_int_equal(s->nmatchers, 1);
    assert_string_equal(s->matchers[0].name, "target");
    assert_string_equal(s->matchers[0].value, "www");
    assert_true(lbw_silence_active(s, T0));
    assert_true(lbw_silence_active(s, T0 + HOUR - 1));
    assert_false(lbw_silence_active(s, T0 + HOUR));
    assert_false(lbw_silence_active(lbw_ledger_silence(f.l, later), T0 + HOUR - 1));

    assert_int_equal(lbw_ledger_foreach_silence(f.l, T0, collect_silence, &ids), 1);
    assert_int_equal(ids.v[0], now);
    ids.n = 0;
    assert_int_equal(lbw_ledger_foreach_silence(f.l, -1, collect_silence, &ids), 2);
    assert_int_equal(ids.v[0], later);

    /* Expiring: a future silence ends (and starts) now; expiring twice is STALE. */
    assert_int_equal(lfx_expire(&f, T0 + MIN, later), OK);
    s = lbw_ledger_silence(f.l, later);
    assert_int_equal(s->ends_at, T0 + MIN);
    assert_int_equal(s->starts_at, T0 + MIN);
    assert_int_equal(lfx_expire(&f, T0 + 2 * MIN, later), STALE);
    assert_string_equal(f.chg.detail, "silence already ended");
    assert_int_equal(lfx_expire(&f, T0 + 2 * MIN, now), OK);
    assert_int_equal(lbw_ledger_silence(f.l, now)->ends_at, T0 + 2 * MIN);
    assert_int_equal(lfx_expire(&f, T0 + 2 * MIN, 12345), STALE);
    /* A silence that is over before it is created. */
    assert_int_equal(lfx_silence(&f, T0 + HOUR, T0, T0 + HOUR, m, 1), INVALID);
    lfx_free(&f);
}

static void acks(void **state)
{
    (void)state;
    struct lfx f = fx();
    assert_int_equal(lfx_transition(&f, T0, WWW, LBW_ALERT_PENDING), OK);
    assert_int_equal(lfx_ack(&f, T0 + SEC, WWW, 1, "bob"), OK);
    assert_int_equal(lfx_transition(&f, T0 + MIN, WWW, LBW_ALERT_FIRING), OK);
    /* The ack was for the episode: it stays when the alert fires. */
    const struct lbw_alert *a = alert(&f, WWW);
    assert_true(a->ack.acked);
    assert_string_equal(a->ack.by, "bob");
    assert_string_equal(a->ack.comment, "looking");
    assert_int_equal(a->ack.at, T0 + SEC);
    /* An ack for what the operator saw before: STALE; again now: replaces it. */
    assert_int_equal(lfx_ack(&f, T0 + 2 * MIN, WWW, 1, "carol"), STALE);
    assert_string_equal(f.chg.detail, "alert changed");
    assert_int_equal(lfx_ack(&f, T0 + 2 * MIN, WWW, lfx_seq(&f, WWW), "carol"), OK);
    assert_string_equal(alert(&f, WWW)->ack.by, "carol");
    assert_int_equal(lfx_ack(&f, T0, DB, 1, "carol"), STALE);
    assert_string_equal(f.chg.detail, "alert gone");
    assert_int_equal(lfx_transition(&f, T0 + 3 * MIN, WWW, LBW_ALERT_RESOLVED), OK);
    assert_int_equal(lfx_ack(&f, T0 + 4 * MIN, WWW, lfx_seq(&f, WWW), "carol"), INVALID);
    lfx_free(&f);
}

/* ---- garbage collection ------------------------------------------------------------------ */

/* An op that only lets time pass: expiring a silence that does not exist (STALE). */
static void tick(struct lfx *f, int64_t t)
{
    assert_int_equal(lfx_expire(f, t, 999999), STALE);
}

static void gc_by_op_time(void **state)
{
    (void)state;
    struct lfx f = fx();
    size_t n;
    struct lbw_matcher m[] = {{"target", "www", 0}};

    /* group and intent for WWW (delivered) and DB (never delivered) */
    uint64_t iw = firing_and_notified(&f, T0, WWW);
    assert_int_equal(lfx_transition(&f, T0, DB, LBW_ALERT_FIRING), OK);
    assert_int_equal(lfx_notify(&f, T0, "sms", "G", (const char *[]){DB}, 1), OK);
    uint64_t idb = f.index;
    assert_int_equal(lfx_receipt(&f, T0 + MIN, iw, 1, 1, NULL), OK);
    assert_int_equal(lfx_silence(&f, T0, T0, T0 + HOUR, m, 1), OK);
    assert_int_equal(lfx_transition(&f, T0 + 2 * MIN, WWW, LBW_ALERT_RESOLVED), OK);

    /* resolved alerts: 1 h after resolution */
    tick(&f, T0 + 2 * MIN + HOUR - 1);
    assert_non_null(alert(&f, WWW));
    assert_int_equal(f.chg.gc.alerts, 0);
    tick(&f, T0 + 2 * MIN + HOUR);
    assert_null(alert(&f, WWW));
    assert_int_equal(f.chg.gc.alerts, 1);
    assert_non_null(alert(&f, DB)); /* firing: kept */

    /* undelivered intents: abandoned 24 h after creation */
    tick(&f, T0 + DAY - 1);
    assert_non_null(lbw_ledger_intent(f.l, idb));
    tick(&f, T0 + DAY);
    assert_null(lbw_ledger_intent(f.l, idb));
    assert_int_equal(f.chg.gc.abandoned, 1);
    assert_int_equal(f.chg.gc.intents, 0);
    /* groups: 24 h after their last notification, unless an alert they notified still
       fires in that episode (DB for sms); WWW is gone, so the ops group goes */
    assert_non_null(lbw_ledger_group(f.l, "sms", "G"));
    assert_non_null(lbw_ledger_receiver(f.l, "sms"));
    assert_null(lbw_ledger_group(f.l, "ops", GKEY));
    assert_int_equal(f.chg.gc.groups, 1);

    /* delivered intents: 24 h after delivery; then nothing names ops */
    tick(&f, T0 + MIN + DAY - 1);
    assert_non_null(lbw_ledger_intent(f.l, iw));
    assert_non_null(lbw_ledger_receiver(f.l, "ops"));
    tick(&f, T0 + MIN + DAY);
    assert_null(lbw_ledger_intent(f.l, iw));
    assert_int_equal(f.chg.gc.intents, 1);
    assert_null(lbw_ledger_receiver(f.l, "ops"));
    assert_int_equal(f.chg.gc.receivers, 1);

    /* silences: 24 h after they ended */
    tick(&f, T0 + HOUR + DAY - 1);
    lbw_ledger_silences(f.l, &n);
    assert_int_equal(n, 1);
    tick(&f, T0 + HOUR + DAY);
    lbw_ledger_silences(f.l, &n);
    assert_int_equal(n, 0);
    assert_int_equal(f.chg.gc.silences, 1);

    /* the sms group goes once DB resolves (its last notification is long past) */
    assert_int_equal(lfx_transition(&f, T0 + 2 * DAY, DB, LBW_ALERT_RESOLVED), OK);
    assert_non_null(lbw_ledger_group(f.l, "sms", "G"));    /* collected before the op */
    tick(&f, T0 + 2 * DAY + SEC);
    assert_null(lbw_ledger_group(f.l, "sms", "G"));
    assert_null(lbw_ledger_receiver(f.l, "sms"));
    assert_int_equal(f.chg.gc.receivers, 1);

    /* An op far in the past collects nothing: time is each op's own. */
    lbw_ledger_alerts(f.l, &n);
    assert_int_equal(n, 1);
    tick(&f, T0);
    lbw_ledger_alerts(f.l, &n);
    assert_int_equal(n, 1);
    lfx_free(&f);
}

/* ---- bounds ------------------------------------------------------------------------------ */

static void labels_n(char *out, size_t i)
{
    snprintf(out, LBW_KEY_MAX, "ALERTS{alertname=\"A\",n=\"%zu\"}", i);
}

static void bounds_alerts(void **state)
{
    (void)state;
    struct lfx f = fx();
    char labels[LBW_KEY_MAX];
    size_t n;
    for (size_t i = 0; i < LBW_LEDGER_MAX_ALERTS; i++) {
        labels_n(labels, i);
        assert_int_equal(lfx_transition(&f, T0 + (int64_t)i, labels, LBW_ALERT_FIRING), OK);
    }
    labels_n(labels, LBW_LEDGER_MAX_ALERTS);
    assert_int_equal(lfx_transition(&f, T0 + DAY, labels, LBW_ALERT_FIRING), INVALID);
    assert_string_equal(f.chg.detail, "alert table full");
    /* with resolved alerts, the one resolved longest ago makes room */
    char r1[LBW_KEY_MAX], r2[LBW_KEY_MAX];
    labels_n(r1, 7);
    labels_n(r2, 3);
    assert_int_equal(lfx_transition(&f, T0 + DAY, r1, LBW_ALERT_RESOLVED), OK);
    assert_int_equal(lfx_transition(&f, T0 + DAY + 1, r2, LBW_ALERT_RESOLVED), OK);
    assert_int_equal(lfx_transition(&f, T0 + DAY + 2, labels, LBW_ALERT_FIRING), OK);
    assert_int_equal(f.chg.gc.evicted_alerts, 1);
    assert_null(alert(&f, r1));
    assert_non_null(alert(&f, r2));
    lbw_ledger_alerts(f.l, &n);
    assert_int_equal(n, LBW_LEDGER_MAX_ALERTS);
    lfx_free(&f);
}

/* A notify intent to (receiver, key) on the group's current version. */
static int notify_refs(struct lfx *f, const char *receiver, const char *key,
                       const struct lbw_alert_ref *r, size_t n)
{
    const struct lbw_group *g = lbw_ledger_group(f->l, receiver, key);
    return lfx_intent(f, T0, receiver, key, LBW_INTENT_NOTIFY, g ? g->version : 0, r, n);
}

static uint64_t oldest_delivered(const struct lfx *f)
{
    size_t n;
    const struct lbw_intent *in = lbw_ledger_intents(f->l, &n);
    for (size_t i = 0; i < n; i++)
        if (in[i].delivered)
            return in[i].id;
    return 0;
}

static void bounds_intents(void **state)
{
    (void)state;
    struct lfx f = fx();
    size_t n;
    char key[64], recv[16];
    assert_int_equal(lfx_transition(&f, T0, WWW, LBW_ALERT_FIRING), OK);
    struct lbw_alert_ref r = lfx_ref(&f, WWW);

    /* A receiver's undelivered intents beyond LBW_LEDGER_MAX_PENDING: its oldest goes. */
    for (int i = 0; i < LBW_LEDGER_MAX_PENDING; i++) {
        snprintf(key, sizeof(key), "G{n=\"%d\"}", i);
        assert_int_equal(lfx_intent(&f, T0, "dead", key, LBW_INTENT_NOTIFY, 0, &r, 1), OK);
        assert_int_equal(f.chg.gc.evicted_intents, 0);
    }
    const struct lbw_intent *in = lbw_ledger_intents(f.l, &n);
    uint64_t oldest = in[0].id;
    assert_int_equal(n, LBW_LEDGER_MAX_PENDING);
    assert_int_equal(lfx_intent(&f, T0, "dead", "G", LBW_INTENT_NOTIFY, 0, &r, 1), OK);
    assert_int_equal(f.chg.gc.evicted_intents, 1);
    assert_null(lbw_ledger_intent(f.l, oldest));
    lbw_ledger_intents(f.l, &n);
    assert_int_equal(n, LBW_LEDGER_MAX_PENDING);

    /* A full table: the oldest delivered intent makes room. */
    for (int i = 0; n < LBW_LEDGER_MAX_INTENTS; i++) {
        snprintf(recv, sizeof(recv), "r%d", i / LBW_LEDGER_MAX_PENDING);
        assert_int_equal(notify_refs(&f, recv, "G", &r, 1), OK);
        assert_int_equal(lfx_receipt(&f, T0, f.index, 1, i % 2, i % 2 ? NULL : "x"), OK);
        lbw_ledger_intents(f.l, &n);
    }
    lbw_ledger_receivers(f.l, &n);
    assert_true(n <= LBW_LEDGER_MAX_RECEIVERS);
    uint64_t victim = oldest_delivered(&f);
    assert_true(victim > 0);
    assert_int_equal(notify_refs(&f, "r0", "G", &r, 1), OK);
    assert_int_equal(f.chg.gc.evicted_intents, 1);
    assert_null(lbw_ledger_intent(f.l, victim));
    lbw_ledger_intents(f.l, &n);
    assert_int_equal(n, LBW_LEDGER_MAX_INTENTS);
    lfx_free(&f);

    /* Alert copies: at most LBW_LEDGER_MAX_COPIES in all. */
    struct lbw_alert_ref many[LBW_INTENT_MAX_ALERTS];
    f = fx();
    for (size_t i = 0; i < LBW_INTENT_MAX_ALERTS; i++) {
        char labels[LBW_KEY_MAX];
        labels_n(labels, i);
        assert_int_equal(lfx_transition(&f, T0, labels, LBW_ALERT_FIRING), OK);
        many[i] = lfx_ref(&f, labels);
    }
    for (size_t i = 0; i < LBW_LEDGER_MAX_COPIES / LBW_INTENT_MAX_ALERTS; i++) {
        assert_int_equal(notify_refs(&f, "ops", "G", many, LBW_INTENT_MAX_ALERTS), OK);
        assert_int_equal(f.chg.gc.evicted_intents, 0);
        assert_int_equal(lfx_receipt(&f, T0, f.index, 1, 1, NULL), OK);
    }
    victim = oldest_delivered(&f);
    assert_int_equal(notify_refs(&f, "ops", "G", many, 1), OK);
    assert_int_equal(f.chg.gc.evicted_intents, 1);
    assert_null(lbw_ledger_intent(f.l, victim));
    lfx_free(&f);
}

static void bounds_tables(void **state)
{
    (void)state;
    struct lfx f = fx();
    char name[32];
    struct lbw_matcher m[] = {{"target", "www", 0}};
    for (int i = 0; i < LBW_LEDGER_MAX_SILENCES; i++)
        assert_int_equal(lfx_silence(&f, T0, T0, T0 + HOUR, m, 1), OK);
    assert_int_equal(lfx_silence(&f, T0, T0, T0 + HOUR, m, 1), INVALID);
    assert_string_equal(f.chg.detail, "silence table full");

    assert_int_equal(lfx_transition(&f, T0, WWW, LBW_ALERT_FIRING), OK);
    struct lbw_alert_ref r = lfx_ref(&f, WWW);
    for (int i = 0; i < LBW_LEDGER_MAX_RECEIVERS; i++) {
        snprintf(name, sizeof(name), "r%d", i);
        assert_int_equal(lfx_intent(&f, T0, name, "G", LBW_INTENT_NOTIFY, 0, &r, 1), OK);
    }
    assert_int_equal(lfx_intent(&f, T0, "one-more", "G", LBW_INTENT_NOTIFY, 0, &r, 1), INVALID);
    assert_string_equal(f.chg.detail, "receiver table full");
    for (int i = LBW_LEDGER_MAX_RECEIVERS; i < LBW_LEDGER_MAX_GROUPS; i++) {
        snprintf(name, sizeof(name), "G{n=\"%d\"}", i);
        int rc = lfx_intent(&f, T0 + i, "r0", name, LBW_INTENT_NOTIFY, 0, &r, 1);
        assert_int_equal(rc, OK);
    }
    assert_int_equal(lfx_intent(&f, T0, "r0", "G{n=\"x\"}", LBW_INTENT_NOTIFY, 0, &r, 1),
                     INVALID);
    assert_string_equal(f.chg.detail, "group table full");
    struct lbw_bytes b = serialize(f.l);
    assert_true(b.len < LBW_LEDGER_MAX_BYTES);
    lbw_bytes_free(&b);
    lfx_free(&f);
}

/* ---- snapshots --------------------------------------------------------------------------- */

/* A ledger with something of everything. */
static void populate(struct lfx *f)
{
    struct lbw_matcher m[] = {{"target", "www", 0}, {"severity", "info", 1}};
    uint64_t id = firing_and_notified(f, T0, WWW);
    assert_int_equal(lfx_transition_expect(f, T0, CERT, LBW_ALERT_FIRING, 0, ANN, 86400.0 * 2),
                     OK);
    assert_int_equal(lfx_transition(f, T0, DB, LBW_ALERT_PENDING), OK);
    assert_int_equal(lfx_ack(f, T0 + SEC, DB, lfx_seq(f, DB), "bob"), OK);
    assert_int_equal(lfx_receipt(f, T0 + SEC, id, 1, 0, "timeout"), OK);
    assert_int_equal(lfx_receipt(f, T0 + 3 * SEC, id, 2, 1, NULL), OK);
    assert_int_equal(lfx_notify(f, T0 + MIN, "sms", "G", (const char *[]){WWW, CERT}, 2), OK);
    assert_int_equal(lfx_receipt(f, T0 + MIN, f->index, 1, 0, "gateway said \"no\""), OK);
    assert_int_equal(lfx_intent(f, T0 + HOUR, "oncall", GKEY, LBW_INTENT_ESCALATE, 0,
                                (struct lbw_alert_ref[]){lfx_ref(f, WWW)}, 1),
                     OK);
    assert_int_equal(lfx_silence(f, T0, T0, T0 + HOUR, m, 2), OK);
    assert_int_equal(lfx_transition(f, T0 + 2 * HOUR, CERT, LBW_ALERT_RESOLVED), OK);
}

static int restore(struct lbw_ledger *l, const uint8_t *p, size_t len)
{
    return lbw_ledger_restore(l, p, len);
}

static void snapshot_round_trip(void **state)
{
    (void)state;
    struct lfx f = fx();
    uint8_t d1[32], d2[32];
    populate(&f);
    struct lbw_bytes b = serialize(f.l);
    assert_memory_equal(b.data, "LBWLEDG", 8);
    digest(f.l, d1);

    struct lbw_ledger *copy = lbw_ledger_new();
    assert_int_equal(restore(copy, b.data, b.len), 0);
    digest(copy, d2);
    assert_memory_equal(d1, d2, 32);
    struct lbw_bytes b2 = serialize(copy);
    assert_int_equal(b2.len, b.len);
    assert_memory_equal(b2.data, b.data, b.len);
    assert_int_equal(lbw_ledger_last_index(copy), f.index);

    /* derived state came back too: keys, fingerprints, lookups */
    size_t n1, n2;
    const struct lbw_intent *i1 = lbw_ledger_intents(f.l, &n1), *i2 = lbw_ledger_intents(copy, &n2);
    assert_int_equal(n1, n2);
    for (size_t i = 0; i < n1; i++)
        assert_string_equal(i1[i].idempotency_key, i2[i].idempotency_key);
    assert_int_equal(lbw_ledger_alert(copy, fp(CERT))->state, LBW_ALERT_RESOLVED);
    const struct lbw_intent *sms = &i2[1];
    assert_string_equal(sms->receiver, "sms");
    assert_string_equal(sms->alerts[fp(CERT) < fp(WWW) ? 0 : 1].annotations, ANN);
    assert_string_equal(sms->last_error, "gateway said \"no\"");

    /* both go on alike */
    assert_int_equal(lbw_ledger_apply(copy, f.index + 1, NULL, 0, NULL), INVALID);
    struct lfx g = {copy, f.index, {0}};
    assert_int_equal(lfx_transition(&f, T0 + 5 * HOUR, WWW, LBW_ALERT_RESOLVED), OK);
    assert_int_equal(lfx_transition(&g, T0 + 5 * HOUR, WWW, LBW_ALERT_RESOLVED), OK);
    digest(f.l, d1);
    digest(copy, d2);
    assert_memory_equal(d1, d2, 32);

    /* the empty ledger round-trips as well */
    struct lbw_ledger *empty = lbw_ledger_new();
    struct lbw_bytes e = serialize(empty);
    assert_int_equal(e.len, 8 + 4 + 8 + 5 * 4);
    assert_int_equal(restore(copy, e.data, e.len), 0);
    assert_int_equal(lbw_ledger_last_index(copy), 0);
    lbw_ledger_free(empty);
    lbw_bytes_free(&e);
    lbw_bytes_free(&b);
    lbw_bytes_free(&b2);
    lbw_ledger_free(copy);
    lfx_free(&f);
}

static void expect_refused(struct lbw_ledger *l, const uint8_t ref[32], const uint8_t *p,
                           size_t len, const char *what)
{
    uint8_t d[32];
    if (restore(l, p, len) != -1)
        fail_msg("restored a snapshot with %s", what);
    digest(l, d);
    if (memcmp(d, ref, 32) != 0)
        fail_msg("a snapshot with %s changed the ledger", what);
}

/* A copy of b with len bytes at off replaced by rep[replen]. */
static uint8_t *edited(const struct lbw_bytes *b, size_t off, size_t len, const void *rep,
                       size_t replen, size_t *outlen)
{
    uint8_t *p = malloc(b->len - len + replen + 1);
    assert_non_null(p);
    memcpy(p, b->data, off);
    memcpy(p + off, rep, replen);
    memcpy(p + off + replen, b->data + off + len, b->len - off - len);
    *outlen = b->len - len + replen;
    return p;
}

static size_t find(const struct lbw_bytes *b, const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i + n <= b->len; i++)
        if (memcmp(b->data + i, s, n) == 0)
            return i;
    fail_msg("\"%s\" not in the snapshot", s);
    return 0;
}

static void snapshot_refuses_malformed(void **state)
{
    (void)state;
    struct lfx src = fx(), dst = fx();
    uint8_t ref[32];
    size_t len;
    uint8_t *p;
    populate(&src);
    /* dst has a state of its own, which every refusal must leave alone */
    firing_and_notified(&dst, T0, DB);
    digest(dst.l, ref);
    struct lbw_bytes b = serialize(src.l);

    for (size_t n = 0; n < b.len; n++)
        expect_refused(dst.l, ref, b.data, n, "a truncation");
    p = edited(&b, b.len, 0, "", 1, &len);
    expect_refused(dst.l, ref, p, len, "a byte after the end");
    free(p);
    p = edited(&b, 0, 1, "X", 1, &len);
    expect_refused(dst.l, ref, p, len, "a bad magic");
    free(p);
    p = edited(&b, 11, 1, "\002", 1, &len);
    expect_refused(dst.l, ref, p, len, "version 2");
    free(p);
    p = edited(&b, 20, 4, "\xff\xff\xff\xff", 4, &len);
    expect_refused(dst.l, ref, p, len, "a huge alert count");
    free(p);
    /* last index 1: every seq and id is beyond it */
    p = edited(&b, 12, 8, "\0\0\0\0\0\0\0\1", 8, &len);
    expect_refused(dst.l, ref, p, len, "seqs beyond the last index");
    free(p);
    p = edited(&b, find(&b, "ALERTS{"), 6, "ALERTs", 6, &len);
    expect_refused(dst.l, ref, p, len, "labels of another metric");
    free(p);
    /* an intent's receiver without health: rename "sms" in the receivers table only */
    size_t last_sms = 0;
    for (size_t i = 0; i + 3 <= b.len; i++)
        if (memcmp(b.data + i, "sms", 3) == 0)
            last_sms = i;
    p = edited(&b, last_sms, 3, "smt", 3, &len);
    expect_refused(dst.l, ref, p, len, "an intent whose receiver has no health record");
    free(p);
    /* a control character in an error */
    p = edited(&b, find(&b, "timeout"), 1, "\n", 1, &len);
    expect_refused(dst.l, ref, p, len, "a control character");
    free(p);
    /* flags: DB's escalated flag follows its acknowledgement (by, comment, time) */
    size_t at = find(&b, "bob") + 3 + 2 + strlen("looking") + 8;
    assert_int_equal(b.data[at], 0);
    p = edited(&b, at, 1, "\002", 1, &len);
    expect_refused(dst.l, ref, p, len, "a flag of 2");
    free(p);
    p = edited(&b, at, 1, "\001", 1, &len);
    expect_refused(dst.l, ref, p, len, "a pending alert escalated");
    free(p);

    /* Two alerts swapped: out of fingerprint order. (Their records without annotations or
       acknowledgement are labels + 56 bytes.) */
    struct lfx two = fx();
    assert_int_equal(lfx_transition(&two, T0, WWW, LBW_ALERT_FIRING), OK);
    assert_int_equal(lfx_transition(&two, T0, CERT, LBW_ALERT_FIRING), OK);
    struct lbw_bytes t = serialize(two.l);
    int www_first = fp(WWW) < fp(CERT);
    const char *first = www_first ? WWW : CERT, *second = www_first ? CERT : WWW;
    size_t l1 = strlen(first) + 56, l2 = strlen(second) + 56;
    assert_memory_equal(t.data + 24 + 2, first, strlen(first));
    uint8_t *swapped = malloc(l1 + l2);
    memcpy(swapped, t.data + 24 + l1, l2);
    memcpy(swapped + l2, t.data + 24, l1);
    p = edited(&t, 24, l1 + l2, swapped, l1 + l2, &len);
    expect_refused(dst.l, ref, p, len, "alerts out of order");
    free(p);
    memcpy(swapped + l2, t.data + 24 + l1, l2);     /* the same alert twice */
    p = edited(&t, 24, l1 + l2, swapped, 2 * l2, &len);
    expect_refused(dst.l, ref, p, len, "an alert twice");
    free(p);
    free(swapped);
    assert_int_equal(restore(dst.l, t.data, t.len), 0);    /* the original is fine */
    lbw_bytes_free(&t);
    lfx_free(&two);
    lfx_free(&dst);
    assert_int_equal(lfx_init(&dst), 0);
    firing_and_notified(&dst, T0, DB);
    digest(dst.l, ref);

    /* Random corruption: refused with no change, or accepted and canonical. */
    uint8_t d[32];
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 3000; i++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        uint8_t v = (uint8_t)(rng >> 8);
        p = edited(&b, (size_t)(rng >> 20) % b.len, 1, &v, 1, &len);
        if (restore(dst.l, p, len) == 0) {
            struct lbw_bytes again = serialize(dst.l);
            assert_int_equal(again.len, len);
            assert_memory_equal(again.data, p, len);
            lbw_bytes_free(&again);
            lfx_free(&dst);
            assert_int_equal(lfx_init(&dst), 0);
            firing_and_notified(&dst, T0, DB);
        } else {
            digest(dst.l, d);
            assert_memory_equal(d, ref, 32);
        }
        free(p);
    }
    lbw_bytes_free(&b);
    lfx_free(&src);
    lfx_free(&dst);
}

/* ---- determinism ------------------------------------------------------------------------- */

static uint64_t next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static const char *const pool[] = {
    WWW, DB, CERT,
    "ALERTS{alertname=\"TargetDown\",severity=\"critical\",target=\"api\"}",
    "ALERTS{alertname=\"CertExpiringSoon\",severity=\"warning\",target=\"db\"}",
    "ALERTS{alertname=\"HandshakeSlow\",severity=\"info\",target=\"www\"}",
};
#define NPOOL (sizeof(pool) / sizeof(pool[0]))
static const char *const receivers[] = {"ops", "sms", "oncall"};
static const char *const keys[] = {"G", GKEY, "G{target=\"www\"}"};

static void random_intent(uint64_t *rng, const struct lbw_ledger *l, struct lbw_op *op)
{
    op->type = LBW_OP_INTENT;
    op->intent.receiver = receivers[next(rng) % 3];
    op->intent.group_key = keys[next(rng) % 3];
    op->intent.kind = (enum lbw_intent_kind)(next(rng) % 3);
    const struct lbw_group *g = lbw_ledger_group(l, op->intent.receiver, op->intent.group_key);
    if (op->intent.kind != LBW_INTENT_ESCALATE)
        op->intent.expect_group = (g ? g->version : 0) + (next(rng) % 8 == 0);
    uint64_t picked = next(rng);
    struct lbw_alert_ref refs[NPOOL];
    size_t n = 0;
    for (size_t i = 0; i < NPOOL; i++) {
        if (!(picked >> i & 1))
            continue;
        const struct lbw_alert *a = lbw_ledger_alert(l, fp(pool[i]));
        refs[n++] = (struct lbw_alert_ref){
            fp(pool[i]), a ? a->seq : 1,
            a && a->state == LBW_ALERT_RESOLVED && op->intent.kind != LBW_INTENT_ESCALATE
                ? LBW_NOTIFY_RESOLVED
                : LBW_NOTIFY_FIRING};
    }
    if (n == 0)
        refs[n++] = (struct lbw_alert_ref){fp(pool[0]), 1, LBW_NOTIFY_FIRING};
    for (size_t i = 1; i < n; i++) /* insertion sort by fingerprint */
        for (size_t j = i; j > 0 && refs[j - 1].fingerprint > refs[j].fingerprint; j--) {
            struct lbw_alert_ref t = refs[j];
            refs[j] = refs[j - 1];
            refs[j - 1] = t;
        }
    memcpy(op->intent.alerts, refs, n * sizeof(*refs));
    op->intent.nalerts = n;
}

static void random_receipt(uint64_t *rng, const struct lbw_ledger *l, struct lbw_op *op)
{
    size_t n;
    const struct lbw_intent *in = lbw_ledger_intents(l, &n);
    op->type = LBW_OP_RECEIPT;
    op->receipt.intent = n ? in[next(rng) % n].id : 1;
    const struct lbw_intent *i = lbw_ledger_intent(l, op->receipt.intent);
    op->receipt.attempt = (i ? i->attempts : 0) + 1 + (next(rng) % 6 == 0);
    op->receipt.ok = next(rng) % 2;
    op->receipt.error = op->receipt.ok ? NULL : "HTTP 500";
}

/* A plausible op against l: mostly well aimed, sometimes stale or impossible. */
static void random_op(uint64_t *rng, const struct lbw_ledger *l, int64_t t, struct lbw_op *op)
{
    static const struct lbw_matcher m[] = {{"target", "www", 0}, {"severity", "info", 0}};
    memset(op, 0, offsetof(struct lbw_op, text));
    op->time_ms = t;
    unsigned kind = next(rng) % 20;
    if (kind < 9) {
        const char *labels = pool[next(rng) % NPOOL];
        op->type = LBW_OP_TRANSITION;
        op->transition.labels = labels;
        op->transition.to = (enum lbw_alert_state)(next(rng) % 4);
        const struct lbw_alert *a = lbw_ledger_alert(l, fp(labels));
        op->transition.expect_seq = (a ? a->seq : 0) + (next(rng) % 10 == 0);
        op->transition.value = (double)(next(rng) % 1000) / 8;
        op->transition.annotations = next(rng) % 2 ? ANN : NULL;
    } else if (kind < 13) {
        random_intent(rng, l, op);
    } else if (kind < 16) {
        random_receipt(rng, l, op);
    } else if (kind < 17) {
        op->type = LBW_OP_SILENCE;
        op->silence.starts_at = t;
        op->silence.ends_at = t + (int64_t)(next(rng) % 7200) * SEC + 1;
        op->silence.author = "alice";
        op->silence.comment = "";
        op->silence.matchers[0] = m[next(rng) % 2];
        op->silence.nmatchers = 1;
    } else if (kind < 18) {
        size_t n;
        const struct lbw_silence *s = lbw_ledger_silences(l, &n);
        op->type = LBW_OP_EXPIRE_SILENCE;
        op->expire.silence = n ? s[next(rng) % n].id : 1;
    } else {
        const char *labels = pool[next(rng) % NPOOL];
        const struct lbw_alert *a = lbw_ledger_alert(l, fp(labels));
        op->type = LBW_OP_ACK;
        op->ack.fingerprint = fp(labels);
        op->ack.expect_seq = a ? a->seq : 1;
        op->ack.by = "bob";
    }
}

static void replicas_agree_on_random_ops(void **state)
{
    (void)state;
    static struct lbw_op op;
    struct lfx a = fx(), b = fx(), c = fx();
    uint64_t rng = 42;
    int64_t t = T0;
    size_t results[4] = {0};
    uint8_t da[32], db[32], dc[32];
    const size_t steps = 20000;
    for (size_t i = 0; i < steps; i++) {
        uint8_t buf[LBW_OP_MAX_BYTES];
        t += (int64_t)(next(&rng) % 600) * SEC;
        if (next(&rng) % 500 == 0)
            t += 2 * DAY;
        random_op(&rng, a.l, t, &op);
        long n = lbw_op_encode(&op, buf, sizeof(buf));
        assert_true(n > 0);
        enum lbw_apply_result ra = lbw_ledger_apply(a.l, i + 1, buf, (size_t)n, NULL);
        assert_int_equal(lbw_ledger_apply(b.l, i + 1, buf, (size_t)n, NULL), ra);
        results[ra]++;
        if (i == steps / 2) {
            struct lbw_bytes s = serialize(a.l);
            assert_int_equal(restore(c.l, s.data, s.len), 0);
            lbw_bytes_free(&s);
        }
        if (i > steps / 2)
            assert_int_equal(lbw_ledger_apply(c.l, i + 1, buf, (size_t)n, NULL), ra);
        if (i % 997 == 0) {
            digest(a.l, da);
            digest(b.l, db);
            assert_memory_equal(da, db, 32);
        }
    }
    digest(a.l, da);
    digest(b.l, db);
    digest(c.l, dc);
    assert_memory_equal(da, db, 32);
    assert_memory_equal(da, dc, 32);
    /* the sequence exercised every outcome */
    assert_true(results[LBW_APPLY_OK] > steps / 4);
    assert_true(results[LBW_APPLY_STALE] > steps / 20);
    assert_true(results[LBW_APPLY_INVALID] > steps / 20);
    assert_int_equal(results[LBW_APPLY_NOMEM], 0);
    lfx_free(&a);
    lfx_free(&b);
    lfx_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(op_codec_round_trips),
        cmocka_unit_test(op_codec_refuses_malformed),
        cmocka_unit_test(text_clean),
        cmocka_unit_test(transitions_lifecycle),
        cmocka_unit_test(transitions_stale_and_invalid),
        cmocka_unit_test(apply_refuses_garbage_and_old_indexes),
        cmocka_unit_test(intents_copy_group_and_key),
        cmocka_unit_test(intents_stale),
        cmocka_unit_test(escalation_once_per_episode),
        cmocka_unit_test(idempotency_keys_agree_across_replicas),
        cmocka_unit_test(receipts_backoff_and_health),
        cmocka_unit_test(silences_window_and_expiry),
        cmocka_unit_test(acks),
        cmocka_unit_test(gc_by_op_time),
        cmocka_unit_test(bounds_alerts),
        cmocka_unit_test(bounds_intents),
        cmocka_unit_test(bounds_tables),
        cmocka_unit_test(snapshot_round_trip),
        cmocka_unit_test(snapshot_refuses_malformed),
        cmocka_unit_test(replicas_agree_on_random_ops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
