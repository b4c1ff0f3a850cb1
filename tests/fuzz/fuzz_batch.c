/* fuzz_batch.c - libFuzzer target for raft/batch's verifier and decoder. Each input is tried
 * twice:
 *   - as a whole entry, verified against a fixed test CA (its seeds, in
 *     tests/fuzz/corpus/fuzz_batch, are real batches signed by certificates of that CA);
 *   - as a payload, which the fuzzer wraps into an entry of the test node "node2" and signs
 *     with its (test) Ed25519 key, so that the payload decoder, lbw_batch_foreach and
 *     lbw_batch_foreach_key run on arbitrary payloads behind a good signature.
 * It must never crash, leak or read out of bounds; whatever is accepted must decode exactly
 * as the view says: nsamples samples with canonical keys and timestamps >= 0, all inside the
 * input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "probes/sample.h"
#include "raft/batch.h"

static const char CA_PEM[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBiTCCAS6gAwIBAgIRAPcrrb/PmZxKl9rAs2noEM8wCgYIKoZIzj0EAwIwEjEQ\n"
    "MA4GA1UEAwwHZnV6ei1jYTAgFw0yMzExMTQyMjEzMjBaGA8yMTAwMDEwMTAwMDAw\n"
    "MFowEjEQMA4GA1UEAwwHZnV6ei1jYTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IA\n"
    "BLqWg8384kMsIpUhQ2LPty3hckXZUzf7jgWC5rSe+QFnntJCPaRGbVWcfWw1p47W\n"
    "UGyug/SW4y1osseJfzOGz++jYzBhMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/\n"
    "BAQDAgEGMB0GA1UdDgQWBBQAmvNRfIQxn+JJ4t7K3PpqXgLF0DAfBgNVHSMEGDAW\n"
    "gBQAmvNRfIQxn+JJ4t7K3PpqXgLF0DAKBggqhkjOPQQDAgNJADBGAiEA/qTXpPLL\n"
    "Zsf+vs7NAKO0HyerjQTI2GQgCdeZ3M+3KEMCIQCx14OSciOW7B5I8f1dezRSpG62\n"
    "PTJ4UzpIsbJa1Yuicg==\n"
    "-----END CERTIFICATE-----\n";

static const char NODE2_PEM[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBkTCCATigAwIBAgIRAJVL05OBGUa4LHGre+e68bgwCgYIKoZIzj0EAwIwEjEQ\n"
    "MA4GA1UEAwwHZnV6ei1jYTAgFw0yMzExMTQyMjEzMjBaGA8yMTAwMDEwMTAwMDAw\n"
    "MFowEDEOMAwGA1UEAwwFbm9kZTIwKjAFBgMrZXADIQBOj0dnfilqWw/3XeH3BvJV\n"
    "KOPwdmlL8OltkTQRgfGLr6OBnTCBmjAMBgNVHRMBAf8EAjAAMA4GA1UdDwEB/wQE\n"
    "AwIHgDAdBgNVHSUEFjAUBggrBgEFBQcDAQYIKwYBBQUHAwIwHQYDVR0OBBYEFI1v\n"
    "1cQ50XDlHRh+OcbPf/RYnSK7MB8GA1UdIwQYMBaAFACa81F8hDGf4kni3src+mpe\n"
    "AsXQMBsGA1UdEQQUMBKGEGxid2F0Y2g6Ly9ub2RlLzIwCgYIKoZIzj0EAwIDRwAw\n"
    "RAIgPUfrD8TAU8Fbvv2nEXSdIxGUKQRfnVTlSly/pe+aHZYCIBJZO9cTDpadylbZ\n"
    "VzFHiyWzFwBKtWLsOZBT7HF0GWp8\n"
    "-----END CERTIFICATE-----\n";

static const char NODE2_KEY_PEM[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEILKT0vOWeOUd79gu9/dNzYQdlU7MkJVo8syTmjZn6yDl\n"
    "-----END PRIVATE KEY-----\n";

static struct lbw_verifier *verifier;
static EVP_PKEY *node2_key;
static uint8_t *node2_der;
static int node2_der_len;
static uint8_t *wrapped;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    BIO *b = BIO_new_mem_buf(CA_PEM, -1);
    X509 *ca = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    b = BIO_new_mem_buf(NODE2_PEM, -1);
    X509 *node2 = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    b = BIO_new_mem_buf(NODE2_KEY_PEM, -1);
    node2_key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    BIO_free(b);
    verifier = lbw_verifier_new_ca(ca, NULL, 0);
    node2_der_len = i2d_X509(node2, &node2_der);
    wrapped = malloc(64 + LBW_BATCH_MAX_CERT + LBW_BATCH_MAX_PAYLOAD + LBW_BATCH_MAX_SIG);
    if (!ca || !node2 || !node2_key || !verifier || node2_der_len <= 0 || !wrapped)
        abort();
    X509_free(ca);
    X509_free(node2);
    return 0;
}

struct span {
    const uint8_t *lo, *hi;
    size_t n;
};

static int check_sample(void *arg, const char *key, size_t keylen, int64_t ts, double value)
{
    struct lbw_key_parsed parsed;
    struct span *s = arg;
    (void)value;
    if (strlen(key) != keylen || lbw_key_parse(key, keylen, &parsed) < 0 || ts < 0)
        abort();
    s->n++;
    return 0;
}

static int check_key(void *arg, size_t index, const char *key, size_t keylen)
{
    struct span *s = arg;
    struct lbw_key_parsed parsed;
    if (index != s->n || (const uint8_t *)key < s->lo || (const uint8_t *)key + keylen > s->hi ||
        lbw_key_parse(key, keylen, &parsed) < 0)
        abort();
    s->n++;
    return 0;
}

/* What an accepted batch says must hold, and lie inside entry[len]. */
static void check_view(const struct lbw_batch_view *v, const uint8_t *entry, size_t len)
{
    const uint8_t *end = entry + len;
    struct span s = {v->payload, v->payload + v->payload_len, 0};
    if (v->payload < entry || v->payload + v->payload_len > end || v->cert < entry ||
        v->cert + v->cert_len > end || v->sig < entry || v->sig + v->siglen != end ||
        v->siglen == 0 || v->siglen > LBW_BATCH_MAX_SIG)
        abort();
    if (lbw_batch_foreach(v, check_sample, &s) != 0 || s.n != v->nsamples)
        abort();
    s.n = 0;
    if (lbw_batch_foreach_key(v, check_key, &s) != 0)
        abort();
}

static uint8_t *put(uint8_t *p, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    return p + n;
}

/* The entry of "node2" (raft id 2) carrying payload, signed: Ed25519 over SHA-256 of every
 * byte before the signature length. Returns its length. */
static size_t wrap(const uint8_t *payload, size_t len)
{
    uint8_t *p = wrapped, digest[32];
    size_t siglen = LBW_BATCH_MAX_SIG;
    p = put(p, LBW_ENTRY_BATCH, 1);
    p = put(p, LBW_BATCH_VERSION, 1);
    p = put(p, LBW_ID_NODE, 1);
    p = put(p, 2, 8);
    p = put(p, 5, 1);
    memcpy(p, "node2", 5);
    p = put(p + 5, 1, 8);
    p = put(p, (uint64_t)node2_der_len, 2);
    memcpy(p, node2_der, (size_t)node2_der_len);
    p = put(p + node2_der_len, len, 4);
    memcpy(p, payload, len);
    p += len;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_Digest(wrapped, (size_t)(p - wrapped), digest, NULL, EVP_sha256(), NULL) != 1 ||
        EVP_DigestSignInit(ctx, NULL, NULL, NULL, node2_key) != 1 ||
        EVP_DigestSign(ctx, p + 2, &siglen, digest, sizeof(digest)) != 1)
        abort();
    EVP_MD_CTX_free(ctx);
    put(p, siglen, 2);
    return (size_t)(p - wrapped) + 2 + siglen;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct lbw_batch_view v;
    char why[256];
    if (lbw_batch_verify(verifier, data, size, &v, why, sizeof(why)) == LBW_BATCH_OK)
        check_view(&v, data, size);
    if (size > LBW_BATCH_MAX_PAYLOAD)
        return 0;
    size_t len = wrap(data, size);
    enum lbw_batch_error e = lbw_batch_verify(verifier, wrapped, len, &v, why, sizeof(why));
    if (e == LBW_BATCH_OK)
        check_view(&v, wrapped, len);
    else if (e != LBW_BATCH_MALFORMED && e != LBW_BATCH_BAD_KEY)
        abort(); /* the wrapping is right: only the payload can be wrong */
    return 0;
}
