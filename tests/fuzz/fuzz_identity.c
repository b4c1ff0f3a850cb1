/* fuzz_identity.c - libFuzzer target for reading identities out of untrusted certificates:
 * any DER input is decoded with d2i_X509 and, when it decodes, handed to
 * lbw_identity_from_cert. It must never crash, and whatever it accepts must be a valid
 * identity that rebuilds into a URI. */
#include <stdint.h>
#include <stdlib.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "raft/identity.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const unsigned char *p = data;
    struct lbw_identity id;
    char uri[128];

    if (size > (size_t)INT32_MAX)
        return 0;
    X509 *x = d2i_X509(NULL, &p, (long)size);
    if (x == NULL) {
        ERR_clear_error();
        return 0;
    }
    if (lbw_identity_from_cert(x, &id) == 0) {
        if (id.kind == LBW_ID_NONE || !lbw_identity_name_valid(id.name) ||
            lbw_identity_uri(&id, uri, sizeof(uri)) != 0)
            abort(); /* accepted something that is not a well-formed identity */
    } else if (id.kind != LBW_ID_NONE) {
        abort(); /* a refusal must leave no half-filled identity */
    }
    X509_free(x);
    ERR_clear_error();
    return 0;
}
