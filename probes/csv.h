/* csv.h - a reader of HAProxy's CSV statistics (`show stat` on the stats socket, `;csv` on the
 * stats page), for untrusted input.
 *
 * The format: a header line "# name,name,...," naming every column, then one line per
 * object, fields separated by ',' and every line (the header too) ending with ",\n".
 * Columns are found by name, never by position: HAProxy appends columns between versions and
 * the columns after the "-" column (those of stats modules such as ssl and h2) differ with
 * the build and the configuration. A field is empty when it does not apply, and is quoted
 * the way HAProxy's csv_enc() quotes: between '"', with '"' doubled inside, when it holds a
 * ',', '"', a line break or leading or trailing blanks (such a field may span lines).
 *
 * The reader works on a buffer the caller keeps: the header's names point into it, and each
 * row is unquoted into the reader's own row buffer. Everything is bounds-checked: at most
 * LBW_CSV_COLS_MAX columns, LBW_CSV_ROW_MAX bytes per row; a line without its line end (a
 * truncated input), a quote in the middle of an unquoted field, text after a closing quote
 * or an unterminated quote is an error naming the line. A row with fewer fields than the
 * header lacks the rest (lbw_csv_field gives NULL); fields beyond the header are ignored.
 * It depends on nothing but libc.
 */
#ifndef LBW_CSV_H
#define LBW_CSV_H

#include <stddef.h>

#define LBW_CSV_COLS_MAX 256     /* columns in the header (HAProxy 2.6 has about 130) */
#define LBW_CSV_ROW_MAX 16384    /* bytes of one row once unquoted, NULs included */
#define LBW_CSV_NAME_MAX 64      /* bytes of a column name */

struct lbw_csv {
    const char *text;            /* the input, len bytes, not NUL-terminated */
    size_t len;
    size_t pos;                  /* where the next line starts */
    size_t line;                 /* 1-based number of the line last read */

    size_t ncols;                /* header columns */
    char names[LBW_CSV_COLS_MAX][LBW_CSV_NAME_MAX];

    size_t nfields;              /* fields of the current row (at most ncols) */
    unsigned short off[LBW_CSV_COLS_MAX + 1];   /* each field's start in row[] (one more
                                                   for the header's final empty name) */
    unsigned short flen[LBW_CSV_COLS_MAX + 1];  /* and length */
    char row[LBW_CSV_ROW_MAX];   /* the row's fields, unquoted, each NUL-terminated */
};

/* Reads the header of text[len]: it must start with "# ". Column names are up to
 * LBW_CSV_NAME_MAX - 1 bytes; the empty name after the header's final ',' is not a column.
 * The struct is large (about 50 KiB): allocate it rather than putting it on a small stack.
 * Returns 0, or -1 with a reason in err. */
int lbw_csv_open(struct lbw_csv *c, const char *text, size_t len, char *err, size_t errlen);

/* The index of the column named name, or -1 when the header has no such column. */
int lbw_csv_col(const struct lbw_csv *c, const char *name);

/* Reads the next row, skipping empty lines. Returns 1 with a row, 0 at the end of the input,
 * or -1 with "line N: reason" in err (the reader cannot go on after an error). */
int lbw_csv_next(struct lbw_csv *c, char *err, size_t errlen);

/* Field col of the current row, NUL-terminated (a quoted field may hold NULs of its own:
 * *len, when len is not NULL, is its real length), or NULL when col is negative or the row
 * has no such field. Valid until the next lbw_csv_next. */
const char *lbw_csv_field(const struct lbw_csv *c, int col, size_t *len);

#endif
