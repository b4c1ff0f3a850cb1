/* buf.c - growable byte buffer. See buf.h. */
#include "node/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lbw_buf_init(struct lbw_buf *b) { memset(b, 0, sizeof(*b)); }

void lbw_buf_free(struct lbw_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

void lbw_buf_reset(struct lbw_buf *b)
{
    b->len = 0;
    b->failed = 0;
    if (b->data)
        b->data[0] = '\0';
}

int lbw_buf_failed(const struct lbw_buf *b) { return b->failed; }

static int reserve(struct lbw_buf *b, size_t extra)
{
    if (b->failed)
        return -1;
    if (extra > ((size_t)-1) / 2 - b->len) {
        b->failed = 1;
        return -1;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = 1;
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

void lbw_buf_add(struct lbw_buf *b, const void *data, size_t len)
{
    if (reserve(b, len) < 0)
        return;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void lbw_buf_puts(struct lbw_buf *b, const char *s) { lbw_buf_add(b, s, strlen(s)); }

void lbw_buf_printf(struct lbw_buf *b, const char *fmt, ...)
{
    va_list ap;
    char small[256];

    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    if ((size_t)n < sizeof(small)) {
        lbw_buf_add(b, small, (size_t)n);
        return;
    }
    if (reserve(b, (size_t)n) < 0)
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void lbw_buf_html(struct lbw_buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': lbw_buf_puts(b, "&amp;"); break;
        case '<': lbw_buf_puts(b, "&lt;"); break;
        case '>': lbw_buf_puts(b, "&gt;"); break;
        case '"': lbw_buf_puts(b, "&quot;"); break;
        case '\'': lbw_buf_puts(b, "&#39;"); break;
        default: lbw_buf_add(b, s, 1);
        }
    }
}

char *lbw_buf_steal(struct lbw_buf *b, size_t *len)
{
    if (b->failed) {
        lbw_buf_free(b);
        return NULL;
    }
    if (!b->data)
        lbw_buf_add(b, "", 0);
    char *p = b->data;
    if (len)
        *len = b->len;
    memset(b, 0, sizeof(*b));
    return p;
}
