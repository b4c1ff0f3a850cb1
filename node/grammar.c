/* grammar.c - the value grammars of configuration files: durations, sizes, host:port and host
 * names. See grammar.h. */
#include "node/grammar.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MS_SECOND 1000ull
#define MS_MINUTE (60 * MS_SECOND)
#define MS_HOUR (60 * MS_MINUTE)
#define MS_DAY (24 * MS_HOUR)
#define KIB 1024ull
#define MIB (1024 * KIB)
#define GIB (1024 * MIB)
#define TIB (1024 * GIB)
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

struct unit {
    const char *name;
    uint64_t scale;
};

/* In the order they must appear: "1h30m" but not "30m1h". */
static const struct unit duration_units[] = {
    {"w", 7 * MS_DAY}, {"d", MS_DAY}, {"h", MS_HOUR}, {"m", MS_MINUTE}, {"s", MS_SECOND}, {"ms", 1},
};

static const struct unit size_units[] = {
    {"", 1},          {"B", 1},     {"K", KIB}, {"KiB", KIB}, {"M", MIB},
    {"MiB", MIB},     {"G", GIB},   {"GiB", GIB}, {"T", TIB}, {"TiB", TIB},
};

static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_alnum(char c) { return is_digit(c) || is_alpha(c); }

/* Reads the decimal number at *s and advances past it; -1 if there is none or it overflows. */
static int read_number(const char **s, uint64_t *n)
{
    const char *p = *s;

    if (!is_digit(*p))
        return -1;
    for (*n = 0; is_digit(*p); p++) {
        uint64_t d = (uint64_t)(*p - '0');
        if (*n > (UINT64_MAX - d) / 10)
            return -1;
        *n = *n * 10 + d;
    }
    *s = p;
    return 0;
}

/* The index of the unit spelled by the len bytes at s, or -1. */
static int find_unit(const struct unit *units, size_t nunits, const char *s, size_t len)
{
    for (size_t i = 0; i < nunits; i++)
        if (strlen(units[i].name) == len && memcmp(units[i].name, s, len) == 0)
            return (int)i;
    return -1;
}

int lbw_parse_duration(const char *s, uint64_t *ms)
{
    uint64_t total = 0, n;
    int next = 0, u;
    size_t len;

    if (!*s)
        return -1;
    while (*s) {
        if (read_number(&s, &n) < 0)
            return -1;
        for (len = 0; is_alpha(s[len]); len++)
            ;
        u = find_unit(duration_units, NELEM(duration_units), s, len);
        if (u < next || n > (UINT64_MAX - total) / duration_units[u].scale)
            return -1;
        total += n * duration_units[u].scale;
        next = u + 1;
        s += len;
    }
    *ms = total;
    return 0;
}

int lbw_parse_size(const char *s, uint64_t *bytes)
{
    uint64_t n;
    int u;

    if (read_number(&s, &n) < 0)
        return -1;
    u = find_unit(size_units, NELEM(size_units), s, strlen(s));
    if (u < 0 || n > UINT64_MAX / size_units[u].scale)
        return -1;
    *bytes = n * size_units[u].scale;
    return 0;
}

char *lbw_format_duration(uint64_t ms, char *buf, size_t len)
{
    size_t used = 0;

    snprintf(buf, len, "0s");
    for (size_t i = 1 /* from days: "400d" reads better than "57w1d" */;
         i < NELEM(duration_units) && ms > 0 && used < len; i++) {
        const struct unit *u = &duration_units[i];
        if (ms >= u->scale)
            used += (size_t)snprintf(buf + used, len - used, "%" PRIu64 "%s", ms / u->scale,
                                     u->name);
        ms %= u->scale;
    }
    return buf;
}

char *lbw_format_size(uint64_t bytes, char *buf, size_t len)
{
    static const struct unit shown[] = {{"TiB", TIB}, {"GiB", GIB}, {"MiB", MIB}, {"KiB", KIB}};

    for (size_t i = 0; i < NELEM(shown); i++) {
        if (bytes != 0 && bytes % shown[i].scale == 0) {
            snprintf(buf, len, "%" PRIu64 "%s", bytes / shown[i].scale, shown[i].name);
            return buf;
        }
    }
    snprintf(buf, len, "%" PRIu64 "B", bytes);
    return buf;
}

static int set_err(char *err, size_t errlen, const char *why)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", why);
    return -1;
}

int lbw_host_is_ipv4(const char *h)
{
    struct in_addr a;
    return inet_pton(AF_INET, h, &a) == 1;
}

int lbw_host_is_ipv6(const char *h)
{
    struct in6_addr a;
    return inet_pton(AF_INET6, h, &a) == 1;
}

int lbw_host_is_dns_name(const char *h)
{
    size_t label = 0;

    if (strlen(h) > 253)
        return 0;
    for (const char *p = h;; p++) {
        if (*p == '.' || *p == '\0') {
            if (label == 0 || p[-1] == '-')
                return 0;
            if (*p == '\0')
                return 1;
            label = 0;
        } else if (is_alnum(*p) || *p == '_' || (*p == '-' && label > 0)) {
            if (++label > 63)
                return 0;
        } else {
            return 0;
        }
    }
}

static int check_host(const char *h, int bracketed, char *err, size_t errlen)
{
    if (bracketed)
        return lbw_host_is_ipv6(h) ? 0 : set_err(err, errlen, "bad IPv6 address");
    if (strspn(h, "0123456789.") == strlen(h))
        return lbw_host_is_ipv4(h) ? 0 : set_err(err, errlen, "bad IPv4 address");
    return lbw_host_is_dns_name(h) ? 0 : set_err(err, errlen, "bad host name");
}

static int parse_port(const char *s, uint16_t *port, char *err, size_t errlen)
{
    size_t digits = strspn(s, "0123456789");
    unsigned long n;

    if (!*s)
        return set_err(err, errlen, "missing port");
    if (digits != strlen(s))
        return set_err(err, errlen, "bad port (use 1-65535)");
    n = digits > 5 ? 0 : strtoul(s, NULL, 10);
    if (n == 0 || n > 65535)
        return set_err(err, errlen, "port must be 1-65535");
    *port = (uint16_t)n;
    return 0;
}

int lbw_parse_hostport(const char *s, char **host, uint16_t *port, char *err, size_t errlen)
{
    const char *h = s, *end, *p; /* the host is [h, end), the port text starts at p */
    int bracketed = s[0] == '[';
    char *copy;

    if (strstr(s, "://"))
        return set_err(err, errlen, "no URL scheme here: use host:port");
    if (bracketed) {
        h = s + 1;
        end = strchr(h, ']');
        if (!end)
            return set_err(err, errlen, "missing ']' after IPv6 address");
        if (end[1] != ':')
            return set_err(err, errlen, "missing port (use [address]:port)");
        p = end + 2;
    } else {
        end = strrchr(s, ':');
        if (!end)
            return set_err(err, errlen, "missing port (use host:port)");
        if (memchr(s, ':', (size_t)(end - s)))
            return set_err(err, errlen, "IPv6 addresses need brackets, e.g. [::1]:443");
        p = end + 1;
    }
    if (end == h)
        return set_err(err, errlen, "missing host");
    copy = strndup(h, (size_t)(end - h));
    if (!copy)
        return set_err(err, errlen, "out of memory");
    if (check_host(copy, bracketed, err, errlen) < 0 || parse_port(p, port, err, errlen) < 0) {
        free(copy);
        return -1;
    }
    *host = copy;
    return 0;
}
