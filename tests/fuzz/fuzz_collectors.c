/* fuzz_collectors.c - libFuzzer target for the collector kinds' agent.yaml sections
 * (node/collector.h): the input is a YAML document given to every kind's configure as its
 * section. Each must either return a config (freed cleanly) or fail with a
 * "fuzz.yaml:LINE:COL: reason" message and no config. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "node/collector.h"
#include "node/yamldoc.h"

static void check_kind(const struct lbw_collector_kind *k, const uint8_t *data, size_t size)
{
    struct ydoc d;
    unsigned line, col;
    int consumed = 0;
    if (ydoc_load_buffer(&d, "fuzz.yaml", (const char *)data, size) < 0) {
        ydoc_free(&d);
        return;
    }
    void *config = k->configure(&d, ydoc_root(&d), "collectors.fuzz");
    if (config) {
        if (ydoc_failed(&d))
            abort(); /* a config despite an error */
        k->free_config(config);
    } else if (!ydoc_failed(&d) ||
               sscanf(ydoc_error(&d), "fuzz.yaml:%u:%u: %n", &line, &col, &consumed) != 2 ||
               consumed == 0 || line == 0 || col == 0 || ydoc_error(&d)[consumed] == '\0') {
        abort(); /* every failure says where and why */
    }
    ydoc_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t n;
    const struct lbw_collector_kind *kinds = lbw_collector_kinds(&n);
    for (size_t i = 0; i < n; i++)
        check_kind(&kinds[i], data, size);
    return 0;
}
