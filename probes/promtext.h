/* promtext.h - the Prometheus text exposition format 0.0.4: a streaming parser that hands each
 * sample to a callback, an allow-list of metric names, and the step that turns allowed
 * samples of a scrape into lbwatch samples through an emitter.
 *
 * Scraped text comes from the network and is untrusted: the parser is bounds-checked, never
 * reads outside text[0..len), copies nothing it does not bound, and is fuzzed.
 *
 * The grammar is the one Prometheus's own scrape parser accepts (model/textparse/promparse),
 * with the stricter checks of the client library's parser (expfmt) where the two differ:
 *
 *   - Lines end in \n; the last line's \n may be missing. Blank lines and lines of only
 *     spaces and tabs are skipped. Spaces and tabs may start a line and separate tokens.
 *   - "# HELP name text" and "# TYPE name type" (counter, gauge, histogram, summary, untyped)
 *     are metadata; '#' followed by a blank and anything else, or '#' followed directly by a
 *     non-blank ("#HELP ..."), is a comment and ignored. HELP text is unescaped: \\ and \n
 *     (and \", which expfmt also accepts); any other escape is an error. A TYPE line's type
 *     must be one of the five words, nothing may follow it.
 *   - A sample is name[{labels}] value [timestamp]. Names are [a-zA-Z_:][a-zA-Z0-9_:]*,
 *     label names [a-zA-Z_][a-zA-Z0-9_]*; "__name__" is reserved. A label set may be empty
 *     ({}) and may end in one comma ({a="1",}) as Prometheus accepts; blanks may surround
 *     names, '=', values and commas. Label values are quoted, with escapes \\, \" and \n
 *     only, and must be valid UTF-8 (as HELP text must). A label name may appear once.
 *   - Values are Go float syntax without hex or underscores, as Prometheus parses them:
 *     [+-]digits[.digits][e[+-]digits] (digits may be on either side of the point), Inf,
 *     +Inf, -Inf, Infinity (any case) and NaN (any case, unsigned). A finite value that
 *     overflows a double is an error. The optional timestamp is an int64 of ms since the
 *     epoch: an optional '-' and decimal digits.
 *   - A sample belongs to the family of the last HELP/TYPE lines when its name is the
 *     family's name, or, for a histogram, the name plus _bucket, _sum or _count, for a
 *     summary plus _sum or _count. Such a sample has the family's type; any other is
 *     untyped and its own family. A histogram's _bucket samples must carry an "le" label and
 *     a summary's quantile samples (the family's own name) a "quantile" label, each a float.
 *     Repeated HELP/TYPE lines for a family are accepted, as Prometheus does: the last wins.
 *   - Carriage returns: neither reference parser accepts CRLF line ends on sample or TYPE
 *     lines (the \r becomes part of the value, timestamp or type and fails there), and both
 *     keep a \r in comments and HELP text and label values as an ordinary byte. This parser
 *     does the same, and says so: "carriage return: lines must end in \n alone".
 *   - A NUL byte anywhere is an error (Prometheus silently stops at one at a line start).
 *
 * Limits: a line longer than LBW_PROMTEXT_LINE_MAX bytes, and a sample with more than
 * LBW_PROMTEXT_LABELS_MAX labels, are errors that end the parse, like any malformed input:
 * the scrape as a whole fails, as it does in Prometheus when a scrape exceeds label_limit.
 * Limits that depend on the emitter (labels together with its base labels, key length) are
 * counted per sample by lbw_promtext_emit_allowed, which skips those samples and goes on.
 *
 * Depends only on probes/sample.
 */
#ifndef LBW_PROMTEXT_H
#define LBW_PROMTEXT_H

#include <stddef.h>
#include <stdint.h>

#include "probes/sample.h"

#define LBW_PROMTEXT_LINE_MAX 16384             /* longest line, not counting its \n */
#define LBW_PROMTEXT_LABELS_MAX LBW_LABELS_MAX  /* most labels on one scraped sample */

enum lbw_promtext_type {
    LBW_PROMTEXT_UNTYPED = 0,
    LBW_PROMTEXT_COUNTER,
    LBW_PROMTEXT_GAUGE,
    LBW_PROMTEXT_HISTOGRAM,
    LBW_PROMTEXT_SUMMARY,
};

/* One sample as the callback sees it. Every string is NUL-terminated, unescaped and valid
 * only during the call. */
struct lbw_promtext_sample {
    const char *name;               /* metric name as written, e.g. "rpc_seconds_bucket" */
    const char *family;             /* "rpc_seconds" for a histogram's or summary's samples;
                                       otherwise the same as name */
    const char *help;               /* the family's HELP text, or NULL if it had none */
    enum lbw_promtext_type type;    /* the family's type; untyped without a TYPE line */
    size_t nlabels;
    struct lbw_label labels[LBW_PROMTEXT_LABELS_MAX];  /* in the order written */
    double value;
    int has_timestamp;
    int64_t timestamp_ms;           /* only when has_timestamp */
    unsigned line;                  /* 1-based line of the sample */
};

/* Where and why a parse failed. Lines and columns are 1-based; a column counts bytes. */
struct lbw_promtext_error {
    unsigned line;
    unsigned column;
    char reason[160];
};

/* Receives one sample. Returns 0 to go on; any other value stops the parse. */
typedef int (*lbw_promtext_sample_fn)(void *arg, const struct lbw_promtext_sample *s);

/* Parses text[0..len) (need not be NUL-terminated) and calls fn for each sample in order.
 * Returns 0 when the whole text was parsed; -1 on malformed input or a limit, with *err
 * filled (err may be NULL) and fn having seen the samples before the bad line; 1 when fn
 * stopped the parse. */
int lbw_promtext_parse(const char *text, size_t len, lbw_promtext_sample_fn fn, void *arg,
                       struct lbw_promtext_error *err);

/* "counter", "gauge", "histogram", "summary" or "untyped". */
const char *lbw_promtext_type_name(enum lbw_promtext_type t);

/* An allow-list of metric names: exact names ("haproxy_process_uptime_seconds") and
 * prefixes ending in '*' ("haproxy_backend_*"; "*" alone allows everything). A sample is
 * allowed when its name matches, or when its family does: allowing a histogram or summary
 * family allows its _bucket, _sum and _count samples. An empty list allows nothing. */
struct lbw_promtext_pattern {
    char *text;   /* without the '*' */
    size_t len;
    int prefix;   /* ended in '*' */
};

struct lbw_promtext_allow {
    struct lbw_promtext_pattern *items;
    size_t n;
};

/* Copies n patterns into *a. Returns 0, or -1 with a reason in err[errlen] (a pattern that
 * is empty, is not a valid metric name, has '*' other than at its end, or no memory). */
int lbw_promtext_allow_init(struct lbw_promtext_allow *a, const char *const *patterns,
                            size_t n, char *err, size_t errlen);

/* Checks one pattern as lbw_promtext_allow_init would. Returns 0, or -1 with the reason
 * alone in err[errlen] ("empty", "'*' is allowed only at the end", "not a metric name", "not
 * the start of a metric name", "out of memory"). */
int lbw_promtext_pattern_check(const char *pattern, char *err, size_t errlen);

/* lbwatch's own metric names: probe_* and lbwatch_*. A scrape never emits a sample under
 * one of them (it would shadow or mix with lbwatch's own series of the same name); see
 * lbw_promtext_emit_allowed. */
#define LBW_PROMTEXT_RESERVED "probe_*, lbwatch_*"

/* 1 if name is one of lbwatch's own (starts with probe_ or lbwatch_). */
int lbw_promtext_name_reserved(const char *name);

/* 1 if the pattern as written ("node_*", "lbw*", "probe_success", "*") matches some reserved
 * name: it names or starts with a reserved prefix, or is a '*' pattern whose text starts
 * one ("*", "p*", "probe*", "lbwatch_*"). */
int lbw_promtext_pattern_reserved(const char *pattern);

/* 1 if the name matches a pattern. */
int lbw_promtext_allow_name(const struct lbw_promtext_allow *a, const char *name);

/* 1 if the sample's name or family matches a pattern. */
int lbw_promtext_allow_sample(const struct lbw_promtext_allow *a,
                              const struct lbw_promtext_sample *s);

void lbw_promtext_allow_free(struct lbw_promtext_allow *a);

/* What lbw_promtext_emit_allowed did with a scrape. */
struct lbw_promtext_stats {
    uint64_t emitted;             /* allowed samples handed to the emitter */
    uint64_t skipped;             /* samples the allow-list did not allow */
    uint64_t rejected;            /* allowed samples that cannot be a series: a reserved
                                     name (lbw_promtext_name_reserved), with the emitter's
                                     base labels more than LBW_LABELS_MAX labels, or a key
                                     longer than LBW_KEY_MAX - 1 bytes */
    unsigned first_rejected_line; /* line of the first rejected sample, 0 if none */
    char first_rejected[160];     /* why it was rejected */
    struct lbw_promtext_error error;  /* the parse error when the call returned -1 */
};

/* Emits every allowed sample of a scrape as metric{base labels..., scraped labels...} =
 * value at the emitter's timestamp (scraped timestamps are ignored, as with Prometheus's
 * honor_timestamps: false: a probe's samples all carry its start time). Scraped labels with
 * an empty value are dropped (Prometheus treats them as absent); a scraped label whose name
 * is one of the base labels (target, vantage, probe, ...) is renamed exported_<name>, with
 * more exported_ prefixes while the new name is taken, as Prometheus does. A sample under a
 * reserved name (probe_*, lbwatch_*) is rejected whatever the allow-list says: lbwatch's own
 * series win as its base labels do.
 *
 * The text is parsed completely before anything is emitted: when it is malformed (or over a
 * parser limit) nothing is emitted, stats->error says why and the call returns -1, like a
 * failed scrape in Prometheus. Otherwise returns 0 and stats counts every sample as emitted,
 * skipped or rejected. */
int lbw_promtext_emit_allowed(const char *text, size_t len, const struct lbw_promtext_allow *a,
                              const struct lbw_emitter *e, struct lbw_promtext_stats *stats);

#endif
