/* fuzz_snapshot.c - libFuzzer target for the state machine's snapshot restore (node/fsm):
 * arbitrary bytes are handed to raft_fsm.restore against a throwaway store. It must never
 * crash, leak or read out of bounds. A refused snapshot must leave everything as it was: the
 * snapshot the FSM takes afterwards is byte for byte the one it took before. An accepted one
 * must round-trip: the FSM's own snapshot of the result restores, and snapshots again to the
 * same bytes. Seeds (tests/fuzz/corpus/fuzz_snapshot) are real snapshots. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <raft.h>

#include "node/fsm.h"
#include "node/pki.h"
#include "node/store.h"

#define MAX_SERIES 2000 /* start over with an empty store beyond this */

static char dir[64];
static struct lbw_store *store;
static struct lbw_verifier *verifier;
static struct lbw_fsm *fsm;
static uint8_t *ref;            /* the FSM's snapshot of its current state */
static size_t ref_len;

/* The FSM's snapshot, copied into *out (malloc'd). */
static size_t take_snapshot(uint8_t **out)
{
    struct raft_fsm *rf = lbw_fsm_raft(fsm);
    struct raft_buffer *bufs;
    unsigned n;
    if (rf->snapshot(rf, &bufs, &n) != 0 || n != 1 || !(*out = malloc(bufs[0].len + 1)))
        abort();
    size_t len = bufs[0].len;
    memcpy(*out, bufs[0].base, len);
    rf->snapshot_finalize(rf, &bufs, &n);
    return len;
}

static int restore(const uint8_t *data, size_t size)
{
    struct raft_fsm *rf = lbw_fsm_raft(fsm);
    struct raft_buffer b = {raft_malloc(size ? size : 1), size};
    if (!b.base)
        abort();
    memcpy(b.base, data, size);
    int rc = rf->restore(rf, &b);
    if (rc != 0)
        raft_free(b.base);
    return rc;
}

static void close_all(void)
{
    char path[96];
    lbw_fsm_free(fsm);
    lbw_store_close(store);
    fsm = NULL;
    store = NULL;
    free(ref);
    ref = NULL;
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/lock.mdb", dir);
    unlink(path);
    rmdir(dir);
}

static void open_all(void)
{
    struct lbw_store_options so = {.dir = dir, .map_size = (size_t)256 << 20, .no_sync = 1};
    struct lbw_fsm_options fo = {0};
    char err[256];
    snprintf(dir, sizeof(dir), "/tmp/lbw-fuzz-snapshot-XXXXXX");
    if (!mkdtemp(dir) || lbw_store_open(&store, &so, err, sizeof(err)) < 0)
        abort();
    fo.store = store;
    fo.verifier = verifier;
    if (lbw_fsm_new(&fsm, &fo) < 0)
        abort();
    ref_len = take_snapshot(&ref);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct lbw_cert_spec ca = {.cn = "fuzz-ca", .is_ca = 1, .not_before = 1700000000,
                               .not_after = 4102444800LL, .key_alg = LBW_KEY_EC_P256};
    X509 *cert;
    EVP_PKEY *key;
    char err[256];
    (void)argc;
    (void)argv;
    if (lbw_pki_make_cert(&ca, NULL, NULL, &cert, &key, err, sizeof(err)) < 0 ||
        !(verifier = lbw_verifier_new_ca(cert, err, sizeof(err))))
        abort();
    X509_free(cert);
    EVP_PKEY_free(key);
    open_all();
    atexit(close_all);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *now, *again;
    if (restore(data, size) != 0) {
        size_t len = take_snapshot(&now);
        if (len != ref_len || memcmp(now, ref, len) != 0)
            abort(); /* a refused snapshot changed the state or the store */
        free(now);
        return 0;
    }
    size_t len = take_snapshot(&now);
    if (restore(now, len) != 0)
        abort(); /* its own snapshot must be acceptable */
    size_t len2 = take_snapshot(&again);
    if (len2 != len || memcmp(again, now, len) != 0)
        abort();
    free(again);
    free(ref);
    ref = now;
    ref_len = len;

    struct lbw_store_stats st;
    lbw_store_stats(store, &st);
    if (st.series > MAX_SERIES) {
        close_all();
        open_all();
    }
    return 0;
}
