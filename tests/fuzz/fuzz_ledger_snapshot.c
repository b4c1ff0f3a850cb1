/* fuzz_ledger_snapshot.c - libFuzzer target for the alert ledger's snapshot restore
 * (alerting/ledger): arbitrary bytes are restored into a ledger holding a state of its own.
 * It must never crash, leak or read out of bounds. A refused snapshot must leave the ledger
 * as it was (the same serialisation). An accepted one must be canonical (the ledger
 * serialises back to exactly the input) and a state the ledger can work on: a receipt for
 * every intent, an acknowledgement for every alert, the expiry of every silence and then an
 * op far in the future (collecting nearly everything) must all apply without running out of
 * memory, and the result must round-trip again. Seeds (tests/fuzz/corpus/fuzz_ledger_snapshot)
 * are real serialised ledgers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alerting/ledger.h"

static struct lbw_ledger *ledger;
static struct lbw_bytes ref;    /* the serialisation of ledger's own state */
static struct lbw_op op;

static struct lbw_bytes serialized(const struct lbw_ledger *l)
{
    struct lbw_bytes b = {0};
    if (lbw_ledger_serialize(l, &b) != 0)
        abort();
    return b;
}

static int equals(const struct lbw_bytes *b, const uint8_t *p, size_t len)
{
    return b->len == len && memcmp(b->data, p, len) == 0;
}

static void apply(struct lbw_ledger *l, int64_t t)
{
    uint8_t buf[LBW_OP_MAX_BYTES];
    op.time_ms = t;
    long n = lbw_op_encode(&op, buf, sizeof(buf));
    if (n < 0)
        abort();
    if (lbw_ledger_apply(l, lbw_ledger_last_index(l) + 1, buf, (size_t)n, NULL) ==
        LBW_APPLY_NOMEM)
        abort();
}

/* Ops on every kind of entity of a restored ledger. */
static void exercise(struct lbw_ledger *l)
{
    size_t n;
    const int64_t t = LBW_LEDGER_MAX_TIME / 2;
    const struct lbw_intent *in = lbw_ledger_intents(l, &n);
    for (size_t i = 0; i < n && i < 64; i++) {
        memset(&op, 0, offsetof(struct lbw_op, text));
        op.type = LBW_OP_RECEIPT;
        op.receipt.intent = in[i].id;
        op.receipt.attempt = in[i].attempts + 1;
        op.receipt.error = "fuzz";
        if (op.receipt.attempt > 0)
            apply(l, t);
        in = lbw_ledger_intents(l, &n);
    }
    const struct lbw_alert *a = lbw_ledger_alerts(l, &n);
    for (size_t i = 0; i < n && i < 64; i++) {
        memset(&op, 0, offsetof(struct lbw_op, text));
        op.type = LBW_OP_ACK;
        op.ack.fingerprint = a[i].fingerprint;
        op.ack.expect_seq = a[i].seq;
        op.ack.by = "fuzz";
        apply(l, t);
        a = lbw_ledger_alerts(l, &n);
    }
    const struct lbw_silence *s = lbw_ledger_silences(l, &n);
    for (size_t i = 0; i < n && i < 64; i++) {
        memset(&op, 0, offsetof(struct lbw_op, text));
        op.type = LBW_OP_EXPIRE_SILENCE;
        op.expire.silence = s[i].id;
        apply(l, t);
        s = lbw_ledger_silences(l, &n);
    }
    memset(&op, 0, offsetof(struct lbw_op, text));
    op.type = LBW_OP_EXPIRE_SILENCE;
    op.expire.silence = 1;
    apply(l, LBW_LEDGER_MAX_TIME);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (!(ledger = lbw_ledger_new()))
        abort();
    ref = serialized(ledger);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int rc = lbw_ledger_restore(ledger, data, size);
    if (rc == -2)
        abort();
    struct lbw_bytes now = serialized(ledger);
    if (rc != 0) {
        if (!equals(&now, ref.data, ref.len))
            abort(); /* a refused snapshot changed the ledger */
        lbw_bytes_free(&now);
        return 0;
    }
    if (!equals(&now, data, size))
        abort(); /* an accepted snapshot must be canonical */
    lbw_bytes_free(&now);

    exercise(ledger);
    now = serialized(ledger);
    struct lbw_ledger *copy = lbw_ledger_new();
    if (!copy || lbw_ledger_restore(copy, now.data, now.len) != 0)
        abort();
    struct lbw_bytes again = serialized(copy);
    if (!equals(&again, now.data, now.len))
        abort();
    lbw_bytes_free(&again);
    lbw_ledger_free(copy);
    lbw_bytes_free(&ref);
    ref = now;  /* the next input meets this state */
    return 0;
}
