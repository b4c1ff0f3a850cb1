/* view.c - current series grouped by target, vantage and probe. See view.h. */
#include "node/view.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "probes/sample.h"

struct entry {                  /* one series while building */
    struct lbw_view_series s;
    size_t label_off[3];        /* target, vantage, probe values in the strings arena */
};

struct builder {
    struct entry *e;
    size_t n, cap;
    char *strings;
    size_t slen, scap;
    int failed;
};

static size_t intern(struct builder *b, const char *s)
{
    size_t len = strlen(s) + 1;
    if (b->slen + len > b->scap) {
        size_t cap = b->scap ? b->scap * 2 : 4096;
        while (cap < b->slen + len)
            cap *= 2;
        char *p = realloc(b->strings, cap);
        if (!p) {
            b->failed = 1;
            return 0;
        }
        b->strings = p;
        b->scap = cap;
    }
    memcpy(b->strings + b->slen, s, len);
    b->slen += len;
    return b->slen - len;
}

static int collect(void *arg, const struct lbw_series_info *si)
{
    struct builder *b = arg;
    struct lbw_key_parsed k;
    if (si->last_ts == 0 || lbw_key_parse(si->key, si->keylen, &k) != 0)
        return 0;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        struct entry *p = realloc(b->e, cap * sizeof(*p));
        if (!p) {
            b->failed = 1;
            return 1;
        }
        b->e = p;
        b->cap = cap;
    }
    struct entry *e = &b->e[b->n];
    e->s.key = strndup(si->key, si->keylen);
    if (!e->s.key) {
        b->failed = 1;
        return 1;
    }
    e->s.metric_len = strlen(k.metric);
    e->s.ts_ms = si->last_ts;
    e->s.value = si->last_value;
    const char *names[3] = {"target", "vantage", "probe"};
    for (int i = 0; i < 3; i++) {
        const char *val = lbw_key_label(&k, names[i]);
        e->label_off[i] = intern(b, val ? val : "");
    }
    b->n++;
    return b->failed;
}

static int cmp_entry(const void *a, const void *b, void *strings)
{
    const struct entry *x = a, *y = b;
    const char *strs = strings;
    for (int i = 0; i < 3; i++) {
        int c = strcmp(strs + x->label_off[i], strs + y->label_off[i]);
        if (c)
            return c;
    }
    return strcmp(x->s.key, y->s.key);
}

static int same_group(const char *strs, const struct entry *x, const struct entry *y)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(strs + x->label_off[i], strs + y->label_off[i]) != 0)
            return 0;
    return 1;
}

/* Moves the current series of each run of equal (target, vantage, probe) into v. */
static int make_groups(struct lbw_view *v, struct builder *b)
{
    v->cur = calloc(b->n ? b->n : 1, sizeof(*v->cur));
    v->groups = calloc(b->n ? b->n : 1, sizeof(*v->groups));
    if (!v->cur || !v->groups)
        return -1;
    for (size_t i = 0; i < b->n;) {
        size_t j = i;
        int64_t latest = 0;
        while (j < b->n && same_group(b->strings, &b->e[i], &b->e[j])) {
            if (b->e[j].s.ts_ms > latest)
                latest = b->e[j].s.ts_ms;
            j++;
        }
        struct lbw_view_group *g = &v->groups[v->ngroups++];
        g->target = b->strings + b->e[i].label_off[0];
        g->vantage = b->strings + b->e[i].label_off[1];
        g->probe = b->strings + b->e[i].label_off[2];
        g->ts_ms = latest;
        g->first = v->ncur;
        for (size_t k = i; k < j; k++) {
            if (b->e[k].s.ts_ms == latest) {
                v->cur[v->ncur++] = b->e[k].s;
            } else {
                free(b->e[k].s.key);
            }
            b->e[k].s.key = NULL;
        }
        g->n = v->ncur - g->first;
        i = j;
    }
    return 0;
}

int lbw_view_build(struct lbw_view *v, struct lbw_store *s, const char *prefix)
{
    struct builder b = {0};
    memset(v, 0, sizeof(*v));
    intern(&b, "");
    if (lbw_store_foreach_series(s, prefix, collect, &b) != 0 || b.failed)
        goto fail;
    if (b.n > 1)
        qsort_r(b.e, b.n, sizeof(*b.e), cmp_entry, b.strings);
    v->strings = b.strings;
    v->nall = b.n;
    if (make_groups(v, &b) != 0)
        goto fail;
    free(b.e);
    return 0;
fail:
    for (size_t i = 0; i < b.n; i++)
        free(b.e[i].s.key);
    free(b.e);
    if (v->strings != b.strings)
        free(b.strings);
    lbw_view_free(v);
    return -1;
}

void lbw_view_free(struct lbw_view *v)
{
    for (size_t i = 0; i < v->ncur; i++)
        free(v->cur[i].key);
    free(v->cur);
    free(v->groups);
    free(v->strings);
    memset(v, 0, sizeof(*v));
}

const struct lbw_view_series *lbw_view_find(const struct lbw_view *v,
                                            const struct lbw_view_group *g, const char *metric)
{
    size_t mlen = strlen(metric);
    for (size_t i = g->first; i < g->first + g->n; i++) {
        const struct lbw_view_series *s = &v->cur[i];
        if (s->metric_len == mlen && memcmp(s->key, metric, mlen) == 0)
            return s;
    }
    return NULL;
}

int lbw_view_value(const struct lbw_view *v, const struct lbw_view_group *g, const char *metric,
                   double *out)
{
    const struct lbw_view_series *s = lbw_view_find(v, g, metric);
    if (!s)
        return 0;
    *out = s->value;
    return 1;
}

const char *lbw_view_label(const struct lbw_view *v, const struct lbw_view_group *g,
                           const char *metric, const char *label, char *buf, size_t buflen)
{
    struct lbw_key_parsed k;
    const struct lbw_view_series *s = lbw_view_find(v, g, metric);
    if (!s || buflen == 0 || lbw_key_parse(s->key, strlen(s->key), &k) != 0)
        return NULL;
    const char *val = lbw_key_label(&k, label);
    if (!val)
        return NULL;
    size_t n = strlen(val);
    if (n >= buflen)
        n = buflen - 1;
    memcpy(buf, val, n);
    buf[n] = '\0';
    return buf;
}

size_t lbw_view_target_groups(const struct lbw_view *v, const char *target, size_t *first)
{
    size_t lo = 0, hi = v->ngroups;
    while (lo < hi) { /* lower bound */
        size_t mid = (lo + hi) / 2;
        if (strcmp(v->groups[mid].target, target) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t n = 0;
    while (lo + n < v->ngroups && strcmp(v->groups[lo + n].target, target) == 0)
        n++;
    *first = lo;
    return n;
}

static int cmp_idx(const void *a, const void *b, void *view)
{
    const size_t *x = a, *y = b;
    const struct lbw_view *v = view;
    return strcmp(v->cur[*x].key, v->cur[*y].key);
}

void lbw_view_sorted(const struct lbw_view *v, size_t *idx)
{
    for (size_t i = 0; i < v->ncur; i++)
        idx[i] = i;
    if (v->ncur > 1)
        qsort_r(idx, v->ncur, sizeof(*idx), cmp_idx, (void *)v);
}

int lbw_view_increase(struct lbw_store *st, const char *key, int64_t from, double *inc,
                      double *seconds)
{
    struct lbw_point *p = malloc(LBW_VIEW_RATE_POINTS * sizeof(*p));
    long n = p ? lbw_store_recent(st, key, strlen(key), from, p, LBW_VIEW_RATE_POINTS) : -1;
    double sum = 0;
    for (long i = 1; i < n; i++)
        sum += p[i].value >= p[i - 1].value ? p[i].value - p[i - 1].value : p[i].value;
    int ok = n >= 2 && p[n - 1].ts_ms > p[0].ts_ms && !isnan(sum);
    if (ok) {
        *inc = sum;
        *seconds = (double)(p[n - 1].ts_ms - p[0].ts_ms) / 1000;
    }
    free(p);
    return ok;
}

int lbw_view_rate(struct lbw_store *st, const char *key, int64_t from, double *out)
{
    double inc, seconds;
    if (!lbw_view_increase(st, key, from, &inc, &seconds))
        return 0;
    *out = inc / seconds;
    return 1;
}

int lbw_view_latest(struct lbw_store *st, const char *key, int64_t since, double *out)
{
    int64_t ts;
    double v;
    if (lbw_store_last(st, key, strlen(key), &ts, &v) != 1 || ts < since)
        return 0;
    *out = v;
    return 1;
}
