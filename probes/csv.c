/* csv.c - HAProxy's CSV statistics, read by column name. See csv.h. */
#include "probes/csv.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int fail(const struct lbw_csv *c, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* "line N: reason" */
static int fail(const struct lbw_csv *c, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(err, errlen, "line %zu: ", c->line);
    if (n >= 0 && (size_t)n < errlen) {
        va_start(ap, fmt);
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* The length of the line end at p (1 for "\n", 2 for "\r\n"), or 0 when there is none. */
static size_t line_end_at(const struct lbw_csv *c, size_t p)
{
    if (p < c->len && c->text[p] == '\n')
        return 1;
    if (p + 1 < c->len && c->text[p] == '\r' && c->text[p + 1] == '\n')
        return 2;
    return 0;
}

/* Where a record is being unquoted to: fields beyond max are parsed but not kept. */
struct sink {
    size_t used;                /* bytes of row[] used */
    size_t nfields;             /* fields seen */
    size_t max;                 /* fields kept */
};

static int put_byte(struct lbw_csv *c, struct sink *s, char ch, char *err, size_t errlen)
{
    if (s->nfields >= s->max)
        return 0;
    if (s->used + 1 >= LBW_CSV_ROW_MAX)
        return fail(c, err, errlen, "row longer than %d bytes", LBW_CSV_ROW_MAX);
    c->row[s->used++] = ch;
    return 0;
}

/* A quoted field from just after its opening quote to just after its closing quote. */
static int read_quoted(struct lbw_csv *c, size_t *p, struct sink *s, char *err, size_t errlen)
{
    for (;;) {
        if (*p >= c->len)
            return fail(c, err, errlen, "unterminated quoted field");
        char ch = c->text[*p];
        if (ch == '"') {
            if (*p + 1 < c->len && c->text[*p + 1] == '"') {
                *p += 2;
            } else {
                (*p)++;
                return 0;
            }
        } else {
            if (ch == '\n')
                c->line++;
            (*p)++;
        }
        if (put_byte(c, s, ch, err, errlen) != 0)
            return -1;
    }
}

static int read_unquoted(struct lbw_csv *c, size_t *p, struct sink *s, char *err, size_t errlen)
{
    while (*p < c->len && c->text[*p] != ',' && !line_end_at(c, *p)) {
        if (c->text[*p] == '"')
            return fail(c, err, errlen, "quote inside an unquoted field");
        if (put_byte(c, s, c->text[(*p)++], err, errlen) != 0)
            return -1;
    }
    return 0;
}

/* Closes the field just read: NUL-terminates it and records where it is. */
static int end_field(struct lbw_csv *c, struct sink *s, size_t start, char *err, size_t errlen)
{
    if (s->nfields < s->max) {
        if (put_byte(c, s, '\0', err, errlen) != 0)
            return -1;
        c->off[s->nfields] = (unsigned short)start;
        c->flen[s->nfields] = (unsigned short)(s->used - 1 - start);
    }
    s->nfields++;
    return 0;
}

/* Reads the record starting at c->pos (a line, or more when a quoted field holds line
 * breaks) into row[], keeping at most max fields. */
static int read_record(struct lbw_csv *c, size_t max, char *err, size_t errlen)
{
    struct sink s = {0, 0, max};
    size_t p = c->pos;
    c->line++;
    for (;;) {
        size_t start = s.used;
        int rc = p < c->len && c->text[p] == '"' ? (p++, read_quoted(c, &p, &s, err, errlen))
                                                 : read_unquoted(c, &p, &s, err, errlen);
        if (rc != 0 || end_field(c, &s, start, err, errlen) != 0)
            return -1;
        if (p >= c->len)
            return fail(c, err, errlen, "truncated (no line end)");
        size_t eol = line_end_at(c, p);
        if (eol) {
            c->pos = p + eol;
            break;
        }
        if (c->text[p] != ',')
            return fail(c, err, errlen, "text after a closing quote");
        p++;
    }
    c->nfields = s.nfields < max ? s.nfields : max;
    return 0;
}

int lbw_csv_open(struct lbw_csv *c, const char *text, size_t len, char *err, size_t errlen)
{
    memset(c, 0, offsetof(struct lbw_csv, names));
    c->text = text;
    c->len = len;
    if (len < 2 || text[0] != '#' || text[1] != ' ') {
        c->line = 1;
        return fail(c, err, errlen, "no CSV header (a line starting with \"# \")");
    }
    c->pos = 2;
    if (read_record(c, LBW_CSV_COLS_MAX + 1, err, errlen) != 0)
        return -1;
    size_t n = c->nfields;
    if (n > 0 && c->flen[n - 1] == 0)
        n--; /* the empty name after the final ',' */
    if (n > LBW_CSV_COLS_MAX)
        return fail(c, err, errlen, "more than %d columns", LBW_CSV_COLS_MAX);
    for (size_t i = 0; i < n; i++) {
        if (c->flen[i] >= LBW_CSV_NAME_MAX || memchr(c->row + c->off[i], '\0', c->flen[i]))
            return fail(c, err, errlen, "column %zu: bad column name", i + 1);
        memcpy(c->names[i], c->row + c->off[i], (size_t)c->flen[i] + 1);
    }
    c->ncols = n;
    c->nfields = 0;
    return 0;
}

int lbw_csv_col(const struct lbw_csv *c, const char *name)
{
    for (size_t i = 0; i < c->ncols; i++)
        if (strcmp(c->names[i], name) == 0)
            return (int)i;
    return -1;
}

int lbw_csv_next(struct lbw_csv *c, char *err, size_t errlen)
{
    size_t eol;
    c->nfields = 0;
    while ((eol = line_end_at(c, c->pos)) != 0) {
        c->pos += eol;
        c->line++;
    }
    if (c->pos >= c->len)
        return 0;
    if (read_record(c, c->ncols, err, errlen) != 0) {
        c->pos = c->len;
        c->nfields = 0;
        return -1;
    }
    return 1;
}

const char *lbw_csv_field(const struct lbw_csv *c, int col, size_t *len)
{
    if (col < 0 || (size_t)col >= c->nfields)
        return NULL;
    if (len)
        *len = c->flen[col];
    return c->row + c->off[col];
}
