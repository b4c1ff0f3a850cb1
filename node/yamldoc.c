/* yamldoc.c - strict YAML document reading with "FILE:LINE:COL: reason" errors. See yamldoc.h.
 *
 * Owns: loading (a pre-pass over libyaml's events rejects aliases, extra documents and deep
 * nesting before yaml_parser_load builds the tree), error formatting, typed conversion of
 * scalar nodes and the map reader's bookkeeping of known, duplicate and missing keys. The
 * value grammars (durations, sizes, host:port) are grammar.c's lbw_parse_* functions. */
#include "node/yamldoc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "node/grammar.h"

#define SHOW_MAX 40 /* characters of a value quoted in a message */

/* --- errors ---------------------------------------------------------------------------------- */

static void vfail_mark(struct ydoc *d, yaml_mark_t mark, const char *path, const char *fmt,
                       va_list ap)
{
    size_t n;

    if (d->failed)
        return;
    d->failed = 1;
    snprintf(d->err, sizeof(d->err), "%s:%zu:%zu: %s%s", d->name ? d->name : "(config)",
             mark.line + 1, mark.column + 1, path ? path : "", path && *path ? ": " : "");
    n = strlen(d->err);
    vsnprintf(d->err + n, sizeof(d->err) - n, fmt, ap);
}

static void fail_mark(struct ydoc *d, yaml_mark_t mark, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fail_mark(struct ydoc *d, yaml_mark_t mark, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail_mark(d, mark, path, fmt, ap);
    va_end(ap);
}

void ydoc_fail(struct ydoc *d, const yaml_node_t *at, const char *path, const char *fmt, ...)
{
    yaml_mark_t mark = {0, 0, 0};
    va_list ap;

    if (at)
        mark = at->start_mark;
    va_start(ap, fmt);
    vfail_mark(d, mark, path, fmt, ap);
    va_end(ap);
}

static void fail_oom(struct ydoc *d)
{
    yaml_mark_t none = {0, 0, 0};
    fail_mark(d, none, "", "out of memory");
}

int ydoc_failed(const struct ydoc *d) { return d->failed; }
const char *ydoc_error(const struct ydoc *d) { return d->err; }

char *ydoc_strdup(struct ydoc *d, const char *s)
{
    char *copy = strdup(s);
    if (!copy)
        fail_oom(d);
    return copy;
}

/* Writes s quoted with q, control bytes escaped, cut to SHOW_MAX characters. Returns buf. */
static const char *quote(char *buf, size_t len, const char *s, size_t slen, char q)
{
    size_t o = 0, shown = 0;

    buf[o++] = q;
    for (size_t i = 0; i < slen && o + 8 < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c & 0xC0) != 0x80 && shown++ == SHOW_MAX) {
            o += (size_t)snprintf(buf + o, len - o, "...");
            break;
        }
        if (c == (unsigned char)q || c == '\\')
            o += (size_t)snprintf(buf + o, len - o, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            o += (size_t)snprintf(buf + o, len - o, "\\x%02x", c);
        else
            buf[o++] = (char)c;
    }
    buf[o++] = q;
    buf[o] = '\0';
    return buf;
}

static const char *scalar(const yaml_node_t *n) { return (const char *)n->data.scalar.value; }

static int is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    return n->data.scalar.length == 0 || strcmp(scalar(n), "~") == 0 ||
           strcmp(scalar(n), "null") == 0 || strcmp(scalar(n), "Null") == 0 ||
           strcmp(scalar(n), "NULL") == 0;
}

const char *ydoc_what(const yaml_node_t *n, char *buf, size_t len)
{
    if (n->type == YAML_MAPPING_NODE)
        snprintf(buf, len, "a mapping");
    else if (n->type == YAML_SEQUENCE_NODE)
        snprintf(buf, len, "a sequence");
    else if (is_null(n))
        snprintf(buf, len, "an empty value");
    else
        quote(buf, len, scalar(n), n->data.scalar.length, '"');
    return buf;
}

static int fail_type(struct ydoc *d, const yaml_node_t *n, const char *path, const char *want)
{
    char got[SHOW_MAX * 4 + 16];
    ydoc_fail(d, n, path, "expected %s, got %s", want, ydoc_what(n, got, sizeof(got)));
    return -1;
}

/* " in 'path'" or " at top level", for messages about a mapping's keys. */
static const char *where(const char *path, char *buf, size_t len)
{
    if (*path)
        snprintf(buf, len, " in '%s'", path);
    else
        snprintf(buf, len, " at top level");
    return buf;
}

/* --- loading --------------------------------------------------------------------------------- */

/* libyaml reader errors carry a byte offset, not a mark: count lines and characters. */
static yaml_mark_t mark_at_offset(const char *text, size_t len, size_t offset)
{
    yaml_mark_t m = {0, 0, 0};
    for (size_t i = 0; i < offset && i < len; i++) {
        if (text[i] == '\n') {
            m.line++;
            m.column = 0;
        } else if (((unsigned char)text[i] & 0xC0) != 0x80) {
            m.column++;
        }
    }
    m.index = offset;
    return m;
}

static void fail_parser(struct ydoc *d, const yaml_parser_t *p, const char *text, size_t len)
{
    if (p->error == YAML_MEMORY_ERROR) {
        fail_oom(d);
    } else if (p->error == YAML_READER_ERROR) {
        fail_mark(d, mark_at_offset(text, len, p->problem_offset), "", "%s", p->problem);
    } else if (p->context) {
        fail_mark(d, p->problem_mark, "", "%s (%s at line %zu)", p->problem, p->context,
                  p->context_mark.line + 1);
    } else {
        fail_mark(d, p->problem_mark, "", "%s", p->problem ? p->problem : "invalid YAML");
    }
}

/* Walks the events once to reject what the document API would hide or expand. */
static void check_events(struct ydoc *d, yaml_parser_t *p, const char *text, size_t len)
{
    yaml_event_t ev;
    int depth = 0, docs = 0, done = 0;

    while (!done && !d->failed) {
        if (!yaml_parser_parse(p, &ev)) {
            fail_parser(d, p, text, len);
            return;
        }
        switch (ev.type) {
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1)
                fail_mark(d, ev.start_mark, "", "more than one YAML document");
            break;
        case YAML_ALIAS_EVENT: /* libyaml allows only [0-9A-Za-z_-] in anchor names */
            fail_mark(d, ev.start_mark, "", "aliases (*%.40s) are not supported; write the value out",
                      (const char *)ev.data.alias.anchor);
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (++depth > YD_DEPTH_MAX)
                fail_mark(d, ev.start_mark, "", "nested deeper than %d levels", YD_DEPTH_MAX);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            depth--;
            break;
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
}

static int parse_text(struct ydoc *d, const char *text, size_t len)
{
    yaml_parser_t p;

    if (!yaml_parser_initialize(&p)) {
        fail_oom(d);
        return -1;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    check_events(d, &p, text, len);
    yaml_parser_delete(&p);
    if (d->failed)
        return -1;

    if (!yaml_parser_initialize(&p)) {
        fail_oom(d);
        return -1;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    if (yaml_parser_load(&p, &d->doc))
        d->loaded = 1;
    else
        fail_parser(d, &p, text, len);
    yaml_parser_delete(&p);
    if (d->loaded && !yaml_document_get_root_node(&d->doc)) {
        yaml_mark_t start = {0, 0, 0};
        fail_mark(d, start, "", "empty document");
    }
    return d->failed ? -1 : 0;
}

static int start(struct ydoc *d, const char *name)
{
    memset(d, 0, sizeof(*d));
    d->name = strdup(name);
    if (!d->name) {
        fail_oom(d);
        return -1;
    }
    return 0;
}

int ydoc_load_buffer(struct ydoc *d, const char *name, const char *text, size_t len)
{
    const char *slash;

    if (start(d, name) < 0)
        return -1;
    slash = strrchr(name, '/');
    if (slash) {
        d->dir = strndup(name, slash == name ? 1 : (size_t)(slash - name));
        if (!d->dir) {
            fail_oom(d);
            return -1;
        }
    }
    return parse_text(d, text ? text : "", text ? len : 0);
}

/* The real directory of the file at path, malloc'd. */
static char *real_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir, *real;

    if (!slash)
        dir = strdup(".");
    else
        dir = strndup(path, slash == path ? 1 : (size_t)(slash - path));
    if (!dir)
        return NULL;
    real = realpath(dir, NULL);
    if (!real)
        return dir;
    free(dir);
    return real;
}

static int read_all(struct ydoc *d, int fd, char **text, size_t *len)
{
    struct stat st;
    ssize_t n;

    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(d->err, sizeof(d->err), "%s: not a regular file", d->name);
        d->failed = 1;
        return -1;
    }
    if ((uint64_t)st.st_size > YD_FILE_MAX) {
        snprintf(d->err, sizeof(d->err), "%s: larger than %u MiB", d->name, YD_FILE_MAX >> 20);
        d->failed = 1;
        return -1;
    }
    *text = malloc((size_t)st.st_size + 1);
    if (!*text) {
        fail_oom(d);
        return -1;
    }
    *len = 0;
    while (*len < (size_t)st.st_size &&
           (n = read(fd, *text + *len, (size_t)st.st_size - *len)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(d->err, sizeof(d->err), "%s: %s", d->name, strerror(errno));
            d->failed = 1;
            return -1;
        }
        *len += (size_t)n;
    }
    return 0;
}

int ydoc_load_file(struct ydoc *d, const char *path)
{
    char *text = NULL;
    size_t len = 0;
    int fd;

    if (start(d, path) < 0)
        return -1;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(d->err, sizeof(d->err), "%s: %s", path, strerror(errno));
        d->failed = 1;
        return -1;
    }
    if (read_all(d, fd, &text, &len) == 0) {
        d->dir = real_dir(path);
        if (!d->dir)
            fail_oom(d);
        else
            parse_text(d, text, len);
    }
    close(fd);
    free(text);
    return d->failed ? -1 : 0;
}

void ydoc_free(struct ydoc *d)
{
    if (d->loaded)
        yaml_document_delete(&d->doc);
    d->loaded = 0;
    free(d->name);
    free(d->dir);
    d->name = d->dir = NULL;
}

yaml_node_t *ydoc_root(struct ydoc *d)
{
    return d->loaded ? yaml_document_get_root_node(&d->doc) : NULL;
}

/* --- scalars --------------------------------------------------------------------------------- */

/* The node's text if it is a scalar, not an empty value and free of NUL bytes (a quoted ""
 * is text; a bare `key:` is not); otherwise records "expected WANT". */
static const char *text_of(struct ydoc *d, const yaml_node_t *n, const char *path,
                           const char *want)
{
    if (d->failed)
        return NULL;
    if (n->type != YAML_SCALAR_NODE || is_null(n)) {
        fail_type(d, n, path, want);
        return NULL;
    }
    if (strlen(scalar(n)) != n->data.scalar.length) {
        ydoc_fail(d, n, path, "contains a NUL character");
        return NULL;
    }
    return scalar(n);
}

static int store_copy(struct ydoc *d, const char *s, char **out)
{
    char *copy = ydoc_strdup(d, s);
    if (!copy)
        return -1;
    free(*out);
    *out = copy;
    return 0;
}

int ydoc_str(struct ydoc *d, yaml_node_t *n, const char *path, char **out)
{
    const char *s = text_of(d, n, path, "a string");
    return s ? store_copy(d, s, out) : -1;
}

int ydoc_path(struct ydoc *d, yaml_node_t *n, const char *path, char **out)
{
    const char *s = text_of(d, n, path, "a path");
    char *joined;

    if (!s)
        return -1;
    if (!*s) {
        ydoc_fail(d, n, path, "must not be empty");
        return -1;
    }
    if (s[0] == '/' || !d->dir)
        return store_copy(d, s, out);
    while (s[0] == '.' && s[1] == '/')
        s += 2;
    if (asprintf(&joined, "%s%s%s", d->dir, strcmp(d->dir, "/") == 0 ? "" : "/", s) < 0) {
        fail_oom(d);
        return -1;
    }
    free(*out);
    *out = joined;
    return 0;
}

int ydoc_bool(struct ydoc *d, yaml_node_t *n, const char *path, int *out)
{
    static const char *const spellings[] = {"false", "true", "False", "True", "FALSE", "TRUE"};

    if (d->failed)
        return -1;
    if (n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        for (size_t i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++) {
            if (strcmp(scalar(n), spellings[i]) == 0) {
                *out = (int)(i % 2);
                return 0;
            }
        }
    }
    return fail_type(d, n, path, "true or false");
}

/* too_small says which side of [min, max] the value (as written: got) fell. */
static int fail_range(struct ydoc *d, const yaml_node_t *n, const char *path, int64_t min,
                      int64_t max, int too_small, const char *got)
{
    if (min != INT64_MIN && max != INT64_MAX)
        ydoc_fail(d, n, path, "must be between %" PRId64 " and %" PRId64 ", got %s", min, max, got);
    else if (too_small)
        ydoc_fail(d, n, path, "must be at least %" PRId64 ", got %s", min, got);
    else
        ydoc_fail(d, n, path, "must be at most %" PRId64 ", got %s", max, got);
    return -1;
}

int ydoc_int(struct ydoc *d, yaml_node_t *n, const char *path, int64_t min, int64_t max,
             int64_t *out)
{
    const char *s = text_of(d, n, path, "an integer");
    const char *digits;
    char *end;
    long long v;

    if (!s)
        return -1;
    digits = s + (s[0] == '-');
    if (*digits < '0' || *digits > '9')
        return fail_type(d, n, path, "an integer");
    errno = 0;
    v = strtoll(s, &end, 10);
    if (*end != '\0')
        return fail_type(d, n, path, "an integer");
    if (errno == ERANGE || v < min || v > max)
        return fail_range(d, n, path, min, max, v < min, s);
    *out = v;
    return 0;
}

int ydoc_port(struct ydoc *d, yaml_node_t *n, const char *path, uint16_t *out)
{
    int64_t v;
    if (ydoc_int(d, n, path, 1, 65535, &v) < 0)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

int ydoc_duration(struct ydoc *d, yaml_node_t *n, const char *path, uint64_t min_ms,
                  uint64_t max_ms, uint64_t *out)
{
    const char *s = text_of(d, n, path, "a duration (e.g. 10s)");
    char q[SHOW_MAX * 4 + 16], lim[32];
    uint64_t v;

    if (!s)
        return -1;
    if (lbw_parse_duration(s, &v) < 0) {
        ydoc_fail(d, n, path, "bad duration %s (use e.g. 500ms, 10s, 5m, 1h)",
                  quote(q, sizeof(q), s, strlen(s), '"'));
        return -1;
    }
    if (v < min_ms || v > max_ms) {
        ydoc_fail(d, n, path, "must be at %s %s, got %s", v < min_ms ? "least" : "most",
                  lbw_format_duration(v < min_ms ? min_ms : max_ms, lim, sizeof(lim)), s);
        return -1;
    }
    *out = v;
    return 0;
}

int ydoc_size(struct ydoc *d, yaml_node_t *n, const char *path, uint64_t min, uint64_t max,
              uint64_t *out)
{
    const char *s = text_of(d, n, path, "a size (e.g. 1GiB)");
    char q[SHOW_MAX * 4 + 16], lim[32];
    uint64_t v;

    if (!s)
        return -1;
    if (lbw_parse_size(s, &v) < 0) {
        ydoc_fail(d, n, path, "bad size %s (use e.g. 512MiB, 1GiB)",
                  quote(q, sizeof(q), s, strlen(s), '"'));
        return -1;
    }
    if (v < min || v > max) {
        ydoc_fail(d, n, path, "must be at %s %s, got %s", v < min ? "least" : "most",
                  lbw_format_size(v < min ? min : max, lim, sizeof(lim)), s);
        return -1;
    }
    *out = v;
    return 0;
}

int ydoc_hostport(struct ydoc *d, yaml_node_t *n, const char *path, char **host, uint16_t *port)
{
    const char *s = text_of(d, n, path, "an address (host:port)");
    char q[SHOW_MAX * 4 + 16], why[128];
    char *h = NULL;
    uint16_t p;

    if (!s)
        return -1;
    if (lbw_parse_hostport(s, &h, &p, why, sizeof(why)) < 0) {
        ydoc_fail(d, n, path, "bad address %s: %s", quote(q, sizeof(q), s, strlen(s), '"'), why);
        return -1;
    }
    free(*host);
    *host = h;
    *port = p;
    return 0;
}

int ydoc_enum(struct ydoc *d, yaml_node_t *n, const char *path, const char *const *names,
              int *out)
{
    const char *s = text_of(d, n, path, "a word");
    char q[SHOW_MAX * 4 + 16], list[256];
    size_t used = 0;
    int i;

    if (!s)
        return -1;
    for (i = 0; names[i]; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    list[0] = '\0';
    for (i = 0; names[i] && used < sizeof(list); i++)
        used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s",
                                 i == 0 ? "" : names[i + 1] ? ", " : " or ", names[i]);
    ydoc_fail(d, n, path, "unknown value %s (use %s)", quote(q, sizeof(q), s, strlen(s), '"'),
              list);
    return -1;
}

/* --- map readers ----------------------------------------------------------------------------- */

static int key_is(const yaml_node_t *k, const char *key, size_t klen)
{
    return k && k->type == YAML_SCALAR_NODE && k->data.scalar.length == klen &&
           memcmp(k->data.scalar.value, key, klen) == 0;
}

static int same_key(const yaml_node_t *a, const yaml_node_t *b)
{
    return key_is(a, scalar(b), b->data.scalar.length);
}

yaml_node_t *ydoc_lookup(struct ydoc *d, const yaml_node_t *map, const char *key)
{
    size_t klen = strlen(key);

    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++)
        if (key_is(yaml_document_get_node(&d->doc, p->key), key, klen))
            return yaml_document_get_node(&d->doc, p->value);
    return NULL;
}

struct keyref {
    const yaml_node_t *node;
    size_t index;
};

/* Orders by length, bytes, then position, so repeats of a key sit together, first one first. */
static int keyref_cmp(const void *a, const void *b)
{
    const struct keyref *x = a, *y = b;
    size_t xl = x->node->data.scalar.length, yl = y->node->data.scalar.length;
    int c;

    if (xl != yl)
        return xl < yl ? -1 : 1;
    c = memcmp(x->node->data.scalar.value, y->node->data.scalar.value, xl);
    if (c != 0)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Every key must be a scalar and appear once; reports the earliest repeat. */
static int check_keys(struct ydoc *d, const yaml_node_t *map, const char *path)
{
    yaml_node_pair_t *pairs = map->data.mapping.pairs.start;
    size_t n = (size_t)(map->data.mapping.pairs.top - pairs), group = 0, dup = SIZE_MAX, first = 0;
    struct keyref *refs;
    char in[YD_PATH_MAX + 16], got[SHOW_MAX * 4 + 16];

    refs = calloc(n ? n : 1, sizeof(*refs));
    if (!refs) {
        fail_oom(d);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        refs[i].node = yaml_document_get_node(&d->doc, pairs[i].key);
        refs[i].index = i;
        if (refs[i].node->type != YAML_SCALAR_NODE) {
            ydoc_fail(d, refs[i].node, "", "keys must be strings%s, got %s",
                      where(path, in, sizeof(in)), ydoc_what(refs[i].node, got, sizeof(got)));
            free(refs);
            return -1;
        }
    }
    qsort(refs, n, sizeof(*refs), keyref_cmp);
    for (size_t i = 1; i < n; i++) {
        if (!same_key(refs[i].node, refs[i - 1].node)) {
            group = i;
        } else if (i == group + 1 && refs[i].index < dup) { /* the key's first repeat */
            dup = refs[i].index;
            first = group;
        }
    }
    if (dup != SIZE_MAX) {
        const yaml_node_t *k = yaml_document_get_node(&d->doc, pairs[dup].key);
        ydoc_fail(d, k, "", "duplicate key %s%s (first at line %zu)",
                  quote(got, sizeof(got), scalar(k), k->data.scalar.length, '\''),
                  where(path, in, sizeof(in)), refs[first].node->start_mark.line + 1);
    }
    free(refs);
    return d->failed ? -1 : 0;
}

void ymap_open(struct ymap *m, struct ydoc *d, yaml_node_t *n, const char *path)
{
    memset(m, 0, sizeof(*m));
    m->doc = d;
    snprintf(m->path, sizeof(m->path), "%s", path);
    if (!n || d->failed)
        return;
    if (n->type != YAML_MAPPING_NODE) {
        fail_type(d, n, path, "a mapping");
        return;
    }
    if (check_keys(d, n, path) == 0)
        m->node = n;
}

static int is_known(const struct ymap *m, const yaml_node_t *k)
{
    for (size_t i = 0; i < m->nknown; i++)
        if (key_is(k, m->known[i], strlen(m->known[i])))
            return 1;
    return 0;
}

static void remember(struct ymap *m, const char *key)
{
    for (size_t i = 0; i < m->nknown; i++)
        if (strcmp(m->known[i], key) == 0)
            return;
    if (m->nknown == YMAP_MAX_KEYS)
        abort(); /* a schema with more keys than YMAP_MAX_KEYS: raise the limit */
    m->known[m->nknown++] = key;
}

static void fail_unknown(struct ymap *m, const yaml_node_t *k)
{
    char in[YD_PATH_MAX + 16], name[SHOW_MAX * 4 + 16], list[YD_ERR_MAX];
    size_t used = 0;

    list[0] = '\0';
    for (size_t i = 0; i < m->nknown && used < sizeof(list); i++)
        used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
                                 m->known[i]);
    ydoc_fail(m->doc, k, "", "unknown key %s%s (expected %s)",
              quote(name, sizeof(name), scalar(k), k->data.scalar.length, '\''),
              where(m->path, in, sizeof(in)), list);
}

int ymap_close(struct ymap *m)
{
    struct ydoc *d = m->doc;
    char in[YD_PATH_MAX + 16];

    if (!m->node || d->failed)
        return d->failed ? -1 : 0;
    for (yaml_node_pair_t *p = m->node->data.mapping.pairs.start;
         p < m->node->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(&d->doc, p->key);
        if (!is_known(m, k)) {
            fail_unknown(m, k);
            return -1;
        }
    }
    if (m->missing)
        ydoc_fail(d, m->node, "", "missing required key '%s'%s", m->missing,
                  where(m->path, in, sizeof(in)));
    return d->failed ? -1 : 0;
}

/* Ends a path cut short by snprintf (which returned n) with "...". */
static void mark_cut(char *buf, size_t len, int n)
{
    if (n >= (int)len && len >= 4)
        memcpy(buf + len - 4, "...", 4);
}

static void key_path(const struct ymap *m, const char *key, char *buf, size_t len)
{
    mark_cut(buf, len, snprintf(buf, len, "%s%s%s", m->path, *m->path ? "." : "", key));
}

void ymap_fail(struct ymap *m, const char *key, const char *fmt, ...)
{
    char path[YD_PATH_MAX];
    yaml_node_t *v = ydoc_lookup(m->doc, m->node, key);
    yaml_mark_t mark = {0, 0, 0};
    va_list ap;

    key_path(m, key, path, sizeof(path));
    if (v || m->node)
        mark = v ? v->start_mark : m->node->start_mark;
    va_start(ap, fmt);
    vfail_mark(m->doc, mark, path, fmt, ap);
    va_end(ap);
}

/* Records key as known and returns its value node, or NULL (noting a missing required key).
 * path receives "PATH.key" either way. */
static yaml_node_t *take(struct ymap *m, const char *key, int flags, char *path, size_t len)
{
    yaml_node_t *v;

    key_path(m, key, path, len);
    remember(m, key);
    if (!m->node || m->doc->failed)
        return NULL;
    v = ydoc_lookup(m->doc, m->node, key);
    if (!v && (flags & Y_REQUIRED) && !m->missing)
        m->missing = key;
    return v;
}

yaml_node_t *ymap_value(struct ymap *m, const char *key, int flags)
{
    char path[YD_PATH_MAX];
    return take(m, key, flags, path, sizeof(path));
}

int ymap_str(struct ymap *m, const char *key, int flags, char **out)
{
    char path[YD_PATH_MAX];
    yaml_node_t *v = take(m, key, flags, path, sizeof(path));
    return v && ydoc_str(m->doc, v, path, out) == 0;
}

int ymap_path(struct ymap *m, const char *key, int flags, char **out)
{
    char path[YD_PATH_MAX];
    yaml_node_t *v = take(m, key, flags, path, sizeof(path));
    return v && ydoc_path(m->doc, v, path, out) == 0;
}

int ymap_bool(struct ymap *m, const char *key, int flags, int *out)
{
    char path[YD_PATH_MAX];
    yaml_node_t *v = take(m, key, flags, path, sizeof(path));
    return v && ydoc_bool(m->doc, v, path, out) == 0;
}

int ymap_int(struct ymap *m, const char *key, int flags, int64_t min, int64_t max, int64_t *out)
{
    char path[YD_PATH_MAX];
    yaml_node_t *v = take(m, key, flags, path, sizeof(path));
    return v && ydoc_int(m->doc, v, path, min, max, out) == 0;
}

int ymap_port(struct ymap *m, const char *key, int flags, uint16_t *out)
{
    char path[YD_PATH_MAX];
    yaml_node_t *v = take(m, key, flags, path, sizeof(path));
    return v && ydoc_port(m->doc, v, path, out) == 0;
}

int ymap_duration(struct ymap *m, const char *key, int flags, uint64_t min_ms, uint64_t max_ms,
                  uint64_t *out)
{
    char path[YD_PATH_MAX];
    yaml_node_t *v = take(m, key, flags, path, sizeof(path));
    return v && ydoc_duration(m->doc, v, path, min_ms, max_ms, out) == 0;
}

int ymap_size(struct ymap *m, const char *key, int flags, uint64_t min, uint64_t max,
              uint64_t *out)
{
    char path[YD_PATH_MAX];
    yaml_node_t *v = take(m, key, flags, path, sizeof(path));
    return v && ydoc_size(m->doc, v, path, min, max, out) == 0;
}

int ymap_hostport(struct ymap *m, const char *key, int flags, char **host, uint16_t *port)
{
    char path[YD_PATH_MAX];
    yaml_node_t *v = take(m, key, flags, path, sizeof(path));
    return v && ydoc_hostport(m->doc, v, path, host, port) == 0;
}

int ymap_enum(struct ymap *m, const char *key, int flags, const char *const *names, int *out)
{
    char path[YD_PATH_MAX];
    yaml_node_t *v = take(m, key, flags, path, sizeof(path));
    return v && ydoc_enum(m->doc, v, path, names, out) == 0;
}

int ymap_map(struct ymap *m, const char *key, int flags, struct ymap *out)
{
    char path[YD_PATH_MAX];
    yaml_node_t *v = take(m, key, flags, path, sizeof(path));
    ymap_open(out, m->doc, v, path);
    return out->node != NULL;
}

int ymap_seq(struct ymap *m, const char *key, int flags, struct yseq *out)
{
    char path[YD_PATH_MAX];
    yaml_node_t *v = take(m, key, flags, path, sizeof(path));

    yseq_open(out, m->doc, v, path);
    return out->node != NULL;
}

/* --- sequences ------------------------------------------------------------------------------- */

void yseq_open(struct yseq *s, struct ydoc *d, yaml_node_t *n, const char *path)
{
    memset(s, 0, sizeof(*s));
    s->doc = d;
    snprintf(s->path, sizeof(s->path), "%s", path);
    if (!n || d->failed)
        return;
    if (n->type != YAML_SEQUENCE_NODE) {
        fail_type(d, n, path, "a sequence");
        return;
    }
    s->node = n;
}

size_t yseq_len(const struct yseq *s)
{
    if (!s->node || s->doc->failed)
        return 0;
    return (size_t)(s->node->data.sequence.items.top - s->node->data.sequence.items.start);
}

yaml_node_t *yseq_node(struct yseq *s, size_t i)
{
    if (i >= yseq_len(s))
        return NULL;
    return yaml_document_get_node(&s->doc->doc, s->node->data.sequence.items.start[i]);
}

static void item_path(const struct yseq *s, size_t i, char *buf, size_t len)
{
    mark_cut(buf, len, snprintf(buf, len, "%s[%zu]", s->path, i));
}

int yseq_map(struct yseq *s, size_t i, struct ymap *out)
{
    char path[YD_PATH_MAX];

    item_path(s, i, path, sizeof(path));
    ymap_open(out, s->doc, yseq_node(s, i), path);
    return out->node != NULL;
}

int yseq_port(struct yseq *s, size_t i, uint16_t *out)
{
    char path[YD_PATH_MAX];
    yaml_node_t *v = yseq_node(s, i);

    item_path(s, i, path, sizeof(path));
    return v && ydoc_port(s->doc, v, path, out) == 0;
}

int yseq_str(struct yseq *s, size_t i, char **out)
{
    char path[YD_PATH_MAX];
    yaml_node_t *v = yseq_node(s, i);

    item_path(s, i, path, sizeof(path));
    return v && ydoc_str(s->doc, v, path, out) == 0;
}
