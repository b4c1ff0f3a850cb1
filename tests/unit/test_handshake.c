/* test_handshake.c - the TCP handshake tracker: server- and client-side RTTs into the right
 * buckets, Karn's rule, outcomes (completed, reset, timed out - also for a late ACK), the
 * 60 s window behind the SYN ratio, eviction from a full set and bounded memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "probes/handshake.h"
#include "probes/pktdecode.h"

#define SYN LBW_TCP_SYN
#define ACK LBW_TCP_ACK
#define RST LBW_TCP_RST
#define SYNACK (LBW_TCP_SYN | LBW_TCP_ACK)
#define T0 1700000000000000LL       /* µs */

static const uint8_t srv[4] = {10, 0, 0, 1};
static const uint8_t cli[4] = {192, 0, 2, 7};

/* A segment between the client (cli:cport) and the server (srv:443); to_server says which
 * way it goes; locality is given for the client and the server. */
static struct lbw_hs_segment seg(uint16_t cport, int to_server, uint8_t flags, int cli_local,
                                 int srv_local)
{
    struct lbw_hs_segment s = {.family = 4, .flags = flags};
    s.src = to_server ? cli : srv;
    s.dst = to_server ? srv : cli;
    s.sport = to_server ? cport : 443;
    s.dport = to_server ? 443 : cport;
    s.src_local = (uint8_t)(to_server ? cli_local : srv_local);
    s.dst_local = (uint8_t)(to_server ? srv_local : cli_local);
    return s;
}

static void feed(struct lbw_hs *h, uint16_t cport, int to_server, uint8_t flags, int64_t t,
                 int cli_local, int srv_local)
{
    struct lbw_hs_segment s = seg(cport, to_server, flags, cli_local, srv_local);
    lbw_hs_segment(h, &s, t);
}

static struct lbw_hs *tracker(uint32_t capacity, uint32_t timeout_ms)
{
    struct lbw_hs_config c = {.capacity = capacity, .timeout_ms = timeout_ms, .seed = 42};
    struct lbw_hs *h = lbw_hs_new(&c);
    assert_non_null(h);
    return h;
}

static void server_side_rtt(void **state)
{
    (void)state;
    struct lbw_hs *h = tracker(0, 0);
    feed(h, 50000, 1, SYN, T0, 0, 1);
    feed(h, 50000, 0, SYNACK, T0 + 100, 0, 1);
    feed(h, 50000, 1, ACK, T0 + 350, 0, 1);
    struct lbw_hs_stats st;
    lbw_hs_stats(h, &st);
    assert_int_equal(st.rtt[LBW_HS_SERVER].count, 1);
    assert_int_equal(st.rtt[LBW_HS_SERVER].sum_us, 250);
    assert_int_equal(st.rtt[LBW_HS_SERVER].bucket[1], 1);    /* le 0.00025 */
    assert_int_equal(st.rtt[LBW_HS_CLIENT].count, 0);         /* the client is not local */
    assert_int_equal(st.outcomes[LBW_HS_COMPLETED], 1);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.capacity, 65536);
    assert_int_equal(st.window_decided, 1);
    assert_int_equal(st.window_unanswered, 0);
    lbw_hs_free(h);
}

static void client_side_and_loopback(void **state)
{
    (void)state;
    struct lbw_hs *h = tracker(64, 0);
    feed(h, 50001, 1, SYN, T0, 1, 0);                  /* this host is the client */
    feed(h, 50001, 0, SYNACK, T0 + 5000, 1, 0);
    feed(h, 50001, 1, ACK, T0 + 5010, 1, 0);
    feed(h, 50002, 1, SYN, T0 + 6000, 1, 1);           /* loopback: both ends local */
    feed(h, 50002, 0, SYNACK, T0 + 6100, 1, 1);
    feed(h, 50002, 1, ACK, T0 + 1106101, 1, 1);        /* 1.1 s: past the last bucket */
    struct lbw_hs_stats st;
    lbw_hs_stats(h, &st);
    assert_int_equal(st.rtt[LBW_HS_CLIENT].count, 2);
    assert_int_equal(st.rtt[LBW_HS_CLIENT].bucket[5], 1);    /* 5000 µs: le 0.005 */
    assert_int_equal(st.rtt[LBW_HS_CLIENT].bucket[0], 1);    /* 100 µs: le 0.0001 */
    assert_int_equal(st.rtt[LBW_HS_SERVER].count, 1);
    assert_int_equal(st.rtt[LBW_HS_SERVER].bucket[LBW_RTT_BUCKETS], 1);   /* +Inf */
    assert_int_equal(st.rtt[LBW_HS_SERVER].sum_us, 1100001);
    assert_int_equal(st.outcomes[LBW_HS_COMPLETED], 2);
    lbw_hs_free(h);
}

static void bucket_edges(void **state)
{
    (void)state;
    struct lbw_hs *h = tracker(64, 0);
    int64_t rtts[] = {100, 101, 1000000, 1000001};
    for (int i = 0; i < 4; i++) {
        int64_t t = T0 + i * 2000000;   /* times must not go backwards */
        feed(h, (uint16_t)(40000 + i), 1, SYN, t, 0, 1);
        feed(h, (uint16_t)(40000 + i), 0, SYNACK, t, 0, 1);
        feed(h, (uint16_t)(40000 + i), 1, ACK, t + rtts[i], 0, 1);
    }
    struct lbw_hs_stats st;
    lbw_hs_stats(h, &st);
    const struct lbw_rtt_hist *r = &st.rtt[LBW_HS_SERVER];
    assert_int_equal(r->bucket[0], 1);
    assert_int_equal(r->bucket[1], 1);
    assert_int_equal(r->bucket[LBW_RTT_BUCKETS - 1], 1);
    assert_int_equal(r->bucket[LBW_RTT_BUCKETS], 1);
    assert_string_equal(lbw_rtt_bucket_le[0], "0.0001");
    assert_string_equal(lbw_rtt_bucket_le[LBW_RTT_BUCKETS - 1], "1");
    lbw_hs_free(h);
}

static void karn(void **state)
{
    (void)state;
    struct lbw_hs *h = tracker(64, 0);
    feed(h, 50000, 1, SYN, T0, 1, 1);
    feed(h, 50000, 1, SYN, T0 + 1000000, 1, 1);        /* SYN retransmitted */
    feed(h, 50000, 0, SYNACK, T0 + 1000100, 1, 1);
    feed(h, 50000, 0, SYNACK, T0 + 1200000, 1, 1);     /* SYN+ACK retransmitted */
    feed(h, 50000, 1, ACK, T0 + 1200050, 1, 1);
    struct lbw_hs_stats st;
    lbw_hs_stats(h, &st);
    assert_int_equal(st.rtt[LBW_HS_CLIENT].count, 0);
    assert_int_equal(st.rtt[LBW_HS_SERVER].count, 0);
    assert_int_equal(st.outcomes[LBW_HS_COMPLETED], 1);
    lbw_hs_free(h);
}

static void reset_and_timeout(void **state)
{
    (void)state;
    struct lbw_hs *h = tracker(64, 3000);
    feed(h, 50000, 1, SYN, T0, 0, 1);
    feed(h, 50000, 0, RST | ACK, T0 + 20, 0, 1);       /* closed port */
    feed(h, 50001, 1, SYN, T0 + 100, 0, 1);            /* never answered */
    feed(h, 50002, 1, SYN, T0 + 100, 0, 1);
    feed(h, 50002, 0, SYNACK, T0 + 200, 0, 1);
    feed(h, 50002, 1, RST, T0 + 300, 0, 1);            /* client gives up */
    struct lbw_hs_stats st;
    lbw_hs_stats(h, &st);
    assert_int_equal(st.outcomes[LBW_HS_RESET], 2);
    assert_int_equal(st.entries, 1);
    lbw_hs_expire(h, T0 + 100 + 3000000);              /* exactly the timeout: not yet */
    lbw_hs_stats(h, &st);
    assert_int_equal(st.outcomes[LBW_HS_TIMEOUT], 0);
    lbw_hs_expire(h, T0 + 100 + 3000001);
    lbw_hs_stats(h, &st);
    assert_int_equal(st.outcomes[LBW_HS_TIMEOUT], 1);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.window_decided, 3);
    assert_int_equal(st.window_unanswered, 3);
    lbw_hs_free(h);
}

/* An ACK after the timeout does not complete the handshake, whether or not a sweep ran. */
static void late_ack(void **state)
{
    (void)state;
    struct lbw_hs *h = tracker(64, 1000);
    feed(h, 50000, 1, SYN, T0, 0, 1);
    feed(h, 50000, 0, SYNACK, T0 + 10, 0, 1);
    feed(h, 50000, 1, ACK, T0 + 1000001, 0, 1);
    struct lbw_hs_stats st;
    lbw_hs_stats(h, &st);
    assert_int_equal(st.outcomes[LBW_HS_TIMEOUT], 1);
    assert_int_equal(st.outcomes[LBW_HS_COMPLETED], 0);
    assert_int_equal(st.rtt[LBW_HS_SERVER].count, 0);
    lbw_hs_free(h);
}

/* Outcomes older than 60 s leave the ratio's window but stay in the totals. */
static void window(void **state)
{
    (void)state;
    struct lbw_hs *h = tracker(64, 0);
    feed(h, 50000, 1, SYN, T0, 0, 1);
    feed(h, 50000, 0, RST | ACK, T0 + 10, 0, 1);
    struct lbw_hs_stats st;
    lbw_hs_stats(h, &st);
    assert_int_equal(st.window_decided, 1);
    assert_int_equal(st.window_unanswered, 1);
    feed(h, 50001, 1, SYN, T0 + 59000000, 0, 1);
    feed(h, 50001, 0, SYNACK, T0 + 59000010, 0, 1);
    feed(h, 50001, 1, ACK, T0 + 59000020, 0, 1);
    lbw_hs_stats(h, &st);
    assert_int_equal(st.window_decided, 2);
    assert_int_equal(st.window_unanswered, 1);
    lbw_hs_expire(h, T0 + 61000000);
    lbw_hs_stats(h, &st);
    assert_int_equal(st.window_decided, 1);
    assert_int_equal(st.window_unanswered, 0);
    assert_int_equal(st.outcomes[LBW_HS_RESET], 1);
    assert_int_equal(st.outcomes[LBW_HS_COMPLETED], 1);
    lbw_hs_free(h);
}

/* A SYN+ACK whose SYN was not seen: the server RTT still counts, no outcome is counted. */
static void synack_without_syn(void **state)
{
    (void)state;
    struct lbw_hs *h = tracker(64, 0);
    feed(h, 50000, 0, SYNACK, T0, 0, 1);
    feed(h, 50000, 1, ACK, T0 + 700, 0, 1);
    struct lbw_hs_stats st;
    lbw_hs_stats(h, &st);
    assert_int_equal(st.rtt[LBW_HS_SERVER].count, 1);
    assert_int_equal(st.outcomes[LBW_HS_COMPLETED], 0);
    assert_int_equal(st.entries, 0);
    lbw_hs_free(h);
}

/* The smallest table is one set of 8: a ninth handshake evicts the oldest. */
static void eviction(void **state)
{
    (void)state;
    struct lbw_hs *h = tracker(1, 0);
    for (int i = 0; i < 9; i++)
        feed(h, (uint16_t)(50000 + i), 1, SYN, T0 + i, 0, 1);
    struct lbw_hs_stats st;
    lbw_hs_stats(h, &st);
    assert_int_equal(st.capacity, 8);
    assert_int_equal(st.entries, 8);
    assert_int_equal(st.evicted, 1);
    /* 50000 was evicted: its ACK finds nothing; 50001 is still there */
    feed(h, 50000, 0, SYNACK, T0 + 100, 0, 1);  /* evicts 50001 in turn */
    feed(h, 50000, 1, ACK, T0 + 200, 0, 1);
    feed(h, 50002, 0, SYNACK, T0 + 300, 0, 1);
    feed(h, 50002, 1, ACK, T0 + 400, 0, 1);
    lbw_hs_stats(h, &st);
    assert_int_equal(st.evicted, 2);
    assert_int_equal(st.outcomes[LBW_HS_COMPLETED], 1);   /* 50002 only: 50000 lost its SYN */
    assert_int_equal(st.rtt[LBW_HS_SERVER].count, 2);
    lbw_hs_free(h);
}

/* Memory stays fixed however many handshakes arrive. */
static void bounded(void **state)
{
    (void)state;
    struct lbw_hs *h = tracker(64, 0);
    uint8_t src[4] = {198, 51, 100, 0};
    for (uint32_t i = 0; i < 100000; i++) {
        src[3] = (uint8_t)(i >> 16);
        struct lbw_hs_segment s = {.src = src, .dst = srv, .family = 4, .flags = SYN,
                                   .sport = (uint16_t)i, .dport = 443, .dst_local = 1};
        lbw_hs_segment(h, &s, T0 + i);
    }
    struct lbw_hs_stats st;
    lbw_hs_stats(h, &st);
    assert_int_equal(st.capacity, 64);
    assert_true(st.entries <= 64);
    assert_int_equal(st.evicted + st.entries, 100000);
    lbw_hs_free(h);
}

/* Timestamps out of order (CPUs delivering to the ring) count as the latest seen. */
static void time_going_backwards(void **state)
{
    (void)state;
    struct lbw_hs *h = tracker(64, 0);
    feed(h, 50000, 1, SYN, T0 + 500, 1, 1);
    feed(h, 50000, 0, SYNACK, T0 + 400, 1, 1);
    feed(h, 50000, 1, ACK, T0 + 450, 1, 1);
    struct lbw_hs_stats st;
    lbw_hs_stats(h, &st);
    assert_int_equal(st.rtt[LBW_HS_CLIENT].sum_us, 0);
    assert_int_equal(st.rtt[LBW_HS_SERVER].sum_us, 0);
    assert_int_equal(st.rtt[LBW_HS_SERVER].bucket[0], 1);
    lbw_hs_expire(h, -5);                           /* clamped: nothing goes wrong */
    feed(h, 50001, 1, SYN, INT64_MAX, 1, 1);
    lbw_hs_expire(h, INT64_MAX);
    lbw_hs_stats(h, &st);
    assert_int_equal(st.entries, 1);
    lbw_hs_free(h);
}

/* A live capture's timer may run ahead of packets still queued: they keep their own times. */
static void expire_keeps_packet_clock(void **state)
{
    (void)state;
    struct lbw_hs *h = tracker(64, 0);
    feed(h, 50000, 1, SYN, T0, 0, 1);
    feed(h, 50000, 0, SYNACK, T0 + 100, 0, 1);
    lbw_hs_expire(h, T0 + 5000);
    feed(h, 50000, 1, ACK, T0 + 400, 0, 1);
    struct lbw_hs_stats st;
    lbw_hs_stats(h, &st);
    assert_int_equal(st.rtt[LBW_HS_SERVER].sum_us, 300);
    assert_int_equal(st.outcomes[LBW_HS_COMPLETED], 1);
    lbw_hs_expire(h, T0 + 70000000);                /* the window follows the timer too */
    lbw_hs_stats(h, &st);
    assert_int_equal(st.window_decided, 0);
    lbw_hs_free(h);
}

static void families_are_distinct(void **state)
{
    (void)state;
    struct lbw_hs *h = tracker(64, 0);
    uint8_t a6[16] = {10, 0, 0, 1}, b6[16] = {192, 0, 2, 7};
    struct lbw_hs_segment s6 = {.src = b6, .dst = a6, .family = 6, .flags = SYN, .sport = 50000,
                                .dport = 443, .dst_local = 1};
    lbw_hs_segment(h, &s6, T0);
    feed(h, 50000, 0, SYNACK, T0 + 10, 0, 1);       /* IPv4 with the same leading bytes */
    feed(h, 50000, 1, ACK, T0 + 20, 0, 1);
    struct lbw_hs_stats st;
    lbw_hs_stats(h, &st);
    assert_int_equal(st.outcomes[LBW_HS_COMPLETED], 0);
    assert_int_equal(st.entries, 0 + 1);             /* the IPv6 SYN is still waiting */
    struct lbw_hs_segment bad = {.src = b6, .dst = a6, .family = 5, .flags = SYN};
    lbw_hs_segment(h, &bad, T0 + 30);               /* no such family: ignored */
    lbw_hs_stats(h, &st);
    assert_int_equal(st.entries, 1);
    assert_string_equal(lbw_hs_outcome_name(LBW_HS_TIMEOUT), "timeout");
    assert_string_equal(lbw_hs_side_name(LBW_HS_CLIENT), "client");
    lbw_hs_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(server_side_rtt),    cmocka_unit_test(client_side_and_loopback),
        cmocka_unit_test(bucket_edges),       cmocka_unit_test(karn),
        cmocka_unit_test(reset_and_timeout),  cmocka_unit_test(late_ack),
        cmocka_unit_test(window),             cmocka_unit_test(synack_without_syn),
        cmocka_unit_test(eviction),           cmocka_unit_test(bounded),
        cmocka_unit_test(time_going_backwards), cmocka_unit_test(expire_keeps_packet_clock),
        cmocka_unit_test(families_are_distinct),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
