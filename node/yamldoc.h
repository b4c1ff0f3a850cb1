/* yamldoc.h - strict reading of YAML configuration files over libyaml's document API.
 *
 * A struct ydoc owns one loaded document and the first error found in it, always formatted
 * as "FILE:LINE:COL: reason" with the 1-based position of the offending node. Loading rejects
 * syntax errors, aliases (*x, so no billion laughs), more than one document, nesting deeper
 * than YD_DEPTH_MAX and files over YD_FILE_MAX bytes.
 *
 * A section is read with a struct ymap, a reader over one mapping. Each getter names a key,
 * converts and checks its value and records the key as known; ymap_close() then reports the
 * first key nobody asked for ("unknown key") and the first required key that was absent.
 * Duplicate keys and non-scalar keys are rejected when the map is opened. A section reads
 * like its schema:
 *
 *     struct ymap m;
 *     ymap_map(top, "probes", Y_OPTIONAL, &m);
 *     ymap_duration(&m, "interval", Y_OPTIONAL, 100, YD_NO_MAX, &p->interval_ms);
 *     ymap_duration(&m, "timeout", Y_OPTIONAL, 1, YD_NO_MAX, &p->timeout_ms);
 *     if (ymap_close(&m) < 0)
 *         return;
 *     ... cross-field checks, reported with ymap_fail(&m, "timeout", ...) ...
 *
 * Errors are sticky: the first one is kept and every later call is a no-op, so the getters
 * need no error handling between them. A getter leaves *out untouched when the key is absent
 * (so set the default first) and returns 1 when it stored a value, else 0. Strings it stores
 * are malloc'd; a previous *out must be NULL or malloc'd and is freed. Opening a map or
 * sequence that is absent gives a reader whose getters store nothing and report no missing
 * keys. Messages name the value by its dotted path: "probes.timeout", "targets[2].http.path".
 */
#ifndef LBW_YAMLDOC_H
#define LBW_YAMLDOC_H

#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#define YD_FILE_MAX (4u << 20)  /* bytes */
#define YD_DEPTH_MAX 64         /* nested mappings and sequences */
#define YD_PATH_MAX 128         /* dotted key path, e.g. "targets[3].http.expect_status" */
#define YD_ERR_MAX 512
#define YMAP_MAX_KEYS 48        /* keys one reader may ask for */
#define YD_NO_MAX UINT64_MAX    /* no upper bound for ymap_duration/ymap_size */

enum { Y_OPTIONAL = 0, Y_REQUIRED = 1 };

struct ydoc {
    yaml_document_t doc;
    int loaded;                 /* doc holds a document to delete */
    char *name;                 /* FILE in messages */
    char *dir;                  /* base of relative paths; NULL leaves them as written */
    int failed;
    char err[YD_ERR_MAX];
};

struct ymap {
    struct ydoc *doc;
    yaml_node_t *node;          /* NULL: absent or not a mapping */
    char path[YD_PATH_MAX];     /* "" for the top level */
    const char *known[YMAP_MAX_KEYS];
    size_t nknown;
    const char *missing;        /* first required key found absent */
};

struct yseq {
    struct ydoc *doc;
    yaml_node_t *node;          /* NULL: absent or not a sequence */
    char path[YD_PATH_MAX];
};

/* --- documents ------------------------------------------------------------------------------ */

/* Loads the file at path; relative paths in it resolve against the file's real directory.
 * Returns 0, or -1 with the error in ydoc_error(). Call ydoc_free() either way. */
int ydoc_load_file(struct ydoc *d, const char *path);

/* Loads len bytes of text; name is FILE in messages and its directory part (if any) is the
 * base of relative paths. Returns 0 or -1 like ydoc_load_file(). */
int ydoc_load_buffer(struct ydoc *d, const char *name, const char *text, size_t len);

void ydoc_free(struct ydoc *d);

/* The root node of a loaded document (never NULL after a successful load). */
yaml_node_t *ydoc_root(struct ydoc *d);

int ydoc_failed(const struct ydoc *d);
const char *ydoc_error(const struct ydoc *d);

/* Records "FILE:LINE:COL: PATH: reason" at node at (1:1 when NULL) unless an error is already
 * recorded; an empty path leaves out "PATH: ". */
void ydoc_fail(struct ydoc *d, const yaml_node_t *at, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* strdup() that records "out of memory" on failure. */
char *ydoc_strdup(struct ydoc *d, const char *s);

/* The value of key in mapping node map, or NULL. */
yaml_node_t *ydoc_lookup(struct ydoc *d, const yaml_node_t *map, const char *key);

/* Describes a node for "expected X, got Y" messages: "a mapping", "a sequence",
 * "an empty value" or the scalar quoted and shortened. Returns buf. */
const char *ydoc_what(const yaml_node_t *n, char *buf, size_t len);

/* --- typed values of single nodes: 0, or -1 with the error recorded against path ---------- */

int ydoc_str(struct ydoc *d, yaml_node_t *n, const char *path, char **out);
int ydoc_path(struct ydoc *d, yaml_node_t *n, const char *path, char **out); /* resolved */
int ydoc_bool(struct ydoc *d, yaml_node_t *n, const char *path, int *out);   /* true/false */
int ydoc_int(struct ydoc *d, yaml_node_t *n, const char *path, int64_t min, int64_t max,
             int64_t *out);
int ydoc_port(struct ydoc *d, yaml_node_t *n, const char *path, uint16_t *out); /* 1-65535 */
int ydoc_duration(struct ydoc *d, yaml_node_t *n, const char *path, uint64_t min_ms,
                  uint64_t max_ms, uint64_t *out);
int ydoc_size(struct ydoc *d, yaml_node_t *n, const char *path, uint64_t min, uint64_t max,
              uint64_t *out);
int ydoc_hostport(struct ydoc *d, yaml_node_t *n, const char *path, char **host,
                  uint16_t *port);
/* names is NULL-terminated; *out is the index of the matching name. */
int ydoc_enum(struct ydoc *d, yaml_node_t *n, const char *path, const char *const *names,
              int *out);

/* --- map readers ----------------------------------------------------------------------------- */

/* Opens a reader over node n (NULL: absent) whose messages use path. */
void ymap_open(struct ymap *m, struct ydoc *d, yaml_node_t *n, const char *path);

/* Reports the first unknown key, then the first missing required key. Returns 0, or -1 if
 * the document has failed (here or earlier). The reader stays usable for ymap_fail(). */
int ymap_close(struct ymap *m);

/* Records an error at key's value (at the mapping when key is absent), path "PATH.key". */
void ymap_fail(struct ymap *m, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The raw value node of key (recorded as known), or NULL when absent, for values of more than
 * one type; read it then with the typed getter for its type. */
yaml_node_t *ymap_value(struct ymap *m, const char *key, int flags);

int ymap_str(struct ymap *m, const char *key, int flags, char **out);
int ymap_path(struct ymap *m, const char *key, int flags, char **out);
int ymap_bool(struct ymap *m, const char *key, int flags, int *out);
int ymap_int(struct ymap *m, const char *key, int flags, int64_t min, int64_t max,
             int64_t *out);
int ymap_port(struct ymap *m, const char *key, int flags, uint16_t *out);
int ymap_duration(struct ymap *m, const char *key, int flags, uint64_t min_ms, uint64_t max_ms,
                  uint64_t *out);
int ymap_size(struct ymap *m, const char *key, int flags, uint64_t min, uint64_t max,
              uint64_t *out);
int ymap_hostport(struct ymap *m, const char *key, int flags, char **host, uint16_t *port);
int ymap_enum(struct ymap *m, const char *key, int flags, const char *const *names, int *out);

/* Opens the mapping under key as out (always initialised; close it). Returns 1 if present. */
int ymap_map(struct ymap *m, const char *key, int flags, struct ymap *out);

/* Opens the sequence under key as out (always initialised). Returns 1 if present. */
int ymap_seq(struct ymap *m, const char *key, int flags, struct yseq *out);

/* --- sequences ------------------------------------------------------------------------------- */

/* Opens a reader over node n (NULL: absent) whose messages use path; a node that is not a
 * sequence is an error. */
void yseq_open(struct yseq *s, struct ydoc *d, yaml_node_t *n, const char *path);

/* Number of items; 0 when absent or after an error. */
size_t yseq_len(const struct yseq *s);
yaml_node_t *yseq_node(struct yseq *s, size_t i);

/* Opens item i as a mapping reader with path "PATH[i]" (close it). Returns 1 if it is one. */
int yseq_map(struct yseq *s, size_t i, struct ymap *out);

/* Item i as a string. Returns 1 if stored. */
int yseq_str(struct yseq *s, size_t i, char **out);

/* Item i as a port (1-65535). Returns 1 if stored. */
int yseq_port(struct yseq *s, size_t i, uint16_t *out);

#endif
