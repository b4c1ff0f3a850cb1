/* tlsio.h - a TLS session over a libuv TCP stream, driven through OpenSSL memory BIOs.
 *
 * One module for every TLS byte stream in lbwatch: the TLS probe (client, short-lived), the
 * demo's TLS target servers, the raft mutual-TLS transport and the follower->leader channel
 * (both roles, client certificates both ways, long-lived, with back-pressure) and the
 * agent's mTLS server. Nothing blocks: ciphertext read from the socket is fed to OpenSSL
 * through a memory BIO and OpenSSL's output is written with uv_write.
 *
 * A session owns its uv_tcp_t and its SSL. Its life:
 *
 *     lbw_tlsio_new()                      client or server role, from an SSL_CTX
 *     lbw_tlsio_connect()  -> connect_cb    client: TCP connect to an address, or
 *     uv_accept(server, lbw_tlsio_stream(t))  server: accept into the session's handle
 *     lbw_tlsio_handshake() -> handshake_cb
 *     lbw_tlsio_read_start() / lbw_tlsio_write() / lbw_tlsio_read_stop()
 *     lbw_tlsio_shutdown()  -> shutdown_cb  close_notify + TCP FIN, reading may go on
 *     lbw_tlsio_close()     -> close_cb     always, once, after lbw_tlsio_new succeeded
 *
 * Callbacks run on the loop thread, never from inside the call that caused them. Status
 * values are 0, a negative libuv error (UV_ECONNREFUSED, UV_EOF, ...) or LBW_TLSIO_ETLS for
 * a TLS failure; lbw_tlsio_error() says why in words. After lbw_tlsio_close() the only
 * callbacks are pending write callbacks (with UV_ECANCELED) and then close_cb; the session
 * is freed when close_cb returns.
 *
 * Back-pressure: reading is off until lbw_tlsio_read_start() and off again after
 * lbw_tlsio_read_stop() (the socket is not read then, so the peer is slowed by TCP);
 * lbw_tlsio_write_queue_size() tells how much ciphertext waits for the socket.
 *
 * Renegotiation is refused. In TLS 1.3 a client's handshake completes before the server has
 * judged the client certificate: a rejection reaches the client as a read error (the server's
 * alert), while the server's handshake_cb reports it directly. The module does not log and
 * keeps no global state besides per-thread scratch buffers.
 */
#ifndef LBW_TLSIO_H
#define LBW_TLSIO_H

#include <stddef.h>
#include <openssl/ssl.h>
#include <uv.h>

#define LBW_TLSIO_ETLS (-30000)     /* TLS-level failure: see lbw_tlsio_error() */

enum lbw_tlsio_role { LBW_TLSIO_CLIENT, LBW_TLSIO_SERVER };

struct lbw_tlsio;

typedef void (*lbw_tlsio_connect_cb)(struct lbw_tlsio *t, int status);
typedef void (*lbw_tlsio_handshake_cb)(struct lbw_tlsio *t, int status);
/* nread > 0: that many plaintext bytes at data, valid during the call only.
 * nread < 0: the end: UV_EOF when the peer closed (close_notify or TCP FIN), or an error;
 * reading has stopped. */
typedef void (*lbw_tlsio_read_cb)(struct lbw_tlsio *t, ssize_t nread, const char *data);
/* The ciphertext carrying the write has been handed to the kernel (0), or failed. */
typedef void (*lbw_tlsio_write_cb)(struct lbw_tlsio *t, int status, void *arg);
typedef void (*lbw_tlsio_shutdown_cb)(struct lbw_tlsio *t, int status);
typedef void (*lbw_tlsio_close_cb)(struct lbw_tlsio *t);

/* --- contexts -------------------------------------------------------------------------------
 * TLS 1.2 minimum, no renegotiation, no session cache. Files are PEM; cert_file may hold a
 * chain, leaf first. Both return NULL with a reason in err on failure; free with SSL_CTX_free.
 */

/* Client context. ca_file is loaded as the trust store (NULL: the system CAs when verify is
 * set). verify = 1: the handshake fails unless the server's chain verifies (the hostname or
 * identity is the caller's to check, e.g. SSL_set1_host before the handshake). verify = 0: the
 * built-in verification is skipped altogether (SSL_get_verify_result then reports
 * X509_V_ERR_UNSPECIFIED); the caller verifies the peer's chain itself. cert_file/key_file
 * (both or neither) are the client certificate for mutual TLS. */
SSL_CTX *lbw_tlsio_client_ctx(const char *ca_file, int verify, const char *cert_file,
                              const char *key_file, char *err, size_t errlen);

/* Server context with its certificate chain and key. client_ca_file non-NULL requires a
 * client certificate that verifies against it. Issues no session tickets. */
SSL_CTX *lbw_tlsio_server_ctx(const char *cert_file, const char *key_file,
                              const char *client_ca_file, char *err, size_t errlen);

/* --- sessions ------------------------------------------------------------------------------ */

/* Makes a session with a fresh uv_tcp_t on loop and an SSL from ctx (up-referenced). data is
 * the caller's, see lbw_tlsio_data(). Returns 0, or a negative status (*out is NULL). */
int lbw_tlsio_new(struct lbw_tlsio **out, uv_loop_t *loop, SSL_CTX *ctx,
                  enum lbw_tlsio_role role, void *data);

/* Client: the name sent as SNI, unless it is an IP literal. Returns 0 or LBW_TLSIO_ETLS. */
int lbw_tlsio_set_server_name(struct lbw_tlsio *t, const char *name);

/* Client: TCP connect to addr. cb reports the outcome; call lbw_tlsio_handshake() next. */
int lbw_tlsio_connect(struct lbw_tlsio *t, const struct sockaddr *addr, lbw_tlsio_connect_cb cb);

/* Starts the handshake on the connected (or accepted) stream. cb runs once, with 0 when the
 * handshake completed. The socket is read for the handshake whatever the read state is. */
int lbw_tlsio_handshake(struct lbw_tlsio *t, lbw_tlsio_handshake_cb cb);

/* Delivers plaintext to cb until lbw_tlsio_read_stop() or the end of the stream. Allowed once
 * the handshake is done (also inside handshake_cb). Data that arrived before is delivered
 * on a later loop iteration. Returns 0, UV_ENOTCONN, or UV_EOF once the end was delivered. */
int lbw_tlsio_read_start(struct lbw_tlsio *t, lbw_tlsio_read_cb cb);
void lbw_tlsio_read_stop(struct lbw_tlsio *t);

/* Encrypts bufs now (they may be reused as soon as this returns) and queues the ciphertext.
 * cb (may be NULL) runs with arg when it was written or failed. Returns 0, UV_EINVAL (nothing
 * to write), UV_ENOTCONN (no handshake yet), UV_EPIPE (shut down or failed), or
 * LBW_TLSIO_ETLS/another negative status (cb is not called). */
int lbw_tlsio_write(struct lbw_tlsio *t, const uv_buf_t bufs[], unsigned nbufs,
                    lbw_tlsio_write_cb cb, void *arg);

/* Ciphertext bytes queued but not yet handed to the kernel. */
size_t lbw_tlsio_write_queue_size(const struct lbw_tlsio *t);

/* Sends close_notify, then shuts the TCP write side once everything queued is written; cb
 * reports that. Further writes fail with UV_EPIPE; reading may continue until UV_EOF. */
int lbw_tlsio_shutdown(struct lbw_tlsio *t, lbw_tlsio_shutdown_cb cb);

/* Closes the session: after a completed handshake a close_notify is queued first (best
 * effort), then the socket is closed. Pending writes end with UV_ECANCELED, then cb (may be
 * NULL) runs and the session is freed. Calling it again is a no-op. */
void lbw_tlsio_close(struct lbw_tlsio *t, lbw_tlsio_close_cb cb);

/* The SSL object, for inspection after the handshake (peer certificate, version, cipher). */
SSL *lbw_tlsio_ssl(const struct lbw_tlsio *t);

/* The TCP handle: for uv_accept() into it, uv_tcp_getpeername(), socket options. */
uv_stream_t *lbw_tlsio_stream(struct lbw_tlsio *t);

void *lbw_tlsio_data(const struct lbw_tlsio *t);
void lbw_tlsio_set_data(struct lbw_tlsio *t, void *data);

/* Why the last failing operation or callback status failed, e.g. "connection refused" or
 * "sslv3 alert handshake failure"; "" when nothing failed. */
const char *lbw_tlsio_error(const struct lbw_tlsio *t);

#endif
