/* capture.h - feeding the traffic engine (probes/traffic) with packets: a live capture on a
 * network interface driven by a libuv loop, an offline reader of capture files, and the
 * interface's own addresses (the "local" side of the direction rule).
 *
 * Live capture: pcap_create on the interface, snapshot length (2048 bytes by default: enough
 * for the headers and a ClientHello in one segment), no promiscuous mode, immediate mode (each
 * packet is delivered at once, no buffering timeout), a BPF filter (by default IP only:
 * "ip or ip6", plus "or (vlan and (ip or ip6))" on Ethernet), non-blocking. The selectable
 * descriptor is watched by a uv_poll_t; when readable, queued packets are handed to the
 * engine in batches (at most 4096 per wake-up so the loop stays responsive). A timer
 * times out stale handshakes by the wall clock (the clock packet timestamps come from) and
 * refreshes the kernel's drop counters. When reading fails (the interface went away) the
 * capture stops and reports once through on_error; close it and open a new one to retry.
 *
 * The capture owns its pcap handle, poll handle and timer; the engine stays the caller's and
 * must outlive the capture. Runs on the loop's thread only. Depends on probes/ and libpcap,
 * libuv.
 */
#ifndef LBW_CAPTURE_H
#define LBW_CAPTURE_H

#include <pcap/pcap.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "probes/sample.h"
#include "probes/traffic.h"

#define LBW_CAPTURE_EPERM (-2)  /* lbw_capture_open: the system refused permission */

/* Sees every packet after the engine accounted it (e.g. to write it out with pcap_dump). */
typedef void (*lbw_capture_tap_fn)(void *arg, const struct pcap_pkthdr *h, const u_char *bytes);

/* Reports a failure of a running capture, once; msg is valid during the call. */
typedef void (*lbw_capture_error_fn)(void *arg, const char *msg);

struct lbw_capture_opts {
    const char *iface;              /* "eth0", "lo", "any" (all interfaces) */
    const char *filter;             /* BPF filter; NULL = IP only (see above) */
    int snaplen;                    /* bytes kept per packet; 0 = 2048 */
    int buffer_bytes;               /* kernel ring buffer; 0 = 8 MiB */
    uint32_t expire_interval_ms;    /* handshake timeouts and drop counters; 0 = 1000 */
    lbw_capture_tap_fn tap;         /* optional */
    void *tap_arg;
    lbw_capture_error_fn on_error;  /* optional */
    void *error_arg;
};

struct lbw_capture_stats {
    uint64_t packets;               /* handed to the engine */
    uint64_t kernel_dropped;        /* dropped for lack of buffer space (pcap_stats ps_drop) */
    uint64_t if_dropped;            /* dropped by the interface or its driver (ps_ifdrop) */
    int running;                    /* 0 after a failure */
};

struct lbw_capture;

/* Starts capturing on o->iface into t. Returns 0, LBW_CAPTURE_EPERM when capturing is not
 * permitted (no CAP_NET_RAW), or -1 for any other failure (no such interface, bad filter);
 * err says why. A failure after the loop handles were made closes them on the next loop
 * run. */
int lbw_capture_open(struct lbw_capture **out, uv_loop_t *loop, struct lbw_traffic *t,
                     const struct lbw_capture_opts *o, char *err, size_t errlen);

/* The pcap handle, for pcap_dump_open() by a tap and pcap_datalink(); never read from it. */
pcap_t *lbw_capture_pcap(struct lbw_capture *c);

/* Hands every packet queued right now to the engine (e.g. before closing, so that nothing
 * captured is lost). Returns the number of packets, or -1 if reading failed. */
int lbw_capture_drain(struct lbw_capture *c);

void lbw_capture_stats(const struct lbw_capture *c, struct lbw_capture_stats *out);

/* lbwatch_traffic_capture_packets_total, lbwatch_traffic_capture_dropped_total{where=
 * "kernel|interface"} (as of the last timer tick), lbwatch_traffic_capture_up (1, or 0
 * after a failure). */
void lbw_capture_emit(const struct lbw_capture *c, const struct lbw_emitter *e);

/* Stops capturing and closes the handles; the capture is freed once libuv has closed them
 * (run the loop). No callback runs after this. */
void lbw_capture_close(struct lbw_capture *c);

/* Accounts every packet of a pcap or pcapng file into t, then times out the handshakes that
 * were already stale at the latest packet time in the file. *packets (optional) gets the
 * number read. Returns 0, or -1 with err set (cannot open, corrupt file; packets read before
 * a corrupt record stay accounted). */
int lbw_capture_file(struct lbw_traffic *t, const char *path, uint64_t *packets, char *err,
                     size_t errlen);

/* The addresses of interface iface ("any" or NULL: of every interface) as local prefixes:
 * a single address each (/32, /128), except on loopback interfaces, whose whole prefix is
 * local (127.0.0.0/8). Duplicates are dropped. Returns how many were written to out (at most
 * max), or -1 with err set. */
int lbw_capture_local_addrs(const char *iface, struct lbw_netaddr *out, size_t max, char *err,
                            size_t errlen);

#endif
