/* nginxkind.c - the nginx scrape: the stub_status page of one run, kept parsed until it is
 * emitted. See nginxkind.h. */
#include "probes/nginxkind.h"

#include "probes/nginx.h"

static int nginx_take(void *state, const struct lbw_scrape_source *src, unsigned step,
                      const char *text, size_t len, char *err, size_t errlen)
{
    (void)src;
    (void)step;
    return lbw_nginx_stub_parse(text, len, state, err, errlen);
}

static size_t nginx_emit(void *state, const struct lbw_scrape_source *src,
                         const struct lbw_emitter *e)
{
    (void)src;
    return lbw_nginx_stub_emit(state, e);
}

const struct lbw_scrape_kind lbw_nginx_kind = {
    .name = "nginx",
    .state_size = sizeof(struct lbw_nginx_stub),
    .max_bytes = LBW_NGINX_ANSWER_MAX,
    .next = lbw_scrape_next_once,
    .take = nginx_take,
    .emit = nginx_emit,
    .release = NULL,
};
