/* test_identity.c - raft/identity: names, node ids, URIs, and reading identities out of
 * hand-built certificates (good ones, and every malformed shape we must refuse). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "raft/identity.h"

/* A certificate with the given subject CNs (NULL-terminated, may be empty) and one SAN
 * extension holding the given URIs (lengths explicit so they may contain NUL). No key or
 * signature: lbw_identity_from_cert looks at names and extensions only. */
struct uri {
    const char *s;
    int len; /* -1: strlen */
};

static X509 *cert_with(const char *const *cns, const struct uri *uris, size_t nuris)
{
    X509 *x = X509_new();
    assert_non_null(x);
    for (size_t i = 0; cns && cns[i]; i++)
        assert_int_equal(X509_NAME_add_entry_by_NID(X509_get_subject_name(x), NID_commonName,
                                                    MBSTRING_UTF8, (const unsigned char *)cns[i],
                                                    -1, -1, 0), 1);
    if (nuris == 0)
        return x;
    GENERAL_NAMES *names = sk_GENERAL_NAME_new_null();
    assert_non_null(names);
    for (size_t i = 0; i < nuris; i++) {
        ASN1_IA5STRING *s = ASN1_IA5STRING_new();
        GENERAL_NAME *gn = GENERAL_NAME_new();
        assert_non_null(s);
        assert_non_null(gn);
        int len = uris[i].len < 0 ? (int)strlen(uris[i].s) : uris[i].len;
        assert_int_equal(ASN1_STRING_set(s, uris[i].s, len), 1);
        GENERAL_NAME_set0_value(gn, GEN_URI, s);
        assert_true(sk_GENERAL_NAME_push(names, gn) > 0);
    }
    assert_int_equal(X509_add1_ext_i2d(x, NID_subject_alt_name, names, 0, X509V3_ADD_APPEND), 1);
    GENERAL_NAMES_free(names);
    return x;
}

static int from(const char *cn, const char *uri, struct lbw_identity *out)
{
    const char *cns[] = {cn, NULL};
    struct uri u = {uri, -1};
    X509 *x = cert_with(cns, &u, 1);
    int rc = lbw_identity_from_cert(x, out);
    X509_free(x);
    return rc;
}

static void expect_none(const struct lbw_identity *id)
{
    assert_int_equal(id->kind, LBW_ID_NONE);
    assert_true(id->id == 0);
    assert_string_equal(id->name, "");
}

static void names(void **state)
{
    (void)state;
    char max[LBW_NAME_MAX], over[LBW_NAME_MAX + 1];
    memset(max, 'a', sizeof(max) - 1);
    max[sizeof(max) - 1] = '\0';
    memset(over, 'a', sizeof(over) - 1);
    over[sizeof(over) - 1] = '\0';

    const char *good[] = {"n1", "1", "lb1.dc-2_x", "A", max};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(lbw_identity_name_valid(good[i]));
    const char *bad[] = {"", "-n", ".n", "_n", "a b", "a/b", "a:b", "é", "n\n", over};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(lbw_identity_name_valid(bad[i]));
    assert_false(lbw_identity_name_valid(NULL));
}

static void node_ids(void **state)
{
    (void)state;
    uint64_t v = 0;
    assert_int_equal(lbw_identity_parse_id("1", 1, &v), 0);
    assert_true(v == 1);
    assert_int_equal(lbw_identity_parse_id("9223372036854775807", 19, &v), 0);
    assert_true(v == (uint64_t)INT64_MAX);
    assert_int_equal(lbw_identity_parse_id("42xyz", 2, &v), 0); /* only len bytes count */
    assert_true(v == 42);

    const char *bad[] = {"",   "0",  "00", "01", "-1", "+1", " 1", "1 ", "1a", "0x1",
                         "9223372036854775808", "18446744073709551615",
                         "18446744073709551616", "99999999999999999999", "1.5"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = 77;
        assert_int_equal(lbw_identity_parse_id(bad[i], strlen(bad[i]), &v), -1);
        assert_true(v == 77);
    }
}

static void uris(void **state)
{
    (void)state;
    char out[64];
    struct lbw_identity node = {.kind = LBW_ID_NODE, .id = 12, .name = "n12"};
    struct lbw_identity agent = {.kind = LBW_ID_AGENT, .name = "edge.1"};
    assert_int_equal(lbw_identity_uri(&node, out, sizeof(out)), 0);
    assert_string_equal(out, "lbwatch://node/12");
    assert_int_equal(lbw_identity_uri(&agent, out, sizeof(out)), 0);
    assert_string_equal(out, "lbwatch://agent/edge.1");

    assert_int_equal(lbw_identity_uri(&node, out, 17), -1); /* no room for the NUL */
    assert_string_equal(out, "");
    assert_int_equal(lbw_identity_uri(&node, out, 18), 0);

    struct lbw_identity bad[] = {
        {.kind = LBW_ID_NODE, .id = 0},
        {.kind = LBW_ID_NODE, .id = (uint64_t)INT64_MAX + 1},
        {.kind = LBW_ID_AGENT, .name = "bad name"},
        {.kind = LBW_ID_AGENT, .name = ""},
        {.kind = LBW_ID_NONE, .id = 1, .name = "x"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(lbw_identity_uri(&bad[i], out, sizeof(out)), -1);
}

static void good_certificates(void **state)
{
    (void)state;
    struct lbw_identity id;
    assert_int_equal(from("n1", "lbwatch://node/1", &id), 0);
    assert_int_equal(id.kind, LBW_ID_NODE);
    assert_true(id.id == 1);
    assert_string_equal(id.name, "n1");

    assert_int_equal(from("big", "lbwatch://node/9223372036854775807", &id), 0);
    assert_true(id.id == (uint64_t)INT64_MAX);

    char max[LBW_NAME_MAX + 20] = "lbwatch://agent/";
    memset(max + strlen(max), 'z', LBW_NAME_MAX - 1);
    assert_int_equal(from(NULL, max, &id), 0); /* agents need no CN */
    assert_int_equal(id.kind, LBW_ID_AGENT);
    assert_true(id.id == 0);
    assert_int_equal(strlen(id.name), LBW_NAME_MAX - 1);

    /* other URI schemes beside it are ignored */
    const char *cns[] = {"n5", NULL};
    struct uri u[] = {{"https://n5.example.com/", -1}, {"lbwatch://node/5", -1},
                      {"spiffe://cluster/ns/x", -1}};
    X509 *x = cert_with(cns, u, 3);
    assert_int_equal(lbw_identity_from_cert(x, &id), 0);
    assert_true(id.id == 5);
    assert_string_equal(id.name, "n5");
    X509_free(x);
}

static void rejected_uris(void **state)
{
    (void)state;
    struct lbw_identity id;
    char over[LBW_NAME_MAX + 20] = "lbwatch://agent/";
    memset(over + strlen(over), 'z', LBW_NAME_MAX);
    const char *bad[] = {
        "lbwatch://node/0",
        "lbwatch://node/01",
        "lbwatch://node/-1",
        "lbwatch://node/+1",
        "lbwatch://node/9223372036854775808",
        "lbwatch://node/18446744073709551617",
        "lbwatch://node/",
        "lbwatch://node/1/",
        "lbwatch://node/1?x",
        "lbwatch://node/ 1",
        "lbwatch://Node/1",
        "LBWATCH://node/1",
        "lbwatch:/node/1",
        "lbwatch:",
        "lbwatch://agent/",
        "lbwatch://agent/-a",
        "lbwatch://agent/a/b",
        "lbwatch://agent/a b",
        "lbwatch://agent/..",
        "lbwatch://peer/1",
        over,
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&id, 0xA5, sizeof(id));
        if (from("n1", bad[i], &id) != -1)
            fail_msg("accepted %s", bad[i]);
        expect_none(&id);
    }
    assert_int_equal(ERR_peek_error(), 0);
}

static void rejected_shapes(void **state)
{
    (void)state;
    struct lbw_identity id;
    const char *n1[] = {"n1", NULL};
    X509 *x;

    /* two lbwatch URIs, even identical ones, or a good one beside a malformed one */
    struct uri two[] = {{"lbwatch://node/1", -1}, {"lbwatch://node/2", -1}};
    struct uri same[] = {{"lbwatch://node/1", -1}, {"lbwatch://node/1", -1}};
    struct uri mixed[] = {{"lbwatch://agent/a", -1}, {"lbwatch://node/1", -1}};
    struct uri hidden[] = {{"lbwatch://node/1", -1}, {"LbWatch:junk", -1}};
    struct uri *sets[] = {two, same, mixed, hidden};
    for (size_t i = 0; i < 4; i++) {
        x = cert_with(n1, sets[i], 2);
        assert_int_equal(lbw_identity_from_cert(x, &id), -1);
        expect_none(&id);
        X509_free(x);
    }

    /* an embedded NUL must not truncate the name into something valid */
    struct uri nul[] = {{"lbwatch://agent/a\0b", 19}};
    x = cert_with(NULL, nul, 1);
    assert_int_equal(lbw_identity_from_cert(x, &id), -1);
    X509_free(x);
    struct uri nulnode[] = {{"lbwatch://node/1\0", 17}};
    x = cert_with(n1, nulnode, 1);
    assert_int_equal(lbw_identity_from_cert(x, &id), -1);
    X509_free(x);

    /* no SAN at all; only other schemes; an empty URI */
    x = cert_with(n1, NULL, 0);
    assert_int_equal(lbw_identity_from_cert(x, &id), -1);
    X509_free(x);
    struct uri other[] = {{"https://n1/", -1}, {"", 0}};
    x = cert_with(n1, other, 2);
    assert_int_equal(lbw_identity_from_cert(x, &id), -1);
    X509_free(x);

    /* two SAN extensions */
    struct uri one[] = {{"lbwatch://node/1", -1}};
    x = cert_with(n1, one, 1);
    GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    assert_non_null(names);
    assert_int_equal(X509_add1_ext_i2d(x, NID_subject_alt_name, names, 0, X509V3_ADD_APPEND), 1);
    GENERAL_NAMES_free(names);
    assert_int_equal(lbw_identity_from_cert(x, &id), -1);
    X509_free(x);

    assert_int_equal(lbw_identity_from_cert(NULL, &id), -1);
    assert_int_equal(ERR_peek_error(), 0);
}

static void node_names_come_from_the_cn(void **state)
{
    (void)state;
    struct lbw_identity id;
    struct uri one[] = {{"lbwatch://node/3", -1}};
    char longcn[LBW_NAME_MAX + 1];
    memset(longcn, 'c', LBW_NAME_MAX);
    longcn[LBW_NAME_MAX] = '\0';

    const char *none[] = {NULL};
    const char *two[] = {"n3", "n3", NULL};
    const char *spaced[] = {"node three", NULL};
    const char *dashed[] = {"-n3", NULL};
    const char *toolong[] = {longcn, NULL};
    const char **bad[] = {none, two, spaced, dashed, toolong};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        X509 *x = cert_with(bad[i], one, 1);
        assert_int_equal(lbw_identity_from_cert(x, &id), -1);
        expect_none(&id);
        X509_free(x);
    }

    /* a CN in another string type (BMPString, UTF-16BE) is read as UTF-8 */
    X509 *x = cert_with(NULL, one, 1);
    assert_int_equal(X509_NAME_add_entry_by_NID(X509_get_subject_name(x), NID_commonName,
                                                V_ASN1_BMPSTRING,
                                                (const unsigned char *)"\0n\0003", 4, -1, 0), 1);
    assert_int_equal(lbw_identity_from_cert(x, &id), 0);
    assert_string_equal(id.name, "n3");
    X509_free(x);
}

static void undecodable_input_leaves_no_errors(void **state)
{
    (void)state;
    struct lbw_identity id;
    static const unsigned char junk[] = {0x30, 0x05, 0x86, 0x09, 'l', 'b', 'w'};
    ASN1_OCTET_STRING *der = ASN1_OCTET_STRING_new();
    assert_non_null(der);
    assert_int_equal(ASN1_OCTET_STRING_set(der, junk, sizeof(junk)), 1);
    X509_EXTENSION *ext = X509_EXTENSION_create_by_NID(NULL, NID_subject_alt_name, 0, der);
    assert_non_null(ext);
    X509 *x = cert_with((const char *[]){"n1", NULL}, NULL, 0);
    assert_int_equal(X509_add_ext(x, ext, -1), 1);
    ERR_clear_error();
    assert_int_equal(lbw_identity_from_cert(x, &id), -1);
    expect_none(&id);
    assert_int_equal(ERR_peek_error(), 0);
    X509_free(x);
    X509_EXTENSION_free(ext);
    ASN1_OCTET_STRING_free(der);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names),
        cmocka_unit_test(node_ids),
        cmocka_unit_test(uris),
        cmocka_unit_test(good_certificates),
        cmocka_unit_test(rejected_uris),
        cmocka_unit_test(rejected_shapes),
        cmocka_unit_test(node_names_come_from_the_cn),
        cmocka_unit_test(undecodable_input_leaves_no_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
