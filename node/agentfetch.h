/* agentfetch.h - one pull of an agent's buffered batches by this node.
 *
 * Resolves the agent's host, connects, and runs the TLS handshake with this node's cluster
 * certificate; the agent's certificate must chain to the cluster CA (checked by OpenSSL,
 * dates included) and carry the agent identity lbwatch://agent/<agent> (raft/peer.h), else the
 * pull is refused with the kind and reason. Then it sends PULL(after, max_bytes) and reads the
 * answer (node/agentproto.h): every BATCH frame must hold a signed entry whose envelope parses
 * and states the agent itself as origin (kind agent, its name) with sequence numbers strictly
 * ascending above `after` - else the pull fails as a protocol error; what the envelope says is
 * not authenticated here (the state machine verifies signatures on apply). Frames are bounded
 * (LBW_AGENT_FRAME_MAX), the answer's batch bytes by max_bytes plus one batch, and the whole
 * pull by timeout_ms.
 *
 * Callbacks run on the loop, never inside lbw_agentfetch_start or lbw_agentfetch_cancel.
 */
#ifndef LBW_AGENTFETCH_H
#define LBW_AGENTFETCH_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>
#include <uv.h>

#include "node/agentproto.h"
#include "raft/peer.h"

struct lbw_agentfetch_result {
    int ok;                     /* END arrived: end is valid */
    struct lbw_agent_end end;
    int refused;                /* the agent was refused: refusal says why */
    enum lbw_refusal refusal;
    char error[256];            /* why it failed ("" when ok); fits LBW_AGENT_ERROR_TEXT */
    size_t batches, bytes;      /* BATCH frames taken */
};

struct lbw_agentfetch_config {
    uv_loop_t *loop;
    SSL_CTX *ctx;               /* client: verifying against the cluster CA, with this node's
                                 * certificate (lbw_tlsio_client_ctx) */
    const char *agent;          /* the name the agent's certificate must carry */
    const char *host;           /* IP literal or DNS name */
    uint16_t port;
    uint64_t after;             /* ask for batches with sequence numbers above this */
    uint32_t max_bytes;         /* batch bytes wanted in the answer (1..LBW_AGENT_ANSWER_MAX) */
    uint64_t timeout_ms;        /* the whole pull */
    void *arg;
    /* A batch, in order: entry (len bytes, valid during the call) states sequence seq.
     * Return 0 to go on, or -1 to end the pull here (it then fails: "stopped by the
     * receiver"). */
    int (*on_batch)(void *arg, const uint8_t *entry, size_t len, uint64_t seq);
    /* The pull ended (once; not after lbw_agentfetch_cancel). The fetch is gone after it. */
    void (*on_done)(void *arg, const struct lbw_agentfetch_result *r);
};

struct lbw_agentfetch;

/* Starts a pull (cfg's strings must live until it ends). Returns NULL, and calls nothing,
 * without memory. */
struct lbw_agentfetch *lbw_agentfetch_start(const struct lbw_agentfetch_config *cfg);

/* Abandons a pull whose on_done has not run: on_done will not run; it is freed once its
 * handles have closed. */
void lbw_agentfetch_cancel(struct lbw_agentfetch *f);

#endif
