/* test_store.c - the LMDB time-series store against a real environment in a temp dir:
 * appends and queries, drops, rollups and steps at every resolution, head reload after
 * reopen, abort, retention, metadata atomicity, a concurrent reader, corrupt records, a
 * full map, and the audit trail (records by index, certificates kept once, pruning). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <lmdb.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/chunk.h"
#include "node/store.h"
#include "tests/support/testutil.h"

#define T0 1699999200000LL /* hour-aligned */
#define MIN_MS 60000LL
#define HOUR_MS 3600000LL

struct fx {
    char dir[256];
    struct lbw_store *s;
};

static uint64_t rng_state = 88172645463325252ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static struct lbw_store *open_store(const char *dir, size_t map_size, int64_t raw, int64_t r1m,
                                    int64_t r1h)
{
    struct lbw_store_options o = {dir, map_size, raw, r1m, r1h, 1};
    struct lbw_store *s = NULL;
    char err[256] = "";
    if (lbw_store_open(&s, &o, err, sizeof(err)) < 0)
        print_error("open: %s\n", err);
    return s;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (!f || tu_tmpdir("lbw-store", f->dir, sizeof(f->dir)) < 0)
        return -1;
    f->s = open_store(f->dir, 0, 0, 0, 0);
    *state = f;
    return f->s ? 0 : -1;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    lbw_store_close(f->s);
    tu_rmrf(f->dir);
    free(f);
    return 0;
}

static void reopen(struct fx *f, size_t map_size, int64_t raw, int64_t r1m, int64_t r1h)
{
    lbw_store_close(f->s);
    f->s = open_store(f->dir, map_size, raw, r1m, r1h);
    assert_non_null(f->s);
}

/* The canonical key m{i="<i>",target="t"}. */
static const char *key_of(const char *metric, int i, char *buf, size_t size)
{
    char num[16];
    snprintf(num, sizeof(num), "%d", i);
    struct lbw_label l[] = {{"target", "t"}, {"i", num}};
    assert_true(lbw_key_build(buf, size, metric, l, 2) > 0);
    return buf;
}

static int append(struct lbw_store *s, const char *key, int64_t ts, double v)
{
    return lbw_store_append(s, key, strlen(key), ts, v);
}

static long points(struct lbw_store *s, const char *key, int64_t from, int64_t to,
                   struct lbw_point *out, size_t max)
{
    return lbw_store_points(s, key, strlen(key), from, to, out, max);
}

static double value_at(int series, int64_t ts)
{
    return (double)series * 1000.0 + (double)((ts / 1000) % 997) / 4;
}

/* ---- direct LMDB access (store closed) --------------------------------------------------- */

static MDB_env *raw_open(const char *dir)
{
    MDB_env *env;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
    assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
    return env;
}

/* Number of records of series id in database name. */
static int count_records(const char *dir, const char *name, uint32_t id)
{
    MDB_env *env = raw_open(dir);
    MDB_txn *t;
    MDB_dbi dbi;
    MDB_cursor *c;
    MDB_val k, v;
    int n = 0;
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &t), 0);
    assert_int_equal(mdb_dbi_open(t, name, 0, &dbi), 0);
    assert_int_equal(mdb_cursor_open(t, dbi, &c), 0);
    for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        const uint8_t *p = k.mv_data;
        if (k.mv_size == 12 && ((uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]) == id)
            n++;
    }
    mdb_cursor_close(c);
    mdb_txn_abort(t);
    mdb_env_close(env);
    return n;
}

static void sample_key(uint8_t k[12], uint32_t id, int64_t ts)
{
    for (int i = 0; i < 4; i++)
        k[i] = (uint8_t)(id >> (24 - 8 * i));
    for (int i = 0; i < 8; i++)
        k[4 + i] = (uint8_t)((uint64_t)ts >> (56 - 8 * i));
}

static void raw_put(const char *dir, const char *name, const void *key, size_t klen,
                    const void *val, size_t vlen)
{
    MDB_env *env = raw_open(dir);
    MDB_txn *t;
    MDB_dbi dbi;
    MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &t), 0);
    assert_int_equal(mdb_dbi_open(t, name, 0, &dbi), 0);
    assert_int_equal(mdb_put(t, dbi, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(t), 0);
    mdb_env_close(env);
}

struct id_find {
    const char *key;
    uint32_t id;
    int n;
};

static int find_id_cb(void *arg, const struct lbw_series_info *si)
{
    struct id_find *f = arg;
    f->n++;
    if (strcmp(si->key, f->key) == 0)
        f->id = si->id;
    return 0;
}

static uint32_t series_id(struct lbw_store *s, const char *key)
{
    struct id_find f = {key, 0, 0};
    assert_int_equal(lbw_store_foreach_series(s, NULL, find_id_cb, &f), 0);
    assert_true(f.id != 0);
    return f.id;
}

/* ---- tests -------------------------------------------------------------------------------- */

static void append_commit_query(void **state)
{
    struct fx *f = *state;
    char key[LBW_KEY_MAX];
    key_of("m", 1, key, sizeof(key));
    static struct lbw_point out[400];
    for (int i = 0; i < 300; i++)
        assert_int_equal(append(f->s, key, T0 + i * 1000LL, value_at(1, T0 + i * 1000LL)), 0);
    assert_int_equal(points(f->s, key, 0, INT64_MAX, out, 400), 0); /* not committed yet */
    assert_int_equal(lbw_store_commit(f->s), 0);

    assert_int_equal(points(f->s, key, 0, INT64_MAX, out, 400), 300);
    for (int i = 0; i < 300; i++) {
        assert_int_equal(out[i].ts_ms, T0 + i * 1000LL);
        assert_true(out[i].value == value_at(1, T0 + i * 1000LL));
    }
    /* a range starting inside the second chunk and ending inside the third */
    assert_int_equal(points(f->s, key, T0 + 150500, T0 + 260000, out, 400), 110);
    assert_int_equal(out[0].ts_ms, T0 + 151000);
    assert_int_equal(out[109].ts_ms, T0 + 260000);
    assert_int_equal(points(f->s, key, T0 + 10000, T0 + 20000, out, 5), 5);
    assert_int_equal(out[4].ts_ms, T0 + 14000);
    assert_int_equal(points(f->s, key, T0 + 20000, T0 + 10000, out, 5), 0);
    assert_int_equal(points(f->s, key, T0 + 500000, INT64_MAX, out, 5), 0);
    assert_int_equal(points(f->s, "nosuch", 0, INT64_MAX, out, 5), 0);

    int64_t ts;
    double v;
    assert_int_equal(lbw_store_last(f->s, key, strlen(key), &ts, &v), 1);
    assert_int_equal(ts, T0 + 299000);
    assert_true(v == value_at(1, ts));
    assert_int_equal(lbw_store_last(f->s, "nosuch", 6, &ts, &v), 0);

    struct lbw_store_stats st;
    lbw_store_stats(f->s, &st);
    assert_int_equal(st.series, 1);
    assert_int_equal(st.appended, 300);
    assert_int_equal(st.commits, 1);
    assert_int_equal(st.corrupt, 0);
    assert_int_equal(lbw_store_commit(f->s), 0); /* nothing open: a no-op */
    lbw_store_stats(f->s, &st);
    assert_int_equal(st.commits, 1);

    /* 300 samples are two sealed chunks and the head */
    uint32_t id = series_id(f->s, key);
    lbw_store_close(f->s);
    f->s = NULL;
    assert_int_equal(count_records(f->dir, "samples", id), 2);
    f->s = open_store(f->dir, 0, 0, 0, 0);
    assert_non_null(f->s);
}

/* The newest chunks only: 300 samples are sealed chunks of 120 and 120 and a head of 60, so
 * recent() gives the last 180 (newest sealed chunk + head), cut by from and max. */
static void recent_reads_newest_chunks(void **state)
{
    struct fx *f = *state;
    char key[LBW_KEY_MAX];
    static struct lbw_point out[300];
    key_of("m", 7, key, sizeof(key));
    for (int i = 0; i < 300; i++)
        assert_int_equal(append(f->s, key, T0 + i * 1000LL, (double)i), 0);
    assert_int_equal(lbw_store_commit(f->s), 0);
    assert_int_equal(lbw_store_recent(f->s, key, strlen(key), 0, out, 300), 180);
    for (int i = 0; i < 180; i++) {
        assert_int_equal(out[i].ts_ms, T0 + (120 + i) * 1000LL);
        assert_true(out[i].value == 120 + i);
    }
    /* from cuts the oldest; max keeps the newest */
    assert_int_equal(lbw_store_recent(f->s, key, strlen(key), T0 + 250000, out, 300), 50);
    assert_int_equal(out[0].ts_ms, T0 + 250000);
    assert_int_equal(lbw_store_recent(f->s, key, strlen(key), 0, out, 10), 10);
    assert_int_equal(out[0].ts_ms, T0 + 290000);
    assert_int_equal(out[9].ts_ms, T0 + 299000);
    assert_int_equal(lbw_store_recent(f->s, "nosuch", 6, 0, out, 10), 0);
    /* a series with only a head */
    key_of("m", 8, key, sizeof(key));
    assert_int_equal(append(f->s, key, T0, 5), 0);
    assert_int_equal(lbw_store_commit(f->s), 0);
    assert_int_equal(lbw_store_recent(f->s, key, strlen(key), 0, out, 300), 1);
    assert_true(out[0].value == 5);
}

static void drops_old_and_rejects_bad_input(void **state)
{
    struct fx *f = *state;
    char key[LBW_KEY_MAX];
    key_of("m", 2, key, sizeof(key));
    struct lbw_point out[8];
    assert_int_equal(append(f->s, key, 1000, 1), 0);
    assert_int_equal(append(f->s, key, 2000, 2), 0);
    assert_int_equal(append(f->s, key, 2000, 9), 1); /* duplicate */
    assert_int_equal(append(f->s, key, 1500, 9), 1); /* older */
    assert_int_equal(append(f->s, "bad key{", 8, 1), -1);
    assert_int_equal(append(f->s, "m{b=\"1\",a=\"2\"}", 3000, 1), -1); /* not canonical */
    assert_int_equal(append(f->s, key, -5, 1), -1);
    assert_int_equal(lbw_store_append(f->s, key, 0, 3000, 1), -1);
    assert_int_equal(append(f->s, key, 3000, 3), 0); /* the transaction survived */
    assert_int_equal(lbw_store_commit(f->s), 0);
    assert_int_equal(points(f->s, key, 0, INT64_MAX, out, 8), 3);
    assert_true(out[0].value == 1 && out[1].value == 2 && out[2].value == 3);

    reopen(f, 0, 0, 0, 0); /* the reloaded head still knows the last timestamp */
    assert_int_equal(append(f->s, key, 3000, 9), 1);
    assert_int_equal(append(f->s, key, 2999, 9), 1);
    assert_int_equal(append(f->s, key, 3001, 4), 0);
    assert_int_equal(lbw_store_commit(f->s), 0);
    assert_int_equal(points(f->s, key, 0, INT64_MAX, out, 8), 4);
    struct lbw_store_stats st;
    lbw_store_stats(f->s, &st);
    assert_int_equal(st.dropped_old, 2);
    assert_int_equal(st.appended, 1);
}

/* A series handle appends like its key does, survives an abort, and refuses nonsense. */
static void series_handles(void **state)
{
    struct fx *f = *state;
    char key[LBW_KEY_MAX], other[LBW_KEY_MAX];
    struct lbw_point out[8];
    key_of("m", 3, key, sizeof(key));
    key_of("m", 4, other, sizeof(other));
    long h = lbw_store_series(f->s, key, strlen(key));
    assert_true(h >= 0);
    assert_int_equal(lbw_store_series(f->s, key, strlen(key)), h);
    long h2 = lbw_store_series(f->s, other, strlen(other));
    assert_true(h2 >= 0 && h2 != h);
    assert_int_equal(lbw_store_series(f->s, "m{b=\"1\",a=\"2\"}", 13), -1);
    assert_int_equal(lbw_store_series(f->s, NULL, 0), -1);

    assert_int_equal(lbw_store_append_series(f->s, h, 1000, 1), 0);
    assert_int_equal(append(f->s, key, 2000, 2), 0); /* the same series by key */
    assert_int_equal(lbw_store_append_series(f->s, h, 2000, 9), 1); /* not newer */
    assert_int_equal(lbw_store_append_series(f->s, h, -1, 9), -1);
    assert_int_equal(lbw_store_append_series(f->s, -1, 3000, 9), -1);
    assert_int_equal(lbw_store_append_series(f->s, h2 + 1000, 3000, 9), -1);
    assert_int_equal(lbw_store_commit(f->s), 0);
    assert_int_equal(points(f->s, key, 0, INT64_MAX, out, 8), 2);
    assert_true(out[0].value == 1 && out[1].value == 2);

    assert_int_equal(lbw_store_append_series(f->s, h2, 5000, 5), 0);
    lbw_store_abort(f->s);
    assert_int_equal(lbw_store_append_series(f->s, h2, 6000, 6), 0); /* still valid */
    assert_int_equal(lbw_store_commit(f->s), 0);
    assert_int_equal(points(f->s, other, 0, INT64_MAX, out, 8), 1);
    assert_int_equal(out[0].ts_ms, 6000);
}

static void many_interleaved_series(void **state)
{
    struct fx *f = *state;
    enum { NSER = 300, PER = 400 };
    static char keys[NSER][LBW_KEY_MAX];
    static struct lbw_point out[PER + 1];
    for (int i = 0; i < NSER; i++)
        key_of(i % 2 ? "odd" : "even", i, keys[i], sizeof(keys[i]));
    long n = 0;
    for (int r = 0; r < PER; r++) {
        for (int i = 0; i < NSER; i++) {
            int64_t ts = T0 + r * 15000LL + i; /* each series has its own phase */
            assert_int_equal(append(f->s, keys[i], ts, value_at(i, ts)), 0);
            if (++n % 512 == 0)
                assert_int_equal(lbw_store_commit(f->s), 0);
        }
    }
    assert_int_equal(lbw_store_commit(f->s), 0);
    for (int i = 0; i < NSER; i++) {
        assert_int_equal(points(f->s, keys[i], 0, INT64_MAX, out, PER + 1), PER);
        for (int r = 0; r < PER; r++) {
            assert_int_equal(out[r].ts_ms, T0 + r * 15000LL + i);
            assert_true(out[r].value == value_at(i, out[r].ts_ms));
        }
    }
    struct id_find fe = {"", 0, 0};
    assert_int_equal(lbw_store_foreach_series(f->s, NULL, find_id_cb, &fe), 0);
    assert_int_equal(fe.n, NSER);
    fe.n = 0;
    assert_int_equal(lbw_store_foreach_series(f->s, "odd{", find_id_cb, &fe), 0);
    assert_int_equal(fe.n, NSER / 2);
    fe.n = 0;
    assert_int_equal(lbw_store_foreach_series(f->s, "zzz", find_id_cb, &fe), 0);
    assert_int_equal(fe.n, 0);
    struct lbw_store_stats st;
    lbw_store_stats(f->s, &st);
    assert_int_equal(st.series, NSER);
    assert_int_equal(st.appended, NSER * PER);
}

struct latest {
    int n;
    int64_t ts[4];
    double v[4];
};

static int latest_cb(void *arg, const struct lbw_series_info *si)
{
    struct latest *l = arg;
    assert_int_equal(strlen(si->key), si->keylen);
    l->ts[l->n] = si->last_ts;
    l->v[l->n] = si->last_value;
    return ++l->n == 2; /* stop after two */
}

static void foreach_reports_latest_and_stops(void **state)
{
    struct fx *f = *state;
    char k1[LBW_KEY_MAX], k2[LBW_KEY_MAX], k3[LBW_KEY_MAX];
    key_of("a", 1, k1, sizeof(k1));
    key_of("b", 2, k2, sizeof(k2));
    key_of("c", 3, k3, sizeof(k3));
    for (int i = 0; i < 250; i++) {
        assert_int_equal(append(f->s, k1, T0 + i * 1000LL, i), 0);
        assert_int_equal(append(f->s, k2, T0 + i * 2000LL, -i), 0);
        assert_int_equal(append(f->s, k3, T0 + i * 3000LL, 0.5 * i), 0);
    }
    assert_int_equal(lbw_store_commit(f->s), 0);
    struct latest l = {0};
    assert_int_equal(lbw_store_foreach_series(f->s, "", latest_cb, &l), 0);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.ts[0], T0 + 249000);
    assert_true(l.v[0] == 249);
    assert_int_equal(l.ts[1], T0 + 498000);
    assert_true(l.v[1] == -249);
}

/* Expected aggregate of the samples with from <= ts < to, NaN left out. */
static struct lbw_step expect(const struct lbw_point *p, size_t n, int64_t from, int64_t to)
{
    struct lbw_step e = {from, 0, 0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        if (p[i].ts_ms < from || p[i].ts_ms >= to || isnan(p[i].value))
            continue;
        if (e.count == 0 || p[i].value < e.min)
            e.min = p[i].value;
        if (e.count == 0 || p[i].value > e.max)
            e.max = p[i].value;
        e.sum += p[i].value;
        e.count++;
    }
    return e;
}

/* Checks steps against the samples; returns how many steps were empty. */
static int check_steps(struct lbw_store *s, const char *key, const struct lbw_point *p,
                       size_t n, int64_t from, int64_t to, int64_t step)
{
    static struct lbw_step out[2000];
    long got = lbw_store_steps(s, key, strlen(key), from, to, step, out, 2000);
    assert_int_equal(got, (to - from) / step + 1);
    int empty = 0, full = 0;
    for (long i = 0; i < got; i++) {
        struct lbw_step e = expect(p, n, from + i * step, from + (i + 1) * step);
        assert_int_equal(out[i].ts_ms, from + i * step);
        assert_int_equal(out[i].count, e.count);
        assert_true(out[i].min == e.min);
        assert_true(out[i].max == e.max);
        assert_true(fabs(out[i].sum - e.sum) <= 1e-9 * fmax(1, fabs(e.sum)));
        empty += e.count == 0;
        full += e.count > 0;
    }
    assert_true(full > 0);
    return empty;
}

/* Irregular samples over 3.5 hours with a 25-minute gap and some NaNs. */
static size_t make_rollup_data(struct lbw_point *p, size_t cap)
{
    size_t n = 0;
    for (int64_t ts = T0 + 7000; ts < T0 + 3 * HOUR_MS + 30 * MIN_MS && n < cap;) {
        double v = (double)(int64_t)(rng() % 20001 - 10000) / 100;
        p[n++] = (struct lbw_point){ts, rng() % 50 == 0 ? NAN : v};
        ts += 1000 + (int64_t)(rng() % 40000);
        if (ts > T0 + 70 * MIN_MS && ts < T0 + 95 * MIN_MS)
            ts = T0 + 95 * MIN_MS + 1234;
    }
    return n;
}

static void rollups_and_steps(void **state)
{
    struct fx *f = *state;
    char key[LBW_KEY_MAX];
    key_of("r", 1, key, sizeof(key));
    static struct lbw_point p[2000];
    size_t n = make_rollup_data(p, 1900);
    assert_true(n > 500);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(append(f->s, key, p[i].ts_ms, p[i].value), 0);
        if (i % 37 == 36)
            assert_int_equal(lbw_store_commit(f->s), 0);
    }
    assert_int_equal(lbw_store_commit(f->s), 0);
    int64_t end = p[n - 1].ts_ms; /* its minute and hour are open buckets, in the head */

    assert_true(check_steps(f->s, key, p, n, T0, end, MIN_MS) >= 24); /* 1m rollups */
    assert_true(check_steps(f->s, key, p, n, T0 + 10 * MIN_MS, end, 5 * MIN_MS) >= 4);
    check_steps(f->s, key, p, n, T0, end, HOUR_MS);                   /* 1h rollups */
    assert_true(check_steps(f->s, key, p, n, T0, end + 5 * HOUR_MS, 2 * HOUR_MS) >= 2);
    assert_true(check_steps(f->s, key, p, n, T0 + 1234, end, MIN_MS) >= 23); /* raw */
    assert_true(check_steps(f->s, key, p, n, T0, end, 45000) >= 30);         /* raw */
    check_steps(f->s, key, p, n, T0 + 30 * MIN_MS, end, 30 * MIN_MS);

    static struct lbw_step out[10];
    assert_int_equal(lbw_store_steps(f->s, key, strlen(key), T0, end, MIN_MS, out, 10), 10);
    assert_int_equal(out[9].ts_ms, T0 + 9 * MIN_MS);
    assert_int_equal(lbw_store_steps(f->s, key, strlen(key), T0, T0 - 1, MIN_MS, out, 10), 0);
    assert_int_equal(lbw_store_steps(f->s, key, strlen(key), T0, end, 0, out, 10), -1);
    assert_int_equal(lbw_store_steps(f->s, "nosuch", 6, T0, T0 + 5 * MIN_MS, MIN_MS, out, 10), 6);
    assert_int_equal(out[5].count, 0);

    /* the same after a reopen, and after more samples continue the open buckets */
    reopen(f, 0, 0, 0, 0);
    check_steps(f->s, key, p, n, T0, end, MIN_MS);
    int64_t ts = end;
    for (int i = 0; i < 20; i++) {
        ts += 7000;
        p[n] = (struct lbw_point){ts, (double)i};
        assert_int_equal(append(f->s, key, p[n].ts_ms, p[n].value), 0);
        n++;
    }
    assert_int_equal(lbw_store_commit(f->s), 0);
    check_steps(f->s, key, p, n, T0, ts, MIN_MS);
    check_steps(f->s, key, p, n, T0, ts, HOUR_MS);

    /* with raw data past retention, 1m and 1h steps still come from the rollups */
    reopen(f, 0, HOUR_MS, 0, 0);
    assert_true(lbw_store_prune(f->s, ts, 0) > 0);
    static struct lbw_point left[2000];
    long kept = points(f->s, key, 0, INT64_MAX, left, 2000);
    assert_true(kept > 0 && kept < (long)n);
    assert_true(left[0].ts_ms > T0 + HOUR_MS);
    check_steps(f->s, key, p, n, T0, ts, MIN_MS);
    check_steps(f->s, key, p, n, T0, ts, HOUR_MS);
    long got = lbw_store_steps(f->s, key, strlen(key), T0, T0 + 10 * MIN_MS, 45000, out, 10);
    assert_int_equal(got, 10);
    for (long i = 0; i < got; i++)
        assert_int_equal(out[i].count, 0); /* raw steps: the raw data is gone */
}

static void reopen_continues_same_chunk(void **state)
{
    struct fx *f = *state;
    char key[LBW_KEY_MAX], k10[LBW_KEY_MAX];
    key_of("h", 1, key, sizeof(key));
    key_of("slow", 1, k10, sizeof(k10));
    static struct lbw_point out[300];
    for (int i = 0; i < 50; i++)
        assert_int_equal(append(f->s, key, T0 + i * 1000LL, i), 0);
    for (int i = 0; i < 10; i++) /* every 10 minutes: 12 samples per 2-hour chunk */
        assert_int_equal(append(f->s, k10, T0 + i * 600000LL, i), 0);
    assert_int_equal(lbw_store_commit(f->s), 0);
    uint32_t id = series_id(f->s, key), id10 = series_id(f->s, k10);

    for (int round = 0; round < 3; round++) {
        reopen(f, 0, 0, 0, 0);
        for (int i = 0; i < 20; i++) {
            int j = 50 + round * 20 + i;
            assert_int_equal(append(f->s, key, T0 + j * 1000LL, j), 0);
        }
        for (int i = 0; i < 5; i++) {
            int j = 10 + round * 5 + i;
            assert_int_equal(append(f->s, k10, T0 + j * 600000LL, j), 0);
        }
        assert_int_equal(lbw_store_commit(f->s), 0);
    }
    assert_int_equal(points(f->s, key, 0, INT64_MAX, out, 300), 110);
    for (int i = 0; i < 110; i++)
        assert_true(out[i].ts_ms == T0 + i * 1000LL && out[i].value == i);
    assert_int_equal(points(f->s, k10, 0, INT64_MAX, out, 300), 25);
    for (int i = 0; i < 25; i++)
        assert_true(out[i].ts_ms == T0 + i * 600000LL && out[i].value == i);

    /* the minutes that straddle the reopens aggregate every sample of theirs */
    struct lbw_step st[2];
    assert_int_equal(lbw_store_steps(f->s, key, strlen(key), T0, T0 + MIN_MS, MIN_MS, st, 2), 2);
    assert_int_equal(st[0].count, 60);
    assert_true(st[0].min == 0 && st[0].max == 59 && st[0].sum == 59 * 30);
    assert_int_equal(st[1].count, 50);
    assert_true(st[1].min == 60 && st[1].max == 109 && st[1].sum == (60 + 109) * 25);

    lbw_store_close(f->s);
    f->s = NULL;
    assert_int_equal(count_records(f->dir, "samples", id), 0);   /* one head, continued */
    assert_int_equal(count_records(f->dir, "samples", id10), 2); /* 2-hour cuts: 12+12+1 */
    assert_int_equal(count_records(f->dir, "rollup_1m", id), 0); /* nothing sealed yet */
    assert_int_equal(count_records(f->dir, "rollup_1m", id10), 24); /* its sealed samples */
    f->s = open_store(f->dir, 0, 0, 0, 0);
    assert_non_null(f->s);
}

static void abort_discards(void **state)
{
    struct fx *f = *state;
    char key[LBW_KEY_MAX], knew[LBW_KEY_MAX], klater[LBW_KEY_MAX];
    key_of("ab", 1, key, sizeof(key));
    key_of("ab", 2, knew, sizeof(knew));
    key_of("ab", 3, klater, sizeof(klater));
    static struct lbw_point out[600];
    for (int i = 0; i < 100; i++)
        assert_int_equal(append(f->s, key, T0 + i * 1000LL, i), 0);
    assert_int_equal(lbw_store_commit(f->s), 0);

    for (int i = 100; i < 350; i++) /* crosses two chunk cuts */
        assert_int_equal(append(f->s, key, T0 + i * 1000LL, -1), 0);
    assert_int_equal(append(f->s, knew, T0, 1), 0);
    assert_int_equal(lbw_store_meta_put(f->s, "applied", "x", 1), 0);
    lbw_store_abort(f->s);
    lbw_store_abort(f->s); /* nothing open: harmless */

    assert_int_equal(points(f->s, key, 0, INT64_MAX, out, 600), 100);
    assert_int_equal(points(f->s, knew, 0, INT64_MAX, out, 600), 0);
    assert_int_equal(lbw_store_meta_get(f->s, "applied", NULL, 0), 0);
    struct id_find fe = {key, 0, 0};
    assert_int_equal(lbw_store_foreach_series(f->s, NULL, find_id_cb, &fe), 0);
    assert_int_equal(fe.n, 1);

    /* the head reloads from disk; the id the aborted series had goes to the next new one */
    for (int i = 100; i < 300; i++)
        assert_int_equal(append(f->s, key, T0 + i * 1000LL, i), 0);
    assert_int_equal(append(f->s, klater, T0, 7), 0);
    assert_int_equal(append(f->s, knew, T0, 8), 0);
    assert_int_equal(lbw_store_commit(f->s), 0);
    assert_int_equal(points(f->s, key, 0, INT64_MAX, out, 600), 300);
    for (int i = 0; i < 300; i++)
        assert_true(out[i].ts_ms == T0 + i * 1000LL && out[i].value == i);
    assert_int_equal(series_id(f->s, klater), 2);
    assert_int_equal(series_id(f->s, knew), 3);
    struct lbw_store_stats st;
    lbw_store_stats(f->s, &st);
    assert_int_equal(st.series, 3);
    assert_int_equal(st.appended, 302);
}

static void retention_prunes_old(void **state)
{
    struct fx *f = *state;
    char k1[LBW_KEY_MAX], k2[LBW_KEY_MAX];
    key_of("p", 1, k1, sizeof(k1));
    key_of("p", 2, k2, sizeof(k2));
    static struct lbw_point out[4000];
    int64_t last = 0;
    for (int i = 0; i < 3000; i++) { /* 10 s apart: 8 h 20 m, 24 sealed chunks + the head */
        last = T0 + i * 10000LL;
        assert_int_equal(append(f->s, k1, last, i), 0);
        if (i < 100) /* k2 dies early: its head stays */
            assert_int_equal(append(f->s, k2, last, i), 0);
    }
    assert_int_equal(lbw_store_commit(f->s), 0);
    uint32_t id1 = series_id(f->s, k1);

    reopen(f, 0, HOUR_MS, 3 * HOUR_MS, 0);
    assert_int_equal(append(f->s, k1, last + 1, 0), 0);
    assert_int_equal(lbw_store_prune(f->s, last, 0), -1); /* a write transaction is open */
    lbw_store_abort(f->s);

    long total = 0, r;
    while ((r = lbw_store_prune(f->s, last, 7)) > 0) {
        assert_true(r <= 7);
        total += r;
    }
    assert_int_equal(r, 0);
    assert_int_equal(lbw_store_prune(f->s, last, 0), 0); /* nothing left to do */
    /* k1: sealed chunks whose successor starts by last - 1h: 21 of 24; 1m buckets that end
     * by last - 3h: 319 of k1's (k2 has nothing sealed); 1h: kept forever */
    assert_int_equal(total, 21 + 319);

    long n = points(f->s, k1, 0, INT64_MAX, out, 4000);
    assert_int_equal(n, 4 * 120);
    assert_int_equal(out[0].ts_ms, T0 + 21 * 120 * 10000LL);
    assert_int_equal(out[n - 1].ts_ms, last);
    assert_int_equal(points(f->s, k2, 0, INT64_MAX, out, 4000), 100);

    static struct lbw_step st[400];
    long ns = lbw_store_steps(f->s, k1, strlen(k1), T0, last, MIN_MS, st, 400);
    for (long i = 0; i < ns; i++)
        assert_int_equal(st[i].count, st[i].ts_ms + MIN_MS <= last - 3 * HOUR_MS ? 0 : 6);
    ns = lbw_store_steps(f->s, k1, strlen(k1), T0, last, HOUR_MS, st, 400);
    assert_int_equal(ns, 9);
    for (long i = 0; i < 8; i++)
        assert_int_equal(st[i].count, 360);
    assert_int_equal(st[8].count, 3000 - 8 * 360); /* the open hour */

    lbw_store_close(f->s);
    f->s = NULL;
    assert_int_equal(count_records(f->dir, "samples", id1), 3); /* and the head */
    assert_int_equal(count_records(f->dir, "rollup_1h", id1), 8);
    f->s = open_store(f->dir, 0, 0, 0, 0);
    assert_non_null(f->s);
}

static void meta_commits_with_samples(void **state)
{
    struct fx *f = *state;
    char key[LBW_KEY_MAX];
    key_of("meta", 1, key, sizeof(key));
    struct lbw_point out[4];
    uint64_t applied = 41;
    char buf[16];
    assert_int_equal(append(f->s, key, T0, 1), 0);
    assert_int_equal(lbw_store_meta_put(f->s, "applied", &applied, sizeof(applied)), 0);
    assert_int_equal(lbw_store_meta_get(f->s, "applied", buf, sizeof(buf)), 0); /* uncommitted */
    assert_int_equal(lbw_store_meta_put(f->s, "lbw.next_id", &applied, 4), -1);
    assert_int_equal(lbw_store_commit(f->s), 0);
    assert_int_equal(lbw_store_meta_get(f->s, "applied", buf, sizeof(buf)), 8);
    assert_memory_equal(buf, &applied, 8);
    assert_int_equal(points(f->s, key, 0, INT64_MAX, out, 4), 1);

    applied = 42;
    assert_int_equal(lbw_store_meta_put(f->s, "applied", &applied, sizeof(applied)), 0);
    assert_int_equal(append(f->s, key, T0 + 1, 2), 0);
    lbw_store_abort(f->s);
    assert_int_equal(lbw_store_meta_get(f->s, "applied", buf, 2), 8); /* 41 stays */
    assert_int_equal(buf[0], 41);
    assert_int_equal(points(f->s, key, 0, INT64_MAX, out, 4), 1);

    reopen(f, 0, 0, 0, 0);
    assert_int_equal(lbw_store_meta_get(f->s, "applied", buf, sizeof(buf)), 8);
    assert_int_equal(lbw_store_meta_get(f->s, "lbw.schema", buf, sizeof(buf)), 4);
    assert_int_equal(lbw_store_meta_get(f->s, "absent", buf, sizeof(buf)), 0);
}

/* ---- a reader thread beside the writer ----------------------------------------------------- */

#define CONC_BATCH 50

struct reader_state {
    struct lbw_store *s;
    const char *key;
    atomic_int stop;
    int errors;
    long reads;
    long max_seen;
};

static void *reader_main(void *arg)
{
    struct reader_state *r = arg;
    static struct lbw_point out[20000];
    long prev = 0;
    while (!atomic_load(&r->stop)) {
        long n = points(r->s, r->key, 0, INT64_MAX, out, 20000);
        int64_t ts;
        double v;
        int last = lbw_store_last(r->s, r->key, strlen(r->key), &ts, &v);
        if (n < 0 || n < prev || n % CONC_BATCH != 0 || last < 0)
            r->errors++;
        for (long i = 0; i < n; i++)
            if (out[i].ts_ms != T0 + i * 1000 || out[i].value != value_at(0, out[i].ts_ms))
                r->errors++;
        if (last == 1 && (ts < T0 + (n - 1) * 1000 || v != value_at(0, ts)))
            r->errors++;
        prev = n;
        r->reads++;
    }
    r->max_seen = prev;
    return NULL;
}

static void concurrent_reader(void **state)
{
    struct fx *f = *state;
    char key[LBW_KEY_MAX], other[LBW_KEY_MAX];
    key_of("conc", 0, key, sizeof(key));
    struct reader_state r = {.s = f->s, .key = key};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, reader_main, &r), 0);
    for (int c = 0; c < 300; c++) {
        for (int i = 0; i < CONC_BATCH; i++) {
            int64_t ts = T0 + (c * CONC_BATCH + i) * 1000LL;
            assert_int_equal(append(f->s, key, ts, value_at(0, ts)), 0);
            key_of("noise", (c * CONC_BATCH + i) % 97, other, sizeof(other));
            assert_int_equal(append(f->s, other, ts, 1), 0);
        }
        assert_int_equal(lbw_store_commit(f->s), 0);
    }
    atomic_store(&r.stop, 1);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(r.errors, 0);
    assert_true(r.reads > 0);
    assert_true(r.max_seen <= 300 * CONC_BATCH);
}

/* ---- corruption and a full map ------------------------------------------------------------- */

static void corrupt_records_skipped(void **state)
{
    struct fx *f = *state;
    char key[LBW_KEY_MAX];
    key_of("bad", 1, key, sizeof(key));
    static struct lbw_point out[600];
    for (int i = 0; i < 300; i++)
        assert_int_equal(append(f->s, key, T0 + i * 1000LL, i), 0);
    assert_int_equal(lbw_store_commit(f->s), 0);
    uint32_t id = series_id(f->s, key);
    lbw_store_close(f->s);
    f->s = NULL;

    uint8_t k[12], garbage[40];
    for (size_t i = 0; i < sizeof(garbage); i++)
        garbage[i] = (uint8_t)rng();
    garbage[0] = 0;
    sample_key(k, id, T0 + 120000); /* the second chunk */
    raw_put(f->dir, "samples", k, sizeof(k), garbage, sizeof(garbage));
    sample_key(k, id, T0 + 60000); /* a bucket of the wrong size */
    raw_put(f->dir, "rollup_1m", k, sizeof(k), garbage, 7);
    raw_put(f->dir, "samples", "\x00\x00", 2, garbage, 3); /* a malformed key */

    f->s = open_store(f->dir, 0, 0, 0, 0);
    assert_non_null(f->s);
    assert_int_equal(points(f->s, key, 0, INT64_MAX, out, 600), 180);
    assert_int_equal(out[119].ts_ms, T0 + 119000);
    assert_int_equal(out[120].ts_ms, T0 + 240000);
    struct lbw_step st[6];
    assert_int_equal(lbw_store_steps(f->s, key, strlen(key), T0, T0 + 5 * MIN_MS, MIN_MS, st, 6),
                     6);
    assert_int_equal(st[0].count, 60);
    assert_int_equal(st[1].count, 0); /* its bucket was the corrupt one */
    struct lbw_store_stats s1;
    lbw_store_stats(f->s, &s1);
    assert_true(s1.corrupt >= 2);

    /* a corrupt head: its samples are lost, appends start a new head after the newest
     * sealed chunk (here after its start, as it does not decode either) */
    uint8_t idk[4] = {(uint8_t)(id >> 24), (uint8_t)(id >> 16), (uint8_t)(id >> 8), (uint8_t)id};
    lbw_store_close(f->s);
    raw_put(f->dir, "heads", idk, sizeof(idk), garbage, sizeof(garbage));
    f->s = open_store(f->dir, 0, 0, 0, 0);
    assert_non_null(f->s);
    int64_t ts;
    double v;
    assert_int_equal(lbw_store_last(f->s, key, strlen(key), &ts, &v), 1); /* walks back */
    assert_int_equal(ts, T0 + 119000);
    assert_int_equal(points(f->s, key, 0, INT64_MAX, out, 600), 120);
    assert_int_equal(append(f->s, key, T0 + 120000, 0), 1);
    assert_int_equal(append(f->s, key, T0 + 120001, 1), 0);
    assert_int_equal(append(f->s, key, T0 + 400000, 400), 0);
    assert_int_equal(lbw_store_commit(f->s), 0);
    assert_int_equal(points(f->s, key, 0, INT64_MAX, out, 600), 122);
    assert_int_equal(out[121].ts_ms, T0 + 400000);
    assert_int_equal(lbw_store_last(f->s, key, strlen(key), &ts, &v), 1);
    assert_int_equal(ts, T0 + 400000);
    struct lbw_store_stats s2;
    lbw_store_stats(f->s, &s2);
    assert_true(s2.corrupt >= 2);
}

static void map_full_is_clean(void **state)
{
    struct fx *f = *state;
    enum { NSER = 64 };
    static char keys[NSER][LBW_KEY_MAX];
    static long committed[NSER], pending[NSER];
    static struct lbw_point out[20000];
    reopen(f, 512 * 1024, 0, 0, 0);
    for (int i = 0; i < NSER; i++)
        key_of("full", i, keys[i], sizeof(keys[i]));

    int failed = 0;
    int64_t ts = T0;
    for (int round = 0; round < 20000 && !failed; round++) {
        ts += 1000;
        for (int i = 0; i < NSER && !failed; i++) {
            double v;
            uint64_t bits = rng();
            memcpy(&v, &bits, sizeof(v)); /* incompressible */
            int rc = append(f->s, keys[i], ts, v);
            assert_true(rc == 0 || rc == -1);
            failed = rc < 0;
            pending[i] += rc == 0;
        }
        if (!failed && round % 4 == 3) {
            failed = lbw_store_commit(f->s) < 0;
            for (int i = 0; i < NSER && !failed; i++)
                committed[i] = pending[i];
        }
    }
    assert_true(failed);
    for (int i = 0; i < NSER; i++)
        assert_int_equal(points(f->s, keys[i], 0, INT64_MAX, out, 20000), committed[i]);

    /* a bigger map: the same series continue from the committed state */
    reopen(f, 64 * 1024 * 1024, 0, 0, 0);
    for (int i = 0; i < NSER; i++)
        assert_int_equal(append(f->s, keys[i], ts + 1000, 1), 0);
    assert_int_equal(lbw_store_commit(f->s), 0);
    for (int i = 0; i < NSER; i++) {
        long n = points(f->s, keys[i], 0, INT64_MAX, out, 20000);
        assert_int_equal(n, committed[i] + 1);
        for (long j = 1; j < n; j++)
            assert_true(out[j].ts_ms > out[j - 1].ts_ms);
    }
}

/* ---- audit trail ------------------------------------------------------------------------- */

/* An audit record: the i64 big-endian timestamp, then tag repeated to len bytes. */
static size_t audit_rec(uint8_t *out, int64_t ts, uint8_t tag, size_t len)
{
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)((uint64_t)ts >> (56 - 8 * i));
    memset(out + 8, tag, len - 8);
    return len;
}

struct audit_seen {
    uint64_t index[16];
    size_t len[16];
    uint8_t tag[16];
    int n, stop_after;
};

static int audit_collect(void *arg, uint64_t index, const uint8_t *rec, size_t len)
{
    struct audit_seen *a = arg;
    assert_true(a->n < 16);
    a->index[a->n] = index;
    a->len[a->n] = len;
    a->tag[a->n] = len > 8 ? rec[8] : 0;
    a->n++;
    return a->n == a->stop_after;
}

static void audit_put_get_foreach(void **state)
{
    struct fx *f = *state;
    uint8_t rec[LBW_STORE_AUDIT_MAX + 1], buf[64];
    const uint64_t idx[] = {5, 1, 300, 1ull << 40, UINT64_MAX};
    char key[LBW_KEY_MAX];
    struct lbw_point out[4];
    key_of("audit", 1, key, sizeof(key));

    assert_int_equal(append(f->s, key, T0, 1), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(lbw_store_audit_put(f->s, idx[i], rec,
                                             audit_rec(rec, T0 + i, (uint8_t)(i + 1), 20 + i)),
                         0);
    assert_int_equal(lbw_store_audit_get(f->s, 5, buf, sizeof(buf)), 0); /* uncommitted */
    /* Bad arguments leave the transaction alone. */
    assert_int_equal(lbw_store_audit_put(f->s, 9, rec, 7), -1);
    assert_int_equal(lbw_store_audit_put(f->s, 9, rec, LBW_STORE_AUDIT_MAX + 1), -1);
    assert_int_equal(lbw_store_audit_put(f->s, 9, NULL, 10), -1);
    assert_int_equal(lbw_store_commit(f->s), 0);
    assert_int_equal(points(f->s, key, 0, INT64_MAX, out, 4), 1);

    assert_int_equal(lbw_store_audit_get(f->s, 5, buf, sizeof(buf)), 20);
    assert_int_equal(buf[7], (uint8_t)T0);
    assert_int_equal(buf[19], 1);
    assert_int_equal(lbw_store_audit_get(f->s, 300, buf, 4), 22); /* length, copy truncated */
    assert_int_equal(lbw_store_audit_get(f->s, 6, buf, sizeof(buf)), 0);
    assert_int_equal(lbw_store_audit_get(f->s, LBW_STORE_AUDIT_MAX, NULL, 0), 0);

    struct audit_seen a = {.stop_after = -1};
    assert_int_equal(lbw_store_audit_foreach(f->s, 0, audit_collect, &a), 0);
    assert_int_equal(a.n, 5);
    const uint64_t order[] = {1, 5, 300, 1ull << 40, UINT64_MAX};
    const uint8_t tags[] = {2, 1, 3, 4, 5};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(a.index[i], order[i]);
        assert_int_equal(a.tag[i], tags[i]);
    }
    a = (struct audit_seen){.stop_after = 2};
    assert_int_equal(lbw_store_audit_foreach(f->s, 2, audit_collect, &a), 0);
    assert_int_equal(a.n, 2);
    assert_int_equal(a.index[0], 5);
    assert_int_equal(a.index[1], 300);

    /* Replacing, aborting, reopening. */
    assert_int_equal(lbw_store_audit_put(f->s, 5, rec, audit_rec(rec, T0, 9, 30)), 0);
    assert_int_equal(lbw_store_audit_put(f->s, 6, rec, audit_rec(rec, T0, 9, 30)), 0);
    lbw_store_abort(f->s);
    assert_int_equal(lbw_store_audit_get(f->s, 5, buf, sizeof(buf)), 20);
    assert_int_equal(lbw_store_audit_get(f->s, 6, buf, sizeof(buf)), 0);
    assert_int_equal(lbw_store_audit_put(f->s, 5, rec, audit_rec(rec, T0, 9, 30)), 0);
    assert_int_equal(lbw_store_commit(f->s), 0);
    reopen(f, 0, 0, 0, 0);
    assert_int_equal(lbw_store_audit_get(f->s, 5, buf, sizeof(buf)), 30);
    assert_int_equal(buf[29], 9);
}

static void audit_certs_kept_once(void **state)
{
    struct fx *f = *state;
    uint8_t sha[32], der[100], other[100], buf[128];
    memset(sha, 0xab, sizeof(sha));
    memset(der, 1, sizeof(der));
    memset(other, 2, sizeof(other));
    assert_int_equal(lbw_store_audit_cert_put(f->s, sha, der, sizeof(der)), 0);
    assert_int_equal(lbw_store_audit_cert_put(f->s, sha, other, 50), 0); /* already there */
    assert_int_equal(lbw_store_audit_cert_put(f->s, sha, der, 0), -1);
    assert_int_equal(lbw_store_audit_cert_put(f->s, sha, der, LBW_STORE_CERT_MAX + 1), -1);
    assert_int_equal(lbw_store_audit_cert_get(f->s, sha, buf, sizeof(buf)), 0);
    assert_int_equal(lbw_store_commit(f->s), 0);
    assert_int_equal(lbw_store_audit_cert_get(f->s, sha, buf, sizeof(buf)), 100);
    assert_memory_equal(buf, der, 100);
    assert_int_equal(lbw_store_audit_cert_put(f->s, sha, other, 50), 0);
    assert_int_equal(lbw_store_commit(f->s), 0);
    assert_int_equal(lbw_store_audit_cert_get(f->s, sha, buf, sizeof(buf)), 100);
    assert_memory_equal(buf, der, 100);
    sha[0] = 0;
    assert_int_equal(lbw_store_audit_cert_get(f->s, sha, buf, sizeof(buf)), 0);
}

static long count_audit(struct lbw_store *s)
{
    struct audit_seen a = {.stop_after = -1};
    assert_int_equal(lbw_store_audit_foreach(s, 0, audit_collect, &a), 0);
    return a.n;
}

/* Audit records go with the raw retention, swept in index order; one dated in the future
 * does not hold up those after it. */
static void audit_pruned_with_raw_retention(void **state)
{
    struct fx *f = *state;
    uint8_t rec[64];
    int64_t now = T0 + 10 * HOUR_MS;
    /* index: 1 future, 2..11 old (2 h before now), 12..14 recent. */
    assert_int_equal(lbw_store_audit_put(f->s, 1, rec, audit_rec(rec, now + HOUR_MS, 1, 16)), 0);
    for (uint64_t i = 2; i <= 11; i++)
        assert_int_equal(
            lbw_store_audit_put(f->s, i, rec, audit_rec(rec, now - 2 * HOUR_MS, 2, 16)), 0);
    for (uint64_t i = 12; i <= 14; i++)
        assert_int_equal(lbw_store_audit_put(f->s, i, rec, audit_rec(rec, now - MIN_MS, 3, 16)), 0);
    assert_int_equal(lbw_store_commit(f->s), 0);

    assert_int_equal(lbw_store_prune(f->s, now, 0), 0); /* no retention: kept forever */
    reopen(f, 0, HOUR_MS, 0, 0);
    long total = 0, r;
    while ((r = lbw_store_prune(f->s, now, 3)) > 0) {
        assert_true(r <= 3);
        total += r;
    }
    assert_int_equal(r, 0);
    assert_int_equal(total, 10);
    assert_int_equal(count_audit(f->s), 4);
    uint8_t buf[16];
    assert_int_equal(lbw_store_audit_get(f->s, 1, buf, sizeof(buf)), 16);
    assert_int_equal(lbw_store_audit_get(f->s, 11, buf, sizeof(buf)), 0);
    assert_int_equal(lbw_store_audit_get(f->s, 12, buf, sizeof(buf)), 16);

    /* Time passes: an unlimited call sweeps everything once. */
    assert_int_equal(lbw_store_prune(f->s, now + 2 * HOUR_MS, 0), 3);
    assert_int_equal(count_audit(f->s), 1);
    assert_int_equal(lbw_store_prune(f->s, now + 3 * HOUR_MS, 0), 1);
    assert_int_equal(count_audit(f->s), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(append_commit_query, setup, teardown),
        cmocka_unit_test_setup_teardown(recent_reads_newest_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(drops_old_and_rejects_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(series_handles, setup, teardown),
        cmocka_unit_test_setup_teardown(many_interleaved_series, setup, teardown),
        cmocka_unit_test_setup_teardown(foreach_reports_latest_and_stops, setup, teardown),
        cmocka_unit_test_setup_teardown(rollups_and_steps, setup, teardown),
        cmocka_unit_test_setup_teardown(reopen_continues_same_chunk, setup, teardown),
        cmocka_unit_test_setup_teardown(abort_discards, setup, teardown),
        cmocka_unit_test_setup_teardown(retention_prunes_old, setup, teardown),
        cmocka_unit_test_setup_teardown(meta_commits_with_samples, setup, teardown),
        cmocka_unit_test_setup_teardown(concurrent_reader, setup, teardown),
        cmocka_unit_test_setup_teardown(corrupt_records_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(map_full_is_clean, setup, teardown),
        cmocka_unit_test_setup_teardown(audit_put_get_foreach, setup, teardown),
        cmocka_unit_test_setup_teardown(audit_certs_kept_once, setup, teardown),
        cmocka_unit_test_setup_teardown(audit_pruned_with_raw_retention, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
