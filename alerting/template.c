/* template.c - annotation templates: the grammar, its checker and renderer, and the value
 * formats. See template.h.
 *
 * One walker parses a template for both lbw_template_check() and lbw_template_render(), so
 * what the check accepts is exactly what rendering understands. Parsing works on the
 * template in place (no allocation); rendering writes into the caller's buffer only. */
#include "alerting/template.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NUM_MAX 400     /* longest formatted number: "%.20f" of 1e308 */
#define PREC_MAX 20     /* largest N in %.Nf */

/* --- value formats ------------------------------------------------------------------------ */

static char *format_nonfinite(double v, char *buf, size_t len)
{
    snprintf(buf, len, "%s", isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf");
    return buf;
}

/* Go's %v of a float64: the shortest digits that read back as v, in exponent form when the
 * exponent is below -4 or at least 6 ("1.7e+09", "0.0001", "123456"). */
char *lbw_format_value(double v, char *buf, size_t len)
{
    char e[40];
    int digits, exp;

    if (!isfinite(v))
        return format_nonfinite(v, buf, len);
    for (digits = 1; digits < 17; digits++) {
        snprintf(e, sizeof(e), "%.*e", digits - 1, v);
        if (strtod(e, NULL) == v)
            break;
    }
    snprintf(e, sizeof(e), "%.*e", digits - 1, v);
    exp = atoi(strchr(e, 'e') + 1);
    if (exp < -4 || exp >= 6)
        snprintf(buf, len, "%s", e);
    else
        snprintf(buf, len, "%.*f", digits - 1 - exp > 0 ? digits - 1 - exp : 0, v);
    return buf;
}

/* Prometheus' humanize: 4 significant digits with an SI prefix. */
char *lbw_humanize(double v, char *buf, size_t len)
{
    static const char big[] = "kMGTPEZY", small[] = "munpfazy";
    char prefix[2] = "";

    if (!isfinite(v))
        return format_nonfinite(v, buf, len);
    if (fabs(v) >= 1) {
        for (size_t i = 0; i < sizeof(big) - 1 && fabs(v) >= 1000; i++) {
            prefix[0] = big[i];
            v /= 1000;
        }
    } else {
        for (size_t i = 0; i < sizeof(small) - 1 && v != 0 && fabs(v) < 1; i++) {
            prefix[0] = small[i];
            v *= 1000;
        }
    }
    snprintf(buf, len, "%.4g%s", v, prefix);
    return buf;
}

/* "Nu Mv" for the two largest units, leaving out a second part that is zero. */
static void two_units(char *buf, size_t len, const char *sign, long long a, char ua, long long b,
                      char ub)
{
    if (b)
        snprintf(buf, len, "%s%lld%c %lld%c", sign, a, ua, b, ub);
    else
        snprintf(buf, len, "%s%lld%c", sign, a, ua);
}

char *lbw_humanize_duration(double v, char *buf, size_t len)
{
    const char *sign = v < 0 ? "-" : "";
    double a = fabs(v);

    if (!isfinite(v))
        return format_nonfinite(v, buf, len);
    if (a == 0) {
        snprintf(buf, len, "0s");
    } else if (a < 1) {
        char h[32];
        lbw_humanize(v, h, sizeof(h));
        snprintf(buf, len, "%ss", h);
    } else if (a < 60 || a >= 1e15) {
        snprintf(buf, len, "%s%.4gs", sign, a);
    } else {
        long long d = (long long)a;
        if (d >= 86400)
            two_units(buf, len, sign, d / 86400, 'd', d / 3600 % 24, 'h');
        else if (d >= 3600)
            two_units(buf, len, sign, d / 3600, 'h', d / 60 % 60, 'm');
        else
            two_units(buf, len, sign, d / 60, 'm', d % 60, 's');
    }
    return buf;
}

/* --- parsing -------------------------------------------------------------------------------- */

enum fn { FN_NONE, FN_HUMANIZE, FN_HUMANIZE_DURATION, FN_PRINTF };
enum arg { ARG_VALUE, ARG_ALERTNAME, ARG_LABEL };

struct action {
    enum fn fn;
    enum arg arg;
    const char *label;          /* ARG_LABEL: the name, labellen bytes */
    size_t labellen;
    const char *fmt;            /* FN_PRINTF: the string between the quotes, escapes kept */
    size_t fmtlen;
};

struct parser {
    const char *t;
    size_t len;
    size_t pos;
    size_t open;                /* offset of the current action's {{ */
    const char *why;
    size_t at;
    char whybuf[LBW_TEMPLATE_WHY_MAX];
};

static int fail_at(struct parser *p, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_at(struct parser *p, size_t at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->whybuf, sizeof(p->whybuf), fmt, ap);
    va_end(ap);
    p->why = p->whybuf;
    p->at = at;
    return -1;
}

static int at_end(const struct parser *p) { return p->pos >= p->len; }
static char peek(const struct parser *p) { return at_end(p) ? '\0' : p->t[p->pos]; }

static int fail_unclosed(struct parser *p)
{
    return fail_at(p, p->open, "unclosed action: missing }}");
}

/* Describes the byte at the cursor for "unexpected X" messages. */
static int fail_unexpected(struct parser *p, const char *where)
{
    unsigned char c = (unsigned char)peek(p);
    if (at_end(p))
        return fail_unclosed(p);
    if (c == '-' && ((p->pos > 0 && p->t[p->pos - 1] == '{') ||
                     (p->pos + 1 < p->len && p->t[p->pos + 1] == '}')))
        return fail_at(p, p->pos, "trim markers ({{- and -}}) are not supported");
    if (c > 0x20 && c < 0x7f)
        return fail_at(p, p->pos, "unexpected '%c' %s", c, where);
    return fail_at(p, p->pos, "unexpected byte 0x%02x %s", c, where);
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static int ident_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static int ident_char(char c) { return ident_start(c) || (c >= '0' && c <= '9'); }

static size_t skip_space(struct parser *p)
{
    size_t start = p->pos;
    while (!at_end(p) && is_space(p->t[p->pos]))
        p->pos++;
    return p->pos - start;
}

/* An identifier at the cursor: its length (0 if there is none). */
static size_t ident(struct parser *p)
{
    size_t start = p->pos;
    if (!ident_start(peek(p)))
        return 0;
    while (!at_end(p) && ident_char(p->t[p->pos]))
        p->pos++;
    return p->pos - start;
}

static int word_is(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && memcmp(s, word, n) == 0;
}

/* $value, $alertname or $labels.NAME */
static int parse_arg(struct parser *p, struct action *a)
{
    size_t at = p->pos;
    if (peek(p) != '$')
        return at_end(p) ? fail_unclosed(p)
                         : fail_at(p, at, "expected $value, $alertname or $labels.NAME");
    p->pos++;
    const char *name = p->t + p->pos;
    size_t n = ident(p);
    if (word_is(name, n, "value")) {
        a->arg = ARG_VALUE;
    } else if (word_is(name, n, "alertname")) {
        a->arg = ARG_ALERTNAME;
    } else if (word_is(name, n, "labels")) {
        if (peek(p) != '.')
            return fail_at(p, p->pos, "expected .NAME after $labels");
        p->pos++;
        a->arg = ARG_LABEL;
        a->label = p->t + p->pos;
        a->labellen = ident(p);
        if (a->labellen == 0)
            return fail_at(p, p->pos, "expected a label name after $labels.");
    } else {
        return fail_at(p, at, "unknown variable \"$%.*s\" (use $value, $alertname or "
                              "$labels.NAME)", (int)(n > 40 ? 40 : n), name);
    }
    return 0;
}

/* Checks a printf format's one verb: %.Nf or %d (for $value) or %s; %% is text. Returns the
 * verb's conversion character, or 0 with the error recorded. */
static char check_format(struct parser *p, const struct action *a, size_t fmtat)
{
    char verb = 0;
    for (size_t i = 0; i < a->fmtlen; i++) {
        const char *f = a->fmt + i;
        size_t left = a->fmtlen - i, at = fmtat + i;
        if (f[0] == '\\') {
            i++;
            continue;
        }
        if (f[0] != '%')
            continue;
        if (left >= 2 && f[1] == '%') {
            i++;
            continue;
        }
        size_t vlen = 0;
        if (left >= 2 && (f[1] == 'd' || f[1] == 's'))
            vlen = 2;
        else if (left >= 4 && f[1] == '.' && f[2] >= '0' && f[2] <= '9' && f[3] == 'f')
            vlen = 4;
        else if (left >= 5 && f[1] == '.' && f[2] >= '0' && f[2] <= '9' && f[3] >= '0' &&
                 f[3] <= '9' && f[4] == 'f' && (f[2] - '0') * 10 + (f[3] - '0') <= PREC_MAX)
            vlen = 5;
        if (vlen == 0)
            return fail_at(p, at, "unsupported printf verb (use %%.Nf with N up to %d, %%d or "
                                  "%%s)", PREC_MAX), 0;
        if (verb)
            return fail_at(p, at, "printf format has more than one verb"), 0;
        verb = f[vlen - 1];
        i += vlen - 1;
    }
    if (!verb)
        fail_at(p, fmtat - 1, "printf format has no verb (use %%.Nf, %%d or %%s)");
    return verb;
}

/* A double-quoted string with \\, \" and \n escapes; a->fmt keeps it as written. */
static int parse_string(struct parser *p, struct action *a)
{
    if (peek(p) != '"')
        return at_end(p) ? fail_unclosed(p)
                         : fail_at(p, p->pos, "printf needs a quoted format string");
    size_t start = ++p->pos;
    for (;;) {
        if (at_end(p))
            return fail_at(p, start - 1, "unterminated string");
        char c = p->t[p->pos];
        if (c == '"')
            break;
        if (c == '\n')
            return fail_at(p, start - 1, "unterminated string");
        if (c == '\\') {
            char e = p->pos + 1 < p->len ? p->t[p->pos + 1] : '\0';
            if (e != '\\' && e != '"' && e != 'n')
                return fail_at(p, p->pos, "unsupported escape in string (use \\\\, \\\" or \\n)");
            p->pos++;
        }
        p->pos++;
    }
    a->fmt = p->t + start;
    a->fmtlen = p->pos - start;
    p->pos++;
    return 0;
}

static int parse_printf(struct parser *p, struct action *a)
{
    if (skip_space(p) == 0)
        return fail_unexpected(p, "after printf (expected a space)");
    size_t fmtat = p->pos + 1;
    if (parse_string(p, a) < 0)
        return -1;
    char verb = check_format(p, a, fmtat);
    if (!verb)
        return -1;
    if (skip_space(p) == 0)
        return fail_unexpected(p, "after the format (expected a space and an argument)");
    size_t argat = p->pos;
    if (parse_arg(p, a) < 0)
        return -1;
    if ((verb == 'f' || verb == 'd') && a->arg != ARG_VALUE)
        return fail_at(p, argat, "%%%s formats a number: use $value", verb == 'f' ? ".Nf" : "d");
    return 0;
}

/* FUNC ARG, or ARG alone. */
static int parse_call(struct parser *p, struct action *a)
{
    size_t at = p->pos;
    const char *name = p->t + p->pos;
    size_t n = ident(p);

    if (n == 0)
        return peek(p) == '$' ? parse_arg(p, a) : fail_unexpected(p, "in action");
    if (word_is(name, n, "printf")) {
        a->fn = FN_PRINTF;
        return parse_printf(p, a);
    }
    if (word_is(name, n, "humanize"))
        a->fn = FN_HUMANIZE;
    else if (word_is(name, n, "humanizeDuration"))
        a->fn = FN_HUMANIZE_DURATION;
    else
        return fail_at(p, at, "unknown function \"%.*s\" (use humanize, humanizeDuration or "
                              "printf)", (int)(n > 40 ? 40 : n), name);
    if (skip_space(p) == 0)
        return fail_unexpected(p, "after the function name (expected a space)");
    size_t argat = p->pos;
    if (parse_arg(p, a) < 0)
        return -1;
    if (a->arg != ARG_VALUE)
        return fail_at(p, argat, "%.*s takes $value", (int)n, name);
    return 0;
}

/* The action whose {{ is at p->open; p->pos is just after it. Leaves p->pos after its }}. */
static int parse_action(struct parser *p, struct action *a)
{
    memset(a, 0, sizeof(*a));
    skip_space(p);
    if (p->pos + 1 < p->len && p->t[p->pos] == '}' && p->t[p->pos + 1] == '}')
        return fail_at(p, p->open, "empty action");
    if (parse_call(p, a) < 0)
        return -1;
    skip_space(p);
    if (p->pos + 1 < p->len && p->t[p->pos] == '}' && p->t[p->pos + 1] == '}') {
        p->pos += 2;
        return 0;
    }
    return fail_unexpected(p, "in action (expected }})");
}

/* What a walk does with the pieces. */
struct sink {
    void (*text)(void *arg, const char *s, size_t n);
    void (*action)(void *arg, const struct action *a);
    void *arg;
};

/* The offset of the first "{{" or "}}" at or after from, or len. */
static size_t next_brace(const char *t, size_t len, size_t from)
{
    for (size_t i = from; i + 1 < len; i++)
        if ((t[i] == '{' && t[i + 1] == '{') || (t[i] == '}' && t[i + 1] == '}'))
            return i;
    return len;
}

/* Parses p->t, handing text and actions to sink (if any). Returns 0, or -1 with the error in
 * p and p->pos at the start of the piece that failed. */
static int walk(struct parser *p, const struct sink *sink)
{
    while (p->pos < p->len) {
        size_t b = next_brace(p->t, p->len, p->pos);
        if (sink && b > p->pos)
            sink->text(sink->arg, p->t + p->pos, b - p->pos);
        p->pos = b;
        if (b == p->len)
            break;
        if (p->t[b] == '}')
            return fail_at(p, b, "}} outside an action");
        struct action a;
        p->open = b;
        p->pos = b + 2;
        if (parse_action(p, &a) < 0) {
            p->pos = b;
            return -1;
        }
        if (sink)
            sink->action(sink->arg, &a);
    }
    return 0;
}

int lbw_template_check(const char *tmpl, char *why, size_t whylen, size_t *offset)
{
    struct parser p = {.t = tmpl, .len = strlen(tmpl)};

    if (p.len > LBW_TEMPLATE_MAX)
        fail_at(&p, LBW_TEMPLATE_MAX, "longer than %d bytes", LBW_TEMPLATE_MAX);
    else if (walk(&p, NULL) == 0)
        return 0;
    if (why && whylen)
        snprintf(why, whylen, "%s", p.why);
    if (offset)
        *offset = p.at;
    return -1;
}

/* --- rendering ------------------------------------------------------------------------------ */

struct out {
    char *buf;
    size_t cap;                 /* bytes of buf usable for text (its size minus the NUL) */
    size_t len;
    int cut;
    const struct lbw_key_parsed *labels;
    double value;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->cut)
        return;
    if (n > o->cap - o->len) {
        n = o->cap - o->len;
        o->cut = 1;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void put_str(struct out *o, const char *s) { put(o, s, strlen(s)); }

static void put_text(void *arg, const char *s, size_t n) { put(arg, s, n); }

/* Drops a UTF-8 sequence that the cut left incomplete at the end. */
static void trim_partial_utf8(struct out *o)
{
    size_t i = o->len, need;
    while (i > 0 && o->len - i < 3 && ((unsigned char)o->buf[i - 1] & 0xC0) == 0x80)
        i--;
    if (i == 0)
        return;
    unsigned char lead = (unsigned char)o->buf[i - 1];
    need = (lead & 0xE0) == 0xC0 ? 2 : (lead & 0xF0) == 0xE0 ? 3 : (lead & 0xF8) == 0xF0 ? 4 : 1;
    if (i - 1 + need > o->len)
        o->len = i - 1;
}

static const char *label_value(const struct out *o, const char *name, size_t n)
{
    if (!o->labels)
        return "";
    for (size_t i = 0; i < o->labels->nlabels; i++)
        if (word_is(name, n, o->labels->labels[i].name))
            return o->labels->labels[i].value;
    return "";
}

/* The argument as text (the value in Go's %v form). */
static const char *arg_text(const struct out *o, const struct action *a, char *num, size_t len)
{
    if (a->arg == ARG_LABEL)
        return label_value(o, a->label, a->labellen);
    if (a->arg == ARG_ALERTNAME)
        return label_value(o, "alertname", 9);
    return lbw_format_value(o->value, num, len);
}

static void put_verb(struct out *o, const struct action *a, const char *verb)
{
    char num[NUM_MAX];
    double v = o->value;

    if (verb[1] == 's') {
        put_str(o, arg_text(o, a, num, sizeof(num)));
    } else if (verb[1] == 'd') {
        if (isfinite(v) && fabs(v) < 9e18)
            snprintf(num, sizeof(num), "%lld", (long long)v);
        else
            lbw_format_value(v, num, sizeof(num));
        put_str(o, num);
    } else {
        int prec = atoi(verb + 2);
        if (isfinite(v))
            snprintf(num, sizeof(num), "%.*f", prec, v);
        else
            lbw_format_value(v, num, sizeof(num));
        put_str(o, num);
    }
}

/* The printf format (checked by the parser) with its escapes undone and its verb filled. */
static void put_printf(struct out *o, const struct action *a)
{
    for (size_t i = 0; i < a->fmtlen; i++) {
        const char *f = a->fmt + i;
        if (f[0] == '\\') {
            put(o, f[1] == 'n' ? "\n" : f + 1, 1);
            i++;
        } else if (f[0] == '%' && f[1] == '%') {
            put(o, "%", 1);
            i++;
        } else if (f[0] == '%') {
            put_verb(o, a, f);
            i += f[1] == '.' ? (size_t)(f[3] == 'f' ? 3 : 4) : 1;
        } else {
            put(o, f, 1);
        }
    }
}

static void put_action(void *arg, const struct action *a)
{
    struct out *o = arg;
    char num[NUM_MAX];

    switch (a->fn) {
    case FN_NONE:
        put_str(o, arg_text(o, a, num, sizeof(num)));
        break;
    case FN_HUMANIZE:
        put_str(o, lbw_humanize(o->value, num, sizeof(num)));
        break;
    case FN_HUMANIZE_DURATION:
        put_str(o, lbw_humanize_duration(o->value, num, sizeof(num)));
        break;
    case FN_PRINTF:
        put_printf(o, a);
        break;
    }
}

size_t lbw_template_render(const char *tmpl, const struct lbw_key_parsed *labels, double value,
                           char *out, size_t outlen)
{
    struct out o = {out, outlen ? outlen - 1 : 0, 0, 0, labels, value};
    struct parser p = {.t = tmpl, .len = strlen(tmpl)};
    struct sink sink = {put_text, put_action, &o};

    if (outlen == 0)
        return 0;
    if (walk(&p, &sink) < 0)
        put(&o, p.t + p.pos, p.len - p.pos);
    if (o.cut)
        trim_partial_utf8(&o);
    out[o.len] = '\0';
    return o.len;
}
