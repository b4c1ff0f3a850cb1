/* fuzz_template.c - libFuzzer target for annotation templates. Input: 8 bytes of the value
 * (a double, NaN and infinities included), 1 byte of output buffer size, then the template.
 * Checking must give a reason and an offset within the template or accept it; rendering must
 * stay inside an exactly sized buffer (ASan sees any overrun), NUL-terminate, return the
 * length written, and reproduce (cut) a template that has no braces pairs at all. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alerting/template.h"

#define TEMPLATE_MAX (LBW_TEMPLATE_MAX + 64) /* a little past the limit the check enforces */

static const char labels_key[] =
    "ALERTS{alertname=\"CertExpiringSoon\",severity=\"warning\",target=\"w\\\"w\\\\w\","
    "zone=\"\xc3\xa9t\xc3\xa9\"}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct lbw_key_parsed labels;
    static int parsed;
    char tmpl[TEMPLATE_MAX + 1], why[LBW_TEMPLATE_WHY_MAX];
    double value;
    size_t outlen, at = SIZE_MAX;

    if (!parsed && lbw_key_parse(labels_key, strlen(labels_key), &labels) != 0)
        abort();
    parsed = 1;
    if (size < 9)
        return 0;
    memcpy(&value, data, sizeof(value));
    outlen = data[8];
    data += 9;
    size -= 9;
    if (size > TEMPLATE_MAX)
        size = TEMPLATE_MAX;
    memcpy(tmpl, data, size);
    tmpl[size] = '\0';
    size_t len = strlen(tmpl);

    why[0] = '\0';
    if (lbw_template_check(tmpl, why, sizeof(why), &at) != 0 && (at > len || why[0] == '\0'))
        abort(); /* every refusal says where and why */

    char *out = malloc(outlen ? outlen : 1);
    if (!out)
        return 0;
    size_t n = lbw_template_render(tmpl, &labels, value, out, outlen);
    if (outlen == 0 ? n != 0 : (n >= outlen || strlen(out) != n))
        abort();
    if (outlen > 0 && !strstr(tmpl, "{{") && !strstr(tmpl, "}}") &&
        (n > len || memcmp(out, tmpl, n) != 0 || (n < len && n + 4 < outlen - 1)))
        abort(); /* plain text comes out as it went in, cut only near the end of the buffer */
    free(out);
    return 0;
}
