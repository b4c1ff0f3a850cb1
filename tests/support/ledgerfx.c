/* ledgerfx.c - a ledger under test. See ledgerfx.h. */
#include "tests/support/ledgerfx.h"

#include <stdlib.h>
#include <string.h>

int lfx_init(struct lfx *f)
{
    memset(f, 0, sizeof(*f));
    f->l = lbw_ledger_new();
    return f->l ? 0 : -1;
}

void lfx_free(struct lfx *f)
{
    lbw_ledger_free(f->l);
    f->l = NULL;
}

int lfx_apply(struct lfx *f, const struct lbw_op *op)
{
    uint8_t buf[LBW_OP_MAX_BYTES];
    long n = lbw_op_encode(op, buf, sizeof(buf));
    if (n < 0)
        return -1;
    return (int)lbw_ledger_apply(f->l, ++f->index, buf, (size_t)n, &f->chg);
}

static struct lbw_op *new_op(enum lbw_op_type type, int64_t t)
{
    struct lbw_op *op = calloc(1, sizeof(*op));
    if (op) {
        op->type = type;
        op->time_ms = t;
    }
    return op;
}

static int apply_free(struct lfx *f, struct lbw_op *op)
{
    int rc = op ? lfx_apply(f, op) : -1;
    free(op);
    return rc;
}

uint64_t lfx_seq(const struct lfx *f, const char *labels)
{
    const struct lbw_alert *a = lbw_ledger_alert(f->l, lbw_fingerprint(labels, strlen(labels)));
    return a ? a->seq : 0;
}

struct lbw_alert_ref lfx_ref(const struct lfx *f, const char *labels)
{
    uint64_t fp = lbw_fingerprint(labels, strlen(labels));
    const struct lbw_alert *a = lbw_ledger_alert(f->l, fp);
    return (struct lbw_alert_ref){fp, a ? a->seq : 1,
                                  a && a->state == LBW_ALERT_RESOLVED ? LBW_NOTIFY_RESOLVED
                                                                      : LBW_NOTIFY_FIRING};
}

int lfx_transition_expect(struct lfx *f, int64_t t, const char *labels,
                          enum lbw_alert_state to, uint64_t expect, const char *annotations,
                          double value)
{
    struct lbw_op *op = new_op(LBW_OP_TRANSITION, t);
    if (op) {
        op->transition.expect_seq = expect;
        op->transition.to = to;
        op->transition.severity = LBW_SEV_CRITICAL;
        op->transition.value = value;
        op->transition.labels = labels;
        op->transition.annotations = annotations;
    }
    return apply_free(f, op);
}

int lfx_transition(struct lfx *f, int64_t t, const char *labels, enum lbw_alert_state to)
{
    return lfx_transition_expect(f, t, labels, to, lfx_seq(f, labels), NULL, 1.0);
}

static int ref_cmp(const void *x, const void *y)
{
    const struct lbw_alert_ref *a = x, *b = y;
    return a->fingerprint < b->fingerprint ? -1 : a->fingerprint > b->fingerprint;
}

int lfx_intent(struct lfx *f, int64_t t, const char *receiver, const char *key,
               enum lbw_intent_kind kind, uint64_t expect, const struct lbw_alert_ref *refs,
               size_t n)
{
    struct lbw_op *op = new_op(LBW_OP_INTENT, t);
    if (op) {
        op->intent.receiver = receiver;
        op->intent.group_key = key;
        op->intent.kind = kind;
        op->intent.expect_group = expect;
        n = n < LBW_INTENT_MAX_ALERTS ? n : LBW_INTENT_MAX_ALERTS;
        memcpy(op->intent.alerts, refs, n * sizeof(*refs));
        qsort(op->intent.alerts, n, sizeof(*refs), ref_cmp);
        op->intent.nalerts = n;
    }
    return apply_free(f, op);
}

int lfx_notify(struct lfx *f, int64_t t, const char *receiver, const char *key,
               const char *const *labels, size_t n)
{
    struct lbw_alert_ref refs[LBW_INTENT_MAX_ALERTS];
    const struct lbw_group *g = lbw_ledger_group(f->l, receiver, key);
    for (size_t i = 0; i < n && i < LBW_INTENT_MAX_ALERTS; i++)
        refs[i] = lfx_ref(f, labels[i]);
    return lfx_intent(f, t, receiver, key, LBW_INTENT_NOTIFY, g ? g->version : 0, refs, n);
}

int lfx_receipt(struct lfx *f, int64_t t, uint64_t intent, uint32_t attempt, int ok,
                const char *error)
{
    struct lbw_op *op = new_op(LBW_OP_RECEIPT, t);
    if (op) {
        op->receipt.intent = intent;
        op->receipt.attempt = attempt;
        op->receipt.ok = ok;
        op->receipt.error = error;
    }
    return apply_free(f, op);
}

int lfx_silence(struct lfx *f, int64_t t, int64_t starts, int64_t ends,
                const struct lbw_matcher *m, size_t n)
{
    struct lbw_op *op = new_op(LBW_OP_SILENCE, t);
    if (op) {
        op->silence.starts_at = starts;
        op->silence.ends_at = ends;
        op->silence.author = "alice";
        op->silence.comment = "maintenance";
        memcpy(op->silence.matchers, m, n * sizeof(*m));
        op->silence.nmatchers = n;
    }
    return apply_free(f, op);
}

int lfx_expire(struct lfx *f, int64_t t, uint64_t id)
{
    struct lbw_op *op = new_op(LBW_OP_EXPIRE_SILENCE, t);
    if (op)
        op->expire.silence = id;
    return apply_free(f, op);
}

int lfx_ack(struct lfx *f, int64_t t, const char *labels, uint64_t expect, const char *by)
{
    struct lbw_op *op = new_op(LBW_OP_ACK, t);
    if (op) {
        op->ack.fingerprint = lbw_fingerprint(labels, strlen(labels));
        op->ack.expect_seq = expect;
        op->ack.by = by;
        op->ack.comment = "looking";
    }
    return apply_free(f, op);
}
