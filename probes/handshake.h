/* handshake.h - TCP three-way handshakes followed from captured segments: round-trip times,
 * outcomes and the SYN-without-completion ratio, in bounded memory.
 *
 * A handshake in progress lives in a fixed-size table (set-associative: 8 ways per set,
 * keyed by family, client address and port, server address and port with a seeded hash), so
 * memory never grows with traffic. A full set evicts its oldest entry (counted). Timing comes
 * from packet timestamps only, so a capture file is accounted the same way at any speed.
 *
 *   SYN (no ACK)      client -> server   creates the entry (a repeat is a retransmission)
 *   SYN+ACK           server -> client   client RTT = SYN+ACK - SYN when the client is local
 *   ACK (no SYN/RST)  client -> server   server RTT = ACK - SYN+ACK when the server is local;
 *                                        the handshake is complete
 *   RST               either way         the handshake is reset
 *   nothing within the timeout after the entry was created: it timed out.
 * Karn's rule: after a retransmitted SYN no client RTT is taken, after a retransmitted SYN+ACK
 * no server RTT. A SYN+ACK without a SYN seen creates an entry too (the server RTT can still
 * be measured), but only handshakes whose SYN was seen have an outcome. A segment for an
 * entry older than the timeout first times that entry out, so outcomes do not depend on when
 * the table is swept.
 *
 * Outcomes feed a 60 s window (60 one-second slots in packet time) from which the
 * SYN-unanswered ratio is read: (reset + timed out) / (completed + reset + timed out) among
 * handshakes decided in the window. A timeout is dated at SYN time + timeout.
 *
 * Depends on libc only.
 */
#ifndef LBW_HANDSHAKE_H
#define LBW_HANDSHAKE_H

#include <stddef.h>
#include <stdint.h>

/* Fixed histogram buckets in microseconds: 0.0001 ... 1 s, then +Inf. */
#define LBW_RTT_BUCKETS 13
extern const int64_t lbw_rtt_bucket_us[LBW_RTT_BUCKETS];
extern const char *const lbw_rtt_bucket_le[LBW_RTT_BUCKETS];    /* "0.0001" ... "1" */

struct lbw_rtt_hist {
    uint64_t bucket[LBW_RTT_BUCKETS + 1];  /* per bucket, not cumulative; last is +Inf */
    uint64_t count;
    int64_t sum_us;
};

enum lbw_hs_side { LBW_HS_SERVER = 0, LBW_HS_CLIENT, LBW_HS_SIDES };
enum lbw_hs_outcome { LBW_HS_COMPLETED = 0, LBW_HS_RESET, LBW_HS_TIMEOUT, LBW_HS_OUTCOMES };

struct lbw_hs_config {
    uint32_t capacity;      /* entries; rounded up to a power of two, at least 8;
                               0 = 65536 (about 4 MiB) */
    uint32_t timeout_ms;    /* handshake must complete within; 0 = 3000 */
    uint64_t seed;          /* hash seed (take it from a random source in production) */
};

/* One TCP segment as the tracker needs it. Addresses are 4 (family 4) or 16 bytes. */
struct lbw_hs_segment {
    const uint8_t *src, *dst;
    uint8_t family;
    uint8_t flags;          /* LBW_TCP_* from pktdecode.h */
    uint16_t sport, dport;
    uint8_t src_local, dst_local;   /* the address is one of this host's */
};

struct lbw_hs_stats {
    struct lbw_rtt_hist rtt[LBW_HS_SIDES];
    uint64_t outcomes[LBW_HS_OUTCOMES];
    uint64_t evicted;       /* entries pushed out by a full set */
    uint64_t entries, capacity;
    uint64_t window_decided, window_unanswered;   /* the 60 s up to the latest packet or
                                                     lbw_hs_expire time, see above */
};

struct lbw_hs;

/* A new tracker, or NULL when memory runs out. */
struct lbw_hs *lbw_hs_new(const struct lbw_hs_config *c);
void lbw_hs_free(struct lbw_hs *h);

/* Follows one TCP segment seen at ts_us (microseconds since the epoch). Segments without
 * SYN, ACK or RST are ignored. Timestamps are clamped to [0, 2^62]; one going backwards is
 * taken as the latest seen. */
void lbw_hs_segment(struct lbw_hs *h, const struct lbw_hs_segment *s, int64_t ts_us);

/* Times out every entry older than the timeout at now_us; call it when no packets arrive
 * (a live capture's timer, the end of a file). It does not move the packets' clock (a packet
 * stamped before now_us but handled after still counts at its own time); the window is read
 * as of the later of the two. */
void lbw_hs_expire(struct lbw_hs *h, int64_t now_us);

/* Copies the counters (the window as of the latest time seen). */
void lbw_hs_stats(const struct lbw_hs *h, struct lbw_hs_stats *out);

/* "completed", "reset", "timeout"; "server", "client". */
const char *lbw_hs_outcome_name(enum lbw_hs_outcome o);
const char *lbw_hs_side_name(enum lbw_hs_side s);

#endif
