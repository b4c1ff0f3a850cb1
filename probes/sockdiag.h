/* sockdiag.h - TCP as the kernel sees it on the balancer's own ports: round-trip times of the
 * connections, connections by state, and the listen queues, through NETLINK_SOCK_DIAG (the
 * interface `ss` uses; no privileges needed), for `lbwatch agent`.
 *
 * One collection sends one dump request per address family (IPv4, IPv6) for TCP sockets in
 * every state whose local port is one of the configured ports (the kernel filters by port with
 * inet_diag bytecode, so the host's other sockets never cross into user space), asking for
 * struct tcp_info (INET_DIAG_INFO) with each. Replies are parsed with bounds checks on every
 * netlink message and attribute (lbw_sockdiag_parse, fuzzed) into a fixed-size tally per port.
 *
 * The RTT summary is a snapshot of the connections open at the moment (tcpi_rtt, the kernel's
 * smoothed RTT; sockets without a measurement yet are left out): exact count, sum, min and
 * max, and quantiles from a log-scale histogram of 4 buckets per power of two of
 * microseconds (each bucket spans at most 25 % of its lower bound; a quantile is the middle of
 * its rank's share of the bucket, clamped to [min, max]; the lowest rank is min and the top
 * rank max exactly). Memory per port is fixed whatever the number
 * of connections; the work is one pass over the port's sockets.
 *
 * Metrics, all with label port="<n>" (and the emitter's base labels):
 *   lbwatch_tcp_connections{state}          sockets by state: established syn_sent syn_recv
 *                                           fin_wait1 fin_wait2 time_wait close close_wait
 *                                           last_ack listen closing
 *   lbwatch_tcp_rtt_seconds_count           connections with an RTT measurement
 *   lbwatch_tcp_rtt_seconds_sum             their RTTs added up
 *   lbwatch_tcp_rtt_seconds{quantile}       0.5, 0.9, 0.99      (only with count > 0)
 *   lbwatch_tcp_rtt_seconds_min, _max, _avg                     (only with count > 0)
 *   lbwatch_tcp_listeners                   listening sockets (several with SO_REUSEPORT, and
 *                                           one per family)
 *   lbwatch_tcp_listen_queue_length         connections waiting in accept queues (idiag_rqueue
 *                                           of the listeners, added up)
 *   lbwatch_tcp_listen_queue_max            their backlogs added up (idiag_wqueue)
 *   lbwatch_tcp_listen_queue_fullest_ratio  the fullest listener's length / backlog: one
 *                                           SO_REUSEPORT listener can overflow while the sum
 *                                           looks fine
 * (the listen metrics only when the port has a listener).
 *
 * Depends on probes/sample only.
 */
#ifndef LBW_SOCKDIAG_H
#define LBW_SOCKDIAG_H

#include <stddef.h>
#include <stdint.h>

#include "probes/sample.h"

#define LBW_SOCKDIAG_PORTS_MAX 32
#define LBW_SOCKDIAG_RTT_BUCKETS 128  /* 4 per power of two of microseconds, up to 2^32 us */
#define LBW_SOCKDIAG_STATES 12        /* kernel TCP state numbers 0..11 (1 = ESTABLISHED) */

/* What one port's sockets looked like. */
struct lbw_sockdiag_port {
    uint16_t port;
    uint32_t states[LBW_SOCKDIAG_STATES];  /* sockets by kernel TCP state number */
    uint32_t listeners;
    uint64_t listen_queue;                 /* sum of the listeners' accept-queue lengths */
    uint64_t listen_max;                   /* sum of their backlogs */
    double listen_fullest;                 /* largest length / backlog among them */
    uint32_t rtt_count;
    double rtt_sum;                        /* seconds */
    double rtt_min;
    double rtt_max;
    uint32_t rtt_hist[LBW_SOCKDIAG_RTT_BUCKETS];
};

/* One collection's tally over every configured port. */
struct lbw_sockdiag_tally {
    uint32_t seq;          /* only replies carrying this sequence number count */
    int done;              /* NLMSG_DONE seen */
    int error;             /* errno the kernel answered with (NLMSG_ERROR), 0 if none */
    int interrupted;       /* NLM_F_DUMP_INTR: the tables changed during the dump */
    uint64_t sockets;      /* socket messages received, ours or not (the kernel's port
                              filter should leave only ours) */
    size_t nports;
    struct lbw_sockdiag_port ports[LBW_SOCKDIAG_PORTS_MAX];
};

/* Starts an empty tally for ports[n] (n <= LBW_SOCKDIAG_PORTS_MAX, extra ones ignored) that
 * accepts replies with sequence number seq. */
void lbw_sockdiag_tally_init(struct lbw_sockdiag_tally *t, const uint16_t *ports, size_t n,
                             uint32_t seq);

/* Adds the netlink messages in buf[len] (one recvmsg's worth; any alignment) to the tally.
 * Messages with another sequence number, and sockets on other ports, are skipped. Returns 1
 * once NLMSG_DONE is seen (t->done), 0 when more should follow, or -1 when the kernel reported
 * an error (t->error) or a message or attribute is malformed (a length that runs past its
 * container, a socket message shorter than struct inet_diag_msg). */
int lbw_sockdiag_parse(struct lbw_sockdiag_tally *t, const void *buf, size_t len);

/* Adds one RTT measurement (microseconds, > 0) to a port's summary. */
void lbw_sockdiag_add_rtt(struct lbw_sockdiag_port *p, uint32_t rtt_us);

/* The q-quantile (0 < q <= 1) of a port's RTTs in seconds, from the histogram; NaN when it has
 * none. */
double lbw_sockdiag_rtt_quantile(const struct lbw_sockdiag_port *p, double q);

/* Emits a tally as the metrics above. Returns the number of samples emitted. */
int lbw_sockdiag_emit(const struct lbw_sockdiag_tally *t, const struct lbw_emitter *e);

struct lbw_sockdiag;

/* A collector for ports[n] (1 to LBW_SOCKDIAG_PORTS_MAX distinct ports, none 0) with its
 * netlink socket (replies time out after timeout_ms; 0 = 2 s). Returns 0, or -1 with a reason
 * in err. */
int lbw_sockdiag_new(struct lbw_sockdiag **out, const uint16_t *ports, size_t n,
                     unsigned timeout_ms, char *err, size_t errlen);
void lbw_sockdiag_free(struct lbw_sockdiag *d);

/* Dumps the IPv4 and then the IPv6 sockets of the ports into a fresh tally (IPv6 missing from
 * the kernel is not an error). Returns 0, or -1 with a reason in err (send or receive failed
 * or timed out, the kernel refused the request, a reply was malformed). */
int lbw_sockdiag_scan(struct lbw_sockdiag *d, char *err, size_t errlen);

/* The tally of the last successful scan (empty before the first). */
const struct lbw_sockdiag_tally *lbw_sockdiag_tally(const struct lbw_sockdiag *d);

/* lbw_sockdiag_scan, then lbw_sockdiag_emit. Returns samples emitted, or -1. */
int lbw_sockdiag_collect(struct lbw_sockdiag *d, const struct lbw_emitter *e, char *err,
                         size_t errlen);

/* A NETLINK_SOCK_DIAG socket whose receives time out after timeout_ms (0 = 2 s), close-on-exec.
 * Returns the descriptor, or -1 with errno set. */
int lbw_sockdiag_socket(unsigned timeout_ms);

/* Counts the host's listening TCP sockets, counts[0] IPv4 and counts[1] IPv6, with a dump
 * restricted to the LISTEN state: the kernel then walks only its listening hash, where reading
 * /proc/net/tcp{,6} walks every socket of the host (each file the whole established hash,
 * TIME_WAIT included). fd from lbw_sockdiag_socket; *seq numbers the requests (advanced here);
 * replies are received into buf[size] (32 KiB or more). Returns 0, or -1 with a reason in
 * err. */
int lbw_sockdiag_count_listening(int fd, uint32_t *seq, void *buf, size_t size,
                                 uint64_t counts[2], char *err, size_t errlen);

#endif
