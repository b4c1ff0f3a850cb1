/* test_agentplan.c - node/agentplan: the leader's rules for who pulls each agent.
 *
 * Agents without an owner are assigned to reachable voters, the least loaded first, spread
 * over the nodes; an owner that is not a voter any more, or not reachable once the leader may
 * judge that, loses its agents to another node (never to itself), each op expecting the row
 * it saw; a working owner keeps its agents (no rebalancing when a node comes back); rows of
 * agents that are not configured are released; with no eligible node nothing is planned; and
 * applying the plan to the table leaves every agent owned by exactly one reachable voter.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "node/agentplan.h"

#define MAXOPS 64

static const char *const five[] = {"a1", "a2", "a3", "a4", "a5"};

struct world {
    struct lbw_assign *table;
    struct lbw_agentplan_member m[8];
    uint64_t index;
    struct lbw_agentplan_input in;
    struct lbw_assign_op ops[MAXOPS];
    size_t nops;
};

static void world_init(struct world *w, size_t nmembers)
{
    memset(w, 0, sizeof(*w));
    w->table = lbw_assign_new();
    for (size_t i = 0; i < nmembers; i++)
        w->m[i] = (struct lbw_agentplan_member){i + 1, 1, 1};
    w->in = (struct lbw_agentplan_input){.agents = five, .nagents = 5, .table = w->table,
                                         .members = w->m, .nmembers = nmembers, .self_id = 1,
                                         .judge_reachability = 1};
}

static void plan(struct world *w)
{
    w->nops = lbw_agentplan(&w->in, w->ops, MAXOPS);
}

/* Applies the planned ops to the table, as the state machine would. */
static void commit(struct world *w)
{
    for (size_t i = 0; i < w->nops; i++) {
        uint8_t buf[LBW_ASSIGN_OP_MAX];
        struct lbw_assign_op op;
        long n = lbw_assign_op_encode(&w->ops[i], buf, sizeof(buf));
        assert_true(n > 0);
        assert_int_equal(lbw_assign_apply(w->table, ++w->index, buf, (size_t)n, &op),
                         LBW_ASSIGN_OK);
    }
}

static uint64_t owner(const struct world *w, const char *agent)
{
    const struct lbw_assignment *row = lbw_assign_find(w->table, agent);
    return row ? row->node : 0;
}

static size_t load(const struct world *w, uint64_t node)
{
    size_t n = 0;
    for (size_t i = 0; i < 5; i++)
        n += owner(w, five[i]) == node;
    return n;
}

static void unowned_agents_spread(void **state)
{
    struct world w;
    (void)state;
    world_init(&w, 3);
    plan(&w);
    assert_int_equal(w.nops, 5);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(w.ops[i].type, LBW_ASSIGN_SET);
        assert_int_equal(w.ops[i].expect, 0);
    }
    commit(&w);
    size_t l1 = load(&w, 1), l2 = load(&w, 2), l3 = load(&w, 3);
    assert_int_equal(l1 + l2 + l3, 5);
    assert_true(l1 >= 1 && l1 <= 2 && l2 >= 1 && l2 <= 2 && l3 >= 1 && l3 <= 2);
    plan(&w); /* stable: nothing more to do */
    assert_int_equal(w.nops, 0);
    lbw_assign_free(w.table);
    world_init(&w, 3);
    w.m[1].reachable = 0;       /* not heard from: no agents for it */
    w.m[2].voter = 0;           /* a standby or spare: none either */
    plan(&w);
    commit(&w);
    assert_int_equal(load(&w, 1), 5);
    lbw_assign_free(w.table);
}

static void lost_owners_lose_their_agents(void **state)
{
    struct world w;
    char why[96];
    (void)state;
    world_init(&w, 3);
    plan(&w);
    commit(&w);
    uint64_t victim = owner(&w, "a1");
    const struct lbw_assignment *row = lbw_assign_find(w.table, "a1");
    uint64_t seen = row->index;
    w.m[victim - 1].reachable = 0;
    if (victim == w.in.self_id)
        w.in.self_id = victim == 1 ? 2 : 1; /* the leader always counts as reachable */

    w.in.judge_reachability = 0; /* a leader that has not led long enough waits */
    plan(&w);
    assert_int_equal(w.nops, 0);
    assert_null(lbw_agentplan_reason(&w.in, "a1", why, sizeof(why)));

    w.in.judge_reachability = 1;
    plan(&w);
    assert_int_equal(w.nops, load(&w, victim));
    for (size_t i = 0; i < w.nops; i++)
        assert_true(w.ops[i].node != victim && w.ops[i].node != 0);
    assert_int_equal(w.ops[0].expect, seen);
    assert_non_null(lbw_agentplan_reason(&w.in, "a1", why, sizeof(why)));
    assert_non_null(strstr(why, "not reachable"));
    commit(&w);
    assert_int_equal(load(&w, victim), 0);

    /* it comes back: nothing moves back */
    w.m[victim - 1].reachable = 1;
    plan(&w);
    assert_int_equal(w.nops, 0);

    /* removed from the configuration: its agents move */
    uint64_t gone = owner(&w, "a2");
    w.m[gone - 1].voter = 0;
    if (gone == w.in.self_id)
        w.in.self_id = gone == 1 ? 2 : 1;
    plan(&w);
    assert_int_equal(w.nops, load(&w, gone));
    assert_non_null(lbw_agentplan_reason(&w.in, "a2", why, sizeof(why)));
    assert_non_null(strstr(why, "not a voter"));
    commit(&w);
    assert_int_equal(load(&w, gone), 0);
    lbw_assign_free(w.table);
}

static void unconfigured_rows_are_released(void **state)
{
    struct world w;
    (void)state;
    world_init(&w, 2);
    plan(&w);
    commit(&w);
    w.in.nagents = 3; /* a4 and a5 were removed from the agents list */
    plan(&w);
    assert_int_equal(w.nops, 2);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(w.ops[i].type, LBW_ASSIGN_RELEASE);
        assert_int_equal(w.ops[i].expect, lbw_assign_find(w.table, w.ops[i].agent)->index);
    }
    commit(&w);
    assert_int_equal(owner(&w, "a4"), 0);
    assert_int_equal(owner(&w, "a5"), 0);
    assert_int_not_equal(owner(&w, "a3"), 0);
    lbw_assign_free(w.table);
}

static void nobody_eligible_plans_nothing(void **state)
{
    struct world w;
    (void)state;
    world_init(&w, 2);
    w.m[0].voter = 0; /* the leader itself is not a voter (being demoted) */
    w.m[1].reachable = 0;
    plan(&w);
    assert_int_equal(w.nops, 0);
    size_t n = lbw_agentplan(&w.in, w.ops, 0);
    assert_int_equal(n, 0);
    w.m[1].reachable = 1;
    assert_int_equal(lbw_agentplan(&w.in, w.ops, 2), 2); /* at most max */
    lbw_assign_free(w.table);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unowned_agents_spread),
        cmocka_unit_test(lost_owners_lose_their_agents),
        cmocka_unit_test(unconfigured_rows_are_released),
        cmocka_unit_test(nobody_eligible_plans_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
