/* alerter.c - the leader's alerting loop: evaluate, propose, deliver, record. See alerter.h.
 *
 * Owns the rule source over the store, a libcurl multi (receivers, dead man's switch) and
 * the sender on it, the sets of proposals and deliveries in flight, the records of the sends
 * whose callback the sender owes (freed here when the sender is closed, which drops those
 * callbacks), and the count of raft callbacks still owed to it (it is freed only when none
 * is left).
 */
#include "node/alerter.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alerting/route.h"
#include "alerting/template.h"
#include "node/log.h"
#include "node/rulesource.h"
#include "probes/curluv.h"

#define TICK_MS 1000
#define INFLIGHT_MS 10000           /* a proposal not applied by then is forgotten */
#define MAX_INFLIGHT 4096
#define DELIVERIES_PER_ROUND 64
#define ANNOTATION_VALUE_MAX 200    /* each rendered annotation, cut to fit one key */
#define DEADMAN_TIMEOUT_MS 10000

enum flight { FLIGHT_TRANSITION, FLIGHT_INTENT, FLIGHT_DELIVERY, FLIGHTS };

struct inflight {
    uint64_t key;                   /* fingerprint, (receiver, group, kind) hash, intent id */
    uint64_t expect;                /* expected seq, group version, attempt */
    uint64_t until;                 /* uv_now() deadline */
};

struct flights {
    struct inflight v[MAX_INFLIGHT];
    size_t n;
};

struct delivery;

struct lbw_alerter {
    struct lbw_alerter_config c;
    char external_url[512];
    struct lbw_rulesource source;
    struct lbw_curluv *curl;
    struct lbw_sender *sender;
    struct delivery *sending;       /* sends whose on_sent the sender owes */
    uv_timer_t tick;
    int leading, closing, confirming, tick_closed;
    unsigned outstanding;           /* raft callbacks owed to us */
    uint64_t seq;                   /* origin sequence of our ALERT entries */
    int64_t next_eval_ms, next_deadman_ms;
    struct flights flights[FLIGHTS];
    uint64_t round[DELIVERIES_PER_ROUND];   /* intents waiting for the confirmation */
    size_t nround;
    int deadman_due, deadman_busy;
    CURL *deadman;
    uint64_t *seen;                 /* fingerprints reported in this evaluation */
    size_t nseen, seen_cap;
    struct lbw_alerter_stats st;
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t fnv(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static void maybe_free(struct lbw_alerter *a);

/* ---- proposals and deliveries in flight ---------------------------------------------------- */

static struct inflight *flight_find(struct lbw_alerter *a, enum flight f, uint64_t key)
{
    struct flights *fl = &a->flights[f];
    uint64_t now = uv_now(a->c.loop);
    for (size_t i = 0; i < fl->n; i++) {
        if (fl->v[i].until <= now) { /* expired: forget it */
            fl->v[i--] = fl->v[--fl->n];
            continue;
        }
        if (fl->v[i].key == key)
            return &fl->v[i];
    }
    return NULL;
}

/* Whether (key, expect) is in flight; else records it. Returns 1 if it was. */
static int flight_claim(struct lbw_alerter *a, enum flight f, uint64_t key, uint64_t expect)
{
    struct inflight *e = flight_find(a, f, key);
    if (e && e->expect == expect)
        return 1;
    if (!e) {
        struct flights *fl = &a->flights[f];
        if (fl->n == MAX_INFLIGHT)
            return 1; /* too much in flight: wait */
        e = &fl->v[fl->n++];
    }
    *e = (struct inflight){key, expect, uv_now(a->c.loop) + INFLIGHT_MS};
    return 0;
}

static void flight_done(struct lbw_alerter *a, enum flight f, uint64_t key)
{
    struct flights *fl = &a->flights[f];
    for (size_t i = 0; i < fl->n; i++)
        if (fl->v[i].key == key)
            fl->v[i--] = fl->v[--fl->n];
}

/* ---- proposing ------------------------------------------------------------------------------ */

struct proposal {
    struct lbw_alerter *a;
    enum flight flight;             /* FLIGHTS: a web write */
    uint64_t key;
    lbw_cluster_applied_cb cb;      /* web writes */
    void *arg;
};

static void on_tick(uv_timer_t *t);

/* Runs the loop on the next turn of the event loop rather than at the next tick (the ticks go
 * on every TICK_MS from then): when this node starts leading, and when one of its intents is
 * applied, so that it is delivered now and not a tick later. */
static void run_soon(struct lbw_alerter *a)
{
    if (a->leading && !a->closing)
        uv_timer_start(&a->tick, on_tick, 0, TICK_MS);
}

static void on_proposal_applied(void *arg, int status, uint64_t index)
{
    struct proposal *p = arg;
    struct lbw_alerter *a = p->a;
    if (p->flight < FLIGHTS)
        flight_done(a, p->flight, p->key);
    if (p->flight == FLIGHT_INTENT && status == 0) {
        const struct lbw_intent *in = lbw_ledger_intent(a->c.ledger, index);
        if (in && !in->delivered)   /* the intent was created (not STALE): deliver it */
            run_soon(a);
    }
    if (p->cb)
        p->cb(p->arg, status, index);
    free(p);
    a->outstanding--;
    maybe_free(a);
}

/* Encodes, signs and proposes op. Returns 0 or a RAFT_* error. */
static int propose(struct lbw_alerter *a, const struct lbw_op *op, enum flight flight,
                   uint64_t key, lbw_cluster_applied_cb cb, void *arg)
{
    uint8_t buf[LBW_OP_MAX_BYTES], *entry;
    size_t len;
    char err[128];
    long n = lbw_op_encode(op, buf, sizeof(buf));
    struct proposal *p;
    if (n < 0) {
        log_error("alert", "cannot encode a %s op", lbw_op_type_name(op->type));
        return RAFT_INVALID;
    }
    if (lbw_entry_sign(a->c.signer, LBW_ENTRY_ALERT, ++a->seq, buf, (size_t)n, &entry, &len,
                       err, sizeof(err)) != 0) {
        log_error("alert", "cannot sign a %s op: %s", lbw_op_type_name(op->type), err);
        return RAFT_INVALID;
    }
    if (!(p = malloc(sizeof(*p)))) {
        free(entry);
        return RAFT_NOMEM;
    }
    *p = (struct proposal){a, flight, key, cb, arg};
    int rv = lbw_cluster_propose(a->c.cluster, entry, len, on_proposal_applied, p);
    free(entry);
    if (rv != 0) {
        free(p);
        return rv;
    }
    a->outstanding++;
    return 0;
}

int lbw_alerter_propose(struct lbw_alerter *a, const struct lbw_op *op,
                        lbw_cluster_applied_cb cb, void *arg)
{
    if (a->closing)
        return RAFT_CANCELED;
    if (!a->leading)
        return RAFT_NOTLEADER;
    return propose(a, op, FLIGHTS, 0, cb, arg);
}

/* ---- evaluation ------------------------------------------------------------------------------ */

/* The rendered annotations of a rule for an instance, as a canonical key A{...}. */
static const char *render_annotations(const struct lbw_rule *r, const struct lbw_instance *inst,
                                      char *out, size_t outlen)
{
    struct lbw_key_parsed k;
    char values[LBW_RULE_MAX_ANNOTATIONS][ANNOTATION_VALUE_MAX];
    struct lbw_label l[LBW_RULE_MAX_ANNOTATIONS];
    if (r->nannotations == 0 || lbw_key_parse(inst->labels, strlen(inst->labels), &k) != 0)
        return NULL;
    for (size_t i = 0; i < r->nannotations; i++) {
        lbw_template_render(r->annotations[i].value, &k, inst->value, values[i],
                            sizeof(values[i]));
        l[i] = (struct lbw_label){r->annotations[i].name, values[i]};
    }
    /* values are cut to fit; should the key still not fit, there are none */
    return lbw_key_build(out, outlen, "A", l, r->nannotations) < 0 ? NULL : out;
}

static void remember_seen(struct lbw_alerter *a, uint64_t fp)
{
    if (a->nseen == a->seen_cap) {
        size_t cap = a->seen_cap ? a->seen_cap * 2 : 256;
        uint64_t *p = realloc(a->seen, cap * sizeof(*p));
        if (!p)
            return; /* unseen alerts then stay as they are this round */
        a->seen = p;
        a->seen_cap = cap;
    }
    a->seen[a->nseen++] = fp;
}

/* The transition an alert needs when its instance is (in)active now, given its rule's `for`.
 * Returns 1 with *to set, or 0 when it is where it should be. */
static int next_state(const struct lbw_alert *al, int active, int64_t for_ms, int64_t now,
                      enum lbw_alert_state *to)
{
    enum lbw_alert_state s = al ? al->state : LBW_ALERT_INACTIVE;
    if (active) {
        if (s == LBW_ALERT_INACTIVE || s == LBW_ALERT_RESOLVED)
            *to = for_ms > 0 ? LBW_ALERT_PENDING : LBW_ALERT_FIRING;
        else if (s == LBW_ALERT_PENDING && now - al->active_since >= for_ms)
            *to = LBW_ALERT_FIRING;
        else
            return 0;
        return 1;
    }
    if (s == LBW_ALERT_PENDING)
        *to = LBW_ALERT_INACTIVE;
    else if (s == LBW_ALERT_FIRING)
        *to = LBW_ALERT_RESOLVED;
    else
        return 0;
    return 1;
}

static void propose_transition(struct lbw_alerter *a, const struct lbw_alert *al,
                               uint64_t fp, enum lbw_alert_state to, enum lbw_severity sev,
                               double value, const char *labels, const char *annotations)
{
    uint64_t expect = al ? al->seq : 0;
    if (flight_claim(a, FLIGHT_TRANSITION, fp, expect))
        return;
    struct lbw_op op = {.type = LBW_OP_TRANSITION, .time_ms = wall_ms()};
    op.transition.expect_seq = expect;
    op.transition.to = to;
    op.transition.severity = sev;
    op.transition.value = value;
    op.transition.labels = labels;
    op.transition.annotations = annotations;
    if (propose(a, &op, FLIGHT_TRANSITION, fp, NULL, NULL) != 0) {
        flight_done(a, FLIGHT_TRANSITION, fp);
        return;
    }
    a->st.transitions++;
    log_info("alert", "%s -> %s", labels, lbw_alert_state_name(to));
}

struct eval_ctx {
    struct lbw_alerter *a;
    const struct lbw_rule *rule;
    int64_t now;
};

static void on_instance(void *arg, const struct lbw_instance *inst)
{
    struct eval_ctx *e = arg;
    struct lbw_alerter *a = e->a;
    const struct lbw_alert *al = lbw_ledger_alert(a->c.ledger, inst->fingerprint);
    enum lbw_alert_state to;
    char ann[LBW_KEY_MAX];
    remember_seen(a, inst->fingerprint);
    if (!next_state(al, inst->active, e->rule->for_ms, e->now, &to))
        return;
    const char *annotations = inst->active ? render_annotations(e->rule, inst, ann, sizeof(ann))
                                           : al ? al->annotations : NULL;
    propose_transition(a, al, inst->fingerprint, to, e->rule->severity, inst->value,
                       inst->labels, annotations);
}

/* The built-in NotificationsFailing alert, fed like a rule's instances. */
static void on_failing_instance(void *arg, const struct lbw_instance *inst)
{
    struct eval_ctx *e = arg;
    struct lbw_alerter *a = e->a;
    const struct lbw_alert *al = lbw_ledger_alert(a->c.ledger, inst->fingerprint);
    const struct lbw_receiver_health *h = NULL;
    struct lbw_key_parsed k;
    enum lbw_alert_state to;
    char ann[LBW_KEY_MAX];
    remember_seen(a, inst->fingerprint);
    if (!next_state(al, inst->active, 0, e->now, &to))
        return;
    if (lbw_key_parse(inst->labels, strlen(inst->labels), &k) == 0 && lbw_key_label(&k, "receiver"))
        h = lbw_ledger_receiver(a->c.ledger, lbw_key_label(&k, "receiver"));
    const char *annotations = h && lbw_route_failing_annotations(h, ann, sizeof(ann)) >= 0
                                  ? ann
                                  : al ? al->annotations : NULL;
    propose_transition(a, al, inst->fingerprint, to, LBW_SEV_CRITICAL, inst->value, inst->labels,
                       annotations);
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

/* The rule an alert came from (by its alertname), or NULL. */
static const struct lbw_rule *rule_of(const struct lbw_alerter *a, const struct lbw_alert *al)
{
    struct lbw_key_parsed k;
    const char *name;
    if (lbw_key_parse(al->labels, strlen(al->labels), &k) != 0 ||
        !(name = lbw_key_label(&k, "alertname")))
        return NULL;
    for (size_t i = 0; i < a->c.nrules; i++)
        if (strcmp(a->c.rules[i].name, name) == 0)
            return &a->c.rules[i];
    return NULL;
}

/* Pending and firing alerts no instance reported end: their series are gone, or their rule
 * was removed. Alerts of a rule whose evaluation failed this round are left alone. */
static void end_unseen(struct lbw_alerter *a, const uint8_t *failed)
{
    size_t n;
    const struct lbw_alert *al = lbw_ledger_alerts(a->c.ledger, &n);
    if (a->nseen)
        qsort(a->seen, a->nseen, sizeof(*a->seen), cmp_u64);
    for (size_t i = 0; i < n; i++) {
        if (al[i].state != LBW_ALERT_PENDING && al[i].state != LBW_ALERT_FIRING)
            continue;
        if (a->nseen && bsearch(&al[i].fingerprint, a->seen, a->nseen, sizeof(*a->seen), cmp_u64))
            continue;
        const struct lbw_rule *r = rule_of(a, &al[i]);
        if (r && failed[r - a->c.rules])
            continue;
        enum lbw_alert_state to =
            al[i].state == LBW_ALERT_PENDING ? LBW_ALERT_INACTIVE : LBW_ALERT_RESOLVED;
        propose_transition(a, &al[i], al[i].fingerprint, to, al[i].severity, al[i].value,
                           al[i].labels, al[i].annotations);
    }
}

/* Voters in the cluster: a rule cannot ask more vantages to agree than there are nodes. */
static unsigned voters(struct lbw_alerter *a)
{
    struct lbw_cluster_status *cs = malloc(sizeof(*cs));
    unsigned n = 0;
    if (!cs)
        return 1;
    lbw_cluster_status(a->c.cluster, cs);
    for (size_t i = 0; i < cs->nmembers; i++)
        n += cs->members[i].role == RAFT_VOTER;
    free(cs);
    return n ? n : 1;
}

static void evaluate(struct lbw_alerter *a, int64_t now)
{
    uint8_t *failed = calloc(a->c.nrules ? a->c.nrules : 1, 1);
    unsigned nvoters = voters(a);
    if (!failed)
        return;
    a->nseen = 0;
    for (size_t i = 0; i < a->c.nrules; i++) {
        struct lbw_rule r = a->c.rules[i];
        struct eval_ctx e = {a, &a->c.rules[i], now};
        if (r.min_vantages > nvoters)
            r.min_vantages = nvoters;
        if (lbw_rule_eval(&r, &a->source.src, now, on_instance, &e) < 0) {
            failed[i] = 1;
            a->st.eval_errors++;
            log_warn("alert", "rule %s: could not read the store", a->c.rules[i].name);
        }
    }
    struct eval_ctx fe = {a, NULL, now};
    lbw_route_failing_instances(a->c.ledger, on_failing_instance, &fe);
    end_unseen(a, failed);
    free(failed);
    a->st.evaluations++;
    a->st.last_evaluation_ms = now;
}

/* ---- planning ------------------------------------------------------------------------------ */

static uint64_t group_hash(const char *receiver, const char *group, enum lbw_intent_kind kind)
{
    uint64_t h = fnv(1469598103934665603ull, receiver, strlen(receiver) + 1);
    h = fnv(h, group, strlen(group) + 1);
    return fnv(h, &kind, sizeof(kind));
}

static void on_plan(void *arg, const struct lbw_plan *p)
{
    struct lbw_alerter *a = arg;
    uint64_t key = group_hash(p->receiver, p->group_key, p->kind);
    struct lbw_op op;
    if (flight_claim(a, FLIGHT_INTENT, key, p->expect_group))
        return;
    lbw_plan_op(p, wall_ms(), &op);
    if (propose(a, &op, FLIGHT_INTENT, key, NULL, NULL) != 0) {
        flight_done(a, FLIGHT_INTENT, key);
        return;
    }
    a->st.intents++;
    log_info("alert", "%s intent for %s %s (%zu alerts)", lbw_intent_kind_name(p->kind),
             p->receiver, p->group_key, p->nalerts);
}

/* ---- delivery ------------------------------------------------------------------------------ */

struct delivery {
    struct lbw_alerter *a;
    struct delivery *prev, *next;   /* in a->sending */
    uint64_t intent;
    uint32_t attempt;
    char receiver[LBW_LEDGER_NAME_MAX];
};

static void propose_receipt(struct lbw_alerter *a, uint64_t intent, uint32_t attempt, int ok,
                            const char *error)
{
    char text[LBW_LEDGER_TEXT_MAX];
    struct lbw_op op = {.type = LBW_OP_RECEIPT, .time_ms = wall_ms()};
    lbw_op_text_clean(ok ? "" : error, text, sizeof(text));
    op.receipt.intent = intent;
    op.receipt.attempt = attempt;
    op.receipt.ok = ok;
    op.receipt.error = text;
    if (propose(a, &op, FLIGHT_DELIVERY, intent, NULL, NULL) != 0)
        flight_done(a, FLIGHT_DELIVERY, intent); /* not leading: the next leader retries */
    else
        a->st.receipts++;
}

static void sending_add(struct lbw_alerter *a, struct delivery *d)
{
    d->prev = NULL;
    d->next = a->sending;
    if (a->sending)
        a->sending->prev = d;
    a->sending = d;
}

static void sending_remove(struct lbw_alerter *a, struct delivery *d)
{
    if (d->prev)
        d->prev->next = d->next;
    else
        a->sending = d->next;
    if (d->next)
        d->next->prev = d->prev;
}

/* Closes the sender, which drops the callbacks of its sends: their records go with it. */
static void close_sender(struct lbw_alerter *a)
{
    lbw_sender_close(a->sender);
    a->sender = NULL;
    while (a->sending) {
        struct delivery *d = a->sending;
        sending_remove(a, d);
        free(d);
    }
}

static void on_sent(void *arg, int ok, const char *error)
{
    struct delivery *d = arg;
    struct lbw_alerter *a = d->a;
    sending_remove(a, d);
    if (ok) {
        a->st.deliveries_ok++;
        log_info("alert", "intent %llu delivered to %s", (unsigned long long)d->intent,
                 d->receiver);
    } else {
        a->st.deliveries_failed++;
        log_warn("alert", "intent %llu to %s failed (attempt %u): %s",
                 (unsigned long long)d->intent, d->receiver, d->attempt, error);
    }
    if (a->leading && !a->closing)
        propose_receipt(a, d->intent, d->attempt, ok, error);
    else
        flight_done(a, FLIGHT_DELIVERY, d->intent);
    free(d);
}

static void deliver(struct lbw_alerter *a, uint64_t id)
{
    const struct lbw_intent *in = lbw_ledger_intent(a->c.ledger, id);
    struct lbw_notification n;
    struct delivery *d;
    if (!in || in->delivered) {
        flight_done(a, FLIGHT_DELIVERY, id);
        return;
    }
    const struct lbw_receiver *r = lbw_alerting_receiver(a->c.alerting, in->receiver);
    if (!r) {
        propose_receipt(a, id, in->attempts + 1, 0, "the receiver is not configured on the "
                                                      "leader");
        return;
    }
    if (!(d = calloc(1, sizeof(*d)))) {
        flight_done(a, FLIGHT_DELIVERY, id);
        return;
    }
    *d = (struct delivery){.a = a, .intent = id, .attempt = in->attempts + 1};
    snprintf(d->receiver, sizeof(d->receiver), "%s", in->receiver);
    lbw_ledger_notification(in, &n);
    n.external_url = a->external_url;
    if (lbw_sender_send(a->sender, r, &n, on_sent, d) != 0) {
        flight_done(a, FLIGHT_DELIVERY, id);
        free(d);
        return;
    }
    sending_add(a, d);
}

static void on_deadman_done(void *arg, CURL *easy, CURLcode result)
{
    struct lbw_alerter *a = arg;
    long status = 0;
    a->deadman_busy = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    if (result == CURLE_OK && status >= 200 && status < 300) {
        a->st.deadman_ok++;
    } else {
        a->st.deadman_failed++;
        log_warn("alert", "dead man's switch: %s",
                 result != CURLE_OK ? curl_easy_strerror(result) : "HTTP error status");
    }
}

static void call_deadman(struct lbw_alerter *a)
{
    const char *url = a->c.alerting->deadman_url;
    if (!a->deadman && !(a->deadman = curl_easy_init()))
        return;
    curl_easy_reset(a->deadman);
    if (lbw_curl_defaults(a->deadman, url, "http,https", NULL, DEADMAN_TIMEOUT_MS, NULL) != 0) {
        a->st.deadman_failed++;
        return;
    }
    if (lbw_curluv_submit(a->curl, a->deadman, on_deadman_done, a) != 0)
        a->st.deadman_failed++;
    else
        a->deadman_busy = 1;
}

/* The confirmation barrier committed (or not): send what waited for it. */
static void on_confirmed(void *arg, int ok)
{
    struct lbw_alerter *a = arg;
    a->confirming = 0;
    a->outstanding--;
    if (!ok || !a->leading || a->closing) {
        a->st.confirms_failed += !ok;
        for (size_t i = 0; i < a->nround; i++)
            flight_done(a, FLIGHT_DELIVERY, a->round[i]);
        a->nround = 0;
        a->deadman_due = 0;
        maybe_free(a);
        return;
    }
    for (size_t i = 0; i < a->nround; i++)
        deliver(a, a->round[i]);
    a->nround = 0;
    if (a->deadman_due && !a->deadman_busy)
        call_deadman(a);
    a->deadman_due = 0;
}

static void collect_due(void *arg, const struct lbw_intent *in)
{
    struct lbw_alerter *a = arg;
    if (a->nround == DELIVERIES_PER_ROUND ||
        flight_claim(a, FLIGHT_DELIVERY, in->id, in->attempts + 1))
        return;
    a->round[a->nround++] = in->id;
}

static void start_round(struct lbw_alerter *a, int64_t now)
{
    if (a->confirming)
        return;
    lbw_ledger_foreach_due(a->c.ledger, now, collect_due, a);
    if (a->c.alerting->deadman_url && now >= a->next_deadman_ms) {
        a->deadman_due = 1;
        a->next_deadman_ms = now + (int64_t)a->c.alerting->deadman_interval_ms;
    }
    if (a->nround == 0 && !a->deadman_due)
        return;
    if (lbw_cluster_confirm(a->c.cluster, on_confirmed, a) != 0) {
        a->st.confirms_failed++;
        for (size_t i = 0; i < a->nround; i++)
            flight_done(a, FLIGHT_DELIVERY, a->round[i]);
        a->nround = 0;
        a->deadman_due = 0;
        return;
    }
    a->confirming = 1;
    a->outstanding++;
}

/* ---- the loop ------------------------------------------------------------------------------ */

static void on_tick(uv_timer_t *t)
{
    struct lbw_alerter *a = t->data;
    int64_t now = wall_ms();
    if (!a->leading)
        return;
    if (now >= a->next_eval_ms) {
        evaluate(a, now);
        a->next_eval_ms = now + (int64_t)a->c.alerting->evaluation_interval_ms;
    }
    if (a->c.alerting->enabled) {
        lbw_route_plan(&a->c.alerting->route, a->c.ledger, now, on_plan, a);
        start_round(a, now);
    }
}

static void restart_sender(struct lbw_alerter *a)
{
    char err[128];
    close_sender(a);
    if (lbw_sender_new(&a->sender, a->c.loop, a->curl, err, sizeof(err)) != 0)
        log_error("alert", "cannot restart the sender: %s", err);
    a->flights[FLIGHT_DELIVERY].n = 0;
}

void lbw_alerter_leading(struct lbw_alerter *a, int ready)
{
    if (a->closing || a->leading == ready)
        return;
    a->leading = ready;
    a->st.leading = ready;
    if (ready) {
        a->next_eval_ms = 0; /* evaluate at once */
        a->next_deadman_ms = 0;
        run_soon(a);
        return;
    }
    /* whatever this node was about to send, the next leader decides */
    restart_sender(a);
    for (int f = 0; f < FLIGHTS; f++)
        a->flights[f].n = 0;
}

int lbw_alerter_new(struct lbw_alerter **out, const struct lbw_alerter_config *c, char *err,
                    size_t errlen)
{
    struct lbw_alerter *a = calloc(1, sizeof(*a));
    struct timespec ts;
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    a->c = *c;
    snprintf(a->external_url, sizeof(a->external_url), "%s",
             c->alerting->external_url ? c->alerting->external_url : c->web_url);
    clock_gettime(CLOCK_REALTIME, &ts);
    a->seq = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    if (lbw_rulesource_init(&a->source, c->store) != 0 ||
        lbw_curluv_new(&a->curl, c->loop, err, errlen) != 0) {
        lbw_rulesource_fini(&a->source);
        free(a);
        if (!err[0])
            snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (lbw_sender_new(&a->sender, c->loop, a->curl, err, errlen) != 0) {
        lbw_curluv_close(a->curl);
        lbw_rulesource_fini(&a->source);
        free(a);
        return -1;
    }
    uv_timer_init(c->loop, &a->tick);
    a->tick.data = a;
    uv_timer_start(&a->tick, on_tick, TICK_MS, TICK_MS);
    *out = a;
    return 0;
}

const struct lbw_ledger *lbw_alerter_ledger(const struct lbw_alerter *a) { return a->c.ledger; }

void lbw_alerter_stats(const struct lbw_alerter *a, struct lbw_alerter_stats *out)
{
    *out = a->st;
}

/* Freed once closed, its timer gone and no raft callback is owed to it. */
static void maybe_free(struct lbw_alerter *a)
{
    if (!a->closing || a->outstanding > 0 || !a->tick_closed)
        return;
    lbw_rulesource_fini(&a->source);
    free(a->seen);
    free(a);
}

static void on_tick_closed(uv_handle_t *h)
{
    struct lbw_alerter *a = h->data;
    a->tick_closed = 1;
    maybe_free(a);
}

void lbw_alerter_close(struct lbw_alerter *a)
{
    if (!a || a->closing)
        return;
    a->closing = 1;
    a->leading = 0;
    close_sender(a);
    lbw_curluv_close(a->curl); /* cancels the dead man's call too, without a callback */
    if (a->deadman)
        curl_easy_cleanup(a->deadman);
    uv_timer_stop(&a->tick);
    uv_close((uv_handle_t *)&a->tick, on_tick_closed);
}
