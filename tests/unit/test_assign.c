/* test_assign.c - node/assign: the replicated agent assignment table.
 *
 * Ops encode and decode to themselves and every malformed variant (each truncation, a byte
 * after the end, bad version, op type, name, node ids) is refused; apply's compare-and-set:
 * a first assignment expects 0, a move expects the row's index, a stale op (a deposed leader's,
 * a duplicate) changes nothing, a release removes the row; the table's bound; snapshots that
 * round-trip byte for byte, and refused ones (each truncation, unsorted or repeated names, a
 * node id or index of 0, too many rows, bytes left over) that leave the table as it was; and
 * two tables fed the same ops, one restored half way from the other's snapshot, that end equal.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/assign.h"

struct bytes {
    uint8_t p[LBW_ASSIGN_OP_MAX];
    size_t len;
};

static struct bytes op_bytes(enum lbw_assign_op_type type, const char *agent, uint64_t expect,
                             uint64_t node)
{
    struct lbw_assign_op op = {.type = type, .expect = expect, .node = node};
    struct bytes b;
    snprintf(op.agent, sizeof(op.agent), "%s", agent);
    long n = lbw_assign_op_encode(&op, b.p, sizeof(b.p));
    assert_true(n > 0);
    b.len = (size_t)n;
    return b;
}

static enum lbw_assign_result apply(struct lbw_assign *t, uint64_t index,
                                    enum lbw_assign_op_type type, const char *agent,
                                    uint64_t expect, uint64_t node)
{
    struct lbw_assign_op op;
    struct bytes b = op_bytes(type, agent, expect, node);
    return lbw_assign_apply(t, index, b.p, b.len, &op);
}

static void owner_is(const struct lbw_assign *t, const char *agent, uint64_t node,
                     uint64_t index)
{
    const struct lbw_assignment *row = lbw_assign_find(t, agent);
    if (node == 0) {
        assert_null(row);
        return;
    }
    assert_non_null(row);
    assert_int_equal(row->node, node);
    assert_int_equal(row->index, index);
}

static void ops_round_trip_and_refuse_malformed(void **state)
{
    struct lbw_assign_op op;
    (void)state;
    struct bytes b = op_bytes(LBW_ASSIGN_SET, "lb-1.edge", 17, 3);
    assert_int_equal(b.len, 3 + 9 + 16);
    assert_int_equal(lbw_assign_op_decode(b.p, b.len, &op), 0);
    assert_int_equal(op.type, LBW_ASSIGN_SET);
    assert_string_equal(op.agent, "lb-1.edge");
    assert_int_equal(op.expect, 17);
    assert_int_equal(op.node, 3);
    for (size_t n = 0; n < b.len; n++)
        assert_int_equal(lbw_assign_op_decode(b.p, n, &op), -1);
    uint8_t longer[LBW_ASSIGN_OP_MAX + 1];
    memcpy(longer, b.p, b.len);
    longer[b.len] = 0;
    assert_int_equal(lbw_assign_op_decode(longer, b.len + 1, &op), -1);
    struct bytes bad = b;
    bad.p[0] = 2; /* version */
    assert_int_equal(lbw_assign_op_decode(bad.p, bad.len, &op), -1);
    bad = b;
    bad.p[1] = 3; /* op type */
    assert_int_equal(lbw_assign_op_decode(bad.p, bad.len, &op), -1);
    bad = b;
    bad.p[3] = '/'; /* name */
    assert_int_equal(lbw_assign_op_decode(bad.p, bad.len, &op), -1);
    bad = b;
    bad.p[b.len - 1] = 0; /* SET to node 0 */
    assert_int_equal(lbw_assign_op_decode(bad.p, bad.len, &op), -1);
    bad = b;
    bad.p[b.len - 8] = 0x80; /* node id above 2^63-1 */
    assert_int_equal(lbw_assign_op_decode(bad.p, bad.len, &op), -1);
    bad = b;
    bad.p[1] = LBW_ASSIGN_RELEASE; /* RELEASE names no node */
    assert_int_equal(lbw_assign_op_decode(bad.p, bad.len, &op), -1);

    struct bytes r = op_bytes(LBW_ASSIGN_RELEASE, "a", 5, 0);
    assert_int_equal(lbw_assign_op_decode(r.p, r.len, &op), 0);
    assert_int_equal(op.type, LBW_ASSIGN_RELEASE);
    struct lbw_assign_op invalid = {.type = LBW_ASSIGN_SET, .agent = "a", .node = 0};
    assert_int_equal(lbw_assign_op_encode(&invalid, b.p, sizeof(b.p)), -1);
    struct lbw_assign_op fine = {.type = LBW_ASSIGN_SET, .agent = "a", .node = 1};
    assert_int_equal(lbw_assign_op_encode(&fine, b.p, 3), -1); /* does not fit */
}

static void apply_is_compare_and_set(void **state)
{
    struct lbw_assign *t = lbw_assign_new();
    struct lbw_assign_op op;
    (void)state;
    assert_int_equal(apply(t, 10, LBW_ASSIGN_SET, "a1", 0, 1), LBW_ASSIGN_OK);
    owner_is(t, "a1", 1, 10);
    /* a second leader that also saw no owner: stale */
    assert_int_equal(apply(t, 11, LBW_ASSIGN_SET, "a1", 0, 2), LBW_ASSIGN_STALE);
    owner_is(t, "a1", 1, 10);
    /* a move that saw the row: applies */
    assert_int_equal(apply(t, 12, LBW_ASSIGN_SET, "a1", 10, 3), LBW_ASSIGN_OK);
    owner_is(t, "a1", 3, 12);
    /* the same move again (a duplicate, or an old leader's): stale */
    assert_int_equal(apply(t, 13, LBW_ASSIGN_SET, "a1", 10, 2), LBW_ASSIGN_STALE);
    owner_is(t, "a1", 3, 12);
    assert_int_equal(apply(t, 14, LBW_ASSIGN_SET, "a0", 0, 2), LBW_ASSIGN_OK);
    size_t n;
    const struct lbw_assignment *rows = lbw_assign_rows(t, &n);
    assert_int_equal(n, 2);
    assert_string_equal(rows[0].agent, "a0"); /* kept in name order */
    /* release: only of the row as seen */
    assert_int_equal(apply(t, 15, LBW_ASSIGN_RELEASE, "a1", 10, 0), LBW_ASSIGN_STALE);
    assert_int_equal(apply(t, 16, LBW_ASSIGN_RELEASE, "a1", 12, 0), LBW_ASSIGN_OK);
    owner_is(t, "a1", 0, 0);
    assert_int_equal(apply(t, 17, LBW_ASSIGN_RELEASE, "a1", 12, 0), LBW_ASSIGN_STALE);
    /* garbage and index 0 are invalid */
    assert_int_equal(lbw_assign_apply(t, 18, (const uint8_t *)"xx", 2, &op), LBW_ASSIGN_INVALID);
    assert_int_equal(apply(t, 0, LBW_ASSIGN_SET, "b", 0, 1), LBW_ASSIGN_INVALID);
    assert_string_equal(lbw_assign_result_name(LBW_ASSIGN_STALE), "stale");
    lbw_assign_free(t);
}

static void table_is_bounded(void **state)
{
    struct lbw_assign *t = lbw_assign_new();
    char name[32];
    (void)state;
    for (int i = 0; i < LBW_ASSIGN_MAX; i++) {
        snprintf(name, sizeof(name), "agent%03d", i);
        assert_int_equal(apply(t, (uint64_t)i + 1, LBW_ASSIGN_SET, name, 0, 1), LBW_ASSIGN_OK);
    }
    assert_int_equal(apply(t, 1000, LBW_ASSIGN_SET, "one-more", 0, 1), LBW_ASSIGN_INVALID);
    /* existing rows still move */
    assert_int_equal(apply(t, 1001, LBW_ASSIGN_SET, "agent007", 8, 2), LBW_ASSIGN_OK);
    owner_is(t, "agent007", 2, 1001);
    lbw_assign_free(t);
}

static struct lbw_assign *sample_table(void)
{
    struct lbw_assign *t = lbw_assign_new();
    assert_int_equal(apply(t, 3, LBW_ASSIGN_SET, "lb2", 0, 2), LBW_ASSIGN_OK);
    assert_int_equal(apply(t, 4, LBW_ASSIGN_SET, "lb1", 0, 1), LBW_ASSIGN_OK);
    assert_int_equal(apply(t, 9, LBW_ASSIGN_SET, "lb10", 0, 3), LBW_ASSIGN_OK);
    return t;
}

static void serialize(const struct lbw_assign *t, uint8_t **p, size_t *len)
{
    assert_int_equal(lbw_assign_serialize(t, p, len), 0);
}

static void assert_same(const struct lbw_assign *a, const struct lbw_assign *b)
{
    uint8_t *pa, *pb;
    size_t la, lb;
    serialize(a, &pa, &la);
    serialize(b, &pb, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(pa, pb, la);
    free(pa);
    free(pb);
}

/* Restoring p (len bytes) into a copy of the sample table must fail and change nothing. */
static void refused(const uint8_t *p, size_t len, const char *what)
{
    struct lbw_assign *t = sample_table(), *ref = sample_table();
    if (lbw_assign_restore(t, p, len) != -1)
        fail_msg("%s: restored", what);
    assert_same(t, ref);
    lbw_assign_free(t);
    lbw_assign_free(ref);
}

static void snapshots_round_trip_and_refuse_malformed(void **state)
{
    struct lbw_assign *t = sample_table(), *u = lbw_assign_new();
    uint8_t *p;
    size_t len;
    (void)state;
    serialize(t, &p, &len);
    assert_int_equal(len, 1 + 4 + 3 * (1 + 8 + 8) + 3 + 3 + 4);
    assert_int_equal(lbw_assign_restore(u, p, len), 0);
    assert_same(t, u);
    owner_is(u, "lb10", 3, 9);

    for (size_t n = 0; n < len; n++)
        refused(p, n, "truncated");
    uint8_t *q = malloc(len + 1);
    memcpy(q, p, len);
    q[len] = 0;
    refused(q, len + 1, "a byte after the end");
    size_t row0 = 5, row1 = 5 + 1 + 3 + 16; /* "lb1", then "lb10" */
    memcpy(q, p, len);
    q[0] = 2;
    refused(q, len, "version");
    memcpy(q, p, len);
    q[row1 + 3] = '0'; /* "lb10" -> "lb00": before "lb1" */
    refused(q, len, "names out of order");
    uint8_t two[] = {1, 0, 0, 0, 2,
                     2, 'x', '1', 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1,
                     2, 'x', '2', 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2};
    assert_int_equal(lbw_assign_restore(u, two, sizeof(two)), 0);
    two[sizeof(two) - 17] = '1'; /* "x2" -> "x1" */
    refused(two, sizeof(two), "name repeated");
    assert_int_equal(lbw_assign_restore(u, p, len), 0);
    memcpy(q, p, len);
    memset(q + row0 + 4, 0, 8);
    refused(q, len, "node 0");
    memcpy(q, p, len);
    memset(q + row0 + 12, 0, 8);
    refused(q, len, "index 0");
    memcpy(q, p, len);
    q[4] = 4; /* more rows than there are */
    refused(q, len, "row count");
    uint8_t many[] = {1, 0, 0, 1, 1}; /* 257 rows */
    refused(many, sizeof(many), "too many rows");
    free(q);

    /* the empty table */
    struct lbw_assign *e = lbw_assign_new();
    free(p);
    serialize(e, &p, &len);
    assert_int_equal(len, 5);
    assert_int_equal(lbw_assign_restore(u, p, len), 0);
    assert_same(u, e);
    lbw_assign_clear(t);
    assert_same(t, e);
    free(p);
    lbw_assign_free(e);
    lbw_assign_free(t);
    lbw_assign_free(u);
}

/* Replicas fed the same ops end equal, also when one restores the other's snapshot midway. */
static void replicas_agree(void **state)
{
    struct lbw_assign *a = lbw_assign_new(), *b = lbw_assign_new();
    uint64_t seen[4] = {0};
    char name[32];
    unsigned rnd = 12345;
    (void)state;
    for (uint64_t index = 1; index <= 400; index++) {
        rnd = rnd * 1103515245u + 12345u;
        int agent = (int)(rnd >> 16) % 4;
        uint64_t node = (rnd >> 8) % 5 + 1;
        /* half the ops expect what the table has, half an older view */
        uint64_t expect = (rnd & 1) ? seen[agent] : (seen[agent] ? seen[agent] - 1 : 0);
        snprintf(name, sizeof(name), "a%d", agent);
        enum lbw_assign_result ra = apply(a, index, LBW_ASSIGN_SET, name, expect, node);
        assert_int_equal(apply(b, index, LBW_ASSIGN_SET, name, expect, node), ra);
        if (ra == LBW_ASSIGN_OK)
            seen[agent] = index;
        if (index == 200) {
            uint8_t *p;
            size_t len;
            serialize(a, &p, &len);
            lbw_assign_free(b);
            b = lbw_assign_new();
            assert_int_equal(lbw_assign_restore(b, p, len), 0);
            free(p);
        }
    }
    assert_same(a, b);
    lbw_assign_free(a);
    lbw_assign_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ops_round_trip_and_refuse_malformed),
        cmocka_unit_test(apply_is_compare_and_set),
        cmocka_unit_test(table_is_bounded),
        cmocka_unit_test(snapshots_round_trip_and_refuse_malformed),
        cmocka_unit_test(replicas_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
