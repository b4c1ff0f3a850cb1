/* agentproto.c - frames of the node <-> agent pull protocol: encoders, body decoders and the
 * stream decoder that cuts received bytes into whole frames. See agentproto.h. */
#include "node/agentproto.h"

#include <stdlib.h>
#include <string.h>

#include "probes/bytes.h"

/* ---- encoding ---------------------------------------------------------------------------- */

void lbw_agent_frame_head(uint8_t out[LBW_AGENT_FRAME_HEAD], uint8_t type, size_t body_len)
{
    lbw_put_be(out, (uint64_t)body_len + 1, 4);
    out[4] = type;
}

size_t lbw_agent_pull_encode(const struct lbw_agent_pull *p,
                             uint8_t out[LBW_AGENT_FRAME_HEAD + LBW_AGENT_PULL_BYTES])
{
    lbw_agent_frame_head(out, LBW_AGENT_PULL, LBW_AGENT_PULL_BYTES);
    uint8_t *b = out + LBW_AGENT_FRAME_HEAD;
    *b++ = p->version;
    b = lbw_put_be(b, p->after, 8);
    lbw_put_be(b, p->max_bytes, 4);
    return LBW_AGENT_FRAME_HEAD + LBW_AGENT_PULL_BYTES;
}

size_t lbw_agent_end_encode(const struct lbw_agent_end *e,
                            uint8_t out[LBW_AGENT_FRAME_HEAD + LBW_AGENT_END_BYTES])
{
    lbw_agent_frame_head(out, LBW_AGENT_END, LBW_AGENT_END_BYTES);
    uint8_t *b = out + LBW_AGENT_FRAME_HEAD;
    b = lbw_put_be(b, e->newest, 8);
    b = lbw_put_be(b, e->oldest, 8);
    b = lbw_put_be(b, e->evicted, 8);
    *b++ = e->more ? 1 : 0;
    lbw_put_be(b, e->interval_ms, 4);
    return LBW_AGENT_FRAME_HEAD + LBW_AGENT_END_BYTES;
}

size_t lbw_agent_error_encode(const char *reason,
                              uint8_t out[LBW_AGENT_FRAME_HEAD + 1 + LBW_AGENT_ERROR_MAX])
{
    size_t n = strnlen(reason, LBW_AGENT_ERROR_MAX);
    lbw_agent_frame_head(out, LBW_AGENT_ERROR, 1 + n);
    out[LBW_AGENT_FRAME_HEAD] = (uint8_t)n;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)reason[i];
        out[LBW_AGENT_FRAME_HEAD + 1 + i] = ch >= 0x20 && ch < 0x7f ? ch : '?';
    }
    return LBW_AGENT_FRAME_HEAD + 1 + n;
}

/* ---- bodies ------------------------------------------------------------------------------ */

int lbw_agent_pull_decode(const uint8_t *body, size_t len, struct lbw_agent_pull *out)
{
    if (len != LBW_AGENT_PULL_BYTES)
        return -1;
    out->version = body[0];
    out->after = lbw_be(body + 1, 8);
    out->max_bytes = (uint32_t)lbw_be(body + 9, 4);
    return 0;
}

int lbw_agent_end_decode(const uint8_t *body, size_t len, struct lbw_agent_end *out)
{
    if (len != LBW_AGENT_END_BYTES || body[24] > 1)
        return -1;
    out->newest = lbw_be(body, 8);
    out->oldest = lbw_be(body + 8, 8);
    out->evicted = lbw_be(body + 16, 8);
    out->more = body[24];
    out->interval_ms = (uint32_t)lbw_be(body + 25, 4);
    if (out->oldest > out->newest || (out->newest != 0 && out->oldest == 0))
        return -1;
    return 0;
}

int lbw_agent_error_decode(const uint8_t *body, size_t len, char *out)
{
    if (len < 1 || (size_t)body[0] != len - 1)
        return -1;
    for (size_t i = 1; i < len; i++)
        if (body[i] < 0x20 || body[i] >= 0x7f)
            return -1;
    memcpy(out, body + 1, len - 1);
    out[len - 1] = '\0';
    return 0;
}

/* ---- the stream decoder ------------------------------------------------------------------ */

void lbw_agent_decoder_init(struct lbw_agent_decoder *d, size_t max_frame)
{
    memset(d, 0, sizeof(*d));
    d->max_frame = max_frame < LBW_AGENT_FRAME_MAX ? max_frame : LBW_AGENT_FRAME_MAX;
}

void lbw_agent_decoder_free(struct lbw_agent_decoder *d)
{
    free(d->buf);
    memset(d, 0, sizeof(*d));
}

size_t lbw_agent_decoder_pending(const struct lbw_agent_decoder *d)
{
    return d->len - d->consumed;
}

int lbw_agent_decoder_feed(struct lbw_agent_decoder *d, const void *data, size_t n)
{
    size_t pending = d->len - d->consumed;
    /* one partial frame at most waits here when the caller takes frames after each feed */
    if (pending > LBW_AGENT_FRAME_HEAD + d->max_frame)
        return -1;
    if (d->consumed) {
        memmove(d->buf, d->buf + d->consumed, pending);
        d->len = pending;
        d->consumed = 0;
    }
    if (d->len + n > d->cap) {
        size_t cap = d->cap ? d->cap : 4096;
        while (cap < d->len + n)
            cap *= 2;
        uint8_t *b = realloc(d->buf, cap);
        if (!b)
            return -1;
        d->buf = b;
        d->cap = cap;
    }
    if (n)
        memcpy(d->buf + d->len, data, n);
    d->len += n;
    return 0;
}

int lbw_agent_decoder_next(struct lbw_agent_decoder *d, uint8_t *type, const uint8_t **body,
                           size_t *body_len)
{
    size_t pending = d->len - d->consumed;
    if (pending < 4)
        return 0;
    const uint8_t *p = d->buf + d->consumed;
    uint64_t flen = lbw_be(p, 4);
    if (flen == 0 || flen > d->max_frame)
        return -1;
    if (pending - 4 < flen)
        return 0;
    *type = p[4];
    *body = p + LBW_AGENT_FRAME_HEAD;
    *body_len = (size_t)flen - 1;
    d->consumed += 4 + (size_t)flen;
    return 1;
}
