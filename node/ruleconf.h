/* ruleconf.h - the alert rules of the node configuration: the `rules:` and `default_rules:`
 * sections, and the built-in default rules.
 *
 *     rules:
 *       - name: CertExpiringSoon           # alertname: [A-Za-z_][A-Za-z0-9_]*, unique
 *         severity: warning                # info, warning (default) or critical
 *         for: 5m                          # default 0
 *         min_vantages: 1                  # 1-16, default 1
 *         per_vantage: false               # one instance per vantage (alerting/rule.h)
 *         labels: {team: web}              # at most 8; they win over the instance's labels
 *         annotations:                     # at most 8 templates (alerting/template.h)
 *           summary: "{{ $labels.target }} expires in {{ humanizeDuration $value }}"
 *         threshold: {metric: probe_ssl_earliest_cert_expiry, match: {probe: tls},
 *                     agg: last, window: 10m, until: true, op: "<", value: 14d}
 *     default_rules:
 *       disable: [HandshakeSlow]
 *
 * A rule has exactly one condition key (alerting/rule.h says what each means):
 *   threshold  metric, match, window (5m), agg (last|avg|min|max|rate), until, op, value
 *   change     metric, match, window (required), op, value, relative
 *   absent     metric, match, window (5m), lookback (1h)
 *   anomaly    metric, match, window (5m), baseline (1h), k (3), min_samples (10)
 *   all, any   a list of 1-8 mappings with one condition key each (nested at most 4 deep)
 * match maps label names to "value" (equal) or "!value" (not equal; "" is a missing label);
 * op is one of > < >= <= == !=; value is a number, or with until: true also a duration
 * ("14d", compared in seconds); windows are durations.
 *
 * The default rules (lbw_default_rules_yaml, read by the same code) come first, then the
 * configured ones in order. default_rules.disable names default rules to leave out (an
 * unknown name is an error); a configured rule may not take the name of a default rule that
 * is still on. Errors are the config's "FILE:LINE:COL: PATH: reason" with the key path
 * ("rules[2].threshold.op"); a problem in a template says at which byte of it.
 */
#ifndef LBW_RULECONF_H
#define LBW_RULECONF_H

#include <stddef.h>

#include "alerting/rule.h"

struct lbw_arena;
struct ymap;                        /* node/yamldoc.h */

struct lbw_rules {
    struct lbw_rule *rules;         /* the default rules left on, then the configured ones */
    size_t nrules;
    struct lbw_arena *arena;        /* owns the rules and everything they point to */
};

/* Reads the rules and default_rules keys of top (registering both as known keys). On
 * success fills *out (free it with lbw_rules_free) and returns 0; on error returns -1 with
 * the error recorded in top's document and *out empty. */
int lbw_ruleconf_read(struct ymap *top, struct lbw_rules *out);

/* Frees what out owns and empties it. Safe on an empty or zeroed struct. */
void lbw_rules_free(struct lbw_rules *r);

/* The built-in default rules, as a YAML document with a rules: key. */
extern const char lbw_default_rules_yaml[];

#endif
