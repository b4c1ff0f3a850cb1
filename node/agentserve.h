/* agentserve.h - the agent's mutual-TLS server: nodes pull its buffered batches here.
 *
 * Listens on one TCP address. Every connection must complete a TLS handshake (1.2 or newer)
 * in which the node presents a certificate of the cluster CA with a node identity
 * (lbwatch://node/<id>, raft/peer.h); anything else is refused, reported through on_refusal
 * with the peer's address and the reason, and counted by kind. A node then sends one PULL and
 * gets the batches of the buffer (node/agentbuf.h) after the sequence it named, as BATCH
 * frames, then END, then the agent closes (node/agentproto.h). Bounds:
 *   - the handshake and the PULL within request_timeout_ms of the connection;
 *   - the answer within answer_timeout_ms; it is written as the socket drains (at most
 *     WRITE_HIGH_WATER batch bytes whose writes have not completed), so an answer, to a slow
 *     reader or a fast one, costs no more memory than that;
 *   - at most max_connections at once: the next one is accepted and closed at once (busy).
 * A batch evicted while an answer is being written is skipped (the node learns of it from
 * END's evicted). Loop thread only; nothing here blocks.
 */
#ifndef LBW_AGENTSERVE_H
#define LBW_AGENTSERVE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "node/agentbuf.h"
#include "node/agentproto.h"
#include "raft/identity.h"
#include "raft/peer.h"

struct lbw_agentserve_config {
    uv_loop_t *loop;
    const char *host;           /* IP literal to listen on */
    uint16_t port;              /* 0: any free port (see lbw_agentserve_port) */
    const char *ca_file;        /* the cluster CA: nodes' certificates must chain to it */
    const char *cert_file;      /* the agent's certificate and key */
    const char *key_file;
    struct lbw_agentbuf *buf;
    uint32_t interval_ms;       /* reported to nodes in END */
    unsigned max_connections;   /* 0 = 8 */
    uint64_t request_timeout_ms;    /* 0 = 10 s */
    uint64_t answer_timeout_ms;     /* 0 = 60 s */
    void *arg;
    /* A peer was refused (TLS, identity). peer is "address:port". */
    void (*on_refusal)(void *arg, const char *peer, enum lbw_refusal kind, const char *reason);
    /* A node's pull ended: what it asked and what it got. complete = 0 when the connection
     * failed before END was written (why says why). */
    void (*on_pull)(void *arg, const char *peer, const struct lbw_identity *node,
                    uint64_t after, size_t batches, size_t bytes, int complete,
                    const char *why);
};

struct lbw_agentserve_stats {
    uint64_t connections;       /* accepted, refused and busy ones included */
    uint64_t pulls;             /* answered with END */
    uint64_t failed;            /* ended without END after the handshake */
    uint64_t busy;              /* closed at once: max_connections were open */
    uint64_t refused[LBW_REFUSAL_KINDS];
    uint64_t batches_sent, bytes_sent;
    unsigned open;
};

struct lbw_agentserve;

/* Loads the TLS context and listens. Returns 0, or -1 with err. */
int lbw_agentserve_start(struct lbw_agentserve **out, const struct lbw_agentserve_config *cfg,
                         char *err, size_t errlen);

/* The port it listens on. */
uint16_t lbw_agentserve_port(const struct lbw_agentserve *s);

void lbw_agentserve_stats(const struct lbw_agentserve *s, struct lbw_agentserve_stats *out);

/* Stops listening, closes every connection, and frees once all have closed; cb (may be
 * NULL) then runs. */
void lbw_agentserve_close(struct lbw_agentserve *s, void (*cb)(void *arg), void *arg);

#endif
