/* alertconf.c - the alerting: section of the node configuration. See alertconf.h.
 *
 * Owns the YAML schema of receivers, routes and inhibit rules and reads secrets from their
 * files; everything read goes into an arena (node/confarena.h). Whether a receiver or a
 * routing tree makes sense is decided by alerting/receiver and alerting/route; their reasons
 * are reported at the position of what they refused.
 */
#include "node/alertconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alerting/ledger.h"
#include "node/confarena.h"
#include "node/secretfile.h"

#define MS_SECOND 1000ull
#define MS_MINUTE (60 * MS_SECOND)
#define MAX_RECEIVERS 32
#define MAX_RECIPIENTS 16
#define MAX_INHIBIT 32
#define ROUTE_MAX_CHILDREN 32
#define SMS_MAX_EXTRA 8

/* The default rules' certificate alerts, inhibited while their target is down. */
/* default_inhibit: while the source alert fires, the target alert of the same labels (equal)
 * is not notified. */
static const struct default_inhibit {
    const char *source, *target;
    const char *equal[2];
} default_inhibits[] = {
    {"TargetDown", "CertExpiringSoon", {"target", NULL}},
    {"TargetDown", "CertExpiryCritical", {"target", NULL}},
    {"TargetDown", "CertHostnameMismatch", {"target", NULL}},
    {"TargetDown", "CertChainUntrusted", {"target", NULL}},
    {"BackendDown", "BackendServerDown", {"target", "proxy"}},
};

/* --- secrets --------------------------------------------------------------------------------- */

/* The bytes of a secret file into the arena, without a final newline; text secrets may not
 * hold a NUL. The contents are never reported: errors say which file and why. */
static const void *read_secret(struct lbw_confread *r, struct ymap *m, const char *key,
                               int text, size_t *len)
{
    char buf[LBW_SECRET_MAX + 1];
    if (!lbw_secret_read(m, key, text, buf, len))
        return NULL;
    char *copy = lbw_conf_alloc(r, *len + 1);
    if (copy)
        memcpy(copy, buf, *len + 1);
    explicit_bzero(buf, sizeof(buf));
    return copy;
}

static const char *read_secret_text(struct lbw_confread *r, struct ymap *m, const char *key)
{
    size_t len;
    return read_secret(r, m, key, 1, &len);
}

/* --- small readers ----------------------------------------------------------------------------- */

static const char *const http_schemes[] = {"http://", "https://", NULL};
static const char *const smtp_schemes[] = {"smtp://", "smtps://", NULL};

static const char *read_url(struct lbw_confread *r, struct ymap *m, const char *key, int flags,
                            const char *const *schemes)
{
    const char *url = lbw_conf_str(r, m, key, flags);
    for (size_t i = 0; url && schemes[i]; i++)
        if (strncmp(url, schemes[i], strlen(schemes[i])) == 0)
            return url;
    if (url)
        lbw_conf_fail_value(m, key, schemes == smtp_schemes
                                        ? "must be an smtp:// or smtps:// URL"
                                        : "must be an http:// or https:// URL");
    return NULL;
}

static uint32_t read_timeout(struct ymap *m)
{
    uint64_t ms = 0;
    ymap_duration(m, "timeout", Y_OPTIONAL, 100, 10 * MS_MINUTE, &ms);
    return (uint32_t)ms;
}

/* A list of 1..MAX_RECIPIENTS strings. */
static const char *const *read_list(struct lbw_confread *r, struct ymap *m, const char *key,
                                    size_t *n)
{
    struct yseq s;
    *n = 0;
    if (!ymap_seq(m, key, Y_REQUIRED, &s))
        return NULL;
    size_t len = yseq_len(&s);
    if (len == 0 || len > MAX_RECIPIENTS) {
        ymap_fail(m, key, "must list 1 to %d entries", MAX_RECIPIENTS);
        return NULL;
    }
    const char **v = lbw_conf_alloc(r, len * sizeof(*v));
    for (size_t i = 0; v && i < len; i++) {
        char *item = NULL;
        if (!yseq_str(&s, i, &item))
            return NULL;
        v[i] = lbw_conf_strdup(r, item);
        free(item);
    }
    *n = v ? len : 0;
    return v;
}

/* --- receivers --------------------------------------------------------------------------------- */

static void read_webhook(struct lbw_confread *r, struct ymap *m, struct lbw_webhook_config *w)
{
    w->url = read_url(r, m, "url", Y_REQUIRED, http_schemes);
    w->secret = read_secret(r, m, "secret_file", 0, &w->secret_len);
    w->ca_file = NULL;
    char *ca = NULL;
    if (ymap_path(m, "ca_file", Y_OPTIONAL, &ca))
        w->ca_file = lbw_conf_strdup(r, ca);
    free(ca);
    w->timeout_ms = read_timeout(m);
}

static const char *const starttls_names[] = {"required", "opportunistic", "off", NULL};

static void read_email(struct lbw_confread *r, struct ymap *m, struct lbw_email_config *e)
{
    int starttls = LBW_STARTTLS_REQUIRED;
    char *ca = NULL;
    e->url = read_url(r, m, "url", Y_REQUIRED, smtp_schemes);
    ymap_enum(m, "starttls", Y_OPTIONAL, starttls_names, &starttls);
    e->starttls = (enum lbw_starttls)starttls;
    e->from = lbw_conf_str(r, m, "from", Y_REQUIRED);
    e->to = read_list(r, m, "to", &e->nto);
    e->username = lbw_conf_str(r, m, "username", Y_OPTIONAL);
    e->password = read_secret_text(r, m, "password_file");
    if (ymap_path(m, "ca_file", Y_OPTIONAL, &ca))
        e->ca_file = lbw_conf_strdup(r, ca);
    free(ca);
    e->timeout_ms = read_timeout(m);
}

static const char *const method_names[] = {"POST", "PUT", "GET", NULL};
static const char *const format_names[] = {"form", "json", NULL};

static void read_sms_auth(struct lbw_confread *r, struct ymap *m, struct lbw_sms_config *s)
{
    struct ymap a;
    if (!ymap_map(m, "auth", Y_OPTIONAL, &a)) {
        ymap_close(&a);
        return;
    }
    s->username = lbw_conf_str(r, &a, "username", Y_OPTIONAL);
    s->password = read_secret_text(r, &a, "password_file");
    s->token = read_secret_text(r, &a, "bearer_file");
    if (ymap_close(&a) < 0)
        return;
    if (s->token && (s->username || s->password))
        ymap_fail(m, "auth", "either username and password_file, or bearer_file");
    else if (!s->token && !(s->username && s->password))
        ymap_fail(m, "auth", "needs username and password_file, or bearer_file");
    s->auth = s->token ? LBW_SMS_AUTH_BEARER : LBW_SMS_AUTH_BASIC;
}

static void read_sms(struct lbw_confread *r, struct ymap *m, struct lbw_sms_config *s)
{
    struct ymap f;
    int method = 0, format = LBW_SMS_FORM;
    char *ca = NULL;
    struct lbw_label extra[SMS_MAX_EXTRA];
    struct lbw_conf_pairs want = {extra, NULL, sizeof(extra) / sizeof(extra[0]), 0};
    s->url = read_url(r, m, "url", Y_REQUIRED, http_schemes);
    ymap_enum(m, "method", Y_OPTIONAL, method_names, &method);
    s->method = method_names[method];
    ymap_enum(m, "format", Y_OPTIONAL, format_names, &format);
    s->format = (enum lbw_sms_format)format;
    if (ymap_map(m, "fields", Y_OPTIONAL, &f)) {
        s->to_param = lbw_conf_str(r, &f, "to", Y_OPTIONAL);
        s->from_param = lbw_conf_str(r, &f, "from", Y_OPTIONAL);
        s->text_param = lbw_conf_str(r, &f, "text", Y_OPTIONAL);
    }
    ymap_close(&f);
    s->from = lbw_conf_str(r, m, "from", Y_OPTIONAL);
    s->to = read_list(r, m, "to", &s->nto);
    size_t n = lbw_conf_pairs(r, m, "extra", &want);
    struct lbw_sms_param *p = n ? lbw_conf_alloc(r, n * sizeof(*p)) : NULL;
    for (size_t i = 0; p && i < n; i++)
        p[i] = (struct lbw_sms_param){extra[i].name, extra[i].value};
    s->extra = p;
    s->nextra = p ? n : 0;
    read_sms_auth(r, m, s);
    if (ymap_path(m, "ca_file", Y_OPTIONAL, &ca))
        s->ca_file = lbw_conf_strdup(r, ca);
    free(ca);
    s->timeout_ms = read_timeout(m);
}

static void check_receiver(struct ymap *m, const struct lbw_receiver *rc, const char *kind)
{
    char why[256];
    if (!ydoc_failed(m->doc) && lbw_receiver_check(rc, why, sizeof(why)) != 0)
        ymap_fail(m, kind, "%s", why);
}

static void read_receiver(struct lbw_confread *r, struct yseq *s, size_t i,
                          struct lbw_receiver *rc, const struct lbw_receiver *before)
{
    struct ymap m, k;
    const char *kinds[] = {"webhook", "email", "sms"};
    int found = -1;
    yseq_map(s, i, &m);
    rc->name = lbw_conf_str(r, &m, "name", Y_REQUIRED);
    if (rc->name && !lbw_receiver_name_valid(rc->name))
        lbw_conf_fail_value(&m, "name", "must be 1-63 letters, digits, '.', '_' or '-'");
    for (size_t j = 0; rc->name && j < i; j++)
        if (strcmp(before[j].name, rc->name) == 0)
            ymap_fail(&m, "name", "duplicate receiver name \"%s\"", rc->name);
    for (int kind = 0; kind < 3; kind++) {
        if (!ymap_map(&m, kinds[kind], Y_OPTIONAL, &k)) {
            ymap_close(&k);
            continue;
        }
        if (found >= 0)
            ymap_fail(&m, kinds[kind], "a receiver is one of webhook, email or sms");
        found = kind;
        rc->kind = (enum lbw_receiver_kind)kind;
        if (kind == 0)
            read_webhook(r, &k, &rc->webhook);
        else if (kind == 1)
            read_email(r, &k, &rc->email);
        else
            read_sms(r, &k, &rc->sms);
        ymap_close(&k);
    }
    if (ymap_close(&m) < 0)
        return;
    if (found < 0)
        ymap_fail(&m, "name", "needs one of webhook, email or sms");
    else
        check_receiver(&m, rc, kinds[found]);
}

static void read_receivers(struct lbw_confread *r, struct ymap *m, struct lbw_alerting *a)
{
    struct yseq s;
    if (!ymap_seq(m, "receivers", Y_REQUIRED, &s))
        return;
    size_t n = yseq_len(&s);
    if (n == 0 || n > MAX_RECEIVERS) {
        ymap_fail(m, "receivers", "must list 1 to %d receivers", MAX_RECEIVERS);
        return;
    }
    a->receivers = lbw_conf_alloc(r, n * sizeof(*a->receivers));
    for (size_t i = 0; a->receivers && i < n && !ydoc_failed(r->d); i++)
        read_receiver(r, &s, i, &a->receivers[i], a->receivers);
    a->nreceivers = ydoc_failed(r->d) ? 0 : n;
}

/* --- routes ------------------------------------------------------------------------------------ */

static void read_route(struct lbw_confread *r, struct ymap *m, struct lbw_route *rt,
                       const struct lbw_route_config *cfg, int depth);

/* One route's own settings, checked by alerting/route against the configured receivers and
 * reported at the route (its children are checked at theirs; the whole tree once read). */
static void check_route(struct ymap *m, const struct lbw_route *rt,
                        const struct lbw_route_config *cfg)
{
    struct lbw_route_config one = {.root = *rt, .receivers = cfg->receivers,
                                   .nreceivers = cfg->nreceivers};
    char why[256];
    if (ydoc_failed(m->doc) || !m->node || cfg->nreceivers == 0)
        return; /* no receivers: that is the error to report */
    one.root.nmatchers = 0; /* the root may have none; read_pair checked these */
    one.root.routes = NULL;
    one.root.nroutes = 0;
    if (!one.root.receiver)
        one.root.receiver = cfg->receivers[0];  /* a child's is inherited */
    if (lbw_route_check(&one, why, sizeof(why)) != 0)
        ydoc_fail(m->doc, m->node, m->path, "%s", why);
}

static void read_group_by(struct lbw_confread *r, struct ymap *m, struct lbw_route *rt)
{
    struct yseq s;
    if (!ymap_seq(m, "group_by", Y_OPTIONAL, &s))
        return;
    size_t n = yseq_len(&s);
    if (n == 0 || n > LBW_ROUTE_MAX_GROUP_BY) {
        ymap_fail(m, "group_by", "must list 1 to %d labels", LBW_ROUTE_MAX_GROUP_BY);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char *item = NULL;
        if (!yseq_str(&s, i, &item))
            return;
        rt->group_by[i] = lbw_conf_strdup(r, item);
        free(item);
    }
    rt->ngroup_by = n;
}

static void read_escalation(struct lbw_confread *r, struct ymap *m, struct lbw_route *rt)
{
    struct ymap e;
    uint64_t after = 0;
    if (!ymap_map(m, "escalate", Y_OPTIONAL, &e)) {
        ymap_close(&e);
        return;
    }
    ymap_duration(&e, "after", Y_REQUIRED, MS_MINUTE, LBW_ROUTE_MAX_DURATION_MS, &after);
    rt->escalate_to = lbw_conf_str(r, &e, "to", Y_REQUIRED);
    rt->escalate_after_ms = (int64_t)after;
    ymap_close(&e);
}

static void read_children(struct lbw_confread *r, struct ymap *m, struct lbw_route *rt,
                          const struct lbw_route_config *cfg, int depth)
{
    struct yseq s;
    if (!ymap_seq(m, "routes", Y_OPTIONAL, &s))
        return;
    size_t n = yseq_len(&s);
    if (n > ROUTE_MAX_CHILDREN) {
        ymap_fail(m, "routes", "at most %d routes", ROUTE_MAX_CHILDREN);
        return;
    }
    if (n > 0 && depth + 1 >= LBW_ROUTE_MAX_DEPTH) {
        ymap_fail(m, "routes", "routes nested more than %d deep", LBW_ROUTE_MAX_DEPTH);
        return;
    }
    struct lbw_route *kids = n ? lbw_conf_alloc(r, n * sizeof(*kids)) : NULL;
    for (size_t i = 0; kids && i < n && !ydoc_failed(r->d); i++) {
        struct ymap c;
        yseq_map(&s, i, &c);
        read_route(r, &c, &kids[i], cfg, depth + 1);
        ymap_close(&c);
        check_route(&c, &kids[i], cfg);
    }
    rt->routes = kids;
    rt->nroutes = kids ? n : 0;
}

static void read_route(struct lbw_confread *r, struct ymap *m, struct lbw_route *rt,
                       const struct lbw_route_config *cfg, int depth)
{
    int root = depth == 0;
    uint64_t wait = 0, interval = 0, repeat = 0;
    struct lbw_conf_pairs want = {NULL, rt->matchers, LBW_ROUTE_MAX_MATCHERS, 0};
    rt->receiver = lbw_conf_str(r, m, "receiver", root ? Y_REQUIRED : Y_OPTIONAL);
    if (!root)
        rt->nmatchers = lbw_conf_pairs(r, m, "match", &want);
    read_group_by(r, m, rt);
    ymap_duration(m, "group_wait", Y_OPTIONAL, 1, LBW_ROUTE_MAX_DURATION_MS, &wait);
    ymap_duration(m, "group_interval", Y_OPTIONAL, 1, LBW_ROUTE_MAX_DURATION_MS, &interval);
    ymap_duration(m, "repeat_interval", Y_OPTIONAL, 1, LBW_ROUTE_MAX_DURATION_MS, &repeat);
    rt->group_wait_ms = (int64_t)wait;
    rt->group_interval_ms = (int64_t)interval;
    rt->repeat_interval_ms = (int64_t)repeat;
    if (!root)
        ymap_bool(m, "continue", Y_OPTIONAL, &rt->cont);
    read_escalation(r, m, rt);
    read_children(r, m, rt, cfg, depth);
}

static void read_inhibit_rule(struct lbw_confread *r, struct yseq *s, size_t i,
                              struct lbw_inhibit_rule *ir)
{
    struct ymap m;
    struct yseq eq;
    struct lbw_conf_pairs src = {NULL, ir->source, LBW_ROUTE_MAX_MATCHERS, 0};
    struct lbw_conf_pairs tgt = {NULL, ir->target, LBW_ROUTE_MAX_MATCHERS, 0};
    yseq_map(s, i, &m);
    ir->nsource = lbw_conf_pairs(r, &m, "source", &src);
    ir->ntarget = lbw_conf_pairs(r, &m, "target", &tgt);
    if (ymap_seq(&m, "equal", Y_OPTIONAL, &eq)) {
        size_t n = yseq_len(&eq);
        for (size_t j = 0; j < n && j < LBW_INHIBIT_MAX_EQUAL; j++) {
            char *item = NULL;
            if (!yseq_str(&eq, j, &item))
                break;
            if (!lbw_label_name_valid(item)) {
                char path[YD_PATH_MAX], got[256];
                lbw_conf_path(path, "%s[%zu]", eq.path, NULL, j);
                ydoc_fail(r->d, yseq_node(&eq, j), path,
                          "bad label name %s (use letters, digits and '_')",
                          ydoc_what(yseq_node(&eq, j), got, sizeof(got)));
            }
            ir->equal[ir->nequal++] = lbw_conf_strdup(r, item);
            free(item);
        }
        if (n > LBW_INHIBIT_MAX_EQUAL)
            ymap_fail(&m, "equal", "at most %d labels", LBW_INHIBIT_MAX_EQUAL);
    }
    if (ymap_close(&m) == 0 && (ir->nsource == 0 || ir->ntarget == 0))
        ymap_fail(&m, ir->nsource ? "target" : "source", "needs at least one matcher");
}

/* The configured inhibit rules, then (default_inhibit) the default ones: TargetDown over each
 * certificate alert of the same target, BackendDown over its servers' BackendServerDown. */
static void read_inhibit(struct lbw_confread *r, struct ymap *m, struct lbw_alerting *a)
{
    struct yseq s;
    int defaults = 1;
    size_t n = ymap_seq(m, "inhibit", Y_OPTIONAL, &s) ? yseq_len(&s) : 0;
    size_t ndef = sizeof(default_inhibits) / sizeof(default_inhibits[0]);
    ymap_bool(m, "default_inhibit", Y_OPTIONAL, &defaults);
    if (n > MAX_INHIBIT) {
        ymap_fail(m, "inhibit", "at most %d rules", MAX_INHIBIT);
        return;
    }
    size_t total = n + (defaults ? ndef : 0);
    struct lbw_inhibit_rule *v = total ? lbw_conf_alloc(r, total * sizeof(*v)) : NULL;
    if (total && !v)
        return;
    for (size_t i = 0; i < n && !ydoc_failed(r->d); i++)
        read_inhibit_rule(r, &s, i, &v[i]);
    for (size_t i = 0; defaults && i < ndef; i++) {
        const struct default_inhibit *d = &default_inhibits[i];
        struct lbw_inhibit_rule *ir = &v[n + i];
        ir->source[0] = (struct lbw_matcher){"alertname", d->source, 0};
        ir->target[0] = (struct lbw_matcher){"alertname", d->target, 0};
        ir->nsource = ir->ntarget = 1;
        for (size_t k = 0; k < 2 && d->equal[k]; k++)
            ir->equal[ir->nequal++] = d->equal[k];
    }
    a->route.inhibit = v;
    a->route.ninhibit = total;
}

static void read_routing(struct lbw_confread *r, struct ymap *m, struct lbw_alerting *a)
{
    struct ymap rm;
    char why[256];
    const char **names = lbw_conf_alloc(r, (a->nreceivers + 1) * sizeof(*names));
    if (!names)
        return;
    for (size_t i = 0; i < a->nreceivers; i++)
        names[i] = a->receivers[i].name;
    a->route.receivers = names;
    a->route.nreceivers = a->nreceivers;
    ymap_map(m, "route", Y_REQUIRED, &rm);
    if (rm.node)
        read_route(r, &rm, &a->route.root, &a->route, 0);
    ymap_close(&rm);
    check_route(&rm, &a->route.root, &a->route);
    read_inhibit(r, m, a);
    if (!ydoc_failed(r->d) && rm.node && lbw_route_check(&a->route, why, sizeof(why)) != 0)
        ymap_fail(m, "route", "%s", why);
}

/* --- the section ------------------------------------------------------------------------------- */

static void read_deadman(struct lbw_confread *r, struct ymap *m, struct lbw_alerting *a)
{
    struct ymap d;
    a->deadman_interval_ms = MS_MINUTE;
    if (!ymap_map(m, "deadman", Y_OPTIONAL, &d)) {
        ymap_close(&d);
        return;
    }
    a->deadman_url = read_url(r, &d, "url", Y_REQUIRED, http_schemes);
    ymap_duration(&d, "interval", Y_OPTIONAL, 10 * MS_SECOND, 24 * 60 * MS_MINUTE,
                  &a->deadman_interval_ms);
    ymap_close(&d);
}

int lbw_alertconf_read(struct ymap *top, struct lbw_alerting *out)
{
    struct lbw_arena *arena = NULL;
    struct lbw_confread r = {top->doc, &arena};
    struct ymap m;
    memset(out, 0, sizeof(*out));
    out->evaluation_interval_ms = 10 * MS_SECOND;
    out->deadman_interval_ms = MS_MINUTE;
    if (!ymap_map(top, "alerting", Y_OPTIONAL, &m)) {
        ymap_close(&m);
        return ydoc_failed(top->doc) ? -1 : 0;
    }
    out->enabled = 1;
    ymap_duration(&m, "evaluation_interval", Y_OPTIONAL, MS_SECOND, 10 * MS_MINUTE,
                  &out->evaluation_interval_ms);
    out->external_url = read_url(&r, &m, "external_url", Y_OPTIONAL, http_schemes);
    read_deadman(&r, &m, out);
    read_receivers(&r, &m, out);
    if (!ydoc_failed(top->doc))
        read_routing(&r, &m, out);
    ymap_close(&m);
    out->arena = arena;
    if (ydoc_failed(top->doc)) {
        lbw_alerting_free(out);
        return -1;
    }
    return 0;
}

void lbw_alerting_free(struct lbw_alerting *a)
{
    if (!a)
        return;
    lbw_arena_free(a->arena);
    memset(a, 0, sizeof(*a));
}

const struct lbw_receiver *lbw_alerting_receiver(const struct lbw_alerting *a, const char *name)
{
    for (size_t i = 0; a && i < a->nreceivers; i++)
        if (strcmp(a->receivers[i].name, name) == 0)
            return &a->receivers[i];
    return NULL;
}
