/* peer.c - why a mutual-TLS peer is refused: handshake failures classified by what was wrong
 * with the certificate, and the identity check after a handshake. See peer.h. */
#include "raft/peer.h"

#include <stdio.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/x509_vfy.h>

const char *lbw_refusal_name(enum lbw_refusal r)
{
    static const char *const names[LBW_REFUSAL_KINDS] = {
        [LBW_REFUSED_NO_CERT] = "no_certificate",
        [LBW_REFUSED_UNTRUSTED] = "untrusted",
        [LBW_REFUSED_EXPIRED] = "expired",
        [LBW_REFUSED_NOT_NODE] = "not_a_node",
        [LBW_REFUSED_ID_MISMATCH] = "id_mismatch",
        [LBW_REFUSED_HANDSHAKE] = "handshake",
        [LBW_REFUSED_PREAMBLE] = "preamble",
        [LBW_REFUSED_NOT_AGENT] = "not_an_agent",
    };
    return (unsigned)r < LBW_REFUSAL_KINDS ? names[r] : "unknown";
}

/* Verification results that mean the chain does not lead to the cluster CA. */
static int issuer_error(long v)
{
    return v == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT ||
           v == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
           v == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE ||
           v == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
           v == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
           v == X509_V_ERR_CERT_SIGNATURE_FAILURE;
}

/* Whether a failed server handshake failed because the client sent no certificate: it has
 * none, and OpenSSL's reason is exactly that one (tlsio keeps the reason as text). */
static int client_sent_no_certificate(SSL *ssl, const char *tls_error)
{
    const char *reason = ERR_reason_error_string(
        ERR_PACK(ERR_LIB_SSL, 0, SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE));
    return SSL_get0_peer_certificate(ssl) == NULL && reason != NULL && tls_error != NULL &&
           strcmp(tls_error, reason) == 0;
}

enum lbw_refusal lbw_peer_handshake_refusal(SSL *ssl, int server, const char *tls_error,
                                            char *reason, size_t reasonlen)
{
    long v = SSL_get_verify_result(ssl);

    if (v == X509_V_ERR_CERT_HAS_EXPIRED) {
        snprintf(reason, reasonlen, "certificate expired");
        return LBW_REFUSED_EXPIRED;
    }
    if (v == X509_V_ERR_CERT_NOT_YET_VALID) {
        snprintf(reason, reasonlen, "certificate not yet valid");
        return LBW_REFUSED_EXPIRED;
    }
    if (issuer_error(v)) {
        snprintf(reason, reasonlen, "certificate not issued by the cluster CA (%s)",
                 X509_verify_cert_error_string(v));
        return LBW_REFUSED_UNTRUSTED;
    }
    if (v != X509_V_OK) {
        snprintf(reason, reasonlen, "certificate rejected (%s)",
                 X509_verify_cert_error_string(v));
        return LBW_REFUSED_UNTRUSTED;
    }
    if (server && client_sent_no_certificate(ssl, tls_error)) {
        snprintf(reason, reasonlen, "no client certificate");
        return LBW_REFUSED_NO_CERT;
    }
    snprintf(reason, reasonlen, "TLS handshake failed: %s", tls_error ? tls_error : "");
    return LBW_REFUSED_HANDSHAKE;
}

static int refuse(enum lbw_refusal kind, enum lbw_refusal *why)
{
    *why = kind;
    return -1;
}

int lbw_peer_identity(SSL *ssl, enum lbw_identity_kind want, const struct lbw_identity *expect,
                      struct lbw_identity *out, enum lbw_refusal *why, char *reason,
                      size_t reasonlen)
{
    enum lbw_refusal wrong_kind = want == LBW_ID_AGENT ? LBW_REFUSED_NOT_AGENT
                                                       : LBW_REFUSED_NOT_NODE;
    struct lbw_identity id;

    if (lbw_identity_from_cert(SSL_get0_peer_certificate(ssl), &id) != 0) {
        snprintf(reason, reasonlen, "certificate carries no lbwatch identity");
        return refuse(wrong_kind, why);
    }
    if (id.kind != want && want == LBW_ID_NODE) {
        snprintf(reason, reasonlen, "not a node certificate (agent %s)", id.name);
        return refuse(wrong_kind, why);
    }
    if (id.kind != want) {
        snprintf(reason, reasonlen, "not an agent certificate (node %llu, %s)",
                 (unsigned long long)id.id, id.name);
        return refuse(wrong_kind, why);
    }
    if (expect && want == LBW_ID_NODE && id.id != expect->id) {
        snprintf(reason, reasonlen, "dialled node %llu but its certificate says node %llu",
                 (unsigned long long)expect->id, (unsigned long long)id.id);
        return refuse(LBW_REFUSED_ID_MISMATCH, why);
    }
    if (expect && want == LBW_ID_AGENT && strcmp(id.name, expect->name) != 0) {
        snprintf(reason, reasonlen, "dialled agent %s but its certificate says agent %s",
                 expect->name, id.name);
        return refuse(LBW_REFUSED_ID_MISMATCH, why);
    }
    *out = id;
    return 0;
}
