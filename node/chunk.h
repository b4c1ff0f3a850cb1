/* chunk.h - Gorilla-style compressed chunk of (timestamp ms, float64) samples, the unit the
 * store writes to disk (one LMDB record per chunk instead of one per sample).
 *
 * Timestamps are stored as delta-of-deltas and values as the XOR with the previous value, as
 * in Facebook's Gorilla paper and Prometheus' XOR chunks: regular scrapes of slowly changing
 * values cost one to two bytes per sample. Format (all multi-bit fields most significant bit
 * first):
 *
 *   byte 0     sample count n, 1..LBW_CHUNK_MAX_SAMPLES
 *   bytes 1..  first timestamp, zigzag LEB128 varint
 *   bit stream:
 *     first value: its 64 IEEE-754 bits
 *     every later sample:
 *       dod = (t[i] - t[i-1]) - (t[i-1] - t[i-2]), with t[i-1] - t[i-2] = 0 for the second
 *         '0'                  dod == 0
 *         '10'   + 14 bits     two's complement dod
 *         '110'  + 17 bits
 *         '1110' + 20 bits
 *         '1111' + 32 bits
 *       x = bits(v[i]) ^ bits(v[i-1])
 *         '0'                  x == 0
 *         '10'   + m bits      x inside the previous leading/trailing-zero window (m wide)
 *         '11'   + 5 bits leading zeros + 6 bits width (0 means 64) + width bits
 *     zero bits up to the next byte boundary; nothing after it.
 *
 * Timestamps within a chunk strictly increase and span less than LBW_CHUNK_SPAN_MS, so a
 * chunk holds at most LBW_CHUNK_MAX_SAMPLES samples and at most LBW_CHUNK_MAX_BYTES bytes.
 * Values are kept bit-exact (NaN payloads, infinities, -0.0).
 *
 * The encoder owns a growable buffer that it keeps across lbw_chunk_enc_reset(), so a reused
 * encoder stops allocating once its buffer has grown to the size its series needs. It can be
 * resumed from a chunk read back from disk and appended to. The decoder treats its input as
 * untrusted: every read is bounds-checked, work is bounded by the sample count, and anything
 * that is not exactly a chunk this encoder could have produced the samples of is rejected.
 */
#ifndef LBW_CHUNK_H
#define LBW_CHUNK_H

#include <stddef.h>
#include <stdint.h>

#define LBW_CHUNK_MAX_SAMPLES 120
#define LBW_CHUNK_SPAN_MS (2 * 3600 * 1000LL) /* last ts - first ts < this */
/* count byte + longest varint + first value + worst case for every later sample */
#define LBW_CHUNK_MAX_BYTES \
    (1 + 10 + (64 + (LBW_CHUNK_MAX_SAMPLES - 1) * (4 + 32 + 2 + 5 + 6 + 64) + 7) / 8)

struct lbw_chunk_sample {
    int64_t ts_ms;
    double value;
};

/* Encoder state. Read-only for callers: count, first_ts and last_ts (valid when count > 0). */
struct lbw_chunk_enc {
    uint8_t *buf;
    size_t cap;
    size_t bits;          /* bits written, header included */
    unsigned count;
    int64_t first_ts;
    int64_t last_ts;
    int64_t last_delta;
    uint64_t last_value;  /* IEEE-754 bits */
    unsigned leading;     /* XOR window of the last '11' value; leading > 64 = none yet */
    unsigned trailing;
};

void lbw_chunk_enc_init(struct lbw_chunk_enc *e);
void lbw_chunk_enc_free(struct lbw_chunk_enc *e);
/* Empties the chunk, keeping the buffer for reuse. */
void lbw_chunk_enc_reset(struct lbw_chunk_enc *e);

/* 1 if a sample at ts_ms can be appended: the chunk has room, ts_ms is newer than its last
 * sample and less than LBW_CHUNK_SPAN_MS after its first. 0 means: cut the chunk here. */
int lbw_chunk_fits(const struct lbw_chunk_enc *e, int64_t ts_ms);

/* Appends a sample. Returns 0, or -1 (state unchanged) if it does not fit or out of memory. */
int lbw_chunk_append(struct lbw_chunk_enc *e, int64_t ts_ms, double value);

/* The encoded chunk (valid until the next append/reset/free); *len = 0 when empty. */
const uint8_t *lbw_chunk_data(const struct lbw_chunk_enc *e, size_t *len);

/* Replaces the encoder's contents with the chunk data[len] so that appends continue it.
 * Returns 0, or -1 (encoder reset) if the chunk is invalid or out of memory. */
int lbw_chunk_resume(struct lbw_chunk_enc *e, const void *data, size_t len);

/* Decodes a whole chunk. Returns the number of samples (1..LBW_CHUNK_MAX_SAMPLES) written to
 * out, or -1 if data[len] is not a valid chunk (out is then unspecified). */
int lbw_chunk_decode(const void *data, size_t len,
                     struct lbw_chunk_sample out[LBW_CHUNK_MAX_SAMPLES]);

#endif
