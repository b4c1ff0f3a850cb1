/* batch.h - signed sample batches: the unit in which samples are replicated.
 *
 * A batch is made by the node (or agent) that measured its samples, signed with that origin's
 * private key (the key of its cluster certificate), and carries the origin's certificate, so
 * any replica can check, with nothing but the cluster CA, who produced it and that nobody
 * changed a byte. Its origin sequence number lets replicas refuse a replay.
 *
 * Wire format, version 1 (integers big-endian; "varint" is unsigned LEB128 in its shortest
 * form, at most 10 bytes):
 *
 *   u8   entry type              LBW_ENTRY_BATCH (1); other signed entries: see below
 *   u8   format version          1
 *   u8   origin kind             LBW_ID_NODE or LBW_ID_AGENT (raft/identity.h)
 *   u64  origin id               nodes: raft id (1..2^63-1); agents: 0
 *   u8   origin name length, name bytes   (1..63, lbw_identity_name_valid)
 *   u64  origin sequence         strictly increasing per origin
 *   u16  certificate length, certificate DER (the signer's; 1..LBW_BATCH_MAX_CERT bytes)
 *   u32  payload length, payload (at most LBW_BATCH_MAX_PAYLOAD):
 *          varint nkeys, then nkeys x (varint length (1..LBW_KEY_MAX-1), key bytes: a
 *          canonical series key)
 *          varint nsamples, then nsamples x (varint key index (< nkeys), zigzag varint
 *          timestamp delta in ms from the previous sample (the first: from 0), the 8-byte
 *          IEEE-754 value as a big-endian u64); every timestamp is >= 0 (ms since the epoch)
 *   u16  signature length, signature (1..LBW_BATCH_MAX_SIG bytes): with an ECDSA P-256 key,
 *        ECDSA-with-SHA-256 (DER) over every byte before the signature length; with an
 *        Ed25519 key, Ed25519 over the SHA-256 of those bytes. Either way the signature covers
 *        SHA-256 of every byte before it. Other key types cannot sign batches.
 *
 * Verification (deterministic: the same bytes give the same verdict on every replica, so it
 * does not look at the clock): the structure parses exactly with nothing left over; the
 * certificate chains to the cluster CA (validity dates are not checked here: the transport
 * refuses expired peers at connect time, and apply must not depend on when it runs); its
 * identity is the stated origin (kind, id for nodes, name); the signature verifies with its
 * public key; every key is a canonical series key. Policy (which origins may say what,
 * replays) is the FSM's. Keys may repeat in the key table (the builder never repeats one);
 * keys no sample uses are allowed.
 */
#ifndef LBW_BATCH_H
#define LBW_BATCH_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "raft/identity.h"

#define LBW_ENTRY_BATCH 1
#define LBW_ENTRY_ALERT 2           /* an alert ledger op (alerting/ledger.h), made by a leader */
#define LBW_ENTRY_ASSIGN 3          /* an agent assignment op (node/assign.h), made by a leader */
#define LBW_BATCH_VERSION 1
#define LBW_BATCH_MAX_PAYLOAD (4u << 20)
#define LBW_BATCH_MAX_CERT 4096
#define LBW_BATCH_MAX_SIG 128
#define LBW_VERIFIER_CACHE 1024     /* certificates a verifier remembers */

/* ---- making batches ---------------------------------------------------------------------- */

/* Who signs: a key, its certificate and the identity in it. */
struct lbw_signer;

/* Loads cert_file and key_file (PEM), checks that they match, that the key is ECDSA P-256 or
 * Ed25519 and that the certificate carries an identity. */
struct lbw_signer *lbw_signer_load(const char *cert_file, const char *key_file, char *err,
                                   size_t errlen);
/* The same from objects in memory (tests, tools); the signer takes its own references. */
struct lbw_signer *lbw_signer_new(X509 *cert, EVP_PKEY *key, char *err, size_t errlen);
void lbw_signer_free(struct lbw_signer *s);
const struct lbw_identity *lbw_signer_identity(const struct lbw_signer *s);

/* Accumulates samples, then encodes and signs them. Reusable after lbw_batch_reset. */
struct lbw_batch_builder;

struct lbw_batch_builder *lbw_batch_builder_new(void);
void lbw_batch_builder_free(struct lbw_batch_builder *b);
void lbw_batch_reset(struct lbw_batch_builder *b);

/* Adds a sample; the key is copied (each distinct key once per batch). Returns 0, or -1 if
 * the key is not canonical, ts_ms < 0, the payload would exceed LBW_BATCH_MAX_PAYLOAD or
 * out of memory (the builder is then unchanged). */
int lbw_batch_add(struct lbw_batch_builder *b, const char *key, size_t keylen, int64_t ts_ms,
                  double value);

size_t lbw_batch_samples(const struct lbw_batch_builder *b);
size_t lbw_batch_payload_bytes(const struct lbw_batch_builder *b);

/* Encodes and signs the accumulated samples as origin sequence seq. *out is malloc'd.
 * Returns 0, or -1 with err. The builder keeps its samples until reset. */
int lbw_batch_finish(struct lbw_batch_builder *b, const struct lbw_signer *s, uint64_t seq,
                     uint8_t **out, size_t *outlen, char *err, size_t errlen);

/* ---- reading batches --------------------------------------------------------------------- */

/* Checks certificates against the cluster CA, remembering certificates already checked (by
 * SHA-256 of their DER) so steady traffic costs one signature verification per batch. */
struct lbw_verifier;

struct lbw_verifier *lbw_verifier_new(const char *ca_file, char *err, size_t errlen);
/* The same with the CA certificate in memory; the verifier takes its own reference. */
struct lbw_verifier *lbw_verifier_new_ca(X509 *ca, char *err, size_t errlen);
void lbw_verifier_free(struct lbw_verifier *v);

/* The certificate cache: at most LBW_VERIFIER_CACHE certificates that passed the chain check,
 * the oldest forgotten first. Only certificates that passed are remembered; a verdict never
 * depends on what is cached. */
struct lbw_verifier_stats {
    uint64_t chain_checks;      /* certificates verified against the CA (cache misses) */
    uint64_t cache_hits;
    uint64_t evictions;
    size_t cached;
};
void lbw_verifier_stats(const struct lbw_verifier *v, struct lbw_verifier_stats *out);

/* A verified batch. Pointers point into the entry bytes given to lbw_batch_verify. */
struct lbw_batch_view {
    uint8_t type;               /* LBW_ENTRY_BATCH, LBW_ENTRY_ALERT or LBW_ENTRY_ASSIGN */
    struct lbw_identity origin;
    uint64_t seq;
    const uint8_t *cert;        /* the signer's certificate (DER) */
    size_t cert_len;
    const uint8_t *payload;
    size_t payload_len;
    size_t nsamples;
    uint8_t cert_sha256[32];
    uint8_t payload_sha256[32];
    const uint8_t *sig;
    size_t siglen;
};

/* Why a batch was refused. */
enum lbw_batch_error {
    LBW_BATCH_OK = 0,
    LBW_BATCH_MALFORMED,        /* does not parse, or bytes left over */
    LBW_BATCH_UNTRUSTED,        /* the certificate does not chain to the cluster CA */
    LBW_BATCH_WRONG_ORIGIN,     /* the certificate's identity is not the stated origin */
    LBW_BATCH_BAD_SIGNATURE,
    LBW_BATCH_BAD_KEY,          /* a series key that is not canonical */
    LBW_BATCH_NOMEM,            /* out of memory here: no verdict on the batch, try again */
};
const char *lbw_batch_error_name(enum lbw_batch_error e);   /* "malformed", ... */

/* Verifies entry (len bytes) completely, payload included. Returns LBW_BATCH_OK and fills
 * out, or the reason it is refused (with detail in why). A refusal other than
 * LBW_BATCH_MALFORMED still fills out->origin and out->seq with what the entry states, for
 * reports. The checks run in this order: structure (payload included), certificate chain,
 * identity, signature, keys. */
enum lbw_batch_error lbw_batch_verify(struct lbw_verifier *v, const uint8_t *entry, size_t len,
                                      struct lbw_batch_view *out, char *why, size_t whylen);

/* ---- other signed entries ---------------------------------------------------------------
 * The same envelope (type, version, origin, sequence, certificate, payload, signature) carries
 * other entries, e.g. LBW_ENTRY_ALERT whose payload is opaque here. */

/* Signs payload (len bytes) as an entry of type (not LBW_ENTRY_BATCH). *out is malloc'd. */
int lbw_entry_sign(const struct lbw_signer *s, uint8_t type, uint64_t seq, const void *payload,
                   size_t len, uint8_t **out, size_t *outlen, char *err, size_t errlen);

/* lbw_batch_verify for an entry of any signed type (out->type says which): structure,
 * certificate chain, identity and signature; for batches also the payload and its keys. */
enum lbw_batch_error lbw_entry_verify(struct lbw_verifier *v, const uint8_t *entry, size_t len,
                                      struct lbw_batch_view *out, char *why, size_t whylen);

/* What an entry says of itself, unverified: its type, stated origin and sequence number, if
 * its envelope (type, version, origin, sequence, certificate, payload, signature lengths)
 * parses exactly. For routing and bookkeeping only: nothing here is authenticated. Returns 0,
 * or -1 if it does not parse. */
int lbw_entry_peek(const uint8_t *entry, size_t len, uint8_t *type,
                   struct lbw_identity *origin, uint64_t *seq);

/* Calls cb for every sample of a verified batch, in order; cb returns nonzero to stop.
 * key is NUL-terminated and valid during the call. Returns 0, or -1 if cb stopped (or, for a
 * batch of more than 256 keys, without memory for its key table: cb is then never called).
 * No allocation per sample. */
typedef int (*lbw_batch_sample_cb)(void *arg, const char *key, size_t keylen, int64_t ts_ms,
                                   double value);
int lbw_batch_foreach(const struct lbw_batch_view *b, lbw_batch_sample_cb cb, void *arg);

/* The same without the keys: cb gets each sample's index into the key table (see
 * lbw_batch_foreach_key), for callers that resolve each distinct key once. */
typedef int (*lbw_batch_indexed_cb)(void *arg, size_t key_index, int64_t ts_ms, double value);
int lbw_batch_foreach_indexed(const struct lbw_batch_view *b, lbw_batch_indexed_cb cb,
                              void *arg);

/* Calls cb for every entry of a verified batch's key table, in order (index 0 first); cb
 * returns nonzero to stop. key is NOT NUL-terminated. Returns 0, or -1 if cb stopped. Lets
 * policy look at each distinct key once rather than at every sample. */
typedef int (*lbw_batch_key_cb)(void *arg, size_t index, const char *key, size_t keylen);
int lbw_batch_foreach_key(const struct lbw_batch_view *b, lbw_batch_key_cb cb, void *arg);

#endif
