/* store.h - the time-series store on LMDB: series registry, raw samples, 1-minute and
 * 1-hour rollups, retention, range queries.
 *
 * Layout (named LMDB databases, big-endian keys so ranges scan in time order):
 *   series      key string      -> u32 series id
 *   series_id   u32 id          -> key string
 *   samples     u32 id | u64 ts -> sealed compressed chunk (node/chunk.h) of samples from ts
 *   heads       u32 id          -> the series' head chunk: its newest samples, still being
 *                                  appended to (at most one chunk)
 *   rollup_1m   u32 id | u64 ts -> {min, max, sum, count} of the minute at ts
 *   rollup_1h   u32 id | u64 ts -> {min, max, sum, count} of the hour at ts
 *   meta        string          -> bytes (schema version, next series id, callers' own keys)
 *   audit       u64 index       -> an audit record: i64 timestamp (big-endian) that retention
 *                                  applies to, then the caller's bytes (the cluster keys it by
 *                                  raft index; node/fsm.h describes its records)
 *   audit_cert  SHA-256         -> a certificate (DER) that signed audited records, kept once
 *
 * Each series keeps an in-memory head chunk. When it is full (LBW_CHUNK_MAX_SAMPLES or
 * LBW_CHUNK_SPAN_MS) it is sealed into samples and its samples are added to the rollups, and
 * lbw_store_commit() writes every head touched since the last commit (one put per touched
 * series), so whatever was committed is on disk and is what readers see; readers aggregate
 * the head's samples together with the rollups. After a restart or an abort a series' head
 * is reloaded from disk on its next append, and the same chunk continues. Within a series,
 * timestamps must increase: a sample at or before the series' last timestamp is dropped
 * (and counted), which also makes re-applying the same samples after a restart harmless.
 * NaN values are stored but left out of rollups and steps.
 *
 * Threads: one writer thread calls begin/append/commit/abort/prune/meta_put and the audit
 * puts; any thread may call the read functions concurrently (each opens its own read
 * transaction; the env is opened with MDB_NOTLS).
 *
 * Everything read from disk is treated as untrusted: a corrupt chunk or record is skipped and
 * reported, never trusted for lengths.
 */
#ifndef LBW_STORE_H
#define LBW_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "probes/sample.h"

struct lbw_store;

struct lbw_store_options {
    const char *dir;            /* created if missing (mode 0700) */
    size_t map_size;            /* LMDB map size in bytes; 0 = 1 GiB */
    int64_t retention_raw_ms;   /* 0 = keep forever */
    int64_t retention_1m_ms;
    int64_t retention_1h_ms;
    int no_sync;                /* MDB_NOSYNC: for callers with their own write-ahead log */
};

/* Opens (creating if needed) the store. On failure returns -1 and writes a reason to err. */
int lbw_store_open(struct lbw_store **out, const struct lbw_store_options *opt, char *err,
                   size_t errlen);
/* Aborts any open write transaction and closes. Safe on NULL. */
void lbw_store_close(struct lbw_store *s);

/* ---- writer side (one thread) ---------------------------------------------------------- */

/* Opens the write transaction if none is open. Returns 0 or -1. */
int lbw_store_begin(struct lbw_store *s);

/* Appends one sample (begins a transaction if needed). key must be a canonical series key
 * (probes/sample.h) of keylen bytes; ts_ms must be >= 0. Returns 0 if stored, 1 if dropped
 * because it is not newer than the series' last sample, -1 on error: a bad key or timestamp
 * leaves the transaction as it was; an LMDB error (MDB_MAP_FULL...) or out of memory aborts
 * the whole open transaction, as lbw_store_abort() would. */
int lbw_store_append(struct lbw_store *s, const char *key, size_t keylen, int64_t ts_ms,
                     double value);

/* For appending many samples to a series without looking its key up each time: the series
 * of key (taken into the writer's table, after checking the key is canonical, if new; nothing
 * is written until a sample is appended). Returns a handle >= 0, valid until the store is
 * closed, or -1 (bad key, out of memory). */
long lbw_store_series(struct lbw_store *s, const char *key, size_t keylen);
/* lbw_store_append to the series of a handle from lbw_store_series(); same results. */
int lbw_store_append_series(struct lbw_store *s, long series, int64_t ts_ms, double value);

/* Writes the touched heads and commits (0 if no transaction is open). Returns 0, or -1 (the
 * transaction is then aborted and the in-memory heads are reloaded from disk on next use). */
int lbw_store_commit(struct lbw_store *s);
void lbw_store_abort(struct lbw_store *s);

/* Deletes chunks and rollups older than the retention periods relative to now_ms, at most
 * max_deletes records per call (0 = no limit), in its own transaction (-1 if a write
 * transaction is open). A sealed chunk is old when the series' next chunk starts at or
 * before now_ms - retention (or it started LBW_CHUNK_SPAN_MS before that); a bucket is old
 * when it ends by then. A series' head (at most one chunk) is never deleted. A limited call
 * visits at most about 4 * max_deletes series and the next call continues where it stopped;
 * an unlimited call makes one full pass. Audit records go with the raw retention: a record
 * whose timestamp is before now_ms - retention_raw_ms is deleted. They are swept in index
 * order from where the last call stopped (wrapping at the end), up to half of a limited
 * call's budget and about 4 * max_deletes visits, so a record with a timestamp in the future
 * holds up nothing behind it; an unlimited call sweeps them all. Returns the number of
 * records deleted, or -1. Call periodically. */
long lbw_store_prune(struct lbw_store *s, int64_t now_ms, long max_deletes);

/* Caller-owned metadata in the meta database, written inside the current write transaction
 * (so it commits atomically with the samples appended in it). name must not start with
 * "lbw." (reserved for the store). */
int lbw_store_meta_put(struct lbw_store *s, const char *name, const void *val, size_t len);
/* Reads committed metadata. Returns the value length (copying at most cap bytes), 0 if absent,
 * -1 on error. */
long lbw_store_meta_get(struct lbw_store *s, const char *name, void *val, size_t cap);

/* ---- audit trail (writer side) ---------------------------------------------------------- */

#define LBW_STORE_AUDIT_MAX 4096    /* longest audit record, timestamp included */
#define LBW_STORE_CERT_MAX 65535    /* longest audited certificate */

/* Writes the audit record rec (len bytes, 8..LBW_STORE_AUDIT_MAX, starting with its i64
 * big-endian timestamp) under index inside the current write transaction (begun if needed),
 * replacing any record there. Returns 0, or -1: bad arguments leave the transaction as it
 * was; an LMDB error aborts it, as for lbw_store_append(). */
int lbw_store_audit_put(struct lbw_store *s, uint64_t index, const void *rec, size_t len);

/* Keeps certificate der (1..LBW_STORE_CERT_MAX bytes) under sha256, the SHA-256 of der
 * (computed by the caller), unless it is there already; same transaction and errors. */
int lbw_store_audit_cert_put(struct lbw_store *s, const uint8_t sha256[32], const void *der,
                             size_t len);

struct lbw_store_stats {
    uint64_t series;            /* series registered */
    uint64_t appended;          /* samples stored since open */
    uint64_t dropped_old;       /* samples dropped as not newer than their series */
    uint64_t corrupt;           /* records skipped because they failed to decode */
    uint64_t commits;
};
void lbw_store_stats(struct lbw_store *s, struct lbw_store_stats *out);

/* ---- readers (any thread) --------------------------------------------------------------- */

struct lbw_series_info {
    uint32_t id;
    const char *key;            /* NUL-terminated, valid during the callback */
    size_t keylen;
    int64_t last_ts;            /* 0 if the series has no sample */
    double last_value;
};

/* Calls cb for every series whose key starts with prefix (NULL or "" = all), in key order,
 * with its latest sample. cb returns nonzero to stop. Returns 0 or -1. */
typedef int (*lbw_series_cb)(void *arg, const struct lbw_series_info *si);
int lbw_store_foreach_series(struct lbw_store *s, const char *prefix, lbw_series_cb cb,
                             void *arg);

/* Latest sample of one series. Returns 1 if found, 0 if no such series or no sample, -1. */
int lbw_store_last(struct lbw_store *s, const char *key, size_t keylen, int64_t *ts_ms,
                   double *value);

struct lbw_point {
    int64_t ts_ms;
    double value;
};

/* Raw samples of one series with from <= ts <= to, oldest first, at most max. Returns the
 * number written to out, or -1. */
long lbw_store_points(struct lbw_store *s, const char *key, size_t keylen, int64_t from,
                      int64_t to, struct lbw_point *out, size_t max);

/* The newest samples of one series, oldest first: those of its open head chunk and of its
 * newest sealed chunk (at most 2 * LBW_CHUNK_MAX_SAMPLES) with ts >= from, the newest max of
 * them. Two LMDB reads whatever the series' history: what snapshots carry. Returns the number
 * written to out, or -1. */
long lbw_store_recent(struct lbw_store *s, const char *key, size_t keylen, int64_t from,
                      struct lbw_point *out, size_t max);

struct lbw_step {
    int64_t ts_ms;              /* start of the step: from + i*step */
    double min, max, sum;
    uint64_t count;             /* 0 = no data in this step (min/max/sum are 0) */
};

/* Aggregates one series over [from, to] into steps of step_ms: step i covers
 * [from + i*step_ms, from + (i+1)*step_ms), for every step that starts at or before to, at
 * most max steps. Uses the coarsest resolution whose buckets tile the steps exactly: 1h
 * rollups if step_ms is a multiple of an hour and from is hour-aligned, else 1m rollups
 * likewise, else raw samples (rollups outlive expired raw data). from must be >= 0 and
 * step_ms > 0. Returns the number of steps written to out (empty steps included), or -1. */
long lbw_store_steps(struct lbw_store *s, const char *key, size_t keylen, int64_t from,
                     int64_t to, int64_t step_ms, struct lbw_step *out, size_t max);

/* The committed audit record at index: returns its length (copying at most cap bytes into
 * rec), 0 if there is none, -1 on error. */
long lbw_store_audit_get(struct lbw_store *s, uint64_t index, void *rec, size_t cap);

/* Calls cb for every committed audit record at index >= from, in index order, until cb
 * returns nonzero. rec is valid during the call. Records shorter than their timestamp are
 * skipped and counted as corrupt. Returns 0 or -1. */
typedef int (*lbw_audit_cb)(void *arg, uint64_t index, const uint8_t *rec, size_t len);
int lbw_store_audit_foreach(struct lbw_store *s, uint64_t from, lbw_audit_cb cb, void *arg);

/* The committed certificate under sha256: returns its length (copying at most cap bytes),
 * 0 if absent, -1 on error. */
long lbw_store_audit_cert_get(struct lbw_store *s, const uint8_t sha256[32], void *der,
                              size_t cap);

#endif
