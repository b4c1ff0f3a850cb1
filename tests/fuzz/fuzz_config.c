/* fuzz_config.c - libFuzzer target for the config loader: any bytes must either load (and
 * free cleanly) or fail with a "fuzz.yaml:LINE:COL: reason" message and no config. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct lbw_config *c = (struct lbw_config *)&c; /* must be overwritten either way */
    char err[1024] = "";
    unsigned line, col;
    int consumed = 0;

    if (lbw_config_parse("fuzz.yaml", (const char *)data, size, &c, err, sizeof(err)) == 0) {
        if (!c || !c->node.name || !c->node.data_dir || !c->web.listen_host)
            abort(); /* a loaded config has its required keys and defaults */
        for (size_t i = 0; i < c->ntargets; i++)
            if (!c->targets[i].address || !c->targets[i].server_name)
                abort();
        lbw_config_free(c);
        return 0;
    }
    if (c != NULL)
        abort(); /* nothing half-loaded */
    if (sscanf(err, "fuzz.yaml:%u:%u: %n", &line, &col, &consumed) != 2 || consumed == 0 ||
        line == 0 || col == 0 || err[consumed] == '\0')
        abort(); /* every failure says where and why */
    return 0;
}
