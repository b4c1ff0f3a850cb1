/* identity.c - the lbwatch identity of a cluster certificate. See identity.h.
 *
 * Owns the lbwatch:// SAN URI format: building it for the CA (node/pki.c) and reading it back
 * out of certificates for the raft transport and the batch verifier. Certificate contents are
 * untrusted here: every string is length-bounded and checked byte by byte against the
 * allowed characters (so an embedded NUL cannot truncate a name into a valid one), and
 * anything that is not exactly one well-formed lbwatch:// URI yields no identity.
 */
#include "raft/identity.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <openssl/asn1.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#define SCHEME "lbwatch:"
#define NODE_PREFIX "lbwatch://node/"
#define AGENT_PREFIX "lbwatch://agent/"
#define ID_MAX_DIGITS 19 /* 9223372036854775807 */

static int name_char_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

static int name_first_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* The name rules over len bytes that need not be NUL-terminated. */
static int name_valid_n(const char *s, size_t len)
{
    if (len == 0 || len >= LBW_NAME_MAX || !name_first_ok((unsigned char)s[0]))
        return 0;
    for (size_t i = 1; i < len; i++)
        if (!name_char_ok((unsigned char)s[i]))
            return 0;
    return 1;
}

int lbw_identity_name_valid(const char *name)
{
    if (name == NULL)
        return 0;
    return name_valid_n(name, strnlen(name, LBW_NAME_MAX));
}

int lbw_identity_parse_id(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;

    if (len == 0 || len > ID_MAX_DIGITS || s[0] == '0')
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0'); /* 19 digits cannot wrap a uint64_t */
    }
    if (v > (uint64_t)INT64_MAX)
        return -1;
    *out = v;
    return 0;
}

static int id_valid(uint64_t id)
{
    return id >= 1 && id <= (uint64_t)INT64_MAX;
}

int lbw_identity_uri(const struct lbw_identity *id, char *out, size_t outlen)
{
    int n;

    if (id == NULL || out == NULL || outlen == 0)
        return -1;
    if (id->kind == LBW_ID_NODE && id_valid(id->id))
        n = snprintf(out, outlen, NODE_PREFIX "%llu", (unsigned long long)id->id);
    else if (id->kind == LBW_ID_AGENT && lbw_identity_name_valid(id->name))
        n = snprintf(out, outlen, AGENT_PREFIX "%s", id->name);
    else
        return -1;
    if (n < 0 || (size_t)n >= outlen) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}

static int has_prefix(const char *s, size_t len, const char *prefix)
{
    size_t plen = strlen(prefix);
    return len >= plen && memcmp(s, prefix, plen) == 0;
}

/* Any URI whose scheme is lbwatch (in any case) counts toward "exactly one", well-formed or
 * not, so a second, malformed lbwatch URI cannot hide next to a good one. */
static int is_lbwatch_uri(const char *s, size_t len)
{
    return len >= strlen(SCHEME) && strncasecmp(s, SCHEME, strlen(SCHEME)) == 0;
}

static int parse_uri(const char *s, size_t len, struct lbw_identity *out)
{
    if (has_prefix(s, len, NODE_PREFIX)) {
        size_t plen = strlen(NODE_PREFIX);
        out->kind = LBW_ID_NODE;
        return lbw_identity_parse_id(s + plen, len - plen, &out->id);
    }
    if (has_prefix(s, len, AGENT_PREFIX)) {
        size_t plen = strlen(AGENT_PREFIX);
        if (!name_valid_n(s + plen, len - plen))
            return -1;
        out->kind = LBW_ID_AGENT;
        out->id = 0;
        memcpy(out->name, s + plen, len - plen);
        out->name[len - plen] = '\0';
        return 0;
    }
    return -1;
}

/* Finds the single lbwatch URI among the SANs and parses it. */
static int identity_from_sans(const GENERAL_NAMES *sans, struct lbw_identity *out)
{
    const ASN1_IA5STRING *found = NULL;

    for (int i = 0; i < sk_GENERAL_NAME_num(sans); i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
        if (gn->type != GEN_URI || gn->d.uniformResourceIdentifier == NULL)
            continue;
        const ASN1_IA5STRING *uri = gn->d.uniformResourceIdentifier;
        int len = ASN1_STRING_length(uri);
        if (len <= 0 || !is_lbwatch_uri((const char *)ASN1_STRING_get0_data(uri), (size_t)len))
            continue;
        if (found != NULL)
            return -1;
        found = uri;
    }
    if (found == NULL)
        return -1;
    return parse_uri((const char *)ASN1_STRING_get0_data(found),
                     (size_t)ASN1_STRING_length(found), out);
}

/* The subject's one and only CN, which must be a valid name, into out->name. */
static int name_from_cn(X509 *cert, struct lbw_identity *out)
{
    const X509_NAME *subject = X509_get_subject_name(cert);
    unsigned char *utf8 = NULL;
    int rc = -1;

    if (subject == NULL)
        return -1;
    int idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (idx < 0 || X509_NAME_get_index_by_NID(subject, NID_commonName, idx) >= 0)
        return -1;
    const X509_NAME_ENTRY *entry = X509_NAME_get_entry(subject, idx);
    int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry));
    if (len > 0 && name_valid_n((const char *)utf8, (size_t)len)) {
        memcpy(out->name, utf8, (size_t)len);
        out->name[len] = '\0';
        rc = 0;
    }
    OPENSSL_free(utf8);
    return rc;
}

int lbw_identity_from_cert(X509 *cert, struct lbw_identity *out)
{
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if (cert == NULL)
        return -1;
    /* Decoding errors of untrusted input must not linger on the caller's error queue
     * (a TLS session reads it after SSL_* calls). */
    ERR_set_mark();
    /* NULL when absent, undecodable or present more than once. */
    GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    if (sans != NULL && identity_from_sans(sans, out) == 0)
        rc = out->kind == LBW_ID_NODE ? name_from_cn(cert, out) : 0;
    GENERAL_NAMES_free(sans);
    ERR_pop_to_mark();
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}
