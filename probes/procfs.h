/* procfs.h - bounded reading and tokenising of /proc-style text files, shared by the host-side
 * collectors (probes/hoststat, probes/procwatch).
 *
 * Everything read from /proc is treated as untrusted text: a file is read through one
 * caller-supplied buffer of fixed size, never into a growing allocation; lines are handed out
 * as (pointer, length) spans that need not be NUL-terminated; numbers are parsed with explicit
 * overflow checks. A line counts only when its '\n' was seen, so a file cut short (a truncated
 * fixture, a read that hit the buffer's end) never yields a half-written number.
 *
 * This module owns no state and depends on nothing but libc.
 */
#ifndef LBW_PROCFS_H
#define LBW_PROCFS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A run of bytes inside a larger buffer; not NUL-terminated. */
struct lbw_span {
    const char *p;
    size_t n;
};

/* Receives one complete line (without its '\n'). Returns 0 to go on, non-zero to stop. */
typedef int (*lbw_procfs_line_fn)(void *arg, const char *line, size_t len);

/* Calls fn for every '\n'-terminated line of buf[len]; bytes after the last '\n' are ignored.
 * Returns the number of lines handed to fn. */
size_t lbw_procfs_lines(const char *buf, size_t len, lbw_procfs_line_fn fn, void *arg);

/* Reads path (relative to dirfd, or absolute; AT_FDCWD for the working directory) through
 * buf[size], calling fn for every complete line as the file streams past: memory stays at
 * size bytes whatever the file's length. A line longer than size - 1 bytes is skipped whole and
 * counted in *skipped (may be NULL). Returns 0, or -1 with errno set when the file cannot be
 * opened or read (a vanished /proc/PID gives ENOENT or ESRCH). */
int lbw_procfs_stream(int dirfd, const char *path, char *buf, size_t size,
                      lbw_procfs_line_fn fn, void *arg, size_t *skipped);

/* Reads at most size - 1 bytes of path (relative to dirfd) into buf and NUL-terminates it.
 * *truncated (may be NULL) is set when the file holds more. Returns the number of bytes read,
 * or -1 with errno set. */
ssize_t lbw_procfs_read(int dirfd, const char *path, char *buf, size_t size, int *truncated);

/* The next token of line[len] from *pos, separated by spaces or tabs; *pos moves past it.
 * Returns 1 with *tok set, or 0 at the end of the line. */
int lbw_procfs_token(const char *line, size_t len, size_t *pos, struct lbw_span *tok);

/* Parses a whole token as a decimal unsigned integer. Returns 0, or -1 when it is empty, holds
 * anything but digits, or exceeds UINT64_MAX. */
int lbw_procfs_u64(struct lbw_span tok, uint64_t *out);

/* Parses a whole token as a decimal integer with an optional '-'. Returns 0, or -1 (empty,
 * other characters, outside int64_t). */
int lbw_procfs_i64(struct lbw_span tok, int64_t *out);

/* Parses a whole token as a plain decimal number: digits, optionally '.' and more digits (the
 * load averages). Returns 0, or -1. */
int lbw_procfs_decimal(struct lbw_span tok, double *out);

/* 1 when the span holds exactly the string s. */
int lbw_procfs_eq(struct lbw_span tok, const char *s);

/* Copies the span into out[size] as a NUL-terminated string. Returns 0, or -1 when it does not
 * fit or contains a NUL byte. */
int lbw_procfs_copy(struct lbw_span tok, char *out, size_t size);

#endif
