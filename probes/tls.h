/* tls.h - the TLS probe: one TCP connect and TLS handshake against a target, non-blocking on
 * a libuv loop with OpenSSL memory BIOs, reporting what an operator needs to know about the
 * endpoint's certificate and TLS set-up.
 *
 * The handshake itself never fails on certificate problems: the chain is verified after the
 * handshake against the target's CA file (or the system CAs), the hostname is checked with
 * X509_check_host against the configured server name (also sent as SNI), and every
 * certificate field is reported whether or not verification passed, so an expired or
 * wrong-host certificate is still measured. One prober runs any number of probes at once on
 * one loop; each probe has its own timeout and never delays another.
 *
 * A DNS name is resolved with uv_getaddrinfo and the first address is used. A server name
 * that is an IP literal is not sent as SNI and is matched with X509_check_ip_asc. Each CA
 * file is loaded once per prober into a trust store and reloaded when the file changes
 * (checked with stat() at every probe start); the system store is loaded on first use.
 */
#ifndef LBW_PROBE_TLS_H
#define LBW_PROBE_TLS_H

#include <stdint.h>
#include <uv.h>

#include "probes/sample.h"

struct lbw_tls_prober;

struct lbw_tls_target {
    const char *host;           /* where to connect: IPv4/IPv6 literal or DNS name */
    uint16_t port;
    const char *server_name;    /* SNI and hostname to check; NULL = host */
    const char *ca_file;        /* PEM CA bundle to verify against; NULL = system CAs */
    uint64_t timeout_ms;        /* whole probe: resolve + connect + handshake; 0 = 10 s */
};

enum lbw_tls_phase {
    LBW_TLS_PHASE_RESOLVE, LBW_TLS_PHASE_CONNECT, LBW_TLS_PHASE_HANDSHAKE, LBW_TLS_PHASE_DONE
};

enum lbw_ocsp_status {
    LBW_OCSP_NONE = 0,          /* nothing stapled */
    LBW_OCSP_GOOD,
    LBW_OCSP_REVOKED,
    LBW_OCSP_UNKNOWN,
    LBW_OCSP_INVALID            /* stapled but unparsable, unsuccessful, not verifiable
                                   against the CA store, stale, or not for this cert */
};

struct lbw_tls_result {
    int success;                /* handshake completed (certificate problems do not count) */
    enum lbw_tls_phase failed_phase;   /* where it stopped when !success; DONE on success */
    char error[160];            /* why it failed, e.g. "connect: connection refused",
                                   "handshake: timeout after 1500 ms"; "" on success */

    double connect_seconds;     /* TCP connect */
    double handshake_seconds;   /* TLS handshake, after connect */
    double duration_seconds;    /* whole probe */

    char version[16];           /* "TLSv1.3" */
    char cipher[64];            /* OpenSSL cipher name */

    int have_cert;              /* the fields below are valid (also when the handshake
                                   failed after the server's certificate arrived) */
    int64_t not_before;         /* leaf, unix seconds */
    int64_t not_after;
    int64_t earliest_not_after; /* minimum notAfter over the presented chain */
    int chain_len;              /* certificates presented */
    int chain_verified;         /* 1 if the chain verified to a trusted CA */
    int verify_code;            /* X509_V_OK or the first verification error
                                   (X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY when the CA
                                   file could not be loaded) */
    char verify_error[128];     /* X509_verify_cert_error_string(verify_code), or "CA file
                                   PATH not loaded: REASON" */
    int hostname_match;         /* 1 if X509_check_host matched server_name */
    char key_type[16];          /* "RSA", "EC", "ED25519", ... */
    int key_bits;
    enum lbw_ocsp_status ocsp;
    char subject[256];          /* leaf subject, RFC 2253 */
    char issuer[256];
    char fingerprint_sha256[65];/* leaf, lower-case hex */
};

/* Called once per probe on the loop thread, never inside lbw_tls_probe_start (failures found
 * while starting, such as running out of file descriptors, are reported through it on a later
 * loop iteration); r is valid during the call only. */
typedef void (*lbw_tls_probe_cb)(void *arg, const struct lbw_tls_result *r);

/* A prober owns the client SSL_CTX and a cache of CA stores per CA file. */
int lbw_tls_prober_new(struct lbw_tls_prober **out, uv_loop_t *loop, char *err, size_t errlen);

/* Starts a probe. The target's strings are copied. Returns 0, or -1 (cb is not called) when
 * the prober is closing, the target has no host or memory runs out. */
int lbw_tls_probe_start(struct lbw_tls_prober *p, const struct lbw_tls_target *t,
                        lbw_tls_probe_cb cb, void *arg);

/* Cancels every probe in flight (their callbacks are not called), closes the prober's
 * handles and frees it once they are closed; run the loop afterwards to let them close. */
void lbw_tls_prober_close(struct lbw_tls_prober *p);

/* Number of probes in flight. */
unsigned lbw_tls_prober_active(const struct lbw_tls_prober *p);

const char *lbw_ocsp_status_name(enum lbw_ocsp_status s);   /* "none", "good", ... */
const char *lbw_tls_phase_name(enum lbw_tls_phase p);       /* "resolve", "connect", ... */

/* Describes a result as samples (names follow blackbox_exporter where it has one):
 *   probe_success, probe_duration_seconds, lbwatch_tls_connect_seconds,
 *   lbwatch_tls_handshake_seconds, probe_tls_version_info{version="TLS 1.3"},
 *   lbwatch_tls_cipher_info{cipher=...}, probe_ssl_earliest_cert_expiry,
 *   lbwatch_tls_cert_not_after_seconds, lbwatch_tls_cert_not_before_seconds,
 *   lbwatch_tls_chain_verified, lbwatch_tls_verify_error_info{reason=...} (when not verified),
 *   lbwatch_tls_hostname_match, lbwatch_tls_key_bits{type=...},
 *   lbwatch_tls_ocsp_status{status=...}, probe_ssl_last_chain_info{fingerprint_sha256,
 *   subject, issuer}, lbwatch_tls_chain_length.
 * lbwatch_tls_connect_seconds is emitted once the connect completed; the handshake time, the
 * version and the cipher on success; certificate metrics whenever a certificate was seen
 * (verify_error_info only when the chain did not verify). Info metrics have the value 1;
 * key_bits has the key size. If subject and issuer make the chain_info key too long for
 * LBW_KEY_MAX, they are cut to 95 bytes each. */
void lbw_tls_result_emit(const struct lbw_tls_result *r, const struct lbw_emitter *e);

#endif
