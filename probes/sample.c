/* sample.c - series key building and parsing, and the emitter. See sample.h. */
#include "probes/sample.h"

#include <string.h>
#include <time.h>

static int name_char(char c, int first, int allow_colon)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
        return 1;
    if (allow_colon && c == ':')
        return 1;
    return !first && c >= '0' && c <= '9';
}

static int name_valid(const char *s, size_t len, int allow_colon)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!name_char(s[i], i == 0, allow_colon))
            return 0;
    return 1;
}

int lbw_metric_name_valid(const char *name)
{
    return name && name_valid(name, strlen(name), 1);
}

int lbw_label_name_valid(const char *name)
{
    return name && name_valid(name, strlen(name), 0);
}

/* Appends src (len bytes) to out at *pos, escaping if asked. Returns -1 when out is full. */
static int put(char *out, size_t size, size_t *pos, const char *src, size_t len, int escape)
{
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        const char *rep = NULL;
        if (escape && c == '\\')
            rep = "\\\\";
        else if (escape && c == '"')
            rep = "\\\"";
        else if (escape && c == '\n')
            rep = "\\n";
        size_t n = rep ? 2 : 1;
        if (*pos + n >= size)
            return -1;
        if (rep)
            memcpy(out + *pos, rep, 2);
        else
            out[*pos] = c;
        *pos += n;
    }
    return 0;
}

int lbw_key_build(char *out, size_t size, const char *metric, const struct lbw_label *labels,
                  size_t nlabels)
{
    const struct lbw_label *sorted[LBW_LABELS_MAX];
    size_t n = 0;

    if (!out || size == 0 || !lbw_metric_name_valid(metric))
        return -1;
    for (size_t i = 0; i < nlabels; i++) {
        if (!labels[i].value)
            continue;
        if (n == LBW_LABELS_MAX || !lbw_label_name_valid(labels[i].name))
            return -1;
        /* insertion sort by name; a repeated name is an error */
        size_t j = n;
        while (j > 0) {
            int c = strcmp(sorted[j - 1]->name, labels[i].name);
            if (c == 0)
                return -1;
            if (c < 0)
                break;
            sorted[j] = sorted[j - 1];
            j--;
        }
        sorted[j] = &labels[i];
        n++;
    }

    size_t pos = 0;
    if (put(out, size, &pos, metric, strlen(metric), 0) < 0)
        return -1;
    if (n > 0) {
        for (size_t i = 0; i < n; i++) {
            if (put(out, size, &pos, i ? "," : "{", 1, 0) < 0 ||
                put(out, size, &pos, sorted[i]->name, strlen(sorted[i]->name), 0) < 0 ||
                put(out, size, &pos, "=\"", 2, 0) < 0 ||
                put(out, size, &pos, sorted[i]->value, strlen(sorted[i]->value), 1) < 0 ||
                put(out, size, &pos, "\"", 1, 0) < 0)
                return -1;
        }
        if (put(out, size, &pos, "}", 1, 0) < 0)
            return -1;
    }
    out[pos] = '\0';
    return (int)pos;
}

/* Copies a name [a-zA-Z0-9_:] run starting at key[*i] into text. */
static const char *parse_name(const char *key, size_t len, size_t *i, char *text, size_t *tpos,
                              int allow_colon)
{
    size_t start = *i;
    while (*i < len && name_char(key[*i], *i == start, allow_colon))
        (*i)++;
    size_t n = *i - start;
    if (n == 0 || *tpos + n + 1 > LBW_KEY_MAX)
        return NULL;
    char *dst = text + *tpos;
    memcpy(dst, key + start, n);
    dst[n] = '\0';
    *tpos += n + 1;
    return dst;
}

/* Unescapes a quoted value starting after the opening quote; leaves *i after the close. */
static const char *parse_value(const char *key, size_t len, size_t *i, char *text, size_t *tpos)
{
    char *dst = text + *tpos;
    size_t n = 0;
    for (;;) {
        if (*i >= len)
            return NULL;
        char c = key[(*i)++];
        if (c == '"')
            break;
        if (c == '\\') {
            if (*i >= len)
                return NULL;
            char e = key[(*i)++];
            if (e == 'n')
                c = '\n';
            else if (e == '\\' || e == '"')
                c = e;
            else
                return NULL;
        } else if (c == '\n' || c == '\0') {
            return NULL;
        }
        if (*tpos + n + 1 >= LBW_KEY_MAX)
            return NULL;
        dst[n++] = c;
    }
    dst[n] = '\0';
    *tpos += n + 1;
    return dst;
}

int lbw_key_parse(const char *key, size_t len, struct lbw_key_parsed *out)
{
    size_t i = 0, tpos = 0;

    if (!key || !out || len == 0 || len >= LBW_KEY_MAX)
        return -1;
    out->nlabels = 0;
    out->metric = parse_name(key, len, &i, out->text, &tpos, 1);
    if (!out->metric)
        return -1;
    if (i == len)
        return 0;
    if (key[i++] != '{')
        return -1;
    for (;;) {
        if (out->nlabels == LBW_LABELS_MAX)
            return -1;
        struct lbw_label *l = &out->labels[out->nlabels];
        l->name = parse_name(key, len, &i, out->text, &tpos, 0);
        if (!l->name || i + 1 >= len || key[i] != '=' || key[i + 1] != '"')
            return -1;
        i += 2;
        l->value = parse_value(key, len, &i, out->text, &tpos);
        if (!l->value)
            return -1;
        if (out->nlabels > 0 && strcmp(out->labels[out->nlabels - 1].name, l->name) >= 0)
            return -1; /* not canonical: unsorted or repeated */
        out->nlabels++;
        if (i >= len)
            return -1;
        char c = key[i++];
        if (c == '}')
            return i == len ? 0 : -1;
        if (c != ',')
            return -1;
    }
}

const char *lbw_key_label(const struct lbw_key_parsed *k, const char *name)
{
    for (size_t i = 0; i < k->nlabels; i++)
        if (strcmp(k->labels[i].name, name) == 0)
            return k->labels[i].value;
    return NULL;
}

int lbw_emitn(const struct lbw_emitter *e, const char *metric, const struct lbw_label *extra,
              size_t nextra, double value)
{
    struct lbw_label all[LBW_LABELS_MAX];
    char key[LBW_KEY_MAX];

    if (e->nbase + nextra > LBW_LABELS_MAX)
        return -1;
    if (e->nbase)
        memcpy(all, e->base, e->nbase * sizeof(all[0]));
    if (nextra)
        memcpy(all + e->nbase, extra, nextra * sizeof(all[0]));
    if (lbw_key_build(key, sizeof(key), metric, all, e->nbase + nextra) < 0)
        return -1;
    e->fn(e->arg, key, e->ts_ms, value);
    return 0;
}

int lbw_emit(const struct lbw_emitter *e, const char *metric, double value)
{
    return lbw_emitn(e, metric, NULL, 0, value);
}

int lbw_emit1(const struct lbw_emitter *e, const char *metric, const char *lname,
              const char *lvalue, double value)
{
    struct lbw_label l = {lname, lvalue};
    return lbw_emitn(e, metric, &l, 1, value);
}

int64_t lbw_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t lbw_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
