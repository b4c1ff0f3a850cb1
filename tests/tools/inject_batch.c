/* inject_batch.c - test tool: hands crafted sample batches to a cluster node for it to propose,
 * the way a follower forwards its own batches to the leader.
 *
 * It connects to a node's raft port with a node certificate of the cluster (mutual TLS, the
 * server's certificate must name --server-id), opens a side channel (channel byte 'F', then
 * waits for the node to echo it, raft/transport.h) and sends SUBMIT frames (raft/side.h:
 * u32 length | u8 type 4 | entry). Each entry is a batch (raft/batch.h) of one sample
 *     METRIC{target="TARGET",vantage="VANTAGE"} = VALUE at the current time
 * signed as described by --mode:
 *   good             properly signed by the batch signer (default: the TLS certificate)
 *   tamper           a good batch with its last payload byte flipped after signing
 *                    (the sample's value: still well-formed, the signature no longer holds)
 *   replay           the same good batch sent twice
 *   foreign-vantage  the sample's vantage label is --vantage (another node's name), signed
 *                    properly by the signer
 *   forged-origin    the batch states origin --as-id/--as-name (another node), or with
 *                    --as-agent the agent NAME, but carries the signer's certificate and is
 *                    signed with the signer's key
 *   untrusted        a good batch signed by --batch-cert/--batch-key (required), e.g. a
 *                    certificate of another CA, while TLS uses the cluster certificate
 * A node proposes what it receives only while it leads; the state machine of every replica
 * then accepts or refuses it (node/fsm.h). The tool gets no answer: tests look at the nodes.
 * With --write FILE the entry (the first one) is written to FILE instead, and nothing is
 * sent: tests serve it from a fake agent (tests/integration/agent_pull.py).
 *
 * Exit status: 0 when every frame was written and the link closed in order, 1 on a failure
 * (connection refused, wrong server identity, timeout), 2 on bad usage. */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "probes/sample.h"
#include "probes/tlsio.h"
#include "raft/batch.h"
#include "raft/identity.h"

#define SIDE_SUBMIT 4
#define FRAME_HEAD 5

enum mode { M_GOOD, M_TAMPER, M_REPLAY, M_FOREIGN, M_FORGED, M_UNTRUSTED };

static const char *const mode_names[] = {"good", "tamper", "replay", "foreign-vantage",
                                         "forged-origin", "untrusted"};

struct opts {
    const char *connect, *ca, *cert, *key, *batch_cert, *batch_key;
    const char *metric, *target, *vantage, *as_name, *as_agent, *write_file;
    uint64_t server_id, as_id, seq;
    double value;
    enum mode mode;
    unsigned timeout_ms;
};

struct frame {
    uint8_t *buf;
    size_t len;
};

struct state {
    const struct opts *o;
    uv_loop_t loop;
    uv_timer_t timer;
    struct lbw_tlsio *io;
    struct frame frames[2];
    size_t nframes, written;
    int phase;                  /* 0 connecting .. 3 sent, shutting down */
    int failed, done;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: inject_batch --connect A.B.C.D:PORT --server-id N --ca FILE --cert FILE\n"
            "                    --key FILE [--mode MODE] [options]\n\n"
            "Sends a crafted sample batch to a cluster node over the side channel, for the\n"
            "node to propose if it leads. MODE: good (default), tamper, replay,\n"
            "foreign-vantage, forged-origin, untrusted.\n\n"
            "  --connect ADDR      the node's raft address\n"
            "  --server-id N       the raft id the node's certificate must carry\n"
            "  --ca FILE           the cluster CA (verifies the node)\n"
            "  --cert, --key FILE  a node certificate of the cluster, for TLS\n"
            "  --batch-cert FILE   sign the batch with this certificate and key instead\n"
            "  --batch-key FILE    (required by --mode untrusted)\n"
            "  --metric NAME       the sample's metric (default lbwatch_injected)\n"
            "  --target NAME       its target label (default inject)\n"
            "  --vantage NAME      its vantage label (default the signer's name; required by\n"
            "                      foreign-vantage: another node's name)\n"
            "  --as-id N           forged-origin: the origin id the batch claims\n"
            "  --as-name NAME      forged-origin: the origin name the batch claims\n"
            "  --as-agent NAME     forged-origin: claim to be the agent NAME instead\n"
            "  --write FILE        write the entry to FILE and send nothing (then only\n"
            "                      --cert and --key are required)\n"
            "  --seq N             origin sequence number (default the clock in microseconds)\n"
            "  --value V           the sample's value (default 42)\n"
            "  --timeout-ms MS     give up after this long (default 10000)\n"
            "  -h, --help          this help\n");
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || s[0] == '-')
        return -1;
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    static const struct option lopts[] = {
        {"connect", required_argument, NULL, 'c'},   {"server-id", required_argument, NULL, 'S'},
        {"ca", required_argument, NULL, 'A'},        {"cert", required_argument, NULL, 'C'},
        {"key", required_argument, NULL, 'K'},       {"batch-cert", required_argument, NULL, 'b'},
        {"batch-key", required_argument, NULL, 'k'}, {"mode", required_argument, NULL, 'm'},
        {"metric", required_argument, NULL, 'M'},    {"target", required_argument, NULL, 't'},
        {"vantage", required_argument, NULL, 'v'},   {"as-id", required_argument, NULL, 'i'},
        {"as-name", required_argument, NULL, 'n'},   {"seq", required_argument, NULL, 's'},
        {"value", required_argument, NULL, 'V'},     {"timeout-ms", required_argument, NULL, 'T'},
        {"as-agent", required_argument, NULL, 'a'},  {"write", required_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'},            {NULL, 0, NULL, 0},
    };
    uint64_t u;
    char *end;
    int ch;
    while ((ch = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
        switch (ch) {
        case 'c': o->connect = optarg; break;
        case 'S':
            if (parse_u64(optarg, &o->server_id) != 0 || o->server_id == 0)
                return fprintf(stderr, "inject_batch: bad --server-id '%s'\n", optarg), -1;
            break;
        case 'A': o->ca = optarg; break;
        case 'C': o->cert = optarg; break;
        case 'K': o->key = optarg; break;
        case 'b': o->batch_cert = optarg; break;
        case 'k': o->batch_key = optarg; break;
        case 'm': {
            size_t i = 0;
            while (i < sizeof(mode_names) / sizeof(mode_names[0]) && strcmp(optarg, mode_names[i]))
                i++;
            if (i == sizeof(mode_names) / sizeof(mode_names[0]))
                return fprintf(stderr, "inject_batch: unknown --mode '%s'\n", optarg), -1;
            o->mode = (enum mode)i;
            break;
        }
        case 'M': o->metric = optarg; break;
        case 't': o->target = optarg; break;
        case 'v': o->vantage = optarg; break;
        case 'i':
            if (parse_u64(optarg, &o->as_id) != 0 || o->as_id == 0)
                return fprintf(stderr, "inject_batch: bad --as-id '%s'\n", optarg), -1;
            break;
        case 'n': o->as_name = optarg; break;
        case 'a': o->as_agent = optarg; break;
        case 'w': o->write_file = optarg; break;
        case 's':
            if (parse_u64(optarg, &o->seq) != 0)
                return fprintf(stderr, "inject_batch: bad --seq '%s'\n", optarg), -1;
            break;
        case 'V':
            o->value = strtod(optarg, &end);
            if (!*optarg || *end)
                return fprintf(stderr, "inject_batch: bad --value '%s'\n", optarg), -1;
            break;
        case 'T':
            if (parse_u64(optarg, &u) != 0 || u == 0 || u > 600000)
                return fprintf(stderr, "inject_batch: bad --timeout-ms '%s'\n", optarg), -1;
            o->timeout_ms = (unsigned)u;
            break;
        case 'h': usage(stdout); return 1;
        default: return -1;
        }
    }
    if (optind != argc)
        return fprintf(stderr, "inject_batch: unexpected argument '%s'\n", argv[optind]), -1;
    if (o->write_file && (!o->cert || !o->key))
        return fprintf(stderr, "inject_batch: --write needs --cert and --key\n"), -1;
    if (!o->write_file && (!o->connect || !o->server_id || !o->ca || !o->cert || !o->key))
        return fprintf(stderr, "inject_batch: --connect, --server-id, --ca, --cert and --key "
                               "are required\n"), -1;
    if (!o->batch_cert != !o->batch_key)
        return fprintf(stderr, "inject_batch: give both --batch-cert and --batch-key\n"), -1;
    if (o->mode == M_UNTRUSTED && !o->batch_cert)
        return fprintf(stderr, "inject_batch: --mode untrusted needs --batch-cert and "
                               "--batch-key\n"), -1;
    if (o->mode == M_FOREIGN && !o->vantage)
        return fprintf(stderr, "inject_batch: --mode foreign-vantage needs --vantage\n"), -1;
    if (o->mode == M_FORGED && !o->as_agent && (!o->as_id || !o->as_name))
        return fprintf(stderr, "inject_batch: --mode forged-origin needs --as-id and "
                               "--as-name, or --as-agent\n"), -1;
    if (o->as_name && !lbw_identity_name_valid(o->as_name))
        return fprintf(stderr, "inject_batch: bad --as-name '%s'\n", o->as_name), -1;
    if (o->as_agent && !lbw_identity_name_valid(o->as_agent))
        return fprintf(stderr, "inject_batch: bad --as-agent '%s'\n", o->as_agent), -1;
    if (!lbw_metric_name_valid(o->metric))
        return fprintf(stderr, "inject_batch: bad --metric '%s'\n", o->metric), -1;
    return 0;
}

/* ---- making the batch -------------------------------------------------------------------- */

static void put_be(uint8_t *p, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static uint64_t get_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Signs msg as raft/batch.h says: ECDSA P-256 with SHA-256, or Ed25519 over SHA-256(msg). */
static int sign_bytes(EVP_PKEY *key, const uint8_t *msg, size_t len, uint8_t *sig,
                      size_t *siglen)
{
    uint8_t digest[32];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL;
    if (ok && EVP_PKEY_is_a(key, "ED25519"))
        ok = EVP_Digest(msg, len, digest, NULL, EVP_sha256(), NULL) == 1 &&
             EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1 &&
             EVP_DigestSign(ctx, sig, siglen, digest, sizeof(digest)) == 1;
    else if (ok)
        ok = EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) == 1 &&
             EVP_DigestSign(ctx, sig, siglen, msg, len) == 1;
    EVP_MD_CTX_free(ctx);
    return ok && *siglen <= LBW_BATCH_MAX_SIG ? 0 : -1;
}

/* Rewrites a finished batch so that it states another origin (kind, id, name), keeping
 * sequence, certificate and payload, and signs it again with key. */
static int restate_origin(const uint8_t *in, size_t len, enum lbw_identity_kind kind,
                          uint64_t id, const char *name, EVP_PKEY *key, uint8_t **out,
                          size_t *outlen)
{
    size_t old_nlen = in[11], nlen = strlen(name);
    size_t rest_at = 12 + old_nlen;     /* the sequence number */
    size_t p = rest_at + 8;
    size_t cert_len = (size_t)get_be(in + p, 2);
    p += 2 + cert_len;
    size_t payload_len = (size_t)get_be(in + p, 4);
    size_t signed_end = p + 4 + payload_len;
    if (signed_end + 2 > len)
        return -1;
    size_t head = 12 + nlen, body = signed_end - rest_at;
    uint8_t *b = malloc(head + body + 2 + LBW_BATCH_MAX_SIG);
    if (!b)
        return -1;
    b[0] = in[0];
    b[1] = in[1];
    b[2] = (uint8_t)kind;
    put_be(b + 3, id, 8);
    b[11] = (uint8_t)nlen;
    memcpy(b + 12, name, nlen);
    memcpy(b + head, in + rest_at, body);
    size_t siglen = LBW_BATCH_MAX_SIG;
    if (sign_bytes(key, b, head + body, b + head + body + 2, &siglen) != 0) {
        free(b);
        return -1;
    }
    put_be(b + head + body, siglen, 2);
    *out = b;
    *outlen = head + body + 2 + siglen;
    return 0;
}

/* Offset of the last payload byte of a batch (the signature length follows the payload). */
static size_t last_payload_byte(const uint8_t *b)
{
    size_t p = 12 + b[11] + 8;          /* past the origin and the sequence number */
    p += 2 + (size_t)get_be(b + p, 2);  /* past the certificate */
    return p + 4 + (size_t)get_be(b + p, 4) - 1;
}

static EVP_PKEY *load_key(const char *file)
{
    FILE *f = fopen(file, "r");
    EVP_PKEY *k = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    return k;
}

static int make_frame(struct frame *fr, const uint8_t *entry, size_t len)
{
    fr->buf = malloc(FRAME_HEAD + len);
    if (!fr->buf)
        return -1;
    put_be(fr->buf, len + 1, 4);
    fr->buf[4] = SIDE_SUBMIT;
    memcpy(fr->buf + FRAME_HEAD, entry, len);
    fr->len = FRAME_HEAD + len;
    return 0;
}

/* Builds the frames the mode asks for. Returns 0, or -1 with a message printed. */
static int build(struct state *st)
{
    const struct opts *o = st->o;
    char err[256] = "", key[LBW_KEY_MAX];
    const char *cert_file = o->batch_cert ? o->batch_cert : o->cert;
    const char *key_file = o->batch_key ? o->batch_key : o->key;
    struct lbw_signer *signer = lbw_signer_load(cert_file, key_file, err, sizeof(err));
    struct lbw_batch_builder *b = lbw_batch_builder_new();
    EVP_PKEY *pkey = NULL;
    uint8_t *entry = NULL, *forged = NULL;
    size_t len = 0, flen = 0;
    int rc = -1;
    struct timespec ts;

    if (!signer) {
        fprintf(stderr, "inject_batch: signer: %s\n", err);
        goto out;
    }
    if (!b)
        goto out;
    const struct lbw_identity *id = lbw_signer_identity(signer);
    struct lbw_label labels[] = {{"target", o->target},
                                 {"vantage", o->vantage ? o->vantage : id->name}};
    const char *claimed = o->as_agent ? o->as_agent : o->as_name;
    if (o->mode == M_FORGED && !o->vantage)
        labels[1].value = claimed;      /* the forged batch speaks for the one it claims */
    if (lbw_key_build(key, sizeof(key), o->metric, labels, 2) < 0) {
        fprintf(stderr, "inject_batch: cannot build a series key for %s\n", o->metric);
        goto out;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    uint64_t seq = o->seq ? o->seq : (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
    if (lbw_batch_add(b, key, strlen(key), now_ms, o->value) != 0 ||
        lbw_batch_finish(b, signer, seq, &entry, &len, err, sizeof(err)) != 0) {
        fprintf(stderr, "inject_batch: cannot make the batch: %s\n", err);
        goto out;
    }
    switch (o->mode) {
    case M_TAMPER:
        entry[last_payload_byte(entry)] ^= 0x01;
        break;
    case M_FORGED:
        pkey = load_key(key_file);
        if (!pkey || restate_origin(entry, len, o->as_agent ? LBW_ID_AGENT : LBW_ID_NODE,
                                    o->as_agent ? 0 : o->as_id, claimed, pkey, &forged,
                                    &flen)) {
            fprintf(stderr, "inject_batch: cannot restate the origin (key %s)\n", key_file);
            goto out;
        }
        free(entry);
        entry = forged;
        len = flen;
        break;
    default:
        break;
    }
    if (make_frame(&st->frames[st->nframes++], entry, len) != 0)
        goto out;
    if (o->mode == M_REPLAY && make_frame(&st->frames[st->nframes++], entry, len) != 0)
        goto out;
    uint64_t shown_id = o->mode != M_FORGED ? id->id : o->as_agent ? 0 : o->as_id;
    printf("inject_batch: %s: %s seq %llu from %s (id %llu), %zu bytes, x%zu\n",
           mode_names[o->mode], key, (unsigned long long)seq,
           o->mode == M_FORGED ? claimed : id->name, (unsigned long long)shown_id, len,
           st->nframes);
    rc = 0;
out:
    free(entry);
    EVP_PKEY_free(pkey);
    lbw_batch_builder_free(b);
    lbw_signer_free(signer);
    return rc;
}

/* ---- the connection ---------------------------------------------------------------------- */

static void finish(struct state *st, int failed, const char *fmt, const char *detail)
{
    if (st->done)
        return;
    st->done = 1;
    st->failed = failed;
    if (fmt)
        fprintf(stderr, fmt, detail ? detail : "");
    uv_timer_stop(&st->timer);
    uv_close((uv_handle_t *)&st->timer, NULL);
    lbw_tlsio_close(st->io, NULL);
}

static void on_timeout(uv_timer_t *t)
{
    struct state *st = t->data;
    static const char *const phases[] = {"connecting", "in the TLS handshake",
                                         "waiting for the channel answer", "closing"};
    finish(st, st->phase < 3, "inject_batch: timed out %s\n", phases[st->phase]);
}

static void on_shutdown(struct lbw_tlsio *io, int status)
{
    (void)io;
    (void)status; /* the read callback sees the end */
}

static void on_written(struct lbw_tlsio *io, int status, void *arg)
{
    struct state *st = arg;
    if (st->done)
        return;
    if (status != 0) {
        finish(st, 1, "inject_batch: write failed: %s\n", uv_strerror(status));
        return;
    }
    if (++st->written == st->nframes) {
        st->phase = 3;
        if (lbw_tlsio_shutdown(io, on_shutdown) != 0)
            finish(st, 0, NULL, NULL);
    }
}

/* After the answer: whatever the node sends (its HELLO, PINGs) is read and ignored until it
 * closes the link after our close_notify, so nothing we sent is lost to a reset. */
static void on_read(struct lbw_tlsio *io, ssize_t n, const char *data)
{
    struct state *st = lbw_tlsio_data(io);
    (void)data;
    if (st->done || n >= 0)
        return;
    if (st->phase == 3)
        finish(st, 0, NULL, NULL);
    else
        finish(st, 1, "inject_batch: the node closed the link: %s\n",
               n == LBW_TLSIO_ETLS ? lbw_tlsio_error(io) : uv_strerror((int)n));
}

static void send_frames(struct state *st)
{
    for (size_t i = 0; i < st->nframes; i++) {
        uv_buf_t buf = uv_buf_init((char *)st->frames[i].buf, (unsigned)st->frames[i].len);
        int rc = lbw_tlsio_write(st->io, &buf, 1, on_written, st);
        if (rc != 0) {
            finish(st, 1, "inject_batch: write failed: %s\n",
                   rc == LBW_TLSIO_ETLS ? lbw_tlsio_error(st->io) : uv_strerror(rc));
            return;
        }
    }
}

static void on_answer(struct lbw_tlsio *io, ssize_t n, const char *data)
{
    struct state *st = lbw_tlsio_data(io);
    if (n < 0) {
        finish(st, 1, "inject_batch: the node refused the channel: %s\n",
               n == LBW_TLSIO_ETLS ? lbw_tlsio_error(io) : uv_strerror((int)n));
        return;
    }
    if (n != 1 || data[0] != 'F') {
        finish(st, 1, "inject_batch: unexpected answer to the side-channel preamble%s\n", "");
        return;
    }
    lbw_tlsio_read_stop(io);
    if (lbw_tlsio_read_start(io, on_read) != 0) {
        finish(st, 1, "inject_batch: cannot read%s\n", "");
        return;
    }
    send_frames(st);
}

static void on_handshake(struct lbw_tlsio *io, int status)
{
    struct state *st = lbw_tlsio_data(io);
    struct lbw_identity id;
    char msg[128];
    if (status != 0) {
        finish(st, 1, "inject_batch: TLS handshake failed: %s\n",
               status == LBW_TLSIO_ETLS ? lbw_tlsio_error(io) : uv_strerror(status));
        return;
    }
    if (lbw_identity_from_cert(SSL_get0_peer_certificate(lbw_tlsio_ssl(io)), &id) != 0 ||
        id.kind != LBW_ID_NODE || id.id != st->o->server_id) {
        snprintf(msg, sizeof(msg), "node %llu (%s)", (unsigned long long)id.id,
                 id.kind == LBW_ID_NODE ? id.name : "not a node certificate");
        finish(st, 1, "inject_batch: the server is %s, not the expected node\n", msg);
        return;
    }
    st->phase = 2;
    uv_buf_t tag = uv_buf_init("F", 1);
    if (lbw_tlsio_write(io, &tag, 1, NULL, NULL) != 0 ||
        lbw_tlsio_read_start(io, on_answer) != 0)
        finish(st, 1, "inject_batch: cannot send the preamble%s\n", "");
}

static void on_connect(struct lbw_tlsio *io, int status)
{
    struct state *st = lbw_tlsio_data(io);
    if (status != 0) {
        finish(st, 1, "inject_batch: connect: %s\n", uv_strerror(status));
        return;
    }
    st->phase = 1;
    if (lbw_tlsio_handshake(io, on_handshake) != 0)
        finish(st, 1, "inject_batch: cannot start the handshake%s\n", "");
}

/* Parses "a.b.c.d:port". */
static int parse_address(const char *s, struct sockaddr_in *sa)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    uint64_t port;
    if (!colon || (size_t)(colon - s) >= sizeof(host) || parse_u64(colon + 1, &port) != 0 ||
        port == 0 || port > 65535)
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    return uv_ip4_addr(host, (int)port, sa) == 0 ? 0 : -1;
}

/* --write: the crafted entry into a file, nothing sent. Returns the exit status. */
static int write_entry(const struct opts *o)
{
    struct state st;
    memset(&st, 0, sizeof(st));
    st.o = o;
    if (build(&st) != 0)
        return 1;
    FILE *f = fopen(o->write_file, "wb");
    int ok = f && fwrite(st.frames[0].buf + FRAME_HEAD, 1, st.frames[0].len - FRAME_HEAD, f) ==
                      st.frames[0].len - FRAME_HEAD;
    if (f && fclose(f) != 0)
        ok = 0;
    for (size_t i = 0; i < st.nframes; i++)
        free(st.frames[i].buf);
    if (!ok) {
        fprintf(stderr, "inject_batch: cannot write %s\n", o->write_file);
        return 1;
    }
    printf("inject_batch: wrote the entry to %s\n", o->write_file);
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o = {.metric = "lbwatch_injected", .target = "inject", .value = 42,
                     .mode = M_GOOD, .timeout_ms = 10000};
    struct state st;
    struct sockaddr_in sa;
    char err[256] = "";
    int rc = parse_args(argc, argv, &o);
    if (rc != 0) {
        if (rc < 0)
            fprintf(stderr, "run 'inject_batch --help' for usage\n");
        return rc < 0 ? 2 : 0;
    }
    if (o.write_file)
        return write_entry(&o);
    if (parse_address(o.connect, &sa) != 0) {
        fprintf(stderr, "inject_batch: bad --connect '%s' (want a.b.c.d:port)\n", o.connect);
        return 2;
    }
    memset(&st, 0, sizeof(st));
    st.o = &o;
    SSL_CTX *ctx = NULL;
    if (build(&st) != 0 ||
        !(ctx = lbw_tlsio_client_ctx(o.ca, 1, o.cert, o.key, err, sizeof(err)))) {
        if (err[0])
            fprintf(stderr, "inject_batch: TLS: %s\n", err);
        for (size_t i = 0; i < st.nframes; i++)
            free(st.frames[i].buf);
        return 1;
    }
    uv_loop_init(&st.loop);
    uv_timer_init(&st.loop, &st.timer);
    st.timer.data = &st;
    rc = lbw_tlsio_new(&st.io, &st.loop, ctx, LBW_TLSIO_CLIENT, &st);
    if (rc == 0)
        rc = lbw_tlsio_connect(st.io, (const struct sockaddr *)&sa, on_connect);
    if (rc != 0) {
        fprintf(stderr, "inject_batch: cannot connect: %s\n", uv_strerror(rc));
        st.failed = 1;
        if (st.io)
            lbw_tlsio_close(st.io, NULL);
        uv_close((uv_handle_t *)&st.timer, NULL);
    } else {
        uv_timer_start(&st.timer, on_timeout, o.timeout_ms, 0);
    }
    uv_run(&st.loop, UV_RUN_DEFAULT);
    uv_loop_close(&st.loop);
    SSL_CTX_free(ctx);
    for (size_t i = 0; i < st.nframes; i++)
        free(st.frames[i].buf);
    if (!st.failed)
        printf("inject_batch: sent %zu frame(s) to node %llu at %s\n", st.nframes,
               (unsigned long long)o.server_id, o.connect);
    return st.failed ? 1 : 0;
}
