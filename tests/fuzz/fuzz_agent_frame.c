/* fuzz_agent_frame.c - libFuzzer target for the node <-> agent pull protocol's decoding
 * (node/agentproto.h) and the envelope check a node applies to every BATCH frame
 * (lbw_entry_peek, raft/batch.h). An input is:
 *     u8 piece   how the stream is cut: pieces of (piece % 64) + 1 bytes, or all at once
 *                when piece is 255
 *     u8 side    even: decoded as a node decodes an agent's answer (frames up to
 *                LBW_AGENT_FRAME_MAX); odd: as an agent decodes a node's request (up to 64)
 *     the stream, as received from the peer
 * Every frame the decoder hands out is decoded by its type. It must never crash, leak or
 * read out of bounds; a frame is never longer than the side's limit; after a broken length
 * nothing more is handed out; a PULL or END body that decodes re-encodes to the same bytes;
 * an ERROR text decodes to printable ASCII of the stated length; a peeked batch states a
 * valid origin. Seeds (tests/fuzz/corpus/fuzz_agent_frame): real frames, an agent's answer
 * with a real signed batch, truncated and oversized frames. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "node/agentproto.h"
#include "raft/batch.h"

static void check_pull(const uint8_t *body, size_t len)
{
    struct lbw_agent_pull p;
    uint8_t again[LBW_AGENT_FRAME_HEAD + LBW_AGENT_PULL_BYTES];
    if (lbw_agent_pull_decode(body, len, &p) != 0)
        return;
    if (lbw_agent_pull_encode(&p, again) != sizeof(again) ||
        memcmp(again + LBW_AGENT_FRAME_HEAD, body, len) != 0)
        abort();
}

static void check_end(const uint8_t *body, size_t len)
{
    struct lbw_agent_end e;
    uint8_t again[LBW_AGENT_FRAME_HEAD + LBW_AGENT_END_BYTES];
    if (lbw_agent_end_decode(body, len, &e) != 0)
        return;
    if (e.oldest > e.newest || lbw_agent_end_encode(&e, again) != sizeof(again) ||
        memcmp(again + LBW_AGENT_FRAME_HEAD, body, len) != 0)
        abort();
}

static void check_error(const uint8_t *body, size_t len)
{
    char text[LBW_AGENT_ERROR_MAX + 2];
    if (len > LBW_AGENT_ERROR_MAX + 1 || lbw_agent_error_decode(body, len, text) != 0)
        return;
    if (strlen(text) != len - 1)
        abort();
    for (size_t i = 0; text[i]; i++)
        if (text[i] < 0x20 || text[i] >= 0x7f)
            abort();
}

static void check_batch(const uint8_t *body, size_t len)
{
    struct lbw_identity origin;
    uint8_t type;
    uint64_t seq;
    if (lbw_entry_peek(body, len, &type, &origin, &seq) != 0)
        return;
    if (!lbw_identity_name_valid(origin.name) ||
        (origin.kind != LBW_ID_NODE && origin.kind != LBW_ID_AGENT) ||
        (origin.kind == LBW_ID_AGENT && origin.id != 0))
        abort();
}

static void take(uint8_t type, const uint8_t *body, size_t len)
{
    switch (type) {
    case LBW_AGENT_PULL: check_pull(body, len); break;
    case LBW_AGENT_BATCH: check_batch(body, len); break;
    case LBW_AGENT_END: check_end(body, len); break;
    case LBW_AGENT_ERROR: check_error(body, len); break;
    default: break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct lbw_agent_decoder d;
    if (size < 2)
        return 0;
    size_t piece = data[0] == 255 ? size : (size_t)(data[0] % 64) + 1;
    size_t limit = data[1] % 2 ? 64 : LBW_AGENT_FRAME_MAX;
    const uint8_t *s = data + 2;
    size_t n = size - 2;
    int broken = 0;
    lbw_agent_decoder_init(&d, limit);
    for (size_t at = 0; at < n && !broken; at += piece) {
        size_t len = n - at < piece ? n - at : piece;
        if (lbw_agent_decoder_feed(&d, s + at, len) != 0)
            abort(); /* frames are taken after every feed: it never holds too much */
        uint8_t type;
        const uint8_t *body;
        size_t blen;
        int rc;
        while ((rc = lbw_agent_decoder_next(&d, &type, &body, &blen)) == 1) {
            if (blen + 1 > limit || body < d.buf || body + blen > d.buf + d.len)
                abort();
            take(type, body, blen);
        }
        broken = rc < 0;
    }
    lbw_agent_decoder_free(&d);
    return 0;
}
