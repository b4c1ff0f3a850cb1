/* identity.h - who a cluster certificate belongs to.
 *
 * Every node and agent certificate issued by the cluster CA carries its identity in a SAN URI:
 *     lbwatch://node/<id>       a cluster node; <id> is its raft id, 1..2^63-1 in decimal
 *                               with no sign and no leading zero
 *     lbwatch://agent/<name>    a balancer-host agent
 * and its name in the subject CN. The raft transport and the batch verifier take identities
 * from verified certificates only, never from the wire.
 */
#ifndef LBW_IDENTITY_H
#define LBW_IDENTITY_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/x509.h>

enum lbw_identity_kind { LBW_ID_NONE = 0, LBW_ID_NODE, LBW_ID_AGENT };

#define LBW_NAME_MAX 64

struct lbw_identity {
    enum lbw_identity_kind kind;
    uint64_t id;                  /* nodes: raft id; agents: 0 */
    char name[LBW_NAME_MAX];      /* subject CN (nodes) or the URI's name (agents) */
};

/* Names: 1-63 chars of [A-Za-z0-9._-], starting with a letter or digit. */
int lbw_identity_name_valid(const char *name);

/* Parses a node id as it appears in the URI (and on the command line): len bytes of text,
 * 1..2^63-1, decimal digits only, no sign, no leading zero. Returns 0, or -1. */
int lbw_identity_parse_id(const char *s, size_t len, uint64_t *out);

/* Writes the SAN URI for an identity into out. Returns 0, or -1 if it does not fit/invalid. */
int lbw_identity_uri(const struct lbw_identity *id, char *out, size_t outlen);

/* Reads the identity out of a certificate: exactly one lbwatch:// SAN URI must be present and
 * well-formed, and for nodes the CN is the name. Returns 0, or -1 (out->kind = LBW_ID_NONE). */
int lbw_identity_from_cert(X509 *cert, struct lbw_identity *out);

#endif
