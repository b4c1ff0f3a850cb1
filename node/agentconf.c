/* agentconf.c - the schema of agent.yaml with its defaults and checks, over node/yamldoc. The
 * collectors' own sections are read by their kinds (node/collector.h). See agentconf.h. */
#include "node/agentconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/grammar.h"
#include "node/yamldoc.h"
#include "raft/batch.h"

#define MIN_INTERVAL_MS 100
#define MAX_INTERVAL_MS (24ull * 3600 * 1000)
#define DEFAULT_INTERVAL_MS 10000
#define DEFAULT_CONNECTIONS 8
#define MAX_CONNECTIONS 1024
#define DEFAULT_BATCHES 360
#define MAX_BATCHES 1000000
#define DEFAULT_BUFFER_BYTES (16ull << 20)
#define MIN_BUFFER_BYTES (64ull << 10)
#define MAX_BUFFER_BYTES (4ull << 30)

static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};

static int is_ip(const char *h)
{
    return lbw_host_is_ipv4(h) || lbw_host_is_ipv6(h);
}

static void read_agent(struct ymap *top, struct lbw_agentconf *c)
{
    struct ymap m;
    int level = LBW_LOG_INFO;

    ymap_map(top, "agent", Y_REQUIRED, &m);
    if (ymap_hostport(&m, "listen", Y_REQUIRED, &c->listen_host, &c->listen_port) &&
        !is_ip(c->listen_host))
        ymap_fail(&m, "listen", "host must be an IP address (e.g. 0.0.0.0, 10.0.0.5, [::])");
    ymap_str(&m, "listen", Y_REQUIRED, &c->listen);
    ymap_duration(&m, "interval", Y_OPTIONAL, MIN_INTERVAL_MS, MAX_INTERVAL_MS, &c->interval_ms);
    ymap_int(&m, "max_connections", Y_OPTIONAL, 1, MAX_CONNECTIONS,
             (int64_t *)&c->max_connections);
    ymap_enum(&m, "log_level", Y_OPTIONAL, log_levels, &level);
    ymap_close(&m);
    c->log_level = (enum lbw_log_level)level;
}

static void read_buffer(struct ymap *top, struct lbw_agentconf *c)
{
    struct ymap m;

    ymap_map(top, "buffer", Y_OPTIONAL, &m);
    ymap_int(&m, "batches", Y_OPTIONAL, 1, MAX_BATCHES, (int64_t *)&c->buffer_batches);
    ymap_size(&m, "size", Y_OPTIONAL, MIN_BUFFER_BYTES, MAX_BUFFER_BYTES, &c->buffer_bytes);
    ymap_close(&m);
}

/* The certificate must be an agent's: the agent's name is the one in it. */
static void check_identity(struct ymap *m, struct lbw_agentconf *c)
{
    char err[256];
    struct lbw_signer *s = lbw_signer_load(c->tls.cert, c->tls.key, err, sizeof(err));
    if (!s) {
        ymap_fail(m, "cert", "%s", err);
        return;
    }
    const struct lbw_identity *id = lbw_signer_identity(s);
    if (id->kind != LBW_ID_AGENT)
        ymap_fail(m, "cert", "%s is the certificate of node %s (id %llu), not of an agent; "
                             "issue one with lbwatch pki issue --agent --name NAME",
                  c->tls.cert, id->name, (unsigned long long)id->id);
    else
        snprintf(c->name, sizeof(c->name), "%s", id->name);
    lbw_signer_free(s);
}

static void read_tls(struct ymap *top, struct lbw_agentconf *c)
{
    struct ymap m;

    ymap_map(top, "tls", Y_REQUIRED, &m);
    ymap_path(&m, "ca", Y_REQUIRED, &c->tls.ca);
    ymap_path(&m, "cert", Y_REQUIRED, &c->tls.cert);
    ymap_path(&m, "key", Y_REQUIRED, &c->tls.key);
    if (ymap_close(&m) == 0)
        check_identity(&m, c);
}

/* Adds kind with the config it read from v (NULL: no collectors section, its defaults). */
static void add_collector(struct ydoc *d, const struct lbw_collector_kind *kind,
                          yaml_node_t *v, struct lbw_agentconf *c)
{
    char path[YD_PATH_MAX];

    snprintf(path, sizeof(path), "collectors.%s", kind->name);
    void *config = kind->configure(d, v, path);
    if (!config)
        return;
    c->collectors[c->ncollectors++] = (struct lbw_agentconf_collector){kind, config};
}

/* "host, processes, ..." into buf. */
static const char *kind_names(char *buf, size_t len)
{
    size_t nkinds, used = 0;
    const struct lbw_collector_kind *kinds = lbw_collector_kinds(&nkinds);
    buf[0] = '\0';
    for (size_t i = 0; i < nkinds && used < len; i++) {
        int w = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", kinds[i].name);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    return buf;
}

static void read_collectors(struct ymap *top, struct lbw_agentconf *c)
{
    struct ymap m;
    size_t nkinds;
    const struct lbw_collector_kind *kinds = lbw_collector_kinds(&nkinds);
    int present = ymap_map(top, "collectors", Y_OPTIONAL, &m);

    c->collectors = calloc(nkinds, sizeof(*c->collectors));
    if (!c->collectors) {
        ydoc_fail(top->doc, NULL, "", "out of memory");
        return;
    }
    for (size_t i = 0; i < nkinds && !ydoc_failed(top->doc); i++) {
        yaml_node_t *v = ymap_value(&m, kinds[i].name, Y_OPTIONAL);
        if (present ? v != NULL : kinds[i].by_default)
            add_collector(top->doc, &kinds[i], v, c);
    }
    char names[128];
    if (ymap_close(&m) == 0 && present && c->ncollectors == 0)
        ymap_fail(top, "collectors", "names no collector (built in: %s)",
                  kind_names(names, sizeof(names)));
}

static void read_config(struct ydoc *d, struct lbw_agentconf *c)
{
    struct ymap top;

    ymap_open(&top, d, ydoc_root(d), "");
    read_agent(&top, c);
    read_buffer(&top, c);
    read_tls(&top, c);
    read_collectors(&top, c);
    ymap_close(&top);
}

static struct lbw_agentconf *defaults(void)
{
    struct lbw_agentconf *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->interval_ms = DEFAULT_INTERVAL_MS;
    c->max_connections = DEFAULT_CONNECTIONS;
    c->buffer_batches = DEFAULT_BATCHES;
    c->buffer_bytes = DEFAULT_BUFFER_BYTES;
    return c;
}

/* Builds the config from a loaded (or failed) document, then frees the document. */
static int finish(struct ydoc *d, struct lbw_agentconf **out, char *err, size_t errlen)
{
    struct lbw_agentconf *c = NULL;

    *out = NULL;
    if (!ydoc_failed(d)) {
        if (!(c = defaults())) {
            ydoc_fail(d, NULL, "", "out of memory");
        } else {
            c->path = ydoc_strdup(d, d->name);
            read_config(d, c);
        }
    }
    if (ydoc_failed(d)) {
        snprintf(err, errlen, "%s", ydoc_error(d));
        lbw_agentconf_free(c);
        ydoc_free(d);
        return -1;
    }
    ydoc_free(d);
    *out = c;
    return 0;
}

int lbw_agentconf_load(const char *path, struct lbw_agentconf **out, char *err, size_t errlen)
{
    struct ydoc d;
    ydoc_load_file(&d, path);
    return finish(&d, out, err, errlen);
}

int lbw_agentconf_parse(const char *name, const char *text, size_t len,
                        struct lbw_agentconf **out, char *err, size_t errlen)
{
    struct ydoc d;
    ydoc_load_buffer(&d, name, text, len);
    return finish(&d, out, err, errlen);
}

void lbw_agentconf_free(struct lbw_agentconf *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->ncollectors; i++)
        c->collectors[i].kind->free_config(c->collectors[i].config);
    free(c->collectors);
    free(c->listen);
    free(c->listen_host);
    free(c->tls.ca);
    free(c->tls.cert);
    free(c->tls.key);
    free(c->path);
    free(c);
}
