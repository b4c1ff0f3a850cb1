/* buf.h - a growable byte buffer for building responses (HTML, text, JSON fragments).
 *
 * Appends never fail silently: on allocation failure the buffer is marked failed, further
 * appends are no-ops and lbw_buf_failed() says so, so callers check once at the end.
 */
#ifndef LBW_BUF_H
#define LBW_BUF_H

#include <stddef.h>

struct lbw_buf {
    char *data;   /* always NUL-terminated when len > 0 */
    size_t len;
    size_t cap;
    int failed;
};

void lbw_buf_init(struct lbw_buf *b);
void lbw_buf_free(struct lbw_buf *b);
void lbw_buf_reset(struct lbw_buf *b);
int lbw_buf_failed(const struct lbw_buf *b);

void lbw_buf_add(struct lbw_buf *b, const void *data, size_t len);
void lbw_buf_puts(struct lbw_buf *b, const char *s);
void lbw_buf_printf(struct lbw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends s with & < > " ' escaped for HTML text and attribute values. */
void lbw_buf_html(struct lbw_buf *b, const char *s);

/* Takes the data out of the buffer (caller frees) and resets it; NULL if failed. */
char *lbw_buf_steal(struct lbw_buf *b, size_t *len);

#endif
