/* handshake.c - the bounded TCP handshake table, RTT histograms and outcome window. See
 * handshake.h. */
#include "probes/handshake.h"

#include <stdlib.h>
#include <string.h>

#include "probes/pktdecode.h"

#define WAYS 8
#define WINDOW_SLOTS 60
#define US_PER_S 1000000
#define DEFAULT_CAPACITY 65536
#define MAX_CAPACITY (1u << 22)
#define DEFAULT_TIMEOUT_MS 3000
#define SWEEP_EVERY_US US_PER_S
#define MAX_TS_US ((int64_t)1 << 62)   /* timestamps are clamped to [0, 2^62]: no overflow */

const int64_t lbw_rtt_bucket_us[LBW_RTT_BUCKETS] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000};
const char *const lbw_rtt_bucket_le[LBW_RTT_BUCKETS] = {
    "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01",
    "0.025",  "0.05",    "0.1",    "0.25",  "0.5",    "1"};

enum state { ST_FREE = 0, ST_SYN, ST_SYNACK };

enum entry_flag {
    F_HAVE_SYN = 1,         /* the SYN was seen: this handshake gets an outcome */
    F_SYN_RETX = 2,         /* SYN seen again: no client RTT (Karn) */
    F_SYNACK_RETX = 4       /* SYN+ACK seen again: no server RTT */
};

/* Client and server endpoints; 40 bytes, padding always zero so keys compare with memcmp. */
struct key {
    uint8_t caddr[16];
    uint8_t saddr[16];
    uint16_t cport, sport;
    uint8_t family;
    uint8_t pad[3];
};

struct entry {
    struct key k;
    uint8_t state;
    uint8_t flags;
    int64_t t_syn;          /* valid with F_HAVE_SYN */
    int64_t t_synack;       /* valid in ST_SYNACK */
};

struct slot {
    int64_t sec;
    uint32_t decided, unanswered;
};

struct lbw_hs {
    struct entry *tab;      /* nsets * WAYS entries */
    uint32_t nsets;
    uint64_t seed;
    int64_t timeout_us;
    int64_t now;            /* latest packet time (packets never go back in time) */
    int64_t swept_at;       /* latest lbw_hs_expire time: not a packet clock */
    int64_t next_sweep;
    struct lbw_hs_stats st;
    struct slot window[WINDOW_SLOTS];
};

static uint32_t round_capacity(uint32_t want)
{
    uint32_t cap = WAYS;
    if (want == 0)
        want = DEFAULT_CAPACITY;
    if (want > MAX_CAPACITY)
        want = MAX_CAPACITY;
    while (cap < want)
        cap <<= 1;
    return cap;
}

struct lbw_hs *lbw_hs_new(const struct lbw_hs_config *c)
{
    struct lbw_hs *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    uint32_t cap = round_capacity(c->capacity);
    h->tab = calloc(cap, sizeof(*h->tab));
    if (!h->tab) {
        free(h);
        return NULL;
    }
    h->nsets = cap / WAYS;
    h->seed = c->seed;
    h->timeout_us = (int64_t)(c->timeout_ms ? c->timeout_ms : DEFAULT_TIMEOUT_MS) * 1000;
    h->st.capacity = cap;
    for (int i = 0; i < WINDOW_SLOTS; i++)
        h->window[i].sec = INT64_MIN;
    return h;
}

void lbw_hs_free(struct lbw_hs *h)
{
    if (!h)
        return;
    free(h->tab);
    free(h);
}

/* --- the outcome window and histograms ---------------------------------------------------- */

static int64_t floor_sec(int64_t us)
{
    return us >= 0 ? us / US_PER_S : -((-(us + 1)) / US_PER_S) - 1;
}

static void window_add(struct lbw_hs *h, int64_t when_us, int unanswered)
{
    int64_t sec = floor_sec(when_us);
    struct slot *s = &h->window[((sec % WINDOW_SLOTS) + WINDOW_SLOTS) % WINDOW_SLOTS];
    if (s->sec > sec)
        return;     /* the slot already holds a second 60 s later: this one left the window */
    if (s->sec < sec)
        *s = (struct slot){.sec = sec};
    s->decided++;
    s->unanswered += unanswered != 0;
}

static void observe(struct lbw_rtt_hist *hist, int64_t us)
{
    int i = 0;
    while (i < LBW_RTT_BUCKETS && us > lbw_rtt_bucket_us[i])
        i++;
    hist->bucket[i]++;
    hist->count++;
    hist->sum_us += us;
}

/* --- the table ------------------------------------------------------------------------------ */

static uint64_t mix(uint64_t h, uint64_t w)
{
    h ^= w;
    h *= 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 29);
}

static struct entry *set_of(const struct lbw_hs *h, const struct key *k)
{
    uint64_t w[sizeof(struct key) / 8];
    memcpy(w, k, sizeof(w));
    uint64_t x = h->seed;
    for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++)
        x = mix(x, w[i]);
    x ^= x >> 32;
    return h->tab + (size_t)(x & (h->nsets - 1)) * WAYS;
}

static int64_t first_seen(const struct entry *e)
{
    return (e->flags & F_HAVE_SYN) ? e->t_syn : e->t_synack;
}

static int expired(const struct lbw_hs *h, const struct entry *e, int64_t now)
{
    return now - first_seen(e) > h->timeout_us;
}

/* Ends an entry with an outcome dated when_us (if its SYN was seen) and frees it. */
static void finish(struct lbw_hs *h, struct entry *e, enum lbw_hs_outcome o, int64_t when_us)
{
    if (e->flags & F_HAVE_SYN) {
        h->st.outcomes[o]++;
        window_add(h, when_us, o != LBW_HS_COMPLETED);
    }
    memset(e, 0, sizeof(*e));
    h->st.entries--;
}

static void time_out(struct lbw_hs *h, struct entry *e)
{
    finish(h, e, LBW_HS_TIMEOUT, first_seen(e) + h->timeout_us);
}

/* The live entry for k, or NULL; an entry found past its timeout is timed out first. */
static struct entry *find(struct lbw_hs *h, const struct key *k, int64_t now)
{
    struct entry *set = set_of(h, k);
    for (int i = 0; i < WAYS; i++) {
        struct entry *e = &set[i];
        if (e->state == ST_FREE || memcmp(&e->k, k, sizeof(*k)) != 0)
            continue;
        if (!expired(h, e, now))
            return e;
        time_out(h, e);
        return NULL;
    }
    return NULL;
}

/* A free way for k: an empty one, else an expired one (timed out), else the oldest
 * (evicted). */
static struct entry *claim(struct lbw_hs *h, const struct key *k, int64_t now)
{
    struct entry *set = set_of(h, k);
    struct entry *oldest = &set[0];
    for (int i = 0; i < WAYS; i++) {
        if (set[i].state == ST_FREE)
            return &set[i];
        if (first_seen(&set[i]) < first_seen(oldest))
            oldest = &set[i];
    }
    if (expired(h, oldest, now)) {
        time_out(h, oldest);
    } else {
        memset(oldest, 0, sizeof(*oldest));
        h->st.entries--;
        h->st.evicted++;
    }
    return oldest;
}

static void insert(struct lbw_hs *h, const struct key *k, enum state st, int64_t now)
{
    struct entry *e = claim(h, k, now);
    e->k = *k;
    e->state = (uint8_t)st;
    if (st == ST_SYN) {
        e->flags = F_HAVE_SYN;
        e->t_syn = now;
    } else {
        e->t_synack = now;
    }
    h->st.entries++;
}

static void sweep(struct lbw_hs *h, int64_t now)
{
    size_t n = (size_t)h->nsets * WAYS;
    for (size_t i = 0; i < n && h->st.entries > 0; i++)
        if (h->tab[i].state != ST_FREE && expired(h, &h->tab[i], now))
            time_out(h, &h->tab[i]);
}

/* --- segments -------------------------------------------------------------------------------- */

static void make_key(struct key *k, const struct lbw_hs_segment *s, int client_is_src)
{
    size_t alen = s->family == 6 ? 16 : 4;
    memset(k, 0, sizeof(*k));
    k->family = s->family;
    memcpy(k->caddr, client_is_src ? s->src : s->dst, alen);
    memcpy(k->saddr, client_is_src ? s->dst : s->src, alen);
    k->cport = client_is_src ? s->sport : s->dport;
    k->sport = client_is_src ? s->dport : s->sport;
}

static void on_syn(struct lbw_hs *h, const struct lbw_hs_segment *s, int64_t now)
{
    struct key k;
    make_key(&k, s, 1);
    struct entry *e = find(h, &k, now);
    if (e)
        e->flags |= F_SYN_RETX;
    else
        insert(h, &k, ST_SYN, now);
}

static void on_synack(struct lbw_hs *h, const struct lbw_hs_segment *s, int64_t now)
{
    struct key k;
    make_key(&k, s, 0);
    struct entry *e = find(h, &k, now);
    if (!e) {
        insert(h, &k, ST_SYNACK, now);
    } else if (e->state == ST_SYNACK) {
        e->flags |= F_SYNACK_RETX;
    } else {
        if (s->dst_local && !(e->flags & F_SYN_RETX))
            observe(&h->st.rtt[LBW_HS_CLIENT], now - e->t_syn);
        e->state = ST_SYNACK;
        e->t_synack = now;
    }
}

static void on_ack(struct lbw_hs *h, const struct lbw_hs_segment *s, int64_t now)
{
    struct key k;
    make_key(&k, s, 1);
    struct entry *e = find(h, &k, now);
    if (!e)
        return;
    if (e->state == ST_SYNACK && s->dst_local && !(e->flags & F_SYNACK_RETX))
        observe(&h->st.rtt[LBW_HS_SERVER], now - e->t_synack);
    finish(h, e, LBW_HS_COMPLETED, now);
}

static void on_rst(struct lbw_hs *h, const struct lbw_hs_segment *s, int64_t now)
{
    struct key k;
    for (int client_is_src = 1; client_is_src >= 0; client_is_src--) {
        make_key(&k, s, client_is_src);
        struct entry *e = find(h, &k, now);
        if (e) {
            finish(h, e, LBW_HS_RESET, now);
            return;
        }
    }
}

static int64_t clamp_ts(int64_t ts_us)
{
    return ts_us < 0 ? 0 : ts_us > MAX_TS_US ? MAX_TS_US : ts_us;
}

/* Clamps a packet's timestamp into [latest packet, 2^62] and makes it the latest packet. */
static int64_t advance(struct lbw_hs *h, int64_t ts_us)
{
    ts_us = clamp_ts(ts_us);
    if (ts_us < h->now)
        ts_us = h->now;
    h->now = ts_us;
    return ts_us;
}

void lbw_hs_segment(struct lbw_hs *h, const struct lbw_hs_segment *s, int64_t ts_us)
{
    if (s->family != 4 && s->family != 6)
        return;
    ts_us = advance(h, ts_us);
    if (ts_us >= h->next_sweep) {
        sweep(h, ts_us);
        h->next_sweep = ts_us + SWEEP_EVERY_US;
    }
    uint8_t f = s->flags & (LBW_TCP_SYN | LBW_TCP_ACK | LBW_TCP_RST);
    if (f & LBW_TCP_RST) {
        if (h->st.entries)
            on_rst(h, s, ts_us);
    } else if (f == LBW_TCP_SYN) {
        on_syn(h, s, ts_us);
    } else if (f == (LBW_TCP_SYN | LBW_TCP_ACK)) {
        on_synack(h, s, ts_us);
    } else if (f == LBW_TCP_ACK && h->st.entries) {
        on_ack(h, s, ts_us);
    }
}

void lbw_hs_expire(struct lbw_hs *h, int64_t now_us)
{
    now_us = clamp_ts(now_us);
    sweep(h, now_us);
    if (now_us > h->swept_at)
        h->swept_at = now_us;
}

void lbw_hs_stats(const struct lbw_hs *h, struct lbw_hs_stats *out)
{
    *out = h->st;
    out->window_decided = out->window_unanswered = 0;
    int64_t now_sec = floor_sec(h->now > h->swept_at ? h->now : h->swept_at);
    for (int i = 0; i < WINDOW_SLOTS; i++) {
        const struct slot *s = &h->window[i];
        if (s->sec != INT64_MIN && s->sec <= now_sec && s->sec > now_sec - WINDOW_SLOTS) {
            out->window_decided += s->decided;
            out->window_unanswered += s->unanswered;
        }
    }
}

const char *lbw_hs_outcome_name(enum lbw_hs_outcome o)
{
    static const char *const names[LBW_HS_OUTCOMES] = {"completed", "reset", "timeout"};
    return (unsigned)o < LBW_HS_OUTCOMES ? names[o] : "unknown";
}

const char *lbw_hs_side_name(enum lbw_hs_side s)
{
    static const char *const names[LBW_HS_SIDES] = {"server", "client"};
    return (unsigned)s < LBW_HS_SIDES ? names[s] : "unknown";
}
