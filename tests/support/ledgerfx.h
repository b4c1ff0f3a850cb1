/* ledgerfx.h - a ledger under test: builds ops the way the leader does, encodes them and
 * applies them at the next raft index, keeping the last change. Shared by test_ledger and
 * test_route. */
#ifndef LBW_LEDGERFX_H
#define LBW_LEDGERFX_H

#include <stddef.h>
#include <stdint.h>

#include "alerting/ledger.h"

#define LFX_T0 1700000000000LL
#define LFX_SEC 1000LL
#define LFX_MIN (60 * LFX_SEC)
#define LFX_HOUR (60 * LFX_MIN)
#define LFX_DAY (24 * LFX_HOUR)

struct lfx {
    struct lbw_ledger *l;
    uint64_t index;             /* of the last op applied */
    struct lbw_ledger_change chg;
};

/* Returns 0 or -1. */
int lfx_init(struct lfx *f);
void lfx_free(struct lfx *f);

/* Encodes op and applies it at the next index. Returns the result, or -1 if it does not
 * encode (the index is not used then). */
int lfx_apply(struct lfx *f, const struct lbw_op *op);

/* The alert's seq (0 if absent) and its reference for an intent (status from its state). */
uint64_t lfx_seq(const struct lfx *f, const char *labels);
struct lbw_alert_ref lfx_ref(const struct lfx *f, const char *labels);

/* A transition expecting the alert's current seq, or the given one. */
int lfx_transition(struct lfx *f, int64_t t, const char *labels, enum lbw_alert_state to);
int lfx_transition_expect(struct lfx *f, int64_t t, const char *labels,
                          enum lbw_alert_state to, uint64_t expect, const char *annotations,
                          double value);

/* An intent with refs (sorted here by fingerprint). */
int lfx_intent(struct lfx *f, int64_t t, const char *receiver, const char *key,
               enum lbw_intent_kind kind, uint64_t expect, const struct lbw_alert_ref *refs,
               size_t n);
/* A notify intent of the given alerts, expecting the group's current version. */
int lfx_notify(struct lfx *f, int64_t t, const char *receiver, const char *key,
               const char *const *labels, size_t n);

int lfx_receipt(struct lfx *f, int64_t t, uint64_t intent, uint32_t attempt, int ok,
                const char *error);
int lfx_silence(struct lfx *f, int64_t t, int64_t starts, int64_t ends,
                const struct lbw_matcher *m, size_t n);
int lfx_expire(struct lfx *f, int64_t t, uint64_t id);
int lfx_ack(struct lfx *f, int64_t t, const char *labels, uint64_t expect, const char *by);

#endif
