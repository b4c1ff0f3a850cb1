/* haproxykind.c - the HAProxy scrape: the commands of one run and the answers kept until
 * they are emitted. See haproxykind.h. */
#include "probes/haproxykind.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probes/haproxy.h"
#include "probes/haproxyderive.h"

enum ask { ASK_NONE, ASK_CSV, ASK_INFO, ASK_STAT, ASK_CERTS, ASK_CERT };

/* What HAProxy answers a certificate command while another CLI session holds the
 * certificates' lock (every node of a cluster reads the same socket). */
static const char locked_answer[] = "Can't show!";

struct state {
    unsigned repeats;           /* requests sent again: step - repeats is the logical step */
    unsigned tries;             /* of the current request */
    int have_info;
    struct lbw_haproxy_info info;
    struct lbw_haproxy_stats stats;
    int have_list;
    struct lbw_haproxy_cert_list list;
    struct lbw_haproxy_cert *certs;     /* one per listed usable file, in list order */
    size_t ncerts;
};

static int want_certificates(const struct lbw_scrape_source *src)
{
    const struct lbw_haproxy_options *o = src->options;
    return !o || o->certificates;
}

/* What step asks for: over HTTP the CSV; on a socket info, stat, the list, then each file.
 * A request sent again takes a step of its own: those are not counted. */
static enum ask ask_of(const struct state *st, const struct lbw_scrape_source *src,
                       unsigned step)
{
    step -= st->repeats;
    if (src->via == LBW_FETCH_HTTP)
        return step == 0 ? ASK_CSV : ASK_NONE;
    if (step < 2)
        return step == 0 ? ASK_INFO : ASK_STAT;
    if (!want_certificates(src))
        return ASK_NONE;
    if (step == 2)
        return ASK_CERTS;
    return step - 3 < st->list.nfiles ? ASK_CERT : ASK_NONE;
}

static int haproxy_next(void *state, const struct lbw_scrape_source *src, unsigned step,
                        struct lbw_scrape_request *req)
{
    struct state *st = state;
    const char *cmd = NULL;
    switch (ask_of(st, src, step)) {
    case ASK_NONE:
        return 0;
    case ASK_CSV:
        return 1;
    case ASK_INFO:
        cmd = "show info\n";
        break;
    case ASK_STAT:
        cmd = "show stat\n";
        break;
    case ASK_CERTS:
        cmd = "show ssl cert\n";
        break;
    case ASK_CERT:
        /* a listed name always fits: LBW_HAPROXY_CERT_MAX escaped is well under the size */
        return lbw_haproxy_cert_command(st->list.files[step - st->repeats - 3], req->send,
                                        sizeof(req->send)) > 0;
    }
    snprintf(req->send, sizeof(req->send), "%s", cmd);
    return 1;
}

static int take_list(struct state *st, const char *text, size_t len, char *err, size_t errlen)
{
    if (lbw_haproxy_cert_list_parse(text, len, &st->list, err, errlen) != 0)
        return -1;
    st->have_list = 1;
    if (st->list.nfiles == 0)
        return 0;
    st->certs = calloc(st->list.nfiles, sizeof(*st->certs));
    if (!st->certs) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

#define LOCKED_TRIES 3      /* sends of a certificate command that finds the lock taken */

/* 1 when the answer to a certificate command says another session holds the lock. */
static int locked(enum ask ask, const char *text, size_t len)
{
    size_t n = sizeof(locked_answer) - 1;
    return (ask == ASK_CERTS || ask == ASK_CERT) && len >= n && memcmp(text, locked_answer, n) == 0;
}

static int haproxy_take(void *state, const struct lbw_scrape_source *src, unsigned step,
                        const char *text, size_t len, char *err, size_t errlen)
{
    struct state *st = state;
    enum ask ask = ask_of(st, src, step);
    if (locked(ask, text, len)) {
        /* ask again; after the last try go on without it: certificates change rarely, and
         * the statistics matter more than one round of their dates */
        if (++st->tries < LOCKED_TRIES)
            st->repeats++;          /* the next step sends this request again */
        else
            st->tries = 0;          /* without it: no list (so no files), or one date less */
        return 0;
    }
    st->tries = 0;
    switch (ask) {
    case ASK_CSV:
    case ASK_STAT:
        return lbw_haproxy_stat_parse(text, len, &st->stats, err, errlen);
    case ASK_INFO:
        st->have_info = 1;
        return lbw_haproxy_info_parse(text, len, &st->info, err, errlen);
    case ASK_CERTS:
        return take_list(st, text, len, err, errlen);
    case ASK_CERT:
        if (st->ncerts >= st->list.nfiles ||
            lbw_haproxy_cert_parse(text, len, &st->certs[st->ncerts], err, errlen) != 0)
            return -1;
        st->ncerts++;
        return 0;
    case ASK_NONE:
        break;
    }
    snprintf(err, errlen, "no request %u", step);
    return -1;
}

static size_t haproxy_emit(void *state, const struct lbw_scrape_source *src,
                           const struct lbw_emitter *e)
{
    struct state *st = state;
    size_t failed = 0;
    (void)src;
    if (st->have_info)
        failed += lbw_haproxy_info_emit(&st->info, e);
    failed += lbw_haproxy_stats_emit(&st->stats, e);
    if (st->have_list)
        failed += lbw_haproxy_cert_list_emit(&st->list, e);
    for (size_t i = 0; i < st->ncerts; i++)
        failed += lbw_haproxy_cert_emit(&st->certs[i], e);
    return failed;
}

static size_t haproxy_derive(void *state, void *memory, const struct lbw_emitter *e)
{
    struct state *st = state;
    return lbw_haproxy_derive(memory, &st->stats, st->have_info ? &st->info : NULL, e);
}

static void haproxy_release(void *state)
{
    struct state *st = state;
    lbw_haproxy_stats_free(&st->stats);
    lbw_haproxy_cert_list_free(&st->list);
    free(st->certs);
}

const struct lbw_scrape_kind lbw_haproxy_kind = {
    .name = "haproxy",
    .state_size = sizeof(struct state),
    .max_bytes = LBW_HAPROXY_ANSWER_MAX,
    .next = haproxy_next,
    .take = haproxy_take,
    .emit = haproxy_emit,
    .release = haproxy_release,
    .memory_size = sizeof(struct lbw_haproxy_memory),
    .derive = haproxy_derive,
};
