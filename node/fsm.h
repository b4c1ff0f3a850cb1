/* fsm.h - the replicated state machine: what every node does with each committed raft entry.
 *
 * Implements libraft's struct raft_fsm. For each committed command entry, in log order:
 *   1. the entry index is last_applied + 1 of the bound struct raft (libraft sets
 *      last_applied after apply returns); an FSM that is not bound (tests, tools) numbers
 *      entries itself: its applied index + 1;
 *   2. the hash chain advances: hash = SHA-256(hash || u64 index (big-endian) || entry), for
 *      every command entry, accepted or not, so replicas at the same applied index report the
 *      same fsm_hash exactly when they applied the same entries;
 *   3. a sample batch (raft/batch.h) is verified completely (structure, certificate chain to
 *      the cluster CA, identity = stated origin, signature) and then checked against policy:
 *      its sequence number must exceed the last one applied from that origin (replay), and
 *      every sample's vantage label must be the origin's name (a node can only speak for
 *      itself). A refused batch changes nothing but the hash chain and the counters, and is
 *      reported through on_reject; it is never stored;
 *   4. an accepted batch's samples are appended to the store, an audit record (origin, seq,
 *      index, certificate and payload SHA-256, signature) is written beside them under the
 *      entry index, the signer's certificate is kept in the audit trail once (by its
 *      SHA-256), and the origin's sequence number advances. A sample the store drops as not
 *      newer than its series is no error (that is what makes a replay after a restart
 *      harmless).
 * An alert op (LBW_ENTRY_ALERT) is verified the same way (structure, certificate chain,
 * identity, signature; the signer must be a node) and applied to the alert ledger
 * (alerting/ledger.h), whose own compare-and-set rules decide what it does; it has no
 * sequence check (alert ops only ever come from the leader itself, never forwarded, and
 * each is guarded by the ledger's expectations).
 * An agent assignment op (LBW_ENTRY_ASSIGN) is verified the same way (the signer must be a
 * node) and applied to the assignment table (node/assign.h), whose compare-and-set decides
 * what it does; like alert ops it has no sequence check (only leaders propose them).
 * Unknown entry types are refused like malformed batches. apply returns non-zero only for a
 * local failure (disk, memory): libraft then stops applying and retries, and nothing of the
 * entry (not even the hash) has been taken in. A store failure aborts the open store
 * transaction, so the samples of the entries applied since the last flush are gone from
 * this node's store too (the replicated state is not: hash and sequence numbers stay right;
 * counted in store_errors); a restart re-applies them from the raft log, unless a snapshot
 * was taken in between.
 *
 * Store writes go into an open store transaction committed by lbw_fsm_flush() (call it on a
 * short timer; apply also commits by itself once 262,144 samples are pending, so a missed
 * timer cannot grow a transaction without bound): the raft log is the write-ahead log. Each
 * commit also writes the meta key "fsm.state" (u64 applied index, 32-byte hash) with the
 * samples, so the store says which entry it reflects. After a restart libraft restores the last
 * snapshot and re-applies every entry after it; re-appended samples are dropped by the store
 * as not newer, so the store ends where it was and the FSM state where the others are.
 *
 * Snapshot = the small replicated state (applied index, hash, per-origin sequence numbers,
 * the alert ledger, the agent assignment table)
 * plus the recent window of samples, so a node that was down, or is new, has the latest
 * results of every vantage after restoring. The window: every series whose latest sample is
 * within window_ms of the newest timestamp in the store, with its samples since then but at
 * most its newest two chunks (up to 240 samples: lbw_store_recent), oldest first, as
 * compressed chunks (node/chunk.h); when that is more than snapshot_max_bytes the oldest
 * samples are left out first (the cut moves forward in steps of window_ms / 1024). At probe
 * rates (a sample every few seconds) that is the whole window; a series written much faster
 * carries its last 120-240 samples. Older history stays each node's local archive (audit
 * records included). A snapshot is never larger than snapshot_max_bytes plus the small
 * state, whatever the retention, and building one costs two store reads per recent series
 * per step of the search for the cut, however fast the series are written. Taking a snapshot first commits the open store transaction (the snapshot
 * reads committed data). Restoring one checks it completely before it changes anything
 * (snapshots come from the network): a refused snapshot leaves the state and the store as
 * they were; then its samples are appended to the store (which drops what it already has)
 * and the small state is replaced. The format is described in fsm.c.
 *
 * Everything runs on the loop thread.
 */
#ifndef LBW_FSM_H
#define LBW_FSM_H

#include <raft.h>
#include <stdint.h>

#include "alerting/ledger.h"
#include "node/assign.h"
#include "node/store.h"
#include "raft/batch.h"

struct lbw_fsm;

enum lbw_fsm_reject {
    LBW_REJECT_MALFORMED,       /* unknown entry type, or the batch does not parse */
    LBW_REJECT_UNTRUSTED,       /* certificate not from the cluster CA */
    LBW_REJECT_FORGED,          /* certificate identity is not the stated origin */
    LBW_REJECT_BAD_SIGNATURE,
    LBW_REJECT_REPLAY,          /* sequence number not above the origin's last */
    LBW_REJECT_FOREIGN_VANTAGE, /* a sample speaks for another vantage */
    LBW_REJECT_KINDS
};
const char *lbw_fsm_reject_name(enum lbw_fsm_reject r);     /* "malformed", ..., "replay" */

struct lbw_fsm_options {
    struct lbw_store *store;
    struct lbw_verifier *verifier;
    int64_t window_ms;          /* recent samples in snapshots; 0 = 15 minutes */
    size_t snapshot_max_bytes;  /* 0 = 32 MiB */
    void *arg;
    /* A refused entry: for the log and the counters. origin (NULL when malformed) and seq are
     * what the entry states, unverified. */
    void (*on_reject)(void *arg, uint64_t index, enum lbw_fsm_reject why,
                      const struct lbw_identity *origin, uint64_t seq, const char *detail);
    /* A batch was accepted: lets its origin forget it (raft/cluster.h). */
    void (*on_batch)(void *arg, const struct lbw_identity *origin, uint64_t seq);
    /* An alert op (entry type LBW_ENTRY_ALERT, signed by a node) was applied to the ledger:
     * its result and what changed. */
    void (*on_alert)(void *arg, uint64_t index, enum lbw_apply_result result,
                     const struct lbw_ledger_change *change);
    /* An assignment op (LBW_ENTRY_ASSIGN, signed by a node) was applied to the table: its
     * result and the op. */
    void (*on_assign)(void *arg, uint64_t index, enum lbw_assign_result result,
                      const struct lbw_assign_op *op);
};

/* Returns 0, or -1 (no store or verifier, negative window, out of memory). */
int lbw_fsm_new(struct lbw_fsm **out, const struct lbw_fsm_options *o);
/* Does not commit: flush first (what was not committed is re-applied after a restart). */
void lbw_fsm_free(struct lbw_fsm *f);

/* The libraft interface (version 2: snapshot buffers are the FSM's, freed in finalize). */
struct raft_fsm *lbw_fsm_raft(struct lbw_fsm *f);

/* The raft instance whose entries this FSM applies (for the entry index). */
void lbw_fsm_bind(struct lbw_fsm *f, struct raft *r);

/* The replicated alert ledger (alerting/ledger.h): every replica has one, whether or not
 * alerting is configured on it. Read it on the loop thread; it changes only on apply and
 * restore. */
struct lbw_ledger *lbw_fsm_ledger(struct lbw_fsm *f);

/* The replicated agent assignment table (node/assign.h). Read it on the loop thread; it
 * changes only on apply and restore. */
const struct lbw_assign *lbw_fsm_assignments(const struct lbw_fsm *f);

/* Commits the open store transaction. Returns 0 or -1. */
int lbw_fsm_flush(struct lbw_fsm *f);

struct lbw_fsm_stats {
    uint64_t applied_index;
    uint8_t hash[32];
    uint64_t entries;           /* command entries applied since start */
    uint64_t batches;           /* accepted */
    uint64_t samples;           /* stored */
    uint64_t rejected[LBW_REJECT_KINDS];
    uint64_t alert_ops[4];      /* by lbw_apply_result: ok, stale, invalid, nomem */
    uint64_t assign_ops[LBW_ASSIGN_RESULTS];    /* by lbw_assign_result */
    uint64_t snapshots, restores;
    uint64_t last_snapshot_bytes;
    uint64_t store_errors;      /* applies that failed on the store and were retried */
};
void lbw_fsm_stats(const struct lbw_fsm *f, struct lbw_fsm_stats *out);

/* The last sequence number applied from an origin (0 if none). */
uint64_t lbw_fsm_origin_seq(const struct lbw_fsm *f, const struct lbw_identity *origin);

/* Lower-case hex of a hash (65 bytes with the NUL). */
void lbw_fsm_hash_hex(const uint8_t hash[32], char out[65]);

/* An audit record (node/store.h: lbw_store_audit_get/foreach), version 1, integers
 * big-endian:
 *   i64 newest sample timestamp (what the store's retention looks at; 0 if no samples)
 *   u8  record version (1)
 *   i64 oldest sample timestamp
 *   u64 raft index of the entry
 *   u8  origin kind, u64 origin id, u8 name length, name
 *   u64 origin sequence number
 *   u32 number of samples
 *   32  SHA-256 of the signer's certificate (its DER is in the store's audit_cert)
 *   32  SHA-256 of the payload
 *   u16 signature length, signature (as in the batch)
 * Every replica checked the signature when it applied the entry; with the certificate an
 * auditor can re-check the signer's identity and chain later, and with the payload hash
 * match a copy of the entry (checking the signature again needs the whole entry, since it
 * covers every byte before it). */
#define LBW_AUDIT_VERSION 1

struct lbw_audit_record {
    int64_t newest_ts, oldest_ts;
    uint64_t index;
    struct lbw_identity origin;
    uint64_t seq;
    uint32_t nsamples;
    uint8_t cert_sha256[32];
    uint8_t payload_sha256[32];
    const uint8_t *sig;         /* points into the record */
    size_t siglen;
};

/* Decodes an audit record (untrusted: bounds-checked). Returns 0, or -1 if malformed. */
int lbw_fsm_audit_decode(const uint8_t *rec, size_t len, struct lbw_audit_record *out);

#endif
