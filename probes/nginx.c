/* nginx.c - the stub_status parser and its samples. See nginx.h. */
#include "probes/nginx.h"

#include <stdarg.h>
#include <stdio.h>

/* A position in the body, with what is needed to report it. */
struct cursor {
    const char *text;
    size_t len;
    size_t pos;
    size_t line_start;
    unsigned line;
    char *err;
    size_t errlen;
};

static int at_end(const struct cursor *c)
{
    return c->pos >= c->len;
}

static int is_blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* Describes the byte at the cursor for an error message. */
static void describe_here(const struct cursor *c, char *out, size_t size)
{
    if (at_end(c)) {
        snprintf(out, size, "the end of the text");
        return;
    }
    unsigned char ch = (unsigned char)c->text[c->pos];
    if (ch == '\n')
        snprintf(out, size, "the end of the line");
    else if (ch == '\r')
        snprintf(out, size, "a carriage return (lines must end in \\n alone)");
    else if (ch == '\0')
        snprintf(out, size, "a NUL byte");
    else if (ch > ' ' && ch < 0x7f)
        snprintf(out, size, "'%c'", ch);
    else
        snprintf(out, size, "byte 0x%02x", ch);
}

/* Writes "line L, column C: <what>[, found <here>]" into the caller's buffer; returns -1. */
static int vfail(const struct cursor *c, int found, const char *fmt, va_list ap)
{
    char what[128], here[64];
    vsnprintf(what, sizeof(what), fmt, ap);
    if (!c->err || !c->errlen)
        return -1;
    if (found) {
        describe_here(c, here, sizeof(here));
        snprintf(c->err, c->errlen, "line %u, column %zu: %s, found %s", c->line,
                 c->pos - c->line_start + 1, what, here);
    } else {
        snprintf(c->err, c->errlen, "line %u, column %zu: %s", c->line,
                 c->pos - c->line_start + 1, what);
    }
    return -1;
}

/* An error at the cursor that says what was expected and what is there instead. */
static int fail_expected(const struct cursor *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(c, 1, fmt, ap);
    va_end(ap);
    return -1;
}

/* An error at the cursor that needs no "found". */
static int fail_here(const struct cursor *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(c, 0, fmt, ap);
    va_end(ap);
    return -1;
}

static void skip_blanks(struct cursor *c)
{
    while (!at_end(c) && is_blank(c->text[c->pos]))
        c->pos++;
}

/* At least one blank, then any more. */
static int separator(struct cursor *c, const char *before)
{
    if (at_end(c) || !is_blank(c->text[c->pos]))
        return fail_expected(c, "expected a space before %s", before);
    skip_blanks(c);
    return 0;
}

/* The exact word w at the cursor, followed by a blank, a line end or the end of the text.
 * A mismatch is reported at its first differing byte. */
static int word(struct cursor *c, const char *w)
{
    size_t start = c->pos, i = 0;
    while (w[i] && !at_end(c) && c->text[c->pos] == w[i]) {
        c->pos++;
        i++;
    }
    if (w[i]) {
        int err = fail_expected(c, "expected \"%s\"", w);
        c->pos = start;
        return err;
    }
    if (!at_end(c) && !is_blank(c->text[c->pos]) && c->text[c->pos] != '\n')
        return fail_expected(c, "expected a space or the end of the line after \"%s\"", w);
    return 0;
}

/* A run of decimal digits that fits in 64 bits, ended like a word. */
static int number(struct cursor *c, const char *what, uint64_t *out)
{
    size_t start = c->pos;
    uint64_t v = 0;
    if (at_end(c) || c->text[c->pos] < '0' || c->text[c->pos] > '9')
        return fail_expected(c, "expected the %s", what);
    while (!at_end(c) && c->text[c->pos] >= '0' && c->text[c->pos] <= '9') {
        unsigned d = (unsigned)(c->text[c->pos] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            c->pos = start;
            return fail_here(c, "the %s does not fit in 64 bits", what);
        }
        v = v * 10 + d;
        c->pos++;
    }
    if (!at_end(c) && !is_blank(c->text[c->pos]) && c->text[c->pos] != '\n')
        return fail_expected(c, "expected a space or the end of the line after the %s", what);
    *out = v;
    return 0;
}

/* Trailing blanks, then \n; on the last line the \n may be missing. */
static int end_of_line(struct cursor *c, int last)
{
    skip_blanks(c);
    if (last && at_end(c))
        return 0;
    if (at_end(c) || c->text[c->pos] != '\n')
        return fail_expected(c, "expected the end of the line");
    c->pos++;
    c->line++;
    c->line_start = c->pos;
    return 0;
}

/* "Active connections: N" */
static int active_line(struct cursor *c, struct lbw_nginx_stub *s)
{
    skip_blanks(c);
    if (word(c, "Active") || separator(c, "\"connections:\"") || word(c, "connections:") ||
        separator(c, "the active connection count") ||
        number(c, "active connection count", &s->active))
        return -1;
    return end_of_line(c, 0);
}

/* "server accepts handled requests" */
static int header_line(struct cursor *c)
{
    skip_blanks(c);
    if (word(c, "server") || separator(c, "\"accepts\"") || word(c, "accepts") ||
        separator(c, "\"handled\"") || word(c, "handled") || separator(c, "\"requests\"") ||
        word(c, "requests"))
        return -1;
    return end_of_line(c, 0);
}

/* " accepts handled requests" as three numbers */
static int counters_line(struct cursor *c, struct lbw_nginx_stub *s)
{
    skip_blanks(c);
    if (number(c, "accepts count", &s->accepts) || separator(c, "the handled count") ||
        number(c, "handled count", &s->handled) || separator(c, "the requests count") ||
        number(c, "requests count", &s->requests))
        return -1;
    return end_of_line(c, 0);
}

/* "Reading: N Writing: N Waiting: N" */
static int states_line(struct cursor *c, struct lbw_nginx_stub *s)
{
    skip_blanks(c);
    if (word(c, "Reading:") || separator(c, "the reading count") ||
        number(c, "reading count", &s->reading) || separator(c, "\"Writing:\"") ||
        word(c, "Writing:") || separator(c, "the writing count") ||
        number(c, "writing count", &s->writing) || separator(c, "\"Waiting:\"") ||
        word(c, "Waiting:") || separator(c, "the waiting count") ||
        number(c, "waiting count", &s->waiting))
        return -1;
    return end_of_line(c, 1);
}

int lbw_nginx_stub_parse(const char *text, size_t len, struct lbw_nginx_stub *out, char *err,
                         size_t errlen)
{
    struct cursor c = {.text = text, .len = len, .line = 1, .err = err, .errlen = errlen};
    struct lbw_nginx_stub s = {0};

    if (err && errlen)
        err[0] = '\0';
    if (!text || !out) {
        if (err && errlen)
            snprintf(err, errlen, "no text or no result to fill");
        return -1;
    }
    if (active_line(&c, &s) || header_line(&c) || counters_line(&c, &s) ||
        states_line(&c, &s))
        return -1;
    if (!at_end(&c))
        return fail_expected(&c, "expected the end of the text after the Waiting count");
    *out = s;
    return 0;
}

size_t lbw_nginx_stub_emit(const struct lbw_nginx_stub *s, const struct lbw_emitter *e)
{
    size_t failed = 0;
    failed += lbw_emit(e, "nginx_connections_active", (double)s->active) != 0;
    failed += lbw_emit(e, "nginx_connections_accepted", (double)s->accepts) != 0;
    failed += lbw_emit(e, "nginx_connections_handled", (double)s->handled) != 0;
    failed += lbw_emit(e, "nginx_http_requests_total", (double)s->requests) != 0;
    failed += lbw_emit(e, "nginx_connections_reading", (double)s->reading) != 0;
    failed += lbw_emit(e, "nginx_connections_writing", (double)s->writing) != 0;
    failed += lbw_emit(e, "nginx_connections_waiting", (double)s->waiting) != 0;
    return failed;
}
