/* tls.c - the TLS probe: resolve, connect, handshake through tlsio, then take the presented
 * certificate apart. See tls.h.
 *
 * The prober owns one client SSL_CTX (no verification during the handshake, OCSP status
 * requested), a cache of trust stores per CA file (reloaded when the file changes), and the
 * scratch objects every inspection reuses (a store context, a text BIO, SHA-256). A probe is
 * one allocation holding its timer, its copies of the target's strings and its result; it is
 * freed once its timer, its session and any pending name lookup have all let go of it.
 */
#include "probes/tls.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "probes/tlsio.h"

#define DEFAULT_TIMEOUT_MS 10000
#define OCSP_LEEWAY_SECONDS 300     /* clock skew tolerated on thisUpdate/nextUpdate */

/* The trust store of one CA file ("" = the system CAs). */
struct ca_store {
    struct ca_store *next;
    X509_STORE *store;              /* NULL when the file could not be loaded */
    char error[128];                /* why not */
    int stat_ok;                    /* what the file looked like when loaded */
    struct stat st;
    char path[];
};

struct lbw_tls_prober {
    uv_loop_t *loop;
    SSL_CTX *ctx;
    struct ca_store *cas;
    X509_STORE_CTX *verify;         /* reused for every chain */
    BIO *text;                      /* reused to print names */
    EVP_MD *sha256;
    struct probe *active;           /* in flight: a callback is still owed */
    unsigned nactive;
    unsigned nlive;                 /* allocated: in flight or letting go of handles */
    int closing;
};

struct probe {
    struct lbw_tls_prober *p;
    struct probe *prev, *next;      /* in p->active while in flight */
    lbw_tls_probe_cb cb;
    void *arg;
    X509_STORE *store;              /* referenced; NULL if the CA file did not load */
    const char *host;               /* in names[] */
    const char *server_name;        /* in names[] */
    uint16_t port;
    uint64_t timeout_ms;
    enum lbw_tls_phase phase;
    int done;                       /* result delivered, or cancelled */
    int pending;                    /* timer, session, name lookup still to let go */
    int resolving;
    uint64_t t_start, t_phase;      /* uv_hrtime() */
    uv_timer_t timer;
    uv_getaddrinfo_t gai;
    struct lbw_tlsio *io;
    struct lbw_tls_result r;
    char names[];
};

/* --- names ---------------------------------------------------------------------------------- */

const char *lbw_ocsp_status_name(enum lbw_ocsp_status s)
{
    switch (s) {
    case LBW_OCSP_NONE: return "none";
    case LBW_OCSP_GOOD: return "good";
    case LBW_OCSP_REVOKED: return "revoked";
    case LBW_OCSP_UNKNOWN: return "unknown";
    case LBW_OCSP_INVALID: return "invalid";
    }
    return "invalid";
}

const char *lbw_tls_phase_name(enum lbw_tls_phase p)
{
    switch (p) {
    case LBW_TLS_PHASE_RESOLVE: return "resolve";
    case LBW_TLS_PHASE_CONNECT: return "connect";
    case LBW_TLS_PHASE_HANDSHAKE: return "handshake";
    case LBW_TLS_PHASE_DONE: return "done";
    }
    return "unknown";
}

static int is_ip_literal(const char *s)
{
    unsigned char a[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

/* --- trust stores --------------------------------------------------------------------------- */

static int same_file(const struct ca_store *c, int stat_ok, const struct stat *st)
{
    if (stat_ok != c->stat_ok)
        return 0;
    return !stat_ok || (st->st_dev == c->st.st_dev && st->st_ino == c->st.st_ino &&
                        st->st_size == c->st.st_size &&
                        st->st_mtim.tv_sec == c->st.st_mtim.tv_sec &&
                        st->st_mtim.tv_nsec == c->st.st_mtim.tv_nsec);
}

static void ca_store_load(struct ca_store *c, int stat_ok, const struct stat *st)
{
    X509_STORE_free(c->store);
    c->store = X509_STORE_new();
    c->stat_ok = stat_ok;
    if (stat_ok)
        c->st = *st;
    c->error[0] = '\0';
    int ok = c->store && (c->path[0] ? X509_STORE_load_file(c->store, c->path)
                                     : X509_STORE_set_default_paths(c->store)) == 1;
    if (!ok) {
        unsigned long e = ERR_peek_error();
        const char *reason = e ? ERR_reason_error_string(e) : NULL;
        snprintf(c->error, sizeof(c->error), "CA file %s not loaded: %s",
                 c->path[0] ? c->path : "(system)", reason ? reason : "failed");
        X509_STORE_free(c->store);
        c->store = NULL;
    }
    ERR_clear_error();
}

/* The trust store for path (NULL = system CAs), loaded or reloaded as needed, with a new
 * reference; or NULL with the reason in err. */
static X509_STORE *ca_store_get(struct lbw_tls_prober *p, const char *path, char *err,
                                size_t errlen)
{
    const char *key = path ? path : "";
    struct stat st;
    int stat_ok = path ? stat(path, &st) == 0 : 0;
    struct ca_store *c;

    for (c = p->cas; c; c = c->next)
        if (strcmp(c->path, key) == 0)
            break;
    if (!c) {
        size_t len = strlen(key) + 1;
        c = calloc(1, sizeof(*c) + len);
        if (!c) {
            snprintf(err, errlen, "CA file %s not loaded: out of memory", key);
            return NULL;
        }
        memcpy(c->path, key, len);
        c->next = p->cas;
        p->cas = c;
        ca_store_load(c, stat_ok, &st);
    } else if (path && !same_file(c, stat_ok, &st)) {
        ca_store_load(c, stat_ok, &st);
    }
    if (!c->store) {
        snprintf(err, errlen, "%s", c->error);
        return NULL;
    }
    X509_STORE_up_ref(c->store);
    return c->store;
}

/* --- prober --------------------------------------------------------------------------------- */

static void prober_free(struct lbw_tls_prober *p)
{
    while (p->cas) {
        struct ca_store *c = p->cas;
        p->cas = c->next;
        X509_STORE_free(c->store);
        free(c);
    }
    SSL_CTX_free(p->ctx);
    X509_STORE_CTX_free(p->verify);
    BIO_free(p->text);
    EVP_MD_free(p->sha256);
    free(p);
}

int lbw_tls_prober_new(struct lbw_tls_prober **out, uv_loop_t *loop, char *err, size_t errlen)
{
    *out = NULL;
    struct lbw_tls_prober *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    p->loop = loop;
    p->ctx = lbw_tlsio_client_ctx(NULL, 0, NULL, NULL, err, errlen);
    if (!p->ctx) {
        prober_free(p);
        return -1;
    }
    SSL_CTX_set_tlsext_status_type(p->ctx, TLSEXT_STATUSTYPE_ocsp);
    p->verify = X509_STORE_CTX_new();
    p->text = BIO_new(BIO_s_mem());
    p->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (!p->verify || !p->text || !p->sha256) {
        snprintf(err, errlen, "OpenSSL objects: out of memory");
        ERR_clear_error();
        prober_free(p);
        return -1;
    }
    *out = p;
    return 0;
}

unsigned lbw_tls_prober_active(const struct lbw_tls_prober *p)
{
    return p->nactive;
}

/* --- probe life ----------------------------------------------------------------------------- */

static double seconds_since(uint64_t t0)
{
    return (double)(uv_hrtime() - t0) / 1e9;
}

static void probe_unref(struct probe *pr)
{
    if (--pr->pending > 0)
        return;
    struct lbw_tls_prober *p = pr->p;
    X509_STORE_free(pr->store);
    free(pr);
    if (--p->nlive == 0 && p->closing)
        prober_free(p);
}

static void on_timer_closed(uv_handle_t *h)
{
    probe_unref(h->data);
}

static void on_io_closed(struct lbw_tlsio *io)
{
    probe_unref(lbw_tlsio_data(io));
}

static void probe_unlink(struct probe *pr)
{
    struct lbw_tls_prober *p = pr->p;
    if (pr->prev)
        pr->prev->next = pr->next;
    else
        p->active = pr->next;
    if (pr->next)
        pr->next->prev = pr->prev;
    pr->prev = pr->next = NULL;
    p->nactive--;
    pr->done = 1;
}

/* Lets go of the timer, the session and the name lookup; the probe is freed after. */
static void probe_release(struct probe *pr)
{
    uv_close((uv_handle_t *)&pr->timer, on_timer_closed);
    if (pr->io)
        lbw_tlsio_close(pr->io, on_io_closed);
    if (pr->resolving)
        uv_cancel((uv_req_t *)&pr->gai);
}

static void probe_finish(struct probe *pr)
{
    pr->r.duration_seconds = seconds_since(pr->t_start);
    probe_unlink(pr);
    pr->cb(pr->arg, &pr->r);
    probe_release(pr);
}

static void probe_fail(struct probe *pr, enum lbw_tls_phase phase, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void probe_fail(struct probe *pr, enum lbw_tls_phase phase, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pr->r.error, sizeof(pr->r.error), fmt, ap);
    va_end(ap);
    pr->r.success = 0;
    pr->r.failed_phase = phase;
    probe_finish(pr);
}

/* Setup failures found inside lbw_tls_probe_start are reported from the loop, through the
 * timer: the callback never runs inside the call that started the probe. */
static void on_timer(uv_timer_t *timer);

/* The probe's error and failed phase are set already. */
static void probe_fail_soon(struct probe *pr)
{
    uv_timer_start(&pr->timer, on_timer, 0, 0);
}

/* --- certificate inspection ----------------------------------------------------------------- */

static int64_t asn1_time_unix(const ASN1_TIME *t)
{
    struct tm tm;
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return (int64_t)timegm(&tm);
}

static void name_text(BIO *b, const X509_NAME *name, char *out, size_t outlen)
{
    char *data;
    BIO_reset(b);
    X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253);
    long len = BIO_get_mem_data(b, &data);
    size_t n = len > 0 ? (size_t)len : 0;
    if (n >= outlen)
        n = outlen - 1;
    memcpy(out, data, n);
    out[n] = '\0';
}

static const char *key_type_name(const EVP_PKEY *pk)
{
    switch (EVP_PKEY_get_base_id(pk)) {
    case EVP_PKEY_RSA: return "RSA";
    case EVP_PKEY_RSA_PSS: return "RSA-PSS";
    case EVP_PKEY_EC: return "EC";
    case EVP_PKEY_ED25519: return "ED25519";
    case EVP_PKEY_ED448: return "ED448";
    case EVP_PKEY_DSA: return "DSA";
    }
    const char *n = EVP_PKEY_get0_type_name(pk);
    return n ? n : "unknown";
}

static void fingerprint(struct lbw_tls_prober *p, X509 *cert, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    out[0] = '\0';
    if (X509_digest(cert, p->sha256, md, &len) != 1 || len != 32) {
        ERR_clear_error();
        return;
    }
    for (unsigned i = 0; i < len; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

static int hostname_matches(X509 *leaf, const char *name)
{
    if (is_ip_literal(name))
        return X509_check_ip_asc(leaf, name, 0) == 1;
    return X509_check_host(leaf, name, strlen(name), 0, NULL) == 1;
}

/* Fills the leaf's fields and the chain's earliest expiry. */
static void describe_chain(struct probe *pr, X509 *leaf, STACK_OF(X509) *chain)
{
    struct lbw_tls_result *r = &pr->r;

    r->have_cert = 1;
    r->not_before = asn1_time_unix(X509_get0_notBefore(leaf));
    r->not_after = asn1_time_unix(X509_get0_notAfter(leaf));
    r->earliest_not_after = r->not_after;
    r->chain_len = chain ? sk_X509_num(chain) : 1;
    for (int i = 0; chain && i < sk_X509_num(chain); i++) {
        int64_t na = asn1_time_unix(X509_get0_notAfter(sk_X509_value(chain, i)));
        if (na < r->earliest_not_after)
            r->earliest_not_after = na;
    }
    EVP_PKEY *pk = X509_get0_pubkey(leaf);
    if (pk) {
        snprintf(r->key_type, sizeof(r->key_type), "%s", key_type_name(pk));
        r->key_bits = EVP_PKEY_get_bits(pk);
    }
    name_text(pr->p->text, X509_get_subject_name(leaf), r->subject, sizeof(r->subject));
    name_text(pr->p->text, X509_get_issuer_name(leaf), r->issuer, sizeof(r->issuer));
    fingerprint(pr->p, leaf, r->fingerprint_sha256);
    r->hostname_match = hostname_matches(leaf, pr->server_name);
    ERR_clear_error();
}

/* Verifies the presented chain against the probe's trust store as a TLS server chain. The
 * store context stops at the first error, which is the one reported. Returns the verified
 * chain (caller frees) or NULL. */
static STACK_OF(X509) *verify_chain(struct probe *pr, X509 *leaf, STACK_OF(X509) *chain)
{
    struct lbw_tls_result *r = &pr->r;
    X509_STORE_CTX *vc = pr->p->verify;
    STACK_OF(X509) *verified = NULL;

    if (!pr->store) {
        r->verify_code = X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY;
        return NULL; /* verify_error already says why the store is missing */
    }
    if (X509_STORE_CTX_init(vc, pr->store, leaf, chain) != 1) {
        r->verify_code = X509_V_ERR_OUT_OF_MEM;
    } else {
        X509_STORE_CTX_set_default(vc, "ssl_server");
        r->chain_verified = X509_verify_cert(vc) == 1;
        r->verify_code = X509_STORE_CTX_get_error(vc);
        if (r->chain_verified)
            verified = X509_STORE_CTX_get1_chain(vc);
        X509_STORE_CTX_cleanup(vc);
    }
    snprintf(r->verify_error, sizeof(r->verify_error), "%s",
             X509_verify_cert_error_string(r->verify_code));
    ERR_clear_error();
    return verified;
}

/* The leaf's issuer: from the verified chain, else whichever presented cert issued it. */
static X509 *find_issuer(X509 *leaf, STACK_OF(X509) *verified, STACK_OF(X509) *chain)
{
    if (verified && sk_X509_num(verified) > 1)
        return sk_X509_value(verified, 1);
    for (int i = 0; chain && i < sk_X509_num(chain); i++) {
        X509 *c = sk_X509_value(chain, i);
        if (c != leaf && X509_check_issued(c, leaf) == X509_V_OK)
            return c;
    }
    return NULL;
}

/* The leaf's status in a verified basic response: its CertID may use SHA-1 (usual) or
 * SHA-256. */
static enum lbw_ocsp_status ocsp_leaf_status(OCSP_BASICRESP *basic, X509 *leaf, X509 *issuer)
{
    const EVP_MD *mds[] = {EVP_sha1(), EVP_sha256()};

    for (size_t i = 0; i < sizeof(mds) / sizeof(mds[0]); i++) {
        OCSP_CERTID *id = OCSP_cert_to_id(mds[i], leaf, issuer);
        int status, reason;
        ASN1_GENERALIZEDTIME *rev, *thisupd, *nextupd;
        int found = id && OCSP_resp_find_status(basic, id, &status, &reason, &rev, &thisupd,
                                                &nextupd) == 1;
        OCSP_CERTID_free(id);
        if (!found)
            continue;
        if (OCSP_check_validity(thisupd, nextupd, OCSP_LEEWAY_SECONDS, -1) != 1)
            return LBW_OCSP_INVALID;
        switch (status) {
        case V_OCSP_CERTSTATUS_GOOD: return LBW_OCSP_GOOD;
        case V_OCSP_CERTSTATUS_REVOKED: return LBW_OCSP_REVOKED;
        default: return LBW_OCSP_UNKNOWN;
        }
    }
    return LBW_OCSP_INVALID;
}

static enum lbw_ocsp_status ocsp_status(struct probe *pr, SSL *ssl, X509 *leaf,
                                        STACK_OF(X509) *chain, STACK_OF(X509) *verified)
{
    const unsigned char *der = NULL;
    long len = SSL_get_tlsext_status_ocsp_resp(ssl, &der);
    if (len <= 0 || !der)
        return LBW_OCSP_NONE;

    enum lbw_ocsp_status st = LBW_OCSP_INVALID;
    OCSP_BASICRESP *basic = NULL;
    OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &der, len);
    X509 *issuer = find_issuer(leaf, verified, chain);
    if (resp && issuer && pr->store &&
        OCSP_response_status(resp) == OCSP_RESPONSE_STATUS_SUCCESSFUL &&
        (basic = OCSP_response_get1_basic(resp)) != NULL &&
        OCSP_basic_verify(basic, chain, pr->store, 0) == 1)
        st = ocsp_leaf_status(basic, leaf, issuer);
    OCSP_BASICRESP_free(basic);
    OCSP_RESPONSE_free(resp);
    ERR_clear_error();
    return st;
}

/* Everything about the presented certificate, whether or not it verifies. */
static void inspect_certificate(struct probe *pr, SSL *ssl)
{
    X509 *leaf = SSL_get0_peer_certificate(ssl);
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl); /* leaf first on a client */
    if (!leaf)
        return;
    describe_chain(pr, leaf, chain);
    STACK_OF(X509) *verified = verify_chain(pr, leaf, chain);
    pr->r.ocsp = ocsp_status(pr, ssl, leaf, chain, verified);
    sk_X509_pop_free(verified, X509_free);
}

/* The timeout, or a failure found while starting (its error is set already). */
static void on_timer(uv_timer_t *timer)
{
    struct probe *pr = timer->data;
    if (pr->r.error[0]) {
        probe_finish(pr);
        return;
    }
    if (pr->phase == LBW_TLS_PHASE_HANDSHAKE)
        inspect_certificate(pr, lbw_tlsio_ssl(pr->io)); /* if one arrived before the silence */
    probe_fail(pr, pr->phase, "%s: timeout after %llu ms", lbw_tls_phase_name(pr->phase),
               (unsigned long long)pr->timeout_ms);
}

/* --- resolve, connect, handshake ------------------------------------------------------------ */

static void on_handshake(struct lbw_tlsio *io, int status)
{
    struct probe *pr = lbw_tlsio_data(io);
    SSL *ssl = lbw_tlsio_ssl(io);

    pr->r.handshake_seconds = seconds_since(pr->t_phase);
    inspect_certificate(pr, ssl);
    if (status) {
        probe_fail(pr, LBW_TLS_PHASE_HANDSHAKE, "handshake: %s", lbw_tlsio_error(io));
        return;
    }
    snprintf(pr->r.version, sizeof(pr->r.version), "%s", SSL_get_version(ssl));
    snprintf(pr->r.cipher, sizeof(pr->r.cipher), "%s", SSL_get_cipher_name(ssl));
    pr->r.success = 1;
    pr->r.failed_phase = LBW_TLS_PHASE_DONE;
    pr->phase = LBW_TLS_PHASE_DONE;
    probe_finish(pr);
}

static void on_connect(struct lbw_tlsio *io, int status)
{
    struct probe *pr = lbw_tlsio_data(io);

    pr->r.connect_seconds = seconds_since(pr->t_phase);
    if (status) {
        probe_fail(pr, LBW_TLS_PHASE_CONNECT, "connect: %s", lbw_tlsio_error(io));
        return;
    }
    pr->phase = LBW_TLS_PHASE_HANDSHAKE;
    pr->t_phase = uv_hrtime();
    if (lbw_tlsio_handshake(io, on_handshake) != 0)
        probe_fail(pr, LBW_TLS_PHASE_HANDSHAKE, "handshake: %s", lbw_tlsio_error(io));
}

/* Starts the TCP connect. Returns 0, or -1 with the probe's error and failed phase set. */
static int probe_connect(struct probe *pr, const struct sockaddr *addr)
{
    pr->r.failed_phase = LBW_TLS_PHASE_CONNECT;
    int rc = lbw_tlsio_new(&pr->io, pr->p->loop, pr->p->ctx, LBW_TLSIO_CLIENT, pr);
    if (rc) {
        snprintf(pr->r.error, sizeof(pr->r.error), "connect: %s", uv_strerror(rc));
        return -1;
    }
    pr->pending++;
    pr->phase = LBW_TLS_PHASE_CONNECT;
    pr->t_phase = uv_hrtime();
    if (lbw_tlsio_set_server_name(pr->io, pr->server_name) != 0 ||
        lbw_tlsio_connect(pr->io, addr, on_connect) != 0) {
        snprintf(pr->r.error, sizeof(pr->r.error), "connect: %s", lbw_tlsio_error(pr->io));
        return -1;
    }
    return 0;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct probe *pr = req->data;

    pr->resolving = 0;
    if (pr->done) {
        uv_freeaddrinfo(res);
        probe_unref(pr);
        return;
    }
    pr->pending--; /* the timer still holds the probe */
    if (status) {
        uv_freeaddrinfo(res);
        probe_fail(pr, LBW_TLS_PHASE_RESOLVE, "resolve: %s", uv_strerror(status));
        return;
    }
    struct sockaddr_storage ss;
    memcpy(&ss, res->ai_addr, res->ai_addrlen);
    uv_freeaddrinfo(res);
    if (ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&ss)->sin_port = htons(pr->port);
    else
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons(pr->port);
    if (probe_connect(pr, (struct sockaddr *)&ss) != 0)
        probe_finish(pr);
}

/* Connects at once to an address literal, or starts a name lookup. Returns 0, or -1 with the
 * probe's error and failed phase set. */
static int probe_resolve(struct probe *pr)
{
    struct sockaddr_storage ss;
    if (uv_ip4_addr(pr->host, pr->port, (struct sockaddr_in *)&ss) == 0 ||
        uv_ip6_addr(pr->host, pr->port, (struct sockaddr_in6 *)&ss) == 0)
        return probe_connect(pr, (struct sockaddr *)&ss);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_ADDRCONFIG};
    pr->gai.data = pr;
    int rc = uv_getaddrinfo(pr->p->loop, &pr->gai, on_resolved, pr->host, NULL, &hints);
    if (rc) {
        pr->r.failed_phase = LBW_TLS_PHASE_RESOLVE;
        snprintf(pr->r.error, sizeof(pr->r.error), "resolve: %s", uv_strerror(rc));
        return -1;
    }
    pr->resolving = 1;
    pr->pending++;
    return 0;
}

int lbw_tls_probe_start(struct lbw_tls_prober *p, const struct lbw_tls_target *t,
                        lbw_tls_probe_cb cb, void *arg)
{
    if (p->closing || !t || !t->host || !cb)
        return -1;
    const char *sn = t->server_name ? t->server_name : t->host;
    size_t hl = strlen(t->host) + 1, sl = strlen(sn) + 1;
    struct probe *pr = calloc(1, sizeof(*pr) + hl + sl);
    if (!pr)
        return -1;
    memcpy(pr->names, t->host, hl);
    memcpy(pr->names + hl, sn, sl);
    pr->host = pr->names;
    pr->server_name = pr->names + hl;
    pr->port = t->port;
    pr->timeout_ms = t->timeout_ms ? t->timeout_ms : DEFAULT_TIMEOUT_MS;
    pr->p = p;
    pr->cb = cb;
    pr->arg = arg;
    pr->phase = LBW_TLS_PHASE_RESOLVE;
    pr->store = ca_store_get(p, t->ca_file, pr->r.verify_error, sizeof(pr->r.verify_error));
    uv_timer_init(p->loop, &pr->timer);
    pr->timer.data = pr;
    pr->pending = 1;
    pr->next = p->active;
    if (p->active)
        p->active->prev = pr;
    p->active = pr;
    p->nactive++;
    p->nlive++;

    pr->t_start = uv_hrtime();
    uv_timer_start(&pr->timer, on_timer, pr->timeout_ms, 0);
    if (probe_resolve(pr) != 0)
        probe_fail_soon(pr);
    return 0;
}

void lbw_tls_prober_close(struct lbw_tls_prober *p)
{
    p->closing = 1;
    while (p->active) {
        struct probe *pr = p->active;
        probe_unlink(pr);
        probe_release(pr);
    }
    if (p->nlive == 0)
        prober_free(p);
}

/* --- samples -------------------------------------------------------------------------------- */

/* "TLSv1.3" -> "TLS 1.3", as blackbox_exporter labels versions. */
static void version_label(const char *v, char *out, size_t outlen)
{
    if (strncmp(v, "TLSv", 4) == 0)
        snprintf(out, outlen, "TLS %s", v + 4);
    else
        snprintf(out, outlen, "%s", v);
}

/* probe_ssl_last_chain_info; subject and issuer are shortened if the key would not fit. */
static void emit_chain_info(const struct lbw_tls_result *r, const struct lbw_emitter *e)
{
    char subject[96], issuer[96];
    struct lbw_label l[] = {
        {"fingerprint_sha256", r->fingerprint_sha256},
        {"issuer", r->issuer},
        {"subject", r->subject},
    };
    if (lbw_emitn(e, "probe_ssl_last_chain_info", l, 3, 1) == 0)
        return;
    snprintf(subject, sizeof(subject), "%.*s", (int)sizeof(subject) - 1, r->subject);
    snprintf(issuer, sizeof(issuer), "%.*s", (int)sizeof(issuer) - 1, r->issuer);
    l[1].value = issuer;
    l[2].value = subject;
    lbw_emitn(e, "probe_ssl_last_chain_info", l, 3, 1);
}

void lbw_tls_result_emit(const struct lbw_tls_result *r, const struct lbw_emitter *e)
{
    lbw_emit(e, "probe_success", r->success ? 1 : 0);
    lbw_emit(e, "probe_duration_seconds", r->duration_seconds);
    if (r->success || r->failed_phase == LBW_TLS_PHASE_HANDSHAKE)
        lbw_emit(e, "lbwatch_tls_connect_seconds", r->connect_seconds);
    if (r->success) {
        char version[24];
        version_label(r->version, version, sizeof(version));
        lbw_emit(e, "lbwatch_tls_handshake_seconds", r->handshake_seconds);
        lbw_emit1(e, "probe_tls_version_info", "version", version, 1);
        lbw_emit1(e, "lbwatch_tls_cipher_info", "cipher", r->cipher, 1);
    }
    if (!r->have_cert)
        return;
    lbw_emit(e, "probe_ssl_earliest_cert_expiry", (double)r->earliest_not_after);
    lbw_emit(e, "lbwatch_tls_cert_not_after_seconds", (double)r->not_after);
    lbw_emit(e, "lbwatch_tls_cert_not_before_seconds", (double)r->not_before);
    lbw_emit(e, "lbwatch_tls_chain_verified", r->chain_verified ? 1 : 0);
    if (!r->chain_verified)
        lbw_emit1(e, "lbwatch_tls_verify_error_info", "reason", r->verify_error, 1);
    lbw_emit(e, "lbwatch_tls_hostname_match", r->hostname_match ? 1 : 0);
    lbw_emit1(e, "lbwatch_tls_key_bits", "type", r->key_type, r->key_bits);
    lbw_emit1(e, "lbwatch_tls_ocsp_status", "status", lbw_ocsp_status_name(r->ocsp), 1);
    emit_chain_info(r, e);
    lbw_emit(e, "lbwatch_tls_chain_length", r->chain_len);
}
