/* test_batch.c - raft/batch: build, sign and verify round trips (ECDSA P-256 and Ed25519
 * node certificates, agent certificates) with every sample decoded back bit for bit; and the
 * refusals: a flipped bit anywhere, another CA, a stated origin that is not the
 * certificate's, truncation at every length, trailing bytes, non-canonical keys, oversize
 * lengths, bad varints and timestamps (entries built by an independent encoder of the
 * documented wire format and properly signed, so the decoder's own checks are what refuse
 * them); the builder's limits; the verifier's certificate cache and its bound. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "node/pki.h"
#include "probes/sample.h"
#include "raft/batch.h"
#include "tests/support/testutil.h"

#define DAY 86400

struct pair {
    X509 *cert;
    EVP_PKEY *key;
};

static struct {
    struct pair ca, other_ca, node1, node2, agent, rogue, rsa, expired;
} pki;

static void pair_free(struct pair *p)
{
    X509_free(p->cert);
    EVP_PKEY_free(p->key);
}

static struct pair make(const char *cn, int is_ca, const struct lbw_identity *id,
                        enum lbw_key_alg alg, const struct pair *issuer, int64_t not_after)
{
    int64_t now = time(NULL);
    struct lbw_cert_spec s = {.cn = cn, .is_ca = is_ca, .not_before = now - DAY,
                              .not_after = not_after ? not_after : now + 30 * DAY,
                              .identity = id, .key_alg = alg};
    struct pair p = {0};
    char err[256] = "";
    if (lbw_pki_make_cert(&s, issuer ? issuer->cert : NULL, issuer ? issuer->key : NULL,
                          &p.cert, &p.key, err, sizeof(err)) != 0)
        fail_msg("make_cert(%s): %s", cn, err);
    return p;
}

static struct pair make_node(const char *name, uint64_t id, enum lbw_key_alg alg,
                             const struct pair *ca)
{
    struct lbw_identity ident = {LBW_ID_NODE, id, ""};
    snprintf(ident.name, sizeof(ident.name), "%s", name);
    return make(name, 0, &ident, alg, ca, 0);
}

static int group_setup(void **state)
{
    struct lbw_identity agent = {LBW_ID_AGENT, 0, "edge1"};
    int64_t now = time(NULL);
    (void)state;
    pki.ca = make("test-ca", 1, NULL, LBW_KEY_EC_P256, NULL, 0);
    pki.other_ca = make("other-ca", 1, NULL, LBW_KEY_EC_P256, NULL, 0);
    pki.node1 = make_node("node1", 1, LBW_KEY_EC_P256, &pki.ca);
    pki.node2 = make_node("node2", 2, LBW_KEY_ED25519, &pki.ca);
    pki.agent = make("edge1", 0, &agent, LBW_KEY_EC_P256, &pki.ca, 0);
    pki.rogue = make_node("node1", 1, LBW_KEY_EC_P256, &pki.other_ca);
    pki.rsa = make_node("node3", 3, LBW_KEY_RSA2048, &pki.ca);
    struct lbw_identity n4 = {LBW_ID_NODE, 4, "node4"};
    pki.expired = make("node4", 0, &n4, LBW_KEY_EC_P256, &pki.ca, now - 3600);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    pair_free(&pki.ca);
    pair_free(&pki.other_ca);
    pair_free(&pki.node1);
    pair_free(&pki.node2);
    pair_free(&pki.agent);
    pair_free(&pki.rogue);
    pair_free(&pki.rsa);
    pair_free(&pki.expired);
    return 0;
}

static struct lbw_signer *signer(const struct pair *p)
{
    char err[256] = "";
    struct lbw_signer *s = lbw_signer_new(p->cert, p->key, err, sizeof(err));
    if (!s)
        fail_msg("signer: %s", err);
    return s;
}

static struct lbw_verifier *verifier(const struct pair *ca)
{
    char err[256] = "";
    struct lbw_verifier *v = lbw_verifier_new_ca(ca->cert, err, sizeof(err));
    if (!v)
        fail_msg("verifier: %s", err);
    return v;
}

static void sha256(const void *p, size_t n, uint8_t out[32])
{
    assert_int_equal(EVP_Digest(p, n, out, NULL, EVP_sha256(), NULL), 1);
}

/* ---- samples in and out ------------------------------------------------------------------ */

struct smp {
    char key[LBW_KEY_MAX];
    int64_t ts;
    double value;
};

struct collected {
    struct smp *v;
    size_t n, cap;
};

static int collect(void *arg, const char *key, size_t keylen, int64_t ts, double value)
{
    struct collected *c = arg;
    assert_int_equal(strlen(key), keylen);
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 64;
        c->v = realloc(c->v, c->cap * sizeof(*c->v));
        assert_non_null(c->v);
    }
    snprintf(c->v[c->n].key, LBW_KEY_MAX, "%s", key);
    c->v[c->n].ts = ts;
    c->v[c->n].value = value;
    c->n++;
    return 0;
}

static double with_bits(uint64_t bits)
{
    double d;
    memcpy(&d, &bits, sizeof(d));
    return d;
}

static int same_bits(double a, double b)
{
    return memcmp(&a, &b, sizeof(a)) == 0;
}

static void key_of(char *out, size_t n, int series, const char *vantage)
{
    snprintf(out, n, "probe_metric_%d{probe=\"tls\",target=\"t%d\",vantage=\"%s\"}", series % 7,
             series, vantage);
}

/* Builds in into b and returns the signed entry. */
static uint8_t *build(struct lbw_batch_builder *b, const struct lbw_signer *s, uint64_t seq,
                      const struct smp *in, size_t n, size_t *len)
{
    uint8_t *out = NULL;
    char err[256] = "";
    lbw_batch_reset(b);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(lbw_batch_add(b, in[i].key, strlen(in[i].key), in[i].ts, in[i].value),
                         0);
    assert_int_equal(lbw_batch_samples(b), n);
    if (lbw_batch_finish(b, s, seq, &out, len, err, sizeof(err)) != 0)
        fail_msg("finish: %s", err);
    return out;
}

/* Verifies entry and checks every field of the view and every sample against in. */
static void check_roundtrip(struct lbw_verifier *v, const struct pair *who, const uint8_t *entry,
                            size_t len, uint64_t seq, const struct smp *in, size_t n,
                            size_t payload_bytes)
{
    struct lbw_batch_view view;
    struct lbw_identity id;
    struct collected c = {0};
    char why[256] = "";
    uint8_t sha[32], *der = NULL;
    int derlen = i2d_X509(who->cert, &der);

    assert_int_equal(lbw_identity_from_cert(who->cert, &id), 0);
    enum lbw_batch_error e = lbw_batch_verify(v, entry, len, &view, why, sizeof(why));
    if (e != LBW_BATCH_OK)
        fail_msg("verify: %s: %s", lbw_batch_error_name(e), why);
    assert_int_equal(view.origin.kind, id.kind);
    assert_int_equal(view.origin.id, id.id);
    assert_string_equal(view.origin.name, id.name);
    assert_int_equal(view.seq, seq);
    assert_int_equal(view.nsamples, n);
    assert_int_equal(view.payload_len, payload_bytes);
    sha256(view.payload, view.payload_len, sha);
    assert_memory_equal(sha, view.payload_sha256, 32);
    assert_int_equal(view.cert_len, (size_t)derlen);
    assert_memory_equal(view.cert, der, (size_t)derlen);
    sha256(der, (size_t)derlen, sha);
    assert_memory_equal(sha, view.cert_sha256, 32);
    assert_true(view.sig > entry && view.sig + view.siglen == entry + len);
    OPENSSL_free(der);

    assert_int_equal(lbw_batch_foreach(&view, collect, &c), 0);
    assert_int_equal(c.n, n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(c.v[i].key, in[i].key);
        assert_int_equal(c.v[i].ts, in[i].ts);
        assert_true(same_bits(c.v[i].value, in[i].value));
    }
    free(c.v);
}

static int count_key(void *arg, size_t index, const char *key, size_t keylen)
{
    size_t *n = arg;
    assert_int_equal(index, *n);
    assert_true(keylen > 0 && key[0] == 'p');
    (*n)++;
    return 0;
}

/* lbw_batch_foreach_indexed against the samples put in, through the key table. */
struct indexed {
    char keys[300][LBW_KEY_MAX];
    size_t nkeys;
    const struct smp *in;
    size_t n;
};

static int table_key(void *arg, size_t index, const char *key, size_t keylen)
{
    struct indexed *x = arg;
    assert_true(index < 300 && keylen < LBW_KEY_MAX);
    memcpy(x->keys[index], key, keylen);
    x->keys[index][keylen] = '\0';
    x->nkeys = index + 1;
    return 0;
}

static int indexed_sample(void *arg, size_t key_index, int64_t ts, double value)
{
    struct indexed *x = arg;
    assert_true(key_index < x->nkeys);
    assert_string_equal(x->keys[key_index], x->in[x->n].key);
    assert_int_equal(ts, x->in[x->n].ts);
    assert_true(same_bits(value, x->in[x->n].value));
    x->n++;
    return 0;
}

static int stop_at_third(void *arg, size_t key_index, int64_t ts, double value)
{
    size_t *n = arg;
    (void)key_index, (void)ts, (void)value;
    return ++*n == 3;
}

/* Many keys, special values, timestamps jumping back and forth. */
static size_t fill_samples(struct smp *in, size_t max, const char *vantage)
{
    static const uint64_t specials[] = {
        0x7ff8000000000000ull, /* quiet NaN */
        0x7ff0000000000001ull, /* signalling NaN with a payload */
        0xfff8dead0000beefull, /* negative NaN with a payload */
        0x7ff0000000000000ull, /* +Inf */
        0xfff0000000000000ull, /* -Inf */
        0x8000000000000000ull, /* -0.0 */
        0x0000000000000001ull, /* smallest subnormal */
        0x7fefffffffffffffull, /* largest finite */
    };
    int64_t ts[] = {0, 1, 1699999200000LL, 1699999100000LL, 5, INT64_MAX, 0, 1699999200123LL};
    size_t n = 0;
    for (int s = 0; s < 300 && n < max; s++) {
        key_of(in[n].key, sizeof(in[n].key), s, vantage);
        in[n].ts = 1700000000000LL + s * 997 - (s % 3) * 50000;
        in[n].value = s * 1.25 - 40;
        n++;
    }
    for (size_t i = 0; i < 8 && n < max; i++) {
        key_of(in[n].key, sizeof(in[n].key), (int)i, vantage); /* repeats of known keys */
        in[n].ts = ts[i];
        in[n].value = with_bits(specials[i]);
        n++;
    }
    return n;
}

static void roundtrip(const struct pair *who, const char *vantage)
{
    struct lbw_batch_builder *b = lbw_batch_builder_new();
    struct lbw_signer *s = signer(who);
    struct lbw_verifier *v = verifier(&pki.ca);
    struct smp in[400];
    size_t n = fill_samples(in, 400, vantage), len;
    uint8_t *entry = build(b, s, 77, in, n, &len);
    size_t payload = lbw_batch_payload_bytes(b);
    check_roundtrip(v, who, entry, len, 77, in, n, payload);

    struct lbw_batch_view view;
    size_t keys = 0;
    assert_int_equal(lbw_batch_verify(v, entry, len, &view, NULL, 0), LBW_BATCH_OK);
    assert_int_equal(lbw_batch_foreach_key(&view, count_key, &keys), 0);
    assert_int_equal(keys, 300); /* each distinct key once */
    struct indexed *x = calloc(1, sizeof(*x));
    x->in = in;
    assert_int_equal(lbw_batch_foreach_key(&view, table_key, x), 0);
    assert_int_equal(lbw_batch_foreach_indexed(&view, indexed_sample, x), 0);
    assert_int_equal(x->n, n);
    free(x);
    size_t calls = 0;
    assert_int_equal(lbw_batch_foreach_indexed(&view, stop_at_third, &calls), -1);
    assert_int_equal(calls, 3);
    free(entry);
    lbw_batch_builder_free(b);
    lbw_signer_free(s);
    lbw_verifier_free(v);
}

static void roundtrip_ec_node(void **state)
{
    (void)state;
    roundtrip(&pki.node1, "node1");
}

static void roundtrip_ed25519_node(void **state)
{
    (void)state;
    roundtrip(&pki.node2, "node2");
}

static void roundtrip_agent(void **state)
{
    (void)state;
    roundtrip(&pki.agent, "edge1");
}

/* The builder keeps nothing of a batch after reset; an empty batch is valid. */
static void builder_reuse_and_empty(void **state)
{
    struct lbw_batch_builder *b = lbw_batch_builder_new();
    struct lbw_signer *s = signer(&pki.node1);
    struct lbw_verifier *v = verifier(&pki.ca);
    struct smp in[400];
    size_t n = fill_samples(in, 400, "node1"), len;
    (void)state;

    free(build(b, s, 1, in, n, &len));
    uint8_t *entry = build(b, s, 2, in + 100, 50, &len);
    check_roundtrip(v, &pki.node1, entry, len, 2, in + 100, 50, lbw_batch_payload_bytes(b));
    free(entry);

    lbw_batch_reset(b);
    assert_int_equal(lbw_batch_samples(b), 0);
    assert_int_equal(lbw_batch_payload_bytes(b), 2); /* two zero counts */
    char err[128];
    assert_int_equal(lbw_batch_finish(b, s, 3, &entry, &len, err, sizeof(err)), 0);
    check_roundtrip(v, &pki.node1, entry, len, 3, NULL, 0, 2);
    free(entry);
    lbw_batch_builder_free(b);
    lbw_signer_free(s);
    lbw_verifier_free(v);
}

static void builder_refuses(void **state)
{
    struct lbw_batch_builder *b = lbw_batch_builder_new();
    char longkey[600];
    (void)state;
    assert_int_equal(lbw_batch_add(b, "m{b=\"1\",a=\"2\"}", 15, 1, 1), -1); /* unsorted */
    assert_int_equal(lbw_batch_add(b, "m{a=\"1\"", 7, 1, 1), -1);
    assert_int_equal(lbw_batch_add(b, "m{a=\"1\"}", 8, -1, 1), -1);       /* ts < 0 */
    assert_int_equal(lbw_batch_add(b, "", 0, 1, 1), -1);
    memset(longkey, 'a', sizeof(longkey));
    assert_int_equal(lbw_batch_add(b, longkey, 512, 1, 1), -1);
    assert_int_equal(lbw_batch_add(b, longkey, 511, 1, 1), 0);
    assert_int_equal(lbw_batch_samples(b), 1);

    /* Up to the payload limit, exactly: a refused sample changes nothing. */
    lbw_batch_reset(b);
    size_t added = 0;
    char key[64];
    for (;; added++) {
        snprintf(key, sizeof(key), "m{i=\"%zu\"}", added % 50000);
        size_t before = lbw_batch_payload_bytes(b);
        if (lbw_batch_add(b, key, strlen(key), (int64_t)added * 1000, 1.5) < 0) {
            assert_int_equal(lbw_batch_payload_bytes(b), before);
            break;
        }
    }
    assert_int_equal(lbw_batch_samples(b), added);
    assert_true(lbw_batch_payload_bytes(b) <= LBW_BATCH_MAX_PAYLOAD);
    assert_true(lbw_batch_payload_bytes(b) > LBW_BATCH_MAX_PAYLOAD - 64);

    struct lbw_signer *s = signer(&pki.node2);
    struct lbw_verifier *v = verifier(&pki.ca);
    struct lbw_batch_view view;
    uint8_t *entry;
    size_t len;
    char err[128];
    assert_int_equal(lbw_batch_finish(b, s, 9, &entry, &len, err, sizeof(err)), 0);
    assert_int_equal(lbw_batch_verify(v, entry, len, &view, err, sizeof(err)), LBW_BATCH_OK);
    assert_int_equal(view.nsamples, added);
    free(entry);
    lbw_batch_builder_free(b);
    lbw_signer_free(s);
    lbw_verifier_free(v);
}

static void signer_refuses(void **state)
{
    char err[256] = "";
    (void)state;
    assert_null(lbw_signer_new(pki.rsa.cert, pki.rsa.key, err, sizeof(err)));
    assert_non_null(strstr(err, "ECDSA P-256"));
    assert_null(lbw_signer_new(pki.node1.cert, pki.node2.key, err, sizeof(err)));
    assert_null(lbw_signer_new(pki.ca.cert, pki.ca.key, err, sizeof(err))); /* no identity */
    assert_non_null(strstr(err, "identity"));
}

/* PEM files: lbw_signer_load and lbw_verifier_new. */
static void from_files(void **state)
{
    char dir[256], cert[300], key[300], ca[300], err[256] = "", bad[300];
    (void)state;
    assert_int_equal(tu_tmpdir("lbw-batch", dir, sizeof(dir)), 0);
    snprintf(cert, sizeof(cert), "%s/node1.crt", dir);
    snprintf(key, sizeof(key), "%s/node1.key", dir);
    snprintf(ca, sizeof(ca), "%s/ca.crt", dir);
    snprintf(bad, sizeof(bad), "%s/missing.crt", dir);
    assert_int_equal(lbw_pki_write_cert(cert, pki.node1.cert, err, sizeof(err)), 0);
    assert_int_equal(lbw_pki_write_key(key, pki.node1.key, err, sizeof(err)), 0);
    assert_int_equal(lbw_pki_write_cert(ca, pki.ca.cert, err, sizeof(err)), 0);

    struct lbw_signer *s = lbw_signer_load(cert, key, err, sizeof(err));
    struct lbw_verifier *v = lbw_verifier_new(ca, err, sizeof(err));
    assert_non_null(s);
    assert_non_null(v);
    assert_int_equal(lbw_signer_identity(s)->kind, LBW_ID_NODE);
    assert_int_equal(lbw_signer_identity(s)->id, 1);
    assert_string_equal(lbw_signer_identity(s)->name, "node1");
    assert_null(lbw_signer_load(bad, key, err, sizeof(err)));
    assert_non_null(strstr(err, "missing.crt"));
    assert_null(lbw_signer_load(cert, cert, err, sizeof(err))); /* no key in it */
    assert_null(lbw_verifier_new(bad, err, sizeof(err)));

    struct lbw_batch_builder *b = lbw_batch_builder_new();
    struct smp in[1] = {{"up{target=\"a\",vantage=\"node1\"}", 5, 1}};
    size_t len;
    uint8_t *entry = build(b, s, 1, in, 1, &len);
    check_roundtrip(v, &pki.node1, entry, len, 1, in, 1, lbw_batch_payload_bytes(b));
    free(entry);
    lbw_batch_builder_free(b);
    lbw_signer_free(s);
    lbw_verifier_free(v);
    tu_rmrf(dir);
}

/* ---- an independent encoder of the wire format ------------------------------------------- */

struct raw {
    uint8_t *p;
    size_t len, cap;
};

static void raw_bytes(struct raw *r, const void *d, size_t n)
{
    if (n == 0)
        return;
    if (r->len + n > r->cap) {
        r->cap = (r->len + n) * 2 + 64;
        r->p = realloc(r->p, r->cap);
        assert_non_null(r->p);
    }
    memcpy(r->p + r->len, d, n);
    r->len += n;
}

static void raw_be(struct raw *r, uint64_t v, size_t n)
{
    uint8_t b[8];
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    raw_bytes(r, b, n);
}

static void raw_varint(struct raw *r, uint64_t v)
{
    do {
        uint8_t b = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            b |= 0x80;
        raw_bytes(r, &b, 1);
    } while (v);
}

static void raw_key(struct raw *r, const char *k)
{
    raw_varint(r, strlen(k));
    raw_bytes(r, k, strlen(k));
}

static void raw_sample(struct raw *r, uint64_t key, int64_t delta, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, 8);
    raw_varint(r, key);
    raw_varint(r, ((uint64_t)delta << 1) ^ (uint64_t)(delta >> 63));
    raw_be(r, bits, 8);
}

/* What a hand-made entry states. */
struct stated {
    unsigned kind;
    uint64_t id;
    const char *name;
    uint64_t seq;
};

/* The entry of payload p, as origin st, carrying cert, signed with key. */
static struct raw raw_entry(const struct stated *st, X509 *cert, EVP_PKEY *key,
                            const struct raw *p)
{
    struct raw r = {0};
    uint8_t *der = NULL, digest[32], sig[512];
    size_t siglen = sizeof(sig);
    int derlen = i2d_X509(cert, &der);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    raw_be(&r, LBW_ENTRY_BATCH, 1);
    raw_be(&r, LBW_BATCH_VERSION, 1);
    raw_be(&r, st->kind, 1);
    raw_be(&r, st->id, 8);
    raw_be(&r, strlen(st->name), 1);
    raw_bytes(&r, st->name, strlen(st->name));
    raw_be(&r, st->seq, 8);
    raw_be(&r, (uint64_t)derlen, 2);
    raw_bytes(&r, der, (size_t)derlen);
    raw_be(&r, p->len, 4);
    raw_bytes(&r, p->p, p->len);
    if (EVP_PKEY_is_a(key, "ED25519")) {
        sha256(r.p, r.len, digest);
        assert_int_equal(EVP_DigestSignInit(ctx, NULL, NULL, NULL, key), 1);
        assert_int_equal(EVP_DigestSign(ctx, sig, &siglen, digest, 32), 1);
    } else {
        assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key), 1);
        assert_int_equal(EVP_DigestSign(ctx, sig, &siglen, r.p, r.len), 1);
    }
    raw_be(&r, siglen, 2);
    raw_bytes(&r, sig, siglen);
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(der);
    return r;
}

static const struct stated node1_says = {LBW_ID_NODE, 1, "node1", 5};
#define K1 "up{target=\"a\",vantage=\"node1\"}"
#define K2 "rtt_ms{target=\"a\",vantage=\"node1\"}"

/* A valid two-key, three-sample payload. */
static struct raw good_payload(void)
{
    struct raw p = {0};
    raw_varint(&p, 2);
    raw_key(&p, K1);
    raw_key(&p, K2);
    raw_varint(&p, 3);
    raw_sample(&p, 0, 1700000000000LL, 1);
    raw_sample(&p, 1, 0, 12.5);
    raw_sample(&p, 0, -5000, 0);
    return p;
}

static enum lbw_batch_error verify_raw(struct lbw_verifier *v, const struct raw *r, char *why,
                                       size_t whylen)
{
    struct lbw_batch_view view;
    return lbw_batch_verify(v, r->p, r->len, &view, why, whylen);
}

/* The reference encoder and the builder agree: a hand-made entry verifies and decodes. */
static void reference_encoder_agrees(void **state)
{
    struct lbw_verifier *v = verifier(&pki.ca);
    struct raw p = good_payload();
    struct raw e = raw_entry(&node1_says, pki.node1.cert, pki.node1.key, &p);
    struct lbw_batch_view view;
    struct collected c = {0};
    char why[256] = "";
    (void)state;
    assert_int_equal(lbw_batch_verify(v, e.p, e.len, &view, why, sizeof(why)), LBW_BATCH_OK);
    assert_int_equal(lbw_batch_foreach(&view, collect, &c), 0);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.v[0].key, K1);
    assert_int_equal(c.v[1].ts, 1700000000000LL);
    assert_string_equal(c.v[1].key, K2);
    assert_int_equal(c.v[2].ts, 1699999995000LL);
    free(c.v);

    /* The builder makes exactly these bytes for the same samples (ECDSA signatures vary,
     * so compare everything before the signature). */
    struct lbw_batch_builder *b = lbw_batch_builder_new();
    struct lbw_signer *s = signer(&pki.node1);
    struct smp in[3] = {{K1, 1700000000000LL, 1}, {K2, 1700000000000LL, 12.5},
                        {K1, 1699999995000LL, 0}};
    size_t len;
    uint8_t *mine = build(b, s, 5, in, 3, &len);
    size_t sig_at = (size_t)(view.sig - e.p) - 2;
    assert_memory_equal(mine, e.p, sig_at);
    free(mine);
    lbw_batch_builder_free(b);
    lbw_signer_free(s);
    free(p.p);
    free(e.p);
    lbw_verifier_free(v);
}

/* ---- refusals ---------------------------------------------------------------------------- */

static void every_flipped_bit_is_refused(void **state)
{
    struct lbw_batch_builder *b = lbw_batch_builder_new();
    struct lbw_verifier *v = verifier(&pki.ca);
    const struct pair *who[] = {&pki.node1, &pki.node2};
    (void)state;
    for (int w = 0; w < 2; w++) {
        struct lbw_signer *s = signer(who[w]);
        struct smp in[2] = {{"up{target=\"a\",vantage=\"x\"}", 1000, 1},
                            {"up{target=\"b\",vantage=\"x\"}", 900, -2}};
        size_t len;
        uint8_t *entry = build(b, s, 3, in, 2, &len);
        uint8_t *copy = malloc(len);
        struct lbw_batch_view view;
        assert_int_equal(lbw_batch_verify(v, entry, len, &view, NULL, 0), LBW_BATCH_OK);
        for (size_t i = 0; i < len; i++) {
            for (int bit = 0; bit < 8; bit++) {
                memcpy(copy, entry, len);
                copy[i] ^= (uint8_t)(1u << bit);
                enum lbw_batch_error e = lbw_batch_verify(v, copy, len, &view, NULL, 0);
                if (e == LBW_BATCH_OK)
                    fail_msg("signer %d: flipping bit %d of byte %zu/%zu was accepted", w, bit,
                             i, len);
            }
        }
        assert_int_equal(lbw_batch_verify(v, entry, len, &view, NULL, 0), LBW_BATCH_OK);
        free(copy);
        free(entry);
        lbw_signer_free(s);
    }
    lbw_batch_builder_free(b);
    lbw_verifier_free(v);
}

static void other_ca_untrusted(void **state)
{
    struct lbw_verifier *v = verifier(&pki.ca);
    struct raw p = good_payload();
    struct raw e = raw_entry(&node1_says, pki.rogue.cert, pki.rogue.key, &p);
    char why[256] = "";
    (void)state;
    assert_int_equal(verify_raw(v, &e, why, sizeof(why)), LBW_BATCH_UNTRUSTED);
    assert_non_null(strstr(why, "CA"));
    /* The other CA's verifier trusts it, and not ours. */
    struct lbw_verifier *ov = verifier(&pki.other_ca);
    assert_int_equal(verify_raw(ov, &e, why, sizeof(why)), LBW_BATCH_OK);
    struct raw ours = raw_entry(&node1_says, pki.node1.cert, pki.node1.key, &p);
    assert_int_equal(verify_raw(ov, &ours, why, sizeof(why)), LBW_BATCH_UNTRUSTED);
    /* A CA certificate signing for itself carries no identity. */
    struct raw self = raw_entry(&node1_says, pki.ca.cert, pki.ca.key, &p);
    assert_int_equal(verify_raw(v, &self, why, sizeof(why)), LBW_BATCH_WRONG_ORIGIN);
    free(self.p);
    free(ours.p);
    free(e.p);
    free(p.p);
    lbw_verifier_free(ov);
    lbw_verifier_free(v);
}

static void stated_origin_must_match(void **state)
{
    struct lbw_verifier *v = verifier(&pki.ca);
    struct raw p = good_payload();
    const struct stated cases[] = {
        {LBW_ID_NODE, 2, "node1", 5},  /* another id */
        {LBW_ID_NODE, 1, "node2", 5},  /* another name */
        {LBW_ID_AGENT, 0, "node1", 5}, /* another kind */
    };
    char why[256] = "";
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct raw e = raw_entry(&cases[i], pki.node1.cert, pki.node1.key, &p);
        struct lbw_batch_view view;
        assert_int_equal(lbw_batch_verify(v, e.p, e.len, &view, why, sizeof(why)),
                         LBW_BATCH_WRONG_ORIGIN);
        assert_string_equal(view.origin.name, cases[i].name); /* what it claimed, to report */
        assert_int_equal(view.seq, 5);
        free(e.p);
    }
    /* Signed by another key than the certificate's. */
    struct raw e = raw_entry(&node1_says, pki.node1.cert, pki.agent.key, &p);
    assert_int_equal(verify_raw(v, &e, why, sizeof(why)), LBW_BATCH_BAD_SIGNATURE);
    free(e.p);
    /* An RSA certificate of the cluster cannot sign batches: its 256-byte signatures do
     * not even fit the format, and whatever signature comes with it is refused. */
    const struct stated n3 = {LBW_ID_NODE, 3, "node3", 1};
    e = raw_entry(&n3, pki.rsa.cert, pki.rsa.key, &p);
    assert_int_equal(verify_raw(v, &e, why, sizeof(why)), LBW_BATCH_MALFORMED);
    free(e.p);
    e = raw_entry(&n3, pki.rsa.cert, pki.node1.key, &p);
    assert_int_equal(verify_raw(v, &e, why, sizeof(why)), LBW_BATCH_BAD_SIGNATURE);
    assert_non_null(strstr(why, "cannot sign"));
    free(e.p);
    free(p.p);
    lbw_verifier_free(v);
}

/* Validity dates play no part: the verdict must not depend on when it is reached. */
static void expired_certificate_still_verifies(void **state)
{
    struct lbw_verifier *v = verifier(&pki.ca);
    struct raw p = {0};
    raw_varint(&p, 1);
    raw_key(&p, "up{vantage=\"node4\"}");
    raw_varint(&p, 1);
    raw_sample(&p, 0, 10, 1);
    const struct stated n4 = {LBW_ID_NODE, 4, "node4", 1};
    struct raw e = raw_entry(&n4, pki.expired.cert, pki.expired.key, &p);
    char why[256] = "";
    (void)state;
    assert_int_equal(verify_raw(v, &e, why, sizeof(why)), LBW_BATCH_OK);
    free(e.p);
    free(p.p);
    lbw_verifier_free(v);
}

static void truncated_and_trailing(void **state)
{
    struct lbw_verifier *v = verifier(&pki.ca);
    struct raw p = good_payload();
    struct raw e = raw_entry(&node1_says, pki.node1.cert, pki.node1.key, &p);
    struct lbw_batch_view view;
    (void)state;
    for (size_t n = 0; n < e.len; n++) {
        uint8_t *copy = malloc(n ? n : 1); /* exact size: ASan catches any overread */
        memcpy(copy, e.p, n);
        assert_int_equal(lbw_batch_verify(v, copy, n, &view, NULL, 0), LBW_BATCH_MALFORMED);
        free(copy);
    }
    raw_be(&e, 0, 1);
    assert_int_equal(lbw_batch_verify(v, e.p, e.len, &view, NULL, 0), LBW_BATCH_MALFORMED);
    assert_int_equal(lbw_batch_verify(v, NULL, 0, &view, NULL, 0), LBW_BATCH_MALFORMED);
    free(e.p);
    free(p.p);
    lbw_verifier_free(v);
}

/* A properly signed entry whose payload is p must be refused with want. */
static void expect_payload(struct lbw_verifier *v, struct raw *p, enum lbw_batch_error want,
                           const char *what)
{
    struct raw e = raw_entry(&node1_says, pki.node1.cert, pki.node1.key, p);
    char why[256] = "";
    enum lbw_batch_error got = verify_raw(v, &e, why, sizeof(why));
    if (got != want)
        fail_msg("%s: got %s (%s), want %s", what, lbw_batch_error_name(got), why,
                 lbw_batch_error_name(want));
    free(e.p);
    free(p->p);
    *p = (struct raw){0};
}

static void bad_payloads(void **state)
{
    struct lbw_verifier *v = verifier(&pki.ca);
    struct raw p = {0};
    (void)state;

    p = good_payload();
    raw_be(&p, 0, 1);
    expect_payload(v, &p, LBW_BATCH_MALFORMED, "a byte after the samples");

    raw_varint(&p, 1);
    raw_key(&p, "up{vantage=\"node1\",target=\"a\"}");
    raw_varint(&p, 1);
    raw_sample(&p, 0, 1, 1);
    expect_payload(v, &p, LBW_BATCH_BAD_KEY, "labels out of order");

    raw_varint(&p, 1);
    raw_key(&p, "up{target=\"a\",vantage=\"node1\"} ");
    raw_varint(&p, 0);
    expect_payload(v, &p, LBW_BATCH_BAD_KEY, "an unused key is still checked");

    raw_varint(&p, 1);
    raw_key(&p, K1);
    raw_varint(&p, 1);
    raw_sample(&p, 1, 1, 1);
    expect_payload(v, &p, LBW_BATCH_MALFORMED, "key index out of range");

    raw_varint(&p, 1);
    raw_key(&p, K1);
    raw_varint(&p, 2);
    raw_sample(&p, 0, INT64_MAX, 1);
    raw_sample(&p, 0, 1, 1);
    expect_payload(v, &p, LBW_BATCH_MALFORMED, "timestamp overflow");

    raw_varint(&p, 1);
    raw_key(&p, K1);
    raw_varint(&p, 2);
    raw_sample(&p, 0, 10, 1);
    raw_sample(&p, 0, -11, 1);
    expect_payload(v, &p, LBW_BATCH_MALFORMED, "negative timestamp");

    raw_varint(&p, 1);
    raw_key(&p, K1);
    raw_varint(&p, 1);
    raw_varint(&p, 0);
    for (int i = 0; i < 10; i++)
        raw_bytes(&p, (uint8_t[]){0xff}, 1);
    raw_bytes(&p, (uint8_t[]){0x01}, 1); /* 11-byte varint */
    raw_be(&p, 0, 8);
    expect_payload(v, &p, LBW_BATCH_MALFORMED, "varint of 11 bytes");

    raw_varint(&p, 1);
    raw_key(&p, K1);
    raw_varint(&p, 1);
    raw_varint(&p, 0);
    for (int i = 0; i < 9; i++)
        raw_bytes(&p, (uint8_t[]){0xff}, 1);
    raw_bytes(&p, (uint8_t[]){0x02}, 1); /* 10th byte above 1: more than 64 bits */
    raw_be(&p, 0, 8);
    expect_payload(v, &p, LBW_BATCH_MALFORMED, "varint over 64 bits");

    raw_varint(&p, 1);
    raw_key(&p, K1);
    raw_varint(&p, 1);
    raw_bytes(&p, (uint8_t[]){0x80, 0x00}, 2); /* key index 0, not in its shortest form */
    raw_varint(&p, 2);
    raw_be(&p, 0, 8);
    expect_payload(v, &p, LBW_BATCH_MALFORMED, "non-minimal varint");

    raw_varint(&p, 1);
    raw_varint(&p, 512);
    for (int i = 0; i < 512; i++)
        raw_bytes(&p, "a", 1);
    raw_varint(&p, 0);
    expect_payload(v, &p, LBW_BATCH_MALFORMED, "key of 512 bytes");

    raw_varint(&p, 1);
    raw_varint(&p, 0);
    raw_varint(&p, 0);
    expect_payload(v, &p, LBW_BATCH_MALFORMED, "empty key");

    raw_varint(&p, 1000);
    raw_key(&p, K1);
    raw_varint(&p, 0);
    expect_payload(v, &p, LBW_BATCH_MALFORMED, "more keys than bytes");

    raw_varint(&p, 1);
    raw_key(&p, K1);
    raw_varint(&p, 1000000);
    raw_sample(&p, 0, 1, 1);
    expect_payload(v, &p, LBW_BATCH_MALFORMED, "more samples than bytes");

    raw_varint(&p, 1);
    raw_key(&p, K1);
    raw_varint(&p, 1);
    raw_sample(&p, 0, 1, 1);
    p.len -= 1;
    expect_payload(v, &p, LBW_BATCH_MALFORMED, "truncated value");

    expect_payload(v, &p, LBW_BATCH_MALFORMED, "empty payload");
    lbw_verifier_free(v);
}

/* Patches the field at off (n bytes, big-endian) of a copy of e to val. */
static enum lbw_batch_error verify_patched(struct lbw_verifier *v, const struct raw *e,
                                          size_t off, size_t n, uint64_t val)
{
    struct lbw_batch_view view;
    uint8_t *copy = malloc(e->len);
    memcpy(copy, e->p, e->len);
    for (size_t i = 0; i < n; i++)
        copy[off + i] = (uint8_t)(val >> (8 * (n - 1 - i)));
    enum lbw_batch_error rc = lbw_batch_verify(v, copy, e->len, &view, NULL, 0);
    free(copy);
    return rc;
}

static void bad_header_fields(void **state)
{
    struct lbw_verifier *v = verifier(&pki.ca);
    struct raw p = good_payload();
    struct raw e = raw_entry(&node1_says, pki.node1.cert, pki.node1.key, &p);
    size_t name_at = 11, seq_at = 12 + 5, cert_at = seq_at + 8;
    size_t certlen = (size_t)e.p[cert_at] << 8 | e.p[cert_at + 1];
    size_t payload_at = cert_at + 2 + certlen, sig_at = payload_at + 4 + p.len;
    (void)state;
    assert_int_equal(verify_patched(v, &e, 0, 1, 2), LBW_BATCH_MALFORMED);  /* entry type */
    assert_int_equal(verify_patched(v, &e, 1, 1, 2), LBW_BATCH_MALFORMED);  /* version */
    assert_int_equal(verify_patched(v, &e, 2, 1, 3), LBW_BATCH_MALFORMED);  /* kind */
    assert_int_equal(verify_patched(v, &e, 3, 8, 0), LBW_BATCH_MALFORMED);  /* node id 0 */
    assert_int_equal(verify_patched(v, &e, 3, 8, (uint64_t)INT64_MAX + 1), LBW_BATCH_MALFORMED);
    assert_int_equal(verify_patched(v, &e, name_at, 1, 0), LBW_BATCH_MALFORMED);
    assert_int_equal(verify_patched(v, &e, name_at, 1, 64), LBW_BATCH_MALFORMED);
    assert_int_equal(verify_patched(v, &e, name_at + 1, 1, '/'), LBW_BATCH_MALFORMED);
    assert_int_equal(verify_patched(v, &e, name_at + 5, 1, 0), LBW_BATCH_MALFORMED); /* NUL */
    assert_int_equal(verify_patched(v, &e, cert_at, 2, 0), LBW_BATCH_MALFORMED);
    assert_int_equal(verify_patched(v, &e, cert_at, 2, LBW_BATCH_MAX_CERT + 1),
                     LBW_BATCH_MALFORMED);
    assert_int_equal(verify_patched(v, &e, cert_at, 2, 0xffff), LBW_BATCH_MALFORMED);
    assert_int_equal(verify_patched(v, &e, payload_at, 4, LBW_BATCH_MAX_PAYLOAD + 1),
                     LBW_BATCH_MALFORMED);
    assert_int_equal(verify_patched(v, &e, payload_at, 4, 0xffffffff), LBW_BATCH_MALFORMED);
    assert_int_equal(verify_patched(v, &e, sig_at, 2, 0), LBW_BATCH_MALFORMED);
    assert_int_equal(verify_patched(v, &e, sig_at, 2, LBW_BATCH_MAX_SIG + 1),
                     LBW_BATCH_MALFORMED);
    assert_int_equal(verify_patched(v, &e, sig_at, 2, 0xffff), LBW_BATCH_MALFORMED);
    /* The sequence number is a plain field: changing it breaks the signature only. */
    assert_int_equal(verify_patched(v, &e, seq_at, 8, 6), LBW_BATCH_BAD_SIGNATURE);

    /* An agent must state id 0. */
    const struct stated agent = {LBW_ID_AGENT, 7, "edge1", 1};
    struct raw a = raw_entry(&agent, pki.agent.cert, pki.agent.key, &p);
    assert_int_equal(verify_raw(v, &a, NULL, 0), LBW_BATCH_MALFORMED);
    free(a.p);
    /* A certificate with a byte after its DER. */
    struct raw padded = {0};
    raw_bytes(&padded, e.p, cert_at);
    raw_be(&padded, certlen + 1, 2);
    raw_bytes(&padded, e.p + cert_at + 2, certlen);
    raw_be(&padded, 0, 1);
    raw_bytes(&padded, e.p + payload_at, e.len - payload_at);
    assert_int_equal(verify_raw(v, &padded, NULL, 0), LBW_BATCH_MALFORMED);
    free(padded.p);
    free(e.p);
    free(p.p);
    lbw_verifier_free(v);
}

/* ---- the certificate cache --------------------------------------------------------------- */

/* Other entry types share the envelope: signed, verified, refused when changed; batches
 * can only come from the builder, and a batch verifier does not take them. */
static void alert_entries_share_the_envelope(void **state)
{
    (void)state;
    char err[256], why[256];
    const uint8_t payload[] = {1, 2, 3, 4, 5, 6, 7};
    uint8_t *e;
    size_t len;
    struct lbw_batch_view view;
    struct lbw_signer *s = signer(&pki.node1);
    struct lbw_verifier *v = verifier(&pki.ca);
    assert_int_equal(lbw_entry_sign(s, LBW_ENTRY_ALERT, 99, payload, sizeof(payload), &e, &len,
                                    err, sizeof(err)), 0);
    assert_int_equal(lbw_entry_verify(v, e, len, &view, why, sizeof(why)), LBW_BATCH_OK);
    assert_int_equal(view.type, LBW_ENTRY_ALERT);
    assert_int_equal(view.seq, 99);
    assert_int_equal(view.origin.id, 1);
    assert_int_equal(view.payload_len, sizeof(payload));
    assert_memory_equal(view.payload, payload, sizeof(payload));
    size_t last = (size_t)(view.payload - e) + view.payload_len - 1;
    assert_int_equal(lbw_batch_verify(v, e, len, &view, why, sizeof(why)), LBW_BATCH_MALFORMED);
    e[last] ^= 1; /* the payload's last byte */
    assert_int_equal(lbw_entry_verify(v, e, len, &view, why, sizeof(why)),
                     LBW_BATCH_BAD_SIGNATURE);
    free(e);
    assert_int_equal(lbw_entry_sign(s, LBW_ENTRY_BATCH, 1, payload, sizeof(payload), &e, &len,
                                    err, sizeof(err)), -1);
    assert_null(e);
    lbw_signer_free(s);
    lbw_verifier_free(v);
}

static void cache_skips_chain_check(void **state)
{
    struct lbw_verifier *v = verifier(&pki.ca);
    struct lbw_verifier_stats st;
    struct raw p = good_payload();
    struct raw e = raw_entry(&node1_says, pki.node1.cert, pki.node1.key, &p);
    struct raw bad = raw_entry(&node1_says, pki.rogue.cert, pki.rogue.key, &p);
    (void)state;
    assert_int_equal(verify_raw(v, &e, NULL, 0), LBW_BATCH_OK);
    lbw_verifier_stats(v, &st);
    assert_int_equal(st.chain_checks, 1);
    assert_int_equal(st.cache_hits, 0);
    assert_int_equal(st.cached, 1);
    for (int i = 0; i < 5; i++)
        assert_int_equal(verify_raw(v, &e, NULL, 0), LBW_BATCH_OK);
    lbw_verifier_stats(v, &st);
    assert_int_equal(st.chain_checks, 1);
    assert_int_equal(st.cache_hits, 5);
    /* A cached certificate does not excuse a bad signature. */
    e.p[e.len - 1] ^= 1;
    assert_int_equal(verify_raw(v, &e, NULL, 0), LBW_BATCH_BAD_SIGNATURE);
    /* Refused certificates are not remembered: checked every time, refused every time. */
    assert_int_equal(verify_raw(v, &bad, NULL, 0), LBW_BATCH_UNTRUSTED);
    assert_int_equal(verify_raw(v, &bad, NULL, 0), LBW_BATCH_UNTRUSTED);
    lbw_verifier_stats(v, &st);
    assert_int_equal(st.chain_checks, 3);
    assert_int_equal(st.cached, 1);
    free(bad.p);
    free(e.p);
    free(p.p);
    lbw_verifier_free(v);
}

/* LBW_VERIFIER_CACHE + 1 distinct certificates: the first is forgotten, the rest are not,
 * and every verdict stays right throughout. */
static void cache_is_bounded(void **state)
{
    enum { N = LBW_VERIFIER_CACHE + 1 };
    struct lbw_verifier *v = verifier(&pki.ca);
    struct lbw_verifier_stats st;
    struct raw p = {0}, *entries = calloc(N, sizeof(*entries));
    char name[32];
    (void)state;
    raw_varint(&p, 0);
    raw_varint(&p, 0);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "n%d", i + 10);
        struct pair c = make_node(name, (uint64_t)i + 10, LBW_KEY_EC_P256, &pki.ca);
        struct stated st_i = {LBW_ID_NODE, (uint64_t)i + 10, name, 1};
        entries[i] = raw_entry(&st_i, c.cert, c.key, &p);
        pair_free(&c);
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(verify_raw(v, &entries[i], NULL, 0), LBW_BATCH_OK);
    lbw_verifier_stats(v, &st);
    assert_int_equal(st.chain_checks, N);
    assert_int_equal(st.cached, LBW_VERIFIER_CACHE);
    assert_int_equal(st.evictions, 1);
    for (int i = 1; i < N; i++) /* still cached, found through the shifted table */
        assert_int_equal(verify_raw(v, &entries[i], NULL, 0), LBW_BATCH_OK);
    lbw_verifier_stats(v, &st);
    assert_int_equal(st.chain_checks, N);
    assert_int_equal(st.cache_hits, N - 1);
    assert_int_equal(verify_raw(v, &entries[0], NULL, 0), LBW_BATCH_OK); /* evicted: again */
    lbw_verifier_stats(v, &st);
    assert_int_equal(st.chain_checks, N + 1);
    assert_int_equal(st.evictions, 2); /* entries[1] was the oldest then */
    assert_int_equal(verify_raw(v, &entries[2], NULL, 0), LBW_BATCH_OK);
    lbw_verifier_stats(v, &st);
    assert_int_equal(st.chain_checks, N + 1);
    for (int i = 0; i < N; i++)
        free(entries[i].p);
    free(entries);
    free(p.p);
    lbw_verifier_free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(roundtrip_ec_node),
        cmocka_unit_test(alert_entries_share_the_envelope),
        cmocka_unit_test(roundtrip_ed25519_node),
        cmocka_unit_test(roundtrip_agent),
        cmocka_unit_test(builder_reuse_and_empty),
        cmocka_unit_test(builder_refuses),
        cmocka_unit_test(signer_refuses),
        cmocka_unit_test(from_files),
        cmocka_unit_test(reference_encoder_agrees),
        cmocka_unit_test(every_flipped_bit_is_refused),
        cmocka_unit_test(other_ca_untrusted),
        cmocka_unit_test(stated_origin_must_match),
        cmocka_unit_test(expired_certificate_still_verifies),
        cmocka_unit_test(truncated_and_trailing),
        cmocka_unit_test(bad_payloads),
        cmocka_unit_test(bad_header_fields),
        cmocka_unit_test(cache_skips_chain_check),
        cmocka_unit_test(cache_is_bounded),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
