/* procfs.c - bounded line streaming and number parsing for /proc-style files. See procfs.h. */
#include "probes/procfs.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

size_t lbw_procfs_lines(const char *buf, size_t len, lbw_procfs_line_fn fn, void *arg)
{
    size_t start = 0, n = 0;
    while (start < len) {
        const char *nl = memchr(buf + start, '\n', len - start);
        if (!nl)
            break;
        size_t end = (size_t)(nl - buf);
        n++;
        if (fn(arg, buf + start, end - start))
            break;
        start = end + 1;
    }
    return n;
}

static int open_at(int dirfd, const char *path)
{
    int fd;
    do
        fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    while (fd < 0 && errno == EINTR);
    return fd;
}

static ssize_t read_some(int fd, char *buf, size_t n)
{
    ssize_t r;
    do
        r = read(fd, buf, n);
    while (r < 0 && errno == EINTR);
    return r;
}

/* Hands the complete lines of buf[0..end) to fn. Returns the offset just past the last '\n'
 * consumed (0 if none), or SIZE_MAX when fn asked to stop. With *skipping set, the first line
 * is the tail of an over-long line and is dropped instead. */
static size_t feed_lines(char *buf, size_t end, int *skipping, lbw_procfs_line_fn fn, void *arg)
{
    size_t start = 0;
    for (;;) {
        const char *nl = memchr(buf + start, '\n', end - start);
        if (!nl)
            return start;
        size_t stop = (size_t)(nl - buf);
        if (*skipping)
            *skipping = 0;
        else if (fn(arg, buf + start, stop - start))
            return SIZE_MAX;
        start = stop + 1;
    }
}

int lbw_procfs_stream(int dirfd, const char *path, char *buf, size_t size,
                      lbw_procfs_line_fn fn, void *arg, size_t *skipped)
{
    if (!buf || size < 2) {
        errno = EINVAL;
        return -1;
    }
    int fd = open_at(dirfd, path);
    if (fd < 0)
        return -1;
    size_t have = 0;
    int skipping = 0;
    for (;;) {
        if (have == size) { /* a full buffer without a '\n': drop this line */
            if (skipped)
                (*skipped)++;
            skipping = 1;
            have = 0;
        }
        ssize_t r = read_some(fd, buf + have, size - have);
        if (r < 0) {
            int saved = errno;
            close(fd);
            errno = saved;
            return -1;
        }
        if (r == 0)
            break;
        size_t end = have + (size_t)r;
        size_t used = feed_lines(buf, end, &skipping, fn, arg);
        if (used == SIZE_MAX)
            break;
        if (skipping) {
            have = 0;
        } else {
            memmove(buf, buf + used, end - used);
            have = end - used;
        }
    }
    close(fd);
    return 0;
}

ssize_t lbw_procfs_read(int dirfd, const char *path, char *buf, size_t size, int *truncated)
{
    if (!buf || size < 1) {
        errno = EINVAL;
        return -1;
    }
    if (truncated)
        *truncated = 0;
    int fd = open_at(dirfd, path);
    if (fd < 0)
        return -1;
    size_t have = 0;
    for (;;) {
        ssize_t r = read_some(fd, buf + have, size - 1 - have);
        if (r < 0) {
            int saved = errno;
            close(fd);
            errno = saved;
            return -1;
        }
        if (r == 0)
            break;
        have += (size_t)r;
        if (have == size - 1) {
            char extra;
            if (truncated && read_some(fd, &extra, 1) > 0)
                *truncated = 1;
            break;
        }
    }
    close(fd);
    buf[have] = '\0';
    return (ssize_t)have;
}

int lbw_procfs_token(const char *line, size_t len, size_t *pos, struct lbw_span *tok)
{
    size_t i = *pos;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (i == len) {
        *pos = i;
        return 0;
    }
    size_t start = i;
    while (i < len && line[i] != ' ' && line[i] != '\t')
        i++;
    tok->p = line + start;
    tok->n = i - start;
    *pos = i;
    return 1;
}

int lbw_procfs_u64(struct lbw_span tok, uint64_t *out)
{
    uint64_t v = 0;
    if (tok.n == 0)
        return -1;
    for (size_t i = 0; i < tok.n; i++) {
        char c = tok.p[i];
        if (c < '0' || c > '9')
            return -1;
        uint64_t d = (uint64_t)(c - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int lbw_procfs_i64(struct lbw_span tok, int64_t *out)
{
    int neg = tok.n > 0 && tok.p[0] == '-';
    struct lbw_span digits = {tok.p + neg, tok.n - (size_t)neg};
    uint64_t mag;
    if (lbw_procfs_u64(digits, &mag) < 0)
        return -1;
    if (neg) {
        if (mag > (uint64_t)INT64_MAX + 1)
            return -1;
        *out = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    } else {
        if (mag > (uint64_t)INT64_MAX)
            return -1;
        *out = (int64_t)mag;
    }
    return 0;
}

int lbw_procfs_decimal(struct lbw_span tok, double *out)
{
    double v = 0, scale = 1;
    size_t i = 0, int_digits = 0, frac_digits = 0;
    for (; i < tok.n && tok.p[i] >= '0' && tok.p[i] <= '9'; i++, int_digits++)
        v = v * 10 + (tok.p[i] - '0');
    if (int_digits == 0)
        return -1;
    if (i < tok.n && tok.p[i] == '.') {
        for (i++; i < tok.n && tok.p[i] >= '0' && tok.p[i] <= '9'; i++, frac_digits++) {
            scale /= 10;
            v += (tok.p[i] - '0') * scale;
        }
        if (frac_digits == 0)
            return -1;
    }
    if (i != tok.n)
        return -1;
    *out = v;
    return 0;
}

int lbw_procfs_eq(struct lbw_span tok, const char *s)
{
    size_t n = strlen(s);
    return tok.n == n && memcmp(tok.p, s, n) == 0;
}

int lbw_procfs_copy(struct lbw_span tok, char *out, size_t size)
{
    if (tok.n >= size || memchr(tok.p, '\0', tok.n))
        return -1;
    memcpy(out, tok.p, tok.n);
    out[tok.n] = '\0';
    return 0;
}
