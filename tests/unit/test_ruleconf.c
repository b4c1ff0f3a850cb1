/* test_ruleconf.c - the rules: and default_rules: configuration sections: a full config read
 * back field by field, the built-in default rules (loaded, sound, and saying what they
 * should), disabling them, and the exact "FILE:LINE:COL: PATH: reason" of every error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerting/template.h"
#include "node/ruleconf.h"
#include "node/yamldoc.h"

#define MIN_MS 60000
#define DAY_S 86400.0

#define NDEFAULTS 16
static const char *const default_names[NDEFAULTS] = {
    "CertExpiringSoon", "CertExpiryCritical", "CertHostnameMismatch", "CertChainUntrusted",
    "TargetDown", "HandshakeSlow", "BackendServerDown", "BackendDown", "Backend5xxRatioHigh",
    "RequestsDeniedSpike", "ConnectionsNearLimit", "ProcessDown", "ProcessFileDescriptorsHigh",
    "HostCPUBusy", "HostMemoryLow", "HostFileDescriptorsHigh",
};

/* Reads text's rules as node/config.c's read_config does (then closing the top level).
 * Returns 0 with *out filled, or -1 with the error in err. */
static int read_rules(const char *text, struct lbw_rules *out, char *err, size_t errlen)
{
    struct ydoc d;
    struct ymap top;
    int rc = -1;

    if (ydoc_load_buffer(&d, "lbwatch.yaml", text, strlen(text)) == 0) {
        ymap_open(&top, &d, ydoc_root(&d), "");
        rc = lbw_ruleconf_read(&top, out);
        if (ymap_close(&top) < 0 && rc == 0) {
            lbw_rules_free(out);
            rc = -1;
        }
    }
    snprintf(err, errlen, "%s", ydoc_error(&d));
    ydoc_free(&d);
    return rc;
}

static void read_ok(const char *text, struct lbw_rules *out)
{
    char err[1024] = "";
    if (read_rules(text, out, err, sizeof(err)) != 0)
        fail_msg("unexpected error: %s", err);
}

static void expect_error(const char *text, const char *want)
{
    struct lbw_rules r = {(struct lbw_rule *)1, 1, NULL};
    char err[1024] = "";
    if (read_rules(text, &r, err, sizeof(err)) == 0)
        fail_msg("accepted, expected: %s\n--- config:\n%s", want, text);
    assert_null(r.rules);
    assert_int_equal(r.nrules, 0);
    if (strcmp(err, want) != 0)
        fail_msg("config:\n%s\n--- got:  %s\n--- want: %s", text, err, want);
}

static const struct lbw_rule *rule_named(const struct lbw_rules *rs, const char *name)
{
    for (size_t i = 0; i < rs->nrules; i++)
        if (strcmp(rs->rules[i].name, name) == 0)
            return &rs->rules[i];
    fail_msg("no rule %s", name);
    return NULL;
}

/* --- good configs ---------------------------------------------------------------------------- */

static const char full[] =
    "default_rules:\n"
    "  disable: [CertExpiringSoon, TargetDown, HandshakeSlow]\n"
    "rules:\n"
    "  - name: CertExpiringSoon\n"
    "    severity: warning\n"
    "    for: 5m\n"
    "    min_vantages: 1\n"
    "    labels: {team: web}\n"
    "    annotations:\n"
    "      summary: \"certificate of {{ $labels.target }} expires in {{ humanizeDuration $value }}\"\n"
    "    threshold: {metric: probe_ssl_earliest_cert_expiry, match: {probe: tls}, agg: last, "
    "window: 10m, until: true, op: \"<\", value: 14d}\n"
    "  - name: TargetDown\n"
    "    severity: critical\n"
    "    min_vantages: 2\n"
    "    threshold: {metric: probe_success, match: {probe: tls, target: \"!lab\"}, op: \"==\", "
    "value: 0}\n"
    "  - name: HandshakeSlow\n"
    "    anomaly: {metric: lbwatch_tls_handshake_seconds, window: 5m, baseline: 1h, k: 4}\n"
    "  - name: Combined\n"
    "    severity: info\n"
    "    all:\n"
    "      - threshold: {metric: probe_success, op: \"==\", value: 1}\n"
    "      - absent: {metric: lbwatch_tls_chain_length, window: 5m}\n"
    "      - any:\n"
    "          - change: {metric: lbwatch_tls_key_bits, window: 1h, op: \"!=\", value: 0}\n"
    "          - change: {metric: lbwatch_tls_chain_length, window: 1d, op: \">=\", value: 0.5,"
    " relative: true}\n"
    "  - name: Errors\n"
    "    per_vantage: true\n"
    "    threshold: {metric: lbwatch_probe_errors_total, agg: rate, window: 15m, op: \">\", "
    "value: 0.1}\n"
    "  - name: Gone\n"
    "    absent: {metric: probe_success, match: {target: www}, window: 2m, lookback: 6h}\n";

static void full_config(void **state)
{
    (void)state;
    struct lbw_rules rs;
    read_ok(full, &rs);
    assert_int_equal(rs.nrules, 13 + 6);
    /* the defaults left on come first, in their order, then the configured ones */
    assert_string_equal(rs.rules[0].name, "CertExpiryCritical");
    assert_string_equal(rs.rules[1].name, "CertHostnameMismatch");
    assert_string_equal(rs.rules[2].name, "CertChainUntrusted");
    assert_string_equal(rs.rules[3].name, "BackendServerDown");
    assert_string_equal(rs.rules[12].name, "HostFileDescriptorsHigh");
    assert_string_equal(rs.rules[13].name, "CertExpiringSoon");
    assert_string_equal(rs.rules[18].name, "Gone");

    const struct lbw_rule *r = &rs.rules[13];
    assert_int_equal(r->severity, LBW_SEV_WARNING);
    assert_int_equal(r->for_ms, 5 * MIN_MS);
    assert_int_equal(r->min_vantages, 1);
    assert_int_equal(r->nlabels, 1);
    assert_string_equal(r->labels[0].name, "team");
    assert_string_equal(r->labels[0].value, "web");
    assert_int_equal(r->nannotations, 1);
    assert_string_equal(r->annotations[0].name, "summary");
    assert_string_equal(r->annotations[0].value, "certificate of {{ $labels.target }} expires "
                                                 "in {{ humanizeDuration $value }}");
    const struct lbw_condition *c = &r->cond;
    assert_int_equal(c->kind, LBW_COND_THRESHOLD);
    assert_string_equal(c->metric, "probe_ssl_earliest_cert_expiry");
    assert_int_equal(c->nmatchers, 1);
    assert_string_equal(c->matchers[0].name, "probe");
    assert_string_equal(c->matchers[0].value, "tls");
    assert_false(c->matchers[0].negate);
    assert_int_equal(c->agg, LBW_AGG_LAST);
    assert_int_equal(c->window_ms, 10 * MIN_MS);
    assert_true(c->seconds_until);
    assert_int_equal(c->cmp, LBW_CMP_LT);
    assert_true(c->value == 14 * DAY_S);

    r = rule_named(&rs, "TargetDown");
    assert_int_equal(r->severity, LBW_SEV_CRITICAL);
    assert_int_equal(r->min_vantages, 2);
    assert_int_equal(r->for_ms, 0);
    assert_int_equal(r->cond.window_ms, 5 * MIN_MS); /* default */
    assert_int_equal(r->cond.agg, LBW_AGG_LAST);
    assert_int_equal(r->cond.cmp, LBW_CMP_EQ);
    assert_true(r->cond.value == 0);
    assert_int_equal(r->cond.nmatchers, 2);
    assert_string_equal(r->cond.matchers[1].name, "target");
    assert_string_equal(r->cond.matchers[1].value, "lab");
    assert_true(r->cond.matchers[1].negate);

    r = rule_named(&rs, "HandshakeSlow");
    assert_int_equal(r->severity, LBW_SEV_WARNING); /* default */
    assert_int_equal(r->min_vantages, 1);
    assert_int_equal(r->cond.kind, LBW_COND_ANOMALY);
    assert_int_equal(r->cond.window_ms, 5 * MIN_MS);
    assert_int_equal(r->cond.baseline_ms, 60 * MIN_MS);
    assert_true(r->cond.k == 4);
    assert_int_equal(r->cond.min_samples, 10);
    assert_int_equal(r->cond.nmatchers, 0);

    r = rule_named(&rs, "Combined");
    assert_int_equal(r->severity, LBW_SEV_INFO);
    assert_int_equal(r->cond.kind, LBW_COND_ALL);
    assert_int_equal(r->cond.nchildren, 3);
    assert_int_equal(r->cond.children[0]->kind, LBW_COND_THRESHOLD);
    assert_string_equal(r->cond.children[0]->metric, "probe_success");
    const struct lbw_condition *absent = r->cond.children[1];
    assert_int_equal(absent->kind, LBW_COND_ABSENT);
    assert_int_equal(absent->window_ms, 5 * MIN_MS);
    assert_int_equal(absent->lookback_ms, 60 * MIN_MS);
    const struct lbw_condition *any = r->cond.children[2];
    assert_int_equal(any->kind, LBW_COND_ANY);
    assert_int_equal(any->nchildren, 2);
    assert_int_equal(any->children[0]->kind, LBW_COND_CHANGE);
    assert_int_equal(any->children[0]->window_ms, 60 * MIN_MS);
    assert_int_equal(any->children[0]->cmp, LBW_CMP_NE);
    assert_false(any->children[0]->relative);
    assert_true(any->children[1]->relative);
    assert_true(any->children[1]->value == 0.5);
    assert_int_equal(any->children[1]->cmp, LBW_CMP_GE);

    assert_false(r->per_vantage);
    r = rule_named(&rs, "Errors");
    assert_true(r->per_vantage);
    assert_int_equal(r->cond.agg, LBW_AGG_RATE);
    assert_true(r->cond.value == 0.1);
    r = rule_named(&rs, "Gone");
    assert_int_equal(r->cond.lookback_ms, 6 * 60 * MIN_MS);
    assert_int_equal(r->cond.window_ms, 2 * MIN_MS);

    char why[256];
    for (size_t i = 0; i < rs.nrules; i++)
        assert_int_equal(lbw_rule_check(&rs.rules[i], why, sizeof(why)), 0);
    lbw_rules_free(&rs);
    assert_null(rs.rules);
    lbw_rules_free(&rs); /* freeing an empty one is harmless */
}

static void no_sections_gives_the_defaults(void **state)
{
    (void)state;
    struct lbw_rules rs;
    read_ok("{}\n", &rs);
    assert_int_equal(rs.nrules, NDEFAULTS);
    lbw_rules_free(&rs);
}

/* --- the default rules --------------------------------------------------------------------- */

static void default_rules(void **state)
{
    (void)state;
    struct lbw_rules rs;
    static const char *const names[] = {"CertExpiringSoon", "CertExpiryCritical",
                                        "CertHostnameMismatch", "CertChainUntrusted",
                                        "TargetDown", "HandshakeSlow"};
    read_ok("default_rules: {}\n", &rs);
    assert_int_equal(rs.nrules, NDEFAULTS);
    for (size_t i = 0; i < NDEFAULTS; i++) {
        assert_string_equal(rs.rules[i].name, default_names[i]);
        assert_int_equal(rs.rules[i].nannotations, 2);
    }
    for (size_t i = 0; i < 6; i++) {   /* the certificate and TLS rules */
        const struct lbw_rule *r = &rs.rules[i];
        assert_string_equal(r->name, names[i]);
        assert_int_equal(r->nannotations, 2);
        assert_string_equal(r->annotations[0].name, "summary");
        assert_string_equal(r->annotations[1].name, "description");
        assert_int_equal(r->cond.kind, LBW_COND_THRESHOLD);
        assert_int_equal(r->cond.nmatchers, 1);
        assert_string_equal(r->cond.matchers[0].name, "probe");
        assert_string_equal(r->cond.matchers[0].value, "tls");
    }

    const struct lbw_rule *r = rule_named(&rs, "CertExpiringSoon");
    assert_int_equal(r->severity, LBW_SEV_WARNING);
    assert_string_equal(r->cond.metric, "probe_ssl_earliest_cert_expiry");
    assert_true(r->cond.seconds_until && r->cond.cmp == LBW_CMP_LT && r->cond.value == 14 * DAY_S);
    r = rule_named(&rs, "CertExpiryCritical");
    assert_int_equal(r->severity, LBW_SEV_CRITICAL);
    assert_true(r->cond.seconds_until && r->cond.cmp == LBW_CMP_LT && r->cond.value == 3 * DAY_S);
    r = rule_named(&rs, "CertHostnameMismatch");
    assert_int_equal(r->severity, LBW_SEV_WARNING);
    assert_string_equal(r->cond.metric, "lbwatch_tls_hostname_match");
    assert_true(r->cond.cmp == LBW_CMP_EQ && r->cond.value == 0);
    r = rule_named(&rs, "CertChainUntrusted");
    assert_int_equal(r->severity, LBW_SEV_CRITICAL);
    assert_string_equal(r->cond.metric, "lbwatch_tls_chain_verified");
    assert_true(r->cond.cmp == LBW_CMP_EQ && r->cond.value == 0);
    r = rule_named(&rs, "TargetDown");
    assert_int_equal(r->severity, LBW_SEV_CRITICAL);
    assert_string_equal(r->cond.metric, "probe_success");
    assert_int_equal(r->min_vantages, 2);
    assert_int_equal(r->for_ms, 30000);
    assert_true(r->cond.cmp == LBW_CMP_EQ && r->cond.value == 0);
    r = rule_named(&rs, "HandshakeSlow");
    assert_int_equal(r->severity, LBW_SEV_WARNING);
    assert_string_equal(r->cond.metric, "lbwatch_tls_handshake_seconds");
    assert_int_equal(r->cond.agg, LBW_AGG_AVG);
    assert_int_equal(r->cond.window_ms, 5 * MIN_MS);
    assert_int_equal(r->for_ms, 5 * MIN_MS);
    assert_true(r->cond.cmp == LBW_CMP_GT && r->cond.value == 1);

    /* the summaries read well for an instance */
    static const char labels[] = "ALERTS{alertname=\"X\",probe=\"tls\",severity=\"warning\","
                                 "target=\"www\"}";
    struct lbw_key_parsed k;
    char text[512];
    assert_int_equal(lbw_key_parse(labels, strlen(labels), &k), 0);
    lbw_template_render(rule_named(&rs, "CertExpiringSoon")->annotations[0].value, &k,
                        10 * DAY_S + 7200, text, sizeof(text));
    assert_string_equal(text, "Certificate of www expires in 10d 2h");
    lbw_template_render(rule_named(&rs, "HandshakeSlow")->annotations[0].value, &k, 1.234, text,
                        sizeof(text));
    assert_string_equal(text, "TLS handshakes with www take 1.23 s");
    lbw_template_render(rule_named(&rs, "TargetDown")->annotations[0].value, &k, 0, text,
                        sizeof(text));
    assert_string_equal(text, "www is down");
    lbw_rules_free(&rs);
}

static void disable_default_rules(void **state)
{
    (void)state;
    struct lbw_rules rs;
    read_ok("default_rules:\n  disable: [HandshakeSlow, CertHostnameMismatch, HandshakeSlow]\n",
            &rs);
    assert_int_equal(rs.nrules, NDEFAULTS - 2);
    assert_string_equal(rs.rules[0].name, "CertExpiringSoon");
    assert_string_equal(rs.rules[1].name, "CertExpiryCritical");
    assert_string_equal(rs.rules[2].name, "CertChainUntrusted");
    assert_string_equal(rs.rules[3].name, "TargetDown");
    assert_string_equal(rs.rules[4].name, "BackendServerDown");
    lbw_rules_free(&rs);

    read_ok("default_rules:\n  disable: [CertExpiringSoon, CertExpiryCritical, "
            "CertHostnameMismatch, CertChainUntrusted, TargetDown, HandshakeSlow, "
            "BackendServerDown, BackendDown, Backend5xxRatioHigh, RequestsDeniedSpike, "
            "ConnectionsNearLimit, ProcessDown, ProcessFileDescriptorsHigh, HostCPUBusy, "
            "HostMemoryLow, HostFileDescriptorsHigh]\n", &rs);
    assert_int_equal(rs.nrules, 0);
    lbw_rules_free(&rs);
}

/* --- errors ---------------------------------------------------------------------------------- */

#define R0 "rules:\n  - name: A\n"
#define THR "    threshold: {metric: m, op: \">\", value: 1"

static void errors_in_default_rules(void **state)
{
    (void)state;
    expect_error("default_rules:\n  disable: [TargetDown, Nope]\n",
                 "lbwatch.yaml:2:25: default_rules.disable[1]: unknown default rule \"Nope\" (the "
                 "default rules are CertExpiringSoon, CertExpiryCritical, CertHostnameMismatch, "
                 "CertChainUntrusted, TargetDown, HandshakeSlow, BackendServerDown, BackendDown, "
                 "Backend5xxRatioHigh, RequestsDeniedSpike, ConnectionsNearLimit, ProcessDown, "
                 "ProcessFileDescriptorsHigh, HostCPUBusy, HostMemoryLow, "
                 "HostFileDescriptorsHigh)");
    expect_error("default_rules:\n  disable: TargetDown\n",
                 "lbwatch.yaml:2:12: default_rules.disable: expected a sequence, got \"TargetDown\"");
    expect_error("default_rules:\n  enable: [TargetDown]\n",
                 "lbwatch.yaml:2:3: unknown key 'enable' in 'default_rules' (expected disable)");
    expect_error("rules:\n  - name: TargetDown\n" THR "}\n",
                 "lbwatch.yaml:2:11: rules[0].name: \"TargetDown\" is a default rule: list it in "
                 "default_rules.disable to replace it");
}

static void errors_in_rules(void **state)
{
    (void)state;
    expect_error("rules: {name: A}\n",
                 "lbwatch.yaml:1:8: rules: expected a sequence, got a mapping");
    expect_error("rules:\n  - A\n", "lbwatch.yaml:2:5: rules[0]: expected a mapping, got \"A\"");
    expect_error("rules:\n  - severity: info\n" THR "}\n",
                 "lbwatch.yaml:2:5: missing required key 'name' in 'rules[0]'");
    expect_error("rules:\n  - name: 9lives\n" THR "}\n",
                 "lbwatch.yaml:2:11: rules[0].name: must be letters, digits and '_', not starting "
                 "with a digit, got \"9lives\"");
    expect_error(R0 THR "}\n  - name: B\n" THR "}\n  - name: A\n" THR "}\n",
                 "lbwatch.yaml:6:11: rules[2].name: duplicate rule name \"A\" (first at line 2)");
    expect_error(R0 "    severity: page\n" THR "}\n",
                 "lbwatch.yaml:3:15: rules[0].severity: unknown value \"page\" (use info, warning "
                 "or critical)");
    expect_error(R0 "    min_vantages: 0\n" THR "}\n",
                 "lbwatch.yaml:3:19: rules[0].min_vantages: must be between 1 and 16, got 0");
    expect_error(R0 "    min_vantages: 17\n" THR "}\n",
                 "lbwatch.yaml:3:19: rules[0].min_vantages: must be between 1 and 16, got 17");
    expect_error(R0 "    per_vantage: true\n    min_vantages: 2\n" THR "}\n",
                 "lbwatch.yaml:2:5: rules[0]: min_vantages: must be 1 with per_vantage (each "
                 "vantage is its own instance)");
    expect_error(R0 "    per_vantage: yes please\n" THR "}\n",
                 "lbwatch.yaml:3:18: rules[0].per_vantage: expected true or false, got \"yes "
                 "please\"");
    expect_error(R0 "    for: soon\n" THR "}\n",
                 "lbwatch.yaml:3:10: rules[0].for: bad duration \"soon\" (use e.g. 500ms, 10s, "
                 "5m, 1h)");
    expect_error(R0 "    summary: x\n" THR "}\n",
                 "lbwatch.yaml:3:5: unknown key 'summary' in 'rules[0]' (expected name, severity, "
                 "for, min_vantages, per_vantage, labels, annotations, threshold, change, absent, anomaly, all, "
                 "any)");
    expect_error(R0 "    severity: info\n",
                 "lbwatch.yaml:2:5: rules[0]: needs a condition: threshold, change, absent, "
                 "anomaly, all or any");
    expect_error(R0 THR "}\n    absent: {metric: m}\n",
                 "lbwatch.yaml:4:13: rules[0].absent: one condition only: combine threshold and "
                 "absent under all: or any:");
}

static void errors_in_labels_and_annotations(void **state)
{
    (void)state;
    expect_error(R0 "    labels: {team-name: web}\n" THR "}\n",
                 "lbwatch.yaml:3:14: rules[0].labels: bad label name \"team-name\" (use letters, "
                 "digits and '_')");
    expect_error(R0 "    labels: {team: [a]}\n" THR "}\n",
                 "lbwatch.yaml:3:20: rules[0].labels.team: expected a string, got a sequence");
    expect_error(R0 "    labels: [team]\n" THR "}\n",
                 "lbwatch.yaml:3:13: rules[0].labels: expected a mapping, got a sequence");
    expect_error(R0 "    labels: {a: 1, b: 1, c: 1, d: 1, e: 1, f: 1, g: 1, h: 1, i: 1}\n" THR "}\n",
                 "lbwatch.yaml:3:13: rules[0].labels: at most 8 entries, got 9");
    expect_error(R0 "    labels: {a: 1, a: 2}\n" THR "}\n",
                 "lbwatch.yaml:3:20: duplicate key 'a' in 'rules[0].labels' (first at line 3)");
    expect_error(R0 "    annotations:\n      summary: \"{{ $labels.target }} in {{ humanize "
                 "$labels.x }}\"\n" THR "}\n",
                 "lbwatch.yaml:4:16: rules[0].annotations.summary: humanize takes $value (at byte "
                 "36 of the template)");
    expect_error(R0 "    annotations:\n      summary: \"{{ $value\"\n" THR "}\n",
                 "lbwatch.yaml:4:16: rules[0].annotations.summary: unclosed action: missing }} "
                 "(at byte 0 of the template)");
}

static void errors_in_conditions(void **state)
{
    (void)state;
    expect_error(R0 "    threshold: {op: \">\", value: 1}\n",
                 "lbwatch.yaml:3:16: missing required key 'metric' in 'rules[0].threshold'");
    expect_error(R0 "    threshold: {metric: probe-success, op: \">\", value: 1}\n",
                 "lbwatch.yaml:3:25: rules[0].threshold.metric: must be a metric name "
                 "([a-zA-Z_:][a-zA-Z0-9_:]*), got \"probe-success\"");
    expect_error(R0 "    threshold: {metric: m, value: 1}\n",
                 "lbwatch.yaml:3:16: missing required key 'op' in 'rules[0].threshold'");
    expect_error(R0 "    threshold: {metric: m, op: \"=>\", value: 1}\n",
                 "lbwatch.yaml:3:32: rules[0].threshold.op: unknown value \"=>\" (use >, <, >=, "
                 "<=, == or !=)");
    expect_error(R0 "    threshold: {metric: m, op: \">\", value: lots}\n",
                 "lbwatch.yaml:3:44: rules[0].threshold.value: expected a number (durations need "
                 "until: true), got \"lots\"");
    expect_error(R0 "    threshold: {metric: m, op: \">\", value: 14d}\n",
                 "lbwatch.yaml:3:44: rules[0].threshold.value: expected a number (durations need "
                 "until: true), got \"14d\"");
    expect_error(R0 "    threshold: {metric: m, until: true, op: \">\", value: 14x}\n",
                 "lbwatch.yaml:3:57: rules[0].threshold.value: expected a number or a duration "
                 "(e.g. 14d), got \"14x\"");
    expect_error(R0 "    threshold: {metric: m, op: \">\", value: .nan}\n",
                 "lbwatch.yaml:3:44: rules[0].threshold.value: expected a number (durations need "
                 "until: true), got \".nan\"");
    expect_error(R0 THR ", window: 0s}\n",
                 "lbwatch.yaml:3:55: rules[0].threshold.window: must be at least 1ms, got 0s");
    expect_error(R0 THR ", agg: median}\n",
                 "lbwatch.yaml:3:52: rules[0].threshold.agg: unknown value \"median\" (use last, "
                 "avg, min, max or rate)");
    expect_error(R0 THR ", agg: rate, until: true}\n",
                 "lbwatch.yaml:3:65: rules[0].threshold.until: compares a time: use agg last, avg, "
                 "min or max, not rate");
    expect_error(R0 THR ", relative: true}\n",
                 "lbwatch.yaml:3:47: unknown key 'relative' in 'rules[0].threshold' (expected "
                 "metric, match, window, agg, until, op, value)");
    expect_error(R0 "    threshold: [m]\n",
                 "lbwatch.yaml:3:16: rules[0].threshold: expected a mapping, got a sequence");
}

static void errors_in_matchers(void **state)
{
    (void)state;
    expect_error(R0 THR ", match: {probe-kind: tls}}\n",
                 "lbwatch.yaml:3:55: rules[0].threshold.match: bad label name \"probe-kind\" (use "
                 "letters, digits and '_')");
    expect_error(R0 THR ", match: {probe: }}\n",
                 "lbwatch.yaml:3:62: rules[0].threshold.match.probe: expected a string, got an "
                 "empty value");
    expect_error(R0 THR ", match: {a: 1, b: 1, c: 1, d: 1, e: 1, f: 1, g: 1, h: 1, i: 1}}\n",
                 "lbwatch.yaml:3:54: rules[0].threshold.match: at most 8 entries, got 9");
}

static void errors_in_other_conditions(void **state)
{
    (void)state;
    expect_error(R0 "    change: {metric: m, op: \">\", value: 1}\n",
                 "lbwatch.yaml:3:13: missing required key 'window' in 'rules[0].change'");
    expect_error(R0 "    absent: {metric: m, window: 1h}\n",
                 "lbwatch.yaml:3:33: rules[0].absent.window: must be shorter than lookback (1h by "
                 "default), got 1h");
    expect_error(R0 "    absent: {metric: m, window: 10m, lookback: 5m}\n",
                 "lbwatch.yaml:3:48: rules[0].absent.lookback: must be longer than window (10m), "
                 "got 5m");
    expect_error(R0 "    anomaly: {metric: m, k: 0}\n",
                 "lbwatch.yaml:3:29: rules[0].anomaly.k: must be a positive number of standard "
                 "deviations, got \"0\"");
    expect_error(R0 "    anomaly: {metric: m, min_samples: 1}\n",
                 "lbwatch.yaml:3:39: rules[0].anomaly.min_samples: must be between 2 and 1000000, "
                 "got 1");
    expect_error(R0 "    anomaly: {metric: m, baseline: 10ms}\n",
                 "lbwatch.yaml:3:36: rules[0].anomaly.baseline: must be at least 1s, got 10ms");
}

static void errors_in_all_and_any(void **state)
{
    (void)state;
    expect_error(R0 "    all: []\n",
                 "lbwatch.yaml:3:10: rules[0].all: must list 1 to 8 conditions");
    expect_error(R0 "    any: {threshold: {metric: m}}\n",
                 "lbwatch.yaml:3:10: rules[0].any: expected a sequence, got a mapping");
    expect_error(R0 "    all:\n      - name: B\n" "    " THR "}\n",
                 "lbwatch.yaml:4:9: unknown key 'name' in 'rules[0].all[0]' (expected threshold, "
                 "change, absent, anomaly, all, any)");
    expect_error(R0 "    all:\n      - {}\n",
                 "lbwatch.yaml:4:9: rules[0].all[0]: needs a condition: threshold, change, absent, "
                 "anomaly, all or any");
    expect_error(R0 "    all:\n      - threshold: {metric: m, op: \">\", value: 1}\n"
                 "      - absent: {metric: m, window: x}\n",
                 "lbwatch.yaml:5:37: rules[0].all[1].absent.window: bad duration \"x\" (use e.g. "
                 "500ms, 10s, 5m, 1h)");
    expect_error(R0 "    all:\n"
                 "      - any:\n"
                 "          - all:\n"
                 "              - any:\n"
                 "                  - all:\n"
                 "                      - absent: {metric: m}\n",
                 "lbwatch.yaml:8:23: rules[0].all[0].any[0].all[0].any[0].all: all and any nest "
                 "at most 4 levels deep");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(full_config),
        cmocka_unit_test(no_sections_gives_the_defaults),
        cmocka_unit_test(default_rules),
        cmocka_unit_test(disable_default_rules),
        cmocka_unit_test(errors_in_default_rules),
        cmocka_unit_test(errors_in_rules),
        cmocka_unit_test(errors_in_labels_and_annotations),
        cmocka_unit_test(errors_in_conditions),
        cmocka_unit_test(errors_in_matchers),
        cmocka_unit_test(errors_in_other_conditions),
        cmocka_unit_test(errors_in_all_and_any),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
