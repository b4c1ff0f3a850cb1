/* test_fsm.c - node/fsm: the replicated state machine.
 *
 * On libraft's raft_fixture (three servers, each FSM on its own store in its own temp dir):
 * replicas apply the same batches to the same index, hash and store contents; forged,
 * replayed, foreign-CA, foreign-vantage and garbage entries are refused on every server
 * for the same reason, counted, and leave the hashes in agreement; a server that was down
 * while the leader compacted its log catches up by installing a snapshot.
 *
 * Through the raft_fsm function pointers directly: the documented hash chain, audit records
 * and certificates, callbacks, the state meta key, a restart (restore the last snapshot,
 * re-apply what follows, with the store as the crash left it) ending in the same hash and
 * store, snapshots bounded in size with the oldest samples left out first, refused snapshots
 * that change nothing, a failing store that leaves no trace, vantage label edge cases and
 * the automatic commit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <raft.h>
#include <raft/fixture.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/evp.h>

#include "node/fsm.h"
#include "node/pki.h"
#include "node/store.h"
#include "probes/sample.h"
#include "raft/batch.h"
#include "tests/support/testutil.h"

#define T0 1700000000000LL
#define DAY 86400
#define MAX_POINTS 200000

/* ---- certificates and signers ------------------------------------------------------------ */

struct pair {
    X509 *cert;
    EVP_PKEY *key;
};

static struct {
    struct pair ca, other_ca, node[3], agent, rogue;
    struct lbw_signer *node_s[3], *agent_s, *rogue_s;
} pki;

static struct pair make(const char *cn, int is_ca, const struct lbw_identity *id,
                        enum lbw_key_alg alg, const struct pair *issuer)
{
    int64_t now = time(NULL);
    struct lbw_cert_spec s = {.cn = cn, .is_ca = is_ca, .not_before = now - DAY,
                              .not_after = now + 30 * DAY, .identity = id, .key_alg = alg};
    struct pair p = {0};
    char err[256] = "";
    if (lbw_pki_make_cert(&s, issuer ? issuer->cert : NULL, issuer ? issuer->key : NULL,
                          &p.cert, &p.key, err, sizeof(err)) != 0)
        fail_msg("make_cert(%s): %s", cn, err);
    return p;
}

static struct lbw_signer *signer(const struct pair *p)
{
    char err[256] = "";
    struct lbw_signer *s = lbw_signer_new(p->cert, p->key, err, sizeof(err));
    if (!s)
        fail_msg("signer: %s", err);
    return s;
}

static int group_setup(void **state)
{
    static const enum lbw_key_alg algs[3] = {LBW_KEY_EC_P256, LBW_KEY_ED25519, LBW_KEY_EC_P256};
    struct lbw_identity agent = {LBW_ID_AGENT, 0, "edge1"}, rogue = {LBW_ID_NODE, 1, "node1"};
    (void)state;
    pki.ca = make("test-ca", 1, NULL, LBW_KEY_EC_P256, NULL);
    pki.other_ca = make("other-ca", 1, NULL, LBW_KEY_EC_P256, NULL);
    for (int i = 0; i < 3; i++) {
        struct lbw_identity id = {LBW_ID_NODE, (uint64_t)i + 1, ""};
        snprintf(id.name, sizeof(id.name), "node%d", i + 1);
        pki.node[i] = make(id.name, 0, &id, algs[i], &pki.ca);
        pki.node_s[i] = signer(&pki.node[i]);
    }
    pki.agent = make("edge1", 0, &agent, LBW_KEY_EC_P256, &pki.ca);
    pki.agent_s = signer(&pki.agent);
    pki.rogue = make("node1", 0, &rogue, LBW_KEY_EC_P256, &pki.other_ca);
    pki.rogue_s = signer(&pki.rogue);
    return 0;
}

static void pair_free(struct pair *p)
{
    X509_free(p->cert);
    EVP_PKEY_free(p->key);
}

static int group_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++) {
        lbw_signer_free(pki.node_s[i]);
        pair_free(&pki.node[i]);
    }
    lbw_signer_free(pki.agent_s);
    lbw_signer_free(pki.rogue_s);
    pair_free(&pki.agent);
    pair_free(&pki.rogue);
    pair_free(&pki.ca);
    pair_free(&pki.other_ca);
    return 0;
}

/* ---- batches ----------------------------------------------------------------------------- */

struct entry {
    uint8_t *p;
    size_t len;
};

static struct entry finish(struct lbw_batch_builder *b, const struct lbw_signer *s,
                           uint64_t seq)
{
    struct entry e;
    char err[256] = "";
    if (lbw_batch_finish(b, s, seq, &e.p, &e.len, err, sizeof(err)) != 0)
        fail_msg("finish: %s", err);
    lbw_batch_builder_free(b);
    return e;
}

static void add(struct lbw_batch_builder *b, const char *key, int64_t ts, double v)
{
    assert_int_equal(lbw_batch_add(b, key, strlen(key), ts, v), 0);
}

/* nseries series x per samples, 1 s apart from ts0, measured by vantage, signed by s. */
static struct entry batch_as(const struct lbw_signer *s, uint64_t seq, const char *vantage,
                             const char *target, int nseries, int per, int64_t ts0)
{
    struct lbw_batch_builder *b = lbw_batch_builder_new();
    char key[LBW_KEY_MAX];
    for (int j = 0; j < per; j++)
        for (int i = 0; i < nseries; i++) {
            snprintf(key, sizeof(key), "probe_rtt_ms{series=\"%d\",target=\"%s\",vantage=\"%s\"}",
                     i, target, vantage);
            add(b, key, ts0 + j * 1000LL, (double)seq * 1000 + i + j * 0.25);
        }
    return finish(b, s, seq);
}

/* A batch of signer s speaking for itself. */
static struct entry batch(const struct lbw_signer *s, uint64_t seq, int nseries, int per,
                          int64_t ts0)
{
    return batch_as(s, seq, lbw_signer_identity(s)->name, "www", nseries, per, ts0);
}

static struct entry bytes(const char *text)
{
    struct entry e = {malloc(strlen(text)), strlen(text)};
    memcpy(e.p, text, e.len);
    return e;
}

/* ---- replicas ---------------------------------------------------------------------------- */

struct rejection {
    uint64_t index;
    enum lbw_fsm_reject why;
    int has_origin;
};

struct replica {
    char dir[256];
    struct lbw_store *store;
    struct lbw_verifier *verifier;
    struct lbw_fsm *fsm;
    int64_t window_ms;
    size_t snapshot_max;
    struct rejection rej[64];
    size_t nrej;
    struct lbw_identity batch_origin[64];
    uint64_t batch_seq[64];
    size_t nbatch;
};

static void on_reject(void *arg, uint64_t index, enum lbw_fsm_reject why,
                      const struct lbw_identity *origin, uint64_t seq, const char *detail)
{
    struct replica *r = arg;
    (void)seq;
    assert_non_null(detail);
    assert_true(r->nrej < 64);
    r->rej[r->nrej++] = (struct rejection){index, why, origin != NULL};
}

static void on_batch(void *arg, const struct lbw_identity *origin, uint64_t seq)
{
    struct replica *r = arg;
    assert_true(r->nbatch < 64);
    r->batch_origin[r->nbatch] = *origin;
    r->batch_seq[r->nbatch++] = seq;
}

static struct lbw_store *open_store(const char *dir, size_t map_size)
{
    struct lbw_store_options o = {.dir = dir, .map_size = map_size, .no_sync = 1};
    struct lbw_store *s = NULL;
    char err[256] = "";
    if (lbw_store_open(&s, &o, err, sizeof(err)) < 0)
        fail_msg("store: %s", err);
    return s;
}

static void fsm_open(struct replica *r)
{
    struct lbw_fsm_options o = {.store = r->store, .verifier = r->verifier,
                                .window_ms = r->window_ms, .snapshot_max_bytes = r->snapshot_max,
                                .arg = r, .on_reject = on_reject, .on_batch = on_batch};
    assert_int_equal(lbw_fsm_new(&r->fsm, &o), 0);
}

static void replica_open(struct replica *r, int64_t window_ms, size_t snapshot_max,
                         size_t map_size)
{
    char err[256] = "";
    memset(r, 0, sizeof(*r));
    assert_int_equal(tu_tmpdir("lbw-fsm", r->dir, sizeof(r->dir)), 0);
    r->store = open_store(r->dir, map_size);
    r->verifier = lbw_verifier_new_ca(pki.ca.cert, err, sizeof(err));
    assert_non_null(r->verifier);
    r->window_ms = window_ms;
    r->snapshot_max = snapshot_max;
    fsm_open(r);
}

static void replica_close(struct replica *r)
{
    lbw_fsm_free(r->fsm);
    lbw_store_close(r->store);
    lbw_verifier_free(r->verifier);
    tu_rmrf(r->dir);
}

/* ---- the raft_fsm interface, called directly --------------------------------------------- */

static int apply(struct lbw_fsm *f, const struct entry *e)
{
    struct raft_fsm *rf = lbw_fsm_raft(f);
    struct raft_buffer b = {e->p, e->len};
    void *result = &b;
    int rc = rf->apply(rf, &b, &result);
    assert_null(result);
    return rc;
}

static struct entry snapshot(struct lbw_fsm *f)
{
    struct raft_fsm *rf = lbw_fsm_raft(f);
    struct raft_buffer *bufs = NULL;
    unsigned n = 0;
    assert_int_equal(rf->version, 2);
    assert_int_equal(rf->snapshot(rf, &bufs, &n), 0);
    assert_int_equal(n, 1);
    struct entry e = {malloc(bufs[0].len), bufs[0].len};
    memcpy(e.p, bufs[0].base, e.len);
    assert_int_equal(rf->snapshot_finalize(rf, &bufs, &n), 0);
    return e;
}

/* Restores a copy of snap (libraft hands over a raft_malloc'd buffer, kept on success). */
static int restore(struct lbw_fsm *f, const uint8_t *snap, size_t len)
{
    struct raft_fsm *rf = lbw_fsm_raft(f);
    struct raft_buffer b = {raft_malloc(len ? len : 1), len};
    memcpy(b.base, snap, len);
    int rc = rf->restore(rf, &b);
    if (rc != 0)
        raft_free(b.base);
    return rc;
}

static struct lbw_fsm_stats stats(const struct replica *r)
{
    struct lbw_fsm_stats st;
    lbw_fsm_stats(r->fsm, &st);
    return st;
}

/* ---- store contents ---------------------------------------------------------------------- */

struct digest {
    EVP_MD_CTX *md;
    struct lbw_store *s;
    struct lbw_point *pts;
    size_t series, points;
};

static int digest_series(void *arg, const struct lbw_series_info *si)
{
    struct digest *d = arg;
    long n = lbw_store_points(d->s, si->key, si->keylen, 0, INT64_MAX, d->pts, MAX_POINTS);
    assert_true(n >= 0 && n < MAX_POINTS);
    if (n == 0)
        return 0;
    EVP_DigestUpdate(d->md, si->key, si->keylen + 1);
    EVP_DigestUpdate(d->md, &n, sizeof(n));
    EVP_DigestUpdate(d->md, d->pts, (size_t)n * sizeof(*d->pts));
    d->series++;
    d->points += (size_t)n;
    return 0;
}

/* SHA-256 over every series' key and committed points, in key order. */
static size_t store_digest(struct lbw_store *s, uint8_t out[32])
{
    static struct lbw_point pts[MAX_POINTS];
    struct digest d = {EVP_MD_CTX_new(), s, pts, 0, 0};
    assert_int_equal(EVP_DigestInit_ex(d.md, EVP_sha256(), NULL), 1);
    assert_int_equal(lbw_store_foreach_series(s, NULL, digest_series, &d), 0);
    assert_int_equal(EVP_DigestFinal_ex(d.md, out, NULL), 1);
    EVP_MD_CTX_free(d.md);
    return d.points;
}

static int count_audit_cb(void *arg, uint64_t index, const uint8_t *rec, size_t len)
{
    struct lbw_audit_record a;
    assert_int_equal(lbw_fsm_audit_decode(rec, len, &a), 0);
    assert_int_equal(a.index, index);
    (*(size_t *)arg)++;
    return 0;
}

static size_t count_audit(struct lbw_store *s)
{
    size_t n = 0;
    assert_int_equal(lbw_store_audit_foreach(s, 0, count_audit_cb, &n), 0);
    return n;
}

static int has_series(struct lbw_store *s, const char *key)
{
    int64_t ts;
    double v;
    return lbw_store_last(s, key, strlen(key), &ts, &v) == 1;
}

/* ---- the raft fixture -------------------------------------------------------------------- */

#define NSERVERS 3

struct cluster {
    struct raft_fixture f;
    struct replica r[NSERVERS];
};

static void apply_done(struct raft_apply *req, int status, void *result)
{
    (void)result;
    assert_int_equal(status, 0);
    free(req);
}

static int cluster_setup(void **state)
{
    struct cluster *c = calloc(1, sizeof(*c));
    struct raft_configuration conf;
    assert_non_null(c);
    memset(&c->f, 0, sizeof(c->f)); /* raft_fixture_initialize does not zero it */
    assert_int_equal(raft_fixture_initialize(&c->f), 0);
    for (unsigned i = 0; i < NSERVERS; i++) {
        replica_open(&c->r[i], 0, 0, 0);
        assert_int_equal(raft_fixture_grow(&c->f, lbw_fsm_raft(c->r[i].fsm)), 0);
        lbw_fsm_bind(c->r[i].fsm, raft_fixture_get(&c->f, i));
    }
    assert_int_equal(raft_fixture_configuration(&c->f, NSERVERS, &conf), 0);
    assert_int_equal(raft_fixture_bootstrap(&c->f, &conf), 0);
    raft_configuration_close(&conf);
    assert_int_equal(raft_fixture_start(&c->f), 0);
    raft_fixture_elect(&c->f, 0);
    assert_int_equal(raft_fixture_leader_index(&c->f), 0);
    *state = c;
    return 0;
}

static int cluster_teardown(void **state)
{
    struct cluster *c = *state;
    raft_fixture_close(&c->f);
    for (unsigned i = 0; i < NSERVERS; i++)
        replica_close(&c->r[i]);
    free(c);
    return 0;
}

/* Proposes e through the leader (e is consumed); returns its raft index. */
static raft_index propose(struct cluster *c, struct entry e)
{
    struct raft *leader = raft_fixture_get(&c->f, raft_fixture_leader_index(&c->f));
    struct raft_buffer buf = {raft_malloc(e.len), e.len};
    struct raft_apply *req = malloc(sizeof(*req));
    memcpy(buf.base, e.p, e.len);
    free(e.p);
    assert_int_equal(raft_apply(leader, req, &buf, 1, apply_done), 0);
    return raft_last_index(leader);
}

static void settle(struct cluster *c, unsigned server, raft_index index)
{
    assert_true(raft_fixture_step_until_applied(&c->f, server, index, 60000));
}

/* Every server: same applied index (raft's own, when the last entry is a command), hash,
 * counters and store contents. */
static void assert_replicas_agree(struct cluster *c, raft_index last)
{
    struct lbw_fsm_stats s0 = stats(&c->r[0]);
    uint8_t d0[32], d[32];
    assert_int_equal(lbw_fsm_flush(c->r[0].fsm), 0);
    size_t p0 = store_digest(c->r[0].store, d0);
    assert_int_equal(s0.applied_index, last);
    for (unsigned i = 0; i < NSERVERS; i++) {
        struct lbw_fsm_stats s = stats(&c->r[i]);
        char h0[65], h[65];
        lbw_fsm_hash_hex(s0.hash, h0);
        lbw_fsm_hash_hex(s.hash, h);
        assert_int_equal(raft_last_applied(raft_fixture_get(&c->f, i)), last);
        assert_int_equal(s.applied_index, last);
        assert_string_equal(h, h0);
        assert_memory_equal(s.rejected, s0.rejected, sizeof(s.rejected));
        assert_int_equal(lbw_fsm_flush(c->r[i].fsm), 0);
        assert_int_equal(store_digest(c->r[i].store, d), p0);
        assert_memory_equal(d, d0, 32);
        for (int n = 0; n < 3; n++)
            assert_int_equal(lbw_fsm_origin_seq(c->r[i].fsm, lbw_signer_identity(pki.node_s[n])),
                             lbw_fsm_origin_seq(c->r[0].fsm, lbw_signer_identity(pki.node_s[n])));
    }
}

static void cluster_replicates_identically(void **state)
{
    struct cluster *c = *state;
    raft_index last = 0;
    for (uint64_t seq = 1; seq <= 4; seq++) {
        for (int n = 0; n < 3; n++)
            last = propose(c, batch(pki.node_s[n], seq, 20, 3, T0 + (int64_t)seq * 10000));
        last = propose(c, batch(pki.agent_s, seq * 7, 5, 2, T0 + (int64_t)seq * 10000));
    }
    settle(c, NSERVERS, last);
    assert_replicas_agree(c, last);
    for (unsigned i = 0; i < NSERVERS; i++) {
        struct replica *r = &c->r[i];
        struct lbw_fsm_stats s = stats(r);
        assert_int_equal(s.batches, 16);
        assert_int_equal(s.entries, 16);
        assert_int_equal(s.samples, 4 * (3 * 60 + 10));
        assert_int_equal(r->nrej, 0);
        assert_int_equal(r->nbatch, 16);
        assert_string_equal(r->batch_origin[15].name, "edge1");
        assert_int_equal(r->batch_seq[15], 28);
        assert_int_equal(lbw_fsm_origin_seq(r->fsm, lbw_signer_identity(pki.agent_s)), 28);
        assert_int_equal(count_audit(r->store), 16);
        assert_true(has_series(r->store,
                               "probe_rtt_ms{series=\"4\",target=\"www\",vantage=\"edge1\"}"));
    }
}

static void cluster_rejects_identically(void **state)
{
    struct cluster *c = *state;
    struct entry first = batch(pki.node_s[0], 1, 4, 2, T0);
    struct entry again = {malloc(first.len), first.len};
    memcpy(again.p, first.p, first.len);
    raft_index idx[10];
    const enum lbw_fsm_reject want[8] = {
        LBW_REJECT_BAD_SIGNATURE, LBW_REJECT_REPLAY,     LBW_REJECT_REPLAY,
        LBW_REJECT_UNTRUSTED,     LBW_REJECT_FOREIGN_VANTAGE, LBW_REJECT_MALFORMED,
        LBW_REJECT_MALFORMED,     LBW_REJECT_FORGED};

    idx[0] = propose(c, first);
    struct entry forged = batch(pki.node_s[0], 2, 4, 2, T0 + 5000);
    forged.p[forged.len - 3] ^= 0x40; /* inside the signature */
    idx[1] = propose(c, forged);
    idx[2] = propose(c, again);                                   /* the very same bytes */
    idx[3] = propose(c, batch(pki.node_s[0], 1, 4, 2, T0 + 9000)); /* fresh, old sequence */
    idx[4] = propose(c, batch(pki.rogue_s, 50, 4, 2, T0 + 9000));  /* node1 of another CA */
    idx[5] = propose(c, batch_as(pki.node_s[1], 1, "node1", "forged", 2, 1, T0));
    idx[6] = propose(c, bytes("hello, raft"));
    idx[7] = propose(c, bytes("\001\001garbage"));
    struct entry claims = batch(pki.node_s[0], 3, 1, 1, T0 + 9000);
    claims.p[10] = 2; /* states node id 2 with node1's certificate */
    idx[8] = propose(c, claims);
    idx[9] = propose(c, batch(pki.node_s[0], 2, 4, 2, T0 + 9000)); /* sequence 2 still free */
    settle(c, NSERVERS, idx[9]);
    assert_replicas_agree(c, idx[9]);

    for (unsigned i = 0; i < NSERVERS; i++) {
        struct replica *r = &c->r[i];
        struct lbw_fsm_stats s = stats(r);
        assert_int_equal(r->nrej, 8);
        for (int k = 0; k < 8; k++) {
            assert_int_equal(r->rej[k].index, idx[k + 1]);
            if (r->rej[k].why != want[k])
                fail_msg("server %u, entry %d: %s, want %s", i, k + 1,
                         lbw_fsm_reject_name(r->rej[k].why), lbw_fsm_reject_name(want[k]));
            assert_int_equal(r->rej[k].has_origin, k != 5 && k != 6);
        }
        assert_int_equal(s.rejected[LBW_REJECT_REPLAY], 2);
        assert_int_equal(s.rejected[LBW_REJECT_MALFORMED], 2);
        assert_int_equal(s.rejected[LBW_REJECT_BAD_SIGNATURE], 1);
        assert_int_equal(s.rejected[LBW_REJECT_UNTRUSTED], 1);
        assert_int_equal(s.rejected[LBW_REJECT_FORGED], 1);
        assert_int_equal(s.rejected[LBW_REJECT_FOREIGN_VANTAGE], 1);
        assert_int_equal(s.batches, 2);
        assert_int_equal(s.entries, 10);
        assert_int_equal(lbw_fsm_origin_seq(r->fsm, lbw_signer_identity(pki.node_s[0])), 2);
        assert_int_equal(lbw_fsm_origin_seq(r->fsm, lbw_signer_identity(pki.node_s[1])), 0);
        assert_false(has_series(
            r->store, "probe_rtt_ms{series=\"0\",target=\"forged\",vantage=\"node1\"}"));
        assert_int_equal(count_audit(r->store), 2);
    }
}

static void cluster_catch_up_by_snapshot(void **state)
{
    struct cluster *c = *state;
    raft_index last = 0;
    for (unsigned i = 0; i < NSERVERS; i++) {
        raft_set_snapshot_threshold(raft_fixture_get(&c->f, i), 4);
        raft_set_snapshot_trailing(raft_fixture_get(&c->f, i), 2);
    }
    for (uint64_t seq = 1; seq <= 2; seq++)
        last = propose(c, batch(pki.node_s[0], seq, 10, 2, T0 + (int64_t)seq * 10000));
    settle(c, NSERVERS, last);

    raft_fixture_kill(&c->f, 2);
    for (uint64_t seq = 3; seq <= 22; seq++) {
        last = propose(c, batch(pki.node_s[seq % 2], seq, 10, 2, T0 + (int64_t)seq * 10000));
        settle(c, 0, last);
        settle(c, 1, last);
    }
    assert_true(stats(&c->r[0]).snapshots >= 2);
    assert_int_equal(stats(&c->r[2]).applied_index, 3); /* the two batches after the config */

    raft_fixture_revive(&c->f, 2);
    settle(c, NSERVERS, last);
    assert_true(stats(&c->r[2]).restores >= 1);
    assert_int_equal(stats(&c->r[0]).restores, 0);
    /* Every sample is within the window: the restored store holds all of them. */
    assert_replicas_agree(c, last);
    assert_true(has_series(c->r[2].store,
                           "probe_rtt_ms{series=\"9\",target=\"www\",vantage=\"node2\"}"));
    /* The audit trail of the entries the snapshot covered stays with the others. */
    assert_true(count_audit(c->r[2].store) < count_audit(c->r[0].store));
    assert_int_equal(count_audit(c->r[0].store), 22);
}

/* ---- direct: apply ----------------------------------------------------------------------- */

static void sha256_chain(uint8_t h[32], uint64_t index, const struct entry *e)
{
    uint8_t ib[8];
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    for (int i = 0; i < 8; i++)
        ib[i] = (uint8_t)(index >> (56 - 8 * i));
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    EVP_DigestUpdate(md, h, 32);
    EVP_DigestUpdate(md, ib, 8);
    EVP_DigestUpdate(md, e->p, e->len);
    EVP_DigestFinal_ex(md, h, NULL);
    EVP_MD_CTX_free(md);
}

static void apply_chain_audit_and_callbacks(void **state)
{
    struct replica r;
    uint8_t h[32] = {0};
    struct entry e[5] = {
        batch(pki.node_s[0], 10, 3, 2, T0), bytes(""), bytes("\002unknown type"),
        batch(pki.node_s[0], 5, 3, 2, T0 + 60000), batch(pki.node_s[1], 1, 2, 4, T0 + 1000),
    };
    (void)state;
    replica_open(&r, 0, 0, 0);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(apply(r.fsm, &e[i]), 0);
        sha256_chain(h, (uint64_t)i + 1, &e[i]);
        struct lbw_fsm_stats s = stats(&r);
        assert_int_equal(s.applied_index, i + 1); /* unbound: numbered by the FSM */
        assert_memory_equal(s.hash, h, 32);
    }
    struct lbw_fsm_stats s = stats(&r);
    assert_int_equal(s.entries, 5);
    assert_int_equal(s.batches, 2);
    assert_int_equal(s.samples, 6 + 8);
    assert_int_equal(s.rejected[LBW_REJECT_MALFORMED], 2);
    assert_int_equal(s.rejected[LBW_REJECT_REPLAY], 1); /* 5 after 10 */
    assert_int_equal(r.nrej, 3);
    assert_int_equal(r.rej[0].index, 2);
    assert_false(r.rej[0].has_origin);
    assert_int_equal(r.rej[2].index, 4);
    assert_true(r.rej[2].has_origin);
    assert_int_equal(r.nbatch, 2);
    assert_int_equal(r.batch_seq[0], 10);
    assert_string_equal(r.batch_origin[1].name, "node2");
    assert_int_equal(r.batch_origin[1].id, 2);
    assert_int_equal(lbw_fsm_origin_seq(r.fsm, lbw_signer_identity(pki.node_s[0])), 10);
    assert_int_equal(lbw_fsm_origin_seq(r.fsm, lbw_signer_identity(pki.agent_s)), 0);
    char hex[65];
    lbw_fsm_hash_hex(h, hex);
    assert_int_equal(strlen(hex), 64);
    assert_int_equal(strspn(hex, "0123456789abcdef"), 64);

    /* Nothing is visible before the flush; then samples, audit and state are, together. */
    uint8_t rec[LBW_STORE_AUDIT_MAX], meta[64];
    assert_int_equal(lbw_store_audit_get(r.store, 1, rec, sizeof(rec)), 0);
    assert_int_equal(lbw_store_meta_get(r.store, "fsm.state", meta, sizeof(meta)), 0);
    assert_int_equal(lbw_fsm_flush(r.fsm), 0);
    assert_int_equal(lbw_store_meta_get(r.store, "fsm.state", meta, sizeof(meta)), 40);
    assert_int_equal(meta[7], 5);
    assert_memory_equal(meta + 8, h, 32);

    /* The audit record of entry 5 (node2's batch), and node2's certificate beside it. */
    struct lbw_batch_view view;
    assert_int_equal(lbw_batch_verify(r.verifier, e[4].p, e[4].len, &view, NULL, 0),
                     LBW_BATCH_OK);
    long len = lbw_store_audit_get(r.store, 5, rec, sizeof(rec));
    struct lbw_audit_record a;
    assert_true(len > 0);
    assert_int_equal(lbw_fsm_audit_decode(rec, (size_t)len, &a), 0);
    assert_int_equal(a.index, 5);
    assert_int_equal(a.seq, 1);
    assert_int_equal(a.origin.kind, LBW_ID_NODE);
    assert_int_equal(a.origin.id, 2);
    assert_string_equal(a.origin.name, "node2");
    assert_int_equal(a.nsamples, 8);
    assert_int_equal(a.oldest_ts, T0 + 1000);
    assert_int_equal(a.newest_ts, T0 + 4000);
    assert_memory_equal(a.payload_sha256, view.payload_sha256, 32);
    assert_memory_equal(a.cert_sha256, view.cert_sha256, 32);
    assert_int_equal(a.siglen, view.siglen);
    assert_memory_equal(a.sig, view.sig, view.siglen);
    uint8_t der[LBW_BATCH_MAX_CERT];
    assert_int_equal(lbw_store_audit_cert_get(r.store, a.cert_sha256, der, sizeof(der)),
                     (long)view.cert_len);
    assert_memory_equal(der, view.cert, view.cert_len);
    assert_int_equal(lbw_store_audit_get(r.store, 4, rec, sizeof(rec)), 0); /* refused */
    assert_int_equal(count_audit(r.store), 2);
    for (long n = 0; n < len; n++) /* every truncation of a record is refused */
        assert_int_equal(lbw_fsm_audit_decode(rec, (size_t)n, &a), -1);
    rec[8] = 2;
    assert_int_equal(lbw_fsm_audit_decode(rec, (size_t)len, &a), -1);
    assert_string_equal(lbw_fsm_reject_name(LBW_REJECT_FOREIGN_VANTAGE), "foreign_vantage");

    for (int i = 0; i < 5; i++)
        free(e[i].p);
    replica_close(&r);
}

/* Keys whose vantage label is subtly not the signer's. */
static void vantage_must_be_the_origin(void **state)
{
    static const char *const keys[] = {
        "up{target=\"a\"}",                                  /* no vantage */
        "up",                                                /* no labels at all */
        "up{vantage=\"node11\"}",                            /* a longer name */
        "up{vantage=\"node\"}",                              /* a prefix */
        "up{a=\"x\\\",vantage=\\\"node1\",target=\"y\"}",     /* inside an escaped value */
        "up{vantage=\"Node1\"}",
    };
    struct replica r;
    (void)state;
    replica_open(&r, 0, 0, 0);
    uint64_t seq = 1;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        struct lbw_batch_builder *b = lbw_batch_builder_new();
        add(b, "up{vantage=\"node1\",zone=\"z\"}", T0, 1); /* a good key first */
        add(b, keys[i], T0, 1);
        struct entry e = finish(b, pki.node_s[0], seq++);
        assert_int_equal(apply(r.fsm, &e), 0);
        assert_int_equal(r.nrej, i + 1);
        if (r.rej[i].why != LBW_REJECT_FOREIGN_VANTAGE)
            fail_msg("%s: %s", keys[i], lbw_fsm_reject_name(r.rej[i].why));
        free(e.p);
    }
    struct lbw_batch_builder *b = lbw_batch_builder_new();
    add(b, "up{vantage=\"node1\",zone=\"z\"}", T0, 1);
    add(b, "up{a=\"x\\\"y\",vantage=\"node1\"}", T0, 1);
    add(b, "a{vantage=\"node1\"}", T0, 1);
    struct entry e = finish(b, pki.node_s[0], seq);
    assert_int_equal(apply(r.fsm, &e), 0);
    assert_int_equal(stats(&r).batches, 1);
    free(e.p);
    replica_close(&r);
}

/* A store that fails (full map): apply returns an error and takes in nothing of the entry;
 * the next entry gets the same index. */
static void failing_store_leaves_no_trace(void **state)
{
    struct replica r;
    (void)state;
    replica_open(&r, 0, 0, 256 * 1024);
    struct entry small = batch(pki.node_s[0], 1, 2, 2, T0);
    assert_int_equal(apply(r.fsm, &small), 0);
    assert_int_equal(lbw_fsm_flush(r.fsm), 0);
    struct lbw_fsm_stats before = stats(&r);

    struct lbw_batch_builder *b = lbw_batch_builder_new();
    char key[LBW_KEY_MAX];
    uint64_t x = 88172645463325252ull;
    for (int j = 0; j < 1000; j++)
        for (int i = 0; i < 64; i++) {
            double v;
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            memcpy(&v, &x, sizeof(v)); /* incompressible */
            snprintf(key, sizeof(key), "noise{i=\"%d\",vantage=\"node1\"}", i);
            add(b, key, T0 + 10000 + j * 1000LL, v);
        }
    struct entry big = finish(b, pki.node_s[0], 2);
    assert_int_not_equal(apply(r.fsm, &big), 0);
    struct lbw_fsm_stats after = stats(&r);
    assert_int_equal(after.applied_index, before.applied_index);
    assert_memory_equal(after.hash, before.hash, 32);
    assert_int_equal(after.entries, before.entries);
    assert_int_equal(after.batches, before.batches);
    assert_int_equal(after.store_errors, 1);
    assert_int_equal(r.nbatch, 1);
    assert_int_equal(lbw_fsm_origin_seq(r.fsm, lbw_signer_identity(pki.node_s[0])), 1);
    assert_int_equal(count_audit(r.store), 1);

    struct entry next = batch(pki.node_s[0], 2, 2, 2, T0 + 5000);
    uint8_t h[32];
    memcpy(h, before.hash, 32);
    sha256_chain(h, 2, &next);
    assert_int_equal(apply(r.fsm, &next), 0);
    assert_int_equal(stats(&r).applied_index, 2);
    assert_memory_equal(stats(&r).hash, h, 32);
    assert_int_equal(lbw_fsm_flush(r.fsm), 0);
    free(small.p);
    free(big.p);
    free(next.p);
    replica_close(&r);
}

/* More than 262,144 pending samples are committed before the next entry. */
static void commits_by_itself_when_large(void **state)
{
    struct replica r;
    struct lbw_store_stats st;
    (void)state;
    replica_open(&r, 0, 0, 0);
    struct entry big = batch(pki.node_s[0], 1, 100, 2700, T0);
    struct entry small = batch(pki.node_s[0], 2, 1, 1, T0 + 2800000);
    assert_int_equal(apply(r.fsm, &big), 0);
    lbw_store_stats(r.store, &st);
    uint64_t commits = st.commits;
    assert_int_equal(apply(r.fsm, &small), 0);
    lbw_store_stats(r.store, &st);
    assert_int_equal(st.commits, commits + 1);
    assert_int_equal(st.appended, 270000);
    free(big.p);
    free(small.p);
    replica_close(&r);
}

/* ---- direct: snapshots ------------------------------------------------------------------- */

/* A node restarts: its store is as the crash left it (the last flush), libraft restores the
 * last snapshot and re-applies every entry after it. It ends where a node that never
 * stopped is, with no sample twice. */
static void restart_replays_to_same_state(void **state)
{
    struct replica a, b;
    struct entry e[12], snap = {0};
    uint8_t da[32], db[32];
    (void)state;
    for (int i = 0; i < 12; i++)
        e[i] = i == 4 ? bytes("junk")
                      : batch(pki.node_s[i % 3], (uint64_t)i + 1, 6, 3, T0 + i * 20000LL);
    replica_open(&a, 0, 0, 0);
    replica_open(&b, 0, 0, 0);
    for (int i = 0; i < 12; i++) {
        assert_int_equal(apply(a.fsm, &e[i]), 0);
        assert_int_equal(apply(b.fsm, &e[i]), 0);
        if (i == 5)
            snap = snapshot(a.fsm);
        if (i == 9)
            assert_int_equal(lbw_fsm_flush(a.fsm), 0);
    }
    assert_int_equal(lbw_fsm_flush(b.fsm), 0);
    struct lbw_fsm_stats sb = stats(&b);
    assert_memory_equal(stats(&a).hash, sb.hash, 32);
    assert_int_equal(stats(&a).snapshots, 1);

    /* Crash: entries 11 and 12 were never committed. */
    lbw_fsm_free(a.fsm);
    lbw_store_close(a.store);
    a.store = open_store(a.dir, 0);
    fsm_open(&a);
    assert_int_equal(restore(a.fsm, snap.p, snap.len), 0);
    assert_int_equal(stats(&a).applied_index, 6);
    assert_int_equal(lbw_fsm_origin_seq(a.fsm, lbw_signer_identity(pki.node_s[2])), 6);
    for (int i = 6; i < 12; i++)
        assert_int_equal(apply(a.fsm, &e[i]), 0);
    assert_int_equal(lbw_fsm_flush(a.fsm), 0);
    struct lbw_fsm_stats sa = stats(&a);
    assert_int_equal(sa.applied_index, 12);
    assert_memory_equal(sa.hash, sb.hash, 32);
    assert_int_equal(sa.restores, 1);
    assert_int_equal(sa.rejected[LBW_REJECT_REPLAY], 0); /* replay is not a replay */
    size_t pa = store_digest(a.store, da), pb = store_digest(b.store, db);
    assert_int_equal(pa, 11 * 18);
    assert_int_equal(pa, pb);
    assert_memory_equal(da, db, 32);
    for (int n = 0; n < 3; n++)
        assert_int_equal(lbw_fsm_origin_seq(a.fsm, lbw_signer_identity(pki.node_s[n])),
                         lbw_fsm_origin_seq(b.fsm, lbw_signer_identity(pki.node_s[n])));

    for (int i = 0; i < 12; i++)
        free(e[i].p);
    free(snap.p);
    replica_close(&a);
    replica_close(&b);
}

/* Size of a snapshot before its samples section: magic, version, index, hash, origins. */
static size_t be32_at(const uint8_t *p)
{
    return (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
}

/* Where the assignment table's section starts: after the origins and the ledger. */
static size_t assign_at(const uint8_t *snap)
{
    size_t n = be32_at(snap + 52);
    size_t at = 56;
    for (size_t i = 0; i < n; i++)
        at += 1 + 8 + 1 + snap[at + 9] + 8;
    return at + 4 + be32_at(snap + at);
}

/* Where the samples section starts: after the assignment table. */
static size_t head_size(const uint8_t *snap)
{
    size_t at = assign_at(snap);
    return at + 4 + be32_at(snap + at);
}

/* The size of an empty ledger's serialisation. */
static size_t empty_ledger_size(void)
{
    struct lbw_ledger *l = lbw_ledger_new();
    struct lbw_bytes b = {0};
    assert_int_equal(lbw_ledger_serialize(l, &b), 0);
    size_t n = b.len;
    lbw_bytes_free(&b);
    lbw_ledger_free(l);
    return n;
}

/* series i: a sample every 10 s for 12 hours (series 7 stops 2 hours early). */
static void fill_history(struct lbw_store *s, char keys[8][LBW_KEY_MAX], int64_t *newest)
{
    for (int i = 0; i < 8; i++)
        snprintf(keys[i], LBW_KEY_MAX, "hist{i=\"%d\",vantage=\"node1\"}", i);
    for (int64_t t = 0; t < 12 * 3600; t += 10)
        for (int i = 0; i < 8; i++)
            if (i != 7 || t < 10 * 3600) {
                double v = (double)((t * 7919 + i * 104729) % 1000003) / 7.0;
                assert_int_equal(lbw_store_append(s, keys[i], strlen(keys[i]), T0 + t * 1000, v),
                                 0);
                *newest = T0 + t * 1000;
            }
    assert_int_equal(lbw_store_commit(s), 0);
}

static void snapshot_is_the_recent_window(void **state)
{
    struct replica src, dst;
    char keys[8][LBW_KEY_MAX];
    int64_t newest = 0;
    static struct lbw_point want[MAX_POINTS], got[MAX_POINTS];
    (void)state;
    replica_open(&src, 15 * 60 * 1000, 0, 0);
    fill_history(src.store, keys, &newest);
    struct entry snap = snapshot(src.fsm);
    replica_open(&dst, 0, 0, 0);
    assert_int_equal(restore(dst.fsm, snap.p, snap.len), 0);
    for (int i = 0; i < 7; i++) {
        long n = lbw_store_points(src.store, keys[i], strlen(keys[i]), newest - 15 * 60 * 1000,
                                  INT64_MAX, want, MAX_POINTS);
        assert_int_equal(n, 91);
        assert_int_equal(lbw_store_points(dst.store, keys[i], strlen(keys[i]), 0, INT64_MAX,
                                          got, MAX_POINTS),
                         n);
        assert_memory_equal(got, want, (size_t)n * sizeof(*got));
    }
    assert_false(has_series(dst.store, keys[7])); /* its latest is outside the window */
    assert_true(snap.len < 8 * 91 * 16);          /* compressed */
    free(snap.p);
    replica_close(&src);
    replica_close(&dst);
}

/* With a small limit the snapshot stays under it, and what it keeps is, in every series,
 * everything from one common cut on: the oldest samples go first. */
static void snapshot_bounded_oldest_dropped_first(void **state)
{
    struct replica src, dst;
    char keys[8][LBW_KEY_MAX];
    int64_t newest = 0, cut = INT64_MAX;
    static struct lbw_point want[MAX_POINTS], got[MAX_POINTS];
    const size_t max = 2000;
    (void)state;
    replica_open(&src, 6 * 3600 * 1000LL, max, 0);
    struct entry e = batch(pki.node_s[0], 3, 1, 1, T0); /* an origin in the header */
    assert_int_equal(apply(src.fsm, &e), 0);
    fill_history(src.store, keys, &newest);
    struct entry snap = snapshot(src.fsm);
    size_t head = head_size(snap.p);
    /* origins, the ledger, the empty assignment table (u8 version, u32 count) */
    assert_int_equal(head, 56 + 1 + 8 + 1 + 5 + 8 + 4 + empty_ledger_size() + 4 + 1 + 4);
    assert_true(snap.len <= head + max);
    assert_true(snap.len > head + max / 2);
    assert_int_equal(stats(&src).last_snapshot_bytes, snap.len);

    replica_open(&dst, 0, 0, 0);
    assert_int_equal(restore(dst.fsm, snap.p, snap.len), 0);
    assert_int_equal(lbw_fsm_origin_seq(dst.fsm, lbw_signer_identity(pki.node_s[0])), 3);
    long counts[7];
    for (int i = 0; i < 7; i++) {
        counts[i] = lbw_store_points(dst.store, keys[i], strlen(keys[i]), 0, INT64_MAX, got,
                                     MAX_POINTS);
        assert_true(counts[i] > 0);
        assert_int_equal(got[counts[i] - 1].ts_ms, newest); /* the newest is always there */
        if (got[0].ts_ms < cut)
            cut = got[0].ts_ms;
    }
    assert_true(cut > newest - 3600 * 1000LL); /* far less than the 6 h window fits */
    for (int i = 0; i < 7; i++) {
        long n = lbw_store_points(src.store, keys[i], strlen(keys[i]), cut, INT64_MAX, want,
                                  MAX_POINTS);
        assert_int_equal(n, counts[i]);
        lbw_store_points(dst.store, keys[i], strlen(keys[i]), 0, INT64_MAX, got, MAX_POINTS);
        assert_memory_equal(got, want, (size_t)n * sizeof(*got));
    }

    /* A limit below even one instant's samples: an empty samples section. */
    lbw_fsm_free(src.fsm);
    src.snapshot_max = 64;
    fsm_open(&src);
    struct entry tiny = snapshot(src.fsm);
    assert_int_equal(tiny.len, 56 + 4 + empty_ledger_size() + 4 + 1 + 4 + 4);
    free(tiny.p);
    free(e.p);
    free(snap.p);
    replica_close(&src);
    replica_close(&dst);
}

/* An alert ledger op, signed as an ALERT entry. */
static struct entry alert_entry(const struct lbw_signer *s, const struct lbw_op *op)
{
    uint8_t buf[LBW_OP_MAX_BYTES];
    char err[256];
    struct entry e;
    long n = lbw_op_encode(op, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal(lbw_entry_sign(s, LBW_ENTRY_ALERT, 1, buf, (size_t)n, &e.p, &e.len, err,
                                    sizeof(err)), 0);
    return e;
}

static void ledger_digest(struct replica *r, uint8_t d[32])
{
    assert_int_equal(lbw_ledger_digest(lbw_fsm_ledger(r->fsm), d), 0);
}

/* Alert ops reach every replica's ledger alike, are refused from an agent, count as stale or
 * invalid by the ledger's rules, and travel in snapshots. */
static void alert_ops_reach_the_ledger(void **state)
{
    struct replica a, b, c;
    uint8_t da[32], db[32], dc[32];
    (void)state;
    replica_open(&a, 0, 0, 0);
    replica_open(&b, 0, 0, 0);
    struct lbw_op op = {.type = LBW_OP_TRANSITION, .time_ms = T0};
    op.transition.to = LBW_ALERT_FIRING;
    op.transition.severity = LBW_SEV_WARNING;
    op.transition.value = 3;
    op.transition.labels = "ALERTS{alertname=\"X\",target=\"www\"}";
    struct entry fire = alert_entry(pki.node_s[0], &op);
    struct entry by_agent = alert_entry(pki.agent_s, &op);
    struct entry junk;
    char err[256];
    assert_int_equal(lbw_entry_sign(pki.node_s[1], LBW_ENTRY_ALERT, 2, "junk", 4, &junk.p,
                                    &junk.len, err, sizeof(err)), 0);
    const struct entry *seq[] = {&fire, &fire, &by_agent, &junk};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(apply(a.fsm, seq[i]), 0);
        assert_int_equal(apply(b.fsm, seq[i]), 0);
    }
    size_t n;
    const struct lbw_alert *al = lbw_ledger_alerts(lbw_fsm_ledger(a.fsm), &n);
    assert_int_equal(n, 1);
    assert_int_equal(al[0].state, LBW_ALERT_FIRING);
    assert_int_equal(al[0].seq, 1); /* the index of its transition */
    struct lbw_fsm_stats st = stats(&a);
    assert_int_equal(st.alert_ops[LBW_APPLY_OK], 1);
    assert_int_equal(st.alert_ops[LBW_APPLY_STALE], 1); /* the same transition again */
    assert_int_equal(st.alert_ops[LBW_APPLY_INVALID], 1); /* junk */
    assert_int_equal(st.rejected[LBW_REJECT_FORGED], 1); /* an agent's */
    ledger_digest(&a, da);
    ledger_digest(&b, db);
    assert_memory_equal(da, db, 32);
    assert_memory_equal(stats(&a).hash, stats(&b).hash, 32);

    struct entry snap = snapshot(a.fsm);
    replica_open(&c, 0, 0, 0);
    assert_int_equal(restore(c.fsm, snap.p, snap.len), 0);
    ledger_digest(&c, dc);
    assert_memory_equal(da, dc, 32);
    free(snap.p);
    free(fire.p);
    free(by_agent.p);
    free(junk.p);
    replica_close(&a);
    replica_close(&b);
    replica_close(&c);
}

/* The state of a replica, to tell whether a refused restore changed anything. */
struct state_copy {
    struct lbw_fsm_stats st;
    uint64_t seq[3];
    uint8_t digest[32];
    size_t points;
};

static void copy_state(struct replica *r, struct state_copy *c)
{
    c->st = stats(r);
    for (int n = 0; n < 3; n++)
        c->seq[n] = lbw_fsm_origin_seq(r->fsm, lbw_signer_identity(pki.node_s[n]));
    c->points = store_digest(r->store, c->digest);
}

static void assert_same_state(struct replica *r, const struct state_copy *c, int with_store)
{
    struct lbw_fsm_stats st = stats(r);
    assert_int_equal(st.applied_index, c->st.applied_index);
    assert_memory_equal(st.hash, c->st.hash, 32);
    assert_int_equal(st.restores, c->st.restores);
    for (int n = 0; n < 3; n++)
        assert_int_equal(lbw_fsm_origin_seq(r->fsm, lbw_signer_identity(pki.node_s[n])),
                         c->seq[n]);
    if (with_store) {
        uint8_t d[32];
        assert_int_equal(store_digest(r->store, d), c->points);
        assert_memory_equal(d, c->digest, 32);
    }
}

static void expect_refused(struct replica *r, const struct state_copy *c, const struct entry *s,
                           const char *what)
{
    int rc = restore(r->fsm, s->p, s->len);
    if (rc == 0)
        fail_msg("%s: restored", what);
    assert_same_state(r, c, 1);
}

static struct entry edited(const struct entry *s, size_t at, size_t cut, const void *ins,
                           size_t inslen)
{
    struct entry e = {malloc(s->len - cut + inslen + 1), s->len - cut + inslen};
    memcpy(e.p, s->p, at);
    memcpy(e.p + at, ins, inslen);
    memcpy(e.p + at + inslen, s->p + at + cut, s->len - at - cut);
    return e;
}

static void restore_refuses_bad_snapshots(void **state)
{
    struct replica src, dst;
    struct state_copy before;
    (void)state;
    replica_open(&src, 0, 0, 0);
    replica_open(&dst, 0, 0, 0);
    struct entry e1 = batch(pki.node_s[0], 4, 2, 3, T0), e2 = batch(pki.node_s[1], 9, 2, 3, T0);
    struct entry e3 = batch(pki.node_s[2], 2, 1, 2, T0 + 100000);
    assert_int_equal(apply(src.fsm, &e1), 0);
    assert_int_equal(apply(src.fsm, &e2), 0);
    assert_int_equal(apply(dst.fsm, &e3), 0);
    assert_int_equal(lbw_fsm_flush(dst.fsm), 0);
    struct entry snap = snapshot(src.fsm);
    copy_state(&dst, &before);

    for (size_t n = 0; n < snap.len; n++) {
        struct entry t = {snap.p, n};
        assert_int_not_equal(restore(dst.fsm, t.p, t.len), 0);
        assert_same_state(&dst, &before, n % 64 == 0);
    }
    assert_same_state(&dst, &before, 1);

    size_t head = head_size(snap.p), origin2 = 56 + 1 + 8 + 1 + 5 + 8;
    uint8_t zero = 0, big[4] = {0xff, 0xff, 0xff, 0xff};
    struct entry bad;
    bad = edited(&snap, snap.len, 0, &zero, 1);
    expect_refused(&dst, &before, &bad, "a byte after the end");
    free(bad.p);
    bad = edited(&snap, 0, 1, "X", 1);
    expect_refused(&dst, &before, &bad, "magic");
    free(bad.p);
    bad = edited(&snap, 11, 1, "\001", 1);
    expect_refused(&dst, &before, &bad, "version");
    free(bad.p);
    bad = edited(&snap, 52, 4, big, 4);
    expect_refused(&dst, &before, &bad, "origin count");
    free(bad.p);
    /* The origins swapped: out of order. */
    uint8_t swapped[2 * 23];
    memcpy(swapped, snap.p + origin2, 23);
    memcpy(swapped + 23, snap.p + 56, 23);
    bad = edited(&snap, 56, 2 * 23, swapped, sizeof(swapped));
    expect_refused(&dst, &before, &bad, "origins out of order");
    free(bad.p);
    /* The same origin twice. */
    bad = edited(&snap, origin2, 23, snap.p + 56, 23);
    expect_refused(&dst, &before, &bad, "origin repeated");
    free(bad.p);
    bad = edited(&snap, 56, 1, "\003", 1);
    expect_refused(&dst, &before, &bad, "origin kind");
    free(bad.p);
    bad = edited(&snap, head, 4, big, 4);
    expect_refused(&dst, &before, &bad, "series count");
    free(bad.p);
    /* The first series' key made non-canonical (a space at its end). */
    size_t keylen = (size_t)snap.p[head + 4] << 8 | snap.p[head + 5];
    bad = edited(&snap, head + 6 + keylen - 1, 1, " ", 1);
    expect_refused(&dst, &before, &bad, "key not canonical");
    free(bad.p);
    size_t nchunks_at = head + 6 + keylen;
    bad = edited(&snap, nchunks_at, 4, (uint8_t[]){0, 0, 0, 0}, 4);
    expect_refused(&dst, &before, &bad, "no chunks");
    free(bad.p);
    bad = edited(&snap, nchunks_at + 4, 2, (uint8_t[]){0, 0}, 2);
    expect_refused(&dst, &before, &bad, "chunk length 0");
    free(bad.p);
    /* The first series' chunk twice: its samples would go back in time. */
    size_t clen = (size_t)snap.p[nchunks_at + 4] << 8 | snap.p[nchunks_at + 5];
    bad = edited(&snap, nchunks_at + 4, 0, snap.p + nchunks_at + 4, 2 + clen);
    bad.p[nchunks_at + 3] = 2;
    expect_refused(&dst, &before, &bad, "chunks not in time order");
    free(bad.p);
    /* The first series twice. */
    size_t series_len = 2 + keylen + 4 + 2 + clen;
    bad = edited(&snap, head + 4, 0, snap.p + head + 4, series_len);
    bad.p[head + 3]++;
    expect_refused(&dst, &before, &bad, "series repeated");
    free(bad.p);
    assert_int_equal(stats(&dst).restores, 0);

    /* The real one replaces the state: origins, index, hash; samples added. */
    assert_int_equal(restore(dst.fsm, snap.p, snap.len), 0);
    struct lbw_fsm_stats ss = stats(&src), sd = stats(&dst);
    assert_int_equal(sd.applied_index, ss.applied_index);
    assert_memory_equal(sd.hash, ss.hash, 32);
    assert_int_equal(sd.restores, 1);
    assert_int_equal(lbw_fsm_origin_seq(dst.fsm, lbw_signer_identity(pki.node_s[0])), 4);
    assert_int_equal(lbw_fsm_origin_seq(dst.fsm, lbw_signer_identity(pki.node_s[1])), 9);
    assert_int_equal(lbw_fsm_origin_seq(dst.fsm, lbw_signer_identity(pki.node_s[2])), 0);
    uint8_t d[32];
    assert_int_equal(store_digest(dst.store, d), 12 + 2); /* its own 2 stay */
    /* And applying continues from the restored state. */
    struct entry again = batch(pki.node_s[0], 4, 1, 1, T0 + 999999);
    assert_int_equal(apply(dst.fsm, &again), 0);
    assert_int_equal(dst.rej[dst.nrej - 1].why, LBW_REJECT_REPLAY);
    assert_int_equal(stats(&dst).applied_index, 3);

    free(again.p);
    free(snap.p);
    free(e1.p);
    free(e2.p);
    free(e3.p);
    replica_close(&src);
    replica_close(&dst);
}

/* ---- direct: agent assignment ops -------------------------------------------------------- */

static struct entry assign_entry(const struct lbw_signer *s, enum lbw_assign_op_type type,
                                 const char *agent, uint64_t expect, uint64_t node)
{
    struct lbw_assign_op op = {.type = type, .expect = expect, .node = node};
    uint8_t buf[LBW_ASSIGN_OP_MAX];
    char err[256];
    struct entry e;
    snprintf(op.agent, sizeof(op.agent), "%s", agent);
    long n = lbw_assign_op_encode(&op, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal(lbw_entry_sign(s, LBW_ENTRY_ASSIGN, 1, buf, (size_t)n, &e.p, &e.len, err,
                                    sizeof(err)), 0);
    return e;
}

static uint64_t owner_of(struct replica *r, const char *agent, uint64_t *index)
{
    const struct lbw_assignment *row = lbw_assign_find(lbw_fsm_assignments(r->fsm), agent);
    *index = row ? row->index : 0;
    return row ? row->node : 0;
}

/* Assignment ops are compare-and-set on every replica alike, refused from an agent, counted
 * by result, and travel in snapshots; a version 2 snapshot (before the table) still restores,
 * with no assignments. */
static void assignment_ops_and_snapshots(void **state)
{
    struct replica a, b, c;
    uint64_t idx;
    char err[256];
    (void)state;
    replica_open(&a, 0, 0, 0);
    replica_open(&b, 0, 0, 0);
    struct entry set1 = assign_entry(pki.node_s[0], LBW_ASSIGN_SET, "edge1", 0, 1);
    struct entry by_agent = assign_entry(pki.agent_s, LBW_ASSIGN_SET, "edge1", 1, 3);
    struct entry set2 = assign_entry(pki.node_s[1], LBW_ASSIGN_SET, "edge1", 1, 2);
    struct entry other = assign_entry(pki.node_s[1], LBW_ASSIGN_SET, "edge2", 0, 3);
    struct entry junk;
    assert_int_equal(lbw_entry_sign(pki.node_s[0], LBW_ENTRY_ASSIGN, 2, "junk", 4, &junk.p,
                                    &junk.len, err, sizeof(err)), 0);
    /* 1 set, 2 the same again (stale: the row is at 1 now), 3 agent's, 4 junk, 5 moves edge1
     * from node 1 to node 2, 6 edge2 */
    const struct entry *seq[] = {&set1, &set1, &by_agent, &junk, &set2, &other};
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(apply(a.fsm, seq[i]), 0);
        assert_int_equal(apply(b.fsm, seq[i]), 0);
    }
    assert_int_equal(owner_of(&a, "edge1", &idx), 2);
    assert_int_equal(idx, 5);
    assert_int_equal(owner_of(&a, "edge2", &idx), 3);
    assert_int_equal(idx, 6);
    struct lbw_fsm_stats st = stats(&a);
    assert_int_equal(st.assign_ops[LBW_ASSIGN_OK], 3);
    assert_int_equal(st.assign_ops[LBW_ASSIGN_STALE], 1);
    assert_int_equal(st.assign_ops[LBW_ASSIGN_INVALID], 1);
    assert_int_equal(st.rejected[LBW_REJECT_FORGED], 1);
    assert_memory_equal(stats(&a).hash, stats(&b).hash, 32);
    assert_int_equal(owner_of(&b, "edge1", &idx), 2);

    struct entry snap = snapshot(a.fsm);
    replica_open(&c, 0, 0, 0);
    assert_int_equal(restore(c.fsm, snap.p, snap.len), 0);
    assert_int_equal(owner_of(&c, "edge1", &idx), 2);
    assert_int_equal(idx, 5);
    assert_int_equal(owner_of(&c, "edge2", &idx), 3);
    assert_memory_equal(stats(&c).hash, stats(&a).hash, 32);

    /* version 2: the same without the table's section */
    size_t at = assign_at(snap.p);
    struct entry v2 = edited(&snap, at, 4 + be32_at(snap.p + at), "", 0);
    v2.p[11] = 2;
    assert_int_equal(restore(c.fsm, v2.p, v2.len), 0);
    assert_int_equal(owner_of(&c, "edge1", &idx), 0);
    assert_int_equal(stats(&c).applied_index, 6);
    /* a version 3 snapshot whose table does not parse is refused, changing nothing */
    struct entry bad = edited(&snap, at + 4, 1, "\x09", 1);
    assert_int_not_equal(restore(c.fsm, bad.p, bad.len), 0);
    assert_int_equal(owner_of(&c, "edge1", &idx), 0);
    assert_int_equal(stats(&c).restores, 2);

    free(bad.p);
    free(v2.p);
    free(snap.p);
    free(set1.p);
    free(by_agent.p);
    free(set2.p);
    free(other.p);
    free(junk.p);
    replica_close(&a);
    replica_close(&b);
    replica_close(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(cluster_replicates_identically, cluster_setup,
                                        cluster_teardown),
        cmocka_unit_test_setup_teardown(cluster_rejects_identically, cluster_setup,
                                        cluster_teardown),
        cmocka_unit_test_setup_teardown(cluster_catch_up_by_snapshot, cluster_setup,
                                        cluster_teardown),
        cmocka_unit_test(apply_chain_audit_and_callbacks),
        cmocka_unit_test(vantage_must_be_the_origin),
        cmocka_unit_test(failing_store_leaves_no_trace),
        cmocka_unit_test(commits_by_itself_when_large),
        cmocka_unit_test(restart_replays_to_same_state),
        cmocka_unit_test(snapshot_is_the_recent_window),
        cmocka_unit_test(snapshot_bounded_oldest_dropped_first),
        cmocka_unit_test(restore_refuses_bad_snapshots),
        cmocka_unit_test(alert_ops_reach_the_ledger),
        cmocka_unit_test(assignment_ops_and_snapshots),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
