/* bytes.h - big-endian integers in byte buffers, and a bounds-checked reader over untrusted
 * bytes (raft entries, snapshots, agent frames, ledger ops).
 *
 * The reader never reads past its end: a read that does not fit sets bad, yields NULL or zero,
 * and every later read fails too, so a decoder checks bad once at the end instead of after
 * every field.
 */
#ifndef LBW_BYTES_H
#define LBW_BYTES_H

#include <stddef.h>
#include <stdint.h>

struct lbw_reader {
    const uint8_t *p, *end;
    int bad;
};

/* A reader over len bytes at data. */
struct lbw_reader lbw_reader_of(const void *data, size_t len);

/* The next n bytes (the reader moves past them), or NULL and bad set if fewer are left. */
const uint8_t *lbw_take(struct lbw_reader *r, size_t n);

/* The next n (1..8) bytes as a big-endian unsigned integer, or 0 and bad set. */
uint64_t lbw_get_be(struct lbw_reader *r, size_t n);

/* The n (1..8) bytes at p, which the caller has checked are there, as a big-endian integer. */
uint64_t lbw_be(const uint8_t *p, size_t n);

/* Bytes left to read. */
size_t lbw_left(const struct lbw_reader *r);

/* Writes v as n (1..8) big-endian bytes at p; returns p + n. */
uint8_t *lbw_put_be(uint8_t *p, uint64_t v, size_t n);

#endif
