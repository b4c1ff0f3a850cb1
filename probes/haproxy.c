/* haproxy.c - HAProxy's `show stat`, `show info` and `show ssl cert` outputs: parsers and
 * their samples. See haproxy.h for the mapping, which the tables below implement. */
#include "probes/haproxy.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "probes/csv.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define ROWS_MAX 20000          /* rows kept from one `show stat` */
#define LINE_MAX_LEN 4096       /* a line of `show info` or `show ssl cert` */

enum { F = 1 << LBW_HAPROXY_FRONTEND, B = 1 << LBW_HAPROXY_BACKEND, S = 1 << LBW_HAPROXY_SERVER };
enum { EXPORTER = 0, LBWATCH = 1 };    /* prefix haproxy_ or lbwatch_haproxy_ */

struct stat_col {
    const char *column;         /* CSV column */
    const char *suffix;         /* metric: PREFIX{frontend,backend,server}_SUFFIX */
    unsigned kinds;             /* where the metric exists */
    int prefix;
    double scale;               /* 0.001 for milliseconds */
    const char *code;           /* code="..." label of http_responses_total, else NULL */
};

static const struct stat_col stat_cols[] = {
    {"qcur", "current_queue", B | S, EXPORTER, 1, NULL},
    {"qmax", "max_queue", B | S, EXPORTER, 1, NULL},
    {"scur", "current_sessions", F | B | S, EXPORTER, 1, NULL},
    {"smax", "max_sessions", F | B | S, EXPORTER, 1, NULL},
    {"slim", "limit_sessions", F | B | S, EXPORTER, 1, NULL},
    {"stot", "sessions_total", F | B | S, EXPORTER, 1, NULL},
    {"bin", "bytes_in_total", F | B | S, EXPORTER, 1, NULL},
    {"bout", "bytes_out_total", F | B | S, EXPORTER, 1, NULL},
    {"dreq", "requests_denied_total", F | B, EXPORTER, 1, NULL},
    {"dresp", "responses_denied_total", F | B | S, EXPORTER, 1, NULL},
    {"ereq", "request_errors_total", F, EXPORTER, 1, NULL},
    {"econ", "connection_errors_total", B | S, EXPORTER, 1, NULL},
    {"eresp", "response_errors_total", B | S, EXPORTER, 1, NULL},
    {"wretr", "retry_warnings_total", B | S, EXPORTER, 1, NULL},
    {"wredis", "redispatch_warnings_total", B | S, EXPORTER, 1, NULL},
    {"weight", "weight", B | S, EXPORTER, 1, NULL},
    {"act", "active_servers", B, EXPORTER, 1, NULL},
    {"bck", "backup_servers", B, EXPORTER, 1, NULL},
    {"chkfail", "check_failures_total", S, EXPORTER, 1, NULL},
    {"chkdown", "check_up_down_total", B | S, EXPORTER, 1, NULL},
    {"lastchg", "check_last_change_seconds", B | S, EXPORTER, 1, NULL},
    {"downtime", "downtime_seconds_total", B | S, EXPORTER, 1, NULL},
    {"qlimit", "queue_limit", S, EXPORTER, 1, NULL},
    {"throttle", "current_throttle", S, EXPORTER, 1, NULL},
    {"lbtot", "loadbalanced_total", B | S, EXPORTER, 1, NULL},
    {"rate", "current_session_rate", F | B | S, LBWATCH, 1, NULL},
    {"rate_lim", "limit_session_rate", F, EXPORTER, 1, NULL},
    {"rate_max", "max_session_rate", F | B | S, EXPORTER, 1, NULL},
    {"check_code", "check_code", S, EXPORTER, 1, NULL},
    {"check_duration", "check_duration_seconds", S, EXPORTER, 0.001, NULL},
    {"hrsp_1xx", "http_responses_total", F | B | S, EXPORTER, 1, "1xx"},
    {"hrsp_2xx", "http_responses_total", F | B | S, EXPORTER, 1, "2xx"},
    {"hrsp_3xx", "http_responses_total", F | B | S, EXPORTER, 1, "3xx"},
    {"hrsp_4xx", "http_responses_total", F | B | S, EXPORTER, 1, "4xx"},
    {"hrsp_5xx", "http_responses_total", F | B | S, EXPORTER, 1, "5xx"},
    {"hrsp_other", "http_responses_total", F | B | S, EXPORTER, 1, "other"},
    {"req_rate", "http_requests_rate", F, LBWATCH, 1, NULL},
    {"req_rate_max", "http_requests_rate_max", F, EXPORTER, 1, NULL},
    {"req_tot", "http_requests_total", F | B, EXPORTER, 1, NULL},
    {"cli_abrt", "client_aborts_total", B | S, EXPORTER, 1, NULL},
    {"srv_abrt", "server_aborts_total", B | S, EXPORTER, 1, NULL},
    {"lastsess", "last_session_seconds", B | S, EXPORTER, 1, NULL},
    {"qtime", "queue_time_average_seconds", B | S, EXPORTER, 0.001, NULL},
    {"ctime", "connect_time_average_seconds", B | S, EXPORTER, 0.001, NULL},
    {"rtime", "response_time_average_seconds", B | S, EXPORTER, 0.001, NULL},
    {"ttime", "total_time_average_seconds", B | S, EXPORTER, 0.001, NULL},
    {"qtime_max", "max_queue_time_seconds", B | S, EXPORTER, 0.001, NULL},
    {"ctime_max", "max_connect_time_seconds", B | S, EXPORTER, 0.001, NULL},
    {"rtime_max", "max_response_time_seconds", B | S, EXPORTER, 0.001, NULL},
    {"ttime_max", "max_total_time_seconds", B | S, EXPORTER, 0.001, NULL},
    {"conn_rate", "connections_rate", F, LBWATCH, 1, NULL},
    {"conn_rate_max", "connections_rate_max", F, EXPORTER, 1, NULL},
    {"conn_tot", "connections_total", F, EXPORTER, 1, NULL},
    {"intercepted", "intercepted_requests_total", F, EXPORTER, 1, NULL},
    {"dcon", "denied_connections_total", F, EXPORTER, 1, NULL},
    {"dses", "denied_sessions_total", F, EXPORTER, 1, NULL},
    {"wrew", "failed_header_rewriting_total", F | B | S, EXPORTER, 1, NULL},
    {"connect", "connection_attempts_total", B | S, EXPORTER, 1, NULL},
    {"reuse", "connection_reuses_total", B | S, EXPORTER, 1, NULL},
    {"cache_lookups", "http_cache_lookups_total", F | B, EXPORTER, 1, NULL},
    {"cache_hits", "http_cache_hits_total", F | B, EXPORTER, 1, NULL},
    {"eint", "internal_errors_total", F | B | S, EXPORTER, 1, NULL},
    {"uweight", "uweight", B | S, EXPORTER, 1, NULL},
    {"srv_icur", "idle_connections_current", S, EXPORTER, 1, NULL},
    {"src_ilim", "idle_connections_limit", S, EXPORTER, 1, NULL},
    {"idle_conn_cur", "unsafe_idle_connections_current", S, EXPORTER, 1, NULL},
    {"safe_conn_cur", "safe_idle_connections_current", S, EXPORTER, 1, NULL},
    {"used_conn_cur", "used_connections_current", S, EXPORTER, 1, NULL},
    {"need_conn_est", "need_connections_current", S, EXPORTER, 1, NULL},
    {"ssl_sess", "ssl_sessions_total", F, LBWATCH, 1, NULL},
    {"ssl_reused_sess", "ssl_reused_sessions_total", F, LBWATCH, 1, NULL},
    {"ssl_failed_handshake", "ssl_failed_handshakes_total", F, LBWATCH, 1, NULL},
};
_Static_assert(NELEM(stat_cols) == LBW_HAPROXY_STAT_COLS, "LBW_HAPROXY_STAT_COLS is stale");

static const char *const kind_names[] = {"frontend", "backend", "server"};

/* Exported states of the status series, per kind. */
static const char *const proxy_states[] = {"DOWN", "UP"};
static const char *const server_states[] = {"DOWN", "UP", "MAINT", "DRAIN", "NOLB"};
static const char *const check_states[] = {
    "HANA", "SOCKERR", "L4OK", "L4TOUT", "L4CON", "L6OK", "L6TOUT", "L6RSP",
    "L7TOUT", "L7RSP", "L7OK", "L7OKC", "L7STS", "PROCERR", "PROCTOUT", "PROCOK",
};

struct info_field {
    const char *name;           /* in `show info` */
    const char *metric;
};

static const struct info_field info_fields[] = {
    {"Nbthread", "haproxy_process_nbthread"},
    {"Nbproc", "haproxy_process_nbproc"},
    {"Process_num", "haproxy_process_relative_process_id"},
    {"Pid", "lbwatch_haproxy_process_pid"},
    {"Uptime_sec", "haproxy_process_uptime_seconds"},
    {"Start_time_sec", "haproxy_process_start_time_seconds"},
    {"Memmax_bytes", "haproxy_process_max_memory_bytes"},
    {"PoolAlloc_bytes", "haproxy_process_pool_allocated_bytes"},
    {"PoolUsed_bytes", "haproxy_process_pool_used_bytes"},
    {"PoolFailed", "haproxy_process_pool_failures_total"},
    {"Ulimit-n", "haproxy_process_max_fds"},
    {"Maxsock", "haproxy_process_max_sockets"},
    {"Maxconn", "haproxy_process_max_connections"},
    {"Hard_maxconn", "haproxy_process_hard_max_connections"},
    {"CurrConns", "haproxy_process_current_connections"},
    {"CumConns", "haproxy_process_connections_total"},
    {"CumReq", "haproxy_process_requests_total"},
    {"MaxSslConns", "haproxy_process_max_ssl_connections"},
    {"CurrSslConns", "haproxy_process_current_ssl_connections"},
    {"CumSslConns", "haproxy_process_ssl_connections_total"},
    {"Maxpipes", "haproxy_process_max_pipes"},
    {"PipesUsed", "haproxy_process_pipes_used_total"},
    {"PipesFree", "haproxy_process_pipes_free_total"},
    {"ConnRate", "haproxy_process_current_connection_rate"},
    {"ConnRateLimit", "haproxy_process_limit_connection_rate"},
    {"MaxConnRate", "haproxy_process_max_connection_rate"},
    {"SessRate", "haproxy_process_current_session_rate"},
    {"SessRateLimit", "haproxy_process_limit_session_rate"},
    {"MaxSessRate", "haproxy_process_max_session_rate"},
    {"SslRate", "haproxy_process_current_ssl_rate"},
    {"SslRateLimit", "haproxy_process_limit_ssl_rate"},
    {"MaxSslRate", "haproxy_process_max_ssl_rate"},
    {"SslFrontendKeyRate", "haproxy_process_current_frontend_ssl_key_rate"},
    {"SslFrontendMaxKeyRate", "haproxy_process_max_frontend_ssl_key_rate"},
    {"SslFrontendSessionReuse_pct", "haproxy_process_frontend_ssl_reuse"},
    {"SslBackendKeyRate", "haproxy_process_current_backend_ssl_key_rate"},
    {"SslBackendMaxKeyRate", "haproxy_process_max_backend_ssl_key_rate"},
    {"SslCacheLookups", "haproxy_process_ssl_cache_lookups_total"},
    {"SslCacheMisses", "haproxy_process_ssl_cache_misses_total"},
    {"CompressBpsIn", "haproxy_process_http_comp_bytes_in_total"},
    {"CompressBpsOut", "haproxy_process_http_comp_bytes_out_total"},
    {"CompressBpsRateLim", "haproxy_process_limit_http_comp"},
    {"Tasks", "haproxy_process_current_tasks"},
    {"Run_queue", "haproxy_process_current_run_queue"},
    {"Idle_pct", "haproxy_process_idle_time_percent"},
    {"Stopping", "haproxy_process_stopping"},
    {"Jobs", "haproxy_process_jobs"},
    {"Unstoppable Jobs", "haproxy_process_unstoppable_jobs"},
    {"Listeners", "haproxy_process_listeners"},
    {"ActivePeers", "haproxy_process_active_peers"},
    {"ConnectedPeers", "haproxy_process_connected_peers"},
    {"DroppedLogs", "haproxy_process_dropped_logs_total"},
    {"BusyPolling", "haproxy_process_busy_polling_enabled"},
    {"FailedResolutions", "haproxy_process_failed_resolutions"},
    {"TotalBytesOut", "haproxy_process_bytes_out_total"},
    {"TotalSplicdedBytesOut", "haproxy_process_spliced_bytes_out_total"},
    {"BytesOutRate", "haproxy_process_bytes_out_rate"},
    {"CumRecvLogs", "haproxy_process_recv_logs_total"},
};
_Static_assert(NELEM(info_fields) == LBW_HAPROXY_INFO_FIELDS, "LBW_HAPROXY_INFO_FIELDS is stale");

/* --- small helpers ---------------------------------------------------------------------- */

static int set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* The start of text as printable ASCII for messages: the first line, cut at 60 bytes. */
static const char *quote_start(const char *text, size_t len, char *buf, size_t size)
{
    size_t n = 0;
    for (size_t i = 0; i < len && text[i] != '\n' && n + 1 < size && n < 60; i++)
        buf[n++] = text[i] >= 0x20 && text[i] < 0x7f ? text[i] : '?';
    buf[n] = '\0';
    return buf;
}

/* A decimal number: optional '-', digits, optionally '.' and digits. Empty gives NaN. */
static int parse_number(const char *s, size_t len, double *out)
{
    size_t i = 0, digits = 0;
    char buf[40];
    if (len == 0) {
        *out = NAN;
        return 0;
    }
    if (len >= sizeof(buf))
        return -1;
    if (s[i] == '-')
        i++;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
        digits++;
    if (i < len && s[i] == '.') {
        size_t frac = 0;
        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++)
            frac++;
        if (frac == 0)
            return -1;
    }
    if (digits == 0 || i != len)
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    *out = strtod(buf, NULL);
    return 0;
}

static int is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == ':' || c == '-';
}

/* Copies a proxy or server name if it is 1 to LBW_HAPROXY_NAME_MAX of HAProxy's characters. */
static int copy_name(char *dst, const char *s, size_t len)
{
    if (!s || len == 0 || len > LBW_HAPROXY_NAME_MAX)
        return -1;
    for (size_t i = 0; i < len; i++)
        if (!is_name_char(s[i]))
            return -1;
    memcpy(dst, s, len);
    dst[len] = '\0';
    return 0;
}

static int printable(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] < 0x20 || s[i] >= 0x7f)
            return 0;
    return 1;
}

/* Copies len bytes of s into dst[size], cut to fit, always terminated. */
static void copy_cut(char *dst, size_t size, const char *s, size_t len)
{
    if (len >= size)
        len = size - 1;
    memcpy(dst, s, len);
    dst[len] = '\0';
}

/* --- show stat ---------------------------------------------------------------------------- */

struct stat_parse {
    struct lbw_csv *csv;
    int col_px, col_sv, col_type, col_status, col_check;
    int cols[LBW_HAPROXY_STAT_COLS];
    size_t cap;
};

/* The row's kind from "type" (0 frontend, 1 backend, 2 server, 3 listener) or, without that
 * column, from svname. Returns -1 for rows not kept. */
static int row_kind(const struct stat_parse *p, const char *sv)
{
    const char *type = lbw_csv_field(p->csv, p->col_type, NULL);
    if (p->col_type < 0 || !type) {
        if (sv && strcmp(sv, "FRONTEND") == 0)
            return LBW_HAPROXY_FRONTEND;
        if (sv && strcmp(sv, "BACKEND") == 0)
            return LBW_HAPROXY_BACKEND;
        return LBW_HAPROXY_SERVER;
    }
    if (strcmp(type, "0") == 0)
        return LBW_HAPROXY_FRONTEND;
    if (strcmp(type, "1") == 0)
        return LBW_HAPROXY_BACKEND;
    if (strcmp(type, "2") == 0)
        return LBW_HAPROXY_SERVER;
    return -1;
}

static int row_values(struct stat_parse *p, struct lbw_haproxy_row *r, char *err, size_t errlen)
{
    for (size_t i = 0; i < LBW_HAPROXY_STAT_COLS; i++) {
        size_t len = 0;
        const char *f = lbw_csv_field(p->csv, p->cols[i], &len);
        char shown[64];
        if (!f) {
            r->v[i] = NAN;
        } else if (parse_number(f, len, &r->v[i]) != 0) {
            return set_err(err, errlen, "line %zu: column %s: not a number: \"%s\"",
                           p->csv->line, stat_cols[i].column, quote_start(f, len, shown,
                                                                          sizeof(shown)));
        }
    }
    return 0;
}

static void row_texts(struct stat_parse *p, struct lbw_haproxy_row *r)
{
    size_t len = 0;
    const char *st = lbw_csv_field(p->csv, p->col_status, &len);
    if (st && printable(st, len))
        copy_cut(r->status, sizeof(r->status), st, len);
    const char *ck = lbw_csv_field(p->csv, p->col_check, &len);
    if (ck && len >= 2 && ck[0] == '*' && ck[1] == ' ') {
        ck += 2;
        len -= 2;
    }
    if (ck && printable(ck, len))
        copy_cut(r->check_status, sizeof(r->check_status), ck, len);
}

/* Appends the current CSV row to out if it is a frontend, backend or server with good names. */
static int take_row(struct stat_parse *p, struct lbw_haproxy_stats *out, char *err,
                    size_t errlen)
{
    size_t pxlen = 0, svlen = 0;
    const char *px = lbw_csv_field(p->csv, p->col_px, &pxlen);
    const char *sv = lbw_csv_field(p->csv, p->col_sv, &svlen);
    int kind = row_kind(p, sv);
    struct lbw_haproxy_row r;
    memset(&r, 0, sizeof(r));
    if (kind < 0 || copy_name(r.proxy, px, pxlen) != 0 ||
        (kind == LBW_HAPROXY_SERVER && copy_name(r.server, sv, svlen) != 0)) {
        out->skipped++;
        return 0;
    }
    r.kind = (enum lbw_haproxy_kind)kind;
    if (row_values(p, &r, err, errlen) != 0)
        return -1;
    row_texts(p, &r);
    if (out->nrows == ROWS_MAX)
        return set_err(err, errlen, "more than %d rows", ROWS_MAX);
    if (out->nrows == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        struct lbw_haproxy_row *nr = realloc(out->rows, cap * sizeof(*nr));
        if (!nr)
            return set_err(err, errlen, "out of memory");
        out->rows = nr;
        p->cap = cap;
    }
    out->rows[out->nrows++] = r;
    return 0;
}

static int stat_columns(struct stat_parse *p, char *err, size_t errlen)
{
    p->col_px = lbw_csv_col(p->csv, "pxname");
    p->col_sv = lbw_csv_col(p->csv, "svname");
    p->col_type = lbw_csv_col(p->csv, "type");
    p->col_status = lbw_csv_col(p->csv, "status");
    p->col_check = lbw_csv_col(p->csv, "check_status");
    if (p->col_px < 0 || p->col_sv < 0)
        return set_err(err, errlen, "no pxname or svname column");
    for (size_t i = 0; i < LBW_HAPROXY_STAT_COLS; i++)
        p->cols[i] = lbw_csv_col(p->csv, stat_cols[i].column);
    return 0;
}

int lbw_haproxy_stat_parse(const char *text, size_t len, struct lbw_haproxy_stats *out,
                           char *err, size_t errlen)
{
    struct stat_parse p = {0};
    int rc;
    memset(out, 0, sizeof(*out));
    p.csv = malloc(sizeof(*p.csv));
    if (!p.csv)
        return set_err(err, errlen, "out of memory");
    rc = lbw_csv_open(p.csv, text, len, err, errlen);
    if (rc == 0)
        rc = stat_columns(&p, err, errlen);
    while (rc == 0 && (rc = lbw_csv_next(p.csv, err, errlen)) == 1)
        rc = take_row(&p, out, err, errlen);
    free(p.csv);
    if (rc != 0) {
        lbw_haproxy_stats_free(out);
        return -1;
    }
    return 0;
}

void lbw_haproxy_stats_free(struct lbw_haproxy_stats *s)
{
    free(s->rows);
    memset(s, 0, sizeof(*s));
}

const struct lbw_haproxy_row *lbw_haproxy_find(const struct lbw_haproxy_stats *s,
                                               enum lbw_haproxy_kind kind, const char *proxy,
                                               const char *server)
{
    for (size_t i = 0; i < s->nrows; i++) {
        const struct lbw_haproxy_row *r = &s->rows[i];
        if (r->kind == kind && strcmp(r->proxy, proxy) == 0 &&
            (kind != LBW_HAPROXY_SERVER || (server && strcmp(r->server, server) == 0)))
            return r;
    }
    return NULL;
}

double lbw_haproxy_value(const struct lbw_haproxy_row *r, const char *column)
{
    for (size_t i = 0; i < LBW_HAPROXY_STAT_COLS; i++)
        if (strcmp(stat_cols[i].column, column) == 0)
            return r->v[i];
    return NAN;
}

/* --- show stat: samples ------------------------------------------------------------------- */

/* Labels of a row: proxy, server (servers only), one extra; returns how many. */
static size_t row_labels(const struct lbw_haproxy_row *r, struct lbw_label *l,
                         const char *extra_name, const char *extra_value)
{
    size_t n = 0;
    l[n++] = (struct lbw_label){"proxy", r->proxy};
    if (r->kind == LBW_HAPROXY_SERVER)
        l[n++] = (struct lbw_label){"server", r->server};
    if (extra_name)
        l[n++] = (struct lbw_label){extra_name, extra_value};
    return n;
}

static size_t emit_row_value(const struct lbw_haproxy_row *r, const char *suffix, int prefix,
                             const char *extra_name, const char *extra_value, double v,
                             const struct lbw_emitter *e)
{
    char metric[LBW_HAPROXY_METRIC_MAX + 1];
    struct lbw_label l[3];
    size_t n = row_labels(r, l, extra_name, extra_value);
    int len = snprintf(metric, sizeof(metric), "%shaproxy_%s_%s",
                       prefix == LBWATCH ? "lbwatch_" : "", kind_names[r->kind], suffix);
    if (len < 0 || (size_t)len >= sizeof(metric))
        return 1;
    return lbw_emitn(e, metric, l, n, v) == 0 ? 0 : 1;
}

/* The exported state of a status text, or NULL. */
static const char *server_state(const char *status)
{
    static const struct { const char *prefix; const char *state; } map[] = {
        {"UP", "UP"}, {"no check", "UP"}, {"DOWN", "DOWN"}, {"MAINT", "MAINT"},
        {"DRAIN", "DRAIN"}, {"NOLB", "NOLB"},
    };
    for (size_t i = 0; i < NELEM(map); i++) {
        size_t n = strlen(map[i].prefix);
        if (strncmp(status, map[i].prefix, n) == 0 && (status[n] == '\0' || status[n] == ' '))
            return map[i].state;
    }
    return NULL;
}

static const char *proxy_state(enum lbw_haproxy_kind kind, const char *status)
{
    if (kind == LBW_HAPROXY_FRONTEND) {
        if (strcmp(status, "OPEN") == 0 || strcmp(status, "FULL") == 0)
            return "UP";
        return strcmp(status, "STOP") == 0 ? "DOWN" : NULL;
    }
    if (strcmp(status, "UP") == 0)
        return "UP";
    return strcmp(status, "DOWN") == 0 ? "DOWN" : NULL;
}

static size_t emit_states(const struct lbw_haproxy_row *r, const char *suffix,
                          const char *const *states, size_t nstates, const char *current,
                          const struct lbw_emitter *e)
{
    size_t failed = 0;
    for (size_t i = 0; i < nstates; i++)
        failed += emit_row_value(r, suffix, EXPORTER, "state", states[i],
                                 strcmp(states[i], current) == 0 ? 1 : 0, e);
    return failed;
}

static size_t emit_row_states(const struct lbw_haproxy_row *r, const struct lbw_emitter *e)
{
    size_t failed = 0;
    if (r->kind == LBW_HAPROXY_SERVER) {
        const char *st = server_state(r->status);
        if (st)
            failed += emit_states(r, "status", server_states, NELEM(server_states), st, e);
        for (size_t i = 0; r->check_status[0] && i < NELEM(check_states); i++)
            if (strcmp(check_states[i], r->check_status) == 0)
                failed += emit_states(r, "check_status", check_states, NELEM(check_states),
                                      r->check_status, e);
    } else {
        const char *st = proxy_state(r->kind, r->status);
        if (st)
            failed += emit_states(r, "status", proxy_states, NELEM(proxy_states), st, e);
    }
    return failed;
}

size_t lbw_haproxy_stats_emit(const struct lbw_haproxy_stats *s, const struct lbw_emitter *e)
{
    size_t failed = 0;
    for (size_t i = 0; i < s->nrows; i++) {
        const struct lbw_haproxy_row *r = &s->rows[i];
        for (size_t c = 0; c < LBW_HAPROXY_STAT_COLS; c++) {
            const struct stat_col *sc = &stat_cols[c];
            if (!(sc->kinds & (1u << r->kind)) || isnan(r->v[c]))
                continue;
            failed += emit_row_value(r, sc->suffix, sc->prefix, sc->code ? "code" : NULL,
                                     sc->code, r->v[c] * sc->scale, e);
        }
        failed += emit_row_states(r, e);
    }
    return failed;
}

/* --- "Name: value" lines (show info, show ssl cert FILE) --------------------------------- */

/* Calls fn for each non-empty line "NAME: VALUE" (value without surrounding blanks).
 * A line without ':' or longer than LINE_MAX_LEN is an error; fn may fail too. */
static int each_pair(const char *text, size_t len,
                     int (*fn)(void *arg, const char *name, size_t nlen, const char *value,
                               size_t vlen, size_t line, char *err, size_t errlen),
                     void *arg, char *err, size_t errlen)
{
    size_t pos = 0, line = 0;
    while (pos < len) {
        const char *s = text + pos;
        const char *nl = memchr(s, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - s) : len - pos;
        pos += n + (nl != NULL);
        line++;
        if (n > 0 && s[n - 1] == '\r')
            n--;
        if (n == 0)
            continue;
        if (n > LINE_MAX_LEN)
            return set_err(err, errlen, "line %zu: longer than %d bytes", line, LINE_MAX_LEN);
        const char *colon = memchr(s, ':', n);
        if (!colon)
            return set_err(err, errlen, "line %zu: not \"Name: value\"", line);
        size_t nlen = (size_t)(colon - s), vstart = nlen + 1;
        while (vstart < n && (s[vstart] == ' ' || s[vstart] == '\t'))
            vstart++;
        size_t vend = n;
        while (vend > vstart && (s[vend - 1] == ' ' || s[vend - 1] == '\t'))
            vend--;
        if (fn(arg, s, nlen, s + vstart, vend - vstart, line, err, errlen) != 0)
            return -1;
    }
    return 0;
}

static int name_is(const char *name, size_t nlen, const char *want)
{
    return strlen(want) == nlen && memcmp(name, want, nlen) == 0;
}

/* --- show info ---------------------------------------------------------------------------- */

struct info_parse {
    struct lbw_haproxy_info *out;
    int saw_name;
};

static int info_pair(void *arg, const char *name, size_t nlen, const char *value, size_t vlen,
                     size_t line, char *err, size_t errlen)
{
    struct info_parse *p = arg;
    char shown[64];
    if (name_is(name, nlen, "Name")) {
        p->saw_name = 1;
        return 0;
    }
    if (name_is(name, nlen, "Version")) {
        if (vlen <= LBW_HAPROXY_VERSION_MAX && printable(value, vlen))
            copy_cut(p->out->version, sizeof(p->out->version), value, vlen);
        return 0;
    }
    for (size_t i = 0; i < LBW_HAPROXY_INFO_FIELDS; i++) {
        if (!name_is(name, nlen, info_fields[i].name))
            continue;
        if (parse_number(value, vlen, &p->out->v[i]) != 0)
            return set_err(err, errlen, "line %zu: %s: not a number: \"%s\"", line,
                           info_fields[i].name, quote_start(value, vlen, shown, sizeof(shown)));
        return 0;
    }
    return 0;
}

int lbw_haproxy_info_parse(const char *text, size_t len, struct lbw_haproxy_info *out,
                           char *err, size_t errlen)
{
    struct info_parse p = {out, 0};
    char shown[64];
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < LBW_HAPROXY_INFO_FIELDS; i++)
        out->v[i] = NAN;
    if (each_pair(text, len, info_pair, &p, err, errlen) != 0)
        return -1;
    if (!p.saw_name)
        return set_err(err, errlen, "not `show info` output: \"%s\"",
                       quote_start(text, len, shown, sizeof(shown)));
    return 0;
}

double lbw_haproxy_info_value(const struct lbw_haproxy_info *in, const char *name)
{
    for (size_t i = 0; i < LBW_HAPROXY_INFO_FIELDS; i++)
        if (strcmp(info_fields[i].name, name) == 0)
            return in->v[i];
    return NAN;
}

size_t lbw_haproxy_info_emit(const struct lbw_haproxy_info *in, const struct lbw_emitter *e)
{
    size_t failed = 0;
    for (size_t i = 0; i < LBW_HAPROXY_INFO_FIELDS; i++)
        if (!isnan(in->v[i]) && lbw_emit(e, info_fields[i].metric, in->v[i]) != 0)
            failed++;
    if (in->version[0] &&
        lbw_emit1(e, "haproxy_process_build_info", "version", in->version, 1) != 0)
        failed++;
    return failed;
}

/* --- show ssl cert ------------------------------------------------------------------------ */

static int list_add(struct lbw_haproxy_cert_list *l, const char *s, size_t n)
{
    l->total++;
    if (n == 0 || n > LBW_HAPROXY_CERT_MAX || !printable(s, n) ||
        l->nfiles == LBW_HAPROXY_CERTS_MAX)
        return 0;
    if (!l->files) {
        l->files = calloc(LBW_HAPROXY_CERTS_MAX, sizeof(*l->files));
        if (!l->files)
            return -1;
    }
    copy_cut(l->files[l->nfiles++], sizeof(l->files[0]), s, n);
    return 0;
}

int lbw_haproxy_cert_list_parse(const char *text, size_t len, struct lbw_haproxy_cert_list *out,
                                char *err, size_t errlen)
{
    enum { NONE, TRANSACTION, FILES } section = NONE;
    size_t pos = 0;
    int saw_files = 0;
    char shown[64];
    memset(out, 0, sizeof(*out));
    while (pos < len) {
        const char *s = text + pos;
        const char *nl = memchr(s, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - s) : len - pos;
        pos += n + (nl != NULL);
        if (n > 0 && s[n - 1] == '\r')
            n--;
        if (n == 0)
            continue;
        if (s[0] == '#') {
            section = n == 10 && memcmp(s, "# filename", 10) == 0 ? FILES
                      : n == 13 && memcmp(s, "# transaction", 13) == 0 ? TRANSACTION
                                                                       : NONE;
            saw_files |= section == FILES;
        } else if (section == FILES && list_add(out, s, n) != 0) {
            lbw_haproxy_cert_list_free(out);
            return set_err(err, errlen, "out of memory");
        }
    }
    if (!saw_files)
        return set_err(err, errlen, "not `show ssl cert` output: \"%s\"",
                       quote_start(text, len, shown, sizeof(shown)));
    return 0;
}

void lbw_haproxy_cert_list_free(struct lbw_haproxy_cert_list *l)
{
    free(l->files);
    memset(l, 0, sizeof(*l));
}

int lbw_haproxy_cert_command(const char *file, char *out, size_t size)
{
    static const char head[] = "show ssl cert ";
    size_t n = sizeof(head) - 1;
    if (size < n + 2)
        return -1;
    memcpy(out, head, n);
    for (const char *p = file; *p; p++) {
        int esc = *p == ' ' || *p == '\\' || *p == ';';
        if (n + (size_t)esc + 1 + 2 > size)
            return -1;
        if (esc)
            out[n++] = '\\';
        out[n++] = *p;
    }
    out[n++] = '\n';
    out[n] = '\0';
    return (int)n;
}

static int month_of(const char *s)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    for (int i = 0; i < 12; i++)
        if (memcmp(months + 3 * i, s, 3) == 0)
            return i;
    return -1;
}

/* Reads 1 to max digits at s[*i] into *v. */
static int read_int(const char *s, size_t len, size_t *i, size_t max, int *v)
{
    size_t n = 0;
    *v = 0;
    while (*i < len && n < max && s[*i] >= '0' && s[*i] <= '9') {
        *v = *v * 10 + (s[(*i)++] - '0');
        n++;
    }
    return n > 0 ? 0 : -1;
}

static int expect_char(const char *s, size_t len, size_t *i, char c)
{
    if (*i >= len || s[*i] != c)
        return -1;
    (*i)++;
    return 0;
}

int lbw_haproxy_parse_time(const char *s, size_t len, int64_t *out)
{
    struct tm tm;
    size_t i = 3;
    int mon, day, h, m, sec, year, frac;
    memset(&tm, 0, sizeof(tm));
    if (len < 3 || (mon = month_of(s)) < 0)
        return -1;
    while (i < len && s[i] == ' ')
        i++;
    if (read_int(s, len, &i, 2, &day) || expect_char(s, len, &i, ' ') ||
        read_int(s, len, &i, 2, &h) || expect_char(s, len, &i, ':') ||
        read_int(s, len, &i, 2, &m) || expect_char(s, len, &i, ':') ||
        read_int(s, len, &i, 2, &sec))
        return -1;
    if (i < len && s[i] == '.' && (i++, read_int(s, len, &i, 9, &frac) != 0))
        return -1;
    if (expect_char(s, len, &i, ' ') || read_int(s, len, &i, 4, &year) ||
        len - i != 4 || memcmp(s + i, " GMT", 4) != 0)
        return -1;
    if (day < 1 || day > 31 || h > 23 || m > 59 || sec > 60 || year < 1950)
        return -1;
    tm.tm_year = year - 1900;
    tm.tm_mon = mon;
    tm.tm_mday = day;
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    if (t == (time_t)-1 || tm.tm_mday != day)
        return -1; /* e.g. Feb 31 */
    *out = (int64_t)t;
    return 0;
}

struct cert_parse {
    struct lbw_haproxy_cert *out;
    int saw_file, saw_before, saw_after;
};

static int cert_pair(void *arg, const char *name, size_t nlen, const char *value, size_t vlen,
                     size_t line, char *err, size_t errlen)
{
    struct cert_parse *p = arg;
    if (name_is(name, nlen, "Filename") && !p->saw_file) {
        if (vlen > 0 && value[0] == '*') {
            value++;
            vlen--;
        }
        if (vlen == 0 || vlen > LBW_HAPROXY_CERT_MAX || !printable(value, vlen))
            return set_err(err, errlen, "line %zu: unusable file name", line);
        copy_cut(p->out->file, sizeof(p->out->file), value, vlen);
        p->saw_file = 1;
    } else if (name_is(name, nlen, "notBefore") && !p->saw_before) {
        if (lbw_haproxy_parse_time(value, vlen, &p->out->not_before) != 0)
            return set_err(err, errlen, "line %zu: notBefore: bad time", line);
        p->saw_before = 1;
    } else if (name_is(name, nlen, "notAfter") && !p->saw_after) {
        if (lbw_haproxy_parse_time(value, vlen, &p->out->not_after) != 0)
            return set_err(err, errlen, "line %zu: notAfter: bad time", line);
        p->saw_after = 1;
    }
    return 0;
}

int lbw_haproxy_cert_parse(const char *text, size_t len, struct lbw_haproxy_cert *out,
                           char *err, size_t errlen)
{
    struct cert_parse p = {out, 0, 0, 0};
    char shown[64];
    memset(out, 0, sizeof(*out));
    if (each_pair(text, len, cert_pair, &p, err, errlen) != 0) {
        if (!p.saw_file) /* an error message from the CLI is not "Name: value" either */
            set_err(err, errlen, "not `show ssl cert FILE` output: \"%s\"",
                    quote_start(text, len, shown, sizeof(shown)));
        return -1;
    }
    if (!p.saw_file || !p.saw_before || !p.saw_after)
        return set_err(err, errlen, "not `show ssl cert FILE` output (needs Filename, "
                                    "notBefore, notAfter): \"%s\"",
                       quote_start(text, len, shown, sizeof(shown)));
    return 0;
}

size_t lbw_haproxy_cert_emit(const struct lbw_haproxy_cert *c, const struct lbw_emitter *e)
{
    size_t failed = 0;
    failed += lbw_emit1(e, "lbwatch_haproxy_ssl_cert_not_after_seconds", "cert", c->file,
                        (double)c->not_after) != 0;
    failed += lbw_emit1(e, "lbwatch_haproxy_ssl_cert_not_before_seconds", "cert", c->file,
                        (double)c->not_before) != 0;
    return failed;
}

size_t lbw_haproxy_cert_list_emit(const struct lbw_haproxy_cert_list *l,
                                  const struct lbw_emitter *e)
{
    return lbw_emit(e, "lbwatch_haproxy_ssl_certs", (double)l->total) != 0;
}
