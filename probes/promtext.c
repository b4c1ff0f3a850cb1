/* promtext.c - the Prometheus text format 0.0.4 parser, the allow-list and the emission of
 * allowed samples. See promtext.h for the grammar and the limit policy.
 *
 * The parser works line by line on the caller's buffer: it finds the line's end (no further
 * than LBW_PROMTEXT_LINE_MAX bytes ahead), rejects a NUL byte in it, then reads tokens with
 * a cursor that never passes the line's end. A sample's strings are unescaped into one
 * buffer sized for the longest line; the last HELP/TYPE family's name and help into others.
 * All of it lives in one heap block per parse.
 */
#include "probes/promtext.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A line's unescaped name, label names and values fit in its length, plus their NULs. */
#define SAMPLE_TEXT_MAX (LBW_PROMTEXT_LINE_MAX + 2 * LBW_PROMTEXT_LABELS_MAX + 2)
#define EXPORTED_PREFIX "exported_"

/* The family named by the last HELP or TYPE line. */
struct family {
    size_t namelen;                          /* 0: no HELP/TYPE line seen yet */
    enum lbw_promtext_type type;
    int has_help;
    char name[LBW_PROMTEXT_LINE_MAX + 1];
    char help[LBW_PROMTEXT_LINE_MAX + 1];
};

/* Which of its family's series a sample is. */
enum role { ROLE_OTHER, ROLE_BASE, ROLE_BUCKET };

struct parser {
    const char *text;
    size_t len;
    size_t pos;                              /* the cursor, never past line_end */
    size_t line_start;
    size_t line_end;                         /* the line's \n, or len */
    unsigned line;
    struct lbw_promtext_error *err;
    lbw_promtext_sample_fn fn;
    void *arg;
    struct lbw_promtext_sample s;
    size_t value_at[LBW_PROMTEXT_LABELS_MAX]; /* where each label value's quote opened */
    size_t used;                             /* bytes of text[] in use */
    char sample_text[SAMPLE_TEXT_MAX];
    char number[LBW_PROMTEXT_LINE_MAX + 1];  /* a NUL-terminated copy for strtod */
    struct family fam;
};

static const char *const type_names[] = {
    [LBW_PROMTEXT_UNTYPED] = "untyped",
    [LBW_PROMTEXT_COUNTER] = "counter",
    [LBW_PROMTEXT_GAUGE] = "gauge",
    [LBW_PROMTEXT_HISTOGRAM] = "histogram",
    [LBW_PROMTEXT_SUMMARY] = "summary",
};

const char *lbw_promtext_type_name(enum lbw_promtext_type t)
{
    if ((size_t)t >= sizeof(type_names) / sizeof(type_names[0]))
        return "untyped";
    return type_names[t];
}

/* --- cursor and errors ---------------------------------------------------------------------- */

static int at_eol(const struct parser *p)
{
    return p->pos >= p->line_end;
}

static char cur(const struct parser *p)
{
    return p->text[p->pos];
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static void skip_blanks(struct parser *p)
{
    while (!at_eol(p) && is_blank(cur(p)))
        p->pos++;
}

/* Records an error at byte offset at of the current line; returns -1. */
static int fail_at(struct parser *p, size_t at, const char *fmt, ...)
{
    va_list ap;
    p->err->line = p->line;
    p->err->column = (unsigned)(at - p->line_start + 1);
    va_start(ap, fmt);
    vsnprintf(p->err->reason, sizeof(p->err->reason), fmt, ap);
    va_end(ap);
    return -1;
}

/* What the byte at the cursor is, for "expected X, found Y". */
static void describe_cursor(const struct parser *p, char *out, size_t size)
{
    if (at_eol(p)) {
        snprintf(out, size, "the end of the line");
        return;
    }
    unsigned char c = (unsigned char)cur(p);
    if (c == '\r')
        snprintf(out, size, "a carriage return (lines must end in \\n alone)");
    else if (c > ' ' && c < 0x7f)
        snprintf(out, size, "'%c'", c);
    else
        snprintf(out, size, "byte 0x%02x", c);
}

/* An error at the cursor: "<expected>, found <what is there>". */
static int fail_expected(struct parser *p, const char *expected)
{
    char found[64];
    describe_cursor(p, found, sizeof(found));
    return fail_at(p, p->pos, "%s, found %s", expected, found);
}

/* The error for a carriage return inside a token, when there is one in [from, to). */
static int fail_on_cr(struct parser *p, size_t from, size_t to)
{
    const char *cr = memchr(p->text + from, '\r', to - from);
    if (!cr)
        return 0;
    return fail_at(p, (size_t)(cr - p->text), "carriage return: lines must end in \\n alone");
}

/* --- tokens --------------------------------------------------------------------------------- */

static int name_char(char c, int first, int metric)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
        return 1;
    if (metric && c == ':')
        return 1;
    return !first && c >= '0' && c <= '9';
}

/* Length of the metric (or label) name at the cursor; 0 if none starts there. */
static size_t name_length(const struct parser *p, int metric)
{
    size_t n = 0;
    while (p->pos + n < p->line_end && name_char(p->text[p->pos + n], n == 0, metric))
        n++;
    return n;
}

/* Moves the cursor to the next blank or the line's end; returns where the token started. */
static size_t token(struct parser *p)
{
    size_t start = p->pos;
    while (!at_eol(p) && !is_blank(cur(p)))
        p->pos++;
    return start;
}

/* Offset of the first byte of s[0..n) that is not part of valid UTF-8, or n. Overlong forms,
 * surrogates and code points above U+10FFFF are invalid, as in Go's utf8.Valid. */
static size_t utf8_invalid_at(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t extra;
        unsigned char lo = 0x80, hi = 0xbf;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            extra = 1;
        else if (c >= 0xe0 && c <= 0xef)
            extra = 2;
        else if (c >= 0xf0 && c <= 0xf4)
            extra = 3;
        else
            return i;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
        else if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
        if (extra > n - i - 1)
            return i;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return i;
        for (size_t k = 2; k <= extra; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xbf)
                return i;
        i += extra + 1;
    }
    return n;
}

static int ci_equal(const char *s, size_t n, const char *word)
{
    size_t i = 0;
    for (; i < n && word[i]; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != word[i])
            return 0;
    }
    return i == n && word[i] == '\0';
}

enum float_kind { FLOAT_INVALID, FLOAT_NUMBER, FLOAT_SPECIAL };

/* Classifies s[0..n) by Go's ParseFloat syntax as Prometheus uses it: decimal with optional
 * sign, point and exponent; Inf/Infinity with optional sign; NaN; no hex, no underscores. */
static enum float_kind float_syntax(const char *s, size_t n)
{
    size_t i = 0, digits = 0;
    int sign = n > 0 && (s[0] == '+' || s[0] == '-');
    i += (size_t)sign;
    if (ci_equal(s + i, n - i, "inf") || ci_equal(s + i, n - i, "infinity") ||
        (!sign && ci_equal(s, n, "nan")))
        return FLOAT_SPECIAL;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
        digits++;
    if (i < n && s[i] == '.')
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            digits++;
    if (digits == 0)
        return FLOAT_INVALID;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t exp_digits = 0;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            exp_digits++;
        if (exp_digits == 0)
            return FLOAT_INVALID;
    }
    return i == n ? FLOAT_NUMBER : FLOAT_INVALID;
}

/* Parses s[0..n) as a float. Returns 0, -1 if it is not one, -2 if a finite number overflows
 * a double. n is at most a line's length. */
static int parse_float(struct parser *p, const char *s, size_t n, double *out)
{
    enum float_kind kind = float_syntax(s, n);
    if (kind == FLOAT_INVALID || n > LBW_PROMTEXT_LINE_MAX)
        return -1;
    memcpy(p->number, s, n);
    p->number[n] = '\0';
    char *end = NULL;
    errno = 0;
    double v = strtod(p->number, &end);
    if (end != p->number + n)
        return -1;
    if (kind == FLOAT_NUMBER && isinf(v))
        return -2;
    *out = v;
    return 0;
}

/* Parses s[0..n) as an int64: an optional '-' and decimal digits. -1 bad syntax, -2 range. */
static int parse_int64(const char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    int neg = n > 0 && s[0] == '-';
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, v = 0;
    i += (size_t)neg;
    if (i == n)
        return -1;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (limit - d) / 10)
            return -2;
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

/* Copies n bytes into the sample's text as a string; NULL if it would not fit (it always
 * does: a line's strings are never longer than the line). */
static char *sample_string(struct parser *p, const char *src, size_t n)
{
    if (n + 1 > SAMPLE_TEXT_MAX - p->used)
        return NULL;
    char *dst = p->sample_text + p->used;
    memcpy(dst, src, n);
    dst[n] = '\0';
    p->used += n + 1;
    return dst;
}

/* --- metadata and comments ------------------------------------------------------------------ */

/* Makes name[0..n) the current family; a new name forgets the old family's type and help. */
static void family_select(struct parser *p, const char *name, size_t n)
{
    struct family *f = &p->fam;
    if (n == f->namelen && memcmp(f->name, name, n) == 0)
        return;
    memcpy(f->name, name, n);
    f->name[n] = '\0';
    f->namelen = n;
    f->type = LBW_PROMTEXT_UNTYPED;
    f->has_help = 0;
}

/* The rest of a HELP line: its text, unescaped into the family's help. */
static int help_text(struct parser *p)
{
    size_t from = p->pos, n = p->line_end - from;
    size_t bad = utf8_invalid_at((const unsigned char *)p->text + from, n);
    if (bad < n)
        return fail_at(p, from + bad, "HELP text is not valid UTF-8");
    size_t k = 0;
    for (size_t i = from; i < p->line_end; i++) {
        char c = p->text[i];
        if (c == '\\') {
            if (i + 1 == p->line_end)
                return fail_at(p, i, "backslash at the end of the HELP text");
            char e = p->text[++i];
            if (e == 'n')
                c = '\n';
            else if (e == '\\' || e == '"')
                c = e;
            else
                return fail_at(p, i - 1, "invalid escape in HELP text (only \\\\ and \\n)");
        }
        p->fam.help[k++] = c;
    }
    p->fam.help[k] = '\0';
    p->fam.has_help = 1;
    p->pos = p->line_end;
    return 0;
}

/* The rest of a TYPE line: one of the five type words, then nothing. */
static int type_word(struct parser *p)
{
    size_t at = token(p), n = p->pos - at;
    if (fail_on_cr(p, at, p->pos))
        return -1;
    if (n == 0)
        return fail_at(p, at, "missing metric type after the metric name");
    for (size_t t = 0; t < sizeof(type_names) / sizeof(type_names[0]); t++) {
        if (strlen(type_names[t]) == n && memcmp(type_names[t], p->text + at, n) == 0) {
            skip_blanks(p);
            if (!at_eol(p))
                return fail_expected(p, "expected the end of the line after the metric type");
            p->fam.type = (enum lbw_promtext_type)t;
            return 0;
        }
    }
    return fail_at(p, at, "unknown metric type \"%.*s\"", (int)(n > 32 ? 32 : n), p->text + at);
}

/* The word at the cursor is keyword and a blank follows it. */
static int keyword_here(const struct parser *p, const char *keyword)
{
    size_t n = strlen(keyword);
    return p->line_end - p->pos > n && memcmp(p->text + p->pos, keyword, n) == 0 &&
           is_blank(p->text[p->pos + n]);
}

/* A line starting with '#': HELP, TYPE or a comment. */
static int comment_line(struct parser *p)
{
    p->pos++;
    if (at_eol(p) || !is_blank(cur(p)))
        return 0; /* "#" alone or "#word": a comment, as Prometheus reads it */
    skip_blanks(p);
    int help = keyword_here(p, "HELP"), type = keyword_here(p, "TYPE");
    if (!help && !type)
        return 0;
    p->pos += 4;
    skip_blanks(p);
    size_t at = p->pos, n = name_length(p, 1);
    if (n == 0)
        return fail_expected(p, help ? "expected a metric name after HELP"
                                     : "expected a metric name after TYPE");
    p->pos += n;
    if (!at_eol(p) && !is_blank(cur(p)))
        return fail_expected(p, "expected a blank or the end of the line after the metric name");
    family_select(p, p->text + at, n);
    skip_blanks(p);
    return help ? help_text(p) : type_word(p);
}

/* --- samples -------------------------------------------------------------------------------- */

/* A quoted label value at the cursor, unescaped into the sample's text. */
static const char *label_value(struct parser *p)
{
    size_t open = p->pos++;
    char *dst = p->sample_text + p->used;
    size_t k = 0;
    for (;;) {
        if (at_eol(p)) {
            fail_at(p, open, "unterminated label value");
            return NULL;
        }
        char c = cur(p);
        if (c == '"')
            break;
        if (c == '\\') {
            if (p->pos + 1 >= p->line_end) {
                fail_at(p, open, "unterminated label value");
                return NULL;
            }
            char e = p->text[p->pos + 1];
            if (e == 'n')
                c = '\n';
            else if (e == '\\' || e == '"')
                c = e;
            else {
                fail_at(p, p->pos, "invalid escape in label value (only \\\\, \\\" and \\n)");
                return NULL;
            }
            p->pos++;
        }
        if (p->used + k + 1 >= SAMPLE_TEXT_MAX) {
            fail_at(p, open, "label value does not fit the parser's buffer");
            return NULL;
        }
        dst[k++] = c;
        p->pos++;
    }
    size_t raw = p->pos - open - 1;
    size_t bad = utf8_invalid_at((const unsigned char *)p->text + open + 1, raw);
    if (bad < raw) {
        fail_at(p, open + 1 + bad, "label value is not valid UTF-8");
        return NULL;
    }
    p->pos++; /* the closing quote */
    dst[k] = '\0';
    p->used += k + 1;
    return dst;
}

static int label_seen(const struct parser *p, const char *name, size_t n)
{
    for (size_t i = 0; i < p->s.nlabels; i++)
        if (strlen(p->s.labels[i].name) == n && memcmp(p->s.labels[i].name, name, n) == 0)
            return 1;
    return 0;
}

/* One name="value" pair at the cursor. */
static int label_pair(struct parser *p)
{
    size_t at = p->pos, n = name_length(p, 0);
    const char *src = p->text + at;
    if (n == 0)
        return fail_expected(p, "expected a label name or '}'");
    if (n == 8 && memcmp(src, "__name__", 8) == 0)
        return fail_at(p, at, "label name __name__ is reserved");
    if (label_seen(p, src, n))
        return fail_at(p, at, "duplicate label name \"%.*s\"", (int)(n > 64 ? 64 : n), src);
    if (p->s.nlabels == LBW_PROMTEXT_LABELS_MAX)
        return fail_at(p, at, "more than %d labels on one sample (lbwatch's limit)",
                       LBW_PROMTEXT_LABELS_MAX);
    p->pos += n;
    skip_blanks(p);
    if (at_eol(p) || cur(p) != '=')
        return fail_expected(p, "expected '=' after the label name");
    p->pos++;
    skip_blanks(p);
    if (at_eol(p) || cur(p) != '"')
        return fail_expected(p, "expected '\"' to open the label value");
    struct lbw_label *l = &p->s.labels[p->s.nlabels];
    p->value_at[p->s.nlabels] = p->pos;
    l->name = sample_string(p, src, n);
    if (!l->name)
        return fail_at(p, at, "label name does not fit the parser's buffer");
    l->value = label_value(p);
    if (!l->value)
        return -1;
    p->s.nlabels++;
    return 0;
}

/* The label set after '{': pairs separated by commas, one trailing comma allowed, '}'. */
static int label_set(struct parser *p)
{
    for (;;) {
        skip_blanks(p);
        if (!at_eol(p) && cur(p) == '}') {
            p->pos++;
            return 0;
        }
        if (label_pair(p) != 0)
            return -1;
        skip_blanks(p);
        if (!at_eol(p) && cur(p) == ',') {
            p->pos++;
            continue;
        }
        if (!at_eol(p) && cur(p) == '}') {
            p->pos++;
            return 0;
        }
        return fail_expected(p, "expected ',' or '}' after the label value");
    }
}

/* The value token, then an optional timestamp, then the line's end. */
static int value_and_timestamp(struct parser *p)
{
    if (at_eol(p))
        return fail_expected(p, "expected a value");
    size_t at = token(p), n = p->pos - at;
    if (fail_on_cr(p, at, p->pos))
        return -1;
    int rc = parse_float(p, p->text + at, n, &p->s.value);
    if (rc == -2)
        return fail_at(p, at, "value \"%.*s\" is out of range", (int)(n > 40 ? 40 : n),
                       p->text + at);
    if (rc != 0)
        return fail_at(p, at, "invalid value \"%.*s\"", (int)(n > 40 ? 40 : n), p->text + at);
    skip_blanks(p);
    if (at_eol(p))
        return 0;
    at = token(p);
    n = p->pos - at;
    if (fail_on_cr(p, at, p->pos))
        return -1;
    rc = parse_int64(p->text + at, n, &p->s.timestamp_ms);
    if (rc == -2)
        return fail_at(p, at, "timestamp \"%.*s\" is out of the int64 range",
                       (int)(n > 40 ? 40 : n), p->text + at);
    if (rc != 0)
        return fail_at(p, at, "invalid timestamp \"%.*s\" (expected integer milliseconds)",
                       (int)(n > 40 ? 40 : n), p->text + at);
    p->s.has_timestamp = 1;
    skip_blanks(p);
    if (!at_eol(p))
        return fail_expected(p, "expected the end of the line after the timestamp");
    return 0;
}

/* Sets the sample's family, type and help from the current family; returns its role. */
static enum role classify(struct parser *p)
{
    const struct family *f = &p->fam;
    struct lbw_promtext_sample *s = &p->s;
    size_t n = strlen(s->name);
    enum role role = ROLE_OTHER;

    s->family = s->name;
    s->type = LBW_PROMTEXT_UNTYPED;
    s->help = NULL;
    if (f->namelen == 0 || n < f->namelen || memcmp(s->name, f->name, f->namelen) != 0)
        return ROLE_OTHER;
    const char *suffix = s->name + f->namelen;
    int hist = f->type == LBW_PROMTEXT_HISTOGRAM, summ = f->type == LBW_PROMTEXT_SUMMARY;
    if (*suffix == '\0')
        role = ROLE_BASE;
    else if (hist && strcmp(suffix, "_bucket") == 0)
        role = ROLE_BUCKET;
    else if ((hist || summ) && (strcmp(suffix, "_sum") == 0 || strcmp(suffix, "_count") == 0))
        role = ROLE_OTHER;
    else
        return ROLE_OTHER;
    s->family = f->name;
    s->type = f->type;
    s->help = f->has_help ? f->help : NULL;
    return role;
}

/* A histogram bucket's "le" or a summary quantile's "quantile" label: present and a float. */
static int check_bound_label(struct parser *p, const char *label, size_t name_at)
{
    for (size_t i = 0; i < p->s.nlabels; i++) {
        if (strcmp(p->s.labels[i].name, label) != 0)
            continue;
        const char *v = p->s.labels[i].value;
        double ignored;
        if (parse_float(p, v, strlen(v), &ignored) != 0)
            return fail_at(p, p->value_at[i], "%s label value \"%.40s\" is not a number", label,
                           v);
        return 0;
    }
    return fail_at(p, name_at, "%s sample of %s \"%s\" without a \"%s\" label",
                   strcmp(label, "le") == 0 ? "bucket" : "quantile",
                   lbw_promtext_type_name(p->s.type), p->s.family, label);
}

/* A sample line; the cursor is on its first non-blank byte. */
static int sample_line(struct parser *p)
{
    struct lbw_promtext_sample *s = &p->s;
    size_t name_at = p->pos, n = name_length(p, 1);

    p->used = 0;
    s->nlabels = 0;
    s->has_timestamp = 0;
    s->timestamp_ms = 0;
    s->line = p->line;
    if (n == 0)
        return fail_expected(p, "expected a metric name");
    p->pos += n;
    if (!at_eol(p) && !is_blank(cur(p)) && cur(p) != '{')
        return fail_expected(p, "expected a blank or '{' after the metric name");
    s->name = sample_string(p, p->text + name_at, n);
    if (!s->name)
        return fail_at(p, name_at, "metric name does not fit the parser's buffer");
    skip_blanks(p);
    if (!at_eol(p) && cur(p) == '{') {
        p->pos++;
        if (label_set(p) != 0)
            return -1;
        skip_blanks(p);
    }
    if (value_and_timestamp(p) != 0)
        return -1;
    enum role role = classify(p);
    if (role == ROLE_BUCKET && check_bound_label(p, "le", name_at) != 0)
        return -1;
    if (role == ROLE_BASE && s->type == LBW_PROMTEXT_SUMMARY &&
        check_bound_label(p, "quantile", name_at) != 0)
        return -1;
    return p->fn(p->arg, s) != 0 ? 1 : 0;
}

/* Finds the next line's end, checks its length and bytes, and parses it. */
static int parse_line(struct parser *p)
{
    size_t avail = p->len - p->pos;
    size_t scan = avail < LBW_PROMTEXT_LINE_MAX + 1 ? avail : LBW_PROMTEXT_LINE_MAX + 1;
    const char *nl = memchr(p->text + p->pos, '\n', scan);

    p->line++;
    p->line_start = p->pos;
    if (!nl && avail > LBW_PROMTEXT_LINE_MAX)
        return fail_at(p, p->pos + LBW_PROMTEXT_LINE_MAX, "line longer than %d bytes",
                       LBW_PROMTEXT_LINE_MAX);
    p->line_end = nl ? (size_t)(nl - p->text) : p->len;
    const char *nul = memchr(p->text + p->pos, '\0', p->line_end - p->pos);
    if (nul)
        return fail_at(p, (size_t)(nul - p->text), "NUL byte");

    int rc = 0;
    skip_blanks(p);
    if (!at_eol(p))
        rc = cur(p) == '#' ? comment_line(p) : sample_line(p);
    p->pos = nl ? p->line_end + 1 : p->len;
    return rc;
}

int lbw_promtext_parse(const char *text, size_t len, lbw_promtext_sample_fn fn, void *arg,
                       struct lbw_promtext_error *err)
{
    struct lbw_promtext_error ignored;
    if (!err)
        err = &ignored;
    memset(err, 0, sizeof(*err));
    if ((!text && len) || !fn) {
        snprintf(err->reason, sizeof(err->reason), "no text or no callback");
        return -1;
    }
    struct parser *p = malloc(sizeof(*p));
    if (!p) {
        snprintf(err->reason, sizeof(err->reason), "out of memory");
        return -1;
    }
    p->text = text;
    p->len = len;
    p->pos = 0;
    p->line = 0;
    p->err = err;
    p->fn = fn;
    p->arg = arg;
    p->fam.namelen = 0;
    p->fam.type = LBW_PROMTEXT_UNTYPED;
    p->fam.has_help = 0;
    int rc = 0;
    while (rc == 0 && p->pos < p->len)
        rc = parse_line(p);
    free(p);
    return rc;
}

/* --- the allow-list ------------------------------------------------------------------------- */

static int allow_fail(char *err, size_t errlen, size_t i, const char *pattern, const char *why)
{
    if (err && errlen)
        snprintf(err, errlen, "allow pattern %zu \"%.64s\": %s", i + 1, pattern, why);
    return -1;
}

/* Why pattern is not one, or NULL. The checks need the text without its '*' as a string. */
static const char *pattern_fault(const char *pattern)
{
    size_t len = pattern ? strlen(pattern) : 0;
    if (len == 0)
        return "empty";
    int prefix = pattern[len - 1] == '*';
    size_t body = len - (size_t)prefix;
    if (memchr(pattern, '*', body))
        return "'*' is allowed only at the end";
    if (body == 0)
        return NULL;
    char *text = strndup(pattern, body);
    if (!text)
        return "out of memory";
    int valid = lbw_metric_name_valid(text);
    free(text);
    if (valid)
        return NULL;
    return prefix ? "not the start of a metric name" : "not a metric name";
}

int lbw_promtext_pattern_check(const char *pattern, char *err, size_t errlen)
{
    const char *why = pattern_fault(pattern);
    if (why && err && errlen)
        snprintf(err, errlen, "%s", why);
    return why ? -1 : 0;
}

/* Validates and copies one pattern into *out. */
static int pattern_init(struct lbw_promtext_pattern *out, const char *pattern, size_t i,
                        char *err, size_t errlen)
{
    const char *why = pattern_fault(pattern);
    if (why)
        return allow_fail(err, errlen, i, pattern ? pattern : "", why);
    size_t len = strlen(pattern);
    int prefix = pattern[len - 1] == '*';
    size_t body = len - (size_t)prefix;
    char *text = strndup(pattern, body);
    if (!text)
        return allow_fail(err, errlen, i, pattern, "out of memory");
    out->text = text;
    out->len = body;
    out->prefix = prefix;
    return 0;
}

static const char *const reserved_prefixes[] = {"probe_", "lbwatch_"};

int lbw_promtext_name_reserved(const char *name)
{
    for (size_t i = 0; i < sizeof(reserved_prefixes) / sizeof(reserved_prefixes[0]); i++)
        if (strncmp(name, reserved_prefixes[i], strlen(reserved_prefixes[i])) == 0)
            return 1;
    return 0;
}

int lbw_promtext_pattern_reserved(const char *pattern)
{
    size_t len = strlen(pattern);
    int prefix = len > 0 && pattern[len - 1] == '*';
    size_t body = len - (size_t)prefix;
    for (size_t i = 0; i < sizeof(reserved_prefixes) / sizeof(reserved_prefixes[0]); i++) {
        const char *r = reserved_prefixes[i];
        size_t rlen = strlen(r);
        if (body >= rlen && strncmp(pattern, r, rlen) == 0)
            return 1;   /* a reserved name, or a prefix of reserved names only */
        if (prefix && body < rlen && strncmp(r, pattern, body) == 0)
            return 1;   /* a prefix that reserved names start with */
    }
    return 0;
}

int lbw_promtext_allow_init(struct lbw_promtext_allow *a, const char *const *patterns,
                            size_t n, char *err, size_t errlen)
{
    a->items = NULL;
    a->n = 0;
    if (n == 0)
        return 0;
    a->items = calloc(n, sizeof(a->items[0]));
    if (!a->items) {
        if (err && errlen)
            snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (pattern_init(&a->items[a->n], patterns[i], i, err, errlen) != 0) {
            lbw_promtext_allow_free(a);
            return -1;
        }
        a->n++;
    }
    return 0;
}

int lbw_promtext_allow_name(const struct lbw_promtext_allow *a, const char *name)
{
    for (size_t i = 0; i < a->n; i++) {
        const struct lbw_promtext_pattern *pt = &a->items[i];
        if (pt->prefix ? strncmp(name, pt->text, pt->len) == 0 : strcmp(name, pt->text) == 0)
            return 1;
    }
    return 0;
}

int lbw_promtext_allow_sample(const struct lbw_promtext_allow *a,
                              const struct lbw_promtext_sample *s)
{
    if (lbw_promtext_allow_name(a, s->name))
        return 1;
    return s->family != s->name && strcmp(s->family, s->name) != 0 &&
           lbw_promtext_allow_name(a, s->family);
}

void lbw_promtext_allow_free(struct lbw_promtext_allow *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->items[i].text);
    free(a->items);
    a->items = NULL;
    a->n = 0;
}

/* --- emission ------------------------------------------------------------------------------- */

struct emission {
    const struct lbw_promtext_allow *allow;
    const struct lbw_emitter *e;
    struct lbw_promtext_stats *stats;
};

/* Renamed label names for one sample: each is some EXPORTED_PREFIXes and the original. */
struct rename_space {
    char text[LBW_KEY_MAX];
    size_t used;
};

static int no_op(void *arg, const struct lbw_promtext_sample *s)
{
    (void)arg;
    (void)s;
    return 0;
}

static void reject(struct lbw_promtext_stats *st, const struct lbw_promtext_sample *s,
                   const char *fmt, ...)
{
    st->rejected++;
    if (st->first_rejected_line)
        return;
    char why[92];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    st->first_rejected_line = s->line;
    snprintf(st->first_rejected, sizeof(st->first_rejected), "%.64s: %s", s->name, why);
}

static int base_has(const struct lbw_emitter *e, const char *name)
{
    for (size_t i = 0; i < e->nbase; i++)
        if (e->base[i].value && strcmp(e->base[i].name, name) == 0)
            return 1;
    return 0;
}

/* A name is taken by a base label, a scraped label with a value, or a label chosen so far. */
static int name_taken(const struct lbw_emitter *e, const struct lbw_promtext_sample *s,
                      const struct lbw_label *chosen, size_t nchosen, const char *name)
{
    if (base_has(e, name))
        return 1;
    for (size_t i = 0; i < s->nlabels; i++)
        if (s->labels[i].value[0] && strcmp(s->labels[i].name, name) == 0)
            return 1;
    for (size_t i = 0; i < nchosen; i++)
        if (strcmp(chosen[i].name, name) == 0)
            return 1;
    return 0;
}

/* exported_<name>, with more prefixes while taken. NULL when it outgrows the space. */
static const char *exported_name(struct rename_space *rs, const struct lbw_emitter *e,
                                 const struct lbw_promtext_sample *s,
                                 const struct lbw_label *chosen, size_t nchosen,
                                 const char *name)
{
    size_t plen = strlen(EXPORTED_PREFIX), nlen = strlen(name);
    for (size_t k = 1;; k++) {
        size_t total = k * plen + nlen;
        if (total + 1 > sizeof(rs->text) - rs->used)
            return NULL;
        char *dst = rs->text + rs->used;
        for (size_t i = 0; i < k; i++)
            memcpy(dst + i * plen, EXPORTED_PREFIX, plen);
        memcpy(dst + k * plen, name, nlen + 1);
        if (!name_taken(e, s, chosen, nchosen, dst)) {
            rs->used += total + 1;
            return dst;
        }
    }
}

static int emit_one(void *arg, const struct lbw_promtext_sample *s)
{
    struct emission *em = arg;
    const struct lbw_emitter *e = em->e;
    struct lbw_label extra[LBW_LABELS_MAX];
    struct rename_space rs = {.used = 0};
    size_t nextra = 0;

    if (!lbw_promtext_allow_sample(em->allow, s)) {
        em->stats->skipped++;
        return 0;
    }
    if (lbw_promtext_name_reserved(s->name)) {
        reject(em->stats, s, "a name of lbwatch's own (" LBW_PROMTEXT_RESERVED ")");
        return 0;
    }
    for (size_t i = 0; i < s->nlabels; i++) {
        const char *name = s->labels[i].name;
        if (s->labels[i].value[0] == '\0')
            continue;
        if (base_has(e, name)) {
            name = exported_name(&rs, e, s, extra, nextra, name);
            if (!name) {
                reject(em->stats, s, "label %.32s renamed beyond the key size",
                       s->labels[i].name);
                return 0;
            }
        }
        if (e->nbase + nextra >= LBW_LABELS_MAX) {
            reject(em->stats, s, "more than %d labels with the base labels", LBW_LABELS_MAX);
            return 0;
        }
        extra[nextra].name = name;
        extra[nextra].value = s->labels[i].value;
        nextra++;
    }
    if (lbw_emitn(e, s->name, extra, nextra, s->value) != 0) {
        reject(em->stats, s, "series key longer than %d bytes", LBW_KEY_MAX - 1);
        return 0;
    }
    em->stats->emitted++;
    return 0;
}

int lbw_promtext_emit_allowed(const char *text, size_t len, const struct lbw_promtext_allow *a,
                              const struct lbw_emitter *e, struct lbw_promtext_stats *stats)
{
    struct emission em = {.allow = a, .e = e, .stats = stats};

    memset(stats, 0, sizeof(*stats));
    if (lbw_promtext_parse(text, len, no_op, NULL, &stats->error) != 0)
        return -1;
    if (lbw_promtext_parse(text, len, emit_one, &em, &stats->error) != 0)
        return -1;
    return 0;
}
