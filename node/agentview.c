/* agentview.c - /api/v1/agents and the agents' /metrics lines from the published status. See
 * agentview.h. */
#include "node/agentview.h"

#include <jansson.h>
#include <stdlib.h>

#include "node/expo.h"

static const char *member_name(const struct lbw_cluster_status *cs, uint64_t id)
{
    for (size_t i = 0; i < cs->nmembers; i++)
        if (cs->members[i].id == id && cs->members[i].name[0])
            return cs->members[i].name;
    return NULL;
}

static json_t *opt_time(int64_t ms)
{
    return ms ? json_integer((json_int_t)ms) : json_null();
}

static json_t *owner_json(const struct lbw_cluster_status *cs, uint64_t id)
{
    const char *name = member_name(cs, id);
    if (!id)
        return json_null();
    return json_pack("{s:I, s:o}", "id", (json_int_t)id, "name",
                     name ? json_string(name) : json_null());
}

static json_t *pulls_json(const struct lbw_agent_status *a)
{
    return json_pack("{s:o, s:b, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "last",
                     opt_time(a->last_pull_ms), "ok", a->last_pull_ok, "error", a->last_error,
                     "succeeded", (json_int_t)a->pulls_ok, "failed",
                     (json_int_t)a->pulls_failed, "refused", (json_int_t)a->refusals,
                     "batches", (json_int_t)a->batches_pulled, "bytes",
                     (json_int_t)a->bytes_pulled, "forwarded", (json_int_t)a->batches_forwarded,
                     "forward_failed", (json_int_t)a->forward_failed, "gaps",
                     (json_int_t)a->gaps);
}

static json_t *agent_json(const struct lbw_cluster_status *cs, const struct lbw_agent_status *a)
{
    return json_pack("{s:s, s:s, s:I, s:o, s:I, s:b, s:b, s:I, s:o, s:o}", "name", a->name,
                     "address", a->address, "interval_ms", (json_int_t)a->interval_ms, "owner",
                     owner_json(cs, a->owner), "assigned_index", (json_int_t)a->assigned_index,
                     "owned", a->owned, "up", a->up, "last_seq", (json_int_t)a->last_seq,
                     "last_applied", opt_time(a->last_applied_ms), "pulls", pulls_json(a));
}

void lbw_agentview_api(const struct lbw_web_ctx *ctx, struct lbw_reply *r)
{
    struct lbw_node_status *st = malloc(sizeof(*st));
    json_t *doc = NULL, *agents = json_array();
    if (st && agents) {
        lbw_status_read(ctx->status, st);
        for (size_t i = 0; i < st->nagents; i++)
            json_array_append_new(agents, agent_json(&st->cluster, &st->agents[i]));
        doc = json_pack("{s:b, s:s, s:I, s:O}", "clustered", st->clustered, "node", st->name,
                        "applied_index", (json_int_t)st->fsm.applied_index, "agents", agents);
    }
    json_decref(agents);
    free(st);
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    r->content_type = "application/json";
    r->status = text ? 200 : 500;
    lbw_buf_puts(&r->body, text ? text : "{\"error\":\"out of memory\"}");
    lbw_buf_puts(&r->body, "\n");
    free(text);
}

/* ---- /metrics ---------------------------------------------------------------------------- */

static void family(struct lbw_buf *b, const char *name, const char *type, const char *help)
{
    lbw_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{agent="A"[,extra],vantage="V"} value; agent and node names are [A-Za-z0-9._-]. */
static void line(struct lbw_buf *b, const char *name, const char *agent, const char *extra,
                 const char *vantage, double v)
{
    char val[64];
    lbw_expo_value(val, sizeof(val), v);
    lbw_buf_printf(b, "%s{agent=\"%s\",%s%svantage=\"%s\"} %s\n", name, agent,
                   extra ? extra : "", extra ? "," : "", vantage, val);
}

struct gauge {
    const char *name, *type, *help;
    double (*value)(const struct lbw_agent_status *a);
};

static double up(const struct lbw_agent_status *a) { return a->up; }
static double last_seq(const struct lbw_agent_status *a) { return (double)a->last_seq; }
static double owner(const struct lbw_agent_status *a) { return (double)a->owner; }
static double owned(const struct lbw_agent_status *a) { return a->owned; }
static double refused(const struct lbw_agent_status *a) { return (double)a->refusals; }
static double pulled(const struct lbw_agent_status *a) { return (double)a->batches_pulled; }
static double fwd_failed(const struct lbw_agent_status *a) { return (double)a->forward_failed; }
static double gaps(const struct lbw_agent_status *a) { return (double)a->gaps; }

static const struct gauge gauges[] = {
    {"lbwatch_agent_up", "gauge",
     "1 if this replica applied a batch of the agent within 3 pull intervals.", up},
    {"lbwatch_agent_last_seq", "gauge", "The agent's last origin sequence applied.", last_seq},
    {"lbwatch_agent_owner", "gauge", "Node id that pulls the agent (0: none).", owner},
    {"lbwatch_agent_owned", "gauge", "1 if this node pulls the agent.", owned},
    {"lbwatch_agent_refused_total", "counter", "This node's pulls refused (TLS, identity).",
     refused},
    {"lbwatch_agent_batches_pulled_total", "counter", "Batches this node pulled.", pulled},
    {"lbwatch_agent_forward_failed_total", "counter",
     "Pulled batches this node could not hand to a leader (pulled again later).", fwd_failed},
    {"lbwatch_agent_gaps_total", "counter",
     "Pulls that found batches evicted from the agent's buffer before they were pulled.", gaps},
};

void lbw_agentview_metrics(struct lbw_buf *b, const struct lbw_node_status *st)
{
    const char *n = st->name;
    if (st->nagents > 0) {
        for (size_t g = 0; g < sizeof(gauges) / sizeof(gauges[0]); g++) {
            family(b, gauges[g].name, gauges[g].type, gauges[g].help);
            for (size_t i = 0; i < st->nagents; i++)
                line(b, gauges[g].name, st->agents[i].name, NULL, n,
                     gauges[g].value(&st->agents[i]));
        }
        family(b, "lbwatch_agent_pulls_total", "counter", "This node's pulls, by result.");
        for (size_t i = 0; i < st->nagents; i++) {
            line(b, "lbwatch_agent_pulls_total", st->agents[i].name, "result=\"ok\"", n,
                 (double)st->agents[i].pulls_ok);
            line(b, "lbwatch_agent_pulls_total", st->agents[i].name, "result=\"failed\"", n,
                 (double)st->agents[i].pulls_failed);
        }
    }
    family(b, "lbwatch_fsm_assign_ops_total", "counter",
           "Agent assignment ops applied, by result.");
    for (int i = 0; i < LBW_ASSIGN_RESULTS; i++)
        lbw_buf_printf(b, "lbwatch_fsm_assign_ops_total{result=\"%s\",vantage=\"%s\"} %llu\n",
                       lbw_assign_result_name((enum lbw_assign_result)i), n,
                       (unsigned long long)st->fsm.assign_ops[i]);
}
