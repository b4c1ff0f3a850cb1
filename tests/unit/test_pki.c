/* test_pki.c - node/pki: key types, chains that verify, validity windows, extensions, SANs,
 * identities, PEM files and their modes, the CA directory (init/issue), show, and the
 * `lbwatch pki` command line's exit codes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "node/pki.h"
#include "raft/identity.h"
#include "tests/support/testutil.h"

#define DAY 86400

struct pair {
    X509 *cert;
    EVP_PKEY *key;
};

static void pair_free(struct pair *p)
{
    X509_free(p->cert);
    EVP_PKEY_free(p->key);
    p->cert = NULL;
    p->key = NULL;
}

static struct pair make(const struct lbw_cert_spec *spec, const struct pair *issuer)
{
    struct pair p = {0};
    char err[512] = "";
    int rc = lbw_pki_make_cert(spec, issuer ? issuer->cert : NULL, issuer ? issuer->key : NULL,
                               &p.cert, &p.key, err, sizeof(err));
    if (rc != 0)
        fail_msg("make_cert(%s): %s", spec->cn, err);
    assert_non_null(p.cert);
    assert_non_null(p.key);
    return p;
}

static struct pair make_ca(const char *cn, enum lbw_key_alg alg, const struct pair *issuer)
{
    int64_t now = time(NULL);
    struct lbw_cert_spec s = {.cn = cn, .is_ca = 1, .not_before = now - DAY,
                              .not_after = now + 365 * DAY, .key_alg = alg};
    return make(&s, issuer);
}

static struct lbw_cert_spec leaf_spec(const char *cn, enum lbw_key_alg alg)
{
    int64_t now = time(NULL);
    struct lbw_cert_spec s = {.cn = cn, .not_before = now - DAY, .not_after = now + 5 * DAY,
                              .key_alg = alg};
    return s;
}

/* X509_verify_cert of leaf against root (trusted) with optional intermediate, for a TLS
 * purpose and optionally a host name. Returns the verify error (X509_V_OK on success). */
static int verify(X509 *root, X509 *intermediate, X509 *leaf, int purpose, const char *host)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    int rc;

    assert_non_null(store);
    assert_non_null(ctx);
    assert_non_null(untrusted);
    assert_int_equal(X509_STORE_add_cert(store, root), 1);
    if (intermediate)
        assert_true(sk_X509_push(untrusted, intermediate) > 0);
    assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, untrusted), 1);
    assert_int_equal(X509_STORE_CTX_set_purpose(ctx, purpose), 1);
    if (host)
        assert_int_equal(X509_VERIFY_PARAM_set1_host(X509_STORE_CTX_get0_param(ctx), host, 0), 1);
    rc = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
    sk_X509_free(untrusted);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    ERR_clear_error();
    return rc;
}

static void every_key_type_self_signed(void **state)
{
    (void)state;
    static const struct {
        enum lbw_key_alg alg;
        const char *type;
        int bits;
    } algs[] = {{LBW_KEY_EC_P256, "EC", 256},
                {LBW_KEY_RSA2048, "RSA", 2048},
                {LBW_KEY_RSA4096, "RSA", 4096},
                {LBW_KEY_ED25519, "ED25519", 256}};
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        struct lbw_cert_spec s = leaf_spec("self.example.com", algs[i].alg);
        const char *dns[] = {"self.example.com", NULL};
        memcpy(s.dns, dns, sizeof(dns));
        struct pair p = make(&s, NULL);
        assert_true(EVP_PKEY_is_a(p.key, algs[i].type));
        assert_int_equal(EVP_PKEY_get_bits(p.key), algs[i].bits);
        assert_int_equal(X509_get_version(p.cert), X509_VERSION_3);
        assert_int_equal(X509_verify(p.cert, p.key), 1);
        assert_int_equal(X509_check_private_key(p.cert, p.key), 1);
        assert_int_equal(X509_NAME_cmp(X509_get_subject_name(p.cert),
                                       X509_get_issuer_name(p.cert)), 0);
        /* a self-signed leaf is its own trust anchor: still a valid TLS server certificate */
        assert_int_equal(verify(p.cert, NULL, p.cert, X509_PURPOSE_SSL_SERVER,
                                "self.example.com"), X509_V_OK);
        pair_free(&p);
    }
}

static void chain_verifies_for_every_signer(void **state)
{
    (void)state;
    static const enum lbw_key_alg algs[] = {LBW_KEY_EC_P256, LBW_KEY_RSA2048, LBW_KEY_ED25519};
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        struct pair root = make_ca("root", algs[i], NULL);
        struct pair inter = make_ca("intermediate", algs[(i + 1) % 3], &root);
        struct lbw_cert_spec s = leaf_spec("www.example.com", algs[(i + 2) % 3]);
        s.dns[0] = "www.example.com";
        struct pair leaf = make(&s, &inter);

        assert_int_equal(X509_check_ca(root.cert), 1);
        assert_int_equal(X509_check_ca(inter.cert), 1);
        assert_int_equal(X509_check_ca(leaf.cert), 0);
        assert_int_equal(X509_check_issued(inter.cert, leaf.cert), X509_V_OK);
        assert_int_equal(verify(root.cert, inter.cert, leaf.cert, X509_PURPOSE_SSL_SERVER,
                                "www.example.com"), X509_V_OK);
        assert_int_equal(verify(root.cert, inter.cert, leaf.cert, X509_PURPOSE_SSL_CLIENT, NULL),
                         X509_V_OK);
        /* without the intermediate the chain is incomplete */
        assert_int_equal(verify(root.cert, NULL, leaf.cert, X509_PURPOSE_SSL_SERVER, NULL),
                         X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
        /* wrong host */
        assert_int_equal(verify(root.cert, inter.cert, leaf.cert, X509_PURPOSE_SSL_SERVER,
                                "other.example.com"), X509_V_ERR_HOSTNAME_MISMATCH);
        pair_free(&leaf);
        pair_free(&inter);
        pair_free(&root);
    }
}

static void expired_and_not_yet_valid_fail_verification(void **state)
{
    (void)state;
    int64_t now = time(NULL);
    struct pair ca = make_ca("ca", LBW_KEY_EC_P256, NULL);
    struct lbw_cert_spec s = leaf_spec("old", LBW_KEY_EC_P256);
    s.not_before = now - 30 * DAY;
    s.not_after = now - DAY;
    struct pair old = make(&s, &ca);
    s.cn = "future";
    s.not_before = now + DAY;
    s.not_after = now + 30 * DAY;
    struct pair future = make(&s, &ca);

    assert_int_equal(verify(ca.cert, NULL, old.cert, X509_PURPOSE_SSL_SERVER, NULL),
                     X509_V_ERR_CERT_HAS_EXPIRED);
    assert_int_equal(verify(ca.cert, NULL, future.cert, X509_PURPOSE_SSL_SERVER, NULL),
                     X509_V_ERR_CERT_NOT_YET_VALID);
    pair_free(&future);
    pair_free(&old);
    pair_free(&ca);
}

static void validity_window_is_exact(void **state)
{
    (void)state;
    static const int64_t windows[][2] = {
        {1700000000, 1700000000 + 5 * DAY}, /* UTCTime */
        {946684800, 946684801},             /* one second */
        {2524608000, 2556144000},           /* 2050..2051: GeneralizedTime */
    };
    for (size_t i = 0; i < sizeof(windows) / sizeof(windows[0]); i++) {
        struct lbw_cert_spec s = leaf_spec("w", LBW_KEY_EC_P256);
        s.not_before = windows[i][0];
        s.not_after = windows[i][1];
        struct pair p = make(&s, NULL);
        assert_int_equal(ASN1_TIME_cmp_time_t(X509_get0_notBefore(p.cert), (time_t)windows[i][0]),
                         0);
        assert_int_equal(ASN1_TIME_cmp_time_t(X509_get0_notAfter(p.cert), (time_t)windows[i][1]),
                         0);
        pair_free(&p);
    }
}

static int has_san(const GENERAL_NAMES *sans, int type, const char *text)
{
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
        if (gn->type != type)
            continue;
        const ASN1_STRING *s = type == GEN_DNS ? gn->d.dNSName : gn->d.uniformResourceIdentifier;
        if ((size_t)ASN1_STRING_length(s) == strlen(text) &&
            memcmp(ASN1_STRING_get0_data(s), text, strlen(text)) == 0)
            return 1;
    }
    return 0;
}

static int has_ip(const GENERAL_NAMES *sans, const char *text)
{
    ASN1_OCTET_STRING *want = a2i_IPADDRESS(text);
    int found = 0;
    for (int i = 0; want && i < sk_GENERAL_NAME_num(sans); i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
        if (gn->type == GEN_IPADD && ASN1_OCTET_STRING_cmp(gn->d.iPAddress, want) == 0)
            found = 1;
    }
    ASN1_OCTET_STRING_free(want);
    return found;
}

static void sans_dns_ip_uri(void **state)
{
    (void)state;
    struct lbw_identity id = {.kind = LBW_ID_NODE, .id = 7, .name = "n7"};
    struct lbw_cert_spec s = leaf_spec("n7", LBW_KEY_EC_P256);
    const char *dns[] = {"n7.lbwatch.test", "*.example.org", NULL};
    const char *ips[] = {"127.0.0.1", "::1", "2001:db8::5", NULL};
    memcpy(s.dns, dns, sizeof(dns));
    memcpy(s.ips, ips, sizeof(ips));
    s.identity = &id;
    struct pair p = make(&s, NULL);

    GENERAL_NAMES *sans = X509_get_ext_d2i(p.cert, NID_subject_alt_name, NULL, NULL);
    assert_non_null(sans);
    assert_int_equal(sk_GENERAL_NAME_num(sans), 6);
    assert_true(has_san(sans, GEN_DNS, "n7.lbwatch.test"));
    assert_true(has_san(sans, GEN_DNS, "*.example.org"));
    assert_true(has_ip(sans, "127.0.0.1"));
    assert_true(has_ip(sans, "::1"));
    assert_true(has_ip(sans, "2001:db8::5"));
    assert_true(has_san(sans, GEN_URI, "lbwatch://node/7"));
    GENERAL_NAMES_free(sans);

    assert_int_equal(X509_check_host(p.cert, "n7.lbwatch.test", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(p.cert, "a.example.org", 0, 0, NULL), 1);
    assert_int_equal(X509_check_ip_asc(p.cert, "127.0.0.1", 0), 1);
    assert_int_equal(X509_check_ip_asc(p.cert, "2001:db8::5", 0), 1);
    assert_int_equal(X509_check_ip_asc(p.cert, "127.0.0.2", 0), 0);
    pair_free(&p);

    /* no SANs asked for: no SAN extension at all */
    struct lbw_cert_spec bare = leaf_spec("bare", LBW_KEY_EC_P256);
    p = make(&bare, NULL);
    assert_int_equal(X509_get_ext_by_NID(p.cert, NID_subject_alt_name, -1), -1);
    pair_free(&p);
}

static int ext_critical(X509 *x, int nid)
{
    int idx = X509_get_ext_by_NID(x, nid, -1);
    assert_true(idx >= 0);
    return X509_EXTENSION_get_critical(X509_get_ext(x, idx));
}

static void extensions_for_leaves_and_cas(void **state)
{
    (void)state;
    struct pair ca = make_ca("ca", LBW_KEY_EC_P256, NULL);
    struct lbw_cert_spec s = leaf_spec("ec-leaf", LBW_KEY_EC_P256);
    struct pair ec = make(&s, &ca);
    s = leaf_spec("rsa-leaf", LBW_KEY_RSA2048);
    struct pair rsa = make(&s, &ca);

    /* CA */
    assert_int_equal(ext_critical(ca.cert, NID_basic_constraints), 1);
    assert_int_equal(ext_critical(ca.cert, NID_key_usage), 1);
    assert_int_equal(X509_get_key_usage(ca.cert), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    assert_int_equal(X509_get_ext_by_NID(ca.cert, NID_ext_key_usage, -1), -1);
    assert_non_null(X509_get0_subject_key_id(ca.cert));
    assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(ca.cert),
                                           X509_get0_subject_key_id(ca.cert)), 0);

    /* leaves */
    assert_int_equal(ext_critical(ec.cert, NID_basic_constraints), 1);
    assert_int_equal(ext_critical(ec.cert, NID_key_usage), 1);
    assert_int_equal(X509_get_key_usage(ec.cert), KU_DIGITAL_SIGNATURE);
    assert_int_equal(X509_get_key_usage(rsa.cert), KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
    assert_int_equal(X509_get_extended_key_usage(ec.cert), XKU_SSL_SERVER | XKU_SSL_CLIENT);
    assert_int_equal(X509_check_ca(ec.cert), 0);
    assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(ec.cert),
                                           X509_get0_subject_key_id(ca.cert)), 0);
    assert_int_not_equal(ASN1_OCTET_STRING_cmp(X509_get0_subject_key_id(ec.cert),
                                               X509_get0_subject_key_id(ca.cert)), 0);

    /* serials: positive, 128 random bits (so distinct) */
    const ASN1_INTEGER *s1 = X509_get0_serialNumber(ec.cert);
    const ASN1_INTEGER *s2 = X509_get0_serialNumber(rsa.cert);
    BIGNUM *bn = ASN1_INTEGER_to_BN(s1, NULL);
    assert_false(BN_is_negative(bn));
    assert_true(BN_num_bits(bn) > 64 && BN_num_bits(bn) <= 128);
    BN_free(bn);
    assert_int_not_equal(ASN1_INTEGER_cmp(s1, s2), 0);

    pair_free(&rsa);
    pair_free(&ec);
    pair_free(&ca);
}

static void identity_round_trip(void **state)
{
    (void)state;
    struct lbw_identity node = {.kind = LBW_ID_NODE, .id = 9223372036854775807ULL, .name = "db-3"};
    struct lbw_identity agent = {.kind = LBW_ID_AGENT, .name = "lb1.dc2"};
    struct lbw_identity got;

    struct lbw_cert_spec s = leaf_spec("db-3", LBW_KEY_EC_P256);
    s.identity = &node;
    struct pair p = make(&s, NULL);
    assert_int_equal(lbw_identity_from_cert(p.cert, &got), 0);
    assert_int_equal(got.kind, LBW_ID_NODE);
    assert_true(got.id == node.id);
    assert_string_equal(got.name, "db-3");
    pair_free(&p);

    s = leaf_spec("whatever CN", LBW_KEY_ED25519);
    s.identity = &agent;
    p = make(&s, NULL);
    assert_int_equal(lbw_identity_from_cert(p.cert, &got), 0);
    assert_int_equal(got.kind, LBW_ID_AGENT);
    assert_true(got.id == 0);
    assert_string_equal(got.name, "lb1.dc2");
    pair_free(&p);

    /* an invalid identity is refused rather than written */
    struct lbw_identity bad = {.kind = LBW_ID_NODE, .id = 0, .name = "n"};
    char err[256] = "";
    X509 *x = NULL;
    EVP_PKEY *k = NULL;
    s = leaf_spec("n", LBW_KEY_EC_P256);
    s.identity = &bad;
    assert_int_equal(lbw_pki_make_cert(&s, NULL, NULL, &x, &k, err, sizeof(err)), -1);
    assert_null(x);
    assert_null(k);
    assert_non_null(strstr(err, "identity"));
}

static void make_cert_rejects_bad_specs(void **state)
{
    (void)state;
    char err[256], longcn[80];
    X509 *x = NULL;
    EVP_PKEY *k = NULL;
    struct pair ca = make_ca("ca", LBW_KEY_EC_P256, NULL);
    struct pair other = make_ca("other", LBW_KEY_EC_P256, NULL);
    struct lbw_cert_spec s;

    memset(longcn, 'a', 65);
    longcn[65] = '\0';
    const char *cns[] = {NULL, "", longcn};
    for (size_t i = 0; i < 3; i++) {
        s = leaf_spec("x", LBW_KEY_EC_P256);
        s.cn = cns[i];
        assert_int_equal(lbw_pki_make_cert(&s, NULL, NULL, &x, &k, err, sizeof(err)), -1);
    }
    s = leaf_spec("x", LBW_KEY_EC_P256);
    s.not_after = s.not_before;
    assert_int_equal(lbw_pki_make_cert(&s, NULL, NULL, &x, &k, err, sizeof(err)), -1);
    s = leaf_spec("x", LBW_KEY_EC_P256);
    s.ips[0] = "300.1.1.1";
    assert_int_equal(lbw_pki_make_cert(&s, NULL, NULL, &x, &k, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "300.1.1.1"));
    s = leaf_spec("x", LBW_KEY_EC_P256);
    s.dns[0] = "a b";
    assert_int_equal(lbw_pki_make_cert(&s, NULL, NULL, &x, &k, err, sizeof(err)), -1);
    s = leaf_spec("x", (enum lbw_key_alg)42);
    assert_int_equal(lbw_pki_make_cert(&s, NULL, NULL, &x, &k, err, sizeof(err)), -1);
    s = leaf_spec("x", LBW_KEY_EC_P256);
    assert_int_equal(lbw_pki_make_cert(&s, ca.cert, NULL, &x, &k, err, sizeof(err)), -1);
    assert_int_equal(lbw_pki_make_cert(&s, ca.cert, other.key, &x, &k, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "does not match"));
    assert_null(x);
    assert_null(k);
    assert_int_equal(ERR_peek_error(), 0); /* failures leave no stale OpenSSL errors */
    pair_free(&other);
    pair_free(&ca);
}

static mode_t file_mode(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & 07777;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static void read_file(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, len - 1, f);
    buf[n] = '\0';
    fclose(f);
}

static void write_read_round_trip_and_modes(void **state)
{
    (void)state;
    char dir[256], crt[300], key[300], err[512], text[4096];
    static const enum lbw_key_alg algs[] = {LBW_KEY_EC_P256, LBW_KEY_RSA2048, LBW_KEY_ED25519};
    assert_int_equal(tu_tmpdir("pki-rw", dir, sizeof(dir)), 0);
    snprintf(crt, sizeof(crt), "%s/x.crt", dir);
    snprintf(key, sizeof(key), "%s/x.key", dir);
    mode_t old_umask = umask(0); /* the key must be 0600 whatever the umask */

    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        struct lbw_cert_spec s = leaf_spec("rw", algs[i]);
        struct pair p = make(&s, NULL);
        if (i == 1) /* replacing a too-open key file must not keep its mode */
            assert_int_equal(chmod(key, 0644), 0);
        assert_int_equal(lbw_pki_write_cert(crt, p.cert, err, sizeof(err)), 0);
        assert_int_equal(lbw_pki_write_key(key, p.key, err, sizeof(err)), 0);
        assert_int_equal(file_mode(key), 0600);
        assert_int_equal(file_mode(crt), 0644);
        assert_int_equal(count_entries(dir), 2); /* no temp files left behind */

        read_file(key, text, sizeof(text));
        assert_true(strncmp(text, "-----BEGIN PRIVATE KEY-----\n", 28) == 0); /* PKCS#8 */

        X509 *x = lbw_pki_read_cert(crt, err, sizeof(err));
        EVP_PKEY *k = lbw_pki_read_key(key, err, sizeof(err));
        assert_non_null(x);
        assert_non_null(k);
        assert_int_equal(X509_cmp(x, p.cert), 0);
        assert_int_equal(EVP_PKEY_eq(k, p.key), 1);
        assert_int_equal(X509_check_private_key(x, k), 1);
        X509_free(x);
        EVP_PKEY_free(k);
        pair_free(&p);
    }
    umask(old_umask);

    /* missing, not PEM, the wrong kind of PEM, an encrypted key (no passphrase prompt) */
    char missing[300], junk[300], enc[300];
    snprintf(missing, sizeof(missing), "%s/missing.crt", dir);
    snprintf(junk, sizeof(junk), "%s/junk", dir);
    snprintf(enc, sizeof(enc), "%s/enc.key", dir);
    assert_null(lbw_pki_read_cert(missing, err, sizeof(err)));
    assert_non_null(strstr(err, "No such file"));
    assert_null(lbw_pki_read_key(missing, err, sizeof(err)));
    assert_int_equal(tu_write_file(junk, "hello\n", 6), 0);
    assert_null(lbw_pki_read_cert(junk, err, sizeof(err)));
    assert_non_null(strstr(err, "not a PEM certificate"));
    assert_null(lbw_pki_read_key(junk, err, sizeof(err)));
    assert_null(lbw_pki_read_key(crt, err, sizeof(err)));
    assert_null(lbw_pki_read_cert(key, err, sizeof(err)));

    struct lbw_cert_spec s = leaf_spec("enc", LBW_KEY_EC_P256);
    struct pair p = make(&s, NULL);
    FILE *f = fopen(enc, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PKCS8PrivateKey(f, p.key, EVP_aes_128_cbc(), NULL, 0, NULL,
                                               (void *)"secret"), 1);
    fclose(f);
    assert_null(lbw_pki_read_key(enc, err, sizeof(err)));
    pair_free(&p);

    /* an unwritable place */
    snprintf(missing, sizeof(missing), "%s/no/such/dir/x.key", dir);
    p = make(&s, NULL);
    assert_int_equal(lbw_pki_write_key(missing, p.key, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "No such file"));
    pair_free(&p);
    assert_int_equal(ERR_peek_error(), 0);
    tu_rmrf(dir);
}

static X509 *read_cert_in(const char *dir, const char *file)
{
    char path[300], err[512];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    X509 *x = lbw_pki_read_cert(path, err, sizeof(err));
    if (x == NULL)
        fail_msg("%s", err);
    return x;
}

static void init_refuses_overwrite(void **state)
{
    (void)state;
    char dir[256], sub[300], path[400], err[512], before[4096], after[4096];
    assert_int_equal(tu_tmpdir("pki-init", dir, sizeof(dir)), 0);
    snprintf(sub, sizeof(sub), "%s/pki", dir);

    assert_int_equal(lbw_pki_init(sub, 30, err, sizeof(err)), 0);
    assert_int_equal(file_mode(sub) & 077, 0); /* created private */
    snprintf(path, sizeof(path), "%s/ca.key", sub);
    assert_int_equal(file_mode(path), 0600);
    read_file(path, before, sizeof(before));

    X509 *ca = read_cert_in(sub, "ca.crt");
    assert_int_equal(X509_check_ca(ca), 1);
    assert_true(X509_cmp_time(X509_get0_notAfter(ca), &(time_t){time(NULL) + 29 * DAY}) > 0);
    assert_true(X509_cmp_time(X509_get0_notAfter(ca), &(time_t){time(NULL) + 31 * DAY}) < 0);
    X509_free(ca);

    assert_int_equal(lbw_pki_init(sub, 30, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "already exists"));
    read_file(path, after, sizeof(after));
    assert_string_equal(before, after);
    assert_int_equal(count_entries(sub), 2);

    /* either file alone blocks init, which leaves nothing of its own behind */
    char crt[400], saved[400];
    snprintf(crt, sizeof(crt), "%s/ca.crt", sub);
    snprintf(saved, sizeof(saved), "%s/saved.crt", dir);
    assert_int_equal(rename(crt, saved), 0);
    assert_int_equal(lbw_pki_init(sub, 30, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "ca.key already exists"));
    read_file(path, after, sizeof(after));
    assert_string_equal(before, after);
    assert_int_equal(count_entries(sub), 1);

    assert_int_equal(rename(saved, crt), 0);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(lbw_pki_init(sub, 30, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "ca.crt already exists"));
    assert_int_equal(count_entries(sub), 1);

    assert_int_equal(lbw_pki_init(sub, 0, err, sizeof(err)), -1);
    tu_rmrf(dir);
}

static void issue_node_and_agent(void **state)
{
    (void)state;
    char dir[256], err[512];
    struct lbw_identity got;
    assert_int_equal(tu_tmpdir("pki-issue", dir, sizeof(dir)), 0);
    assert_int_equal(lbw_pki_init(dir, 3650, err, sizeof(err)), 0);

    struct lbw_identity node = {.kind = LBW_ID_NODE, .id = 1, .name = "n1"};
    const char *ips[] = {"127.0.0.1", "::1", NULL};
    const char *dns[] = {"n1.local", NULL};
    assert_int_equal(lbw_pki_issue(dir, &node, ips, dns, 825, err, sizeof(err)), 0);
    struct lbw_identity agent = {.kind = LBW_ID_AGENT, .name = "edge-1"};
    assert_int_equal(lbw_pki_issue(dir, &agent, NULL, NULL, 5, err, sizeof(err)), 0);

    X509 *ca = read_cert_in(dir, "ca.crt");
    X509 *n1 = read_cert_in(dir, "n1.crt");
    X509 *edge = read_cert_in(dir, "edge-1.crt");
    assert_int_equal(verify(ca, NULL, n1, X509_PURPOSE_SSL_SERVER, NULL), X509_V_OK);
    assert_int_equal(verify(ca, NULL, n1, X509_PURPOSE_SSL_CLIENT, NULL), X509_V_OK);
    assert_int_equal(verify(ca, NULL, edge, X509_PURPOSE_SSL_CLIENT, NULL), X509_V_OK);
    assert_int_equal(X509_check_ip_asc(n1, "127.0.0.1", 0), 1);
    assert_int_equal(X509_check_host(n1, "n1.local", 0, 0, NULL), 1);
    assert_int_equal(lbw_identity_from_cert(n1, &got), 0);
    assert_int_equal(got.kind, LBW_ID_NODE);
    assert_true(got.id == 1);
    assert_string_equal(got.name, "n1");
    assert_int_equal(lbw_identity_from_cert(edge, &got), 0);
    assert_int_equal(got.kind, LBW_ID_AGENT);
    assert_string_equal(got.name, "edge-1");
    assert_true(X509_cmp_time(X509_get0_notAfter(edge), &(time_t){time(NULL) + 6 * DAY}) < 0);

    char path[300];
    snprintf(path, sizeof(path), "%s/n1.key", dir);
    assert_int_equal(file_mode(path), 0600);
    EVP_PKEY *k = lbw_pki_read_key(path, err, sizeof(err));
    assert_non_null(k);
    assert_int_equal(X509_check_private_key(n1, k), 1);
    EVP_PKEY_free(k);
    X509_free(edge);
    X509_free(n1);
    X509_free(ca);
    tu_rmrf(dir);
}

static void issue_rejects_bad_requests(void **state)
{
    (void)state;
    char dir[256], err[512];
    assert_int_equal(tu_tmpdir("pki-bad", dir, sizeof(dir)), 0);
    const char *ips[] = {"127.0.0.1", NULL};

    /* no CA yet */
    struct lbw_identity ok = {.kind = LBW_ID_NODE, .id = 1, .name = "n1"};
    assert_int_equal(lbw_pki_issue(dir, &ok, ips, NULL, 10, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no CA in"));
    assert_int_equal(lbw_pki_init(dir, 3650, err, sizeof(err)), 0);

    const struct lbw_identity bad[] = {
        {.kind = LBW_ID_NODE, .id = 0, .name = "n1"},
        {.kind = LBW_ID_NODE, .id = (uint64_t)INT64_MAX + 1, .name = "n1"},
        {.kind = LBW_ID_NODE, .id = 1, .name = ""},
        {.kind = LBW_ID_NODE, .id = 1, .name = "-n1"},
        {.kind = LBW_ID_NODE, .id = 1, .name = "../n1"},
        {.kind = LBW_ID_NODE, .id = 1, .name = "ca"},
        {.kind = LBW_ID_AGENT, .id = 3, .name = "a1"},
        {.kind = LBW_ID_NONE, .id = 1, .name = "n1"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(lbw_pki_issue(dir, &bad[i], ips, NULL, 10, err, sizeof(err)), -1);
    assert_int_equal(lbw_pki_issue(dir, &ok, ips, NULL, 0, err, sizeof(err)), -1);
    const char *many[] = {"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5",
                          "10.0.0.6", "10.0.0.7", "10.0.0.8", "10.0.0.9", NULL};
    assert_int_equal(lbw_pki_issue(dir, &ok, many, NULL, 10, err, sizeof(err)), -1);
    const char *badip[] = {"localhost", NULL};
    assert_int_equal(lbw_pki_issue(dir, &ok, badip, NULL, 10, err, sizeof(err)), -1);
    assert_int_equal(count_entries(dir), 2); /* only the CA */

    many[8] = NULL; /* exactly LBW_PKI_MAX_SANS fits */
    assert_int_equal(lbw_pki_issue(dir, &ok, many, NULL, 10, err, sizeof(err)), 0);
    tu_rmrf(dir);
}

static char *show(const char *path, int *rc)
{
    char *text = NULL, err[512];
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    *rc = lbw_pki_show(path, f, err, sizeof(err));
    fclose(f);
    return text;
}

static void show_summarises(void **state)
{
    (void)state;
    char dir[256], path[300], err[512], fp[200];
    int rc;
    assert_int_equal(tu_tmpdir("pki-show", dir, sizeof(dir)), 0);
    assert_int_equal(lbw_pki_init(dir, 3650, err, sizeof(err)), 0);
    struct lbw_identity node = {.kind = LBW_ID_NODE, .id = 12, .name = "n12"};
    const char *ips[] = {"127.0.0.1", "::1", NULL};
    assert_int_equal(lbw_pki_issue(dir, &node, ips, NULL, 100, err, sizeof(err)), 0);
    snprintf(path, sizeof(path), "%s/n12.crt", dir);

    char *out = show(path, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "subject:     CN=n12\n"));
    assert_non_null(strstr(out, "issuer:      CN=lbwatch cluster CA\n"));
    /* issued for exactly 100 days from now: 100, or 99 once a second has passed */
    assert_true(strstr(out, "days left:   100\n") || strstr(out, "days left:   99\n"));
    assert_non_null(strstr(out, "CA:          no\n"));
    assert_non_null(strstr(out, "SANs:        IP:127.0.0.1, IP:::1, URI:lbwatch://node/12\n"));
    assert_non_null(strstr(out, "identity:    lbwatch://node/12 (node 12, name n12)\n"));
    assert_non_null(strstr(out, "key:         EC prime256v1, 256 bits\n"));
    X509 *x = read_cert_in(dir, "n12.crt");
    unsigned char md[32];
    unsigned int n;
    assert_int_equal(X509_digest(x, EVP_sha256(), md, &n), 1);
    for (unsigned int i = 0; i < n; i++)
        snprintf(fp + 3 * i, sizeof(fp) - 3 * i, "%02X%s", md[i], i + 1 < n ? ":" : "\n");
    assert_non_null(strstr(out, fp));
    X509_free(x);
    free(out);

    /* an expired self-signed RSA certificate without an identity */
    int64_t now = time(NULL);
    struct lbw_cert_spec s = {.cn = "old.example.com", .not_before = now - 10 * DAY,
                              .not_after = now - 3600, .key_alg = LBW_KEY_RSA2048};
    s.dns[0] = "old.example.com";
    struct pair p = make(&s, NULL);
    snprintf(path, sizeof(path), "%s/old.crt", dir);
    assert_int_equal(lbw_pki_write_cert(path, p.cert, err, sizeof(err)), 0);
    pair_free(&p);
    out = show(path, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "days left:   -1 (expired)\n"));
    assert_non_null(strstr(out, "identity:    none\n"));
    assert_non_null(strstr(out, "key:         RSA, 2048 bits\n"));
    free(out);

    snprintf(path, sizeof(path), "%s/ca.key", dir);
    out = show(path, &rc);
    assert_int_equal(rc, -1);
    free(out);
    tu_rmrf(dir);
}

/* Runs lbw_pki_main with stdout and stderr discarded; returns its exit code. */
static int cli(const char *first, ...)
{
    char *argv[32];
    int argc = 0, saved_out = dup(1), saved_err = dup(2), null = open("/dev/null", O_WRONLY);
    va_list ap;

    argv[argc++] = (char *)"pki";
    va_start(ap, first);
    for (const char *a = first; a != NULL && argc < 31; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    fflush(stdout);
    fflush(stderr);
    dup2(null, 1);
    dup2(null, 2);
    int rc = lbw_pki_main(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    close(null);
    return rc;
}

static void cli_exit_codes(void **state)
{
    (void)state;
    char dir[256], crt[300];
    assert_int_equal(tu_tmpdir("pki-cli", dir, sizeof(dir)), 0);
    snprintf(crt, sizeof(crt), "%s/n1.crt", dir);

    assert_int_equal(cli(NULL), 2);
    assert_int_equal(cli("--help", NULL), 0);
    assert_int_equal(cli("frobnicate", NULL), 2);
    assert_int_equal(cli("init", "--help", NULL), 0);
    assert_int_equal(cli("issue", "--help", NULL), 0);
    assert_int_equal(cli("show", "--help", NULL), 0);
    assert_int_equal(cli("init", NULL), 2);
    assert_int_equal(cli("init", "--dir", NULL), 2);
    assert_int_equal(cli("init", "--dir", dir, "--bogus", NULL), 2);
    assert_int_equal(cli("init", "--dir", dir, "--days", "12x", NULL), 2);
    assert_int_equal(cli("init", "--dir", dir, "extra", NULL), 2);
    assert_int_equal(cli("init", "--dir", dir, NULL), 0);
    assert_int_equal(cli("init", "--dir", dir, NULL), 1);

    assert_int_equal(cli("issue", "--dir", dir, "--name", "n1", "--ip", "127.0.0.1", NULL), 2);
    assert_int_equal(cli("issue", "--dir", dir, "--name", "n1", "--id", "01", "--ip",
                         "127.0.0.1", NULL), 2);
    assert_int_equal(cli("issue", "--dir", dir, "--name", "n1", "--id", "1", NULL), 2);
    assert_int_equal(cli("issue", "--dir", dir, "--name", "n1", "--id", "1", "--ip", "1.2.3",
                         NULL), 2);
    assert_int_equal(cli("issue", "--dir", dir, "--name", "ca", "--id", "1", "--ip",
                         "127.0.0.1", NULL), 2);
    assert_int_equal(cli("issue", "--dir", dir, "--agent", "--name", "a1", "--id", "1", NULL), 2);
    assert_int_equal(cli("issue", "--dir", dir, "--name", "n1", "--id", "1", "--ip",
                         "127.0.0.1", "--dns", "n1.local", "--days", "30", NULL), 0);
    assert_int_equal(cli("issue", "--dir", dir, "--agent", "--name", "a1", NULL), 0);
    assert_int_equal(cli("issue", "--dir", "/nonexistent/lbw", "--agent", "--name", "a1", NULL),
                     1);

    assert_int_equal(cli("show", crt, NULL), 0);
    assert_int_equal(cli("show", NULL), 2);
    assert_int_equal(cli("show", crt, crt, NULL), 2);
    assert_int_equal(cli("show", "/nonexistent.crt", NULL), 1);
    tu_rmrf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_key_type_self_signed),
        cmocka_unit_test(chain_verifies_for_every_signer),
        cmocka_unit_test(expired_and_not_yet_valid_fail_verification),
        cmocka_unit_test(validity_window_is_exact),
        cmocka_unit_test(sans_dns_ip_uri),
        cmocka_unit_test(extensions_for_leaves_and_cas),
        cmocka_unit_test(identity_round_trip),
        cmocka_unit_test(make_cert_rejects_bad_specs),
        cmocka_unit_test(write_read_round_trip_and_modes),
        cmocka_unit_test(init_refuses_overwrite),
        cmocka_unit_test(issue_node_and_agent),
        cmocka_unit_test(issue_rejects_bad_requests),
        cmocka_unit_test(show_summarises),
        cmocka_unit_test(cli_exit_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
