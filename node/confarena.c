/* confarena.c - configuration memory: an arena of blocks and readers copying into it. See
 * confarena.h. */
#include "node/confarena.h"

#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerting/template.h"

#define ARENA_BLOCK 16384

/* --- the arena ------------------------------------------------------------------------------- */

struct lbw_arena {
    struct lbw_arena *next;
    size_t used, cap;
    max_align_t data[];
};

void lbw_arena_free(struct lbw_arena *a)
{
    while (a) {
        struct lbw_arena *next = a->next;
        free(a);
        a = next;
    }
}

/* size zeroed bytes from the arena; NULL (with "out of memory" recorded) on failure. */
void *lbw_conf_alloc(struct lbw_confread *rc, size_t size)
{
    struct lbw_arena *a = *rc->arena;
    size = (size + alignof(max_align_t) - 1) / alignof(max_align_t) * alignof(max_align_t);
    if (!a || a->cap - a->used < size) {
        size_t cap = size > ARENA_BLOCK ? size : ARENA_BLOCK;
        a = malloc(sizeof(*a) + cap);
        if (!a) {
            ydoc_fail(rc->d, NULL, "", "out of memory");
            return NULL;
        }
        a->next = *rc->arena;
        a->used = 0;
        a->cap = cap;
        *rc->arena = a;
    }
    void *p = (char *)a->data + a->used;
    a->used += size;
    return memset(p, 0, size);
}

const char *lbw_conf_strdup(struct lbw_confread *rc, const char *s)
{
    size_t n = strlen(s) + 1;
    char *copy = lbw_conf_alloc(rc, n);
    return copy ? memcpy(copy, s, n) : NULL;
}

/* --- values ------------------------------------------------------------------------------------ */

static const char *scalar(const yaml_node_t *n) { return (const char *)n->data.scalar.value; }

/* A key path into path[YD_PATH_MAX], ending in "..." when cut (as yamldoc's are). */
void lbw_conf_path(char path[YD_PATH_MAX], const char *fmt, const char *base, const char *name,
                   size_t index)
{
    int n = name ? snprintf(path, YD_PATH_MAX, fmt, base, name)
                 : snprintf(path, YD_PATH_MAX, fmt, base, index);
    if (n >= YD_PATH_MAX)
        memcpy(path + YD_PATH_MAX - 4, "...", 4);
}

static yaml_node_t *node(struct lbw_confread *rc, yaml_node_item_t id)
{
    return yaml_document_get_node(&rc->d->doc, id);
}

/* Calls ymap_fail(m, key, "WHY, got VALUE") with the value as written. */
void lbw_conf_fail_value(struct ymap *m, const char *key, const char *why)
{
    char got[256];
    ymap_fail(m, key, "%s, got %s", why, ydoc_what(ymap_value(m, key, Y_OPTIONAL), got,
                                                   sizeof(got)));
}

/* The string under key, copied into the arena; NULL when absent or on error. */
const char *lbw_conf_str(struct lbw_confread *rc, struct ymap *m, const char *key, int flags)
{
    char *s = NULL;
    const char *copy = NULL;
    if (ymap_str(m, key, flags, &s))
        copy = lbw_conf_strdup(rc, s);
    free(s);
    return copy;
}


static int read_pair(struct lbw_confread *rc, struct ymap *pm, yaml_node_pair_t *p,
                     const struct lbw_conf_pairs *want, size_t i)
{
    yaml_node_t *k = node(rc, p->key), *v = node(rc, p->value);
    char path[YD_PATH_MAX], got[256], why[LBW_TEMPLATE_WHY_MAX];
    char *s = NULL;
    size_t at;
    if (!lbw_label_name_valid(scalar(k)) || strlen(scalar(k)) != k->data.scalar.length) {
        ydoc_fail(rc->d, k, pm->path, "bad label name %s (use letters, digits and '_')",
                  ydoc_what(k, got, sizeof(got)));
        return -1;
    }
    lbw_conf_path(path, "%s.%s", pm->path, scalar(k), 0);
    if (ydoc_str(rc->d, v, path, &s) < 0)
        return -1;
    if (want->templates && lbw_template_check(s, why, sizeof(why), &at) < 0)
        ydoc_fail(rc->d, v, path, "%s (at byte %zu of the template)", why, at);
    const char *name = lbw_conf_strdup(rc, scalar(k));
    int negate = want->match && s[0] == '!';
    const char *value = lbw_conf_strdup(rc, s + negate);
    free(s);
    if (ydoc_failed(rc->d))
        return -1;
    if (want->match)
        want->match[i] = (struct lbw_matcher){name, value, negate};
    else
        want->labels[i] = (struct lbw_label){name, value};
    return 0;
}

size_t lbw_conf_pairs(struct lbw_confread *rc, struct ymap *m, const char *key,
                      const struct lbw_conf_pairs *want)
{
    struct ymap pm;
    if (!ymap_map(m, key, Y_OPTIONAL, &pm))
        return 0;   /* pm has no known keys to close over: its keys are the data */
    yaml_node_pair_t *start = pm.node->data.mapping.pairs.start;
    size_t n = (size_t)(pm.node->data.mapping.pairs.top - start);
    if (n > want->max) {
        ymap_fail(m, key, "at most %zu entries, got %zu", want->max, n);
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        if (read_pair(rc, &pm, &start[i], want, i) < 0)
            return 0;
    return n;
}
