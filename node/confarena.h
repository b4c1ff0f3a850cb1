/* confarena.h - memory for configuration sections that keep what they read: an arena of
 * blocks freed all at once, and readers that copy strings and label maps into it while
 * reporting errors through the YAML document (node/yamldoc.h). The rules (node/ruleconf) and
 * the alerting section (node/alertconf) are read this way, so what they read outlives the
 * document and goes with one free. */
#ifndef LBW_CONFARENA_H
#define LBW_CONFARENA_H

#include <stddef.h>

#include "alerting/rule.h"
#include "node/yamldoc.h"

struct lbw_arena;

/* A reader: the document errors go to, and the arena what is read goes into. */
struct lbw_confread {
    struct ydoc *d;
    struct lbw_arena **arena;
};

/* size zeroed bytes from the arena; NULL (with "out of memory" recorded) on failure. */
void *lbw_conf_alloc(struct lbw_confread *r, size_t size);
const char *lbw_conf_strdup(struct lbw_confread *r, const char *s);

/* The string under key, copied into the arena; NULL when absent or on error. */
const char *lbw_conf_str(struct lbw_confread *r, struct ymap *m, const char *key, int flags);

/* Where lbw_conf_pairs puts a mapping's pairs: matchers when match is set ("!value" negates),
 * else labels, whose values are templates (alerting/template.h, checked) when templates is
 * set. */
struct lbw_conf_pairs {
    struct lbw_label *labels;
    struct lbw_matcher *match;
    size_t max;
    int templates;
};

/* The pairs of the mapping under key: names checked as label names, values read as strings.
 * Returns how many were read (0 when absent or on error). */
size_t lbw_conf_pairs(struct lbw_confread *r, struct ymap *m, const char *key,
                      const struct lbw_conf_pairs *want);

/* A key path "BASE.NAME" or "BASE[I]" (fmt "%s.%s" or "%s[%zu]") into path, cut with "..."
 * as yamldoc's are. */
void lbw_conf_path(char path[YD_PATH_MAX], const char *fmt, const char *base, const char *name,
                   size_t index);

/* Calls ymap_fail(m, key, "WHY, got VALUE") with the value as written. */
void lbw_conf_fail_value(struct ymap *m, const char *key, const char *why);

void lbw_arena_free(struct lbw_arena *a);

#endif
