/* fuzz_haproxy_csv.c - libFuzzer target for HAProxy's CSV: the reader (probes/csv.h) over
 * every field of every row, then `show stat` parsing and its samples, whose keys must all be
 * canonical (they parse back). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "probes/csv.h"
#include "probes/haproxy.h"

static struct lbw_csv csv;

static void check_key(void *arg, const char *key, int64_t ts, double v)
{
    struct lbw_key_parsed p;
    (void)arg;
    (void)ts;
    (void)v;
    if (lbw_key_parse(key, strlen(key), &p) != 0)
        abort(); /* an emitted key must be canonical */
}

static void read_all(const char *text, size_t len)
{
    char err[160];
    if (lbw_csv_open(&csv, text, len, err, sizeof(err)) != 0)
        return;
    while (lbw_csv_next(&csv, err, sizeof(err)) == 1) {
        for (int c = 0; c <= (int)csv.ncols; c++) {
            size_t flen = 0;
            const char *f = lbw_csv_field(&csv, c, &flen);
            if (f && f[flen] != '\0')
                abort(); /* fields are terminated */
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct lbw_label base[] = {{"probe", "haproxy"}, {"target", "t"},
                                            {"vantage", "v"}};
    const struct lbw_emitter e = {check_key, NULL, base, 3, 1};
    struct lbw_haproxy_stats st;
    char err[160];

    read_all((const char *)data, size);
    if (lbw_haproxy_stat_parse((const char *)data, size, &st, err, sizeof(err)) != 0)
        return 0;
    if (lbw_haproxy_stats_emit(&st, &e) != 0)
        abort(); /* every key fits */
    lbw_haproxy_stats_free(&st);
    return 0;
}
