/* agentproto.h - the pull protocol between a node and an agent, and its frame codec.
 *
 * An agent (`lbwatch agent`, node/agent.h) keeps its newest signed batches (raft/batch.h) in a
 * bounded buffer and serves them over mutual TLS (TLS 1.2+; the agent presents its agent
 * certificate, the node a node certificate, both of the cluster CA; raft/peer.h). A node
 * pulls an agent with one request per connection:
 *
 *     node                                         agent
 *     TCP connect, TLS handshake (both certificates checked)
 *     PULL  version, after, max_bytes   ------>
 *                                       <------    BATCH  (every buffered batch with seq >
 *                                                          after, ascending, until max_bytes)
 *                                       <------    END    (what the agent holds)
 *                                       <------    close_notify, TCP FIN
 *
 * Every message is a frame:
 *     u32 length (of type + body, big-endian; 1..LBW_AGENT_FRAME_MAX) | u8 type | body
 * Integers are big-endian. Frames and their bodies:
 *   PULL  (1)  u8 version (LBW_AGENT_PROTO_VERSION), u64 after, u32 max_bytes (the most batch
 *              bytes wanted in this answer; 0: the agent's default; the agent caps it at
 *              LBW_AGENT_ANSWER_MAX). Exactly 13 bytes.
 *   BATCH (2)  one signed batch, whole (at most LBW_AGENT_FRAME_MAX - 1 bytes). Batches come in
 *              strictly ascending origin sequence, each above `after`; the first one is sent
 *              even when it alone is larger than max_bytes.
 *   END   (3)  u64 newest (the highest sequence buffered, 0: none), u64 oldest (the lowest
 *              buffered, 0: none), u64 evicted (the highest sequence the agent dropped from
 *              its full buffer, or as corrupt - node/agentbuf.h -, 0: none: if it is above
 *              `after` the node has lost batches),
 *              u8 more (1: max_bytes cut the answer short; pull again), u32 interval_ms (how
 *              often the agent makes a batch). Exactly 29 bytes.
 *   ERROR (4)  u8 length, a reason in printable ASCII (e.g. an unsupported version); the
 *              agent then closes the connection.
 * The agent answers one PULL per connection and closes; anything else from the node (a
 * second frame, an unknown type, a bad length) ends the connection. The agent bounds the
 * time to get a complete PULL, the time to deliver the answer and the number of
 * connections at once (node/agentserve.h); the node bounds the whole pull, every frame's size
 * and the answer's total (node/agentfetch.h).
 *
 * This module is the codec only (bounds-checked; the decoder is fuzzed): it does no I/O.
 * Nothing in a BATCH frame is trusted by the node: the state machine verifies the batch's
 * signature and certificate on apply (node/fsm.h).
 */
#ifndef LBW_AGENTPROTO_H
#define LBW_AGENTPROTO_H

#include <stddef.h>
#include <stdint.h>

#include "raft/batch.h"

#define LBW_AGENT_PROTO_VERSION 1
#define LBW_AGENT_FRAME_HEAD 5                  /* u32 length + u8 type */
/* The largest frame (type + body): a batch of the largest payload with its envelope. */
#define LBW_AGENT_FRAME_MAX (1u + LBW_BATCH_MAX_PAYLOAD + 64u * 1024u)
#define LBW_AGENT_ANSWER_MAX (64u << 20)        /* batch bytes in one answer at most */
#define LBW_AGENT_PULL_BYTES 13
#define LBW_AGENT_END_BYTES 29
#define LBW_AGENT_ERROR_MAX 255

enum lbw_agent_frame_type {
    LBW_AGENT_PULL = 1,
    LBW_AGENT_BATCH = 2,
    LBW_AGENT_END = 3,
    LBW_AGENT_ERROR = 4,
};

struct lbw_agent_pull {
    uint8_t version;
    uint64_t after;
    uint32_t max_bytes;
};

struct lbw_agent_end {
    uint64_t newest, oldest, evicted;
    int more;
    uint32_t interval_ms;
};

/* ---- encoding ---------------------------------------------------------------------------- */

/* The 5-byte head of a frame of type with a body of body_len bytes. */
void lbw_agent_frame_head(uint8_t out[LBW_AGENT_FRAME_HEAD], uint8_t type, size_t body_len);

/* Whole frames into out; each returns the frame's length. */
size_t lbw_agent_pull_encode(const struct lbw_agent_pull *p,
                             uint8_t out[LBW_AGENT_FRAME_HEAD + LBW_AGENT_PULL_BYTES]);
size_t lbw_agent_end_encode(const struct lbw_agent_end *e,
                            uint8_t out[LBW_AGENT_FRAME_HEAD + LBW_AGENT_END_BYTES]);
/* reason is cut to LBW_AGENT_ERROR_MAX bytes, and anything but printable ASCII becomes '?'. */
size_t lbw_agent_error_encode(const char *reason,
                              uint8_t out[LBW_AGENT_FRAME_HEAD + 1 + LBW_AGENT_ERROR_MAX]);

/* ---- decoding ---------------------------------------------------------------------------- */

/* Bodies of one frame (untrusted). Each returns 0, or -1 if the body is not exactly valid. */
int lbw_agent_pull_decode(const uint8_t *body, size_t len, struct lbw_agent_pull *out);
int lbw_agent_end_decode(const uint8_t *body, size_t len, struct lbw_agent_end *out);
/* Copies the reason, NUL-terminated, into out (at least LBW_AGENT_ERROR_MAX + 1 bytes). */
int lbw_agent_error_decode(const uint8_t *body, size_t len, char *out);

/* Cuts a byte stream into frames. Bytes are appended to a buffer that grows up to the largest
 * frame allowed (max_frame, at most LBW_AGENT_FRAME_MAX); a frame is handed out whole. */
struct lbw_agent_decoder {
    uint8_t *buf;
    size_t len, cap;
    size_t max_frame;           /* largest type + body accepted */
    size_t consumed;            /* bytes at the front of buf already handed out */
};

void lbw_agent_decoder_init(struct lbw_agent_decoder *d, size_t max_frame);
void lbw_agent_decoder_free(struct lbw_agent_decoder *d);

/* Appends n bytes. Take every whole frame (lbw_agent_decoder_next until it returns 0) after
 * each feed. Returns 0, or -1 without memory or if more than a frame was left waiting. */
int lbw_agent_decoder_feed(struct lbw_agent_decoder *d, const void *data, size_t n);

/* The next whole frame: returns 1 with *type, *body and *body_len (valid until the next feed
 * or next call), 0 when more bytes are needed, -1 if the stream is broken (a length of 0 or
 * above max_frame: nothing after it can be trusted). */
int lbw_agent_decoder_next(struct lbw_agent_decoder *d, uint8_t *type, const uint8_t **body,
                           size_t *body_len);

/* Bytes received but not yet handed out as frames. */
size_t lbw_agent_decoder_pending(const struct lbw_agent_decoder *d);

#endif
