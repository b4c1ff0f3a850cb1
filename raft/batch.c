/* batch.c - signed sample batches: the builder, the signer and the verifier. See batch.h for
 * the wire format and the verdicts.
 *
 * Owns:
 *   - the builder: a key table (an arena of key bytes plus an open-addressing hash table from
 *     key to its index, so each distinct key is stored once per batch) and an array of
 *     samples, all kept across lbw_batch_reset() so that a builder in steady use stops
 *     allocating; the exact payload size is tracked as samples are added;
 *   - the signer: a certificate (and its DER), its private key and identity;
 *   - the verifier: the cluster CA in an X509_STORE and a bounded cache of certificates that
 *     passed the chain check (SHA-256 of the DER -> public key, identity), evicted oldest
 *     first, so steady traffic costs one signature verification per batch.
 *
 * Everything read here is untrusted: every length is checked against what is left before it
 * is used, varints must be minimal and at most 10 bytes, timestamps may not overflow or go
 * negative, and the whole entry must be consumed exactly. The verdict depends on nothing but
 * the bytes and the CA (the chain check ignores validity dates), so every replica reaches
 * the same one.
 */
#include "raft/batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "probes/sample.h"
#include "probes/bytes.h"

#define HEADER_FIXED (1 + 1 + 1 + 8 + 1 + 8) /* type .. name length, sequence */
#define KEY_MAX_LEN (LBW_KEY_MAX - 1)
#define SAMPLE_MIN_BYTES 10                  /* index varint, delta varint, 8-byte value */
#define FOREACH_STACK_KEYS 256

enum key_alg { ALG_NONE = 0, ALG_EC_P256, ALG_ED25519 };

/* ---- byte helpers ------------------------------------------------------------------------ */

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static uint64_t zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t unzigzag(uint64_t v)
{
    return (int64_t)((v >> 1) ^ (~(v & 1) + 1));
}

static uint64_t double_bits(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof(u));
    return u;
}

/* Minimal unsigned LEB128 of at most 10 bytes that fits 64 bits. */
static uint64_t get_varint(struct lbw_reader *r)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < 10; i++) {
        const uint8_t *p;
        if (!(p = lbw_take(r, 1)))
            return 0;
        uint8_t b = *p;
        if (i == 9 && b > 1)
            break; /* more than 64 bits */
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            if (b == 0 && i > 0)
                break; /* not the shortest form */
            return v;
        }
    }
    r->bad = 1;
    return 0;
}

static size_t left(const struct lbw_reader *r)
{
    return (size_t)(r->end - r->p);
}

static int sha256(const void *data, size_t len, uint8_t out[32])
{
    return EVP_Digest(data, len, out, NULL, EVP_sha256(), NULL) == 1 ? 0 : -1;
}

static void set_err(char *err, size_t errlen, const char *what)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", what);
}

/* The algorithm a key signs batches with, or ALG_NONE. */
static enum key_alg key_alg_of(const EVP_PKEY *key)
{
    char group[64];
    size_t glen;
    if (EVP_PKEY_is_a(key, "ED25519"))
        return ALG_ED25519;
    if (!EVP_PKEY_is_a(key, "EC") ||
        !EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                        &glen))
        return ALG_NONE;
    return strcmp(group, "prime256v1") == 0 ? ALG_EC_P256 : ALG_NONE;
}

/* ---- the parsed entry -------------------------------------------------------------------- */

struct entry {
    uint8_t type;
    struct lbw_identity origin;
    uint64_t seq;
    const uint8_t *cert, *payload, *sig;
    size_t cert_len, payload_len, sig_len;
    size_t signed_len;            /* bytes before the signature length */
};

static int parse_origin(struct lbw_reader *r, struct lbw_identity *o, char *why, size_t whylen)
{
    const uint8_t *name;
    unsigned kind = (unsigned)lbw_get_be(r, 1);
    uint64_t id = lbw_get_be(r, 8);
    size_t nlen = (size_t)lbw_get_be(r, 1);
    if (r->bad || nlen == 0 || nlen >= LBW_NAME_MAX || !(name = lbw_take(r, nlen))) {
        set_err(why, whylen, "truncated origin");
        return -1;
    }
    memset(o, 0, sizeof(*o));
    memcpy(o->name, name, nlen);
    if (!lbw_identity_name_valid(o->name) || memchr(name, 0, nlen)) {
        set_err(why, whylen, "invalid origin name");
        return -1;
    }
    if ((kind == LBW_ID_NODE && id >= 1 && id <= (uint64_t)INT64_MAX) ||
        (kind == LBW_ID_AGENT && id == 0)) {
        o->kind = (enum lbw_identity_kind)kind;
        o->id = id;
        return 0;
    }
    set_err(why, whylen, "invalid origin kind or id");
    return -1;
}

/* Splits an entry into its fields; nothing may be left over. */
static int parse_entry(const uint8_t *buf, size_t len, struct entry *e, char *why, size_t whylen)
{
    struct lbw_reader r = {buf, buf + len, 0};
    e->type = len ? buf[0] : 0;
    if (len < HEADER_FIXED || (lbw_get_be(&r, 1), e->type != LBW_ENTRY_BATCH &&
                               e->type != LBW_ENTRY_ALERT && e->type != LBW_ENTRY_ASSIGN)) {
        set_err(why, whylen, "not a signed entry");
        return -1;
    }
    if (lbw_get_be(&r, 1) != LBW_BATCH_VERSION) {
        set_err(why, whylen, "unknown batch version");
        return -1;
    }
    if (parse_origin(&r, &e->origin, why, whylen) < 0)
        return -1;
    e->seq = lbw_get_be(&r, 8);
    e->cert_len = (size_t)lbw_get_be(&r, 2);
    if (r.bad || e->cert_len == 0 || e->cert_len > LBW_BATCH_MAX_CERT ||
        !(e->cert = lbw_take(&r, e->cert_len))) {
        set_err(why, whylen, "bad certificate length");
        return -1;
    }
    e->payload_len = (size_t)lbw_get_be(&r, 4);
    if (r.bad || e->payload_len > LBW_BATCH_MAX_PAYLOAD ||
        !(e->payload = lbw_take(&r, e->payload_len))) {
        set_err(why, whylen, "bad payload length");
        return -1;
    }
    e->signed_len = (size_t)(r.p - buf);
    e->sig_len = (size_t)lbw_get_be(&r, 2);
    if (r.bad || e->sig_len == 0 || e->sig_len > LBW_BATCH_MAX_SIG ||
        !(e->sig = lbw_take(&r, e->sig_len))) {
        set_err(why, whylen, "bad signature length");
        return -1;
    }
    if (left(&r) != 0) {
        set_err(why, whylen, "bytes after the signature");
        return -1;
    }
    return 0;
}

int lbw_entry_peek(const uint8_t *entry, size_t len, uint8_t *type,
                   struct lbw_identity *origin, uint64_t *seq)
{
    struct entry e;
    char why[64];
    if (!entry || parse_entry(entry, len, &e, why, sizeof(why)) < 0)
        return -1;
    *type = e.type;
    *origin = e.origin;
    *seq = e.seq;
    return 0;
}

/* ---- payload ----------------------------------------------------------------------------- */

/* Reads the key table's size and leaves r at the first key. */
static uint64_t payload_nkeys(struct lbw_reader *r)
{
    uint64_t n = get_varint(r);
    if (n > left(r) / 2) /* a key costs at least a length byte and one key byte */
        r->bad = 1;
    return n;
}

/* Reads one key-table entry. */
static const char *next_key(struct lbw_reader *r, size_t *len)
{
    const uint8_t *k;
    uint64_t n = get_varint(r);
    if (r->bad || n == 0 || n > KEY_MAX_LEN || !(k = lbw_take(r, (size_t)n))) {
        r->bad = 1;
        return NULL;
    }
    *len = (size_t)n;
    return (const char *)k;
}

static uint64_t payload_nsamples(struct lbw_reader *r)
{
    uint64_t n = get_varint(r);
    if (n > left(r) / SAMPLE_MIN_BYTES)
        r->bad = 1;
    return n;
}

/* Reads one sample after the one at *ts. */
static int next_sample(struct lbw_reader *r, uint64_t nkeys, int64_t *ts, uint64_t *key,
                       double *value)
{
    *key = get_varint(r);
    int64_t delta = unzigzag(get_varint(r));
    uint64_t bits = lbw_get_be(r, 8);
    if (r->bad || *key >= nkeys || __builtin_add_overflow(*ts, delta, ts) || *ts < 0) {
        r->bad = 1;
        return -1;
    }
    memcpy(value, &bits, sizeof(*value));
    return 0;
}

/* Walks the whole payload; it must parse exactly. */
static int check_payload(const uint8_t *p, size_t len, size_t *nsamples)
{
    struct lbw_reader r = {p, p + len, 0};
    uint64_t nkeys = payload_nkeys(&r), key;
    size_t klen = 0;
    int64_t ts = 0;
    double value;
    for (uint64_t i = 0; i < nkeys && !r.bad; i++)
        next_key(&r, &klen);
    uint64_t n = payload_nsamples(&r);
    for (uint64_t i = 0; i < n && !r.bad; i++)
        next_sample(&r, nkeys, &ts, &key, &value);
    if (r.bad || left(&r) != 0)
        return -1;
    *nsamples = (size_t)n;
    return 0;
}

static int check_keys(const uint8_t *p, size_t len, char *why, size_t whylen)
{
    struct lbw_reader r = {p, p + len, 0};
    uint64_t nkeys = payload_nkeys(&r);
    for (uint64_t i = 0; i < nkeys; i++) {
        struct lbw_key_parsed parsed;
        size_t klen = 0;
        const char *k = next_key(&r, &klen);
        if (!k || lbw_key_parse(k, klen, &parsed) < 0) {
            if (why && whylen)
                snprintf(why, whylen, "key %llu is not a canonical series key",
                         (unsigned long long)i);
            return -1;
        }
    }
    return 0;
}

int lbw_batch_foreach_key(const struct lbw_batch_view *b, lbw_batch_key_cb cb, void *arg)
{
    struct lbw_reader r = {b->payload, b->payload + b->payload_len, 0};
    uint64_t nkeys = payload_nkeys(&r);
    for (uint64_t i = 0; i < nkeys; i++) {
        size_t klen = 0;
        const char *k = next_key(&r, &klen);
        if (!k || cb(arg, (size_t)i, k, klen))
            return -1;
    }
    return 0;
}

int lbw_batch_foreach_indexed(const struct lbw_batch_view *b, lbw_batch_indexed_cb cb,
                              void *arg)
{
    struct lbw_reader r = {b->payload, b->payload + b->payload_len, 0};
    uint64_t nkeys = payload_nkeys(&r), k;
    int64_t ts = 0;
    double value;
    for (uint64_t i = 0; i < nkeys; i++) {
        size_t klen = 0;
        next_key(&r, &klen);
    }
    uint64_t n = payload_nsamples(&r);
    for (uint64_t i = 0; i < n; i++)
        if (next_sample(&r, nkeys, &ts, &k, &value) < 0 || cb(arg, (size_t)k, ts, value))
            return -1;
    return 0;
}

struct keyref {
    uint32_t off;
    uint32_t len;
};

int lbw_batch_foreach(const struct lbw_batch_view *b, lbw_batch_sample_cb cb, void *arg)
{
    struct keyref stack_keys[FOREACH_STACK_KEYS], *keys = stack_keys;
    struct lbw_reader r = {b->payload, b->payload + b->payload_len, 0};
    char key[LBW_KEY_MAX];
    uint64_t nkeys = payload_nkeys(&r), cur = UINT64_MAX, k;
    int64_t ts = 0;
    double value;
    int rc = 0;

    if (nkeys > FOREACH_STACK_KEYS && !(keys = malloc((size_t)nkeys * sizeof(*keys))))
        return -1;
    for (uint64_t i = 0; i < nkeys; i++) {
        size_t klen = 0;
        const char *kp = next_key(&r, &klen);
        keys[i] = (struct keyref){kp ? (uint32_t)((const uint8_t *)kp - b->payload) : 0,
                                  (uint32_t)klen};
    }
    uint64_t n = payload_nsamples(&r);
    for (uint64_t i = 0; i < n && rc == 0; i++) {
        if (next_sample(&r, nkeys, &ts, &k, &value) < 0) {
            rc = -1;
            break;
        }
        if (k != cur) {
            memcpy(key, b->payload + keys[k].off, keys[k].len);
            key[keys[k].len] = '\0';
            cur = k;
        }
        if (cb(arg, key, keys[k].len, ts, value))
            rc = -1;
    }
    if (keys != stack_keys)
        free(keys);
    return rc;
}

/* ---- signer ------------------------------------------------------------------------------ */

struct lbw_signer {
    EVP_PKEY *key;
    enum key_alg alg;
    uint8_t *der;
    size_t der_len;
    struct lbw_identity id;
};

void lbw_signer_free(struct lbw_signer *s)
{
    if (!s)
        return;
    EVP_PKEY_free(s->key);
    OPENSSL_free(s->der);
    free(s);
}

struct lbw_signer *lbw_signer_new(X509 *cert, EVP_PKEY *key, char *err, size_t errlen)
{
    struct lbw_signer *s = calloc(1, sizeof(*s));
    int der_len;
    if (!s) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    if (!cert || !key || X509_check_private_key(cert, key) != 1)
        set_err(err, errlen, "the key does not match the certificate");
    else if ((s->alg = key_alg_of(key)) == ALG_NONE)
        set_err(err, errlen, "the key is neither ECDSA P-256 nor Ed25519");
    else if (lbw_identity_from_cert(cert, &s->id) < 0)
        set_err(err, errlen, "the certificate carries no lbwatch identity");
    else if ((der_len = i2d_X509(cert, &s->der)) <= 0 || der_len > LBW_BATCH_MAX_CERT)
        set_err(err, errlen, "the certificate is larger than a batch may carry");
    else if (EVP_PKEY_up_ref(key) != 1)
        set_err(err, errlen, "out of memory");
    else {
        s->key = key;
        s->der_len = (size_t)der_len;
        ERR_clear_error();
        return s;
    }
    ERR_clear_error();
    lbw_signer_free(s);
    return NULL;
}

struct lbw_signer *lbw_signer_load(const char *cert_file, const char *key_file, char *err,
                                   size_t errlen)
{
    struct lbw_signer *s = NULL;
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    FILE *f = fopen(cert_file, "r");
    if (f) {
        cert = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f);
    }
    if ((f = fopen(key_file, "r")) != NULL) {
        key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
    }
    if (!cert)
        snprintf(err, errlen, "%s: cannot read a PEM certificate", cert_file);
    else if (!key)
        snprintf(err, errlen, "%s: cannot read a PEM private key", key_file);
    else
        s = lbw_signer_new(cert, key, err, errlen);
    X509_free(cert);
    EVP_PKEY_free(key);
    ERR_clear_error();
    return s;
}

const struct lbw_identity *lbw_signer_identity(const struct lbw_signer *s)
{
    return &s->id;
}

/* Signs msg[len] into sig (at most *siglen bytes; set to the length). */
static int sign(const struct lbw_signer *s, const uint8_t *msg, size_t len, uint8_t *sig,
                size_t *siglen)
{
    uint8_t digest[32];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL;
    if (ok && s->alg == ALG_ED25519)
        ok = sha256(msg, len, digest) == 0 &&
             EVP_DigestSignInit(ctx, NULL, NULL, NULL, s->key) == 1 &&
             EVP_DigestSign(ctx, sig, siglen, digest, sizeof(digest)) == 1;
    else if (ok)
        ok = EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, s->key) == 1 &&
             EVP_DigestSign(ctx, sig, siglen, msg, len) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return ok && *siglen > 0 && *siglen <= LBW_BATCH_MAX_SIG ? 0 : -1;
}

/* ---- builder ----------------------------------------------------------------------------- */

struct bkey {
    uint32_t off;                 /* in text */
    uint32_t len;
    uint32_t hash;
};

struct bsample {
    uint32_t key;
    int64_t ts;
    double value;
};

struct lbw_batch_builder {
    char *text;                   /* key bytes, back to back */
    size_t text_len, text_cap;
    struct bkey *keys;
    size_t nkeys, keys_cap;
    uint32_t *table;              /* slot = key index + 1, 0 = empty */
    size_t table_size;
    struct bsample *samples;
    size_t nsamples, samples_cap;
    size_t body;                  /* payload bytes other than the two count varints */
    int64_t last_ts;
};

/* A multiply-xorshift hash taking 8 bytes a step: it runs for every sample added, and keys
 * are typically 40-100 bytes. Only the builder's table uses it (nothing on the wire). */
static uint32_t hash_key(const char *k, size_t len)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ len, w;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        memcpy(&w, k + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    w = 0;
    memcpy(&w, k + i, len - i);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    return (uint32_t)(h ^ (h >> 29));
}

struct lbw_batch_builder *lbw_batch_builder_new(void)
{
    struct lbw_batch_builder *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->table_size = 64;
    b->table = calloc(b->table_size, sizeof(*b->table));
    if (!b->table) {
        free(b);
        return NULL;
    }
    return b;
}

void lbw_batch_builder_free(struct lbw_batch_builder *b)
{
    if (!b)
        return;
    free(b->text);
    free(b->keys);
    free(b->table);
    free(b->samples);
    free(b);
}

void lbw_batch_reset(struct lbw_batch_builder *b)
{
    if (b->nkeys)
        memset(b->table, 0, b->table_size * sizeof(*b->table));
    b->text_len = 0;
    b->nkeys = 0;
    b->nsamples = 0;
    b->body = 0;
    b->last_ts = 0;
}

size_t lbw_batch_samples(const struct lbw_batch_builder *b)
{
    return b->nsamples;
}

size_t lbw_batch_payload_bytes(const struct lbw_batch_builder *b)
{
    return varint_len(b->nkeys) + varint_len(b->nsamples) + b->body;
}

/* Makes room for n more elements of size sz in *arr (capacity *cap). */
static int reserve(void **arr, size_t *cap, size_t used, size_t n, size_t sz)
{
    if (used + n <= *cap)
        return 0;
    size_t c = *cap ? *cap : 64;
    while (c < used + n)
        c *= 2;
    void *p = realloc(*arr, c * sz);
    if (!p)
        return -1;
    *arr = p;
    *cap = c;
    return 0;
}

/* The slot of key in the table: its index + 1, or 0 with *slot at the empty slot. */
static uint32_t find_key(const struct lbw_batch_builder *b, const char *key, size_t len,
                         uint32_t h, size_t *slot)
{
    size_t mask = b->table_size - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        uint32_t s = b->table[i];
        if (s == 0) {
            *slot = i;
            return 0;
        }
        const struct bkey *k = &b->keys[s - 1];
        if (k->hash == h && k->len == len && memcmp(b->text + k->off, key, len) == 0)
            return s;
    }
}

static int grow_table(struct lbw_batch_builder *b)
{
    size_t size = b->table_size * 2;
    uint32_t *t = calloc(size, sizeof(*t));
    if (!t)
        return -1;
    for (size_t i = 0; i < b->nkeys; i++) {
        size_t j = b->keys[i].hash & (size - 1);
        while (t[j])
            j = (j + 1) & (size - 1);
        t[j] = (uint32_t)i + 1;
    }
    free(b->table);
    b->table = t;
    b->table_size = size;
    return 0;
}

/* The index of key in the batch's key table, adding it if new (cost: *added bytes). */
static long intern_key(struct lbw_batch_builder *b, const char *key, size_t len, size_t *added)
{
    size_t slot;
    uint32_t h = hash_key(key, len);
    uint32_t s = find_key(b, key, len, h, &slot);
    struct lbw_key_parsed parsed;
    *added = 0;
    if (s)
        return (long)s - 1;
    if (lbw_key_parse(key, len, &parsed) < 0)
        return -1;
    if ((b->nkeys + 1) * 2 > b->table_size) {
        if (grow_table(b) < 0)
            return -1;
        find_key(b, key, len, h, &slot);
    }
    if (reserve((void **)&b->keys, &b->keys_cap, b->nkeys, 1, sizeof(*b->keys)) < 0 ||
        reserve((void **)&b->text, &b->text_cap, b->text_len, len, 1) < 0)
        return -1;
    memcpy(b->text + b->text_len, key, len);
    b->keys[b->nkeys] = (struct bkey){(uint32_t)b->text_len, (uint32_t)len, h};
    b->table[slot] = (uint32_t)b->nkeys + 1;
    b->text_len += len;
    *added = varint_len(len) + len;
    return (long)b->nkeys++;
}

/* Takes the key added last back out (the sample that needed it did not fit). */
static void drop_last_key(struct lbw_batch_builder *b)
{
    const struct bkey *k = &b->keys[--b->nkeys];
    size_t slot;
    b->text_len = k->off;
    /* Linear probing: the newest key is the last of its probe run, so clearing its slot
     * leaves every other key reachable. */
    for (size_t i = k->hash & (b->table_size - 1);; i = (i + 1) & (b->table_size - 1))
        if (b->table[i] == b->nkeys + 1) {
            slot = i;
            break;
        }
    b->table[slot] = 0;
}

int lbw_batch_add(struct lbw_batch_builder *b, const char *key, size_t keylen, int64_t ts_ms,
                  double value)
{
    size_t added;
    if (!key || keylen == 0 || keylen > KEY_MAX_LEN || ts_ms < 0)
        return -1;
    size_t nkeys_before = b->nkeys;
    long k = intern_key(b, key, keylen, &added);
    if (k < 0)
        return -1;
    size_t cost = varint_len((uint64_t)k) + varint_len(zigzag(ts_ms - b->last_ts)) + 8;
    size_t total = varint_len(b->nkeys) + varint_len(b->nsamples + 1) + b->body + added + cost;
    if (total > LBW_BATCH_MAX_PAYLOAD ||
        reserve((void **)&b->samples, &b->samples_cap, b->nsamples, 1, sizeof(*b->samples)) <
            0) {
        if (b->nkeys != nkeys_before)
            drop_last_key(b);
        return -1;
    }
    b->samples[b->nsamples++] = (struct bsample){(uint32_t)k, ts_ms, value};
    b->body += added + cost;
    b->last_ts = ts_ms;
    return 0;
}

static uint8_t *write_payload(const struct lbw_batch_builder *b, uint8_t *p)
{
    int64_t prev = 0;
    p = put_varint(p, b->nkeys);
    for (size_t i = 0; i < b->nkeys; i++) {
        p = put_varint(p, b->keys[i].len);
        memcpy(p, b->text + b->keys[i].off, b->keys[i].len);
        p += b->keys[i].len;
    }
    p = put_varint(p, b->nsamples);
    for (size_t i = 0; i < b->nsamples; i++) {
        const struct bsample *s = &b->samples[i];
        p = put_varint(p, s->key);
        p = put_varint(p, zigzag(s->ts - prev));
        lbw_put_be(p, double_bits(s->value), 8);
        p += 8;
        prev = s->ts;
    }
    return p;
}

/* An envelope of type with room for payload bytes: the signed part is everything up to the
 * payload's end. Returns the buffer (payload at *payload_at) or NULL. */
static uint8_t *envelope_new(const struct lbw_signer *s, uint8_t type, uint64_t seq,
                             size_t payload, uint8_t **payload_at, size_t *signed_len)
{
    size_t nlen = strlen(s->id.name);
    *signed_len = HEADER_FIXED + nlen + 2 + s->der_len + 4 + payload;
    uint8_t *buf = malloc(*signed_len + 2 + LBW_BATCH_MAX_SIG), *p = buf;
    if (!buf)
        return NULL;
    *p++ = type;
    *p++ = LBW_BATCH_VERSION;
    *p++ = (uint8_t)s->id.kind;
    lbw_put_be(p, s->id.id, 8);
    p += 8;
    *p++ = (uint8_t)nlen;
    memcpy(p, s->id.name, nlen);
    p += nlen;
    lbw_put_be(p, seq, 8);
    p += 8;
    lbw_put_be(p, (uint16_t)s->der_len, 2);
    memcpy(p + 2, s->der, s->der_len);
    p += 2 + s->der_len;
    lbw_put_be(p, (uint32_t)payload, 4);
    *payload_at = p + 4;
    return buf;
}

/* Signs the first signed_len bytes of buf and appends the signature. */
static int envelope_seal(const struct lbw_signer *s, uint8_t *buf, size_t signed_len,
                         uint8_t **out, size_t *outlen, char *err, size_t errlen)
{
    size_t siglen = LBW_BATCH_MAX_SIG;
    uint8_t *p = buf + signed_len;
    if (sign(s, buf, signed_len, p + 2, &siglen) < 0) {
        free(buf);
        set_err(err, errlen, "signing failed");
        return -1;
    }
    lbw_put_be(p, (uint16_t)siglen, 2);
    *out = buf;
    *outlen = signed_len + 2 + siglen;
    return 0;
}

int lbw_batch_finish(struct lbw_batch_builder *b, const struct lbw_signer *s, uint64_t seq,
                     uint8_t **out, size_t *outlen, char *err, size_t errlen)
{
    uint8_t *payload_at;
    size_t signed_len;
    uint8_t *buf = envelope_new(s, LBW_ENTRY_BATCH, seq, lbw_batch_payload_bytes(b),
                                &payload_at, &signed_len);
    *out = NULL;
    if (!buf) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    write_payload(b, payload_at);
    return envelope_seal(s, buf, signed_len, out, outlen, err, errlen);
}

int lbw_entry_sign(const struct lbw_signer *s, uint8_t type, uint64_t seq, const void *payload,
                   size_t len, uint8_t **out, size_t *outlen, char *err, size_t errlen)
{
    uint8_t *payload_at;
    size_t signed_len;
    uint8_t *buf;
    *out = NULL;
    if (type == LBW_ENTRY_BATCH || len > LBW_BATCH_MAX_PAYLOAD) {
        set_err(err, errlen, type == LBW_ENTRY_BATCH ? "batches are made by the builder"
                                                     : "payload too large");
        return -1;
    }
    if (!(buf = envelope_new(s, type, seq, len, &payload_at, &signed_len))) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    if (len)
        memcpy(payload_at, payload, len);
    return envelope_seal(s, buf, signed_len, out, outlen, err, errlen);
}

/* ---- verifier ---------------------------------------------------------------------------- */

struct cert_entry {
    uint8_t sha[32];
    EVP_PKEY *key;                /* NULL = free slot */
    enum key_alg alg;
    struct lbw_identity id;
};

struct lbw_verifier {
    X509_STORE *store;
    struct cert_entry cache[LBW_VERIFIER_CACHE];
    uint16_t table[2 * LBW_VERIFIER_CACHE]; /* slot = cache index + 1, 0 = empty */
    size_t next;                  /* the ring's next slot: the oldest entry once full */
    size_t cached;
    uint64_t chain_checks, cache_hits, evictions;
};

#define TABLE_MASK (2 * LBW_VERIFIER_CACHE - 1)

static size_t table_home(const uint8_t sha[32])
{
    return ((size_t)sha[0] << 8 | sha[1]) & TABLE_MASK;
}

static struct cert_entry *cache_find(struct lbw_verifier *v, const uint8_t sha[32])
{
    for (size_t i = table_home(sha);; i = (i + 1) & TABLE_MASK) {
        uint16_t s = v->table[i];
        if (s == 0)
            return NULL;
        if (memcmp(v->cache[s - 1].sha, sha, 32) == 0)
            return &v->cache[s - 1];
    }
}

/* Removes the table slot of cache entry idx, shifting later members of its probe run back
 * (no tombstones). */
static void table_remove(struct lbw_verifier *v, size_t idx)
{
    size_t i = table_home(v->cache[idx].sha);
    while (v->table[i] != idx + 1)
        i = (i + 1) & TABLE_MASK;
    for (size_t j = (i + 1) & TABLE_MASK; v->table[j]; j = (j + 1) & TABLE_MASK) {
        size_t home = table_home(v->cache[v->table[j] - 1].sha);
        /* j's entry may move to i unless its home lies cyclically in (i, j]. */
        if (((j - home) & TABLE_MASK) >= ((j - i) & TABLE_MASK)) {
            v->table[i] = v->table[j];
            i = j;
        }
    }
    v->table[i] = 0;
}

static void cache_insert(struct lbw_verifier *v, const struct cert_entry *e)
{
    size_t idx = v->next;
    struct cert_entry *slot = &v->cache[idx];
    if (slot->key) {
        table_remove(v, idx);
        EVP_PKEY_free(slot->key);
        v->evictions++;
        v->cached--;
    }
    *slot = *e;
    size_t i = table_home(e->sha);
    while (v->table[i])
        i = (i + 1) & TABLE_MASK;
    v->table[i] = (uint16_t)(idx + 1);
    v->next = (idx + 1) % LBW_VERIFIER_CACHE;
    v->cached++;
}

struct lbw_verifier *lbw_verifier_new_ca(X509 *ca, char *err, size_t errlen)
{
    struct lbw_verifier *v = calloc(1, sizeof(*v));
    if (!v || !(v->store = X509_STORE_new()) || !ca || X509_STORE_add_cert(v->store, ca) != 1) {
        set_err(err, errlen, ca ? "cannot set up the CA store" : "no CA certificate");
        lbw_verifier_free(v);
        ERR_clear_error();
        return NULL;
    }
    return v;
}

struct lbw_verifier *lbw_verifier_new(const char *ca_file, char *err, size_t errlen)
{
    X509 *ca = NULL;
    FILE *f = fopen(ca_file, "r");
    if (f) {
        ca = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f);
    }
    if (!ca) {
        snprintf(err, errlen, "%s: cannot read a PEM CA certificate", ca_file);
        ERR_clear_error();
        return NULL;
    }
    struct lbw_verifier *v = lbw_verifier_new_ca(ca, err, errlen);
    X509_free(ca);
    return v;
}

void lbw_verifier_free(struct lbw_verifier *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < LBW_VERIFIER_CACHE; i++)
        EVP_PKEY_free(v->cache[i].key);
    X509_STORE_free(v->store);
    free(v);
}

void lbw_verifier_stats(const struct lbw_verifier *v, struct lbw_verifier_stats *out)
{
    out->chain_checks = v->chain_checks;
    out->cache_hits = v->cache_hits;
    out->evictions = v->evictions;
    out->cached = v->cached;
}

/* Verifies cert against the CA, ignoring validity dates. Returns 1, 0, or -1 without
 * memory for the check. */
static int chain_ok(struct lbw_verifier *v, X509 *cert)
{
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    if (!ctx || X509_STORE_CTX_init(ctx, v->store, cert, NULL) != 1) {
        X509_STORE_CTX_free(ctx);
        return -1;
    }
    X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(ctx), X509_V_FLAG_NO_CHECK_TIME);
    int ok = X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_ANY) == 1 && X509_verify_cert(ctx) == 1;
    X509_STORE_CTX_free(ctx);
    v->chain_checks++;
    return ok;
}

/* Checks a certificate not seen before; on success fills e (with its own key reference). */
static enum lbw_batch_error check_cert(struct lbw_verifier *v, const uint8_t *der, size_t len,
                                       struct cert_entry *e, char *why, size_t whylen)
{
    const unsigned char *p = der;
    enum lbw_batch_error rc = LBW_BATCH_OK;
    X509 *cert = d2i_X509(NULL, &p, (long)len);
    int chain = cert && p == der + len ? chain_ok(v, cert) : 0;
    if (!cert || p != der + len) {
        set_err(why, whylen, "the certificate does not parse");
        rc = LBW_BATCH_MALFORMED;
    } else if (chain < 0) {
        set_err(why, whylen, "out of memory");
        rc = LBW_BATCH_NOMEM;
    } else if (chain == 0) {
        set_err(why, whylen, "the certificate is not issued by the cluster CA");
        rc = LBW_BATCH_UNTRUSTED;
    } else if (lbw_identity_from_cert(cert, &e->id) < 0) {
        set_err(why, whylen, "the certificate carries no lbwatch identity");
        rc = LBW_BATCH_WRONG_ORIGIN;
    } else if (!(e->key = X509_get_pubkey(cert)) || (e->alg = key_alg_of(e->key)) == ALG_NONE) {
        set_err(why, whylen, "the certificate's key cannot sign batches");
        rc = LBW_BATCH_BAD_SIGNATURE;
    }
    if (rc != LBW_BATCH_OK) {
        EVP_PKEY_free(e->key);
        e->key = NULL;
    }
    X509_free(cert);
    return rc;
}

/* The cached (or newly checked and cached) entry of the entry's certificate. */
static enum lbw_batch_error lookup_cert(struct lbw_verifier *v, const struct entry *en,
                                        const struct cert_entry **out, char *why, size_t whylen)
{
    struct cert_entry e = {0};
    if (sha256(en->cert, en->cert_len, e.sha) < 0) {
        set_err(why, whylen, "out of memory");
        return LBW_BATCH_NOMEM;
    }
    if ((*out = cache_find(v, e.sha)) != NULL) {
        v->cache_hits++;
        return LBW_BATCH_OK;
    }
    ERR_set_mark();
    enum lbw_batch_error rc = check_cert(v, en->cert, en->cert_len, &e, why, whylen);
    ERR_pop_to_mark();
    if (rc != LBW_BATCH_OK)
        return rc;
    cache_insert(v, &e);
    *out = cache_find(v, e.sha);
    return LBW_BATCH_OK;
}

static int same_identity(const struct lbw_identity *a, const struct lbw_identity *b)
{
    return a->kind == b->kind && a->id == b->id && strcmp(a->name, b->name) == 0;
}

/* Returns 1 if sig verifies over msg, 0 if not, -1 without memory for the check. */
static int signature_ok(const struct cert_entry *c, const uint8_t *msg, size_t len,
                        const uint8_t *sig, size_t siglen)
{
    uint8_t digest[32];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok;
    if (!ctx || (c->alg == ALG_ED25519 && sha256(msg, len, digest) < 0)) {
        EVP_MD_CTX_free(ctx);
        return -1;
    }
    ERR_set_mark();
    if (c->alg == ALG_ED25519)
        ok = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, c->key) == 1 &&
             EVP_DigestVerify(ctx, sig, siglen, digest, sizeof(digest)) == 1;
    else
        ok = EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, c->key) == 1 &&
             EVP_DigestVerify(ctx, sig, siglen, msg, len) == 1;
    ERR_pop_to_mark();
    EVP_MD_CTX_free(ctx);
    return ok;
}

enum lbw_batch_error lbw_batch_verify(struct lbw_verifier *v, const uint8_t *entry, size_t len,
                                      struct lbw_batch_view *out, char *why, size_t whylen)
{
    if (entry && len > 0 && entry[0] != LBW_ENTRY_BATCH) {
        set_err(why, whylen, "not a batch");
        return LBW_BATCH_MALFORMED;
    }
    return lbw_entry_verify(v, entry, len, out, why, whylen);
}

enum lbw_batch_error lbw_entry_verify(struct lbw_verifier *v, const uint8_t *entry, size_t len,
                                      struct lbw_batch_view *out, char *why, size_t whylen)
{
    const struct cert_entry *c;
    struct entry e;
    size_t nsamples = 0;
    enum lbw_batch_error rc;

    set_err(why, whylen, "");
    if (!entry || parse_entry(entry, len, &e, why, whylen) < 0)
        return LBW_BATCH_MALFORMED;
    out->type = e.type;
    out->origin = e.origin;
    out->seq = e.seq;
    if (e.type == LBW_ENTRY_BATCH && check_payload(e.payload, e.payload_len, &nsamples) < 0) {
        set_err(why, whylen, "the payload does not parse");
        return LBW_BATCH_MALFORMED;
    }
    if ((rc = lookup_cert(v, &e, &c, why, whylen)) != LBW_BATCH_OK)
        return rc;
    if (!same_identity(&c->id, &e.origin)) {
        set_err(why, whylen, "the certificate belongs to another origin");
        return LBW_BATCH_WRONG_ORIGIN;
    }
    int sig = signature_ok(c, entry, e.signed_len, e.sig, e.sig_len);
    if (sig == 0) {
        set_err(why, whylen, "the signature does not verify");
        return LBW_BATCH_BAD_SIGNATURE;
    }
    if (e.type == LBW_ENTRY_BATCH && check_keys(e.payload, e.payload_len, why, whylen) < 0)
        return LBW_BATCH_BAD_KEY;
    if (sig < 0 || sha256(e.payload, e.payload_len, out->payload_sha256) < 0) {
        set_err(why, whylen, "out of memory");
        return LBW_BATCH_NOMEM;
    }
    out->cert = e.cert;
    out->cert_len = e.cert_len;
    out->payload = e.payload;
    out->payload_len = e.payload_len;
    out->nsamples = nsamples;
    memcpy(out->cert_sha256, c->sha, 32);
    out->sig = e.sig;
    out->siglen = e.sig_len;
    return LBW_BATCH_OK;
}

const char *lbw_batch_error_name(enum lbw_batch_error e)
{
    switch (e) {
    case LBW_BATCH_OK:
        return "ok";
    case LBW_BATCH_MALFORMED:
        return "malformed";
    case LBW_BATCH_UNTRUSTED:
        return "untrusted";
    case LBW_BATCH_WRONG_ORIGIN:
        return "wrong_origin";
    case LBW_BATCH_BAD_SIGNATURE:
        return "bad_signature";
    case LBW_BATCH_BAD_KEY:
        return "bad_key";
    case LBW_BATCH_NOMEM:
        return "no_memory";
    }
    return "unknown";
}
