/* transport.h - libraft's raft_uv_transport over mutual TLS, and side channels on the same
 * port.
 *
 * Every node listens on one TCP port (its raft address). Every connection, in either
 * direction, starts with a TLS handshake (1.3 preferred, 1.2 minimum) in which both sides
 * present a certificate issued by the cluster CA. Identities come from verified certificates
 * only (raft/identity.h), never from the wire:
 *   - accepting: the peer must present a valid node certificate of the cluster CA; its raft id
 *     is read from that certificate;
 *   - dialling: the server's certificate must name exactly the raft id being dialled.
 * Then the dialling side sends a one-byte channel tag and a short preamble:
 *   'R'  a raft stream: u8 address length, the dialler's own raft address (informational; raft
 *        gets the certificate's id with it). The TLS session is then pumped to one end of a
 *        socketpair whose other end libraft receives as a raft_malloc'd uv_pipe_t (connect_cb
 *        or accept_cb), with back-pressure both ways.
 *   'F'  a side channel (raft/forward.h): the TLS session itself is handed to the owner of the
 *        side channels.
 * The accepting side answers an accepted preamble with the tag byte, in a TLS record of its
 * own, and only then does the dial complete: a dialler the server refused (in TLS 1.3 the
 * server judges the client certificate after the client's handshake is over) sees its dial
 * fail, rather than getting a stream that dies on first use.
 * A refused peer (no certificate, another CA, expired or not yet valid, not a node certificate,
 * id mismatch, handshake failure, bad preamble) is reported through on_refusal with its address
 * and the reason, and counted, by the side that refused it (a dialler also reports the TLS
 * alert with which a server refused it). A peer that merely hangs up, during the handshake or
 * before the first byte of its preamble, is not a refusal. A raft dial that fails for any
 * reason completes with RAFT_NOCONNECTION.
 *
 * Every connection must get through the handshake, the preamble and the answer within
 * handshake_timeout_ms. A raft stream ends when either side ends it: what is queued for the
 * other side is flushed first, then the other side sees EOF (libraft's end of the socketpair
 * is closed and freed by libraft, as with its own TCP transport).
 *
 * libraft's close method stops listening, cancels dials in progress (a raft dial completes
 * with RAFT_CANCELED, a side dial with UV_ECANCELED), closes connections still being set up
 * and the pumps of established raft streams, and calls back once all of them have closed.
 *
 * All of it runs on the loop thread; callbacks never run inside a call into this module.
 * libraft owns struct raft_uv_transport's `data`; this module keeps its state in `impl`. The
 * process must ignore SIGPIPE (writes to a socketpair whose other end is gone).
 */
#ifndef LBW_TRANSPORT_H
#define LBW_TRANSPORT_H

#include <raft.h>
#include <raft/uv.h>
#include <stdint.h>
#include <uv.h>

#include "probes/tlsio.h"
#include "raft/identity.h"
#include "raft/peer.h"

#define LBW_CHANNEL_RAFT 'R'
#define LBW_CHANNEL_SIDE 'F'

/* Refusal kinds and their names (lbw_refusal_name) are raft/peer.h's. */

struct lbw_transport_config {
    uv_loop_t *loop;
    const char *ca_file;        /* the cluster CA */
    const char *cert_file;      /* this node's certificate and key */
    const char *key_file;
    uint64_t handshake_timeout_ms;  /* 0 = 5000 */
    void *arg;
    /* A connection was refused. peer is "a.b.c.d:port"; reason is for humans. */
    void (*on_refusal)(void *arg, const char *peer, enum lbw_refusal kind, const char *reason);
    /* A side channel was accepted from a verified peer. The callee owns io from now on (it
     * must eventually lbw_tlsio_close it). */
    void (*on_side_channel)(void *arg, struct lbw_tlsio *io, const struct lbw_identity *peer);
};

/* Fills t (which must be zeroed) with the transport's methods and state. Checks that the
 * certificate and key load, match, and carry a node identity. Returns 0, or -1 with err. */
int lbw_transport_init(struct raft_uv_transport *t, const struct lbw_transport_config *cfg,
                       char *err, size_t errlen);

/* Frees what lbw_transport_init allocated. Only after libraft has closed the transport (its
 * close method's callback ran), or if libraft never initialised it (raft_init failed or was
 * never called) and no side dial is in progress. */
void lbw_transport_free(struct raft_uv_transport *t);

/* This node's identity, from its certificate. */
const struct lbw_identity *lbw_transport_self(const struct raft_uv_transport *t);

/* Opens a side channel to node id at address ("a.b.c.d:port"): TLS with the same checks as
 * raft connections, then the 'F' tag and the answer. cb gets the session (the caller owns it
 * and sets its data) with 0, or NULL and a negative status: a libuv error of the TCP connect,
 * UV_ETIMEDOUT, UV_EACCES when the connection was refused (on_refusal says why) or
 * UV_ECANCELED. Returns NULL, and never calls cb, when the dial cannot start (bad address,
 * transport closing, no memory). The returned request can be cancelled until cb runs (cb then
 * runs with UV_ECANCELED, never inside lbw_transport_cancel_dial). */
typedef void (*lbw_side_dial_cb)(void *arg, struct lbw_tlsio *io, int status);
struct lbw_side_dial;
struct lbw_side_dial *lbw_transport_dial_side(struct raft_uv_transport *t, uint64_t id,
                                              const char *address, lbw_side_dial_cb cb,
                                              void *arg);
void lbw_transport_cancel_dial(struct lbw_side_dial *d);

struct lbw_transport_stats {
    uint64_t accepted;          /* raft and side channels established, by direction */
    uint64_t dialled;
    uint64_t refused[LBW_REFUSAL_KINDS];
    uint64_t bytes_in, bytes_out;   /* plaintext over raft streams */
};
void lbw_transport_stats(const struct raft_uv_transport *t, struct lbw_transport_stats *out);

/* When data last arrived from node id (uv_now ms), 0 if never: a raft stream's bytes, or any
 * channel's preamble or answer (a side channel's later traffic belongs to its owner). */
uint64_t lbw_transport_last_rx(const struct raft_uv_transport *t, uint64_t id);

#endif
