/* webops.c - write requests: token check, request parsing on the web thread, the work on the
 * loop thread, the answer after resuming the connection. See webops.h. */
#include "node/webops.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "node/loopcall.h"
#include "raft/cluster.h"

#define BODY_MAX 16384
#define MEMBERS_PATH "/api/v1/cluster/members"

enum op_kind { OP_MEMBER_ADD, OP_MEMBER_REMOVE };

struct lbw_webop {
    struct lbw_web_ctx ctx;
    struct MHD_Connection *conn;
    enum op_kind kind;
    const char *url;
    char body[BODY_MAX + 1];
    size_t len;
    int too_big;
    uint64_t id;
    char raft[LBW_ADDR_MAX];
    int started;
    atomic_int done;            /* set on the loop thread before the connection resumes */
    unsigned status;
    json_t *answer;
};

int lbw_webop_matches(const char *method, const char *url)
{
    return (strcmp(method, "POST") == 0 && strcmp(url, MEMBERS_PATH) == 0) ||
           (strcmp(method, "DELETE") == 0 && strncmp(url, MEMBERS_PATH "/", 24) == 0);
}

struct lbw_webop *lbw_webop_new(const struct lbw_web_ctx *ctx, struct MHD_Connection *conn,
                                const char *method, const char *url)
{
    struct lbw_webop *op = calloc(1, sizeof(*op));
    if (!op)
        return NULL;
    op->ctx = *ctx;
    op->conn = conn;
    op->kind = strcmp(method, "POST") == 0 ? OP_MEMBER_ADD : OP_MEMBER_REMOVE;
    op->url = url;
    return op;
}

int lbw_webop_body(struct lbw_webop *op, const char *data, size_t len)
{
    if (op->too_big || len > BODY_MAX - op->len) {
        op->too_big = 1;
        return -1;
    }
    memcpy(op->body + op->len, data, len);
    op->len += len;
    op->body[op->len] = '\0';
    return 0;
}

static int answer(struct lbw_webop *op, unsigned status, json_t *doc)
{
    op->status = status;
    json_decref(op->answer);
    op->answer = doc;
    return 1;
}

static int refuse(struct lbw_webop *op, unsigned status, const char *why)
{
    return answer(op, status, json_pack("{s:s}", "error", why));
}

/* "Authorization: Bearer TOKEN" whose SHA-256 is the configured one. */
static int token_ok(const struct lbw_webop *op)
{
    const char *h = MHD_lookup_connection_value(op->conn, MHD_HEADER_KIND, "Authorization");
    unsigned char digest[32];
    unsigned int dlen = 0;
    if (!h || strncmp(h, "Bearer ", 7) != 0 || !h[7])
        return 0;
    if (!EVP_Digest(h + 7, strlen(h + 7), digest, &dlen, EVP_sha256(), NULL) || dlen != 32)
        return 0;
    return CRYPTO_memcmp(digest, op->ctx.cfg->web.write_token_sha256, 32) == 0;
}

static int parse_id(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || v == 0 || v > INT64_MAX || s[0] == '-' || s[0] == '+')
        return -1;
    *out = v;
    return 0;
}

static int raft_address_ok(const char *s)
{
    char host[32];
    unsigned port;
    struct in_addr a;
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= sizeof(host) || strlen(s) >= LBW_ADDR_MAX)
        return 0;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    return inet_pton(AF_INET, host, &a) == 1 && sscanf(colon + 1, "%5u", &port) == 1 &&
           port > 0 && port < 65536;
}

/* {"id": N, "raft": "a.b.c.d:port"} */
static int parse_add(struct lbw_webop *op)
{
    json_error_t jerr;
    json_t *doc = json_loadb(op->body, op->len, 0, &jerr);
    json_t *id = json_object_get(doc, "id"), *raft = json_object_get(doc, "raft");
    int ok = json_is_integer(id) && json_integer_value(id) > 0 && json_is_string(raft) &&
             raft_address_ok(json_string_value(raft));
    if (ok) {
        op->id = (uint64_t)json_integer_value(id);
        snprintf(op->raft, sizeof(op->raft), "%s", json_string_value(raft));
    }
    json_decref(doc);
    return ok ? 0 : -1;
}

/* ---- on the loop thread ------------------------------------------------------------------ */

static void finish(struct lbw_webop *op)
{
    atomic_store(&op->done, 1);
    MHD_resume_connection(op->conn);
}

static void on_change(void *arg, int status, const char *msg)
{
    struct lbw_webop *op = arg;
    if (status == 0)
        answer(op, 200, json_pack("{s:b, s:s}", "ok", 1, "message", msg));
    else
        refuse(op, 500, msg);
    finish(op);
}

/* The leader's identity and web URL, so the caller can go there. */
static void refuse_not_leader(struct lbw_webop *op)
{
    struct lbw_cluster_status cs;
    json_t *leader = json_null();
    lbw_cluster_status(op->ctx.cluster, &cs);
    for (size_t i = 0; i < cs.nmembers; i++)
        if (cs.members[i].id == cs.leader_id && cs.leader_id)
            leader = json_pack("{s:I, s:s, s:s}", "id", (json_int_t)cs.leader_id, "name",
                               cs.members[i].name, "web", cs.members[i].web);
    answer(op, 409, json_pack("{s:s, s:o}", "error", "not the leader", "leader", leader));
}

static void run_on_loop(void *arg)
{
    struct lbw_webop *op = arg;
    int rv = op->kind == OP_MEMBER_ADD
                 ? lbw_cluster_add(op->ctx.cluster, op->id, op->raft, on_change, op)
                 : lbw_cluster_remove(op->ctx.cluster, op->id, on_change, op);
    if (rv == 0)
        return; /* on_change answers */
    if (rv == RAFT_NOTLEADER)
        refuse_not_leader(op);
    else
        refuse(op, 400, raft_strerror(rv));
    finish(op);
}

/* ---- back on the web thread -------------------------------------------------------------- */

int lbw_webop_start(struct lbw_webop *op)
{
    if (op->started)
        return 0;
    op->started = 1;
    if (op->too_big)
        return refuse(op, 413, "request body over 16 KiB");
    if (!op->ctx.cluster)
        return refuse(op, 409, "this node is not part of a cluster");
    if (!op->ctx.cfg->web.has_write_token)
        return refuse(op, 403, "writes are disabled: set web.write_token_sha256");
    if (!token_ok(op))
        return refuse(op, 401, "a valid \"Authorization: Bearer TOKEN\" header is required");
    if (op->kind == OP_MEMBER_ADD && parse_add(op) != 0)
        return refuse(op, 400, "expected {\"id\": N, \"raft\": \"a.b.c.d:port\"}");
    if (op->kind == OP_MEMBER_REMOVE && parse_id(op->url + strlen(MEMBERS_PATH "/"), &op->id))
        return refuse(op, 400, "expected /api/v1/cluster/members/ID");
    MHD_suspend_connection(op->conn);
    if (lbw_loopcall_post(op->ctx.loopcall, run_on_loop, op) != 0) {
        refuse(op, 503, "the node is shutting down");
        atomic_store(&op->done, 1);
        MHD_resume_connection(op->conn);
    }
    return 0;
}

int lbw_webop_done(const struct lbw_webop *op) { return atomic_load(&op->done); }

void lbw_webop_reply(struct lbw_webop *op, struct lbw_reply *r)
{
    char *text = op->answer ? json_dumps(op->answer, JSON_COMPACT) : NULL;
    r->status = text ? op->status : 500;
    r->content_type = "application/json";
    lbw_buf_puts(&r->body, text ? text : "{\"error\":\"out of memory\"}");
    lbw_buf_puts(&r->body, "\n");
    free(text);
}

void lbw_webop_free(struct lbw_webop *op)
{
    if (!op)
        return;
    json_decref(op->answer);
    free(op);
}
