/* fuzz_nginx_stub.c - libFuzzer target for the stub_status parser: any input must either be
 * rejected with a "line L, column C: ..." message whose position lies inside the input, or
 * parse into counters that, written back in nginx's own layout, parse to the same values. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probes/nginx.h"

static void sink(void *arg, const char *key, int64_t ts, double v)
{
    (void)ts;
    (void)v;
    if (strncmp(key, "nginx_", 6) != 0)
        abort();
    (*(int *)arg)++;
}

/* The error names a line and column that exist in the input (or just past its end). */
static void check_error(const uint8_t *data, size_t size, const char *err)
{
    unsigned line, col;
    if (sscanf(err, "line %u, column %u: ", &line, &col) != 2 || line == 0 || col == 0)
        abort();
    size_t lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    if (line > lines || col > size + 1)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct lbw_nginx_stub s, again;
    char err[200], text[512];

    if (lbw_nginx_stub_parse((const char *)data, size, &s, err, sizeof(err)) != 0) {
        check_error(data, size, err);
        return 0;
    }
    int n = snprintf(text, sizeof(text),
                     "Active connections: %" PRIu64 " \nserver accepts handled requests\n"
                     " %" PRIu64 " %" PRIu64 " %" PRIu64 " \n"
                     "Reading: %" PRIu64 " Writing: %" PRIu64 " Waiting: %" PRIu64 " \n",
                     s.active, s.accepts, s.handled, s.requests, s.reading, s.writing,
                     s.waiting);
    if (n < 0 || (size_t)n >= sizeof(text) ||
        lbw_nginx_stub_parse(text, (size_t)n, &again, err, sizeof(err)) != 0 ||
        memcmp(&s, &again, sizeof(s)) != 0)
        abort();
    int count = 0;
    struct lbw_label base[] = {{"target", "t"}, {"vantage", "v"}};
    struct lbw_emitter e = {.fn = sink, .arg = &count, .base = base, .nbase = 2, .ts_ms = 1};
    lbw_nginx_stub_emit(&s, &e);
    if (count != 7)
        abort();
    return 0;
}
