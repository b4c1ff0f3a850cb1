/* agentbuf.h - the agent's buffer of signed batches waiting to be pulled.
 *
 * Batches are kept in ascending origin sequence, newest last, within two limits: a number of
 * batches and a number of bytes. Pushing one evicts the oldest until both hold again (a
 * single batch larger than the byte limit is kept alone); the highest sequence ever evicted
 * is remembered, so a node that asks for batches after an older sequence learns that some
 * are gone (node/agentproto.h, END). Batches stay until evicted: a pull does not remove
 * them, so when the pulling node dies another node can ask for the same ones again.
 *
 * Each batch is held compressed: zlib, deflate at its fastest level, with a recent batch as
 * the preset dictionary (a round's batch repeats most of the keys, labels and certificate of
 * the rounds before, so it shrinks about 12 times where alone it would shrink about 4). The
 * byte limit applies to these stored, compressed bytes: an hour of batches at 10 s is well
 * under a MiB. The dictionary is the batch pushed first, then every max_batches pushes the
 * one being pushed (its last 32 KiB at most), so it follows what the collectors report; at
 * most two are held (the one before serves the oldest batches), outside the byte limit.
 *
 * A batch is handed out inflated, byte for byte the one pushed (the signature covers those
 * bytes; nothing on the wire changes). Its original length is stored with it, inflating is
 * bounded by that length, and zlib's checksum covers the stored bytes: a batch that does not
 * come back whole, with exactly its length, is never handed out. It is dropped as lost
 * (counted in corrupt, and its sequence raises evicted so that nodes learn of the gap).
 *
 * The buffer owns one deflate and one inflate state and one work area as large as the
 * largest batch pushed, all reused: a push allocates only the compressed copy it keeps (and,
 * every max_batches pushes, a new dictionary).
 * Readers look batches up by sequence, not by pointer, so a batch evicted between two writes
 * of a slow answer is skipped rather than read after it was freed. Loop thread only.
 */
#ifndef LBW_AGENTBUF_H
#define LBW_AGENTBUF_H

#include <stddef.h>
#include <stdint.h>

struct lbw_agentbuf;

struct lbw_agentbuf_stats {
    size_t batches;
    size_t bytes;               /* compressed bytes held: what max_bytes bounds */
    size_t raw_bytes;           /* the same batches inflated */
    size_t dict_bytes;          /* preset dictionaries held (at most two, 32 KiB each) */
    uint64_t newest, oldest;    /* sequences held, 0 when empty */
    uint64_t evicted;           /* highest sequence evicted or dropped as corrupt, 0 if none */
    uint64_t evictions;         /* batches evicted */
    uint64_t corrupt;           /* batches dropped because they did not inflate whole */
    uint64_t pushed;
};

/* max_batches >= 1, max_bytes >= 1 (compressed bytes). Returns NULL without memory. */
struct lbw_agentbuf *lbw_agentbuf_new(size_t max_batches, size_t max_bytes);
void lbw_agentbuf_free(struct lbw_agentbuf *b);

/* Takes data (malloc'd, len bytes, len <= UINT32_MAX) as the batch with sequence seq, which
 * must be above every sequence pushed before; data is compressed and freed. Returns 0, or -1
 * (data is freed, nothing is kept) if seq is not above them, len is too large, or without
 * memory. */
int lbw_agentbuf_push(struct lbw_agentbuf *b, uint64_t seq, uint8_t *data, size_t len);

/* The oldest batch held with a sequence above after, inflated: returns it in the buffer's
 * work area (valid until the next lbw_agentbuf_push or lbw_agentbuf_next) with *len and
 * *seq, or NULL if there is none. A held batch that does not inflate to exactly its stored
 * length is dropped as corrupt on the way and the search goes on past it. */
const uint8_t *lbw_agentbuf_next(struct lbw_agentbuf *b, uint64_t after, size_t *len,
                                 uint64_t *seq);

void lbw_agentbuf_stats(const struct lbw_agentbuf *b, struct lbw_agentbuf_stats *out);

/* The compressed bytes held for sequence seq, with *len, or NULL if it is not held. Writable:
 * for tests that damage a stored batch to check it is never handed out. */
uint8_t *lbw_agentbuf_stored(struct lbw_agentbuf *b, uint64_t seq, size_t *len);

#endif
