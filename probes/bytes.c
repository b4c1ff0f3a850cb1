/* bytes.c - big-endian integers and the bounds-checked reader. See bytes.h. */
#include "probes/bytes.h"

struct lbw_reader lbw_reader_of(const void *data, size_t len)
{
    const uint8_t *p = data;
    return (struct lbw_reader){p, p + len, 0};
}

const uint8_t *lbw_take(struct lbw_reader *r, size_t n)
{
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = 1;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    return p;
}

uint64_t lbw_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

uint64_t lbw_get_be(struct lbw_reader *r, size_t n)
{
    const uint8_t *p = lbw_take(r, n);
    return p ? lbw_be(p, n) : 0;
}

size_t lbw_left(const struct lbw_reader *r) { return r->bad ? 0 : (size_t)(r->end - r->p); }

uint8_t *lbw_put_be(uint8_t *p, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    return p + n;
}
