/* fuzz_haproxy_text.c - libFuzzer target for HAProxy's text outputs: every input goes to the
 * `show info`, `show ssl cert` (listing) and `show ssl cert FILE` parsers; what parses must
 * describe itself as canonical keys, all of which fit, and each listed file must give a CLI
 * command or a clean refusal. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "probes/haproxy.h"

static void check_key(void *arg, const char *key, int64_t ts, double v)
{
    struct lbw_key_parsed p;
    (void)arg;
    (void)ts;
    (void)v;
    if (lbw_key_parse(key, strlen(key), &p) != 0)
        abort();
}

static const struct lbw_label base[] = {{"probe", "haproxy"}, {"target", "t"}, {"vantage", "v"}};
static const struct lbw_emitter E = {check_key, NULL, base, 3, 1};

static void feed_list(const char *text, size_t len)
{
    struct lbw_haproxy_cert_list l;
    char err[160], cmd[2 * LBW_HAPROXY_CERT_MAX + 32];
    if (lbw_haproxy_cert_list_parse(text, len, &l, err, sizeof(err)) != 0)
        return;
    if (l.nfiles > l.total || l.nfiles > LBW_HAPROXY_CERTS_MAX ||
        lbw_haproxy_cert_list_emit(&l, &E) != 0)
        abort();
    for (size_t i = 0; i < l.nfiles; i++) {
        int n = lbw_haproxy_cert_command(l.files[i], cmd, sizeof(cmd));
        if (n < 0 || (size_t)n != strlen(cmd) || cmd[n - 1] != '\n')
            abort(); /* the buffer is large enough for any usable name */
    }
    lbw_haproxy_cert_list_free(&l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    struct lbw_haproxy_info in;
    struct lbw_haproxy_cert c;
    char err[160];

    if (lbw_haproxy_info_parse(text, size, &in, err, sizeof(err)) == 0 &&
        lbw_haproxy_info_emit(&in, &E) != 0)
        abort();
    if (lbw_haproxy_cert_parse(text, size, &c, err, sizeof(err)) == 0 &&
        lbw_haproxy_cert_emit(&c, &E) != 0)
        abort();
    feed_list(text, size);
    return 0;
}
