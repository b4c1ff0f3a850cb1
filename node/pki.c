/* pki.c - the cluster's certificate authority and the `lbwatch pki` subcommand. See pki.h.
 *
 * Owns: key generation, certificate building and signing (OpenSSL 3.0 API only), PEM files
 * on disk (atomic writes, keys created 0600), the CA directory layout (ca.crt, ca.key,
 * NAME.crt, NAME.key) and the pki command line. Key material is never printed or logged; PEM
 * text of keys only passes through OpenSSL's clearing memory buffers.
 */
#include "node/pki.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#define CA_CN "lbwatch cluster CA"
#define CA_NAME "ca"
#define CN_MAX 64           /* X.520 ub-common-name */
#define DNS_NAME_MAX 253
#define SERIAL_BYTES 16     /* 128 random bits */
#define BACKDATE_SECONDS 300 /* tolerate peers whose clocks run a little behind */
#define DAY_SECONDS 86400
#define MAX_DAYS 36500
#define CA_DAYS_DEFAULT 3650
#define LEAF_DAYS_DEFAULT 825
#define ERRBUF 1024

/* ---- errors ------------------------------------------------------------------------------ */

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Like fail(), with OpenSSL's first queued error appended; empties the error queue. */
static int ossl_fail(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_get_error();
    char reason[256];

    ERR_clear_error();
    if (e == 0)
        return fail(err, errlen, "%s", what);
    ERR_error_string_n(e, reason, sizeof(reason));
    return fail(err, errlen, "%s: %s", what, reason);
}

/* ---- checks ------------------------------------------------------------------------------ */

static int dns_char_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '*';
}

static int dns_name_valid(const char *s)
{
    size_t len = strnlen(s, DNS_NAME_MAX + 1);

    if (len == 0 || len > DNS_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!dns_char_ok((unsigned char)s[i]))
            return 0;
    return 1;
}

static int ip_text_valid(const char *s)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* Entries of a spec's SAN array: up to LBW_PKI_MAX_SANS, ending at the first NULL. */
static size_t san_count(const char *const *list)
{
    size_t n = 0;
    while (n < LBW_PKI_MAX_SANS && list[n] != NULL)
        n++;
    return n;
}

static int check_spec(const struct lbw_cert_spec *spec, X509 *issuer, EVP_PKEY *issuer_key,
                      char *err, size_t errlen)
{
    size_t cnlen = spec->cn ? strnlen(spec->cn, CN_MAX + 1) : 0;

    if (cnlen == 0 || cnlen > CN_MAX)
        return fail(err, errlen, "subject CN must be 1-%d bytes", CN_MAX);
    if (spec->not_before >= spec->not_after)
        return fail(err, errlen, "not_after must be later than not_before");
    for (size_t i = 0; i < san_count(spec->dns); i++)
        if (!dns_name_valid(spec->dns[i]))
            return fail(err, errlen, "bad DNS name '%.64s'", spec->dns[i]);
    for (size_t i = 0; i < san_count(spec->ips); i++)
        if (!ip_text_valid(spec->ips[i]))
            return fail(err, errlen, "bad IP address '%.64s'", spec->ips[i]);
    if ((issuer == NULL) != (issuer_key == NULL))
        return fail(err, errlen, "issuer certificate and issuer key go together");
    if (issuer != NULL && X509_check_private_key(issuer, issuer_key) != 1)
        return ossl_fail(err, errlen, "issuer key does not match issuer certificate");
    return 0;
}

/* ---- building certificates --------------------------------------------------------------- */

static EVP_PKEY *new_key(enum lbw_key_alg alg, char *err, size_t errlen)
{
    EVP_PKEY *key;

    switch (alg) {
    case LBW_KEY_EC_P256:
        key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        break;
    case LBW_KEY_RSA2048:
        key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
        break;
    case LBW_KEY_RSA4096:
        key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096);
        break;
    case LBW_KEY_ED25519:
        key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        break;
    default:
        fail(err, errlen, "unknown key algorithm %d", (int)alg);
        return NULL;
    }
    if (key == NULL)
        ossl_fail(err, errlen, "key generation");
    return key;
}

static int set_random_serial(X509 *x, char *err, size_t errlen)
{
    unsigned char bytes[SERIAL_BYTES];
    BIGNUM *bn = NULL;
    int rc = -1;

    do {
        BN_free(bn);
        bn = NULL;
        if (RAND_bytes(bytes, sizeof(bytes)) != 1)
            return ossl_fail(err, errlen, "random serial");
        bn = BN_bin2bn(bytes, sizeof(bytes), NULL); /* unsigned: always positive */
        if (bn == NULL)
            return ossl_fail(err, errlen, "serial number");
    } while (BN_is_zero(bn));
    if (BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL)
        rc = 0;
    else
        ossl_fail(err, errlen, "serial number");
    BN_free(bn);
    return rc;
}

static int set_validity(X509 *x, int64_t not_before, int64_t not_after, char *err,
                        size_t errlen)
{
    if (ASN1_TIME_set(X509_getm_notBefore(x), (time_t)not_before) == NULL ||
        ASN1_TIME_set(X509_getm_notAfter(x), (time_t)not_after) == NULL)
        return ossl_fail(err, errlen, "validity out of range");
    return 0;
}

static int set_names(X509 *x, const char *cn, X509 *issuer, char *err, size_t errlen)
{
    X509_NAME *subject = X509_get_subject_name(x);

    if (X509_NAME_add_entry_by_NID(subject, NID_commonName, MBSTRING_UTF8,
                                   (const unsigned char *)cn, -1, -1, 0) != 1)
        return ossl_fail(err, errlen, "subject CN");
    if (X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : subject) != 1)
        return ossl_fail(err, errlen, "issuer name");
    return 0;
}

static int add_conf_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value, char *err,
                        size_t errlen)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    int ok;

    if (ext == NULL)
        return ossl_fail(err, errlen, OBJ_nid2sn(nid));
    ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok == 1 ? 0 : ossl_fail(err, errlen, OBJ_nid2sn(nid));
}

/* basicConstraints, keyUsage, extendedKeyUsage, subjectKeyIdentifier, authorityKeyIdentifier.
 * The subject key identifier goes first: a self-signed certificate's AKI copies it. */
static int add_usage_exts(X509 *x, X509 *issuer, int is_ca, EVP_PKEY *key, char *err,
                          size_t errlen)
{
    X509V3_CTX ctx;
    const char *ku = is_ca                        ? "critical,keyCertSign,cRLSign"
                     : EVP_PKEY_is_a(key, "RSA") ? "critical,digitalSignature,keyEncipherment"
                                                  : "critical,digitalSignature";

    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
    if (add_conf_ext(x, &ctx, NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE",
                     err, errlen) != 0 ||
        add_conf_ext(x, &ctx, NID_key_usage, ku, err, errlen) != 0 ||
        (!is_ca && add_conf_ext(x, &ctx, NID_ext_key_usage, "serverAuth,clientAuth", err,
                                errlen) != 0) ||
        add_conf_ext(x, &ctx, NID_subject_key_identifier, "hash", err, errlen) != 0 ||
        add_conf_ext(x, &ctx, NID_authority_key_identifier, "keyid:always", err, errlen) != 0)
        return -1;
    return 0;
}

/* Appends a name of the given type, taking ownership of value (freed on failure). */
static int push_name(GENERAL_NAMES *names, int type, ASN1_STRING *value)
{
    GENERAL_NAME *gn = GENERAL_NAME_new();

    if (gn == NULL) {
        ASN1_STRING_free(value);
        return -1;
    }
    GENERAL_NAME_set0_value(gn, type, value);
    if (sk_GENERAL_NAME_push(names, gn) <= 0) {
        GENERAL_NAME_free(gn);
        return -1;
    }
    return 0;
}

static int push_ia5(GENERAL_NAMES *names, int type, const char *text)
{
    ASN1_IA5STRING *s = ASN1_IA5STRING_new();

    if (s == NULL)
        return -1;
    if (ASN1_STRING_set(s, text, (int)strlen(text)) != 1) {
        ASN1_IA5STRING_free(s);
        return -1;
    }
    return push_name(names, type, s);
}

static int push_ip(GENERAL_NAMES *names, const char *text)
{
    ASN1_OCTET_STRING *ip = a2i_IPADDRESS(text);
    return ip ? push_name(names, GEN_IPADD, ip) : -1;
}

static int fill_sans(GENERAL_NAMES *names, const struct lbw_cert_spec *spec, char *err,
                     size_t errlen)
{
    char uri[128];

    for (size_t i = 0; i < san_count(spec->dns); i++)
        if (push_ia5(names, GEN_DNS, spec->dns[i]) != 0)
            return ossl_fail(err, errlen, "SAN DNS name");
    for (size_t i = 0; i < san_count(spec->ips); i++)
        if (push_ip(names, spec->ips[i]) != 0)
            return ossl_fail(err, errlen, "SAN IP address");
    if (spec->identity == NULL)
        return 0;
    if (lbw_identity_uri(spec->identity, uri, sizeof(uri)) != 0)
        return fail(err, errlen, "invalid lbwatch identity");
    if (push_ia5(names, GEN_URI, uri) != 0)
        return ossl_fail(err, errlen, "SAN URI");
    return 0;
}

static int add_san_ext(X509 *x, const struct lbw_cert_spec *spec, char *err, size_t errlen)
{
    GENERAL_NAMES *names = sk_GENERAL_NAME_new_null();
    int rc = -1;

    if (names == NULL)
        return ossl_fail(err, errlen, "subjectAltName");
    if (fill_sans(names, spec, err, errlen) == 0) {
        if (sk_GENERAL_NAME_num(names) == 0 ||
            X509_add1_ext_i2d(x, NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT) == 1)
            rc = 0;
        else
            ossl_fail(err, errlen, "subjectAltName");
    }
    GENERAL_NAMES_free(names);
    return rc;
}

static int build_cert(X509 *x, const struct lbw_cert_spec *spec, EVP_PKEY *key, X509 *issuer,
                      char *err, size_t errlen)
{
    if (X509_set_version(x, X509_VERSION_3) != 1 || X509_set_pubkey(x, key) != 1)
        return ossl_fail(err, errlen, "certificate");
    if (set_random_serial(x, err, errlen) != 0 ||
        set_validity(x, spec->not_before, spec->not_after, err, errlen) != 0 ||
        set_names(x, spec->cn, issuer, err, errlen) != 0 ||
        add_usage_exts(x, issuer, spec->is_ca, key, err, errlen) != 0 ||
        add_san_ext(x, spec, err, errlen) != 0)
        return -1;
    return 0;
}

/* EdDSA signs the message itself, so it takes no digest; everything else uses SHA-256. */
static int sign_cert(X509 *x, EVP_PKEY *key, char *err, size_t errlen)
{
    const EVP_MD *md =
        EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448") ? NULL : EVP_sha256();

    if (X509_sign(x, key, md) <= 0)
        return ossl_fail(err, errlen, "signing certificate");
    return 0;
}

int lbw_pki_make_cert(const struct lbw_cert_spec *spec, X509 *issuer, EVP_PKEY *issuer_key,
                      X509 **cert_out, EVP_PKEY **key_out, char *err, size_t errlen)
{
    EVP_PKEY *key;
    X509 *x;

    *cert_out = NULL;
    *key_out = NULL;
    if (check_spec(spec, issuer, issuer_key, err, errlen) != 0)
        return -1;
    key = new_key(spec->key_alg, err, errlen);
    if (key == NULL)
        return -1;
    x = X509_new();
    if (x == NULL) {
        EVP_PKEY_free(key);
        return ossl_fail(err, errlen, "X509_new");
    }
    if (build_cert(x, spec, key, issuer, err, errlen) != 0 ||
        sign_cert(x, issuer ? issuer_key : key, err, errlen) != 0) {
        X509_free(x);
        EVP_PKEY_free(key);
        return -1;
    }
    *cert_out = x;
    *key_out = key;
    return 0;
}

/* ---- files ------------------------------------------------------------------------------- */

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Writes data to a fresh temp file beside path (created with mode, O_EXCL), then moves it
 * into place: rename() when replace is set, else link() so an existing file is never
 * overwritten even by a racing writer. */
static int write_file_atomic(const char *path, const char *data, size_t len, mode_t mode,
                             int replace, char *err, size_t errlen)
{
    char tmp[PATH_MAX];
    unsigned char rnd[8];
    int fd, rc;

    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        return ossl_fail(err, errlen, "temp file name");
    if (snprintf(tmp, sizeof(tmp), "%s.tmp-%02x%02x%02x%02x%02x%02x%02x%02x", path, rnd[0],
                 rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]) >= (int)sizeof(tmp))
        return fail(err, errlen, "%s: path too long", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return fail(err, errlen, "%s: %s", tmp, strerror(errno));
    if (write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        rc = fail(err, errlen, "%s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return rc;
    }
    if (close(fd) != 0) {
        rc = fail(err, errlen, "%s: %s", tmp, strerror(errno));
        unlink(tmp);
        return rc;
    }
    rc = replace ? rename(tmp, path) : link(tmp, path);
    if (rc != 0) {
        rc = errno == EEXIST ? fail(err, errlen, "%s already exists; not overwriting it", path)
                             : fail(err, errlen, "%s: %s", path, strerror(errno));
        unlink(tmp);
        return rc;
    }
    if (!replace)
        unlink(tmp);
    return 0;
}

static int write_bio_atomic(const char *path, BIO *mem, mode_t mode, int replace, char *err,
                            size_t errlen)
{
    char *data = NULL;
    long len = BIO_get_mem_data(mem, &data);

    if (len <= 0 || data == NULL)
        return fail(err, errlen, "%s: nothing to write", path);
    return write_file_atomic(path, data, (size_t)len, mode, replace, err, errlen);
}

static int write_cert_file(const char *path, X509 *cert, int replace, char *err, size_t errlen)
{
    BIO *mem = BIO_new(BIO_s_mem());
    int rc;

    if (mem == NULL)
        return ossl_fail(err, errlen, "memory BIO");
    if (PEM_write_bio_X509(mem, cert) != 1)
        rc = ossl_fail(err, errlen, "encoding certificate");
    else
        rc = write_bio_atomic(path, mem, 0644, replace, err, errlen);
    BIO_free(mem);
    return rc;
}

/* PKCS#8, unencrypted. The memory BIO is cleared when freed. */
static int write_key_file(const char *path, EVP_PKEY *key, int replace, char *err,
                          size_t errlen)
{
    BIO *mem = BIO_new(BIO_s_secmem());
    int rc;

    if (mem == NULL)
        return ossl_fail(err, errlen, "memory BIO");
    if (PEM_write_bio_PrivateKey(mem, key, NULL, NULL, 0, NULL, NULL) != 1)
        rc = ossl_fail(err, errlen, "encoding key");
    else
        rc = write_bio_atomic(path, mem, 0600, replace, err, errlen);
    BIO_free(mem);
    return rc;
}

int lbw_pki_write_cert(const char *path, X509 *cert, char *err, size_t errlen)
{
    return write_cert_file(path, cert, 1, err, errlen);
}

int lbw_pki_write_key(const char *path, EVP_PKEY *key, char *err, size_t errlen)
{
    return write_key_file(path, key, 1, err, errlen);
}

/* Never prompt on a terminal: an encrypted key is an error, not a question. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

X509 *lbw_pki_read_cert(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    X509 *x;

    if (f == NULL) {
        fail(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    x = PEM_read_X509(f, NULL, no_passphrase, NULL);
    fclose(f);
    if (x == NULL) {
        char what[PATH_MAX + 64];
        snprintf(what, sizeof(what), "%s: not a PEM certificate", path);
        ossl_fail(err, errlen, what);
    }
    return x;
}

EVP_PKEY *lbw_pki_read_key(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    EVP_PKEY *key;

    if (f == NULL) {
        fail(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    key = PEM_read_PrivateKey(f, NULL, no_passphrase, NULL);
    fclose(f);
    if (key == NULL) {
        char what[PATH_MAX + 64];
        snprintf(what, sizeof(what), "%s: not an unencrypted PEM private key", path);
        ossl_fail(err, errlen, what);
    }
    return key;
}

/* ---- the CA directory -------------------------------------------------------------------- */

static int dir_path(char *out, size_t outlen, const char *dir, const char *name,
                    const char *ext, char *err, size_t errlen)
{
    int n = snprintf(out, outlen, "%s/%s%s", dir, name, ext);
    if (n < 0 || (size_t)n >= outlen)
        return fail(err, errlen, "%s: path too long", dir);
    return 0;
}

static int days_valid(int days)
{
    return days >= 1 && days <= MAX_DAYS;
}

static void validity_from_now(struct lbw_cert_spec *spec, int days)
{
    int64_t now = (int64_t)time(NULL);
    spec->not_before = now - BACKDATE_SECONDS;
    spec->not_after = now + (int64_t)days * DAY_SECONDS;
}

/* Neither file may exist: both are linked into place, never renamed over anything, so an
 * existing CA survives even a racing init. The key goes first and is taken back if the
 * certificate cannot follow. */
static int write_new_ca(const char *crt, const char *keyp, X509 *x, EVP_PKEY *key, char *err,
                        size_t errlen)
{
    if (write_key_file(keyp, key, 0, err, errlen) != 0)
        return -1;
    if (write_cert_file(crt, x, 0, err, errlen) != 0) {
        unlink(keyp);
        return -1;
    }
    return 0;
}

int lbw_pki_init(const char *dir, int days, char *err, size_t errlen)
{
    char crt[PATH_MAX], keyp[PATH_MAX];
    struct lbw_cert_spec spec = {.cn = CA_CN, .is_ca = 1, .key_alg = LBW_KEY_EC_P256};
    X509 *x = NULL;
    EVP_PKEY *key = NULL;
    int rc;

    if (!days_valid(days))
        return fail(err, errlen, "days must be 1-%d", MAX_DAYS);
    if (dir_path(crt, sizeof(crt), dir, CA_NAME, ".crt", err, errlen) != 0 ||
        dir_path(keyp, sizeof(keyp), dir, CA_NAME, ".key", err, errlen) != 0)
        return -1;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return fail(err, errlen, "%s: %s", dir, strerror(errno));
    validity_from_now(&spec, days);
    if (lbw_pki_make_cert(&spec, NULL, NULL, &x, &key, err, errlen) != 0)
        return -1;
    rc = write_new_ca(crt, keyp, x, key, err, errlen);
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}

static int identity_issuable(const struct lbw_identity *id, char *err, size_t errlen)
{
    if (id == NULL || (id->kind != LBW_ID_NODE && id->kind != LBW_ID_AGENT))
        return fail(err, errlen, "identity must be a node or an agent");
    if (!lbw_identity_name_valid(id->name))
        return fail(err, errlen, "bad name '%.64s' (1-63 of A-Z a-z 0-9 . _ -, "
                                 "starting with a letter or digit)", id->name);
    if (strcmp(id->name, CA_NAME) == 0)
        return fail(err, errlen, "the name '%s' is reserved for the CA", CA_NAME);
    if (id->kind == LBW_ID_NODE && (id->id == 0 || id->id > (uint64_t)INT64_MAX))
        return fail(err, errlen, "node id must be 1..%lld", (long long)INT64_MAX);
    if (id->kind == LBW_ID_AGENT && id->id != 0)
        return fail(err, errlen, "agents have no node id");
    return 0;
}

/* Copies a NULL-terminated list into a spec's SAN array, refusing more than fits. */
static int copy_sans(const char **dst, const char *const *src, const char *what, char *err,
                     size_t errlen)
{
    size_t n = 0;

    for (; src != NULL && src[n] != NULL; n++) {
        if (n == LBW_PKI_MAX_SANS)
            return fail(err, errlen, "at most %d %s", LBW_PKI_MAX_SANS, what);
        dst[n] = src[n];
    }
    return 0;
}

static int load_ca(const char *dir, X509 **ca, EVP_PKEY **ca_key, char *err, size_t errlen)
{
    char crt[PATH_MAX], keyp[PATH_MAX];

    if (dir_path(crt, sizeof(crt), dir, CA_NAME, ".crt", err, errlen) != 0 ||
        dir_path(keyp, sizeof(keyp), dir, CA_NAME, ".key", err, errlen) != 0)
        return -1;
    if (access(crt, F_OK) != 0 && errno == ENOENT)
        return fail(err, errlen, "no CA in %s (make one with 'lbwatch pki init --dir %s')", dir,
                    dir);
    *ca = lbw_pki_read_cert(crt, err, errlen);
    if (*ca == NULL)
        return -1;
    *ca_key = lbw_pki_read_key(keyp, err, errlen);
    if (*ca_key == NULL) {
        X509_free(*ca);
        *ca = NULL;
        return -1;
    }
    if (X509_check_ca(*ca) == 0) {
        fail(err, errlen, "%s is not a CA certificate", crt);
        X509_free(*ca);
        EVP_PKEY_free(*ca_key);
        *ca = NULL;
        *ca_key = NULL;
        return -1;
    }
    return 0;
}

static int write_issued(const char *dir, const char *name, X509 *x, EVP_PKEY *key, char *err,
                        size_t errlen)
{
    char crt[PATH_MAX], keyp[PATH_MAX];

    if (dir_path(crt, sizeof(crt), dir, name, ".crt", err, errlen) != 0 ||
        dir_path(keyp, sizeof(keyp), dir, name, ".key", err, errlen) != 0)
        return -1;
    if (write_key_file(keyp, key, 1, err, errlen) != 0)
        return -1;
    return write_cert_file(crt, x, 1, err, errlen);
}

int lbw_pki_issue(const char *dir, const struct lbw_identity *id, const char *const *ips,
                  const char *const *dns, int days, char *err, size_t errlen)
{
    struct lbw_cert_spec spec = {.key_alg = LBW_KEY_EC_P256, .identity = id};
    X509 *ca = NULL, *x = NULL;
    EVP_PKEY *ca_key = NULL, *key = NULL;
    int rc = -1;

    if (identity_issuable(id, err, errlen) != 0)
        return -1;
    if (!days_valid(days))
        return fail(err, errlen, "days must be 1-%d", MAX_DAYS);
    if (copy_sans(spec.ips, ips, "IP addresses", err, errlen) != 0 ||
        copy_sans(spec.dns, dns, "DNS names", err, errlen) != 0)
        return -1;
    spec.cn = id->name;
    validity_from_now(&spec, days);
    if (load_ca(dir, &ca, &ca_key, err, errlen) != 0)
        return -1;
    if (lbw_pki_make_cert(&spec, ca, ca_key, &x, &key, err, errlen) == 0)
        rc = write_issued(dir, id->name, x, key, err, errlen);
    X509_free(x);
    EVP_PKEY_free(key);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    return rc;
}

/* ---- show -------------------------------------------------------------------------------- */

/* Certificate strings are untrusted: print only printable ASCII, escape the rest. */
static void print_escaped(BIO *out, const unsigned char *s, int len)
{
    for (int i = 0; i < len; i++) {
        if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\')
            BIO_printf(out, "%c", s[i]);
        else
            BIO_printf(out, "\\x%02x", s[i]);
    }
}

static void print_name(BIO *out, const char *label, const X509_NAME *name)
{
    BIO_printf(out, "%-12s ", label);
    X509_NAME_print_ex(out, name, 0, XN_FLAG_RFC2253);
    BIO_printf(out, "\n");
}

static void print_serial(BIO *out, const ASN1_INTEGER *serial)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;

    BIO_printf(out, "%-12s %s\n", "serial:", hex ? hex : "(unreadable)");
    OPENSSL_free(hex);
    BN_free(bn);
}

static void print_time(BIO *out, const char *label, const ASN1_TIME *t)
{
    struct tm tm;
    char buf[32];

    if (ASN1_TIME_to_tm(t, &tm) != 1 || strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, sizeof(buf), "(unreadable)");
    BIO_printf(out, "%-12s %s\n", label, buf);
}

/* Whole days from now until not_after, rounded down: -1 as soon as it has expired. */
static void print_days_left(BIO *out, X509 *x)
{
    int day = 0, sec = 0;

    if (ASN1_TIME_diff(&day, &sec, NULL, X509_get0_notAfter(x)) != 1) {
        BIO_printf(out, "%-12s (unknown)\n", "days left:");
        return;
    }
    int64_t total = (int64_t)day * DAY_SECONDS + sec;
    int64_t days = total >= 0 ? total / DAY_SECONDS : -((-total + DAY_SECONDS - 1) / DAY_SECONDS);
    BIO_printf(out, "%-12s %lld%s%s\n", "days left:", (long long)days,
               total < 0 ? " (expired)" : "",
               X509_cmp_current_time(X509_get0_notBefore(x)) > 0 ? " (not yet valid)" : "");
}

static void print_ip(BIO *out, const ASN1_OCTET_STRING *ip)
{
    char text[INET6_ADDRSTRLEN];
    int len = ASN1_STRING_length(ip);
    int af = len == 4 ? AF_INET : len == 16 ? AF_INET6 : 0;

    if (af != 0 && inet_ntop(af, ASN1_STRING_get0_data(ip), text, sizeof(text)) != NULL)
        BIO_printf(out, "IP:%s", text);
    else
        BIO_printf(out, "IP:(%d bytes)", len);
}

static void print_san(BIO *out, const GENERAL_NAME *gn)
{
    const ASN1_STRING *s;

    switch (gn->type) {
    case GEN_DNS:
        s = gn->d.dNSName;
        BIO_printf(out, "DNS:");
        break;
    case GEN_URI:
        s = gn->d.uniformResourceIdentifier;
        BIO_printf(out, "URI:");
        break;
    case GEN_EMAIL:
        s = gn->d.rfc822Name;
        BIO_printf(out, "email:");
        break;
    case GEN_IPADD:
        print_ip(out, gn->d.iPAddress);
        return;
    default:
        BIO_printf(out, "(other name type %d)", gn->type);
        return;
    }
    print_escaped(out, ASN1_STRING_get0_data(s), ASN1_STRING_length(s));
}

static void print_sans(BIO *out, X509 *x)
{
    GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int n = sans ? sk_GENERAL_NAME_num(sans) : 0;

    BIO_printf(out, "%-12s", "SANs:");
    if (n == 0)
        BIO_printf(out, " none");
    for (int i = 0; i < n; i++) {
        BIO_printf(out, i ? ", " : " ");
        print_san(out, sk_GENERAL_NAME_value(sans, i));
    }
    BIO_printf(out, "\n");
    GENERAL_NAMES_free(sans);
    ERR_clear_error();
}

static void print_identity(BIO *out, X509 *x)
{
    struct lbw_identity id;
    char uri[128];

    if (lbw_identity_from_cert(x, &id) != 0 || lbw_identity_uri(&id, uri, sizeof(uri)) != 0)
        BIO_printf(out, "%-12s none\n", "identity:");
    else if (id.kind == LBW_ID_NODE)
        BIO_printf(out, "%-12s %s (node %llu, name %s)\n", "identity:", uri,
                   (unsigned long long)id.id, id.name);
    else
        BIO_printf(out, "%-12s %s (agent %s)\n", "identity:", uri, id.name);
}

static void print_key(BIO *out, X509 *x)
{
    EVP_PKEY *key = X509_get0_pubkey(x);
    char group[64];
    size_t glen = 0;

    if (key == NULL) {
        BIO_printf(out, "%-12s (unreadable)\n", "key:");
        ERR_clear_error();
        return;
    }
    BIO_printf(out, "%-12s %s", "key:", EVP_PKEY_get0_type_name(key));
    if (EVP_PKEY_is_a(key, "EC") && EVP_PKEY_get_group_name(key, group, sizeof(group), &glen) == 1)
        BIO_printf(out, " %s", group);
    BIO_printf(out, ", %d bits\n", EVP_PKEY_get_bits(key));
}

static void print_fingerprint(BIO *out, X509 *x)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    BIO_printf(out, "%-12s ", "sha256:");
    if (X509_digest(x, EVP_sha256(), md, &n) != 1)
        n = 0;
    for (unsigned int i = 0; i < n; i++)
        BIO_printf(out, "%s%02X", i ? ":" : "", md[i]);
    BIO_printf(out, "\n");
}

int lbw_pki_show(const char *path, FILE *out, char *err, size_t errlen)
{
    X509 *x = lbw_pki_read_cert(path, err, errlen);
    BIO *b;

    if (x == NULL)
        return -1;
    b = BIO_new_fp(out, BIO_NOCLOSE);
    if (b == NULL) {
        X509_free(x);
        return ossl_fail(err, errlen, "output BIO");
    }
    print_name(b, "subject:", X509_get_subject_name(x));
    print_name(b, "issuer:", X509_get_issuer_name(x));
    print_serial(b, X509_get0_serialNumber(x));
    print_time(b, "not before:", X509_get0_notBefore(x));
    print_time(b, "not after:", X509_get0_notAfter(x));
    print_days_left(b, x);
    BIO_printf(b, "%-12s %s\n", "CA:", X509_check_ca(x) ? "yes" : "no");
    print_sans(b, x);
    print_identity(b, x);
    print_key(b, x);
    print_fingerprint(b, x);
    BIO_free(b);
    X509_free(x);
    if (fflush(out) != 0 || ferror(out))
        return fail(err, errlen, "writing output: %s", strerror(errno));
    return 0;
}

/* ---- the command line -------------------------------------------------------------------- */

static const char usage_pki[] =
    "usage: lbwatch pki <command> [options]\n"
    "\n"
    "commands:\n"
    "  init    make the cluster CA (ca.crt, ca.key) in a directory\n"
    "  issue   issue a node or agent certificate signed by that CA\n"
    "  show    print a summary of a certificate\n"
    "\n"
    "Run 'lbwatch pki <command> --help' for a command's options.\n";

static const char usage_init[] =
    "usage: lbwatch pki init --dir DIR [--days N]\n"
    "\n"
    "Makes the cluster CA: DIR/ca.crt and DIR/ca.key (EC P-256, key mode 0600).\n"
    "Refuses to overwrite an existing CA.\n"
    "\n"
    "  --dir DIR     PKI directory (created with mode 0700 if missing)\n"
    "  --days N      validity in days (default 3650)\n"
    "  -h, --help    show this help\n";

static const char usage_issue[] =
    "usage: lbwatch pki issue --dir DIR --name NAME --id N --ip ADDR [--ip ADDR...]\n"
    "                         [--dns NAME...] [--days N]\n"
    "       lbwatch pki issue --dir DIR --agent --name NAME [--ip ADDR...] [--dns NAME...]\n"
    "                         [--days N]\n"
    "\n"
    "Issues DIR/NAME.crt and DIR/NAME.key (EC P-256, key mode 0600), signed by the CA in DIR,\n"
    "for a cluster node (SAN URI lbwatch://node/N, CN NAME) or, with --agent, for a\n"
    "balancer-host agent (SAN URI lbwatch://agent/NAME). An existing NAME.crt/.key is replaced.\n"
    "\n"
    "  --dir DIR     PKI directory holding ca.crt and ca.key\n"
    "  --name NAME   1-63 of A-Z a-z 0-9 . _ -, starting with a letter or digit; not 'ca'\n"
    "  --id N        the node's raft id, 1..9223372036854775807 (nodes only)\n"
    "  --agent       issue an agent certificate instead of a node certificate\n"
    "  --ip ADDR     IPv4 or IPv6 SAN, up to 8 (nodes need at least one)\n"
    "  --dns NAME    DNS SAN, up to 8\n"
    "  --days N      validity in days (default 825)\n"
    "  -h, --help    show this help\n";

static const char usage_show[] =
    "usage: lbwatch pki show FILE\n"
    "\n"
    "Prints subject, issuer, serial, validity (UTC) and days left, SANs, the lbwatch\n"
    "identity, key type and size, and the SHA-256 fingerprint of a PEM certificate.\n"
    "\n"
    "  -h, --help    show this help\n";

static int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "lbwatch pki %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nRun 'lbwatch pki %s --help' for usage.\n", cmd);
    return 2;
}

static int runtime_error(const char *reason)
{
    fprintf(stderr, "lbwatch pki: %s\n", reason);
    return 1;
}

/* getopt_long's '?' and ':' results as a usage error. */
static int bad_option(const char *cmd, int c, char **argv)
{
    const char *opt = argv[optind - 1];

    if (c == ':')
        return usage_error(cmd, "option '%s' needs a value", opt);
    if (optopt != 0 && optopt != '?')
        return usage_error(cmd, "unknown option '-%c'", optopt);
    return usage_error(cmd, "unknown option '%s'", opt);
}

static int parse_days(const char *s, int *out)
{
    char *end;
    long v;

    if (s[0] < '0' || s[0] > '9')
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < 1 || v > MAX_DAYS)
        return -1;
    *out = (int)v;
    return 0;
}

/* getopt state is global: start every parse afresh (glibc resets fully on optind = 0). */
static void getopt_reset(void)
{
    optind = 0;
    opterr = 0;
}

static int cmd_init(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"days", required_argument, NULL, 'D'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL;
    int days = CA_DAYS_DEFAULT, c;
    char err[ERRBUF];

    getopt_reset();
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'D':
            if (parse_days(optarg, &days) != 0)
                return usage_error("init", "--days must be a whole number 1-%d", MAX_DAYS);
            break;
        case 'h':
            fputs(usage_init, stdout);
            return 0;
        default:
            return bad_option("init", c, argv);
        }
    }
    if (optind < argc)
        return usage_error("init", "unexpected argument '%s'", argv[optind]);
    if (dir == NULL || dir[0] == '\0')
        return usage_error("init", "--dir is required");
    if (lbw_pki_init(dir, days, err, sizeof(err)) != 0)
        return runtime_error(err);
    printf("wrote %s/ca.crt and %s/ca.key (valid %d days)\n", dir, dir, days);
    return 0;
}

/* What option parsing returns when the command should go on (else: the exit code). */
#define GO_ON (-1)

struct issue_args {
    const char *dir;
    const char *name;
    const char *id_text;
    int agent;
    int days;
    const char *ips[LBW_PKI_MAX_SANS + 1];
    const char *dns[LBW_PKI_MAX_SANS + 1];
    size_t nips, ndns;
};

static int add_listed(const char **list, size_t *n, const char *value)
{
    if (*n == LBW_PKI_MAX_SANS)
        return -1;
    list[(*n)++] = value;
    return 0;
}

static int parse_issue_opts(int argc, char **argv, struct issue_args *a)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},  {"name", required_argument, NULL, 'n'},
        {"id", required_argument, NULL, 'i'},   {"agent", no_argument, NULL, 'a'},
        {"ip", required_argument, NULL, 'I'},   {"dns", required_argument, NULL, 'N'},
        {"days", required_argument, NULL, 'D'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    getopt_reset();
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': a->dir = optarg; break;
        case 'n': a->name = optarg; break;
        case 'i': a->id_text = optarg; break;
        case 'a': a->agent = 1; break;
        case 'I':
            if (!ip_text_valid(optarg))
                return usage_error("issue", "--ip '%s' is not an IPv4 or IPv6 address", optarg);
            if (add_listed(a->ips, &a->nips, optarg) != 0)
                return usage_error("issue", "at most %d --ip", LBW_PKI_MAX_SANS);
            break;
        case 'N':
            if (!dns_name_valid(optarg))
                return usage_error("issue", "--dns '%s' is not a DNS name", optarg);
            if (add_listed(a->dns, &a->ndns, optarg) != 0)
                return usage_error("issue", "at most %d --dns", LBW_PKI_MAX_SANS);
            break;
        case 'D':
            if (parse_days(optarg, &a->days) != 0)
                return usage_error("issue", "--days must be a whole number 1-%d", MAX_DAYS);
            break;
        case 'h':
            fputs(usage_issue, stdout);
            return 0;
        default:
            return bad_option("issue", c, argv);
        }
    }
    if (optind < argc)
        return usage_error("issue", "unexpected argument '%s'", argv[optind]);
    return GO_ON;
}

/* Checks the parsed options and fills id. Returns GO_ON, or the exit code. */
static int issue_identity(const struct issue_args *a, struct lbw_identity *id)
{
    if (a->dir == NULL || a->dir[0] == '\0')
        return usage_error("issue", "--dir is required");
    if (a->name == NULL)
        return usage_error("issue", "--name is required");
    if (!lbw_identity_name_valid(a->name) || strcmp(a->name, CA_NAME) == 0)
        return usage_error("issue", "bad --name '%s' (1-63 of A-Z a-z 0-9 . _ -, starting "
                                    "with a letter or digit; not 'ca')", a->name);
    memset(id, 0, sizeof(*id));
    memcpy(id->name, a->name, strlen(a->name) + 1);
    if (a->agent) {
        if (a->id_text != NULL)
            return usage_error("issue", "--id is for nodes; agents have none");
        id->kind = LBW_ID_AGENT;
        return GO_ON;
    }
    if (a->id_text == NULL)
        return usage_error("issue", "--id is required for a node (or give --agent)");
    if (lbw_identity_parse_id(a->id_text, strlen(a->id_text), &id->id) != 0)
        return usage_error("issue", "bad --id '%s' (1..9223372036854775807, no sign or "
                                    "leading zero)", a->id_text);
    if (a->nips == 0)
        return usage_error("issue", "a node needs at least one --ip");
    id->kind = LBW_ID_NODE;
    return GO_ON;
}

static int cmd_issue(int argc, char **argv)
{
    struct issue_args a = {.days = LEAF_DAYS_DEFAULT};
    struct lbw_identity id;
    char err[ERRBUF], uri[128];
    int rc;

    if ((rc = parse_issue_opts(argc, argv, &a)) != GO_ON)
        return rc;
    if ((rc = issue_identity(&a, &id)) != GO_ON)
        return rc;
    if (lbw_pki_issue(a.dir, &id, a.ips, a.dns, a.days, err, sizeof(err)) != 0)
        return runtime_error(err);
    lbw_identity_uri(&id, uri, sizeof(uri));
    printf("wrote %s/%s.crt and %s/%s.key for %s (valid %d days)\n", a.dir, id.name, a.dir,
           id.name, uri, a.days);
    return 0;
}

static int cmd_show(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char err[ERRBUF];
    int c;

    getopt_reset();
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (c != 'h')
            return bad_option("show", c, argv);
        fputs(usage_show, stdout);
        return 0;
    }
    if (argc - optind != 1)
        return usage_error("show", "expected exactly one FILE");
    if (lbw_pki_show(argv[optind], stdout, err, sizeof(err)) != 0)
        return runtime_error(err);
    return 0;
}

int lbw_pki_main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(int argc, char **argv);
    } cmds[] = {{"init", cmd_init}, {"issue", cmd_issue}, {"show", cmd_show}};

    if (argc < 2) {
        fputs(usage_pki, stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(usage_pki, stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (strcmp(argv[1], cmds[i].name) == 0)
            return cmds[i].run(argc - 1, argv + 1);
    fprintf(stderr, "lbwatch pki: unknown command '%s'\n\n%s", argv[1], usage_pki);
    return 2;
}
