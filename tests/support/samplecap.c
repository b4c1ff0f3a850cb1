/* samplecap.c - a capturing emitter for tests. See samplecap.h. */
#include "tests/support/samplecap.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sc_init(struct samplecap *c)
{
    c->n = 0;
    c->dropped = 0;
    c->s = calloc(SC_MAX, sizeof(*c->s));
    if (!c->s) {
        fprintf(stderr, "samplecap: out of memory\n");
        abort();
    }
}

void sc_free(struct samplecap *c)
{
    free(c->s);
    c->s = NULL;
    c->n = 0;
}

void sc_reset(struct samplecap *c)
{
    c->n = 0;
    c->dropped = 0;
}

static void keep(void *arg, const char *key, int64_t ts_ms, double value)
{
    struct samplecap *c = arg;
    (void)ts_ms;
    if (c->n == SC_MAX) {
        c->dropped++;
        return;
    }
    snprintf(c->s[c->n].key, sizeof(c->s[c->n].key), "%s", key);
    c->s[c->n].value = value;
    c->n++;
}

struct lbw_emitter sc_emitter(struct samplecap *c)
{
    static const struct lbw_label none[1]; /* lbw_emitn copies from base even when nbase is 0 */
    struct lbw_emitter e = {.fn = keep, .arg = c, .base = none, .nbase = 0, .ts_ms = 0};
    return e;
}

int sc_get(const struct samplecap *c, const char *key, double *value)
{
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->s[i].key, key) == 0) {
            *value = c->s[i].value;
            return 1;
        }
    }
    return 0;
}

double sc_val(const struct samplecap *c, const char *key)
{
    double v;
    return sc_get(c, key, &v) ? v : NAN;
}

size_t sc_count_prefix(const struct samplecap *c, const char *prefix)
{
    size_t n = 0, len = strlen(prefix);
    for (size_t i = 0; i < c->n; i++)
        if (strncmp(c->s[i].key, prefix, len) == 0)
            n++;
    return n;
}

size_t sc_duplicates(const struct samplecap *c)
{
    size_t dup = 0;
    for (size_t i = 1; i < c->n; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->s[i].key, c->s[j].key) == 0) {
                dup++;
                break;
            }
    return dup;
}
