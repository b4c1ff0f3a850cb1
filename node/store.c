/* store.c - the time-series store on LMDB. See store.h for the contract and the layout.
 *
 * Owns the LMDB environment and, for the writer, the in-memory state of every series appended
 * to since open: a hash table (open addressing, linear probing) from series key to an index
 * into a dense array of series, each with its id, head chunk encoder, last timestamp and
 * flags; and the list of series touched in the open write transaction.
 *
 * Record formats (all integers and float bits big-endian):
 *   samples value   a sealed chunk (node/chunk.h) whose first sample is at the key's ts
 *   heads           u32 id -> u16 chunk length | head chunk | zero padding to a multiple of
 *                   HEAD_ALIGN bytes
 *   rollup value    f64 min | f64 max | f64 sum | u64 count of the bucket's sealed samples
 *   meta            "lbw.schema" -> u32, "lbw.next_id" -> u32
 *   audit           u64 index -> i64 timestamp | the caller's bytes (opaque here)
 *   audit_cert      32-byte SHA-256 -> certificate DER
 * Costs, per commit touching n series: n puts of head records, plus, per chunk sealed, one
 * put of the chunk and one per minute and hour it covers, written together when it is sealed
 * (adjacent keys: a page or two) rather than one scattered put per bucket as it completes.
 * The heads live apart from the sealed chunks so that the heads of neighbouring series
 * share pages (a commit touching hundreds of series dirties tens of pages, not hundreds),
 * and they grow in steps of HEAD_ALIGN so that most rewrites keep their size and LMDB
 * overwrites them in place. The rollups thus cover sealed samples; readers add the head's
 * samples (at most one chunk) to them, and a bucket that straddles a chunk boundary is
 * merged with its earlier part when the later chunk is sealed.
 *
 * Readers (any thread) only use LMDB read transactions and the atomic counters.
 */
#include "node/store.h"

#include <errno.h>
#include <limits.h>
#include <lmdb.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "node/chunk.h"

#define SCHEMA_VERSION 1u
#define KEYLEN 12                 /* u32 id | u64 ts */
#define BUCKET_BYTES 32           /* min, max, sum, count */
#define HEAD_FIXED 2              /* u16 chunk length */
#define HEAD_ALIGN 128
#define LMDB_KEY_MAX 511
#define NRES 2                    /* rollup resolutions: 0 = 1 minute, 1 = 1 hour */

static const int64_t res_width[NRES] = {60 * 1000LL, 3600 * 1000LL};

struct bucket {
    int64_t start;
    double min, max, sum;
    uint64_t count;               /* 0 = empty */
};

struct series {
    char *key;
    uint32_t keylen;
    uint32_t hash;
    uint32_t id;                  /* 0 = not resolved against the registry yet */
    uint8_t loaded;               /* head, buckets and last_ts reflect the disk */
    uint8_t dirty;                /* touched in the open transaction */
    uint8_t created;              /* registered in the open transaction */
    uint8_t has_last;
    int64_t last_ts;
    struct lbw_chunk_enc head;
};

struct prune_pos {
    unsigned db;                  /* 0 samples, 1 rollup_1m, 2 rollup_1h */
    uint32_t id;
};

struct lbw_store {
    MDB_env *env;
    MDB_dbi series_db, series_id_db, samples_db, heads_db, rollup_db[NRES], meta_db;
    MDB_dbi audit_db, audit_cert_db;
    int64_t retention[3];         /* indexed like prune_pos.db */

    /* writer only */
    MDB_txn *txn;
    struct series *series;
    size_t nseries, series_cap;
    uint32_t *table;              /* slot = series index + 1, 0 = empty */
    size_t table_size;
    uint32_t *dirty;              /* indexes of touched series; capacity series_cap */
    size_t ndirty;
    uint32_t next_id, committed_next_id;
    uint64_t txn_appended, txn_series;
    struct prune_pos prune_pos;
    uint64_t audit_pos;           /* the audit sweep continues at this index */

    /* any thread */
    atomic_uint_fast64_t n_series, n_appended, n_dropped, n_corrupt, n_commits;
};

/* ---- encoding helpers ------------------------------------------------------------------- */

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    put_be32(p, (uint32_t)(v >> 32));
    put_be32(p + 4, (uint32_t)v);
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_be64(const uint8_t *p)
{
    return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

static void put_f64(uint8_t *p, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof(u));
    put_be64(p, u);
}

static double get_f64(const uint8_t *p)
{
    uint64_t u = get_be64(p);
    double v;
    memcpy(&v, &u, sizeof(v));
    return v;
}

static void make_key(uint8_t k[KEYLEN], uint32_t id, int64_t ts)
{
    put_be32(k, id);
    put_be64(k + 4, (uint64_t)ts);
}

/* 1 if k is a well-formed record key of series id. */
static int key_is(const MDB_val *k, uint32_t id)
{
    return k->mv_size == KEYLEN && get_be32(k->mv_data) == id &&
           !(((const uint8_t *)k->mv_data)[4] & 0x80);
}

static int64_t key_ts(const MDB_val *k)
{
    return (int64_t)(get_be64((const uint8_t *)k->mv_data + 4) & (uint64_t)INT64_MAX);
}

static void put_bucket(uint8_t *p, const struct bucket *b)
{
    put_f64(p, b->min);
    put_f64(p + 8, b->max);
    put_f64(p + 16, b->sum);
    put_be64(p + 24, b->count);
}

/* Reads a bucket body; returns 0 if it is plausible (empty, or min <= max, neither NaN). */
static int get_bucket(const uint8_t *p, struct bucket *b)
{
    b->min = get_f64(p);
    b->max = get_f64(p + 8);
    b->sum = get_f64(p + 16);
    b->count = get_be64(p + 24);
    return b->count == 0 || b->min <= b->max ? 0 : -1;
}

static int aligned(int64_t ts, int res)
{
    return ts >= 0 && ts % res_width[res] == 0;
}

static size_t head_size(size_t chunk_len)
{
    return (HEAD_FIXED + chunk_len + HEAD_ALIGN - 1) / HEAD_ALIGN * HEAD_ALIGN;
}

/* The chunk inside a head record (pointing into LMDB memory), or NULL if malformed. */
static const uint8_t *head_chunk(const MDB_val *v, size_t *len)
{
    const uint8_t *p = v->mv_data;
    if (v->mv_size < HEAD_FIXED)
        return NULL;
    *len = (size_t)p[0] << 8 | p[1];
    if (*len == 0 || *len > LBW_CHUNK_MAX_BYTES || v->mv_size != head_size(*len))
        return NULL;
    return p + HEAD_FIXED;
}

/* Decodes a sealed chunk record; its first sample must be at the key's timestamp. */
static int decode_sealed(const MDB_val *k, const MDB_val *v,
                         struct lbw_chunk_sample out[LBW_CHUNK_MAX_SAMPLES])
{
    int n = lbw_chunk_decode(v->mv_data, v->mv_size, out);
    return n > 0 && k->mv_size == KEYLEN && out[0].ts_ms == key_ts(k) ? n : -1;
}

static void id_key(uint8_t b[4], MDB_val *k, uint32_t id)
{
    put_be32(b, id);
    *k = (MDB_val){4, b};
}

static void count_corrupt(struct lbw_store *s)
{
    atomic_fetch_add_explicit(&s->n_corrupt, 1, memory_order_relaxed);
}

/* ---- series table (writer) -------------------------------------------------------------- */

/* A multiply-xorshift hash taking 8 bytes a step (keys are long; this is per sample). */
static uint32_t hash_key(const char *key, size_t len)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ len, w;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        memcpy(&w, key + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    w = 0;
    memcpy(&w, key + i, len - i);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    return (uint32_t)(h ^ (h >> 29));
}

static long find_series(const struct lbw_store *s, const char *key, size_t len, uint32_t h)
{
    size_t mask = s->table_size - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        uint32_t slot = s->table[i];
        if (!slot)
            return -1;
        const struct series *ser = &s->series[slot - 1];
        if (ser->hash == h && ser->keylen == len && memcmp(ser->key, key, len) == 0)
            return (long)slot - 1;
    }
}

static void table_insert(uint32_t *table, size_t size, uint32_t h, uint32_t slot)
{
    size_t i = h & (size - 1);
    while (table[i])
        i = (i + 1) & (size - 1);
    table[i] = slot;
}

static int grow_table(struct lbw_store *s)
{
    size_t size = s->table_size * 2;
    uint32_t *table = calloc(size, sizeof(*table));
    if (!table)
        return -1;
    for (size_t i = 0; i < s->nseries; i++)
        table_insert(table, size, s->series[i].hash, (uint32_t)i + 1);
    free(s->table);
    s->table = table;
    s->table_size = size;
    return 0;
}

static int grow_series(struct lbw_store *s)
{
    size_t cap = s->series_cap * 2;
    struct series *ser = realloc(s->series, cap * sizeof(*ser));
    if (!ser)
        return -1;
    s->series = ser;
    uint32_t *dirty = realloc(s->dirty, cap * sizeof(*dirty));
    if (!dirty)
        return -1;
    s->dirty = dirty;
    s->series_cap = cap;
    return 0;
}

static long add_series(struct lbw_store *s, const char *key, size_t len, uint32_t h)
{
    if (((s->nseries + 1) * 2 > s->table_size && grow_table(s) < 0) ||
        (s->nseries == s->series_cap && grow_series(s) < 0))
        return -1;
    char *copy = malloc(len + 1);
    if (!copy)
        return -1;
    memcpy(copy, key, len);
    copy[len] = '\0';
    struct series *ser = &s->series[s->nseries];
    memset(ser, 0, sizeof(*ser));
    ser->key = copy;
    ser->keylen = (uint32_t)len;
    ser->hash = h;
    lbw_chunk_enc_init(&ser->head);
    table_insert(s->table, s->table_size, h, (uint32_t)s->nseries + 1);
    return (long)s->nseries++;
}

/* The series of key, added (after checking the key is canonical) if new. */
static long lookup_series(struct lbw_store *s, const char *key, size_t len)
{
    uint32_t h = hash_key(key, len);
    long idx = find_series(s, key, len, h);
    if (idx >= 0)
        return idx;
    struct lbw_key_parsed parsed;
    if (lbw_key_parse(key, len, &parsed) < 0)
        return -1;
    return add_series(s, key, len, h);
}

static void touch(struct lbw_store *s, struct series *ser)
{
    if (ser->dirty)
        return;
    ser->dirty = 1;
    s->dirty[s->ndirty++] = (uint32_t)(ser - s->series);
}

/* ---- write transaction ------------------------------------------------------------------ */

/* Forgets the in-memory effects of a transaction that did not commit: its series reload
 * from disk, series it registered are looked up again, the id counter goes back. */
static void forget_txn(struct lbw_store *s)
{
    for (size_t i = 0; i < s->ndirty; i++) {
        struct series *ser = &s->series[s->dirty[i]];
        ser->dirty = 0;
        ser->loaded = 0;
        if (ser->created)
            ser->id = 0;
        ser->created = 0;
    }
    s->ndirty = 0;
    s->next_id = s->committed_next_id;
    s->txn_appended = 0;
    s->txn_series = 0;
}

void lbw_store_abort(struct lbw_store *s)
{
    if (!s || !s->txn)
        return;
    mdb_txn_abort(s->txn);
    s->txn = NULL;
    forget_txn(s);
}

static int fail(struct lbw_store *s)
{
    lbw_store_abort(s);
    return -1;
}

int lbw_store_begin(struct lbw_store *s)
{
    if (s->txn)
        return 0;
    if (mdb_txn_begin(s->env, NULL, 0, &s->txn) != 0) {
        s->txn = NULL;
        return -1;
    }
    return 0;
}

/* Returns an LMDB code. */
static int put_u32(MDB_txn *t, MDB_dbi dbi, const void *key, size_t klen, uint32_t v)
{
    uint8_t b[4];
    put_be32(b, v);
    MDB_val k = {klen, (void *)key}, d = {sizeof(b), b};
    return mdb_put(t, dbi, &k, &d, 0);
}

/* Writes the series' head record. */
static int write_head(struct lbw_store *s, const struct series *ser)
{
    size_t clen;
    const uint8_t *chunk = lbw_chunk_data(&ser->head, &clen);
    uint8_t idb[4];
    MDB_val k, v = {head_size(clen), NULL};
    id_key(idb, &k, ser->id);
    if (mdb_put(s->txn, s->heads_db, &k, &v, MDB_RESERVE) != 0)
        return -1;
    uint8_t *p = v.mv_data;
    p[0] = (uint8_t)(clen >> 8);
    p[1] = (uint8_t)clen;
    memcpy(p + HEAD_FIXED, chunk, clen);
    memset(p + HEAD_FIXED + clen, 0, v.mv_size - HEAD_FIXED - clen); /* replicas agree */
    return 0;
}

/* Folds bucket b into *into (same start). */
static void merge_bucket(struct bucket *into, const struct bucket *b)
{
    if (into->count == 0 || b->min < into->min)
        into->min = b->min;
    if (into->count == 0 || b->max > into->max)
        into->max = b->max;
    into->sum += b->sum;
    into->count += b->count;
}

/* Writes bucket b of resolution res, first folding in what a chunk sealed earlier left in
 * it if asked (a bucket straddling a chunk boundary). */
static int write_bucket(struct lbw_store *s, int res, uint32_t id, struct bucket *b, int merge)
{
    uint8_t kb[KEYLEN], vb[BUCKET_BYTES];
    make_key(kb, id, b->start);
    MDB_val k = {KEYLEN, kb}, v;
    int rc = merge ? mdb_get(s->txn, s->rollup_db[res], &k, &v) : MDB_NOTFOUND;
    if (rc == 0) {
        struct bucket old = {b->start, 0, 0, 0, 0};
        if (v.mv_size == BUCKET_BYTES && get_bucket(v.mv_data, &old) == 0 && old.count) {
            merge_bucket(&old, b);
            *b = old;
        } else {
            count_corrupt(s);
        }
    } else if (rc != MDB_NOTFOUND) {
        return -1;
    }
    put_bucket(vb, b);
    v = (MDB_val){BUCKET_BYTES, vb};
    return mdb_put(s->txn, s->rollup_db[res], &k, &v, 0) ? -1 : 0;
}

/* Adds samples (sorted, NaN left out) to the buckets of resolution res. Only the first
 * bucket can already hold samples, from the chunk before. */
static int roll_up(struct lbw_store *s, uint32_t id, int res, const struct lbw_chunk_sample *smp,
                   int n)
{
    int64_t width = res_width[res];
    int64_t first = smp[0].ts_ms - smp[0].ts_ms % width;
    struct bucket b = {first, 0, 0, 0, 0};
    for (int i = 0; i < n; i++) {
        int64_t start = smp[i].ts_ms - smp[i].ts_ms % width;
        if (start != b.start) {
            if (b.count && write_bucket(s, res, id, &b, b.start == first) < 0)
                return -1;
            b = (struct bucket){start, 0, 0, 0, 0};
        }
        double v = smp[i].value;
        if (!isnan(v))
            merge_bucket(&b, &(struct bucket){start, v, v, v, 1});
    }
    return b.count ? write_bucket(s, res, id, &b, b.start == first) : 0;
}

/* Moves the full head chunk into samples, adds its samples to the rollups, and empties the
 * head. */
static int seal_head(struct lbw_store *s, struct series *ser)
{
    struct lbw_chunk_sample smp[LBW_CHUNK_MAX_SAMPLES];
    size_t clen;
    const uint8_t *chunk = lbw_chunk_data(&ser->head, &clen);
    int n = lbw_chunk_decode(chunk, clen, smp);
    uint8_t kb[KEYLEN];
    make_key(kb, ser->id, ser->head.first_ts);
    MDB_val k = {KEYLEN, kb}, v = {clen, (void *)chunk};
    if (n <= 0 || mdb_put(s->txn, s->samples_db, &k, &v, 0) != 0)
        return -1;
    for (int i = 0; i < NRES; i++)
        if (roll_up(s, ser->id, i, smp, n) < 0)
            return -1;
    lbw_chunk_enc_reset(&ser->head);
    return 0;
}

/* Finds the series' id in the registry, or registers it under the next id. */
static int resolve_id(struct lbw_store *s, struct series *ser)
{
    MDB_val k = {ser->keylen, ser->key}, v;
    int rc = mdb_get(s->txn, s->series_db, &k, &v);
    if (rc == 0 && v.mv_size == 4 && get_be32(v.mv_data) != 0) {
        ser->id = get_be32(v.mv_data);
        return 0;
    }
    if (rc == 0)
        count_corrupt(s); /* unreadable registry entry: register the key afresh */
    else if (rc != MDB_NOTFOUND)
        return -1;
    if (s->next_id == UINT32_MAX)
        return -1;
    uint8_t idb[4];
    put_be32(idb, s->next_id);
    if (put_u32(s->txn, s->series_db, ser->key, ser->keylen, s->next_id) != 0)
        return -1;
    MDB_val ik = {sizeof(idb), idb}, kv = {ser->keylen, ser->key};
    if (mdb_put(s->txn, s->series_id_db, &ik, &kv, 0) != 0)
        return -1;
    ser->id = s->next_id++;
    ser->created = 1;
    ser->loaded = 1;
    ser->has_last = 0;
    lbw_chunk_enc_reset(&ser->head);
    s->txn_series++;
    touch(s, ser);
    return 0;
}

/* Positions c on the newest sealed chunk of series id. Returns 1, 0 if there is none, -1. */
static int seek_newest(MDB_cursor *c, uint32_t id, MDB_val *k, MDB_val *v)
{
    uint8_t kb[KEYLEN];
    int rc;
    if (id == UINT32_MAX) {
        rc = mdb_cursor_get(c, k, v, MDB_LAST);
    } else {
        make_key(kb, id + 1, 0);
        *k = (MDB_val){KEYLEN, kb};
        rc = mdb_cursor_get(c, k, v, MDB_SET_RANGE);
        if (rc == 0 || rc == MDB_NOTFOUND)
            rc = mdb_cursor_get(c, k, v, rc == MDB_NOTFOUND ? MDB_LAST : MDB_PREV);
    }
    if (rc == MDB_NOTFOUND)
        return 0;
    return rc ? -1 : key_is(k, id);
}

/* Without a usable head record, a new head starts after the newest sealed chunk (after its
 * start if it does not decode). */
static int continue_after_sealed(struct lbw_store *s, struct series *ser)
{
    struct lbw_chunk_sample smp[LBW_CHUNK_MAX_SAMPLES];
    MDB_cursor *c;
    MDB_val k, v;
    if (mdb_cursor_open(s->txn, s->samples_db, &c) != 0)
        return -1;
    int found = seek_newest(c, ser->id, &k, &v);
    if (found > 0) {
        int n = decode_sealed(&k, &v, smp);
        ser->has_last = 1;
        ser->last_ts = n > 0 ? smp[n - 1].ts_ms : key_ts(&k);
    }
    mdb_cursor_close(c);
    return found < 0 ? -1 : 0;
}

/* Restores the head chunk from the series' head record, so that appends continue the same
 * chunk. A corrupt head record is counted and replaced by a new head. */
static int load_head(struct lbw_store *s, struct series *ser)
{
    const uint8_t *chunk = NULL;
    size_t clen = 0;
    uint8_t idb[4];
    MDB_val k, v;
    id_key(idb, &k, ser->id);
    lbw_chunk_enc_reset(&ser->head);
    ser->has_last = 0;
    int rc = mdb_get(s->txn, s->heads_db, &k, &v);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return -1;
    if (rc == 0 && (chunk = head_chunk(&v, &clen)) != NULL &&
        lbw_chunk_resume(&ser->head, chunk, clen) == 0) {
        ser->has_last = 1;
        ser->last_ts = ser->head.last_ts;
    } else {
        if (rc == 0)
            count_corrupt(s);
        if (continue_after_sealed(s, ser) < 0)
            return -1;
    }
    ser->loaded = 1;
    return 0;
}

long lbw_store_series(struct lbw_store *s, const char *key, size_t keylen)
{
    return key ? lookup_series(s, key, keylen) : -1;
}

int lbw_store_append(struct lbw_store *s, const char *key, size_t keylen, int64_t ts_ms,
                     double value)
{
    if (!key || ts_ms < 0)
        return -1;
    return lbw_store_append_series(s, lookup_series(s, key, keylen), ts_ms, value);
}

int lbw_store_append_series(struct lbw_store *s, long idx, int64_t ts_ms, double value)
{
    if (idx < 0 || (size_t)idx >= s->nseries || ts_ms < 0 || lbw_store_begin(s) < 0)
        return -1;
    struct series *ser = &s->series[idx];
    if ((ser->id == 0 && resolve_id(s, ser) < 0) || (!ser->loaded && load_head(s, ser) < 0))
        return fail(s);
    if (ser->has_last && ts_ms <= ser->last_ts) {
        atomic_fetch_add_explicit(&s->n_dropped, 1, memory_order_relaxed);
        return 1;
    }
    touch(s, ser);
    if ((!lbw_chunk_fits(&ser->head, ts_ms) && seal_head(s, ser) < 0) ||
        lbw_chunk_append(&ser->head, ts_ms, value) < 0)
        return fail(s);
    ser->has_last = 1;
    ser->last_ts = ts_ms;
    s->txn_appended++;
    return 0;
}

int lbw_store_commit(struct lbw_store *s)
{
    if (!s->txn)
        return 0;
    for (size_t i = 0; i < s->ndirty; i++)
        if (write_head(s, &s->series[s->dirty[i]]) < 0)
            return fail(s);
    if (s->next_id != s->committed_next_id &&
        put_u32(s->txn, s->meta_db, "lbw.next_id", 11, s->next_id) != 0)
        return fail(s);
    int rc = mdb_txn_commit(s->txn);
    s->txn = NULL;
    if (rc != 0) {
        forget_txn(s);
        return -1;
    }
    for (size_t i = 0; i < s->ndirty; i++) {
        s->series[s->dirty[i]].dirty = 0;
        s->series[s->dirty[i]].created = 0;
    }
    s->ndirty = 0;
    s->committed_next_id = s->next_id;
    atomic_fetch_add_explicit(&s->n_series, s->txn_series, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->n_appended, s->txn_appended, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->n_commits, 1, memory_order_relaxed);
    s->txn_series = 0;
    s->txn_appended = 0;
    return 0;
}

static int meta_name_ok(const char *name)
{
    size_t len = name ? strlen(name) : 0;
    return len > 0 && len <= LMDB_KEY_MAX;
}

int lbw_store_meta_put(struct lbw_store *s, const char *name, const void *val, size_t len)
{
    if (!meta_name_ok(name) || strncmp(name, "lbw.", 4) == 0 || (len && !val) ||
        lbw_store_begin(s) < 0)
        return -1;
    MDB_val k = {strlen(name), (void *)name}, v = {len, (void *)val};
    return mdb_put(s->txn, s->meta_db, &k, &v, 0) ? fail(s) : 0;
}

/* ---- audit trail ------------------------------------------------------------------------- */

#define AUDIT_TS 8                /* the record's leading i64 timestamp */

int lbw_store_audit_put(struct lbw_store *s, uint64_t index, const void *rec, size_t len)
{
    uint8_t kb[8];
    if (!rec || len < AUDIT_TS || len > LBW_STORE_AUDIT_MAX || lbw_store_begin(s) < 0)
        return -1;
    put_be64(kb, index);
    MDB_val k = {sizeof(kb), kb}, v = {len, (void *)rec};
    return mdb_put(s->txn, s->audit_db, &k, &v, 0) ? fail(s) : 0;
}

int lbw_store_audit_cert_put(struct lbw_store *s, const uint8_t sha256[32], const void *der,
                             size_t len)
{
    if (!sha256 || !der || len == 0 || len > LBW_STORE_CERT_MAX || lbw_store_begin(s) < 0)
        return -1;
    MDB_val k = {32, (void *)sha256}, v = {len, (void *)der};
    int rc = mdb_put(s->txn, s->audit_cert_db, &k, &v, MDB_NOOVERWRITE);
    return rc == 0 || rc == MDB_KEYEXIST ? 0 : fail(s);
}

/* ---- retention ---------------------------------------------------------------------------- */

struct prune_target {
    MDB_dbi dbi;
    int64_t cutoff;               /* records entirely before this go */
    int64_t width;                /* bucket width; 0 = chunks (end at the next chunk) */
};

/* 1 if the record at the cursor (key k of series id) holds nothing at or after the cutoff.
 * A sealed chunk ends where the series' next chunk starts, or at the latest
 * LBW_CHUNK_SPAN_MS after its own start. */
static int expired(MDB_cursor *c, const struct prune_target *tg, uint32_t id, const MDB_val *k)
{
    if (tg->width)
        return key_ts(k) <= tg->cutoff - tg->width;
    if (key_ts(k) <= tg->cutoff - LBW_CHUNK_SPAN_MS)
        return 1;
    MDB_val nk, nv;
    int rc = mdb_cursor_get(c, &nk, &nv, MDB_NEXT);
    if (rc == MDB_NOTFOUND)
        return 0;
    return rc ? -1 : key_is(&nk, id) && key_ts(&nk) <= tg->cutoff;
}

/* Deletes expired records from the start of series id (the cursor is on its first record k)
 * while *deleted < budget. Returns 1 when the series has nothing more to delete, 0 when the
 * budget ran out first, -1 on error. */
static int prune_series(MDB_txn *t, MDB_cursor *c, const struct prune_target *tg, uint32_t id,
                        MDB_val *k, long *deleted, long budget)
{
    for (;;) {
        uint8_t kb[KEYLEN];
        memcpy(kb, k->mv_data, KEYLEN);
        int e = expired(c, tg, id, k);
        if (e <= 0)
            return e < 0 ? -1 : 1;
        if (*deleted >= budget)
            return 0;
        MDB_val dk = {KEYLEN, kb}, v;
        if (mdb_del(t, tg->dbi, &dk, NULL) != 0)
            return -1;
        (*deleted)++;
        int rc = mdb_cursor_get(c, &dk, &v, MDB_SET_RANGE);
        if (rc == MDB_NOTFOUND || (rc == 0 && !key_is(&dk, id)))
            return 1;
        if (rc)
            return -1;
        *k = dk;
    }
}

/* Visits the series at or after pos in its database (skipping databases without
 * retention): deletes malformed keys and expired records, then moves pos on (to the next
 * database at the end of this one). Returns 1 when pos wrapped past the last database, 0
 * otherwise, -1 on error. */
static int prune_step(struct lbw_store *s, MDB_txn *t, const struct prune_target *tg,
                      struct prune_pos *pos, long *deleted, long budget)
{
    MDB_cursor *c;
    uint8_t kb[KEYLEN];
    make_key(kb, pos->id, 0);
    MDB_val k = {KEYLEN, kb}, v;
    if (tg->cutoff <= 0) {
        *pos = (struct prune_pos){(pos->db + 1) % 3, 0};
        return pos->db == 0;
    }
    if (mdb_cursor_open(t, tg->dbi, &c) != 0)
        return -1;
    int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE), done = 0;
    if (rc == MDB_NOTFOUND) {
        done = 1;
    } else if (rc == 0 && k.mv_size != KEYLEN) {
        count_corrupt(s);
        rc = mdb_cursor_del(c, 0);
        (*deleted)++;
    } else if (rc == 0) {
        uint32_t id = get_be32(k.mv_data);
        int r = prune_series(t, c, tg, id, &k, deleted, budget);
        if (r < 0)
            rc = -1;
        else if (r == 0)
            pos->id = id;
        else if (id == UINT32_MAX)
            done = 1;
        else
            pos->id = id + 1;
    }
    mdb_cursor_close(c);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return -1;
    if (!done)
        return 0;
    *pos = (struct prune_pos){(pos->db + 1) % 3, 0};
    return pos->db == 0;
}

/* Sweeps audit records from s->audit_pos, deleting those before cutoff (and malformed ones),
 * until budget deletions, visits records or the end of the database (the sweep then wraps
 * to the start for the next call). */
static int prune_audit(struct lbw_store *s, MDB_txn *t, int64_t cutoff, long budget,
                       long visits, long *deleted)
{
    MDB_cursor *c;
    uint8_t kb[8];
    put_be64(kb, s->audit_pos);
    MDB_val k = {sizeof(kb), kb}, v;
    if (mdb_cursor_open(t, s->audit_db, &c) != 0)
        return -1;
    int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    for (long n = 0; rc == 0 && n < visits && *deleted < budget; n++) {
        int bad = k.mv_size != 8 || v.mv_size < AUDIT_TS;
        if (bad)
            count_corrupt(s);
        if (bad || (int64_t)get_be64(v.mv_data) < cutoff) {
            uint8_t del[LMDB_KEY_MAX];
            memcpy(del, k.mv_data, k.mv_size);
            k.mv_data = del;
            if ((rc = mdb_del(t, s->audit_db, &k, NULL)) != 0)
                break;
            (*deleted)++;
            rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
        } else {
            rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
        }
    }
    if (rc == 0 && k.mv_size == 8)
        s->audit_pos = get_be64(k.mv_data);
    else if (rc == 0)
        s->audit_pos++;
    else if (rc == MDB_NOTFOUND)
        s->audit_pos = 0;
    mdb_cursor_close(c);
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : -1;
}

long lbw_store_prune(struct lbw_store *s, int64_t now_ms, long max_deletes)
{
    MDB_dbi dbs[3] = {s->samples_db, s->rollup_db[0], s->rollup_db[1]};
    int64_t widths[3] = {0, res_width[0], res_width[1]};
    struct prune_target tg[3];
    int any = 0;
    if (s->txn)
        return -1;
    for (int i = 0; i < 3; i++) {
        int64_t r = s->retention[i];
        tg[i] = (struct prune_target){dbs[i], r > 0 && r < now_ms ? now_ms - r : 0, widths[i]};
        any |= tg[i].cutoff > 0;
    }
    if (!any)
        return 0;
    long budget = max_deletes > 0 ? max_deletes : LONG_MAX;
    long visits = max_deletes > 0 && max_deletes < LONG_MAX / 4 ? 4 * max_deletes + 3 : LONG_MAX;
    struct prune_pos pos = max_deletes > 0 ? s->prune_pos : (struct prune_pos){0, 0};
    uint64_t audit_pos = s->audit_pos;
    MDB_txn *t;
    if (mdb_txn_begin(s->env, NULL, 0, &t) != 0)
        return -1;
    long deleted = 0;
    if (max_deletes <= 0)
        s->audit_pos = 0;
    if (tg[0].cutoff > 0 &&
        prune_audit(s, t, tg[0].cutoff, max_deletes > 0 ? budget / 2 + 1 : LONG_MAX, visits,
                    &deleted) < 0) {
        s->audit_pos = audit_pos;
        mdb_txn_abort(t);
        return -1;
    }
    for (long n = 0; n < visits && deleted < budget; n++) {
        int r = prune_step(s, t, &tg[pos.db], &pos, &deleted, budget);
        if (r < 0) {
            s->audit_pos = audit_pos;
            mdb_txn_abort(t);
            return -1;
        }
        if (r == 1 && max_deletes <= 0)
            break;
    }
    if (mdb_txn_commit(t) != 0) {
        s->audit_pos = audit_pos;
        return -1;
    }
    s->prune_pos = pos;
    return deleted;
}

/* ---- readers ------------------------------------------------------------------------------ */

static int read_begin(struct lbw_store *s, MDB_txn **t)
{
    return mdb_txn_begin(s->env, NULL, MDB_RDONLY, t) ? -1 : 0;
}

/* Returns 1 with *id, 0 if the series is unknown, -1. */
static int lookup_id(struct lbw_store *s, MDB_txn *t, const char *key, size_t keylen,
                     uint32_t *id)
{
    if (!key || keylen == 0 || keylen > LMDB_KEY_MAX)
        return 0;
    MDB_val k = {keylen, (void *)key}, v;
    int rc = mdb_get(t, s->series_db, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return -1;
    if (v.mv_size != 4 || get_be32(v.mv_data) == 0) {
        count_corrupt(s);
        return 0;
    }
    *id = get_be32(v.mv_data);
    return 1;
}

/* Reads series id's head record and decodes its chunk into smp. Returns the number of
 * samples, 0 if there is no head (a corrupt one is counted and reads as none), -1. */
static int read_head(struct lbw_store *s, MDB_txn *t, uint32_t id,
                     struct lbw_chunk_sample smp[LBW_CHUNK_MAX_SAMPLES])
{
    const uint8_t *chunk;
    size_t clen;
    uint8_t idb[4];
    MDB_val k, v;
    id_key(idb, &k, id);
    int rc = mdb_get(t, s->heads_db, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return -1;
    chunk = head_chunk(&v, &clen);
    int n = chunk ? lbw_chunk_decode(chunk, clen, smp) : -1;
    if (n < 0) {
        count_corrupt(s);
        return 0;
    }
    return n;
}

/* The newest sample of series id: the head's last, else the newest sealed chunk's that
 * decodes. Returns 1, 0 if none, -1. */
static int newest_sample(struct lbw_store *s, MDB_txn *t, MDB_cursor *c, uint32_t id,
                         int64_t *ts, double *value)
{
    struct lbw_chunk_sample smp[LBW_CHUNK_MAX_SAMPLES];
    MDB_val k, v;
    int n = read_head(s, t, id, smp);
    if (n < 0)
        return -1;
    if (n == 0) {
        int rc = seek_newest(c, id, &k, &v);
        while (rc > 0 && (n = decode_sealed(&k, &v, smp)) < 0) {
            count_corrupt(s);
            rc = mdb_cursor_get(c, &k, &v, MDB_PREV);
            rc = rc == MDB_NOTFOUND ? 0 : rc ? -1 : key_is(&k, id);
        }
        if (rc <= 0)
            return rc;
    }
    *ts = smp[n - 1].ts_ms;
    *value = smp[n - 1].value;
    return 1;
}

int lbw_store_last(struct lbw_store *s, const char *key, size_t keylen, int64_t *ts_ms,
                   double *value)
{
    MDB_txn *t;
    MDB_cursor *c;
    uint32_t id;
    if (read_begin(s, &t) < 0)
        return -1;
    int rc = lookup_id(s, t, key, keylen, &id);
    if (rc > 0 && mdb_cursor_open(t, s->samples_db, &c) != 0) {
        rc = -1;
    } else if (rc > 0) {
        rc = newest_sample(s, t, c, id, ts_ms, value);
        mdb_cursor_close(c);
    }
    mdb_txn_abort(t);
    return rc;
}

int lbw_store_foreach_series(struct lbw_store *s, const char *prefix, lbw_series_cb cb,
                             void *arg)
{
    size_t plen = prefix ? strlen(prefix) : 0;
    MDB_txn *t;
    MDB_cursor *c, *sc;
    if (plen > LMDB_KEY_MAX)
        return 0;
    if (read_begin(s, &t) < 0)
        return -1;
    if (mdb_cursor_open(t, s->series_db, &c) != 0 || mdb_cursor_open(t, s->samples_db, &sc) != 0) {
        mdb_txn_abort(t);
        return -1;
    }
    MDB_val k = {plen, (void *)prefix}, v;
    int rc = mdb_cursor_get(c, &k, &v, plen ? MDB_SET_RANGE : MDB_FIRST);
    while (rc == 0 && (k.mv_size >= plen && memcmp(k.mv_data, prefix ? prefix : "", plen) == 0)) {
        struct lbw_key_parsed parsed;
        char key[LBW_KEY_MAX];
        if (v.mv_size != 4 || get_be32(v.mv_data) == 0 ||
            lbw_key_parse(k.mv_data, k.mv_size, &parsed) < 0) {
            count_corrupt(s);
        } else {
            memcpy(key, k.mv_data, k.mv_size);
            key[k.mv_size] = '\0';
            struct lbw_series_info si = {get_be32(v.mv_data), key, k.mv_size, 0, 0};
            if (newest_sample(s, t, sc, si.id, &si.last_ts, &si.last_value) < 0) {
                rc = -1;
                break;
            }
            if (cb(arg, &si))
                break;
        }
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(sc);
    mdb_cursor_close(c);
    mdb_txn_abort(t);
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : -1;
}

/* Positions c on the chunk of series id that may hold from: the one starting at from, else
 * the one before it, else the first after it. Returns an LMDB code; check key_is after. */
static int seek_chunk(MDB_cursor *c, uint32_t id, int64_t from, MDB_val *k, MDB_val *v)
{
    uint8_t kb[KEYLEN];
    make_key(kb, id, from);
    *k = (MDB_val){KEYLEN, kb};
    int rc = mdb_cursor_get(c, k, v, MDB_SET_RANGE);
    if (rc == 0 && key_is(k, id) && key_ts(k) == from)
        return 0;
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    rc = mdb_cursor_get(c, k, v, rc == MDB_NOTFOUND ? MDB_LAST : MDB_PREV);
    if ((rc == 0 && key_is(k, id)) || (rc != 0 && rc != MDB_NOTFOUND))
        return rc;
    *k = (MDB_val){KEYLEN, kb};
    return mdb_cursor_get(c, k, v, MDB_SET_RANGE);
}

/* Calls fn for every sample of series id with from <= ts < end, oldest first, until fn
 * returns nonzero: sealed chunks, then the head. Corrupt chunks are skipped and counted.
 * Returns 0 or -1. */
typedef int (*sample_fn)(void *arg, int64_t ts, double value);

static int scan_samples(struct lbw_store *s, MDB_txn *t, uint32_t id, int64_t from, int64_t end,
                        sample_fn fn, void *arg)
{
    struct lbw_chunk_sample smp[LBW_CHUNK_MAX_SAMPLES];
    MDB_cursor *c;
    MDB_val k, v;
    if (mdb_cursor_open(t, s->samples_db, &c) != 0)
        return -1;
    int rc = seek_chunk(c, id, from, &k, &v), stop = 0;
    while (rc == 0 && !stop && key_is(&k, id) && key_ts(&k) < end) {
        int n = decode_sealed(&k, &v, smp);
        if (n < 0)
            count_corrupt(s);
        for (int i = 0; i < n && !stop; i++)
            if (smp[i].ts_ms >= from && smp[i].ts_ms < end)
                stop = fn(arg, smp[i].ts_ms, smp[i].value);
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return -1;
    int n = stop ? 0 : read_head(s, t, id, smp);
    for (int i = 0; i < n && !stop; i++)
        if (smp[i].ts_ms >= from && smp[i].ts_ms < end)
            stop = fn(arg, smp[i].ts_ms, smp[i].value);
    return n < 0 ? -1 : 0;
}

struct points_out {
    struct lbw_point *out;
    size_t n, max;
};

static int collect_point(void *arg, int64_t ts, double value)
{
    struct points_out *p = arg;
    p->out[p->n++] = (struct lbw_point){ts, value};
    return p->n == p->max;
}

long lbw_store_points(struct lbw_store *s, const char *key, size_t keylen, int64_t from,
                      int64_t to, struct lbw_point *out, size_t max)
{
    struct points_out p = {out, 0, max};
    MDB_txn *t;
    uint32_t id;
    if (from > to || max == 0)
        return 0;
    if (!out || read_begin(s, &t) < 0)
        return -1;
    int64_t end = to == INT64_MAX ? INT64_MAX : to + 1;
    int rc = lookup_id(s, t, key, keylen, &id);
    if (rc > 0)
        rc = scan_samples(s, t, id, from, end, collect_point, &p);
    mdb_txn_abort(t);
    return rc < 0 ? -1 : (long)p.n;
}

/* The newest sealed chunk of id, decoded; 0 if none (or it does not decode), -1. */
static int read_newest_sealed(struct lbw_store *s, MDB_txn *t, uint32_t id,
                              struct lbw_chunk_sample smp[LBW_CHUNK_MAX_SAMPLES])
{
    MDB_cursor *c;
    MDB_val k, v;
    int n = 0;
    if (mdb_cursor_open(t, s->samples_db, &c) != 0)
        return -1;
    int found = seek_newest(c, id, &k, &v);
    if (found > 0 && (n = decode_sealed(&k, &v, smp)) < 0) {
        count_corrupt(s);
        n = 0;
    }
    mdb_cursor_close(c);
    return found < 0 ? -1 : n;
}

/* Copies the samples of a (oldest first) with ts >= from into out, keeping the newest max. */
static size_t keep_newest(const struct lbw_chunk_sample *a, int n, int64_t from,
                          struct lbw_point *out, size_t max, size_t have)
{
    for (int i = 0; i < n; i++) {
        if (a[i].ts_ms < from)
            continue;
        if (have == max) {
            memmove(out, out + 1, (max - 1) * sizeof(*out));
            have--;
        }
        out[have++] = (struct lbw_point){a[i].ts_ms, a[i].value};
    }
    return have;
}

long lbw_store_recent(struct lbw_store *s, const char *key, size_t keylen, int64_t from,
                      struct lbw_point *out, size_t max)
{
    struct lbw_chunk_sample sealed[LBW_CHUNK_MAX_SAMPLES], head[LBW_CHUNK_MAX_SAMPLES];
    MDB_txn *t;
    uint32_t id;
    int ns = 0, nh = 0;
    if (!out || max == 0)
        return 0;
    if (read_begin(s, &t) < 0)
        return -1;
    int rc = lookup_id(s, t, key, keylen, &id);
    if (rc > 0 && ((ns = read_newest_sealed(s, t, id, sealed)) < 0 ||
                   (nh = read_head(s, t, id, head)) < 0))
        rc = -1;
    mdb_txn_abort(t);
    if (rc <= 0)
        return rc;
    /* a sealed chunk is older than the head by construction */
    size_t n = keep_newest(sealed, ns, from, out, max, 0);
    return (long)keep_newest(head, nh, from, out, max, n);
}

struct steps_out {
    struct lbw_step *out;
    int64_t from, step;
};

static void fold(struct lbw_step *st, const struct bucket *b)
{
    if (st->count == 0 || b->min < st->min)
        st->min = b->min;
    if (st->count == 0 || b->max > st->max)
        st->max = b->max;
    st->sum += b->sum;
    st->count += b->count;
}

static int fold_sample(void *arg, int64_t ts, double value)
{
    struct steps_out *o = arg;
    if (!isnan(value))
        fold(&o->out[(ts - o->from) / o->step], &(struct bucket){ts, value, value, value, 1});
    return 0;
}

/* Folds the buckets of resolution res in [from, end), then the head's samples (which the
 * rollups do not hold yet). */
static int fold_rollups(struct lbw_store *s, MDB_txn *t, uint32_t id, int res, int64_t end,
                        struct steps_out *o)
{
    MDB_cursor *c;
    uint8_t kb[KEYLEN];
    make_key(kb, id, o->from);
    MDB_val k = {KEYLEN, kb}, v;
    if (mdb_cursor_open(t, s->rollup_db[res], &c) != 0)
        return -1;
    int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && key_is(&k, id) && key_ts(&k) < end) {
        struct bucket b;
        if (v.mv_size != BUCKET_BYTES || get_bucket(v.mv_data, &b) < 0 || b.count == 0 ||
            !aligned(key_ts(&k), res))
            count_corrupt(s);
        else
            fold(&o->out[(key_ts(&k) - o->from) / o->step], &b);
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return -1;

    struct lbw_chunk_sample smp[LBW_CHUNK_MAX_SAMPLES];
    int n = read_head(s, t, id, smp);
    for (int i = 0; i < n; i++)
        if (smp[i].ts_ms >= o->from && smp[i].ts_ms < end)
            fold_sample(o, smp[i].ts_ms, smp[i].value);
    return n < 0 ? -1 : 0;
}

/* The rollup resolution whose buckets tile steps of step_ms from from, or -1 for raw. */
static int choose_resolution(int64_t from, int64_t step_ms)
{
    for (int res = NRES - 1; res >= 0; res--)
        if (step_ms % res_width[res] == 0 && aligned(from, res))
            return res;
    return -1;
}

long lbw_store_steps(struct lbw_store *s, const char *key, size_t keylen, int64_t from,
                     int64_t to, int64_t step_ms, struct lbw_step *out, size_t max)
{
    MDB_txn *t;
    uint32_t id;
    if (step_ms <= 0 || from < 0 || to > INT64_MAX - step_ms || !out)
        return -1;
    if (from > to || max == 0)
        return 0;
    uint64_t n = (uint64_t)((to - from) / step_ms) + 1;
    if (n > max)
        n = max;
    int64_t end = from + (int64_t)n * step_ms;
    for (uint64_t i = 0; i < n; i++)
        out[i] = (struct lbw_step){from + (int64_t)i * step_ms, 0, 0, 0, 0};
    if (read_begin(s, &t) < 0)
        return -1;
    struct steps_out o = {out, from, step_ms};
    int res = choose_resolution(from, step_ms);
    int rc = lookup_id(s, t, key, keylen, &id);
    if (rc > 0)
        rc = res >= 0 ? fold_rollups(s, t, id, res, end, &o)
                      : scan_samples(s, t, id, from, end, fold_sample, &o);
    mdb_txn_abort(t);
    return rc < 0 ? -1 : (long)n;
}

long lbw_store_meta_get(struct lbw_store *s, const char *name, void *val, size_t cap)
{
    MDB_txn *t;
    if (!meta_name_ok(name) || read_begin(s, &t) < 0)
        return -1;
    MDB_val k = {strlen(name), (void *)name}, v;
    int rc = mdb_get(t, s->meta_db, &k, &v);
    long len = rc == 0 ? (long)v.mv_size : rc == MDB_NOTFOUND ? 0 : -1;
    if (rc == 0 && val)
        memcpy(val, v.mv_data, v.mv_size < cap ? v.mv_size : cap);
    mdb_txn_abort(t);
    return len;
}

long lbw_store_audit_get(struct lbw_store *s, uint64_t index, void *rec, size_t cap)
{
    MDB_txn *t;
    uint8_t kb[8];
    if (read_begin(s, &t) < 0)
        return -1;
    put_be64(kb, index);
    MDB_val k = {sizeof(kb), kb}, v;
    int rc = mdb_get(t, s->audit_db, &k, &v);
    long len = rc == 0 ? (long)v.mv_size : rc == MDB_NOTFOUND ? 0 : -1;
    if (rc == 0 && rec)
        memcpy(rec, v.mv_data, v.mv_size < cap ? v.mv_size : cap);
    mdb_txn_abort(t);
    return len;
}

int lbw_store_audit_foreach(struct lbw_store *s, uint64_t from, lbw_audit_cb cb, void *arg)
{
    MDB_txn *t;
    MDB_cursor *c;
    uint8_t kb[8];
    if (read_begin(s, &t) < 0)
        return -1;
    if (mdb_cursor_open(t, s->audit_db, &c) != 0) {
        mdb_txn_abort(t);
        return -1;
    }
    put_be64(kb, from);
    MDB_val k = {sizeof(kb), kb}, v;
    int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (rc == 0) {
        if (k.mv_size != 8 || v.mv_size < AUDIT_TS)
            count_corrupt(s);
        else if (cb(arg, get_be64(k.mv_data), v.mv_data, v.mv_size))
            break;
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    mdb_txn_abort(t);
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : -1;
}

long lbw_store_audit_cert_get(struct lbw_store *s, const uint8_t sha256[32], void *der,
                              size_t cap)
{
    MDB_txn *t;
    if (!sha256 || read_begin(s, &t) < 0)
        return -1;
    MDB_val k = {32, (void *)sha256}, v;
    int rc = mdb_get(t, s->audit_cert_db, &k, &v);
    long len = rc == 0 ? (long)v.mv_size : rc == MDB_NOTFOUND ? 0 : -1;
    if (rc == 0 && der)
        memcpy(der, v.mv_data, v.mv_size < cap ? v.mv_size : cap);
    mdb_txn_abort(t);
    return len;
}

void lbw_store_stats(struct lbw_store *s, struct lbw_store_stats *out)
{
    out->series = atomic_load_explicit(&s->n_series, memory_order_relaxed);
    out->appended = atomic_load_explicit(&s->n_appended, memory_order_relaxed);
    out->dropped_old = atomic_load_explicit(&s->n_dropped, memory_order_relaxed);
    out->corrupt = atomic_load_explicit(&s->n_corrupt, memory_order_relaxed);
    out->commits = atomic_load_explicit(&s->n_commits, memory_order_relaxed);
}

/* ---- open / close ------------------------------------------------------------------------- */

/* Reads the u32 meta value name into *out (left alone if absent). */
static int meta_u32(struct lbw_store *s, MDB_txn *t, const char *name, uint32_t *out)
{
    MDB_val k = {strlen(name), (void *)name}, v;
    int rc = mdb_get(t, s->meta_db, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc || v.mv_size != 4)
        return -1;
    *out = get_be32(v.mv_data);
    return 0;
}

static int open_dbs(struct lbw_store *s, MDB_txn *t)
{
    static const char *const names[] = {"series",    "series_id", "samples", "heads",
                                        "rollup_1m", "rollup_1h", "meta",    "audit",
                                        "audit_cert"};
    MDB_dbi *dbis[] = {&s->series_db,    &s->series_id_db, &s->samples_db,
                       &s->heads_db,     &s->rollup_db[0], &s->rollup_db[1],
                       &s->meta_db,      &s->audit_db,     &s->audit_cert_db};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        int rc = mdb_dbi_open(t, names[i], MDB_CREATE, dbis[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Opens the named databases, checks or writes the schema version, loads the id counter. */
static int init_dbs(struct lbw_store *s, char *err, size_t errlen)
{
    MDB_txn *t;
    MDB_stat st;
    uint32_t schema = 0;
    int rc = mdb_txn_begin(s->env, NULL, 0, &t);
    if (rc != 0) {
        snprintf(err, errlen, "store: %s", mdb_strerror(rc));
        return -1;
    }
    s->next_id = 1;
    if ((rc = open_dbs(s, t)) != 0 || (rc = mdb_stat(t, s->series_db, &st)) != 0) {
        snprintf(err, errlen, "store: opening databases: %s", mdb_strerror(rc));
    } else if (meta_u32(s, t, "lbw.schema", &schema) < 0 ||
               meta_u32(s, t, "lbw.next_id", &s->next_id) < 0 || s->next_id == 0) {
        snprintf(err, errlen, "store: unreadable metadata");
        rc = -1;
    } else if (schema != 0 && schema != SCHEMA_VERSION) {
        snprintf(err, errlen, "store: schema version %u, this build reads %u", schema,
                 SCHEMA_VERSION);
        rc = -1;
    } else if (schema == 0 && (rc = put_u32(t, s->meta_db, "lbw.schema", 10, SCHEMA_VERSION))) {
        snprintf(err, errlen, "store: writing schema: %s", mdb_strerror(rc));
    }
    if (rc != 0) {
        mdb_txn_abort(t);
        return -1;
    }
    if ((rc = mdb_txn_commit(t)) != 0) {
        snprintf(err, errlen, "store: initialising: %s", mdb_strerror(rc));
        return -1;
    }
    s->committed_next_id = s->next_id;
    atomic_store(&s->n_series, st.ms_entries);
    return 0;
}

static int open_env(struct lbw_store *s, const struct lbw_store_options *opt, char *err,
                    size_t errlen)
{
    int dead, rc = mdb_env_create(&s->env);
    if (rc == 0)
        rc = mdb_env_set_maxdbs(s->env, 12);
    if (rc == 0)
        rc = mdb_env_set_mapsize(s->env, opt->map_size ? opt->map_size : (size_t)1 << 30);
    if (rc == 0)
        rc = mdb_env_open(s->env, opt->dir, MDB_NOTLS | (opt->no_sync ? MDB_NOSYNC : 0), 0600);
    if (rc == 0)
        rc = mdb_reader_check(s->env, &dead);
    if (rc != 0) {
        snprintf(err, errlen, "store: %s: %s", opt->dir, mdb_strerror(rc));
        return -1;
    }
    return 0;
}

int lbw_store_open(struct lbw_store **out, const struct lbw_store_options *opt, char *err,
                   size_t errlen)
{
    *out = NULL;
    if (!opt || !opt->dir) {
        snprintf(err, errlen, "store: no directory");
        return -1;
    }
    if (mkdir(opt->dir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "store: %s: %s", opt->dir, strerror(errno));
        return -1;
    }
    struct lbw_store *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "store: out of memory");
        return -1;
    }
    s->retention[0] = opt->retention_raw_ms;
    s->retention[1] = opt->retention_1m_ms;
    s->retention[2] = opt->retention_1h_ms;
    s->series_cap = 64;
    s->table_size = 128;
    s->series = malloc(s->series_cap * sizeof(*s->series));
    s->dirty = malloc(s->series_cap * sizeof(*s->dirty));
    s->table = calloc(s->table_size, sizeof(*s->table));
    if (!s->series || !s->dirty || !s->table) {
        snprintf(err, errlen, "store: out of memory");
        lbw_store_close(s);
        return -1;
    }
    if (open_env(s, opt, err, errlen) < 0 || init_dbs(s, err, errlen) < 0) {
        lbw_store_close(s);
        return -1;
    }
    *out = s;
    return 0;
}

void lbw_store_close(struct lbw_store *s)
{
    if (!s)
        return;
    lbw_store_abort(s);
    for (size_t i = 0; i < s->nseries; i++) {
        free(s->series[i].key);
        lbw_chunk_enc_free(&s->series[i].head);
    }
    free(s->series);
    free(s->dirty);
    free(s->table);
    if (s->env)
        mdb_env_close(s->env);
    free(s);
}
