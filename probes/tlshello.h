/* tlshello.h - recognising a TLS ClientHello at the start of a TCP payload and reading which
 * protocol versions it offers, for traffic accounting.
 *
 * The payload is untrusted and may be cut short by the capture's snapshot length. The parser
 * reads the TLS record header (type 22, version 3.x, length at most 2^14 + 2048), the
 * handshake header (type 1, ClientHello) and the hello's legacy_version, then walks
 * session_id, cipher_suites, compression_methods and the extensions looking for
 * supported_versions (43). Every length is checked against the field that contains it: a
 * length running past the handshake message, an extension past the extension block, or an
 * extension block that does not end where the hello ends makes the hello malformed; running
 * past what was captured, or past the first record (a hello split over records), merely ends
 * the walk, and the versions are taken from what was read.
 *
 * Offered versions: the supported_versions list when the extension was read (GREASE values
 * ignored), otherwise legacy_version alone. The highest known one among them is the version
 * the client asks for. Owns no state; depends on libc only.
 */
#ifndef LBW_TLSHELLO_H
#define LBW_TLSHELLO_H

#include <stddef.h>
#include <stdint.h>

enum lbw_tls_ver {
    LBW_TLSV_SSL3 = 0,      /* 0x0300 */
    LBW_TLSV_10,            /* 0x0301 */
    LBW_TLSV_11,            /* 0x0302 */
    LBW_TLSV_12,            /* 0x0303 */
    LBW_TLSV_13,            /* 0x0304 */
    LBW_TLSV_OTHER,         /* anything else that is not GREASE (drafts, unknown) */
    LBW_TLSV_COUNT
};

struct lbw_tls_hello {
    enum lbw_tls_ver highest;   /* the highest known offered version; OTHER if none known */
    unsigned offered;           /* bit (1u << v) for every version v offered */
    int supported_versions;     /* 1 if the versions came from the supported_versions
                                   extension, 0 if from legacy_version */
};

/* Parses p[len], the start of a TCP segment's payload. Returns 1 and fills out when it holds
 * a ClientHello, 0 when it is not a TLS handshake record starting a ClientHello, -1 when it is
 * one whose lengths contradict each other (nothing in out is valid then). */
int lbw_tls_hello_parse(const uint8_t *p, size_t len, struct lbw_tls_hello *out);

/* "SSL 3.0", "TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3", "other" (as probe_tls_version_info). */
const char *lbw_tls_ver_name(enum lbw_tls_ver v);

/* The enum value of a wire version (0x0303 -> LBW_TLSV_12); LBW_TLSV_OTHER if unknown. */
enum lbw_tls_ver lbw_tls_ver_of(uint16_t wire);

#endif
