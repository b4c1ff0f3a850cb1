/* route.c - routing, grouping timers, silences, inhibition, escalation and the built-in
 * NotificationsFailing alert. See route.h for the contract.
 *
 * Owns nothing between calls. A plan parses every alert's labels once, marks what is
 * silenced or inhibited, routes the rest into (receiver, group key, alert) entries, sorts
 * them (the order is that of the keys, so every leader plans alike) and walks each group
 * against its ledger record.
 */
#include "alerting/route.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALL_LABELS "..."
#define FAILING_NAME "NotificationsFailing"
#define FAILING_ERROR_MAX 121   /* the last error's part of the description, with the NUL */

static int fail(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *why, size_t whylen, const char *fmt, ...)
{
    if (why && whylen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, whylen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---- configuration check ----------------------------------------------------------------- */

static int receiver_known(const struct lbw_route_config *c, const char *name)
{
    if (!lbw_receiver_name_valid(name))
        return 0;
    if (c->nreceivers == 0)
        return 1;
    for (size_t i = 0; i < c->nreceivers; i++)
        if (strcmp(c->receivers[i], name) == 0)
            return 1;
    return 0;
}

static int matchers_ok(const struct lbw_matcher *m, size_t n, char *why, size_t whylen)
{
    if (n > LBW_ROUTE_MAX_MATCHERS)
        return fail(why, whylen, "more than %d matchers", LBW_ROUTE_MAX_MATCHERS);
    for (size_t i = 0; i < n; i++)
        if (!lbw_label_name_valid(m[i].name) || !m[i].value)
            return fail(why, whylen, "matcher %zu: bad label name or no value", i + 1);
    return 0;
}

static int group_by_ok(const struct lbw_route *r, char *why, size_t whylen)
{
    if (r->ngroup_by > LBW_ROUTE_MAX_GROUP_BY)
        return fail(why, whylen, "more than %d group_by labels", LBW_ROUTE_MAX_GROUP_BY);
    for (size_t i = 0; i < r->ngroup_by; i++) {
        const char *g = r->group_by[i];
        if (g && strcmp(g, ALL_LABELS) == 0) {
            if (r->ngroup_by != 1)
                return fail(why, whylen, "group_by \"...\" must stand alone");
            continue;
        }
        if (!lbw_label_name_valid(g))
            return fail(why, whylen, "group_by: bad label name");
        for (size_t j = 0; j < i; j++)
            if (strcmp(r->group_by[j], g) == 0)
                return fail(why, whylen, "group_by: %s twice", g);
    }
    return 0;
}

static int duration_ok(int64_t ms)
{
    return ms >= 0 && ms <= LBW_ROUTE_MAX_DURATION_MS;
}

static int route_settings_ok(const struct lbw_route_config *c, const struct lbw_route *r,
                             char *why, size_t whylen)
{
    if (matchers_ok(r->matchers, r->nmatchers, why, whylen) < 0 ||
        group_by_ok(r, why, whylen) < 0)
        return -1;
    if (r->receiver && !receiver_known(c, r->receiver))
        return fail(why, whylen, "unknown receiver \"%s\"", r->receiver);
    if (!duration_ok(r->group_wait_ms) || !duration_ok(r->group_interval_ms) ||
        !duration_ok(r->repeat_interval_ms) || !duration_ok(r->escalate_after_ms))
        return fail(why, whylen, "a duration is negative or longer than a year");
    if ((r->escalate_after_ms > 0) != (r->escalate_to != NULL))
        return fail(why, whylen, "escalate_after and escalate_to go together");
    if (r->escalate_to && !receiver_known(c, r->escalate_to))
        return fail(why, whylen, "unknown escalation receiver \"%s\"", r->escalate_to);
    if (r->nroutes && !r->routes)
        return fail(why, whylen, "child routes missing");
    return 0;
}

/* The most routes one alert can end at below (and including) r. */
static size_t max_ends(const struct lbw_route *r)
{
    size_t best = 0, running = 0;
    for (size_t i = 0; i < r->nroutes; i++) {
        size_t f = max_ends(&r->routes[i]);
        if (running + f > best)
            best = running + f;
        if (r->routes[i].cont)
            running += f;
    }
    return best > 0 ? best : 1;
}

static int check_route(const struct lbw_route_config *c, const struct lbw_route *r, int depth,
                       char *why, size_t whylen)
{
    if (depth > LBW_ROUTE_MAX_DEPTH)
        return fail(why, whylen, "routes nested deeper than %d", LBW_ROUTE_MAX_DEPTH);
    if (route_settings_ok(c, r, why, whylen) < 0)
        return -1;
    for (size_t i = 0; i < r->nroutes; i++)
        if (check_route(c, &r->routes[i], depth + 1, why, whylen) < 0)
            return -1;
    return 0;
}

static int check_inhibit(const struct lbw_inhibit_rule *ir, size_t i, char *why, size_t whylen)
{
    char sub[160];
    if (ir->nsource == 0 || ir->ntarget == 0)
        return fail(why, whylen, "inhibit rule %zu: needs source and target matchers", i + 1);
    if (matchers_ok(ir->source, ir->nsource, sub, sizeof(sub)) < 0 ||
        matchers_ok(ir->target, ir->ntarget, sub, sizeof(sub)) < 0)
        return fail(why, whylen, "inhibit rule %zu: %s", i + 1, sub);
    if (ir->nequal > LBW_INHIBIT_MAX_EQUAL)
        return fail(why, whylen, "inhibit rule %zu: too many equal labels", i + 1);
    for (size_t j = 0; j < ir->nequal; j++)
        if (!lbw_label_name_valid(ir->equal[j]))
            return fail(why, whylen, "inhibit rule %zu: bad equal label", i + 1);
    return 0;
}

int lbw_route_check(const struct lbw_route_config *c, char *why, size_t whylen)
{
    for (size_t i = 0; i < c->nreceivers; i++)
        if (!lbw_receiver_name_valid(c->receivers[i]))
            return fail(why, whylen, "bad receiver name");
    if (c->root.nmatchers)
        return fail(why, whylen, "the root route matches everything: no matchers");
    if (!c->root.receiver)
        return fail(why, whylen, "the root route needs a receiver");
    if (check_route(c, &c->root, 1, why, whylen) < 0)
        return -1;
    if (max_ends(&c->root) > LBW_ROUTE_MAX_MATCHES)
        return fail(why, whylen, "an alert could go to more than %d routes",
                    LBW_ROUTE_MAX_MATCHES);
    if (c->ninhibit && !c->inhibit)
        return fail(why, whylen, "inhibit rules missing");
    for (size_t i = 0; i < c->ninhibit; i++)
        if (check_inhibit(&c->inhibit[i], i, why, whylen) < 0)
            return -1;
    return 0;
}

/* ---- routing ----------------------------------------------------------------------------- */

/* A route's settings with inheritance resolved. */
struct settings {
    const char *receiver;
    const char *const *group_by;
    size_t ngroup_by;
    int64_t group_wait_ms, group_interval_ms, repeat_interval_ms;
};

static struct settings inherit(const struct settings *parent, const struct lbw_route *r)
{
    struct settings s = *parent;
    if (r->receiver)
        s.receiver = r->receiver;
    if (r->ngroup_by) {
        s.group_by = r->group_by;
        s.ngroup_by = r->ngroup_by;
    }
    if (r->group_wait_ms)
        s.group_wait_ms = r->group_wait_ms;
    if (r->group_interval_ms)
        s.group_interval_ms = r->group_interval_ms;
    if (r->repeat_interval_ms)
        s.repeat_interval_ms = r->repeat_interval_ms;
    return s;
}

static int group_key(const struct settings *s, const struct lbw_key_parsed *k,
                     char out[LBW_KEY_MAX])
{
    struct lbw_label labels[LBW_LABELS_MAX];
    size_t n = 0;
    if (s->ngroup_by == 1 && strcmp(s->group_by[0], ALL_LABELS) == 0)
        return lbw_key_build(out, LBW_KEY_MAX, "G", k->labels, k->nlabels) < 0 ? -1 : 0;
    for (size_t i = 0; i < s->ngroup_by && n < LBW_LABELS_MAX; i++) {
        const char *v = lbw_key_label(k, s->group_by[i]);
        if (v)
            labels[n++] = (struct lbw_label){s->group_by[i], v};
    }
    return lbw_key_build(out, LBW_KEY_MAX, "G", labels, n) < 0 ? -1 : 0;
}

struct walk {
    const struct lbw_key_parsed *k;
    struct lbw_route_match *out;
    size_t max, n;
    int failed;
};

static void end_at(struct walk *w, const struct lbw_route *r, const struct settings *s)
{
    struct lbw_route_match *m;
    if (w->n == w->max)
        return;
    m = &w->out[w->n];
    if (group_key(s, w->k, m->group_key) < 0) {
        w->failed = 1;
        return;
    }
    m->route = r;
    m->receiver = s->receiver;
    m->group_wait_ms = s->group_wait_ms;
    m->group_interval_ms = s->group_interval_ms;
    m->repeat_interval_ms = s->repeat_interval_ms;
    w->n++;
}

static void walk_route(struct walk *w, const struct lbw_route *r, const struct settings *parent)
{
    struct settings s = inherit(parent, r);
    int matched = 0;
    for (size_t i = 0; i < r->nroutes; i++) {
        const struct lbw_route *child = &r->routes[i];
        if (!lbw_matchers_match(child->matchers, child->nmatchers, w->k))
            continue;
        walk_route(w, child, &s);
        matched = 1;
        if (!child->cont)
            break;
    }
    if (!matched)
        end_at(w, r, &s);
}

int lbw_route_alert(const struct lbw_route_config *c, const struct lbw_key_parsed *labels,
                    struct lbw_route_match *out, size_t max)
{
    static const struct settings defaults = {NULL, NULL, 0, LBW_ROUTE_DEFAULT_GROUP_WAIT_MS,
                                             LBW_ROUTE_DEFAULT_GROUP_INTERVAL_MS,
                                             LBW_ROUTE_DEFAULT_REPEAT_INTERVAL_MS};
    struct walk w = {labels, out, max, 0, 0};
    walk_route(&w, &c->root, &defaults);
    return w.failed ? -1 : (int)w.n;
}

/* ---- silences and inhibition ------------------------------------------------------------- */

static const struct lbw_silence *silenced_parsed(const struct lbw_ledger *l,
                                                 const struct lbw_key_parsed *k, int64_t now)
{
    size_t n;
    const struct lbw_silence *s = lbw_ledger_silences(l, &n);
    for (size_t i = 0; i < n; i++)
        if (lbw_silence_active(&s[i], now) &&
            lbw_matchers_match(s[i].matchers, s[i].nmatchers, k))
            return &s[i];
    return NULL;
}

static int parse_alert(const struct lbw_alert *a, struct lbw_key_parsed *k)
{
    return lbw_key_parse(a->labels, strlen(a->labels), k);
}

const struct lbw_silence *lbw_route_silenced(const struct lbw_ledger *l,
                                             const struct lbw_alert *a, int64_t now)
{
    struct lbw_key_parsed k;
    return parse_alert(a, &k) == 0 ? silenced_parsed(l, &k, now) : NULL;
}

static const char *label_or_empty(const struct lbw_key_parsed *k, const char *name)
{
    const char *v = lbw_key_label(k, name);
    return v ? v : "";
}

/* Whether source and target agree on the rule's equal labels (a missing label is ""). */
static int equal_labels(const struct lbw_inhibit_rule *ir, const struct lbw_key_parsed *src,
                        const struct lbw_key_parsed *dst)
{
    for (size_t i = 0; i < ir->nequal; i++)
        if (strcmp(label_or_empty(src, ir->equal[i]), label_or_empty(dst, ir->equal[i])) != 0)
            return 0;
    return 1;
}

static int inhibits(const struct lbw_inhibit_rule *ir, const struct lbw_alert *src,
                    const struct lbw_key_parsed *srck, const struct lbw_alert *dst,
                    const struct lbw_key_parsed *dstk)
{
    return src != dst && src->state == LBW_ALERT_FIRING &&
           lbw_matchers_match(ir->source, ir->nsource, srck) && equal_labels(ir, srck, dstk);
}

const struct lbw_alert *lbw_route_inhibited(const struct lbw_route_config *c,
                                            const struct lbw_ledger *l,
                                            const struct lbw_alert *a)
{
    struct lbw_key_parsed k, sk;
    size_t n;
    const struct lbw_alert *all = lbw_ledger_alerts(l, &n);
    if (parse_alert(a, &k) < 0)
        return NULL;
    for (size_t r = 0; r < c->ninhibit; r++) {
        const struct lbw_inhibit_rule *ir = &c->inhibit[r];
        if (!lbw_matchers_match(ir->target, ir->ntarget, &k))
            continue;
        for (size_t i = 0; i < n; i++)
            if (all[i].state == LBW_ALERT_FIRING && parse_alert(&all[i], &sk) == 0 &&
                inhibits(ir, &all[i], &sk, a, &k))
                return &all[i];
    }
    return NULL;
}

/* ---- planning ---------------------------------------------------------------------------- */

/* One alert in one group. */
struct entry {
    const char *receiver;
    const char *key;            /* into the plan's key pool, set once the pool is complete */
    size_t key_off;
    size_t alert;               /* index into the ledger's alerts (fingerprint order) */
    size_t order;               /* the match's place in the alert's routing */
    const struct lbw_route *route;
    int64_t group_wait_ms, group_interval_ms, repeat_interval_ms;
};

struct planner {
    const struct lbw_route_config *c;
    const struct lbw_ledger *l;
    int64_t now;
    const struct lbw_alert *alerts;
    size_t nalerts;
    struct lbw_key_parsed *parsed;
    unsigned char *muted;       /* silenced or inhibited, or neither firing nor resolved */
    struct entry *groups, *escalations;
    size_t ngroups, nesc, groups_cap, esc_cap;
    char *pool;
    size_t pool_len, pool_cap;
    struct lbw_alert_ref refs[LBW_INTENT_MAX_ALERTS];
    lbw_plan_fn fn;
    void *arg;
    long planned;
};

static int push(struct entry **v, size_t *n, size_t *cap, const struct entry *e)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 64;
        struct entry *p = realloc(*v, c * sizeof(*p));
        if (!p)
            return -1;
        *v = p;
        *cap = c;
    }
    (*v)[(*n)++] = *e;
    return 0;
}

/* Keeps a group key in the pool; returns its offset or (size_t)-1. */
static size_t pool_add(struct planner *p, const char *key)
{
    size_t len = strlen(key) + 1, off = p->pool_len;
    if (len > p->pool_cap - p->pool_len) {
        size_t cap = p->pool_cap ? p->pool_cap : 4096;
        while (cap - p->pool_len < len)
            cap *= 2;
        char *np = realloc(p->pool, cap);
        if (!np)
            return (size_t)-1;
        p->pool = np;
        p->pool_cap = cap;
    }
    memcpy(p->pool + off, key, len);
    p->pool_len += len;
    return off;
}

static int64_t earlier(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* Marks the alerts no notification may carry: pending, silenced, inhibited. */
static int mark_muted(struct planner *p)
{
    for (size_t i = 0; i < p->nalerts; i++) {
        const struct lbw_alert *a = &p->alerts[i];
        if (parse_alert(a, &p->parsed[i]) < 0)
            return -1;
        p->muted[i] = a->state == LBW_ALERT_PENDING ||
                      silenced_parsed(p->l, &p->parsed[i], p->now) != NULL;
    }
    for (size_t r = 0; r < p->c->ninhibit; r++) {
        const struct lbw_inhibit_rule *ir = &p->c->inhibit[r];
        for (size_t t = 0; t < p->nalerts; t++) {
            if (p->muted[t] || !lbw_matchers_match(ir->target, ir->ntarget, &p->parsed[t]))
                continue;
            for (size_t s = 0; s < p->nalerts && !p->muted[t]; s++)
                p->muted[t] = (unsigned char)inhibits(ir, &p->alerts[s], &p->parsed[s],
                                                      &p->alerts[t], &p->parsed[t]);
        }
    }
    return 0;
}

static int escalates(const struct planner *p, const struct lbw_route *r,
                     const struct lbw_alert *a)
{
    return r->escalate_after_ms > 0 && a->state == LBW_ALERT_FIRING && !a->ack.acked &&
           !a->escalated && p->now >= a->firing_since + r->escalate_after_ms;
}

/* Routes every alert that may be notified into group (and escalation) entries. */
static int route_all(struct planner *p)
{
    struct lbw_route_match m[LBW_ROUTE_MAX_MATCHES];
    for (size_t i = 0; i < p->nalerts; i++) {
        if (p->muted[i])
            continue;
        int n = lbw_route_alert(p->c, &p->parsed[i], m, LBW_ROUTE_MAX_MATCHES);
        if (n < 0)
            return -1;
        for (int j = 0; j < n; j++) {
            struct entry e = {m[j].receiver, NULL, pool_add(p, m[j].group_key), i, (size_t)j,
                              m[j].route, m[j].group_wait_ms, m[j].group_interval_ms,
                              m[j].repeat_interval_ms};
            if (e.key_off == (size_t)-1 ||
                push(&p->groups, &p->ngroups, &p->groups_cap, &e) < 0)
                return -1;
            if (!escalates(p, m[j].route, &p->alerts[i]))
                continue;
            e.receiver = m[j].route->escalate_to;
            if (push(&p->escalations, &p->nesc, &p->esc_cap, &e) < 0)
                return -1;
        }
    }
    return 0;
}

static int entry_cmp(const void *x, const void *y)
{
    const struct entry *a = x, *b = y;
    int c = strcmp(a->receiver, b->receiver);
    if (c == 0)
        c = strcmp(a->key, b->key);
    if (c == 0)
        c = a->alert < b->alert ? -1 : a->alert > b->alert;
    if (c == 0)
        c = a->order < b->order ? -1 : a->order > b->order;
    return c;
}

static void sort_entries(struct planner *p, struct entry *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        v[i].key = p->pool + v[i].key_off;
    if (n > 1)
        qsort(v, n, sizeof(*v), entry_cmp);
}

/* The end of the run of entries with v[start]'s receiver and key. */
static size_t run_end(const struct entry *v, size_t n, size_t start)
{
    size_t e = start + 1;
    while (e < n && strcmp(v[e].receiver, v[start].receiver) == 0 &&
           strcmp(v[e].key, v[start].key) == 0)
        e++;
    return e;
}

static const struct lbw_group_member *member(const struct lbw_group *g, uint64_t fp)
{
    size_t lo = 0, hi = g ? g->nmembers : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (g->members[mid].fingerprint == fp)
            return &g->members[mid];
        if (g->members[mid].fingerprint < fp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* A group's state now, against its ledger record. */
struct group_view {
    size_t nfiring, nresolved, total;
    int changed;                /* a firing alert not notified in this episode, or a resolved
                                   one to tell */
    int unacked;                /* a firing alert without acknowledgement */
    int64_t first_firing;
};

/* Collects the group's alerts (run [s, e)) into p->refs and describes it in gv. */
static void collect_group(struct planner *p, size_t s, size_t e, const struct lbw_group *g,
                          struct group_view *gv)
{
    memset(gv, 0, sizeof(*gv));
    gv->first_firing = INT64_MAX;
    for (size_t i = s; i < e; i++) {
        if (i > s && p->groups[i].alert == p->groups[i - 1].alert)
            continue; /* routed here twice */
        const struct lbw_alert *a = &p->alerts[p->groups[i].alert];
        const struct lbw_group_member *m = member(g, a->fingerprint);
        enum lbw_notify_status st;
        if (a->state == LBW_ALERT_FIRING) {
            st = LBW_NOTIFY_FIRING;
            gv->nfiring++;
            gv->changed |= !m || m->seq != a->seq;
            gv->unacked |= !a->ack.acked;
            gv->first_firing = earlier(gv->first_firing, a->firing_since);
        } else if (m) {
            st = LBW_NOTIFY_RESOLVED;
            gv->nresolved++;
            gv->changed = 1;
        } else {
            continue;
        }
        if (gv->total < LBW_INTENT_MAX_ALERTS)
            p->refs[gv->total] = (struct lbw_alert_ref){a->fingerprint, a->seq, st};
        gv->total++;
    }
}

static void emit(struct planner *p, const struct entry *first, enum lbw_intent_kind kind,
                 uint64_t expect, size_t total, int64_t due_at)
{
    struct lbw_plan plan = {first->receiver, first->key, kind, expect, p->refs,
                            total < LBW_INTENT_MAX_ALERTS ? total : LBW_INTENT_MAX_ALERTS,
                            total > LBW_INTENT_MAX_ALERTS ? total - LBW_INTENT_MAX_ALERTS : 0,
                            due_at, first->route};
    p->fn(p->arg, &plan);
    p->planned++;
}

/* Decides one group (entries [s, e)). */
static void plan_group(struct planner *p, size_t s, size_t e)
{
    const struct entry *first = &p->groups[s];
    const struct lbw_group *g = lbw_ledger_group(p->l, first->receiver, first->key);
    struct group_view gv;
    collect_group(p, s, e, g, &gv);
    if (gv.total == 0)
        return;
    uint64_t version = g ? g->version : 0;
    if (!g || g->nmembers == 0) {
        if (gv.nfiring == 0)
            return;
        int64_t due = gv.first_firing + first->group_wait_ms;
        if (p->now >= due)
            emit(p, first, LBW_INTENT_NOTIFY, version, gv.total, due);
    } else if (gv.changed) {
        int64_t due = g->last_notified_at + first->group_interval_ms;
        if (p->now >= due)
            emit(p, first, LBW_INTENT_NOTIFY, version, gv.total, due);
    } else if (gv.nfiring > 0 && gv.unacked) {
        int64_t due = g->last_notified_at + first->repeat_interval_ms;
        if (p->now >= due)
            emit(p, first, LBW_INTENT_REPEAT, version, gv.total, due);
    }
}

/* One escalate intent for the run [s, e) of escalation entries. */
static void plan_escalation(struct planner *p, size_t s, size_t e)
{
    size_t total = 0;
    int64_t due = INT64_MAX;
    for (size_t i = s; i < e; i++) {
        const struct entry *en = &p->escalations[i];
        const struct lbw_alert *a = &p->alerts[en->alert];
        if (i > s && en->alert == p->escalations[i - 1].alert)
            continue;
        due = earlier(due, a->firing_since + en->route->escalate_after_ms);
        if (total < LBW_INTENT_MAX_ALERTS)
            p->refs[total] = (struct lbw_alert_ref){a->fingerprint, a->seq, LBW_NOTIFY_FIRING};
        total++;
    }
    emit(p, &p->escalations[s], LBW_INTENT_ESCALATE, 0, total, due);
}

static void planner_free(struct planner *p)
{
    free(p->parsed);
    free(p->muted);
    free(p->groups);
    free(p->escalations);
    free(p->pool);
}

long lbw_route_plan(const struct lbw_route_config *c, const struct lbw_ledger *l, int64_t now,
                    lbw_plan_fn fn, void *arg)
{
    struct planner p = {.c = c, .l = l, .now = now, .fn = fn, .arg = arg};
    p.alerts = lbw_ledger_alerts(l, &p.nalerts);
    if (p.nalerts == 0)
        return 0;
    p.parsed = malloc(p.nalerts * sizeof(*p.parsed));
    p.muted = calloc(p.nalerts, 1);
    if (!p.parsed || !p.muted || mark_muted(&p) < 0 || route_all(&p) < 0) {
        planner_free(&p);
        return -1;
    }
    sort_entries(&p, p.groups, p.ngroups);
    sort_entries(&p, p.escalations, p.nesc);
    for (size_t s = 0, e; s < p.ngroups; s = e) {
        e = run_end(p.groups, p.ngroups, s);
        plan_group(&p, s, e);
    }
    for (size_t s = 0, e; s < p.nesc; s = e) {
        e = run_end(p.escalations, p.nesc, s);
        plan_escalation(&p, s, e);
    }
    planner_free(&p);
    return p.planned;
}

void lbw_plan_op(const struct lbw_plan *p, int64_t now, struct lbw_op *op)
{
    memset(op, 0, offsetof(struct lbw_op, text));
    op->type = LBW_OP_INTENT;
    op->time_ms = now;
    op->intent.receiver = p->receiver;
    op->intent.group_key = p->group_key;
    op->intent.kind = p->kind;
    op->intent.expect_group = p->expect_group;
    if (p->nalerts)
        memcpy(op->intent.alerts, p->alerts, p->nalerts * sizeof(*p->alerts));
    op->intent.nalerts = p->nalerts;
}

/* ---- NotificationsFailing ---------------------------------------------------------------- */

static int failing_labels(const char *receiver, char out[LBW_KEY_MAX])
{
    const struct lbw_label labels[] = {
        {"alertname", FAILING_NAME}, {"receiver", receiver}, {"severity", "critical"}};
    return lbw_key_build(out, LBW_KEY_MAX, "ALERTS", labels, 3);
}

static void report(lbw_instance_cb cb, void *arg, const char *labels, int active, double value)
{
    struct lbw_instance in;
    memset(&in, 0, sizeof(in));
    snprintf(in.labels, sizeof(in.labels), "%s", labels);
    in.fingerprint = lbw_fingerprint(in.labels, strlen(in.labels));
    in.active = active;
    in.value = value;
    in.vantages_true = active != 0;
    in.vantages_seen = 1;
    cb(arg, &in);
}

size_t lbw_route_failing_instances(const struct lbw_ledger *l, lbw_instance_cb cb, void *arg)
{
    char labels[LBW_KEY_MAX];
    struct lbw_key_parsed k;
    size_t nh, na, n = 0;
    const struct lbw_receiver_health *h = lbw_ledger_receivers(l, &nh);
    const struct lbw_alert *a = lbw_ledger_alerts(l, &na);
    for (size_t i = 0; i < nh; i++) {
        if (failing_labels(h[i].name, labels) < 0)
            continue;
        report(cb, arg, labels,
               h[i].consecutive_failures >= LBW_NOTIFICATIONS_FAILING_AFTER,
               (double)h[i].consecutive_failures);
        n++;
    }
    for (size_t i = 0; i < na; i++) {
        const char *name, *receiver;
        if (a[i].state == LBW_ALERT_RESOLVED || parse_alert(&a[i], &k) < 0 ||
            !(name = lbw_key_label(&k, "alertname")) || strcmp(name, FAILING_NAME) != 0 ||
            !(receiver = lbw_key_label(&k, "receiver")) || lbw_ledger_receiver(l, receiver))
            continue;
        report(cb, arg, a[i].labels, 0, 0);
        n++;
    }
    return n;
}

int lbw_route_failing_annotations(const struct lbw_receiver_health *h, char *out, size_t size)
{
    char summary[128], description[256], err[FAILING_ERROR_MAX];
    lbw_op_text_clean(h->last_error ? h->last_error : "none", err, sizeof(err));
    snprintf(summary, sizeof(summary), "Notifications to receiver %s are failing", h->name);
    snprintf(description, sizeof(description), "%u consecutive deliveries failed; last error: %s",
             (unsigned)h->consecutive_failures, err);
    const struct lbw_label labels[] = {{"description", description}, {"summary", summary}};
    return lbw_key_build(out, size, "A", labels, 2);
}
