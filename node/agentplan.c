/* agentplan.c - the leader's assignment rules: which agents need an owner, and who. See
 * agentplan.h. */
#include "node/agentplan.h"

#include <stdio.h>
#include <string.h>

static const struct lbw_agentplan_member *member(const struct lbw_agentplan_input *in,
                                                 uint64_t id)
{
    for (size_t i = 0; i < in->nmembers; i++)
        if (in->members[i].id == id)
            return &in->members[i];
    return NULL;
}

static int reachable(const struct lbw_agentplan_input *in, const struct lbw_agentplan_member *m)
{
    return m->id == in->self_id || m->reachable;
}

/* NULL if the row's owner may keep the agent, else why not (into buf). */
static const char *owner_lost(const struct lbw_agentplan_input *in,
                              const struct lbw_assignment *row, char *buf, size_t len)
{
    const struct lbw_agentplan_member *m;
    if (!row) {
        snprintf(buf, len, "no owner");
        return buf;
    }
    m = member(in, row->node);
    if (!m || !m->voter) {
        snprintf(buf, len, "owner node %llu is not a voter", (unsigned long long)row->node);
        return buf;
    }
    if (in->judge_reachability && !reachable(in, m)) {
        snprintf(buf, len, "owner node %llu is not reachable", (unsigned long long)row->node);
        return buf;
    }
    return NULL;
}

const char *lbw_agentplan_reason(const struct lbw_agentplan_input *in, const char *agent,
                                 char *buf, size_t len)
{
    return owner_lost(in, lbw_assign_find(in->table, agent), buf, len);
}

static uint64_t rendezvous(const char *agent, uint64_t id)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = agent; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    for (int i = 0; i < 8; i++)
        h = (h ^ ((id >> (8 * i)) & 0xff)) * 1099511628211ull;
    return h;
}

static int configured(const struct lbw_agentplan_input *in, const char *agent)
{
    for (size_t i = 0; i < in->nagents; i++)
        if (strcmp(in->agents[i], agent) == 0)
            return 1;
    return 0;
}

/* Configured agents node owns now, plus those planned for it in ops[0..nops). */
static size_t load_of(const struct lbw_agentplan_input *in, uint64_t node,
                      const struct lbw_assign_op *ops, size_t nops)
{
    size_t n = 0;
    for (size_t i = 0; i < in->nagents; i++) {
        const struct lbw_assignment *row = lbw_assign_find(in->table, in->agents[i]);
        int replanned = 0;
        for (size_t k = 0; k < nops; k++)
            replanned |= strcmp(ops[k].agent, in->agents[i]) == 0;
        if (row && row->node == node && !replanned)
            n++;
    }
    for (size_t k = 0; k < nops; k++)
        n += ops[k].type == LBW_ASSIGN_SET && ops[k].node == node;
    return n;
}

/* The best new owner for agent other than avoid, or 0 if none is eligible. */
static uint64_t choose(const struct lbw_agentplan_input *in, const char *agent, uint64_t avoid,
                       const struct lbw_assign_op *ops, size_t nops)
{
    uint64_t best = 0, best_hash = 0;
    size_t best_load = 0;
    for (size_t i = 0; i < in->nmembers; i++) {
        const struct lbw_agentplan_member *m = &in->members[i];
        if (!m->voter || !reachable(in, m) || m->id == avoid)
            continue;
        size_t load = load_of(in, m->id, ops, nops);
        uint64_t h = rendezvous(agent, m->id);
        if (best == 0 || load < best_load || (load == best_load && h > best_hash)) {
            best = m->id;
            best_load = load;
            best_hash = h;
        }
    }
    return best;
}

size_t lbw_agentplan(const struct lbw_agentplan_input *in, struct lbw_assign_op *ops,
                     size_t max)
{
    size_t n = 0, nrows;
    char why[96];
    for (size_t i = 0; i < in->nagents && n < max; i++) {
        const struct lbw_assignment *row = lbw_assign_find(in->table, in->agents[i]);
        if (!owner_lost(in, row, why, sizeof(why)))
            continue;
        uint64_t to = choose(in, in->agents[i], row ? row->node : 0, ops, n);
        if (to == 0)
            continue;
        memset(&ops[n], 0, sizeof(ops[n]));
        ops[n].type = LBW_ASSIGN_SET;
        snprintf(ops[n].agent, sizeof(ops[n].agent), "%s", in->agents[i]);
        ops[n].expect = row ? row->index : 0;
        ops[n].node = to;
        n++;
    }
    const struct lbw_assignment *rows = lbw_assign_rows(in->table, &nrows);
    for (size_t i = 0; i < nrows && n < max; i++) {
        if (configured(in, rows[i].agent))
            continue;
        memset(&ops[n], 0, sizeof(ops[n]));
        ops[n].type = LBW_ASSIGN_RELEASE;
        snprintf(ops[n].agent, sizeof(ops[n].agent), "%s", rows[i].agent);
        ops[n].expect = rows[i].index;
        n++;
    }
    return n;
}
