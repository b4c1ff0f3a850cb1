/* secretfile.c - reading secret files named in the configuration. See secretfile.h. */
#include "node/secretfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Why the open file fd may not hold a secret, or NULL. */
static const char *unsafe(int fd, mode_t *mode)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return "cannot be examined";
    if (!S_ISREG(st.st_mode))
        return "is not a regular file";
    *mode = st.st_mode & 07777;
    if (st.st_mode & (S_IWGRP | S_IWOTH | S_IROTH))
        return "is readable or writable by others";
    return NULL;
}

int lbw_secret_read(struct ymap *m, const char *key, int text, char *out, size_t *len)
{
    char *path = NULL;
    const char *why = NULL;
    mode_t mode = 0;
    ssize_t n = -1;
    int err = 0;
    *len = 0;
    if (!ymap_path(m, key, Y_OPTIONAL, &path))
        return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd >= 0 && !(why = unsafe(fd, &mode))) {
        n = read(fd, out, LBW_SECRET_MAX + 1);
        err = errno;
    } else if (fd < 0) {
        err = errno;
    }
    if (fd >= 0)
        close(fd);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
        n--;
    if (why && mode & (S_IWGRP | S_IWOTH | S_IROTH))
        ymap_fail(m, key, "%s %s (mode %04o): make it 0600 or 0640", path, why, (unsigned)mode);
    else if (why)
        ymap_fail(m, key, "%s %s", path, why);
    else if (n < 0)
        ymap_fail(m, key, "cannot read %s: %s", path, strerror(err));
    else if (n > LBW_SECRET_MAX)
        ymap_fail(m, key, "%s is longer than %d bytes", path, LBW_SECRET_MAX);
    else if (n == 0)
        ymap_fail(m, key, "%s is empty", path);
    else if (text && memchr(out, '\0', (size_t)n))
        ymap_fail(m, key, "%s holds a NUL byte", path);
    free(path);
    if (ydoc_failed(m->doc)) {
        explicit_bzero(out, LBW_SECRET_MAX + 1);
        return 0;
    }
    out[n] = '\0';
    *len = (size_t)n;
    return 1;
}
