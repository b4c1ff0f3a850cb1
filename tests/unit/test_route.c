/* test_route.c - alerting/route: the leader's notification planning.
 *
 * The routing tree (matchers on labels and severity, continue, inheritance, the root as the
 * default), grouping (group_by, "..."), the group_wait / group_interval / repeat_interval
 * timers at their exact boundaries, resolved alerts notified once, silences (window,
 * matchers, expiry), acknowledgements that stop repeats and escalation, escalation once per
 * episode, inhibition (TargetDown for www inhibits CertExpiringSoon for www, not for db),
 * idempotent planning whose duplicate intent is STALE, the intent size cap, the built-in
 * NotificationsFailing instances, and the configuration check. Plans are applied to a real
 * ledger through encoded ops, as the leader does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerting/route.h"
#include "tests/support/ledgerfx.h"

#define T0 LFX_T0
#define SEC LFX_SEC
#define MIN LFX_MIN
#define HOUR LFX_HOUR
#define DAY LFX_DAY

#define WWW_DOWN "ALERTS{alertname=\"TargetDown\",severity=\"critical\",target=\"www\"}"
#define DB_DOWN "ALERTS{alertname=\"TargetDown\",severity=\"critical\",target=\"db\"}"
#define WWW_CERT "ALERTS{alertname=\"CertExpiringSoon\",severity=\"warning\",target=\"www\"}"
#define DB_CERT "ALERTS{alertname=\"CertExpiringSoon\",severity=\"warning\",target=\"db\"}"
#define WWW_SLOW "ALERTS{alertname=\"HandshakeSlow\",severity=\"info\",target=\"www\"}"
#define G_WWW "G{target=\"www\"}"
#define G_DB "G{target=\"db\"}"

enum { OK = LBW_APPLY_OK, STALE = LBW_APPLY_STALE };

/* root: ops, by alertname, 30 s / 5 min / 4 h
 *   severity=critical -> pager by target, continue, escalates after 30 min to oncall
 *   alertname=CertExpiringSoon -> certs by every label, group_wait 1 min */
static const struct lbw_route children[] = {
    {.matchers = {{"severity", "critical", 0}}, .nmatchers = 1, .receiver = "pager",
     .group_by = {"target"}, .ngroup_by = 1, .cont = 1, .escalate_after_ms = 30 * MIN,
     .escalate_to = "oncall"},
    {.matchers = {{"alertname", "CertExpiringSoon", 0}}, .nmatchers = 1, .receiver = "certs",
     .group_by = {"..."}, .ngroup_by = 1, .group_wait_ms = MIN},
};
static const struct lbw_inhibit_rule inhibit[] = {
    {.source = {{"alertname", "TargetDown", 0}}, .nsource = 1,
     .target = {{"alertname", "CertExpiringSoon", 0}}, .ntarget = 1, .equal = {"target"},
     .nequal = 1},
};
static const char *const receivers[] = {"ops", "pager", "certs", "oncall"};

static struct lbw_route_config config(void)
{
    struct lbw_route_config c = {
        .root = {.receiver = "ops", .group_by = {"alertname"}, .ngroup_by = 1,
                 .group_wait_ms = 30 * SEC, .group_interval_ms = 5 * MIN,
                 .repeat_interval_ms = 4 * HOUR, .routes = children, .nroutes = 2},
        .inhibit = inhibit, .ninhibit = 1, .receivers = receivers, .nreceivers = 4};
    char why[128];
    if (lbw_route_check(&c, why, sizeof(why)) != 0)
        fail_msg("config: %s", why);
    return c;
}

static uint64_t fp(const char *labels)
{
    return lbw_fingerprint(labels, strlen(labels));
}

static const struct lbw_alert *alert(const struct lfx *f, const char *labels)
{
    const struct lbw_alert *a = lbw_ledger_alert(f->l, fp(labels));
    assert_non_null(a);
    return a;
}

static struct lfx fx(void)
{
    struct lfx f;
    assert_int_equal(lfx_init(&f), 0);
    return f;
}

/* ---- collecting plans -------------------------------------------------------------------- */

struct plan {
    char receiver[LBW_LEDGER_NAME_MAX];
    char key[LBW_KEY_MAX];
    enum lbw_intent_kind kind;
    uint64_t expect;
    struct lbw_alert_ref alerts[LBW_INTENT_MAX_ALERTS];
    size_t nalerts, omitted;
    int64_t due_at;
};

struct plans {
    struct plan v[16];
    size_t n;
};

static void collect(void *arg, const struct lbw_plan *p)
{
    struct plans *ps = arg;
    assert_true(ps->n < 16);
    struct plan *q = &ps->v[ps->n++];
    snprintf(q->receiver, sizeof(q->receiver), "%s", p->receiver);
    snprintf(q->key, sizeof(q->key), "%s", p->group_key);
    q->kind = p->kind;
    q->expect = p->expect_group;
    memcpy(q->alerts, p->alerts, p->nalerts * sizeof(*p->alerts));
    q->nalerts = p->nalerts;
    q->omitted = p->omitted;
    q->due_at = p->due_at;
}

static struct plans plan(const struct lbw_route_config *c, const struct lfx *f, int64_t now)
{
    struct plans ps;
    memset(&ps, 0, sizeof(ps));
    long n = lbw_route_plan(c, f->l, now, collect, &ps);
    assert_int_equal(n, (long)ps.n);
    return ps;
}

/* The plan for receiver (and key, if given), or NULL. */
static const struct plan *find(const struct plans *ps, const char *receiver, const char *key)
{
    for (size_t i = 0; i < ps->n; i++)
        if (strcmp(ps->v[i].receiver, receiver) == 0 && (!key || strcmp(ps->v[i].key, key) == 0))
            return &ps->v[i];
    return NULL;
}

static int has(const struct plans *ps, const char *receiver, const char *key)
{
    return find(ps, receiver, key) != NULL;
}

static int names(const struct plan *p, const char *labels, enum lbw_notify_status st)
{
    for (size_t i = 0; i < p->nalerts; i++)
        if (p->alerts[i].fingerprint == fp(labels))
            return p->alerts[i].status == st;
    return 0;
}

/* Proposes a plan as the leader would: its INTENT op, timed now. Returns the result. */
static int propose(struct lfx *f, const struct plan *p, int64_t now)
{
    struct lbw_plan lp = {p->receiver, p->key, p->kind, p->expect, p->alerts, p->nalerts,
                          p->omitted, p->due_at, NULL};
    static struct lbw_op op;
    lbw_plan_op(&lp, now, &op);
    return lfx_apply(f, &op);
}

/* ---- routing ----------------------------------------------------------------------------- */

static int route(const struct lbw_route_config *c, const char *labels,
                 struct lbw_route_match *m)
{
    struct lbw_key_parsed k;
    assert_int_equal(lbw_key_parse(labels, strlen(labels), &k), 0);
    return lbw_route_alert(c, &k, m, LBW_ROUTE_MAX_MATCHES);
}

static void routing_tree(void **state)
{
    (void)state;
    struct lbw_route_config c = config();
    struct lbw_route_match m[LBW_ROUTE_MAX_MATCHES];

    /* severity=critical: pager, by target (continue: the cert route is tried too) */
    assert_int_equal(route(&c, WWW_DOWN, m), 1);
    assert_string_equal(m[0].receiver, "pager");
    assert_string_equal(m[0].group_key, G_WWW);
    assert_ptr_equal(m[0].route, &children[0]);
    assert_int_equal(m[0].group_wait_ms, 30 * SEC);     /* inherited */
    assert_int_equal(m[0].repeat_interval_ms, 4 * HOUR);

    /* the cert route, grouping by every label, its own group_wait */
    assert_int_equal(route(&c, WWW_CERT, m), 1);
    assert_string_equal(m[0].receiver, "certs");
    assert_string_equal(m[0].group_key,
                        "G{alertname=\"CertExpiringSoon\",severity=\"warning\",target=\"www\"}");
    assert_int_equal(m[0].group_wait_ms, MIN);
    assert_int_equal(m[0].group_interval_ms, 5 * MIN);

    /* a critical certificate alert: both, through continue */
    const char *crit = "ALERTS{alertname=\"CertExpiringSoon\",severity=\"critical\",target=\"db\"}";
    assert_int_equal(route(&c, crit, m), 2);
    assert_string_equal(m[0].receiver, "pager");
    assert_string_equal(m[0].group_key, G_DB);
    assert_string_equal(m[1].receiver, "certs");

    /* nothing matched: the root, the default receiver */
    assert_int_equal(route(&c, WWW_SLOW, m), 1);
    assert_string_equal(m[0].receiver, "ops");
    assert_string_equal(m[0].group_key, "G{alertname=\"HandshakeSlow\"}");
    assert_ptr_equal(m[0].route, &c.root);

    /* without continue the first match ends the search; a child inherits the receiver; no
       group_by at all is one group */
    const struct lbw_route grandchildren[] = {
        {.matchers = {{"target", "www", 0}}, .nmatchers = 1, .group_wait_ms = 5 * SEC},
    };
    const struct lbw_route kids[] = {
        {.matchers = {{"target", "db", 1}}, .nmatchers = 1, .receiver = "pager",
         .routes = grandchildren, .nroutes = 1},
        {.matchers = {{"severity", "critical", 0}}, .nmatchers = 1, .receiver = "oncall"},
    };
    struct lbw_route_config c2 = {.root = {.receiver = "ops", .routes = kids, .nroutes = 2}};
    char why[128];
    assert_int_equal(lbw_route_check(&c2, why, sizeof(why)), 0);
    assert_int_equal(route(&c2, WWW_DOWN, m), 1);
    assert_ptr_equal(m[0].route, &grandchildren[0]);
    assert_string_equal(m[0].receiver, "pager");
    assert_string_equal(m[0].group_key, "G");
    assert_int_equal(m[0].group_wait_ms, 5 * SEC);
    assert_int_equal(m[0].group_interval_ms, LBW_ROUTE_DEFAULT_GROUP_INTERVAL_MS);
    assert_int_equal(route(&c2, DB_DOWN, m), 1);
    assert_string_equal(m[0].receiver, "oncall");
    assert_int_equal(m[0].group_wait_ms, LBW_ROUTE_DEFAULT_GROUP_WAIT_MS);
}

/* ---- grouping and timers ----------------------------------------------------------------- */

static void timers_at_their_boundaries(void **state)
{
    (void)state;
    struct lbw_route_config c = config();
    struct lfx f = fx();
    struct plans ps;

    assert_int_equal(lfx_transition(&f, T0, WWW_SLOW, LBW_ALERT_PENDING), OK);
    assert_int_equal(plan(&c, &f, T0 + DAY).n, 0);      /* pending: never notified */
    assert_int_equal(lfx_transition(&f, T0 + MIN, WWW_SLOW, LBW_ALERT_FIRING), OK);

    /* new group: group_wait after its first alert fired */
    assert_int_equal(plan(&c, &f, T0 + MIN + 30 * SEC - 1).n, 0);
    ps = plan(&c, &f, T0 + MIN + 30 * SEC);
    assert_int_equal(ps.n, 1);
    const struct plan *p = &ps.v[0];
    assert_string_equal(p->receiver, "ops");
    assert_string_equal(p->key, "G{alertname=\"HandshakeSlow\"}");
    assert_int_equal(p->kind, LBW_INTENT_NOTIFY);
    assert_int_equal(p->expect, 0);
    assert_int_equal(p->due_at, T0 + MIN + 30 * SEC);
    assert_int_equal(p->nalerts, 1);
    assert_true(names(p, WWW_SLOW, LBW_NOTIFY_FIRING));
    assert_int_equal(p->alerts[0].seq, alert(&f, WWW_SLOW)->seq);
    int64_t t1 = T0 + 2 * MIN;
    assert_int_equal(propose(&f, p, t1), OK);
    uint64_t v1 = f.index;

    /* unchanged: nothing until repeat_interval */
    assert_int_equal(plan(&c, &f, t1 + 4 * HOUR - 1).n, 0);

    /* a second alert in the group: group_interval after the last notification */
    const char *other = "ALERTS{alertname=\"HandshakeSlow\",severity=\"info\",target=\"db\"}";
    assert_int_equal(lfx_transition(&f, t1 + MIN, other, LBW_ALERT_FIRING), OK);
    assert_int_equal(plan(&c, &f, t1 + 5 * MIN - 1).n, 0);
    ps = plan(&c, &f, t1 + 5 * MIN);
    assert_int_equal(ps.n, 1);
    p = &ps.v[0];
    assert_int_equal(p->kind, LBW_INTENT_NOTIFY);
    assert_int_equal(p->expect, v1);
    assert_int_equal(p->due_at, t1 + 5 * MIN);
    assert_int_equal(p->nalerts, 2);
    assert_true(p->alerts[0].fingerprint < p->alerts[1].fingerprint);
    int64_t t2 = t1 + 6 * MIN;
    assert_int_equal(propose(&f, p, t2), OK);

    /* unchanged and firing: repeat_interval */
    assert_int_equal(plan(&c, &f, t2 + 4 * HOUR - 1).n, 0);
    ps = plan(&c, &f, t2 + 4 * HOUR);
    assert_int_equal(ps.n, 1);
    assert_int_equal(ps.v[0].kind, LBW_INTENT_REPEAT);
    assert_int_equal(ps.v[0].expect, f.index);
    assert_int_equal(ps.v[0].nalerts, 2);
    lfx_free(&f);
}

static void grouping_by_labels(void **state)
{
    (void)state;
    struct lbw_route_config c = config();
    struct lfx f = fx();
    /* two critical alerts for www: one pager group by target; TargetDown for db another */
    const char *crit = "ALERTS{alertname=\"TLSVersionOld\",severity=\"critical\",target=\"www\"}";
    assert_int_equal(lfx_transition(&f, T0, WWW_DOWN, LBW_ALERT_FIRING), OK);
    assert_int_equal(lfx_transition(&f, T0, crit, LBW_ALERT_FIRING), OK);
    assert_int_equal(lfx_transition(&f, T0, DB_DOWN, LBW_ALERT_FIRING), OK);
    struct plans ps = plan(&c, &f, T0 + MIN);
    const struct plan *www = find(&ps, "pager", G_WWW), *db = find(&ps, "pager", G_DB);
    assert_non_null(www);
    assert_non_null(db);
    assert_int_equal(www->nalerts, 2);
    assert_true(names(www, WWW_DOWN, LBW_NOTIFY_FIRING));
    assert_true(names(www, crit, LBW_NOTIFY_FIRING));
    assert_int_equal(db->nalerts, 1);
    assert_int_equal(ps.n, 2);
    /* order: by receiver, then group key */
    assert_string_equal(ps.v[0].key, G_DB);
    assert_string_equal(ps.v[1].key, G_WWW);
    lfx_free(&f);
}

static void resolved_notified_once(void **state)
{
    (void)state;
    struct lbw_route_config c = config();
    struct lfx f = fx();
    assert_int_equal(lfx_transition(&f, T0, WWW_DOWN, LBW_ALERT_FIRING), OK);
    assert_int_equal(lfx_transition(&f, T0, DB_DOWN, LBW_ALERT_FIRING), OK);
    struct plans ps = plan(&c, &f, T0 + 30 * SEC);
    assert_int_equal(ps.n, 2);
    for (size_t i = 0; i < ps.n; i++)
        assert_int_equal(propose(&f, &ps.v[i], T0 + 30 * SEC), OK);
    /* (acknowledged, so that it does not escalate in what follows) */
    assert_int_equal(lfx_ack(&f, T0 + 30 * SEC, DB_DOWN, alert(&f, DB_DOWN)->seq, "bob"), OK);

    assert_int_equal(lfx_transition(&f, T0 + MIN, WWW_DOWN, LBW_ALERT_RESOLVED), OK);
    assert_int_equal(plan(&c, &f, T0 + 30 * SEC + 5 * MIN - 1).n, 0);
    ps = plan(&c, &f, T0 + 30 * SEC + 5 * MIN);
    assert_int_equal(ps.n, 1);
    assert_string_equal(ps.v[0].key, G_WWW);
    assert_int_equal(ps.v[0].kind, LBW_INTENT_NOTIFY);
    assert_true(names(&ps.v[0], WWW_DOWN, LBW_NOTIFY_RESOLVED));
    assert_int_equal(propose(&f, &ps.v[0], T0 + 10 * MIN), OK);
    const struct lbw_group *g = lbw_ledger_group(f.l, "pager", G_WWW);
    assert_int_equal(g->nmembers, 0);
    uint64_t version = g->version;
    /* told once: nothing more, however late */
    assert_int_equal(plan(&c, &f, T0 + 50 * MIN).n, 0);

    /* an alert that fires and resolves before its group is notified is never told: in a
       new group, or in one that notified others (db stays unchanged) */
    assert_int_equal(lfx_transition(&f, T0 + HOUR, WWW_SLOW, LBW_ALERT_FIRING), OK);
    assert_int_equal(lfx_transition(&f, T0 + HOUR + SEC, WWW_SLOW, LBW_ALERT_RESOLVED), OK);
    assert_int_equal(plan(&c, &f, T0 + HOUR + MIN).n, 0);
    const char *db_too = "ALERTS{alertname=\"TLSVersionOld\",severity=\"critical\",target=\"db\"}";
    assert_int_equal(lfx_transition(&f, T0 + HOUR, db_too, LBW_ALERT_FIRING), OK);
    assert_int_equal(lfx_transition(&f, T0 + HOUR + SEC, db_too, LBW_ALERT_RESOLVED), OK);
    assert_int_equal(plan(&c, &f, T0 + HOUR + MIN).n, 0);

    /* the group becomes new again: group_wait, not group_interval */
    assert_int_equal(lfx_transition(&f, T0 + HOUR, WWW_DOWN, LBW_ALERT_FIRING), OK);
    assert_int_equal(plan(&c, &f, T0 + HOUR + 30 * SEC - 1).n, 0);
    ps = plan(&c, &f, T0 + HOUR + 30 * SEC);
    assert_int_equal(ps.n, 1);
    assert_int_equal(ps.v[0].expect, version);
    lfx_free(&f);
}

static void intent_cap(void **state)
{
    (void)state;
    struct lbw_route_config c = config();
    struct lfx f = fx();
    char labels[LBW_KEY_MAX];
    for (int i = 0; i < LBW_INTENT_MAX_ALERTS + 6; i++) {
        snprintf(labels, sizeof(labels), "ALERTS{alertname=\"Many\",n=\"%d\"}", i);
        assert_int_equal(lfx_transition(&f, T0, labels, LBW_ALERT_FIRING), OK);
    }
    struct plans ps = plan(&c, &f, T0 + MIN);
    assert_int_equal(ps.n, 1);
    assert_int_equal(ps.v[0].nalerts, LBW_INTENT_MAX_ALERTS);
    assert_int_equal(ps.v[0].omitted, 6);
    for (size_t i = 1; i < ps.v[0].nalerts; i++)
        assert_true(ps.v[0].alerts[i - 1].fingerprint < ps.v[0].alerts[i].fingerprint);
    assert_int_equal(propose(&f, &ps.v[0], T0 + MIN), OK);
    lfx_free(&f);
}

/* ---- silences, inhibition, acknowledgements, escalation ---------------------------------- */

static void silences(void **state)
{
    (void)state;
    struct lbw_route_config c = config();
    struct lfx f = fx();
    struct lbw_matcher www[] = {{"target", "www", 0}};
    struct lbw_matcher not_www[] = {{"target", "www", 1}, {"alertname", "TargetDown", 0}};
    assert_int_equal(lfx_transition(&f, T0, WWW_DOWN, LBW_ALERT_FIRING), OK);
    assert_int_equal(lfx_transition(&f, T0, DB_DOWN, LBW_ALERT_FIRING), OK);
    /* active from T0 + 1 min to T0 + 1 h; one for everything but www from 2 h */
    assert_int_equal(lfx_silence(&f, T0, T0 + MIN, T0 + HOUR, www, 1), OK);
    uint64_t sw = f.index;
    assert_int_equal(lfx_silence(&f, T0, T0 + 2 * HOUR, T0 + 3 * HOUR, not_www, 2), OK);

    /* not yet active: both notified */
    struct plans ps = plan(&c, &f, T0 + MIN - 1);
    assert_true(has(&ps, "pager", G_WWW) && has(&ps, "pager", G_DB));
    assert_null(lbw_route_silenced(f.l, alert(&f, WWW_DOWN), T0 + MIN - 1));
    /* active: www left out (of notifications and escalations, not of the ledger) */
    ps = plan(&c, &f, T0 + MIN);
    assert_int_equal(ps.n, 1);
    assert_string_equal(ps.v[0].key, G_DB);
    const struct lbw_silence *s = lbw_route_silenced(f.l, alert(&f, WWW_DOWN), T0 + MIN);
    assert_non_null(s);
    assert_int_equal(s->id, sw);
    assert_null(lbw_route_silenced(f.l, alert(&f, DB_DOWN), T0 + MIN));
    ps = plan(&c, &f, T0 + HOUR - 1);
    assert_true(!has(&ps, "pager", G_WWW) && !has(&ps, "oncall", G_WWW));
    assert_true(has(&ps, "pager", G_DB) && has(&ps, "oncall", G_DB));
    /* ended: back */
    ps = plan(&c, &f, T0 + HOUR);
    assert_true(has(&ps, "pager", G_WWW) && has(&ps, "oncall", G_WWW));
    /* the negated matcher: db muted, www not */
    ps = plan(&c, &f, T0 + 2 * HOUR);
    assert_true(has(&ps, "pager", G_WWW) && !has(&ps, "pager", G_DB));
    assert_non_null(lbw_route_silenced(f.l, alert(&f, DB_DOWN), T0 + 2 * HOUR));
    /* expired early */
    assert_int_equal(lfx_expire(&f, T0 + 2 * HOUR + MIN, f.index), OK);
    ps = plan(&c, &f, T0 + 2 * HOUR + MIN);
    assert_true(has(&ps, "pager", G_WWW) && has(&ps, "pager", G_DB));
    assert_null(lbw_route_silenced(f.l, alert(&f, DB_DOWN), T0 + 2 * HOUR + MIN));
    lfx_free(&f);
}

static void inhibition(void **state)
{
    (void)state;
    struct lbw_route_config c = config();
    struct lfx f = fx();
    assert_int_equal(lfx_transition(&f, T0, WWW_DOWN, LBW_ALERT_FIRING), OK);
    assert_int_equal(lfx_transition(&f, T0, WWW_CERT, LBW_ALERT_FIRING), OK);
    assert_int_equal(lfx_transition(&f, T0, DB_CERT, LBW_ALERT_FIRING), OK);

    const struct lbw_alert *src = lbw_route_inhibited(&c, f.l, alert(&f, WWW_CERT));
    assert_non_null(src);
    assert_string_equal(src->labels, WWW_DOWN);
    assert_null(lbw_route_inhibited(&c, f.l, alert(&f, DB_CERT)));
    assert_null(lbw_route_inhibited(&c, f.l, alert(&f, WWW_DOWN)));

    struct plans ps = plan(&c, &f, T0 + HOUR);
    assert_non_null(find(&ps, "certs", "G{alertname=\"CertExpiringSoon\",severity=\"warning\","
                                       "target=\"db\"}"));
    assert_null(find(&ps, "certs", "G{alertname=\"CertExpiringSoon\",severity=\"warning\","
                                   "target=\"www\"}"));
    assert_non_null(find(&ps, "pager", G_WWW));

    /* a pending source inhibits nothing; a resolved one neither */
    assert_int_equal(lfx_transition(&f, T0 + HOUR, WWW_DOWN, LBW_ALERT_RESOLVED), OK);
    assert_null(lbw_route_inhibited(&c, f.l, alert(&f, WWW_CERT)));
    ps = plan(&c, &f, T0 + HOUR);
    assert_non_null(find(&ps, "certs", "G{alertname=\"CertExpiringSoon\",severity=\"warning\","
                                       "target=\"www\"}"));
    assert_int_equal(lfx_transition(&f, T0 + HOUR, WWW_DOWN, LBW_ALERT_PENDING), OK);
    assert_null(lbw_route_inhibited(&c, f.l, alert(&f, WWW_CERT)));
    lfx_free(&f);
}

static void acknowledgement_stops_repeats(void **state)
{
    (void)state;
    struct lbw_route_config c = config();
    struct lfx f = fx();
    assert_int_equal(lfx_transition(&f, T0, WWW_SLOW, LBW_ALERT_FIRING), OK);
    struct plans ps = plan(&c, &f, T0 + 30 * SEC);
    assert_int_equal(propose(&f, &ps.v[0], T0 + 30 * SEC), OK);
    assert_int_equal(plan(&c, &f, T0 + 30 * SEC + 4 * HOUR).n, 1);   /* would repeat */
    assert_int_equal(lfx_ack(&f, T0 + HOUR, WWW_SLOW, alert(&f, WWW_SLOW)->seq, "bob"), OK);
    assert_int_equal(plan(&c, &f, T0 + 30 * SEC + 4 * HOUR).n, 0);
    assert_int_equal(plan(&c, &f, T0 + 30 * SEC + 40 * HOUR).n, 0);
    /* a new alert in the group is news, acknowledged or not */
    const char *other = "ALERTS{alertname=\"HandshakeSlow\",severity=\"info\",target=\"db\"}";
    assert_int_equal(lfx_transition(&f, T0 + 2 * HOUR, other, LBW_ALERT_FIRING), OK);
    ps = plan(&c, &f, T0 + 2 * HOUR);
    assert_int_equal(ps.n, 1);
    assert_int_equal(ps.v[0].kind, LBW_INTENT_NOTIFY);
    assert_int_equal(propose(&f, &ps.v[0], T0 + 2 * HOUR), OK);
    /* one of two acknowledged: repeats go on */
    assert_int_equal(plan(&c, &f, T0 + 6 * HOUR).n, 1);
    lfx_free(&f);
}

static void escalation(void **state)
{
    (void)state;
    struct lbw_route_config c = config();
    struct lfx f = fx();
    assert_int_equal(lfx_transition(&f, T0, WWW_DOWN, LBW_ALERT_FIRING), OK);
    assert_int_equal(lfx_transition(&f, T0 + 5 * MIN, DB_DOWN, LBW_ALERT_FIRING), OK);
    struct plans ps = plan(&c, &f, T0 + 30 * SEC);
    assert_int_equal(propose(&f, &ps.v[0], T0 + 30 * SEC), OK);
    assert_null(find(&ps, "oncall", NULL));

    /* escalate_after since it started firing, unacknowledged */
    ps = plan(&c, &f, T0 + 30 * MIN - 1);
    assert_null(find(&ps, "oncall", NULL));
    ps = plan(&c, &f, T0 + 30 * MIN);
    const struct plan *e = find(&ps, "oncall", NULL);
    assert_non_null(e);
    assert_string_equal(e->key, G_WWW);
    assert_int_equal(e->kind, LBW_INTENT_ESCALATE);
    assert_int_equal(e->expect, 0);
    assert_int_equal(e->due_at, T0 + 30 * MIN);
    assert_int_equal(e->nalerts, 1);
    assert_true(names(e, WWW_DOWN, LBW_NOTIFY_FIRING));
    /* escalations come after the notify and repeat intents */
    assert_ptr_equal(e, &ps.v[ps.n - 1]);
    assert_int_equal(propose(&f, e, T0 + 30 * MIN), OK);
    /* once per episode */
    ps = plan(&c, &f, T0 + 34 * MIN);
    assert_null(find(&ps, "oncall", G_WWW));
    /* db: acknowledged in time, never escalated */
    assert_int_equal(lfx_ack(&f, T0 + 34 * MIN, DB_DOWN, alert(&f, DB_DOWN)->seq, "bob"), OK);
    ps = plan(&c, &f, T0 + 3 * HOUR);
    assert_null(find(&ps, "oncall", NULL));

    /* a new episode escalates again */
    assert_int_equal(lfx_transition(&f, T0 + 3 * HOUR, WWW_DOWN, LBW_ALERT_RESOLVED), OK);
    assert_int_equal(lfx_transition(&f, T0 + 3 * HOUR + MIN, WWW_DOWN, LBW_ALERT_FIRING), OK);
    ps = plan(&c, &f, T0 + 3 * HOUR + 31 * MIN);
    e = find(&ps, "oncall", G_WWW);
    assert_non_null(e);
    assert_int_equal(e->alerts[0].seq, alert(&f, WWW_DOWN)->seq);
    lfx_free(&f);
}

/* ---- idempotence ------------------------------------------------------------------------- */

static void planning_is_idempotent(void **state)
{
    (void)state;
    struct lbw_route_config c = config();
    struct lfx f = fx();
    assert_int_equal(lfx_transition(&f, T0, WWW_DOWN, LBW_ALERT_FIRING), OK);
    assert_int_equal(lfx_transition(&f, T0, WWW_SLOW, LBW_ALERT_FIRING), OK);
    struct plans a = plan(&c, &f, T0 + HOUR), b = plan(&c, &f, T0 + HOUR);
    assert_int_equal(a.n, 3);   /* ops, pager, then the escalation to oncall */
    assert_string_equal(a.v[0].receiver, "ops");
    assert_string_equal(a.v[1].receiver, "pager");
    assert_string_equal(a.v[2].receiver, "oncall");
    assert_memory_equal(&a, &b, sizeof(a));
    /* later, still not committed: the same intents (only due_at is the timer's) */
    b = plan(&c, &f, T0 + 2 * HOUR);
    assert_int_equal(b.n, a.n);
    for (size_t i = 0; i < a.n; i++) {
        assert_string_equal(a.v[i].receiver, b.v[i].receiver);
        assert_int_equal(a.v[i].expect, b.v[i].expect);
        assert_memory_equal(a.v[i].alerts, b.v[i].alerts,
                            a.v[i].nalerts * sizeof(a.v[i].alerts[0]));
    }
    /* both proposed (two leaders, or one before and after an election): one applies */
    for (size_t i = 0; i < a.n; i++) {
        assert_int_equal(propose(&f, &a.v[i], T0 + HOUR), OK);
        assert_int_equal(propose(&f, &b.v[i], T0 + 2 * HOUR), STALE);
    }
    assert_int_equal(plan(&c, &f, T0 + 2 * HOUR).n, 0);
    lfx_free(&f);
}

/* ---- NotificationsFailing ---------------------------------------------------------------- */

struct instances {
    struct lbw_instance v[8];
    size_t n;
};

static void collect_instance(void *arg, const struct lbw_instance *in)
{
    struct instances *is = arg;
    assert_true(is->n < 8);
    is->v[is->n++] = *in;
}

static void notifications_failing(void **state)
{
    (void)state;
    struct lfx f = fx();
    struct instances is = {0};
    const char *labels = "ALERTS{alertname=\"NotificationsFailing\",receiver=\"ops\","
                         "severity=\"critical\"}";
    assert_int_equal(lfx_transition(&f, T0, WWW_SLOW, LBW_ALERT_FIRING), OK);
    assert_int_equal(lfx_notify(&f, T0, "ops", "G", (const char *[]){WWW_SLOW}, 1), OK);
    uint64_t id = f.index;
    assert_int_equal(lbw_route_failing_instances(f.l, collect_instance, &is), 1);
    assert_false(is.v[0].active);

    for (uint32_t a = 1; a <= 3; a++) {
        assert_int_equal(lfx_receipt(&f, T0 + a * MIN, id, a, 0, "HTTP 502 \"bad gateway\""),
                         OK);
        is.n = 0;
        assert_int_equal(lbw_route_failing_instances(f.l, collect_instance, &is), 1);
        assert_int_equal(is.v[0].active, a >= 3);
    }
    assert_string_equal(is.v[0].labels, labels);
    assert_int_equal(is.v[0].fingerprint, fp(labels));
    assert_true(is.v[0].value == 3);

    char ann[LBW_KEY_MAX];
    struct lbw_key_parsed k;
    int n = lbw_route_failing_annotations(lbw_ledger_receiver(f.l, "ops"), ann, sizeof(ann));
    assert_true(n > 0);
    assert_int_equal(lbw_key_parse(ann, (size_t)n, &k), 0);
    assert_string_equal(k.metric, "A");
    assert_string_equal(lbw_key_label(&k, "summary"), "Notifications to receiver ops are failing");
    assert_string_equal(lbw_key_label(&k, "description"),
                        "3 consecutive deliveries failed; last error: HTTP 502 \"bad gateway\"");

    /* the leader fires it like any rule's instance; then the receiver is forgotten (its
       intent abandoned, its group idle): the instance is reported inactive to resolve it */
    assert_int_equal(lfx_transition_expect(&f, T0 + 4 * MIN, labels, LBW_ALERT_FIRING, 0, ann, 3),
                     OK);
    assert_int_equal(lfx_transition(&f, T0 + 5 * MIN, WWW_SLOW, LBW_ALERT_RESOLVED), OK);
    assert_int_equal(lfx_expire(&f, T0 + 2 * DAY, 999999), STALE);  /* time passes */
    assert_null(lbw_ledger_receiver(f.l, "ops"));
    is.n = 0;
    assert_int_equal(lbw_route_failing_instances(f.l, collect_instance, &is), 1);
    assert_string_equal(is.v[0].labels, labels);
    assert_false(is.v[0].active);

    /* a success resets it */
    assert_int_equal(lfx_notify(&f, T0 + 2 * DAY, "ops", "G", (const char *[]){labels}, 1), OK);
    id = f.index;
    assert_int_equal(lfx_receipt(&f, T0 + 2 * DAY, id, 1, 0, "x"), OK);
    assert_int_equal(lfx_receipt(&f, T0 + 2 * DAY, id, 2, 0, "x"), OK);
    assert_int_equal(lfx_receipt(&f, T0 + 2 * DAY, id, 3, 0, "x"), OK);
    is.n = 0;
    lbw_route_failing_instances(f.l, collect_instance, &is);
    assert_true(is.v[0].active);
    assert_int_equal(lfx_receipt(&f, T0 + 2 * DAY, id, 4, 1, NULL), OK);
    is.n = 0;
    lbw_route_failing_instances(f.l, collect_instance, &is);
    assert_false(is.v[0].active);
    lfx_free(&f);
}

/* ---- configuration check ----------------------------------------------------------------- */

static void expect_bad(const struct lbw_route_config *c, const char *reason)
{
    char why[160] = "";
    assert_int_equal(lbw_route_check(c, why, sizeof(why)), -1);
    if (!strstr(why, reason))
        fail_msg("expected \"%s\", got \"%s\"", reason, why);
}

static void config_check(void **state)
{
    (void)state;
    struct lbw_route_config c = config(), bad;
    struct lbw_route kids[2] = {children[0], children[1]};
    struct lbw_inhibit_rule ir = inhibit[0];

    bad = c;
    bad.root.receiver = NULL;
    expect_bad(&bad, "needs a receiver");
    bad = c;
    bad.root.matchers[0] = (struct lbw_matcher){"a", "b", 0};
    bad.root.nmatchers = 1;
    expect_bad(&bad, "no matchers");
    bad = c;
    bad.root.receiver = "nobody";
    expect_bad(&bad, "unknown receiver \"nobody\"");
    bad = c;
    bad.root.routes = kids;
    kids[0].escalate_to = NULL;
    expect_bad(&bad, "escalate_after and escalate_to go together");
    kids[0] = children[0];
    kids[0].escalate_to = "nobody";
    expect_bad(&bad, "unknown escalation receiver");
    kids[0] = children[0];
    kids[1].group_by[1] = "target";
    kids[1].ngroup_by = 2;
    expect_bad(&bad, "\"...\" must stand alone");
    kids[1] = children[1];
    kids[1].group_by[0] = "target";
    kids[1].group_by[1] = "target";
    kids[1].ngroup_by = 2;
    expect_bad(&bad, "target twice");
    kids[1] = children[1];
    kids[1].group_wait_ms = -1;
    expect_bad(&bad, "duration");
    kids[1] = children[1];
    kids[1].matchers[0].name = "bad-name";
    expect_bad(&bad, "bad label name");
    kids[1] = children[1];
    bad = c;
    bad.inhibit = &ir;
    ir.nsource = 0;
    expect_bad(&bad, "needs source and target");
    ir = inhibit[0];
    ir.equal[0] = "";
    expect_bad(&bad, "bad equal label");

    /* depth */
    struct lbw_route chain[LBW_ROUTE_MAX_DEPTH + 1];
    memset(chain, 0, sizeof(chain));
    for (int i = 0; i < LBW_ROUTE_MAX_DEPTH; i++) {
        chain[i].routes = &chain[i + 1];
        chain[i].nroutes = 1;
    }
    bad = c;
    bad.root.routes = chain;
    bad.root.nroutes = 1;
    expect_bad(&bad, "deeper");
    chain[LBW_ROUTE_MAX_DEPTH - 2].nroutes = 0;
    char why[128];
    assert_int_equal(lbw_route_check(&bad, why, sizeof(why)), 0);

    /* more ends than LBW_ROUTE_MAX_MATCHES through continue */
    struct lbw_route wide[LBW_ROUTE_MAX_MATCHES + 1];
    memset(wide, 0, sizeof(wide));
    for (int i = 0; i <= LBW_ROUTE_MAX_MATCHES; i++)
        wide[i].cont = 1;
    bad = c;
    bad.root.routes = wide;
    bad.root.nroutes = LBW_ROUTE_MAX_MATCHES + 1;
    expect_bad(&bad, "more than 16 routes");
    wide[0].cont = 0;   /* the first stops the rest: fine */
    assert_int_equal(lbw_route_check(&bad, why, sizeof(why)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(routing_tree),
        cmocka_unit_test(timers_at_their_boundaries),
        cmocka_unit_test(grouping_by_labels),
        cmocka_unit_test(resolved_notified_once),
        cmocka_unit_test(intent_cap),
        cmocka_unit_test(silences),
        cmocka_unit_test(inhibition),
        cmocka_unit_test(acknowledgement_stops_repeats),
        cmocka_unit_test(escalation),
        cmocka_unit_test(planning_is_idempotent),
        cmocka_unit_test(notifications_failing),
        cmocka_unit_test(config_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
