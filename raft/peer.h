/* peer.h - judging the peer of a mutual-TLS session by its cluster certificate.
 *
 * One set of rules for every mutual-TLS link in lbwatch: node to node (raft/transport.h), a
 * node pulling an agent (node/agentfetch.h) and an agent serving a node (node/agentserve.h).
 * The chain itself is checked by OpenSSL during the handshake against the cluster CA (dates
 * included); these helpers say why a handshake failed, in the words and kinds logs and
 * metrics use, and read the verified peer's identity (raft/identity.h) to refuse a peer of the
 * wrong kind or not the one dialled. They do not log and keep no state.
 */
#ifndef LBW_PEER_H
#define LBW_PEER_H

#include <stddef.h>
#include <openssl/ssl.h>

#include "raft/identity.h"

enum lbw_refusal {
    LBW_REFUSED_NO_CERT,        /* the peer presented no certificate */
    LBW_REFUSED_UNTRUSTED,      /* not issued by the cluster CA (or a broken chain) */
    LBW_REFUSED_EXPIRED,        /* expired or not yet valid */
    LBW_REFUSED_NOT_NODE,       /* valid, but no lbwatch node identity in it */
    LBW_REFUSED_ID_MISMATCH,    /* dialled node N (agent A), the certificate names another */
    LBW_REFUSED_HANDSHAKE,      /* TLS failed for another reason (protocol, timeout...) */
    LBW_REFUSED_PREAMBLE,       /* bad channel tag or preamble after the handshake */
    LBW_REFUSED_NOT_AGENT,      /* valid, but no lbwatch agent identity in it */
    LBW_REFUSAL_KINDS
};

/* Name of a refusal kind for logs and metric labels: "no_certificate", "untrusted",
 * "expired", "not_a_node", "id_mismatch", "handshake", "preamble", "not_an_agent". */
const char *lbw_refusal_name(enum lbw_refusal r);

/* Why the TLS handshake of ssl failed, judged by the peer's certificate: expired or not yet
 * valid, not from the cluster CA, no client certificate at all (server side only: server is
 * nonzero), else a plain handshake failure described by tls_error (lbw_tlsio_error()). The
 * reason for humans goes into reason. */
enum lbw_refusal lbw_peer_handshake_refusal(SSL *ssl, int server, const char *tls_error,
                                            char *reason, size_t reasonlen);

/* After a completed handshake: the identity in the peer's verified certificate, which must
 * be of kind want and, when expect is not NULL, be expect (the node id dialled, or the agent
 * name). Returns 0 with *out filled, or -1 with *why and reason. */
int lbw_peer_identity(SSL *ssl, enum lbw_identity_kind want, const struct lbw_identity *expect,
                      struct lbw_identity *out, enum lbw_refusal *why, char *reason,
                      size_t reasonlen);

#endif
