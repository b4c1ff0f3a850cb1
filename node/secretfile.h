/* secretfile.h - secrets the configuration names by file (`*_file` keys: webhook secrets,
 * SMTP and gateway passwords, bearer tokens, basic-auth passwords).
 *
 * One reader for all of them: the file must exist, be a regular file that neither group nor
 * others can write and others cannot read (0600 or 0640, like ssh's private keys), hold 1 to
 * LBW_SECRET_MAX bytes after its final line breaks are trimmed and, for text secrets, no NUL
 * byte. Failures are the configuration's "FILE:LINE:COL: PATH: reason" at the key; a secret's
 * contents never appear in an error or a log.
 */
#ifndef LBW_SECRETFILE_H
#define LBW_SECRETFILE_H

#include <stddef.h>

#include "node/yamldoc.h"

#define LBW_SECRET_MAX 4096

/* Reads the file named by key of m (optional) into out[LBW_SECRET_MAX + 1], NUL-terminated,
 * its length in *len. text: refuse NUL bytes. Returns 1 when read, 0 when the key is absent
 * or the document has failed (here or before). */
int lbw_secret_read(struct ymap *m, const char *key, int text, char *out, size_t *len);

#endif
