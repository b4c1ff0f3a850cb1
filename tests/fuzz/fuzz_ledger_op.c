/* fuzz_ledger_op.c - libFuzzer target for the alert ledger's op decoder and apply
 * (alerting/ledger). An input is a sequence of ops, each as u16 length (big-endian) + bytes,
 * applied at increasing indexes to a new ledger; the seeds (tests/fuzz/corpus/fuzz_ledger_op)
 * are real op sequences, so a mutated op meets real state. It must never crash, leak or read
 * out of bounds; an op that decodes re-encodes to exactly its bytes; an op that does not
 * decode is INVALID and changes nothing; no op runs out of memory; and the ledger at the end
 * restores into another ledger that serialises to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alerting/ledger.h"

static struct lbw_op op;

static struct lbw_bytes serialized(const struct lbw_ledger *l)
{
    struct lbw_bytes b = {0};
    if (lbw_ledger_serialize(l, &b) != 0)
        abort();
    return b;
}

static int same(const struct lbw_bytes *a, const struct lbw_bytes *b)
{
    return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

/* Applies one op and checks what the codec promises. */
static void apply_one(struct lbw_ledger *l, uint64_t index, const uint8_t *p, size_t len)
{
    uint8_t again[LBW_OP_MAX_BYTES];
    struct lbw_bytes before = {0}, after;
    int decodes = lbw_op_decode(p, len, &op, NULL, 0) == 0;
    if (decodes) {
        long n = lbw_op_encode(&op, again, sizeof(again));
        if (n < 0 || (size_t)n != len || memcmp(again, p, len) != 0)
            abort(); /* an op that decodes must be canonical */
    } else {
        before = serialized(l);
    }
    enum lbw_apply_result rc = lbw_ledger_apply(l, index, p, len, NULL);
    if (rc == LBW_APPLY_NOMEM || (!decodes && rc != LBW_APPLY_INVALID))
        abort();
    if (!decodes) {
        after = serialized(l);
        if (!same(&before, &after))
            abort(); /* a malformed op changed the ledger */
        lbw_bytes_free(&after);
    }
    lbw_bytes_free(&before);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct lbw_ledger *l = lbw_ledger_new(), *copy = lbw_ledger_new();
    uint64_t index = 0;
    size_t pos = 0;
    if (!l || !copy)
        abort();
    while (size - pos >= 2) {
        size_t len = (size_t)data[pos] << 8 | data[pos + 1];
        pos += 2;
        if (len > size - pos)
            len = size - pos;
        apply_one(l, ++index, data + pos, len);
        pos += len;
    }
    struct lbw_bytes s = serialized(l), s2;
    if (lbw_ledger_restore(copy, s.data, s.len) != 0)
        abort(); /* its own serialisation must be acceptable */
    s2 = serialized(copy);
    if (!same(&s, &s2))
        abort();
    lbw_bytes_free(&s);
    lbw_bytes_free(&s2);
    lbw_ledger_free(l);
    lbw_ledger_free(copy);
    return 0;
}
