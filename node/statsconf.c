/* statsconf.c - a target's statistics endpoints (haproxy:, nginx:, prometheus:) in the
 * configuration. See statsconf.h. The kinds and what each accepts are the table below;
 * reading the source is common to all of them. */
#include "node/statsconf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "node/secretfile.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

enum { SRC_URL = 1 << LBW_STATS_URL, SRC_SOCKET = 1 << LBW_STATS_SOCKET,
       SRC_ADDRESS = 1 << LBW_STATS_ADDRESS };

struct kind_schema {
    const char *key;            /* the target's key, the kind's name */
    unsigned sources;           /* SRC_* it can be read from */
    /* its own keys, and checks of the source against them; NULL when it has none */
    void (*read_options)(struct ymap *m, struct lbw_target_stats *s);
};

static void read_haproxy(struct ymap *m, struct lbw_target_stats *s);
static void read_prometheus(struct ymap *m, struct lbw_target_stats *s);

static const struct kind_schema kinds[] = {
    {"haproxy", SRC_URL | SRC_SOCKET | SRC_ADDRESS, read_haproxy},
    {"nginx", SRC_URL, NULL},
    {"prometheus", SRC_URL, read_prometheus},
};

/* Calls ymap_fail(m, key, "WHY, got VALUE") with the value as written. */
static void fail_value(struct ymap *m, const char *key, const char *why)
{
    char got[256];
    yaml_node_t *v = ymap_value(m, key, Y_OPTIONAL);
    if (!v || ydoc_failed(m->doc))
        return; /* an earlier error stands (and a failed document gives no values) */
    ymap_fail(m, key, "%s, got %s", why, ydoc_what(v, got, sizeof(got)));
}

/* The text of a secret file (node/secretfile.h), kept in the document. */
static char *read_secret(struct ymap *m, const char *key)
{
    char buf[LBW_SECRET_MAX + 1];
    size_t len;
    if (!lbw_secret_read(m, key, 1, buf, &len))
        return NULL;
    char *s = ydoc_strdup(m->doc, buf);
    explicit_bzero(buf, sizeof(buf));
    return s;
}

static void read_url(struct ymap *m, struct lbw_target_stats *s)
{
    if (!ymap_str(m, "url", Y_OPTIONAL, &s->url))
        return;
    if (strncmp(s->url, "http://", 7) != 0 && strncmp(s->url, "https://", 8) != 0) {
        fail_value(m, "url", "must be an http:// or https:// URL");
        return;
    }
    for (const char *p = s->url; *p; p++) {
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
            fail_value(m, "url", "must not hold spaces or control characters");
            return;
        }
    }
}

static void read_socket(struct ymap *m, struct lbw_target_stats *s)
{
    struct sockaddr_un sun;
    if (ymap_path(m, "socket", Y_OPTIONAL, &s->socket) &&
        strlen(s->socket) >= sizeof(sun.sun_path))
        ymap_fail(m, "socket", "%s is longer than a unix socket path may be (%zu bytes)",
                  s->socket, sizeof(sun.sun_path) - 1);
}

static void read_address(struct ymap *m, struct lbw_target_stats *s)
{
    struct in6_addr a;
    if (!ymap_hostport(m, "address", Y_OPTIONAL, &s->ip, &s->port))
        return;
    if (inet_pton(AF_INET, s->ip, &a) != 1 && inet_pton(AF_INET6, s->ip, &a) != 1)
        fail_value(m, "address", "must be an IP address and port (a stats socket's bind)");
    else
        ymap_str(m, "address", Y_OPTIONAL, &s->address);
}

/* url, socket or address, exactly one, and the keys that go with url. */
static void read_source(struct ymap *m, const struct kind_schema *k, struct lbw_target_stats *s)
{
    static const char *const names[] = {"url", "socket", "address"};
    unsigned given = 0;
    read_url(m, s);
    read_socket(m, s);
    read_address(m, s);
    ymap_str(m, "username", Y_OPTIONAL, &s->username);
    s->password = read_secret(m, "password_file");
    ymap_path(m, "ca_file", Y_OPTIONAL, &s->ca_file);
    given = (s->url ? SRC_URL : 0) | (s->socket ? SRC_SOCKET : 0) | (s->ip ? SRC_ADDRESS : 0);
    if (ydoc_failed(m->doc))
        return;
    for (size_t i = 0; i < NELEM(names); i++) {
        if ((given & (1u << i)) && !(k->sources & (1u << i)))
            ymap_fail(m, names[i], "%s statistics are not read from a %s", k->key, names[i]);
        else if ((given & (1u << i)) && (given & ~(1u << i)))
            ymap_fail(m, names[i], "give only one of url, socket and address");
        else if (given & (1u << i))
            s->via = (enum lbw_stats_via)i;
    }
    if (!given)
        ydoc_fail(m->doc, m->node, m->path, "%s",
                  k->sources == SRC_URL ? "needs url" : "needs one of url, socket or address");
    else if (!s->url && (s->username || s->password || s->ca_file))
        ymap_fail(m, s->username ? "username" : s->password ? "password_file" : "ca_file",
                  "only with url");
    else if (!s->username != !s->password)
        ymap_fail(m, s->username ? "username" : "password_file",
                  "basic authentication needs both username and password_file");
}

/* haproxy: certificates (stats socket only); a URL must be the stats page's CSV export. */
static void read_haproxy(struct ymap *m, struct lbw_target_stats *s)
{
    int certificates = 1;
    int given = ymap_bool(m, "certificates", Y_OPTIONAL, &certificates);
    if (ydoc_failed(m->doc))
        return;
    if (s->url && given)
        ymap_fail(m, "certificates", "only on the stats socket (socket or address): the "
                                     "stats page does not list certificates");
    else if (s->url && !strstr(s->url, ";csv"))
        fail_value(m, "url", "must be the stats page's CSV export, e.g. "
                             "http://127.0.0.1:8404/stats;csv");
    s->haproxy.certificates = s->url ? 0 : certificates;
}

/* Pattern i of the allow-list: a metric name or a prefix ending in '*' that cannot match
 * one of lbwatch's own names. Returns 0, or -1 with the error recorded at the pattern. */
static int check_pattern(struct yseq *seq, size_t i, const char *pattern)
{
    char why[96], got[256], path[YD_PATH_MAX + 24];
    yaml_node_t *n = yseq_node(seq, i);
    snprintf(path, sizeof(path), "%s[%zu]", seq->path, i);
    ydoc_what(n, got, sizeof(got));
    if (lbw_promtext_pattern_check(pattern, why, sizeof(why)) != 0) {
        ydoc_fail(seq->doc, n, path, "must be a metric name or a prefix ending in '*' (%s), "
                                     "got %s", why, got);
        return -1;
    }
    if (lbw_promtext_pattern_reserved(pattern)) {
        ydoc_fail(seq->doc, n, path, "would keep lbwatch's own series (%s), got %s",
                  LBW_PROMTEXT_RESERVED, got);
        return -1;
    }
    return 0;
}

/* The allow-list's patterns into items[], checked. Returns how many, or 0 after an error. */
static size_t read_patterns(struct ymap *m, char **items)
{
    struct yseq seq;
    if (!ymap_seq(m, "allow", Y_REQUIRED, &seq))
        return 0;
    size_t n = yseq_len(&seq);
    if (n == 0) {
        ymap_fail(m, "allow", "must list at least one metric name or prefix: a scrape must "
                              "say what it keeps");
        return 0;
    }
    if (n > LBW_STATSCONF_ALLOW_MAX) {
        ymap_fail(m, "allow", "must list at most %d metric names or prefixes, got %zu",
                  LBW_STATSCONF_ALLOW_MAX, n);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (!yseq_str(&seq, i, &items[i]) || check_pattern(&seq, i, items[i]) != 0) {
            for (size_t j = 0; j <= i; j++)
                free(items[j]);
            return 0;
        }
    }
    return n;
}

/* prometheus: the allow-list (required, never empty, never lbwatch's own names). */
static void read_prometheus(struct ymap *m, struct lbw_target_stats *s)
{
    char *items[LBW_STATSCONF_ALLOW_MAX] = {NULL};
    size_t n = read_patterns(m, items);
    if (n == 0)
        return;
    if (lbw_promtext_allow_init(&s->prometheus.allow, (const char *const *)items, n, NULL,
                                0) != 0)
        ydoc_fail(m->doc, m->node, m->path, "out of memory");
    for (size_t i = 0; i < n; i++)
        free(items[i]);
}

static void read_one(struct ymap *m, const struct kind_schema *k, struct lbw_target_stats *s)
{
    struct ymap sm;
    s->kind = k->key;
    ymap_map(m, k->key, Y_OPTIONAL, &sm);
    read_source(&sm, k, s);
    if (k->read_options && !ydoc_failed(m->doc))
        k->read_options(&sm, s);
    ymap_close(&sm);
}

void lbw_statsconf_read(struct ymap *m, struct lbw_target_stats **out, size_t *n)
{
    size_t present = 0;
    *out = NULL;
    *n = 0;
    for (size_t i = 0; i < NELEM(kinds); i++)
        present += ymap_value(m, kinds[i].key, Y_OPTIONAL) != NULL;
    if (present == 0 || ydoc_failed(m->doc))
        return;
    *out = calloc(present, sizeof(**out));
    if (!*out) {
        ydoc_fail(m->doc, NULL, "", "out of memory");
        return;
    }
    for (size_t i = 0; i < NELEM(kinds) && !ydoc_failed(m->doc); i++) {
        if (!ymap_value(m, kinds[i].key, Y_OPTIONAL))
            continue;
        read_one(m, &kinds[i], &(*out)[*n]);
        (*n)++;
    }
}

void lbw_statsconf_free(struct lbw_target_stats *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(s[i].url);
        free(s[i].username);
        if (s[i].password)
            explicit_bzero(s[i].password, strlen(s[i].password));
        free(s[i].password);
        free(s[i].ca_file);
        free(s[i].socket);
        free(s[i].address);
        free(s[i].ip);
        lbw_promtext_allow_free(&s[i].prometheus.allow);
    }
    free(s);
}
