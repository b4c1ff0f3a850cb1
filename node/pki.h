/* pki.h - the cluster's certificate authority, with OpenSSL's API (no shelling out).
 *
 * A PKI directory holds ca.crt and ca.key (the cluster CA) and, per issued identity,
 * NAME.crt and NAME.key. Keys are ECDSA P-256, written PEM with mode 0600; certificates are
 * X.509 v3, SHA-256 signed, with the identity in a SAN URI (raft/identity.h), the node's IP
 * addresses and DNS names as SANs, and both serverAuth and clientAuth usage so the same
 * certificate serves mutual TLS in both directions.
 *
 * lbw_pki_make_cert() is the general builder the CLI, the demo's target certificates and the
 * tests share: any validity window, any issuer, CA or leaf.
 */
#ifndef LBW_PKI_H
#define LBW_PKI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "raft/identity.h"

#define LBW_PKI_MAX_SANS 8

enum lbw_key_alg { LBW_KEY_EC_P256 = 0, LBW_KEY_RSA2048, LBW_KEY_RSA4096, LBW_KEY_ED25519 };

struct lbw_cert_spec {
    const char *cn;                     /* subject CN */
    int is_ca;                          /* basicConstraints CA:TRUE, keyCertSign|cRLSign */
    int64_t not_before;                 /* unix seconds */
    int64_t not_after;
    const char *dns[LBW_PKI_MAX_SANS];  /* SAN DNS names; the list ends at the first NULL */
    const char *ips[LBW_PKI_MAX_SANS];  /* SAN IP addresses, IPv4 or IPv6 text; same */
    const struct lbw_identity *identity;/* adds the lbwatch:// SAN URI when set */
    enum lbw_key_alg key_alg;           /* for the new key */
};

/* Makes a new key and a certificate for it, signed by issuer/issuer_key, or self-signed when
 * issuer is NULL (issuer_key must then be NULL too). Returns 0, or -1 with a reason in err;
 * *cert_out and *key_out are the caller's to free. */
int lbw_pki_make_cert(const struct lbw_cert_spec *spec, X509 *issuer, EVP_PKEY *issuer_key,
                      X509 **cert_out, EVP_PKEY **key_out, char *err, size_t errlen);

/* PEM files. Keys are written with mode 0600 (created so, never widened); an existing file
 * is replaced atomically (write to a temp name, rename). Return 0, or -1 with err. */
int lbw_pki_write_cert(const char *path, X509 *cert, char *err, size_t errlen);
int lbw_pki_write_key(const char *path, EVP_PKEY *key, char *err, size_t errlen);
X509 *lbw_pki_read_cert(const char *path, char *err, size_t errlen);
EVP_PKEY *lbw_pki_read_key(const char *path, char *err, size_t errlen);

/* `lbwatch pki init`: dir/ca.crt + dir/ca.key, valid for days. Refuses to overwrite an
 * existing CA. Returns 0, or -1 with err. */
int lbw_pki_init(const char *dir, int days, char *err, size_t errlen);

/* `lbwatch pki issue`: dir/NAME.crt + dir/NAME.key signed by the CA in dir, replacing any
 * earlier pair. The name "ca" is refused (it would overwrite the CA). ips and dns are
 * NULL-terminated lists of at most LBW_PKI_MAX_SANS each (either may be NULL). */
int lbw_pki_issue(const char *dir, const struct lbw_identity *id, const char *const *ips,
                  const char *const *dns, int days, char *err, size_t errlen);

/* `lbwatch pki show`: human-readable summary of a PEM certificate (subject, issuer, serial,
 * validity and days left, SANs, identity, key, SHA-256 fingerprint) to out. */
int lbw_pki_show(const char *path, FILE *out, char *err, size_t errlen);

/* The `lbwatch pki` subcommand: argv[0] is "pki". Returns the process exit code. */
int lbw_pki_main(int argc, char **argv);

#endif
