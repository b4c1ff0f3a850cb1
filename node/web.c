/* web.c - the libmicrohttpd server: listening, routing, method checks, responses. The
 * handlers themselves live in api.c, expo.c and page.c. See web.h. */
#include "node/web.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/agentview.h"
#include "node/api.h"
#include "node/expo.h"
#include "node/log.h"
#include "node/page.h"
#include "node/webops.h"

#define WEB_THREADS 2
#define WEB_CONN_LIMIT 256
#define WEB_CONN_TIMEOUT_S 30

struct lbw_web {
    struct MHD_Daemon *mhd;
    struct lbw_web_ctx ctx;
    uint16_t port;
};

static const char *arg(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
}

static void handle_healthz(struct lbw_reply *r)
{
    r->status = 200;
    r->content_type = "text/plain; charset=utf-8";
    lbw_buf_puts(&r->body, "ok\n");
}

static void handle_not_found(struct lbw_reply *r)
{
    r->status = 404;
    r->content_type = "application/json";
    lbw_buf_puts(&r->body, "{\"error\":\"not found\"}\n");
}

static void route(const struct lbw_web *w, struct MHD_Connection *c, const char *url,
                  struct lbw_reply *r)
{
    if (strcmp(url, "/") == 0) {
        lbw_page_status(&w->ctx, r);
    } else if (strcmp(url, "/api/v1/cluster") == 0) {
        lbw_api_cluster(&w->ctx, r);
    } else if (strcmp(url, "/api/v1/agents") == 0) {
        lbw_agentview_api(&w->ctx, r);
    } else if (strcmp(url, "/api/v1/alerts") == 0) {
        lbw_api_doc(&w->ctx, LBW_DOC_ALERTS, r);
    } else if (strcmp(url, "/api/v1/silences") == 0) {
        lbw_api_doc(&w->ctx, LBW_DOC_SILENCES, r);
    } else if (strcmp(url, "/api/v1/notifications") == 0) {
        lbw_api_doc(&w->ctx, LBW_DOC_NOTIFICATIONS, r);
    } else if (strcmp(url, "/api/v1/targets") == 0) {
        lbw_api_targets(&w->ctx, r);
    } else if (strcmp(url, "/api/v1/series") == 0) {
        struct lbw_series_query q = {arg(c, "name"), arg(c, "target"), arg(c, "from"),
                                     arg(c, "to"), arg(c, "step")};
        lbw_api_series(&w->ctx, &q, r);
    } else if (strcmp(url, "/metrics") == 0) {
        lbw_expo_metrics(&w->ctx, r);
    } else if (strcmp(url, "/healthz") == 0) {
        handle_healthz(r);
    } else {
        handle_not_found(r);
    }
}

static enum MHD_Result send_reply(struct MHD_Connection *c, struct lbw_reply *r,
                                  const char *allow)
{
    size_t len;
    char *body = lbw_buf_steal(&r->body, &len);
    if (!body)
        return MHD_NO; /* out of memory: drop the connection */
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", r->content_type);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Content-Security-Policy",
                            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'");
    if (allow)
        MHD_add_response_header(resp, "Allow", allow);
    enum MHD_Result ret = MHD_queue_response(c, r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static char read_marker; /* con_cls of requests that are not writes */

/* A write: collect the body, start it, answer once the loop has done it. */
static enum MHD_Result on_write(struct lbw_webop *op, struct MHD_Connection *c,
                                const char *upload_data, size_t *upload_data_size)
{
    struct lbw_reply r = {0};
    if (*upload_data_size) {
        lbw_webop_body(op, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (!lbw_webop_done(op) && !lbw_webop_start(op))
        return MHD_YES; /* suspended until the loop answers */
    lbw_buf_init(&r.body);
    lbw_webop_reply(op, &r);
    return send_reply(c, &r, NULL);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct lbw_web *w = cls;
    struct lbw_reply r = {0};
    (void)version;

    if (*con_cls == NULL) { /* first call: headers only */
        struct lbw_webop *op = NULL;
        if (lbw_webop_matches(method, url))
            op = lbw_webop_new(&w->ctx, c, method, url);
        *con_cls = op ? (void *)op : (void *)&read_marker;
        return MHD_YES;
    }
    if (*con_cls != &read_marker)
        return on_write(*con_cls, c, upload_data, upload_data_size);
    lbw_buf_init(&r.body);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        if (*upload_data_size) { /* discard a request body */
            *upload_data_size = 0;
            return MHD_YES;
        }
        r.status = 405;
        r.content_type = "application/json";
        lbw_buf_puts(&r.body, "{\"error\":\"method not allowed\"}\n");
        return send_reply(c, &r, "GET, HEAD");
    }
    route(w, c, url, &r);
    log_debug("web", "%s %s -> %u", method, url, r.status);
    return send_reply(c, &r, NULL);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode code)
{
    (void)cls;
    (void)c;
    (void)code;
    if (*con_cls && *con_cls != &read_marker)
        lbw_webop_free(*con_cls);
    *con_cls = NULL;
}

static int bind_address(const struct lbw_config *cfg, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, cfg->web.listen_host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(cfg->web.listen_port);
        return 0;
    }
    if (inet_pton(AF_INET6, cfg->web.listen_host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(cfg->web.listen_port);
        return 0;
    }
    return -1;
}

int lbw_web_start(struct lbw_web **out, const struct lbw_web_ctx *ctx, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    if (bind_address(ctx->cfg, &ss) != 0) {
        snprintf(err, errlen, "web.listen: %s is not an IP address", ctx->cfg->web.listen_host);
        return -1;
    }
    struct lbw_web *w = calloc(1, sizeof(*w));
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    w->ctx = *ctx;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    w->mhd = MHD_start_daemon(flags, ctx->cfg->web.listen_port, NULL, NULL, on_request, w,
                              MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                              MHD_OPTION_THREAD_POOL_SIZE, (unsigned)WEB_THREADS,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)WEB_CONN_LIMIT,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)WEB_CONN_TIMEOUT_S,
                              MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                              MHD_OPTION_END);
    if (!w->mhd) {
        snprintf(err, errlen, "web: cannot listen on %s (address in use?)", ctx->cfg->web.listen);
        free(w);
        return -1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(w->mhd, MHD_DAEMON_INFO_BIND_PORT);
    w->port = info ? info->port : ctx->cfg->web.listen_port;
    *out = w;
    return 0;
}

void lbw_web_stop(struct lbw_web *w)
{
    if (!w)
        return;
    MHD_stop_daemon(w->mhd);
    free(w);
}

uint16_t lbw_web_port(const struct lbw_web *w) { return w->port; }
