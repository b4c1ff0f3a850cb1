/* ctl.c - `lbwatch ctl`: operate a running cluster through its JSON API.
 *
 *   lbwatch ctl [-u URL] status
 *   lbwatch ctl [-u URL] [-t TOKEN_FILE] add-node --id N --raft A.B.C.D:PORT
 *   lbwatch ctl [-u URL] [-t TOKEN_FILE] remove-node --id N
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
            "  remove-node --id N                 remove node N from the cluster\n\n"
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
    optind = 1;
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
    fprintf(stderr, "lbwatch ctl: unknown command or arguments: %s\n\n", cmd);
    usage(stderr);
    return 2;
}
