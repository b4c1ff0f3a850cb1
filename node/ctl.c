/* ctl.c - `lbwatch ctl`: operate a running cluster through its JSON API.
 *
 *   lbwatch ctl [-u URL] status
 *   lbwatch ctl [-u URL] [-t TOKEN_FILE] add-node --id N --raft A.B.C.D:PORT
 *   lbwatch ctl [-u URL] [-t TOKEN_FILE] remove-node --id N
 *   lbwatch ctl [-u URL] alerts [--all]
 *   lbwatch ctl [-u URL] silences [--all]
 *   lbwatch ctl [-u URL] [-t TOKEN_FILE] silence --author WHO --duration 2h [--comment C]
 *                                                 LABEL=VALUE|LABEL!=VALUE...
 *   lbwatch ctl [-u URL] [-t TOKEN_FILE] unsilence ID
 *   lbwatch ctl [-u URL] [-t TOKEN_FILE] ack FINGERPRINT --author WHO [--comment C]
 *
 * Reads go to the node at URL. Writes go to the leader: ctl asks URL who leads and sends the
 * request to the leader's web URL with the bearer token (from TOKEN_FILE or $LBWATCH_TOKEN;
 * the token is never printed). Exit status: 0 done, 1 the cluster said no or could not be
 * reached, 2 bad usage. */
#include "node/ctl.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node/buf.h"

#define DEFAULT_URL "http://127.0.0.1:8441"
#define TOKEN_MAX 512

struct ctl {
    const char *url;
    char token[TOKEN_MAX];
    int have_token;
};

struct http_reply {
    long status;
    struct lbw_buf body;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: lbwatch ctl [-u URL] [-t TOKEN_FILE] COMMAND [options]\n\n"
            "Operates a running lbwatch cluster through a node's JSON API.\n\n"
            "commands:\n"
            "  status                             the cluster as URL's node sees it\n"
            "  add-node --id N --raft A.B.C.D:P   add node N (started with join: true) as a voter\n"
            "  remove-node --id N                 remove node N from the cluster\n"
            "  alerts [--all]                     active alerts (--all: resolved ones too)\n"
            "  silences [--all]                   active and pending silences (--all: expired)\n"
            "  silence --author WHO --duration D [--comment C] LABEL=VALUE|LABEL!=VALUE...\n"
            "                                     silence alerts whose labels match all\n"
            "  unsilence ID                       expire silence ID now\n"
            "  ack FINGERPRINT --author WHO [--comment C]\n"
            "                                     acknowledge a firing alert: no more repeats\n"
            "                                     or escalations for this episode\n\n"
            "options:\n"
            "  -u, --url URL          a node's web URL (default " DEFAULT_URL ")\n"
            "  -t, --token-file FILE  file holding the write token (default: $LBWATCH_TOKEN)\n"
            "  -h, --help             this help\n\n"
            "Writes need the token whose SHA-256 is web.write_token_sha256 on the nodes.\n");
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    lbw_buf_add(&((struct http_reply *)arg)->body, p, size * n);
    return size * n;
}

/* One request; body (may be NULL) is JSON. Returns 0 if an HTTP answer came back. */
static int request(const struct ctl *c, const char *method, const char *base, const char *path,
                   const char *body, struct http_reply *out)
{
    char url[1024], auth[TOKEN_MAX + 32], errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *headers = NULL;
    CURL *h = curl_easy_init();
    size_t blen = strlen(base);
    while (blen > 0 && base[blen - 1] == '/')
        blen--;
    snprintf(url, sizeof(url), "%.*s%s", (int)blen, base, path);
    memset(out, 0, sizeof(*out));
    lbw_buf_init(&out->body);
    if (!h)
        return -1;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (body) {
        headers = curl_slist_append(headers, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    }
    if (c->have_token && strcmp(method, "GET") != 0) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->token);
        headers = curl_slist_append(headers, auth);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
    curl_easy_cleanup(h);
    curl_slist_free_all(headers);
    lbw_buf_add(&out->body, "", 0);
    if (rc != CURLE_OK) {
        fprintf(stderr, "lbwatch ctl: %s %s: %s\n", method, url,
                errbuf[0] ? errbuf : curl_easy_strerror(rc));
        return -1;
    }
    return 0;
}

static json_t *get_json(const struct ctl *c, const char *base, const char *path)
{
    struct http_reply r;
    json_t *doc = NULL;
    if (request(c, "GET", base, path, NULL, &r) == 0) {
        doc = json_loads(r.body.data, 0, NULL);
        if (r.status != 200 || !doc) {
            fprintf(stderr, "lbwatch ctl: GET %s: HTTP %ld: %s", path, r.status, r.body.data);
            json_decref(doc);
            doc = NULL;
        }
    }
    lbw_buf_free(&r.body);
    return doc;
}

static const char *str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "-";
}

static void print_contact(json_t *m)
{
    char text[32] = "never";
    json_t *t = json_object_get(m, "last_contact");
    if (json_is_integer(t)) {
        double ago = ((double)time(NULL) * 1000 - (double)json_integer_value(t)) / 1000;
        if (ago < 1)
            snprintf(text, sizeof(text), "now");
        else
            snprintf(text, sizeof(text), "%.1fs ago", ago);
    }
    printf("%-13s", text);
}

static int cmd_status(const struct ctl *c)
{
    json_t *doc = get_json(c, c->url, "/api/v1/cluster"), *m;
    size_t i;
    if (!doc)
        return 1;
    if (!json_is_true(json_object_get(doc, "clustered"))) {
        printf("%s: standalone (no cluster section)\n", str(doc, "name"));
        json_decref(doc);
        return 0;
    }
    json_t *leader = json_object_get(doc, "leader");
    printf("%s (id %lld): %s, term %lld, leader %s, commit %lld, applied %lld, fsm %.16s\n%s",
           str(doc, "name"), (long long)json_integer_value(json_object_get(doc, "id")),
           str(doc, "state"), (long long)json_integer_value(json_object_get(doc, "term")),
           json_is_object(leader) ? str(leader, "name") : "none",
           (long long)json_integer_value(json_object_get(doc, "commit_index")),
           (long long)json_integer_value(json_object_get(doc, "applied_index")),
           str(doc, "fsm_hash"),
           json_is_true(json_object_get(doc, "has_quorum"))
               ? ""
               : "WARNING: this node cannot reach a majority of voters\n");
    printf("\n  %-4s %-12s %-8s %-7s %-10s %-13s %-22s %s\n", "ID", "NAME", "ROLE", "LEADER",
           "REACHABLE", "LAST CONTACT", "RAFT", "WEB");
    json_array_foreach(json_object_get(doc, "members"), i, m) {
        printf("  %-4lld %-12s %-8s %-7s %-10s ", (long long)json_integer_value(
                   json_object_get(m, "id")), str(m, "name"), str(m, "role"),
               json_is_true(json_object_get(m, "leader")) ? "*" : "",
               json_is_true(json_object_get(m, "reachable")) ? "yes" : "NO");
        print_contact(m);
        printf(" %-22s %s\n", str(m, "raft"), str(m, "web"));
    }
    json_decref(doc);
    return 0;
}

/* The leader's web URL according to the node at c->url. */
static int find_leader(const struct ctl *c, char *out, size_t len)
{
    json_t *doc = get_json(c, c->url, "/api/v1/cluster");
    json_t *leader = json_object_get(doc, "leader");
    const char *web = json_string_value(json_object_get(leader, "web"));
    int rc = web && *web ? 0 : -1;
    if (rc == 0)
        snprintf(out, len, "%s", web);
    else if (doc)
        fprintf(stderr, "lbwatch ctl: %s knows no leader with a web URL right now\n", c->url);
    json_decref(doc);
    return rc;
}

static int write_to_leader(const struct ctl *c, const char *method, const char *path,
                           const char *body)
{
    char leader[512];
    struct http_reply r;
    if (!c->have_token) {
        fprintf(stderr, "lbwatch ctl: writes need a token: -t FILE or $LBWATCH_TOKEN\n");
        return 2;
    }
    if (find_leader(c, leader, sizeof(leader)) != 0)
        return 1;
    if (request(c, method, leader, path, body, &r) != 0) {
        lbw_buf_free(&r.body);
        return 1;
    }
    json_t *doc = json_loads(r.body.data, 0, NULL);
    int ok = r.status == 200;
    if (ok)
        printf("%s\n", str(doc, "message"));
    else
        fprintf(stderr, "lbwatch ctl: %s: HTTP %ld: %s\n", leader, r.status,
                doc ? str(doc, "error") : r.body.data);
    json_decref(doc);
    lbw_buf_free(&r.body);
    return ok ? 0 : 1;
}

static int parse_member_args(int argc, char **argv, long long *id, const char **raft)
{
    static const struct option opts[] = {
        {"id", required_argument, NULL, 'i'},
        {"raft", required_argument, NULL, 'r'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    char *end;
    optind = 0; /* a fresh parse: see parse_note_args */
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'i') {
            errno = 0;
            *id = strtoll(optarg, &end, 10);
            if (errno || *end || *id < 1)
                return -1;
        } else if (ch == 'r') {
            *raft = optarg;
        } else {
            return -1;
        }
    }
    return optind == argc ? 0 : -1;
}

static int cmd_add(const struct ctl *c, int argc, char **argv)
{
    long long id = 0;
    const char *raft = NULL;
    char body[256];
    if (parse_member_args(argc, argv, &id, &raft) != 0 || id < 1 || !raft) {
        fprintf(stderr, "usage: lbwatch ctl add-node --id N --raft A.B.C.D:PORT\n");
        return 2;
    }
    json_t *doc = json_pack("{s:I, s:s}", "id", (json_int_t)id, "raft", raft);
    char *text = json_dumps(doc, JSON_COMPACT);
    snprintf(body, sizeof(body), "%s", text ? text : "");
    free(text);
    json_decref(doc);
    return write_to_leader(c, "POST", "/api/v1/cluster/members", body);
}

static int cmd_remove(const struct ctl *c, int argc, char **argv)
{
    long long id = 0;
    const char *raft = NULL;
    char path[128];
    if (parse_member_args(argc, argv, &id, &raft) != 0 || id < 1 || raft) {
        fprintf(stderr, "usage: lbwatch ctl remove-node --id N\n");
        return 2;
    }
    snprintf(path, sizeof(path), "/api/v1/cluster/members/%lld", id);
    return write_to_leader(c, "DELETE", path, NULL);
}

/* "42s", "5m", "3h", "2d": a span of milliseconds, rounded down. */
static void span(int64_t ms, char *out, size_t len)
{
    int64_t s = ms < 0 ? -ms / 1000 : ms / 1000;
    if (s < 120)
        snprintf(out, len, "%llds", (long long)s);
    else if (s < 7200)
        snprintf(out, len, "%lldm", (long long)(s / 60));
    else if (s < 172800)
        snprintf(out, len, "%lldh", (long long)(s / 3600));
    else
        snprintf(out, len, "%lldd", (long long)(s / 86400));
}

/* Milliseconds, like the times the API serves: whole seconds would show a silence created
 * in the last second as pending. */
static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Labels other than alertname as "k=v,k=v". */
static void label_text(json_t *labels, char *out, size_t len)
{
    const char *k;
    json_t *v;
    size_t used = 0;
    out[0] = '\0';
    json_object_foreach(labels, k, v) {
        if (strcmp(k, "alertname") == 0 || used >= len)
            continue;
        int n = snprintf(out + used, len - used, "%s%s=%s", used ? "," : "", k,
                         json_string_value(v) ? json_string_value(v) : "");
        used += n > 0 ? (size_t)n : 0;
    }
}

static int parse_all_flag(int argc, char **argv, int *all)
{
    *all = argc == 2 && strcmp(argv[1], "--all") == 0;
    return argc == 1 || *all ? 0 : -1;
}

static int cmd_alerts(const struct ctl *c, int argc, char **argv)
{
    int all;
    json_t *doc, *a;
    size_t i, shown = 0;
    char since[16], labels[256], note[128];
    if (parse_all_flag(argc, argv, &all) != 0) {
        fprintf(stderr, "usage: lbwatch ctl alerts [--all]\n");
        return 2;
    }
    if (!(doc = get_json(c, c->url, "/api/v1/alerts")))
        return 1;
    printf("%-9s %-9s %-24s %-6s %-16s %-40s %s\n", "STATE", "SEVERITY", "ALERT", "SINCE",
           "FINGERPRINT", "LABELS", "NOTE");
    json_array_foreach(doc, i, a) {
        const char *state = str(a, "state");
        json_t *t = json_object_get(a, strcmp(state, "resolved") == 0 ? "resolved_at"
                                                                         : "active_since");
        if (!all && strcmp(state, "resolved") == 0)
            continue;
        span(json_is_integer(t) ? now_ms() - json_integer_value(t) : 0, since, sizeof(since));
        label_text(json_object_get(a, "labels"), labels, sizeof(labels));
        json_t *ack = json_object_get(a, "acknowledged"), *sil = json_object_get(a, "silenced_by");
        note[0] = '\0';
        if (json_is_object(ack))
            snprintf(note, sizeof(note), "acked by %s", str(ack, "by"));
        else if (json_is_integer(sil))
            snprintf(note, sizeof(note), "silenced by %lld", (long long)json_integer_value(sil));
        else if (json_is_string(json_object_get(a, "inhibited_by")))
            snprintf(note, sizeof(note), "inhibited by %s", str(a, "inhibited_by"));
        printf("%-9s %-9s %-24s %-6s %-16s %-40s %s\n", state, str(a, "severity"),
               str(a, "name"), since, str(a, "fingerprint"), labels, note);
        shown++;
    }
    if (!shown)
        printf("(no %salerts)\n", all ? "" : "active ");
    json_decref(doc);
    return 0;
}

static void matcher_text(json_t *ms, char *out, size_t len)
{
    json_t *m;
    size_t i, used = 0;
    out[0] = '\0';
    json_array_foreach(ms, i, m) {
        if (used >= len)
            break;
        int n = snprintf(out + used, len - used, "%s%s%s%s", used ? "," : "", str(m, "name"),
                         json_is_true(json_object_get(m, "negate")) ? "!=" : "=",
                         str(m, "value"));
        used += n > 0 ? (size_t)n : 0;
    }
}

static int cmd_silences(const struct ctl *c, int argc, char **argv)
{
    int all;
    json_t *doc, *s;
    size_t i, shown = 0;
    char ends[24], matchers[256];
    if (parse_all_flag(argc, argv, &all) != 0) {
        fprintf(stderr, "usage: lbwatch ctl silences [--all]\n");
        return 2;
    }
    if (!(doc = get_json(c, c->url, "/api/v1/silences")))
        return 1;
    printf("%-6s %-8s %-12s %-16s %-40s %s\n", "ID", "STATE", "ENDS", "AUTHOR", "MATCHERS",
           "COMMENT");
    json_array_foreach(doc, i, s) {
        int64_t now = now_ms();
        int64_t start = json_integer_value(json_object_get(s, "starts_at"));
        int64_t end = json_integer_value(json_object_get(s, "ends_at"));
        const char *state = end <= now ? "expired" : start > now ? "pending" : "active";
        if (!all && end <= now)
            continue;
        char t[16];
        span(end - now, t, sizeof(t));
        snprintf(ends, sizeof(ends), end <= now ? "%s ago" : "in %s", t);
        matcher_text(json_object_get(s, "matchers"), matchers, sizeof(matchers));
        printf("%-6lld %-8s %-12s %-16s %-40s %s\n",
               (long long)json_integer_value(json_object_get(s, "id")), state, ends,
               str(s, "author"), matchers, str(s, "comment"));
        shown++;
    }
    if (!shown)
        printf("(no %ssilences)\n", all ? "" : "active ");
    json_decref(doc);
    return 0;
}

/* --author, --duration, --comment; the rest stay in argv[optind..]. */
struct note_args {
    const char *author, *comment, *duration;
};

static int parse_note_args(int argc, char **argv, struct note_args *n, int want_duration)
{
    static const struct option opts[] = {
        {"author", required_argument, NULL, 'a'},
        {"comment", required_argument, NULL, 'c'},
        {"duration", required_argument, NULL, 'd'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    /* 0, not 1: glibc then starts afresh with this optstring, which permutes ("ack FP
     * --author WHO"); with 1 it would keep the "+" (stop at the first operand) of the
     * command line's parse and never see options after an operand */
    optind = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'a')
            n->author = optarg;
        else if (ch == 'c')
            n->comment = optarg;
        else if (ch == 'd' && want_duration)
            n->duration = optarg;
        else
            return -1;
    }
    return n->author && (!want_duration || n->duration) ? 0 : -1;
}

static int post_json(const struct ctl *c, const char *method, const char *path, json_t *doc)
{
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    int rc = text ? write_to_leader(c, method, path, text) : 1;
    if (!text)
        fprintf(stderr, "lbwatch ctl: out of memory\n");
    free(text);
    json_decref(doc);
    return rc;
}

/* "name=value" or "name!=value" */
static json_t *matcher_of(const char *arg)
{
    const char *ne = strstr(arg, "!="), *eq = strchr(arg, '=');
    const char *op = ne && ne < eq ? ne : eq;
    if (!op || op == arg)
        return NULL;
    return json_pack("{s:s%, s:s, s:b}", "name", arg, (size_t)(op - arg), "value",
                     op + (op == ne ? 2 : 1), "negate", op == ne);
}

static int cmd_silence(const struct ctl *c, int argc, char **argv)
{
    struct note_args n = {0};
    json_t *matchers = json_array();
    int ok = parse_note_args(argc, argv, &n, 1) == 0 && optind < argc;
    for (int i = optind; ok && i < argc; i++) {
        json_t *m = matcher_of(argv[i]);
        ok = m != NULL;
        json_array_append_new(matchers, m);
    }
    if (!ok) {
        fprintf(stderr, "usage: lbwatch ctl silence --author WHO --duration 2h [--comment C] "
                        "LABEL=VALUE|LABEL!=VALUE...\n");
        json_decref(matchers);
        return 2;
    }
    json_t *doc = json_pack("{s:o, s:s, s:s}", "matchers", matchers, "author", n.author,
                            "duration", n.duration);
    if (doc && n.comment)
        json_object_set_new(doc, "comment", json_string(n.comment));
    return post_json(c, "POST", "/api/v1/silences", doc);
}

static int cmd_unsilence(const struct ctl *c, int argc, char **argv)
{
    char path[128], *end;
    unsigned long long id = argc == 2 ? strtoull(argv[1], &end, 10) : 0;
    if (argc != 2 || *end || id == 0) {
        fprintf(stderr, "usage: lbwatch ctl unsilence ID\n");
        return 2;
    }
    snprintf(path, sizeof(path), "/api/v1/silences/%llu", id);
    return write_to_leader(c, "DELETE", path, NULL);
}

static int cmd_ack(const struct ctl *c, int argc, char **argv)
{
    struct note_args n = {0};
    char path[128];
    int ok = parse_note_args(argc, argv, &n, 0) == 0 && optind == argc - 1 &&
             strlen(argv[optind]) == 16 && strspn(argv[optind], "0123456789abcdef") == 16;
    if (!ok) {
        fprintf(stderr, "usage: lbwatch ctl ack FINGERPRINT --author WHO [--comment C]\n"
                        "  FINGERPRINT: the 16 hex digits `lbwatch ctl alerts` shows\n");
        return 2;
    }
    snprintf(path, sizeof(path), "/api/v1/alerts/%s/ack", argv[optind]);
    json_t *doc = json_pack("{s:s}", "author", n.author);
    if (doc && n.comment)
        json_object_set_new(doc, "comment", json_string(n.comment));
    return post_json(c, "POST", path, doc);
}

/* The token: the file's first line, or $LBWATCH_TOKEN. */
static int load_token(struct ctl *c, const char *file)
{
    const char *env = getenv("LBWATCH_TOKEN");
    if (file) {
        FILE *f = fopen(file, "r");
        if (!f || !fgets(c->token, sizeof(c->token), f)) {
            fprintf(stderr, "lbwatch ctl: %s: %s\n", file, f ? "empty" : strerror(errno));
            if (f)
                fclose(f);
            return -1;
        }
        fclose(f);
        c->token[strcspn(c->token, "\r\n")] = '\0';
    } else if (env) {
        snprintf(c->token, sizeof(c->token), "%s", env);
    }
    c->have_token = c->token[0] != '\0';
    return 0;
}

int lbw_ctl_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},
        {"token-file", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct ctl c = {.url = DEFAULT_URL};
    const char *token_file = NULL;
    int ch;
    optind = 1;
    /* "+": stop at the command, whose own options follow it */
    while ((ch = getopt_long(argc, argv, "+u:t:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'u': c.url = optarg; break;
        case 't': token_file = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    if (load_token(&c, token_file) != 0)
        return 2;
    const char *cmd = argv[optind];
    int sub_argc = argc - optind;
    char **sub_argv = argv + optind;
    if (strcmp(cmd, "status") == 0 && sub_argc == 1)
        return cmd_status(&c);
    if (strcmp(cmd, "add-node") == 0)
        return cmd_add(&c, sub_argc, sub_argv);
    if (strcmp(cmd, "remove-node") == 0)
        return cmd_remove(&c, sub_argc, sub_argv);
    if (strcmp(cmd, "alerts") == 0)
        return cmd_alerts(&c, sub_argc, sub_argv);
    if (strcmp(cmd, "silences") == 0)
        return cmd_silences(&c, sub_argc, sub_argv);
    if (strcmp(cmd, "silence") == 0)
        return cmd_silence(&c, sub_argc, sub_argv);
    if (strcmp(cmd, "unsilence") == 0)
        return cmd_unsilence(&c, sub_argc, sub_argv);
    if (strcmp(cmd, "ack") == 0)
        return cmd_ack(&c, sub_argc, sub_argv);
    fprintf(stderr, "lbwatch ctl: unknown command or arguments: %s\n\n", cmd);
    usage(stderr);
    return 2;
}
