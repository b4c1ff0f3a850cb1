/* route.h - the leader's notification planning: routing tree, grouping timers, silences,
 * inhibition, escalation, and the built-in NotificationsFailing alert.
 *
 * Pure functions over (configuration, ledger, now): they read the ledger (alerting/ledger.h)
 * and say which INTENT ops to propose; they change nothing and keep no state, so any node
 * that becomes leader plans the same from its replica.
 *
 * Routing, as in Prometheus Alertmanager: every alert enters the tree at the root (which
 * matches everything); a route that matches passes the alert to its children in order, and
 * the first child that matches takes it unless that child has `cont` set, in which case
 * the following children are tried too. An alert ends at every deepest route that matched
 * (the root when no child matched). Children inherit receiver, group_by and the three timers
 * from their parent unless they set them. The alert then belongs to the group
 * (receiver, group key): the group key is the canonical key G{...} of the alert's values of
 * the route's group_by labels (labels it lacks are left out; "..." groups by every label).
 * Routes to the same receiver with the same group labels share a group; the settings of the
 * route that routed the group's lowest-fingerprint alert apply.
 *
 * What a group notifies: its firing alerts, and its resolved alerts that it notified as
 * firing and has not notified as resolved yet (in the ledger group's notified set). Silenced
 * alerts (an active silence matches) and inhibited alerts (a firing alert matching an
 * inhibit rule's source matchers, other than the alert itself, has the same values of the
 * rule's `equal` labels, and the alert matches its target matchers) are left out. Timers
 * (due when now >= the time given):
 *   new group (never notified, or its last notification had no firing alert):
 *       the earliest firing_since of its firing alerts + group_wait
 *   changed (a firing alert it did not notify in this episode, or a resolved one to tell):
 *       last notification + group_interval
 *   unchanged, some alert firing and not every firing alert acknowledged:
 *       last notification + repeat_interval
 * An intent carries at most LBW_INTENT_MAX_ALERTS alerts, the lowest fingerprints first;
 * the plan says how many were left out.
 *
 * Escalation: an alert that a route with escalate_after routed, firing, unacknowledged and
 * not yet escalated in this episode, escalate_after past its firing_since, goes into an
 * escalate intent to escalate_to under the same group key (one per receiver and group key,
 * and once per episode: applying it marks the alerts escalated).
 *
 * Planning is idempotent: until an intent commits, planning again (even later) plans it
 * again with the same expected group version, and whichever of the two commits second is
 * STALE. The leader should keep one proposal in flight per (receiver, group key, kind).
 */
#ifndef LBW_ROUTE_H
#define LBW_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "alerting/ledger.h"
#include "alerting/rule.h"

#define LBW_ROUTE_MAX_MATCHERS 8
#define LBW_ROUTE_MAX_GROUP_BY 16
#define LBW_ROUTE_MAX_DEPTH 8
#define LBW_ROUTE_MAX_MATCHES 16        /* routes one alert can end at */
#define LBW_INHIBIT_MAX_EQUAL 8
#define LBW_ROUTE_MAX_DURATION_MS (366 * 24 * 3600 * 1000LL)
#define LBW_ROUTE_DEFAULT_GROUP_WAIT_MS (30 * 1000LL)
#define LBW_ROUTE_DEFAULT_GROUP_INTERVAL_MS (5 * 60 * 1000LL)
#define LBW_ROUTE_DEFAULT_REPEAT_INTERVAL_MS (4 * 3600 * 1000LL)
#define LBW_NOTIFICATIONS_FAILING_AFTER 3   /* consecutive failed deliveries */

struct lbw_route {
    struct lbw_matcher matchers[LBW_ROUTE_MAX_MATCHERS];    /* severity is a label */
    size_t nmatchers;
    const char *receiver;       /* NULL: the parent's */
    const char *group_by[LBW_ROUTE_MAX_GROUP_BY];   /* label names, or the one name "..." */
    size_t ngroup_by;           /* 0: the parent's (the root's: one group for everything) */
    int64_t group_wait_ms;      /* 0: the parent's (the root's: 30 s) */
    int64_t group_interval_ms;  /* 0: the parent's (the root's: 5 min) */
    int64_t repeat_interval_ms; /* 0: the parent's (the root's: 4 h) */
    int cont;                   /* `continue`: try the following siblings too */
    int64_t escalate_after_ms;  /* 0: this route does not escalate */
    const char *escalate_to;    /* the receiver escalations go to */
    const struct lbw_route *routes;     /* children, in order */
    size_t nroutes;
};

struct lbw_inhibit_rule {
    struct lbw_matcher source[LBW_ROUTE_MAX_MATCHERS];
    size_t nsource;
    struct lbw_matcher target[LBW_ROUTE_MAX_MATCHERS];
    size_t ntarget;
    const char *equal[LBW_INHIBIT_MAX_EQUAL];   /* label names */
    size_t nequal;
};

struct lbw_route_config {
    struct lbw_route root;      /* no matchers; must name a receiver */
    const struct lbw_inhibit_rule *inhibit;
    size_t ninhibit;
    const char *const *receivers;   /* the configured receivers; when given, every route
                                       must name one of them */
    size_t nreceivers;
};

/* Checks a configuration: names, durations (0 .. LBW_ROUTE_MAX_DURATION_MS), escalation
 * settings given together, depth, "..." alone, receivers known. Returns 0, or -1 with the
 * first problem in why. */
int lbw_route_check(const struct lbw_route_config *c, char *why, size_t whylen);

/* A route an alert ends at, with the inherited settings resolved. */
struct lbw_route_match {
    const struct lbw_route *route;
    const char *receiver;
    char group_key[LBW_KEY_MAX];
    int64_t group_wait_ms, group_interval_ms, repeat_interval_ms;
};

/* Routes an alert (its parsed labels). Fills up to max matches, in tree order; returns how
 * many (at least 1: the root), or -1 if a group key cannot be built. */
int lbw_route_alert(const struct lbw_route_config *c, const struct lbw_key_parsed *labels,
                    struct lbw_route_match *out, size_t max);

/* The active silence (lowest id) that mutes the alert at now, or NULL. */
const struct lbw_silence *lbw_route_silenced(const struct lbw_ledger *l,
                                             const struct lbw_alert *a, int64_t now);

/* The firing alert (lowest fingerprint) that inhibits a, or NULL. */
const struct lbw_alert *lbw_route_inhibited(const struct lbw_route_config *c,
                                            const struct lbw_ledger *l,
                                            const struct lbw_alert *a);

/* One intent to propose. Pointers are valid during the callback only. */
struct lbw_plan {
    const char *receiver;
    const char *group_key;
    enum lbw_intent_kind kind;
    uint64_t expect_group;      /* the group version (0: no group); 0 for escalations */
    const struct lbw_alert_ref *alerts;     /* by ascending fingerprint */
    size_t nalerts;
    size_t omitted;             /* alerts beyond LBW_INTENT_MAX_ALERTS */
    int64_t due_at;             /* when its timer came due */
    const struct lbw_route *route;
};
typedef void (*lbw_plan_fn)(void *arg, const struct lbw_plan *p);

/* Calls fn for every intent due at now: notify and repeat intents by (receiver, group key),
 * then escalations by (receiver, group key). Returns how many, or -1 when out of memory
 * (nothing is reported then). */
long lbw_route_plan(const struct lbw_route_config *c, const struct lbw_ledger *l, int64_t now,
                    lbw_plan_fn fn, void *arg);

/* The INTENT op of a plan, timed now, ready for lbw_op_encode. Its strings point into p. */
void lbw_plan_op(const struct lbw_plan *p, int64_t now, struct lbw_op *op);

/* The built-in NotificationsFailing alert: one instance per receiver with health in the
 * ledger, ALERTS{alertname="NotificationsFailing",receiver="NAME",severity="critical"},
 * active when it has LBW_NOTIFICATIONS_FAILING_AFTER or more consecutive failures (value:
 * their number); and an inactive instance for every NotificationsFailing alert in the
 * ledger whose receiver no longer has health, so that the leader resolves it. The leader
 * feeds them into its transitions like a rule's instances, with
 * lbw_route_failing_annotations. Returns how many. */
size_t lbw_route_failing_instances(const struct lbw_ledger *l, lbw_instance_cb cb, void *arg);

/* The annotations of a receiver's NotificationsFailing alert, a canonical key
 * A{description="...",summary="..."} into out[size]. Returns its length or -1. */
int lbw_route_failing_annotations(const struct lbw_receiver_health *h, char *out, size_t size);

#endif
