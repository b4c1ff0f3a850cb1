/* rule.c - evaluation of alert rules over stored samples into instances. See rule.h.
 *
 * Owns the conditions' arithmetic (aggregates, Prometheus' rate, change, absence, the EWMA
 * anomaly test), the grouping of series into instances and vantages, the all/any join,
 * instance labels and fingerprints, and lbw_rule_check.
 *
 * Evaluation works in *cells*: one per (instance labels, vantage) saying whether the
 * condition holds there and its value. A leaf condition makes one cell per series straight
 * from the source's callback, folding the series' samples as they are handed over (nothing is
 * allocated per sample); all/any join their children's cells on shared labels; the rule then
 * sorts the cells by labels and vantage and turns each run of equal labels into an instance.
 * Cells keep their strings in one growing pool, so a rule over thousands of series makes a
 * handful of allocations.
 */
#include "alerting/rule.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerting/template.h"

/* --- names, matchers, fingerprints ------------------------------------------------------------ */

static const char *const severity_names[] = {"info", "warning", "critical"};

const char *lbw_severity_name(enum lbw_severity s)
{
    return (unsigned)s < 3 ? severity_names[s] : "unknown";
}

int lbw_severity_parse(const char *s, enum lbw_severity *out)
{
    for (unsigned i = 0; i < 3; i++) {
        if (strcmp(s, severity_names[i]) == 0) {
            *out = (enum lbw_severity)i;
            return 0;
        }
    }
    return -1;
}

int lbw_matchers_match(const struct lbw_matcher *m, size_t n, const struct lbw_key_parsed *k)
{
    for (size_t i = 0; i < n; i++) {
        const char *v = lbw_key_label(k, m[i].name);
        int equal = strcmp(v ? v : "", m[i].value) == 0;
        if (equal == m[i].negate)
            return 0;
    }
    return 1;
}

uint64_t lbw_fingerprint(const char *s, size_t len)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* --- cells ------------------------------------------------------------------------------------ */

struct cell {
    size_t labels;              /* pool offset: canonical key "I{...}" of the instance labels */
    size_t vantage;             /* pool offset */
    double value;
    unsigned char holds;
    unsigned char anyv;         /* stands for every vantage (absent over no series) */
};

struct cells {
    struct cell *v;
    size_t n, cap;
    char *pool;
    size_t used, size;
};

static void cells_free(struct cells *cs)
{
    free(cs->v);
    free(cs->pool);
    memset(cs, 0, sizeof(*cs));
}

static const char *str_at(const struct cells *cs, size_t off) { return cs->pool + off; }

static int pool_add(struct cells *cs, const char *s, size_t *off)
{
    size_t n = strlen(s) + 1;
    if (cs->used + n > cs->size) {
        size_t size = cs->size ? cs->size : 4096;
        while (size < cs->used + n)
            size *= 2;
        char *p = realloc(cs->pool, size);
        if (!p)
            return -1;
        cs->pool = p;
        cs->size = size;
    }
    memcpy(cs->pool + cs->used, s, n);
    *off = cs->used;
    cs->used += n;
    return 0;
}

static int cells_add(struct cells *cs, const char *labels, const char *vantage, double value,
                     int holds, int anyv)
{
    struct cell c = {0, 0, value, (unsigned char)(holds != 0), (unsigned char)(anyv != 0)};
    if (cs->n == cs->cap) {
        size_t cap = cs->cap ? cs->cap * 2 : 64;
        struct cell *v = realloc(cs->v, cap * sizeof(*v));
        if (!v)
            return -1;
        cs->v = v;
        cs->cap = cap;
    }
    if (pool_add(cs, labels, &c.labels) < 0 || pool_add(cs, vantage, &c.vantage) < 0)
        return -1;
    cs->v[cs->n++] = c;
    return 0;
}

/* The instance labels of a cell taken apart (they were built canonical, so this holds). */
static int cell_parse(const struct cells *cs, const struct cell *c, struct lbw_key_parsed *k)
{
    const char *s = str_at(cs, c->labels);
    return lbw_key_parse(s, strlen(s), k);
}

/* --- the conditions' arithmetic ---------------------------------------------------------------- */

/* a - b, at least 0 (the store has no samples before the epoch) and without overflow. */
static int64_t before(int64_t a, int64_t b)
{
    b = b < 0 ? 0 : b;
    return a > b ? a - b : 0;
}

static int in_range(const struct lbw_rule_point *p, int64_t lo, int64_t hi)
{
    return p->ts_ms > lo && p->ts_ms <= hi && !isnan(p->value);
}

/* The newest usable sample in (lo, hi]: returns its index + 1, or 0. */
static size_t newest(const struct lbw_rule_point *pts, size_t n, int64_t lo, int64_t hi)
{
    for (size_t i = n; i > 0; i--)
        if (in_range(&pts[i - 1], lo, hi))
            return i;
    return 0;
}

/* avg, min or max of the samples in (lo, hi]; 0 if there is none. */
static int fold(enum lbw_agg agg, const struct lbw_rule_point *pts, size_t n, int64_t lo,
                int64_t hi, double *out)
{
    double sum = 0, min = INFINITY, max = -INFINITY;
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        if (!in_range(&pts[i], lo, hi))
            continue;
        double v = pts[i].value;
        sum += v;
        min = v < min ? v : min;
        max = v > max ? v : max;
        count++;
    }
    if (count == 0)
        return 0;
    *out = agg == LBW_AGG_AVG ? sum / (double)count : agg == LBW_AGG_MIN ? min : max;
    return 1;
}

/* Prometheus' rate() of a counter over (lo, hi]: the increase between the first and last
 * sample, adding back the value before each reset, extrapolated towards the window's edges
 * (by at most half a sample interval past where the samples end, and never below zero) and
 * divided by the window. 0 if there are fewer than two samples. */
static int counter_rate(const struct lbw_rule_point *pts, size_t n, int64_t lo, int64_t hi,
                        double *out)
{
    double first = 0, prev = 0, resets = 0;
    int64_t t0 = 0, t1 = 0;
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        if (!in_range(&pts[i], lo, hi))
            continue;
        if (count == 0) {
            first = pts[i].value;
            t0 = pts[i].ts_ms;
        } else if (pts[i].value < prev) {
            resets += prev;
        }
        prev = pts[i].value;
        t1 = pts[i].ts_ms;
        count++;
    }
    if (count < 2 || t1 <= t0)
        return 0;
    double increase = prev - first + resets;
    double sampled = (double)(t1 - t0) / 1000, range = (double)(hi - lo) / 1000;
    double to_start = (double)(t0 - lo) / 1000, to_end = (double)(hi - t1) / 1000;
    double interval = sampled / (double)(count - 1);
    if (to_start >= interval * 1.1)
        to_start = interval / 2;
    if (increase > 0 && first >= 0 && sampled * (first / increase) < to_start)
        to_start = sampled * (first / increase);   /* a counter does not extrapolate below 0 */
    if (to_end >= interval * 1.1)
        to_end = interval / 2;
    *out = increase * ((sampled + to_start + to_end) / sampled) / range;
    return 1;
}

static int threshold_value(const struct lbw_condition *c, int64_t now,
                           const struct lbw_rule_point *pts, size_t n, double *v)
{
    int64_t lo = before(now, c->window_ms);
    size_t last;
    switch (c->agg) {
    case LBW_AGG_LAST:
        if (!(last = newest(pts, n, lo, now)))
            return 0;
        *v = pts[last - 1].value;
        break;
    case LBW_AGG_RATE:
        if (!counter_rate(pts, n, lo, now, v))
            return 0;
        break;
    default:
        if (!fold(c->agg, pts, n, lo, now, v))
            return 0;
    }
    if (c->seconds_until)
        *v -= (double)now / 1000;
    return 1;
}

static int change_value(const struct lbw_condition *c, int64_t now,
                        const struct lbw_rule_point *pts, size_t n, double *v)
{
    int64_t mid = before(now, c->window_ms);
    size_t cur = newest(pts, n, mid, now), then = newest(pts, n, before(mid, c->window_ms), mid);
    if (!cur || !then)
        return 0;
    double was = pts[then - 1].value, d = pts[cur - 1].value - was;
    if (!c->relative)
        *v = d;
    else if (was != 0)
        *v = d / fabs(was);
    else
        *v = d == 0 ? 0 : copysign(INFINITY, d);
    return 1;
}

static int64_t lookback_of(const struct lbw_condition *c)
{
    return c->lookback_ms ? c->lookback_ms : LBW_RULE_LOOKBACK_MS;
}

/* Seconds since the newest sample within the lookback; *holds when that is before the
 * window. */
static int absent_value(const struct lbw_condition *c, int64_t now,
                        const struct lbw_rule_point *pts, size_t n, double *v, int *holds)
{
    size_t last = newest(pts, n, before(now, lookback_of(c)), now);
    if (!last)
        return 0;
    *v = (double)(now - pts[last - 1].ts_ms) / 1000;
    *holds = pts[last - 1].ts_ms <= before(now, c->window_ms);
    return 1;
}

/* Exponentially weighted mean and variance of the baseline samples in (lo, hi], each weighted
 * by 2^(-age / half_life): West's weighted incremental algorithm, decaying what came before
 * at every step. Returns the number of samples. */
static size_t ewma(const struct lbw_rule_point *pts, size_t n, int64_t lo, int64_t hi,
                   double half_life_ms, double *mean, double *var)
{
    double w = 0, m = 0, s = 0;
    int64_t prev = 0;
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        if (!in_range(&pts[i], lo, hi))
            continue;
        if (count > 0) {
            double decay = exp2(-(double)(pts[i].ts_ms - prev) / half_life_ms);
            w *= decay;
            s *= decay;
        }
        double x = pts[i].value, delta = x - m;
        w += 1;
        m += delta / w;
        s += delta * (x - m);
        prev = pts[i].ts_ms;
        count++;
    }
    *mean = m;
    *var = count > 0 && s > 0 ? s / w : 0;
    return count;
}

static int anomaly_value(const struct lbw_condition *c, int64_t now,
                         const struct lbw_rule_point *pts, size_t n, double *v, int *holds)
{
    int64_t mid = before(now, c->window_ms);
    double mean, var, half_life = c->baseline_ms >= 4 ? (double)c->baseline_ms / 4 : 1;
    if (!fold(LBW_AGG_AVG, pts, n, mid, now, v))
        return 0;
    size_t count = ewma(pts, n, before(mid, c->baseline_ms), mid, half_life, &mean, &var);
    *holds = count >= c->min_samples && fabs(*v - mean) > c->k * sqrt(var);
    return 1;
}

static int compare(double v, enum lbw_cmp op, double x)
{
    switch (op) {
    case LBW_CMP_GT: return v > x;
    case LBW_CMP_LT: return v < x;
    case LBW_CMP_GE: return v >= x;
    case LBW_CMP_LE: return v <= x;
    case LBW_CMP_EQ: return v == x;
    case LBW_CMP_NE: return v != x;
    }
    return 0;
}

/* The condition's value and verdict for one series; 0 if it has no data for it. */
static int measure(const struct lbw_condition *c, int64_t now, const struct lbw_rule_point *pts,
                   size_t n, double *v, int *holds)
{
    switch (c->kind) {
    case LBW_COND_THRESHOLD:
        if (!threshold_value(c, now, pts, n, v))
            return 0;
        break;
    case LBW_COND_CHANGE:
        if (!change_value(c, now, pts, n, v))
            return 0;
        break;
    case LBW_COND_ABSENT:
        return absent_value(c, now, pts, n, v, holds);
    case LBW_COND_ANOMALY:
        return anomaly_value(c, now, pts, n, v, holds);
    default:
        return 0;
    }
    *holds = !isnan(*v) && compare(*v, c->cmp, c->value);
    return !isnan(*v);
}

/* The oldest sample a condition looks at is after this. */
static int64_t range_start(const struct lbw_condition *c, int64_t now)
{
    switch (c->kind) {
    case LBW_COND_CHANGE:
        return before(before(now, c->window_ms), c->window_ms);
    case LBW_COND_ABSENT:
        return before(now, lookback_of(c));
    case LBW_COND_ANOMALY:
        return before(before(now, c->window_ms), c->baseline_ms);
    default:
        return before(now, c->window_ms);
    }
}

/* --- leaf conditions: one cell per series ------------------------------------------------------ */

struct leaf {
    const struct lbw_condition *c;
    int64_t now;
    struct cells *out;
    size_t series;              /* series with data */
    int failed;
};

/* Adds the cell of series k: its labels without vantage, and its vantage. */
static int add_series_cell(struct cells *out, const struct lbw_key_parsed *k, double v,
                           int holds)
{
    struct lbw_label l[LBW_LABELS_MAX];
    char key[LBW_KEY_MAX];
    const char *vantage = "";
    size_t n = 0;
    for (size_t i = 0; i < k->nlabels; i++) {
        if (strcmp(k->labels[i].name, "vantage") == 0)
            vantage = k->labels[i].value;
        else
            l[n++] = k->labels[i];
    }
    if (lbw_key_build(key, sizeof(key), "I", l, n) < 0)
        return -1;
    return cells_add(out, key, vantage, v, holds, 0);
}

static int on_series(void *arg, const char *key, size_t keylen, const struct lbw_rule_point *pts,
                     size_t n)
{
    struct leaf *l = arg;
    struct lbw_key_parsed k;
    double v = 0;
    int holds = 0;
    if (lbw_key_parse(key, keylen, &k) < 0 || strcmp(k.metric, l->c->metric) != 0 ||
        !lbw_matchers_match(l->c->matchers, l->c->nmatchers, &k) ||
        !measure(l->c, l->now, pts, n, &v, &holds))
        return 0;
    l->series++;
    if (add_series_cell(l->out, &k, v, holds) < 0) {
        l->failed = 1;
        return 1;
    }
    return 0;
}

/* absent over no series at all: one cell from the equality matchers, standing for every
 * vantage unless one names it. */
static int add_absent_cell(const struct lbw_condition *c, struct cells *out)
{
    struct lbw_label l[LBW_RULE_MAX_MATCHERS];
    char key[LBW_KEY_MAX];
    const char *vantage = NULL;
    size_t n = 0;
    for (size_t i = 0; i < c->nmatchers; i++) {
        const struct lbw_matcher *m = &c->matchers[i];
        if (m->negate || !*m->value)
            continue;
        if (strcmp(m->name, "vantage") == 0)
            vantage = m->value;
        else
            l[n++] = (struct lbw_label){m->name, m->value};
    }
    if (lbw_key_build(key, sizeof(key), "I", l, n) < 0)
        return -1;
    return cells_add(out, key, vantage ? vantage : "", 0, 1, !vantage);
}

static int eval_leaf(const struct lbw_condition *c, const struct lbw_series_source *src,
                     int64_t now, struct cells *out)
{
    struct leaf l = {c, now, out, 0, 0};
    int64_t from = range_start(c, now) + 1;
    if (src->select(src->arg, c->metric, c->matchers, c->nmatchers, from, now, on_series, &l) < 0 ||
        l.failed)
        return -1;
    if (c->kind == LBW_COND_ABSENT && l.series == 0)
        return add_absent_cell(c, out);
    return 0;
}

/* --- all / any: joining children's cells on shared labels ----------------------------------- */

/* The label names of a cell, sorted (canonical keys sort them) and written ",a,b,": its
 * signature. Names cannot hold ',', and they fit a key, so they fit this. */
struct names {
    char s[LBW_KEY_MAX];
};

static void names_of(const struct lbw_key_parsed *k, struct names *out)
{
    size_t used = 1;
    strcpy(out->s, ",");
    for (size_t i = 0; i < k->nlabels; i++)
        used += (size_t)snprintf(out->s + used, sizeof(out->s) - used, "%s,", k->labels[i].name);
}

static int names_has(const struct names *set, const char *name, size_t len)
{
    for (const char *p = strstr(set->s, name); p; p = strstr(p + 1, name))
        if (p[-1] == ',' && p[len] == ',')
            return 1;
    return 0;
}

/* The names of a that b has too. */
static void names_shared(const struct names *a, const struct names *b, struct names *out)
{
    size_t used = 1;
    strcpy(out->s, ",");
    for (const char *p = a->s + 1; *p; p = strchr(p, ',') + 1) {
        char name[LBW_KEY_MAX];
        size_t len = (size_t)(strchr(p, ',') - p);
        memcpy(name, p, len);
        name[len] = '\0';
        if (names_has(b, name, len))
            used += (size_t)snprintf(out->s + used, sizeof(out->s) - used, "%s,", name);
    }
}

/* The distinct signatures of a cell set and each cell's. */
struct sigs {
    struct names *v;
    size_t n, cap;
    size_t *of;                 /* of[cell] = its signature's index */
};

static void sigs_free(struct sigs *s)
{
    free(s->v);
    free(s->of);
}

static int sigs_add(struct sigs *s, const struct names *mine, size_t *index)
{
    size_t j;
    for (j = 0; j < s->n && strcmp(s->v[j].s, mine->s) != 0; j++)
        ;
    if (j == s->n) {
        if (s->n == s->cap) {
            size_t cap = s->cap ? s->cap * 2 : 4;
            struct names *v = realloc(s->v, cap * sizeof(*v));
            if (!v)
                return -1;
            s->v = v;
            s->cap = cap;
        }
        s->v[s->n++] = *mine;
    }
    *index = j;
    return 0;
}

static int sigs_build(const struct cells *cs, struct sigs *s)
{
    memset(s, 0, sizeof(*s));
    s->of = malloc((cs->n ? cs->n : 1) * sizeof(*s->of));
    if (!s->of)
        return -1;
    for (size_t i = 0; i < cs->n; i++) {
        struct lbw_key_parsed k;
        struct names mine;
        if (cell_parse(cs, &cs->v[i], &k) < 0)
            return -1;
        names_of(&k, &mine);
        if (sigs_add(s, &mine, &s->of[i]) < 0)
            return -1;
    }
    return 0;
}

/* The key "P{...}" of a cell's labels whose names are in shared. */
static int projection(const struct cells *cs, const struct cell *c, const struct names *shared,
                      char key[LBW_KEY_MAX])
{
    struct lbw_key_parsed k;
    struct lbw_label l[LBW_LABELS_MAX];
    size_t n = 0;
    if (cell_parse(cs, c, &k) < 0)
        return -1;
    for (size_t i = 0; i < k.nlabels; i++)
        if (names_has(shared, k.labels[i].name, strlen(k.labels[i].name)))
            l[n++] = k.labels[i];
    return lbw_key_build(key, LBW_KEY_MAX, "P", l, n) < 0 ? -1 : 0;
}

/* A cell of b by its projection. */
struct projkey {
    size_t off;                 /* of the projection in join.pool */
    const char *key;            /* the same, once the pool has stopped growing */
    size_t b;
};

static int projkey_cmp(const void *x, const void *y)
{
    const struct projkey *a = x, *b = y;
    int c = strcmp(a->key, b->key);
    return c ? c : (a->b > b->b) - (a->b < b->b);
}

struct join {
    const struct cells *a, *b;
    unsigned char *amatched, *bmatched;
    int all;
    struct cells *out;
    struct cells pool;          /* projections of b's cells of one signature (pool only) */
    struct projkey *keys;       /* b->n of them at most */
    size_t nkeys;
};

static int vantages_meet(const struct cells *as, const struct cell *a, const struct cells *bs,
                         const struct cell *b)
{
    return a->anyv || b->anyv || strcmp(str_at(as, a->vantage), str_at(bs, b->vantage)) == 0;
}

/* The cell for a matched pair: the union of their labels, the concrete vantage, the verdict
 * and value of all or any. */
static int add_pair(struct join *j, const struct cell *a, const struct cell *b)
{
    struct lbw_key_parsed ka, kb;
    struct lbw_label l[2 * LBW_LABELS_MAX];
    char key[LBW_KEY_MAX];
    size_t n = 0;
    if (cell_parse(j->a, a, &ka) < 0 || cell_parse(j->b, b, &kb) < 0)
        return -1;
    for (size_t i = 0; i < ka.nlabels; i++)
        l[n++] = ka.labels[i];
    for (size_t i = 0; i < kb.nlabels; i++)
        if (!lbw_key_label(&ka, kb.labels[i].name))
            l[n++] = kb.labels[i];
    if (n > LBW_LABELS_MAX || lbw_key_build(key, sizeof(key), "I", l, n) < 0)
        return -1;
    const char *vantage = str_at(a->anyv ? j->b : j->a, a->anyv ? b->vantage : a->vantage);
    int holds = j->all ? a->holds && b->holds : a->holds || b->holds;
    double value = j->all || a->holds || !b->holds ? a->value : b->value;
    return cells_add(j->out, key, vantage, value, holds, a->anyv && b->anyv);
}

/* Sorts the projections of b's cells of signature sb onto shared. */
static int index_b(struct join *j, const struct sigs *bs, size_t sb, const struct names *shared)
{
    char key[LBW_KEY_MAX];
    j->pool.used = 0;
    j->nkeys = 0;
    for (size_t i = 0; i < j->b->n; i++) {
        if (bs->of[i] != sb)
            continue;
        struct projkey *pk = &j->keys[j->nkeys++];
        pk->b = i;
        if (projection(j->b, &j->b->v[i], shared, key) < 0 || pool_add(&j->pool, key, &pk->off) < 0)
            return -1;
    }
    for (size_t i = 0; i < j->nkeys; i++)
        j->keys[i].key = str_at(&j->pool, j->keys[i].off);
    if (j->nkeys > 1)
        qsort(j->keys, j->nkeys, sizeof(*j->keys), projkey_cmp);
    return 0;
}

/* Pairs cell ai of a with every indexed cell of b that has its projection and meets its
 * vantage. */
static int match_a(struct join *j, size_t ai, const struct names *shared)
{
    const struct cell *a = &j->a->v[ai];
    char key[LBW_KEY_MAX];
    size_t lo = 0, hi = j->nkeys;
    if (projection(j->a, a, shared, key) < 0)
        return -1;
    while (lo < hi) {           /* the first projection >= key */
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(j->keys[mid].key, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < j->nkeys && strcmp(j->keys[lo].key, key) == 0; lo++) {
        const struct cell *b = &j->b->v[j->keys[lo].b];
        if (!vantages_meet(j->a, a, j->b, b))
            continue;
        if (add_pair(j, a, b) < 0)
            return -1;
        j->amatched[ai] = j->bmatched[j->keys[lo].b] = 1;
    }
    return 0;
}

/* Joins a's cells of signature sa with b's of signature sb. */
static int join_signatures(struct join *j, const struct sigs *as, size_t sa,
                           const struct sigs *bs, size_t sb)
{
    struct names shared;
    names_shared(&as->v[sa], &bs->v[sb], &shared);
    if (index_b(j, bs, sb, &shared) < 0)
        return -1;
    for (size_t i = 0; i < j->a->n; i++)
        if (as->of[i] == sa && match_a(j, i, &shared) < 0)
            return -1;
    return 0;
}

/* A cell without a match keeps its own verdict under any and does not hold under all. */
static int add_unmatched(struct join *j, const struct cells *cs, const unsigned char *matched)
{
    for (size_t i = 0; i < cs->n; i++) {
        const struct cell *c = &cs->v[i];
        if (!matched[i] && cells_add(j->out, str_at(cs, c->labels), str_at(cs, c->vantage),
                                     c->value, !j->all && c->holds, c->anyv) < 0)
            return -1;
    }
    return 0;
}

static int join(const struct cells *a, const struct cells *b, int all, struct cells *out)
{
    struct join j = {a, b, calloc(a->n + 1, 1), calloc(b->n + 1, 1), all, out, {0},
                     malloc((b->n + 1) * sizeof(*j.keys)), 0};
    struct sigs as, bs;
    int rc = -1;
    int built = sigs_build(a, &as) == 0;
    built = sigs_build(b, &bs) == 0 && built;
    if (built && j.amatched && j.bmatched && j.keys) {
        rc = 0;
        for (size_t sa = 0; sa < as.n && rc == 0; sa++)
            for (size_t sb = 0; sb < bs.n && rc == 0; sb++)
                rc = join_signatures(&j, &as, sa, &bs, sb);
        if (rc == 0)
            rc = add_unmatched(&j, a, j.amatched) < 0 || add_unmatched(&j, b, j.bmatched) < 0 ? -1 : 0;
    }
    sigs_free(&as);
    sigs_free(&bs);
    cells_free(&j.pool);
    free(j.keys);
    free(j.amatched);
    free(j.bmatched);
    return rc;
}

static int eval_cond(const struct lbw_condition *c, const struct lbw_series_source *src,
                     int64_t now, struct cells *out, unsigned depth);

static int eval_composite(const struct lbw_condition *c, const struct lbw_series_source *src,
                          int64_t now, struct cells *out, unsigned depth)
{
    struct cells acc = {0};
    if (c->nchildren == 0 || c->nchildren > LBW_RULE_MAX_CHILDREN ||
        eval_cond(c->children[0], src, now, &acc, depth + 1) < 0) {
        cells_free(&acc);
        return -1;
    }
    for (size_t i = 1; i < c->nchildren; i++) {
        struct cells child = {0}, joined = {0};
        int rc = eval_cond(c->children[i], src, now, &child, depth + 1) < 0 ||
                 join(&acc, &child, c->kind == LBW_COND_ALL, &joined) < 0;
        cells_free(&acc);
        cells_free(&child);
        acc = joined;
        if (rc) {
            cells_free(&acc);
            return -1;
        }
    }
    *out = acc;
    return 0;
}

static int eval_cond(const struct lbw_condition *c, const struct lbw_series_source *src,
                     int64_t now, struct cells *out, unsigned depth)
{
    if (!c || depth > LBW_RULE_MAX_DEPTH)
        return -1;
    if (c->kind == LBW_COND_ALL || c->kind == LBW_COND_ANY)
        return eval_composite(c, src, now, out, depth);
    return eval_leaf(c, src, now, out);
}

/* --- instances --------------------------------------------------------------------------------- */

struct ref {
    const char *labels, *vantage;
    const struct cell *c;
};

static int ref_cmp(const void *x, const void *y)
{
    const struct ref *a = x, *b = y;
    int c = strcmp(a->labels, b->labels);
    if (!c)
        c = (int)a->c->anyv - (int)b->c->anyv;
    if (!c)
        c = strcmp(a->vantage, b->vantage);
    return c ? c : (a->c > b->c) - (a->c < b->c);
}

static int has_label(const struct lbw_label *l, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(l[i].name, name) == 0)
            return 1;
    return 0;
}

/* ALERTS{...}: the rule's static labels, then alertname and severity, then the instance's
 * labels, each only if no earlier one has its name. */
static int instance_labels(const struct lbw_rule *r, const char *ilabels, char out[LBW_KEY_MAX])
{
    struct lbw_key_parsed k;
    struct lbw_label l[LBW_RULE_MAX_LABELS + 2 + LBW_LABELS_MAX];
    size_t n = 0;
    if (lbw_key_parse(ilabels, strlen(ilabels), &k) < 0)
        return -1;
    for (size_t i = 0; i < r->nlabels && i < LBW_RULE_MAX_LABELS; i++)
        l[n++] = r->labels[i];
    if (!has_label(l, n, "alertname"))
        l[n++] = (struct lbw_label){"alertname", r->name};
    if (!has_label(l, n, "severity"))
        l[n++] = (struct lbw_label){"severity", lbw_severity_name(r->severity)};
    for (size_t i = 0; i < k.nlabels; i++)
        if (!has_label(l, n, k.labels[i].name))
            l[n++] = k.labels[i];
    return n > LBW_LABELS_MAX || lbw_key_build(out, LBW_KEY_MAX, "ALERTS", l, n) < 0 ? -1 : 0;
}

/* The instance of the run of refs with equal labels. A vantage seen more than once (a join
 * can make that) holds if any of its cells does. */
static int make_instance(const struct lbw_rule *r, const struct ref *run, size_t n,
                         struct lbw_instance *inst)
{
    int anyv_holds = 0, valued = 0, vantage_holds = 0;
    memset(inst, 0, sizeof(*inst));
    for (size_t i = 0; i < n; i++) {
        const struct cell *c = run[i].c;
        if (c->anyv) {
            anyv_holds |= c->holds;
        } else {
            if (i == 0 || run[i - 1].c->anyv || strcmp(run[i].vantage, run[i - 1].vantage) != 0) {
                inst->vantages_seen++;
                vantage_holds = 0;
            }
            if (c->holds && !vantage_holds) {
                inst->vantages_true++;
                vantage_holds = 1;
            }
        }
        if (i == 0 || (c->holds && !valued)) {
            inst->value = c->value;
            valued = c->holds;
        }
    }
    inst->active = anyv_holds || inst->vantages_true >= r->min_vantages;
    if (instance_labels(r, run[0].labels, inst->labels) < 0)
        return -1;
    inst->fingerprint = lbw_fingerprint(inst->labels, strlen(inst->labels));
    return 0;
}

/* Makes every instance (checking they all can be made when cb is NULL). Returns the number
 * of instances, or -1. */
static long for_instances(const struct lbw_rule *r, const struct ref *refs, size_t n,
                          lbw_instance_cb cb, void *arg)
{
    struct lbw_instance inst;
    long count = 0;
    for (size_t i = 0, end; i < n; i = end) {
        for (end = i + 1; end < n && strcmp(refs[end].labels, refs[i].labels) == 0; end++)
            ;
        if (make_instance(r, refs + i, end - i, &inst) < 0)
            return -1;
        if (cb)
            cb(arg, &inst);
        count++;
    }
    return count;
}

/* per_vantage: puts each cell's vantage into its labels (a cell standing for every vantage, or
 * of a series without one, has none to add). The pool may move: take no pointers into it
 * before. */
static int label_vantages(struct cells *cs)
{
    for (size_t i = 0; i < cs->n; i++) {
        struct cell *c = &cs->v[i];
        struct lbw_key_parsed k;
        struct lbw_label l[LBW_LABELS_MAX + 1];
        char key[LBW_KEY_MAX];
        if (c->anyv || !*str_at(cs, c->vantage))
            continue;
        if (cell_parse(cs, c, &k) < 0 || k.nlabels >= LBW_LABELS_MAX)
            return -1;
        memcpy(l, k.labels, k.nlabels * sizeof(l[0]));
        l[k.nlabels] = (struct lbw_label){"vantage", str_at(cs, c->vantage)};
        if (lbw_key_build(key, sizeof(key), "I", l, k.nlabels + 1) < 0 ||
            pool_add(cs, key, &c->labels) < 0)
            return -1;
    }
    return 0;
}

long lbw_rule_eval(const struct lbw_rule *r, const struct lbw_series_source *src, int64_t now,
                   lbw_instance_cb cb, void *arg)
{
    struct cells cs = {0};
    struct ref *refs = NULL;
    long n = -1;
    if (eval_cond(&r->cond, src, now, &cs, 0) == 0 &&
        (!r->per_vantage || label_vantages(&cs) == 0) &&
        (refs = malloc((cs.n ? cs.n : 1) * sizeof(*refs)))) {
        for (size_t i = 0; i < cs.n; i++)
            refs[i] = (struct ref){str_at(&cs, cs.v[i].labels), str_at(&cs, cs.v[i].vantage),
                                   &cs.v[i]};
        if (cs.n > 1)
            qsort(refs, cs.n, sizeof(*refs), ref_cmp);
        if (for_instances(r, refs, cs.n, NULL, NULL) >= 0)
            n = for_instances(r, refs, cs.n, cb, arg);
    }
    free(refs);
    cells_free(&cs);
    return n;
}

/* --- checking ------------------------------------------------------------------------------------ */

struct why {
    char *buf;
    size_t len;
};

static int refuse(struct why *w, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int refuse(struct why *w, const char *path, const char *fmt, ...)
{
    va_list ap;
    if (!w->buf || !w->len)
        return -1;
    int n = snprintf(w->buf, w->len, "%s%s", path, *path ? ": " : "");
    if (n >= 0 && (size_t)n < w->len) {
        va_start(ap, fmt);
        vsnprintf(w->buf + n, w->len - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int rule_name_valid(const char *s)
{
    if (!s || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_' ||
              (*s >= '0' && *s <= '9')))
            return 0;
    return 1;
}

static int range_ok(int64_t ms) { return ms > 0 && ms <= LBW_RULE_MAX_RANGE_MS; }

static int check_matchers(const struct lbw_condition *c, struct why *w, const char *path)
{
    if (c->nmatchers > LBW_RULE_MAX_MATCHERS)
        return refuse(w, path, "more than %d matchers", LBW_RULE_MAX_MATCHERS);
    for (size_t i = 0; i < c->nmatchers; i++) {
        const struct lbw_matcher *m = &c->matchers[i];
        if (!lbw_label_name_valid(m->name) || !m->value)
            return refuse(w, path, "matcher %zu: needs a valid label name and a value", i);
        for (size_t j = 0; j < i; j++)
            if (!m->negate && !c->matchers[j].negate && strcmp(c->matchers[j].name, m->name) == 0)
                return refuse(w, path, "label \"%s\" is matched for equality twice", m->name);
    }
    return 0;
}

static int check_leaf(const struct lbw_condition *c, struct why *w, const char *path)
{
    if (!lbw_metric_name_valid(c->metric))
        return refuse(w, path, "needs a valid metric name");
    if (check_matchers(c, w, path) < 0)
        return -1;
    if (!range_ok(c->window_ms))
        return refuse(w, path, "window must be positive and at most 400 days");
    if ((c->kind == LBW_COND_THRESHOLD || c->kind == LBW_COND_CHANGE) &&
        ((unsigned)c->cmp > LBW_CMP_NE || isnan(c->value)))
        return refuse(w, path, "needs a comparison and a value");
    switch (c->kind) {
    case LBW_COND_THRESHOLD:
        if ((unsigned)c->agg > LBW_AGG_RATE)
            return refuse(w, path, "unknown aggregation");
        if (c->seconds_until && c->agg == LBW_AGG_RATE)
            return refuse(w, path, "until compares a time: use last, avg, min or max, not rate");
        break;
    case LBW_COND_ABSENT:
        if (c->lookback_ms < 0 || lookback_of(c) > LBW_RULE_MAX_RANGE_MS ||
            lookback_of(c) <= c->window_ms)
            return refuse(w, path, "lookback must be longer than window (and at most 400 days)");
        break;
    case LBW_COND_ANOMALY:
        if (!range_ok(c->baseline_ms) || c->baseline_ms < 4)
            return refuse(w, path, "baseline must be positive and at most 400 days");
        if (!(c->k > 0) || !isfinite(c->k))
            return refuse(w, path, "k must be a positive number");
        if (c->min_samples < 2)
            return refuse(w, path, "min_samples must be at least 2");
        break;
    default:
        break;
    }
    if (c->kind != LBW_COND_THRESHOLD && c->seconds_until)
        return refuse(w, path, "until applies to threshold only");
    if (c->kind != LBW_COND_CHANGE && c->relative)
        return refuse(w, path, "relative applies to change only");
    return 0;
}

static int check_cond(const struct lbw_condition *c, struct why *w, const char *path,
                      unsigned depth)
{
    if (!c)
        return refuse(w, path, "missing condition");
    if ((unsigned)c->kind > LBW_COND_ANY)
        return refuse(w, path, "unknown condition kind");
    if (c->kind != LBW_COND_ALL && c->kind != LBW_COND_ANY)
        return check_leaf(c, w, path);
    const char *word = c->kind == LBW_COND_ALL ? "all" : "any";
    if (depth >= LBW_RULE_MAX_DEPTH)
        return refuse(w, path, "all/any nested deeper than %d levels", LBW_RULE_MAX_DEPTH);
    if (c->nchildren == 0 || c->nchildren > LBW_RULE_MAX_CHILDREN)
        return refuse(w, path, "%s needs 1 to %d conditions", word, LBW_RULE_MAX_CHILDREN);
    for (size_t i = 0; i < c->nchildren; i++) {
        char sub[128];
        snprintf(sub, sizeof(sub), "%s%s%s[%zu]", path, *path ? "." : "", word, i);
        if (check_cond(c->children[i], w, sub, depth + 1) < 0)
            return -1;
    }
    return 0;
}

/* Label names valid and distinct, values present; templates parse when they are annotations. */
static int check_labels(const struct lbw_label *l, size_t n, int templates, struct why *w)
{
    const char *what = templates ? "annotations" : "labels";
    if (n > (templates ? LBW_RULE_MAX_ANNOTATIONS : LBW_RULE_MAX_LABELS))
        return refuse(w, what, "more than %d", templates ? LBW_RULE_MAX_ANNOTATIONS
                                                         : LBW_RULE_MAX_LABELS);
    for (size_t i = 0; i < n; i++) {
        char tw[LBW_TEMPLATE_WHY_MAX];
        size_t at;
        if (!lbw_label_name_valid(l[i].name) || !l[i].value)
            return refuse(w, what, "entry %zu: needs a valid name and a value", i);
        if (has_label(l, i, l[i].name))
            return refuse(w, what, "\"%s\" is repeated", l[i].name);
        if (templates && lbw_template_check(l[i].value, tw, sizeof(tw), &at) < 0)
            return refuse(w, what, "%s: %s at byte %zu", l[i].name, tw, at);
    }
    return 0;
}

int lbw_rule_check(const struct lbw_rule *r, char *whybuf, size_t whylen)
{
    struct why w = {whybuf, whylen};
    if (!rule_name_valid(r->name))
        return refuse(&w, "name", "must be letters, digits and '_', not starting with a digit");
    if ((unsigned)r->severity > LBW_SEV_CRITICAL)
        return refuse(&w, "severity", "unknown");
    if (r->min_vantages < 1)
        return refuse(&w, "min_vantages", "must be at least 1");
    if (r->per_vantage && r->min_vantages != 1)
        return refuse(&w, "min_vantages", "must be 1 with per_vantage (each vantage is its own "
                                          "instance)");
    if (r->for_ms < 0)
        return refuse(&w, "for", "must not be negative");
    if (check_labels(r->labels, r->nlabels, 0, &w) < 0 ||
        check_labels(r->annotations, r->nannotations, 1, &w) < 0)
        return -1;
    return check_cond(&r->cond, &w, "", 0);
}
