/* agentbuf.h - the agent's buffer of signed batches waiting to be pulled.
 *
 * Batches are kept in ascending origin sequence, newest last, within two limits: a number of
 * batches and a number of bytes. Pushing one evicts the oldest until both hold again (a single
 * batch larger than the byte limit is kept alone); the highest sequence ever evicted is
 * remembered, so a node that asks for batches after an older sequence learns that some are
 * gone (node/agentproto.h, END). Batches stay until evicted: a pull does not remove them, so
 * when the pulling node dies another node can ask for the same ones again.
 *
 * Readers look batches up by sequence, not by pointer, so a batch evicted between two writes
 * of a slow answer is skipped rather than read after it was freed. Loop thread only.
 */
#ifndef LBW_AGENTBUF_H
#define LBW_AGENTBUF_H

#include <stddef.h>
#include <stdint.h>

struct lbw_agentbuf;

struct lbw_agentbuf_stats {
    size_t batches, bytes;
    uint64_t newest, oldest;    /* sequences held, 0 when empty */
    uint64_t evicted;           /* highest sequence evicted, 0 if none */
    uint64_t evictions;         /* batches evicted */
    uint64_t pushed;
};

/* max_batches >= 1, max_bytes >= 1. Returns NULL without memory. */
struct lbw_agentbuf *lbw_agentbuf_new(size_t max_batches, size_t max_bytes);
void lbw_agentbuf_free(struct lbw_agentbuf *b);

/* Takes data (malloc'd, len bytes) as the batch with sequence seq, which must be above every
 * sequence pushed before. Returns 0, or -1 (data is freed) if seq is not above them or
 * without memory. */
int lbw_agentbuf_push(struct lbw_agentbuf *b, uint64_t seq, uint8_t *data, size_t len);

/* The oldest batch held with a sequence above after: returns it (valid until the next push)
 * with *len and *seq, or NULL if there is none. */
const uint8_t *lbw_agentbuf_next(const struct lbw_agentbuf *b, uint64_t after, size_t *len,
                                 uint64_t *seq);

void lbw_agentbuf_stats(const struct lbw_agentbuf *b, struct lbw_agentbuf_stats *out);

#endif
