/* tlsio.c - TLS sessions over libuv TCP streams with OpenSSL memory BIOs. See tlsio.h.
 *
 * Ciphertext flows socket -> rbio -> SSL and SSL -> wbio -> uv_write. Every SSL call is
 * followed by a flush of wbio, so wbio is empty between calls. The socket is read while the
 * handshake runs and, afterwards, only while the user reads; plaintext is pulled out of SSL
 * into a per-thread scratch buffer and handed to the read callback. Plaintext or ciphertext
 * left behind when the user stops reading is delivered from an idle handle once reading
 * starts again, so no callback ever runs inside an API call.
 */
#include "probes/tlsio.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/x509_vfy.h>

#define READ_SCRATCH 65536          /* ciphertext read from the socket at once */
#define PLAIN_SCRATCH 16384         /* one TLS record of plaintext */
#define WRITE_CHUNK (1u << 20)      /* plaintext per SSL_write; bounds one queued write */

enum state {
    ST_NEW,         /* made, connected or accepted: ready for the handshake */
    ST_CONNECTING,
    ST_HANDSHAKING,
    ST_OPEN,
    ST_SHUT,        /* close_notify sent: no more writes */
    ST_FAILED,      /* connect, handshake or stream failure: only close is left */
    ST_CLOSING
};

struct lbw_tlsio {
    uv_tcp_t tcp;
    uv_idle_t drain;                /* delivers what was buffered while reading was off */
    uv_connect_t connect_req;
    uv_shutdown_t shutdown_req;
    SSL *ssl;
    BIO *rbio;                      /* ciphertext from the socket; owned by ssl */
    BIO *wbio;                      /* ciphertext for the socket; owned by ssl */
    void *data;
    enum state state;
    int reading;                    /* the user wants plaintext */
    int tcp_reading;                /* uv_read_start is in effect */
    int eof;                        /* the socket reached EOF */
    int read_done;                  /* the end of the stream was delivered */
    int open_handles;               /* while closing */
    lbw_tlsio_connect_cb connect_cb;
    lbw_tlsio_handshake_cb handshake_cb;
    lbw_tlsio_read_cb read_cb;
    lbw_tlsio_shutdown_cb shutdown_cb;
    lbw_tlsio_close_cb close_cb;
    char err[160];
};

/* One queued ciphertext write. */
struct tlsio_write {
    uv_write_t req;
    struct lbw_tlsio *t;
    lbw_tlsio_write_cb cb;
    void *arg;
    char data[];
};

/* --- errors --------------------------------------------------------------------------------- */

static int set_error(struct lbw_tlsio *t, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int set_error(struct lbw_tlsio *t, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->err, sizeof(t->err), fmt, ap);
    va_end(ap);
    return status;
}

static int set_uv_error(struct lbw_tlsio *t, int status)
{
    return set_error(t, status, "%s", uv_strerror(status));
}

/* Describes the OpenSSL error queue (or ssl_error when it is empty), clears the queue and
 * returns LBW_TLSIO_ETLS. */
static int set_tls_error(struct lbw_tlsio *t, int ssl_error)
{
    unsigned long e = ERR_peek_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;

    if (e && ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED)
        set_error(t, LBW_TLSIO_ETLS, "certificate verify failed: %s",
                  X509_verify_cert_error_string(SSL_get_verify_result(t->ssl)));
    else if (reason)
        set_error(t, LBW_TLSIO_ETLS, "%s", reason);
    else if (e)
        ERR_error_string_n(e, t->err, sizeof(t->err));
    else
        set_error(t, LBW_TLSIO_ETLS, "TLS error (SSL_get_error %d)", ssl_error);
    ERR_clear_error();
    return LBW_TLSIO_ETLS;
}

/* --- contexts ------------------------------------------------------------------------------- */

/* Describes what failed, with OpenSSL's reason, and clears the error queue. Returns -1. */
static int describe_failure(char *err, size_t errlen, const char *what, const char *path)
{
    unsigned long e = ERR_peek_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;
    snprintf(err, errlen, "%s%s%s: %s", what, path ? " " : "", path ? path : "",
             reason ? reason : "failed");
    ERR_clear_error();
    return -1;
}

static SSL_CTX *ctx_fail(SSL_CTX *ctx, char *err, size_t errlen, const char *what,
                         const char *path)
{
    describe_failure(err, errlen, what, path);
    SSL_CTX_free(ctx);
    return NULL;
}

static SSL_CTX *ctx_new(const SSL_METHOD *method, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(method);
    if (!ctx)
        return ctx_fail(NULL, err, errlen, "SSL_CTX_new", NULL);
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
        return ctx_fail(ctx, err, errlen, "TLS 1.2 minimum", NULL);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    return ctx;
}

/* Loads a certificate chain and its key into ctx. Returns 0, or -1 with err. */
static int ctx_use_cert(SSL_CTX *ctx, const char *cert_file, const char *key_file, char *err,
                        size_t errlen)
{
    if (!cert_file || !key_file) {
        snprintf(err, errlen, "a certificate needs both a cert file and a key file");
        return -1;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1)
        return describe_failure(err, errlen, "certificate", cert_file);
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1)
        return describe_failure(err, errlen, "key", key_file);
    if (SSL_CTX_check_private_key(ctx) != 1)
        return describe_failure(err, errlen, "key does not match certificate", cert_file);
    return 0;
}

/* Replaces the handshake's chain verification when the caller verifies by itself: nothing
 * is checked and SSL_get_verify_result() says so. */
static int skip_verification(X509_STORE_CTX *sctx, void *arg)
{
    (void)arg;
    X509_STORE_CTX_set_error(sctx, X509_V_ERR_UNSPECIFIED);
    return 1;
}

SSL_CTX *lbw_tlsio_client_ctx(const char *ca_file, int verify, const char *cert_file,
                              const char *key_file, char *err, size_t errlen)
{
    SSL_CTX *ctx = ctx_new(TLS_client_method(), err, errlen);
    if (!ctx)
        return NULL;
    if (ca_file && SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1)
        return ctx_fail(ctx, err, errlen, "CA file", ca_file);
    if (!ca_file && verify && SSL_CTX_set_default_verify_paths(ctx) != 1)
        return ctx_fail(ctx, err, errlen, "system CAs", NULL);
    if (verify) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        SSL_CTX_set_cert_verify_callback(ctx, skip_verification, NULL);
    }
    if ((cert_file || key_file) && ctx_use_cert(ctx, cert_file, key_file, err, errlen) < 0) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

SSL_CTX *lbw_tlsio_server_ctx(const char *cert_file, const char *key_file,
                              const char *client_ca_file, char *err, size_t errlen)
{
    static const unsigned char sid_ctx[] = "lbwatch";
    SSL_CTX *ctx = ctx_new(TLS_server_method(), err, errlen);
    if (!ctx)
        return NULL;
    if (ctx_use_cert(ctx, cert_file, key_file, err, errlen) < 0) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_num_tickets(ctx, 0);
    /* OpenSSL refuses client-certificate sessions without one, cache or not */
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    if (client_ca_file) {
        if (SSL_CTX_load_verify_locations(ctx, client_ca_file, NULL) != 1)
            return ctx_fail(ctx, err, errlen, "client CA file", client_ca_file);
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(client_ca_file);
        if (!names)
            return ctx_fail(ctx, err, errlen, "client CA names", client_ca_file);
        SSL_CTX_set_client_CA_list(ctx, names);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    return ctx;
}

/* --- sessions ------------------------------------------------------------------------------- */

int lbw_tlsio_new(struct lbw_tlsio **out, uv_loop_t *loop, SSL_CTX *ctx,
                  enum lbw_tlsio_role role, void *data)
{
    *out = NULL;
    struct lbw_tlsio *t = calloc(1, sizeof(*t));
    if (!t)
        return UV_ENOMEM;
    t->ssl = SSL_new(ctx);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->rbio || !t->wbio) {
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        SSL_free(t->ssl);
        free(t);
        ERR_clear_error();
        return UV_ENOMEM;
    }
    BIO_set_mem_eof_return(t->rbio, -1);  /* empty means "wait for more", not EOF */
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    if (role == LBW_TLSIO_CLIENT)
        SSL_set_connect_state(t->ssl);
    else
        SSL_set_accept_state(t->ssl);

    int rc = uv_tcp_init(loop, &t->tcp);
    if (rc) {
        SSL_free(t->ssl);
        free(t);
        return rc;
    }
    uv_idle_init(loop, &t->drain);
    t->tcp.data = t;
    t->drain.data = t;
    t->data = data;
    *out = t;
    return 0;
}

int lbw_tlsio_set_server_name(struct lbw_tlsio *t, const char *name)
{
    unsigned char addr[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1)
        return 0; /* RFC 6066: no SNI for addresses */
    if (SSL_set_tlsext_host_name(t->ssl, name) != 1)
        return set_tls_error(t, SSL_ERROR_SSL);
    return 0;
}

static void on_written(uv_write_t *req, int status);
static void on_tcp_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* Queues whatever SSL wrote to wbio as one socket write; cb (may be NULL) completes it. */
static int flush(struct lbw_tlsio *t, lbw_tlsio_write_cb cb, void *arg)
{
    size_t n = BIO_ctrl_pending(t->wbio);
    if (n == 0)
        return 0;
    struct tlsio_write *w = malloc(sizeof(*w) + n);
    if (!w)
        return set_uv_error(t, UV_ENOMEM);
    BIO_read(t->wbio, w->data, (int)n);
    w->t = t;
    w->cb = cb;
    w->arg = arg;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)n);
    int rc = uv_write(&w->req, (uv_stream_t *)&t->tcp, &b, 1, on_written);
    if (rc) {
        free(w);
        return set_uv_error(t, rc);
    }
    return 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    /* libuv reads into it and calls on_tcp_read before any other allocation on this
     * thread, and on_tcp_read copies it into rbio at once: one buffer serves every session */
    static _Thread_local char scratch[READ_SCRATCH];
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(scratch, sizeof(scratch));
}

/* Starts or stops reading the socket: during the handshake, and afterwards while the user
 * reads. */
static int update_socket_reading(struct lbw_tlsio *t)
{
    int want = !t->eof && (t->state == ST_HANDSHAKING ||
                           (t->reading && (t->state == ST_OPEN || t->state == ST_SHUT)));
    if (want == t->tcp_reading)
        return 0;
    uv_stream_t *s = (uv_stream_t *)&t->tcp;
    int rc = want ? uv_read_start(s, on_alloc, on_tcp_read) : uv_read_stop(s);
    if (rc == 0)
        t->tcp_reading = want;
    return rc;
}

/* --- connect and handshake ------------------------------------------------------------------ */

static void on_connect(uv_connect_t *req, int status)
{
    struct lbw_tlsio *t = req->handle->data;
    if (t->state == ST_CLOSING)
        return;
    if (status) {
        set_uv_error(t, status);
        t->state = ST_FAILED;
    } else {
        t->state = ST_NEW;
    }
    t->connect_cb(t, status);
}

int lbw_tlsio_connect(struct lbw_tlsio *t, const struct sockaddr *addr, lbw_tlsio_connect_cb cb)
{
    if (t->state != ST_NEW)
        return set_error(t, UV_EINVAL, "connect: session not new");
    int rc = uv_tcp_connect(&t->connect_req, &t->tcp, addr, on_connect);
    if (rc)
        return set_uv_error(t, rc);
    t->connect_cb = cb;
    t->state = ST_CONNECTING;
    return 0;
}

/* Runs SSL_do_handshake and flushes its output. Returns 1 when the handshake is complete,
 * 0 when it needs more input, or a negative status. */
static int handshake_advance(struct lbw_tlsio *t)
{
    ERR_clear_error();
    int rc = SSL_do_handshake(t->ssl);
    int status = 0;
    if (rc != 1) {
        int e = SSL_get_error(t->ssl, rc);
        if (e != SSL_ERROR_WANT_READ)
            status = set_tls_error(t, e);
        else if (t->eof)
            status = set_error(t, UV_EOF, "connection closed by peer during handshake");
    }
    int frc = flush(t, NULL, NULL); /* the next flight, or the alert that explains a failure */
    if (status)
        return status;
    if (frc)
        return frc;
    return rc == 1;
}

/* Ends the handshake with status and tells the user. */
static void handshake_finish(struct lbw_tlsio *t, int status)
{
    t->state = status ? ST_FAILED : ST_OPEN;
    int rc = update_socket_reading(t);
    if (rc && !status) {
        t->state = ST_FAILED;
        status = set_uv_error(t, rc);
    }
    t->handshake_cb(t, status);
}

static void handshake_continue(struct lbw_tlsio *t)
{
    int rc = handshake_advance(t);
    if (rc != 0)
        handshake_finish(t, rc < 0 ? rc : 0);
}

int lbw_tlsio_handshake(struct lbw_tlsio *t, lbw_tlsio_handshake_cb cb)
{
    if (t->state != ST_NEW)
        return set_error(t, UV_EINVAL, "handshake: session not ready");
    t->handshake_cb = cb;
    t->state = ST_HANDSHAKING;
    uv_tcp_nodelay(&t->tcp, 1);
    int rc = update_socket_reading(t);
    if (rc) {
        t->state = ST_FAILED;
        return set_uv_error(t, rc);
    }
    rc = handshake_advance(t);
    if (rc < 0) {
        t->state = ST_FAILED;
        update_socket_reading(t);
        return rc;
    }
    /* one flight never completes a handshake, so completion is always reported later */
    return 0;
}

/* --- reading -------------------------------------------------------------------------------- */

/* Delivers the end of the stream (UV_EOF or an error) and stops reading for good. */
static void read_end(struct lbw_tlsio *t, int status)
{
    t->reading = 0;
    t->read_done = 1;
    if (status != UV_EOF)
        t->state = ST_FAILED;
    update_socket_reading(t);
    t->read_cb(t, status, NULL);
}

/* Hands plaintext to the user while it reads and SSL has some; ends the stream at
 * close_notify, EOF or an error. */
static void deliver_plaintext(struct lbw_tlsio *t)
{
    static _Thread_local char plain[PLAIN_SCRATCH];

    while (t->reading && (t->state == ST_OPEN || t->state == ST_SHUT)) {
        ERR_clear_error();
        int n = SSL_read(t->ssl, plain, sizeof(plain));
        if (n > 0) {
            t->read_cb(t, n, plain);
            continue;
        }
        int e = SSL_get_error(t->ssl, n);
        int frc = flush(t, NULL, NULL); /* key updates and alerts */
        if (frc)
            read_end(t, frc);
        else if (e == SSL_ERROR_ZERO_RETURN)
            read_end(t, set_error(t, UV_EOF, "closed by peer"));
        else if (e != SSL_ERROR_WANT_READ)
            read_end(t, set_tls_error(t, e));
        else if (t->eof)
            read_end(t, set_error(t, UV_EOF, "connection closed by peer without close_notify"));
        return;
    }
}

static void on_drain(uv_idle_t *idle)
{
    struct lbw_tlsio *t = idle->data;
    uv_idle_stop(idle);
    deliver_plaintext(t);
}

static void on_tcp_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct lbw_tlsio *t = s->data;

    if (nread == 0)
        return;
    if (nread == UV_EOF) {
        t->eof = 1;
        t->tcp_reading = 0; /* libuv stops reading at EOF */
    } else if (nread < 0) {
        set_uv_error(t, (int)nread);
        if (t->state == ST_HANDSHAKING)
            handshake_finish(t, (int)nread);
        else if (t->reading)
            read_end(t, (int)nread);
        return;
    } else if (BIO_write(t->rbio, buf->base, (int)nread) != (int)nread) {
        ERR_clear_error();
        if (t->state == ST_HANDSHAKING)
            handshake_finish(t, set_uv_error(t, UV_ENOMEM));
        else if (t->reading)
            read_end(t, set_uv_error(t, UV_ENOMEM));
        return;
    }
    if (t->state == ST_HANDSHAKING)
        handshake_continue(t);
    else
        deliver_plaintext(t);
}

int lbw_tlsio_read_start(struct lbw_tlsio *t, lbw_tlsio_read_cb cb)
{
    if (t->state != ST_OPEN && t->state != ST_SHUT)
        return set_error(t, UV_ENOTCONN, "read: no established session");
    if (t->read_done)
        return set_error(t, UV_EOF, "read: stream already ended");
    t->read_cb = cb;
    t->reading = 1;
    int rc = update_socket_reading(t);
    if (rc) {
        t->reading = 0;
        return set_uv_error(t, rc);
    }
    if (SSL_has_pending(t->ssl) || BIO_ctrl_pending(t->rbio) > 0 || t->eof)
        uv_idle_start(&t->drain, on_drain);
    return 0;
}

void lbw_tlsio_read_stop(struct lbw_tlsio *t)
{
    if (t->state == ST_CLOSING)
        return;
    t->reading = 0;
    uv_idle_stop(&t->drain);
    update_socket_reading(t);
}

/* --- writing, shutdown, close --------------------------------------------------------------- */

static void on_written(uv_write_t *req, int status)
{
    struct tlsio_write *w = (struct tlsio_write *)req;
    struct lbw_tlsio *t = w->t;

    if (status && status != UV_ECANCELED)
        set_uv_error(t, status);
    if (w->cb)
        w->cb(t, status, w->arg);
    else if (status && t->state == ST_HANDSHAKING)
        handshake_finish(t, status);
    free(w);
}

int lbw_tlsio_write(struct lbw_tlsio *t, const uv_buf_t bufs[], unsigned nbufs,
                    lbw_tlsio_write_cb cb, void *arg)
{
    size_t total = 0;

    if (t->state == ST_SHUT || t->state == ST_FAILED || t->state == ST_CLOSING)
        return set_error(t, UV_EPIPE, "write: session shut down or failed");
    if (t->state != ST_OPEN)
        return set_error(t, UV_ENOTCONN, "write: no established session");
    for (unsigned i = 0; i < nbufs; i++)
        total += bufs[i].len;
    if (total == 0)
        return set_error(t, UV_EINVAL, "write: nothing to write");

    for (unsigned i = 0; i < nbufs; i++) {
        const char *p = bufs[i].base;
        size_t left = bufs[i].len;
        while (left > 0) {
            int n = left > WRITE_CHUNK ? (int)WRITE_CHUNK : (int)left;
            ERR_clear_error();
            int rc = SSL_write(t->ssl, p, n);
            if (rc <= 0) {
                int status = set_tls_error(t, SSL_get_error(t->ssl, rc));
                t->state = ST_FAILED;
                return status;
            }
            p += rc;
            left -= (size_t)rc;
            if (BIO_ctrl_pending(t->wbio) >= WRITE_CHUNK && (left || i + 1 < nbufs)) {
                int frc = flush(t, NULL, NULL);
                if (frc)
                    return frc;
            }
        }
    }
    return flush(t, cb, arg);
}

size_t lbw_tlsio_write_queue_size(const struct lbw_tlsio *t)
{
    return t->tcp.write_queue_size;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct lbw_tlsio *t = req->handle->data;
    if (t->state == ST_CLOSING)
        return;
    if (status)
        set_uv_error(t, status);
    if (t->shutdown_cb)
        t->shutdown_cb(t, status);
}

int lbw_tlsio_shutdown(struct lbw_tlsio *t, lbw_tlsio_shutdown_cb cb)
{
    if (t->state != ST_OPEN)
        return set_error(t, t->state == ST_HANDSHAKING || t->state == ST_NEW ? UV_ENOTCONN
                                                                               : UV_EPIPE,
                         "shutdown: no open session");
    ERR_clear_error();
    SSL_shutdown(t->ssl);
    ERR_clear_error();
    int rc = flush(t, NULL, NULL);
    if (rc)
        return rc;
    rc = uv_shutdown(&t->shutdown_req, (uv_stream_t *)&t->tcp, on_shutdown);
    if (rc)
        return set_uv_error(t, rc);
    t->shutdown_cb = cb;
    t->state = ST_SHUT;
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    struct lbw_tlsio *t = h->data;
    if (--t->open_handles > 0)
        return;
    if (t->close_cb)
        t->close_cb(t);
    SSL_free(t->ssl);
    free(t);
}

void lbw_tlsio_close(struct lbw_tlsio *t, lbw_tlsio_close_cb cb)
{
    if (t->state == ST_CLOSING)
        return;
    if (t->state == ST_OPEN) {
        ERR_clear_error();
        if (SSL_shutdown(t->ssl) >= 0)
            flush(t, NULL, NULL);
        ERR_clear_error();
    }
    t->state = ST_CLOSING;
    t->reading = 0;
    t->close_cb = cb;
    t->open_handles = 2;
    uv_close((uv_handle_t *)&t->tcp, on_closed);
    uv_close((uv_handle_t *)&t->drain, on_closed);
}

/* --- accessors ------------------------------------------------------------------------------ */

SSL *lbw_tlsio_ssl(const struct lbw_tlsio *t)
{
    return t->ssl;
}

uv_stream_t *lbw_tlsio_stream(struct lbw_tlsio *t)
{
    return (uv_stream_t *)&t->tcp;
}

void *lbw_tlsio_data(const struct lbw_tlsio *t)
{
    return t->data;
}

void lbw_tlsio_set_data(struct lbw_tlsio *t, void *data)
{
    t->data = data;
}

const char *lbw_tlsio_error(const struct lbw_tlsio *t)
{
    return t->err;
}
