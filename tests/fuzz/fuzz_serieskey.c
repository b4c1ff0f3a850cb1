/* fuzz_serieskey.c - libFuzzer target for the series-key parser: any input must either be
 * rejected or parse into labels that rebuild to exactly the same canonical key. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "probes/sample.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct lbw_key_parsed p;
    char again[LBW_KEY_MAX];

    if (lbw_key_parse((const char *)data, size, &p) != 0)
        return 0;
    int n = lbw_key_build(again, sizeof(again), p.metric, p.labels, p.nlabels);
    if (n < 0 || (size_t)n != size || memcmp(again, data, size) != 0)
        abort(); /* a key that parses must be canonical */
    return 0;
}
