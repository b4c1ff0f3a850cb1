/* store_ingest.c - ingest rate and disk use of the store (node/store.h) against the naive
 * layout it replaces, measured in the same run on the same data.
 *
 * Workload: 5,000 series, each sampled every 10 s (with a few ms of jitter), arriving
 * interleaved (every series in turn, round after round) and committed every 512 samples, the
 * size of one signed batch. Values mix what probes produce: up/down flags, counters,
 * latencies with three decimals, integer gauges. Both environments use MDB_NOSYNC, as the
 * node does (the raft log is the write-ahead log).
 *   store: lbw_store_append + lbw_store_commit (head chunks, rollups, series registry).
 *   naive: one LMDB put per sample, key u64 series id | u64 ts (16 bytes), value f64,
 *          512 puts per transaction, series ids known up front.
 * Prints samples/s for each, the ratio, and bytes on disk per sample. Asserts nothing.
 */
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "node/store.h"

#define NSERIES 5000
#define ROUNDS 400
#define BATCH 512
#define NSAMPLES ((size_t)NSERIES * ROUNDS)
#define MAP_SIZE ((size_t)2 << 30)

struct sample {
    int64_t ts;
    double value;
};

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Sample r of series i, in arrival order (round r, then series i). */
static void make_samples(struct sample *smp)
{
    static double state[NSERIES];
    const int64_t t0 = 1700000000000;
    for (size_t r = 0; r < ROUNDS; r++) {
        for (size_t i = 0; i < NSERIES; i++) {
            double *st = &state[i];
            switch (i % 4) {
            case 0: *st = rng() % 500 ? 1 : 0; break;                          /* up/down */
            case 1: *st += (double)(rng() % 200); break;                       /* counter */
            case 2: *st = 20 + (double)(rng() % 30000) / 1000; break;          /* latency */
            default: *st += (double)((int64_t)(rng() % 11) - 5); break;        /* gauge */
            }
            int64_t ts = t0 + (int64_t)r * 10000 + (int64_t)(rng() % 40);
            smp[r * NSERIES + i] = (struct sample){ts, *st};
        }
    }
}

/* Removes an LMDB environment directory. */
static void remove_env(const char *dir)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/lock.mdb", dir);
    unlink(path);
    rmdir(dir);
}

static double file_bytes(const char *dir)
{
    char path[512];
    struct stat st;
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    return stat(path, &st) == 0 ? (double)st.st_size : 0;
}

/* samples/s through the store; *bytes gets the size of its data file. */
static double run_store(const char *dir, char (*keys)[LBW_KEY_MAX], const struct sample *smp,
                        double *bytes, struct lbw_store_stats *stats)
{
    struct lbw_store_options o = {.dir = dir, .map_size = MAP_SIZE, .no_sync = 1};
    struct lbw_store *s;
    char err[256];
    size_t keylen[NSERIES];
    if (lbw_store_open(&s, &o, err, sizeof(err)) < 0) {
        fprintf(stderr, "store_ingest: %s\n", err);
        return -1;
    }
    for (size_t i = 0; i < NSERIES; i++)
        keylen[i] = strlen(keys[i]);
    double t = now_s();
    for (size_t n = 0; n < NSAMPLES; n++) {
        size_t i = n % NSERIES;
        if (lbw_store_append(s, keys[i], keylen[i], smp[n].ts, smp[n].value) < 0 ||
            ((n + 1) % BATCH == 0 && lbw_store_commit(s) < 0)) {
            fprintf(stderr, "store_ingest: store write failed at sample %zu\n", n);
            lbw_store_close(s);
            return -1;
        }
    }
    if (lbw_store_commit(s) < 0) {
        lbw_store_close(s);
        return -1;
    }
    t = now_s() - t;
    lbw_store_stats(s, stats);
    lbw_store_close(s);
    *bytes = file_bytes(dir);
    return (double)NSAMPLES / t;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static double run_naive(const char *dir, const struct sample *smp, double *bytes)
{
    MDB_env *env;
    MDB_txn *t = NULL;
    MDB_dbi dbi;
    int rc = mdb_env_create(&env);
    if (rc == 0)
        rc = mdb_env_set_mapsize(env, MAP_SIZE);
    if (rc == 0)
        rc = mdb_env_open(env, dir, MDB_NOTLS | MDB_NOSYNC, 0600);
    if (rc == 0)
        rc = mdb_txn_begin(env, NULL, 0, &t);
    if (rc == 0)
        rc = mdb_dbi_open(t, NULL, 0, &dbi);
    if (rc == 0)
        rc = mdb_txn_commit(t);
    double start = now_s();
    for (size_t n = 0; rc == 0 && n < NSAMPLES; n += BATCH) {
        rc = mdb_txn_begin(env, NULL, 0, &t);
        for (size_t j = n; rc == 0 && j < n + BATCH && j < NSAMPLES; j++) {
            uint8_t kb[16];
            put_be64(kb, j % NSERIES + 1);
            put_be64(kb + 8, (uint64_t)smp[j].ts);
            MDB_val k = {sizeof(kb), kb}, v = {sizeof(double), (void *)&smp[j].value};
            rc = mdb_put(t, dbi, &k, &v, 0);
        }
        rc = rc == 0 ? mdb_txn_commit(t) : (mdb_txn_abort(t), rc);
    }
    double el = now_s() - start;
    mdb_env_close(env);
    if (rc != 0) {
        fprintf(stderr, "store_ingest: naive: %s\n", mdb_strerror(rc));
        return -1;
    }
    *bytes = file_bytes(dir);
    return (double)NSAMPLES / el;
}

int main(void)
{
    static char keys[NSERIES][LBW_KEY_MAX];
    const char *base = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char root[256], sdir[300], ndir[300];
    struct sample *smp = malloc(NSAMPLES * sizeof(*smp));
    snprintf(root, sizeof(root), "%s/lbw-bench-store.XXXXXX", base);
    if (!smp || !mkdtemp(root)) {
        perror("store_ingest");
        return 1;
    }
    snprintf(sdir, sizeof(sdir), "%s/store", root);
    snprintf(ndir, sizeof(ndir), "%s/naive", root);
    mkdir(ndir, 0700);
    for (size_t i = 0; i < NSERIES; i++) {
        char num[16], target[16];
        snprintf(num, sizeof(num), "%zu", i % 20);
        snprintf(target, sizeof(target), "lb%zu", i / 20);
        struct lbw_label l[] = {{"target", target}, {"vantage", "node1"}, {"probe", "tls"},
                                {"i", num}};
        lbw_key_build(keys[i], sizeof(keys[i]), "lbw_bench_metric", l, 4);
    }
    make_samples(smp);

    struct lbw_store_stats st = {0};
    double sbytes = 0, nbytes = 0;
    double srate = run_store(sdir, keys, smp, &sbytes, &st);
    double nrate = run_naive(ndir, smp, &nbytes);
    remove_env(sdir);
    remove_env(ndir);
    rmdir(root);
    free(smp);
    if (srate < 0 || nrate < 0)
        return 1;

    printf("store_ingest: %d series x %d samples (%zu), interleaved, %d samples per commit, "
           "MDB_NOSYNC\n", NSERIES, ROUNDS, NSAMPLES, BATCH);
    printf("  store (chunks + rollups): %10.0f samples/s  %6.2f bytes/sample on disk  "
           "(%llu stored, %llu commits)\n", srate, sbytes / (double)NSAMPLES,
           (unsigned long long)st.appended, (unsigned long long)st.commits);
    printf("  naive (1 put per sample): %10.0f samples/s  %6.2f bytes/sample on disk\n", nrate,
           nbytes / (double)NSAMPLES);
    printf("  ratio store/naive: %.2fx the rate, %.3fx the bytes\n", srate / nrate,
           sbytes / nbytes);
    return 0;
}
