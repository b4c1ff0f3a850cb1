/* log.h - levelled logging to stderr for the node's own modules.
 *
 * Lines look like: 2026-11-22T20:31:07.123Z info  [web] listening on 127.0.0.1:8441
 * The level is set once at start-up (config or --log-level). Lower layers (probes, raft,
 * alerting) do not log: they return errors and events, and node/ decides what to log.
 * Never pass secrets (keys, tokens, passwords) to these functions.
 */
#ifndef LBW_LOG_H
#define LBW_LOG_H

enum lbw_log_level { LBW_LOG_DEBUG, LBW_LOG_INFO, LBW_LOG_WARN, LBW_LOG_ERROR };

void lbw_log_set_level(enum lbw_log_level level);
enum lbw_log_level lbw_log_get_level(void);

/* Parses "debug", "info", "warn", "error". Returns 0, or -1 if unknown. */
int lbw_log_parse_level(const char *s, enum lbw_log_level *out);

void lbw_log(enum lbw_log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(comp, ...) lbw_log(LBW_LOG_DEBUG, comp, __VA_ARGS__)
#define log_info(comp, ...) lbw_log(LBW_LOG_INFO, comp, __VA_ARGS__)
#define log_warn(comp, ...) lbw_log(LBW_LOG_WARN, comp, __VA_ARGS__)
#define log_error(comp, ...) lbw_log(LBW_LOG_ERROR, comp, __VA_ARGS__)

#endif
