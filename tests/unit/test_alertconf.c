/* test_alertconf.c - the alerting: section of the node configuration, loaded with
 * lbw_config_load from a temp dir that holds the secret files: a full config read back field
 * by field (secrets without their trailing newline), the defaults, default_inhibit, and the
 * exact "FILE:LINE:COL: PATH: reason" of every error, which names a secret's file but never
 * its contents. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "node/config.h"
#include "tests/support/testutil.h"

#define S_MS 1000
#define MIN_MS (60 * S_MS)
#define H_MS (60 * MIN_MS)
#define NODE "node: {name: n1, data_dir: /d}\n"

static char dir[PATH_MAX];              /* the temp dir, a real path */
static char cfg_path[PATH_MAX + 32];    /* DIR/lbwatch.yaml */

/* Secret file contents, and what is read from them. */
static const char hook_secret[] = "whsec-\0\x01\xff-bin\n";    /* binary: NULs are fine */
static const char hook_read[] = "whsec-\0\x01\xff-bin";
static const char smtp_pass[] = "p@ss word\r\n";
static const char sms_pass[] = "sms-pass";                     /* no newline at all */
static const char sms_token[] = "tok-123\n\n";
static const char nul_pass[] = "s3cr3t\0tail\n";               /* a text secret with a NUL */

static void put(const char *rel, const void *data, size_t len)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    assert_int_equal(tu_write_file(path, data, len), 0);
}

static int setup(void **state)
{
    (void)state;
    char tmp[PATH_MAX], path[PATH_MAX + 64], zs[4097];
    if (tu_tmpdir("lbw-acf", tmp, sizeof(tmp)) != 0 || !realpath(tmp, dir))
        return -1;
    snprintf(cfg_path, sizeof(cfg_path), "%s/lbwatch.yaml", dir);
    snprintf(path, sizeof(path), "%s/secrets", dir);
    if (mkdir(path, 0700) != 0)
        return -1;
    snprintf(path, sizeof(path), "%s/secrets/adir", dir);
    if (mkdir(path, 0700) != 0)
        return -1;
    put("secrets/hook.secret", hook_secret, sizeof(hook_secret) - 1);
    put("secrets/smtp.pass", smtp_pass, sizeof(smtp_pass) - 1);
    put("secrets/sms.pass", sms_pass, sizeof(sms_pass) - 1);
    put("secrets/sms.token", sms_token, sizeof(sms_token) - 1);
    put("secrets/nul.pass", nul_pass, sizeof(nul_pass) - 1);
    put("secrets/open", sms_pass, sizeof(sms_pass) - 1);
    put("secrets/groupw", sms_pass, sizeof(sms_pass) - 1);
    put("secrets/groupr", sms_pass, sizeof(sms_pass) - 1);
    snprintf(path, sizeof(path), "%s/secrets/open", dir);
    if (chmod(path, 0644) != 0)
        return -1;
    snprintf(path, sizeof(path), "%s/secrets/groupw", dir);
    if (chmod(path, 0660) != 0)
        return -1;
    snprintf(path, sizeof(path), "%s/secrets/groupr", dir); /* root:lbwatch 0640 is fine */
    if (chmod(path, 0640) != 0)
        return -1;
    put("secrets/empty", "", 0);
    put("secrets/newlines", "\n\r\n", 3);
    memset(zs, 'Z', sizeof(zs));
    put("secrets/long", zs, sizeof(zs));                /* one byte over the limit */
    put("secrets/longest", zs, sizeof(zs) - 1);         /* exactly the limit */
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tu_rmrf(dir);
    return 0;
}

static int load(const char *text, struct lbw_config **c, char *err, size_t errlen)
{
    assert_int_equal(tu_write_file(cfg_path, text, strlen(text)), 0);
    return lbw_config_load(cfg_path, c, err, errlen);
}

static struct lbw_config *load_ok(const char *text)
{
    struct lbw_config *c = NULL;
    char err[1024] = "";
    if (load(text, &c, err, sizeof(err)) != 0)
        fail_msg("unexpected error: %s\n--- config:\n%s", err, text);
    assert_non_null(c);
    return c;
}

/* want is "LINE:COL: reason"; "{dir}" in it stands for the temp dir. */
static void expect_error(const char *text, const char *want)
{
    struct lbw_config *c = (struct lbw_config *)1;
    char err[1024] = "", full[3 * PATH_MAX];
    size_t n = (size_t)snprintf(full, sizeof(full), "%s:", cfg_path);
    for (const char *w = want; *w && n < sizeof(full) - 1;) {
        if (strncmp(w, "{dir}", 5) == 0) {
            n += (size_t)snprintf(full + n, sizeof(full) - n, "%s", dir);
            w += 5;
        } else {
            full[n++] = *w++;
        }
    }
    full[n] = '\0';
    if (load(text, &c, err, sizeof(err)) == 0)
        fail_msg("accepted, expected: %s\n--- config:\n%s", full, text);
    assert_null(c);
    if (strcmp(err, full) != 0)
        fail_msg("config:\n%s\n--- got:  %s\n--- want: %s", text, err, full);
}

struct bad {
    const char *text;
    const char *err;
};

static void run_bad(const struct bad *cases, size_t n)
{
    for (size_t i = 0; i < n; i++)
        expect_error(cases[i].text, cases[i].err);
}

static void assert_matcher(const struct lbw_matcher *m, const char *name, const char *value,
                           int negate)
{
    assert_string_equal(m->name, name);
    assert_string_equal(m->value, value);
    assert_int_equal(m->negate, negate);
}

/* --- good configs ---------------------------------------------------------------------------- */

static const char full[] =
    NODE
    "alerting:\n"
    "  evaluation_interval: 30s\n"
    "  external_url: https://lbwatch.example.com/\n"
    "  deadman: {url: \"https://deadman.example/ping/abc\", interval: 2m}\n"
    "  receivers:\n"
    "    - name: ops-hook\n"
    "      webhook:\n"
    "        url: https://hooks.example/lbwatch\n"
    "        secret_file: secrets/hook.secret\n"
    "        ca_file: pki/hooks-ca.pem\n"
    "        timeout: 5s\n"
    "    - name: mail\n"
    "      email:\n"
    "        url: \"smtp://mail.example:587\"\n"
    "        starttls: required\n"
    "        from: \"lbwatch <lbwatch@example.com>\"\n"
    "        to: [ops@example.com, \"On Call <oncall@example.com>\", audit@example.com]\n"
    "        username: lbwatch\n"
    "        password_file: secrets/smtp.pass\n"
    "        ca_file: /etc/ssl/mail-ca.pem\n"
    "        timeout: 45s\n"
    "    - name: mail.tls\n"
    "      email: {url: \"smtps://mail.example\", from: a@example.com, to: [b@example.com],\n"
    "              username: u, password_file: secrets/smtp.pass}\n"
    "    - name: mail_lan\n"
    "      email: {url: \"smtp://relay.lan:25\", starttls: opportunistic, from: a@example.com,\n"
    "              to: [b@example.com]}\n"
    "    - name: mail-plain\n"
    "      email: {url: \"smtp://127.0.0.1:2525\", starttls: \"off\", from: a@example.com,\n"
    "              to: [b@example.com]}\n"
    "    - name: pager\n"
    "      sms:\n"
    "        url: https://sms.example/send\n"
    "        format: form\n"
    "        fields: {to: dst, from: src, text: msg}\n"
    "        from: lbwatch\n"
    "        to: [\"+15550100\", \"+15550101\"]\n"
    "        extra: {route: premium, unicode: \"0\"}\n"
    "        auth: {username: acct, password_file: secrets/sms.pass}\n"
    "        ca_file: pki/sms-ca.pem\n"
    "    - name: pager-json\n"
    "      sms:\n"
    "        url: http://sms-gw.internal:8080/v1/messages\n"
    "        method: PUT\n"
    "        format: json\n"
    "        to: [\"+15550199\"]\n"
    "        auth: {bearer_file: secrets/sms.token}\n"
    "        timeout: 3s\n"
    "  route:\n"
    "    receiver: ops-hook\n"
    "    group_by: [alertname, target]\n"
    "    group_wait: 45s\n"
    "    group_interval: 10m\n"
    "    repeat_interval: 12h\n"
    "    routes:\n"
    "      - match: {severity: critical}\n"
    "        receiver: pager\n"
    "        continue: true\n"
    "        group_by: [\"...\"]\n"
    "        escalate: {after: 15m, to: mail}\n"
    "        routes:\n"
    "          - match: {target: \"!lab\", team: web}\n"
    "            receiver: pager-json\n"
    "            group_wait: 1s\n"
    "            routes:\n"
    "              - match: {alertname: TargetDown}\n"
    "                receiver: mail.tls\n"
    "                repeat_interval: 1h\n"
    "      - match: {severity: warning}\n"
    "        receiver: mail\n"
    "        group_interval: 1m\n"
    "        continue: false\n"
    "  inhibit:\n"
    "    - source: {alertname: TargetDown}\n"
    "      target: {severity: \"!critical\"}\n"
    "      equal: [target, vantage]\n"
    "    - source: {severity: critical, team: web}\n"
    "      target: {severity: warning}\n"
    "  default_inhibit: true\n";

static void full_config_every_field(void **state)
{
    (void)state;
    char path[PATH_MAX + 64];
    struct lbw_config *c = load_ok(full);
    const struct lbw_alerting *a = &c->alerting;

    assert_true(a->enabled);
    assert_int_equal(a->evaluation_interval_ms, 30 * S_MS);
    assert_string_equal(a->external_url, "https://lbwatch.example.com/");
    assert_string_equal(a->deadman_url, "https://deadman.example/ping/abc");
    assert_int_equal(a->deadman_interval_ms, 2 * MIN_MS);
    assert_non_null(a->arena);
    assert_int_equal(a->nreceivers, 7);

    const struct lbw_receiver *r = &a->receivers[0];
    assert_string_equal(r->name, "ops-hook");
    assert_int_equal(r->kind, LBW_RECEIVER_WEBHOOK);
    assert_string_equal(r->webhook.url, "https://hooks.example/lbwatch");
    assert_int_equal(r->webhook.secret_len, sizeof(hook_read) - 1);
    assert_memory_equal(r->webhook.secret, hook_read, sizeof(hook_read) - 1);
    snprintf(path, sizeof(path), "%s/pki/hooks-ca.pem", dir);
    assert_string_equal(r->webhook.ca_file, path);
    assert_int_equal(r->webhook.timeout_ms, 5 * S_MS);

    r = &a->receivers[1];
    assert_string_equal(r->name, "mail");
    assert_int_equal(r->kind, LBW_RECEIVER_EMAIL);
    assert_string_equal(r->email.url, "smtp://mail.example:587");
    assert_int_equal(r->email.starttls, LBW_STARTTLS_REQUIRED);
    assert_string_equal(r->email.from, "lbwatch <lbwatch@example.com>");
    assert_int_equal(r->email.nto, 3);
    assert_string_equal(r->email.to[0], "ops@example.com");
    assert_string_equal(r->email.to[1], "On Call <oncall@example.com>");
    assert_string_equal(r->email.to[2], "audit@example.com");
    assert_string_equal(r->email.username, "lbwatch");
    assert_string_equal(r->email.password, "p@ss word");     /* "\r\n" left out */
    assert_string_equal(r->email.ca_file, "/etc/ssl/mail-ca.pem");
    assert_int_equal(r->email.timeout_ms, 45 * S_MS);

    r = &a->receivers[2];
    assert_string_equal(r->name, "mail.tls");
    assert_string_equal(r->email.url, "smtps://mail.example");
    assert_int_equal(r->email.starttls, LBW_STARTTLS_REQUIRED);  /* default */
    assert_string_equal(r->email.password, "p@ss word");
    assert_int_equal(r->email.nto, 1);
    assert_null(r->email.ca_file);
    assert_int_equal(r->email.timeout_ms, 0);
    assert_int_equal(a->receivers[3].email.starttls, LBW_STARTTLS_OPPORTUNISTIC);
    assert_null(a->receivers[3].email.username);
    assert_null(a->receivers[3].email.password);
    assert_int_equal(a->receivers[4].email.starttls, LBW_STARTTLS_OFF);

    r = &a->receivers[5];
    assert_string_equal(r->name, "pager");
    assert_int_equal(r->kind, LBW_RECEIVER_SMS);
    assert_string_equal(r->sms.url, "https://sms.example/send");
    assert_string_equal(r->sms.method, "POST");
    assert_int_equal(r->sms.format, LBW_SMS_FORM);
    assert_string_equal(r->sms.to_param, "dst");
    assert_string_equal(r->sms.from_param, "src");
    assert_string_equal(r->sms.text_param, "msg");
    assert_string_equal(r->sms.from, "lbwatch");
    assert_int_equal(r->sms.nto, 2);
    assert_string_equal(r->sms.to[0], "+15550100");
    assert_string_equal(r->sms.to[1], "+15550101");
    assert_int_equal(r->sms.nextra, 2);
    assert_string_equal(r->sms.extra[0].name, "route");
    assert_string_equal(r->sms.extra[0].value, "premium");
    assert_string_equal(r->sms.extra[1].name, "unicode");
    assert_string_equal(r->sms.extra[1].value, "0");
    assert_int_equal(r->sms.auth, LBW_SMS_AUTH_BASIC);
    assert_string_equal(r->sms.username, "acct");
    assert_string_equal(r->sms.password, "sms-pass");
    assert_null(r->sms.token);
    snprintf(path, sizeof(path), "%s/pki/sms-ca.pem", dir);
    assert_string_equal(r->sms.ca_file, path);
    assert_int_equal(r->sms.timeout_ms, 0);

    r = &a->receivers[6];
    assert_string_equal(r->name, "pager-json");
    assert_string_equal(r->sms.url, "http://sms-gw.internal:8080/v1/messages");
    assert_string_equal(r->sms.method, "PUT");
    assert_int_equal(r->sms.format, LBW_SMS_JSON);
    assert_null(r->sms.to_param);
    assert_null(r->sms.from_param);
    assert_null(r->sms.text_param);
    assert_null(r->sms.from);
    assert_int_equal(r->sms.nto, 1);
    assert_int_equal(r->sms.nextra, 0);
    assert_int_equal(r->sms.auth, LBW_SMS_AUTH_BEARER);
    assert_string_equal(r->sms.token, "tok-123");            /* every trailing newline */
    assert_null(r->sms.username);
    assert_null(r->sms.password);
    assert_int_equal(r->sms.timeout_ms, 3 * S_MS);

    assert_ptr_equal(lbw_alerting_receiver(a, "pager"), &a->receivers[5]);
    assert_ptr_equal(lbw_alerting_receiver(a, "mail.tls"), &a->receivers[2]);
    assert_null(lbw_alerting_receiver(a, "Pager"));
    assert_null(lbw_alerting_receiver(a, "nobody"));

    /* the routing tree */
    const struct lbw_route_config *rc = &a->route;
    assert_int_equal(rc->nreceivers, 7);
    for (size_t i = 0; i < rc->nreceivers; i++)
        assert_string_equal(rc->receivers[i], a->receivers[i].name);
    const struct lbw_route *root = &rc->root;
    assert_int_equal(root->nmatchers, 0);
    assert_string_equal(root->receiver, "ops-hook");
    assert_int_equal(root->ngroup_by, 2);
    assert_string_equal(root->group_by[0], "alertname");
    assert_string_equal(root->group_by[1], "target");
    assert_int_equal(root->group_wait_ms, 45 * S_MS);
    assert_int_equal(root->group_interval_ms, 10 * MIN_MS);
    assert_int_equal(root->repeat_interval_ms, 12 * H_MS);
    assert_int_equal(root->cont, 0);
    assert_int_equal(root->escalate_after_ms, 0);
    assert_null(root->escalate_to);
    assert_int_equal(root->nroutes, 2);

    const struct lbw_route *crit = &root->routes[0];
    assert_int_equal(crit->nmatchers, 1);
    assert_matcher(&crit->matchers[0], "severity", "critical", 0);
    assert_string_equal(crit->receiver, "pager");
    assert_int_equal(crit->cont, 1);
    assert_int_equal(crit->ngroup_by, 1);
    assert_string_equal(crit->group_by[0], "...");
    assert_int_equal(crit->escalate_after_ms, 15 * MIN_MS);
    assert_string_equal(crit->escalate_to, "mail");
    assert_int_equal(crit->group_wait_ms, 0);       /* inherited */
    assert_int_equal(crit->group_interval_ms, 0);
    assert_int_equal(crit->repeat_interval_ms, 0);
    assert_int_equal(crit->nroutes, 1);

    const struct lbw_route *web = &crit->routes[0];
    assert_int_equal(web->nmatchers, 2);
    assert_matcher(&web->matchers[0], "target", "lab", 1);
    assert_matcher(&web->matchers[1], "team", "web", 0);
    assert_string_equal(web->receiver, "pager-json");
    assert_int_equal(web->group_wait_ms, 1 * S_MS);
    assert_int_equal(web->ngroup_by, 0);
    assert_int_equal(web->cont, 0);
    assert_int_equal(web->escalate_after_ms, 0);
    assert_int_equal(web->nroutes, 1);

    const struct lbw_route *down = &web->routes[0];
    assert_int_equal(down->nmatchers, 1);
    assert_matcher(&down->matchers[0], "alertname", "TargetDown", 0);
    assert_string_equal(down->receiver, "mail.tls");
    assert_int_equal(down->repeat_interval_ms, 1 * H_MS);
    assert_int_equal(down->nroutes, 0);
    assert_null(down->routes);

    const struct lbw_route *warn = &root->routes[1];
    assert_matcher(&warn->matchers[0], "severity", "warning", 0);
    assert_string_equal(warn->receiver, "mail");
    assert_int_equal(warn->group_interval_ms, 1 * MIN_MS);
    assert_int_equal(warn->cont, 0);
    assert_int_equal(warn->nroutes, 0);

    /* the configured inhibit rules, then the defaults */
    assert_int_equal(rc->ninhibit, 2 + 5);
    const struct lbw_inhibit_rule *ir = &rc->inhibit[0];
    assert_int_equal(ir->nsource, 1);
    assert_matcher(&ir->source[0], "alertname", "TargetDown", 0);
    assert_int_equal(ir->ntarget, 1);
    assert_matcher(&ir->target[0], "severity", "critical", 1);
    assert_int_equal(ir->nequal, 2);
    assert_string_equal(ir->equal[0], "target");
    assert_string_equal(ir->equal[1], "vantage");
    ir = &rc->inhibit[1];
    assert_int_equal(ir->nsource, 2);
    assert_matcher(&ir->source[0], "severity", "critical", 0);
    assert_matcher(&ir->source[1], "team", "web", 0);
    assert_int_equal(ir->ntarget, 1);
    assert_matcher(&ir->target[0], "severity", "warning", 0);
    assert_int_equal(ir->nequal, 0);
    assert_string_equal(rc->inhibit[2].target[0].value, "CertExpiringSoon");

    /* what was read is a valid routing configuration */
    char why[256] = "";
    if (lbw_route_check(rc, why, sizeof(why)) != 0)
        fail_msg("route check: %s", why);
    for (size_t i = 0; i < a->nreceivers; i++)
        if (lbw_receiver_check(&a->receivers[i], why, sizeof(why)) != 0)
            fail_msg("receiver %s: %s", a->receivers[i].name, why);
    lbw_config_free(c);
}

/* Finds the default inhibit rule TargetDown -> name, equal [target]. */
static const struct lbw_inhibit_rule *default_inhibit_for(const struct lbw_route_config *rc,
                                                          const char *name)
{
    for (size_t i = 0; i < rc->ninhibit; i++) {
        const struct lbw_inhibit_rule *ir = &rc->inhibit[i];
        if (ir->ntarget == 1 && strcmp(ir->target[0].name, "alertname") == 0 &&
            strcmp(ir->target[0].value, name) == 0)
            return ir;
    }
    return NULL;
}

#define SMALL                                                                                   \
    NODE "alerting:\n"                                                                          \
         "  receivers:\n"                                                                       \
         "    - {name: m, webhook: {url: \"http://a/\"}}\n"                                    \
         "  route: {receiver: m}\n"

static void defaults(void **state)
{
    (void)state;
    struct lbw_config *c = load_ok(NODE);   /* no alerting section */
    assert_false(c->alerting.enabled);
    assert_int_equal(c->alerting.nreceivers, 0);
    assert_null(c->alerting.receivers);
    assert_null(c->alerting.route.root.receiver);
    assert_int_equal(c->alerting.route.ninhibit, 0);
    assert_null(c->alerting.external_url);
    assert_null(c->alerting.deadman_url);
    assert_int_equal(c->alerting.evaluation_interval_ms, 10 * S_MS);
    lbw_config_free(c);

    c = load_ok(SMALL
                "rules:\n"
                "  - name: Custom\n"
                "    threshold: {metric: probe_success, op: \"==\", value: 0}\n");
    const struct lbw_alerting *a = &c->alerting;
    assert_true(a->enabled);
    assert_int_equal(a->evaluation_interval_ms, 10 * S_MS);
    assert_null(a->external_url);
    assert_null(a->deadman_url);
    assert_int_equal(a->deadman_interval_ms, MIN_MS);
    assert_int_equal(a->nreceivers, 1);
    const struct lbw_webhook_config *w = &a->receivers[0].webhook;
    assert_string_equal(w->url, "http://a/");
    assert_null(w->secret);
    assert_int_equal(w->secret_len, 0);
    assert_null(w->ca_file);
    assert_int_equal(w->timeout_ms, 0);
    const struct lbw_route *root = &a->route.root;
    assert_string_equal(root->receiver, "m");
    assert_int_equal(root->ngroup_by, 0);
    assert_int_equal(root->group_wait_ms, 0);       /* route.h's defaults apply */
    assert_int_equal(root->group_interval_ms, 0);
    assert_int_equal(root->repeat_interval_ms, 0);
    assert_int_equal(root->nroutes, 0);

    /* default_inhibit: a target that is down inhibits each of its certificate alerts, a
     * backend that is down its servers' alerts */
    assert_int_equal(a->route.ninhibit, 5);
    const struct lbw_inhibit_rule *servers = default_inhibit_for(&a->route, "BackendServerDown");
    assert_non_null(servers);
    assert_matcher(&servers->source[0], "alertname", "BackendDown", 0);
    assert_int_equal(servers->nequal, 2);
    assert_string_equal(servers->equal[0], "target");
    assert_string_equal(servers->equal[1], "proxy");
    static const char *const certs[] = {"CertExpiringSoon", "CertExpiryCritical",
                                        "CertHostnameMismatch", "CertChainUntrusted"};
    for (size_t i = 0; i < 4; i++) {
        const struct lbw_inhibit_rule *ir = &a->route.inhibit[i];
        assert_int_equal(ir->nsource, 1);
        assert_matcher(&ir->source[0], "alertname", "TargetDown", 0);
        assert_int_equal(ir->ntarget, 1);
        assert_matcher(&ir->target[0], "alertname", certs[i], 0);
        assert_int_equal(ir->nequal, 1);
        assert_string_equal(ir->equal[0], "target");
    }
    /* ... and that is every certificate alert among the default rules */
    size_t ncert = 0;
    for (size_t i = 0; i < c->rules.nrules; i++) {
        const char *name = c->rules.rules[i].name;
        if (strncmp(name, "Cert", 4) == 0) {
            ncert++;
            if (!default_inhibit_for(&a->route, name))
                fail_msg("default rule %s is not inhibited by TargetDown", name);
        }
    }
    assert_int_equal(ncert, 4);
    lbw_config_free(c);

    /* an SMS receiver's defaults */
    c = load_ok(NODE "alerting:\n"
                     "  receivers:\n"
                     "    - {name: s, sms: {url: \"https://s/\", to: [\"+1\"]}}\n"
                     "  route: {receiver: s}\n");
    const struct lbw_sms_config *s = &c->alerting.receivers[0].sms;
    assert_string_equal(s->method, "POST");
    assert_int_equal(s->format, LBW_SMS_FORM);
    assert_null(s->to_param);
    assert_null(s->from_param);
    assert_null(s->text_param);
    assert_null(s->from);
    assert_int_equal(s->nextra, 0);
    assert_null(s->extra);
    assert_int_equal(s->auth, LBW_SMS_AUTH_NONE);
    assert_null(s->ca_file);
    lbw_config_free(c);
}

static void default_inhibit_off(void **state)
{
    (void)state;
    struct lbw_config *c = load_ok(SMALL "  default_inhibit: false\n");
    assert_int_equal(c->alerting.route.ninhibit, 0);
    assert_null(c->alerting.route.inhibit);
    assert_null(default_inhibit_for(&c->alerting.route, "CertExpiringSoon"));
    lbw_config_free(c);

    c = load_ok(SMALL "  default_inhibit: false\n"
                      "  inhibit:\n"
                      "    - {source: {alertname: A}, target: {alertname: B}, equal: [x]}\n");
    assert_int_equal(c->alerting.route.ninhibit, 1);
    assert_matcher(&c->alerting.route.inhibit[0].target[0], "alertname", "B", 0);
    assert_null(default_inhibit_for(&c->alerting.route, "CertChainUntrusted"));
    lbw_config_free(c);

    c = load_ok(SMALL "  default_inhibit: true\n  inhibit: []\n");
    assert_int_equal(c->alerting.route.ninhibit, 5);
    lbw_config_free(c);
}

static void secret_limits(void **state)
{
    (void)state;
    /* a secret of exactly 4096 bytes is read whole */
    struct lbw_config *c = load_ok(NODE "alerting:\n"
                                        "  receivers:\n"
                                        "    - {name: m, webhook: {url: \"http://a/\", "
                                        "secret_file: secrets/longest}}\n"
                                        "  route: {receiver: m}\n");
    assert_int_equal(c->alerting.receivers[0].webhook.secret_len, 4096);
    assert_int_equal(((const char *)c->alerting.receivers[0].webhook.secret)[4095], 'Z');
    lbw_config_free(c);

    /* an absolute secret path is taken as written */
    char text[PATH_MAX + 1024], path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/secrets/sms.token", dir);
    snprintf(text, sizeof(text),
             NODE "alerting:\n"
                  "  receivers:\n"
                  "    - {name: s, sms: {url: \"https://s/\", to: [\"+1\"], "
                  "auth: {bearer_file: \"%s\"}}}\n"
                  "  route: {receiver: s}\n",
             path);
    c = load_ok(text);
    assert_string_equal(c->alerting.receivers[0].sms.token, "tok-123");
    lbw_config_free(c);

    /* group-readable (root:lbwatch 0640) is accepted */
    c = load_ok(NODE "alerting:\n"
                     "  receivers:\n"
                     "    - {name: m, webhook: {url: \"http://a/\", secret_file: secrets/groupr}}\n"
                     "  route: {receiver: m}\n");
    assert_int_equal(c->alerting.receivers[0].webhook.secret_len, sizeof(sms_pass) - 1);
    lbw_config_free(c);
}

/* --- bad configs ----------------------------------------------------------------------------- */

#define RECV "  receivers:\n    - {name: m, webhook: {url: \"http://a/\"}}\n"
#define ROUTE "  route: {receiver: m}\n"
#define ALERTING NODE "alerting:\n"

static void errors_in_receivers(void **state)
{
    (void)state;
    static const struct bad cases[] = {
        {ALERTING ROUTE, "3:3: missing required key 'receivers' in 'alerting'"},
        {ALERTING "  receivers: []\n" ROUTE,
         "3:14: alerting.receivers: must list 1 to 32 receivers"},
        {ALERTING "  receivers: {m: 1}\n" ROUTE,
         "3:14: alerting.receivers: expected a sequence, got a mapping"},
        {ALERTING "  receivers:\n"
                  "    - {name: ops, webhook: {url: \"https://a/\"}}\n"
                  "    - {name: ops, webhook: {url: \"https://b/\"}}\n"
                  "  route: {receiver: ops}\n",
         "5:14: alerting.receivers[1].name: duplicate receiver name \"ops\""},
        {ALERTING "  receivers:\n"
                  "    - {name: ops, webhook: {url: \"https://a/\"}, sms: {url: \"https://b/\", "
                  "to: [x]}}\n"
                  "  route: {receiver: ops}\n",
         "4:54: alerting.receivers[0].sms: a receiver is one of webhook, email or sms"},
        {ALERTING "  receivers:\n    - {name: ops}\n  route: {receiver: ops}\n",
         "4:14: alerting.receivers[0].name: needs one of webhook, email or sms"},
        {ALERTING "  receivers:\n    - {webhook: {url: \"https://a/\"}}\n" ROUTE,
         "4:7: missing required key 'name' in 'alerting.receivers[0]'"},
        {ALERTING "  receivers:\n    - {name: \"ops team\", webhook: {url: \"https://a/\"}}\n"
                  ROUTE,
         "4:14: alerting.receivers[0].name: must be 1-63 letters, digits, '.', '_' or '-', "
         "got \"ops team\""},
        {ALERTING "  receivers:\n    - {name: m, webhook: {url: \"ftp://a/\"}}\n" ROUTE,
         "4:32: alerting.receivers[0].webhook.url: must be an http:// or https:// URL, got "
         "\"ftp://a/\""},
        {ALERTING "  receivers:\n    - {name: m, email: {url: \"https://a/\", from: a@b.c, "
                  "to: [x@y.z]}}\n" ROUTE,
         "4:30: alerting.receivers[0].email.url: must be an smtp:// or smtps:// URL, got "
         "\"https://a/\""},
        {ALERTING "  receivers:\n    - {name: m, sms: {url: \"smtp://a/\", to: [x]}}\n" ROUTE,
         "4:28: alerting.receivers[0].sms.url: must be an http:// or https:// URL, got "
         "\"smtp://a/\""},
        {ALERTING "  receivers:\n    - {name: m, webhook: {secret_file: secrets/sms.pass}}\n"
                  ROUTE,
         "4:26: missing required key 'url' in 'alerting.receivers[0].webhook'"},
        {ALERTING "  receivers:\n    - {name: m, webhook: {url: \"http://a/\", timeout: 10ms}}\n"
                  ROUTE,
         "4:54: alerting.receivers[0].webhook.timeout: must be at least 100ms, got 10ms"},
        {ALERTING "  receivers:\n    - {name: m, email: {url: \"smtp://a\", from: a@b.c, "
                  "to: []}}\n" ROUTE,
         "4:59: alerting.receivers[0].email.to: must list 1 to 16 entries"},
        {ALERTING "  receivers:\n    - {name: m, email: {url: \"smtp://a\", from: a@b.c, "
                  "to: [x@y.z], starttls: maybe}}\n" ROUTE,
         "4:78: alerting.receivers[0].email.starttls: unknown value \"maybe\" (use required, "
         "opportunistic or off)"},
        {ALERTING "  receivers:\n    - {name: m, email: {url: \"smtp://a\", from: a@b.c, "
                  "to: [nobody]}}\n" ROUTE,
         "4:24: alerting.receivers[0].email: to[0] is not a mail address"},
        /* a password is only sent over TLS: lbw_receiver_check's reason, at the receiver */
        {ALERTING "  receivers:\n    - name: m\n      email: {url: \"smtp://a\", starttls: "
                  "opportunistic, from: a@b.c, to: [x@y.z], username: u, password_file: "
                  "secrets/smtp.pass}\n" ROUTE,
         "5:14: alerting.receivers[0].email: a password is only sent over TLS: use smtps:// "
         "or starttls required"},
        {ALERTING "  receivers:\n    - name: m\n      email: {url: \"smtp://a\", starttls: "
                  "\"off\", from: a@b.c, to: [x@y.z], username: u, password_file: "
                  "secrets/smtp.pass}\n" ROUTE,
         "5:14: alerting.receivers[0].email: a password is only sent over TLS: use smtps:// "
         "or starttls required"},
        {ALERTING "  receivers:\n    - name: m\n      email: {url: \"smtp://a\", from: a@b.c, "
                  "to: [x@y.z], password_file: secrets/smtp.pass}\n" ROUTE,
         "5:14: alerting.receivers[0].email: username and password go together"},
        {ALERTING "  receivers:\n    - {name: s, sms: {url: \"https://s/\", to: [\"+1\"], "
                  "method: GET, format: json}}\n" ROUTE,
         "4:22: alerting.receivers[0].sms: GET sends form fields, not JSON"},
        {ALERTING "  receivers:\n    - {name: s, sms: {url: \"https://s/\", to: [\"+1\"], "
                  "method: DELETE}}\n" ROUTE,
         "4:62: alerting.receivers[0].sms.method: unknown value \"DELETE\" (use POST, PUT or "
         "GET)"},
        {ALERTING "  receivers:\n    - {name: s, sms: {url: \"https://s/\", to: [\"+1\"], "
                  "fields: {to: text}}}\n" ROUTE,
         "4:22: alerting.receivers[0].sms: field text is used twice"},
        {ALERTING "  receivers:\n    - {name: s, sms: {url: \"https://s/\", to: [\"+1\"], "
                  "extra: {to: x}}}\n" ROUTE,
         "4:22: alerting.receivers[0].sms: field to is used twice"},
        {ALERTING "  receivers:\n    - {name: s, sms: {url: \"https://s/\", to: [\"+1\"], "
                  "extra: {api-key: x}}}\n" ROUTE,
         "4:62: alerting.receivers[0].sms.extra: bad label name \"api-key\" (use letters, "
         "digits and '_')"},
        /* sms auth: both kinds, or neither complete */
        {ALERTING "  receivers:\n    - name: s\n      sms: {url: \"https://s/\", to: [\"+1\"], "
                  "auth: {username: u, password_file: secrets/sms.pass, bearer_file: "
                  "secrets/sms.token}}\n" ROUTE,
         "5:50: alerting.receivers[0].sms.auth: either username and password_file, or "
         "bearer_file"},
        {ALERTING "  receivers:\n    - name: s\n      sms: {url: \"https://s/\", to: [\"+1\"], "
                  "auth: {username: u}}\n" ROUTE,
         "5:50: alerting.receivers[0].sms.auth: needs username and password_file, or "
         "bearer_file"},
        {ALERTING "  receivers:\n    - name: s\n      sms: {url: \"https://s/\", to: [\"+1\"], "
                  "auth: {}}\n" ROUTE,
         "5:50: alerting.receivers[0].sms.auth: needs username and password_file, or "
         "bearer_file"},
    };
    run_bad(cases, sizeof(cases) / sizeof(cases[0]));
}

/* Every error about a secret file names the file and never shows what it holds. */
static void errors_in_secret_files(void **state)
{
    (void)state;
    static const struct bad cases[] = {
        {ALERTING "  receivers:\n    - {name: m, webhook: {url: \"http://a/\", secret_file: "
                  "secrets/missing}}\n" ROUTE,
         "4:58: alerting.receivers[0].webhook.secret_file: cannot read {dir}/secrets/missing: "
         "No such file or directory"},
        {ALERTING "  receivers:\n    - {name: m, webhook: {url: \"http://a/\", secret_file: "
                  "secrets/adir}}\n" ROUTE,
         "4:58: alerting.receivers[0].webhook.secret_file: {dir}/secrets/adir is not a regular "
         "file"},
        {ALERTING "  receivers:\n    - {name: m, webhook: {url: \"http://a/\", secret_file: "
                  "secrets/open}}\n" ROUTE,
         "4:58: alerting.receivers[0].webhook.secret_file: {dir}/secrets/open is readable or "
         "writable by others (mode 0644): make it 0600 or 0640"},
        {ALERTING "  receivers:\n    - {name: m, webhook: {url: \"http://a/\", secret_file: "
                  "secrets/groupw}}\n" ROUTE,
         "4:58: alerting.receivers[0].webhook.secret_file: {dir}/secrets/groupw is readable or "
         "writable by others (mode 0660): make it 0600 or 0640"},
        {ALERTING "  receivers:\n    - {name: m, webhook: {url: \"http://a/\", secret_file: "
                  "secrets/empty}}\n" ROUTE,
         "4:58: alerting.receivers[0].webhook.secret_file: {dir}/secrets/empty is empty"},
        {ALERTING "  receivers:\n    - {name: m, webhook: {url: \"http://a/\", secret_file: "
                  "secrets/newlines}}\n" ROUTE,
         "4:58: alerting.receivers[0].webhook.secret_file: {dir}/secrets/newlines is empty"},
        {ALERTING "  receivers:\n    - {name: m, webhook: {url: \"http://a/\", secret_file: "
                  "secrets/long}}\n" ROUTE,
         "4:58: alerting.receivers[0].webhook.secret_file: {dir}/secrets/long is longer than "
         "4096 bytes"},
        {ALERTING "  receivers:\n    - name: m\n      email: {url: \"smtps://a\", from: a@b.c, "
                  "to: [x@y.z], username: u, password_file: secrets/nul.pass}\n" ROUTE,
         "5:87: alerting.receivers[0].email.password_file: {dir}/secrets/nul.pass holds a NUL "
         "byte"},
        {ALERTING "  receivers:\n    - name: s\n      sms: {url: \"https://s/\", to: [\"+1\"], "
                  "auth: {username: u, password_file: secrets/nul.pass}}\n" ROUTE,
         "5:79: alerting.receivers[0].sms.auth.password_file: {dir}/secrets/nul.pass holds a "
         "NUL byte"},
        {ALERTING "  receivers:\n    - name: s\n      sms: {url: \"https://s/\", to: [\"+1\"], "
                  "auth: {bearer_file: secrets/nul.pass}}\n" ROUTE,
         "5:64: alerting.receivers[0].sms.auth.bearer_file: {dir}/secrets/nul.pass holds a "
         "NUL byte"},
        {ALERTING "  receivers:\n    - name: s\n      sms: {url: \"https://s/\", to: [\"+1\"], "
                  "auth: {bearer_file: secrets/empty}}\n" ROUTE,
         "5:64: alerting.receivers[0].sms.auth.bearer_file: {dir}/secrets/empty is empty"},
        {ALERTING "  receivers:\n    - {name: m, webhook: {url: \"http://a/\", secret_file: "
                  "[a]}}\n" ROUTE,
         "4:58: alerting.receivers[0].webhook.secret_file: expected a path, got a sequence"},
    };
    run_bad(cases, sizeof(cases) / sizeof(cases[0]));

    /* the secret text is in none of these messages */
    static const char *const leaks[] = {"s3cr3t", "tail", "ZZZZ", "p@ss", "tok-123",
                                        "sms-pass"};
    static const char *const texts[] = {
        ALERTING "  receivers:\n    - {name: m, email: {url: \"smtps://a\", from: a@b.c, "
                 "to: [x@y.z], username: u, password_file: secrets/nul.pass}}\n" ROUTE,
        ALERTING "  receivers:\n    - {name: m, webhook: {url: \"http://a/\", secret_file: "
                 "secrets/long}}\n" ROUTE,
        ALERTING "  receivers:\n    - {name: m, email: {url: \"smtp://a\", starttls: \"off\", "
                 "from: a@b.c, to: [x@y.z], username: u, password_file: secrets/smtp.pass}}\n"
                 ROUTE,
        ALERTING "  receivers:\n    - {name: s, sms: {url: \"https://s/\", to: [\"+1\"], "
                 "auth: {username: u, password_file: secrets/sms.pass, bearer_file: "
                 "secrets/sms.token}}}\n" ROUTE,
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        struct lbw_config *c = NULL;
        char err[1024] = "";
        assert_int_equal(load(texts[i], &c, err, sizeof(err)), -1);
        assert_null(c);
        assert_true(err[0] != '\0');
        for (size_t j = 0; j < sizeof(leaks) / sizeof(leaks[0]); j++)
            if (strstr(err, leaks[j]))
                fail_msg("the error shows a secret (%s): %s", leaks[j], err);
    }
}

static void errors_in_routes(void **state)
{
    (void)state;
    static const struct bad cases[] = {
        {ALERTING RECV, "3:3: missing required key 'route' in 'alerting'"},
        {ALERTING RECV "  route: {group_by: [a]}\n",
         "5:10: missing required key 'receiver' in 'alerting.route'"},
        {ALERTING RECV "  route: {receiver: nope}\n",
         "5:10: alerting.route: unknown receiver \"nope\""},
        /* a route's problem is reported at that route */
        {ALERTING RECV "  route:\n"
                       "    receiver: m\n"
                       "    routes:\n"
                       "      - match: {a: b}\n"
                       "        routes:\n"
                       "          - {receiver: nope}\n",
         "10:13: alerting.route.routes[0].routes[0]: unknown receiver \"nope\""},
        {ALERTING RECV "  route:\n"
                       "    receiver: m\n"
                       "    routes:\n"
                       "      - {match: {a: b}, escalate: {after: 5m, to: nope}}\n",
         "8:9: alerting.route.routes[0]: unknown escalation receiver \"nope\""},
        {ALERTING RECV "  route:\n"
                       "    receiver: m\n"
                       "    routes:\n"
                       "      - {match: {a: b}, escalate: {to: m}}\n",
         "8:35: missing required key 'after' in 'alerting.route.routes[0].escalate'"},
        {ALERTING RECV "  route:\n"
                       "    receiver: m\n"
                       "    routes:\n"
                       "      - {match: {a: b}, escalate: {after: 5m}}\n",
         "8:35: missing required key 'to' in 'alerting.route.routes[0].escalate'"},
        {ALERTING RECV "  route:\n"
                       "    receiver: m\n"
                       "    routes:\n"
                       "      - {match: {a: b}, escalate: {after: 30s, to: m}}\n",
         "8:43: alerting.route.routes[0].escalate.after: must be at least 1m, got 30s"},
        {ALERTING RECV "  route:\n"
                       "    receiver: m\n"
                       "    routes:\n"
                       "      - {match: {a: b}, group_by: [..., target]}\n",
         "8:9: alerting.route.routes[0]: group_by \"...\" must stand alone"},
        {ALERTING RECV "  route: {receiver: m, group_by: [target, target]}\n",
         "5:10: alerting.route: group_by: target twice"},
        {ALERTING RECV "  route: {receiver: m, group_by: []}\n",
         "5:34: alerting.route.group_by: must list 1 to 16 labels"},
        {ALERTING RECV "  route: {receiver: m, match: {a: b}}\n",
         "5:24: unknown key 'match' in 'alerting.route' (expected receiver, group_by, "
         "group_wait, group_interval, repeat_interval, escalate, routes)"},
        {ALERTING RECV "  route: {receiver: m, continue: true}\n",
         "5:24: unknown key 'continue' in 'alerting.route' (expected receiver, group_by, "
         "group_wait, group_interval, repeat_interval, escalate, routes)"},
        {ALERTING RECV "  route:\n"
                       "    receiver: m\n"
                       "    routes:\n"
                       "      - {match: {bad-name: x}}\n",
         "8:18: alerting.route.routes[0].match: bad label name \"bad-name\" (use letters, "
         "digits and '_')"},
        {ALERTING RECV "  route:\n"
                       "    receiver: m\n"
                       "    routes:\n"
                       "      - {match: {a: b}, continue: yes}\n",
         "8:35: alerting.route.routes[0].continue: expected true or false, got \"yes\""},
        /* durations */
        {ALERTING RECV "  route: {receiver: m, group_wait: 5x}\n",
         "5:36: alerting.route.group_wait: bad duration \"5x\" (use e.g. 500ms, 10s, 5m, 1h)"},
        {ALERTING RECV "  route: {receiver: m, group_wait: 0s}\n",
         "5:36: alerting.route.group_wait: must be at least 1ms, got 0s"},
        {ALERTING RECV "  route: {receiver: m, repeat_interval: 0ms}\n",
         "5:41: alerting.route.repeat_interval: must be at least 1ms, got 0ms"},
        {ALERTING RECV "  route: {receiver: m, group_interval: 367d}\n",
         "5:40: alerting.route.group_interval: must be at most 366d, got 367d"},
    };
    run_bad(cases, sizeof(cases) / sizeof(cases[0]));
}

/* A tree LEVELS routes deep (the root is level 1). */
static void nested_routes(char *out, size_t len, int levels)
{
    size_t n = (size_t)snprintf(out, len, ALERTING RECV "  route:\n    receiver: m\n");
    for (int i = 1; i < levels; i++) {
        int ind = 4 + 4 * (i - 1);
        n += (size_t)snprintf(out + n, len - n, "%*sroutes:\n%*s  - match: {l%d: x}\n", ind, "",
                              ind, "", i);
    }
    assert_true(n < len);
}

static void route_depth(void **state)
{
    (void)state;
    char text[4096];
    nested_routes(text, sizeof(text), 8);               /* LBW_ROUTE_MAX_DEPTH */
    struct lbw_config *c = load_ok(text);
    const struct lbw_route *r = &c->alerting.route.root;
    for (int i = 1; i < 8; i++) {
        assert_int_equal(r->nroutes, 1);
        r = &r->routes[0];
    }
    assert_int_equal(r->nroutes, 0);
    assert_string_equal(r->matchers[0].name, "l7");
    lbw_config_free(c);

    nested_routes(text, sizeof(text), 9);
    expect_error(text, "22:35: alerting.route.routes[0].routes[0].routes[0].routes[0].routes[0]."
                       "routes[0].routes[0].routes: routes nested more than 8 deep");

    /* what only the whole tree shows is reported at alerting.route */
    size_t n = (size_t)snprintf(text, sizeof(text), ALERTING RECV "  route:\n    receiver: m\n"
                                                                   "    routes:\n");
    for (int i = 0; i < 17; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n,
                              "      - {match: {a: \"%d\"}, continue: true}\n", i);
    expect_error(text, "6:5: alerting.route: an alert could go to more than 16 routes");
}

static void errors_in_inhibit(void **state)
{
    (void)state;
    static const struct bad cases[] = {
        {ALERTING RECV ROUTE "  inhibit:\n    - {source: {alertname: A}, equal: [target]}\n",
         "7:7: alerting.inhibit[0].target: needs at least one matcher"},
        {ALERTING RECV ROUTE "  inhibit:\n    - {target: {alertname: A}}\n",
         "7:7: alerting.inhibit[0].source: needs at least one matcher"},
        {ALERTING RECV ROUTE "  inhibit:\n    - {source: {}, target: {alertname: A}}\n",
         "7:16: alerting.inhibit[0].source: needs at least one matcher"},
        {ALERTING RECV ROUTE "  inhibit:\n"
                             "    - {source: {alertname: A}, target: {alertname: B}}\n"
                             "    - {source: {alertname: A}, target: {alertname: B}, "
                             "equal: [bad-label]}\n",
         "8:64: alerting.inhibit[1].equal[0]: bad label name \"bad-label\" (use letters, "
         "digits and '_')"},
        {ALERTING RECV ROUTE "  inhibit:\n"
                             "    - {source: {alertname: A}, target: {alertname: B}, "
                             "equal: [a, b, c, d, e, f, g, h, i]}\n",
         "7:63: alerting.inhibit[0].equal: at most 8 labels"},
        {ALERTING RECV ROUTE "  inhibit:\n    - {source: {alertname: A}, target: {alertname: B}, "
                             "when: now}\n",
         "7:56: unknown key 'when' in 'alerting.inhibit[0]' (expected source, target, equal)"},
        {ALERTING RECV ROUTE "  inhibit:\n    - {source: {alertname: A}, target: {b-c: B}}\n",
         "7:41: alerting.inhibit[0].target: bad label name \"b-c\" (use letters, digits and "
         "'_')"},
        {ALERTING RECV ROUTE "  default_inhibit: no\n",
         "6:20: alerting.default_inhibit: expected true or false, got \"no\""},
    };
    run_bad(cases, sizeof(cases) / sizeof(cases[0]));
}

static void errors_in_section(void **state)
{
    (void)state;
    static const struct bad cases[] = {
        {ALERTING "  evaluation_interval: 500ms\n" RECV ROUTE,
         "3:24: alerting.evaluation_interval: must be at least 1s, got 500ms"},
        {ALERTING "  evaluation_interval: 11m\n" RECV ROUTE,
         "3:24: alerting.evaluation_interval: must be at most 10m, got 11m"},
        {ALERTING "  evaluation_interval: ten\n" RECV ROUTE,
         "3:24: alerting.evaluation_interval: bad duration \"ten\" (use e.g. 500ms, 10s, 5m, "
         "1h)"},
        {ALERTING "  external_url: ftp://x\n" RECV ROUTE,
         "3:17: alerting.external_url: must be an http:// or https:// URL, got \"ftp://x\""},
        {ALERTING "  deadman: {interval: 1m}\n" RECV ROUTE,
         "3:12: missing required key 'url' in 'alerting.deadman'"},
        {ALERTING "  deadman: {url: \"mailto:x@y\"}\n" RECV ROUTE,
         "3:18: alerting.deadman.url: must be an http:// or https:// URL, got \"mailto:x@y\""},
        {ALERTING "  deadman: {url: \"https://d/\", interval: 5s}\n" RECV ROUTE,
         "3:42: alerting.deadman.interval: must be at least 10s, got 5s"},
        {ALERTING "  deadman: {url: \"https://d/\", interval: 2d}\n" RECV ROUTE,
         "3:42: alerting.deadman.interval: must be at most 1d, got 2d"},
        {NODE "alerting: []\n", "2:11: alerting: expected a mapping, got a sequence"},
    };
    run_bad(cases, sizeof(cases) / sizeof(cases[0]));
}

static void unknown_keys(void **state)
{
    (void)state;
    static const struct bad cases[] = {
        {ALERTING RECV ROUTE "  recievers: []\n",
         "6:3: unknown key 'recievers' in 'alerting' (expected evaluation_interval, "
         "external_url, deadman, receivers, route, inhibit, default_inhibit)"},
        {ALERTING "  receivers:\n    - {name: m, webhook: {url: \"http://a/\"}, kind: x}\n"
                  ROUTE,
         "4:46: unknown key 'kind' in 'alerting.receivers[0]' (expected name, webhook, email, "
         "sms)"},
        {ALERTING "  receivers:\n    - {name: m, webhook: {url: \"http://a/\", secret: x}}\n"
                  ROUTE,
         "4:45: unknown key 'secret' in 'alerting.receivers[0].webhook' (expected url, "
         "secret_file, ca_file, timeout)"},
        {ALERTING "  receivers:\n    - {name: m, email: {url: \"smtp://a\", from: a@b.c, "
                  "to: [x@y.z], password: x}}\n" ROUTE,
         "4:68: unknown key 'password' in 'alerting.receivers[0].email' (expected url, "
         "starttls, from, to, username, password_file, ca_file, timeout)"},
        {ALERTING "  receivers:\n    - {name: s, sms: {url: \"https://s/\", to: [\"+1\"], "
                  "token: x}}\n" ROUTE,
         "4:54: unknown key 'token' in 'alerting.receivers[0].sms' (expected url, method, "
         "format, fields, from, to, extra, auth, ca_file, timeout)"},
        {ALERTING "  receivers:\n    - {name: s, sms: {url: \"https://s/\", to: [\"+1\"], "
                  "fields: {body: b}}}\n" ROUTE,
         "4:63: unknown key 'body' in 'alerting.receivers[0].sms.fields' (expected to, from, "
         "text)"},
        {ALERTING "  receivers:\n    - {name: s, sms: {url: \"https://s/\", to: [\"+1\"], "
                  "auth: {token_file: t}}}\n" ROUTE,
         "4:61: unknown key 'token_file' in 'alerting.receivers[0].sms.auth' (expected "
         "username, password_file, bearer_file)"},
        {ALERTING "  deadman: {url: \"https://d/\", every: 1m}\n" RECV ROUTE,
         "3:32: unknown key 'every' in 'alerting.deadman' (expected url, interval)"},
        {ALERTING RECV "  route: {receiver: m, group_by: [a], wait: 1s}\n",
         "5:39: unknown key 'wait' in 'alerting.route' (expected receiver, group_by, "
         "group_wait, group_interval, repeat_interval, escalate, routes)"},
        {ALERTING RECV "  route:\n    receiver: m\n    routes:\n      - {matchers: {a: b}}\n",
         "8:10: unknown key 'matchers' in 'alerting.route.routes[0]' (expected receiver, "
         "match, group_by, group_wait, group_interval, repeat_interval, continue, escalate, "
         "routes)"},
        {ALERTING RECV "  route:\n    receiver: m\n    routes:\n"
                       "      - {match: {a: b}, escalate: {after: 1h, to: m, again: 2h}}\n",
         "8:54: unknown key 'again' in 'alerting.route.routes[0].escalate' (expected after, "
         "to)"},
    };
    run_bad(cases, sizeof(cases) / sizeof(cases[0]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(full_config_every_field),
        cmocka_unit_test(defaults),
        cmocka_unit_test(default_inhibit_off),
        cmocka_unit_test(secret_limits),
        cmocka_unit_test(errors_in_receivers),
        cmocka_unit_test(errors_in_secret_files),
        cmocka_unit_test(errors_in_routes),
        cmocka_unit_test(route_depth),
        cmocka_unit_test(errors_in_inhibit),
        cmocka_unit_test(errors_in_section),
        cmocka_unit_test(unknown_keys),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
