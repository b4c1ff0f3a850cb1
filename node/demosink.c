/* demosink.c - the demo's webhook receiver. See demosink.h. */
#include "node/demosink.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BODY_MAX (256u << 10)
#define KEYS_MAX 4096

struct lbw_demo_sink {
    struct MHD_Daemon *mhd;
    FILE *out;
    uint16_t port;
    pthread_mutex_t mu;
    char *keys[KEYS_MAX];       /* idempotency keys seen, oldest overwritten */
    unsigned nkeys, received, repeats;
};

struct request {
    char *body;
    size_t len;
    int too_big;
};

/* Remembers key; returns 1 if it was seen before. */
static int seen_before(struct lbw_demo_sink *s, const char *key)
{
    unsigned n = s->nkeys < KEYS_MAX ? s->nkeys : KEYS_MAX;
    for (unsigned i = 0; i < n; i++)
        if (strcmp(s->keys[i], key) == 0)
            return 1;
    free(s->keys[s->nkeys % KEYS_MAX]);
    s->keys[s->nkeys % KEYS_MAX] = strdup(key);
    s->nkeys++;
    return 0;
}

/* "CertExpiringSoon target=expiring, ..." from the alerts' labels */
static void describe(json_t *doc, char *out, size_t len)
{
    size_t i, n = 0;
    json_t *a;
    out[0] = '\0';
    json_array_foreach(json_object_get(doc, "alerts"), i, a) {
        json_t *l = json_object_get(a, "labels");
        const char *name = json_string_value(json_object_get(l, "alertname"));
        const char *target = json_string_value(json_object_get(l, "target"));
        int w = snprintf(out + n, len - n, "%s%s%s%s", i ? ", " : "", name ? name : "?",
                         target ? " target=" : "", target ? target : "");
        if (w < 0 || (size_t)w >= len - n)
            break;
        n += (size_t)w;
    }
}

static void print_notification(struct lbw_demo_sink *s, struct MHD_Connection *c,
                               const struct request *rq)
{
    const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Idempotency-Key");
    json_t *doc = json_loadb(rq->body ? rq->body : "", rq->len, 0, NULL);
    char what[512], stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    const char *status = json_string_value(json_object_get(doc, "status"));
    describe(doc, what, sizeof(what));
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
    pthread_mutex_lock(&s->mu);
    int repeat = key && seen_before(s, key);
    s->received++;
    s->repeats += repeat;
    fprintf(s->out, "%s demo webhook: %s %s%s (key %s)%s\n", stamp,
            !doc ? "unreadable" : status ? status : "?",
            what, json_is_true(json_object_get(doc, "escalation")) ? " [escalation]" : "",
            key ? key : "none", repeat ? " REPEAT of a key already received" : "");
    fflush(s->out);
    pthread_mutex_unlock(&s->mu);
    json_decref(doc);
}

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status)
{
    static const char ok[] = "ok\n";
    struct MHD_Response *r =
        MHD_create_response_from_buffer(sizeof(ok) - 1, (void *)ok, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **con_cls)
{
    struct lbw_demo_sink *s = cls;
    struct request *rq = *con_cls;
    (void)url;
    (void)version;
    if (!rq) {
        *con_cls = rq = calloc(1, sizeof(*rq));
        return rq ? MHD_YES : MHD_NO;
    }
    if (*size) {
        if (rq->len + *size > BODY_MAX || rq->too_big) {
            rq->too_big = 1;
        } else {
            char *p = realloc(rq->body, rq->len + *size);
            if (!p)
                return MHD_NO;
            memcpy(p + rq->len, data, *size);
            rq->body = p;
            rq->len += *size;
        }
        *size = 0;
        return MHD_YES;
    }
    if (strcmp(method, "POST") != 0)
        return answer(c, MHD_HTTP_METHOD_NOT_ALLOWED);
    if (rq->too_big)
        return answer(c, MHD_HTTP_CONTENT_TOO_LARGE);
    print_notification(s, c, rq);
    return answer(c, MHD_HTTP_OK);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode code)
{
    struct request *rq = *con_cls;
    (void)cls;
    (void)c;
    (void)code;
    if (rq) {
        free(rq->body);
        free(rq);
    }
    *con_cls = NULL;
}

struct lbw_demo_sink *lbw_demo_sink_start(uint16_t port, FILE *out)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    struct lbw_demo_sink *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->out = out;
    pthread_mutex_init(&s->mu, NULL);
    s->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, port, NULL, NULL, on_request, s,
                              MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&a,
                              MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
    if (!s->mhd) {
        pthread_mutex_destroy(&s->mu);
        free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : port;
    return s;
}

uint16_t lbw_demo_sink_port(const struct lbw_demo_sink *s) { return s->port; }

void lbw_demo_sink_counts(struct lbw_demo_sink *s, unsigned *received, unsigned *repeats)
{
    pthread_mutex_lock(&s->mu);
    *received = s->received;
    *repeats = s->repeats;
    pthread_mutex_unlock(&s->mu);
}

void lbw_demo_sink_stop(struct lbw_demo_sink *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->mhd);
    for (unsigned i = 0; i < KEYS_MAX; i++)
        free(s->keys[i]);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
