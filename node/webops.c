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
#include <time.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "alerting/ledger.h"
#include "node/alerter.h"
#include "node/config.h"
#include "node/loopcall.h"
#include "raft/cluster.h"

#define BODY_MAX 16384
#define MEMBERS_PATH "/api/v1/cluster/members"
#define SILENCES_PATH "/api/v1/silences"
#define ALERTS_PATH "/api/v1/alerts/"
#define ACK_SUFFIX "/ack"

enum op_kind { OP_NONE = -1, OP_MEMBER_ADD, OP_MEMBER_REMOVE, OP_SILENCE_ADD, OP_SILENCE_EXPIRE,
               OP_ACK };

struct lbw_webop {
    struct lbw_web_ctx ctx;
    struct MHD_Connection *conn;
    enum op_kind kind;
    const char *url;
    char body[BODY_MAX + 1];
    size_t len;
    int too_big;
    uint64_t id;                /* member id, silence id, or alert fingerprint */
    char raft[LBW_ADDR_MAX];
    struct lbw_op alert_op;     /* silence and ack: its strings point into strings[] */
    char strings[LBW_SILENCE_MAX_MATCHERS * 2 + 2][LBW_LEDGER_TEXT_MAX];
    int started;
    atomic_int done;            /* set on the loop thread before the connection resumes */
    unsigned status;
    json_t *answer;
};

static int has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static enum op_kind kind_of(const char *method, const char *url)
{
    int post = strcmp(method, "POST") == 0, del = strcmp(method, "DELETE") == 0;
    if (post && strcmp(url, MEMBERS_PATH) == 0)
        return OP_MEMBER_ADD;
    if (del && has_prefix(url, MEMBERS_PATH "/"))
        return OP_MEMBER_REMOVE;
    if (post && strcmp(url, SILENCES_PATH) == 0)
        return OP_SILENCE_ADD;
    if (del && has_prefix(url, SILENCES_PATH "/"))
        return OP_SILENCE_EXPIRE;
    if (post && has_prefix(url, ALERTS_PATH) && has_suffix(url, ACK_SUFFIX))
        return OP_ACK;
    return OP_NONE;
}

int lbw_webop_matches(const char *method, const char *url)
{
    return kind_of(method, url) != OP_NONE;
}

struct lbw_webop *lbw_webop_new(const struct lbw_web_ctx *ctx, struct MHD_Connection *conn,
                                const char *method, const char *url)
{
    struct lbw_webop *op = calloc(1, sizeof(*op));
    if (!op)
        return NULL;
    op->ctx = *ctx;
    op->conn = conn;
    op->kind = kind_of(method, url);
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

/* A string of the request into op->strings[slot]; NULL unless a string of 1..max-1 bytes. */
static const char *keep(struct lbw_webop *op, size_t slot, json_t *v, size_t max)
{
    const char *s = json_string_value(v);
    size_t n = s ? strlen(s) : 0;
    if (!s || n == 0 || n >= max || n >= sizeof(op->strings[slot]))
        return NULL;
    memcpy(op->strings[slot], s, n + 1);
    return op->strings[slot];
}

/* matchers: {"label": "value" | "!value", ...} or [{"name", "value", "negate"}, ...] */
static int parse_matchers(struct lbw_webop *op, json_t *m)
{
    struct lbw_matcher *out = op->alert_op.silence.matchers;
    size_t n = 0, slot = 2;
    const char *name;
    json_t *v;
    if (json_is_object(m)) {
        json_object_foreach(m, name, v) {
            if (n == LBW_SILENCE_MAX_MATCHERS)
                return -1;
            const char *val = json_string_value(v);
            int neg = val && val[0] == '!';
            json_t *rest = val ? json_string(val + neg) : NULL;
            json_t *nm = json_string(name);
            out[n].name = keep(op, slot++, nm, LBW_LEDGER_NAME_MAX);
            out[n].value = rest ? json_string_length(rest) ? keep(op, slot++, rest, LBW_LEDGER_TEXT_MAX)
                                                           : (slot++, "")
                                : NULL;
            out[n].negate = neg;
            json_decref(rest);
            json_decref(nm);
            if (!out[n].name || !out[n].value)
                return -1;
            n++;
        }
    } else if (json_is_array(m)) {
        size_t i;
        json_array_foreach(m, i, v) {
            if (n == LBW_SILENCE_MAX_MATCHERS)
                return -1;
            json_t *val = json_object_get(v, "value");
            out[n].name = keep(op, slot++, json_object_get(v, "name"), LBW_LEDGER_NAME_MAX);
            out[n].value = json_is_string(val) && json_string_length(val) == 0
                               ? (slot++, "")
                               : keep(op, slot++, val, LBW_LEDGER_TEXT_MAX);
            out[n].negate = json_is_true(json_object_get(v, "negate"));
            if (!out[n].name || !out[n].value)
                return -1;
            n++;
        }
    }
    op->alert_op.silence.nmatchers = n;
    return n > 0 ? 0 : -1;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* {"matchers": ..., "author": "...", "comment": "...", "starts_at": MS, "ends_at": MS or
 * "duration": "2h"}; starts_at defaults to now. */
static int parse_silence(struct lbw_webop *op)
{
    json_t *doc = json_loadb(op->body, op->len, 0, NULL);
    struct lbw_op *o = &op->alert_op;
    json_t *dur = json_object_get(doc, "duration");
    uint64_t ms = 0;
    int ok = json_is_object(doc);
    o->type = LBW_OP_SILENCE;
    o->time_ms = now_ms();
    o->silence.author = ok ? keep(op, 0, json_object_get(doc, "author"), LBW_LEDGER_NAME_MAX) : NULL;
    o->silence.comment = ok ? keep(op, 1, json_object_get(doc, "comment"), LBW_LEDGER_TEXT_MAX)
                            : NULL;
    o->silence.starts_at = json_is_integer(json_object_get(doc, "starts_at"))
                               ? json_integer_value(json_object_get(doc, "starts_at"))
                               : o->time_ms;
    if (json_is_integer(json_object_get(doc, "ends_at")))
        o->silence.ends_at = json_integer_value(json_object_get(doc, "ends_at"));
    else if (json_is_string(dur) && lbw_parse_duration(json_string_value(dur), &ms) == 0)
        o->silence.ends_at = o->silence.starts_at + (int64_t)ms;
    ok = ok && o->silence.author && parse_matchers(op, json_object_get(doc, "matchers")) == 0 &&
         o->silence.ends_at > o->silence.starts_at && o->silence.ends_at > o->time_ms;
    uint8_t probe[LBW_OP_MAX_BYTES];
    ok = ok && lbw_op_encode(o, probe, sizeof(probe)) > 0; /* well formed */
    json_decref(doc);
    return ok ? 0 : -1;
}

/* POST /api/v1/alerts/FINGERPRINT/ack {"author": "...", "comment": "..."} */
static int parse_ack(struct lbw_webop *op)
{
    const char *hex = op->url + strlen(ALERTS_PATH);
    char *end;
    json_t *doc = json_loadb(op->body, op->len, 0, NULL);
    struct lbw_op *o = &op->alert_op;
    errno = 0;
    op->id = strtoull(hex, &end, 16);
    int ok = !errno && end == hex + 16 && strcmp(end, ACK_SUFFIX) == 0 && json_is_object(doc);
    o->type = LBW_OP_ACK;
    o->time_ms = now_ms();
    o->ack.fingerprint = op->id;
    o->ack.by = ok ? keep(op, 0, json_object_get(doc, "author"), LBW_LEDGER_NAME_MAX) : NULL;
    o->ack.comment = ok ? keep(op, 1, json_object_get(doc, "comment"), LBW_LEDGER_TEXT_MAX)
                        : NULL;
    json_decref(doc);
    return ok && o->ack.by ? 0 : -1;
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

static const char *idtext(uint64_t id, char buf[24])
{
    snprintf(buf, 24, "%llu", (unsigned long long)id);
    return buf;
}

static void on_alert_applied(void *arg, int status, uint64_t index)
{
    struct lbw_webop *op = arg;
    char buf[24];
    if (status != 0)
        refuse(op, 503, "not committed: leadership changed, try again");
    else if (op->kind == OP_SILENCE_ADD)
        answer(op, 200, json_pack("{s:I, s:s++}", "id", (json_int_t)index, "message",
                                  "silence ", idtext(index, buf), " created"));
    else if (op->kind == OP_SILENCE_EXPIRE)
        answer(op, 200, json_pack("{s:b, s:s++}", "ok", 1, "message", "silence ",
                                  idtext(op->id, buf), " expired"));
    else
        answer(op, 200, json_pack("{s:b, s:s}", "ok", 1, "message", "acknowledged"));
    finish(op);
}

/* Silences and acks: checked against the ledger, then proposed by the leader. */
static int run_alert_op(struct lbw_webop *op)
{
    const struct lbw_ledger *l = lbw_alerter_ledger(op->ctx.alerter);
    if (op->kind == OP_SILENCE_EXPIRE) {
        const struct lbw_silence *sil = lbw_ledger_silence(l, op->id);
        if (!sil)
            return refuse(op, 404, "no such silence"), -1;
        op->alert_op = (struct lbw_op){.type = LBW_OP_EXPIRE_SILENCE, .time_ms = now_ms()};
        op->alert_op.expire.silence = op->id;
    } else if (op->kind == OP_ACK) {
        const struct lbw_alert *al = lbw_ledger_alert(l, op->id);
        if (!al)
            return refuse(op, 404, "no such alert"), -1;
        if (al->state != LBW_ALERT_FIRING && al->state != LBW_ALERT_PENDING)
            return refuse(op, 409, "the alert is not active"), -1;
        op->alert_op.ack.expect_seq = al->seq;
    }
    return lbw_alerter_propose(op->ctx.alerter, &op->alert_op, on_alert_applied, op);
}

static void run_on_loop(void *arg)
{
    struct lbw_webop *op = arg;
    int rv;
    if (op->kind == OP_MEMBER_ADD)
        rv = lbw_cluster_add(op->ctx.cluster, op->id, op->raft, on_change, op);
    else if (op->kind == OP_MEMBER_REMOVE)
        rv = lbw_cluster_remove(op->ctx.cluster, op->id, on_change, op);
    else if ((rv = run_alert_op(op)) < 0)
        goto done; /* refused already */
    if (rv == 0)
        return; /* the callback answers */
    if (rv == RAFT_NOTLEADER)
        refuse_not_leader(op);
    else
        refuse(op, 400, raft_strerror(rv));
done:
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
    if (op->kind == OP_SILENCE_ADD && parse_silence(op) != 0)
        return refuse(op, 400, "expected {\"matchers\": {\"label\": \"value\", ...}, "
                               "\"author\": \"...\", \"comment\": \"...\", \"duration\": "
                               "\"2h\" or \"ends_at\": MS}");
    if (op->kind == OP_SILENCE_EXPIRE && parse_id(op->url + strlen(SILENCES_PATH "/"), &op->id))
        return refuse(op, 400, "expected /api/v1/silences/ID");
    if (op->kind == OP_ACK && parse_ack(op) != 0)
        return refuse(op, 400, "expected /api/v1/alerts/FINGERPRINT/ack with {\"author\": "
                               "\"...\", \"comment\": \"...\"}");
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
