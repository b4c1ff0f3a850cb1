/* webops.h - write requests from the web threads, carried out on the loop thread.
 *
 * A write (a membership change; later silences and acks) arrives on a libmicrohttpd thread:
 *   op = lbw_webop_new(...)            on the request's first call (headers known)
 *   lbw_webop_body(op, data, len)      for each piece of the body (at most 16 KiB)
 *   lbw_webop_start(op)                when the body is complete: checks the bearer token and
 *                                      the request; a refusal is ready at once, otherwise the
 *                                      connection is suspended and the work posted to the loop
 *   lbw_webop_done(op) / _reply(op, r) once the loop has resumed the connection
 *   lbw_webop_free(op)                 when libmicrohttpd says the request is over
 * The token's SHA-256 is compared in constant time with web.write_token_sha256; a node with
 * no write token configured refuses every write.
 */
#ifndef LBW_WEBOPS_H
#define LBW_WEBOPS_H

#include <microhttpd.h>

#include "node/web.h"

struct lbw_webop;

/* Whether (method, url) is a write this module handles. */
int lbw_webop_matches(const char *method, const char *url);

struct lbw_webop *lbw_webop_new(const struct lbw_web_ctx *ctx, struct MHD_Connection *conn,
                                const char *method, const char *url);
/* Returns 0, or -1 once the body is over the limit (the op will answer 413). */
int lbw_webop_body(struct lbw_webop *op, const char *data, size_t len);
/* Returns 1 if the reply is ready now, 0 if the connection was suspended (or already was). */
int lbw_webop_start(struct lbw_webop *op);
int lbw_webop_done(const struct lbw_webop *op);
void lbw_webop_reply(struct lbw_webop *op, struct lbw_reply *r);
void lbw_webop_free(struct lbw_webop *op);

#endif
