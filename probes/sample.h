/* sample.h - series keys and the emitter: the unit of data every probe produces.
 *
 * A sample is (series key, timestamp in ms since the epoch, float64 value). A series key is a
 * metric name plus its labels sorted by label name, rendered exactly as the start of a
 * Prometheus exposition line:
 *
 *     probe_success{probe="tls",target="www",vantage="node1"}
 *
 * Label values are escaped as in the exposition format (\\, \" and \n). Keys are the identity
 * of a series everywhere: in batches, in the store, in the API and on /metrics.
 *
 * This module owns key building, key parsing (keys read back from disk or the network are
 * untrusted: the parser is bounds-checked and fuzzed) and the emitter through which probes
 * hand samples to whoever runs them. It depends on nothing but libc.
 */
#ifndef LBW_SAMPLE_H
#define LBW_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

#define LBW_KEY_MAX 512    /* longest key, including the terminating NUL */
#define LBW_LABELS_MAX 16  /* most labels on one series */

struct lbw_label {
    const char *name;
    const char *value;
};

/* Metric and label names follow Prometheus: [a-zA-Z_:][a-zA-Z0-9_:]* (labels without ':'). */
int lbw_metric_name_valid(const char *name);
int lbw_label_name_valid(const char *name);

/* Builds the canonical key of metric + labels into out[size]. Labels are sorted by name; a
 * label with a NULL value is skipped. Returns the key length, or -1 when a name is invalid,
 * a label name repeats, there are more than LBW_LABELS_MAX labels or the key does not fit. */
int lbw_key_build(char *out, size_t size, const char *metric, const struct lbw_label *labels,
                  size_t nlabels);

/* A key taken apart. Strings point into text[], which holds the unescaped names and values. */
struct lbw_key_parsed {
    const char *metric;
    size_t nlabels;
    struct lbw_label labels[LBW_LABELS_MAX];
    char text[LBW_KEY_MAX];
};

/* Parses a key of len bytes (need not be NUL-terminated). Returns 0, or -1 if it is not a
 * canonical key (bad names, bad escapes, unsorted or repeated labels, too long). */
int lbw_key_parse(const char *key, size_t len, struct lbw_key_parsed *out);

/* The value of label name in a parsed key, or NULL. */
const char *lbw_key_label(const struct lbw_key_parsed *k, const char *name);

/* Receives one sample. key is NUL-terminated and valid only during the call. */
typedef void (*lbw_sample_fn)(void *arg, const char *key, int64_t ts_ms, double value);

/* An emitter turns (metric, extra labels, value) into samples carrying a fixed set of base
 * labels (always target and vantage, usually probe) and a fixed timestamp. Probes describe
 * their results through one; the node decides where the samples go. */
struct lbw_emitter {
    lbw_sample_fn fn;
    void *arg;
    const struct lbw_label *base;
    size_t nbase;
    int64_t ts_ms;
};

/* Emits metric{base...} = value. Returns 0, or -1 if the key could not be built. */
int lbw_emit(const struct lbw_emitter *e, const char *metric, double value);

/* Emits metric{base..., lname=lvalue} = value. */
int lbw_emit1(const struct lbw_emitter *e, const char *metric, const char *lname,
              const char *lvalue, double value);

/* Emits metric{base..., extra...} = value. */
int lbw_emitn(const struct lbw_emitter *e, const char *metric, const struct lbw_label *extra,
              size_t nextra, double value);

/* Wall-clock time in ms since the epoch, and a monotonic clock in ns. */
int64_t lbw_now_ms(void);
uint64_t lbw_mono_ns(void);

#endif
