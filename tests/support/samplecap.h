/* samplecap.h - an emitter for tests that keeps every sample it is handed (key and value) in a
 * bounded table, with look-ups by exact key or key prefix and a check for repeated keys. */
#ifndef LBW_SAMPLECAP_H
#define LBW_SAMPLECAP_H

#include <stddef.h>

#include "probes/sample.h"

#define SC_MAX 8192 /* samples kept; more are counted in dropped */

struct sc_sample {
    char key[LBW_KEY_MAX];
    double value;
};

struct samplecap {
    size_t n;
    size_t dropped;
    struct sc_sample *s; /* SC_MAX entries */
};

/* Allocates the table (aborts the test binary when memory fails). */
void sc_init(struct samplecap *c);
void sc_free(struct samplecap *c);
/* Forgets the samples kept so far. */
void sc_reset(struct samplecap *c);

/* An emitter without base labels, timestamp 0, that appends to c. */
struct lbw_emitter sc_emitter(struct samplecap *c);

/* 1 and *value when a sample with exactly this key was kept, else 0. */
int sc_get(const struct samplecap *c, const char *key, double *value);

/* The value of key, or NaN when it was not emitted. */
double sc_val(const struct samplecap *c, const char *key);

/* How many kept samples' keys start with prefix. */
size_t sc_count_prefix(const struct samplecap *c, const char *prefix);

/* How many kept samples repeat a key kept earlier. */
size_t sc_duplicates(const struct samplecap *c);

#endif
