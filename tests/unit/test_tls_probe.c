/* test_tls_probe.c - the TLS probe against real `openssl s_server` processes on 127.0.0.1,
 * with certificates crafted by lbw_pki_make_cert: verification outcomes (valid, expired,
 * expiring, wrong host, self-signed, short-lived intermediate), TLS 1.2, RSA keys, OCSP
 * stapling (good, revoked, none), connect failures, a silent server that must time out without
 * holding up other probes on the loop, 1,000 concurrent probes, cancellation, trust store
 * reloads and the samples a result turns into. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "node/pki.h"
#include "probes/tls.h"
#include "probes/tlsio.h"
#include "tests/support/testutil.h"

#define DAY 86400
#define PROBE_TIMEOUT_MS 5000

/* A certificate made for the suite, with its PEM files. */
struct crafted {
    X509 *cert;
    EVP_PKEY *key;
    char crt[512];
    char keyf[512];
};

enum server {
    SRV_VALID, SRV_EXPIRED, SRV_SOON, SRV_SELF, SRV_CHAIN, SRV_TLS12, SRV_RSA,
    SRV_OCSP_GOOD, SRV_OCSP_REVOKED, SRV_COUNT
};

static struct {
    char dir[256];
    char ca_file[512];
    int64_t now;
    struct crafted ca, other_ca, valid, expired, soon, self, inter, chained, rsa, client;
    uint16_t port[SRV_COUNT];
} fx;

/* --- fixture -------------------------------------------------------------------------------- */

static int craft(struct crafted *c, const char *name, const char *cn, int is_ca,
                 int64_t not_before, int64_t not_after, enum lbw_key_alg alg,
                 const struct crafted *issuer)
{
    char err[256];
    struct lbw_cert_spec spec = {
        .cn = cn, .is_ca = is_ca, .not_before = not_before, .not_after = not_after,
        .key_alg = alg,
    };
    if (!is_ca)
        spec.dns[0] = cn;
    if (lbw_pki_make_cert(&spec, issuer ? issuer->cert : NULL, issuer ? issuer->key : NULL,
                          &c->cert, &c->key, err, sizeof(err)) != 0) {
        fprintf(stderr, "craft %s: %s\n", name, err);
        return -1;
    }
    snprintf(c->crt, sizeof(c->crt), "%s/%s.crt", fx.dir, name);
    snprintf(c->keyf, sizeof(c->keyf), "%s/%s.key", fx.dir, name);
    if (lbw_pki_write_cert(c->crt, c->cert, err, sizeof(err)) != 0 ||
        lbw_pki_write_key(c->keyf, c->key, err, sizeof(err)) != 0) {
        fprintf(stderr, "write %s: %s\n", name, err);
        return -1;
    }
    return 0;
}

static void crafted_free(struct crafted *c)
{
    X509_free(c->cert);
    EVP_PKEY_free(c->key);
}

/* YYMMDDHHMMSSZ, as openssl's index.txt wants it. */
static void asn1_index_time(int64_t t, char *out, size_t outlen)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    snprintf(out, outlen, "%02d%02d%02d%02d%02d%02dZ", tm.tm_year % 100, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* An OCSP response for the valid leaf, signed by the CA, made by `openssl ocsp`. */
static int make_ocsp_response(const char *name, int revoked, char *respout, size_t outlen)
{
    char index[PATH_MAX], line[512], exp[32], rev[32];
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(fx.valid.cert), NULL);
    char *serial = bn ? BN_bn2hex(bn) : NULL;
    if (!serial) {
        BN_free(bn);
        return -1;
    }
    asn1_index_time(fx.now + 30 * DAY, exp, sizeof(exp));
    asn1_index_time(fx.now - DAY, rev, sizeof(rev));
    int n = snprintf(line, sizeof(line), "%s\t%s\t%s\t%s\tunknown\t/CN=www.test\n",
                     revoked ? "R" : "V", exp, revoked ? rev : "", serial);
    OPENSSL_free(serial);
    BN_free(bn);
    snprintf(index, sizeof(index), "%s/%s.index", fx.dir, name);
    snprintf(respout, outlen, "%s/%s.der", fx.dir, name);
    if (tu_write_file(index, line, (size_t)n) != 0)
        return -1;
    char *argv[] = {"openssl", "ocsp", "-index", index, "-rsigner", fx.ca.crt, "-rkey",
                    fx.ca.keyf, "-CA", fx.ca.crt, "-issuer", fx.ca.crt, "-cert", fx.valid.crt,
                    "-respout", respout, "-ndays", "1", NULL};
    return tu_run(argv, NULL, 0) == 0 ? 0 : -1;
}

/* Starts `openssl s_server -www` with the given extra arguments on a free port. */
static int start_server(enum server s, const char *name, const struct crafted *leaf,
                        const char *extra1, const char *extra2)
{
    char accept[32], log[PATH_MAX];
    uint16_t port = tu_free_port();
    snprintf(accept, sizeof(accept), "127.0.0.1:%u", port);
    snprintf(log, sizeof(log), "%s/%s.log", fx.dir, name);
    char *argv[] = {"openssl", "s_server", "-quiet", "-www", "-accept", accept,
                    "-cert", (char *)leaf->crt, "-key", (char *)leaf->keyf,
                    (char *)extra1, (char *)extra2, NULL};
    if (port == 0 || tu_spawn(argv, log) < 0 || tu_wait_port(port, 10000) != 0) {
        fprintf(stderr, "s_server %s did not start (see %s)\n", name, log);
        return -1;
    }
    fx.port[s] = port;
    return 0;
}

static int craft_all(void)
{
    int64_t now = fx.now;
    return craft(&fx.ca, "ca", "lbwatch test CA", 1, now - DAY, now + 365 * DAY,
                 LBW_KEY_EC_P256, NULL) ||
           craft(&fx.other_ca, "other-ca", "some other CA", 1, now - DAY, now + 365 * DAY,
                 LBW_KEY_EC_P256, NULL) ||
           craft(&fx.valid, "valid", "www.test", 0, now - 3600, now + 30 * DAY,
                 LBW_KEY_EC_P256, &fx.ca) ||
           craft(&fx.expired, "expired", "www.test", 0, now - 30 * DAY, now - DAY,
                 LBW_KEY_EC_P256, &fx.ca) ||
           craft(&fx.soon, "soon", "www.test", 0, now - 3600, now + 5 * DAY,
                 LBW_KEY_EC_P256, &fx.ca) ||
           craft(&fx.self, "self", "www.test", 0, now - 3600, now + 30 * DAY,
                 LBW_KEY_EC_P256, NULL) ||
           craft(&fx.inter, "inter", "lbwatch test intermediate", 1, now - DAY,
                 now + 10 * DAY, LBW_KEY_EC_P256, &fx.ca) ||
           craft(&fx.chained, "chained", "www.test", 0, now - 3600, now + 60 * DAY,
                 LBW_KEY_EC_P256, &fx.inter) ||
           craft(&fx.rsa, "rsa", "www.test", 0, now - 3600, now + 30 * DAY,
                 LBW_KEY_RSA2048, &fx.ca) ||
           craft(&fx.client, "client", "node1", 0, now - 3600, now + 30 * DAY,
                 LBW_KEY_EC_P256, &fx.ca);
}

static int start_all(void)
{
    char good[PATH_MAX], revoked[PATH_MAX];
    if (make_ocsp_response("ocsp-good", 0, good, sizeof(good)) != 0 ||
        make_ocsp_response("ocsp-revoked", 1, revoked, sizeof(revoked)) != 0) {
        fprintf(stderr, "openssl ocsp failed\n");
        return -1;
    }
    return start_server(SRV_VALID, "valid", &fx.valid, NULL, NULL) ||
           start_server(SRV_EXPIRED, "expired", &fx.expired, NULL, NULL) ||
           start_server(SRV_SOON, "soon", &fx.soon, NULL, NULL) ||
           start_server(SRV_SELF, "self", &fx.self, NULL, NULL) ||
           start_server(SRV_CHAIN, "chain", &fx.chained, "-cert_chain", fx.inter.crt) ||
           start_server(SRV_TLS12, "tls12", &fx.valid, "-tls1_2", NULL) ||
           start_server(SRV_RSA, "rsa", &fx.rsa, NULL, NULL) ||
           start_server(SRV_OCSP_GOOD, "ocsp-good", &fx.valid, "-status_file", good) ||
           start_server(SRV_OCSP_REVOKED, "ocsp-revoked", &fx.valid, "-status_file", revoked);
}

static int suite_setup(void **state)
{
    (void)state;
    if (tu_tmpdir("lbw-tls", fx.dir, sizeof(fx.dir)) != 0)
        return -1;
    fx.now = (int64_t)time(NULL);
    if (craft_all() != 0 || start_all() != 0)
        return -1;
    snprintf(fx.ca_file, sizeof(fx.ca_file), "%s", fx.ca.crt);
    return 0;
}

static int suite_teardown(void **state)
{
    (void)state;
    tu_stop_all();
    struct crafted *all[] = {&fx.ca, &fx.other_ca, &fx.valid, &fx.expired, &fx.soon,
                             &fx.self, &fx.inter, &fx.chained, &fx.rsa, &fx.client};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        crafted_free(all[i]);
    tu_rmrf(fx.dir);
    return 0;
}

/* --- running probes ------------------------------------------------------------------------- */

struct outcome {
    int calls;
    struct lbw_tls_result r;
};

static void record(void *arg, const struct lbw_tls_result *r)
{
    struct outcome *o = arg;
    o->r = *r;
    o->calls++;
}

/* Bounds a wait on the loop whatever the code under test does: when it expires the loop
 * stops and the test fails. It does not keep the loop alive by itself. */
struct bound {
    uv_timer_t timer;
    int expired;
};

static void on_bound(uv_timer_t *t)
{
    struct bound *b = t->data;
    b->expired = 1;
    uv_stop(t->loop);
}

static void bound_start(struct bound *b, uv_loop_t *loop, uint64_t ms)
{
    b->expired = 0;
    uv_timer_init(loop, &b->timer);
    b->timer.data = b;
    uv_timer_start(&b->timer, on_bound, ms, 0);
    uv_unref((uv_handle_t *)&b->timer);
}

static void bound_end(struct bound *b)
{
    assert_false(b->expired);
    uv_close((uv_handle_t *)&b->timer, NULL);
}

static void loop_finish(uv_loop_t *loop, struct lbw_tls_prober *p)
{
    lbw_tls_prober_close(p);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0); /* every handle was closed */
}

/* Runs one probe on a fresh loop and prober; bounded by the probe's own timeout. */
static struct lbw_tls_result probe(const char *host, uint16_t port, const char *server_name,
                                   const char *ca_file)
{
    uv_loop_t loop;
    struct lbw_tls_prober *p;
    struct bound b;
    char err[256];
    struct outcome o = {0};
    struct lbw_tls_target t = {host, port, server_name, ca_file, PROBE_TIMEOUT_MS};

    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(lbw_tls_prober_new(&p, &loop, err, sizeof(err)), 0);
    bound_start(&b, &loop, PROBE_TIMEOUT_MS + 5000);
    assert_int_equal(lbw_tls_probe_start(p, &t, record, &o), 0);
    assert_int_equal(lbw_tls_prober_active(p), 1);
    while (o.calls == 0 && !b.expired && uv_run(&loop, UV_RUN_ONCE))
        ;
    bound_end(&b);
    assert_int_equal(o.calls, 1);
    assert_int_equal(lbw_tls_prober_active(p), 0);
    loop_finish(&loop, p);
    return o.r;
}

static struct lbw_tls_result probe_server(enum server s, const char *server_name)
{
    return probe("127.0.0.1", fx.port[s], server_name, fx.ca_file);
}

static void fingerprint_of(X509 *cert, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    assert_int_equal(X509_digest(cert, EVP_sha256(), md, &len), 1);
    assert_int_equal(len, 32);
    for (unsigned i = 0; i < len; i++)
        sprintf(out + 2 * i, "%02x", md[i]);
}

/* Fields every inspected certificate must carry, whatever verification said. */
static void assert_leaf_fields(const struct lbw_tls_result *r, const struct crafted *leaf,
                               int64_t not_before, int64_t not_after)
{
    char fp[65];
    assert_true(r->have_cert);
    assert_int_equal(r->not_before, not_before);
    assert_int_equal(r->not_after, not_after);
    assert_string_equal(r->subject, "CN=www.test");
    fingerprint_of(leaf->cert, fp);
    assert_string_equal(r->fingerprint_sha256, fp);
}

/* --- verification outcomes ------------------------------------------------------------------ */

static void valid_certificate(void **state)
{
    (void)state;
    struct lbw_tls_result r = probe_server(SRV_VALID, "www.test");
    assert_true(r.success);
    assert_int_equal(r.failed_phase, LBW_TLS_PHASE_DONE);
    assert_string_equal(r.error, "");
    assert_string_equal(r.version, "TLSv1.3");
    assert_true(strlen(r.cipher) > 0);
    assert_leaf_fields(&r, &fx.valid, fx.now - 3600, fx.now + 30 * DAY);
    assert_int_equal(r.earliest_not_after, fx.now + 30 * DAY);
    assert_int_equal(r.chain_len, 1);
    assert_true(r.chain_verified);
    assert_int_equal(r.verify_code, X509_V_OK);
    assert_string_equal(r.verify_error, "ok");
    assert_true(r.hostname_match);
    assert_string_equal(r.key_type, "EC");
    assert_int_equal(r.key_bits, 256);
    assert_string_equal(r.issuer, "CN=lbwatch test CA");
    assert_int_equal(r.ocsp, LBW_OCSP_NONE);
    assert_true(r.connect_seconds > 0 && r.handshake_seconds > 0);
    assert_true(r.duration_seconds >= r.connect_seconds + r.handshake_seconds);
}

static void expired_certificate(void **state)
{
    (void)state;
    struct lbw_tls_result r = probe_server(SRV_EXPIRED, "www.test");
    assert_true(r.success);
    assert_false(r.chain_verified);
    assert_int_equal(r.verify_code, X509_V_ERR_CERT_HAS_EXPIRED);
    assert_string_equal(r.verify_error, "certificate has expired");
    assert_leaf_fields(&r, &fx.expired, fx.now - 30 * DAY, fx.now - DAY);
    assert_int_equal(r.earliest_not_after, fx.now - DAY);
    assert_true(r.hostname_match);
    assert_string_equal(r.key_type, "EC");
    assert_string_equal(r.issuer, "CN=lbwatch test CA");
}

static void expiring_soon(void **state)
{
    (void)state;
    struct lbw_tls_result r = probe_server(SRV_SOON, "www.test");
    assert_true(r.success);
    assert_true(r.chain_verified);
    assert_int_equal(r.verify_code, X509_V_OK);
    assert_leaf_fields(&r, &fx.soon, fx.now - 3600, fx.now + 5 * DAY);
}

static void wrong_host(void **state)
{
    (void)state;
    struct lbw_tls_result r = probe_server(SRV_VALID, "other.test");
    assert_true(r.success);
    assert_true(r.chain_verified);
    assert_false(r.hostname_match);
    assert_leaf_fields(&r, &fx.valid, fx.now - 3600, fx.now + 30 * DAY);
}

static void self_signed(void **state)
{
    (void)state;
    struct lbw_tls_result r = probe_server(SRV_SELF, "www.test");
    assert_true(r.success);
    assert_false(r.chain_verified);
    assert_int_equal(r.verify_code, X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT);
    assert_leaf_fields(&r, &fx.self, fx.now - 3600, fx.now + 30 * DAY);
    assert_string_equal(r.issuer, "CN=www.test");
}

static void intermediate_expires_first(void **state)
{
    (void)state;
    struct lbw_tls_result r = probe_server(SRV_CHAIN, "www.test");
    assert_true(r.success);
    assert_true(r.chain_verified);
    assert_int_equal(r.chain_len, 2);
    assert_leaf_fields(&r, &fx.chained, fx.now - 3600, fx.now + 60 * DAY);
    assert_int_equal(r.earliest_not_after, fx.now + 10 * DAY);
    assert_true(r.earliest_not_after != r.not_after);
    assert_string_equal(r.issuer, "CN=lbwatch test intermediate");
}

static void tls12_only_server(void **state)
{
    (void)state;
    struct lbw_tls_result r = probe_server(SRV_TLS12, "www.test");
    assert_true(r.success);
    assert_string_equal(r.version, "TLSv1.2");
    assert_true(strlen(r.cipher) > 0);
    assert_true(r.chain_verified);
}

static void rsa_key(void **state)
{
    (void)state;
    struct lbw_tls_result r = probe_server(SRV_RSA, "www.test");
    assert_true(r.success);
    assert_true(r.chain_verified);
    assert_string_equal(r.key_type, "RSA");
    assert_int_equal(r.key_bits, 2048);
    assert_leaf_fields(&r, &fx.rsa, fx.now - 3600, fx.now + 30 * DAY);
}

static void ocsp_stapling(void **state)
{
    (void)state;
    struct lbw_tls_result good = probe_server(SRV_OCSP_GOOD, "www.test");
    struct lbw_tls_result revoked = probe_server(SRV_OCSP_REVOKED, "www.test");
    struct lbw_tls_result none = probe_server(SRV_VALID, "www.test");
    assert_true(good.success && revoked.success && none.success);
    assert_int_equal(good.ocsp, LBW_OCSP_GOOD);
    assert_int_equal(revoked.ocsp, LBW_OCSP_REVOKED);
    assert_int_equal(none.ocsp, LBW_OCSP_NONE);
    assert_string_equal(lbw_ocsp_status_name(revoked.ocsp), "revoked");
}

static void ocsp_unverifiable_is_invalid(void **state)
{
    (void)state;
    /* against another CA neither the chain nor the stapled response verifies */
    struct lbw_tls_result r = probe("127.0.0.1", fx.port[SRV_OCSP_GOOD], "www.test",
                                    fx.other_ca.crt);
    assert_true(r.success);
    assert_false(r.chain_verified);
    assert_int_equal(r.ocsp, LBW_OCSP_INVALID);
}

static void resolves_names(void **state)
{
    (void)state;
    struct lbw_tls_result r = probe("localhost", fx.port[SRV_VALID], "www.test", fx.ca_file);
    assert_true(r.success);
    assert_true(r.chain_verified);
    assert_true(r.hostname_match);
}

static void server_name_defaults_to_host(void **state)
{
    (void)state;
    /* no SNI for an address, and the certificate names no IP: checked, no match */
    struct lbw_tls_result r = probe("127.0.0.1", fx.port[SRV_VALID], NULL, fx.ca_file);
    assert_true(r.success);
    assert_true(r.chain_verified);
    assert_false(r.hostname_match);
}

static void missing_ca_file(void **state)
{
    (void)state;
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/no-such-ca.pem", fx.dir);
    struct lbw_tls_result r = probe("127.0.0.1", fx.port[SRV_VALID], "www.test", path);
    assert_true(r.success);
    assert_true(r.have_cert);
    assert_false(r.chain_verified);
    assert_int_equal(r.verify_code, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
    assert_non_null(strstr(r.verify_error, "not loaded"));
}

/* --- failures and timing -------------------------------------------------------------------- */

static void connection_refused(void **state)
{
    (void)state;
    uint16_t port = tu_free_port();
    struct lbw_tls_result r = probe("127.0.0.1", port, "www.test", fx.ca_file);
    assert_false(r.success);
    assert_int_equal(r.failed_phase, LBW_TLS_PHASE_CONNECT);
    assert_string_equal(r.error, "connect: connection refused");
    assert_false(r.have_cert);
}

/* A listening socket nobody accepts on: the kernel completes TCP handshakes, then silence. */
static int silent_listener(uint16_t *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 16), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

struct crowd {
    struct lbw_tls_prober *p;
    uv_timer_t tick;
    int started, completed, succeeded, completed_while_silent;
    struct outcome silent;
};

static void on_crowd_probe(void *arg, const struct lbw_tls_result *r)
{
    struct crowd *c = arg;
    c->completed++;
    c->succeeded += r->success && r->chain_verified;
    if (c->silent.calls == 0)
        c->completed_while_silent++;
}

static void on_tick(uv_timer_t *t)
{
    struct crowd *c = t->data;
    struct lbw_tls_target good = {"127.0.0.1", fx.port[SRV_VALID], "www.test", fx.ca_file,
                                  PROBE_TIMEOUT_MS};
    assert_int_equal(lbw_tls_probe_start(c->p, &good, on_crowd_probe, c), 0);
    c->started++;
}

static void on_silent_probe(void *arg, const struct lbw_tls_result *r)
{
    struct crowd *c = arg;
    record(&c->silent, r);
    uv_close((uv_handle_t *)&c->tick, NULL);
}

static void silent_server_times_out_alone(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct bound b;
    char err[256];
    struct crowd c = {0};
    uint16_t port;
    int fd = silent_listener(&port);

    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(lbw_tls_prober_new(&c.p, &loop, err, sizeof(err)), 0);
    bound_start(&b, &loop, 20000);
    struct lbw_tls_target silent = {"127.0.0.1", port, "www.test", fx.ca_file, 1500};
    assert_int_equal(lbw_tls_probe_start(c.p, &silent, on_silent_probe, &c), 0);
    uv_timer_init(&loop, &c.tick);
    c.tick.data = &c;
    uv_timer_start(&c.tick, on_tick, 0, 100);
    uv_run(&loop, UV_RUN_DEFAULT); /* ends when the silent probe and the crowd are done */
    bound_end(&b);

    assert_int_equal(c.silent.calls, 1);
    assert_false(c.silent.r.success);
    assert_int_equal(c.silent.r.failed_phase, LBW_TLS_PHASE_HANDSHAKE);
    assert_string_equal(c.silent.r.error, "handshake: timeout after 1500 ms");
    assert_true(c.silent.r.duration_seconds >= 1.4 && c.silent.r.duration_seconds < 5.0);
    assert_true(c.silent.r.connect_seconds > 0);
    assert_false(c.silent.r.have_cert);
    assert_true(c.started >= 12);
    assert_int_equal(c.completed, c.started);
    assert_int_equal(c.succeeded, c.started);
    assert_true(c.completed_while_silent >= 10);
    loop_finish(&loop, c.p);
    close(fd);
}

static void on_mass_probe(void *arg, const struct lbw_tls_result *r)
{
    int *counts = arg;
    counts[0]++;
    counts[1] += r->success && r->chain_verified && r->hostname_match;
}

static void thousand_concurrent_probes(void **state)
{
    (void)state;
    enum { N = 1000 };
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < 4 * N) {
        rl.rlim_cur = rl.rlim_max < 4 * N ? rl.rlim_max : 4 * N;
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    assert_true(rl.rlim_cur >= N + 100);

    uv_loop_t loop;
    struct bound b;
    char err[256];
    struct lbw_tls_prober *p;
    int counts[2] = {0, 0};
    struct lbw_tls_target t = {"127.0.0.1", fx.port[SRV_VALID], "www.test", fx.ca_file,
                               120000};
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(lbw_tls_prober_new(&p, &loop, err, sizeof(err)), 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(lbw_tls_probe_start(p, &t, on_mass_probe, counts), 0);
    assert_int_equal(lbw_tls_prober_active(p), N);
    bound_start(&b, &loop, 180000);
    uv_run(&loop, UV_RUN_DEFAULT);
    bound_end(&b);
    assert_int_equal(counts[0], N);
    assert_int_equal(counts[1], N);
    loop_finish(&loop, p);
}

static void on_cancelled(void *arg, const struct lbw_tls_result *r)
{
    (void)r;
    (*(int *)arg)++;
}

static void on_close_now(uv_timer_t *t)
{
    lbw_tls_prober_close(t->data);
    uv_close((uv_handle_t *)t, NULL);
}

static void close_cancels_in_flight(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_timer_t later;
    struct bound b;
    char err[256];
    struct lbw_tls_prober *p;
    int calls = 0;
    uint16_t port;
    int fd = silent_listener(&port);
    struct lbw_tls_target silent = {"127.0.0.1", port, "www.test", fx.ca_file, 10000};
    struct lbw_tls_target named = {"localhost", port, "www.test", NULL, 10000};

    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(lbw_tls_prober_new(&p, &loop, err, sizeof(err)), 0);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(lbw_tls_probe_start(p, &silent, on_cancelled, &calls), 0);
        assert_int_equal(lbw_tls_probe_start(p, &named, on_cancelled, &calls), 0);
    }
    uv_timer_init(&loop, &later);
    later.data = p;
    uv_timer_start(&later, on_close_now, 200, 0);
    bound_start(&b, &loop, 5000); /* well before the probes' own timeouts */
    uv_run(&loop, UV_RUN_DEFAULT);
    bound_end(&b);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(calls, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    close(fd);
}

static void ca_file_reloaded_when_changed(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct bound b;
    char err[256], path[PATH_MAX];
    struct lbw_tls_prober *p;
    struct outcome first = {0}, second = {0};

    snprintf(path, sizeof(path), "%s/rotating-ca.pem", fx.dir);
    assert_int_equal(lbw_pki_write_cert(path, fx.other_ca.cert, err, sizeof(err)), 0);
    struct lbw_tls_target t = {"127.0.0.1", fx.port[SRV_VALID], "www.test", path,
                               PROBE_TIMEOUT_MS};
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(lbw_tls_prober_new(&p, &loop, err, sizeof(err)), 0);
    bound_start(&b, &loop, 2 * PROBE_TIMEOUT_MS + 5000);
    assert_int_equal(lbw_tls_probe_start(p, &t, record, &first), 0);
    while (first.calls == 0 && !b.expired && uv_run(&loop, UV_RUN_ONCE))
        ;
    assert_int_equal(lbw_pki_write_cert(path, fx.ca.cert, err, sizeof(err)), 0);
    assert_int_equal(lbw_tls_probe_start(p, &t, record, &second), 0);
    while (second.calls == 0 && !b.expired && uv_run(&loop, UV_RUN_ONCE))
        ;
    bound_end(&b);
    assert_true(first.r.success && second.r.success);
    assert_false(first.r.chain_verified);
    assert_int_equal(first.r.verify_code, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
    assert_true(second.r.chain_verified);
    loop_finish(&loop, p);
}

/* --- tlsio: a server and a client session on one loop --------------------------------------- */

#define ECHO_BYTES (1u << 20)
#define FLOOD_BYTES (32u << 20)
#define PAIR_GUARD_MS 20000

struct pair {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_timer_t guard, later;
    SSL_CTX *sctx, *cctx;
    struct lbw_tlsio *server, *client;
    void (*server_ready)(struct pair *);    /* after each side's handshake */
    void (*client_ready)(struct pair *);
    int server_hs, client_hs;               /* handshake statuses, once *_hs_done */
    int server_hs_done, client_hs_done;
    char server_err[160], client_err[160];
    char server_peer[64], client_peer[64];  /* peer certificate CN */
    int server_end, client_end;             /* how reading ended; 0 while it goes on */
    size_t server_got, client_got;
    int bad_bytes, read_stops;
    int write_status, write_done, write_done_early;
    size_t queued;
    int timed_out;
};

static unsigned char pattern(size_t i)
{
    return (unsigned char)(i * 131 + 7);
}

static unsigned char *pattern_buf(size_t len)
{
    unsigned char *b = malloc(len);
    assert_non_null(b);
    for (size_t i = 0; i < len; i++)
        b[i] = pattern(i);
    return b;
}

static void check_pattern(struct pair *pp, size_t offset, const char *data, ssize_t n)
{
    for (ssize_t i = 0; i < n; i++)
        pp->bad_bytes += (unsigned char)data[i] != pattern(offset + (size_t)i);
}

/* Closes both sessions, the listener and the timers; uv_run returns once they are closed. */
static void pair_end(struct pair *pp)
{
    if (pp->server)
        lbw_tlsio_close(pp->server, NULL);
    if (pp->client)
        lbw_tlsio_close(pp->client, NULL);
    pp->server = pp->client = NULL;
    if (!uv_is_closing((uv_handle_t *)&pp->listener)) {
        uv_close((uv_handle_t *)&pp->listener, NULL);
        uv_close((uv_handle_t *)&pp->guard, NULL);
        uv_close((uv_handle_t *)&pp->later, NULL);
    }
}

static void on_guard(uv_timer_t *t)
{
    struct pair *pp = t->data;
    pp->timed_out = 1;
    pair_end(pp);
}

static void peer_cn(struct lbw_tlsio *t, char *out, size_t outlen)
{
    X509 *peer = SSL_get0_peer_certificate(lbw_tlsio_ssl(t));
    out[0] = '\0';
    if (peer)
        X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, out,
                                  (int)outlen);
}

static void on_server_handshake(struct lbw_tlsio *t, int status)
{
    struct pair *pp = lbw_tlsio_data(t);
    pp->server_hs = status;
    pp->server_hs_done = 1;
    snprintf(pp->server_err, sizeof(pp->server_err), "%s", lbw_tlsio_error(t));
    peer_cn(t, pp->server_peer, sizeof(pp->server_peer));
    pp->server_ready(pp);
}

static void on_client_handshake(struct lbw_tlsio *t, int status)
{
    struct pair *pp = lbw_tlsio_data(t);
    pp->client_hs = status;
    pp->client_hs_done = 1;
    snprintf(pp->client_err, sizeof(pp->client_err), "%s", lbw_tlsio_error(t));
    peer_cn(t, pp->client_peer, sizeof(pp->client_peer));
    pp->client_ready(pp);
}

static void on_pair_connection(uv_stream_t *listener, int status)
{
    struct pair *pp = listener->data;
    assert_int_equal(status, 0);
    assert_null(pp->server);
    assert_int_equal(lbw_tlsio_new(&pp->server, &pp->loop, pp->sctx, LBW_TLSIO_SERVER, pp), 0);
    assert_int_equal(uv_accept(listener, lbw_tlsio_stream(pp->server)), 0);
    assert_int_equal(lbw_tlsio_handshake(pp->server, on_server_handshake), 0);
}

static void on_pair_connect(struct lbw_tlsio *t, int status)
{
    assert_int_equal(status, 0);
    assert_int_equal(lbw_tlsio_handshake(t, on_client_handshake), 0);
}

/* Runs a server and a client session against each other until pair_end(). */
static void pair_run(struct pair *pp, SSL_CTX *sctx, SSL_CTX *cctx)
{
    struct sockaddr_in a;
    int len = sizeof(a);
    pp->sctx = sctx;
    pp->cctx = cctx;
    assert_non_null(sctx);
    assert_non_null(cctx);
    assert_int_equal(uv_loop_init(&pp->loop), 0);
    uv_tcp_init(&pp->loop, &pp->listener);
    uv_timer_init(&pp->loop, &pp->guard);
    uv_timer_init(&pp->loop, &pp->later);
    pp->listener.data = pp->guard.data = pp->later.data = pp;
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &a), 0);
    assert_int_equal(uv_tcp_bind(&pp->listener, (struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&pp->listener, 8, on_pair_connection), 0);
    assert_int_equal(uv_tcp_getsockname(&pp->listener, (struct sockaddr *)&a, &len), 0);
    uv_timer_start(&pp->guard, on_guard, PAIR_GUARD_MS, 0);

    assert_int_equal(lbw_tlsio_new(&pp->client, &pp->loop, cctx, LBW_TLSIO_CLIENT, pp), 0);
    assert_int_equal(lbw_tlsio_set_server_name(pp->client, "www.test"), 0);
    assert_int_equal(SSL_set1_host(lbw_tlsio_ssl(pp->client), "www.test"), 1);
    assert_int_equal(lbw_tlsio_connect(pp->client, (struct sockaddr *)&a, on_pair_connect), 0);
    uv_run(&pp->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&pp->loop), 0);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    assert_false(pp->timed_out);
}

static SSL_CTX *mtls_server_ctx(void)
{
    char err[256];
    SSL_CTX *ctx = lbw_tlsio_server_ctx(fx.valid.crt, fx.valid.keyf, fx.ca.crt, err,
                                        sizeof(err));
    if (!ctx)
        fail_msg("server ctx: %s", err);
    return ctx;
}

static SSL_CTX *client_ctx(const char *ca, const struct crafted *cert)
{
    char err[256];
    SSL_CTX *ctx = lbw_tlsio_client_ctx(ca, 1, cert ? cert->crt : NULL,
                                        cert ? cert->keyf : NULL, err, sizeof(err));
    if (!ctx)
        fail_msg("client ctx: %s", err);
    return ctx;
}

/* mutual TLS echo: 1 MiB each way, then close_notify both ways */

static void echo_back(struct lbw_tlsio *t, ssize_t n, const char *data)
{
    struct pair *pp = lbw_tlsio_data(t);
    if (n > 0) {
        uv_buf_t b = uv_buf_init((char *)data, (unsigned)n);
        assert_int_equal(lbw_tlsio_write(t, &b, 1, NULL, NULL), 0);
        pp->server_got += (size_t)n;
        return;
    }
    pp->server_end = (int)n;
    if (n == UV_EOF)
        assert_int_equal(lbw_tlsio_shutdown(t, NULL), 0);
}

static void echo_server_ready(struct pair *pp)
{
    if (pp->server_hs == 0)
        assert_int_equal(lbw_tlsio_read_start(pp->server, echo_back), 0);
}

static void echo_written(struct lbw_tlsio *t, int status, void *arg)
{
    struct pair *pp = lbw_tlsio_data(t);
    assert_ptr_equal(arg, pp);
    pp->write_status = status;
    pp->write_done++;
}

static void echo_client_read(struct lbw_tlsio *t, ssize_t n, const char *data)
{
    struct pair *pp = lbw_tlsio_data(t);
    if (n > 0) {
        check_pattern(pp, pp->client_got, data, n);
        pp->client_got += (size_t)n;
        if (pp->client_got == ECHO_BYTES)
            assert_int_equal(lbw_tlsio_shutdown(t, NULL), 0);
        return;
    }
    pp->client_end = (int)n;
    pair_end(pp);
}

static void echo_client_ready(struct pair *pp)
{
    if (pp->client_hs != 0) {
        pair_end(pp);
        return;
    }
    unsigned char *payload = pattern_buf(ECHO_BYTES);
    uv_buf_t bufs[2] = {uv_buf_init((char *)payload, 1000),
                        uv_buf_init((char *)payload + 1000, ECHO_BYTES - 1000)};
    assert_int_equal(lbw_tlsio_write(pp->client, bufs, 2, echo_written, pp), 0);
    free(payload); /* the write encrypted it already */
    assert_int_equal(lbw_tlsio_read_start(pp->client, echo_client_read), 0);
}

static void tlsio_mutual_tls_echo(void **state)
{
    (void)state;
    struct pair pp = {.server_ready = echo_server_ready, .client_ready = echo_client_ready};
    pair_run(&pp, mtls_server_ctx(), client_ctx(fx.ca.crt, &fx.client));
    assert_int_equal(pp.client_hs, 0);
    assert_int_equal(pp.server_hs, 0);
    assert_string_equal(pp.client_peer, "www.test");
    assert_string_equal(pp.server_peer, "node1");
    assert_int_equal(pp.write_done, 1);
    assert_int_equal(pp.write_status, 0);
    assert_int_equal(pp.server_got, ECHO_BYTES);
    assert_int_equal(pp.client_got, ECHO_BYTES);
    assert_int_equal(pp.bad_bytes, 0);
    assert_int_equal(pp.server_end, UV_EOF);
    assert_int_equal(pp.client_end, UV_EOF);
}

/* back-pressure: a server that does not read holds the client's write back; reading with
 * stops and restarts gets every byte in order */

static void flood_read(struct lbw_tlsio *t, ssize_t n, const char *data);

static void resume_reading(uv_timer_t *timer)
{
    struct pair *pp = timer->data;
    assert_int_equal(lbw_tlsio_read_start(pp->server, flood_read), 0);
}

static void flood_read(struct lbw_tlsio *t, ssize_t n, const char *data)
{
    struct pair *pp = lbw_tlsio_data(t);
    if (n < 0) {
        pp->server_end = (int)n;
        pair_end(pp);
        return;
    }
    check_pattern(pp, pp->server_got, data, n);
    pp->server_got += (size_t)n;
    if (pp->server_got == FLOOD_BYTES) {
        pair_end(pp);
    } else if (pp->server_got / 16384 % 64 == 0) {
        lbw_tlsio_read_stop(t); /* the rest of this record waits in SSL */
        pp->read_stops++;
        uv_timer_start(&pp->later, resume_reading, 1, 0);
    }
}

static void check_pressure(uv_timer_t *timer)
{
    struct pair *pp = timer->data;
    if (!pp->server_hs_done) { /* a loaded machine: the server has not read Finished yet */
        uv_timer_start(timer, check_pressure, 50, 0);
        return;
    }
    pp->queued = lbw_tlsio_write_queue_size(pp->client);
    pp->write_done_early = pp->write_done;
    assert_int_equal(lbw_tlsio_read_start(pp->server, flood_read), 0);
}

static void flood_server_ready(struct pair *pp)
{
    assert_int_equal(pp->server_hs, 0);
}

static void flood_client_ready(struct pair *pp)
{
    assert_int_equal(pp->client_hs, 0);
    unsigned char *payload = pattern_buf(FLOOD_BYTES);
    uv_buf_t b = uv_buf_init((char *)payload, FLOOD_BYTES);
    assert_int_equal(lbw_tlsio_write(pp->client, &b, 1, echo_written, pp), 0);
    free(payload);
    uv_update_time(&pp->loop); /* encrypting took a while */
    uv_timer_start(&pp->later, check_pressure, 300, 0);
}

static void tlsio_back_pressure(void **state)
{
    (void)state;
    struct pair pp = {.server_ready = flood_server_ready, .client_ready = flood_client_ready};
    pair_run(&pp, mtls_server_ctx(), client_ctx(fx.ca.crt, &fx.client));
    assert_true(pp.queued > 0);
    assert_int_equal(pp.write_done_early, 0);
    assert_int_equal(pp.server_got, FLOOD_BYTES);
    assert_int_equal(pp.bad_bytes, 0);
    assert_true(pp.read_stops > 0);
    assert_int_equal(pp.write_done, 1);
    assert_int_equal(pp.write_status, 0);
}

/* restarting reading delivers what was already buffered, with no more network data to
 * wake the session: 40,000 bytes fit one loopback segment and one socket read */

#define BUFFERED_BYTES 40000

static void buffered_read(struct lbw_tlsio *t, ssize_t n, const char *data);

static void resume_buffered(uv_timer_t *timer)
{
    struct pair *pp = timer->data;
    assert_int_equal(lbw_tlsio_read_start(pp->server, buffered_read), 0);
}

static void buffered_read(struct lbw_tlsio *t, ssize_t n, const char *data)
{
    struct pair *pp = lbw_tlsio_data(t);
    if (n < 0) {
        pp->server_end = (int)n;
        pair_end(pp);
        return;
    }
    check_pattern(pp, pp->server_got, data, n);
    pp->server_got += (size_t)n;
    if (pp->server_got == BUFFERED_BYTES) {
        pair_end(pp);
        return;
    }
    lbw_tlsio_read_stop(t);
    pp->read_stops++;
    uv_timer_start(&pp->later, resume_buffered, 20, 0);
}

static void buffered_server_ready(struct pair *pp)
{
    assert_int_equal(pp->server_hs, 0);
    assert_int_equal(lbw_tlsio_read_start(pp->server, buffered_read), 0);
}

static void buffered_client_ready(struct pair *pp)
{
    assert_int_equal(pp->client_hs, 0);
    unsigned char *payload = pattern_buf(BUFFERED_BYTES);
    uv_buf_t b = uv_buf_init((char *)payload, BUFFERED_BYTES);
    assert_int_equal(lbw_tlsio_write(pp->client, &b, 1, NULL, NULL), 0);
    free(payload);
}

static void tlsio_read_restart_delivers_buffered(void **state)
{
    (void)state;
    struct pair pp = {.server_ready = buffered_server_ready,
                      .client_ready = buffered_client_ready};
    pair_run(&pp, mtls_server_ctx(), client_ctx(fx.ca.crt, &fx.client));
    assert_int_equal(pp.server_got, BUFFERED_BYTES);
    assert_int_equal(pp.bad_bytes, 0);
    assert_true(pp.read_stops >= 2);
    assert_int_equal(pp.server_end, 0);
}

/* refusals: both sides report a failed handshake (or, in TLS 1.3, the client learns it from
 * the server's alert on its first read) */

static void refusal_check_end(struct pair *pp)
{
    if (pp->server_hs_done && (pp->client_hs || pp->client_end))
        pair_end(pp);
}

static void refusal_client_read(struct lbw_tlsio *t, ssize_t n, const char *data)
{
    struct pair *pp = lbw_tlsio_data(t);
    (void)data;
    if (n < 0) {
        pp->client_end = (int)n;
        snprintf(pp->client_err, sizeof(pp->client_err), "%s", lbw_tlsio_error(t));
        refusal_check_end(pp);
    }
}

static void refusal_server_ready(struct pair *pp)
{
    refusal_check_end(pp);
}

static void refusal_client_ready(struct pair *pp)
{
    if (pp->client_hs == 0)
        assert_int_equal(lbw_tlsio_read_start(pp->client, refusal_client_read), 0);
    refusal_check_end(pp);
}

static void tlsio_requires_client_certificate(void **state)
{
    (void)state;
    struct pair pp = {.server_ready = refusal_server_ready,
                      .client_ready = refusal_client_ready};
    pair_run(&pp, mtls_server_ctx(), client_ctx(fx.ca.crt, NULL));
    assert_int_equal(pp.server_hs, LBW_TLSIO_ETLS);
    assert_non_null(strstr(pp.server_err, "certificate"));
    assert_true(pp.client_hs == LBW_TLSIO_ETLS || pp.client_end == LBW_TLSIO_ETLS);
}

static void tlsio_client_rejects_unknown_ca(void **state)
{
    (void)state;
    char err[256];
    struct pair pp = {.server_ready = refusal_server_ready,
                      .client_ready = refusal_client_ready};
    SSL_CTX *sctx = lbw_tlsio_server_ctx(fx.valid.crt, fx.valid.keyf, NULL, err, sizeof(err));
    pair_run(&pp, sctx, client_ctx(fx.other_ca.crt, NULL));
    assert_int_equal(pp.client_hs, LBW_TLSIO_ETLS);
    assert_string_equal(pp.client_err,
                        "certificate verify failed: unable to get local issuer certificate");
    assert_true(pp.server_hs < 0);
}

static void tlsio_ctx_errors(void **state)
{
    (void)state;
    char err[256], missing[600];
    snprintf(missing, sizeof(missing), "%s/missing.pem", fx.dir);
    assert_null(lbw_tlsio_client_ctx(missing, 1, NULL, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "missing.pem"));
    assert_null(lbw_tlsio_server_ctx(fx.valid.crt, fx.rsa.keyf, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "does not match"));
    assert_null(lbw_tlsio_client_ctx(NULL, 1, fx.client.crt, NULL, err, sizeof(err)));
}

/* --- samples -------------------------------------------------------------------------------- */

struct captured {
    int n;
    struct {
        char key[LBW_KEY_MAX];
        double v;
    } s[32];
};

static void capture(void *arg, const char *key, int64_t ts, double v)
{
    struct captured *c = arg;
    assert_int_equal(ts, 1700000000000);
    assert_true(c->n < 32);
    snprintf(c->s[c->n].key, LBW_KEY_MAX, "%s", key);
    c->s[c->n].v = v;
    c->n++;
}

static struct captured emit(const struct lbw_tls_result *r)
{
    static const struct lbw_label base[] = {{"target", "web"}, {"vantage", "n1"}};
    struct captured c = {0};
    struct lbw_emitter e = {capture, &c, base, 2, 1700000000000};
    lbw_tls_result_emit(r, &e);
    return c;
}

/* The value of the sample with this key; fails the test if there is none. */
static double value_of(const struct captured *c, const char *key)
{
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->s[i].key, key) == 0)
            return c->s[i].v;
    fail_msg("no sample %s", key);
    return 0;
}

static int has_metric(const struct captured *c, const char *metric)
{
    size_t len = strlen(metric);
    for (int i = 0; i < c->n; i++)
        if (strncmp(c->s[i].key, metric, len) == 0 && c->s[i].key[len] == '{')
            return 1;
    return 0;
}

#define L "target=\"web\",vantage=\"n1\""

static void emits_documented_series(void **state)
{
    (void)state;
    struct lbw_tls_result r = probe_server(SRV_VALID, "www.test");
    struct captured c = emit(&r);
    char key[LBW_KEY_MAX];

    assert_int_equal(c.n, 15);
    assert_true(value_of(&c, "probe_success{" L "}") == 1);
    assert_true(value_of(&c, "probe_duration_seconds{" L "}") == r.duration_seconds);
    assert_true(value_of(&c, "lbwatch_tls_connect_seconds{" L "}") == r.connect_seconds);
    assert_true(value_of(&c, "lbwatch_tls_handshake_seconds{" L "}") == r.handshake_seconds);
    assert_true(value_of(&c, "probe_tls_version_info{" L ",version=\"TLS 1.3\"}") == 1);
    snprintf(key, sizeof(key), "lbwatch_tls_cipher_info{cipher=\"%s\"," L "}", r.cipher);
    assert_true(value_of(&c, key) == 1);
    assert_true(value_of(&c, "probe_ssl_earliest_cert_expiry{" L "}") ==
                (double)(fx.now + 30 * DAY));
    assert_true(value_of(&c, "lbwatch_tls_cert_not_after_seconds{" L "}") ==
                (double)(fx.now + 30 * DAY));
    assert_true(value_of(&c, "lbwatch_tls_cert_not_before_seconds{" L "}") ==
                (double)(fx.now - 3600));
    assert_true(value_of(&c, "lbwatch_tls_chain_verified{" L "}") == 1);
    assert_false(has_metric(&c, "lbwatch_tls_verify_error_info"));
    assert_true(value_of(&c, "lbwatch_tls_hostname_match{" L "}") == 1);
    assert_true(value_of(&c, "lbwatch_tls_key_bits{target=\"web\",type=\"EC\","
                             "vantage=\"n1\"}") == 256);
    assert_true(value_of(&c, "lbwatch_tls_ocsp_status{status=\"none\"," L "}") == 1);
    snprintf(key, sizeof(key),
             "probe_ssl_last_chain_info{fingerprint_sha256=\"%s\",issuer=\"CN=lbwatch test "
             "CA\",subject=\"CN=www.test\"," L "}",
             r.fingerprint_sha256);
    assert_true(value_of(&c, key) == 1);
    assert_true(value_of(&c, "lbwatch_tls_chain_length{" L "}") == 1);
}

static void emits_verify_error_and_failures(void **state)
{
    (void)state;
    struct lbw_tls_result expired = probe_server(SRV_EXPIRED, "other.test");
    struct captured c = emit(&expired);
    assert_int_equal(c.n, 16);
    assert_true(value_of(&c, "lbwatch_tls_chain_verified{" L "}") == 0);
    assert_true(value_of(&c, "lbwatch_tls_verify_error_info{reason=\"certificate has "
                             "expired\"," L "}") == 1);
    assert_true(value_of(&c, "lbwatch_tls_hostname_match{" L "}") == 0);
    assert_true(value_of(&c, "probe_ssl_earliest_cert_expiry{" L "}") ==
                (double)(fx.now - DAY));

    struct lbw_tls_result refused = probe("127.0.0.1", tu_free_port(), NULL, NULL);
    c = emit(&refused);
    assert_int_equal(c.n, 2);
    assert_true(value_of(&c, "probe_success{" L "}") == 0);
    assert_true(value_of(&c, "probe_duration_seconds{" L "}") == refused.duration_seconds);
}

static void emits_long_names_shortened(void **state)
{
    (void)state;
    struct lbw_tls_result r = {.success = 1, .have_cert = 1, .failed_phase =
                                   LBW_TLS_PHASE_DONE};
    memset(r.subject, 's', sizeof(r.subject) - 1);
    memset(r.issuer, 'i', sizeof(r.issuer) - 1);
    memset(r.fingerprint_sha256, 'f', 64);
    snprintf(r.version, sizeof(r.version), "TLSv1.2");
    struct captured c = emit(&r);
    assert_true(has_metric(&c, "probe_ssl_last_chain_info"));
    assert_true(value_of(&c, "probe_tls_version_info{" L ",version=\"TLS 1.2\"}") == 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_certificate),
        cmocka_unit_test(expired_certificate),
        cmocka_unit_test(expiring_soon),
        cmocka_unit_test(wrong_host),
        cmocka_unit_test(self_signed),
        cmocka_unit_test(intermediate_expires_first),
        cmocka_unit_test(tls12_only_server),
        cmocka_unit_test(rsa_key),
        cmocka_unit_test(ocsp_stapling),
        cmocka_unit_test(ocsp_unverifiable_is_invalid),
        cmocka_unit_test(resolves_names),
        cmocka_unit_test(server_name_defaults_to_host),
        cmocka_unit_test(missing_ca_file),
        cmocka_unit_test(connection_refused),
        cmocka_unit_test(silent_server_times_out_alone),
        cmocka_unit_test(thousand_concurrent_probes),
        cmocka_unit_test(close_cancels_in_flight),
        cmocka_unit_test(ca_file_reloaded_when_changed),
        cmocka_unit_test(tlsio_mutual_tls_echo),
        cmocka_unit_test(tlsio_back_pressure),
        cmocka_unit_test(tlsio_read_restart_delivers_buffered),
        cmocka_unit_test(tlsio_requires_client_certificate),
        cmocka_unit_test(tlsio_client_rejects_unknown_ca),
        cmocka_unit_test(tlsio_ctx_errors),
        cmocka_unit_test(emits_documented_series),
        cmocka_unit_test(emits_verify_error_and_failures),
        cmocka_unit_test(emits_long_names_shortened),
    };
    return cmocka_run_group_tests(tests, suite_setup, suite_teardown);
}
