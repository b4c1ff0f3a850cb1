/* fsm.c - the replicated state machine: libraft's struct raft_fsm over signed sample
 * batches and the store. See fsm.h for the contract.
 *
 * Owns the replicated state: the applied index, the hash chain and the per-origin sequence
 * table (an array sorted by (kind, id, name): binary search per batch, serialised in that
 * order, so nothing depends on memory addresses or hashing); the bookkeeping of the open
 * store transaction; the store's series handles of the keys of the batch being applied (each
 * key is looked up once per batch, not once per sample); the counters; the snapshot and audit
 * record codecs.
 *
 * Snapshot format, version 3 (integers big-endian):
 *   8    magic "LBWSNAP\0"
 *   u32  version (3; version 2, which has no assignment table, is still restored)
 *   u64  applied index
 *   32   hash
 *   u32  norigins, then per origin, in strictly ascending (kind, id, name) order:
 *          u8 kind, u64 id, u8 name length, name, u64 last sequence number
 *   u32  ledger length, then the alert ledger (lbw_ledger_serialize)
 *   u32  assignment table length, then the agent assignment table (lbw_assign_serialize)
 *        (version 3 only)
 *   the samples section (at most snapshot_max_bytes):
 *   u32  nseries, then per series, in strictly ascending key order (bytewise, a prefix
 *        first, as LMDB orders them):
 *          u16 key length (1..LBW_KEY_MAX-1), a canonical series key,
 *          u32 nchunks (>= 1), then nchunks x (u16 length, a chunk (node/chunk.h));
 *          the samples of a series strictly increase in time across its chunks, all >= 0
 *   nothing after.
 * Restoring reads it twice: once to check every byte, once to append the samples.
 */
#include "node/fsm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

#include "alerting/ledger.h"
#include "node/assign.h"
#include "node/chunk.h"
#include "probes/sample.h"
#include "probes/bytes.h"

#define DEFAULT_WINDOW_MS (15 * 60 * 1000LL)
#define DEFAULT_SNAPSHOT_MAX ((size_t)32 << 20)
#define MIN_SNAPSHOT_MAX 64
#define AUTOFLUSH_SAMPLES 262144
#define SNAP_MAGIC "LBWSNAP"      /* with its NUL: 8 bytes */
#define SNAP_VERSION 3u
#define SNAP_VERSION_NO_ASSIGN 2u /* before the agent assignment table */
#define ASSIGN_MAX_BYTES (1 + 4 + LBW_ASSIGN_MAX * (1 + LBW_NAME_MAX + 16))
#define SNAP_POINTS (2 * LBW_CHUNK_MAX_SAMPLES) /* per series: its newest two chunks */
#define CUT_STEPS 1024            /* the window's cut moves in steps of window / CUT_STEPS */
#define ORIGIN_MIN_BYTES (1 + 8 + 1 + 1 + 8)
#define SERIES_MIN_BYTES (2 + 1 + 4)
#define CHUNK_MIN_BYTES (2 + 1)
#define AUDIT_MAX (8 + 1 + 8 + 8 + 1 + 8 + 1 + LBW_NAME_MAX + 8 + 4 + 32 + 32 + 2 + \
                   LBW_BATCH_MAX_SIG)
#define STATE_META "fsm.state"

struct origin {
    struct lbw_identity id;
    uint64_t seq;
};

struct lbw_fsm {
    struct raft_fsm rfsm;
    struct lbw_fsm_options o;
    struct raft *raft;
    EVP_MD_CTX *md;

    /* replicated state */
    struct lbw_ledger *ledger;
    struct lbw_assign *assign;
    uint64_t applied;
    uint8_t hash[32];
    struct origin *origins;
    size_t norigins, origins_cap;

    /* local */
    long *series;                 /* the store's series handle of each key of the batch being
                                   * applied (reused from batch to batch) */
    size_t series_cap;
    uint64_t pending;             /* samples appended since the last commit */
    int dirty;                    /* applied/hash changed since the last commit */
    struct lbw_fsm_stats st;
};

/* What became of one entry. */
struct outcome {
    int alert;                    /* an alert op was applied (its result below) */
    enum lbw_apply_result alert_result;
    struct lbw_ledger_change change;
    int assign;                   /* an assignment op was applied (its result below) */
    enum lbw_assign_result assign_result;
    struct lbw_assign_op assign_op;
    int rejected;
    enum lbw_fsm_reject why;
    int has_origin;
    struct lbw_identity origin;
    uint64_t seq;
    size_t nsamples, stored;
    char detail[200];
};

enum { LOCAL_IO = -1, LOCAL_NOMEM = -2 };

/* ---- byte helpers ------------------------------------------------------------------------ */

static uint8_t *wr_bytes(uint8_t *p, const void *data, size_t n)
{
    memcpy(p, data, n);
    return p + n;
}

static size_t left(const struct lbw_reader *r)
{
    return (size_t)(r->end - r->p);
}

/* A growable output buffer on raft_malloc (libraft may free snapshot buffers itself). */
struct obuf {
    uint8_t *p;
    size_t len, cap;
    int oom;
};

static uint8_t *ob_room(struct obuf *b, size_t n)
{
    if (b->oom)
        return NULL;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *p = raft_realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return NULL;
        }
        b->p = p;
        b->cap = cap;
    }
    uint8_t *at = b->p + b->len;
    b->len += n;
    return at;
}

static void ob_put(struct obuf *b, const void *data, size_t n)
{
    uint8_t *p = ob_room(b, n);
    if (p)
        memcpy(p, data, n);
}

static void ob_be(struct obuf *b, uint64_t v, size_t n)
{
    uint8_t *p = ob_room(b, n);
    if (p)
        lbw_put_be(p, v, n);
}

/* ---- origins ----------------------------------------------------------------------------- */

static int origin_cmp(const struct lbw_identity *a, const struct lbw_identity *b)
{
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    if (a->id != b->id)
        return a->id < b->id ? -1 : 1;
    return strcmp(a->name, b->name);
}

/* The index of origin id, or -1 with *pos where it would go. */
static long find_origin(const struct lbw_fsm *f, const struct lbw_identity *id, size_t *pos)
{
    size_t lo = 0, hi = f->norigins;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = origin_cmp(&f->origins[mid].id, id);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *pos = lo;
    return -1;
}

static int reserve_origin(struct lbw_fsm *f)
{
    if (f->norigins < f->origins_cap)
        return 0;
    size_t cap = f->origins_cap ? f->origins_cap * 2 : 16;
    struct origin *o = realloc(f->origins, cap * sizeof(*o));
    if (!o)
        return -1;
    f->origins = o;
    f->origins_cap = cap;
    return 0;
}

/* Records seq as the origin's last; room was reserved. */
static void set_origin_seq(struct lbw_fsm *f, const struct lbw_identity *id, uint64_t seq)
{
    size_t pos;
    long i = find_origin(f, id, &pos);
    if (i >= 0) {
        f->origins[i].seq = seq;
        return;
    }
    memmove(&f->origins[pos + 1], &f->origins[pos], (f->norigins - pos) * sizeof(*f->origins));
    f->origins[pos] = (struct origin){*id, seq};
    f->norigins++;
}

uint64_t lbw_fsm_origin_seq(const struct lbw_fsm *f, const struct lbw_identity *origin)
{
    size_t pos;
    long i = find_origin(f, origin, &pos);
    return i >= 0 ? f->origins[i].seq : 0;
}

/* Reads one origin as the snapshot and the batch format write it. */
static int read_origin(struct lbw_reader *r, struct lbw_identity *id)
{
    unsigned kind = (unsigned)lbw_get_be(r, 1);
    uint64_t v = lbw_get_be(r, 8);
    size_t nlen = (size_t)lbw_get_be(r, 1);
    const uint8_t *name = nlen > 0 && nlen < LBW_NAME_MAX ? lbw_take(r, nlen) : NULL;
    if (!name || memchr(name, 0, nlen))
        return -1;
    memset(id, 0, sizeof(*id));
    memcpy(id->name, name, nlen);
    id->kind = (enum lbw_identity_kind)kind;
    id->id = v;
    return lbw_identity_name_valid(id->name) &&
                   ((kind == LBW_ID_NODE && v >= 1 && v <= (uint64_t)INT64_MAX) ||
                    (kind == LBW_ID_AGENT && v == 0))
               ? 0
               : -1;
}

static void write_origin(struct obuf *b, const struct lbw_identity *id)
{
    size_t nlen = strlen(id->name);
    ob_be(b, (uint64_t)id->kind, 1);
    ob_be(b, id->id, 8);
    ob_be(b, nlen, 1);
    ob_put(b, id->name, nlen);
}

/* ---- apply ------------------------------------------------------------------------------- */

/* hash = SHA-256(hash || u64 index || entry) into out. */
static int chain_hash(struct lbw_fsm *f, uint64_t index, const void *entry, size_t len,
                      uint8_t out[32])
{
    uint8_t ib[8];
    lbw_put_be(ib, index, 8);
    return EVP_DigestInit_ex(f->md, EVP_sha256(), NULL) == 1 &&
                   EVP_DigestUpdate(f->md, f->hash, sizeof(f->hash)) == 1 &&
                   EVP_DigestUpdate(f->md, ib, sizeof(ib)) == 1 &&
                   EVP_DigestUpdate(f->md, entry, len) == 1 &&
                   EVP_DigestFinal_ex(f->md, out, NULL) == 1
               ? 0
               : -1;
}

static int reject(struct outcome *out, enum lbw_fsm_reject why)
{
    out->rejected = 1;
    out->why = why;
    return 0;
}

static enum lbw_fsm_reject reject_of(enum lbw_batch_error e)
{
    switch (e) {
    case LBW_BATCH_UNTRUSTED:
        return LBW_REJECT_UNTRUSTED;
    case LBW_BATCH_WRONG_ORIGIN:
        return LBW_REJECT_FORGED;
    case LBW_BATCH_BAD_SIGNATURE:
        return LBW_REJECT_BAD_SIGNATURE;
    default:
        return LBW_REJECT_MALFORMED;
    }
}

/* 1 if the vantage label of key (len bytes; untrusted) is exactly name. */
static int vantage_is(const char *key, size_t len, const char *name, size_t nlen)
{
    const char *brace = memchr(key, '{', len);
    size_t i = brace ? (size_t)(brace - key) + 1 : len;
    while (i < len) {
        size_t lname = i;
        while (i < len && key[i] != '=')
            i++;
        size_t lnlen = i - lname;
        if (len - i < 2 || key[i + 1] != '"')
            return 0;
        i += 2;
        size_t val = i;
        while (i < len && key[i] != '"')
            i += key[i] == '\\' ? 2 : 1;
        if (i >= len)
            return 0;
        if (lnlen == 7 && memcmp(key + lname, "vantage", 7) == 0)
            return i - val == nlen && memcmp(key + val, name, nlen) == 0;
        if (++i >= len || key[i] != ',')
            return 0; /* '}': no vantage label */
        i++;
    }
    return 0;
}

struct vantage_check {
    const char *name;
    size_t nlen;
    size_t bad;
};

static int check_vantage(void *arg, size_t index, const char *key, size_t keylen)
{
    struct vantage_check *c = arg;
    if (vantage_is(key, keylen, c->name, c->nlen))
        return 0;
    c->bad = index;
    return 1;
}

struct appender {
    struct lbw_store *store;
    const long *series;           /* by key index */
    size_t stored;
    int64_t oldest, newest;
    int failed;
};

static int append_sample(void *arg, size_t key_index, int64_t ts, double value)
{
    struct appender *a = arg;
    int rc = lbw_store_append_series(a->store, a->series[key_index], ts, value);
    if (rc < 0) {
        a->failed = 1;
        return 1;
    }
    a->stored += rc == 0;
    if (ts < a->oldest)
        a->oldest = ts;
    if (ts > a->newest)
        a->newest = ts;
    return 0;
}

/* Looks each key of the batch up in the store once (f->series[index]), rather than once per
 * sample. */
static int resolve_key(void *arg, size_t index, const char *key, size_t keylen)
{
    struct lbw_fsm *f = arg;
    if (index >= f->series_cap) {
        size_t cap = f->series_cap ? f->series_cap * 2 : 1024;
        while (cap <= index)
            cap *= 2;
        long *v = realloc(f->series, cap * sizeof(*v));
        if (!v)
            return 1;
        f->series = v;
        f->series_cap = cap;
    }
    f->series[index] = lbw_store_series(f->o.store, key, keylen);
    return f->series[index] < 0;
}

/* Writes the audit record of an accepted batch (layout in fsm.h) and keeps its certificate. */
static int write_audit(struct lbw_fsm *f, uint64_t index, const struct lbw_batch_view *b,
                       const struct appender *a)
{
    uint8_t rec[AUDIT_MAX], *p = rec;
    size_t nlen = strlen(b->origin.name);
    p = lbw_put_be(p, (uint64_t)(b->nsamples ? a->newest : 0), 8);
    p = lbw_put_be(p, LBW_AUDIT_VERSION, 1);
    p = lbw_put_be(p, (uint64_t)(b->nsamples ? a->oldest : 0), 8);
    p = lbw_put_be(p, index, 8);
    p = lbw_put_be(p, (uint64_t)b->origin.kind, 1);
    p = lbw_put_be(p, b->origin.id, 8);
    p = lbw_put_be(p, nlen, 1);
    p = wr_bytes(p, b->origin.name, nlen);
    p = lbw_put_be(p, b->seq, 8);
    p = lbw_put_be(p, b->nsamples, 4);
    p = wr_bytes(p, b->cert_sha256, 32);
    p = wr_bytes(p, b->payload_sha256, 32);
    p = lbw_put_be(p, b->siglen, 2);
    p = wr_bytes(p, b->sig, b->siglen);
    if (lbw_store_audit_cert_put(f->o.store, b->cert_sha256, b->cert, b->cert_len) < 0 ||
        lbw_store_audit_put(f->o.store, index, rec, (size_t)(p - rec)) < 0)
        return -1;
    return 0;
}

/* Verifies, checks policy and stores a batch. Returns 0 (out says accepted or rejected), or
 * LOCAL_IO / LOCAL_NOMEM. */
static int apply_batch(struct lbw_fsm *f, uint64_t index, const uint8_t *entry, size_t len,
                       struct outcome *out)
{
    struct lbw_batch_view b;
    size_t pos;
    enum lbw_batch_error e =
        lbw_batch_verify(f->o.verifier, entry, len, &b, out->detail, sizeof(out->detail));
    if (e == LBW_BATCH_NOMEM)
        return LOCAL_NOMEM;
    if (e != LBW_BATCH_MALFORMED) {
        out->has_origin = 1;
        out->origin = b.origin;
        out->seq = b.seq;
    }
    if (e != LBW_BATCH_OK)
        return reject(out, reject_of(e));

    long i = find_origin(f, &b.origin, &pos);
    if (i >= 0 && b.seq <= f->origins[i].seq) {
        snprintf(out->detail, sizeof(out->detail), "sequence %llu, already at %llu",
                 (unsigned long long)b.seq, (unsigned long long)f->origins[i].seq);
        return reject(out, LBW_REJECT_REPLAY);
    }
    struct vantage_check vc = {b.origin.name, strlen(b.origin.name), 0};
    if (lbw_batch_foreach_key(&b, check_vantage, &vc) < 0) {
        snprintf(out->detail, sizeof(out->detail), "key %zu does not have vantage=\"%s\"",
                 vc.bad, b.origin.name);
        return reject(out, LBW_REJECT_FOREIGN_VANTAGE);
    }
    if (i < 0 && reserve_origin(f) < 0)
        return LOCAL_NOMEM;

    if (lbw_batch_foreach_key(&b, resolve_key, f) < 0)
        return LOCAL_NOMEM;
    struct appender a = {.store = f->o.store, .series = f->series, .oldest = INT64_MAX,
                         .newest = INT64_MIN};
    if (lbw_batch_foreach_indexed(&b, append_sample, &a) < 0)
        return a.failed ? LOCAL_IO : LOCAL_NOMEM;
    if (write_audit(f, index, &b, &a) < 0)
        return LOCAL_IO;
    set_origin_seq(f, &b.origin, b.seq);
    out->nsamples = b.nsamples;
    out->stored = a.stored;
    return 0;
}

/* Verifies an entry that only a node (the leader that proposed it) may sign: alert and
 * assignment ops. Returns 1 with b filled when it may be applied, else what apply_entry
 * returns (the rejection recorded in out). */
static int verify_node_op(struct lbw_fsm *f, const uint8_t *entry, size_t len,
                          struct lbw_batch_view *b, struct outcome *out, const char *what,
                          int *rc)
{
    enum lbw_batch_error e =
        lbw_entry_verify(f->o.verifier, entry, len, b, out->detail, sizeof(out->detail));
    if (e == LBW_BATCH_NOMEM) {
        *rc = LOCAL_NOMEM;
        return 0;
    }
    if (e != LBW_BATCH_MALFORMED) {
        out->has_origin = 1;
        out->origin = b->origin;
        out->seq = b->seq;
    }
    if (e != LBW_BATCH_OK) {
        *rc = reject(out, reject_of(e));
        return 0;
    }
    if (b->origin.kind != LBW_ID_NODE) {
        snprintf(out->detail, sizeof(out->detail), "%s ops come from nodes only", what);
        *rc = reject(out, LBW_REJECT_FORGED);
        return 0;
    }
    return 1;
}

/* An alert ledger op, signed by the node that led when it proposed it. */
static int apply_alert(struct lbw_fsm *f, uint64_t index, const uint8_t *entry, size_t len,
                       struct outcome *out)
{
    struct lbw_batch_view b;
    int rc;
    if (!verify_node_op(f, entry, len, &b, out, "alert", &rc))
        return rc;
    out->alert = 1;
    out->alert_result =
        lbw_ledger_apply(f->ledger, index, b.payload, b.payload_len, &out->change);
    return out->alert_result == LBW_APPLY_NOMEM ? LOCAL_NOMEM : 0;
}

/* An agent assignment op, signed by the node that led when it proposed it. */
static int apply_assign(struct lbw_fsm *f, uint64_t index, const uint8_t *entry, size_t len,
                        struct outcome *out)
{
    struct lbw_batch_view b;
    int rc;
    if (!verify_node_op(f, entry, len, &b, out, "assignment", &rc))
        return rc;
    out->assign = 1;
    out->assign_result =
        lbw_assign_apply(f->assign, index, b.payload, b.payload_len, &out->assign_op);
    return 0;
}

static int apply_entry(struct lbw_fsm *f, uint64_t index, const uint8_t *entry, size_t len,
                       struct outcome *out)
{
    if (len > 0 && entry[0] == LBW_ENTRY_BATCH)
        return apply_batch(f, index, entry, len, out);
    if (len > 0 && entry[0] == LBW_ENTRY_ALERT)
        return apply_alert(f, index, entry, len, out);
    if (len > 0 && entry[0] == LBW_ENTRY_ASSIGN)
        return apply_assign(f, index, entry, len, out);
    snprintf(out->detail, sizeof(out->detail), "unknown entry type");
    return reject(out, LBW_REJECT_MALFORMED);
}

/* Takes an applied entry's outcome into the state and reports it. */
static void take_outcome(struct lbw_fsm *f, uint64_t index, const uint8_t hash[32],
                         const struct outcome *out)
{
    memcpy(f->hash, hash, sizeof(f->hash));
    f->applied = index;
    f->dirty = 1;
    f->st.entries++;
    if (out->rejected) {
        f->st.rejected[out->why]++;
        if (f->o.on_reject)
            f->o.on_reject(f->o.arg, index, out->why, out->has_origin ? &out->origin : NULL,
                           out->seq, out->detail);
        return;
    }
    if (out->alert) {
        f->st.alert_ops[out->alert_result]++;
        if (f->o.on_alert)
            f->o.on_alert(f->o.arg, index, out->alert_result, &out->change);
        return;
    }
    if (out->assign) {
        f->st.assign_ops[out->assign_result]++;
        if (f->o.on_assign)
            f->o.on_assign(f->o.arg, index, out->assign_result, &out->assign_op);
        return;
    }
    f->st.batches++;
    f->st.samples += out->stored;
    f->pending += out->nsamples;
    if (f->o.on_batch)
        f->o.on_batch(f->o.arg, &out->origin, out->seq);
}

static int fsm_apply(struct raft_fsm *rfsm, const struct raft_buffer *buf, void **result)
{
    struct lbw_fsm *f = rfsm->data;
    uint64_t index = f->raft ? f->raft->last_applied + 1 : f->applied + 1;
    struct outcome out;
    uint8_t hash[32];

    if (result)
        *result = NULL;
    if (f->pending >= AUTOFLUSH_SAMPLES && lbw_fsm_flush(f) < 0)
        return RAFT_IOERR;
    if (chain_hash(f, index, buf->base, buf->len, hash) < 0)
        return RAFT_NOMEM;
    memset(&out, 0, sizeof(out));
    int rc = apply_entry(f, index, buf->base, buf->len, &out);
    if (rc < 0) {
        f->st.store_errors += rc == LOCAL_IO;
        return rc == LOCAL_IO ? RAFT_IOERR : RAFT_NOMEM;
    }
    take_outcome(f, index, hash, &out);
    return 0;
}

/* ---- commit ------------------------------------------------------------------------------ */

/* Writes applied index and hash into the store's meta, for the next commit. */
static int put_state_meta(struct lbw_fsm *f, uint64_t applied, const uint8_t hash[32])
{
    uint8_t v[8 + 32];
    wr_bytes(lbw_put_be(v, applied, 8), hash, 32);
    return lbw_store_meta_put(f->o.store, STATE_META, v, sizeof(v));
}

int lbw_fsm_flush(struct lbw_fsm *f)
{
    if (f->dirty && put_state_meta(f, f->applied, f->hash) < 0)
        return -1;
    if (lbw_store_commit(f->o.store) < 0)
        return -1;
    f->dirty = 0;
    f->pending = 0;
    return 0;
}

/* ---- snapshot ---------------------------------------------------------------------------- */

/* A series that may have samples in the window. */
struct cand {
    size_t key_off;
    size_t keylen;
    int64_t last_ts;
};

struct cands {
    char *text;
    size_t text_len, text_cap;
    struct cand *v;
    size_t n, cap;
    int64_t newest, window;
    int oom;
};

/* Keeps series whose latest sample is within the window of the newest seen so far (the
 * final cut is made once the newest of all is known). */
static int collect_cand(void *arg, const struct lbw_series_info *si)
{
    struct cands *c = arg;
    if (si->last_ts > c->newest)
        c->newest = si->last_ts;
    if (si->last_ts < c->newest - c->window)
        return 0;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 256;
        struct cand *v = realloc(c->v, cap * sizeof(*v));
        if (!v)
            goto oom;
        c->v = v;
        c->cap = cap;
    }
    if (c->text_len + si->keylen > c->text_cap) {
        size_t cap = c->text_cap ? c->text_cap : 16384;
        while (cap < c->text_len + si->keylen)
            cap *= 2;
        char *t = realloc(c->text, cap);
        if (!t)
            goto oom;
        c->text = t;
        c->text_cap = cap;
    }
    memcpy(c->text + c->text_len, si->key, si->keylen);
    c->v[c->n++] = (struct cand){c->text_len, si->keylen, si->last_ts};
    c->text_len += si->keylen;
    return 0;
oom:
    c->oom = 1;
    return 1;
}

struct snap_writer {
    struct lbw_fsm *f;
    const struct cands *c;
    struct lbw_point *pts;
    struct lbw_chunk_enc enc;
    struct obuf *o;
    size_t start, max;
};

static int over(const struct snap_writer *w)
{
    return w->o->len - w->start > w->max;
}

/* Appends the open chunk (if any) as (u16 length, bytes) and empties it. */
static void emit_chunk(struct snap_writer *w, uint32_t *nchunks)
{
    size_t len;
    const uint8_t *data = lbw_chunk_data(&w->enc, &len);
    if (len == 0)
        return;
    ob_be(w->o, len, 2);
    ob_put(w->o, data, len);
    lbw_chunk_enc_reset(&w->enc);
    (*nchunks)++;
}

/* Writes one series' samples at or after from. Returns 0, 1 when past the limit, -1. */
static int write_series(struct snap_writer *w, const struct cand *cd, int64_t from,
                        uint32_t *nseries)
{
    const char *key = w->c->text + cd->key_off;
    size_t series_at = w->o->len, nchunks_at;
    uint32_t nchunks = 0;
    long got;
    ob_be(w->o, cd->keylen, 2);
    ob_put(w->o, key, cd->keylen);
    nchunks_at = w->o->len;
    ob_be(w->o, 0, 4);
    lbw_chunk_enc_reset(&w->enc);
    /* a series' newest chunks only: two reads, however fast it is written */
    got = lbw_store_recent(w->f->o.store, key, cd->keylen, from, w->pts, SNAP_POINTS);
    if (got < 0)
        return -1;
    for (long i = 0; i < got; i++) {
        if (!lbw_chunk_fits(&w->enc, w->pts[i].ts_ms))
            emit_chunk(w, &nchunks);
        if (lbw_chunk_append(&w->enc, w->pts[i].ts_ms, w->pts[i].value) < 0)
            return -1;
    }
    if (over(w) || w->o->oom)
        return w->o->oom ? -1 : 1;
    emit_chunk(w, &nchunks);
    if (w->o->oom)
        return -1;
    if (nchunks == 0) {
        w->o->len = series_at;
        return 0;
    }
    lbw_put_be(w->o->p + nchunks_at, nchunks, 4);
    (*nseries)++;
    return over(w);
}

/* Writes the samples section with every candidate's samples at or after from. Returns 0,
 * 1 if it would be larger than the limit (the output is then cut back), or -1. */
static int write_samples(struct snap_writer *w, int64_t from)
{
    uint32_t nseries = 0;
    int rc = 0;
    w->o->len = w->start;
    ob_be(w->o, 0, 4);
    for (size_t i = 0; i < w->c->n && rc == 0; i++)
        if (w->c->v[i].last_ts >= from)
            rc = write_series(w, &w->c->v[i], from, &nseries);
    if (rc == 0 && w->o->oom)
        rc = -1;
    if (rc != 0) {
        w->o->len = w->start;
        return rc;
    }
    lbw_put_be(w->o->p + w->start, nseries, 4);
    return 0;
}

/* The window's samples: everything since newest - window if it fits, else the earliest cut
 * (to a step of window / CUT_STEPS) whose samples fit. */
static int write_window(struct snap_writer *w)
{
    int64_t newest = w->c->newest, window = w->f->o.window_ms;
    int64_t bad = newest > window ? newest - window : 0;
    int64_t good = newest < INT64_MAX ? newest + 1 : INT64_MAX;
    int64_t step = window / CUT_STEPS + 1;
    int rc = write_samples(w, bad);
    if (rc <= 0)
        return rc;
    while (good - bad > step) {
        int64_t mid = bad + (good - bad) / 2;
        if ((rc = write_samples(w, mid)) < 0)
            return -1;
        if (rc == 0)
            good = mid;
        else
            bad = mid;
    }
    if ((rc = write_samples(w, good)) <= 0)
        return rc;
    ob_be(w->o, 0, 4); /* not even the newest instant fits: no samples */
    return w->o->oom ? -1 : 0;
}

static void write_head(const struct lbw_fsm *f, struct obuf *o)
{
    ob_put(o, SNAP_MAGIC, sizeof(SNAP_MAGIC));
    ob_be(o, SNAP_VERSION, 4);
    ob_be(o, f->applied, 8);
    ob_put(o, f->hash, sizeof(f->hash));
    ob_be(o, f->norigins, 4);
    for (size_t i = 0; i < f->norigins; i++) {
        write_origin(o, &f->origins[i].id);
        ob_be(o, f->origins[i].seq, 8);
    }
}

/* The ledger as u32 length + its serialisation. */
static int write_ledger(const struct lbw_fsm *f, struct obuf *o)
{
    struct lbw_bytes b = {0};
    int rc = lbw_ledger_serialize(f->ledger, &b);
    if (rc == 0 && b.len <= UINT32_MAX) {
        ob_be(o, b.len, 4);
        ob_put(o, b.data, b.len);
    }
    lbw_bytes_free(&b);
    return rc == 0 && !o->oom ? 0 : -1;
}

/* The assignment table as u32 length + its serialisation. */
static int write_assign(const struct lbw_fsm *f, struct obuf *o)
{
    uint8_t *p;
    size_t len;
    if (lbw_assign_serialize(f->assign, &p, &len) < 0)
        return -1;
    ob_be(o, len, 4);
    ob_put(o, p, len);
    free(p);
    return o->oom ? -1 : 0;
}

/* Builds the whole snapshot into o. Returns 0 or a RAFT_* error. */
static int build_snapshot(struct lbw_fsm *f, struct obuf *o)
{
    struct cands c = {.window = f->o.window_ms};
    struct snap_writer w = {f, &c, malloc(SNAP_POINTS * sizeof(struct lbw_point)), {0}, o, 0,
                            f->o.snapshot_max_bytes};
    int rc = RAFT_NOMEM;
    lbw_chunk_enc_init(&w.enc);
    write_head(f, o);
    if (write_ledger(f, o) < 0 || write_assign(f, o) < 0)
        goto out;
    w.start = o->len;
    if (!w.pts || o->oom)
        goto out;
    if (lbw_store_foreach_series(f->o.store, NULL, collect_cand, &c) < 0 || c.oom) {
        rc = c.oom ? RAFT_NOMEM : RAFT_IOERR;
        goto out;
    }
    rc = write_window(&w) == 0 ? 0 : o->oom ? RAFT_NOMEM : RAFT_IOERR;
out:
    lbw_chunk_enc_free(&w.enc);
    free(w.pts);
    free(c.v);
    free(c.text);
    return rc;
}

static int fsm_snapshot(struct raft_fsm *rfsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct lbw_fsm *f = rfsm->data;
    struct obuf o = {0};
    if (lbw_fsm_flush(f) < 0)
        return RAFT_IOERR;
    int rc = build_snapshot(f, &o);
    if (rc == 0 && !(*bufs = raft_malloc(sizeof(**bufs))))
        rc = RAFT_NOMEM;
    if (rc != 0) {
        raft_free(o.p);
        return rc;
    }
    (*bufs)[0] = (struct raft_buffer){o.p, o.len};
    *n_bufs = 1;
    f->st.snapshots++;
    f->st.last_snapshot_bytes = o.len;
    return 0;
}

static int fsm_snapshot_finalize(struct raft_fsm *rfsm, struct raft_buffer *bufs[],
                                 unsigned *n_bufs)
{
    (void)rfsm;
    for (unsigned i = 0; *bufs && i < *n_bufs; i++)
        raft_free((*bufs)[i].base);
    raft_free(*bufs);
    *bufs = NULL;
    *n_bufs = 0;
    return 0;
}

/* ---- restore ----------------------------------------------------------------------------- */

struct snap_head {
    uint64_t applied;
    uint8_t hash[32];
    struct origin *origins;
    size_t norigins;
    const uint8_t *ledger;      /* the serialised ledger, checked when restored */
    size_t ledger_len;
    const uint8_t *assign;      /* the serialised assignment table; NULL in version 2 */
    size_t assign_len;
};

/* Reads and checks everything before the samples section. Returns 0, -1 if malformed,
 * LOCAL_NOMEM. */
static int read_head(struct lbw_reader *r, struct snap_head *h)
{
    const uint8_t *magic = lbw_take(r, sizeof(SNAP_MAGIC));
    uint64_t version = magic ? lbw_get_be(r, 4) : 0;
    if (!magic || memcmp(magic, SNAP_MAGIC, sizeof(SNAP_MAGIC)) != 0 ||
        (version != SNAP_VERSION && version != SNAP_VERSION_NO_ASSIGN))
        return -1;
    h->applied = lbw_get_be(r, 8);
    const uint8_t *hash = lbw_take(r, sizeof(h->hash));
    uint64_t n = lbw_get_be(r, 4);
    if (r->bad || n > left(r) / ORIGIN_MIN_BYTES)
        return -1;
    memcpy(h->hash, hash, sizeof(h->hash));
    if (n && !(h->origins = malloc((size_t)n * sizeof(*h->origins))))
        return LOCAL_NOMEM;
    for (h->norigins = 0; h->norigins < n; h->norigins++) {
        struct origin *o = &h->origins[h->norigins];
        if (read_origin(r, &o->id) < 0)
            return -1;
        o->seq = lbw_get_be(r, 8);
        if (r->bad || (h->norigins > 0 && origin_cmp(&o[-1].id, &o->id) >= 0))
            return -1;
    }
    h->ledger_len = (size_t)lbw_get_be(r, 4);
    if (r->bad || h->ledger_len > LBW_LEDGER_MAX_BYTES ||
        !(h->ledger = lbw_take(r, h->ledger_len)))
        return -1;
    if (version == SNAP_VERSION_NO_ASSIGN)
        return 0;
    h->assign_len = (size_t)lbw_get_be(r, 4);
    if (r->bad || h->assign_len > ASSIGN_MAX_BYTES || !(h->assign = lbw_take(r, h->assign_len)))
        return -1;
    return 0;
}

/* LMDB's default key order: bytewise, a prefix first. */
static int key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c ? c : alen < blen ? -1 : alen > blen;
}

typedef int (*restore_fn)(void *arg, const char *key, size_t keylen, int64_t ts, double value);

/* Reads one series' chunks, checking them, and passes every sample to fn (if any). Returns
 * 0, -1 if malformed, LOCAL_IO if fn failed. */
static int read_chunks(struct lbw_reader *r, const uint8_t *key, size_t keylen, restore_fn fn,
                       void *arg)
{
    struct lbw_chunk_sample smp[LBW_CHUNK_MAX_SAMPLES];
    uint64_t nchunks = lbw_get_be(r, 4);
    int64_t prev = -1;
    if (r->bad || nchunks == 0 || nchunks > left(r) / CHUNK_MIN_BYTES)
        return -1;
    for (uint64_t c = 0; c < nchunks; c++) {
        size_t len = (size_t)lbw_get_be(r, 2);
        const uint8_t *data = len ? lbw_take(r, len) : NULL;
        int n = data ? lbw_chunk_decode(data, len, smp) : -1;
        if (n < 0)
            return -1;
        for (int i = 0; i < n; i++) {
            if (smp[i].ts_ms <= prev)
                return -1;
            prev = smp[i].ts_ms;
            if (fn && fn(arg, (const char *)key, keylen, smp[i].ts_ms, smp[i].value) < 0)
                return LOCAL_IO;
        }
    }
    return 0;
}

/* Reads the samples section to its end. Returns 0, -1 if malformed, LOCAL_IO. */
static int read_samples(struct lbw_reader *r, restore_fn fn, void *arg)
{
    const uint8_t *prev = NULL;
    size_t prevlen = 0;
    uint64_t n = lbw_get_be(r, 4);
    if (r->bad || n > left(r) / SERIES_MIN_BYTES)
        return -1;
    for (uint64_t i = 0; i < n; i++) {
        struct lbw_key_parsed parsed;
        size_t keylen = (size_t)lbw_get_be(r, 2);
        const uint8_t *key = keylen ? lbw_take(r, keylen) : NULL;
        if (!key || lbw_key_parse((const char *)key, keylen, &parsed) < 0 ||
            (prev && key_cmp(prev, prevlen, key, keylen) >= 0))
            return -1;
        int rc = read_chunks(r, key, keylen, fn, arg);
        if (rc != 0)
            return rc;
        prev = key;
        prevlen = keylen;
    }
    return left(r) == 0 ? 0 : -1;
}

struct restorer {
    struct lbw_fsm *f;
    uint64_t pending;
};

static int restore_sample(void *arg, const char *key, size_t keylen, int64_t ts, double value)
{
    struct restorer *rs = arg;
    if (lbw_store_append(rs->f->o.store, key, keylen, ts, value) < 0)
        return -1;
    if (++rs->pending < AUTOFLUSH_SAMPLES)
        return 0;
    rs->pending = 0;
    return lbw_store_commit(rs->f->o.store);
}

/* Appends the snapshot's samples (already checked) and commits them with the new state. */
static int restore_store(struct lbw_fsm *f, struct lbw_reader *samples, const struct snap_head *h)
{
    struct restorer rs = {f, 0};
    if (lbw_fsm_flush(f) < 0 || read_samples(samples, restore_sample, &rs) != 0 ||
        put_state_meta(f, h->applied, h->hash) < 0 || lbw_store_commit(f->o.store) < 0) {
        lbw_store_abort(f->o.store);
        return -1;
    }
    return 0;
}

/* The snapshot's assignment table, checked, into *out (a new table; empty in version 2).
 * Returns 0, or a RAFT_* error. */
static int read_assign(const struct snap_head *h, struct lbw_assign **out)
{
    *out = lbw_assign_new();
    if (!*out)
        return RAFT_NOMEM;
    int rc = h->assign ? lbw_assign_restore(*out, h->assign, h->assign_len) : 0;
    if (rc == 0)
        return 0;
    lbw_assign_free(*out);
    *out = NULL;
    return rc == -2 ? RAFT_NOMEM : RAFT_MALFORMED;
}

static int fsm_restore(struct raft_fsm *rfsm, struct raft_buffer *buf)
{
    struct lbw_fsm *f = rfsm->data;
    struct snap_head h = {0};
    struct lbw_assign *assign = NULL;
    struct lbw_reader r = {buf->base, (const uint8_t *)buf->base + buf->len, 0};
    int rc = read_head(&r, &h);
    if (rc != 0) {
        free(h.origins);
        return rc == LOCAL_NOMEM ? RAFT_NOMEM : RAFT_MALFORMED;
    }
    struct lbw_reader check = r;
    if (read_samples(&check, NULL, NULL) != 0) {
        free(h.origins);
        return RAFT_MALFORMED;
    }
    if ((rc = read_assign(&h, &assign)) != 0) {
        free(h.origins);
        return rc;
    }
    int lr = lbw_ledger_restore(f->ledger, h.ledger, h.ledger_len); /* unchanged on failure */
    if (lr != 0) {
        free(h.origins);
        lbw_assign_free(assign);
        return lr == -2 ? RAFT_NOMEM : RAFT_MALFORMED;
    }
    if (restore_store(f, &r, &h) < 0) {
        free(h.origins);
        lbw_assign_free(assign);
        return RAFT_IOERR;
    }
    lbw_assign_free(f->assign);
    f->assign = assign;
    free(f->origins);
    f->origins = h.origins;
    f->norigins = f->origins_cap = h.norigins;
    f->applied = h.applied;
    memcpy(f->hash, h.hash, sizeof(f->hash));
    f->dirty = 0;
    f->pending = 0;
    f->st.restores++;
    raft_free(buf->base);
    return 0;
}

/* ---- audit records ----------------------------------------------------------------------- */

int lbw_fsm_audit_decode(const uint8_t *rec, size_t len, struct lbw_audit_record *out)
{
    struct lbw_reader r = {rec, rec + len, 0};
    memset(out, 0, sizeof(*out));
    out->newest_ts = (int64_t)lbw_get_be(&r, 8);
    if (lbw_get_be(&r, 1) != LBW_AUDIT_VERSION)
        return -1;
    out->oldest_ts = (int64_t)lbw_get_be(&r, 8);
    out->index = lbw_get_be(&r, 8);
    if (read_origin(&r, &out->origin) < 0)
        return -1;
    out->seq = lbw_get_be(&r, 8);
    out->nsamples = (uint32_t)lbw_get_be(&r, 4);
    const uint8_t *cert = lbw_take(&r, 32), *payload = lbw_take(&r, 32);
    out->siglen = (size_t)lbw_get_be(&r, 2);
    out->sig = out->siglen && out->siglen <= LBW_BATCH_MAX_SIG ? lbw_take(&r, out->siglen) : NULL;
    if (r.bad || !out->sig || left(&r) != 0)
        return -1;
    memcpy(out->cert_sha256, cert, 32);
    memcpy(out->payload_sha256, payload, 32);
    return 0;
}

/* ---- lifecycle and reporting ------------------------------------------------------------- */

int lbw_fsm_new(struct lbw_fsm **out, const struct lbw_fsm_options *o)
{
    *out = NULL;
    if (!o || !o->store || !o->verifier || o->window_ms < 0)
        return -1;
    struct lbw_fsm *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    f->o = *o;
    if (f->o.window_ms == 0)
        f->o.window_ms = DEFAULT_WINDOW_MS;
    if (f->o.snapshot_max_bytes == 0)
        f->o.snapshot_max_bytes = DEFAULT_SNAPSHOT_MAX;
    if (f->o.snapshot_max_bytes < MIN_SNAPSHOT_MAX)
        f->o.snapshot_max_bytes = MIN_SNAPSHOT_MAX;
    if (!(f->md = EVP_MD_CTX_new()) || !(f->ledger = lbw_ledger_new()) ||
        !(f->assign = lbw_assign_new())) {
        EVP_MD_CTX_free(f->md);
        lbw_ledger_free(f->ledger);
        free(f);
        return -1;
    }
    f->rfsm = (struct raft_fsm){.version = 2,
                                .data = f,
                                .apply = fsm_apply,
                                .snapshot = fsm_snapshot,
                                .restore = fsm_restore,
                                .snapshot_finalize = fsm_snapshot_finalize};
    *out = f;
    return 0;
}

void lbw_fsm_free(struct lbw_fsm *f)
{
    if (!f)
        return;
    EVP_MD_CTX_free(f->md);
    lbw_ledger_free(f->ledger);
    lbw_assign_free(f->assign);
    free(f->origins);
    free(f->series);
    free(f);
}

struct lbw_ledger *lbw_fsm_ledger(struct lbw_fsm *f) { return f->ledger; }

const struct lbw_assign *lbw_fsm_assignments(const struct lbw_fsm *f) { return f->assign; }

struct raft_fsm *lbw_fsm_raft(struct lbw_fsm *f)
{
    return &f->rfsm;
}

void lbw_fsm_bind(struct lbw_fsm *f, struct raft *r)
{
    f->raft = r;
}

void lbw_fsm_stats(const struct lbw_fsm *f, struct lbw_fsm_stats *out)
{
    *out = f->st;
    out->applied_index = f->applied;
    memcpy(out->hash, f->hash, sizeof(out->hash));
}

void lbw_fsm_hash_hex(const uint8_t hash[32], char out[65])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[hash[i] >> 4];
        out[2 * i + 1] = hex[hash[i] & 15];
    }
    out[64] = '\0';
}

const char *lbw_fsm_reject_name(enum lbw_fsm_reject r)
{
    static const char *const names[LBW_REJECT_KINDS] = {
        "malformed", "untrusted", "forged", "bad_signature", "replay", "foreign_vantage"};
    return (unsigned)r < LBW_REJECT_KINDS ? names[r] : "unknown";
}
