/* assign.c - the replicated agent assignment table: rows sorted by agent name in a fixed
 * array (at most LBW_ASSIGN_MAX, so applying an op never allocates), the op codec and the
 * snapshot codec. See assign.h. */
#include "node/assign.h"
#include "probes/bytes.h"

#include <stdlib.h>
#include <string.h>

#define ROW_MIN_BYTES (1 + 1 + 8 + 8)

struct lbw_assign {
    size_t n;
    struct lbw_assignment rows[LBW_ASSIGN_MAX];
};

/* ---- bytes ------------------------------------------------------------------------------- */

/* A name as u8 length + bytes into out (LBW_NAME_MAX). Returns 0, or -1 if not valid. */
static int get_name(struct lbw_reader *r, char out[LBW_NAME_MAX])
{
    size_t len = (size_t)lbw_get_be(r, 1);
    const uint8_t *p = len > 0 && len < LBW_NAME_MAX ? lbw_take(r, len) : NULL;
    if (!p || memchr(p, 0, len))
        return -1;
    memcpy(out, p, len);
    out[len] = '\0';
    return lbw_identity_name_valid(out) ? 0 : -1;
}

static int node_id_valid(uint64_t id)
{
    return id >= 1 && id <= (uint64_t)INT64_MAX;
}

/* ---- ops --------------------------------------------------------------------------------- */

static int op_valid(const struct lbw_assign_op *op)
{
    if (!lbw_identity_name_valid(op->agent))
        return 0;
    if (op->type == LBW_ASSIGN_SET)
        return node_id_valid(op->node);
    return op->type == LBW_ASSIGN_RELEASE && op->node == 0;
}

long lbw_assign_op_encode(const struct lbw_assign_op *op, uint8_t *out, size_t outlen)
{
    size_t nlen = strnlen(op->agent, LBW_NAME_MAX);
    size_t need = 3 + nlen + 16;
    if (!op_valid(op) || outlen < need)
        return -1;
    uint8_t *p = out;
    *p++ = LBW_ASSIGN_VERSION;
    *p++ = (uint8_t)op->type;
    *p++ = (uint8_t)nlen;
    memcpy(p, op->agent, nlen);
    p = lbw_put_be(p + nlen, op->expect, 8);
    lbw_put_be(p, op->node, 8);
    return (long)need;
}

int lbw_assign_op_decode(const uint8_t *p, size_t len, struct lbw_assign_op *out)
{
    struct lbw_reader r = {p, p + len, 0};
    memset(out, 0, sizeof(*out));
    if (lbw_get_be(&r, 1) != LBW_ASSIGN_VERSION)
        return -1;
    out->type = (enum lbw_assign_op_type)lbw_get_be(&r, 1);
    if (get_name(&r, out->agent) < 0)
        return -1;
    out->expect = lbw_get_be(&r, 8);
    out->node = lbw_get_be(&r, 8);
    if (r.bad || r.p != r.end || !op_valid(out)) {
        memset(out, 0, sizeof(*out));
        return -1;
    }
    return 0;
}

/* ---- the table --------------------------------------------------------------------------- */

struct lbw_assign *lbw_assign_new(void)
{
    return calloc(1, sizeof(struct lbw_assign));
}

void lbw_assign_free(struct lbw_assign *t)
{
    free(t);
}

void lbw_assign_clear(struct lbw_assign *t)
{
    t->n = 0;
}

/* The row of agent: its index, or -1 with *pos where it would go. */
static long find_row(const struct lbw_assign *t, const char *agent, size_t *pos)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(t->rows[mid].agent, agent);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *pos = lo;
    return -1;
}

const struct lbw_assignment *lbw_assign_find(const struct lbw_assign *t, const char *agent)
{
    size_t pos;
    long i = find_row(t, agent, &pos);
    return i >= 0 ? &t->rows[i] : NULL;
}

const struct lbw_assignment *lbw_assign_rows(const struct lbw_assign *t, size_t *n)
{
    *n = t->n;
    return t->rows;
}

static enum lbw_assign_result apply_set(struct lbw_assign *t, uint64_t index,
                                        const struct lbw_assign_op *op)
{
    size_t pos = 0;
    long i = find_row(t, op->agent, &pos);
    if (op->expect != (i >= 0 ? t->rows[i].index : 0))
        return LBW_ASSIGN_STALE;
    if (i < 0) {
        if (t->n == LBW_ASSIGN_MAX)
            return LBW_ASSIGN_INVALID;
        memmove(&t->rows[pos + 1], &t->rows[pos], (t->n - pos) * sizeof(t->rows[0]));
        t->n++;
        i = (long)pos;
        memcpy(t->rows[i].agent, op->agent, sizeof(op->agent));
    }
    t->rows[i].node = op->node;
    t->rows[i].index = index;
    return LBW_ASSIGN_OK;
}

static enum lbw_assign_result apply_release(struct lbw_assign *t, const struct lbw_assign_op *op)
{
    size_t pos;
    long i = find_row(t, op->agent, &pos);
    if (i < 0 || op->expect != t->rows[i].index)
        return LBW_ASSIGN_STALE;
    memmove(&t->rows[i], &t->rows[i + 1], (t->n - (size_t)i - 1) * sizeof(t->rows[0]));
    t->n--;
    return LBW_ASSIGN_OK;
}

enum lbw_assign_result lbw_assign_apply(struct lbw_assign *t, uint64_t index,
                                        const uint8_t *payload, size_t len,
                                        struct lbw_assign_op *op)
{
    if (lbw_assign_op_decode(payload, len, op) < 0 || index == 0)
        return LBW_ASSIGN_INVALID;
    return op->type == LBW_ASSIGN_SET ? apply_set(t, index, op) : apply_release(t, op);
}

const char *lbw_assign_result_name(enum lbw_assign_result r)
{
    static const char *const names[LBW_ASSIGN_RESULTS] = {"ok", "stale", "invalid"};
    return (unsigned)r < LBW_ASSIGN_RESULTS ? names[r] : "unknown";
}

/* ---- serialisation ----------------------------------------------------------------------- */

int lbw_assign_serialize(const struct lbw_assign *t, uint8_t **out, size_t *len)
{
    size_t need = 1 + 4;
    for (size_t i = 0; i < t->n; i++)
        need += 1 + strlen(t->rows[i].agent) + 16;
    uint8_t *buf = malloc(need), *p = buf;
    if (!buf)
        return -1;
    *p++ = LBW_ASSIGN_VERSION;
    p = lbw_put_be(p, t->n, 4);
    for (size_t i = 0; i < t->n; i++) {
        size_t nlen = strlen(t->rows[i].agent);
        *p++ = (uint8_t)nlen;
        memcpy(p, t->rows[i].agent, nlen);
        p = lbw_put_be(p + nlen, t->rows[i].node, 8);
        p = lbw_put_be(p, t->rows[i].index, 8);
    }
    *out = buf;
    *len = need;
    return 0;
}

/* Reads the rows into tmp, checking every one. Returns 0, or -1 if malformed. */
static int read_rows(struct lbw_reader *r, struct lbw_assign *tmp)
{
    uint64_t n = lbw_get_be(r, 4);
    if (r->bad || n > LBW_ASSIGN_MAX || n > (size_t)(r->end - r->p) / ROW_MIN_BYTES)
        return -1;
    for (tmp->n = 0; tmp->n < n; tmp->n++) {
        struct lbw_assignment *row = &tmp->rows[tmp->n];
        if (get_name(r, row->agent) < 0)
            return -1;
        row->node = lbw_get_be(r, 8);
        row->index = lbw_get_be(r, 8);
        if (r->bad || !node_id_valid(row->node) || row->index == 0 ||
            (tmp->n > 0 && strcmp(row[-1].agent, row->agent) >= 0))
            return -1;
    }
    return r->p == r->end ? 0 : -1;
}

int lbw_assign_restore(struct lbw_assign *t, const uint8_t *p, size_t len)
{
    struct lbw_reader r = {p, p + len, 0};
    struct lbw_assign *tmp = lbw_assign_new();
    int rc = -1;
    if (!tmp)
        return -2;
    if (lbw_get_be(&r, 1) == LBW_ASSIGN_VERSION && read_rows(&r, tmp) == 0) {
        memcpy(t, tmp, sizeof(*t));
        rc = 0;
    }
    free(tmp);
    return rc;
}
