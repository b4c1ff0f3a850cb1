/* haproxy.h - HAProxy's runtime statistics: the parsers of `show stat` (and the stats page's
 * `;csv`, the same CSV), `show info`, `show ssl cert` (the list of certificate files) and
 * `show ssl cert FILE` (one certificate's details), and their description as samples named
 * as HAProxy's built-in Prometheus exporter names them.
 *
 * Every input is untrusted and bounds-checked; the CSV goes through probes/csv.h (columns by
 * name, so a column that a version or build lacks is simply absent). This module does no I/O
 * and depends on probes/ only.
 *
 * --- Samples ------------------------------------------------------------------------------
 *
 * Names and labels follow HAProxy 2.6's exporter (`http-request use-service
 * prometheus-exporter`): frontends, backends and servers carry proxy="NAME" and, for a
 * server, server="NAME"; HTTP responses code="1xx".."5xx"|"other"; statuses one series per
 * state, 1 for the current one and 0 for the others. Where that exporter has no metric the
 * name starts with lbwatch_haproxy_. Times the CSV gives in milliseconds become seconds.
 * A field that is empty (does not apply to the object) is not emitted. With F = frontend,
 * B = backend, S = server, each of haproxy_{frontend,backend,server}_SUFFIX, from the CSV:
 *
 *   qcur current_queue (B S)               qmax max_queue (B S)
 *   scur current_sessions (F B S)          smax max_sessions (F B S)
 *   slim limit_sessions (F B S)            stot sessions_total (F B S)
 *   bin bytes_in_total (F B S)             bout bytes_out_total (F B S)
 *   dreq requests_denied_total (F B)       dresp responses_denied_total (F B S)
 *   ereq request_errors_total (F)          econ connection_errors_total (B S)
 *   eresp response_errors_total (B S)      wretr retry_warnings_total (B S)
 *   wredis redispatch_warnings_total (B S) weight weight (B S)
 *   act active_servers (B)                 bck backup_servers (B)
 *   chkfail check_failures_total (S)       chkdown check_up_down_total (B S)
 *   lastchg check_last_change_seconds (B S) downtime downtime_seconds_total (B S)
 *   qlimit queue_limit (S)                 throttle current_throttle (S)
 *   lbtot loadbalanced_total (B S)         rate_lim limit_session_rate (F)
 *   rate_max max_session_rate (F B S)      check_code check_code (S)
 *   check_duration check_duration_seconds (S, ms -> s)
 *   hrsp_1xx..hrsp_5xx, hrsp_other http_responses_total{code="1xx".."5xx"|"other"} (F B S)
 *   req_rate_max http_requests_rate_max (F) req_tot http_requests_total (F B)
 *   cli_abrt client_aborts_total (B S)     srv_abrt server_aborts_total (B S)
 *   lastsess last_session_seconds (B S)
 *   qtime, ctime, rtime, ttime {queue,connect,response,total}_time_average_seconds (B S, ms)
 *   qtime_max, ctime_max, rtime_max, ttime_max max_{queue,connect,response,total}_time_seconds
 *       (B S, ms)
 *   conn_rate_max connections_rate_max (F) conn_tot connections_total (F)
 *   intercepted intercepted_requests_total (F)
 *   dcon denied_connections_total (F)      dses denied_sessions_total (F)
 *   wrew failed_header_rewriting_total (F B S)
 *   connect connection_attempts_total (B S) reuse connection_reuses_total (B S)
 *   cache_lookups http_cache_lookups_total (F B) cache_hits http_cache_hits_total (F B)
 *   eint internal_errors_total (F B S)     uweight uweight (B S)
 *   srv_icur idle_connections_current (S)  src_ilim idle_connections_limit (S)
 *   idle_conn_cur unsafe_idle_connections_current (S)
 *   safe_conn_cur safe_idle_connections_current (S)
 *   used_conn_cur used_connections_current (S) need_conn_est need_connections_current (S)
 *   status  haproxy_{frontend,backend}_status{state="UP"|"DOWN"}: OPEN and FULL are UP;
 *           haproxy_server_status{state="DOWN"|"UP"|"MAINT"|"DRAIN"|"NOLB"}: "UP 1/3" (going
 *           down) and "no check" are UP, "DOWN 1/2" (going up) is DOWN, "MAINT (via x/y)"
 *           MAINT, "DRAIN (agent)" DRAIN; another status emits no status series
 *   check_status haproxy_server_check_status{state=...} over HAProxy's 16 exported check
 *           results (HANA SOCKERR L4OK L4TOUT L4CON L6OK L6TOUT L6RSP L7TOUT L7RSP L7OK
 *           L7OKC L7STS PROCERR PROCTOUT PROCOK; "* " of a check in progress dropped), for
 *           servers with checks
 * and, where the exporter has none, lbwatch_haproxy_{frontend,backend,server}_SUFFIX:
 *   rate current_session_rate (F B S)      req_rate http_requests_rate (F)
 *   conn_rate connections_rate (F)
 *   ssl_sess ssl_sessions_total (F)        ssl_reused_sess ssl_reused_sessions_total (F)
 *   ssl_failed_handshake ssl_failed_handshakes_total (F)   (the ssl stats module's columns)
 *
 * From `show info`, haproxy_process_SUFFIX:
 *   Nbthread nbthread, Nbproc nbproc, Process_num relative_process_id, Uptime_sec
 *   uptime_seconds, Start_time_sec start_time_seconds, Memmax_bytes max_memory_bytes,
 *   PoolAlloc_bytes pool_allocated_bytes, PoolUsed_bytes pool_used_bytes, PoolFailed
 *   pool_failures_total, Ulimit-n max_fds, Maxsock max_sockets, Maxconn max_connections,
 *   Hard_maxconn hard_max_connections, CurrConns current_connections, CumConns
 *   connections_total, CumReq requests_total, MaxSslConns max_ssl_connections, CurrSslConns
 *   current_ssl_connections, CumSslConns ssl_connections_total, Maxpipes max_pipes, PipesUsed
 *   pipes_used_total, PipesFree pipes_free_total, ConnRate current_connection_rate,
 *   ConnRateLimit limit_connection_rate, MaxConnRate max_connection_rate, SessRate
 *   current_session_rate, SessRateLimit limit_session_rate, MaxSessRate max_session_rate,
 *   SslRate current_ssl_rate, SslRateLimit limit_ssl_rate, MaxSslRate max_ssl_rate,
 *   SslFrontendKeyRate current_frontend_ssl_key_rate, SslFrontendMaxKeyRate
 *   max_frontend_ssl_key_rate, SslFrontendSessionReuse_pct frontend_ssl_reuse,
 *   SslBackendKeyRate current_backend_ssl_key_rate, SslBackendMaxKeyRate
 *   max_backend_ssl_key_rate, SslCacheLookups ssl_cache_lookups_total, SslCacheMisses
 *   ssl_cache_misses_total, CompressBpsIn http_comp_bytes_in_total, CompressBpsOut
 *   http_comp_bytes_out_total, CompressBpsRateLim limit_http_comp, Tasks current_tasks,
 *   Run_queue current_run_queue, Idle_pct idle_time_percent, Stopping stopping, Jobs jobs,
 *   "Unstoppable Jobs" unstoppable_jobs, Listeners listeners, ActivePeers active_peers,
 *   ConnectedPeers connected_peers, DroppedLogs dropped_logs_total, BusyPolling
 *   busy_polling_enabled, FailedResolutions failed_resolutions, TotalBytesOut
 *   bytes_out_total, TotalSplicdedBytesOut spliced_bytes_out_total, BytesOutRate
 *   bytes_out_rate, CumRecvLogs recv_logs_total;
 *   Version haproxy_process_build_info{version="..."} 1; Pid lbwatch_haproxy_process_pid.
 *
 * From `show ssl cert FILE`, per certificate file:
 *   lbwatch_haproxy_ssl_cert_not_after_seconds{cert="FILE"}, ..._not_before_seconds (unix s)
 * and from the listing lbwatch_haproxy_ssl_certs (files HAProxy has loaded).
 *
 * --- Key sizes ----------------------------------------------------------------------------
 *
 * Proxy and server names are kept only when they are 1 to LBW_HAPROXY_NAME_MAX bytes of
 * HAProxy's own name characters (letters, digits, '_', '.', ':', '-'; HAProxy accepts no
 * others), so they need no escaping; a row with another name is skipped and counted.
 * Certificate file names are kept up to LBW_HAPROXY_CERT_MAX bytes of printable ASCII and
 * the version up to LBW_HAPROXY_VERSION_MAX. Every metric name is at most
 * LBW_HAPROXY_METRIC_MAX bytes. With the base labels probe="haproxy" and target and vantage
 * of at most 63 bytes each (the configuration's limit for names) every key therefore fits
 * LBW_KEY_MAX with at most 7 labels: the emit functions count the samples that could not be
 * built, and tests/unit/test_haproxy.c checks that the longest possible keys fit.
 */
#ifndef LBW_HAPROXY_H
#define LBW_HAPROXY_H

#include <stddef.h>
#include <stdint.h>

#include "probes/sample.h"

#define LBW_HAPROXY_NAME_MAX 100        /* proxy and server names */
#define LBW_HAPROXY_CERT_MAX 120        /* certificate file names */
#define LBW_HAPROXY_VERSION_MAX 63
#define LBW_HAPROXY_METRIC_MAX 64       /* the longest metric name emitted */
#define LBW_HAPROXY_STAT_COLS 72        /* numeric `show stat` columns kept (haproxy.c) */
#define LBW_HAPROXY_INFO_FIELDS 58      /* numeric `show info` fields kept (haproxy.c) */
#define LBW_HAPROXY_CERTS_MAX 256       /* certificate files taken from one listing */

enum lbw_haproxy_kind { LBW_HAPROXY_FRONTEND, LBW_HAPROXY_BACKEND, LBW_HAPROXY_SERVER };

/* One frontend, backend or server of `show stat`. */
struct lbw_haproxy_row {
    enum lbw_haproxy_kind kind;
    char proxy[LBW_HAPROXY_NAME_MAX + 1];
    char server[LBW_HAPROXY_NAME_MAX + 1];      /* servers only, else "" */
    char status[32];            /* as written: "OPEN", "UP", "DOWN 1/2", "no check", ...
                                   (cut to fit) */
    char check_status[16];      /* "L7OK", "L4CON", ... without a leading "* "; "" if none */
    double v[LBW_HAPROXY_STAT_COLS];    /* by column (lbw_haproxy_value); NaN when absent */
};

struct lbw_haproxy_stats {
    struct lbw_haproxy_row *rows;       /* in the order of the CSV */
    size_t nrows;
    size_t skipped;             /* rows not kept: listeners, other types, bad names */
};

/* Parses `show stat` / `;csv` output. Needs the columns pxname, svname and (to tell
 * frontends, backends, servers and listeners apart) type or, without it, svname's FRONTEND
 * and BACKEND. A numeric column holding something else than a decimal number, and every
 * CSV error (probes/csv.h), fails the whole text. Returns 0 (free with
 * lbw_haproxy_stats_free), or -1 with a reason in err and nothing to free. */
int lbw_haproxy_stat_parse(const char *text, size_t len, struct lbw_haproxy_stats *out,
                           char *err, size_t errlen);

void lbw_haproxy_stats_free(struct lbw_haproxy_stats *s);

/* The row of proxy's frontend, backend (server NULL, kind says which) or server, or NULL. */
const struct lbw_haproxy_row *lbw_haproxy_find(const struct lbw_haproxy_stats *s,
                                               enum lbw_haproxy_kind kind, const char *proxy,
                                               const char *server);

/* The value of CSV column name ("scur", "hrsp_5xx", ...) in a row: NaN when the column is not
 * one this module keeps, or was absent or empty. */
double lbw_haproxy_value(const struct lbw_haproxy_row *r, const char *column);

/* Describes every row as samples (mapping above). Returns the number of samples that could
 * not be built (0 unless the base labels are longer than documented). */
size_t lbw_haproxy_stats_emit(const struct lbw_haproxy_stats *s, const struct lbw_emitter *e);

/* `show info` */
struct lbw_haproxy_info {
    double v[LBW_HAPROXY_INFO_FIELDS];  /* by field (lbw_haproxy_info_value); NaN if absent */
    char version[LBW_HAPROXY_VERSION_MAX + 1];  /* "" if absent or not printable ASCII */
};

/* Parses "Name: value" lines; the field Name must be present (so an error message from the
 * CLI is not taken for statistics). A known numeric field that is not a decimal number fails
 * the text, unknown fields are ignored. Returns 0, or -1 with a reason in err. */
int lbw_haproxy_info_parse(const char *text, size_t len, struct lbw_haproxy_info *out,
                           char *err, size_t errlen);

/* The value of field name ("CurrConns", "Uptime_sec", ...), NaN when not kept or absent. */
double lbw_haproxy_info_value(const struct lbw_haproxy_info *in, const char *name);

/* Describes the info as samples (mapping above). Returns the samples not built. */
size_t lbw_haproxy_info_emit(const struct lbw_haproxy_info *in, const struct lbw_emitter *e);

/* `show ssl cert`: the certificate files HAProxy has loaded (those of an uncommitted
 * transaction, listed under "# transaction", are not). */
struct lbw_haproxy_cert_list {
    char (*files)[LBW_HAPROXY_CERT_MAX + 1];    /* usable names, at most LBW_HAPROXY_CERTS_MAX */
    size_t nfiles;
    size_t total;               /* files listed, usable or not (too long, not printable) */
};

/* Parses the listing; it must contain the "# filename" line. Returns 0 (free with
 * lbw_haproxy_cert_list_free), or -1 with a reason in err and nothing to free. */
int lbw_haproxy_cert_list_parse(const char *text, size_t len, struct lbw_haproxy_cert_list *out,
                                char *err, size_t errlen);

void lbw_haproxy_cert_list_free(struct lbw_haproxy_cert_list *l);

/* Writes the CLI command "show ssl cert FILE\n" into out, escaping the characters the CLI
 * splits or ends commands on (' ', '\\', ';') with '\\'. Returns its length, or -1 when it
 * does not fit. */
int lbw_haproxy_cert_command(const char *file, char *out, size_t size);

/* `show ssl cert FILE` */
struct lbw_haproxy_cert {
    char file[LBW_HAPROXY_CERT_MAX + 1];
    int64_t not_before;         /* unix seconds */
    int64_t not_after;
};

/* Parses the details of one certificate: Filename, notBefore and notAfter ("Dec 22 19:47:21
 * 2026 GMT", as OpenSSL prints ASN.1 times) are required; a leading '*' on the file name
 * (a transaction's copy) is dropped. Returns 0, or -1 with a reason in err. */
int lbw_haproxy_cert_parse(const char *text, size_t len, struct lbw_haproxy_cert *out,
                           char *err, size_t errlen);

/* Parses an OpenSSL-printed time "Mmm DD HH:MM:SS[.fff] YYYY GMT" into unix seconds.
 * Returns 0, or -1. */
int lbw_haproxy_parse_time(const char *s, size_t len, int64_t *out);

/* Describes certificates and the listing as samples. Return the samples not built. */
size_t lbw_haproxy_cert_emit(const struct lbw_haproxy_cert *c, const struct lbw_emitter *e);
size_t lbw_haproxy_cert_list_emit(const struct lbw_haproxy_cert_list *l,
                                  const struct lbw_emitter *e);

#endif
